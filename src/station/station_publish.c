/* The station's side of the fleet database: it opens the outbox, hands records to the publisher
 * once they are on disk, asks about each board's MAC while the board is flashed, applies the
 * answer to the board's verdict (duplicate_mac), and tells the operator and the journal how many
 * records wait. Publishing never delays a board: no call here waits for the database, and the
 * exit status never depends on it. The records themselves are es/publish.h's, the connection
 * es/publish.h's publisher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/hex.h"
#include "station_internal.h"

/* How long the end of a run waits for the outbox to drain before exiting (the rest waits for
 * the next start). ESPSTATION_PUBLISH_GRACE_MS overrides it (tests, slow links). */
#define PUBLISH_GRACE_MS 5000
/* A line's run row is brought up to date at most this often (a record after a board, when the
 * last one is older): its counts stay fresh without a second record per board. */
#define LINE_RUN_RECORD_MS 10000

/* ---- What the operator and the journal see ---- */

static void show_waiting(struct station *st, int say)
{
    struct station_pub *sp = &st->pub;
    size_t waiting = publisher_waiting(sp->pub);
    enum publish_state state = publisher_state(sp->pub);
    char text[320];

    if (waiting == 0 && state == PUBLISH_CONNECTED)
        snprintf(text, sizeof(text), "every report is in the database %s", publisher_url(sp->pub));
    else
        snprintf(text, sizeof(text), "%zu report%s waiting for the database %s (%s)", waiting,
                 waiting == 1 ? "" : "s", publisher_url(sp->pub), publish_state_name(state));
    ui_view_publish(&st->view, text, say);
}

static void on_pub_state(enum publish_state state, const char *message, void *arg)
{
    struct station *st = arg;
    struct station_pub *sp = &st->pub;

    event_log_publish(&st->log, publish_state_name(state), publisher_url(sp->pub), message,
                      publisher_waiting(sp->pub));
    show_waiting(st, 1);
    if (state == PUBLISH_DOWN && message != NULL)
        fprintf(stderr,
                "espstation: publish: %s; boards are flashed on, their records wait in %s and "
                "are sent when the database answers\n",
                message, sp->outbox.dir);
}

/* The slot whose board's lookup carries token, if it is still being flashed. */
static struct slot *slot_of_token(struct station *st, uint64_t token)
{
    for (size_t i = 0; i < st->n_slots; i++)
        if (st->slots[i].lookup_token == token && st->slots[i].session != NULL &&
            !st->slots[i].finished && !st->slots[i].probing)
            return &st->slots[i];
    return NULL;
}

/* duplicate_mac for a board the fleet has seen: the profile's word when it has the key, else
 * warn (issue 14: another station's board may be a rework; a board twice in one run is the
 * in-run rule's, which fails by default). */
static enum profile_duplicate_mac fleet_policy(const struct station *st, const char *profile)
{
    for (size_t i = 0; profile != NULL && i < st->cfg->n_profiles; i++) {
        const struct profile *p = st->cfg->profiles[i];

        if (strcmp(p->name, profile) == 0)
            return p->duplicate_mac_pos.line > 0 ? p->duplicate_mac : PROFILE_DUP_MAC_WARN;
    }
    return PROFILE_DUP_MAC_WARN;
}

static void on_pub_lookup(uint64_t token, const struct publish_dup *dup, void *arg)
{
    struct station *st = arg;
    struct slot *slot = slot_of_token(st, token);
    const struct report_device *rep;
    char mac[ES_MAC_TEXT_LEN] = "";

    if (slot == NULL || dup == NULL)
        return; /* the board is done (the insert checks again), or no earlier board */
    slot->lookup_token = 0;
    slot->fleet_dup_valid = 1;
    slot->fleet_dup = *dup;
    slot->fleet_dup_rep.station = slot->fleet_dup.station;
    slot->fleet_dup_rep.run_id = slot->fleet_dup.run_id;
    slot->fleet_dup_rep.slot = slot->fleet_dup.slot;
    slot->fleet_dup_rep.at = slot->fleet_dup.at;
    rep = session_report(slot->session);
    if (rep->mac_valid)
        es_format_mac(rep->mac, ':', mac);
    event_log_fleet_duplicate(&st->log, slot->index, slot->port, "before_flash", mac, NULL,
                              dup->station, dup->run_id, dup->slot, dup->at);
    snprintf(slot->status, sizeof(slot->status),
             "MAC %s already passed on station %.64s (run %.48s, slot %.64s) at %.30s", mac,
             dup->station, dup->run_id, dup->slot, dup->at);
    ui_view_status(&st->view, (size_t)slot->index, slot->status, 1);
    if (fleet_policy(st, rep->profile_name) == PROFILE_DUP_MAC_FAIL) {
        /* Before the write if the answer came in time: the board is refused, not flashed. */
        slot->fleet_dup_fail = 1;
        session_interrupt(slot->session);
    }
}

