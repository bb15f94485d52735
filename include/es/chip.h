/* Chip facts as data (protocol doc §3.1, §6, §7, §9): one const row per chip model, and pure
 * decoders for what a session reads from a board (magic word, MAC/eFuse words, flash JEDEC id,
 * UART divider). No I/O, no allocation: everything here is safe inside a loop callback. */
#ifndef ES_CHIP_H
#define ES_CHIP_H

#include <stddef.h>
#include <stdint.h>

#include "es/err.h"

/* Address of the ROM word that differs per chip model (§6.1): READ_REG it after SYNC. */
#define CHIP_MAGIC_REG 0x40001000u

enum chip_model {
    CHIP_ESP8266,
    CHIP_ESP32,
    CHIP_ESP32S2,
    CHIP_ESP32S3,
    CHIP_ESP32C3,
    CHIP_MODEL_COUNT
};

/* The two image/flash-code families (§9.2): they differ in flash size codes and header layout. */
enum chip_family {
    CHIP_FAMILY_ESP8266,
    CHIP_FAMILY_ESP32 /* ESP32 and every later chip */
};

/* What the chip's ROM loader can do (§3.1), as bits of chip.rom_caps. */
#define CHIP_ROM_NEEDS_SPI_ATTACH (1u << 0) /* SPI_ATTACH before any flash command (§3.8) */
#define CHIP_ROM_MD5              (1u << 1) /* SPI_FLASH_MD5 (0x13) */
#define CHIP_ROM_DEFLATE          (1u << 2) /* FLASH_DEFL_BEGIN/DATA/END (0x10-0x12) */
#define CHIP_ROM_CHANGE_BAUD      (1u << 3) /* CHANGE_BAUDRATE (0x0F) */
#define CHIP_ROM_SECURITY_INFO    (1u << 4) /* GET_SECURITY_INFO (0x14) */
#define CHIP_ROM_BEGIN_5_WORDS    (1u << 5) /* FLASH_BEGIN/FLASH_DEFL_BEGIN take a 5th word */
#define CHIP_ROM_READ_FLASH_SLOW  (1u << 6) /* READ_FLASH_SLOW (0x0E) */
#define CHIP_ROM_SPI_SET_PARAMS   (1u << 7) /* esptool sends SPI_SET_PARAMS (skipped on ESP8266) */

/* One flash size the family can encode in the image header (§9.2). */
struct chip_flash_size {
    const char *name; /* "4MB", "512KB", "2MB-c1" */
    uint32_t bytes;
    uint8_t code; /* high nibble of header byte 3, already shifted: 0x40 */
};

/* One flash frequency the chip can encode (§9.2). */
struct chip_flash_freq {
    const char *name; /* "40m" */
    uint8_t code;     /* low nibble of header byte 3 */
};

/* The SPI flash controller registers used for RDID (§7.5): absolute addresses. A register the
 * chip does not have (MOSI/MISO_DLEN on ESP8266) is 0. */
struct chip_spi_regs {
    uint32_t cmd, usr, usr1, usr2, mosi_dlen, miso_dlen, w0;
};

#define CHIP_MAX_MAGIC     4
#define CHIP_MAX_INFO_REGS 8

struct chip {
    enum chip_model model;
    const char *name;    /* "esp8266": profiles, reports, command line */
    const char *display; /* "ESP8266": for people */
    enum chip_family family;
    uint32_t magic[CHIP_MAX_MAGIC]; /* values of CHIP_MAGIC_REG (§6.1) */
    size_t magic_count;
    int image_chip_id;          /* extended-header chip id (§6.2); -1 = none (ESP8266) */
    uint32_t bootloader_offset; /* where header patching applies (§9.3) */
    uint32_t rom_status_len;    /* status bytes in ROM replies: 2 or 4 (§2.3) */
    unsigned rom_caps;          /* CHIP_ROM_* bits */
    uint32_t rom_block_size;    /* FLASH_DATA block with the ROM: 0x400 */
    uint32_t stub_block_size;   /* FLASH_DATA block with the stub: 0x4000 */
    uint32_t mem_block_size;    /* MEM_DATA block: 0x1800 */
    uint32_t rom_max_flash;     /* FLASH_BEGIN offsets must be below this with the ROM (§8.8,
                                   §15.2: ESP8266 ROM refuses offsets at/after 4 MiB) */
    /* Registers to READ_REG, in this order, for chip_decode_mac()/chip_decode_info():
     * ESP8266: OTP MAC0, MAC1, word 2, MAC3 (§7.1); ESP32: eFuse words 0-6 then APB_CTL_DATE
     * (§7.2); later chips: MAC_EFUSE_REG and +4 (§7.3). */
    uint32_t info_regs[CHIP_MAX_INFO_REGS];
    size_t info_reg_count;
    uint32_t uart_clkdiv_reg; /* UART clock divider (§7.4) */
    /* ESP32 ROM: the RTC calibration register whose value, with eFuse word 4 (info_regs[4]),
     * gives the crystal frequency the ROM believes (§3.10); 0 = no correction needed. */
    uint32_t rom_baud_cal_reg;
    uint32_t xtal_clk_divider; /* k in §7.4: 2 on ESP8266, 1 otherwise */
    uint32_t spi_base;
    struct chip_spi_regs spi;
    const struct chip_flash_size *flash_sizes; /* codes the family can encode */
    size_t flash_size_count;
    const struct chip_flash_freq *flash_freqs;
    size_t flash_freq_count;
};

