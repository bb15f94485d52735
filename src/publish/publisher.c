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
 * went) land once. The connection is publisher_conn.c's, the SQL publisher_sql.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/container_of.h"
#include "es/fleet.h"
#include "publisher_internal.h"

const char *publish_state_name(enum publish_state s)
{
    switch (s) {
    case PUBLISH_CONNECTING: return "connecting";
    case PUBLISH_CONNECTED: return "connected";
    case PUBLISH_DOWN: return "down";
    }
    return "unknown";
}

static int is_board(const struct outbox_record *r)
{
    const char *kind = json_string_value(json_object_get(r->body, "kind"));

    return kind == NULL || strcmp(kind, "run") != 0;
}

/* How many records from head go in the next statement: the board records that follow it, of one
 * run (see SQL_BOARDS), at most BOARD_BATCH_MAX, or one at a time after a refused batch. */
static size_t board_batch(const struct publisher *p)
{
    const char *run = json_string_value(json_object_get(p->head->body, "run_id"));
    size_t n = 0;

    if (!is_board(p->head) || p->single_left > 0)
        return 1;
    for (const struct outbox_record *r = p->head; r != NULL && n < BOARD_BATCH_MAX; r = r->next) {
        const char *r_run = json_string_value(json_object_get(r->body, "run_id"));

        if (!is_board(r) || run == NULL || r_run == NULL || strcmp(run, r_run) != 0)
            break;
        n++;
    }
    return n > 0 ? n : 1;
}

void publisher_send_next(struct publisher *p)
{
    if (p->conn == NULL || !p->connected || p->inflight != Q_NONE)
        return;
    if (p->lookups != NULL) {
        struct lookup *l = p->lookups;
        p->lookups = l->next;
        p->lookup = l;
        publisher_send_lookup(p, l);
        return;
    }
    if (p->head != NULL) {
        publisher_send_record(p, p->head, board_batch(p));
        return;
    }
    uv_timer_stop(&p->timer);
    /* Idle: still read, so a server that closes the connection is noticed now. */
    if (publisher_conn_watch(p, PQsocket(p->conn), UV_READABLE) < 0)
        publisher_conn_fail(p, "cannot watch the connection to");
    if (p->finishing)
        publisher_maybe_close(p);
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

/* The earlier board in row's columns first_col.. (id, station, run_id, slot, at). */
static void dup_from_row(const PGresult *res, int row, int first_col, struct publish_dup *d)
{
    memset(d, 0, sizeof(*d));
    d->id = strtoll(PQgetvalue(res, row, first_col), NULL, 10);
    snprintf(d->station, sizeof(d->station), "%s", PQgetvalue(res, row, first_col + 1));
    snprintf(d->run_id, sizeof(d->run_id), "%s", PQgetvalue(res, row, first_col + 2));
    snprintf(d->slot, sizeof(d->slot), "%s", PQgetvalue(res, row, first_col + 3));
    snprintf(d->at, sizeof(d->at), "%s", PQgetvalue(res, row, first_col + 4));
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
        publisher_conn_drop(p, msg);
        return;
    }
    version = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? atoi(PQgetvalue(res, 0, 0)) : 0;
    if (version < FLEET_SCHEMA_VERSION) {
        snprintf(msg, sizeof(msg),
                 "database %s has schema version %d, this station needs %d: run `espstation db "
                 "init URL`",
                 p->url_display, version, FLEET_SCHEMA_VERSION);
        publisher_conn_drop(p, msg);
        return;
    }
    p->connected = 1;
    p->backoff_ms = BACKOFF_FIRST_MS;
    publisher_set_state(p, PUBLISH_CONNECTED, NULL);
}

static int64_t now_ms(void)
{
    return report_now_ms();
}

/* The head record is answered: inserted (or found there already: inserted 0), with the earlier
 * board its MAC passed on, if any. */
static void record_published(struct publisher *p, int inserted, const struct publish_dup *dup)
{
    struct outbox_record *r = p->head;
    int64_t created = (int64_t)json_integer_value(json_object_get(r->body, "created_ms"));

    p->waiting--; /* before the call: the station shows the count after this record */
    if (p->single_left > 0)
        p->single_left--;
    if (p->cb->on_published != NULL)
        p->cb->on_published(r, inserted, created > 0 ? now_ms() - created : 0, dup, p->arg);
    record_done(p, 0);
}

