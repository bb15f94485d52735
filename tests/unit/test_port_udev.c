/* Stable slot names (port_udev.c): the USB serial ports read from a recorded sysfs tree
 * (tests/udev/sysfs, built by tests/udev/make-sysfs.sh) and the exact udev rules written for
 * them (tests/udev/expected.rules), plus the rule generator on hand-made lists for what the
 * tree does not hold: ports sharing one interface, ports without a location, no port at all. */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four headers it needs */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/port.h"

#define SYSFS ES_TEST_DATA_DIR "/udev/sysfs"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

static void test_interface_from_sysfs(void **state)
{
    char out[32];

    (void)state;
    assert_int_equal(port_interface_from_sysfs("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/"
                                               "1-1.4/1-1.4:1.0/ttyUSB0",
                                               out, sizeof(out)),
                     0);
    assert_string_equal(out, "1-1.4:1.0");
    /* cdc_acm: the device link is the interface itself; the deepest interface wins. */
    assert_int_equal(port_interface_from_sysfs("/x/usb2/2-3/2-3.1/2-3.1.12:1.2", out, sizeof(out)),
                     0);
    assert_string_equal(out, "2-3.1.12:1.2");
    /* A USB device without an interface, a platform UART, malformed names: none. */
    assert_int_equal(port_interface_from_sysfs("/sys/devices/usb1/1-1/1-1.4", out, sizeof(out)),
                     -1);
    assert_int_equal(port_interface_from_sysfs("/sys/devices/platform/serial8250", out, 32), -1);
    assert_int_equal(port_interface_from_sysfs("/a/1-1.4:1/b", out, sizeof(out)), -1);
    assert_int_equal(port_interface_from_sysfs("/a/1-:1.0/b", out, sizeof(out)), -1);
    assert_int_equal(port_interface_from_sysfs("/a/1-1.4:1.0x", out, sizeof(out)), -1);
    /* Too small a buffer is a miss, never a cut name. */
    assert_int_equal(port_interface_from_sysfs("/a/1-1.4:1.0", out, 9), -1);
}

static void test_list_sysfs(void **state)
{
    struct port_info *list;
    struct es_err err;
    size_t n;

    (void)state;
    assert_int_equal(port_list_sysfs(SYSFS, &list, &n, &err), 0);
    /* ttyS0 and tty0 are not USB ports; the rest in slot order (1-1.10 after 1-1.4). */
    assert_int_equal(n, 5);
    assert_string_equal(list[0].name, "/dev/ttyUSB1");
    assert_string_equal(list[0].location, "1-1.2");
    assert_string_equal(list[0].usb_interface, "1-1.2:1.0");
    assert_int_equal(list[0].usb_vid, 0x1a86);
    assert_int_equal(list[0].usb_pid, 0x7523);
    assert_null(list[0].serial); /* CH340s have none */
    assert_null(list[0].manufacturer);
    assert_string_equal(list[0].product, "USB Serial");
    assert_string_equal(list[1].name, "/dev/ttyUSB2");
    assert_string_equal(list[1].usb_interface, "1-1.3:1.0");
    assert_string_equal(list[2].name, "/dev/ttyUSB3");
    assert_string_equal(list[2].usb_interface, "1-1.3:1.1");
    assert_string_equal(list[2].serial, "FT5Y3K2A");
    assert_string_equal(list[3].name, "/dev/ttyUSB0");
    assert_string_equal(list[3].location, "1-1.4");
    assert_int_equal(list[3].usb_vid, 0x10c4);
    assert_int_equal(list[3].usb_pid, 0xea60);
    assert_int_equal(list[3].usb_bus, 1);
    assert_int_equal(list[3].usb_address, 7);
    assert_string_equal(list[3].manufacturer, "Silicon Labs");
    assert_int_equal(list[3].transport, PORT_TRANSPORT_USB);
    assert_string_equal(list[4].name, "/dev/ttyACM0");
    assert_string_equal(list[4].location, "1-1.10");
    assert_string_equal(list[4].usb_interface, "1-1.10:1.0");
    port_list_free(list, n);
}

