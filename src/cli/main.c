/* espstation: argv -> subcommand -> exit status (style.md §9). 0 every board passed, 1 a board
 * failed or the run was interrupted, 2 the profile, an image or the command line is wrong (and
 * then no board was touched). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cmd_fleet.h"
#include "cmd_ports.h"
#include "es/fleet.h"
#include "es/port.h"
#include "es/profile.h"
#include "es/station.h"
#include "version.h"

#define EXIT_PASS     0
#define EXIT_FAILED   1
#define EXIT_BADINPUT 2

#define TIMEOUT_SCALE_MIN 0.1
#define TIMEOUT_SCALE_MAX 100.0

static void usage(FILE *f)
{
    fputs(
        "usage: espstation run PROFILE.yaml [PROFILE.yaml...] [options]\n"
        "       espstation verify PROFILE.yaml [options]   QA: read back and compare, never write\n"
        "       espstation check PROFILE.yaml              validate; print the plan\n"
        "       espstation ports                           serial ports with USB identity\n"
        "       espstation ports --names                   their paths only, one per line\n"
        "       espstation ports --udev                    udev rules naming each USB adapter\n"
        "                                                  /dev/espstation/slot-<USB port>\n"
        "       espstation db init URL                     create or upgrade the fleet database\n"
        "       espstation fleet URL [--json] [--since WHEN] [--until WHEN] [--station S]\n"
        "                            [--profile P]  the fleet database, read-only: per station\n"
        "                            and profile, yield, boards/h, top failures, duplicate MACs\n"
        "                            (default: today; 'espstation fleet --help' for WHEN)\n"
        "       espstation --version\n"
        "\n"
        "options for run and verify:\n"
        "  -p, --port PORT        a port to use (repeatable): /dev/ttyUSB3, a glob in quotes\n"
        "                         ('/dev/ttyUSB*'), or socket://host:port\n"
        "      --simulate N       start the simulated bench (espsim) with N boards and use it\n"
        "      --sim-arg ARG      pass ARG to espsim (repeatable), e.g. --sim-arg=--state=DIR\n"
        "      --sim-time-scale X espsim --time-scale (default 1: real line and flash times)\n"
        "      --reports DIR      reports directory (default: the profile's `reports`)\n"
        "      --json             print machine-readable events, one JSON object per line\n"
        "      --lines            plain timestamped lines even on a terminal\n"
        "      --timeout-scale X  multiply every protocol timeout by X (0.1 to 100)\n"
        "      --publish URL      send every board's record to this PostgreSQL database\n"
        "                         (before $ESPSTATION_PUBLISH and the profile's publish:;\n"
        "                         --publish '' turns publishing off); records wait in\n"
        "                         REPORTS/outbox/STATION/ while the database is away\n"
        "      --station NAME     this station's id in run.json and the database (default:\n"
        "                         $ESPSTATION_STATION, else the host name)\n"
        "  -v, --verbose          log every frame as hex\n"
        "\n"
        "production line (run only):\n"
        "      --continuous       stay up until Ctrl-C/SIGTERM/SIGHUP, flashing board after\n"
        "                         board: each slot listens for a board in download mode (and\n"
        "                         says what to do when one prints its boot log instead),\n"
        "                         flashes a new MAC, and tells the operator to remove one\n"
        "                         already flashed;\n"
        "                         ports matching --port globs (or espsim's) that appear later\n"
        "                         become slots; run.json is rewritten after every board\n"
        "      --reflash          with --continuous: flash a board again even when its MAC is\n"
        "                         the one just flashed on that slot\n"
        "      --run-json-latest N  with --continuous: run.json lists the latest N boards\n"
        "                         (default 1000; its counts cover every board, and every\n"
        "                         board keeps its report and journal lines)\n",
        f);
}

struct options {
    const char *command;
    char **profiles;
    size_t n_profiles;
    char **ports;
    size_t n_ports;
    char **sim_args;
    size_t n_sim_args;
    int simulate;
    double sim_time_scale;
    double timeout_scale;
    const char *reports;
    enum station_output output;
    int verbose;
    int continuous, reflash;
    unsigned long run_json_latest; /* 0: the station's default */
    int names;                     /* ports --names: paths only, for scripts and completion */
    int udev;                      /* ports --udev */
    const char *publish;           /* --publish (NULL: not given; "": off) */
    const char *station;           /* --station, or NULL */
};

