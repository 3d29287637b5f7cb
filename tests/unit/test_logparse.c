/* The awslogs driver's parsing: conmon's k8s-file records and their
 * timestamps, partial records joined into lines, multi-line grouping by
 * awslogs-multiline-pattern and awslogs-datetime-format, long lines split
 * with strictly increasing offsets, UTF-8 repair and Docker sizes. */
/* cmocka.h needs the standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "agent/logparse.h"
#include "agent/logship.h"

static void test_rfc3339(void **state)
{
    int64_t ms;
    const char *t = "2024-05-01T10:00:00.123456789+02:00";
    assert_int_equal(barge_logparse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1714550400123LL);
    t = "2024-05-01T08:00:00Z";
    assert_int_equal(barge_logparse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1714550400000LL);
    t = "2024-05-01T07:30:00.5-00:30";
    assert_int_equal(barge_logparse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1714550400500LL);
    const char *bad[] = {"2024-05-01 08:00:00Z",     "2024-05-01T08:00:00",
                         "2024-13-01T08:00:00Z",     "2024-05-01T08:00:00.Z",
                         "2024-05-01T08:00:00+0200", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(barge_logparse_rfc3339(bad[i], strlen(bad[i]), &ms), -1);
}

static void test_k8s_records(void **state)
{
    struct barge_logparse_record r;
    const char *l = "2024-05-01T08:00:00.000000001Z stdout F hello world";
    assert_int_equal(barge_logparse_k8s_record(l, strlen(l), &r), 0);
    assert_false(r.is_stderr);
    assert_false(r.partial);
    assert_int_equal(r.timestamp, 1714550400000LL);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.text, "hello world", 11);

    l = "2024-05-01T10:00:00.250000000+02:00 stderr P part";
    assert_int_equal(barge_logparse_k8s_record(l, strlen(l), &r), 0);
    assert_true(r.is_stderr);
    assert_true(r.partial);
    assert_int_equal(r.timestamp, 1714550400250LL);

    /* An empty line: the text after the tag is empty, with or without its space. */
    l = "2024-05-01T08:00:00Z stdout F ";
    assert_int_equal(barge_logparse_k8s_record(l, strlen(l), &r), 0);
    assert_int_equal(r.len, 0);
    l = "2024-05-01T08:00:00Z stdout F";
    assert_int_equal(barge_logparse_k8s_record(l, strlen(l), &r), 0);
    assert_int_equal(r.len, 0);
    /* Tags can carry more after a ':'. */
    l = "2024-05-01T08:00:00Z stdout F:x  two spaces";
    assert_int_equal(barge_logparse_k8s_record(l, strlen(l), &r), 0);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.text, " two spaces", 11);

    const char *bad[] = {"hello", "2024-05-01T08:00:00Z stdin F x",
                         "2024-05-01T08:00:00Z stdout X x", "2024-05-01T08:00:00Z stdout",
                         "not-a-time stdout F x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(barge_logparse_k8s_record(bad[i], strlen(bad[i]), &r), -1);
}

/* Feeds "F"/"P"-prefixed texts as records of a fake file whose offsets
 * advance by 40 bytes a record; returns the events. */
static void feed(struct barge_logparse_assembler *a, const char *const *recs,
                 struct barge_logparse_events *out)
{
    uint64_t off = 0;
    for (size_t i = 0; recs[i]; i++) {
        struct barge_logparse_record r = {.timestamp = 1000 + (int64_t)i,
                                          .partial = recs[i][0] == 'P',
                                          .text = recs[i] + 1,
                                          .len = strlen(recs[i] + 1)};
        barge_logparse_assembler_feed(a, &r, off, off + 40, out);
        off += 40;
    }
}

static void assert_event(const struct barge_logparse_events *evs, size_t i, const char *msg,
                         int64_t ts, uint64_t offset)
{
    if (i >= evs->n)
        fail_msg("no event %zu (%zu events)", i, evs->n);
    assert_string_equal(evs->v[i].message, msg);
    assert_int_equal(evs->v[i].len, strlen(msg));
    assert_int_equal(evs->v[i].timestamp, ts);
    assert_int_equal(evs->v[i].offset, offset);
}

