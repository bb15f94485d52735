/* The registers a host reads and writes through READ_REG/WRITE_REG (§13.5): the chip magic, the
 * ESP8266 OTP / ESP32 eFuse words that carry MAC, revision and package, the UART divider that
 * reveals the crystal, the SPI controller that runs RDID (§7.5, §13.6), and the RAM that MEM_DATA
 * loaded (§15.3). Values are chosen to decode, with esptool's rules, to the configured MAC, a
 * 26 MHz (ESP8266) or 40 MHz (ESP32) crystal and an ESP32-D0WD-V3 revision 3. */
#include <string.h>

#include "model.h"

#define MAGIC_ADDR     0x40001000u
#define SPI_CMD_USR    (1u << 18)
#define SPI_CMD_RDID   (1u << 28) /* ESP8266 hardware "read id" (used by old stubs) */
#define SPI_USR_MISO   (1u << 28)
#define ESP8266_OTP    0x3FF00050u
#define ESP32_EFUSE    0x3FF5A000u
#define ESP32_APB_DATE 0x3FF6607Cu
#define ESP32_RTC_CALI 0x3FF5F06Cu /* §3.10, V-8: reads as an exact 40 MHz ROM clock */

void sim_regs_flash_attached(struct sim_board *b)
{
    b->attached = 1;
    /* [model] The ESP8266 loaders read flash 32 bytes at a time through the user command, which
     * leaves USR1's MISO length at 255 bits. esptool-js 0.7.0 relies on that: on ESP8266 it
     * writes the RDID length to CMD (its MISO_DLEN offset is 0, not "none") and never to USR1. */
    if (b->cfg.chip == SIM_ESP8266)
        b->spi[b->chip->spi_usr1 / 4] = (b->spi[b->chip->spi_usr1 / 4] & ~(0x1FFu << 8)) | 255u
                                                                                               << 8;
}

void sim_regs_reset(struct sim_board *b)
{
    memset(b->spi, 0, sizeof(b->spi));
    b->nregs = 0;
}

/* CRC-8 (Dallas/Maxim, reflected polynomial 0x8C) over the MAC, for the upper bits of ESP32
 * eFuse word 2, as ESP-IDF computes it over the six MAC bytes in order: espstation checks it
 * (chip_check_mac) before it trusts a MAC read over the line. */
static uint8_t mac_crc(const uint8_t *mac)
{
    uint8_t c = 0;

    for (int i = 0; i < 6; i++) {
        c ^= mac[i];
        for (int k = 0; k < 8; k++)
            c = (uint8_t)((c & 1) ? (c >> 1) ^ 0x8C : c >> 1);
    }
    return c;
}

/* ESP8266 OTP words 0-3 (§7.1). The OUI is coded in MAC1 bits 16-23 for the two classic
 * Espressif OUIs, else spelled out in MAC3. */
static uint32_t esp8266_otp(const struct sim_board *b, unsigned word)
{
    const uint8_t *m = b->cfg.mac;
    uint32_t code = 0, mac3 = 0;

    if (m[0] == 0xAC && m[1] == 0xD0 && m[2] == 0x74)
        code = 1;
    else if (!(m[0] == 0x18 && m[1] == 0xFE && m[2] == 0x34))
        mac3 = (uint32_t)m[0] << 16 | (uint32_t)m[1] << 8 | m[2];
    switch (word) {
    case 0: return (uint32_t)m[5] << 24 | 0x004F2Au; /* bit 4 clear: not an ESP8285 */
    case 1: return code << 16 | (uint32_t)m[3] << 8 | m[4];
    case 2: return 0; /* bit 16 clear: not an ESP8285 */
    default: return mac3;
    }
}

