/* Real containers through conmon and crun/runc, from a rootfs made of the
 * static busybox: output and exit codes, stop with SIGTERM and with SIGKILL
 * after the timeout, OOM kills, exec, an overlay rootfs with a non-root user
 * and a read-only root, and containers that outlive the process that started
 * them and are adopted by a new runtime object. Needs root, busybox-static,
 * conmon and a working runtime; skips (saying why) otherwise. Everything it
 * makes (containers, mounts, cgroups, files) is removed in the teardowns, also
 * after a failed assertion. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "common/ids.h"
#include "common/log.h"
#include "runtime/runtime.h"

#define WAIT_MS 30000

static struct {
    bool ok;
    char tmp[64];
    char rootfs[128];
    char layer2[128];
    char state[128];
    char cgparent[64];
    struct barge_runtime *rt;
} T;

static int sh(const char *fmt, ...) BARGE_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *cmd = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void remove_all_containers(struct barge_runtime *rt)
{
    struct barge_runtime_info *infos = NULL;
    size_t n = 0;
    struct barge_error *err = NULL;
    if (barge_runtime_list(rt, &infos, &n, &err) < 0) {
        barge_error_free(err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        err = NULL;
        if (barge_runtime_delete(rt, infos[i].id, true, &err) < 0) {
            fprintf(stderr, "cleanup of '%s': %s\n", infos[i].id, err->message);
            barge_error_free(err);
        }
    }
    barge_runtime_info_free(infos, n);
}

static int group_setup(void **state)
{
    (void)state;
    barge_log_setup("test_runtime_run", "warn", "text");
    if (geteuid() != 0) {
        fprintf(stderr, "test_runtime_run: skipping, running containers needs root\n");
        return 0;
    }
    if (access("/bin/busybox", X_OK) < 0) {
        fprintf(stderr, "test_runtime_run: skipping, /bin/busybox (busybox-static) is missing\n");
        return 0;
    }
    snprintf(T.tmp, sizeof(T.tmp), "/tmp/barge-rt-run-XXXXXX");
    if (!mkdtemp(T.tmp))
        return -1;
    snprintf(T.rootfs, sizeof(T.rootfs), "%s/rootfs", T.tmp);
    snprintf(T.layer2, sizeof(T.layer2), "%s/layer2", T.tmp);
    snprintf(T.state, sizeof(T.state), "%s/state", T.tmp);
    snprintf(T.cgparent, sizeof(T.cgparent), "/barge-test-%d", (int)getpid());
    if (sh("set -e; mkdir -p %s/bin %s/etc %s/tmp; cp /bin/busybox %s/bin/;"
           "for a in sh echo sleep head tail cat id touch true; do ln -s busybox %s/bin/$a; done;"
           "printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000::/home/app:/bin/sh\\n'"
           " > %s/etc/passwd; printf 'root:x:0:\\napp:x:1000:\\n' > %s/etc/group;"
           "chmod 1777 %s/tmp; mkdir -p %s/data; echo 'from layer2' > %s/data/msg",
           T.rootfs, T.rootfs, T.rootfs, T.rootfs, T.rootfs, T.rootfs, T.rootfs, T.rootfs, T.layer2,
           T.layer2) != 0)
        return -1;
    /* BARGE_TEST_RUNTIME=crun|runc runs the suite on that runtime only (crun
     * refuses hybrid cgroups; under `unshare -m` with the cgroup2 mount
     * unmounted it sees plain v1 and works). */
    struct barge_runtime_options o = {
        .state_dir = T.state, .cgroup_parent = T.cgparent, .force = getenv("BARGE_TEST_RUNTIME")};
    struct barge_error *err = NULL;
    if (barge_runtime_detect(&o, &T.rt, &err) < 0) {
        fprintf(stderr, "test_runtime_run: skipping, no usable runtime: %s\n", err->message);
        barge_error_free(err);
        sh("rm -rf --one-file-system %s", T.tmp);
        return 0;
    }
    T.ok = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (!T.ok)
        return 0;
    remove_all_containers(T.rt);
    struct barge_error *err = NULL;
    if (barge_runtime_cgroup_remove(T.rt, T.cgparent, &err) < 0) {
        fprintf(stderr, "cleanup of cgroup '%s': %s\n", T.cgparent, err->message);
        barge_error_free(err);
    }
    barge_runtime_free(T.rt);
    T.rt = NULL;
    return sh("rm -rf --one-file-system %s", T.tmp) == 0 ? 0 : -1;
}

