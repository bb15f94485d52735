/* A board that does not answer SYNC (src/session/session_wait.c), through the scripted board of
 * session_harness.h: what it prints instead (the ROM's boot log, its firmware's text, bytes at
 * another rate) is named in the no_sync message, and with session_config.wait_for_download the
 * session keeps asking at a low duty cycle, tells the operator once what to do, and carries on
 * when the board answers, or ends when the port goes away or the station stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four headers it needs */

#include <stdlib.h>
#include <string.h>

#include "es/container_of.h"
#include "es/rom.h"
#include "session_harness.h"

#define ESP32_FLASH_BOOT                                                                           \
    "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"  \
    "configsip: 0, SPIWP:0xee\r\nmode:DIO, clock div:2\r\nload:0x3fff0030,len:4\r\n"               \
    "entry 0x40080000\r\n"
#define ESP32_DOWNLOAD                                                                             \
    "ets Jun  8 2016 00:22:57\r\n\r\n"                                                             \
    "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"            \
    "waiting for download\r\n"
#define ESP8266_FLASH_BOOT                                                                         \
    "\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,7)\r\n\r\nload 0x4010f000\r\n"
#define APP_LINE          "I (1234) app: sensor reading 21.5 C\r\n"
#define PRINT_EVERY_MS    100 /* board time between two things the board prints */
#define OPERATOR_AFTER_MS 3000
#define WAIT_ROUNDS_MIN   4 /* SYNCs the board ignores after the hint, before BOOT is pressed */

/* What the board prints instead of answering, and what the operator does. */
struct wait_test {
    struct harness *h;
    uv_timer_t printer, op_timer;
    int printer_open, op_timer_open;
    const char *first; /* printed once, at the first tick (e.g. the ROM's boot log) */
    const char *again; /* printed at every later tick (the app's lines); NULL: nothing */
    int noise;         /* print bytes at another rate instead of text */
    unsigned noise_seed;
    int ticks;

    /* What the session said. */
    int wait_notes, hint_notes;
    char hint[512];
    int snapshot_hint_matched; /* session_snapshot().hint was the noted hint at that moment */
    int snapshot_hint_at_wait; /* session_snapshot().hint was non-NULL at the first "wait" */

    /* The operator's plan: press BOOT (the board answers), unplug, or stop the station. */
    enum { PRESS_BOOT, UNPLUG, INTERRUPT, AUTO_RESET } plan;
    int syncs_at_hint;
    uint64_t wait_start_ms, pressed_ms;
    int acted, operator_ticks, gave_up;

    /* The host's requests while waiting (between the wait note and the operator's act). */
    uint64_t last_reset_ms;
    int resets_in_wait, syncs_in_wait;
    int resets_too_close; /* two resets less than WAIT_RESET_EVERY_MS apart */
    int resets_at_hint, syncs_at_press;
};

static uint64_t board_ms(const struct harness *h, uint64_t ms)
{
    uint64_t v = (uint64_t)((double)ms * h->cfg.timeout_scale);

    return v < 1 ? 1 : v;
}

static void close_timer(uv_timer_t *t, int *open)
{
    if (!*open)
        return;
    *open = 0;
    uv_close((uv_handle_t *)t, NULL);
}

static void on_print(uv_timer_t *t)
{
    struct wait_test *w = container_of(t, struct wait_test, printer);
    struct board *b = &w->h->b;

    /* A session that ended leaves no board to print; 10,000 ticks is a test gone wrong. */
    if (w->h->done_calls > 0 || w->acted || ++w->ticks > 10000) {
        close_timer(&w->printer, &w->printer_open);
        return;
    }
    if (w->noise) {
        uint8_t junk[48];

        /* 74880-baud text read at 115200: mostly high bytes, the odd 0xC0 (protocol doc §13.3). */
        for (size_t i = 0; i < sizeof(junk); i++) {
            w->noise_seed = w->noise_seed * 1103515245u + 12345u;
            junk[i] = (uint8_t)(0x80u | (w->noise_seed >> 16));
        }
        fake_port_send_raw(b->fp, junk, sizeof(junk), 0);
        return;
    }
    if (w->ticks == 1 && w->first != NULL)
        fake_port_send_raw(b->fp, (const uint8_t *)w->first, strlen(w->first), 0);
    else if (w->again != NULL)
        fake_port_send_raw(b->fp, (const uint8_t *)w->again, strlen(w->again), 0);
}

/* Every 3 s of board time after the hint (or the start of the wait): once the board has
 * ignored enough SYNCs, the operator acts. Counting SYNCs, not time, keeps the test
 * independent of how fast this host is. */
