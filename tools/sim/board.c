/* One simulated board's life: power, the DTR/RTS reset circuit, the UART (autobaud, pacing
 * requests to the shell, noise at a wrong rate, the corrupt fault), the ROM's SLIP receiver, boot
 * text, flash boot of an image, and the write/inflate pipeline the ROM and the stub share. The
 * commands themselves live in rom_model.c and stub_model.c. */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/le.h"
#include "es/slip.h"

#define MIB (1024u * 1024u)

const struct sim_chip_desc sim_chip_table[2] = {
    [SIM_ESP8266] =
        {
            .name = "ESP8266",
            .magic = 0xFFF0C101,
            .rom_status_len = 2,
            .boot_baud = 74880, /* 26 MHz crystal (§1.1) */
            .uart_clk_hz = 52000000,
            .uart_clkdiv_reg = 0x60000014,
            .spi_base = 0x60000200,
            .spi_usr = 0x1C,
            .spi_usr1 = 0x20,
            .spi_usr2 = 0x24,
            .spi_miso_dlen = 0, /* none: MISO length lives in USR1 */
            .spi_w0 = 0x40,
            .bootloader_offset = 0x0,
            .rom_flash_limit = 4 * MIB, /* §15.2: FLASH_BEGIN at/after 4 MiB gets 01 06 */
            .rom_has_esp32_ops = 0,
        },
    [SIM_ESP32] =
        {
            .name = "ESP32",
            .magic = 0x00F01D83,
            .rom_status_len = 4,
            .boot_baud = 115200,
            .uart_clk_hz = 40000000, /* the ROM runs the UART from the 40 MHz crystal */
            .uart_clkdiv_reg = 0x3FF40014,
            .spi_base = 0x3FF42000,
            .spi_usr = 0x1C,
            .spi_usr1 = 0x20,
            .spi_usr2 = 0x24,
            .spi_miso_dlen = 0x2C,
            .spi_w0 = 0x80,
            .bootloader_offset = 0x1000,
            .rom_flash_limit = 4 * MIB, /* [model] until SPI_SET_PARAMS says otherwise */
            .rom_has_esp32_ops = 1,
        },
};

struct sim_deferred {
    struct sim_deferred *next;
    uint64_t due;
    uint32_t baud;
    size_t n;
    uint8_t bytes[];
};

void sim_log(struct sim_board *b, const char *fmt, ...)
{
    char line[256];
    int off;
    va_list ap;

    if (!b->ops.log)
        return;
    off = snprintf(line, sizeof(line), "slot %d (%s): ", b->cfg.slot, b->chip->name);
    va_start(ap, fmt);
    vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
    va_end(ap);
    b->ops.log(b->ctx, line);
}

