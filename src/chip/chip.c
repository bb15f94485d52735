/* Questions asked of the chip table: lookups by magic word, name and image chip id, decoding of
 * the identity registers (MAC, revision, package), the crystal, and flash parameter names <->
 * header codes. The JEDEC flash id lives in flash_id.c. */
#include <stdio.h>
#include <string.h>

#include "chip_table.h"
#include "es/hex.h"

const struct chip *chip_by_magic(uint32_t magic)
{
    for (size_t i = 0; i < CHIP_MODEL_COUNT; i++)
        for (size_t j = 0; j < chip_table[i].magic_count; j++)
            if (chip_table[i].magic[j] == magic)
                return &chip_table[i];
    return NULL;
}

const struct chip *chip_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < CHIP_MODEL_COUNT; i++)
        if (strcmp(chip_table[i].name, name) == 0)
            return &chip_table[i];
    return NULL;
}

const struct chip *chip_by_image_id(int image_chip_id)
{
    if (image_chip_id < 0)
        return NULL;
    for (size_t i = 0; i < CHIP_MODEL_COUNT; i++)
        if (chip_table[i].image_chip_id == image_chip_id)
            return &chip_table[i];
    return NULL;
}

const struct chip *chip_by_model(enum chip_model model)
{
    if ((unsigned)model >= CHIP_MODEL_COUNT)
        return NULL;
    return &chip_table[model];
}

const char *chip_model_name(enum chip_model model)
{
    if ((unsigned)model >= CHIP_MODEL_COUNT)
        return "unknown";
    return chip_table[model].name;
}

const char *chip_names(void)
{
    /* Kept in step with the table by test_chip.c. */
    return "esp8266, esp32, esp32s2, esp32s3, esp32c3";
}

/* ---- Identity registers ---- */

static int esp8266_mac(const uint32_t w[], uint8_t mac[6], struct es_err *err)
{
    uint32_t mac0 = w[0], mac1 = w[1], mac3 = w[3];
    uint32_t oui_sel = (mac1 >> 16) & 0xFF;

    /* §7.1: MAC3 holds the OUI when it is programmed; otherwise MAC1 selects one of two. */
    if (mac3 != 0) {
        mac[0] = (uint8_t)(mac3 >> 16);
        mac[1] = (uint8_t)(mac3 >> 8);
        mac[2] = (uint8_t)mac3;
    } else if (oui_sel == 0) {
        mac[0] = 0x18;
        mac[1] = 0xFE;
        mac[2] = 0x34;
    } else if (oui_sel == 1) {
        mac[0] = 0xAC;
        mac[1] = 0xD0;
        mac[2] = 0x74;
    } else {
        return es_fail(err, ES_BAD_MAC,
                       "ESP8266 OTP: unknown OUI selector 0x%02x in MAC1 0x%08x (expected 0 or "
                       "1 with MAC3 = 0); the OTP may be corrupt or this is not an ESP8266",
                       (unsigned)oui_sel, (unsigned)mac1);
    }
    mac[3] = (uint8_t)(mac1 >> 8);
    mac[4] = (uint8_t)mac1;
    mac[5] = (uint8_t)(mac0 >> 24);
    return 0;
}

/* §7.2 / §7.3: the high word's low 16 bits are the first two bytes, then the low word from its
 * most significant byte down. The high word's upper 16 bits (a CRC on ESP32) are ignored. */
static void efuse_mac(uint32_t lo, uint32_t hi, uint8_t mac[6])
{
    mac[0] = (uint8_t)(hi >> 8);
    mac[1] = (uint8_t)hi;
    mac[2] = (uint8_t)(lo >> 24);
    mac[3] = (uint8_t)(lo >> 16);
    mac[4] = (uint8_t)(lo >> 8);
    mac[5] = (uint8_t)lo;
}

