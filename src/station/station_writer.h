/* Private to the station: the disk work of a run (report files, the journal's fdatasync), done
 * on libuv's thread pool so that a slow disk never stalls the loop, one job at a time and in the
 * order submitted, so that what the station records later (a "done" line, run.json) never
 * claims what an earlier job has not made durable yet. */
#ifndef ES_STATION_WRITER_H
#define ES_STATION_WRITER_H

#include <stddef.h>
#include <uv.h>

struct station_job;
typedef void (*station_job_cb)(struct station_job *job);

/* Embedded in a caller's struct, which the done callback may free. */
struct station_job {
    uv_work_t req;
    station_job_cb work; /* on a pool thread: only the blocking part, on data the job owns */
    station_job_cb done; /* on the loop thread once work has returned */
    struct station_writer *writer;
    struct station_job *next;
};

struct station_writer {
    uv_loop_t *loop;
    struct station_job *head, *tail; /* waiting; the running job is not in the list */
    struct station_job *running;
    size_t jobs_done;
    /* A descriptor held back and released while a job runs, so that a report can still be
     * written when the process has run out of descriptors (issue 11 #13). -1: none. */
    int spare_fd;
};

void station_writer_init(struct station_writer *w, uv_loop_t *loop);
/* Queues job (the caller has set work and done): it runs after every job submitted before it,
 * and its done callback runs before the next job starts. From the loop thread. */
void station_writer_submit(struct station_writer *w, struct station_job *job);
/* No job waiting or running. */
int station_writer_idle(const struct station_writer *w);
/* The spare descriptor, for disk work done outside the writer (run.json after the loop). */
void station_writer_spare_release(struct station_writer *w);
void station_writer_spare_take(struct station_writer *w);

#endif
