/* The station: many sessions in one loop. It starts a session per port, passes each session's
 * events on to the event sinks (the journal's, es/event_log.h, and the operator's, struct
 * ui_view), has each board's report written when its session ends, and stops cleanly on
 * SIGINT/SIGTERM/SIGHUP so that every report is still written. A report, journal line or run.json
 * that cannot be written fails the run, and the operator is told which boards have no report.
 *
 * Nothing slow runs on the loop thread: every payload is prepared before the loop starts
 * (station_payload.c), and report files and journal syncs go to the thread pool in order
 * (station_writer.c). espsim, for --simulate, is station_sim.c. */
#define _DEFAULT_SOURCE /* realpath, PATH_MAX */
#include "es/station.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "es/event_log.h"
#include "es/hex.h"
#include "es/report.h"
#include "es/stub.h"
#include "es/ui.h"
#include "station_internal.h"

#define UI_REDRAW_MS         100
#define JOURNAL_ROTATE_BYTES (64LL << 20)

/* ---- Session events, passed on to the journal and the operator ---- */

static int get_payload(struct session *s, const struct profile *p, size_t i,
                       const struct chip *chip, const struct image_flash_params *params,
                       int compressed, const struct session_payload **out, struct es_err *err,
                       void *arg)
{
    struct slot *slot = arg;

    (void)s;
    return payload_set_find(&slot->st->payloads, p, i, chip, params, compressed, out, err);
}

static void on_phase(struct session *s, enum session_phase phase, void *arg)
{
    struct slot *slot = arg;

    (void)s;
    if (slot->probing) /* a probe every few seconds per slot: not worth a line each */
        return;
    event_log_phase(&slot->st->log, slot->index, slot->port, session_phase_name(phase));
    ui_view_phase(&slot->st->view, (size_t)slot->index, session_phase_name(phase));
}

static void on_note(struct session *s, const char *what, const char *text, void *arg)
{
    struct slot *slot = arg;

    (void)s;
    if (slot->probing) {
        station_line_probe_note(slot, what, text);
        return;
    }
    event_log_note(&slot->st->log, slot->index, slot->port, what, text);
    ui_view_note(&slot->st->view, (size_t)slot->index, what, text);
    if (strcmp(what, "mac") == 0)
        station_publish_mac(slot, text); /* asks the fleet, waits for nothing */
}

/* Samples every running board's progress into the view. */
void station_sample_progress(struct station *st)
{
    for (size_t i = 0; i < st->n_slots; i++) {
        struct session_snapshot snap;
        struct ui_row r;

        if (st->slots[i].session == NULL || st->slots[i].probing)
            continue;
        session_snapshot(st->slots[i].session, &snap);
        memset(&r, 0, sizeof(r));
        r.chip = snap.chip;
        memcpy(r.mac, snap.mac, sizeof(r.mac));
        r.phase = session_phase_name(snap.phase);
        r.done_bytes = snap.done_bytes;
        r.total_bytes = snap.total_bytes;
        r.rate_bps = snap.rate_bps;
        r.finished = snap.finished;
        r.result = snap.finished ? report_result_name(snap.result) : NULL;
        r.error = snap.error;
        ui_view_progress(&st->view, i, &r);
    }
}

double station_elapsed_s(const struct station *st)
{
    return (double)(uv_hrtime() - st->start_ns) / 1e9;
}

static void on_ui_timer(uv_timer_t *t)
{
    struct station *st = container_of(t, struct station, ui_timer);

    station_sample_progress(st);
    ui_view_draw(&st->view, station_elapsed_s(st));
}

