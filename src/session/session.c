/* The per-board state machine (style.md §5). One enter_<state>() per state sends one command
 * and arms the step timer; on_reply() dispatches the matching reply to <state>_done(); goto_state()
 * is the only place the state changes. Nothing here blocks, prints or exits: a session reports
 * through its callbacks and ends with on_done, whatever happens to the board. */
#include "es/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/port.h"
#include "es/rom.h"
#include "es/slip.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Timeouts (protocol doc §4, §8.4; esptool's figures unless noted). */
#define SYNC_TIMEOUT_MS       100  /* first reply to a SYNC */
#define SYNC_TRIES            5    /* SYNCs per reset */
#define SYNC_PAUSE_MS         50   /* between SYNC tries */
#define CMD_TIMEOUT_MS        3000 /* any other command */
#define CMD_RETRIES           3    /* tries of an idempotent command (READ_REG...) */
#define MEM_END_TIMEOUT_MS    200  /* the ROM's MEM_END reply may never come (§3.5) */
#define OHAI_TIMEOUT_MS       1000 /* stub greeting after MEM_END */
#define BAUD_SETTLE_MS        50   /* after CHANGE_BAUDRATE, before the next command (§3.10) */
#define BAUD_PROBE_MS         500  /* a board that does not answer this fast at the new rate */
#define ERASE_MS_PER_MB       40000
#define MD5_MS_PER_MB         8000
#define CHIP_ERASE_TIMEOUT_MS 120000
#define BLOCK_RETRIES         3     /* restarts of one image after failures at one place (§8.5) */
#define IMAGE_RESTARTS_MAX    64    /* restarts of one image in all, progress or not */
#define MIN_STUB_BLOCK        0x400 /* the smallest block after halving on line errors */
#define STUB_UPLOAD_TRIES     16    /* uploads of one stub segment (refused or lost MEM block) */
#define MIN_MEM_BLOCK         0x400 /* the smallest MEM_DATA block after halving */
#define MD5_READS             3     /* reads of a region's MD5 until one matches (verify_done) */
#define IMAGE_REWRITES        2     /* writes of an image again after a read-back mismatch */
#define RESYNC_TIMEOUT_MS     500   /* a stub SYNC reply, after it finished the block it was on */
#define RESYNC_TRIES          4     /* READ_REG, 0xC0, SYNC rounds (see enter_resync) */
#define IDENTIFY_PASSES       4     /* reads of the identity registers until two agree */
#define RESET_HOLD_MS         100
#define RESET_BOOT_MS         50  /* GPIO0 held low after EN rises, on even attempts */
#define RESET_BOOT_LONG_MS    550 /* on odd attempts: slow boards (esptool's two delays) */
#define RESET_DRAIN_MS        50  /* boot text drained before the first SYNC (§4) */
/* Replies are short (the longest, a ROM MD5, is 44 bytes); 8 KiB leaves room for a READ_FLASH
 * packet later and costs little per board (64 boards: 512 KiB). */
#define DECODER_CAP (8 * 1024)

enum state {
    ST_IDLE,
    ST_RESET,
    ST_SYNC,
    ST_SYNC_PAUSE,
    ST_DETECT,
    ST_IDENTIFY,
    ST_STUB_BEGIN,
    ST_STUB_DATA,
    ST_STUB_END,
    ST_ROM_BAUD_CAL,
    ST_BAUD,
    ST_BAUD_SETTLE,
    ST_BAUD_PROBE,
    ST_ATTACH,
    ST_FLASH_ID,
    ST_SET_PARAMS,
    ST_ERASE,
    ST_WRITE_BEGIN,
    ST_WRITE_DATA,
    ST_WRITE_FLUSH,
    ST_RESYNC,
    ST_VERIFY,
    ST_RUN_RESET,
    ST_CLOSING,
};

struct session {
    uv_loop_t *loop;
    struct session_config cfg;
    struct session_callbacks cb;
    void *arg;

    struct port *port;
    uv_timer_t timer;
    int open_handles;
    int started;

    enum state state;
    enum session_phase phase;
    uint64_t phase_start_ns;
    int attempt;         /* tries of the current command */
    int connect_attempt; /* resets + SYNC rounds */
    int sync_try;
    int step;      /* sub-step inside a state (reset lines, register index, image index...) */
    int finishing; /* session_finish() ran: ignore everything but close callbacks */
    int grace;     /* the step timer ran out once; one more turn of the loop before it counts */
    int synced;    /* a loader answered SYNC */

    /* The command waiting for its reply. */
    int waiting;
    uint8_t pending_op;
    size_t pending_result_len;
    uint64_t pending_timeout_ms;

    enum rom_loader loader;
    uint32_t baud;
    uint32_t baud_cap; /* after a failed raise: the highest rate still to try, else 0 */
    uint32_t rom_cal;  /* READ_REG of chip->rom_baud_cal_reg, for the ROM's baud correction */
    int rom_cal_valid;
    int rom_raised;   /* the rate was raised in the ROM, before the stub upload */
    int no_rom_raise; /* the stub did not greet at a rate raised in the ROM: upload at baud */
    const struct chip *chip;
    const struct profile *profile;
    struct chip_info info;
    uint32_t regs[CHIP_MAX_INFO_REGS];
    uint32_t regs_prev[CHIP_MAX_INFO_REGS]; /* the previous identify pass */
    int id_pass;

    struct chip_reg_step rdid[CHIP_RDID_MAX_STEPS];
    size_t rdid_n;
    uint32_t rdid_saved[CHIP_RDID_SAVE_SLOTS];
    int polls;
    uint32_t flash_size;
    struct image_flash_params params;

    /* Stub upload. */
    const struct stub_image *stub;
    int stub_seg; /* 0 text, 1 data */
    uint32_t mem_seq;
    size_t mem_off;

    /* Image writing and verifying. */
    size_t img;
    const struct session_payload *payload;
    uint32_t seq, blocks, block_size;
    uint32_t acked; /* blocks the loader has acknowledged; seq - acked are in flight */
    size_t off;     /* bytes of the stream (compressed or not) already sent */
    int compressed;
    /* This (re)start of the image: it writes from wr_base on, sending wr_stream (the image's
     * zlib stream, a restarted tail of it in resume_buf, or the raw bytes from wr_base). */
    uint32_t wr_base;
    size_t wr_point; /* restart point of the zlib stream (es/deflate.h) */
    const uint8_t *wr_stream;
    size_t wr_size;
    uint8_t *resume_buf;
    uint32_t stub_block;     /* block size with the stub: halved after each failed block */
    unsigned image_restarts; /* in a row failing at one place */
    unsigned image_attempts; /* restarts of this image in all */
    int stub_tries;          /* uploads of the current segment */
    uint32_t mem_block;      /* MEM_DATA block size: halved after each failed upload */
    int rewrites;            /* the image was written again after its MD5 did not match */
    int verify_rewrite;      /* that rewrite is under way: back to ST_VERIFY after it */
    int md5_reads;
    size_t blk_off;  /* stream offset of the block in flight */
    size_t fail_pos; /* where in the image's stream the last failure came */
    int block_fails; /* refusals of that block in a row */
    uint64_t done_bytes, total_bytes;
    uint64_t write_start_ns;

