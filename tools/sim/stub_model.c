/* The flasher stub as Espressif's clients drive it (§10, §2.6, and the commands esploader.js
 * sends once IS_STUB is set): 2 status bytes with the code first, 0x4000-byte blocks, raw MD5,
 * ERASE_FLASH/ERASE_REGION, READ_FLASH with acknowledgements, CHANGE_BAUDRATE on both chips.
 *
 * When a data block is answered depends on the stub family (model.h, §10.2):
 * - esp-flasher-stub (SIM_STUB_FLASHER): decompress, erase just in time and program, then
 *   answer. Its receiver is held meanwhile (board.c), so nothing may be sent before the reply.
 * - legacy stub (SIM_STUB_LEGACY): answer as soon as the block is checked, then program it while
 *   the next block arrives; the reply to block n+1 waits until block n is programmed
 *   (busy_until), and an error found while programming is reported with the next DATA or END. */
#include <stdio.h>
#include <string.h>

#include "es/le.h"
#include "model.h"

/* Stub error codes (§2.6). */
enum {
    STUB_OK = 0x00,
    STUB_BAD_DATA_LEN = 0xC0,
    STUB_BAD_CHECKSUM = 0xC1,
    STUB_BAD_BLOCKSIZE = 0xC2,
    STUB_SPI_FAILED = 0xC4,
    STUB_NOT_IN_FLASH_MODE = 0xC6,
    STUB_INFLATE = 0xC7,
    STUB_NOT_ENOUGH_DATA = 0xC8,
    STUB_TOO_MUCH_DATA = 0xC9,
    STUB_NOT_IMPLEMENTED = 0xFF,
};

#define STUB_MAX_BLOCK 0x4000u
#define STUB_MAX_PKT   0x1000u /* READ_FLASH packet buffer: one sector */
#define MIB            (1024u * 1024u)

struct req {
    uint8_t op;
    uint32_t size;
    uint32_t checksum;
    const uint8_t *data;
    uint64_t start;
};

static uint32_t word(const struct req *r, unsigned i)
{
    return es_get_le32(r->data + 4 * i);
}

static void reply_data(struct sim_board *b, const struct req *r, const uint8_t *data, size_t dlen,
                       uint8_t code, uint32_t value, uint64_t at)
{
    uint8_t pkt[8 + 16 + 2];

    if (dlen > 16)
        dlen = 16;
    b->busy_until = at > b->busy_until ? at : b->busy_until;
    pkt[0] = 0x01;
    pkt[1] = r->op;
    es_put_le16(pkt + 2, (uint16_t)(dlen + 2));
    es_put_le32(pkt + 4, value);
    if (dlen)
        memcpy(pkt + 8, data, dlen);
    pkt[8 + dlen] = code; /* §2.3: the stub's code is the first status byte */
    pkt[9 + dlen] = 0;
    if (!sim_reply_allowed(b, r->op, &at))
        return;
    sim_send_frame(b, pkt, 10 + dlen, at);
}

static void reply(struct sim_board *b, const struct req *r, uint8_t code, uint64_t cost)
{
    reply_data(b, r, NULL, 0, code, 0, r->start + SIM_T_CMD_NS + cost);
}

static uint32_t data_checksum(const uint8_t *p, uint32_t n)
{
    uint8_t sum = 0xEF;

    for (uint32_t i = 0; i < n; i++)
        sum ^= p[i];
    return sum;
}

void sim_stub_start(struct sim_board *b, enum sim_stub_family family, uint64_t at)
{
    static const uint8_t ohai[4] = {'O', 'H', 'A', 'I'};

    sim_write_close(&b->fw);
    sim_write_close(&b->mw);
    memset(&b->rd, 0, sizeof(b->rd));
    b->mode = SIM_MODE_STUB;
    sim_stub_rx_reset(b, family);
    sim_regs_flash_attached(b); /* the stub attaches the flash itself */
    b->flash_limit = 16u * MIB; /* and configures a 16 MiB chip until told otherwise */
    b->stub_error = 0;
    b->busy_until = at;
    sim_log(b, "stub running");
    sim_send_frame(b, ohai, sizeof(ohai), at); /* §10.1: unsolicited greeting */
}

/* ---- READ_FLASH: packets, the in-flight window, acknowledgements, then the MD5 ------------- */

