/* What happens when a board finishes: its verdict (amended when another finished board of the
 * run has its MAC), its report written on the writer, then its "done" journal line appended and
 * synced, then the operator told, in that order, so nothing claims a record not yet durable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/hex.h"
#include "station_internal.h"

/* A board's report, written (or, after a duplicate MAC, written again) on the writer. The job
 * owns a snapshot: the slot's report may be amended meanwhile on the loop thread. */
struct report_job {
    struct station_job job;
    struct slot *slot;
    int rewrite;
    struct report_device rep;
    int *dup_slots; /* rep's duplicate_slots (owned) */
    char name[256];
    int rc;
    struct es_err err;
    json_t *record; /* publishing: the board's record for the database, built here too */
};

/* The journal's fdatasync after a board's "done" line, then (publishing) the board's record
 * written to the outbox: a record never exists without its report and its "done" line. */
struct sync_job {
    struct station_job job;
    struct slot *slot;
    int sync;                      /* the journal is being written: sync it */
    struct event_log_sync_req req; /* taken on the loop thread: rotation changes the fd */
    int rc;
    struct es_err err;
    struct outbox_record *rec; /* NULL: not publishing */
    int rec_rc;
    struct es_err rec_err;
};

/* The verdict as the station recorded it (amended for a duplicate MAC), for the view. */
static void show_verdict(struct slot *slot)
{
    const struct report_device *rep = &slot->report;

    ui_view_verdict(&slot->st->view, (size_t)slot->index, report_result_name(rep->result),
                    rep->result == REPORT_PASS ? NULL : rep->error.msg);
}

/* ---- Reports and the journal's syncs, on the writer ---- */

static void on_report_work(struct station_job *job)
{
    struct report_job *j = container_of(job, struct report_job, job);
    const char *run_dir = j->slot->st->run_dir;

    j->rc = report_write_device(run_dir, &j->rep, j->name, sizeof(j->name), &j->err);
    /* Off the loop thread: building the record costs as much as the report's JSON. */
    if (j->rc == 0 && j->slot->st->pub.on)
        j->record = publish_record_board(&j->rep, j->slot->st->pub.station, j->slot->st->pub.run_id,
                                         j->slot->name, report_now_ms());
}

/* The slot's first write has completed (the writer's order) and named its file, or failed and
 * left no file to amend. */
static void on_rewrite_work(struct station_job *job)
{
    struct report_job *j = container_of(job, struct report_job, job);
    const struct slot *slot = j->slot;

    if (slot->report_file[0] != '\0')
        j->rc = report_rewrite_device(slot->st->run_dir, slot->report_file, &j->rep, &j->err);
}

static void on_sync_work(struct station_job *job)
{
    struct sync_job *j = container_of(job, struct sync_job, job);

    if (j->sync)
        j->rc = event_log_sync_run(&j->req, &j->err);
    if (j->rec != NULL)
        j->rec_rc = outbox_write(j->slot->st->pub.outbox.dir, j->rec, &j->rec_err);
}

/* The board's report and its "done" line are durable: only now is it told and counted. */
static void slot_recorded(struct slot *slot)
{
    struct station *st = slot->st;
    const struct report_device *rep = &slot->report;
    char mac[ES_MAC_TEXT_LEN] = "";

    if (rep->mac_valid)
        es_format_mac(rep->mac, ':', mac);
    ui_view_done(&st->view, (size_t)slot->index, report_result_name(rep->result),
                 rep->result == REPORT_PASS ? mac : rep->error.msg);
    if (st->cfg->continuous) {
        station_line_recorded(slot);
        return;
    }
    if (--st->n_running == 0)
        station_stop_loop_handles(st);
}

