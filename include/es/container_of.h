/* container_of: from a pointer to a member back to the struct that holds it. Every libuv handle
 * and every port transport is embedded in its owner (a session's timer, a tty_port's struct
 * port), and callbacks reach the owner this way, as the Linux kernel and libuv's own code do. */
#ifndef ES_CONTAINER_OF_H
#define ES_CONTAINER_OF_H
#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
