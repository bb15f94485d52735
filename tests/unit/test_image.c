/* Firmware images: protocol doc V-9 (both complete images, byte for byte), header parsing and
 * its precise errors, patching rules of §9.3 (0xEA skip, merged-image tail kept, digest
 * recomputed), the prepared bytes and MD5 of §8.2, hashes (V-7) and loading files. */
#include <setjmp.h> /* cmocka.h needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/image.h"

/* V-9: one segment 01 02 03 04 at 0x40100000, qio / 512KB / 40m, checksum 0xEB. */
static const uint8_t esp8266_before[32] = {
    0xE9, 0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x40, 0x00, 0x00, 0x10, 0x40, 0x04, 0x00, 0x00, 0x00,
    0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xEB};
static const uint8_t esp8266_after[32] = {
    0xE9, 0x01, 0x02, 0x40, 0x00, 0x00, 0x10, 0x40, 0x00, 0x00, 0x10, 0x40, 0x04, 0x00, 0x00, 0x00,
    0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xEB};

/* V-9: extended header with WP 0xEE and hash appended, one segment DE AD BE EF at 0x3FFB0000,
 * checksum 0xCD, SHA-256 of bytes 0-47. */
static const uint8_t esp32_before[80] = {
    0xe9, 0x01, 0x00, 0x1f, 0x00, 0x00, 0x08, 0x40, 0xee, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xfb, 0x3f, 0x04, 0x00, 0x00, 0x00,
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcd,
    0x36, 0x44, 0x6b, 0xec, 0xc2, 0x86, 0xb6, 0xf4, 0x2c, 0x02, 0xc2, 0x6f, 0x1c, 0x3b, 0x05, 0x39,
    0x07, 0x2f, 0xfd, 0x37, 0x15, 0x20, 0x0a, 0x19, 0x95, 0x95, 0xc4, 0xaa, 0x42, 0x5a, 0xf9, 0x83};
static const uint8_t esp32_after[80] = {
    0xe9, 0x01, 0x02, 0x20, 0x00, 0x00, 0x08, 0x40, 0xee, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xfb, 0x3f, 0x04, 0x00, 0x00, 0x00,
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcd,
    0xf0, 0xd7, 0xde, 0xf4, 0x86, 0xa9, 0x4c, 0xec, 0x46, 0x7f, 0x4a, 0x83, 0x7d, 0x1b, 0x47, 0xec,
    0x15, 0x32, 0x30, 0x56, 0xd0, 0x90, 0x12, 0x59, 0x86, 0xa4, 0xea, 0x0c, 0x29, 0xfe, 0x60, 0x4e};

/* dio / 4MB / 40m, as the codes a profile resolves for each family. */
static const struct image_flash_params dio_4mb_40m_esp8266 = {CHIP_FLASH_DIO, 0x0, 0x40};
static const struct image_flash_params dio_4mb_40m_esp32 = {CHIP_FLASH_DIO, 0x0, 0x20};
static const struct image_flash_params keep_all = {IMAGE_KEEP, IMAGE_KEEP, IMAGE_KEEP};

static const struct chip *chip(const char *name)
{
    const struct chip *c = chip_by_name(name);
    assert_non_null(c);
    return c;
}

/* ---- V-9 ---- */

static void test_v9_esp8266(void **state)
{
    uint8_t buf[32];
    struct es_err err;
    int patched = -1;
    (void)state;

    memcpy(buf, esp8266_before, sizeof(buf));
    assert_int_equal(
        image_patch_header(chip("esp8266"), buf, sizeof(buf), &dio_4mb_40m_esp8266, &patched, &err),
        0);
    assert_int_equal(patched, 1);
    assert_memory_equal(buf, esp8266_after, sizeof(buf));
}

