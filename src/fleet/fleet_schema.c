/* `espstation db init`: bring a database to the schema this binary knows. Versions are the
 * embedded sql/NNN-*.sql files (fleet_migrations[]); espstation_schema records each one applied,
 * and a database is at version max(version). Each version is applied in its own transaction
 * under an advisory lock, so a crash leaves a database at a whole version and two inits at once
 * apply each version exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/fleet_db.h"

/* The key of the transaction-scoped advisory lock every `db init` step takes: any fixed number
 * works as long as every espstation uses the same one (0x6573707374, "espst" in ASCII). */
#define FLEET_SCHEMA_LOCK "435728446324"

/* The table the publisher checks on connect (the contract in include/es/fleet.h). */
static const char create_version_table[] =
    "CREATE TABLE IF NOT EXISTS espstation_schema ("
    " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())";

static void rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

/* In an open transaction: takes the lock, makes sure the version table exists, and reads the
 * version into *version. 0, or -ES_FLEET_DB. */
static int lock_and_read(PGconn *conn, const char *shown, int *version, struct es_err *err)
{
    PGresult *res;
    int absent;

    if (fleet_db_exec(conn, shown, "taking the schema lock",
                      "SELECT pg_advisory_xact_lock(" FLEET_SCHEMA_LOCK ")", err) < 0)
        return -ES_FLEET_DB;
    /* Created only when absent: a role that may not create tables can still learn that a
     * database someone else set up is current. */
    res = PQexec(conn, "SELECT to_regclass('espstation_schema') IS NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fleet_db_fail(err, conn, res, shown, "looking for espstation_schema");
        PQclear(res);
        return -ES_FLEET_DB;
    }
    absent = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (absent &&
        fleet_db_exec(conn, shown, "creating espstation_schema", create_version_table, err) < 0)
        return -ES_FLEET_DB;
    res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM espstation_schema");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fleet_db_fail(err, conn, res, shown, "reading the schema version");
        PQclear(res);
        return -ES_FLEET_DB;
    }
    *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Applies migration m (in an open transaction) and records it. 0, or -ES_FLEET_DB. */
static int apply(PGconn *conn, const char *shown, const struct fleet_migration *m,
                 struct es_err *err)
{
    char what[128], record[128];

    snprintf(what, sizeof(what), "applying %s", m->name);
    if (fleet_db_exec(conn, shown, what, m->sql, err) < 0)
        return -ES_FLEET_DB;
    snprintf(record, sizeof(record), "INSERT INTO espstation_schema (version) VALUES (%d)",
             m->version);
    return fleet_db_exec(conn, shown, what, record, err);
}

static void note_applied(struct fleet_schema_result *out, const char *name)
{
    size_t n = strlen(out->applied);

    snprintf(out->applied + n, sizeof(out->applied) - n, "%s%s", n > 0 ? ", " : "", name);
}

int fleet_schema_init(PGconn *conn, const char *shown, struct fleet_schema_result *out,
                      struct es_err *err)
{
    int version;

    memset(out, 0, sizeof(*out));
    out->version_before = -1;
    for (;;) {
        if (fleet_db_exec(conn, shown, "starting a transaction", "BEGIN", err) < 0)
            return -ES_FLEET_DB;
        if (lock_and_read(conn, shown, &version, err) < 0)
            goto out_rollback;
        if (out->version_before < 0)
            out->version_before = version;
        out->version_after = version;
        if (version > (int)fleet_n_migrations) {
            es_fail(err, ES_FLEET_DB,
                    "fleet database %s: its schema is at version %d, newer than this espstation "
                    "knows (%d); nothing was changed: use the espstation that created it, or a "
                    "newer one",
                    shown, version, FLEET_SCHEMA_VERSION);
            goto out_rollback;
        }
        if (version == (int)fleet_n_migrations)
            /* Nothing to apply; the version table (if just created) is kept. */
            return fleet_db_exec(conn, shown, "committing", "COMMIT", err);
        if (apply(conn, shown, &fleet_migrations[version], err) < 0)
            goto out_rollback;
        if (fleet_db_exec(conn, shown, "committing", "COMMIT", err) < 0)
            return -ES_FLEET_DB;
        note_applied(out, fleet_migrations[version].name);
    }
out_rollback:
    rollback(conn);
    return -ES_FLEET_DB;
}
