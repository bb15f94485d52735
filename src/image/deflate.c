/* A zlib stream of an image that can be restarted part way (see es/deflate.h), and the same
 * stream for a variant of the image that reuses every chunk the two have in common. */
#include "es/deflate.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* zlib's header for a 32 KiB window at level 9 (RFC 1950: CMF 0x78, FLG 0xDA). */
static const uint8_t zlib_header[2] = {0x78, 0xDA};

int image_deflate(const uint8_t *data, size_t size, uint32_t chunk, struct image_deflate *out,
                  struct es_err *err)
{
    z_stream z;
    size_t cap, npoints = size / chunk + 1;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (chunk == 0 || size > UINT32_MAX)
        return es_fail(err, ES_INVALID_ARG, "image_deflate: chunk 0 or a %zu-byte image", size);
    /* Every full flush adds an empty stored block (5 bytes) to what one stream would take. */
    cap = compressBound((uLong)size) + 8 * npoints + 16;
    out->z = malloc(cap);
    out->points = calloc(npoints, sizeof(*out->points));
    if (out->z == NULL || out->points == NULL) {
        image_deflate_close(out);
        return es_fail(err, ES_NOMEM, "out of memory compressing a %zu-byte image", size);
    }
    memset(&z, 0, sizeof(z));
    if (deflateInit(&z, 9) != Z_OK) {
        image_deflate_close(out);
        return es_fail(err, ES_NOMEM, "zlib could not start compressing an image");
    }
    z.next_out = out->z;
    z.avail_out = (uInt)cap;
    for (size_t off = 0;; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        int last = off + n >= size;

        /* Where the deflate data of the bytes from off on begins: after the header, then after
         * each full flush, which empties the window and byte-aligns the stream. */
        out->points[out->npoints].zoff = (uint32_t)(z.total_out == 0 ? 2 : z.total_out);
        out->points[out->npoints].uoff = (uint32_t)off;
        out->npoints++;
        z.next_in = (Bytef *)(uintptr_t)(data + off);
        z.avail_in = (uInt)n;
        if (deflate(&z, last ? Z_FINISH : Z_FULL_FLUSH) != (last ? Z_STREAM_END : Z_OK) ||
            z.avail_in != 0) {
            rc = es_fail(err, ES_NOMEM, "zlib could not compress an image (%zu bytes)", size);
            break;
        }
        if (last)
            break;
    }
    out->zsize = z.total_out;
    out->size = size;
    deflateEnd(&z);
    if (rc < 0)
        image_deflate_close(out);
    return rc;
}

int image_deflate_tail(const struct image_deflate *d, const uint8_t *data, size_t size,
                       size_t point, uint8_t **out, size_t *out_len, struct es_err *err)
{
    const struct image_restart *p;
    size_t body;
    uint32_t adler;
    uint8_t *buf;

    *out = NULL;
    *out_len = 0;
    if (point >= d->npoints || d->points[point].uoff > size || d->zsize < 6)
        return es_fail(err, ES_INVALID_ARG, "image_deflate_tail: no restart point %zu", point);
    p = &d->points[point];
    body = d->zsize - 4 - p->zoff; /* without the whole stream's Adler-32 */
    buf = malloc(sizeof(zlib_header) + body + 4);
    if (buf == NULL)
        return es_fail(err, ES_NOMEM, "out of memory restarting a write");
    memcpy(buf, zlib_header, sizeof(zlib_header));
    memcpy(buf + sizeof(zlib_header), d->z + p->zoff, body);
    adler = (uint32_t)adler32(adler32(0, NULL, 0), data + p->uoff, (uInt)(size - p->uoff));
    for (int i = 0; i < 4; i++) /* RFC 1950: the Adler-32 is stored most significant first */
        buf[sizeof(zlib_header) + body + (size_t)i] = (uint8_t)(adler >> (24 - 8 * i));
    *out = buf;
    *out_len = sizeof(zlib_header) + body + 4;
    return 0;
}

/* Compresses one chunk on its own as raw deflate data (no zlib header or trailer): what a full
 * flush in image_deflate() makes of it, since a full flush forgets everything before it. A
 * middle chunk ends with the flush's empty stored block, the last one with a final block.
 * Appends to out at *len, which has room for compressBound(n) + 16 bytes. */
static int deflate_chunk(const uint8_t *data, size_t n, int last, uint8_t *out, size_t *len)
{
    z_stream z;
    int ok;

    memset(&z, 0, sizeof(z));
    /* Level 9, 32 KiB window, zlib's default memLevel: the settings deflateInit(9) uses. */
    if (deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)n;
    z.next_out = out + *len;
    z.avail_out = (uInt)(compressBound((uLong)n) + 16);
    ok = deflate(&z, last ? Z_FINISH : Z_FULL_FLUSH) == (last ? Z_STREAM_END : Z_OK) &&
         z.avail_in == 0;
    *len += z.total_out;
    deflateEnd(&z);
    return ok ? 0 : -1;
}

int image_deflate_variant(const struct image_deflate *base, const uint8_t *base_data,
                          const uint8_t *data, size_t size, struct image_deflate *out,
                          struct es_err *err)
{
    size_t cap, len = sizeof(zlib_header);
    uint32_t adler;

    memset(out, 0, sizeof(*out));
    if (base->npoints == 0 || base->zsize < 6 || base->size != size)
        return es_fail(err, ES_INVALID_ARG,
                       "image_deflate_variant: a %zu-byte variant of a %zu-byte image", size,
                       base->size);
    /* The base's stream, plus room for each chunk that compresses worse this time. */
    cap = base->zsize + base->npoints * 64 + compressBound((uLong)size);
    out->z = malloc(cap);
    out->points = calloc(base->npoints, sizeof(*out->points));
    if (out->z == NULL || out->points == NULL) {
        image_deflate_close(out);
        return es_fail(err, ES_NOMEM, "out of memory compressing a %zu-byte image", size);
    }
    memcpy(out->z, zlib_header, sizeof(zlib_header));
    for (size_t k = 0; k < base->npoints; k++) {
        int last = k + 1 == base->npoints;
        size_t uoff = base->points[k].uoff, uend = last ? size : base->points[k + 1].uoff;
        size_t zoff = base->points[k].zoff,
               zend = last ? base->zsize - 4 : base->points[k + 1].zoff;

        out->points[k].uoff = (uint32_t)uoff;
        out->points[k].zoff = (uint32_t)len;
        if (memcmp(data + uoff, base_data + uoff, uend - uoff) == 0) {
            memcpy(out->z + len, base->z + zoff, zend - zoff);
            len += zend - zoff;
        } else if (deflate_chunk(data + uoff, uend - uoff, last, out->z, &len) < 0) {
            image_deflate_close(out);
            return es_fail(err, ES_NOMEM, "zlib could not compress an image (%zu bytes)", size);
        }
        out->npoints++;
    }
    adler = (uint32_t)adler32(adler32(0, NULL, 0), data, (uInt)size);
    for (int i = 0; i < 4; i++) /* RFC 1950: the Adler-32 is stored most significant first */
        out->z[len++] = (uint8_t)(adler >> (24 - 8 * i));
    out->zsize = len;
    out->size = size;
    return 0;
}

size_t image_deflate_point(const struct image_deflate *d, size_t zdone)
{
    size_t k = 0;

    for (size_t i = 0; i < d->npoints; i++)
        if (d->points[i].zoff <= zdone)
            k = i;
    return k;
}

void image_deflate_close(struct image_deflate *d)
{
    free(d->z);
    free(d->points);
    memset(d, 0, sizeof(*d));
}
