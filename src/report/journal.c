/* journal.jsonl: one JSON object per line, each line one write(2) on an O_APPEND descriptor.
 *
 * One write per line is not quite atomic. Linux copies a write into the page cache one page at a
 * time and stops between pages when a fatal signal is pending (generic_perform_write in
 * mm/filemap.c), so a SIGKILL that lands during the write leaves the first pages of that one line
 * at the end of the file, without its newline. test_report.c's SIGKILL test sees this for lines
 * of any length that cross a 4 KiB boundary. Everything before it is whole, and every line whose
 * write returned is in the file. So: the only torn line is the last one, it lacks its '\n',
 * journal_open() cuts it off, and readers skip a final line without '\n'. A full disk can also
 * cut a write short; then journal_append cuts the file back itself. */
#include "es/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "es/report.h"

/* Returns the length of the file's whole lines: the offset just after its last '\n' (0 if none),
 * or -1 with errno set. */
static off_t whole_lines_end(int fd, off_t size)
{
    char buf[4096];
    off_t end = size;

    while (end > 0) {
        size_t want = end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf);
        ssize_t got = pread(fd, buf, want, end - (off_t)want);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if ((size_t)got != want) { /* the file shrank under us: nobody else should write it */
            errno = EIO;
            return -1;
        }
        for (size_t i = want; i > 0; i--) {
            if (buf[i - 1] == '\n')
                return end - (off_t)want + (off_t)i;
        }
        end -= (off_t)want;
    }
    return 0;
}

int journal_open(struct journal *j, const char *run_dir, struct es_err *err)
{
    struct stat st;
    off_t whole;
    int n, rc;

    j->fd = -1;
    j->size_bytes = 0;
    j->lines = 0;
    j->dropped_bytes = 0;
    j->rotations = 0;
    n = snprintf(j->path, sizeof(j->path), "%s/%s", run_dir, JOURNAL_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof(j->path))
        return es_fail(err, ES_REPORT, "path %s/%s is too long (limit %zu bytes)", run_dir,
                       JOURNAL_FILE_NAME, sizeof(j->path) - 1);
    do {
        j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    } while (j->fd < 0 && errno == EINTR);
    if (j->fd < 0)
        return es_fail(err, ES_REPORT, "open %s: %s", j->path, strerror(errno));
    if (fstat(j->fd, &st) < 0) {
        rc = es_fail(err, ES_REPORT, "fstat %s: %s", j->path, strerror(errno));
        goto out_close;
    }
    /* A station killed in the middle of an append left part of a line: remove it, or the next
     * line would be glued to it. */
    whole = whole_lines_end(j->fd, st.st_size);
    if (whole < 0) {
        rc = es_fail(err, ES_REPORT, "read %s: %s", j->path, strerror(errno));
        goto out_close;
    }
    if (whole < st.st_size && ftruncate(j->fd, whole) < 0) {
        rc = es_fail(err, ES_REPORT, "ftruncate %s (to drop a torn last line): %s", j->path,
                     strerror(errno));
        goto out_close;
    }
    j->dropped_bytes = st.st_size - whole;
    j->size_bytes = whole;
    return 0;

out_close:
    close(j->fd);
    j->fd = -1;
    return rc;
}

/* Copies event's value for key into line, or null when event has none. Returns jansson's
 * 0 or -1 (out of memory). */
static int copy_key(json_t *line, const json_t *event, const char *key)
{
    json_t *v = json_object_get(event, key);

    return json_object_set(line, key, v != NULL ? v : json_null());
}

/* Builds the line object into *out: t, slot, port, event first, then the event's other keys. */
static int build_line(const json_t *event, json_t **out, struct es_err *err)
{
    char t[REPORT_UTC_LEN];
    const char *key;
    json_t *line, *v;
    int bad = 0;

    if (!json_is_object(event) || !json_is_string(json_object_get(event, "event")))
        return es_fail(err, ES_INVALID_ARG, "journal event without an \"event\" string");
    line = json_object();
    if (line == NULL)
        goto out_nomem;
    report_format_utc(report_now_ms(), t);
    bad |= json_object_set_new(line, "t", json_string(t));
    bad |= copy_key(line, event, "slot");
    bad |= copy_key(line, event, "port");
    bad |= copy_key(line, event, "event");
    /* The iteration macro takes a non-const object but does not modify it. */
    json_object_foreach((json_t *)event, key, v)
    {
        if (json_object_get(line, key) == NULL)
            bad |= json_object_set(line, key, v);
    }
    if (bad)
        goto out_nomem;
    *out = line;
    return 0;

out_nomem:
    json_decref(line);
    return es_fail(err, ES_NOMEM, "journal %s event: out of memory",
                   json_string_value(json_object_get(event, "event")));
}

