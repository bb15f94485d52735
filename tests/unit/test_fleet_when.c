/* es/fleet_db.h fleet_when_parse: the times `fleet --since/--until` accept, in a pinned time
 * zone (POSIX TZ strings, so no tz database is needed) and at a pinned "now". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "es/fleet_db.h"

/* 2026-12-04 15:30:00 UTC. */
#define NOW ((time_t)1796398200)

static time_t parse(const char *text)
{
    struct es_err err = {0};
    time_t t = 0;

    if (fleet_when_parse(text, NOW, &t, &err) < 0)
        fail_msg("'%s' refused: %s", text, err.msg);
    return t;
}

static void use_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void test_named_and_relative(void **state)
{
    (void)state;
    use_tz("UTC0");
    assert_int_equal(parse("now"), NOW);
    assert_int_equal(parse("today"), NOW - 15 * 3600 - 30 * 60);
    assert_int_equal(parse("yesterday"), NOW - 15 * 3600 - 30 * 60 - 86400);
    assert_int_equal(parse("-8h"), NOW - 8 * 3600);
    assert_int_equal(parse("-90m"), NOW - 90 * 60);
    assert_int_equal(parse("-2d"), NOW - 2 * 86400);
    assert_int_equal(parse("-1w"), NOW - 7 * 86400);
}

static void test_iso_local_and_utc(void **state)
{
    (void)state;
    use_tz("UTC0");
    assert_int_equal(parse("2026-12-04"), 1796342400);
    assert_int_equal(parse("2026-12-04T08:00"), 1796342400 + 8 * 3600);
    assert_int_equal(parse("2026-12-04 08:00:05"), 1796342400 + 8 * 3600 + 5);
    assert_int_equal(parse("2024-02-29"), 1709164800);
    /* Five hours west of Greenwich: local times are 5 h later in UTC, "Z" and offsets are not
     * local at all, and "today" is local midnight. */
    use_tz("EST5");
    assert_int_equal(parse("2026-12-04"), 1796342400 + 5 * 3600);
    assert_int_equal(parse("2026-12-04T08:00"), 1796342400 + 13 * 3600);
    assert_int_equal(parse("2026-12-04T08:00Z"), 1796342400 + 8 * 3600);
    assert_int_equal(parse("2026-12-04T08:00:00+01:00"), 1796342400 + 7 * 3600);
    assert_int_equal(parse("2026-12-04T08:00-02:30"), 1796342400 + 10 * 3600 + 30 * 60);
    assert_int_equal(parse("today"), 1796342400 + 5 * 3600);
    assert_int_equal(parse("1970-01-01T00:00Z"), 0);
    use_tz("UTC0");
}

static void test_refused_with_the_accepted_forms(void **state)
{
    static const char *const bad[] = {
        "",
        "soon",
        "Today",
        "-8",
        "-8x",
        "-h",
        "+8h",
        "-8hh",
        "2026-13-01",
        "2026-02-30",
        "2025-02-29",
        "2026-12-4",
        "2026-12-04T8:00",
        "2026-12-04T24:00",
        "2026-12-04T08:60",
        "2026-12-04T08:00:61",
        "2026-12-04T08:00+1",
        "2026-12-04x",
        "2026-12-04T08:00Zz",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct es_err err = {0};
        time_t t = 42;

        assert_int_equal(fleet_when_parse(bad[i], NOW, &t, &err), -ES_USAGE);
        assert_int_equal(t, 42);
        assert_non_null(strstr(err.msg, "is not a time: give now, today, yesterday"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_and_relative),
        cmocka_unit_test(test_iso_local_and_utc),
        cmocka_unit_test(test_refused_with_the_accepted_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
