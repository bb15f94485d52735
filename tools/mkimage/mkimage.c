/* mkimage: writes a small, valid, deterministic demo firmware image for ESP8266 or ESP32
 * (protocol doc §9.1), for the shipped profiles and tests, since real MicroPython .bin files
 * cannot be downloaded here. The segment data imitates firmware (instruction-like bytes,
 * literal pools, string tables, lookup tables) so it compresses roughly as real firmware does.
 *
 *   mkimage --chip esp8266|esp32 --size BYTES --seed N [--banner TEXT] -o FILE
 *
 * --banner puts TEXT into the image's read-only data behind a marker (tools/sim/app_banner.h),
 * where espsim's app model finds it: after a flash boot the simulated board prints TEXT and a
 * MicroPython-like REPL prompt, so a boot check can be tested against the simulator.
 *
 * Prints "SHA256  FILE" on stdout (sha256sum format) and a summary on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "app_banner.h"
#include "es/image.h"
#include "es/le.h"

#define MIN_SIZE 4096u
#define MAX_SIZE (16u << 20)

/* ---- A deterministic generator (splitmix64): the same seed gives the same file anywhere. ---- */

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(rng_next(r) % n);
}

/* ---- Content that looks like firmware ---- */

/* The kinds of bytes a firmware segment holds, in the proportions of one segment type. */
struct mix {
    unsigned code, text, table, pool, zero; /* weights */
};

struct gen {
    struct rng rng;
    uint8_t ops[64][3]; /* the "common instructions" of this image */
    uint8_t table[256]; /* a lookup table (think CRC or font data) */
    uint32_t text_base; /* where pointers in literal pools point */
};

static const char *const words[] = {
    "mp",     "obj",   "error",  "init",    "flash", "uart",     "gpio",     "machine", "network",
    "wifi",   "esp",   "socket", "read",    "write", "buffer",   "module",   "type",    "object",
    "import", "print", "int",    "str",     "list",  "dict",     "tuple",    "bytes",   "len",
    "value",  "index", "out",    "of",      "range", "argument", "must",     "be",      "not",
    "a",      "the",   "is",     "invalid", "%d",    "%s",       "%q",       "0x%08x",  "()",
    "self",   "pin",   "irq",    "timer",   "rtc",   "spi",      "i2c",      "adc",     "pwm",
    "sleep",  "reset", "config", "connect", "scan",  "active",   "ifconfig", "freq",    "heap",
};

static void gen_init(struct gen *g, uint64_t seed, uint32_t text_base)
{
    g->rng.s = seed;
    for (size_t i = 0; i < 64; i++) {
        /* Xtensa-like: a few opcode bytes dominate the first byte. */
        g->ops[i][0] = (uint8_t)(0x02 + 0x10 * rng_below(&g->rng, 6) + rng_below(&g->rng, 3));
        g->ops[i][1] = (uint8_t)rng_next(&g->rng);
        g->ops[i][2] = (uint8_t)rng_next(&g->rng);
    }
    for (size_t i = 0; i < sizeof(g->table); i++)
        g->table[i] = (uint8_t)rng_next(&g->rng);
    g->text_base = text_base;
}

static size_t put_code(struct gen *g, uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i + 3 <= n) {
        uint32_t r = rng_below(&g->rng, 100);
        if (r < 35) { /* a common instruction, skewed towards the first few */
            uint32_t k = rng_below(&g->rng, 64);
            k = k < 32 ? k / 4 : k;
            memcpy(p + i, g->ops[k], 3);
        } else if (r < 72) { /* a common opcode with fresh operands */
            p[i] = g->ops[rng_below(&g->rng, 16)][0];
            p[i + 1] = (uint8_t)rng_next(&g->rng);
            p[i + 2] = (uint8_t)(rng_below(&g->rng, 16) << 4 | rng_below(&g->rng, 4));
        } else { /* anything */
            uint64_t v = rng_next(&g->rng);
            p[i] = (uint8_t)v;
            p[i + 1] = (uint8_t)(v >> 8);
            p[i + 2] = (uint8_t)(v >> 16);
        }
        i += 3;
    }
    for (; i < n; i++)
        p[i] = 0;
    return n;
}