static void read_pump(struct sim_board *b, uint64_t at)
{
    uint8_t buf[STUB_MAX_PKT];

    while (b->rd.sent < b->rd.total &&
           (uint64_t)(b->rd.sent - b->rd.acked) < (uint64_t)b->rd.window * b->rd.packet) {
        uint32_t n = b->rd.total - b->rd.sent;

        if (n > b->rd.packet)
            n = b->rd.packet;
        sim_flash_read(&b->flash, b->rd.addr + b->rd.sent, buf, n);
        sim_md5_update(&b->rd.md5, buf, n);
        sim_send_frame(b, buf, n, at);
        b->rd.sent += n;
    }
    if (b->rd.acked >= b->rd.total) {
        uint8_t digest[16];

        sim_md5_final(&b->rd.md5, digest);
        sim_send_frame(b, digest, sizeof(digest), at);
        b->rd.active = 0;
    }
}

static void read_ack(struct sim_board *b, const uint8_t *frame, size_t len)
{
    uint32_t v;

    if (len != 4) {
        sim_log(b, "READ_FLASH: a %zu-byte frame instead of an ack; read abandoned", len);
        b->rd.active = 0;
        return;
    }
    v = es_get_le32(frame);
    if (v > b->rd.sent) {
        sim_log(b, "READ_FLASH: ack of %u bytes but only %u sent; read abandoned", v, b->rd.sent);
        b->rd.active = 0;
        return;
    }
    if (v > b->rd.acked)
        b->rd.acked = v;
    read_pump(b, b->now + SIM_T_CMD_NS);
}

static void do_read_flash(struct sim_board *b, const struct req *r)
{
    if (r->size != 16 || word(r, 2) == 0 || word(r, 2) > STUB_MAX_PKT) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    reply(b, r, STUB_OK, 0);
    b->rd.active = 1;
    b->rd.addr = word(r, 0);
    b->rd.total = word(r, 1);
    b->rd.packet = word(r, 2);
    b->rd.window = word(r, 3) ? word(r, 3) : 1;
    b->rd.sent = b->rd.acked = 0;
    sim_md5_init(&b->rd.md5);
    read_pump(b, b->busy_until);
}

/* ---- writes ------------------------------------------------------------------------------ */

