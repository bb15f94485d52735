/* The ROM download loaders of ESP8266 and ESP32 as observed (protocol doc §15 wins over §13):
 * requests are decoded here with espsim's own code, never with src/proto. The reply buffer is
 * persistent, as in the ROM: what a reply does not write (op and value of an unsupported
 * command, the error byte on success, ESP32 status bytes 3-4) keeps an earlier reply's bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/le.h"
#include "model.h"

/* ROM error codes (§2.5). */
enum {
    ROM_BAD_FORMAT = 0x05,
    ROM_FAILED = 0x06,
    ROM_BAD_CHECKSUM = 0x07,
    ROM_FLASH_WRITE = 0x08,
    ROM_FLASH_READ = 0x09,
    ROM_READ_LENGTH = 0x0A,
    ROM_DEFLATE = 0x0B,
    ROM_DEFLATE_ADLER = 0x0C,
};

#define ROM_MAX_BLOCK 0x1000u /* [model] 0x400 is what every tool sends; 0x4000 is refused */
#define MIB           (1024u * 1024u)

/* One request as the ROM sees it: header fields from the (possibly stale) receive buffer. */
struct req {
    uint8_t op;
    uint16_t size;
    uint32_t checksum;
    const uint8_t *data; /* size bytes (stale past the end of a short frame) */
    uint64_t start;      /* when the CPU gets to it */
};

static uint32_t word(const struct req *r, unsigned i)
{
    return es_get_le32(r->data + 4 * i);
}

/* Sends the reply in the persistent buffer: dlen result bytes already at txbuf + 8, then the
 * status. op < 0 keeps the previous reply's op byte. */
static int send_reply(struct sim_board *b, const struct req *r, int op, size_t dlen, int status,
                      int error, uint64_t at)
{
    uint8_t *t = b->txbuf;
    unsigned slen = b->chip->rom_status_len;

    b->busy_until = at;
    t[0] = 0x01;
    if (op >= 0)
        t[1] = (uint8_t)op;
    es_put_le16(t + 2, (uint16_t)(dlen + slen));
    t[8 + dlen] = (uint8_t)status;
    if (error >= 0)
        t[9 + dlen] = (uint8_t)error;
    if (!sim_reply_allowed(b, r->op, &at))
        return 0;
    sim_send_frame(b, t, 8 + dlen + slen, at);
    return 0;
}

static int ok(struct sim_board *b, const struct req *r, size_t dlen, uint64_t cost)
{
    return send_reply(b, r, r->op, dlen, 0, -1, r->start + SIM_T_CMD_NS + cost);
}

static int fail(struct sim_board *b, const struct req *r, int error, uint64_t cost)
{
    return send_reply(b, r, r->op, 0, 1, error, r->start + SIM_T_CMD_NS + cost);
}

/* §15: one 01 05 reply carrying the op (and value) left over from the previous reply. */
static int unsupported(struct sim_board *b, const struct req *r)
{
    return send_reply(b, r, -1, 0, 1, ROM_BAD_FORMAT, r->start + SIM_T_CMD_NS);
}

static uint32_t data_checksum(const uint8_t *p, uint32_t n)
{
    uint8_t sum = 0xEF;

    for (uint32_t i = 0; i < n; i++)
        sum ^= p[i];
    return sum;
}

static void free_segs(struct sim_board *b)
{
    for (int i = 0; i < b->nsegs; i++)
        free(b->segs[i].bytes);
    memset(b->segs, 0, sizeof(b->segs));
    b->nsegs = 0;
}

void sim_rom_reset(struct sim_board *b)
{
    memset(b->txbuf, 0, sizeof(b->txbuf));
    if (b->rxbuf)
        memset(b->rxbuf, 0, b->rx_cap);
    b->rx_in_frame = b->rx_escape = b->rx_drop = 0;
    b->rx_len = 0;
    sim_write_close(&b->fw);
    sim_write_close(&b->mw);
    free_segs(b);
    b->synced = 0;
    b->sync_ignored = 0;
    b->attached = 0;
    b->flash_limit = b->chip->rom_flash_limit;
    b->busy_until = 0;
    b->stub_error = 0;
    memset(&b->rd, 0, sizeof(b->rd));
    sim_regs_reset(b);
}

