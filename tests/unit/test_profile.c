/* The profile: every bad profile under tests/profiles/bad gives exactly the message in its
 * .expected file ({file} = the path passed in, {dir} = its directory with the trailing slash),
 * good profiles give every default and every value, and the per-board checks, header codes,
 * plan and hash do what profile.h says. Runs from ES_TEST_DATA_DIR so paths stay short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the headers it needs, which it does not include itself */

#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "es/chip.h"
#include "es/image.h"
#include "es/profile.h"

#define BAD_DIR "profiles/bad"
#define MIN_BAD 35

static const char sha_8266[] = "772686f471f5c92fbe40ef93fd2a7d524d489d6bbfe2b84c62d476ddb932e731";
static const char sha_esp32[] = "c9d8adda5e245154f41409d7d1a4a830f806b651e872fb2527436d3b2db8a193";
static const char sha_blob[] = "797c8492dd5d018c6d64bad4eff4e465d25644c539cf3b60a646bd6bfc295fb6";

/* Cases that fail on an image rather than on the text; every other bad case is ES_PROFILE. */
static const struct {
    const char *name;
    enum es_code code;
} image_cases[] = {
    {"37-image-missing", ES_IMAGE_LOAD},          {"38-hash-mismatch", ES_IMAGE_HASH},
    {"42-image-other-chip", ES_IMAGE_CHIP},       {"43-esp32-image-on-esp8266", ES_IMAGE_CHIP},
    {"60-esp8266-image-on-esp32", ES_IMAGE_CHIP}, {"45-bootloader-not-firmware", ES_IMAGE_FORMAT},
    {"46-bootloader-broken", ES_IMAGE_FORMAT},    {"56-image-directory", ES_IMAGE_LOAD},
};

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Replaces every {file} and {dir} in tmpl. */
static void expand(const char *tmpl, const char *file, const char *dir, char *out, size_t cap)
{
    size_t used = 0;

    while (*tmpl != '\0' && used + 1 < cap) {
        const char *with = NULL;
        size_t skip = 0;
        if (strncmp(tmpl, "{file}", 6) == 0) {
            with = file;
            skip = 6;
        } else if (strncmp(tmpl, "{dir}", 5) == 0) {
            with = dir;
            skip = 5;
        }
        if (with != NULL) {
            size_t n = strlen(with);
            assert_true(used + n < cap);
            memcpy(out + used, with, n);
            used += n;
            tmpl += skip;
        } else {
            out[used++] = *tmpl++;
        }
    }
    out[used] = '\0';
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_bad_corpus(void **state)
{
    DIR *d = opendir(BAD_DIR);
    struct dirent *e;
    char *names[256];
    size_t n = 0;
    (void)state;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) {
            assert_true(n < 256);
            names[n] = strdup(e->d_name);
            names[n][len - 5] = '\0';
            n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_names);
    assert_true(n >= MIN_BAD);

    for (size_t i = 0; i < n; i++) {
        char path[256], expected_path[256], want[512];
        char *expected, *nl;
        enum es_code code = ES_PROFILE;
        struct profile *p = (struct profile *)1;
        struct es_err err;
        int rc;

        snprintf(path, sizeof(path), BAD_DIR "/%s.yaml", names[i]);
        snprintf(expected_path, sizeof(expected_path), BAD_DIR "/%s.expected", names[i]);
        expected = read_text(expected_path);
        if (expected == NULL)
            fail_msg("%s has no .expected file", path);
        nl = strchr(expected, '\n');
        if (nl != NULL)
            *nl = '\0';
        expand(expected, path, BAD_DIR "/", want, sizeof(want));
        for (size_t k = 0; k < sizeof(image_cases) / sizeof(image_cases[0]); k++)
            if (strcmp(names[i], image_cases[k].name) == 0)
                code = image_cases[k].code;

        es_err_clear(&err);
        rc = profile_load(path, &p, &err);
        assert_string_equal(err.msg, want); /* first: a failure then names the case */
        assert_int_equal(rc, -(int)code);
        assert_int_equal(err.code, code);
        assert_null(p);
        free(expected);
        free(names[i]);
    }
}

static void test_missing_profile_is_io(void **state)
{
    struct profile *p;
    struct es_err err;
    (void)state;

    assert_int_equal(profile_load("profiles/none.yaml", &p, &err), -(int)ES_IO);
    assert_null(p);
    assert_string_equal(err.msg, "open profiles/none.yaml: No such file or directory; check the "
                                 "profile path");
}

static void assert_hex(const uint8_t *bytes, const char *hex)
{
    char got[65];

    es_hex(bytes, 32, got);
    assert_string_equal(got, hex);
}

static void assert_default(struct profile_pos pos)
{
    assert_int_equal(pos.line, 0);
    assert_int_equal(pos.col, 0);
}

static void assert_pos(struct profile_pos pos, int line, int col)
{
    assert_int_equal(pos.line, line);
    assert_int_equal(pos.col, col);
}

