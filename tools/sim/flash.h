/* The simulated SPI NOR flash of one board: erase to 0xFF in 4 KiB sectors, programming that can
 * only clear bits, 24-bit addressing that wraps, and the "writes wrong data" fault. Also the MD5
 * the ROM and the stub compute over flash (written here from RFC 1321, so espsim needs no crypto
 * library). No timing lives here: the callers charge the time (model.h). */
#ifndef SIM_FLASH_H
#define SIM_FLASH_H

#include <stddef.h>
#include <stdint.h>

#define SIM_FLASH_SECTOR 4096u
#define SIM_FLASH_BLOCK  65536u /* the 64 KiB erase block (SPI command 0xD8) */

struct sim_flash {
    uint8_t *mem;  /* borrowed from the shell (the mmap of the state file) */
    uint32_t size; /* bytes; any size > 0 works, addresses wrap modulo size */
    int bad;       /* fault "flash stores wrong data at bad_addr" */
    uint32_t bad_addr;
    uint64_t bytes_written; /* bytes programmed, for the statistics */
    uint64_t erases;        /* sectors erased (a chip erase counts each sector) */
};

/* Where a bus address lands: ROM loaders drive 24 address bits (§8.8), and a chip smaller than
 * 16 MiB ignores the upper bits it does not have. */
uint32_t sim_flash_wrap(const struct sim_flash *f, uint32_t addr);
/* Erases the sector holding addr. */
void sim_flash_erase_sector(struct sim_flash *f, uint32_t addr);
void sim_flash_erase_all(struct sim_flash *f);
/* Programs n bytes at addr (new = old AND data, §13.6). Returns 1 when the bad-flash fault
 * corrupted a byte of this write (the ROM's read-back check would notice), else 0. */
int sim_flash_program(struct sim_flash *f, uint32_t addr, const uint8_t *data, size_t n);
void sim_flash_read(const struct sim_flash *f, uint32_t addr, uint8_t *out, size_t n);

struct sim_md5 {
    uint32_t h[4];
    uint64_t len;
    uint8_t buf[64];
    size_t fill;
};
void sim_md5_init(struct sim_md5 *m);
void sim_md5_update(struct sim_md5 *m, const uint8_t *data, size_t n);
void sim_md5_final(struct sim_md5 *m, uint8_t out[16]);
/* MD5 of n bytes of flash from addr (wrapping as sim_flash_wrap does). */
void sim_flash_md5(const struct sim_flash *f, uint32_t addr, uint32_t n, uint8_t out[16]);

#endif
