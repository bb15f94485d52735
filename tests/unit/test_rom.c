/* ROM requests and replies: every packet vector of protocol doc §12 (V-1, V-2, V-4, V-5, V-6,
 * V-7, V-8, V-10, V-11, V-12) as exact wire bytes, the §2.3/§15 status rules, MD5 parsing and
 * the §8.3 erase-size table. Requests are checked after SLIP encoding, replies are SLIP-decoded
 * from their wire form first, so each vector is used exactly as the doc writes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "es/rom.h"
#include "es/slip.h"

static uint8_t pkt[ROM_HEADER_LEN + ROM_MAX_DATA];
static uint8_t wire[2 * sizeof(pkt) + 2];

/* Asserts that the n-byte packet in pkt goes on the wire as want. */
static void assert_wire(size_t n, const uint8_t *want, size_t want_len)
{
    size_t w;

    assert_true(n > 0);
    w = slip_encode(pkt, n, wire, sizeof(wire));
    assert_int_equal(w, want_len);
    assert_memory_equal(wire, want, want_len);
}

/* The single frame inside a wire vector. */
static uint8_t frame[1024];
static size_t frame_len;
static int frames_seen;

static void on_frame(void *arg, const uint8_t *f, size_t len)
{
    (void)arg;
    memcpy(frame, f, len);
    frame_len = len;
    frames_seen++;
}

static void unwire(const uint8_t *w, size_t n)
{
    static uint8_t buf[1024];
    struct slip_decoder d;

    frames_seen = 0;
    slip_decoder_init(&d, buf, sizeof(buf), on_frame, NULL, NULL);
    slip_decoder_feed(&d, w, n);
    assert_int_equal(frames_seen, 1);
}

#define WIRE(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/*
 * V-1 SYNC.
 */

static void test_v1_sync_request(void **state)
{
    uint8_t want[46] = {0xC0, 0x00, 0x08, 0x24, 0x00, 0x00, 0x00,
                        0x00, 0x00, 0x07, 0x07, 0x12, 0x20};
    size_t n;

    (void)state;
    memset(want + 13, 0x55, 32);
    want[45] = 0xC0;
    n = rom_encode_sync(pkt, sizeof(pkt));
    assert_int_equal(n, 44);
    assert_wire(n, want, sizeof(want));
}

static void test_v1_sync_replies(void **state)
{
    struct rom_reply r;
    struct es_err err;
    enum rom_loader who;

    (void)state;
    unwire(WIRE(0xC0, 0x01, 0x08, 0x02, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP8266, 0, &r, &err), 0);
    assert_int_equal(r.op, ROM_OP_SYNC);
    assert_int_equal(r.size, 2);
    assert_int_equal(r.value, 0x20120707);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.status_len, 2);
    assert_int_equal(rom_sync_loader(frame, frame_len, &who, &err), 0);
    assert_int_equal(who, ROM_LOADER_ESP8266);

    unwire(
        WIRE(0xC0, 0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP32, 0, &r, &err), 0);
    assert_int_equal(r.value, 0x20120707);
    assert_int_equal(r.status_len, 4);
    assert_int_equal(rom_sync_loader(frame, frame_len, &who, &err), 0);
    assert_int_equal(who, ROM_LOADER_ESP32);

    /* value 0: the stub is already running (§4, §10.1). */
    unwire(WIRE(0xC0, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_STUB, 0, &r, &err), 0);
    assert_int_equal(r.value, 0);
    assert_int_equal(rom_sync_loader(frame, frame_len, &who, &err), 0);
    assert_int_equal(who, ROM_LOADER_STUB);

    /* Not a SYNC reply. */
    unwire(WIRE(0xC0, 0x01, 0x0A, 0x02, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_sync_loader(frame, frame_len, &who, &err), -ES_REPLY_MALFORMED);
    /* A refused SYNC says nothing about the loader. */
    unwire(WIRE(0xC0, 0x01, 0x08, 0x02, 0x00, 0x07, 0x07, 0x12, 0x20, 0x01, 0x05, 0xC0));
    assert_int_equal(rom_sync_loader(frame, frame_len, &who, &err), -ES_REPLY_MALFORMED);
}

/*
 * V-2 READ_REG of the magic word.
 */

static void test_v2_read_reg(void **state)
{
    struct rom_reply r;
    struct es_err err;
    size_t n;

    (void)state;
    n = rom_encode_read_reg(pkt, sizeof(pkt), 0x40001000);
    assert_wire(n, WIRE(0xC0, 0x00, 0x0A, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                        0x40, 0xC0));

    unwire(WIRE(0xC0, 0x01, 0x0A, 0x02, 0x00, 0x01, 0xC1, 0xF0, 0xFF, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP8266, 0, &r, &err), 0);
    assert_int_equal(r.op, ROM_OP_READ_REG);
    assert_int_equal(r.value, 0xFFF0C101);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP8266, &err), 0);

    unwire(
        WIRE(0xC0, 0x01, 0x0A, 0x04, 0x00, 0x83, 0x1D, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP32, 0, &r, &err), 0);
    assert_int_equal(r.value, 0x00F01D83);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP32, &err), 0);
}

/*
 * V-4 FLASH_BEGIN.
 */

