/* The socket://HOST:PORT[?ctl=/path] transport over uv_tcp: resolve (asynchronously unless the
 * host is numeric), connect, then stream bytes both ways. Writes queue in the port's outq until
 * connected and go out as one uv_write at a time, so port_write_queued stays exact. The rate is
 * the bridge's business: set_baud and flush_input do nothing here. Reset lines go to the
 * optional ?ctl= control socket (port_ctl.c). */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>

#include "port_ctl.h"
#include "port_internal.h"

/* A socket:// port: the generic struct port and the TCP connection. */
struct tcp_port {
    struct port port;
    char *host;
    char *service;
    uv_tcp_t tcp;
    int tcp_init;
    int connected;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai_req;
    int gai_pending;
    uv_write_t write_req;
    uint8_t *inflight; /* the buffer uv_write owns until its callback (port.in_flight bytes) */
    uint8_t rbuf[4096];
    struct port_ctl ctl; /* ?ctl=: where the reset lines go */
};

static struct tcp_port *tcp_of(struct port *p)
{
    return container_of(p, struct tcp_port, port);
}

static void kick(struct tcp_port *t);

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tcp_port *t = container_of((uv_tcp_t *)h, struct tcp_port, tcp);

    (void)suggested;
    buf->base = (char *)t->rbuf;
    buf->len = sizeof(t->rbuf);
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_port *t = container_of((uv_tcp_t *)s, struct tcp_port, tcp);

    if (t->port.closing || t->port.failed)
        return;
    if (nread > 0) {
        port_received(&t->port, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (nread == UV_EOF || nread == UV_ECONNRESET || nread == UV_EPIPE)
        port_fail(&t->port, ES_PORT_CLOSED, "port %s closed by the other end (%s)", t->port.name,
                  uv_strerror((int)nread));
    else if (nread < 0)
        port_fail(&t->port, ES_PORT_IO, "port %s: read: %s", t->port.name, uv_strerror((int)nread));
}

static void on_tcp_write(uv_write_t *req, int status)
{
    struct tcp_port *t = container_of(req, struct tcp_port, write_req);

    free(t->inflight);
    t->inflight = NULL;
    t->port.in_flight = 0;
    if (status == UV_ECANCELED || t->port.closing || t->port.failed)
        return;
    if (status < 0) {
        port_fail(&t->port,
                  status == UV_EPIPE || status == UV_ECONNRESET ? ES_PORT_CLOSED : ES_PORT_IO,
                  "port %s: write: %s", t->port.name, uv_strerror(status));
        return;
    }
    kick(t);
}

static void kick(struct tcp_port *t)
{
    uv_buf_t buf;
    int rc;

    if (!t->connected || t->port.closing || t->port.failed || t->inflight != NULL ||
        t->port.q.len == 0)
        return;
    /* Hand the whole queue to libuv: it owns these bytes until on_tcp_write. */
    if (t->port.q.head > 0)
        memmove(t->port.q.buf, t->port.q.buf + t->port.q.head, t->port.q.len);
    t->inflight = t->port.q.buf;
    t->port.in_flight = t->port.q.len;
    t->port.q.buf = NULL;
    t->port.q.head = t->port.q.len = t->port.q.cap = 0;
    buf = uv_buf_init((char *)t->inflight, (unsigned)t->port.in_flight);
    rc = uv_write(&t->write_req, (uv_stream_t *)&t->tcp, &buf, 1, on_tcp_write);
    if (rc < 0) {
        free(t->inflight);
        t->inflight = NULL;
        t->port.in_flight = 0;
        port_fail(&t->port, ES_PORT_IO, "port %s: write: %s", t->port.name, uv_strerror(rc));
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct tcp_port *t = container_of(req, struct tcp_port, connect_req);
    int rc;

    if (status == UV_ECANCELED || t->port.closing || t->port.failed)
        return;
    if (status < 0) {
        port_fail(&t->port, ES_PORT_OPEN,
                  "port %s: connect to %s:%s: %s; is the server (espsim --tcp) "
                  "running?",
                  t->port.name, t->host, t->service, uv_strerror(status));
        return;
    }
    t->connected = 1;
    /* Requests and replies are small and strictly alternate: Nagle would only add delay. */
    uv_tcp_nodelay(&t->tcp, 1);
    rc = uv_read_start((uv_stream_t *)&t->tcp, on_tcp_alloc, on_tcp_read);
    if (rc < 0) {
        port_fail(&t->port, ES_PORT_IO, "port %s: uv_read_start: %s", t->port.name,
                  uv_strerror(rc));
        return;
    }
    kick(t);
}

static int start_connect(struct tcp_port *t, const struct sockaddr *sa)
{
    return uv_tcp_connect(&t->connect_req, &t->tcp, sa, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct tcp_port *t = container_of(req, struct tcp_port, gai_req);
    struct addrinfo *ai;
    int rc;

    t->gai_pending = 0;
    if (t->port.closing || t->port.failed || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        port_release(&t->port); /* may be the last thing keeping a closing port alive */
        return;
    }
    port_release(&t->port); /* the tcp handle still holds the port */
    if (status < 0) {
        port_fail(&t->port, ES_PORT_OPEN, "port %s: resolve host '%s': %s", t->port.name, t->host,
                  uv_strerror(status));
        return;
    }
    /* Prefer IPv4: "localhost" often lists ::1 first, while espsim and most serial-to-TCP
     * bridges listen on 127.0.0.1 only. */
    for (ai = res; ai != NULL && ai->ai_family != AF_INET; ai = ai->ai_next)
        ;
    rc = start_connect(t, (ai != NULL ? ai : res)->ai_addr);
    uv_freeaddrinfo(res);
    if (rc < 0)
        port_fail(&t->port, ES_PORT_OPEN, "port %s: connect to %s:%s: %s", t->port.name, t->host,
                  t->service, uv_strerror(rc));
}

/* Opens the TCP connection to t->host:t->service. */
static int connect_start(struct tcp_port *t, struct es_err *err)
{
    struct sockaddr_storage ss;
    struct addrinfo hints;
    int rc, portnum = atoi(t->service);

    if (portnum <= 0 || portnum > 65535)
        return es_fail(err, ES_PORT_OPEN, "port %s: TCP port %s is not in 1..65535", t->port.name,
                       t->service);
    rc = uv_tcp_init(t->port.loop, &t->tcp);
    if (rc < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: uv_tcp_init: %s", t->port.name,
                       uv_strerror(rc));
    t->tcp_init = 1;
    t->port.pending++;
    if (uv_ip4_addr(t->host, portnum, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(t->host, portnum, (struct sockaddr_in6 *)&ss) == 0) {
        rc = start_connect(t, (const struct sockaddr *)&ss);
        if (rc < 0)
            return es_fail(err, ES_PORT_OPEN, "port %s: connect to %s:%s: %s", t->port.name,
                           t->host, t->service, uv_strerror(rc));
        return 0;
    }
    /* A host name: getaddrinfo blocks, so it runs on libuv's thread pool. */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = uv_getaddrinfo(t->port.loop, &t->gai_req, on_resolved, t->host, t->service, &hints);
    if (rc < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: resolve host '%s': %s", t->port.name, t->host,
                       uv_strerror(rc));
    t->gai_pending = 1;
    t->port.pending++;
    return 0;
}

/* ---- The ops ---- */

static int tcp_open(struct port *p, uint32_t baud, struct es_err *err)
{
    struct tcp_port *t = tcp_of(p);
    char *ctl = NULL;
    int rc;

    (void)baud; /* the rate belongs to whatever bridges the socket to the board */
    rc = port_sockname_split(p->name, &t->host, &t->service, &ctl, err);
    if (rc == 0)
        rc = connect_start(t, err);
    if (rc == 0 && ctl != NULL) {
        rc = port_ctl_open(&t->ctl, p, ctl, err);
        if (rc == 0)
            p->can_reset = 1;
    }
    free(ctl);
    return rc;
}

static void tcp_kick(struct port *p)
{
    kick(tcp_of(p));
}

static int tcp_set_baud(struct port *p, uint32_t baud, struct es_err *err)
{
    (void)p;
    (void)baud;
    (void)err;
    return 0;
}

static int tcp_set_lines(struct port *p, int dtr, int rts, struct es_err *err)
{
    return port_ctl_set_lines(&tcp_of(p)->ctl, dtr, rts, err);
}

static void tcp_flush_input(struct port *p)
{
    (void)p; /* bytes in flight on a socket cannot be told apart from new ones */
}

static void tcp_stop(struct port *p)
{
    struct tcp_port *t = tcp_of(p);

    if (t->tcp_init && t->connected)
        uv_read_stop((uv_stream_t *)&t->tcp);
    port_ctl_stop(&t->ctl);
}

static void on_tcp_closed(uv_handle_t *h)
{
    port_release(&container_of((uv_tcp_t *)h, struct tcp_port, tcp)->port);
}

static void tcp_close(struct port *p)
{
    struct tcp_port *t = tcp_of(p);

    /* A resolution still running is cancelled; its callback (UV_ECANCELED, or a late success)
     * drops the pending count. Connect and write requests get UV_ECANCELED before the close
     * callback of the handle. */
    if (t->gai_pending)
        uv_cancel((uv_req_t *)&t->gai_req);
    if (t->tcp_init) {
        t->tcp_init = 0;
        uv_close((uv_handle_t *)&t->tcp, on_tcp_closed);
    }
    port_ctl_close(&t->ctl);
}

static struct port *tcp_alloc(void)
{
    struct tcp_port *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->ctl.fd = -1;
    return &t->port;
}

static void tcp_free(struct port *p)
{
    struct tcp_port *t = tcp_of(p);

    port_ctl_free(&t->ctl);
    free(t->inflight);
    free(t->host);
    free(t->service);
    free(t);
}

const struct port_ops port_tcp_ops = {
    .name = "tcp",
    .alloc = tcp_alloc,
    .open = tcp_open,
    .kick = tcp_kick,
    .set_baud = tcp_set_baud,
    .set_lines = tcp_set_lines,
    .flush_input = tcp_flush_input,
    .stop = tcp_stop,
    .close = tcp_close,
    .free = tcp_free,
};
