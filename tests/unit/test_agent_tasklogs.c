/* Task logs read on demand: slices of conmon's k8s-file log turned into
 * events, with whole lines only, partial records joined, unfinished lines
 * left for the next read, --since filtering and bytes that are not UTF-8
 * repaired. */
/* cmocka.h needs the standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include <jansson.h>

#include "agent/tasklogs.h"

#define T0 "2024-05-01T08:00:00Z"
#define T1 "2024-05-01T08:00:01.5Z"

static const char *msg(json_t *events, size_t i)
{
    return json_string_value(json_object_get(json_array_get(events, i), "message"));
}

static const char *stream(json_t *events, size_t i)
{
    return json_string_value(json_object_get(json_array_get(events, i), "stream"));
}

static void test_whole_lines(void **state)
{
    const char *buf = T0 " stdout F hello\n" T1 " stderr F oops\n" T1 " stdout F \n";
    json_t *ev = json_array();
    size_t used = barge_tasklogs_parse(buf, strlen(buf), false, 0, ev);
    assert_int_equal(used, strlen(buf));
    assert_int_equal(json_array_size(ev), 3);
    assert_string_equal(msg(ev, 0), "hello");
    assert_string_equal(stream(ev, 0), "stdout");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, 0), "timestamp")),
                     1714550400000LL);
    assert_string_equal(msg(ev, 1), "oops");
    assert_string_equal(stream(ev, 1), "stderr");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, 1), "timestamp")),
                     1714550401500LL);
    /* An empty line is output too. */
    assert_string_equal(msg(ev, 2), "");
    json_decref(ev);
}

static void test_unfinished_line_waits(void **state)
{
    const char *done = T0 " stdout F one\n";
    char buf[256];
    snprintf(buf, sizeof(buf), "%s%s", done, T0 " stdout F tw");
    json_t *ev = json_array();
    assert_int_equal(barge_tasklogs_parse(buf, strlen(buf), false, 0, ev), strlen(done));
    assert_int_equal(json_array_size(ev), 1);
    json_array_clear(ev);
    /* Nothing complete at all: nothing consumed, unless the read was full. */
    const char *part = T0 " stdout F tw";
    assert_int_equal(barge_tasklogs_parse(part, strlen(part), false, 0, ev), 0);
    assert_int_equal(json_array_size(ev), 0);
    assert_int_equal(barge_tasklogs_parse(part, strlen(part), true, 0, ev), strlen(part));
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(msg(ev, 0), "tw");
    json_decref(ev);
}

static void test_partial_records(void **state)
{
    const char *line = T0 " stdout P abc\n" T0 " stdout P def\n" T1 " stdout F ghi\n";
    json_t *ev = json_array();
    assert_int_equal(barge_tasklogs_parse(line, strlen(line), false, 0, ev), strlen(line));
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(msg(ev, 0), "abcdefghi");
    json_array_clear(ev);
    /* The line's end is not read yet: wait for it after what came before. */
    const char *head = T0 " stdout F first\n";
    char buf[256];
    snprintf(buf, sizeof(buf), "%s%s", head, T0 " stdout P abc\n");
    assert_int_equal(barge_tasklogs_parse(buf, strlen(buf), false, 0, ev), strlen(head));
    assert_int_equal(json_array_size(ev), 1);
    json_array_clear(ev);
    /* ...unless the read holds nothing else: then it goes out as it is. */
    const char *only = T0 " stdout P abc\n";
    assert_int_equal(barge_tasklogs_parse(only, strlen(only), false, 0, ev), strlen(only));
    assert_string_equal(msg(ev, 0), "abc");
    json_decref(ev);
}

static void test_since_and_garbage(void **state)
{
    const char *buf = T0 " stdout F old\nnot a record\n" T1 " stdout F new\n";
    json_t *ev = json_array();
    assert_int_equal(barge_tasklogs_parse(buf, strlen(buf), false, 1714550401000LL, ev),
                     strlen(buf));
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(msg(ev, 0), "new");
    json_decref(ev);
}

static void test_utf8_repaired(void **state)
{
    const char *buf = T0 " stdout F a\xff"
                         "b\n";
    json_t *ev = json_array();
    assert_int_equal(barge_tasklogs_parse(buf, strlen(buf), false, 0, ev), strlen(buf));
    assert_string_equal(msg(ev, 0), "a\xef\xbf\xbd"
                                    "b");
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_lines),     cmocka_unit_test(test_unfinished_line_waits),
        cmocka_unit_test(test_partial_records), cmocka_unit_test(test_since_and_garbage),
        cmocka_unit_test(test_utf8_repaired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