static void test_v4_flash_begin(void **state)
{
    struct rom_begin b = {.size = rom_esp8266_erase_size(0, 0x1000),
                          .blocks = rom_block_count(0x1000, ROM_FLASH_BLOCK),
                          .block_size = ROM_FLASH_BLOCK,
                          .offset = 0};
    size_t n;

    (void)state;
    assert_int_equal(b.size, 0x1000);
    assert_int_equal(b.blocks, 4);
    /* ESP8266 ROM and ESP32 ROM: the same 16 bytes. */
    n = rom_encode_flash_begin(pkt, sizeof(pkt), &b);
    assert_wire(n,
                WIRE(0xC0, 0x00, 0x02, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
                     0x04, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    /* ESP32-S3 ROM: a fifth word, encrypted = 0. */
    b.five_words = 1;
    n = rom_encode_flash_begin(pkt, sizeof(pkt), &b);
    assert_wire(n, WIRE(0xC0, 0x00, 0x02, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                        0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));

    /* 256 KiB at 0 on the ESP8266 ROM: erase 0x30000, 256 blocks. */
    b = (struct rom_begin){.size = rom_esp8266_erase_size(0, 0x40000),
                           .blocks = rom_block_count(0x40000, ROM_FLASH_BLOCK),
                           .block_size = ROM_FLASH_BLOCK};
    n = rom_encode_flash_begin(pkt, sizeof(pkt), &b);
    assert_wire(n,
                WIRE(0xC0, 0x00, 0x02, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00,
                     0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));

    /* The ESP8266 "attach" FLASH_BEGIN(0, 0, 0x400, 0). */
    b = (struct rom_begin){.block_size = ROM_FLASH_BLOCK};
    n = rom_encode_flash_begin(pkt, sizeof(pkt), &b);
    assert_wire(n,
                WIRE(0xC0, 0x00, 0x02, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                     0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
}

/* §8.3: the whole table, plus the zero-size attach case. */
static void test_esp8266_erase_size_table(void **state)
{
    static const struct {
        uint32_t offset, size, sent;
    } cases[] = {
        {0x0, 0x1000, 0x1000},      {0x0, 0x2000, 0x1000},    {0x0, 0x10000, 0x8000},
        {0x0, 0x40000, 0x30000},    {0x3000, 0x2000, 0x1000}, {0x3000, 0x20000, 0x13000},
        {0xF000, 0x3000, 0x2000},   {0x8000, 0x9000, 0x5000}, {0x0, 0, 0},
        {0x208000, 0x5000, 0x3000}, /* ROM erases 3 + min(8, 3) = 6 >= 5 */
        {0x0, 0x14000, 0xA000}, /* 20 sectors: 10 + min(16, 10); esp-serial-flasher sends 4 (§8.3)
                                 */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rom_esp8266_erase_size(cases[i].offset, cases[i].size), cases[i].sent);
    /* A partial sector counts as a whole one. */
    assert_int_equal(rom_esp8266_erase_size(0x0, 0x1001), rom_esp8266_erase_size(0x0, 0x2000));
    /* No overflow near the top of the 32-bit range. */
    assert_true(rom_esp8266_erase_size(0xFFFFF000u, 0xFFFFFFFFu) > 0);
}

/* The ROM erases x + min(head, x) sectors for a request of x; the corrected size must cover
 * exactly n or n + 1 sectors, for every start sector and length up to 64 sectors. */
static void test_esp8266_erase_size_covers(void **state)
{
    uint32_t start, n;

    (void)state;
    for (start = 0; start < 32; start++) {
        for (n = 1; n <= 64; n++) {
            uint32_t x = rom_esp8266_erase_size(start * 4096, n * 4096) / 4096;
            uint32_t head = 16 - start % 16;
            uint32_t erased = x + (head < x ? head : x);

            assert_true(erased == n || erased == n + 1);
        }
    }
}

/*
 * V-5, V-6 FLASH_DATA and checksums.
 */

static void test_checksum(void **state)
{
    static const uint8_t d[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10};
    static const uint8_t ff[] = {0xFF, 0xFF};

    (void)state;
    assert_int_equal(rom_checksum(NULL, 0), 0xEF);
    assert_int_equal(rom_checksum(d, sizeof(d)), 0xFF);
    assert_int_equal(rom_checksum(ff, 2), 0xEF);
    assert_int_equal(rom_checksum(ff, 1), 0x10);
}

static void test_v5_flash_data_short(void **state)
{
    static const uint8_t d[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10};
    size_t n;

    (void)state;
    /* block_size 0 (no padding) and block_size 16 give the same 16-byte block. */
    n = rom_encode_flash_data(pkt, sizeof(pkt), 0, d, sizeof(d), 0);
    assert_int_equal(n, 40);
    assert_wire(n, WIRE(0xC0, 0x00, 0x03, 0x20, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B,
                        0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0xC0));
    assert_int_equal(rom_encode_flash_data(pkt, sizeof(pkt), 0, d, sizeof(d), 16), 40);
    /* More data than the block size is refused. */
    assert_int_equal(rom_encode_flash_data(pkt, sizeof(pkt), 0, d, sizeof(d), 8), 0);
}

static void test_v5_flash_data_full_block(void **state)
{
    static const uint8_t d[] = {0xE9, 0x03, 0x02, 0x20, 0x04, 0x05,
                                0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B};
    static const uint8_t head[] = {0x00, 0x03, 0x10, 0x04, 0x27, 0x00, 0x00, 0x00,
                                   0x00, 0x04, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    size_t n, i;

    (void)state;
    n = rom_encode_flash_data(pkt, sizeof(pkt), 5, d, sizeof(d), ROM_FLASH_BLOCK);
    assert_int_equal(n, 1048);
    assert_memory_equal(pkt, head, sizeof(head));
    assert_memory_equal(pkt + 24, d, sizeof(d));
    for (i = 24 + sizeof(d); i < n; i++)
        assert_int_equal(pkt[i], 0xFF);
    /* Odd padding flips the checksum: 0x27 ^ 0xFF. */
    n = rom_encode_flash_data(pkt, sizeof(pkt), 5, d, sizeof(d), sizeof(d) + 1);
    assert_int_equal(pkt[4], 0xD8);
}

static void test_v6_flash_data_escaped(void **state)
{
    static const uint8_t d[] = {0xC0, 0xDB, 0x00, 0xC0};
    size_t n;

    (void)state;
    n = rom_encode_flash_data(pkt, sizeof(pkt), 1, d, sizeof(d), 0);
    assert_int_equal(n, 28);
    assert_int_equal(pkt[4], 0x34);
    assert_wire(n, WIRE(0xC0, 0x00, 0x03, 0x14, 0x00, 0x34, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
                        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0xDB, 0xDC, 0xDB, 0xDD, 0x00, 0xDB, 0xDC, 0xC0));
}

static void test_v6_reply_escaped(void **state)
{
    struct rom_reply r;
    struct es_err err;

    (void)state;
    unwire(
        WIRE(0xC0, 0x01, 0x0A, 0x02, 0x00, 0x34, 0xDB, 0xDD, 0xDB, 0xDC, 0x12, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP8266, 0, &r, &err), 0);
    assert_int_equal(r.value, 0x12C0DB34);
}

static void test_mem_data_not_padded(void **state)
{
    static const uint8_t d[] = {0xAA, 0xBB, 0xCC};
    size_t n;

    (void)state;
    n = rom_encode_mem_data(pkt, sizeof(pkt), 2, d, sizeof(d));
    assert_int_equal(n, 8 + 16 + 3);
    assert_int_equal(pkt[1], ROM_OP_MEM_DATA);
    assert_int_equal(pkt[2], 19);
    assert_int_equal(pkt[4], 0xEF ^ 0xAA ^ 0xBB ^ 0xCC);
    assert_int_equal(pkt[8], 3);
    assert_int_equal(pkt[12], 2);
    assert_memory_equal(pkt + 24, d, 3);
}

/*
 * V-7 SPI_FLASH_MD5.
 */

static const uint8_t md5_4k_ff[16] = {0x6A, 0xE5, 0x9E, 0x64, 0x85, 0x03, 0x77, 0xEE,
                                      0x54, 0x70, 0xC8, 0x54, 0x76, 0x15, 0x51, 0xEA};

static void test_v7_md5(void **state)
{
    struct rom_reply r;
    struct es_err err;
    uint8_t md5[16];
    size_t n;

    (void)state;
    n = rom_encode_spi_flash_md5(pkt, sizeof(pkt), 0x1000, 0x1000);
    assert_wire(n,
                WIRE(0xC0, 0x00, 0x13, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
                     0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));

    unwire(WIRE(0xC0, 0x01, 0x13, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x36, 0x61, 0x65, 0x35, 0x39,
                0x65, 0x36, 0x34, 0x38, 0x35, 0x30, 0x33, 0x37, 0x37, 0x65, 0x65, 0x35, 0x34, 0x37,
                0x30, 0x63, 0x38, 0x35, 0x34, 0x37, 0x36, 0x31, 0x35, 0x35, 0x31, 0x65, 0x61, 0x00,
                0x00, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP32, 32, &r, &err), 0);
    assert_int_equal(r.size, 36);
    assert_int_equal(r.data_len, 32);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP32, &err), 0);
    assert_int_equal(rom_decode_md5(&r, ROM_LOADER_ESP32, md5, &err), 0);
    assert_memory_equal(md5, md5_4k_ff, 16);

    unwire(WIRE(0xC0, 0x01, 0x13, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6A, 0xE5, 0x9E, 0x64, 0x85,
                0x03, 0x77, 0xEE, 0x54, 0x70, 0xC8, 0x54, 0x76, 0x15, 0x51, 0xEA, 0x00, 0x00,
                0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_STUB, 16, &r, &err), 0);
    assert_int_equal(r.size, 18);
    memset(md5, 0, sizeof(md5));
    assert_int_equal(rom_decode_md5(&r, ROM_LOADER_STUB, md5, &err), 0);
    assert_memory_equal(md5, md5_4k_ff, 16);
}

/* Decision (documented in rom.h): ROM MD5 hex must be lowercase, as the ESP32 ROM sends it
 * (§15.1) and esptool compares it; uppercase or any non-hex byte is ES_REPLY_MALFORMED. */
static void test_md5_hex_strict(void **state)
{
    uint8_t f[8 + 32 + 4] = {0x01, 0x13, 36, 0};
    static const char hex[] = "6ae59e64850377ee5470c854761551ea";
    struct rom_reply r;
    struct es_err err;
    uint8_t md5[16];

    (void)state;
    memcpy(f + 8, hex, 32);
    assert_int_equal(rom_decode_reply(f, sizeof(f), ROM_LOADER_ESP32, 32, &r, &err), 0);
    assert_int_equal(rom_decode_md5(&r, ROM_LOADER_ESP32, md5, &err), 0);
    assert_memory_equal(md5, md5_4k_ff, 16);

    f[8 + 1] = 'A'; /* "6A...": uppercase */
    assert_int_equal(rom_decode_reply(f, sizeof(f), ROM_LOADER_ESP32, 32, &r, &err), 0);
    assert_int_equal(rom_decode_md5(&r, ROM_LOADER_ESP32, md5, &err), -ES_REPLY_MALFORMED);
    assert_non_null(strstr(err.msg, "position 1"));
    assert_non_null(strstr(err.msg, "lowercase"));

    f[8 + 1] = 'a';
    f[8 + 31] = 'g';
    assert_int_equal(rom_decode_reply(f, sizeof(f), ROM_LOADER_ESP32, 32, &r, &err), 0);
    assert_int_equal(rom_decode_md5(&r, ROM_LOADER_ESP32, md5, &err), -ES_REPLY_MALFORMED);
    assert_non_null(strstr(err.msg, "position 31"));

    f[8 + 31] = 'a';
    f[8 + 10] = '\0';
    assert_int_equal(rom_decode_reply(f, sizeof(f), ROM_LOADER_ESP32, 32, &r, &err), 0);
    assert_int_equal(rom_decode_md5(&r, ROM_LOADER_ESP32, md5, &err), -ES_REPLY_MALFORMED);

    /* A refused MD5 (no result bytes) has no digest. */
    f[2] = 4;
    f[8] = 0x01;
    f[9] = 0x09;
    assert_int_equal(rom_decode_reply(f, 12, ROM_LOADER_ESP32, 32, &r, &err), 0);
    assert_int_equal(rom_decode_md5(&r, ROM_LOADER_ESP32, md5, &err), -ES_REPLY_SHORT);
}

/*
 * V-8 CHANGE_BAUDRATE, V-10 other requests.
 */

static void test_v8_change_baudrate(void **state)
{
    size_t n;

    (void)state;
    n = rom_encode_change_baudrate(pkt, sizeof(pkt), 921600, 0);
    assert_wire(n, WIRE(0xC0, 0x00, 0x0F, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E,
                        0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    n = rom_encode_change_baudrate(pkt, sizeof(pkt), 921600, 115200);
    assert_wire(n, WIRE(0xC0, 0x00, 0x0F, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E,
                        0x00, 0x00, 0xC2, 0x01, 0x00, 0xC0));
}

static void test_v10_requests(void **state)
{
    struct rom_begin mb = {
        .size = 0x1E90, .blocks = 2, .block_size = 0x1800, .offset = 0x4010E000, .five_words = 1};
    size_t n;

    (void)state;
    n = rom_encode_spi_attach(pkt, sizeof(pkt), 0, ROM_LOADER_ESP32);
    assert_wire(n, WIRE(0xC0, 0x00, 0x0D, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    n = rom_encode_spi_set_params(pkt, sizeof(pkt), 4 * 1024 * 1024);
    assert_wire(n, WIRE(0xC0, 0x00, 0x0B, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10, 0x00,
                        0x00, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0xC0));
    n = rom_encode_flash_end(pkt, sizeof(pkt), ROM_END_RUN);
    assert_wire(n, WIRE(0xC0, 0x00, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                        0x00, 0xC0));
    n = rom_encode_get_security_info(pkt, sizeof(pkt));
    assert_wire(n, WIRE(0xC0, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    /* MEM_BEGIN has four words even if five are asked for. */
    n = rom_encode_mem_begin(pkt, sizeof(pkt), &mb);
    assert_wire(n,
                WIRE(0xC0, 0x00, 0x05, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x90, 0x1E, 0x00, 0x00,
                     0x02, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0xE0, 0x10, 0x40, 0xC0));
    n = rom_encode_mem_end(pkt, sizeof(pkt), 0x4010E004);
    assert_wire(n, WIRE(0xC0, 0x00, 0x06, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0x04, 0xE0, 0x10, 0x40, 0xC0));
    n = rom_encode_write_reg(pkt, sizeof(pkt), 0x60000200, 0x40000, 0xFFFFFFFF, 0);
    assert_wire(n,
                WIRE(0xC0, 0x00, 0x09, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x60,
                     0x00, 0x00, 0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xC0));
}

static void test_other_requests(void **state)
{
    static const uint8_t mem_end_nojump[] = {0x00, 0x06, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
                                             0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    static const uint8_t attach_stub[] = {0x00, 0x0D, 0x04, 0x00, 0x00, 0x00,
                                          0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
    static const uint8_t read_flash[] = {0x00, 0xD2, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x00, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00,
                                         0x00, 0x10, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00};
    static const uint8_t erase_region[] = {0x00, 0xD1, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
                                           0x00, 0x30, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00};
    static const uint8_t read_slow[] = {0x00, 0x0E, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x10, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00};
    static const uint8_t ack[] = {0x00, 0x30, 0x00, 0x00};
    struct rom_begin b = {.size = 0x1000, .blocks = 1, .block_size = 0x400, .offset = 0x10000};
    size_t n;

    (void)state;
    n = rom_encode_mem_end(pkt, sizeof(pkt), 0);
    assert_int_equal(n, sizeof(mem_end_nojump));
    assert_memory_equal(pkt, mem_end_nojump, n);
    n = rom_encode_spi_attach(pkt, sizeof(pkt), 1, ROM_LOADER_STUB);
    assert_int_equal(n, sizeof(attach_stub));
    assert_memory_equal(pkt, attach_stub, n);
    n = rom_encode_spi_attach(pkt, sizeof(pkt), 0, ROM_LOADER_ESP8266);
    assert_int_equal(n, 16);
    n = rom_encode_read_flash(pkt, sizeof(pkt), 0x1000, 0x2000, 0x1000, 64);
    assert_int_equal(n, sizeof(read_flash));
    assert_memory_equal(pkt, read_flash, n);
    n = rom_encode_erase_region(pkt, sizeof(pkt), 0x3000, 0x2000);
    assert_int_equal(n, sizeof(erase_region));
    assert_memory_equal(pkt, erase_region, n);
    n = rom_encode_read_flash_slow(pkt, sizeof(pkt), 0x1000, 64);
    assert_int_equal(n, sizeof(read_slow));
    assert_memory_equal(pkt, read_slow, n);
    n = rom_encode_read_flash_ack(pkt, sizeof(pkt), 0x3000);
    assert_int_equal(n, 4);
    assert_memory_equal(pkt, ack, 4);
    assert_int_equal(rom_encode_read_flash_ack(pkt, 3, 0x3000), 0);

    n = rom_encode_erase_flash(pkt, sizeof(pkt));
    assert_int_equal(n, 8);
    assert_int_equal(pkt[1], 0xD0);
    n = rom_encode_run_user_code(pkt, sizeof(pkt));
    assert_int_equal(n, 8);
    assert_int_equal(pkt[1], 0xD3);
    n = rom_encode_flash_defl_end(pkt, sizeof(pkt), ROM_END_REBOOT);
    assert_int_equal(n, 12);
    assert_int_equal(pkt[1], 0x12);
    assert_int_equal(pkt[8], 0);
    /* FLASH_DEFL_BEGIN takes the five-word form too. */
    b.five_words = 1;
    b.encrypted = 1;
    n = rom_encode_flash_defl_begin(pkt, sizeof(pkt), &b);
    assert_int_equal(n, 28);
    assert_int_equal(pkt[24], 1);
}

static void test_encode_buffer_too_small(void **state)
{
    static const uint8_t d[ROM_MAX_DATA];
    struct rom_begin b = {.block_size = 0x400};
    uint8_t small[44];

    (void)state;
    assert_int_equal(rom_encode_sync(small, 43), 0);
    assert_int_equal(rom_encode_sync(small, 44), 44);
    assert_int_equal(rom_encode_read_reg(small, 11, 0), 0);
    assert_int_equal(rom_encode_flash_begin(small, 23, &b), 0);
    assert_int_equal(rom_encode_flash_data(pkt, 8 + 16 + 0x3FF, 0, d, 10, 0x400), 0);
    assert_int_equal(rom_encode_flash_data(pkt, 8 + 16 + 0x400, 0, d, 10, 0x400), 8 + 16 + 0x400);
    assert_int_equal(rom_encode_get_security_info(small, 7), 0);
    /* The 16-bit size field caps a packet's data at 65535 bytes. */
    assert_int_equal(rom_encode_request(pkt, sizeof(pkt), 0x42, 0, d, ROM_MAX_DATA),
                     8 + ROM_MAX_DATA);
    assert_int_equal(rom_encode_request(pkt, sizeof(pkt), 0x42, 0, d, ROM_MAX_DATA - 1),
                     8 + ROM_MAX_DATA - 1);
    assert_int_equal(rom_encode_mem_data(pkt, sizeof(pkt), 0, d, ROM_MAX_DATA - 16),
                     8 + ROM_MAX_DATA);
    assert_int_equal(rom_encode_mem_data(pkt, sizeof(pkt), 0, d, ROM_MAX_DATA - 15), 0);
}

/*
 * V-11 replies with data or errors, V-12 compressed write.
 */

static void test_v11_security_info(void **state)
{
    struct rom_security_info si;
    struct rom_reply r;
    struct es_err err;
    uint8_t f[8 + 24] = {0x01, 0x14, 0x18, 0x00};

    (void)state;
    unwire(WIRE(0xC0, 0x01, 0x14, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP32, 20, &r, &err), 0);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP32, &err), 0);
    assert_int_equal(rom_decode_security_info(&r, &si, &err), 0);
    assert_true(si.has_chip_id);
    assert_int_equal(si.chip_id, 5);
    assert_int_equal(si.flags, 0);

    /* Secure download mode set, flash_crypt_cnt 3, ESP32-S2 12-byte form. */
    f[2] = 16;
    f[8] = 0x04;
    f[12] = 0x03;
    assert_int_equal(rom_decode_reply(f, 8 + 16, ROM_LOADER_ESP32, 12, &r, &err), 0);
    assert_int_equal(rom_decode_security_info(&r, &si, &err), 0);
    assert_false(si.has_chip_id);
    assert_true(si.flags & ROM_SECURITY_FLAG_SECURE_DOWNLOAD);
    assert_int_equal(si.crypt_cnt, 3);
    /* Decoded with the wrong result length. */
    assert_int_equal(rom_decode_reply(f, 8 + 16, ROM_LOADER_ESP32, 0, &r, &err), 0);
    assert_int_equal(rom_decode_security_info(&r, &si, &err), -ES_REPLY_SHORT);
}

static void test_v11_esp8266_checksum_error(void **state)
{
    struct rom_reply r;
    struct es_err err;

    (void)state;
    unwire(WIRE(0xC0, 0x01, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP8266, 0, &r, &err), 0);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.error, 0x07);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP8266, &err), -ES_ROM_REFUSED);
    assert_int_equal(err.code, ES_ROM_REFUSED);
    assert_int_equal(err.rom_status, 0x07);
    assert_string_equal(err.msg, "FLASH_DATA refused by the ESP8266 ROM: status 01 07 (checksum "
                                 "error); bytes were corrupted on the line; check the cable or "
                                 "lower the baud rate");
}

static void test_v11_esp32_rejected_command(void **state)
{
    struct rom_reply r;
    struct es_err err;

    (void)state;
    unwire(
        WIRE(0xC0, 0x01, 0x14, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00, 0x00, 0xC0));
    /* Decoded for GET_SECURITY_INFO (20 result bytes): the refusal carries none. */
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP32, 20, &r, &err), 0);
    assert_int_equal(r.data_len, 0);
    assert_int_equal(r.error, 0x05);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP32, &err), -ES_ROM_REFUSED);
    assert_int_equal(err.rom_status, 0x05);
    assert_non_null(strstr(err.msg, "received message has an invalid format"));
    assert_non_null(strstr(err.msg, "GET_SECURITY_INFO"));
    assert_true(
        rom_reply_is_unsupported(frame, frame_len, ROM_LOADER_ESP32, ROM_OP_GET_SECURITY_INFO));
}

static void test_v11_stub_bad_checksum(void **state)
{
    struct rom_reply r;
    struct es_err err;

    (void)state;
    unwire(WIRE(0xC0, 0x01, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC1, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_STUB, 0, &r, &err), 0);
    assert_int_equal(r.status, 0xC1);
    assert_int_equal(r.error, 0xC1);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_STUB, &err), -ES_ROM_REFUSED);
    assert_int_equal(err.rom_status, 0xC1);
    assert_non_null(strstr(err.msg, "bad data checksum"));
    assert_false(rom_reply_is_unsupported(frame, frame_len, ROM_LOADER_STUB, ROM_OP_FLASH_DATA));
}

