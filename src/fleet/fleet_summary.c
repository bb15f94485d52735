/* `espstation fleet`: what the floor did in a time window, read from the boards table in one
 * read-only transaction. Every count, rate and ranking is computed by the server (GROUP BY,
 * FILTER, window functions); this file only asks and arranges the answers as the JSON document
 * that `fleet --json` prints and fleet_text.c lays out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/fleet_db.h"

/* The rows a query reads: boards that ended in [$1, $2) (seconds since the epoch), of station
 * $3 and profile $4 when given. */
#define WINDOW                                                                                     \
    " ended_at >= to_timestamp($1::float8) AND ended_at < to_timestamp($2::float8)"                \
    " AND ($3::text IS NULL OR station = $3) AND ($4::text IS NULL OR profile_name = $4)"

/* Per station and profile. Yield leaves interrupted boards out (they say nothing about the
 * boards); boards per hour is the group's boards over the hours from its first start to its
 * last end (NULL when that span is zero). */
static const char groups_sql[] =
    "SELECT station, profile_name, count(*),"
    " count(*) FILTER (WHERE result = 'pass'),"
    " count(*) FILTER (WHERE result = 'fail'),"
    " count(*) FILTER (WHERE result = 'interrupted'),"
    " round(100.0 * count(*) FILTER (WHERE result = 'pass')"
    "       / nullif(count(*) FILTER (WHERE result IN ('pass', 'fail')), 0), 1),"
    " round(count(*) / nullif(extract(epoch FROM max(ended_at) - min(started_at))::numeric / 3600, "
    "0),"
    "       2),"
    " floor(extract(epoch FROM min(started_at)))::bigint,"
    " floor(extract(epoch FROM max(ended_at)))::bigint"
    " FROM boards WHERE" WINDOW " GROUP BY station, profile_name"
    " ORDER BY station, profile_name NULLS LAST";

/* The five most frequent values of a column (%s: phase or error_code) among failed boards, per
 * station and profile; ties by name so the order is stable. */
static const char top_sql[] =
    "SELECT station, profile_name, v, n FROM ("
    " SELECT station, profile_name, coalesce(%s, '-') AS v, count(*) AS n,"
    "  row_number() OVER (PARTITION BY station, profile_name"
    "                     ORDER BY count(*) DESC, coalesce(%s, '-')) AS rank"
    " FROM boards WHERE result = 'fail' AND" WINDOW
    " GROUP BY station, profile_name, coalesce(%s, '-')) t"
    " WHERE rank <= 5 ORDER BY station, profile_name NULLS LAST, rank";

/* MACs that passed in the window (at the station and profile asked for) and have passing rows
 * for the same profile in more than one run or station, at any time: every such row, oldest
 * first. */
static const char duplicates_sql[] =
    "WITH seen AS (SELECT DISTINCT mac, profile_name FROM boards"
    "  WHERE result = 'pass' AND mac IS NOT NULL AND" WINDOW "),"
    " dup AS (SELECT b.mac, b.profile_name FROM boards b JOIN seen s"
    "  ON b.mac = s.mac AND b.profile_name IS NOT DISTINCT FROM s.profile_name"
    "  WHERE b.result = 'pass' GROUP BY b.mac, b.profile_name"
    "  HAVING count(DISTINCT (b.station, b.run_id)) > 1)"
    " SELECT d.mac::text, d.profile_name, b.station, b.run_id, b.slot,"
    "  floor(extract(epoch FROM b.started_at))::bigint,"
    "  floor(extract(epoch FROM b.ended_at))::bigint"
    " FROM dup d JOIN boards b ON b.mac = d.mac"
    "  AND b.profile_name IS NOT DISTINCT FROM d.profile_name AND b.result = 'pass'"
    " ORDER BY d.profile_name NULLS LAST, d.mac, b.ended_at, b.station, b.run_id, b.id";

struct query {
    PGconn *conn;
    const char *shown;
    const char *params[4];
};

