/* SLIP framing: protocol doc §12 vectors V-1, V-3, V-6 as exact bytes, and the reader's
 * tolerance rules of §1.3 (noise, empty frames, bad escapes, overflow, any chunking). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "es/slip.h"

#define MAX_FRAMES 64
#define STORE_CAP  (256 * 1024)

/* Everything the decoder handed back, in order. */
struct collect {
    uint8_t store[STORE_CAP];
    size_t used;
    size_t off[MAX_FRAMES];
    size_t len[MAX_FRAMES];
    size_t nframes;
    enum es_code errors[MAX_FRAMES];
    char last_msg[ES_ERR_MSG_MAX];
    size_t nerrors;
};

static struct collect got, got2;

static void on_frame(void *arg, const uint8_t *frame, size_t len)
{
    struct collect *c = arg;

    assert_true(c->nframes < MAX_FRAMES);
    assert_true(c->used + len <= STORE_CAP);
    memcpy(c->store + c->used, frame, len);
    c->off[c->nframes] = c->used;
    c->len[c->nframes] = len;
    c->used += len;
    c->nframes++;
}

static void on_error(void *arg, const struct es_err *err)
{
    struct collect *c = arg;

    assert_true(c->nerrors < MAX_FRAMES);
    c->errors[c->nerrors++] = err->code;
    snprintf(c->last_msg, sizeof(c->last_msg), "%s", err->msg);
}

static uint8_t decbuf[SLIP_MAX_FRAME];

static void init_dec(struct slip_decoder *d, struct collect *c, size_t cap)
{
    memset(c, 0, sizeof(*c));
    slip_decoder_init(d, decbuf, cap, on_frame, on_error, c);
}

/* Feeds in[0..n) in chunks of chunk bytes (0: all at once). */
static void feed_chunked(struct slip_decoder *d, const uint8_t *in, size_t n, size_t chunk)
{
    size_t i;

    if (chunk == 0)
        chunk = n;
    for (i = 0; i < n; i += chunk)
        slip_decoder_feed(d, in + i, n - i < chunk ? n - i : chunk);
}

static void assert_frame(const struct collect *c, size_t i, const uint8_t *want, size_t n)
{
    assert_true(i < c->nframes);
    assert_int_equal(c->len[i], n);
    assert_memory_equal(c->store + c->off[i], want, n);
}

static void assert_same_result(const struct collect *a, const struct collect *b)
{
    size_t i;

    assert_int_equal(a->nframes, b->nframes);
    assert_int_equal(a->nerrors, b->nerrors);
    for (i = 0; i < a->nframes; i++)
        assert_frame(b, i, a->store + a->off[i], a->len[i]);
    for (i = 0; i < a->nerrors; i++)
        assert_int_equal(a->errors[i], b->errors[i]);
}

/* V-1: the SYNC packet (44 bytes) becomes 46 bytes on the wire; nothing in it needs escaping. */
static void test_v1_sync_encode(void **state)
{
    uint8_t pkt[44] = {0x00, 0x08, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x07, 0x12, 0x20};
    uint8_t wire[46], out[2 * 44 + 2];
    struct slip_decoder d;

    (void)state;
    memset(pkt + 12, 0x55, 32);
    wire[0] = 0xC0;
    memcpy(wire + 1, pkt, 44);
    wire[45] = 0xC0;
    assert_int_equal(slip_encode(pkt, sizeof(pkt), out, sizeof(out)), 46);
    assert_memory_equal(out, wire, 46);

    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, wire, sizeof(wire));
    assert_int_equal(got.nframes, 1);
    assert_frame(&got, 0, pkt, sizeof(pkt));
}

/* V-3: every 0xC0 ends one frame and starts the next, so noise containing 0xC0 costs one bogus
 * frame and the real reply after it survives. */
static const uint8_t v3_stream[] = {0x00, 0x8F, 0xC0, 0x12, 0xC0, 0x01, 0x08, 0x02, 0x00, 0x07,
                                    0x07, 0x12, 0x20, 0x00, 0x00, 0xC0, 0xC0, 0x01, 0x08, 0x02,
                                    0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0xC0};