static void test_minimal_takes_every_default(void **state)
{
    struct profile *p;
    struct es_err err;
    (void)state;

    assert_int_equal(profile_load("profiles/good/minimal.yaml", &p, &err), 0);
    assert_string_equal(p->path, "profiles/good/minimal.yaml");
    assert_string_equal(p->name, "minimal");
    assert_null(p->chip);
    assert_int_equal(p->baud, 115200);
    assert_int_equal(p->flash_baud, 0);
    assert_string_equal(p->flash.mode, "keep");
    assert_string_equal(p->flash.freq, "keep");
    assert_string_equal(p->flash.size, "keep");
    assert_int_equal(p->flash.size_kind, PROFILE_SIZE_KEEP);
    assert_int_equal(p->flash.size_bytes, 0);
    assert_int_equal(p->erase, PROFILE_ERASE_NONE);
    assert_int_equal(p->verify, PROFILE_VERIFY_MD5);
    assert_int_equal(p->loader, PROFILE_LOADER_STUB);
    assert_int_equal(p->reset_before, PROFILE_RESET_BEFORE_AUTO);
    assert_int_equal(p->reset_after, PROFILE_RESET_AFTER_HARD);
    assert_int_equal(p->retries, 3);
    assert_string_equal(p->reports, "reports");
    assert_int_equal(p->n_ports, 0);
    assert_null(p->ports);
    assert_default(p->name_pos);
    assert_default(p->chip_pos);
    assert_default(p->baud_pos);
    assert_default(p->flash_baud_pos);
    assert_default(p->flash.pos);
    assert_default(p->flash.mode_pos);
    assert_default(p->flash.size_pos);
    assert_default(p->erase_pos);
    assert_default(p->verify_pos);
    assert_default(p->loader_pos);
    assert_default(p->reset_before_pos);
    assert_default(p->reset_after_pos);
    assert_default(p->retries_pos);
    assert_default(p->reports_pos);
    assert_default(p->ports_pos);
    assert_pos(p->images_pos, 3, 3);

    assert_int_equal(p->n_images, 1);
    assert_int_equal(p->images[0].offset, 0);
    assert_string_equal(p->images[0].file, "../images/esp8266-app.bin");
    assert_string_equal(p->images[0].path, "profiles/good/../images/esp8266-app.bin");
    assert_hex(p->images[0].sha256, sha_8266);
    assert_non_null(p->images[0].image);
    assert_int_equal(p->images[0].image->size, 3616);
    assert_hex(p->images[0].image->sha256, sha_8266);
    assert_pos(p->images[0].pos, 3, 5);
    assert_pos(p->images[0].offset_pos, 3, 13);
    assert_pos(p->images[0].file_pos, 4, 11);
    assert_pos(p->images[0].sha256_pos, 5, 13);
    profile_free(p);
}

static void test_full_sets_every_value(void **state)
{
    struct profile *p;
    struct es_err err;
    (void)state;

    assert_int_equal(profile_load("profiles/good/full.yaml", &p, &err), 0);
    assert_string_equal(p->name, "bench-esp32");
    assert_pos(p->name_pos, 2, 7);
    assert_non_null(p->chip);
    assert_ptr_equal(p->chip, chip_by_name("esp32"));
    assert_pos(p->chip_pos, 3, 7);
    assert_int_equal(p->baud, 230400);
    assert_int_equal(p->flash_baud, 921600);
    assert_pos(p->flash_baud_pos, 5, 13);
    assert_string_equal(p->flash.mode, "dio");
    assert_string_equal(p->flash.freq, "80m");
    assert_string_equal(p->flash.size, "4MB");
    assert_int_equal(p->flash.size_kind, PROFILE_SIZE_BYTES);
    assert_int_equal(p->flash.size_bytes, 4u << 20);
    assert_pos(p->flash.size_pos, 9, 9);
    assert_int_equal(p->erase, PROFILE_ERASE_REGIONS);
    assert_int_equal(p->verify, PROFILE_VERIFY_NONE);
    assert_int_equal(p->loader, PROFILE_LOADER_ROM);
    assert_int_equal(p->reset_before, PROFILE_RESET_BEFORE_NONE);
    assert_int_equal(p->reset_after, PROFILE_RESET_AFTER_NONE);
    assert_int_equal(p->retries, 0);
    assert_string_equal(p->reports, "/var/lib/espstation/reports");

    assert_int_equal(p->n_images, 2);
    assert_int_equal(p->images[0].offset, 0x1000);
    assert_hex(p->images[0].sha256, sha_esp32);     /* written in upper case */
    assert_int_equal(p->images[1].offset, 0x10000); /* written in decimal */
    assert_hex(p->images[1].sha256, sha_blob);      /* written quoted */
    assert_int_equal(p->images[1].image->size, 6144);

    assert_int_equal(p->n_ports, 3);
    assert_string_equal(p->ports[0].path, "/dev/ttyUSB*");
    assert_false(p->ports[0].has_usb);
    assert_null(p->ports[1].path);
    assert_true(p->ports[1].has_usb);
    assert_int_equal(p->ports[1].usb_vid, 0x10c4);
    assert_int_equal(p->ports[1].usb_pid, 0xea60);
    assert_string_equal(p->ports[1].serial, "A50285BI");
    assert_null(p->ports[1].location);
    assert_false(p->ports[2].has_usb);
    assert_string_equal(p->ports[2].location, "1-1.4");
    assert_pos(p->ports[2].pos, 26, 5);
    profile_free(p);
}