static void test_v12_deflate(void **state)
{
    static const uint8_t z[26] = {0x78, 0xDA, 0xED, 0xC1, 0x01, 0x0D, 0x00, 0x00, 0x00,
                                  0xC2, 0xA0, 0xFE, 0xA9, 0x6F, 0x0F, 0x07, 0x14, 0x00,
                                  0x00, 0x00, 0xF0, 0x6E, 0x81, 0x61, 0xF0, 0xE2};
    struct rom_begin b = {.size = 0x1000, .blocks = 1, .block_size = 0x400, .offset = 0x10000};
    uint8_t want[2 + 8 + 16 + 26];
    static const uint8_t head[] = {0xC0, 0x00, 0x11, 0x2A, 0x00, 0x47, 0x00, 0x00, 0x00,
                                   0x1A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    size_t n;

    (void)state;
    n = rom_encode_flash_defl_begin(pkt, sizeof(pkt), &b);
    assert_wire(n,
                WIRE(0xC0, 0x00, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
                     0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xC0));
    memcpy(want, head, sizeof(head));
    memcpy(want + sizeof(head), z, sizeof(z));
    want[sizeof(want) - 1] = 0xC0;
    n = rom_encode_flash_defl_data(pkt, sizeof(pkt), 0, z, sizeof(z));
    assert_wire(n, want, sizeof(want));
}

/*
 * Status rules and malformed replies.
 */

/* §15: only byte 0 decides; ROMs leave a stale error byte (and stale bytes 3-4) on success. */
static void test_stale_error_byte_on_success(void **state)
{
    struct rom_reply r;
    struct es_err err;

    (void)state;
    unwire(WIRE(0xC0, 0x01, 0x09, 0x02, 0x00, 0x0B, 0x40, 0x16, 0x00, 0x00, 0x05, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP8266, 0, &r, &err), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status_bytes[1], 0x05);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP8266, &err), 0);
    assert_false(rom_reply_is_unsupported(frame, frame_len, ROM_LOADER_ESP8266, 0x09));

    unwire(
        WIRE(0xC0, 0x01, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x36, 0x61, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP32, 0, &r, &err), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.error, 0);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP32, &err), 0);
}

