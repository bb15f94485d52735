/* Journal lines (and --json stdout lines) from the station's events: the one place that knows
 * each event's keys and their order. */
#include "es/event_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/hex.h"

int event_log_open(struct event_log *log, const char *run_dir, FILE *echo, FILE *diag,
                   struct es_err *err)
{
    int rc;

    memset(log, 0, sizeof(*log));
    log->retired_fd = -1;
    log->echo = echo;
    log->diag = diag;
    rc = journal_open(&log->journal, run_dir, err);
    log->journal_ok = rc == 0;
    return rc;
}

void event_log_failed(struct event_log *log, const struct es_err *err)
{
    if (log->journal_ok)
        fprintf(log->diag, "espstation: %s; the journal stops here, every line before is whole\n",
                err->msg);
    log->journal_ok = 0;
    if (log->error == NULL)
        log->error = strdup(err->msg);
}

/* A continuous run's journal is closed off in files of about rotate_bytes; one file waiting to
 * be retired at a time (rotations are megabytes apart, syncs a board apart). */
static void rotate_if_full(struct event_log *log)
{
    struct es_err err;
    int old_fd;

    if (log->rotate_bytes <= 0 || log->journal.size_bytes < log->rotate_bytes ||
        log->retired_fd >= 0)
        return;
    if (journal_rotate(&log->journal, &old_fd, &err) < 0) {
        event_log_failed(log, &err);
        return;
    }
    log->retired_fd = old_fd;
}

/* Appends one line: slot and port first (when slot >= 0), then "event", then fields, which this
 * takes ownership of (NULL: out of memory building them, the line has no fields). */
static void emit(struct event_log *log, int slot, const char *port, const char *event,
                 json_t *fields)
{
    struct es_err err;
    json_t *o = json_object();

    if (o == NULL) {
        json_decref(fields);
        return;
    }
    if (slot >= 0) {
        json_object_set_new(o, "slot", json_integer(slot));
        json_object_set_new(o, "port", json_string(port));
    }
    json_object_set_new(o, "event", json_string(event));
    if (fields != NULL) {
        json_object_update(o, fields);
        json_decref(fields);
    }
    if (log->journal_ok && journal_append(&log->journal, o, &err) < 0)
        event_log_failed(log, &err);
    else if (log->journal_ok)
        rotate_if_full(log);
    if (log->echo != NULL) {
        /* The journal's line shape on stdout too: "t" first. */
        char t[REPORT_UTC_LEN], *line;
        json_t *out = json_object();

        report_format_utc(report_now_ms(), t);
        json_object_set_new(out, "t", json_string(t));
        json_object_update(out, o);
        line = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line != NULL) {
            fprintf(log->echo, "%s\n", line);
            fflush(log->echo);
            free(line);
        }
        json_decref(out);
    }
    json_decref(o);
}

void event_log_run_start(struct event_log *log, const char *profile_name, size_t boards,
                         const char *mode)
{
    emit(log, -1, NULL, "run_start",
         json_pack("{ss si ss}", "profile", profile_name, "boards", (int)boards, "mode", mode));
}

void event_log_phase(struct event_log *log, int slot, const char *port, const char *phase)
{
    emit(log, slot, port, "phase", json_pack("{ss}", "phase", phase));
}

void event_log_note(struct event_log *log, int slot, const char *port, const char *what,
                    const char *text)
{
    emit(log, slot, port, what, json_pack("{ss}", "text", text));
}

void event_log_duplicate_mac(struct event_log *log, int slot, const char *port,
                             const uint8_t mac[6], int other_slot, const char *other_port)
{
    char text[ES_MAC_TEXT_LEN];

    es_format_mac(mac, ':', text);
    emit(log, slot, port, "duplicate_mac",
         json_pack("{ss si ss}", "mac", text, "other_slot", other_slot, "other_port", other_port));
}

