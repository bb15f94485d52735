/* A production line (run --continuous): the station stays up and each slot cycles board after
 * board. A slot with its port present probes (SESSION_PROBE: connect, identify, reset back to
 * the app); a probe that finds no board in download mode waits for one at a low duty cycle and
 * says what a board without auto-reset prints instead ("hold BOOT and tap EN/RST"), and after a
 * board the next probe comes a few seconds later. A board that answers with a MAC the slot has
 * not just finished is
 * flashed, the MAC it just passed is not ("already flashed at HH:MM, remove it") unless
 * --reflash. Ports come and go: an inotify watch (uv_fs_event) on each directory a port pattern
 * lives in turns a new matching port into a slot (or gives a known one its port back), and a
 * vanished port makes its slot wait; its session, if any, sees the line die and fails
 * port_closed. The latest finished boards are kept as small records for run.json, which is
 * rewritten atomically on the writer after each one, so it is true at any moment and after a
 * kill.
 *
 * Nothing grows with the number of boards: run.json's records are bounded (--run-json-latest),
 * sessions are freed as each board is recorded, and no descriptor outlives its board. */
#define _DEFAULT_SOURCE /* realpath */
#include <fnmatch.h>
#include <libgen.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "es/hex.h"
#include "station_internal.h"

/* How often an idle slot looks for a board (scaled by --timeout-scale): low duty, since every
 * probe resets the board on it. */
#define PROBE_INTERVAL_MS 3000

/* ---- Timers and sessions ---- */

static uint64_t probe_interval(const struct station *st)
{
    double ms = PROBE_INTERVAL_MS * (st->cfg->timeout_scale > 0 ? st->cfg->timeout_scale : 1.0);

    return (uint64_t)ms;
}

static void on_probe_timer(uv_timer_t *t)
{
    struct slot *slot = container_of(t, struct slot, timer);

    station_line_slot_start(slot);
}

static void schedule_probe(struct slot *slot)
{
    if (!slot->st->stopping && slot->present && slot->timer_ok)
        uv_timer_start(&slot->timer, on_probe_timer, probe_interval(slot->st), 0);
}

/* What the slot waits for; the view is told (and prints a line) only when it changes. */
static void set_status(struct slot *slot, const char *text, int keep_verdict)
{
    if (text == NULL) {
        if (slot->status[0] == '\0' && keep_verdict)
            return;
        slot->status[0] = '\0';
        ui_view_status(&slot->st->view, (size_t)slot->index, NULL, keep_verdict);
        return;
    }
    if (strcmp(text, slot->status) == 0)
        return;
    snprintf(slot->status, sizeof(slot->status), "%s", text);
    ui_view_status(&slot->st->view, (size_t)slot->index, slot->status, keep_verdict);
}

/* The slot's idle state in the phase column, said once. */
static void show_idle(struct slot *slot, const char *what)
{
    struct ui_view *v = &slot->st->view;

    if (strcmp(v->rows[slot->index].phase, what) != 0)
        ui_view_phase(v, (size_t)slot->index, what);
}

/* The loop ends once a stopping station has recorded its last board. */
static void maybe_end(struct station *st)
{
    if (st->stopping && st->n_running == 0)
        station_stop_loop_handles(st);
}

/* A new board's record starts clean: no report file, no error, no duplicate. */
static void slot_reset_board(struct slot *slot)
{
    free(slot->report_error);
    slot->report_error = NULL;
    slot->report_file[0] = '\0';
    free(slot->dup_slots);
    slot->dup_slots = NULL;
    slot->n_dup_slots = 0;
    slot->finished = 0;
    memset(&slot->summary, 0, sizeof(slot->summary));
    slot->lookup_token = 0;
    slot->fleet_dup_valid = 0;
    slot->fleet_dup_fail = 0;
}

static void start_session(struct slot *slot, enum session_mode mode)
{
    struct station *st = slot->st;
    struct es_err err;

    if (mode != SESSION_PROBE)
        slot_reset_board(slot);
    if (station_slot_session_new(slot, mode, &err) < 0) {
        fprintf(stderr, "espstation: slot %d (%s): %s\n", slot->index, slot->port, err.msg);
        schedule_probe(slot);
        return;
    }
    slot->probing = mode == SESSION_PROBE;
    slot->probe_waited = 0;
    if (!slot->probing) {
        set_status(slot, NULL, 0);
        ui_view_phase(&st->view, (size_t)slot->index, "open");
    } else if (slot->status[0] == '\0') {
        show_idle(slot, "probing");
    }
    st->n_running++;
    session_start(slot->session);
}

