/* The boot_check section of a profile: what the firmware must print after the hard reset, and
 * the optional send/reply exchange with it. Patterns are compiled here, when the profile loads,
 * so that a bad one is an error at its file:line:column and never a surprise on the line.
 * Running the check is the session's business (src/session/session_boot.c). */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "profile_internal.h"

const char *const profile_boot_keys[5] = {"baud", "expect", "send", "reply", "timeout"};

/* A duration: digits and a unit, ms, s or min ("10s", "500ms", "2min"). */
static int get_duration(struct walk *w, const yaml_node_t *n, const char *what, uint32_t *out_ms)
{
    static const struct {
        const char *unit;
        unsigned long long ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"min", 60000}};
    const char *t;
    unsigned long long v = 0;
    size_t i = 0;

    if (n->type != YAML_SCALAR_NODE || profile_is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a duration such as 10s or 500ms", what,
                            profile_kind(n));
    t = text(n);
    while (t[i] >= '0' && t[i] <= '9' && v < 1000000000ull)
        v = v * 10 + (unsigned long long)(t[i++] - '0');
    for (size_t u = 0; i > 0 && u < PROFILE_COUNT(units); u++) {
        if (strcmp(t + i, units[u].unit) != 0)
            continue;
        v *= units[u].ms;
        if (v < PROFILE_BOOT_TIMEOUT_MIN_MS || v > PROFILE_BOOT_TIMEOUT_MAX_MS)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "%s %s is out of range; write a duration from %ums to %umin", what,
                                t, PROFILE_BOOT_TIMEOUT_MIN_MS,
                                PROFILE_BOOT_TIMEOUT_MAX_MS / 60000u);
        *out_ms = (uint32_t)v;
        return 0;
    }
    return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                        "%s '%s' is not a duration; write a number and a unit (ms, s or min) "
                        "such as 10s or 500ms",
                        what, t);
}

/* One pattern: a non-empty string without NUL bytes, compiled with REG_EXTENDED into re. */
static int get_pattern(struct walk *w, const yaml_node_t *n, const char *what, char **out,
                       regex_t *re)
{
    char why[256];
    int rc;

    if (n->type != YAML_SCALAR_NODE || profile_is_null(n) || text(n)[0] == '\0')
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a POSIX extended regex such as \"MicroPython "
                            "v1\\\\.\"",
                            what, n->type == YAML_SCALAR_NODE ? "empty" : profile_kind(n));
    if (strlen(text(n)) != n->data.scalar.length)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s holds a NUL byte, which a regex cannot match; remove the \\0",
                            what);
    rc = regcomp(re, text(n), REG_EXTENDED);
    if (rc != 0) {
        regerror(rc, re, why, sizeof(why));
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s '%s' is not a POSIX extended regex: %s; put a backslash before "
                            "( ) [ ] { } . * + ? | ^ $ to match them as text",
                            what, text(n), why);
    }
    *out = profile_dup_str(w, text(n), node_pos(n));
    if (*out == NULL) {
        regfree(re);
        return -(int)ES_NOMEM;
    }
    return 0;
}

static int parse_expect(struct walk *w, struct profile_boot_check *bc, const yaml_node_t *n)
{
    const yaml_node_t *one[1];
    const yaml_node_t *const *items = one;
    size_t count = 1;

    bc->expect_pos = node_pos(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        items = NULL;
    } else {
        one[0] = n; /* a single pattern is a list of one */
    }
    if (count > PROFILE_BOOT_EXPECT_MAX)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "boot_check.expect has %zu patterns; at most %d are allowed", count,
                            PROFILE_BOOT_EXPECT_MAX);
    bc->expect = calloc(count + 1, sizeof(*bc->expect));
    bc->expect_re = calloc(count + 1, sizeof(*bc->expect_re));
    bc->expect_pos_each = calloc(count + 1, sizeof(*bc->expect_pos_each));
    if (bc->expect == NULL || bc->expect_re == NULL || bc->expect_pos_each == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item =
            items != NULL ? items[i]
                          : yaml_document_get_node(w->doc, n->data.sequence.items.start[i]);
        char what[48];
        int rc;

        snprintf(what, sizeof(what), "boot_check.expect[%zu]", i);
        bc->expect_pos_each[i] = node_pos(item);
        rc = get_pattern(w, item, what, &bc->expect[i], &bc->expect_re[i]);
        if (rc < 0)
            return rc;
        bc->n_expect++;
    }
    return 0;
}