void event_log_done(struct event_log *log, int slot, const char *port,
                    const struct report_device *rep, const char *report_file,
                    const char *report_error)
{
    char mac[ES_MAC_TEXT_LEN] = "";
    int pass = rep->result == REPORT_PASS;

    if (rep->mac_valid)
        es_format_mac(rep->mac, ':', mac);
    emit(log, slot, port, "done",
         json_pack("{ss ss* ss* ss* ss* ss*}", "result", report_result_name(rep->result), "mac",
                   rep->mac_valid ? mac : NULL, "error",
                   pass ? NULL : es_code_name(rep->error.code), "message",
                   pass ? NULL : rep->error.msg, "report", report_file, "report_error",
                   report_file != NULL ? NULL : report_error));
}

void event_log_run_end(struct event_log *log, size_t passed, size_t failed, size_t interrupted)
{
    emit(log, -1, NULL, "run_end",
         json_pack("{sI sI sI}", "passed", (json_int_t)passed, "failed", (json_int_t)failed,
                   "interrupted", (json_int_t)interrupted));
}

void event_log_totals(struct event_log *log, size_t passed, size_t failed, size_t interrupted,
                      double boards_per_hour, double mean_board_s)
{
    emit(log, -1, NULL, "totals",
         json_pack("{sI sI sI sf sf}", "passed", (json_int_t)passed, "failed", (json_int_t)failed,
                   "interrupted", (json_int_t)interrupted, "boards_per_hour",
                   (double)(long long)(boards_per_hour * 10 + 0.5) / 10, "mean_board_s",
                   (double)(long long)(mean_board_s * 1000 + 0.5) / 1000));
}

void event_log_publish(struct event_log *log, const char *state, const char *database,
                       const char *message, size_t waiting)
{
    emit(log, -1, NULL, "publish",
         json_pack("{ss ss ss* sI}", "state", state, "database", database, "message", message,
                   "waiting", (json_int_t)waiting));
}

void event_log_published(struct event_log *log, const char *kind, const char *key, int inserted,
                         long long latency_ms, size_t waiting)
{
    emit(log, -1, NULL, "published",
         json_pack("{ss ss* sb sI sI}", "kind", kind, "key", key, "inserted", inserted,
                   "latency_ms", (json_int_t)latency_ms, "waiting", (json_int_t)waiting));
}

void event_log_fleet_duplicate(struct event_log *log, int slot, const char *port, const char *when,
                               const char *mac, const char *record_key, const char *dup_station,
                               const char *dup_run_id, const char *dup_slot, const char *dup_at)
{
    emit(log, slot, port, "fleet_duplicate",
         json_pack("{ss ss* ss* s{ss ss ss ss}}", "when", when, "mac", mac, "record_key",
                   record_key, "earlier", "station", dup_station, "run_id", dup_run_id, "slot",
                   dup_slot, "at", dup_at));
}

int event_log_sync(struct event_log *log, struct es_err *err)
{
    /* journal_sync reads only the descriptor and the path, which appends never change. */
    return journal_sync(&log->journal, err);
}

void event_log_sync_take(struct event_log *log, struct event_log_sync_req *req)
{
    req->fd = log->journal.fd;
    req->retired_fd = log->retired_fd;
    req->path = log->journal.path;
    log->retired_fd = -1;
}

int event_log_sync_run(const struct event_log_sync_req *req, struct es_err *err)
{
    int rc = journal_retire(req->retired_fd, req->path, err);

    if (rc < 0)
        return rc;
    if (fdatasync(req->fd) < 0)
        return es_fail(err, ES_REPORT, "fdatasync %s: %s", req->path, strerror(errno));
    return 0;
}

void event_log_close(struct event_log *log)
{
    struct es_err err;

    if (journal_retire(log->retired_fd, log->journal.path, &err) < 0 && log->journal_ok)
        event_log_failed(log, &err);
    log->retired_fd = -1;
    if (journal_close(&log->journal, &err) < 0 && log->journal_ok)
        event_log_failed(log, &err);
}

void event_log_free(struct event_log *log)
{
    free(log->error);
    log->error = NULL;
}
