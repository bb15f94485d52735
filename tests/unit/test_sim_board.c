/* espsim's board model driven through board.h with a fake ops table that records every byte the
 * board puts on the line; replies are checked byte for byte against the protocol document's
 * vectors (§12) and its observed-ROM rules (§15). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "board.h"
#include "es/le.h"
#include "es/slip.h"
#include "flash.h"
#include "stubimg.h"

#define FLASH_SIZE (4u * 1024 * 1024)
#define MS         1000000ull

struct fake {
    uint8_t *out; /* every byte sent, in order */
    size_t n, cap;
    uint64_t last_not_before;
    uint32_t last_baud;
    uint64_t timer;
    int timer_set;
    int unplugged;
    uint64_t now;
    struct sim_board *b;
    uint8_t *flash;
    uint32_t host_baud;
    enum sim_chip cfg_chip;
};

static void on_send(void *ctx, const uint8_t *bytes, size_t n, uint64_t not_before_ns,
                    uint32_t baud)
{
    struct fake *f = ctx;

    if (f->n + n > f->cap) {
        f->cap = (f->n + n) * 2;
        f->out = realloc(f->out, f->cap);
        assert_non_null(f->out);
    }
    memcpy(f->out + f->n, bytes, n);
    f->n += n;
    assert_true(not_before_ns >= f->last_not_before); /* output stays in order */
    f->last_not_before = not_before_ns;
    f->last_baud = baud;
}

static void on_set_timer(void *ctx, uint64_t at_ns)
{
    struct fake *f = ctx;

    f->timer = at_ns;
    f->timer_set = 1;
}

static void on_unplug(void *ctx)
{
    ((struct fake *)ctx)->unplugged++;
}

static const struct sim_board_ops fake_ops = {on_send, on_set_timer, on_unplug, NULL};

/* Runs board time forward until nothing is pending. */
static void settle(struct fake *f)
{
    for (int i = 0; i < 100000 && f->timer_set; i++) {
        f->timer_set = 0;
        if (f->timer > f->now)
            f->now = f->timer;
        sim_board_on_timer(f->b, f->now);
    }
}

/* A board whose flash holds img at off before it powers on (img NULL: blank), with or without
 * the auto-reset circuit. */
static struct fake *fake_new_board(enum sim_chip chip, const struct sim_faults *faults,
                                   const struct sim_stub_images *stubs, int no_autoreset,
                                   const uint8_t *img, size_t img_len, uint32_t off)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sim_board_cfg cfg;
    struct es_err err;

    assert_non_null(f);
    f->flash = malloc(FLASH_SIZE);
    assert_non_null(f->flash);
    memset(f->flash, 0xFF, FLASH_SIZE);
    if (img != NULL)
        memcpy(f->flash + off, img, img_len);
    memset(&cfg, 0, sizeof(cfg));
    cfg.slot = 0;
    cfg.chip = chip;
    f->cfg_chip = chip;
    if (chip == SIM_ESP8266)
        memcpy(cfg.mac, "\x18\xfe\x34\xa1\xb2\xc3", 6);
    else
        memcpy(cfg.mac, "\x24\x0a\xc4\x12\x34\x56", 6);
    cfg.flash_id = 0x1640EF;
    cfg.flash = f->flash;
    cfg.flash_size = FLASH_SIZE;
    if (faults)
        cfg.faults = *faults;
    cfg.stubs = stubs;
    cfg.seed = 42;
    cfg.no_autoreset = no_autoreset;
    f->host_baud = 115200;
    f->b = sim_board_new(&cfg, &fake_ops, f, &err);
    assert_non_null(f->b);
    f->now = 1000;
    sim_board_start(f->b, f->now);
    if (!no_autoreset) {
        settle(f);
        return f;
    }
    /* A board booting its flash may never settle (fault boot-loop): give it 500 ms. */
    while (f->timer_set && f->timer <= 500 * MS) {
        f->timer_set = 0;
        if (f->timer > f->now)
            f->now = f->timer;
        sim_board_on_timer(f->b, f->now);
    }
    f->now = 500 * MS;
    return f;
}

static struct fake *fake_new(enum sim_chip chip, const struct sim_faults *faults,
                             const struct sim_stub_images *stubs)
{
    return fake_new_board(chip, faults, stubs, 0, NULL, 0, 0);
}

static void fake_free(struct fake *f)
{
    sim_board_free(f->b);
    free(f->out);
    free(f->flash);
    free(f);
}

/* Where text occurs in the output so far, or NULL. */
static const uint8_t *find_text(const struct fake *f, const char *text)
{
    size_t k = strlen(text);

    for (size_t i = 0; i + k <= f->n; i++)
        if (memcmp(f->out + i, text, k) == 0)
            return f->out + i;
    return NULL;
}

static void clear_out(struct fake *f)
{
    f->n = 0;
}

/* SLIP-encodes one request onto the end of wire (room: slip_encoded_max(8 + len)); returns
 * the bytes added. */
static size_t encode_request(uint8_t *wire, uint8_t op, const uint8_t *data, size_t len,
                             uint32_t chk)
{
    uint8_t *pkt = malloc(8 + len);
    size_t n;

    assert_non_null(pkt);
    pkt[0] = 0;
    pkt[1] = op;
    es_put_le16(pkt + 2, (uint16_t)len);
    es_put_le32(pkt + 4, chk);
    if (len)
        memcpy(pkt + 8, data, len);
    n = slip_encode(pkt, 8 + len, wire, slip_encoded_max(8 + len));
    free(pkt);
    return n;
}

/* Sends one request and lets the board finish answering it. */
static void request(struct fake *f, uint8_t op, const uint8_t *data, size_t len, uint32_t chk)
{
    uint8_t *wire = malloc(slip_encoded_max(8 + len));
    size_t n;

    assert_non_null(wire);
    n = encode_request(wire, op, data, len, chk);
    f->now += MS;
    sim_board_rx(f->b, wire, n, f->host_baud, f->now);
    settle(f);
    free(wire);
}

static void request_words(struct fake *f, uint8_t op, int nwords, ...)
{
    uint8_t data[64];
    va_list ap;

    va_start(ap, nwords);
    for (int i = 0; i < nwords; i++)
        es_put_le32(data + 4 * i, va_arg(ap, uint32_t));
    va_end(ap);
    request(f, op, data, 4 * (size_t)nwords, 0);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t s = 0xEF;

    for (size_t i = 0; i < n; i++)
        s ^= p[i];
    return s;
}

static void data_block(struct fake *f, uint8_t op, const uint8_t *data, uint32_t len, uint32_t seq)
{
    uint8_t *p = calloc(1, 16 + len);

    assert_non_null(p);
    es_put_le32(p, len);
    es_put_le32(p + 4, seq);
    memcpy(p + 16, data, len);
    request(f, op, p, 16 + len, checksum(data, len));
    free(p);
}

/* Frames decoded from everything the board sent since the last clear_out(). */
struct frames {
    int n;
    size_t len[64];
    uint8_t data[64][80];
};

static void collect(void *arg, const uint8_t *frame, size_t len)
{
    struct frames *fr = arg;

    if (fr->n < 64) {
        fr->len[fr->n] = len;
        memcpy(fr->data[fr->n], frame, len < 80 ? len : 80);
        fr->n++;
    }
}

static void decode(struct fake *f, struct frames *fr)
{
    static uint8_t buf[SLIP_MAX_FRAME];
    struct slip_decoder d;

    memset(fr, 0, sizeof(*fr));
    slip_decoder_init(&d, buf, sizeof(buf), collect, NULL, fr);
    slip_decoder_feed(&d, f->out, f->n);
    clear_out(f);
}

/* Exactly one reply frame, returned. */
static const uint8_t *one_reply(struct fake *f, size_t expect_len)
{
    static struct frames fr;

    decode(f, &fr);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.len[0], expect_len);
    return fr.data[0];
}

static void sync_board(struct fake *f)
{
    uint8_t s[36] = {0x07, 0x07, 0x12, 0x20};

    memset(s + 4, 0x55, 32);
    request(f, 0x08, s, sizeof(s), 0);
}

/* Status bytes in this board's replies: ROM 2 (ESP8266) or 4 (ESP32); the stub 2. */
static size_t slen(struct fake *f)
{
    struct sim_board_stats st;

    sim_board_stats(f->b, &st);
    return st.in_stub ? 2 : (f->flash && f->cfg_chip == SIM_ESP32 ? 4 : 2);
}

static uint32_t read_reg(struct fake *f, uint32_t addr)
{
    const uint8_t *r;

    clear_out(f);
    request_words(f, 0x0A, 1, addr);
    r = one_reply(f, 8 + slen(f));
    assert_int_equal(r[0], 0x01);
    assert_int_equal(r[1], 0x0A);
    assert_int_equal(r[8], 0x00);
    return es_get_le32(r + 4);
}

static void write_reg(struct fake *f, uint32_t addr, uint32_t value)
{
    const uint8_t *r;

    clear_out(f);
    request_words(f, 0x09, 4, addr, value, 0xFFFFFFFFu, 0u);
    r = one_reply(f, 8 + slen(f));
    assert_int_equal(r[1], 0x09);
    assert_int_equal(r[8], 0x00);
}

/* §7.5: RDID through the SPI controller, exactly as esptool drives it. */
static uint32_t read_flash_id(struct fake *f)
{
    int esp8266 = f->cfg_chip == SIM_ESP8266;
    uint32_t base = esp8266 ? 0x60000200u : 0x3FF42000u;
    uint32_t w0 = base + (esp8266 ? 0x40u : 0x80u);
    uint32_t usr = read_reg(f, base + 0x1C), usr2 = read_reg(f, base + 0x24), id;
    int i;

    if (esp8266)
        write_reg(f, base + 0x20, 0x00001700);
    else
        write_reg(f, base + 0x2C, 0x17);
    write_reg(f, base + 0x1C, 0x90000000);
    write_reg(f, base + 0x24, 0x7000009F);
    write_reg(f, w0, 0);
    write_reg(f, base, 0x00040000);
    for (i = 0; i < 10; i++)
        if ((read_reg(f, base) & 0x00040000) == 0)
            break;
    assert_true(i < 10);
    id = read_reg(f, w0);
    write_reg(f, base + 0x1C, usr);
    write_reg(f, base + 0x24, usr2);
    return id;
}

