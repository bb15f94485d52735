/* SLIP framing of the ESP serial protocol (protocol doc §1.2–1.3): a push decoder fed arbitrary
 * chunks of bytes, and an encoder. Pure: no allocation, no I/O, no clock. */
#ifndef ES_SLIP_H
#define ES_SLIP_H

#include <stddef.h>
#include <stdint.h>

#include "es/err.h"

#define SLIP_END     0xC0
#define SLIP_ESC     0xDB
#define SLIP_ESC_END 0xDC
#define SLIP_ESC_ESC 0xDD

/* Largest frame the decoder accepts by default: a 0x4000-byte stub data block plus headers,
 * rounded up (protocol doc §1.3). */
#define SLIP_MAX_FRAME (64 * 1024)

/* Called once per complete, non-empty, well-escaped frame. frame is valid only during the call. */
typedef void (*slip_frame_cb)(void *arg, const uint8_t *frame, size_t len);
/* Called when a frame is dropped (ES_SLIP_OVERFLOW or ES_SLIP_BAD_ESCAPE); may be NULL. */
typedef void (*slip_error_cb)(void *arg, const struct es_err *err);

struct slip_decoder {
    uint8_t *buf; /* borrowed from the caller; holds the frame being decoded */
    size_t cap;
    size_t len;
    int in_frame; /* a 0xC0 was seen: bytes are frame content */
    int escape;   /* the previous byte was 0xDB */
    int dropping; /* the current frame is being discarded until the next 0xC0 */
    slip_frame_cb on_frame;
    slip_error_cb on_error;
    void *arg;
    unsigned long frames;  /* frames delivered */
    unsigned long dropped; /* frames dropped for overflow or bad escapes */
};

/* Prepares d to decode into buf (cap bytes, the largest frame accepted). Bytes before the first
 * 0xC0 are discarded as noise; every 0xC0 ends the current frame and starts the next. */
void slip_decoder_init(struct slip_decoder *d, uint8_t *buf, size_t cap, slip_frame_cb on_frame,
                       slip_error_cb on_error, void *arg);
/* Forgets any partial frame and waits for the next 0xC0 (e.g. after a baud change). */
void slip_decoder_reset(struct slip_decoder *d);
/* Feeds n bytes. Calls on_frame/on_error for each frame completed or dropped, in order. The
 * callbacks must not call slip_decoder_feed on the same decoder; they may call
 * slip_decoder_reset, and the rest of the bytes are then noise until the next 0xC0. */
void slip_decoder_feed(struct slip_decoder *d, const uint8_t *data, size_t n);

/* Bytes needed to encode n bytes as one frame, worst case: 2 * n + 2. */
size_t slip_encoded_max(size_t n);
/* Encodes in[0..n) as one frame (leading and trailing 0xC0) into out. Returns the encoded length,
 * or 0 if out_cap is too small (nothing useful is written then). */
size_t slip_encode(const uint8_t *in, size_t n, uint8_t *out, size_t out_cap);

#endif
