/* The publisher: one PostgreSQL connection driven by the station's loop through libpq's
 * asynchronous API (PQconnectStartParams/PQconnectPoll, then PQsendQueryParams, PQflush,
 * PQconsumeInput/PQisBusy/PQgetResult), woken by a uv_poll_t on PQsocket(). Nothing here waits:
 * libpq's blocking calls (PQconnectdb, PQexec, a PQgetResult while busy) never run on the loop.
 *
 * One query in flight at a time: the schema check after connecting, then lookups (a board being
 * flashed waits for no answer, but a late one is worthless) before records, records in the
 * order pushed. A record leaves the queue only when its insert is confirmed; its file is then
 * removed on the thread pool. A lost connection keeps the record at the head of the queue and
 * reconnects after a backoff (1 s doubling to 30 s). The insert's ON CONFLICT (record_key) DO
 * NOTHING makes a record confirmed once and sent again (a lost reply, a kill before the file
 * went) land once. The SQL lives here too: the publisher is its only user. */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/container_of.h"
#include "es/fleet.h"
#include "es/publish.h"

#define BACKOFF_FIRST_MS   1000
#define BACKOFF_MAX_MS     30000
#define CONNECT_TIMEOUT_MS 10000
/* A query unanswered this long means a dead peer the kernel has not noticed yet (a server
 * behind a cable pulled out): drop the connection and send again after reconnecting. */
#define QUERY_TIMEOUT_MS 30000

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
    size_t waiting;

    enum publish_state state;
    char message[512]; /* the last state message said */
    int said_state;
    int finishing, closing, closed;
};

const char *publish_state_name(enum publish_state s)
{
    switch (s) {
    case PUBLISH_CONNECTING: return "connecting";
    case PUBLISH_CONNECTED: return "connected";
    case PUBLISH_DOWN: return "down";
    }
    return "unknown";
}

static void connect_start(struct publisher *p);
static void send_next(struct publisher *p);
static void maybe_close(struct publisher *p);
static void check_closed(struct publisher *p);

/* ---- State, as the station hears it ---- */

static void set_state(struct publisher *p, enum publish_state state, const char *message)
{
    const char *m = message != NULL ? message : "";

    if (p->said_state && p->state == state && strcmp(p->message, m) == 0)
        return;
    p->said_state = 1;
    p->state = state;
    snprintf(p->message, sizeof(p->message), "%s", m);
    if (p->cb->on_state != NULL)
        p->cb->on_state(state, message, p->arg);
}

/* libpq's error text, first line only, for a one-line message. libpq's messages name host and
 * user but never the password. */
static const char *pq_reason(PGconn *conn, char *buf, size_t cap)
{
    const char *m = conn != NULL ? PQerrorMessage(conn) : "out of memory";
    size_t n;

    /* "connection to server on socket ... failed: FATAL:  password authentication failed ..."
     * is long; keep the part after the last "failed: ". */
    const char *tail = strstr(m, "failed: ");
    if (tail != NULL && strstr(tail + 8, "failed: ") == NULL)
        m = tail + 8;
    n = strcspn(m, "\n");
    snprintf(buf, cap, "%.*s", (int)n, m);
    return buf;
}

/* ---- The socket ---- */

static void on_poll_closed(uv_handle_t *h)
{
    struct pq_poll *pp = container_of((uv_poll_t *)h, struct pq_poll, h);
    struct publisher *p = pp->p;

    free(pp);
    p->handles--;
    check_closed(p);
}