static void on_sync_done(struct station_job *job)
{
    struct sync_job *j = container_of(job, struct sync_job, job);
    struct slot *slot = j->slot;

    if (j->rc < 0)
        event_log_failed(&slot->st->log, &j->err);
    if (j->rec != NULL)
        station_publish_written(slot->st, j->rec, j->rec_rc, &j->rec_err);
    free(j);
    slot_recorded(slot);
}

static void on_report_done(struct station_job *job)
{
    struct report_job *j = container_of(job, struct report_job, job);
    struct slot *slot = j->slot;
    struct station *st = slot->st;
    struct sync_job *sync;
    struct outbox_record *rec;

    if (j->rewrite) {
        json_decref(j->record);
        if (j->rc < 0)
            fprintf(stderr,
                    "espstation: slot %d (%s): its report does not show the duplicate MAC: %s\n",
                    slot->index, slot->port, j->err.msg);
        free(j->dup_slots);
        free(j);
        return;
    }
    if (j->rc < 0) {
        fprintf(stderr, "espstation: slot %d (%s): no report: %s\n", slot->index, slot->port,
                j->err.msg);
        slot->report_file[0] = '\0';
        slot->report_error = strdup(j->err.msg);
        st->reports_lost++;
    } else {
        snprintf(slot->report_file, sizeof(slot->report_file), "%s", j->name);
    }
    slot->summary.report_file = slot->report_file[0] != '\0' ? slot->report_file : NULL;
    /* Numbered here, on the loop thread, in the order of the "done" lines. */
    rec = j->record != NULL ? station_publish_record(st, j->record) : NULL;
    free(j->dup_slots);
    free(j);
    event_log_done(&st->log, slot->index, slot->port, &slot->report,
                   slot->report_file[0] != '\0' ? slot->report_file : NULL, slot->report_error);
    sync = st->log.journal_ok || rec != NULL ? calloc(1, sizeof(*sync)) : NULL;
    if (sync == NULL) {
        outbox_record_free(rec);
        slot_recorded(slot);
        return;
    }
    sync->slot = slot;
    sync->rec = rec;
    sync->sync = st->log.journal_ok;
    if (sync->sync)
        event_log_sync_take(&st->log, &sync->req);
    sync->job.work = on_sync_work;
    sync->job.done = on_sync_done;
    station_writer_submit(&st->writer, &sync->job);
}

/* Queues slot's report as it stands: its first write, or (rewrite) a write over the file its
 * first write made, which runs after it. */
static void submit_report(struct slot *slot, int rewrite)
{
    struct report_job *j = calloc(1, sizeof(*j));
    size_t n = slot->n_dup_slots;

    if (j != NULL && n > 0) {
        j->dup_slots = malloc(n * sizeof(*j->dup_slots));
        if (j->dup_slots == NULL) {
            free(j);
            j = NULL;
        }
    }
    if (j == NULL) {
        fprintf(stderr, "espstation: slot %d (%s): out of memory writing its report\n", slot->index,
                slot->port);
        if (!rewrite) {
            slot->report_error = strdup("out of memory");
            slot->st->reports_lost++;
            slot_recorded(slot);
        }
        return;
    }
    j->slot = slot;
    j->rewrite = rewrite;
    j->rep = slot->report;
    if (n > 0)
        memcpy(j->dup_slots, slot->dup_slots, n * sizeof(*j->dup_slots));
    j->rep.duplicate_slots = j->dup_slots;
    j->job.work = rewrite ? on_rewrite_work : on_report_work;
    j->job.done = on_report_done;
    station_writer_submit(&slot->st->writer, &j->job);
}

static enum profile_duplicate_mac dup_policy(const struct station *st, const char *profile_name)
{
    for (size_t i = 0; profile_name != NULL && i < st->cfg->n_profiles; i++)
        if (strcmp(st->cfg->profiles[i]->name, profile_name) == 0)
            return st->cfg->profiles[i]->duplicate_mac;
    return PROFILE_DUP_MAC_FAIL;
}

