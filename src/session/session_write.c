/* Writing one image: BEGIN, the data blocks one at a time, the stub's flush; and what keeps a
 * write going on a noisy line: resending a refused block, restarting from the last point surely
 * written, and resynchronising a stub left inside a broken frame. */
#include "session_internal.h"

#include <stdlib.h>
#include <string.h>

/* Write one image: FLASH_BEGIN (or FLASH_DEFL_BEGIN with the stub), its blocks, then with the
 * stub one READ_REG that is answered only once the last block is in flash (esptool does the
 * same). After a refused or lost block the write restarts with a new BEGIN (both ROMs advance
 * their sequence number even on a refused block, protocol doc §15), from the last point that
 * is surely written: the last 4 KiB boundary the acknowledged raw blocks reach, or the last
 * restart point of the zlib stream (es/deflate.h) the acknowledged compressed blocks reach.
 * With the stub every failed block also halves the block size, down to 1 KiB: on a noisy line a
 * smaller block gets through more often. The MD5 verify still covers the whole image. */
int load_payload(struct session *s, struct es_err *err)
{
    s->compressed = s->loader == ROM_LOADER_STUB;
    return s->cb.get_payload(s, s->profile, s->img, s->chip, &s->params, s->compressed, &s->payload,
                             err, s->arg);
}

static size_t stream_size(const struct session *s)
{
    return s->wr_size;
}

/* Points wr_stream at what this (re)start sends, from wr_point (compressed) or wr_base. */
static int select_stream(struct session *s, struct es_err *err)
{
    const struct image_prepared *prep = s->payload->prepared;
    const struct image_deflate *z = s->payload->z;

    free(s->resume_buf);
    s->resume_buf = NULL;
    if (!s->compressed) {
        s->wr_stream = prep->data + s->wr_base;
        s->wr_size = prep->size - s->wr_base;
        return 0;
    }
    s->wr_base = z->points[s->wr_point].uoff;
    if (s->wr_point == 0) {
        s->wr_stream = z->z;
        s->wr_size = z->zsize;
        return 0;
    }
    if (image_deflate_tail(z, prep->data, prep->size, s->wr_point, &s->resume_buf, &s->wr_size,
                           err) < 0)
        return -1;
    s->wr_stream = s->resume_buf;
    return 0;
}

