/* The scripted fake port (include/es/port_fake.h) through the ordinary port_* calls: the host's
 * frames decoded and shown on a later loop turn with their rate, scripted deliveries in due-time
 * order, a scripted failure, refused and repeated opens, reset lines, and close dropping what was
 * pending. Loop tests count callbacks and end with uv_loop_close() == 0 (style.md §8). */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four headers it needs */

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "es/port.h"
#include "es/port_fake.h"

#define MAX_SEEN 8

struct seen {
    uint8_t data[64];
    size_t len;
    uint32_t baud;
};

struct ctx {
    uv_loop_t loop;
    struct fake_port *fp;
    struct port *p;
    struct seen frames[MAX_SEEN]; /* what on_frame showed the board */
    int frame_calls;
    struct seen data[MAX_SEEN]; /* what on_data gave the host */
    uint64_t data_at_ms[MAX_SEEN];
    int data_calls, error_calls, closed_calls, lines_calls;
    int last_dtr, last_rts;
    struct es_err last_err;
    int echo;             /* on_frame answers each frame with itself, SLIP-encoded */
    int close_on_frame;   /* on_frame closes the port after this many frames */
    int keep_after_error; /* on_error leaves the port open (ctx_finish closes it) */
};

static void on_closed(struct port *p, void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(p, c->p);
    c->closed_calls++;
}

static void on_data(struct port *p, const uint8_t *data, size_t n, void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(p, c->p);
    assert_true(c->data_calls < MAX_SEEN);
    assert_true(n <= sizeof(c->data[0].data));
    memcpy(c->data[c->data_calls].data, data, n);
    c->data[c->data_calls].len = n;
    c->data_at_ms[c->data_calls] = uv_now(&c->loop);
    c->data_calls++;
}

static void on_error(struct port *p, const struct es_err *err, void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(p, c->p);
    c->error_calls++;
    c->last_err = *err;
    if (!c->keep_after_error)
        port_close(p, on_closed);
}

static const struct port_callbacks cbs = {on_data, on_error};

static void on_frame(struct fake_port *fp, const uint8_t *frame, size_t len, uint32_t baud,
                     void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(fp, c->fp);
    assert_true(c->frame_calls < MAX_SEEN);
    assert_true(len <= sizeof(c->frames[0].data));
    memcpy(c->frames[c->frame_calls].data, frame, len);
    c->frames[c->frame_calls].len = len;
    c->frames[c->frame_calls].baud = baud;
    c->frame_calls++;
    if (c->echo)
        fake_port_send_frame(fp, frame, len, 0);
    if (c->close_on_frame > 0 && c->frame_calls == c->close_on_frame)
        port_close(c->p, on_closed);
}

static void on_lines(struct fake_port *fp, int dtr, int rts, void *arg)
{
    struct ctx *c = arg;

    assert_ptr_equal(fp, c->fp);
    c->lines_calls++;
    c->last_dtr = dtr;
    c->last_rts = rts;
}

static void ctx_open(struct ctx *c, const char *name)
{
    struct es_err err;

    memset(c, 0, sizeof(*c));
    assert_int_equal(uv_loop_init(&c->loop), 0);
    c->fp = fake_port_new(&c->loop, name);
    assert_non_null(c->fp);
    fake_port_on_frame(c->fp, on_frame, c);
    fake_port_on_lines(c->fp, on_lines, c);
    assert_int_equal(fake_port_open(&c->loop, name, 115200, &cbs, c, &c->p, &err), 0);
    assert_non_null(c->p);
}

/* Closes the port if the test did not, runs the loop dry and checks that nothing leaked. */
static void ctx_finish(struct ctx *c)
{
    if (c->closed_calls == 0 && fake_port_is_open(c->fp))
        port_close(c->p, on_closed);
    assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c->closed_calls, 1);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    fake_port_free(c->fp);
}

