/* Reports of a run: the run directory reports/<run-id>/, one JSON file per board and run.json.
 * Report code takes plain data filled by the station (never a session or a libuv handle), and
 * writes every file atomically (es/atomic_file.h). The journal lives in es/journal.h. */
#ifndef ES_REPORT_H
#define ES_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "es/err.h"

#define REPORT_SCHEMA   1  /* "schema" in every file; bump when a key changes meaning */
#define REPORT_UTC_LEN  25 /* "2026-11-25T19:30:00.123Z" and its NUL */
#define REPORT_RUN_FILE "run.json"

/* "$schema" in every device report and run.json: the $id of the JSON Schema that describes the
 * file, schema/report.schema.json and schema/run.schema.json (installed in
 * share/espstation/schema). A URN, not a URL: it names the schema and its version without
 * promising a server; the number is REPORT_SCHEMA. */
#define REPORT_STR_(x)          #x
#define REPORT_STR(x)           REPORT_STR_(x)
#define REPORT_DEVICE_SCHEMA_ID "urn:espstation:schema:report:" REPORT_STR(REPORT_SCHEMA)
#define REPORT_RUN_SCHEMA_ID    "urn:espstation:schema:run:" REPORT_STR(REPORT_SCHEMA)

enum report_result { REPORT_PASS, REPORT_FAIL, REPORT_INTERRUPTED };

/* "pass", "fail", "interrupted". */
const char *report_result_name(enum report_result result);
/* The reverse; returns 0, or ES_INVALID_ARG for any other string. */
int report_result_from_string(const char *s, enum report_result *out, struct es_err *err);

enum report_loader { REPORT_LOADER_NONE, REPORT_LOADER_ROM, REPORT_LOADER_STUB };

/* "rom", "stub"; NULL for REPORT_LOADER_NONE (the board never got that far: JSON null). */
const char *report_loader_name(enum report_loader loader);

/* Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME). For the timestamps in
 * reports only; measure durations with a monotonic clock. */
int64_t report_now_ms(void);
/* Writes unix_ms as UTC ISO-8601 with milliseconds, "2026-11-25T19:30:00.123Z", into out. */
void report_format_utc(int64_t unix_ms, char out[REPORT_UTC_LEN]);

/* Creates reports_root (and its parents) if needed, then a new run directory in it named
 * <UTC time>-<4 hex digits>, e.g. 20261125T193000Z-3fa1: the suffix makes two runs started in the
 * same second differ (mkdir refuses an existing name and the next suffix is tried). Writes the
 * path "reports_root/run-id" into out_dir. Returns 0, or ES_REPORT naming the failing call. */
int report_run_dir_create(const char *reports_root, char *out_dir, size_t cap, struct es_err *err);

/* Like mkdir -p: creates each missing component of path (the outbox beside the reports uses it
 * too). Returns 0, or ES_REPORT naming the failing call, or when path is not a directory. */
int report_make_dirs(const char *path, struct es_err *err);

/* What one board needs in the reports directory (its report, its journal lines, run.json's
 * line) with room to spare, and what a run needs besides. For report_dir_preflight's need. */
#define REPORT_ROOM_PER_BOARD (64u * 1024u)
#define REPORT_ROOM_BASE      (1024u * 1024u)

/* Before any board is touched: creates reports_root (and its parents) if needed, creates,
 * writes, fsyncs and removes a small file in it, and checks that its file system has need_bytes
 * free (and some inodes). Catches a read-only, missing-and-uncreatable or full directory, a path
 * that is a file, and a tiny file size limit (the probe fails with EFBIG where SIGXFSZ is
 * ignored). Returns 0, or ES_REPORT with a message that names the directory and what to do. */
int report_dir_preflight(const char *reports_root, uint64_t need_bytes, struct es_err *err);

/* One image as flashed (or not) on one board. Strings are borrowed. */
struct report_image {
    uint32_t offset;
    const char *file; /* as the profile names it */
    uint64_t size_bytes;
    uint8_t sha256[32]; /* of the file, as pinned by the profile */
    bool md5_sent_valid;
    uint8_t md5_sent[16]; /* of the bytes sent (after header patching) */
    bool md5_read_valid;
    uint8_t md5_read[16]; /* SPI_FLASH_MD5 read back from the board */
    uint64_t written_bytes;
    bool verified; /* md5_read == md5_sent */
};

/* Time spent in one phase; a phase that appears twice is summed into one entry. */
struct report_timing {
    const char *phase; /* "open", "reset", "sync", "detect", ... */
    uint64_t ms;
};

/* The boot check after the run reset (the profile's boot_check), for "boot" in the report. */
#define REPORT_BOOT_LOG_MAX 4096 /* bytes of boot text kept: the newest, when a board says more */
struct report_boot {
    bool ran;      /* a boot check started; false: "boot": null */
    unsigned baud; /* the rate it listened at */
    /* What the board printed, non-printable bytes (and \r) left out; the newest
     * REPORT_BOOT_LOG_MAX bytes, preceded by "[...]" when older text was dropped. */
    const char *log;
    bool passed;
    const char *const *matched; /* the patterns seen, in the order seen (the reply's last) */
    size_t n_matched;
    uint64_t ms; /* from the reset's release to the verdict */
};

/* An earlier passing board with this board's MAC and profile, from another run or station, as
 * the fleet database answered while the board was flashed ("fleet_duplicate" in the report).
 * Strings are borrowed; at is UTC ISO-8601. */
struct report_fleet_dup {
    const char *station, *run_id, *slot, *at;
};

/* Everything known about one board at the end of its session. The writer borrows every pointer.
 * Every key is always present, so consumers need no existence checks: what the board never got
 * to (NULL strings, false valid flags, 0 for flash size, baud and times) is written as JSON null.
 */
