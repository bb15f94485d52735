/* Profile text to struct profile: libyaml builds the document tree, and this file walks it with
 * one table of known keys per mapping, checking every value's type, word and range as it goes
 * and keeping its position. Rules that need the images or the board live in profile_check.c. */
#include "es/profile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "es/chip.h"
#include "es/image.h"
#include "profile_internal.h"

/* A profile is a few hundred bytes; anything much larger is not one. */
#define PROFILE_TEXT_MAX (1024 * 1024)
/* 16 MiB of 4 KiB-aligned regions cannot hold more images than this. */
#define PROFILE_IMAGES_MAX 4096
#define PROFILE_PORTS_MAX  1024
/* One profile in a message about the profile set: a path (PATH_MAX), its position and chip. */
#define CLAIM_MAX (4096 + 64)

struct walk {
    const char *path;
    yaml_document_t *doc;
    struct profile *p;
    struct es_err *err;
};

/* --- messages, positions and small helpers --------------------------------------------------- */

int profile_fail(struct es_err *err, const char *path, struct profile_pos pos, enum es_code code,
                 const char *fmt, ...)
{
    va_list ap;

    /* The sentence first, then the position in front of it: es_err_prefix keeps both whole. */
    va_start(ap, fmt);
    es_vfail(err, code, fmt, ap);
    va_end(ap);
    if (err == NULL)
        return -(int)code;
    if (pos.line <= 0)
        return es_err_prefix(err, "%s", path);
    return es_err_prefix(err, "%s:%d:%d", path, pos.line, pos.col);
}

const char *profile_hex(char buf[16], uint32_t v)
{
    snprintf(buf, 16, "0x%x", (unsigned)v);
    return buf;
}

static struct profile_pos mark_pos(yaml_mark_t m)
{
    struct profile_pos pos = {(int)m.line + 1, (int)m.column + 1};
    return pos;
}

static struct profile_pos node_pos(const yaml_node_t *n)
{
    return mark_pos(n->start_mark);
}

static const char *text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML 1.1 null: an empty plain value, '~' or null. */
static int is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (!is_plain(n))
        return 0;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(text(n), nulls[i]) == 0)
            return 1;
    return 0;
}

/* YAML 1.1 booleans (what libyaml users and PyYAML read as true/false). Returns 1 for a true
 * word, 0 for a false word, -1 for anything else. */
static int yaml_bool(const yaml_node_t *n)
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
static const char *kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SCALAR_NODE: return is_null(n) ? "empty" : "a single value";
    case YAML_NO_NODE: break;
    }
    return "empty";
}

static char *dup_str(struct walk *w, const char *s, struct profile_pos pos)
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

/* Where each known key lives, so a key written at the wrong level gets "it belongs under X". */
static const char *const top_keys[] = {"name",    "chip",   "baud",    "flash_baud",   "flash",
                                       "erase",   "images", "verify",  "loader",       "reset",
                                       "retries", "ports",  "reports", "duplicate_mac"};
enum top_key {
    K_NAME,
    K_CHIP,
    K_BAUD,
    K_FLASH_BAUD,
    K_FLASH,
    K_ERASE,
    K_IMAGES,
    K_VERIFY,
    K_LOADER,
    K_RESET,
    K_RETRIES,
    K_PORTS,
    K_REPORTS,
    K_DUPLICATE_MAC,
    K_TOP_COUNT
};
static const char *const flash_keys[] = {"mode", "freq", "size"};
static const char *const reset_keys[] = {"before", "after"};
static const char *const image_keys[] = {"offset", "file", "sha256"};
static const char *const port_keys[] = {"usb", "serial", "location"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *belongs_under(const char *key)
{
    static const struct {
        const char *const *keys;
        size_t n;
        const char *where;
    } levels[] = {
        {flash_keys, COUNT(flash_keys), "flash"},
        {reset_keys, COUNT(reset_keys), "reset"},
        {image_keys, COUNT(image_keys), "each entry of images"},
        {port_keys, COUNT(port_keys), "an entry of ports"},
        {top_keys, COUNT(top_keys), "the top level"},
    };

    for (size_t l = 0; l < COUNT(levels); l++)
        for (size_t i = 0; i < levels[l].n; i++)
            if (strcmp(key, levels[l].keys[i]) == 0)
                return levels[l].where;
    return NULL;
}

/* Walks the pairs of map, which must be a mapping. values[i] receives the value of keys[i] (or
 * NULL when absent) and key_nodes[i] its key. Unknown and duplicate keys are errors. */
static int walk_mapping(struct walk *w, const yaml_node_t *map, const char *where,
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
                                kind(k), keys[0]);
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
        const char *home = belongs_under(text(k));
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

/* --- scalar values ------------------------------------------------------------------------------
 */

/* A free-form string (name, file, reports, serial ...): any non-empty single value. */
static int get_string(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                      char **out)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n) || text(n)[0] == '\0')
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "%s is %s; write %s", what,
                            n->type == YAML_SCALAR_NODE ? "empty" : kind(n), example);
    *out = dup_str(w, text(n), node_pos(n));
    return *out == NULL ? -(int)ES_NOMEM : 0;
}

