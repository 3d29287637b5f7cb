/* Scheduled-action schedules: at(), rate() and cron() with time zones. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <stdlib.h>
#include <string.h>

#include "sched/schedule.h"

/* 2026-11-30 is a Monday. */
static time_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return timegm(&tm);
}

static struct barge_schedule *ok(const char *s, const char *tz)
{
    char *why = NULL;
    struct barge_schedule *sch = barge_schedule_parse(s, tz, &why);
    if (!sch)
        fail_msg("'%s' refused: %s", s, why);
    return sch;
}

static void refused(const char *s, const char *tz, const char *needle)
{
    char *why = NULL;
    struct barge_schedule *sch = barge_schedule_parse(s, tz, &why);
    assert_null(sch);
    assert_non_null(why);
    if (!strstr(why, needle))
        fail_msg("'%s' not in '%s'", needle, why);
    free(why);
}

static void test_at(void **state)
{
    struct barge_schedule *s = ok("at(2026-11-30T10:00:00)", "UTC");
    time_t at = utc(2026, 11, 30, 10, 0);
    assert_int_equal(barge_schedule_next(s, 0, at - 10, at + 10), at);
    assert_int_equal(barge_schedule_next(s, 0, at, at + 10), 0);
    barge_schedule_free(s);
    s = ok("at(2026-11-30T10:00:00)", "Europe/Paris");
    assert_int_equal(barge_schedule_next(s, 0, at - 7200, at), utc(2026, 11, 30, 9, 0));
    barge_schedule_free(s);
}

static void test_rate(void **state)
{
    struct barge_schedule *s = ok("rate(5 minutes)", NULL);
    time_t o = utc(2026, 11, 30, 0, 0);
    assert_int_equal(barge_schedule_next(s, o, o, o + 3600), o + 300);
    assert_int_equal(barge_schedule_next(s, o, o + 301, o + 3600), o + 600);
    assert_int_equal(barge_schedule_next(s, o, o + 301, o + 500), 0);
    barge_schedule_free(s);
    refused("rate(5 minute)", NULL, "plural");
    refused("rate(0 hours)", NULL, "positive");
    refused("rate(2 weeks)", NULL, "units");
}

static void test_cron(void **state)
{
    struct barge_schedule *s = ok("cron(0 22 ? * MON-FRI *)", "UTC");
    time_t mon = utc(2026, 11, 30, 0, 0);
    assert_int_equal(barge_schedule_next(s, 0, mon, mon + 86400), utc(2026, 11, 30, 22, 0));
    /* Saturday morning to Monday night: the next weekday 22:00 is Monday's. */
    time_t sat = utc(2026, 12, 5, 0, 0);
    assert_int_equal(barge_schedule_next(s, 0, sat, sat + 3 * 86400), utc(2026, 12, 7, 22, 0));
    barge_schedule_free(s);
    s = ok("cron(*/15 9-10 1 * ? 2026)", "UTC");
    time_t d = utc(2026, 12, 1, 9, 1);
    assert_int_equal(barge_schedule_next(s, 0, d, d + 86400), utc(2026, 12, 1, 9, 15));
    barge_schedule_free(s);
    s = ok("cron(0 8 ? * 2 *)", "America/New_York");
    assert_int_equal(barge_schedule_next(s, 0, mon, mon + 86400), utc(2026, 11, 30, 13, 0));
    barge_schedule_free(s);
    refused("cron(0 8 * * * *)", NULL, "'?'");
    refused("cron(0 8 ? *)", NULL, "six fields");
    refused("cron(61 8 ? * * *)", NULL, "minutes");
    refused("cron(0 8 L * ? *)", NULL, "not supported");
    refused("cron(0 8 ? * * *)", "Mars/Olympus", "time zone");
    refused("every day", NULL, "expected");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_cron),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
