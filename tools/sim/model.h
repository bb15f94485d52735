/* Internals of the board model, shared by board.c (life cycle, lines, UART, boot), rom_model.c
 * (the ROM loaders), rom_model_regs.c (registers) and stub_model.c (the flasher stub). Not part
 * of the shell interface: the shell includes board.h only. */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stdint.h>
#include <zlib.h>

#include "board.h"
#include "flash.h"
#include "stubimg.h"

/* Board-time costs (§13.7). They are datasheet-typical guesses for 3 V SPI NOR flash, not numbers
 * from the sources; all of espsim's timing comes from this one table. */
#define SIM_T_BOOT_NS           (30ull * 1000000)   /* reset release -> boot text */
#define SIM_T_GLITCH_NS         (5ull * 1000000)    /* EN must stay high this long (EN capacitor) */
#define SIM_T_CMD_NS            (200ull * 1000)     /* decode and answer a simple command */
#define SIM_T_SYNC_NS           (1ull * 1000000)    /* first SYNC reply (§15.1: ~1 ms) */
#define SIM_T_ERASE_SECTOR_NS   (45ull * 1000000)   /* one 4 KiB sector */
#define SIM_T_ERASE_BLOCK_NS    (150ull * 1000000)  /* one 64 KiB block (W25Q32 typical) */
#define SIM_T_PROGRAM_KIB_NS    (3ull * 1000000)    /* program 1 KiB */
#define SIM_T_MD5_MIB_NS        (100ull * 1000000)  /* MD5 over 1 MiB of flash */
#define SIM_T_CHIP_ERASE_MIB_NS (2500ull * 1000000) /* stub ERASE_FLASH, per MiB of flash */
#define SIM_T_STUB_START_NS     (10ull * 1000000)   /* MEM_END reply -> "OHAI" */
#define SIM_T_APP_START_NS      (50ull * 1000000)   /* flash boot log -> application line */
#define SIM_T_BOOT_LOOP_NS      (1000ull * 1000000) /* fault boot-loop: boot to boot */

#define SIM_APP_BAUD         115200  /* the application's console (MicroPython's REPL) */
#define SIM_ESP32_APP_OFFSET 0x10000 /* an ESP-IDF app after the bootloader (§9.3) */

/* Facts about one simulated chip, as data (style.md §6). */
struct sim_chip_desc {
    const char *name;
    uint32_t magic;          /* READ_REG 0x40001000 (§6.1) */
    unsigned rom_status_len; /* 2 (ESP8266) or 4 (ESP32) status bytes in ROM replies (§2.3) */
    uint32_t boot_baud;      /* rate of the ROM's own output before autobaud (§1.1) */
    uint32_t uart_clk_hz;    /* UART clock: divider = uart_clk_hz / baud (§7.4) */
    uint32_t uart_clkdiv_reg;
    uint32_t spi_base, spi_usr, spi_usr1, spi_usr2, spi_miso_dlen, spi_w0; /* §7.5 */
    uint32_t bootloader_offset;                                            /* §9.3 */
    uint32_t rom_flash_limit; /* ROM refuses FLASH_BEGIN past this until SPI_SET_PARAMS */
    int rom_has_esp32_ops;    /* SPI_ATTACH, READ_FLASH_SLOW, baud, deflate, MD5 (§3.1) */
};
extern const struct sim_chip_desc sim_chip_table[2];

/* Command bytes as the simulated loaders read them (protocol doc §3.1). The simulator keeps its
 * own list, apart from src/proto, so that one misreading cannot hide on both sides. */
