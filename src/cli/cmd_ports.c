/* `espstation ports`: the serial ports with their USB identity, their paths only (--names, for
 * scripts and the shell completion), or udev rules naming each USB adapter after its USB port
 * (--udev). Exit status 0, or 1 when the ports could not be listed. */
#include "cmd_ports.h"

#include <stdio.h>
#include <stdlib.h>

#include "es/port.h"

/* names_only (--names): one path per line and nothing else, not even "no serial ports found",
 * so that a script or the shell completion can read it as it is. */
int cmd_ports(int names_only)
{
    struct port_info *list;
    size_t n;
    struct es_err err;

    if (port_list(&list, &n, &err) < 0) {
        fprintf(stderr, "espstation: %s\n", err.msg);
        return 1;
    }
    if (names_only) {
        port_sort(list, n);
        for (size_t i = 0; i < n; i++)
            printf("%s\n", list[i].name);
        port_list_free(list, n);
        return 0;
    }
    if (n == 0)
        printf("no serial ports found\n");
    port_sort(list, n);
    for (size_t i = 0; i < n; i++) {
        const struct port_info *p = &list[i];
        printf("%-16s", p->name);
        if (p->usb_vid >= 0)
            printf(" usb %04x:%04x", p->usb_vid, p->usb_pid);
        if (p->serial != NULL)
            printf(" serial %s", p->serial);
        if (p->location != NULL)
            printf(" location %s", p->location);
        if (p->description != NULL)
            printf("  (%s)", p->description);
        printf("\n");
    }
    port_list_free(list, n);
    return 0;
}

/* ports --udev: rules naming each USB serial adapter after its USB port, read from sysfs
 * (ESPSTATION_SYSFS_ROOT, for the tests' recorded trees, else /sys). udev itself matches on
 * sysfs, so the rules are written from what udev will see. */
int cmd_ports_udev(void)
{
    const char *root = getenv("ESPSTATION_SYSFS_ROOT");
    struct port_info *list;
    struct es_err err;
    char *text;
    size_t n;
    int rc;

    if (root == NULL || root[0] == '\0')
        root = "/sys";
    if (port_list_sysfs(root, &list, &n, &err) < 0) {
        fprintf(stderr, "espstation: %s\n", err.msg);
        return 1;
    }
    rc = port_udev_rules(list, n, &text, &err);
    port_list_free(list, n);
    if (rc < 0) {
        fprintf(stderr, "espstation: %s\n", err.msg);
        return 1;
    }
    fputs(text, stdout);
    free(text);
    if (n == 0)
        fprintf(stderr,
                "espstation: no USB serial adapter found under %s/class/tty: plug them "
                "in and run this again\n",
                root);
    return fflush(stdout) == 0 ? 0 : 1;
}
