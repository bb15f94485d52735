/* Replacing a file so that a crash at any instant leaves either the old contents or the new ones,
 * never a mixture or a truncated file: write a temporary file in the same directory, fsync it,
 * rename it over the target, then fsync the directory so the rename itself is durable. */
#ifndef ES_ATOMIC_FILE_H
#define ES_ATOMIC_FILE_H

#include <stddef.h>

#include "es/err.h"

/* Writes len bytes of data to dir/name, replacing any file of that name. name is a plain file
 * name (no '/', not "." or ".."). The temporary file is dir/name.tmp.<pid>-<n>, created with
 * O_CREAT|O_EXCL and mode 0666 less the umask; it is removed again on every failure.
 *
 * Returns 0, or ES_INVALID_ARG for a bad name, or ES_REPORT with a message naming the failing call
 * and path, e.g. "write reports/r/x.json.tmp.812-0: No space left on device". If only the final
 * directory fsync fails, the new file is already in place (whole) and ES_REPORT says so.
 * Blocks on disk I/O: call it from a loop callback only for small files. */
int es_atomic_write(const char *dir, const char *name, const void *data, size_t len,
                    struct es_err *err);

/* fsyncs the directory dir so that entries just created or renamed in it survive a power cut.
 * A file system that cannot fsync a directory (EINVAL/ENOTSUP, some network shares) counts as
 * success. Returns 0 or ES_REPORT naming the failing call. */
int es_sync_dir(const char *dir, struct es_err *err);

#endif
