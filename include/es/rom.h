/* Requests and replies of the ESP serial download protocol (protocol doc §2–§4, §10, §15):
 * encoders that build the unescaped packet (8-byte header + data) into a caller buffer, and the
 * reply decoder with its checks. Pure: no allocation, no I/O, no clock. SLIP framing is slip.h. */
#ifndef ES_ROM_H
#define ES_ROM_H

#include <stddef.h>
#include <stdint.h>

#include "es/err.h"

/* Command bytes on the wire (protocol doc §3.1). */
enum rom_op {
    ROM_OP_FLASH_BEGIN = 0x02,
    ROM_OP_FLASH_DATA = 0x03,
    ROM_OP_FLASH_END = 0x04,
    ROM_OP_MEM_BEGIN = 0x05,
    ROM_OP_MEM_END = 0x06,
    ROM_OP_MEM_DATA = 0x07,
    ROM_OP_SYNC = 0x08,
    ROM_OP_WRITE_REG = 0x09,
    ROM_OP_READ_REG = 0x0A,
    ROM_OP_SPI_SET_PARAMS = 0x0B,
    ROM_OP_SPI_ATTACH = 0x0D,
    ROM_OP_READ_FLASH_SLOW = 0x0E,
    ROM_OP_CHANGE_BAUDRATE = 0x0F,
    ROM_OP_FLASH_DEFL_BEGIN = 0x10,
    ROM_OP_FLASH_DEFL_DATA = 0x11,
    ROM_OP_FLASH_DEFL_END = 0x12,
    ROM_OP_SPI_FLASH_MD5 = 0x13,
    ROM_OP_GET_SECURITY_INFO = 0x14,
    ROM_OP_ERASE_FLASH = 0xD0,  /* stub only */
    ROM_OP_ERASE_REGION = 0xD1, /* stub only */
    ROM_OP_READ_FLASH = 0xD2,   /* stub only */
    ROM_OP_RUN_USER_CODE = 0xD3 /* stub only; never answered */
};

/* The direction byte of a packet (§2.1, §2.2). */
#define ROM_DIR_REQUEST 0x00
#define ROM_DIR_REPLY   0x01

/* Error codes a host acts on: the ROM's second status byte (§2.5) and the stub's first (§2.6). */
enum rom_error {
    ROM_ERR_INVALID_FORMAT = 0x05, /* also the answer to an op the ROM lacks (§15) */
    ROM_ERR_CHECKSUM = 0x07,
    ROM_ERR_FLASH_WRITE = 0x08, /* the read-back after programming differed */
    STUB_ERR_BAD_DATA_LEN = 0xC0,
    STUB_ERR_BAD_CHECKSUM = 0xC1,
    STUB_ERR_INVALID_CMD = 0xC3,
    STUB_ERR_NOT_IMPL = 0xFF,
};

/* What is on the other end of the line. It decides the number of status bytes and where the
 * error code sits (protocol doc §2.3, §15). ROM_LOADER_ESP32 stands for every ESP32-family ROM;
 * ROM_LOADER_UNKNOWN is a line no SYNC reply has named yet (rom_sync_loader), whose replies
 * cannot be decoded. */
enum rom_loader {
    ROM_LOADER_ESP8266, /* 2 status bytes: [status, error] */
    ROM_LOADER_ESP32,   /* 4 status bytes: [status, error, stale, stale] */
    ROM_LOADER_STUB,    /* 2 status bytes: [error code, 0] */
    ROM_LOADER_UNKNOWN  /* not known yet: no status length */
};

#define ROM_HEADER_LEN      8    /* direction, op, size (2), checksum or value (4) */
#define ROM_DATA_HEADER_LEN 16   /* _DATA payload: length, sequence, two zero words */
#define ROM_CHECKSUM_SEED   0xEF /* protocol doc §2.4 */
#define ROM_SYNC_DATA_LEN   36   /* 07 07 12 20 + 32 x 55 */
#define ROM_MAX_DATA        0xFFFF
#define ROM_FLASH_BLOCK     0x400  /* FLASH_DATA block size every tool uses with a ROM (§14 #10) */
#define ROM_STUB_BLOCK      0x4000 /* largest FLASH_DATA block the stub accepts (§2.6 0xC2) */
#define ROM_MEM_BLOCK       0x1800 /* MEM_DATA block size esptool uses over a UART (§3.5) */
#define ROM_END_REBOOT      0      /* FLASH_END / FLASH_DEFL_END word: reboot */
#define ROM_END_RUN         1      /* FLASH_END: leave the loader and run the app (§3.4) */