/* Stops watching the socket: before PQfinish closes it (style.md §4). */
static void poll_close(struct publisher *p)
{
    if (p->poll == NULL)
        return;
    uv_close((uv_handle_t *)&p->poll->h, on_poll_closed);
    p->poll = NULL;
    p->poll_fd = -1;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches fd for events, with a new handle when libpq's socket changed. */
static int poll_watch(struct publisher *p, int fd, int events)
{
    int rc;

    if (p->poll != NULL && p->poll_fd != fd)
        poll_close(p);
    if (p->poll == NULL) {
        struct pq_poll *pp = calloc(1, sizeof(*pp));

        if (pp == NULL)
            return UV_ENOMEM;
        pp->p = p;
        if ((rc = uv_poll_init(p->loop, &pp->h, fd)) < 0) {
            free(pp);
            return rc;
        }
        p->handles++;
        p->poll = pp;
        p->poll_fd = fd;
        p->poll_events = 0;
    }
    if (p->poll_events == events)
        return 0;
    p->poll_events = events;
    return uv_poll_start(&p->poll->h, events, on_poll);
}

/* ---- Connection ---- */

/* Drops the connection (if any) and tries again after the backoff, unless the station is done
 * with us. The record in flight stays at the head of the queue. */
static void on_timer(uv_timer_t *t);

static void disconnect(struct publisher *p, const char *why)
{
    struct lookup *l;

    poll_close(p);
    if (p->conn != NULL)
        PQfinish(p->conn); /* its Terminate message may not go: the socket is non-blocking */
    p->conn = NULL;
    p->connected = 0;
    PQclear(p->result);
    p->result = NULL;
    p->inflight = Q_NONE;
    /* A lookup's board will not wait for a reconnect: the insert checks again. */
    l = p->lookup;
    p->lookup = NULL;
    while (l != NULL || p->lookups != NULL) {
        if (l == NULL) {
            l = p->lookups;
            p->lookups = l->next;
        }
        if (p->cb->on_lookup != NULL)
            p->cb->on_lookup(l->token, NULL, p->arg);
        free(l);
        l = NULL;
    }
    if (p->closing)
        return;
    set_state(p, PUBLISH_DOWN, why);
    if (p->finishing && p->head == NULL) {
        maybe_close(p);
        return;
    }
    uv_timer_start(&p->timer, on_timer, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
}

static void fail_connection(struct publisher *p, const char *what)
{
    char reason[240], msg[512];

    pq_reason(p->conn, reason, sizeof(reason));
    snprintf(msg, sizeof(msg), "%s %s: %s", what, p->url_display, reason);
    disconnect(p, msg);
}

static void on_timer(uv_timer_t *t)
{
    struct publisher *p = container_of(t, struct publisher, timer);
    char msg[512];

    if (p->conn == NULL) { /* the backoff is over */
        connect_start(p);
        return;
    }
    snprintf(msg, sizeof(msg), "%s %s: no answer in %d s",
             p->connected ? "query on" : "connecting to", p->url_display,
             (p->connected ? QUERY_TIMEOUT_MS : CONNECT_TIMEOUT_MS) / 1000);
    disconnect(p, msg);
}

static const char *param(const PQconninfoOption *opts, const char *key)
{
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, key) == 0 && o->val != NULL && o->val[0] != '\0')
            return o->val;
    return NULL;
}

/* PQconnectStartParams with the URL's own parameters, plus hostaddr when we resolved the host
 * (so libpq does not call the blocking getaddrinfo on the loop thread). */
static void connect_now(struct publisher *p)
{
    const char *keys[64], *vals[64];
    size_t n = 0;

    for (const PQconninfoOption *o = p->params; o->keyword != NULL && n + 3 < 64; o++) {
        if (o->val == NULL || o->val[0] == '\0' || strcmp(o->keyword, "hostaddr") == 0)
            continue;
        keys[n] = o->keyword;
        vals[n++] = o->val;
    }
    if (p->hostaddr[0] != '\0') {
        keys[n] = "hostaddr";
        vals[n++] = p->hostaddr;
    } else if (param(p->params, "hostaddr") != NULL) {
        keys[n] = "hostaddr";
        vals[n++] = param(p->params, "hostaddr");
    }
    if (param(p->params, "application_name") == NULL) {
        keys[n] = "application_name";
        vals[n++] = "espstation";
    }
    keys[n] = vals[n] = NULL;
    p->conn = PQconnectStartParams(keys, vals, 0);
    if (p->conn == NULL || PQstatus(p->conn) == CONNECTION_BAD) {
        fail_connection(p, "cannot connect to");
        return;
    }
    uv_timer_start(&p->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
    /* libpq's protocol: act as if PQconnectPoll had said PGRES_POLLING_WRITING. */
    if (poll_watch(p, PQsocket(p->conn), UV_WRITABLE) < 0)
        fail_connection(p, "cannot watch the connection to");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct publisher *p = container_of(req, struct publisher, gai);
    char msg[512];

    p->resolving = 0;
    if (p->closing) {
        uv_freeaddrinfo(res);
        maybe_close(p);
        return;
    }
    if (status < 0 || res == NULL) {
        snprintf(msg, sizeof(msg), "cannot resolve the host of %s: %s", p->url_display,
                 uv_strerror(status));
        uv_freeaddrinfo(res);
        disconnect(p, msg);
        return;
    }
    if (res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, p->hostaddr, sizeof(p->hostaddr));
    else
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, p->hostaddr, sizeof(p->hostaddr));
    uv_freeaddrinfo(res);
    connect_now(p);
}