/* The same bytes read as a 4-byte ROM status or a 2-byte stub status. */
static void test_rom_vs_stub_status(void **state)
{
    /* Size 4: an ESP32 ROM refusal 01 06 00 00. */
    static const uint8_t f4[] = {0x01, 0x02, 0x04, 0x00, 0, 0, 0, 0, 0x01, 0x06, 0x00, 0x00};
    /* Size 2: stub refusal C4 00. */
    static const uint8_t f2[] = {0x01, 0x02, 0x02, 0x00, 0, 0, 0, 0, 0xC4, 0x00};
    struct rom_reply r;
    struct es_err err;

    (void)state;
    assert_int_equal(rom_status_len(ROM_LOADER_ESP8266), 2);
    assert_int_equal(rom_status_len(ROM_LOADER_ESP32), 4);
    assert_int_equal(rom_status_len(ROM_LOADER_STUB), 2);

    assert_int_equal(rom_decode_reply(f4, sizeof(f4), ROM_LOADER_ESP32, 0, &r, &err), 0);
    assert_int_equal(r.status_len, 4);
    assert_int_equal(r.error, 0x06);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_ESP32, &err), -ES_ROM_REFUSED);
    assert_int_equal(err.rom_status, 0x06);
    /* A 2-byte status is too short for the ESP32 ROM. */
    assert_int_equal(rom_decode_reply(f2, sizeof(f2), ROM_LOADER_ESP32, 0, &r, &err),
                     -ES_REPLY_SHORT);
    assert_int_equal(rom_decode_reply(f2, sizeof(f2), ROM_LOADER_STUB, 0, &r, &err), 0);
    assert_int_equal(r.status_len, 2);
    assert_int_equal(r.error, 0xC4);
    assert_int_equal(rom_reply_check(&r, ROM_LOADER_STUB, &err), -ES_ROM_REFUSED);
    assert_int_equal(err.rom_status, 0xC4);
    assert_non_null(strstr(err.msg, "SPI operation failed"));
    /* Read as an ESP8266 ROM reply, C4 is a status and 00 the reason. */
    assert_int_equal(rom_decode_reply(f2, sizeof(f2), ROM_LOADER_ESP8266, 0, &r, &err), 0);
    assert_int_equal(r.error, 0x00);
}

