/* The generic half of every port: the write queue, error delivery (on_error at most once), the
 * close life cycle (count open handles, free in the last close callback), choosing the transport
 * from the name, and the public calls of include/es/port.h dispatched through p->ops.
 *
 * Dependencies go one way. The transports (port_serial.c, port_tcp.c, and the test-only
 * port_fake.c) call the helpers here, port_ctl.c and port_sockname.c; this file calls no
 * transport function by name, only through the ops tables port_tty_ops and port_tcp_ops. */
#define _DEFAULT_SOURCE
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "port_internal.h"

int outq_push(struct outq *q, const uint8_t *data, size_t n)
{
    if (n == 0)
        return 0;
    if (q->head > 0 && q->head + q->len + n > q->cap) {
        memmove(q->buf, q->buf + q->head, q->len); /* reuse the space already sent */
        q->head = 0;
    }
    if (q->head + q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        uint8_t *nb;

        while (cap < q->len + n)
            cap *= 2;
        nb = realloc(q->buf, cap);
        if (nb == NULL)
            return -1;
        q->buf = nb;
        q->cap = cap;
    }
    memcpy(q->buf + q->head + q->len, data, n);
    q->len += n;
    return 0;
}

void outq_consume(struct outq *q, size_t n)
{
    q->head += n;
    q->len -= n;
    if (q->len == 0)
        q->head = 0;
}

void outq_free(struct outq *q)
{
    free(q->buf);
    q->buf = NULL;
    q->head = q->len = q->cap = 0;
}

static void port_free(struct port *p)
{
    outq_free(&p->q);
    free(p->name);
    p->ops->free(p);
}

int port_received(struct port *p, const uint8_t *data, size_t n)
{
    p->cb.on_data(p, data, n, p->arg);
    return !p->closing && !p->failed;
}

void port_fail(struct port *p, enum es_code code, const char *fmt, ...)
{
    struct es_err err;
    va_list ap;

    if (p->failed || p->closing)
        return;
    p->failed = 1;
    p->ops->stop(p);
    va_start(ap, fmt);
    es_vfail(&err, code, fmt, ap);
    va_end(ap);
    if (p->cb.on_error != NULL)
        p->cb.on_error(p, &err, p->arg);
}

void port_release(struct port *p)
{
    assert(p->pending > 0); /* more closes than opens would be our own bug */
    if (--p->pending > 0)
        return;
    if (p->on_closed != NULL)
        p->on_closed(p, p->arg);
    port_free(p);
}

/* Releases what a failed open set up: handles close in the loop, the rest is freed then. */
static void abort_open(struct port *p)
{
    if (p->pending == 0) { /* nothing reached the loop; the opener closed its fds */
        port_free(p);
        return;
    }
    port_close(p, NULL);
}

int port_open_ops(const struct port_ops *ops, uv_loop_t *loop, const char *name, uint32_t baud,
                  const struct port_callbacks *cb, void *arg, struct port **out, struct es_err *err)
{
    struct port *p;
    int rc;

    *out = NULL;
    if (loop == NULL || name == NULL || cb == NULL || name[0] == '\0')
        return es_fail(err, ES_INVALID_ARG, "port_open: loop, name and callbacks are required");
    p = ops->alloc();
    if (p == NULL)
        return es_fail(err, ES_NOMEM, "port %s: out of memory", name);
    p->ops = ops;
    p->loop = loop;
    p->cb = *cb;
    p->arg = arg;
    p->name = strdup(name);
    if (p->name == NULL) {
        ops->free(p);
        return es_fail(err, ES_NOMEM, "port %s: out of memory", name);
    }
    rc = ops->open(p, baud, err);
    if (rc < 0) {
        abort_open(p);
        return rc;
    }
    *out = p;
    return 0;
}

int port_open(uv_loop_t *loop, const char *name, uint32_t baud, const struct port_callbacks *cb,
              void *arg, struct port **out, struct es_err *err)
{
    const struct port_ops *ops = &port_tty_ops;

    if (name != NULL && strncmp(name, PORT_SOCKET_PREFIX, strlen(PORT_SOCKET_PREFIX)) == 0)
        ops = &port_tcp_ops;
    return port_open_ops(ops, loop, name, baud, cb, arg, out, err);
}

int port_write(struct port *p, const uint8_t *data, size_t n, struct es_err *err)
{
    if (p->failed || p->closing)
        return es_fail(err, ES_PORT_CLOSED, "port %s is closed; cannot write", p->name);
    if (outq_push(&p->q, data, n) < 0)
        return es_fail(err, ES_NOMEM, "port %s: out of memory queueing %zu bytes", p->name, n);
    p->ops->kick(p);
    return 0;
}

size_t port_write_queued(const struct port *p)
{
    return p->q.len + p->in_flight;
}

int port_set_baud(struct port *p, uint32_t baud, struct es_err *err)
{
    if (baud == 0)
        return es_fail(err, ES_INVALID_ARG, "port %s: baud rate 0", p->name);
    if (p->failed || p->closing)
        return es_fail(err, ES_PORT_CLOSED, "port %s is closed; cannot change baud", p->name);
    return p->ops->set_baud(p, baud, err);
}

int port_set_lines(struct port *p, int dtr, int rts, struct es_err *err)
{
    if (p->failed || p->closing)
        return es_fail(err, ES_PORT_CLOSED, "port %s is closed; cannot set DTR/RTS", p->name);
    if (!p->can_reset)
        return es_fail(err, ES_UNSUPPORTED,
                       "port %s has no DTR/RTS lines (pseudo-terminal or socket without a "
                       "control socket); reset the board by hand into download mode",
                       p->name);
    return p->ops->set_lines(p, dtr, rts, err);
}

int port_can_reset(const struct port *p)
{
    return p->can_reset;
}

void port_flush_input(struct port *p)
{
    if (!p->closing)
        p->ops->flush_input(p);
}

const char *port_name(const struct port *p)
{
    return p->name;
}

void port_close(struct port *p, void (*on_closed)(struct port *p, void *arg))
{
    assert(!p->closing); /* closing twice is our own bug */
    p->closing = 1;
    p->on_closed = on_closed;
    outq_free(&p->q);
    p->ops->close(p);
}
