/* The chip table: one row of facts per chip model, as data (style.md §6). Every number names the
 * protocol doc section it comes from; adding a chip means adding a row here and its vectors in
 * tests/unit/test_chip.c. Lookups and decoders live in chip.c and flash_id.c. */
#include "chip_table.h"

/* §9.2: the ESP8266 family's size codes (high nibble of header byte 3). The "-c1" entries are
 * ESP8266 OTA layouts of 2 and 4 MiB chips. */
static const struct chip_flash_size esp8266_sizes[] = {
    {"256KB", 256u << 10, 0x10}, {"512KB", 512u << 10, 0x00}, {"1MB", 1u << 20, 0x20},
    {"2MB", 2u << 20, 0x30},     {"4MB", 4u << 20, 0x40},     {"2MB-c1", 2u << 20, 0x50},
    {"4MB-c1", 4u << 20, 0x60},  {"8MB", 8u << 20, 0x80},     {"16MB", 16u << 20, 0x90},
};

/* §9.2: every ESP32-family chip. esptool's table has 32-128 MiB for all of them, so a detected
 * 32 MiB chip gets a code as it would with esptool (the ROM still cannot write past 16 MiB). */
static const struct chip_flash_size esp32_sizes[] = {
    {"1MB", 1u << 20, 0x00},   {"2MB", 2u << 20, 0x10},     {"4MB", 4u << 20, 0x20},
    {"8MB", 8u << 20, 0x30},   {"16MB", 16u << 20, 0x40},   {"32MB", 32u << 20, 0x50},
    {"64MB", 64u << 20, 0x60}, {"128MB", 128u << 20, 0x70},
};

