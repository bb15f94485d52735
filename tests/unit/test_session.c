/* The per-board state machine (src/session) without the simulator: the session talks to a
 * scripted fake port (es/port_fake.h) behind which a small responder plays an ESP32-S3, its ROM
 * and the flasher stub, with a RAM flash that inflates what is written. Each test makes the
 * "board" drop, delay or refuse one thing, counts the callbacks (on_done exactly once), checks
 * the report and the fake's counters, and ends with uv_loop_close() == 0 as libuv's tests do
 * (style.md §8). The responder decodes requests with its own code, from the protocol document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four headers it needs */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "es/chip.h"
#include "es/deflate.h"
#include "es/image.h"
#include "es/le.h"
#include "es/port_fake.h"
#include "es/profile.h"
#include "es/rom.h"
#include "es/session.h"
#include "es/slip.h"

#define FLASH_BYTES     (4u << 20)
#define FLASH_JEDEC     0x1640EFu /* Winbond, capacity 0x16: 4 MiB (protocol doc §7.6) */
#define APP_OFFSET      0x10000u
#define APP_BYTES       (40u * 1024u) /* incompressible: three 16 KiB stub blocks */
#define SYNC_VALUE      0x20120707u   /* any non-zero word: a ROM answered (§4) */
#define ROM_BAUD        115200u
#define BOARD_MAX_BAUD  460800u /* the cable's limit in the baud tests */
#define BOGUS_REG_VALUE 0xDEADBEEFu
#define STUB_TEXT_ADDR  0x40380000u
#define STUB_DATA_ADDR  0x3FC90000u

/* The MAC the eFuse words below hold (§7.3: the high word's low 16 bits are its first bytes). */
static const uint8_t board_mac[6] = {0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56};
#define MAC_LO 0xC4123456u
#define MAC_HI 0x0000240Au

/* What the scripted board does with one kind of request. */
struct op_script {
    int silent; /* requests of this op left unanswered: n, or -1 for all */
    int refuse; /* requests refused with refuse_error */
    uint8_t refuse_error;
    int seen; /* requests received */
};

struct harness;

/* The board: an ESP32-S3 in download mode, its ROM, and the stub once uploaded. */
struct board {
    struct harness *h;
    struct fake_port *fp;
    int stub;          /* the stub answers (2 status bytes [error, 0], stub commands) */
    uint32_t baud;     /* the board's UART rate */
    uint32_t max_baud; /* the line's limit: frames written faster arrive as noise */
    uint32_t regs[64][2];
    size_t n_regs;
    uint8_t *flash;
    int resets;

    /* FLASH_DEFL_* */
    z_stream zs;
    int zs_open;
    uint32_t wr_offset, wr_pos, wr_seq;
    int defl_begins;
    int drop_block_seq; /* the first DATA block with this seq (of any BEGIN) is lost; -1: none */
    uint64_t data_reply_delay_ms;
    /* Write window: the host must have read the reply to the previous block before it sends
     * the next one. rx_needed is the session's rx_bytes once that reply is in. */
    uint64_t wire_sent, rx_needed;
    int window_violations;

    /* Late reply: the first READ_REG of hold_reg is answered with BOGUS_REG_VALUE only when the
     * session resets the board (after its timeout). */
    uint32_t hold_reg;
    int holding, held_released;

    struct op_script ops[256];
};

struct harness {
    uv_loop_t loop;
    struct board b;
    struct profile profile;
    struct profile_image pimg;
    struct image img;
    const struct profile *profiles[1];
    struct stub_image stubs[CHIP_MODEL_COUNT];
    uint8_t stub_text[300], stub_data[100];
    struct session_config cfg;
    struct session *s;
    char port_name[16]; /* one per test: a failed test leaves its fake registered */

    struct image_prepared prep;
    struct image_deflate z;
    int have_prep, have_z;
    struct session_payload payload;

    int phase_calls[SESSION_PHASE_COUNT];
    enum session_phase phase_order[64];
    int n_phases;
    int interrupt_at; /* interrupt the session on entering this phase; -1: never */
    struct fake_port_stats at_interrupt; /* the fake's counters right after that */
    int done_calls, retry_notes;
    int fail_port_in_write; /* unplug the board during the first FLASH_DEFL_DATA */
};

/* ---- The responder ---- */

static void board_set_reg(struct board *b, uint32_t addr, uint32_t value)
{
    for (size_t i = 0; i < b->n_regs; i++)
        if (b->regs[i][0] == addr) {
            b->regs[i][1] = value;
            return;
        }
    assert_true(b->n_regs < sizeof(b->regs) / sizeof(b->regs[0]));
    b->regs[b->n_regs][0] = addr;
    b->regs[b->n_regs][1] = value;
    b->n_regs++;
}

