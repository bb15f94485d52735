/* The run's payloads, prepared before the loop: which header settings each chip's profile can
 * need, one copy of each distinct byte string, and their zlib streams compressed on the thread
 * pool (an unpatched image in full, each patched variant from it, chunk by chunk). */
#include "station_payload.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "es/container_of.h"
#include "es/deflate.h"

struct payload_data {
    struct image_prepared prepared;
    struct image_deflate z;
    struct session_payload payload; /* what sessions borrow */
    struct payload_data *base;      /* the unpatched bytes this variant's stream is made from */
    int want_z;                     /* some board of the run writes it compressed */
    int rc;                         /* of compressing it, on the thread pool */
    struct es_err err;
    uv_work_t work;
    struct payload_data *next;
};

struct payload_key {
    const struct profile *profile;
    size_t index;
    enum chip_model model;
    struct image_flash_params params;
    struct payload_data *data; /* NULL: err says why it cannot be prepared */
    struct es_err err;
    struct payload_key *next;
};

static int params_equal(const struct image_flash_params *a, const struct image_flash_params *b)
{
    return a->mode == b->mode && a->freq == b->freq && a->size == b->size;
}

/* The profile a board of chip takes: the first whose chip is chip or auto (session.c). */
static const struct profile *profile_for(const struct profile *const *profiles, size_t n,
                                         const struct chip *chip)
{
    for (size_t i = 0; i < n; i++)
        if (profiles[i]->chip == NULL || profiles[i]->chip == chip)
            return profiles[i];
    return NULL;
}

/* The one payload_data holding prep's bytes: an existing one (prep is then freed), or prep
 * moved into a new one. NULL when out of memory (prep freed). */
static struct payload_data *intern(struct payload_set *ps, struct image_prepared *prep)
{
    struct payload_data *d;

    for (d = ps->data; d != NULL; d = d->next) {
        if (d->prepared.size == prep->size && d->prepared.offset == prep->offset &&
            memcmp(d->prepared.md5, prep->md5, 16) == 0 &&
            memcmp(d->prepared.data, prep->data, prep->size) == 0) {
            image_prepared_close(prep);
            return d;
        }
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        image_prepared_close(prep);
        return NULL;
    }
    d->prepared = *prep;
    d->payload.prepared = &d->prepared;
    d->next = ps->data;
    ps->data = d;
    ps->n_data++;
    return d;
}

static int add_key(struct payload_set *ps, const struct profile *p, size_t i,
                   const struct chip *chip, const struct image_flash_params *params, int want_z,
                   struct es_err *err)
{
    const struct profile_image *pi = &p->images[i];
    struct payload_key *k = calloc(1, sizeof(*k));
    struct image_prepared prep, base;

    if (k == NULL)
        return es_fail(err, ES_NOMEM, "out of memory preparing images");
    k->profile = p;
    k->index = i;
    k->model = chip->model;
    k->params = *params;
    k->next = ps->keys;
    ps->keys = k;
    ps->n_keys++;
    if (image_prepare(chip, pi->image->data, pi->image->size, pi->offset, params, &prep, &k->err) <
        0)
        return k->err.code == ES_NOMEM ? es_fail(err, ES_NOMEM, "%s", k->err.msg) : 0;
    k->data = intern(ps, &prep);
    if (k->data == NULL)
        return es_fail(err, ES_NOMEM, "out of memory preparing images");
    k->data->want_z |= want_z;
    if (!k->data->prepared.patched || k->data->base != NULL)
        return 0;
    /* The unpatched bytes, whose stream the variant's is made from. */
    if (image_prepare(chip, pi->image->data, pi->image->size, pi->offset, NULL, &base, err) < 0)
        return -(int)err->code;
    k->data->base = intern(ps, &base);
    if (k->data->base == NULL)
        return es_fail(err, ES_NOMEM, "out of memory preparing images");
    ps->n_variants++;
    return 0;
}

/* Every header setting a board of chip can get from p (session.c's settle_flash): mode and
 * frequency as the profile says, and the size as the profile says or, with detect, each size
 * code the chip's headers can hold. A setting the chip cannot take fails the board before it
 * asks for a payload, so it is left out. */
static int add_profile_chip(struct payload_set *ps, const struct profile *p,
                            const struct chip *chip, int want_z, struct es_err *err)
{
    struct image_flash_params params = {IMAGE_KEEP, IMAGE_KEEP, IMAGE_KEEP};
    const struct chip_flash_size *fs;
    uint8_t sizes[32], code;
    size_t n_sizes = 0;
    struct es_err ignored;
    int rc;

    if (strcmp(p->flash.mode, "keep") != 0) {
        if (chip_flash_mode_from_string(p->flash.mode, &code, &ignored) < 0)
            return 0;
        params.mode = code;
    }
    if (strcmp(p->flash.freq, "keep") != 0) {
        if (chip_flash_freq_from_string(chip, p->flash.freq, &code, &ignored) < 0)
            return 0;
        params.freq = code;
    }
    switch (p->flash.size_kind) {
    case PROFILE_SIZE_KEEP: sizes[n_sizes++] = 0; break;
    case PROFILE_SIZE_BYTES:
        if (chip_flash_size_from_bytes(chip, p->flash.size_bytes, &fs, &ignored) < 0)
            return 0;
        sizes[n_sizes++] = fs->code;
        break;
    case PROFILE_SIZE_DETECT:
        for (size_t s = 0; s < chip->flash_size_count && n_sizes < sizeof(sizes); s++) {
            size_t seen = 0;

            if (chip_flash_size_from_bytes(chip, chip->flash_sizes[s].bytes, &fs, &ignored) < 0)
                continue;
            while (seen < n_sizes && sizes[seen] != fs->code)
                seen++;
            if (seen == n_sizes)
                sizes[n_sizes++] = fs->code;
        }
        break;
    }
    for (size_t s = 0; s < n_sizes; s++) {
        params.size = p->flash.size_kind == PROFILE_SIZE_KEEP ? IMAGE_KEEP : sizes[s];
        for (size_t i = 0; i < p->n_images; i++) {
            if (p->images[i].image == NULL)
                continue;
            if ((rc = add_key(ps, p, i, chip, &params, want_z, err)) < 0)
                return rc;
        }
    }
    return 0;
}

