/* Any baud rate through Linux termios2 (port_setspeed.c). Its own header because the file that
 * implements it cannot see <termios.h>, which <uv.h> and port_internal.h bring in. */
#ifndef ES_PORT_SETSPEED_H
#define ES_PORT_SETSPEED_H

#include <stdint.h>

/* Sets input and output rate of the tty fd to baud with BOTHER. Returns 0 or -errno. */
int port_setspeed_custom(int fd, uint32_t baud);

#endif