static uint32_t board_reg(const struct board *b, uint32_t addr)
{
    const struct chip *chip = chip_by_model(CHIP_ESP32S3);

    if (addr == chip->spi.w0)
        return FLASH_JEDEC; /* what RDID leaves in W0 */
    if (addr == chip->spi.cmd)
        return 0; /* the user command finished at once */
    for (size_t i = 0; i < b->n_regs; i++)
        if (b->regs[i][0] == addr)
            return b->regs[i][1];
    return 0;
}

/* Sends a reply to op: header, result bytes, then the loader's status bytes (§2.2, §2.3). */
static void board_reply(struct board *b, uint8_t op, uint32_t value, const uint8_t *data, size_t n,
                        uint8_t error, uint64_t delay_ms)
{
    uint8_t pkt[ROM_HEADER_LEN + 64 + 4] = {0}, wire[2 * sizeof(pkt) + 2];
    size_t slen = b->stub ? 2 : 4;

    assert_true(n <= 64);
    pkt[0] = ROM_DIR_REPLY;
    pkt[1] = op;
    es_put_le16(pkt + 2, (uint16_t)(n + slen));
    es_put_le32(pkt + 4, value);
    if (n > 0)
        memcpy(pkt + ROM_HEADER_LEN, data, n);
    if (b->stub) {
        pkt[ROM_HEADER_LEN + n] = error; /* stub: [error code, 0] (§2.6) */
    } else if (error != 0) {
        pkt[ROM_HEADER_LEN + n] = 1; /* ROM: [1, error, 0, 0] (§2.5) */
        pkt[ROM_HEADER_LEN + n + 1] = error;
    }
    b->wire_sent += slip_encode(pkt, ROM_HEADER_LEN + n + slen, wire, sizeof(wire));
    fake_port_send_frame(b->fp, pkt, ROM_HEADER_LEN + n + slen, delay_ms);
}

static void board_reset(struct board *b)
{
    if (b->zs_open)
        inflateEnd(&b->zs);
    b->zs_open = 0;
    b->stub = 0;
    b->baud = ROM_BAUD;
    b->rx_needed = 0;
    b->resets++;
}

/* DTR/RTS: RTS asserted with DTR released pulls EN low (protocol doc §5.2): the chip resets, and
 * a reply the ROM still owed is sent now, before the chip goes quiet. */
static void on_lines(struct fake_port *fp, int dtr, int rts, void *arg)
{
    struct board *b = arg;

    (void)fp;
    if (!(rts && !dtr))
        return;
    if (b->holding && !b->held_released) {
        board_reply(b, ROM_OP_READ_REG, BOGUS_REG_VALUE, NULL, 0, 0, 0);
        b->held_released = 1;
    }
    board_reset(b);
}

static void board_flash_md5(struct board *b, const uint8_t *d)
{
    uint32_t off = es_get_le32(d), size = es_get_le32(d + 4);
    uint8_t md5[16];
    char hex[33];
    struct es_err err;

    assert_true(off + size <= FLASH_BYTES);
    assert_int_equal(es_md5(b->flash + off, size, md5, &err), 0);
    if (b->stub) {
        board_reply(b, ROM_OP_SPI_FLASH_MD5, 0, md5, 16, 0, 0);
        return;
    }
    es_hex(md5, 16, hex);
    board_reply(b, ROM_OP_SPI_FLASH_MD5, 0, (const uint8_t *)hex, 32, 0, 0);
}

static void board_defl_begin(struct board *b, const uint8_t *d)
{
    b->wr_offset = es_get_le32(d + 12);
    b->wr_pos = 0;
    b->wr_seq = 0;
    b->defl_begins++;
    b->rx_needed = 0;
    if (b->zs_open)
        inflateEnd(&b->zs);
    memset(&b->zs, 0, sizeof(b->zs));
    assert_int_equal(inflateInit(&b->zs), Z_OK);
    b->zs_open = 1;
    board_reply(b, ROM_OP_FLASH_DEFL_BEGIN, 0, NULL, 0, 0, 0);
}

/* One FLASH_DEFL_DATA block: 16-byte data header (length, sequence, 0, 0), then deflate data
 * that the stub inflates into the flash (§3.3, §11). Returns 0 when answered. */
