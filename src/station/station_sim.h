/* Private to the station: espsim, the board simulator, as a child process (--simulate). */
#ifndef ES_STATION_SIM_H
#define ES_STATION_SIM_H

#include <stdio.h>
#include <sys/types.h>

#include "es/station.h"

struct station_sim {
    pid_t pid;    /* 0: not running */
    FILE *out;    /* espsim's stdout, kept open while it runs */
    int stdin_fd; /* the write end of espsim's stdin, closed to stop it; -1: none */
};

/* Starts espsim with cfg->simulate boards and waits until it says it is ready. *ports is a new
 * array (malloc'd, with room for cfg->n_ports more entries after the simulated ones) of *n_ports
 * malloc'd pty paths; the caller frees them. Blocks for espsim's start-up: call before the loop
 * runs. Returns 0, ES_USAGE (no espsim found), ES_NOMEM or ES_IO; stop the sim either way. */
int station_sim_start(struct station_sim *sim, const struct station_config *cfg, char ***ports,
                      size_t *n_ports, struct es_err *err);

/* Closes espsim's stdin, sends SIGTERM and waits for it. Safe on a sim never started. */
void station_sim_stop(struct station_sim *sim);

#endif
