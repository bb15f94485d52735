/* One error type for the whole program: a stable code for programs and reports, the ROM's own
 * status byte when a board refused, and one sentence for a person. Codes come from ES_ERRORS
 * below, the single table that yields the enum, the JSON name and a default hint. */
#ifndef ES_ERR_H
#define ES_ERR_H

#include <stdarg.h>

/* X(NAME, "json_name", "default hint for a person") */
#define ES_ERRORS(X)                                                                               \
    X(OK, "ok", "")                                                                                \
    X(NOMEM, "no_memory", "the station ran out of memory")                                         \
    X(INVALID_ARG, "invalid_argument", "this is a bug in espstation; please report it")            \
    X(IO, "io_error", "check the file or device named in the message")                             \
    X(USAGE, "usage", "run 'espstation --help' for the accepted commands and options")             \
    X(SLIP_OVERFLOW, "slip_overflow", "the line carries garbage without frame delimiters")         \
    X(SLIP_BAD_ESCAPE, "slip_bad_escape", "a byte was corrupted on the line")                      \
    X(REPLY_SHORT, "reply_short", "the reply is shorter than its header says")                     \
    X(REPLY_MALFORMED, "reply_malformed", "the board sent a reply the protocol does not allow")    \
    X(REPLY_MISMATCH, "reply_mismatch", "the reply does not answer the pending command")           \
    X(ROM_REFUSED, "rom_refused", "the board's loader refused the command; see its status")        \
    X(UNSUPPORTED, "unsupported", "this chip's loader does not have that command")                 \
    X(NO_SYNC, "no_sync", "check power, cable and DTR/RTS wiring, or hold BOOT while resetting")   \
    X(TIMEOUT, "timeout", "the board stopped answering; check cable, power and baud rate")         \
    X(PORT_OPEN, "port_open", "check the port exists and the user may open it (group dialout)")    \
    X(PORT_BUSY, "port_busy", "another station or program holds the port; wait or use another")    \
    X(PORT_IO, "port_io", "the port failed or was unplugged")                                      \
    X(PORT_CLOSED, "port_closed", "the board was unplugged or the port closed")                    \
    X(UNKNOWN_CHIP, "unknown_chip", "this chip is not supported by espstation yet")                \
    X(WRONG_CHIP, "wrong_chip", "plug in the chip the profile names, or use another profile")      \
    X(BAD_MAC, "bad_mac", "the board's eFuse/OTP MAC could not be decoded")                        \
    X(NO_FLASH, "no_flash", "no flash chip answered; check the module")                            \
    X(FLASH_SIZE, "flash_size", "the images do not fit the board's flash; check flash.size")       \
    X(IMAGE_LOAD, "image_load", "check the image path in the profile")                             \
    X(IMAGE_HASH, "image_hash", "the image is not the one the profile pins; fix file or sha256")   \
    X(IMAGE_FORMAT, "image_format", "the firmware image is malformed")                             \
    X(IMAGE_CHIP, "image_chip", "the image was built for another chip")                            \
    X(STUB, "stub", "the flasher stub could not be loaded or did not start")                       \
    X(PROFILE, "profile", "fix the profile at the position given")                                 \
    X(FLASH_WRITE, "flash_write", "the board reported a flash write error")                        \
    X(VERIFY_MISMATCH, "verify_mismatch", "flash contents differ from the image: reflash")         \
    X(BAUD, "baud_change", "the board did not answer at the raised baud rate")                     \
    X(INTERRUPTED, "interrupted", "the station was stopped before this board finished")            \
    X(REPORT, "report", "check the reports directory is writable and the disk has space")          \
    X(DUPLICATE_MAC, "duplicate_mac",                                                              \
      "two boards have one MAC: a cloned module or one board twice; set duplicate_mac: warn "      \
      "to only flag it")                                                                           \
    X(BOOT_CHECK, "boot_check",                                                                    \
      "the firmware did not print what the profile's boot_check expects; see the boot log in "     \
      "the report")                                                                                \
    X(FLEET_DB, "fleet_db",                                                                        \
      "check the database URL, that the server is up, and the role's password; run "               \
      "'espstation db init URL' once")

enum es_code {
#define ES_ENUM(name, json, hint) ES_##name,
    ES_ERRORS(ES_ENUM)
#undef ES_ENUM
        ES_CODE_COUNT
};

/* Room for a message: three paths of PATH_MAX (4096) bytes and the sentence around them, so
 * that no message built from real paths, port names and digests is ever cut (issue 11 #14). Only
 * text from input that is itself invalid (a name longer than any path can be) could exceed it;
 * such a message ends in ES_ERR_CUT_MARK so the cut shows. */
#define ES_ERR_MSG_MAX  16384
#define ES_ERR_CUT_MARK " [...]"

struct es_err {
    enum es_code code;        /* stable; written to reports by es_code_name() */
    int rom_status;           /* the board's own status/error byte when it refused, else -1 */
    char msg[ES_ERR_MSG_MAX]; /* one sentence for a person: what, where, what to do */
};

/* Fills err (which may be NULL) with code and a printf-style message; rom_status is set to -1.
 * Returns -(int)code so a caller can fail in one line: return es_fail(err, ES_IO, "..."). */
int es_fail(struct es_err *err, enum es_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int es_vfail(struct es_err *err, enum es_code code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Prefixes err->msg with "prefix: " (printf-style), keeping the code. For adding context
 * (slot, port, file) on the way up. The whole prefix and message are kept whenever they fit
 * ES_ERR_MSG_MAX; beyond that the message's end is cut and marked. Returns -(int)err->code. */
int es_err_prefix(struct es_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to ES_OK, rom_status -1 and an empty message. */
void es_err_clear(struct es_err *err);

/* "no_sync" etc.: the stable name used in JSON. Never NULL. */
const char *es_code_name(enum es_code code);
/* The default hint for a person. Never NULL. */
const char *es_code_hint(enum es_code code);

#endif