static void on_compress(uv_work_t *w)
{
    struct payload_data *d = container_of(w, struct payload_data, work);

    if (d->base == NULL)
        d->rc =
            image_deflate(d->prepared.data, d->prepared.size, IMAGE_DEFLATE_CHUNK, &d->z, &d->err);
    else
        d->rc = image_deflate_variant(&d->base->z, d->base->prepared.data, d->prepared.data,
                                      d->prepared.size, &d->z, &d->err);
}

static void on_compressed(uv_work_t *w, int status)
{
    struct payload_data *d = container_of(w, struct payload_data, work);

    if (status < 0 && d->rc == 0)
        d->rc = es_fail(&d->err, ES_NOMEM, "compressing an image: %s", uv_strerror(status));
    if (d->rc == 0)
        d->payload.z = &d->z;
}

/* Compresses, on the thread pool and in parallel, every data with want_z whose base is (NULL:
 * unpatched images; else variants, once their bases are done). */
static int compress_round(struct payload_set *ps, int variants, struct es_err *err)
{
    uv_loop_t loop;
    int rc = 0;

    if (uv_loop_init(&loop) < 0)
        return es_fail(err, ES_NOMEM, "uv_loop_init failed preparing images");
    for (struct payload_data *d = ps->data; d != NULL; d = d->next) {
        if (!d->want_z || (d->base != NULL) != variants)
            continue;
        if (uv_queue_work(&loop, &d->work, on_compress, on_compressed) < 0) {
            on_compress(&d->work); /* no thread pool: here, then */
            on_compressed(&d->work, 0);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (struct payload_data *d = ps->data; d != NULL && rc == 0; d = d->next)
        if (d->want_z && (d->base != NULL) == variants && d->rc < 0)
            rc = es_fail(err, d->err.code, "%s", d->err.msg);
    return rc;
}

int payload_set_prepare(struct payload_set *ps, const struct profile *const *profiles,
                        size_t n_profiles, const struct stub_image *stubs, enum session_mode mode,
                        struct es_err *err)
{
    uint64_t t0 = uv_hrtime();
    int rc;

    memset(ps, 0, sizeof(*ps));
    ps->compress = mode == SESSION_FLASH;
    for (int m = 0; m < CHIP_MODEL_COUNT; m++) {
        const struct chip *chip = chip_by_model((enum chip_model)m);
        const struct profile *p = profile_for(profiles, n_profiles, chip);
        int want_z = mode == SESSION_FLASH && p != NULL && p->loader == PROFILE_LOADER_STUB &&
                     stubs[m].chip != NULL;

        if (p != NULL && (rc = add_profile_chip(ps, p, chip, want_z, err)) < 0)
            return rc;
    }
    /* A variant's stream is made from its base's, so a base it needs is compressed too. */
    for (struct payload_data *d = ps->data; d != NULL; d = d->next)
        if (d->want_z && d->base != NULL)
            d->base->want_z = 1;
    if ((rc = compress_round(ps, 0, err)) < 0 || (rc = compress_round(ps, 1, err)) < 0)
        return rc;
    ps->prepare_ns = uv_hrtime() - t0;
    return 0;
}

int payload_set_find(const struct payload_set *ps, const struct profile *p, size_t i,
                     const struct chip *chip, const struct image_flash_params *params,
                     int compressed, const struct session_payload **out, struct es_err *err)
{
    const struct payload_key *k;

    for (k = ps->keys; k != NULL; k = k->next) {
        if (k->profile == p && k->index == i && k->model == chip->model &&
            params_equal(&k->params, params))
            break;
    }
    /* Verify mode reads back and compares only: it never needs the stream. */
    if (k == NULL || (k->data != NULL && compressed && ps->compress && k->data->payload.z == NULL))
        return es_fail(err, ES_INVALID_ARG,
                       "image %zu of profile '%s' for %s was not prepared before the run", i,
                       p->name, chip->name);
    if (k->data == NULL) {
        *err = k->err;
        return -(int)err->code;
    }
    *out = &k->data->payload;
    return 0;
}

void payload_set_close(struct payload_set *ps)
{
    struct payload_data *d, *dn;
    struct payload_key *k, *kn;

    for (d = ps->data; d != NULL; d = dn) {
        dn = d->next;
        image_prepared_close(&d->prepared);
        image_deflate_close(&d->z);
        free(d);
    }
    for (k = ps->keys; k != NULL; k = kn) {
        kn = k->next;
        free(k);
    }
    memset(ps, 0, sizeof(*ps));
}
