/* The flash side of a board, once connected: attach the SPI flash, read its JEDEC id and settle
 * the plan (size, header parameters), erase, verify every image with SPI_FLASH_MD5 and reset
 * into the new firmware. Writing the images is session_write.c. */
#include "session_internal.h"

#include <string.h>

/* Attach the SPI flash: SPI_ATTACH on ESP32-family chips; the ESP8266 ROM attaches on a
 * FLASH_BEGIN with zero sizes (§3.8); the ESP8266 stub has attached it already. */
void enter_attach(struct session *s)
{
    struct rom_begin b = {0};

    if (set_phase(s, SESSION_PHASE_ATTACH) < 0)
        return;
    if (chip_has(s->chip, CHIP_ROM_NEEDS_SPI_ATTACH)) {
        send_cmd(s, rom_encode_spi_attach(session_pkt, sizeof(session_pkt), 0, s->loader), 0,
                 CMD_TIMEOUT_MS);
        return;
    }
    if (s->loader != ROM_LOADER_STUB) {
        b.block_size = ROM_FLASH_BLOCK;
        send_cmd(s, rom_encode_flash_begin(session_pkt, sizeof(session_pkt), &b), 0,
                 CMD_TIMEOUT_MS);
        return;
    }
    goto_state(s, ST_FLASH_ID);
}

/* Read the JEDEC id by playing the chip's RDID register recipe (protocol doc §7.5). */
void rdid_send(struct session *s)
{
    const struct chip_reg_step *st = &s->rdid[s->step];
    uint32_t value = st->value;
    size_t len;

    switch (st->op) {
    case CHIP_REG_SAVE:
    case CHIP_REG_POLL:
    case CHIP_REG_RESULT:
        len = rom_encode_read_reg(session_pkt, sizeof(session_pkt), st->addr);
        break;
    case CHIP_REG_RESTORE:
        value = s->rdid_saved[st->value];
        /* fall through */
    case CHIP_REG_WRITE:
    default:
        len =
            rom_encode_write_reg(session_pkt, sizeof(session_pkt), st->addr, value, 0xFFFFFFFFu, 0);
        break;
    }
    send_cmd(s, len, 0, CMD_TIMEOUT_MS);
}

void enter_flash_id(struct session *s)
{
    if (set_phase(s, SESSION_PHASE_FLASH_ID) < 0)
        return;
    s->rdid_n = chip_rdid_steps(s->chip, s->rdid);
    s->step = 0;
    s->polls = 0;
    rdid_send(s);
}

static int settle_flash(struct session *s, uint32_t detected, struct es_err *err)
{
    const struct profile *p = s->profile;
    const struct chip_flash_size *fs;
    uint8_t code;
    int rc;

    s->flash_size = detected;
    if (p->flash.size_kind == PROFILE_SIZE_BYTES)
        s->flash_size = p->flash.size_bytes;
    if (s->flash_size == 0)
        return es_fail(err, ES_FLASH_SIZE,
                       "flash id 0x%06x has a capacity espstation does not know; set flash.size "
                       "in the profile",
                       s->rep.flash_id);
    s->rep.flash_size_bytes = s->flash_size;

    s->params.mode = IMAGE_KEEP;
    s->params.freq = IMAGE_KEEP;
    s->params.size = IMAGE_KEEP;
    if (strcmp(p->flash.mode, "keep") != 0) {
        if ((rc = chip_flash_mode_from_string(p->flash.mode, &code, err)) < 0)
            return rc;
        s->params.mode = code;
    }
    if (strcmp(p->flash.freq, "keep") != 0) {
        if ((rc = chip_flash_freq_from_string(s->chip, p->flash.freq, &code, err)) < 0)
            return rc;
        s->params.freq = code;
    }
    if (p->flash.size_kind != PROFILE_SIZE_KEEP) {
        if ((rc = chip_flash_size_from_bytes(s->chip, s->flash_size, &fs, err)) < 0)
            return rc;
        s->params.size = fs->code;
    }
    return profile_check_board(p, s->chip, s->flash_size, err);
}

