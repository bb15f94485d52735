/* The scripted fake transport for tests (include/es/port_fake.h, library es_port_fake). A fake
 * board (struct fake_port) outlives the ports opened on it; each open makes a struct fake_link
 * that embeds struct port and is driven by port.c through port_fake_ops, like a tty. The host's
 * bytes are SLIP-decoded on a later loop turn and shown to the test; the test's answers wait in
 * a list ordered by due time behind one timer. */
#define _DEFAULT_SOURCE
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/port_fake.h"
#include "es/slip.h"
#include "port_internal.h"

/* Something the board will do to the host: bytes to deliver, or a failure. */
struct fake_event {
    struct fake_event *next;
    uint64_t due_ms;   /* loop time */
    unsigned long seq; /* call order, for equal due times */
    int fail_code;     /* 0: deliver data[0..len); else fail the port with this code */
    size_t len;
    uint8_t data[];
};

/* A frame the host wrote, decoded and waiting for the test's callback. */
struct fake_frame {
    struct fake_frame *next;
    uint32_t baud;
    size_t len;
    uint8_t data[];
};

struct fake_link;

struct fake_port {
    struct fake_port *next; /* the registry */
    uv_loop_t *loop;
    char *name;
    fake_port_frame_fn on_frame;
    void *frame_arg;
    fake_port_lines_fn on_lines;
    void *lines_arg;
    int can_reset;
    int refuse_open;
    struct fake_port_stats stats;
    struct fake_link *link; /* the port open on this fake, or NULL */
};

/* One open of a fake: the port the host holds. */
struct fake_link {
    struct port port;
    struct fake_port *fp;     /* NULL once port_close was called */
    uv_timer_t write_timer;   /* shows the host's bytes to the test on a later loop turn */
    uv_timer_t deliver_timer; /* due at the first event */
    int timers_open;
    struct slip_decoder dec;
    uint8_t *frame_buf;
    struct fake_frame *heard, **heard_tail;
    struct fake_event *events; /* by due time, then seq */
    unsigned long seq;
};

static struct fake_port *registry;

static struct fake_link *link_of(struct port *p)
{
    return container_of(p, struct fake_link, port);
}