/* xorshift64*: deterministic per --seed and slot, good enough for fault dice. */
uint32_t sim_rand(struct sim_board *b)
{
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return (uint32_t)((b->rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static int chance(struct sim_board *b, double p)
{
    return p > 0 && (double)sim_rand(b) / 4294967296.0 < p;
}

/* ---- output ------------------------------------------------------------------------------ */

static void arm_timer(struct sim_board *b)
{
    uint64_t next = 0;

    if (b->filter_end)
        next = b->filter_end;
    if (b->q_head && (!next || b->q_head->due < next))
        next = b->q_head->due;
    if (b->fifo_len && b->mode == SIM_MODE_STUB && (!next || b->rx_hold_until < next))
        next = b->rx_hold_until; /* the stub takes up its FIFO again */
    if (b->app_reboot_at && (!next || b->app_reboot_at < next))
        next = b->app_reboot_at; /* fault boot-loop */
    if (next)
        b->ops.set_timer(b->ctx, next);
}

static void flush_due(struct sim_board *b)
{
    while (b->q_head && b->q_head->due <= b->now) {
        struct sim_deferred *d = b->q_head;

        b->q_head = d->next;
        if (!b->q_head)
            b->q_tail = NULL;
        b->ops.send(b->ctx, d->bytes, d->n, d->due, d->baud);
        free(d);
    }
}

void sim_drop_output(struct sim_board *b)
{
    while (b->q_head) {
        struct sim_deferred *d = b->q_head;

        b->q_head = d->next;
        free(d);
    }
    b->q_tail = NULL;
}

/* Bytes a receiver at another rate makes of our output: garbage with the odd 0xC0 in it, so
 * the host's resynchronisation is exercised (§13.3). */
static void make_noise(struct sim_board *b, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = sim_rand(b);

        out[i] = (r & 0x1F00) == 0 ? SLIP_END : (uint8_t)r;
    }
}

void sim_send_raw(struct sim_board *b, const uint8_t *bytes, size_t n, uint64_t at_ns,
                  uint32_t baud)
{
    struct sim_deferred *d;

    if (n == 0 || b->mode == SIM_MODE_UNPLUGGED)
        return;
    d = malloc(sizeof(*d) + n);
    if (!d) {
        sim_log(b, "out of memory: %zu bytes of output dropped", n);
        return;
    }
    if (at_ns < b->now)
        at_ns = b->now;
    if (at_ns < b->line_due)
        at_ns = b->line_due;
    b->line_due = at_ns;
    d->next = NULL;
    d->due = at_ns;
    d->baud = baud;
    d->n = n;
    if (b->garbled || (b->host_baud && b->host_baud != baud))
        make_noise(b, d->bytes, n);
    else
        memcpy(d->bytes, bytes, n);
    for (size_t i = 0; i < n; i++)
        if (chance(b, b->cfg.faults.corrupt_rate))
            d->bytes[i] ^= (uint8_t)(1u << (sim_rand(b) & 7));
    if (b->q_tail)
        b->q_tail->next = d;
    else
        b->q_head = d;
    b->q_tail = d;
    flush_due(b);
    arm_timer(b);
}

void sim_send_frame(struct sim_board *b, const uint8_t *pkt, size_t n, uint64_t at_ns)
{
    uint8_t small[2 * 96 + 2];
    uint8_t *wire = small;
    size_t len;

    if (slip_encoded_max(n) > sizeof(small)) {
        wire = malloc(slip_encoded_max(n));
        if (!wire)
            return;
    }
    len = slip_encode(pkt, n, wire, slip_encoded_max(n));
    sim_send_raw(b, wire, len, at_ns, b->baud);
    b->frames_out++;
    if (wire != small)
        free(wire);
}

uint64_t sim_cmd_start(struct sim_board *b)
{
    return b->busy_until > b->now ? b->busy_until : b->now;
}

int sim_reply_allowed(struct sim_board *b, uint8_t op, uint64_t *at_ns)
{
    const struct sim_faults *f = &b->cfg.faults;

    if (!f->slow_op || (uint8_t)f->slow_op != op)
        return 1;
    if (f->mute)
        return 0;
    *at_ns += (uint64_t)f->slow_ms * 1000000u;
    return 1;
}

/* ---- writes shared by ROM and stub ------------------------------------------------------- */

uint64_t sim_erase_cost(uint32_t sectors)
{
    return (uint64_t)sectors * SIM_T_ERASE_SECTOR_NS;
}

int sim_count_data(struct sim_board *b, uint32_t n)
{
    struct sim_write *w = &b->fw;
    int pct = b->cfg.faults.unplug_at_percent;

    w->received += n;
    if (pct <= 0 || w->expected == 0 || w->received * 100 < (uint64_t)pct * w->expected)
        return 0;
    sim_log(b, "fault: unplugged at %d%% of the write (%llu of %llu bytes)", pct,
            (unsigned long long)w->received, (unsigned long long)w->expected);
    sim_drop_output(b);
    b->mode = SIM_MODE_UNPLUGGED;
    b->ops.unplug(b->ctx);
    return 1;
}

int sim_write_data(struct sim_board *b, const uint8_t *data, uint32_t n, int jit_erase,
                   uint64_t *cost_ns)
{
    struct sim_write *w = &b->fw;
    uint32_t sectors = 0;
    int hit;

    if (w->clip) {
        if (n > w->remaining) {
            n = w->remaining; /* the last block's padding is not written (§3.3) */
        }
        w->remaining -= n;
    }
    if (n == 0)
        return 0;
    if (jit_erase) {
        uint64_t end = (uint64_t)w->ptr + n;

        /* The stub erases a whole 64 KiB block (one 0xD8 command) where the region still to
         * erase starts on a block boundary and covers it, else 4 KiB sectors (§10.2). */
        while (w->erase_next < w->erase_end && w->erase_next < end) {
            if (w->erase_next % SIM_FLASH_BLOCK == 0 &&
                w->erase_end - w->erase_next >= SIM_FLASH_BLOCK) {
                for (uint32_t i = 0; i < SIM_FLASH_BLOCK; i += SIM_FLASH_SECTOR)
                    sim_flash_erase_sector(&b->flash, w->erase_next + i);
                w->erase_next += SIM_FLASH_BLOCK;
                *cost_ns += SIM_T_ERASE_BLOCK_NS;
                continue;
            }
            sim_flash_erase_sector(&b->flash, w->erase_next);
            w->erase_next += SIM_FLASH_SECTOR;
            sectors++;
        }
    }
    hit = sim_flash_program(&b->flash, w->ptr, data, n);
    w->ptr += n;
    *cost_ns += sim_erase_cost(sectors) + (uint64_t)n * SIM_T_PROGRAM_KIB_NS / 1024;
    return hit;
}

int sim_inflate_data(struct sim_board *b, const uint8_t *in, uint32_t n, int jit_erase,
                     uint64_t *cost_ns, int *fault)
{
    struct sim_write *w = &b->fw;
    uint8_t out[4096];

    if (!w->z_ready) {
        memset(&w->z, 0, sizeof(w->z));
        if (inflateInit(&w->z) != Z_OK)
            return -1;
        w->z_ready = 1;
    }
    if (w->z_done)
        return 1;
    w->z.next_in = (Bytef *)(uintptr_t)in;
    w->z.avail_in = n;
    for (;;) {
        int r;
        uint32_t produced;

        w->z.next_out = out;
        w->z.avail_out = sizeof(out);
        r = inflate(&w->z, Z_NO_FLUSH);
        produced = (uint32_t)(sizeof(out) - w->z.avail_out);
        if (produced) {
            if (w->clip && produced > w->remaining)
                w->overflow = 1;
            if (sim_write_data(b, out, produced, jit_erase, cost_ns))
                *fault = 1;
        }
        if (r == Z_STREAM_END) {
            w->z_done = 1;
            return 1;
        }
        if (r == Z_DATA_ERROR)
            return (w->z.msg && strstr(w->z.msg, "incorrect data check")) ? -2 : -1;
        if (r != Z_OK && r != Z_BUF_ERROR)
            return -1;
        if (w->z.avail_in == 0 && w->z.avail_out != 0)
            return 0;
        if (r == Z_BUF_ERROR)
            return 0;
    }
}

void sim_write_close(struct sim_write *w)
{
    if (w->z_ready)
        inflateEnd(&w->z);
    memset(w, 0, sizeof(*w));
}

static int seg_matches(const struct sim_board *b, uint32_t start, const uint8_t *bytes, size_t len)
{
    for (int i = 0; i < b->nsegs; i++) {
        const struct sim_mem_seg *s = &b->segs[i];

        if (s->addr == start && s->size == len && s->received == len && len <= SIM_MAX_SEG_SIZE &&
            memcmp(s->bytes, bytes, len) == 0)
            return 1;
    }
    return 0;
}

/* Where each stub family puts the segment its entry point lies in (text_start), per chip: the
 * esptool-js 0.7.0 JSON files (esp-flasher-stub, the same addresses as esptool v5's
 * stub_flasher/2) and the 0.6.1 ones (legacy stub, as esptool's stub_flasher/1). */
static const struct {
    enum sim_chip chip;
    uint32_t text_start;
    enum sim_stub_family family;
    const char *name;
} stub_families[] = {
    {SIM_ESP8266, 0x4010C500, SIM_STUB_FLASHER, "esp-flasher-stub"},
    {SIM_ESP32, 0x400A8000, SIM_STUB_FLASHER, "esp-flasher-stub"},
    {SIM_ESP8266, 0x4010D000, SIM_STUB_LEGACY, "legacy esptool stub"},
    {SIM_ESP32, 0x400BE000, SIM_STUB_LEGACY, "legacy esptool stub"},
};

/* The family of the code the ROM is asked to jump to: the entry point must lie inside a fully
 * uploaded segment that starts at a known family's load address. */
static int stub_family(const struct sim_board *b, uint32_t entry, const char **name)
{
    for (int i = 0; i < b->nsegs; i++) {
        const struct sim_mem_seg *s = &b->segs[i];

        if (entry < s->addr || entry - s->addr >= s->size || s->received < s->size)
            continue;
        for (size_t k = 0; k < sizeof(stub_families) / sizeof(stub_families[0]); k++) {
            if (stub_families[k].chip == b->cfg.chip && stub_families[k].text_start == s->addr) {
                *name = stub_families[k].name;
                return stub_families[k].family;
            }
        }
    }
    return SIM_STUB_NONE;
}

/* Whether the upload is byte for byte the build espstation ships (for the log only). */
static int is_shipped_build(const struct sim_board *b, uint32_t entry)
{
    const struct sim_stub_image *img;

    if (!b->cfg.stubs || !b->cfg.stubs->chip[b->cfg.chip].present)
        return 0;
    img = &b->cfg.stubs->chip[b->cfg.chip];
    return entry == img->entry && seg_matches(b, img->text_start, img->text, img->text_len) &&
           (img->data_len == 0 || seg_matches(b, img->data_start, img->data, img->data_len));
}

void sim_run_ram(struct sim_board *b, uint32_t entry, uint64_t at)
{
    const char *name = NULL;
    enum sim_stub_family family = stub_family(b, entry, &name);

    if (family == SIM_STUB_NONE) {
        sim_log(b, "RAM code at 0x%08x is no known flasher stub: the board goes silent", entry);
        sim_rom_reset(b);
        b->mode = SIM_MODE_DEAD;
        return;
    }
    sim_log(b, "RAM code at 0x%08x: %s%s", entry, name,
            is_shipped_build(b, entry) ? " (the build in esptool-js 0.7.0)" : "");
    sim_stub_start(b, family, at + SIM_T_STUB_START_NS);
}

/* ---- reset circuit ------------------------------------------------------------------------ */

static void enter_reset(struct sim_board *b)
{
    if (b->mode == SIM_MODE_UNPLUGGED)
        return;
    sim_drop_output(b);
    sim_rom_reset(b);
    b->fifo_len = 0; /* the UART is reset with the chip */
    sim_app_stop(b);
    b->mode = SIM_MODE_RESET;
    b->garbled = 0;
    b->baud = b->chip->boot_baud;
}

/* GPIO0 as the chip samples it: pulled low by the BOOT button, or by the auto-reset circuit's
 * DTR transistor (§5.1: DTR asserted alone). */
static int gpio0_low(const struct sim_board *b)
{
    return b->btn_boot || (!b->cfg.no_autoreset && b->dtr && !b->rts);
}

/* EN has been high for the whole glitch filter: the chip runs and samples GPIO0 (§13.2). */
static void release_reset(struct sim_board *b)
{
    int low = gpio0_low(b);
    int download = (low || b->boot_download) && !b->cfg.faults.no_download;
    uint64_t at = b->now + SIM_T_BOOT_NS;

    b->filter_end = 0;
    b->line_due = 0;
    if (b->mode == SIM_MODE_UNPLUGGED)
        return;
    b->reset_count++;
    sim_log(b, "reset released: GPIO0 %s -> %s", low ? "low" : "high",
            download ? "download mode" : "flash boot");
    if (download && b->cfg.chip == SIM_ESP8266)
        sim_boot_download(b, at, b->boot_download ? "1" : "2"); /* power-on vs external reset */
    else if (download)
        sim_boot_download(b, at, "0x1 (POWERON_RESET)"); /* EN resets report power-on too */
    else
        sim_flash_boot(b, at, 0);
    b->boot_download = 0;
}

/* EN as the circuit and the button drive it: the auto-reset circuit pulls it low only when RTS
 * is asserted alone (§5.1); a board without one has EN pulled up; the EN button shorts it to
 * ground. */
static int en_level(const struct sim_board *b)
{
    int circuit = b->cfg.no_autoreset || !(b->rts && !b->dtr);

    return circuit && !b->btn_en;
}

static void apply_lines(struct sim_board *b)
{
    if (!en_level(b)) {
        if (b->en_high || b->mode != SIM_MODE_RESET)
            enter_reset(b);
        b->en_high = 0;
        b->filter_end = 0;
        return;
    }
    if (!b->en_high) {
        b->en_high = 1;
        b->filter_end = b->now + SIM_T_GLITCH_NS;
        arm_timer(b);
    }
}

/* ---- receive ------------------------------------------------------------------------------ */

static void on_frame(struct sim_board *b, size_t len)
{
    int is_sync = len >= 2 && b->rxbuf[0] == 0x00 && b->rxbuf[1] == 0x08;
    int mismatch = b->host_baud && b->host_baud != b->baud;

    b->frames_in++;
    if (b->mode == SIM_MODE_ROM) {
        if (mismatch && !is_sync)
            return; /* garbage at the board's rate (§13.4) */
        if (mismatch) {
            sim_log(b, "autobaud: %u -> %u", b->baud, b->host_baud);
            b->baud = b->host_baud;
        } else if (is_sync && !b->host_baud && b->baud == 74880) {
            b->baud = 115200; /* a TCP host has no rate: take the usual first one */
        }
        sim_rom_frame(b, len);
    }
}

/* The ROM's receiver (§15.1): a frame starts at 0xC0 and ends at the next 0xC0 (a run of 0xC0 is
 * harmless); "DB x" with x not DC/DD reads as a plain x, so "DB C0" is a literal 0xC0. Bytes are
 * written over the previous frame's: a short frame runs with stale bytes after it. */
static void rx_byte(struct sim_board *b, uint8_t c)
{
    if (!b->rx_in_frame) {
        if (c == SLIP_END) {
            b->rx_in_frame = 1;
            b->rx_len = 0;
            b->rx_escape = 0;
            b->rx_drop = 0;
        }
        return;
    }
    if (b->rx_escape) {
        b->rx_escape = 0;
        if (c == SLIP_ESC_END)
            c = SLIP_END;
        else if (c == SLIP_ESC_ESC)
            c = SLIP_ESC;
    } else if (c == SLIP_ESC) {
        b->rx_escape = 1;
        return;
    } else if (c == SLIP_END) {
        if (b->rx_len == 0)
            return;
        b->rx_in_frame = 0;
        if (!b->rx_drop)
            on_frame(b, b->rx_len);
        return;
    }
    if (b->rx_len < b->rx_cap)
        b->rxbuf[b->rx_len++] = c;
    else
        b->rx_drop = 1; /* longer than any request: the frame is lost */
}

/* ---- the stub's receive path (§10.2) ----------------------------------------------------- */

static void stub_frame_complete(struct sim_board *b, size_t len)
{
    uint64_t start = sim_cmd_start(b);

    b->frames_in++;
    if (b->host_baud && b->host_baud != b->baud)
        return; /* garbage at the stub's rate: the stub does not autobaud */
    if (b->stub == SIM_STUB_LEGACY && b->last_frame_start > b->now) {
        /* One buffer is being handled and the other already holds a frame waiting its turn. */
        b->rx_lost += len;
        sim_log(b, "stub: a %zu-byte frame arrived with both receive buffers taken; lost", len);
        return;
    }
    b->last_frame_start = start;
    sim_stub_frame(b, b->rxbuf, len);
    if (b->stub == SIM_STUB_FLASHER && b->mode == SIM_MODE_STUB) {
        /* The ISR reads nothing more until the frame has been handled and answered. */
        b->rx_hold_until = b->busy_until > b->now ? b->busy_until : b->now;
    }
}

/* Fault lose-end: whether this 0xC0, which would end a data block, is the one to lose. */
static int lose_this_end(struct sim_board *b)
{
    int data = b->rx_len > 16 && b->rxbuf[0] == 0x00 &&
               (b->rxbuf[1] == OP_FLASH_DATA || b->rxbuf[1] == OP_FLASH_DEFL_DATA);

    if (!data || b->cfg.faults.lose_end_block <= 0)
        return 0;
    if (++b->data_frames != (unsigned)b->cfg.faults.lose_end_block)
        return 0;
    sim_log(b, "fault: the end of data block %u is lost; the stub stays in the frame",
            b->data_frames);
    return 1;
}

/* The stubs' SLIP decoder (esp-flasher-stub src/slip.c, legacy flasher_stub/slip.c): 0xC0
 * outside a frame opens one and inside closes it, an empty one too, so a lone 0xC0 toggles
 * (the ROM instead treats runs of 0xC0 as harmless). An empty frame is ignored; a bad escape
 * or an overlong frame drops the frame (esp-flasher-stub; the legacy stub drops the byte: a
 * difference a host never relies on). */
static void stub_rx_byte(struct sim_board *b, uint8_t c)
{
    if (c == SLIP_END) {
        int was_in = b->srx_in_frame;

        if (was_in && lose_this_end(b))
            return;
        b->srx_in_frame = !was_in;
        b->srx_escape = 0;
        if (!was_in) {
            b->rx_len = 0;
            b->rx_drop = 0;
        } else if (b->rx_len > 0 && !b->rx_drop) {
            stub_frame_complete(b, b->rx_len);
        }
        return;
    }
    if (!b->srx_in_frame || b->rx_drop)
        return;
    if (b->srx_escape) {
        b->srx_escape = 0;
        if (c == SLIP_ESC_END) {
            c = SLIP_END;
        } else if (c == SLIP_ESC_ESC) {
            c = SLIP_ESC;
        } else {
            b->srx_in_frame = 0;
            return;
        }
    } else if (c == SLIP_ESC) {
        b->srx_escape = 1;
        return;
    }
    if (b->rx_len < b->rx_cap)
        b->rxbuf[b->rx_len++] = c;
    else
        b->srx_in_frame = 0;
}

/* Hands the FIFO's bytes to the stub while it drains; a frame completed on the way may stop it
 * again, and the rest stays in the FIFO. */
static void fifo_drain(struct sim_board *b)
{
    size_t i = 0;

    while (i < b->fifo_len && b->now >= b->rx_hold_until && b->mode == SIM_MODE_STUB)
        stub_rx_byte(b, b->fifo[i++]);
    memmove(b->fifo, b->fifo + i, b->fifo_len - i);
    b->fifo_len -= i;
    if (b->mode != SIM_MODE_STUB)
        b->fifo_len = 0;
}

/* One byte that reached the stub's UART at board time t. */
static void stub_rx(struct sim_board *b, uint8_t c, uint64_t t)
{
    if (t >= b->rx_hold_until && b->fifo_len)
        fifo_drain(b);
    if (t < b->rx_hold_until || b->fifo_len) {
        if (b->fifo_len < SIM_UART_FIFO)
            b->fifo[b->fifo_len++] = c;
        else if (b->rx_lost++ == 0 || b->rx_lost % 4096 == 0)
            sim_log(b, "stub: RX FIFO full while a frame is handled; %llu bytes lost so far",
                    (unsigned long long)b->rx_lost);
        return;
    }
    stub_rx_byte(b, c);
}

void sim_stub_rx_reset(struct sim_board *b, enum sim_stub_family family)
{
    b->stub = family;
    b->srx_in_frame = 0;
    b->srx_escape = 0;
    b->fifo_len = 0;
    b->rx_hold_until = 0;
    b->last_frame_start = 0;
}

/* ---- the interface ----------------------------------------------------------------------- */

struct sim_board *sim_board_new(const struct sim_board_cfg *cfg, const struct sim_board_ops *ops,
                                void *ctx, struct es_err *err)
{
    struct sim_board *b;

    if (!cfg || !ops || !ops->send || !ops->set_timer || !ops->unplug ||
        (cfg->chip != SIM_ESP8266 && cfg->chip != SIM_ESP32) || (cfg->flash_size && !cfg->flash)) {
        es_fail(err, ES_INVALID_ARG, "sim board: incomplete configuration or ops table");
        return NULL;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        es_fail(err, ES_NOMEM, "sim board %d: no memory for the board", cfg->slot);
        return NULL;
    }
    b->rx_cap = 8 + 65536 + 16; /* a header plus the largest size field */
    b->rxbuf = calloc(1, b->rx_cap);
    if (!b->rxbuf) {
        free(b);
        es_fail(err, ES_NOMEM, "sim board %d: no memory for the receive buffer", cfg->slot);
        return NULL;
    }
    b->cfg = *cfg;
    b->chip = &sim_chip_table[cfg->chip];
    b->ops = *ops;
    b->ctx = ctx;
    b->flash.mem = cfg->flash;
    b->flash.size = cfg->flash_size;
    b->flash.bad = cfg->faults.bad_flash;
    b->flash.bad_addr = cfg->faults.bad_flash_addr;
    b->rng = (cfg->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(cfg->slot + 1))) | 1;
    b->mode = SIM_MODE_RESET;
    b->baud = b->chip->boot_baud;
    b->host_baud = 115200; /* until the host speaks, assume the usual first rate */
    b->en_high = 1;
    sim_rom_reset(b);
    return b;
}

void sim_board_free(struct sim_board *b)
{
    if (!b)
        return;
    sim_rom_reset(b);
    sim_drop_output(b);
    free(b->rxbuf);
    free(b);
}

static void power_on(struct sim_board *b, uint64_t now_ns, int boot_held)
{
    b->now = now_ns;
    b->powered = 1;
    if (b->mode == SIM_MODE_UNPLUGGED)
        b->mode = SIM_MODE_RESET;
    b->boot_download = boot_held;
    enter_reset(b);
    b->en_high = en_level(b);
    if (b->en_high)
        release_reset(b);
}

void sim_board_start(struct sim_board *b, uint64_t now_ns)
{
    /* A bench starts ready for a flasher: boards with auto-reset come up as if BOOT were held.
     * A board without it is what the operator put on the jig: it boots its flash. */
    power_on(b, now_ns, !b->cfg.no_autoreset);
}

void sim_board_power_on(struct sim_board *b, uint64_t now_ns)
{
    power_on(b, now_ns, 0);
}

void sim_board_power_off(struct sim_board *b, uint64_t now_ns)
{
    b->now = now_ns;
    sim_drop_output(b);
    sim_rom_reset(b);
    sim_app_stop(b);
    b->fifo_len = 0;
    b->filter_end = 0;
    b->powered = 0;
    b->mode = SIM_MODE_UNPLUGGED;
}

void sim_board_set_lines(struct sim_board *b, int dtr, int rts, uint64_t now_ns)
{
    b->now = now_ns;
    flush_due(b);
    b->dtr = dtr != 0;
    b->rts = rts != 0;
    if (b->powered && b->mode != SIM_MODE_UNPLUGGED)
        apply_lines(b);
}

void sim_board_set_buttons(struct sim_board *b, int boot_pressed, int en_pressed, uint64_t now_ns)
{
    b->now = now_ns;
    flush_due(b);
    b->btn_boot = boot_pressed != 0;
    b->btn_en = en_pressed != 0;
    if (b->powered && b->mode != SIM_MODE_UNPLUGGED)
        apply_lines(b);
}

void sim_board_rx(struct sim_board *b, const uint8_t *bytes, size_t n, uint32_t host_baud,
                  uint64_t now_ns)
{
    uint64_t prev_ns = b->now;

    b->now = now_ns;
    flush_due(b);
    b->host_baud = host_baud;
    if (b->mode == SIM_MODE_APP) {
        sim_app_rx(b, bytes, n);
        return;
    }
    if (b->mode != SIM_MODE_ROM && b->mode != SIM_MODE_STUB)
        return;
    if (b->garbled) {
        /* The board hears garbage at its wrong rate and answers it with garbage. */
        uint8_t noise[64];
        size_t k = n / 4 + 1 < sizeof(noise) ? n / 4 + 1 : sizeof(noise);

        sim_send_raw(b, noise, k, b->now + SIM_T_CMD_NS, b->baud);
        return;
    }
    /* The bytes arrived one after another at the sender's rate, the last one now, and none
     * before the previous delivery. */
    uint32_t pace = host_baud ? host_baud : b->baud;
    uint64_t byte_ns = (10ull * 1000000000ull + pace / 2) / pace;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = bytes[i];
        uint64_t back = (uint64_t)(n - 1 - i) * byte_ns;

        if (chance(b, b->cfg.faults.corrupt_rate))
            c ^= (uint8_t)(1u << (sim_rand(b) & 7));
        if (b->mode == SIM_MODE_STUB)
            stub_rx(b, c, now_ns - back > prev_ns && now_ns > back ? now_ns - back : prev_ns);
        else
            rx_byte(b, c);
        if (b->mode != SIM_MODE_ROM && b->mode != SIM_MODE_STUB)
            return; /* unplugged, crashed or left the loader on this frame */
    }
}

void sim_board_on_timer(struct sim_board *b, uint64_t now_ns)
{
    b->now = now_ns;
    if (b->filter_end && now_ns >= b->filter_end && b->en_high)
        release_reset(b);
    if (b->fifo_len && b->mode == SIM_MODE_STUB && now_ns >= b->rx_hold_until)
        fifo_drain(b);
    flush_due(b);
    sim_app_on_timer(b);
    arm_timer(b);
}

uint32_t sim_board_baud(const struct sim_board *b)
{
    return b->baud;
}

static const char *const mode_names[] = {
    [SIM_MODE_RESET] = "reset", [SIM_MODE_ROM] = "rom",   [SIM_MODE_STUB] = "stub",
    [SIM_MODE_APP] = "app",     [SIM_MODE_DEAD] = "dead", [SIM_MODE_UNPLUGGED] = "off",
};

void sim_board_stats(const struct sim_board *b, struct sim_board_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->frames_in = b->frames_in;
    out->frames_out = b->frames_out;
    out->flash_bytes_written = b->flash.bytes_written;
    out->erases = b->flash.erases;
    out->in_stub = b->mode == SIM_MODE_STUB;
    out->app_running = b->mode == SIM_MODE_APP;
    out->mode = mode_names[b->mode];
}