static int test_teardown(void **state)
{
    (void)state;
    if (T.ok)
        remove_all_containers(T.rt);
    return 0;
}

#define NEED_RUNTIME() \
    do {               \
        if (!T.ok)     \
            skip();    \
    } while (0)

static struct barge_runtime_spec sh_spec(const char *id, const char *const *argv)
{
    struct barge_runtime_spec s = {.id = id, .rootfs = T.rootfs, .argv = argv};
    return s;
}

static void run_ok(const struct barge_runtime_spec *s)
{
    struct barge_error *err = NULL;
    if (barge_runtime_run(T.rt, s, &err) < 0)
        fail_msg("run '%s': %s", s->id, err->message);
}

static struct barge_runtime_state wait_exited(struct barge_runtime *rt, const char *id)
{
    struct barge_runtime_state st;
    struct barge_error *err = NULL;
    if (barge_runtime_wait(rt, id, WAIT_MS, &st, &err) < 0)
        fail_msg("wait '%s': %s", id, err->message);
    assert_int_equal(st.status, BARGE_RUNTIME_EXITED);
    return st;
}

static struct barge_runtime_state state_of(struct barge_runtime *rt, const char *id)
{
    struct barge_runtime_state st;
    struct barge_error *err = NULL;
    if (barge_runtime_state(rt, id, &st, &err) < 0)
        fail_msg("state '%s': %s", id, err->message);
    return st;
}

static char *read_log(const char *id)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/containers/%s/ctr.log", T.state, id);
    char *s = barge_read_file(p, NULL);
    if (!s)
        fail_msg("no log at '%s'", p);
    return s;
}

/* k8s-file lines: "<RFC 3339 time> <stream> F <text>". */
static void assert_log_line(const char *log, const char *stream, const char *text)
{
    _cleanup_free_ char *needle = barge_xasprintf(" %s F %s\n", stream, text);
    const char *hit = strstr(log, needle);
    if (!hit)
        fail_msg("log lacks '%s %s':\n%s", stream, text, log);
    const char *line = hit;
    while (line > log && line[-1] != '\n')
        line--;
    assert_true(line[0] == '2' && line[4] == '-' && line[10] == 'T');
}

