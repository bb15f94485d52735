/* The restartable zlib stream of an image (es/deflate.h): whole, it is one stream that inflates
 * to the image; from every restart point, the tail is a stream of its own that inflates to the
 * rest of the image with a correct Adler-32; and the flushes cost little. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "es/deflate.h"

/* Bytes that compress like firmware: runs of code-like words, text, tables and noise. */
static uint8_t *firmware_like(size_t size)
{
    uint8_t *p = malloc(size);
    uint32_t x = 12345;

    assert_non_null(p);
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        switch ((i / 4096) % 4) {
        case 0: p[i] = (uint8_t)((x >> 24) & 0x3F); break;
        case 1: p[i] = "MicroPython firmware string table "[i % 34]; break;
        case 2: p[i] = (uint8_t)(i & 0xFF); break;
        default: p[i] = (uint8_t)(x >> 16); break;
        }
    }
    return p;
}

/* Inflates a whole zlib stream; returns its length, or -1 when zlib refuses it. */
static long inflate_all(const uint8_t *z, size_t n, uint8_t *out, size_t cap)
{
    uLongf len = cap;

    return uncompress(out, &len, z, n) == Z_OK ? (long)len : -1;
}

static void test_whole_stream_and_every_tail(void **state)
{
    const size_t size = 600 * 1024 + 123; /* not a multiple of the chunk */
    uint8_t *data = firmware_like(size), *back = malloc(size);
    struct image_deflate d;
    struct es_err err;

    (void)state;
    assert_non_null(back);
    assert_int_equal(image_deflate(data, size, IMAGE_DEFLATE_CHUNK, &d, &err), 0);
    assert_int_equal(d.npoints, size / IMAGE_DEFLATE_CHUNK + 1);
    assert_int_equal(inflate_all(d.z, d.zsize, back, size), (long)size);
    assert_memory_equal(back, data, size);
    for (size_t k = 0; k < d.npoints; k++) {
        uint8_t *tail;
        size_t n;

        assert_int_equal(d.points[k].uoff, k * IMAGE_DEFLATE_CHUNK);
        assert_int_equal(image_deflate_tail(&d, data, size, k, &tail, &n, &err), 0);
        assert_int_equal(inflate_all(tail, n, back, size), (long)(size - d.points[k].uoff));
        assert_memory_equal(back, data + d.points[k].uoff, size - d.points[k].uoff);
        if (k == 0) { /* the tail from the start is the stream itself */
            assert_int_equal(n, d.zsize);
            assert_memory_equal(tail, d.z, n);
        }
        free(tail);
    }
    {
        uint8_t *none = back;
        size_t none_len = 1;

        assert_int_equal(image_deflate_tail(&d, data, size, d.npoints, &none, &none_len, &err),
                         -(int)ES_INVALID_ARG);
        assert_null(none);
        assert_int_equal(none_len, 0);
    }
    image_deflate_close(&d);
    free(back);
    free(data);
}

static void test_restart_point_for_progress(void **state)
{
    const size_t size = 300 * 1024;
    uint8_t *data = firmware_like(size);
    struct image_deflate d;
    struct es_err err;

    (void)state;
    assert_int_equal(image_deflate(data, size, IMAGE_DEFLATE_CHUNK, &d, &err), 0);
    assert_int_equal(image_deflate_point(&d, 0), 0);
    assert_int_equal(image_deflate_point(&d, d.points[1].zoff - 1), 0);
    assert_int_equal(image_deflate_point(&d, d.points[1].zoff), 1);
    assert_int_equal(image_deflate_point(&d, d.zsize), d.npoints - 1);
    image_deflate_close(&d);
    free(data);
}

/* A patched variant (header bytes in chunk 0, a digest in the last chunk): it inflates to the
 * variant, every tail restarts correctly, and the chunks both share are byte for byte the base's
 * deflate data, compressed once. */
