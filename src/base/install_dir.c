/* The installed layout, found from the running executable (see es/install_dir.h): Linux names it
 * in /proc/self/exe, with symlinks resolved, so /usr/bin/espstation finds /usr/share/espstation
 * and a copy unpacked under any directory finds the files unpacked next to it. */
#include "es/install_dir.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int es_install_dir(const char *rel, char *out, size_t cap)
{
    char self[4096], *slash;
    struct stat st;
    ssize_t n;
    int len;

    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    len = snprintf(out, cap, "%s/%s", self, rel);
    if (len < 0 || (size_t)len >= cap)
        return -1;
    if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
        return -1;
    return 0;
}