static void board_defl_data(struct board *b, const uint8_t *d, size_t n)
{
    uint32_t len = es_get_le32(d), seq = es_get_le32(d + 4);
    const uint64_t rx = session_report(b->h->s)->rx_bytes;
    int zr;

    if (rx < b->rx_needed)
        b->window_violations++;
    assert_true(b->zs_open);
    assert_int_equal(len, n - ROM_DATA_HEADER_LEN);
    assert_int_equal(seq, b->wr_seq);
    if (b->drop_block_seq >= 0 && seq == (uint32_t)b->drop_block_seq) {
        b->drop_block_seq = -1; /* lost on the line: neither written nor answered */
        return;
    }
    b->zs.next_in = (Bytef *)(uintptr_t)(d + ROM_DATA_HEADER_LEN);
    b->zs.avail_in = len;
    b->zs.next_out = b->flash + b->wr_offset + b->wr_pos;
    b->zs.avail_out = FLASH_BYTES - b->wr_offset - b->wr_pos;
    zr = inflate(&b->zs, Z_NO_FLUSH);
    assert_true(zr == Z_OK || zr == Z_STREAM_END);
    b->wr_pos = (uint32_t)((size_t)(b->zs.next_out - b->flash) - b->wr_offset);
    b->wr_seq++;
    board_reply(b, ROM_OP_FLASH_DEFL_DATA, 0, NULL, 0, 0, b->data_reply_delay_ms);
    b->rx_needed = b->wire_sent;
}

static void on_frame(struct fake_port *fp, const uint8_t *frame, size_t len, uint32_t baud,
                     void *arg)
{
    struct board *b = arg;
    struct op_script *os;
    const uint8_t *d = frame + ROM_HEADER_LEN;
    uint8_t op;
    size_t n;

    (void)fp;
    if (baud != b->baud || baud > b->max_baud)
        return; /* noise at the board's rate */
    if (len < ROM_HEADER_LEN || frame[0] != ROM_DIR_REQUEST)
        return;
    op = frame[1];
    n = es_get_le16(frame + 2);
    assert_int_equal(n, len - ROM_HEADER_LEN);
    os = &b->ops[op];
    os->seen++;
    if (os->silent != 0) {
        if (os->silent > 0)
            os->silent--;
        return;
    }
    if (os->refuse > 0) {
        os->refuse--;
        board_reply(b, op, 0, NULL, 0, os->refuse_error, 0);
        return;
    }
    switch (op) {
    case ROM_OP_SYNC: board_reply(b, op, b->stub ? 0 : SYNC_VALUE, NULL, 0, 0, 0); return;
    case ROM_OP_READ_REG:
        if (b->hold_reg != 0 && es_get_le32(d) == b->hold_reg && !b->holding) {
            b->holding = 1; /* answered late: see on_lines */
            return;
        }
        board_reply(b, op, board_reg(b, es_get_le32(d)), NULL, 0, 0, 0);
        return;
    case ROM_OP_WRITE_REG:
        board_set_reg(b, es_get_le32(d), es_get_le32(d + 4));
        board_reply(b, op, 0, NULL, 0, 0, 0);
        return;
    case ROM_OP_MEM_BEGIN:
    case ROM_OP_MEM_DATA:
    case ROM_OP_SPI_ATTACH:
    case ROM_OP_SPI_SET_PARAMS:
    case ROM_OP_FLASH_DEFL_END: board_reply(b, op, 0, NULL, 0, 0, 0); return;
    case ROM_OP_MEM_END:
        board_reply(b, op, 0, NULL, 0, 0, 0);
        fake_port_send_frame(b->fp, (const uint8_t *)"OHAI", 4, 0); /* §10.1 */
        b->stub = 1;
        return;
    case ROM_OP_CHANGE_BAUDRATE:
        board_reply(b, op, 0, NULL, 0, 0, 0); /* at the old rate, then it switches (§3.10) */
        b->baud = es_get_le32(d);
        return;
    case ROM_OP_FLASH_DEFL_BEGIN: board_defl_begin(b, d); return;
    case ROM_OP_FLASH_DEFL_DATA: board_defl_data(b, d, n); return;
    case ROM_OP_SPI_FLASH_MD5: board_flash_md5(b, d); return;
    case ROM_OP_ERASE_FLASH:
        memset(b->flash, 0xFF, FLASH_BYTES);
        board_reply(b, op, 0, NULL, 0, 0, 0);
        return;
    default: break;
    }
    board_reply(b, op, 0, NULL, 0, b->stub ? STUB_ERR_INVALID_CMD : ROM_ERR_INVALID_FORMAT, 0);
}

/* ---- The session's side ---- */