/* Appends item to a growing list. Returns 0, or -1 out of memory (the list is unchanged). */
static int push(char ***list, size_t *n, char *item)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(**list));

    if (grown == NULL)
        return -1;
    grown[(*n)++] = item;
    *list = grown;
    return 0;
}

/* push() for a string the list takes ownership of (NULL: its strdup failed): freed when it
 * cannot be added. */
static int push_owned(char ***list, size_t *n, char *item)
{
    if (item == NULL || push(list, n, item) < 0) {
        free(item);
        return -1;
    }
    return 0;
}

static int out_of_memory(void)
{
    fprintf(stderr, "espstation: out of memory reading the command line\n");
    return EXIT_BADINPUT;
}

static int parse_double(const char *opt, const char *text, double *out)
{
    char *end;

    *out = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(*out) || *out < 0) {
        fprintf(stderr, "espstation: %s '%s' is not a non-negative number\n", opt, text);
        return -1;
    }
    return 0;
}

/* --timeout-scale: a finite factor in [TIMEOUT_SCALE_MIN, TIMEOUT_SCALE_MAX]. NaN would make a
 * dead board wait forever, a huge factor overflows every timeout to 0 ms, and 0 has no meaning
 * (issue 11 #6). */
static int parse_timeout_scale(const char *text, double *out)
{
    char *end;

    *out = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(*out) || *out < TIMEOUT_SCALE_MIN ||
        *out > TIMEOUT_SCALE_MAX) {
        fprintf(stderr,
                "espstation: --timeout-scale '%s': give a number from %g to %g (1 = the "
                "protocol's own timeouts; 3 to 5 for sanitizer or valgrind builds)\n",
                text, TIMEOUT_SCALE_MIN, TIMEOUT_SCALE_MAX);
        return -1;
    }
    return 0;
}

