/* The station: many sessions in one loop. It prepares what every board shares (stubs, patched
 * and compressed images), starts a session per port, passes session events on to the journal and
 * the live view, writes each board's report when its session ends, and stops cleanly on
 * SIGINT/SIGTERM/SIGHUP so that every report is still written. A report, journal line or run.json
 * that cannot be written fails the run, and the operator is told which boards have no report. */
#define _DEFAULT_SOURCE /* realpath, PATH_MAX */
#include "es/station.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "es/journal.h"
#include "es/report.h"
#include "es/stub.h"
#include "es/ui.h"

extern char **environ;

#define UI_REDRAW_MS 100

/* A prepared (patched, padded) image and its zlib stream, shared by every board that needs the
 * same bytes. */
struct payload_entry {
    const struct profile *profile;
    size_t index;
    enum chip_model model;
    struct image_flash_params params;
    struct image_prepared prepared;
    struct image_deflate z;
    struct session_payload payload;
    struct payload_entry *next;
};

struct slot {
    struct station *st;
    int index;
    char *port;
    struct session *session;
    int done;
    char report_file[256];
    char *report_error; /* why no report was written (malloc'd), or NULL */
    struct report_run_slot summary;
    /* The board's report as written: the session's, amended by the station (duplicate MAC). */
    struct report_device report;
    struct es_err dup_error;
    int *dup_slots; /* other slots with this board's MAC (malloc'd) */
    size_t n_dup_slots;
};

