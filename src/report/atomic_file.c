/* es_atomic_write: replace a file through a temporary file, fsync and rename, so that a crash
 * leaves either the old file or the new one. The rename is atomic on POSIX file systems; the two
 * fsyncs order it: data reaches the disk before the name points at it, and the directory entry
 * reaches the disk before we report success. */
#include "es/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Distinguishes temporary files of one process; the pid distinguishes processes. */
static atomic_uint tmp_counter;

static int valid_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) { /* not expected from a regular file; do not spin */
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Opens a new temporary file next to the target. O_EXCL makes a name left by a crashed station (or
 * a clash with another process) fail instead of being reused; we then try the next number. */
static int open_tmp(const char *dir, const char *name, char *tmp, size_t cap, struct es_err *err)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&tmp_counter, 1u);
        int len = snprintf(tmp, cap, "%s/%s.tmp.%ld-%u", dir, name, (long)getpid(), n);
        int fd;

        if (len < 0 || (size_t)len >= cap)
            return es_fail(err, ES_REPORT, "path %s/%s is too long (limit %zu bytes)", dir, name,
                           cap - 1);
        do {
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        } while (fd < 0 && errno == EINTR);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return es_fail(err, ES_REPORT, "open %s: %s", tmp, strerror(errno));
    }
    return es_fail(err, ES_REPORT, "open %s: 100 temporary names in a row already exist", tmp);
}

/* Some file systems (certain network shares) cannot fsync a directory and say EINVAL; the
 * entry is in place and there is nothing more we can do, so that is success. */
int es_sync_dir(const char *dir, struct es_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return es_fail(err, ES_REPORT, "open directory %s (to fsync it): %s", dir, strerror(errno));
    if (fsync(fd) < 0 && errno != EINVAL && errno != ENOTSUP)
        rc = es_fail(err, ES_REPORT, "fsync directory %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int es_atomic_write(const char *dir, const char *name, const void *data, size_t len,
                    struct es_err *err)
{
    char tmp[4096], dst[4096];
    int fd, rc, n;

    if (dir == NULL || name == NULL || !valid_name(name) || (data == NULL && len > 0))
        return es_fail(err, ES_INVALID_ARG, "es_atomic_write: bad file name '%s' in %s",
                       name ? name : "(null)", dir ? dir : "(null)");
    n = snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(dst))
        return es_fail(err, ES_REPORT, "path %s/%s is too long (limit %zu bytes)", dir, name,
                       sizeof(dst) - 1);

    fd = open_tmp(dir, name, tmp, sizeof(tmp), err);
    if (fd < 0)
        return fd;

    if (write_all(fd, data, len) < 0) {
        rc = es_fail(err, ES_REPORT, "write %s: %s", tmp, strerror(errno));
        goto out_close;
    }
    if (fsync(fd) < 0) {
        rc = es_fail(err, ES_REPORT, "fsync %s: %s", tmp, strerror(errno));
        goto out_close;
    }
    /* close() can report a deferred write error (NFS); an unchecked one would publish a bad file.
     */
    if (close(fd) < 0) {
        rc = es_fail(err, ES_REPORT, "close %s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (rename(tmp, dst) < 0) {
        rc = es_fail(err, ES_REPORT, "rename %s to %s: %s", tmp, dst, strerror(errno));
        goto out_unlink;
    }
    if (es_sync_dir(dir, err) < 0)
        return es_err_prefix(err, "%s is in place", name);
    return 0;

out_close:
    close(fd);
out_unlink:
    unlink(tmp);
    return rc;
}