static void test_variant_reuses_unchanged_chunks(void **state)
{
    const size_t size = 5 * IMAGE_DEFLATE_CHUNK + 777;
    uint8_t *base_data = firmware_like(size), *data = malloc(size), *back = malloc(size);
    struct image_deflate base, v, whole;
    struct es_err err;

    (void)state;
    assert_non_null(data);
    assert_non_null(back);
    memcpy(data, base_data, size);
    data[2] = 0x02;       /* flash mode */
    data[3] ^= 0x40;      /* flash size code */
    data[size - 10] ^= 1; /* an appended digest */
    assert_int_equal(image_deflate(base_data, size, IMAGE_DEFLATE_CHUNK, &base, &err), 0);
    assert_int_equal(image_deflate_variant(&base, base_data, data, size, &v, &err), 0);
    assert_int_equal(v.npoints, base.npoints);
    assert_int_equal(v.size, size);
    assert_int_equal(inflate_all(v.z, v.zsize, back, size), (long)size);
    assert_memory_equal(back, data, size);
    for (size_t k = 0; k < v.npoints; k++) {
        uint8_t *tail;
        size_t n;

        assert_int_equal(v.points[k].uoff, base.points[k].uoff);
        assert_int_equal(image_deflate_tail(&v, data, size, k, &tail, &n, &err), 0);
        assert_int_equal(inflate_all(tail, n, back, size), (long)(size - v.points[k].uoff));
        assert_memory_equal(back, data + v.points[k].uoff, size - v.points[k].uoff);
        free(tail);
        if (k > 0 && k + 1 < v.npoints) { /* unchanged: the base's own bytes */
            size_t len = base.points[k + 1].zoff - base.points[k].zoff;

            assert_int_equal(v.points[k + 1].zoff - v.points[k].zoff, len);
            assert_memory_equal(v.z + v.points[k].zoff, base.z + base.points[k].zoff, len);
        }
    }
    /* Within a few bytes of compressing the variant from scratch. */
    assert_int_equal(image_deflate(data, size, IMAGE_DEFLATE_CHUNK, &whole, &err), 0);
    assert_true(v.zsize <= whole.zsize + 64 && whole.zsize <= v.zsize + 64);
    image_deflate_close(&whole);
    image_deflate_close(&v);
    assert_int_equal(image_deflate_variant(&base, base_data, data, size - 4, &v, &err),
                     -(int)ES_INVALID_ARG);
    assert_null(v.z);
    image_deflate_close(&base);
    free(back);
    free(data);
    free(base_data);
}

/* The shipped demo images: the restartable stream is within 2 % of one zlib level-9 stream. */
static void test_ratio_within_two_percent(void **state)
{
    static const char *const files[] = {ES_TEST_DATA_DIR "/../profiles/images/esp32-demo.bin",
                                        ES_TEST_DATA_DIR "/../profiles/images/esp8266-demo.bin"};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "rb");
        uint8_t *data = malloc(1 << 20), *one = malloc(compressBound(1 << 20));
        uLongf one_len = compressBound(1 << 20);
        struct image_deflate d;
        struct es_err err;
        size_t size;

        assert_non_null(f);
        size = fread(data, 1, 1 << 20, f);
        fclose(f);
        assert_true(size > 128 * 1024);
        assert_int_equal(compress2(one, &one_len, data, size, 9), Z_OK);
        assert_int_equal(image_deflate(data, size, IMAGE_DEFLATE_CHUNK, &d, &err), 0);
        print_message("%s: %zu bytes, one stream %lu, restartable %zu (+%.2f %%)\n", files[i], size,
                      (unsigned long)one_len, d.zsize,
                      100.0 * ((double)d.zsize / (double)one_len - 1));
        assert_true((double)d.zsize <= 1.02 * (double)one_len);
        image_deflate_close(&d);
        free(one);
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream_and_every_tail),
        cmocka_unit_test(test_restart_point_for_progress),
        cmocka_unit_test(test_variant_reuses_unchanged_chunks),
        cmocka_unit_test(test_ratio_within_two_percent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