/* One word out of words[]; *index receives its position. */
static int get_word(struct walk *w, const yaml_node_t *n, const char *what,
                    const char *const *words, size_t nwords, size_t *index)
{
    char list[512];
    int b;

    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "%s is %s; write %s", what,
                            kind(n), or_list(list, sizeof(list), words, nwords, NULL));
    b = yaml_bool(n);
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

/* A plain integer, decimal or 0x hex, in [min, max]. Returns 1 in *negative for "-N". */
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

static int get_number(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                      unsigned long long *out)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a number such as %s", what, kind(n), example);
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

static int get_ranged(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                      unsigned long long min, unsigned long long max, unsigned long long *out)
{
    int rc = get_number(w, n, what, example, out);

    if (rc < 0)
        return rc;
    if (*out < min || *out > max)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s %s is out of range; write a value from %llu to %llu", what, text(n),
                            min, max);
    return 0;
}

/* --- the sections ----------------------------------------------------------------------------- */

static const char *const erase_words[] = {"none", "all", "regions"};
static const char *const verify_words[] = {"md5", "none"};
static const char *const duplicate_mac_words[] = {"fail", "warn"};
static const char *const loader_words[] = {"stub", "rom"};
static const char *const before_words[] = {"auto", "none"};
static const char *const after_words[] = {"hard", "none"};
static const char *const mode_words[] = {"qio", "qout", "dio", "dout", "keep"};
static const char *const freq_words[] = {"keep", "80m", "40m", "26m", "20m"};

/* Sizes a profile may name; which of them a chip can encode is the chip table's business. */
static const struct {
    const char *name;
    uint32_t bytes;
} size_words[] = {
    {"keep", 0},          {"detect", 0},         {"256KB", 256u << 10}, {"512KB", 512u << 10},
    {"1MB", 1u << 20},    {"2MB", 2u << 20},     {"2MB-c1", 2u << 20},  {"4MB", 4u << 20},
    {"4MB-c1", 4u << 20}, {"8MB", 8u << 20},     {"16MB", 16u << 20},   {"32MB", 32u << 20},
    {"64MB", 64u << 20},  {"128MB", 128u << 20},
};

static int parse_chip(struct walk *w, const yaml_node_t *n)
{
    char list[512];
    int b;

    w->p->chip_pos = node_pos(n);
    snprintf(list, sizeof(list), "auto, %s", chip_names());
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "chip is %s; write one of %s",
                            kind(n), list);
    b = yaml_bool(n);
    if (b >= 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "chip is a YAML boolean (%s); write one of %s", text(n), list);
    if (strcmp(text(n), "auto") == 0) {
        w->p->chip = NULL;
        return 0;
    }
    w->p->chip = chip_by_name(text(n));
    if (w->p->chip == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "chip '%s' is not one of %s",
                            text(n), list);
    return 0;
}