static void do_begin(struct sim_board *b, const struct req *r, int deflate)
{
    struct sim_write *w = &b->fw;
    uint32_t total, off;

    if (r->size != 16 && r->size != 20) /* 20: the encrypted-write word of newer hosts */
    {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    if (word(r, 2) > STUB_MAX_BLOCK) {
        reply(b, r, STUB_BAD_BLOCKSIZE, 0);
        return;
    }
    total = word(r, 0); /* bytes to write, uncompressed; no ESP8266 erase bug here (§8.3) */
    off = word(r, 3);
    sim_write_close(w);
    w->active = 1;
    w->deflate = deflate;
    w->offset = w->ptr = off;
    w->blocks = word(r, 1);
    w->block_size = word(r, 2);
    w->remaining = total;
    w->clip = 1;
    w->erase_next = off / SIM_FLASH_SECTOR * SIM_FLASH_SECTOR;
    w->erase_end = (uint32_t)(((uint64_t)off + total + SIM_FLASH_SECTOR - 1) / SIM_FLASH_SECTOR *
                              SIM_FLASH_SECTOR);
    w->expected = (uint64_t)w->blocks * w->block_size;
    b->stub_error = 0;
    reply(b, r, STUB_OK, 0);
}

static void do_data(struct sim_board *b, const struct req *r, int deflate)
{
    struct sim_write *w = &b->fw;
    uint32_t len;
    uint64_t cost = 0, at;
    int fault = 0;

    if (!w->active || w->deflate != deflate) {
        reply(b, r, STUB_NOT_IN_FLASH_MODE, 0);
        return;
    }
    if (r->size < 16) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    if (sim_count_data(b, r->size - 16))
        return;
    len = word(r, 0);
    if (len != r->size - 16) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    if (data_checksum(r->data + 16, len) != r->checksum) {
        reply(b, r, STUB_BAD_CHECKSUM, 0);
        return;
    }
    if (b->stub_error) {
        reply(b, r, (uint8_t)b->stub_error, 0); /* from programming the previous block */
        return;
    }
    at = r->start + SIM_T_CMD_NS;
    if (b->stub == SIM_STUB_LEGACY)
        reply(b, r, STUB_OK, 0); /* queued: answer now, program while the next block arrives */
    if (deflate) {
        int z = sim_inflate_data(b, r->data + 16, len, 1, &cost, &fault);

        if (z < 0)
            b->stub_error = STUB_INFLATE;
        else if (w->overflow)
            b->stub_error = STUB_TOO_MUCH_DATA;
    } else {
        fault = sim_write_data(b, r->data + 16, len, 1, &cost);
    }
    if (fault && b->cfg.faults.bad_flash_reports && !b->stub_error)
        b->stub_error = STUB_SPI_FAILED;
    b->busy_until = at + cost;
    if (b->stub != SIM_STUB_LEGACY) {
        /* Written: answer now, with what went wrong if anything did. */
        uint8_t code = (uint8_t)b->stub_error;

        b->stub_error = 0;
        reply_data(b, r, NULL, 0, code, 0, at + cost);
    }
}

static void do_end(struct sim_board *b, const struct req *r, int deflate)
{
    struct sim_write *w = &b->fw;
    uint8_t code = STUB_OK;
    uint32_t flag;

    if (r->size != 4) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    if (!w->active) {
        reply(b, r, STUB_NOT_IN_FLASH_MODE, 0);
        return;
    }
    (void)deflate;
    flag = word(r, 0);
    if (b->stub_error)
        code = (uint8_t)b->stub_error;
    else if (w->remaining > 0)
        code = STUB_NOT_ENOUGH_DATA;
    sim_write_close(w);
    b->stub_error = 0;
    reply(b, r, code, 0); /* after the last block is really in flash (§3.4) */
    if (code == STUB_OK && flag == 0) {
        /* §5.3: FLASH_END(0) from the stub reboots into the ROM loader. */
        sim_soft_reboot(b, b->busy_until);
    }
}

static void do_erase_region(struct sim_board *b, const struct req *r)
{
    uint32_t addr, n;

    if (r->size != 8) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    addr = word(r, 0);
    n = word(r, 1);
    if (addr % SIM_FLASH_SECTOR || n % SIM_FLASH_SECTOR) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    for (uint32_t i = 0; i < n / SIM_FLASH_SECTOR; i++)
        sim_flash_erase_sector(&b->flash, addr + i * SIM_FLASH_SECTOR);
    reply(b, r, STUB_OK, sim_erase_cost(n / SIM_FLASH_SECTOR));
}

static void do_md5(struct sim_board *b, const struct req *r)
{
    uint8_t digest[16];
    uint32_t addr, n;

    if (r->size != 16) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    addr = word(r, 0);
    n = word(r, 1);
    if ((uint64_t)addr + n > b->flash.size) {
        reply(b, r, STUB_SPI_FAILED, 0); /* [model] past the end of the chip */
        return;
    }
    sim_flash_md5(&b->flash, addr, n, digest);
    reply_data(b, r, digest, 16, STUB_OK, 0,
               r->start + SIM_T_CMD_NS + (uint64_t)n * SIM_T_MD5_MIB_NS / MIB);
}

static void do_change_baud(struct sim_board *b, const struct req *r)
{
    uint32_t to, claimed;

    if (r->size != 8 || word(r, 0) == 0) {
        reply(b, r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    to = word(r, 0);
    claimed = word(r, 1);
    reply(b, r, STUB_OK, 0); /* at the old rate */
    /* §3.10: the stub scales its divider by claimed/new; a wrong "current baud" (0 included)
     * leaves it at a rate the host is not at. */
    if (claimed != b->baud || b->cfg.faults.baud_fail) {
        sim_log(b, "stub CHANGE_BAUDRATE %u -> %u with current %u (really %u): garbled", b->baud,
                to, claimed, b->baud);
        b->garbled = 1;
    }
    b->baud = to;
}

static void do_mem(struct sim_board *b, const struct req *r)
{
    struct sim_write *w = &b->mw;

    switch (r->op) {
    case OP_MEM_BEGIN:
        if (r->size != 16) {
            reply(b, r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        sim_write_close(w);
        w->active = 1;
        w->remaining = word(r, 0);
        {
            reply(b, r, STUB_OK, 0);
            return;
        }
    case OP_MEM_DATA:
        if (!w->active) {
            reply(b, r, STUB_NOT_IN_FLASH_MODE, 0);
            return;
        }
        if (r->size < 16 || word(r, 0) != r->size - 16 || word(r, 0) > w->remaining) {
            reply(b, r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        if (data_checksum(r->data + 16, word(r, 0)) != r->checksum) {
            reply(b, r, STUB_BAD_CHECKSUM, 0);
            return;
        }
        w->remaining -= word(r, 0);
        {
            reply(b, r, STUB_OK, 0);
            return;
        }
    default:
        if (r->size != 8) {
            reply(b, r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        if (!w->active) {
            reply(b, r, STUB_NOT_IN_FLASH_MODE, 0);
            return;
        }
        sim_write_close(w);
        reply(b, r, STUB_OK, 0);
        if (word(r, 0) == 0) {
            sim_log(b, "stub jumps to RAM code at 0x%08x: silent from now on", word(r, 1));
            b->mode = SIM_MODE_DEAD;
        }
        return;
    }
}

void sim_stub_frame(struct sim_board *b, const uint8_t *frame, size_t len)
{
    struct req r;
    int esp8266 = b->cfg.chip == SIM_ESP8266;

    if (b->rd.active) {
        read_ack(b, frame, len);
        return;
    }
    if (len < 8 || frame[0] != 0x00)
        return; /* not a request */
    r.op = frame[1];
    r.size = es_get_le16(frame + 2);
    r.checksum = es_get_le32(frame + 4);
    r.data = frame + 8;
    r.start = sim_cmd_start(b);
    if (r.size != len - 8) {
        reply(b, &r, STUB_BAD_DATA_LEN, 0);
        return;
    }
    switch (r.op) {
    case OP_SYNC:
        if (r.size != 36) {
            reply(b, &r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        for (int i = 0; i < 8; i++) /* like the ROM, but value 0 (§4) */
            reply(b, &r, STUB_OK, 0);
        return;
    case OP_READ_REG: {
        int mapped;
        uint32_t v;

        if (r.size != 4) {
            reply(b, &r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        v = sim_regs_read(b, word(&r, 0), &mapped);
        {
            reply_data(b, &r, NULL, 0, STUB_OK, v, r.start + SIM_T_CMD_NS);
            return;
        }
    }
    case OP_WRITE_REG: {
        uint64_t cost = 0;

        if (r.size == 0 || r.size % 16) {
            reply(b, &r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        for (unsigned g = 0; g < r.size / 16; g++) {
            sim_regs_write(b, word(&r, 4 * g), word(&r, 4 * g + 1), word(&r, 4 * g + 2));
            cost += (uint64_t)word(&r, 4 * g + 3) * 1000;
        }
        {
            reply(b, &r, STUB_OK, cost);
            return;
        }
    }
    case OP_FLASH_BEGIN: do_begin(b, &r, 0); return;
    case OP_FLASH_DEFL_BEGIN: do_begin(b, &r, 1); return;
    case OP_FLASH_DATA: do_data(b, &r, 0); return;
    case OP_FLASH_DEFL_DATA: do_data(b, &r, 1); return;
    case OP_FLASH_END: do_end(b, &r, 0); return;
    case OP_FLASH_DEFL_END: do_end(b, &r, 1); return;
    case OP_MEM_BEGIN:
    case OP_MEM_DATA:
    case OP_MEM_END: do_mem(b, &r); return;
    case OP_SPI_ATTACH:
        if (r.size != 4 && r.size != 8) {
            reply(b, &r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        sim_regs_flash_attached(b);
        {
            reply(b, &r, STUB_OK, 0);
            return;
        }
    case OP_SPI_SET_PARAMS:
        if (r.size != 24) {
            reply(b, &r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        b->flash_limit = word(&r, 1);
        {
            reply(b, &r, STUB_OK, 0);
            return;
        }
    case OP_CHANGE_BAUDRATE: do_change_baud(b, &r); return;
    case OP_SPI_FLASH_MD5: do_md5(b, &r); return;
    case OP_ERASE_FLASH:
        if (r.size != 0) {
            reply(b, &r, STUB_BAD_DATA_LEN, 0);
            return;
        }
        sim_flash_erase_all(&b->flash);
        {
            reply(b, &r, STUB_OK, (uint64_t)b->flash.size * SIM_T_CHIP_ERASE_MIB_NS / MIB);
            return;
        }
    case OP_ERASE_REGION: do_erase_region(b, &r); return;
    case OP_READ_FLASH: do_read_flash(b, &r); return;
    case OP_RUN_USER_CODE:
        if (esp8266) { /* §5.3: no reply; the application starts */
            sim_flash_boot(b, r.start + SIM_T_CMD_NS, 1);
            return;
        }
        {
            reply(b, &r, STUB_NOT_IMPLEMENTED, 0);
            return;
        }
    default:
        reply(b, &r, STUB_NOT_IMPLEMENTED, 0); /* incl. GET_SECURITY_INFO */
        return;
    }
}