static void on_phase(struct session *s, enum session_phase phase, void *arg)
{
    struct harness *h = arg;

    assert_ptr_equal(s, h->s);
    h->phase_calls[phase]++;
    if (h->n_phases < (int)(sizeof(h->phase_order) / sizeof(h->phase_order[0])))
        h->phase_order[h->n_phases++] = phase;
    if ((int)phase == h->interrupt_at) {
        session_interrupt(s);
        h->at_interrupt = *fake_port_stats(h->b.fp);
    }
    if (phase == SESSION_PHASE_WRITE && h->fail_port_in_write) {
        h->fail_port_in_write = 0;
        fake_port_fail(h->b.fp, ES_PORT_CLOSED, 0);
    }
}

static void on_note(struct session *s, const char *what, const char *text, void *arg)
{
    struct harness *h = arg;

    (void)s;
    (void)text;
    if (strcmp(what, "retry") == 0)
        h->retry_notes++;
}

static void on_done(struct session *s, void *arg)
{
    struct harness *h = arg;

    assert_ptr_equal(s, h->s);
    h->done_calls++;
}

static int get_payload(struct session *s, const struct profile *p, size_t i,
                       const struct chip *chip, const struct image_flash_params *params,
                       int compressed, const struct session_payload **out, struct es_err *err,
                       void *arg)
{
    struct harness *h = arg;

    (void)s;
    assert_int_equal(i, 0);
    if (!h->have_prep) {
        if (image_prepare(chip, p->images[i].image->data, p->images[i].image->size,
                          p->images[i].offset, params, &h->prep, err) < 0)
            return -1;
        h->have_prep = 1;
    }
    if (compressed && !h->have_z) {
        if (image_deflate(h->prep.data, h->prep.size, IMAGE_DEFLATE_CHUNK, &h->z, err) < 0)
            return -1;
        h->have_z = 1;
    }
    h->payload.prepared = &h->prep;
    h->payload.z = compressed ? &h->z : NULL;
    *out = &h->payload;
    return 0;
}

static const struct session_callbacks callbacks = {on_phase, on_note, on_done, get_payload};

/* Timeouts are scaled down so that a test takes milliseconds of board time; sanitizer builds
 * slow everything down, as for the integration tests. */
static double test_timeout_scale(void)
{
    const char *m = getenv("ESPSTATION_TIMEOUT_MULTIPLIER");
    double k = m != NULL ? atof(m) : 1.0;

    return 0.05 * (k >= 1.0 ? k : 1.0);
}

static struct harness *harness_new(void)
{
    struct harness *h = calloc(1, sizeof(*h));
    const struct chip *chip = chip_by_model(CHIP_ESP32S3);
    struct es_err err;
    uint32_t x = 12345;
    static int n_fakes;

    assert_non_null(h);
    snprintf(h->port_name, sizeof(h->port_name), "fake%d", n_fakes++);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    h->interrupt_at = -1;

    /* The board. */
    h->b.h = h;
    h->b.fp = fake_port_new(&h->loop, h->port_name);
    assert_non_null(h->b.fp);
    fake_port_on_frame(h->b.fp, on_frame, &h->b);
    fake_port_on_lines(h->b.fp, on_lines, &h->b);
    fake_port_set_can_reset(h->b.fp, 1);
    h->b.flash = malloc(FLASH_BYTES);
    assert_non_null(h->b.flash);
    memset(h->b.flash, 0xFF, FLASH_BYTES);
    h->b.baud = ROM_BAUD;
    h->b.max_baud = 5000000;
    h->b.drop_block_seq = -1;
    h->b.data_reply_delay_ms = 1;
    board_set_reg(&h->b, CHIP_MAGIC_REG, chip->magic[0]);
    board_set_reg(&h->b, chip->info_regs[0], MAC_LO);
    board_set_reg(&h->b, chip->info_regs[1], MAC_HI);

    /* The image: pseudo-random bytes, so the stream needs several blocks. Not a firmware image
     * (byte 0 is not 0xE9), so no header is patched. */
    h->img.size = APP_BYTES;
    h->img.data = malloc(APP_BYTES);
    assert_non_null(h->img.data);
    for (size_t i = 0; i < APP_BYTES; i++) {
        x = x * 1103515245u + 12345u;
        h->img.data[i] = (uint8_t)(x >> 16);
    }
    h->img.data[0] = 0;
    assert_int_equal(es_sha256(h->img.data, h->img.size, h->img.sha256, &err), 0);
    h->img.path = (char *)"app.bin";
    h->pimg.offset = APP_OFFSET;
    h->pimg.file = (char *)"app.bin";
    h->pimg.path = (char *)"app.bin";
    h->pimg.image = &h->img;
    memcpy(h->pimg.sha256, h->img.sha256, 32);

