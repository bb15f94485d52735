/* espsim's control commands: changes to the bench while it runs, as a test or a demo makes them
 * (a USB adapter unplugged and plugged back, another board put on a jig, the BOOT and EN buttons
 * pressed), and a status query. One text line in, one JSON line out:
 *
 *   unplug N | plug N | swap N [mac=..] [flash=blank|keep] [autoreset=yes|no] [fault=..]...
 *   boot N press|release | en N press|release | status [N]
 *
 * Where the lines come from (stdin, DIR/espsim.sock) is io_cmd_chan.c. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/hex.h"
#include "io.h"

#define CMD_MAX_ARGS 16

static const char cmd_help[] =
    "commands: unplug N, plug N, swap N [mac=aa:bb:cc:dd:ee:ff] [flash=blank|keep] "
    "[autoreset=yes|no] [fault=NAME[:ARG]], boot N press|release, en N press|release, status [N]";

/* The slot's state as status (and every board command) reports it. */
static void add_slot_fields(json_t *o, const struct io_board *b)
{
    struct sim_board_stats st;
    char mac[ES_MAC_TEXT_LEN];

    sim_board_stats(b->model, &st);
    es_format_mac(b->spec->mac, ':', mac);
    json_object_set_new(o, "slot", json_integer(b->slot));
    json_object_set_new(o, "plugged", json_boolean(!b->unplugged));
    json_object_set_new(o, "chip", json_string(bench_chip_name(b->spec->chip)));
    json_object_set_new(o, "mac", json_string(mac));
    json_object_set_new(o, "mode", json_string(b->unplugged ? "off" : st.mode));
    json_object_set_new(o, "autoreset", json_boolean(!b->spec->no_autoreset));
    json_object_set_new(o, "boot", json_boolean(b->btn_boot));
    json_object_set_new(o, "en", json_boolean(b->btn_en));
    json_object_set_new(o, "port", json_string(b->port_path));
    if (!b->unplugged)
        json_object_set_new(o, "pty", json_string(b->pty_path));
}

static char *reply_error(const char *msg)
{
    json_t *o = json_object();
    char *s;

    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "error", json_string(msg));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static char *reply_slot(const struct io_board *b)
{
    json_t *o = json_object();
    char *s;

    json_object_set_new(o, "ok", json_true());
    add_slot_fields(o, b);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static char *reply_status(struct io_sim *sim, int only)
{
    json_t *o = json_object(), *slots = json_array();
    char *s;

    for (int i = 0; i < sim->n_boards; i++) {
        json_t *one;

        if (only >= 0 && i != only)
            continue;
        one = json_object();
        add_slot_fields(one, &sim->boards[i]);
        json_array_append_new(slots, one);
    }
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "slots", slots);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

int io_cmd_unplug(struct io_board *b, struct es_err *err)
{
    if (b->unplugged)
        return es_fail(err, ES_INVALID_ARG, "slot %d is unplugged already", b->slot);
    /* Everything that arrived before the cable went is the board's; then power and port go. */
    io_board_process(b);
    io_board_unplug(b);
    io_ctl_close(b);
    io_board_clear_queues(b);
    sim_board_power_off(b->model, io_board_now(b));
    b->timer_armed = 0;
    if (b->wake_init)
        uv_timer_stop(&b->wake);
    return 0;
}

int io_cmd_plug(struct io_board *b, struct es_err *err)
{
    const struct bench_options *o = b->sim->opts;
    int rc;

    if (!b->unplugged)
        return es_fail(err, ES_INVALID_ARG, "slot %d is plugged in already", b->slot);
    /* A new device node, like a USB adapter enumerating again: a new pty behind the same path,
     * created after the control socket so that whoever sees the path can reset at once. */
    rc = b->ctl_init ? 0 : io_ctl_start(b, err);
    if (rc == 0)
        rc = io_pty_open(b, err);
    if (rc == 0)
        rc = io_pty_start(b, err);
    if (rc == 0 && o->tcp_base >= 0)
        rc = io_tcp_start(b, b->tcp_port, err);
    if (rc < 0) {
        io_pty_close(b);
        io_tcp_close(b);
        return rc;
    }
    b->unplugged = 0;
    b->tx_dropped = 0;
    io_board_log(b, "plugged in: %s -> %s", b->port_path, b->pty_path);
    sim_board_power_on(b->model, io_board_now(b));
    io_board_process(b);
    return 0;
}

int io_cmd_swap(struct io_board *b, const struct bench_board *next, int keep_flash,
                struct es_err *err)
{
    struct bench_board prev = b->cur;
    struct sim_board *model;
    uint64_t now = io_board_now(b);

    io_board_process(b);
    b->cur = *next;
    model = io_board_model_new(b, err);
    if (model == NULL) {
        b->cur = prev;
        return -1;
    }
    /* The old board leaves with whatever it was saying; the adapter's lines stay as they are. */
    sim_board_free(b->model);
    b->model = model;
    io_board_clear_queues(b);
    b->timer_armed = 0;
    if (b->wake_init)
        uv_timer_stop(&b->wake);
    b->btn_boot = b->btn_en = 0;
    if (!keep_flash)
        memset(b->flash, 0xFF, b->spec->flash_size);
    sim_board_set_lines(model, b->dtr, b->rts, now);
    if (!b->unplugged) {
        sim_board_power_on(model, now);
        io_board_process(b);
    }
    return 0;
}

/* swap's arguments into the next board: the chip and flash size stay the slot's (a jig takes one
 * kind of board); mac, autoreset and fault go through the bench SPEC parser. */
static int swap_args(struct io_board *b, char **argv, int argc, struct bench_board *next,
                     int *keep_flash, struct es_err *err)
{
    char spec[512];
    size_t len;

    *keep_flash = 0;
    len = (size_t)snprintf(spec, sizeof(spec), "%s", bench_chip_name(b->spec->chip));
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "flash=", 6) == 0) {
            if (strcmp(argv[i] + 6, "keep") != 0 && strcmp(argv[i] + 6, "blank") != 0)
                return es_fail(err, ES_USAGE, "swap: flash='%s' is not blank or keep", argv[i] + 6);
            *keep_flash = strcmp(argv[i] + 6, "keep") == 0;
            continue;
        }
        if (strchr(argv[i], '=') == NULL || strchr(argv[i], ',') != NULL)
            return es_fail(err, ES_USAGE,
                           "swap: '%s' is not one of mac=, flash=, autoreset=, "
                           "fault=",
                           argv[i]);
        len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",%s", argv[i]);
        if (len >= sizeof(spec))
            return es_fail(err, ES_USAGE, "swap: arguments too long");
    }
    if (bench_spec_parse(next, spec, err) < 0)
        return -1;
    next->flash_size = b->spec->flash_size;
    b->sim->boards_swapped_in++;
    bench_board_finish(b->sim->opts, next, b->slot, b->sim->boards_swapped_in);
    return 0;
}

