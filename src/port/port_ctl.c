/* The espsim control socket of a tty or socket:// port (port_ctl.h): connect without waiting,
 * queue reset lines, write them as the socket takes them. Depends only on port.c's generic
 * helpers; the transports that need it embed a struct port_ctl. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "port_ctl.h"

static void on_ctl_poll(uv_poll_t *h, int status, int events);

static void on_ctl_closed(uv_handle_t *h)
{
    struct port_ctl *c = container_of((uv_poll_t *)h, struct port_ctl, poll);

    close(c->fd); /* only now: uv_poll wants the fd alive until its handle is closed */
    c->fd = -1;
    port_release(c->port);
}

static int ctl_flush(struct port_ctl *c, struct es_err *err)
{
    while (c->q.len > 0) {
        ssize_t n = send(c->fd, c->q.buf + c->q.head, c->q.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            return es_fail(err, ES_PORT_IO,
                           "port %s: write to control socket %s: %s; is the simulator still "
                           "running?",
                           c->port->name, c->path, strerror(errno));
        outq_consume(&c->q, (size_t)n);
    }
    if (c->q.len > 0)
        uv_poll_start(&c->poll, UV_WRITABLE, on_ctl_poll);
    else
        uv_poll_stop(&c->poll);
    return 0;
}

static void on_ctl_poll(uv_poll_t *h, int status, int events)
{
    struct port_ctl *c = container_of(h, struct port_ctl, poll);
    struct es_err err;

    (void)events;
    if (status < 0) {
        port_fail(c->port, ES_PORT_IO, "port %s: control socket %s: %s", c->port->name, c->path,
                  uv_strerror(status));
        return;
    }
    if (ctl_flush(c, &err) < 0)
        port_fail(c->port, err.code, "%s", err.msg);
}

int port_ctl_open(struct port_ctl *c, struct port *p, const char *path, struct es_err *err)
{
    struct sockaddr_un sa;
    int fd, rc;

    c->port = p;
    c->fd = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return es_fail(err, ES_PORT_OPEN,
                       "port %s: control socket path %s is longer than %zu bytes; use a "
                       "shorter directory",
                       p->name, path, sizeof(sa.sun_path) - 1);
    strcpy(sa.sun_path, path);
    c->path = strdup(path);
    if (c->path == NULL)
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
    rc = uv_poll_init_socket(p->loop, &c->poll, fd);
    if (rc < 0) {
        close(fd);
        return es_fail(err, ES_PORT_OPEN, "port %s: watch control socket %s: %s", p->name, path,
                       uv_strerror(rc));
    }
    c->open = 1;
    p->pending++;
    c->fd = fd;
    return 0;
}

int port_ctl_set_lines(struct port_ctl *c, int dtr, int rts, struct es_err *err)
{
    char line[32];
    int len = snprintf(line, sizeof(line), "DTR=%d RTS=%d\n", dtr ? 1 : 0, rts ? 1 : 0);

    if (outq_push(&c->q, (const uint8_t *)line, (size_t)len) < 0)
        return es_fail(err, ES_NOMEM, "port %s: out of memory", c->port->name);
    return ctl_flush(c, err);
}

void port_ctl_stop(struct port_ctl *c)
{
    if (c->open)
        uv_poll_stop(&c->poll);
}

void port_ctl_close(struct port_ctl *c)
{
    if (c->open) {
        c->open = 0;
        uv_close((uv_handle_t *)&c->poll, on_ctl_closed);
    }
}

void port_ctl_free(struct port_ctl *c)
{
    outq_free(&c->q);
    free(c->path);
    c->path = NULL;
}
