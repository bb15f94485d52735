/* The tty transport (port_tty_ops): real serial ports opened through libserialport, and
 * everything it refuses (pseudo-terminals, symlinks to them) opened with plain termios. Either
 * way the fd ends up non-blocking under one uv_poll: read until EAGAIN, write what the OS takes,
 * never block. Rates termios has no constant for are set by port_setspeed.c; a pty's reset lines
 * go to espsim's control socket (port_ctl.c). */
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

#include "port_ctl.h"
#include "port_internal.h"
#include "port_setspeed.h"

/* At most this much is read per readiness callback, so that one chatty port cannot starve the
 * other boards on the loop; level-triggered polling calls us again for the rest. */
#define READ_BUDGET_BYTES (64 * 1024)

/* A tty port: the generic struct port and what only a tty has. */
struct tty_port {
    struct port port;
    int fd;
    struct sp_port *sp; /* NULL when opened through plain termios */
    int exclusive;      /* TIOCEXCL is set: cleared again before the close */
    int modem;          /* TIOCMSET works: the reset lines are the tty's own, not ctl's */
    uv_poll_t poll;
    int poll_init;
    int poll_events;
    uv_timer_t drain_timer; /* waits for the OS output queue before a baud change */
    int timer_init;
    uint32_t baud; /* the rate the line runs at now */
    int baud_pending;
    uint32_t baud_next;
    size_t barrier;      /* with baud_pending: bytes at the front of q still due at the old rate */
    struct port_ctl ctl; /* espsim's "<name>.ctl" reset channel, when the tty has no lines */
};

static struct tty_port *tty_of(struct port *p)
{
    return container_of(p, struct tty_port, port);
}

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

static int sp_fail(struct tty_port *t, const char *what, struct es_err *err)
{
    char *msg = sp_last_error_message();
    int rc = es_fail(err, ES_PORT_IO, "port %s: %s: %s", t->port.name, what, msg ? msg : "failed");

    sp_free_error_message(msg);
    return rc;
}