static void test_list_sysfs_missing_root(void **state)
{
    struct port_info *list;
    struct es_err err;
    size_t n;

    (void)state;
    assert_int_equal(port_list_sysfs(ES_TEST_DATA_DIR "/udev/no-such-tree", &list, &n, &err),
                     -ES_PORT_OPEN);
    assert_non_null(strstr(err.msg, "no-such-tree/class/tty"));
    assert_null(list);
    assert_int_equal(n, 0);
}

/* The recorded bench gives exactly the checked-in rules, byte for byte. */
static void test_rules_from_recorded_tree(void **state)
{
    struct port_info *list;
    struct es_err err;
    char *text, *want;
    size_t n;

    (void)state;
    assert_int_equal(port_list_sysfs(SYSFS, &list, &n, &err), 0);
    assert_int_equal(port_udev_rules(list, n, &text, &err), 0);
    want = slurp(ES_TEST_DATA_DIR "/udev/expected.rules");
    assert_string_equal(text, want);
    /* The lines that matter, spelled out here too so a regenerated expected.rules cannot hide a
     * change of form. */
    assert_non_null(strstr(text, "\nSUBSYSTEM==\"tty\", KERNELS==\"1-1.4\", "
                                 "SYMLINK+=\"espstation/slot-1-1.4\"\n"));
    assert_non_null(strstr(text, "\nSUBSYSTEM==\"tty\", KERNELS==\"1-1.2\", "
                                 "SYMLINK+=\"espstation/slot-1-1.2\"\n"));
    assert_non_null(strstr(text, "\nSUBSYSTEM==\"tty\", KERNELS==\"1-1.3:1.0\", "
                                 "SYMLINK+=\"espstation/slot-1-1.3-if00\"\n"));
    assert_non_null(strstr(text, "\nSUBSYSTEM==\"tty\", KERNELS==\"1-1.3:1.1\", "
                                 "SYMLINK+=\"espstation/slot-1-1.3-if01\"\n"));
    assert_null(strstr(text, "KERNELS==\"1-1.3\""));
    assert_null(strstr(text, "ttyS0"));
    free(want);
    free(text);
    port_list_free(list, n);
}

/* Two ttys on one interface (a driver that numbers its ports itself) get no name: a rule on the
 * interface would give both the same one. A port without a location gets nothing either. */
static void test_rules_shared_interface(void **state)
{
    struct port_info list[3] = {
        {.name = "/dev/ttyUSB4", .location = "2-1", .usb_interface = "2-1:1.0", .usb_vid = -1},
        {.name = "/dev/ttyUSB5", .location = "2-1", .usb_interface = "2-1:1.0", .usb_vid = -1},
        {.name = "/dev/ttyS0", .usb_vid = -1},
    };
    struct es_err err;
    char *text;

    (void)state;
    assert_int_equal(port_udev_rules(list, 3, &text, &err), 0);
    assert_null(strstr(text, "\nSUBSYSTEM=="));
    assert_non_null(strstr(text, "\n# /dev/ttyUSB4:\n# no stable name: 2 ports share USB "
                                 "interface 2-1:1.0\n"));
    assert_non_null(strstr(text, "\n# /dev/ttyUSB5:\n# no stable name"));
    assert_null(strstr(text, "ttyS0"));
    assert_null(strstr(text, "No USB serial adapter found"));
    free(text);
}

static void test_rules_empty(void **state)
{
    struct es_err err;
    char *text;

    (void)state;
    assert_int_equal(port_udev_rules(NULL, 0, &text, &err), 0);
    assert_true(strncmp(text, "# espstation: stable slot names", 31) == 0);
    assert_non_null(strstr(text, "\n# No USB serial adapter found: plug them in and run "
                                 "`espstation ports --udev` again.\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interface_from_sysfs),
        cmocka_unit_test(test_list_sysfs),
        cmocka_unit_test(test_list_sysfs_missing_root),
        cmocka_unit_test(test_rules_from_recorded_tree),
        cmocka_unit_test(test_rules_shared_interface),
        cmocka_unit_test(test_rules_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
