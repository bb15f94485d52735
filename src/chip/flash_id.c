/* The SPI flash JEDEC id: the RDID register recipe a session plays (protocol doc §7.5) and the
 * decoding of the id into manufacturer, device and size (§7.6). No ROM has a flash-id command,
 * so the recipe drives the SPI controller through READ_REG / WRITE_REG. */
#include "chip_table.h"

/* SPI controller bits (§7.5). */
#define SPI_CMD_USR       (1u << 18) /* CMD: start a user command; clears when done */
#define SPI_USR_COMMAND   (1u << 31) /* USR: send a command phase */
#define SPI_USR_MISO      (1u << 28) /* USR: read a data phase */
#define SPI_USR2_CMD_BITS 28         /* USR2: command length - 1, then the opcode in bits 15-0 */
#define SPI_USR1_MISO_S   8          /* ESP8266 USR1: MISO bit length - 1 */
#define RDID_OPCODE       0x9Fu
#define RDID_BITS         24u

size_t chip_rdid_steps(const struct chip *chip, struct chip_reg_step steps[CHIP_RDID_MAX_STEPS])
{
    const struct chip_spi_regs *r = &chip->spi;
    size_t n = 0;

    steps[n++] = (struct chip_reg_step){CHIP_REG_SAVE, r->usr, 0};
    steps[n++] = (struct chip_reg_step){CHIP_REG_SAVE, r->usr2, 1};
    if (r->miso_dlen != 0) /* ESP32 family: a data-length register per direction */
        steps[n++] = (struct chip_reg_step){CHIP_REG_WRITE, r->miso_dlen, RDID_BITS - 1};
    else /* ESP8266: both lengths live in USR1; nothing is sent, so MOSI stays 0 */
        steps[n++] =
            (struct chip_reg_step){CHIP_REG_WRITE, r->usr1, (RDID_BITS - 1) << SPI_USR1_MISO_S};
    steps[n++] = (struct chip_reg_step){CHIP_REG_WRITE, r->usr, SPI_USR_COMMAND | SPI_USR_MISO};
    steps[n++] =
        (struct chip_reg_step){CHIP_REG_WRITE, r->usr2, (7u << SPI_USR2_CMD_BITS) | RDID_OPCODE};
    steps[n++] = (struct chip_reg_step){CHIP_REG_WRITE, r->w0, 0};
    steps[n++] = (struct chip_reg_step){CHIP_REG_WRITE, r->cmd, SPI_CMD_USR};
    steps[n++] = (struct chip_reg_step){CHIP_REG_POLL, r->cmd, SPI_CMD_USR};
    steps[n++] = (struct chip_reg_step){CHIP_REG_RESULT, r->w0, 0};
    steps[n++] = (struct chip_reg_step){CHIP_REG_RESTORE, r->usr, 0};
    steps[n++] = (struct chip_reg_step){CHIP_REG_RESTORE, r->usr2, 1};
    return n;
}

/* §7.6: capacity byte → log2(size in bytes); 0 = not in the table. Both the 0x1n and 0x3n
 * series count from 256 KiB; 0x20-0x22 continue after 0x1A/0x3A. */
static unsigned capacity_log2(uint8_t cap)
{
    if (cap >= 0x12 && cap <= 0x1C)
        return 18u + (cap - 0x12u);
    if (cap >= 0x32 && cap <= 0x3A)
        return 18u + (cap - 0x32u);
    if (cap >= 0x20 && cap <= 0x22)
        return 26u + (cap - 0x20u);
    return 0;
}

int flash_id_decode(uint32_t id, struct flash_id *out, struct es_err *err)
{
    uint32_t raw = id & 0xFFFFFFu;
    uint8_t type = (uint8_t)(raw >> 8), cap = (uint8_t)(raw >> 16);
    unsigned lg;

    /* §7.5: an absent or unpowered flash reads as all ones, all zeros, or FF FF 3F. */
    if (raw == 0xFFFFFFu || raw == 0 || raw == 0xFFFF3Fu)
        return es_fail(err, ES_NO_FLASH,
                       "flash JEDEC id 0x%06x means no flash chip answered RDID; check the module "
                       "has flash and it is wired to the SPI pins",
                       (unsigned)raw);
    out->raw = raw;
    out->manufacturer = (uint8_t)raw;
    out->device = (uint16_t)(type << 8 | cap);
    out->size_bytes = 0;
    if (out->manufacturer == 0x1F) {
        /* Adesto puts the size in the memory-type byte's low 5 bits: 4 = 512 KiB ... 9 = 16 MiB. */
        unsigned a = type & 0x1Fu;
        if (a >= 4 && a <= 9)
            out->size_bytes = (512u << 10) << (a - 4);
        return 0;
    }
    lg = capacity_log2(cap);
    if (lg != 0)
        out->size_bytes = 1u << lg;
    return 0;
}