static int parse_send(struct walk *w, struct profile_boot_check *bc, const yaml_node_t *n)
{
    size_t len;

    bc->send_pos = node_pos(n);
    if (n->type != YAML_SCALAR_NODE || profile_is_null(n) || n->data.scalar.length == 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "boot_check.send is %s; write the text to send in double quotes, "
                            "such as \"print(6*7)\\r\\n\"",
                            n->type == YAML_SCALAR_NODE ? "empty" : profile_kind(n));
    len = n->data.scalar.length;
    if (len > PROFILE_BOOT_SEND_MAX)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "boot_check.send is %zu bytes; at most %d are sent", len,
                            PROFILE_BOOT_SEND_MAX);
    bc->send = malloc(len + 1);
    if (bc->send == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_NOMEM, "out of memory");
    memcpy(bc->send, n->data.scalar.value, len); /* NUL bytes included: "\0" is YAML too */
    bc->send[len] = '\0';
    bc->send_len = len;
    return 0;
}

int profile_parse_boot_check(struct walk *w, const yaml_node_t *n)
{
    yaml_node_t *v[PROFILE_COUNT(profile_boot_keys)], *k[PROFILE_COUNT(profile_boot_keys)];
    struct profile_boot_check *bc;
    unsigned long long num;
    int rc;

    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "boot_check is %s; write a mapping such as {expect: [\"MicroPython "
                            "v1\\\\.\"], timeout: 10s}",
                            profile_kind(n));
    rc = profile_walk_mapping(w, n, "boot_check", profile_boot_keys,
                              PROFILE_COUNT(profile_boot_keys), v, k);
    if (rc < 0)
        return rc;
    bc = calloc(1, sizeof(*bc));
    if (bc == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_NOMEM, "out of memory");
    w->p->boot_check = bc; /* owned by the profile from here: profile_free frees what is built */
    bc->pos = node_pos(n);
    bc->baud = PROFILE_DEFAULT_BAUD;
    bc->timeout_ms = PROFILE_BOOT_TIMEOUT_MS;
    if (v[0] != NULL) {
        bc->baud_pos = node_pos(v[0]);
        rc = profile_get_ranged(w, v[0], "boot_check.baud", "115200", PROFILE_BAUD_MIN,
                                PROFILE_BAUD_MAX, &num);
        if (rc < 0)
            return rc;
        bc->baud = (uint32_t)num;
    }
    if (v[1] != NULL && (rc = parse_expect(w, bc, v[1])) < 0)
        return rc;
    if (v[2] != NULL && (rc = parse_send(w, bc, v[2])) < 0)
        return rc;
    if (v[3] != NULL) {
        bc->reply_pos = node_pos(v[3]);
        rc = get_pattern(w, v[3], "boot_check.reply", &bc->reply, &bc->reply_re);
        if (rc < 0)
            return rc;
        if (bc->send == NULL)
            return profile_fail(w->err, w->path, node_pos(k[3]), ES_PROFILE,
                                "boot_check.reply comes after send, and there is no send; add "
                                "send: with the text that makes the firmware answer");
    }
    if (v[4] != NULL) {
        bc->timeout_pos = node_pos(v[4]);
        rc = get_duration(w, v[4], "boot_check.timeout", &bc->timeout_ms);
        if (rc < 0)
            return rc;
    }
    if (bc->n_expect == 0 && bc->send == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "boot_check checks nothing; add expect: with the patterns the "
                            "firmware prints when it boots, or send: and reply:");
    return 0;
}

void profile_boot_check_free(struct profile_boot_check *bc)
{
    if (bc == NULL)
        return;
    for (size_t i = 0; i < bc->n_expect; i++) {
        regfree(&bc->expect_re[i]);
        free(bc->expect[i]);
    }
    free(bc->expect);
    free(bc->expect_re);
    free(bc->expect_pos_each);
    if (bc->reply != NULL) {
        regfree(&bc->reply_re);
        free(bc->reply);
    }
    free(bc->send);
    free(bc);
}

/* Text with C escapes for what is not printable, for `espstation check`: "print(6*7)\r\n". */
static void print_escaped(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\r')
            fputs("\\r", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

void profile_print_boot_check(const struct profile *p, FILE *f)
{
    const struct profile_boot_check *bc = p->boot_check;

    if (bc == NULL) {
        fprintf(f, "boot_check  none: the firmware is not watched after the reset (default)\n");
        return;
    }
    fprintf(f, "boot_check  at %u baud%s, within %u ms%s\n", (unsigned)bc->baud,
            bc->baud_pos.line > 0 ? "" : " (default)", (unsigned)bc->timeout_ms,
            bc->timeout_pos.line > 0 ? "" : " (default)");
    for (size_t i = 0; i < bc->n_expect; i++)
        fprintf(f, "  expect[%zu] /%s/\n", i, bc->expect[i]);
    if (bc->send != NULL) {
        fprintf(f, "  send      \"");
        print_escaped(f, bc->send, bc->send_len);
        fprintf(f, "\"\n");
    }
    if (bc->reply != NULL)
        fprintf(f, "  reply     /%s/\n", bc->reply);
}