static const uint8_t v3_reply[] = {0x01, 0x08, 0x02, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00};

static void test_v3_resync(void **state)
{
    static const uint8_t bogus[] = {0x12};
    struct slip_decoder d;
    size_t chunk;

    (void)state;
    for (chunk = 0; chunk <= sizeof(v3_stream); chunk++) {
        init_dec(&d, &got, SLIP_MAX_FRAME);
        feed_chunked(&d, v3_stream, sizeof(v3_stream), chunk);
        assert_int_equal(got.nframes, 3);
        assert_frame(&got, 0, bogus, 1);
        assert_frame(&got, 1, v3_reply, sizeof(v3_reply));
        assert_frame(&got, 2, v3_reply, sizeof(v3_reply));
        assert_int_equal(got.nerrors, 0);
        assert_int_equal(d.frames, 3);
    }
}

/* V-6: both escaped vectors, encoded and decoded. */
static const uint8_t v6a_pkt[] = {0x01, 0x0A, 0x02, 0x00, 0x34, 0xDB, 0xC0, 0x12, 0x00, 0x00};
static const uint8_t v6a_wire[] = {0xC0, 0x01, 0x0A, 0x02, 0x00, 0x34, 0xDB,
                                   0xDD, 0xDB, 0xDC, 0x12, 0x00, 0x00, 0xC0};
static const uint8_t v6b_pkt[] = {0x00, 0x03, 0x14, 0x00, 0x34, 0x00, 0x00, 0x00, 0x04, 0x00,
                                  0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0xC0, 0xDB, 0x00, 0xC0};
static const uint8_t v6b_wire[] = {0xC0, 0x00, 0x03, 0x14, 0x00, 0x34, 0x00, 0x00, 0x00,
                                   0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xDB, 0xDC,
                                   0xDB, 0xDD, 0x00, 0xDB, 0xDC, 0xC0};

static void test_v6_escaping(void **state)
{
    uint8_t out[128];
    struct slip_decoder d;

    (void)state;
    assert_int_equal(slip_encode(v6a_pkt, sizeof(v6a_pkt), out, sizeof(out)), sizeof(v6a_wire));
    assert_memory_equal(out, v6a_wire, sizeof(v6a_wire));
    assert_int_equal(slip_encode(v6b_pkt, sizeof(v6b_pkt), out, sizeof(out)), sizeof(v6b_wire));
    assert_memory_equal(out, v6b_wire, sizeof(v6b_wire));
    /* 31 bytes between the delimiters for a 28-byte packet. */
    assert_int_equal(sizeof(v6b_wire) - 2, 31);

    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, v6a_wire, sizeof(v6a_wire));
    slip_decoder_feed(&d, v6b_wire, sizeof(v6b_wire));
    assert_int_equal(got.nframes, 2);
    assert_frame(&got, 0, v6a_pkt, sizeof(v6a_pkt));
    assert_frame(&got, 1, v6b_pkt, sizeof(v6b_pkt));
}

/* Every split of the V-6 stream into two reads, including between 0xDB and its partner. */
static void test_escape_split_across_chunks(void **state)
{
    uint8_t stream[sizeof(v6a_wire) + sizeof(v6b_wire)];
    struct slip_decoder d;
    size_t split;

    (void)state;
    memcpy(stream, v6a_wire, sizeof(v6a_wire));
    memcpy(stream + sizeof(v6a_wire), v6b_wire, sizeof(v6b_wire));
    for (split = 0; split <= sizeof(stream); split++) {
        init_dec(&d, &got, SLIP_MAX_FRAME);
        slip_decoder_feed(&d, stream, split);
        slip_decoder_feed(&d, stream + split, sizeof(stream) - split);
        assert_int_equal(got.nframes, 2);
        assert_int_equal(got.nerrors, 0);
        assert_frame(&got, 0, v6a_pkt, sizeof(v6a_pkt));
        assert_frame(&got, 1, v6b_pkt, sizeof(v6b_pkt));
    }
}

