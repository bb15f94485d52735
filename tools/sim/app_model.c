/* What a simulated board does when it boots: the ROM's boot text (download mode, or a flash boot
 * with the image check the ROM does before it jumps, §9.1), and then the firmware on the UART.
 * An image made by `mkimage --banner TEXT` carries a marker (app_banner.h); its "firmware" prints
 * TEXT and a MicroPython-like REPL prompt at 115200 and answers print(A*B) / print(A+B). Other
 * valid images print one line. The boot faults live here too: boot-loop (crash text, reboot,
 * about once a second), no-banner (silence) and wrong-app (another firmware's banner). */
#define _GNU_SOURCE /* memmem */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_banner.h"
#include "es/le.h"
#include "model.h"

#define APP_PROMPT "\r\n>>> "

static void send_text(struct sim_board *b, const char *text, uint64_t at, uint32_t baud)
{
    sim_send_raw(b, (const uint8_t *)text, strlen(text), at, baud);
}

static const char esp32_banner[] = "ets Jul 29 2019 12:21:46\r\n\r\n"; /* ECO3 ROM (§15.1) */

void sim_boot_download(struct sim_board *b, uint64_t at, const char *why)
{
    char text[256];

    sim_app_stop(b);
    sim_rom_reset(b);
    b->mode = SIM_MODE_ROM;
    b->baud = b->chip->boot_baud; /* the ROM autobauds again on the next SYNC */
    b->garbled = 0;
    if (b->chip == &sim_chip_table[SIM_ESP8266])
        snprintf(text, sizeof(text), "\r\n ets Jan  8 2013,rst cause:%s, boot mode:(1,7)\r\n\r\n",
                 why);
    else
        snprintf(text, sizeof(text),
                 "%srst:%s,boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
                 "waiting for download\r\n",
                 esp32_banner, why);
    send_text(b, text, at, b->chip->boot_baud);
}

struct image_info {
    int valid;
    uint32_t first_word;
    uint32_t entry;
    int mode;
    int nseg;
    uint32_t seg_addr[16], seg_len[16];
    uint8_t checksum;
    uint32_t start, end; /* the image's bytes in flash */
};

/* Parses the image at off as the ROM (or the second-stage bootloader) would before jumping to it
 * (§9.1): magic, segments inside the flash, the XOR checksum; for ESP32 the extended header's
 * chip id. The appended SHA-256 is not checked [model]. */
static void parse_image(struct sim_board *b, uint32_t off, struct image_info *im)
{
    uint32_t pos, size = b->flash.size;
    uint8_t h[24];
    uint8_t sum = 0xEF;
    uint8_t chunk[256];

    memset(im, 0, sizeof(*im));
    if (size < off + 24)
        return;
    sim_flash_read(&b->flash, off, h, sizeof(h));
    im->first_word = es_get_le32(h);
    im->mode = h[2];
    im->entry = es_get_le32(h + 4);
    im->nseg = h[1];
    im->start = off;
    if (h[0] != 0xE9 || im->nseg < 1 || im->nseg > 16)
        return;
    pos = off + 8;
    if (b->cfg.chip == SIM_ESP32) {
        if (es_get_le16(h + 12) != 0 || h[23] > 1) /* chip id 0 = ESP32 (§6.2) */
            return;
        pos += 16;
    }
    for (int i = 0; i < im->nseg; i++) {
        uint8_t sh[8];
        uint32_t len;

        if (pos + 8 > size)
            return;
        sim_flash_read(&b->flash, pos, sh, 8);
        im->seg_addr[i] = es_get_le32(sh);
        len = im->seg_len[i] = es_get_le32(sh + 4);
        pos += 8;
        if (len > size - pos)
            return;
        for (uint32_t done = 0; done < len;) {
            uint32_t take = len - done < sizeof(chunk) ? len - done : (uint32_t)sizeof(chunk);

            sim_flash_read(&b->flash, pos + done, chunk, take);
            for (uint32_t k = 0; k < take; k++)
                sum ^= chunk[k];
            done += take;
        }
        pos += len;
    }
    pos = off + ((pos - off) | 15); /* the checksum ends the 16-byte-padded image */
    if (pos >= size)
        return;
    sim_flash_read(&b->flash, pos, &im->checksum, 1);
    im->end = pos + 1;
    im->valid = im->checksum == sum;
}