static void on_pub_published(const struct outbox_record *r, int inserted, int64_t latency_ms,
                             const struct publish_dup *dup, void *arg)
{
    struct station *st = arg;
    const char *kind = json_string_value(json_object_get(r->body, "kind"));
    int board = kind != NULL && strcmp(kind, "board") == 0;
    const char *key = json_string_value(json_object_get(r->body, board ? "record_key" : "run_id"));

    event_log_published(&st->log, kind != NULL ? kind : "unknown", key, inserted,
                        (long long)latency_ms, publisher_waiting(st->pub.pub));
    show_waiting(st, 0);
    if (dup != NULL) {
        const char *mac = json_string_value(json_object_get(r->body, "mac"));
        const json_t *known =
            json_object_get(json_object_get(r->body, "report"), "fleet_duplicate");

        event_log_fleet_duplicate(&st->log, -1, NULL, "on_insert", mac, key, dup->station,
                                  dup->run_id, dup->slot, dup->at);
        if (known == NULL || json_is_null(known))
            fprintf(stderr,
                    "espstation: WARNING: board %s: MAC %s already passed this profile on "
                    "station %s (run %s, slot %s) at %s\n",
                    key, mac != NULL ? mac : "-", dup->station, dup->run_id, dup->slot, dup->at);
    }
}

static void on_pub_refused(const struct outbox_record *r, const char *message, void *arg)
{
    struct station *st = arg;

    fprintf(stderr,
            "espstation: publish: the database %s refused record %s: %s; it is kept as %s/%s.bad\n",
            publisher_url(st->pub.pub), r->name, message, st->pub.outbox.dir, r->name);
}

static void on_pub_closed(void *arg)
{
    (void)arg; /* the loop ends once the last handle is closed */
}

static const struct publisher_callbacks pub_cb = {on_pub_state, on_pub_published, on_pub_lookup,
                                                  on_pub_closed, on_pub_refused};

/* ---- Records ---- */

struct outbox_record *station_publish_record(struct station *st, json_t *body)
{
    if (!st->pub.on) {
        json_decref(body);
        return NULL;
    }
    return outbox_record_new(&st->pub.outbox, body);
}

void station_publish_written(struct station *st, struct outbox_record *rec, int rc,
                             const struct es_err *err)
{
    struct station_pub *sp = &st->pub;

    if (rc < 0) {
        /* The report and journal have the board; only the database will miss it. */
        fprintf(stderr, "espstation: publish: record %s not written to the outbox: %s\n", rec->name,
                err->msg);
        outbox_record_free(rec);
        return;
    }
    if (!sp->outbox.owner) {
        sp->written_aside++;
        outbox_record_free(rec);
        return;
    }
    publisher_push(sp->pub, rec);
    show_waiting(st, 0);
}

/* A record written on the writer, after every report and journal sync submitted before it. */
struct record_job {
    struct station_job job;
    struct station *st;
    struct outbox_record *rec;
    int final; /* the run's last record: the publisher may finish after it */
    int rc;
    struct es_err err;
};

static void on_record_work(struct station_job *job)
{
    struct record_job *j = container_of(job, struct record_job, job);

    j->rc = outbox_write(j->st->pub.outbox.dir, j->rec, &j->err);
}

