/* espsim, the board simulator, as a child process of the station (--simulate): found next to
 * espstation or through ESPSTATION_ESPSIM, started with one --board per simulated board, and
 * read until it has printed every pty and "ready". Its stdin is a pipe the station holds, so
 * espsim dies with the station however the station dies. */
#include "station_sim.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "es/install_dir.h"

extern char **environ;

static int find_espsim(char *out, size_t cap)
{
    const char *env = getenv("ESPSTATION_ESPSIM");
    char self[4096];
    static const char *const rel[] = {"/espsim", "/../../tools/sim/espsim", "/../tools/sim/espsim"};

    if (env != NULL && env[0] != '\0') {
        snprintf(out, cap, "%s", env);
        return access(out, X_OK);
    }
    if (es_exe_dir(self, sizeof(self)) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(out, cap, "%s%s", self, rel[i]);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* Which chip each simulated board is: the profiles' chips in turn (auto: ESP8266 and ESP32). */
static const char *sim_chip(const struct station_config *cfg, int i)
{
    const char *chips[8];
    size_t n = 0;

    for (size_t k = 0; k < cfg->n_profiles && n < 8; k++) {
        if (cfg->profiles[k]->chip == NULL) {
            chips[n++] = "esp8266";
            if (n < 8)
                chips[n++] = "esp32";
        } else {
            chips[n++] = cfg->profiles[k]->chip->name;
        }
    }
    return chips[(size_t)i % n];
}

int station_sim_start(struct station_sim *sim, const struct station_config *cfg, char ***ports,
                      size_t *n_ports, struct es_err *err)
{
    char espsim[4096], scale[32], line[8192];
    char **argv;
    size_t argc = 0, nargs = 8 + 2 * (size_t)cfg->simulate + cfg->n_sim_args;
    int pipefd[2], infd[2];
    posix_spawn_file_actions_t fa;
    FILE *f;
    int rc;

    if (find_espsim(espsim, sizeof(espsim)) < 0)
        return es_fail(err, ES_USAGE,
                       "--simulate needs espsim next to espstation or in ESPSTATION_ESPSIM; build "
                       "it with cmake (target espsim)");
    argv = calloc(nargs + 1, sizeof(*argv));
    if (argv == NULL)
        return es_fail(err, ES_NOMEM, "out of memory starting espsim");
    argv[argc++] = espsim;
    snprintf(scale, sizeof(scale), "%g", cfg->sim_time_scale);
    argv[argc++] = "--time-scale";
    argv[argc++] = scale;
    argv[argc++] = "--exit-on-eof";
    for (int i = 0; i < cfg->simulate; i++) {
        argv[argc++] = "--board";
        argv[argc++] = (char *)sim_chip(cfg, i);
    }
    for (size_t i = 0; i < cfg->n_sim_args; i++)
        argv[argc++] = cfg->sim_args[i];
    argv[argc] = NULL;

    if (pipe(pipefd) < 0 || pipe(infd) < 0) {
        free(argv);
        return es_fail(err, ES_IO, "pipe: %s", strerror(errno));
    }
    /* espsim's stdin is a pipe we never write to: when the station dies, however it dies, the
     * pipe closes and espsim (--exit-on-eof) goes down with it. */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, infd[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, infd[1]);
    rc = posix_spawn(&sim->pid, espsim, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    close(pipefd[1]);
    close(infd[0]);
    sim->stdin_fd = infd[1];
    if (rc != 0) {
        close(pipefd[0]);
        sim->pid = 0;
        return es_fail(err, ES_IO, "cannot start %s: %s", espsim, strerror(rc));
    }
    f = fdopen(pipefd[0], "r");
    if (f == NULL) {
        close(pipefd[0]);
        return es_fail(err, ES_IO, "fdopen: %s", strerror(errno));
    }
    *ports = calloc((size_t)cfg->simulate + cfg->n_ports, sizeof(char *));
    *n_ports = 0;
    rc = es_fail(err, ES_IO, "espsim exited before it was ready (see its messages above)");
    while (*ports != NULL && fgets(line, sizeof(line), f) != NULL) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *port = json_object_get(o, "port");
        if (json_is_true(json_object_get(o, "ready"))) {
            json_decref(o);
            rc = 0;
            break;
        }
        if (json_is_string(port) && *n_ports < (size_t)cfg->simulate)
            (*ports)[(*n_ports)++] = strdup(json_string_value(port));
        json_decref(o);
    }
    /* Keep the pipe open (espsim may print more); closing it could raise SIGPIPE there. */
    if (rc == 0)
        sim->out = f;
    else
        fclose(f);
    return rc;
}

void station_sim_stop(struct station_sim *sim)
{
    int status;

    if (sim->stdin_fd > 0)
        close(sim->stdin_fd);
    sim->stdin_fd = -1;
    if (sim->pid <= 0)
        return;
    kill(sim->pid, SIGTERM);
    waitpid(sim->pid, &status, 0);
    sim->pid = 0;
    if (sim->out != NULL)
        fclose(sim->out);
    sim->out = NULL;
}