static size_t put_text(struct gen *g, uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        const char *w = words[rng_below(&g->rng, sizeof(words) / sizeof(words[0]))];
        size_t len = strlen(w);
        uint32_t sep = rng_below(&g->rng, 10);

        if (i + len + 1 > n)
            break;
        memcpy(p + i, w, len);
        i += len;
        p[i++] = sep < 5 ? ' ' : sep < 7 ? '_' : sep < 8 ? '.' : 0; /* 0 ends a string */
    }
    for (; i < n; i++)
        p[i] = 0;
    return n;
}

static size_t put_table(struct gen *g, uint8_t *p, size_t n)
{
    size_t off = rng_below(&g->rng, sizeof(g->table));

    for (size_t i = 0; i < n; i++)
        p[i] = g->table[(off + i) % sizeof(g->table)];
    return n;
}

/* Literal pools and vtables: 32-bit pointers into the image, mostly increasing. */
static size_t put_pool(struct gen *g, uint8_t *p, size_t n)
{
    uint32_t addr = g->text_base + 4 * rng_below(&g->rng, 0x8000);
    size_t i = 0;

    for (; i + 4 <= n; i += 4) {
        es_put_le32(p + i, addr);
        addr += 4 * (1 + rng_below(&g->rng, 24));
    }
    for (; i < n; i++)
        p[i] = 0;
    return n;
}

static void fill(struct gen *g, const struct mix *m, uint8_t *p, size_t n)
{
    unsigned total = m->code + m->text + m->table + m->pool + m->zero;
    size_t i = 0;

    while (i < n) {
        size_t len = 64 + 4 * rng_below(&g->rng, 240);
        unsigned r = rng_below(&g->rng, total);

        if (len > n - i)
            len = n - i;
        if (r < m->code)
            put_code(g, p + i, len);
        else if ((r -= m->code) < m->text)
            put_text(g, p + i, len);
        else if ((r -= m->text) < m->table)
            put_table(g, p + i, len);
        else if ((r -= m->table) < m->pool)
            put_pool(g, p + i, len);
        else
            memset(p + i, 0, len);
        i += len;
    }
}

/* ---- Image layout (§9.1) ---- */

struct seg_plan {
    uint32_t addr;
    unsigned share; /* per mille of the segment budget; 0 = the rest */
    uint32_t max;   /* cap in bytes, 0 = none */
    struct mix mix;
};

/* The segment whose data carries the --banner text: rodata (ESP8266 DRAM rodata, ESP32 DROM). */
#define ESP8266_BANNER_SEG 2
#define ESP32_BANNER_SEG   0

/* Load addresses of a plausible ESP8266 v1 image: IRAM text, DRAM data and rodata, IROM. */
static const struct seg_plan esp8266_plan[] = {
    {0x40100000, 110, 28 << 10, {80, 2, 3, 15, 0}},
    {0x3FFE8000, 10, 2 << 10, {10, 20, 20, 20, 30}},
    {0x3FFE8800, 40, 8 << 10, {0, 60, 25, 15, 0}},
    {0x40201010, 0, 0, {62, 20, 4, 10, 4}},
};

/* An ESP-IDF app: DROM (rodata), DRAM (data), IRAM (hot code), IROM (the bulk of the code). */
static const struct seg_plan esp32_plan[] = {
    {0x3F400020, 180, 0, {0, 62, 23, 15, 0}},
    {0x3FFB0000, 15, 8 << 10, {10, 20, 20, 20, 30}},
    {0x40080000, 150, 96 << 10, {80, 2, 3, 15, 0}},
    {0x400D0020, 0, 0, {68, 14, 4, 10, 4}},
};

struct options {
    const char *chip;
    unsigned long size;
    unsigned long long seed;
    const char *out;
    const char *banner; /* --banner TEXT, or NULL */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mkimage --chip esp8266|esp32 --size BYTES --seed N [--banner TEXT] -o FILE\n"
            "Writes a valid, deterministic demo firmware image of exactly BYTES bytes (a\n"
            "multiple of 16, %u to %u) and prints its SHA-256. --banner TEXT (at most %d\n"
            "bytes) is what espsim's simulated board prints when it runs the image, e.g.\n"
            "\"MicroPython v1.22.2 on 2024-02-22; ESP module with ESP8266\".\n",
            MIN_SIZE, MAX_SIZE, SIM_APP_BANNER_MAX);
}