/* A host that needs a name lookup: not a Unix socket directory (starts with '/' or '@'), not
 * an IP address, and a single host (a list "a,b" is left to libpq, which then resolves it
 * itself: a blocking lookup that only such URLs pay). */
static int needs_resolving(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (host == NULL || host[0] == '/' || host[0] == '@' || strchr(host, ',') != NULL)
        return 0;
    return inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1;
}

static void connect_start(struct publisher *p)
{
    const char *host = param(p->params, "host");
    struct addrinfo hints;
    int rc;

    /* Only the first attempt is news: a retry stays "down" (with its reason) until it works or
     * fails differently, so a database away for an hour makes one line, not 120. */
    if (!p->said_state)
        set_state(p, PUBLISH_CONNECTING, NULL);
    p->hostaddr[0] = '\0';
    if (param(p->params, "hostaddr") != NULL || !needs_resolving(host)) {
        connect_now(p);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = uv_getaddrinfo(p->loop, &p->gai, on_resolved, host, NULL, &hints);
    if (rc < 0) {
        char msg[512];

        snprintf(msg, sizeof(msg), "cannot resolve the host of %s: %s", p->url_display,
                 uv_strerror(rc));
        disconnect(p, msg);
        return;
    }
    p->resolving = 1;
}

/* ---- Queries ---- */

static const char SQL_SCHEMA[] = "SELECT max(version) FROM espstation_schema";

static const char SQL_LOOKUP[] =
    "SELECT id, station, run_id, slot, "
    "to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
    "FROM boards WHERE mac = $1::macaddr AND profile_name = $2 AND result = 'pass' "
    "AND NOT (station = $3 AND run_id = $4) ORDER BY id LIMIT 1";

/* One statement: the earlier passing board with this MAC and profile (from another run or
 * station), the insert with it as duplicate_of, and what it points at. A second delivery of the
 * same record inserts nothing and returns no row. */
static const char SQL_BOARD[] =
    "WITH prev AS (SELECT id FROM boards WHERE $5::macaddr IS NOT NULL AND mac = $5::macaddr "
    "  AND profile_name = $7 AND result = 'pass' AND NOT (station = $2 AND run_id = $3) "
    "  ORDER BY id LIMIT 1), "
    "ins AS (INSERT INTO boards (record_key, station, run_id, slot, mac, chip, profile_name, "
    "  profile_sha256, result, phase, error_code, started_at, ended_at, duplicate_of, report) "
    "  SELECT $1, $2, $3, $4, $5::macaddr, $6, $7, $8, $9, $10, $11, $12::timestamptz, "
    "  $13::timestamptz, (SELECT id FROM prev), $14::jsonb "
    "  ON CONFLICT (record_key) DO NOTHING RETURNING id, duplicate_of) "
    "SELECT ins.id, b.id, b.station, b.run_id, b.slot, "
    "to_char(b.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
    "FROM ins LEFT JOIN boards b ON b.id = ins.duplicate_of";

/* The latest record wins: an older one delivered late (after a restart) changes nothing. */
static const char SQL_RUN[] =
    "INSERT INTO runs (station, run_id, started_at, ended_at, total, passed, failed, "
    "interrupted, profiles, tool_version, updated_at) VALUES ($1, $2, $3::timestamptz, "
    "$4::timestamptz, $5, $6, $7, $8, $9::jsonb, $10, to_timestamp($11::double precision / 1000)) "
    "ON CONFLICT (station, run_id) DO UPDATE SET ended_at = EXCLUDED.ended_at, "
    "total = EXCLUDED.total, passed = EXCLUDED.passed, failed = EXCLUDED.failed, "
    "interrupted = EXCLUDED.interrupted, profiles = EXCLUDED.profiles, "
    "updated_at = EXCLUDED.updated_at WHERE runs.updated_at <= EXCLUDED.updated_at "
    "RETURNING 1";

/* Sends a query and flushes what libpq buffered; the rest goes when the socket is writable. */
static void query_send(struct publisher *p, enum query_kind kind, const char *sql, int n,
                       const char *const *values)
{
    int rc;

    if (!PQsendQueryParams(p->conn, sql, n, NULL, values, NULL, NULL, 0)) {
        fail_connection(p, "cannot send to");
        return;
    }
    p->inflight = kind;
    uv_timer_start(&p->timer, on_timer, QUERY_TIMEOUT_MS, 0);
    rc = PQflush(p->conn);
    if (rc < 0) {
        fail_connection(p, "cannot send to");
        return;
    }
    if (poll_watch(p, PQsocket(p->conn), rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
        fail_connection(p, "cannot watch the connection to");
}

static const char *jget(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key)); /* NULL for null or absent */
}

/* A number as text for a parameter. */
static const char *jnum(const json_t *o, const char *key, char *buf, size_t cap)
{
    snprintf(buf, cap, "%lld", (long long)json_integer_value(json_object_get(o, key)));
    return buf;
}

static void send_record(struct publisher *p, const struct outbox_record *r)
{
    const json_t *b = r->body;
    const char *kind = jget(b, "kind");
    char *text;

    if (kind != NULL && strcmp(kind, "run") == 0) {
        char nums[5][24];
        const char *v[11];

        text = json_dumps(json_object_get(b, "profiles"), JSON_COMPACT);
        v[0] = jget(b, "station");
        v[1] = jget(b, "run_id");
        v[2] = jget(b, "started_at");
        v[3] = jget(b, "ended_at");
        v[4] = jnum(b, "total", nums[0], sizeof(nums[0]));
        v[5] = jnum(b, "passed", nums[1], sizeof(nums[1]));
        v[6] = jnum(b, "failed", nums[2], sizeof(nums[2]));
        v[7] = jnum(b, "interrupted", nums[3], sizeof(nums[3]));
        v[8] = text != NULL ? text : "[]";
        v[9] = jget(b, "tool_version");
        v[10] = jnum(b, "created_ms", nums[4], sizeof(nums[4]));
        query_send(p, Q_RUN, SQL_RUN, 11, v);
    } else {
        const char *v[14];

        text = json_dumps(json_object_get(b, "report"), JSON_COMPACT | JSON_PRESERVE_ORDER);
        v[0] = jget(b, "record_key");
        v[1] = jget(b, "station");
        v[2] = jget(b, "run_id");
        v[3] = jget(b, "slot");
        v[4] = jget(b, "mac");
        v[5] = jget(b, "chip");
        v[6] = jget(b, "profile_name");
        v[7] = jget(b, "profile_sha256");
        v[8] = jget(b, "result");
        v[9] = jget(b, "phase");
        v[10] = jget(b, "error_code");
        v[11] = jget(b, "started_at");
        v[12] = jget(b, "ended_at");
        v[13] = text != NULL ? text : "{}";
        query_send(p, Q_BOARD, SQL_BOARD, 14, v);
    }
    free(text); /* PQsendQueryParams has copied the parameters into its buffer */
}

static void send_next(struct publisher *p)
{
    if (p->conn == NULL || !p->connected || p->inflight != Q_NONE)
        return;
    if (p->lookups != NULL) {
        struct lookup *l = p->lookups;
        const char *v[4] = {l->mac, l->profile, l->station, l->run_id};

        p->lookups = l->next;
        p->lookup = l;
        query_send(p, Q_LOOKUP, SQL_LOOKUP, 4, v);
        return;
    }
    if (p->head != NULL) {
        send_record(p, p->head);
        return;
    }
    uv_timer_stop(&p->timer);
    /* Idle: still read, so a server that closes the connection is noticed now. */
    if (poll_watch(p, PQsocket(p->conn), UV_READABLE) < 0)
        fail_connection(p, "cannot watch the connection to");
    if (p->finishing)
        maybe_close(p);
}

/* ---- Answers ---- */

static void on_remove_work(uv_work_t *req)
{
    struct remove_job *j = container_of(req, struct remove_job, req);
    const char *dir = j->p->outbox_dir;

    if (j->aside) {
        char from[4200], to[4210];

        snprintf(from, sizeof(from), "%s/%s", dir, j->r->name);
        snprintf(to, sizeof(to), "%s.bad", from);
        j->rc = rename(from, to) < 0 ? -1 : 0;
        return;
    }
    j->rc = outbox_remove(dir, j->r->name, &j->err);
}

static void on_remove_done(uv_work_t *req, int status)
{
    struct remove_job *j = container_of(req, struct remove_job, req);

    (void)status;
    /* A file that could not be removed is sent again at the next start, and lands once. */
    outbox_record_free(j->r);
    free(j);
}

/* Pops the head record (confirmed or refused) and has its file removed or set aside. */
static void record_done(struct publisher *p, int aside)
{
    struct outbox_record *r = p->head;
    struct remove_job *j = calloc(1, sizeof(*j));

    p->head = r->next;
    if (p->head == NULL)
        p->tail = NULL;
    r->next = NULL;
    if (j == NULL) {
        outbox_record_free(r);
        return;
    }
    j->p = p;
    j->r = r;
    j->aside = aside;
    if (uv_queue_work(p->loop, &j->req, on_remove_work, on_remove_done) < 0) {
        outbox_record_free(r);
        free(j);
    }
}

static void dup_from_row(const PGresult *res, int first_col, struct publish_dup *d)
{
    memset(d, 0, sizeof(*d));
    d->id = strtoll(PQgetvalue(res, 0, first_col), NULL, 10);
    snprintf(d->station, sizeof(d->station), "%s", PQgetvalue(res, 0, first_col + 1));
    snprintf(d->run_id, sizeof(d->run_id), "%s", PQgetvalue(res, 0, first_col + 2));
    snprintf(d->slot, sizeof(d->slot), "%s", PQgetvalue(res, 0, first_col + 3));
    snprintf(d->at, sizeof(d->at), "%s", PQgetvalue(res, 0, first_col + 4));
}

static void schema_checked(struct publisher *p, const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    char msg[512];
    int version;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (state != NULL && strcmp(state, "42P01") == 0) /* undefined_table */
            snprintf(msg, sizeof(msg),
                     "database %s has no espstation schema: run `espstation db init URL` once",
                     p->url_display);
        else
            snprintf(msg, sizeof(msg), "database %s: checking the schema failed: %s",
                     p->url_display, strtok(PQresultErrorMessage(res), "\n"));
        disconnect(p, msg);
        return;
    }
    version = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? atoi(PQgetvalue(res, 0, 0)) : 0;
    if (version < FLEET_SCHEMA_VERSION) {
        snprintf(msg, sizeof(msg),
                 "database %s has schema version %d, this station needs %d: run `espstation db "
                 "init URL`",
                 p->url_display, version, FLEET_SCHEMA_VERSION);
        disconnect(p, msg);
        return;
    }
    p->connected = 1;
    p->backoff_ms = BACKOFF_FIRST_MS;
    set_state(p, PUBLISH_CONNECTED, NULL);
}

