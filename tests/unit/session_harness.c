/* The scripted board and the session side of the session tests: see session_harness.h. */
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
#include "es/le.h"
#include "es/rom.h"
#include "es/slip.h"
#include "session_harness.h"

/* The MAC the eFuse words MAC_LO and MAC_HI hold. */
const uint8_t board_mac[6] = {0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56};

/* ---- The responder ---- */

void board_set_reg(struct board *b, uint32_t addr, uint32_t value)
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
void board_reply(struct board *b, uint8_t op, uint32_t value, const uint8_t *data, size_t n,
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

void board_on_frame(struct fake_port *fp, const uint8_t *frame, size_t len, uint32_t baud,
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
    if (strcmp(what, "retry") == 0)
        h->retry_notes++;
    if (h->note_hook != NULL)
        h->note_hook(h, what, text);
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

const struct session_callbacks harness_callbacks = {on_phase, on_note, on_done, get_payload};

/* Timeouts are scaled down so that a test takes milliseconds of board time; sanitizer builds
 * slow everything down, as for the integration tests. */
static double test_timeout_scale(void)
{
    const char *m = getenv("ESPSTATION_TIMEOUT_MULTIPLIER");
    double k = m != NULL ? atof(m) : 1.0;

    return 0.05 * (k >= 1.0 ? k : 1.0);
}

struct harness *harness_new(void)
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
    fake_port_on_frame(h->b.fp, board_on_frame, &h->b);
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
const struct report_device *harness_run(struct harness *h)
{
    struct es_err err;

    assert_int_equal(session_new(&h->loop, &h->cfg, &harness_callbacks, h, &h->s, &err), 0);
    session_start(h->s);
    assert_int_equal(h->done_calls, 0);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(h->done_calls, 1);
    assert_int_equal(fake_port_is_open(h->b.fp), 0);
    return session_report(h->s);
}

void harness_free(struct harness *h)
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

void assert_flash_holds_image(const struct harness *h)
{
    assert_memory_equal(h->b.flash + APP_OFFSET, h->img.data, APP_BYTES);
}

/* Blocks of the whole stream at the stub's block size divided by divisor. */
int blocks_of_stream(const struct harness *h, uint32_t divisor)
{
    assert_true(h->have_z);
    return (int)rom_block_count((uint32_t)h->z.zsize,
                                chip_by_model(CHIP_ESP32S3)->stub_block_size / divisor);
}
