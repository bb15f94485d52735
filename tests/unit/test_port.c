/* The port layer on real pseudo-terminals, Unix control sockets and TCP on 127.0.0.1: bytes both
 * ways, baud changes seen from the master side, reset lines, hangup, close; plus the listing
 * helpers (glob, USB identity matching, stable order) on fake data. Loop tests count callbacks
 * and end with uv_loop_close() == 0 (style.md §8). */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four headers it needs */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "es/port.h"

/* The kernel's struct termios2 (asm-generic/termbits.h), declared here because that header cannot
 * be included next to <termios.h>. Reading the rate back through TCGETS2 checks what the kernel
 * holds, independently of the code under test. */
struct termios2 {
    tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
    cc_t c_line;
    cc_t c_cc[19];
    speed_t c_ispeed, c_ospeed;
};

struct ctx {
    uv_loop_t loop;
    struct port *p;
    int master;
    int master_polling;
    uv_poll_t mpoll;
    uint8_t *got; /* what the master read */
    size_t got_len, want_len;
    uint8_t data[4096]; /* what on_data delivered */
    size_t data_len, close_after_data;
    int data_calls, error_calls, closed_calls;
    struct es_err last_err;
};

static void on_closed(struct port *p, void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(p, c->p);
    c->closed_calls++;
}

static void on_data(struct port *p, const uint8_t *data, size_t n, void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(p, c->p);
    assert_true(c->data_len + n <= sizeof(c->data));
    memcpy(c->data + c->data_len, data, n);
    c->data_len += n;
    c->data_calls++;
    if (c->close_after_data > 0 && c->data_len >= c->close_after_data)
        port_close(p, on_closed); /* from inside the callback: must be safe */
}

static void on_error(struct port *p, const struct es_err *err, void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(p, c->p);
    c->error_calls++;
    c->last_err = *err;
    port_close(p, on_closed);
}

static const struct port_callbacks cbs = {on_data, on_error};

static void on_master_closed(uv_handle_t *h)
{
    (void)h;
}

static void stop_master(struct ctx *c)
{
    if (c->master_polling) {
        c->master_polling = 0;
        uv_close((uv_handle_t *)&c->mpoll, on_master_closed);
    }
}

static void on_master_readable(uv_poll_t *h, int status, int events)
{
    struct ctx *c = h->data;

    (void)events;
    assert_int_equal(status, 0);
    for (;;) {
        ssize_t n = read(c->master, c->got + c->got_len, c->want_len - c->got_len);

        if (n < 0 && errno == EAGAIN)
            return;
        assert_true(n > 0);
        c->got_len += (size_t)n;
        if (c->got_len == c->want_len) {
            stop_master(c);
            if (c->p != NULL)
                port_close(c->p, on_closed);
            return;
        }
    }
}

static uint8_t master_got[256 * 1024];

/* A pty pair; the port opens the slave by name, as it would open espsim's. */
static void ctx_init(struct ctx *c, size_t want, char *slave_name)
{
    int slave, fl;

    memset(c, 0, sizeof(*c));
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(openpty(&c->master, &slave, slave_name, NULL, NULL), 0);
    close(slave);
    fl = fcntl(c->master, F_GETFL);
    assert_int_equal(fcntl(c->master, F_SETFL, fl | O_NONBLOCK), 0);
    assert_true(want <= sizeof(master_got));
    c->want_len = want;
    c->got = master_got;
}

static void ctx_watch_master(struct ctx *c)
{
    assert_int_equal(uv_poll_init(&c->loop, &c->mpoll, c->master), 0);
    c->mpoll.data = c;
    c->master_polling = 1;
    assert_int_equal(uv_poll_start(&c->mpoll, UV_READABLE, on_master_readable), 0);
}

static void ctx_finish(struct ctx *c)
{
    assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    if (c->master >= 0)
        close(c->master);
}

static uint32_t master_speed(int master)
{
    struct termios2 t;

    assert_int_equal(ioctl(master, TCGETS2, &t), 0);
    return t.c_ospeed;
}