static void expect_status(struct fake *f, uint8_t op, uint8_t status, uint8_t error)
{
    const uint8_t *r = one_reply(f, 8 + slen(f));

    assert_int_equal(r[0], 0x01);
    assert_int_equal(r[1], op);
    assert_int_equal(es_get_le16(r + 2), slen(f));
    assert_int_equal(r[8], status);
    if (status)
        assert_int_equal(r[9], error);
}

/* V-1: eight identical replies, value = the SYNC payload's first word. */
static void test_sync_replies(void **state)
{
    static const uint8_t esp8266[] = {0x01, 0x08, 0x02, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00};
    static const uint8_t esp32[] = {0x01, 0x08, 0x04, 0x00, 0x07, 0x07,
                                    0x12, 0x20, 0x00, 0x00, 0x00, 0x00};
    struct frames fr;
    struct fake *f;

    (void)state;
    f = fake_new(SIM_ESP8266, NULL, NULL);
    clear_out(f);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(fr.len[i], sizeof(esp8266));
        assert_memory_equal(fr.data[i], esp8266, sizeof(esp8266));
    }
    fake_free(f);

    f = fake_new(SIM_ESP32, NULL, NULL);
    decode(f, &fr); /* boot text only: no frame */
    assert_int_equal(fr.n, 0);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(fr.len[i], sizeof(esp32));
        assert_memory_equal(fr.data[i], esp32, sizeof(esp32));
    }
    fake_free(f);
}

static void test_boot_text(void **state)
{
    struct fake *f;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    assert_non_null(find_text(f, "waiting for download"));
    assert_int_equal(f->last_baud, 115200);
    fake_free(f);
    /* ESP8266: 74880 baud text reaches a 115200 host as noise (§13.3) */
    f = fake_new(SIM_ESP8266, NULL, NULL);
    assert_true(f->n > 10);
    assert_null(find_text(f, "ets Jan"));
    assert_int_equal(f->last_baud, 74880);
    fake_free(f);
}

/* V-2 */
static void test_read_reg_magic(void **state)
{
    static const uint8_t v2_8266[] = {0x01, 0x0A, 0x02, 0x00, 0x01, 0xC1, 0xF0, 0xFF, 0x00, 0x00};
    static const uint8_t v2_32[] = {0x01, 0x0A, 0x04, 0x00, 0x83, 0x1D,
                                    0xF0, 0x00, 0x00, 0x00, 0x00, 0x00};
    struct fake *f;

    (void)state;
    f = fake_new(SIM_ESP8266, NULL, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x0A, 1, 0x40001000u);
    assert_memory_equal(one_reply(f, sizeof(v2_8266)), v2_8266, sizeof(v2_8266));
    fake_free(f);
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x0A, 1, 0x40001000u);
    assert_memory_equal(one_reply(f, sizeof(v2_32)), v2_32, sizeof(v2_32));
    fake_free(f);
}

/* §7.1/§7.2 decoding rules (V-13) give back the configured MAC; the UART divider gives the
 * crystal (§7.4). */
static void test_mac_registers(void **state)
{
    struct fake *f;
    uint32_t mac0, mac1, mac3, w1, w2, div;

    (void)state;
    f = fake_new(SIM_ESP8266, NULL, NULL);
    sync_board(f);
    mac0 = read_reg(f, 0x3FF00050);
    mac1 = read_reg(f, 0x3FF00054);
    mac3 = read_reg(f, 0x3FF0005C);
    assert_int_equal(mac3, 0);
    assert_int_equal((mac1 >> 16) & 0xFF, 0); /* OUI 18:fe:34 */
    assert_int_equal(mac1 & 0xFFFF, 0xA1B2);
    assert_int_equal(mac0 >> 24, 0xC3);
    assert_int_equal(mac0 & (1u << 4), 0); /* not an ESP8285 */
    div = read_reg(f, 0x60000014) & 0xFFFFF;
    assert_true(115200.0 * div / 1e6 / 2 > 25 && 115200.0 * div / 1e6 / 2 < 27);
    fake_free(f);

    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    w1 = read_reg(f, 0x3FF5A004);
    w2 = read_reg(f, 0x3FF5A008);
    assert_int_equal(w1, 0xC4123456);
    assert_int_equal(w2 & 0xFFFF, 0x240A);
    div = read_reg(f, 0x3FF40014) & 0xFFFFF;
    assert_true(115200.0 * div / 1e6 > 39 && 115200.0 * div / 1e6 < 41);
    /* revision 3: eFuse word 3 bit 15, word 5 bit 20, APB date bit 31 */
    assert_true(read_reg(f, 0x3FF5A00C) & (1u << 15));
    assert_true(read_reg(f, 0x3FF5A014) & (1u << 20));
    assert_true(read_reg(f, 0x3FF6607C) & (1u << 31));
    fake_free(f);
}

static void test_rdid(void **state)
{
    struct fake *f;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    assert_int_equal(read_flash_id(f), 0xFFFFFF); /* no SPI_ATTACH yet: nothing answers */
    clear_out(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    expect_status(f, 0x0D, 0, 0);
    assert_int_equal(read_flash_id(f), 0x1640EF);
    fake_free(f);

    f = fake_new(SIM_ESP8266, NULL, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x02, 4, 0u, 0u, 0x400u, 0u); /* FLASH_BEGIN(0,0) attaches (§3.8) */
    expect_status(f, 0x02, 0, 0);
    assert_int_equal(read_flash_id(f), 0x1640EF);
    fake_free(f);
}

static void fill_pattern(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

static void test_flash_write_esp32(void **state)
{
    uint8_t img[0x1000];
    struct fake *f;

    (void)state;
    fill_pattern(img, sizeof(img), 3);
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x02, 4, 0x1000u, 4u, 0x400u, 0x10000u);
    expect_status(f, 0x02, 1, 0x06); /* §13.5: FLASH_BEGIN before SPI_ATTACH */
    request_words(f, 0x0D, 2, 0u, 0u);
    clear_out(f);
    request_words(f, 0x02, 4, 0x1000u, 4u, 0x400u, 0x10000u);
    expect_status(f, 0x02, 0, 0);
    for (uint32_t i = 0; i < 4; i++) {
        data_block(f, 0x03, img + i * 0x400, 0x400, i);
        expect_status(f, 0x03, 0, 0);
    }
    assert_memory_equal(f->flash + 0x10000, img, sizeof(img));
    /* §15.1: unaligned offset and 5-word FLASH_BEGIN are refused */
    request_words(f, 0x02, 4, 0x1000u, 4u, 0x400u, 0x10800u);
    expect_status(f, 0x02, 1, 0x06);
    request_words(f, 0x02, 5, 0x1000u, 4u, 0x400u, 0x10000u, 0u);
    expect_status(f, 0x02, 1, 0x05);
    request_words(f, 0x02, 4, 0x10000u, 1u, 0x4000u, 0x20000u);
    expect_status(f, 0x02, 1, 0x05);
    fake_free(f);
}

/* §8.3's table: the ESP8266 ROM erases x + min(head, x) sectors for a request of x sectors. */
static void test_esp8266_erase_bug(void **state)
{
    static const struct {
        uint32_t offset, sent, erased;
    } cases[] = {
        {0x0, 0x1000, 2},      {0x0, 0x8000, 16},   {0x0, 0x30000, 64},   {0x3000, 0x1000, 2},
        {0x3000, 0x13000, 32}, {0xF000, 0x2000, 3}, {0x8000, 0x5000, 10},
    };

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct fake *f = fake_new(SIM_ESP8266, NULL, NULL);
        uint32_t end = cases[c].offset + cases[c].erased * 0x1000;

        memset(f->flash, 0x00, 0x80000);
        sync_board(f);
        clear_out(f);
        request_words(f, 0x02, 4, cases[c].sent, 1u, 0x400u, cases[c].offset);
        expect_status(f, 0x02, 0, 0);
        for (uint32_t a = cases[c].offset; a < end; a += 0x1000)
            assert_int_equal(f->flash[a + 0xFFF], 0xFF);
        assert_int_equal(f->flash[end], 0x00); /* the next sector is untouched */
        if (cases[c].offset)
            assert_int_equal(f->flash[cases[c].offset - 1], 0x00);
        fake_free(f);
    }
}

/* §15: a bad checksum gets 01 07 and still advances the sequence: the retry gets 01 05, seq+1 is
 * taken and lands where the refused block should have (running write pointer). */
static void test_bad_checksum_then_retry(void **state)
{
    uint8_t blk[0x400];
    uint8_t pkt[16 + 0x400];
    struct fake *f;

    (void)state;
    fill_pattern(blk, sizeof(blk), 9);
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    request_words(f, 0x02, 4, 0x800u, 2u, 0x400u, 0x20000u);
    clear_out(f);
    memset(pkt, 0, 16);
    es_put_le32(pkt, 0x400);
    memcpy(pkt + 16, blk, sizeof(blk));
    request(f, 0x03, pkt, sizeof(pkt), checksum(blk, sizeof(blk)) ^ 0x5A);
    expect_status(f, 0x03, 1, 0x07);
    data_block(f, 0x03, blk, 0x400, 0); /* same sequence: refused */
    expect_status(f, 0x03, 1, 0x05);
    data_block(f, 0x03, blk, 0x400, 1);
    expect_status(f, 0x03, 0, 0);
    assert_memory_equal(f->flash + 0x20000, blk, sizeof(blk));
    /* a short block (length < block size) is refused too */
    data_block(f, 0x03, blk, 0x200, 2);
    expect_status(f, 0x03, 1, 0x05);
    fake_free(f);
}

