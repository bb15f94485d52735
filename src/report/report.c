/* Device reports (reports/<run-id>/<mac>.json) and the run summary (run.json); the run
 * directory itself is run_dir.c's. Everything here turns plain structs into JSON with keys in a
 * fixed order, so two reports can be diffed line by line, and hands the bytes to es_atomic_write.
 * The journal is in journal.c. */
#include "es/report.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "es/atomic_file.h"
#include "es/hex.h"

#define PATH_CAP      4096
#define PORT_NAME_MAX 96 /* sanitised port part of a file name; keeps names well under 255 */

static const char *const result_names[] = {
    [REPORT_PASS] = "pass",
    [REPORT_FAIL] = "fail",
    [REPORT_INTERRUPTED] = "interrupted",
};

const char *report_result_name(enum report_result result)
{
    if ((unsigned)result >= sizeof(result_names) / sizeof(result_names[0]))
        return "unknown";
    return result_names[result];
}

int report_result_from_string(const char *s, enum report_result *out, struct es_err *err)
{
    for (size_t i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++) {
        if (s != NULL && strcmp(s, result_names[i]) == 0) {
            *out = (enum report_result)i;
            return 0;
        }
    }
    return es_fail(err, ES_INVALID_ARG, "result '%s' is not one of pass, fail, interrupted",
                   s ? s : "(null)");
}

const char *report_loader_name(enum report_loader loader)
{
    switch (loader) {
    case REPORT_LOADER_NONE: return NULL;
    case REPORT_LOADER_ROM: return "rom";
    case REPORT_LOADER_STUB: return "stub";
    }
    return NULL;
}

int64_t report_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Splits unix_ms into broken-down UTC time and milliseconds, rounding towards the past. */
static void utc_split(int64_t unix_ms, struct tm *tm, int *ms)
{
    int64_t secs = unix_ms / 1000;
    int64_t rem = unix_ms % 1000;
    time_t t;

    if (rem < 0) {
        rem += 1000;
        secs--;
    }
    t = (time_t)secs;
    if (gmtime_r(&t, tm) == NULL)
        memset(tm, 0, sizeof(*tm));
    *ms = (int)rem;
}

void report_format_utc(int64_t unix_ms, char out[REPORT_UTC_LEN])
{
    struct tm tm;
    int ms;
    /* The fixed width below fits REPORT_UTC_LEN for years 0-9999; clamp so it always does. */
    char buf[64];

    utc_split(unix_ms, &tm, &ms);
    if (tm.tm_year > 9999 - 1900)
        tm.tm_year = 9999 - 1900;
    if (tm.tm_year < -1900)
        tm.tm_year = -1900;
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    memcpy(out, buf, REPORT_UTC_LEN - 1);
    out[REPORT_UTC_LEN - 1] = '\0';
}

/* --- JSON helpers: each returns a new reference, NULL only when out of memory. --- */

/* A string, or null for NULL. Text that is not valid UTF-8 (a port name or a message quoting
 * bytes from the line) is kept with each non-ASCII byte shown as '?', rather than dropped. */
json_t *report_json_text(const char *s)
{
    json_t *v;
    char *copy;

    if (s == NULL)
        return json_null();
    v = json_string(s);
    if (v != NULL)
        return v;
    copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (char *p = copy; *p != '\0'; p++) {
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    }
    v = json_string(copy);
    free(copy);
    return v;
}

static json_t *jhex(const uint8_t *bytes, size_t n)
{
    char buf[2 * 64 + 1];

    if (n > 64)
        n = 64;
    es_hex(bytes, n, buf);
    return json_string(buf);
}

static json_t *juint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

/* v as lowercase hex with at least width digits, after prefix ("0x" or ""). */
static json_t *jhexnum(const char *prefix, int width, unsigned long v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%s%0*lx", prefix, width, v);
    return json_string(buf);
}

static json_t *jmac(bool valid, const uint8_t mac[6])
{
    char buf[ES_MAC_TEXT_LEN];

    if (!valid)
        return json_null();
    es_format_mac(mac, ':', buf);
    return json_string(buf);
}

json_t *report_json_utc(int64_t unix_ms)
{
    char buf[REPORT_UTC_LEN];

    if (unix_ms == 0)
        return json_null();
    report_format_utc(unix_ms, buf);
    return json_string(buf);
}

static json_t *jduration(int64_t start_ms, int64_t end_ms)
{
    if (start_ms == 0 || end_ms == 0 || end_ms < start_ms)
        return json_null();
    return json_integer((json_int_t)(end_ms - start_ms));
}

