/* espsim's command line, bench files and board SPECs (see bench.h). Every error names the option
 * or the file:line, what was seen and what is accepted, so a test author can fix it at once. */
#include "bench.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage_text[] =
    "usage: espsim [--boards N --chip esp8266|esp32] [--board SPEC]... [--bench FILE]\n"
    "              [--dir DIR] [--state DIR] [--tcp BASE] [--time-scale X] [--seed N]\n"
    "              [--stub-dir DIR] [--exit-on-eof] [--commands] [--auto-swap MIN:MAX] [-v]\n"
    "\n"
    "Simulates a bench of ESP8266/ESP32 boards in download mode, each behind a pseudo-terminal\n"
    "(DIR/ttySIM<i>), a reset socket (DIR/ttySIM<i>.ctl, lines 'DTR=1 RTS=0') and optionally a\n"
    "TCP port. Prints one JSON line per board, then {\"ready\":true,...}, and runs until\n"
    "SIGINT/SIGTERM (or stdin EOF with --exit-on-eof).\n"
    "\n"
    "  --boards N        N boards of --chip (default esp32), placed before the --board ones\n"
    "  --board SPEC      one board: "
    "chip[,flash=4MB][,mac=aa:bb:cc:dd:ee:ff][,autoreset=no][,fault=NAME[:ARG]]...\n"
    "  --bench FILE      one SPEC per line, '#' comments\n"
    "  --dir DIR         ports and sockets go here (default: a fresh temporary dir, removed on "
    "exit)\n"
    "  --state DIR       flash files DIR/slot<i>.bin, kept across runs (default: --dir)\n"
    "  --tcp BASE        also listen on 127.0.0.1:BASE+i (0: a free port per board)\n"
    "  --time-scale X    multiply every simulated duration by X (1 real time, 0 no delays)\n"
    "  --seed N          seed for MACs and fault randomness (default 1)\n"
    "  --stub-dir DIR    esptool-js stub_flasher JSON files\n"
    "  --exit-on-eof     exit when stdin reaches EOF (commands are read from stdin too)\n"
    "  --commands        read control commands from stdin (they also come on DIR/espsim.sock):\n"
    "                    unplug N | plug N | swap N [mac=..] [flash=blank|keep] "
    "[autoreset=yes|no]\n"
    "                    [fault=..] | boot N press|release | en N press|release | status [N]\n"
    "  --auto-swap MIN:MAX  give a slot whose board runs its app a new blank board after\n"
    "                    MIN..MAX s of board time (alternately unplug+plug and a jig swap)\n"
    "  -v                log frames and events to stderr\n"
    "\n"
    "faults: no-download | sync-after:K | unplug-at:PCT | corrupt:RATE | bad-flash:ADDR |\n"
    "        bad-flash-report:ADDR | slow:OP:MS | mute:OP | wrong-chip | baud-fail |\n"
    "        lose-end:K | boot-loop | no-banner | wrong-app\n";

const char *bench_usage(void)
{
    return usage_text;
}

const char *bench_chip_name(enum sim_chip chip)
{
    switch (chip) {
    case SIM_ESP8266: return "esp8266";
    case SIM_ESP32: return "esp32";
    }
    return "unknown";
}

int bench_chip_from_string(const char *s)
{
    if (strcasecmp(s, "esp8266") == 0)
        return SIM_ESP8266;
    if (strcasecmp(s, "esp32") == 0)
        return SIM_ESP32;
    return -1;
}

/* ROM and stub commands (protocol doc §3.1), for slow:OP and mute:OP. */
static const struct {
    const char *name;
    int op;
} op_names[] = {
    {"flash_begin", 0x02},
    {"flash_data", 0x03},
    {"flash_end", 0x04},
    {"mem_begin", 0x05},
    {"mem_end", 0x06},
    {"mem_data", 0x07},
    {"sync", 0x08},
    {"write_reg", 0x09},
    {"read_reg", 0x0A},
    {"spi_set_params", 0x0B},
    {"spi_attach", 0x0D},
    {"read_flash_slow", 0x0E},
    {"change_baudrate", 0x0F},
    {"flash_defl_begin", 0x10},
    {"flash_defl_data", 0x11},
    {"flash_defl_end", 0x12},
    {"spi_flash_md5", 0x13},
    {"get_security_info", 0x14},
    {"erase_flash", 0xD0},
    {"erase_region", 0xD1},
    {"read_flash", 0xD2},
    {"run_user_code", 0xD3},
};

