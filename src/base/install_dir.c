/* The installed layout, found from the running executable (see es/install_dir.h): Linux names it
 * in /proc/self/exe, with symlinks resolved, so /usr/bin/espstation finds /usr/share/espstation
 * and a copy unpacked under any directory finds the files unpacked next to it. */
#include "es/install_dir.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int es_exe_dir(char *out, size_t cap)
{
    ssize_t n;
    char *slash;

    if (cap < 2)
        return -1;
    n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0 || (size_t)n >= cap - 1)
        return -1; /* unreadable, or perhaps cut: readlink does not say */
    out[n] = '\0';
    slash = strrchr(out, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return 0;
}

int es_install_dir(const char *rel, char *out, size_t cap)
{
    char self[4096];
    struct stat st;
    int len;

    if (es_exe_dir(self, sizeof(self)) < 0)
        return -1;
    len = snprintf(out, cap, "%s/%s", self, rel);
    if (len < 0 || (size_t)len >= cap)
        return -1;
    if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
        return -1;
    return 0;
}
