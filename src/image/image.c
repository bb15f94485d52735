/* Firmware image files: load and hash once, parse the header and segments (protocol doc §9.1),
 * patch flash mode/freq/size at the bootloader offset as esptool v4.8+ does (§9.3), and prepare
 * the exact bytes and MD5 of a region (§8.2). Hash primitives are in hash.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "es/image.h"
#include "es/le.h"

#define CHECKSUM_SEED 0xEF /* §9.1: XOR of all segment data, starting from this */

/* ---- Loading ---- */

static int read_all(int fd, const char *path, uint8_t *buf, size_t size, struct es_err *err)
{
    size_t got = 0;

    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return es_fail(err, ES_IMAGE_LOAD, "read %s: %s", path, strerror(errno));
        if (n == 0)
            return es_fail(err, ES_IMAGE_LOAD,
                           "read %s: file shrank from %zu to %zu bytes while being read", path,
                           size, got);
        got += (size_t)n;
    }
    return 0;
}

int image_load(const char *path, struct image **out, struct es_err *err)
{
    struct image *img;
    struct stat st;
    int fd, rc;

    *out = NULL;
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return es_fail(err, ES_IMAGE_LOAD, "open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        rc = es_fail(err, ES_IMAGE_LOAD, "stat %s: %s", path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        rc =
            es_fail(err, ES_IMAGE_LOAD, "%s is not a regular file; name the .bin image file", path);
        goto out_close;
    }
    /* A 2 GiB sparse file was read whole before its hash was found wrong (issue 11 #9). */
    if ((uintmax_t)st.st_size > IMAGE_FILE_MAX) {
        rc = es_fail(err, ES_IMAGE_LOAD,
                     "%s is %jd bytes, more than the 16 MiB a flash chip can hold; name the .bin "
                     "image file, not a disk or archive",
                     path, (intmax_t)st.st_size);
        goto out_close;
    }
    img = calloc(1, sizeof(*img));
    if (img == NULL) {
        rc = es_fail(err, ES_NOMEM, "loading %s: out of memory", path);
        goto out_close;
    }
    img->size = (size_t)st.st_size;
    img->path = strdup(path);
    img->data = malloc(img->size ? img->size : 1);
    if (img->path == NULL || img->data == NULL) {
        rc = es_fail(err, ES_NOMEM, "loading %s (%zu bytes): out of memory", path, img->size);
        goto out_free;
    }
    rc = read_all(fd, path, img->data, img->size, err);
    if (rc < 0)
        goto out_free;
    rc = es_sha256(img->data, img->size, img->sha256, err);
    if (rc < 0)
        goto out_free;
    rc = es_md5(img->data, img->size, img->md5, err);
    if (rc < 0)
        goto out_free;
    close(fd);
    *out = img;
    return 0;

out_free:
    image_free(img);
out_close:
    close(fd);
    return rc;
}

void image_free(struct image *img)
{
    if (img == NULL)
        return;
    free(img->path);
    free(img->data);
    free(img);
}

/* ---- Parsing (§9.1) ---- */

int image_parse_header(const uint8_t *data, size_t size, int esp32_family, struct image_header *hdr,
                       struct es_err *err)
{
    size_t pos;
    uint8_t xor = CHECKSUM_SEED;