static int parse_number(const char *opt, const char *s, unsigned long long *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        fprintf(stderr, "mkimage: %s '%s' is not a number\n", opt, s);
        return -1;
    }
    return 0;
}

/* Returns 0 to go on, 1 when --help was printed, -1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    unsigned long long v;
    int have_size = 0, have_seed = 0;
    int i = 1;

    memset(o, 0, sizeof(*o));
    while (i < argc) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (val == NULL) {
            fprintf(stderr, "mkimage: %s needs a value (or is unknown)\n", a);
            return -1;
        }
        if (strcmp(a, "--chip") == 0) {
            o->chip = val;
        } else if (strcmp(a, "--size") == 0) {
            if (parse_number(a, val, &v) < 0)
                return -1;
            o->size = (unsigned long)v;
            have_size = 1;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_number(a, val, &v) < 0)
                return -1;
            o->seed = v;
            have_seed = 1;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            o->out = val;
        } else if (strcmp(a, "--banner") == 0) {
            if (strlen(val) == 0 || strlen(val) > SIM_APP_BANNER_MAX || strchr(val, '\r') ||
                strchr(val, '\n')) {
                fprintf(stderr, "mkimage: --banner must be one line of 1 to %d bytes\n",
                        SIM_APP_BANNER_MAX);
                return -1;
            }
            o->banner = val;
        } else {
            fprintf(stderr, "mkimage: unknown option '%s'\n", a);
            return -1;
        }
        i += 2;
    }
    if (o->chip == NULL || !have_size || !have_seed || o->out == NULL) {
        fprintf(stderr, "mkimage: --chip, --size, --seed and -o are all required\n");
        return -1;
    }
    if (o->size < MIN_SIZE || o->size > MAX_SIZE || o->size % 16 != 0) {
        fprintf(stderr, "mkimage: --size %lu must be a multiple of 16 from %u to %u\n", o->size,
                MIN_SIZE, MAX_SIZE);
        return -1;
    }
    return 0;
}

/* Builds the whole file into buf (size bytes): header, segments, padding, checksum, and on
 * ESP32 the appended SHA-256. The segments fill it exactly, so the checksum byte is the last
 * byte before the digest. */
static int build(const struct chip *chip, uint64_t seed, const char *banner, uint8_t *buf,
                 size_t size, struct es_err *err)
{
    int esp32 = chip->family == CHIP_FAMILY_ESP32;
    const struct seg_plan *plan = esp32 ? esp32_plan : esp8266_plan;
    size_t nseg = 4;
    size_t hdr_len = IMAGE_HEADER_LEN + (esp32 ? IMAGE_EXT_HEADER_LEN : 0);
    size_t data_length = size - (esp32 ? IMAGE_DIGEST_LEN : 0);
    /* Segments end 16 bytes before data_length: 15 bytes of padding, then the checksum. */
    size_t budget = data_length - 16 - hdr_len - 8 * nseg;
    size_t pos = hdr_len, used = 0;
    uint8_t xor = 0xEF;
    struct gen g;

    memset(buf, 0, size);
    gen_init(&g, seed, plan[nseg - 1].addr);
    buf[0] = IMAGE_MAGIC;
    buf[1] = (uint8_t)nseg;
    /* ESP8266: qio, 4MB, 40m; ESP32: dio, 2MB, 40m (common build defaults). */
    buf[2] = esp32 ? CHIP_FLASH_DIO : CHIP_FLASH_QIO;
    buf[3] = esp32 ? 0x10 : 0x40;
    es_put_le32(buf + 4, esp32 ? 0x40080404 : 0x40100004);
    if (esp32) {
        buf[8] = 0xEE; /* WP pin unused */
        es_put_le16(buf + 12, (uint16_t)chip->image_chip_id);
        es_put_le16(buf + 15, 0);   /* minimum revision v0.0 */
        es_put_le16(buf + 17, 399); /* maximum revision v3.99 */
        buf[23] = 1;                /* SHA-256 appended */
    }
    for (size_t i = 0; i < nseg; i++) {
        size_t len;

        if (plan[i].share == 0) {
            len = budget - used;
        } else {
            len = budget * plan[i].share / 1000;
            if (plan[i].max != 0 && len > plan[i].max)
                len = plan[i].max;
            len &= ~(size_t)3;
        }
        used += len;
        es_put_le32(buf + pos, plan[i].addr);
        es_put_le32(buf + pos + 4, (uint32_t)len);
        pos += 8;
        fill(&g, &plan[i].mix, buf + pos, len);
        if (banner != NULL && i == (esp32 ? ESP32_BANNER_SEG : ESP8266_BANNER_SEG)) {
            /* A string in rodata, as the firmware's own banner is: marker, text, NUL. */
            size_t mlen = strlen(SIM_APP_BANNER_MARKER), tlen = strlen(banner);

            if (mlen + tlen + 1 > len)
                return es_fail(err, ES_INVALID_ARG,
                               "the image is too small for the banner; give a larger --size");
            memcpy(buf + pos, SIM_APP_BANNER_MARKER, mlen);
            memcpy(buf + pos + mlen, banner, tlen + 1);
        }
        for (size_t j = 0; j < len; j++)
            xor ^= buf[pos + j];
        pos += len;
    }
    buf[data_length - 1] = xor;
    if (esp32)
        return es_sha256(buf, data_length, buf + data_length, err);
    return 0;
}

