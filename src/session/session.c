/* The core of the per-board state machine (style.md §5): the struct lives in session_internal.h,
 * and this file holds what every state shares. enter_state() runs a state's entry action,
 * goto_state() is the only place the state changes, on_frame()/on_reply() dispatch the reply to
 * the pending command, on_step_timeout() decides what a silence means, and the life cycle
 * (session_new/start/interrupt/free). The states themselves are in session_connect.c,
 * session_flash.c and session_write.c. Nothing here blocks, prints or exits. */
#include "session_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_step_timeout(uv_timer_t *t);

/* Packets are built into one buffer and SLIP-encoded into another; port_write copies the bytes,
 * and the whole station runs in one thread, so every session can share them. */
uint8_t session_pkt[ROM_HEADER_LEN + ROM_DATA_HEADER_LEN + ROM_STUB_BLOCK + 64];
static uint8_t wire_buf[2 * sizeof(session_pkt) + 2];

static const char *const phase_names[] = {
#define SESSION_PHASE_NAME(name, str) str,
    SESSION_PHASES(SESSION_PHASE_NAME)
#undef SESSION_PHASE_NAME
};

const char *session_phase_name(enum session_phase phase)
{
    if ((unsigned)phase >= SESSION_PHASE_COUNT)
        return "unknown";
    return phase_names[phase];
}

/* ---- Helpers ---- */

uint64_t session_scaled(const struct session *s, uint64_t ms)
{
    double v = (double)ms * s->cfg.timeout_scale;

    return v < 1.0 ? 1 : (uint64_t)v;
}

uint64_t per_mb_timeout(uint64_t bytes, uint64_t ms_per_mb)
{
    uint64_t t = bytes * ms_per_mb / 1000000u;

    return t < CMD_TIMEOUT_MS ? CMD_TIMEOUT_MS : t;
}

