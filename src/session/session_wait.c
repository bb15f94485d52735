/* A board that does not answer SYNC. What it sends instead says why, and what the operator must
 * do: the ROM's boot log, its firmware's output, or bytes at another rate. With
 * session_config.wait_for_download (continuous mode, boards without auto-reset) the session
 * never gives up on such a board: it keeps asking at a low duty cycle until the board answers,
 * the port fails or the station stops. The reset and the SYNC rounds are session_connect.c. */
#include "session_internal.h"

#include <stdio.h>
#include <string.h>

/* The ROM's boot log (protocol doc §13.3, §1.1):
 *   ESP32 family, at 115200: "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"; the boot
 *     field names DOWNLOAD(...) when GPIO0 was held low, and then "waiting for download" follows.
 *   ESP8266, at 74880 (115200 with a 40 MHz crystal): "ets Jan  8 2013,rst cause:2, boot
 *     mode:(3,7)", where the first number is 1 for UART download and 3 for flash boot.
 * At 115200 the ESP8266's 74880 text is noise: bytes that are neither text nor SLIP replies.
 * The session does not switch to 74880 to read it: the log comes once per reset, a board
 * without auto-reset is reset only by the operator, so a listen at 74880 would have to cover
 * all the time the session should be sending SYNCs at 115200. The noise, with no SYNC reply,
 * says enough: an ESP8266 reset into download mode prints the same kind of noise, but then
 * answers; one that sends noise and never answers runs its firmware. */
static void seen_line_done(struct session *s)
{
    const char *line = s->wait_line, *p;
    enum wait_seen seen = WAIT_SEEN_NOTHING;
    size_t visible = 0;

    s->wait_line[s->wait_line_len] = '\0';
    s->wait_line_len = 0;
    if (strstr(line, "waiting for download") != NULL) {
        seen = WAIT_SEEN_DOWNLOAD;
    } else if ((p = strstr(line, "boot:0x")) != NULL) {
        seen = strstr(p, "DOWNLOAD") != NULL ? WAIT_SEEN_DOWNLOAD : WAIT_SEEN_FLASH_BOOT;
    } else if ((p = strstr(line, "boot mode:(")) != NULL) {
        seen = p[11] == '1' ? WAIT_SEEN_DOWNLOAD : WAIT_SEEN_FLASH_BOOT;
    } else {
        for (p = line; *p != '\0'; p++)
            visible += *p != ' ' && *p != '\t';
        /* A line of text is an application talking, unless the ROM already said more. */
        if (visible >= 3 && s->wait_seen < WAIT_SEEN_TEXT)
            s->wait_seen = WAIT_SEEN_TEXT;
        return;
    }
    s->wait_seen = seen;
    snprintf(s->wait_rom_line, sizeof(s->wait_rom_line), "%s", line);
}

void wait_text_feed(struct session *s, const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = data[i];

        if (c == '\n' || c == '\r') {
            if (s->wait_line_len > 0)
                seen_line_done(s);
        } else if ((c >= 0x20 && c < 0x7f) || c == '\t') {
            if (s->wait_line_len + 1 < sizeof(s->wait_line))
                s->wait_line[s->wait_line_len++] = (char)c;
        } else {
            s->wait_line_len = 0; /* a line broken by noise is not read */
            if (s->wait_noise < WAIT_NOISE_BYTES)
                s->wait_noise++;
            else if (s->wait_seen == WAIT_SEEN_NOTHING)
                s->wait_seen = WAIT_SEEN_NOISE;
        }
    }
}

