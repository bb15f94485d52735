/* A small blocking host for testing espsim from the outside: start the program and read its JSON
 * lines, open a board's pty (or TCP port) like a serial flasher would, send requests and wait for
 * replies, and drive the reset socket. Requests are encoded here by hand from the protocol
 * document (only SLIP comes from es_proto), so the tests do not share the model's decoder. */
#ifndef SIMCLIENT_H
#define SIMCLIENT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "es/slip.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define SC_MAX_BOARDS 256

struct sc_board {
    int slot;
    char chip[16];
    char port[PATH_MAX];
    char pty[64];
    char ctl[PATH_MAX];
    int tcp_port; /* 0 without --tcp */
    char mac[18];
    uint32_t flash_id;
    uint32_t flash_size;
    char flash[PATH_MAX];
};

struct sc_sim {
    pid_t pid;
    int out_fd;   /* espsim's stdout */
    int stdin_fd; /* write end of espsim's stdin (for --exit-on-eof) */
    char dir[PATH_MAX];
    char sock[PATH_MAX]; /* DIR/espsim.sock, the control commands' socket */
    int n_boards;
    struct sc_board boards[SC_MAX_BOARDS];
};

/* Starts `espsim args...` (args NULL-terminated, without the program name) with stdout on a pipe
 * and reads the JSON lines up to {"ready":true}. Returns 0, or -1 (message on stderr). */
int sc_sim_start(struct sc_sim *s, const char *espsim, const char *const *args);
/* Sends SIGTERM and waits (at most timeout_ms). Returns the exit status, or -1 if it had to be
 * killed or did not exit normally. */
int sc_sim_stop(struct sc_sim *s, int timeout_ms);

/* Opens a pty port raw at baud (8N1, no flow control) and flushes stale input. -1 on error. */
int sc_port_open(const char *path, uint32_t baud);
int sc_port_set_baud(int fd, uint32_t baud);
/* Connects to 127.0.0.1:port. */
int sc_tcp_connect(int port);

/* Reply frames collected from one fd. raw keeps the last bytes seen (boot text etc.). */
struct sc_reader {
    int fd;
    struct slip_decoder dec;
    uint8_t dec_buf[SLIP_MAX_FRAME];
    uint8_t frames[64][1100];
    size_t frame_len[64];
    int head, count;
    uint8_t raw[8192];
    size_t raw_len;
    int closed; /* read returned EOF or an error (e.g. EIO after unplug) */
};

void sc_reader_init(struct sc_reader *r, int fd);
/* Reads for up to timeout_ms or until a frame is queued; returns 1 if a frame is available,
 * 0 on timeout, -1 if the fd is closed or failed. */
int sc_wait_frame(struct sc_reader *r, int timeout_ms);
/* Pops the oldest frame (copy into out, at most cap bytes); returns its length or -1. */
int sc_pop_frame(struct sc_reader *r, uint8_t *out, size_t cap);
/* Reads whatever arrives within ms milliseconds (into raw and frames). */
void sc_drain(struct sc_reader *r, int ms);
/* Forgets queued frames and raw bytes. */
void sc_reader_clear(struct sc_reader *r);
/* 1 if the raw bytes seen so far contain text. */
int sc_raw_contains(const struct sc_reader *r, const char *text);

/* Sends one request: 8-byte header (direction 0, op, size, checksum) + data, SLIP framed. */
int sc_send(int fd, uint8_t op, const uint8_t *data, size_t n, uint32_t checksum);

/* What a reply said. data points into the reply buffer the caller passed. */
struct sc_reply {
    uint8_t op;
    uint32_t value;
    const uint8_t *data; /* reply data, status bytes included */
    size_t len;          /* size field */
    uint8_t status, error;
};
/* Waits up to timeout_ms for a well-formed reply (direction 1) with this op; other frames are
 * skipped (and counted in *skipped if not NULL). status_len is 2 or 4. Returns 1 with *rep filled,
 * 0 on timeout, -1 when the port closed. buf must hold 1100 bytes and outlive *rep. */
int sc_wait_reply(struct sc_reader *r, uint8_t op, size_t status_len, int timeout_ms,
                  struct sc_reply *rep, uint8_t *buf, int *skipped);

/* Checks that frame is a well-formed reply to op and fills *rep (pointing into frame). */
int sc_reply_parse(const uint8_t *frame, int len, uint8_t op, size_t status_len,
                   struct sc_reply *rep);
/* One non-blocking read into the reader; 1 if bytes came, 0 if none, -1 if the fd closed. */
int sc_reader_pump(struct sc_reader *r);

/* Sends a request and waits for its reply (see sc_wait_reply). */
int sc_command(struct sc_reader *r, uint8_t op, const uint8_t *data, size_t n, uint32_t checksum,
               size_t status_len, int timeout_ms, struct sc_reply *rep, uint8_t *buf);

/* Sends SYNC and counts the SYNC replies that arrive within timeout_ms (waiting at most
 * quiet_ms after each). Fills *reply_len with the size field of the last one. */
int sc_sync(struct sc_reader *r, int timeout_ms, int quiet_ms, size_t *reply_len);

/* FLASH_DATA payload: 16-byte header + data; returns the checksum to put in the request. */
uint32_t sc_data_block(uint8_t *out, const uint8_t *data, size_t n, uint32_t seq);

/* Writes one control line (a newline is added) to a board's reset socket, on a connection of its
 * own. Lines that must stay in order go over one connection: sc_ctl_open + sc_ctl_write. */
int sc_ctl(const char *ctl_path, const char *line);
int sc_ctl_open(const char *ctl_path);
int sc_ctl_write(int fd, const char *line);
/* Classic reset into download mode (§5.2) over the control socket, sleeping hold_ms / boot_ms in
 * real time between the steps. */
/* Sends one control command ("unplug 0", "status") on a connection of its own to espsim's
 * command socket and reads the one-line JSON reply into reply. Returns 0, or -1. */
int sc_sim_cmd(const char *sock_path, const char *line, char *reply, size_t cap);
/* The same through espsim's stdin (--commands or --exit-on-eof); the reply comes on stdout. */
int sc_sim_cmd_stdin(struct sc_sim *s, const char *line, char *reply, size_t cap);

int sc_reset_download(const char *ctl_path, int hold_ms, int boot_ms);

void sc_sleep_ms(int ms);
/* Monotonic milliseconds. */
int64_t sc_now_ms(void);

#endif