static int parse_flash(struct walk *w, const yaml_node_t *n)
{
    struct profile_flash *f = &w->p->flash;
    yaml_node_t *v[COUNT(flash_keys)], *k[COUNT(flash_keys)];
    size_t i;
    int rc;

    f->pos = node_pos(n);
    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "flash is %s; write a mapping such as {mode: dio, freq: 40m, size: "
                            "detect}",
                            kind(n));
    rc = walk_mapping(w, n, "flash", flash_keys, COUNT(flash_keys), v, k);
    if (rc < 0)
        return rc;
    if (v[0] != NULL) {
        f->mode_pos = node_pos(v[0]);
        rc = get_word(w, v[0], "flash.mode", mode_words, COUNT(mode_words), &i);
        if (rc < 0)
            return rc;
        f->mode = mode_words[i];
    }
    if (v[1] != NULL) {
        f->freq_pos = node_pos(v[1]);
        rc = get_word(w, v[1], "flash.freq", freq_words, COUNT(freq_words), &i);
        if (rc < 0)
            return rc;
        f->freq = freq_words[i];
    }
    if (v[2] != NULL) {
        const char *names[COUNT(size_words)];
        for (i = 0; i < COUNT(size_words); i++)
            names[i] = size_words[i].name;
        f->size_pos = node_pos(v[2]);
        rc = get_word(w, v[2], "flash.size", names, COUNT(names), &i);
        if (rc < 0)
            return rc;
        f->size = size_words[i].name;
        f->size_bytes = size_words[i].bytes;
        f->size_kind = i == 0   ? PROFILE_SIZE_KEEP
                       : i == 1 ? PROFILE_SIZE_DETECT
                                : PROFILE_SIZE_BYTES;
    }
    return 0;
}

static int parse_reset(struct walk *w, const yaml_node_t *n)
{
    yaml_node_t *v[COUNT(reset_keys)], *k[COUNT(reset_keys)];
    size_t i;
    int rc;

    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "reset is %s; write a mapping such as {before: auto, after: hard}",
                            kind(n));
    rc = walk_mapping(w, n, "reset", reset_keys, COUNT(reset_keys), v, k);
    if (rc < 0)
        return rc;
    if (v[0] != NULL) {
        w->p->reset_before_pos = node_pos(v[0]);
        rc = get_word(w, v[0], "reset.before", before_words, COUNT(before_words), &i);
        if (rc < 0)
            return rc;
        w->p->reset_before = (enum profile_reset_before)i;
    }
    if (v[1] != NULL) {
        w->p->reset_after_pos = node_pos(v[1]);
        rc = get_word(w, v[1], "reset.after", after_words, COUNT(after_words), &i);
        if (rc < 0)
            return rc;
        w->p->reset_after = (enum profile_reset_after)i;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_sha256(struct walk *w, const yaml_node_t *n, const char *what, uint8_t out[32])
{
    const char *s;
    size_t len;

    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write the 64 hex digits that sha256sum prints for the file",
                            what, kind(n));
    s = text(n);
    len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (hexval(s[i]) < 0)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "%s has '%c' at character %zu, which is not a hex digit; write "
                                "the 64 hex digits that sha256sum prints for the file",
                                what, s[i], i + 1);
    if (len != 64)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s has %zu hex digits; a SHA-256 has 64 (as sha256sum prints it)",
                            what, len);
    for (size_t i = 0; i < 32; i++)
        out[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
    return 0;
}