void enter_write_begin(struct session *s)
{
    const struct image_prepared *prep;
    struct rom_begin b = {0};
    struct es_err err;
    size_t len;

    if (set_phase(s, SESSION_PHASE_WRITE) < 0)
        return;
    if (load_payload(s, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    prep = s->payload->prepared;
    if (s->img == 0 && s->image_attempts == 0) {
        s->total_bytes = 0;
        for (size_t i = 0; i < s->profile->n_images; i++)
            s->total_bytes += s->profile->images[i].image->size;
        s->write_start_ns = uv_hrtime();
    }
    if (s->image_attempts == 0) {
        s->wr_base = 0;
        s->wr_point = 0;
    }
    if (select_stream(s, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    if (s->loader == ROM_LOADER_STUB && s->stub_block == 0)
        s->stub_block = s->chip->stub_block_size;
    s->block_size = s->loader == ROM_LOADER_STUB ? s->stub_block : ROM_FLASH_BLOCK;
    s->seq = 0;
    s->acked = 0;
    s->off = 0;
    s->block_fails = 0;
    s->blocks = rom_block_count((uint32_t)stream_size(s), s->block_size);
    b.blocks = s->blocks;
    b.block_size = s->block_size;
    b.offset = prep->offset + s->wr_base;
    if (s->compressed) {
        b.size = (uint32_t)(prep->size - s->wr_base);
        len = rom_encode_flash_defl_begin(session_pkt, sizeof(session_pkt), &b);
    } else {
        b.size = s->loader == ROM_LOADER_ESP8266
                     ? rom_esp8266_erase_size(b.offset, (uint32_t)s->wr_size)
                     : (uint32_t)s->wr_size;
        len = rom_encode_flash_begin(session_pkt, sizeof(session_pkt), &b);
    }
    s->images[s->img].md5_sent_valid = true;
    memcpy(s->images[s->img].md5_sent, prep->md5, 16);
    send_cmd(s, len, 0, per_mb_timeout(prep->size - s->wr_base, ERASE_MS_PER_MB));
}

/* Sends the next data block (sequence s->seq). Returns 0, or -1 when the session failed. */
static int send_block(struct session *s)
{
    const uint8_t *stream = s->wr_stream;
    size_t n = stream_size(s) - s->off;
    size_t len;

    if (n > s->block_size)
        n = s->block_size;
    s->blk_off = s->off;
    if (s->compressed)
        len = rom_encode_flash_defl_data(session_pkt, sizeof(session_pkt), s->seq, stream + s->off,
                                         n);
    else
        len = rom_encode_flash_data(session_pkt, sizeof(session_pkt), s->seq, stream + s->off, n,
                                    s->block_size);
    s->pending_op = session_pkt[1];
    s->pending_result_len = 0;
    if (send_packet(s, len) < 0)
        return -1;
    s->off += n;
    s->seq++;
    return 0;
}

/* Blocks sent before the previous one is answered (protocol doc §10.2): one, for every loader.
 * The ROMs program a block before they answer it. The esp-flasher-stub build we ship has one
 * frame buffer and stops draining the 128-byte UART FIFO while a frame waits, so a second block
 * sent early loses all but its first 128 bytes (and its closing 0xC0: the stub is then stuck in
 * a broken frame, see enter_resync). The legacy stub and the reworked esp-flasher-stub answer
 * before they write, so with them one block in flight already overlaps the write with the next
 * block's transfer; no build is known that takes a block before it has answered the previous
 * one. The next block goes out as soon as the reply is in (write_data_done). */
static unsigned write_window(const struct session *s)
{
    (void)s;
    return 1;
}

void enter_write_data(struct session *s)
{
    uint64_t timeout = CMD_TIMEOUT_MS;

    while (s->seq - s->acked < write_window(s) && s->off < stream_size(s)) {
        if (send_block(s) < 0)
            return;
    }
    if (s->compressed) {
        /* A compressed block may expand to much more flash than it is long (esptool sizes the
         * timeout by the uncompressed bytes, 40 s/MB). Each block in flight adds its time. */
        timeout =
            per_mb_timeout((uint64_t)s->block_size * (s->payload->prepared->size - s->wr_base) /
                               stream_size(s) * (s->seq - s->acked),
                           ERASE_MS_PER_MB);
    }
    s->pending_timeout_ms = timeout;
    s->waiting = 1;
    arm_timer(s, session_scaled(s, timeout));
}

static uint64_t image_done_bytes(const struct session *s)
{
    uint64_t before = 0, size = s->profile->images[s->img].image->size;
    uint64_t acked = (uint64_t)s->acked * s->block_size, base = s->wr_base;

    for (size_t i = 0; i < s->img; i++)
        before += s->profile->images[i].image->size;
    if (base > size)
        base = size;
    if (stream_size(s) == 0)
        return before + base;
    if (acked > stream_size(s))
        acked = stream_size(s);
    return before + base + acked * (size - base) / stream_size(s);
}

void write_data_done(struct session *s)
{
    s->block_fails = 0;
    s->acked++;
    s->done_bytes = image_done_bytes(s);
    if (s->acked < s->blocks) {
        enter_write_data(s);
        return;
    }
    s->images[s->img].written_bytes = s->payload->prepared->size;
    /* The stub acknowledges a block before it is in flash; one more command is answered only
     * after the last block was written (esptool does the same). */
    if (s->loader == ROM_LOADER_STUB)
        goto_state(s, ST_WRITE_FLUSH);
    else
        image_written(s);
}

void enter_write_flush(struct session *s)
{
    send_cmd(s, rom_encode_read_reg(session_pkt, sizeof(session_pkt), CHIP_MAGIC_REG), 0,
             per_mb_timeout(s->block_size * 4u, ERASE_MS_PER_MB));
}

/* The current image is in flash: on to the next one, or to verifying. */
void image_written(struct session *s)
{
    session_note(s, "image_written", "0x%05x: %zu bytes", s->payload->prepared->offset,
                 s->payload->prepared->size);
    s->image_restarts = 0;
    s->image_attempts = 0;
    s->fail_pos = 0;
    free(s->resume_buf);
    s->resume_buf = NULL;
    if (s->verify_rewrite) {
        s->verify_rewrite = 0;
        goto_state(s, ST_VERIFY);
        return;
    }
    if (++s->img < s->profile->n_images) {
        goto_state(s, ST_WRITE_BEGIN);
        return;
    }
    s->img = 0;
    goto_state(s, ST_VERIFY);
}

/* How far into the image's stream the acknowledged blocks reach. */
static size_t write_pos(const struct session *s)
{
    size_t acked = s->state == ST_WRITE_BEGIN ? 0 : (size_t)s->acked * s->block_size;

    if (s->compressed)
        return s->payload->z->points[s->wr_point].zoff - 2 + acked;
    return s->wr_base + acked;
}

/* Moves the next BEGIN to the last point the acknowledged blocks surely wrote (see above). */
static void resume_point(struct session *s)
{
    size_t pos = write_pos(s);

    if (s->compressed) {
        size_t k = image_deflate_point(s->payload->z, pos);

        if (k > s->wr_point)
            s->wr_point = k;
        return;
    }
    pos -= pos % FLASH_SECTOR_BYTES; /* a BEGIN erases from its offset: restart on a sector */
    if (pos > s->wr_base)
        s->wr_base = (uint32_t)pos;
}

/* A stub refused the block in flight for its checksum or length (§2.6): it checks both before
 * it touches its decompressor or the flash (esp-flasher-stub s_flash_defl_data, and the legacy
 * stub likewise), and it answered, so it is listening: the same block is sent again. A block
 * refused twice in a row restarts the write in smaller blocks instead. The ROMs count a refused
 * block (§15), so with them this never applies. */
int block_resend(struct session *s, const struct rom_reply *r, const struct es_err *why)
{
    if (s->loader != ROM_LOADER_STUB || s->state != ST_WRITE_DATA ||
        (r->error != STUB_ERR_BAD_DATA_LEN && r->error != STUB_ERR_BAD_CHECKSUM) ||
        s->seq != s->acked + 1 || ++s->block_fails >= 2)
        return -1;
    s->rep.block_retries++;
    session_note(s, "retry", "image at 0x%05x, block %u: %s; sending it again",
                 s->payload->prepared->offset, s->acked, why->msg);
    s->seq = s->acked;
    s->off = s->blk_off;
    enter_write_data(s);
    return 0;
}

int write_retry(struct session *s, const struct es_err *why)
{
    uint32_t offset = s->payload != NULL ? s->payload->prepared->offset : 0;

    s->rep.block_retries++;
    if (s->payload == NULL || ++s->image_attempts > IMAGE_RESTARTS_MAX)
        return -1;
    /* A failure at the very place of the last one is the board's, not the line's (a flash that
     * will not take a block): three in a row fail the board. Noise strikes anywhere. */
    if (s->image_attempts > 1 && write_pos(s) == s->fail_pos) {
        if (++s->image_restarts > BLOCK_RETRIES)
            return -1;
    } else {
        s->image_restarts = 0;
    }
    s->fail_pos = write_pos(s);
    resume_point(s);
    if (s->loader == ROM_LOADER_STUB && s->stub_block > MIN_STUB_BLOCK)
        s->stub_block /= 2;
    session_note(
        s, "retry",
        "image at 0x%05x, block %u: %s; writing again from 0x%05x in blocks of %u (restart %u, "
        "%u in a row at one place of %d allowed)",
        offset, s->seq, why->msg,
        offset + (s->compressed ? s->payload->z->points[s->wr_point].uoff : s->wr_base),
        s->loader == ROM_LOADER_STUB ? s->stub_block : ROM_FLASH_BLOCK, s->image_attempts,
        s->image_restarts, BLOCK_RETRIES);
    goto_state(s, s->loader == ROM_LOADER_STUB ? ST_RESYNC : ST_WRITE_BEGIN);
    return 0;
}

/* Before a stub retries, it must be listening for a frame again. The stubs' SLIP decoders
 * (esp-flasher-stub and legacy alike) toggle on every 0xC0, an empty frame too: a block that
 * lost its closing 0xC0, or its opening one, leaves the stub inside a frame, and from then on
 * each request's first 0xC0 ends that frame, its body is skipped and its last 0xC0 opens the
 * next: every request is lost. One lone 0xC0 flips that, but also puts a listening stub inside
 * a frame. So the host sends READ_REG, a lone 0xC0, then SYNC, and exactly one of the two is
 * answered: SYNC when the stub was inside a frame (the 0xC0s of READ_REG end that frame and the
 * next, the lone one leaves it listening), and then it is listening; READ_REG when it was
 * listening, and then the lone 0xC0 has put it inside a frame, which one more lone 0xC0 ends
 * (resync_listening). The ROMs' decoders treat runs of 0xC0 as harmless (§15.1). The reply to
 * the broken frame and any late reply to the lost block have other ops and are dropped. */
static const uint8_t lone_end[] = {SLIP_END};

void enter_resync(struct session *s)
{
    struct es_err err;

    if (send_packet(s, rom_encode_read_reg(session_pkt, sizeof(session_pkt), CHIP_MAGIC_REG)) < 0)
        return;
    if (port_write(s->port, lone_end, sizeof(lone_end), &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    send_cmd(s, rom_encode_sync(session_pkt, sizeof(session_pkt)), 0, RESYNC_TIMEOUT_MS);
}

/* READ_REG was answered: the stub was listening and is now inside an empty frame. */
void resync_listening(struct session *s)
{
    struct es_err err;

    uv_timer_stop(&s->timer);
    if (port_write(s->port, lone_end, sizeof(lone_end), &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    session_note(s, "resync", "the stub answers again (it was listening)");
    goto_state(s, ST_WRITE_BEGIN);
}