struct station {
    const struct station_config *cfg;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t ui_timer;
    int live; /* drawing the live table */
    struct stub_image stubs[CHIP_MODEL_COUNT];
    struct payload_entry *payloads;
    struct slot *slots;
    size_t n_slots, n_running;
    int stopping;
    char run_dir[4096];
    struct journal journal;
    int journal_ok;
    char *journal_error; /* the first journal write that failed (malloc'd), or NULL */
    size_t reports_lost; /* boards whose report could not be written */
    int spare_fd;        /* held back so a report can be written at the fd limit; -1: none */
    uint64_t start_ns;
    int64_t start_ms;
    struct port_info *ports; /* the system's serial ports, for USB identities in reports */
    size_t n_ports;
    pid_t sim_pid;
    FILE *sim_out; /* espsim's stdout, kept open while it runs */
    int sim_stdin; /* the write end of espsim's stdin, closed to stop it */
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- espsim as a child process (--simulate) ---- */

static int find_espsim(char *out, size_t cap)
{
    const char *env = getenv("ESPSTATION_ESPSIM");
    char self[4096], *slash;
    ssize_t n;
    static const char *const rel[] = {"/espsim", "/../../tools/sim/espsim", "/../tools/sim/espsim"};

    if (env != NULL && env[0] != '\0') {
        snprintf(out, cap, "%s", env);
        return access(out, X_OK);
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(out, cap, "%s%s", self, rel[i]);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* Which chip each simulated board is: the profiles' chips in turn (auto: ESP8266 and ESP32). */
static const char *sim_chip(const struct station_config *cfg, int i)
{
    const char *chips[8];
    size_t n = 0;

    for (size_t k = 0; k < cfg->n_profiles && n < 8; k++) {
        if (cfg->profiles[k]->chip == NULL) {
            chips[n++] = "esp8266";
            if (n < 8)
                chips[n++] = "esp32";
        } else {
            chips[n++] = cfg->profiles[k]->chip->name;
        }
    }
    return chips[(size_t)i % n];
}

static int sim_start(struct station *st, char ***ports, size_t *n_ports, struct es_err *err)
{
    const struct station_config *cfg = st->cfg;
    char espsim[4096], scale[32], line[8192];
    char **argv;
    size_t argc = 0, nargs = 8 + 2 * (size_t)cfg->simulate + cfg->n_sim_args;
    int pipefd[2], infd[2];
    posix_spawn_file_actions_t fa;
    FILE *f;
    int rc;

    if (find_espsim(espsim, sizeof(espsim)) < 0)
        return es_fail(err, ES_USAGE,
                       "--simulate needs espsim next to espstation or in ESPSTATION_ESPSIM; build "
                       "it with cmake (target espsim)");
    argv = calloc(nargs + 1, sizeof(*argv));
    if (argv == NULL)
        return es_fail(err, ES_NOMEM, "out of memory starting espsim");
    argv[argc++] = espsim;
    snprintf(scale, sizeof(scale), "%g", cfg->sim_time_scale);
    argv[argc++] = "--time-scale";
    argv[argc++] = scale;
    argv[argc++] = "--exit-on-eof";
    for (int i = 0; i < cfg->simulate; i++) {
        argv[argc++] = "--board";
        argv[argc++] = (char *)sim_chip(cfg, i);
    }
    for (size_t i = 0; i < cfg->n_sim_args; i++)
        argv[argc++] = cfg->sim_args[i];
    argv[argc] = NULL;

    if (pipe(pipefd) < 0 || pipe(infd) < 0) {
        free(argv);
        return es_fail(err, ES_IO, "pipe: %s", strerror(errno));
    }
    /* espsim's stdin is a pipe we never write to: when the station dies, however it dies, the
     * pipe closes and espsim (--exit-on-eof) goes down with it. */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, infd[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, infd[1]);
    rc = posix_spawn(&st->sim_pid, espsim, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    close(pipefd[1]);
    close(infd[0]);
    st->sim_stdin = infd[1];
    if (rc != 0) {
        close(pipefd[0]);
        st->sim_pid = 0;
        return es_fail(err, ES_IO, "cannot start %s: %s", espsim, strerror(rc));
    }
    f = fdopen(pipefd[0], "r");
    if (f == NULL) {
        close(pipefd[0]);
        return es_fail(err, ES_IO, "fdopen: %s", strerror(errno));
    }
    *ports = calloc((size_t)cfg->simulate + cfg->n_ports, sizeof(char *));
    *n_ports = 0;
    rc = es_fail(err, ES_IO, "espsim exited before it was ready (see its messages above)");
    while (*ports != NULL && fgets(line, sizeof(line), f) != NULL) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *port = json_object_get(o, "port");
        if (json_is_true(json_object_get(o, "ready"))) {
            json_decref(o);
            rc = 0;
            break;
        }
        if (json_is_string(port) && *n_ports < (size_t)cfg->simulate)
            (*ports)[(*n_ports)++] = strdup(json_string_value(port));
        json_decref(o);
    }
    /* Keep the pipe open (espsim may print more); closing it could raise SIGPIPE there. */
    if (rc == 0)
        st->sim_out = f;
    else
        fclose(f);
    return rc;
}

static void sim_stop(struct station *st)
{
    int status;

    if (st->sim_stdin > 0)
        close(st->sim_stdin);
    st->sim_stdin = -1;
    if (st->sim_pid <= 0)
        return;
    kill(st->sim_pid, SIGTERM);
    waitpid(st->sim_pid, &status, 0);
    st->sim_pid = 0;
    if (st->sim_out != NULL)
        fclose(st->sim_out);
    st->sim_out = NULL;
}

/* ---- Payloads ---- */

static int params_equal(const struct image_flash_params *a, const struct image_flash_params *b)
{
    return a->mode == b->mode && a->freq == b->freq && a->size == b->size;
}

static int compress_payload(struct payload_entry *e, struct es_err *err)
{
    int rc = image_deflate(e->prepared.data, e->prepared.size, IMAGE_DEFLATE_CHUNK, &e->z, err);

    if (rc == 0)
        e->payload.z = &e->z;
    return rc;
}

static int get_payload(struct session *s, const struct profile *p, size_t i,
                       const struct chip *chip, const struct image_flash_params *params,
                       int compressed, const struct session_payload **out, struct es_err *err,
                       void *arg)
{
    struct slot *slot = arg;
    struct station *st = slot->st;
    const struct profile_image *pi = &p->images[i];
    struct payload_entry *e;

    (void)s;
    for (e = st->payloads; e != NULL; e = e->next) {
        if (e->profile == p && e->index == i && e->model == chip->model &&
            params_equal(&e->params, params))
            break;
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            return es_fail(err, ES_NOMEM, "out of memory preparing an image");
        if (image_prepare(chip, pi->image->data, pi->image->size, pi->offset, params, &e->prepared,
                          err) < 0) {
            free(e);
            return -(int)err->code;
        }
        e->profile = p;
        e->index = i;
        e->model = chip->model;
        e->params = *params;
        e->payload.prepared = &e->prepared;
        e->next = st->payloads;
        st->payloads = e;
    }
    if (compressed && e->payload.z == NULL && compress_payload(e, err) < 0)
        return -(int)err->code;
    *out = &e->payload;
    return 0;
}

static void payloads_free(struct station *st)
{
    struct payload_entry *e = st->payloads, *next;

    for (; e != NULL; e = next) {
        next = e->next;
        image_prepared_close(&e->prepared);
        image_deflate_close(&e->z);
        free(e);
    }
    st->payloads = NULL;
}

/* ---- Journal, live view, reports ---- */

/* The journal cannot be written any more (disk full, file size limit): say so once, keep what
 * it holds (every line in it is whole), and fail the run. Reports are still written. */
static void journal_failed(struct station *st, const struct es_err *err)
{
    fprintf(stderr, "espstation: %s; the journal stops here, every line before is whole\n",
            err->msg);
    st->journal_ok = 0;
    if (st->journal_error == NULL)
        st->journal_error = strdup(err->msg);
}

/* The spare descriptor: released just before a report is written and taken back after, so a
 * board that failed to open because the process ran out of descriptors still gets its report
 * (issue 11 #13). */
static void spare_release(struct station *st)
{
    if (st->spare_fd >= 0)
        close(st->spare_fd);
    st->spare_fd = -1;
}

static void spare_take(struct station *st)
{
    if (st->spare_fd < 0)
        st->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void journal_event(struct station *st, struct slot *slot, const char *event, json_t *fields)
{
    struct es_err err;
    json_t *o = json_object();

    if (slot != NULL) {
        json_object_set_new(o, "slot", json_integer(slot->index));
        json_object_set_new(o, "port", json_string(slot->port));
    }
    json_object_set_new(o, "event", json_string(event));
    if (fields != NULL) {
        json_object_update(o, fields);
        json_decref(fields);
    }
    if (st->journal_ok && journal_append(&st->journal, o, &err) < 0)
        journal_failed(st, &err);
    if (st->cfg->output == STATION_OUTPUT_JSON) {
        /* The journal's line shape on stdout too: "t" first. */
        char t[REPORT_UTC_LEN], *line;
        json_t *out = json_object();

        report_format_utc(report_now_ms(), t);
        json_object_set_new(out, "t", json_string(t));
        json_object_update(out, o);
        line = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line != NULL) {
            printf("%s\n", line);
            fflush(stdout);
            free(line);
        }
        json_decref(out);
    }
    json_decref(o);
}

static void print_line(struct station *st, struct slot *slot, const char *what, const char *text)
{
    if (st->live || st->cfg->output == STATION_OUTPUT_JSON)
        return;
    ui_line(stdout, slot->index, slot->port, what, text);
}

static void on_phase(struct session *s, enum session_phase phase, void *arg)
{
    struct slot *slot = arg;

    (void)s;
    journal_event(slot->st, slot, "phase", json_pack("{ss}", "phase", session_phase_name(phase)));
    print_line(slot->st, slot, "phase", session_phase_name(phase));
}

static void on_note(struct session *s, const char *what, const char *text, void *arg)
{
    struct slot *slot = arg;

    (void)s;
    journal_event(slot->st, slot, what, json_pack("{ss}", "text", text));
    print_line(slot->st, slot, what, text);
}

static void ui_rows(struct station *st, struct ui_row *rows)
{
    for (size_t i = 0; i < st->n_slots; i++) {
        struct session_snapshot snap;
        struct ui_row *r = &rows[i];

        memset(r, 0, sizeof(*r));
        r->slot = st->slots[i].index;
        r->port = st->slots[i].port;
        if (st->slots[i].session == NULL) {
            r->phase = "-";
            continue;
        }
        session_snapshot(st->slots[i].session, &snap);
        r->chip = snap.chip;
        memcpy(r->mac, snap.mac, sizeof(r->mac));
        r->phase = session_phase_name(snap.phase);
        r->done_bytes = snap.done_bytes;
        r->total_bytes = snap.total_bytes;
        r->rate_bps = snap.rate_bps;
        r->finished = snap.finished;
        r->result = snap.finished ? report_result_name(snap.result) : NULL;
        r->error = snap.error;
        if (st->slots[i].done) { /* the verdict as the station amended it (duplicate MAC) */
            const struct report_device *rep = &st->slots[i].report;

            r->result = report_result_name(rep->result);
            r->error = rep->result == REPORT_PASS ? NULL : rep->error.msg;
        }
    }
}

static void ui_redraw(struct station *st)
{
    struct ui_row *rows;

    if (!st->live)
        return;
    rows = calloc(st->n_slots, sizeof(*rows));
    if (rows == NULL)
        return;
    ui_rows(st, rows);
    ui_table_draw(stdout, rows, st->n_slots, (double)(uv_hrtime() - st->start_ns) / 1e9);
    free(rows);
}

static void on_ui_timer(uv_timer_t *t)
{
    ui_redraw(container_of(t, struct station, ui_timer));
}

static void stop_loop_handles(struct station *st);

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
    char mac[18];

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
    return 0;
}

/* A board that finished with a MAC another finished board of the run has: both are flagged
 * (and failed, by the profile's default), the earlier one's report written again, and the
 * operator told. Boards still running are compared when they finish. */
static void check_duplicate_mac(struct station *st, struct slot *slot)
{
    char mac[18];

    if (!slot->report.mac_valid)
        return;
    chip_format_mac(slot->report.mac, mac);
    for (size_t i = 0; i < st->n_slots; i++) {
        struct slot *other = &st->slots[i];
        struct es_err err;

        if (other == slot || !other->done || !other->report.mac_valid ||
            memcmp(other->report.mac, slot->report.mac, 6) != 0)
            continue;
        if (add_duplicate(slot, other) < 0 || add_duplicate(other, slot) < 0) {
            fprintf(stderr, "espstation: out of memory recording a duplicate MAC\n");
            continue;
        }
        fprintf(stderr, "espstation: WARNING: slots %d (%s) and %d (%s) both have MAC %s\n",
                other->index, other->port, slot->index, slot->port, mac);
        journal_event(st, slot, "duplicate_mac",
                      json_pack("{ss si ss}", "mac", mac, "other_slot", other->index, "other_port",
                                other->port));
        if (other->report_file[0] != '\0' &&
            report_rewrite_device(st->run_dir, other->report_file, &other->report, &err) < 0)
            fprintf(stderr,
                    "espstation: slot %d (%s): its report does not show the duplicate "
                    "MAC: %s\n",
                    other->index, other->port, err.msg);
    }
}

static void on_done(struct session *s, void *arg)
{
    struct slot *slot = arg;
    struct station *st = slot->st;
    const struct report_device *rep = &slot->report;
    struct es_err err;
    char mac[18] = "";
    int written;

    slot->report = *session_report(s);
    slot->summary.result = rep->result;
    slot->summary.error_code = rep->result == REPORT_PASS ? ES_OK : rep->error.code;
    check_duplicate_mac(st, slot);
    spare_release(st);
    written = report_write_device(st->run_dir, rep, slot->report_file, sizeof(slot->report_file),
                                  &err) == 0;
    if (!written) {
        fprintf(stderr, "espstation: slot %d (%s): no report: %s\n", slot->index, slot->port,
                err.msg);
        slot->report_file[0] = '\0';
        slot->report_error = strdup(err.msg);
        st->reports_lost++;
    }
    if (rep->mac_valid)
        chip_format_mac(rep->mac, mac);
    journal_event(st, slot, "done",
                  json_pack("{ss ss* ss* ss* ss* ss*}", "result", report_result_name(rep->result),
                            "mac", rep->mac_valid ? mac : NULL, "error",
                            rep->result == REPORT_PASS ? NULL : es_code_name(rep->error.code),
                            "message", rep->result == REPORT_PASS ? NULL : rep->error.msg, "report",
                            written ? slot->report_file : NULL, "report_error",
                            written ? NULL : slot->report_error));
    if (st->journal_ok && journal_sync(&st->journal, &err) < 0)
        journal_failed(st, &err);
    spare_take(st);
    if (!st->live && st->cfg->output != STATION_OUTPUT_JSON)
        ui_line(stdout, slot->index, slot->port, report_result_name(rep->result),
                rep->result == REPORT_PASS ? mac : rep->error.msg);

    slot->summary.slot = slot->index;
    slot->summary.port = slot->port;
    slot->summary.mac_valid = rep->mac_valid;
    memcpy(slot->summary.mac, rep->mac, 6);
    slot->summary.profile_name = rep->profile_name;
    slot->summary.report_file = slot->report_file[0] != '\0' ? slot->report_file : NULL;
    slot->done = 1;
    if (--st->n_running == 0)
        stop_loop_handles(st);
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
    for (size_t i = 0; i < st->n_slots; i++)
        if (st->slots[i].session != NULL && !st->slots[i].done)
            session_interrupt(st->slots[i].session);
}

static void stop_loop_handles(struct station *st)
{
    ui_redraw(st);
    if (st->live)
        uv_timer_stop(&st->ui_timer);
    uv_close((uv_handle_t *)&st->ui_timer, NULL);
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    uv_close((uv_handle_t *)&st->sighup, NULL);
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

static int start_sessions(struct station *st, char **ports, size_t n_ports, struct es_err *err)
{
    static const struct session_callbacks cb = {on_phase, on_note, on_done, get_payload};
    struct session_config sc = {0};

    st->slots = calloc(n_ports, sizeof(*st->slots));
    if (st->slots == NULL)
        return es_fail(err, ES_NOMEM, "out of memory");
    st->n_slots = n_ports;
    sc.profiles = st->cfg->profiles;
    sc.n_profiles = st->cfg->n_profiles;
    sc.stubs = st->stubs;
    sc.mode = st->cfg->mode;
    sc.timeout_scale = st->cfg->timeout_scale;
    sc.verbose = st->cfg->verbose;
    /* USB identities for the reports; a port that is not listed (pty, socket) has none. */
    if (port_list(&st->ports, &st->n_ports, err) < 0) {
        st->ports = NULL;
        st->n_ports = 0;
    }
    for (size_t i = 0; i < n_ports; i++) {
        struct slot *slot = &st->slots[i];
        sc.usb = find_port_info(st, ports[i]);
        slot->st = st;
        slot->index = (int)i;
        slot->port = ports[i];
        sc.slot = (int)i;
        sc.port = ports[i];
        if (session_new(&st->loop, &sc, &cb, slot, &slot->session, err) < 0)
            return -(int)err->code;
    }
    for (size_t i = 0; i < n_ports; i++) {
        st->n_running++;
        session_start(st->slots[i].session);
    }
    return 0;
}

static int write_run_summary(struct station *st, struct station_result *res)
{
    struct report_profile *profiles = calloc(st->cfg->n_profiles, sizeof(*profiles));
    struct report_run run = {0};
    struct report_run_slot *slots = calloc(st->n_slots ? st->n_slots : 1, sizeof(*slots));
    struct es_err err;
    int rc;

    for (size_t i = 0; profiles != NULL && i < st->cfg->n_profiles; i++) {
        profiles[i].name = st->cfg->profiles[i]->name;
        memcpy(profiles[i].sha256, st->cfg->profiles[i]->sha256, 32);
    }
    for (size_t i = 0; slots != NULL && i < st->n_slots; i++) {
        slots[i] = st->slots[i].summary;
        switch (slots[i].result) {
        case REPORT_PASS: res->passed++; break;
        case REPORT_FAIL: res->failed++; break;
        case REPORT_INTERRUPTED: res->interrupted++; break;
        }
    }
    run.profiles = profiles;
    run.n_profiles = profiles != NULL ? st->cfg->n_profiles : 0;
    run.start_ms = st->start_ms;
    run.end_ms = report_now_ms();
    run.slots = slots;
    run.n_slots = slots != NULL ? st->n_slots : 0;
    spare_release(st);
    rc = report_write_run(st->run_dir, &run, &err);
    if (rc < 0)
        fprintf(stderr, "espstation: %s: no %s: %s\n", st->run_dir, REPORT_RUN_FILE, err.msg);
    spare_take(st);
    free(profiles);
    free(slots);
    return rc;
}

/* Tells the operator what the run could not record, and puts it in res. */
static void report_losses(struct station *st, struct station_result *res, int summary_rc)
{
    res->reports_lost = st->reports_lost;
    res->journal_lost = st->journal_error != NULL;
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
    if (st->journal_error != NULL)
        fprintf(stderr, "espstation: RUN FAILED: the journal %s is incomplete: %s\n",
                st->journal.path, st->journal_error);
    if (summary_rc < 0)
        fprintf(stderr, "espstation: RUN FAILED: %s/%s was not written\n", st->run_dir,
                REPORT_RUN_FILE);
}

int station_run(const struct station_config *cfg, struct station_result *res, struct es_err *err)
{
    struct station st;
    char **ports = cfg->ports;
    size_t n_ports = cfg->n_ports;
    char **sim_ports = NULL;
    size_t n_sim = 0;
    struct es_err close_err;
    int rc, summary_rc;

    const char *reports_root =
        cfg->reports_root != NULL ? cfg->reports_root : cfg->profiles[0]->reports;

    memset(&st, 0, sizeof(st));
    memset(res, 0, sizeof(*res));
    st.cfg = cfg;
    st.spare_fd = -1;
    st.start_ns = uv_hrtime();
    st.start_ms = report_now_ms();
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit then fails the write with EFBIG, which we report, instead of killing
     * the station with no record. */
    signal(SIGXFSZ, SIG_IGN);

    if ((rc = load_stubs(&st, err)) < 0)
        goto out_stubs;
    /* Before any board (or espsim) is touched: can the reports directory hold this run? */
    rc = report_dir_preflight(
        reports_root,
        REPORT_ROOM_BASE + REPORT_ROOM_PER_BOARD * ((uint64_t)cfg->simulate + cfg->n_ports), err);
    if (rc < 0)
        goto out_stubs;
    if (cfg->simulate > 0) {
        if ((rc = sim_start(&st, &sim_ports, &n_sim, err)) < 0)
            goto out_sim;
        for (size_t i = 0; i < cfg->n_ports; i++)
            sim_ports[n_sim++] = strdup(cfg->ports[i]);
        ports = sim_ports;
        n_ports = n_sim;
    }
    if (n_ports == 0) {
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
    if ((rc = journal_open(&st.journal, st.run_dir, err)) < 0) {
        rmdir(st.run_dir); /* still empty: no board was touched */
        goto out_sim;
    }
    st.journal_ok = 1;
    spare_take(&st);

    uv_loop_init(&st.loop);
    uv_signal_init(&st.loop, &st.sigint);
    uv_signal_init(&st.loop, &st.sigterm);
    uv_signal_init(&st.loop, &st.sighup);
    st.sigint.data = st.sigterm.data = st.sighup.data = &st;
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    /* A closed terminal or SSH session (SIGHUP) stops the run like SIGTERM: every report is
     * still written. */
    uv_signal_start(&st.sighup, on_signal, SIGHUP);
    uv_timer_init(&st.loop, &st.ui_timer);
    st.live = cfg->output == STATION_OUTPUT_AUTO && isatty(STDOUT_FILENO);
    if (st.live)
        uv_timer_start(&st.ui_timer, on_ui_timer, 0, UI_REDRAW_MS);

    journal_event(&st, NULL, "run_start",
                  json_pack("{ss si ss}", "profile", cfg->profiles[0]->name, "boards", (int)n_ports,
                            "mode", cfg->mode == SESSION_VERIFY ? "verify" : "flash"));
    rc = start_sessions(&st, ports, n_ports, err);
    if (rc < 0) {
        /* Sessions already started still end through on_done; stop the rest. */
        for (size_t i = 0; i < st.n_slots; i++)
            if (st.slots[i].session != NULL && st.n_running > 0)
                session_interrupt(st.slots[i].session);
        if (st.n_running == 0)
            stop_loop_handles(&st);
    }
    uv_run(&st.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&st.loop) != 0)
        fprintf(stderr, "espstation: internal error: libuv handles left open at exit\n");

    if (cfg->output != STATION_OUTPUT_JSON && st.n_slots > 0) {
        struct ui_row *rows = calloc(st.n_slots, sizeof(*rows));
        if (rows != NULL) {
            ui_rows(&st, rows);
            ui_summary(stdout, rows, st.n_slots, (double)(uv_hrtime() - st.start_ns) / 1e9);
            free(rows);
        }
    }
    summary_rc = write_run_summary(&st, res);
    journal_event(&st, NULL, "run_end",
                  json_pack("{sI sI sI}", "passed", (json_int_t)res->passed, "failed",
                            (json_int_t)res->failed, "interrupted", (json_int_t)res->interrupted));
    if (journal_close(&st.journal, &close_err) < 0 && st.journal_ok)
        journal_failed(&st, &close_err);
    report_losses(&st, res, summary_rc);
    for (size_t i = 0; i < st.n_slots; i++) {
        session_free(st.slots[i].session);
        free(st.slots[i].report_error);
        free(st.slots[i].dup_slots);
    }
    free(st.slots);
    free(st.journal_error);
    spare_release(&st);

out_sim:
    sim_stop(&st);
    for (size_t i = 0; i < n_sim; i++)
        free(sim_ports[i]);
    free(sim_ports);
out_stubs:
    for (int m = 0; m < CHIP_MODEL_COUNT; m++)
        stub_close(&st.stubs[m]);
    payloads_free(&st);
    port_list_free(st.ports, st.n_ports);
    return rc < 0 ? rc : 0;
}