/* Wire name of a command ("FLASH_BEGIN"), or "UNKNOWN" for a byte outside enum rom_op. */
const char *rom_op_name(uint8_t op);
/* "ESP8266 ROM", "ESP32 ROM", "stub" or "unknown loader", for messages. */
const char *rom_loader_name(enum rom_loader loader);
/* Number of status bytes the loader appends to every reply: 2, 4 or 2; 0 for ROM_LOADER_UNKNOWN
 * (only a SYNC reply can tell, rom_sync_loader). */
size_t rom_status_len(enum rom_loader loader);

/* XOR of data[0..n) seeded with 0xEF (protocol doc §2.4); 0xEF for empty data. */
uint8_t rom_checksum(const uint8_t *data, size_t n);

/* The erase size to put in an ESP8266 ROM FLASH_BEGIN so that the ROM's erase routine, which
 * erases the sectors up to the next 64 KiB boundary twice over (protocol doc §8.3), erases the
 * sectors [offset, offset + size) and at most one more. esptool's rule; other loaders take the
 * size itself. */
uint32_t rom_esp8266_erase_size(uint32_t offset, uint32_t size);

/* Number of blocks of block_size needed for size bytes (ceil). block_size must not be 0. */
uint32_t rom_block_count(uint32_t size, uint32_t block_size);

/*
 * Encoders. Each writes the unescaped packet into out and returns its length, or returns 0 when
 * out_cap is too small or the arguments cannot form a packet (data longer than the 16-bit size
 * field allows, a _DATA block longer than its block size). Hand the result to slip_encode().
 */

/* Any request: header (direction 0, op, size n, checksum word) followed by data[0..n). */
size_t rom_encode_request(uint8_t *out, size_t out_cap, uint8_t op, uint32_t checksum,
                          const uint8_t *data, size_t n);

size_t rom_encode_sync(uint8_t *out, size_t out_cap);
size_t rom_encode_read_reg(uint8_t *out, size_t out_cap, uint32_t addr);
/* mask 0xFFFFFFFF writes the whole register; delay_us is how long the loader waits after it. */
size_t rom_encode_write_reg(uint8_t *out, size_t out_cap, uint32_t addr, uint32_t value,
                            uint32_t mask, uint32_t delay_us);
/* SPI_SET_PARAMS with id 0, the total flash size, 64 KiB blocks, 4 KiB sectors, 256-byte pages
 * and status mask 0xFFFF (protocol doc §3.8). */
size_t rom_encode_spi_set_params(uint8_t *out, size_t out_cap, uint32_t flash_size_bytes);
/* SPI_ATTACH: pins 0 = default / eFuse pads, 1 = HSPI, else packed pin numbers (§3.8). ROM
 * loaders get 8 bytes (pins + a zero word), the stub 4 bytes. */
size_t rom_encode_spi_attach(uint8_t *out, size_t out_cap, uint32_t pins, enum rom_loader loader);

/* FLASH_BEGIN / FLASH_DEFL_BEGIN / MEM_BEGIN words (protocol doc §3.2, §3.5, §11). */
struct rom_begin {
    uint32_t size;       /* ROM: bytes to erase (ESP8266: rom_esp8266_erase_size()); stub: bytes
                            to write; DEFL: uncompressed size; MEM: total bytes */
    uint32_t blocks;     /* number of _DATA packets that will follow */
    uint32_t block_size; /* ROM_FLASH_BLOCK for ROM flash writes */
    uint32_t offset;     /* flash offset, or RAM address for MEM_BEGIN */
    int five_words;      /* S2-and-later ROMs (never ESP8266 or ESP32): append the next word */
    uint32_t encrypted;  /* the fifth word: 1 = encrypted write, 0 = plain */
};
size_t rom_encode_flash_begin(uint8_t *out, size_t out_cap, const struct rom_begin *b);
size_t rom_encode_flash_defl_begin(uint8_t *out, size_t out_cap, const struct rom_begin *b);
/* MEM_BEGIN always has four words; five_words and encrypted are ignored. */
size_t rom_encode_mem_begin(uint8_t *out, size_t out_cap, const struct rom_begin *b);