static void test_pty_write_reaches_master(void **state)
{
    enum { N = 200000 }; /* far beyond the pty buffer: EAGAIN and writable polling happen */
    struct ctx c;
    char name[PATH_MAX];
    struct es_err err;
    uint8_t *buf = malloc(N);
    (void)state;

    assert_non_null(buf);
    for (size_t i = 0; i < N; i++)
        buf[i] = (uint8_t)(i * 7 + i / 251);
    ctx_init(&c, N, name);
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &c.p, &err), 0);
    assert_string_equal(port_name(c.p), name);
    assert_int_equal(port_write(c.p, buf, 1000, &err), 0);
    assert_int_equal(port_write(c.p, buf + 1000, N - 1000, &err), 0);
    assert_int_equal(port_write_queued(c.p), N);
    ctx_watch_master(&c);
    ctx_finish(&c);
    assert_int_equal(c.got_len, N);
    assert_memory_equal(c.got, buf, N);
    assert_int_equal(c.closed_calls, 1);
    assert_int_equal(c.error_calls, 0);
    free(buf);
}

static void test_pty_master_writes_arrive_as_data(void **state)
{
    static const uint8_t msg[] = {0xC0, 0x01, 0x08, 0x04, 0x00, 0x00, 0x0A, 0x0D, 0x11, 0x13, 0xC0};
    struct ctx c;
    char name[PATH_MAX];
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &c.p, &err), 0);
    /* Raw mode: CR, LF, XON and XOFF must come through untouched. */
    assert_int_equal(write(c.master, msg, sizeof(msg)), (ssize_t)sizeof(msg));
    c.close_after_data = sizeof(msg);
    ctx_finish(&c);
    assert_int_equal(c.data_len, sizeof(msg));
    assert_memory_equal(c.data, msg, sizeof(msg));
    assert_true(c.data_calls >= 1);
    assert_int_equal(c.closed_calls, 1);
    assert_int_equal(c.error_calls, 0);
}

static void test_pty_set_baud(void **state)
{
    struct ctx c;
    char name[PATH_MAX];
    struct es_err err;
    (void)state;

    ctx_init(&c, 20, name);
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(master_speed(c.master), 115200);
    assert_int_equal(port_set_baud(c.p, 921600, &err), 0);
    assert_int_equal(master_speed(c.master), 921600);
    assert_int_equal(port_set_baud(c.p, 74880, &err), 0); /* termios2 BOTHER */
    assert_int_equal(master_speed(c.master), 74880);
    assert_int_equal(port_set_baud(c.p, 0, &err), -ES_INVALID_ARG);

    /* With bytes queued the change waits for them; bytes written after it wait for the change. */
    assert_int_equal(port_write(c.p, (const uint8_t *)"0123456789", 10, &err), 0);
    assert_int_equal(port_set_baud(c.p, 230400, &err), 0);
    assert_int_equal(master_speed(c.master), 74880);
    assert_int_equal(port_write(c.p, (const uint8_t *)"abcdefghij", 10, &err), 0);
    assert_int_equal(port_write_queued(c.p), 20);
    ctx_watch_master(&c);
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
    assert_memory_equal(c.got, "0123456789abcdefghij", 20);
    assert_int_equal(master_speed(c.master), 230400);
    ctx_finish(&c);
    assert_int_equal(c.closed_calls, 1);
}

static void test_pty_without_ctl_cannot_reset(void **state)
{
    struct ctx c;
    char name[PATH_MAX];
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(port_can_reset(c.p), 0);
    assert_int_equal(port_set_lines(c.p, 1, 0, &err), -ES_UNSUPPORTED);
    assert_int_equal(err.code, ES_UNSUPPORTED);
    assert_non_null(strstr(err.msg, name));
    port_flush_input(c.p);
    port_close(c.p, on_closed);
    assert_int_equal(c.closed_calls, 0); /* never from inside port_close */
    ctx_finish(&c);
    assert_int_equal(c.closed_calls, 1);
}

/* Issue 11 #4: a port whose lock another process holds is refused before it is opened, naming
 * that process; a second open in the same process is refused too; the lock goes with the close.
 * On a pty the port takes no TIOCEXCL (it would outlive the close while the master is open). */