void station_line_slot_start(struct slot *slot)
{
    if (slot->st->stopping || !slot->present || slot->session != NULL)
        return;
    /* Every board starts with a probe: an empty adapter is not a failed board. */
    start_session(slot, SESSION_PROBE);
}

static void format_hhmm(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    localtime_r(&t, &tm);
    snprintf(out, cap, "%02d:%02d", tm.tm_hour, tm.tm_min);
}

void station_line_probe_note(struct slot *slot, const char *what, const char *text)
{
    struct station *st = slot->st;

    if (strcmp(what, "wait") == 0) {
        /* The board that was here is gone (a pass is no longer on show). */
        slot->probe_waited = 1;
        set_status(slot, "waiting for a board", 0);
        show_idle(slot, "waiting");
    } else if (strcmp(what, "hint") == 0) {
        event_log_note(&st->log, slot->index, slot->port, what, text);
        set_status(slot, text, 0);
        show_idle(slot, "hint");
    }
}

void station_line_probe_done(struct slot *slot, struct session *s)
{
    struct station *st = slot->st;
    const struct report_device *rep = session_report(s);
    int found = rep->result == REPORT_PASS && rep->mac_valid;
    uint8_t mac[6];
    char text[96], hhmm[8], mac_text[ES_MAC_TEXT_LEN];

    memcpy(mac, rep->mac, sizeof(mac));
    session_free(s);
    slot->session = NULL;
    slot->probing = 0;
    st->n_running--;
    if (st->stopping) {
        maybe_end(st);
        return;
    }
    if (!found) {
        /* No board in download mode here: it was taken away (a pass is no longer on show, and
         * a failed board put back is tried again). */
        slot->last_fail_valid = 0;
        set_status(slot, slot->present ? "waiting for a board" : "waiting for the port", 0);
        show_idle(slot, "waiting");
        schedule_probe(slot);
        return;
    }
    if (slot->probe_waited)
        slot->last_fail_valid = 0; /* seen leaving: a failed board put back is tried again */
    if (slot->last_pass_valid && memcmp(mac, slot->last_mac, 6) == 0 && !st->cfg->reflash) {
        format_hhmm(slot->last_pass_ms, hhmm, sizeof(hhmm));
        es_format_mac(mac, ':', mac_text);
        snprintf(text, sizeof(text), "%s already flashed at %s, remove it", mac_text, hhmm);
        if (strcmp(text, slot->status) != 0)
            event_log_note(&st->log, slot->index, slot->port, "already_flashed", text);
        set_status(slot, text, 1);
        show_idle(slot, "remove");
        schedule_probe(slot);
        return;
    }
    if (slot->last_fail_valid && memcmp(mac, slot->last_fail_mac, 6) == 0 && !st->cfg->reflash) {
        /* A bad board left on the jig would otherwise fail again every few seconds. */
        format_hhmm(slot->last_fail_ms, hhmm, sizeof(hhmm));
        es_format_mac(mac, ':', mac_text);
        snprintf(text, sizeof(text), "%s failed at %s, remove it", mac_text, hhmm);
        set_status(slot, text, 1);
        show_idle(slot, "remove");
        schedule_probe(slot);
        return;
    }
    start_session(slot, st->cfg->mode);
}

/* ---- Records and run.json ---- */

/* run.json lists a line's latest boards (--run-json-latest, default LINE_RECENT), not all: a
 * week of boards would make every rewrite (one per board) longer and the station's memory grow.
 * The counts cover the whole run; every board keeps its report and its journal lines. */
#define LINE_RECENT 1000

void station_line_counts(const struct station *st, struct report_run_counts *out)
{
    out->passed = st->line_passed;
    out->failed = st->line_failed;
    out->interrupted = st->line_interrupted;
    out->total = st->line_passed + st->line_failed + st->line_interrupted;
}

struct summary_job {
    struct station_job job;
    struct station *st;
    struct report_run_slot *slots; /* a snapshot of the records (the strings are the run's) */
    size_t n;
    struct report_run_counts counts;
    int rc;
    struct es_err err;
};