static void test_profile_hash_is_sha256_of_the_file(void **state)
{
    struct profile *p;
    struct es_err err;
    uint8_t want[32];
    char hex[65];
    char *text = read_text("profiles/good/full.yaml");
    (void)state;

    assert_non_null(text);
    assert_int_equal(es_sha256(text, strlen(text), want, &err), 0);
    es_hex(want, sizeof(want), hex);
    assert_int_equal(profile_load("profiles/good/full.yaml", &p, &err), 0);
    assert_string_equal(profile_hash(p), hex);
    assert_memory_equal(p->sha256, want, 32);
    profile_free(p);
    free(text);
}

static void test_parse_resolves_paths_and_accepts_flow_style(void **state)
{
    static const char text[] =
        "{chip: esp8266, images: [{offset: 4096, file: /abs/a.bin, sha256: "
        "772686f471f5c92fbe40ef93fd2a7d524d489d6bbfe2b84c62d476ddb932e731},"
        " {offset: 0x2000, file: b.bin, sha256: "
        "772686f471f5c92fbe40ef93fd2a7d524d489d6bbfe2b84c62d476ddb932e731}]}";
    struct profile *p;
    struct es_err err;
    (void)state;

    assert_int_equal(profile_parse("some/dir/x.yml", text, strlen(text), &p, &err), 0);
    assert_string_equal(p->name, "x");
    assert_ptr_equal(p->chip, chip_by_name("esp8266"));
    assert_int_equal(p->n_images, 2);
    assert_string_equal(p->images[0].path, "/abs/a.bin");
    assert_string_equal(p->images[1].path, "some/dir/b.bin");
    assert_null(p->images[0].image); /* parse alone loads nothing */
    profile_free(p);

    assert_int_equal(profile_parse("bare.yaml", text, strlen(text), &p, &err), 0);
    assert_string_equal(p->images[1].path, "b.bin");
    profile_free(p);
}

static void test_parse_messages_without_files(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"images: [{offset: 0x1, file: a, sha256: x}]",
         "t.yaml:1:19: images[0].offset 0x1 is not 4 KiB aligned; write 0x0 or 0x1000"},
        {"images: [{offset: 0xfff800, file: a, sha256: x}]",
         "t.yaml:1:19: images[0].offset 0xfff800 is not 4 KiB aligned; write 0xfff000"},
        {"images: [{offset: 99999999999999999999999, file: a, sha256: x}]",
         "t.yaml:1:19: images[0].offset 99999999999999999999999 is at or past 16 MiB, which the "
         "loaders cannot address; write an offset below 0x1000000"},
        {"retries: 0x65\nimages: []",
         "t.yaml:1:10: retries 0x65 is out of range; write a value from 0 to 100"},
        {"baud: [1]\nimages: []", "t.yaml:1:7: baud is a list; write a number such as 115200"},
        {"reset: {after: ON}\nimages: []",
         "t.yaml:1:16: reset.after is a YAML boolean (ON); write 'hard' or 'none'"},
        {"reset: {after: 'no'}\nimages: []",
         "t.yaml:1:16: reset.after 'no' is not one of hard, none"},
        {"? [a]\n: 1\nimages: []",
         "t.yaml:1:3: a key in the top level is a list; keys are plain words such as 'name'"},
        {"ports: [{usb: \"10c4:\"}]\nimages: []",
         "t.yaml:1:15: ports[0].usb '10c4:' is not VID:PID; write two groups of up to 4 hex "
         "digits, e.g. \"10c4:ea60\""},
        {"flash: {size: 16MB}\nchip: esp8266\nflash_baud: 9600\nimages: []",
         "t.yaml:4:9: images is an empty list; add at least one {offset, file, sha256}"},
        {"x: \xff\n", "t.yaml:1:4: not valid YAML text: invalid leading UTF-8 octet; save the "
                      "profile as UTF-8 text"},
        /* The key table's rows, in the order they are listed and read. */
        {"images: []\nspeed: 1",
         "t.yaml:2:1: unknown key 'speed' in the top level; the keys there are name, chip, "
         "baud, flash_baud, flash, erase, verify, duplicate_mac, loader, reset, retries, ports, "
         "reports, publish, boot_check, images"},
        /* publish: parsed by libpq's own parser; the message never quotes the URL's words. */
        {"images: [1]\npublish: 'not a url'",
         "t.yaml:2:10: publish: the database URL is not valid: missing \"=\" after \"...\" in "
         "connection info string; write a URL such as postgresql://station@db/factory"},
        {"images: [1]\npublish: [x]", "t.yaml:2:10: publish is a list; write a database URL "
                                      "such as postgresql://station@db/factory"},
        {"images: [1]\nreports: [r]\nduplicate_mac: off\nloader: x",
         "t.yaml:3:16: duplicate_mac is a YAML boolean (off); write 'fail' or 'warn'"},
        {"images: [1]\nreports: {}", "t.yaml:2:10: reports is a mapping; write a directory such "
                                     "as reports"},
        {"images: [1]\nname: ''", "t.yaml:2:7: name is empty; write a name for reports, such as "
                                  "nodemcu-micropython"},
        {"images: [1]\nflash_baud: 5000001",
         "t.yaml:2:13: flash_baud 5000001 is out of range; write a value from 9600 to 5000000"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct profile *p;
        struct es_err err;
        int rc;

        es_err_clear(&err);
        rc = profile_parse("t.yaml", cases[i].text, strlen(cases[i].text), &p, &err);
        assert_string_equal(err.msg, cases[i].msg);
        assert_int_equal(rc, -(int)ES_PROFILE);
        assert_null(p);
    }
}