static void test_port_lock(void **state)
{
    struct ctx c;
    char name[PATH_MAX], want[PATH_MAX + 256];
    struct port *second = (struct port *)&c;
    struct es_err err;
    int go[2], ready[2], excl = -1, fd, master;
    char byte;
    pid_t child;
    (void)state;

    ctx_init(&c, 0, name);
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) { /* another station: holds the lock until told to go, or the test ends */
        close(go[1]);
        fd = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 || write(ready[1], "r", 1) != 1)
            _exit(1);
        _exit(read(go[0], &byte, 1) >= 0 ? 0 : 1);
    }
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &second, &err), -ES_PORT_BUSY);
    assert_null(second);
    assert_int_equal(err.code, ES_PORT_BUSY);
    snprintf(want, sizeof(want),
             "port %s is in use: test_port (pid %ld) holds its lock; wait for that run to "
             "finish, or use another port",
             name, (long)child);
    assert_string_equal(err.msg, want);
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(waitpid(child, NULL, 0), child);

    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &second, &err), -ES_PORT_BUSY);
    snprintf(want, sizeof(want), "(pid %ld) holds its lock", (long)getpid());
    assert_non_null(strstr(err.msg, want));
    fd = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
    assert_true(fd >= 0);
    assert_int_equal(ioctl(fd, TIOCGEXCL, &excl), 0);
    assert_int_equal(excl, 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
    close(fd);
    port_close(c.p, on_closed);
    master = c.master;
    c.master = -1; /* keep the pty for the next open */
    ctx_finish(&c);
    assert_int_equal(c.closed_calls, 1);

    /* The lock went with the close: the port opens again. */
    assert_int_equal(uv_loop_init(&c.loop), 0);
    c.master = master;
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &c.p, &err), 0);
    port_close(c.p, on_closed);
    ctx_finish(&c);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
}

/* A fake espsim control socket next to a symlink to the slave. */
struct ctl_server {
    uv_pipe_t server, client;
    char got[64];
    size_t got_len, want_len;
    int accepted;
    struct ctx *c;
};

static void on_pipe_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ctl_server *s = h->data;

    (void)suggested;
    buf->base = s->got + s->got_len;
    buf->len = sizeof(s->got) - s->got_len;
}

static void on_ctl_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct ctl_server *s = st->data;

    (void)buf;
    if (n < 0) {
        uv_close((uv_handle_t *)&s->client, on_pipe_closed);
        return;
    }
    s->got_len += (size_t)n;
    if (s->got_len >= s->want_len) {
        uv_close((uv_handle_t *)&s->client, on_pipe_closed);
        uv_close((uv_handle_t *)&s->server, on_pipe_closed);
        port_close(s->c->p, on_closed);
    }
}

static void on_ctl_connection(uv_stream_t *server, int status)
{
    struct ctl_server *s = server->data;

    assert_int_equal(status, 0);
    assert_int_equal(uv_pipe_init(server->loop, &s->client, 0), 0);
    s->client.data = s;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&s->client), 0);
    s->accepted++;
    assert_int_equal(uv_read_start((uv_stream_t *)&s->client, on_ctl_alloc, on_ctl_read), 0);
}

static void test_pty_ctl_socket_carries_lines(void **state)
{
    struct ctx c;
    struct ctl_server s;
    char name[PATH_MAX], dir[] = "/tmp/test_port.XXXXXX", link[PATH_MAX], ctl[PATH_MAX];
    struct es_err err;
    static const char want[] = "DTR=1 RTS=0\nDTR=0 RTS=1\nDTR=0 RTS=0\n";
    (void)state;

    ctx_init(&c, 0, name);
    assert_non_null(mkdtemp(dir));
    snprintf(link, sizeof(link), "%s/ttySIM0", dir);
    snprintf(ctl, sizeof(ctl), "%s/ttySIM0.ctl", dir);
    assert_int_equal(symlink(name, link), 0);
    memset(&s, 0, sizeof(s));
    s.c = &c;
    s.want_len = strlen(want);
    assert_int_equal(uv_pipe_init(&c.loop, &s.server, 0), 0);
    s.server.data = &s;
    assert_int_equal(uv_pipe_bind(&s.server, ctl), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s.server, 4, on_ctl_connection), 0);

    assert_int_equal(port_open(&c.loop, link, 115200, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(port_can_reset(c.p), 1);
    assert_int_equal(port_set_lines(c.p, 1, 0, &err), 0);
    assert_int_equal(port_set_lines(c.p, 0, 1, &err), 0);
    assert_int_equal(port_set_lines(c.p, 0, 0, &err), 0);
    ctx_finish(&c);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.got_len, strlen(want));
    assert_memory_equal(s.got, want, strlen(want));
    assert_int_equal(c.closed_calls, 1);
    unlink(ctl);
    unlink(link);
    rmdir(dir);
}