static void on_summary_work(struct station_job *job)
{
    struct summary_job *j = container_of(job, struct summary_job, job);

    j->rc = station_write_summary(j->st, j->slots, j->n, &j->counts, &j->err);
#ifdef __GLIBC__
    /* Building run.json takes memory in proportion to the boards so far, on a pool thread's
     * malloc arena, which glibc keeps mapped after it is freed: hand it back, or the station's
     * RSS would track the largest run.json written rather than what it holds. */
    malloc_trim(0);
#endif
}

static void on_summary_done(struct station_job *job)
{
    struct summary_job *j = container_of(job, struct summary_job, job);

    if (j->rc < 0)
        fprintf(stderr, "espstation: %s: %s\n", j->st->run_dir, j->err.msg);
    j->st->summary_jobs--;
    free(j->slots);
    free(j);
}

/* Queues run.json as it stands, after every report queued before it. */
static void submit_summary(struct station *st)
{
    struct summary_job *j = calloc(1, sizeof(*j));

    if (j != NULL && st->n_records > 0) {
        j->slots = malloc(st->n_records * sizeof(*j->slots));
        if (j->slots == NULL) {
            free(j);
            j = NULL;
        }
    }
    if (j == NULL) {
        fprintf(stderr, "espstation: out of memory updating %s\n", REPORT_RUN_FILE);
        return;
    }
    for (size_t i = 0; i < st->n_records; i++)
        j->slots[i] = st->records[i].entry;
    j->n = st->n_records;
    station_line_counts(st, &j->counts);
    j->st = st;
    j->job.work = on_summary_work;
    j->job.done = on_summary_done;
    st->summary_jobs++;
    station_writer_submit(&st->writer, &j->job);
}