static int64_t now_ms(void)
{
    return report_now_ms();
}

static void record_answered(struct publisher *p, const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    struct outbox_record *r = p->head;
    struct publish_dup dup;
    int inserted, has_dup = 0;
    int64_t created;

    if (st != PGRES_TUPLES_OK) {
        char msg[512];
        const char *why = PQresultErrorMessage(res);

        /* Connection trouble (class 08), a server shutting down (57P), a role without rights
         * (42501) or a schema gone (42P01): nothing wrong with the record, try again later.
         * Anything else is the record's own fault: set it aside instead of blocking the
         * queue for ever. */
        if (state == NULL || strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
            strcmp(state, "42501") == 0 || strcmp(state, "42P01") == 0 ||
            strncmp(state, "53", 2) == 0) {
            snprintf(msg, sizeof(msg), "database %s: %.*s", p->url_display, (int)strcspn(why, "\n"),
                     why);
            disconnect(p, msg);
            return;
        }
        snprintf(msg, sizeof(msg), "%.*s", (int)strcspn(why, "\n"), why);
        p->waiting--;
        if (p->cb->on_refused != NULL)
            p->cb->on_refused(r, msg, p->arg);
        record_done(p, 1);
        return;
    }
    inserted = PQntuples(res) > 0;
    if (inserted && PQnfields(res) >= 6 && !PQgetisnull(res, 0, 1)) {
        dup_from_row(res, 1, &dup);
        has_dup = 1;
    }
    created = (int64_t)json_integer_value(json_object_get(r->body, "created_ms"));
    p->waiting--; /* before the call: the station shows the count after this record */
    if (p->cb->on_published != NULL)
        p->cb->on_published(r, inserted, created > 0 ? now_ms() - created : 0,
                            has_dup ? &dup : NULL, p->arg);
    record_done(p, 0);
}

