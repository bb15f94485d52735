/* The boot check (phase "boot"): after the hard reset into the new firmware, the session listens
 * at the profile's boot_check.baud, keeps what the board prints, looks for each expect pattern in
 * order, then sends `send` and waits for `reply`. One timer covers the whole phase. The bytes are
 * console text, not SLIP frames: session.c hands them here while the state is ST_BOOT. */
#include "session_internal.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text is kept in a buffer of twice the report's share: when it fills, its newer half moves
 * to the front, so appending costs O(1) per byte and the newest REPORT_BOOT_LOG_MAX bytes are
 * always there for the report. */
#define BOOT_BUF_BYTES (2 * REPORT_BOOT_LOG_MAX)
/* Text already searched without a match is searched again as more arrives (a line may come in
 * several reads), but only its last BOOT_MATCH_SPAN bytes: a board printing noise for seconds
 * must not make every read rescan kilobytes. One match must fit in this span. */
#define BOOT_MATCH_SPAN 1024
#define BOOT_DRAIN_MS   10  /* checks that `send` has left, when no reply is awaited */
#define BOOT_EXCERPT    240 /* bytes of the log in a failure message */

enum boot_step { BOOT_EXPECT, BOOT_REPLY, BOOT_DRAIN };

static uint64_t boot_elapsed_ms(const struct session *s)
{
    return (uv_hrtime() - s->boot_start_ns) / 1000000u;
}

/* ESP8266 ROM text at 74880 read at 115200 is noise, and a UART glitch can be anything: only
 * printable ASCII, newlines and tabs are shown to a person. \r goes too (lines end in \r\n). */
static int shown(unsigned char c)
{
    return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t';
}

/* The end of the log for a one-line message: printable text, a newline written as \n, into out
 * (room for BOOT_EXCERPT + 1). Returns its length; *cut says whether older text was left out. */
static size_t excerpt_of(const struct session *s, char *out, int *cut)
{
    size_t i = s->boot_len, k = BOOT_EXCERPT, kept;

    out[k] = '\0';
    while (i > 0 && k > 0) {
        unsigned char c = (unsigned char)s->boot_text[--i];

        if (c == '\n' && k >= 2) {
            out[--k] = 'n';
            out[--k] = '\\';
        } else if (c == '\n') {
            break;
        } else if (shown(c)) {
            out[--k] = c == '\t' ? ' ' : (char)c;
        }
    }
    kept = BOOT_EXCERPT - k;
    *cut = i > 0 || s->boot_dropped;
    memmove(out, out + k, kept + 1);
    return kept;
}

/* The newest max_bytes of the text, printable only, into out (room for max_bytes + 1). */
static size_t printable_tail(const struct session *s, size_t max_bytes, char *out)
{
    size_t from = s->boot_len > max_bytes ? s->boot_len - max_bytes : 0, k = 0;

    for (size_t i = from; i < s->boot_len; i++)
        if (shown((unsigned char)s->boot_text[i]))
            out[k++] = s->boot_text[i];
    out[k] = '\0';
    return k;
}

static void boot_pass(struct session *s)
{
    s->boot_passed = 1;
    session_note(s, "boot", "boot check passed in %llu ms", (unsigned long long)boot_elapsed_ms(s));
    session_finish(s, REPORT_PASS);
}

/* Looks for re in the text from the cursor; on a match the cursor moves past it. */
static int boot_find(struct session *s, const regex_t *re, const char *pattern)
{
    regmatch_t m[1];
    int flags = 0;

    if (s->boot_cursor > 0 ? s->boot_text[s->boot_cursor - 1] != '\n' : s->boot_dropped)
        flags |= REG_NOTBOL; /* the cursor is inside a line: ^ must not match there */
    if (regexec(re, s->boot_text + s->boot_cursor, 1, m, flags) != 0) {
        if (s->boot_len > s->boot_cursor + BOOT_MATCH_SPAN)
            s->boot_cursor = s->boot_len - BOOT_MATCH_SPAN;
        return 0;
    }
    s->boot_cursor += (size_t)m[0].rm_eo;
    if (s->n_boot_matched < sizeof(s->boot_matched) / sizeof(s->boot_matched[0]))
        s->boot_matched[s->n_boot_matched++] = pattern;
    session_note(s, "boot", "seen /%s/ after %llu ms", pattern,
                 (unsigned long long)boot_elapsed_ms(s));
    return 1;
}

/* Runs the check as far as the text allows: each expect pattern in order, then the exchange. */
static void boot_match(struct session *s)
{
    const struct profile_boot_check *bc = s->profile->boot_check;
    struct es_err err;

    if (s->step == BOOT_EXPECT) {
        while (s->boot_seen < bc->n_expect &&
               boot_find(s, &bc->expect_re[s->boot_seen], bc->expect[s->boot_seen]))
            s->boot_seen++;
        if (s->boot_seen < bc->n_expect)
            return;
        if (bc->send == NULL) {
            boot_pass(s);
            return;
        }
        /* The reply is looked for only in what comes after the last pattern seen. */
        if (port_write(s->port, (const uint8_t *)bc->send, bc->send_len, &err) < 0) {
            session_fail_err(s, &err);
            return;
        }
        s->rep.tx_bytes += bc->send_len;
        if (bc->reply == NULL) {
            s->step = BOOT_DRAIN; /* closing the port would drop what is still queued */
            arm_timer(s, BOOT_DRAIN_MS);
            return;
        }
        s->step = BOOT_REPLY;
    }
    if (s->step == BOOT_REPLY && boot_find(s, &bc->reply_re, bc->reply))
        boot_pass(s);
}

