/* es/ui.h's struct ui_view: which events print a line in which mode, and that the station's
 * recorded verdict wins over the sampled one in the summary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "es/ui.h"

static size_t slurp(FILE *f, char *out, size_t cap)
{
    size_t n;

    rewind(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    return n;
}

static void test_lines_mode_prints_events(void **state)
{
    struct ui_view v;
    FILE *f = tmpfile();
    char text[4096];

    (void)state;
    assert_non_null(f);
    assert_int_equal(ui_view_init(&v, f, UI_VIEW_LINES, 2, 2), 0);
    ui_view_slot(&v, 0, 0, "/dev/ttyUSB0");
    ui_view_slot(&v, 1, 1, "/dev/ttyUSB1");
    assert_string_equal(v.rows[1].phase, "-");
    ui_view_phase(&v, 1, "sync");
    ui_view_note(&v, 0, "chip", "ESP32");
    ui_view_done(&v, 1, "pass", "24:0a:c4:00:00:01");
    ui_view_draw(&v, 1.0); /* nothing: not live */
    slurp(f, text, sizeof(text));
    assert_non_null(strstr(text, " slot 1 /dev/ttyUSB1: phase: sync\n"));
    assert_non_null(strstr(text, " slot 0 /dev/ttyUSB0: chip: ESP32\n"));
    assert_non_null(strstr(text, " slot 1 /dev/ttyUSB1: pass: 24:0a:c4:00:00:01\n"));
    assert_null(strstr(text, "\033[H"));
    assert_string_equal(v.rows[1].phase, "sync");
    ui_view_close(&v);
    fclose(f);
}

/* The fleet database's line: under the live table on every redraw; as a line only when the
 * station says it changed (the connection's state), not for every count. */
static void test_publish_line(void **state)
{
    struct ui_view live, lines;
    FILE *f = tmpfile(), *g = tmpfile();
    char text[8192];

    (void)state;
    assert_non_null(f);
    assert_non_null(g);
    assert_int_equal(ui_view_init(&live, f, UI_VIEW_LIVE, 1, 1), 0);
    assert_int_equal(ui_view_init(&lines, g, UI_VIEW_LINES, 1, 1), 0);
    ui_view_slot(&live, 0, 0, "/dev/ttyUSB0");
    ui_view_draw(&live, 1.0);
    slurp(f, text, sizeof(text));
    assert_null(strstr(text, "waiting"));
    ui_view_publish(&live, "12 reports waiting for the database st@db/factory (down)", 1);
    ui_view_draw(&live, 1.5);
    slurp(f, text, sizeof(text));
    assert_non_null(strstr(text, "running\n12 reports waiting for the database st@db/factory "
                                 "(down)\n"));
    ui_view_publish(&lines, "1 report waiting for the database st@db/factory (down)", 1);
    ui_view_publish(&lines, "2 reports waiting for the database st@db/factory (down)", 0);
    slurp(g, text, sizeof(text));
    assert_string_equal(text, "publish: 1 report waiting for the database st@db/factory (down)\n");
    ui_view_close(&live);
    ui_view_close(&lines);
    fclose(f);
    fclose(g);
}

static void test_quiet_mode_prints_nothing(void **state)
{
    struct ui_view v;
    FILE *f = tmpfile();
    char text[64];

    (void)state;
    assert_non_null(f);
    assert_int_equal(ui_view_init(&v, f, UI_VIEW_QUIET, 1, 1), 0);
    ui_view_slot(&v, 0, 0, "p");
    ui_view_phase(&v, 0, "sync");
    ui_view_note(&v, 0, "chip", "ESP32");
    ui_view_done(&v, 0, "pass", "x");
    ui_view_draw(&v, 1.0);
    ui_view_summary(&v, 1.0);
    assert_int_equal(slurp(f, text, sizeof(text)), 0);
    ui_view_close(&v);
    fclose(f);
}

/* A board that passed by its session but failed as a duplicate MAC is a failure in the summary. */
static void test_verdict_wins_in_summary(void **state)
{
    struct ui_view v;
    struct ui_row live;
    FILE *f = tmpfile();
    char text[4096];

    (void)state;
    assert_non_null(f);
    assert_int_equal(ui_view_init(&v, f, UI_VIEW_LIVE, 2, 2), 0);
    ui_view_slot(&v, 0, 0, "/dev/a");
    ui_view_slot(&v, 1, 1, "/dev/b");
    memset(&live, 0, sizeof(live));
    live.slot = 99; /* ignored: the view keeps its slot and port */
    live.port = "ignored";
    live.phase = "done";
    live.finished = 1;
    live.result = "pass";
    ui_view_progress(&v, 0, &live);
    ui_view_progress(&v, 1, &live);
    ui_view_verdict(&v, 1, "fail", "MAC 24:0a:c4:00:00:01 is also the MAC of slot 0");
    ui_view_draw(&v, 2.0);
    ui_view_summary(&v, 2.0);
    slurp(f, text, sizeof(text));
    assert_non_null(strstr(text, "\033[H\033[J"));
    assert_non_null(strstr(text, "1 of 2 boards passed"));
    assert_non_null(strstr(text, "  slot 1 /dev/b: fail: MAC 24:0a:c4:00:00:01 is also"));
    assert_null(strstr(text, "ignored"));
    assert_int_equal(v.rows[0].slot, 0);
    ui_view_close(&v);
    fclose(f);
}

/* A line: a slot added later, its status said as a line, a verdict cleared when the board
 * leaves, and the totals as the footer of the table and of the summary. */
static void test_continuous_rows_and_totals(void **state)
{
    struct ui_view v;
    FILE *f = tmpfile();
    char text[4096];
    struct ui_totals t = {9, 1, 0, 360.0, 7.5};

    (void)state;
    assert_non_null(f);
    assert_int_equal(ui_view_init(&v, f, UI_VIEW_LINES, 1, 2), 0);
    assert_int_equal(ui_view_add(&v), 0);
    assert_int_equal(v.n, 2);
    assert_int_equal(ui_view_add(&v), -1); /* full */
    ui_view_slot(&v, 1, 1, "1-1.4");
    ui_view_verdict(&v, 1, "pass", NULL);
    ui_view_status(&v, 1, "already flashed at 14:20, remove it", 1);
    assert_string_equal(v.verdicts[1], "pass");
    ui_view_status(&v, 1, "waiting for a board", 0);
    assert_null(v.verdicts[1]);
    ui_view_totals(&v, &t);
    ui_view_summary(&v, 100.0);
    slurp(f, text, sizeof(text));
    assert_non_null(strstr(text, " slot 1 1-1.4: slot: already flashed at 14:20, remove it\n"));
    assert_non_null(strstr(text, " slot 1 1-1.4: slot: waiting for a board\n"));
    assert_non_null(strstr(text, "totals: 9 passed, 1 failed, yield 90.0%, 360 boards/h, 7.5 s per "
                                 "board\n"));
    assert_non_null(strstr(text, "line stopped after 100.0 s: 9 passed"));
    ui_view_close(&v);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_continuous_rows_and_totals),
        cmocka_unit_test(test_lines_mode_prints_events),
        cmocka_unit_test(test_publish_line),
        cmocka_unit_test(test_quiet_mode_prints_nothing),
        cmocka_unit_test(test_verdict_wins_in_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
