/* A blocking test host for espsim (see simclient.h): fork/exec, JSON lines, termios, poll(). */
#define _XOPEN_SOURCE 700

#include "simclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "es/le.h"

void sc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int64_t sc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one line from fd (blocking, at most timeout_ms in total). */
static int read_line(int fd, char *line, size_t cap, int64_t deadline)
{
    size_t n = 0;

    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - sc_now_ms();
        char c;
        ssize_t r;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        r = read(fd, &c, 1);
        if (r <= 0)
            return -1;
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = '\0';
    return 0;
}

static void copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);

    snprintf(dst, cap, "%s", s != NULL ? s : "");
}

int sc_sim_start(struct sc_sim *s, const char *espsim, const char *const *args)
{
    int out[2], in[2], n = 0;
    const char *argv[64];
    int64_t deadline = sc_now_ms() + 20000;
    char line[8192];

    memset(s, 0, sizeof(*s));
    argv[n++] = espsim;
    while (args[n - 1] != NULL && n < 63) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    if (pipe(out) < 0 || pipe(in) < 0)
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(out[1]);
        close(in[0]);
        close(in[1]);
        execv(espsim, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    s->out_fd = out[0];
    s->stdin_fd = in[1];
    for (;;) {
        json_error_t jerr;
        json_t *o;

        if (read_line(s->out_fd, line, sizeof(line), deadline) < 0) {
            fprintf(stderr, "simclient: espsim did not print its ready line\n");
            return -1;
        }
        o = json_loads(line, 0, &jerr);
        if (o == NULL) {
            fprintf(stderr, "simclient: bad JSON line from espsim: %s\n", line);
            return -1;
        }
        if (json_is_true(json_object_get(o, "ready"))) {
            int boards = (int)json_integer_value(json_object_get(o, "boards"));

            copy_str(s->dir, sizeof(s->dir), json_object_get(o, "dir"));
            copy_str(s->sock, sizeof(s->sock), json_object_get(o, "sock"));
            json_decref(o);
            return boards == s->n_boards ? 0 : -1;
        }
        if (s->n_boards < SC_MAX_BOARDS) {
            struct sc_board *b = &s->boards[s->n_boards++];
            const char *tcp = json_string_value(json_object_get(o, "tcp"));
            const char *id = json_string_value(json_object_get(o, "flash_id"));

            b->slot = (int)json_integer_value(json_object_get(o, "slot"));
            copy_str(b->chip, sizeof(b->chip), json_object_get(o, "chip"));
            copy_str(b->port, sizeof(b->port), json_object_get(o, "port"));
            copy_str(b->pty, sizeof(b->pty), json_object_get(o, "pty"));
            copy_str(b->ctl, sizeof(b->ctl), json_object_get(o, "ctl"));
            copy_str(b->mac, sizeof(b->mac), json_object_get(o, "mac"));
            copy_str(b->flash, sizeof(b->flash), json_object_get(o, "flash"));
            b->flash_size = (uint32_t)json_integer_value(json_object_get(o, "flash_size"));
            b->flash_id = id != NULL ? (uint32_t)strtoul(id, NULL, 16) : 0;
            if (tcp != NULL && strchr(tcp, ':') != NULL)
                b->tcp_port = atoi(strchr(tcp, ':') + 1);
        }
        json_decref(o);
    }
}

int sc_sim_stop(struct sc_sim *s, int timeout_ms)
{
    int64_t deadline = sc_now_ms() + timeout_ms;
    int status;

    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);

        if (r == s->pid)
            break;
        if (r < 0 || sc_now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            s->pid = 0;
            return -1;
        }
        sc_sleep_ms(10);
    }
    s->pid = 0;
    close(s->out_fd);
    close(s->stdin_fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static speed_t speed_of(uint32_t baud)
{
    switch (baud) {
    case 9600: return B9600;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return B0;
    }
}

int sc_port_set_baud(int fd, uint32_t baud)
{
    struct termios t;
    speed_t sp = speed_of(baud);

    if (sp == B0 || tcgetattr(fd, &t) < 0)
        return -1;
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    return tcsetattr(fd, TCSANOW, &t);
}

int sc_port_open(const char *path, uint32_t baud)
{
    struct termios t;
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return -1;
    if (tcgetattr(fd, &t) < 0) {
        close(fd);
        return -1;
    }
    t.c_iflag = 0;
    t.c_oflag = 0;
    t.c_lflag = 0;
    t.c_cflag = CS8 | CREAD | CLOCAL;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) < 0 || sc_port_set_baud(fd, baud) < 0) {
        close(fd);
        return -1;
    }
    tcflush(fd, TCIOFLUSH);
    return fd;
}