/* Runs sql with the window's parameters; the caller PQclear()s the result. NULL with err. */
static PGresult *run(struct query *q, const char *what, const char *sql, struct es_err *err)
{
    PGresult *res = PQexecParams(q->conn, sql, 4, NULL, q->params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        fleet_db_fail(err, q->conn, res, q->shown, what);
        /* 42P01, undefined_table: a database no station has been set up for yet. */
        if (state != NULL && strcmp(state, "42P01") == 0) {
            size_t n = strlen(err->msg);

            snprintf(err->msg + n, sizeof(err->msg) - n,
                     "; is it the fleet database? 'espstation db init URL' creates the tables");
        }
        PQclear(res);
        return NULL;
    }
    return res;
}

/* A time as ISO 8601 in local time with its offset, "2026-12-04T08:00:00+01:00". */
static json_t *iso_local(time_t t)
{
    struct tm tm;
    char buf[40];
    size_t n;

    if (localtime_r(&t, &tm) == NULL)
        return json_null();
    n = strftime(buf, sizeof(buf) - 1, "%Y-%m-%dT%H:%M:%S%z", &tm);
    if (n < 5)
        return json_null();
    /* %z is +hhmm; ISO 8601's extended form wants +hh:mm. */
    memmove(buf + n - 1, buf + n - 2, 3);
    buf[n - 2] = ':';
    return json_string(buf);
}