/* The checks FLASH_DATA, FLASH_DEFL_DATA and MEM_DATA share (§15.1/§15.2/§15.3): the sequence
 * number, which then advances even when the block is refused for its length or checksum; the
 * header's length against the data present (and, with exact_len, the block size); the checksum.
 * Returns 0 when the block may be used, else the error code. */
static int check_block(const struct req *r, struct sim_write *w, uint32_t exact_len)
{
    uint32_t present = (uint32_t)r->size - 16;
    uint32_t len = word(r, 0);

    if (word(r, 1) != w->next_seq)
        return ROM_BAD_FORMAT;
    w->next_seq++; /* §15.3: a length error moves the counter as a checksum error does (§15.1) */
    if (len > present)
        return ROM_BAD_CHECKSUM; /* the sum runs over stale bytes and cannot match */
    /* §15.3: a header with length 0 and no data is accepted; a short block is not. */
    if (len < present || (exact_len && len && len != exact_len))
        return ROM_BAD_FORMAT;
    if (data_checksum(r->data + 16, len) != r->checksum)
        return ROM_BAD_CHECKSUM;
    return 0;
}

static int do_sync(struct sim_board *b, const struct req *r)
{
    uint64_t at = r->start + SIM_T_SYNC_NS;

    if (b->sync_ignored < b->cfg.faults.sync_after) {
        b->sync_ignored++;
        sim_log(b, "fault: SYNC %d of %d ignored", b->sync_ignored, b->cfg.faults.sync_after);
        return 0;
    }
    memcpy(b->txbuf + 4, r->data, 4); /* value = the first 4 payload bytes (§15) */
    b->synced = 1;
    for (int i = 0; i < 8; i++)
        send_reply(b, r, r->op, 0, 0, -1, at);
    return 0;
}

static int do_read_reg(struct sim_board *b, const struct req *r)
{
    int mapped = 1;
    uint32_t v = sim_regs_read(b, word(r, 0), &mapped);

    if (!mapped) {
        /* §15.2: the ESP8266 ROM never answers and stays dead until reset. */
        sim_log(b, "READ_REG of unmapped 0x%08x: the loader is dead until reset", word(r, 0));
        b->mode = SIM_MODE_DEAD;
        return 0;
    }
    es_put_le32(b->txbuf + 4, v);
    return ok(b, r, 0, 0);
}

static int do_write_reg(struct sim_board *b, const struct req *r)
{
    uint64_t cost = 0;

    if (r->size < 16)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    for (unsigned g = 0; g < r->size / 16u; g++) {
        sim_regs_write(b, word(r, 4 * g), word(r, 4 * g + 1), word(r, 4 * g + 2));
        cost += (uint64_t)word(r, 4 * g + 3) * 1000;
    }
    return ok(b, r, 0, cost);
}

