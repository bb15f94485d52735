/* Private to the station: how long the loop thread is ever busy at a stretch (a "stall": time
 * the loop does not wait for I/O, during which no port is read and no timer fires), measured on
 * every iteration from libuv's own idle-time metric. Cheap enough to be always on. */
#ifndef ES_LOOP_PROBE_H
#define ES_LOOP_PROBE_H

#include <stdint.h>
#include <uv.h>

#define LOOP_PROBE_SLOW_NS (5u * 1000u * 1000u) /* stalls longer than this are counted */

struct loop_probe {
    uv_prepare_t prepare;
    uint64_t last_ns, last_idle_ns; /* at the previous iteration's prepare */
    uint64_t max_stall_ns;
    uint64_t iterations, slow; /* slow: iterations busy longer than LOOP_PROBE_SLOW_NS */
};

/* Starts measuring loop, which must have been configured with UV_METRICS_IDLE_TIME right after
 * uv_loop_init. The probe's handle does not keep the loop alive. Returns 0 or a libuv error. */
int loop_probe_start(struct loop_probe *p, uv_loop_t *loop);
/* Closes the probe's handle (the figures stay readable). */
void loop_probe_close(struct loop_probe *p);

#endif