    struct slip_decoder dec;
    uint8_t *decbuf;

    struct report_device rep;
    struct report_image *images;
    uint64_t phase_ms[SESSION_PHASE_COUNT]; /* time spent in each phase so far */
    int phase_seen[SESSION_PHASE_COUNT];
    struct report_timing timings[SESSION_PHASE_COUNT]; /* the phases that ran, for the report */
    const char *chip_display;
};

/* Packets are built into one buffer and SLIP-encoded into another; port_write copies the bytes,
 * and the whole station runs in one thread, so every session can share them. */
static uint8_t pkt_buf[ROM_HEADER_LEN + ROM_DATA_HEADER_LEN + ROM_STUB_BLOCK + 64];
static uint8_t wire_buf[2 * sizeof(pkt_buf) + 2];

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

static void goto_state(struct session *s, enum state next);
static void session_fail(struct session *s, enum es_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void session_fail_err(struct session *s, const struct es_err *err);
static void session_finish(struct session *s, enum report_result result);

/* ---- Helpers ---- */

static uint64_t scaled(const struct session *s, uint64_t ms)
{
    double v = (double)ms * s->cfg.timeout_scale;

    return v < 1.0 ? 1 : (uint64_t)v;
}

static uint64_t per_mb_timeout(uint64_t bytes, uint64_t ms_per_mb)
{
    uint64_t t = bytes * ms_per_mb / 1000000u;

    return t < CMD_TIMEOUT_MS ? CMD_TIMEOUT_MS : t;
}

static void note(struct session *s, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct session *s, const char *what, const char *fmt, ...)
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

static void set_phase(struct session *s, enum session_phase phase)
{
    uint64_t now = uv_hrtime();

    if (phase == s->phase && s->phase_seen[phase])
        return;
    if (s->phase_seen[s->phase])
        s->phase_ms[s->phase] += (now - s->phase_start_ns) / 1000000u;
    s->phase = phase;
    s->phase_start_ns = now;
    s->phase_seen[phase] = 1;
    if (s->cb.on_phase != NULL)
        s->cb.on_phase(s, phase, s->arg);
}

static void arm_timer(struct session *s, uint64_t ms);

static void on_step_timeout(uv_timer_t *t);

static void arm_timer(struct session *s, uint64_t ms)
{
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
    note(s, dir, "%zu bytes: %s", n, text);
}

/* SLIP-encodes pkt_buf[0..len) and queues it. */
static int send_packet(struct session *s, size_t len)
{
    struct es_err err;
    size_t wire;

    if (len == 0) {
        session_fail(s, ES_INVALID_ARG, "could not encode a request (a bug in espstation)");
        return -1;
    }
    wire = slip_encode(pkt_buf, len, wire_buf, sizeof(wire_buf));
    if (s->cfg.verbose)
        hex_note(s, "tx", pkt_buf, len);
    if (port_write(s->port, wire_buf, wire, &err) < 0) {
        session_fail_err(s, &err);
        return -1;
    }
    s->rep.tx_bytes += wire;
    if (s->phase == SESSION_PHASE_WRITE)
        s->rep.write_tx_bytes += wire;
    return 0;
}

/* Sends a request built in pkt_buf and waits timeout_ms for the reply with the same op. */
static void send_cmd(struct session *s, size_t len, size_t result_len, uint64_t timeout_ms)
{
    s->pending_op = pkt_buf[1];
    s->pending_result_len = result_len;
    s->pending_timeout_ms = timeout_ms;
    s->waiting = 1;
    if (send_packet(s, len) == 0)
        arm_timer(s, scaled(s, timeout_ms));
}

static size_t md5_result_len(const struct session *s)
{
    return s->loader == ROM_LOADER_STUB ? 16 : 32;
}

/* ---- Failure and the end of a session ---- */

static void fill_error(struct session *s, const struct es_err *err)
{
    s->rep.error = *err;
    s->rep.error_phase = session_phase_name(s->phase);
}

static void session_fail_err(struct session *s, const struct es_err *err)
{
    if (s->finishing)
        return;
    fill_error(s, err);
    es_err_prefix(&s->rep.error, "slot %d (%s), %s", s->cfg.slot, s->cfg.port,
                  session_phase_name(s->phase));
    session_finish(s, REPORT_FAIL);
}

static void session_fail(struct session *s, enum es_code code, const char *fmt, ...)
{
    struct es_err err;
    va_list ap;

    va_start(ap, fmt);
    es_vfail(&err, code, fmt, ap);
    va_end(ap);
    session_fail_err(s, &err);
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

static void session_finish(struct session *s, enum report_result result)
{
    if (s->finishing)
        return;
    goto_state(s, ST_CLOSING);
    s->finishing = 1;
    set_phase(s, result == REPORT_PASS ? SESSION_PHASE_DONE : s->phase);
    s->phase_ms[s->phase] += (uv_hrtime() - s->phase_start_ns) / 1000000u;
    s->rep.result = result;
    s->rep.end_ms = report_now_ms();
    s->rep.baud = s->baud;
    if (s->synced)
        s->rep.loader = s->loader == ROM_LOADER_STUB ? REPORT_LOADER_STUB : REPORT_LOADER_ROM;
    /* The phases in the order they ran, which is their enum order. */
    s->rep.n_timings = 0;
    for (int i = 0; i < SESSION_PHASE_DONE; i++) {
        if (!s->phase_seen[i])
            continue;
        s->timings[s->rep.n_timings].phase = phase_names[i];
        s->timings[s->rep.n_timings].ms = s->phase_ms[i];
        s->rep.n_timings++;
    }
    if (s->started) {
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    }
    if (s->port != NULL)
        port_close(s->port, on_port_closed);
    else if (!s->started)
        s->cb.on_done(s, s->arg);
}

/* ---- States, in the order a board goes through them ---- */

static void enter_reset(struct session *s);
static void enter_sync(struct session *s);
static void enter_detect(struct session *s);
static void enter_identify(struct session *s);
static void enter_stub_begin(struct session *s);
static void enter_stub_data(struct session *s);
static void enter_stub_end(struct session *s);
static void enter_rom_baud_cal(struct session *s);
static void enter_baud(struct session *s);
static void enter_baud_probe(struct session *s);
static void enter_attach(struct session *s);
static void enter_flash_id(struct session *s);
static void enter_set_params(struct session *s);
static void enter_erase(struct session *s);
static void enter_write_begin(struct session *s);
static void enter_write_data(struct session *s);
static void enter_write_flush(struct session *s);
static void enter_resync(struct session *s);
static void enter_verify(struct session *s);
static void enter_run_reset(struct session *s);
static void image_written(struct session *s);

/* Runs the entry action of the current state: used by goto_state and to retry a command. */
static void enter_state(struct session *s)
{
    switch (s->state) {
    case ST_IDLE: break;
    case ST_RESET: enter_reset(s); break;
    case ST_SYNC: enter_sync(s); break;
    case ST_SYNC_PAUSE: arm_timer(s, SYNC_PAUSE_MS); break;
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
    case ST_CLOSING: break;
    }
}

static void goto_state(struct session *s, enum state next)
{
    if (s->finishing)
        return;
    s->state = next;
    s->attempt = 0;
    s->waiting = 0;
    s->step = 0;
    enter_state(s);
}

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

static void reset_step(struct session *s)
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

static void enter_reset(struct session *s)
{
    /* Before the chip is known the first profile decides; a mixed bench uses one policy. */
    const struct profile *p = s->cfg.profiles[0];

    set_phase(s, SESSION_PHASE_RESET);
    s->step = 0;
    s->sync_try = 0;
    if (p->reset_before == PROFILE_RESET_BEFORE_NONE || !port_can_reset(s->port)) {
        if (s->connect_attempt == 0 && p->reset_before != PROFILE_RESET_BEFORE_NONE)
            note(s, "reset", "port has no modem lines: not reset, SYNC only (protocol doc §5.4)");
        port_flush_input(s->port);
        goto_state(s, ST_SYNC);
        return;
    }
    reset_step(s);
}

static void enter_sync(struct session *s)
{
    set_phase(s, SESSION_PHASE_SYNC);
    send_cmd(s, rom_encode_sync(pkt_buf, sizeof(pkt_buf)), 0, SYNC_TIMEOUT_MS);
}

static void sync_done(struct session *s, const uint8_t *frame, size_t len)
{
    struct es_err err;

    if (rom_sync_loader(frame, len, &s->loader, &err) < 0)
        return; /* not a good SYNC reply: keep waiting */
    s->rep.connect_retries = (unsigned)s->connect_attempt;
    s->synced = 1;
    uv_timer_stop(&s->timer);
    s->waiting = 0;
    note(s, "sync", "in sync after %d SYNC(s), loader %s", s->sync_try + 1,
         rom_loader_name(s->loader));
    goto_state(s, ST_DETECT);
}

static void sync_timeout(struct session *s)
{
    int attempts = s->cfg.profiles[0]->retries > 0 ? s->cfg.profiles[0]->retries : 1;

    if (++s->sync_try < SYNC_TRIES) {
        goto_state(s, ST_SYNC_PAUSE);
        return;
    }
    if (++s->connect_attempt < attempts) {
        note(s, "retry", "no reply to %d SYNCs; connection attempt %d of %d", SYNC_TRIES,
             s->connect_attempt + 1, attempts);
        goto_state(s, ST_RESET);
        return;
    }
    s->rep.connect_retries = (unsigned)s->connect_attempt;
    session_fail(s, ES_NO_SYNC, "no reply to SYNC after %d attempts of %d tries", attempts,
                 SYNC_TRIES);
}

static void enter_detect(struct session *s)
{
    set_phase(s, SESSION_PHASE_DETECT);
    send_cmd(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), CHIP_MAGIC_REG), 0, CMD_TIMEOUT_MS);
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

static void detect_done(struct session *s, const struct rom_reply *r)
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
    note(s, "chip", "%s", chip->display);
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
static void enter_identify(struct session *s)
{
    set_phase(s, SESSION_PHASE_IDENTIFY);
    if (s->step == 0 && s->attempt == 0)
        s->id_pass = 0;
    send_cmd(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), s->chip->info_regs[s->step]), 0,
             CMD_TIMEOUT_MS);
}

