/* A zlib stream of an image that a write can restart part way (issue 11 #15): the compressor
 * empties its window with a full flush every `chunk` bytes of input, so the deflate data from
 * each of those points on depends on nothing before it. Sent whole it is one ordinary stream
 * (what FLASH_DEFL_BEGIN/DATA expect, §11); after a lost block the write restarts at the last
 * point the stub has written past, as a new stream: zlib header, the deflate data from that
 * point, and the Adler-32 of the image bytes from there. At 64 KiB chunks (sector aligned, so a
 * restart never erases written data) the stream is about 1 % larger than one without flushes.
 *
 * The header patch of a bootloader image (flash mode, frequency, size: bytes 2-3, and the
 * appended SHA-256) changes only a chunk or two, so the stream of each patched variant is made
 * from the unpatched image's stream by compressing again only the chunks that differ
 * (image_deflate_variant): a dozen flash sizes cost little more than one image. Pure: no files,
 * no clocks. */
#ifndef ES_DEFLATE_H
#define ES_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "es/err.h"

#define IMAGE_DEFLATE_CHUNK (64u * 1024u)

struct image_restart {
    uint32_t zoff; /* where in the stream the deflate data of the bytes from uoff on begins */
    uint32_t uoff; /* a multiple of the chunk size */
};

struct image_deflate {
    uint8_t *z; /* the whole zlib stream (owned) */
    size_t zsize;
    size_t size;                  /* bytes of image it holds */
    struct image_restart *points; /* points[0] = {2, 0}: after the zlib header */
    size_t npoints;
};

/* Compresses data at level 9 with a restart point every chunk bytes. ES_NOMEM, or
 * ES_INVALID_ARG for chunk 0. On failure out holds nothing to free. */
int image_deflate(const uint8_t *data, size_t size, uint32_t chunk, struct image_deflate *out,
                  struct es_err *err);
/* Compresses data[0, size), a variant of base_data (what base compressed, of the same size),
 * into out with the same restart points: a chunk whose bytes equal base_data's reuses base's
 * deflate data, one that differs is compressed again on its own; the Adler-32 is data's. The
 * result inflates to data, and every tail (image_deflate_tail) works as for image_deflate's.
 * Reads base without changing it, so several variants of one base may be made at once on
 * different threads. ES_NOMEM, or ES_INVALID_ARG when size is not base's. On failure out holds
 * nothing to free. */
int image_deflate_variant(const struct image_deflate *base, const uint8_t *base_data,
                          const uint8_t *data, size_t size, struct image_deflate *out,
                          struct es_err *err);
/* The index of the last restart point whose deflate data starts at or before zdone bytes of the
 * stream: a stub that has written every block up to zdone has the image up to its uoff. */
size_t image_deflate_point(const struct image_deflate *d, size_t zdone);
/* A new zlib stream for data[points[point].uoff, size) (data: what image_deflate compressed),
 * malloc'd into *out. ES_NOMEM, ES_INVALID_ARG for a point that does not exist. */
int image_deflate_tail(const struct image_deflate *d, const uint8_t *data, size_t size,
                       size_t point, uint8_t **out, size_t *out_len, struct es_err *err);
void image_deflate_close(struct image_deflate *d);

#endif