/* V-7: SPI_FLASH_MD5 of 4 KiB of 0xFF at 0x1000, 32 lowercase hex digits + 4 status bytes. */
static void test_rom_md5(void **state)
{
    static const char want[] = "6ae59e64850377ee5470c854761551ea";
    struct fake *f;
    const uint8_t *r;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    clear_out(f);
    request_words(f, 0x13, 4, 0x1000u, 0x1000u, 0u, 0u);
    r = one_reply(f, 44);
    assert_int_equal(r[1], 0x13);
    assert_int_equal(es_get_le16(r + 2), 0x24);
    assert_memory_equal(r + 8, want, 32);
    assert_int_equal(r[40], 0x00);
    /* past the end of the flash: 01 09 */
    request_words(f, 0x13, 4, FLASH_SIZE - 0x800, 0x1000u, 0u, 0u);
    r = one_reply(f, 44);
    assert_int_equal(r[40], 0x01);
    assert_int_equal(r[41], 0x09);
    fake_free(f);

    f = fake_new(SIM_ESP8266, NULL, NULL); /* no MD5 in the ESP8266 ROM */
    sync_board(f);
    clear_out(f);
    request_words(f, 0x13, 4, 0x1000u, 0x1000u, 0u, 0u);
    expect_status(f, 0x08, 1, 0x05);
    fake_free(f);
}

/* §15.1/§15.2: one 01 05 reply with the op and value left over from the previous reply; the
 * error byte then stays stale on success. */
static void test_unsupported_ops(void **state)
{
    struct fake *f;
    const uint8_t *r;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    (void)read_reg(f, 0x40001000);
    clear_out(f);
    request(f, 0x14, NULL, 0, 0); /* GET_SECURITY_INFO */
    r = one_reply(f, 12);
    assert_int_equal(r[1], 0x0A);
    assert_int_equal(es_get_le32(r + 4), 0x00F01D83);
    assert_int_equal(r[8], 0x01);
    assert_int_equal(r[9], 0x05);
    clear_out(f);
    request_words(f, 0x0A, 1, 0x40001000u);
    r = one_reply(f, 12);
    assert_int_equal(r[8], 0x00);
    assert_int_equal(r[9], 0x05); /* stale error byte on success */
    clear_out(f);
    request(f, 0xD0, NULL, 0, 0); /* stub-only ERASE_FLASH */
    expect_status(f, 0x0A, 1, 0x05);
    fake_free(f);

    f = fake_new(SIM_ESP8266, NULL, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x0F, 2, 921600u, 0u); /* CHANGE_BAUDRATE: not in this ROM */
    r = one_reply(f, 10);
    assert_int_equal(r[1], 0x08);
    assert_int_equal(es_get_le32(r + 4), 0x20120707);
    assert_int_equal(r[8], 0x01);
    assert_int_equal(r[9], 0x05);
    fake_free(f);
}

static size_t zcompress(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    uLongf len = (uLongf)cap;

    assert_int_equal(compress2(out, &len, in, (uLong)n, 9), Z_OK);
    return (size_t)len;
}

static void test_deflate_write(void **state)
{
    static uint8_t img[0x3000], z[0x4000];
    struct fake *f;
    size_t zn, off;
    uint32_t seq = 0, blocks;

    (void)state;
    for (size_t i = 0; i < sizeof(img); i++)
        img[i] = (uint8_t)((i / 64) ^ (i % 13));
    zn = zcompress(img, sizeof(img), z, sizeof(z));
    blocks = (uint32_t)((zn + 0x3FF) / 0x400);
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    clear_out(f);
    request_words(f, 0x10, 4, 0x3000u, blocks, 0x400u, 0x30000u);
    expect_status(f, 0x10, 0, 0);
    for (off = 0; off < zn; off += 0x400) {
        size_t n = zn - off < 0x400 ? zn - off : 0x400;

        data_block(f, 0x11, z + off, (uint32_t)n, seq++);
        expect_status(f, 0x11, 0, 0);
    }
    request_words(f, 0x12, 1, 1u);
    expect_status(f, 0x12, 0, 0); /* §15.1: stays in the loader */
    assert_memory_equal(f->flash + 0x30000, img, sizeof(img));
    (void)read_reg(f, 0x40001000);

    /* a damaged Adler-32 trailer: 01 0C on the DATA packet */
    assert_in_range(zn, 1, sizeof(z));
    if (zn >= 1 && zn <= sizeof(z)) /* (for the compiler's bounds check) */
        z[zn - 1] ^= 0xFF;
    request_words(f, 0x10, 4, 0x3000u, 1u, 0x4000u, 0x30000u);
    expect_status(f, 0x10, 1, 0x05); /* ROM blocks are at most 0x1000 [model] */
    request_words(f, 0x10, 4, 0x3000u, blocks, 0x400u, 0x30000u);
    expect_status(f, 0x10, 0, 0);
    seq = 0;
    for (off = 0; off < zn; off += 0x400) {
        size_t n = zn - off < 0x400 ? zn - off : 0x400;

        data_block(f, 0x11, z + off, (uint32_t)n, seq++);
        if (off + n < zn)
            expect_status(f, 0x11, 0, 0);
        else
            expect_status(f, 0x11, 1, 0x0C);
    }
    fake_free(f);
}

/* esptool-js's stub JSON files, which tools/setup-deps.sh installs: a test that needs them fails
 * without them rather than skipping, so a green run always includes the stub tests. */
static int load_stubs(struct sim_stub_images *s)
{
    struct es_err err;

    if (sim_stub_images_load(s, SIM_TEST_STUB_DIR, &err) == 0)
        return 0;
    print_error("%s\n", err.msg);
    return -1;
}

static void upload_segment(struct fake *f, uint32_t addr, const uint8_t *p, size_t n)
{
    uint32_t blocks = (uint32_t)((n + 0x17FF) / 0x1800);

    clear_out(f);
    request_words(f, 0x05, 4, (uint32_t)n, blocks, 0x1800u, addr);
    expect_status(f, 0x05, 0, 0);
    for (uint32_t s = 0; s < blocks; s++) {
        size_t len = n - s * 0x1800 < 0x1800 ? n - s * 0x1800 : 0x1800;

        data_block(f, 0x07, p + s * 0x1800, (uint32_t)len, s);
        expect_status(f, 0x07, 0, 0);
    }
}

/* Uploads the stub as esptool-js does; returns the frames after MEM_END. */
static void upload_stub(struct fake *f, const struct sim_stub_image *img, uint32_t entry,
                        struct frames *fr)
{
    upload_segment(f, img->text_start, img->text, img->text_len);
    if (img->data_len)
        upload_segment(f, img->data_start, img->data, img->data_len);
    clear_out(f);
    request_words(f, 0x06, 2, 0u, entry);
    decode(f, fr);
}

static void test_stub_upload_and_md5(void **state)
{
    static const uint8_t ohai[] = {'O', 'H', 'A', 'I'};
    static const uint8_t v7_stub[] = {0x01, 0x13, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6A,
                                      0xE5, 0x9E, 0x64, 0x85, 0x03, 0x77, 0xEE, 0x54, 0x70,
                                      0xC8, 0x54, 0x76, 0x15, 0x51, 0xEA, 0x00, 0x00};
    static const uint8_t v1_stub[] = {0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    struct sim_stub_images stubs;
    struct frames fr;
    struct fake *f;

    (void)state;
    assert_int_equal(load_stubs(&stubs), 0); /* tools/setup-deps.sh installs them */
    for (int chip = SIM_ESP8266; chip <= SIM_ESP32; chip++) {
        const struct sim_stub_image *img = &stubs.chip[chip];
        struct sim_board_stats st;

        f = fake_new((enum sim_chip)chip, NULL, &stubs);
        sync_board(f);
        upload_stub(f, img, img->entry, &fr);
        assert_int_equal(fr.n, 2); /* the MEM_END reply, then OHAI */
        assert_int_equal(fr.data[0][1], 0x06);
        assert_int_equal(fr.len[1], 4);
        assert_memory_equal(fr.data[1], ohai, 4);
        sim_board_stats(f->b, &st);
        assert_int_equal(st.in_stub, 1);
        sync_board(f);
        decode(f, &fr);
        assert_int_equal(fr.n, 8);
        assert_memory_equal(fr.data[0], v1_stub, sizeof(v1_stub));
        clear_out(f);
        request_words(f, 0x13, 4, 0x1000u, 0x1000u, 0u, 0u);
        assert_memory_equal(one_reply(f, sizeof(v7_stub)), v7_stub, sizeof(v7_stub));
        /* RDID works in the stub without SPI_ATTACH (esptool-js never sends one) */
        assert_int_equal(read_flash_id(f), 0x1640EF);
        fake_free(f);
    }
    /* an entry point outside every uploaded segment: no known stub, nothing answers any more */
    f = fake_new(SIM_ESP32, NULL, &stubs);
    sync_board(f);
    upload_stub(f, &stubs.chip[SIM_ESP32], 0x40080000u, &fr);
    assert_int_equal(fr.n, 1);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 0);
    fake_free(f);
    sim_stub_images_close(&stubs);
}

static void fill_noise(uint8_t *p, size_t n)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 32);
    }
}

/* Hands the board n wire bytes as a UART at the host's rate delivers them back to back: the
 * last one arrives line time after the first, and that is when the board sees them. */
