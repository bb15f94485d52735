/* Finding ports: the serial ports libserialport knows with their USB identity, and the ways
 * `run` chooses among them (a glob, or a USB identity), always in an order that keeps slot
 * numbers stable across reboots and replugs. Opening and I/O live in port.c and friends. */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libserialport.h>

#include "es/port.h"

int port_name_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            const char *ea, *eb;
            size_t la, lb;
            int c;

            while (*a == '0' && isdigit((unsigned char)a[1]))
                a++;
            while (*b == '0' && isdigit((unsigned char)b[1]))
                b++;
            for (ea = a; isdigit((unsigned char)*ea); ea++)
                ;
            for (eb = b; isdigit((unsigned char)*eb); eb++)
                ;
            la = (size_t)(ea - a);
            lb = (size_t)(eb - b);
            if (la != lb)
                return la < lb ? -1 : 1; /* the longer run (without leading zeros) is bigger */
            c = memcmp(a, b, la);
            if (c != 0)
                return c < 0 ? -1 : 1;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    if (*a == *b)
        return 0;
    return *a == '\0' ? -1 : 1;
}

/* "1-1.4": bus number, '-', then port numbers separated by '.'. */
static int is_usb_port_path(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0 || !isdigit((unsigned char)s[0]))
        return 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == n || s[i] != '-')
        return 0;
    i++;
    for (;;) {
        size_t start = i;

        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == start)
            return 0;
        if (i == n)
            return 1;
        if (s[i] != '.')
            return 0;
        i++;
    }
}

int port_location_from_sysfs(const char *devpath, char *out, size_t cap)
{
    const char *best = NULL, *s = devpath;
    size_t best_len = 0;

    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);

        if (is_usb_port_path(s, n)) {
            best = s;
            best_len = n;
        }
        s += n;
        if (*s == '/')
            s++;
    }
    if (best == NULL || best_len + 1 > cap)
        return -1;
    memcpy(out, best, best_len);
    out[best_len] = '\0';
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static void sysfs_location(const char *name, char *out, size_t cap, char *iface, size_t icap)
{
    const char *base = strrchr(name, '/');
    char link[PATH_MAX], real[PATH_MAX];

    out[0] = iface[0] = '\0';
    base = base ? base + 1 : name;
    if (snprintf(link, sizeof(link), "/sys/class/tty/%s/device", base) >= (int)sizeof(link))
        return;
    if (realpath(link, real) == NULL)
        return;
    if (port_location_from_sysfs(real, out, cap) < 0)
        out[0] = '\0';
    if (port_interface_from_sysfs(real, iface, icap) < 0)
        iface[0] = '\0';
}

static int info_cmp(const struct port_info *a, const struct port_info *b)
{
    int c;

    if ((a->location != NULL) != (b->location != NULL))
        return a->location != NULL ? -1 : 1;
    if (a->location != NULL) {
        c = port_name_cmp(a->location, b->location);
        if (c != 0)
            return c;
    }
    return port_name_cmp(a->name, b->name);
}

static int info_qsort_cmp(const void *a, const void *b)
{
    return info_cmp(a, b);
}

static int info_ptr_qsort_cmp(const void *a, const void *b)
{
    return info_cmp(*(const struct port_info *const *)a, *(const struct port_info *const *)b);
}

void port_sort(struct port_info *list, size_t n)
{
    if (n > 1)
        qsort(list, n, sizeof(*list), info_qsort_cmp);
}

void port_list_free(struct port_info *list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(list[i].name);
        free(list[i].description);
        free(list[i].serial);
        free(list[i].manufacturer);
        free(list[i].product);
        free(list[i].location);
        free(list[i].usb_interface);
    }
    free(list);
}

static int fill_info(struct port_info *pi, const struct sp_port *sp)
{
    char loc[64], iface[64];
    int vid, pid, bus, addr;

    pi->usb_vid = pi->usb_pid = pi->usb_bus = pi->usb_address = -1;
    pi->name = strdup(sp_get_port_name(sp));
    if (pi->name == NULL)
        return -1;
    pi->description = dup_or_null(sp_get_port_description(sp));
    switch (sp_get_port_transport(sp)) {
    case SP_TRANSPORT_USB: pi->transport = PORT_TRANSPORT_USB; break;
    case SP_TRANSPORT_BLUETOOTH: pi->transport = PORT_TRANSPORT_BLUETOOTH; break;
    case SP_TRANSPORT_NATIVE:
    default: pi->transport = PORT_TRANSPORT_NATIVE; break;
    }
    if (pi->transport == PORT_TRANSPORT_USB) {
        if (sp_get_port_usb_vid_pid(sp, &vid, &pid) == SP_OK) {
            pi->usb_vid = vid;
            pi->usb_pid = pid;
        }
        if (sp_get_port_usb_bus_address(sp, &bus, &addr) == SP_OK) {
            pi->usb_bus = bus;
            pi->usb_address = addr;
        }
        pi->serial = dup_or_null(sp_get_port_usb_serial(sp));
        pi->manufacturer = dup_or_null(sp_get_port_usb_manufacturer(sp));
        pi->product = dup_or_null(sp_get_port_usb_product(sp));
        sysfs_location(pi->name, loc, sizeof(loc), iface, sizeof(iface));
        pi->location = dup_or_null(loc);
        pi->usb_interface = dup_or_null(iface);
    }
    return 0;
}