/* Sets key to v (stolen). Returns 1 when out of memory (v NULL or the set failed), else 0, so a
 * builder can OR the results and check once. */
static int put(json_t *obj, const char *key, json_t *v)
{
    return json_object_set_new(obj, key, v) != 0;
}

static int append(json_t *arr, json_t *v)
{
    return json_array_append_new(arr, v) != 0;
}

/* --- device report --- */

static json_t *device_error(const struct report_device *d, int *bad)
{
    json_t *e;

    if (d->result == REPORT_PASS)
        return json_null();
    e = json_object();
    if (e == NULL)
        return NULL;
    *bad |= put(e, "phase", report_json_text(d->error_phase));
    *bad |= put(e, "code", json_string(es_code_name(d->error.code)));
    *bad |= put(e, "message", report_json_text(d->error.msg));
    *bad |= put(e, "rom_status",
                d->error.rom_status >= 0 ? json_integer(d->error.rom_status) : json_null());
    return e;
}

static json_t *device_usb(const struct report_device *d, int *bad)
{
    json_t *u;

    if (!d->usb_valid)
        return json_null();
    u = json_object();
    if (u == NULL)
        return NULL;
    *bad |= put(u, "vid", jhexnum("", 4, d->usb_vid));
    *bad |= put(u, "pid", jhexnum("", 4, d->usb_pid));
    *bad |= put(u, "serial", report_json_text(d->usb_serial));
    *bad |= put(u, "location", report_json_text(d->usb_location));
    return u;
}

static json_t *device_chip(const struct report_device *d, int *bad)
{
    json_t *c;

    if (d->chip == NULL)
        return json_null();
    c = json_object();
    if (c == NULL)
        return NULL;
    *bad |= put(c, "name", report_json_text(d->chip));
    *bad |=
        put(c, "revision", d->chip_revision >= 0 ? json_integer(d->chip_revision) : json_null());
    return c;
}

/* Flash id as esptool shows it (protocol doc §7.5): manufacturer = low byte, device = memory
 * type << 8 | capacity. */
static json_t *device_flash(const struct report_device *d, int *bad)
{
    json_t *f = json_object();
    uint32_t id = d->flash_id;

    if (f == NULL)
        return NULL;
    if (d->flash_id_valid) {
        *bad |= put(f, "id", jhexnum("0x", 6, id & 0xffffffu));
        *bad |= put(f, "manufacturer", jhexnum("", 2, id & 0xffu));
        *bad |= put(f, "device", jhexnum("", 4, ((id >> 8) & 0xffu) << 8 | ((id >> 16) & 0xffu)));
    } else {
        *bad |= put(f, "id", json_null());
        *bad |= put(f, "manufacturer", json_null());
        *bad |= put(f, "device", json_null());
    }
    *bad |= put(f, "size", d->flash_size_bytes ? juint(d->flash_size_bytes) : json_null());
    return f;
}

static json_t *device_image(const struct report_image *im, int *bad)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    *bad |= put(o, "offset", juint(im->offset));
    *bad |= put(o, "offset_hex", jhexnum("0x", 1, im->offset));
    *bad |= put(o, "file", report_json_text(im->file));
    *bad |= put(o, "size", juint(im->size_bytes));
    *bad |= put(o, "sha256", jhex(im->sha256, sizeof(im->sha256)));
    *bad |= put(o, "md5_sent",
                im->md5_sent_valid ? jhex(im->md5_sent, sizeof(im->md5_sent)) : json_null());
    *bad |= put(o, "md5_read",
                im->md5_read_valid ? jhex(im->md5_read, sizeof(im->md5_read)) : json_null());
    *bad |= put(o, "written_bytes", juint(im->written_bytes));
    *bad |= put(o, "verified", json_boolean(im->verified));
    return o;
}

static json_t *device_timings(const struct report_device *d, int *bad)
{
    json_t *t = json_object();

    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < d->n_timings; i++) {
        const char *phase = d->timings[i].phase ? d->timings[i].phase : "unknown";
        json_t *old = json_object_get(t, phase);
        uint64_t ms = d->timings[i].ms;

        /* A phase entered twice (a retried sync) is summed; the key keeps its first position. */
        if (old != NULL)
            ms += (uint64_t)json_integer_value(old);
        *bad |= put(t, phase, juint(ms));
    }
    return t;
}

static json_t *profile_obj(const char *name, bool hash_valid, const uint8_t sha256[32], int *bad)
{
    json_t *p;

    if (name == NULL && !hash_valid)
        return json_null();
    p = json_object();
    if (p == NULL)
        return NULL;
    *bad |= put(p, "name", report_json_text(name));
    *bad |= put(p, "sha256", hash_valid ? jhex(sha256, 32) : json_null());
    return p;
}