static void test_lines_and_partials(void **state)
{
    struct barge_logparse_assembler *a = barge_logparse_assembler_new(NULL, 0);
    struct barge_logparse_events evs = {0};
    feed(a, (const char *const[]){"Fone", "Pt", "Pw", "Fo", "F", "Fthree", "Plast", NULL}, &evs);
    assert_int_equal(evs.n, 3);
    assert_event(&evs, 0, "one", 1000, 40);
    assert_event(&evs, 1, "two", 1001, 160); /* the first record's time, the last's end */
    assert_int_equal(evs.v[1].resume, 160);
    assert_event(&evs, 2, "three", 1005, 240);
    /* The unfinished line waits; a flush ends it. */
    assert_true(barge_logparse_assembler_pending(a));
    barge_logparse_assembler_flush(a, &evs);
    assert_event(&evs, 3, "last", 1006, 280);
    assert_false(barge_logparse_assembler_pending(a));
    barge_logparse_events_shift(&evs, 2);
    assert_int_equal(evs.n, 2);
    assert_string_equal(evs.v[0].message, "three");
    barge_logparse_events_clear(&evs);
    barge_logparse_assembler_free(a);
}

static void test_multiline_pattern(void **state)
{
    regex_t re;
    struct barge_error *err = NULL;
    assert_int_equal(barge_logparse_compile(NULL, "^\\d{4}-\\d{2}", &re, &err), 0);
    struct barge_logparse_assembler *a = barge_logparse_assembler_new(&re, 0);
    struct barge_logparse_events evs = {0};
    feed(a,
         (const char *const[]){"Fstray first", "F2024-05 boom", "F  at a()", "F  at b()",
                               "F2024-05 fine", "F", "Ftail", NULL},
         &evs);
    assert_int_equal(evs.n, 2);
    /* A first line that does not match starts an event all the same. */
    assert_event(&evs, 0, "stray first", 1000, 40);
    assert_event(&evs, 1, "2024-05 boom\n  at a()\n  at b()", 1001, 160);
    assert_int_equal(evs.v[1].resume, 160);
    assert_true(barge_logparse_assembler_pending(a));
    barge_logparse_assembler_flush(a, &evs);
    assert_event(&evs, 2, "2024-05 fine\n\ntail", 1004, 280);
    barge_logparse_events_clear(&evs);
    barge_logparse_assembler_free(a);
    regfree(&re);
}

