/* The chip table and its decoders, against the protocol document's vectors: V-2 (magic word),
 * V-13 (MAC), §7.2 (ESP32 revision and package), §7.4 (crystal), §7.5/§7.6 (RDID recipe and
 * flash id), §9.2 (flash parameter codes). */
#include <setjmp.h> /* cmocka.h needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "es/chip.h"
#include "es/le.h"

/* ---- Detection (§6.1, V-2) ---- */

static void test_magic_from_v2_replies(void **state)
{
    /* The value field (bytes 4-7) of the two V-2 READ_REG replies, SLIP framing removed. */
    static const uint8_t esp8266_reply[] = {0x01, 0x0A, 0x02, 0x00, 0x01,
                                            0xC1, 0xF0, 0xFF, 0x00, 0x00};
    static const uint8_t esp32_reply[] = {0x01, 0x0A, 0x04, 0x00, 0x83, 0x1D,
                                          0xF0, 0x00, 0x00, 0x00, 0x00, 0x00};
    const struct chip *c;
    (void)state;

    c = chip_by_magic(es_get_le32(esp8266_reply + 4));
    assert_non_null(c);
    assert_int_equal(c->model, CHIP_ESP8266);
    assert_string_equal(c->name, "esp8266");
    c = chip_by_magic(es_get_le32(esp32_reply + 4));
    assert_non_null(c);
    assert_int_equal(c->model, CHIP_ESP32);
    assert_string_equal(c->name, "esp32");
}

static void test_magic_other_chips_and_unknown(void **state)
{
    static const uint32_t c3[] = {0x6921506F, 0x1B31506F, 0x4881606F, 0x4361606F};
    (void)state;

    for (size_t i = 0; i < 4; i++)
        assert_int_equal(chip_by_magic(c3[i])->model, CHIP_ESP32C3);
    assert_int_equal(chip_by_magic(0x000007C6)->model, CHIP_ESP32S2);
    assert_int_equal(chip_by_magic(0x00000009)->model, CHIP_ESP32S3);
    assert_null(chip_by_magic(0));
    assert_null(chip_by_magic(0xFFFFFFFF));
    assert_null(chip_by_magic(0x2CE0806F)); /* ESP32-C6: not in the table yet */
}

static void test_lookup_by_name_id_model(void **state)
{
    (void)state;
    assert_int_equal(chip_by_name("esp8266")->model, CHIP_ESP8266);
    assert_int_equal(chip_by_name("esp32")->model, CHIP_ESP32);
    assert_int_equal(chip_by_name("esp32c3")->model, CHIP_ESP32C3);
    assert_null(chip_by_name("ESP32"));
    assert_null(chip_by_name("auto"));
    assert_null(chip_by_name(""));
    assert_null(chip_by_name(NULL));
    assert_int_equal(chip_by_image_id(0)->model, CHIP_ESP32);
    assert_int_equal(chip_by_image_id(2)->model, CHIP_ESP32S2);
    assert_int_equal(chip_by_image_id(5)->model, CHIP_ESP32C3);
    assert_int_equal(chip_by_image_id(9)->model, CHIP_ESP32S3);
    assert_null(chip_by_image_id(-1)); /* ESP8266 has no id */
    assert_null(chip_by_image_id(13));
    assert_null(chip_by_model(CHIP_MODEL_COUNT));
    assert_string_equal(chip_model_name(CHIP_ESP32S2), "esp32s2");
    assert_string_equal(chip_model_name(CHIP_MODEL_COUNT), "unknown");
}

static void test_names_list_matches_table(void **state)
{
    char expect[128] = "";
    (void)state;

    for (int m = 0; m < CHIP_MODEL_COUNT; m++) {
        if (m)
            strcat(expect, ", ");
        strcat(expect, chip_by_model((enum chip_model)m)->name);
        assert_int_equal(chip_by_model((enum chip_model)m)->model, m);
    }
    assert_string_equal(chip_names(), expect);
}