/* "boot": null when no boot check ran. */
static json_t *device_boot(const struct report_device *d, int *bad)
{
    const struct report_boot *b = &d->boot;
    json_t *o, *matched;

    if (!b->ran)
        return json_null();
    o = json_object();
    if (o == NULL)
        return NULL;
    *bad |= put(o, "baud", juint(b->baud));
    *bad |= put(o, "log", json_string(b->log != NULL ? b->log : ""));
    *bad |= put(o, "passed", json_boolean(b->passed));
    matched = json_array();
    *bad |= put(o, "matched", matched);
    for (size_t i = 0; matched != NULL && i < b->n_matched; i++)
        *bad |= append(matched, report_json_text(b->matched[i]));
    *bad |= put(o, "ms", juint(b->ms));
    return o;
}

static json_t *device_fleet_dup(const struct report_device *d, int *bad)
{
    const struct report_fleet_dup *f = d->fleet_duplicate;
    json_t *o;

    if (f == NULL)
        return json_null();
    o = json_object();
    if (o == NULL)
        return NULL;
    *bad |= put(o, "station", report_json_text(f->station));
    *bad |= put(o, "run_id", report_json_text(f->run_id));
    *bad |= put(o, "slot", report_json_text(f->slot));
    *bad |= put(o, "at", report_json_text(f->at));
    return o;
}

