/* A zlib stream of an image that can be restarted part way (see es/deflate.h). */
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