/* boot_check: every key read, escapes in send kept as bytes, the patterns compiled with
 * REG_EXTENDED, and each bad value named at its own file:line:column. */
static void test_boot_check(void **state)
{
    static const char good[] = "images: [{offset: 0, file: a.bin, sha256: \"" /* a dummy pin */
                               "772686f471f5c92fbe40ef93fd2a7d524d489d6bbfe2b84c62d476ddb932e731"
                               "\"}]\n"
                               "boot_check:\n"
                               "  baud: 74880\n"
                               "  expect: [\"MicroPython v1\\\\.\", \">>> \"]\n"
                               "  send: \"print(6*7)\\r\\n\"\n"
                               "  reply: \"^42\"\n"
                               "  timeout: 2500ms\n";
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"images: []\nboot_check:\n  expect: [\"ok\", \"Micro(Python\"]\n",
         "t.yaml:3:18: boot_check.expect[1] 'Micro(Python' is not a POSIX extended regex: "
         "Unmatched ( or \\(; put a backslash before ( ) [ ] { } . * + ? | ^ $ to match them as "
         "text"},
        {"images: []\nboot_check: {expect: ok, reply: \"a{2,1}\", send: x}\n",
         "t.yaml:2:33: boot_check.reply 'a{2,1}' is not a POSIX extended regex: Invalid content "
         "of \\{\\}; put a backslash before ( ) [ ] { } . * + ? | ^ $ to match them as text"},
        {"images: []\nboot_check: {expect: ok, timeout: 10}\n",
         "t.yaml:2:35: boot_check.timeout '10' is not a duration; write a number and a unit "
         "(ms, s or min) such as 10s or 500ms"},
        {"images: []\nboot_check: {expect: ok, timeout: 50ms}\n",
         "t.yaml:2:35: boot_check.timeout 50ms is out of range; write a duration from 100ms to "
         "10min"},
        {"images: []\nboot_check: {expect: ok, reply: \"42\"}\n",
         "t.yaml:2:26: boot_check.reply comes after send, and there is no send; add send: with "
         "the text that makes the firmware answer"},
        {"images: []\nboot_check: {baud: 74880}\n",
         "t.yaml:2:13: boot_check checks nothing; add expect: with the patterns the firmware "
         "prints when it boots, or send: and reply:"},
        {"images: []\nboot_check: {expect: [\"\"]}\n",
         "t.yaml:2:23: boot_check.expect[0] is empty; write a POSIX extended regex such as "
         "\"MicroPython v1\\\\.\""},
        {"images: [{offset: 0, file: a, sha256: \"772686f471f5c92fbe40ef93fd2a7d524d489d6bbfe2b8"
         "4c62d476ddb932e731\"}]\nreset: {after: none}\nboot_check: {expect: ok}\n",
         "t.yaml:3:13: boot_check needs the board reset into its firmware, and reset.after is "
         "none (2:16); write after: hard, or remove boot_check"},
        {"images: []\nboot_check: {expect: ok, timout: 1s}\n",
         "t.yaml:2:26: unknown key 'timout' in boot_check; did you mean 'timeout'?"},
        {"images: []\nexpect: [ok]\n",
         "t.yaml:2:1: key 'expect' does not belong in the top level; it goes under boot_check"},
        {"images: []\nboot_check: [ok]\n",
         "t.yaml:2:13: boot_check is a list; write a mapping such as {expect: [\"MicroPython "
         "v1\\\\.\"], timeout: 10s}"},
    };
    struct profile *p;
    struct es_err err;
    const struct profile_boot_check *bc;
    char *out = NULL;
    size_t len = 0;
    FILE *f;
    (void)state;

    es_err_clear(&err);
    assert_int_equal(profile_parse("t.yaml", good, strlen(good), &p, &err), 0);
    bc = p->boot_check;
    assert_non_null(bc);
    assert_int_equal(bc->baud, 74880);
    assert_int_equal(bc->n_expect, 2);
    assert_string_equal(bc->expect[0], "MicroPython v1\\.");
    assert_string_equal(bc->expect[1], ">>> ");
    assert_pos(bc->expect_pos_each[1], 4, 33);
    assert_int_equal(bc->send_len, 12);
    assert_memory_equal(bc->send, "print(6*7)\r\n", 12);
    assert_string_equal(bc->reply, "^42");
    assert_int_equal(bc->timeout_ms, 2500);
    assert_pos(bc->pos, 3, 3);
    assert_pos(bc->timeout_pos, 7, 12);
    /* Compiled as extended regexes: the escaped dot is a dot, + is a repetition. */
    assert_int_equal(regexec(&bc->expect_re[0], "MicroPython v1.22.0 on 2024", 0, NULL, 0), 0);
    assert_int_equal(regexec(&bc->expect_re[0], "MicroPython v1x22", 0, NULL, 0), REG_NOMATCH);
    assert_int_equal(regexec(&bc->reply_re, "42\r\n", 0, NULL, 0), 0);
    assert_int_equal(regexec(&bc->reply_re, "print(42)", 0, NULL, 0), REG_NOMATCH);
    f = open_memstream(&out, &len);
    assert_non_null(f);
    assert_int_equal(profile_print_plan(p, f), 0);
    fclose(f);
    assert_non_null(strstr(out, "boot_check  at 74880 baud, within 2500 ms\n"
                                "  expect[0] /MicroPython v1\\./\n"
                                "  expect[1] />>> /\n"
                                "  send      \"print(6*7)\\r\\n\"\n"
                                "  reply     /^42/\n"));
    free(out);
    profile_free(p);

    /* The defaults: 115200 baud, 10 s; a single pattern is a list of one. */
    {
        static const char text[] = "images: [{offset: 0, file: a, sha256: \"772686f471f5c92fbe40e"
                                   "f93fd2a7d524d489d6bbfe2b84c62d476ddb932e731\"}]\n"
                                   "boot_check: {expect: 'a+b'}\n";
        assert_int_equal(profile_parse("t.yaml", text, strlen(text), &p, &err), 0);
        assert_int_equal(p->boot_check->baud, 115200);
        assert_int_equal(p->boot_check->timeout_ms, 10000);
        assert_int_equal(p->boot_check->n_expect, 1);
        assert_null(p->boot_check->send);
        assert_null(p->boot_check->reply);
        assert_int_equal(regexec(&p->boot_check->expect_re[0], "xaaab", 0, NULL, 0), 0);
        profile_free(p);
    }

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;

        es_err_clear(&err);
        rc = profile_parse("t.yaml", bad[i].text, strlen(bad[i].text), &p, &err);
        assert_string_equal(err.msg, bad[i].msg);
        assert_int_equal(rc, -(int)ES_PROFILE);
        assert_null(p);
    }
}

