/* The plan `espstation check` prints: every setting with its source (the profile or the
 * default), then what goes where in flash with sizes, hashes and what the header says. Reads a
 * loaded profile only; never opens a port. */
#include <stdio.h>
#include <string.h>

#include "es/chip.h"
#include "es/image.h"
#include "es/profile.h"
#include "profile_internal.h"

static const char *src(struct profile_pos pos)
{
    return pos.line > 0 ? "" : " (default)";
}

static void print_header(const struct profile *p, const struct profile_image *pi, FILE *f)
{
    const struct chip *chip = p->chip;
    const struct image *img = pi->image;
    struct image_header hdr;
    struct es_err why;
    const char *mode, *freq;
    const struct chip_flash_size *size;

    if (chip == NULL) {
        fprintf(f, "      header  checked on each board (chip: auto)\n");
        return;
    }
    if (img->size == 0 || img->data[0] != IMAGE_MAGIC) {
        fprintf(f, "      header  none (byte 0 is 0x%02x): written as is\n",
                img->size > 0 ? img->data[0] : 0);
        return;
    }
    if (image_parse_header(img->data, img->size, chip->family == CHIP_FAMILY_ESP32, &hdr, &why) <
        0) {
        fprintf(f, "      header  starts with 0xe9 but does not parse: written as is\n");
        return;
    }
    mode = chip_flash_mode_name(hdr.mode);
    freq = chip_flash_freq_name(chip, (uint8_t)(hdr.size_freq & 0x0F));
    size = chip_flash_size_by_code(chip, (uint8_t)(hdr.size_freq & 0xF0));
    fprintf(f, "      header  %s firmware, %u segments, entry 0x%08x, mode %s, freq %s, size %s",
            chip->display, hdr.segments, (unsigned)hdr.entry, mode != NULL ? mode : "?",
            freq != NULL ? freq : "?", size != NULL ? size->name : "?");
    if (hdr.has_ext)
        fprintf(f, ", chip id %u%s", hdr.chip_id, hdr.hash_appended ? ", digest appended" : "");
    fprintf(f, "\n");
    if (pi->offset == chip->bootloader_offset &&
        (strcmp(p->flash.mode, "keep") != 0 || strcmp(p->flash.freq, "keep") != 0 ||
         p->flash.size_kind != PROFILE_SIZE_KEEP))
        fprintf(f, "      patch   mode %s, freq %s, size %s%s\n", p->flash.mode, p->flash.freq,
                p->flash.size,
                p->flash.size_kind == PROFILE_SIZE_DETECT ? " (from each board's flash id)" : "");
}

int profile_print_plan(const struct profile *p, FILE *f)
{
    size_t total = 0;

    fprintf(f, "profile     %s%s, from %s\n", p->name,
            p->name_pos.line > 0 ? "" : " (default: the file name)", p->path);
    fprintf(f, "sha256      %s\n", p->sha256_hex);
    fprintf(f, "chip        %s%s\n", p->chip != NULL ? p->chip->name : "auto (detected per board)",
            src(p->chip_pos));
    fprintf(f, "baud        %u%s\n", (unsigned)p->baud, src(p->baud_pos));
    if (p->flash_baud != 0)
        fprintf(f, "flash_baud  %u\n", (unsigned)p->flash_baud);
    else
        fprintf(f, "flash_baud  none: stays at baud (default)\n");
    fprintf(f, "loader      %s%s\n", profile_loader_name(p->loader), src(p->loader_pos));
    fprintf(f, "flash       mode %s%s, freq %s%s, size %s%s\n", p->flash.mode,
            src(p->flash.mode_pos), p->flash.freq, src(p->flash.freq_pos), p->flash.size,
            src(p->flash.size_pos));
    fprintf(f, "erase       %s%s\n", profile_erase_name(p->erase), src(p->erase_pos));
    fprintf(f, "verify      %s%s\n", profile_verify_name(p->verify), src(p->verify_pos));
    fprintf(f, "reset       before %s%s, after %s%s\n", profile_reset_before_name(p->reset_before),
            src(p->reset_before_pos), profile_reset_after_name(p->reset_after),
            src(p->reset_after_pos));
    fprintf(f, "retries     %d%s\n", p->retries, src(p->retries_pos));
    profile_print_boot_check(p, f);
    if (p->n_ports == 0)
        fprintf(f, "ports       the command line, else every USB serial port (default)\n");
    for (size_t i = 0; i < p->n_ports; i++) {
        const struct profile_port *port = &p->ports[i];
        fprintf(f, "%s", i == 0 ? "ports       " : "            ");
        if (port->path != NULL) {
            fprintf(f, "%s\n", port->path);
            continue;
        }
        const char *sep = "";
        if (port->has_usb) {
            fprintf(f, "usb %04x:%04x", port->usb_vid, port->usb_pid);
            sep = ", ";
        }
        if (port->serial != NULL) {
            fprintf(f, "%sserial %s", sep, port->serial);
            sep = ", ";
        }
        if (port->location != NULL)
            fprintf(f, "%slocation %s", sep, port->location);
        fprintf(f, "\n");
    }
    fprintf(f, "reports     %s%s\n", p->reports, src(p->reports_pos));
    for (size_t i = 0; i < p->n_images; i++)
        if (p->images[i].image != NULL)
            total += p->images[i].image->size;
    fprintf(f, "images      %zu, %zu bytes in all\n", p->n_images, total);
    for (size_t i = 0; i < p->n_images; i++) {
        const struct profile_image *pi = &p->images[i];
        char hex[65];

        if (pi->image == NULL) {
            fprintf(f, "  [%zu] 0x%06x  %s (not loaded)\n", i, (unsigned)pi->offset, pi->file);
            continue;
        }
        fprintf(f, "  [%zu] 0x%06x..0x%06x  %zu bytes  %s\n", i, (unsigned)pi->offset,
                (unsigned)(pi->offset + pi->image->size - 1), pi->image->size, pi->path);
        es_hex(pi->image->sha256, sizeof(pi->image->sha256), hex);
        fprintf(f, "      sha256  %s\n", hex);
        es_hex(pi->image->md5, sizeof(pi->image->md5), hex);
        fprintf(f, "      md5     %s\n", hex);
        print_header(p, pi, f);
    }
    fflush(f);
    return ferror(f) ? -1 : 0;
}