void flash_id_done(struct session *s, const struct rom_reply *r)
{
    const struct chip_reg_step *st = &s->rdid[s->step];
    struct flash_id id;
    struct es_err err;

    switch (st->op) {
    case CHIP_REG_SAVE: s->rdid_saved[st->value] = r->value; break;
    case CHIP_REG_POLL:
        if ((r->value & st->value) != 0) {
            if (++s->polls >= CHIP_REG_POLL_MAX) {
                session_fail(s, ES_NO_FLASH, "the SPI flash did not finish RDID");
                return;
            }
            s->attempt = 0;
            rdid_send(s);
            return;
        }
        break;
    case CHIP_REG_RESULT: s->rep.flash_id = r->value & 0xFFFFFFu; break;
    case CHIP_REG_WRITE:
    case CHIP_REG_RESTORE: break;
    }
    if ((size_t)++s->step < s->rdid_n) {
        s->attempt = 0;
        rdid_send(s);
        return;
    }
    if (flash_id_decode(s->rep.flash_id, &id, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    s->rep.flash_id_valid = true;
    session_note(s, "flash", "flash id 0x%06x, %u KiB", s->rep.flash_id, id.size_bytes / 1024);
    if (set_phase(s, SESSION_PHASE_PLAN) < 0)
        return;
    if (settle_flash(s, id.size_bytes, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    goto_state(s, ST_SET_PARAMS);
}

void enter_set_params(struct session *s)
{
    if (!chip_has(s->chip, CHIP_ROM_SPI_SET_PARAMS)) {
        goto_state(s, ST_ERASE);
        return;
    }
    send_cmd(s, rom_encode_spi_set_params(session_pkt, sizeof(session_pkt), s->flash_size), 0,
             CMD_TIMEOUT_MS);
}

/* Erase the whole chip first when the profile asks for it (protocol doc §3.13). The ROMs have no
 * chip erase: a FLASH_BEGIN over the whole flash does the same. */
void enter_erase(struct session *s)
{
    struct rom_begin b = {0};

    if (s->cfg.mode == SESSION_VERIFY) {
        s->img = 0;
        goto_state(s, ST_VERIFY);
        return;
    }
    if (s->profile->erase != PROFILE_ERASE_ALL) {
        s->img = 0;
        goto_state(s, ST_WRITE_BEGIN);
        return;
    }
    if (set_phase(s, SESSION_PHASE_ERASE) < 0)
        return;
    if (s->loader == ROM_LOADER_STUB) {
        send_cmd(s, rom_encode_erase_flash(session_pkt, sizeof(session_pkt)), 0,
                 CHIP_ERASE_TIMEOUT_MS);
        return;
    }
    b.size =
        s->loader == ROM_LOADER_ESP8266 ? rom_esp8266_erase_size(0, s->flash_size) : s->flash_size;
    b.block_size = ROM_FLASH_BLOCK;
    send_cmd(s, rom_encode_flash_begin(session_pkt, sizeof(session_pkt), &b), 0,
             per_mb_timeout(s->flash_size, ERASE_MS_PER_MB));
}

/* Verify every image region with SPI_FLASH_MD5 against the MD5 of the bytes sent (§8.7). */
void enter_verify(struct session *s)
{
    struct es_err err;
    const struct image_prepared *prep;

    if (s->profile->verify == PROFILE_VERIFY_NONE) {
        goto_state(s, ST_RUN_RESET);
        return;
    }
    if (s->loader != ROM_LOADER_STUB && !chip_has(s->chip, CHIP_ROM_MD5)) {
        session_fail(s, ES_UNSUPPORTED,
                     "the %s ROM has no MD5 command: verify needs loader: stub (the default)",
                     s->chip->display);
        return;
    }
    if (set_phase(s, SESSION_PHASE_VERIFY) < 0)
        return;
    if (load_payload(s, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    prep = s->payload->prepared;
    s->images[s->img].md5_sent_valid = true;
    memcpy(s->images[s->img].md5_sent, prep->md5, 16);
    send_cmd(s,
             rom_encode_spi_flash_md5(session_pkt, sizeof(session_pkt), prep->offset,
                                      (uint32_t)prep->size),
             md5_result_len(s), per_mb_timeout(prep->size, MD5_MS_PER_MB));
}

void verify_done(struct session *s, const struct rom_reply *r)
{
    struct report_image *ri = &s->images[s->img];
    struct es_err err;
    char want[33], got[33];

    if (rom_decode_md5(r, s->loader, ri->md5_read, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    ri->md5_read_valid = true;
    ri->verified = memcmp(ri->md5_read, ri->md5_sent, 16) == 0;
    es_hex(ri->md5_sent, 16, want);
    es_hex(ri->md5_read, 16, got);
    /* The reply has no checksum: a digest damaged on the line would fail a good board, so a
     * mismatch is read again. Noise cannot forge the expected digest, so a match is a match. */
    if (!ri->verified && ++s->md5_reads < MD5_READS) {
        session_note(s, "retry",
                     "image at 0x%05x: flash MD5 %s, expected %s; reading it again (%d of %d)",
                     ri->offset, got, want, s->md5_reads + 1, MD5_READS);
        goto_state(s, ST_VERIFY);
        return;
    }
    s->md5_reads = 0;
    /* Read right, written wrong: a block damaged on the line in a way its checksum missed (an
     * XOR catches no pair of flips in the same bit). Written once more, then judged again. */
    if (!ri->verified && s->rewrites < IMAGE_REWRITES && s->profile->verify == PROFILE_VERIFY_MD5 &&
        s->cfg.mode == SESSION_FLASH) {
        session_note(s, "retry",
                     "image at 0x%05x: flash MD5 %s, expected %s; writing the image again",
                     ri->offset, got, want);
        s->rewrites++;
        s->rep.block_retries++;
        s->verify_rewrite = 1;
        goto_state(s, ST_WRITE_BEGIN);
        return;
    }
    if (!ri->verified) {
        session_fail(s, ES_VERIFY_MISMATCH,
                     "image %s at 0x%05x: flash MD5 %s, expected %s; the flash does not hold "
                     "the image",
                     ri->file, ri->offset, got, want);
        return;
    }
    s->rewrites = 0;
    session_note(s, "verified", "0x%05x: md5 %s", ri->offset, got);
    if (++s->img < s->profile->n_images) {
        goto_state(s, ST_VERIFY);
        return;
    }
    goto_state(s, ST_RUN_RESET);
}

/* Hard reset into the new firmware (§5.2): RTS asserted for 100 ms, then released. */
void enter_run_reset(struct session *s)
{
    /* A probe only looks at which board is there: it starts the firmware but checks nothing. */
    const struct profile_boot_check *boot =
        s->cfg.mode == SESSION_PROBE ? NULL : s->profile->boot_check;
    struct es_err err;

    if (s->profile->reset_after == PROFILE_RESET_AFTER_NONE || !port_can_reset(s->port)) {
        if (s->profile->reset_after != PROFILE_RESET_AFTER_NONE)
            session_note(s, "reset", "port has no modem lines: board left in the loader%s",
                         boot != NULL ? "; boot check skipped, the firmware never started" : "");
        session_finish(s, REPORT_PASS);
        return;
    }
    if (set_phase(s, SESSION_PHASE_RUN) < 0)
        return;
    if (s->step == 0) { /* RTS asserted = EN low: in reset */
        if (port_set_lines(s->port, 0, 1, &err) < 0) {
            session_fail_err(s, &err);
            return;
        }
        s->step = 1;
        arm_timer(s, RESET_HOLD_MS);
        return;
    }
    /* The boot check listens from the first byte the firmware prints: its rate is set while the
     * chip is still held in reset. */
    if (boot != NULL && port_set_baud(s->port, boot->baud, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    if (port_set_lines(s->port, 0, 0, &err) < 0) {
        session_fail_err(s, &err);
        return;
    }
    if (boot != NULL) {
        goto_state(s, ST_BOOT);
        return;
    }
    session_finish(s, REPORT_PASS);
}
