/* Firmware images: loading and hashing a file once, parsing the ESP image header (protocol doc
 * §9.1), patching flash mode/freq/size at the bootloader offset (§9.3) and preparing the exact
 * bytes a session sends and verifies (§8.2). Hashes go through OpenSSL EVP. Nothing here does
 * I/O except image_load(); every other function may run inside a loop callback. */
#ifndef ES_IMAGE_H
#define ES_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "es/chip.h"
#include "es/err.h"
#include "es/hex.h" /* es_hex, for the digests below */

#define IMAGE_MAGIC            0xE9 /* every firmware image (§9.1) */
#define IMAGE_MAGIC_ESP8266_V2 0xEA /* ESP8266 "v2" app image: never patched */
#define IMAGE_MAX_SEGMENTS     16
#define IMAGE_HEADER_LEN       8
#define IMAGE_EXT_HEADER_LEN   16
#define IMAGE_DIGEST_LEN       32

/* A whole file in memory, hashed once. Owned by whoever called image_load(). */
struct image {
    char *path;    /* as given */
    uint8_t *data; /* whole file */
    size_t size;
    uint8_t sha256[32];
    uint8_t md5[16];
};

/* The largest image file: the whole 16 MiB the ROM loaders' 24-bit addresses reach (protocol
 * §8.8). A bigger file cannot be flashed anywhere, so it is never read. */
#define IMAGE_FILE_MAX 0x1000000u

/* Reads the whole file at path and hashes it. *out is a new image the caller frees with
 * image_free(). A file larger than IMAGE_FILE_MAX is refused from fstat, before any byte is
 * read. ES_IMAGE_LOAD naming the call and the path ("open PATH: No such file or directory"),
 * or ES_NOMEM. Does blocking I/O: call before the loop starts. */
int image_load(const char *path, struct image **out, struct es_err *err);
/* Frees img and everything it owns. NULL is fine. */
void image_free(struct image *img);

struct image_header {
    uint8_t magic, segments, mode, size_freq;
    uint32_t entry;
    int has_ext;        /* ESP32-family extended header parsed */
    uint16_t chip_id;   /* from the extended header, when has_ext */
    int hash_appended;  /* byte 23 == 1 */
    size_t data_length; /* offset just past the checksum byte */
    /* Additions beyond the minimum contract: */
    uint8_t checksum;      /* the checksum byte stored in the image */
    uint8_t checksum_calc; /* 0xEF XOR every segment data byte */
    int checksum_ok;       /* checksum == checksum_calc */
    int digest_ok;         /* hash_appended and the stored SHA-256 matches; 0 otherwise */
    uint16_t min_rev;      /* extended header: minimum revision, major * 100 + minor */
    uint16_t max_rev;
    uint32_t seg_addr[IMAGE_MAX_SEGMENTS]; /* load address of each segment */
    uint32_t seg_len[IMAGE_MAX_SEGMENTS];
};

/* Parses a firmware image header and walks its segments (§9.1). esp32_family selects the layout.
 * ES_IMAGE_FORMAT with a precise reason when it does not parse (bad magic, segment past end, byte
 * 23 not 0/1, ...). A wrong XOR checksum or stale digest is not a parse error (esptool only warns);
 * see checksum_ok and digest_ok. */
int image_parse_header(const uint8_t *data, size_t size, int esp32_family, struct image_header *hdr,
                       struct es_err *err);

/* The chip family a 0xE9 firmware image is built for, from its layout (§9.1): an ESP8266 image
 * has no extended header and carries no chip id, so the test is which layout its segments and
 * XOR checksum fit; CHIP_FAMILY_ESP8266 or CHIP_FAMILY_ESP32, or -1 when neither or both fit
 * (not a firmware image, or no telling). */
int image_family(const uint8_t *data, size_t size);
/* ES_IMAGE_CHIP, saying what to use instead, when data is a firmware image for another chip
 * than chip: another family by image_family(), or an ESP32-family image whose chip id names
 * another chip. 0 otherwise, also for data that is not a firmware image. */
int image_check_chip(const struct chip *chip, const uint8_t *data, size_t size, struct es_err *err);

/* Flash settings to write into a header: a code, or IMAGE_KEEP to leave the image's own. */
#define IMAGE_KEEP (-1)
struct image_flash_params {
    int mode; /* enum chip_flash_mode, or IMAGE_KEEP */
    int freq; /* chip_flash_freq code (low nibble), or IMAGE_KEEP */
    int size; /* chip_flash_size code (high nibble, shifted: 0x40), or IMAGE_KEEP */
};

/* Patches, in place, a copy of the bytes destined for chip's bootloader offset (§9.3, esptool
 * v4.8+): sets bytes 2-3 from params and, for ESP32-family images with a digest appended,
 * rewrites the SHA-256 at [data_length, data_length+32) over [0, data_length); bytes after the
 * digest (merged images) are kept. Sets *patched (may be NULL) to 1 when a byte changed.
 * Not patched, returning 0: all three settings IMAGE_KEEP; an ESP8266 0xEA v2 image.
 * ES_IMAGE_FORMAT: anything else that does not parse as a firmware image for chip (shorter
 * than 8 bytes, byte 0 not 0xE9, bad segments, digest missing), which esptool would skip with a
 * warning. The caller decides that the offset is the bootloader offset. */
int image_patch_header(const struct chip *chip, uint8_t *data, size_t size,
                       const struct image_flash_params *params, int *patched, struct es_err *err);

/* The bytes a session writes for one region and the MD5 it must read back (§8.2): the image
 * padded to a multiple of 4 with 0xFF, its header patched when offset is the chip's bootloader
 * offset. Embedded in a struct the caller owns: image_prepare() fills it, image_prepared_close()
 * frees data. */
struct image_prepared {
    uint8_t *data; /* owned */
    size_t size;   /* multiple of 4 */
    uint32_t offset;
    int patched;     /* the header was changed */
    uint8_t md5[16]; /* MD5 of data[0, size): what SPI_FLASH_MD5(offset, size) must give */
};

/* params may be NULL (= keep everything). Errors as image_patch_header(), and ES_NOMEM. On
 * failure out holds nothing to free. */
int image_prepare(const struct chip *chip, const uint8_t *data, size_t size, uint32_t offset,
                  const struct image_flash_params *params, struct image_prepared *out,
                  struct es_err *err);
/* Frees out->data and clears out. Safe on a cleared or already-closed struct. */
void image_prepared_close(struct image_prepared *out);

/* ---- Hashes (OpenSSL EVP, one shot). ES_NOMEM if OpenSSL fails. ---- */
int es_sha256(const void *data, size_t len, uint8_t out[32], struct es_err *err);
int es_md5(const void *data, size_t len, uint8_t out[16], struct es_err *err);
/* MD5 of data padded with 0xFF to a multiple of 4 bytes (§8.2), without copying it. */
int es_md5_padded(const void *data, size_t len, uint8_t out[16], struct es_err *err);

#endif
