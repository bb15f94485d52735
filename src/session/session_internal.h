/* What the files of the per-board state machine share, and nothing outside src/session sees:
 * struct session, its states, the timeouts and retry counts, and the functions one part of the
 * machine calls in another. session.c holds the core (dispatch, timeouts, life cycle),
 * session_connect.c reset to baud, session_flash.c attach to run, session_write.c the image
 * writes and their restarts, session_boot.c the boot check, session_account.c phase timings,
 * errors and the snapshot. */
#ifndef ES_SESSION_INTERNAL_H
#define ES_SESSION_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "es/container_of.h"
#include "es/port.h"
#include "es/rom.h"
#include "es/session.h"
#include "es/slip.h"

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
#define RESET_BOOT_MS         50     /* GPIO0 held low after EN rises, on even attempts */
#define RESET_BOOT_LONG_MS    550    /* on odd attempts: slow boards (esptool's two delays) */
#define RESET_DRAIN_MS        50     /* boot text drained before the first SYNC (§4) */
#define WAIT_SYNC_EVERY_MS    500    /* waiting for download mode: one SYNC this often */
#define WAIT_RESET_EVERY_MS   5000   /* and a reset (where the port can) no more often */
#define WAIT_LINE_CAP         96     /* the part of a boot text line that is kept */
#define WAIT_NOISE_BYTES      16     /* bytes of neither text nor replies: output at another rate */
#define SESSION_HINT_CAP      320    /* the operator's hint, with the ROM line it quotes */
#define FLASH_SECTOR_BYTES    0x1000 /* the erase unit: a restarted write begins on one (§8.3) */
#define MD5_RESULT_ROM        32 /* SPI_FLASH_MD5 result: 32 hex characters from a ROM (§3.11) */
#define MD5_RESULT_STUB       16 /* and 16 raw bytes from the stub */
/* Replies are short (the longest, a ROM MD5, is 44 bytes); 8 KiB leaves room for a READ_FLASH
 * packet later and costs little per board (64 boards: 512 KiB). */
#define DECODER_CAP (8 * 1024)

/* What a board printed instead of answering SYNC, from the least to the most telling
 * (session_wait.c). */
enum wait_seen {
    WAIT_SEEN_NOTHING,
    WAIT_SEEN_NOISE,      /* bytes at another rate: an ESP8266 boot log at 74880, or an app */
    WAIT_SEEN_TEXT,       /* printable lines: an application */
    WAIT_SEEN_FLASH_BOOT, /* the ROM's boot log says it booted from flash */
    WAIT_SEEN_DOWNLOAD,   /* the ROM's boot log says it waits for download */
};

enum state {
    ST_IDLE,
    ST_RESET,
    ST_SYNC,
    ST_SYNC_PAUSE,
    ST_WAIT, /* waiting for download mode: the pause between low-duty SYNCs */
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
    ST_BOOT,
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

    /* Waiting for download mode (session_wait.c). */
    int wait_active;                /* the connection attempts are used up; asking at a low duty */
    uint64_t wait_start_ms;         /* loop time when the waiting began */
    uint64_t wait_reset_ms;         /* loop time of the last reset while waiting */
    enum wait_seen wait_seen;       /* the most telling thing the board printed before SYNC */
    enum wait_seen wait_seen_round; /* wait_seen at the end of the last SYNC round waiting */
    char wait_line[WAIT_LINE_CAP];  /* the text line being read */
    size_t wait_line_len;
    char wait_rom_line[WAIT_LINE_CAP]; /* the ROM line that said how the chip booted */
    unsigned wait_noise;               /* bytes that were neither text nor a line end */
    char hint[SESSION_HINT_CAP];       /* for session_snapshot; "" when none */

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

    /* The boot check (session_boot.c): the board's output since the run reset, NUL bytes left
     * out, its newest part kept; allocated when the check starts. */
    char *boot_text;
    size_t boot_len;
    size_t boot_cursor; /* the next pattern is looked for from here */
    int boot_dropped;   /* older text was dropped to make room */
    size_t boot_seen;   /* expect patterns seen so far */
    int boot_passed;
    uint64_t boot_start_ns, boot_deadline_ns;
    const char *boot_matched[PROFILE_BOOT_EXPECT_MAX + 1];
    size_t n_boot_matched;
    char *boot_log; /* the report's printable copy (boot_account) */

    struct report_device rep;
    struct report_image *images;
    uint64_t phase_ms[SESSION_PHASE_COUNT]; /* time spent in each phase so far */
    int phase_seen[SESSION_PHASE_COUNT];
    struct report_timing timings[SESSION_PHASE_COUNT]; /* the phases that ran, for the report */
    const char *chip_display;
};

/* Packets are built into one buffer and SLIP-encoded into another (session.c). */
extern uint8_t session_pkt[ROM_HEADER_LEN + ROM_DATA_HEADER_LEN + ROM_STUB_BLOCK + 64];