static void on_record_done(struct station_job *job)
{
    struct record_job *j = container_of(job, struct record_job, job);
    struct station *st = j->st;
    const char *env = getenv("ESPSTATION_PUBLISH_GRACE_MS");
    uint64_t grace_ms = env != NULL ? strtoull(env, NULL, 10) : PUBLISH_GRACE_MS;

    station_publish_written(st, j->rec, j->rc, &j->err);
    if (j->final)
        publisher_finish(st->pub.pub, grace_ms);
    free(j);
}

/* The run's record with its counts so far (end_ms 0: it goes on), queued on the writer. */
static void submit_run_record(struct station *st, int64_t end_ms, int final)
{
    struct report_profile *profiles = calloc(st->cfg->n_profiles, sizeof(*profiles));
    struct report_run_counts counts = {0};
    struct publish_run run = {0};
    struct record_job *j = calloc(1, sizeof(*j));

    if (st->cfg->continuous) {
        station_line_counts(st, &counts);
    } else {
        for (size_t i = 0; i < st->n_slots; i++) {
            if (!st->slots[i].finished)
                continue;
            counts.total++;
            counts.passed += st->slots[i].summary.result == REPORT_PASS;
            counts.failed += st->slots[i].summary.result == REPORT_FAIL;
            counts.interrupted += st->slots[i].summary.result == REPORT_INTERRUPTED;
        }
    }
    for (size_t i = 0; profiles != NULL && i < st->cfg->n_profiles; i++) {
        profiles[i].name = st->cfg->profiles[i]->name;
        memcpy(profiles[i].sha256, st->cfg->profiles[i]->sha256, 32);
    }
    run.station = st->pub.station;
    run.run_id = st->pub.run_id;
    run.start_ms = st->start_ms;
    run.end_ms = end_ms;
    run.total = counts.total;
    run.passed = counts.passed;
    run.failed = counts.failed;
    run.interrupted = counts.interrupted;
    run.profiles = profiles;
    run.n_profiles = profiles != NULL ? st->cfg->n_profiles : 0;
    run.created_ms = report_now_ms();
    st->pub.run_record_ms = run.created_ms;
    if (j != NULL)
        j->rec = station_publish_record(st, publish_record_run(&run));
    free(profiles);
    if (j == NULL || j->rec == NULL) {
        fprintf(stderr, "espstation: publish: out of memory building the run's record\n");
        free(j);
        if (final)
            publisher_finish(st->pub.pub, 0);
        return;
    }
    j->st = st;
    j->final = final;
    j->job.work = on_record_work;
    j->job.done = on_record_done;
    station_writer_submit(&st->writer, &j->job);
}

/* ---- The run ---- */

int station_publish_open(struct station *st, const char *reports_root, struct es_err *err)
{
    struct station_pub *sp = &st->pub;
    struct outbox_record *loaded = NULL;
    size_t n_loaded = 0, bad = 0;
    const char *slash = strrchr(st->run_dir, '/');
    char dir[4096];
    int rc;

    if (st->cfg->publish_url == NULL || st->cfg->publish_url[0] == '\0')
        return 0;
    if (st->cfg->station_id != NULL)
        snprintf(sp->station, sizeof(sp->station), "%s", st->cfg->station_id);
    else if (gethostname(sp->station, sizeof(sp->station)) != 0)
        snprintf(sp->station, sizeof(sp->station), "station");
    sp->station[sizeof(sp->station) - 1] = '\0';
    sp->run_id = slash != NULL ? slash + 1 : st->run_dir;
    if ((rc = outbox_dir_for(reports_root, sp->station, dir, sizeof(dir), err)) < 0)
        return rc;
    if ((rc = outbox_open(&sp->outbox, dir, &loaded, &n_loaded, &bad, err)) < 0)
        return rc;
    rc = publisher_new(&st->loop, st->cfg->publish_url, dir, &pub_cb, st, &sp->pub, err);
    if (rc < 0) {
        outbox_close(&sp->outbox);
        return rc;
    }
    sp->on = 1;
    if (!sp->outbox.owner)
        fprintf(stderr,
                "espstation: publish: another espstation with station id %s delivers the outbox "
                "%s; this run's records are kept there for the next start (give each station "
                "its own --station)\n",
                sp->station, dir);
    if (bad > 0)
        fprintf(stderr, "espstation: publish: %zu unreadable record%s in %s set aside as *.bad\n",
                bad, bad == 1 ? "" : "s", dir);
    if (n_loaded > 0)
        fprintf(stderr,
                "espstation: publish: %zu record%s from earlier runs wait in %s; sent first\n",
                n_loaded, n_loaded == 1 ? "" : "s", dir);
    sp->loaded = loaded; /* pushed by station_publish_start, once the view exists */
    return 0;
}