static void test_malformed_replies(void **state)
{
    static const uint8_t ok[] = {0x01, 0x0A, 0x02, 0x00, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00};
    uint8_t f[sizeof(ok) + 1];
    struct rom_reply r;
    struct es_err err;

    (void)state;
    assert_int_equal(rom_decode_reply(ok, sizeof(ok), ROM_LOADER_ESP8266, 0, &r, &err), 0);
    /* Shorter than the header. */
    assert_int_equal(rom_decode_reply(ok, 7, ROM_LOADER_ESP8266, 0, &r, &err), -ES_REPLY_MALFORMED);
    assert_int_equal(err.code, ES_REPLY_MALFORMED);
    assert_non_null(strstr(err.msg, "7 bytes"));
    assert_int_equal(rom_decode_reply(ok, 0, ROM_LOADER_ESP8266, 0, &r, &err), -ES_REPLY_MALFORMED);
    /* Wrong direction: our own request echoed back. */
    memcpy(f, ok, sizeof(ok));
    f[0] = 0x00;
    assert_int_equal(rom_decode_reply(f, sizeof(ok), ROM_LOADER_ESP8266, 0, &r, &err),
                     -ES_REPLY_MALFORMED);
    assert_non_null(strstr(err.msg, "direction byte 0x00"));
    f[0] = 0x02;
    assert_int_equal(rom_decode_reply(f, sizeof(ok), ROM_LOADER_ESP8266, 0, &r, &err),
                     -ES_REPLY_MALFORMED);
    /* Size field larger, then smaller, than the bytes present. */
    f[0] = 0x01;
    f[2] = 0x03;
    assert_int_equal(rom_decode_reply(f, sizeof(ok), ROM_LOADER_ESP8266, 0, &r, &err),
                     -ES_REPLY_SHORT);
    assert_non_null(strstr(err.msg, "says 3 data bytes but the frame carries 2"));
    f[2] = 0x02;
    f[sizeof(ok)] = 0x00;
    assert_int_equal(rom_decode_reply(f, sizeof(f), ROM_LOADER_ESP8266, 0, &r, &err),
                     -ES_REPLY_SHORT);
    /* Too short for its result: a successful MD5 reply with no digest. */
    assert_int_equal(rom_decode_reply(ok, sizeof(ok), ROM_LOADER_ESP8266, 32, &r, &err),
                     -ES_REPLY_SHORT);
    assert_non_null(strstr(err.msg, "expected 32 result bytes and 2 status bytes"));
    /* Too short for the status. */
    f[2] = 0x01;
    assert_int_equal(rom_decode_reply(f, 9, ROM_LOADER_ESP8266, 0, &r, &err), -ES_REPLY_SHORT);
    f[2] = 0x00;
    assert_int_equal(rom_decode_reply(f, 8, ROM_LOADER_STUB, 0, &r, &err), -ES_REPLY_SHORT);
}