static void test_board_checks(void **state)
{
    const struct chip *esp8266 = chip_by_name("esp8266"), *esp32 = chip_by_name("esp32");
    struct profile *p;
    struct es_err err;
    (void)state;

    /* size: detect: the blob at 0x7f000 ends at 0x807ff, past a 512 KiB board only. */
    assert_int_equal(profile_load("profiles/good/detect.yaml", &p, &err), 0);
    assert_int_equal(p->flash.size_kind, PROFILE_SIZE_DETECT);
    assert_int_equal(p->n_ports, 1);
    assert_true(p->ports[0].has_usb);
    assert_int_equal(p->ports[0].usb_vid, 0x1a86);
    assert_int_equal(profile_check_board(p, esp8266, 1u << 20, &err), 0);
    assert_int_equal(profile_check_board(p, esp8266, 0, &err), 0);
    assert_int_equal(profile_check_board(p, esp8266, 512u << 10, &err), -(int)ES_FLASH_SIZE);
    assert_string_equal(err.msg, "profiles/good/detect.yaml:9:5: images[1] (0x7f000..0x807ff) "
                                 "ends past this board's 512KB flash; use boards with more flash "
                                 "or a smaller image");
    /* On an ESP32 an ESP8266 image is refused by its layout, wherever it is (issue 11). */
    assert_int_equal(profile_check_board(p, esp32, 4u << 20, &err), -(int)ES_IMAGE_CHIP);
    assert_string_equal(err.msg, "profiles/good/detect.yaml:7:11: ../images/esp8266-app.bin is "
                                 "built for the ESP8266 (its segments and checksum fit only that "
                                 "layout), not esp32; use the esp32 build of the firmware");
    profile_free(p);

    assert_int_equal(profile_load("profiles/good/other-chip-auto.yaml", &p, &err), 0);
    assert_int_equal(profile_check_board(p, esp32, 4u << 20, &err), -(int)ES_IMAGE_CHIP);
    assert_string_equal(err.msg, "profiles/good/other-chip-auto.yaml:5:11: "
                                 "../images/esp32c3-app.bin is built for esp32c3 (image chip id "
                                 "5), not esp32; use the esp32 build of the firmware");
    /* loader: rom with the default verify: md5 is fine on an ESP32-C3, not on an ESP8266. */
    assert_int_equal(profile_check_board(p, chip_by_name("esp32c3"), 4u << 20, &err), 0);
    assert_int_equal(profile_check_board(p, esp8266, 4u << 20, &err), -(int)ES_PROFILE);
    assert_string_equal(err.msg, "profiles/good/other-chip-auto.yaml:2:9: verify: md5 needs the "
                                 "flasher stub on esp8266 (its ROM has no MD5 command); write "
                                 "loader: stub, or verify: none");
    profile_free(p);

    assert_int_equal(profile_load("profiles/good/full.yaml", &p, &err), 0);
    assert_int_equal(profile_check_board(p, esp32, 4u << 20, &err), 0);
    /* An explicit 4MB on a board that reports 2 MiB: the smaller size counts. */
    assert_int_equal(profile_check_board(p, esp32, 64u << 10, &err), -(int)ES_FLASH_SIZE);
    assert_int_equal(profile_check_board(p, esp8266, 4u << 20, &err), -(int)ES_WRONG_CHIP);
    assert_string_equal(err.msg, "profiles/good/full.yaml:3:7: the profile is for esp32 but the "
                                 "board is esp8266; use a profile for esp8266");
    profile_free(p);
}