/* Strict unsigned parse: decimal or 0x hex, the whole string, at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || v != v)
        return -1;
    *out = v;
    return 0;
}

/* "MIN:MAX" with 0 < MIN <= MAX <= one day. */
static int parse_auto_swap(const char *s, double *min, double *max)
{
    char buf[64], *colon;

    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    colon = strchr(buf, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    if (parse_double(buf, min) < 0 || parse_double(colon + 1, max) < 0)
        return -1;
    return *min > 0 && *min <= *max && *max <= 86400 ? 0 : -1;
}

int bench_op_from_string(const char *s)
{
    uint64_t v;
    char norm[32];
    size_t i, n = strlen(s);

    if (parse_u64(s, 0xFF, &v) == 0)
        return (int)v;
    if (n >= sizeof(norm))
        return -1;
    for (i = 0; i <= n; i++)
        norm[i] = s[i] == '-' ? '_' : (char)tolower((unsigned char)s[i]);
    for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (strcmp(norm, op_names[i].name) == 0)
            return op_names[i].op;
    }
    return -1;
}

/* "4MB", "4M", "4MiB", "512KB", "512k", or a byte count. Only the JEDEC sizes of §7.6 that the
 * ROMs address (256 KiB to 16 MiB) are accepted. */
static int parse_flash_size(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    uint64_t bytes;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0)
        return -1;
    if (strcasecmp(end, "MB") == 0 || strcasecmp(end, "M") == 0 || strcasecmp(end, "MiB") == 0)
        bytes = (uint64_t)v << 20;
    else if (strcasecmp(end, "KB") == 0 || strcasecmp(end, "K") == 0 || strcasecmp(end, "KiB") == 0)
        bytes = (uint64_t)v << 10;
    else if (*end == '\0')
        bytes = v;
    else
        return -1;
    if (bytes < (256u << 10) || bytes > (16u << 20) || (bytes & (bytes - 1)) != 0)
        return -1;
    *out = (uint32_t)bytes;
    return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    int i;

    for (i = 0; i < 6; i++) {
        if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
            return -1;
        mac[i] = (uint8_t)strtoul((char[3]){s[0], s[1], '\0'}, NULL, 16);
        s += 2;
        if (i < 5) {
            if (*s != ':' && *s != '-')
                return -1;
            s++;
        }
    }
    return *s == '\0' ? 0 : -1;
}

