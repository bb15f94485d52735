/* The port ops table: picks the kind from the name, owns the write queue, error delivery, the
 * espsim control socket and the close protocol (count open handles, free in the last close
 * callback). The tty and socket details live in port_serial.c and port_tcp.c. */
#define _DEFAULT_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "port_internal.h"

#define SOCKET_PREFIX "socket://"

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
    outq_free(&p->ctl_q);
    free(p->inflight);
    free(p->name);
    free(p->ctl_path);
    free(p->host);
    free(p->service);
    free(p);
}

static void stop_io(struct port *p)
{
    if (p->kind == PORT_KIND_TTY)
        tty_stop(p);
    else
        tcp_stop(p);
    if (p->ctl_init)
        uv_poll_stop(&p->ctl_poll);
}

void port_fail(struct port *p, enum es_code code, const char *fmt, ...)
{
    struct es_err err;
    va_list ap;

    if (p->failed || p->closing)
        return;
    p->failed = 1;
    stop_io(p);
    va_start(ap, fmt);
    es_vfail(&err, code, fmt, ap);
    va_end(ap);
    if (p->cb.on_error != NULL)
        p->cb.on_error(p, &err, p->arg);
}

void port_on_handle_closed(uv_handle_t *h)
{
    port_release(h->data);
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

static void on_ctl_poll(uv_poll_t *h, int status, int events);

static void on_ctl_closed(uv_handle_t *h)
{
    struct port *p = h->data;

    close(p->ctl_fd); /* only now: uv_poll wants the fd alive until its handle is closed */
    p->ctl_fd = -1;
    port_on_handle_closed(h);
}

static int ctl_flush(struct port *p, struct es_err *err)
{
    while (p->ctl_q.len > 0) {
        ssize_t n = send(p->ctl_fd, p->ctl_q.buf + p->ctl_q.head, p->ctl_q.len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            return es_fail(err, ES_PORT_IO,
                           "port %s: write to control socket %s: %s; is the simulator still "
                           "running?",
                           p->name, p->ctl_path, strerror(errno));
        outq_consume(&p->ctl_q, (size_t)n);
    }
    if (p->ctl_q.len > 0)
        uv_poll_start(&p->ctl_poll, UV_WRITABLE, on_ctl_poll);
    else
        uv_poll_stop(&p->ctl_poll);
    return 0;
}

static void on_ctl_poll(uv_poll_t *h, int status, int events)
{
    struct port *p = h->data;
    struct es_err err;

    (void)events;
    if (status < 0) {
        port_fail(p, ES_PORT_IO, "port %s: control socket %s: %s", p->name, p->ctl_path,
                  uv_strerror(status));
        return;
    }
    if (ctl_flush(p, &err) < 0)
        port_fail(p, err.code, "%s", err.msg);
}

int port_ctl_open(struct port *p, const char *path, struct es_err *err)
{
    struct sockaddr_un sa;
    int fd, rc;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return es_fail(err, ES_PORT_OPEN,
                       "port %s: control socket path %s is longer than %zu bytes; use a "
                       "shorter directory",
                       p->name, path, sizeof(sa.sun_path) - 1);
    strcpy(sa.sun_path, path);
    p->ctl_path = strdup(path);
    if (p->ctl_path == NULL)
        return es_fail(err, ES_NOMEM, "port %s: out of memory", p->name);
    /* Non-blocking from the start: a Unix connect either completes at once or fails with
     * EAGAIN when the listener's backlog is full, so open never waits on a hung simulator. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;

        return es_fail(err, ES_PORT_OPEN, "port %s: socket(AF_UNIX): %s%s%s", p->name, strerror(e),
                       e == EMFILE || e == ENFILE ? "; " : "",
                       e == EMFILE || e == ENFILE ? OPEN_FILES_HINT : "");
    }
    if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        close(fd);
        return es_fail(err, ES_PORT_OPEN,
                       "port %s: connect to control socket %s: %s; is the simulator running?",
                       p->name, path, strerror(e));
    }
    rc = uv_poll_init_socket(p->loop, &p->ctl_poll, fd);
    if (rc < 0) {
        close(fd);
        return es_fail(err, ES_PORT_OPEN, "port %s: watch control socket %s: %s", p->name, path,
                       uv_strerror(rc));
    }
    p->ctl_poll.data = p;
    p->ctl_init = 1;
    p->pending++;
    p->ctl_fd = fd;
    p->lines = PORT_LINES_CTL;
    return 0;
}

/* Splits "socket://HOST:PORT[?ctl=/path]" (HOST may be "[v6]") into new strings; *ctl is NULL
 * without ?ctl=. PORT must be a number from 1 to 65535. Returns 0, ES_PORT_OPEN naming what is
 * wrong, or ES_NOMEM; on failure nothing is left allocated. */
static int split_socket_name(const char *name, char **host, char **service, char **ctl,
                             struct es_err *err)
{
    const char *s = name + strlen(SOCKET_PREFIX);
    const char *q = strchr(s, '?');
    const char *hp_end = q ? q : s + strlen(s);
    const char *colon, *host_start = s, *host_end;
    unsigned long number = 0;

    *host = *service = *ctl = NULL;
    if (*s == '[') { /* [::1]:5000 */
        host_start = s + 1;
        host_end = memchr(s, ']', (size_t)(hp_end - s));
        if (host_end == NULL || host_end[1] != ':')
            goto bad;
        colon = host_end + 1;
    } else {
        colon = NULL;
        for (const char *c = s; c < hp_end; c++)
            if (*c == ':')
                colon = c;
        if (colon == NULL)
            goto bad;
        host_end = colon;
    }
    if (host_end == host_start || colon + 1 >= hp_end)
        goto bad;
    for (const char *c = colon + 1; c < hp_end; c++) {
        if (*c < '0' || *c > '9')
            goto bad;
        if (number <= 65535)
            number = number * 10 + (unsigned long)(*c - '0');
    }
    if (number == 0 || number > 65535)
        return es_fail(err, ES_PORT_OPEN,
                       "port %s: the TCP port number %.*s is not from 1 to 65535", name,
                       (int)(hp_end - colon - 1), colon + 1);
    if (q != NULL && (strncmp(q, "?ctl=", 5) != 0 || q[5] == '\0'))
        return es_fail(err, ES_PORT_OPEN,
                       "port %s: unknown option '%s'; the only one is ?ctl=/path/to/socket", name,
                       q);
    *host = strndup(host_start, (size_t)(host_end - host_start));
    *service = strndup(colon + 1, (size_t)(hp_end - colon - 1));
    *ctl = q != NULL ? strdup(q + 5) : NULL;
    if (*host == NULL || *service == NULL || (q != NULL && *ctl == NULL)) {
        free(*host);
        free(*service);
        free(*ctl);
        *host = *service = *ctl = NULL;
        return es_fail(err, ES_NOMEM, "port %s: out of memory", name);
    }
    return 0;
bad:
    return es_fail(err, ES_PORT_OPEN,
                   "port %s: expected socket://HOST:PORT[?ctl=/path], e.g. "
                   "socket://127.0.0.1:5000",
                   name);
}

/* "socket://h:p?ctl=/x" -> host/service for port_tcp.c, and the control socket. */
static int parse_socket_name(struct port *p, struct es_err *err)
{
    return split_socket_name(p->name, &p->host, &p->service, &p->ctl_path, err);
}

int port_check_name(const char *name, struct es_err *err)
{
    char *host, *service, *ctl;
    int rc;

    if (name == NULL || name[0] == '\0')
        return es_fail(err, ES_USAGE,
                       "an empty port name; give a device such as /dev/ttyUSB0 "
                       "or socket://HOST:PORT");
    if (strncmp(name, SOCKET_PREFIX, strlen(SOCKET_PREFIX)) != 0)
        return 0;
    rc = split_socket_name(name, &host, &service, &ctl, err);
    if (rc < 0) {
        if (err != NULL && err->code == ES_PORT_OPEN)
            err->code = ES_USAGE;
        return rc == -(int)ES_PORT_OPEN ? -(int)ES_USAGE : rc;
    }
    free(host);
    free(service);
    free(ctl);
    return 0;
}

/* Releases what a failed open set up: handles close in the loop, the rest is freed then. */
static void abort_open(struct port *p)
{
    if (p->pending == 0) { /* nothing reached the loop; the openers closed their fds */
        port_free(p);
        return;
    }
    port_close(p, NULL);
}

int port_open(uv_loop_t *loop, const char *name, uint32_t baud, const struct port_callbacks *cb,
              void *arg, struct port **out, struct es_err *err)
{
    struct port *p;
    int rc;

    *out = NULL;
    if (loop == NULL || name == NULL || cb == NULL || name[0] == '\0')
        return es_fail(err, ES_INVALID_ARG, "port_open: loop, name and callbacks are required");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return es_fail(err, ES_NOMEM, "port %s: out of memory", name);
    p->loop = loop;
    p->cb = *cb;
    p->arg = arg;
    p->fd = -1;
    p->ctl_fd = -1;
    p->baud = baud;
    p->name = strdup(name);
    if (p->name == NULL) {
        free(p);
        return es_fail(err, ES_NOMEM, "port %s: out of memory", name);
    }
    if (strncmp(name, SOCKET_PREFIX, strlen(SOCKET_PREFIX)) == 0) {
        p->kind = PORT_KIND_TCP;
        rc = parse_socket_name(p, err);
        if (rc == 0)
            rc = tcp_open(p, err);
        if (rc == 0 && p->ctl_path != NULL) {
            char *path = p->ctl_path;

            p->ctl_path = NULL;
            rc = port_ctl_open(p, path, err);
            free(path);
        }
    } else {
        p->kind = PORT_KIND_TTY;
        if (baud == 0)
            rc = es_fail(err, ES_INVALID_ARG, "port %s: baud rate 0", name);
        else
            rc = tty_open(p, baud, err);
    }
    if (rc < 0) {
        abort_open(p);
        return rc;
    }
    *out = p;
    return 0;
}

int port_write(struct port *p, const uint8_t *data, size_t n, struct es_err *err)
{
    if (p->failed || p->closing)
        return es_fail(err, ES_PORT_CLOSED, "port %s is closed; cannot write", p->name);
    if (outq_push(&p->q, data, n) < 0)
        return es_fail(err, ES_NOMEM, "port %s: out of memory queueing %zu bytes", p->name, n);
    if (p->kind == PORT_KIND_TTY)
        tty_kick(p);
    else
        tcp_kick(p);
    return 0;
}

size_t port_write_queued(const struct port *p)
{
    return p->q.len + p->inflight_len;
}

int port_set_baud(struct port *p, uint32_t baud, struct es_err *err)
{
    if (baud == 0)
        return es_fail(err, ES_INVALID_ARG, "port %s: baud rate 0", p->name);
    if (p->failed || p->closing)
        return es_fail(err, ES_PORT_CLOSED, "port %s is closed; cannot change baud", p->name);
    if (p->kind == PORT_KIND_TCP)
        return 0;
    return tty_set_baud(p, baud, err);
}

int port_set_lines(struct port *p, int dtr, int rts, struct es_err *err)
{
    char line[32];
    int len;

    if (p->failed || p->closing)
        return es_fail(err, ES_PORT_CLOSED, "port %s is closed; cannot set DTR/RTS", p->name);
    switch (p->lines) {
    case PORT_LINES_NONE:
        return es_fail(err, ES_UNSUPPORTED,
                       "port %s has no DTR/RTS lines (pseudo-terminal or socket without a "
                       "control socket); reset the board by hand into download mode",
                       p->name);
    case PORT_LINES_MODEM: return tty_set_lines(p, dtr, rts, err);
    case PORT_LINES_CTL: break;
    }
    len = snprintf(line, sizeof(line), "DTR=%d RTS=%d\n", dtr ? 1 : 0, rts ? 1 : 0);
    if (outq_push(&p->ctl_q, (const uint8_t *)line, (size_t)len) < 0)
        return es_fail(err, ES_NOMEM, "port %s: out of memory", p->name);
    return ctl_flush(p, err);
}

int port_can_reset(const struct port *p)
{
    return p->lines != PORT_LINES_NONE;
}

void port_flush_input(struct port *p)
{
    if (p->kind == PORT_KIND_TTY && !p->closing)
        tty_flush_input(p);
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
    p->baud_pending = 0;
    p->barrier = 0;
    if (p->kind == PORT_KIND_TTY)
        tty_close(p);
    else
        tcp_close(p);
    if (p->ctl_init) {
        p->ctl_init = 0;
        uv_close((uv_handle_t *)&p->ctl_poll, on_ctl_closed);
    }
}
