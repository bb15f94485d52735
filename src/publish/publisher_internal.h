/* Private to the publisher (publisher.c: the queue, the answers and the station's calls;
 * publisher_conn.c: the connection and its socket; publisher_sql.c: the statements and their
 * parameters). The loop thread only. */
#ifndef ES_PUBLISHER_INTERNAL_H
#define ES_PUBLISHER_INTERNAL_H

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <uv.h>

#include "es/publish.h"

#define BACKOFF_FIRST_MS   1000
#define BACKOFF_MAX_MS     30000
#define CONNECT_TIMEOUT_MS 10000
/* A query unanswered this long means a dead peer the kernel has not noticed yet (a server
 * behind a cable pulled out): drop the connection and send again after reconnecting. */
#define QUERY_TIMEOUT_MS 30000
/* Board records sent in one statement. A station's boards finish in bursts (a bench of 64 at
 * once): one round trip per record would queue the last one behind 63 others. */
#define BOARD_BATCH_MAX 64

enum query_kind { Q_NONE, Q_SCHEMA, Q_LOOKUP, Q_BOARD, Q_RUN };

struct lookup {
    uint64_t token;
    char mac[18], profile[256], station[256], run_id[256];
    struct lookup *next;
};

/* A uv_poll_t of its own per socket: libpq may hand a new socket during PQconnectPoll (another
 * address, SSL then plain), and a poll handle cannot change its fd, so the old one is closed and
 * freed in its close callback while a new one watches the new fd. */
struct pq_poll {
    uv_poll_t h;
    struct publisher *p;
};

struct remove_job {
    uv_work_t req;
    struct publisher *p;
    struct outbox_record *r;
    int aside; /* refused by the database: renamed NAME.bad instead of removed */
    int rc;
    struct es_err err;
};

struct publisher {
    uv_loop_t *loop;
    const struct publisher_callbacks *cb;
    void *arg;
    char *outbox_dir;
    char url_display[256];
    PQconninfoOption *params; /* the URL, parsed once (libpq's own parser) */

    PGconn *conn;
    int connected; /* the schema check passed: records may go */
    struct pq_poll *poll;
    int poll_fd, poll_events;
    uv_getaddrinfo_t gai;
    int resolving;
    char hostaddr[INET6_ADDRSTRLEN];
    uv_timer_t timer; /* backoff, connect and query timeouts */
    uv_timer_t grace;
    int handles; /* open handles (timers, polls): on_closed once 0 after closing */
    uint64_t backoff_ms;

    enum query_kind inflight;
    PGresult *result;       /* the in-flight query's first result */
    struct lookup *lookup;  /* the lookup in flight (owned) */
    struct lookup *lookups; /* waiting, in order */
    struct outbox_record *head, *tail;
    size_t batch;       /* board records from head in the statement in flight */
    size_t single_left; /* after a batch the database refused: send these one at a time, so
                         * the one at fault is found and set aside alone */
    size_t waiting;

    enum publish_state state;
    char message[512]; /* the last state message said */
    int said_state;
    int finishing, closing, closed;
};

/* ---- publisher_conn.c ---- */

/* Tells the station about a new state or reason (once per change). */
void publisher_set_state(struct publisher *p, enum publish_state state, const char *message);
/* Resolves the host (off the loop thread) and starts connecting. */
void publisher_conn_start(struct publisher *p);
/* Drops the connection (the record in flight stays queued), answers waiting lookups with NULL
 * and, unless closing, schedules a reconnect after the backoff; why is the state's message. */
void publisher_conn_drop(struct publisher *p, const char *why);
/* publisher_conn_drop with libpq's reason: "what URL: reason". */
void publisher_conn_fail(struct publisher *p, const char *what);
/* Watches fd for events (UV_READABLE/UV_WRITABLE), with a new poll handle if the fd changed.
 * Returns 0 or a libuv error. */
int publisher_conn_watch(struct publisher *p, int fd, int events);
/* Sends a query (one in flight) and flushes; arms the query timeout. */
void publisher_query_send(struct publisher *p, enum query_kind kind, const char *sql, int n,
                          const char *const *values);

/* ---- publisher_sql.c ---- */

void publisher_send_schema(struct publisher *p);
void publisher_send_lookup(struct publisher *p, const struct lookup *l);
/* The insert of a run record, or of the n board records from r on (one statement). */
void publisher_send_record(struct publisher *p, const struct outbox_record *r, size_t n);

/* ---- publisher.c ---- */

/* The next query, if connected and idle: lookups first, then the head record. */
void publisher_send_next(struct publisher *p);
/* The query in flight has its last result (p->result). */
void publisher_query_done(struct publisher *p);
/* Once finishing: closes when nothing is queued; once closing: on_closed when all is closed. */
void publisher_maybe_close(struct publisher *p);
void publisher_check_closed(struct publisher *p);

#endif
