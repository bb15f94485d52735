/* Request encoders and reply decoders of the ESP serial download protocol (protocol doc §2–§4,
 * §15). Every field is put with an explicit little-endian helper so each wire byte is visible;
 * SLIP framing lives in slip.c and the per-chip facts in src/chip. */
#include "es/rom.h"

#include <string.h>

#include "es/le.h"

#define DIR_REQUEST ROM_DIR_REQUEST
#define DIR_REPLY   ROM_DIR_REPLY

const char *rom_op_name(uint8_t op)
{
    switch (op) {
    case ROM_OP_FLASH_BEGIN: return "FLASH_BEGIN";
    case ROM_OP_FLASH_DATA: return "FLASH_DATA";
    case ROM_OP_FLASH_END: return "FLASH_END";
    case ROM_OP_MEM_BEGIN: return "MEM_BEGIN";
    case ROM_OP_MEM_END: return "MEM_END";
    case ROM_OP_MEM_DATA: return "MEM_DATA";
    case ROM_OP_SYNC: return "SYNC";
    case ROM_OP_WRITE_REG: return "WRITE_REG";
    case ROM_OP_READ_REG: return "READ_REG";
    case ROM_OP_SPI_SET_PARAMS: return "SPI_SET_PARAMS";
    case ROM_OP_SPI_ATTACH: return "SPI_ATTACH";
    case ROM_OP_READ_FLASH_SLOW: return "READ_FLASH_SLOW";
    case ROM_OP_CHANGE_BAUDRATE: return "CHANGE_BAUDRATE";
    case ROM_OP_FLASH_DEFL_BEGIN: return "FLASH_DEFL_BEGIN";
    case ROM_OP_FLASH_DEFL_DATA: return "FLASH_DEFL_DATA";
    case ROM_OP_FLASH_DEFL_END: return "FLASH_DEFL_END";
    case ROM_OP_SPI_FLASH_MD5: return "SPI_FLASH_MD5";
    case ROM_OP_GET_SECURITY_INFO: return "GET_SECURITY_INFO";
    case ROM_OP_ERASE_FLASH: return "ERASE_FLASH";
    case ROM_OP_ERASE_REGION: return "ERASE_REGION";
    case ROM_OP_READ_FLASH: return "READ_FLASH";
    case ROM_OP_RUN_USER_CODE: return "RUN_USER_CODE";
    }
    return "UNKNOWN";
}

const char *rom_loader_name(enum rom_loader loader)
{
    switch (loader) {
    case ROM_LOADER_ESP8266: return "ESP8266 ROM";
    case ROM_LOADER_ESP32: return "ESP32 ROM";
    case ROM_LOADER_STUB: return "stub";
    case ROM_LOADER_UNKNOWN: break;
    }
    return "unknown loader";
}

size_t rom_status_len(enum rom_loader loader)
{
    switch (loader) {
    case ROM_LOADER_ESP8266: return 2;
    case ROM_LOADER_ESP32: return 4;
    case ROM_LOADER_STUB: return 2;
    case ROM_LOADER_UNKNOWN: break;
    }
    return 0;
}

uint8_t rom_checksum(const uint8_t *data, size_t n)
{
    uint8_t c = ROM_CHECKSUM_SEED;
    size_t i;

    for (i = 0; i < n; i++)
        c ^= data[i];
    return c;
}

uint32_t rom_block_count(uint32_t size, uint32_t block_size)
{
    return (uint32_t)(((uint64_t)size + block_size - 1) / block_size);
}

/* The ESP8266 ROM erases from the start sector to the next 64 KiB boundary ("head") and then
 * erases the requested count again without subtracting the head, i.e. x + min(head, x) sectors
 * for a request of x (§8.3, esptool commit 2a2e28e). Working in sectors, ask for just enough
 * that the sum covers n: half of n (rounded up) when n fits in twice the head, else n - head. */