int port_list(struct port_info **out, size_t *n, struct es_err *err)
{
    struct sp_port **ports = NULL;
    struct port_info *list;
    size_t count = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (sp_list_ports(&ports) != SP_OK) {
        char *msg = sp_last_error_message();

        rc = es_fail(err, ES_PORT_OPEN, "list serial ports: %s", msg ? msg : "failed");
        sp_free_error_message(msg);
        return rc;
    }
    while (ports[count] != NULL)
        count++;
    list = calloc(count ? count : 1, sizeof(*list));
    if (list == NULL) {
        rc = es_fail(err, ES_NOMEM, "list serial ports: out of memory");
        goto out_free_ports;
    }
    for (size_t i = 0; i < count; i++) {
        if (fill_info(&list[i], ports[i]) < 0) {
            port_list_free(list, count);
            rc = es_fail(err, ES_NOMEM, "list serial ports: out of memory");
            goto out_free_ports;
        }
    }
    port_sort(list, count);
    *out = list;
    *n = count;
out_free_ports:
    sp_free_port_list(ports);
    return rc;
}

static int parse_hex16(const char *s, size_t n, int *out)
{
    int v = 0;

    if (n == 0 || n > 4)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return -1;
        v = v * 16 +
            (isdigit((unsigned char)s[i]) ? s[i] - '0' : tolower((unsigned char)s[i]) - 'a' + 10);
    }
    *out = v;
    return 0;
}

int port_match_parse_usb(const char *text, struct port_match *m, struct es_err *err)
{
    const char *colon = strchr(text, ':');
    int vid, pid;

    if (colon == NULL || parse_hex16(text, (size_t)(colon - text), &vid) < 0 ||
        parse_hex16(colon + 1, strlen(colon + 1), &pid) < 0)
        return es_fail(err, ES_USAGE,
                       "USB id '%s' is not VID:PID in hex, e.g. 10c4:ea60 (CP210x) or "
                       "1a86:7523 (CH340)",
                       text);
    m->usb_vid = vid;
    m->usb_pid = pid;
    return 0;
}

static int matches(const struct port_info *pi, const struct port_match *m)
{
    if (m->usb_vid >= 0 && pi->usb_vid != m->usb_vid)
        return 0;
    if (m->usb_pid >= 0 && pi->usb_pid != m->usb_pid)
        return 0;
    if (m->serial != NULL && (pi->serial == NULL || strcmp(pi->serial, m->serial) != 0))
        return 0;
    if (m->location != NULL && (pi->location == NULL || strcmp(pi->location, m->location) != 0))
        return 0;
    return 1;
}

