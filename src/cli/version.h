/* `espstation --version`: what this binary is and what it runs on (issue 15 #7). */
#ifndef ES_CLI_VERSION_H
#define ES_CLI_VERSION_H

#include <stdio.h>

/* Prints the version (git describe at configure time), one line per library with the version
 * the library reports at run time (the one actually loaded, which may be newer than the headers
 * it was built with), and the package the flasher stubs come from. */
void version_print(FILE *f);

#endif