/* Trailing bytes after the status are ignored, as esptool does: the status sits right after the
 * result bytes. */
static void test_extra_bytes_after_status(void **state)
{
    static const uint8_t f[] = {0x01, 0x0A, 0x04, 0x00, 0x78, 0x56,
                                0x34, 0x12, 0x00, 0x00, 0x01, 0x05};
    struct rom_reply r;
    struct es_err err;

    (void)state;
    assert_int_equal(rom_decode_reply(f, sizeof(f), ROM_LOADER_ESP8266, 0, &r, &err), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.value, 0x12345678);
    assert_ptr_equal(r.status_bytes, f + 8);
}

/* §15: an unsupported op gets ONE 01 05 reply whose op byte is left over from before. */
static void test_unsupported_detection(void **state)
{
    /* ESP32 ROM: ERASE_FLASH sent; the reply carries the previous READ_REG's op and value. */
    static const uint8_t esp32[] = {0x01, 0x0A, 0x04, 0x00, 0x83, 0x1D,
                                    0xF0, 0x00, 0x01, 0x05, 0x00, 0x00};
    static const uint8_t esp8266[] = {0x01, 0x0A, 0x02, 0x00, 0x01, 0xC1, 0xF0, 0xFF, 0x01, 0x05};
    static const uint8_t esp8266_other[] = {0x01, 0x0A, 0x02, 0x00, 0, 0, 0, 0, 0x01, 0x06};
    static const uint8_t stub_c3[] = {0x01, 0xD0, 0x02, 0x00, 0, 0, 0, 0, 0xC3, 0x00};
    static const uint8_t stub_ff[] = {0x01, 0x14, 0x02, 0x00, 0, 0, 0, 0, 0xFF, 0x00};
    static const uint8_t stub_new[] = {0x01, 0x14, 0x02, 0x00, 0, 0, 0, 0, 0x01, 0xC3};
    /* 01 05 with the 32 stale bytes of an MD5 reply is a real answer, not "unsupported". */
    uint8_t md5_err[8 + 36] = {0x01, 0x13, 36, 0};
    uint8_t echo[sizeof(esp32)];

    (void)state;
    assert_true(rom_reply_is_unsupported(esp32, sizeof(esp32), ROM_LOADER_ESP32, 0xD0));
    assert_true(rom_reply_is_unsupported(esp8266, sizeof(esp8266), ROM_LOADER_ESP8266, 0x13));
    assert_false(
        rom_reply_is_unsupported(esp8266_other, sizeof(esp8266_other), ROM_LOADER_ESP8266, 0x13));
    /* A 2-byte status is not what the ESP32 ROM sends. */
    assert_false(rom_reply_is_unsupported(esp8266, sizeof(esp8266), ROM_LOADER_ESP32, 0x13));
    assert_true(rom_reply_is_unsupported(stub_c3, sizeof(stub_c3), ROM_LOADER_STUB, 0xD0));
    assert_true(rom_reply_is_unsupported(stub_ff, sizeof(stub_ff), ROM_LOADER_STUB, 0x14));
    assert_true(rom_reply_is_unsupported(stub_new, sizeof(stub_new), ROM_LOADER_STUB, 0x14));
    md5_err[8 + 32] = 0x01;
    md5_err[8 + 33] = 0x05;
    assert_false(rom_reply_is_unsupported(md5_err, sizeof(md5_err), ROM_LOADER_ESP32, 0x13));
    /* A request echoed back is not a reply. */
    memcpy(echo, esp32, sizeof(echo));
    echo[0] = 0x00;
    assert_false(rom_reply_is_unsupported(echo, sizeof(echo), ROM_LOADER_ESP32, 0xD0));
    /* Short frames are safe to ask about. */
    assert_false(rom_reply_is_unsupported(esp32, 3, ROM_LOADER_ESP32, 0xD0));
}

