/* rusage: run a program and write its exact resource usage as one JSON line to a file.
 *
 *   rusage OUT.json PROGRAM [ARGS...]
 *
 * Why not os.wait4() straight from the benchmark's Python: on Linux, execve() folds the
 * high-water RSS of the memory the process had before the exec into its ru_maxrss (exec_mmap()
 * records the old mm's hiwater_rss in signal->maxrss). A child forked or vforked from a 15-60 MiB
 * Python process therefore reports at least that much, whatever it uses itself. This launcher is
 * a few hundred KiB, so the child it forks starts from almost nothing, and wait4() here gives the
 * program's own ru_maxrss, ru_utime and ru_stime (microseconds). The parent's wait4() on this
 * launcher still sees the same CPU (children's usage is added on reaping) plus a few
 * microseconds of its own.
 *
 * Stdin, stdout and stderr are inherited. Exit status: the program's, or 128 + signal;
 * 127 if it could not be started. Built by tools/bench/bench.py with the system C compiler. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct rusage ru;
    int status, code;
    pid_t pid;
    FILE *out;

    if (argc < 3) {
        fprintf(stderr, "usage: rusage OUT.json PROGRAM [ARGS...]\n");
        return 2;
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "rusage: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "rusage: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "rusage: wait4: %s\n", strerror(errno));
            return 127;
        }
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    out = fopen(argv[1], "w");
    if (out == NULL) {
        fprintf(stderr, "rusage: cannot write %s: %s\n", argv[1], strerror(errno));
        return 127;
    }
    fprintf(out, "{\"pid\":%ld,\"code\":%d,\"user_s\":%.6f,\"sys_s\":%.6f,\"maxrss_kib\":%ld}\n",
            (long)pid, code, seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_maxrss);
    if (fclose(out) != 0)
        return 127;
    return code;
}