static json_t *device_json(const struct report_device *d)
{
    json_t *root = json_object(), *images, *wire, *retries;
    int bad = 0;

    if (root == NULL)
        return NULL;
    bad |= put(root, "$schema", json_string(REPORT_DEVICE_SCHEMA_ID));
    bad |= put(root, "schema", json_integer(REPORT_SCHEMA));
    bad |= put(root, "result", json_string(report_result_name(d->result)));
    bad |= put(root, "error", device_error(d, &bad));
    bad |= put(root, "slot", json_integer(d->slot));
    bad |= put(root, "port", report_json_text(d->port));
    bad |= put(root, "usb", device_usb(d, &bad));
    bad |= put(root, "chip", device_chip(d, &bad));
    bad |= put(root, "mac", jmac(d->mac_valid, d->mac));
    {
        json_t *dups = json_array();

        bad |= put(root, "duplicate_mac_slots", dups);
        for (size_t i = 0; dups != NULL && i < d->n_duplicate_slots; i++)
            bad |= append(dups, json_integer(d->duplicate_slots[i]));
    }
    bad |= put(root, "fleet_duplicate", device_fleet_dup(d, &bad));
    bad |= put(root, "flash", device_flash(d, &bad));

    images = json_array();
    bad |= put(root, "images", images);
    for (size_t i = 0; images != NULL && i < d->n_images; i++)
        bad |= append(images, device_image(&d->images[i], &bad));
    bad |= put(root, "boot", device_boot(d, &bad));

    bad |= put(root, "timings_ms", device_timings(d, &bad));
    wire = json_object();
    if (wire != NULL) {
        bad |= put(wire, "tx_bytes", juint(d->tx_bytes));
        bad |= put(wire, "rx_bytes", juint(d->rx_bytes));
        bad |= put(wire, "write_tx_bytes", juint(d->write_tx_bytes));
    }
    bad |= put(root, "wire", wire);
    retries = json_object();
    if (retries != NULL) {
        bad |= put(retries, "connect", juint(d->connect_retries));
        bad |= put(retries, "baud", juint(d->baud_fallbacks));
        bad |= put(retries, "block", juint(d->block_retries));
    }
    bad |= put(root, "retries", retries);
    bad |= put(root, "loader", report_json_text(report_loader_name(d->loader)));
    bad |= put(root, "baud", d->baud ? juint(d->baud) : json_null());
    bad |= put(root, "tool_version",
               report_json_text(d->tool_version ? d->tool_version : ESPSTATION_VERSION));
    bad |= put(root, "profile",
               profile_obj(d->profile_name, d->profile_sha256_valid, d->profile_sha256, &bad));
    bad |= put(root, "start", report_json_utc(d->start_ms));
    bad |= put(root, "end", report_json_utc(d->end_ms));
    bad |= put(root, "duration_ms", jduration(d->start_ms, d->end_ms));
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Port name to a file-name part: runs of anything but [A-Za-z0-9._] become one '-', and dashes at
 * either end go. "/dev/ttyUSB3" -> "dev-ttyUSB3", "socket://127.0.0.1:5555" ->
 * "socket-127.0.0.1-5555", "COM3" -> "COM3". Leading dots are dropped too (no hidden files). */
static void sanitise_port(const char *port, char *out, size_t cap)
{
    size_t n = 0;
    int dash = 0;

    for (const char *p = port ? port : ""; *p != '\0' && n + 1 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || (c == '.' && n > 0);

        if (keep) {
            if (dash && n > 0 && n + 2 < cap)
                out[n++] = '-';
            dash = 0;
            out[n++] = (char)c;
        } else {
            dash = 1;
        }
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "unknown");
}

/* The stem of the file name, without ".json". */
static int device_stem(const struct report_device *d, char *out, size_t cap, struct es_err *err)
{
    int n;

    if (d->mac_valid) {
        char mac[ES_MAC_TEXT_LEN];

        es_format_mac(d->mac, '-', mac);
        n = snprintf(out, cap, "%s", mac);
    } else {
        char port[PORT_NAME_MAX + 1];

        sanitise_port(d->port, port, sizeof(port));
        n = snprintf(out, cap, "port-%s", port);
    }
    if (n < 0 || (size_t)n >= cap)
        return es_fail(err, ES_INVALID_ARG, "device report name does not fit %zu bytes", cap);
    return 0;
}

int report_device_file_name(const struct report_device *d, char *out, size_t cap,
                            struct es_err *err)
{
    char stem[PORT_NAME_MAX + 16];
    int rc = device_stem(d, stem, sizeof(stem), err);
    int n;

    if (rc < 0)
        return rc;
    n = snprintf(out, cap, "%s.json", stem);
    if (n < 0 || (size_t)n >= cap)
        return es_fail(err, ES_INVALID_ARG, "device report name %s.json does not fit %zu bytes",
                       stem, cap);
    return 0;
}

/* Picks stem.json, or stem-2.json, stem-3.json, ... : the first name not present in run_dir. */
static int free_name(const char *run_dir, const char *stem, char *name, size_t cap,
                     struct es_err *err)
{
    char path[PATH_CAP];
    struct stat st;

    for (unsigned i = 1; i < 1000; i++) {
        int n = i == 1 ? snprintf(name, cap, "%s.json", stem)
                       : snprintf(name, cap, "%s-%u.json", stem, i);

        if (n < 0 || (size_t)n >= cap)
            return es_fail(err, ES_INVALID_ARG, "device report name %s.json does not fit %zu bytes",
                           stem, cap);
        n = snprintf(path, sizeof(path), "%s/%s", run_dir, name);
        if (n < 0 || (size_t)n >= sizeof(path))
            return es_fail(err, ES_REPORT, "path %s/%s is too long", run_dir, name);
        if (stat(path, &st) < 0) {
            if (errno == ENOENT)
                return 0;
            return es_fail(err, ES_REPORT, "stat %s: %s", path, strerror(errno));
        }
    }
    return es_fail(err, ES_REPORT, "%s/%s.json: 999 reports for one board in one run", run_dir,
                   stem);
}

json_t *report_device_to_json(const struct report_device *d)
{
    return device_json(d);
}

/* Serialises root as pretty JSON with a final newline and writes it atomically. */
static int write_json(const char *run_dir, const char *name, json_t *root, struct es_err *err)
{
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t len;
    int rc;

    if (text == NULL)
        return es_fail(err, ES_NOMEM, "%s/%s: out of memory while formatting JSON", run_dir, name);
    len = strlen(text);
    text[len] = '\n'; /* the NUL becomes the final newline; we pass the length explicitly */
    rc = es_atomic_write(run_dir, name, text, len + 1, err);
    free(text);
    return rc;
}

int report_write_device(const char *run_dir, const struct report_device *d, char *written_name,
                        size_t cap, struct es_err *err)
{
    char stem[PORT_NAME_MAX + 16], name[PORT_NAME_MAX + 32];
    json_t *root;
    int rc;

    rc = device_stem(d, stem, sizeof(stem), err);
    if (rc < 0)
        return rc;
    rc = free_name(run_dir, stem, name, sizeof(name), err);
    if (rc < 0)
        return rc;
    if (strlen(name) >= cap)
        return es_fail(err, ES_INVALID_ARG, "device report name %s does not fit %zu bytes", name,
                       cap);
    root = device_json(d);
    if (root == NULL)
        return es_fail(err, ES_NOMEM, "%s/%s: out of memory while building the report", run_dir,
                       name);
    rc = write_json(run_dir, name, root, err);
    json_decref(root);
    if (rc < 0)
        return rc;
    memcpy(written_name, name, strlen(name) + 1);
    return 0;
}

int report_rewrite_device(const char *run_dir, const char *name, const struct report_device *d,
                          struct es_err *err)
{
    json_t *root = device_json(d);
    int rc;

    if (root == NULL)
        return es_fail(err, ES_NOMEM, "%s/%s: out of memory while building the report", run_dir,
                       name);
    rc = write_json(run_dir, name, root, err);
    json_decref(root);
    return rc;
}

/* --- run summary --- */

static json_t *run_slot(const struct report_run_slot *s, int *bad)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    *bad |= put(o, "slot", json_integer(s->slot));
    *bad |= put(o, "port", report_json_text(s->port));
    *bad |= put(o, "mac", jmac(s->mac_valid, s->mac));
    *bad |= put(o, "result", json_string(report_result_name(s->result)));
    *bad |= put(o, "error",
                s->error_code == ES_OK ? json_null() : json_string(es_code_name(s->error_code)));
    *bad |= put(o, "profile", report_json_text(s->profile_name));
    *bad |= put(o, "report_file", report_json_text(s->report_file));
    *bad |= put(o, "duplicate_mac", json_boolean(s->duplicate_mac));
    return o;
}