/* The banner marker inside an image's bytes: "espsim-banner:" TEXT NUL. 1 if found. */
static int find_banner(const struct sim_board *b, const struct image_info *im, char *out,
                       size_t cap)
{
    static const char marker[] = SIM_APP_BANNER_MARKER;
    const uint8_t *base = b->flash.mem, *hit, *text;
    size_t n = 0;

    if (!im->valid || base == NULL || im->end <= im->start)
        return 0;
    hit = memmem(base + im->start, im->end - im->start, marker, sizeof(marker) - 1);
    if (hit == NULL)
        return 0;
    text = hit + sizeof(marker) - 1;
    while (text + n < base + im->end && text[n] != 0 && n + 1 < cap)
        n++;
    memcpy(out, text, n);
    out[n] = '\0';
    return 1;
}

void sim_app_stop(struct sim_board *b)
{
    b->app_repl = 0;
    b->app_line_len = 0;
    b->app_cr = 0;
    b->app_reboot_at = 0;
}

static const char *board_name(const struct sim_board *b)
{
    return b->cfg.chip == SIM_ESP8266 ? "ESP module with ESP8266"
                                      : "Generic ESP32 module with ESP32";
}

/* The firmware starts at `at`: what it prints, and whether it answers at a REPL. */
static void app_start(struct sim_board *b, const struct image_info *im, const char *banner,
                      uint64_t at)
{
    const struct sim_faults *f = &b->cfg.faults;
    char line[320];

    b->mode = SIM_MODE_APP;
    b->baud = SIM_APP_BAUD;
    if (f->boot_loop) {
        if (b->cfg.chip == SIM_ESP32)
            send_text(b,
                      "Guru Meditation Error: Core  0 panic'ed (LoadProhibited). Exception was "
                      "unhandled.\r\n\r\nCore  0 register dump:\r\nPC      : 0x400d3f2a  PS      : "
                      "0x00060330  A0      : 0x800d4c1e  A1      : 0x3ffb1f40  \r\n\r\nBacktrace: "
                      "0x400d3f2a:0x3ffb1f40 0x400d4c1b:0x3ffb1f60\r\n\r\nRebooting...\r\n",
                      at, SIM_APP_BAUD);
        else
            send_text(b,
                      "\r\nFatal exception 28(LoadProhibitedCause):\r\nepc1=0x40224b2e, "
                      "epc2=0x00000000, epc3=0x00000000, excvaddr=0x00000000, "
                      "depc=0x00000000\r\n",
                      at, SIM_APP_BAUD);
        b->app_reboot_at = at + SIM_T_BOOT_LOOP_NS;
        sim_log(b, "fault boot-loop: the application crashes; reboot in 1 s");
        return;
    }
    if (f->no_banner) {
        sim_log(b, "fault no-banner: the application prints nothing");
        return;
    }
    if (f->wrong_app) {
        snprintf(line, sizeof(line), "espsim wrong app v0.0 on 2024-01-01; %s" APP_PROMPT,
                 board_name(b));
        b->app_repl = 1;
    } else if (banner != NULL) {
        snprintf(line, sizeof(line), "%s" APP_PROMPT, banner);
        b->app_repl = 1;
    } else {
        snprintf(line, sizeof(line), "espsim app: image ok, entry 0x%08x\r\n", im->entry);
    }
    send_text(b, line, at, SIM_APP_BAUD);
}

