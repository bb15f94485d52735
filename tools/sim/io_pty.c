/* The pseudo-terminal behind one simulated board: created raw at 115200, reached by the host via
 * the symlink DIR/ttySIM<i>; the master side is polled by the loop. Pacing is not done here. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "io.h"

/* Raw 8N1 with no echo, no translation, no flow control: what a serial flasher sets anyway, and
 * the default any client sees until it sets its own. Echo in particular must be off, or our own
 * output would come back to us as input. */
static int set_raw(int fd)
{
    struct termios t;

    if (tcgetattr(fd, &t) < 0)
        return -1;
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON |
                             IXOFF | IXANY);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB);
    t.c_cflag |= CS8 | CREAD | CLOCAL;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (cfsetispeed(&t, B115200) < 0 || cfsetospeed(&t, B115200) < 0)
        return -1;
    return tcsetattr(fd, TCSANOW, &t);
}

int io_pty_open(struct io_board *b, struct es_err *err)
{
    const char *name;
    int flags;

    b->master_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (b->master_fd < 0)
        return es_fail(err, ES_IO, "slot %d: posix_openpt: %s", b->slot, strerror(errno));
    if (grantpt(b->master_fd) < 0 || unlockpt(b->master_fd) < 0)
        return es_fail(err, ES_IO, "slot %d: grantpt/unlockpt: %s", b->slot, strerror(errno));
    name = ptsname(b->master_fd);
    if (name == NULL || strlen(name) >= sizeof(b->pty_path))
        return es_fail(err, ES_IO, "slot %d: ptsname failed", b->slot);
    strcpy(b->pty_path, name);
    flags = fcntl(b->master_fd, F_GETFL);
    if (flags < 0 || fcntl(b->master_fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        fcntl(b->master_fd, F_SETFD, FD_CLOEXEC) < 0)
        return es_fail(err, ES_IO, "slot %d: fcntl on the pty master: %s", b->slot,
                       strerror(errno));
    b->slave_fd = open(b->pty_path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (b->slave_fd < 0)
        return es_fail(err, ES_IO, "slot %d: open %s: %s", b->slot, b->pty_path, strerror(errno));
    if (set_raw(b->slave_fd) < 0)
        return es_fail(err, ES_IO, "slot %d: tcsetattr %s: %s", b->slot, b->pty_path,
                       strerror(errno));

    /* A stale symlink from an earlier run in the same --dir is replaced. */
    if (unlink(b->port_path) < 0 && errno != ENOENT)
        return es_fail(err, ES_IO, "slot %d: unlink %s: %s", b->slot, b->port_path,
                       strerror(errno));
    if (symlink(b->pty_path, b->port_path) < 0)
        return es_fail(err, ES_IO, "slot %d: symlink %s -> %s: %s", b->slot, b->port_path,
                       b->pty_path, strerror(errno));
    b->port_linked = 1;
    return 0;
}

static void on_pty_readable(uv_poll_t *p, int status, int events)
{
    struct io_board *b = p->data;
    uint8_t buf[4096];
    uint32_t baud;

    if (status < 0) {
        io_board_log(b, "pty poll: %s", uv_strerror(status));
        uv_poll_stop(p);
        return;
    }
    if (!(events & UV_READABLE))
        return;
    /* The host may change its rate between reads; what it is set to now is what these bytes
     * were sent at (as near as we can tell). */
    baud = io_baud_get(b->master_fd);
    for (;;) {
        ssize_t n = read(b->master_fd, buf, sizeof(buf));

        if (n > 0) {
            io_board_input(b, buf, (size_t)n, baud);
            if (b->master_fd < 0) /* unplugged while handling it */
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EIO or EOF: no slave is open. Cannot happen while we hold slave_fd; stop polling
         * rather than spin. */
        io_board_log(b, "pty read: %s", n < 0 ? strerror(errno) : "EOF");
        uv_poll_stop(p);
        return;
    }
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

int io_pty_start(struct io_board *b, struct es_err *err)
{
    int rc;

    /* On the heap: after an unplug the old handle may still be closing when plug opens a new
     * pty. */
    b->poll = malloc(sizeof(*b->poll));
    if (b->poll == NULL)
        return es_fail(err, ES_NOMEM, "slot %d: out of memory for the pty poll", b->slot);
    rc = uv_poll_init(&b->sim->loop, b->poll, b->master_fd);
    if (rc < 0) {
        free(b->poll);
        b->poll = NULL;
        return es_fail(err, ES_IO, "slot %d: uv_poll_init: %s", b->slot, uv_strerror(rc));
    }
    b->poll->data = b;
    b->poll_init = 1;
    rc = uv_poll_start(b->poll, UV_READABLE, on_pty_readable);
    if (rc < 0)
        return es_fail(err, ES_IO, "slot %d: uv_poll_start: %s", b->slot, uv_strerror(rc));
    return 0;
}

size_t io_pty_write(struct io_board *b, const uint8_t *bytes, size_t n)
{
    size_t done = 0;

    while (done < n && b->master_fd >= 0) {
        ssize_t w = write(b->master_fd, bytes + done, n - done);

        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        break; /* EAGAIN: the pty buffer (~64 KiB) is full, nobody reads */
    }
    return done;
}

void io_pty_close(struct io_board *b)
{
    /* The symlink goes first: a host that sees the hangup must not find the port any more. */
    if (b->port_linked) {
        unlink(b->port_path);
        b->port_linked = 0;
    }
    if (b->poll_init) {
        uv_close((uv_handle_t *)b->poll, on_poll_closed); /* stops polling before the fd goes */
        b->poll = NULL;
        b->poll_init = 0;
    }
    if (b->master_fd >= 0) {
        close(b->master_fd);
        b->master_fd = -1;
    }
    if (b->slave_fd >= 0) {
        close(b->slave_fd);
        b->slave_fd = -1;
    }
}