/* One fault=NAME[:ARG] item; arg is NULL when there is no ':'. */
static int parse_fault(struct sim_faults *f, char *name, const char *spec, struct es_err *err)
{
    char *arg = strchr(name, ':');
    uint64_t v;
    double d;

    if (arg != NULL)
        *arg++ = '\0';
    if (strcmp(name, "no-download") == 0 && arg == NULL) {
        f->no_download = 1;
    } else if (strcmp(name, "wrong-chip") == 0 && arg == NULL) {
        f->wrong_chip = 1;
    } else if (strcmp(name, "baud-fail") == 0 && arg == NULL) {
        f->baud_fail = 1;
    } else if (strcmp(name, "boot-loop") == 0 && arg == NULL) {
        f->boot_loop = 1;
    } else if (strcmp(name, "no-banner") == 0 && arg == NULL) {
        f->no_banner = 1;
    } else if (strcmp(name, "wrong-app") == 0 && arg == NULL) {
        f->wrong_app = 1;
    } else if (strcmp(name, "lose-end") == 0) {
        if (parse_u64(arg, 1000000, &v) < 0 || v == 0)
            return es_fail(err, ES_USAGE,
                           "board '%s': fault lose-end needs a data block number 1..1000000 "
                           "(lose-end:3), got '%s'",
                           spec, arg ? arg : "");
        f->lose_end_block = (int)v;
    } else if (strcmp(name, "sync-after") == 0) {
        if (parse_u64(arg, 1000, &v) < 0)
            return es_fail(err, ES_USAGE,
                           "board '%s': fault sync-after needs a count 0..1000 (sync-after:3), "
                           "got '%s'",
                           spec, arg ? arg : "");
        f->sync_after = (int)v;
    } else if (strcmp(name, "unplug-at") == 0) {
        if (parse_u64(arg, 100, &v) < 0 || v == 0)
            return es_fail(err, ES_USAGE,
                           "board '%s': fault unplug-at needs a percentage 1..100 (unplug-at:40), "
                           "got '%s'",
                           spec, arg ? arg : "");
        f->unplug_at_percent = (int)v;
    } else if (strcmp(name, "corrupt") == 0) {
        if (parse_double(arg, &d) < 0 || !(d > 0.0 && d <= 1.0))
            return es_fail(err, ES_USAGE,
                           "board '%s': fault corrupt needs a per-byte probability in (0, 1] "
                           "(corrupt:0.001), got '%s'",
                           spec, arg ? arg : "");
        f->corrupt_rate = d;
    } else if (strcmp(name, "bad-flash") == 0 || strcmp(name, "bad-flash-report") == 0) {
        if (parse_u64(arg, 0xFFFFFF, &v) < 0)
            return es_fail(err, ES_USAGE,
                           "board '%s': fault %s needs a flash address below 16 MiB "
                           "(%s:0x1000), got '%s'",
                           spec, name, name, arg ? arg : "");
        f->bad_flash = 1;
        f->bad_flash_addr = (uint32_t)v;
        f->bad_flash_reports = strcmp(name, "bad-flash-report") == 0;
    } else if (strcmp(name, "slow") == 0 || strcmp(name, "mute") == 0) {
        int mute = strcmp(name, "mute") == 0;
        char *ms = arg != NULL ? strchr(arg, ':') : NULL;
        int op;

        if (ms != NULL)
            *ms++ = '\0';
        op = arg != NULL ? bench_op_from_string(arg) : -1;
        if (op < 0)
            return es_fail(
                err, ES_USAGE, "board '%s': fault %s needs a command name or number (%s), got '%s'",
                spec, name, mute ? "mute:sync" : "slow:flash_begin:2000", arg ? arg : "");
        if (f->slow_op != 0)
            return es_fail(err, ES_USAGE,
                           "board '%s': only one slow or mute fault per board is supported", spec);
        if (mute) {
            if (ms != NULL)
                return es_fail(err, ES_USAGE,
                               "board '%s': fault mute takes only a command (mute:%s)", spec, arg);
            f->mute = 1;
        } else {
            if (parse_u64(ms, 3600000, &v) < 0 || v == 0)
                return es_fail(err, ES_USAGE,
                               "board '%s': fault slow needs a delay in ms 1..3600000 after the "
                               "command (slow:%s:2000), got '%s'",
                               spec, arg, ms ? ms : "");
            f->slow_ms = (uint32_t)v;
        }
        f->slow_op = op;
    } else {
        return es_fail(
            err, ES_USAGE,
            "board '%s': unknown fault '%s%s%s'; accepted: no-download, sync-after:K, "
            "unplug-at:PCT, corrupt:RATE, bad-flash:ADDR, bad-flash-report:ADDR, "
            "slow:OP:MS, mute:OP, wrong-chip, baud-fail, lose-end:K, boot-loop, no-banner, "
            "wrong-app",
            spec, name, arg ? ":" : "", arg ? arg : "");
    }
    return 0;
}