static void test_table_rows(void **state)
{
    const struct chip *e8 = chip_by_name("esp8266"), *e32 = chip_by_name("esp32");
    const struct chip *c3 = chip_by_name("esp32c3");
    (void)state;

    assert_int_equal(e8->family, CHIP_FAMILY_ESP8266);
    assert_int_equal(e32->family, CHIP_FAMILY_ESP32);
    assert_int_equal(e8->rom_status_len, 2);
    assert_int_equal(e32->rom_status_len, 4);
    assert_int_equal(e8->bootloader_offset, 0x0);
    assert_int_equal(e32->bootloader_offset, 0x1000);
    assert_int_equal(chip_by_name("esp32s2")->bootloader_offset, 0x1000);
    assert_int_equal(c3->bootloader_offset, 0x0);
    assert_int_equal(e8->image_chip_id, -1);
    assert_int_equal(e32->image_chip_id, 0);
    assert_int_equal(e8->rom_block_size, 0x400);
    assert_int_equal(e32->stub_block_size, 0x4000);
    assert_int_equal(e32->mem_block_size, 0x1800);
    assert_int_equal(e8->rom_max_flash, 4u << 20);
    assert_int_equal(e32->rom_max_flash, 16u << 20);
    /* §3.1: the ESP8266 ROM lacks all of these; ESP32 has all but the S2+ ones. */
    assert_int_equal(e8->rom_caps, 0);
    assert_true(chip_has(e32, CHIP_ROM_NEEDS_SPI_ATTACH));
    assert_true(chip_has(e32, CHIP_ROM_MD5));
    assert_true(chip_has(e32, CHIP_ROM_DEFLATE));
    assert_true(chip_has(e32, CHIP_ROM_CHANGE_BAUD));
    assert_false(chip_has(e32, CHIP_ROM_SECURITY_INFO));
    assert_false(chip_has(e32, CHIP_ROM_BEGIN_5_WORDS));
    assert_true(chip_has(c3, CHIP_ROM_SECURITY_INFO));
    assert_true(chip_has(c3, CHIP_ROM_BEGIN_5_WORDS));
    assert_int_equal(e8->info_regs[0], 0x3FF00050);
    assert_int_equal(e8->info_regs[3], 0x3FF0005C);
    assert_int_equal(e32->info_regs[1], 0x3FF5A004);
    assert_int_equal(e32->info_regs[2], 0x3FF5A008);
    assert_int_equal(e32->info_regs[7], 0x3FF6607C);
    assert_int_equal(c3->info_regs[0], 0x60008844);
    assert_int_equal(e8->uart_clkdiv_reg, 0x60000014);
    assert_int_equal(e32->uart_clkdiv_reg, 0x3FF40014);
}

/* ---- MAC and identity (§7.1, §7.2, V-13) ---- */

static void test_v13_esp8266_mac(void **state)
{
    const uint32_t words[] = {0xC3004F2A, 0x0000A1B2, 0, 0};
    struct chip_info info;
    struct es_err err;
    uint8_t mac[6];
    char s[18];
    (void)state;

    assert_int_equal(chip_decode_mac(chip_by_name("esp8266"), words, mac, &err), 0);
    chip_format_mac(mac, s);
    assert_string_equal(s, "18:fe:34:a1:b2:c3");
    assert_int_equal(chip_decode_info(chip_by_name("esp8266"), words, &info, &err), 0);
    assert_memory_equal(info.mac, mac, 6);
    assert_int_equal(info.sdk_chip_id, 0x00A1B2C3);
    assert_string_equal(info.description, "ESP8266EX");
    assert_int_equal(info.rev_major, -1);
}