static int write_file(const char *path, const uint8_t *buf, size_t size)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL) {
        fprintf(stderr, "mkimage: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fwrite(buf, 1, size, f) != size) {
        fprintf(stderr, "mkimage: write %s: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "mkimage: close %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    const struct chip *chip;
    struct image_header hdr;
    struct es_err err;
    uint8_t *buf, *z, digest[32];
    uLongf zlen;
    char hex[65];
    int rc = 1;

    rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        if (rc < 0)
            usage(stderr);
        return rc < 0 ? 2 : 0;
    }
    rc = 1;
    chip = chip_by_name(o.chip);
    if (chip == NULL || (chip->model != CHIP_ESP8266 && chip->model != CHIP_ESP32)) {
        fprintf(stderr, "mkimage: --chip '%s' is not esp8266 or esp32\n", o.chip);
        return 2;
    }
    buf = malloc(o.size);
    z = malloc(compressBound(o.size));
    if (buf == NULL || z == NULL) {
        fprintf(stderr, "mkimage: out of memory\n");
        goto out_free;
    }
    if (build(chip, o.seed, o.banner, buf, o.size, &err) < 0) {
        fprintf(stderr, "mkimage: %s\n", err.msg);
        goto out_free;
    }
    /* Check our own output with the parser the station uses. */
    if (image_parse_header(buf, o.size, chip->family == CHIP_FAMILY_ESP32, &hdr, &err) < 0 ||
        !hdr.checksum_ok || (hdr.hash_appended && !hdr.digest_ok)) {
        fprintf(stderr, "mkimage: bug: the generated image does not check out: %s\n", err.msg);
        goto out_free;
    }
    zlen = compressBound(o.size);
    if (compress2(z, &zlen, buf, o.size, 9) != Z_OK) {
        fprintf(stderr, "mkimage: zlib compress2 failed\n");
        goto out_free;
    }
    if (write_file(o.out, buf, o.size) < 0)
        goto out_free;
    if (es_sha256(buf, o.size, digest, &err) < 0) {
        fprintf(stderr, "mkimage: %s\n", err.msg);
        goto out_free;
    }
    es_hex(digest, 32, hex);
    printf("%s  %s\n", hex, o.out);
    fprintf(stderr,
            "mkimage: %s image, %lu bytes, %u segments, entry 0x%08x, data_length %zu, "
            "zlib -9 ratio %.3f\n",
            chip->name, o.size, hdr.segments, (unsigned)hdr.entry, hdr.data_length,
            (double)zlen / (double)o.size);
    rc = 0;

out_free:
    free(buf);
    free(z);
    return rc;
}
