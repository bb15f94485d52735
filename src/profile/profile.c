/* Profile text or file to struct profile: the entry points. libyaml builds the document tree;
 * this file sets the defaults, reports YAML syntax errors with their position, hands the root to
 * the key table (profile_keys.c) and frees what was built. It also holds the rule across the
 * profiles of one run. Rules that need the images or the board live in profile_check.c. */
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
/* One profile in a message about the profile set: a path (PATH_MAX), its position and chip. */
#define CLAIM_MAX (4096 + 64)

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
    rc = profile_parse_root(&w, root);
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
    profile_boot_check_free(p->boot_check);
    free(p->name);
    free(p->reports);
    free(p->publish);
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