int chip_decode_mac(const struct chip *chip, const uint32_t words[], uint8_t mac[6],
                    struct es_err *err)
{
    switch (chip->model) {
    case CHIP_ESP8266: return esp8266_mac(words, mac, err);
    case CHIP_ESP32: efuse_mac(words[1], words[2], mac); return 0;
    case CHIP_ESP32S2:
    case CHIP_ESP32S3:
    case CHIP_ESP32C3: efuse_mac(words[0], words[1], mac); return 0;
    case CHIP_MODEL_COUNT: break;
    }
    return es_fail(err, ES_INVALID_ARG, "chip_decode_mac: no MAC rule for chip model %d",
                   (int)chip->model);
}

static uint8_t crc8_maxim(const uint8_t *p, size_t n)
{
    uint8_t c = 0;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (uint8_t)((c & 1) ? (c >> 1) ^ 0x8C : c >> 1);
    }
    return c;
}

int chip_check_mac(const struct chip *chip, const uint32_t words[], const uint8_t mac[6],
                   struct es_err *err)
{
    static const uint8_t zero[6];
    char s[18];

    chip_format_mac(mac, s);
    if (memcmp(mac, zero, 6) == 0 || (mac[0] & 0x03) != 0)
        return es_fail(err, ES_BAD_MAC,
                       "MAC %s is not a factory MAC (zero, multicast or locally administered)", s);
    if (chip->model == CHIP_ESP8266 && words[3] >> 24 != 0)
        return es_fail(err, ES_BAD_MAC,
                       "ESP8266 OTP MAC3 0x%08x has bits above its 24-bit OUI set; the OTP read "
                       "is corrupt",
                       (unsigned)words[3]);
    if (chip->model == CHIP_ESP32) {
        uint8_t want = (uint8_t)(words[2] >> 16), got = crc8_maxim(mac, 6);

        if (want != got)
            return es_fail(err, ES_BAD_MAC,
                           "ESP32 eFuse MAC %s has CRC 0x%02x, but its eFuse CRC byte is 0x%02x", s,
                           got, want);
    }
    return 0;
}

static const char *esp32_package_name(int pkg, int single_core, int rev3)
{
    switch (pkg) {
    case 0: return single_core ? "ESP32-S0WDQ6" : "ESP32-D0WDQ6";
    case 1: return single_core ? "ESP32-S0WD" : "ESP32-D0WD";
    case 2: return "ESP32-D2WD";
    case 4: return "ESP32-U4WDH";
    case 5: return rev3 ? "ESP32-PICO-V3" : "ESP32-PICO-D4";
    case 6: return "ESP32-PICO-V3-02";
    case 7: return "ESP32-D0WDR2-V3";
    default: return "ESP32 (unknown package)";
    }
}

static void esp32_info(const uint32_t w[], struct chip_info *info)
{
    uint32_t w3 = w[3], w5 = w[5], apb_date = w[7];
    unsigned bits = ((w3 >> 15) & 1) | (((w5 >> 20) & 1) << 1) | (((apb_date >> 31) & 1) << 2);
    const char *name;
    const char *suffix = "";

    /* §7.2: only the bit patterns 000, 001, 011, 111 are real revisions. */
    switch (bits) {
    case 1: info->rev_major = 1; break;
    case 3: info->rev_major = 2; break;
    case 7: info->rev_major = 3; break;
    default: info->rev_major = 0; break;
    }
    info->rev_minor = (int)((w5 >> 24) & 3);
    info->package = (int)(((w3 >> 9) & 7) + (((w3 >> 2) & 1) << 3));
    info->single_core = (int)(w3 & 1);
    info->no_bt = (int)((w3 >> 1) & 1);
    name = esp32_package_name(info->package, info->single_core, info->rev_major == 3);
    if (info->rev_major == 3 && strncmp(name, "ESP32-D0WD", 10) == 0 &&
        strcmp(name, "ESP32-D0WDR2-V3") != 0)
        suffix = "-V3";
    snprintf(info->description, sizeof(info->description), "%s%s (revision v%d.%d)", name, suffix,
             info->rev_major, info->rev_minor);
}

