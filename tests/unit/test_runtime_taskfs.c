/* Task storage of a fixed size (runtime/taskfs.c) on real loop devices: its
 * size is what statvfs shows and a hard limit on writes; removal leaves no
 * mount, loop device or file; a failed setup leaves nothing either; a leftover
 * of an unfinished setup is replaced; reconcile keeps only known tasks'
 * storage. Needs root, /dev/loop-control and mkfs.ext4; skips (saying why)
 * otherwise. Small sizes keep it quick. */
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "common/log.h"
#include "runtime/runtime.h"

#define MiB (1024ULL * 1024ULL)

static struct {
    bool ok;
    char dir[64];
} T;

static int group_setup(void **state)
{
    (void)state;
    barge_log_setup("test_runtime_taskfs", "warn", "text");
    if (geteuid() != 0) {
        fprintf(stderr, "test_runtime_taskfs: skipping, loop devices need root\n");
        return 0;
    }
    if (access("/dev/loop-control", R_OK | W_OK) < 0) {
        fprintf(stderr, "test_runtime_taskfs: skipping, no /dev/loop-control\n");
        return 0;
    }
    if (access("/usr/sbin/mkfs.ext4", X_OK) < 0 && access("/sbin/mkfs.ext4", X_OK) < 0) {
        fprintf(stderr, "test_runtime_taskfs: skipping, mkfs.ext4 (e2fsprogs) is missing\n");
        return 0;
    }
    snprintf(T.dir, sizeof(T.dir), "/tmp/barge-taskfs-XXXXXX");
    if (!mkdtemp(T.dir))
        return -1;
    T.ok = true;
    return 0;
}

static bool mounted(const char *path)
{
    FILE *f = fopen("/proc/mounts", "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    size_t n = strlen(path);
    while (!found && fgets(line, sizeof(line), f)) {
        char *p = strchr(line, ' ');
        found = p && strncmp(p + 1, path, n) == 0 && p[1 + n] == ' ';
    }
    fclose(f);
    return found;
}

/* Whether a loop device is backed by this file. */
static bool loop_backed_by(const char *file)
{
    DIR *d = opendir("/sys/block");
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (strncmp(de->d_name, "loop", 4) != 0)
            continue;
        _cleanup_free_ char *p = barge_xasprintf("/sys/block/%s/loop/backing_file", de->d_name);
        _cleanup_free_ char *text = barge_read_file(p, NULL);
        found = text && strncmp(text, file, strlen(file)) == 0 && text[strlen(file)] == '\n';
    }
    closedir(d);
    return found;
}

static void assert_gone(const char *task_id)
{
    _cleanup_free_ char *mnt = barge_runtime_taskfs_path(T.dir, task_id);
    _cleanup_free_ char *img = barge_xasprintf("%s.img", mnt);
    assert_false(mounted(mnt));
    assert_false(loop_backed_by(img));
    assert_int_equal(access(mnt, F_OK), -1);
    assert_int_equal(access(img, F_OK), -1);
}

static int test_teardown(void **state)
{
    (void)state;
    if (!T.ok)
        return 0;
    const char *ids[] = {"quota", "known", "unknown", "tiny"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(ids); i++) {
        struct barge_error *err = NULL;
        if (barge_runtime_taskfs_remove(T.dir, ids[i], &err) < 0) {
            fprintf(stderr, "cleanup of '%s': %s\n", ids[i], err->message);
            barge_error_free(err);
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    test_teardown(state);
    if (T.ok)
        rmdir(T.dir);
    return 0;
}

#define REQUIRE_OK() \
    do {             \
        if (!T.ok)   \
            skip();  \
    } while (0)

static void test_size_is_a_hard_limit(void **state)
{
    (void)state;
    REQUIRE_OK();
    struct barge_error *err = NULL;
    char *mnt = NULL;
    assert_int_equal(barge_runtime_taskfs_create(T.dir, "quota", 64 * MiB, &mnt, &err), 0);
    assert_true(mounted(mnt));
    _cleanup_free_ char *img = barge_xasprintf("%s.img", mnt);
    assert_true(loop_backed_by(img));
    struct statvfs sv;
    assert_int_equal(statvfs(mnt, &sv), 0);
    uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
    assert_true(total <= 64 * MiB);
    assert_true(total > 56 * MiB);
    /* Writing past the size fails with ENOSPC. */
    _cleanup_free_ char *path = barge_xasprintf("%s/filler", mnt);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static char chunk[1 << 20];
    memset(chunk, 'x', sizeof(chunk));
    int werr = 0;
    for (int i = 0; i < 80 && !werr; i++)
        if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
            werr = errno;
    close(fd);
    assert_int_equal(werr, ENOSPC);
    assert_int_equal(barge_runtime_taskfs_remove(T.dir, "quota", &err), 0);
    assert_gone("quota");
    /* Removing what is gone is no error. */
    assert_int_equal(barge_runtime_taskfs_remove(T.dir, "quota", &err), 0);
    free(mnt);
}

static void test_failed_setup_leaves_nothing(void **state)
{
    (void)state;
    REQUIRE_OK();
    struct barge_error *err = NULL;
    char *mnt = NULL;
    /* Too small for mkfs.ext4. */
    assert_int_equal(barge_runtime_taskfs_create(T.dir, "tiny", 4096, &mnt, &err), -1);
    assert_non_null(err);
    assert_null(mnt);
    barge_error_free(err);
    assert_gone("tiny");
}

static void test_leftover_is_replaced(void **state)
{
    (void)state;
    REQUIRE_OK();
    struct barge_error *err = NULL;
    char *a = NULL, *b = NULL;
    assert_int_equal(barge_runtime_taskfs_create(T.dir, "quota", 16 * MiB, &a, &err), 0);
    _cleanup_free_ char *marker = barge_xasprintf("%s/old", a);
    assert_int_equal(barge_write_file_atomic(marker, "x", 1, 0600), 0);
    assert_int_equal(barge_runtime_taskfs_create(T.dir, "quota", 32 * MiB, &b, &err), 0);
    assert_string_equal(a, b);
    assert_int_equal(access(marker, F_OK), -1);
    struct statvfs sv;
    assert_int_equal(statvfs(b, &sv), 0);
    assert_true((uint64_t)sv.f_blocks * sv.f_frsize > 16 * MiB);
    free(a);
    free(b);
}

static bool only_known(const char *task_id, void *ud)
{
    return strcmp(task_id, ud) == 0;
}

static void test_reconcile_keeps_known_tasks(void **state)
{
    (void)state;
    REQUIRE_OK();
    struct barge_error *err = NULL;
    char *known = NULL, *unknown = NULL;
    assert_int_equal(barge_runtime_taskfs_create(T.dir, "known", 16 * MiB, &known, &err), 0);
    assert_int_equal(barge_runtime_taskfs_create(T.dir, "unknown", 16 * MiB, &unknown, &err), 0);
    barge_runtime_taskfs_reconcile(T.dir, only_known, "known");
    assert_true(mounted(known));
    assert_gone("unknown");
    free(known);
    free(unknown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_size_is_a_hard_limit, test_teardown),
        cmocka_unit_test_teardown(test_failed_setup_leaves_nothing, test_teardown),
        cmocka_unit_test_teardown(test_leftover_is_replaced, test_teardown),
        cmocka_unit_test_teardown(test_reconcile_keeps_known_tasks, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
