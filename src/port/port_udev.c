/* Stable slot names: the USB serial ports of a sysfs tree, and the udev rules that name each one
 * after the USB port it is plugged into (`espstation ports --udev`, issue 15 #4). The sysfs root
 * is a parameter so the tests can feed a recorded tree; the rule text is a pure function of the
 * port list. Listing through libserialport lives in port_list.c. */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/port.h"

/* "1-1.4:1.0": a USB device path (bus, '-', ports separated by '.'), ':', then the configuration
 * and the interface number. This is how the kernel names an interface (drivers/usb/core/
 * message.c, usb_set_configuration: "%d-%s:%d.%d"). */
static int is_usb_interface(const char *s, size_t n)
{
    size_t i = 0, digits;

    if (n == 0 || !isdigit((unsigned char)s[0]))
        return 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == n || s[i++] != '-')
        return 0;
    for (;;) {
        for (digits = 0; i < n && isdigit((unsigned char)s[i]); i++)
            digits++;
        if (digits == 0 || i == n)
            return 0;
        if (s[i] == ':')
            break;
        if (s[i++] != '.')
            return 0;
    }
    i++;
    for (digits = 0; i < n && isdigit((unsigned char)s[i]); i++)
        digits++;
    if (digits == 0 || i == n || s[i++] != '.')
        return 0;
    for (digits = 0; i < n && isdigit((unsigned char)s[i]); i++)
        digits++;
    return digits > 0 && i == n;
}

/* The deepest interface component of path: its offset and length, or -1. */
static int find_interface(const char *path, size_t *at, size_t *len)
{
    const char *s = path;
    int found = -1;

    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);

        if (is_usb_interface(s, n)) {
            *at = (size_t)(s - path);
            *len = n;
            found = 0;
        }
        s += n;
        if (*s == '/')
            s++;
    }
    return found;
}

int port_interface_from_sysfs(const char *devpath, char *out, size_t cap)
{
    size_t at, len;

    if (find_interface(devpath, &at, &len) < 0 || len + 1 > cap)
        return -1;
    memcpy(out, devpath + at, len);
    out[len] = '\0';
    return 0;
}

/* The first line of dir/name without its newline, or NULL (missing, empty, or out of memory). */
static char *read_attr(const char *dir, const char *name)
{
    char path[PATH_MAX], line[256];
    FILE *f;
    size_t n;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return NULL;
    f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    n = strcspn(line, "\n");
    line[n] = '\0';
    return n > 0 ? strdup(line) : NULL;
}

/* An attribute read as a number in base (16 for idVendor, 10 for busnum), or -1. */
static int read_attr_int(const char *dir, const char *name, int base)
{
    char *text = read_attr(dir, name), *end;
    long v;

    if (text == NULL)
        return -1;
    v = strtol(text, &end, base);
    if (end == text || *end != '\0' || v < 0 || v > 0xffff)
        v = -1;
    free(text);
    return (int)v;
}

static void info_clear(struct port_info *pi)
{
    free(pi->name);
    free(pi->description);
    free(pi->serial);
    free(pi->manufacturer);
    free(pi->product);
    free(pi->location);
    free(pi->usb_interface);
}

/* Fills pi for the tty NAME of the tree at root. Returns 1 for a USB port, 0 for another tty,
 * -1 out of memory. */
static int usb_tty(const char *root, const char *name, struct port_info *pi)
{
    char link[PATH_MAX], real[PATH_MAX], dev_name[PATH_MAX];
    size_t at, len;

    memset(pi, 0, sizeof(*pi));
    pi->usb_vid = pi->usb_pid = pi->usb_bus = pi->usb_address = -1;
    if (snprintf(link, sizeof(link), "%s/class/tty/%s/device", root, name) >= (int)sizeof(link))
        return 0;
    /* Virtual ttys (tty0, ptmx) have no device link; a serial8250 or a pty has no interface. */
    if (realpath(link, real) == NULL || find_interface(real, &at, &len) < 0)
        return 0;
    pi->transport = PORT_TRANSPORT_USB;
    pi->usb_interface = strndup(real + at, len);
    pi->location = strndup(real + at, strcspn(real + at, ":"));
    if (snprintf(dev_name, sizeof(dev_name), "/dev/%s", name) >= (int)sizeof(dev_name))
        return 0;
    pi->name = strdup(dev_name);
    if (pi->usb_interface == NULL || pi->location == NULL || pi->name == NULL)
        return -1;
    /* The USB device is the interface's parent directory: .../1-1.4/1-1.4:1.0. */
    real[at > 0 ? at - 1 : 0] = '\0';
    pi->usb_vid = read_attr_int(real, "idVendor", 16);
    pi->usb_pid = read_attr_int(real, "idProduct", 16);
    pi->usb_bus = read_attr_int(real, "busnum", 10);
    pi->usb_address = read_attr_int(real, "devnum", 10);
    pi->serial = read_attr(real, "serial");
    pi->manufacturer = read_attr(real, "manufacturer");
    pi->product = read_attr(real, "product");
    if (pi->product != NULL && (pi->description = strdup(pi->product)) == NULL)
        return -1;
    return 1;
}