static void test_v9_esp32(void **state)
{
    uint8_t buf[80];
    struct es_err err;
    int patched = -1;
    (void)state;

    memcpy(buf, esp32_before, sizeof(buf));
    assert_int_equal(
        image_patch_header(chip("esp32"), buf, sizeof(buf), &dio_4mb_40m_esp32, &patched, &err), 0);
    assert_int_equal(patched, 1);
    assert_memory_equal(buf, esp32_after, sizeof(buf));
}

static void test_v9_via_prepare(void **state)
{
    struct image_prepared p;
    struct es_err err;
    uint8_t md5[16];
    (void)state;

    assert_int_equal(image_prepare(chip("esp32"), esp32_before, sizeof(esp32_before), 0x1000,
                                   &dio_4mb_40m_esp32, &p, &err),
                     0);
    assert_int_equal(p.size, 80);
    assert_int_equal(p.offset, 0x1000);
    assert_true(p.patched);
    assert_memory_equal(p.data, esp32_after, 80);
    assert_int_equal(es_md5(esp32_after, 80, md5, &err), 0);
    assert_memory_equal(p.md5, md5, 16);
    image_prepared_close(&p);
    assert_null(p.data);
    image_prepared_close(&p); /* closing twice is harmless */

    assert_int_equal(image_prepare(chip("esp8266"), esp8266_before, sizeof(esp8266_before), 0x0,
                                   &dio_4mb_40m_esp8266, &p, &err),
                     0);
    assert_memory_equal(p.data, esp8266_after, 32);
    image_prepared_close(&p);
}

/* ---- Parsing ---- */

static void test_parse_v9_images(void **state)
{
    struct image_header h;
    struct es_err err;
    (void)state;

    assert_int_equal(image_parse_header(esp8266_before, 32, 0, &h, &err), 0);
    assert_int_equal(h.magic, 0xE9);
    assert_int_equal(h.segments, 1);
    assert_int_equal(h.entry, 0x40100000);
    assert_false(h.has_ext);
    assert_int_equal(h.data_length, 32);
    assert_int_equal(h.checksum, 0xEB);
    assert_true(h.checksum_ok);
    assert_int_equal(h.seg_addr[0], 0x40100000);
    assert_int_equal(h.seg_len[0], 4);

    assert_int_equal(image_parse_header(esp32_before, 80, 1, &h, &err), 0);
    assert_true(h.has_ext);
    assert_int_equal(h.chip_id, 0);
    assert_true(h.hash_appended);
    assert_int_equal(h.data_length, 48);
    assert_int_equal(h.size_freq, 0x1F);
    assert_int_equal(h.entry, 0x40080000);
    assert_int_equal(h.seg_addr[0], 0x3FFB0000);
    assert_true(h.checksum_ok);
    assert_true(h.digest_ok);
    assert_int_equal(image_parse_header(esp32_after, 80, 1, &h, &err), 0);
    assert_true(h.digest_ok);
    assert_int_equal(h.mode, 2);
    assert_int_equal(h.size_freq, 0x20);
}

static void test_parse_reports_bad_checksum_and_digest(void **state)
{
    uint8_t buf[80];
    struct image_header h;
    struct es_err err;
    (void)state;

    memcpy(buf, esp32_before, sizeof(buf));
    buf[33] ^= 0x01; /* a segment byte: both the XOR checksum and the digest go stale */
    assert_int_equal(image_parse_header(buf, sizeof(buf), 1, &h, &err), 0);
    assert_false(h.checksum_ok);
    assert_int_equal(h.checksum_calc, 0xCC);
    assert_false(h.digest_ok);
}

static void expect_format_error(const uint8_t *data, size_t size, int esp32, const char *msg)
{
    struct image_header h;
    struct es_err err;

    assert_int_equal(image_parse_header(data, size, esp32, &h, &err), -(int)ES_IMAGE_FORMAT);
    assert_int_equal(err.code, ES_IMAGE_FORMAT);
    assert_string_equal(err.msg, msg);
}