/* ESP32 eFuse read block words 0-7 (§7.2). */
static uint32_t esp32_efuse(const struct sim_board *b, unsigned word)
{
    const uint8_t *m = b->cfg.mac;

    switch (word) {
    case 1: return (uint32_t)m[2] << 24 | (uint32_t)m[3] << 16 | (uint32_t)m[4] << 8 | m[5];
    case 2: return (uint32_t)mac_crc(m) << 16 | (uint32_t)m[0] << 8 | m[1];
    case 3: return 0x0000A200; /* rev bit 0 (b15), 240 MHz rated (b13), package D0WD (1 << 9) */
    case 4: return 0x00000050; /* 8 MHz clock calibration, as in V-8 */
    case 5: return 0x00100000; /* rev bit 1 (b20), minor revision 0, default SPI pads */
    default: return 0;         /* words 0, 6 (coding scheme none), 7 */
    }
}

static uint32_t uart_clkdiv(const struct sim_board *b)
{
    uint32_t baud = b->baud ? b->baud : 115200;
    uint64_t div16 = ((uint64_t)b->chip->uart_clk_hz * 16 + baud / 2) / baud;

    /* integer part in bits 0-19, and on ESP32 a fraction in sixteenths in bits 20-23 */
    if (b->cfg.chip == SIM_ESP8266)
        return (uint32_t)((b->chip->uart_clk_hz + baud / 2) / baud) & 0xFFFFF;
    return (uint32_t)(((div16 >> 4) & 0xFFFFF) | ((div16 & 15) << 20));
}

/* What the ESP8266 bus answers at all; anything else hangs the ROM (§15.2). */
static int esp8266_mapped(uint32_t addr)
{
    return (addr >= 0x3FF00000u && addr < 0x3FF00100u) || /* DPORT, OTP */
           (addr >= 0x3FFE8000u && addr < 0x40000000u) || /* DRAM */
           (addr >= 0x40000000u && addr < 0x40010000u) || /* ROM */
           (addr >= 0x40100000u && addr < 0x40110000u) || /* IRAM, stubs at 0x4010C500 */
           (addr >= 0x60000000u && addr < 0x60001000u);   /* UART, SPI, GPIO, timers */
}

static uint32_t spi_w0_mask(const struct sim_board *b)
{
    uint32_t bits;

    if (b->chip->spi_miso_dlen)
        bits = (b->spi[b->chip->spi_miso_dlen / 4] & 0xFFFFFF) + 1;
    else
        bits = ((b->spi[b->chip->spi_usr1 / 4] >> 8) & 0x1FF) + 1;
    return bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1;
}

/* A write to CMD with USR set runs the user command in USR2's low byte (§13.6). Only RDID
 * returns anything; unattached flash reads as all ones ("no flash answered", §7.5). */
static void spi_execute(struct sim_board *b, uint32_t cmd)
{
    uint32_t *w0 = &b->spi[b->chip->spi_w0 / 4];
    uint32_t id = b->attached ? (b->cfg.flash_id & 0xFFFFFF) : 0xFFFFFFu;

    if (cmd & SPI_CMD_USR) {
        uint32_t opcode = b->spi[b->chip->spi_usr2 / 4] & 0xFF;

        if (b->spi[b->chip->spi_usr / 4] & SPI_USR_MISO)
            *w0 = (opcode == 0x9F ? id : (b->attached ? 0 : 0xFFFFFFFFu)) & spi_w0_mask(b);
    } else if (b->cfg.chip == SIM_ESP8266 && (cmd & SPI_CMD_RDID)) {
        *w0 = id;
    }
    b->spi[0] &= ~(SPI_CMD_USR | SPI_CMD_RDID); /* §15.3: reads back 0 once the command ran */
}

/* The byte at addr as the last MEM_DATA covering it left it (§15.3), or NULL if none did. */
static uint8_t *ram_byte(struct sim_board *b, uint32_t addr)
{
    for (int i = b->nsegs - 1; i >= 0; i--) {
        struct sim_mem_seg *s = &b->segs[i];
        uint32_t held = s->size < SIM_MAX_SEG_SIZE ? s->size : SIM_MAX_SEG_SIZE;

        if (s->received < held)
            held = s->received;
        if (addr - s->addr < held)
            return s->bytes + (addr - s->addr);
    }
    return NULL;
}

