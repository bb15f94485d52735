/* `espstation ports` (cmd_ports.c): each returns the exit status, 0 or 1. */
#ifndef ES_CMD_PORTS_H
#define ES_CMD_PORTS_H

/* The ports with their USB identity; names_only (--names): one path per line and nothing else. */
int cmd_ports(int names_only);
/* ports --udev: udev rules naming each USB serial adapter /dev/espstation/slot-<USB port>. */
int cmd_ports_udev(void);

#endif
