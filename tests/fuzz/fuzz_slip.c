/* libFuzzer target for the SLIP decoder and encoder (src/proto/slip.c).
 * Input: byte 0 picks the decoder's frame cap (bit 7 set: SLIP_MAX_FRAME, else a small cap so
 * overflow is exercised), byte 1 seeds the chunk sizes, the rest is the line stream.
 * Checks: feeding the stream in any chunking gives the same frames and errors as feeding it at
 * once; every frame re-encodes to a frame that decodes back to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es/slip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a decoder reported, as a byte log: 'F' len(4) bytes for a frame, 'E' code for an error. */
struct transcript {
    uint8_t *log;
    size_t used, cap;
};

static void log_bytes(struct transcript *t, const void *p, size_t n)
{
    if (n > t->cap - t->used)
        abort(); /* the harness sized the log wrongly */
    memcpy(t->log + t->used, p, n);
    t->used += n;
}

static void on_frame(void *arg, const uint8_t *frame, size_t len)
{
    struct transcript *t = arg;
    uint8_t tag = 'F';
    uint32_t n = (uint32_t)len;

    if (len == 0)
        abort(); /* empty frames must never be delivered */
    log_bytes(t, &tag, 1);
    log_bytes(t, &n, 4);
    log_bytes(t, frame, len);
}

static void on_error(void *arg, const struct es_err *err)
{
    struct transcript *t = arg;
    uint8_t rec[2] = {'E', (uint8_t)err->code};

    if (err->code != ES_SLIP_OVERFLOW && err->code != ES_SLIP_BAD_ESCAPE)
        abort();
    if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
        abort();
    log_bytes(t, rec, 2);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Decodes stream with a decoder whose buffer is exactly cap bytes (so ASan sees any overrun). */
static void decode(const uint8_t *stream, size_t n, size_t cap, uint32_t seed, int chunked,
                   struct transcript *t)
{
    uint8_t *buf = malloc(cap);
    struct slip_decoder d;
    size_t pos = 0, step;
    uint32_t max_step = 1 + seed % 97;

    if (buf == NULL)
        abort();
    slip_decoder_init(&d, buf, cap, on_frame, on_error, t);
    if (!chunked) {
        slip_decoder_feed(&d, stream, n);
    } else {
        slip_decoder_feed(&d, stream, 0);
        while (pos < n) {
            step = seed == 0 ? 1 : 1 + lcg(&seed) % max_step;
            if (step > n - pos)
                step = n - pos;
            slip_decoder_feed(&d, stream + pos, step);
            pos += step;
        }
    }
    free(buf);
}

static void check_roundtrip(const uint8_t *frame, size_t len, size_t cap)
{
    size_t max = slip_encoded_max(len), w;
    uint8_t *enc = malloc(max);
    struct transcript t;
    uint32_t n;

    t.cap = len + 64;
    t.used = 0;
    t.log = malloc(t.cap);
    if (enc == NULL || t.log == NULL)
        abort();
    w = slip_encode(frame, len, enc, max);
    if (w < len + 2 || w > max || enc[0] != SLIP_END || enc[w - 1] != SLIP_END)
        abort();
    if (slip_encode(frame, len, enc, w - 1) != 0) /* one byte short must fail */
        abort();
    w = slip_encode(frame, len, enc, max);
    decode(enc, w, cap, 0, 0, &t);
    memcpy(&n, t.log + 1, 4);
    if (t.used != 5 + len || t.log[0] != 'F' || n != len || memcmp(t.log + 5, frame, len) != 0)
        abort();
    free(t.log);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct transcript whole, pieces;
    const uint8_t *stream;
    size_t n, cap, pos;
    uint32_t seed;

    if (size < 2)
        return 0;
    cap = data[0] & 0x80 ? SLIP_MAX_FRAME : 1 + (size_t)(data[0] & 0x7F) * 3;
    seed = data[1];
    stream = data + 2;
    n = size - 2;

    /* Each input byte yields at most 5 log bytes (a 1-byte frame closed by the next 0xC0 gives
     * 6 bytes for 2 input bytes; an error 2 bytes for at least 2 input bytes). */
    whole.cap = pieces.cap = 5 * n + 16;
    whole.used = pieces.used = 0;
    whole.log = malloc(whole.cap);
    pieces.log = malloc(pieces.cap);
    if (whole.log == NULL || pieces.log == NULL)
        abort();

    decode(stream, n, cap, 0, 0, &whole);
    decode(stream, n, cap, 0, 1, &pieces); /* one byte at a time */
    if (whole.used != pieces.used || memcmp(whole.log, pieces.log, whole.used) != 0)
        abort();
    pieces.used = 0;
    decode(stream, n, cap, seed | 1u, 1, &pieces); /* irregular chunks */
    if (whole.used != pieces.used || memcmp(whole.log, pieces.log, whole.used) != 0)
        abort();

    for (pos = 0; pos < whole.used;) {
        uint32_t len;

        if (whole.log[pos] == 'E') {
            pos += 2;
            continue;
        }
        memcpy(&len, whole.log + pos + 1, 4);
        if (len > cap)
            abort();
        check_roundtrip(whole.log + pos + 5, len, cap);
        pos += 5 + len;
    }
    free(whole.log);
    free(pieces.log);
    return 0;
}