/* Parses argv into o. Returns 0, or EXIT_BADINPUT after printing what is wrong. */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_SIM = 256,
        OPT_SIM_ARG,
        OPT_SIM_SCALE,
        OPT_REPORTS,
        OPT_JSON,
        OPT_LINES,
        OPT_TSCALE,
        OPT_CONTINUOUS,
        OPT_REFLASH,
        OPT_RUN_JSON_LATEST,
        OPT_NAMES,
        OPT_UDEV,
        OPT_PUBLISH,
        OPT_STATION
    };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"simulate", required_argument, NULL, OPT_SIM},
        {"sim-arg", required_argument, NULL, OPT_SIM_ARG},
        {"sim-time-scale", required_argument, NULL, OPT_SIM_SCALE},
        {"reports", required_argument, NULL, OPT_REPORTS},
        {"json", no_argument, NULL, OPT_JSON},
        {"lines", no_argument, NULL, OPT_LINES},
        {"timeout-scale", required_argument, NULL, OPT_TSCALE},
        {"continuous", no_argument, NULL, OPT_CONTINUOUS},
        {"reflash", no_argument, NULL, OPT_REFLASH},
        {"run-json-latest", required_argument, NULL, OPT_RUN_JSON_LATEST},
        {"names", no_argument, NULL, OPT_NAMES},
        {"udev", no_argument, NULL, OPT_UDEV},
        {"publish", required_argument, NULL, OPT_PUBLISH},
        {"station", required_argument, NULL, OPT_STATION},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;

    o->sim_time_scale = 1.0;
    o->timeout_scale = 1.0;
    optind = 2;
    while ((c = getopt_long(argc, argv, "p:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (push(&o->ports, &o->n_ports, optarg) < 0)
                return out_of_memory();
            break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(EXIT_PASS);
        case OPT_SIM:
            o->simulate = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o->simulate < 1 || o->simulate > 256) {
                fprintf(stderr, "espstation: --simulate '%s': give a board count from 1 to 256\n",
                        optarg);
                return EXIT_BADINPUT;
            }
            break;
        case OPT_SIM_ARG:
            if (push(&o->sim_args, &o->n_sim_args, optarg) < 0)
                return out_of_memory();
            break;
        case OPT_SIM_SCALE:
            if (parse_double("--sim-time-scale", optarg, &o->sim_time_scale) < 0)
                return EXIT_BADINPUT;
            break;
        case OPT_TSCALE:
            if (parse_timeout_scale(optarg, &o->timeout_scale) < 0)
                return EXIT_BADINPUT;
            break;
        case OPT_REPORTS: o->reports = optarg; break;
        case OPT_JSON: o->output = STATION_OUTPUT_JSON; break;
        case OPT_LINES: o->output = STATION_OUTPUT_LINES; break;
        case OPT_CONTINUOUS: o->continuous = 1; break;
        case OPT_REFLASH: o->reflash = 1; break;
        case OPT_NAMES: o->names = 1; break;
        case OPT_UDEV: o->udev = 1; break;
        case OPT_PUBLISH: o->publish = optarg; break;
        case OPT_STATION: o->station = optarg; break;
        case OPT_RUN_JSON_LATEST: {
            char *rest = NULL;

            errno = 0;
            o->run_json_latest = strtoul(optarg, &rest, 10);
            if (errno != 0 || rest == optarg || *rest != '\0' || o->run_json_latest < 1 ||
                o->run_json_latest > 1000000 || optarg[0] == '-') {
                fprintf(stderr,
                        "espstation: --run-json-latest '%s': give a number of boards from 1 to "
                        "1000000\n",
                        optarg);
                return EXIT_BADINPUT;
            }
            break;
        }
        default: usage(stderr); return EXIT_BADINPUT;
        }
    }
    for (int i = optind; i < argc; i++)
        if (push(&o->profiles, &o->n_profiles, argv[i]) < 0)
            return out_of_memory();
    return 0;
}

