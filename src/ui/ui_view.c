/* The station's event sink for people: keeps one row per slot from phase, note and verdict
 * events and sampled progress, and turns them into plain lines, the live table or the closing
 * summary. Drawing is ui.c's. */
#include <stdlib.h>

#include "es/ui.h"

int ui_view_init(struct ui_view *v, FILE *f, enum ui_view_mode mode, size_t n)
{
    v->f = f;
    v->mode = mode;
    v->n = n;
    v->rows = calloc(n ? n : 1, sizeof(*v->rows));
    v->verdicts = calloc(n ? n : 1, sizeof(*v->verdicts));
    v->verdict_errors = calloc(n ? n : 1, sizeof(*v->verdict_errors));
    if (v->rows == NULL || v->verdicts == NULL || v->verdict_errors == NULL) {
        ui_view_close(v);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        v->rows[i].phase = "-";
    return 0;
}

void ui_view_close(struct ui_view *v)
{
    free(v->rows);
    free(v->verdicts);
    free(v->verdict_errors);
    v->rows = NULL;
    v->verdicts = NULL;
    v->verdict_errors = NULL;
    v->n = 0;
}

void ui_view_slot(struct ui_view *v, size_t i, int slot, const char *port)
{
    v->rows[i].slot = slot;
    v->rows[i].port = port;
}

void ui_view_phase(struct ui_view *v, size_t i, const char *phase)
{
    v->rows[i].phase = phase;
    if (v->mode == UI_VIEW_LINES)
        ui_line(v->f, v->rows[i].slot, v->rows[i].port, "phase", phase);
}

void ui_view_note(struct ui_view *v, size_t i, const char *what, const char *text)
{
    if (v->mode == UI_VIEW_LINES)
        ui_line(v->f, v->rows[i].slot, v->rows[i].port, what, text);
}

void ui_view_progress(struct ui_view *v, size_t i, const struct ui_row *live)
{
    struct ui_row *r = &v->rows[i];
    int slot = r->slot;
    const char *port = r->port;

    *r = *live;
    r->slot = slot;
    r->port = port;
}

void ui_view_verdict(struct ui_view *v, size_t i, const char *result, const char *error)
{
    v->verdicts[i] = result;
    v->verdict_errors[i] = error;
}

void ui_view_done(struct ui_view *v, size_t i, const char *result, const char *text)
{
    if (v->mode == UI_VIEW_LINES)
        ui_line(v->f, v->rows[i].slot, v->rows[i].port, result, text);
}

/* The rows with each recorded verdict in place of the sampled one. */
static void apply_verdicts(struct ui_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->verdicts[i] == NULL)
            continue;
        v->rows[i].result = v->verdicts[i];
        v->rows[i].error = v->verdict_errors[i];
    }
}

void ui_view_draw(struct ui_view *v, double elapsed_s)
{
    if (v->mode != UI_VIEW_LIVE)
        return;
    apply_verdicts(v);
    ui_table_draw(v->f, v->rows, v->n, elapsed_s);
}

void ui_view_summary(struct ui_view *v, double elapsed_s)
{
    if (v->mode == UI_VIEW_QUIET || v->n == 0)
        return;
    apply_verdicts(v);
    ui_summary(v->f, v->rows, v->n, elapsed_s);
}
