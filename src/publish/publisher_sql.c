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

void publisher_send_record(struct publisher *p, const struct outbox_record *r)
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
        publisher_query_send(p, Q_RUN, SQL_RUN, 11, v);
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
        publisher_query_send(p, Q_BOARD, SQL_BOARD, 14, v);
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