static void test_esp8266_oui_rules(void **state)
{
    const struct chip *c = chip_by_name("esp8266");
    uint32_t words[4] = {0x11000000, 0x00012233, 0, 0};
    struct chip_info info;
    struct es_err err;
    uint8_t mac[6];
    char s[18];
    (void)state;

    assert_int_equal(chip_decode_mac(c, words, mac, &err), 0); /* selector 1 */
    chip_format_mac(mac, s);
    assert_string_equal(s, "ac:d0:74:22:33:11");
    words[3] = 0x005CCF7F; /* MAC3 set: its bytes 2,1,0 are the OUI, selector ignored */
    words[1] = 0x00772233;
    assert_int_equal(chip_decode_mac(c, words, mac, &err), 0);
    chip_format_mac(mac, s);
    assert_string_equal(s, "5c:cf:7f:22:33:11");
    words[3] = 0;
    assert_int_equal(chip_decode_mac(c, words, mac, &err), -(int)ES_BAD_MAC);
    assert_int_equal(err.code, ES_BAD_MAC);
    assert_string_equal(err.msg, "ESP8266 OTP: unknown OUI selector 0x77 in MAC1 0x00772233 "
                                 "(expected 0 or 1 with MAC3 = 0); the OTP may be corrupt or "
                                 "this is not an ESP8266");
    assert_int_equal(chip_decode_info(c, words, &info, &err), -(int)ES_BAD_MAC);
}

static void test_esp8285_detection(void **state)
{
    const struct chip *c = chip_by_name("esp8266");
    uint32_t words[4] = {0xC3004F2A | (1u << 4), 0x0000A1B2, 0, 0};
    struct chip_info info;
    struct es_err err;
    (void)state;

    assert_int_equal(chip_decode_info(c, words, &info, &err), 0);
    assert_true(info.embedded_flash);
    assert_string_equal(info.description, "ESP8285");
    words[0] = 0xC3004F2A;
    words[2] = 1u << 16; /* bit 80 of the 128-bit eFuse */
    assert_int_equal(chip_decode_info(c, words, &info, &err), 0);
    assert_string_equal(info.description, "ESP8285");
}

static void test_v13_esp32_mac(void **state)
{
    const uint32_t words[8] = {0, 0xC4123456, 0x00A7240A, 0, 0, 0, 0, 0};
    struct es_err err;
    uint8_t mac[6];
    char s[18];
    (void)state;

    assert_int_equal(chip_decode_mac(chip_by_name("esp32"), words, mac, &err), 0);
    chip_format_mac(mac, s);
    assert_string_equal(s, "24:0a:c4:12:34:56");
}

/* A MAC read over a noisy line must prove itself before it names a report (issue 11). */
static void test_check_mac(void **state)
{
    const struct chip *esp32 = chip_by_name("esp32"), *esp8266 = chip_by_name("esp8266");
    /* 24:0a:c4:12:34:56 with its CRC-8 (Dallas/Maxim over the six bytes) 0xF5 in word 2. */
    uint32_t w32[8] = {0, 0xC4123456, 0x00F5240A, 0, 0, 0, 0, 0};
    uint32_t w8266[4] = {0xC3004F2A, 0x0000A1B2, 0, 0};
    uint8_t mac[6];
    struct es_err err;

    (void)state;
    assert_int_equal(chip_decode_mac(esp32, w32, mac, &err), 0);
    assert_int_equal(chip_check_mac(esp32, w32, mac, &err), 0);
    w32[1] ^= 0x00000100; /* one bit flipped on the line: 24:0a:c4:12:35:56 */
    assert_int_equal(chip_decode_mac(esp32, w32, mac, &err), 0);
    assert_int_equal(chip_check_mac(esp32, w32, mac, &err), -(int)ES_BAD_MAC);
    assert_non_null(strstr(err.msg, "eFuse CRC byte is 0xf5"));
    /* ESP8266: the classic OUI selector passes; a MAC3 with bits above the OUI does not. */
    assert_int_equal(chip_decode_mac(esp8266, w8266, mac, &err), 0);
    assert_int_equal(chip_check_mac(esp8266, w8266, mac, &err), 0);
    w8266[3] = 0x0100A402;
    assert_int_equal(chip_decode_mac(esp8266, w8266, mac, &err), 0);
    assert_int_equal(chip_check_mac(esp8266, w8266, mac, &err), -(int)ES_BAD_MAC);
    /* Multicast or locally administered OUIs are no factory MAC. */
    w8266[3] = 0x00030000;
    assert_int_equal(chip_decode_mac(esp8266, w8266, mac, &err), 0);
    assert_int_equal(chip_check_mac(esp8266, w8266, mac, &err), -(int)ES_BAD_MAC);
}

