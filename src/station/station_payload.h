/* Private to the station: every payload a board of the run can need (the patched, padded image
 * and its zlib stream), all prepared before the loop starts, so that a session's get_payload
 * only looks one up and nothing slow ever runs on the loop thread. */
#ifndef ES_STATION_PAYLOAD_H
#define ES_STATION_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "es/profile.h"
#include "es/session.h"
#include "es/stub.h"

struct payload_data;
struct payload_key;

struct payload_set {
    struct payload_data *data; /* distinct byte strings, each prepared and compressed once */
    struct payload_key *keys;  /* (profile, image, chip, header params) -> data or error */
    size_t n_data, n_variants, n_keys;
    int compress;        /* SESSION_FLASH: the stub's boards get streams */
    uint64_t prepare_ns; /* how long payload_set_prepare took */
};

/* For each chip model, the first profile a board of that chip takes (as the session chooses),
 * each of its images and each header setting it can need (with flash.size: detect, every size
 * code the chip can encode) is prepared; identical bytes are kept once. Compresses (when mode is
 * SESSION_FLASH, for profiles whose loader is the stub and chips with a stub in stubs) every
 * unpatched image on the thread pool, then every patched variant from its unpatched stream
 * (image_deflate_variant), and waits for all of it. A header that cannot be patched is not an
 * error here: it is recorded and returned to the board that asks for it, as before. Runs its
 * own short-lived libuv loop: call it before the station's loop runs. Returns 0 or ES_NOMEM. */
int payload_set_prepare(struct payload_set *ps, const struct profile *const *profiles,
                        size_t n_profiles, const struct stub_image *stubs, enum session_mode mode,
                        struct es_err *err);

/* The prepared payload of image i of p for chip and params (the session's get_payload; cheap,
 * for a loop callback). The error recorded for it (ES_IMAGE_FORMAT ...), or ES_INVALID_ARG for a
 * payload that was not prepared (a bug). */
int payload_set_find(const struct payload_set *ps, const struct profile *p, size_t i,
                     const struct chip *chip, const struct image_flash_params *params,
                     int compressed, const struct session_payload **out, struct es_err *err);

void payload_set_close(struct payload_set *ps);

#endif
