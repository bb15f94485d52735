/* es/hex.h: the one spelling of hex digits and MAC addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "es/hex.h"

static void test_hex_is_lowercase_and_terminated(void **state)
{
    static const uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff, 0x10};
    char out[2 * sizeof(bytes) + 2];
    (void)state;

    memset(out, 'x', sizeof(out));
    es_hex(bytes, sizeof(bytes), out);
    assert_string_equal(out, "000fa5ff10");
    assert_int_equal(out[sizeof(out) - 1], 'x'); /* nothing written past 2n + 1 */
}

static void test_hex_of_nothing_is_empty(void **state)
{
    char out[1] = {'x'};
    (void)state;

    es_hex(NULL, 0, out);
    assert_string_equal(out, "");
}

static void test_mac_with_colons_and_dashes(void **state)
{
    static const uint8_t mac[6] = {0x24, 0x0a, 0xc4, 0xf2, 0x00, 0xab};
    char out[ES_MAC_TEXT_LEN];
    (void)state;

    es_format_mac(mac, ':', out);
    assert_string_equal(out, "24:0a:c4:f2:00:ab");
    es_format_mac(mac, '-', out);
    assert_string_equal(out, "24-0a-c4-f2-00-ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_is_lowercase_and_terminated),
        cmocka_unit_test(test_hex_of_nothing_is_empty),
        cmocka_unit_test(test_mac_with_colons_and_dashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
