/* What the files of src/port share: the generic struct port every transport embeds, the ops
 * table a transport fills in (struct port_ops, the shape of esp-serial-flasher's
 * esp_loader_port_ops_t and Redis's ConnectionType), the byte queue, and the generic helpers
 * of port.c that transports call. Nothing outside src/port includes this; the rest of the
 * program sees only include/es/port.h (and tests include/es/port_fake.h). */
#ifndef ES_PORT_INTERNAL_H
#define ES_PORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "es/container_of.h"
#include "es/err.h"
#include "es/port.h"

#define PORT_SOCKET_PREFIX "socket://"

/* Bytes waiting to be handed to the OS: buf[head .. head+len). */
struct outq {
    uint8_t *buf;
    size_t head;
    size_t len;
    size_t cap;
};

struct port;

/* One transport. port.c calls these and nothing else of the transport; every member is set.
 * None of them is called after port_close except free. */
struct port_ops {
    const char *name; /* "tty", "tcp", "fake": for messages */
    /* A new zeroed transport struct with the struct port embedded in it, or NULL (no memory). */
    struct port *(*alloc)(void);
    /* Opens the transport named p->name (the generic fields are set). On failure it returns a
     * negative code with err filled; what it left open is closed by port.c through close (when
     * p->pending > 0) or freed with free. Sets p->can_reset. */
    int (*open)(struct port *p, uint32_t baud, struct es_err *err);
    /* p->q gained bytes (or a wait ended): start handing them to the OS. */
    void (*kick)(struct port *p);
    /* port_set_baud after the generic checks (baud > 0, port live). */
    int (*set_baud)(struct port *p, uint32_t baud, struct es_err *err);
    /* port_set_lines after the generic checks (port live, p->can_reset). */
    int (*set_lines)(struct port *p, int dtr, int rts, struct es_err *err);
    /* port_flush_input on a port not closing. */
    void (*flush_input)(struct port *p);
    /* The port failed: stop all I/O (handles stay open until close). */
    void (*stop)(struct port *p);
    /* port_close: close every handle, each one's close callback ending in port_release. */
    void (*close)(struct port *p);
    /* After the last release (or a failed open with nothing pending): free what alloc and open
     * allocated, the transport struct included. */
    void (*free)(struct port *p);
};

/* The generic part of every port. Transports embed it and reach back with container_of. */
struct port {
    const struct port_ops *ops;
    uv_loop_t *loop;
    char *name;
    struct port_callbacks cb;
    void *arg;
    int can_reset; /* port_set_lines can work: set by the transport's open */
    int failed;    /* on_error was delivered: no more I/O */
    int closing;   /* port_close was called */
    int pending;   /* handles not yet closed + requests not yet completed; free at zero */
    void (*on_closed)(struct port *p, void *arg);
    struct outq q;    /* data towards the board, not yet taken by the transport */
    size_t in_flight; /* bytes the transport took from q and the OS has not yet completed */
};

/* Advice for EMFILE/ENFILE: every board holds a tty and a reset socket. */
#define OPEN_FILES_HINT                                                                            \
    "too many open files: raise the hard limit (ulimit -Hn, or LimitNOFILE= for a service) or "    \
    "flash fewer boards at once"

/* ---- port.c: generic helpers for the transports ---- */
int outq_push(struct outq *q, const uint8_t *data, size_t n);
void outq_consume(struct outq *q, size_t n);
void outq_free(struct outq *q);
/* port_open with the transport given: allocates through ops->alloc, fills the generic fields
 * and calls ops->open. Same contract as port_open. */
int port_open_ops(const struct port_ops *ops, uv_loop_t *loop, const char *name, uint32_t baud,
                  const struct port_callbacks *cb, void *arg, struct port **out,
                  struct es_err *err);
/* Bytes arrived from the board: calls on_data. Returns 1 while the port is still live, 0 when
 * the callback closed it (or it failed): the transport must then stop touching it. */
int port_received(struct port *p, const uint8_t *data, size_t n);
/* Reports a fatal error once: stops all I/O (ops->stop), then calls on_error. No-op when the
 * port already failed or is closing. */
void port_fail(struct port *p, enum es_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Drops one pending handle or request; the last one calls on_closed and frees the port. */
void port_release(struct port *p);

/* ---- port_sockname.c: what a socket:// name means (pure) ---- */
/* Splits "socket://HOST:PORT[?ctl=/path]" (HOST may be "[v6]") into new strings; *ctl is NULL
 * without ?ctl=. PORT must be a number from 1 to 65535. Returns 0, ES_PORT_OPEN naming what is
 * wrong, or ES_NOMEM; on failure nothing is left allocated. */
int port_sockname_split(const char *name, char **host, char **service, char **ctl,
                        struct es_err *err);

/* ---- the transports, reached from port.c only through these tables ---- */
extern const struct port_ops port_tty_ops; /* port_serial.c: ttys and pseudo-terminals */
extern const struct port_ops port_tcp_ops; /* port_tcp.c: socket://HOST:PORT */

#endif
