/* Private to the station: how long the loop thread is ever busy at a stretch (a "stall": time
 * the loop does not wait for I/O, during which no port is read and no timer fires), measured on
 * every iteration from libuv's own idle-time metric. Cheap enough to be always on. */
#ifndef ES_LOOP_PROBE_H
#define ES_LOOP_PROBE_H

#include <stdint.h>
#include <uv.h>

#define LOOP_PROBE_SLOW_NS (5u * 1000u * 1000u) /* stalls longer than this are counted */

#define LOOP_PROBE_KEEP 8 /* slow iterations remembered, for the stats line */

/* One slow iteration: when (since the probe started), how long the loop was busy, and how much
 * of that the loop thread spent on the CPU (the rest it was blocked in a system call, or waited
 * for a CPU the machine gave to another process). */
struct loop_stall {
    uint64_t at_ns, busy_ns, cpu_ns;
    long blocked, preempted; /* voluntary and involuntary context switches of the thread */
};

struct loop_probe {
    uv_prepare_t prepare;
    uint64_t start_ns;
    uint64_t last_ns, last_idle_ns, last_cpu_ns; /* at the previous iteration's prepare */
    long last_nvcsw, last_nivcsw;
    uint64_t max_stall_ns, max_stall_cpu_ns;
    uint64_t max_cpu_ns;       /* the most CPU time one iteration took: the loop's own work */
    uint64_t iterations, slow; /* slow: iterations busy longer than LOOP_PROBE_SLOW_NS */
    struct loop_stall stalls[LOOP_PROBE_KEEP]; /* the first slow iterations */
};

/* Starts measuring loop, which must have been configured with UV_METRICS_IDLE_TIME right after
 * uv_loop_init. The probe's handle does not keep the loop alive. Returns 0 or a libuv error. */
int loop_probe_start(struct loop_probe *p, uv_loop_t *loop);
/* Closes the probe's handle (the figures stay readable). */
void loop_probe_close(struct loop_probe *p);

#endif