uint32_t rom_esp8266_erase_size(uint32_t offset, uint32_t size)
{
    const uint64_t sector = 4096, per_block = 16;
    uint64_t n = ((uint64_t)size + sector - 1) / sector;
    uint64_t head = per_block - (offset / sector) % per_block;

    if (n < head)
        head = n;
    if (n < 2 * head)
        return (uint32_t)((n + 1) / 2 * sector);
    return (uint32_t)((n - head) * sector);
}

/*
 * Encoders.
 */

size_t rom_encode_request(uint8_t *out, size_t out_cap, uint8_t op, uint32_t checksum,
                          const uint8_t *data, size_t n)
{
    if (n > ROM_MAX_DATA || out_cap < ROM_HEADER_LEN + n)
        return 0;
    out[0] = DIR_REQUEST;
    out[1] = op;
    es_put_le16(out + 2, (uint16_t)n);
    es_put_le32(out + 4, checksum);
    if (n > 0)
        memcpy(out + ROM_HEADER_LEN, data, n);
    return ROM_HEADER_LEN + n;
}

/* A request whose data is nwords little-endian words. */
static size_t encode_words(uint8_t *out, size_t out_cap, uint8_t op, const uint32_t *words,
                           size_t nwords)
{
    uint8_t data[6 * 4];
    size_t i;

    for (i = 0; i < nwords && i < 6; i++)
        es_put_le32(data + 4 * i, words[i]);
    return rom_encode_request(out, out_cap, op, 0, data, 4 * i);
}

size_t rom_encode_sync(uint8_t *out, size_t out_cap)
{
    uint8_t data[ROM_SYNC_DATA_LEN];

    /* 07 07 12 20, then 0x55 bytes whose edges let the ROM measure the host's baud rate (§4). */
    data[0] = 0x07;
    data[1] = 0x07;
    data[2] = 0x12;
    data[3] = 0x20;
    memset(data + 4, 0x55, sizeof(data) - 4);
    return rom_encode_request(out, out_cap, ROM_OP_SYNC, 0, data, sizeof(data));
}

size_t rom_encode_read_reg(uint8_t *out, size_t out_cap, uint32_t addr)
{
    return encode_words(out, out_cap, ROM_OP_READ_REG, &addr, 1);
}

size_t rom_encode_write_reg(uint8_t *out, size_t out_cap, uint32_t addr, uint32_t value,
                            uint32_t mask, uint32_t delay_us)
{
    const uint32_t w[4] = {addr, value, mask, delay_us};

    return encode_words(out, out_cap, ROM_OP_WRITE_REG, w, 4);
}

size_t rom_encode_spi_set_params(uint8_t *out, size_t out_cap, uint32_t flash_size_bytes)
{
    const uint32_t w[6] = {0, flash_size_bytes, 0x10000, 0x1000, 0x100, 0xFFFF};

    return encode_words(out, out_cap, ROM_OP_SPI_SET_PARAMS, w, 6);
}

size_t rom_encode_spi_attach(uint8_t *out, size_t out_cap, uint32_t pins, enum rom_loader loader)
{
    /* ROM loaders read a second word (a "legacy" byte and padding, all zero); the stub reads
     * only the pins (§3.8). */
    const uint32_t w[2] = {pins, 0};

    return encode_words(out, out_cap, ROM_OP_SPI_ATTACH, w, loader == ROM_LOADER_STUB ? 1 : 2);
}

static size_t encode_begin(uint8_t *out, size_t out_cap, uint8_t op, const struct rom_begin *b,
                           int allow_five)
{
    const uint32_t w[5] = {b->size, b->blocks, b->block_size, b->offset, b->encrypted};

    return encode_words(out, out_cap, op, w, allow_five && b->five_words ? 5 : 4);
}

size_t rom_encode_flash_begin(uint8_t *out, size_t out_cap, const struct rom_begin *b)
{
    return encode_begin(out, out_cap, ROM_OP_FLASH_BEGIN, b, 1);
}

size_t rom_encode_flash_defl_begin(uint8_t *out, size_t out_cap, const struct rom_begin *b)
{
    return encode_begin(out, out_cap, ROM_OP_FLASH_DEFL_BEGIN, b, 1);
}

