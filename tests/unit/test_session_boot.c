/* The session's boot check (phase "boot", src/session/session_boot.c) through the scripted fake
 * port: a small ESP32-S3 that answers its ROM loader's commands in download mode and, when the
 * run reset releases EN with GPIO0 high, "boots" and prints a scripted console text at chosen
 * times, a REPL answering what the host sends. The session runs in verify mode with the ROM
 * loader, which needs only a handful of ROM commands (test_session.c's board, with its stub and
 * inflating flash, covers the flashing side). Each test checks the verdict, the report's "boot"
 * and the error, counts on_done, and ends with uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four headers it needs */

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/chip.h"
#include "es/container_of.h"
#include "es/le.h"
#include "es/port_fake.h"
#include "es/profile.h"
#include "es/rom.h"
#include "es/session.h"

#define FLASH_JEDEC 0x1640EFu /* Winbond, 4 MiB (protocol doc §7.6) */
#define SYNC_VALUE  0x20120707u
#define ROM_BAUD    115200u
#define BOOT_BAUD   74880u /* not the loader's rate, so that the switch shows */
#define MAC_LO      0xC4123456u
#define MAC_HI      0x0000240Au
#define SCRIPT_MAX  8
#define REPL_TICK   1 /* ms between looks at what the host wrote */

/* One piece of console text, printed delay_ms after the firmware starts. */
struct piece {
    const char *text;
    size_t len; /* 0: strlen(text) */
    uint64_t delay_ms;
};

struct harness {
    uv_loop_t loop;
    struct fake_port *fp;
    char port_name[16];
    int in_reset, boots;
    uint32_t regs[8][2];
    size_t n_regs;

    /* The firmware: what it prints after a boot, and its REPL. */
    struct piece script[SCRIPT_MAX];
    size_t n_script;
    const char *repl_answer; /* printed once the host has written repl_wants bytes; NULL: none */
    size_t repl_wants;
    size_t bytes_at_boot;  /* the host's bytes_in when the firmware started */
    uint32_t baud_at_boot; /* the host's rate then: the first byte must be read right */
    uv_timer_t repl_timer;
    int repl_timer_open;

    struct profile profile;
    struct profile_boot_check bc;
    const struct profile *profiles[1];
    struct profile_image pimg;
    struct stub_image stubs[CHIP_MODEL_COUNT];
    struct session_config cfg;
    struct session *s;
    enum session_phase phases[32];
    int n_phases;
    int interrupt_in_boot;
    int done_calls, skip_notes, boot_notes;
};

/* ---- The board ---- */

static uint32_t board_reg(const struct harness *h, uint32_t addr)
{
    const struct chip *chip = chip_by_model(CHIP_ESP32S3);

    if (addr == chip->spi.w0)
        return FLASH_JEDEC; /* what RDID leaves in W0 */
    for (size_t i = 0; i < h->n_regs; i++)
        if (h->regs[i][0] == addr)
            return h->regs[i][1];
    return 0;
}

static void board_reply(struct harness *h, uint8_t op, uint32_t value)
{
    uint8_t pkt[ROM_HEADER_LEN + 4] = {0};

    pkt[0] = ROM_DIR_REPLY;
    pkt[1] = op;
    es_put_le16(pkt + 2, 4); /* the ROM's four status bytes, all zero: success (§2.5) */
    es_put_le32(pkt + 4, value);
    fake_port_send_frame(h->fp, pkt, sizeof(pkt), 0);
}

static void on_frame(struct fake_port *fp, const uint8_t *frame, size_t len, uint32_t baud,
                     void *arg)
{
    struct harness *h = arg;

    (void)fp;
    if (baud != ROM_BAUD || h->boots > 0 || len < ROM_HEADER_LEN || frame[0] != ROM_DIR_REQUEST)
        return; /* only the ROM in download mode answers, and only at its rate */
    switch (frame[1]) {
    case ROM_OP_SYNC: board_reply(h, frame[1], SYNC_VALUE); return;
    case ROM_OP_READ_REG: board_reply(h, frame[1], board_reg(h, es_get_le32(frame + 8))); return;
    case ROM_OP_WRITE_REG:
    case ROM_OP_SPI_ATTACH:
    case ROM_OP_SPI_SET_PARAMS: board_reply(h, frame[1], 0); return;
    default: fail_msg("unexpected ROM command 0x%02x", frame[1]);
    }
}

