/* The outbox on disk (es/outbox.h): one JSON file per record, named by a sequence number that
 * only grows, written with es_atomic_write and removed once the database has the record. An
 * flock on ".lock" picks the one process that delivers; a crash drops the lock with the
 * process, so the next start takes over without any clean-up. */
#define _DEFAULT_SOURCE /* DT_REG, flock */
#include "es/outbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "es/atomic_file.h"
#include "es/report.h"

#define SEQ_DIGITS 20

int outbox_dir_for(const char *reports_root, const char *station, char *out, size_t cap,
                   struct es_err *err)
{
    char safe[256];
    size_t i;
    int n;

    for (i = 0; station[i] != '\0' && i + 1 < sizeof(safe); i++) {
        char c = station[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        safe[i] = ok ? c : '-';
    }
    safe[i] = '\0';
    /* "." and ".." would name the outbox itself or the reports root. */
    if (strcmp(safe, ".") == 0 || strcmp(safe, "..") == 0 || safe[0] == '\0')
        snprintf(safe, sizeof(safe), "station");
    n = snprintf(out, cap, "%s/outbox/%s", reports_root, safe);
    if (n < 0 || (size_t)n >= cap)
        return es_fail(err, ES_INVALID_ARG, "the outbox path for %s does not fit", reports_root);
    return 0;
}

/* A record's file: SEQ_DIGITS digits, '-', a pid, ".json". Returns 1 and the sequence number
 * for such a name, else 0 (the lock, a temporary file, a file set aside). */
static int parse_name(const char *name, uint64_t *seq)
{
    size_t len = strlen(name);
    char *end;

    if (len < SEQ_DIGITS + 7 || name[SEQ_DIGITS] != '-' || strcmp(name + len - 5, ".json") != 0)
        return 0;
    for (size_t i = 0; i < SEQ_DIGITS; i++)
        if (name[i] < '0' || name[i] > '9')
            return 0;
    *seq = strtoull(name, &end, 10);
    return end == name + SEQ_DIGITS;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The directory's record names, sorted, and (owner) its temporary files removed. */
static int list_dir(struct outbox *ob, char ***out, size_t *n_out, struct es_err *err)
{
    DIR *d = opendir(ob->dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (d == NULL)
        return es_fail(err, ES_REPORT, "opendir %s: %s", ob->dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;

        if (!parse_name(e->d_name, &seq)) {
            /* es_atomic_write's leftovers: NAME.tmp.PID-N, never renamed into place. */
            if (ob->owner && strstr(e->d_name, ".json.tmp.") != NULL)
                unlinkat(dirfd(d), e->d_name, 0);
            continue;
        }
        if (seq >= ob->next_seq)
            ob->next_seq = seq + 1;
        if (n == cap) {
            char **grown = realloc(names, (cap ? cap * 2 : 64) * sizeof(*names));
            if (grown == NULL)
                goto out_nomem;
            names = grown;
            cap = cap ? cap * 2 : 64;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL)
            goto out_nomem;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), by_name);
    *out = names;
    *n_out = n;
    return 0;
out_nomem:
    closedir(d);
    free_names(names, n);
    return es_fail(err, ES_NOMEM, "out of memory listing %s", ob->dir);
}

/* Reads one record; a file that is not a JSON object is set aside as NAME.bad (a person can
 * look at it; it is never sent). Returns the record, or NULL with *bad set (or out of memory). */
static struct outbox_record *load_one(struct outbox *ob, const char *name, uint64_t seq, int *bad)
{
    char path[4200];
    json_error_t jerr;
    struct outbox_record *r;
    json_t *body;

    snprintf(path, sizeof(path), "%s/%s", ob->dir, name);
    body = json_load_file(path, 0, &jerr);
    if (body == NULL || !json_is_object(body)) {
        char aside[4220];

        json_decref(body);
        snprintf(aside, sizeof(aside), "%s.bad", path);
        rename(path, aside);
        *bad = 1;
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        json_decref(body);
        return NULL;
    }
    r->seq = seq;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->body = body;
    return r;
}

int outbox_open(struct outbox *ob, const char *dir, struct outbox_record **loaded, size_t *n_loaded,
                size_t *bad_files, struct es_err *err)
{
    char lock_path[4200];
    struct outbox_record *head = NULL, **tail = &head;
    char **names = NULL;
    size_t n = 0;
    int rc;

    memset(ob, 0, sizeof(*ob));
    ob->lock_fd = -1;
    ob->next_seq = 1;
    *loaded = NULL;
    *n_loaded = 0;
    *bad_files = 0;
    snprintf(ob->dir, sizeof(ob->dir), "%s", dir);
    if ((rc = report_make_dirs(dir, err)) < 0)
        return rc;
    snprintf(lock_path, sizeof(lock_path), "%s/.lock", dir);
    ob->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (ob->lock_fd < 0)
        return es_fail(err, ES_REPORT, "open %s: %s", lock_path, strerror(errno));
    /* Another process holding it: that one delivers; this one only adds records. */
    ob->owner = flock(ob->lock_fd, LOCK_EX | LOCK_NB) == 0;
    if ((rc = list_dir(ob, &names, &n, err)) < 0) {
        outbox_close(ob);
        return rc;
    }
    for (size_t i = 0; ob->owner && i < n; i++) {
        uint64_t seq = 0;
        int bad = 0;
        struct outbox_record *r;

        parse_name(names[i], &seq);
        r = load_one(ob, names[i], seq, &bad);
        if (r == NULL && bad) {
            (*bad_files)++;
            continue;
        }
        if (r == NULL) {
            free_names(names, n);
            while (head != NULL) {
                struct outbox_record *next = head->next;
                outbox_record_free(head);
                head = next;
            }
            outbox_close(ob);
            return es_fail(err, ES_NOMEM, "out of memory reading %s", dir);
        }
        *tail = r;
        tail = &r->next;
        (*n_loaded)++;
    }
    free_names(names, n);
    *loaded = head;
    return 0;
}

void outbox_close(struct outbox *ob)
{
    if (ob->lock_fd >= 0)
        close(ob->lock_fd); /* drops the flock */
    ob->lock_fd = -1;
    ob->owner = 0;
}

struct outbox_record *outbox_record_new(struct outbox *ob, json_t *body)
{
    struct outbox_record *r = calloc(1, sizeof(*r));

    if (r == NULL || body == NULL) {
        free(r);
        json_decref(body);
        return NULL;
    }
    r->seq = ob->next_seq++;
    snprintf(r->name, sizeof(r->name), "%0*llu-%ld.json", SEQ_DIGITS, (unsigned long long)r->seq,
             (long)getpid());
    r->body = body;
    return r;
}

void outbox_record_free(struct outbox_record *r)
{
    if (r == NULL)
        return;
    json_decref(r->body);
    free(r);
}

int outbox_write(const char *dir, const struct outbox_record *r, struct es_err *err)
{
    char *text = json_dumps(r->body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc;

    if (text == NULL)
        return es_fail(err, ES_NOMEM, "%s/%s: out of memory formatting the record", dir, r->name);
    rc = es_atomic_write(dir, r->name, text, strlen(text), err);
    free(text);
    return rc;
}

int outbox_remove(const char *dir, const char *name, struct es_err *err)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return es_fail(err, ES_REPORT, "unlink %s: %s", path, strerror(errno));
    return 0; /* no directory fsync: see outbox.h */
}
