/* Where espsim's control commands come from: stdin (with --commands, or --exit-on-eof, which
 * also exits at EOF), replies on stdout; and the Unix stream socket DIR/espsim.sock, replies on
 * the same connection, which may carry many commands. One line in, exactly one JSON line out, in
 * order. The commands themselves are io_cmd.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

#define CMD_LINE_MAX    256
#define IO_SUN_PATH_MAX 108 /* sun_path, NUL included */

struct io_cmd_client {
    uv_pipe_t pipe; /* first: the handle is the allocation */
    struct io_sim *sim;
    struct io_cmd_client *next;
    char line[CMD_LINE_MAX];
    size_t len;
    int overflow;
};

struct cmd_write {
    uv_write_t req;
    char text[]; /* the reply and its newline */
};

/* Feeds bytes to a line buffer; calls done(ctx, line) for each complete line that is not blank.
 * An overlong line is answered as an error when its newline comes. */
static void feed_lines(char *line, size_t *len, int *overflow, const char *bytes, size_t n,
                       void (*done)(void *ctx, const char *line), void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        char c = bytes[i];

        if (c != '\n') {
            if (*len + 1 < CMD_LINE_MAX)
                line[(*len)++] = c;
            else
                *overflow = 1;
            continue;
        }
        line[*len] = '\0';
        if (*overflow)
            done(ctx, NULL);
        else if (strspn(line, " \t\r") != *len)
            done(ctx, line);
        *len = 0;
        *overflow = 0;
    }
}

static char *answer(struct io_sim *sim, const char *line)
{
    if (line == NULL)
        return strdup("{\"ok\":false,\"error\":\"command line too long\"}");
    return io_cmd_run(sim, line);
}

/* ---- stdin ------------------------------------------------------------------------------- */

static void on_stdin_line(void *ctx, const char *line)
{
    char *reply = answer(ctx, line);

    if (reply == NULL)
        return;
    fputs(reply, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(reply);
}

static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[512];

    (void)h;
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void on_stdin_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct io_sim *sim = s->data;

    if (n > 0) {
        feed_lines(sim->in_line, &sim->in_len, &sim->in_overflow, buf->base, (size_t)n,
                   on_stdin_line, sim);
        return;
    }
    if (n == 0)
        return;
    /* UV_EOF, or the parent's end is gone. */
    if (sim->opts->exit_on_eof) {
        io_sim_stop(sim);
    } else if (sim->in_init) {
        uv_close((uv_handle_t *)&sim->in, NULL);
        sim->in_init = 0;
    }
}

/* stdin as a pipe or a terminal; a file or /dev/null is at EOF already. */
static int watch_stdin(struct io_sim *sim, struct es_err *err)
{
    uv_handle_type t = uv_guess_handle(0);
    int rc;

    if (t == UV_NAMED_PIPE) {
        rc = uv_pipe_init(&sim->loop, &sim->in.pipe, 0);
        if (rc == 0)
            rc = uv_pipe_open(&sim->in.pipe, 0);
    } else if (t == UV_TTY) {
        rc = uv_tty_init(&sim->loop, &sim->in.tty, 0, 0);
    } else {
        if (sim->opts->exit_on_eof)
            io_sim_stop(sim);
        return 0;
    }
    if (rc < 0)
        return es_fail(err, ES_IO, "cannot watch stdin: %s", uv_strerror(rc));
    sim->in_init = 1;
    sim->in.pipe.data = sim;
    rc = uv_read_start((uv_stream_t *)&sim->in, on_stdin_alloc, on_stdin_read);
    if (rc < 0)
        return es_fail(err, ES_IO, "cannot read stdin: %s", uv_strerror(rc));
    return 0;
}

/* ---- DIR/espsim.sock ----------------------------------------------------------------------- */

static void on_client_closed(uv_handle_t *h)
{
    free(h); /* pipe is the first member of struct io_cmd_client */
}

static void drop_client(struct io_cmd_client *c)
{
    struct io_cmd_client **pp = &c->sim->cmd_clients;

    while (*pp != NULL && *pp != c)
        pp = &(*pp)->next;
    if (*pp == c)
        *pp = c->next;
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(IO_CONTAINER_OF(req, struct cmd_write, req));
}

static void on_client_line(void *ctx, const char *line)
{
    struct io_cmd_client *c = ctx;
    char *reply = answer(c->sim, line);
    struct cmd_write *w;
    size_t n;
    uv_buf_t buf;

    if (reply == NULL)
        return;
    n = strlen(reply);
    w = malloc(sizeof(*w) + n + 1);
    if (w != NULL) {
        memcpy(w->text, reply, n);
        w->text[n] = '\n';
        buf = uv_buf_init(w->text, (unsigned int)(n + 1));
        if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_written) < 0)
            free(w);
    }
    free(reply);
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[512];

    (void)h;
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct io_cmd_client *c = (struct io_cmd_client *)s;

    if (n < 0) {
        drop_client(c);
        return;
    }
    /* A command may stop the simulator, which closes this client: stop at that point. */
    for (ssize_t i = 0; i < n && !c->sim->stopping; i++)
        feed_lines(c->line, &c->len, &c->overflow, buf->base + i, 1, on_client_line, c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct io_sim *sim = server->data;
    struct io_cmd_client *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    uv_pipe_init(&sim->loop, &c->pipe, 0);
    c->sim = sim;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
        uv_read_start((uv_stream_t *)&c->pipe, on_client_alloc, on_client_read) < 0) {
        uv_close((uv_handle_t *)&c->pipe, on_client_closed);
        return;
    }
    c->next = sim->cmd_clients;
    sim->cmd_clients = c;
}

int io_cmd_chan_start(struct io_sim *sim, struct es_err *err)
{
    int rc;

    if (snprintf(sim->cmd_path, IO_SUN_PATH_MAX, "%s/espsim.sock", sim->dir) >= IO_SUN_PATH_MAX)
        return es_fail(err, ES_IO,
                       "--dir %s is too long for the command socket path (at most %d bytes); use "
                       "a shorter --dir",
                       sim->dir, IO_SUN_PATH_MAX - 1);
    if (unlink(sim->cmd_path) < 0 && errno != ENOENT)
        return es_fail(err, ES_IO, "unlink %s: %s", sim->cmd_path, strerror(errno));
    sim->cmd_server = malloc(sizeof(*sim->cmd_server));
    if (sim->cmd_server == NULL)
        return es_fail(err, ES_NOMEM, "out of memory for the command socket");
    uv_pipe_init(&sim->loop, sim->cmd_server, 0);
    sim->cmd_server->data = sim;
    rc = uv_pipe_bind(sim->cmd_server, sim->cmd_path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)sim->cmd_server, 8, on_connection);
    if (rc < 0)
        return es_fail(err, ES_IO, "command socket %s: %s", sim->cmd_path, uv_strerror(rc));
    if (sim->opts->commands || sim->opts->exit_on_eof)
        return watch_stdin(sim, err);
    return 0;
}

void io_cmd_chan_close(struct io_sim *sim)
{
    while (sim->cmd_clients != NULL)
        drop_client(sim->cmd_clients);
    if (sim->cmd_server != NULL) {
        uv_close((uv_handle_t *)sim->cmd_server, on_client_closed); /* frees it */
        sim->cmd_server = NULL;
        unlink(sim->cmd_path);
    }
    if (sim->in_init) {
        uv_close((uv_handle_t *)&sim->in, NULL);
        sim->in_init = 0;
    }
}
