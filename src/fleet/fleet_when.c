/* The times `espstation fleet --since/--until` accepts, turned into seconds since the epoch:
 * now, today, yesterday, "-8h"-style offsets, and ISO dates and times (local unless they carry
 * "Z" or an offset). Pure apart from the local time zone (mktime), so unit tests pin TZ. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/fleet_db.h"

#define WHEN_FORMS                                                                                 \
    "give now, today, yesterday, -N followed by m, h, d or w (e.g. -8h), YYYY-MM-DD or "           \
    "YYYY-MM-DDTHH:MM[:SS] (local time, or ending in Z or +HH:MM)"

/* Reads exactly n digits at *p into *out and advances *p. 0, or -1. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil), for the times given in UTC: POSIX has no timegm(). */
static long days_from_civil(int y, int m, int d)
{
    long yy = m <= 2 ? y - 1 : y;
    long era = (yy >= 0 ? yy : yy - 399) / 400;
    long yoe = yy - era * 400;
    long doy = (153L * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

/* Local midnight `days_back` days before the day of now. */
static int local_midnight(time_t now, int days_back, time_t *out)
{
    struct tm tm;

    if (localtime_r(&now, &tm) == NULL)
        return -1;
    tm.tm_mday -= days_back;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    *out = mktime(&tm);
    return *out == (time_t)-1 ? -1 : 0;
}

/* "-N" + unit. 0, or -1 when text is not of that form. */
static int parse_relative(const char *text, time_t now, time_t *out)
{
    char *end;
    long n, unit;

    if (text[0] != '-' || !isdigit((unsigned char)text[1]))
        return -1;
    n = strtol(text + 1, &end, 10);
    if (end[0] == '\0' || end[1] != '\0' || n > 100000)
        return -1;
    switch (end[0]) {
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    *out = now - (time_t)(n * unit);
    return 0;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS][Z|(+|-)HH:MM]]. 0, or -1. */
static int parse_iso(const char *p, time_t *out)
{
    int y, mo, d, h = 0, mi = 0, s = 0, oh = 0, om = 0, utc = 0, sign = 1;
    struct tm tm = {0};

    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0)
            return -1;
        if (*p == ':' && (p++, digits(&p, 2, &s) < 0))
            return -1;
        if (h > 23 || mi > 59 || s > 59)
            return -1;
        if (*p == 'Z') {
            utc = 1;
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p++ == '-' ? -1 : 1;
            if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 23 ||
                om > 59)
                return -1;
            utc = 1;
        }
    }
    if (*p != '\0')
        return -1;
    if (utc) {
        long secs = days_from_civil(y, mo, d) * 86400L + h * 3600L + mi * 60L + s;

        *out = (time_t)(secs - sign * (oh * 3600L + om * 60L));
        return 0;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    *out = mktime(&tm);
    return *out == (time_t)-1 ? -1 : 0;
}

int fleet_when_parse(const char *text, time_t now, time_t *out, struct es_err *err)
{
    int rc;

    if (strcmp(text, "now") == 0) {
        *out = now;
        return 0;
    }
    if (strcmp(text, "today") == 0)
        rc = local_midnight(now, 0, out);
    else if (strcmp(text, "yesterday") == 0)
        rc = local_midnight(now, 1, out);
    else if (text[0] == '-')
        rc = parse_relative(text, now, out);
    else
        rc = parse_iso(text, out);
    if (rc < 0)
        return es_fail(err, ES_USAGE, "'%s' is not a time: " WHEN_FORMS, text);
    return 0;
}