static void flash_boot(struct sim_board *b, uint64_t at, const char *rom_text)
{
    static const char *const modes[] = {"QIO", "QOUT", "DIO", "DOUT"};
    int esp8266 = b->cfg.chip == SIM_ESP8266;
    uint32_t rom_baud = b->chip->boot_baud;
    struct image_info im, app;
    char line[160], banner[SIM_APP_BANNER_MAX + 1];
    int have_banner;

    sim_app_stop(b);
    sim_rom_reset(b);
    b->mode = SIM_MODE_DEAD;
    parse_image(b, b->chip->bootloader_offset, &im);
    if (rom_text != NULL)
        send_text(b, rom_text, at, rom_baud);
    if (!im.valid) {
        sim_log(b, "flash boot: no valid image at 0x%x", b->chip->bootloader_offset);
        if (esp8266) {
            send_text(b, "ets_main.c \r\n", at, rom_baud); /* §15.2, then silence */
        } else {
            snprintf(line, sizeof(line), "invalid header: 0x%08x\r\n", im.first_word);
            for (int i = 0; i < 3; i++)
                send_text(b, line, at, rom_baud);
        }
        return;
    }
    if (!esp8266) {
        send_text(b, "configsip: 0, SPIWP:0xee\r\n", at, rom_baud);
        snprintf(line, sizeof(line), "mode:%s, clock div:2\r\n", modes[im.mode & 3]);
        send_text(b, line, at, rom_baud);
    }
    for (int i = 0; i < im.nseg; i++) {
        if (esp8266)
            snprintf(line, sizeof(line), "load 0x%08x, len %u, room 16 \r\n", im.seg_addr[i],
                     im.seg_len[i]);
        else
            snprintf(line, sizeof(line), "load:0x%08x,len:%u\r\n", im.seg_addr[i], im.seg_len[i]);
        send_text(b, line, at, rom_baud);
    }
    if (esp8266)
        snprintf(line, sizeof(line), "chksum 0x%02x\r\ncsum 0x%02x\r\n", im.checksum, im.checksum);
    else
        snprintf(line, sizeof(line), "entry 0x%08x\r\n", im.entry);
    send_text(b, line, at, rom_baud);
    /* An ESP32 flash holds a second-stage bootloader at 0x1000 and the app at 0x10000 (§9.3);
     * the demo images are one image at 0x1000. The banner is looked for in the app, if there is
     * one, then in the image the ROM booted. */
    have_banner = 0;
    if (!esp8266 && b->flash.size > SIM_ESP32_APP_OFFSET) {
        parse_image(b, SIM_ESP32_APP_OFFSET, &app);
        have_banner = find_banner(b, &app, banner, sizeof(banner));
    }
    if (!have_banner)
        have_banner = find_banner(b, &im, banner, sizeof(banner));
    sim_log(b, "flash boot: application running, entry 0x%08x%s", im.entry,
            have_banner ? " (banner image)" : "");
    app_start(b, &im, have_banner ? banner : NULL, at + SIM_T_APP_START_NS);
}

void sim_flash_boot(struct sim_board *b, uint64_t at, int soft)
{
    const char *rom_text = NULL;

    if (!soft)
        rom_text = b->cfg.chip == SIM_ESP8266
                       ? "\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,7)\r\n\r\n"
                       : "ets Jul 29 2019 12:21:46\r\n\r\n"
                         "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n";
    flash_boot(b, at, rom_text);
}

void sim_app_on_timer(struct sim_board *b)
{
    if (!b->app_reboot_at || b->now < b->app_reboot_at || b->mode != SIM_MODE_APP)
        return;
    /* The panic handler (ESP32) or the exception handler (ESP8266) restarts the chip; GPIO0 is
     * sampled again but the app's crash always reboots into flash on these boards. */
    b->app_reboot_at = 0;
    b->reset_count++;
    flash_boot(b, b->now + SIM_T_BOOT_NS,
               b->cfg.chip == SIM_ESP8266
                   ? "\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n"
                   : "ets Jul 29 2019 12:21:46\r\n\r\n"
                     "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n");
}

/* ---- the REPL ------------------------------------------------------------------------------ */

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* An integer literal; 0 if there is none at *p. */
static int parse_int(const char **p, long long *v)
{
    char *end;

    errno = 0;
    *v = strtoll(*p, &end, 10);
    if (end == *p || errno != 0 || **p == '+' || **p == ' ')
        return 0;
    *p = end;
    return 1;
}

