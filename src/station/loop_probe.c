/* The loop-stall probe. libuv runs prepare handles once per iteration, just before it blocks in
 * the poll for I/O; between two of them the loop waited (uv_metrics_idle_time counts exactly
 * that time) or ran callbacks. The rest is the iteration's busy time, the longest of which is the
 * worst delay any timer or port saw from this thread. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "loop_probe.h"

#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "es/container_of.h"

/* CPU time of the loop thread. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_prepare(uv_prepare_t *h)
{
    struct loop_probe *p = container_of(h, struct loop_probe, prepare);
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(h->loop), cpu = thread_cpu_ns();
    struct rusage ru;

    memset(&ru, 0, sizeof(ru));
    getrusage(RUSAGE_THREAD, &ru);

    if (p->iterations > 0) {
        uint64_t waited = idle - p->last_idle_ns, spent = now - p->last_ns;
        uint64_t busy = spent > waited ? spent - waited : 0;

        if (cpu - p->last_cpu_ns > p->max_cpu_ns)
            p->max_cpu_ns = cpu - p->last_cpu_ns;
        if (busy > p->max_stall_ns) {
            p->max_stall_ns = busy;
            p->max_stall_cpu_ns = cpu - p->last_cpu_ns;
        }
        if (busy > LOOP_PROBE_SLOW_NS && p->slow++ < LOOP_PROBE_KEEP) {
            struct loop_stall *s = &p->stalls[p->slow - 1];

            s->at_ns = now - p->start_ns;
            s->busy_ns = busy;
            s->cpu_ns = cpu - p->last_cpu_ns;
            s->blocked = ru.ru_nvcsw - p->last_nvcsw;
            s->preempted = ru.ru_nivcsw - p->last_nivcsw;
        }
    }
    p->iterations++;
    p->last_ns = now;
    p->last_idle_ns = idle;
    p->last_cpu_ns = cpu;
    p->last_nvcsw = ru.ru_nvcsw;
    p->last_nivcsw = ru.ru_nivcsw;
}

int loop_probe_start(struct loop_probe *p, uv_loop_t *loop)
{
    int rc;

    memset(p, 0, sizeof(*p));
    p->start_ns = uv_hrtime();
    if ((rc = uv_prepare_init(loop, &p->prepare)) < 0)
        return rc;
    uv_unref((uv_handle_t *)&p->prepare);
    return uv_prepare_start(&p->prepare, on_prepare);
}

void loop_probe_close(struct loop_probe *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->prepare))
        uv_close((uv_handle_t *)&p->prepare, NULL);
}
