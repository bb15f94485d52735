/* libFuzzer target for the ROM reply decoders and encoders (src/proto/rom.c).
 * Input: the bytes of one SLIP-decoded frame. It is decoded as a reply for every loader and
 * every result length the protocol uses, and fed to the MD5, security-info, SYNC, greeting and
 * "unsupported" helpers; the same bytes also drive the encoders and the ESP8266 erase-size rule.
 * Checks: nothing reads outside the frame (it is copied to an exact-size heap block), decoded
 * pointers stay inside it, rom_reply_check agrees with the status, encoders keep their shapes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es/le.h"
#include "es/rom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum rom_loader loaders[] = {ROM_LOADER_ESP8266, ROM_LOADER_ESP32, ROM_LOADER_STUB};
static const size_t result_lens[] = {0, 12, 16, 20, 32, 64};

static void check_message(const struct es_err *err)
{
    if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL || err->msg[0] == '\0')
        abort();
}

static void decode_all(const uint8_t *f, size_t n)
{
    size_t li, ri;

    for (li = 0; li < sizeof(loaders) / sizeof(loaders[0]); li++) {
        enum rom_loader loader = loaders[li];
        enum rom_loader who;
        struct es_err err;
        uint8_t md5[16];

        (void)rom_reply_is_unsupported(f, n, loader, n > 1 ? f[1] : 0);
        if (rom_sync_loader(f, n, &who, &err) < 0)
            check_message(&err);
        for (ri = 0; ri < sizeof(result_lens) / sizeof(result_lens[0]); ri++) {
            struct rom_security_info si;
            struct rom_reply r;
            int rc;

            rc = rom_decode_reply(f, n, loader, result_lens[ri], &r, &err);
            if (rc < 0) {
                if (err.code != ES_REPLY_MALFORMED && err.code != ES_REPLY_SHORT)
                    abort();
                check_message(&err);
                continue;
            }
            if (r.data < f || r.data + r.data_len > f + n || r.status_bytes < f ||
                r.status_bytes + r.status_len > f + n || r.status != r.status_bytes[0])
                abort();
            if (r.data_len != result_lens[ri] && !(r.data_len == 0 && r.status != 0))
                abort();
            rc = rom_reply_check(&r, loader, &err);
            if ((rc == 0) != (r.status == 0))
                abort();
            if (rc < 0 && (err.code != ES_ROM_REFUSED || err.rom_status != r.error))
                abort();
            if (rc < 0)
                check_message(&err);
            if (rom_decode_md5(&r, loader, md5, &err) < 0)
                check_message(&err);
            if (rom_decode_security_info(&r, &si, &err) < 0)
                check_message(&err);
            (void)rom_op_name(r.op);
            (void)rom_error_name(loader, r.error);
        }
    }
    (void)rom_is_stub_greeting(f, n);
}

/* The ROM erases x + min(head, x) sectors when asked for x (§8.3): the corrected size must make
 * it erase exactly the sectors needed, or one more. */
static void check_erase_size(uint32_t offset, uint32_t size)
{
    uint64_t n = ((uint64_t)size + 4095) / 4096;
    uint64_t head = 16 - (offset / 4096) % 16;
    uint32_t sent = rom_esp8266_erase_size(offset, size);
    uint64_t x = sent / 4096, erased = x + (head < x ? head : x);

    if (sent % 4096 != 0 || (erased != n && erased != n + 1))
        abort();
}

static void check_encoders(const uint8_t *d, size_t n)
{
    static uint8_t out[ROM_HEADER_LEN + ROM_MAX_DATA];
    size_t block = n > 0 ? d[0] * 4u : 0, len, w, padded;

    /* FLASH_DATA: the rest of the input as data, padded to a block size from byte 0. */
    if (n < 1)
        return;
    padded = block != 0 ? block : n - 1;
    len = rom_encode_flash_data(out, sizeof(out), 7, d + 1, n - 1, block);
    if ((block != 0 && n - 1 > block) || ROM_DATA_HEADER_LEN + padded > ROM_MAX_DATA) {
        if (len != 0)
            abort();
    } else {
        if (len != ROM_HEADER_LEN + ROM_DATA_HEADER_LEN + padded || out[0] != 0 || out[1] != 3 ||
            es_get_le16(out + 2) != ROM_DATA_HEADER_LEN + padded ||
            es_get_le32(out + 4) != rom_checksum(out + 24, padded) ||
            es_get_le32(out + 8) != padded || es_get_le32(out + 12) != 7 ||
            memcmp(out + 24, d + 1, n - 1) != 0)
            abort();
        for (w = n - 1; w < padded; w++)
            if (out[24 + w] != 0xFF)
                abort();
        /* One byte short of room must fail without writing past the stated capacity. */
        if (rom_encode_flash_data(out, len - 1, 7, d + 1, n - 1, block) != 0)
            abort();
    }
    if (n >= 9) {
        uint32_t a = es_get_le32(d + 1), b = es_get_le32(d + 5);

        check_erase_size(a, b);
        if (rom_encode_erase_region(out, sizeof(out), a, b) != 16 || es_get_le32(out + 8) != a ||
            es_get_le32(out + 12) != b)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that reading one byte past the frame is an ASan report. */
    uint8_t *f = malloc(size > 0 ? size : 1);

    if (f == NULL)
        abort();
    if (size > 0)
        memcpy(f, data, size);
    decode_all(f, size);
    check_encoders(f, size);
    free(f);
    return 0;
}
