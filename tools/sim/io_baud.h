/* The host's baud rate on a pty (io_baud.c). A header of its own because io_baud.c cannot include
 * <termios.h> (nor uv.h, which does). */
#ifndef SIM_IO_BAUD_H
#define SIM_IO_BAUD_H

#include <stdint.h>

/* The rate the pty's slave side is set to, read with termios2 on the master; 0 if unknown. */
uint32_t io_baud_get(int fd);

#endif