    memset(hdr, 0, sizeof(*hdr));
    if (size < IMAGE_HEADER_LEN)
        return es_fail(err, ES_IMAGE_FORMAT,
                       "image is %zu bytes, shorter than the 8-byte firmware header", size);
    hdr->magic = data[0];
    hdr->segments = data[1];
    hdr->mode = data[2];
    hdr->size_freq = data[3];
    hdr->entry = es_get_le32(data + 4);
    if (hdr->magic == IMAGE_MAGIC_ESP8266_V2)
        return es_fail(err, ES_IMAGE_FORMAT,
                       "image starts with 0xEA, an ESP8266 v2 app image, not a 0xE9 firmware "
                       "image; espstation writes it as is but cannot parse it");
    if (hdr->magic != IMAGE_MAGIC)
        return es_fail(err, ES_IMAGE_FORMAT,
                       "byte 0 is 0x%02x, not the firmware image magic 0xE9; this is not a "
                       "bootloader or app image",
                       hdr->magic);
    if (hdr->segments == 0 || hdr->segments > IMAGE_MAX_SEGMENTS)
        return es_fail(err, ES_IMAGE_FORMAT,
                       "header says %u segments, expected 1 to %d; the image is corrupt",
                       hdr->segments, IMAGE_MAX_SEGMENTS);
    pos = IMAGE_HEADER_LEN;
    if (esp32_family) {
        if (size < IMAGE_HEADER_LEN + IMAGE_EXT_HEADER_LEN)
            return es_fail(err, ES_IMAGE_FORMAT,
                           "image is %zu bytes, shorter than the 24-byte ESP32 header with its "
                           "extended part",
                           size);
        hdr->has_ext = 1;
        hdr->chip_id = es_get_le16(data + 12);
        hdr->min_rev = es_get_le16(data + 15);
        hdr->max_rev = es_get_le16(data + 17);
        if (data[23] > 1)
            return es_fail(err, ES_IMAGE_FORMAT,
                           "extended header byte 23 (hash appended) is %u, expected 0 or 1; "
                           "this is not a valid ESP32-family image",
                           data[23]);
        hdr->hash_appended = data[23];
        pos += IMAGE_EXT_HEADER_LEN;
    }
    for (unsigned i = 0; i < hdr->segments; i++) {
        uint32_t len;

        if (size - pos < 8)
            return es_fail(err, ES_IMAGE_FORMAT,
                           "segment %u of %u: its 8-byte header at offset 0x%zx is past the end "
                           "of the %zu-byte image; the file is truncated",
                           i, hdr->segments, pos, size);
        hdr->seg_addr[i] = es_get_le32(data + pos);
        len = es_get_le32(data + pos + 4);
        hdr->seg_len[i] = len;
        pos += 8;
        if (len > size - pos)
            return es_fail(err, ES_IMAGE_FORMAT,
                           "segment %u of %u (load address 0x%08x, %u bytes at offset 0x%zx) "
                           "runs past the end of the %zu-byte image; the file is truncated",
                           i, hdr->segments, (unsigned)hdr->seg_addr[i], (unsigned)len, pos, size);
        for (size_t j = 0; j < len; j++)
            xor ^= data[pos + j];
        pos += len;
    }
    /* The checksum byte sits where the offset is one short of a multiple of 16. */
    pos += 15 - pos % 16;
    if (pos >= size)
        return es_fail(err, ES_IMAGE_FORMAT,
                       "checksum byte at offset 0x%zx is past the end of the %zu-byte image; the "
                       "file is truncated",
                       pos, size);
    hdr->checksum = data[pos];
    hdr->checksum_calc = xor;
    hdr->checksum_ok = hdr->checksum == xor;
    hdr->data_length = pos + 1;
    if (hdr->hash_appended) {
        uint8_t digest[IMAGE_DIGEST_LEN];
        int rc;

        if (size - hdr->data_length < IMAGE_DIGEST_LEN)
            return es_fail(err, ES_IMAGE_FORMAT,
                           "header says a SHA-256 digest follows the checksum at offset 0x%zx, "
                           "but the %zu-byte image ends before it; the file is truncated",
                           hdr->data_length, size);
        rc = es_sha256(data, hdr->data_length, digest, err);
        if (rc < 0)
            return rc;
        hdr->digest_ok = memcmp(digest, data + hdr->data_length, IMAGE_DIGEST_LEN) == 0;
    }
    return 0;
}

/* Whether data is a whole firmware image in one layout: its segments fit and its checksum is
 * right. Data that starts with 0xE9 by chance, or an image read with the other family's layout,
 * almost never passes both. */
static int fits_layout(const uint8_t *data, size_t size, int esp32_family, struct image_header *hdr)
{
    return image_parse_header(data, size, esp32_family, hdr, NULL) == 0 && hdr->checksum_ok;
}

int image_family(const uint8_t *data, size_t size)
{
    struct image_header h8266, h32;
    int is8266, is32;

    if (size == 0 || data[0] != IMAGE_MAGIC)
        return -1;
    is8266 = fits_layout(data, size, 0, &h8266);
    is32 = fits_layout(data, size, 1, &h32) && h32.has_ext;
    if (is8266 == is32)
        return -1;
    return is8266 ? CHIP_FAMILY_ESP8266 : CHIP_FAMILY_ESP32;
}

int image_check_chip(const struct chip *chip, const uint8_t *data, size_t size, struct es_err *err)
{
    struct image_header hdr;
    const struct chip *named;
    int family = image_family(data, size);

    if (family == CHIP_FAMILY_ESP8266 && chip->family != CHIP_FAMILY_ESP8266)
        return es_fail(err, ES_IMAGE_CHIP,
                       "built for the ESP8266 (its segments and checksum fit only that layout), "
                       "not %s; use the %s build of the firmware",
                       chip->name, chip->name);
    if (family == CHIP_FAMILY_ESP8266 || size == 0 || data[0] != IMAGE_MAGIC ||
        image_parse_header(data, size, 1, &hdr, NULL) < 0 || !hdr.has_ext)
        return 0;
    named = chip_by_image_id(hdr.chip_id);
    /* Read with the ESP32 layout an ESP8266 image gives a chip id from its segment bytes: on an
     * ESP8266 only an image that fits the ESP32 layout or names a known chip counts. */
    if (chip->family == CHIP_FAMILY_ESP8266 && family != CHIP_FAMILY_ESP32 &&
        (named == NULL || image_parse_header(data, size, 0, &hdr, NULL) == 0))
        return 0;
    if ((int)hdr.chip_id == chip->image_chip_id)
        return 0;
    return es_fail(err, ES_IMAGE_CHIP,
                   "built for %s (image chip id %u), not %s; use the %s build of the firmware",
                   named != NULL ? named->name : "an unknown chip", (unsigned)hdr.chip_id,
                   chip->name, chip->name);
}

