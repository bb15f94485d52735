/* espsim's life cycle: make the directory, the flash files, the ports and sockets and the board
 * models; announce them as JSON lines on stdout; run the loop until SIGINT/SIGTERM (or stdin EOF
 * with --exit-on-eof); then close every handle, check the loop is empty, sync the flash files and
 * remove what we created. The per-board I/O lives in io_board.c, io_pty.c, io_tcp.c, io_ctl.c. */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "es/hex.h"
#include "es/install_dir.h"
#include "io.h"
#include "stubimg.h"

/* sun_path of a Unix socket is 108 bytes on Linux, including the terminating NUL. */
#define IO_SUN_PATH_MAX 108

static int make_dir(struct io_sim *sim, struct es_err *err)
{
    const struct bench_options *o = sim->opts;
    struct stat st;

    if (o->dir == NULL) {
        const char *tmp = getenv("TMPDIR");

        if (tmp == NULL || *tmp == '\0')
            tmp = "/tmp";
        if (snprintf(sim->dir, sizeof(sim->dir), "%s/espsim.XXXXXX", tmp) >= (int)sizeof(sim->dir))
            return es_fail(err, ES_IO, "TMPDIR '%s' is too long", tmp);
        if (mkdtemp(sim->dir) == NULL)
            return es_fail(err, ES_IO, "mkdtemp %s: %s; set TMPDIR or give --dir", sim->dir,
                           strerror(errno));
        sim->dir_created = 1;
    } else {
        if (strlen(o->dir) >= sizeof(sim->dir))
            return es_fail(err, ES_IO, "--dir '%s' is too long", o->dir);
        strcpy(sim->dir, o->dir);
        if (mkdir(sim->dir, 0755) == 0)
            sim->dir_created = 1;
        else if (errno != EEXIST || stat(sim->dir, &st) < 0 || !S_ISDIR(st.st_mode))
            return es_fail(err, ES_IO, "--dir %s: cannot create it as a directory: %s", sim->dir,
                           strerror(errno == EEXIST ? ENOTDIR : errno));
    }
    if (o->state_dir == NULL) {
        strcpy(sim->state_dir, sim->dir);
    } else {
        if (strlen(o->state_dir) >= sizeof(sim->state_dir))
            return es_fail(err, ES_IO, "--state '%s' is too long", o->state_dir);
        strcpy(sim->state_dir, o->state_dir);
        if (mkdir(sim->state_dir, 0755) < 0 &&
            (errno != EEXIST || stat(sim->state_dir, &st) < 0 || !S_ISDIR(st.st_mode)))
            return es_fail(err, ES_IO, "--state %s: cannot create it as a directory: %s",
                           sim->state_dir, strerror(errno == EEXIST ? ENOTDIR : errno));
    }
    return 0;
}

/* The board's flash: DIR/slot<i>.bin, created filled with 0xFF (erased NOR flash) or kept as a
 * previous run left it, and mapped shared so the file always shows what the board holds. */
static int open_flash(struct io_board *b, struct es_err *err)
{
    uint32_t size = b->spec->flash_size;
    struct stat st;
    int created = 0;
    void *map;

    b->flash_fd = open(b->flash_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (b->flash_fd >= 0) {
        created = 1;
        if (ftruncate(b->flash_fd, (off_t)size) < 0)
            return es_fail(err, ES_IO, "slot %d: ftruncate %s: %s", b->slot, b->flash_path,
                           strerror(errno));
    } else if (errno == EEXIST) {
        b->flash_fd = open(b->flash_path, O_RDWR | O_CLOEXEC);
        if (b->flash_fd < 0 || fstat(b->flash_fd, &st) < 0)
            return es_fail(err, ES_IO, "slot %d: open %s: %s", b->slot, b->flash_path,
                           strerror(errno));
        if (st.st_size != (off_t)size)
            return es_fail(err, ES_IO,
                           "slot %d: state file %s holds %lld bytes but the board has a %u-byte "
                           "flash; delete the file or give a matching flash= size",
                           b->slot, b->flash_path, (long long)st.st_size, size);
    } else {
        return es_fail(err, ES_IO, "slot %d: create %s: %s", b->slot, b->flash_path,
                       strerror(errno));
    }
    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->flash_fd, 0);
    if (map == MAP_FAILED)
        return es_fail(err, ES_IO, "slot %d: mmap %s: %s", b->slot, b->flash_path, strerror(errno));
    b->flash = map;
    if (created)
        memset(b->flash, 0xFF, size);
    return 0;
}

