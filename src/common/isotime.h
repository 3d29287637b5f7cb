/* ISO 8601 / RFC 3339 times, parsed and written in one place for every module
 * (API timestamps, log records, the cluster query language, the CLI). */
#ifndef BARGE_COMMON_ISOTIME_H
#define BARGE_COMMON_ISOTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed time: sec + nsec / 1e9 seconds since the epoch, in UTC. */
struct barge_isotime {
    int64_t sec;
    int32_t nsec;      /* 0..999999999; digits past the ninth are dropped */
    bool has_time;     /* false for a bare date (midnight UTC) */
    bool has_fraction; /* seconds had a fractional part */
    bool has_zone;     /* 'Z' or an offset was given; without one the time is UTC */
};

/* Parses len bytes of s: "YYYY-MM-DD", optionally followed by 'T' (or 't')
 * "hh:mm:ss", an optional '.' and one or more digits, and an optional zone:
 * 'Z' (or 'z') or "+hh:mm" / "-hh:mm". Dates that do not exist (02-30), hours
 * past 23, minutes past 59, seconds past 60 (a leap second) and anything else
 * are refused. Returns 0, or -1 without touching *out. Callers decide which of
 * the optional parts they require (see the has_* members). */
int barge_isotime_parse(const char *s, size_t len, struct barge_isotime *out);

/* The parsed time in seconds, as the API layer keeps timestamps. */
double barge_isotime_epoch(const struct barge_isotime *t);

/* Room for what barge_isotime_format writes, NUL included. */
#define BARGE_ISOTIME_MAX 40

/* Writes t (seconds since the epoch) in UTC as "YYYY-MM-DDThh:mm:ss", then a
 * '.' and frac_digits digits of the fraction, truncated (none when 0; at most
 * 9), then zone ("Z", "+0000", ...; NULL for none). Returns out. */
char *barge_isotime_format(double t, int frac_digits, const char *zone,
                           char out[BARGE_ISOTIME_MAX]);

#endif