int sc_tcp_connect(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void on_frame(void *arg, const uint8_t *frame, size_t len)
{
    struct sc_reader *r = arg;
    int slot;

    if (r->count == 64) { /* full: drop the oldest */
        r->head = (r->head + 1) % 64;
        r->count--;
    }
    slot = (r->head + r->count) % 64;
    if (len > sizeof(r->frames[0]))
        len = sizeof(r->frames[0]);
    memcpy(r->frames[slot], frame, len);
    r->frame_len[slot] = len;
    r->count++;
}

void sc_reader_init(struct sc_reader *r, int fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    slip_decoder_init(&r->dec, r->dec_buf, sizeof(r->dec_buf), on_frame, NULL, r);
}

void sc_reader_clear(struct sc_reader *r)
{
    r->head = r->count = 0;
    r->raw_len = 0;
}

static void keep_raw(struct sc_reader *r, const uint8_t *p, size_t n)
{
    if (n >= sizeof(r->raw)) {
        memcpy(r->raw, p + n - sizeof(r->raw), sizeof(r->raw));
        r->raw_len = sizeof(r->raw);
        return;
    }
    if (r->raw_len + n > sizeof(r->raw)) {
        size_t drop = r->raw_len + n - sizeof(r->raw);

        memmove(r->raw, r->raw + drop, r->raw_len - drop);
        r->raw_len -= drop;
    }
    memcpy(r->raw + r->raw_len, p, n);
    r->raw_len += n;
}

/* One poll + read round of at most ms; -1 when the fd is closed. */
static int read_some(struct sc_reader *r, int ms)
{
    struct pollfd p = {r->fd, POLLIN, 0};
    uint8_t buf[sizeof(r->raw)]; /* no read can be longer than what keep_raw keeps */
    ssize_t n;

    if (r->closed)
        return -1;
    if (poll(&p, 1, ms < 0 ? 0 : ms) <= 0)
        return 0;
    n = read(r->fd, buf, sizeof(buf));
    if (n > 0) {
        keep_raw(r, buf, (size_t)n);
        slip_decoder_feed(&r->dec, buf, (size_t)n);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    r->closed = 1;
    return -1;
}

int sc_wait_frame(struct sc_reader *r, int timeout_ms)
{
    int64_t deadline = sc_now_ms() + timeout_ms;

    while (r->count == 0) {
        int64_t left = deadline - sc_now_ms();

        if (left <= 0)
            return 0;
        if (read_some(r, (int)left) < 0)
            return -1;
    }
    return 1;
}

int sc_pop_frame(struct sc_reader *r, uint8_t *out, size_t cap)
{
    size_t len;

    if (r->count == 0)
        return -1;
    len = r->frame_len[r->head];
    if (len > cap)
        len = cap;
    memcpy(out, r->frames[r->head], len);
    r->head = (r->head + 1) % 64;
    r->count--;
    return (int)len;
}

void sc_drain(struct sc_reader *r, int ms)
{
    int64_t deadline = sc_now_ms() + ms;

    for (;;) {
        int64_t left = deadline - sc_now_ms();

        if (left <= 0 || read_some(r, (int)left) < 0)
            return;
    }
}

int sc_raw_contains(const struct sc_reader *r, const char *text)
{
    size_t n = strlen(text), i;

    for (i = 0; i + n <= r->raw_len; i++) {
        if (memcmp(r->raw + i, text, n) == 0)
            return 1;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {fd, POLLOUT, 0};

            poll(&pf, 1, 100);
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sc_send(int fd, uint8_t op, const uint8_t *data, size_t n, uint32_t checksum)
{
    static uint8_t pkt[8 + 0x4000 + 64];
    static uint8_t wire[2 * sizeof(pkt) + 2];
    size_t len;

    if (n > sizeof(pkt) - 8)
        return -1;
    pkt[0] = 0x00;
    pkt[1] = op;
    es_put_le16(pkt + 2, (uint16_t)n);
    es_put_le32(pkt + 4, checksum);
    if (n > 0)
        memcpy(pkt + 8, data, n);
    len = slip_encode(pkt, 8 + n, wire, sizeof(wire));
    if (len == 0)
        return -1;
    return write_all(fd, wire, len);
}

int sc_reply_parse(const uint8_t *frame, int len, uint8_t op, size_t status_len,
                   struct sc_reply *rep)
{
    size_t size = len >= 8 ? es_get_le16(frame + 2) : 0;

    if (len < 8 || frame[0] != 0x01 || frame[1] != op || size + 8 != (size_t)len ||
        size < status_len)
        return -1;
    rep->op = frame[1];
    rep->value = es_get_le32(frame + 4);
    rep->data = frame + 8;
    rep->len = size;
    rep->status = frame[8 + size - status_len];
    rep->error = frame[8 + size - status_len + 1];
    return 0;
}

int sc_reader_pump(struct sc_reader *r)
{
    return read_some(r, 0);
}

int sc_wait_reply(struct sc_reader *r, uint8_t op, size_t status_len, int timeout_ms,
                  struct sc_reply *rep, uint8_t *buf, int *skipped)
{
    int64_t deadline = sc_now_ms() + timeout_ms;

    for (;;) {
        int64_t left = deadline - sc_now_ms();
        int rc, len;

        rc = sc_wait_frame(r, left > 0 ? (int)left : 0);
        if (rc <= 0)
            return rc;
        len = sc_pop_frame(r, buf, 1100);
        if (sc_reply_parse(buf, len, op, status_len, rep) == 0)
            return 1;
        if (skipped != NULL)
            (*skipped)++;
    }
}

int sc_command(struct sc_reader *r, uint8_t op, const uint8_t *data, size_t n, uint32_t checksum,
               size_t status_len, int timeout_ms, struct sc_reply *rep, uint8_t *buf)
{
    if (sc_send(r->fd, op, data, n, checksum) < 0)
        return -1;
    return sc_wait_reply(r, op, status_len, timeout_ms, rep, buf, NULL);
}

int sc_sync(struct sc_reader *r, int timeout_ms, int quiet_ms, size_t *reply_len)
{
    uint8_t payload[36], buf[1100];
    struct sc_reply rep;
    int count = 0, wait = timeout_ms;

    payload[0] = 0x07;
    payload[1] = 0x07;
    payload[2] = 0x12;
    payload[3] = 0x20;
    memset(payload + 4, 0x55, 32);
    if (sc_send(r->fd, 0x08, payload, sizeof(payload), 0) < 0)
        return -1;
    while (sc_wait_reply(r, 0x08, 2, wait, &rep, buf, NULL) == 1) {
        count++;
        if (reply_len != NULL)
            *reply_len = rep.len;
        wait = quiet_ms;
    }
    return count;
}

uint32_t sc_data_block(uint8_t *out, const uint8_t *data, size_t n, uint32_t seq)
{
    uint8_t chk = 0xEF;
    size_t i;

    es_put_le32(out, (uint32_t)n);
    es_put_le32(out + 4, seq);
    memset(out + 8, 0, 8);
    memcpy(out + 16, data, n);
    for (i = 0; i < n; i++)
        chk ^= data[i];
    return chk;
}

int sc_ctl_open(const char *ctl_path)
{
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", ctl_path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int sc_ctl_write(int fd, const char *line)
{
    char msg[128];

    snprintf(msg, sizeof(msg), "%s\n", line);
    return write_all(fd, (const uint8_t *)msg, strlen(msg));
}

int sc_ctl(const char *ctl_path, const char *line)
{
    int fd = sc_ctl_open(ctl_path), rc;

    if (fd < 0)
        return -1;
    rc = sc_ctl_write(fd, line);
    close(fd);
    return rc;
}

int sc_reset_download(const char *ctl_path, int hold_ms, int boot_ms)
{
    /* Classic: DTR=0 RTS=1 (EN low) · hold · DTR=1 then RTS=0 (EN up, GPIO0 low) · wait · DTR=0.
     * DTR and RTS change one after the other, as on a real port, so the board's glitch filter
     * sees the brief DTR=RTS=1 state. One connection keeps the lines in order. */
    int fd = sc_ctl_open(ctl_path), rc = -1;

    if (fd < 0)
        return -1;
    if (sc_ctl_write(fd, "DTR=0 RTS=1") < 0)
        goto out;
    sc_sleep_ms(hold_ms);
    if (sc_ctl_write(fd, "DTR=1") < 0 || sc_ctl_write(fd, "RTS=0") < 0)
        goto out;
    sc_sleep_ms(boot_ms);
    rc = sc_ctl_write(fd, "DTR=0");
out:
    close(fd);
    return rc;
}

int sc_sim_cmd(const char *sock_path, const char *line, char *reply, size_t cap)
{
    struct sockaddr_un addr;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;
    size_t n = strlen(line);

    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        write(fd, line, n) == (ssize_t)n && write(fd, "\n", 1) == 1)
        rc = read_line(fd, reply, cap, sc_now_ms() + 10000);
    close(fd);
    return rc;
}

int sc_sim_cmd_stdin(struct sc_sim *s, const char *line, char *reply, size_t cap)
{
    size_t n = strlen(line);

    if (write(s->stdin_fd, line, n) != (ssize_t)n || write(s->stdin_fd, "\n", 1) != 1)
        return -1;
    return read_line(s->out_fd, reply, cap, sc_now_ms() + 10000);
}