static void test_stub_greeting(void **state)
{
    struct slip_decoder d;
    static uint8_t buf[64];

    (void)state;
    frames_seen = 0;
    slip_decoder_init(&d, buf, sizeof(buf), on_frame, NULL, NULL);
    slip_decoder_feed(&d, WIRE(0xC0, 0x4F, 0x48, 0x41, 0x49, 0xC0));
    assert_int_equal(frames_seen, 1);
    assert_true(rom_is_stub_greeting(frame, frame_len));
    assert_false(rom_is_stub_greeting(frame, 3));
    assert_false(rom_is_stub_greeting((const uint8_t *)"OHAI!", 5));
    assert_false(rom_is_stub_greeting((const uint8_t *)"OHAJ", 4));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(rom_op_name(ROM_OP_FLASH_BEGIN), "FLASH_BEGIN");
    assert_string_equal(rom_op_name(0x0E), "READ_FLASH_SLOW");
    assert_string_equal(rom_op_name(0xD3), "RUN_USER_CODE");
    assert_string_equal(rom_op_name(0x42), "UNKNOWN");
    assert_string_equal(rom_op_name(0x0C), "UNKNOWN");
    assert_string_equal(rom_error_name(ROM_LOADER_ESP8266, 0x05),
                        "received message has an invalid format");
    assert_string_equal(rom_error_name(ROM_LOADER_ESP32, 0x07), "checksum error");
    assert_string_equal(rom_error_name(ROM_LOADER_ESP32, 0x08), "flash write error");
    assert_string_equal(rom_error_name(ROM_LOADER_STUB, 0xC1), "bad data checksum");
    assert_string_equal(rom_error_name(ROM_LOADER_STUB, 0xFF), "command not implemented");
    /* ROM and stub codes live in separate tables. */
    assert_string_equal(rom_error_name(ROM_LOADER_STUB, 0x07), "unknown error code");
    assert_string_equal(rom_error_name(ROM_LOADER_ESP32, 0xC1), "unknown error code");
    assert_string_equal(rom_loader_name(ROM_LOADER_STUB), "stub");
    assert_string_equal(rom_loader_name(ROM_LOADER_UNKNOWN), "unknown loader");
}