/* FLASH_BEGIN and FLASH_DEFL_BEGIN: the ROM erases everything up front, before replying. */
static int do_flash_begin(struct sim_board *b, const struct req *r, int deflate)
{
    int esp8266 = b->cfg.chip == SIM_ESP8266;
    uint32_t erase, blocks, bsize, off, sectors;

    if (r->size != 16)
        return fail(b, r, ROM_BAD_FORMAT, 0); /* 20 bytes is for S2-and-later ROMs */
    erase = word(r, 0);
    blocks = word(r, 1);
    bsize = word(r, 2);
    off = word(r, 3);
    if (bsize > ROM_MAX_BLOCK)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    if (!esp8266 && !b->attached)
        return fail(b, r, ROM_FAILED, 0); /* [model] the ESP32 ROM needs SPI_ATTACH first */
    sim_write_close(&b->fw);
    b->fw.active = 1;
    b->fw.deflate = deflate;
    b->fw.offset = b->fw.ptr = off;
    b->fw.blocks = blocks;
    b->fw.block_size = bsize;
    b->fw.expected = (uint64_t)blocks * bsize;
    sim_regs_flash_attached(b); /* §3.8: on ESP8266 any FLASH_BEGIN attaches the flash */
    if (esp8266) {
        if (off % SIM_FLASH_SECTOR || off >= b->flash_limit)
            return fail(b, r, ROM_FAILED, 0); /* §15.2: data sent afterwards is still written */
        /* §8.3: asked for x sectors, the ROM erases x + min(head, x). */
        uint32_t x = (uint32_t)(((uint64_t)erase + SIM_FLASH_SECTOR - 1) / SIM_FLASH_SECTOR);
        uint32_t head = 16 - (off / SIM_FLASH_SECTOR) % 16;

        sectors = x + (head < x ? head : x);
    } else {
        if (off % SIM_FLASH_SECTOR || (uint64_t)off + erase > b->flash_limit ||
            (uint64_t)off + erase > 16 * MIB) {
            b->fw.active = 0;
            return fail(b, r, ROM_FAILED, 0);
        }
        sectors = (uint32_t)(((uint64_t)erase + SIM_FLASH_SECTOR - 1) / SIM_FLASH_SECTOR);
    }
    for (uint32_t i = 0; i < sectors; i++)
        sim_flash_erase_sector(&b->flash, off + i * SIM_FLASH_SECTOR);
    return ok(b, r, 0, sim_erase_cost(sectors));
}

static int do_flash_data(struct sim_board *b, const struct req *r)
{
    struct sim_write *w = &b->fw;
    uint64_t cost = 0;
    int e, hit;

    if (!w->active || w->deflate) {
        if (b->cfg.chip != SIM_ESP8266 || w->deflate)
            return fail(b, r, ROM_BAD_FORMAT, 0);
        /* §15.2: the ESP8266 ROM takes FLASH_DATA without FLASH_BEGIN and writes at 0x0. */
        sim_write_close(w);
        w->active = 1;
    }
    if (r->size < 16)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    if (sim_count_data(b, (uint32_t)r->size - 16))
        return 0;
    e = check_block(r, w, w->block_size);
    if (e)
        return fail(b, r, e, 0);
    hit = sim_write_data(b, r->data + 16, word(r, 0), 0, &cost);
    if (hit && b->cfg.faults.bad_flash_reports)
        return fail(b, r, ROM_FLASH_WRITE, cost);
    return ok(b, r, 0, cost);
}

static int do_defl_data(struct sim_board *b, const struct req *r)
{
    struct sim_write *w = &b->fw;
    uint64_t cost = 0;
    int e, fault = 0, z;

    if (!w->active || !w->deflate || r->size < 16)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    if (sim_count_data(b, (uint32_t)r->size - 16))
        return 0;
    e = check_block(r, w, 0); /* compressed blocks are not padded (§11) */
    if (e)
        return fail(b, r, e, 0);
    z = sim_inflate_data(b, r->data + 16, word(r, 0), 0, &cost, &fault);
    if (z == -2)
        return fail(b, r, ROM_DEFLATE_ADLER, cost);
    if (z < 0 || (z == 0 && w->next_seq >= w->blocks))
        return fail(b, r, ROM_DEFLATE, cost); /* corrupt, or ends before its last block */
    if (fault && b->cfg.faults.bad_flash_reports)
        return fail(b, r, ROM_FLASH_WRITE, cost);
    return ok(b, r, 0, cost);
}

static int do_flash_end(struct sim_board *b, const struct req *r, int deflate)
{
    int failed;
    uint32_t run;
    uint64_t at;

    if (r->size != 4)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    run = word(r, 0);
    /* §15.3: after a corrupt deflate stream the ROM answers 01 06 (zlib keeps its message). */
    failed = deflate && b->fw.z_ready && b->fw.z.msg != NULL;
    sim_write_close(&b->fw);
    if (failed)
        return fail(b, r, ROM_FAILED, 0);
    if (deflate)
        return ok(b, r, 0, 0); /* §15.1: FLASH_DEFL_END stays in the loader, whatever the flag */
    at = r->start + SIM_T_CMD_NS;
    if (b->cfg.chip == SIM_ESP8266) {
        /* §15.2: replies 00 00, then leaves the loader for the flash, either flag. */
        send_reply(b, r, r->op, 0, 0, 0, at);
        sim_flash_boot(b, at, 1);
        return 0;
    }
    ok(b, r, 0, 0);
    if (run)
        sim_flash_boot(b, at, 1);
    else
        sim_soft_reboot(b, at);
    return 0;
}