static void test_frames_decoded_on_a_later_turn(void **state)
{
    /* Two whole frames and the start of a third in one write (with noise before the first
     * 0xC0, and both escapes), the rest of the third in a second write. */
    static const uint8_t w1[] = {0x55, 0xC0, 0x01, 0xDB, 0xDC, 0x02, 0xC0,
                                 0xC0, 0x03, 0xDB, 0xDD, 0xC0, 0xC0, 0x04};
    static const uint8_t w2[] = {0x05, 0xC0};
    struct ctx c;
    struct es_err err;
    (void)state;

    ctx_open(&c, "frames_decoded_on_a_later_turn");
    assert_int_equal(port_write(c.p, w1, sizeof(w1), &err), 0);
    assert_int_equal(port_write(c.p, w2, sizeof(w2), &err), 0);
    assert_int_equal(c.frame_calls, 0); /* never from inside port_write */
    assert_int_equal(port_write_queued(c.p), sizeof(w1) + sizeof(w2));
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);

    assert_int_equal(port_write_queued(c.p), 0);
    assert_int_equal(c.frame_calls, 3);
    assert_int_equal(c.frames[0].len, 3);
    assert_memory_equal(c.frames[0].data, ((const uint8_t[]){0x01, 0xC0, 0x02}), 3);
    assert_int_equal(c.frames[1].len, 2);
    assert_memory_equal(c.frames[1].data, ((const uint8_t[]){0x03, 0xDB}), 2);
    assert_int_equal(c.frames[2].len, 2);
    assert_memory_equal(c.frames[2].data, ((const uint8_t[]){0x04, 0x05}), 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c.frames[i].baud, 115200);
    assert_int_equal(fake_port_stats(c.fp)->frames_in, 3);
    assert_int_equal(fake_port_stats(c.fp)->bytes_in, sizeof(w1) + sizeof(w2));
    assert_int_equal(fake_port_stats(c.fp)->opens, 1);
    ctx_finish(&c);
    assert_int_equal(c.data_calls, 0);
    assert_int_equal(c.error_calls, 0);
}

static void test_frame_keeps_the_rate_it_was_written_at(void **state)
{
    static const uint8_t f[] = {0xC0, 0x0F, 0xC0};
    struct ctx c;
    struct es_err err;
    (void)state;

    ctx_open(&c, "frame_keeps_the_rate_it_was_written_at");
    assert_int_equal(fake_port_stats(c.fp)->baud, 115200);
    assert_int_equal(port_write(c.p, f, sizeof(f), &err), 0);
    assert_int_equal(port_set_baud(c.p, 921600, &err), 0);
    assert_int_equal(fake_port_stats(c.fp)->baud, 921600); /* at once: nothing waits on a fake */
    assert_int_equal(fake_port_stats(c.fp)->set_baud_calls, 1);
    assert_int_equal(port_write(c.p, f, sizeof(f), &err), 0);
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.frame_calls, 2);
    assert_int_equal(c.frames[0].baud, 115200);
    assert_int_equal(c.frames[1].baud, 921600);
    ctx_finish(&c);
}

static void test_deliveries_in_due_order(void **state)
{
    /* One frame whose payload needs both escapes: it must arrive SLIP-encoded. */
    static const uint8_t pkt[] = {0x01, 0xC0, 0xDB, 0x02};
    static const uint8_t pkt_slip[] = {0xC0, 0x01, 0xDB, 0xDC, 0xDB, 0xDD, 0x02, 0xC0};
    struct ctx c;
    uint64_t start;
    (void)state;

    ctx_open(&c, "deliveries_in_due_order");
    start = uv_now(&c.loop);
    fake_port_send_raw(c.fp, (const uint8_t *)"A", 1, 30);
    fake_port_send_raw(c.fp, (const uint8_t *)"B", 1, 10);
    fake_port_send_raw(c.fp, (const uint8_t *)"C", 1, 10); /* same due time: after B */
    fake_port_send_frame(c.fp, pkt, sizeof(pkt), 0);
    assert_int_equal(c.data_calls, 0); /* never synchronously, not even with delay 0 */
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);

    assert_int_equal(c.data_calls, 4);
    assert_int_equal(c.data[0].len, sizeof(pkt_slip));
    assert_memory_equal(c.data[0].data, pkt_slip, sizeof(pkt_slip));
    assert_memory_equal(c.data[1].data, "B", 1);
    assert_memory_equal(c.data[2].data, "C", 1);
    assert_memory_equal(c.data[3].data, "A", 1);
    /* Loop time never runs early: each arrived no sooner than asked. */
    assert_true(c.data_at_ms[1] >= start + 10);
    assert_true(c.data_at_ms[3] >= start + 30);
    ctx_finish(&c);
}

