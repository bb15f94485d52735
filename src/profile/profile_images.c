/* The images list of a profile: each entry's offset (4 KiB aligned, below the loaders' 16 MiB),
 * its file (resolved next to the profile) and its pinned SHA-256. Only the text is read here;
 * loading and hashing the files is profile_check.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "profile_internal.h"

const char *const profile_image_keys[3] = {"offset", "file", "sha256"};

static int parse_sha256(struct walk *w, const yaml_node_t *n, const char *what, uint8_t out[32])
{
    const char *s;
    size_t len;

    if (n->type != YAML_SCALAR_NODE || profile_is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write the 64 hex digits that sha256sum prints for the file",
                            what, profile_kind(n));
    s = text(n);
    len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (profile_hexval(s[i]) < 0)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "%s has '%c' at character %zu, which is not a hex digit; write "
                                "the 64 hex digits that sha256sum prints for the file",
                                what, s[i], i + 1);
    if (len != 64)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s has %zu hex digits; a SHA-256 has 64 (as sha256sum prints it)",
                            what, len);
    for (size_t i = 0; i < 32; i++)
        out[i] = (uint8_t)(profile_hexval(s[2 * i]) << 4 | profile_hexval(s[2 * i + 1]));
    return 0;
}

/* The directory part of the profile path, for resolving image files; "" for a bare name. */
static char *resolve(struct walk *w, const char *file, struct profile_pos pos)
{
    const char *slash = strrchr(w->path, '/');
    size_t dlen = slash == NULL ? 0 : (size_t)(slash - w->path) + 1;
    char *out;

    if (file[0] == '/' || dlen == 0)
        return profile_dup_str(w, file, pos);
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
    yaml_node_t *v[PROFILE_COUNT(profile_image_keys)], *k[PROFILE_COUNT(profile_image_keys)];
    char where[32], what[48], lo[16], hi[16];
    unsigned long long off;
    int rc;

    snprintf(where, sizeof(where), "images[%zu]", index);
    img->pos = node_pos(n);
    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a mapping with offset, file and sha256", where,
                            profile_kind(n));
    rc = profile_walk_mapping(w, n, where, profile_image_keys, PROFILE_COUNT(profile_image_keys), v,
                              k);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < PROFILE_COUNT(profile_image_keys); i++)
        if (v[i] == NULL)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "%s has no %s; each image needs offset, file and sha256", where,
                                profile_image_keys[i]);

    snprintf(what, sizeof(what), "%s.offset", where);
    img->offset_pos = node_pos(v[0]);
    rc = profile_get_number(w, v[0], what, "0x10000", &off);
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
    rc = profile_get_string(w, v[1], what, "the image path, relative to the profile file",
                            &img->file);
    if (rc < 0)
        return rc;
    img->path = resolve(w, img->file, img->file_pos);
    if (img->path == NULL)
        return -(int)ES_NOMEM;

    snprintf(what, sizeof(what), "%s.sha256", where);
    img->sha256_pos = node_pos(v[2]);
    return parse_sha256(w, v[2], what, img->sha256);
}

int profile_parse_images(struct walk *w, const yaml_node_t *n)
{
    size_t count;
    int rc;

    w->p->images_pos = node_pos(n);
    if (n->type != YAML_SEQUENCE_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "images is %s; write a list of {offset, file, sha256}, one '- ' entry "
                            "per image",
                            profile_kind(n));
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