static void connect_next(struct session *s);
static uint32_t wanted_baud(const struct session *s);

static void identify_done(struct session *s, const struct rom_reply *r)
{
    struct es_err err;

    s->regs[s->step++] = r->value;
    if ((size_t)s->step < s->chip->info_reg_count) {
        s->attempt = 0;
        send_cmd(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), s->chip->info_regs[s->step]), 0,
                 CMD_TIMEOUT_MS);
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
            note(s, "retry", "identity registers differ between two reads; reading again");
        memcpy(s->regs_prev, s->regs, sizeof(s->regs));
        s->step = 0;
        s->attempt = 0;
        send_cmd(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), s->chip->info_regs[0]), 0,
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
        note(s, "mac", "%s, %s", mac, s->info.description);
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
static void connect_next(struct session *s)
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

static void enter_stub_begin(struct session *s)
{
    const struct stub_segment *seg = stub_segment(s);
    struct rom_begin b = {0};

    set_phase(s, SESSION_PHASE_STUB);
    b.size = (uint32_t)seg->len;
    if (s->mem_block == 0)
        s->mem_block = s->chip->mem_block_size;
    b.block_size = s->mem_block;
    b.blocks = rom_block_count(b.size, b.block_size);
    b.offset = seg->addr;
    s->mem_seq = 0;
    s->mem_off = 0;
    send_cmd(s, rom_encode_mem_begin(pkt_buf, sizeof(pkt_buf), &b), 0, CMD_TIMEOUT_MS);
}

static void enter_stub_data(struct session *s)
{
    const struct stub_segment *seg = stub_segment(s);
    size_t n = seg->len - s->mem_off;

    if (n > s->mem_block)
        n = s->mem_block;
    send_cmd(s,
             rom_encode_mem_data(pkt_buf, sizeof(pkt_buf), s->mem_seq, seg->bytes + s->mem_off, n),
             0, CMD_TIMEOUT_MS);
}

static void stub_data_done(struct session *s)
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

static void enter_stub_end(struct session *s)
{
    s->step = 0; /* 0: waiting for the MEM_END reply, 1: for OHAI */
    send_cmd(s, rom_encode_mem_end(pkt_buf, sizeof(pkt_buf), s->stub->entry), 0,
             MEM_END_TIMEOUT_MS);
}

