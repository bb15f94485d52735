/* A database URL made fit to show: libpq parses it (both the URI and the key=value form, with
 * its own rules for escapes and defaults), and the display is rebuilt from the parts that are
 * not secret, so no spelling of a password (user:pw@, ?password=, password=) can leak into a
 * message, a journal line or a report. */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "es/fleet.h"

static const char *option(const PQconninfoOption *opts, const char *key)
{
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, key) == 0 && o->val != NULL && o->val[0] != '\0')
            return o->val;
    return NULL;
}

int fleet_url_display(const char *url, char *out, size_t cap, struct es_err *err)
{
    char *why = NULL;
    PQconninfoOption *opts;
    const char *user, *host, *port, *db;

    if (cap > 0)
        out[0] = '\0';
    opts = PQconninfoParse(url != NULL ? url : "", &why);
    if (opts == NULL) {
        /* libpq's message quotes the offending part, which may be the password: keep only its
         * first line up to any quote. */
        char reason[160] = "out of memory";

        if (why != NULL) {
            size_t n = strcspn(why, "\"\n");

            snprintf(reason, sizeof(reason), "%.*s", (int)n, why);
            PQfreemem(why);
        }
        return es_fail(err, ES_FLEET_DB, "the database URL is not valid: %s", reason);
    }
    user = option(opts, "user");
    host = option(opts, "host");
    if (host == NULL)
        host = option(opts, "hostaddr");
    port = option(opts, "port");
    db = option(opts, "dbname");
    snprintf(out, cap, "%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
             host ? host : "(default socket)", port ? ":" : "", port ? port : "",
             db ? db : (user ? user : ""));
    PQconninfoFree(opts);
    return 0;
}