static void test_pty_master_closed_is_port_closed(void **state)
{
    struct ctx c;
    char name[PATH_MAX];
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    assert_int_equal(port_open(&c.loop, name, 115200, &cbs, &c, &c.p, &err), 0);
    close(c.master); /* the board was unplugged */
    c.master = -1;
    ctx_finish(&c);
    assert_int_equal(c.error_calls, 1);
    assert_int_equal(c.last_err.code, ES_PORT_CLOSED);
    assert_non_null(strstr(c.last_err.msg, name));
    assert_non_null(strstr(c.last_err.msg, "unplugged"));
    assert_int_equal(c.closed_calls, 1);
}

static void test_open_errors(void **state)
{
    struct ctx c;
    char name[PATH_MAX];
    struct port *p = (struct port *)&c;
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    assert_int_equal(port_open(&c.loop, "/nonexistent/ttyUSB9", 115200, &cbs, &c, &p, &err),
                     -ES_PORT_OPEN);
    assert_null(p);
    assert_non_null(strstr(err.msg, "open /nonexistent/ttyUSB9: No such file or directory"));
    assert_int_equal(port_open(&c.loop, "/dev/null", 115200, &cbs, &c, &p, &err), -ES_PORT_OPEN);
    assert_non_null(strstr(err.msg, "tcgetattr"));
    assert_int_equal(port_open(&c.loop, "socket://127.0.0.1", 0, &cbs, &c, &p, &err),
                     -ES_PORT_OPEN);
    assert_non_null(strstr(err.msg, "socket://HOST:PORT"));
    assert_int_equal(port_open(&c.loop, "socket://127.0.0.1:99999", 0, &cbs, &c, &p, &err),
                     -ES_PORT_OPEN);
    assert_int_equal(port_open(&c.loop, "socket://127.0.0.1:5000?foo=1", 0, &cbs, &c, &p, &err),
                     -ES_PORT_OPEN);
    assert_int_equal(
        port_open(&c.loop, "socket://127.0.0.1:5000?ctl=/nonexistent/x.ctl", 0, &cbs, &c, &p, &err),
        -ES_PORT_OPEN);
    assert_non_null(strstr(err.msg, "/nonexistent/x.ctl"));
    assert_null(p);
    ctx_finish(&c); /* handles of the failed opens are released by the loop */
    assert_int_equal(c.closed_calls, 0);
}

/* TCP: a uv_tcp echo server on an ephemeral port. */
struct echo {
    uv_tcp_t server, conn;
    char buf[4096];
    uv_write_t wreq;
    int accepted;
};

static void on_echo_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct echo *e = h->data;

    (void)suggested;
    buf->base = e->buf;
    buf->len = sizeof(e->buf);
}

static void on_echo_written(uv_write_t *req, int status)
{
    (void)req;
    (void)status;
}

static void on_echo_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct echo *e = st->data;
    uv_buf_t out;

    if (n < 0) { /* the port closed its end */
        uv_close((uv_handle_t *)&e->conn, on_pipe_closed);
        uv_close((uv_handle_t *)&e->server, on_pipe_closed);
        return;
    }
    out = uv_buf_init(buf->base, (unsigned)n);
    assert_int_equal(uv_try_write(st, &out, 1), (int)n); /* small: the socket takes it */
    (void)e;
}

static void on_echo_connection(uv_stream_t *server, int status)
{
    struct echo *e = server->data;

    assert_int_equal(status, 0);
    assert_int_equal(uv_tcp_init(server->loop, &e->conn), 0);
    e->conn.data = e;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&e->conn), 0);
    e->accepted++;
    assert_int_equal(uv_read_start((uv_stream_t *)&e->conn, on_echo_alloc, on_echo_read), 0);
    (void)on_echo_written;
}

