/* espsim's shell: one libuv loop that carries the simulated boards' serial lines (pty, TCP), their
 * reset channels (Unix control sockets), line pacing and board timers. The board model
 * (board.h) never sees a file descriptor or a clock; everything it does goes through here.
 *
 * Files: io_sim.c (start-up, signals, JSON lines, shutdown), io_board.c (board clock, pacing
 * queues, the model's ops), io_pty.c (pty + symlink), io_tcp.c (TCP), io_ctl.c (DTR/RTS socket),
 * io_baud.c (the host's baud rate on a pty, termios2), io_cmd.c (the control commands: plug,
 * unplug, swap, buttons, status), io_cmd_chan.c (where they come from: stdin and
 * DIR/espsim.sock), io_autoswap.c (--auto-swap). Private to tools/sim. */
#ifndef SIM_IO_H
#define SIM_IO_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bench.h"
#include "board.h"
#include "es/err.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define IO_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Bytes on one direction of a line, each segment paced at its own rate: byte i of a segment has
 * fully arrived at start_ns + (i + 1) * byte_ns (board time). */
struct io_seg {
    struct io_seg *next;
    uint64_t start_ns;
    uint64_t byte_ns;
    uint32_t baud; /* rx: the host's rate when read (0 = matches); tx: the board's rate */
    size_t len, off;
    uint8_t data[];
};

struct io_queue {
    struct io_seg *head, *tail;
    uint64_t end_ns; /* when the last queued byte has fully arrived */
    size_t bytes;
};

struct io_ctl_client {
    uv_pipe_t pipe;
    struct io_board *board;
    struct io_ctl_client *next;
    char line[128];
    size_t len;
    int overflow; /* the current line is too long: ignore it up to its newline */
};

struct io_board {
    struct io_sim *sim;
    int slot;
    const struct bench_board *spec; /* &cur */
    struct bench_board cur;         /* the board on the slot now (a swap replaces it) */
    struct sim_board *model;

    /* Flash: the state file, mapped shared so it is always current on disk. */
    int flash_fd;
    uint8_t *flash;
    char flash_path[PATH_MAX];

    /* Pseudo-terminal. We keep a slave fd open ourselves so the master never sees EIO/hangup
     * when a client closes the port, and clients may close and reopen it any number of times. */
    int master_fd, slave_fd;
    uv_poll_t *poll; /* handles on the heap: an old one may still be closing after a replug */
    int poll_init;
    char pty_path[64];
    char port_path[PATH_MAX]; /* symlink DIR/ttySIM<i> -> pty_path */
    int port_linked;

    /* Reset channel: DIR/ttySIM<i>.ctl, text lines "DTR=1 RTS=0". */
    uv_pipe_t *ctl_server;
    int ctl_init;
    char ctl_path[PATH_MAX];
    struct io_ctl_client *ctl_clients;
    int dtr, rts;
    int btn_boot, btn_en; /* the buttons as the last boot/en commands left them */

    /* Optional TCP port, one client at a time (a new connection replaces the old). */
    uv_tcp_t *tcp_server;
    int tcp_init;
    int tcp_port;
    uv_tcp_t *tcp_client;
    size_t tcp_pending; /* bytes written to the TCP client not yet confirmed */

    /* Pacing and the model's timer, all driven by one uv_timer. */
    uv_timer_t wake;
    int wake_init;
    struct io_queue rx, tx;
    uint64_t floor_ns; /* board time of the last event given to the model; never goes back */
    int timer_armed;
    uint64_t timer_ns;
    int unplugged;
    uint64_t tx_dropped; /* bytes nobody could take (pty buffer full, no port) */

    /* --auto-swap (io_autoswap.c). */
    uv_timer_t swap_timer;
    int swap_timer_init;
    int swap_state; /* AUTOSWAP_* */
    unsigned swaps; /* boards this slot has been given */
};

struct io_cmd_client; /* a connection to DIR/espsim.sock (io_cmd_chan.c) */

struct io_sim {
    uv_loop_t loop;
    const struct bench_options *opts;
    struct io_board *boards;
    int n_boards;
    double scale;      /* --time-scale */
    uint64_t start_hr; /* uv_hrtime() when the simulator started: board time 0 */
    char dir[PATH_MAX];
    int dir_created;
    char state_dir[PATH_MAX];
    struct sim_stub_images *stubs;