static void test_later_chip_mac(void **state)
{
    const uint32_t words[2] = {0x12345678, 0xFFFF3485};
    struct es_err err;
    uint8_t mac[6];
    char s[18];
    (void)state;

    assert_int_equal(chip_decode_mac(chip_by_name("esp32c3"), words, mac, &err), 0);
    chip_format_mac(mac, s);
    assert_string_equal(s, "34:85:12:34:56:78");
}

static void test_esp32_revision_and_package(void **state)
{
    const struct chip *c = chip_by_name("esp32");
    uint32_t w[8] = {0};
    struct chip_info info;
    struct es_err err;
    (void)state;

    /* All revision bits clear, package 0: an ESP32-D0WDQ6 rev 0. */
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_string_equal(info.description, "ESP32-D0WDQ6 (revision v0.0)");
    /* b0 only: rev 1. Package 1 (bits 9-11), dual core. */
    w[3] = (1u << 15) | (1u << 9);
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_int_equal(info.rev_major, 1);
    assert_int_equal(info.package, 1);
    assert_string_equal(info.description, "ESP32-D0WD (revision v1.0)");
    /* b0 and b1: rev 2; minor from word 5 bits 24-25. */
    w[5] = (1u << 20) | (1u << 24);
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_int_equal(info.rev_major, 2);
    assert_int_equal(info.rev_minor, 1);
    /* b0, b1, b2 (APB_CTL_DATE bit 31): rev 3, and D0WD becomes D0WD-V3. */
    w[5] = 1u << 20;
    w[7] = 1u << 31;
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_int_equal(info.rev_major, 3);
    assert_string_equal(info.description, "ESP32-D0WD-V3 (revision v3.0)");
    /* b2 alone is not a real pattern: rev 0. */
    w[3] = 0;
    w[5] = 0;
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_int_equal(info.rev_major, 0);
    /* Package 5 is PICO-D4, and PICO-V3 on rev 3; bit 2 of word 3 adds 8. */
    w[3] = 5u << 9;
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_string_equal(info.description, "ESP32-PICO-D4 (revision v0.0)");
    w[3] = (5u << 9) | (1u << 15) | 1u | 2u;
    w[5] = 1u << 20;
    w[7] = 1u << 31;
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_string_equal(info.description, "ESP32-PICO-V3 (revision v3.0)");
    assert_true(info.single_core);
    assert_true(info.no_bt);
    w[3] = 1u << 2;
    assert_int_equal(chip_decode_info(c, w, &info, &err), 0);
    assert_int_equal(info.package, 8);
    assert_string_equal(info.description, "ESP32 (unknown package) (revision v0.0)");
}

/* ---- Crystal (§7.4) ---- */

static void test_xtal(void **state)
{
    (void)state;
    /* The ESP8266 trace: divider 0x1C4 at 115200 baud, UART clock twice the crystal. */
    assert_int_equal(chip_xtal_mhz(chip_by_name("esp8266"), 0x1C4, 115200), 26);
    /* Bits above 19 are not the divider. */
    assert_int_equal(chip_xtal_mhz(chip_by_name("esp8266"), 0xABC001C4, 115200), 26);
    /* ESP32 with a 40 MHz crystal: 40e6 / 115200 = 347. */
    assert_int_equal(chip_xtal_mhz(chip_by_name("esp32"), 347, 115200), 40);
    assert_int_equal(chip_xtal_mhz(chip_by_name("esp32"), 226, 115200), 26);
    assert_int_equal(chip_xtal_mhz(chip_by_name("esp32s3"), 417, 115200), 48);
}