/* "press" / "release" -> 1 / 0; -1 otherwise. */
static int button_state(const char *s)
{
    if (s != NULL && strcmp(s, "press") == 0)
        return 1;
    if (s != NULL && strcmp(s, "release") == 0)
        return 0;
    return -1;
}

static int parse_slot(struct io_sim *sim, const char *s, struct es_err *err)
{
    char *end;
    long v;

    if (s == NULL || !isdigit((unsigned char)*s))
        return es_fail(err, ES_USAGE, "expected a slot number 0..%d", sim->n_boards - 1);
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v >= sim->n_boards)
        return es_fail(err, ES_USAGE, "slot '%s' is not one of 0..%d", s, sim->n_boards - 1);
    return (int)v;
}

static int run(struct io_sim *sim, char **argv, int argc, char **reply, struct es_err *err)
{
    const char *cmd = argv[0];
    struct io_board *b;
    int slot, state;

    if (strcmp(cmd, "status") == 0) {
        if (argc > 2)
            return es_fail(err, ES_USAGE, "status takes at most a slot number");
        slot = argc == 2 ? parse_slot(sim, argv[1], err) : -1;
        if (argc == 2 && slot < 0)
            return -1;
        *reply = reply_status(sim, slot);
        return 0;
    }
    if (strcmp(cmd, "unplug") != 0 && strcmp(cmd, "plug") != 0 && strcmp(cmd, "swap") != 0 &&
        strcmp(cmd, "boot") != 0 && strcmp(cmd, "en") != 0)
        return es_fail(err, ES_USAGE, "unknown command '%s'; %s", cmd, cmd_help);
    slot = parse_slot(sim, argc > 1 ? argv[1] : NULL, err);
    if (slot < 0)
        return es_err_prefix(err, "%s", cmd);
    b = &sim->boards[slot];
    if (strcmp(cmd, "unplug") == 0 || strcmp(cmd, "plug") == 0) {
        if (argc != 2)
            return es_fail(err, ES_USAGE, "%s takes only a slot number", cmd);
        if ((cmd[0] == 'u' ? io_cmd_unplug(b, err) : io_cmd_plug(b, err)) < 0)
            return -1;
    } else if (strcmp(cmd, "swap") == 0) {
        struct bench_board next;
        int keep;

        if (swap_args(b, argv + 2, argc - 2, &next, &keep, err) < 0 ||
            io_cmd_swap(b, &next, keep, err) < 0)
            return -1;
    } else {
        state = button_state(argc == 3 ? argv[2] : NULL);
        if (state < 0)
            return es_fail(err, ES_USAGE, "%s N press|release", cmd);
        if (cmd[0] == 'b')
            b->btn_boot = state;
        else
            b->btn_en = state;
        io_board_process(b); /* input that arrived before the button moved comes first */
        io_board_log(b, "button %s %s", cmd, state ? "pressed" : "released");
        sim_board_set_buttons(b->model, b->btn_boot, b->btn_en, io_board_now(b));
        io_board_process(b);
    }
    *reply = reply_slot(b);
    return 0;
}

char *io_cmd_run(struct io_sim *sim, const char *line)
{
    char buf[512], *argv[CMD_MAX_ARGS], *save = NULL, *tok, *reply = NULL;
    struct es_err err;
    int argc = 0;

    if (strlen(line) >= sizeof(buf))
        return reply_error("command line too long");
    strcpy(buf, line);
    for (tok = strtok_r(buf, " \t\r", &save); tok != NULL; tok = strtok_r(NULL, " \t\r", &save)) {
        if (argc == CMD_MAX_ARGS)
            return reply_error("too many arguments");
        argv[argc++] = tok;
    }
    if (argc == 0)
        return reply_error(cmd_help);
    if (sim->stopping)
        return reply_error("espsim is stopping");
    if (run(sim, argv, argc, &reply, &err) < 0)
        return reply_error(err.msg);
    if (sim->opts->verbose)
        fprintf(stderr, "espsim: command '%s' -> %s\n", line, reply ? reply : "(no memory)");
    return reply;
}