struct report_device {
    enum report_result result;
    const char *error_phase; /* step that failed; NULL when result is pass (then "error": null) */
    struct es_err error;     /* code, ROM status byte (-1: none) and message */

    int slot;
    const char *port; /* "/dev/ttyUSB3", "socket://127.0.0.1:5555" */

    bool usb_valid; /* "usb": null when false */
    uint16_t usb_vid, usb_pid;
    const char *usb_serial, *usb_location;

    const char *chip;  /* "ESP32"; NULL: never detected */
    int chip_revision; /* -1: unknown */

    bool mac_valid;
    uint8_t mac[6];
    /* Other slots of this run whose board has the same MAC ("duplicate_mac_slots": []). */
    const int *duplicate_slots;
    size_t n_duplicate_slots;
    /* The fleet database knew this MAC already ("fleet_duplicate": null when NULL). */
    const struct report_fleet_dup *fleet_duplicate;

    bool flash_id_valid;
    uint32_t flash_id;         /* RDID as read: manufacturer in bits 7-0 (protocol doc §7.5) */
    uint64_t flash_size_bytes; /* 0: unknown */

    const struct report_image *images;
    size_t n_images;

    struct report_boot boot;

    const struct report_timing *timings; /* in the order the phases ran */
    size_t n_timings;

    uint64_t tx_bytes, rx_bytes; /* on the wire, SLIP framing included */
    uint64_t write_tx_bytes;     /* of tx_bytes, those sent in the write phase (line efficiency) */
    unsigned connect_retries, block_retries;
    unsigned baud_fallbacks; /* reconnects to a lower rate after the raised one failed */
    enum report_loader loader;
    unsigned baud; /* final baud rate; 0: unknown */

    const char *tool_version; /* NULL: this build's ESPSTATION_VERSION */
    const char *profile_name; /* NULL: no profile matched this board */
    bool profile_sha256_valid;
    uint8_t profile_sha256[32];

    int64_t start_ms, end_ms; /* report_now_ms() values; 0: unknown */
};

/* Writes run_dir/<name>.json for d and puts <name>.json (the file name only) into written_name.
 * The name is the MAC as 24-0a-c4-12-34-56 (lowercase, dashes: valid on Windows shares), or
 * port-<port with every run of characters other than [A-Za-z0-9._] turned into one '-'> when the
 * MAC was never read (port-dev-ttyUSB3). If that name is already taken in run_dir (the same board
 * flashed twice in one run) -2, -3, ... is appended. Assumes it is the only writer of run_dir.
 * Pretty JSON, keys in a fixed order, lowercase hex. Returns 0, ES_NOMEM or ES_REPORT. */
int report_write_device(const char *run_dir, const struct report_device *d, char *written_name,
                        size_t cap, struct es_err *err);

/* The device report as report_write_device writes it, as a new JSON object (the caller owns it;
 * the publisher puts it in the database). NULL out of memory. */
json_t *report_device_to_json(const struct report_device *d);
/* JSON values as reports write them (new references, NULL only out of memory): a string, or null
 * for NULL, with text that is not valid UTF-8 (a port name) kept with each non-ASCII byte shown
 * as '?'; a UTC timestamp (report_format_utc), or null for 0 (unknown). */
json_t *report_json_text(const char *s);
json_t *report_json_utc(int64_t unix_ms);

/* Writes d over run_dir/name, a report written before (report_write_device's name): the station
 * adds what it learnt after the board finished (a duplicate MAC). Atomic, like the first write.
 * Returns 0, ES_NOMEM or ES_REPORT. */
int report_rewrite_device(const char *run_dir, const char *name, const struct report_device *d,
                          struct es_err *err);

/* Writes into out the file name report_write_device would try first ("24-0a-c4-12-34-56.json" or
 * "port-dev-ttyUSB3.json"). Returns 0, or ES_INVALID_ARG when cap is too small. */
int report_device_file_name(const struct report_device *d, char *out, size_t cap,
                            struct es_err *err);

/* One board's line in run.json. */
struct report_run_slot {
    int slot;
    const char *port;
    bool mac_valid;
    uint8_t mac[6];
    enum report_result result;
    enum es_code error_code;  /* ES_OK when passed ("error": null) */
    const char *profile_name; /* NULL: no profile matched */
    const char *report_file;  /* the name report_write_device returned; NULL: none written */
    bool duplicate_mac;       /* another slot of the run had this MAC */
};

/* A profile used in the run (a mixed bench uses several). */
struct report_profile {
    const char *name;
    uint8_t sha256[32]; /* of the profile file */
};

/* A run's counts when run.json lists only its latest boards (a production line). */
struct report_run_counts {
    unsigned long total, passed, failed, interrupted;
};

struct report_run {
    const struct report_profile *profiles;
    size_t n_profiles;
    const char *station;       /* NULL: gethostname() */
    const char *operator_name; /* NULL: $USER, else $LOGNAME, else null */
    const char *tool_version;  /* NULL: this build's ESPSTATION_VERSION */
    int64_t start_ms, end_ms;  /* 0: unknown */
    const struct report_run_slot *slots;
    size_t n_slots;
    /* NULL: the counts are computed from slots, so they always agree with the list. Else the
     * run's counts, of which slots are the latest boards; run.json then says how many earlier
     * boards it leaves out ("slots_omitted": their reports and the journal keep them). */
    const struct report_run_counts *counts;
};

/* Writes run_dir/run.json. Returns 0, ES_NOMEM or ES_REPORT. */
int report_write_run(const char *run_dir, const struct report_run *r, struct es_err *err);

#endif