/* ESP32 ROM CHANGE_BAUDRATE correction (§3.10), esptool's formula. */
static void test_rom_baud_value(void **state)
{
    uint32_t words[8] = {0};

    (void)state;
    words[4] = 0x50; /* CK8M_FREQ 80 */
    /* Calibration 0x500 << 7: 1280 x 15625 x 80 / 40 = exactly 40 MHz: no change. */
    assert_int_equal(chip_rom_baud_value(chip_by_name("esp32"), 921600, 0x500u << 7, words),
                     921600);
    /* The ROM believes 41 MHz (1312 x 15625 x 80 / 40): ask for 2.5 % more. */
    assert_int_equal(chip_rom_baud_value(chip_by_name("esp32"), 921600, 1312u << 7, words), 944640);
    /* A 26 MHz board the ROM thinks is at 25 MHz (800 x 15625 x 80 / 40). */
    assert_int_equal(chip_rom_baud_value(chip_by_name("esp32"), 460800, 800u << 7, words), 443076);
    /* No estimate (a zero read): unchanged; other chips: never corrected. */
    assert_int_equal(chip_rom_baud_value(chip_by_name("esp32"), 921600, 0, words), 921600);
    assert_int_equal(chip_rom_baud_value(chip_by_name("esp32s3"), 921600, 1312u << 7, words),
                     921600);
}

/* ---- RDID recipe (§7.5) and flash id (§7.6) ---- */

struct step_expect {
    enum chip_reg_op op;
    uint32_t addr, value;
};

static void check_steps(const struct chip *c, const struct step_expect *want, size_t n)
{
    struct chip_reg_step steps[CHIP_RDID_MAX_STEPS];
    size_t got = chip_rdid_steps(c, steps);

    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(steps[i].op, want[i].op);
        assert_int_equal(steps[i].addr, want[i].addr);
        assert_int_equal(steps[i].value, want[i].value);
    }
}

static void test_rdid_steps_esp8266(void **state)
{
    static const struct step_expect want[] = {
        {CHIP_REG_SAVE, 0x6000021C, 0},           {CHIP_REG_SAVE, 0x60000224, 1},
        {CHIP_REG_WRITE, 0x60000220, 0x00001700}, {CHIP_REG_WRITE, 0x6000021C, 0x90000000},
        {CHIP_REG_WRITE, 0x60000224, 0x7000009F}, {CHIP_REG_WRITE, 0x60000240, 0},
        {CHIP_REG_WRITE, 0x60000200, 0x00040000}, {CHIP_REG_POLL, 0x60000200, 0x00040000},
        {CHIP_REG_RESULT, 0x60000240, 0},         {CHIP_REG_RESTORE, 0x6000021C, 0},
        {CHIP_REG_RESTORE, 0x60000224, 1},
    };
    (void)state;
    check_steps(chip_by_name("esp8266"), want, sizeof(want) / sizeof(want[0]));
}

static void test_rdid_steps_esp32(void **state)
{
    static const struct step_expect want[] = {
        {CHIP_REG_SAVE, 0x3FF4201C, 0},           {CHIP_REG_SAVE, 0x3FF42024, 1},
        {CHIP_REG_WRITE, 0x3FF4202C, 0x17},       {CHIP_REG_WRITE, 0x3FF4201C, 0x90000000},
        {CHIP_REG_WRITE, 0x3FF42024, 0x7000009F}, {CHIP_REG_WRITE, 0x3FF42080, 0},
        {CHIP_REG_WRITE, 0x3FF42000, 0x00040000}, {CHIP_REG_POLL, 0x3FF42000, 0x00040000},
        {CHIP_REG_RESULT, 0x3FF42080, 0},         {CHIP_REG_RESTORE, 0x3FF4201C, 0},
        {CHIP_REG_RESTORE, 0x3FF42024, 1},
    };
    (void)state;
    check_steps(chip_by_name("esp32"), want, sizeof(want) / sizeof(want[0]));
}

