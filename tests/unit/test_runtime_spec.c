/* Bundle generation without running anything: the config.json built for a
 * container spec (capabilities over Docker's default set, resource limits,
 * rlimits, namespaces, mounts, environment), users resolved from a fake
 * rootfs's /etc/passwd and /etc/group, spec validation and the generated
 * /etc files. */
#include <sys/stat.h>

#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "common/json.h"
#include "runtime/internal.h"
#include "runtime/runtime.h"

static char tmpdir[] = "/tmp/barge-spec-test-XXXXXX";
static char rootfs[512];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmpdir);
    char p[600];
    mkdir(rootfs, 0755);
    snprintf(p, sizeof(p), "%s/etc", rootfs);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/etc/passwd", rootfs);
    write_text(p, "root:x:0:0:root:/root:/bin/sh\n"
                  "# a comment line\n"
                  "app:x:1000:1001:App:/home/app:/bin/sh\n"
                  "nohome:x:1002:1002::::\n");
    snprintf(p, sizeof(p), "%s/etc/group", rootfs);
    write_text(p, "root:x:0:\n"
                  "app:x:1001:\n"
                  "wheel:x:10:other,app\n"
                  "docker:x:999:app\n"
                  "unrelated:x:50:other\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *const sh_true[] = {"/bin/sh", "-c", "true", NULL};

/* A spec with everything at its default, for tests to adjust. */
static struct barge_runtime_spec base_spec(void)
{
    struct barge_runtime_spec s = {
        .id = "c1",
        .rootfs = rootfs,
        .argv = sh_true,
    };
    return s;
}

static json_t *build(const struct barge_runtime_spec *s)
{
    struct barge_error *err = NULL;
    json_t *c = barge_runtime_config_new(s, rootfs, "/run/c1", NULL, ~UINT64_C(0), &err);
    if (!c)
        fail_msg("config: %s", err->message);
    return c;
}

static bool array_has(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static json_t *path_get(json_t *j, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return v;
}

static json_t *find_mount(json_t *cfg, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cfg, "mounts"), i, m)
    {
        if (strcmp(barge_json_str(m, "destination", ""), dest) == 0)
            return m;
    }
    return NULL;
}

static int mount_index(json_t *cfg, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cfg, "mounts"), i, m)
    {
        if (strcmp(barge_json_str(m, "destination", ""), dest) == 0)
            return (int)i;
    }
    return -1;
}

static void test_default_caps(void **state)
{
    (void)state;
    uint64_t caps;
    assert_int_equal(barge_runtime_caps_compute(NULL, NULL, ~UINT64_C(0), &caps, NULL), 0);
    assert_int_equal(__builtin_popcountll(caps), 14);
    struct barge_runtime_spec s = base_spec();
    _cleanup_json_ json_t *c = build(&s);
    json_t *bounding = path_get(c, "process", "capabilities", "bounding");
    assert_int_equal(json_array_size(bounding), 14);
    static const char *const expected[] = {
        "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
        "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
        "CAP_KILL",    "CAP_AUDIT_WRITE",
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(expected); i++)
        assert_true(array_has(bounding, expected[i]));
    assert_false(array_has(bounding, "CAP_SYS_ADMIN"));
    assert_true(json_equal(bounding, path_get(c, "process", "capabilities", "effective")));
    assert_true(json_equal(bounding, path_get(c, "process", "capabilities", "permitted")));
    assert_null(path_get(c, "process", "capabilities", "inheritable"));
    assert_null(path_get(c, "process", "capabilities", "ambient"));
    assert_true(json_is_true(path_get(c, "process", "noNewPrivileges", NULL)));
}

