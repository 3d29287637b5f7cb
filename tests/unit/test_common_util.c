/* The shared helpers of common/util.h: the growable buffer that every module
 * builds strings and byte streams in. */
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "common/util.h"

static void test_buf_text(void **state)
{
    (void)state;
    struct barge_buf b = {0};
    barge_buf_adds(&b, "ab");
    barge_buf_addc(&b, 'c');
    barge_buf_addf(&b, "-%d-%s", 42, "x");
    barge_buf_addn(&b, "yz!", 2);
    assert_string_equal(b.data, "abc-42-xyz");
    assert_int_equal(b.len, 10);
    size_t len = 0;
    char *s = barge_buf_steal(&b, &len);
    assert_string_equal(s, "abc-42-xyz");
    assert_int_equal(len, 10);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_buf_empty(void **state)
{
    (void)state;
    struct barge_buf b = {0};
    size_t len = 99;
    char *s = barge_buf_steal(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);

    /* Adding nothing still leaves a NUL-terminated string. */
    barge_buf_addn(&b, "", 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    barge_buf_release(&b);
    assert_null(b.data);
}

static void test_buf_binary_and_growth(void **state)
{
    (void)state;
    struct barge_buf b = {0};
    for (int i = 0; i < 10000; i++) {
        unsigned char byte = (unsigned char)i;
        barge_buf_addn(&b, &byte, 1);
    }
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    for (int i = 0; i < 10000; i++)
        assert_int_equal((unsigned char)b.data[i], (unsigned char)i);
    assert_int_equal(b.data[b.len], '\0');

    /* A long formatted piece is not cut at some fixed size. */
    char big[1000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    b.len = 0;
    barge_buf_addf(&b, "<%s>", big);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[b.len - 1], '>');
    barge_buf_release(&b);
}

static void test_buf_after_steal_of_data(void **state)
{
    (void)state;
    /* barge_steal(&b.data) hands the bytes on and leaves len/cap behind; the
     * buffer must start afresh rather than write through a NULL pointer. */
    struct barge_buf b = {0};
    barge_buf_adds(&b, "first");
    char *first = barge_steal(&b.data);
    barge_buf_adds(&b, "second");
    assert_string_equal(b.data, "second");
    assert_int_equal(b.len, 6);
    assert_string_equal(first, "first");
    free(first);
    barge_buf_release(&b);
}

static void test_strlcpy_cuts_and_terminates(void **state)
{
    (void)state;
    char dst[6];
    memset(dst, 'x', sizeof(dst));
    assert_int_equal(barge_strlcpy(dst, "us-east-1", sizeof(dst)), 9);
    assert_string_equal(dst, "us-ea");
    assert_int_equal(barge_strlcpy(dst, "eu", sizeof(dst)), 2);
    assert_string_equal(dst, "eu");
    assert_int_equal(barge_strlcpy(dst, NULL, sizeof(dst)), 0);
    assert_string_equal(dst, "");
    dst[0] = 'x';
    assert_int_equal(barge_strlcpy(dst, "abc", 0), 3);
    assert_int_equal(dst[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_text),
        cmocka_unit_test(test_buf_empty),
        cmocka_unit_test(test_buf_binary_and_growth),
        cmocka_unit_test(test_buf_after_steal_of_data),
        cmocka_unit_test(test_strlcpy_cuts_and_terminates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
