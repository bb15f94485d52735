/* The YAML profile: what to flash, where, and how (design.md "A profile"). profile_parse turns
 * text into a struct profile and applies every rule that needs only the text; profile_load also
 * reads and hashes every image once and applies the rules that need the images and the chip.
 * Every value keeps its source position so later checks can cite file:line:column. */
#ifndef ES_PROFILE_H
#define ES_PROFILE_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "es/err.h"

struct chip;
struct image;
struct image_flash_params;

/* A 1-based source position. {0, 0} means the key was absent and the default applies. */
struct profile_pos {
    int line;
    int col;
};

enum profile_size_kind {
    PROFILE_SIZE_KEEP,   /* leave the image header as it is */
    PROFILE_SIZE_DETECT, /* read the flash id of each board */
    PROFILE_SIZE_BYTES,  /* an explicit size: flash.size_bytes */
};

enum profile_erase { PROFILE_ERASE_NONE, PROFILE_ERASE_ALL, PROFILE_ERASE_REGIONS };
enum profile_verify { PROFILE_VERIFY_MD5, PROFILE_VERIFY_NONE };
enum profile_loader { PROFILE_LOADER_STUB, PROFILE_LOADER_ROM };
enum profile_reset_before { PROFILE_RESET_BEFORE_AUTO, PROFILE_RESET_BEFORE_NONE };
enum profile_reset_after { PROFILE_RESET_AFTER_HARD, PROFILE_RESET_AFTER_NONE };
/* Two boards with one MAC in a run: both fail (a clone or a board seen twice), or both are only
 * flagged. */
enum profile_duplicate_mac { PROFILE_DUP_MAC_FAIL, PROFILE_DUP_MAC_WARN };

/* Defaults and limits of design.md's profile rules. */
#define PROFILE_DEFAULT_BAUD    115200u
#define PROFILE_DEFAULT_RETRIES 3
#define PROFILE_DEFAULT_REPORTS "reports"
#define PROFILE_BAUD_MIN        9600u
#define PROFILE_BAUD_MAX        5000000u
#define PROFILE_RETRIES_MAX     100
#define PROFILE_SECTOR_BYTES    0x1000u
#define PROFILE_OFFSET_LIMIT    0x1000000u /* the ROM loaders' 24-bit addressing (protocol §8.8) */

struct profile_image {
    uint32_t offset;
    char *file;          /* as written in the profile */
    char *path;          /* resolved relative to the profile file's directory */
    uint8_t sha256[32];  /* the pinned hash */
    struct image *image; /* owned; loaded by profile_load, NULL after profile_parse alone */
    struct profile_pos pos, offset_pos, file_pos, sha256_pos;
};

/* One entry of ports: either a path or glob (path != NULL), or a USB match where every field
 * that is set must match (usb, serial, location; at least one is set). */
struct profile_port {
    char *path;
    int has_usb;
    uint16_t usb_vid, usb_pid;
    char *serial;
    char *location;
    struct profile_pos pos;
};

struct profile_flash {
    const char *mode; /* "keep", "qio", "qout", "dio" or "dout" (static strings) */
    const char *freq; /* "keep", "80m", "40m", "26m" or "20m" (static strings) */
    const char *size; /* "keep", "detect", "256KB" ... "16MB" (static strings) */
    enum profile_size_kind size_kind;
    uint32_t size_bytes; /* when size_kind == PROFILE_SIZE_BYTES, else 0 */
    struct profile_pos pos, mode_pos, freq_pos, size_pos;
};

/* boot_check: after the hard reset into the firmware, the station listens at baud and passes
 * the board when every expect pattern is seen in order and, when send is set, the reply pattern
 * follows what it sends. Patterns are POSIX extended regexes, compiled when the profile loads. */
#define PROFILE_BOOT_EXPECT_MAX     16
#define PROFILE_BOOT_TIMEOUT_MS     10000u  /* the default */
#define PROFILE_BOOT_TIMEOUT_MIN_MS 100u    /* less cannot hold even a ROM's boot text */
#define PROFILE_BOOT_TIMEOUT_MAX_MS 600000u /* ten minutes: longer is a hung board */
#define PROFILE_BOOT_SEND_MAX       256     /* bytes sent to the firmware */

struct profile_boot_check {
    uint32_t baud;       /* the firmware's console rate; default PROFILE_DEFAULT_BAUD */
    char **expect;       /* the patterns as written, in order */
    regex_t *expect_re;  /* each compiled with REG_EXTENDED */
    size_t n_expect;     /* 0 when only send/reply is checked */
    char *send;          /* bytes to send after the last expect (YAML escapes applied), or NULL */
    size_t send_len;     /* may hold NUL bytes ("\0" in a double-quoted YAML string) */
    char *reply;         /* the pattern that must follow send, or NULL */
    regex_t reply_re;    /* valid when reply != NULL */
    uint32_t timeout_ms; /* the whole boot phase, before timeout_scale */
    struct profile_pos pos, baud_pos, expect_pos, send_pos, reply_pos, timeout_pos;
    struct profile_pos *expect_pos_each; /* of each pattern */
};