static int do_mem_begin(struct sim_board *b, const struct req *r)
{
    struct sim_mem_seg *s;

    if (r->size != 16)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    sim_write_close(&b->mw);
    b->mw.active = 1;
    b->mw.blocks = word(r, 1);
    b->mw.block_size = word(r, 2);
    b->mw.offset = word(r, 3);
    if (b->nsegs < SIM_MAX_SEGS) {
        uint32_t keep = word(r, 0) < SIM_MAX_SEG_SIZE ? word(r, 0) : SIM_MAX_SEG_SIZE;

        s = &b->segs[b->nsegs];
        s->bytes = calloc(1, keep ? keep : 1);
        if (s->bytes) {
            s->addr = word(r, 3);
            s->size = word(r, 0);
            s->received = 0;
            b->nsegs++;
        }
    }
    return ok(b, r, 0, 0); /* §15: no address or size checks */
}

static int do_mem_data(struct sim_board *b, const struct req *r)
{
    int e;
    uint32_t len;

    if (!b->mw.active || r->size < 16)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    e = check_block(r, &b->mw, 0);
    if (e)
        return fail(b, r, e, 0);
    len = word(r, 0);
    if (b->nsegs > 0 && b->segs[b->nsegs - 1].addr == b->mw.offset) {
        struct sim_mem_seg *s = &b->segs[b->nsegs - 1];
        uint64_t end = (uint64_t)s->received + len;
        uint32_t keep = s->size < SIM_MAX_SEG_SIZE ? s->size : SIM_MAX_SEG_SIZE;

        if (s->received < keep)
            memcpy(s->bytes + s->received, r->data + 16, end > keep ? keep - s->received : len);
        s->received = end > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)end;
    }
    return ok(b, r, 0, (uint64_t)len * 10); /* a copy into RAM: ~10 ns per byte */
}

static int do_mem_end(struct sim_board *b, const struct req *r)
{
    uint32_t no_jump, entry;

    /* §15.3: one word is accepted; the entry is then whatever the receive buffer held. */
    if (r->size != 8 && r->size != 4)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    no_jump = word(r, 0);
    entry = word(r, 1);
    b->mw.active = 0;
    ok(b, r, 0, 0); /* §15: the reply goes out before the jump */
    if (!no_jump)
        sim_run_ram(b, entry, b->busy_until);
    return 0;
}

static int do_md5(struct sim_board *b, const struct req *r)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[16];
    uint32_t addr, n;
    uint64_t cost;

    if (r->size != 16 && r->size != 12) /* §15.3: 3 words get the MD5 too */
        return fail(b, r, ROM_BAD_FORMAT, 0);
    if (!b->attached)
        return fail(b, r, ROM_FAILED, 0);
    addr = word(r, 0);
    n = word(r, 1);
    if ((uint64_t)addr + n > b->flash.size) {
        /* §15.1: 01 09 after 32 stale bytes */
        return send_reply(b, r, r->op, 32, 1, ROM_FLASH_READ, r->start + SIM_T_CMD_NS);
    }
    sim_flash_md5(&b->flash, addr, n, digest);
    for (int i = 0; i < 16; i++) {
        b->txbuf[8 + 2 * i] = (uint8_t)hex[digest[i] >> 4];
        b->txbuf[9 + 2 * i] = (uint8_t)hex[digest[i] & 15];
    }
    cost = (uint64_t)n * SIM_T_MD5_MIB_NS / MIB;
    return ok(b, r, 32, cost);
}