static void test_caps_add_drop(void **state)
{
    (void)state;
    struct barge_runtime_spec s = base_spec();
    s.cap_add = (const char *[]){"net_admin", "CAP_SYS_PTRACE", NULL};
    s.cap_drop = (const char *[]){"MKNOD", "cap_net_raw", NULL};
    _cleanup_json_ json_t *c = build(&s);
    json_t *b = path_get(c, "process", "capabilities", "bounding");
    assert_int_equal(json_array_size(b), 14);
    assert_true(array_has(b, "CAP_NET_ADMIN"));
    assert_true(array_has(b, "CAP_SYS_PTRACE"));
    assert_false(array_has(b, "CAP_MKNOD"));
    assert_false(array_has(b, "CAP_NET_RAW"));

    uint64_t caps;
    /* Drop everything, then add back one: adds are applied last. */
    assert_int_equal(barge_runtime_caps_compute((const char *[]){"NET_BIND_SERVICE", NULL},
                                                (const char *[]){"ALL", NULL}, ~UINT64_C(0), &caps,
                                                NULL),
                     0);
    assert_int_equal(caps, UINT64_C(1) << 10);
    /* ALL is limited to what the host can grant. */
    uint64_t host = (UINT64_C(1) << 41) - 1 - (UINT64_C(1) << 24);
    assert_int_equal(barge_runtime_caps_compute((const char *[]){"ALL", NULL},
                                                (const char *[]){"SYS_ADMIN", NULL}, host, &caps,
                                                NULL),
                     0);
    assert_int_equal(caps, host & ~(UINT64_C(1) << 21));
    /* Naming a capability the host lacks, or an unknown one, is an error. */
    struct barge_error *err = NULL;
    assert_int_equal(
        barge_runtime_caps_compute((const char *[]){"SYS_RESOURCE", NULL}, NULL, host, &caps, &err),
        -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    assert_non_null(strstr(err->message, "'SYS_RESOURCE'"));
    barge_error_free(err);
    err = NULL;
    assert_int_equal(
        barge_runtime_caps_compute(NULL, (const char *[]){"CAP_BOGUS", NULL}, host, &caps, &err),
        -1);
    assert_non_null(strstr(err->message, "'CAP_BOGUS'"));
    barge_error_free(err);
    assert_string_equal(barge_runtime_cap_name(0), "CAP_CHOWN");
    assert_string_equal(barge_runtime_cap_name(40), "CAP_CHECKPOINT_RESTORE");
    assert_null(barge_runtime_cap_name(41));
}

static void test_limits(void **state)
{
    (void)state;
    struct barge_runtime_spec s = base_spec();
    s.cpu_shares = 512;
    s.memory_limit = 128 << 20;
    s.memory_reservation = 64 << 20;
    s.pids_limit = 100;
    s.cgroup_parent = "/barge/task-1";
    struct barge_runtime_ulimit ul[] = {{"nofile", 1024, 4096}, {"RLIMIT_NPROC", 50, 60}};
    s.ulimits = ul;
    s.n_ulimits = 2;
    _cleanup_json_ json_t *c = build(&s);
    json_t *res = path_get(c, "linux", "resources", NULL);
    assert_int_equal(json_integer_value(path_get(res, "cpu", "shares", NULL)), 512);
    assert_int_equal(json_integer_value(path_get(res, "memory", "limit", NULL)), 128 << 20);
    assert_int_equal(json_integer_value(path_get(res, "memory", "reservation", NULL)), 64 << 20);
    assert_int_equal(json_integer_value(path_get(res, "pids", "limit", NULL)), 100);
    json_t *dev0 = json_array_get(json_object_get(res, "devices"), 0);
    assert_true(json_is_false(json_object_get(dev0, "allow")));
    assert_string_equal(barge_json_str(dev0, "access", ""), "rwm");
    assert_string_equal(json_string_value(path_get(c, "linux", "cgroupsPath", NULL)),
                        "/barge/task-1/c1");
    json_t *rl = path_get(c, "process", "rlimits", NULL);
    assert_int_equal(json_array_size(rl), 2);
    assert_string_equal(barge_json_str(json_array_get(rl, 0), "type", ""), "RLIMIT_NOFILE");
    assert_int_equal(barge_json_int(json_array_get(rl, 0), "soft", 0), 1024);
    assert_int_equal(barge_json_int(json_array_get(rl, 0), "hard", 0), 4096);
    assert_string_equal(barge_json_str(json_array_get(rl, 1), "type", ""), "RLIMIT_NPROC");

    /* Nothing set: no limits at all, the default cgroup parent. */
    struct barge_runtime_spec d = base_spec();
    _cleanup_json_ json_t *c2 = build(&d);
    res = path_get(c2, "linux", "resources", NULL);
    assert_null(json_object_get(res, "cpu"));
    assert_null(json_object_get(res, "memory"));
    assert_null(json_object_get(res, "pids"));
    assert_null(path_get(c2, "process", "rlimits", NULL));
    assert_string_equal(json_string_value(path_get(c2, "linux", "cgroupsPath", NULL)), "/barge/c1");
    /* cpu shares of 1 are raised to the kernel's minimum of 2. */
    d.cpu_shares = 1;
    _cleanup_json_ json_t *c3 = build(&d);
    json_t *cpu = path_get(c3, "linux", "resources", "cpu");
    assert_int_equal(json_integer_value(json_object_get(cpu, "shares")), 2);
}

static void check_user(const char *spec, uint32_t uid, uint32_t gid, const char *home,
                       const uint32_t *gids, size_t n_gids)
{
    struct barge_runtime_user u;
    struct barge_error *err = NULL;
    if (barge_runtime_user_resolve(rootfs, spec, &u, &err) < 0)
        fail_msg("user '%s': %s", spec ? spec : "(null)", err->message);
    assert_int_equal(u.uid, uid);
    assert_int_equal(u.gid, gid);
    assert_string_equal(u.home, home);
    assert_int_equal(u.n_additional_gids, n_gids);
    for (size_t i = 0; i < n_gids; i++)
        assert_int_equal(u.additional_gids[i], gids[i]);
    barge_runtime_user_release(&u);
}

static void check_user_fails(const char *spec, const char *needle)
{
    struct barge_runtime_user u;
    struct barge_error *err = NULL;
    assert_int_equal(barge_runtime_user_resolve(rootfs, spec, &u, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    if (!strstr(err->message, needle))
        fail_msg("'%s' lacks '%s'", err->message, needle);
    barge_error_free(err);
}

static void test_users(void **state)
{
    (void)state;
    check_user(NULL, 0, 0, "/root", NULL, 0);
    check_user("root", 0, 0, "/root", NULL, 0);
    check_user("app", 1000, 1001, "/home/app", (const uint32_t[]){10, 999}, 2);
    check_user("1000", 1000, 1001, "/home/app", (const uint32_t[]){10, 999}, 2);
    check_user("app:wheel", 1000, 10, "/home/app", NULL, 0);
    check_user("app:77", 1000, 77, "/home/app", NULL, 0);
    check_user("4242", 4242, 0, "/", NULL, 0);
    check_user("4242:docker", 4242, 999, "/", NULL, 0);
    check_user("nohome", 1002, 1002, "/", NULL, 0);
    check_user_fails("nobody", "unable to find user 'nobody'");
    check_user_fails("app:nogroup", "unable to find group 'nogroup'");
    check_user_fails(":", "invalid user");

    /* A named user in an image without /etc/passwd cannot be resolved; a
     * numeric one can. */
    char empty[600];
    snprintf(empty, sizeof(empty), "%s/empty", tmpdir);
    mkdir(empty, 0755);
    struct barge_runtime_user u;
    struct barge_error *err = NULL;
    assert_int_equal(barge_runtime_user_resolve(empty, "33:33", &u, &err), 0);
    assert_int_equal(u.uid, 33);
    assert_int_equal(u.gid, 33);
    barge_runtime_user_release(&u);
    assert_int_equal(barge_runtime_user_resolve(empty, "www-data", &u, &err), -1);
    barge_error_free(err);

    /* An absolute symlink in the image resolves inside the image, never to
     * the host's file of that name. */
    char p[700], evil[600];
    snprintf(evil, sizeof(evil), "%s/evil", tmpdir);
    snprintf(p, sizeof(p), "%s/etc", evil);
    assert_int_equal(barge_mkdir_p(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/data", evil);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/data/pw", evil);
    write_text(p, "inside:x:5000:5001::/in:/bin/sh\n");
    snprintf(p, sizeof(p), "%s/etc/passwd", evil);
    assert_int_equal(symlink("/data/pw", p), 0);
    err = NULL;
    assert_int_equal(barge_runtime_user_resolve(evil, "inside", &u, &err), 0);
    assert_int_equal(u.uid, 5000);
    assert_string_equal(u.home, "/in");
    barge_runtime_user_release(&u);
    unlink(p);
    assert_int_equal(symlink("../../../../../../../../etc/passwd", p), 0);
    /* ".." stops at the image's root: this names the link itself (a loop),
     * not the host's /etc/passwd where "root" exists. */
    err = NULL;
    assert_int_equal(barge_runtime_user_resolve(evil, "root", &u, &err), -1);
    barge_error_free(err);
}

static void test_user_in_config(void **state)
{
    (void)state;
    struct barge_runtime_spec s = base_spec();
    s.user = "app";
    _cleanup_json_ json_t *c = build(&s);
    json_t *u = path_get(c, "process", "user", NULL);
    assert_int_equal(barge_json_int(u, "uid", -1), 1000);
    assert_int_equal(barge_json_int(u, "gid", -1), 1001);
    assert_int_equal(json_array_size(json_object_get(u, "additionalGids")), 2);
    /* A non-root user keeps only the bounding set. */
    assert_int_equal(json_array_size(path_get(c, "process", "capabilities", "bounding")), 14);
    assert_int_equal(json_array_size(path_get(c, "process", "capabilities", "effective")), 0);
    assert_int_equal(json_array_size(path_get(c, "process", "capabilities", "permitted")), 0);
    json_t *env = path_get(c, "process", "env", NULL);
    assert_true(array_has(env, "HOME=/home/app"));
}

static void test_env_cwd_root(void **state)
{
    (void)state;
    struct barge_runtime_spec s = base_spec();
    s.env = (const char *[]){"A=1", "PATH=/opt/bin", NULL};
    s.cwd = "/srv";
    s.readonly_rootfs = true;
    s.hostname = "web-1";
    _cleanup_json_ json_t *c = build(&s);
    json_t *env = path_get(c, "process", "env", NULL);
    assert_true(array_has(env, "A=1"));
    assert_true(array_has(env, "PATH=/opt/bin"));
    assert_true(array_has(env, "HOSTNAME=web-1"));
    assert_true(array_has(env, "HOME=/root"));
    assert_int_equal(json_array_size(env), 4);
    assert_string_equal(json_string_value(path_get(c, "process", "cwd", NULL)), "/srv");
    json_t *args = path_get(c, "process", "args", NULL);
    assert_int_equal(json_array_size(args), 3);
    assert_string_equal(json_string_value(json_array_get(args, 2)), "true");
    assert_string_equal(json_string_value(path_get(c, "root", "path", NULL)), rootfs);
    assert_true(json_is_true(path_get(c, "root", "readonly", NULL)));
    assert_string_equal(json_string_value(path_get(c, "hostname", NULL, NULL)), "web-1");
    assert_true(json_is_false(path_get(c, "process", "terminal", NULL)));

    struct barge_runtime_spec d = base_spec();
    _cleanup_json_ json_t *c2 = build(&d);
    env = path_get(c2, "process", "env", NULL);
    assert_true(
        array_has(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_string_equal(json_string_value(path_get(c2, "process", "cwd", NULL)), "/");
    assert_string_equal(json_string_value(path_get(c2, "hostname", NULL, NULL)), "c1");
}

static void test_namespaces(void **state)
{
    (void)state;
    struct barge_runtime_spec s = base_spec();
    _cleanup_json_ json_t *c = build(&s);
    json_t *ns = path_get(c, "linux", "namespaces", NULL);
    assert_int_equal(json_array_size(ns), 5);
    static const char *const types[] = {"pid", "ipc", "uts", "mount", "network"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(barge_json_str(json_array_get(ns, i), "type", ""), types[i]);
    assert_null(json_object_get(json_array_get(ns, 4), "path"));
    assert_string_equal(barge_json_str(find_mount(c, "/sys"), "type", ""), "sysfs");

    s.netns_path = "/var/run/netns/task-1";
    _cleanup_json_ json_t *c2 = build(&s);
    ns = path_get(c2, "linux", "namespaces", NULL);
    assert_string_equal(barge_json_str(json_array_get(ns, 4), "path", ""), "/var/run/netns/task-1");

    s.netns_path = NULL;
    s.host_network = true;
    _cleanup_json_ json_t *c3 = build(&s);
    ns = path_get(c3, "linux", "namespaces", NULL);
    assert_int_equal(json_array_size(ns), 4);
    /* sysfs cannot be mounted in the host's network namespace: bound instead. */
    json_t *sys = find_mount(c3, "/sys");
    assert_string_equal(barge_json_str(sys, "type", ""), "bind");
    assert_true(array_has(json_object_get(sys, "options"), "ro"));

    json_t *masked = path_get(c, "linux", "maskedPaths", NULL);
    assert_true(array_has(masked, "/proc/kcore"));
    assert_true(array_has(masked, "/sys/firmware"));
    assert_true(array_has(path_get(c, "linux", "readonlyPaths", NULL), "/proc/sys"));
    assert_null(path_get(c, "linux", "seccomp", NULL));
}

static void test_mounts(void **state)
{
    (void)state;
    struct barge_runtime_spec s = base_spec();
    struct barge_runtime_mount m[] = {
        {.type = BARGE_RUNTIME_MOUNT_TMPFS, .destination = "/data/cache/tmp", .size = 1 << 20},
        {.type = BARGE_RUNTIME_MOUNT_BIND,
         .source = "/srv/shared",
         .destination = "/data",
         .readonly = true},
        {.type = BARGE_RUNTIME_MOUNT_TMPFS,
         .destination = "/run",
         .options = (const char *[]){"noexec", "mode=0700", NULL}},
    };
    s.mounts = m;
    s.n_mounts = 3;
    s.shm_size = 128 << 20;
    _cleanup_json_ json_t *c = build(&s);

    static const char *const standard[] = {
        "/proc",       "/dev",     "/dev/pts",   "/sys",          "/sys/fs/cgroup",
        "/dev/mqueue", "/dev/shm", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(standard); i++)
        if (!find_mount(c, standard[i]))
            fail_msg("no mount at '%s'", standard[i]);
    assert_true(array_has(json_object_get(find_mount(c, "/dev/shm"), "options"), "size=131072k"));
    assert_true(array_has(json_object_get(find_mount(c, "/sys/fs/cgroup"), "options"), "ro"));
    json_t *hosts = find_mount(c, "/etc/hosts");
    assert_string_equal(barge_json_str(hosts, "source", ""), "/run/c1/hosts");
    assert_string_equal(barge_json_str(hosts, "type", ""), "bind");
    assert_string_equal(barge_json_str(find_mount(c, "/etc/resolv.conf"), "source", ""),
                        "/run/c1/resolv.conf");

    json_t *data = find_mount(c, "/data");
    assert_string_equal(barge_json_str(data, "source", ""), "/srv/shared");
    assert_true(array_has(json_object_get(data, "options"), "rbind"));
    assert_true(array_has(json_object_get(data, "options"), "ro"));
    json_t *tmp = find_mount(c, "/data/cache/tmp");
    assert_string_equal(barge_json_str(tmp, "type", ""), "tmpfs");
    assert_true(array_has(json_object_get(tmp, "options"), "size=1024k"));
    assert_true(array_has(json_object_get(tmp, "options"), "rw"));
    assert_true(array_has(json_object_get(tmp, "options"), "mode=1777"));
    assert_true(array_has(json_object_get(find_mount(c, "/run"), "options"), "noexec"));
    assert_false(array_has(json_object_get(find_mount(c, "/run"), "options"), "mode=1777"));
    /* Parents are mounted before what lies under them. */
    assert_true(mount_index(c, "/data") < mount_index(c, "/data/cache/tmp"));
    assert_true(mount_index(c, "/etc/resolv.conf") < mount_index(c, "/data"));

    /* A user mount at a standard place replaces ours. */
    struct barge_runtime_mount shm = {
        .type = BARGE_RUNTIME_MOUNT_TMPFS, .destination = "/dev/shm", .size = 1 << 20};
    struct barge_runtime_spec s2 = base_spec();
    s2.mounts = &shm;
    s2.n_mounts = 1;
    _cleanup_json_ json_t *c2 = build(&s2);
    int count = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c2, "mounts"), i, v)
    {
        count += strcmp(barge_json_str(v, "destination", ""), "/dev/shm") == 0;
    }
    assert_int_equal(count, 1);
    assert_true(array_has(json_object_get(find_mount(c2, "/dev/shm"), "options"), "size=1024k"));
}

static void check_invalid(const struct barge_runtime_spec *s, const char *needle)
{
    struct barge_error *err = NULL;
    assert_int_equal(barge_runtime_spec_validate(s, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    if (!strstr(err->message, needle))
        fail_msg("'%s' lacks '%s'", err->message, needle);
    barge_error_free(err);
}

static void test_validation(void **state)
{
    (void)state;
    struct barge_runtime_spec s = base_spec();
    assert_int_equal(barge_runtime_spec_validate(&s, NULL), 0);
    s.id = "../x";
    check_invalid(&s, "invalid container id '../x'");
    s = base_spec();
    s.layers = (const char *[]){"/l1", NULL};
    check_invalid(&s, "either a rootfs or layers");
    s.rootfs = NULL;
    assert_int_equal(barge_runtime_spec_validate(&s, NULL), 0);
    s.layers = (const char *[]){"/l1:/l2", NULL};
    check_invalid(&s, "layer '/l1:/l2'");
    s = base_spec();
    s.memory_limit = 1 << 20;
    check_invalid(&s, "below the minimum");
    s.memory_limit = 64 << 20;
    s.memory_reservation = 128 << 20;
    check_invalid(&s, "exceeds the limit");
    s = base_spec();
    struct barge_runtime_ulimit bad = {"files", 1, 2};
    s.ulimits = &bad;
    s.n_ulimits = 1;
    check_invalid(&s, "unknown ulimit 'files'");
    struct barge_runtime_ulimit inverted = {"nofile", 10, 2};
    s.ulimits = &inverted;
    check_invalid(&s, "soft limit exceeds");
    s = base_spec();
    s.argv = (const char *[]){NULL};
    check_invalid(&s, "no command");
    s = base_spec();
    s.env = (const char *[]){"NOEQUALS", NULL};
    check_invalid(&s, "'NOEQUALS'");
    s = base_spec();
    s.netns_path = "/proc/1/ns/net";
    s.host_network = true;
    check_invalid(&s, "host network");
    s = base_spec();
    struct barge_runtime_mount m = {
        .type = BARGE_RUNTIME_MOUNT_BIND, .source = "relative", .destination = "/x"};
    s.mounts = &m;
    s.n_mounts = 1;
    check_invalid(&s, "'relative'");
    m.source = "/ok";
    m.destination = "/a/../b";
    check_invalid(&s, "'/a/../b'");
    s = base_spec();
    s.cgroup_parent = "barge";
    check_invalid(&s, "cgroup parent 'barge'");
    s = base_spec();
    s.hostname = "bad host";
    check_invalid(&s, "hostname 'bad host'");
}

static char *slurp(const char *dir, const char *name)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    char *s = barge_read_file(p, NULL);
    assert_non_null(s);
    return s;
}

static void test_etc_files(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/etcfiles", tmpdir);
    mkdir(dir, 0755);
    struct barge_runtime_spec s = base_spec();
    s.hostname = "web";
    s.hosts_entries = (const char *[]){"10.0.0.2 web web.local", "10.0.0.3 db", NULL};
    s.dns_servers = (const char *[]){"10.0.0.53", "10.0.1.53", NULL};
    s.dns_search = (const char *[]){"svc.local", "local", NULL};
    s.dns_options = (const char *[]){"ndots:2", NULL};
    assert_int_equal(barge_rt_etc_files_write(&s, dir, NULL), 0);
    _cleanup_free_ char *hn = slurp(dir, "hostname");
    assert_string_equal(hn, "web\n");
    _cleanup_free_ char *hosts = slurp(dir, "hosts");
    assert_true(barge_str_has_prefix(hosts, "127.0.0.1\tlocalhost\n"));
    assert_non_null(strstr(hosts, "\n10.0.0.2 web web.local\n10.0.0.3 db\n"));
    _cleanup_free_ char *rc = slurp(dir, "resolv.conf");
    assert_string_equal(rc, "nameserver 10.0.0.53\nnameserver 10.0.1.53\n"
                            "search svc.local local\noptions ndots:2\n");

    /* Without DNS settings the host's resolv.conf is used, minus resolvers
     * on the host's loopback which the container cannot reach. */
    struct barge_runtime_spec d = base_spec();
    assert_int_equal(barge_rt_etc_files_write(&d, dir, NULL), 0);
    _cleanup_free_ char *rc2 = slurp(dir, "resolv.conf");
    assert_null(strstr(rc2, "nameserver 127."));
    _cleanup_free_ char *hn2 = slurp(dir, "hostname");
    assert_string_equal(hn2, "c1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_caps),   cmocka_unit_test(test_caps_add_drop),
        cmocka_unit_test(test_limits),         cmocka_unit_test(test_users),
        cmocka_unit_test(test_user_in_config), cmocka_unit_test(test_env_cwd_root),
        cmocka_unit_test(test_namespaces),     cmocka_unit_test(test_mounts),
        cmocka_unit_test(test_validation),     cmocka_unit_test(test_etc_files),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
