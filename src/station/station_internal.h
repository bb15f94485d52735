/* Private to the station (station.c, station_slot.c): the run's state and one slot's. */
#ifndef ES_STATION_INTERNAL_H
#define ES_STATION_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "es/container_of.h"
#include "es/event_log.h"
#include "es/report.h"
#include "es/session.h"
#include "es/station.h"
#include "es/stub.h"
#include "es/ui.h"
#include "loop_probe.h"
#include "station_payload.h"
#include "station_sim.h"
#include "station_writer.h"

struct slot {
    struct station *st;
    int index;
    char *port;
    struct session *session;
    int finished; /* the session has ended: report holds its verdict */
    char report_file[256];
    char *report_error; /* why no report was written (malloc'd), or NULL */
    struct report_run_slot summary;
    /* The board's report as written: the session's, amended by the station (duplicate MAC). */
    struct report_device report;
    struct es_err dup_error;
    int *dup_slots; /* other slots with this board's MAC (malloc'd) */
    size_t n_dup_slots;
};

struct station {
    const struct station_config *cfg;
    uv_loop_t loop;
    int loop_ok; /* uv_loop_init succeeded: the handles below are initialised */
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t ui_timer;
    struct loop_probe probe;
    struct stub_image stubs[CHIP_MODEL_COUNT];
    struct payload_set payloads;
    struct slot *slots;
    size_t n_slots, n_running;
    int stopping;
    char run_dir[4096];
    struct event_log log;
    struct ui_view view;
    struct station_writer writer;
    size_t reports_lost; /* boards whose report could not be written */
    uint64_t start_ns;
    int64_t start_ms;
    struct port_info *ports; /* the system's serial ports, for USB identities in reports */
    size_t n_ports;
    struct station_sim sim;
};

/* The session of slot has ended with session_rep: records its verdict (checking for a duplicate
 * MAC among the finished boards), then has its report written and its "done" line appended and
 * synced on the writer; only then is the operator told and the board counted as finished. */
void station_slot_done(struct slot *slot, const struct report_device *session_rep);

/* Samples every running board's progress into the view. */
void station_sample_progress(struct station *st);
double station_elapsed_s(const struct station *st);
/* The last board is recorded (or none could start): closes the station's own handles, so the
 * loop ends. */
void station_stop_loop_handles(struct station *st);

#endif