static void test_flash_params(void **state)
{
    const struct chip *esp8266 = chip_by_name("esp8266"), *esp32 = chip_by_name("esp32");
    struct image_flash_params params;
    struct profile *p;
    struct es_err err;
    (void)state;

    assert_int_equal(profile_load("profiles/good/full.yaml", &p, &err), 0);
    assert_int_equal(profile_flash_params(p, esp32, 0, &params, &err), 0);
    assert_int_equal(params.mode, CHIP_FLASH_DIO);
    assert_int_equal(params.freq, 0xF);  /* 80m (§9.2) */
    assert_int_equal(params.size, 0x20); /* 4MB on the ESP32 family */
    profile_free(p);

    assert_int_equal(profile_load("profiles/good/detect.yaml", &p, &err), 0);
    assert_int_equal(profile_flash_params(p, esp8266, 0, &params, &err), 0);
    assert_int_equal(params.mode, CHIP_FLASH_DIO);
    assert_int_equal(params.freq, IMAGE_KEEP);
    assert_int_equal(params.size, IMAGE_KEEP); /* not detected yet */
    assert_int_equal(profile_flash_params(p, esp8266, 4u << 20, &params, &err), 0);
    assert_int_equal(params.size, 0x40); /* 4MB on the ESP8266 family */
    assert_int_equal(profile_flash_params(p, esp32, 4u << 20, &params, &err), 0);
    assert_int_equal(params.size, 0x20);
    assert_int_equal(profile_flash_params(p, esp32, 512u << 10, &params, &err),
                     -(int)ES_FLASH_SIZE);
    profile_free(p);

    assert_int_equal(profile_load("profiles/good/minimal.yaml", &p, &err), 0);
    assert_int_equal(profile_flash_params(p, esp8266, 1u << 20, &params, &err), 0);
    assert_int_equal(params.mode, IMAGE_KEEP);
    assert_int_equal(params.freq, IMAGE_KEEP);
    assert_int_equal(params.size, IMAGE_KEEP);
    profile_free(p);
}

static void test_plan(void **state)
{
    struct profile *p;
    struct es_err err;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    (void)state;

    assert_non_null(f);
    assert_int_equal(profile_load("profiles/good/full.yaml", &p, &err), 0);
    assert_int_equal(profile_print_plan(p, f), 0);
    fclose(f);
    assert_non_null(strstr(out, "profile     bench-esp32, from profiles/good/full.yaml\n"));
    assert_non_null(strstr(out, "chip        esp32\n"));
    assert_non_null(strstr(out, "flash       mode dio, freq 80m, size 4MB\n"));
    assert_non_null(strstr(out, "  [0] 0x001000..0x001e4f  3664 bytes  "
                                "profiles/good/../images/esp32-app.bin\n"));
    assert_non_null(strstr(out, "      patch   mode dio, freq 80m, size 4MB\n"));
    assert_non_null(strstr(out, "            usb 10c4:ea60, serial A50285BI\n"));
    assert_non_null(strstr(out, sha_blob));
    profile_free(p);
    free(out);

    out = NULL;
    f = open_memstream(&out, &len);
    assert_int_equal(profile_load("profiles/good/minimal.yaml", &p, &err), 0);
    assert_int_equal(profile_print_plan(p, f), 0);
    fclose(f);
    assert_non_null(strstr(out, "baud        115200 (default)\n"));
    assert_non_null(strstr(out, "verify      md5 (default)\n"));
    assert_non_null(strstr(out, "reset       before auto (default), after hard (default)\n"));
    profile_free(p);
    free(out);
}