static void send_wire(struct fake *f, const uint8_t *wire, size_t n)
{
    f->now += (uint64_t)n * 10u * 1000000000u / f->host_baud;
    sim_board_rx(f->b, wire, n, f->host_baud, f->now);
    settle(f);
}

/* The data block header (length, sequence, two zero words) and payload of FLASH_DEFL_DATA. */
static size_t defl_block(uint8_t *p, const uint8_t *data, uint32_t len, uint32_t seq)
{
    memset(p, 0, 16);
    es_put_le32(p, len);
    es_put_le32(p + 4, seq);
    memcpy(p + 16, data, len);
    return 16 + (size_t)len;
}

/* A stub running at 921600 with a compressed write of z (zn bytes, inflating to size) begun at
 * 0x10000 in 0x4000-byte blocks. */
static void stub_write_at_921600(struct fake *f, const struct sim_stub_image *img, size_t size,
                                 size_t zn)
{
    struct frames fr;

    sync_board(f);
    upload_stub(f, img, img->entry, &fr);
    assert_int_equal(fr.n, 2); /* the MEM_END reply, then OHAI */
    clear_out(f);
    request_words(f, 0x0F, 2, 921600u, 115200u);
    expect_status(f, 0x0F, 0, 0);
    f->host_baud = 921600;
    request_words(f, 0x10, 4, (uint32_t)size, (uint32_t)((zn + 0x3FFF) / 0x4000), 0x4000u,
                  0x10000u);
    expect_status(f, 0x10, 0, 0);
}

/* Issue 10: the esp-flasher-stub build espstation ships (esptool-js 0.7.0) answers a block only
 * after writing it and reads nothing meanwhile, beyond its 128-byte UART FIFO. Two blocks sent
 * back to back at 921600: the first is answered, the second loses everything past its first 128
 * bytes, its closing 0xC0 included, so the stub sits inside a broken frame; a FLASH_DEFL_BEGIN
 * sent then only ends that frame (the stub answers the broken block, not the BEGIN), and the next
 * one is lost whole. A lone 0xC0 brings the stub back. As seen on the real ROM and stub. */
static void test_stub_single_buffer_loses_second_block(void **state)
{
    static uint8_t img[0x10000], z[0x12000], wire[2 * (0x4000 + 64) * 2 + 64];
    static uint8_t blk[16 + 0x4000];
    struct sim_stub_images stubs;
    struct frames fr;
    struct fake *f;
    size_t zn, n = 0;

    (void)state;
    assert_int_equal(load_stubs(&stubs), 0);
    fill_noise(img, sizeof(img)); /* incompressible: a block inflates to ~16 KiB */
    zn = zcompress(img, sizeof(img), z, sizeof(z));
    assert_true(zn > 0x8000);
    f = fake_new(SIM_ESP32, NULL, &stubs);
    stub_write_at_921600(f, &stubs.chip[SIM_ESP32], sizeof(img), zn);
    n += encode_request(wire + n, 0x11, blk, defl_block(blk, z, 0x4000, 0), checksum(z, 0x4000));
    n += encode_request(wire + n, 0x11, blk, defl_block(blk, z + 0x4000, 0x4000, 1),
                        checksum(z + 0x4000, 0x4000));
    send_wire(f, wire, n);
    decode(f, &fr);
    assert_int_equal(fr.n, 1); /* block 0 answered, block 1 not at all */
    assert_int_equal(fr.data[0][1], 0x11);
    assert_int_equal(fr.data[0][8], 0x00);
    /* Restart: DEFL_BEGIN ends the broken frame, which is answered as a bad block ... */
    request_words(f, 0x10, 4, (uint32_t)sizeof(img), 5u, 0x4000u, 0x10000u);
    decode(f, &fr);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.data[0][1], 0x11);
    assert_int_equal(fr.data[0][8], 0xC0); /* bad data length: 127 bytes of a 16 KiB block */
    /* ... and the next BEGIN goes unanswered: its first 0xC0 ends an empty frame. */
    request_words(f, 0x10, 4, (uint32_t)sizeof(img), 5u, 0x4000u, 0x10000u);
    decode(f, &fr);
    assert_int_equal(fr.n, 0);
    /* One lone 0xC0, and the stub listens again. */
    send_wire(f, (const uint8_t *)"\xC0", 1);
    request_words(f, 0x10, 4, (uint32_t)sizeof(img), 5u, 0x4000u, 0x10000u);
    expect_status(f, 0x10, 0, 0);
    /* One block at a time is always fine. */
    for (uint32_t seq = 0; seq * 0x4000u < zn; seq++) {
        uint32_t len = (uint32_t)(zn - seq * 0x4000u < 0x4000 ? zn - seq * 0x4000u : 0x4000);

        data_block(f, 0x11, z + seq * 0x4000u, len, seq);
        expect_status(f, 0x11, 0, 0);
    }
    assert_memory_equal(f->flash + 0x10000, img, sizeof(img));
    fake_free(f);
    sim_stub_images_close(&stubs);
}

/* The legacy stub (esptool-js 0.6.1 and older) drains its FIFO into a second buffer and answers
 * a block before writing it: the same two blocks back to back are both taken. espsim tells the
 * families apart by where the code is loaded (0x400BE000 for the legacy ESP32 stub). */
static void test_stub_legacy_takes_second_block(void **state)
{
    static uint8_t img[0x10000], z[0x12000], wire[2 * (0x4000 + 64) * 2 + 64];
    static uint8_t blk[16 + 0x4000], code[0x800];
    struct sim_stub_image legacy = {0};
    struct frames fr;
    struct fake *f;
    size_t zn, n = 0;

    (void)state;
    fill_noise(img, sizeof(img));
    zn = zcompress(img, sizeof(img), z, sizeof(z));
    fill_pattern(code, sizeof(code), 9);
    legacy.present = 1;
    legacy.text = code;
    legacy.text_len = sizeof(code);
    legacy.text_start = 0x400BE000;
    legacy.entry = 0x400BE5EC;
    f = fake_new(SIM_ESP32, NULL, NULL);
    stub_write_at_921600(f, &legacy, sizeof(img), zn);
    n += encode_request(wire + n, 0x11, blk, defl_block(blk, z, 0x4000, 0), checksum(z, 0x4000));
    n += encode_request(wire + n, 0x11, blk, defl_block(blk, z + 0x4000, 0x4000, 1),
                        checksum(z + 0x4000, 0x4000));
    send_wire(f, wire, n);
    decode(f, &fr);
    assert_int_equal(fr.n, 2);
    assert_int_equal(fr.data[0][8], 0x00);
    assert_int_equal(fr.data[1][8], 0x00);
    assert_memory_equal(f->flash + 0x10000, img, 0x7000); /* most of what 32 KiB inflates to */
    fake_free(f);
}

/* esptool-js's stub write: DEFL_BEGIN(4 words), 0x4000-byte DEFL_DATA, DEFL_END(1), raw MD5; and
 * uncompressed FLASH_DATA whose padded last block is cut to the announced size. */
static void test_stub_writes(void **state)
{
    static uint8_t img[0x5800], z[0x8000];
    struct sim_stub_images stubs;
    uint8_t want[16];
    struct sim_md5 m;
    struct frames fr;
    struct fake *f;
    size_t zn;
    const uint8_t *r;

    (void)state;
    assert_int_equal(load_stubs(&stubs), 0); /* tools/setup-deps.sh installs them */
    fill_pattern(img, sizeof(img), 77);
    zn = zcompress(img, sizeof(img), z, sizeof(z));
    f = fake_new(SIM_ESP32, NULL, &stubs);
    sync_board(f);
    upload_stub(f, &stubs.chip[SIM_ESP32], stubs.chip[SIM_ESP32].entry, &fr);
    memset(f->flash + 0x10000, 0x00, 0x8000);
    clear_out(f);
    request_words(f, 0x10, 4, (uint32_t)sizeof(img), (uint32_t)((zn + 0x3FFF) / 0x4000), 0x4000u,
                  0x10000u);
    r = one_reply(f, 10);
    assert_int_equal(r[1], 0x10);
    assert_int_equal(r[8], 0x00);
    for (size_t off = 0, seq = 0; off < zn; off += 0x4000, seq++) {
        size_t n = zn - off < 0x4000 ? zn - off : 0x4000;

        data_block(f, 0x11, z + off, (uint32_t)n, (uint32_t)seq);
        r = one_reply(f, 10);
        assert_int_equal(r[8], 0x00);
    }
    request_words(f, 0x12, 1, 1u);
    r = one_reply(f, 10);
    assert_int_equal(r[8], 0x00);
    assert_memory_equal(f->flash + 0x10000, img, sizeof(img));
    assert_int_equal(f->flash[0x10000 + sizeof(img)], 0xFF); /* erased to the sector end */
    assert_int_equal(f->flash[0x16000], 0x00);               /* and not further */
    sim_md5_init(&m);
    sim_md5_update(&m, img, sizeof(img));
    sim_md5_final(&m, want);
    request_words(f, 0x13, 4, 0x10000u, (uint32_t)sizeof(img), 0u, 0u);
    r = one_reply(f, 8 + 16 + 2);
    assert_memory_equal(r + 8, want, 16);

    /* uncompressed: 0x4100 bytes in two padded 0x4000 blocks */
    request_words(f, 0x02, 4, 0x4100u, 2u, 0x4000u, 0x40000u);
    r = one_reply(f, 10);
    assert_int_equal(r[8], 0x00);
    {
        static uint8_t blk[0x4000];

        memcpy(blk, img, 0x4000);
        data_block(f, 0x03, blk, 0x4000, 0);
        assert_int_equal(one_reply(f, 10)[8], 0x00);
        memset(blk, 0xFF, sizeof(blk));
        memcpy(blk, img + 0x4000, 0x100);
        data_block(f, 0x03, blk, 0x4000, 1);
        assert_int_equal(one_reply(f, 10)[8], 0x00);
    }
    request_words(f, 0x04, 1, 1u);
    assert_int_equal(one_reply(f, 10)[8], 0x00);
    assert_memory_equal(f->flash + 0x40000, img, 0x4100);
    /* FLASH_END with data missing: C8 */
    request_words(f, 0x02, 4, 0x4100u, 2u, 0x4000u, 0x50000u);
    (void)one_reply(f, 10);
    request_words(f, 0x04, 1, 1u);
    assert_int_equal(one_reply(f, 10)[8], 0xC8);
    /* DATA without BEGIN: C6; bad checksum: C1 */
    data_block(f, 0x03, img, 0x400, 0);
    assert_int_equal(one_reply(f, 10)[8], 0xC6);
    fake_free(f);
    sim_stub_images_close(&stubs);
}

