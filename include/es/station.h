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
    /* A production line (run --continuous): the station stays up until SIGINT, SIGTERM or
     * SIGHUP. Each slot flashes board after board; a port that appears later matching one of
     * watch (glob patterns; with simulate, espsim's ports too) becomes a slot, one that vanishes
     * ends its board's session and waits. After a board, the slot probes (SESSION_PROBE) for
     * the next: a new MAC is flashed, the MAC just flashed is not (unless reflash). run.json is
     * rewritten after every board. */
    int continuous;
    int reflash;
    size_t run_json_latest; /* continuous: run.json lists this many latest boards (0: 1000) */
    char **watch;
    size_t n_watch;
    /* The fleet database (es/publish.h): every board's record and the run's go to the outbox
     * beside the reports (<reports>/outbox/<station_id>/) and on to this PostgreSQL URL. NULL or
     * "": not publishing. Publishing never changes a board's result except through
     * duplicate_mac: fail, and never delays one. */
    const char *publish_url;
    /* Names this station in run.json and in the database (--station, $ESPSTATION_STATION, or
     * the host name). NULL: the host name. */
    const char *station_id;
};

struct station_result {
    size_t passed, failed, interrupted; /* boards (continuous: every board of the run) */
    size_t reports_lost; /* boards whose report could not be written (named on stderr) */
    int journal_lost;    /* the journal stopped before the end (disk full, file size limit) */
    int summary_lost;    /* run.json could not be written */
    char run_dir[4096];
};

/* Runs every board to the end and writes the reports. Returns 0 when the run happened (look at
 * res for the boards' results, and for what could not be recorded: a run with a lost report,
 * journal or run.json has failed whatever the boards did), or a negative code when it could not
 * start: ES_USAGE (no ports, one board twice), ES_REPORT (the reports directory is not
 * writable, is not a directory or has no room), ES_STUB, ES_IO (espsim did not start). Then no
 * board was touched. SIGINT, SIGTERM and SIGHUP stop the boards as interrupted. */
int station_run(const struct station_config *cfg, struct station_result *res, struct es_err *err);

#endif
