/* The reset channel of one board: a Unix stream socket DIR/ttySIM<i>.ctl that stands in for the
 * DTR/RTS modem lines a pty cannot carry (protocol doc §5.4, §13.2). A client writes text lines
 * "DTR=1 RTS=0" (1 = asserted; either field may be left out to keep its state); each line is
 * applied when it arrives, and the board model does the two-transistor circuit and the EN glitch
 * filter. The line state outlives the connection: closing the socket does not move the lines. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io.h"

int io_ctl_parse_line(const char *line, int *dtr, int *rts)
{
    int new_dtr = *dtr, new_rts = *rts, fields = 0;
    const char *p = line;

    for (;;) {
        int *target;

        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r')
            p++;
        if (*p == '\0')
            break;
        if (strncasecmp(p, "DTR=", 4) == 0)
            target = &new_dtr;
        else if (strncasecmp(p, "RTS=", 4) == 0)
            target = &new_rts;
        else
            return -1;
        p += 4;
        if (*p != '0' && *p != '1')
            return -1;
        *target = *p - '0';
        p++;
        if (*p != '\0' && !isspace((unsigned char)*p) && *p != ',')
            return -1;
        fields++;
    }
    if (fields == 0)
        return -1;
    *dtr = new_dtr;
    *rts = new_rts;
    return 0;
}

static void apply_line(struct io_board *b, const char *line)
{
    int dtr = b->dtr, rts = b->rts;

    if (io_ctl_parse_line(line, &dtr, &rts) < 0) {
        io_board_log(b, "ctl: ignored '%s' (expected e.g. 'DTR=1 RTS=0')", line);
        return;
    }
    /* Hand the model everything that arrived before this change, then the change itself at the
     * current board time, so events reach it in the order they happened. */
    io_board_process(b);
    b->dtr = dtr;
    b->rts = rts;
    b->floor_ns = io_board_now(b);
    io_board_log(b, "ctl: DTR=%d RTS=%d", dtr, rts);
    sim_board_set_lines(b->model, dtr, rts, b->floor_ns);
    io_board_process(b);
}

static void on_client_closed(uv_handle_t *h)
{
    free(h); /* pipe is the first member of struct io_ctl_client */
}

static void drop_client(struct io_ctl_client *c)
{
    struct io_ctl_client **pp = &c->board->ctl_clients;

    while (*pp != NULL && *pp != c)
        pp = &(*pp)->next;
    if (*pp == c)
        *pp = c->next;
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[512]; /* single-threaded loop: one read at a time */

    (void)h;
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct io_ctl_client *c = IO_CONTAINER_OF(s, struct io_ctl_client, pipe);
    ssize_t i;

    if (n < 0) {
        drop_client(c);
        return;
    }
    for (i = 0; i < n; i++) {
        char ch = buf->base[i];

        if (ch == '\n') {
            c->line[c->len] = '\0';
            if (!c->overflow && !c->board->unplugged)
                apply_line(c->board, c->line);
            c->len = 0;
            c->overflow = 0;
        } else if (c->len + 1 < sizeof(c->line)) {
            c->line[c->len++] = ch;
        } else {
            c->overflow = 1;
        }
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct io_board *b = server->data;
    struct io_ctl_client *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    uv_pipe_init(&b->sim->loop, &c->pipe, 0);
    c->board = b;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_client_read) < 0) {
        uv_close((uv_handle_t *)&c->pipe, on_client_closed);
        return;
    }
    c->next = b->ctl_clients;
    b->ctl_clients = c;
}

int io_ctl_start(struct io_board *b, struct es_err *err)
{
    int rc;

    if (unlink(b->ctl_path) < 0 && errno != ENOENT)
        return es_fail(err, ES_IO, "slot %d: unlink %s: %s", b->slot, b->ctl_path, strerror(errno));
    /* On the heap: after an unplug the old server may still be closing when plug makes the new
     * one. */
    b->ctl_server = malloc(sizeof(*b->ctl_server));
    if (b->ctl_server == NULL)
        return es_fail(err, ES_NOMEM, "slot %d: out of memory for the control socket", b->slot);
    uv_pipe_init(&b->sim->loop, b->ctl_server, 0);
    b->ctl_server->data = b;
    b->ctl_init = 1;
    rc = uv_pipe_bind(b->ctl_server, b->ctl_path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)b->ctl_server, 8, on_connection);
    if (rc < 0)
        return es_fail(err, ES_IO, "slot %d: control socket %s: %s", b->slot, b->ctl_path,
                       uv_strerror(rc));
    return 0;
}

void io_ctl_close(struct io_board *b)
{
    while (b->ctl_clients != NULL)
        drop_client(b->ctl_clients);
    if (b->ctl_init) {
        uv_close((uv_handle_t *)b->ctl_server, on_client_closed); /* frees it */
        b->ctl_server = NULL;
        b->ctl_init = 0;
        unlink(b->ctl_path);
    }
}