/* esptool-js 0.7.0 on ESP8266 writes the RDID length to CMD (offset 0) and never sets USR1; the
 * loader's own reads left USR1's MISO length long enough (interop finding). */
static void test_rdid_esptool_js_esp8266(void **state)
{
    struct sim_stub_images stubs;
    struct frames fr;
    struct fake *f;

    (void)state;
    assert_int_equal(load_stubs(&stubs), 0); /* tools/setup-deps.sh installs them */
    f = fake_new(SIM_ESP8266, NULL, &stubs);
    f->host_baud = 0; /* over TCP */
    sync_board(f);
    upload_stub(f, &stubs.chip[SIM_ESP8266], stubs.chip[SIM_ESP8266].entry, &fr);
    assert_int_equal(fr.n, 2);
    write_reg(f, 0x60000200, 23);
    write_reg(f, 0x6000021C, 0x90000000);
    write_reg(f, 0x60000224, 0x7000009F);
    write_reg(f, 0x60000240, 0);
    write_reg(f, 0x60000200, 0x00040000);
    while (read_reg(f, 0x60000200) & 0x00040000)
        ;
    assert_int_equal(read_reg(f, 0x60000240), 0x1640EF);
    /* stub CHANGE_BAUDRATE with the right current rate over TCP keeps talking */
    clear_out(f);
    request_words(f, 0x0F, 2, 921600u, 115200u);
    assert_int_equal(one_reply(f, 10)[8], 0x00);
    assert_int_equal(read_reg(f, 0x40001000), 0xFFF0C101);
    /* a 0 "current baud" breaks the legacy stub's divider (§3.10) */
    clear_out(f);
    request_words(f, 0x0F, 2, 460800u, 0u);
    assert_int_equal(one_reply(f, 10)[8], 0x00);
    request_words(f, 0x0A, 1, 0x40001000u);
    decode(f, &fr);
    for (int i = 0; i < fr.n; i++)
        assert_false(fr.len[i] == 10 && fr.data[i][1] == 0x0A);
    fake_free(f);
    sim_stub_images_close(&stubs);
}

static void test_stub_read_flash(void **state)
{
    struct sim_stub_images stubs;
    struct frames fr;
    struct fake *f;
    uint8_t ack[4];
    uint8_t wire[16];
    size_t n;
    uint32_t got = 0;

    (void)state;
    assert_int_equal(load_stubs(&stubs), 0); /* tools/setup-deps.sh installs them */
    f = fake_new(SIM_ESP8266, NULL, &stubs);
    sync_board(f);
    upload_stub(f, &stubs.chip[SIM_ESP8266], stubs.chip[SIM_ESP8266].entry, &fr);
    fill_pattern(f->flash + 0x2000, 0x80, 5);
    clear_out(f);
    /* 0x80 bytes in 0x20-byte packets, 2 in flight */
    request_words(f, 0xD2, 4, 0x2000u, 0x80u, 0x20u, 2u);
    decode(f, &fr);
    assert_int_equal(fr.n, 3); /* the reply, then a window of 2 packets */
    assert_int_equal(fr.data[0][1], 0xD2);
    assert_int_equal(fr.len[1], 0x20);
    assert_memory_equal(fr.data[1], f->flash + 0x2000, 0x20);
    got = 0x40;
    while (got < 0x80) {
        es_put_le32(ack, got);
        n = slip_encode(ack, 4, wire, sizeof(wire));
        f->now += MS;
        sim_board_rx(f->b, wire, n, 115200, f->now);
        settle(f);
        decode(f, &fr);
        assert_true(fr.n >= 1);
        got += (uint32_t)(fr.n * 0x20);
        if (got >= 0x80)
            break;
    }
    es_put_le32(ack, 0x80);
    n = slip_encode(ack, 4, wire, sizeof(wire));
    sim_board_rx(f->b, wire, n, 115200, f->now);
    settle(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.len[0], 16); /* the MD5 of what was read */
    {
        uint8_t want[16];

        sim_flash_md5(&(struct sim_flash){f->flash, FLASH_SIZE, 0, 0, 0, 0}, 0x2000, 0x80, want);
        assert_memory_equal(fr.data[0], want, 16);
    }
    fake_free(f);
    sim_stub_images_close(&stubs);
}

/* Runs board time forward by ns, firing the board's timers on the way (a boot-loop never
 * settles). */
static void advance(struct fake *f, uint64_t ns)
{
    uint64_t target = f->now + ns;

    while (f->timer_set && f->timer <= target) {
        f->timer_set = 0;
        if (f->timer > f->now)
            f->now = f->timer;
        sim_board_on_timer(f->b, f->now);
    }
    f->now = target;
}

/* Lets after_ns of board time pass (firing the board's timers on the way), then changes the
 * lines, as the shell does. */
static void lines(struct fake *f, int dtr, int rts, uint64_t after_ns)
{
    advance(f, after_ns);
    sim_board_set_lines(f->b, dtr, rts, f->now);
}

/* V-9's ESP32 image (checksum 0xCD, entry 0x40080000), for flash boot. */
static const uint8_t esp32_image[48] = {
    0xe9, 0x01, 0x00, 0x1f, 0x00, 0x00, 0x08, 0x40, 0xee, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xfb, 0x3f, 0x04, 0x00, 0x00, 0x00,
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcd};

static void test_reset_lines(void **state)
{
    struct frames fr;
    struct fake *f;
    struct sim_board_stats st;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    memcpy(f->flash + 0x1000, esp32_image, sizeof(esp32_image));
    /* hard reset: RTS pulse, GPIO0 high -> flash boot and the application runs */
    clear_out(f);
    lines(f, 0, 1, MS);
    lines(f, 0, 0, 100 * MS);
    settle(f);
    assert_non_null(find_text(f, "boot:0x13 (SPI_FAST_FLASH_BOOT)"));
    assert_non_null(find_text(f, "espsim app: image ok, entry 0x40080000"));
    sim_board_stats(f->b, &st);
    assert_int_equal(st.app_running, 1);
    clear_out(f);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 0); /* the application does not speak the protocol */

    /* classic reset, lines changed one at a time: DTR=1 while EN rises -> download mode */
    lines(f, 0, 1, MS);
    lines(f, 1, 1, 100 * MS);
    lines(f, 1, 0, 10000);
    lines(f, 0, 0, 50 * MS); /* GPIO0 released after the 5 ms filter: still download */
    settle(f);
    assert_non_null(find_text(f, "waiting for download"));
    clear_out(f);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);

    /* both lines asserted (port open) does nothing; a 2 ms EN glitch does not boot either */
    lines(f, 1, 1, MS);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);
    lines(f, 0, 1, MS);
    lines(f, 0, 0, 10 * MS);
    lines(f, 0, 1, 2 * MS);
    settle(f);
    sim_board_stats(f->b, &st);
    assert_int_equal(st.app_running, 0);
    assert_int_equal(f->n, 0);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 0); /* held in reset */
    fake_free(f);
}

static void test_flash_end(void **state)
{
    struct frames fr;
    struct fake *f;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    memcpy(f->flash + 0x1000, esp32_image, sizeof(esp32_image));
    sync_board(f);
    clear_out(f);
    request_words(f, 0x04, 1, 0u); /* FLASH_END(0): reboot into the loader */
    assert_non_null(find_text(f, "rst:0xc (SW_CPU_RESET)"));
    clear_out(f);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);
    request_words(f, 0x04, 1, 1u); /* FLASH_END(1): run the application */
    assert_non_null(find_text(f, "espsim app: image ok"));
    fake_free(f);
}

static void test_fault_no_download_and_sync_after(void **state)
{
    struct sim_faults fl = {0};
    struct frames fr;
    struct fake *f;

    (void)state;
    fl.no_download = 1;
    f = fake_new(SIM_ESP32, &fl, NULL);
    assert_non_null(find_text(f, "invalid header: 0xffffffff"));
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 0);
    fake_free(f);

    memset(&fl, 0, sizeof(fl));
    fl.sync_after = 2;
    f = fake_new(SIM_ESP8266, &fl, NULL);
    clear_out(f);
    for (int round = 0; round < 2; round++) {
        sync_board(f);
        sync_board(f);
        decode(f, &fr);
        assert_int_equal(fr.n, 0);
        sync_board(f);
        decode(f, &fr);
        assert_int_equal(fr.n, 8);
        /* a reset into download mode starts the count again */
        lines(f, 0, 1, MS);
        lines(f, 1, 0, 100 * MS);
        lines(f, 0, 0, 50 * MS);
        settle(f);
        clear_out(f);
    }
    fake_free(f);
}