void port_names_free(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void describe_match(const struct port_match *m, char *buf, size_t cap)
{
    int len = 0;

    buf[0] = '\0';
    if (m->usb_vid >= 0 || m->usb_pid >= 0)
        len += snprintf(buf + len, cap - (size_t)len, " usb %04x:%04x", (unsigned)m->usb_vid,
                        (unsigned)m->usb_pid);
    if (m->serial != NULL && (size_t)len < cap)
        len += snprintf(buf + len, cap - (size_t)len, " serial '%s'", m->serial);
    if (m->location != NULL && (size_t)len < cap)
        snprintf(buf + len, cap - (size_t)len, " location '%s'", m->location);
    if (buf[0] == '\0')
        snprintf(buf, cap, " any USB identity");
}

int port_select(const struct port_info *list, size_t n, const struct port_match *m, char ***names,
                size_t *count, struct es_err *err)
{
    const struct port_info **hits;
    char **out;
    char what[1024];
    size_t k = 0;

    *names = NULL;
    *count = 0;
    hits = calloc(n ? n : 1, sizeof(*hits));
    if (hits == NULL)
        return es_fail(err, ES_NOMEM, "select ports: out of memory");
    for (size_t i = 0; i < n; i++)
        if (matches(&list[i], m))
            hits[k++] = &list[i];
    if (k == 0) {
        free(hits);
        describe_match(m, what, sizeof(what));
        return es_fail(err, ES_PORT_OPEN,
                       "no serial port matches%s (%zu ports seen); check the bench is plugged in "
                       "('espstation ports' lists ports with their USB identity)",
                       what, n);
    }
    qsort(hits, k, sizeof(*hits), info_ptr_qsort_cmp);
    out = calloc(k, sizeof(*out));
    if (out == NULL) {
        free(hits);
        return es_fail(err, ES_NOMEM, "select ports: out of memory");
    }
    for (size_t i = 0; i < k; i++) {
        out[i] = strdup(hits[i]->name);
        if (out[i] == NULL) {
            port_names_free(out, k);
            free(hits);
            return es_fail(err, ES_NOMEM, "select ports: out of memory");
        }
    }
    free(hits);
    *names = out;
    *count = k;
    return 0;
}

static int name_qsort_cmp(const void *a, const void *b)
{
    return port_name_cmp(*(char *const *)a, *(char *const *)b);
}

/* A serial port is a character device: a tty, a pty, or a symlink to one (/dev/serial/by-id/...,
 * espsim's ttySIM<i>). Sockets (espsim's ttySIM<i>.ctl), regular files and directories that a
 * glob also matches are not ports (issue 11 #7). */
static int is_char_device(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

int port_glob(const char *pattern, char ***names, size_t *count, struct es_err *err)
{
    glob_t g;
    char **out;
    size_t k = 0;
    int rc, wild = strpbrk(pattern, "*?[") != NULL;

    *names = NULL;
    *count = 0;
    rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH && !wild) {
        out = calloc(1, sizeof(*out)); /* a plain name: port_open will say what is wrong */
        if (out == NULL || (out[0] = strdup(pattern)) == NULL) {
            free(out);
            return es_fail(err, ES_NOMEM, "expand '%s': out of memory", pattern);
        }
        *names = out;
        *count = 1;
        return 0;
    }
    if (rc == GLOB_NOMATCH)
        return es_fail(err, ES_PORT_OPEN,
                       "no port matches '%s'; check the bench is plugged in ('espstation ports' "
                       "lists serial ports)",
                       pattern);
    if (rc != 0)
        return es_fail(err, rc == GLOB_NOSPACE ? ES_NOMEM : ES_PORT_OPEN,
                       "expand '%s': glob failed (%s)", pattern,
                       rc == GLOB_NOSPACE ? "out of memory" : "read error");
    out = calloc(g.gl_pathc, sizeof(*out));
    if (out == NULL) {
        globfree(&g);
        return es_fail(err, ES_NOMEM, "expand '%s': out of memory", pattern);
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        /* A name given without wildcards is taken as it is; port_open says what is wrong. */
        if (wild && !is_char_device(g.gl_pathv[i]))
            continue;
        out[k] = strdup(g.gl_pathv[i]);
        if (out[k] == NULL) {
            port_names_free(out, k);
            globfree(&g);
            return es_fail(err, ES_NOMEM, "expand '%s': out of memory", pattern);
        }
        k++;
    }
    if (k == 0) {
        rc = es_fail(err, ES_PORT_OPEN,
                     "no port matches '%s': the %zu files it matches are not serial devices; "
                     "check the pattern ('espstation ports' lists serial ports)",
                     pattern, g.gl_pathc);
        free(out);
        globfree(&g);
        return rc;
    }
    qsort(out, k, sizeof(*out), name_qsort_cmp);
    *names = out;
    *count = k;
    globfree(&g);
    return 0;
}

/* What makes two port names the same board: the device number of a character device (a symlink
 * and its target, two symlinks to one pty), else the canonical path, else the name as given. For
 * socket:// the name up to any ?ctl= option. */
struct port_identity {
    int is_dev;
    dev_t rdev;
    char *key;
};

static int identify(const char *name, struct port_identity *id)
{
    struct stat st;
    char *q;

    memset(id, 0, sizeof(*id));
    if (strncmp(name, "socket://", 9) == 0) {
        id->key = strdup(name);
        if (id->key != NULL && (q = strchr(id->key, '?')) != NULL)
            *q = '\0';
    } else if (stat(name, &st) == 0 && S_ISCHR(st.st_mode)) {
        id->is_dev = 1;
        id->rdev = st.st_rdev;
        id->key = realpath(name, NULL);
        if (id->key == NULL)
            id->key = strdup(name);
    } else {
        id->key = realpath(name, NULL);
        if (id->key == NULL)
            id->key = strdup(name);
    }
    return id->key != NULL ? 0 : -1;
}

int port_check_distinct(char *const *names, size_t n, struct es_err *err)
{
    struct port_identity *ids = calloc(n ? n : 1, sizeof(*ids));
    int rc = 0;

    if (ids == NULL)
        return es_fail(err, ES_NOMEM, "compare ports: out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (identify(names[i], &ids[i]) < 0) {
            rc = es_fail(err, ES_NOMEM, "compare ports: out of memory");
            break;
        }
        for (size_t j = 0; j < i; j++) {
            int same = ids[i].is_dev && ids[j].is_dev ? ids[i].rdev == ids[j].rdev
                                                      : strcmp(ids[i].key, ids[j].key) == 0;
            if (!same)
                continue;
            if (strcmp(names[i], names[j]) == 0)
                rc = es_fail(err, ES_USAGE,
                             "port %s is given twice; two slots on one board would both fail: "
                             "give each port once",
                             names[i]);
            else
                rc = es_fail(err, ES_USAGE,
                             "ports %s and %s are the same %s (%s); two slots on one board would "
                             "both fail: give each port once",
                             names[j], names[i], ids[i].is_dev ? "device" : "port", ids[i].key);
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i].key);
    free(ids);
    return rc;
}