static void on_repl_tick(uv_timer_t *t)
{
    struct harness *h = container_of(t, struct harness, repl_timer);

    if (fake_port_stats(h->fp)->bytes_in < h->bytes_at_boot + h->repl_wants)
        return;
    uv_timer_stop(t);
    fake_port_send_raw(h->fp, (const uint8_t *)h->repl_answer, strlen(h->repl_answer), 1);
}

/* EN low (RTS asserted, DTR not) holds the chip in reset; on release it runs the ROM loader when
 * GPIO0 is low (DTR asserted), else the firmware (protocol doc §5.2). */
static void on_lines(struct fake_port *fp, int dtr, int rts, void *arg)
{
    struct harness *h = arg;

    if (rts && !dtr) {
        h->in_reset = 1;
        return;
    }
    if (!h->in_reset)
        return;
    h->in_reset = 0;
    if (dtr)
        return; /* download mode */
    h->boots++;
    h->baud_at_boot = fake_port_stats(fp)->baud;
    h->bytes_at_boot = fake_port_stats(fp)->bytes_in;
    for (size_t i = 0; i < h->n_script; i++) {
        const struct piece *pc = &h->script[i];
        fake_port_send_raw(fp, (const uint8_t *)pc->text, pc->len ? pc->len : strlen(pc->text),
                           pc->delay_ms);
    }
    if (h->repl_answer != NULL)
        uv_timer_start(&h->repl_timer, on_repl_tick, REPL_TICK, REPL_TICK);
}

/* ---- The session's side ---- */

static void on_phase(struct session *s, enum session_phase phase, void *arg)
{
    struct harness *h = arg;

    if (h->n_phases < (int)(sizeof(h->phases) / sizeof(h->phases[0])))
        h->phases[h->n_phases++] = phase;
    if (phase == SESSION_PHASE_BOOT && h->interrupt_in_boot)
        session_interrupt(s);
}

static void on_note(struct session *s, const char *what, const char *text, void *arg)
{
    struct harness *h = arg;

    (void)s;
    if (strstr(text, "boot check skipped") != NULL)
        h->skip_notes++;
    if (strcmp(what, "boot") == 0)
        h->boot_notes++;
}

static void on_done(struct session *s, void *arg)
{
    struct harness *h = arg;

    assert_ptr_equal(s, h->s);
    h->done_calls++;
}

static int get_payload(struct session *s, const struct profile *p, size_t i,
                       const struct chip *chip, const struct image_flash_params *params,
                       int compressed, const struct session_payload **out, struct es_err *err,
                       void *arg)
{
    (void)s, (void)p, (void)i, (void)chip, (void)params, (void)compressed, (void)out, (void)arg;
    return es_fail(err, ES_INVALID_ARG, "verify: none reads no image");
}

static const struct session_callbacks callbacks = {on_phase, on_note, on_done, get_payload};

static double test_timeout_scale(void)
{
    const char *m = getenv("ESPSTATION_TIMEOUT_MULTIPLIER");
    double k = m != NULL ? atof(m) : 1.0;

    return 0.05 * (k >= 1.0 ? k : 1.0);
}

static regex_t compile(const char *pattern)
{
    regex_t re;

    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
    return re;
}

static char *micropython_expect[] = {"MicroPython v1\\.", ">>> "};

/* A board with the shipped profiles' check: banner, prompt, print(6*7) answered with 42. */
static struct harness *harness_new(void)
{
    struct harness *h = calloc(1, sizeof(*h));
    const struct chip *chip = chip_by_model(CHIP_ESP32S3);
    static int n_fakes;