static void rom_write_setup(struct fake *f, uint32_t blocks, uint32_t offset)
{
    sync_board(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    clear_out(f);
    request_words(f, 0x02, 4, blocks * 0x400, blocks, 0x400u, offset);
    expect_status(f, 0x02, 0, 0);
}

static void test_fault_unplug(void **state)
{
    struct sim_faults fl = {0};
    uint8_t blk[0x400];
    struct fake *f;

    (void)state;
    fill_pattern(blk, sizeof(blk), 1);
    fl.unplug_at_percent = 50;
    f = fake_new(SIM_ESP32, &fl, NULL);
    rom_write_setup(f, 4, 0x10000);
    data_block(f, 0x03, blk, 0x400, 0);
    expect_status(f, 0x03, 0, 0);
    assert_int_equal(f->unplugged, 0);
    data_block(f, 0x03, blk, 0x400, 1);
    assert_int_equal(f->unplugged, 1);
    assert_int_equal(f->n, 0); /* no reply to the block that crossed 50 % */
    sync_board(f);
    assert_int_equal(f->n, 0);
    fake_free(f);
}

static void test_fault_corrupt(void **state)
{
    struct sim_faults fl = {0};
    struct frames fr;
    struct fake *f;
    int good = 0;

    (void)state;
    fl.corrupt_rate = 0.05;
    f = fake_new(SIM_ESP32, &fl, NULL);
    for (int i = 0; i < 20; i++) {
        clear_out(f);
        request_words(f, 0x0A, 1, 0x40001000u);
        decode(f, &fr);
        if (fr.n == 1 && fr.len[0] == 12 && es_get_le32(fr.data[0] + 4) == 0x00F01D83)
            good++;
    }
    /* 14-byte request + 14-byte reply at 5 % per byte: most exchanges fail, a few survive */
    assert_true(good < 20);
    fake_free(f);
}

static void test_fault_bad_flash(void **state)
{
    struct sim_faults fl = {0};
    uint8_t blk[0x400];
    struct fake *f;

    (void)state;
    fill_pattern(blk, sizeof(blk), 2);
    fl.bad_flash = 1;
    fl.bad_flash_addr = 0x10405;
    f = fake_new(SIM_ESP32, &fl, NULL);
    rom_write_setup(f, 2, 0x10000);
    data_block(f, 0x03, blk, 0x400, 0);
    expect_status(f, 0x03, 0, 0);
    data_block(f, 0x03, blk, 0x400, 1);
    expect_status(f, 0x03, 0, 0); /* silently wrong */
    assert_memory_equal(f->flash + 0x10000, blk, 0x400);
    assert_int_not_equal(f->flash[0x10405], blk[5]);
    fake_free(f);

    fl.bad_flash_reports = 1;
    f = fake_new(SIM_ESP32, &fl, NULL);
    rom_write_setup(f, 2, 0x10000);
    data_block(f, 0x03, blk, 0x400, 0);
    expect_status(f, 0x03, 0, 0);
    data_block(f, 0x03, blk, 0x400, 1);
    expect_status(f, 0x03, 1, 0x08); /* the ROM's read-back check */
    fake_free(f);
}

static void test_fault_slow_mute(void **state)
{
    struct sim_faults fl = {0};
    struct fake *f;
    uint64_t sent_at;

    (void)state;
    fl.slow_op = 0x0A;
    fl.slow_ms = 500;
    f = fake_new(SIM_ESP32, &fl, NULL);
    sync_board(f);
    sent_at = f->now + MS;
    (void)read_reg(f, 0x40001000);
    assert_true(f->last_not_before >= sent_at + 500 * MS);
    fake_free(f);

    fl.mute = 1;
    f = fake_new(SIM_ESP32, &fl, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x0A, 1, 0x40001000u);
    assert_int_equal(f->n, 0);
    request_words(f, 0x0D, 2, 0u, 0u);
    expect_status(f, 0x0D, 0, 0); /* other ops still answer */
    fake_free(f);
}

static void test_fault_wrong_chip(void **state)
{
    struct sim_faults fl = {0};
    struct fake *f;

    (void)state;
    fl.wrong_chip = 1;
    f = fake_new(SIM_ESP32, &fl, NULL);
    sync_board(f);
    assert_int_equal(read_reg(f, 0x40001000), 0xFFF0C101);
    fake_free(f);
    f = fake_new(SIM_ESP8266, &fl, NULL);
    sync_board(f);
    assert_int_equal(read_reg(f, 0x40001000), 0x00F01D83);
    fake_free(f);
}

static void test_change_baud_and_fault(void **state)
{
    struct sim_faults fl = {0};
    struct frames fr;
    struct fake *f;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x0F, 2, 921600u, 0u);
    expect_status(f, 0x0F, 0, 0);
    assert_int_equal(f->last_baud, 115200); /* the reply at the old rate */
    assert_int_equal(sim_board_baud(f->b), 921600);
    f->host_baud = 921600;
    assert_int_equal(read_reg(f, 0x40001000), 0x00F01D83);
    f->host_baud = 115200; /* the host forgot to switch: its bytes are garbage to the board */
    clear_out(f);
    request_words(f, 0x0A, 1, 0x40001000u);
    assert_int_equal(f->n, 0);
    fake_free(f);

    fl.baud_fail = 1;
    f = fake_new(SIM_ESP32, &fl, NULL);
    sync_board(f);
    clear_out(f);
    request_words(f, 0x0F, 2, 921600u, 0u);
    expect_status(f, 0x0F, 0, 0);
    f->host_baud = 921600;
    request_words(f, 0x0A, 1, 0x40001000u);
    decode(f, &fr);
    for (int i = 0; i < fr.n; i++)
        assert_false(fr.len[i] == 12 && fr.data[i][0] == 0x01 && fr.data[i][1] == 0x0A);
    fake_free(f);
}

/* Autobaud (§13.4): the ESP8266 loader starts at 74880; a SYNC at 115200 is recognised and
 * adopted; a later SYNC at another rate re-adopts. */
static void test_autobaud(void **state)
{
    struct frames fr;
    struct fake *f;

    (void)state;
    f = fake_new(SIM_ESP8266, NULL, NULL);
    assert_int_equal(sim_board_baud(f->b), 74880);
    clear_out(f);
    request_words(f, 0x0A, 1, 0x40001000u); /* not a SYNC, wrong rate: garbage */
    assert_int_equal(f->n, 0);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);
    assert_int_equal(sim_board_baud(f->b), 115200);
    f->host_baud = 230400;
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);
    assert_int_equal(f->last_baud, 230400);
    fake_free(f);
}

/* Garbage of every kind, at every rate, never crashes the model (run under ASan/UBSan). */
static void test_garbage_robustness(void **state)
{
    static const uint32_t rates[] = {0, 115200, 74880, 921600};
    struct sim_stub_images stubs;
    int have_stubs = load_stubs(&stubs) == 0;
    uint64_t rng = 12345;

    (void)state;
    for (int round = 0; round < 6; round++) {
        struct fake *f =
            fake_new(round % 2 ? SIM_ESP32 : SIM_ESP8266, NULL, have_stubs ? &stubs : NULL);

        sync_board(f);
        if (round >= 4 && have_stubs) {
            struct frames fr;

            upload_stub(f, &stubs.chip[round % 2], stubs.chip[round % 2].entry, &fr);
        }
        for (int i = 0; i < 3000; i++) {
            uint8_t buf[300];
            size_t n;

            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            n = rng % sizeof(buf);
            for (size_t k = 0; k < n; k++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                buf[k] = (uint8_t)rng;
                if ((rng >> 20) % 16 == 0)
                    buf[k] = 0xC0;
                if ((rng >> 28) % 16 == 0)
                    buf[k] = 0x00;
            }
            if (n > 2 && (rng >> 40) % 4 == 0) {
                buf[0] = 0xC0; /* a plausible header with a random op */
                buf[1] = 0x00;
            }
            f->now += 100000;
            if ((rng >> 50) % 64 == 0)
                sim_board_set_lines(f->b, (int)(rng >> 56) & 1, (int)(rng >> 57) & 1, f->now);
            sim_board_rx(f->b, buf, n, rates[(rng >> 44) % 4], f->now);
            if (i % 50 == 0)
                settle(f);
            clear_out(f);
        }
        settle(f);
        fake_free(f);
    }
    if (have_stubs)
        sim_stub_images_close(&stubs);
}

/* §15.3: MEM_DATA lands in RAM, and READ_REG of those addresses returns the loaded words; a
 * WRITE_REG there changes the RAM. */
static void test_mem_data_readback(void **state)
{
    static const uint32_t addrs[] = {0x4010C500u, 0x3FFB0000u}; /* per chip, any RAM address */
    uint8_t blk[24];

    (void)state;
    fill_pattern(blk, sizeof(blk), 11);
    for (int chip = SIM_ESP8266; chip <= SIM_ESP32; chip++) {
        struct fake *f = fake_new((enum sim_chip)chip, NULL, NULL);
        uint32_t a = addrs[chip];

        sync_board(f);
        upload_segment(f, a, blk, sizeof(blk));
        for (uint32_t i = 0; i < sizeof(blk); i += 4)
            assert_int_equal(read_reg(f, a + i), es_get_le32(blk + i));
        write_reg(f, a + 8, 0x12345678u);
        assert_int_equal(read_reg(f, a + 8), 0x12345678u);
        assert_int_equal(read_reg(f, a + 12), es_get_le32(blk + 12));
        fake_free(f);
    }
}

/* §15.3: SPI_CMD's USR bit reads back 0 as soon as the user command has run. */
static void test_spi_usr_bit_clears(void **state)
{
    (void)state;
    for (int chip = SIM_ESP8266; chip <= SIM_ESP32; chip++) {
        struct fake *f = fake_new((enum sim_chip)chip, NULL, NULL);
        uint32_t base = chip == SIM_ESP8266 ? 0x60000200u : 0x3FF42000u;
        uint32_t w0 = base + (chip == SIM_ESP8266 ? 0x40u : 0x80u);

        sync_board(f);
        if (chip == SIM_ESP8266)
            request_words(f, 0x02, 4, 0u, 0u, 0x400u, 0u); /* attaches the flash (§3.8) */
        else
            request_words(f, 0x0D, 2, 0u, 0u);
        if (chip == SIM_ESP8266)
            write_reg(f, base + 0x20, 0x00001700);
        else
            write_reg(f, base + 0x2C, 0x17);
        write_reg(f, base + 0x1C, 0x90000000);
        write_reg(f, base + 0x24, 0x7000009F);
        write_reg(f, base, 0x00040000);
        assert_int_equal(read_reg(f, base) & 0x00040000, 0);
        assert_int_equal(read_reg(f, w0), 0x1640EF);
        fake_free(f);
    }
}