/* ---- Core (session.c) ---- */

uint64_t session_scaled(const struct session *s, uint64_t ms);
uint64_t per_mb_timeout(uint64_t bytes, uint64_t ms_per_mb);
void session_note(struct session *s, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void arm_timer(struct session *s, uint64_t ms);
int send_packet(struct session *s, size_t len);
void send_cmd(struct session *s, size_t len, size_t result_len, uint64_t timeout_ms);
size_t md5_result_len(const struct session *s);
void goto_state(struct session *s, enum state next);
/* Runs the entry action of the current state again (a retry). */
void enter_state(struct session *s);
/* Ends the session: the report is completed, the timer and the port are closed, on_done follows
 * once they are. Nothing more happens on the board after this. */
void session_finish(struct session *s, enum report_result result);

/* ---- Connecting: reset, sync, detect, identify, stub upload, baud (session_connect.c) ---- */

void reset_step(struct session *s);
void enter_reset(struct session *s);
void enter_sync(struct session *s);
void sync_done(struct session *s, const uint8_t *frame, size_t len);
void sync_timeout(struct session *s);
void enter_detect(struct session *s);
void detect_done(struct session *s, const struct rom_reply *r);
void enter_identify(struct session *s);
void identify_done(struct session *s, const struct rom_reply *r);
void connect_next(struct session *s);
void enter_stub_begin(struct session *s);
void enter_stub_data(struct session *s);
void stub_data_done(struct session *s);
void enter_stub_end(struct session *s);
int stub_retry(struct session *s, const char *why);
void stub_started(struct session *s);
int session_reconnect(struct session *s, const char *why);
void stub_no_greeting(struct session *s);
void enter_rom_baud_cal(struct session *s);
void enter_baud(struct session *s);
void baud_done(struct session *s);
void baud_settled(struct session *s);
void enter_baud_probe(struct session *s);
void baud_fallback(struct session *s);

/* ---- Waiting for download mode, boot text seen instead of SYNC (session_wait.c) ---- */

/* Reads what the board sends before its first SYNC reply, for the hint. */
void wait_text_feed(struct session *s, const uint8_t *data, size_t n);
/* "; " and what the board printed and what to do about it, for the end of a failure message,
 * or "" when nothing was seen. The text stays valid until the next call (one thread runs every
 * session). */
const char *wait_seen_reason(const struct session *s);
/* The connection attempts are used up: keep asking (wait_for_download). */
void wait_start(struct session *s);
/* The end of a SYNC round while waiting: note the hint if it changed, pause. */
void wait_round_over(struct session *s);
void enter_wait(struct session *s);
/* The pause is over: a reset round when one is due, else one SYNC. */
void wait_next(struct session *s);
/* A board answered SYNC: the waiting and its hint are over. */
void wait_synced(struct session *s);

/* ---- The flash: attach, flash id, plan, erase, verify, run (session_flash.c) ---- */

void enter_attach(struct session *s);
void rdid_send(struct session *s);
void enter_flash_id(struct session *s);
void flash_id_done(struct session *s, const struct rom_reply *r);
void enter_set_params(struct session *s);
void enter_erase(struct session *s);
void enter_verify(struct session *s);
void verify_done(struct session *s, const struct rom_reply *r);
void enter_run_reset(struct session *s);

/* ---- The boot check after the run reset (session_boot.c) ---- */

void enter_boot(struct session *s);
/* Bytes from the board while in ST_BOOT: raw text, not SLIP frames. */
void boot_data(struct session *s, const uint8_t *data, size_t n);
void boot_timeout(struct session *s);
/* Fills the report's "boot" from what the check saw (from account_finish). */
void boot_account(struct session *s);

/* ---- Writing images, restarts and resync (session_write.c) ---- */

int load_payload(struct session *s, struct es_err *err);
void enter_write_begin(struct session *s);
void enter_write_data(struct session *s);
void write_data_done(struct session *s);
void enter_write_flush(struct session *s);
void image_written(struct session *s);
int block_resend(struct session *s, const struct rom_reply *r, const struct es_err *why);
int write_retry(struct session *s, const struct es_err *why);
void enter_resync(struct session *s);
void resync_listening(struct session *s);

/* ---- Accounting: phase timings, errors, the report (session_account.c) ---- */

/* Enters phase (timings, on_phase). Returns -1 when the session is finishing, e.g. because
 * on_phase interrupted it: the caller then must not touch the port or the timer again. */
int set_phase(struct session *s, enum session_phase phase);
void fill_error(struct session *s, const struct es_err *err);
void session_fail_err(struct session *s, const struct es_err *err);
void session_fail(struct session *s, enum es_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Completes the report for a session that is ending with result: timings, baud, loader. */
void account_finish(struct session *s, enum report_result result);

#endif