size_t rom_encode_mem_begin(uint8_t *out, size_t out_cap, const struct rom_begin *b)
{
    return encode_begin(out, out_cap, ROM_OP_MEM_BEGIN, b, 0);
}

/* The shared _DATA shape (§3.3): header word "length" counts data plus padding, the checksum
 * in the packet header covers the same bytes. An even run of 0xFF padding leaves the checksum
 * unchanged, an odd one flips it; computing over the real bytes covers both. */
static size_t encode_data(uint8_t *out, size_t out_cap, uint8_t op, uint32_t seq,
                          const uint8_t *data, size_t n, size_t padded)
{
    size_t total = ROM_HEADER_LEN + ROM_DATA_HEADER_LEN + padded;
    uint8_t *p = out + ROM_HEADER_LEN;
    uint8_t sum;

    if (padded < n || ROM_DATA_HEADER_LEN + padded > ROM_MAX_DATA || out_cap < total)
        return 0;
    out[0] = DIR_REQUEST;
    out[1] = op;
    es_put_le16(out + 2, (uint16_t)(ROM_DATA_HEADER_LEN + padded));
    es_put_le32(p, (uint32_t)padded);
    es_put_le32(p + 4, seq);
    memset(p + 8, 0, 8);
    if (n > 0)
        memcpy(p + ROM_DATA_HEADER_LEN, data, n);
    memset(p + ROM_DATA_HEADER_LEN + n, 0xFF, padded - n);
    sum = rom_checksum(p + ROM_DATA_HEADER_LEN, padded);
    es_put_le32(out + 4, sum);
    return total;
}

size_t rom_encode_flash_data(uint8_t *out, size_t out_cap, uint32_t seq, const uint8_t *data,
                             size_t n, size_t block_size)
{
    if (block_size != 0 && n > block_size)
        return 0;
    return encode_data(out, out_cap, ROM_OP_FLASH_DATA, seq, data, n,
                       block_size != 0 ? block_size : n);
}

size_t rom_encode_flash_defl_data(uint8_t *out, size_t out_cap, uint32_t seq, const uint8_t *data,
                                  size_t n)
{
    return encode_data(out, out_cap, ROM_OP_FLASH_DEFL_DATA, seq, data, n, n);
}

size_t rom_encode_mem_data(uint8_t *out, size_t out_cap, uint32_t seq, const uint8_t *data,
                           size_t n)
{
    return encode_data(out, out_cap, ROM_OP_MEM_DATA, seq, data, n, n);
}

size_t rom_encode_flash_end(uint8_t *out, size_t out_cap, uint32_t flag)
{
    return encode_words(out, out_cap, ROM_OP_FLASH_END, &flag, 1);
}

size_t rom_encode_flash_defl_end(uint8_t *out, size_t out_cap, uint32_t flag)
{
    return encode_words(out, out_cap, ROM_OP_FLASH_DEFL_END, &flag, 1);
}

size_t rom_encode_mem_end(uint8_t *out, size_t out_cap, uint32_t entry)
{
    const uint32_t w[2] = {entry == 0 ? 1u : 0u, entry};

    return encode_words(out, out_cap, ROM_OP_MEM_END, w, 2);
}

size_t rom_encode_spi_flash_md5(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t size)
{
    const uint32_t w[4] = {offset, size, 0, 0};

    return encode_words(out, out_cap, ROM_OP_SPI_FLASH_MD5, w, 4);
}

size_t rom_encode_change_baudrate(uint8_t *out, size_t out_cap, uint32_t new_baud,
                                  uint32_t old_baud)
{
    const uint32_t w[2] = {new_baud, old_baud};

    return encode_words(out, out_cap, ROM_OP_CHANGE_BAUDRATE, w, 2);
}

size_t rom_encode_get_security_info(uint8_t *out, size_t out_cap)
{
    return rom_encode_request(out, out_cap, ROM_OP_GET_SECURITY_INFO, 0, NULL, 0);
}