static int echo_start(uv_loop_t *loop, struct echo *e)
{
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof(bound);

    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_tcp_init(loop, &e->server), 0);
    e->server.data = e;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    assert_int_equal(uv_tcp_bind(&e->server, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&e->server, 4, on_echo_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&e->server, (struct sockaddr *)&bound, &len), 0);
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void test_tcp_echo(void **state)
{
    static const char msg[] = "\xc0\x00\x08\x24\x00sync\xc0";
    struct ctx c;
    struct echo e;
    char name[PATH_MAX], url[128];
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    snprintf(url, sizeof(url), "socket://127.0.0.1:%d", echo_start(&c.loop, &e));
    assert_int_equal(port_open(&c.loop, url, 115200, &cbs, &c, &c.p, &err), 0);
    /* Written before the connect completes: queued until then. */
    assert_int_equal(port_write(c.p, (const uint8_t *)msg, sizeof(msg) - 1, &err), 0);
    assert_int_equal(port_write_queued(c.p), sizeof(msg) - 1);
    assert_int_equal(port_can_reset(c.p), 0);
    assert_int_equal(port_set_lines(c.p, 1, 1, &err), -ES_UNSUPPORTED);
    assert_int_equal(port_set_baud(c.p, 921600, &err), 0);
    port_flush_input(c.p);
    c.close_after_data = sizeof(msg) - 1;
    ctx_finish(&c);
    assert_int_equal(e.accepted, 1);
    assert_int_equal(c.data_len, sizeof(msg) - 1);
    assert_memory_equal(c.data, msg, sizeof(msg) - 1);
    assert_int_equal(c.closed_calls, 1);
    assert_int_equal(c.error_calls, 0);
}

