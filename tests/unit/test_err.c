/* struct es_err: codes, names, hints and message formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    static struct es_err err;
    static char longmsg[sizeof(err.msg) + 100];
    (void)state;

    memset(longmsg, 'a', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    es_fail(&err, ES_IO, "%s", longmsg);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    assert_string_equal(err.msg + sizeof(err.msg) - sizeof(ES_ERR_CUT_MARK), ES_ERR_CUT_MARK);
    es_err_prefix(&err, "p");
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    assert_memory_equal(err.msg, "p: aaa", 6);
    assert_string_equal(err.msg + sizeof(err.msg) - sizeof(ES_ERR_CUT_MARK), ES_ERR_CUT_MARK);
}

/* Issue 11 #14: a message naming a deep path keeps its end (the digest and the advice), and so
 * does a prefix naming a long port. */
static void test_long_messages_are_whole(void **state)
{
    static struct es_err err;
    static char path[4096], port[300], want[8192];
    const char *pin = "6f1c0000000000000000000000000000000000000000000000000000000000ff";
    (void)state;

    memset(path, 'd', sizeof(path) - 1);
    for (size_t i = 50; i < sizeof(path) - 1; i += 50)
        path[i] = '/';
    path[sizeof(path) - 1] = '\0';
    memset(port, 'p', sizeof(port) - 1);
    port[sizeof(port) - 1] = '\0';
    es_fail(&err, ES_IMAGE_HASH,
            "%s:7:13: app.bin has sha256 %s but the profile pins %s; fix the "
            "file or the pin",
            path, pin, pin);
    snprintf(want, sizeof(want),
             "%s:7:13: app.bin has sha256 %s but the profile pins %s; fix "
             "the file or the pin",
             path, pin, pin);
    assert_string_equal(err.msg, want);
    es_err_prefix(&err, "slot %d (socket://%s:5555)", 3, port);
    assert_memory_equal(err.msg, "slot 3 (socket://ppp", 20);
    assert_non_null(strstr(err.msg, port));
    assert_string_equal(err.msg + strlen(err.msg) - strlen(want), want);
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
        cmocka_unit_test(test_long_messages_are_whole),
        cmocka_unit_test(test_names_are_stable_and_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
