/* es/fleet.h fleet_url_display: a database URL shown without its password, in any spelling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "es/fleet.h"

static void shows(const char *url, const char *want)
{
    char out[256];
    struct es_err err = {0};

    assert_int_equal(fleet_url_display(url, out, sizeof(out), &err), 0);
    assert_string_equal(out, want);
    assert_null(strstr(out, "s3cret"));
}

static void test_uri_password_is_never_shown(void **state)
{
    (void)state;
    shows("postgresql://station:s3cret@db.factory:5433/fleet", "station@db.factory:5433/fleet");
    shows("postgresql://station@/factory?host=/tmp/pg&password=s3cret", "station@/tmp/pg/factory");
    shows("postgres://station:s3cret@db/factory?sslmode=require", "station@db/factory");
}

static void test_keyword_form_and_defaults(void **state)
{
    (void)state;
    shows("host=10.0.0.5 user=qa password=s3cret dbname=boards", "qa@10.0.0.5/boards");
    shows("postgresql:///factory", "(default socket)/factory");
    /* libpq's default database is the user's name. */
    shows("postgresql://qa@db", "qa@db/qa");
}

static void test_bad_url_names_the_problem_not_the_password(void **state)
{
    char out[64];
    struct es_err err = {0};
    (void)state;

    assert_int_equal(
        fleet_url_display("postgresql://u:s3cret@db/x?nosuchoption=1", out, sizeof(out), &err),
        -ES_FLEET_DB);
    assert_int_equal(err.code, ES_FLEET_DB);
    assert_non_null(strstr(err.msg, "not valid"));
    assert_null(strstr(err.msg, "s3cret"));
    assert_string_equal(out, "");
}

/* libpq's reason, without any quoted word that is not a keyword or an option name the URL
 * spells: a password typed where a keyword belongs is never repeated. */
static void refused(const char *url, const char *want)
{
    char out[64];
    struct es_err err = {0};

    assert_int_equal(fleet_url_display(url, out, sizeof(out), &err), -ES_FLEET_DB);
    assert_string_equal(err.msg, want);
}

static void test_reason_keeps_keywords_and_hides_other_words(void **state)
{
    (void)state;
    refused("host=db s3cret", "the database URL is not valid: missing \"=\" after \"...\" in "
                              "connection info string");
    refused("host=db password", "the database URL is not valid: missing \"=\" after "
                                "\"password\" in connection info string");
    refused("postgresql://u:secret@/f?secret=1", "the database URL is not valid: invalid URI "
                                                 "query parameter: \"...\"");
    refused("host=db colour=blue", "the database URL is not valid: invalid connection option "
                                   "\"colour\"");
    refused("postgresql://u:s3cret@[::1/x", "the database URL is not valid: end of string "
                                            "reached when looking for matching \"]\" in IPv6 "
                                            "host address in URI: \"...\"");
}

static void test_display_is_cut_to_the_buffer(void **state)
{
    char out[8];
    struct es_err err = {0};
    (void)state;

    assert_int_equal(fleet_url_display("postgresql://station@db/factory", out, sizeof(out), &err),
                     0);
    assert_string_equal(out, "station");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_password_is_never_shown),
        cmocka_unit_test(test_keyword_form_and_defaults),
        cmocka_unit_test(test_bad_url_names_the_problem_not_the_password),
        cmocka_unit_test(test_reason_keeps_keywords_and_hides_other_words),
        cmocka_unit_test(test_display_is_cut_to_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
