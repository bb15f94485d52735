/* The espsim control socket: a Unix stream socket that carries "DTR=1 RTS=0\n" lines for a port
 * whose modem lines cannot (a pseudo-terminal's "<name>.ctl", a socket://...?ctl=/path). A
 * helper of the tty and TCP transports, embedded in their structs; port.c does not know it. */
#ifndef ES_PORT_CTL_H
#define ES_PORT_CTL_H

#include <uv.h>

#include "es/err.h"
#include "port_internal.h"

struct port_ctl {
    struct port *port; /* whose pending count the handle holds and who fails on error */
    char *path;
    int fd;
    uv_poll_t poll;
    int open; /* the poll handle is initialised and not yet closing */
    struct outq q;
};

/* Connects to the Unix socket at path for port p (path is copied). On success the poll handle
 * holds one of p->pending until port_ctl_close. On failure nothing is left open. */
int port_ctl_open(struct port_ctl *c, struct port *p, const char *path, struct es_err *err);
/* Sends one "DTR=d RTS=r\n" line; what the socket does not take now goes from the loop. */
int port_ctl_set_lines(struct port_ctl *c, int dtr, int rts, struct es_err *err);
/* Stops writing (the port failed). */
void port_ctl_stop(struct port_ctl *c);
/* Closes the handle (and then the fd) if open; its close callback calls port_release. */
void port_ctl_close(struct port_ctl *c);
/* Frees the path and the queue. After port_ctl_close's callback, or when it never opened. */
void port_ctl_free(struct port_ctl *c);

#endif