/* Sets the line rate now. Not called while bytes at the old rate are still queued. */
static int apply_baud(struct tty_port *t, uint32_t baud, struct es_err *err)
{
    struct termios tio;
    speed_t code;
    int rc;

    if (t->sp != NULL) {
        if (baud > INT32_MAX || sp_set_baudrate(t->sp, (int)baud) != SP_OK)
            return sp_fail(t, "set baud rate", err);
        t->baud = baud;
        return 0;
    }
    if (speed_code(baud, &code) < 0) {
        rc = port_setspeed_custom(t->fd, baud);
        if (rc < 0)
            return es_fail(err, ES_PORT_IO,
                           "port %s: set baud rate %u (termios2 BOTHER): %s; try a standard "
                           "rate such as 115200",
                           t->port.name, baud, strerror(-rc));
        t->baud = baud;
        return 0;
    }
    if (tcgetattr(t->fd, &tio) < 0)
        return es_fail(err, ES_PORT_IO, "port %s: tcgetattr: %s", t->port.name, strerror(errno));
    if (cfsetispeed(&tio, code) < 0 || cfsetospeed(&tio, code) < 0 ||
        tcsetattr(t->fd, TCSANOW, &tio) < 0)
        return es_fail(err, ES_PORT_IO, "port %s: set baud rate %u: %s", t->port.name, baud,
                       strerror(errno));
    t->baud = baud;
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

static int open_libserialport(struct tty_port *t, uint32_t baud)
{
    struct sp_port *sp;
    int fd, fl;

    if (baud > INT32_MAX || sp_get_port_by_name(t->port.name, &sp) != SP_OK)
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
    t->sp = sp;
    t->fd = fd;
    t->baud = baud;
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
static int port_busy(const struct tty_port *t, pid_t pid, const char *how, struct es_err *err)
{
    char path[64], comm[64] = "";
    FILE *f;

    if (pid <= 0)
        return es_fail(err, ES_PORT_BUSY,
                       "port %s is in use: another program holds it (%s); wait for it to "
                       "finish, or use another port",
                       t->port.name, how);
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
                   t->port.name, comm, comm[0] != '\0' ? " (" : "", (long)pid,
                   comm[0] != '\0' ? ")" : "");
}

/* Before anything is opened: refuse a device whose lock another process holds. */
static int check_unlocked(const struct tty_port *t, struct es_err *err)
{
    struct stat st;
    pid_t pid;

    if (stat(t->port.name, &st) < 0 || !S_ISCHR(st.st_mode))
        return 0; /* the open names what is wrong */
    pid = lock_holder(st.st_dev, st.st_ino);
    return pid != 0 ? port_busy(t, pid, "flock", err) : 0;
}

/* After the open: take the lock, and TIOCEXCL where it applies. */
static int lock_fd(struct tty_port *t, struct es_err *err)
{
    struct stat st;

    if (fstat(t->fd, &st) < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: fstat: %s", t->port.name, strerror(errno));
    if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return port_busy(t, lock_holder(st.st_dev, st.st_ino), "flock", err);
        /* A file system without flock (EINVAL, ENOLCK) cannot hold another station's lock
         * either; go on unlocked. */
    }
    if (S_ISCHR(st.st_mode) &&
        (major(st.st_rdev) < PTY_SLAVE_MAJOR_FIRST || major(st.st_rdev) > PTY_SLAVE_MAJOR_LAST) &&
        ioctl(t->fd, TIOCEXCL) == 0)
        t->exclusive = 1;
    return 0;
}

static int open_termios(struct tty_port *t, uint32_t baud, struct es_err *err)
{
    struct termios tio;
    int e, rc;

    t->fd = open(t->port.name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (t->fd < 0) {
        struct stat st;

        e = errno;
        if (e == EBUSY) /* TIOCEXCL: the holder may still be found by its lock */
            return port_busy(t,
                             stat(t->port.name, &st) == 0 ? lock_holder(st.st_dev, st.st_ino) : 0,
                             "it set TIOCEXCL", err);
        return es_fail(err, ES_PORT_OPEN, "open %s: %s; %s", t->port.name, strerror(e),
                       e == EACCES   ? "add the user to group dialout"
                       : e == ENOENT ? "check the name ('espstation ports' lists serial ports)"
                       : e == EMFILE || e == ENFILE ? OPEN_FILES_HINT
                                                    : "check the port");
    }
    if (tcgetattr(t->fd, &tio) < 0) {
        e = errno;
        rc = es_fail(err, ES_PORT_OPEN, "port %s: tcgetattr: %s; is it a serial port?",
                     t->port.name, strerror(e));
        goto out_close_fd;
    }
    cfmakeraw(&tio);
    tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
    tio.c_cflag |= CS8 | CLOCAL | CREAD;
    tio.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (tcsetattr(t->fd, TCSANOW, &tio) < 0) {
        rc = es_fail(err, ES_PORT_OPEN, "port %s: tcsetattr (raw 8N1): %s", t->port.name,
                     strerror(errno));
        goto out_close_fd;
    }
    rc = apply_baud(t, baud, err);
    if (rc < 0) {
        err->code = ES_PORT_OPEN;
        goto out_close_fd;
    }
    return 0;
out_close_fd:
    close(t->fd);
    t->fd = -1;
    return rc;
}

static void close_fd(struct tty_port *t)
{
    if (t->exclusive && t->fd >= 0)
        ioctl(t->fd, TIOCNXCL); /* the flag would outlive us if someone else has it open */
    t->exclusive = 0;
    if (t->sp != NULL) {
        sp_close(t->sp);
        sp_free_port(t->sp);
        t->sp = NULL;
    } else if (t->fd >= 0) {
        close(t->fd);
    }
    t->fd = -1;
}

static void on_tty_poll(uv_poll_t *h, int status, int events);
static void on_drain_timer(uv_timer_t *h);

/* A Unix socket "<name>.ctl" next to the port, with name as given (espsim's symlink), not
 * resolved: espsim's reset channel (sim brief, protocol doc §13.2). */
static int ctl_candidate(const struct tty_port *t, char **path)
{
    struct stat st;
    size_t n = strlen(t->port.name);

    *path = malloc(n + 5);
    if (*path == NULL)
        return -1;
    memcpy(*path, t->port.name, n);
    memcpy(*path + n, ".ctl", 5);
    if (stat(*path, &st) == 0 && S_ISSOCK(st.st_mode))
        return 1;
    free(*path);
    *path = NULL;
    return 0;
}

static int tty_open(struct port *p, uint32_t baud, struct es_err *err)
{
    struct tty_port *t = tty_of(p);
    char *ctl = NULL;
    int rc;

    if (baud == 0)
        return es_fail(err, ES_INVALID_ARG, "port %s: baud rate 0", p->name);
    rc = check_unlocked(t, err);
    if (rc < 0)
        return rc;
    if (open_libserialport(t, baud) < 0) {
        rc = open_termios(t, baud, err);
        if (rc < 0)
            return rc;
    }
    rc = lock_fd(t, err);
    if (rc < 0) {
        close_fd(t);
        return rc;
    }
    /* Opening a tty asserts DTR and RTS; on a board with RTS wired straight to EN that holds
     * the chip in reset, so both are released right away (protocol doc §5.4). */
    rc = modem_set(t->fd, 0, 0);
    if (rc == 0) {
        t->modem = 1;
        p->can_reset = 1;
    } else if (rc == -ENOTTY || rc == -EINVAL) {
        t->modem = 0; /* a pty, or a driver without modem lines */
    } else {
        rc = es_fail(err, ES_PORT_OPEN, "port %s: deassert DTR/RTS (TIOCMSET): %s", t->port.name,
                     strerror(-rc));
        close_fd(t);
        return rc;
    }
    rc = uv_poll_init(t->port.loop, &t->poll, t->fd);
    if (rc < 0) {
        rc = es_fail(err, ES_PORT_OPEN, "port %s: uv_poll_init: %s", t->port.name, uv_strerror(rc));
        close_fd(t);
        return rc;
    }
    /* From here on the fd belongs to the poll handle and is closed in its close callback. */
    t->poll_init = 1;
    t->port.pending++;
    uv_timer_init(t->port.loop, &t->drain_timer);
    t->timer_init = 1;
    t->port.pending++;

    if (!t->modem) {
        rc = ctl_candidate(t, &ctl);
        if (rc < 0)
            return es_fail(err, ES_NOMEM, "port %s: out of memory", t->port.name);
        if (rc == 1) {
            rc = port_ctl_open(&t->ctl, p, ctl, err);
            free(ctl);
            if (rc < 0)
                return rc;
            p->can_reset = 1;
        }
    }
    t->poll_events = UV_READABLE | UV_DISCONNECT;
    rc = uv_poll_start(&t->poll, t->poll_events, on_tty_poll);
    if (rc < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: uv_poll_start: %s", t->port.name,
                       uv_strerror(rc));
    return 0;
}

static size_t sendable(const struct tty_port *t)
{
    return t->baud_pending ? t->barrier : t->port.q.len;
}

static void update_poll(struct tty_port *t)
{
    int events = UV_READABLE | UV_DISCONNECT | (sendable(t) > 0 ? UV_WRITABLE : 0);
    int rc;

    if (events == t->poll_events)
        return;
    rc = uv_poll_start(&t->poll, events, on_tty_poll);
    if (rc < 0) {
        port_fail(&t->port, ES_PORT_IO, "port %s: uv_poll_start: %s", t->port.name,
                  uv_strerror(rc));
        return;
    }
    t->poll_events = events;
}

/* Bytes the OS still holds for the line (0 when it cannot say, as for a pty). */
static int os_output_queued(const struct tty_port *t)
{
    int n = 0;

    if (ioctl(t->fd, TIOCOUTQ, &n) < 0)
        return 0;
    return n;
}

/* Every byte due at the old rate has been handed to the OS: wait until the OS has sent them
 * too, then switch. A timer, not tcdrain(), which would block the loop. */
static void baud_step(struct tty_port *t)
{
    struct es_err err;
    int queued = os_output_queued(t);

    if (queued > 0) {
        uint64_t ms = (uint64_t)queued * 10u * 1000u / (t->baud ? t->baud : 9600) + 1;

        uv_timer_start(&t->drain_timer, on_drain_timer, ms, 0);
        return;
    }
    t->baud_pending = 0;
    if (apply_baud(t, t->baud_next, &err) < 0)
        port_fail(&t->port, err.code, "%s", err.msg);
}

static void kick(struct tty_port *t)
{
    if (t->port.closing || t->port.failed)
        return;
    if (t->baud_pending && t->barrier == 0 && !uv_is_active((uv_handle_t *)&t->drain_timer)) {
        baud_step(t);
        if (t->port.failed)
            return;
    }
    update_poll(t);
}

static void on_drain_timer(uv_timer_t *h)
{
    kick(container_of(h, struct tty_port, drain_timer));
}

static void on_readable(struct tty_port *t)
{
    uint8_t buf[4096];
    size_t total = 0;

    while (total < READ_BUDGET_BYTES) {
        ssize_t n = read(t->fd, buf, sizeof(buf));

        if (n > 0) {
            total += (size_t)n;
            if (!port_received(&t->port, buf, (size_t)n))
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* spurious readiness, or all read */
        if (n == 0 || errno == EIO || errno == ENXIO || errno == ENODEV)
            port_fail(&t->port, ES_PORT_CLOSED, "port %s closed: board unplugged? (%s)",
                      t->port.name, n == 0 ? "end of file" : strerror(errno));
        else
            port_fail(&t->port, ES_PORT_IO, "port %s: read: %s", t->port.name, strerror(errno));
        return;
    }
}

static void on_writable(struct tty_port *t)
{
    while (sendable(t) > 0) {
        ssize_t n = write(t->fd, t->port.q.buf + t->port.q.head, sendable(t));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            if (errno == EIO || errno == ENXIO || errno == ENODEV)
                port_fail(&t->port, ES_PORT_CLOSED, "port %s closed: board unplugged? (write: %s)",
                          t->port.name, strerror(errno));
            else
                port_fail(&t->port, ES_PORT_IO, "port %s: write: %s", t->port.name,
                          strerror(errno));
            return;
        }
        outq_consume(&t->port.q, (size_t)n);
        if (t->baud_pending)
            t->barrier -= (size_t)n;
    }
    kick(t);
}

static void on_tty_poll(uv_poll_t *h, int status, int events)
{
    struct tty_port *t = container_of(h, struct tty_port, poll);

    if (t->port.closing || t->port.failed)
        return;
    if (status < 0) {
        /* libuv turns POLLERR into UV_EBADF and stops the handle. On a tty that is a hangup
         * (a pty whose master closed, an unplugged adapter): read() names the cause. */
        on_readable(t);
        port_fail(&t->port, ES_PORT_CLOSED, "port %s closed: board unplugged? (poll: %s)",
                  t->port.name, uv_strerror(status));
        return;
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        on_readable(t);
        if (t->port.closing || t->port.failed)
            return;
    }
    if (events & UV_WRITABLE) {
        on_writable(t);
        if (t->port.closing || t->port.failed)
            return;
    }
    if (events & UV_DISCONNECT) /* hung up, yet read() did not say so */
        port_fail(&t->port, ES_PORT_CLOSED, "port %s closed: board unplugged? (hangup)",
                  t->port.name);
}

/* ---- The ops ---- */

static void tty_kick(struct port *p)
{
    kick(tty_of(p));
}

static int tty_set_baud(struct port *p, uint32_t baud, struct es_err *err)
{
    struct tty_port *t = tty_of(p);

    if (t->baud_pending) { /* a change is already waiting: the later rate wins */
        t->baud_next = baud;
        return 0;
    }
    if (p->q.len == 0 && os_output_queued(t) == 0)
        return apply_baud(t, baud, err);
    t->baud_pending = 1;
    t->baud_next = baud;
    t->barrier = p->q.len;
    kick(t);
    return 0;
}

static int tty_set_lines(struct port *p, int dtr, int rts, struct es_err *err)
{
    struct tty_port *t = tty_of(p);
    int rc;

    if (!t->modem)
        return port_ctl_set_lines(&t->ctl, dtr, rts, err);
    rc = modem_set(t->fd, dtr, rts);
    if (rc < 0)
        return es_fail(err, ES_PORT_IO, "port %s: set DTR=%d RTS=%d (TIOCMSET): %s", p->name,
                       dtr ? 1 : 0, rts ? 1 : 0, strerror(-rc));
    return 0;
}

static void tty_flush_input(struct port *p)
{
    struct tty_port *t = tty_of(p);

    if (t->fd >= 0)
        tcflush(t->fd, TCIFLUSH);
}

static void tty_stop(struct port *p)
{
    struct tty_port *t = tty_of(p);

    if (t->poll_init)
        uv_poll_stop(&t->poll);
    if (t->timer_init)
        uv_timer_stop(&t->drain_timer);
    port_ctl_stop(&t->ctl);
}

static void on_tty_poll_closed(uv_handle_t *h)
{
    struct tty_port *t = container_of((uv_poll_t *)h, struct tty_port, poll);

    close_fd(t); /* only now: uv_poll wants the fd alive until its handle is closed */
    port_release(&t->port);
}

static void on_drain_timer_closed(uv_handle_t *h)
{
    port_release(&container_of((uv_timer_t *)h, struct tty_port, drain_timer)->port);
}

static void tty_close(struct port *p)
{
    struct tty_port *t = tty_of(p);

    t->baud_pending = 0;
    t->barrier = 0;
    if (t->poll_init) {
        t->poll_init = 0;
        uv_close((uv_handle_t *)&t->poll, on_tty_poll_closed);
    }
    if (t->timer_init) {
        t->timer_init = 0;
        uv_close((uv_handle_t *)&t->drain_timer, on_drain_timer_closed);
    }
    port_ctl_close(&t->ctl);
}

static struct port *tty_alloc(void)
{
    struct tty_port *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->fd = -1;
    t->ctl.fd = -1;
    return &t->port;
}

static void tty_free(struct port *p)
{
    struct tty_port *t = tty_of(p);

    port_ctl_free(&t->ctl);
    free(t);
}

const struct port_ops port_tty_ops = {
    .name = "tty",
    .alloc = tty_alloc,
    .open = tty_open,
    .kick = tty_kick,
    .set_baud = tty_set_baud,
    .set_lines = tty_set_lines,
    .flush_input = tty_flush_input,
    .stop = tty_stop,
    .close = tty_close,
    .free = tty_free,
};
