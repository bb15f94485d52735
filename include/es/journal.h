/* The run journal: reports/<run-id>/journal.jsonl, one compact JSON object per line, appended as
 * events happen. Each line goes out in a single write(2) on an O_APPEND descriptor, so every line
 * whose append returned is in the file even if the station is then SIGKILLed (the kernel has it;
 * journal_sync() makes it survive a power cut too).
 *
 * A SIGKILL that lands *during* an append can leave the start of that one line at the end of the
 * file without its '\n' (Linux stops a write between pages when a fatal signal is pending; see
 * journal.c). Readers must therefore skip a final line that has no '\n'; journal_open() removes
 * such a tail before appending. No other line is ever partial. */
#ifndef ES_JOURNAL_H
#define ES_JOURNAL_H

#include <jansson.h>
#include <sys/types.h>

#include "es/err.h"

#define JOURNAL_FILE_NAME "journal.jsonl"

/* Embedded in the caller's struct; journal_open() fills it, journal_close() releases it. */
struct journal {
    int fd;              /* -1 when closed */
    off_t size_bytes;    /* length of the file after the last whole line we wrote */
    char path[4096];     /* for error messages */
    unsigned long lines; /* lines appended through this handle */
    off_t dropped_bytes; /* torn last line journal_open() removed (0: none), for a log line */
    unsigned rotations;  /* files journal_rotate() has closed off */
};

/* Opens (creating if needed) run_dir/journal.jsonl for appending. An existing file that ends in
 * a torn line (no '\n') is cut back to its last whole line; dropped_bytes says how much went.
 * Returns 0 or ES_REPORT. */
int journal_open(struct journal *j, const char *run_dir, struct es_err *err);

/* Appends one line built from event, which the journal only borrows. event must be an object
 * with a string "event"; the line's keys are, in order: "t" (the current UTC time as
 * 2026-11-25T19:30:00.123Z, always stamped here; a "t" in event is ignored), "slot" and "port"
 * (copied from event, null when event has none), "event", then event's other keys in their order.
 *
 * If the disk refuses part of the line, the file is cut back to the previous whole line, so the
 * journal never holds half a line. Returns 0, ES_INVALID_ARG (no "event" string), ES_NOMEM, or
 * ES_REPORT. Cheap enough for a loop callback (one write, no fsync). */
int journal_append(struct journal *j, const json_t *event, struct es_err *err);

/* fdatasync: everything appended so far survives a power cut. The station calls it when a board
 * finishes. Returns 0 or ES_REPORT. */
int journal_sync(struct journal *j, struct es_err *err);

/* Size rotation, for a continuous run that may last a week: renames journal.jsonl to
 * journal.NNNNNN.jsonl (000001, 000002, ...: the names sort in the order written, and every
 * rotated file holds whole lines only) and opens a new, empty journal.jsonl for the next lines.
 * The old descriptor is handed back in *old_fd and not closed, since a sync of it may still be
 * running on another thread: the caller passes it to journal_retire() once that is done.
 * Returns 0, or ES_REPORT (the journal then still appends to the old file, under its new name
 * when only the open failed). */
int journal_rotate(struct journal *j, int *old_fd, struct es_err *err);
/* fdatasync and close of a descriptor journal_rotate() handed back. Returns 0 or ES_REPORT. */
int journal_retire(int fd, const char *path, struct es_err *err);
/* Syncs and closes. Safe on a journal that is already closed. Returns 0 or ES_REPORT (the fd is
 * closed either way). */
int journal_close(struct journal *j, struct es_err *err);

#endif
