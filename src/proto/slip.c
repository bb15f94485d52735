/* SLIP framing (protocol doc §1.2–1.3): a push decoder that is fed whatever a read returned, and
 * the encoder. Knows nothing about what a frame means; validating packets is rom.c's job. */
#include "es/slip.h"

#include <string.h>

void slip_decoder_init(struct slip_decoder *d, uint8_t *buf, size_t cap, slip_frame_cb on_frame,
                       slip_error_cb on_error, void *arg)
{
    memset(d, 0, sizeof(*d));
    d->buf = buf;
    d->cap = cap;
    d->on_frame = on_frame;
    d->on_error = on_error;
    d->arg = arg;
}

void slip_decoder_reset(struct slip_decoder *d)
{
    d->len = 0;
    d->in_frame = 0;
    d->escape = 0;
    d->dropping = 0;
}

static void drop_frame(struct slip_decoder *d, const struct es_err *err)
{
    d->len = 0;
    d->escape = 0;
    d->dropping = 1;
    d->dropped++;
    if (d->on_error != NULL)
        d->on_error(d->arg, err);
}

/* A 0xC0 ends the frame being collected and starts the next one (vector V-3): a reader that
 * treated it only as a start or only as an end would lose the real reply that follows a burst
 * of noise containing 0xC0. State is updated before any callback runs, so a callback may call
 * slip_decoder_reset(). */
static void end_frame(struct slip_decoder *d)
{
    size_t len = d->len;
    int live = d->in_frame && !d->dropping;
    int cut_escape = live && d->escape;
    struct es_err err;

    d->len = 0;
    d->in_frame = 1;
    d->escape = 0;
    d->dropping = 0;
    if (cut_escape) {
        /* "DB C0": the escape is cut off, so the frame is corrupt. The 0xC0 itself still counts
         * as the start of the next frame. */
        d->dropped++;
        es_fail(&err, ES_SLIP_BAD_ESCAPE,
                "SLIP escape 0xDB followed by 0xC0 after %zu frame bytes (expected 0xDC or 0xDD); "
                "dropped the frame",
                len);
        if (d->on_error != NULL)
            d->on_error(d->arg, &err);
    } else if (live && len > 0) {
        d->frames++;
        if (d->on_frame != NULL)
            d->on_frame(d->arg, d->buf, len);
    }
}

static void put_byte(struct slip_decoder *d, uint8_t b)
{
    struct es_err err;

    if (d->len >= d->cap) {
        es_fail(&err, ES_SLIP_OVERFLOW,
                "SLIP frame longer than the %zu-byte limit (at least %zu bytes after unescaping); "
                "dropped it and waiting for the next 0xC0",
                d->cap, d->cap + 1);
        drop_frame(d, &err);
        return;
    }
    d->buf[d->len++] = b;
}

void slip_decoder_feed(struct slip_decoder *d, const uint8_t *data, size_t n)
{
    struct es_err err;
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t b = data[i];

        if (b == SLIP_END) {
            end_frame(d);
            continue;
        }
        if (!d->in_frame || d->dropping)
            continue; /* noise before the first 0xC0, or the rest of a dropped frame */
        if (d->escape) {
            d->escape = 0;
            if (b == SLIP_ESC_END) {
                put_byte(d, SLIP_END);
            } else if (b == SLIP_ESC_ESC) {
                put_byte(d, SLIP_ESC);
            } else {
                es_fail(&err, ES_SLIP_BAD_ESCAPE,
                        "SLIP escape 0xDB followed by 0x%02X after %zu frame bytes (expected 0xDC "
                        "or 0xDD); dropped the frame and waiting for the next 0xC0",
                        b, d->len);
                drop_frame(d, &err);
            }
            continue;
        }
        if (b == SLIP_ESC)
            d->escape = 1;
        else
            put_byte(d, b);
    }
}

size_t slip_encoded_max(size_t n)
{
    return 2 * n + 2;
}

size_t slip_encode(const uint8_t *in, size_t n, uint8_t *out, size_t out_cap)
{
    size_t i, o = 0;

    if (out_cap < 2)
        return 0;
    out[o++] = SLIP_END;
    for (i = 0; i < n; i++) {
        uint8_t b = in[i];

        if (b == SLIP_END || b == SLIP_ESC) {
            if (out_cap - o < 3) /* two escape bytes plus the closing 0xC0 */
                return 0;
            out[o++] = SLIP_ESC;
            out[o++] = b == SLIP_END ? SLIP_ESC_END : SLIP_ESC_ESC;
        } else {
            if (out_cap - o < 2)
                return 0;
            out[o++] = b;
        }
    }
    out[o++] = SLIP_END;
    return o;
}
