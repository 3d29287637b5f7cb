/* Unit tests of pid locks (common/pidlock.h): the holder is named, a second
 * taker is refused, and the lock goes with the holder's descriptor. */
#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs these three before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "common/pidlock.h"
#include "common/util.h"

static void test_pidlock(void **state)
{
    char dir[] = "/tmp/barge-pidlock-XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *path = barge_xasprintf("%s/agent.lock", dir);

    assert_int_equal(barge_pidlock_holder(path), 0); /* no file yet */
    pid_t holder = -1;
    int fd = barge_pidlock_take(path, &holder);
    assert_true(fd >= 0);
    assert_int_equal(barge_pidlock_holder(path), getpid());

    /* another process is refused and told who holds it */
    pid_t child = fork();
    if (child == 0) {
        pid_t h = 0;
        int again = barge_pidlock_take(path, &h);
        _exit(again < 0 && errno == EWOULDBLOCK && h == getppid() ? 0 : 1);
    }
    int ws;
    assert_int_equal(waitpid(child, &ws, 0), child);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    /* closing lets go; the file left behind blocks nobody */
    close(fd);
    assert_int_equal(barge_pidlock_holder(path), 0);
    fd = barge_pidlock_take(path, &holder);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pidlock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