static void test_board_answers_from_on_frame(void **state)
{
    static const uint8_t req[] = {0xC0, 0x00, 0x08, 0xC0};
    struct ctx c;
    struct es_err err;
    (void)state;

    ctx_open(&c, "board_answers_from_on_frame");
    c.echo = 1;
    assert_int_equal(port_write(c.p, req, sizeof(req), &err), 0);
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.frame_calls, 1);
    assert_int_equal(c.data_calls, 1);
    assert_int_equal(c.data[0].len, sizeof(req));
    assert_memory_equal(c.data[0].data, req, sizeof(req));
    ctx_finish(&c);
}

static void test_fail_is_ordered_with_deliveries(void **state)
{
    struct ctx c;
    (void)state;

    ctx_open(&c, "fail_is_ordered_with_deliveries");
    fake_port_send_raw(c.fp, (const uint8_t *)"X", 1, 5);
    fake_port_fail(c.fp, ES_PORT_CLOSED, 10);
    fake_port_send_raw(c.fp, (const uint8_t *)"Y", 1, 20);
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);

    assert_int_equal(c.data_calls, 1);
    assert_memory_equal(c.data[0].data, "X", 1);
    assert_int_equal(c.error_calls, 1);
    assert_int_equal(c.last_err.code, ES_PORT_CLOSED);
    assert_non_null(strstr(c.last_err.msg, "fail_is_ordered_with_deliveries"));
    assert_int_equal(c.closed_calls, 1); /* on_error closed it */
    assert_int_equal(fake_port_stats(c.fp)->closes, 1);
    assert_false(fake_port_is_open(c.fp));
    ctx_finish(&c);
}

static void test_write_after_fail_is_refused(void **state)
{
    struct ctx c;
    struct es_err err;
    (void)state;

    ctx_open(&c, "write_after_fail_is_refused");
    c.keep_after_error = 1;
    fake_port_fail(c.fp, ES_PORT_IO, 0);
    fake_port_fail(c.fp, ES_PORT_CLOSED, 0); /* on_error comes at most once */
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.error_calls, 1);
    assert_int_equal(c.last_err.code, ES_PORT_IO);
    assert_true(fake_port_is_open(c.fp)); /* failed, but closing is the host's call */
    assert_int_equal(port_write(c.p, (const uint8_t *)"z", 1, &err), -(int)ES_PORT_CLOSED);
    fake_port_send_raw(c.fp, (const uint8_t *)"B", 1, 0); /* a failed line carries nothing */
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.data_calls, 0);
    ctx_finish(&c);
}

