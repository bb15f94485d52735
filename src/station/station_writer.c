/* A serial queue of disk jobs on libuv's thread pool: one job in flight at a time, started from
 * the previous one's completion, so jobs complete in the order they were submitted while the
 * loop goes on moving bytes. uv_queue_work keeps the loop alive until the last job is done. */
#include "station_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include "es/container_of.h"

void station_writer_init(struct station_writer *w, uv_loop_t *loop)
{
    w->loop = loop;
    w->head = w->tail = w->running = NULL;
    w->jobs_done = 0;
    w->spare_fd = -1;
    station_writer_spare_take(w);
}

void station_writer_spare_release(struct station_writer *w)
{
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    w->spare_fd = -1;
}

void station_writer_spare_take(struct station_writer *w)
{
    if (w->spare_fd < 0)
        w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_job_work(uv_work_t *req)
{
    struct station_job *job = container_of(req, struct station_job, req);

    job->work(job);
}

static void start_next(struct station_writer *w);

static void on_job_done(uv_work_t *req, int status)
{
    struct station_job *job = container_of(req, struct station_job, req);
    struct station_writer *w = job->writer;

    (void)status; /* only UV_ECANCELED, and nothing cancels these */
    station_writer_spare_take(w);
    w->running = NULL;
    w->jobs_done++;
    job->done(job); /* may submit more jobs, and free job */
    start_next(w);
}

static void start_next(struct station_writer *w)
{
    struct station_job *job = w->head;

    if (w->running != NULL || job == NULL)
        return;
    w->head = job->next;
    if (w->head == NULL)
        w->tail = NULL;
    w->running = job;
    station_writer_spare_release(w);
    if (uv_queue_work(w->loop, &job->req, on_job_work, on_job_done) < 0) {
        /* The pool cannot take work (it never refuses a valid request): do it here. */
        job->work(job);
        on_job_done(&job->req, 0);
    }
}

void station_writer_submit(struct station_writer *w, struct station_job *job)
{
    job->writer = w;
    job->next = NULL;
    if (w->tail != NULL)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    start_next(w);
}

int station_writer_idle(const struct station_writer *w)
{
    return w->running == NULL && w->head == NULL;
}
