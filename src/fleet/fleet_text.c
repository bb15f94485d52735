/* `espstation fleet` for a person: the summary document (fleet_summary.c) as aligned columns,
 * one line per station and profile, then their top failures and the duplicate MACs. Only
 * layout here: every number is already in the document. */
#include <stdio.h>
#include <string.h>

#include "es/fleet_db.h"

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : "-";
}

static long long num(const json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

/* "2026-12-04T08:00:00+01:00" as "2026-12-04 08:00:00" (the header names the offset). */
static void when(const json_t *obj, const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%.19s", str(obj, key));
    if (strlen(out) > 10 && out[10] == 'T')
        out[10] = ' ';
}

static int width(const json_t *groups, const char *key, int least)
{
    size_t i;
    json_t *g;
    int w = least;

    json_array_foreach(groups, i, g)
    {
        int n = (int)strlen(str(g, key));

        if (n > w)
            w = n;
    }
    return w;
}

static void print_groups(const json_t *groups, FILE *f)
{
    int ws = width(groups, "station", 7), wp = width(groups, "profile", 7);
    size_t i;
    json_t *g;

    fprintf(f, "%-*s  %-*s  %6s  %6s  %6s  %11s  %6s  %8s\n", ws, "STATION", wp, "PROFILE",
            "BOARDS", "PASSED", "FAILED", "INTERRUPTED", "YIELD", "BOARDS/H");
    json_array_foreach(groups, i, g)
    {
        const json_t *yield = json_object_get(g, "yield_pct");
        const json_t *rate = json_object_get(g, "boards_per_hour");
        char ytext[16] = "-", rtext[24] = "-";

        if (json_is_number(yield))
            snprintf(ytext, sizeof(ytext), "%.1f%%", json_number_value(yield));
        if (json_is_number(rate))
            snprintf(rtext, sizeof(rtext), "%.2f", json_number_value(rate));
        fprintf(f, "%-*s  %-*s  %6lld  %6lld  %6lld  %11lld  %6s  %8s\n", ws, str(g, "station"), wp,
                str(g, "profile"), num(g, "boards"), num(g, "passed"), num(g, "failed"),
                num(g, "interrupted"), ytext, rtext);
    }
}

/* "flash 2, sync 1" from [{"phase": "flash", "count": 2}, ...]; "none" when empty. */
static void print_top(const json_t *list, const char *key, FILE *f)
{
    size_t i;
    json_t *item;

    if (json_array_size(list) == 0)
        fputs("none", f);
    json_array_foreach(list, i, item)
    {
        fprintf(f, "%s%s %lld", i > 0 ? ", " : "", str(item, key), num(item, "count"));
    }
}

static void print_failures(const json_t *groups, FILE *f)
{
    size_t i;
    json_t *g;
    int any = 0;

    json_array_foreach(groups, i, g)
    {
        if (num(g, "failed") == 0)
            continue;
        if (!any)
            fputs("\ntop failures (failed boards; at most 5 each)\n", f);
        any = 1;
        fprintf(f, "  %s %s: phases ", str(g, "station"), str(g, "profile"));
        print_top(json_object_get(g, "top_phases"), "phase", f);
        fputs("; codes ", f);
        print_top(json_object_get(g, "top_errors"), "code", f);
        fputc('\n', f);
    }
}

static void print_duplicates(const json_t *dups, FILE *f)
{
    size_t i, j;
    json_t *d, *b;

    if (json_array_size(dups) == 0) {
        fputs("\nduplicate MACs: none\n", f);
        return;
    }
    fputs("\nduplicate MACs (passed with one profile in more than one run or station)\n", f);
    json_array_foreach(dups, i, d)
    {
        fprintf(f, "  %s  %s\n", str(d, "mac"), str(d, "profile"));
        json_array_foreach(json_object_get(d, "boards"), j, b)
        {
            char ended[24];

            when(b, "ended_at", ended, sizeof(ended));
            fprintf(f, "    %s  %s  run %s  slot %s\n", ended, str(b, "station"), str(b, "run_id"),
                    str(b, "slot"));
        }
    }
}

int fleet_text_print(const json_t *summary, FILE *f)
{
    const json_t *groups = json_object_get(summary, "groups");
    const char *since = str(summary, "since");
    char from[24], to[24];

    when(summary, "since", from, sizeof(from));
    when(summary, "until", to, sizeof(to));
    fprintf(f, "fleet database %s: boards that ended from %s to %s (local time, UTC%s)\n",
            str(summary, "database"), from, to, strlen(since) > 19 ? since + 19 : "");
    if (json_array_size(groups) == 0)
        fputs("no boards\n", f);
    else {
        fputc('\n', f);
        print_groups(groups, f);
        print_failures(groups, f);
    }
    print_duplicates(json_object_get(summary, "duplicate_macs"), f);
    return ferror(f) ? -1 : 0;
}