/* out = dir/<prefix><slot><suffix>; -1 if it does not fit in cap. */
static int path_in(char *out, size_t cap, const char *dir, const char *prefix, int slot,
                   const char *suffix)
{
    return snprintf(out, cap, "%s/%s%d%s", dir, prefix, slot, suffix) < (int)cap ? 0 : -1;
}

struct sim_board *io_board_model_new(struct io_board *b, struct es_err *err)
{
    struct sim_board_cfg cfg;
    struct sim_board *model;

    memset(&cfg, 0, sizeof(cfg));
    cfg.slot = b->slot;
    cfg.chip = b->spec->chip;
    memcpy(cfg.mac, b->spec->mac, sizeof(cfg.mac));
    cfg.flash_id = b->spec->flash_id;
    cfg.flash = b->flash;
    cfg.flash_size = b->spec->flash_size;
    cfg.faults = b->spec->faults;
    cfg.stubs = b->sim->stubs;
    cfg.seed = b->spec->seed;
    cfg.no_autoreset = b->spec->no_autoreset;
    model = sim_board_new(&cfg, &io_board_ops, b, err);
    if (model == NULL)
        es_err_prefix(err, "slot %d", b->slot);
    return model;
}

static int board_open(struct io_sim *sim, struct io_board *b, int slot, struct es_err *err)
{
    int rc;

    b->sim = sim;
    b->slot = slot;
    b->cur = sim->opts->boards[slot];
    b->spec = &b->cur;
    b->flash_fd = b->master_fd = b->slave_fd = -1;
    if (path_in(b->port_path, sizeof(b->port_path), sim->dir, "ttySIM", slot, "") < 0 ||
        path_in(b->ctl_path, IO_SUN_PATH_MAX, sim->dir, "ttySIM", slot, ".ctl") < 0)
        return es_fail(err, ES_IO,
                       "--dir %s is too long for a control socket path (at most %d bytes); use "
                       "a shorter --dir",
                       sim->dir, IO_SUN_PATH_MAX - 1);
    if (path_in(b->flash_path, sizeof(b->flash_path), sim->state_dir, "slot", slot, ".bin") < 0)
        return es_fail(err, ES_IO, "--state %s is too long", sim->state_dir);

    rc = open_flash(b, err);
    if (rc == 0)
        rc = io_pty_open(b, err);
    if (rc == 0)
        rc = io_pty_start(b, err);
    if (rc == 0)
        rc = io_ctl_start(b, err);
    if (rc == 0 && sim->opts->tcp_base >= 0)
        rc = io_tcp_start(b, sim->opts->tcp_base == 0 ? 0 : sim->opts->tcp_base + slot, err);
    if (rc < 0)
        return rc;
    uv_timer_init(&sim->loop, &b->wake);
    b->wake_init = 1;
    io_autoswap_init(b);
    b->model = io_board_model_new(b, err);
    return b->model == NULL ? -1 : 0;
}

int io_print_json(void *json_obj)
{
    json_t *obj = json_obj;
    char *s = json_dumps(obj, JSON_COMPACT);

    json_decref(obj);
    if (s == NULL)
        return -1;
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(s);
    return 0;
}

