/* Publishing to the fleet database (PostgreSQL, schema in src/fleet/sql): the records a station
 * sends (publish_record.c: a board, a run) and the publisher that delivers them (publisher.c):
 * one libpq connection driven by the station's libuv loop through libpq's asynchronous API, so
 * that a slow or dead database never delays a board. Records come from the outbox
 * (es/outbox.h) and leave it only once the database confirmed them.
 *
 * A record's body, as stored in the outbox:
 *   board: {"kind":"board", "created_ms", "record_key", "station", "run_id", "slot", "mac"
 *           (aa:bb:.. or null), "chip", "profile_name", "profile_sha256", "result", "phase",
 *           "error_code", "started_at", "ended_at" (UTC ISO-8601), "report": {the device report}}
 *   run:   {"kind":"run", "created_ms", "station", "run_id", "started_at", "ended_at" (or null
 *           while the run goes on), "total", "passed", "failed", "interrupted", "profiles":
 *           [{"name","sha256"}], "tool_version"}
 * A board lands once whatever the number of deliveries (record_key is UNIQUE); a run's row is
 * replaced by a record created later (runs.updated_at), never by an older one. */
#ifndef ES_PUBLISH_H
#define ES_PUBLISH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "es/err.h"
#include "es/outbox.h"
#include "es/report.h"

/* ---- Records (publish_record.c): plain data in, JSON out; safe on a pool thread ---- */

/* The board record for report d of station's run run_id, on the slot with the stable name
 * slot_name, created at created_ms (report_now_ms). NULL out of memory. */
json_t *publish_record_board(const struct report_device *d, const char *station, const char *run_id,
                             const char *slot_name, int64_t created_ms);

struct publish_run {
    const char *station, *run_id;
    int64_t start_ms, end_ms; /* end_ms 0: the run goes on */
    unsigned long total, passed, failed, interrupted;
    const struct report_profile *profiles;
    size_t n_profiles;
    int64_t created_ms;
};

/* The run record. NULL out of memory. */
json_t *publish_record_run(const struct publish_run *r);

/* The idempotency key of a board record: station/run_id/slot/mac/start_ms, mac as
 * aa:bb:cc:dd:ee:ff or "-" when unknown (the schema's boards.record_key). */
void publish_record_key(const char *station, const char *run_id, const char *slot, const char *mac,
                        int64_t start_ms, char *out, size_t cap);

/* ---- The publisher (publisher.c): the loop thread only ---- */

/* An earlier passing board with the same MAC and profile, from another run or station. */
struct publish_dup {
    long long id; /* boards.id */
    char station[128], run_id[128], slot[160];
    char at[40]; /* when it ended, UTC ISO-8601 */
};

enum publish_state {
    PUBLISH_CONNECTING, /* resolving, connecting, checking the schema */
    PUBLISH_CONNECTED,  /* records are being delivered */
    PUBLISH_DOWN,       /* no connection (message says why); a retry is scheduled */
};

/* "connecting", "connected", "down". */
const char *publish_state_name(enum publish_state s);

struct publisher_callbacks {
    /* The connection's state changed, or the reason it is down did: message says why (one
     * line naming the database by fleet_url_display, never the password), NULL when connected.
     * Not called again for a retry that fails the same way. */
    void (*on_state)(enum publish_state state, const char *message, void *arg);
    /* The database has record r (inserted: 1, or 0 when it was already there: a second
     * delivery). latency_ms: from the record's "created_ms" to the confirmation. dup: a board
     * whose insert found an earlier passing board with its MAC (boards.duplicate_of), or NULL.
     * r's file is being removed; r is freed after the call. */
    void (*on_published)(const struct outbox_record *r, int inserted, int64_t latency_ms,
                         const struct publish_dup *dup, void *arg);
    /* The answer to publisher_lookup(token, ...): dup is NULL when there is no such board or
     * the question could not be answered (the connection went). */
    void (*on_lookup)(uint64_t token, const struct publish_dup *dup, void *arg);
    /* publisher_finish's end: every handle is closed (removals may still be running on the
     * pool; the loop waits for them). */
    void (*on_closed)(void *arg);
    /* A record the database refused for its content (not for the connection): it was set aside
     * in the outbox as NAME.bad and the next one is sent. */
    void (*on_refused)(const struct outbox_record *r, const char *message, void *arg);
};

struct publisher;

/* A publisher for url (a libpq URI or conninfo string) delivering records of the outbox in
 * outbox_dir. Nothing starts yet. Returns 0, or ES_FLEET_DB (url does not parse: the message
 * never holds the password) or ES_NOMEM. */
int publisher_new(uv_loop_t *loop, const char *url, const char *outbox_dir,
                  const struct publisher_callbacks *cb, void *arg, struct publisher **out,
                  struct es_err *err);
/* Starts connecting (resolving the host name first, off the loop thread). */
void publisher_start(struct publisher *p);
/* Appends r to the records to send (the publisher takes it): records go one at a time, in the
 * order pushed; one that fails for the connection is sent again after a reconnect. */
void publisher_push(struct publisher *p, struct outbox_record *r);
/* Asks, if connected or connecting, whether mac (aa:bb:cc:dd:ee:ff) already passed profile_name on
 * another run or station than (station, run_id); lookups go before records. Returns 0 (on_lookup
 * follows, with NULL if the connection goes first), or -1 when the database is down (no answer
 * will come). Never wait for an answer. */
int publisher_lookup(struct publisher *p, uint64_t token, const char *mac, const char *profile_name,
                     const char *station, const char *run_id);
/* Records not yet confirmed (including the one in flight; not the one being confirmed in
 * on_published). */
size_t publisher_waiting(const struct publisher *p);
enum publish_state publisher_state(const struct publisher *p);
/* The URL as shown (fleet_url_display). */
const char *publisher_url(const struct publisher *p);
/* The station is done: deliver what is queued for at most grace_ms, then close (on_closed).
 * Records not delivered stay in the outbox for the next start. */
void publisher_finish(struct publisher *p, uint64_t grace_ms);
/* After the loop has ended (on_closed came); NULL does nothing. Frees records still queued
 * (their files stay). */
void publisher_free(struct publisher *p);

#endif
