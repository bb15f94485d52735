/* The station's outbox: records waiting for the fleet database, on disk beside the reports
 * (<reports root>/outbox/<station id>/), one JSON file per record, so that a record survives a
 * crash, a power cut or a database that is down for days. A record is written (atomically, and
 * synced) before anyone may send it, and removed only after the database confirmed it.
 *
 * File names carry a sequence number that only grows, also across restarts (the next one is the
 * highest found plus one), and the writer's pid: NNNNNNNNNNNNNNNNNNNN-PID.json (20 decimal digits,
 * so names sort in sequence order). One process delivers an outbox: the one holding an flock on
 * its ".lock" file. A second station with the same id and reports root still writes its records
 * there (the pid keeps names apart) and leaves them for the next start of the holder.
 *
 * Blocking file I/O throughout: outbox_open runs before the loop, outbox_write and outbox_remove
 * on a pool thread. No libuv here; the publisher (es/publish.h) schedules the calls. */
#ifndef ES_OUTBOX_H
#define ES_OUTBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "es/err.h"

#define OUTBOX_NAME_MAX 48

/* One record: its file and its JSON body ("kind": "board" or "run", see es/publish.h). */
struct outbox_record {
    uint64_t seq;
    char name[OUTBOX_NAME_MAX]; /* the file name in the outbox directory */
    json_t *body;               /* owned */
    struct outbox_record *next; /* a list in sequence order */
};

struct outbox {
    char dir[4096];
    int lock_fd;       /* the ".lock" file, flocked when owner; -1 after outbox_close */
    int owner;         /* this process holds the lock: it delivers the records */
    uint64_t next_seq; /* the next record's number (taken on one thread only) */
};

/* Makes dir (and its parents) if needed, takes the lock if free, removes temporary files a crash
 * left (owner only), and finds the next sequence number. When owner, *loaded is the list of
 * records already waiting, in sequence order (the caller owns it: outbox_record_free each), and
 * a file that is not a record (unreadable JSON) is renamed NAME.bad, said in *bad_files.
 * Returns 0 or ES_REPORT (a message naming the call and the path). */
int outbox_open(struct outbox *ob, const char *dir, struct outbox_record **loaded, size_t *n_loaded,
                size_t *bad_files, struct es_err *err);
/* Releases the lock. */
void outbox_close(struct outbox *ob);

/* The directory for a station: reports_root/outbox/<station id with every character other than
 * [A-Za-z0-9._-] turned into '-'>. Returns 0, or ES_INVALID_ARG when it does not fit cap. */
int outbox_dir_for(const char *reports_root, const char *station, char *out, size_t cap,
                   struct es_err *err);

/* A new record for body (which it takes) with the next sequence number, not yet written.
 * Returns NULL out of memory (body is released). */
struct outbox_record *outbox_record_new(struct outbox *ob, json_t *body);
void outbox_record_free(struct outbox_record *r);

/* Writes r to dir atomically and durably (es_atomic_write: fsynced file and directory). Blocks
 * on the disk: a pool thread. Returns 0, ES_NOMEM or ES_REPORT. */
int outbox_write(const char *dir, const struct outbox_record *r, struct es_err *err);
/* Removes the file name from dir, without syncing dir: a removal a power cut undoes only brings
 * back a record the database has, and the database's unique key makes its second delivery a
 * no-op, so an fsync here would buy nothing for its cost (one per board: the floor benchmark
 * showed the outbox's fsyncs are most of publishing's CPU). Blocks: a pool thread. A file
 * already gone counts as removed. Returns 0 or ES_REPORT. */
int outbox_remove(const char *dir, const char *name, struct es_err *err);

#endif
