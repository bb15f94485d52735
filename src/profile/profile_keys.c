/* The keys of a profile and what each one means: the top-level key table (one row per key: its
 * word, its kind of value, where the value goes), the flash and reset sections, the chip, the
 * words each key accepts and their names for reports. The images and ports lists have files of
 * their own; reading single values is profile_yaml.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "es/chip.h"
#include "es/fleet.h"
#include "profile_internal.h"

/* --- words, and the flash and reset sections ----------------------------------------------------
 */

/* The words each key accepts; for a key with an enum in es/profile.h, in the enum's order. */
static const char *const erase_words[] = {"none", "all", "regions"};
static const char *const verify_words[] = {"md5", "none"};
static const char *const duplicate_mac_words[] = {"fail", "warn"};
static const char *const loader_words[] = {"stub", "rom"};
static const char *const before_words[] = {"auto", "none"};
static const char *const after_words[] = {"hard", "none"};
static const char *const mode_words[] = {"qio", "qout", "dio", "dout", "keep"};
static const char *const freq_words[] = {"keep", "80m", "40m", "26m", "20m"};

static const char *const flash_keys[] = {"mode", "freq", "size"};
static const char *const reset_keys[] = {"before", "after"};

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
    if (n->type != YAML_SCALAR_NODE || profile_is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE, "chip is %s; write one of %s",
                            profile_kind(n), list);
    b = profile_yaml_bool(n);
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
    yaml_node_t *v[PROFILE_COUNT(flash_keys)], *k[PROFILE_COUNT(flash_keys)];
    size_t i;
    int rc;

    f->pos = node_pos(n);
    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "flash is %s; write a mapping such as {mode: dio, freq: 40m, size: "
                            "detect}",
                            profile_kind(n));
    rc = profile_walk_mapping(w, n, "flash", flash_keys, PROFILE_COUNT(flash_keys), v, k);
    if (rc < 0)
        return rc;
    if (v[0] != NULL) {
        f->mode_pos = node_pos(v[0]);
        rc = profile_get_word(w, v[0], "flash.mode", mode_words, PROFILE_COUNT(mode_words), &i);
        if (rc < 0)
            return rc;
        f->mode = mode_words[i];
    }
    if (v[1] != NULL) {
        f->freq_pos = node_pos(v[1]);
        rc = profile_get_word(w, v[1], "flash.freq", freq_words, PROFILE_COUNT(freq_words), &i);
        if (rc < 0)
            return rc;
        f->freq = freq_words[i];
    }
    if (v[2] != NULL) {
        const char *names[PROFILE_COUNT(size_words)];
        for (i = 0; i < PROFILE_COUNT(size_words); i++)
            names[i] = size_words[i].name;
        f->size_pos = node_pos(v[2]);
        rc = profile_get_word(w, v[2], "flash.size", names, PROFILE_COUNT(names), &i);
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
    yaml_node_t *v[PROFILE_COUNT(reset_keys)], *k[PROFILE_COUNT(reset_keys)];
    size_t i;
    int rc;

    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "reset is %s; write a mapping such as {before: auto, after: hard}",
                            profile_kind(n));
    rc = profile_walk_mapping(w, n, "reset", reset_keys, PROFILE_COUNT(reset_keys), v, k);
    if (rc < 0)
        return rc;
    if (v[0] != NULL) {
        w->p->reset_before_pos = node_pos(v[0]);
        rc = profile_get_word(w, v[0], "reset.before", before_words, PROFILE_COUNT(before_words),
                              &i);
        if (rc < 0)
            return rc;
        w->p->reset_before = (enum profile_reset_before)i;
    }
    if (v[1] != NULL) {
        w->p->reset_after_pos = node_pos(v[1]);
        rc = profile_get_word(w, v[1], "reset.after", after_words, PROFILE_COUNT(after_words), &i);
        if (rc < 0)
            return rc;
        w->p->reset_after = (enum profile_reset_after)i;
    }
    return 0;
}

/* publish: a PostgreSQL URL, parsed here by libpq's own parser so that a malformed one stops
 * the run before any board, at its line and column (never quoting the password). */
