/* The flasher stubs espsim expects a host to upload: esptool-js's stub JSON files (text/data as
 * base64, their load addresses and the entry point), one per simulated chip. A board compares
 * the RAM image it received with these before it "runs" the stub (§10.1). */
#ifndef SIM_STUBIMG_H
#define SIM_STUBIMG_H

#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "es/err.h"

struct sim_stub_image {
    int present;
    uint8_t *text; /* decoded; owned by the image */
    size_t text_len;
    uint32_t text_start;
    uint8_t *data;
    size_t data_len;
    uint32_t data_start;
    uint32_t entry;
};

struct sim_stub_images {
    struct sim_stub_image chip[2]; /* indexed by enum sim_chip */
};

/* Loads dir/esp8266.json and dir/esp32.json into s (zeroed first). Fails with ES_IO when a file
 * cannot be read and ES_STUB when one is not a stub JSON; s is then left empty. Call
 * sim_stub_images_close() when done, also after a failure (it is harmless then). */
int sim_stub_images_load(struct sim_stub_images *s, const char *dir, struct es_err *err);
void sim_stub_images_close(struct sim_stub_images *s);

/* Decodes standard base64 (RFC 4648 §4, '=' padding, whitespace ignored) into a new buffer.
 * Returns 0 and sets *out (malloc'd) and *n, or -1 on invalid input or no memory. */
int sim_base64_decode(const char *text, uint8_t **out, size_t *n);

#endif
