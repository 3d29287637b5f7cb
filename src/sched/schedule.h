/* Schedules of Application Auto Scaling's scheduled actions: "at(...)",
 * "rate(...)" and six-field "cron(...)" expressions, evaluated in a time zone.
 * Pure apart from the time-zone database. */
#ifndef BARGE_SCHED_SCHEDULE_H
#define BARGE_SCHED_SCHEDULE_H

#include <time.h>

#include "common/util.h"

struct barge_schedule;

/* Parses schedule; on failure returns NULL and *why (caller frees) says what
 * is wrong. tz is an IANA zone name ("UTC", "Europe/Paris"); NULL means UTC. */
struct barge_schedule *barge_schedule_parse(const char *schedule, const char *tz, char **why);
void barge_schedule_free(struct barge_schedule *s);

/* The first time the schedule fires after `after` (exclusive) and no later
 * than `until`, or 0 when it does not. For rate() schedules, `origin` is when
 * the schedule started counting (its StartTime or creation). */
time_t barge_schedule_next(const struct barge_schedule *s, time_t origin, time_t after,
                           time_t until);

#endif
