/* The board clock and line pacing of espsim: bytes in both directions wait in queues until a real
 * UART would have delivered them, and one uv_timer per board wakes up at the next due chunk or
 * model timer. Chunks end at SLIP frame ends, so the model sees each request at the exact time
 * its last byte arrives and the host sees each reply's end on time, without a wakeup per byte. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

/* How much line time one wakeup may cover, in real time: more means fewer wakeups, less means
 * bytes inside a frame arrive closer to their exact time. Frame ends are always exact. */
#define RX_SPAN_REAL_NS (50u * 1000 * 1000)
#define TX_SPAN_REAL_NS (10u * 1000 * 1000)
/* Events handed to the model per wakeup before yielding to the loop (matters at scale 0). */
#define PROCESS_BUDGET 256
/* Output that TCP has not confirmed beyond this is dropped, as a UART nobody reads drops it. */
#define TCP_PENDING_MAX (1u << 20)

uint64_t io_board_now(const struct io_board *b)
{
    const struct io_sim *sim = b->sim;
    uint64_t real = uv_hrtime() - sim->start_hr;
    uint64_t t = sim->scale > 0 ? (uint64_t)((double)real / sim->scale) : real;

    return t > b->floor_ns ? t : b->floor_ns;
}

static uint64_t byte_ns(uint32_t baud)
{
    if (baud == 0)
        baud = 115200;
    return (10ull * 1000000000ull + baud / 2) / baud;
}

static uint64_t span_board_ns(const struct io_board *b, uint64_t real_ns)
{
    if (b->sim->scale <= 0)
        return UINT64_MAX;
    return (uint64_t)((double)real_ns / b->sim->scale);
}

static int queue_push(struct io_queue *q, const uint8_t *bytes, size_t n, uint64_t start_ns,
                      uint32_t baud, uint32_t pace_baud)
{
    struct io_seg *s;

    if (n == 0)
        return 0;
    s = malloc(sizeof(*s) + n);
    if (s == NULL)
        return -1;
    s->next = NULL;
    s->start_ns = start_ns > q->end_ns ? start_ns : q->end_ns;
    s->byte_ns = byte_ns(pace_baud);
    s->baud = baud;
    s->len = n;
    s->off = 0;
    memcpy(s->data, bytes, n);
    q->end_ns = s->start_ns + n * s->byte_ns;
    q->bytes += n;
    if (q->tail != NULL)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    return 0;
}

static void queue_consume(struct io_queue *q, size_t n)
{
    struct io_seg *s = q->head;

    s->off += n;
    q->bytes -= n;
    if (s->off == s->len) {
        q->head = s->next;
        if (q->head == NULL)
            q->tail = NULL;
        free(s);
    }
}

static void queue_clear(struct io_queue *q)
{
    while (q->head != NULL) {
        struct io_seg *s = q->head;

        q->head = s->next;
        free(s);
    }
    q->tail = NULL;
    q->bytes = 0;
}

/* The next chunk of q: at most span_ns of line time, ending early at a SLIP frame end (a 0xC0
 * that follows a non-0xC0 byte). Returns 0 if q is empty. */
static int queue_chunk(const struct io_queue *q, uint64_t span_ns, uint64_t *due_ns, size_t *n)
{
    const struct io_seg *s = q->head;
    const uint8_t *p, *c;
    size_t avail, k, j;

    if (s == NULL)
        return 0;
    p = s->data + s->off;
    avail = s->len - s->off;
    k = span_ns / s->byte_ns + 1;
    if (k > avail)
        k = avail;
    for (j = 1; j < k; j = (size_t)(c - p) + 1) {
        c = memchr(p + j, 0xC0, k - j);
        if (c == NULL)
            break;
        if (c[-1] != 0xC0) {
            k = (size_t)(c - p) + 1;
            break;
        }
    }
    *n = k;
    *due_ns = s->start_ns + (s->off + k) * s->byte_ns;
    return 1;
}

void io_board_clear_queues(struct io_board *b)
{
    queue_clear(&b->rx);
    queue_clear(&b->tx);
}

