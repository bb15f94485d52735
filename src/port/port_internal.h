/* What the files of src/port share: the port struct itself, the byte queue, and the entry
 * points of each kind (tty in port_serial.c, socket:// in port_tcp.c). Nothing outside src/port
 * includes this; the rest of the program sees only include/es/port.h. */
#ifndef ES_PORT_INTERNAL_H
#define ES_PORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "es/err.h"
#include "es/port.h"
#include "port_setspeed.h"

struct sp_port;

enum port_kind { PORT_KIND_TTY, PORT_KIND_TCP };

/* How port_set_lines reaches the board, decided at open. */
enum port_lines {
    PORT_LINES_NONE,  /* reset by hand: pty without .ctl, socket without ?ctl= */
    PORT_LINES_MODEM, /* TIOCMSET on the tty */
    PORT_LINES_CTL,   /* text lines on a Unix control socket (espsim) */
};

/* Bytes waiting to be handed to the OS: buf[head .. head+len). */
struct outq {
    uint8_t *buf;
    size_t head;
    size_t len;
    size_t cap;
};

struct port {
    uv_loop_t *loop;
    enum port_kind kind;
    char *name;
    struct port_callbacks cb;
    void *arg;
    enum port_lines lines;
    int failed;  /* on_error was delivered: no more I/O */
    int closing; /* port_close was called */
    int pending; /* handles not yet closed + requests not yet completed; free at zero */
    void (*on_closed)(struct port *p, void *arg);

    struct outq q; /* data towards the board */
    uint32_t baud; /* the rate the line runs at now */
    int baud_pending;
    uint32_t baud_next;
    size_t barrier; /* with baud_pending: bytes at the front of q still due at the old rate */

    /* tty */
    int fd;
    struct sp_port *sp; /* NULL when opened through plain termios */
    int exclusive;      /* TIOCEXCL is set: cleared again before the close */
    uv_poll_t poll;
    int poll_init;
    int poll_events;
    uv_timer_t drain_timer; /* waits for the OS output queue before a baud change */
    int timer_init;

    /* control socket for the reset lines */
    char *ctl_path;
    int ctl_fd;
    uv_poll_t ctl_poll;
    int ctl_init;
    struct outq ctl_q;

    /* socket:// */
    char *host;
    char *service;
    uv_tcp_t tcp;
    int tcp_init;
    int connected;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai_req;
    int gai_pending;
    uv_write_t write_req;
    uint8_t *inflight; /* the buffer uv_write owns until its callback */
    size_t inflight_len;
    uint8_t rbuf[4096];
};

/* Advice for EMFILE/ENFILE: every board holds a tty and a reset socket. */
#define OPEN_FILES_HINT                                                                            \
    "too many open files: raise the hard limit (ulimit -Hn, or LimitNOFILE= for a service) or "    \
    "flash fewer boards at once"

/* port.c */
int outq_push(struct outq *q, const uint8_t *data, size_t n);
void outq_consume(struct outq *q, size_t n);
void outq_free(struct outq *q);
/* Reports a fatal error once: stops all I/O, then calls on_error. No-op when closing. */
void port_fail(struct port *p, enum es_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Drops one pending handle or request; the last one calls on_closed and frees the port. */
void port_release(struct port *p);
void port_on_handle_closed(uv_handle_t *h); /* close callback: port_release(h->data) */
/* Connects the control socket at path (a Unix stream socket); sets p->lines = PORT_LINES_CTL. */
int port_ctl_open(struct port *p, const char *path, struct es_err *err);

/* port_serial.c */
int tty_open(struct port *p, uint32_t baud, struct es_err *err);
void tty_kick(struct port *p); /* recompute poll events after the queue changed */
int tty_set_baud(struct port *p, uint32_t baud, struct es_err *err);
int tty_set_lines(struct port *p, int dtr, int rts, struct es_err *err);
void tty_flush_input(struct port *p);
void tty_stop(struct port *p);
void tty_close(struct port *p);

/* port_tcp.c */
int tcp_open(struct port *p, struct es_err *err);
void tcp_kick(struct port *p);
void tcp_stop(struct port *p);
void tcp_close(struct port *p);

#endif
