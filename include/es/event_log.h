/* The run's event sink for machines: every event the station passes on (a board's phase, a note,
 * its verdict, a duplicate MAC, the run's start and end) becomes one line of the journal
 * (es/journal.h) and, with --json, the same line on stdout. The station hands over plain data
 * and never builds JSON itself. The journal failing (disk full, file size limit) is said once on
 * the diagnostics stream and remembered: the run has then failed, but every line before is whole
 * and reports are still written. The UI's sink is es/ui.h's struct ui_view. */
#ifndef ES_EVENT_LOG_H
#define ES_EVENT_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "es/err.h"
#include "es/journal.h"
#include "es/report.h"

/* Embedded in the station; event_log_open() fills it, event_log_close() releases it. */
struct event_log {
    struct journal journal;
    int journal_ok; /* lines are still being appended */
    char *error;    /* the first journal failure's message (malloc'd), or NULL */
    FILE *echo;     /* each line also goes here ("t" first), or NULL */
    FILE *diag;     /* where a journal failure is said (stderr) */
    /* Rotate the journal (journal_rotate) once it holds this many bytes; 0: never. Set by the
     * station after event_log_open for a continuous run. */
    long long rotate_bytes;
    int retired_fd; /* the file a rotation closed off, to sync and close on the pool; -1: none */
};

/* One sync of the journal, taken on the loop thread and run on the pool: the descriptor lines
 * go to now, and a rotated one to sync and close (-1: none). */
struct event_log_sync_req {
    int fd;
    int retired_fd;
    const char *path;
};

/* Opens run_dir/journal.jsonl (journal_open). echo may be NULL. Returns 0 or ES_REPORT. */
int event_log_open(struct event_log *log, const char *run_dir, FILE *echo, FILE *diag,
                   struct es_err *err);

/* Each appends one line; cheap enough for a loop callback (one write(2), no sync). slot < 0:
 * a line for the run, without "slot" and "port". */
void event_log_run_start(struct event_log *log, const char *profile_name, size_t boards,
                         const char *mode);
void event_log_phase(struct event_log *log, int slot, const char *port, const char *phase);
void event_log_note(struct event_log *log, int slot, const char *port, const char *what,
                    const char *text);
/* slot's board has the MAC of other_slot's. */
void event_log_duplicate_mac(struct event_log *log, int slot, const char *port,
                             const uint8_t mac[6], int other_slot, const char *other_port);
/* A board's verdict, from its report as written: report_file is the report's name, or NULL with
 * report_error saying why none was written. */
void event_log_done(struct event_log *log, int slot, const char *port,
                    const struct report_device *rep, const char *report_file,
                    const char *report_error);
void event_log_run_end(struct event_log *log, size_t passed, size_t failed, size_t interrupted);
/* A continuous run's counts so far, after each board: boards (passed and failed) per hour of run
 * time and their mean session time. */
void event_log_totals(struct event_log *log, size_t passed, size_t failed, size_t interrupted,
                      double boards_per_hour, double mean_board_s);

/* Publishing to the fleet database (es/publish.h). The connection's state changed: state
 * ("connecting", "connected", "down"), the database as fleet_url_display shows it, why (NULL when
 * connected) and how many records wait in the outbox. */
void event_log_publish(struct event_log *log, const char *state, const char *database,
                       const char *message, size_t waiting);
/* The database confirmed a record: kind ("board", "run"), its key (record_key, or the run id),
 * inserted (0: it was there already, a second delivery), latency_ms from the record's creation to
 * the confirmation, and what is still waiting. */
void event_log_published(struct event_log *log, const char *kind, const char *key, int inserted,
                         long long latency_ms, size_t waiting);
/* A board whose MAC already passed the same profile on another run or station (the fleet
 * database's answer): when is "before_flash" (a lookup while the board was flashed; slot and
 * port name it) or "on_insert" (slot < 0; record_key names it). dup_* name the earlier board. */
void event_log_fleet_duplicate(struct event_log *log, int slot, const char *port, const char *when,
                               const char *mac, const char *record_key, const char *dup_station,
                               const char *dup_run_id, const char *dup_slot, const char *dup_at);

/* fdatasync of everything appended so far. Blocks on the disk, so the station calls it on the
 * thread pool; it reads only the journal's descriptor and path, so appends may go on meanwhile on
 * the loop thread. Call it only while journal_ok (checked on the loop thread) and before
 * event_log_close(). Returns 0, or ES_REPORT for the caller to hand to event_log_failed() on the
 * loop thread. */
int event_log_sync(struct event_log *log, struct es_err *err);

/* Takes what the next sync needs (the retired descriptor passes to req). Loop thread. */
void event_log_sync_take(struct event_log *log, struct event_log_sync_req *req);
/* fdatasync of req's descriptor, after syncing and closing its retired one. On the pool, like
 * event_log_sync. Returns 0 or ES_REPORT. */
int event_log_sync_run(const struct event_log_sync_req *req, struct es_err *err);
/* The journal cannot be written any more: says so once on diag, keeps the first message, and
 * appends no more lines. */
void event_log_failed(struct event_log *log, const struct es_err *err);

/* Syncs and closes the journal (a failure goes to event_log_failed) and frees what log holds,
 * except error, which stays readable until event_log_free(). */
void event_log_close(struct event_log *log);
void event_log_free(struct event_log *log);

#endif