/* The directory part of the profile path, for resolving image files; "" for a bare name. */
static char *resolve(struct walk *w, const char *file, struct profile_pos pos)
{
    const char *slash = strrchr(w->path, '/');
    size_t dlen = slash == NULL ? 0 : (size_t)(slash - w->path) + 1;
    char *out;

    if (file[0] == '/' || dlen == 0)
        return dup_str(w, file, pos);
    out = malloc(dlen + strlen(file) + 1);
    if (out == NULL) {
        profile_fail(w->err, w->path, pos, ES_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(out, w->path, dlen);
    strcpy(out + dlen, file);
    return out;
}

static int parse_image(struct walk *w, const yaml_node_t *n, size_t index)
{
    struct profile_image *img = &w->p->images[index];
    yaml_node_t *v[COUNT(image_keys)], *k[COUNT(image_keys)];
    char where[32], what[48], lo[16], hi[16];
    unsigned long long off;
    int rc;

    snprintf(where, sizeof(where), "images[%zu]", index);
    img->pos = node_pos(n);
    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a mapping with offset, file and sha256", where,
                            kind(n));
    rc = walk_mapping(w, n, where, image_keys, COUNT(image_keys), v, k);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < COUNT(image_keys); i++)
        if (v[i] == NULL)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "%s has no %s; each image needs offset, file and sha256", where,
                                image_keys[i]);

    snprintf(what, sizeof(what), "%s.offset", where);
    img->offset_pos = node_pos(v[0]);
    rc = get_number(w, v[0], what, "0x10000", &off);
    if (rc < 0)
        return rc;
    if (off >= PROFILE_OFFSET_LIMIT)
        return profile_fail(w->err, w->path, node_pos(v[0]), ES_PROFILE,
                            "%s %s is at or past 16 MiB, which the loaders cannot address; write "
                            "an offset below 0x1000000",
                            what, text(v[0]));
    if (off % PROFILE_SECTOR_BYTES != 0) {
        uint32_t down = (uint32_t)off & ~(PROFILE_SECTOR_BYTES - 1);
        uint32_t up = down + PROFILE_SECTOR_BYTES;
        if (up >= PROFILE_OFFSET_LIMIT)
            return profile_fail(w->err, w->path, node_pos(v[0]), ES_PROFILE,
                                "%s %s is not 4 KiB aligned; write %s", what, text(v[0]),
                                profile_hex(lo, down));
        return profile_fail(w->err, w->path, node_pos(v[0]), ES_PROFILE,
                            "%s %s is not 4 KiB aligned; write %s or %s", what, text(v[0]),
                            profile_hex(lo, down), profile_hex(hi, up));
    }
    img->offset = (uint32_t)off;

    snprintf(what, sizeof(what), "%s.file", where);
    img->file_pos = node_pos(v[1]);
    rc = get_string(w, v[1], what, "the image path, relative to the profile file", &img->file);
    if (rc < 0)
        return rc;
    img->path = resolve(w, img->file, img->file_pos);
    if (img->path == NULL)
        return -(int)ES_NOMEM;

    snprintf(what, sizeof(what), "%s.sha256", where);
    img->sha256_pos = node_pos(v[2]);
    return parse_sha256(w, v[2], what, img->sha256);
}

