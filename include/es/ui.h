/* What the bench operator sees: a live table redrawn in place on a terminal, or plain
 * timestamped lines when stdout is not a terminal. Takes plain rows, never a session. */
#ifndef ES_UI_H
#define ES_UI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ui_row {
    int slot;
    const char *port;
    const char *chip; /* NULL until detected */
    char mac[18];     /* "" until read */
    const char *phase;
    uint64_t done_bytes, total_bytes;
    double rate_bps;
    int finished;
    const char *result; /* "pass", "fail", "interrupted" once finished */
    const char *error;  /* the reason when failed */
    const char
        *status; /* continuous: what the slot waits for ("already flashed at ..."), or NULL */
};

/* A continuous run's totals (ui_table_draw's and the lines' footer). */
struct ui_totals {
    size_t passed, failed, interrupted;
    double boards_per_hour; /* finished boards per hour of run time */
    double mean_board_s;    /* mean session time of a finished board */
};

/* "19:30:01.123 slot 3 /dev/ttyUSB2: what: text" */
void ui_line(FILE *f, int slot, const char *port, const char *what, const char *text);

/* Redraws the whole table in place (ANSI: cursor home, clear to end). totals: a continuous run's
 * footer, or NULL (one pass: the rows' own counts). */
void ui_table_draw(FILE *f, const struct ui_row *rows, size_t n, double elapsed_s,
                   const struct ui_totals *totals);
/* "12 passed, 1 failed, yield 92.3%, 480 boards/h, 7.5 s per board" */
void ui_totals_format(const struct ui_totals *t, char *out, size_t cap);

/* The closing summary: counts, then one line per failed board with its reason. */
void ui_summary(FILE *f, const struct ui_row *rows, size_t n, double elapsed_s);

/* ---- The station's event sink for people (ui_view.c) ---- */

enum ui_view_mode {
    UI_VIEW_LIVE,  /* the table, redrawn in place by ui_view_draw */
    UI_VIEW_LINES, /* one timestamped line per event */
    UI_VIEW_QUIET  /* nothing during the run, no summary (--json: stdout is the journal's) */
};

/* One row per slot, kept from the events the station passes on and the progress it samples.
 * Embedded in the station; ui_view_init() allocates the rows, ui_view_close() frees them. Every
 * string is borrowed and must outlive the view. */
struct ui_view {
    FILE *f;
    enum ui_view_mode mode;
    struct ui_row *rows;
    size_t n;
    const char **verdicts; /* per row: the station's final result once known, else NULL */
    const char **verdict_errors;
    size_t cap;     /* rows allocated: a continuous run adds slots up to it */
    int has_totals; /* continuous: totals is the footer */
    struct ui_totals totals;
    /* Publishing to the fleet database: "12 reports waiting for the database (down: ...)",
     * under the table; "" when not publishing. */
    char publish[320];
};

/* Rows for n slots (room for cap, at least n), every one "-" until it is told more. Returns 0,
 * or -1 out of memory. */
int ui_view_init(struct ui_view *v, FILE *f, enum ui_view_mode mode, size_t n, size_t cap);
/* One more slot (a port plugged in during a continuous run): its row is n-1. Returns 0, or -1
 * when the view is full. */
int ui_view_add(struct ui_view *v);
/* Takes back the row ui_view_add gave (its slot could not be set up). */
void ui_view_remove_last(struct ui_view *v);
void ui_view_close(struct ui_view *v);
/* Names row i's slot and port. */
void ui_view_slot(struct ui_view *v, size_t i, int slot, const char *port);
/* Events: a phase change or a note prints a line (UI_VIEW_LINES). */
void ui_view_phase(struct ui_view *v, size_t i, const char *phase);
void ui_view_note(struct ui_view *v, size_t i, const char *what, const char *text);
/* The board's progress as sampled from its session (slot and port in live are ignored). */
void ui_view_progress(struct ui_view *v, size_t i, const struct ui_row *live);
/* The verdict as recorded (the session's, or amended by the station: a duplicate MAC). Wins
 * over the sampled result from then on. */
void ui_view_verdict(struct ui_view *v, size_t i, const char *result, const char *error);
/* The board's verdict is durable: its line (UI_VIEW_LINES), with text the MAC or the reason. */
void ui_view_done(struct ui_view *v, size_t i, const char *result, const char *text);
/* Continuous: what row i's slot waits for (borrowed; NULL: nothing), a line for it
 * (UI_VIEW_LINES: call it when it changes), and whether the last verdict is still on show
 * (cleared: the board left). */
void ui_view_status(struct ui_view *v, size_t i, const char *status, int keep_verdict);
/* Continuous: the run's totals, for the table's footer and a line (UI_VIEW_LINES). */
void ui_view_totals(struct ui_view *v, const struct ui_totals *t);
/* The fleet database's line (text is copied): shown under the live table, and printed as a
 * line (UI_VIEW_LINES) when say is set (the connection's state changed, not just the count). */
void ui_view_publish(struct ui_view *v, const char *text, int say);
/* Redraws the table (UI_VIEW_LIVE only). */
void ui_view_draw(struct ui_view *v, double elapsed_s);
/* The closing summary (not in UI_VIEW_QUIET). */
void ui_view_summary(struct ui_view *v, double elapsed_s);

#endif
