/* The one ISO 8601 / RFC 3339 parser and writer (common/isotime.h) that the
 * API codecs, the log driver, the cluster query language and the CLI share. */
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "common/isotime.h"

static int parse(const char *s, struct barge_isotime *t)
{
    return barge_isotime_parse(s, strlen(s), t);
}

static void test_zones(void **state)
{
    (void)state;
    struct barge_isotime t;
    assert_int_equal(parse("2024-05-01T08:00:00Z", &t), 0);
    assert_int_equal(t.sec, 1714550400);
    assert_int_equal(t.nsec, 0);
    assert_true(t.has_time && t.has_zone && !t.has_fraction);

    assert_int_equal(parse("2024-05-01t08:00:00z", &t), 0);
    assert_int_equal(t.sec, 1714550400);

    assert_int_equal(parse("2024-05-01T10:00:00+02:00", &t), 0);
    assert_int_equal(t.sec, 1714550400);
    assert_int_equal(parse("2024-05-01T07:30:00-00:30", &t), 0);
    assert_int_equal(t.sec, 1714550400);
    /* An offset can move the time across a day boundary. */
    assert_int_equal(parse("2024-04-30T23:00:00-09:00", &t), 0);
    assert_int_equal(t.sec, 1714550400);

    /* No zone: UTC, and the caller can tell. */
    assert_int_equal(parse("2024-05-01T08:00:00", &t), 0);
    assert_int_equal(t.sec, 1714550400);
    assert_true(t.has_time && !t.has_zone);

    /* A bare date is midnight UTC. */
    assert_int_equal(parse("2024-05-01", &t), 0);
    assert_int_equal(t.sec, 1714521600);
    assert_false(t.has_time);
}

static void test_fractions(void **state)
{
    (void)state;
    struct barge_isotime t;
    assert_int_equal(parse("2024-05-01T08:00:00.5Z", &t), 0);
    assert_int_equal(t.nsec, 500000000);
    assert_true(t.has_fraction);
    assert_int_equal(parse("2024-05-01T08:00:00.123Z", &t), 0);
    assert_int_equal(t.nsec, 123000000);
    assert_true(barge_isotime_epoch(&t) == 1714550400.123);
    assert_int_equal(parse("2024-05-01T10:00:00.123456789+02:00", &t), 0);
    assert_int_equal(t.sec, 1714550400);
    assert_int_equal(t.nsec, 123456789);
    /* Digits past nanoseconds are dropped, not rounded. */
    assert_int_equal(parse("2024-05-01T08:00:00.9999999999Z", &t), 0);
    assert_int_equal(t.sec, 1714550400);
    assert_int_equal(t.nsec, 999999999);
    /* A fraction with no zone. */
    assert_int_equal(parse("2024-05-01T08:00:00.25", &t), 0);
    assert_int_equal(t.nsec, 250000000);
    assert_false(t.has_zone);
}

static void test_calendar(void **state)
{
    (void)state;
    struct barge_isotime t;
    assert_int_equal(parse("2024-02-29T00:00:00Z", &t), 0); /* leap year */
    assert_int_equal(parse("2000-02-29T00:00:00Z", &t), 0); /* divisible by 400 */
    assert_int_equal(parse("2016-12-31T23:59:60Z", &t), 0); /* leap second */
    assert_int_equal(t.sec, 1483228800);
    assert_int_equal(parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t.sec, 0);
}

static void test_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "x",
        "2024-05-01 08:00:00Z",      /* space for T */
        "2024-5-01T08:00:00Z",       /* one-digit month */
        "2024-05-01T8:00:00Z",       /* one-digit hour */
        " 2024-05-01T08:00:00Z",     /* leading space */
        "2024-05-01T08:00:00Z ",     /* trailing space */
        "2024-05-01T08:00Z",         /* no seconds */
        "2024-13-01T08:00:00Z",      /* month 13 */
        "2024-00-01T08:00:00Z",      /* month 0 */
        "2024-05-00T08:00:00Z",      /* day 0 */
        "2023-02-29T00:00:00Z",      /* not a leap year */
        "1900-02-29T00:00:00Z",      /* centuries are not, unless by 400 */
        "2024-02-30T00:00:00Z",      /* no such day */
        "2024-04-31T00:00:00Z",      /* April has 30 */
        "2024-05-01T24:00:00Z",      /* hour 24 */
        "2024-05-01T08:60:00Z",      /* minute 60 */
        "2024-05-01T08:00:61Z",      /* second 61 */
        "2024-05-01T08:00:00.Z",     /* empty fraction */
        "2024-05-01T08:00:00.12aZ",  /* junk in the fraction */
        "2024-05-01T08:00:00+0200",  /* offset without colon */
        "2024-05-01T08:00:00+02",    /* short offset */
        "2024-05-01T08:00:00+24:00", /* offset hour 24 */
        "2024-05-01T08:00:00+02:60", /* offset minute 60 */
        "2024-05-01T08:00:00ZZ",     /* two zones */
        "2024-05-01Z",               /* zone on a bare date */
        "2024-05-01T",               /* T and nothing */
        "abcd-05-01T08:00:00Z",      /* letters for digits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct barge_isotime t = {.sec = 7};
        if (parse(bad[i], &t) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(t.sec, 7); /* untouched */
    }
    /* Only len bytes are read: a time inside a longer line. */
    struct barge_isotime t;
    const char *line = "2024-05-01T08:00:00Z stdout F hello";
    assert_int_equal(barge_isotime_parse(line, 20, &t), 0);
    assert_int_equal(t.sec, 1714550400);
    assert_int_equal(barge_isotime_parse(line, 21, &t), -1);
}

static void test_format(void **state)
{
    (void)state;
    char out[BARGE_ISOTIME_MAX];
    assert_string_equal(barge_isotime_format(1714550400, 0, "Z", out), "2024-05-01T08:00:00Z");
    assert_string_equal(barge_isotime_format(1714550400.25, 3, "Z", out),
                        "2024-05-01T08:00:00.250Z");
    assert_string_equal(barge_isotime_format(1714550400.25, 3, "+0000", out),
                        "2024-05-01T08:00:00.250+0000");
    assert_string_equal(barge_isotime_format(0.5, 9, "Z", out), "1970-01-01T00:00:00.500000000Z");
    assert_string_equal(barge_isotime_format(1714550400.9999, 3, NULL, out),
                        "2024-05-01T08:00:00.999");
    /* More than nine digits is nine. */
    assert_string_equal(barge_isotime_format(0.5, 12, "Z", out), "1970-01-01T00:00:00.500000000Z");

    /* What is written reads back. */
    struct barge_isotime t;
    barge_isotime_format(1714550400.5, 3, "Z", out);
    assert_int_equal(barge_isotime_parse(out, strlen(out), &t), 0);
    assert_true(barge_isotime_epoch(&t) == 1714550400.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zones),    cmocka_unit_test(test_fractions),
        cmocka_unit_test(test_calendar), cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