void enter_boot(struct session *s)
{
    const struct profile_boot_check *bc = s->profile->boot_check;

    if (s->boot_text == NULL) {
        s->boot_text = malloc(BOOT_BUF_BYTES + 1);
        if (s->boot_text == NULL) {
            session_fail(s, ES_NOMEM, "out of memory for the boot log");
            return;
        }
    }
    s->boot_text[0] = '\0';
    s->boot_len = s->boot_cursor = s->boot_seen = s->n_boot_matched = 0;
    s->boot_dropped = s->boot_passed = 0;
    s->boot_start_ns = uv_hrtime();
    s->boot_deadline_ns = s->boot_start_ns + session_scaled(s, bc->timeout_ms) * 1000000u;
    s->step = BOOT_EXPECT;
    /* After the log exists: a session stopped from on_phase still reports the check it began. */
    if (set_phase(s, SESSION_PHASE_BOOT) < 0)
        return;
    /* The port is at the firmware's console rate already (enter_run_reset set it before EN
     * rose), which need not be the loader's: an ESP8266's ROM prints at 74880, MicroPython at
     * 115200. What comes at another rate arrives as noise: its non-printable bytes are left
     * out of the log shown, but the search sees all of it. */
    arm_timer(s, session_scaled(s, bc->timeout_ms));
    if (bc->n_expect == 0)
        boot_match(s); /* nothing to wait for before send */
}

void boot_data(struct session *s, const uint8_t *data, size_t n)
{
    if (s->finishing || s->step == BOOT_DRAIN)
        return;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == 0)
            continue; /* regexec reads a C string: a NUL from the line would end it */
        if (s->boot_len == BOOT_BUF_BYTES) {
            size_t drop = BOOT_BUF_BYTES - REPORT_BOOT_LOG_MAX;

            memmove(s->boot_text, s->boot_text + drop, REPORT_BOOT_LOG_MAX);
            s->boot_len -= drop;
            s->boot_cursor = s->boot_cursor > drop ? s->boot_cursor - drop : 0;
            s->boot_dropped = 1;
        }
        s->boot_text[s->boot_len++] = (char)data[i];
    }
    s->boot_text[s->boot_len] = '\0';
    boot_match(s);
}

void boot_timeout(struct session *s)
{
    const struct profile_boot_check *bc = s->profile->boot_check;
    char excerpt[BOOT_EXCERPT + 1], want[320];
    size_t k;
    int cut;

    if (s->step == BOOT_DRAIN) {
        if (port_write_queued(s->port) == 0) {
            boot_pass(s);
            return;
        }
        if (uv_hrtime() < s->boot_deadline_ns) {
            arm_timer(s, BOOT_DRAIN_MS);
            return;
        }
        session_fail(s, ES_BOOT_CHECK,
                     "boot_check.send did not leave the port within %llu ms; check the cable",
                     (unsigned long long)session_scaled(s, bc->timeout_ms));
        return;
    }
    if (s->step == BOOT_REPLY)
        snprintf(want, sizeof(want), "reply /%s/ to what was sent", bc->reply);
    else
        snprintf(want, sizeof(want), "expect[%zu] /%s/", s->boot_seen, bc->expect[s->boot_seen]);
    k = excerpt_of(s, excerpt, &cut);
    if (k == 0)
        session_fail(s, ES_BOOT_CHECK,
                     "%s not seen within %llu ms at %u baud: the board printed nothing readable "
                     "(%zu bytes); check boot_check.baud and that the firmware starts",
                     want, (unsigned long long)session_scaled(s, bc->timeout_ms),
                     (unsigned)bc->baud, s->boot_len);
    else
        session_fail(s, ES_BOOT_CHECK,
                     "%s not seen within %llu ms at %u baud (%zu of %zu patterns seen); the "
                     "board printed: \"%s%s\"",
                     want, (unsigned long long)session_scaled(s, bc->timeout_ms),
                     (unsigned)bc->baud, s->boot_seen, bc->n_expect, cut ? "[...]" : "", excerpt);
}

void boot_account(struct session *s)
{
    struct report_boot *rb = &s->rep.boot;
    size_t k;

    if (s->boot_text == NULL || s->profile == NULL || s->profile->boot_check == NULL)
        return; /* no boot check ran: "boot": null */
    free(s->boot_log);
    s->boot_log = malloc(REPORT_BOOT_LOG_MAX + 6);
    if (s->boot_log != NULL) {
        int older = s->boot_dropped || s->boot_len > REPORT_BOOT_LOG_MAX;

        strcpy(s->boot_log, older ? "[...]" : "");
        k = strlen(s->boot_log);
        printable_tail(s, REPORT_BOOT_LOG_MAX, s->boot_log + k);
    }
    rb->ran = true;
    rb->baud = s->profile->boot_check->baud;
    rb->log = s->boot_log;
    rb->passed = s->boot_passed != 0;
    rb->matched = s->boot_matched;
    rb->n_matched = s->n_boot_matched;
    rb->ms = boot_elapsed_ms(s);
}
