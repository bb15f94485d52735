/* Where an installed espstation keeps its data: found from the running executable, never from a
 * compiled-in prefix, so a package unpacked anywhere (dpkg -x into a scratch directory, a /opt
 * prefix) finds its own files. */
#ifndef ES_INSTALL_DIR_H
#define ES_INSTALL_DIR_H

#include <stddef.h>

/* The flasher stubs' directory relative to the directory holding the executable (bin/):
 * cmake/Packaging.cmake installs them to share/espstation/stubs. */
#define ES_INSTALL_STUB_DIR "../share/espstation/stubs"

/* Writes the directory holding the running executable (/proc/self/exe, symlinks resolved) into
 * out (cap bytes). Returns 0, or -1 when it cannot be read or does not fit. */
int es_exe_dir(char *out, size_t cap);

/* Writes "<directory of /proc/self/exe>/<rel>" into out (cap bytes, NUL-terminated) and returns
 * 0 when that path is a directory. Returns -1, out unspecified, when /proc/self/exe cannot be
 * read, the path does not fit or is not a directory: the caller falls back to its default.
 * Blocking (readlink, stat): call before the loop starts. */
int es_install_dir(const char *rel, char *out, size_t cap);

#endif