/* FLASH_DATA block seq: 16-byte data header + data[0..n) padded with 0xFF up to block_size
 * (every FLASH_DATA block has the size FLASH_BEGIN announced, §3.3); the checksum covers data and
 * padding. block_size 0 means no padding. Returns 0 if n > block_size (when not 0). */
size_t rom_encode_flash_data(uint8_t *out, size_t out_cap, uint32_t seq, const uint8_t *data,
                             size_t n, size_t block_size);
/* FLASH_DEFL_DATA and MEM_DATA: the same shape, never padded. */
size_t rom_encode_flash_defl_data(uint8_t *out, size_t out_cap, uint32_t seq, const uint8_t *data,
                                  size_t n);
size_t rom_encode_mem_data(uint8_t *out, size_t out_cap, uint32_t seq, const uint8_t *data,
                           size_t n);

/* FLASH_END / FLASH_DEFL_END with one word: ROM_END_REBOOT or ROM_END_RUN. Note that the ESP32
 * ROM stays in the loader after FLASH_DEFL_END(1), unlike FLASH_END(1) (§15.1). */
size_t rom_encode_flash_end(uint8_t *out, size_t out_cap, uint32_t flag);
size_t rom_encode_flash_defl_end(uint8_t *out, size_t out_cap, uint32_t flag);
/* MEM_END: entry 0 = do not jump (first word 1); otherwise jump to entry (first word 0), as
 * esptool does (§3.5). */
size_t rom_encode_mem_end(uint8_t *out, size_t out_cap, uint32_t entry);

size_t rom_encode_spi_flash_md5(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t size);
/* old_baud: 0 for a ROM loader, the current rate for the stub (§3.10). */
size_t rom_encode_change_baudrate(uint8_t *out, size_t out_cap, uint32_t new_baud,
                                  uint32_t old_baud);
size_t rom_encode_get_security_info(uint8_t *out, size_t out_cap);
/* ESP32-family ROM only: len <= 64. */
size_t rom_encode_read_flash_slow(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t len);

/* Stub-only commands (§3.13). */
size_t rom_encode_erase_flash(uint8_t *out, size_t out_cap);
size_t rom_encode_erase_region(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t size);
/* READ_FLASH: after the normal reply the stub sends raw data frames of packet_size bytes, keeping
 * at most in_flight unacknowledged; then one 16-byte raw MD5 frame. */
size_t rom_encode_read_flash(uint8_t *out, size_t out_cap, uint32_t offset, uint32_t len,
                             uint32_t packet_size, uint32_t in_flight);
/* The host's answer to each READ_FLASH data frame: not a request packet, just the 4-byte total
 * of bytes received so far. */
size_t rom_encode_read_flash_ack(uint8_t *out, size_t out_cap, uint32_t received);
size_t rom_encode_run_user_code(uint8_t *out, size_t out_cap);

/*
 * Replies.
 */

struct rom_reply {
    uint8_t op;                  /* the op byte as sent; may be stale on an error (§15) */
    uint16_t size;               /* the header's size field: result bytes + status bytes */
    uint32_t value;              /* READ_REG result; for other ops meaningless (§2.2) */
    const uint8_t *data;         /* command-specific result bytes, pointing into the frame */
    size_t data_len;             /* result_len, or 0 for a failed reply that carries no result */
    const uint8_t *status_bytes; /* the loader's status bytes, pointing into the frame */
    size_t status_len;           /* rom_status_len(loader) */
    uint8_t status;              /* first status byte: 0 is success, whatever follows it */
    uint8_t error;               /* the loader's reason when status != 0 (ROM: the second byte;
                                    stub: the first), and 0 when status == 0: the ROMs leave a
                                    stale error byte on success (§15) */
};