static void test_datetime_format(void **state)
{
    struct barge_error *err = NULL;
    char *re = barge_logparse_datetime_regex("[%Y-%m-%d %H:%M:%S%L] %p %%", &err);
    assert_non_null(re);
    assert_string_equal(re, "^[[][0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) "
                            "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9][.][0-9]{3}\\] [AP]M %");
    free(re);
    assert_null(barge_logparse_datetime_regex("%Q", &err));
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    barge_error_free(err);
    err = NULL;

    regex_t rx;
    assert_int_equal(barge_logparse_compile("%b %d, %Y", NULL, &rx, &err), 0);
    struct barge_logparse_assembler *a = barge_logparse_assembler_new(&rx, 0);
    struct barge_logparse_events evs = {0};
    feed(a,
         (const char *const[]){"FMay 01, 2024 started", "Fdetail", "FJune 02, 2024 next",
                               "FMay 32, 2024 is not a date", NULL},
         &evs);
    barge_logparse_assembler_flush(a, &evs);
    assert_int_equal(evs.n, 2);
    assert_string_equal(evs.v[0].message, "May 01, 2024 started\ndetail");
    assert_string_equal(evs.v[1].message, "June 02, 2024 next\nMay 32, 2024 is not a date");
    barge_logparse_events_clear(&evs);
    barge_logparse_assembler_free(a);
    regfree(&rx);

    assert_int_equal(barge_logparse_compile(NULL, "(unclosed", &rx, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    barge_error_free(err);
}

static void test_regex_translate(void **state)
{
    char *s = barge_logparse_regex_translate("^(?:\\d+|\\w)\\s[\\d.]\\S\\.x[^\\s]");
    assert_string_equal(s, "^([0-9]+|[[:alnum:]_])[[:space:]][0-9.][^[:space:]]\\.x[^[:space:]]");
    free(s);
    s = barge_logparse_regex_translate("[]a] [^]b]");
    assert_string_equal(s, "[]a] [^]b]");
    free(s);
}

static void test_long_lines_split(void **state)
{
    /* max 10 bytes an event: a 25-byte line becomes 3 events. */
    struct barge_logparse_assembler *a = barge_logparse_assembler_new(NULL, 10);
    struct barge_logparse_events evs = {0};
    feed(a, (const char *const[]){"Fbefore", "Fabcdefghijklmnopqrstuvwxy", "Fafter", NULL}, &evs);
    assert_int_equal(evs.n, 5);
    assert_event(&evs, 1, "abcdefghij", 1001, 41);
    assert_event(&evs, 2, "klmnopqrst", 1001, 42);
    assert_event(&evs, 3, "uvwxy", 1001, 80);
    for (size_t i = 1; i < evs.n; i++)
        assert_true(evs.v[i].offset > evs.v[i - 1].offset);
    /* The leading pieces resume at the line's start, the last past its end. */
    assert_int_equal(evs.v[1].resume, 40);
    assert_int_equal(evs.v[3].resume, 80);
    barge_logparse_events_clear(&evs);
    /* A multi-byte character is never cut. */
    feed(a, (const char *const[]){"F123456789\xc3\xa9zz", NULL}, &evs);
    assert_int_equal(evs.n, 2);
    assert_string_equal(evs.v[0].message, "123456789");
    assert_string_equal(evs.v[1].message, "\xc3\xa9zz");
    barge_logparse_events_clear(&evs);
    /* A line that never ends is cut once it is an event's worth. */
    feed(a, (const char *const[]){"P123456", "P789012", "Fend", NULL}, &evs);
    assert_int_equal(evs.n, 3);
    assert_string_equal(evs.v[0].message, "1234567890");
    assert_int_equal(evs.v[0].resume, 0);
    assert_string_equal(evs.v[1].message, "12");
    assert_int_equal(evs.v[1].resume, 80); /* cut at a record boundary */
    assert_string_equal(evs.v[2].message, "end");
    barge_logparse_events_clear(&evs);
    barge_logparse_assembler_free(a);
}

static void test_utf8_clean(void **state)
{
    size_t n;
    char *s =
        barge_logparse_utf8_clean("ok \xc3\xa9 \xff bad \xed\xa0\x80 \xf0\x9f\x98\x80", 20, &n);
    assert_string_equal(s, "ok \xc3\xa9 \xef\xbf\xbd bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                           "\xf0\x9f\x98\x80");
    assert_int_equal(n, strlen(s));
    free(s);
    s = barge_logparse_utf8_clean("cut \xe2\x82", 6, &n);
    assert_string_equal(s, "cut \xef\xbf\xbd\xef\xbf\xbd");
    free(s);
}

static void test_sizes(void **state)
{
    assert_int_equal(barge_logship_parse_size("1048576"), 1048576);
    assert_int_equal(barge_logship_parse_size("1m"), 1048576);
    assert_int_equal(barge_logship_parse_size("4M"), 4 * 1048576);
    assert_int_equal(barge_logship_parse_size("512k"), 512 * 1024);
    assert_int_equal(barge_logship_parse_size("64KiB"), 64 * 1024);
    assert_int_equal(barge_logship_parse_size("2kb"), 2048);
    assert_int_equal(barge_logship_parse_size("1g"), 1024LL * 1024 * 1024);
    assert_int_equal(barge_logship_parse_size("0.5m"), 524288);
    assert_int_equal(barge_logship_parse_size(""), -1);
    assert_int_equal(barge_logship_parse_size("lots"), -1);
    assert_int_equal(barge_logship_parse_size("5x"), -1);
    assert_int_equal(barge_logship_parse_size("-1m"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_k8s_records),
        cmocka_unit_test(test_lines_and_partials),
        cmocka_unit_test(test_multiline_pattern),
        cmocka_unit_test(test_datetime_format),
        cmocka_unit_test(test_regex_translate),
        cmocka_unit_test(test_long_lines_split),
        cmocka_unit_test(test_utf8_clean),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
