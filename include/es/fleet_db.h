/* The fleet database as the `db init` and `fleet` commands use it: a blocking libpq connection
 * (these commands run outside any event loop), the embedded schema and its migration, the time
 * window `fleet` reads, and the summary it prints. The station's asynchronous publisher shares
 * only the schema version (es/fleet.h) with this. */
#ifndef ES_FLEET_DB_H
#define ES_FLEET_DB_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "es/err.h"
#include "es/fleet.h"

/* Room for fleet_url_display()'s text. */
#define FLEET_URL_SHOWN_MAX 512

/* One schema file, src/fleet/sql/NNN-name.sql, embedded at build time (fleet_sql_embed.cmake):
 * fleet_migrations[i].version == i + 1, and the last is FLEET_SCHEMA_VERSION. */
struct fleet_migration {
    int version;      /* NNN */
    const char *name; /* "001-init" */
    const char *sql;  /* the file's text: statements to run in one transaction */
};
extern const struct fleet_migration fleet_migrations[];
extern const size_t fleet_n_migrations;

/* Connects to url (blocking, at most 10 s unless the URL sets connect_timeout) as application
 * app_name, after checking the URL parses. shown receives fleet_url_display(url) for messages.
 * Returns the connection (the caller PQfinish()es it), or NULL with err set: ES_USAGE when the
 * URL is not valid, ES_FLEET_DB when the server cannot be reached or refuses (err names shown
 * and libpq's reason on one line, never the password). */
PGconn *fleet_db_connect(const char *url, const char *app_name, char *shown, size_t shown_cap,
                         struct es_err *err);

/* Runs sql (no parameters, any number of statements); 0, or -ES_FLEET_DB with err naming
 * shown, what was being done and the server's reason. */
int fleet_db_exec(PGconn *conn, const char *shown, const char *what, const char *sql,
                  struct es_err *err);

/* Fills err with "fleet database SHOWN: WHAT: REASON", REASON being libpq's message made one
 * line (res's when res is not NULL, else the connection's). Returns -ES_FLEET_DB. */
int fleet_db_fail(struct es_err *err, PGconn *conn, const PGresult *res, const char *shown,
                  const char *what);

/* What fleet_schema_init() found and did. */
struct fleet_schema_result {
    int version_before; /* 0: no espstation_schema table, or an empty one */
    int version_after;
    char applied[256]; /* the names applied, ", "-separated ("001-init"); "" when none */
};

/* Brings the database to FLEET_SCHEMA_VERSION: creates espstation_schema if absent and applies
 * each missing sql/NNN-*.sql in its own transaction, recording its version there. Every step
 * holds a transaction-scoped advisory lock, so two stations running it at once apply each
 * version once. Returns 0, or -ES_FLEET_DB with err set (err names the file that failed, or a
 * database newer than this binary, which is left untouched). */
int fleet_schema_init(PGconn *conn, const char *shown, struct fleet_schema_result *out,
                      struct es_err *err);

/* Parses a `fleet --since/--until` time: "now", "today" (local midnight), "yesterday", a
 * relative "-N" followed by m, h, d or w (minutes, hours, days, weeks before now), a date
 * "YYYY-MM-DD" (local midnight) or a time "YYYY-MM-DDTHH:MM[:SS]" (a space for the T is
 * accepted), local unless it ends in "Z" or "+HH:MM"/"-HH:MM". now is the current time (a
 * parameter so that tests can pin it). Returns 0 with *out set, or -ES_USAGE with err saying
 * what is accepted. */
int fleet_when_parse(const char *text, time_t now, time_t *out, struct es_err *err);

/* What `fleet` reads: boards that ended in [since, until), optionally of one station and/or
 * one profile (NULL: all). */
struct fleet_filter {
    time_t since, until;
    const char *station;
    const char *profile;
};

/* Reads the summary in one read-only transaction (every number aggregated by SQL) and returns
 * it as a JSON document the caller owns (json_decref), or NULL with err set (ES_FLEET_DB, or
 * ES_NOMEM). The document's shape is the `fleet --json` output, documented in README.md:
 * {"database", "since", "until", "groups": [...], "duplicate_macs": [...]}. */
json_t *fleet_summary_read(PGconn *conn, const char *shown, const struct fleet_filter *filter,
                           struct es_err *err);

/* Prints the summary (fleet_summary_read()'s document) as aligned text, times in local time.
 * Returns 0, or -1 when writing to f failed. */
int fleet_text_print(const json_t *summary, FILE *f);

#endif