static void lookup_answered(struct publisher *p, const PGresult *res)
{
    struct lookup *l = p->lookup;
    struct publish_dup dup;
    int found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;

    p->lookup = NULL;
    if (found)
        dup_from_row(res, 0, &dup);
    if (p->cb->on_lookup != NULL)
        p->cb->on_lookup(l->token, found ? &dup : NULL, p->arg);
    free(l);
}

/* The in-flight query has its last result: act on it, then send the next one. */
static void query_done(struct publisher *p)
{
    enum query_kind kind = p->inflight;
    PGresult *res = p->result;

    p->inflight = Q_NONE;
    p->result = NULL;
    if (res == NULL) { /* libpq gives a result for every query; be safe */
        fail_connection(p, "no answer from");
        return;
    }
    switch (kind) {
    case Q_SCHEMA: schema_checked(p, res); break;
    case Q_LOOKUP: lookup_answered(p, res); break;
    case Q_BOARD:
    case Q_RUN: record_answered(p, res); break;
    case Q_NONE: break;
    }
    PQclear(res);
    send_next(p);
}

static void on_connect_poll(struct publisher *p)
{
    switch (PQconnectPoll(p->conn)) {
    case PGRES_POLLING_READING:
        if (poll_watch(p, PQsocket(p->conn), UV_READABLE) < 0)
            fail_connection(p, "cannot watch the connection to");
        return;
    case PGRES_POLLING_WRITING:
        if (poll_watch(p, PQsocket(p->conn), UV_WRITABLE) < 0)
            fail_connection(p, "cannot watch the connection to");
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(p->conn, 1) != 0) {
            fail_connection(p, "cannot use");
            return;
        }
        query_send(p, Q_SCHEMA, SQL_SCHEMA, 0, NULL);
        return;
    case PGRES_POLLING_FAILED:
    default: fail_connection(p, "cannot connect to"); return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pq_poll *pp = container_of(h, struct pq_poll, h);
    struct publisher *p = pp->p;

    if (p->poll != pp || p->conn == NULL)
        return; /* an event for a handle being replaced */
    if (PQstatus(p->conn) != CONNECTION_OK && PQstatus(p->conn) != CONNECTION_BAD) {
        on_connect_poll(p);
        return;
    }
    if (status < 0) {
        fail_connection(p, "lost the connection to");
        return;
    }
    if ((events & UV_WRITABLE) && p->inflight != Q_NONE) {
        int rc = PQflush(p->conn);

        if (rc < 0) {
            fail_connection(p, "cannot send to");
            return;
        }
        if (rc == 0 && poll_watch(p, PQsocket(p->conn), UV_READABLE) < 0) {
            fail_connection(p, "cannot watch the connection to");
            return;
        }
    }
    if (!(events & UV_READABLE))
        return;
    if (!PQconsumeInput(p->conn) || PQstatus(p->conn) == CONNECTION_BAD) {
        fail_connection(p, "lost the connection to");
        return;
    }
    /* PQgetResult blocks only while PQisBusy: ask it only when it will not. */
    while (p->inflight != Q_NONE && !PQisBusy(p->conn)) {
        PGresult *res = PQgetResult(p->conn);

        if (res == NULL) {
            query_done(p);
            return;
        }
        if (p->result == NULL)
            p->result = res;
        else
            PQclear(res);
    }
}