/* The chip whose magic word (READ_REG CHIP_MAGIC_REG) is magic; NULL when unknown. */
const struct chip *chip_by_magic(uint32_t magic);
/* "esp8266", "esp32", "esp32s2", "esp32s3", "esp32c3" (case-sensitive); NULL when unknown. */
const struct chip *chip_by_name(const char *name);
/* The chip with this extended-header / GET_SECURITY_INFO chip id; NULL when unknown or for
 * ESP8266 (which has none). */
const struct chip *chip_by_image_id(int image_chip_id);
const struct chip *chip_by_model(enum chip_model model);
/* "esp8266" etc.; "unknown" for a value out of range. */
const char *chip_model_name(enum chip_model model);
/* Comma-separated list of supported chip names, for messages: "esp8266, esp32, ...". */
const char *chip_names(void);

static inline int chip_has(const struct chip *chip, unsigned cap)
{
    return (chip->rom_caps & cap) != 0;
}

/* What the identity registers say (§7.1-7.3). */
struct chip_info {
    uint8_t mac[6];
    int rev_major; /* -1 when this chip's revision is not decoded */
    int rev_minor;
    int package;          /* ESP32 package code (§7.2), else -1 */
    int single_core;      /* ESP32 eFuse word 3 bit 0 */
    int no_bt;            /* ESP32 eFuse word 3 bit 1 */
    int embedded_flash;   /* ESP8285 (§7.1) */
    uint32_t sdk_chip_id; /* ESP8266 SDK chip id (§7.1), else 0 */
    char description[64]; /* "ESP32-D0WD-V3 (revision v3.0)", "ESP8266EX" */
};

/* Decodes the MAC from words[] = the values of chip->info_regs, in that order (all
 * chip->info_reg_count of them). ESP8266: OUI from MAC3 or from (MAC1 >> 16) & 0xFF = 0 / 1;
 * any other value fails with ES_BAD_MAC ("unknown OUI"). */
int chip_decode_mac(const struct chip *chip, const uint32_t words[], uint8_t mac[6],
                    struct es_err *err);
/* Fills info (MAC, revision, package, description) from the same words[] as chip_decode_mac().
 * Fails only as chip_decode_mac() does. */
/* Whether a decoded MAC is one the chip can hold (§7.1, §7.2), so that a reply corrupted on the
 * line never names a report: ESP32, the eFuse CRC-8 (words[2] bits 16-23; Dallas/Maxim, as
 * ESP-IDF's esp_rom_efuse_mac_address_crc8 over the six bytes in order) must match; ESP8266, a
 * MAC3 OUI must fit in 24 bits; every chip, a unicast, globally administered, non-zero MAC.
 * ES_BAD_MAC saying what is wrong. */
int chip_check_mac(const struct chip *chip, const uint32_t words[], const uint8_t mac[6],
                   struct es_err *err);
int chip_decode_info(const struct chip *chip, const uint32_t words[], struct chip_info *info,
                     struct es_err *err);
/* "aa:bb:cc:dd:ee:ff" into out (at least 18 bytes). */
void chip_format_mac(const uint8_t mac[6], char out[18]);

/* Crystal frequency in MHz (26, 40 or 48) from the UART clock divider register value and the
 * baud the line runs at (§7.4). */
int chip_xtal_mhz(const struct chip *chip, uint32_t uart_div_reg, uint32_t baud);
/* The rate to put in a ROM loader's CHANGE_BAUDRATE so that the line ends up at baud (§3.10):
 * on the ESP32 the ROM derives its divider from a crystal frequency it estimated from the 8 MHz
 * clock (rtc_cal = READ_REG of chip->rom_baud_cal_reg, words = the chip_decode_info() words),
 * so esptool sends baud x estimated / real crystal. Other chips: baud. */