struct profile {
    char *path;          /* as passed in, used in every message */
    uint8_t sha256[32];  /* of the profile file's bytes, for reports */
    char sha256_hex[65]; /* the same, lowercase hex */

    char *name;              /* default: the file name without directory and extension */
    const struct chip *chip; /* NULL means chip: auto */
    uint32_t baud;
    uint32_t flash_baud; /* 0 when absent: stay at baud */
    struct profile_flash flash;
    enum profile_erase erase;
    enum profile_verify verify;
    enum profile_loader loader;
    enum profile_reset_before reset_before;
    enum profile_reset_after reset_after;
    enum profile_duplicate_mac duplicate_mac;
    int retries;
    char *reports;
    /* The fleet database to publish to (a PostgreSQL URL, checked by libpq's parser when the
     * profile is read), or NULL. --publish and $ESPSTATION_PUBLISH come first. */
    char *publish;
    struct profile_port *ports; /* n_ports == 0: the command line, else every USB serial port */
    size_t n_ports;
    struct profile_image *images; /* in file order; at least one */
    size_t n_images;
    struct profile_boot_check *boot_check; /* NULL: no boot_check section */

    struct profile_pos name_pos, chip_pos, baud_pos, flash_baud_pos, erase_pos, verify_pos,
        loader_pos, reset_before_pos, reset_after_pos, retries_pos, reports_pos, ports_pos,
        images_pos, duplicate_mac_pos, publish_pos;
};

/* Parses profile text; path is used for messages and to resolve image paths, and is not opened.
 * Applies every rule that needs only the text (keys, types, ranges, alignment, sha256 format,
 * words the chip cannot encode when the chip is named). On success *out is a new profile whose
 * images are not loaded (image == NULL) and whose sha256 is that of text. On failure returns
 * -ES_PROFILE (or -ES_NOMEM) with err->msg "PATH:LINE:COL: what is wrong; what to write
 * instead". Never reads a file, so it is what the profile fuzzer drives. */
int profile_parse(const char *path, const char *text, size_t len, struct profile **out,
                  struct es_err *err);

/* Reads the file, profile_parse()s it, then loads every image once (image_load) and checks it:
 * pinned SHA-256, header chip against the profile's chip, the image at the bootloader offset
 * being a firmware image when the header is to be patched, overlaps, the explicit flash size,
 * the loader's address limits, and verify: md5 with loader: rom on an ESP8266. Runs before any
 * board is touched; never opens a port. Errors: ES_IO (the profile cannot be read), ES_PROFILE,
 * ES_IMAGE_LOAD, ES_IMAGE_HASH, ES_IMAGE_FORMAT, ES_IMAGE_CHIP, all with a file:line:col
 * message. On success the caller owns *out and frees it with profile_free. */
int profile_load(const char *path, struct profile **out, struct es_err *err);

/* The profiles of one run, in command-line order. A board takes the profile whose chip matches
 * what it detects, so no two may claim the same chip, and chip: auto, which claims every chip,
 * must be alone. Returns 0, or -ES_PROFILE with a message naming both profiles (file:line:col
 * of their chip key) and the chip they both claim. No I/O. */
int profile_check_set(const struct profile *const *profiles, size_t n, struct es_err *err);

/* Frees the profile and the images it loaded. NULL is fine. */
void profile_free(struct profile *p);

/* The rules that depend on the board's chip and flash size, for a board that has been detected
 * (chip: auto, size: detect). chip must not be NULL; flash_size_bytes is the size the board
 * reported, or 0 when unknown. Uses the loaded images when present. Returns 0, or -ES_WRONG_CHIP
 * (the profile names another chip), -ES_PROFILE, -ES_IMAGE_CHIP, -ES_IMAGE_FORMAT or
 * -ES_FLASH_SIZE with a file:line:col message naming the image or setting at fault. No I/O, so it
 * may run inside a loop callback; with chip: auto and a header to patch it copies the bootloader
 * image once to try the patch. */
int profile_check_board(const struct profile *p, const struct chip *chip, uint32_t flash_size_bytes,
                        struct es_err *err);

/* The header codes (image_patch_header) the profile asks for on chip: IMAGE_KEEP where it says
 * keep; a size of detect becomes the code of detected_bytes, or IMAGE_KEEP while that is 0.
 * ES_PROFILE when chip cannot encode a setting, ES_FLASH_SIZE when it has no code for the
 * detected size. */
int profile_flash_params(const struct profile *p, const struct chip *chip, uint32_t detected_bytes,
                         struct image_flash_params *out, struct es_err *err);

/* Prints the plan for `espstation check`: settings (defaults marked), then what goes where with
 * sizes and hashes. Returns 0, or -1 when writing to f failed. */
int profile_print_plan(const struct profile *p, FILE *f);

/* The SHA-256 of the profile file's bytes as 64 lowercase hex digits (owned by p). */
const char *profile_hash(const struct profile *p);

/* Names for reports and logs: the words the profile uses. */
const char *profile_erase_name(enum profile_erase e);
const char *profile_verify_name(enum profile_verify v);
const char *profile_loader_name(enum profile_loader l);
const char *profile_reset_before_name(enum profile_reset_before b);
const char *profile_reset_after_name(enum profile_reset_after a);

#endif