static void announce_board(const struct io_board *b)
{
    const struct bench_board *s = b->spec;
    char mac[ES_MAC_TEXT_LEN], id[16], tcp[32];
    json_t *o = json_object();

    es_format_mac(s->mac, ':', mac);
    snprintf(id, sizeof(id), "0x%06x", s->flash_id);
    json_object_set_new(o, "slot", json_integer(b->slot));
    json_object_set_new(o, "chip", json_string(bench_chip_name(s->chip)));
    json_object_set_new(o, "port", json_string(b->port_path));
    json_object_set_new(o, "pty", json_string(b->pty_path));
    json_object_set_new(o, "ctl", json_string(b->ctl_path));
    if (b->sim->opts->tcp_base >= 0) {
        snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", b->tcp_port);
        json_object_set_new(o, "tcp", json_string(tcp));
    }
    json_object_set_new(o, "mac", json_string(mac));
    json_object_set_new(o, "flash_id", json_string(id));
    json_object_set_new(o, "flash_size", json_integer(s->flash_size));
    json_object_set_new(o, "flash", json_string(b->flash_path));
    io_print_json(o);
}

void io_sim_stop(struct io_sim *sim)
{
    int i;

    if (sim->stopping)
        return;
    sim->stopping = 1;
    for (i = 0; i < sim->n_boards; i++) {
        struct io_board *b = &sim->boards[i];

        if (b->sim == NULL)
            continue;
        if (b->wake_init) {
            uv_close((uv_handle_t *)&b->wake, NULL);
            b->wake_init = 0;
        }
        io_autoswap_close(b);
        io_pty_close(b);
        io_ctl_close(b);
        io_tcp_close(b);
    }
    if (sim->signals_init) {
        uv_close((uv_handle_t *)&sim->sigint, NULL);
        uv_close((uv_handle_t *)&sim->sigterm, NULL);
        sim->signals_init = 0;
    }
    io_cmd_chan_close(sim);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct io_sim *sim = s->data;

    (void)signum;
    io_sim_stop(sim);
}

static int load_stubs(struct io_sim *sim, struct es_err *err)
{
    char installed[4096];
    const char *dir = sim->opts->stub_dir;
    struct es_err e;

    /* Without --stub-dir: the installed stubs next to an installed espsim (share/espstation/stubs,
     * as espstation looks), else the build tree's. */
    if (dir == NULL)
        dir = es_install_dir(ES_INSTALL_STUB_DIR, installed, sizeof(installed)) == 0
                  ? installed
                  : ESPSTATION_STUB_DIR;

    sim->stubs = calloc(1, sizeof(*sim->stubs));
    if (sim->stubs == NULL)
        return es_fail(err, ES_NOMEM, "out of memory loading the stubs");
    if (sim_stub_images_load(sim->stubs, dir, &e) == 0)
        return 0;
    if (sim->opts->stub_dir != NULL) {
        *err = e;
        return es_err_prefix(err, "--stub-dir %s", dir);
    }
    /* Without the default stubs the boards still work; uploads are just not checked. */
    if (sim->opts->verbose)
        fprintf(stderr, "espsim: stubs not loaded (%s); uploads are not checked\n", e.msg);
    sim_stub_images_close(sim->stubs);
    free(sim->stubs);
    sim->stubs = NULL;
    return 0;
}

static void print_summary(const struct io_sim *sim)
{
    int i;

    for (i = 0; i < sim->n_boards; i++) {
        const struct io_board *b = &sim->boards[i];
        struct sim_board_stats st;

        if (b->model == NULL)
            continue;
        sim_board_stats(b->model, &st);
        fprintf(stderr,
                "espsim: slot %d (%s, %s): frames in %llu, out %llu; flash written %llu bytes, "
                "%llu erases; %s%s%s\n",
                b->slot, bench_chip_name(b->spec->chip), b->port_path,
                (unsigned long long)st.frames_in, (unsigned long long)st.frames_out,
                (unsigned long long)st.flash_bytes_written, (unsigned long long)st.erases,
                st.app_running ? "app running"
                : st.in_stub   ? "stub"
                               : "rom",
                b->unplugged ? ", unplugged" : "", b->tx_dropped ? ", output dropped" : "");
    }
}