int port_list_sysfs(const char *sysfs_root, struct port_info **out, size_t *n, struct es_err *err)
{
    char dir_path[PATH_MAX];
    struct port_info *list = NULL, *grown;
    struct dirent *de;
    size_t count = 0;
    DIR *dir;
    int rc = 0;

    *out = NULL;
    *n = 0;
    snprintf(dir_path, sizeof(dir_path), "%s/class/tty", sysfs_root);
    dir = opendir(dir_path);
    if (dir == NULL)
        return es_fail(err, ES_PORT_OPEN, "list serial ports: open %s: %s", dir_path,
                       strerror(errno));
    while ((de = readdir(dir)) != NULL) {
        struct port_info pi;
        int got;

        if (de->d_name[0] == '.')
            continue;
        got = usb_tty(sysfs_root, de->d_name, &pi);
        if (got == 1 && (grown = realloc(list, (count + 1) * sizeof(*list))) != NULL) {
            list = grown;
            list[count++] = pi;
            continue;
        }
        info_clear(&pi);
        if (got != 0) {
            rc = es_fail(err, ES_NOMEM, "list serial ports: out of memory");
            break;
        }
    }
    closedir(dir);
    if (rc < 0) {
        port_list_free(list, count);
        return rc;
    }
    port_sort(list, count);
    *out = list;
    *n = count;
    return 0;
}

/* Why the rules match what they match, for the person who reads the installed file. */
static const char RULES_HEADER[] =
    "# espstation: stable slot names for USB serial adapters, from the USB port each one is\n"
    "# plugged into (written by `espstation ports --udev`). Install and apply:\n"
    "#   espstation ports --udev | sudo tee /etc/udev/rules.d/70-espstation.rules\n"
    "#   sudo udevadm control --reload && sudo udevadm trigger\n"
    "# then name /dev/espstation/slot-* in the profile's `ports:` list.\n"
    "#\n"
    "# KERNELS matches the kernel name of the tty's device or of any parent (udev(7)). An adapter\n"
    "# with one serial port is matched by its USB device, \"1-1.4\" (bus 1, hub on port 1, port\n"
    "# 4): that name depends only on the socket it is plugged into, so slot 7 stays slot 7\n"
    "# across reboots, replugs and a swap for another adapter model. An adapter with several\n"
    "# (FT2232, FT4232, CP2105) is matched by the USB interface of each port, \"1-1.3:1.1\"\n"
    "# (configuration 1, interface 1), which is as stable; matching its device would give every\n"
    "# port the same name. ATTRS{serial} is not used: it follows the adapter, not the slot.\n";

/* The interface number of "1-1.3:1.1" (the digits after the last '.'), or -1. */
static int interface_number(const char *iface)
{
    const char *dot = iface != NULL ? strrchr(iface, '.') : NULL;

    return dot != NULL && isdigit((unsigned char)dot[1]) ? atoi(dot + 1) : -1;
}

/* One comment line saying which adapter a rule is for, as `espstation ports` describes it. */
static void describe(FILE *f, const struct port_info *p)
{
    fprintf(f, "# %s:", p->name);
    if (p->usb_vid >= 0)
        fprintf(f, " usb %04x:%04x", (unsigned)p->usb_vid, (unsigned)p->usb_pid);
    if (p->serial != NULL)
        fprintf(f, " serial %s", p->serial);
    if (p->manufacturer != NULL || p->product != NULL)
        fprintf(f, " (%s%s%s)", p->manufacturer ? p->manufacturer : "",
                p->manufacturer && p->product ? " " : "", p->product ? p->product : "");
    fputc('\n', f);
}

int port_udev_rules(const struct port_info *list, size_t n, char **text, struct es_err *err)
{
    char *buf = NULL;
    size_t size = 0, rules = 0, seen = 0;
    FILE *f = open_memstream(&buf, &size);

    *text = NULL;
    if (f == NULL)
        return es_fail(err, ES_NOMEM, "write udev rules: out of memory");
    fputs(RULES_HEADER, f);
    for (size_t i = 0; i < n; i++) {
        const struct port_info *p = &list[i];
        size_t ports_on_device = 0, ports_on_interface = 0;

        if (p->location == NULL)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (list[j].location == NULL || strcmp(list[j].location, p->location) != 0)
                continue;
            ports_on_device++;
            if (p->usb_interface != NULL && list[j].usb_interface != NULL &&
                strcmp(list[j].usb_interface, p->usb_interface) == 0)
                ports_on_interface++;
        }
        seen++;
        fputc('\n', f);
        describe(f, p);
        if (ports_on_interface > 1) {
            /* A driver that hangs several ttys off one interface numbers them itself, in an
             * order nothing in sysfs pins down, and a rule on the interface would give them all
             * one name: give them none rather than a wrong one. */
            fprintf(f, "# no stable name: %zu ports share USB interface %s\n", ports_on_interface,
                    p->usb_interface);
            continue;
        }
        if (ports_on_device == 1 || interface_number(p->usb_interface) < 0)
            fprintf(f,
                    "SUBSYSTEM==\"tty\", KERNELS==\"%s\", "
                    "SYMLINK+=\"espstation/slot-%s\"\n",
                    p->location, p->location);
        else
            fprintf(f,
                    "SUBSYSTEM==\"tty\", KERNELS==\"%s\", "
                    "SYMLINK+=\"espstation/slot-%s-if%02d\"\n",
                    p->usb_interface, p->location, interface_number(p->usb_interface));
        rules++;
    }
    if (seen == 0)
        fputs("\n# No USB serial adapter found: plug them in and run `espstation ports --udev` "
              "again.\n",
              f);
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        return es_fail(err, ES_NOMEM, "write udev rules: out of memory");
    }
    *text = buf;
    return 0;
}