int chip_decode_info(const struct chip *chip, const uint32_t words[], struct chip_info *info,
                     struct es_err *err)
{
    int rc;

    memset(info, 0, sizeof(*info));
    info->rev_major = -1;
    info->rev_minor = -1;
    info->package = -1;
    rc = chip_decode_mac(chip, words, info->mac, err);
    if (rc < 0)
        return rc;
    switch (chip->model) {
    case CHIP_ESP8266:
        /* §7.1: bit 4 (MAC0) or bit 80 (word 2, bit 16) of the 128-bit eFuse marks an ESP8285. */
        info->embedded_flash = (words[0] & (1u << 4)) != 0 || (words[2] & (1u << 16)) != 0;
        info->sdk_chip_id = (words[0] >> 24) | ((words[1] & 0xFFFFFFu) << 8);
        snprintf(info->description, sizeof(info->description), "%s",
                 info->embedded_flash ? "ESP8285" : "ESP8266EX");
        break;
    case CHIP_ESP32: esp32_info(words, info); break;
    case CHIP_ESP32S2:
    case CHIP_ESP32S3:
    case CHIP_ESP32C3:
    case CHIP_MODEL_COUNT:
        snprintf(info->description, sizeof(info->description), "%s", chip->display);
        break;
    }
    return 0;
}

void chip_format_mac(const uint8_t mac[6], char out[18])
{
    es_format_mac(mac, ':', out);
}

int chip_xtal_mhz(const struct chip *chip, uint32_t uart_div_reg, uint32_t baud)
{
    static const int known[] = {26, 40, 48};
    uint64_t div = uart_div_reg & 0xFFFFFu;
    /* §7.4: crystal = baud × divider / 10^6 / k; in kHz to round once, at the end. */
    uint64_t khz =
        (uint64_t)baud * div / 1000u / (chip->xtal_clk_divider ? chip->xtal_clk_divider : 1);
    int best = known[0];
    uint64_t best_dist = UINT64_MAX;

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        uint64_t k = (uint64_t)known[i] * 1000u;
        uint64_t dist = khz > k ? khz - k : k - khz;
        if (dist < best_dist) {
            best_dist = dist;
            best = known[i];
        }
    }
    return best;
}

/* ---- Flash parameter names and codes (§9.2) ---- */

static void list_sizes(const struct chip *chip, char *out, size_t cap)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < chip->flash_size_count && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", chip->flash_sizes[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static int is_size_name(const char *name)
{
    static const char *const all[] = {"256KB", "512KB", "1MB",   "2MB",   "4MB",    "8MB",   "16MB",
                                      "32MB",  "64MB",  "128MB", "256MB", "2MB-c1", "4MB-c1"};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i], name) == 0)
            return 1;
    return 0;
}

uint32_t chip_rom_baud_value(const struct chip *chip, uint32_t baud, uint32_t rtc_cal,
                             const uint32_t words[])
{
    uint64_t f_rom, f_valid;

    if (chip->rom_baud_cal_reg == 0)
        return baud;
    /* esptool ESP32ROM.get_rom_cal_crystal_freq: calibration value x 15625 x CK8M_FREQ / 40 */
    f_rom = (uint64_t)((rtc_cal >> 7) & 0x1FFFFFFu) * 15625u * (words[4] & 0xFFu) / 40u;
    if (f_rom == 0)
        return baud; /* nothing to correct with: the ROM's own estimate is unknown */
    f_valid = f_rom > 33000000u ? 40000000u : 26000000u;
    return (uint32_t)((uint64_t)baud * f_rom / f_valid);
}