enum sim_op {
    OP_FLASH_BEGIN = 0x02,
    OP_FLASH_DATA = 0x03,
    OP_FLASH_END = 0x04,
    OP_MEM_BEGIN = 0x05,
    OP_MEM_END = 0x06,
    OP_MEM_DATA = 0x07,
    OP_SYNC = 0x08,
    OP_WRITE_REG = 0x09,
    OP_READ_REG = 0x0A,
    OP_SPI_SET_PARAMS = 0x0B,
    OP_SPI_ATTACH = 0x0D,
    OP_READ_FLASH_SLOW = 0x0E,
    OP_CHANGE_BAUDRATE = 0x0F,
    OP_FLASH_DEFL_BEGIN = 0x10,
    OP_FLASH_DEFL_DATA = 0x11,
    OP_FLASH_DEFL_END = 0x12,
    OP_SPI_FLASH_MD5 = 0x13,
    OP_ERASE_FLASH = 0xD0, /* stub only, like the three below */
    OP_ERASE_REGION = 0xD1,
    OP_READ_FLASH = 0xD2,
    OP_RUN_USER_CODE = 0xD3,
};

/* The flasher stub families espsim recognises in an upload, by the load address of the segment
 * holding the entry point (sim_run_ram). They differ in how they receive (§10.2):
 * - SIM_STUB_FLASHER: esp-flasher-stub as shipped by esptool-js 0.7.0 (and esptool v5's
 *   stub_flasher/2). One frame buffer; the reply to a data block comes after its decompress and
 *   write; while a received frame waits to be handled, the UART ISR stops draining the 128-byte
 *   RX FIFO ("Cannot process more bytes until frame is processed", src/transport.c before the
 *   2026 frame_buffer.c rework), so every byte beyond the FIFO is lost. The reworked two-buffer
 *   build loads at the same addresses and cannot be told apart by address, so it gets this,
 *   the least capable model, too.
 * - SIM_STUB_LEGACY: the GPL esptool stub (flasher_stub/, esptool-js <= 0.6.1, esptool
 *   --stub-version 1). The ISR always drains into one of two buffers; a data block is answered
 *   before it is written, so the next one is received meanwhile. A frame that completes while
 *   both buffers are taken is lost. */
enum sim_stub_family { SIM_STUB_NONE, SIM_STUB_FLASHER, SIM_STUB_LEGACY };

#define SIM_UART_FIFO 128 /* the RX FIFO of the ESP8266 and ESP32 UARTs, in bytes */

enum sim_mode {
    SIM_MODE_RESET,     /* EN held low, or released but inside the glitch filter */
    SIM_MODE_ROM,       /* ROM download loader */
    SIM_MODE_STUB,      /* the uploaded flasher stub runs */
    SIM_MODE_APP,       /* the application from flash runs; no protocol */
    SIM_MODE_DEAD,      /* crashed or stuck until the next reset */
    SIM_MODE_UNPLUGGED, /* fault: the port was closed for good */
};

/* A FLASH_BEGIN / FLASH_DEFL_BEGIN in progress. */
struct sim_write {
    int active;
    int deflate;
    uint32_t offset;     /* FLASH_BEGIN offset */
    uint32_t ptr;        /* next byte lands here (running write pointer, §15) */
    uint32_t blocks;     /* blocks announced */
    uint32_t block_size; /* bytes per block announced */
    uint32_t next_seq;
    uint32_t remaining;  /* stub: bytes still expected (uncompressed) */
    uint32_t erase_next; /* stub: first sector address not yet erased */
    uint32_t erase_end;  /* stub: end of the region to erase just in time */
    uint64_t expected;   /* bytes of DATA payload announced, for the unplug fault */
    uint64_t received;   /* bytes of DATA payload received so far */
    int clip;            /* stub: writes are cut to `remaining` (the padded last block) */
    int overflow;        /* stub: more data arrived than announced */
    int z_ready, z_done; /* deflate stream state */
    z_stream z;
};

#define SIM_MAX_SEGS 8
#define SIM_MAX_SEG_SIZE                                                                           \
    (512u * 1024) /* more than any ESP RAM; bytes past this are counted only                       \
                   */

struct sim_mem_seg {
    uint32_t addr, size, received;
    uint8_t *bytes; /* min(size, SIM_MAX_SEG_SIZE) bytes */
};

struct sim_deferred; /* output waiting for its time (board.c) */