static json_t *run_json(const struct report_run *r)
{
    json_t *root = json_object(), *profiles, *counts, *slots;
    unsigned long passed = 0, failed = 0, interrupted = 0;
    char host[256];
    const char *station = r->station, *op = r->operator_name;
    int bad = 0;

    if (root == NULL)
        return NULL;
    if (station == NULL && gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        station = host;
    }
    if (op == NULL)
        op = getenv("USER");
    if (op == NULL || op[0] == '\0')
        op = getenv("LOGNAME");
    if (op != NULL && op[0] == '\0')
        op = NULL;
    for (size_t i = 0; i < r->n_slots; i++) {
        switch (r->slots[i].result) {
        case REPORT_PASS: passed++; break;
        case REPORT_FAIL: failed++; break;
        case REPORT_INTERRUPTED: interrupted++; break;
        }
    }

    bad |= put(root, "$schema", json_string(REPORT_RUN_SCHEMA_ID));
    bad |= put(root, "schema", json_integer(REPORT_SCHEMA));
    bad |= put(root, "tool_version",
               report_json_text(r->tool_version ? r->tool_version : ESPSTATION_VERSION));
    bad |= put(root, "station", report_json_text(station));
    bad |= put(root, "operator", report_json_text(op));
    bad |= put(root, "start", report_json_utc(r->start_ms));
    bad |= put(root, "end", report_json_utc(r->end_ms));
    bad |= put(root, "duration_ms", jduration(r->start_ms, r->end_ms));
    profiles = json_array();
    bad |= put(root, "profiles", profiles);
    for (size_t i = 0; profiles != NULL && i < r->n_profiles; i++)
        bad |=
            append(profiles, profile_obj(r->profiles[i].name, true, r->profiles[i].sha256, &bad));
    counts = json_object();
    if (counts != NULL && r->counts != NULL) {
        bad |= put(counts, "total", juint(r->counts->total));
        bad |= put(counts, "passed", juint(r->counts->passed));
        bad |= put(counts, "failed", juint(r->counts->failed));
        bad |= put(counts, "interrupted", juint(r->counts->interrupted));
    } else if (counts != NULL) {
        bad |= put(counts, "total", juint(r->n_slots));
        bad |= put(counts, "passed", juint(passed));
        bad |= put(counts, "failed", juint(failed));
        bad |= put(counts, "interrupted", juint(interrupted));
    }
    bad |= put(root, "counts", counts);
    if (r->counts != NULL)
        bad |= put(root, "slots_omitted",
                   juint(r->counts->total > r->n_slots ? r->counts->total - r->n_slots : 0));
    slots = json_array();
    bad |= put(root, "slots", slots);
    for (size_t i = 0; slots != NULL && i < r->n_slots; i++)
        bad |= append(slots, run_slot(&r->slots[i], &bad));
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int report_write_run(const char *run_dir, const struct report_run *r, struct es_err *err)
{
    json_t *root = run_json(r);
    int rc;

    if (root == NULL)
        return es_fail(err, ES_NOMEM, "%s/%s: out of memory while building the run summary",
                       run_dir, REPORT_RUN_FILE);
    rc = write_json(run_dir, REPORT_RUN_FILE, root, err);
    json_decref(root);
    return rc;
}
