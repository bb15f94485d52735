/* The operator's view: plain lines (ui_line) and the live table (ui_table_draw). */
#include "es/ui.h"

#include <string.h>
#include <sys/time.h>
#include <time.h>

#define BAR_WIDTH 20

void ui_line(FILE *f, int slot, const char *port, const char *what, const char *text)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    fprintf(f, "%02d:%02d:%02d.%03d slot %d %s: %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            (int)(tv.tv_usec / 1000), slot, port, what, text);
    fflush(f);
}

static void bar(char *out, uint64_t done, uint64_t total)
{
    int fill = total > 0 ? (int)(done * BAR_WIDTH / total) : 0;

    for (int i = 0; i < BAR_WIDTH; i++)
        out[i] = i < fill ? '#' : '.';
    out[BAR_WIDTH] = '\0';
}

static const char *short_port(const char *port)
{
    const char *slash = strrchr(port, '/');

    return slash != NULL && slash[1] != '\0' ? slash + 1 : port;
}

void ui_totals_format(const struct ui_totals *t, char *out, size_t cap)
{
    size_t done = t->passed + t->failed;

    snprintf(out, cap, "%zu passed, %zu failed, yield %.1f%%, %.0f boards/h, %.1f s per board",
             t->passed, t->failed, done > 0 ? 100.0 * (double)t->passed / (double)done : 0.0,
             t->boards_per_hour, t->mean_board_s);
}

void ui_table_draw(FILE *f, const struct ui_row *rows, size_t n, double elapsed_s,
                   const struct ui_totals *totals)
{
    size_t passed = 0, failed = 0;
    char b[BAR_WIDTH + 1];

    fputs("\033[H\033[J", f);
    fprintf(f, "espstation  %zu boards  %.1f s\n\n", n, elapsed_s);
    fprintf(f, "%-4s %-12s %-8s %-17s %-9s %-*s %5s %8s  %s\n", "slot", "port", "chip", "mac",
            "phase", BAR_WIDTH, "progress", "%", "kbit/s", "result");
    for (size_t i = 0; i < n; i++) {
        const struct ui_row *r = &rows[i];
        int pct = r->total_bytes > 0 ? (int)(r->done_bytes * 100 / r->total_bytes) : 0;

        bar(b, r->done_bytes, r->total_bytes);
        fprintf(f, "%-4d %-12.12s %-8s %-17s %-9s %s %4d%% %8.1f  %s%s%s%s%s\n", r->slot,
                short_port(r->port), r->chip != NULL ? r->chip : "-",
                r->mac[0] != '\0' ? r->mac : "-", r->phase, b, pct, r->rate_bps * 8 / 1000,
                r->result != NULL ? r->result : "", r->error != NULL ? ": " : "",
                r->error != NULL ? r->error : "", r->status != NULL ? "  " : "",
                r->status != NULL ? r->status : "");
        if (r->result != NULL && strcmp(r->result, "pass") == 0)
            passed++;
        else if (r->result != NULL)
            failed++;
    }
    if (totals != NULL) {
        char text[160];

        ui_totals_format(totals, text, sizeof(text));
        fprintf(f, "\n%s\n", text);
    } else {
        fprintf(f, "\n%zu passed, %zu failed, %zu running\n", passed, failed, n - passed - failed);
    }
    fflush(f);
}

void ui_summary(FILE *f, const struct ui_row *rows, size_t n, double elapsed_s)
{
    size_t passed = 0;

    for (size_t i = 0; i < n; i++)
        if (rows[i].result != NULL && strcmp(rows[i].result, "pass") == 0)
            passed++;
    fprintf(f, "\n%zu of %zu boards passed in %.1f s\n", passed, n, elapsed_s);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].result == NULL || strcmp(rows[i].result, "pass") == 0)
            continue;
        fprintf(f, "  slot %d %s: %s: %s\n", rows[i].slot, rows[i].port, rows[i].result,
                rows[i].error != NULL ? rows[i].error : "");
    }
}
