/* One board's life, as an explicit state machine driven by libuv (style.md §5): open the port,
 * reset into download mode, SYNC, detect the chip, read its MAC and flash id, upload the flasher
 * stub, (erase), write every image, read back its MD5, reset it to run, watch it boot (when the
 * profile has a boot_check), and account for all of it in a struct report_device. A session never
 * prints: it reports through callbacks, and a failure ends this session only. */
#ifndef ES_SESSION_H
#define ES_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "es/chip.h"
#include "es/deflate.h"
#include "es/err.h"
#include "es/image.h"
#include "es/port.h"
#include "es/profile.h"
#include "es/report.h"
#include "es/stub.h"

/* The phases a board goes through, in order; the names are what reports and the journal use. */
#define SESSION_PHASES(X)                                                                          \
    X(OPEN, "open")                                                                                \
    X(RESET, "reset")                                                                              \
    X(SYNC, "sync")                                                                                \
    X(DETECT, "detect")                                                                            \
    X(IDENTIFY, "identify")                                                                        \
    X(STUB, "stub")                                                                                \
    X(BAUD, "baud")                                                                                \
    X(ATTACH, "attach")                                                                            \
    X(FLASH_ID, "flash_id")                                                                        \
    X(PLAN, "plan")                                                                                \
    X(ERASE, "erase")                                                                              \
    X(WRITE, "write")                                                                              \
    X(VERIFY, "verify")                                                                            \
    X(RUN, "run")                                                                                  \
    X(BOOT, "boot")                                                                                \
    X(DONE, "done")

enum session_phase {
#define SESSION_PHASE_ENUM(name, str) SESSION_PHASE_##name,
    SESSION_PHASES(SESSION_PHASE_ENUM)
#undef SESSION_PHASE_ENUM
        SESSION_PHASE_COUNT
};

const char *session_phase_name(enum session_phase phase);

/* What to write on one board for one image: prepared bytes (patched, padded) and, when the
 * loader takes compressed data, the zlib stream of those bytes. Owned by the station and shared
 * by every session; a session only borrows it. */
struct session_payload {
    const struct image_prepared *prepared;
    const struct image_deflate *z; /* restartable zlib stream of prepared->data, or NULL */
};

struct session;

struct session_callbacks {
    /* The session entered a new phase. */
    void (*on_phase)(struct session *s, enum session_phase phase, void *arg);
    /* Something worth a journal line: "chip", "mac", "stub", "image_written", "verified",
     * "retry" ... with a short human text. */
    void (*on_note)(struct session *s, const char *what, const char *text, void *arg);
    /* The session has finished (pass, fail or interrupted), its port and timer are closed, and
     * session_report() is final. The station writes the report, then calls session_free. */
    void (*on_done)(struct session *s, void *arg);
    /* Returns the payload of image index i of profile p for this chip and header flash params.
     * Only a lookup: the station prepared every payload a board can need before the loop ran, so
     * nothing slow happens here. z is NULL in a run that never writes (verify). */
    int (*get_payload)(struct session *s, const struct profile *p, size_t i,
                       const struct chip *chip, const struct image_flash_params *params,
                       int compressed, const struct session_payload **out, struct es_err *err,
                       void *arg);
};

enum session_mode {
    SESSION_FLASH,  /* erase, write, verify */
    SESSION_VERIFY, /* QA: read back and compare only, never write */
    /* Continuous line: is a board there, and which? Connect, detect and identify (the MAC), then
     * reset it into its app (after: in the profile) and pass, never touching the flash. */
    SESSION_PROBE
};

struct session_config {
    int slot;
    const char *port;                      /* borrowed for the session's life */
    const struct profile *const *profiles; /* a board takes the one whose chip matches */
    size_t n_profiles;
    const struct stub_image *stubs; /* indexed by enum chip_model; entries with chip NULL: none */
    enum session_mode mode;
    const struct port_info *usb; /* the port's USB identity for the report, or NULL */
    double timeout_scale; /* multiplies every timeout (sanitizer builds, slow hosts); 1 = normal */
    int verbose;          /* note every frame as hex (SERIAL TX / RX) */
    /* A board that does not answer SYNC is never given up on (continuous mode, boards without
     * auto-reset): once the profile's connection attempts are used up, the session keeps asking
     * at a low duty cycle (one SYNC every 500 ms, a reset every 5 s where the port can reset)
     * until the board answers, the port fails (ES_PORT_CLOSED when it goes away) or
     * session_interrupt. The phase stays "sync" meanwhile. What the board prints instead of a
     * reply is noted once as a "hint" and shown in session_snapshot.hint. Only before the first
     * SYNC reply: a board that answered once and then falls silent fails as before. */
    int wait_for_download;
    /* Opens the port, with port_open's contract; NULL means port_open. Tests pass a scripted
     * fake port here (es/port_fake.h). */
    int (*open_port)(uv_loop_t *loop, const char *name, uint32_t baud,
                     const struct port_callbacks *cb, void *arg, struct port **out,
                     struct es_err *err);
};

/* Allocates a session; nothing happens until session_start. cfg and cb are copied, the strings
 * and profiles they point to are borrowed. */
int session_new(uv_loop_t *loop, const struct session_config *cfg,
                const struct session_callbacks *cb, void *arg, struct session **out,
                struct es_err *err);
/* Opens the port and starts the board's life. Always ends with on_done, from the loop (also
 * when the port cannot be opened). Does nothing for a session already interrupted. */
void session_start(struct session *s);
/* Stops the board as "interrupted" (SIGINT). on_done follows from the loop, never from inside
 * this call, also for a session that was never started; run the loop until it comes. May be
 * called from the loop or from inside on_phase (not from on_note or get_payload). No-op once
 * the session is finishing. */
void session_interrupt(struct session *s);
/* Frees a session after on_done. */
void session_free(struct session *s);

/* The report as it stands (final after on_done). Pointers inside stay valid until session_free. */
const struct report_device *session_report(const struct session *s);

/* A plain snapshot for the live view. */
struct session_snapshot {
    int slot;
    const char *port;
    const char *chip; /* NULL until detected */
    char mac[18];     /* "" until read */
    enum session_phase phase;
    uint64_t done_bytes, total_bytes;
    double rate_bps; /* image bytes per second during writing, 0 otherwise */
    int finished;
    enum report_result result;
    const char *error; /* message when failed */
    /* What the operator should do for a board that does not answer SYNC, from what it printed
     * instead ("... hold BOOT and tap EN/RST"); NULL when nothing is to be done. Valid until the
     * next call into the session. */
    const char *hint;
};
void session_snapshot(const struct session *s, struct session_snapshot *out);

#endif