static int parse_images(struct walk *w, const yaml_node_t *n)
{
    size_t count;
    int rc;

    w->p->images_pos = node_pos(n);
    if (n->type != YAML_SEQUENCE_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "images is %s; write a list of {offset, file, sha256}, one '- ' entry "
                            "per image",
                            kind(n));
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "images is an empty list; add at least one {offset, file, sha256}");
    if (count > PROFILE_IMAGES_MAX)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "images has %zu entries; at most %d fit in 16 MiB", count,
                            PROFILE_IMAGES_MAX);
    w->p->images = calloc(count, sizeof(*w->p->images));
    if (w->p->images == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_NOMEM, "out of memory");
    w->p->n_images = count;
    for (size_t i = 0; i < count; i++) {
        rc = parse_image(w, yaml_document_get_node(w->doc, n->data.sequence.items.start[i]), i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Up to 4 hex digits, the whole of [s, e). */
static int parse_hex16(const char *s, const char *e, uint16_t *out)
{
    unsigned v = 0;

    if (e <= s || e - s > 4)
        return -1;
    for (; s < e; s++) {
        int d = hexval(*s);
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = (uint16_t)v;
    return 0;
}

static int parse_usb(struct walk *w, const yaml_node_t *n, const char *what,
                     struct profile_port *port)
{
    const char *s, *colon;

    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write VID:PID in hex, e.g. \"10c4:ea60\"", what, kind(n));
    s = text(n);
    colon = strchr(s, ':');
    if (colon == NULL || parse_hex16(s, colon, &port->usb_vid) < 0 ||
        parse_hex16(colon + 1, colon + 1 + strlen(colon + 1), &port->usb_pid) < 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s '%s' is not VID:PID; write two groups of up to 4 hex digits, e.g. "
                            "\"10c4:ea60\"",
                            what, s);
    port->has_usb = 1;
    return 0;
}

static int parse_port(struct walk *w, const yaml_node_t *n, size_t index)
{
    struct profile_port *port = &w->p->ports[index];
    yaml_node_t *v[COUNT(port_keys)], *k[COUNT(port_keys)];
    char where[32], what[48];
    int rc;

    snprintf(where, sizeof(where), "ports[%zu]", index);
    port->pos = node_pos(n);
    if (n->type == YAML_SCALAR_NODE)
        return get_string(w, n, where, "a port path or glob such as \"/dev/ttyUSB*\"", &port->path);
    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a path or glob, or a mapping with usb, serial or "
                            "location",
                            where, kind(n));
    rc = walk_mapping(w, n, where, port_keys, COUNT(port_keys), v, k);
    if (rc < 0)
        return rc;
    if (v[0] == NULL && v[1] == NULL && v[2] == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is an empty mapping; give usb: \"VID:PID\", serial or location",
                            where);
    if (v[0] != NULL) {
        snprintf(what, sizeof(what), "%s.usb", where);
        rc = parse_usb(w, v[0], what, port);
        if (rc < 0)
            return rc;
    }
    if (v[1] != NULL) {
        snprintf(what, sizeof(what), "%s.serial", where);
        rc = get_string(w, v[1], what, "the adapter's USB serial number", &port->serial);
        if (rc < 0)
            return rc;
    }
    if (v[2] != NULL) {
        snprintf(what, sizeof(what), "%s.location", where);
        rc = get_string(w, v[2], what, "a USB location such as \"1-1.4\"", &port->location);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ports is a list; a single path or a single mapping is taken as a list of one. */
static int parse_ports(struct walk *w, const yaml_node_t *n)
{
    size_t count = 1;
    int rc;

    w->p->ports_pos = node_pos(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (count == 0)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "ports is an empty list; list port paths or globs, or remove "
                                "ports to use the command line or every USB serial port");
        if (count > PROFILE_PORTS_MAX)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "ports has %zu entries; at most %d are accepted", count,
                                PROFILE_PORTS_MAX);
    } else if (is_null(n)) {
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "ports is empty; list port paths or globs such as [\"/dev/ttyUSB*\"], "
                            "or remove the key");
    }
    w->p->ports = calloc(count, sizeof(*w->p->ports));
    if (w->p->ports == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_NOMEM, "out of memory");
    w->p->n_ports = count;
    if (n->type != YAML_SEQUENCE_NODE)
        return parse_port(w, n, 0);
    for (size_t i = 0; i < count; i++) {
        rc = parse_port(w, yaml_document_get_node(w->doc, n->data.sequence.items.start[i]), i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The file name without directory and extension: "profiles/bench.yaml" -> "bench". */
static char *file_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot;
    size_t len;
    char *out;

    base = base == NULL ? path : base + 1;
    dot = strrchr(base, '.');
    len = dot == NULL || dot == base ? strlen(base) : (size_t)(dot - base);
    out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, base, len);
        out[len] = '\0';
    }
    return out;
}

static void set_defaults(struct profile *p)
{
    p->chip = NULL;
    p->baud = PROFILE_DEFAULT_BAUD;
    p->flash_baud = 0;
    p->flash.mode = "keep";
    p->flash.freq = "keep";
    p->flash.size = "keep";
    p->flash.size_kind = PROFILE_SIZE_KEEP;
    p->erase = PROFILE_ERASE_NONE;
    p->verify = PROFILE_VERIFY_MD5;
    p->duplicate_mac = PROFILE_DUP_MAC_FAIL;
    p->loader = PROFILE_LOADER_STUB;
    p->reset_before = PROFILE_RESET_BEFORE_AUTO;
    p->reset_after = PROFILE_RESET_AFTER_HARD;
    p->retries = PROFILE_DEFAULT_RETRIES;
}

