/* The records a station publishes, built from the plain data the station already has (the
 * device report as written, the run's counts): the only place that knows a record's keys. The
 * database's columns are filled from these keys by the publisher's SQL (publisher.c). */
#include <stdio.h>
#include <string.h>

#include "es/hex.h"
#include "es/publish.h"

void publish_record_key(const char *station, const char *run_id, const char *slot, const char *mac,
                        int64_t start_ms, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s/%s/%lld", station, run_id, slot,
             mac != NULL && mac[0] != '\0' ? mac : "-", (long long)start_ms);
}

json_t *publish_record_board(const struct report_device *d, const char *station, const char *run_id,
                             const char *slot_name, int64_t created_ms)
{
    char mac[ES_MAC_TEXT_LEN] = "", key[1024], sha[65] = "";
    int pass = d->result == REPORT_PASS;
    /* A report always has its end; its start is 0 only for a board that never started, and the
     * schema wants both. */
    int64_t end_ms = d->end_ms != 0 ? d->end_ms : created_ms;
    int64_t start_ms = d->start_ms != 0 ? d->start_ms : end_ms;
    json_t *rec, *report = report_device_to_json(d);

    if (report == NULL)
        return NULL;
    if (d->mac_valid)
        es_format_mac(d->mac, ':', mac);
    if (d->profile_sha256_valid)
        es_hex(d->profile_sha256, 32, sha);
    publish_record_key(station, run_id, slot_name, mac, start_ms, key, sizeof(key));
    rec = json_pack(
        "{ss sI ss ss ss ss so so so so ss so so so so so}", "kind", "board", "created_ms",
        (json_int_t)created_ms, "record_key", key, "station", station, "run_id", run_id, "slot",
        slot_name, "mac", report_json_text(mac[0] ? mac : NULL), "chip", report_json_text(d->chip),
        "profile_name", report_json_text(d->profile_name), "profile_sha256",
        report_json_text(sha[0] ? sha : NULL), "result", report_result_name(d->result), "phase",
        report_json_text(pass ? NULL : d->error_phase), "error_code",
        report_json_text(pass ? NULL : es_code_name(d->error.code)), "started_at",
        report_json_utc(start_ms), "ended_at", report_json_utc(end_ms), "report", report);
    return rec;
}

json_t *publish_record_run(const struct publish_run *r)
{
    json_t *profiles = json_array();

    for (size_t i = 0; profiles != NULL && i < r->n_profiles; i++) {
        char sha[65];

        es_hex(r->profiles[i].sha256, 32, sha);
        json_array_append_new(profiles,
                              json_pack("{ss ss}", "name", r->profiles[i].name, "sha256", sha));
    }
    if (profiles == NULL)
        return NULL;
    return json_pack("{ss sI ss ss so so sI sI sI sI so ss}", "kind", "run", "created_ms",
                     (json_int_t)r->created_ms, "station", r->station, "run_id", r->run_id,
                     "started_at", report_json_utc(r->start_ms), "ended_at",
                     report_json_utc(r->end_ms), "total", (json_int_t)r->total, "passed",
                     (json_int_t)r->passed, "failed", (json_int_t)r->failed, "interrupted",
                     (json_int_t)r->interrupted, "profiles", profiles, "tool_version",
                     ESPSTATION_VERSION);
}
