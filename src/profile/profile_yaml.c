/* Reading libyaml's document tree: what a node is (YAML 1.1 null and boolean words included),
 * the walk over a mapping against its table of known keys (unknown, duplicate and misplaced keys,
 * with "did you mean"), and the typed readers of single values (string, word, number) with the
 * messages they give. What each key means is the business of the section files. */
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "profile_internal.h"

/* --- what a node is -------------------------------------------------------------------------- */

int profile_is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (!is_plain(n))
        return 0;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(text(n), nulls[i]) == 0)
            return 1;
    return 0;
}

int profile_yaml_bool(const yaml_node_t *n)
{
    static const char *const yes[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                      "True", "TRUE", "on",  "On",  "ON"};
    static const char *const no[] = {"n",     "N",     "no",  "No",  "NO", "false",
                                     "False", "FALSE", "off", "Off", "OFF"};

    if (!is_plain(n))
        return -1;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcmp(text(n), yes[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (strcmp(text(n), no[i]) == 0)
            return 0;
    return -1;
}

/* "a list", "a mapping", "empty": what a node is, for "X is Y; write Z" messages. */
const char *profile_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SCALAR_NODE: return profile_is_null(n) ? "empty" : "a single value";
    case YAML_NO_NODE: break;
    }
    return "empty";
}

char *profile_dup_str(struct walk *w, const char *s, struct profile_pos pos)
{
    char *copy = strdup(s);

    if (copy == NULL)
        profile_fail(w->err, w->path, pos, ES_NOMEM, "out of memory");
    return copy;
}

/* Edit distance, for "did you mean". Keys are short: a two-row table is enough. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[2][32];

    if (la >= 31 || lb >= 31)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *prev = row[(i - 1) & 1], *cur = row[i & 1];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    }
    return row[la & 1][lb];
}

/* "'a', 'b' or 'c'" into buf, with `first` (if one of them) moved to the front. */
static const char *or_list(char *buf, size_t cap, const char *const *words, size_t n,
                           const char *first)
{
    const char *order[16];
    size_t k = 0, used = 0;

    if (first != NULL)
        for (size_t i = 0; i < n; i++)
            if (strcmp(words[i], first) == 0)
                order[k++] = words[i];
    for (size_t i = 0; i < n && k < 16; i++)
        if (first == NULL || strcmp(words[i], first) != 0)
            order[k++] = words[i];
    buf[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == k ? " or " : ", ");
        int r = snprintf(buf + used, cap - used, "%s'%s'", sep, order[i]);
        if (r < 0 || (size_t)r >= cap - used)
            break;
        used += (size_t)r;
    }
    return buf;
}

/* "a, b, c" into buf. */
static const char *comma_list(char *buf, size_t cap, const char *const *words, size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int r = snprintf(buf + used, cap - used, "%s%s", i == 0 ? "" : ", ", words[i]);
        if (r < 0 || (size_t)r >= cap - used)
            break;
        used += (size_t)r;
    }
    return buf;
}

/* --- mappings with a table of known keys ------------------------------------------------------ */

int profile_walk_mapping(struct walk *w, const yaml_node_t *map, const char *where,
                         const char *const *keys, size_t nkeys, yaml_node_t **values,
                         yaml_node_t **key_nodes)
{
    for (size_t i = 0; i < nkeys; i++)
        values[i] = key_nodes[i] = NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, pr->value);
        size_t i, best = nkeys, best_d = 99;

        if (k->type != YAML_SCALAR_NODE)
            return profile_fail(w->err, w->path, node_pos(k), ES_PROFILE,
                                "a key in %s is %s; keys are plain words such as '%s'", where,
                                profile_kind(k), keys[0]);
        for (i = 0; i < nkeys; i++)
            if (strcmp(text(k), keys[i]) == 0)
                break;
        if (i < nkeys) {
            if (values[i] != NULL) {
                struct profile_pos first = node_pos(key_nodes[i]);
                return profile_fail(w->err, w->path, node_pos(k), ES_PROFILE,
                                    "duplicate key '%s' in %s (first at %d:%d); keep one of them",
                                    keys[i], where, first.line, first.col);
            }
            values[i] = v;
            key_nodes[i] = k;
            continue;
        }
        for (size_t j = 0; j < nkeys; j++) {
            size_t d = distance(text(k), keys[j]);
            if (d < best_d) {
                best_d = d;
                best = j;
            }
        }
        if (best < nkeys && best_d <= (strlen(keys[best]) > 4 ? 2u : 1u))
            return profile_fail(w->err, w->path, node_pos(k), ES_PROFILE,
                                "unknown key '%s' in %s; did you mean '%s'?", text(k), where,
                                keys[best]);
        const char *home = profile_key_home(text(k));
        if (home != NULL)
            return profile_fail(w->err, w->path, node_pos(k), ES_PROFILE,
                                "key '%s' does not belong in %s; it goes under %s", text(k), where,
                                home);
        char list[512];
        return profile_fail(w->err, w->path, node_pos(k), ES_PROFILE,
                            "unknown key '%s' in %s; the keys there are %s", text(k), where,
                            comma_list(list, sizeof(list), keys, nkeys));
    }
    return 0;
}