static void test_echo_and_logs(void **state)
{
    (void)state;
    NEED_RUNTIME();
    struct barge_runtime_spec s = sh_spec(
        "echo", (const char *[]){"/bin/sh", "-c", "echo hello; echo oops >&2; echo world", NULL});
    run_ok(&s);
    struct barge_runtime_state st = wait_exited(T.rt, "echo");
    assert_int_equal(st.exit_code, 0);
    assert_false(st.oom_killed);
    assert_true(st.finished_at > 0 && st.started_at >= st.created_at && st.created_at > 0);
    _cleanup_free_ char *log = read_log("echo");
    assert_log_line(log, "stdout", "hello");
    assert_log_line(log, "stderr", "oops");
    assert_log_line(log, "stdout", "world");
    /* conmon also drops the code in the shared exit directory. */
    _cleanup_free_ char *exit_file = barge_xasprintf("%s/echo", barge_runtime_exit_dir(T.rt));
    _cleanup_free_ char *code = barge_read_file(exit_file, NULL);
    assert_non_null(code);
    assert_string_equal(code, "0");
    struct barge_error *err = NULL;
    assert_int_equal(barge_runtime_delete(T.rt, "echo", false, &err), 0);
    assert_int_equal(access(exit_file, F_OK), -1);
    assert_int_equal(barge_runtime_state(T.rt, "echo", &st, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_NOT_FOUND);
    barge_error_free(err);
}

static void test_exit_code(void **state)
{
    (void)state;
    NEED_RUNTIME();
    struct barge_runtime_spec s =
        sh_spec("exit3", (const char *[]){"/bin/sh", "-c", "exit 3", NULL});
    run_ok(&s);
    struct barge_runtime_state st = wait_exited(T.rt, "exit3");
    assert_int_equal(st.exit_code, 3);
    assert_false(st.oom_killed);
    /* Signalling an exited container is a conflict, not a silent success. */
    struct barge_error *err = NULL;
    assert_int_equal(barge_runtime_kill(T.rt, "exit3", SIGTERM, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_CONFLICT);
    barge_error_free(err);
}

static void test_stop_sigterm(void **state)
{
    (void)state;
    NEED_RUNTIME();
    /* PID 1 gets no default signal actions, so the shell handles TERM itself;
     * `wait` (unlike a foreground sleep) is interrupted by the trap. */
    struct barge_runtime_spec s = sh_spec(
        "term", (const char *[]){"/bin/sh", "-c", "trap 'exit 143' TERM; sleep 100 & wait", NULL});
    run_ok(&s);
    struct barge_runtime_state st = state_of(T.rt, "term");
    assert_int_equal(st.status, BARGE_RUNTIME_RUNNING);
    assert_true(st.pid > 0 && kill(st.pid, 0) == 0);
    assert_true(st.conmon_pid > 0);
    struct barge_error *err = NULL;
    if (barge_runtime_stop(T.rt, "term", 0, 20000, &st, &err) < 0)
        fail_msg("stop: %s", err->message);
    assert_int_equal(st.status, BARGE_RUNTIME_EXITED);
    assert_int_equal(st.exit_code, 143); /* the trap's code: SIGKILL would give 137 */
    /* Stopping again is fine. */
    assert_int_equal(barge_runtime_stop(T.rt, "term", 0, 1000, &st, &err), 0);
}

static void test_stop_timeout_sigkill(void **state)
{
    (void)state;
    NEED_RUNTIME();
    struct barge_runtime_spec s =
        sh_spec("stubborn", (const char *[]){"/bin/sh", "-c", "trap '' TERM; sleep 100", NULL});
    run_ok(&s);
    struct barge_runtime_state st;
    struct barge_error *err = NULL;
    if (barge_runtime_stop(T.rt, "stubborn", SIGTERM, 1000, &st, &err) < 0)
        fail_msg("stop: %s", err->message);
    assert_int_equal(st.status, BARGE_RUNTIME_EXITED);
    assert_int_equal(st.exit_code, 137);
    assert_false(st.oom_killed);
}

static void test_oom(void **state)
{
    (void)state;
    NEED_RUNTIME();
    /* tail keeps the whole newline-free input as its "last line". */
    struct barge_runtime_spec s =
        sh_spec("oom", (const char *[]){"/bin/sh", "-c", "head -c 200m /dev/zero | tail", NULL});
    s.memory_limit = 32 << 20;
    run_ok(&s);
    struct barge_runtime_state st = wait_exited(T.rt, "oom");
    assert_int_equal(st.exit_code, 137);
    assert_true(st.oom_killed);
}

static void test_exec(void **state)
{
    (void)state;
    NEED_RUNTIME();
    struct barge_runtime_spec s = sh_spec(
        "exec", (const char *[]){"/bin/sh", "-c", "trap 'exit 0' TERM; sleep 100 & wait", NULL});
    s.hostname = "exec-host";
    run_ok(&s);
    struct barge_runtime_exec_result r;
    struct barge_error *err = NULL;
    if (barge_runtime_exec(
            T.rt, "exec", (const char *[]){"/bin/sh", "-c", "echo out; echo err >&2; exit 5", NULL},
            10000, &r, &err) < 0)
        fail_msg("exec: %s", err->message);
    assert_int_equal(r.exit_code, 5);
    assert_false(r.timed_out);
    assert_non_null(strstr(r.output, "out\n"));
    assert_non_null(strstr(r.output, "err\n"));
    free(r.output);

    if (barge_runtime_exec(T.rt, "exec", (const char *[]){"cat", "/etc/hostname", NULL}, 10000, &r,
                           &err) < 0)
        fail_msg("exec: %s", err->message);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output, "exec-host\n");
    free(r.output);

    /* A health check that hangs is killed at its timeout. */
    if (barge_runtime_exec(T.rt, "exec", (const char *[]){"sleep", "60", NULL}, 1000, &r, &err) < 0)
        fail_msg("exec: %s", err->message);
    assert_true(r.timed_out);
    assert_int_equal(r.exit_code, -1);
    free(r.output);

    struct barge_runtime_stats stats;
    if (barge_runtime_stats(T.rt, "exec", &stats, &err) < 0)
        fail_msg("stats: %s", err->message);
    assert_true(stats.memory_usage > 0);
    assert_true(stats.pids >= 2); /* the shell and its sleep */
    assert_true(stats.cpu_ns > 0);

    struct barge_runtime_state st;
    assert_int_equal(barge_runtime_stop(T.rt, "exec", 0, 20000, &st, &err), 0);
    assert_int_equal(st.exit_code, 0);
    /* No exec into a container that has exited. */
    assert_int_equal(
        barge_runtime_exec(T.rt, "exec", (const char *[]){"true", NULL}, 1000, &r, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_CONFLICT);
    barge_error_free(err);
}

/* Reads fd (non-blocking) until want appears or 20 s pass; what was read. */
static char *read_until(int fd, const char *want)
{
    struct barge_buf b = {0};
    int64_t deadline = barge_monotonic_ms() + 20000;
    while (!(b.data && strstr(b.data, want)) && barge_monotonic_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        char buf[512];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        barge_buf_addn(&b, buf, (size_t)n);
    }
    char *out = barge_buf_steal(&b, NULL);
    return out ? out : barge_xstrdup("");
}

/* Waits for the exit descriptor and reaps: the exit status. */
static int reap(struct barge_runtime_exec_proc *p)
{
    struct pollfd pf = {barge_runtime_exec_proc_exitfd(p), POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 20000), 1);
    return barge_runtime_exec_proc_reap(p);
}

static void test_exec_sessions(void **state)
{
    (void)state;
    NEED_RUNTIME();
    struct barge_runtime_spec s = sh_spec(
        "sess", (const char *[]){"/bin/sh", "-c", "trap 'exit 0' TERM; sleep 100 & wait", NULL});
    run_ok(&s);
    struct barge_error *err = NULL;
    /* With pipes: input in, its end ends it, output and errors apart. */
    struct barge_runtime_exec_proc *p = NULL;
    if (barge_runtime_exec_open(T.rt, "sess",
                                (const char *[]){"sh", "-c", "cat; echo e >&2; exit 4", NULL},
                                false, 0, 0, &p, &err) < 0)
        fail_msg("exec: %s", err->message);
    assert_int_equal(write(barge_runtime_exec_proc_input(p), "piped\n", 6), 6);
    barge_runtime_exec_proc_close_input(p);
    char *out = read_until(barge_runtime_exec_proc_output(p), "piped\n");
    assert_string_equal(out, "piped\n");
    free(out);
    char *errout = read_until(barge_runtime_exec_proc_errput(p), "e\n");
    assert_string_equal(errout, "e\n");
    free(errout);
    assert_int_equal(reap(p), 4);
    barge_runtime_exec_proc_free(p);

    /* On a terminal of the given size, which follows resizes; typed lines
     * come back through the container's own terminal. */
    if (barge_runtime_exec_open(T.rt, "sess", (const char *[]){"sh", NULL}, true, 30, 100, &p,
                                &err) < 0)
        fail_msg("exec: %s", err->message);
    int tty = barge_runtime_exec_proc_input(p);
    assert_int_equal(barge_runtime_exec_proc_output(p), tty);
    assert_int_equal(barge_runtime_exec_proc_errput(p), -1);
    /* Typed once the shell is ready, as a user does. */
    free(read_until(tty, "# "));
    const char *line = "stty size; echo $((6*7)) done\n";
    assert_int_equal(write(tty, line, strlen(line)), (ssize_t)strlen(line));
    /* Lines end in \r\n, and at times in \r\r\n early in a session (seen
     * with runc, whose terminal set-up races the command's first output). */
    out = read_until(tty, "42 done\r");
    char *size = strstr(out, "30 100\r");
    if (!size || !strstr(size, "\n42 done\r"))
        fail_msg("no '30 100' then '42' in %s", out);
    free(out);
    barge_runtime_exec_proc_resize(p, 40, 120);
    /* The runtime passes the size on when its SIGWINCH arrives. */
    int64_t deadline = barge_monotonic_ms() + 20000;
    bool resized = false;
    while (!resized && barge_monotonic_ms() < deadline) {
        assert_int_equal(write(tty, "stty size\n", 10), 10);
        out = read_until(tty, "\n/ # ");
        resized = strstr(out, "40 120\r") != NULL;
        free(out);
    }
    assert_true(resized);
    assert_int_equal(write(tty, "exit 3\n", 7), 7);
    assert_int_equal(reap(p), 3);
    barge_runtime_exec_proc_free(p);

    /* Freed while it runs: the command is killed. */
    if (barge_runtime_exec_open(T.rt, "sess", (const char *[]){"sleep", "300", NULL}, false, 0, 0,
                                &p, &err) < 0)
        fail_msg("exec: %s", err->message);
    barge_runtime_exec_proc_free(p);
    /* Its zombie may linger until the container's init reaps it. */
    struct barge_runtime_stats stats = {0};
    deadline = barge_monotonic_ms() + 20000;
    do {
        if (barge_runtime_stats(T.rt, "sess", &stats, &err) < 0)
            fail_msg("stats: %s", err->message);
    } while (stats.pids != 2 && barge_monotonic_ms() < deadline && usleep(100000) == 0);
    assert_int_equal(stats.pids, 2); /* the shell and its sleep 100 only */
}

static void test_survives_and_adopt(void **state)
{
    (void)state;
    NEED_RUNTIME();
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* Plays the agent: starts the container, then dies hard. */
        close(p[0]);
        struct barge_runtime_spec s = sh_spec(
            "survivor", (const char *[]){"/bin/sh", "-c",
                                         "trap 'exit 143' TERM; echo up; sleep 100 & wait", NULL});
        struct barge_error *err = NULL;
        char c = barge_runtime_run(T.rt, &s, &err) == 0 ? 'y' : 'n';
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    kill(child, SIGKILL);
    int ws;
    assert_int_equal(waitpid(child, &ws, 0), child);
    assert_int_equal(c, 'y');

    /* A new runtime object over the same state directory, as after an agent
     * restart, finds the container still running. */
    struct barge_runtime_options o = {.state_dir = T.state,
                                      .cgroup_parent = T.cgparent,
                                      .force = barge_runtime_name(T.rt),
                                      .skip_probe = true};
    struct barge_runtime *rt2 = NULL;
    struct barge_error *err = NULL;
    if (barge_runtime_detect(&o, &rt2, &err) < 0)
        fail_msg("detect: %s", err->message);
    struct barge_runtime_info *infos = NULL;
    size_t n = 0;
    assert_int_equal(barge_runtime_list(rt2, &infos, &n, &err), 0);
    struct barge_runtime_info *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(infos[i].id, "survivor") == 0)
            found = &infos[i];
    if (!found) {
        barge_runtime_info_free(infos, n);
        barge_runtime_free(rt2);
        fail_msg("'survivor' not listed");
    }
    bool running = found->state.status == BARGE_RUNTIME_RUNNING;
    pid_t pid = found->state.pid;
    bool started = found->state.started_at > 0;
    barge_runtime_info_free(infos, n);

    struct barge_runtime_exec_result r = {0};
    int exec_rc =
        barge_runtime_exec(rt2, "survivor", (const char *[]){"true", NULL}, 10000, &r, &err);
    free(r.output);
    struct barge_runtime_state st = {0};
    int stop_rc = barge_runtime_stop(rt2, "survivor", 0, 20000, &st, &err);
    _cleanup_free_ char *log = read_log("survivor");
    int del_rc = barge_runtime_delete(rt2, "survivor", false, &err);
    barge_runtime_free(rt2);
    if (err)
        fail_msg("adopted container: %s", err->message);
    assert_true(running);
    assert_true(started);
    assert_true(pid > 0);
    assert_int_equal(exec_rc, 0);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(stop_rc, 0);
    assert_int_equal(st.exit_code, 143);
    assert_int_equal(del_rc, 0);
    assert_log_line(log, "stdout", "up");
}