static void test_parse_errors(void **state)
{
    uint8_t buf[80];
    (void)state;

    expect_format_error(esp8266_before, 7, 0,
                        "image is 7 bytes, shorter than the 8-byte firmware header");
    expect_format_error(esp8266_before, 18, 0,
                        "segment 0 of 1 (load address 0x40100000, 4 bytes at offset 0x10) runs "
                        "past the end of the 18-byte image; the file is truncated");
    expect_format_error(esp8266_before, 12, 0,
                        "segment 0 of 1: its 8-byte header at offset 0x8 is past the end of the "
                        "12-byte image; the file is truncated");
    expect_format_error(esp8266_before, 31, 0,
                        "checksum byte at offset 0x1f is past the end of the 31-byte image; the "
                        "file is truncated");
    expect_format_error(esp32_before, 20, 1,
                        "image is 20 bytes, shorter than the 24-byte ESP32 header with its "
                        "extended part");
    expect_format_error(esp32_before, 79, 1,
                        "header says a SHA-256 digest follows the checksum at offset 0x30, but "
                        "the 79-byte image ends before it; the file is truncated");

    memcpy(buf, esp32_before, sizeof(buf));
    buf[23] = 2;
    expect_format_error(buf, sizeof(buf), 1,
                        "extended header byte 23 (hash appended) is 2, expected 0 or 1; this is "
                        "not a valid ESP32-family image");
    memcpy(buf, esp8266_before, 32);
    buf[0] = 0x7F;
    expect_format_error(buf, 32, 0,
                        "byte 0 is 0x7f, not the firmware image magic 0xE9; this is not a "
                        "bootloader or app image");
    buf[0] = 0xEA;
    expect_format_error(buf, 32, 0,
                        "image starts with 0xEA, an ESP8266 v2 app image, not a 0xE9 firmware "
                        "image; espstation writes it as is but cannot parse it");
    memcpy(buf, esp8266_before, 32);
    buf[1] = 0;
    expect_format_error(buf, 32, 0,
                        "header says 0 segments, expected 1 to 16; the image is corrupt");
    buf[1] = 17;
    expect_format_error(buf, 32, 0,
                        "header says 17 segments, expected 1 to 16; the image is corrupt");
    /* A huge segment length must not wrap the bounds check. */
    memcpy(buf, esp8266_before, 32);
    buf[12] = 0xFC;
    buf[13] = buf[14] = buf[15] = 0xFF;
    expect_format_error(buf, 32, 0,
                        "segment 0 of 1 (load address 0x40100000, 4294967292 bytes at offset "
                        "0x10) runs past the end of the 32-byte image; the file is truncated");
}

/* ---- Patching rules (§9.3) ---- */

static void test_patch_round_trip(void **state)
{
    uint8_t buf[80];
    struct image_flash_params back = {0, 0xF, 0x10}; /* qio, 80m, 2MB: the original */
    struct image_header h;
    struct es_err err;
    int patched;
    (void)state;

    memcpy(buf, esp32_before, sizeof(buf));
    assert_int_equal(image_patch_header(chip("esp32"), buf, 80, &dio_4mb_40m_esp32, &patched, &err),
                     0);
    assert_int_equal(image_parse_header(buf, 80, 1, &h, &err), 0);
    assert_int_equal(h.mode, CHIP_FLASH_DIO);
    assert_true(h.digest_ok);
    assert_int_equal(image_patch_header(chip("esp32"), buf, 80, &back, &patched, &err), 0);
    assert_true(patched);
    assert_memory_equal(buf, esp32_before, 80);
}

static void test_patch_single_fields(void **state)
{
    uint8_t buf[32];
    struct image_flash_params only_freq = {IMAGE_KEEP, 0xF, IMAGE_KEEP};
    struct image_flash_params only_size = {IMAGE_KEEP, IMAGE_KEEP, 0x90};
    struct es_err err;
    int patched;
    (void)state;

    memcpy(buf, esp8266_before, 32);
    assert_int_equal(image_patch_header(chip("esp8266"), buf, 32, &only_freq, &patched, &err), 0);
    assert_int_equal(buf[2], 0x00);
    assert_int_equal(buf[3], 0x0F);
    assert_int_equal(image_patch_header(chip("esp8266"), buf, 32, &only_size, &patched, &err), 0);
    assert_int_equal(buf[3], 0x9F);
    /* Same values again: nothing changes, patched says so. */
    assert_int_equal(image_patch_header(chip("esp8266"), buf, 32, &only_size, &patched, &err), 0);
    assert_false(patched);
}

