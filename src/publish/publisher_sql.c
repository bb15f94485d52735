/* The publisher's statements: the schema check, the MAC lookup, a board's insert (with its
 * duplicate_of found in the same statement, and ON CONFLICT (record_key) DO NOTHING so a second
 * delivery lands once) and a run's upsert (the latest record wins), with their parameters taken
 * from a record's JSON (es/publish.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publisher_internal.h"

static const char SQL_SCHEMA[] = "SELECT max(version) FROM espstation_schema";

static const char SQL_LOOKUP[] =
    "SELECT id, station, run_id, slot, "
    "to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
    "FROM boards WHERE mac = $1::macaddr AND profile_name = $2 AND result = 'pass' "
    "AND NOT (station = $3 AND run_id = $4) ORDER BY id LIMIT 1";

/* One statement for a batch of boards, given as a JSON array in outbox order: for each, the
 * earlier passing board with its MAC and profile (from another run or station), the insert with
 * it as duplicate_of, and what it points at. A record delivered before inserts nothing and
 * returns no row. A batch holds one run's records only, so a MAC twice in a batch is never a
 * duplicate the statement's snapshot could miss. */
static const char SQL_BOARDS[] =
    "WITH r AS (SELECT e.ord, r.* FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY "
    "  AS e(j, ord), jsonb_to_record(e.j) AS r(record_key text, station text, run_id text, "
    "  slot text, mac macaddr, chip text, profile_name text, profile_sha256 text, result text, "
    "  phase text, error_code text, started_at timestamptz, ended_at timestamptz, report jsonb)), "
    "ins AS (INSERT INTO boards (record_key, station, run_id, slot, mac, chip, profile_name, "
    "  profile_sha256, result, phase, error_code, started_at, ended_at, duplicate_of, report) "
    "  SELECT r.record_key, r.station, r.run_id, r.slot, r.mac, r.chip, r.profile_name, "
    "  r.profile_sha256, r.result, r.phase, r.error_code, r.started_at, r.ended_at, "
    "  (SELECT p.id FROM boards p WHERE r.mac IS NOT NULL AND p.mac = r.mac "
    "   AND p.profile_name = r.profile_name AND p.result = 'pass' "
    "   AND NOT (p.station = r.station AND p.run_id = r.run_id) ORDER BY p.id LIMIT 1), "
    "  r.report FROM r ORDER BY r.ord "
    "  ON CONFLICT (record_key) DO NOTHING RETURNING record_key, id, duplicate_of) "
    "SELECT ins.record_key, ins.id, b.id, b.station, b.run_id, b.slot, "
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

/* The row's columns of a board record, as the statement's JSON object (the record owns them). */
static json_t *board_row(const json_t *b)
{
    static const char *const keys[] = {"record_key", "station", "run_id",       "slot",
                                       "mac",        "chip",    "profile_name", "profile_sha256",
                                       "result",     "phase",   "error_code",   "started_at",
                                       "ended_at",   "report"};
    json_t *o = json_object();

    for (size_t i = 0; o != NULL && i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(b, keys[i]);

        if (json_object_set(o, keys[i], v != NULL ? v : json_null()) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

void publisher_send_record(struct publisher *p, const struct outbox_record *r, size_t n)
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
        p->batch = 1;
        publisher_query_send(p, Q_RUN, SQL_RUN, 11, v);
    } else {
        json_t *rows = json_array();
        const char *v[1];

        for (size_t i = 0; rows != NULL && i < n; i++, r = r->next)
            if (json_array_append_new(rows, board_row(r->body)) < 0) {
                json_decref(rows);
                rows = NULL;
            }
        text = rows != NULL ? json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(rows);
        if (text == NULL) { /* out of memory: as if the connection failed, try again later */
            publisher_conn_drop(p, "out of memory building a statement for");
            return;
        }
        v[0] = text;
        p->batch = n;
        publisher_query_send(p, Q_BOARD, SQL_BOARDS, 1, v);
    }
    free(text); /* PQsendQueryParams has copied the parameters into its buffer */
}

void publisher_send_lookup(struct publisher *p, const struct lookup *l)
{
    const char *v[4] = {l->mac, l->profile, l->station, l->run_id};

    publisher_query_send(p, Q_LOOKUP, SQL_LOOKUP, 4, v);
}

void publisher_send_schema(struct publisher *p)
{
    publisher_query_send(p, Q_SCHEMA, SQL_SCHEMA, 0, NULL);
}
