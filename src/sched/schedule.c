/* Scheduled-action schedules (see schedule.h). cron() has AWS's six fields:
 * minutes, hours, day of month, month, day of week (1-7 = SUN-SAT, or names)
 * and year, with '*', '?', lists, ranges and steps; L, W and # are refused.
 * Times are matched minute by minute in the schedule's time zone; the zone is
 * applied by converting through TZ under a lock, since the C library only
 * knows one zone per process at a time. */
#include "sched/schedule.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { AT, RATE, CRON };

struct barge_schedule {
    enum kind kind;
    char *tz;
    time_t at;         /* AT: the instant */
    long rate_seconds; /* RATE */
    /* CRON: allowed values as bit sets */
    unsigned long long minutes; /* 0-59 */
    unsigned hours;             /* 0-23 */
    unsigned long long mdays;   /* 1-31 */
    unsigned months;            /* 1-12 */
    unsigned wdays;             /* 0-6, Sunday 0 */
    bool any_mday, any_wday;
    int year_lo, year_hi;
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runs localtime_r or mktime in zone tz. */
static void in_zone(const char *tz, void (*fn)(void *), void *ud)
{
    pthread_mutex_lock(&tz_lock);
    char *old = getenv("TZ") ? barge_xstrdup(getenv("TZ")) : NULL;
    setenv("TZ", tz ? tz : "UTC", 1);
    tzset();
    fn(ud);
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
    pthread_mutex_unlock(&tz_lock);
}

struct conv {
    time_t t;
    struct tm tm;
};

static void do_local(void *ud)
{
    struct conv *c = ud;
    localtime_r(&c->t, &c->tm);
}

static void do_mktime(void *ud)
{
    struct conv *c = ud;
    c->tm.tm_isdst = -1;
    c->t = mktime(&c->tm);
}

static bool zone_exists(const char *tz)
{
    if (!tz || strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0)
        return true;
    if (strstr(tz, "..") || tz[0] == '/')
        return false;
    char path[512];
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    FILE *f = fopen(path, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static int value_of(const char *s, size_t n, const char *const *names, size_t n_names, int base)
{
    for (size_t i = 0; names && i < n_names; i++)
        if (n == 3 && strncasecmp(s, names[i], 3) == 0)
            return (int)i + base;
    if (n == 0 || n > 4)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return -1;
    return atoi(s);
}

/* Parses one cron field into a bit set over lo..hi. */
static bool parse_field(const char *f, int lo, int hi, const char *const *names, size_t n_names,
                        int name_base, unsigned long long *bits, bool *any)
{
    *bits = 0;
    if (any)
        *any = false;
    if (strcmp(f, "*") == 0 || strcmp(f, "?") == 0) {
        for (int v = lo; v <= hi; v++)
            *bits |= 1ULL << v;
        if (any)
            *any = true;
        return true;
    }
    _cleanup_free_ char *copy = barge_xstrdup(f);
    char *save = NULL;
    for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        int step = 1;
        char *slash = strchr(part, '/');
        if (slash) {
            *slash = '\0';
            step = atoi(slash + 1);
            if (step < 1)
                return false;
        }
        int a, b;
        if (strcmp(part, "*") == 0) {
            a = lo;
            b = hi;
        } else {
            char *dash = strchr(part, '-');
            if (dash) {
                a = value_of(part, (size_t)(dash - part), names, n_names, name_base);
                b = value_of(dash + 1, strlen(dash + 1), names, n_names, name_base);
            } else {
                a = value_of(part, strlen(part), names, n_names, name_base);
                b = slash ? hi : a;
            }
        }
        if (a < lo || b > hi || a > b)
            return false;
        for (int v = a; v <= b; v += step)
            *bits |= 1ULL << v;
    }
    return *bits != 0;
}

static struct barge_schedule *fail(struct barge_schedule *s, char **why, const char *msg)
{
    *why = barge_xstrdup(msg);
    barge_schedule_free(s);
    return NULL;
}

struct barge_schedule *barge_schedule_parse(const char *schedule, const char *tz, char **why)
{
    *why = NULL;
    struct barge_schedule *s = barge_xcalloc(1, sizeof(*s));
    s->tz = barge_xstrdup(tz ? tz : "UTC");
    if (!zone_exists(s->tz))
        return fail(s, why, "unknown time zone");
    size_t n = strlen(schedule);
    if (n < 5 || schedule[n - 1] != ')')
        return fail(s, why, "expected at(...), rate(...) or cron(...)");
    _cleanup_free_ char *body = NULL;
    if (barge_str_has_prefix(schedule, "at(")) {
        body = barge_xstrndup(schedule + 3, n - 4);
        struct conv c = {0};
        if (sscanf(body, "%4d-%2d-%2dT%2d:%2d:%2d", &c.tm.tm_year, &c.tm.tm_mon, &c.tm.tm_mday,
                   &c.tm.tm_hour, &c.tm.tm_min, &c.tm.tm_sec) != 6)
            return fail(s, why, "at() takes yyyy-mm-ddThh:mm:ss");
        c.tm.tm_year -= 1900;
        c.tm.tm_mon -= 1;
        in_zone(s->tz, do_mktime, &c);
        s->kind = AT;
        s->at = c.t;
        return s;
    }
    if (barge_str_has_prefix(schedule, "rate(")) {
        body = barge_xstrndup(schedule + 5, n - 6);
        long v;
        char unit[16];
        if (sscanf(body, "%ld %15s", &v, unit) != 2 || v < 1)
            return fail(s, why, "rate() takes a positive number and a unit");
        long mult = 0;
        if (strcmp(unit, "minute") == 0 || strcmp(unit, "minutes") == 0)
            mult = 60;
        else if (strcmp(unit, "hour") == 0 || strcmp(unit, "hours") == 0)
            mult = 3600;
        else if (strcmp(unit, "day") == 0 || strcmp(unit, "days") == 0)
            mult = 86400;
        if (!mult)
            return fail(s, why, "rate() units are minute(s), hour(s) or day(s)");
        if ((v == 1) != (unit[strlen(unit) - 1] != 's'))
            return fail(s, why, "rate(1 minute) is singular, other values plural");
        s->kind = RATE;
        s->rate_seconds = v * mult;
        return s;
    }
    if (!barge_str_has_prefix(schedule, "cron("))
        return fail(s, why, "expected at(...), rate(...) or cron(...)");
    body = barge_xstrndup(schedule + 5, n - 6);
    char *fields[6];
    size_t nf = 0;
    char *save = NULL;
    for (char *f = strtok_r(body, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
        if (nf == 6)
            return fail(s, why,
                        "cron() has six fields: minutes hours day-of-month month "
                        "day-of-week year");
        fields[nf++] = f;
    }
    if (nf != 6)
        return fail(s, why,
                    "cron() has six fields: minutes hours day-of-month month "
                    "day-of-week year");
    for (size_t i = 0; i < 6; i++)
        if (strpbrk(fields[i], "LW#"))
            return fail(s, why, "L, W and # are not supported in cron() here");
    unsigned long long bits;
    s->kind = CRON;
    if (!parse_field(fields[0], 0, 59, NULL, 0, 0, &s->minutes, NULL))
        return fail(s, why, "invalid minutes field");
    if (!parse_field(fields[1], 0, 23, NULL, 0, 0, &bits, NULL))
        return fail(s, why, "invalid hours field");
    s->hours = (unsigned)bits;
    if (!parse_field(fields[2], 1, 31, NULL, 0, 0, &s->mdays, &s->any_mday))
        return fail(s, why, "invalid day-of-month field");
    if (!parse_field(fields[3], 1, 12, month_names, 12, 1, &bits, NULL))
        return fail(s, why, "invalid month field");
    s->months = (unsigned)bits;
    /* AWS numbers days of the week 1-7 from Sunday. */
    if (!parse_field(fields[4], 1, 7, day_names, 7, 1, &bits, &s->any_wday))
        return fail(s, why, "invalid day-of-week field");
    s->wdays = (unsigned)(bits >> 1);
    if (strcmp(fields[2], "?") != 0 && strcmp(fields[4], "?") != 0)
        return fail(s, why, "one of day-of-month and day-of-week must be '?'");
    if (strcmp(fields[5], "*") == 0) {
        s->year_lo = 1970;
        s->year_hi = 9999;
    } else if (sscanf(fields[5], "%d-%d", &s->year_lo, &s->year_hi) == 2) {
    } else if (sscanf(fields[5], "%d", &s->year_lo) == 1) {
        s->year_hi = s->year_lo;
    } else {
        return fail(s, why, "invalid year field");
    }
    return s;
}

void barge_schedule_free(struct barge_schedule *s)
{
    if (!s)
        return;
    free(s->tz);
    free(s);
}

static bool cron_matches(const struct barge_schedule *s, const struct tm *tm)
{
    int year = tm->tm_year + 1900;
    if (!(s->minutes >> tm->tm_min & 1) || !(s->hours >> tm->tm_hour & 1) ||
        !(s->months >> (tm->tm_mon + 1) & 1) || year < s->year_lo || year > s->year_hi)
        return false;
    bool mday = s->mdays >> tm->tm_mday & 1, wday = s->wdays >> tm->tm_wday & 1;
    if (s->any_mday)
        return wday;
    if (s->any_wday)
        return mday;
    return mday && wday;
}

time_t barge_schedule_next(const struct barge_schedule *s, time_t origin, time_t after,
                           time_t until)
{
    switch (s->kind) {
    case AT:
        return s->at > after && s->at <= until ? s->at : 0;
    case RATE: {
        if (after < origin)
            after = origin;
        time_t k = (after - origin) / s->rate_seconds + 1;
        time_t t = origin + k * s->rate_seconds;
        return t <= until ? t : 0;
    }
    case CRON:
        break;
    }
    /* Minute by minute, at most a year ahead. */
    time_t t = (after / 60 + 1) * 60;
    if (until - t > 366L * 86400)
        until = t + 366L * 86400;
    for (; t <= until; t += 60) {
        struct conv c = {.t = t};
        in_zone(s->tz, do_local, &c);
        if (cron_matches(s, &c.tm))
            return t;
    }
    return 0;
}