size_t rom_encode_read_flash_slow(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t len)
{
    const uint32_t w[2] = {offset, len};

    return encode_words(out, out_cap, ROM_OP_READ_FLASH_SLOW, w, 2);
}

size_t rom_encode_erase_flash(uint8_t *out, size_t out_cap)
{
    return rom_encode_request(out, out_cap, ROM_OP_ERASE_FLASH, 0, NULL, 0);
}

size_t rom_encode_erase_region(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t size)
{
    const uint32_t w[2] = {offset, size};

    return encode_words(out, out_cap, ROM_OP_ERASE_REGION, w, 2);
}

size_t rom_encode_read_flash(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t len,
                             uint32_t packet_size, uint32_t in_flight)
{
    const uint32_t w[4] = {offset, len, packet_size, in_flight};

    return encode_words(out, out_cap, ROM_OP_READ_FLASH, w, 4);
}

size_t rom_encode_read_flash_ack(uint8_t *out, size_t out_cap, uint32_t received)
{
    if (out_cap < 4)
        return 0;
    es_put_le32(out, received);
    return 4;
}

size_t rom_encode_run_user_code(uint8_t *out, size_t out_cap)
{
    return rom_encode_request(out, out_cap, ROM_OP_RUN_USER_CODE, 0, NULL, 0);
}

/*
 * Replies.
 */

struct code_text {
    uint8_t code;
    const char *text;
};

/* §2.5, paraphrasing esptool's documentation. */
static const struct code_text rom_errors[] = {
    {0x00, "undefined error"},
    {0x01, "input parameter invalid"},
    {0x02, "could not allocate memory"},
    {0x03, "could not send message"},
    {0x04, "could not receive message"},
    {0x05, "received message has an invalid format"},
    {0x06, "message understood but the operation failed"},
    {0x07, "checksum error"},
    {0x08, "flash write error"},
    {0x09, "flash read error"},
    {0x0A, "flash read length error"},
    {0x0B, "deflate error"},
    {0x0C, "deflate Adler-32 error"},
    {0x0D, "deflate parameter error"},
    {0x0E, "invalid RAM binary size"},
    {0x0F, "invalid RAM binary address"},
    {0x64, "invalid parameter"},
    {0x65, "invalid format"},
    {0x66, "description too long"},
    {0x67, "bad encoding description"},
    {0x69, "insufficient storage"},
};

/* §2.6, the esptool stub's own codes. */
static const struct code_text stub_errors[] = {
    {0xC0, "bad data length"},         {0xC1, "bad data checksum"},    {0xC2, "bad block size"},
    {0xC3, "invalid command"},         {0xC4, "SPI operation failed"}, {0xC5, "SPI unlock failed"},
    {0xC6, "not in flash mode"},       {0xC7, "inflate error"},        {0xC8, "not enough data"},
    {0xC9, "too much data"},           {0xCA, "NAND program failed"},  {0xCB, "NAND erase failed"},
    {0xFF, "command not implemented"},
};

static const char *find_text(const struct code_text *t, size_t n, uint8_t code)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (t[i].code == code)
            return t[i].text;
    return NULL;
}

const char *rom_error_name(enum rom_loader loader, uint8_t code)
{
    const char *s;

    if (loader == ROM_LOADER_STUB)
        s = find_text(stub_errors, sizeof(stub_errors) / sizeof(stub_errors[0]), code);
    else
        s = find_text(rom_errors, sizeof(rom_errors) / sizeof(rom_errors[0]), code);
    return s != NULL ? s : "unknown error code";
}

/* What a person can do about a refusal, for the codes that have a clear next step. */
static const char *refusal_hint(enum rom_loader loader, uint8_t code)
{
    if (loader == ROM_LOADER_STUB) {
        switch (code) {
        case 0xC1:
            return "bytes were corrupted on the line; check the cable or lower the baud rate";
        case 0xC3:
        case 0xFF: return "this stub does not have the command";
        case 0xC4:
        case 0xC5: return "the flash chip did not respond as expected; check the module";
        }
        return "see the protocol document §2.6";
    }
    switch (code) {
    case 0x05: return "the loader rejected the request, or does not have this command";
    case 0x06: return "check the offset and size against the flash size and 4 KiB alignment";
    case 0x07: return "bytes were corrupted on the line; check the cable or lower the baud rate";
    case 0x08: return "the flash did not store the data; the module's flash may be worn or faulty";
    case 0x09: return "the flash could not be read; check the region lies within the flash";
    }
    return "see the protocol document §2.5";
}

