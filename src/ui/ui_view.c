/* The station's event sink for people: keeps one row per slot from phase, note and verdict
 * events and sampled progress, and turns them into plain lines, the live table or the closing
 * summary. Drawing is ui.c's. */
#include <stdlib.h>

#include "es/ui.h"

int ui_view_init(struct ui_view *v, FILE *f, enum ui_view_mode mode, size_t n, size_t cap)
{
    if (cap < n)
        cap = n;
    v->f = f;
    v->mode = mode;
    v->n = n;
    v->cap = cap;
    v->has_totals = 0;
    v->publish[0] = '\0';
    v->rows = calloc(cap ? cap : 1, sizeof(*v->rows));
    v->verdicts = calloc(cap ? cap : 1, sizeof(*v->verdicts));
    v->verdict_errors = calloc(cap ? cap : 1, sizeof(*v->verdict_errors));
    if (v->rows == NULL || v->verdicts == NULL || v->verdict_errors == NULL) {
        ui_view_close(v);
        return -1;
    }
    for (size_t i = 0; i < cap; i++)
        v->rows[i].phase = "-";
    return 0;
}

int ui_view_add(struct ui_view *v)
{
    if (v->n >= v->cap)
        return -1;
    v->n++;
    return 0;
}

void ui_view_remove_last(struct ui_view *v)
{
    if (v->n > 0)
        v->n--;
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
    const char *status = r->status;

    *r = *live;
    r->slot = slot;
    r->port = port;
    r->status = status;
}

void ui_view_status(struct ui_view *v, size_t i, const char *status, int keep_verdict)
{
    struct ui_row *r = &v->rows[i];

    r->status = status;
    if (!keep_verdict) {
        v->verdicts[i] = NULL;
        v->verdict_errors[i] = NULL;
        r->result = NULL;
        r->error = NULL;
    }
    if (status != NULL && v->mode == UI_VIEW_LINES)
        ui_line(v->f, r->slot, r->port, "slot", status);
}

void ui_view_totals(struct ui_view *v, const struct ui_totals *t)
{
    char text[160];

    v->has_totals = 1;
    v->totals = *t;
    if (v->mode != UI_VIEW_LINES)
        return;
    ui_totals_format(t, text, sizeof(text));
    fprintf(v->f, "totals: %s\n", text);
    fflush(v->f);
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

void ui_view_publish(struct ui_view *v, const char *text, int say)
{
    snprintf(v->publish, sizeof(v->publish), "%s", text);
    if (!say || v->mode != UI_VIEW_LINES)
        return;
    fprintf(v->f, "publish: %s\n", v->publish);
    fflush(v->f);
}

void ui_view_draw(struct ui_view *v, double elapsed_s)
{
    if (v->mode != UI_VIEW_LIVE)
        return;
    apply_verdicts(v);
    ui_table_draw(v->f, v->rows, v->n, elapsed_s, v->has_totals ? &v->totals : NULL);
    if (v->publish[0] != '\0') {
        fprintf(v->f, "%s\n", v->publish);
        fflush(v->f);
    }
}

void ui_view_summary(struct ui_view *v, double elapsed_s)
{
    char text[160];

    if (v->mode == UI_VIEW_QUIET)
        return;
    if (v->has_totals) {
        /* A line's rows show only each slot's last board: the totals are the run. */
        ui_totals_format(&v->totals, text, sizeof(text));
        fprintf(v->f, "\nline stopped after %.1f s: %s\n", elapsed_s, text);
        return;
    }
    if (v->n == 0)
        return;
    apply_verdicts(v);
    ui_summary(v->f, v->rows, v->n, elapsed_s);
}