/* After the loop: free the models, sync and unmap the flash, remove what we created. */
static int sim_cleanup(struct io_sim *sim)
{
    int i, rc = 0;

    for (i = 0; i < sim->n_boards; i++) {
        struct io_board *b = &sim->boards[i];

        sim_board_free(b->model);
        b->model = NULL;
        io_board_clear_queues(b);
        if (b->flash != NULL) {
            if (msync(b->flash, b->spec->flash_size, MS_SYNC) < 0)
                rc = -1;
            munmap(b->flash, b->spec->flash_size);
            b->flash = NULL;
        }
        if (b->flash_fd >= 0) {
            close(b->flash_fd);
            b->flash_fd = -1;
            /* Flash files in a directory we made ourselves go with it. */
            if (sim->dir_created && sim->opts->state_dir == NULL)
                unlink(b->flash_path);
        }
    }
    if (sim->stubs != NULL) {
        sim_stub_images_close(sim->stubs);
        free(sim->stubs);
        sim->stubs = NULL;
    }
    if (sim->dir_created && rmdir(sim->dir) < 0)
        fprintf(stderr, "espsim: rmdir %s: %s (left in place)\n", sim->dir, strerror(errno));
    return rc;
}

int io_sim_run(const struct bench_options *opts, struct es_err *err)
{
    struct io_sim *sim;
    int i, rc;

    sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return es_fail(err, ES_NOMEM, "out of memory starting the simulator");
    sim->opts = opts;
    sim->scale = opts->time_scale;
    rc = uv_loop_init(&sim->loop);
    if (rc < 0) {
        free(sim);
        return es_fail(err, ES_IO, "uv_loop_init: %s", uv_strerror(rc));
    }
    sim->start_hr = uv_hrtime();
    sim->boards = calloc((size_t)opts->n_boards, sizeof(*sim->boards));
    if (sim->boards == NULL) {
        rc = es_fail(err, ES_NOMEM, "out of memory for %d boards", opts->n_boards);
        goto out_loop;
    }

    rc = make_dir(sim, err);
    if (rc == 0)
        rc = load_stubs(sim, err);
    for (i = 0; rc == 0 && i < opts->n_boards; i++) {
        sim->n_boards = i + 1;
        rc = board_open(sim, &sim->boards[i], i, err);
    }
    if (rc == 0) {
        uv_signal_init(&sim->loop, &sim->sigint);
        uv_signal_init(&sim->loop, &sim->sigterm);
        sim->signals_init = 1;
        sim->sigint.data = sim->sigterm.data = sim;
        uv_signal_start(&sim->sigint, on_signal, SIGINT);
        uv_signal_start(&sim->sigterm, on_signal, SIGTERM);
    }
    if (rc == 0)
        rc = io_cmd_chan_start(sim, err);
    if (rc < 0)
        goto out_close;

    /* Power on every board (download mode, boot text), then tell the parent where they are. */
    for (i = 0; i < sim->n_boards; i++)
        sim_board_start(sim->boards[i].model, io_board_now(&sim->boards[i]));
    for (i = 0; i < sim->n_boards; i++)
        announce_board(&sim->boards[i]);
    {
        json_t *ready = json_object();

        json_object_set_new(ready, "ready", json_true());
        json_object_set_new(ready, "boards", json_integer(sim->n_boards));
        json_object_set_new(ready, "dir", json_string(sim->dir));
        json_object_set_new(ready, "sock", json_string(sim->cmd_path));
        io_print_json(ready);
    }
    if (rc == 0)
        uv_run(&sim->loop, UV_RUN_DEFAULT);

out_close:
    io_sim_stop(sim);
    uv_run(&sim->loop, UV_RUN_DEFAULT);
    if (rc == 0)
        print_summary(sim);
    if (sim_cleanup(sim) < 0 && rc == 0)
        rc = es_fail(err, ES_IO, "msync of a flash file failed; its contents may be stale");
out_loop:
    if (uv_loop_close(&sim->loop) != 0 && rc == 0)
        rc = es_fail(err, ES_INVALID_ARG, "a libuv handle was left open at exit (a leak)");
    free(sim->boards);
    free(sim);
    return rc;
}