static void test_noise_before_first_end_discarded(void **state)
{
    /* Boot-log text, a stray escape byte and an escaped-looking pair, all before the first C0. */
    static const uint8_t in[] = {'e',  't',  's',  ' ',  0xDB, 0x05, 0xDB,
                                 0xDC, '\n', 0xC0, 0x01, 0x02, 0xC0};
    static const uint8_t want[] = {0x01, 0x02};
    struct slip_decoder d;

    (void)state;
    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, in, sizeof(in));
    assert_int_equal(got.nframes, 1);
    assert_int_equal(got.nerrors, 0);
    assert_frame(&got, 0, want, sizeof(want));
}

static void test_empty_frames_ignored(void **state)
{
    static const uint8_t in[] = {0xC0, 0xC0, 0xC0, 0x07, 0xC0, 0xC0, 0xC0, 0x08, 0xC0, 0xC0};
    static const uint8_t a[] = {0x07}, b[] = {0x08};
    struct slip_decoder d;

    (void)state;
    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, in, sizeof(in));
    assert_int_equal(got.nframes, 2);
    assert_frame(&got, 0, a, 1);
    assert_frame(&got, 1, b, 1);
    assert_int_equal(d.dropped, 0);
}

/* A frame that never ends is not delivered; reset forgets it and waits for the next 0xC0. */
static void test_truncated_frame(void **state)
{
    static const uint8_t part[] = {0xC0, 0x01, 0x08, 0x02};
    static const uint8_t after_reset[] = {0x00, 0x07, 0xC0, 0x05, 0xC0};
    static const uint8_t want[] = {0x05};
    struct slip_decoder d;

    (void)state;
    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, part, sizeof(part));
    assert_int_equal(got.nframes, 0);
    slip_decoder_reset(&d);
    /* The tail of the lost frame is noise now: only the frame after the next 0xC0 counts. */
    slip_decoder_feed(&d, after_reset, sizeof(after_reset));
    assert_int_equal(got.nframes, 1);
    assert_frame(&got, 0, want, 1);
    assert_int_equal(got.nerrors, 0);
}

/* A frame cut short by the start of the next one is delivered short (the reply validator
 * rejects it); the next frame is intact. */
static void test_truncated_by_next_frame(void **state)
{
    static const uint8_t in[] = {0xC0, 0x01, 0x0A, 0xC0, 0x01, 0x0A, 0x02, 0x00, 0xC0};
    static const uint8_t a[] = {0x01, 0x0A}, b[] = {0x01, 0x0A, 0x02, 0x00};
    struct slip_decoder d;

    (void)state;
    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, in, sizeof(in));
    assert_int_equal(got.nframes, 2);
    assert_frame(&got, 0, a, sizeof(a));
    assert_frame(&got, 1, b, sizeof(b));
}

static void test_overflow_then_recovery(void **state)
{
    /* cap 8: an 8-byte frame fits, 9 bytes (counted after unescaping) do not. */
    static const uint8_t in[] = {0xC0, 1,    2,    3,   4, 5, 6, 7, 0xDB, 0xDC, 0xC0, /* 8: ok */
                                 1,    2,    3,    4,   5, 6, 7, 8, 9,    10,   11,
                                 12, /* 12: too big */
                                 0xC0, 0xAA, 0xBB, 0xC0};
    static const uint8_t ok8[] = {1, 2, 3, 4, 5, 6, 7, 0xC0}, ok2[] = {0xAA, 0xBB};
    struct slip_decoder d;
    size_t chunk;

    (void)state;
    for (chunk = 0; chunk <= 3; chunk++) {
        init_dec(&d, &got, 8);
        feed_chunked(&d, in, sizeof(in), chunk);
        assert_int_equal(got.nframes, 2);
        assert_frame(&got, 0, ok8, sizeof(ok8));
        assert_frame(&got, 1, ok2, sizeof(ok2));
        assert_int_equal(got.nerrors, 1);
        assert_int_equal(got.errors[0], ES_SLIP_OVERFLOW);
        assert_non_null(strstr(got.last_msg, "8-byte limit"));
        assert_int_equal(d.dropped, 1);
        assert_int_equal(d.frames, 2);
    }
}