static void test_rdid_steps_c3_uses_later_offsets(void **state)
{
    struct chip_reg_step steps[CHIP_RDID_MAX_STEPS];
    (void)state;

    assert_int_equal(chip_rdid_steps(chip_by_name("esp32c3"), steps), 11);
    assert_int_equal(steps[0].addr, 0x60002018); /* USR */
    assert_int_equal(steps[2].addr, 0x60002028); /* MISO_DLEN */
    assert_int_equal(steps[8].addr, 0x60002058); /* W0 */
}

static void test_flash_id_winbond(void **state)
{
    struct flash_id id;
    struct es_err err;
    (void)state;

    assert_int_equal(flash_id_decode(0x001640EF, &id, &err), 0);
    assert_int_equal(id.raw, 0x1640EF);
    assert_int_equal(id.manufacturer, 0xEF);
    assert_int_equal(id.device, 0x4016);
    assert_int_equal(id.size_bytes, 4u << 20);
    /* Only the low 24 bits are the id. */
    assert_int_equal(flash_id_decode(0xAB1640EF, &id, &err), 0);
    assert_int_equal(id.raw, 0x1640EF);
}

static void test_flash_id_capacity_table(void **state)
{
    static const struct {
        uint8_t cap;
        uint32_t size;
    } table[] = {
        {0x12, 256u << 10}, {0x32, 256u << 10}, {0x13, 512u << 10}, {0x33, 512u << 10},
        {0x14, 1u << 20},   {0x34, 1u << 20},   {0x15, 2u << 20},   {0x35, 2u << 20},
        {0x16, 4u << 20},   {0x36, 4u << 20},   {0x17, 8u << 20},   {0x37, 8u << 20},
        {0x18, 16u << 20},  {0x38, 16u << 20},  {0x19, 32u << 20},  {0x39, 32u << 20},
        {0x1A, 64u << 20},  {0x3A, 64u << 20},  {0x20, 64u << 20},  {0x1B, 128u << 20},
        {0x21, 128u << 20}, {0x1C, 256u << 20}, {0x22, 256u << 20}, {0x11, 0},
        {0x3B, 0},          {0x23, 0},          {0x40, 0},          {0x00, 0},
    };
    struct flash_id id;
    struct es_err err;
    (void)state;

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal(flash_id_decode((uint32_t)table[i].cap << 16 | 0x40C8, &id, &err), 0);
        assert_int_equal(id.size_bytes, table[i].size);
    }
}

static void test_flash_id_adesto(void **state)
{
    struct flash_id id;
    struct es_err err;
    (void)state;

    /* Manufacturer 0x1F: size from the memory type's low 5 bits, not the capacity byte. */
    assert_int_equal(flash_id_decode(0x01001F | (0x84u << 8), &id, &err), 0);
    assert_int_equal(id.size_bytes, 512u << 10);
    assert_int_equal(flash_id_decode(0x01001F | (0x89u << 8), &id, &err), 0);
    assert_int_equal(id.size_bytes, 16u << 20);
    assert_int_equal(id.device, 0x8901);
    assert_int_equal(flash_id_decode(0x16001F | (0x83u << 8), &id, &err), 0);
    assert_int_equal(id.size_bytes, 0); /* 3 is not in Adesto's rule; 0x16 is not consulted */
}

static void test_flash_id_no_flash(void **state)
{
    static const uint32_t none[] = {0xFFFFFF, 0x000000, 0xFFFF3F, 0xFFFFFFFF};
    struct flash_id id;
    struct es_err err;
    (void)state;

    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_int_equal(flash_id_decode(none[i], &id, &err), -(int)ES_NO_FLASH);
        assert_int_equal(err.code, ES_NO_FLASH);
    }
    flash_id_decode(0xFFFF3F, &id, &err);
    assert_string_equal(err.msg, "flash JEDEC id 0xffff3f means no flash chip answered RDID; "
                                 "check the module has flash and it is wired to the SPI pins");
}

/* ---- Flash parameter codes (§9.2) ---- */