/* §9.2: ESP8266, ESP32, S2, S3 and C3 share one frequency table. */
static const struct chip_flash_freq classic_freqs[] = {
    {"80m", 0xF},
    {"40m", 0x0},
    {"26m", 0x1},
    {"20m", 0x2},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* §7.5: RDID register offsets from SPI_REG_BASE differ between ESP8266/ESP32 and later chips. */
#define SPI_REGS_ESP8266(b)                                                                        \
    {                                                                                              \
        .cmd = (b), .usr = (b) + 0x1C, .usr1 = (b) + 0x20, .usr2 = (b) + 0x24, .mosi_dlen = 0,     \
        .miso_dlen = 0, .w0 = (b) + 0x40                                                           \
    }
#define SPI_REGS_ESP32(b)                                                                          \
    {                                                                                              \
        .cmd = (b), .usr = (b) + 0x1C, .usr1 = (b) + 0x20, .usr2 = (b) + 0x24,                     \
        .mosi_dlen = (b) + 0x28, .miso_dlen = (b) + 0x2C, .w0 = (b) + 0x80                         \
    }
#define SPI_REGS_LATER(b)                                                                          \
    {                                                                                              \
        .cmd = (b), .usr = (b) + 0x18, .usr1 = (b) + 0x1C, .usr2 = (b) + 0x20,                     \
        .mosi_dlen = (b) + 0x24, .miso_dlen = (b) + 0x28, .w0 = (b) + 0x58                         \
    }

/* §3.1: what every ESP32-family ROM has over the ESP8266 ROM; S2-and-later add security info and
 * the 5-word FLASH_BEGIN (§3.2). */
#define ROM_CAPS_ESP32                                                                             \
    (CHIP_ROM_NEEDS_SPI_ATTACH | CHIP_ROM_MD5 | CHIP_ROM_DEFLATE | CHIP_ROM_CHANGE_BAUD |          \
     CHIP_ROM_READ_FLASH_SLOW | CHIP_ROM_SPI_SET_PARAMS)
#define ROM_CAPS_LATER (ROM_CAPS_ESP32 | CHIP_ROM_SECURITY_INFO | CHIP_ROM_BEGIN_5_WORDS)

#define ESP32_FAMILY_COMMON                                                                        \
    .family = CHIP_FAMILY_ESP32, .rom_status_len = 4, .rom_block_size = 0x400,                     \
    .stub_block_size = 0x4000, .mem_block_size = 0x1800, .rom_max_flash = 16u << 20,               \
    .xtal_clk_divider = 1, .flash_sizes = esp32_sizes, .flash_size_count = ARRAY_LEN(esp32_sizes), \
    .flash_freqs = classic_freqs, .flash_freq_count = ARRAY_LEN(classic_freqs)

const struct chip chip_table[CHIP_MODEL_COUNT] = {
    [CHIP_ESP8266] =
        {
            .model = CHIP_ESP8266,
            .name = "esp8266",
            .display = "ESP8266",
            .family = CHIP_FAMILY_ESP8266,
            .magic = {0xFFF0C101}, /* §6.1 */
            .magic_count = 1,
            .image_chip_id = -1, /* §6.2: no extended header */
            .bootloader_offset = 0x0,
            .rom_status_len = 2, /* §2.3 */
            .rom_caps = 0,       /* §3.1, §8.6 */
            .rom_block_size = 0x400,
            .stub_block_size = 0x4000,
            .mem_block_size = 0x1800,
            .rom_max_flash = 4u << 20, /* §15.2: FLASH_BEGIN at/after 4 MiB gets 01 06 */
            .info_regs = {0x3FF00050, 0x3FF00054, 0x3FF00058, 0x3FF0005C}, /* §7.1 */
            .info_reg_count = 4,
            .uart_clkdiv_reg = 0x60000014, /* §7.4 */
            .xtal_clk_divider = 2,
            .spi_base = 0x60000200,
            .spi = SPI_REGS_ESP8266(0x60000200),
            .flash_sizes = esp8266_sizes,
            .flash_size_count = ARRAY_LEN(esp8266_sizes),
            .flash_freqs = classic_freqs,
            .flash_freq_count = ARRAY_LEN(classic_freqs),
        },
    [CHIP_ESP32] =
        {
            ESP32_FAMILY_COMMON,
            .model = CHIP_ESP32,
            .name = "esp32",
            .display = "ESP32",
            .magic = {0x00F01D83},
            .magic_count = 1,
            .image_chip_id = 0,
            .bootloader_offset = 0x1000,
            .rom_caps = ROM_CAPS_ESP32,
            /* §7.2: eFuse read block words 0-6, then APB_CTL_DATE for the revision. */
            .info_regs = {0x3FF5A000, 0x3FF5A004, 0x3FF5A008, 0x3FF5A00C, 0x3FF5A010, 0x3FF5A014,
                          0x3FF5A018, 0x3FF6607C},
            .info_reg_count = 8,
            .uart_clkdiv_reg = 0x3FF40014,
            .rom_baud_cal_reg = 0x3FF5F06C, /* TIMG0 RTCCALICFG1 (§3.10) */
            .spi_base = 0x3FF42000,
            .spi = SPI_REGS_ESP32(0x3FF42000),
        },
    [CHIP_ESP32S2] =
        {
            ESP32_FAMILY_COMMON,
            .model = CHIP_ESP32S2,
            .name = "esp32s2",
            .display = "ESP32-S2",
            .magic = {0x000007C6},
            .magic_count = 1,
            .image_chip_id = 2,
            .bootloader_offset = 0x1000,
            .rom_caps = ROM_CAPS_LATER,
            .info_regs = {0x3F41A044, 0x3F41A048}, /* §7.3 */
            .info_reg_count = 2,
            .uart_clkdiv_reg = 0x3F400014,
            .spi_base = 0x3F402000,
            .spi = SPI_REGS_LATER(0x3F402000),
        },
    [CHIP_ESP32S3] =
        {
            ESP32_FAMILY_COMMON,
            .model = CHIP_ESP32S3,
            .name = "esp32s3",
            .display = "ESP32-S3",
            .magic = {0x00000009},
            .magic_count = 1,
            .image_chip_id = 9,
            .bootloader_offset = 0x0,
            .rom_caps = ROM_CAPS_LATER,
            .info_regs = {0x60007044, 0x60007048},
            .info_reg_count = 2,
            .uart_clkdiv_reg = 0x60000014,
            .spi_base = 0x60002000,
            .spi = SPI_REGS_LATER(0x60002000),
        },
    [CHIP_ESP32C3] =
        {
            ESP32_FAMILY_COMMON,
            .model = CHIP_ESP32C3,
            .name = "esp32c3",
            .display = "ESP32-C3",
            .magic = {0x6921506F, 0x1B31506F, 0x4881606F, 0x4361606F},
            .magic_count = 4,
            .image_chip_id = 5,
            .bootloader_offset = 0x0,
            .rom_caps = ROM_CAPS_LATER,
            .info_regs = {0x60008844, 0x60008848},
            .info_reg_count = 2,
            .uart_clkdiv_reg = 0x60000014,
            .spi_base = 0x60002000,
            .spi = SPI_REGS_LATER(0x60002000),
        },
};
