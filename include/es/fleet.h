/* The fleet database (PostgreSQL): what every station and the `db`/`fleet` commands share. The
 * schema lives in src/fleet/sql/NNN-*.sql, one file per version, embedded in the binary. */
#ifndef ES_FLEET_H
#define ES_FLEET_H

#include <stddef.h>

#include "es/err.h"

/* The newest schema version this binary knows (the number of the last sql/NNN-*.sql). */
#define FLEET_SCHEMA_VERSION 1

/* url (a libpq URI, postgresql://user:pw@host/db?..., or key=value conninfo) as a person may
 * see it in a message, a journal line or a report: user@host:port/dbname, never the password.
 * Writes at most cap bytes (always terminated). Returns 0, or -ES_FLEET_DB with err set when
 * libpq cannot parse url (err names what is wrong, without the password). */
int fleet_url_display(const char *url, char *out, size_t cap, struct es_err *err);

#endif