static void on_done(struct session *s, void *arg)
{
    struct slot *slot = arg;

    if (slot->probing)
        station_line_probe_done(slot, s);
    else
        station_slot_done(slot, session_report(s));
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct station *st = h->data;

    if (st->stopping) {
        /* A second Ctrl-C while reports are being written: no new work, just keep going. */
        return;
    }
    st->stopping = 1;
    fprintf(stderr, "\nespstation: %s: stopping; every board's report is still written\n",
            signum == SIGINT   ? "SIGINT"
            : signum == SIGHUP ? "SIGHUP"
                               : "SIGTERM");
    if (st->cfg->continuous) {
        station_line_stop(st);
        return;
    }
    for (size_t i = 0; i < st->n_slots; i++)
        if (st->slots[i].session != NULL && !st->slots[i].finished)
            session_interrupt(st->slots[i].session);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* The last board is recorded (or none could start): the loop ends once the handles close. */
void station_stop_loop_handles(struct station *st)
{
    station_sample_progress(st);
    ui_view_draw(&st->view, station_elapsed_s(st));
    close_handle((uv_handle_t *)&st->ui_timer);
    close_handle((uv_handle_t *)&st->sigint);
    close_handle((uv_handle_t *)&st->sigterm);
    close_handle((uv_handle_t *)&st->sighup);
    loop_probe_close(&st->probe);
    station_line_close_handles(st);
    /* The run's last record, then a short grace for the outbox to drain. */
    station_publish_finish(st);
}

/* ---- The run ---- */

static int load_stubs(struct station *st, struct es_err *err)
{
    const struct station_config *cfg = st->cfg;
    int want[CHIP_MODEL_COUNT] = {0};

    for (size_t i = 0; i < cfg->n_profiles; i++) {
        const struct profile *p = cfg->profiles[i];
        if (p->loader != PROFILE_LOADER_STUB)
            continue;
        if (p->chip != NULL) {
            want[p->chip->model] = 1;
        } else {
            want[CHIP_ESP8266] = 1;
            want[CHIP_ESP32] = 1;
        }
    }
    for (int m = 0; m < CHIP_MODEL_COUNT; m++) {
        if (want[m] && stub_load(stub_default_dir(), chip_by_model((enum chip_model)m),
                                 &st->stubs[m], err) < 0)
            return -(int)err->code;
    }
    return 0;
}

/* The listed port that name is, directly or through a symlink (/dev/serial/by-id/...). */
static const struct port_info *find_port_info(const struct station *st, const char *name)
{
    char real[PATH_MAX];
    const char *resolved = realpath(name, real) != NULL ? real : name;

    for (size_t i = 0; i < st->n_ports; i++)
        if (strcmp(st->ports[i].name, name) == 0 || strcmp(st->ports[i].name, resolved) == 0)
            return &st->ports[i];
    return NULL;
}

static const struct session_callbacks session_cb = {on_phase, on_note, on_done, get_payload};

int station_slot_session_new(struct slot *slot, enum session_mode mode, struct es_err *err)
{
    struct station *st = slot->st;
    struct session_config sc = {0};

    sc.profiles = st->cfg->profiles;
    sc.n_profiles = st->cfg->n_profiles;
    sc.stubs = st->stubs;
    sc.mode = mode;
    /* A line's probe keeps listening until a board in download mode answers (a board without
     * auto-reset needs its operator's BOOT and EN/RST) or the port goes: the wait resets a board
     * with auto-reset every few seconds, which is the probe's low duty cycle. */
    sc.wait_for_download = st->cfg->continuous && mode == SESSION_PROBE;
    sc.timeout_scale = st->cfg->timeout_scale;
    sc.verbose = st->cfg->verbose;
    sc.usb = find_port_info(st, slot->port);
    sc.slot = slot->index;
    sc.port = slot->port;
    return session_new(&st->loop, &sc, &session_cb, slot, &slot->session, err);
}

int station_slot_init(struct station *st, struct slot *slot, size_t i, char *port)
{
    const struct port_info *usb = find_port_info(st, port);

    slot->st = st;
    slot->index = (int)i;
    slot->port = port;
    /* A line's stable name for the operator: the USB location survives a re-plug into another
     * tty. A single run keeps naming the port. */
    slot->name = st->cfg->continuous && usb != NULL && usb->location != NULL ? usb->location : port;
    ui_view_slot(&st->view, i, slot->index, slot->name);
    if (st->cfg->continuous) {
        if (uv_timer_init(&st->loop, &slot->timer) < 0)
            return -1;
        slot->timer_ok = 1;
    }
    return 0;
}

/* Spare slots for ports plugged in during a continuous run. */
#define LINE_SPARE_SLOTS 64

static int start_sessions(struct station *st, char **ports, size_t n_ports, struct es_err *err)
{
    enum ui_view_mode mode = st->cfg->output == STATION_OUTPUT_JSON ? UI_VIEW_QUIET
                             : st->cfg->output == STATION_OUTPUT_AUTO && isatty(STDOUT_FILENO)
                                 ? UI_VIEW_LIVE
                                 : UI_VIEW_LINES;
    size_t cap = n_ports + (st->cfg->continuous ? LINE_SPARE_SLOTS : 0);

    st->slots = calloc(cap ? cap : 1, sizeof(*st->slots));
    if (st->slots == NULL || ui_view_init(&st->view, stdout, mode, n_ports, cap) < 0)
        return es_fail(err, ES_NOMEM, "out of memory");
    st->cap_slots = cap;
    st->view.has_totals = st->cfg->continuous; /* a line's footer: its totals, also at zero */
    /* USB identities for the reports; a port that is not listed (pty, socket) has none. */
    if (port_list(&st->ports, &st->n_ports, err) < 0) {
        st->ports = NULL;
        st->n_ports = 0;
    }
    for (size_t i = 0; i < n_ports; i++) {
        struct slot *slot = &st->slots[i];

        if (station_slot_init(st, slot, i, ports[i]) < 0)
            return es_fail(err, ES_IO, "uv_timer_init failed");
        st->n_slots = i + 1;
        if (st->cfg->continuous)
            continue;
        if (station_slot_session_new(slot, st->cfg->mode, err) < 0)
            return -(int)err->code;
    }
    for (size_t i = 0; i < n_ports; i++) {
        if (st->cfg->continuous) {
            st->slots[i].present = 1;
            station_line_slot_start(&st->slots[i]);
            continue;
        }
        st->n_running++;
        session_start(st->slots[i].session);
    }
    return 0;
}

int station_write_summary(struct station *st, const struct report_run_slot *slots, size_t n,
                          const struct report_run_counts *counts, struct es_err *err)
{
    struct report_profile *profiles = calloc(st->cfg->n_profiles, sizeof(*profiles));
    struct report_run run = {0};
    int rc;

    if (profiles == NULL)
        return es_fail(err, ES_NOMEM, "out of memory writing %s", REPORT_RUN_FILE);
    for (size_t i = 0; i < st->cfg->n_profiles; i++) {
        profiles[i].name = st->cfg->profiles[i]->name;
        memcpy(profiles[i].sha256, st->cfg->profiles[i]->sha256, 32);
    }
    run.profiles = profiles;
    run.n_profiles = st->cfg->n_profiles;
    run.station = st->cfg->station_id; /* as the database names it */
    run.start_ms = st->start_ms;
    run.end_ms = report_now_ms();
    run.slots = slots;
    run.n_slots = n;
    run.counts = counts;
    rc = report_write_run(st->run_dir, &run, err);
    free(profiles);
    return rc;
}

/* run.json at the end: one pass lists the slots, a continuous run every board it recorded. */
static int write_run_summary(struct station *st, struct station_result *res)
{
    size_t n = st->cfg->continuous ? st->n_records : st->n_slots;
    struct report_run_slot *slots = calloc(n ? n : 1, sizeof(*slots));
    struct report_run_counts counts;
    struct es_err err;
    int rc;

    for (size_t i = 0; slots != NULL && i < n; i++) {
        slots[i] = st->cfg->continuous ? st->records[i].entry : st->slots[i].summary;
        if (st->cfg->continuous)
            continue;
        switch (slots[i].result) {
        case REPORT_PASS: res->passed++; break;
        case REPORT_FAIL: res->failed++; break;
        case REPORT_INTERRUPTED: res->interrupted++; break;
        }
    }
    if (st->cfg->continuous) {
        station_line_counts(st, &counts);
        res->passed += counts.passed;
        res->failed += counts.failed;
        res->interrupted += counts.interrupted;
    }
    station_writer_spare_release(&st->writer);
    rc = station_write_summary(st, slots, slots != NULL ? n : 0,
                               st->cfg->continuous ? &counts : NULL, &err);
    if (rc < 0)
        fprintf(stderr, "espstation: %s: no %s: %s\n", st->run_dir, REPORT_RUN_FILE, err.msg);
    station_writer_spare_take(&st->writer);
    free(slots);
    return rc;
}

/* Tells the operator what the run could not record, and puts it in res. */
static void report_losses(struct station *st, struct station_result *res, int summary_rc)
{
    res->reports_lost = st->reports_lost;
    res->journal_lost = st->log.error != NULL;
    res->summary_lost = summary_rc < 0;
    fflush(stdout); /* after the summary the operator has just read */
    if (st->reports_lost > 0) {
        const char *sep = "";

        fprintf(stderr,
                "espstation: RUN FAILED: %zu of %zu boards have no report:", st->reports_lost,
                st->n_slots);

        for (size_t i = 0; i < st->n_slots; i++) {
            if (st->slots[i].report_error == NULL)
                continue;
            fprintf(stderr, "%s slot %d (%s, %s)", sep, st->slots[i].index, st->slots[i].port,
                    report_result_name(st->slots[i].summary.result));
            sep = ",";
        }
        fprintf(stderr, "\n");
    }
    if (st->log.error != NULL)
        fprintf(stderr, "espstation: RUN FAILED: the journal %s is incomplete: %s\n",
                st->log.journal.path, st->log.error);
    if (summary_rc < 0)
        fprintf(stderr, "espstation: RUN FAILED: %s/%s was not written\n", st->run_dir,
                REPORT_RUN_FILE);
}

/* Continuous mode's watches, on the directory of espsim's first port too (sim_port). */
static int line_open(struct station *st, const char *sim_port, struct es_err *err)
{
    char dir[PATH_MAX];
    char *slash;

    if (sim_port == NULL)
        return station_line_open(st, NULL, err);
    snprintf(dir, sizeof(dir), "%s", sim_port);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        return station_line_open(st, ".", err);
    *slash = '\0';
    return station_line_open(st, dir, err);
}

/* The loop and its handles: signals (a closed terminal or SSH session, SIGHUP, stops the run
 * like SIGTERM: every report is still written), the live view's timer and the stall probe. */
static int loop_open(struct station *st, struct es_err *err)
{
    int rc;

    if ((rc = uv_loop_init(&st->loop)) < 0)
        return es_fail(err, ES_IO, "uv_loop_init: %s", uv_strerror(rc));
    st->loop_ok = 1;
    /* For the stall probe; without it the probe reads every wait as work. */
    uv_loop_configure(&st->loop, UV_METRICS_IDLE_TIME);
    if ((rc = uv_signal_init(&st->loop, &st->sigint)) < 0 ||
        (rc = uv_signal_init(&st->loop, &st->sigterm)) < 0 ||
        (rc = uv_signal_init(&st->loop, &st->sighup)) < 0 ||
        (rc = uv_timer_init(&st->loop, &st->ui_timer)) < 0)
        return es_fail(err, ES_IO, "uv_signal_init: %s", uv_strerror(rc));
    st->sigint.data = st->sigterm.data = st->sighup.data = st;
    if ((rc = uv_signal_start(&st->sigint, on_signal, SIGINT)) < 0 ||
        (rc = uv_signal_start(&st->sigterm, on_signal, SIGTERM)) < 0 ||
        (rc = uv_signal_start(&st->sighup, on_signal, SIGHUP)) < 0)
        return es_fail(err, ES_IO, "uv_signal_start: %s; the station could not stop cleanly",
                       uv_strerror(rc));
    if ((rc = loop_probe_start(&st->probe, &st->loop)) < 0)
        return es_fail(err, ES_IO, "uv_prepare_start: %s", uv_strerror(rc));
    return 0;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    close_handle(h);
}

/* Closes whatever handle is still open, lets the loop run their close callbacks, and closes it:
 * a handle left open (UV_EBUSY) is a leak, and said so. */
static void loop_close(struct station *st)
{
    if (!st->loop_ok)
        return;
    st->loop_ok = 0;
    /* After a normal run every handle is closed already; after a failed start (or a loop_open
     * that failed part way) the signal, timer and probe handles are closed here. */
    uv_walk(&st->loop, on_walk_close, NULL);
    uv_run(&st->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&st->loop) != 0)
        fprintf(stderr, "espstation: internal error: libuv handles left open at exit\n");
}