static int parse_root(struct walk *w, const yaml_node_t *root)
{
    struct profile *p = w->p;
    yaml_node_t *v[K_TOP_COUNT], *k[K_TOP_COUNT];
    unsigned long long num;
    size_t i;
    int rc;

    if (root->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(root), ES_PROFILE,
                            "the profile is %s; write a mapping of keys such as chip:, flash: "
                            "and images:",
                            kind(root));
    rc = walk_mapping(w, root, "the top level", top_keys, K_TOP_COUNT, v, k);
    if (rc < 0)
        return rc;
    if (v[K_IMAGES] == NULL)
        return profile_fail(w->err, w->path, node_pos(root), ES_PROFILE,
                            "the profile has no images; add images: with a list of {offset, "
                            "file, sha256}");

    if (v[K_NAME] != NULL) {
        p->name_pos = node_pos(v[K_NAME]);
        free(p->name);
        p->name = NULL;
        rc = get_string(w, v[K_NAME], "name", "a name for reports, such as nodemcu-micropython",
                        &p->name);
        if (rc < 0)
            return rc;
    }
    if (v[K_CHIP] != NULL) {
        rc = parse_chip(w, v[K_CHIP]);
        if (rc < 0)
            return rc;
    }
    if (v[K_BAUD] != NULL) {
        p->baud_pos = node_pos(v[K_BAUD]);
        rc = get_ranged(w, v[K_BAUD], "baud", "115200", PROFILE_BAUD_MIN, PROFILE_BAUD_MAX, &num);
        if (rc < 0)
            return rc;
        p->baud = (uint32_t)num;
    }
    if (v[K_FLASH_BAUD] != NULL) {
        p->flash_baud_pos = node_pos(v[K_FLASH_BAUD]);
        rc = get_ranged(w, v[K_FLASH_BAUD], "flash_baud", "921600", PROFILE_BAUD_MIN,
                        PROFILE_BAUD_MAX, &num);
        if (rc < 0)
            return rc;
        p->flash_baud = (uint32_t)num;
    }
    if (v[K_FLASH] != NULL) {
        rc = parse_flash(w, v[K_FLASH]);
        if (rc < 0)
            return rc;
    }
    if (v[K_ERASE] != NULL) {
        p->erase_pos = node_pos(v[K_ERASE]);
        rc = get_word(w, v[K_ERASE], "erase", erase_words, COUNT(erase_words), &i);
        if (rc < 0)
            return rc;
        p->erase = (enum profile_erase)i;
    }
    if (v[K_VERIFY] != NULL) {
        p->verify_pos = node_pos(v[K_VERIFY]);
        rc = get_word(w, v[K_VERIFY], "verify", verify_words, COUNT(verify_words), &i);
        if (rc < 0)
            return rc;
        p->verify = (enum profile_verify)i;
    }
    if (v[K_DUPLICATE_MAC] != NULL) {
        p->duplicate_mac_pos = node_pos(v[K_DUPLICATE_MAC]);
        rc = get_word(w, v[K_DUPLICATE_MAC], "duplicate_mac", duplicate_mac_words,
                      COUNT(duplicate_mac_words), &i);
        if (rc < 0)
            return rc;
        p->duplicate_mac = (enum profile_duplicate_mac)i;
    }
    if (v[K_LOADER] != NULL) {
        p->loader_pos = node_pos(v[K_LOADER]);
        rc = get_word(w, v[K_LOADER], "loader", loader_words, COUNT(loader_words), &i);
        if (rc < 0)
            return rc;
        p->loader = (enum profile_loader)i;
    }
    if (v[K_RESET] != NULL) {
        rc = parse_reset(w, v[K_RESET]);
        if (rc < 0)
            return rc;
    }
    if (v[K_RETRIES] != NULL) {
        p->retries_pos = node_pos(v[K_RETRIES]);
        rc = get_ranged(w, v[K_RETRIES], "retries", "3", 0, PROFILE_RETRIES_MAX, &num);
        if (rc < 0)
            return rc;
        p->retries = (int)num;
    }
    if (v[K_PORTS] != NULL) {
        rc = parse_ports(w, v[K_PORTS]);
        if (rc < 0)
            return rc;
    }
    if (v[K_REPORTS] != NULL) {
        p->reports_pos = node_pos(v[K_REPORTS]);
        free(p->reports);
        p->reports = NULL;
        rc = get_string(w, v[K_REPORTS], "reports", "a directory such as reports", &p->reports);
        if (rc < 0)
            return rc;
    }
    return parse_images(w, v[K_IMAGES]);
}