    uv_signal_t sigint, sigterm;
    int signals_init;
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
    } in;
    int in_init;
    int stopping;

    /* Control commands (io_cmd.c, io_cmd_chan.c). */
    char in_line[256]; /* the stdin line being read */
    size_t in_len;
    int in_overflow;
    uv_pipe_t *cmd_server; /* DIR/espsim.sock */
    char cmd_path[PATH_MAX];
    struct io_cmd_client *cmd_clients;
    unsigned boards_swapped_in; /* numbers the new boards' MACs (bench_board_finish) */
    uint64_t autoswap_rng;
};

/* io_sim.c: create everything (dir, flash files, ports, sockets, boards), print the JSON lines,
 * run the loop until SIGINT/SIGTERM (or stdin EOF with --exit-on-eof), then close everything.
 * Returns 0 on a clean run, or a negative code with err filled when start-up failed. */
int io_sim_run(const struct bench_options *opts, struct es_err *err);

/* Stops the simulator: starts closing every handle; the loop ends once they are closed. */
void io_sim_stop(struct io_sim *sim);
/* A model for the board on b (b->spec), with the shell's ops. NULL with err filled on failure. */
struct sim_board *io_board_model_new(struct io_board *b, struct es_err *err);

/* io_board.c */
/* The board's current time in ns (board time = real time / scale; never before floor_ns). */
uint64_t io_board_now(const struct io_board *b);
/* The model's ops table; ctx is the struct io_board. */
extern const struct sim_board_ops io_board_ops;
/* Queues bytes read from the host (pty or TCP) at host_baud (0 = the board's own rate). */
int io_board_input(struct io_board *b, const uint8_t *bytes, size_t n, uint32_t host_baud);
/* Hands the model everything that is due, writes due output, and re-arms the wake timer. Safe to
 * call from any loop callback (not from inside a model call). */
void io_board_process(struct io_board *b);
/* Writes output bytes to whatever carries the line now (pty master and/or TCP client). */
void io_board_emit(struct io_board *b, const uint8_t *bytes, size_t n);
/* Frees both queues. */
void io_board_clear_queues(struct io_board *b);
/* Carries out the fault "unplugged": closes the pty master and TCP, removes the symlink. */
void io_board_unplug(struct io_board *b);
/* A log line for stderr under -v, prefixed with the slot. */
void io_board_log(const struct io_board *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* io_pty.c */
int io_pty_open(struct io_board *b, struct es_err *err);
int io_pty_start(struct io_board *b, struct es_err *err);
/* Writes n bytes to the master without blocking; returns the bytes taken (the rest is dropped,
 * as a UART with nobody reading drops it). */
size_t io_pty_write(struct io_board *b, const uint8_t *bytes, size_t n);
void io_pty_close(struct io_board *b);

/* io_tcp.c */
int io_tcp_start(struct io_board *b, int port, struct es_err *err);
void io_tcp_write(struct io_board *b, const uint8_t *bytes, size_t n);
void io_tcp_close(struct io_board *b);

/* io_cmd.c: runs one command line; returns the JSON reply (one line, no newline; malloc'd; NULL
 * only when out of memory). */
char *io_cmd_run(struct io_sim *sim, const char *line);
/* The board actions behind the commands, also used by --auto-swap. Each returns 0, or -1 with a
 * reason in err. */
int io_cmd_unplug(struct io_board *b, struct es_err *err);
int io_cmd_plug(struct io_board *b, struct es_err *err);
/* Replaces the board on b with `next` (the spec fully finished). keep_flash leaves the flash
 * contents; otherwise it is blank (0xFF). Powers it on if the slot is plugged. */
int io_cmd_swap(struct io_board *b, const struct bench_board *next, int keep_flash,
                struct es_err *err);
/* Prints one JSON object as a line on stdout and flushes. Frees obj. */
int io_print_json(void *json_obj);

/* io_cmd_chan.c: stdin (with --commands or --exit-on-eof) and DIR/espsim.sock. */
int io_cmd_chan_start(struct io_sim *sim, struct es_err *err);
void io_cmd_chan_close(struct io_sim *sim);

/* io_autoswap.c: --auto-swap. */
void io_autoswap_init(struct io_board *b);
/* Called after each model event: arms the swap once the board runs its app. */
void io_autoswap_check(struct io_board *b);
void io_autoswap_close(struct io_board *b);

/* io_ctl.c */
int io_ctl_start(struct io_board *b, struct es_err *err);
void io_ctl_close(struct io_board *b);
/* Parses one control line ("DTR=1 RTS=0"; either field may be missing). Returns 0 and updates
 * *dtr / *rts, or -1 if the line is not understood. Pure; exposed for tests. */
int io_ctl_parse_line(const char *line, int *dtr, int *rts);

#include "io_baud.h"

#endif