int chip_flash_size_from_string(const struct chip *chip, const char *name,
                                const struct chip_flash_size **out, struct es_err *err)
{
    char list[160];

    for (size_t i = 0; i < chip->flash_size_count; i++) {
        if (strcmp(chip->flash_sizes[i].name, name) == 0) {
            *out = &chip->flash_sizes[i];
            return 0;
        }
    }
    list_sizes(chip, list, sizeof(list));
    if (is_size_name(name))
        return es_fail(err, ES_PROFILE, "flash size '%s' cannot be encoded for %s; use one of %s",
                       name, chip->name, list);
    return es_fail(err, ES_PROFILE, "flash size '%s' is not a size; use one of %s", name, list);
}

int chip_flash_size_from_bytes(const struct chip *chip, uint32_t bytes,
                               const struct chip_flash_size **out, struct es_err *err)
{
    char list[160];

    /* First match: the tables list plain sizes before the ESP8266 "-c1" layouts. */
    for (size_t i = 0; i < chip->flash_size_count; i++) {
        if (chip->flash_sizes[i].bytes == bytes) {
            *out = &chip->flash_sizes[i];
            return 0;
        }
    }
    list_sizes(chip, list, sizeof(list));
    if (chip_flash_size_name(bytes) != NULL)
        return es_fail(err, ES_FLASH_SIZE,
                       "a %s flash cannot be encoded in a %s image header (sizes: %s); set "
                       "flash.size explicitly",
                       chip_flash_size_name(bytes), chip->name, list);
    return es_fail(err, ES_FLASH_SIZE,
                   "flash size %u bytes cannot be encoded for %s (sizes: %s); set flash.size "
                   "explicitly",
                   (unsigned)bytes, chip->name, list);
}

const struct chip_flash_size *chip_flash_size_by_code(const struct chip *chip, uint8_t code)
{
    for (size_t i = 0; i < chip->flash_size_count; i++)
        if (chip->flash_sizes[i].code == code)
            return &chip->flash_sizes[i];
    return NULL;
}

const char *chip_flash_size_name(uint32_t bytes)
{
    static const char *const names[] = {"256KB", "512KB", "1MB",  "2MB",   "4MB",  "8MB",
                                        "16MB",  "32MB",  "64MB", "128MB", "256MB"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (bytes == (256u << 10) << i)
            return names[i];
    return NULL;
}

int chip_flash_freq_from_string(const struct chip *chip, const char *name, uint8_t *code,
                                struct es_err *err)
{
    char list[64];
    size_t used = 0;

    for (size_t i = 0; i < chip->flash_freq_count; i++) {
        if (strcmp(chip->flash_freqs[i].name, name) == 0) {
            *code = chip->flash_freqs[i].code;
            return 0;
        }
    }
    list[0] = '\0';
    for (size_t i = 0; i < chip->flash_freq_count && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                         chip->flash_freqs[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return es_fail(err, ES_PROFILE, "flash frequency '%s' is not one of %s for %s", name, list,
                   chip->name);
}

const char *chip_flash_freq_name(const struct chip *chip, uint8_t code)
{
    for (size_t i = 0; i < chip->flash_freq_count; i++)
        if (chip->flash_freqs[i].code == code)
            return chip->flash_freqs[i].name;
    return NULL;
}

static const char *const mode_names[] = {
    [CHIP_FLASH_QIO] = "qio",
    [CHIP_FLASH_QOUT] = "qout",
    [CHIP_FLASH_DIO] = "dio",
    [CHIP_FLASH_DOUT] = "dout",
};

int chip_flash_mode_from_string(const char *name, uint8_t *code, struct es_err *err)
{
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(mode_names[i], name) == 0) {
            *code = (uint8_t)i;
            return 0;
        }
    }
    return es_fail(err, ES_PROFILE, "flash mode '%s' is not one of qio, qout, dio, dout", name);
}

const char *chip_flash_mode_name(uint8_t code)
{
    if (code >= sizeof(mode_names) / sizeof(mode_names[0]))
        return NULL;
    return mode_names[code];
}