static int parse_publish(struct walk *w, const yaml_node_t *n)
{
    char shown[256];
    struct es_err why;
    int rc;

    w->p->publish_pos = node_pos(n);
    free(w->p->publish);
    w->p->publish = NULL;
    rc = profile_get_string(
        w, n, "publish", "a database URL such as postgresql://station@db/factory", &w->p->publish);
    if (rc < 0)
        return rc;
    if (fleet_url_display(w->p->publish, shown, sizeof(shown), &why) < 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "publish: %s; write a URL such as postgresql://station@db/factory",
                            why.msg);
    return 0;
}

/* --- the top level ---------------------------------------------------------------------------- */

/* The top-level keys, one row each: X(ID, "key", how its value is read). The rows are in the
 * order messages list the keys and values are read: with two bad values, the earlier row's is
 * reported, and images comes last so that a profile's settings are checked before its list.
 * How a value is read, each also recording p->FIELD_pos for later messages:
 *   KEY_STRING(FIELD, example)                   a non-empty string, replacing p->FIELD
 *   KEY_NUMBER(FIELD, type, example, min, max)   a plain integer in [min, max]
 *   KEY_WORD(FIELD, type, words)                 one of words[]; p->FIELD is its index
 *   KEY_SECTION(reader)                          reader(w, node): a value with its own rules */
#define PROFILE_TOP_KEYS(X)                                                                        \
    X(NAME, "name", KEY_STRING(name, "a name for reports, such as nodemcu-micropython"))           \
    X(CHIP, "chip", KEY_SECTION(parse_chip))                                                       \
    X(BAUD, "baud", KEY_NUMBER(baud, uint32_t, "115200", PROFILE_BAUD_MIN, PROFILE_BAUD_MAX))      \
    X(FLASH_BAUD, "flash_baud",                                                                    \
      KEY_NUMBER(flash_baud, uint32_t, "921600", PROFILE_BAUD_MIN, PROFILE_BAUD_MAX))              \
    X(FLASH, "flash", KEY_SECTION(parse_flash))                                                    \
    X(ERASE, "erase", KEY_WORD(erase, enum profile_erase, erase_words))                            \
    X(VERIFY, "verify", KEY_WORD(verify, enum profile_verify, verify_words))                       \
    X(DUPLICATE_MAC, "duplicate_mac",                                                              \
      KEY_WORD(duplicate_mac, enum profile_duplicate_mac, duplicate_mac_words))                    \
    X(LOADER, "loader", KEY_WORD(loader, enum profile_loader, loader_words))                       \
    X(RESET, "reset", KEY_SECTION(parse_reset))                                                    \
    X(RETRIES, "retries", KEY_NUMBER(retries, int, "3", 0, PROFILE_RETRIES_MAX))                   \
    X(PORTS, "ports", KEY_SECTION(profile_parse_ports))                                            \
    X(REPORTS, "reports", KEY_STRING(reports, "a directory such as reports"))                      \
    X(PUBLISH, "publish", KEY_SECTION(parse_publish))                                              \
    X(BOOT_CHECK, "boot_check", KEY_SECTION(profile_parse_boot_check))                             \
    X(IMAGES, "images", KEY_SECTION(profile_parse_images))

#define KEY_STRING(field, example)                                                                 \
    w->p->field##_pos = node_pos(n);                                                               \
    free(w->p->field); /* the default */                                                           \
    w->p->field = NULL;                                                                            \
    return profile_get_string(w, n, key, example, &w->p->field);

#define KEY_NUMBER(field, type, example, min, max)                                                 \
    unsigned long long num;                                                                        \
    int rc;                                                                                        \
    w->p->field##_pos = node_pos(n);                                                               \
    rc = profile_get_ranged(w, n, key, example, min, max, &num);                                   \
    if (rc == 0)                                                                                   \
        w->p->field = (type)num;                                                                   \
    return rc;

#define KEY_WORD(field, type, words)                                                               \
    size_t i;                                                                                      \
    int rc;                                                                                        \
    w->p->field##_pos = node_pos(n);                                                               \
    rc = profile_get_word(w, n, key, words, PROFILE_COUNT(words), &i);                             \
    if (rc == 0)                                                                                   \
        w->p->field = (type)i;                                                                     \
    return rc;

#define KEY_SECTION(reader)                                                                        \
    (void)key;                                                                                     \
    return reader(w, n);