void station_publish_start(struct station *st)
{
    struct station_pub *sp = &st->pub;

    if (!sp->on)
        return;
    while (sp->loaded != NULL) {
        struct outbox_record *next = sp->loaded->next;
        publisher_push(sp->pub, sp->loaded);
        sp->loaded = next;
    }
    show_waiting(st, 0);
    publisher_start(sp->pub);
    submit_run_record(st, 0, 0);
}

void station_publish_mac(struct slot *slot, const char *text)
{
    struct station *st = slot->st;
    struct station_pub *sp = &st->pub;
    const struct report_device *rep;
    char mac[ES_MAC_TEXT_LEN];

    if (!sp->on || slot->session == NULL)
        return;
    snprintf(mac, sizeof(mac), "%.17s", text);
    rep = session_report(slot->session);
    slot->lookup_token = ++sp->next_token;
    if (publisher_lookup(sp->pub, slot->lookup_token, mac, rep->profile_name, sp->station,
                         sp->run_id) < 0)
        slot->lookup_token = 0; /* not connected: the insert will tell */
}

void station_publish_slot_done(struct slot *slot)
{
    struct report_device *rep = &slot->report;
    char mac[ES_MAC_TEXT_LEN] = "-";
    const struct publish_dup *d = &slot->fleet_dup;

    slot->lookup_token = 0;
    if (!slot->fleet_dup_valid)
        return;
    rep->fleet_duplicate = &slot->fleet_dup_rep;
    if (fleet_policy(slot->st, rep->profile_name) != PROFILE_DUP_MAC_FAIL)
        return;
    if (!(rep->result == REPORT_PASS ||
          (rep->result == REPORT_INTERRUPTED && slot->fleet_dup_fail)))
        return;
    if (rep->mac_valid)
        es_format_mac(rep->mac, ':', mac);
    es_fail(&slot->dup_error, ES_DUPLICATE_MAC,
            "slot %d (%s): MAC %s already passed profile %s on station %s (run %s, slot %s) at "
            "%s: a cloned module or a board flashed twice; refused (duplicate_mac: fail in the "
            "profile)",
            slot->index, slot->port, mac, rep->profile_name != NULL ? rep->profile_name : "-",
            d->station, d->run_id, d->slot, d->at);
    rep->result = REPORT_FAIL;
    rep->error = slot->dup_error;
    if (rep->error_phase == NULL)
        rep->error_phase = session_phase_name(SESSION_PHASE_IDENTIFY);
}

void station_publish_board_recorded(struct station *st)
{
    int64_t now = report_now_ms();

    if (!st->pub.on || st->pub.finishing || now - st->pub.run_record_ms < LINE_RUN_RECORD_MS)
        return;
    submit_run_record(st, 0, 0);
}

void station_publish_finish(struct station *st)
{
    if (!st->pub.on || st->pub.finishing)
        return;
    st->pub.finishing = 1;
    submit_run_record(st, report_now_ms(), 1);
}

void station_publish_close(struct station *st)
{
    struct station_pub *sp = &st->pub;
    size_t waiting;

    if (!sp->on)
        return;
    waiting = publisher_waiting(sp->pub) + sp->written_aside;
    if (waiting > 0)
        fprintf(stderr,
                "espstation: publish: %zu record%s wait in %s for the next start (the database "
                "%s is %s)\n",
                waiting, waiting == 1 ? "" : "s", sp->outbox.dir, publisher_url(sp->pub),
                publish_state_name(publisher_state(sp->pub)));
    publisher_free(sp->pub);
    sp->pub = NULL;
    while (sp->loaded != NULL) { /* never started: the files stay for the next start */
        struct outbox_record *next = sp->loaded->next;
        outbox_record_free(sp->loaded);
        sp->loaded = next;
    }
    outbox_close(&sp->outbox);
    sp->on = 0;
}
