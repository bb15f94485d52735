/* The run directory: creating reports/<run-id>/ under a name no other run has, and checking
 * before any board is touched that the reports directory can hold the run at all. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "es/atomic_file.h"
#include "es/report.h"

#define PATH_CAP 4096

/* Like mkdir -p: creates each missing component of path. An existing non-directory fails with
 * ENOTDIR from mkdir or stat, which the message names. */
int report_make_dirs(const char *path, struct es_err *err)
{
    char buf[PATH_CAP];
    size_t len = strlen(path);
    struct stat st;

    if (len == 0 || len >= sizeof(buf))
        return es_fail(err, ES_REPORT, "reports directory '%s' is empty or too long", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0777) < 0 && errno != EEXIST)
            return es_fail(err, ES_REPORT, "mkdir %s: %s", buf, strerror(errno));
        buf[i] = path[i];
    }
    if (stat(path, &st) < 0)
        return es_fail(err, ES_REPORT, "stat %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return es_fail(err, ES_REPORT, "%s exists but is not a directory", path);
    return 0;
}

/* What the probe writes: one block, enough to meet a small file size limit or a read-only
 * mount, too small to matter on any disk. */
#define PROBE_BYTES 512

/* Creates, writes, fsyncs and removes one small file in dir: the calls a report makes. */
static int probe_write(const char *dir, struct es_err *err)
{
    static const char zeros[PROBE_BYTES];
    char path[PATH_CAP];
    int fd, n, rc = 0;
    ssize_t w;

    n = snprintf(path, sizeof(path), "%s/.espstation-probe-%ld", dir, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(path))
        return es_fail(err, ES_REPORT, "reports directory %s: its path is too long", dir);
    unlink(path); /* left by a station of the same pid that was killed */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return es_fail(err, ES_REPORT,
                       "reports directory %s is not writable: create %s: %s; give a writable "
                       "directory with --reports or the profile's reports:",
                       dir, path, strerror(errno));
    for (size_t done = 0; done < sizeof(zeros); done += (size_t)w) {
        w = write(fd, zeros + done, sizeof(zeros) - done);
        if (w < 0 && errno == EINTR) {
            w = 0;
            continue;
        }
        if (w <= 0) { /* the second write of a short one names the cause (ENOSPC, EFBIG) */
            rc = es_fail(err, ES_REPORT,
                         "reports directory %s cannot take a report: write %s: %s; free space, "
                         "raise the file size limit, or give another directory with --reports",
                         dir, path, w < 0 ? strerror(errno) : "nothing written");
            break;
        }
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = es_fail(err, ES_REPORT, "reports directory %s cannot take a report: fsync %s: %s", dir,
                     path, strerror(errno));
    close(fd);
    unlink(path);
    return rc;
}

int report_dir_preflight(const char *reports_root, uint64_t need_bytes, struct es_err *err)
{
    struct statvfs vfs;
    uint64_t avail;
    int rc;

    rc = report_make_dirs(reports_root, err);
    if (rc < 0)
        return es_err_prefix(err, "reports directory %s cannot be used", reports_root);
    rc = probe_write(reports_root, err);
    if (rc < 0)
        return rc;
    if (statvfs(reports_root, &vfs) < 0)
        return es_fail(err, ES_REPORT, "reports directory %s: statvfs: %s", reports_root,
                       strerror(errno));
    avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (avail < need_bytes)
        return es_fail(err, ES_REPORT,
                       "reports directory %s has %llu KiB free; this run needs at least %llu KiB "
                       "for its reports and journal: free space or give another directory with "
                       "--reports",
                       reports_root, (unsigned long long)(avail / 1024),
                       (unsigned long long)((need_bytes + 1023) / 1024));
    /* f_files is 0 where the file system has no inode limit (btrfs, some tmpfs). */
    if (vfs.f_files > 0 && vfs.f_favail < 64)
        return es_fail(err, ES_REPORT,
                       "reports directory %s has %llu free inodes; free some or give another "
                       "directory with --reports",
                       reports_root, (unsigned long long)vfs.f_favail);
    return 0;
}

int report_run_dir_create(const char *reports_root, char *out_dir, size_t cap, struct es_err *err)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    unsigned suffix;
    int rc;

    rc = report_make_dirs(reports_root, err);
    if (rc < 0)
        return rc;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    /* Two stations started in the same second almost always differ in pid or nanoseconds; when
     * they do not, mkdir says EEXIST and the next suffix is tried. */
    suffix = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec;
    for (int attempt = 0; attempt < 256; attempt++, suffix++) {
        int n = snprintf(out_dir, cap, "%s/%s-%04x", reports_root, stamp, suffix & 0xffffu);

        if (n < 0 || (size_t)n >= cap)
            return es_fail(err, ES_REPORT, "run directory path under %s does not fit %zu bytes",
                           reports_root, cap);
        if (mkdir(out_dir, 0777) == 0)
            return es_sync_dir(reports_root, err);
        if (errno != EEXIST)
            return es_fail(err, ES_REPORT, "mkdir %s: %s", out_dir, strerror(errno));
    }
    return es_fail(err, ES_REPORT, "mkdir %s: 256 run directories of this second already exist",
                   out_dir);
}
