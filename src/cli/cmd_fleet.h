/* The fleet database's commands, `espstation db init URL` and `espstation fleet URL`: each takes
 * main()'s argv (argv[1] is the command) and returns the exit status (cmd_fleet.c). */
#ifndef ES_CMD_FLEET_H
#define ES_CMD_FLEET_H

int cmd_db(int argc, char **argv);
int cmd_fleet(int argc, char **argv);

#endif