static bool mounted_under(const char *dir)
{
    _cleanup_free_ char *mi = barge_read_file("/proc/self/mountinfo", NULL);
    return mi && strstr(mi, dir);
}

static void test_overlay_user_readonly(void **state)
{
    (void)state;
    NEED_RUNTIME();
    struct barge_runtime_mount tmp = {
        .type = BARGE_RUNTIME_MOUNT_TMPFS, .destination = "/tmp", .size = 1 << 20};
    struct barge_runtime_spec s = {
        .id = "layered",
        .layers = (const char *[]){T.layer2, T.rootfs, NULL},
        .argv = (const char *[]){"/bin/sh", "-c",
                                 "id -u; cat /data/msg; touch /tmp/f && echo tmp-ok;"
                                 "touch /f 2>/dev/null || echo ro-ok",
                                 NULL},
        .user = "app",
        .readonly_rootfs = true,
        .mounts = &tmp,
        .n_mounts = 1,
        .pids_limit = 32,
        .cpu_shares = 256,
    };
    run_ok(&s);
    _cleanup_free_ char *dir = barge_xasprintf("%s/containers/layered", T.state);
    assert_true(mounted_under(dir));
    struct barge_runtime_state st = wait_exited(T.rt, "layered");
    assert_int_equal(st.exit_code, 0);
    _cleanup_free_ char *log = read_log("layered");
    assert_log_line(log, "stdout", "1000");
    assert_log_line(log, "stdout", "from layer2");
    assert_log_line(log, "stdout", "tmp-ok");
    assert_log_line(log, "stdout", "ro-ok");
    struct barge_error *err = NULL;
    if (barge_runtime_delete(T.rt, "layered", false, &err) < 0)
        fail_msg("delete: %s", err->message);
    assert_false(mounted_under(dir));
    assert_int_equal(access(dir, F_OK), -1);
    /* The layers are untouched. */
    _cleanup_free_ char *msg_path = barge_xasprintf("%s/data/msg", T.layer2);
    assert_int_equal(access(msg_path, F_OK), 0);
}