int bench_spec_parse(struct bench_board *b, const char *spec, struct es_err *err)
{
    char buf[512];
    char *item, *save = NULL;
    int first = 1, chip;

    memset(b, 0, sizeof(*b));
    b->flash_size = 4u << 20;
    if (strlen(spec) >= sizeof(buf))
        return es_fail(err, ES_USAGE, "board spec '%.40s...' is longer than %zu characters", spec,
                       sizeof(buf) - 1);
    strcpy(buf, spec);
    for (item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *val;

        while (isspace((unsigned char)*item))
            item++;
        val = item + strlen(item);
        while (val > item && isspace((unsigned char)val[-1]))
            *--val = '\0';
        if (first) {
            chip = bench_chip_from_string(item);
            if (chip < 0)
                return es_fail(err, ES_USAGE,
                               "board '%s': chip '%s' is not one of esp8266, esp32 (a spec starts "
                               "with the chip, e.g. esp32,flash=4MB)",
                               spec, item);
            b->chip = (enum sim_chip)chip;
            first = 0;
            continue;
        }
        val = strchr(item, '=');
        if (val == NULL)
            return es_fail(err, ES_USAGE,
                           "board '%s': '%s' is not KEY=VALUE; keys: flash, mac, fault, autoreset",
                           spec, item);
        *val++ = '\0';
        if (strcmp(item, "flash") == 0) {
            if (parse_flash_size(val, &b->flash_size) < 0)
                return es_fail(err, ES_USAGE,
                               "board '%s': flash='%s' is not one of 256KB, 512KB, 1MB, 2MB, 4MB, "
                               "8MB, 16MB",
                               spec, val);
        } else if (strcmp(item, "mac") == 0) {
            if (parse_mac(val, b->mac) < 0)
                return es_fail(err, ES_USAGE,
                               "board '%s': mac='%s' is not six hex bytes (aa:bb:cc:dd:ee:ff)",
                               spec, val);
            b->mac_given = 1;
        } else if (strcmp(item, "fault") == 0) {
            if (parse_fault(&b->faults, val, spec, err) < 0)
                return -ES_USAGE;
        } else if (strcmp(item, "autoreset") == 0) {
            if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0)
                return es_fail(err, ES_USAGE, "board '%s': autoreset='%s' is not yes or no", spec,
                               val);
            b->no_autoreset = strcmp(val, "no") == 0;
        } else {
            return es_fail(err, ES_USAGE,
                           "board '%s': unknown key '%s'; keys: flash, mac, fault, autoreset", spec,
                           item);
        }
    }
    if (first)
        return es_fail(err, ES_USAGE, "empty board spec; write e.g. esp32 or esp8266,flash=1MB");
    return 0;
}

static int add_board(struct bench_options *o, const char *spec, const char *where,
                     struct es_err *err)
{
    if (o->n_boards >= BENCH_MAX_BOARDS)
        return es_fail(err, ES_USAGE, "%s: more than %d boards", where, BENCH_MAX_BOARDS);
    if (bench_spec_parse(&o->boards[o->n_boards], spec, err) < 0)
        return es_err_prefix(err, "%s", where);
    o->n_boards++;
    return 0;
}