/* ---- The station's side ---- */

int publisher_new(uv_loop_t *loop, const char *url, const char *outbox_dir,
                  const struct publisher_callbacks *cb, void *arg, struct publisher **out,
                  struct es_err *err)
{
    struct publisher *p;
    char *why = NULL;
    int rc;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return es_fail(err, ES_NOMEM, "out of memory");
    if ((rc = fleet_url_display(url, p->url_display, sizeof(p->url_display), err)) < 0) {
        free(p);
        return rc;
    }
    p->params = PQconninfoParse(url, &why);
    PQfreemem(why);
    p->outbox_dir = strdup(outbox_dir);
    if (p->params == NULL || p->outbox_dir == NULL) {
        publisher_free(p);
        return es_fail(err, ES_NOMEM, "out of memory");
    }
    p->loop = loop;
    p->cb = cb;
    p->arg = arg;
    p->poll_fd = -1;
    p->backoff_ms = BACKOFF_FIRST_MS;
    p->state = PUBLISH_CONNECTING;
    uv_timer_init(loop, &p->timer);
    uv_timer_init(loop, &p->grace);
    p->timer.data = p->grace.data = p;
    p->handles = 2;
    *out = p;
    return 0;
}

void publisher_start(struct publisher *p)
{
    connect_start(p);
}

