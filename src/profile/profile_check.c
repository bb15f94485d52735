/* The profile rules that need more than the text: the chip's encodings and loader limits, the
 * images themselves (loaded and hashed once, headers parsed), and how the images lie in flash.
 * Each rule is written once and used both by profile_load (chip named in the profile) and by
 * profile_check_board (chip and flash size detected on a board). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "es/chip.h"
#include "es/image.h"
#include "es/profile.h"
#include "profile_internal.h"

static const struct chip_flash_size *family_size(const struct chip *chip, const char *name)
{
    for (size_t i = 0; i < chip->flash_size_count; i++)
        if (strcmp(chip->flash_sizes[i].name, name) == 0)
            return &chip->flash_sizes[i];
    return NULL;
}

static const struct chip_flash_freq *family_freq(const struct chip *chip, const char *name)
{
    for (size_t i = 0; i < chip->flash_freq_count; i++)
        if (strcmp(chip->flash_freqs[i].name, name) == 0)
            return &chip->flash_freqs[i];
    return NULL;
}

static int patching(const struct profile *p)
{
    return strcmp(p->flash.mode, "keep") != 0 || strcmp(p->flash.freq, "keep") != 0 ||
           p->flash.size_kind != PROFILE_SIZE_KEEP;
}

int profile_check_settings(const struct profile *p, const struct chip *chip, struct es_err *err)
{
    char list[512];
    size_t used = 0;

    if (p->flash.size_kind == PROFILE_SIZE_BYTES && family_size(chip, p->flash.size) == NULL) {
        for (size_t i = 0; i < chip->flash_size_count && used < sizeof(list); i++) {
            int r = snprintf(list + used, sizeof(list) - used, "%s, ", chip->flash_sizes[i].name);
            if (r > 0)
                used += (size_t)r;
        }
        return profile_fail(err, p->path, p->flash.size_pos, ES_PROFILE,
                            "flash.size %s cannot be encoded for %s; write one of %sdetect or keep",
                            p->flash.size, chip->name, list);
    }
    if (strcmp(p->flash.freq, "keep") != 0 && family_freq(chip, p->flash.freq) == NULL) {
        for (size_t i = 0; i < chip->flash_freq_count && used < sizeof(list); i++) {
            int r = snprintf(list + used, sizeof(list) - used, "%s, ", chip->flash_freqs[i].name);
            if (r > 0)
                used += (size_t)r;
        }
        return profile_fail(err, p->path, p->flash.freq_pos, ES_PROFILE,
                            "flash.freq %s cannot be encoded for %s; write one of %sor keep",
                            p->flash.freq, chip->name, list);
    }
    if (p->verify == PROFILE_VERIFY_MD5 && p->loader == PROFILE_LOADER_ROM &&
        !chip_has(chip, CHIP_ROM_MD5))
        return profile_fail(err, p->path, p->loader_pos, ES_PROFILE,
                            "verify: md5 needs the flasher stub on %s (its ROM has no MD5 "
                            "command); write loader: stub, or verify: none",
                            chip->name);
    if (p->flash_baud != 0 && p->loader == PROFILE_LOADER_ROM &&
        !chip_has(chip, CHIP_ROM_CHANGE_BAUD))
        return profile_fail(err, p->path, p->flash_baud_pos, ES_PROFILE,
                            "flash_baud needs the flasher stub on %s (its ROM cannot change the "
                            "baud rate); remove flash_baud, or write loader: stub",
                            chip->name);
    if (p->loader == PROFILE_LOADER_ROM) {
        for (size_t i = 0; i < p->n_images; i++) {
            char off[16], max[16];
            if (p->images[i].offset < chip->rom_max_flash)
                continue;
            return profile_fail(err, p->path, p->images[i].offset_pos, ES_PROFILE,
                                "images[%zu].offset %s is more than the %s ROM loader accepts "
                                "(below %s); write loader: stub",
                                i, profile_hex(off, p->images[i].offset), chip->name,
                                profile_hex(max, chip->rom_max_flash));
        }
    }
    return 0;
}

static uint32_t align_up(uint64_t v)
{
    return (uint32_t)((v + PROFILE_SECTOR_BYTES - 1) & ~(uint64_t)(PROFILE_SECTOR_BYTES - 1));
}

/* Overlaps, the 16 MiB limit and the flash size. flash_bytes is the size images must fit in
 * (0: not known yet); size_pos the position that set it (a default or detected size: {0, 0}). */