/* One reader per row: static int read_NAME(struct walk *w, const yaml_node_t *n) ... */
#define X(id, word, how)                                                                           \
    static int read_##id(struct walk *w, const yaml_node_t *n)                                     \
    {                                                                                              \
        const char *key = word;                                                                    \
        how                                                                                        \
    }
PROFILE_TOP_KEYS(X)
#undef X

enum top_key {
#define X(id, word, how) TOP_##id,
    PROFILE_TOP_KEYS(X)
#undef X
        TOP_KEY_COUNT
};

static const char *const top_keys[TOP_KEY_COUNT] = {
#define X(id, word, how) word,
    PROFILE_TOP_KEYS(X)
#undef X
};

static int (*const top_readers[TOP_KEY_COUNT])(struct walk *w, const yaml_node_t *n) = {
#define X(id, word, how) read_##id,
    PROFILE_TOP_KEYS(X)
#undef X
};

int profile_parse_root(struct walk *w, const yaml_node_t *root)
{
    yaml_node_t *v[TOP_KEY_COUNT], *k[TOP_KEY_COUNT];
    int rc;

    if (root->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(root), ES_PROFILE,
                            "the profile is %s; write a mapping of keys such as chip:, flash: "
                            "and images:",
                            profile_kind(root));
    rc = profile_walk_mapping(w, root, "the top level", top_keys, TOP_KEY_COUNT, v, k);
    if (rc < 0)
        return rc;
    if (v[TOP_IMAGES] == NULL)
        return profile_fail(w->err, w->path, node_pos(root), ES_PROFILE,
                            "the profile has no images; add images: with a list of {offset, "
                            "file, sha256}");
    for (size_t i = 0; i < TOP_KEY_COUNT; i++) {
        if (v[i] == NULL)
            continue; /* absent: the default set by profile_parse stays */
        rc = top_readers[i](w, v[i]);
        if (rc < 0)
            return rc;
    }
    /* The boot check watches the firmware the run reset starts; without that reset the board
     * stays in its loader and the check could only fail, on every board. */
    if (w->p->boot_check != NULL && w->p->reset_after == PROFILE_RESET_AFTER_NONE)
        return profile_fail(w->err, w->path, w->p->boot_check->pos, ES_PROFILE,
                            "boot_check needs the board reset into its firmware, and reset.after "
                            "is none (%d:%d); write after: hard, or remove boot_check",
                            w->p->reset_after_pos.line, w->p->reset_after_pos.col);
    return 0;
}

const char *profile_key_home(const char *key)
{
    static const struct {
        const char *const *keys;
        size_t n;
        const char *where;
    } levels[] = {
        {flash_keys, PROFILE_COUNT(flash_keys), "flash"},
        {reset_keys, PROFILE_COUNT(reset_keys), "reset"},
        {profile_image_keys, PROFILE_COUNT(profile_image_keys), "each entry of images"},
        {profile_port_keys, PROFILE_COUNT(profile_port_keys), "an entry of ports"},
        {top_keys, PROFILE_COUNT(top_keys), "the top level"},
        {profile_boot_keys, PROFILE_COUNT(profile_boot_keys), "boot_check"},
    };

    for (size_t l = 0; l < PROFILE_COUNT(levels); l++)
        for (size_t i = 0; i < levels[l].n; i++)
            if (strcmp(key, levels[l].keys[i]) == 0)
                return levels[l].where;
    return NULL;
}

/* --- names for reports and logs -----------------------------------------------------------------
 */

const char *profile_erase_name(enum profile_erase e)
{
    return (unsigned)e < PROFILE_COUNT(erase_words) ? erase_words[e] : "unknown";
}

const char *profile_verify_name(enum profile_verify v)
{
    return (unsigned)v < PROFILE_COUNT(verify_words) ? verify_words[v] : "unknown";
}

const char *profile_loader_name(enum profile_loader l)
{
    return (unsigned)l < PROFILE_COUNT(loader_words) ? loader_words[l] : "unknown";
}

const char *profile_reset_before_name(enum profile_reset_before b)
{
    return (unsigned)b < PROFILE_COUNT(before_words) ? before_words[b] : "unknown";
}

const char *profile_reset_after_name(enum profile_reset_after a)
{
    return (unsigned)a < PROFILE_COUNT(after_words) ? after_words[a] : "unknown";
}
