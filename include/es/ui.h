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
};

/* "19:30:01.123 slot 3 /dev/ttyUSB2: what: text" */
void ui_line(FILE *f, int slot, const char *port, const char *what, const char *text);

/* Redraws the whole table in place (ANSI: cursor home, clear to end). */
void ui_table_draw(FILE *f, const struct ui_row *rows, size_t n, double elapsed_s);

/* The closing summary: counts, then one line per failed board with its reason. */
void ui_summary(FILE *f, const struct ui_row *rows, size_t n, double elapsed_s);

#endif