    /* The profile: what `espstation run` would load from a YAML file. */
    h->profile.path = (char *)"test.yaml";
    h->profile.name = (char *)"test";
    h->profile.chip = chip;
    h->profile.baud = ROM_BAUD;
    h->profile.flash.mode = "keep";
    h->profile.flash.freq = "keep";
    h->profile.flash.size = "keep";
    h->profile.flash.size_kind = PROFILE_SIZE_KEEP;
    h->profile.erase = PROFILE_ERASE_NONE;
    h->profile.verify = PROFILE_VERIFY_MD5;
    h->profile.loader = PROFILE_LOADER_STUB;
    h->profile.reset_before = PROFILE_RESET_BEFORE_AUTO;
    h->profile.reset_after = PROFILE_RESET_AFTER_HARD;
    h->profile.retries = PROFILE_DEFAULT_RETRIES;
    h->profile.images = &h->pimg;
    h->profile.n_images = 1;
    h->profiles[0] = &h->profile;

    /* A stub of our own bytes: the responder does not run it. */
    memset(h->stub_text, 0xA5, sizeof(h->stub_text));
    memset(h->stub_data, 0x5A, sizeof(h->stub_data));
    h->stubs[CHIP_ESP32S3].chip = chip;
    h->stubs[CHIP_ESP32S3].entry = STUB_TEXT_ADDR;
    h->stubs[CHIP_ESP32S3].text =
        (struct stub_segment){STUB_TEXT_ADDR, h->stub_text, sizeof(h->stub_text)};
    h->stubs[CHIP_ESP32S3].data =
        (struct stub_segment){STUB_DATA_ADDR, h->stub_data, sizeof(h->stub_data)};

    h->cfg.slot = 0;
    h->cfg.port = h->port_name;
    h->cfg.profiles = h->profiles;
    h->cfg.n_profiles = 1;
    h->cfg.stubs = h->stubs;
    h->cfg.mode = SESSION_FLASH;
    h->cfg.timeout_scale = test_timeout_scale();
    h->cfg.open_port = fake_port_open;
    return h;
}

/* Runs one board to its end: on_done exactly once, and only from the loop. */
static const struct report_device *harness_run(struct harness *h)
{
    struct es_err err;

    assert_int_equal(session_new(&h->loop, &h->cfg, &callbacks, h, &h->s, &err), 0);
    session_start(h->s);
    assert_int_equal(h->done_calls, 0);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(h->done_calls, 1);
    assert_int_equal(fake_port_is_open(h->b.fp), 0);
    return session_report(h->s);
}

static void harness_free(struct harness *h)
{
    session_free(h->s);
    fake_port_free(h->b.fp);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    if (h->b.zs_open)
        inflateEnd(&h->b.zs);
    if (h->have_prep)
        image_prepared_close(&h->prep);
    if (h->have_z)
        image_deflate_close(&h->z);
    free(h->b.flash);
    free(h->img.data);
    free(h);
}

static void assert_flash_holds_image(const struct harness *h)
{
    assert_memory_equal(h->b.flash + APP_OFFSET, h->img.data, APP_BYTES);
}

/* Blocks of the whole stream at the stub's block size divided by divisor. */
static int blocks_of_stream(const struct harness *h, uint32_t divisor)
{
    assert_true(h->have_z);
    return (int)rom_block_count((uint32_t)h->z.zsize,
                                chip_by_model(CHIP_ESP32S3)->stub_block_size / divisor);
}

/* ---- Tests ---- */