static void test_patch_keep_touches_nothing(void **state)
{
    static const uint8_t blob[6] = {1, 2, 3, 4, 5, 6};
    uint8_t buf[6];
    struct es_err err;
    int patched = -1;
    (void)state;

    memcpy(buf, blob, sizeof(buf));
    /* Not even parsed: all keep is the first rule of §9.3. */
    assert_int_equal(image_patch_header(chip("esp32"), buf, 6, &keep_all, &patched, &err), 0);
    assert_int_equal(patched, 0);
    assert_int_equal(image_patch_header(chip("esp32"), buf, 6, NULL, &patched, &err), 0);
    assert_memory_equal(buf, blob, 6);
}

static void test_patch_esp8266_v2_skipped(void **state)
{
    uint8_t buf[32];
    struct es_err err;
    int patched = -1;
    (void)state;

    memcpy(buf, esp8266_before, 32);
    buf[0] = 0xEA;
    assert_int_equal(
        image_patch_header(chip("esp8266"), buf, 32, &dio_4mb_40m_esp8266, &patched, &err), 0);
    assert_int_equal(patched, 0);
    assert_int_equal(buf[2], 0x00);
    assert_int_equal(buf[3], 0x00);
    /* On an ESP32, 0xEA is simply not a firmware image. */
    assert_int_equal(image_patch_header(chip("esp32"), buf, 32, &dio_4mb_40m_esp32, &patched, &err),
                     -(int)ES_IMAGE_FORMAT);
}

static void test_patch_unparsable_is_error(void **state)
{
    uint8_t buf[80];
    struct es_err err;
    int patched = -1;
    (void)state;

    memcpy(buf, esp32_before, 80);
    buf[23] = 2;
    assert_int_equal(image_patch_header(chip("esp32"), buf, 80, &dio_4mb_40m_esp32, &patched, &err),
                     -(int)ES_IMAGE_FORMAT);
    assert_string_equal(err.msg,
                        "cannot set flash mode/freq/size in the esp32 image header: extended "
                        "header byte 23 (hash appended) is 2, expected 0 or 1; this is not a "
                        "valid ESP32-family image");
    assert_int_equal(buf[2], 0x00); /* untouched */
    assert_int_equal(patched, 0);

    memset(buf, 0xFF, sizeof(buf));
    assert_int_equal(image_patch_header(chip("esp32"), buf, 80, &dio_4mb_40m_esp32, NULL, &err),
                     -(int)ES_IMAGE_FORMAT);
    assert_int_equal(image_patch_header(chip("esp32"), buf, 80, &dio_4mb_40m_esp32, NULL, NULL),
                     -(int)ES_IMAGE_FORMAT);
}

static void test_patch_bad_codes(void **state)
{
    uint8_t buf[32];
    struct image_flash_params bad_size = {IMAGE_KEEP, IMAGE_KEEP, 0x04};
    struct image_flash_params bad_mode = {4, IMAGE_KEEP, IMAGE_KEEP};
    struct es_err err;
    (void)state;

    memcpy(buf, esp8266_before, 32);
    assert_int_equal(image_patch_header(chip("esp8266"), buf, 32, &bad_size, NULL, &err),
                     -(int)ES_INVALID_ARG);
    assert_int_equal(image_patch_header(chip("esp8266"), buf, 32, &bad_mode, NULL, &err),
                     -(int)ES_INVALID_ARG);
    assert_memory_equal(buf, esp8266_before, 32);
}