    assert_non_null(h);
    snprintf(h->port_name, sizeof(h->port_name), "boot%d", n_fakes++);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    h->fp = fake_port_new(&h->loop, h->port_name);
    assert_non_null(h->fp);
    fake_port_on_frame(h->fp, on_frame, h);
    fake_port_on_lines(h->fp, on_lines, h);
    assert_int_equal(uv_timer_init(&h->loop, &h->repl_timer), 0);
    h->repl_timer_open = 1;
    h->regs[0][0] = CHIP_MAGIC_REG;
    h->regs[0][1] = chip->magic[0];
    h->regs[1][0] = chip->info_regs[0];
    h->regs[1][1] = MAC_LO;
    h->regs[2][0] = chip->info_regs[1];
    h->regs[2][1] = MAC_HI;
    h->n_regs = 3;

    h->bc.baud = BOOT_BAUD;
    h->bc.timeout_ms = 4000;
    h->bc.expect = micropython_expect;
    h->bc.n_expect = 2;
    h->bc.expect_re = calloc(2, sizeof(regex_t));
    assert_non_null(h->bc.expect_re);
    h->bc.expect_re[0] = compile(micropython_expect[0]);
    h->bc.expect_re[1] = compile(micropython_expect[1]);
    h->bc.send = "print(6*7)\r\n";
    h->bc.send_len = 12;
    h->bc.reply = "42";
    h->bc.reply_re = compile("42");
    h->repl_answer = "print(6*7)\r\n42\r\n>>> ";
    h->repl_wants = 12;

    h->pimg.offset = 0x10000;
    h->pimg.file = (char *)"app.bin";
    h->profile.path = (char *)"test.yaml";
    h->profile.name = (char *)"test";
    h->profile.chip = chip;
    h->profile.baud = ROM_BAUD;
    h->profile.flash.mode = "keep";
    h->profile.flash.freq = "keep";
    h->profile.flash.size = "keep";
    h->profile.verify = PROFILE_VERIFY_NONE;
    h->profile.loader = PROFILE_LOADER_ROM;
    h->profile.reset_after = PROFILE_RESET_AFTER_HARD;
    h->profile.images = &h->pimg;
    h->profile.n_images = 1;
    h->profile.boot_check = &h->bc;
    h->profiles[0] = &h->profile;

    h->cfg.port = h->port_name;
    h->cfg.profiles = h->profiles;
    h->cfg.n_profiles = 1;
    h->cfg.stubs = h->stubs;
    h->cfg.mode = SESSION_VERIFY;
    h->cfg.timeout_scale = test_timeout_scale();
    h->cfg.open_port = fake_port_open;
    return h;
}

static void add_piece(struct harness *h, const char *text, size_t len, uint64_t delay_ms)
{
    assert_true(h->n_script < SCRIPT_MAX);
    h->script[h->n_script++] = (struct piece){text, len, delay_ms};
}

/* The MicroPython banner the way a UART hands it over: split in the middle of a word and of the
 * prompt, after the ESP32 ROM's boot text. */
static void add_micropython(struct harness *h)
{
    add_piece(h, "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13\r\n", 0, 1);
    add_piece(h, "Micro", 0, 3);
    add_piece(h,
              "Python v1.22.0 on 2024-01-01; ESP32 module with ESP32\r\nType \"help()\" for "
              "more information.\r\n>",
              0, 5);
    add_piece(h, ">> ", 0, 7);
}

static const struct report_device *harness_run(struct harness *h)
{
    struct es_err err;

    assert_int_equal(session_new(&h->loop, &h->cfg, &callbacks, h, &h->s, &err), 0);
    session_start(h->s);
    /* The REPL's timer keeps the loop alive: run until the session is done, then close it. */
    while (h->done_calls == 0)
        assert_true(uv_run(&h->loop, UV_RUN_ONCE) >= 0);
    uv_close((uv_handle_t *)&h->repl_timer, NULL);
    h->repl_timer_open = 0;
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(h->done_calls, 1);
    assert_int_equal(fake_port_is_open(h->fp), 0);
    return session_report(h->s);
}

