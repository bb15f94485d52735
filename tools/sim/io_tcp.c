/* The optional TCP side of a board's line: raw bytes on 127.0.0.1:BASE+i, like esptool's
 * socket:// ports (no reset lines). One client at a time; a new connection replaces the old one,
 * as a serial-to-network bridge hands the line to its newest client. */
#include <stdlib.h>
#include <string.h>

#include "io.h"

struct tcp_write {
    uv_write_t req;
    struct io_board *board;
    size_t len;
    uint8_t data[];
};

static void on_client_closed(uv_handle_t *h)
{
    free(h);
}

static void drop_client(struct io_board *b)
{
    if (b->tcp_client == NULL)
        return;
    uv_close((uv_handle_t *)b->tcp_client, on_client_closed);
    b->tcp_client = NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(4096);
    buf->len = buf->base != NULL ? 4096 : 0;
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct io_board *b = s->data;

    if (n > 0 && b->tcp_client == (uv_tcp_t *)s)
        io_board_input(b, (const uint8_t *)buf->base, (size_t)n, 0);
    free(buf->base);
    if (n < 0) {
        io_board_log(b, "tcp client gone: %s", uv_strerror((int)n));
        if (b->tcp_client == (uv_tcp_t *)s)
            drop_client(b);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct io_board *b = server->data;
    uv_tcp_t *c;
    int rc;

    if (status < 0) {
        io_board_log(b, "tcp accept: %s", uv_strerror(status));
        return;
    }
    c = malloc(sizeof(*c));
    if (c == NULL)
        return;
    uv_tcp_init(&b->sim->loop, c);
    c->data = b;
    rc = uv_accept(server, (uv_stream_t *)c);
    if (rc < 0 || b->unplugged) {
        uv_close((uv_handle_t *)c, on_client_closed);
        return;
    }
    uv_tcp_nodelay(c, 1);
    drop_client(b);
    b->tcp_client = c;
    b->tcp_pending = 0;
    io_board_log(b, "tcp client connected");
    rc = uv_read_start((uv_stream_t *)c, on_alloc, on_client_read);
    if (rc < 0)
        drop_client(b);
}

int io_tcp_start(struct io_board *b, int port, struct es_err *err)
{
    struct sockaddr_in addr;
    struct sockaddr_storage got;
    int rc, len = (int)sizeof(got);

    /* On the heap: after an unplug the old listener may still be closing when plug makes the
     * new one. */
    b->tcp_server = malloc(sizeof(*b->tcp_server));
    if (b->tcp_server == NULL)
        return es_fail(err, ES_NOMEM, "slot %d: out of memory for the TCP listener", b->slot);
    uv_tcp_init(&b->sim->loop, b->tcp_server);
    b->tcp_server->data = b;
    b->tcp_init = 1;
    uv_ip4_addr("127.0.0.1", port, &addr);
    rc = uv_tcp_bind(b->tcp_server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)b->tcp_server, 4, on_connection);
    if (rc < 0)
        return es_fail(err, ES_IO, "slot %d: listen on 127.0.0.1:%d: %s; pick another --tcp base",
                       b->slot, port, uv_strerror(rc));
    rc = uv_tcp_getsockname(b->tcp_server, (struct sockaddr *)&got, &len);
    if (rc < 0)
        return es_fail(err, ES_IO, "slot %d: getsockname: %s", b->slot, uv_strerror(rc));
    b->tcp_port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

static void on_written(uv_write_t *req, int status)
{
    struct tcp_write *w = IO_CONTAINER_OF(req, struct tcp_write, req);

    (void)status;
    if (w->board->tcp_pending >= w->len)
        w->board->tcp_pending -= w->len;
    free(w);
}

void io_tcp_write(struct io_board *b, const uint8_t *bytes, size_t n)
{
    struct tcp_write *w;
    uv_buf_t buf;

    if (b->tcp_client == NULL || n == 0)
        return;
    w = malloc(sizeof(*w) + n);
    if (w == NULL)
        return;
    w->board = b;
    w->len = n;
    memcpy(w->data, bytes, n);
    buf = uv_buf_init((char *)w->data, (unsigned int)n);
    if (uv_write(&w->req, (uv_stream_t *)b->tcp_client, &buf, 1, on_written) < 0) {
        free(w);
        return;
    }
    b->tcp_pending += n;
}

void io_tcp_close(struct io_board *b)
{
    drop_client(b);
    if (b->tcp_init) {
        uv_close((uv_handle_t *)b->tcp_server, on_client_closed); /* frees it */
        b->tcp_server = NULL;
        b->tcp_init = 0;
    }
}