int rom_decode_reply(const uint8_t *frame, size_t len, enum rom_loader loader, size_t result_len,
                     struct rom_reply *out, struct es_err *err)
{
    size_t status_len = rom_status_len(loader);
    size_t size;
    const uint8_t *body;

    if (status_len == 0)
        return es_fail(err, ES_INVALID_ARG,
                       "cannot decode a reply from an unknown loader: its status length is known "
                       "only from a SYNC reply (a bug in espstation)");
    if (len < ROM_HEADER_LEN)
        return es_fail(err, ES_REPLY_MALFORMED,
                       "reply frame of %zu bytes is shorter than the 8-byte header; "
                       "probably line noise",
                       len);
    if (frame[0] != DIR_REPLY)
        return es_fail(err, ES_REPLY_MALFORMED,
                       "frame with direction byte 0x%02X (op 0x%02X) is not a reply (expected "
                       "0x01); an echo of our request or line noise",
                       frame[0], frame[1]);
    size = es_get_le16(frame + 2);
    if (size != len - ROM_HEADER_LEN)
        return es_fail(err, ES_REPLY_SHORT,
                       "%s reply: size field says %zu data bytes but the frame carries %zu; the "
                       "frame was cut or merged with another",
                       rom_op_name(frame[1]), size, len - ROM_HEADER_LEN);
    body = frame + ROM_HEADER_LEN;
    memset(out, 0, sizeof(*out));
    out->op = frame[1];
    out->size = (uint16_t)size;
    out->value = es_get_le32(frame + 4);
    out->status_len = status_len;
    if (size >= result_len + status_len) {
        out->data = body;
        out->data_len = result_len;
        out->status_bytes = body + result_len;
    } else if (result_len > 0 && size >= status_len && body[0] != 0) {
        /* A refusal carries only the status bytes, whatever the command's result would be. */
        out->data = body;
        out->data_len = 0;
        out->status_bytes = body;
    } else {
        return es_fail(err, ES_REPLY_SHORT,
                       "%s reply from the %s has %zu data bytes; expected %zu result bytes and %zu "
                       "status bytes",
                       rom_op_name(frame[1]), rom_loader_name(loader), size, result_len,
                       status_len);
    }
    out->status = out->status_bytes[0];
    if (out->status != 0)
        out->error = loader == ROM_LOADER_STUB ? out->status : out->status_bytes[1];
    return 0;
}

int rom_reply_check(const struct rom_reply *r, enum rom_loader loader, struct es_err *err)
{
    int rc;

    if (r->status == 0)
        return 0;
    if (loader == ROM_LOADER_STUB) {
        rc = es_fail(err, ES_ROM_REFUSED, "%s refused by the stub: error 0x%02X (%s); %s",
                     rom_op_name(r->op), r->error, rom_error_name(loader, r->error),
                     refusal_hint(loader, r->error));
    } else {
        rc = es_fail(err, ES_ROM_REFUSED, "%s refused by the %s: status %02X %02X (%s); %s",
                     rom_op_name(r->op), rom_loader_name(loader), r->status, r->error,
                     rom_error_name(loader, r->error), refusal_hint(loader, r->error));
    }
    if (err != NULL)
        err->rom_status = r->error;
    return rc;
}