static void *alloc_or_abort(size_t n)
{
    void *m = malloc(n);

    if (m == NULL) { /* test-only code: a test cannot go on without its script */
        fprintf(stderr, "port_fake: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return m;
}

static struct fake_port *find(const char *name)
{
    for (struct fake_port *fp = registry; fp != NULL; fp = fp->next)
        if (strcmp(fp->name, name) == 0)
            return fp;
    return NULL;
}

static int link_live(const struct fake_link *l)
{
    return l->fp != NULL && !l->port.closing && !l->port.failed;
}

static void drop_pending(struct fake_link *l)
{
    while (l->heard != NULL) {
        struct fake_frame *f = l->heard;

        l->heard = f->next;
        free(f);
    }
    l->heard_tail = &l->heard;
    while (l->events != NULL) {
        struct fake_event *e = l->events;

        l->events = e->next;
        free(e);
    }
}

/* ---- Host to board: decode what the host wrote ---- */

static void on_decoded(void *arg, const uint8_t *frame, size_t len)
{
    struct fake_link *l = arg;
    struct fake_frame *f = alloc_or_abort(sizeof(*f) + len);

    f->next = NULL;
    f->baud = l->fp->stats.baud;
    f->len = len;
    memcpy(f->data, frame, len);
    *l->heard_tail = f;
    l->heard_tail = &f->next;
    l->fp->stats.frames_in++;
}

/* Takes every byte the host queued, at the rate in force now. Pure: calls no test code. */
static void hear(struct fake_link *l)
{
    struct outq *q = &l->port.q;

    if (q->len == 0)
        return;
    l->fp->stats.bytes_in += q->len;
    slip_decoder_feed(&l->dec, q->buf + q->head, q->len);
    outq_consume(q, q->len);
}

static void on_write_timer(uv_timer_t *t)
{
    struct fake_link *l = container_of(t, struct fake_link, write_timer);

    if (!link_live(l))
        return;
    hear(l);
    while (l->heard != NULL && link_live(l)) {
        struct fake_frame *f = l->heard;
        struct fake_port *fp = l->fp;

        l->heard = f->next;
        if (l->heard == NULL)
            l->heard_tail = &l->heard;
        if (fp->on_frame != NULL)
            fp->on_frame(fp, f->data, f->len, f->baud, fp->frame_arg);
        free(f);
    }
}

/* ---- Board to host: the scripted events ---- */

static void on_deliver_timer(uv_timer_t *t);

static void arm(struct fake_link *l)
{
    uint64_t now = uv_now(l->port.loop);

    if (l->events == NULL) {
        uv_timer_stop(&l->deliver_timer);
        return;
    }
    uv_timer_start(&l->deliver_timer, on_deliver_timer,
                   l->events->due_ms > now ? l->events->due_ms - now : 0, 0);
}

static void on_deliver_timer(uv_timer_t *t)
{
    struct fake_link *l = container_of(t, struct fake_link, deliver_timer);
    uint64_t now = uv_now(l->port.loop);

    while (link_live(l) && l->events != NULL && l->events->due_ms <= now) {
        struct fake_event *e = l->events;
        int live;

        l->events = e->next;
        if (e->fail_code != 0) {
            port_fail(&l->port, (enum es_code)e->fail_code, "port %s failed: %s (fake_port_fail)",
                      l->port.name, es_code_name((enum es_code)e->fail_code));
            free(e);
            return;
        }
        live = port_received(&l->port, e->data, e->len);
        free(e);
        if (!live)
            return;
    }
    if (link_live(l))
        arm(l);
}

/* Takes e into the open port's list, or frees it when no port listens. */
static void schedule(struct fake_port *fp, struct fake_event *e, uint64_t delay_ms)
{
    struct fake_link *l = fp->link;
    struct fake_event **at;

    if (l == NULL || !link_live(l)) {
        free(e);
        return;
    }
    e->due_ms = uv_now(l->port.loop) + delay_ms;
    e->seq = l->seq++;
    for (at = &l->events; *at != NULL && (*at)->due_ms <= e->due_ms; at = &(*at)->next)
        ;
    e->next = *at;
    *at = e;
    arm(l);
}

void fake_port_send_raw(struct fake_port *fp, const uint8_t *bytes, size_t n, uint64_t delay_ms)
{
    struct fake_event *e = alloc_or_abort(sizeof(*e) + n);

    e->fail_code = 0;
    e->len = n;
    if (n > 0)
        memcpy(e->data, bytes, n);
    schedule(fp, e, delay_ms);
}

void fake_port_send_frame(struct fake_port *fp, const uint8_t *pkt, size_t n, uint64_t delay_ms)
{
    size_t cap = slip_encoded_max(n);
    struct fake_event *e = alloc_or_abort(sizeof(*e) + cap);

    e->fail_code = 0;
    e->len = slip_encode(pkt, n, e->data, cap);
    schedule(fp, e, delay_ms);
}

void fake_port_fail(struct fake_port *fp, int code, uint64_t delay_ms)
{
    struct fake_event *e = alloc_or_abort(sizeof(*e));

    e->fail_code = code != 0 ? code : ES_PORT_IO; /* 0 would mean data */
    e->len = 0;
    schedule(fp, e, delay_ms);
}

/* ---- The ops ---- */

static struct port *fake_alloc(void)
{
    struct fake_link *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->heard_tail = &l->heard;
    return &l->port;
}

static int fake_open(struct port *p, uint32_t baud, struct es_err *err)
{
    struct fake_link *l = link_of(p);
    struct fake_port *fp = find(p->name);

    if (fp == NULL)
        return es_fail(err, ES_PORT_OPEN, "open %s: no fake port of that name", p->name);
    assert(fp->loop == p->loop); /* a fake belongs to one loop */
    fp->stats.opens++;
    if (fp->refuse_open) {
        fp->refuse_open = 0;
        return es_fail(err, ES_PORT_OPEN, "open %s: refused (fake_port_refuse_open)", p->name);
    }
    if (fp->link != NULL)
        return es_fail(err, ES_PORT_BUSY, "port %s is in use: already open", p->name);
    if (baud == 0)
        return es_fail(err, ES_INVALID_ARG, "port %s: baud rate 0", p->name);
    l->frame_buf = malloc(SLIP_MAX_FRAME);
    if (l->frame_buf == NULL)
        return es_fail(err, ES_NOMEM, "port %s: out of memory", p->name);
    slip_decoder_init(&l->dec, l->frame_buf, SLIP_MAX_FRAME, on_decoded, NULL, l);
    uv_timer_init(p->loop, &l->write_timer);
    uv_timer_init(p->loop, &l->deliver_timer);
    l->timers_open = 1;
    p->pending += 2;
    p->can_reset = fp->can_reset;
    l->fp = fp;
    fp->link = l;
    fp->stats.baud = baud;
    return 0;
}

static void fake_kick(struct port *p)
{
    struct fake_link *l = link_of(p);

    if (link_live(l) && p->q.len > 0 && !uv_is_active((uv_handle_t *)&l->write_timer))
        uv_timer_start(&l->write_timer, on_write_timer, 0, 0);
}

static int fake_set_baud(struct port *p, uint32_t baud, struct es_err *err)
{
    struct fake_link *l = link_of(p);

    (void)err;
    hear(l); /* bytes written before the change were written at the old rate */
    l->fp->stats.baud = baud;
    l->fp->stats.set_baud_calls++;
    return 0;
}

static int fake_set_lines(struct port *p, int dtr, int rts, struct es_err *err)
{
    struct fake_port *fp = link_of(p)->fp;

    (void)err;
    fp->stats.set_lines_calls++;
    fp->stats.dtr = dtr ? 1 : 0;
    fp->stats.rts = rts ? 1 : 0;
    if (fp->on_lines != NULL)
        fp->on_lines(fp, fp->stats.dtr, fp->stats.rts, fp->lines_arg);
    return 0;
}

static void fake_flush_input(struct port *p)
{
    link_of(p)->fp->stats.flush_calls++;
}

static void fake_stop(struct port *p)
{
    struct fake_link *l = link_of(p);

    uv_timer_stop(&l->write_timer);
    uv_timer_stop(&l->deliver_timer);
    drop_pending(l);
}

static void on_write_timer_closed(uv_handle_t *h)
{
    port_release(&container_of((uv_timer_t *)h, struct fake_link, write_timer)->port);
}

static void on_deliver_timer_closed(uv_handle_t *h)
{
    port_release(&container_of((uv_timer_t *)h, struct fake_link, deliver_timer)->port);
}

static void fake_close(struct port *p)
{
    struct fake_link *l = link_of(p);

    drop_pending(l);
    if (l->fp != NULL) {
        l->fp->stats.closes++;
        l->fp->link = NULL;
        l->fp = NULL;
    }
    if (l->timers_open) {
        l->timers_open = 0;
        uv_close((uv_handle_t *)&l->write_timer, on_write_timer_closed);
        uv_close((uv_handle_t *)&l->deliver_timer, on_deliver_timer_closed);
    }
}

static void fake_free(struct port *p)
{
    struct fake_link *l = link_of(p);

    drop_pending(l);
    free(l->frame_buf);
    free(l);
}

static const struct port_ops port_fake_ops = {
    .name = "fake",
    .alloc = fake_alloc,
    .open = fake_open,
    .kick = fake_kick,
    .set_baud = fake_set_baud,
    .set_lines = fake_set_lines,
    .flush_input = fake_flush_input,
    .stop = fake_stop,
    .close = fake_close,
    .free = fake_free,
};

/* ---- The fake board ---- */

int fake_port_open(uv_loop_t *loop, const char *name, uint32_t baud,
                   const struct port_callbacks *cb, void *arg, struct port **out,
                   struct es_err *err)
{
    return port_open_ops(&port_fake_ops, loop, name, baud, cb, arg, out, err);
}

struct fake_port *fake_port_new(uv_loop_t *loop, const char *name)
{
    struct fake_port *fp;

    if (loop == NULL || name == NULL || find(name) != NULL)
        return NULL;
    fp = calloc(1, sizeof(*fp));
    if (fp == NULL)
        return NULL;
    fp->name = strdup(name);
    if (fp->name == NULL) {
        free(fp);
        return NULL;
    }
    fp->loop = loop;
    fp->can_reset = 1;
    fp->next = registry;
    registry = fp;
    return fp;
}

void fake_port_free(struct fake_port *fp)
{
    struct fake_port **at;

    if (fp == NULL)
        return;
    if (fp->link != NULL) { /* the test forgot port_close: its port would point at freed memory */
        fprintf(stderr, "port_fake: fake_port_free(%s) while a port is open on it\n", fp->name);
        abort();
    }
    for (at = &registry; *at != NULL; at = &(*at)->next) {
        if (*at == fp) {
            *at = fp->next;
            break;
        }
    }
    free(fp->name);
    free(fp);
}

void fake_port_on_frame(struct fake_port *fp, fake_port_frame_fn fn, void *arg)
{
    fp->on_frame = fn;
    fp->frame_arg = arg;
}

void fake_port_on_lines(struct fake_port *fp, fake_port_lines_fn fn, void *arg)
{
    fp->on_lines = fn;
    fp->lines_arg = arg;
}

void fake_port_set_can_reset(struct fake_port *fp, int yes)
{
    fp->can_reset = yes ? 1 : 0;
    if (fp->link != NULL)
        fp->link->port.can_reset = fp->can_reset;
}

void fake_port_refuse_open(struct fake_port *fp)
{
    fp->refuse_open = 1;
}

const struct fake_port_stats *fake_port_stats(const struct fake_port *fp)
{
    return &fp->stats;
}

int fake_port_is_open(const struct fake_port *fp)
{
    return fp->link != NULL;
}