static int check_layout(const struct profile *p, uint32_t flash_bytes, int detected,
                        struct es_err *err)
{
    for (size_t j = 0; j < p->n_images; j++) {
        const struct profile_image *b = &p->images[j];
        uint64_t b_end;
        char s1[16], s2[16], s3[16], s4[16], s5[16];

        if (b->image == NULL)
            continue;
        b_end = (uint64_t)b->offset + b->image->size;
        for (size_t i = 0; i < j; i++) {
            const struct profile_image *a = &p->images[i];
            uint64_t a_end;
            if (a->image == NULL)
                continue;
            a_end = (uint64_t)a->offset + a->image->size;
            if (!(a->offset < b_end && b->offset < a_end))
                continue;
            {
                /* The one that starts higher moves past the end of the other. */
                int b_moves = b->offset >= a->offset;
                return profile_fail(
                    err, p->path, b->pos, ES_PROFILE,
                    "images[%zu] (%s..%s) overlaps images[%zu] at %d:%d (%s..%s); move images[%zu] "
                    "to %s or later",
                    j, profile_hex(s1, b->offset), profile_hex(s2, (uint32_t)b_end - 1), i,
                    a->pos.line, a->pos.col, profile_hex(s3, a->offset),
                    profile_hex(s4, (uint32_t)a_end - 1), b_moves ? j : i,
                    profile_hex(s5, align_up(b_moves ? a_end : b_end)));
            }
        }
        if (b_end > PROFILE_OFFSET_LIMIT)
            return profile_fail(err, p->path, b->pos, ES_PROFILE,
                                "images[%zu] (%s..%s) ends past 16 MiB, which the loaders cannot "
                                "address; move it lower or use a smaller image",
                                j, profile_hex(s1, b->offset),
                                profile_hex(s2, (uint32_t)b_end - 1));
        if (flash_bytes != 0 && b_end > flash_bytes) {
            const char *size_name = chip_flash_size_name(flash_bytes);
            if (detected)
                return profile_fail(err, p->path, b->pos, ES_FLASH_SIZE,
                                    "images[%zu] (%s..%s) ends past this board's %s flash; use "
                                    "boards with more flash or a smaller image",
                                    j, profile_hex(s1, b->offset),
                                    profile_hex(s2, (uint32_t)b_end - 1),
                                    size_name != NULL ? size_name : profile_hex(s3, flash_bytes));
            return profile_fail(err, p->path, b->pos, ES_PROFILE,
                                "images[%zu] (%s..%s) ends past flash.size %s at %d:%d; write "
                                "the board's real flash size, or detect",
                                j, profile_hex(s1, b->offset), profile_hex(s2, (uint32_t)b_end - 1),
                                p->flash.size, p->flash.size_pos.line, p->flash.size_pos.col);
        }
    }
    return 0;
}

/* What the header is to become: codes for chip, or IMAGE_KEEP. A size of detect becomes the
 * detected size when known (detected_bytes != 0), else keep. */
static int flash_params(const struct profile *p, const struct chip *chip, uint32_t detected_bytes,
                        struct image_flash_params *out, struct es_err *err)
{
    const struct chip_flash_size *size;
    const struct chip_flash_freq *freq;
    uint8_t mode;
    int rc;

    out->mode = out->freq = out->size = IMAGE_KEEP;
    if (strcmp(p->flash.mode, "keep") != 0) {
        rc = chip_flash_mode_from_string(p->flash.mode, &mode, err);
        if (rc < 0)
            return rc;
        out->mode = mode;
    }
    if (strcmp(p->flash.freq, "keep") != 0) {
        freq = family_freq(chip, p->flash.freq);
        if (freq == NULL)
            return profile_check_settings(p, chip, err);
        out->freq = freq->code;
    }
    if (p->flash.size_kind == PROFILE_SIZE_BYTES) {
        size = family_size(chip, p->flash.size);
        if (size == NULL)
            return profile_check_settings(p, chip, err);
        out->size = size->code;
    } else if (p->flash.size_kind == PROFILE_SIZE_DETECT && detected_bytes != 0) {
        rc = chip_flash_size_from_bytes(chip, detected_bytes, &size, err);
        if (rc < 0)
            return profile_fail(err, p->path, p->flash.size_pos, ES_FLASH_SIZE,
                                "flash.size detect: this board's flash (%u bytes) has no size "
                                "code on %s; write an explicit flash.size or keep",
                                (unsigned)detected_bytes, chip->name);
        out->size = size->code;
    }
    return 0;
}

int profile_flash_params(const struct profile *p, const struct chip *chip, uint32_t detected_bytes,
                         struct image_flash_params *out, struct es_err *err)
{
    return flash_params(p, chip, detected_bytes, out, err);
}

/* Header rules for chip (design.md): every 0xE9 image that parses must be for this chip (the
 * ESP32 family carries a chip id; an ESP8266 image carries none), and when the header is to be
 * patched the image at the bootloader offset must be a firmware image that patches. */
