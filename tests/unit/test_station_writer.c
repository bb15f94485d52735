/* The station's disk writer (src/station/station_writer.h): jobs run on the thread pool one at a
 * time, each done callback runs on the loop thread before the next job starts, in submission
 * order, also for jobs submitted from a done callback; and the loop ends only when all are done.
 * A loop test in libuv's style: count callbacks, then uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../src/station/station_writer.h"

#define N_JOBS 12

struct test_job {
    struct station_job job;
    int id;
};

static int order[2 * N_JOBS + 2], n_order; /* +id: work ran, -id - 1: done ran */
static int running;                        /* works in flight (must never exceed 1) */
static int max_running;
static struct test_job jobs[N_JOBS + 1];
static struct station_writer *writer;

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void on_work(struct station_job *job)
{
    struct test_job *t = container_of(job, struct test_job, job);
    /* Later jobs take less time: a pool that ran them in parallel would finish them out of order.
     */
    struct timespec ts = {0, (long)(N_JOBS - t->id) * 300000L};

    if (++running > max_running)
        max_running = running;
    nanosleep(&ts, NULL);
    order[n_order++] = t->id;
    running--;
}

static void on_done(struct station_job *job)
{
    struct test_job *t = container_of(job, struct test_job, job);

    order[n_order++] = -t->id - 1;
    if (t->id == 0) { /* a job submitted from a done callback goes after those already queued */
        jobs[N_JOBS].id = N_JOBS;
        jobs[N_JOBS].job.work = on_work;
        jobs[N_JOBS].job.done = on_done;
        station_writer_submit(writer, &jobs[N_JOBS].job);
    }
}

static void test_jobs_run_one_at_a_time_in_order(void **state)
{
    uv_loop_t loop;
    struct station_writer w;
    int k = 0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    station_writer_init(&w, &loop);
    writer = &w;
    assert_true(w.spare_fd >= 0);
    assert_true(station_writer_idle(&w));
    for (int i = 0; i < N_JOBS; i++) {
        jobs[i].id = i;
        jobs[i].job.work = on_work;
        jobs[i].job.done = on_done;
        station_writer_submit(&w, &jobs[i].job);
    }
    assert_false(station_writer_idle(&w));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(station_writer_idle(&w));
    assert_int_equal(w.jobs_done, N_JOBS + 1);
    assert_int_equal(max_running, 1);
    assert_int_equal(n_order, 2 * (N_JOBS + 1));
    for (int i = 0; i <= N_JOBS; i++) {
        assert_int_equal(order[k++], i);
        assert_int_equal(order[k++], -i - 1);
    }
    assert_true(w.spare_fd >= 0); /* taken back after the last job */
    station_writer_spare_release(&w);
    assert_int_equal(w.spare_fd, -1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_run_one_at_a_time_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