/* Before a SYNC reply names the loader, no status length is known: a reply cannot be decoded,
 * and nothing is taken for an "unsupported" answer. */
static void test_unknown_loader(void **state)
{
    struct rom_reply r;
    struct es_err err;

    (void)state;
    assert_int_equal(rom_status_len(ROM_LOADER_ESP8266), 2);
    assert_int_equal(rom_status_len(ROM_LOADER_ESP32), 4);
    assert_int_equal(rom_status_len(ROM_LOADER_STUB), 2);
    assert_int_equal(rom_status_len(ROM_LOADER_UNKNOWN), 0);
    unwire(
        WIRE(0xC0, 0x01, 0x0A, 0x04, 0x00, 0x83, 0x1D, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0));
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_UNKNOWN, 0, &r, &err),
                     -ES_INVALID_ARG);
    assert_int_equal(rom_decode_reply(frame, frame_len, ROM_LOADER_ESP32, 0, &r, &err), 0);
    unwire(WIRE(0xC0, 0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x05, 0xC0));
    assert_int_equal(rom_reply_is_unsupported(frame, frame_len, ROM_LOADER_UNKNOWN, 0x14), 0);
    assert_int_equal(rom_reply_is_unsupported(frame, frame_len, ROM_LOADER_ESP8266, 0x14), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_sync_request),
        cmocka_unit_test(test_v1_sync_replies),
        cmocka_unit_test(test_v2_read_reg),
        cmocka_unit_test(test_v4_flash_begin),
        cmocka_unit_test(test_esp8266_erase_size_table),
        cmocka_unit_test(test_esp8266_erase_size_covers),
        cmocka_unit_test(test_checksum),
        cmocka_unit_test(test_v5_flash_data_short),
        cmocka_unit_test(test_v5_flash_data_full_block),
        cmocka_unit_test(test_v6_flash_data_escaped),
        cmocka_unit_test(test_v6_reply_escaped),
        cmocka_unit_test(test_mem_data_not_padded),
        cmocka_unit_test(test_v7_md5),
        cmocka_unit_test(test_md5_hex_strict),
        cmocka_unit_test(test_v8_change_baudrate),
        cmocka_unit_test(test_v10_requests),
        cmocka_unit_test(test_other_requests),
        cmocka_unit_test(test_encode_buffer_too_small),
        cmocka_unit_test(test_v11_security_info),
        cmocka_unit_test(test_v11_esp8266_checksum_error),
        cmocka_unit_test(test_v11_esp32_rejected_command),
        cmocka_unit_test(test_v11_stub_bad_checksum),
        cmocka_unit_test(test_v12_deflate),
        cmocka_unit_test(test_stale_error_byte_on_success),
        cmocka_unit_test(test_rom_vs_stub_status),
        cmocka_unit_test(test_malformed_replies),
        cmocka_unit_test(test_extra_bytes_after_status),
        cmocka_unit_test(test_unsupported_detection),
        cmocka_unit_test(test_stub_greeting),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_unknown_loader),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
