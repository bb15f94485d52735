/* socket://host:port ports over uv_tcp: resolve (asynchronously unless the host is numeric),
 * connect, then stream bytes both ways. Writes queue in the port's outq until connected and
 * go out as one uv_write at a time, so port_write_queued stays exact. */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>

#include "port_internal.h"

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct port *p = h->data;

    (void)suggested;
    buf->base = (char *)p->rbuf;
    buf->len = sizeof(p->rbuf);
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct port *p = s->data;

    if (p->closing || p->failed)
        return;
    if (nread > 0) {
        p->cb.on_data(p, (const uint8_t *)buf->base, (size_t)nread, p->arg);
        return;
    }
    if (nread == UV_EOF || nread == UV_ECONNRESET || nread == UV_EPIPE)
        port_fail(p, ES_PORT_CLOSED, "port %s closed by the other end (%s)", p->name,
                  uv_strerror((int)nread));
    else if (nread < 0)
        port_fail(p, ES_PORT_IO, "port %s: read: %s", p->name, uv_strerror((int)nread));
}

static void on_tcp_write(uv_write_t *req, int status)
{
    struct port *p = req->data;

    free(p->inflight);
    p->inflight = NULL;
    p->inflight_len = 0;
    if (status == UV_ECANCELED || p->closing || p->failed)
        return;
    if (status < 0) {
        port_fail(p, status == UV_EPIPE || status == UV_ECONNRESET ? ES_PORT_CLOSED : ES_PORT_IO,
                  "port %s: write: %s", p->name, uv_strerror(status));
        return;
    }
    tcp_kick(p);
}

void tcp_kick(struct port *p)
{
    uv_buf_t buf;
    int rc;

    if (!p->connected || p->closing || p->failed || p->inflight != NULL || p->q.len == 0)
        return;
    /* Hand the whole queue to libuv: it owns these bytes until on_tcp_write. */
    if (p->q.head > 0)
        memmove(p->q.buf, p->q.buf + p->q.head, p->q.len);
    p->inflight = p->q.buf;
    p->inflight_len = p->q.len;
    p->q.buf = NULL;
    p->q.head = p->q.len = p->q.cap = 0;
    buf = uv_buf_init((char *)p->inflight, (unsigned)p->inflight_len);
    p->write_req.data = p;
    rc = uv_write(&p->write_req, (uv_stream_t *)&p->tcp, &buf, 1, on_tcp_write);
    if (rc < 0) {
        free(p->inflight);
        p->inflight = NULL;
        p->inflight_len = 0;
        port_fail(p, ES_PORT_IO, "port %s: write: %s", p->name, uv_strerror(rc));
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct port *p = req->data;
    int rc;

    if (status == UV_ECANCELED || p->closing || p->failed)
        return;
    if (status < 0) {
        port_fail(p, ES_PORT_OPEN,
                  "port %s: connect to %s:%s: %s; is the server (espsim --tcp) "
                  "running?",
                  p->name, p->host, p->service, uv_strerror(status));
        return;
    }
    p->connected = 1;
    /* Requests and replies are small and strictly alternate: Nagle would only add delay. */
    uv_tcp_nodelay(&p->tcp, 1);
    rc = uv_read_start((uv_stream_t *)&p->tcp, on_tcp_alloc, on_tcp_read);
    if (rc < 0) {
        port_fail(p, ES_PORT_IO, "port %s: uv_read_start: %s", p->name, uv_strerror(rc));
        return;
    }
    tcp_kick(p);
}

static int start_connect(struct port *p, const struct sockaddr *sa)
{
    p->connect_req.data = p;
    return uv_tcp_connect(&p->connect_req, &p->tcp, sa, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct port *p = req->data;
    struct addrinfo *ai;
    int rc;

    p->gai_pending = 0;
    if (p->closing || p->failed || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        port_release(p); /* may be the last thing keeping a closing port alive */
        return;
    }
    port_release(p); /* the tcp handle still holds the port */
    if (status < 0) {
        port_fail(p, ES_PORT_OPEN, "port %s: resolve host '%s': %s", p->name, p->host,
                  uv_strerror(status));
        return;
    }
    /* Prefer IPv4: "localhost" often lists ::1 first, while espsim and most serial-to-TCP
     * bridges listen on 127.0.0.1 only. */
    for (ai = res; ai != NULL && ai->ai_family != AF_INET; ai = ai->ai_next)
        ;
    rc = start_connect(p, (ai != NULL ? ai : res)->ai_addr);
    uv_freeaddrinfo(res);
    if (rc < 0)
        port_fail(p, ES_PORT_OPEN, "port %s: connect to %s:%s: %s", p->name, p->host, p->service,
                  uv_strerror(rc));
}

int tcp_open(struct port *p, struct es_err *err)
{
    struct sockaddr_storage ss;
    struct addrinfo hints;
    int rc, portnum = atoi(p->service);

    if (portnum <= 0 || portnum > 65535)
        return es_fail(err, ES_PORT_OPEN, "port %s: TCP port %s is not in 1..65535", p->name,
                       p->service);
    rc = uv_tcp_init(p->loop, &p->tcp);
    if (rc < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: uv_tcp_init: %s", p->name, uv_strerror(rc));
    p->tcp.data = p;
    p->tcp_init = 1;
    p->pending++;
    if (uv_ip4_addr(p->host, portnum, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(p->host, portnum, (struct sockaddr_in6 *)&ss) == 0) {
        rc = start_connect(p, (const struct sockaddr *)&ss);
        if (rc < 0)
            return es_fail(err, ES_PORT_OPEN, "port %s: connect to %s:%s: %s", p->name, p->host,
                           p->service, uv_strerror(rc));
        return 0;
    }
    /* A host name: getaddrinfo blocks, so it runs on libuv's thread pool. */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    p->gai_req.data = p;
    rc = uv_getaddrinfo(p->loop, &p->gai_req, on_resolved, p->host, p->service, &hints);
    if (rc < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: resolve host '%s': %s", p->name, p->host,
                       uv_strerror(rc));
    p->gai_pending = 1;
    p->pending++;
    return 0;
}

void tcp_stop(struct port *p)
{
    if (p->tcp_init && p->connected)
        uv_read_stop((uv_stream_t *)&p->tcp);
}

void tcp_close(struct port *p)
{
    /* A resolution still running is cancelled; its callback (UV_ECANCELED, or a late success)
     * drops the pending count. Connect and write requests get UV_ECANCELED before the close
     * callback of the handle. */
    if (p->gai_pending)
        uv_cancel((uv_req_t *)&p->gai_req);
    if (p->tcp_init) {
        p->tcp_init = 0;
        uv_close((uv_handle_t *)&p->tcp, port_on_handle_closed);
    }
}