/* The value of EXPR = INT [op INT] (op one of + - *), as MicroPython would print it. 0 if the
 * expression is beyond this REPL, or overflows a 64-bit integer. */
static int eval_expr(const char *s, const char *end, long long *out)
{
    char buf[128];
    const char *p;
    long long a, c;
    char op;

    if ((size_t)(end - s) >= sizeof(buf))
        return 0;
    memcpy(buf, s, (size_t)(end - s));
    buf[end - s] = '\0';
    p = skip_spaces(buf);
    if (!parse_int(&p, &a))
        return 0;
    p = skip_spaces(p);
    if (*p == '\0') {
        *out = a;
        return 1;
    }
    op = *p++;
    p = skip_spaces(p);
    if (!parse_int(&p, &c) || *skip_spaces(p) != '\0')
        return 0;
    if (op == '*')
        return !__builtin_mul_overflow(a, c, out);
    if (op == '+')
        return !__builtin_add_overflow(a, c, out);
    if (op == '-')
        return !__builtin_sub_overflow(a, c, out);
    return 0;
}

/* The output for one REPL line, without the prompt. */
static void repl_answer(const char *line, char *out, size_t cap)
{
    const char *s = skip_spaces(line), *end = s + strlen(s);
    long long v;

    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    out[0] = '\0';
    if (s == end)
        return;
    if (end - s > 7 && strncmp(s, "print(", 6) == 0 && end[-1] == ')') {
        s += 6;
        end--;
    }
    if (eval_expr(s, end, &v))
        snprintf(out, cap, "\r\n%lld", v);
    else
        snprintf(out, cap,
                 "\r\nTraceback (most recent call last):\r\n  File \"<stdin>\", line "
                 "1\r\nSyntaxError: invalid syntax");
}

void sim_app_rx(struct sim_board *b, const uint8_t *bytes, size_t n)
{
    char out[512], answer[160];
    size_t len = 0;

    if (!b->app_repl)
        return;
    if (b->host_baud && b->host_baud != SIM_APP_BAUD)
        return; /* garbage at the app's rate: nothing a REPL would accept */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = bytes[i];
        const char *add = NULL;
        char one[2] = {(char)c, '\0'};

        if (c == '\n' && b->app_cr) { /* "\r\n" ends one line, not two */
            b->app_cr = 0;
            continue;
        }
        b->app_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            b->app_line[b->app_line_len] = '\0';
            repl_answer(b->app_line, answer, sizeof(answer));
            b->app_line_len = 0;
            snprintf(out + len, sizeof(out) - len, "%s" APP_PROMPT, answer);
            len += strlen(out + len);
        } else if (c == 0x03) { /* Ctrl-C drops the line */
            b->app_line_len = 0;
            add = APP_PROMPT;
        } else if ((c == 0x08 || c == 0x7F) && b->app_line_len > 0) {
            b->app_line_len--;
            add = "\b \b";
        } else if (c >= 0x20 && c < 0x7F && b->app_line_len + 1 < sizeof(b->app_line)) {
            b->app_line[b->app_line_len++] = (char)c;
            add = one; /* the REPL echoes what it takes */
        }
        if (add != NULL && len + strlen(add) < sizeof(out)) {
            memcpy(out + len, add, strlen(add));
            len += strlen(add);
        }
        if (len + sizeof(answer) + 8 >= sizeof(out)) {
            sim_send_raw(b, (const uint8_t *)out, len, b->now + SIM_T_CMD_NS, SIM_APP_BAUD);
            len = 0;
        }
    }
    if (len)
        sim_send_raw(b, (const uint8_t *)out, len, b->now + SIM_T_CMD_NS, SIM_APP_BAUD);
}

void sim_soft_reboot(struct sim_board *b, uint64_t at)
{
    sim_drop_output(b);
    sim_boot_download(b, at + SIM_T_BOOT_NS,
                      b->cfg.chip == SIM_ESP8266 ? "2" : "0xc (SW_CPU_RESET)");
}