/* READ_REG/WRITE_REG of loaded RAM, a byte at a time; returns 0 if no byte of the word was
 * loaded. */
static int ram_read(struct sim_board *b, uint32_t addr, uint32_t *value)
{
    int found = 0;

    *value = 0;
    for (uint32_t k = 0; k < 4; k++) {
        const uint8_t *p = ram_byte(b, addr + k);

        if (p) {
            *value |= (uint32_t)*p << (8 * k);
            found = 1;
        }
    }
    return found;
}

static int ram_write(struct sim_board *b, uint32_t addr, uint32_t value)
{
    int found = 0;

    for (uint32_t k = 0; k < 4; k++) {
        uint8_t *p = ram_byte(b, addr + k);

        if (p) {
            *p = (uint8_t)(value >> (8 * k));
            found = 1;
        }
    }
    return found;
}

uint32_t sim_regs_read(struct sim_board *b, uint32_t addr, int *mapped)
{
    const struct sim_chip_desc *c = b->chip;
    int esp8266 = b->cfg.chip == SIM_ESP8266;
    uint32_t v;

    *mapped = 1;
    if (addr == MAGIC_ADDR) {
        if (b->cfg.faults.wrong_chip) /* the other simulated chip's magic */
            return sim_chip_table[esp8266 ? SIM_ESP32 : SIM_ESP8266].magic;
        return c->magic;
    }
    if (addr == c->uart_clkdiv_reg)
        return uart_clkdiv(b);
    if (addr >= c->spi_base && addr < c->spi_base + 0x100 && addr % 4 == 0)
        return b->spi[(addr - c->spi_base) / 4];
    if (esp8266 && addr >= ESP8266_OTP && addr < ESP8266_OTP + 16 && addr % 4 == 0)
        return esp8266_otp(b, (addr - ESP8266_OTP) / 4);
    if (!esp8266 && addr >= ESP32_EFUSE && addr < ESP32_EFUSE + 32 && addr % 4 == 0)
        return esp32_efuse(b, (addr - ESP32_EFUSE) / 4);
    if (!esp8266 && addr == ESP32_APB_DATE)
        return 0x96042000; /* bit 31 set: revision bit 2 (§7.2) */
    if (!esp8266 && addr == ESP32_RTC_CALI)
        return 0x00028000;
    if (ram_read(b, addr, &v))
        return v;
    for (int i = 0; i < b->nregs; i++)
        if (b->regs[i].addr == addr)
            return b->regs[i].value;
    if (esp8266 && !esp8266_mapped(addr))
        *mapped = 0;
    return 0; /* [model] unknown addresses read as 0 */
}

void sim_regs_write(struct sim_board *b, uint32_t addr, uint32_t value, uint32_t mask)
{
    const struct sim_chip_desc *c = b->chip;
    int mapped;
    uint32_t v;

    if (addr >= c->spi_base && addr < c->spi_base + 0x100 && addr % 4 == 0) {
        unsigned i = (addr - c->spi_base) / 4;

        b->spi[i] = (b->spi[i] & ~mask) | (value & mask);
        if (i == 0)
            spi_execute(b, b->spi[i]);
        return;
    }
    v = (sim_regs_read(b, addr, &mapped) & ~mask) | (value & mask);
    if (addr == MAGIC_ADDR || addr == c->uart_clkdiv_reg)
        return; /* ROM and read-only words */
    if (ram_write(b, addr, v))
        return;
    for (int i = 0; i < b->nregs; i++) {
        if (b->regs[i].addr == addr) {
            b->regs[i].value = v;
            return;
        }
    }
    if (b->nregs < (int)(sizeof(b->regs) / sizeof(b->regs[0]))) {
        b->regs[b->nregs].addr = addr;
        b->regs[b->nregs].value = v;
        b->nregs++;
    }
}
