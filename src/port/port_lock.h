/* The port lock of the tty transport (port_lock.c): one station per device, and the holder
 * named when another has it. A leaf: it knows flock, /proc/locks and TIOCEXCL, nothing of ports. */
#ifndef ES_PORT_LOCK_H
#define ES_PORT_LOCK_H

#include "es/err.h"

/* Before anything is opened: ES_PORT_BUSY naming the holder when another process holds the lock
 * of the character device name; 0 otherwise (a missing device is left to the open to report). */
int port_lock_check(const char *name, struct es_err *err);

/* After the open of name as fd: takes flock(LOCK_EX | LOCK_NB) (ES_PORT_BUSY when another
 * process holds it, ES_PORT_OPEN when fstat fails) and, on a real serial port, TIOCEXCL; then
 * sets *exclusive to 1, and the caller clears it with TIOCNXCL before closing. */
int port_lock_take(const char *name, int fd, int *exclusive, struct es_err *err);

/* ES_PORT_BUSY for an open of name refused with EBUSY (another program set TIOCEXCL), naming the
 * holder when its lock shows in /proc/locks. Always returns -ES_PORT_BUSY. */
int port_lock_busy(const char *name, struct es_err *err);

#endif