/* The whole life of a good board: every phase once, in order, and the image in flash. */
static void test_pass(void **state)
{
    static const enum session_phase want[] = {
        SESSION_PHASE_OPEN,     SESSION_PHASE_RESET, SESSION_PHASE_SYNC,   SESSION_PHASE_DETECT,
        SESSION_PHASE_IDENTIFY, SESSION_PHASE_STUB,  SESSION_PHASE_ATTACH, SESSION_PHASE_FLASH_ID,
        SESSION_PHASE_PLAN,     SESSION_PHASE_WRITE, SESSION_PHASE_VERIFY, SESSION_PHASE_RUN,
        SESSION_PHASE_DONE,
    };
    struct harness *h = harness_new();
    const struct report_device *rep;
    const struct fake_port_stats *st;

    (void)state;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_null(rep->error_phase);
    assert_int_equal(h->n_phases, (int)(sizeof(want) / sizeof(want[0])));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(h->phase_order[i], want[i]);
    assert_string_equal(rep->chip, "ESP32-S3");
    assert_true(rep->mac_valid);
    assert_memory_equal(rep->mac, board_mac, 6);
    assert_true(rep->flash_id_valid);
    assert_int_equal(rep->flash_id, FLASH_JEDEC);
    assert_int_equal(rep->flash_size_bytes, FLASH_BYTES);
    assert_int_equal(rep->loader, REPORT_LOADER_STUB);
    assert_int_equal(rep->connect_retries, 0);
    assert_int_equal(rep->block_retries, 0);
    assert_int_equal(rep->baud_fallbacks, 0);
    assert_int_equal(rep->baud, ROM_BAUD);
    assert_int_equal(rep->n_images, 1);
    assert_true(rep->images[0].verified);
    assert_int_equal(h->retry_notes, 0);
    assert_flash_holds_image(h);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, blocks_of_stream(h, 1));
    assert_true(blocks_of_stream(h, 1) >= 3);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 1);
    st = fake_port_stats(h->b.fp);
    assert_int_equal(st->opens, 1);
    assert_int_equal(st->closes, 1);
    assert_int_equal(st->dtr, 0); /* released after the run reset */
    assert_int_equal(st->rts, 0);
    assert_int_equal(h->b.resets, 2); /* into the loader, then into the firmware */
    harness_free(h);
}

/* A probe (a continuous line looking for the next board): connect, detect, identify, then the
 * board back into its firmware, and a pass with the MAC; no stub, no flash command, no write. */
static void test_probe(void **state)
{
    static const enum session_phase want[] = {
        SESSION_PHASE_OPEN,     SESSION_PHASE_RESET, SESSION_PHASE_SYNC, SESSION_PHASE_DETECT,
        SESSION_PHASE_IDENTIFY, SESSION_PHASE_RUN,   SESSION_PHASE_DONE,
    };
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->cfg.mode = SESSION_PROBE;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_true(rep->mac_valid);
    assert_memory_equal(rep->mac, board_mac, 6);
    assert_int_equal(h->n_phases, (int)(sizeof(want) / sizeof(want[0])));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(h->phase_order[i], want[i]);
    assert_int_equal(h->b.ops[ROM_OP_MEM_BEGIN].seen, 0);
    assert_int_equal(h->b.ops[ROM_OP_SPI_ATTACH].seen, 0);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].seen, 0);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, 0);
    assert_int_equal(h->b.resets, 2); /* into the loader, then back into the firmware */
    for (size_t i = 0; i < APP_BYTES; i++)
        assert_int_equal(h->b.flash[APP_OFFSET + i], 0xFF);
    harness_free(h);
}

/* The write window is one block: no FLASH_DEFL_DATA goes out before the reply to the previous
 * one has been read, also when the replies are slow. */
static void test_write_window(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.data_reply_delay_ms = 20;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, blocks_of_stream(h, 1));
    assert_int_equal(h->b.window_violations, 0);
    assert_int_equal(rep->block_retries, 0);
    assert_flash_holds_image(h);
    harness_free(h);
}

/* A block lost on the line: the stub is resynchronised, the image is written again from the last
 * restart point, once, and the flash ends up right. */
static void test_lost_block(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;
    int blocks;

    (void)state;
    h->b.drop_block_seq = 1;
    rep = harness_run(h);
    blocks = blocks_of_stream(h, 2); /* a failed block halves the block size */
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(rep->block_retries, 1);
    assert_int_equal(h->b.defl_begins, 2);
    /* Blocks 0 and 1 (lost), then the whole stream again from its only restart point. */
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, 2 + blocks);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 2); /* the connect, and the resync */
    assert_true(rep->images[0].verified);
    assert_int_equal(h->b.window_violations, 0);
    assert_flash_holds_image(h);
    harness_free(h);
}

/* A READ_REG answered only after the session gave up on it: the session starts over from reset,
 * the late reply (a value no eFuse holds) arrives meanwhile and is dropped, and the MAC is the
 * board's. */
static void test_late_reply_dropped(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.hold_reg = chip_by_model(CHIP_ESP32S3)->info_regs[0];
    rep = harness_run(h);
    assert_true(h->b.held_released);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(rep->connect_retries, 1);
    assert_true(rep->mac_valid);
    assert_memory_equal(rep->mac, board_mac, 6);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 2);
    assert_int_equal(h->b.resets, 3); /* two connects and the run reset */
    harness_free(h);
}