/* Loads every profile and checks they claim different chips; prints the first error. */
static int load_profiles(const struct options *o, struct profile **profiles)
{
    struct es_err err;

    if (o->n_profiles == 0) {
        fprintf(stderr, "espstation: %s needs a profile: espstation %s PROFILE.yaml\n", o->command,
                o->command);
        return EXIT_BADINPUT;
    }
    for (size_t i = 0; i < o->n_profiles; i++) {
        if (profile_load(o->profiles[i], &profiles[i], &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return EXIT_BADINPUT;
        }
    }
    /* Two profiles for one chip would be resolved by command-line order, silently. */
    if (profile_check_set((const struct profile *const *)profiles, o->n_profiles, &err) < 0) {
        fprintf(stderr, "espstation: %s\n", err.msg);
        return EXIT_BADINPUT;
    }
    return 0;
}

/* Every USB serial port, in slot order: the default when neither the command line nor the
 * profile names ports (design.md). */
static int usb_ports(char ***ports, size_t *n)
{
    struct port_info *list;
    size_t nl;
    struct es_err err;

    if (port_list(&list, &nl, &err) < 0) {
        fprintf(stderr, "espstation: %s\n", err.msg);
        return EXIT_BADINPUT;
    }
    port_sort(list, nl);
    for (size_t i = 0; i < nl; i++) {
        if (list[i].transport == PORT_TRANSPORT_USB &&
            push_owned(ports, n, strdup(list[i].name)) < 0) {
            port_list_free(list, nl);
            return out_of_memory();
        }
    }
    port_list_free(list, nl);
    if (*n == 0) {
        fprintf(stderr, "espstation: no USB serial ports found; plug in the boards, or give "
                        "--port, a `ports:` list in the profile, or --simulate N\n");
        return EXIT_BADINPUT;
    }
    return 0;
}

/* Appends names[0, count) (malloc'd strings, in a malloc'd array) to the list, which takes the
 * strings; frees the array, and on failure every string not added. 0, or -1 with ES_NOMEM. */
static int push_all(char ***ports, size_t *n, char **names, size_t count, struct es_err *err)
{
    int rc = 0;

    for (size_t k = 0; k < count; k++) {
        if (rc == 0 && push(ports, n, names[k]) < 0)
            rc = es_fail(err, ES_NOMEM, "out of memory");
        if (rc < 0)
            free(names[k]);
    }
    free(names);
    return rc;
}

/* Appends the ports a name stands for: socket://... as it is, anything else through port_glob. */
static int add_named(char ***ports, size_t *n, const char *pattern, int continuous,
                     struct es_err *err)
{
    char **names;
    size_t count;

    if (strncmp(pattern, "socket://", 9) == 0) {
        if (port_check_name(pattern, err) < 0)
            return -1;
        if (push_owned(ports, n, strdup(pattern)) < 0)
            return es_fail(err, ES_NOMEM, "out of memory");
        return 0;
    }
    if (port_glob(pattern, &names, &count, err) < 0) {
        /* A line's pattern may match nothing yet: its boards are plugged in later. */
        if (continuous && err->code == ES_PORT_OPEN && strpbrk(pattern, "*?[") != NULL)
            return 0;
        return -1;
    }
    return push_all(ports, n, names, count, err);
}

/* Appends the serial ports whose USB identity matches a profile's {usb, serial, location}. */
static int add_usb_match(char ***ports, size_t *n, const struct profile_port *pp,
                         struct es_err *err)
{
    struct port_match m = {pp->has_usb ? pp->usb_vid : -1, pp->has_usb ? pp->usb_pid : -1,
                           pp->serial, pp->location};
    struct port_info *list;
    char **names;
    size_t nl, count;
    int rc;

    if (port_list(&list, &nl, err) < 0)
        return -1;
    rc = port_select(list, nl, &m, &names, &count, err);
    port_list_free(list, nl);
    if (rc < 0)
        return -1;
    return push_all(ports, n, names, count, err);
}

/* Expands the ports of the command line, else those of the first profile, else every USB
 * serial port. */
static int resolve_ports(const struct options *o, const struct profile *p, char ***ports, size_t *n)
{
    struct es_err err;

    *ports = NULL;
    *n = 0;
    if (o->n_ports > 0) {
        for (size_t i = 0; i < o->n_ports; i++) {
            if (add_named(ports, n, o->ports[i], o->continuous, &err) < 0) {
                fprintf(stderr, "espstation: --port %s: %s\n", o->ports[i], err.msg);
                return EXIT_BADINPUT;
            }
        }
        return 0;
    }
    if (o->simulate > 0)
        return 0;
    if (p->n_ports == 0)
        return usb_ports(ports, n);
    for (size_t i = 0; i < p->n_ports; i++) {
        const struct profile_port *pp = &p->ports[i];
        int rc = pp->path != NULL ? add_named(ports, n, pp->path, o->continuous, &err)
                                  : add_usb_match(ports, n, pp, &err);
        if (rc < 0) {
            fprintf(stderr, "%s:%d:%d: ports: %s\n", p->path, pp->pos.line, pp->pos.col, err.msg);
            return EXIT_BADINPUT;
        }
    }
    return 0;
}

/* The database to publish to, highest first: --publish, $ESPSTATION_PUBLISH, the profiles'
 * publish: (which must then agree). NULL: not publishing. A malformed URL is bad input (2). */
static int resolve_publish(const struct options *o, struct profile *const *profiles,
                           const char **url)
{
    const char *env = getenv("ESPSTATION_PUBLISH");
    const struct profile *from = NULL;
    char shown[256];
    struct es_err err;

    *url = NULL;
    if (o->publish != NULL) {
        *url = o->publish[0] != '\0' ? o->publish : NULL;
    } else if (env != NULL && env[0] != '\0') {
        *url = env;
    } else {
        for (size_t i = 0; i < o->n_profiles; i++) {
            const struct profile *p = profiles[i];

            if (p->publish == NULL)
                continue;
            if (from != NULL && strcmp(from->publish, p->publish) != 0) {
                fprintf(stderr,
                        "espstation: %s:%d:%d and %s:%d:%d name different publish databases; a "
                        "run publishes to one: make them agree, or give --publish URL\n",
                        from->path, from->publish_pos.line, from->publish_pos.col, p->path,
                        p->publish_pos.line, p->publish_pos.col);
                return EXIT_BADINPUT;
            }
            from = p;
        }
        *url = from != NULL ? from->publish : NULL;
        return 0; /* checked when the profile was read */
    }
    if (*url != NULL && fleet_url_display(*url, shown, sizeof(shown), &err) < 0) {
        fprintf(stderr, "espstation: %s: %s\n",
                o->publish != NULL ? "--publish" : "ESPSTATION_PUBLISH", err.msg);
        return EXIT_BADINPUT;
    }
    return 0;
}

/* The station id, highest first: --station, $ESPSTATION_STATION, the host name (NULL: the
 * station asks for it). It is part of record keys and a directory name: no '/'. */
static int resolve_station(const struct options *o, const char **id)
{
    const char *env = getenv("ESPSTATION_STATION");

    *id = o->station != NULL ? o->station : env != NULL && env[0] != '\0' ? env : NULL;
    if (*id != NULL && ((*id)[0] == '\0' || strchr(*id, '/') != NULL || strlen(*id) > 64)) {
        fprintf(stderr,
                "espstation: %s '%s': give a station name of 1 to 64 characters without '/'\n",
                o->station != NULL ? "--station" : "ESPSTATION_STATION", *id);
        return EXIT_BADINPUT;
    }
    return 0;
}

static int cmd_run(const struct options *o, enum session_mode mode)
{
    struct profile **profiles = calloc(o->n_profiles + 1, sizeof(*profiles));
    struct station_config cfg = {0};
    struct station_result res;
    struct es_err err;
    char **ports = NULL, **watch = NULL;
    size_t n_ports = 0, n_watch = 0;
    int status;

    if (profiles == NULL)
        return EXIT_FAILED;
    status = load_profiles(o, profiles);
    if (status == 0 && o->continuous && mode != SESSION_FLASH) {
        fprintf(stderr, "espstation: --continuous is for run, not verify\n");
        status = EXIT_BADINPUT;
    }
    if (status == 0 && o->reflash && !o->continuous) {
        fprintf(stderr, "espstation: --reflash needs --continuous\n");
        status = EXIT_BADINPUT;
    }
    if (status == 0)
        status = resolve_publish(o, profiles, &cfg.publish_url);
    if (status == 0)
        status = resolve_station(o, &cfg.station_id);
    if (status == 0)
        status = resolve_ports(o, profiles[0], &ports, &n_ports);
    if (status != 0)
        goto out;
    cfg.profiles = (const struct profile *const *)profiles;
    cfg.n_profiles = o->n_profiles;
    cfg.ports = ports;
    cfg.n_ports = n_ports;
    cfg.mode = mode;
    cfg.simulate = o->simulate;
    cfg.sim_args = o->sim_args;
    cfg.n_sim_args = o->n_sim_args;
    cfg.sim_time_scale = o->sim_time_scale;
    cfg.reports_root = o->reports;
    cfg.output = o->output;
    cfg.verbose = o->verbose;
    cfg.timeout_scale = o->timeout_scale;
    cfg.continuous = o->continuous;
    cfg.reflash = o->reflash;
    cfg.run_json_latest = (size_t)o->run_json_latest;
    /* The patterns new ports are matched against: --port, else the profile's paths. */
    if (o->n_ports > 0) {
        cfg.watch = o->ports;
        cfg.n_watch = o->n_ports;
    } else if (o->simulate == 0) {
        for (size_t i = 0; i < profiles[0]->n_ports; i++)
            if (profiles[0]->ports[i].path != NULL &&
                push(&watch, &n_watch, profiles[0]->ports[i].path) < 0) {
                status = out_of_memory();
                goto out;
            }
        cfg.watch = watch;
        cfg.n_watch = n_watch;
    }
    if (station_run(&cfg, &res, &err) < 0) {
        fprintf(stderr, "espstation: %s\n", err.msg);
        /* Nothing was touched: the command line, the profile or the reports directory is
         * wrong. */
        status = err.code == ES_USAGE || err.code == ES_STUB || err.code == ES_REPORT
                     ? EXIT_BADINPUT
                     : EXIT_FAILED;
        goto out;
    }
    if (o->output != STATION_OUTPUT_JSON)
        printf("reports: %s\n", res.run_dir);
    /* A run whose record is incomplete has failed, whatever the boards did. */
    status = res.failed == 0 && res.interrupted == 0 && res.reports_lost == 0 &&
                     !res.journal_lost && !res.summary_lost
                 ? EXIT_PASS
                 : EXIT_FAILED;
out:
    for (size_t i = 0; i < o->n_profiles; i++)
        profile_free(profiles[i]);
    free(profiles);
    for (size_t i = 0; i < n_ports; i++)
        free(ports[i]);
    free(ports);
    free(watch);
    return status;
}

static int cmd_check(const struct options *o)
{
    struct profile **profiles = calloc(o->n_profiles + 1, sizeof(*profiles));
    int status;

    if (profiles == NULL)
        return EXIT_FAILED;
    status = load_profiles(o, profiles);
    for (size_t i = 0; status == 0 && i < o->n_profiles; i++)
        if (profile_print_plan(profiles[i], stdout) < 0)
            status = EXIT_FAILED;
    for (size_t i = 0; i < o->n_profiles; i++)
        profile_free(profiles[i]);
    free(profiles);
    return status;
}

/* Raises the soft limit on open files to the hard one. Every board holds a tty and a reset
 * socket, so a bench of a few hundred boards passes the usual soft limit of 1024, and a slot
 * that cannot open its port fails (issue 11 #13). Where the hard limit is lower still, those
 * slots fail with a report that says so. */
static void raise_open_files_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int status;

    /* As many open files as the system allows this user: one tty and one socket per board. */
    raise_open_files_limit();
    /* A reader that goes away (stdout piped into head, a dead espsim) must be a write error we
     * report, not a signal that kills the station before the reports are written. */
    signal(SIGPIPE, SIG_IGN);

    /* The subcommand comes first, as in git. */
    if (argc < 2) {
        usage(stderr);
        return EXIT_BADINPUT;
    }
    o.command = argv[1];
    if (strcmp(o.command, "--version") == 0 || strcmp(o.command, "version") == 0) {
        version_print(stdout);
        return EXIT_PASS;
    }
    if (strcmp(o.command, "--help") == 0 || strcmp(o.command, "-h") == 0 ||
        strcmp(o.command, "help") == 0) {
        usage(stdout);
        return EXIT_PASS;
    }
    /* The fleet database's commands take options of their own (cmd_fleet.c). */
    if (strcmp(o.command, "db") == 0)
        return cmd_db(argc, argv);
    if (strcmp(o.command, "fleet") == 0)
        return cmd_fleet(argc, argv);
    /* Options are parsed once, after the subcommand; profiles supply the rest. */
    status = parse_options(argc, argv, &o);
    if (status == 0 && o.udev && strcmp(o.command, "ports") != 0) {
        fprintf(stderr, "espstation: --udev is for `espstation ports`\n");
        status = EXIT_BADINPUT;
    }
    if (status == 0) {
        if (strcmp(o.command, "run") == 0)
            status = cmd_run(&o, SESSION_FLASH);
        else if (strcmp(o.command, "verify") == 0)
            status = cmd_run(&o, SESSION_VERIFY);
        else if (strcmp(o.command, "check") == 0)
            status = cmd_check(&o);
        else if (strcmp(o.command, "ports") == 0 && o.udev)
            status = cmd_ports_udev();
        else if (strcmp(o.command, "ports") == 0)
            status = cmd_ports(o.names);
        else {
            fprintf(stderr, "espstation: unknown command '%s'\n", o.command);
            usage(stderr);
            status = EXIT_BADINPUT;
        }
    }
    free(o.profiles);
    free(o.ports);
    free(o.sim_args);
    return status;
}
