/* What a port name means before anything is opened: the parts of socket://HOST:PORT[?ctl=/path]
 * for the TCP transport, and the syntax check `run` does on every name (port_check_name). Pure
 * string work: no I/O, no libuv, no other file of src/port. */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>

#include "port_internal.h"

int port_sockname_split(const char *name, char **host, char **service, char **ctl,
                        struct es_err *err)
{
    const char *s = name + strlen(PORT_SOCKET_PREFIX);
    const char *q = strchr(s, '?');
    const char *hp_end = q ? q : s + strlen(s);
    const char *colon, *host_start = s, *host_end;
    unsigned long number = 0;

    *host = *service = *ctl = NULL;
    if (*s == '[') { /* [::1]:5000 */
        host_start = s + 1;
        host_end = memchr(s, ']', (size_t)(hp_end - s));
        if (host_end == NULL || host_end[1] != ':')
            goto bad;
        colon = host_end + 1;
    } else {
        colon = NULL;
        for (const char *c = s; c < hp_end; c++)
            if (*c == ':')
                colon = c;
        if (colon == NULL)
            goto bad;
        host_end = colon;
    }
    if (host_end == host_start || colon + 1 >= hp_end)
        goto bad;
    for (const char *c = colon + 1; c < hp_end; c++) {
        if (*c < '0' || *c > '9')
            goto bad;
        if (number <= 65535)
            number = number * 10 + (unsigned long)(*c - '0');
    }
    if (number == 0 || number > 65535)
        return es_fail(err, ES_PORT_OPEN,
                       "port %s: the TCP port number %.*s is not from 1 to 65535", name,
                       (int)(hp_end - colon - 1), colon + 1);
    if (q != NULL && (strncmp(q, "?ctl=", 5) != 0 || q[5] == '\0'))
        return es_fail(err, ES_PORT_OPEN,
                       "port %s: unknown option '%s'; the only one is ?ctl=/path/to/socket", name,
                       q);
    *host = strndup(host_start, (size_t)(host_end - host_start));
    *service = strndup(colon + 1, (size_t)(hp_end - colon - 1));
    *ctl = q != NULL ? strdup(q + 5) : NULL;
    if (*host == NULL || *service == NULL || (q != NULL && *ctl == NULL)) {
        free(*host);
        free(*service);
        free(*ctl);
        *host = *service = *ctl = NULL;
        return es_fail(err, ES_NOMEM, "port %s: out of memory", name);
    }
    return 0;
bad:
    return es_fail(err, ES_PORT_OPEN,
                   "port %s: expected socket://HOST:PORT[?ctl=/path], e.g. "
                   "socket://127.0.0.1:5000",
                   name);
}

int port_check_name(const char *name, struct es_err *err)
{
    char *host, *service, *ctl;
    int rc;

    if (name == NULL || name[0] == '\0')
        return es_fail(err, ES_USAGE,
                       "an empty port name; give a device such as /dev/ttyUSB0 "
                       "or socket://HOST:PORT");
    if (strncmp(name, PORT_SOCKET_PREFIX, strlen(PORT_SOCKET_PREFIX)) != 0)
        return 0;
    rc = port_sockname_split(name, &host, &service, &ctl, err);
    if (rc < 0) {
        if (err != NULL && err->code == ES_PORT_OPEN)
            err->code = ES_USAGE;
        return rc == -(int)ES_PORT_OPEN ? -(int)ES_USAGE : rc;
    }
    free(host);
    free(service);
    free(ctl);
    return 0;
}
