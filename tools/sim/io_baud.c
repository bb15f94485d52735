/* The baud rate a client set on the slave side of a pty, read through the master. Kept apart
 * because <asm/termbits.h> (termios2, which reports any rate as a number, 74880 included) cannot
 * share a file with <termios.h>. On Linux a termios ioctl on a pty master acts on its slave. */
#include <asm/termbits.h>
#include <sys/ioctl.h>

#include "io_baud.h"

uint32_t io_baud_get(int fd)
{
    struct termios2 t;

    if (fd < 0 || ioctl(fd, TCGETS2, &t) < 0)
        return 0;
    /* The host transmits at its output speed. */
    return t.c_ospeed != 0 ? (uint32_t)t.c_ospeed : (uint32_t)t.c_ispeed;
}