struct sim_board {
    struct sim_board_cfg cfg;
    const struct sim_chip_desc *chip;
    struct sim_board_ops ops;
    void *ctx;
    struct sim_flash flash;
    uint64_t now;
    enum sim_mode mode;

    /* Reset circuit (§5.1, §13.2). */
    int dtr, rts;
    int en_high;          /* EN as the circuit drives it now */
    uint64_t filter_end;  /* when EN has been high long enough; 0 = no release pending */
    int powered;          /* sim_board_start() or sim_board_power_on() was called */
    int btn_boot, btn_en; /* the BOOT and EN buttons are pressed */
    int boot_download;    /* power-on boot goes to download mode regardless of GPIO0 */
    unsigned reset_count; /* resets since power-on (rst cause in the boot text) */

    /* UART (§13.4). */
    uint32_t baud;      /* the board's rate now */
    uint32_t host_baud; /* the host's rate as last reported (0 = always matches) */
    int garbled;        /* fault baud-fail, or a stub given the wrong current baud */

    /* Receive side: a ROM-style SLIP decoder into a buffer that keeps stale bytes (§15.1). */
    uint8_t *rxbuf;
    size_t rx_cap, rx_len;
    int rx_in_frame, rx_escape, rx_drop;

    /* Transmit side. */
    uint8_t txbuf[8 + 64 + 4]; /* the ROM's reply buffer; unwritten bytes stay stale (§15) */
    uint64_t busy_until;       /* the CPU is busy with earlier commands until then */
    uint64_t line_due;         /* due time of the last queued output (keeps output in order) */
    struct sim_deferred *q_head, *q_tail;

    /* ROM loader state. */
    int synced;
    int sync_ignored; /* SYNCs ignored since reset (fault sync-after) */
    int attached;     /* SPI flash attached (SPI_ATTACH, or FLASH_BEGIN on ESP8266) */
    uint32_t flash_limit;
    struct sim_write fw;
    struct sim_write mw; /* MEM_BEGIN in progress (offset/blocks/seq only) */
    struct sim_mem_seg segs[SIM_MAX_SEGS];
    int nsegs;

    /* Registers (rom_model_regs.c). */
    uint32_t spi[64]; /* the SPI controller block, word per 4 bytes */
    struct {
        uint32_t addr, value;
    } regs[32];
    int nregs;

    /* Stub state (stub_model.c). */
    enum sim_stub_family stub; /* which stub runs in SIM_MODE_STUB */
    int stub_error; /* error of a queued write, reported with the next command (§10.2) */
    /* The stub's receive path (board.c): its SLIP decoder (a 0xC0 always toggles in and out of a
     * frame, unlike the ROM's), the UART RX FIFO, and until when the ISR does not drain it. */
    int srx_in_frame, srx_escape;
    uint8_t fifo[SIM_UART_FIFO];
    size_t fifo_len;
    uint64_t rx_hold_until;    /* SIM_STUB_FLASHER: bytes arriving before this wait in the FIFO */
    uint64_t last_frame_start; /* SIM_STUB_LEGACY: when the last accepted frame starts running */
    uint64_t rx_lost;          /* bytes lost to a full FIFO or full buffers */
    unsigned data_frames;      /* data blocks whose end reached the stub (fault lose-end) */
    struct {
        int active;
        uint32_t addr, total, packet, window, sent, acked;
        struct sim_md5 md5;
    } rd;

    /* The application (app_model.c). */
    int app_repl;       /* answers REPL lines */
    char app_line[128]; /* the REPL line being typed */
    size_t app_line_len;
    int app_cr;             /* the last byte was '\r' (a '\n' after it is not a second line) */
    uint64_t app_reboot_at; /* fault boot-loop: when the crash restarts the chip; 0 = never */

    uint64_t rng;
    uint64_t frames_in, frames_out;
};

