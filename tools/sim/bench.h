/* espsim's command line and bench description: argv, --bench files and per-board SPEC strings
 * (chip[,flash=4MB][,mac=..][,fault=NAME[:ARG]]...) into plain structs. No I/O besides reading
 * the bench file; nothing here knows about libuv or the board model's internals. */
#ifndef SIM_BENCH_H
#define SIM_BENCH_H

#include <stdint.h>

#include "board.h"
#include "es/err.h"

#define BENCH_MAX_BOARDS 256

/* One board as the user described it; bench_finish() fills in what was left to defaults. */
struct bench_board {
    enum sim_chip chip;
    uint32_t flash_size; /* bytes; a power of two from 256 KiB to 16 MiB */
    uint32_t flash_id;   /* JEDEC id (manufacturer | type << 8 | capacity << 16) */
    int mac_given;       /* mac= was in the spec */
    uint8_t mac[6];
    struct sim_faults faults;
    int no_autoreset; /* autoreset=no: no DTR/RTS circuit, only the EN and BOOT buttons */
    uint64_t seed;    /* for the board's fault RNG, from --seed and the slot */
};

struct bench_options {
    struct bench_board boards[BENCH_MAX_BOARDS];
    int n_boards;
    const char *dir;       /* --dir, or NULL for a fresh mkdtemp directory */
    const char *state_dir; /* --state, or NULL for dir */
    int tcp_base;          /* --tcp BASE; -1 when absent; 0 = a free port per board */
    double time_scale;     /* --time-scale; 0 = no delays */
    uint64_t seed;         /* --seed */
    const char *stub_dir;  /* --stub-dir, or NULL for ESPSTATION_STUB_DIR */
    int verbose;           /* -v */
    int exit_on_eof;       /* --exit-on-eof */
    int commands;          /* --commands: read control commands from stdin (io_cmd.c) */
    double auto_swap_min;  /* --auto-swap MIN:MAX, seconds of board time; max 0 = off */
    double auto_swap_max;
    int help;    /* --help was given: print bench_usage() and exit 0 */
    int version; /* --version */
};

/* Parses argv into o (which it clears first) and assigns MACs, flash ids and seeds. Returns 0, or
 * -ES_USAGE with a message naming the option and what it accepts. */
int bench_options_parse(struct bench_options *o, int argc, char **argv, struct es_err *err);

/* Parses one SPEC into b (cleared first; defaults: flash 4 MiB, no faults, mac not given). */
int bench_spec_parse(struct bench_board *b, const char *spec, struct es_err *err);

/* Appends the boards of a bench file (one SPEC per line, '#' comments, blank lines ignored). */
int bench_file_load(struct bench_options *o, const char *path, struct es_err *err);

/* Fills every board's flash id, MAC (when not given) and seed, deterministically from o->seed and
 * the slot; generated MACs are unique per slot and use Espressif OUIs. */
void bench_finish(struct bench_options *o);

/* Gives b (a board swapped in on slot `slot`, the `serial`-th board of the run counting from 1
 * after the first bench) a MAC unless one was given, its flash id and a seed, deterministically
 * from o->seed; never the MAC of another board of the run. */
void bench_board_finish(const struct bench_options *o, struct bench_board *b, int slot,
                        unsigned serial);

/* "esp8266" / "esp32"; and back (-1 if unknown). */
const char *bench_chip_name(enum sim_chip chip);
int bench_chip_from_string(const char *s);

/* A ROM command by name ("flash_data", "FLASH-DATA") or number ("0x03", "3"); -1 if unknown. */
int bench_op_from_string(const char *s);

/* The --help text. */
const char *bench_usage(void);

#endif