/* libyaml's reader reports a byte offset instead of a mark; turn it into line:column. */
static struct profile_pos offset_pos(const char *textp, size_t len, size_t offset)
{
    struct profile_pos pos = {1, 1};

    for (size_t i = 0; i < offset && i < len; i++) {
        if (textp[i] == '\n') {
            pos.line++;
            pos.col = 1;
        } else {
            pos.col++;
        }
    }
    return pos;
}

static int yaml_error(struct walk *w, const yaml_parser_t *parser, const char *textp, size_t len)
{
    struct profile_pos pos;

    if (parser->error == YAML_MEMORY_ERROR)
        return profile_fail(w->err, w->path, (struct profile_pos){0, 0}, ES_NOMEM,
                            "out of memory while parsing YAML");
    if (parser->error == YAML_READER_ERROR) {
        pos = offset_pos(textp, len, parser->problem_offset);
        return profile_fail(w->err, w->path, pos, ES_PROFILE,
                            "not valid YAML text: %s; save the profile as UTF-8 text",
                            parser->problem != NULL ? parser->problem : "unreadable");
    }
    pos = mark_pos(parser->problem_mark);
    if (parser->context != NULL) {
        struct profile_pos cpos = mark_pos(parser->context_mark);
        return profile_fail(w->err, w->path, pos, ES_PROFILE,
                            "YAML syntax error: %s (%s at %d:%d); check indentation and quotes",
                            parser->problem, parser->context, cpos.line, cpos.col);
    }
    return profile_fail(w->err, w->path, pos, ES_PROFILE,
                        "YAML syntax error: %s; check indentation and quotes",
                        parser->problem != NULL ? parser->problem : "unknown");
}

int profile_parse(const char *path, const char *textp, size_t len, struct profile **out,
                  struct es_err *err)
{
    struct profile *p;
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    struct walk w = {path, &doc, NULL, err};
    yaml_node_t *root;
    int rc;

    *out = NULL;
    if (len > PROFILE_TEXT_MAX)
        return profile_fail(err, path, (struct profile_pos){0, 0}, ES_PROFILE,
                            "the file is %zu bytes, too large for a profile (at most %d)", len,
                            PROFILE_TEXT_MAX);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return es_fail(err, ES_NOMEM, "%s: out of memory", path);
    w.p = p;
    set_defaults(p);
    p->path = strdup(path);
    p->name = file_stem(path);
    p->reports = strdup(PROFILE_DEFAULT_REPORTS);
    if (p->path == NULL || p->name == NULL || p->reports == NULL) {
        rc = es_fail(err, ES_NOMEM, "%s: out of memory", path);
        goto out_free;
    }
    rc = es_sha256(textp, len, p->sha256, err);
    if (rc < 0)
        goto out_free;
    es_hex(p->sha256, sizeof(p->sha256), p->sha256_hex);

    if (!yaml_parser_initialize(&parser)) {
        rc = es_fail(err, ES_NOMEM, "%s: out of memory", path);
        goto out_free;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)textp, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_error(&w, &parser, textp, len);
        goto out_parser;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        rc = profile_fail(err, path, (struct profile_pos){1, 1}, ES_PROFILE,
                          "the profile is empty; it needs at least images: with a list of "
                          "{offset, file, sha256}");
        goto out_doc;
    }
    /* A second document would be silently ignored by a reader that stops at the first. */
    if (!yaml_parser_load(&parser, &extra)) {
        rc = yaml_error(&w, &parser, textp, len);
        goto out_doc;
    }
    if (yaml_document_get_root_node(&extra) != NULL) {
        rc = profile_fail(err, path, mark_pos(extra.start_mark), ES_PROFILE,
                          "a second YAML document starts here; a profile is one document, so "
                          "remove the '---' and what follows or move it to its own file");
        yaml_document_delete(&extra);
        goto out_doc;
    }
    yaml_document_delete(&extra);
    rc = parse_root(&w, root);
    if (rc < 0)
        goto out_doc;
    if (p->chip != NULL) {
        rc = profile_check_settings(p, p->chip, err);
        if (rc < 0)
            goto out_doc;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    *out = p;
    return 0;

out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
out_free:
    profile_free(p);
    return rc;
}

