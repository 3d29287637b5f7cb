/* Random identifiers: the UUID form, and a forked child never drawing the
 * random bytes its parent draws next (the per-thread pool it inherited is
 * forgotten). */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <sys/wait.h>

#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"

static void test_uuid_form(void **state)
{
    (void)state;
    char a[37], b[37];
    barge_id_uuid(a);
    barge_id_uuid(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_true(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
    }
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
}

static void test_draws_differ(void **state)
{
    (void)state;
    unsigned char x[16], y[16], big[100], big2[100];
    barge_random_bytes(x, sizeof(x));
    barge_random_bytes(y, sizeof(y));
    assert_memory_not_equal(x, y, sizeof(x));
    barge_random_bytes(big, sizeof(big));
    barge_random_bytes(big2, sizeof(big2));
    assert_memory_not_equal(big, big2, sizeof(big));
}

static void test_forked_child_draws_its_own(void **state)
{
    (void)state;
    unsigned char first[16], parent[16], child[16];
    barge_random_bytes(first, sizeof(first)); /* the pool now holds more */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        barge_random_bytes(child, sizeof(child));
        _exit(write(fds[1], child, sizeof(child)) == (ssize_t)sizeof(child) ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], child, sizeof(child)), sizeof(child));
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    barge_random_bytes(parent, sizeof(parent));
    assert_memory_not_equal(parent, child, sizeof(parent));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_form),
        cmocka_unit_test(test_draws_differ),
        cmocka_unit_test(test_forked_child_draws_its_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