static json_t *value_string(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *value_integer(const PGresult *res, int row, int col)
{
    return json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *value_real(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null()
                                      : json_real(strtod(PQgetvalue(res, row, col), NULL));
}

static json_t *value_time(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col)
               ? json_null()
               : iso_local((time_t)strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* json_object_set_new that remembers a failure in *ok (out of memory). */
static void put(json_t *obj, const char *key, json_t *value, int *ok)
{
    if (value == NULL || json_object_set_new(obj, key, value) < 0)
        *ok = 0;
}

static void append(json_t *array, json_t *value, int *ok)
{
    if (value == NULL || json_array_append_new(array, value) < 0)
        *ok = 0;
}

/* Whether v (a JSON string or null) holds what column col of row holds (NULL: null). */
static int same_text(const json_t *v, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_is_null(v);
    return json_is_string(v) && strcmp(json_string_value(v), PQgetvalue(res, row, col)) == 0;
}

/* The group of groups[] whose station and profile are row's columns 0 and 1, or NULL. */
static json_t *group_of(json_t *groups, const PGresult *res, int row)
{
    size_t i;
    json_t *g;

    json_array_foreach(groups, i, g)
    {
        if (same_text(json_object_get(g, "station"), res, row, 0) &&
            same_text(json_object_get(g, "profile"), res, row, 1))
            return g;
    }
    return NULL;
}

static int read_groups(struct query *q, json_t *groups, struct es_err *err)
{
    PGresult *res = run(q, "reading the boards per station and profile", groups_sql, err);
    int ok = 1;

    if (res == NULL)
        return -ES_FLEET_DB;
    for (int r = 0; ok && r < PQntuples(res); r++) {
        json_t *g = json_object();

        put(g, "station", value_string(res, r, 0), &ok);
        put(g, "profile", value_string(res, r, 1), &ok);
        put(g, "boards", value_integer(res, r, 2), &ok);
        put(g, "passed", value_integer(res, r, 3), &ok);
        put(g, "failed", value_integer(res, r, 4), &ok);
        put(g, "interrupted", value_integer(res, r, 5), &ok);
        put(g, "yield_pct", value_real(res, r, 6), &ok);
        put(g, "boards_per_hour", value_real(res, r, 7), &ok);
        put(g, "first_start", value_time(res, r, 8), &ok);
        put(g, "last_end", value_time(res, r, 9), &ok);
        put(g, "top_phases", json_array(), &ok);
        put(g, "top_errors", json_array(), &ok);
        append(groups, g, &ok);
    }
    PQclear(res);
    return ok ? 0 : es_fail(err, ES_NOMEM, "fleet database %s: out of memory", q->shown);
}

/* Fills each group's `key` list ("top_phases" or "top_errors") from column `column`. */
static int read_top(struct query *q, json_t *groups, const char *column, const char *key,
                    const char *name, struct es_err *err)
{
    char sql[sizeof(top_sql) + 64], what[64];
    PGresult *res;
    int ok = 1;

    snprintf(sql, sizeof(sql), top_sql, column, column, column);
    snprintf(what, sizeof(what), "reading the top failure %ss", name);
    res = run(q, what, sql, err);
    if (res == NULL)
        return -ES_FLEET_DB;
    for (int r = 0; ok && r < PQntuples(res); r++) {
        json_t *g = group_of(groups, res, r), *item = json_object();

        put(item, name, value_string(res, r, 2), &ok);
        put(item, "count", value_integer(res, r, 3), &ok);
        /* Every failed board in the window is in some group: a miss is a bug, not input. */
        if (g == NULL) {
            json_decref(item);
            continue;
        }
        append(json_object_get(g, key), item, &ok);
    }
    PQclear(res);
    return ok ? 0 : es_fail(err, ES_NOMEM, "fleet database %s: out of memory", q->shown);
}

static int read_duplicates(struct query *q, json_t *dups, struct es_err *err)
{
    PGresult *res = run(q, "reading duplicate MACs", duplicates_sql, err);
    json_t *cur = NULL;
    int ok = 1;

    if (res == NULL)
        return -ES_FLEET_DB;
    for (int r = 0; ok && r < PQntuples(res); r++) {
        json_t *b;

        /* Rows come ordered by profile and MAC: a new pair starts a new entry. */
        if (cur == NULL || !same_text(json_object_get(cur, "mac"), res, r, 0) ||
            !same_text(json_object_get(cur, "profile"), res, r, 1)) {
            cur = json_object();
            put(cur, "mac", value_string(res, r, 0), &ok);
            put(cur, "profile", value_string(res, r, 1), &ok);
            put(cur, "boards", json_array(), &ok);
            append(dups, cur, &ok);
            if (!ok)
                break;
        }
        b = json_object();
        put(b, "station", value_string(res, r, 2), &ok);
        put(b, "run_id", value_string(res, r, 3), &ok);
        put(b, "slot", value_string(res, r, 4), &ok);
        put(b, "started_at", value_time(res, r, 5), &ok);
        put(b, "ended_at", value_time(res, r, 6), &ok);
        append(json_object_get(cur, "boards"), b, &ok);
    }
    PQclear(res);
    return ok ? 0 : es_fail(err, ES_NOMEM, "fleet database %s: out of memory", q->shown);
}

json_t *fleet_summary_read(PGconn *conn, const char *shown, const struct fleet_filter *filter,
                           struct es_err *err)
{
    char since[32], until[32];
    struct query q = {conn, shown, {since, until, filter->station, filter->profile}};
    json_t *doc = json_object(), *groups = json_array(), *dups = json_array();
    int ok = 1;

    snprintf(since, sizeof(since), "%lld", (long long)filter->since);
    snprintf(until, sizeof(until), "%lld", (long long)filter->until);
    put(doc, "database", json_string(shown), &ok);
    put(doc, "since", iso_local(filter->since), &ok);
    put(doc, "until", iso_local(filter->until), &ok);
    put(doc, "station", filter->station ? json_string(filter->station) : json_null(), &ok);
    put(doc, "profile", filter->profile ? json_string(filter->profile) : json_null(), &ok);
    json_incref(groups);
    json_incref(dups);
    put(doc, "groups", groups, &ok);
    put(doc, "duplicate_macs", dups, &ok);
    if (!ok) {
        es_fail(err, ES_NOMEM, "fleet database %s: out of memory", shown);
        goto out_free;
    }
    /* Read-only twice over: the session refuses writes, and the transaction is READ ONLY with
     * one snapshot, so the numbers agree with each other while stations keep inserting. */
    if (fleet_db_exec(conn, shown, "making the session read-only",
                      "SET default_transaction_read_only = on", err) < 0 ||
        fleet_db_exec(conn, shown, "starting a read-only transaction",
                      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err) < 0)
        goto out_free;
    if (read_groups(&q, groups, err) < 0 ||
        read_top(&q, groups, "phase", "top_phases", "phase", err) < 0 ||
        read_top(&q, groups, "error_code", "top_errors", "code", err) < 0 ||
        read_duplicates(&q, dups, err) < 0 ||
        fleet_db_exec(conn, shown, "ending the transaction", "COMMIT", err) < 0)
        goto out_free;
    json_decref(groups);
    json_decref(dups);
    return doc;
out_free:
    json_decref(groups);
    json_decref(dups);
    json_decref(doc);
    return NULL;
}
