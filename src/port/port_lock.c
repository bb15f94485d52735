/* The port lock (issue 11 #4), for the tty transport.
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
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include "port_lock.h"

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
static int busy(const char *name, pid_t pid, const char *how, struct es_err *err)
{
    char path[64], comm[64] = "";
    FILE *f;

    if (pid <= 0)
        return es_fail(err, ES_PORT_BUSY,
                       "port %s is in use: another program holds it (%s); wait for it to "
                       "finish, or use another port",
                       name, how);
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
                   name, comm, comm[0] != '\0' ? " (" : "", (long)pid, comm[0] != '\0' ? ")" : "");
}

int port_lock_check(const char *name, struct es_err *err)
{
    struct stat st;
    pid_t pid;

    if (stat(name, &st) < 0 || !S_ISCHR(st.st_mode))
        return 0; /* the open names what is wrong */
    pid = lock_holder(st.st_dev, st.st_ino);
    return pid != 0 ? busy(name, pid, "flock", err) : 0;
}

int port_lock_take(const char *name, int fd, int *exclusive, struct es_err *err)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return es_fail(err, ES_PORT_OPEN, "port %s: fstat: %s", name, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return busy(name, lock_holder(st.st_dev, st.st_ino), "flock", err);
        /* A file system without flock (EINVAL, ENOLCK) cannot hold another station's lock
         * either; go on unlocked. */
    }
    if (S_ISCHR(st.st_mode) &&
        (major(st.st_rdev) < PTY_SLAVE_MAJOR_FIRST || major(st.st_rdev) > PTY_SLAVE_MAJOR_LAST) &&
        ioctl(fd, TIOCEXCL) == 0)
        *exclusive = 1;
    return 0;
}

int port_lock_busy(const char *name, struct es_err *err)
{
    struct stat st;

    return busy(name, stat(name, &st) == 0 ? lock_holder(st.st_dev, st.st_ino) : 0,
                "it set TIOCEXCL", err);
}
