/* A blocking connection to the fleet database for the `db` and `fleet` commands, and the one
 * way their database errors become a message: "fleet database USER@HOST/DB: WHAT: REASON", the
 * URL shown without its password and libpq's reason made one line. */
#include <stdio.h>
#include <string.h>

#include "es/fleet_db.h"

/* libpq's messages span lines ("...failed: No such file or directory\n\tIs the server running
 * locally...?") and may end in a newline: one line for a log or a terminal, a line break
 * becoming "; " and any other run of white space one space. */
static void one_line(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    int gap = 0; /* 0 none, 1 a space, 2 a line break, pending until the next word */

    for (const char *p = in != NULL ? in : ""; *p != '\0' && n + 3 < cap; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            if (n > 0 && gap < 2)
                gap = *p == '\n' ? 2 : 1;
            continue;
        }
        if (gap == 2)
            out[n++] = ';';
        if (gap > 0)
            out[n++] = ' ';
        gap = 0;
        out[n++] = *p;
    }
    if (cap > 0)
        out[n] = '\0';
}

/* The server's NOTICEs ("relation ... already exists, skipping") are for a console, not for
 * these commands' output. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The server's own words for a failed statement: its message, then its detail and hint, without
 * the "LINE 1: ... ^" excerpt of the statement, which is ours and not the reader's. Empty when
 * res carries no message from the server (the connection broke). */
static void server_reason(const PGresult *res, char *out, size_t cap)
{
    static const int fields[] = {PG_DIAG_MESSAGE_PRIMARY, PG_DIAG_MESSAGE_DETAIL,
                                 PG_DIAG_MESSAGE_HINT};
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; res != NULL && i < sizeof(fields) / sizeof(fields[0]) && n < cap; i++) {
        const char *text = PQresultErrorField(res, fields[i]);

        if (text != NULL && text[0] != '\0')
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? "; " : "", text);
    }
}

int fleet_db_fail(struct es_err *err, PGconn *conn, const PGresult *res, const char *shown,
                  const char *what)
{
    char reason[1024], text[1024];

    server_reason(res, text, sizeof(text));
    if (text[0] == '\0' && res != NULL)
        snprintf(text, sizeof(text), "%s", PQresultErrorMessage(res));
    if (text[0] == '\0' && conn != NULL)
        snprintf(text, sizeof(text), "%s", PQerrorMessage(conn));
    one_line(text, reason, sizeof(reason));
    if (reason[0] == '\0')
        snprintf(reason, sizeof(reason), "no reason given by libpq");
    return es_fail(err, ES_FLEET_DB, "fleet database %s: %s: %s", shown, what, reason);
}

PGconn *fleet_db_connect(const char *url, const char *app_name, char *shown, size_t shown_cap,
                         struct es_err *err)
{
    /* Later keywords override the URL's (expand_dbname): connect_timeout comes first so that a
     * URL's own wins; application_name so the server's log says who is asking, and UTF-8 text
     * whatever the database's encoding, as JSON needs. */
    const char *const keys[] = {"connect_timeout", "dbname", "application_name", "client_encoding",
                                NULL};
    const char *const values[] = {"10", url, app_name, "UTF8", NULL};
    PGconn *conn;

    if (fleet_url_display(url, shown, shown_cap, err) < 0) {
        /* libpq's reason is cut before any quoted text (it may be the password): drop the
         * dangling ": " that leaves. */
        size_t n = strlen(err->msg);

        while (n > 0 && (err->msg[n - 1] == ' ' || err->msg[n - 1] == ':'))
            err->msg[--n] = '\0';
        err->code = ES_USAGE;
        return NULL;
    }
    conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL) {
        es_fail(err, ES_NOMEM, "fleet database %s: out of memory", shown);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        fleet_db_fail(err, conn, NULL, shown, "cannot connect");
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, on_notice, NULL);
    return conn;
}

int fleet_db_exec(PGconn *conn, const char *shown, const char *what, const char *sql,
                  struct es_err *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = fleet_db_fail(err, conn, res, shown, what);
    PQclear(res);
    return rc;
}