/* A refused or unanswered MEM_BEGIN/MEM_DATA: the ROM has moved its sequence number on (§15),
 * so the segment is uploaded again from its MEM_BEGIN, in smaller blocks (a shorter block gets
 * through a noisy line more often; the ROM takes any block size). */
static int stub_retry(struct session *s, const char *why)
{
    if (++s->stub_tries >= STUB_UPLOAD_TRIES)
        return -1;
    if (s->mem_block > MIN_MEM_BLOCK)
        s->mem_block /= 2;
    note(s, "retry", "stub upload: %s; uploading the %s segment again in blocks of %u (%d of %d)",
         why, s->stub_seg == 0 ? "text" : "data", s->mem_block, s->stub_tries + 1,
         STUB_UPLOAD_TRIES);
    goto_state(s, ST_STUB_BEGIN);
    return 0;
}

static void stub_started(struct session *s)
{
    s->loader = ROM_LOADER_STUB;
    note(s, "stub", "flasher stub running");
    goto_state(s, ST_BAUD);
}

/* Starts the board over from its reset, at the profile's rate: the board's output queue and
 * ours are emptied, so no reply still on its way can be taken for another request's. Counts as a
 * connection attempt (profile `retries`). Returns -1, and does nothing, when the port cannot
 * reset the board or the attempts are used up. */
static int reconnect(struct session *s, const char *why)
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
    note(s, "retry", "%s; reconnecting from reset (attempt %d of %d)", why, s->connect_attempt + 1,
         attempts);
    s->rom_raised = 0;
    s->loader = ROM_LOADER_ESP32; /* until a SYNC reply says which */
    goto_state(s, ST_RESET);
    return 0;
}

/* No OHAI. After a rate raised in the ROM, the stub may have reset the UART to its own idea of
 * the rate: reconnect and upload it at the profile's rate. Otherwise the stub did not start. */
static void stub_no_greeting(struct session *s)
{
    uint32_t raised = s->baud;

    if (s->rom_raised) {
        s->no_rom_raise = 1;
        if (reconnect(s, "the stub did not greet at the rate set in the ROM") == 0) {
            s->rep.baud_fallbacks++;
            note(s, "baud_fallback", "uploading the stub at %u instead of %u",
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
static void enter_rom_baud_cal(struct session *s)
{
    send_cmd(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), s->chip->rom_baud_cal_reg), 0,
             CMD_TIMEOUT_MS);
}

static void enter_baud(struct session *s)
{
    uint32_t want = wanted_baud(s);
    uint32_t value;

    if (want == s->baud ||
        (s->loader != ROM_LOADER_STUB && !chip_has(s->chip, CHIP_ROM_CHANGE_BAUD))) {
        if (want != s->baud)
            note(s, "baud", "the %s ROM cannot change baud rate; staying at %u", s->chip->display,
                 s->baud);
        goto_state(s, ST_ATTACH);
        return;
    }
    set_phase(s, SESSION_PHASE_BAUD);
    if (s->loader != ROM_LOADER_STUB && s->chip->rom_baud_cal_reg != 0 && !s->rom_cal_valid) {
        goto_state(s, ST_ROM_BAUD_CAL);
        return;
    }
    value = s->loader == ROM_LOADER_STUB ? want
                                         : chip_rom_baud_value(s->chip, want, s->rom_cal, s->regs);
    send_cmd(s,
             rom_encode_change_baudrate(pkt_buf, sizeof(pkt_buf), value,
                                        s->loader == ROM_LOADER_STUB ? s->baud : 0),
             0, CMD_TIMEOUT_MS);
}

static void baud_done(struct session *s)
{
    struct es_err err;
    uint32_t want = wanted_baud(s);

    if (port_set_baud(s->port, want, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    note(s, "baud", "%u -> %u baud", s->baud, want);
    s->baud = want;
    goto_state(s, ST_BAUD_SETTLE);
}

static void baud_settled(struct session *s)
{
    port_flush_input(s->port);
    slip_decoder_reset(&s->dec);
    goto_state(s, ST_BAUD_PROBE);
}

/* One command at the new rate proves the line works before anything is written at it. */
static void enter_baud_probe(struct session *s)
{
    send_cmd(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), CHIP_MAGIC_REG), 0, BAUD_PROBE_MS);
}

/* The board does not answer at the raised rate (cable, adapter or board limit): start over at
 * the profile's rate and raise only to the next lower rate this time. The board is now at a rate
 * nobody can talk to, so only a reset brings it back. */
static void baud_fallback(struct session *s)
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
    note(s, "baud_fallback", "no reply at %u baud; reconnecting to try %u", failed, s->baud_cap);
    s->loader = ROM_LOADER_ESP32;
    goto_state(s, ST_RESET);
}

/* Attach the SPI flash: SPI_ATTACH on ESP32-family chips; the ESP8266 ROM attaches on a
 * FLASH_BEGIN with zero sizes (§3.8); the ESP8266 stub has attached it already. */
static void enter_attach(struct session *s)
{
    struct rom_begin b = {0};

    set_phase(s, SESSION_PHASE_ATTACH);
    if (chip_has(s->chip, CHIP_ROM_NEEDS_SPI_ATTACH)) {
        send_cmd(s, rom_encode_spi_attach(pkt_buf, sizeof(pkt_buf), 0, s->loader), 0,
                 CMD_TIMEOUT_MS);
        return;
    }
    if (s->loader != ROM_LOADER_STUB) {
        b.block_size = ROM_FLASH_BLOCK;
        send_cmd(s, rom_encode_flash_begin(pkt_buf, sizeof(pkt_buf), &b), 0, CMD_TIMEOUT_MS);
        return;
    }
    goto_state(s, ST_FLASH_ID);
}

/* Read the JEDEC id by playing the chip's RDID register recipe (protocol doc §7.5). */
static void rdid_send(struct session *s)
{
    const struct chip_reg_step *st = &s->rdid[s->step];
    uint32_t value = st->value;
    size_t len;

    switch (st->op) {
    case CHIP_REG_SAVE:
    case CHIP_REG_POLL:
    case CHIP_REG_RESULT: len = rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), st->addr); break;
    case CHIP_REG_RESTORE:
        value = s->rdid_saved[st->value];
        /* fall through */
    case CHIP_REG_WRITE:
    default:
        len = rom_encode_write_reg(pkt_buf, sizeof(pkt_buf), st->addr, value, 0xFFFFFFFFu, 0);
        break;
    }
    send_cmd(s, len, 0, CMD_TIMEOUT_MS);
}

static void enter_flash_id(struct session *s)
{
    set_phase(s, SESSION_PHASE_FLASH_ID);
    s->rdid_n = chip_rdid_steps(s->chip, s->rdid);
    s->step = 0;
    s->polls = 0;
    rdid_send(s);
}