int rom_reply_is_unsupported(const uint8_t *frame, size_t len, enum rom_loader loader,
                             uint8_t sent_op)
{
    size_t status_len = rom_status_len(loader);
    const uint8_t *st = frame + ROM_HEADER_LEN;

    (void)sent_op; /* the ROMs put a stale op byte there (§15), so it cannot be relied on */
    if (status_len == 0)
        return 0;
    if (len != ROM_HEADER_LEN + status_len || frame[0] != DIR_REPLY ||
        es_get_le16(frame + 2) != status_len)
        return 0;
    if (loader == ROM_LOADER_STUB)
        return st[0] == STUB_ERR_INVALID_CMD || st[0] == STUB_ERR_NOT_IMPL ||
               (st[0] == 0x01 && st[1] == STUB_ERR_INVALID_CMD);
    return st[0] == 0x01 && st[1] == ROM_ERR_INVALID_FORMAT;
}

int rom_sync_loader(const uint8_t *frame, size_t len, enum rom_loader *out, struct es_err *err)
{
    size_t size;

    if (len < ROM_HEADER_LEN + 2 || frame[0] != DIR_REPLY || frame[1] != ROM_OP_SYNC)
        return es_fail(err, ES_REPLY_MALFORMED,
                       "expected a SYNC reply (01 08 ...), got a %zu-byte frame starting %02X %02X",
                       len, len > 0 ? frame[0] : 0, len > 1 ? frame[1] : 0);
    size = es_get_le16(frame + 2);
    if (size != len - ROM_HEADER_LEN || (size != 2 && size != 4))
        return es_fail(err, ES_REPLY_MALFORMED,
                       "SYNC reply with size field %zu in a %zu-byte frame; expected 2 or 4 "
                       "status bytes",
                       size, len);
    if (frame[ROM_HEADER_LEN] != 0)
        return es_fail(err, ES_REPLY_MALFORMED, "SYNC reply with status %02X %02X; expected 00",
                       frame[ROM_HEADER_LEN], frame[ROM_HEADER_LEN + 1]);
    if (size == 4)
        *out = ROM_LOADER_ESP32;
    else if (es_get_le32(frame + 4) == 0)
        *out = ROM_LOADER_STUB; /* the stub answers SYNC with value 0, every ROM with non-zero */
    else
        *out = ROM_LOADER_ESP8266;
    return 0;
}

int rom_is_stub_greeting(const uint8_t *frame, size_t len)
{
    return len == 4 && memcmp(frame, "OHAI", 4) == 0;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int rom_decode_md5(const struct rom_reply *r, enum rom_loader loader, uint8_t md5[16],
                   struct es_err *err)
{
    size_t want = loader == ROM_LOADER_STUB ? 16 : 32;
    size_t i;

    if (r->data_len != want)
        return es_fail(err, ES_REPLY_SHORT,
                       "SPI_FLASH_MD5 reply from the %s carries %zu result bytes; expected %zu",
                       rom_loader_name(loader), r->data_len, want);
    if (loader == ROM_LOADER_STUB) {
        memcpy(md5, r->data, 16);
        return 0;
    }
    for (i = 0; i < 16; i++) {
        int hi = hex_digit(r->data[2 * i]), lo = hex_digit(r->data[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            size_t bad = hi < 0 ? 2 * i : 2 * i + 1;

            return es_fail(err, ES_REPLY_MALFORMED,
                           "SPI_FLASH_MD5 reply from the %s has byte 0x%02X at position %zu; "
                           "expected 32 lowercase hex digits",
                           rom_loader_name(loader), r->data[bad], bad);
        }
        md5[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int rom_decode_security_info(const struct rom_reply *r, struct rom_security_info *out,
                             struct es_err *err)
{
    const uint8_t *d = r->data;

    if (r->data_len != 20 && r->data_len != 12)
        return es_fail(err, ES_REPLY_SHORT,
                       "GET_SECURITY_INFO reply carries %zu result bytes; expected 20 or 12",
                       r->data_len);
    memset(out, 0, sizeof(*out));
    out->flags = es_get_le32(d);
    out->crypt_cnt = d[4];
    memcpy(out->key_purpose, d + 5, 7);
    if (r->data_len == 20) {
        out->has_chip_id = 1;
        out->chip_id = es_get_le32(d + 12);
        out->eco_version = es_get_le32(d + 16);
    }
    return 0;
}