static void on_operator(uv_timer_t *t)
{
    struct wait_test *w = container_of(t, struct wait_test, op_timer);
    struct harness *h = w->h;
    struct board *b = &h->b;

    if (h->done_calls > 0) {
        close_timer(&w->op_timer, &w->op_timer_open);
        return;
    }
    if (w->plan == AUTO_RESET) {
        /* The board has the circuit: the session's own reset does it, or the test gives up. */
        if (++w->operator_ticks < 20)
            return;
        w->gave_up = 1;
        close_timer(&w->op_timer, &w->op_timer_open);
        session_interrupt(h->s);
        return;
    }
    /* Low-duty SYNCs, not those of a reset round. A session that sends none would keep the
     * test waiting: the operator gives up after a while, and the test fails. */
    if (b->ops[ROM_OP_SYNC].seen - w->syncs_at_hint - 5 * (w->resets_in_wait - w->resets_at_hint) <
            WAIT_ROUNDS_MIN &&
        ++w->operator_ticks < 20)
        return;
    w->gave_up = w->operator_ticks >= 20;
    w->acted = 1;
    w->pressed_ms = uv_now(&h->loop);
    w->syncs_at_press = b->ops[ROM_OP_SYNC].seen;
    close_timer(&w->op_timer, &w->op_timer_open);
    close_timer(&w->printer, &w->printer_open);
    switch (w->plan) {
    case PRESS_BOOT:
        /* BOOT held, EN tapped: the ROM prints its download banner and answers SYNC. */
        fake_port_send_raw(b->fp, (const uint8_t *)ESP32_DOWNLOAD, strlen(ESP32_DOWNLOAD), 0);
        b->ops[ROM_OP_SYNC].silent = 0;
        break;
    case UNPLUG: fake_port_fail(b->fp, ES_PORT_CLOSED, 0); break;
    case INTERRUPT: session_interrupt(h->s); break;
    case AUTO_RESET: break;
    }
}

static void start_operator(struct wait_test *w)
{
    if (w->op_timer_open)
        return;
    w->syncs_at_hint = w->h->b.ops[ROM_OP_SYNC].seen;
    w->resets_at_hint = w->resets_in_wait;
    uv_timer_init(&w->h->loop, &w->op_timer);
    w->op_timer_open = 1;
    uv_timer_start(&w->op_timer, on_operator, board_ms(w->h, OPERATOR_AFTER_MS),
                   board_ms(w->h, OPERATOR_AFTER_MS));
}

static void on_wait_note(struct harness *h, const char *what, const char *text)
{
    struct wait_test *w = h->user;
    struct session_snapshot snap;

    session_snapshot(h->s, &snap);
    if (strcmp(what, "wait") == 0) {
        if (w->wait_notes++ == 0) {
            w->wait_start_ms = uv_now(&h->loop);
            w->last_reset_ms = w->wait_start_ms; /* the waiting began after a reset round */
            w->snapshot_hint_at_wait = snap.hint != NULL;
            if (w->first == NULL && !w->noise)
                start_operator(w); /* nothing printed: no hint will come */
        }
        return;
    }
    if (strcmp(what, "hint") != 0)
        return;
    w->hint_notes++;
    strncpy(w->hint, text, sizeof(w->hint) - 1);
    w->snapshot_hint_matched = snap.hint != NULL && strcmp(snap.hint, text) == 0;
    start_operator(w);
}

static int waiting(const struct wait_test *w)
{
    return w->wait_notes > 0 && !w->acted;
}

/* The board has no auto-reset circuit: DTR/RTS change nothing. The test only counts the host's
 * resets (RTS asserted with DTR released pulls EN low on boards that have the circuit). */
static void on_wait_lines(struct fake_port *fp, int dtr, int rts, void *arg)
{
    struct wait_test *w = arg;
    uint64_t now = uv_now(&w->h->loop);

    (void)fp;
    if (!(rts && !dtr) || !waiting(w))
        return;
    if (now - w->last_reset_ms < board_ms(w->h, 5000))
        w->resets_too_close++;
    w->last_reset_ms = now;
    w->resets_in_wait++;
    if (w->plan == AUTO_RESET) {
        w->h->b.ops[ROM_OP_SYNC].silent = 0; /* reset into download mode: it answers now */
        w->acted = 1;                        /* the wait is over: later resets do not count */
    }
}

static void on_wait_frame(struct fake_port *fp, const uint8_t *frame, size_t len, uint32_t baud,
                          void *arg)
{
    struct wait_test *w = arg;

    if (waiting(w) && len >= 2 && frame[1] == ROM_OP_SYNC)
        w->syncs_in_wait++;
    board_on_frame(fp, frame, len, baud, &w->h->b);
}