static int settle_flash(struct session *s, uint32_t detected, struct es_err *err)
{
    const struct profile *p = s->profile;
    const struct chip_flash_size *fs;
    uint8_t code;
    int rc;

    s->flash_size = detected;
    if (p->flash.size_kind == PROFILE_SIZE_BYTES)
        s->flash_size = p->flash.size_bytes;
    if (s->flash_size == 0)
        return es_fail(err, ES_FLASH_SIZE,
                       "flash id 0x%06x has a capacity espstation does not know; set flash.size "
                       "in the profile",
                       s->rep.flash_id);
    s->rep.flash_size_bytes = s->flash_size;

    s->params.mode = IMAGE_KEEP;
    s->params.freq = IMAGE_KEEP;
    s->params.size = IMAGE_KEEP;
    if (strcmp(p->flash.mode, "keep") != 0) {
        if ((rc = chip_flash_mode_from_string(p->flash.mode, &code, err)) < 0)
            return rc;
        s->params.mode = code;
    }
    if (strcmp(p->flash.freq, "keep") != 0) {
        if ((rc = chip_flash_freq_from_string(s->chip, p->flash.freq, &code, err)) < 0)
            return rc;
        s->params.freq = code;
    }
    if (p->flash.size_kind != PROFILE_SIZE_KEEP) {
        if ((rc = chip_flash_size_from_bytes(s->chip, s->flash_size, &fs, err)) < 0)
            return rc;
        s->params.size = fs->code;
    }
    return profile_check_board(p, s->chip, s->flash_size, err);
}