int profile_load(const char *path, struct profile **out, struct es_err *err)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL)
        return es_fail(err, ES_IO, "open %s: %s; check the profile path", path, strerror(errno));
    for (;;) {
        size_t got;
        if (len == cap) {
            char *grown;
            cap = cap == 0 ? 4096 : cap * 2;
            if (cap > PROFILE_TEXT_MAX + 1)
                cap = PROFILE_TEXT_MAX + 1;
            if (len == cap)
                break; /* too large: profile_parse says so */
            grown = realloc(buf, cap);
            if (grown == NULL) {
                fclose(f);
                free(buf);
                return es_fail(err, ES_NOMEM, "%s: out of memory", path);
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = es_fail(err, ES_IO, "read %s: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return rc;
    }
    fclose(f);
    rc = profile_parse(path, buf != NULL ? buf : "", len, out, err);
    free(buf);
    if (rc < 0)
        return rc;
    rc = profile_check_images(*out, err);
    if (rc < 0) {
        profile_free(*out);
        *out = NULL;
    }
    return rc;
}

void profile_free(struct profile *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_images; i++) {
        free(p->images[i].file);
        free(p->images[i].path);
        image_free(p->images[i].image);
    }
    free(p->images);
    for (size_t i = 0; i < p->n_ports; i++) {
        free(p->ports[i].path);
        free(p->ports[i].serial);
        free(p->ports[i].location);
    }
    free(p->ports);
    free(p->name);
    free(p->reports);
    free(p->path);
    free(p);
}

/* "path:line:col: chip: NAME" where the profile says chip, or "path (chip: auto by default)". */
static void chip_claim(const struct profile *p, char *buf, size_t cap)
{
    const char *chip = p->chip != NULL ? p->chip->name : "auto";

    if (p->chip_pos.line > 0)
        snprintf(buf, cap, "%s:%d:%d (chip: %s)", p->path, p->chip_pos.line, p->chip_pos.col, chip);
    else
        snprintf(buf, cap, "%s (chip: auto, the default)", p->path);
}

int profile_check_set(const struct profile *const *profiles, size_t n, struct es_err *err)
{
    char a[CLAIM_MAX], b[CLAIM_MAX];

    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            const struct profile *p = profiles[i], *q = profiles[j];

            if (p->chip != NULL && q->chip != NULL && p->chip != q->chip)
                continue;
            chip_claim(p, a, sizeof(a));
            chip_claim(q, b, sizeof(b));
            if (p->chip == NULL && q->chip == NULL)
                return es_fail(err, ES_PROFILE,
                               "profiles %s and %s both claim every chip; a board must have "
                               "exactly one profile: pass one of them, or name each one's chip",
                               a, b);
            if (p->chip == NULL || q->chip == NULL)
                return es_fail(err, ES_PROFILE,
                               "profiles %s and %s both claim %s (chip: auto takes every chip); "
                               "a board must have exactly one profile: pass the auto profile "
                               "alone, or name its chip",
                               a, b, (p->chip != NULL ? p->chip : q->chip)->name);
            return es_fail(err, ES_PROFILE,
                           "profiles %s and %s both claim %s; a board must have exactly one "
                           "profile: pass one of them",
                           a, b, p->chip->name);
        }
    }
    return 0;
}

const char *profile_hash(const struct profile *p)
{
    return p->sha256_hex;
}

const char *profile_erase_name(enum profile_erase e)
{
    return (unsigned)e < COUNT(erase_words) ? erase_words[e] : "unknown";
}

const char *profile_verify_name(enum profile_verify v)
{
    return (unsigned)v < COUNT(verify_words) ? verify_words[v] : "unknown";
}

const char *profile_loader_name(enum profile_loader l)
{
    return (unsigned)l < COUNT(loader_words) ? loader_words[l] : "unknown";
}

const char *profile_reset_before_name(enum profile_reset_before b)
{
    return (unsigned)b < COUNT(before_words) ? before_words[b] : "unknown";
}

const char *profile_reset_after_name(enum profile_reset_after a)
{
    return (unsigned)a < COUNT(after_words) ? after_words[a] : "unknown";
}
