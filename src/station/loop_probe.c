/* The loop-stall probe. libuv runs prepare handles once per iteration, just before it blocks in
 * the poll for I/O; between two of them the loop waited (uv_metrics_idle_time counts exactly
 * that time) or ran callbacks. The rest is the iteration's busy time, the longest of which is the
 * worst delay any timer or port saw from this thread. */
#include "loop_probe.h"

#include <string.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void on_prepare(uv_prepare_t *h)
{
    struct loop_probe *p = container_of(h, struct loop_probe, prepare);
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(h->loop);

    if (p->iterations > 0) {
        uint64_t waited = idle - p->last_idle_ns, spent = now - p->last_ns;
        uint64_t busy = spent > waited ? spent - waited : 0;

        if (busy > p->max_stall_ns)
            p->max_stall_ns = busy;
        if (busy > LOOP_PROBE_SLOW_NS)
            p->slow++;
    }
    p->iterations++;
    p->last_ns = now;
    p->last_idle_ns = idle;
}

int loop_probe_start(struct loop_probe *p, uv_loop_t *loop)
{
    int rc;

    memset(p, 0, sizeof(*p));
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
