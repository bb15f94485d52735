/* --auto-swap MIN:MAX, for the demo: a slot whose board has been reset into its application is,
 * MIN..MAX seconds of board time later, given a new blank board, so that a continuous station
 * sees a stream of boards. The slots alternate between the two ways a line changes boards: the
 * USB adapter unplugged and plugged back with a new board on it, and a jig swap (the adapter
 * stays, the board changes). New boards have the slot's chip, flash size and auto-reset, no
 * faults, and a MAC no other board of the run had. */
#include <stdlib.h>
#include <string.h>

#include "io.h"

/* How long an unplugged adapter stays out before the new board is plugged in (board time). */
#define AUTOSWAP_OUT_S 0.5

enum {
    AUTOSWAP_IDLE,      /* waiting for the board to run its app */
    AUTOSWAP_ARMED,     /* the board runs its app; swap when the timer fires */
    AUTOSWAP_UNPLUGGED, /* unplugged; plug with a new board when the timer fires */
};

static int enabled(const struct io_board *b)
{
    return b->sim->opts->auto_swap_max > 0 && b->swap_timer_init && !b->sim->stopping;
}

/* Board seconds -> real milliseconds for a uv_timer. */
static uint64_t real_ms(const struct io_sim *sim, double board_s)
{
    double scale = sim->scale > 0 ? sim->scale : 1.0;

    return (uint64_t)(board_s * scale * 1000.0 + 0.5);
}

/* xorshift64*, seeded from --seed: the same bench swaps at the same board times. */
static double rand_unit(struct io_sim *sim)
{
    uint64_t x = sim->autoswap_rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sim->autoswap_rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static int new_board(struct io_board *b)
{
    struct bench_board next = b->cur;
    struct es_err err;

    next.mac_given = 0;
    memset(&next.faults, 0, sizeof(next.faults));
    b->sim->boards_swapped_in++;
    bench_board_finish(b->sim->opts, &next, b->slot, b->sim->boards_swapped_in);
    if (io_cmd_swap(b, &next, 0, &err) < 0) {
        io_board_log(b, "auto-swap: %s", err.msg);
        return -1;
    }
    b->swaps++;
    return 0;
}

static void on_swap_timer(uv_timer_t *t)
{
    struct io_board *b = t->data;
    struct es_err err;

    if (!enabled(b))
        return;
    if (b->swap_state == AUTOSWAP_ARMED && b->swaps % 2 == 0 && !b->unplugged) {
        io_board_log(b, "auto-swap: unplugging the adapter");
        if (io_cmd_unplug(b, &err) == 0) {
            b->swap_state = AUTOSWAP_UNPLUGGED;
            uv_timer_start(&b->swap_timer, on_swap_timer, real_ms(b->sim, AUTOSWAP_OUT_S), 0);
            return;
        }
    } else if (b->swap_state == AUTOSWAP_UNPLUGGED) {
        new_board(b);
        if (io_cmd_plug(b, &err) < 0)
            io_board_log(b, "auto-swap: plug: %s", err.msg);
        else
            io_board_log(b, "auto-swap: plugged in with a new board");
    } else if (b->swap_state == AUTOSWAP_ARMED && !b->unplugged) {
        io_board_log(b, "auto-swap: a new board on the jig");
        new_board(b);
    }
    b->swap_state = AUTOSWAP_IDLE;
    io_autoswap_check(b);
}

void io_autoswap_init(struct io_board *b)
{
    if (b->sim->opts->auto_swap_max <= 0)
        return;
    if (b->sim->autoswap_rng == 0)
        b->sim->autoswap_rng = (b->sim->opts->seed ^ 0x5DEECE66Dull) | 1;
    uv_timer_init(&b->sim->loop, &b->swap_timer);
    b->swap_timer.data = b;
    b->swap_timer_init = 1;
    b->swap_state = AUTOSWAP_IDLE;
}

void io_autoswap_check(struct io_board *b)
{
    const struct bench_options *o = b->sim->opts;
    struct sim_board_stats st;
    double delay;

    if (!enabled(b) || b->swap_state != AUTOSWAP_IDLE || b->unplugged || b->model == NULL)
        return;
    sim_board_stats(b->model, &st);
    if (!st.app_running)
        return;
    delay = o->auto_swap_min + (o->auto_swap_max - o->auto_swap_min) * rand_unit(b->sim);
    io_board_log(b, "auto-swap: the board runs its app; a new one in %.1f s", delay);
    b->swap_state = AUTOSWAP_ARMED;
    uv_timer_start(&b->swap_timer, on_swap_timer, real_ms(b->sim, delay), 0);
}

void io_autoswap_close(struct io_board *b)
{
    if (b->swap_timer_init) {
        uv_close((uv_handle_t *)&b->swap_timer, NULL);
        b->swap_timer_init = 0;
    }
}