/* A long run of garbage without delimiters is reported once, not once per byte. */
static void test_overflow_reported_once(void **state)
{
    static uint8_t in[3000];
    struct slip_decoder d;

    (void)state;
    memset(in, 0x41, sizeof(in));
    in[0] = 0xC0;
    init_dec(&d, &got, 100);
    slip_decoder_feed(&d, in, sizeof(in));
    assert_int_equal(got.nerrors, 1);
    assert_int_equal(got.nframes, 0);
}

static void test_bad_escape_then_recovery(void **state)
{
    static const uint8_t in[] = {0xC0, 0x01, 0xDB, 0x05, 0x02, 0xDB, 0xDC, 0xC0, 0x03, 0xC0};
    static const uint8_t want[] = {0x03};
    struct slip_decoder d;

    (void)state;
    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, in, sizeof(in));
    assert_int_equal(got.nerrors, 1);
    assert_int_equal(got.errors[0], ES_SLIP_BAD_ESCAPE);
    assert_non_null(strstr(got.last_msg, "0x05"));
    assert_int_equal(got.nframes, 1);
    assert_frame(&got, 0, want, 1);
}

/* "DB C0": the escape is cut off. The frame is dropped, and that 0xC0 still starts the next. */
static void test_escape_cut_by_end(void **state)
{
    static const uint8_t in[] = {0xC0, 0x01, 0xDB, 0xC0, 0x04, 0xC0};
    static const uint8_t want[] = {0x04};
    struct slip_decoder d;

    (void)state;
    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, in, sizeof(in));
    assert_int_equal(got.nerrors, 1);
    assert_int_equal(got.errors[0], ES_SLIP_BAD_ESCAPE);
    assert_int_equal(got.nframes, 1);
    assert_frame(&got, 0, want, 1);
}

