/* espsim: a bench of simulated ESP8266/ESP32 boards in download mode, each behind a pty (and
 * optionally TCP) with a reset socket, for testing, demonstrating and benchmarking espstation.
 * Exit status: 0 after a clean run, 1 if start-up failed, 2 for a bad command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "io.h"

int main(int argc, char **argv)
{
    struct bench_options *opts = calloc(1, sizeof(*opts));
    struct es_err err;
    int rc;

    if (opts == NULL) {
        fputs("espsim: out of memory\n", stderr);
        return 1;
    }
    /* 1. Command line, bench file and board specs; MACs and flash ids from --seed. */
    if (bench_options_parse(opts, argc, argv, &err) < 0) {
        fprintf(stderr, "espsim: %s\n", err.msg);
        free(opts);
        return 2;
    }
    if (opts->help || opts->version) {
        fputs(opts->help ? bench_usage() : "espsim " ESPSTATION_VERSION "\n", stdout);
        free(opts);
        return 0;
    }
    /* 2. A client that goes away must not kill us on write; the write just fails. */
    signal(SIGPIPE, SIG_IGN);
    /* 3. Build the bench, announce it, run until SIGINT/SIGTERM (or stdin EOF), clean up. */
    rc = io_sim_run(opts, &err);
    if (rc < 0)
        fprintf(stderr, "espsim: %s\n", err.msg);
    free(opts);
    return rc < 0 ? 1 : 0;
}
