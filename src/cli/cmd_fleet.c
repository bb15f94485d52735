/* `espstation db init URL` and `espstation fleet URL`: the commands that read and set up the
 * fleet database, outside any station run. Their options are their own, so main() hands them
 * argv whole. Exit status: 0 done, 1 the database refused or could not be reached, 2 the command
 * line or the URL is wrong. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_fleet.h"
#include "es/fleet_db.h"

#define EXIT_DONE     0
#define EXIT_DB       1
#define EXIT_BADINPUT 2

static int db_usage(FILE *f, int status)
{
    fputs("usage: espstation db init URL\n"
          "  create the fleet database's tables, or bring them to this espstation's schema\n"
          "  version (safe to run again); URL is a libpq URL, e.g.\n"
          "  postgresql://station@db.example/factory\n",
          f);
    return status;
}

static int fleet_usage(FILE *f, int status)
{
    fputs("usage: espstation fleet URL [--since WHEN] [--until WHEN] [--station S] [--profile P]\n"
          "                            [--json]\n"
          "  per station and profile: passed, failed, yield, boards per hour, top failures,\n"
          "  and duplicate MACs, for boards that ended in [since, until) (default: today)\n"
          "  WHEN: now, today, yesterday, -N followed by m, h, d or w (e.g. -8h), YYYY-MM-DD,\n"
          "        YYYY-MM-DDTHH:MM[:SS] (local time, or ending in Z or +HH:MM)\n",
          f);
    return status;
}

/* Prints err and maps its code to the exit status. */
static int failed(const struct es_err *err)
{
    fprintf(stderr, "espstation: %s\n", err->msg);
    return err->code == ES_USAGE ? EXIT_BADINPUT : EXIT_DB;
}

int cmd_db(int argc, char **argv)
{
    char shown[FLEET_URL_SHOWN_MAX];
    struct fleet_schema_result res;
    struct es_err err;
    PGconn *conn;
    int status = EXIT_DONE;

    if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))
        return db_usage(stdout, EXIT_DONE);
    if (argc != 4 || strcmp(argv[2], "init") != 0)
        return db_usage(stderr, EXIT_BADINPUT);
    conn = fleet_db_connect(argv[3], "espstation db init", shown, sizeof(shown), &err);
    if (conn == NULL)
        return failed(&err);
    if (fleet_schema_init(conn, shown, &res, &err) < 0)
        status = failed(&err);
    else if (res.applied[0] != '\0')
        printf("fleet database %s: schema at version %d (applied %s)\n", shown, res.version_after,
               res.applied);
    else
        printf("fleet database %s: schema already at version %d\n", shown, res.version_after);
    PQfinish(conn);
    return status;
}

/* Parses --since/--until; prints what is wrong. 0, or -1. */
static int parse_when(const char *opt, const char *text, time_t now, time_t *out)
{
    struct es_err err;

    if (fleet_when_parse(text, now, out, &err) < 0) {
        fprintf(stderr, "espstation: fleet %s: %s\n", opt, err.msg);
        return -1;
    }
    return 0;
}

int cmd_fleet(int argc, char **argv)
{
    enum { OPT_SINCE = 256, OPT_UNTIL, OPT_STATION, OPT_PROFILE, OPT_JSON };
    static const struct option longopts[] = {
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"station", required_argument, NULL, OPT_STATION},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *since = "today", *until = "now";
    struct fleet_filter filter = {0};
    char shown[FLEET_URL_SHOWN_MAX];
    struct es_err err;
    time_t now = time(NULL);
    int c, json = 0, status = EXIT_DONE;
    PGconn *conn;
    json_t *doc;

    optind = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SINCE: since = optarg; break;
        case OPT_UNTIL: until = optarg; break;
        case OPT_STATION: filter.station = optarg; break;
        case OPT_PROFILE: filter.profile = optarg; break;
        case OPT_JSON: json = 1; break;
        case 'h': return fleet_usage(stdout, EXIT_DONE);
        default: return fleet_usage(stderr, EXIT_BADINPUT);
        }
    }
    if (optind != argc - 1)
        return fleet_usage(stderr, EXIT_BADINPUT);
    if (parse_when("--since", since, now, &filter.since) < 0 ||
        parse_when("--until", until, now, &filter.until) < 0)
        return EXIT_BADINPUT;
    if (filter.since >= filter.until) {
        fprintf(stderr, "espstation: fleet: --since %s is not before --until %s\n", since, until);
        return EXIT_BADINPUT;
    }
    conn = fleet_db_connect(argv[optind], "espstation fleet", shown, sizeof(shown), &err);
    if (conn == NULL)
        return failed(&err);
    doc = fleet_summary_read(conn, shown, &filter, &err);
    PQfinish(conn);
    if (doc == NULL)
        return failed(&err);
    if (json) {
        if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) < 0 ||
            fputc('\n', stdout) == EOF)
            status = EXIT_DB;
    } else if (fleet_text_print(doc, stdout) < 0) {
        status = EXIT_DB;
    }
    json_decref(doc);
    if (fflush(stdout) != 0)
        status = EXIT_DB;
    if (status != EXIT_DONE)
        fprintf(stderr, "espstation: fleet: writing the output failed\n");
    return status;
}
