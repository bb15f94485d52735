/* Private to the station (station.c, station_slot.c): the run's state and one slot's. */
#ifndef ES_STATION_INTERNAL_H
#define ES_STATION_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "es/container_of.h"
#include "es/event_log.h"
#include "es/outbox.h"
#include "es/publish.h"
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

    /* ---- A production line (--continuous, station_line.c) ---- */
    char *port_owned;    /* port, when the slot was made for a port plugged in later */
    const char *name;    /* stable: the USB location, else the port */
    int present;         /* the port exists (it can vanish and come back) */
    int probing;         /* session is a probe, not a board to record */
    int timer_ok;        /* timer is initialised (closed with the station) */
    uv_timer_t timer;    /* the next probe */
    int last_pass_valid; /* last_mac: the MAC of the last board that passed here */
    uint8_t last_mac[6];
    int64_t last_pass_ms;
    int last_fail_valid; /* last_fail_mac: a board that failed here and was not seen leaving */
    uint8_t last_fail_mac[6];
    int64_t last_fail_ms;
    char status[352]; /* what the operator sees besides the result ("already flashed at ...",
                       * or a probe's hint such as "hold BOOT and tap EN/RST") */
    int probe_waited; /* the running probe found no board at first and waits for one */
    char last_mac_text[18];

    /* ---- The fleet database (station_publish.c) ---- */
    uint64_t lookup_token; /* the board's MAC lookup in flight (0: none) */
    int fleet_dup_valid;   /* the database knew this board's MAC: fleet_dup */
    int fleet_dup_fail;    /* duplicate_mac: fail stopped the board for it */
    struct publish_dup fleet_dup;
    struct report_fleet_dup fleet_dup_rep; /* points into fleet_dup, for the report */
};

/* Publishing to the fleet database (station_publish.c). */
struct station_pub {
    int on; /* publishing: the rest is set up */
    char station[256];
    const char *run_id; /* the run directory's name, in station.run_dir */
    struct outbox outbox;
    struct publisher *pub;
    struct outbox_record *loaded; /* what earlier runs left, until station_publish_start */
    uint64_t next_token;
    size_t written_aside;  /* records written while another process holds the outbox */
    int64_t run_record_ms; /* when the latest run record was made */
    int finishing;
};

/* One finished board of a continuous run, for run.json. */
struct line_record {
    struct report_run_slot entry; /* report_file: file (owned) */
    char *file;
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

    /* ---- A production line (--continuous, station_line.c) ---- */
    size_t cap_slots; /* slots has room for this many (hot-plugged ports take the rest) */
    struct line_record *records; /* the latest finished boards, for run.json (LINE_RECENT) */
    size_t n_records, cap_records;
    size_t line_passed, line_failed, line_interrupted;
    uint64_t line_board_ms; /* the boards' session times, summed (mean time per board) */
    uv_fs_event_t *watches; /* one per directory a port pattern lives in */
    size_t n_watches;
    char **patterns; /* what a new port must match (owned) */
    size_t n_patterns;
    int summary_jobs; /* run.json writes queued on the writer */

    struct station_pub pub;
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

/* ---- The fleet database (station_publish.c) ---- */

/* After the run directory exists, before any board: opens the outbox and reads what earlier runs
 * left. Does nothing unless cfg->publish_url is set. Only an outbox that cannot be made is an
 * error (ES_REPORT): a database that is down is not (records wait). */
int station_publish_open(struct station *st, const char *reports_root, struct es_err *err);
/* Once the view exists: queues what earlier runs left (first), starts connecting and writes the
 * run's first record. */
void station_publish_start(struct station *st);
/* A new outbox record for body (loop thread: takes the next sequence number), or NULL when not
 * publishing (body is released). */
struct outbox_record *station_publish_record(struct station *st, json_t *body);
/* rec's file is written (rc 0) or could not be (err): hands it to the publisher. */
void station_publish_written(struct station *st, struct outbox_record *rec, int rc,
                             const struct es_err *err);
/* The session of slot noted its board's MAC (text: "aa:bb:.., description"): asks the
 * database, without waiting, whether it already passed elsewhere. */
void station_publish_mac(struct slot *slot, const char *text);
/* Applies what the database said about slot's board to slot->report (the session's, just
 * copied): fleet_duplicate, and under duplicate_mac: fail the verdict. */
void station_publish_slot_done(struct slot *slot);
/* A line's board is recorded: the run's record too, now and then (LINE_RUN_RECORD_MS). */
void station_publish_board_recorded(struct station *st);
/* The last board is recorded: writes the run's final record, then lets the publisher deliver
 * for a short grace and close. */
void station_publish_finish(struct station *st);
/* After the loop: says what still waits in the outbox, and frees the publisher. */
void station_publish_close(struct station *st);

/* ---- A production line (station_line.c) ---- */

/* Fills slot (index i of st->slots, for port) and its view row; in continuous mode also its
 * probe timer. Returns 0, or -1 (the timer could not be made). */
int station_slot_init(struct station *st, struct slot *slot, size_t i, char *port);
/* A new session for slot's board in mode (not started). Returns 0 or a negative code. */
int station_slot_session_new(struct slot *slot, enum session_mode mode, struct es_err *err);

/* Before anything is touched: every directory a port pattern lives in exists, so it can be
 * watched. Returns 0 or ES_USAGE. */
int station_line_check(const struct station_config *cfg, struct es_err *err);
/* Sets up continuous mode before the sessions start: hot-plug watches on the directories of the
 * patterns (and of sim_dir, for --simulate), and the first run.json. Returns 0 or a negative
 * code with err set. */
int station_line_open(struct station *st, const char *sim_dir, struct es_err *err);
/* Starts slot's first session: a flash, or (after a board passed here) a probe. */
void station_line_slot_start(struct slot *slot);
/* slot's board is recorded (report, "done" line): counts it, rewrites run.json, frees its
 * session and waits for the next board. */
void station_line_recorded(struct slot *slot);
/* A probe session ended. */
void station_line_probe_done(struct slot *slot, struct session *s);
/* A probe's note: "wait" (no board in download mode: the slot waits for one) and "hint" (what
 * the board prints instead, and what the operator should do) change what the slot shows. */
void station_line_probe_note(struct slot *slot, const char *what, const char *text);
/* SIGINT/SIGTERM/SIGHUP: no new sessions; ends the loop once every board is recorded. */
void station_line_stop(struct station *st);
/* Closes the probe timers and the hot-plug watches (the loop is ending). */
void station_line_close_handles(struct station *st);
/* Frees what continuous mode holds (after the loop). */
void station_line_free(struct station *st);
/* run.json's boards so far (continuous) or the slots (one pass). */
int station_write_summary(struct station *st, const struct report_run_slot *slots, size_t n,
                          const struct report_run_counts *counts, struct es_err *err);
/* The run's counts so far (continuous). */
void station_line_counts(const struct station *st, struct report_run_counts *out);

#endif
