/* The port layer: one event-driven ops table over real serial ports (libserialport), other ttys
 * and pseudo-terminals (termios), and socket://host:port (uv_tcp). This is the only code that
 * knows termios, libserialport or sockets; sessions see bytes coming up through a callback.
 * Listing ports and choosing them by glob or USB identity lives here too (port_list.c). Each
 * transport is a struct port_ops table behind this interface (src/port/port_internal.h); tests
 * can open a scripted board through include/es/port_fake.h. */
#ifndef ES_PORT_H
#define ES_PORT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "es/err.h"

struct port; /* opaque */

struct port_callbacks {
    /* Bytes arrived. data is only valid during the call. May call any port function, including
     * port_close. */
    void (*on_data)(struct port *p, const uint8_t *data, size_t n, void *arg);
    /* The port failed for good: hangup, EIO, unplugged (ES_PORT_CLOSED), a failed connect
     * (ES_PORT_OPEN) or another I/O error (ES_PORT_IO). Called at most once; afterwards the port
     * does no more I/O and the only thing left to do is port_close. err is only valid during
     * the call. */
    void (*on_error)(struct port *p, const struct es_err *err, void *arg);
};

/* Opens a port and starts reading. name is one of:
 *   - a serial device ("/dev/ttyUSB3"): libserialport, 8N1, no flow control;
 *   - anything libserialport refuses (pseudo-terminals, symlinks to them): plain termios, raw
 *     8N1, CLOCAL, no flow control. If the tty has no modem lines (ENOTTY/EINVAL, §5.4 of the
 *     protocol doc) and "<name>.ctl" exists next to it (name as given, symlinks not resolved) and
 *     is a Unix socket, port_set_lines writes "DTR=1 RTS=0\n" lines there (espsim's reset
 *     channel);
 *   - "socket://host:port[?ctl=/path/to/unix/socket]": TCP, connected asynchronously (writes
 *     are queued until then; a failed connect is reported through on_error with ES_PORT_OPEN).
 * Right after opening a tty, DTR and RTS are both deasserted explicitly (§5.4). baud is applied
 * at once (ignored for sockets). cb is copied; arg is passed back to every callback.
 * On success *out is a port to be closed with port_close. On failure returns ES_PORT_OPEN
 * (or ES_INVALID_ARG/ES_NOMEM) and *out is NULL; handles the port had already set up are
 * released by the next run of the loop, without any callback.
 * The program must ignore SIGPIPE (writes to a peer that went away would raise it). */
int port_open(uv_loop_t *loop, const char *name, uint32_t baud, const struct port_callbacks *cb,
              void *arg, struct port **out, struct es_err *err);

/* Copies n bytes into the port's queue and returns at once; the loop hands them to the OS as
 * the OS takes them. Fails with ES_PORT_CLOSED after on_error or port_close. */
int port_write(struct port *p, const uint8_t *data, size_t n, struct es_err *err);

/* Bytes accepted by port_write but not yet handed to the OS (for TCP: not yet completed). */
size_t port_write_queued(const struct port *p);

/* Changes the line rate. The rule: every byte written before this call is sent at the old rate,
 * every byte written after it at the new one. When nothing is queued and the OS has sent
 * everything (TIOCOUTQ is 0), the rate changes before this returns and failures come back
 * here; otherwise bytes written after the call are held back, the change happens once the
 * earlier bytes have left (checked from the loop, never with the blocking tcdrain), and a
 * failure then arrives through on_error (ES_PORT_IO). A second call while a change is still
 * waiting replaces the waiting rate. Any rate the driver accepts works,
 * including 74880 (Linux termios2). For sockets it does nothing and returns 0: the rate
 * belongs to whatever bridges the socket to the board. */
int port_set_baud(struct port *p, uint32_t baud, struct es_err *err);

/* Sets DTR and RTS (1 = asserted, 0 = deasserted) in one step: one TIOCMSET on a tty (as the
 * UnixTight reset sequence of §5.2 needs), or one "DTR=d RTS=r\n" line on a control socket.
 * Returns ES_UNSUPPORTED when the port has neither (a pty without .ctl, a socket without
 * ?ctl=); port_can_reset says so in advance. */
int port_set_lines(struct port *p, int dtr, int rts, struct es_err *err);

/* 1 if port_set_lines can work on this port, else 0 (reset by hand, SYNC only: §5.4). */
int port_can_reset(const struct port *p);

/* Drops bytes the OS has received but nobody read yet (tcflush TCIFLUSH on a tty). Does nothing
 * for sockets. */
void port_flush_input(struct port *p);

/* The name as given to port_open. Valid until the port is freed. */
const char *port_name(const struct port *p);

/* Stops all I/O, drops queued writes and closes every handle. The port is freed after its last
 * handle has closed; on_closed (may be NULL) is called then, from the loop, never from inside
 * port_close. Safe to call from inside on_data and on_error. Call it exactly once. */
void port_close(struct port *p, void (*on_closed)(struct port *p, void *arg));

/* ---- Listing and choosing ports (port_list.c) ---- */

enum port_transport { PORT_TRANSPORT_NATIVE, PORT_TRANSPORT_USB, PORT_TRANSPORT_BLUETOOTH };