static void test_patch_merged_tail_kept(void **state)
{
    uint8_t buf[80 + 4096];
    struct es_err err;
    int patched;
    (void)state;

    memcpy(buf, esp32_before, 80);
    for (size_t i = 80; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7);
    assert_int_equal(
        image_patch_header(chip("esp32"), buf, sizeof(buf), &dio_4mb_40m_esp32, &patched, &err), 0);
    assert_memory_equal(buf, esp32_after, 80);
    for (size_t i = 80; i < sizeof(buf); i++)
        assert_int_equal(buf[i], (uint8_t)(i * 7));
}

static void test_patch_esp32_without_digest(void **state)
{
    uint8_t buf[80];
    struct es_err err;
    int patched;
    (void)state;

    memcpy(buf, esp32_before, 80);
    buf[23] = 0; /* no digest: bytes 48-79 are just trailing data */
    assert_int_equal(image_patch_header(chip("esp32"), buf, 80, &dio_4mb_40m_esp32, &patched, &err),
                     0);
    assert_int_equal(buf[2], 0x02);
    assert_int_equal(buf[3], 0x20);
    assert_memory_equal(buf + 48, esp32_before + 48, 32);
}

/* ---- Preparing a region (§8.2) ---- */

static void test_prepare_pads_and_skips_other_offsets(void **state)
{
    static const uint8_t odd[5] = {0xE9, 1, 2, 3, 4};
    const uint8_t want[8] = {0xE9, 1, 2, 3, 4, 0xFF, 0xFF, 0xFF};
    struct image_prepared p;
    struct es_err err;
    uint8_t md5[16];
    (void)state;

    /* 0x10000 is not the bootloader offset: no parse, no patch, even with settings. */
    assert_int_equal(
        image_prepare(chip("esp32"), odd, sizeof(odd), 0x10000, &dio_4mb_40m_esp32, &p, &err), 0);
    assert_int_equal(p.size, 8);
    assert_false(p.patched);
    assert_memory_equal(p.data, want, 8);
    assert_int_equal(es_md5(want, 8, md5, &err), 0);
    assert_memory_equal(p.md5, md5, 16);
    assert_int_equal(es_md5_padded(odd, sizeof(odd), md5, &err), 0);
    assert_memory_equal(p.md5, md5, 16);
    image_prepared_close(&p);

    /* At the bootloader offset the same bytes are an error: they are not a firmware image. */
    assert_int_equal(
        image_prepare(chip("esp32"), odd, sizeof(odd), 0x1000, &dio_4mb_40m_esp32, &p, &err),
        -(int)ES_IMAGE_FORMAT);
    assert_null(p.data);
    assert_string_equal(err.msg, "image at 0x1000 (the esp32 bootloader offset): cannot set flash "
                                 "mode/freq/size in the esp32 image header: image is 8 bytes, "
                                 "shorter than the 24-byte ESP32 header with its extended part");
    /* ...unless every setting is keep. */
    assert_int_equal(image_prepare(chip("esp32"), odd, sizeof(odd), 0x1000, NULL, &p, &err), 0);
    assert_false(p.patched);
    image_prepared_close(&p);
}