void publisher_push(struct publisher *p, struct outbox_record *r)
{
    r->next = NULL;
    if (p->tail != NULL)
        p->tail->next = r;
    else
        p->head = r;
    p->tail = r;
    p->waiting++;
    send_next(p);
}

int publisher_lookup(struct publisher *p, uint64_t token, const char *mac, const char *profile_name,
                     const char *station, const char *run_id)
{
    struct lookup *l, **end;

    /* While connecting the lookup waits its turn behind the schema check; while down there is
     * no one to ask. */
    if (p->closing || profile_name == NULL || (!p->connected && p->state == PUBLISH_DOWN))
        return -1;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -1;
    l->token = token;
    snprintf(l->mac, sizeof(l->mac), "%s", mac);
    snprintf(l->profile, sizeof(l->profile), "%s", profile_name);
    snprintf(l->station, sizeof(l->station), "%s", station);
    snprintf(l->run_id, sizeof(l->run_id), "%s", run_id);
    for (end = &p->lookups; *end != NULL; end = &(*end)->next)
        ;
    *end = l;
    send_next(p);
    return 0;
}

size_t publisher_waiting(const struct publisher *p)
{
    return p->waiting;
}

enum publish_state publisher_state(const struct publisher *p)
{
    return p->state;
}

const char *publisher_url(const struct publisher *p)
{
    return p->url_display;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct publisher *p = h->data;

    p->handles--;
    check_closed(p);
}

/* on_closed, once every handle is closed and no lookup of the host is pending. */
static void check_closed(struct publisher *p)
{
    if (p->closing && !p->closed && p->handles == 0 && !p->resolving) {
        p->closed = 1;
        if (p->cb->on_closed != NULL)
            p->cb->on_closed(p->arg);
    }
}

/* Drops the connection and closes every handle; what is still queued stays in the outbox. */
static void close_now(struct publisher *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    if (p->resolving)
        uv_cancel((uv_req_t *)&p->gai); /* on_resolved comes with UV_ECANCELED */
    disconnect(p, NULL);
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->grace, on_handle_closed);
    check_closed(p);
}

/* Once finishing: closes as soon as nothing is queued or in flight. */
static void maybe_close(struct publisher *p)
{
    if (p->closing) {
        check_closed(p);
        return;
    }
    if (p->finishing && p->head == NULL && p->inflight == Q_NONE)
        close_now(p);
}

static void on_grace(uv_timer_t *t)
{
    close_now(container_of(t, struct publisher, grace));
}

void publisher_finish(struct publisher *p, uint64_t grace_ms)
{
    if (p->finishing)
        return;
    p->finishing = 1;
    uv_timer_start(&p->grace, on_grace, grace_ms, 0);
    maybe_close(p);
}

void publisher_free(struct publisher *p)
{
    if (p == NULL)
        return;
    if (p->conn != NULL)
        PQfinish(p->conn);
    PQclear(p->result);
    while (p->head != NULL) {
        struct outbox_record *next = p->head->next;
        outbox_record_free(p->head);
        p->head = next;
    }
    while (p->lookups != NULL) {
        struct lookup *next = p->lookups->next;
        free(p->lookups);
        p->lookups = next;
    }
    free(p->lookup);
    if (p->params != NULL)
        PQconninfoFree(p->params);
    free(p->outbox_dir);
    free(p);
}