/* board.c: output and shared helpers. */
void sim_log(struct sim_board *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint32_t sim_rand(struct sim_board *b);
/* Puts raw bytes on the line at the given rate, no earlier than at_ns, after everything sent
 * before. Applies the corrupt fault and rate-mismatch noise. */
void sim_send_raw(struct sim_board *b, const uint8_t *bytes, size_t n, uint64_t at_ns,
                  uint32_t baud);
/* SLIP-encodes one packet and sends it at the board's rate. */
void sim_send_frame(struct sim_board *b, const uint8_t *pkt, size_t n, uint64_t at_ns);
/* When a command received now may start (the CPU finishes earlier work first). */
uint64_t sim_cmd_start(struct sim_board *b);
/* Applies the slow/mute fault to a reply for op: returns 0 if it must not be sent, else 1 and
 * may move *at_ns later. */
int sim_reply_allowed(struct sim_board *b, uint8_t op, uint64_t *at_ns);
/* Counts DATA payload for the unplug fault; returns 1 if the board was just unplugged. */
int sim_count_data(struct sim_board *b, uint32_t n);
/* Programs n bytes at the write pointer and advances it; adds the time to *cost_ns. Returns 1
 * when the bad-flash fault hit. With jit_erase (stub), erases the sectors ahead first. */
int sim_write_data(struct sim_board *b, const uint8_t *data, uint32_t n, int jit_erase,
                   uint64_t *cost_ns);
/* Feeds compressed bytes to the write's inflater and programs what comes out. Returns 0 (more
 * input wanted), 1 (stream complete), -1 (corrupt stream) or -2 (Adler-32 mismatch); *fault is
 * set when the bad-flash fault hit. */
int sim_inflate_data(struct sim_board *b, const uint8_t *in, uint32_t n, int jit_erase,
                     uint64_t *cost_ns, int *fault);
void sim_write_close(struct sim_write *w);
/* Erase cost of n sectors. */
uint64_t sim_erase_cost(uint32_t sectors);
/* Drops output not yet handed to the shell (a reset or power loss). */
void sim_drop_output(struct sim_board *b);

/* app_model.c: booting and the application. */
/* Download-mode boot text; `why` is the reset cause as the ROM prints it. */
void sim_boot_download(struct sim_board *b, uint64_t at_ns, const char *why);
/* Boots from flash now (flash-boot log, then the application or the ROM's complaint); soft: no
 * ROM reset text (a jump from the loader). */
void sim_flash_boot(struct sim_board *b, uint64_t at_ns, int soft);
/* The application stops (reset, power loss, download mode). */
void sim_app_stop(struct sim_board *b);
/* Bytes from the host while the application runs (its REPL). */
void sim_app_rx(struct sim_board *b, const uint8_t *bytes, size_t n);
/* The model's timer fired: a boot-loop crash reboots when its time has come. */
void sim_app_on_timer(struct sim_board *b);
/* Soft reboot into the ROM loader (straps are not re-sampled: download mode again). */
void sim_soft_reboot(struct sim_board *b, uint64_t at_ns);
/* Jumps to the uploaded RAM code at entry: the stub if it matches, else silence. */
void sim_run_ram(struct sim_board *b, uint32_t entry, uint64_t at_ns);

/* rom_model.c */
void sim_rom_reset(struct sim_board *b);
void sim_rom_frame(struct sim_board *b, size_t len);

/* rom_model_regs.c. mapped is set to 0 for an address the chip has nothing at. */
uint32_t sim_regs_read(struct sim_board *b, uint32_t addr, int *mapped);
void sim_regs_write(struct sim_board *b, uint32_t addr, uint32_t value, uint32_t mask);
void sim_regs_reset(struct sim_board *b);
/* The loader attached the SPI flash (SPI_ATTACH, ESP8266 FLASH_BEGIN, stub start). */
void sim_regs_flash_attached(struct sim_board *b);

/* stub_model.c */
void sim_stub_start(struct sim_board *b, enum sim_stub_family family, uint64_t at_ns);
/* board.c: a fresh stub receiver for the family about to run. */
void sim_stub_rx_reset(struct sim_board *b, enum sim_stub_family family);
void sim_stub_frame(struct sim_board *b, const uint8_t *frame, size_t len);

#endif