/* SYNC: five tries per reset, one reset per connection attempt (profile retries), then no_sync. */
static void test_retry_sync(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->profile.retries = 2;
    h->b.ops[ROM_OP_SYNC].silent = -1;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_NO_SYNC);
    assert_string_equal(rep->error_phase, "sync");
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 5 * 2);
    assert_int_equal(h->b.resets, 2);
    assert_int_equal(rep->connect_retries, 1); /* attempts beyond the first, as after a pass */
    assert_false(rep->mac_valid);
    assert_int_equal(rep->loader, REPORT_LOADER_NONE);
    harness_free(h);
}

/* SPI_ATTACH changes nothing when sent twice: three tries, then a timeout in attach. */
static void test_retry_attach(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.ops[ROM_OP_SPI_ATTACH].silent = -1;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_TIMEOUT);
    assert_string_equal(rep->error_phase, "attach");
    assert_int_equal(h->b.ops[ROM_OP_SPI_ATTACH].seen, 3);
    assert_int_equal(h->retry_notes, 2);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].seen, 0);
    harness_free(h);
}

/* An identity read is never asked again (a late reply could not be told from the new one's):
 * with no connection attempt left, one unanswered READ_REG fails the board. */
static void test_retry_identify_not_reasked(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->profile.retries = 1;
    h->b.hold_reg = chip_by_model(CHIP_ESP32S3)->info_regs[0];
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_TIMEOUT);
    assert_string_equal(rep->error_phase, "identify");
    /* The magic word once, the held eFuse word once: never a second time. */
    assert_int_equal(h->b.ops[ROM_OP_READ_REG].seen, 2);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 1);
    assert_false(rep->mac_valid);
    harness_free(h);
}

/* A read-back refused as damaged on the line (stub 0xC1, bad checksum) is sent again: twice
 * refused, the third try counts, and the board passes. */
static void test_retry_md5_refused(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.ops[ROM_OP_SPI_FLASH_MD5].refuse = 2;
    h->b.ops[ROM_OP_SPI_FLASH_MD5].refuse_error = STUB_ERR_BAD_CHECKSUM;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(h->b.ops[ROM_OP_SPI_FLASH_MD5].seen, 3);
    assert_int_equal(h->retry_notes, 2);
    assert_true(rep->images[0].verified);
    harness_free(h);
}

/* A refused block that is not a line error (the flash would not take it) restarts the write
 * each time at the same place: the board fails after BLOCK_RETRIES restarts there. */
static void test_retry_block_refused(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].refuse = 100;
    h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].refuse_error = 0x03; /* not a line error: §2.6 */
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_ROM_REFUSED);
    assert_string_equal(rep->error_phase, "write");
    /* The first try, then three restarts at the same place; the one after that fails. */
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].seen, 5);
    assert_int_equal(rep->block_retries, 5);
    harness_free(h);
}

/* The line cannot carry 921600: the probe at that rate is lost, the board is reset, and the
 * next lower standard rate is used. */
static void test_baud_fallback(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;
    const struct fake_port_stats *st;

    (void)state;
    h->profile.flash_baud = 921600;
    h->b.max_baud = BOARD_MAX_BAUD;
    rep = harness_run(h);
    st = fake_port_stats(h->b.fp);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(rep->baud_fallbacks, 1);
    assert_int_equal(rep->baud, BOARD_MAX_BAUD);
    assert_int_equal(st->baud, BOARD_MAX_BAUD);
    assert_int_equal(h->b.ops[ROM_OP_CHANGE_BAUDRATE].seen, 2);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 2);
    assert_int_equal(h->b.resets, 3); /* the connect, the fallback, the run reset */
    assert_flash_holds_image(h);
    harness_free(h);
}

/* Without reset lines a failed raise cannot be undone: the board fails with a message. */
static void test_baud_no_reset(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->profile.flash_baud = 921600;
    h->b.max_baud = BOARD_MAX_BAUD;
    fake_port_set_can_reset(h->b.fp, 0);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_BAUD);
    assert_string_equal(rep->error_phase, "baud");
    assert_int_equal(rep->baud_fallbacks, 0);
    assert_int_equal(h->b.resets, 0);
    harness_free(h);
}

/* The board is unplugged while the image is written: the port's error ends the session. */
static void test_unplugged(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->fail_port_in_write = 1;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_PORT_CLOSED);
    assert_string_equal(rep->error_phase, "write");
    harness_free(h);
}