static void test_size_codes_esp8266(void **state)
{
    static const struct {
        const char *name;
        uint8_t code;
        uint32_t bytes;
    } table[] = {
        {"256KB", 0x10, 256u << 10}, {"512KB", 0x00, 512u << 10}, {"1MB", 0x20, 1u << 20},
        {"2MB", 0x30, 2u << 20},     {"4MB", 0x40, 4u << 20},     {"2MB-c1", 0x50, 2u << 20},
        {"4MB-c1", 0x60, 4u << 20},  {"8MB", 0x80, 8u << 20},     {"16MB", 0x90, 16u << 20},
    };
    const struct chip *c = chip_by_name("esp8266");
    const struct chip_flash_size *s;
    struct es_err err;
    (void)state;

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal(chip_flash_size_from_string(c, table[i].name, &s, &err), 0);
        assert_int_equal(s->code, table[i].code);
        assert_int_equal(s->bytes, table[i].bytes);
        assert_ptr_equal(chip_flash_size_by_code(c, table[i].code), s);
    }
    /* From bytes: the plain layout wins over "-c1". */
    assert_int_equal(chip_flash_size_from_bytes(c, 2u << 20, &s, &err), 0);
    assert_string_equal(s->name, "2MB");
    assert_int_equal(s->code, 0x30);
    assert_null(chip_flash_size_by_code(c, 0x70));
}

static void test_size_codes_esp32(void **state)
{
    static const struct {
        const char *name;
        uint8_t code;
    } table[] = {{"1MB", 0x00},  {"2MB", 0x10},  {"4MB", 0x20},  {"8MB", 0x30},
                 {"16MB", 0x40}, {"32MB", 0x50}, {"64MB", 0x60}, {"128MB", 0x70}};
    const struct chip *c = chip_by_name("esp32");
    const struct chip_flash_size *s;
    struct es_err err;
    (void)state;

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal(chip_flash_size_from_string(c, table[i].name, &s, &err), 0);
        assert_int_equal(s->code, table[i].code);
    }
    assert_int_equal(chip_flash_size_from_bytes(c, 4u << 20, &s, &err), 0);
    assert_int_equal(s->code, 0x20);
}

static void test_size_errors(void **state)
{
    const struct chip_flash_size *s;
    struct es_err err;
    (void)state;

    assert_int_equal(chip_flash_size_from_string(chip_by_name("esp32"), "512KB", &s, &err),
                     -(int)ES_PROFILE);
    assert_string_equal(err.msg, "flash size '512KB' cannot be encoded for esp32; use one of "
                                 "1MB, 2MB, 4MB, 8MB, 16MB, 32MB, 64MB, 128MB");
    assert_int_equal(chip_flash_size_from_string(chip_by_name("esp8266"), "32MB", &s, &err),
                     -(int)ES_PROFILE);
    assert_string_equal(err.msg,
                        "flash size '32MB' cannot be encoded for esp8266; use one of 256KB, "
                        "512KB, 1MB, 2MB, 4MB, 2MB-c1, 4MB-c1, 8MB, 16MB");
    assert_int_equal(chip_flash_size_from_string(chip_by_name("esp32"), "4M", &s, &err),
                     -(int)ES_PROFILE);
    assert_string_equal(err.msg, "flash size '4M' is not a size; use one of 1MB, 2MB, 4MB, 8MB, "
                                 "16MB, 32MB, 64MB, 128MB");
    assert_int_equal(chip_flash_size_from_bytes(chip_by_name("esp8266"), 32u << 20, &s, &err),
                     -(int)ES_FLASH_SIZE);
    assert_string_equal(err.msg,
                        "a 32MB flash cannot be encoded in a esp8266 image header (sizes: 256KB, "
                        "512KB, 1MB, 2MB, 4MB, 2MB-c1, 4MB-c1, 8MB, 16MB); set flash.size "
                        "explicitly");
    assert_int_equal(chip_flash_size_from_bytes(chip_by_name("esp32"), 512u << 10, &s, &err),
                     -(int)ES_FLASH_SIZE);
    assert_int_equal(chip_flash_size_from_bytes(chip_by_name("esp32"), 3u << 20, &s, &err),
                     -(int)ES_FLASH_SIZE);
}