static void test_prepare_empty(void **state)
{
    struct image_prepared p;
    struct es_err err;
    char hex[33];
    (void)state;

    assert_int_equal(image_prepare(chip("esp8266"), NULL, 0, 0x3000, NULL, &p, &err), 0);
    assert_int_equal(p.size, 0);
    es_hex(p.md5, 16, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
    image_prepared_close(&p);
}

/* ---- Chip check ---- */

static void test_check_chip(void **state)
{
    uint8_t buf[80];
    struct es_err err;
    (void)state;

    assert_int_equal(image_check_chip(chip("esp32"), esp32_before, 80, &err), 0);
    assert_int_equal(image_check_chip(chip("esp32c3"), esp32_before, 80, &err),
                     -(int)ES_IMAGE_CHIP);
    assert_string_equal(err.msg, "built for esp32 (image chip id 0), not esp32c3; use the esp32c3 "
                                 "build of the firmware");
    memcpy(buf, esp32_before, 80);
    buf[12] = 9;
    assert_int_equal(image_check_chip(chip("esp32"), buf, 80, &err), -(int)ES_IMAGE_CHIP);
    assert_string_equal(err.msg, "built for esp32s3 (image chip id 9), not esp32; use the esp32 "
                                 "build of the firmware");
    /* An ESP32-family image on an ESP8266 is refused too. */
    assert_int_equal(image_check_chip(chip("esp8266"), buf, 80, &err), -(int)ES_IMAGE_CHIP);
    buf[0] = 0x00; /* not a firmware image: nothing to check */
    assert_int_equal(image_check_chip(chip("esp32"), buf, 80, &err), 0);
}

/* ---- Hashes ---- */

static void test_hashes(void **state)
{
    uint8_t ff[4096], d[32];
    char hex[65];
    struct es_err err;
    (void)state;

    assert_int_equal(es_sha256("abc", 3, d, &err), 0);
    es_hex(d, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* V-7: MD5 of 4 KiB of 0xFF. */
    memset(ff, 0xFF, sizeof(ff));
    assert_int_equal(es_md5(ff, sizeof(ff), d, &err), 0);
    es_hex(d, 16, hex);
    assert_string_equal(hex, "6ae59e64850377ee5470c854761551ea");
    /* Padding 4093 bytes of 0xFF to 4 gives the same region. */
    assert_int_equal(es_md5_padded(ff, 4093, d, &err), 0);
    es_hex(d, 16, hex);
    assert_string_equal(hex, "6ae59e64850377ee5470c854761551ea");
    assert_int_equal(es_md5_padded("", 0, d, &err), 0);
    es_hex(d, 16, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
}

/* ---- Loading ---- */

static void test_load(void **state)
{
    char path[] = "/tmp/test_image_XXXXXX";
    struct image *img = NULL;
    struct es_err err;
    uint8_t sha[32], md5[16];
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, esp32_before, 80), 80);
    close(fd);
    assert_int_equal(image_load(path, &img, &err), 0);
    assert_non_null(img);
    assert_string_equal(img->path, path);
    assert_int_equal(img->size, 80);
    assert_memory_equal(img->data, esp32_before, 80);
    es_sha256(esp32_before, 80, sha, &err);
    es_md5(esp32_before, 80, md5, &err);
    assert_memory_equal(img->sha256, sha, 32);
    assert_memory_equal(img->md5, md5, 16);
    image_free(img);
    unlink(path);
    image_free(NULL);
}

static void test_load_errors(void **state)
{
    struct image *img = (struct image *)&img;
    struct es_err err;
    (void)state;

    assert_int_equal(image_load("/nonexistent/x.bin", &img, &err), -(int)ES_IMAGE_LOAD);
    assert_null(img);
    assert_string_equal(err.msg, "open /nonexistent/x.bin: No such file or directory");
    assert_int_equal(image_load("/tmp", &img, &err), -(int)ES_IMAGE_LOAD);
    assert_string_equal(err.msg, "/tmp is not a regular file; name the .bin image file");
}

/* Issue 11 #9: a file larger than any flash is refused from its size, before it is read; one of
 * exactly 16 MiB still loads. The files are sparse, so the test costs no disk. */
static void test_load_refuses_huge_files(void **state)
{
    char path[] = "/tmp/es-test-image-XXXXXX";
    struct image *img = (struct image *)&img;
    struct es_err err;
    char want[256];
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, IMAGE_FILE_MAX + 1), 0);
    assert_int_equal(image_load(path, &img, &err), -(int)ES_IMAGE_LOAD);
    assert_null(img);
    assert_int_equal(ftruncate(fd, (off_t)2 << 30), 0);
    assert_int_equal(image_load(path, &img, &err), -(int)ES_IMAGE_LOAD);
    assert_null(img);
    snprintf(want, sizeof(want),
             "%s is 2147483648 bytes, more than the 16 MiB a flash chip can hold; name the .bin "
             "image file, not a disk or archive",
             path);
    assert_string_equal(err.msg, want);
    assert_int_equal(ftruncate(fd, IMAGE_FILE_MAX), 0);
    assert_int_equal(image_load(path, &img, &err), 0);
    assert_int_equal(img->size, IMAGE_FILE_MAX);
    image_free(img);
    close(fd);
    unlink(path);
}