/* A port that cannot be opened: a failed board, reported from the loop like any other. */
static void test_open_refused(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    fake_port_refuse_open(h->b.fp);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_PORT_OPEN);
    assert_string_equal(rep->error_phase, "open");
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 0);
    harness_free(h);
}

/* Interrupted before it started: on_done still comes from the loop, never from inside
 * session_interrupt, and session_start afterwards does nothing. */
static void test_interrupt_before_start(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;
    struct es_err err;

    (void)state;
    assert_int_equal(session_new(&h->loop, &h->cfg, &callbacks, h, &h->s, &err), 0);
    session_interrupt(h->s);
    assert_int_equal(h->done_calls, 0);
    session_start(h->s);
    session_interrupt(h->s);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(h->done_calls, 1);
    rep = session_report(h->s);
    assert_int_equal(rep->result, REPORT_INTERRUPTED);
    assert_int_equal(rep->error.code, ES_INTERRUPTED);
    assert_int_equal(fake_port_stats(h->b.fp)->opens, 0);
    harness_free(h);
}

/* SIGINT in any phase: the session ends as interrupted in that phase, on_done once, the port
 * closed, no handle left. Called from inside on_phase, the hardest place to stop. */
static void test_interrupt(void **state)
{
    enum session_phase phase = *(const enum session_phase *)*state;
    struct harness *h = harness_new();
    const struct report_device *rep;
    const struct fake_port_stats *st;

    h->profile.flash_baud = BOARD_MAX_BAUD; /* so that there is a baud phase */
    h->profile.erase = PROFILE_ERASE_ALL;   /* and an erase phase */
    h->interrupt_at = (int)phase;
    rep = harness_run(h);
    st = fake_port_stats(h->b.fp);
    assert_int_equal(h->phase_calls[phase], 1);
    assert_int_equal(h->phase_order[h->n_phases - 1], phase); /* nothing after it */
    assert_int_equal(rep->result, REPORT_INTERRUPTED);
    assert_int_equal(rep->error.code, ES_INTERRUPTED);
    assert_string_equal(rep->error_phase, session_phase_name(phase));
    assert_int_equal(st->opens, phase == SESSION_PHASE_OPEN ? 0 : 1);
    assert_int_equal(st->closes, st->opens);
    /* Once interrupted, the session touches the port no more. */
    assert_int_equal(st->set_lines_calls, h->at_interrupt.set_lines_calls);
    assert_int_equal(st->set_baud_calls, h->at_interrupt.set_baud_calls);
    assert_int_equal(st->flush_calls, h->at_interrupt.flush_calls);
    assert_int_equal(st->bytes_in, h->at_interrupt.bytes_in);
    harness_free(h);
}

static const enum session_phase interrupt_phases[] = {
    SESSION_PHASE_OPEN,     SESSION_PHASE_RESET, SESSION_PHASE_SYNC,  SESSION_PHASE_DETECT,
    SESSION_PHASE_IDENTIFY, SESSION_PHASE_STUB,  SESSION_PHASE_BAUD,  SESSION_PHASE_ATTACH,
    SESSION_PHASE_FLASH_ID, SESSION_PHASE_PLAN,  SESSION_PHASE_ERASE, SESSION_PHASE_WRITE,
    SESSION_PHASE_VERIFY,   SESSION_PHASE_RUN,
};

#define INTERRUPT_TEST(i) cmocka_unit_test_prestate(test_interrupt, (void *)&interrupt_phases[i])

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_write_window),
        cmocka_unit_test(test_lost_block),
        cmocka_unit_test(test_late_reply_dropped),
        cmocka_unit_test(test_retry_sync),
        cmocka_unit_test(test_retry_attach),
        cmocka_unit_test(test_retry_identify_not_reasked),
        cmocka_unit_test(test_retry_md5_refused),
        cmocka_unit_test(test_retry_block_refused),
        cmocka_unit_test(test_baud_fallback),
        cmocka_unit_test(test_baud_no_reset),
        cmocka_unit_test(test_unplugged),
        cmocka_unit_test(test_open_refused),
        cmocka_unit_test(test_interrupt_before_start),
        INTERRUPT_TEST(0),
        INTERRUPT_TEST(1),
        INTERRUPT_TEST(2),
        INTERRUPT_TEST(3),
        INTERRUPT_TEST(4),
        INTERRUPT_TEST(5),
        INTERRUPT_TEST(6),
        INTERRUPT_TEST(7),
        INTERRUPT_TEST(8),
        INTERRUPT_TEST(9),
        INTERRUPT_TEST(10),
        INTERRUPT_TEST(11),
        INTERRUPT_TEST(12),
        INTERRUPT_TEST(13),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