static void flash_id_done(struct session *s, const struct rom_reply *r)
{
    const struct chip_reg_step *st = &s->rdid[s->step];
    struct flash_id id;
    struct es_err err;

    switch (st->op) {
    case CHIP_REG_SAVE: s->rdid_saved[st->value] = r->value; break;
    case CHIP_REG_POLL:
        if ((r->value & st->value) != 0) {
            if (++s->polls >= CHIP_REG_POLL_MAX) {
                session_fail(s, ES_NO_FLASH, "the SPI flash did not finish RDID");
                return;
            }
            s->attempt = 0;
            rdid_send(s);
            return;
        }
        break;
    case CHIP_REG_RESULT: s->rep.flash_id = r->value & 0xFFFFFFu; break;
    case CHIP_REG_WRITE:
    case CHIP_REG_RESTORE: break;
    }
    if ((size_t)++s->step < s->rdid_n) {
        s->attempt = 0;
        rdid_send(s);
        return;
    }
    if (flash_id_decode(s->rep.flash_id, &id, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    s->rep.flash_id_valid = true;
    note(s, "flash", "flash id 0x%06x, %u KiB", s->rep.flash_id, id.size_bytes / 1024);
    set_phase(s, SESSION_PHASE_PLAN);
    if (settle_flash(s, id.size_bytes, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    goto_state(s, ST_SET_PARAMS);
}

static void enter_set_params(struct session *s)
{
    if (!chip_has(s->chip, CHIP_ROM_SPI_SET_PARAMS)) {
        goto_state(s, ST_ERASE);
        return;
    }
    send_cmd(s, rom_encode_spi_set_params(pkt_buf, sizeof(pkt_buf), s->flash_size), 0,
             CMD_TIMEOUT_MS);
}

/* Erase the whole chip first when the profile asks for it (protocol doc §3.13). The ROMs have no
 * chip erase: a FLASH_BEGIN over the whole flash does the same. */
static void enter_erase(struct session *s)
{
    struct rom_begin b = {0};

    if (s->cfg.mode == SESSION_VERIFY) {
        s->img = 0;
        goto_state(s, ST_VERIFY);
        return;
    }
    if (s->profile->erase != PROFILE_ERASE_ALL) {
        s->img = 0;
        goto_state(s, ST_WRITE_BEGIN);
        return;
    }
    set_phase(s, SESSION_PHASE_ERASE);
    if (s->loader == ROM_LOADER_STUB) {
        send_cmd(s, rom_encode_erase_flash(pkt_buf, sizeof(pkt_buf)), 0, CHIP_ERASE_TIMEOUT_MS);
        return;
    }
    b.size =
        s->loader == ROM_LOADER_ESP8266 ? rom_esp8266_erase_size(0, s->flash_size) : s->flash_size;
    b.block_size = ROM_FLASH_BLOCK;
    send_cmd(s, rom_encode_flash_begin(pkt_buf, sizeof(pkt_buf), &b), 0,
             per_mb_timeout(s->flash_size, ERASE_MS_PER_MB));
}

/* Write one image: FLASH_BEGIN (or FLASH_DEFL_BEGIN with the stub), its blocks, then with the
 * stub one READ_REG that is answered only once the last block is in flash (esptool does the
 * same). After a refused or lost block the write restarts with a new BEGIN (both ROMs advance
 * their sequence number even on a refused block, protocol doc §15), from the last point that
 * is surely written: the last 4 KiB boundary the acknowledged raw blocks reach, or the last
 * restart point of the zlib stream (es/deflate.h) the acknowledged compressed blocks reach.
 * With the stub every failed block also halves the block size, down to 1 KiB: on a noisy line a
 * smaller block gets through more often. The MD5 verify still covers the whole image. */
static int load_payload(struct session *s, struct es_err *err)
{
    s->compressed = s->loader == ROM_LOADER_STUB;
    return s->cb.get_payload(s, s->profile, s->img, s->chip, &s->params, s->compressed, &s->payload,
                             err, s->arg);
}

static size_t stream_size(const struct session *s)
{
    return s->wr_size;
}

/* Points wr_stream at what this (re)start sends, from wr_point (compressed) or wr_base. */
static int select_stream(struct session *s, struct es_err *err)
{
    const struct image_prepared *prep = s->payload->prepared;
    const struct image_deflate *z = s->payload->z;

    free(s->resume_buf);
    s->resume_buf = NULL;
    if (!s->compressed) {
        s->wr_stream = prep->data + s->wr_base;
        s->wr_size = prep->size - s->wr_base;
        return 0;
    }
    s->wr_base = z->points[s->wr_point].uoff;
    if (s->wr_point == 0) {
        s->wr_stream = z->z;
        s->wr_size = z->zsize;
        return 0;
    }
    if (image_deflate_tail(z, prep->data, prep->size, s->wr_point, &s->resume_buf, &s->wr_size,
                           err) < 0)
        return -1;
    s->wr_stream = s->resume_buf;
    return 0;
}

static void enter_write_begin(struct session *s)
{
    const struct image_prepared *prep;
    struct rom_begin b = {0};
    struct es_err err;
    size_t len;

    set_phase(s, SESSION_PHASE_WRITE);
    if (load_payload(s, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    prep = s->payload->prepared;
    if (s->img == 0 && s->image_attempts == 0) {
        s->total_bytes = 0;
        for (size_t i = 0; i < s->profile->n_images; i++)
            s->total_bytes += s->profile->images[i].image->size;
        s->write_start_ns = uv_hrtime();
    }
    if (s->image_attempts == 0) {
        s->wr_base = 0;
        s->wr_point = 0;
    }
    if (select_stream(s, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    if (s->loader == ROM_LOADER_STUB && s->stub_block == 0)
        s->stub_block = s->chip->stub_block_size;
    s->block_size = s->loader == ROM_LOADER_STUB ? s->stub_block : ROM_FLASH_BLOCK;
    s->seq = 0;
    s->acked = 0;
    s->off = 0;
    s->block_fails = 0;
    s->blocks = rom_block_count((uint32_t)stream_size(s), s->block_size);
    b.blocks = s->blocks;
    b.block_size = s->block_size;
    b.offset = prep->offset + s->wr_base;
    if (s->compressed) {
        b.size = (uint32_t)(prep->size - s->wr_base);
        len = rom_encode_flash_defl_begin(pkt_buf, sizeof(pkt_buf), &b);
    } else {
        b.size = s->loader == ROM_LOADER_ESP8266
                     ? rom_esp8266_erase_size(b.offset, (uint32_t)s->wr_size)
                     : (uint32_t)s->wr_size;
        len = rom_encode_flash_begin(pkt_buf, sizeof(pkt_buf), &b);
    }
    s->images[s->img].md5_sent_valid = true;
    memcpy(s->images[s->img].md5_sent, prep->md5, 16);
    send_cmd(s, len, 0, per_mb_timeout(prep->size - s->wr_base, ERASE_MS_PER_MB));
}

/* Sends the next data block (sequence s->seq). Returns 0, or -1 when the session failed. */
static int send_block(struct session *s)
{
    const uint8_t *stream = s->wr_stream;
    size_t n = stream_size(s) - s->off;
    size_t len;

    if (n > s->block_size)
        n = s->block_size;
    s->blk_off = s->off;
    if (s->compressed)
        len = rom_encode_flash_defl_data(pkt_buf, sizeof(pkt_buf), s->seq, stream + s->off, n);
    else
        len = rom_encode_flash_data(pkt_buf, sizeof(pkt_buf), s->seq, stream + s->off, n,
                                    s->block_size);
    s->pending_op = pkt_buf[1];
    s->pending_result_len = 0;
    if (send_packet(s, len) < 0)
        return -1;
    s->off += n;
    s->seq++;
    return 0;
}

/* Blocks sent before the previous one is answered (protocol doc §10.2): one, for every loader.
 * The ROMs program a block before they answer it. The esp-flasher-stub build we ship has one
 * frame buffer and stops draining the 128-byte UART FIFO while a frame waits, so a second block
 * sent early loses all but its first 128 bytes (and its closing 0xC0: the stub is then stuck in
 * a broken frame, see enter_resync). The legacy stub and the reworked esp-flasher-stub answer
 * before they write, so with them one block in flight already overlaps the write with the next
 * block's transfer; no build is known that takes a block before it has answered the previous
 * one. The next block goes out as soon as the reply is in (write_data_done). */
static unsigned write_window(const struct session *s)
{
    (void)s;
    return 1;
}

static void enter_write_data(struct session *s)
{
    uint64_t timeout = CMD_TIMEOUT_MS;

    while (s->seq - s->acked < write_window(s) && s->off < stream_size(s)) {
        if (send_block(s) < 0)
            return;
    }
    if (s->compressed) {
        /* A compressed block may expand to much more flash than it is long (esptool sizes the
         * timeout by the uncompressed bytes, 40 s/MB). Each block in flight adds its time. */
        timeout =
            per_mb_timeout((uint64_t)s->block_size * (s->payload->prepared->size - s->wr_base) /
                               stream_size(s) * (s->seq - s->acked),
                           ERASE_MS_PER_MB);
    }
    s->pending_timeout_ms = timeout;
    s->waiting = 1;
    arm_timer(s, scaled(s, timeout));
}

static uint64_t image_done_bytes(const struct session *s)
{
    uint64_t before = 0, size = s->profile->images[s->img].image->size;
    uint64_t acked = (uint64_t)s->acked * s->block_size, base = s->wr_base;

    for (size_t i = 0; i < s->img; i++)
        before += s->profile->images[i].image->size;
    if (base > size)
        base = size;
    if (stream_size(s) == 0)
        return before + base;
    if (acked > stream_size(s))
        acked = stream_size(s);
    return before + base + acked * (size - base) / stream_size(s);
}

static void write_data_done(struct session *s)
{
    s->block_fails = 0;
    s->acked++;
    s->done_bytes = image_done_bytes(s);
    if (s->acked < s->blocks) {
        enter_write_data(s);
        return;
    }
    s->images[s->img].written_bytes = s->payload->prepared->size;
    /* The stub acknowledges a block before it is in flash; one more command is answered only
     * after the last block was written (esptool does the same). */
    if (s->loader == ROM_LOADER_STUB)
        goto_state(s, ST_WRITE_FLUSH);
    else
        image_written(s);
}

static void enter_write_flush(struct session *s)
{
    send_cmd(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), CHIP_MAGIC_REG), 0,
             per_mb_timeout(s->block_size * 4u, ERASE_MS_PER_MB));
}

/* The current image is in flash: on to the next one, or to verifying. */
static void image_written(struct session *s)
{
    note(s, "image_written", "0x%05x: %zu bytes", s->payload->prepared->offset,
         s->payload->prepared->size);
    s->image_restarts = 0;
    s->image_attempts = 0;
    s->fail_pos = 0;
    free(s->resume_buf);
    s->resume_buf = NULL;
    if (s->verify_rewrite) {
        s->verify_rewrite = 0;
        goto_state(s, ST_VERIFY);
        return;
    }
    if (++s->img < s->profile->n_images) {
        goto_state(s, ST_WRITE_BEGIN);
        return;
    }
    s->img = 0;
    goto_state(s, ST_VERIFY);
}

/* How far into the image's stream the acknowledged blocks reach. */
static size_t write_pos(const struct session *s)
{
    size_t acked = s->state == ST_WRITE_BEGIN ? 0 : (size_t)s->acked * s->block_size;

    if (s->compressed)
        return s->payload->z->points[s->wr_point].zoff - 2 + acked;
    return s->wr_base + acked;
}

/* Moves the next BEGIN to the last point the acknowledged blocks surely wrote (see above). */
static void resume_point(struct session *s)
{
    size_t pos = write_pos(s);

    if (s->compressed) {
        size_t k = image_deflate_point(s->payload->z, pos);

        if (k > s->wr_point)
            s->wr_point = k;
        return;
    }
    pos -= pos % 0x1000; /* a BEGIN erases from its offset: restart on a sector */
    if (pos > s->wr_base)
        s->wr_base = (uint32_t)pos;
}

/* A stub refused the block in flight for its checksum or length (§2.6): it checks both before
 * it touches its decompressor or the flash (esp-flasher-stub s_flash_defl_data, and the legacy
 * stub likewise), and it answered, so it is listening: the same block is sent again. A block
 * refused twice in a row restarts the write in smaller blocks instead. The ROMs count a refused
 * block (§15), so with them this never applies. */
static int block_resend(struct session *s, const struct rom_reply *r, const struct es_err *why)
{
    if (s->loader != ROM_LOADER_STUB || s->state != ST_WRITE_DATA ||
        (r->error != STUB_ERR_BAD_DATA_LEN && r->error != STUB_ERR_BAD_CHECKSUM) ||
        s->seq != s->acked + 1 || ++s->block_fails >= 2)
        return -1;
    s->rep.block_retries++;
    note(s, "retry", "image at 0x%05x, block %u: %s; sending it again",
         s->payload->prepared->offset, s->acked, why->msg);
    s->seq = s->acked;
    s->off = s->blk_off;
    enter_write_data(s);
    return 0;
}

static int write_retry(struct session *s, const struct es_err *why)
{
    uint32_t offset = s->payload != NULL ? s->payload->prepared->offset : 0;

    s->rep.block_retries++;
    if (s->payload == NULL || ++s->image_attempts > IMAGE_RESTARTS_MAX)
        return -1;
    /* A failure at the very place of the last one is the board's, not the line's (a flash that
     * will not take a block): three in a row fail the board. Noise strikes anywhere. */
    if (s->image_attempts > 1 && write_pos(s) == s->fail_pos) {
        if (++s->image_restarts > BLOCK_RETRIES)
            return -1;
    } else {
        s->image_restarts = 0;
    }
    s->fail_pos = write_pos(s);
    resume_point(s);
    if (s->loader == ROM_LOADER_STUB && s->stub_block > MIN_STUB_BLOCK)
        s->stub_block /= 2;
    note(s, "retry",
         "image at 0x%05x, block %u: %s; writing again from 0x%05x in blocks of %u (restart %u, "
         "%u in a row at one place of %d allowed)",
         offset, s->seq, why->msg,
         offset + (s->compressed ? s->payload->z->points[s->wr_point].uoff : s->wr_base),
         s->loader == ROM_LOADER_STUB ? s->stub_block : ROM_FLASH_BLOCK, s->image_attempts,
         s->image_restarts, BLOCK_RETRIES);
    goto_state(s, s->loader == ROM_LOADER_STUB ? ST_RESYNC : ST_WRITE_BEGIN);
    return 0;
}

/* Before a stub retries, it must be listening for a frame again. The stubs' SLIP decoders
 * (esp-flasher-stub and legacy alike) toggle on every 0xC0, an empty frame too: a block that
 * lost its closing 0xC0, or its opening one, leaves the stub inside a frame, and from then on
 * each request's first 0xC0 ends that frame, its body is skipped and its last 0xC0 opens the
 * next: every request is lost. One lone 0xC0 flips that, but also puts a listening stub inside
 * a frame. So the host sends READ_REG, a lone 0xC0, then SYNC, and exactly one of the two is
 * answered: SYNC when the stub was inside a frame (the 0xC0s of READ_REG end that frame and the
 * next, the lone one leaves it listening), and then it is listening; READ_REG when it was
 * listening, and then the lone 0xC0 has put it inside a frame, which one more lone 0xC0 ends
 * (resync_listening). The ROMs' decoders treat runs of 0xC0 as harmless (§15.1). The reply to
 * the broken frame and any late reply to the lost block have other ops and are dropped. */
static const uint8_t lone_end[] = {SLIP_END};

static void enter_resync(struct session *s)
{
    struct es_err err;

    if (send_packet(s, rom_encode_read_reg(pkt_buf, sizeof(pkt_buf), CHIP_MAGIC_REG)) < 0)
        return;
    if (port_write(s->port, lone_end, sizeof(lone_end), &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    send_cmd(s, rom_encode_sync(pkt_buf, sizeof(pkt_buf)), 0, RESYNC_TIMEOUT_MS);
}

/* READ_REG was answered: the stub was listening and is now inside an empty frame. */
static void resync_listening(struct session *s)
{
    struct es_err err;

    uv_timer_stop(&s->timer);
    if (port_write(s->port, lone_end, sizeof(lone_end), &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    note(s, "resync", "the stub answers again (it was listening)");
    goto_state(s, ST_WRITE_BEGIN);
}

/* Verify every image region with SPI_FLASH_MD5 against the MD5 of the bytes sent (§8.7). */
static void enter_verify(struct session *s)
{
    struct es_err err;
    const struct image_prepared *prep;

    if (s->profile->verify == PROFILE_VERIFY_NONE) {
        goto_state(s, ST_RUN_RESET);
        return;
    }
    if (s->loader != ROM_LOADER_STUB && !chip_has(s->chip, CHIP_ROM_MD5)) {
        session_fail(s, ES_UNSUPPORTED,
                     "the %s ROM has no MD5 command: verify needs loader: stub (the default)",
                     s->chip->display);
        return;
    }
    set_phase(s, SESSION_PHASE_VERIFY);
    if (load_payload(s, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    prep = s->payload->prepared;
    s->images[s->img].md5_sent_valid = true;
    memcpy(s->images[s->img].md5_sent, prep->md5, 16);
    send_cmd(s,
             rom_encode_spi_flash_md5(pkt_buf, sizeof(pkt_buf), prep->offset, (uint32_t)prep->size),
             md5_result_len(s), per_mb_timeout(prep->size, MD5_MS_PER_MB));
}

static void verify_done(struct session *s, const struct rom_reply *r)
{
    struct report_image *ri = &s->images[s->img];
    struct es_err err;
    char want[33], got[33];

    if (rom_decode_md5(r, s->loader, ri->md5_read, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    ri->md5_read_valid = true;
    ri->verified = memcmp(ri->md5_read, ri->md5_sent, 16) == 0;
    es_hex(ri->md5_sent, 16, want);
    es_hex(ri->md5_read, 16, got);
    /* The reply has no checksum: a digest damaged on the line would fail a good board, so a
     * mismatch is read again. Noise cannot forge the expected digest, so a match is a match. */
    if (!ri->verified && ++s->md5_reads < MD5_READS) {
        note(s, "retry", "image at 0x%05x: flash MD5 %s, expected %s; reading it again (%d of %d)",
             ri->offset, got, want, s->md5_reads + 1, MD5_READS);
        goto_state(s, ST_VERIFY);
        return;
    }
    s->md5_reads = 0;
    /* Read right, written wrong: a block damaged on the line in a way its checksum missed (an
     * XOR catches no pair of flips in the same bit). Written once more, then judged again. */
    if (!ri->verified && s->rewrites < IMAGE_REWRITES && s->profile->verify == PROFILE_VERIFY_MD5 &&
        s->cfg.mode == SESSION_FLASH) {
        note(s, "retry", "image at 0x%05x: flash MD5 %s, expected %s; writing the image again",
             ri->offset, got, want);
        s->rewrites++;
        s->rep.block_retries++;
        s->verify_rewrite = 1;
        goto_state(s, ST_WRITE_BEGIN);
        return;
    }
    if (!ri->verified) {
        session_fail(s, ES_VERIFY_MISMATCH,
                     "image %s at 0x%05x: flash MD5 %s, expected %s; the flash does not hold "
                     "the image",
                     ri->file, ri->offset, got, want);
        return;
    }
    s->rewrites = 0;
    note(s, "verified", "0x%05x: md5 %s", ri->offset, got);
    if (++s->img < s->profile->n_images) {
        goto_state(s, ST_VERIFY);
        return;
    }
    goto_state(s, ST_RUN_RESET);
}

/* Hard reset into the new firmware (§5.2): RTS asserted for 100 ms, then released. */
static void enter_run_reset(struct session *s)
{
    struct es_err err;

    if (s->profile->reset_after == PROFILE_RESET_AFTER_NONE || !port_can_reset(s->port)) {
        if (s->profile->reset_after != PROFILE_RESET_AFTER_NONE)
            note(s, "reset", "port has no modem lines: board left in the loader");
        session_finish(s, REPORT_PASS);
        return;
    }
    set_phase(s, SESSION_PHASE_RUN);
    if (s->step == 0) { /* RTS asserted = EN low: in reset */
        if (port_set_lines(s->port, 0, 1, &err) < 0) {
            session_fail_err(s, &err);
            return;
        }
        s->step = 1;
        arm_timer(s, RESET_HOLD_MS);
        return;
    }
    if (port_set_lines(s->port, 0, 0, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    session_finish(s, REPORT_PASS);
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
    note(s, "retry", "%s; try %d of %d", why->msg, s->attempt + 1, CMD_RETRIES);
    resend(s);
    return 0;
}

static void on_reply(struct session *s, const struct rom_reply *r)
{
    struct es_err err;

    if (rom_reply_check(r, s->loader, &err) < 0) {
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
        arm_timer(s, scaled(s, OHAI_TIMEOUT_MS));
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
        note(s, "erased", "whole flash erased");
        s->img = 0;
        goto_state(s, ST_WRITE_BEGIN);
        break;
    case ST_WRITE_BEGIN: goto_state(s, ST_WRITE_DATA); break;
    case ST_WRITE_DATA: write_data_done(s); break;
    case ST_WRITE_FLUSH: image_written(s); break;
    case ST_RESYNC:
        note(s, "resync", "the stub answers again (it was inside a broken frame)");
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
    if ((s->state == ST_SYNC || s->state == ST_SYNC_PAUSE) && len >= ROM_HEADER_LEN &&
        frame[0] == ROM_DIR_REPLY && frame[1] == ROM_OP_SYNC) {
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
    if (rom_decode_reply(frame, len, s->loader, s->pending_result_len, &r, &err) < 0)
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
    if ((s->waiting || s->state == ST_STUB_END) && !s->grace) {
        s->grace = 1;
        uv_timer_start(&s->timer, on_step_timeout, 1, 0);
        return;
    }
    s->grace = 0;
    switch (s->state) {
    case ST_RESET: reset_step(s); return;
    case ST_SYNC: sync_timeout(s); return;
    case ST_SYNC_PAUSE: goto_state(s, ST_SYNC); return;
    case ST_BAUD_SETTLE: baud_settled(s); return;
    case ST_BAUD_PROBE: baud_fallback(s); return;
    case ST_RUN_RESET: enter_run_reset(s); return;
    case ST_STUB_END:
        if (s->step == 0) {
            /* The MEM_END reply may be lost when the stub takes over the UART (§3.5). */
            s->step = 1;
            s->waiting = 0;
            arm_timer(s, scaled(s, OHAI_TIMEOUT_MS));
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
                (unsigned long long)scaled(s, s->pending_timeout_ms));
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
        if (reconnect(s, why) < 0)
            session_fail(s, ES_TIMEOUT, "%s within %llu ms, and no connection attempt is left", why,
                         (unsigned long long)scaled(s, s->pending_timeout_ms));
        return;
    }
    default: break;
    }
    /* Read-only commands may be sent again. */
    if (s->waiting && s->state != ST_ERASE && s->state != ST_BAUD && ++s->attempt < CMD_RETRIES) {
        note(s, "retry", "no reply to %s; try %d of %d", rom_op_name(s->pending_op), s->attempt + 1,
             CMD_RETRIES);
        resend(s);
        return;
    }
    session_fail(s, ES_TIMEOUT, "no reply to %s within %llu ms", rom_op_name(s->pending_op),
                 (unsigned long long)scaled(s, s->pending_timeout_ms));
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
    s->cb = *cb;
    s->arg = arg;
    s->baud = cfg->profiles[0]->baud;
    s->loader = ROM_LOADER_ESP32; /* until a SYNC reply says which */
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

    s->rep.start_ms = report_now_ms();
    s->phase_start_ns = uv_hrtime();
    s->phase = SESSION_PHASE_OPEN;
    s->phase_seen[SESSION_PHASE_OPEN] = 1;
    if (s->cb.on_phase != NULL)
        s->cb.on_phase(s, SESSION_PHASE_OPEN, s->arg);
    uv_timer_init(s->loop, &s->timer);
    s->open_handles = 1;
    s->started = 1;
    if (port_open(s->loop, s->cfg.port, s->baud, &port_cb, s, &s->port, &err) < 0) {
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
    free(s);
}

const struct report_device *session_report(const struct session *s)
{
    return &s->rep;
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
}
