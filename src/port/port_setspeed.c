/* Any baud rate on Linux, through termios2 and BOTHER: the ESP8266 boot log runs at 74880
 * (protocol doc §1.1), which has no B-constant. Kept in its own file because the kernel's
 * <asm/termbits.h> cannot be included next to the C library's <termios.h>. */
#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include <asm/termbits.h>

#include "port_setspeed.h"

int port_setspeed_custom(int fd, uint32_t baud)
{
#if defined(TCGETS2) && defined(BOTHER)
    struct termios2 t;

    if (ioctl(fd, TCGETS2, &t) < 0)
        return -errno;
    t.c_cflag &= ~(tcflag_t)(CBAUD | (CBAUD << IBSHIFT));
    t.c_cflag |= BOTHER | (BOTHER << IBSHIFT);
    t.c_ispeed = baud;
    t.c_ospeed = baud;
    if (ioctl(fd, TCSETS2, &t) < 0)
        return -errno;
    return 0;
#else
    (void)fd;
    (void)baud;
    return -EINVAL; /* no way to ask for an arbitrary rate on this system */
#endif
}