int bench_file_load(struct bench_options *o, const char *path, struct es_err *err)
{
    FILE *f = fopen(path, "r");
    char line[1024], where[300];
    int lineno = 0, rc = 0;

    if (f == NULL)
        return es_fail(err, ES_USAGE, "--bench %s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *hash = strchr(line, '#'), *end;

        lineno++;
        if (hash != NULL)
            *hash = '\0';
        while (isspace((unsigned char)*p))
            p++;
        end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*p == '\0')
            continue;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        rc = add_board(o, p, where, err);
        if (rc < 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = es_fail(err, ES_USAGE, "--bench %s: read error", path);
    fclose(f);
    return rc;
}

/* splitmix64: a small, well-mixed, deterministic generator for MACs and seeds. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Espressif OUIs. ESP8266: the two the OTP "MAC1 byte 2" selector encodes (§7.1), so the model can
 * store them with MAC3 = 0 as real chips do. ESP32: OUIs seen on ESP32 modules. */
static const uint8_t oui_esp8266[][3] = {{0x18, 0xFE, 0x34}, {0xAC, 0xD0, 0x74}};
static const uint8_t oui_esp32[][3] = {
    {0x24, 0x0A, 0xC4}, {0x30, 0xAE, 0xA4}, {0x24, 0x6F, 0x28}, {0x3C, 0x71, 0xBF}};

/* JEDEC capacity byte for a size (§7.6): log2(size). */
static uint32_t winbond_id(uint32_t size)
{
    uint32_t cap = 0;

    while ((1u << cap) < size)
        cap++;
    return 0xEFu | 0x40u << 8 | cap << 16;
}

/* The board's MAC, flash id and seed; `index` numbers the boards of the run (the bench's slots
 * first, then the boards swapped in), so generated MACs never repeat within a run. */
static void finish_board(const struct bench_options *o, struct bench_board *b, unsigned index,
                         int slot)
{
    /* The low 24 bits are a seed-dependent base plus the index, so they differ for every board. */
    uint32_t base = (uint32_t)(mix64(o->seed) & 0xFFFFFF);
    uint64_t h = mix64(o->seed ^ ((uint64_t)(index + 1) << 32));
    uint32_t low = (base + index) & 0xFFFFFF;

    (void)slot;
    b->flash_id = winbond_id(b->flash_size);
    b->seed = h;
    if (b->mac_given)
        return;
    if (b->chip == SIM_ESP8266)
        memcpy(b->mac, oui_esp8266[h % 2], 3);
    else
        memcpy(b->mac, oui_esp32[h % 4], 3);
    b->mac[3] = (uint8_t)(low >> 16);
    b->mac[4] = (uint8_t)(low >> 8);
    b->mac[5] = (uint8_t)low;
}

void bench_finish(struct bench_options *o)
{
    for (int i = 0; i < o->n_boards; i++)
        finish_board(o, &o->boards[i], (unsigned)i, i);
}

void bench_board_finish(const struct bench_options *o, struct bench_board *b, int slot,
                        unsigned serial)
{
    finish_board(o, b, (unsigned)o->n_boards + serial - 1, slot);
}

/* The value of option argv[*i] ("--opt VALUE" or "--opt=VALUE"); NULL if missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *eq)
{
    if (eq != NULL)
        return eq + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

int bench_options_parse(struct bench_options *o, int argc, char **argv, struct es_err *err)
{
    /* --board/--bench keep their order; --boards N of --chip come first (the chip may be given
     * after --boards), so remember where they go. */
    uint64_t n_plain = 0, v;
    int chip = SIM_ESP32, i, k;

    memset(o, 0, sizeof(*o));
    o->tcp_base = -1;
    o->time_scale = 1.0;
    o->seed = 1;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *val;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        char name[32];

        if (len >= sizeof(name))
            return es_fail(err, ES_USAGE, "unknown option '%s'; run espsim --help", arg);
        memcpy(name, arg, len);
        name[len] = '\0';

        if (strcmp(name, "-v") == 0 || strcmp(name, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(name, "--version") == 0) {
            o->version = 1;
            continue;
        }
        if (strcmp(name, "--exit-on-eof") == 0) {
            o->exit_on_eof = 1;
            continue;
        }
        if (strcmp(name, "--commands") == 0) {
            o->commands = 1;
            continue;
        }
        if (strcmp(name, "--boards") != 0 && strcmp(name, "--chip") != 0 &&
            strcmp(name, "--board") != 0 && strcmp(name, "--bench") != 0 &&
            strcmp(name, "--dir") != 0 && strcmp(name, "--state") != 0 &&
            strcmp(name, "--tcp") != 0 && strcmp(name, "--time-scale") != 0 &&
            strcmp(name, "--seed") != 0 && strcmp(name, "--stub-dir") != 0 &&
            strcmp(name, "--auto-swap") != 0)
            return es_fail(err, ES_USAGE, "unknown option '%s'; run espsim --help", arg);
        val = opt_value(argc, argv, &i, eq);
        if (val == NULL)
            return es_fail(err, ES_USAGE, "option %s needs a value; run espsim --help", name);

        if (strcmp(name, "--boards") == 0) {
            if (parse_u64(val, BENCH_MAX_BOARDS, &v) < 0 || v == 0)
                return es_fail(err, ES_USAGE, "--boards '%s': expected a count 1..%d", val,
                               BENCH_MAX_BOARDS);
            n_plain = v;
        } else if (strcmp(name, "--chip") == 0) {
            chip = bench_chip_from_string(val);
            if (chip < 0)
                return es_fail(err, ES_USAGE, "--chip '%s': expected esp8266 or esp32", val);
        } else if (strcmp(name, "--board") == 0) {
            if (add_board(o, val, "--board", err) < 0)
                return -ES_USAGE;
        } else if (strcmp(name, "--bench") == 0) {
            if (bench_file_load(o, val, err) < 0)
                return -ES_USAGE;
        } else if (strcmp(name, "--dir") == 0) {
            o->dir = val;
        } else if (strcmp(name, "--state") == 0) {
            o->state_dir = val;
        } else if (strcmp(name, "--tcp") == 0) {
            if (parse_u64(val, 65535, &v) < 0)
                return es_fail(err, ES_USAGE,
                               "--tcp '%s': expected a base port 1..65535 (or 0 for free ports)",
                               val);
            o->tcp_base = (int)v;
        } else if (strcmp(name, "--time-scale") == 0) {
            if (parse_double(val, &o->time_scale) < 0 || o->time_scale < 0 || o->time_scale > 1000)
                return es_fail(err, ES_USAGE,
                               "--time-scale '%s': expected a number from 0 to 1000 (1 = real "
                               "time, 0.05 = 20x faster, 0 = no delays)",
                               val);
        } else if (strcmp(name, "--seed") == 0) {
            if (parse_u64(val, UINT64_MAX, &o->seed) < 0)
                return es_fail(err, ES_USAGE, "--seed '%s': expected a non-negative integer", val);
        } else if (strcmp(name, "--stub-dir") == 0) {
            o->stub_dir = val;
        } else if (strcmp(name, "--auto-swap") == 0) {
            if (parse_auto_swap(val, &o->auto_swap_min, &o->auto_swap_max) < 0)
                return es_fail(err, ES_USAGE,
                               "--auto-swap '%s': expected MIN:MAX seconds of board time, "
                               "0 < MIN <= MAX (e.g. 5:20)",
                               val);
        }
    }
    if (o->help || o->version)
        return 0;
    if (n_plain + (uint64_t)o->n_boards > BENCH_MAX_BOARDS)
        return es_fail(err, ES_USAGE, "%llu boards requested; at most %d",
                       (unsigned long long)(n_plain + (uint64_t)o->n_boards), BENCH_MAX_BOARDS);
    if (n_plain + (uint64_t)o->n_boards == 0)
        return es_fail(err, ES_USAGE,
                       "no boards: give --boards N [--chip esp8266|esp32], --board SPEC or "
                       "--bench FILE");
    if (o->tcp_base > 0 && o->tcp_base + (int)n_plain + o->n_boards - 1 > 65535)
        return es_fail(err, ES_USAGE, "--tcp %d: the ports for %d boards run past 65535",
                       o->tcp_base, (int)n_plain + o->n_boards);
    if (n_plain > 0) {
        memmove(&o->boards[n_plain], o->boards, sizeof(o->boards[0]) * (size_t)o->n_boards);
        for (k = 0; k < (int)n_plain; k++) {
            memset(&o->boards[k], 0, sizeof(o->boards[k]));
            o->boards[k].chip = (enum sim_chip)chip;
            o->boards[k].flash_size = 4u << 20;
        }
        o->n_boards += (int)n_plain;
    }
    bench_finish(o);
    return 0;
}