static int do_read_flash_slow(struct sim_board *b, const struct req *r)
{
    uint32_t len;

    if (r->size != 8)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    if (!b->attached)
        return fail(b, r, ROM_FAILED, 0);
    len = word(r, 1);
    if (len > 64) /* §15.3: the 64 (stale) data bytes go out before the error status */
        return send_reply(b, r, r->op, 64, 1, ROM_READ_LENGTH, r->start + SIM_T_CMD_NS);
    sim_flash_read(&b->flash, word(r, 0), b->txbuf + 8, len); /* the rest of the 64 is stale */
    return ok(b, r, 64, 0);
}

static int do_change_baud(struct sim_board *b, const struct req *r)
{
    uint32_t baud;

    if (r->size != 8 || word(r, 0) == 0)
        return fail(b, r, ROM_BAD_FORMAT, 0);
    baud = word(r, 0);
    ok(b, r, 0, 0); /* at the old rate (§3.10) */
    sim_log(b, "CHANGE_BAUDRATE %u -> %u%s", b->baud, baud,
            b->cfg.faults.baud_fail ? " (fault: garbled from now on)" : "");
    b->baud = baud;
    if (b->cfg.faults.baud_fail)
        b->garbled = 1;
    return 0;
}

static int rom_frame(struct sim_board *b)
{
    const uint8_t *p = b->rxbuf;
    struct req r;
    int esp32 = b->chip->rom_has_esp32_ops;

    r.op = p[1];
    r.size = es_get_le16(p + 2);
    r.checksum = es_get_le32(p + 4);
    r.data = p + 8;
    r.start = sim_cmd_start(b);
    if (p[0] != 0x00)
        return unsupported(b, &r); /* §15.1: not run; 01 05 with the leftover op */
    switch (r.op) {
    case OP_SYNC: return do_sync(b, &r);
    case OP_READ_REG: return do_read_reg(b, &r);
    case OP_WRITE_REG: return do_write_reg(b, &r);
    case OP_FLASH_BEGIN: return do_flash_begin(b, &r, 0);
    case OP_FLASH_DATA: return do_flash_data(b, &r);
    case OP_FLASH_END: return do_flash_end(b, &r, 0);
    case OP_MEM_BEGIN: return do_mem_begin(b, &r);
    case OP_MEM_DATA: return do_mem_data(b, &r);
    case OP_MEM_END: return do_mem_end(b, &r);
    case OP_SPI_SET_PARAMS:
        if (r.size != 24)
            return fail(b, &r, ROM_BAD_FORMAT, 0);
        if (esp32 && word(&r, 1))
            b->flash_limit = word(&r, 1);
        return ok(b, &r, 0, 0);
    default: break;
    }
    if (!esp32)
        return unsupported(b, &r); /* §15.2: 0x0D-0x14, 0xD0-0xD3, ... */
    switch (r.op) {
    case OP_SPI_ATTACH:
        /* [model] 8 bytes per §3.8; 4 (esptool-js's flashSpiAttach) is taken too, the second
         * word then being whatever the buffer held. */
        if (r.size != 8 && r.size != 4)
            return fail(b, &r, ROM_BAD_FORMAT, 0);
        sim_regs_flash_attached(b);
        return ok(b, &r, 0, 0);
    case OP_READ_FLASH_SLOW: return do_read_flash_slow(b, &r);
    case OP_CHANGE_BAUDRATE: return do_change_baud(b, &r);
    case OP_FLASH_DEFL_BEGIN: return do_flash_begin(b, &r, 1);
    case OP_FLASH_DEFL_DATA: return do_defl_data(b, &r);
    case OP_FLASH_DEFL_END: return do_flash_end(b, &r, 1);
    case OP_SPI_FLASH_MD5: return do_md5(b, &r);
    default: return unsupported(b, &r); /* GET_SECURITY_INFO, stub-only ops, ... (§15.1) */
    }
}

void sim_rom_frame(struct sim_board *b, size_t len)
{
    (void)len; /* a short frame runs with stale bytes (§15.1) */
    rom_frame(b);
}