static void harness_free(struct harness *h)
{
    session_free(h->s);
    fake_port_free(h->fp);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    regfree(&h->bc.expect_re[0]);
    regfree(&h->bc.expect_re[1]);
    regfree(&h->bc.reply_re);
    free(h->bc.expect_re);
    free(h);
}

static void assert_printable(const char *s)
{
    for (; *s != '\0'; s++)
        assert_true((*s >= 0x20 && *s < 0x7f) || *s == '\n' || *s == '\t');
}

/* ---- Tests ---- */

/* Banner and prompt in pieces, noise before them (an ESP8266 ROM at 74880 read at another rate,
 * with a NUL), then the REPL exchange: the board passes through phase boot, the port was switched
 * to boot_check.baud, send went out, and the report holds the log without the noise. */
static void test_boot_pass(void **state)
{
    static const char noise[] = {'\xff', '\x00', '\x8c', 'r', '\x03', '\xfe', '\n'};
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    add_piece(h, noise, sizeof(noise), 1);
    add_micropython(h);
    rep = harness_run(h);
    assert_string_equal(rep->error.msg, "");
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(h->phases[h->n_phases - 3], SESSION_PHASE_RUN);
    assert_int_equal(h->phases[h->n_phases - 2], SESSION_PHASE_BOOT);
    assert_int_equal(h->phases[h->n_phases - 1], SESSION_PHASE_DONE);
    assert_int_equal(h->boots, 1);
    assert_int_equal(h->baud_at_boot, BOOT_BAUD);
    assert_int_equal(fake_port_stats(h->fp)->baud, BOOT_BAUD);
    assert_int_equal(fake_port_stats(h->fp)->bytes_in, h->bytes_at_boot + 12); /* send */
    assert_true(rep->boot.ran);
    assert_true(rep->boot.passed);
    assert_int_equal(rep->boot.baud, BOOT_BAUD);
    assert_int_equal(rep->boot.n_matched, 3);
    assert_string_equal(rep->boot.matched[0], "MicroPython v1\\.");
    assert_string_equal(rep->boot.matched[1], ">>> ");
    assert_string_equal(rep->boot.matched[2], "42");
    assert_int_equal(h->boot_notes, 4); /* three patterns seen, then passed */
    assert_non_null(strstr(rep->boot.log, "r\n"));
    assert_non_null(strstr(rep->boot.log, "MicroPython v1.22.0 on 2024-01-01; ESP32 module"));
    assert_non_null(strstr(rep->boot.log, "\n>>> print(6*7)\n42\n>>> "));
    assert_null(strstr(rep->boot.log, "[...]"));
    assert_printable(rep->boot.log);
    harness_free(h);
}

/* A firmware that crashes and reboots, over and over: the banner never comes. The board fails
 * in phase boot with code boot_check, a message naming the pattern and quoting the crash. */
static void test_boot_loop_fails(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    for (int i = 0; i < 4; i++)
        add_piece(h,
                  "rst:0xc (SW_CPU_RESET),boot:0x13\r\nGuru Meditation Error: Core  0 panic'ed "
                  "(LoadProhibited)\r\nRebooting...\r\n",
                  0, 2 + 10 * (uint64_t)i);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_string_equal(rep->error_phase, "boot");
    assert_int_equal(rep->error.code, ES_BOOT_CHECK);
    assert_non_null(
        strstr(rep->error.msg, ", boot: expect[0] /MicroPython v1\\./ not seen within "));
    assert_non_null(strstr(rep->error.msg, "at 74880 baud (0 of 2 patterns seen); the board "
                                           "printed: \"[...]"));
    assert_non_null(strstr(rep->error.msg, "panic'ed (LoadProhibited)\\nRebooting...\\n\""));
    assert_true(rep->boot.ran);
    assert_false(rep->boot.passed);
    assert_int_equal(rep->boot.n_matched, 0);
    assert_non_null(strstr(rep->boot.log, "Guru Meditation Error"));
    assert_int_equal(fake_port_stats(h->fp)->bytes_in, h->bytes_at_boot); /* nothing sent */
    harness_free(h);
}

