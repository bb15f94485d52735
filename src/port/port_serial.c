/* Ports that are ttys: real serial ports opened through libserialport, and everything it refuses
 * (pseudo-terminals, symlinks to them) opened with plain termios. Either way the fd ends up
 * non-blocking under one uv_poll: read until EAGAIN, write what the OS takes, never block.
 * Rates termios has no constant for are set by port_setspeed.c. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <libserialport.h>

#include "port_internal.h"

/* At most this much is read per readiness callback, so that one chatty port cannot starve the
 * other boards on the loop; level-triggered polling calls us again for the rest. */
#define READ_BUDGET_BYTES (64 * 1024)

static const struct {
    uint32_t baud;
    speed_t code;
} std_rates[] = {
    {50, B50},           {75, B75},           {110, B110},         {134, B134},
    {150, B150},         {200, B200},         {300, B300},         {600, B600},
    {1200, B1200},       {1800, B1800},       {2400, B2400},       {4800, B4800},
    {9600, B9600},       {19200, B19200},     {38400, B38400},     {57600, B57600},
    {115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
    {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
    {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000},
    {3500000, B3500000}, {4000000, B4000000},
};

static int speed_code(uint32_t baud, speed_t *code)
{
    for (size_t i = 0; i < sizeof(std_rates) / sizeof(std_rates[0]); i++) {
        if (std_rates[i].baud == baud) {
            *code = std_rates[i].code;
            return 0;
        }
    }
    return -1;
}

static int sp_fail(struct port *p, const char *what, struct es_err *err)
{
    char *msg = sp_last_error_message();
    int rc = es_fail(err, ES_PORT_IO, "port %s: %s: %s", p->name, what, msg ? msg : "failed");

    sp_free_error_message(msg);
    return rc;
}

/* Sets the line rate now. Not called while bytes at the old rate are still queued. */
static int apply_baud(struct port *p, uint32_t baud, struct es_err *err)
{
    struct termios t;
    speed_t code;
    int rc;

    if (p->sp != NULL) {
        if (baud > INT32_MAX || sp_set_baudrate(p->sp, (int)baud) != SP_OK)
            return sp_fail(p, "set baud rate", err);
        p->baud = baud;
        return 0;
    }
    if (speed_code(baud, &code) < 0) {
        rc = port_setspeed_custom(p->fd, baud);
        if (rc < 0)
            return es_fail(err, ES_PORT_IO,
                           "port %s: set baud rate %u (termios2 BOTHER): %s; try a standard "
                           "rate such as 115200",
                           p->name, baud, strerror(-rc));
        p->baud = baud;
        return 0;
    }
    if (tcgetattr(p->fd, &t) < 0)
        return es_fail(err, ES_PORT_IO, "port %s: tcgetattr: %s", p->name, strerror(errno));
    if (cfsetispeed(&t, code) < 0 || cfsetospeed(&t, code) < 0 || tcsetattr(p->fd, TCSANOW, &t) < 0)
        return es_fail(err, ES_PORT_IO, "port %s: set baud rate %u: %s", p->name, baud,
                       strerror(errno));
    p->baud = baud;
    return 0;
}

/* Sets DTR and RTS with one TIOCMSET. libserialport's sp_set_dtr/sp_set_rts would take two
 * ioctls; the UnixTight reset sequence (protocol doc §5.2) changes both lines in one step.
 * Returns 0 or -errno. */
static int modem_set(int fd, int dtr, int rts)
{
    int bits;

    if (ioctl(fd, TIOCMGET, &bits) < 0)
        return -errno;
    bits = dtr ? bits | TIOCM_DTR : bits & ~TIOCM_DTR;
    bits = rts ? bits | TIOCM_RTS : bits & ~TIOCM_RTS;
    if (ioctl(fd, TIOCMSET, &bits) < 0)
        return -errno;
    return 0;
}

static int open_libserialport(struct port *p, uint32_t baud)
{
    struct sp_port *sp;
    int fd, fl;

    if (baud > INT32_MAX || sp_get_port_by_name(p->name, &sp) != SP_OK)
        return -1;
    if (sp_open(sp, SP_MODE_READ_WRITE) != SP_OK) {
        sp_free_port(sp);
        return -1;
    }
    if (sp_set_baudrate(sp, (int)baud) != SP_OK || sp_set_bits(sp, 8) != SP_OK ||
        sp_set_parity(sp, SP_PARITY_NONE) != SP_OK || sp_set_stopbits(sp, 1) != SP_OK ||
        sp_set_flowcontrol(sp, SP_FLOWCONTROL_NONE) != SP_OK ||
        sp_get_port_handle(sp, &fd) != SP_OK || (fl = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        sp_close(sp);
        sp_free_port(sp);
        return -1; /* the termios path will try again and name the failing call */
    }
    p->sp = sp;
    p->fd = fd;
    p->baud = baud;
    return 0;
}

/* ---- The port lock (issue 11 #4) ----
 *
 * A second station on the same port reset boards in the middle of the first one's write. Every
 * station takes flock(LOCK_EX | LOCK_NB) on the device it opened, and refuses a port whose lock
 * another process holds, naming that process from /proc/locks. It looks there before it opens
 * the port at all, so that its own open (which raises DTR/RTS on a real adapter) and its reset
 * never touch a board another station is flashing; the flock after the open closes the window
 * between two stations started at the same instant. On real serial ports it also sets TIOCEXCL,
 * which makes the kernel refuse any other open of the port (EBUSY) to programs that do not take
 * locks, except root's. Not on pseudo-terminals: there the flag outlives our close while the
 * master side (espsim) stays open, so a killed station would leave the port closed to everyone
 * but root. */

/* Unix98 pty slaves (/dev/pts/N) have majors 136-143 (Linux Documentation/admin-guide/
 * devices.txt). */
#define PTY_SLAVE_MAJOR_FIRST 136
#define PTY_SLAVE_MAJOR_LAST  143

/* The process holding a lock on the file (dev, ino), from /proc/locks, whose lines read
 * "1: FLOCK  ADVISORY  WRITE 4242 00:19:7 0 EOF" (fs/locks.c, lock_get_status: pid, then the
 * file system's device as hex major:minor, then the inode). Lines of waiters ("1: -> FLOCK ...")
 * do not parse and are skipped. Returns 0 when no holder is listed or /proc cannot be read. */
static pid_t lock_holder(dev_t dev, ino_t ino)
{
    FILE *f = fopen("/proc/locks", "re");
    char line[256];
    pid_t holder = 0;

    if (f == NULL)
        return 0;
    while (holder == 0 && fgets(line, sizeof(line), f) != NULL) {
        char type[16], kind[16], mode[16];
        unsigned maj, min;
        unsigned long long inode;
        long pid;
        const char *rest = strchr(line, ':');

        if (rest == NULL || sscanf(rest + 1, "%15s %15s %15s %ld %x:%x:%llu", type, kind, mode,
                                   &pid, &maj, &min, &inode) != 7)
            continue;
        if (pid > 0 && maj == major(dev) && min == minor(dev) && inode == (unsigned long long)ino)
            holder = (pid_t)pid;
    }
    fclose(f);
    return holder;
}

/* ES_PORT_BUSY naming the port and, when known, the process that holds it. */
static int port_busy(const struct port *p, pid_t pid, const char *how, struct es_err *err)
{
    char path[64], comm[64] = "";
    FILE *f;

    if (pid <= 0)
        return es_fail(err, ES_PORT_BUSY,
                       "port %s is in use: another program holds it (%s); wait for it to "
                       "finish, or use another port",
                       p->name, how);
    snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
    f = fopen(path, "re");
    if (f != NULL) {
        if (fgets(comm, sizeof(comm), f) != NULL)
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    return es_fail(err, ES_PORT_BUSY,
                   "port %s is in use: %s%spid %ld%s holds its lock; wait for that run to finish, "
                   "or use another port",
                   p->name, comm, comm[0] != '\0' ? " (" : "", (long)pid,
                   comm[0] != '\0' ? ")" : "");
}

/* Before anything is opened: refuse a device whose lock another process holds. */
static int check_unlocked(const struct port *p, struct es_err *err)
{
    struct stat st;
    pid_t pid;

    if (stat(p->name, &st) < 0 || !S_ISCHR(st.st_mode))
        return 0; /* the open names what is wrong */
    pid = lock_holder(st.st_dev, st.st_ino);
    return pid != 0 ? port_busy(p, pid, "flock", err) : 0;
}

/* After the open: take the lock, and TIOCEXCL where it applies. */
static int lock_fd(struct port *p, struct es_err *err)
{
    struct stat st;

    if (fstat(p->fd, &st) < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: fstat: %s", p->name, strerror(errno));
    if (flock(p->fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return port_busy(p, lock_holder(st.st_dev, st.st_ino), "flock", err);
        /* A file system without flock (EINVAL, ENOLCK) cannot hold another station's lock
         * either; go on unlocked. */
    }
    if (S_ISCHR(st.st_mode) &&
        (major(st.st_rdev) < PTY_SLAVE_MAJOR_FIRST || major(st.st_rdev) > PTY_SLAVE_MAJOR_LAST) &&
        ioctl(p->fd, TIOCEXCL) == 0)
        p->exclusive = 1;
    return 0;
}

static int open_termios(struct port *p, uint32_t baud, struct es_err *err)
{
    struct termios t;
    int e, rc;

    p->fd = open(p->name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (p->fd < 0) {
        struct stat st;

        e = errno;
        if (e == EBUSY) /* TIOCEXCL: the holder may still be found by its lock */
            return port_busy(p, stat(p->name, &st) == 0 ? lock_holder(st.st_dev, st.st_ino) : 0,
                             "it set TIOCEXCL", err);
        return es_fail(err, ES_PORT_OPEN, "open %s: %s; %s", p->name, strerror(e),
                       e == EACCES   ? "add the user to group dialout"
                       : e == ENOENT ? "check the name ('espstation ports' lists serial ports)"
                       : e == EMFILE || e == ENFILE ? OPEN_FILES_HINT
                                                    : "check the port");
    }
    if (tcgetattr(p->fd, &t) < 0) {
        e = errno;
        rc = es_fail(err, ES_PORT_OPEN, "port %s: tcgetattr: %s; is it a serial port?", p->name,
                     strerror(e));
        goto out_close_fd;
    }
    cfmakeraw(&t);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
    t.c_cflag |= CS8 | CLOCAL | CREAD;
    t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(p->fd, TCSANOW, &t) < 0) {
        rc = es_fail(err, ES_PORT_OPEN, "port %s: tcsetattr (raw 8N1): %s", p->name,
                     strerror(errno));
        goto out_close_fd;
    }
    rc = apply_baud(p, baud, err);
    if (rc < 0) {
        err->code = ES_PORT_OPEN;
        goto out_close_fd;
    }
    return 0;
out_close_fd:
    close(p->fd);
    p->fd = -1;
    return rc;
}

static void close_fd(struct port *p)
{
    if (p->exclusive && p->fd >= 0)
        ioctl(p->fd, TIOCNXCL); /* the flag would outlive us if someone else has it open */
    p->exclusive = 0;
    if (p->sp != NULL) {
        sp_close(p->sp);
        sp_free_port(p->sp);
        p->sp = NULL;
    } else if (p->fd >= 0) {
        close(p->fd);
    }
    p->fd = -1;
}

static void on_tty_poll(uv_poll_t *h, int status, int events);
static void on_drain_timer(uv_timer_t *t);

/* A Unix socket "<name>.ctl" next to the port, with name as given (espsim's symlink), not
 * resolved: espsim's reset channel (sim brief, protocol doc §13.2). */
static int ctl_candidate(const struct port *p, char **path)
{
    struct stat st;
    size_t n = strlen(p->name);

    *path = malloc(n + 5);
    if (*path == NULL)
        return -1;
    memcpy(*path, p->name, n);
    memcpy(*path + n, ".ctl", 5);
    if (stat(*path, &st) == 0 && S_ISSOCK(st.st_mode))
        return 1;
    free(*path);
    *path = NULL;
    return 0;
}

int tty_open(struct port *p, uint32_t baud, struct es_err *err)
{
    char *ctl = NULL;
    int rc;

    rc = check_unlocked(p, err);
    if (rc < 0)
        return rc;
    if (open_libserialport(p, baud) < 0) {
        rc = open_termios(p, baud, err);
        if (rc < 0)
            return rc;
    }
    rc = lock_fd(p, err);
    if (rc < 0) {
        close_fd(p);
        return rc;
    }
    /* Opening a tty asserts DTR and RTS; on a board with RTS wired straight to EN that holds
     * the chip in reset, so both are released right away (protocol doc §5.4). */
    rc = modem_set(p->fd, 0, 0);
    if (rc == 0) {
        p->lines = PORT_LINES_MODEM;
    } else if (rc == -ENOTTY || rc == -EINVAL) {
        p->lines = PORT_LINES_NONE; /* a pty, or a driver without modem lines */
    } else {
        rc = es_fail(err, ES_PORT_OPEN, "port %s: deassert DTR/RTS (TIOCMSET): %s", p->name,
                     strerror(-rc));
        close_fd(p);
        return rc;
    }
    rc = uv_poll_init(p->loop, &p->poll, p->fd);
    if (rc < 0) {
        rc = es_fail(err, ES_PORT_OPEN, "port %s: uv_poll_init: %s", p->name, uv_strerror(rc));
        close_fd(p);
        return rc;
    }
    /* From here on the fd belongs to the poll handle and is closed in its close callback. */
    p->poll.data = p;
    p->poll_init = 1;
    p->pending++;
    uv_timer_init(p->loop, &p->drain_timer);
    p->drain_timer.data = p;
    p->timer_init = 1;
    p->pending++;

    if (p->lines == PORT_LINES_NONE) {
        rc = ctl_candidate(p, &ctl);
        if (rc < 0)
            return es_fail(err, ES_NOMEM, "port %s: out of memory", p->name);
        if (rc == 1) {
            rc = port_ctl_open(p, ctl, err);
            free(ctl);
            if (rc < 0)
                return rc;
        }
    }
    p->poll_events = UV_READABLE | UV_DISCONNECT;
    rc = uv_poll_start(&p->poll, p->poll_events, on_tty_poll);
    if (rc < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: uv_poll_start: %s", p->name, uv_strerror(rc));
    return 0;
}

static size_t sendable(const struct port *p)
{
    return p->baud_pending ? p->barrier : p->q.len;
}

static void update_poll(struct port *p)
{
    int events = UV_READABLE | UV_DISCONNECT | (sendable(p) > 0 ? UV_WRITABLE : 0);
    int rc;

    if (events == p->poll_events)
        return;
    rc = uv_poll_start(&p->poll, events, on_tty_poll);
    if (rc < 0) {
        port_fail(p, ES_PORT_IO, "port %s: uv_poll_start: %s", p->name, uv_strerror(rc));
        return;
    }
    p->poll_events = events;
}

/* Bytes the OS still holds for the line (0 when it cannot say, as for a pty). */
static int os_output_queued(const struct port *p)
{
    int n = 0;

    if (ioctl(p->fd, TIOCOUTQ, &n) < 0)
        return 0;
    return n;
}

/* Every byte due at the old rate has been handed to the OS: wait until the OS has sent them
 * too, then switch. A timer, not tcdrain(), which would block the loop. */
static void baud_step(struct port *p)
{
    struct es_err err;
    int queued = os_output_queued(p);

    if (queued > 0) {
        uint64_t ms = (uint64_t)queued * 10u * 1000u / (p->baud ? p->baud : 9600) + 1;

        uv_timer_start(&p->drain_timer, on_drain_timer, ms, 0);
        return;
    }
    p->baud_pending = 0;
    if (apply_baud(p, p->baud_next, &err) < 0)
        port_fail(p, err.code, "%s", err.msg);
}

void tty_kick(struct port *p)
{
    if (p->closing || p->failed)
        return;
    if (p->baud_pending && p->barrier == 0 && !uv_is_active((uv_handle_t *)&p->drain_timer)) {
        baud_step(p);
        if (p->failed)
            return;
    }
    update_poll(p);
}

static void on_drain_timer(uv_timer_t *t)
{
    struct port *p = t->data;

    tty_kick(p);
}

static void on_readable(struct port *p)
{
    uint8_t buf[4096];
    size_t total = 0;

    while (total < READ_BUDGET_BYTES) {
        ssize_t n = read(p->fd, buf, sizeof(buf));

        if (n > 0) {
            total += (size_t)n;
            p->cb.on_data(p, buf, (size_t)n, p->arg);
            if (p->closing || p->failed)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* spurious readiness, or all read */
        if (n == 0 || errno == EIO || errno == ENXIO || errno == ENODEV)
            port_fail(p, ES_PORT_CLOSED, "port %s closed: board unplugged? (%s)", p->name,
                      n == 0 ? "end of file" : strerror(errno));
        else
            port_fail(p, ES_PORT_IO, "port %s: read: %s", p->name, strerror(errno));
        return;
    }
}

static void on_writable(struct port *p)
{
    while (sendable(p) > 0) {
        ssize_t n = write(p->fd, p->q.buf + p->q.head, sendable(p));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            if (errno == EIO || errno == ENXIO || errno == ENODEV)
                port_fail(p, ES_PORT_CLOSED, "port %s closed: board unplugged? (write: %s)",
                          p->name, strerror(errno));
            else
                port_fail(p, ES_PORT_IO, "port %s: write: %s", p->name, strerror(errno));
            return;
        }
        outq_consume(&p->q, (size_t)n);
        if (p->baud_pending)
            p->barrier -= (size_t)n;
    }
    tty_kick(p);
}

static void on_tty_poll(uv_poll_t *h, int status, int events)
{
    struct port *p = h->data;

    if (p->closing || p->failed)
        return;
    if (status < 0) {
        /* libuv turns POLLERR into UV_EBADF and stops the handle. On a tty that is a hangup
         * (a pty whose master closed, an unplugged adapter): read() names the cause. */
        on_readable(p);
        port_fail(p, ES_PORT_CLOSED, "port %s closed: board unplugged? (poll: %s)", p->name,
                  uv_strerror(status));
        return;
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        on_readable(p);
        if (p->closing || p->failed)
            return;
    }
    if (events & UV_WRITABLE) {
        on_writable(p);
        if (p->closing || p->failed)
            return;
    }
    if (events & UV_DISCONNECT) /* hung up, yet read() did not say so */
        port_fail(p, ES_PORT_CLOSED, "port %s closed: board unplugged? (hangup)", p->name);
}

int tty_set_baud(struct port *p, uint32_t baud, struct es_err *err)
{
    if (p->baud_pending) { /* a change is already waiting: the later rate wins */
        p->baud_next = baud;
        return 0;
    }
    if (p->q.len == 0 && os_output_queued(p) == 0)
        return apply_baud(p, baud, err);
    p->baud_pending = 1;
    p->baud_next = baud;
    p->barrier = p->q.len;
    tty_kick(p);
    return 0;
}

int tty_set_lines(struct port *p, int dtr, int rts, struct es_err *err)
{
    int rc = modem_set(p->fd, dtr, rts);

    if (rc < 0)
        return es_fail(err, ES_PORT_IO, "port %s: set DTR=%d RTS=%d (TIOCMSET): %s", p->name,
                       dtr ? 1 : 0, rts ? 1 : 0, strerror(-rc));
    return 0;
}

void tty_flush_input(struct port *p)
{
    if (p->fd >= 0)
        tcflush(p->fd, TCIFLUSH);
}

void tty_stop(struct port *p)
{
    if (p->poll_init)
        uv_poll_stop(&p->poll);
    if (p->timer_init)
        uv_timer_stop(&p->drain_timer);
}

static void on_tty_poll_closed(uv_handle_t *h)
{
    struct port *p = h->data;

    close_fd(p); /* only now: uv_poll wants the fd alive until its handle is closed */
    port_on_handle_closed(h);
}

void tty_close(struct port *p)
{
    if (p->poll_init) {
        p->poll_init = 0;
        uv_close((uv_handle_t *)&p->poll, on_tty_poll_closed);
    }
    if (p->timer_init) {
        p->timer_init = 0;
        uv_close((uv_handle_t *)&p->drain_timer, port_on_handle_closed);
    }
}