void io_board_log(const struct io_board *b, const char *fmt, ...)
{
    va_list ap;

    if (!b->sim->opts->verbose)
        return;
    fprintf(stderr, "espsim: slot %d: ", b->slot);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void io_board_emit(struct io_board *b, const uint8_t *bytes, size_t n)
{
    size_t taken = 0;

    if (b->master_fd >= 0)
        taken = io_pty_write(b, bytes, n);
    if (b->tcp_client != NULL) {
        if (b->tcp_pending + n <= TCP_PENDING_MAX) {
            io_tcp_write(b, bytes, n);
            taken = n;
        }
    }
    if (taken < n) {
        if (b->tx_dropped == 0)
            io_board_log(b, "output dropped: nobody is reading the port");
        b->tx_dropped += n - taken;
    }
}

int io_board_input(struct io_board *b, const uint8_t *bytes, size_t n, uint32_t host_baud)
{
    uint64_t now = io_board_now(b);
    /* The line time is set by the sender's rate; with TCP there is none, so the board's. */
    uint32_t pace = host_baud != 0 ? host_baud : sim_board_baud(b->model);

    if (b->unplugged)
        return 0;
    if (queue_push(&b->rx, bytes, n, now, host_baud, pace) < 0) {
        io_board_log(b, "out of memory queueing %zu input bytes; dropped", n);
        return -1;
    }
    io_board_process(b);
    return 0;
}

static void on_wake(uv_timer_t *t)
{
    io_board_process(IO_CONTAINER_OF(t, struct io_board, wake));
}

static void rearm(struct io_board *b, int yield)
{
    struct io_sim *sim = b->sim;
    uint64_t due = UINT64_MAX, d, now_real, due_real, timeout_ms = 0;
    size_t n;

    if (!b->wake_init || sim->stopping)
        return;
    if (b->unplugged) {
        uv_timer_stop(&b->wake);
        return;
    }
    if (queue_chunk(&b->rx, span_board_ns(b, RX_SPAN_REAL_NS), &d, &n) && d < due)
        due = d;
    if (queue_chunk(&b->tx, span_board_ns(b, TX_SPAN_REAL_NS), &d, &n) && d < due)
        due = d;
    if (b->timer_armed && b->timer_ns < due)
        due = b->timer_ns;
    if (due == UINT64_MAX) {
        uv_timer_stop(&b->wake);
        return;
    }
    if (!yield && sim->scale > 0) {
        /* Real due time, rounded up to the loop's millisecond so we never wake early. */
        uv_update_time(&sim->loop);
        now_real = uv_hrtime();
        due_real = sim->start_hr + (uint64_t)((double)due * sim->scale);
        if (due_real > now_real)
            timeout_ms = (due_real - now_real + 999999) / 1000000;
    }
    uv_timer_start(&b->wake, on_wake, timeout_ms, 0);
}

void io_board_process(struct io_board *b)
{
    struct io_sim *sim = b->sim;
    uint64_t now = io_board_now(b);
    int budget;

    if (sim->stopping)
        return;
    for (budget = PROCESS_BUDGET; budget > 0; budget--) {
        uint64_t rx_due = UINT64_MAX, tx_due = UINT64_MAX, tm_due = UINT64_MAX, due;
        size_t rx_n = 0, tx_n = 0;
        int has_rx, has_tx;

        has_rx = queue_chunk(&b->rx, span_board_ns(b, RX_SPAN_REAL_NS), &rx_due, &rx_n);
        has_tx = queue_chunk(&b->tx, span_board_ns(b, TX_SPAN_REAL_NS), &tx_due, &tx_n);
        if (b->timer_armed)
            tm_due = b->timer_ns;
        due = rx_due < tx_due ? rx_due : tx_due;
        if (tm_due < due)
            due = tm_due;
        if (b->unplugged) {
            /* Input in flight is lost with the cable. Freed here, not in io_board_unplug(),
             * because the model may unplug while it still reads the chunk we lent it. */
            io_board_clear_queues(b);
            break;
        }
        if (due == UINT64_MAX || (sim->scale > 0 && due > now))
            break;
        if (due > b->floor_ns)
            b->floor_ns = due;

        if (has_tx && tx_due == due) {
            /* Output never feeds the model, so write it first: the host sees bytes in order. */
            io_board_emit(b, b->tx.head->data + b->tx.head->off, tx_n);
            queue_consume(&b->tx, tx_n);
        } else if (has_rx && rx_due == due) {
            struct io_seg *s = b->rx.head;

            sim_board_rx(b->model, s->data + s->off, rx_n, s->baud, b->floor_ns);
            queue_consume(&b->rx, rx_n);
        } else {
            b->timer_armed = 0;
            sim_board_on_timer(b->model, b->floor_ns);
        }
    }
    rearm(b, budget == 0);
    io_autoswap_check(b);
}

/* The model's ops. They run inside a model call: they only queue and record, never call the
 * model back. */
static void op_send(void *ctx, const uint8_t *bytes, size_t n, uint64_t not_before_ns,
                    uint32_t baud)
{
    struct io_board *b = ctx;
    uint64_t start = not_before_ns > b->floor_ns ? not_before_ns : b->floor_ns;

    if (b->unplugged || n == 0)
        return;
    if (queue_push(&b->tx, bytes, n, start, baud, baud) < 0) {
        io_board_log(b, "out of memory queueing %zu output bytes; dropped", n);
        return;
    }
    /* Called from outside io_board_process (sim_board_start, set_lines): make sure a wakeup is
     * armed. Inside it, the loop re-arms at the end anyway. */
    rearm(b, 0);
}

static void op_set_timer(void *ctx, uint64_t at_ns)
{
    struct io_board *b = ctx;

    b->timer_armed = 1;
    b->timer_ns = at_ns;
    rearm(b, 0);
}

static void op_unplug(void *ctx)
{
    io_board_unplug(ctx);
}

static void op_log(void *ctx, const char *line)
{
    io_board_log(ctx, "%s", line);
}

const struct sim_board_ops io_board_ops = {
    .send = op_send,
    .set_timer = op_set_timer,
    .unplug = op_unplug,
    .log = op_log,
};

void io_board_unplug(struct io_board *b)
{
    if (b->unplugged)
        return;
    b->unplugged = 1;
    io_board_log(b, "unplugged: closing the port");
    queue_clear(&b->tx);
    io_pty_close(b);
    io_tcp_close(b);
}