/* Silence after the reset (no-banner firmware): the message says nothing readable came. */
static void test_no_banner_fails(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    add_piece(h, "\xff\xfe", 2, 1);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_BOOT_CHECK);
    assert_non_null(strstr(rep->error.msg, "expect[0] /MicroPython v1\\./ not seen within"));
    assert_non_null(strstr(rep->error.msg, "the board printed nothing readable (2 bytes); check "
                                           "boot_check.baud"));
    assert_string_equal(rep->boot.log, "");
    harness_free(h);
}

/* The patterns count only in order: a prompt before the banner is not the prompt after it. */
static void test_patterns_in_order(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    add_piece(h, ">>> \r\nMicroPython v1.9\r\n", 0, 1);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_non_null(strstr(rep->error.msg, "expect[1] />>> / not seen"));
    assert_non_null(strstr(rep->error.msg, "(1 of 2 patterns seen)"));
    assert_int_equal(rep->boot.n_matched, 1);
    harness_free(h);
}

/* The reply is looked for only after send: a "42" in the banner does not count, and a REPL that
 * never answers fails the board naming the reply. */
static void test_reply_after_send(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    add_piece(h, "MicroPython v1.42 build 42\r\n>>> ", 0, 1);
    h->repl_answer = "print(6*7)\r\nNameError\r\n>>> ";
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_non_null(strstr(rep->error.msg, "reply /42/ to what was sent not seen"));
    assert_non_null(strstr(rep->error.msg, "NameError"));
    assert_int_equal(rep->boot.n_matched, 2);
    assert_int_equal(fake_port_stats(h->fp)->bytes_in, h->bytes_at_boot + 12);
    harness_free(h);
}

/* A chatty firmware: the report keeps the newest 4 KiB, marked as cut, and the check still
 * finds the banner that came after the flood. */
static void test_log_keeps_newest(void **state)
{
    static char flood[10000];
    struct harness *h = harness_new();
    const struct report_device *rep;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(flood); i++)
        flood[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
    add_piece(h, flood, sizeof(flood), 1);
    add_micropython(h);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    len = strlen(rep->boot.log);
    assert_true(len <= REPORT_BOOT_LOG_MAX + 5);
    assert_true(len > REPORT_BOOT_LOG_MAX - 64);
    assert_true(strncmp(rep->boot.log, "[...]", 5) == 0);
    assert_string_equal(rep->boot.log + len - 8, "\n42\n>>> ");
    harness_free(h);
}

/* A port without modem lines cannot start the firmware: the check is skipped with a note, the
 * board passes as before and the report's boot stays null. */
static void test_no_reset_lines_skips(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    fake_port_set_can_reset(h->fp, 0);
    add_micropython(h);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(h->skip_notes, 1);
    assert_int_equal(h->boots, 0);
    assert_false(rep->boot.ran);
    harness_free(h);
}

/* Stopped during the boot check: interrupted, and the report says the check did not pass. */
static void test_interrupt_in_boot(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->interrupt_in_boot = 1;
    add_micropython(h);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_INTERRUPTED);
    assert_true(rep->boot.ran);
    assert_false(rep->boot.passed);
    harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boot_pass),
        cmocka_unit_test(test_boot_loop_fails),
        cmocka_unit_test(test_no_banner_fails),
        cmocka_unit_test(test_patterns_in_order),
        cmocka_unit_test(test_reply_after_send),
        cmocka_unit_test(test_log_keeps_newest),
        cmocka_unit_test(test_no_reset_lines_skips),
        cmocka_unit_test(test_interrupt_in_boot),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