/* Records that slot's board has other's MAC, and applies the profile's policy to slot's report:
 * flagged always; failed (when it had passed) under duplicate_mac: fail. */
static int add_duplicate(struct slot *slot, const struct slot *other)
{
    struct report_device *rep = &slot->report;
    int *grown = realloc(slot->dup_slots, (slot->n_dup_slots + 1) * sizeof(*grown));
    char mac[ES_MAC_TEXT_LEN];

    if (grown == NULL)
        return -1;
    slot->dup_slots = grown;
    slot->dup_slots[slot->n_dup_slots++] = other->index;
    rep->duplicate_slots = slot->dup_slots;
    rep->n_duplicate_slots = slot->n_dup_slots;
    slot->summary.duplicate_mac = true;
    if (rep->result != REPORT_PASS ||
        dup_policy(slot->st, rep->profile_name) != PROFILE_DUP_MAC_FAIL)
        return 0;
    chip_format_mac(rep->mac, mac);
    es_fail(&slot->dup_error, ES_DUPLICATE_MAC,
            "slot %d (%s): MAC %s is also the MAC of the board in slot %d (%s): a cloned module or "
            "one board twice; both fail (duplicate_mac: fail in the profile)",
            slot->index, slot->port, mac, other->index, other->port);
    rep->result = REPORT_FAIL;
    rep->error = slot->dup_error;
    rep->error_phase = session_phase_name(SESSION_PHASE_IDENTIFY);
    slot->summary.result = REPORT_FAIL;
    slot->summary.error_code = ES_DUPLICATE_MAC;
    show_verdict(slot);
    return 0;
}

/* A board that finished with a MAC another finished board of the run has: both are flagged
 * (and failed, by the profile's default), the earlier one's report written again (on the
 * writer, after its first write), and the operator told. Boards still running are compared when
 * they finish. */
static void check_duplicate_mac(struct station *st, struct slot *slot)
{
    char mac[ES_MAC_TEXT_LEN];

    if (!slot->report.mac_valid)
        return;
    chip_format_mac(slot->report.mac, mac);
    for (size_t i = 0; i < st->n_slots; i++) {
        struct slot *other = &st->slots[i];

        if (other == slot || !other->finished || !other->report.mac_valid ||
            memcmp(other->report.mac, slot->report.mac, 6) != 0)
            continue;
        if (add_duplicate(slot, other) < 0 || add_duplicate(other, slot) < 0) {
            fprintf(stderr, "espstation: out of memory recording a duplicate MAC\n");
            continue;
        }
        fprintf(stderr, "espstation: WARNING: slots %d (%s) and %d (%s) both have MAC %s\n",
                other->index, other->port, slot->index, slot->port, mac);
        event_log_duplicate_mac(&st->log, slot->index, slot->port, slot->report.mac, other->index,
                                other->port);
        /* After other's own report job, which the writer's order guarantees. */
        submit_report(other, 1);
    }
}

void station_slot_done(struct slot *slot, const struct report_device *session_rep)
{
    const struct report_device *rep = &slot->report;

    slot->report = *session_rep;
    station_publish_slot_done(slot); /* what the fleet database said about this MAC */
    slot->summary.result = rep->result;
    slot->summary.error_code = rep->result == REPORT_PASS ? ES_OK : rep->error.code;
    slot->summary.slot = slot->index;
    slot->summary.port = slot->port;
    slot->summary.mac_valid = rep->mac_valid;
    memcpy(slot->summary.mac, rep->mac, 6);
    slot->summary.profile_name = rep->profile_name;
    /* A line sees the same board again by design (put back, or on another slot later): the
     * probe's MAC check handles that, not the one-pass duplicate rule. */
    if (!slot->st->cfg->continuous)
        check_duplicate_mac(slot->st, slot);
    slot->finished = 1;
    show_verdict(slot);
    /* The "done" line, its sync and the count follow the report (on_report_done). */
    submit_report(slot, 0);
}