/* The shipped profiles' boot check matches the real MicroPython banner and REPL, as the ESP8266
 * and ESP32 ports print them after a hard reset. */
static void assert_shipped_boot_check(const struct profile *p)
{
    static const char esp8266[] = "\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n"
                                  "MicroPython v1.22.2 on 2024-02-22; ESP module with ESP8266\r\n"
                                  "Type \"help()\" for more information.\r\n>>> ";
    static const char esp32[] = "MicroPython v1.23.0 on 2024-06-02; Generic ESP32 module with "
                                "ESP32\r\nType \"help()\" for more information.\r\n>>> ";
    const struct profile_boot_check *bc = p->boot_check;
    const char *text = p->chip == chip_by_name("esp8266") ? esp8266 : esp32;
    regmatch_t m[1];

    assert_non_null(bc);
    assert_int_equal(bc->baud, 115200);
    assert_int_equal(bc->n_expect, 2);
    assert_int_equal(regexec(&bc->expect_re[0], text, 1, m, 0), 0);
    assert_int_equal(regexec(&bc->expect_re[1], text + m[0].rm_eo, 0, NULL, 0), 0);
    assert_int_equal(regexec(&bc->expect_re[0], "MicroPython v2.0", 0, NULL, 0), REG_NOMATCH);
    assert_int_equal(bc->send_len, 12);
    assert_memory_equal(bc->send, "print(6*7)\r\n", 12);
    assert_int_equal(regexec(&bc->reply_re, "print(6*7)\r\n42\r\n>>> ", 0, NULL, 0), 0);
    assert_int_equal(bc->timeout_ms, 10000);
}

/* The profiles we ship load, with their demo images (profiles/images, made by tools/mkimage). */
static void test_shipped_profiles(void **state)
{
    struct profile *p;
    struct es_err err;
    (void)state;

    es_err_clear(&err);
    assert_int_equal(profile_load("../profiles/nodemcu-micropython.yaml", &p, &err), 0);
    assert_string_equal(err.msg, "");
    assert_string_equal(p->name, "nodemcu-micropython");
    assert_ptr_equal(p->chip, chip_by_name("esp8266"));
    assert_string_equal(p->flash.mode, "dio");
    assert_string_equal(p->flash.freq, "40m");
    assert_int_equal(p->flash.size_kind, PROFILE_SIZE_DETECT);
    assert_int_equal(p->verify, PROFILE_VERIFY_MD5);
    assert_int_equal(p->loader, PROFILE_LOADER_STUB);
    assert_int_equal(p->n_images, 1);
    assert_int_equal(p->images[0].offset, 0x0);
    assert_int_equal(profile_check_board(p, p->chip, 1u << 20, &err), 0);
    assert_shipped_boot_check(p);
    profile_free(p);

    assert_int_equal(profile_load("../profiles/esp32-micropython.yaml", &p, &err), 0);
    assert_string_equal(err.msg, "");
    assert_ptr_equal(p->chip, chip_by_name("esp32"));
    assert_int_equal(p->erase, PROFILE_ERASE_ALL);
    assert_int_equal(p->n_images, 1);
    assert_int_equal(p->images[0].offset, 0x1000);
    assert_int_equal(profile_check_board(p, p->chip, 4u << 20, &err), 0);
    assert_shipped_boot_check(p);
    profile_free(p);
}

/* Issue 11 #3: two profiles for one chip, or chip: auto with any other, are refused with both
 * names and the chip; one profile per chip is fine. */