/* ---- The committed demo images (profiles/images, made by tools/mkimage) ---- */

static void check_demo(const char *name, const char *chip_name, size_t size, const char *sha)
{
    char path[512], hex[65];
    const struct chip *c = chip(chip_name);
    struct image *img;
    struct image_header h;
    struct image_prepared p;
    struct es_err err;

    snprintf(path, sizeof(path), "%s/../profiles/images/%s", ES_TEST_DATA_DIR, name);
    assert_int_equal(image_load(path, &img, &err), 0);
    assert_int_equal(img->size, size);
    es_hex(img->sha256, 32, hex);
    assert_string_equal(hex, sha);
    assert_int_equal(
        image_parse_header(img->data, img->size, c->family == CHIP_FAMILY_ESP32, &h, &err), 0);
    assert_int_equal(h.magic, IMAGE_MAGIC);
    assert_true(h.checksum_ok);
    assert_int_equal(image_check_chip(c, img->data, img->size, &err), 0);
    if (c->family == CHIP_FAMILY_ESP32) {
        assert_true(h.hash_appended);
        assert_true(h.digest_ok);
        assert_int_equal(h.chip_id, 0);
        assert_int_equal(h.data_length + 32, size);
    } else {
        assert_int_equal(h.data_length, size);
    }
    /* Patched at the bootloader offset it still checks out. */
    assert_int_equal(
        image_prepare(c, img->data, img->size, c->bootloader_offset,
                      c->family == CHIP_FAMILY_ESP32 ? &dio_4mb_40m_esp32 : &dio_4mb_40m_esp8266,
                      &p, &err),
        0);
    assert_true(p.patched);
    assert_int_equal(image_parse_header(p.data, p.size, c->family == CHIP_FAMILY_ESP32, &h, &err),
                     0);
    assert_int_equal(h.mode, CHIP_FLASH_DIO);
    assert_true(h.checksum_ok);
    assert_int_equal(h.digest_ok, c->family == CHIP_FAMILY_ESP32);
    image_prepared_close(&p);
    image_free(img);
}

static void test_demo_images(void **state)
{
    (void)state;
    check_demo("esp8266-demo.bin", "esp8266", 262144,
               "9e7936a516228144c500789c05f9d684f1657fb7d0e0ea0f0f48e0180770ccf3");
    check_demo("esp32-demo.bin", "esp32", 393216,
               "788d0c7a2ada6a4bd522e301df17dc996727c0f0fd3a4d6fc5c6ff663c502fa0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v9_esp8266),
        cmocka_unit_test(test_v9_esp32),
        cmocka_unit_test(test_v9_via_prepare),
        cmocka_unit_test(test_parse_v9_images),
        cmocka_unit_test(test_parse_reports_bad_checksum_and_digest),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_patch_round_trip),
        cmocka_unit_test(test_patch_single_fields),
        cmocka_unit_test(test_patch_keep_touches_nothing),
        cmocka_unit_test(test_patch_esp8266_v2_skipped),
        cmocka_unit_test(test_patch_unparsable_is_error),
        cmocka_unit_test(test_patch_bad_codes),
        cmocka_unit_test(test_patch_merged_tail_kept),
        cmocka_unit_test(test_patch_esp32_without_digest),
        cmocka_unit_test(test_prepare_pads_and_skips_other_offsets),
        cmocka_unit_test(test_prepare_empty),
        cmocka_unit_test(test_check_chip),
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_refuses_huge_files),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_demo_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
