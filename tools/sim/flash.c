/* The simulated SPI NOR flash and the MD5 over it (see flash.h). MD5 is implemented from the
 * description in RFC 1321: four rounds of sixteen operations on a 64-byte block. */
#include "flash.h"

#include <string.h>

#include "es/le.h"

uint32_t sim_flash_wrap(const struct sim_flash *f, uint32_t addr)
{
    addr &= 0xFFFFFFu;
    return f->size ? addr % f->size : 0;
}

void sim_flash_erase_sector(struct sim_flash *f, uint32_t addr)
{
    uint32_t start = sim_flash_wrap(f, addr) / SIM_FLASH_SECTOR * SIM_FLASH_SECTOR;
    uint32_t n = SIM_FLASH_SECTOR;

    if (!f->mem || start >= f->size)
        return;
    if (n > f->size - start)
        n = f->size - start;
    memset(f->mem + start, 0xFF, n);
    f->erases++;
}

void sim_flash_erase_all(struct sim_flash *f)
{
    if (!f->mem)
        return;
    memset(f->mem, 0xFF, f->size);
    f->erases += (f->size + SIM_FLASH_SECTOR - 1) / SIM_FLASH_SECTOR;
}

int sim_flash_program(struct sim_flash *f, uint32_t addr, const uint8_t *data, size_t n)
{
    int hit = 0;

    if (!f->mem || !f->size)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t a = sim_flash_wrap(f, addr + (uint32_t)i);
        uint8_t v = data[i];

        if (f->bad && a == sim_flash_wrap(f, f->bad_addr)) {
            v ^= 0x01; /* one stuck cell: the byte is stored with its low bit flipped */
            hit = 1;
        }
        f->mem[a] &= v;
    }
    f->bytes_written += n;
    return hit;
}

void sim_flash_read(const struct sim_flash *f, uint32_t addr, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (f->mem && f->size) ? f->mem[sim_flash_wrap(f, addr + (uint32_t)i)] : 0xFF;
}

/* RFC 1321 §3.4: per-round shift amounts and the sine-derived constants T[i]. */
static const uint8_t md5_shift[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                      5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                      4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                      6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
static const uint32_t md5_t[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

static uint32_t rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32u - n));
}

static void md5_block(struct sim_md5 *m, const uint8_t *p)
{
    uint32_t x[16];
    uint32_t a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];

    for (int i = 0; i < 16; i++)
        x[i] = es_get_le32(p + 4 * i);
    for (unsigned i = 0; i < 64; i++) {
        uint32_t f;
        unsigned g;

        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (b & d) | (c & ~d);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        f = f + a + md5_t[i] + x[g];
        a = d;
        d = c;
        c = b;
        b = b + rotl(f, md5_shift[i]);
    }
    m->h[0] += a;
    m->h[1] += b;
    m->h[2] += c;
    m->h[3] += d;
}

void sim_md5_init(struct sim_md5 *m)
{
    m->h[0] = 0x67452301;
    m->h[1] = 0xefcdab89;
    m->h[2] = 0x98badcfe;
    m->h[3] = 0x10325476;
    m->len = 0;
    m->fill = 0;
}

void sim_md5_update(struct sim_md5 *m, const uint8_t *data, size_t n)
{
    m->len += n;
    while (n > 0) {
        size_t take = 64 - m->fill;

        if (take > n)
            take = n;
        memcpy(m->buf + m->fill, data, take);
        m->fill += take;
        data += take;
        n -= take;
        if (m->fill == 64) {
            md5_block(m, m->buf);
            m->fill = 0;
        }
    }
}

void sim_md5_final(struct sim_md5 *m, uint8_t out[16])
{
    uint64_t bits = m->len * 8;
    uint8_t pad = 0x80;
    uint8_t zero = 0;
    uint8_t len_le[8];

    sim_md5_update(m, &pad, 1);
    while (m->fill != 56)
        sim_md5_update(m, &zero, 1);
    for (int i = 0; i < 8; i++)
        len_le[i] = (uint8_t)(bits >> (8 * i));
    sim_md5_update(m, len_le, 8);
    for (int i = 0; i < 4; i++)
        es_put_le32(out + 4 * i, m->h[i]);
}

void sim_flash_md5(const struct sim_flash *f, uint32_t addr, uint32_t n, uint8_t out[16])
{
    struct sim_md5 m;
    uint8_t chunk[1024];

    sim_md5_init(&m);
    while (n > 0) {
        uint32_t take = n < sizeof(chunk) ? n : (uint32_t)sizeof(chunk);

        sim_flash_read(f, addr, chunk, take);
        sim_md5_update(&m, chunk, take);
        addr += take;
        n -= take;
    }
    sim_md5_final(&m, out);
}
