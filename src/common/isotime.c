/* The ISO 8601 parser and writer of isotime.h. Parsing is by hand rather than
 * with strptime(3), which skips spaces, takes one-digit fields and knows
 * nothing of fractions or offsets. */
#include "common/isotime.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int year, int mon)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon == 2 && leap ? 29 : days[mon - 1];
}

int barge_isotime_parse(const char *s, size_t len, struct barge_isotime *out)
{
    int year, mon, day, hour = 0, min = 0, sec = 0;
    if (len < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &year) || !digits(s + 5, 2, &mon) ||
        !digits(s + 8, 2, &day))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
        return -1;
    struct barge_isotime t = {0};
    size_t i = 10;
    if (i < len) {
        if (len - i < 9 || (s[i] != 'T' && s[i] != 't') || s[i + 3] != ':' || s[i + 6] != ':' ||
            !digits(s + i + 1, 2, &hour) || !digits(s + i + 4, 2, &min) ||
            !digits(s + i + 7, 2, &sec))
            return -1;
        if (hour > 23 || min > 59 || sec > 60)
            return -1;
        t.has_time = true;
        i += 9;
    }
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        int32_t scale = 100000000;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            t.nsec += (s[i] - '0') * scale;
            scale /= 10;
        }
        if (i == start)
            return -1;
        t.has_fraction = true;
    }
    int offset = 0;
    if (t.has_time && i < len && (s[i] == 'Z' || s[i] == 'z')) {
        t.has_zone = true;
        i++;
    } else if (t.has_time && i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (len - i < 6 || s[i + 3] != ':' || !digits(s + i + 1, 2, &oh) ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        t.has_zone = true;
        i += 6;
    }
    if (i != len)
        return -1;
    struct tm tm = {
        .tm_year = year - 1900,
        .tm_mon = mon - 1,
        .tm_mday = day,
        .tm_hour = hour,
        .tm_min = min,
        .tm_sec = sec,
    };
    t.sec = (int64_t)timegm(&tm) - offset;
    *out = t;
    return 0;
}

double barge_isotime_epoch(const struct barge_isotime *t)
{
    return (double)t->sec + (double)t->nsec / 1e9;
}

char *barge_isotime_format(double t, int frac_digits, const char *zone, char out[BARGE_ISOTIME_MAX])
{
    double whole = floor(t);
    time_t secs = (time_t)whole;
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, BARGE_ISOTIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac_digits > 9)
        frac_digits = 9;
    if (frac_digits > 0) {
        double scale = pow(10, frac_digits);
        double frac = floor((t - whole) * scale);
        if (frac < 0)
            frac = 0;
        if (frac > scale - 1)
            frac = scale - 1;
        n += (size_t)snprintf(out + n, BARGE_ISOTIME_MAX - n, ".%0*lld", frac_digits,
                              (long long)frac);
    }
    if (zone)
        snprintf(out + n, BARGE_ISOTIME_MAX - n, "%s", zone);
    return out;
}