/* Decodes one SLIP-decoded frame as a reply. result_len is the number of command-specific bytes
 * before the status: 0 for most ops, 32 (ROM) / 16 (stub) for SPI_FLASH_MD5, 64 for
 * READ_FLASH_SLOW, 20 / 12 (ESP32-S2) for GET_SECURITY_INFO. A reply whose status is non-zero
 * decodes fine (status, error set; use rom_reply_check), and such a reply may omit the result
 * bytes (the ROMs answer a refused or unsupported command with status bytes only). The status is
 * read right after the result bytes; bytes between the status and the end of the packet are
 * ignored, as esptool does. out points into frame, so frame must outlive it.
 * Errors: ES_REPLY_MALFORMED (len < 8, direction != 0x01), ES_REPLY_SHORT (size field disagrees
 * with the bytes present, or too short for result_len + status bytes), ES_INVALID_ARG (loader
 * ROM_LOADER_UNKNOWN: the caller must know who answers before it can find the status). */
int rom_decode_reply(const uint8_t *frame, size_t len, enum rom_loader loader, size_t result_len,
                     struct rom_reply *out, struct es_err *err);

/* 0 if the reply reports success; else ES_ROM_REFUSED with err->rom_status set to the loader's
 * error code and a message naming the op, the status bytes and the meaning of the code. */
int rom_reply_check(const struct rom_reply *r, enum rom_loader loader, struct es_err *err);

/* Meaning of a loader error code (§2.5 for ROMs, §2.6 for the stub). Never NULL. */
const char *rom_error_name(enum rom_loader loader, uint8_t code);

/* Whether frame is the "I do not have that command" answer to a request with op sent_op.
 * ROMs answer an op they lack with status 01 05 and NO result bytes, and the op byte is the one
 * left over from the previous reply, not sent_op (§15.1, §15.2), so a host waiting for sent_op
 * would never see it. The stub answers C3 (invalid command) or FF (not implemented); one new
 * stub was seen to send 01 C3 (§14 #9). A 01 05 also means "invalid format" for a command the
 * loader has, so call this only for a command the loader may lack (e.g. GET_SECURITY_INFO, the
 * stub-only ops, MD5 on an ESP8266) or when the op byte differs from sent_op. Returns 1 or 0
 * (always 0 for ROM_LOADER_UNKNOWN); never reads past len. */
int rom_reply_is_unsupported(const uint8_t *frame, size_t len, enum rom_loader loader,
                             uint8_t sent_op);

/* From one decoded SYNC reply frame, which loader answered: a 4-byte status means an
 * ESP32-family ROM; a 2-byte status with value 0 means the stub is already running (§4, §10.1),
 * and with any other value the ESP8266 ROM. ES_REPLY_MALFORMED if frame is not a SYNC reply
 * with status 0. The caller applies the "every reply has value 0" rule over all replies. */
int rom_sync_loader(const uint8_t *frame, size_t len, enum rom_loader *out, struct es_err *err);

/* 1 if frame is the stub's greeting "OHAI" (C0 4F 48 41 49 C0 on the wire, §10.1), else 0. */
int rom_is_stub_greeting(const uint8_t *frame, size_t len);

/* The 16-byte digest of an SPI_FLASH_MD5 reply decoded with result_len 32 (ROM) or 16 (stub).
 * ROMs send 32 lowercase hex characters (confirmed on the ESP32 ROM, §15.1, and what esptool
 * compares against); anything else, uppercase included, is ES_REPLY_MALFORMED, because a loader
 * that sends it is not the one we think. The stub sends 16 raw bytes. Does not check status. */
int rom_decode_md5(const struct rom_reply *r, enum rom_loader loader, uint8_t md5[16],
                   struct es_err *err);

/* GET_SECURITY_INFO result (§3.12). */
struct rom_security_info {
    uint32_t flags;    /* bit 0 secure boot, bit 2 secure download mode, ... */
    uint8_t crypt_cnt; /* flash_crypt_cnt */
    uint8_t key_purpose[7];
    int has_chip_id;  /* 0 for the 12-byte ESP32-S2 form */
    uint32_t chip_id; /* §6.2 */
    uint32_t eco_version;
};
#define ROM_SECURITY_FLAG_SECURE_BOOT     (1u << 0)
#define ROM_SECURITY_FLAG_SECURE_DOWNLOAD (1u << 2)
/* Decodes a reply decoded with result_len 20 or 12. ES_REPLY_SHORT for any other length. */
int rom_decode_security_info(const struct rom_reply *r, struct rom_security_info *out,
                             struct es_err *err);

#endif
