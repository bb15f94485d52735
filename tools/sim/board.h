/* One simulated ESP board: the ROM loader and flasher-stub model behind a serial line. The model
 * is pure logic: it never touches a file descriptor or a clock of its own. The shell (tools/sim
 * main/io) feeds it bytes and time, and carries out what it asks through struct sim_board_ops. */
#ifndef SIM_BOARD_H
#define SIM_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "es/err.h"

struct sim_board;
struct sim_stub_images;

/* Simulated time is in nanoseconds since espsim started, already divided by --time-scale by the
 * shell: the model always reasons in board time (real durations of a real board). */
struct sim_board_ops {
    /* Put bytes on the line towards the host. They start leaving the board no earlier than
     * not_before_ns and are paced by the shell at `baud` (10 bits per byte). The model never
     * writes to a file descriptor itself. */
    void (*send)(void *ctx, const uint8_t *bytes, size_t n, uint64_t not_before_ns, uint32_t baud);
    /* Ask to be called back with sim_board_on_timer() at (or shortly after) at_ns. One pending
     * timer per board; a new request replaces the old one. */
    void (*set_timer)(void *ctx, uint64_t at_ns);
    /* Fault "unplugged": the shell closes this board's port (pty master / TCP) for good. */
    void (*unplug)(void *ctx);
    /* Log line for stderr with -v (may be NULL). */
    void (*log)(void *ctx, const char *line);
};

enum sim_chip { SIM_ESP8266, SIM_ESP32 };

/* Faults of one board (protocol doc §13.8); all off when zeroed. */
struct sim_faults {
    int no_download; /* always boots from flash; never answers SYNC */
    int sync_after;  /* ignore the first K SYNC requests after each reset */
    /* >0: unplug when this % of the current FLASH_BEGIN's data was received */
    int unplug_at_percent;
    double corrupt_rate; /* probability per byte of a bit flip, both directions */
    int bad_flash;       /* flash stores wrong data at bad_flash_addr (bit flip) */
    uint32_t bad_flash_addr;
    /* with bad_flash: the ROM read-back check reports 01 08 instead of silently storing */
    int bad_flash_reports;
    int slow_op; /* op whose reply is delayed by slow_ms (or never sent if mute) */
    uint32_t slow_ms;
    int mute;       /* slow_op never replies */
    int wrong_chip; /* answers the magic register with a different chip's value */
    /* CHANGE_BAUDRATE replies OK, then the board garbles everything at the new rate */
    int baud_fail;
    /* >0: the closing 0xC0 of the stub's K-th data block (counted from 1) is lost on the line,
     * once: the stub stays inside that frame (§10.2) */
    int lose_end_block;
    /* The application after a flash boot (app_model.c): */
    int boot_loop; /* crashes right after starting and reboots, about once a second, forever */
    int no_banner; /* runs but prints nothing and answers nothing */
    int wrong_app; /* another firmware: prints a different banner ("espsim wrong app v0.0") */
};

struct sim_board_cfg {
    int slot;
    enum sim_chip chip;
    uint8_t mac[6];
    uint32_t flash_id; /* JEDEC id as in §7.5, e.g. 0x1640EF (4 MiB) */
    uint8_t *flash;    /* flash_size bytes, owned by the shell (mmap of the state file) */
    uint32_t flash_size;
    struct sim_faults faults;
    const struct sim_stub_images *stubs; /* parsed stub JSONs to check uploads against, or NULL */
    uint64_t seed;                       /* for the fault RNG */
    /* Board option autoreset=no: no DTR/RTS transistors, DTR/RTS change nothing; only the EN and
     * BOOT buttons (sim_board_set_buttons) and power-on reset the chip. */
    int no_autoreset;
};

/* Allocates a board. cfg is copied; cfg->flash and cfg->stubs are borrowed and must outlive the
 * board. ops is copied; ctx is passed back to every op. Returns NULL and fills err on failure
 * (ES_NOMEM, or ES_INVALID_ARG for an impossible configuration). Nothing is sent until
 * sim_board_start(). */
struct sim_board *sim_board_new(const struct sim_board_cfg *cfg, const struct sim_board_ops *ops,
                                void *ctx, struct es_err *err);
/* Frees the board; NULL does nothing. Never calls an op. */
void sim_board_free(struct sim_board *b);
/* Power on at espsim's start: a board with auto-reset starts in download mode (as if BOOT were
 * held, so a bench is ready at once); one with autoreset=no samples its BOOT button like
 * sim_board_power_on(). Prints the boot text. */
void sim_board_start(struct sim_board *b, uint64_t now_ns);
/* Power on after a plug or a swap: the chip samples GPIO0 (the BOOT button, or DTR/RTS through
 * the auto-reset circuit) and boots from flash unless it is held low. */
void sim_board_power_on(struct sim_board *b, uint64_t now_ns);
/* Power off (unplugged): output in flight is dropped, the board is silent until power-on. */
void sim_board_power_off(struct sim_board *b, uint64_t now_ns);
/* The buttons: BOOT pulls GPIO0 low while pressed; EN pressed holds the chip in reset, and its
 * release boots it (into download mode if BOOT is held then). */
void sim_board_set_buttons(struct sim_board *b, int boot_pressed, int en_pressed, uint64_t now_ns);
/* The host changed DTR/RTS (from the control channel). Applies §5.1's two-transistor table and
 * §13.2. */
void sim_board_set_lines(struct sim_board *b, int dtr, int rts, uint64_t now_ns);
/* Bytes from the host that have fully arrived at the board by now_ns (the shell paces input too).
 * host_baud is the rate the host's port is set to (pty: tcgetattr on the master; TCP: 0 =
 * "matches"). Any bytes are accepted; garbage never crashes the model. */
void sim_board_rx(struct sim_board *b, const uint8_t *bytes, size_t n, uint32_t host_baud,
                  uint64_t now_ns);
void sim_board_on_timer(struct sim_board *b, uint64_t now_ns);
/* What the board's UART runs at now (115200 until CHANGE_BAUDRATE; boot text at 74880 on
 * ESP8266). */
uint32_t sim_board_baud(const struct sim_board *b);
/* Counters for tests and the final summary. */
struct sim_board_stats {
    uint64_t frames_in, frames_out, flash_bytes_written, erases;
    int in_stub;
    int app_running;
    const char *mode; /* "rom", "stub", "app", "dead", "reset" or "off" (unplugged / no power) */
};
void sim_board_stats(const struct sim_board *b, struct sim_board_stats *out);

#endif