static int add_record(struct station *st, const struct slot *slot)
{
    size_t keep = st->cfg->run_json_latest > 0 ? st->cfg->run_json_latest : LINE_RECENT;
    struct line_record *r;

    /* The oldest go (their reports stay on disk), but only while no queued run.json still
     * points at their strings. */
    if (st->n_records >= keep && st->summary_jobs == 0) {
        size_t drop = st->n_records - (keep - 1);

        for (size_t i = 0; i < drop; i++)
            free(st->records[i].file);
        memmove(st->records, st->records + drop, (st->n_records - drop) * sizeof(*st->records));
        st->n_records -= drop;
    }
    if (st->n_records == st->cap_records) {
        size_t cap = st->cap_records ? st->cap_records * 2 : 64;
        struct line_record *grown = realloc(st->records, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        st->records = grown;
        st->cap_records = cap;
    }
    r = &st->records[st->n_records];
    r->entry = slot->summary;
    r->file = slot->report_file[0] != '\0' ? strdup(slot->report_file) : NULL;
    r->entry.report_file = r->file;
    /* The profile's name outlives the session the summary borrowed it from. */
    r->entry.profile_name = NULL;
    for (size_t i = 0; slot->summary.profile_name != NULL && i < st->cfg->n_profiles; i++)
        if (strcmp(st->cfg->profiles[i]->name, slot->summary.profile_name) == 0)
            r->entry.profile_name = st->cfg->profiles[i]->name;
    st->n_records++;
    return 0;
}

static void update_totals(struct station *st)
{
    struct ui_totals t = {0};
    size_t done = st->line_passed + st->line_failed;
    double hours = station_elapsed_s(st) / 3600.0;

    t.passed = st->line_passed;
    t.failed = st->line_failed;
    t.interrupted = st->line_interrupted;
    t.boards_per_hour = hours > 0 ? (double)done / hours : 0;
    t.mean_board_s = done > 0 ? (double)st->line_board_ms / 1000.0 / (double)done : 0;
    ui_view_totals(&st->view, &t);
    event_log_totals(&st->log, t.passed, t.failed, t.interrupted, t.boards_per_hour,
                     t.mean_board_s);
}

void station_line_recorded(struct slot *slot)
{
    struct station *st = slot->st;
    const struct report_device *rep = &slot->report;

    switch (rep->result) {
    case REPORT_PASS: st->line_passed++; break;
    case REPORT_FAIL: st->line_failed++; break;
    case REPORT_INTERRUPTED: st->line_interrupted++; break;
    }
    if (rep->result != REPORT_INTERRUPTED && rep->end_ms > rep->start_ms && rep->start_ms > 0)
        st->line_board_ms += (uint64_t)(rep->end_ms - rep->start_ms);
    station_publish_board_recorded(st); /* the run's row in the fleet database, now and then */
    if (add_record(st, slot) < 0)
        fprintf(stderr, "espstation: slot %d (%s): out of memory: the board is not in %s\n",
                slot->index, slot->port, REPORT_RUN_FILE);
    /* The MAC of a board that passed, so that it is not flashed twice; a failed one is flashed
     * again only once it has been seen gone (a probe without a board, or its port vanished). */
    slot->last_pass_valid = rep->result == REPORT_PASS && rep->mac_valid;
    if (slot->last_pass_valid) {
        memcpy(slot->last_mac, rep->mac, 6);
        slot->last_pass_ms = rep->end_ms > 0 ? rep->end_ms : report_now_ms();
    }
    slot->last_fail_valid = rep->result == REPORT_FAIL && rep->mac_valid && slot->present;
    if (slot->last_fail_valid) {
        memcpy(slot->last_fail_mac, rep->mac, 6);
        slot->last_fail_ms = rep->end_ms > 0 ? rep->end_ms : report_now_ms();
    }
    if (!slot->present)
        set_status(slot, "waiting for the port", 1);
    else if (rep->result != REPORT_INTERRUPTED)
        set_status(slot,
                   rep->result == REPORT_PASS ? "passed: remove the board"
                                              : "failed: remove the board",
                   1);
    update_totals(st);
    submit_summary(st);
    /* The report and the summary job hold copies: the session's memory can go. */
    session_free(slot->session);
    slot->session = NULL;
    slot->finished = 1;
    st->n_running--;
    if (st->stopping) {
        maybe_end(st);
        return;
    }
    schedule_probe(slot);
}

/* ---- Hot-plug ---- */

static struct slot *slot_by_port(struct station *st, const char *path)
{
    for (size_t i = 0; i < st->n_slots; i++)
        if (strcmp(st->slots[i].port, path) == 0)
            return &st->slots[i];
    return NULL;
}

static int matches(const struct station *st, const char *path)
{
    for (size_t i = 0; i < st->n_patterns; i++)
        if (fnmatch(st->patterns[i], path, FNM_PATHNAME) == 0)
            return 1;
    return 0;
}

static void port_appeared(struct station *st, const char *path)
{
    struct slot *slot = slot_by_port(st, path);

    if (slot == NULL) {
        char *copy;

        if (st->n_slots >= st->cap_slots || ui_view_add(&st->view) < 0) {
            fprintf(stderr, "espstation: %s: no room for another slot (%zu)\n", path,
                    st->cap_slots);
            return;
        }
        copy = strdup(path);
        if (copy == NULL)
            return;
        slot = &st->slots[st->n_slots];
        if (station_slot_init(st, slot, st->n_slots, copy) < 0) {
            ui_view_remove_last(&st->view);
            free(copy);
            return;
        }
        slot->port_owned = copy;
        st->n_slots++;
        event_log_note(&st->log, slot->index, slot->port, "slot", "new port: a new slot");
    } else if (slot->present) {
        return;
    }
    slot->present = 1;
    set_status(slot, "port present", 0);
    if (slot->session == NULL) {
        uv_timer_stop(&slot->timer);
        station_line_slot_start(slot);
    }
}

static void port_vanished(struct station *st, const char *path)
{
    struct slot *slot = slot_by_port(st, path);

    if (slot == NULL || !slot->present)
        return;
    slot->present = 0;
    slot->last_fail_valid = 0; /* the board left: when it is back, it is tried again */
    uv_timer_stop(&slot->timer);
    /* A session still running sees its line die (port_closed, unless it had finished). */
    event_log_note(&st->log, slot->index, slot->port, "slot", "port gone");
    set_status(slot, "waiting for the port", 0);
    show_idle(slot, "waiting");
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct station *st = h->data;
    char dir[PATH_MAX], path[PATH_MAX];
    size_t len = sizeof(dir);
    struct stat sb;

    (void)events;
    if (status < 0 || filename == NULL || st->stopping || uv_fs_event_getpath(h, dir, &len) < 0)
        return;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, filename) >= sizeof(path) ||
        !matches(st, path))
        return;
    /* IN_CREATE / IN_DELETE / IN_MOVED_* all come as UV_RENAME: what is there now decides. A
     * port is a character device (espsim's ttySIM0.ctl next to it is a socket). */
    if (stat(path, &sb) == 0 && S_ISCHR(sb.st_mode))
        port_appeared(st, path);
    else
        port_vanished(st, path);
}