/* §15.3: a FLASH_DATA with a 16-byte header, length 0 and no data is accepted. */
static void test_empty_flash_data(void **state)
{
    uint8_t none[1] = {0};

    (void)state;
    for (int chip = SIM_ESP8266; chip <= SIM_ESP32; chip++) {
        struct fake *f = fake_new((enum sim_chip)chip, NULL, NULL);

        sync_board(f);
        request_words(f, 0x0D, 2, 0u, 0u); /* ESP8266: 01 05, harmless */
        clear_out(f);
        request_words(f, 0x02, 4, 0x1000u, 4u, 0x400u, 0x10000u);
        expect_status(f, 0x02, 0, 0);
        data_block(f, 0x03, none, 0, 0);
        expect_status(f, 0x03, 0, 0);
        assert_int_equal(f->flash[0x10000], 0xFF);
        fake_free(f);
    }
}

/* §15.3: MEM_END with only one word is accepted. */
static void test_mem_end_one_word(void **state)
{
    (void)state;
    for (int chip = SIM_ESP8266; chip <= SIM_ESP32; chip++) {
        struct fake *f = fake_new((enum sim_chip)chip, NULL, NULL);

        sync_board(f);
        clear_out(f);
        request_words(f, 0x06, 1, 1u);
        expect_status(f, 0x06, 0, 0);
        fake_free(f);
    }
}

/* Sends a FLASH_DATA whose header says len but which carries n bytes of blk (checksum over n). */
static void flash_data_raw(struct fake *f, const uint8_t *blk, uint32_t len, uint32_t n,
                           uint32_t seq)
{
    uint8_t pkt[16 + 0x400] = {0};

    es_put_le32(pkt, len);
    es_put_le32(pkt + 4, seq);
    memcpy(pkt + 16, blk, n);
    request(f, 0x03, pkt, 16 + n, checksum(blk, n));
}

/* §15.3 (with §15.1's checksum and "where a block lands" rows): a block refused for its length,
 * or for being shorter than the block size, still moves the sequence counter, so the good block
 * with the same sequence number is refused; nothing lands for refused blocks, and the next good
 * block lands at the running write pointer. */
static void test_bad_length_blocks_move_sequence(void **state)
{
    static uint8_t img[5][0x400];

    (void)state;
    for (int i = 0; i < 5; i++)
        fill_pattern(img[i], 0x400, (uint8_t)(40 + i));
    for (int chip = SIM_ESP8266; chip <= SIM_ESP32; chip++) {
        struct fake *f = fake_new((enum sim_chip)chip, NULL, NULL);

        sync_board(f);
        request_words(f, 0x0D, 2, 0u, 0u);
        clear_out(f);
        request_words(f, 0x02, 4, 0x2000u, 8u, 0x400u, 0x10000u);
        expect_status(f, 0x02, 0, 0);
        data_block(f, 0x03, img[0], 0x400, 0);
        expect_status(f, 0x03, 0, 0);
        data_block(f, 0x03, img[1], 0x400, 1);
        expect_status(f, 0x03, 0, 0);
        flash_data_raw(f, img[2], 0x200, 0x400, 2); /* header length < payload */
        expect_status(f, 0x03, 1, 0x05);
        data_block(f, 0x03, img[2], 0x400, 2);
        expect_status(f, 0x03, 1, 0x05);
        flash_data_raw(f, img[3], 0x200, 0x200, 3); /* shorter than the block size */
        expect_status(f, 0x03, 1, 0x05);
        data_block(f, 0x03, img[3], 0x400, 3);
        expect_status(f, 0x03, 1, 0x05);
        data_block(f, 0x03, img[4], 0x400, 4);
        expect_status(f, 0x03, 0, 0);
        assert_memory_equal(f->flash + 0x10000, img[0], 0x400);
        assert_memory_equal(f->flash + 0x10400, img[1], 0x400);
        assert_memory_equal(f->flash + 0x10800, img[4], 0x400);
        for (uint32_t a = 0x10C00; a < 0x11400; a++)
            assert_int_equal(f->flash[a], 0xFF);
        fake_free(f);
    }
}

/* §15.3, ESP32 ROM: SPI_FLASH_MD5 with only 3 words still gets the MD5 (size 36). */
static void test_esp32_md5_three_words(void **state)
{
    static const char want[] = "6ae59e64850377ee5470c854761551ea"; /* V-7 */
    struct fake *f;
    const uint8_t *r;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    clear_out(f);
    request_words(f, 0x13, 3, 0x1000u, 0x1000u, 0u);
    r = one_reply(f, 8 + 36);
    assert_int_equal(r[1], 0x13);
    assert_int_equal(es_get_le16(r + 2), 36);
    assert_memory_equal(r + 8, want, 32);
    assert_int_equal(r[40], 0x00);
    fake_free(f);
}

/* §15.3, ESP32 ROM: READ_FLASH_SLOW of 65 bytes sends 64 (stale) data bytes, then 01 0A. */
static void test_esp32_read_flash_slow_65(void **state)
{
    struct fake *f;
    const uint8_t *r;

    (void)state;
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    clear_out(f);
    request_words(f, 0x0E, 2, 0x1000u, 65u);
    r = one_reply(f, 8 + 68);
    assert_int_equal(r[1], 0x0E);
    assert_int_equal(es_get_le16(r + 2), 68);
    assert_int_equal(r[72], 0x01);
    assert_int_equal(r[73], 0x0A);
    fake_free(f);
}

/* §15.3, ESP32 ROM: FLASH_DEFL_END(1) after garbage deflate data gets 01 06. */
static void test_esp32_defl_end_after_garbage(void **state)
{
    uint8_t junk[32];
    struct fake *f;

    (void)state;
    memset(junk, 0xFF, sizeof(junk));
    f = fake_new(SIM_ESP32, NULL, NULL);
    sync_board(f);
    request_words(f, 0x0D, 2, 0u, 0u);
    clear_out(f);
    request_words(f, 0x10, 4, 0x1000u, 1u, 0x400u, 0x30000u);
    expect_status(f, 0x10, 0, 0);
    data_block(f, 0x11, junk, sizeof(junk), 0);
    expect_status(f, 0x11, 1, 0x0B);
    request_words(f, 0x12, 1, 1u);
    expect_status(f, 0x12, 1, 0x06);
    fake_free(f);
}

