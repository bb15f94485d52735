/* A scripted port for tests (library es_port_fake, never linked into espstation): the session
 * under test writes requests; the test sees each SLIP frame it wrote (decoded) and decides what
 * the "board" answers, when, or whether at all. The fake is a transport of the port layer like
 * the tty and TCP ones, so a port opened on it goes through port.c's write queue, error delivery
 * and close life cycle exactly as a tty does: drive it with the ordinary port_* calls.
 * Everything here runs on the loop's thread; the registry of fakes is global to the process. */
#ifndef ES_PORT_FAKE_H
#define ES_PORT_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "es/err.h"
#include "es/port.h"

struct fake_port;

/* What the fake saw, for assertions. */
struct fake_port_stats {
    int opens, closes; /* port_open / port_close calls on this fake (refused opens count too) */
    uint32_t baud;     /* the current rate (set at open and by port_set_baud) */
    int set_baud_calls, set_lines_calls, flush_calls; /* calls that reached the fake */
    int dtr, rts;                                     /* last lines set */
    size_t frames_in, bytes_in;                       /* SLIP frames / raw bytes the host wrote */
};

/* Creates a fake registered under name (any string, e.g. "fake0"); fake_port_open finds it.
 * Returns NULL when out of memory or when a fake of that name already exists. A new fake can
 * reset (fake_port_set_can_reset) and accepts opens. */
struct fake_port *fake_port_new(uv_loop_t *loop, const char *name);

/* Frees the fake (after the port opened on it was closed and the loop has run). Freeing a fake
 * whose port is still open is a bug in the test and aborts. fake_port_free(NULL) does nothing. */
void fake_port_free(struct fake_port *fp);

/* Same signature as port_open: opens the fake registered under name (ES_PORT_OPEN if none, or if
 * fake_port_refuse_open was called; ES_PORT_BUSY if a port is already open on it;
 * ES_INVALID_ARG for baud 0, as a tty). loop must be the one the fake was made with. The port
 * can reset when fake_port_set_can_reset says so, and holds two timers until port_close. */
int fake_port_open(uv_loop_t *loop, const char *name, uint32_t baud,
                   const struct port_callbacks *cb, void *arg, struct port **out,
                   struct es_err *err);

/* Called from the loop (never from inside port_write) with each complete SLIP frame the host
 * wrote, decoded; also told the rate it was written at (the rate in force when the host wrote
 * the frame's last byte: a port_set_baud after a port_write does not change it). frame is valid
 * only during the call. The callback may call the fake_port_send_*, fake_port_fail and
 * fake_port_set_* functions, and port_close. No frame is reported after the port failed or
 * closed; frames still queued then are dropped, as a tty drops its queue. */
typedef void (*fake_port_frame_fn)(struct fake_port *fp, const uint8_t *frame, size_t len,
                                   uint32_t baud, void *arg);
void fake_port_on_frame(struct fake_port *fp, fake_port_frame_fn fn, void *arg);

/* Called on every port_set_lines (dtr, rts) — e.g. to notice a reset. It runs inside
 * port_set_lines, before it returns; it may schedule deliveries or a failure, but must not close
 * the port. Not called when the port cannot reset (port_set_lines returns ES_UNSUPPORTED). */
typedef void (*fake_port_lines_fn)(struct fake_port *fp, int dtr, int rts, void *arg);
void fake_port_on_lines(struct fake_port *fp, fake_port_lines_fn fn, void *arg);

/* Delivers pkt SLIP-encoded (or bytes raw) to the host's on_data after delay_ms of loop time
 * (0: on a later turn of the loop, never synchronously). Deliveries keep their order of due time,
 * and equal due times keep call order. Pending deliveries are dropped when the port is closed.
 * Each delivery is one on_data call. Without an open, live port the call does nothing (no one
 * is listening on the line). The bytes are copied. Aborts when out of memory (test code). */
void fake_port_send_frame(struct fake_port *fp, const uint8_t *pkt, size_t n, uint64_t delay_ms);
void fake_port_send_raw(struct fake_port *fp, const uint8_t *bytes, size_t n, uint64_t delay_ms);

/* Fails the port (on_error with code, e.g. ES_PORT_CLOSED as an unplug) after delay_ms. It is
 * ordered with the deliveries: those due earlier arrive first, later ones never. code 0 (no
 * error) is taken as ES_PORT_IO. */
void fake_port_fail(struct fake_port *fp, int code, uint64_t delay_ms);

/* Whether port_can_reset says yes (default 1) and whether port_set_lines works. Takes effect at
 * once, on an open port too. */
void fake_port_set_can_reset(struct fake_port *fp, int yes);

/* The next fake_port_open on this fake fails with ES_PORT_OPEN. */
void fake_port_refuse_open(struct fake_port *fp);

const struct fake_port_stats *fake_port_stats(const struct fake_port *fp);

/* 1 while a port is open on the fake (port_close not yet called), else 0. */
int fake_port_is_open(const struct fake_port *fp);

#endif
