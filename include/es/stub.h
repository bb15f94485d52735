/* Espressif's flasher stub images, as published in the esptool-js npm package: one JSON file per
 * chip with base64 "text" and "data" segments, their load addresses and the entry point. Loaded
 * once before the loop; sessions upload them to RAM with MEM_BEGIN/MEM_DATA/MEM_END. */
#ifndef ES_STUB_H
#define ES_STUB_H

#include <stddef.h>
#include <stdint.h>

#include "es/chip.h"
#include "es/err.h"

struct stub_segment {
    uint32_t addr;
    uint8_t *bytes; /* owned */
    size_t len;
};

struct stub_image {
    const struct chip *chip;
    uint32_t entry;
    struct stub_segment text;
    struct stub_segment data;
};

/* Reads dir/<chip name>.json (e.g. stub_flasher/esp32.json) into out, which the caller later
 * releases with stub_close(). ES_STUB naming the file and what is wrong with it. Blocking I/O:
 * call before the loop starts. */
int stub_load(const char *dir, const struct chip *chip, struct stub_image *out, struct es_err *err);
/* Frees the segments and clears out. Safe on a cleared struct. */
void stub_close(struct stub_image *out);

/* The directory stubs are read from: $ESPSTATION_STUB_DIR if set, else the installed
 * ../share/espstation/stubs next to the executable if it exists, else the build tree's
 * esptool-js directory. The result stays valid until the next call; call before the loop. */
const char *stub_default_dir(void);

#endif