static void test_delete_running(void **state)
{
    (void)state;
    NEED_RUNTIME();
    struct barge_runtime_spec s = sh_spec("victim", (const char *[]){"/bin/sleep", "100", NULL});
    s.memory_limit = 64 << 20;
    run_ok(&s);
    struct barge_error *err = NULL;
    assert_int_equal(barge_runtime_delete(T.rt, "victim", false, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_CONFLICT);
    barge_error_free(err);
    err = NULL;
    _cleanup_free_ char *cg = barge_xasprintf("/sys/fs/cgroup/memory%s/victim", T.cgparent);
    bool v1_memory = access("/sys/fs/cgroup/memory", F_OK) == 0;
    if (v1_memory)
        assert_int_equal(access(cg, F_OK), 0);
    if (barge_runtime_delete(T.rt, "victim", true, &err) < 0)
        fail_msg("delete: %s", err->message);
    if (v1_memory)
        assert_int_equal(access(cg, F_OK), -1);
    /* The id is free again. */
    run_ok(&s);
    assert_int_equal(barge_runtime_delete(T.rt, "victim", true, &err), 0);
}

static bool state_entry_exists(const char *id)
{
    _cleanup_free_ char *p = barge_xasprintf("%s/containers/%s", T.state, id);
    return access(p, F_OK) == 0;
}

static void test_failures_clean_up(void **state)
{
    (void)state;
    NEED_RUNTIME();
    /* The runtime refuses a command that is not in the image: the error
     * carries its message and nothing is left behind. */
    struct barge_runtime_spec s = sh_spec("nocmd", (const char *[]){"/no/such/program", NULL});
    struct barge_error *err = NULL;
    assert_int_equal(barge_runtime_run(T.rt, &s, &err), -1);
    assert_non_null(strstr(err->message, "'nocmd'"));
    assert_non_null(strstr(err->message, "/no/such/program"));
    barge_error_free(err);
    err = NULL;
    assert_false(state_entry_exists("nocmd"));
    _cleanup_free_ char *cg = barge_xasprintf("/sys/fs/cgroup/memory%s/nocmd", T.cgparent);
    assert_int_equal(access(cg, F_OK), -1);

    /* A missing rootfs fails before anything runs. */
    s = sh_spec("norootfs", (const char *[]){"/bin/true", NULL});
    s.rootfs = "/nonexistent/rootfs";
    assert_int_equal(barge_runtime_create(T.rt, &s, &err), -1);
    assert_non_null(strstr(err->message, "'/nonexistent/rootfs'"));
    barge_error_free(err);
    err = NULL;
    assert_false(state_entry_exists("norootfs"));

    /* Ids are unique; a created container that never started can be
     * inspected and deleted. */
    s = sh_spec("twice", (const char *[]){"/bin/sleep", "100", NULL});
    if (barge_runtime_create(T.rt, &s, &err) < 0)
        fail_msg("create: %s", err->message);
    assert_int_equal(barge_runtime_create(T.rt, &s, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_EXISTS);
    barge_error_free(err);
    err = NULL;
    struct barge_runtime_state st = state_of(T.rt, "twice");
    assert_int_equal(st.status, BARGE_RUNTIME_CREATED);
    assert_true(st.pid > 0);
    assert_int_equal(barge_runtime_stop(T.rt, "twice", 0, 5000, &st, &err), 0);
    assert_int_equal(st.status, BARGE_RUNTIME_EXITED);
    assert_int_equal(barge_runtime_delete(T.rt, "twice", false, &err), 0);
    assert_false(state_entry_exists("twice"));
    assert_int_equal(barge_runtime_delete(T.rt, "twice", false, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_NOT_FOUND);
    barge_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_echo_and_logs, test_teardown),
        cmocka_unit_test_teardown(test_exit_code, test_teardown),
        cmocka_unit_test_teardown(test_stop_sigterm, test_teardown),
        cmocka_unit_test_teardown(test_stop_timeout_sigkill, test_teardown),
        cmocka_unit_test_teardown(test_oom, test_teardown),
        cmocka_unit_test_teardown(test_exec, test_teardown),
        cmocka_unit_test_teardown(test_exec_sessions, test_teardown),
        cmocka_unit_test_teardown(test_survives_and_adopt, test_teardown),
        cmocka_unit_test_teardown(test_overlay_user_readonly, test_teardown),
        cmocka_unit_test_teardown(test_delete_running, test_teardown),
        cmocka_unit_test_teardown(test_failures_clean_up, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