static void print_loop_stats(const struct station *st)
{
    const char *env = getenv("ESPSTATION_LOOP_STATS");

    if (env == NULL || strcmp(env, "1") != 0)
        return;
    fprintf(stderr,
            "espstation: payloads: %zu distinct (%zu patched variants) for %zu lookups, prepared "
            "in %.1f ms before the loop\n",
            st->payloads.n_data, st->payloads.n_variants, st->payloads.n_keys,
            (double)st->payloads.prepare_ns / 1e6);
    fprintf(stderr,
            "espstation: loop: %llu iterations, longest stall %.2f ms (%.2f ms of it on the CPU), "
            "%llu over %.0f ms; most CPU in one iteration %.2f ms; %zu disk jobs on the thread "
            "pool\n",
            (unsigned long long)st->probe.iterations, (double)st->probe.max_stall_ns / 1e6,
            (double)st->probe.max_stall_cpu_ns / 1e6, (unsigned long long)st->probe.slow,
            LOOP_PROBE_SLOW_NS / 1e6, (double)st->probe.max_cpu_ns / 1e6, st->writer.jobs_done);
    for (uint64_t i = 0; i < st->probe.slow && i < LOOP_PROBE_KEEP; i++)
        fprintf(stderr,
                "espstation: loop: stall at %.3f s: %.2f ms, %.2f ms on the CPU, blocked %ld "
                "times, preempted %ld times\n",
                (double)st->probe.stalls[i].at_ns / 1e9, (double)st->probe.stalls[i].busy_ns / 1e6,
                (double)st->probe.stalls[i].cpu_ns / 1e6, st->probe.stalls[i].blocked,
                st->probe.stalls[i].preempted);
}