static void test_base64(void **state)
{
    uint8_t *out;
    size_t n;

    (void)state;
    assert_int_equal(sim_base64_decode("T0hBSQ==", &out, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "OHAI", 4);
    free(out);
    assert_int_equal(sim_base64_decode("AAEC/w", &out, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\x00\x01\x02\xff", 4);
    free(out);
    assert_int_equal(sim_base64_decode("AB*C", &out, &n), -1);
}

/* ---- autoreset=no, the buttons, power, and the application (app_model.c) ------------------- */

static void buttons(struct fake *f, int boot, int en, uint64_t after_ns)
{
    advance(f, after_ns);
    sim_board_set_buttons(f->b, boot, en, f->now);
}

/* Host bytes at 115200 (the app's console rate). */
static void type(struct fake *f, const char *text)
{
    f->now += MS;
    sim_board_rx(f->b, (const uint8_t *)text, strlen(text), 115200, f->now);
    advance(f, 10 * MS);
}

static int count_text(const struct fake *f, const char *text)
{
    size_t k = strlen(text);
    int n = 0;

    for (size_t i = 0; i + k <= f->n; i++)
        n += memcmp(f->out + i, text, k) == 0;
    return n;
}

static const char *mode_of(struct fake *f)
{
    struct sim_board_stats st;

    sim_board_stats(f->b, &st);
    return st.mode;
}

/* A one-segment image (§9.1) whose rodata holds "espsim-banner:" TEXT NUL, as mkimage --banner
 * writes it; banner NULL: no marker. Returns the image's length. */
static size_t banner_image(enum sim_chip chip, const char *banner, uint8_t *img)
{
    size_t hdr = chip == SIM_ESP32 ? 24 : 8, seg = 256, pos, end;
    uint8_t sum = 0xEF;

    memset(img, 0, 1024);
    img[0] = 0xE9;
    img[1] = 1;
    img[2] = 2; /* dio */
    img[3] = 0x20;
    es_put_le32(img + 4, 0x40100004);
    if (chip == SIM_ESP32)
        img[8] = 0xEE; /* chip id 0 (ESP32), no digest */
    es_put_le32(img + hdr, 0x3FFE8800);
    es_put_le32(img + hdr + 4, (uint32_t)seg);
    pos = hdr + 8;
    memset(img + pos, 'x', seg);
    if (banner != NULL) {
        memcpy(img + pos + 10, "espsim-banner:", 14);
        memcpy(img + pos + 24, banner, strlen(banner) + 1);
    }
    for (size_t i = 0; i < seg; i++)
        sum ^= img[pos + i];
    end = (pos + seg) | 15;
    img[end] = sum;
    return end + 1;
}

static void test_autoreset_no(void **state)
{
    struct frames fr;
    struct fake *f;

    (void)state;
    /* Powered on without BOOT held, a board with no auto-reset boots its (blank) flash. */
    f = fake_new_board(SIM_ESP32, NULL, NULL, 1, NULL, 0, 0);
    assert_non_null(find_text(f, "boot:0x13 (SPI_FAST_FLASH_BOOT)"));
    assert_non_null(find_text(f, "invalid header: 0xffffffff"));
    assert_null(find_text(f, "waiting for download"));
    assert_string_equal(mode_of(f), "dead");

    /* DTR/RTS change nothing: the classic reset into the loader does not reach EN or GPIO0. */
    clear_out(f);
    lines(f, 0, 1, MS);
    lines(f, 1, 0, 100 * MS);
    lines(f, 0, 0, 50 * MS);
    settle(f);
    assert_int_equal(f->n, 0);
    assert_string_equal(mode_of(f), "dead");
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 0);

    /* BOOT pressed, EN pressed and released, BOOT released: download mode. */
    buttons(f, 1, 0, MS);
    assert_int_equal(f->n, 0); /* BOOT alone does not reset */
    buttons(f, 1, 1, 500 * MS);
    assert_string_equal(mode_of(f), "reset");
    buttons(f, 1, 0, 200 * MS);
    buttons(f, 0, 0, 300 * MS);
    settle(f);
    assert_non_null(find_text(f, "DOWNLOAD_BOOT"));
    assert_string_equal(mode_of(f), "rom");
    clear_out(f);
    sync_board(f);
    decode(f, &fr);
    assert_int_equal(fr.n, 8);

    /* EN tapped without BOOT: flash boot again. */
    buttons(f, 0, 1, MS);
    buttons(f, 0, 0, 100 * MS);
    settle(f);
    assert_string_equal(mode_of(f), "dead");
    assert_non_null(find_text(f, "SPI_FAST_FLASH_BOOT"));
    fake_free(f);
}

static void test_power_cycle(void **state)
{
    struct fake *f;

    (void)state;
    /* An auto-reset board starts in download mode on the bench... */
    f = fake_new(SIM_ESP8266, NULL, NULL);
    assert_string_equal(mode_of(f), "rom");
    /* ...is silent without power... */
    sim_board_power_off(f->b, f->now);
    assert_string_equal(mode_of(f), "off");
    clear_out(f);
    sync_board(f);
    settle(f);
    assert_int_equal(f->n, 0);
    /* ...and powered on again (plug, swap) it samples GPIO0: high, so it boots from flash. */
    advance(f, 100 * MS);
    sim_board_power_on(f->b, f->now);
    settle(f);
    /* (the ROM's text is at 74880, noise to this host at 115200) */
    assert_string_equal(mode_of(f), "dead");
    /* With BOOT held it comes up in download mode. */
    sim_board_power_off(f->b, f->now);
    sim_board_set_buttons(f->b, 1, 0, f->now);
    advance(f, 100 * MS);
    clear_out(f);
    sim_board_power_on(f->b, f->now);
    settle(f);
    assert_int_not_equal(f->n, 0);
    assert_string_equal(mode_of(f), "rom");
    fake_free(f);
}

static void test_app_banner_repl(void **state)
{
    static const char banner[] = "MicroPython v1.22.2 on 2024-02-22; ESP module with ESP8266";
    uint8_t img[1024];
    size_t n = banner_image(SIM_ESP8266, banner, img);
    struct fake *f = fake_new_board(SIM_ESP8266, NULL, NULL, 1, img, n, 0);

    (void)state;
    assert_non_null(
        find_text(f, "MicroPython v1.22.2 on 2024-02-22; ESP module with ESP8266\r\n>>> "));
    assert_int_equal(f->last_baud, 115200); /* the app's console, not the ROM's 74880 */
    assert_string_equal(mode_of(f), "app");

    clear_out(f);
    type(f, "print(6*7)\r\n");
    assert_int_equal(f->n, strlen("print(6*7)\r\n42\r\n>>> "));
    assert_memory_equal(f->out, "print(6*7)\r\n42\r\n>>> ", f->n);
    clear_out(f);
    type(f, "print(40 + 2)\r");
    assert_non_null(find_text(f, "\r\n42\r\n>>> "));
    clear_out(f);
    type(f, "7*6\n");
    assert_non_null(find_text(f, "7*6\r\n42\r\n>>> "));
    clear_out(f);
    type(f, "import os\r\n");
    assert_non_null(find_text(f, "SyntaxError"));
    assert_null(find_text(f, "42"));

    /* A host at the ROM's rate is garbage to the REPL. */
    clear_out(f);
    f->now += MS;
    sim_board_rx(f->b, (const uint8_t *)"print(6*7)\r\n", 12, 74880, f->now);
    advance(f, 10 * MS);
    assert_int_equal(f->n, 0);
    fake_free(f);

    /* Without a banner marker: one line and no REPL. */
    n = banner_image(SIM_ESP32, NULL, img);
    f = fake_new_board(SIM_ESP32, NULL, NULL, 1, img, n, 0x1000);
    assert_non_null(find_text(f, "espsim app: image ok, entry 0x40100004"));
    clear_out(f);
    type(f, "print(6*7)\r\n");
    assert_int_equal(f->n, 0);
    fake_free(f);
}

static void test_app_faults(void **state)
{
    static const char banner[] =
        "MicroPython v1.22.2 on 2024-02-22; Generic ESP32 module with ESP32";
    struct sim_faults faults;
    uint8_t img[1024];
    size_t n = banner_image(SIM_ESP32, banner, img);
    struct fake *f;

    (void)state;
    /* boot-loop: crash, reboot with ROM text, crash again, about once a second, forever. */
    memset(&faults, 0, sizeof(faults));
    faults.boot_loop = 1;
    f = fake_new_board(SIM_ESP32, &faults, NULL, 1, img, n, 0x1000);
    advance(f, 3500 * MS);
    assert_true(count_text(f, "Guru Meditation Error: Core  0 panic'ed") >= 3);
    assert_true(count_text(f, "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)") >= 3);
    assert_true(count_text(f, "Guru Meditation Error") <= 4);
    assert_null(find_text(f, "MicroPython"));
    clear_out(f);
    advance(f, 1100 * MS);
    assert_int_equal(count_text(f, "Guru Meditation Error"), 1); /* it keeps going */
    fake_free(f);

    memset(&faults, 0, sizeof(faults));
    faults.boot_loop = 1;
    n = banner_image(SIM_ESP8266, "MicroPython v1.22.2", img);
    f = fake_new_board(SIM_ESP8266, &faults, NULL, 1, img, n, 0);
    advance(f, 2500 * MS);
    assert_true(count_text(f, "Fatal exception 28") >= 2);
    fake_free(f);

    /* no-banner: the ROM boots the image, the app says nothing and answers nothing. */
    memset(&faults, 0, sizeof(faults));
    faults.no_banner = 1;
    n = banner_image(SIM_ESP32, banner, img);
    f = fake_new_board(SIM_ESP32, &faults, NULL, 1, img, n, 0x1000);
    assert_non_null(find_text(f, "entry 0x40100004"));
    assert_null(find_text(f, "MicroPython"));
    assert_null(find_text(f, ">>> "));
    clear_out(f);
    type(f, "print(6*7)\r\n");
    advance(f, 2000 * MS);
    assert_int_equal(f->n, 0);
    assert_string_equal(mode_of(f), "app");
    fake_free(f);

    /* wrong-app: another firmware's banner, which still has a prompt. */
    memset(&faults, 0, sizeof(faults));
    faults.wrong_app = 1;
    f = fake_new_board(SIM_ESP32, &faults, NULL, 1, img, n, 0x1000);
    assert_non_null(find_text(f, "espsim wrong app v0.0 on "));
    assert_null(find_text(f, "MicroPython"));
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_replies),
        cmocka_unit_test(test_boot_text),
        cmocka_unit_test(test_read_reg_magic),
        cmocka_unit_test(test_mac_registers),
        cmocka_unit_test(test_rdid),
        cmocka_unit_test(test_flash_write_esp32),
        cmocka_unit_test(test_esp8266_erase_bug),
        cmocka_unit_test(test_bad_checksum_then_retry),
        cmocka_unit_test(test_rom_md5),
        cmocka_unit_test(test_unsupported_ops),
        cmocka_unit_test(test_deflate_write),
        cmocka_unit_test(test_stub_upload_and_md5),
        cmocka_unit_test(test_stub_writes),
        cmocka_unit_test(test_stub_single_buffer_loses_second_block),
        cmocka_unit_test(test_stub_legacy_takes_second_block),
        cmocka_unit_test(test_stub_read_flash),
        cmocka_unit_test(test_rdid_esptool_js_esp8266),
        cmocka_unit_test(test_reset_lines),
        cmocka_unit_test(test_flash_end),
        cmocka_unit_test(test_fault_no_download_and_sync_after),
        cmocka_unit_test(test_fault_unplug),
        cmocka_unit_test(test_fault_corrupt),
        cmocka_unit_test(test_fault_bad_flash),
        cmocka_unit_test(test_fault_slow_mute),
        cmocka_unit_test(test_fault_wrong_chip),
        cmocka_unit_test(test_change_baud_and_fault),
        cmocka_unit_test(test_autobaud),
        cmocka_unit_test(test_garbage_robustness),
        cmocka_unit_test(test_mem_data_readback),
        cmocka_unit_test(test_spi_usr_bit_clears),
        cmocka_unit_test(test_empty_flash_data),
        cmocka_unit_test(test_mem_end_one_word),
        cmocka_unit_test(test_bad_length_blocks_move_sequence),
        cmocka_unit_test(test_esp32_md5_three_words),
        cmocka_unit_test(test_esp32_read_flash_slow_65),
        cmocka_unit_test(test_esp32_defl_end_after_garbage),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_autoreset_no),
        cmocka_unit_test(test_power_cycle),
        cmocka_unit_test(test_app_banner_repl),
        cmocka_unit_test(test_app_faults),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
