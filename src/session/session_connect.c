/* Connecting to a board: the DTR/RTS reset into download mode, SYNC, chip detection, the
 * identity registers (MAC), the flasher stub upload and the change of line rate with its
 * fallback. Each enter_<state>() sends one command; each <state>_done() takes its reply. The
 * flash itself is session_flash.c. */
#include "session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reset into download mode with the UnixTight sequence of protocol doc §5.2, one TIOCMSET (or
 * control-socket line) per step, driven by the timer: (DTR, RTS) = (0,0) (1,1) (0,1) hold
 * (1,0) boot (0,0). Every other connection attempt holds GPIO0 for 550 ms instead of 50 ms. */
struct line_step {
    int dtr, rts;
    int wait_ms; /* -1: the boot delay of this attempt */
};
static const struct line_step download_reset[] = {
    {0, 0, 0}, {1, 1, 0}, {0, 1, RESET_HOLD_MS}, {1, 0, -1}, {0, 0, RESET_DRAIN_MS},
};

void reset_step(struct session *s)
{
    const struct line_step *st;
    struct es_err err;
    int wait;

    if (s->step >= (int)(sizeof(download_reset) / sizeof(download_reset[0]))) {
        port_flush_input(s->port);
        slip_decoder_reset(&s->dec);
        goto_state(s, ST_SYNC);
        return;
    }
    st = &download_reset[s->step++];
    if (port_set_lines(s->port, st->dtr, st->rts, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    wait = st->wait_ms >= 0 ? st->wait_ms
                            : (s->connect_attempt % 2 ? RESET_BOOT_LONG_MS : RESET_BOOT_MS);
    if (wait == 0)
        reset_step(s);
    else
        arm_timer(s, (uint64_t)wait);
}

void enter_reset(struct session *s)
{
    /* Before the chip is known the first profile decides; a mixed bench uses one policy. */
    const struct profile *p = s->cfg.profiles[0];

    /* While waiting for download mode the phase stays "sync" (wait_next). */
    if (!s->wait_active && set_phase(s, SESSION_PHASE_RESET) < 0)
        return;
    s->step = 0;
    s->sync_try = 0;
    if (p->reset_before == PROFILE_RESET_BEFORE_NONE || !port_can_reset(s->port)) {
        if (s->connect_attempt == 0 && p->reset_before != PROFILE_RESET_BEFORE_NONE)
            session_note(s, "reset",
                         "port has no modem lines: not reset, SYNC only (protocol doc §5.4)");
        port_flush_input(s->port);
        goto_state(s, ST_SYNC);
        return;
    }
    reset_step(s);
}

void enter_sync(struct session *s)
{
    if (set_phase(s, SESSION_PHASE_SYNC) < 0)
        return;
    send_cmd(s, rom_encode_sync(session_pkt, sizeof(session_pkt)), 0, SYNC_TIMEOUT_MS);
}

void sync_done(struct session *s, const uint8_t *frame, size_t len)
{
    struct es_err err;

    if (rom_sync_loader(frame, len, &s->loader, &err) < 0)
        return; /* not a good SYNC reply: keep waiting */
    s->rep.connect_retries = (unsigned)s->connect_attempt;
    s->synced = 1;
    uv_timer_stop(&s->timer);
    s->waiting = 0;
    wait_synced(s);
    session_note(s, "sync", "in sync after %d SYNC(s), loader %s", s->sync_try + 1,
                 rom_loader_name(s->loader));
    goto_state(s, ST_DETECT);
}

void sync_timeout(struct session *s)
{
    int attempts = s->cfg.profiles[0]->retries > 0 ? s->cfg.profiles[0]->retries : 1;

    if (++s->sync_try < SYNC_TRIES) {
        goto_state(s, ST_SYNC_PAUSE);
        return;
    }
    if (s->wait_active) {
        wait_round_over(s);
        return;
    }
    if (s->connect_attempt + 1 < attempts) {
        s->connect_attempt++;
        session_note(s, "retry", "no reply to %d SYNCs; connection attempt %d of %d", SYNC_TRIES,
                     s->connect_attempt + 1, attempts);
        goto_state(s, ST_RESET);
        return;
    }
    if (s->cfg.wait_for_download && !s->synced) {
        wait_start(s);
        return;
    }
    s->rep.connect_retries = (unsigned)s->connect_attempt; /* attempts beyond the first */
    session_fail(s, ES_NO_SYNC, "no reply to SYNC after %d attempts of %d tries%s", attempts,
                 SYNC_TRIES, wait_seen_reason(s));
}

void enter_detect(struct session *s)
{
    if (set_phase(s, SESSION_PHASE_DETECT) < 0)
        return;
    send_cmd(s, rom_encode_read_reg(session_pkt, sizeof(session_pkt), CHIP_MAGIC_REG), 0,
             CMD_TIMEOUT_MS);
}

static const struct profile *profile_for(const struct session *s, const struct chip *chip)
{
    for (size_t i = 0; i < s->cfg.n_profiles; i++) {
        const struct chip *want = s->cfg.profiles[i]->chip;
        if (want == NULL || want == chip)
            return s->cfg.profiles[i];
    }
    return NULL;
}

/* The report's image list, from the profile the board took. */
static int alloc_images(struct session *s)
{
    const struct profile *p = s->profile;

    free(s->images); /* a reconnect (baud fallback) detects the chip again */
    s->images = calloc(p->n_images, sizeof(*s->images));
    if (s->images == NULL) {
        session_fail(s, ES_NOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < p->n_images; i++) {
        s->images[i].offset = p->images[i].offset;
        s->images[i].file = p->images[i].file;
        s->images[i].size_bytes = p->images[i].image != NULL ? p->images[i].image->size : 0;
        memcpy(s->images[i].sha256, p->images[i].sha256, 32);
    }
    s->rep.images = s->images;
    s->rep.n_images = p->n_images;
    return 0;
}

/* The name of what the profiles expect, for messages: "esp32 (profile 'x')". */
static void expected_chip(const struct session *s, char *out, size_t cap)
{
    const struct profile *p = s->cfg.profiles[0];

    if (s->cfg.n_profiles > 1)
        snprintf(out, cap, "one of the %zu profiles' chips", s->cfg.n_profiles);
    else
        snprintf(out, cap, "%s (profile '%s')", p->chip != NULL ? p->chip->name : "any chip",
                 p->name);
}

void detect_done(struct session *s, const struct rom_reply *r)
{
    const struct chip *chip = chip_by_magic(r->value);
    char want[128];

    expected_chip(s, want, sizeof(want));
    if (chip == NULL) {
        session_fail(s, ES_UNKNOWN_CHIP,
                     "chip magic 0x%08x is not a chip espstation knows (%s); expected %s", r->value,
                     chip_names(), want);
        return;
    }
    /* The SYNC replies already said which kind of ROM this is (2 or 4 status bytes, §2.3): a
     * magic word that names a chip of the other kind is not to be believed (a damaged or
     * counterfeit part, or a corrupted reply), and nothing more is sent to this board. */
    if (s->loader != ROM_LOADER_STUB && rom_status_len(s->loader) != chip->rom_status_len) {
        session_fail(s, ES_WRONG_CHIP,
                     "the magic register says %s (0x%08x), but the ROM answers like an %s ROM "
                     "(%zu status bytes); expected %s",
                     chip->display, r->value,
                     s->loader == ROM_LOADER_ESP8266 ? "ESP8266" : "ESP32-family",
                     rom_status_len(s->loader), want);
        return;
    }
    s->chip = chip;
    s->rep.chip = chip->display;
    session_note(s, "chip", "%s", chip->display);
    s->profile = profile_for(s, chip);
    if (s->profile == NULL) {
        session_fail(s, ES_WRONG_CHIP, "the board is an %s; expected %s", chip->display, want);
        return;
    }
    if (alloc_images(s) < 0)
        return;
    s->rep.profile_name = s->profile->name;
    s->rep.profile_sha256_valid = true;
    memcpy(s->rep.profile_sha256, s->profile->sha256, 32);
    goto_state(s, ST_IDENTIFY);
}

/* The identity registers (MAC, revision) are read until two passes in a row agree and the MAC
 * passes chip_check_mac: a ROM reply carries no checksum, so a byte flipped on the line would
 * otherwise name the report after a MAC no board has. */
void enter_identify(struct session *s)
{
    if (set_phase(s, SESSION_PHASE_IDENTIFY) < 0)
        return;
    if (s->step == 0 && s->attempt == 0)
        s->id_pass = 0;
    send_cmd(s, rom_encode_read_reg(session_pkt, sizeof(session_pkt), s->chip->info_regs[s->step]),
             0, CMD_TIMEOUT_MS);
}

static uint32_t wanted_baud(const struct session *s);

void identify_done(struct session *s, const struct rom_reply *r)
{
    struct es_err err;

    s->regs[s->step++] = r->value;
    if ((size_t)s->step < s->chip->info_reg_count) {
        s->attempt = 0;
        send_cmd(s,
                 rom_encode_read_reg(session_pkt, sizeof(session_pkt), s->chip->info_regs[s->step]),
                 0, CMD_TIMEOUT_MS);
        return;
    }
    if (s->id_pass == 0 ||
        memcmp(s->regs, s->regs_prev, s->chip->info_reg_count * sizeof(s->regs[0])) != 0) {
        if (++s->id_pass >= IDENTIFY_PASSES) {
            session_fail(s, ES_BAD_MAC,
                         "the identity registers read differently in each of %d passes: the "
                         "line corrupts replies; check the cable and lower the baud rate",
                         IDENTIFY_PASSES);
            return;
        }
        if (s->id_pass > 1)
            session_note(s, "retry", "identity registers differ between two reads; reading again");
        memcpy(s->regs_prev, s->regs, sizeof(s->regs));
        s->step = 0;
        s->attempt = 0;
        send_cmd(s, rom_encode_read_reg(session_pkt, sizeof(session_pkt), s->chip->info_regs[0]), 0,
                 CMD_TIMEOUT_MS);
        return;
    }
    if (chip_decode_info(s->chip, s->regs, &s->info, &err) < 0 ||
        chip_check_mac(s->chip, s->regs, s->info.mac, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    memcpy(s->rep.mac, s->info.mac, 6);
    s->rep.mac_valid = true;
    s->rep.chip_revision =
        s->info.rev_major >= 0 ? s->info.rev_major * 100 + s->info.rev_minor : -1;
    {
        char mac[18];
        chip_format_mac(s->info.mac, mac);
        session_note(s, "mac", "%s, %s", mac, s->info.description);
    }
    if (s->cfg.mode == SESSION_PROBE) {
        goto_state(s, ST_RUN_RESET); /* the MAC is all a probe wants: back to the app */
        return;
    }
    connect_next(s);
}

/* Whether to raise the line rate in the ROM, so that the stub upload runs at it too (about a
 * second per board at 115200). Only ROMs with CHANGE_BAUDRATE (the ESP32 family; not the
 * ESP8266's). It relies on the stub keeping the UART rate the ROM set: esp-flasher-stub builds
 * either leave the UART alone or reprogram it for the rate they read back, but one build was
 * seen to reset it to 115200, and a build that does so never greets at the raised rate; then
 * the board is reconnected and the stub uploaded at the profile's rate (stub_no_greeting). */
static int raise_in_rom(const struct session *s)
{
    return !s->rom_raised && !s->no_rom_raise && chip_has(s->chip, CHIP_ROM_CHANGE_BAUD) &&
           wanted_baud(s) != s->baud;
}

/* After identify, and after each change of rate: the stub upload (at a rate raised in the ROM
 * first where that works), then the rate, then on to the flash. */
void connect_next(struct session *s)
{
    if (s->profile->loader != PROFILE_LOADER_STUB || s->loader == ROM_LOADER_STUB) {
        goto_state(s, ST_BAUD);
        return;
    }
    if (raise_in_rom(s)) {
        s->rom_raised = 1;
        goto_state(s, ST_BAUD);
        return;
    }
    s->stub = &s->cfg.stubs[s->chip->model];
    if (s->stub->chip == NULL) {
        session_fail(s, ES_STUB, "no flasher stub is loaded for %s", s->chip->display);
        return;
    }
    s->stub_seg = 0;
    s->stub_tries = 0;
    goto_state(s, ST_STUB_BEGIN);
}

/* Upload the flasher stub to RAM (protocol doc §10.1): for text then data, MEM_BEGIN and
 * MEM_DATA blocks of 0x1800 bytes; then MEM_END with the entry point, and wait for "OHAI". */
static const struct stub_segment *stub_segment(const struct session *s)
{
    return s->stub_seg == 0 ? &s->stub->text : &s->stub->data;
}

void enter_stub_begin(struct session *s)
{
    const struct stub_segment *seg = stub_segment(s);
    struct rom_begin b = {0};

    if (set_phase(s, SESSION_PHASE_STUB) < 0)
        return;
    b.size = (uint32_t)seg->len;
    if (s->mem_block == 0)
        s->mem_block = s->chip->mem_block_size;
    b.block_size = s->mem_block;
    b.blocks = rom_block_count(b.size, b.block_size);
    b.offset = seg->addr;
    s->mem_seq = 0;
    s->mem_off = 0;
    send_cmd(s, rom_encode_mem_begin(session_pkt, sizeof(session_pkt), &b), 0, CMD_TIMEOUT_MS);
}

void enter_stub_data(struct session *s)
{
    const struct stub_segment *seg = stub_segment(s);
    size_t n = seg->len - s->mem_off;

    if (n > s->mem_block)
        n = s->mem_block;
    send_cmd(s,
             rom_encode_mem_data(session_pkt, sizeof(session_pkt), s->mem_seq,
                                 seg->bytes + s->mem_off, n),
             0, CMD_TIMEOUT_MS);
}

void stub_data_done(struct session *s)
{
    const struct stub_segment *seg = stub_segment(s);
    size_t n = seg->len - s->mem_off;

    s->mem_off += n > s->mem_block ? s->mem_block : n;
    s->mem_seq++;
    if (s->mem_off < seg->len) {
        goto_state(s, ST_STUB_DATA);
        return;
    }
    if (s->stub_seg == 0 && s->stub->data.len > 0) {
        s->stub_seg = 1;
        s->stub_tries = 0;
        goto_state(s, ST_STUB_BEGIN);
        return;
    }
    goto_state(s, ST_STUB_END);
}

void enter_stub_end(struct session *s)
{
    s->step = 0; /* 0: waiting for the MEM_END reply, 1: for OHAI */
    send_cmd(s, rom_encode_mem_end(session_pkt, sizeof(session_pkt), s->stub->entry), 0,
             MEM_END_TIMEOUT_MS);
}

/* A refused or unanswered MEM_BEGIN/MEM_DATA: the ROM has moved its sequence number on (§15),
 * so the segment is uploaded again from its MEM_BEGIN, in smaller blocks (a shorter block gets
 * through a noisy line more often; the ROM takes any block size). */
int stub_retry(struct session *s, const char *why)
{
    if (++s->stub_tries >= STUB_UPLOAD_TRIES)
        return -1;
    if (s->mem_block > MIN_MEM_BLOCK)
        s->mem_block /= 2;
    session_note(s, "retry",
                 "stub upload: %s; uploading the %s segment again in blocks of %u (%d of %d)", why,
                 s->stub_seg == 0 ? "text" : "data", s->mem_block, s->stub_tries + 1,
                 STUB_UPLOAD_TRIES);
    goto_state(s, ST_STUB_BEGIN);
    return 0;
}

void stub_started(struct session *s)
{
    s->loader = ROM_LOADER_STUB;
    session_note(s, "stub", "flasher stub running");
    goto_state(s, ST_BAUD);
}

/* Starts the board over from its reset, at the profile's rate: the board's output queue and
 * ours are emptied, so no reply still on its way can be taken for another request's. Counts as a
 * connection attempt (profile `retries`). Returns -1, and does nothing, when the port cannot
 * reset the board or the attempts are used up. */
int session_reconnect(struct session *s, const char *why)
{
    int attempts = s->cfg.profiles[0]->retries > 0 ? s->cfg.profiles[0]->retries : 1;
    struct es_err err;

    if (!port_can_reset(s->port) || s->connect_attempt + 1 >= attempts)
        return -1;
    if (s->baud != s->cfg.profiles[0]->baud) {
        if (port_set_baud(s->port, s->cfg.profiles[0]->baud, &err) < 0) {
            session_fail_err(s, &err);
            return 0;
        }
        s->baud = s->cfg.profiles[0]->baud;
    }
    s->connect_attempt++;
    session_note(s, "retry", "%s; reconnecting from reset (attempt %d of %d)", why,
                 s->connect_attempt + 1, attempts);
    s->rom_raised = 0;
    s->loader = ROM_LOADER_UNKNOWN; /* until a SYNC reply says which */
    goto_state(s, ST_RESET);
    return 0;
}

/* No OHAI. After a rate raised in the ROM, the stub may have reset the UART to its own idea of
 * the rate: reconnect and upload it at the profile's rate. Otherwise the stub did not start. */
void stub_no_greeting(struct session *s)
{
    uint32_t raised = s->baud;

    if (s->rom_raised) {
        s->no_rom_raise = 1;
        if (session_reconnect(s, "the stub did not greet at the rate set in the ROM") == 0) {
            s->rep.baud_fallbacks++;
            session_note(s, "baud_fallback", "uploading the stub at %u instead of %u",
                         s->cfg.profiles[0]->baud, raised);
            return;
        }
    }
    session_fail(s, ES_STUB, "the flasher stub did not greet with OHAI after MEM_END");
}

/* Raise the line rate once a loader that can do it runs (protocol doc §3.10): the reply comes at
 * the old rate, then the host switches, waits and flushes. */
static uint32_t wanted_baud(const struct session *s)
{
    uint32_t want = s->profile->flash_baud != 0 ? s->profile->flash_baud : s->baud;

    return s->baud_cap != 0 && want > s->baud_cap ? s->baud_cap : want;
}

/* The next standard rate below baud, or 0 when there is none above the sync rate. */
static uint32_t lower_baud(const struct session *s, uint32_t baud)
{
    static const uint32_t rates[] = {2000000, 1500000, 921600, 460800, 230400, 115200};

    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        if (rates[i] < baud)
            return rates[i] > s->profile->baud ? rates[i] : 0;
    return 0;
}

/* The ESP32 ROM's own estimate of its crystal, for its CHANGE_BAUDRATE (chip_rom_baud_value). */
void enter_rom_baud_cal(struct session *s)
{
    send_cmd(s, rom_encode_read_reg(session_pkt, sizeof(session_pkt), s->chip->rom_baud_cal_reg), 0,
             CMD_TIMEOUT_MS);
}

void enter_baud(struct session *s)
{
    uint32_t want = wanted_baud(s);
    uint32_t value;

    if (want == s->baud ||
        (s->loader != ROM_LOADER_STUB && !chip_has(s->chip, CHIP_ROM_CHANGE_BAUD))) {
        if (want != s->baud)
            session_note(s, "baud", "the %s ROM cannot change baud rate; staying at %u",
                         s->chip->display, s->baud);
        goto_state(s, ST_ATTACH);
        return;
    }
    if (set_phase(s, SESSION_PHASE_BAUD) < 0)
        return;
    if (s->loader != ROM_LOADER_STUB && s->chip->rom_baud_cal_reg != 0 && !s->rom_cal_valid) {
        goto_state(s, ST_ROM_BAUD_CAL);
        return;
    }
    value = s->loader == ROM_LOADER_STUB ? want
                                         : chip_rom_baud_value(s->chip, want, s->rom_cal, s->regs);
    send_cmd(s,
             rom_encode_change_baudrate(session_pkt, sizeof(session_pkt), value,
                                        s->loader == ROM_LOADER_STUB ? s->baud : 0),
             0, CMD_TIMEOUT_MS);
}

void baud_done(struct session *s)
{
    struct es_err err;
    uint32_t want = wanted_baud(s);

    if (port_set_baud(s->port, want, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    session_note(s, "baud", "%u -> %u baud", s->baud, want);
    s->baud = want;
    goto_state(s, ST_BAUD_SETTLE);
}

void baud_settled(struct session *s)
{
    port_flush_input(s->port);
    slip_decoder_reset(&s->dec);
    goto_state(s, ST_BAUD_PROBE);
}

/* One command at the new rate proves the line works before anything is written at it. */
void enter_baud_probe(struct session *s)
{
    send_cmd(s, rom_encode_read_reg(session_pkt, sizeof(session_pkt), CHIP_MAGIC_REG), 0,
             BAUD_PROBE_MS);
}

/* The board does not answer at the raised rate (cable, adapter or board limit): start over at
 * the profile's rate and raise only to the next lower rate this time. The board is now at a rate
 * nobody can talk to, so only a reset brings it back. */
void baud_fallback(struct session *s)
{
    struct es_err err;
    uint32_t failed = s->baud, next = lower_baud(s, failed);

    if (!port_can_reset(s->port)) {
        session_fail(s, ES_BAUD,
                     "no reply at %u baud, and the port cannot reset the board to try a lower "
                     "rate; lower flash_baud in the profile",
                     failed);
        return;
    }
    if (port_set_baud(s->port, s->profile->baud, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    s->baud = s->profile->baud;
    s->baud_cap = next != 0 ? next : s->profile->baud;
    s->rom_raised = 0; /* raise again, to the lower rate, before the stub upload */
    s->rep.baud_fallbacks++;
    session_note(s, "baud_fallback", "no reply at %u baud; reconnecting to try %u", failed,
                 s->baud_cap);
    s->loader = ROM_LOADER_UNKNOWN; /* until a SYNC reply says which */
    goto_state(s, ST_RESET);
}
