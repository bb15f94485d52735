/* The banner marker shared by tools/mkimage (which writes it into an app image with --banner) and
 * espsim's app model (which looks for it after a flash boot): the marker, then the banner text,
 * then a NUL, somewhere in the image's segment data. A real firmware has its banner in rodata
 * too; the marker just lets espsim find it without running the code. */
#ifndef SIM_APP_BANNER_H
#define SIM_APP_BANNER_H

#define SIM_APP_BANNER_MARKER "espsim-banner:"
#define SIM_APP_BANNER_MAX    200 /* bytes of banner text, without the NUL */

#endif
