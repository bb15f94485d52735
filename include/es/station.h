/* The station: one libuv loop and one thread driving a session per port, the signal handles,
 * the run directory (reports, journal) and the live view. It owns the payloads (prepared and
 * compressed images) that every session borrows, and an optional simulated bench (espsim) run
 * as a child process. */
#ifndef ES_STATION_H
#define ES_STATION_H

#include <stddef.h>

#include "es/err.h"
#include "es/profile.h"
#include "es/session.h"

enum station_output {
    STATION_OUTPUT_AUTO,  /* live table on a terminal, plain lines otherwise */
    STATION_OUTPUT_LINES, /* plain timestamped lines */
    STATION_OUTPUT_JSON,  /* one JSON event per line (the journal's lines) */
};

struct station_config {
    const struct profile *const *profiles; /* a board takes the first whose chip matches */
    size_t n_profiles;
    char **ports; /* ports to use; with simulate they are added after the simulated ones */
    size_t n_ports;
    enum session_mode mode;
    int simulate;    /* > 0: start espsim with this many boards */
    char **sim_args; /* extra espsim arguments (faults, --state ...) */
    size_t n_sim_args;
    double sim_time_scale;    /* espsim --time-scale */
    const char *reports_root; /* NULL: the first profile's `reports` */
    enum station_output output;
    int verbose;
    double timeout_scale; /* multiplies every protocol timeout */
};

struct station_result {
    size_t passed, failed, interrupted;
    char run_dir[4096];
};

/* Runs every board to the end and writes the reports. Returns 0 when the run happened (look at
 * res for the boards' results), or a negative code when it could not start (no ports, espsim
 * did not start, the reports directory cannot be created, no stub): then no board was touched. */
int station_run(const struct station_config *cfg, struct station_result *res, struct es_err *err);

#endif