/* A board without auto-reset (its ROM ignores every SYNC until the operator's BOOT and EN/RST)
 * that prints first, then only answers what the plan allows. */
static struct wait_test *wait_test_new(int wait, const char *first, const char *again, int noise)
{
    struct wait_test *w = calloc(1, sizeof(*w));

    assert_non_null(w);
    w->h = harness_new();
    w->h->user = w;
    w->h->note_hook = on_wait_note;
    w->h->cfg.wait_for_download = wait;
    w->h->profile.retries = 2;
    w->h->b.ops[ROM_OP_SYNC].silent = -1;
    /* Board time runs 4 times slower than in test_session.c, so that the low-duty pause
     * (WAIT_SYNC_EVERY_MS) is longer than the pause between the SYNCs of a reset round. */
    w->h->cfg.timeout_scale *= 4;
    fake_port_on_lines(w->h->b.fp, on_wait_lines, w);
    fake_port_on_frame(w->h->b.fp, on_wait_frame, w);
    w->first = first;
    w->again = again;
    w->noise = noise;
    w->noise_seed = 7;
    uv_timer_init(&w->h->loop, &w->printer);
    w->printer_open = 1;
    uv_timer_start(&w->printer, on_print, board_ms(w->h, PRINT_EVERY_MS),
                   board_ms(w->h, PRINT_EVERY_MS));
    return w;
}

static void wait_test_free(struct wait_test *w)
{
    assert_false(w->printer_open);
    assert_false(w->op_timer_open);
    harness_free(w->h);
    free(w);
}

/* The SYNCs and resets while waiting stay within the low duty cycle: resets at least
 * WAIT_RESET_EVERY_MS apart, and besides the SYNCs of each reset round, one SYNC per
 * WAIT_SYNC_EVERY_MS at most. Timers never fire early, so these bounds hold on any host. */
static void assert_low_duty(const struct wait_test *w)
{
    uint64_t elapsed = w->pressed_ms - w->wait_start_ms;

    assert_true(w->acted);
    assert_false(w->gave_up);
    assert_int_equal(w->resets_too_close, 0);
    assert_true(w->syncs_in_wait <=
                (int)(elapsed / board_ms(w->h, 500)) + 1 + 5 * w->resets_in_wait);
    assert_true(w->syncs_in_wait >= WAIT_ROUNDS_MIN);
}

/* The board runs its firmware: the ROM's flash-boot log, then the app's lines. The session
 * tells the operator once, over many ignored SYNCs, keeps asking, and flashes the board once
 * BOOT and EN/RST put it in download mode. */