static void test_tcp_refused_is_on_error(void **state)
{
    struct ctx c;
    uv_tcp_t idle; /* bound but not listening: connecting to it is refused */
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    char name[PATH_MAX], url[128];
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    assert_int_equal(uv_tcp_init(&c.loop, &idle), 0);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    assert_int_equal(uv_tcp_bind(&idle, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&idle, (struct sockaddr *)&bound, &len), 0);
    snprintf(url, sizeof(url), "socket://127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&bound)->sin_port));
    assert_int_equal(port_open(&c.loop, url, 115200, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(port_write(c.p, (const uint8_t *)"x", 1, &err), 0);
    uv_close((uv_handle_t *)&idle, on_pipe_closed);
    ctx_finish(&c);
    assert_int_equal(c.error_calls, 1);
    assert_int_equal(c.last_err.code, ES_PORT_OPEN);
    assert_non_null(strstr(c.last_err.msg, url));
    assert_int_equal(c.closed_calls, 1);
}

static void test_tcp_hostname_resolves(void **state)
{
    static const char msg[] = "hello";
    struct ctx c;
    struct echo e;
    char name[PATH_MAX], url[128];
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    snprintf(url, sizeof(url), "socket://localhost:%d", echo_start(&c.loop, &e));
    assert_int_equal(port_open(&c.loop, url, 115200, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(port_write(c.p, (const uint8_t *)msg, 5, &err), 0);
    c.close_after_data = 5;
    ctx_finish(&c);
    /* localhost may list ::1 first; the port prefers the IPv4 address the server listens on. */
    assert_int_equal(c.error_calls, 0);
    assert_int_equal(c.data_len, 5);
    assert_memory_equal(c.data, msg, 5);
    assert_int_equal(c.closed_calls, 1);
}

static void test_close_while_resolving(void **state)
{
    struct ctx c;
    char name[PATH_MAX];
    struct es_err err;
    (void)state;

    ctx_init(&c, 0, name);
    assert_int_equal(port_open(&c.loop, "socket://localhost:9", 0, &cbs, &c, &c.p, &err), 0);
    port_close(c.p, on_closed);
    ctx_finish(&c);
    assert_int_equal(c.closed_calls, 1);
    assert_int_equal(c.error_calls, 0);
}

/* ---- listing and choosing ---- */

static void test_name_cmp_is_natural(void **state)
{
    (void)state;
    assert_true(port_name_cmp("/dev/ttyUSB2", "/dev/ttyUSB10") < 0);
    assert_true(port_name_cmp("/dev/ttyUSB10", "/dev/ttyUSB2") > 0);
    assert_true(port_name_cmp("1-1.9", "1-1.10") < 0);
    assert_true(port_name_cmp("1-1.4", "1-1.4.1") < 0);
    assert_true(port_name_cmp("/dev/ttyACM0", "/dev/ttyUSB0") < 0);
    assert_int_equal(port_name_cmp("ttyUSB3", "ttyUSB3"), 0);
    assert_int_equal(port_name_cmp("ttyUSB03", "ttyUSB3"), 0);
}

static void test_location_from_sysfs(void **state)
{
    char loc[32];
    (void)state;

    assert_int_equal(port_location_from_sysfs("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/"
                                              "1-1.4/1-1.4:1.0/ttyUSB0",
                                              loc, sizeof(loc)),
                     0);
    assert_string_equal(loc, "1-1.4");
    assert_int_equal(port_location_from_sysfs("/sys/devices/pci0000:00/0000:00:14.0/usb3/3-2/"
                                              "3-2:1.0",
                                              loc, sizeof(loc)),
                     0);
    assert_string_equal(loc, "3-2");
    assert_int_equal(
        port_location_from_sysfs("/sys/devices/platform/serial8250/tty/ttyS0", loc, sizeof(loc)),
        -1);
    assert_int_equal(port_location_from_sysfs("/sys/devices/x/usb1/1-1.2.3.4", loc, 4), -1);
}

static void touch(const char *dir, const char *name)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

/* Issue 11 #7: a glob expands to character devices only. The fake ports are symlinks to
 * /dev/null (a character device, like espsim's symlinks to ptys); next to them are what a glob
 * must skip: a Unix socket (espsim's ttySIM<i>.ctl), a regular file and a directory. */
static void test_glob(void **state)
{
    char dir[] = "/tmp/test_port_glob.XXXXXX", pat[PATH_MAX], path[PATH_MAX];
    char **names;
    size_t n;
    struct es_err err;
    struct sockaddr_un sa;
    int sock;
    static const char *const ports[] = {"ttyUSB10", "ttyUSB2", "ttyACM0", "ttyUSB0"};
    (void)state;

    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, ports[i]);
        assert_int_equal(symlink("/dev/null", path), 0);
    }
    touch(dir, "ttyUSB3.txt");
    snprintf(path, sizeof(path), "%s/ttyUSB4", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    assert_true((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ttyUSB0.ctl", dir) <
                sizeof(sa.sun_path));
    sock = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);

    snprintf(pat, sizeof(pat), "%s/ttyUSB*", dir);
    assert_int_equal(port_glob(pat, &names, &n, &err), 0);
    assert_int_equal(n, 3);
    snprintf(path, sizeof(path), "%s/ttyUSB0", dir);
    assert_string_equal(names[0], path);
    snprintf(path, sizeof(path), "%s/ttyUSB2", dir);
    assert_string_equal(names[1], path);
    snprintf(path, sizeof(path), "%s/ttyUSB10", dir);
    assert_string_equal(names[2], path);
    port_names_free(names, n);

    snprintf(pat, sizeof(pat), "%s/ttyUSB[34]*", dir);
    assert_int_equal(port_glob(pat, &names, &n, &err), -ES_PORT_OPEN);
    assert_null(names);
    assert_non_null(strstr(err.msg, "the 2 files it matches are not serial devices"));
    snprintf(pat, sizeof(pat), "%s/ttyXYZ*", dir);
    assert_int_equal(port_glob(pat, &names, &n, &err), -ES_PORT_OPEN);
    assert_null(names);
    assert_non_null(strstr(err.msg, pat));
    /* A name without wildcards is passed on as it is, whatever it is. */
    snprintf(pat, sizeof(pat), "%s/ttyUSB3.txt", dir);
    assert_int_equal(port_glob(pat, &names, &n, &err), 0);
    assert_int_equal(n, 1);
    port_names_free(names, n);
    assert_int_equal(port_glob("socket://127.0.0.1:5000", &names, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "socket://127.0.0.1:5000");
    port_names_free(names, n);

    close(sock);
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, ports[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/ttyUSB0.ctl", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/ttyUSB3.txt", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/ttyUSB4", dir);
    rmdir(path);
    assert_int_equal(rmdir(dir), 0);
}

/* Issue 11 #12: bad socket:// syntax is a usage error, found without opening anything. */
static void test_check_name(void **state)
{
    struct es_err err;
    (void)state;

    assert_int_equal(port_check_name("socket://127.0.0.1:5000", &err), 0);
    assert_int_equal(port_check_name("socket://[::1]:65535?ctl=/tmp/x.ctl", &err), 0);
    assert_int_equal(port_check_name("/dev/ttyUSB0", &err), 0);
    assert_int_equal(port_check_name("/nonexistent/ttyUSB9", &err), 0);
    assert_int_equal(port_check_name("socket://127.0.0.1:99999", &err), -ES_USAGE);
    assert_int_equal(err.code, ES_USAGE);
    assert_string_equal(err.msg, "port socket://127.0.0.1:99999: the TCP port number 99999 is not "
                                 "from 1 to 65535");
    assert_int_equal(port_check_name("socket://127.0.0.1:0", &err), -ES_USAGE);
    assert_int_equal(port_check_name("socket://127.0.0.1:123456789012345678901234", &err),
                     -ES_USAGE);
    assert_int_equal(port_check_name("socket://127.0.0.1", &err), -ES_USAGE);
    assert_non_null(strstr(err.msg, "expected socket://HOST:PORT"));
    assert_int_equal(port_check_name("socket://:5000", &err), -ES_USAGE);
    assert_int_equal(port_check_name("socket://h:5000?foo=1", &err), -ES_USAGE);
    assert_non_null(strstr(err.msg, "unknown option '?foo=1'"));
    assert_int_equal(port_check_name("", &err), -ES_USAGE);
}

/* Issue 11 #5: one board under two names is refused before anything is opened. */
static void test_check_distinct(void **state)
{
    char dir[] = "/tmp/test_port_distinct.XXXXXX", a[PATH_MAX], b[PATH_MAX], link1[PATH_MAX];
    char link2[PATH_MAX], want[4 * PATH_MAX];
    char *names[3];
    int m1, s1, m2, s2;
    struct es_err err;
    (void)state;

    assert_int_equal(openpty(&m1, &s1, a, NULL, NULL), 0);
    assert_int_equal(openpty(&m2, &s2, b, NULL, NULL), 0);
    assert_non_null(mkdtemp(dir));
    snprintf(link1, sizeof(link1), "%s/ttySIM0", dir);
    snprintf(link2, sizeof(link2), "%s/by-id-board", dir);
    assert_int_equal(symlink(a, link1), 0);
    assert_int_equal(symlink(link1, link2), 0);

    names[0] = a;
    names[1] = b;
    assert_int_equal(port_check_distinct(names, 2, &err), 0);
    names[1] = a;
    assert_int_equal(port_check_distinct(names, 2, &err), -ES_USAGE);
    snprintf(want, sizeof(want),
             "port %s is given twice; two slots on one board would both fail: give each port "
             "once",
             a);
    assert_string_equal(err.msg, want);
    names[0] = b;
    names[1] = link1;
    names[2] = a;
    assert_int_equal(port_check_distinct(names, 3, &err), -ES_USAGE);
    snprintf(want, sizeof(want),
             "ports %s and %s are the same device (%s); two slots on one board would both fail: "
             "give each port once",
             link1, a, a);
    assert_string_equal(err.msg, want);
    names[2] = link2;
    assert_int_equal(port_check_distinct(names, 3, &err), -ES_USAGE);
    names[0] = "socket://127.0.0.1:5000";
    names[1] = "socket://127.0.0.1:5001";
    assert_int_equal(port_check_distinct(names, 2, &err), 0);
    names[1] = "socket://127.0.0.1:5000?ctl=/tmp/x.ctl";
    assert_int_equal(port_check_distinct(names, 2, &err), -ES_USAGE);
    assert_non_null(strstr(err.msg, "are the same port (socket://127.0.0.1:5000)"));

    unlink(link2);
    unlink(link1);
    rmdir(dir);
    close(s1);
    close(m1);
    close(s2);
    close(m2);
}

static struct port_info fake(const char *name, int vid, int pid, const char *serial,
                             const char *location)
{
    struct port_info pi;

    memset(&pi, 0, sizeof(pi));
    pi.name = (char *)name;
    pi.transport = vid >= 0 ? PORT_TRANSPORT_USB : PORT_TRANSPORT_NATIVE;
    pi.usb_vid = vid;
    pi.usb_pid = pid;
    pi.usb_bus = pi.usb_address = -1;
    pi.serial = (char *)serial;
    pi.location = (char *)location;
    return pi;
}

static void test_select_by_usb_identity(void **state)
{
    struct port_info list[6];
    struct port_match m = {-1, -1, NULL, NULL};
    char **names;
    size_t n;
    struct es_err err;
    (void)state;

    list[0] = fake("/dev/ttyUSB0", 0x10c4, 0xea60, "A1", "1-1.10");
    list[1] = fake("/dev/ttyUSB1", 0x1a86, 0x7523, NULL, "1-1.2");
    list[2] = fake("/dev/ttyUSB7", 0x10c4, 0xea60, "B2", NULL);
    list[3] = fake("/dev/ttyUSB2", 0x10c4, 0xea60, "C3", "1-1.9");
    list[4] = fake("/dev/ttyS0", -1, -1, NULL, NULL);
    list[5] = fake("/dev/ttyUSB3", 0x10c4, 0xea61, "D4", "1-1.1");

    assert_int_equal(port_match_parse_usb("10C4:ea60", &m, &err), 0);
    assert_int_equal(m.usb_vid, 0x10c4);
    assert_int_equal(m.usb_pid, 0xea60);
    assert_int_equal(port_select(list, 6, &m, &names, &n, &err), 0);
    assert_int_equal(n, 3); /* by location (1-1.9 before 1-1.10), then unlocated by name */
    assert_string_equal(names[0], "/dev/ttyUSB2");
    assert_string_equal(names[1], "/dev/ttyUSB0");
    assert_string_equal(names[2], "/dev/ttyUSB7");
    port_names_free(names, n);

    m.serial = "B2";
    assert_int_equal(port_select(list, 6, &m, &names, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "/dev/ttyUSB7");
    port_names_free(names, n);

    m = (struct port_match){-1, -1, NULL, "1-1.2"};
    assert_int_equal(port_select(list, 6, &m, &names, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "/dev/ttyUSB1");
    port_names_free(names, n);

    m = (struct port_match){0x303a, 0x1001, NULL, NULL};
    assert_int_equal(port_select(list, 6, &m, &names, &n, &err), -ES_PORT_OPEN);
    assert_null(names);
    assert_non_null(strstr(err.msg, "303a:1001"));

    assert_int_equal(port_match_parse_usb("10c4", &m, &err), -ES_USAGE);
    assert_int_equal(port_match_parse_usb("zz:ea60", &m, &err), -ES_USAGE);
    assert_int_equal(port_match_parse_usb("10c4:ea600", &m, &err), -ES_USAGE);
    assert_non_null(strstr(err.msg, "10c4:ea600"));

    port_sort(list, 6);
    assert_string_equal(list[0].name, "/dev/ttyUSB3"); /* 1-1.1 */
    assert_string_equal(list[1].name, "/dev/ttyUSB1"); /* 1-1.2 */
    assert_string_equal(list[2].name, "/dev/ttyUSB2"); /* 1-1.9 */
    assert_string_equal(list[3].name, "/dev/ttyUSB0"); /* 1-1.10 */
    assert_string_equal(list[4].name, "/dev/ttyS0");
    assert_string_equal(list[5].name, "/dev/ttyUSB7");
}

static void test_list_real_ports(void **state)
{
    struct port_info *list;
    size_t n;
    struct es_err err;
    (void)state;

    /* The build host may have no serial ports; the call must still succeed and be freeable. */
    assert_int_equal(port_list(&list, &n, &err), 0);
    for (size_t i = 0; i < n; i++)
        assert_non_null(list[i].name);
    port_list_free(list, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pty_write_reaches_master),
        cmocka_unit_test(test_pty_master_writes_arrive_as_data),
        cmocka_unit_test(test_pty_set_baud),
        cmocka_unit_test(test_pty_without_ctl_cannot_reset),
        cmocka_unit_test(test_port_lock),
        cmocka_unit_test(test_pty_ctl_socket_carries_lines),
        cmocka_unit_test(test_pty_master_closed_is_port_closed),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_tcp_echo),
        cmocka_unit_test(test_tcp_refused_is_on_error),
        cmocka_unit_test(test_tcp_hostname_resolves),
        cmocka_unit_test(test_close_while_resolving),
        cmocka_unit_test(test_name_cmp_is_natural),
        cmocka_unit_test(test_location_from_sysfs),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_check_name),
        cmocka_unit_test(test_check_distinct),
        cmocka_unit_test(test_select_by_usb_identity),
        cmocka_unit_test(test_list_real_ports),
    };

    signal(SIGPIPE, SIG_IGN); /* as the station does: a vanished peer is an error, not a signal */
    alarm(60);                /* a hang is a failure, not a stuck CI job */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