uint32_t chip_rom_baud_value(const struct chip *chip, uint32_t baud, uint32_t rtc_cal,
                             const uint32_t words[]);

/* ---- Flash JEDEC id (§7.5, §7.6) ---- */

/* One step of a register recipe a session plays with READ_REG / WRITE_REG (mask 0xFFFFFFFF,
 * delay 0). */
enum chip_reg_op {
    CHIP_REG_SAVE,    /* READ_REG addr; keep the value in save slot `value` (0 or 1) */
    CHIP_REG_WRITE,   /* WRITE_REG addr = value */
    CHIP_REG_POLL,    /* READ_REG addr until (reg & value) == 0, at most CHIP_REG_POLL_MAX reads;
                         still set after that: the flash did not answer (ES_NO_FLASH) */
    CHIP_REG_RESULT,  /* READ_REG addr; the value is the recipe's result (the JEDEC id) */
    CHIP_REG_RESTORE, /* WRITE_REG addr = the value saved in slot `value` */
};

struct chip_reg_step {
    enum chip_reg_op op;
    uint32_t addr;
    uint32_t value;
};

#define CHIP_REG_POLL_MAX    10
#define CHIP_RDID_MAX_STEPS  12
#define CHIP_RDID_SAVE_SLOTS 2

/* Fills steps[] with the RDID (0x9F) recipe of §7.5 for chip and returns the step count
 * (> 0). The flash must be attached first (ESP8266: FLASH_BEGIN(0,0,0x400,0); ESP32 family:
 * SPI_ATTACH). The id is the value read by the CHIP_REG_RESULT step, masked to 24 bits. */
size_t chip_rdid_steps(const struct chip *chip, struct chip_reg_step steps[CHIP_RDID_MAX_STEPS]);

struct flash_id {
    uint32_t raw;         /* id & 0xFFFFFF, as read from W0 */
    uint8_t manufacturer; /* id & 0xFF */
    uint16_t device;      /* memory type << 8 | capacity, as esptool prints it */
    uint32_t size_bytes;  /* 0 when the capacity byte is not in §7.6's table */
};

/* Decodes a JEDEC id. 0xFFFFFF, 0 and 0xFFFF3F fail with ES_NO_FLASH. An unknown capacity is
 * not an error: size_bytes is 0 and the caller decides (fail unless the profile names a size). */
int flash_id_decode(uint32_t id, struct flash_id *out, struct es_err *err);

/* ---- Flash parameter codes for the image header (§9.2) ---- */

/* Parses "512KB", "4MB", "16MB", "2MB-c1" (and "256KB"...) into its entry in chip's family
 * table. ES_PROFILE when the name is not a size, or the family cannot encode it (512KB on
 * ESP32, 32MB on ESP8266); the message lists what the family accepts. */
int chip_flash_size_from_string(const struct chip *chip, const char *name,
                                const struct chip_flash_size **out, struct es_err *err);
/* The family's entry for a size in bytes (e.g. one detected from the JEDEC id); ES_FLASH_SIZE
 * when the family has no code for it. Plain sizes win over the ESP8266 "-c1" layouts. */
int chip_flash_size_from_bytes(const struct chip *chip, uint32_t bytes,
                               const struct chip_flash_size **out, struct es_err *err);
/* The entry for a header code (high nibble, shifted: 0x40); NULL when unknown. */
const struct chip_flash_size *chip_flash_size_by_code(const struct chip *chip, uint8_t code);
/* "4MB" style name for any power-of-two size in bytes (256KB ... 256MB); NULL otherwise. */
const char *chip_flash_size_name(uint32_t bytes);

/* "80m", "40m", "26m", "20m" → low-nibble code for chip; ES_PROFILE when chip has no such code. */
int chip_flash_freq_from_string(const struct chip *chip, const char *name, uint8_t *code,
                                struct es_err *err);
/* Name of a frequency code for chip; NULL when unknown. */
const char *chip_flash_freq_name(const struct chip *chip, uint8_t code);

/* Flash mode, header byte 2 (§9.2, all chips). */
enum chip_flash_mode {
    CHIP_FLASH_QIO = 0,
    CHIP_FLASH_QOUT = 1,
    CHIP_FLASH_DIO = 2,
    CHIP_FLASH_DOUT = 3
};
/* "qio", "qout", "dio", "dout" → code; ES_PROFILE otherwise. */
int chip_flash_mode_from_string(const char *name, uint8_t *code, struct es_err *err);
/* Name of a mode code; NULL when unknown. */
const char *chip_flash_mode_name(uint8_t code);

#endif