/* The answer to the statement in flight for p->batch records from head (boards) or one run. */
static void record_answered(struct publisher *p, enum query_kind kind, const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    size_t n = p->batch;

    p->batch = 0;
    if (st != PGRES_TUPLES_OK) {
        char msg[512];
        const char *why = PQresultErrorMessage(res);

        /* Connection trouble (class 08), a server shutting down (57P), a role without rights
         * (42501) or a schema gone (42P01): nothing wrong with the record, try again later.
         * Anything else is a record's own fault: a batch is sent again one record at a time,
         * and the record at fault is set aside instead of blocking the queue for ever. */
        if (state == NULL || strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
            strcmp(state, "42501") == 0 || strcmp(state, "42P01") == 0 ||
            strncmp(state, "53", 2) == 0) {
            snprintf(msg, sizeof(msg), "database %s: %.*s", p->url_display, (int)strcspn(why, "\n"),
                     why);
            publisher_conn_drop(p, msg);
            return;
        }
        if (n > 1) {
            p->single_left = n;
            return;
        }
        snprintf(msg, sizeof(msg), "%.*s", (int)strcspn(why, "\n"), why);
        p->waiting--;
        if (p->single_left > 0)
            p->single_left--;
        if (p->cb->on_refused != NULL)
            p->cb->on_refused(p->head, msg, p->arg);
        record_done(p, 1);
        return;
    }
    if (kind == Q_RUN) {
        record_published(p, PQntuples(res) > 0, NULL);
        return;
    }
    /* One row per board inserted now, named by its record_key; a record without a row was
     * there already. */
    for (size_t i = 0; i < n && p->head != NULL; i++) {
        const char *key = json_string_value(json_object_get(p->head->body, "record_key"));
        struct publish_dup dup;
        int row = -1;

        for (int t = 0; key != NULL && t < PQntuples(res) && row < 0; t++)
            if (strcmp(PQgetvalue(res, t, 0), key) == 0)
                row = t;
        if (row >= 0 && PQnfields(res) >= 7 && !PQgetisnull(res, row, 2))
            dup_from_row(res, row, 2, &dup);
        record_published(p, row >= 0, row >= 0 && !PQgetisnull(res, row, 2) ? &dup : NULL);
    }
}

static void lookup_answered(struct publisher *p, const PGresult *res)
{
    struct lookup *l = p->lookup;
    struct publish_dup dup;
    int found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;

    p->lookup = NULL;
    if (found)
        dup_from_row(res, 0, 0, &dup);
    if (p->cb->on_lookup != NULL)
        p->cb->on_lookup(l->token, found ? &dup : NULL, p->arg);
    free(l);
}

/* The in-flight query has its last result: act on it, then send the next one. */
void publisher_query_done(struct publisher *p)
{
    enum query_kind kind = p->inflight;
    PGresult *res = p->result;

    p->inflight = Q_NONE;
    p->result = NULL;
    if (res == NULL) { /* libpq gives a result for every query; be safe */
        publisher_conn_fail(p, "no answer from");
        return;
    }
    switch (kind) {
    case Q_SCHEMA: schema_checked(p, res); break;
    case Q_LOOKUP: lookup_answered(p, res); break;
    case Q_BOARD:
    case Q_RUN: record_answered(p, kind, res); break;
    case Q_NONE: break;
    }
    PQclear(res);
    publisher_send_next(p);
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
    publisher_conn_start(p);
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
    publisher_send_next(p);
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
    publisher_send_next(p);
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
    publisher_check_closed(p);
}

/* on_closed, once every handle is closed and no lookup of the host is pending. */
void publisher_check_closed(struct publisher *p)
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
    publisher_conn_drop(p, NULL);
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->grace, on_handle_closed);
    publisher_check_closed(p);
}

/* Once finishing: closes as soon as nothing is queued or in flight. */
void publisher_maybe_close(struct publisher *p)
{
    if (p->closing) {
        publisher_check_closed(p);
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
    publisher_maybe_close(p);
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