/* What the board sent, and what to do, in one sentence; "" when nothing was seen. */
static void seen_hint(const struct session *s, char *out, size_t cap)
{
    const char *press = "it is not in download mode; hold BOOT and tap EN/RST";

    switch (s->wait_seen) {
    case WAIT_SEEN_NOTHING: out[0] = '\0'; return;
    case WAIT_SEEN_NOISE:
        snprintf(out, cap,
                 "the board sends bytes that are not SYNC replies (an ESP8266's boot log at "
                 "74880 baud, or firmware output at another rate): it is probably not in download "
                 "mode; hold BOOT and tap EN/RST (if it then still does not answer, check the "
                 "wire from the adapter's TX to the board's RX)");
        return;
    case WAIT_SEEN_TEXT:
        snprintf(out, cap, "the board prints text, its firmware is running: %s", press);
        return;
    case WAIT_SEEN_FLASH_BOOT:
        snprintf(out, cap, "the board printed its boot log (\"%s\"): it booted from flash, %s",
                 s->wait_rom_line, press);
        return;
    case WAIT_SEEN_DOWNLOAD:
        snprintf(out, cap,
                 "the board's ROM says it waits for download (\"%s\"), but no SYNC reply came: "
                 "check the wire from the adapter's TX to the board's RX",
                 s->wait_rom_line);
        return;
    }
}

const char *wait_seen_reason(const struct session *s)
{
    static char reason[SESSION_HINT_CAP + 2];

    seen_hint(s, reason + 2, sizeof(reason) - 2);
    if (reason[2] == '\0')
        return "";
    reason[0] = ';';
    reason[1] = ' ';
    return reason;
}

/* Tells the operator once what the board printed, and again only if that changes. What it
 * printed must be the same at two round ends in a row: a board that the operator is putting in
 * download mode prints "waiting for download" just before it answers, and a boot log read
 * halfway names the app before the ROM line comes. */
static void wait_hint(struct session *s)
{
    char hint[SESSION_HINT_CAP];
    enum wait_seen before = s->wait_seen_round;

    s->wait_seen_round = s->wait_seen;
    if (s->wait_seen != before)
        return;
    seen_hint(s, hint, sizeof(hint));
    if (hint[0] == '\0' || strcmp(hint, s->hint) == 0)
        return;
    memcpy(s->hint, hint, sizeof(hint));
    session_note(s, "hint", "%s", hint);
}

void wait_start(struct session *s)
{
    s->wait_active = 1;
    s->wait_start_ms = uv_now(s->loop);
    s->wait_reset_ms = s->wait_start_ms;
    session_note(s, "wait",
                 "no reply to SYNC: waiting for the board to enter download mode (a SYNC every %d "
                 "ms, a reset every %d s)",
                 WAIT_SYNC_EVERY_MS, WAIT_RESET_EVERY_MS / 1000);
    wait_round_over(s);
}

void wait_round_over(struct session *s)
{
    wait_hint(s);
    goto_state(s, ST_WAIT);
}

void enter_wait(struct session *s)
{
    arm_timer(s, session_scaled(s, WAIT_SYNC_EVERY_MS));
}

/* A board with auto-reset is still reset into download mode now and then (it may have been
 * swapped in running its firmware); one without ignores the lines, and its operator's BOOT and
 * EN/RST do the reset. The phase stays "sync": a slot may wait for days, and each phase change
 * is a journal line. */
void wait_next(struct session *s)
{
    const struct profile *p = s->cfg.profiles[0];
    uint64_t now = uv_now(s->loop);

    if (p->reset_before != PROFILE_RESET_BEFORE_NONE && port_can_reset(s->port) &&
        now - s->wait_reset_ms >= session_scaled(s, WAIT_RESET_EVERY_MS)) {
        s->wait_reset_ms = now;
        goto_state(s, ST_RESET);
        return;
    }
    s->sync_try = SYNC_TRIES - 1; /* one SYNC, then sync_timeout ends the round */
    goto_state(s, ST_SYNC);
}

void wait_synced(struct session *s)
{
    s->hint[0] = '\0';
    if (!s->wait_active)
        return;
    session_note(s, "wait", "the board answers after %.1f s of waiting",
                 (double)(uv_now(s->loop) - s->wait_start_ms) / 1000.0);
    s->wait_active = 0;
    /* The board is new to the flow: the profile's connection attempts count from here. */
    s->connect_attempt = 0;
}