/* ---- Patching (§9.3) ---- */

/* A code is IMAGE_KEEP, or in [0, max] with only the bits of mask set. */
static int code_ok(int code, int max, int mask)
{
    return code == IMAGE_KEEP || (code >= 0 && code <= max && (code & ~mask) == 0);
}

int image_patch_header(const struct chip *chip, uint8_t *data, size_t size,
                       const struct image_flash_params *params, int *patched, struct es_err *err)
{
    struct image_header hdr;
    uint8_t mode, size_freq;
    int esp32 = chip->family == CHIP_FAMILY_ESP32;
    int rc;

    if (patched != NULL)
        *patched = 0;
    if (params == NULL ||
        (params->mode == IMAGE_KEEP && params->freq == IMAGE_KEEP && params->size == IMAGE_KEEP))
        return 0;
    if (!code_ok(params->mode, 0x3, 0x3) || !code_ok(params->freq, 0xF, 0xF) ||
        !code_ok(params->size, 0xF0, 0xF0))
        return es_fail(err, ES_INVALID_ARG,
                       "image_patch_header: codes out of range (mode %d, freq %d, size %d)",
                       params->mode, params->freq, params->size);
    /* §9.1: ESP8266 v2 images start with 0xEA and are never patched. */
    if (!esp32 && size > 0 && data[0] == IMAGE_MAGIC_ESP8266_V2)
        return 0;
    rc = image_parse_header(data, size, esp32, &hdr, err);
    if (rc < 0)
        return err ? es_err_prefix(err, "cannot set flash mode/freq/size in the %s image header",
                                   chip->name)
                   : rc;
    mode = params->mode == IMAGE_KEEP ? data[2] : (uint8_t)params->mode;
    size_freq = data[3];
    if (params->size != IMAGE_KEEP)
        size_freq = (uint8_t)((size_freq & 0x0F) | params->size);
    if (params->freq != IMAGE_KEEP)
        size_freq = (uint8_t)((size_freq & 0xF0) | params->freq);
    if (mode == data[2] && size_freq == data[3])
        return 0;
    data[2] = mode;
    data[3] = size_freq;
    /* esptool v4.8+: the appended digest covers bytes 2-3, so recompute it in place and keep
     * whatever follows it (merged images). ESP8266 images have no digest (§9.3 quirk). */
    if (esp32 && hdr.hash_appended) {
        rc = es_sha256(data, hdr.data_length, data + hdr.data_length, err);
        if (rc < 0)
            return rc;
    }
    if (patched != NULL)
        *patched = 1;
    return 0;
}

/* ---- Preparing a region (§8.2) ---- */

int image_prepare(const struct chip *chip, const uint8_t *data, size_t size, uint32_t offset,
                  const struct image_flash_params *params, struct image_prepared *out,
                  struct es_err *err)
{
    size_t padded = size + (4 - size % 4) % 4;
    int rc;

    memset(out, 0, sizeof(*out));
    out->data = malloc(padded ? padded : 1);
    if (out->data == NULL)
        return es_fail(err, ES_NOMEM, "preparing %zu bytes for offset 0x%x: out of memory", padded,
                       (unsigned)offset);
    if (size > 0)
        memcpy(out->data, data, size);
    memset(out->data + size, 0xFF, padded - size);
    out->size = padded;
    out->offset = offset;
    if (offset == chip->bootloader_offset) {
        rc = image_patch_header(chip, out->data, out->size, params, &out->patched, err);
        if (rc < 0) {
            if (err != NULL)
                es_err_prefix(err, "image at 0x%x (the %s bootloader offset)", (unsigned)offset,
                              chip->name);
            goto out_free;
        }
    }
    rc = es_md5(out->data, out->size, out->md5, err);
    if (rc < 0)
        goto out_free;
    return 0;

out_free:
    image_prepared_close(out);
    return rc;
}

void image_prepared_close(struct image_prepared *out)
{
    free(out->data);
    memset(out, 0, sizeof(*out));
}