static void test_encode_buffer_limits(void **state)
{
    static const uint8_t in[] = {0x01, 0xC0, 0x02};
    static const uint8_t want[] = {0xC0, 0x01, 0xDB, 0xDC, 0x02, 0xC0};
    uint8_t out[16];

    (void)state;
    assert_int_equal(slip_encoded_max(3), 8);
    assert_int_equal(slip_encode(in, sizeof(in), out, sizeof(want)), sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(slip_encode(in, sizeof(in), out, sizeof(want) - 1), 0);
    assert_int_equal(slip_encode(in, sizeof(in), out, 3), 0);
    assert_int_equal(slip_encode(in, sizeof(in), out, 0), 0);
    /* An empty packet is just the two delimiters (and decodes to nothing). */
    assert_int_equal(slip_encode(in, 0, out, 2), 2);
    assert_int_equal(out[0], 0xC0);
    assert_int_equal(out[1], 0xC0);
}

/* Many frames full of 0xC0/0xDB, encoded into one stream, decoded fed one byte at a time, all at
 * once, and in irregular chunks: always the same frames. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void test_chunking_invariance(void **state)
{
    static uint8_t stream[200 * 1024], frame[4096];
    struct slip_decoder d;
    size_t used = 0, i, n, pos;
    uint32_t seed = 1;
    int f;

    (void)state;
    for (f = 0; f < 40; f++) {
        n = 1 + lcg(&seed) % sizeof(frame);
        for (i = 0; i < n; i++) {
            uint32_t r = lcg(&seed) % 8;
            frame[i] = r == 0 ? 0xC0 : r == 1 ? 0xDB : (uint8_t)lcg(&seed);
        }
        used += slip_encode(frame, n, stream + used, sizeof(stream) - used);
    }
    init_dec(&d, &got, SLIP_MAX_FRAME);
    slip_decoder_feed(&d, stream, used);
    assert_int_equal(got.nframes, 40);
    assert_int_equal(got.nerrors, 0);

    init_dec(&d, &got2, SLIP_MAX_FRAME);
    feed_chunked(&d, stream, used, 1);
    assert_same_result(&got, &got2);

    init_dec(&d, &got2, SLIP_MAX_FRAME);
    for (pos = 0; pos < used; pos += n) {
        n = 1 + lcg(&seed) % 700;
        if (n > used - pos)
            n = used - pos;
        slip_decoder_feed(&d, stream + pos, n);
    }
    assert_same_result(&got, &got2);
}

/* The decoder state is updated before on_frame runs, so a callback may reset the decoder (a
 * session does that after a baud change); the bytes after the reset are noise until a 0xC0. */
static struct slip_decoder *reset_target;

static void on_frame_reset(void *arg, const uint8_t *frame, size_t len)
{
    on_frame(arg, frame, len);
    slip_decoder_reset(reset_target);
}

static void test_reset_from_callback(void **state)
{
    static const uint8_t in[] = {0xC0, 0x01, 0xC0, 0x02, 0x03, 0xC0, 0x04, 0xC0};
    static const uint8_t a[] = {0x01}, b[] = {0x04};
    struct slip_decoder d;

    (void)state;
    memset(&got, 0, sizeof(got));
    slip_decoder_init(&d, decbuf, SLIP_MAX_FRAME, on_frame_reset, on_error, &got);
    reset_target = &d;
    slip_decoder_feed(&d, in, sizeof(in));
    assert_int_equal(got.nframes, 2);
    assert_frame(&got, 0, a, 1);
    assert_frame(&got, 1, b, 1);
}

static void on_error_reset(void *arg, const struct es_err *err)
{
    on_error(arg, err);
    slip_decoder_reset(reset_target);
}

/* The same from on_error, for both kinds of bad escape: the bytes after the reset are noise. */
static void test_reset_from_error_callback(void **state)
{
    static const uint8_t cut[] = {0xC0, 0x01, 0xDB, 0xC0, 0x02, 0xC0, 0x03, 0xC0};
    static const uint8_t bad[] = {0xC0, 0x01, 0xDB, 0x05, 0x02, 0xC0, 0x03, 0xC0};
    static const uint8_t want[] = {0x03};
    struct slip_decoder d;

    (void)state;
    memset(&got, 0, sizeof(got));
    slip_decoder_init(&d, decbuf, SLIP_MAX_FRAME, on_frame, on_error_reset, &got);
    reset_target = &d;
    slip_decoder_feed(&d, cut, sizeof(cut));
    assert_int_equal(got.nerrors, 1);
    assert_int_equal(got.nframes, 1);
    assert_frame(&got, 0, want, 1);

    memset(&got, 0, sizeof(got));
    slip_decoder_init(&d, decbuf, SLIP_MAX_FRAME, on_frame, on_error_reset, &got);
    slip_decoder_feed(&d, bad, sizeof(bad));
    assert_int_equal(got.nerrors, 1);
    assert_int_equal(got.nframes, 1);
    assert_frame(&got, 0, want, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_sync_encode),
        cmocka_unit_test(test_v3_resync),
        cmocka_unit_test(test_v6_escaping),
        cmocka_unit_test(test_escape_split_across_chunks),
        cmocka_unit_test(test_noise_before_first_end_discarded),
        cmocka_unit_test(test_empty_frames_ignored),
        cmocka_unit_test(test_truncated_frame),
        cmocka_unit_test(test_truncated_by_next_frame),
        cmocka_unit_test(test_overflow_then_recovery),
        cmocka_unit_test(test_overflow_reported_once),
        cmocka_unit_test(test_bad_escape_then_recovery),
        cmocka_unit_test(test_escape_cut_by_end),
        cmocka_unit_test(test_encode_buffer_limits),
        cmocka_unit_test(test_chunking_invariance),
        cmocka_unit_test(test_reset_from_callback),
        cmocka_unit_test(test_reset_from_error_callback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
