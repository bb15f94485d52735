/* Accounting for one board: time spent in each phase, the error and the phase it came in,
 * the report's closing fields and the live view's snapshot. Everything a session tells the
 * station about itself, apart from the callbacks' events. */
#include "session_internal.h"

#include <stdarg.h>
#include <string.h>

int set_phase(struct session *s, enum session_phase phase)
{
    uint64_t now = uv_hrtime();

    if (phase == s->phase && s->phase_seen[phase])
        return s->finishing ? -1 : 0;
    if (s->phase_seen[s->phase])
        s->phase_ms[s->phase] += (now - s->phase_start_ns) / 1000000u;
    s->phase = phase;
    s->phase_start_ns = now;
    s->phase_seen[phase] = 1;
    if (s->cb.on_phase != NULL)
        s->cb.on_phase(s, phase, s->arg);
    return s->finishing ? -1 : 0;
}

/* ---- Failure and the end of a session ---- */

void fill_error(struct session *s, const struct es_err *err)
{
    s->rep.error = *err;
    s->rep.error_phase = session_phase_name(s->phase);
}

void session_fail_err(struct session *s, const struct es_err *err)
{
    if (s->finishing)
        return;
    fill_error(s, err);
    es_err_prefix(&s->rep.error, "slot %d (%s), %s", s->cfg.slot, s->cfg.port,
                  session_phase_name(s->phase));
    session_finish(s, REPORT_FAIL);
}

void session_fail(struct session *s, enum es_code code, const char *fmt, ...)
{
    struct es_err err;
    va_list ap;

    va_start(ap, fmt);
    es_vfail(&err, code, fmt, ap);
    va_end(ap);
    session_fail_err(s, &err);
}

/* The report's closing fields: the last phase's time, the result, the rate and loader, and the
 * phases in the order they ran (which is their enum order). */
void account_finish(struct session *s, enum report_result result)
{
    (void)set_phase(s, result == REPORT_PASS ? SESSION_PHASE_DONE : s->phase);
    s->phase_ms[s->phase] += (uv_hrtime() - s->phase_start_ns) / 1000000u;
    s->rep.result = result;
    s->rep.end_ms = report_now_ms();
    s->rep.baud = s->baud;
    if (s->synced)
        s->rep.loader = s->loader == ROM_LOADER_STUB ? REPORT_LOADER_STUB : REPORT_LOADER_ROM;
    boot_account(s);
    s->rep.n_timings = 0;
    for (int i = 0; i < SESSION_PHASE_DONE; i++) {
        if (!s->phase_seen[i])
            continue;
        s->timings[s->rep.n_timings].phase = session_phase_name((enum session_phase)i);
        s->timings[s->rep.n_timings].ms = s->phase_ms[i];
        s->rep.n_timings++;
    }
}

void session_snapshot(const struct session *s, struct session_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    out->slot = s->cfg.slot;
    out->port = s->cfg.port;
    out->chip = s->rep.chip;
    if (s->rep.mac_valid)
        chip_format_mac(s->rep.mac, out->mac);
    out->phase = s->phase;
    out->done_bytes = s->done_bytes;
    out->total_bytes = s->total_bytes;
    if (s->phase == SESSION_PHASE_WRITE && s->write_start_ns != 0) {
        double secs = (double)(uv_hrtime() - s->write_start_ns) / 1e9;
        if (secs > 0)
            out->rate_bps = (double)s->done_bytes / secs;
    }
    out->finished = s->finishing;
    out->result = s->rep.result;
    out->error = s->rep.result == REPORT_PASS ? NULL : s->rep.error.msg;
    out->hint = s->hint[0] != '\0' && !s->finishing ? s->hint : NULL;
}