static void test_refused_and_repeated_opens(void **state)
{
    struct ctx c;
    struct port *p2 = (struct port *)&p2;
    struct es_err err;
    (void)state;

    memset(&c, 0, sizeof(c));
    assert_int_equal(uv_loop_init(&c.loop), 0);
    c.fp = fake_port_new(&c.loop, "fake1");
    assert_non_null(c.fp);
    assert_null(fake_port_new(&c.loop, "fake1")); /* one fake per name */

    assert_int_equal(fake_port_open(&c.loop, "nosuch", 115200, &cbs, &c, &p2, &err),
                     -(int)ES_PORT_OPEN);
    assert_null(p2);

    fake_port_refuse_open(c.fp);
    assert_int_equal(fake_port_open(&c.loop, "fake1", 115200, &cbs, &c, &c.p, &err),
                     -(int)ES_PORT_OPEN);
    assert_int_equal(err.code, ES_PORT_OPEN);
    assert_null(c.p);
    assert_int_equal(fake_port_stats(c.fp)->opens, 1);
    assert_false(fake_port_is_open(c.fp));

    /* Only the next open was refused. */
    assert_int_equal(fake_port_open(&c.loop, "fake1", 74880, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(fake_port_stats(c.fp)->opens, 2);
    assert_int_equal(fake_port_stats(c.fp)->baud, 74880);
    assert_int_equal(fake_port_open(&c.loop, "fake1", 115200, &cbs, &c, &p2, &err),
                     -(int)ES_PORT_BUSY);
    assert_null(p2);
    assert_string_equal(port_name(c.p), "fake1");

    /* Closed and opened again, as a session reconnects. */
    port_close(c.p, on_closed);
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.closed_calls, 1);
    c.closed_calls = 0;
    assert_int_equal(fake_port_open(&c.loop, "fake1", 115200, &cbs, &c, &c.p, &err), 0);
    assert_int_equal(fake_port_stats(c.fp)->closes, 1);
    ctx_finish(&c);
}

static void test_close_drops_pending(void **state)
{
    static const uint8_t f[] = {0xC0, 0x01, 0xC0};
    struct ctx c;
    struct es_err err;
    (void)state;

    ctx_open(&c, "close_drops_pending");
    fake_port_send_raw(c.fp, (const uint8_t *)"A", 1, 0);
    fake_port_send_frame(c.fp, f, sizeof(f), 50);
    fake_port_fail(c.fp, ES_PORT_CLOSED, 60);
    assert_int_equal(port_write(c.p, f, sizeof(f), &err), 0);
    port_close(c.p, on_closed);
    assert_int_equal(c.closed_calls, 0);                  /* on_closed comes from the loop */
    fake_port_send_raw(c.fp, (const uint8_t *)"B", 1, 0); /* nobody listens now */
    assert_int_equal(fake_port_stats(c.fp)->closes, 1);
    ctx_finish(&c);
    assert_int_equal(c.data_calls, 0);
    assert_int_equal(c.frame_calls, 0);
    assert_int_equal(c.error_calls, 0);
}

static void test_close_from_on_frame(void **state)
{
    static const uint8_t two[] = {0xC0, 0x01, 0xC0, 0xC0, 0x02, 0xC0};
    struct ctx c;
    struct es_err err;
    (void)state;

    ctx_open(&c, "close_from_on_frame");
    c.close_on_frame = 1;
    assert_int_equal(port_write(c.p, two, sizeof(two), &err), 0);
    assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.frame_calls, 1); /* the second frame was dropped with the port */
    assert_int_equal(c.closed_calls, 1);
    ctx_finish(&c);
}

static void test_lines_and_flush(void **state)
{
    struct ctx c;
    struct es_err err;
    (void)state;

    ctx_open(&c, "lines_and_flush");
    assert_int_equal(port_can_reset(c.p), 1);
    assert_int_equal(port_set_lines(c.p, 1, 0, &err), 0);
    assert_int_equal(c.lines_calls, 1);
    assert_int_equal(c.last_dtr, 1);
    assert_int_equal(c.last_rts, 0);
    assert_int_equal(port_set_lines(c.p, 0, 7, &err), 0);
    assert_int_equal(fake_port_stats(c.fp)->dtr, 0);
    assert_int_equal(fake_port_stats(c.fp)->rts, 1);
    assert_int_equal(fake_port_stats(c.fp)->set_lines_calls, 2);

    fake_port_set_can_reset(c.fp, 0);
    assert_int_equal(port_can_reset(c.p), 0);
    assert_int_equal(port_set_lines(c.p, 1, 1, &err), -(int)ES_UNSUPPORTED);
    assert_int_equal(fake_port_stats(c.fp)->set_lines_calls, 2);
    assert_int_equal(c.lines_calls, 2);

    port_flush_input(c.p);
    port_flush_input(c.p);
    assert_int_equal(fake_port_stats(c.fp)->flush_calls, 2);
    ctx_finish(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_decoded_on_a_later_turn),
        cmocka_unit_test(test_frame_keeps_the_rate_it_was_written_at),
        cmocka_unit_test(test_deliveries_in_due_order),
        cmocka_unit_test(test_board_answers_from_on_frame),
        cmocka_unit_test(test_fail_is_ordered_with_deliveries),
        cmocka_unit_test(test_write_after_fail_is_refused),
        cmocka_unit_test(test_refused_and_repeated_opens),
        cmocka_unit_test(test_close_drops_pending),
        cmocka_unit_test(test_close_from_on_frame),
        cmocka_unit_test(test_lines_and_flush),
    };

    signal(SIGPIPE, SIG_IGN);
    alarm(60); /* a hang is a failure, not a stuck CI job */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
