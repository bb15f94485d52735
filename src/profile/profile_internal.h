/* The private interface between the files of src/profile and nothing else: the message format
 * every profile error uses, the walk over libyaml's document tree and its typed value readers
 * (profile_yaml.c), the readers of each section (profile_keys.c, profile_images.c,
 * profile_ports.c), and the checks profile_check.c provides to profile.c. */
#ifndef ES_PROFILE_INTERNAL_H
#define ES_PROFILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

#include "es/err.h"
#include "es/profile.h"

#define PROFILE_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* 16 MiB of 4 KiB-aligned regions cannot hold more images than this. */
#define PROFILE_IMAGES_MAX 4096
#define PROFILE_PORTS_MAX  1024

/* One parse in progress: the file name for messages, the document being walked, the profile
 * being filled in (owned by profile_parse) and where a failure is reported. */
struct walk {
    const char *path;
    yaml_document_t *doc;
    struct profile *p;
    struct es_err *err;
};

/* Fills err with code and "PATH:LINE:COL: " + the formatted text; a position of {0, 0} (a
 * default) cites the file alone. Returns -(int)code. */
int profile_fail(struct es_err *err, const char *path, struct profile_pos pos, enum es_code code,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* --- nodes (profile_yaml.c) ------------------------------------------------------------------- */

/* libyaml counts lines and columns from 0; messages count from 1. */
static inline struct profile_pos mark_pos(yaml_mark_t m)
{
    struct profile_pos pos = {(int)m.line + 1, (int)m.column + 1};
    return pos;
}

static inline struct profile_pos node_pos(const yaml_node_t *n)
{
    return mark_pos(n->start_mark);
}

/* The text of a scalar node; only for YAML_SCALAR_NODE. */
static inline const char *text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static inline int is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML 1.1 null: an empty plain value, '~' or null. */
int profile_is_null(const yaml_node_t *n);

/* YAML 1.1 booleans (what libyaml users and PyYAML read as true/false). Returns 1 for a true
 * word, 0 for a false word, -1 for anything else. */
int profile_yaml_bool(const yaml_node_t *n);

/* "a list", "a mapping", "empty", "a single value": what a node is, for "X is Y; write Z". */
const char *profile_kind(const yaml_node_t *n);

/* strdup that reports ES_NOMEM at pos; NULL then. */
char *profile_dup_str(struct walk *w, const char *s, struct profile_pos pos);

/* The value of one hex digit, or -1. */
int profile_hexval(char c);

/* Walks the pairs of map, which must be a mapping. values[i] receives the value of keys[i] (or
 * NULL when absent) and key_nodes[i] its key. Unknown and duplicate keys are errors that suggest
 * the nearest key, or the level where a misplaced key belongs (profile_key_home). */
int profile_walk_mapping(struct walk *w, const yaml_node_t *map, const char *where,
                         const char *const *keys, size_t nkeys, yaml_node_t **values,
                         yaml_node_t **key_nodes);

/* A free-form string (name, file, reports, serial ...): any non-empty single value. *out is a
 * new copy. */
int profile_get_string(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                       char **out);

/* One word out of words[]; *index receives its position. */
int profile_get_word(struct walk *w, const yaml_node_t *n, const char *what,
                     const char *const *words, size_t nwords, size_t *index);

/* A plain (unquoted) decimal or 0x hex integer, not negative. */
int profile_get_number(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                       unsigned long long *out);

/* profile_get_number, then within [min, max]. */
int profile_get_ranged(struct walk *w, const yaml_node_t *n, const char *what, const char *example,
                       unsigned long long min, unsigned long long max, unsigned long long *out);

/* --- sections ------------------------------------------------------------------------------- */

/* The keys of each entry of images and of ports, in the order messages list them. */
extern const char *const profile_image_keys[3];
extern const char *const profile_port_keys[3];

/* Where a key of any level lives ("flash", "the top level", ...), or NULL for no known key; so
 * that a key written at the wrong level gets "it goes under X". (profile_keys.c) */
const char *profile_key_home(const char *key);

/* The top-level mapping: every key of the key table, read into w->p. (profile_keys.c) */
int profile_parse_root(struct walk *w, const yaml_node_t *root);

/* images: a list of {offset, file, sha256}. (profile_images.c) */
int profile_parse_images(struct walk *w, const yaml_node_t *n);

/* boot_check: {baud, expect, send, reply, timeout}, its patterns compiled. (profile_boot.c) */
extern const char *const profile_boot_keys[5];
int profile_parse_boot_check(struct walk *w, const yaml_node_t *n);
void profile_boot_check_free(struct profile_boot_check *bc);
/* The boot_check lines of `espstation check`. */
void profile_print_boot_check(const struct profile *p, FILE *f);

/* ports: a list of paths, globs or USB matches; a single one is a list of one.
 * (profile_ports.c) */
int profile_parse_ports(struct walk *w, const yaml_node_t *n);

/* --- checks (profile_check.c) ----------------------------------------------------------------- */

/* The chip-dependent checks of a parsed profile that need no image data: flash size and
 * frequency encodable for the chip, the loader's address limits, verify + loader + chip. */
int profile_check_settings(const struct profile *p, const struct chip *chip, struct es_err *err);

/* Loads, hashes and checks every image of a parsed profile (see profile_load). */
int profile_check_images(struct profile *p, struct es_err *err);

/* "0x1000" style text for an offset or size, into buf. Returns buf. */
const char *profile_hex(char buf[16], uint32_t v);

#endif