void session_note(struct session *s, const char *what, const char *fmt, ...)
{
    char small[512], *text = small;
    va_list ap;
    int n;

    if (s->cb.on_note == NULL)
        return;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    /* A note is read by a person: a long one (a deep path in a retry reason) is never cut. */
    if (n >= (int)sizeof(small) && (text = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    s->cb.on_note(s, what, text != NULL ? text : small, s->arg);
    if (text != small)
        free(text);
}

void arm_timer(struct session *s, uint64_t ms)
{
    if (s->finishing)
        return; /* the timer is closing */
    s->grace = 0;
    uv_timer_start(&s->timer, on_step_timeout, ms, 0);
}

static void hex_note(struct session *s, const char *dir, const uint8_t *b, size_t n)
{
    char text[3 * 48 + 8];
    size_t i, k = 0;

    for (i = 0; i < n && i < 48; i++)
        k += (size_t)snprintf(text + k, sizeof(text) - k, "%02x ", b[i]);
    if (i < n)
        snprintf(text + k, sizeof(text) - k, "...");
    session_note(s, dir, "%zu bytes: %s", n, text);
}

/* SLIP-encodes session_pkt[0..len) and queues it. */
int send_packet(struct session *s, size_t len)
{
    struct es_err err;
    size_t wire;

    if (len == 0) {
        session_fail(s, ES_INVALID_ARG, "could not encode a request (a bug in espstation)");
        return -1;
    }
    wire = slip_encode(session_pkt, len, wire_buf, sizeof(wire_buf));
    if (s->cfg.verbose)
        hex_note(s, "tx", session_pkt, len);
    if (port_write(s->port, wire_buf, wire, &err) < 0) {
        session_fail_err(s, &err);
        return -1;
    }
    s->rep.tx_bytes += wire;
    if (s->phase == SESSION_PHASE_WRITE)
        s->rep.write_tx_bytes += wire;
    return 0;
}

/* Sends a request built in session_pkt and waits timeout_ms for the reply with the same op. */
void send_cmd(struct session *s, size_t len, size_t result_len, uint64_t timeout_ms)
{
    s->pending_op = session_pkt[1];
    s->pending_result_len = result_len;
    s->pending_timeout_ms = timeout_ms;
    s->waiting = 1;
    if (send_packet(s, len) == 0)
        arm_timer(s, session_scaled(s, timeout_ms));
}

/* The loader whose status bytes a reply is read with. Until a SYNC reply has said which loader
 * answers (s->loader is ROM_LOADER_UNKNOWN: before the first SYNC reply and after every reset),
 * a reply is read in the 4-byte ESP32 form: this is the one place that choice is made. Only SYNC
 * replies are awaited then, and those are read by rom_sync_loader, which needs no loader. */
static enum rom_loader reply_loader(const struct session *s)
{
    return s->loader == ROM_LOADER_UNKNOWN ? ROM_LOADER_ESP32 : s->loader;
}

size_t md5_result_len(const struct session *s)
{
    return s->loader == ROM_LOADER_STUB ? MD5_RESULT_STUB : MD5_RESULT_ROM;
}
static void maybe_done(struct session *s)
{
    if (s->open_handles == 0 && s->cb.on_done != NULL)
        s->cb.on_done(s, s->arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct session *s = container_of((uv_timer_t *)h, struct session, timer);

    s->open_handles--;
    maybe_done(s);
}

static void on_port_closed(struct port *p, void *arg)
{
    struct session *s = arg;

    (void)p;
    s->port = NULL;
    s->open_handles--;
    maybe_done(s);
}

void session_finish(struct session *s, enum report_result result)
{
    if (s->finishing)
        return;
    goto_state(s, ST_CLOSING);
    s->finishing = 1;
    account_finish(s, result);
    if (!s->started) {
        /* A session that never started owns no handle to wait for. Its timer is opened only to
         * be closed, so that on_done comes from the loop for every session, as the header
         * promises, and never from inside session_interrupt. */
        uv_timer_init(s->loop, &s->timer);
        s->open_handles = 1;
    }
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    if (s->port != NULL)
        port_close(s->port, on_port_closed);
}

/* Runs the entry action of the current state: used by goto_state and to retry a command. */
void enter_state(struct session *s)
{
    switch (s->state) {
    case ST_IDLE: break;
    case ST_RESET: enter_reset(s); break;
    case ST_SYNC: enter_sync(s); break;
    case ST_SYNC_PAUSE: arm_timer(s, SYNC_PAUSE_MS); break;
    case ST_WAIT: enter_wait(s); break;
    case ST_DETECT: enter_detect(s); break;
    case ST_IDENTIFY: enter_identify(s); break;
    case ST_STUB_BEGIN: enter_stub_begin(s); break;
    case ST_STUB_DATA: enter_stub_data(s); break;
    case ST_STUB_END: enter_stub_end(s); break;
    case ST_ROM_BAUD_CAL: enter_rom_baud_cal(s); break;
    case ST_BAUD: enter_baud(s); break;
    case ST_BAUD_SETTLE: arm_timer(s, BAUD_SETTLE_MS); break;
    case ST_BAUD_PROBE: enter_baud_probe(s); break;
    case ST_ATTACH: enter_attach(s); break;
    case ST_FLASH_ID: enter_flash_id(s); break;
    case ST_SET_PARAMS: enter_set_params(s); break;
    case ST_ERASE: enter_erase(s); break;
    case ST_WRITE_BEGIN: enter_write_begin(s); break;
    case ST_WRITE_DATA: enter_write_data(s); break;
    case ST_WRITE_FLUSH: enter_write_flush(s); break;
    case ST_RESYNC: enter_resync(s); break;
    case ST_VERIFY: enter_verify(s); break;
    case ST_RUN_RESET: enter_run_reset(s); break;
    case ST_BOOT: enter_boot(s); break;
    case ST_CLOSING: break;
    }
}

void goto_state(struct session *s, enum state next)
{
    if (s->finishing)
        return;
    s->state = next;
    s->attempt = 0;
    s->waiting = 0;
    s->step = 0;
    enter_state(s);
}

/* ---- Events ---- */

/* Sends the pending command of the current state again: FLASH_ID resumes at its current
 * register step (its recipe saves and restores registers, so it never starts over). */
static void resend(struct session *s)
{
    s->waiting = 0;
    if (s->state == ST_FLASH_ID)
        rdid_send(s);
    else
        enter_state(s);
}

/* A refusal that means the request was damaged on the line (ROM 01 05 malformed, 01 07
 * checksum; stub 0xC0 length, 0xC1 checksum, 0xC3 invalid command), to a command that changes
 * nothing when it runs twice: sent again, like a lost reply. */
static int resend_refused(struct session *s, const struct rom_reply *r, const struct es_err *why)
{
    int line = s->loader == ROM_LOADER_STUB
                   ? r->error == STUB_ERR_BAD_DATA_LEN || r->error == STUB_ERR_BAD_CHECKSUM ||
                         r->error == STUB_ERR_INVALID_CMD
                   : r->error == ROM_ERR_INVALID_FORMAT || r->error == ROM_ERR_CHECKSUM;

    switch (s->state) {
    case ST_DETECT:
    case ST_IDENTIFY:
    case ST_ROM_BAUD_CAL:
    case ST_BAUD_PROBE:
    case ST_ATTACH:
    case ST_FLASH_ID:
    case ST_SET_PARAMS:
    case ST_WRITE_FLUSH:
    case ST_VERIFY: break;
    default: return -1;
    }
    if (!line || ++s->attempt >= CMD_RETRIES)
        return -1;
    session_note(s, "retry", "%s; try %d of %d", why->msg, s->attempt + 1, CMD_RETRIES);
    resend(s);
    return 0;
}

static void on_reply(struct session *s, const struct rom_reply *r)
{
    struct es_err err;

    if (rom_reply_check(r, reply_loader(s), &err) < 0) {
        es_err_prefix(&err, "%s", rom_op_name(r->op));
        if (resend_refused(s, r, &err) == 0)
            return;
        if (block_resend(s, r, &err) == 0)
            return;
        if ((s->state == ST_WRITE_BEGIN || s->state == ST_WRITE_DATA) && write_retry(s, &err) == 0)
            return;
        if ((s->state == ST_STUB_BEGIN || s->state == ST_STUB_DATA) && stub_retry(s, err.msg) == 0)
            return;
        if (s->state == ST_WRITE_DATA && r->error == ROM_ERR_FLASH_WRITE)
            err.code = ES_FLASH_WRITE;
        session_fail_err(s, &err);
        return;
    }
    switch (s->state) {
    case ST_DETECT: detect_done(s, r); break;
    case ST_IDENTIFY: identify_done(s, r); break;
    case ST_STUB_BEGIN: goto_state(s, ST_STUB_DATA); break;
    case ST_STUB_DATA: stub_data_done(s); break;
    case ST_STUB_END:
        s->step = 1;
        arm_timer(s, session_scaled(s, OHAI_TIMEOUT_MS));
        break;
    case ST_ROM_BAUD_CAL:
        s->rom_cal = r->value;
        s->rom_cal_valid = 1;
        goto_state(s, ST_BAUD);
        break;
    case ST_BAUD: baud_done(s); break;
    case ST_BAUD_PROBE: connect_next(s); break;
    case ST_ATTACH: goto_state(s, ST_FLASH_ID); break;
    case ST_FLASH_ID: flash_id_done(s, r); break;
    case ST_SET_PARAMS: goto_state(s, ST_ERASE); break;
    case ST_ERASE:
        session_note(s, "erased", "whole flash erased");
        s->img = 0;
        goto_state(s, ST_WRITE_BEGIN);
        break;
    case ST_WRITE_BEGIN: goto_state(s, ST_WRITE_DATA); break;
    case ST_WRITE_DATA: write_data_done(s); break;
    case ST_WRITE_FLUSH: image_written(s); break;
    case ST_RESYNC:
        session_note(s, "resync", "the stub answers again (it was inside a broken frame)");
        goto_state(s, ST_WRITE_BEGIN);
        break;
    case ST_VERIFY: verify_done(s, r); break;
    default: break;
    }
}

static void on_frame(void *arg, const uint8_t *frame, size_t len)
{
    struct session *s = arg;
    struct rom_reply r;
    struct es_err err;

    if (s->finishing)
        return;
    if (s->cfg.verbose)
        hex_note(s, "rx", frame, len);
    if (s->state == ST_STUB_END && rom_is_stub_greeting(frame, len)) {
        uv_timer_stop(&s->timer);
        stub_started(s);
        return;
    }
    /* Only the reply to the pending command counts; stray SYNC replies, late replies to an
     * earlier try and noise are dropped (protocol doc §1.3). */
    if ((s->state == ST_SYNC || s->state == ST_SYNC_PAUSE || s->state == ST_WAIT) &&
        len >= ROM_HEADER_LEN && frame[0] == ROM_DIR_REPLY && frame[1] == ROM_OP_SYNC) {
        sync_done(s, frame, len); /* a late reply to an earlier SYNC counts too */
        return;
    }
    if (s->state == ST_RESYNC && s->waiting && len >= ROM_HEADER_LEN && frame[0] == ROM_DIR_REPLY &&
        frame[1] == ROM_OP_READ_REG) {
        s->waiting = 0;
        resync_listening(s);
        return;
    }
    if (!s->waiting || len < ROM_HEADER_LEN || frame[0] != ROM_DIR_REPLY ||
        frame[1] != s->pending_op)
        return;
    if (rom_decode_reply(frame, len, reply_loader(s), s->pending_result_len, &r, &err) < 0)
        return;
    s->waiting = 0;
    uv_timer_stop(&s->timer);
    on_reply(s, &r);
}

static void on_port_data(struct port *p, const uint8_t *data, size_t n, void *arg)
{
    struct session *s = arg;

    (void)p;
    s->rep.rx_bytes += n;
    if (!s->synced)
        wait_text_feed(s, data, n); /* what a board says instead of answering SYNC */
    if (s->state == ST_BOOT) {
        boot_data(s, data, n); /* the firmware's console: text, not frames */
        return;
    }
    slip_decoder_feed(&s->dec, data, n);
}

static void on_port_error(struct port *p, const struct es_err *err, void *arg)
{
    struct session *s = arg;

    (void)p;
    session_fail_err(s, err);
}

static void on_step_timeout(uv_timer_t *t)
{
    struct session *s = container_of(t, struct session, timer);
    struct es_err err;

    if (s->finishing)
        return;
    /* libuv runs due timers before it polls for input: a reply that arrived while the loop was
     * busy elsewhere is still unread. One more turn of the loop reads it before this counts as a
     * timeout (which would send the request again and leave that reply to be taken for the
     * next one's). */
    if ((s->waiting || s->state == ST_STUB_END || s->state == ST_BOOT) && !s->grace) {
        s->grace = 1;
        uv_timer_start(&s->timer, on_step_timeout, 1, 0);
        return;
    }
    s->grace = 0;
    switch (s->state) {
    case ST_RESET: reset_step(s); return;
    case ST_SYNC: sync_timeout(s); return;
    case ST_SYNC_PAUSE: goto_state(s, ST_SYNC); return;
    case ST_WAIT: wait_next(s); return;
    case ST_BAUD_SETTLE: baud_settled(s); return;
    case ST_BAUD_PROBE: baud_fallback(s); return;
    case ST_RUN_RESET: enter_run_reset(s); return;
    case ST_BOOT: boot_timeout(s); return;
    case ST_STUB_END:
        if (s->step == 0) {
            /* The MEM_END reply may be lost when the stub takes over the UART (§3.5). */
            s->step = 1;
            s->waiting = 0;
            arm_timer(s, session_scaled(s, OHAI_TIMEOUT_MS));
            return;
        }
        stub_no_greeting(s);
        return;
    case ST_STUB_BEGIN:
    case ST_STUB_DATA:
        if (stub_retry(s, "no reply") == 0)
            return;
        session_fail(s, ES_STUB,
                     "no reply to %s during the stub upload, %d uploads of the %s "
                     "segment tried",
                     rom_op_name(s->pending_op), STUB_UPLOAD_TRIES,
                     s->stub_seg == 0 ? "text" : "data");
        return;
    case ST_RESYNC:
        if (++s->step < RESYNC_TRIES) {
            enter_resync(s);
            return;
        }
        session_fail(s, ES_TIMEOUT,
                     "the flasher stub stopped answering: no reply to %d SYNCs after a lost block",
                     RESYNC_TRIES);
        return;
    case ST_WRITE_BEGIN:
    case ST_WRITE_DATA:
        es_fail(&err, ES_TIMEOUT, "no reply to %s within %llu ms", rom_op_name(s->pending_op),
                (unsigned long long)session_scaled(s, s->pending_timeout_ms));
        if (write_retry(s, &err) == 0)
            return;
        session_fail_err(s, &err);
        return;
    case ST_DETECT:
    case ST_IDENTIFY:
    case ST_ROM_BAUD_CAL:
    case ST_FLASH_ID: {
        /* What these read names the report and shapes the plan, and a READ_REG reply does not
         * say which request it answers: a late one would be taken for the next read. So the
         * board starts over from reset rather than being asked again (a port without reset
         * lines can only ask again). */
        char why[128];

        snprintf(why, sizeof(why), "no reply to %s", rom_op_name(s->pending_op));
        if (!port_can_reset(s->port))
            break;
        if (session_reconnect(s, why) < 0)
            session_fail(s, ES_TIMEOUT, "%s within %llu ms, and no connection attempt is left", why,
                         (unsigned long long)session_scaled(s, s->pending_timeout_ms));
        return;
    }
    default: break;
    }
    /* Read-only commands may be sent again. */
    if (s->waiting && s->state != ST_ERASE && s->state != ST_BAUD && ++s->attempt < CMD_RETRIES) {
        session_note(s, "retry", "no reply to %s; try %d of %d", rom_op_name(s->pending_op),
                     s->attempt + 1, CMD_RETRIES);
        resend(s);
        return;
    }
    session_fail(s, ES_TIMEOUT, "no reply to %s within %llu ms", rom_op_name(s->pending_op),
                 (unsigned long long)session_scaled(s, s->pending_timeout_ms));
}

/* ---- Life cycle ---- */

int session_new(uv_loop_t *loop, const struct session_config *cfg,
                const struct session_callbacks *cb, void *arg, struct session **out,
                struct es_err *err)
{
    struct session *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL || cfg->n_profiles == 0)
        goto out_nomem;
    s->decbuf = malloc(DECODER_CAP);
    if (s->decbuf == NULL)
        goto out_nomem;
    s->loop = loop;
    s->cfg = *cfg;
    if (s->cfg.timeout_scale <= 0)
        s->cfg.timeout_scale = 1.0;
    if (s->cfg.open_port == NULL)
        s->cfg.open_port = port_open;
    s->cb = *cb;
    s->arg = arg;
    s->baud = cfg->profiles[0]->baud;
    s->loader = ROM_LOADER_UNKNOWN; /* until a SYNC reply says which */
    /* A measurement switch (tools/bench): upload the stub at the profile's rate, as before. */
    s->no_rom_raise =
        getenv("ESPSTATION_ROM_BAUD") != NULL && strcmp(getenv("ESPSTATION_ROM_BAUD"), "keep") == 0;
    slip_decoder_init(&s->dec, s->decbuf, DECODER_CAP, on_frame, NULL, s);
    s->rep.slot = cfg->slot;
    s->rep.port = cfg->port;
    if (cfg->usb != NULL && cfg->usb->usb_vid >= 0) {
        s->rep.usb_valid = true;
        s->rep.usb_vid = (uint16_t)cfg->usb->usb_vid;
        s->rep.usb_pid = (uint16_t)cfg->usb->usb_pid;
        s->rep.usb_serial = cfg->usb->serial;
        s->rep.usb_location = cfg->usb->location;
    }
    s->rep.chip_revision = -1;
    s->rep.error.rom_status = -1;
    s->rep.timings = s->timings;
    s->rep.loader = REPORT_LOADER_NONE;
    *out = s;
    return 0;

out_nomem:
    if (s != NULL)
        free(s->decbuf);
    free(s);
    return es_fail(err, ES_NOMEM, "out of memory creating the session for %s", cfg->port);
}

void session_start(struct session *s)
{
    static const struct port_callbacks port_cb = {on_port_data, on_port_error};
    struct es_err err;

    if (s->finishing)
        return; /* interrupted before it started: on_done is on its way */
    uv_timer_init(s->loop, &s->timer);
    s->open_handles = 1;
    s->started = 1;
    s->rep.start_ms = report_now_ms();
    s->phase_start_ns = uv_hrtime();
    s->phase = SESSION_PHASE_OPEN;
    s->phase_seen[SESSION_PHASE_OPEN] = 1;
    if (s->cb.on_phase != NULL)
        s->cb.on_phase(s, SESSION_PHASE_OPEN, s->arg);
    if (s->finishing)
        return; /* on_phase interrupted it: the timer is closing, on_done follows */
    if (s->cfg.open_port(s->loop, s->cfg.port, s->baud, &port_cb, s, &s->port, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    s->open_handles++;
    goto_state(s, ST_RESET);
}

void session_interrupt(struct session *s)
{
    struct es_err err;

    if (s->finishing)
        return;
    es_fail(&err, ES_INTERRUPTED, "slot %d (%s): the station was stopped during %s", s->cfg.slot,
            s->cfg.port, session_phase_name(s->phase));
    fill_error(s, &err);
    session_finish(s, REPORT_INTERRUPTED);
}

void session_free(struct session *s)
{
    if (s == NULL)
        return;
    free(s->images);
    free(s->decbuf);
    free(s->resume_buf);
    free(s->boot_text);
    free(s->boot_log);
    free(s);
}

const struct report_device *session_report(const struct session *s)
{
    return &s->rep;
}