static void test_wait_boot_text_then_sync(void **state)
{
    struct wait_test *w = wait_test_new(1, ESP32_FLASH_BOOT, APP_LINE, 0);
    const struct report_device *rep;
    struct session_snapshot snap;

    (void)state;
    rep = harness_run(w->h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_flash_holds_image(w->h);
    assert_int_equal(w->hint_notes, 1);
    assert_non_null(strstr(w->hint, "hold BOOT and tap EN/RST"));
    assert_non_null(strstr(w->hint, "boot:0x13 (SPI_FAST_FLASH_BOOT)"));
    assert_true(w->snapshot_hint_matched);
    assert_int_equal(w->wait_notes, 2); /* the wait began, and ended when the board answered */
    /* It kept asking well past the profile's attempts (2 resets of 5 SYNCs). */
    assert_true(w->h->b.ops[ROM_OP_SYNC].seen >= 2 * 5 + WAIT_ROUNDS_MIN + 1);
    assert_low_duty(w);
    /* The phase stayed "sync" while waiting: no journal line per low-duty round. */
    assert_int_equal(w->h->phase_calls[SESSION_PHASE_RESET], 2);
    assert_int_equal(w->h->phase_calls[SESSION_PHASE_SYNC], 2);
    session_snapshot(w->h->s, &snap);
    assert_null(snap.hint);
    wait_test_free(w);
}

/* An ESP8266 prints its boot log at 74880 baud: noise at 115200. The hint says so; the board is
 * then unplugged while the session waits, which ends it as port_closed in phase sync. */
static void test_wait_noise_then_unplugged(void **state)
{
    struct wait_test *w = wait_test_new(1, NULL, NULL, 1);
    const struct report_device *rep;

    (void)state;
    w->plan = UNPLUG;
    rep = harness_run(w->h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_PORT_CLOSED);
    assert_string_equal(rep->error_phase, "sync");
    assert_int_equal(w->hint_notes, 1);
    assert_non_null(strstr(w->hint, "74880"));
    assert_non_null(strstr(w->hint, "hold BOOT and tap EN/RST"));
    assert_int_equal(w->wait_notes, 1);
    assert_low_duty(w);
    wait_test_free(w);
}

/* A silent board (not powered, or a board that prints nothing): no hint, and the station's stop
 * ends the wait as interrupted. */
static void test_wait_interrupted(void **state)
{
    struct wait_test *w = wait_test_new(1, NULL, NULL, 0);
    const struct report_device *rep;

    (void)state;
    w->plan = INTERRUPT;
    rep = harness_run(w->h);
    assert_int_equal(rep->result, REPORT_INTERRUPTED);
    assert_int_equal(rep->error.code, ES_INTERRUPTED);
    assert_string_equal(rep->error_phase, "sync");
    assert_int_equal(w->hint_notes, 0);
    assert_int_equal(w->wait_notes, 1);
    assert_false(w->snapshot_hint_at_wait);
    assert_low_duty(w);
    /* Nothing is sent once interrupted. */
    assert_int_equal(w->h->b.ops[ROM_OP_SYNC].seen, w->syncs_at_press);
    wait_test_free(w);
}

/* A board with auto-reset that came on the adapter running its firmware (it answers nothing
 * until reset; here it was put there after the profile's attempts): the session's occasional
 * reset while waiting puts it in download mode, and it is flashed. */
static void test_wait_reset_reaches_auto_reset_board(void **state)
{
    struct wait_test *w = wait_test_new(1, NULL, NULL, 0);
    const struct report_device *rep;

    (void)state;
    w->plan = AUTO_RESET;
    rep = harness_run(w->h);
    assert_false(w->gave_up);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_flash_holds_image(w->h);
    assert_int_equal(w->resets_in_wait, 1);
    assert_int_equal(w->resets_too_close, 0);
    assert_int_equal(w->wait_notes, 2);
    wait_test_free(w);
}

/* Without wait_for_download the board fails as before, after the profile's attempts, and the
 * no_sync message says what it printed. */
struct no_sync_case {
    const char *first, *again;
    int noise;
    const char *want[2]; /* in the message; NULL: nothing more than before */
};

static const struct no_sync_case no_sync_cases[] = {
    {NULL, NULL, 0, {NULL, NULL}},
    {ESP32_FLASH_BOOT,
     APP_LINE,
     0,
     {"boot:0x13 (SPI_FAST_FLASH_BOOT)", "hold BOOT and tap EN/RST"}},
    {NULL, APP_LINE, 0, {"its firmware is running", "hold BOOT and tap EN/RST"}},
    {ESP8266_FLASH_BOOT, NULL, 0, {"boot mode:(3,7)", "hold BOOT and tap EN/RST"}},
    {NULL, NULL, 1, {"74880", "hold BOOT and tap EN/RST"}},
    {ESP32_DOWNLOAD, NULL, 0, {"waits for download", "TX"}},
};

static void test_no_sync_says_what_was_seen(void **state)
{
    const struct no_sync_case *c = *state;
    struct wait_test *w = wait_test_new(0, c->first, c->again, c->noise);
    const struct report_device *rep;

    rep = harness_run(w->h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_NO_SYNC);
    assert_string_equal(rep->error_phase, "sync");
    assert_int_equal(w->h->b.ops[ROM_OP_SYNC].seen, 2 * 5);
    assert_int_equal(w->wait_notes, 0);
    assert_int_equal(w->hint_notes, 0);
    if (c->want[0] == NULL) {
        /* Nothing seen: the message ends where it always did. */
        assert_non_null(strstr(rep->error.msg, "no reply to SYNC after 2 attempts of 5 tries"));
        assert_null(strchr(strstr(rep->error.msg, "no reply"), ';'));
    }
    for (int i = 0; i < 2 && c->want[i] != NULL; i++)
        assert_non_null(strstr(rep->error.msg, c->want[i]));
    wait_test_free(w);
}

#define NO_SYNC_TEST(i)                                                                            \
    cmocka_unit_test_prestate(test_no_sync_says_what_was_seen, (void *)&no_sync_cases[i])

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_boot_text_then_sync),
        cmocka_unit_test(test_wait_noise_then_unplugged),
        cmocka_unit_test(test_wait_interrupted),
        cmocka_unit_test(test_wait_reset_reaches_auto_reset_board),
        NO_SYNC_TEST(0),
        NO_SYNC_TEST(1),
        NO_SYNC_TEST(2),
        NO_SYNC_TEST(3),
        NO_SYNC_TEST(4),
        NO_SYNC_TEST(5),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