/* --- single values ------------------------------------------------------------------------- */

/* A free-form string (name, file, reports, serial ...): any non-empty single value. */
int profile_get_string(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                       char **out)
{
    if (n->type != YAML_SCALAR_NODE || profile_is_null(n) || text(n)[0] == '\0')
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "%s is %s; write %s", what,
                            n->type == YAML_SCALAR_NODE ? "empty" : profile_kind(n), example);
    *out = profile_dup_str(w, text(n), node_pos(n));
    return *out == NULL ? -(int)ES_NOMEM : 0;
}

/* One word out of words[]; *index receives its position. */
int profile_get_word(struct walk *w, const yaml_node_t *n, const char *what,
                     const char *const *words, size_t nwords, size_t *index)
{
    char list[512];
    int b;

    if (n->type != YAML_SCALAR_NODE || profile_is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "%s is %s; write %s", what,
                            profile_kind(n), or_list(list, sizeof(list), words, nwords, NULL));
    b = profile_yaml_bool(n);
    if (b >= 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is a YAML boolean (%s); write %s", what, text(n),
                            or_list(list, sizeof(list), words, nwords, b ? NULL : "none"));
    for (size_t i = 0; i < nwords; i++)
        if (strcmp(text(n), words[i]) == 0) {
            *index = i;
            return 0;
        }
    return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "%s '%s' is not one of %s", what,
                        text(n), comma_list(list, sizeof(list), words, nwords));
}

/* Decimal or 0x hex digits, the whole of s; values far past any range we accept saturate. */
static int parse_uint(const char *s, unsigned long long *out)
{
    int base = 10;
    size_t i = 0;
    unsigned long long v = 0;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (s[i] == '\0')
        return -1;
    for (; s[i] != '\0'; i++) {
        int d;
        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
            d = s[i] - 'a' + 10;
        else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
            d = s[i] - 'A' + 10;
        else
            return -1;
        if (v > (0xFFFFFFFFFFFFull - (unsigned)d) / (unsigned)base)
            v = 0xFFFFFFFFFFFFull; /* saturate: out of every range we accept */
        else
            v = v * (unsigned)base + (unsigned)d;
    }
    *out = v;
    return 0;
}

int profile_get_number(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                       unsigned long long *out)
{
    if (n->type != YAML_SCALAR_NODE || profile_is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a number such as %s", what, profile_kind(n), example);
    if (!is_plain(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is a quoted string ('%s'); write the number without quotes", what,
                            text(n));
    if (text(n)[0] == '-' && parse_uint(text(n) + 1, out) == 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s %s is negative; write a number such as %s", what, text(n), example);
    if (parse_uint(text(n), out) < 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s '%s' is not a number; write a decimal or 0x hex integer such as %s",
                            what, text(n), example);
    return 0;
}

int profile_get_ranged(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                       unsigned long long min, unsigned long long max, unsigned long long *out)
{
    int rc = profile_get_number(w, n, what, example, out);

    if (rc < 0)
        return rc;
    if (*out < min || *out > max)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s %s is out of range; write a value from %llu to %llu", what, text(n),
                            min, max);
    return 0;
}

int profile_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