int journal_append(struct journal *j, const json_t *event, struct es_err *err)
{
    json_t *line;
    char *text;
    size_t len;
    ssize_t n;
    int rc = 0;

    if (j->fd < 0)
        return es_fail(err, ES_INVALID_ARG, "journal %s is not open", j->path);
    rc = build_line(event, &line, err);
    if (rc < 0)
        return rc;
    text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text == NULL)
        return es_fail(err, ES_NOMEM, "journal %s: out of memory (or invalid UTF-8 in event)",
                       j->path);
    /* json_dumps never emits a raw newline in compact mode: strings escape it as \n. */
    len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: the buffer is exactly one line now */

    /* A caught signal does not interrupt a write to a regular file once it has started (only a
     * fatal one does, see the top of this file), so EINTR means nothing was written and retrying
     * keeps the line whole. */
    do {
        n = write(j->fd, text, len + 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        rc = es_fail(err, ES_REPORT, "write %s: %s", j->path, strerror(errno));
    } else if ((size_t)n != len + 1) {
        /* Disk full or a file size limit: drop the partial line so every line stays whole. We are
         * the only writer, so the file ended at size_bytes before this write. */
        int trunc_rc = ftruncate(j->fd, j->size_bytes);

        rc = es_fail(err, ES_REPORT, "write %s: only %zd of %zu bytes written (disk full?)%s",
                     j->path, n, len + 1,
                     trunc_rc < 0 ? "; the partial line could not be removed" : "");
    } else {
        j->size_bytes += (off_t)n;
        j->lines++;
    }
    free(text);
    return rc;
}

int journal_sync(struct journal *j, struct es_err *err)
{
    if (j->fd < 0)
        return es_fail(err, ES_INVALID_ARG, "journal %s is not open", j->path);
    if (fdatasync(j->fd) < 0)
        return es_fail(err, ES_REPORT, "fdatasync %s: %s", j->path, strerror(errno));
    return 0;
}

int journal_rotate(struct journal *j, int *old_fd, struct es_err *err)
{
    char rotated[sizeof(j->path) + 16];
    size_t dir_len = strlen(j->path) - strlen(JOURNAL_FILE_NAME);
    int fd;

    *old_fd = -1;
    if (j->fd < 0)
        return es_fail(err, ES_INVALID_ARG, "journal %s is not open", j->path);
    snprintf(rotated, sizeof(rotated), "%.*sjournal.%06u.jsonl", (int)dir_len, j->path,
             j->rotations + 1);
    if (rename(j->path, rotated) < 0)
        return es_fail(err, ES_REPORT, "rename %s to %s: %s", j->path, rotated, strerror(errno));
    j->rotations++;
    do {
        fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0666);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return es_fail(err, ES_REPORT, "open %s after rotating the journal: %s", j->path,
                       strerror(errno));
    *old_fd = j->fd;
    j->fd = fd;
    j->size_bytes = 0;
    return 0;
}

int journal_retire(int fd, const char *path, struct es_err *err)
{
    int rc = 0;

    if (fd < 0)
        return 0;
    if (fdatasync(fd) < 0)
        rc = es_fail(err, ES_REPORT, "fdatasync %s (rotated): %s", path, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = es_fail(err, ES_REPORT, "close %s (rotated): %s", path, strerror(errno));
    return rc;
}

int journal_close(struct journal *j, struct es_err *err)
{
    int rc = 0;

    if (j->fd < 0)
        return 0;
    if (fdatasync(j->fd) < 0)
        rc = es_fail(err, ES_REPORT, "fdatasync %s: %s", j->path, strerror(errno));
    if (close(j->fd) < 0 && rc == 0)
        rc = es_fail(err, ES_REPORT, "close %s: %s", j->path, strerror(errno));
    j->fd = -1;
    return rc;
}
