/* Helpers shared by the files of src/profile and nothing else: the message format every profile
 * error uses, and the checks profile_check.c provides to profile.c. */
#ifndef ES_PROFILE_INTERNAL_H
#define ES_PROFILE_INTERNAL_H

#include "es/err.h"
#include "es/profile.h"

/* Fills err with code and "PATH:LINE:COL: " + the formatted text; a position of {0, 0} (a
 * default) cites the file alone. Returns -(int)code. */
int profile_fail(struct es_err *err, const char *path, struct profile_pos pos, enum es_code code,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The chip-dependent checks of a parsed profile that need no image data: flash size and
 * frequency encodable for the chip, the loader's address limits, verify + loader + chip. */
int profile_check_settings(const struct profile *p, const struct chip *chip, struct es_err *err);

/* Loads, hashes and checks every image of a parsed profile (see profile_load). */
int profile_check_images(struct profile *p, struct es_err *err);

/* "0x1000" style text for an offset or size, into buf. Returns buf. */
const char *profile_hex(char buf[16], uint32_t v);

#endif
