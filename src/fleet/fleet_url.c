/* A database URL made fit to show: libpq parses it (both the URI and the key=value form, with
 * its own rules for escapes and defaults), and the display is rebuilt from the parts that are
 * not secret, so no spelling of a password (user:pw@, ?password=, password=) can leak into a
 * message, a journal line or a report. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
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

/* Whether the n bytes at word occur in url as a password: after "password=" (key=value text or
 * a URI's query), or between "user:" and "@" in a URI. */
static int word_is_password(const char *word, size_t n, const char *url)
{
    const char *p, *scheme = strstr(url, "://");

    if (n == 0)
        return 0;
    for (p = url; (p = strstr(p, "password=")) != NULL; p++)
        if (strncmp(p + strlen("password="), word, n) == 0)
            return 1;
    if (scheme != NULL) {
        const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?"), *at = NULL;

        for (p = auth; p < end; p++)
            if (*p == '@')
                at = p;
        p = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (p != NULL && (size_t)(at - p - 1) >= n && memmem(p + 1, (size_t)(at - p - 1), word, n))
            return 1;
    }
    return 0;
}

/* Whether word may be shown: a libpq keyword, a lone character ("=", "]"), or the name of an
 * option the URL spells (NAME= in key=value text, ?NAME= or &NAME= in a URI), and in no case a
 * piece of the password. Anything else libpq quotes may be a password typed where a keyword
 * belongs. */
static int word_is_safe(const char *word, size_t n, const char *url)
{
    PQconninfoOption *defaults;
    int safe = n <= 1;

    for (const char *p = url; !safe && (p = strstr(p, "=")) != NULL; p++) {
        const char *start = p;

        while (start > url && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
            start--;
        safe = (size_t)(p - start) == n && strncmp(start, word, n) == 0;
    }
    defaults = safe ? NULL : PQconndefaults();
    for (const PQconninfoOption *o = defaults; o != NULL && o->keyword != NULL && !safe; o++)
        safe = strlen(o->keyword) == n && strncmp(o->keyword, word, n) == 0;
    PQconninfoFree(defaults);
    return safe && !word_is_password(word, n, url);
}

/* libpq's reason for refusing url, on one line, with each quoted word that is not safe to show
 * (word_is_safe) replaced by "...": 'missing "=" after "password"' stays as it is, while a
 * quoted piece of the URL itself does not. */
static void redact_reason(const char *why, const char *url, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = why; *p != '\0' && *p != '\n' && n + 1 < cap; p++) {
        const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;

        if (end != NULL) {
            size_t len = (size_t)(end - p - 1);
            int keep = word_is_safe(p + 1, len, url);
            int w =
                snprintf(out + n, cap - n, "\"%.*s\"", keep ? (int)len : 3, keep ? p + 1 : "...");

            n = w < 0 || (size_t)w >= cap - n ? cap - 1 : n + (size_t)w;
            p = end;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
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
        char reason[256];

        redact_reason(why != NULL ? why : "out of memory", url != NULL ? url : "", reason,
                      sizeof(reason));
        PQfreemem(why);
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
