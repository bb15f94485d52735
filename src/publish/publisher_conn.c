/* The publisher's connection (es/publish.h): the host resolved with uv_getaddrinfo (libpq's own
 * lookup would block the loop), PQconnectStartParams/PQconnectPoll driven by a uv_poll_t on
 * PQsocket() (a new handle when libpq switches sockets), queries sent and flushed without
 * blocking, and a dropped connection retried after a backoff (1 s doubling to 30 s). What a
 * result means is publisher.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/container_of.h"
#include "publisher_internal.h"

/* ---- State, as the station hears it ---- */

void publisher_set_state(struct publisher *p, enum publish_state state, const char *message)
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
    publisher_check_closed(p);
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
int publisher_conn_watch(struct publisher *p, int fd, int events)
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

static void on_timer(uv_timer_t *t);

/* The record in flight stays at the head of the queue, to be sent again after the backoff. */
void publisher_conn_drop(struct publisher *p, const char *why)
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
    p->batch = 0;
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
    publisher_set_state(p, PUBLISH_DOWN, why);
    if (p->finishing && p->head == NULL) {
        publisher_maybe_close(p);
        return;
    }
    uv_timer_start(&p->timer, on_timer, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
}

void publisher_conn_fail(struct publisher *p, const char *what)
{
    char reason[240], msg[512];

    pq_reason(p->conn, reason, sizeof(reason));
    snprintf(msg, sizeof(msg), "%s %s: %s", what, p->url_display, reason);
    publisher_conn_drop(p, msg);
}

static void on_timer(uv_timer_t *t)
{
    struct publisher *p = container_of(t, struct publisher, timer);
    char msg[512];

    if (p->conn == NULL) { /* the backoff is over */
        publisher_conn_start(p);
        return;
    }
    snprintf(msg, sizeof(msg), "%s %s: no answer in %d s",
             p->connected ? "query on" : "connecting to", p->url_display,
             (p->connected ? QUERY_TIMEOUT_MS : CONNECT_TIMEOUT_MS) / 1000);
    publisher_conn_drop(p, msg);
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
        publisher_conn_fail(p, "cannot connect to");
        return;
    }
    uv_timer_start(&p->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
    /* libpq's protocol: act as if PQconnectPoll had said PGRES_POLLING_WRITING. */
    if (publisher_conn_watch(p, PQsocket(p->conn), UV_WRITABLE) < 0)
        publisher_conn_fail(p, "cannot watch the connection to");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct publisher *p = container_of(req, struct publisher, gai);
    char msg[512];

    p->resolving = 0;
    if (p->closing) {
        uv_freeaddrinfo(res);
        publisher_maybe_close(p);
        return;
    }
    if (status < 0 || res == NULL) {
        snprintf(msg, sizeof(msg), "cannot resolve the host of %s: %s", p->url_display,
                 uv_strerror(status));
        uv_freeaddrinfo(res);
        publisher_conn_drop(p, msg);
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

void publisher_conn_start(struct publisher *p)
{
    const char *host = param(p->params, "host");
    struct addrinfo hints;
    int rc;

    /* Only the first attempt is news: a retry stays "down" (with its reason) until it works or
     * fails differently, so a database away for an hour makes one line, not 120. */
    if (!p->said_state)
        publisher_set_state(p, PUBLISH_CONNECTING, NULL);
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
        publisher_conn_drop(p, msg);
        return;
    }
    p->resolving = 1;
}

/* Sends a query and flushes what libpq buffered; the rest goes when the socket is writable. */
void publisher_query_send(struct publisher *p, enum query_kind kind, const char *sql, int n,
                          const char *const *values)
{
    int rc;

    if (!PQsendQueryParams(p->conn, sql, n, NULL, values, NULL, NULL, 0)) {
        publisher_conn_fail(p, "cannot send to");
        return;
    }
    p->inflight = kind;
    uv_timer_start(&p->timer, on_timer, QUERY_TIMEOUT_MS, 0);
    rc = PQflush(p->conn);
    if (rc < 0) {
        publisher_conn_fail(p, "cannot send to");
        return;
    }
    if (publisher_conn_watch(p, PQsocket(p->conn),
                             rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
        publisher_conn_fail(p, "cannot watch the connection to");
}

static void on_connect_poll(struct publisher *p)
{
    PostgresPollingStatusType st = PQconnectPoll(p->conn);

    /* libpq may have closed its socket and opened another (the next address, SSL refused) that
     * got the same descriptor number: the kernel dropped the old one from epoll, and a handle
     * that still believes it is registered would never hear the new one. A fresh handle per
     * step costs nothing at a connect's few steps. */
    poll_close(p);
    switch (st) {
    case PGRES_POLLING_READING:
        if (publisher_conn_watch(p, PQsocket(p->conn), UV_READABLE) < 0)
            publisher_conn_fail(p, "cannot watch the connection to");
        return;
    case PGRES_POLLING_WRITING:
        if (publisher_conn_watch(p, PQsocket(p->conn), UV_WRITABLE) < 0)
            publisher_conn_fail(p, "cannot watch the connection to");
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(p->conn, 1) != 0) {
            publisher_conn_fail(p, "cannot use");
            return;
        }
        publisher_send_schema(p);
        return;
    case PGRES_POLLING_FAILED:
    default: publisher_conn_fail(p, "cannot connect to"); return;
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
        publisher_conn_fail(p, "lost the connection to");
        return;
    }
    if ((events & UV_WRITABLE) && p->inflight != Q_NONE) {
        int rc = PQflush(p->conn);

        if (rc < 0) {
            publisher_conn_fail(p, "cannot send to");
            return;
        }
        if (rc == 0 && publisher_conn_watch(p, PQsocket(p->conn), UV_READABLE) < 0) {
            publisher_conn_fail(p, "cannot watch the connection to");
            return;
        }
    }
    if (!(events & UV_READABLE))
        return;
    if (!PQconsumeInput(p->conn) || PQstatus(p->conn) == CONNECTION_BAD) {
        publisher_conn_fail(p, "lost the connection to");
        return;
    }
    /* PQgetResult blocks only while PQisBusy: ask it only when it will not. */
    while (p->inflight != Q_NONE && !PQisBusy(p->conn)) {
        PGresult *res = PQgetResult(p->conn);

        if (res == NULL) {
            publisher_query_done(p);
            return;
        }
        if (p->result == NULL)
            p->result = res;
        else
            PQclear(res);
    }
}