static int add_pattern(struct station *st, const char *pattern)
{
    char **grown = realloc(st->patterns, (st->n_patterns + 1) * sizeof(*grown));

    if (grown == NULL)
        return -1;
    st->patterns = grown;
    if ((st->patterns[st->n_patterns] = strdup(pattern)) == NULL)
        return -1;
    st->n_patterns++;
    return 0;
}

/* One watch per distinct directory of the patterns (a directory with a wildcard is not
 * watched: only the last component may vary). */
static int add_watches(struct station *st, struct es_err *err)
{
    st->watches = calloc(st->n_patterns ? st->n_patterns : 1, sizeof(*st->watches));
    if (st->watches == NULL)
        return es_fail(err, ES_NOMEM, "out of memory");
    for (size_t i = 0; i < st->n_patterns; i++) {
        char copy[PATH_MAX], *dir;
        int rc, seen = 0;

        snprintf(copy, sizeof(copy), "%s", st->patterns[i]);
        dir = dirname(copy);
        if (strpbrk(dir, "*?[") != NULL)
            continue;
        for (size_t k = 0; k < st->n_watches && !seen; k++) {
            char w[PATH_MAX];
            size_t len = sizeof(w);

            seen = uv_fs_event_getpath(&st->watches[k], w, &len) == 0 && strcmp(w, dir) == 0;
        }
        if (seen)
            continue;
        uv_fs_event_init(&st->loop, &st->watches[st->n_watches]);
        st->watches[st->n_watches].data = st;
        rc = uv_fs_event_start(&st->watches[st->n_watches], on_fs_event, dir, 0);
        st->n_watches++;
        if (rc < 0)
            return es_fail(err, ES_IO, "cannot watch %s for ports plugged in: %s", dir,
                           uv_strerror(rc));
    }
    return 0;
}

int station_line_check(const struct station_config *cfg, struct es_err *err)
{
    for (size_t i = 0; i < cfg->n_watch; i++) {
        char copy[PATH_MAX], *dir;
        struct stat sb;

        if (strncmp(cfg->watch[i], "socket://", 9) == 0)
            continue;
        snprintf(copy, sizeof(copy), "%s", cfg->watch[i]);
        dir = dirname(copy);
        if (strpbrk(dir, "*?[") != NULL)
            continue;
        if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
            return es_fail(err, ES_USAGE,
                           "--continuous watches %s for ports plugged in later, and it is not a "
                           "directory",
                           dir);
    }
    return 0;
}

int station_line_open(struct station *st, const char *sim_dir, struct es_err *err)
{
    char pattern[PATH_MAX];
    int rc;

    for (size_t i = 0; i < st->cfg->n_watch; i++)
        if (strncmp(st->cfg->watch[i], "socket://", 9) != 0 &&
            add_pattern(st, st->cfg->watch[i]) < 0)
            return es_fail(err, ES_NOMEM, "out of memory");
    if (sim_dir != NULL) {
        snprintf(pattern, sizeof(pattern), "%s/ttySIM*", sim_dir);
        if (add_pattern(st, pattern) < 0)
            return es_fail(err, ES_NOMEM, "out of memory");
    }
    if ((rc = add_watches(st, err)) < 0)
        return rc;
    /* run.json exists from the start, with no board yet. */
    submit_summary(st);
    return 0;
}

void station_line_stop(struct station *st)
{
    for (size_t i = 0; i < st->n_slots; i++) {
        struct slot *slot = &st->slots[i];

        if (slot->timer_ok)
            uv_timer_stop(&slot->timer);
        if (slot->session != NULL)
            session_interrupt(slot->session);
    }
    for (size_t i = 0; i < st->n_watches; i++)
        uv_fs_event_stop(&st->watches[i]);
    maybe_end(st);
}

void station_line_close_handles(struct station *st)
{
    for (size_t i = 0; i < st->n_slots; i++)
        if (st->slots[i].timer_ok && !uv_is_closing((uv_handle_t *)&st->slots[i].timer))
            uv_close((uv_handle_t *)&st->slots[i].timer, NULL);
    for (size_t i = 0; i < st->n_watches; i++)
        if (!uv_is_closing((uv_handle_t *)&st->watches[i]))
            uv_close((uv_handle_t *)&st->watches[i], NULL);
}

void station_line_free(struct station *st)
{
    for (size_t i = 0; i < st->n_records; i++)
        free(st->records[i].file);
    free(st->records);
    for (size_t i = 0; i < st->n_patterns; i++)
        free(st->patterns[i]);
    free(st->patterns);
    free(st->watches);
}