static void test_size_names(void **state)
{
    (void)state;
    assert_string_equal(chip_flash_size_name(256u << 10), "256KB");
    assert_string_equal(chip_flash_size_name(4u << 20), "4MB");
    assert_string_equal(chip_flash_size_name(256u << 20), "256MB");
    assert_null(chip_flash_size_name(3u << 20));
    assert_null(chip_flash_size_name(0));
}

static void test_freq_codes(void **state)
{
    static const struct {
        const char *name;
        uint8_t code;
    } table[] = {{"80m", 0xF}, {"40m", 0x0}, {"26m", 0x1}, {"20m", 0x2}};
    struct es_err err;
    uint8_t code;
    (void)state;

    for (int m = 0; m < CHIP_MODEL_COUNT; m++) {
        const struct chip *c = chip_by_model((enum chip_model)m);
        for (size_t i = 0; i < 4; i++) {
            assert_int_equal(chip_flash_freq_from_string(c, table[i].name, &code, &err), 0);
            assert_int_equal(code, table[i].code);
            assert_string_equal(chip_flash_freq_name(c, table[i].code), table[i].name);
        }
    }
    assert_int_equal(chip_flash_freq_from_string(chip_by_name("esp32"), "60m", &code, &err),
                     -(int)ES_PROFILE);
    assert_string_equal(err.msg,
                        "flash frequency '60m' is not one of 80m, 40m, 26m, 20m for esp32");
    assert_null(chip_flash_freq_name(chip_by_name("esp32"), 0x3));
}

static void test_mode_codes(void **state)
{
    static const char *const names[] = {"qio", "qout", "dio", "dout"};
    struct es_err err;
    uint8_t code;
    (void)state;

    for (uint8_t i = 0; i < 4; i++) {
        assert_int_equal(chip_flash_mode_from_string(names[i], &code, &err), 0);
        assert_int_equal(code, i);
        assert_string_equal(chip_flash_mode_name(i), names[i]);
    }
    assert_int_equal(CHIP_FLASH_DIO, 2);
    assert_int_equal(chip_flash_mode_from_string("dioo", &code, &err), -(int)ES_PROFILE);
    assert_string_equal(err.msg, "flash mode 'dioo' is not one of qio, qout, dio, dout");
    assert_null(chip_flash_mode_name(4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magic_from_v2_replies),
        cmocka_unit_test(test_magic_other_chips_and_unknown),
        cmocka_unit_test(test_lookup_by_name_id_model),
        cmocka_unit_test(test_names_list_matches_table),
        cmocka_unit_test(test_table_rows),
        cmocka_unit_test(test_v13_esp8266_mac),
        cmocka_unit_test(test_esp8266_oui_rules),
        cmocka_unit_test(test_esp8285_detection),
        cmocka_unit_test(test_v13_esp32_mac),
        cmocka_unit_test(test_later_chip_mac),
        cmocka_unit_test(test_esp32_revision_and_package),
        cmocka_unit_test(test_check_mac),
        cmocka_unit_test(test_xtal),
        cmocka_unit_test(test_rom_baud_value),
        cmocka_unit_test(test_rdid_steps_esp8266),
        cmocka_unit_test(test_rdid_steps_esp32),
        cmocka_unit_test(test_rdid_steps_c3_uses_later_offsets),
        cmocka_unit_test(test_flash_id_winbond),
        cmocka_unit_test(test_flash_id_capacity_table),
        cmocka_unit_test(test_flash_id_adesto),
        cmocka_unit_test(test_flash_id_no_flash),
        cmocka_unit_test(test_size_codes_esp8266),
        cmocka_unit_test(test_size_codes_esp32),
        cmocka_unit_test(test_size_errors),
        cmocka_unit_test(test_size_names),
        cmocka_unit_test(test_freq_codes),
        cmocka_unit_test(test_mode_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