static void test_profile_set(void **state)
{
    static const char img[] = "images:\n  - offset: 0x0\n    file: a.bin\n    sha256: "
                              "0000000000000000000000000000000000000000000000000000000000000000\n";
    const char *chips[] = {"chip: esp32\n", "chip: esp32\n", "chip: esp8266\n", "chip: auto\n", ""};
    const char *names[] = {"a.yaml", "b.yaml", "c.yaml", "d.yaml", "e.yaml"};
    struct profile *p[5];
    const struct profile *set[2];
    struct es_err err;
    char text[512];
    (void)state;

    for (int i = 0; i < 5; i++) {
        snprintf(text, sizeof(text), "%s%s", chips[i], img);
        assert_int_equal(profile_parse(names[i], text, strlen(text), &p[i], &err), 0);
    }
    set[0] = p[0];
    set[1] = p[2];
    assert_int_equal(profile_check_set(set, 2, &err), 0);
    assert_int_equal(profile_check_set(set, 1, &err), 0);
    set[1] = p[1];
    assert_int_equal(profile_check_set(set, 2, &err), -(int)ES_PROFILE);
    assert_string_equal(err.msg, "profiles a.yaml:1:7 (chip: esp32) and b.yaml:1:7 (chip: esp32) "
                                 "both claim esp32; a board must have exactly one profile: pass "
                                 "one of them");
    set[0] = p[3];
    set[1] = p[2];
    assert_int_equal(profile_check_set(set, 2, &err), -(int)ES_PROFILE);
    assert_string_equal(err.msg, "profiles d.yaml:1:7 (chip: auto) and c.yaml:1:7 (chip: esp8266) "
                                 "both claim esp8266 (chip: auto takes every chip); a board must "
                                 "have exactly one profile: pass the auto profile alone, or name "
                                 "its chip");
    set[0] = p[3];
    set[1] = p[4];
    assert_int_equal(profile_check_set(set, 2, &err), -(int)ES_PROFILE);
    assert_string_equal(err.msg, "profiles d.yaml:1:7 (chip: auto) and e.yaml (chip: auto, the "
                                 "default) both claim every chip; a board must have exactly one "
                                 "profile: pass one of them, or name each one's chip");
    set[0] = p[4];
    assert_int_equal(profile_check_set(set, 1, &err), 0);
    for (int i = 0; i < 5; i++)
        profile_free(p[i]);
}

/* Writes len bytes of data to path. */
static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Issue 11 #14: with the profile in a deep folder, the SHA-256 mismatch keeps the pinned digest
 * and the advice (it was cut at 255 characters). */
static void test_deep_path_message_is_whole(void **state)
{
    static char dir[2048], path[2300], want[4096];
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    char text[256], *blob;
    size_t used;
    FILE *f;
    long n;
    struct profile *p = NULL;
    struct es_err err;
    (void)state;

    snprintf(dir, sizeof(dir), "/tmp/es-test-profile-XXXXXX");
    assert_non_null(mkdtemp(dir));
    used = strlen(dir);
    for (int level = 0; level < 8; level++) {
        used += (size_t)snprintf(dir + used, sizeof(dir) - used, "/%s-level-%d",
                                 "a-folder-name-as-long-as-a-factory-share-might-give-it-xxxxxxx",
                                 level);
        assert_int_equal(mkdir(dir, 0755), 0);
    }
    f = fopen("profiles/images/blob.bin", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    blob = malloc((size_t)n);
    assert_int_equal(fread(blob, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    snprintf(path, sizeof(path), "%s/blob.bin", dir);
    write_file(path, blob, (size_t)n);
    free(blob);
    snprintf(text, sizeof(text),
             "chip: esp8266\nimages:\n  - offset: 0x10000\n    file: blob.bin\n    sha256: %s\n",
             zeros);
    snprintf(path, sizeof(path), "%s/deep.yaml", dir);
    write_file(path, text, strlen(text));

    assert_int_equal(profile_load(path, &p, &err), -(int)ES_IMAGE_HASH);
    assert_null(p);
    snprintf(want, sizeof(want),
             "%s:5:13: blob.bin has sha256 %s but the profile pins %s; fix the file or the pin",
             path, sha_blob, zeros);
    assert_true(strlen(want) > 600);
    assert_string_equal(err.msg, want);

    unlink(path);
    snprintf(path, sizeof(path), "%s/blob.bin", dir);
    unlink(path);
    for (int level = 0; level <= 8; level++) {
        assert_int_equal(rmdir(dir), 0);
        *strrchr(dir, '/') = '\0';
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(profile_erase_name(PROFILE_ERASE_REGIONS), "regions");
    assert_string_equal(profile_verify_name(PROFILE_VERIFY_NONE), "none");
    assert_string_equal(profile_loader_name(PROFILE_LOADER_ROM), "rom");
    assert_string_equal(profile_reset_before_name(PROFILE_RESET_BEFORE_AUTO), "auto");
    assert_string_equal(profile_reset_after_name(PROFILE_RESET_AFTER_HARD), "hard");
    assert_string_equal(profile_erase_name((enum profile_erase)9), "unknown");
    profile_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_corpus),
        cmocka_unit_test(test_missing_profile_is_io),
        cmocka_unit_test(test_minimal_takes_every_default),
        cmocka_unit_test(test_full_sets_every_value),
        cmocka_unit_test(test_profile_hash_is_sha256_of_the_file),
        cmocka_unit_test(test_parse_resolves_paths_and_accepts_flow_style),
        cmocka_unit_test(test_parse_messages_without_files),
        cmocka_unit_test(test_boot_check),
        cmocka_unit_test(test_board_checks),
        cmocka_unit_test(test_flash_params),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_shipped_profiles),
        cmocka_unit_test(test_deep_path_message_is_whole),
        cmocka_unit_test(test_profile_set),
        cmocka_unit_test(test_names),
    };

    if (chdir(ES_TEST_DATA_DIR) != 0) {
        perror("chdir " ES_TEST_DATA_DIR);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