int station_run(const struct station_config *cfg, struct station_result *res, struct es_err *err)
{
    struct station st;
    char **ports = cfg->ports;
    size_t n_ports = cfg->n_ports;
    char **sim_ports = NULL;
    size_t n_sim = 0;
    int rc, summary_rc;

    const char *reports_root =
        cfg->reports_root != NULL ? cfg->reports_root : cfg->profiles[0]->reports;

    memset(&st, 0, sizeof(st));
    memset(res, 0, sizeof(*res));
    st.cfg = cfg;
    st.sim.stdin_fd = -1;
    st.start_ns = uv_hrtime();
    st.start_ms = report_now_ms();
    /* A file size limit then fails the write with EFBIG, which we report, instead of killing
     * the station with no record. */
    signal(SIGXFSZ, SIG_IGN);

    if ((rc = load_stubs(&st, err)) < 0)
        goto out_stubs;
    if (cfg->continuous && (rc = station_line_check(cfg, err)) < 0)
        goto out_stubs;
    /* Before any board (or espsim) is touched: can the reports directory hold this run? */
    rc = report_dir_preflight(
        reports_root,
        REPORT_ROOM_BASE + REPORT_ROOM_PER_BOARD * ((uint64_t)cfg->simulate + cfg->n_ports), err);
    if (rc < 0)
        goto out_stubs;
    /* Every patched image and zlib stream any board can need, before the loop runs. */
    rc =
        payload_set_prepare(&st.payloads, cfg->profiles, cfg->n_profiles, st.stubs, cfg->mode, err);
    if (rc < 0)
        goto out_stubs;
    if ((rc = loop_open(&st, err)) < 0)
        goto out_loop;
    if (cfg->simulate > 0) {
        if ((rc = station_sim_start(&st.sim, cfg, &sim_ports, &n_sim, err)) < 0)
            goto out_sim;
        for (size_t i = 0; i < cfg->n_ports; i++)
            sim_ports[n_sim++] = strdup(cfg->ports[i]);
        ports = sim_ports;
        n_ports = n_sim;
    }
    /* A line may start empty and wait for its ports to appear. */
    if (n_ports == 0 && !(cfg->continuous && cfg->n_watch > 0)) {
        rc = es_fail(err, ES_USAGE,
                     "no ports to flash: give --port, list ports in the profile, or use "
                     "--simulate N");
        goto out_sim;
    }
    /* One board twice (a port given twice, a symlink and its target) would fail both slots. */
    if ((rc = port_check_distinct(ports, n_ports, err)) < 0)
        goto out_sim;
    rc = report_run_dir_create(reports_root, st.run_dir, sizeof(st.run_dir), err);
    if (rc < 0)
        goto out_sim;
    snprintf(res->run_dir, sizeof(res->run_dir), "%s", st.run_dir);
    rc = event_log_open(&st.log, st.run_dir, cfg->output == STATION_OUTPUT_JSON ? stdout : NULL,
                        stderr, err);
    if (rc < 0) {
        rmdir(st.run_dir); /* still empty: no board was touched */
        goto out_sim;
    }
    station_writer_init(&st.writer, &st.loop);
    /* A line runs for days: its journal is closed off in files of JOURNAL_ROTATE_BYTES. */
    if (cfg->continuous)
        st.log.rotate_bytes = JOURNAL_ROTATE_BYTES;

    event_log_run_start(&st.log, cfg->profiles[0]->name, n_ports,
                        cfg->mode == SESSION_VERIFY ? "verify" : "flash");
    rc = station_publish_open(&st, reports_root, err);
    if (rc == 0) {
        rc = start_sessions(&st, ports, n_ports, err);
        station_publish_start(&st); /* the view exists now; the loop has not run yet */
    }
    if (rc == 0 && cfg->continuous)
        rc = line_open(&st, n_sim > 0 ? sim_ports[0] : NULL, err);
    if (st.view.mode == UI_VIEW_LIVE)
        uv_timer_start(&st.ui_timer, on_ui_timer, 0, UI_REDRAW_MS);
    if (rc < 0 && cfg->continuous) {
        st.stopping = 1;
        station_line_stop(&st);
    } else if (rc < 0) {
        /* Sessions already started still end through on_done; stop the rest. */
        for (size_t i = 0; i < st.n_slots; i++)
            if (st.slots[i].session != NULL && st.n_running > 0)
                session_interrupt(st.slots[i].session);
        if (st.n_running == 0)
            station_stop_loop_handles(&st);
    }
    uv_run(&st.loop, UV_RUN_DEFAULT);
    loop_close(&st);
    station_publish_close(&st);

    station_sample_progress(&st);
    ui_view_summary(&st.view, station_elapsed_s(&st));
    summary_rc = write_run_summary(&st, res);
    event_log_run_end(&st.log, res->passed, res->failed, res->interrupted);
    event_log_close(&st.log);
    report_losses(&st, res, summary_rc);
    print_loop_stats(&st);
    for (size_t i = 0; i < st.n_slots; i++) {
        session_free(st.slots[i].session);
        free(st.slots[i].report_error);
        free(st.slots[i].dup_slots);
        free(st.slots[i].port_owned);
    }
    station_line_free(&st);
    free(st.slots);
    ui_view_close(&st.view);
    event_log_free(&st.log);
    station_writer_spare_release(&st.writer);

out_sim:
    station_sim_stop(&st.sim);
    for (size_t i = 0; i < n_sim; i++)
        free(sim_ports[i]);
    free(sim_ports);
out_loop:
    loop_close(&st);
out_stubs:
    for (int m = 0; m < CHIP_MODEL_COUNT; m++)
        stub_close(&st.stubs[m]);
    payload_set_close(&st.payloads);
    port_list_free(st.ports, st.n_ports);
    return rc < 0 ? rc : 0;
}
