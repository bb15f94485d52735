/* struct es_err: codes, names, hints and message formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "es/err.h"

static void test_fail_fills_and_returns_negative_code(void **state)
{
    struct es_err err;
    (void)state;

    assert_int_equal(es_fail(&err, ES_NO_SYNC, "slot %d: no reply", 7), -(int)ES_NO_SYNC);
    assert_int_equal(err.code, ES_NO_SYNC);
    assert_int_equal(err.rom_status, -1);
    assert_string_equal(err.msg, "slot 7: no reply");
}

static void test_fail_accepts_null(void **state)
{
    (void)state;
    assert_int_equal(es_fail(NULL, ES_IO, "x"), -(int)ES_IO);
}

static void test_prefix_keeps_code(void **state)
{
    struct es_err err;
    (void)state;

    es_fail(&err, ES_TIMEOUT, "no reply to SYNC");
    assert_int_equal(es_err_prefix(&err, "slot %d (%s)", 3, "/dev/ttyUSB2"), -(int)ES_TIMEOUT);
    assert_string_equal(err.msg, "slot 3 (/dev/ttyUSB2): no reply to SYNC");
    assert_int_equal(err.code, ES_TIMEOUT);
}

static void test_prefix_truncates_safely(void **state)
{
    struct es_err err;
    char longmsg[400];
    (void)state;

    memset(longmsg, 'a', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    es_fail(&err, ES_IO, "%s", longmsg);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    es_err_prefix(&err, "p");
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    assert_memory_equal(err.msg, "p: aaa", 6);
}

static void test_names_are_stable_and_unique(void **state)
{
    (void)state;
    assert_string_equal(es_code_name(ES_OK), "ok");
    assert_string_equal(es_code_name(ES_NO_SYNC), "no_sync");
    assert_string_equal(es_code_name(ES_VERIFY_MISMATCH), "verify_mismatch");
    assert_string_equal(es_code_name((enum es_code)9999), "unknown");
    for (int i = 0; i < ES_CODE_COUNT; i++) {
        assert_non_null(es_code_hint((enum es_code)i));
        for (int j = i + 1; j < ES_CODE_COUNT; j++)
            assert_string_not_equal(es_code_name((enum es_code)i), es_code_name((enum es_code)j));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_fills_and_returns_negative_code),
        cmocka_unit_test(test_fail_accepts_null),
        cmocka_unit_test(test_prefix_keeps_code),
        cmocka_unit_test(test_prefix_truncates_safely),
        cmocka_unit_test(test_names_are_stable_and_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