struct port_info {
    char *name;        /* "/dev/ttyUSB0" */
    char *description; /* libserialport's description, or NULL */
    enum port_transport transport;
    int usb_vid;        /* -1 when not a USB port or unknown */
    int usb_pid;        /* -1 when unknown */
    int usb_bus;        /* -1 when unknown; the address changes on every replug */
    int usb_address;    /* -1 when unknown */
    char *serial;       /* USB serial number, or NULL */
    char *manufacturer; /* or NULL */
    char *product;      /* or NULL */
    char *location; /* USB port path from sysfs, like "1-1.4" (stable across reboots), or NULL */
    char *usb_interface; /* the USB interface the tty hangs off, like "1-1.4:1.0", or NULL */
};

/* Lists the serial ports libserialport knows. *out is an array of *n entries owned by the
 * caller (port_list_free). ES_PORT_OPEN when enumeration itself fails. */
int port_list(struct port_info **out, size_t *n, struct es_err *err);
void port_list_free(struct port_info *list, size_t n);

/* What a profile's `ports` entry can ask for. Fields that are -1 or NULL match anything. */
struct port_match {
    int usb_vid;
    int usb_pid;
    const char *serial;
    const char *location;
};

/* Parses "10c4:ea60" (hex, either case) into m->usb_vid/usb_pid. ES_USAGE when malformed. */
int port_match_parse_usb(const char *text, struct port_match *m, struct es_err *err);

/* The names of the ports in list that match m, in the stable order of port_sort. *names is an
 * array of *n strings owned by the caller (port_names_free). ES_PORT_OPEN when none matches. */
int port_select(const struct port_info *list, size_t n, const struct port_match *m, char ***names,
                size_t *count, struct es_err *err);

/* Expands a glob such as "/dev/ttyUSB*" (glob(3)) into names sorted naturally ("ttyUSB2" before
 * "ttyUSB10"). A wildcard pattern expands only to character devices (ttys, ptys, and symlinks to
 * them): sockets such as espsim's ttySIM0.ctl, regular files and directories are skipped. A
 * pattern without wildcards is returned as it is (port_open will say what is wrong). ES_PORT_OPEN
 * when a wildcard pattern matches no character device. */
int port_glob(const char *pattern, char ***names, size_t *count, struct es_err *err);

/* Refuses the same board twice (issue 11 #5): two names for one character device (a symlink
 * and its target, /dev/serial/by-id/... and /dev/ttyUSB0, one name given twice) or the same
 * socket://HOST:PORT. Returns 0, or ES_USAGE naming both entries and the device. Only stat()s:
 * opens nothing. */
int port_check_distinct(char *const *names, size_t n, struct es_err *err);

/* Checks a port name's syntax without opening anything: not empty, and a socket:// name must be
 * socket://HOST:PORT[?ctl=/path] with PORT from 1 to 65535 (issue 11 #12). Device paths are
 * not looked at (a missing one is a board that failed to open). Returns 0 or ES_USAGE. */
int port_check_name(const char *name, struct es_err *err);

void port_names_free(char **names, size_t n);

/* Sorts ports into the order slots are numbered in: ports with a location first, by location,
 * then the others by name; numbers inside names compare as numbers ("1-1.10" after "1-1.9"). */
void port_sort(struct port_info *list, size_t n);

/* Natural string compare: runs of digits compare by value. For stable slot orders. */
int port_name_cmp(const char *a, const char *b);

/* Finds the USB port path ("1-1.4") in a resolved sysfs device path such as
 * "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4/1-1.4:1.0/ttyUSB0": the deepest component
 * of the form BUS-PORT[.PORT...]. Returns 0 and fills out, or -1 when there is none. */
int port_location_from_sysfs(const char *devpath, char *out, size_t cap);

/* ---- Stable slot names through udev (port_udev.c) ---- */

/* Finds the USB interface ("1-1.4:1.0": device 1-1.4, configuration 1, interface 0) in a
 * resolved sysfs device path: the deepest component of the form BUS-PORT[.PORT...]:C.I. Returns 0
 * and fills out, or -1 when there is none. */
int port_interface_from_sysfs(const char *devpath, char *out, size_t cap);

/* Lists the USB serial ports of a sysfs tree rooted at sysfs_root ("/sys", or a recorded tree in
 * the tests): every <root>/class/tty/NAME whose device sits under a USB interface, named
 * /dev/NAME, with its USB identity read from the USB device's attributes (idVendor, idProduct,
 * serial, manufacturer, product, busnum, devnum) and sorted by port_sort. Other ttys are left
 * out. *out is owned by the caller (port_list_free). ES_PORT_OPEN when <root>/class/tty cannot
 * be read, ES_NOMEM. Reads files only: safe anywhere, but blocking. */
int port_list_sysfs(const char *sysfs_root, struct port_info **out, size_t *n, struct es_err *err);

/* Writes udev rules giving each USB port of list (in its order) a stable name from where it is
 * plugged in: /dev/espstation/slot-LOCATION, or slot-LOCATION-ifNN for each port of an adapter
 * with several (FT2232, FT4232, CP2105). Ports without a location get none. Pure: *text is a
 * NUL-terminated string the caller frees; ES_NOMEM is the only error. */
int port_udev_rules(const struct port_info *list, size_t n, char **text, struct es_err *err);

#endif