static int check_headers(const struct profile *p, const struct chip *chip, struct es_err *err)
{
    int esp32 = chip->family == CHIP_FAMILY_ESP32;

    for (size_t i = 0; i < p->n_images; i++) {
        const struct profile_image *pi = &p->images[i];
        const struct image *img = pi->image;
        struct image_header hdr;
        struct es_err why;
        char off[16];

        if (img == NULL)
            continue;
        if (pi->offset == chip->bootloader_offset && patching(p)) {
            struct image_flash_params params;
            struct image_prepared prep;
            int rc;

            if (img->size < IMAGE_HEADER_LEN ||
                (img->data[0] != IMAGE_MAGIC &&
                 !(chip->family == CHIP_FAMILY_ESP8266 && img->data[0] == IMAGE_MAGIC_ESP8266_V2)))
                return profile_fail(
                    err, p->path, pi->file_pos, ES_IMAGE_FORMAT,
                    "%s at %s, the %s bootloader offset, is not a firmware image (byte 0 is "
                    "0x%02x, not 0xe9); set flash mode, freq and size to keep, or fix file",
                    pi->file, profile_hex(off, pi->offset), chip->name,
                    img->size > 0 ? img->data[0] : 0);
            if (img->data[0] == IMAGE_MAGIC &&
                image_parse_header(img->data, img->size, esp32, &hdr, &why) < 0)
                return profile_fail(err, p->path, pi->file_pos, ES_IMAGE_FORMAT,
                                    "images[%zu] at the %s bootloader offset must be a valid "
                                    "firmware image to patch (or set flash to keep): %s",
                                    i, chip->name, why.msg);
            rc = flash_params(p, chip, 0, &params, err);
            if (rc < 0)
                return rc;
            rc = image_prepare(chip, img->data, img->size, pi->offset, &params, &prep, &why);
            if (rc < 0)
                return profile_fail(err, p->path, pi->file_pos,
                                    why.code == ES_NOMEM ? ES_NOMEM : ES_IMAGE_FORMAT,
                                    "%s cannot take the flash settings: %s", pi->file, why.msg);
            image_prepared_close(&prep);
        }
        if (image_check_chip(chip, img->data, img->size, &why) < 0)
            return profile_fail(err, p->path, pi->file_pos, ES_IMAGE_CHIP, "%s is %s", pi->file,
                                why.msg);
    }
    return 0;
}

static int load_image(struct profile *p, size_t index, struct es_err *err)
{
    struct profile_image *pi = &p->images[index];
    struct stat st;
    struct es_err why;
    char want[65], got[65];
    int rc;

    if (stat(pi->path, &st) < 0)
        return profile_fail(err, p->path, pi->file_pos, ES_IMAGE_LOAD,
                            "images[%zu].file: cannot open %s: %s; paths are relative to the "
                            "profile's directory",
                            index, pi->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return profile_fail(err, p->path, pi->file_pos, ES_IMAGE_LOAD,
                            "images[%zu].file: %s is not a regular file; point file at the "
                            "firmware .bin",
                            index, pi->path);
    rc = image_load(pi->path, &pi->image, &why);
    if (rc < 0)
        return profile_fail(err, p->path, pi->file_pos, why.code, "images[%zu].file: %s", index,
                            why.msg);
    if (pi->image->size == 0)
        return profile_fail(err, p->path, pi->file_pos, ES_IMAGE_FORMAT,
                            "images[%zu].file: %s is empty; point file at the firmware .bin", index,
                            pi->path);
    if (memcmp(pi->image->sha256, pi->sha256, sizeof(pi->sha256)) != 0) {
        es_hex(pi->sha256, sizeof(pi->sha256), want);
        es_hex(pi->image->sha256, sizeof(pi->image->sha256), got);
        return profile_fail(err, p->path, pi->sha256_pos, ES_IMAGE_HASH,
                            "%s has sha256 %s but the profile pins %s; fix the file or the pin",
                            pi->file, got, want);
    }
    return 0;
}

int profile_check_images(struct profile *p, struct es_err *err)
{
    int rc;

    for (size_t i = 0; i < p->n_images; i++) {
        rc = load_image(p, i, err);
        if (rc < 0)
            return rc;
    }
    rc =
        check_layout(p, p->flash.size_kind == PROFILE_SIZE_BYTES ? p->flash.size_bytes : 0, 0, err);
    if (rc < 0)
        return rc;
    if (p->chip != NULL)
        return check_headers(p, p->chip, err);
    return 0;
}

int profile_check_board(const struct profile *p, const struct chip *chip, uint32_t flash_size_bytes,
                        struct es_err *err)
{
    struct image_flash_params params;
    uint32_t limit = 0;
    int rc;

    if (p->chip != NULL && p->chip != chip)
        return profile_fail(err, p->path, p->chip_pos, ES_WRONG_CHIP,
                            "the profile is for %s but the board is %s; use a profile for %s",
                            p->chip->name, chip->name, chip->name);
    rc = profile_check_settings(p, chip, err);
    if (rc < 0)
        return rc;
    rc = flash_params(p, chip, flash_size_bytes, &params, err);
    if (rc < 0)
        return rc;
    if (p->flash.size_kind == PROFILE_SIZE_BYTES)
        limit = p->flash.size_bytes;
    if (flash_size_bytes != 0 && (limit == 0 || flash_size_bytes < limit)) {
        rc = check_layout(p, flash_size_bytes, 1, err);
        if (rc < 0)
            return rc;
    }
    if (p->chip != NULL)
        return 0; /* profile_load checked the headers against this chip already */
    return check_headers(p, chip, err);
}
