/* The conmon + crun/runc driver: detection of a runtime that works here,
 * container create/start/state/kill/stop/delete, adoption after a restart,
 * exec for health checks and cgroup counters.
 *
 * conmon is what lets containers outlive us: it forks into the background in
 * a session of its own, runs `<runtime> create`, reports the container's pid on the sync
 * pipe we hand it (_OCI_SYNCPIPE) and stays as the container's parent
 * (subreaper) to collect its stdout/stderr into a k8s-file log and to write the
 * exit code (and an "oom" marker) into the container directory when it ends.
 * We never poll with sleeps: starting waits on the sync pipe, waiting for an
 * exit polls a pidfd of conmon, which exits right after writing the exit file.
 *
 * What we need to find a container again (runtime, its --root, pids, cgroup,
 * times) is kept in barge.json in the container directory, written through a
 * rename so that a crash leaves either the old or the new version. */
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <termios.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "runtime/internal.h"

#define DEFAULT_STATE_DIR   "/run/barge/runtime"
#define DEFAULT_CGROUP      "/barge"
#define CREATE_TIMEOUT_MS   60000 /* conmon + `runtime create`, image-size independent */
#define COMMAND_TIMEOUT_MS  30000 /* start, kill, delete, state */
#define DELETE_KILL_WAIT_MS 10000
#define EXEC_OUTPUT_MAX     4096

struct barge_runtime {
    char *name; /* "crun" or "runc" */
    char *path;
    char *conmon;
    char *state_dir;
    char *containers_dir;
    char *exit_dir;
    char *root; /* the runtime's --root */
    char *cgroup_parent;
    uint64_t host_caps;
    struct barge_rt_cgroups cg;
};

/* What barge.json holds. */
struct meta {
    char *id;
    char *dir;
    char *rootfs;
    bool overlay;
    char *log_path;
    char *runtime; /* the binary that created it, used for every later command */
    char *root;
    char *cgroup;
    int stop_signal;
    pid_t conmon_pid;
    pid_t pid;
    double created_at;
    double started_at;
};

static void meta_release(struct meta *m)
{
    free(m->id);
    free(m->dir);
    free(m->rootfs);
    free(m->log_path);
    free(m->runtime);
    free(m->root);
    free(m->cgroup);
    memset(m, 0, sizeof(*m));
}

const char *barge_runtime_name(const struct barge_runtime *rt)
{
    return rt->name;
}

const char *barge_runtime_path(const struct barge_runtime *rt)
{
    return rt->path;
}

const char *barge_runtime_state_dir(const struct barge_runtime *rt)
{
    return rt->state_dir;
}

const char *barge_runtime_exit_dir(const struct barge_runtime *rt)
{
    return rt->exit_dir;
}

const char *barge_runtime_status_name(enum barge_runtime_status status)
{
    switch (status) {
    case BARGE_RUNTIME_CREATED:
        return "created";
    case BARGE_RUNTIME_RUNNING:
        return "running";
    case BARGE_RUNTIME_EXITED:
        return "exited";
    }
    return "unknown";
}

void barge_runtime_free(struct barge_runtime *rt)
{
    if (!rt)
        return;
    free(rt->name);
    free(rt->path);
    free(rt->conmon);
    free(rt->state_dir);
    free(rt->containers_dir);
    free(rt->exit_dir);
    free(rt->root);
    free(rt->cgroup_parent);
    barge_rt_cgroups_release(&rt->cg);
    free(rt);
}

/* ---- small helpers ---- */

/* Absolute path of an executable: name itself when it has a '/', else the
 * first match in PATH. Caller frees; NULL when not found. */
static char *find_exe(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? barge_xstrdup(name) : NULL;
    const char *path = getenv("PATH");
    _cleanup_free_ char *copy =
        barge_xstrdup(path && *path ? path
                                    : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                      "/sbin:/bin");
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *p = barge_xasprintf("%s/%s", d, name);
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

static char *trim(char *s)
{
    if (!s)
        return s;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* runc logs as `time="..." level=error msg="..."`; keep the msg text, which
 * is what ends up in an ECS stoppedReason. Works in place; returns s. */
static char *runtime_message(char *s)
{
    char *m = s ? strstr(s, "msg=\"") : NULL;
    if (!m)
        return trim(s);
    char *w = s;
    for (const char *r = m + 5; *r && *r != '"'; r++) {
        if (r[0] == '\\' && r[1])
            r++;
        *w++ = *r;
    }
    *w = '\0';
    return s;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* rm -rf that neither follows symlinks nor crosses into mounted filesystems,
 * so a rootfs that is still mounted is left alone (and the rmdir of its
 * parent then fails, which the caller reports). */
static int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    return lstat(path, &st) < 0 && errno == ENOENT ? 0 : -1;
}

static int copy_file(const char *from, const char *to, int mode)
{
    _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    _cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (out < 0)
        return -1;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL)
            return -1;
        char buf[65536];
        ssize_t r;
        while ((r = read(in, buf, sizeof(buf))) > 0)
            if (write(out, buf, (size_t)r) != r)
                return -1;
        return r < 0 ? -1 : 0;
    }
}

static char *index_path(const struct barge_runtime *rt, const char *id)
{
    return barge_xasprintf("%s/%s", rt->containers_dir, id);
}

/* ---- barge.json ---- */

static int meta_save(const struct meta *m, struct barge_error **err)
{
    _cleanup_json_ json_t *j = json_object();
    barge_json_set_str(j, "id", m->id);
    barge_json_set_str(j, "dir", m->dir);
    barge_json_set_str(j, "rootfs", m->rootfs);
    json_object_set_new(j, "overlay", json_boolean(m->overlay));
    barge_json_set_str(j, "log_path", m->log_path);
    barge_json_set_str(j, "runtime", m->runtime);
    barge_json_set_str(j, "root", m->root);
    barge_json_set_str(j, "cgroup", m->cgroup);
    json_object_set_new(j, "stop_signal", json_integer(m->stop_signal));
    json_object_set_new(j, "conmon_pid", json_integer(m->conmon_pid));
    json_object_set_new(j, "pid", json_integer(m->pid));
    json_object_set_new(j, "created_at", json_real(m->created_at));
    json_object_set_new(j, "started_at", json_real(m->started_at));
    _cleanup_free_ char *s = barge_json_dump(j);
    _cleanup_free_ char *p = barge_xasprintf("%s/barge.json", m->dir);
    if (barge_rt_write_file(p, s, strlen(s), 0600) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", p);
    return 0;
}

static double json_num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static int meta_load(const struct barge_runtime *rt, const char *id, struct meta *m,
                     struct barge_error **err)
{
    memset(m, 0, sizeof(*m));
    if (!barge_rt_id_valid(id))
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid container id '%s'", id ? id : "");
    _cleanup_free_ char *p = barge_xasprintf("%s/%s/barge.json", rt->containers_dir, id);
    json_error_t jerr;
    _cleanup_json_ json_t *j = json_load_file(p, 0, &jerr);
    if (!j) {
        if (access(p, F_OK) < 0 && errno == ENOENT)
            return barge_error_set(err, BARGE_ERR_NOT_FOUND, "container '%s' not found", id);
        return barge_error_set(err, BARGE_ERR_IO, "cannot read '%s': %s", p, jerr.text);
    }
    const char *dir = barge_json_str(j, "dir", NULL);
    const char *runtime = barge_json_str(j, "runtime", NULL);
    const char *root = barge_json_str(j, "root", NULL);
    const char *cgroup = barge_json_str(j, "cgroup", NULL);
    if (!dir || !runtime || !root || !cgroup)
        return barge_error_set(err, BARGE_ERR_IO, "'%s' lacks dir, runtime, root or cgroup", p);
    m->id = barge_xstrdup(id);
    m->dir = barge_xstrdup(dir);
    m->rootfs = barge_xstrdup(barge_json_str(j, "rootfs", ""));
    m->overlay = barge_json_bool(j, "overlay", false);
    m->log_path = barge_xstrdup(barge_json_str(j, "log_path", ""));
    m->runtime = barge_xstrdup(runtime);
    m->root = barge_xstrdup(root);
    m->cgroup = barge_xstrdup(cgroup);
    m->stop_signal = (int)barge_json_int(j, "stop_signal", SIGTERM);
    m->conmon_pid = (pid_t)barge_json_int(j, "conmon_pid", 0);
    m->pid = (pid_t)barge_json_int(j, "pid", 0);
    m->created_at = json_num(j, "created_at");
    m->started_at = json_num(j, "started_at");
    /* Killed after conmon started but before we recorded its pids: conmon
     * wrote them to files of its own. */
    if (m->conmon_pid == 0) {
        _cleanup_free_ char *f = barge_xasprintf("%s/conmon.pid", m->dir);
        _cleanup_free_ char *v = barge_read_file(f, NULL);
        m->conmon_pid = v ? (pid_t)atoi(v) : 0;
    }
    if (m->pid == 0) {
        _cleanup_free_ char *f = barge_xasprintf("%s/pidfile", m->dir);
        _cleanup_free_ char *v = barge_read_file(f, NULL);
        m->pid = v ? (pid_t)atoi(v) : 0;
    }
    return 0;
}

/* ---- talking to the runtime ---- */

/* Runs `<runtime> --root <root> args...`; fails with the runtime's stderr
 * as the message when it exits non-zero. *out (optional) gets stdout. */
static int runtime_cmd(const char *runtime, const char *root, const char *const *args, char **out,
                       struct barge_error **err)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = runtime;
    argv[n++] = "--root";
    argv[n++] = root;
    for (; *args && n < BARGE_ARRAY_SIZE(argv) - 1; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int status;
    bool timed_out;
    _cleanup_free_ char *o = NULL, *e = NULL;
    if (barge_rt_run(argv, barge_monotonic_ms() + COMMAND_TIMEOUT_MS, &status, &timed_out, &o, &e,
                     err) < 0)
        return -1;
    if (timed_out)
        return barge_error_set(err, BARGE_ERR_IO, "'%s %s' timed out", runtime, argv[3]);
    if (status != 0)
        return barge_error_set(err, BARGE_ERR_IO, "'%s %s' failed (status %d): %s", runtime,
                               argv[3], status, e ? runtime_message(e) : "");
    if (out)
        *out = barge_steal(&o);
    return 0;
}

/* The runtime's own view: "created", "running", "stopped", "paused", or NULL
 * when it does not know the container. Caller frees. */
static char *runtime_status(const struct meta *m)
{
    _cleanup_free_ char *out = NULL;
    _cleanup_error_ struct barge_error *e = NULL;
    if (runtime_cmd(m->runtime, m->root, (const char *[]){"state", m->id, NULL}, &out, &e) < 0)
        return NULL;
    _cleanup_json_ json_t *j = json_loads(out, 0, NULL);
    const char *s = barge_json_str(j, "status", NULL);
    return s ? barge_xstrdup(s) : NULL;
}

/* Whether pid is still the conmon that watches container id (and not a
 * process that inherited a recycled pid). */
static bool conmon_alive(pid_t pid, const char *id)
{
    if (pid <= 0)
        return false;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    size_t len;
    _cleanup_free_ char *cmd = barge_read_file(path, &len);
    if (!cmd || len == 0)
        return false;
    const char *argv0 = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
    if (strcmp(argv0, "conmon") != 0)
        return false;
    for (size_t off = 0; off < len;) {
        const char *a = cmd + off;
        size_t al = strlen(a);
        if (strcmp(a, "-c") == 0 && off + al + 1 < len && strcmp(a + al + 1, id) == 0)
            return true;
        off += al + 1;
    }
    return false;
}

/* ---- detection ---- */

static int probe(struct barge_runtime *rt, const char *runtime, const char *name,
                 const char *busybox, char **reason)
{
    _cleanup_free_ char *tmpl = barge_xasprintf("%s/probe-XXXXXX", rt->state_dir);
    if (!mkdtemp(tmpl)) {
        *reason = barge_xasprintf("cannot create a probe directory: %s", strerror(errno));
        return -1;
    }
    _cleanup_free_ char *rootfs = barge_xasprintf("%s/rootfs", tmpl);
    _cleanup_free_ char *bin = barge_xasprintf("%s/rootfs/bin", tmpl);
    _cleanup_free_ char *bb = barge_xasprintf("%s/rootfs/bin/busybox", tmpl);
    _cleanup_free_ char *root = barge_xasprintf("%s/%s", rt->state_dir, name);
    char rnd[33];
    barge_id_hex32(rnd);
    _cleanup_free_ char *id = barge_xasprintf("barge-probe-%.12s", rnd);
    _cleanup_free_ char *cfg_path = barge_xasprintf("%s/config.json", tmpl);
    _cleanup_free_ char *stderr_text = NULL;
    _cleanup_json_ json_t *cfg = NULL;
    int rc = -1;
    if (mkdir(rootfs, 0755) < 0 || mkdir(bin, 0755) < 0 ||
        (link(busybox, bb) < 0 && copy_file(busybox, bb, 0755) < 0)) {
        *reason =
            barge_xasprintf("cannot copy '%s' into a probe rootfs: %s", busybox, strerror(errno));
        goto out;
    }
    /* The probe goes through the same generator and the same kind of limits
     * as real containers, so what fails for them (cgroup setup) fails here. */
    struct barge_runtime_spec spec = {
        .id = id,
        .rootfs = rootfs,
        .argv = (const char *[]){"/bin/busybox", "true", NULL},
        .memory_limit = 64 << 20,
        .pids_limit = 64,
        .cpu_shares = 512,
    };
    struct barge_error *e = NULL;
    if (barge_rt_etc_files_write(&spec, tmpl, &e) == 0)
        cfg = barge_runtime_config_new(&spec, rootfs, tmpl, rt->cgroup_parent, rt->host_caps, &e);
    if (!cfg) {
        *reason = barge_xasprintf("cannot build the probe bundle: %s", e ? e->message : "?");
        barge_error_free(e);
        goto out;
    }
    if (json_dump_file(cfg, cfg_path, JSON_COMPACT) < 0) {
        *reason = barge_xasprintf("cannot write '%s'", cfg_path);
        goto out;
    }
    int status = 0;
    bool timed_out = false;
    const char *argv[] = {runtime, "--root", root, "run", "--bundle", tmpl, id, NULL};
    if (barge_rt_run(argv, barge_monotonic_ms() + COMMAND_TIMEOUT_MS, &status, &timed_out, NULL,
                     &stderr_text, &e) < 0) {
        *reason = barge_xasprintf("%s", e->message);
        barge_error_free(e);
        goto out;
    }
    if (timed_out)
        *reason =
            barge_xasprintf("the probe container did not finish in %d ms", COMMAND_TIMEOUT_MS);
    else if (status != 0)
        *reason =
            barge_xasprintf("exit status %d: %s", status, stderr_text ? trim(stderr_text) : "");
    else
        rc = 0;
out:;
    /* `run` removes what it made when it succeeds; after a failure it may
     * leave its state and cgroup behind. */
    const char *del[] = {runtime, "--root", root, "delete", "--force", id, NULL};
    int st;
    struct barge_error *ignored = NULL;
    if (rc < 0 && barge_rt_run(del, barge_monotonic_ms() + COMMAND_TIMEOUT_MS, &st, NULL, NULL,
                               NULL, &ignored) < 0)
        barge_error_free(ignored);
    ignored = NULL;
    _cleanup_free_ char *cgpath = barge_xasprintf("%s/%s", rt->cgroup_parent, id);
    if (barge_rt_cgroup_remove(&rt->cg, cgpath, &ignored) < 0)
        barge_error_free(ignored);
    remove_tree(tmpl);
    if (rc < 0)
        rmdir(root); /* the refused runtime's --root, when it left it empty */
    return rc;
}

int barge_runtime_detect(const struct barge_runtime_options *opts, struct barge_runtime **out,
                         struct barge_error **err)
{
    static const struct barge_runtime_options none;
    if (!opts)
        opts = &none;
    struct barge_runtime *rt = barge_xcalloc(1, sizeof(*rt));
    rt->state_dir = barge_xstrdup(opts->state_dir ? opts->state_dir : DEFAULT_STATE_DIR);
    rt->containers_dir = barge_xasprintf("%s/containers", rt->state_dir);
    rt->exit_dir = barge_xasprintf("%s/exits", rt->state_dir);
    rt->cgroup_parent = barge_xstrdup(opts->cgroup_parent ? opts->cgroup_parent : DEFAULT_CGROUP);
    rt->host_caps = barge_runtime_host_caps();
    const char *busybox = opts->probe_busybox ? opts->probe_busybox : "/bin/busybox";
    _cleanup_free_ char *reasons = barge_xstrdup("");
    _cleanup_free_ char *cgdesc = NULL;

    if (rt->state_dir[0] != '/') {
        barge_error_set(err, BARGE_ERR_INVALID, "state dir '%s' is not absolute", rt->state_dir);
        goto fail;
    }
    if (barge_mkdir_p(rt->containers_dir, 0700) < 0 || barge_mkdir_p(rt->exit_dir, 0700) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", rt->state_dir);
        goto fail;
    }
    rt->conmon = find_exe(opts->conmon_path ? opts->conmon_path : "conmon");
    if (!rt->conmon) {
        barge_error_set(err, BARGE_ERR_IO, "conmon '%s' not found",
                        opts->conmon_path ? opts->conmon_path : "conmon");
        goto fail;
    }
    if (barge_rt_cgroups_discover(&rt->cg, err) < 0)
        goto fail;

    const char *auto_list[] = {"crun", "runc", NULL};
    const char *forced[] = {opts->force, NULL};
    bool is_forced = opts->force && strcmp(opts->force, "auto") != 0;
    const char *const *cands = is_forced ? forced : auto_list;
    bool probe_ok = !opts->skip_probe && access(busybox, X_OK) == 0;
    if (!opts->skip_probe && !probe_ok)
        barge_warn("runtime: cannot probe runtimes, '%s' is missing (install busybox-static); "
                   "taking the first one installed",
                   busybox);
    for (; *cands; cands++) {
        _cleanup_free_ char *path = find_exe(*cands);
        const char *base = strrchr(*cands, '/') ? strrchr(*cands, '/') + 1 : *cands;
        if (!path) {
            char *r =
                barge_xasprintf("%s%s'%s' is not installed", reasons, *reasons ? "; " : "", *cands);
            free(reasons);
            reasons = r;
            continue;
        }
        _cleanup_free_ char *why = NULL;
        if (probe_ok && probe(rt, path, base, busybox, &why) < 0) {
            barge_warn("runtime: refusing %s ('%s'): a test container failed: %s", base, path, why);
            char *r = barge_xasprintf("%s%s%s: %s", reasons, *reasons ? "; " : "", base, why);
            free(reasons);
            reasons = r;
            continue;
        }
        rt->name = barge_xstrdup(base);
        rt->path = barge_steal(&path);
        break;
    }
    if (!rt->name) {
        barge_error_set(err, BARGE_ERR_IO, "no usable OCI runtime: %s", reasons);
        goto fail;
    }
    rt->root = barge_xasprintf("%s/%s", rt->state_dir, rt->name);
    if (barge_mkdir_p(rt->root, 0700) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", rt->root);
        goto fail;
    }
    cgdesc = barge_rt_cgroups_describe(&rt->cg);
    barge_info("runtime: using %s ('%s'%s) under conmon ('%s'); cgroups: %s; state in '%s'",
               rt->name, rt->path,
               is_forced ? ", forced" : (probe_ok ? ", test container ran" : ", not probed"),
               rt->conmon, cgdesc, rt->state_dir);
    *out = rt;
    return 0;
fail:
    barge_runtime_free(rt);
    return -1;
}

/* ---- create / start ---- */

static int mount_overlay(const struct barge_runtime_spec *spec, const char *dir, const char *rootfs,
                         struct barge_error **err)
{
    _cleanup_free_ char *upper = barge_xasprintf("%s/upper", dir);
    _cleanup_free_ char *work = barge_xasprintf("%s/work", dir);
    if ((mkdir(upper, 0755) < 0 && errno != EEXIST) || (mkdir(work, 0700) < 0 && errno != EEXIST))
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", upper);
    _cleanup_free_ char *lower = barge_xstrdup("");
    for (const char *const *l = spec->layers; *l; l++) {
        char *n = barge_xasprintf("%s%s%s", lower, *lower ? ":" : "", *l);
        free(lower);
        lower = n;
    }
    _cleanup_free_ char *opts =
        barge_xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
    /* The classic mount(2) takes the options in one page. */
    if (strlen(opts) >= 4096)
        return barge_error_set(err, BARGE_ERR_LIMIT,
                               "overlay options for container '%s' exceed a page (%zu bytes)",
                               spec->id, strlen(opts));
    if (mount("overlay", rootfs, "overlay", 0, opts) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot mount the overlay rootfs of '%s'",
                                     spec->id);
    return 0;
}

/* Reads conmon's first message on the sync pipe: {"data": pid} or
 * {"data": -1, "message": "..."}. */
static int read_sync(int fd, int64_t deadline, pid_t *pid, struct barge_error **err)
{
    char buf[8192];
    size_t len = 0;
    while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, barge_rt_ms_left(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return barge_error_set(err, BARGE_ERR_IO, "conmon did not report in %d ms",
                                   CREATE_TIMEOUT_MS);
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (len == 0)
        return barge_error_set(err, BARGE_ERR_IO,
                               "conmon exited without reporting the container's pid");
    _cleanup_json_ json_t *j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    json_int_t data = barge_json_int(j, "data", -1);
    if (data <= 0) {
        _cleanup_free_ char *msg = barge_xstrdup(barge_json_str(j, "message", buf));
        return barge_error_set(err, BARGE_ERR_IO, "runtime create failed: %s",
                               runtime_message(msg));
    }
    *pid = (pid_t)data;
    return 0;
}

static int spawn_conmon(struct barge_runtime *rt, const struct meta *m, uint64_t log_size_max,
                        pid_t *container_pid, struct barge_error **err)
{
    _cleanup_free_ char *pidfile = barge_xasprintf("%s/pidfile", m->dir);
    _cleanup_free_ char *conmon_pidfile = barge_xasprintf("%s/conmon.pid", m->dir);
    _cleanup_free_ char *log = barge_xasprintf("k8s-file:%s", m->log_path);
    _cleanup_free_ char *size = barge_xasprintf("%" PRIu64, log_size_max);
    const char *argv[40];
    size_t n = 0;
    argv[n++] = rt->conmon;
    argv[n++] = "--api-version";
    argv[n++] = "1";
    argv[n++] = "-c";
    argv[n++] = m->id;
    argv[n++] = "-u";
    argv[n++] = m->id;
    argv[n++] = "-n";
    argv[n++] = m->id;
    argv[n++] = "-r";
    argv[n++] = m->runtime;
    argv[n++] = "-b";
    argv[n++] = m->dir;
    argv[n++] = "-p";
    argv[n++] = pidfile;
    argv[n++] = "--conmon-pidfile";
    argv[n++] = conmon_pidfile;
    argv[n++] = "-l";
    argv[n++] = log;
    argv[n++] = "--exit-dir";
    argv[n++] = rt->exit_dir;
    argv[n++] = "--persist-dir";
    argv[n++] = m->dir;
    /* The attach socket goes into the bundle: no socket directory to manage
     * and no 108-byte sun_path limit on how long ids and paths may be. */
    argv[n++] = "--full-attach";
    argv[n++] = "--runtime-arg";
    argv[n++] = "--root";
    argv[n++] = "--runtime-arg";
    argv[n++] = m->root;
    if (log_size_max) {
        argv[n++] = "--log-size-max";
        argv[n++] = size;
    }
    argv[n] = NULL;
    static const char *const envp[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "_OCI_SYNCPIPE=3",
        NULL,
    };

    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create a pipe");
    _cleanup_close_ int sync_r = sync[0];
    _cleanup_close_ int sync_w = sync[1];
    struct barge_rt_child c;
    /* cwd is the container directory: conmon drops its "oom" marker in its
     * working directory as well as in the persist dir. */
    struct barge_rt_spawn_opts o = {
        .argv = argv,
        .envp = envp,
        .cwd = m->dir,
        .capture_err = true,
        .pass_fd = sync_w,
        .cap = 8192,
    };
    int64_t deadline = barge_monotonic_ms() + CREATE_TIMEOUT_MS;
    if (barge_rt_child_spawn(&c, &o, err) < 0)
        return -1;
    close(sync_w);
    sync_w = -1;
    /* The first conmon process exits as soon as it has forked its daemon. */
    int r = barge_rt_child_wait(&c, deadline, err);
    if (r <= 0 || c.status != 0) {
        if (r == 0)
            barge_error_set(err, BARGE_ERR_IO, "conmon did not daemonize in time");
        else if (r > 0)
            barge_error_set(err, BARGE_ERR_IO, "conmon failed (status %d): %s", c.status,
                            c.err.data ? trim(c.err.data) : "");
        barge_rt_child_release(&c);
        return -1;
    }
    barge_rt_child_release(&c);
    return read_sync(sync_r, deadline, container_pid, err);
}

/* Undoes a container as far as it got; used by delete and by failed creates. */
static int teardown(struct barge_runtime *rt, struct meta *m, struct barge_error **err);

int barge_runtime_create(struct barge_runtime *rt, const struct barge_runtime_spec *spec,
                         struct barge_error **err)
{
    int64_t t0 = barge_monotonic_ms();
    if (barge_runtime_spec_validate(spec, err) < 0)
        return -1;
    _cleanup_free_ char *index = index_path(rt, spec->id);
    struct stat st;
    if (lstat(index, &st) == 0)
        return barge_error_set(err, BARGE_ERR_EXISTS, "container '%s' exists already", spec->id);

    struct meta m = {0};
    m.id = barge_xstrdup(spec->id);
    m.dir = spec->dir ? barge_xstrdup(spec->dir) : barge_xstrdup(index);
    /* The directory must be new: delete removes it with all it holds. */
    _cleanup_free_ char *parent = barge_xstrdup(m.dir);
    *strrchr(parent, '/') = '\0';
    if ((*parent && barge_mkdir_p(parent, 0700) < 0) || mkdir(m.dir, 0700) < 0) {
        barge_error_set_errno(err, errno == EEXIST ? BARGE_ERR_EXISTS : BARGE_ERR_IO,
                              "cannot create container dir '%s'", m.dir);
        meta_release(&m);
        return -1;
    }
    if (spec->dir && symlink(m.dir, index) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot link '%s'", index);
        rmdir(m.dir);
        meta_release(&m);
        return -1;
    }
    m.overlay = spec->layers != NULL;
    if (m.overlay) {
        m.rootfs = barge_xasprintf("%s/rootfs", m.dir);
    } else {
        m.rootfs = realpath(spec->rootfs, NULL);
        if (!m.rootfs)
            m.rootfs = barge_xstrdup(spec->rootfs); /* fails below with a clear message */
    }
    m.log_path =
        spec->log_path ? barge_xstrdup(spec->log_path) : barge_xasprintf("%s/ctr.log", m.dir);
    m.runtime = barge_xstrdup(rt->path);
    m.root = barge_xstrdup(rt->root);
    m.cgroup = barge_xasprintf(
        "%s/%s", spec->cgroup_parent ? spec->cgroup_parent : rt->cgroup_parent, spec->id);
    m.stop_signal = spec->stop_signal ? spec->stop_signal : SIGTERM;
    m.created_at = barge_now();

    _cleanup_json_ json_t *cfg = NULL;
    _cleanup_free_ char *cfg_path = barge_xasprintf("%s/config.json", m.dir);
    _cleanup_free_ char *cfg_text = NULL;
    _cleanup_free_ char *cp = barge_xasprintf("%s/conmon.pid", m.dir);
    _cleanup_free_ char *cps = NULL;
    /* barge.json goes first so that a crash from here on leaves a container
     * that list() shows and delete() can clean up. */
    if (meta_save(&m, err) < 0)
        goto fail;
    if (m.overlay) {
        if (mkdir(m.rootfs, 0755) < 0 || mount_overlay(spec, m.dir, m.rootfs, err) < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", m.rootfs);
            goto fail;
        }
    } else if (stat(m.rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
        barge_error_set(err, BARGE_ERR_INVALID, "rootfs '%s' is not a directory", spec->rootfs);
        goto fail;
    }
    if (spec->log_path) {
        _cleanup_free_ char *d = barge_xstrdup(spec->log_path);
        *strrchr(d, '/') = '\0';
        if (*d && barge_mkdir_p(d, 0755) < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot create log dir '%s'", d);
            goto fail;
        }
    }
    if (barge_rt_etc_files_write(spec, m.dir, err) < 0)
        goto fail;
    cfg = barge_runtime_config_new(spec, m.rootfs, m.dir, rt->cgroup_parent, rt->host_caps, err);
    if (!cfg)
        goto fail;
    /* Not fsynced: a bundle is worthless after a reboot anyway, and a crash
     * of our process does not lose the page cache. */
    cfg_text = barge_json_dump(cfg);
    if (barge_rt_write_file(cfg_path, cfg_text, strlen(cfg_text), 0600) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", cfg_path);
        goto fail;
    }
    int64_t t1 = barge_monotonic_ms();
    if (spawn_conmon(rt, &m, spec->log_size_max, &m.pid, err) < 0)
        goto fail;
    cps = barge_read_file(cp, NULL);
    m.conmon_pid = cps ? (pid_t)atoi(cps) : 0;
    if (meta_save(&m, err) < 0)
        goto fail;
    barge_debug("runtime: created '%s' (pid %d, conmon %d): bundle %" PRId64 " ms, conmon+%s "
                "create %" PRId64 " ms",
                m.id, (int)m.pid, (int)m.conmon_pid, t1 - t0, rt->name, barge_monotonic_ms() - t1);
    meta_release(&m);
    return 0;
fail:
    barge_error_wrap(err, "creating container '%s'", spec->id);
    {
        struct barge_error *e2 = NULL;
        if (teardown(rt, &m, &e2) < 0) {
            barge_warn("runtime: cleaning up after a failed create of '%s': %s", m.id, e2->message);
            barge_error_free(e2);
        }
    }
    meta_release(&m);
    return -1;
}

int barge_runtime_start(struct barge_runtime *rt, const char *id, struct barge_error **err)
{
    struct meta m;
    if (meta_load(rt, id, &m, err) < 0)
        return -1;
    int rc = runtime_cmd(m.runtime, m.root, (const char *[]){"start", id, NULL}, NULL, err);
    if (rc == 0) {
        m.started_at = barge_now();
        rc = meta_save(&m, err);
    } else {
        barge_error_wrap(err, "starting container '%s'", id);
    }
    meta_release(&m);
    return rc;
}

int barge_runtime_run(struct barge_runtime *rt, const struct barge_runtime_spec *spec,
                      struct barge_error **err)
{
    if (barge_runtime_create(rt, spec, err) < 0)
        return -1;
    if (barge_runtime_start(rt, spec->id, err) == 0)
        return 0;
    struct barge_error *e2 = NULL;
    if (barge_runtime_delete(rt, spec->id, true, &e2) < 0) {
        barge_warn("runtime: deleting '%s' after a failed start: %s", spec->id, e2->message);
        barge_error_free(e2);
    }
    return -1;
}

/* ---- state ---- */

static double mtime_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    return (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
}

/* conmon's exit file (written by temporary name and rename, so it is whole
 * when it is there). Returns true and fills s when it is there. */
static bool read_exit_file(const char *path, struct barge_runtime_state *s)
{
    _cleanup_free_ char *code = barge_read_file(path, NULL);
    if (!code)
        return false;
    s->status = BARGE_RUNTIME_EXITED;
    s->exit_code = atoi(code);
    s->finished_at = mtime_of(path);
    return true;
}

static void state_of(struct barge_runtime *rt, const struct meta *m, struct barge_runtime_state *s)
{
    memset(s, 0, sizeof(*s));
    s->pid = m->pid;
    s->conmon_pid = m->conmon_pid;
    s->exit_code = -1;
    s->created_at = m->created_at;
    s->started_at = m->started_at;
    _cleanup_free_ char *exit_path = barge_xasprintf("%s/exit", m->dir);
    _cleanup_free_ char *oom_path = barge_xasprintf("%s/oom", m->dir);
    s->oom_killed = access(oom_path, F_OK) == 0;

    /* The exit file is looked at again once conmon is seen gone: conmon
     * writes it and then exits, and both may happen between the first look
     * and the liveness check (a preempted agent thread is enough). Without
     * the second look such a container counted as exited without a code. */
    if (read_exit_file(exit_path, s)) {
        /* exited, with its code */
    } else if (conmon_alive(m->conmon_pid, m->id)) {
        s->status = BARGE_RUNTIME_RUNNING;
        if (m->started_at == 0) {
            /* We may have died between `start` and recording it. */
            _cleanup_free_ char *st = runtime_status(m);
            s->status =
                st && strcmp(st, "created") == 0 ? BARGE_RUNTIME_CREATED : BARGE_RUNTIME_RUNNING;
        }
    } else if (read_exit_file(exit_path, s)) {
        /* conmon wrote it and left since the first look */
    } else {
        /* conmon is gone without writing the exit file (killed, or the
         * machine rebooted): only the runtime knows now. */
        _cleanup_free_ char *st = runtime_status(m);
        if (st && (strcmp(st, "running") == 0 || strcmp(st, "paused") == 0)) {
            barge_warn("runtime: container '%s' runs without its conmon", m->id);
            s->status = BARGE_RUNTIME_RUNNING;
        } else if (st && strcmp(st, "created") == 0) {
            s->status = BARGE_RUNTIME_CREATED;
        } else {
            s->status = BARGE_RUNTIME_EXITED;
            s->finished_at = 0;
        }
    }
    if (s->status == BARGE_RUNTIME_EXITED && !s->oom_killed)
        s->oom_killed = barge_rt_cgroup_oom_killed(&rt->cg, m->cgroup);
}

int barge_runtime_state(struct barge_runtime *rt, const char *id, struct barge_runtime_state *out,
                        struct barge_error **err)
{
    struct meta m;
    if (meta_load(rt, id, &m, err) < 0)
        return -1;
    state_of(rt, &m, out);
    meta_release(&m);
    return 0;
}

/* Waits for conmon (or, without one, the container's init) to exit. */
static void wait_exit(const struct meta *m, int64_t deadline)
{
    pid_t pids[2] = {m->conmon_pid, m->pid};
    for (int i = 0; i < 2; i++) {
        if (pids[i] <= 0)
            continue;
        _cleanup_close_ int fd = barge_rt_pidfd_open(pids[i]);
        if (fd < 0)
            continue;
        /* Checked after opening: from here on the pidfd pins the process. */
        if (i == 0 && !conmon_alive(pids[i], m->id))
            continue;
        barge_rt_pidfd_wait(fd, deadline);
        return;
    }
}

int barge_runtime_wait(struct barge_runtime *rt, const char *id, int timeout_ms,
                       struct barge_runtime_state *out, struct barge_error **err)
{
    struct meta m;
    if (meta_load(rt, id, &m, err) < 0)
        return -1;
    int64_t deadline = timeout_ms < 0 ? -1 : barge_monotonic_ms() + timeout_ms;
    state_of(rt, &m, out);
    if (out->status != BARGE_RUNTIME_EXITED) {
        wait_exit(&m, deadline);
        state_of(rt, &m, out);
    }
    meta_release(&m);
    return 0;
}

/* ---- kill / stop / delete ---- */

static int kill_meta(const struct meta *m, int sig, struct barge_error **err)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", sig);
    return runtime_cmd(m->runtime, m->root, (const char *[]){"kill", m->id, num, NULL}, NULL, err);
}

int barge_runtime_kill(struct barge_runtime *rt, const char *id, int signal,
                       struct barge_error **err)
{
    struct meta m;
    if (meta_load(rt, id, &m, err) < 0)
        return -1;
    struct barge_runtime_state s;
    state_of(rt, &m, &s);
    int rc;
    if (s.status == BARGE_RUNTIME_EXITED)
        rc = barge_error_set(err, BARGE_ERR_CONFLICT, "container '%s' is not running", id);
    else
        rc = kill_meta(&m, signal, err);
    meta_release(&m);
    return rc;
}

int barge_runtime_stop(struct barge_runtime *rt, const char *id, int signal, int timeout_ms,
                       struct barge_runtime_state *out, struct barge_error **err)
{
    struct meta m;
    if (meta_load(rt, id, &m, err) < 0)
        return -1;
    struct barge_runtime_state s;
    int rc = 0;
    state_of(rt, &m, &s);
    if (s.status != BARGE_RUNTIME_EXITED) {
        /* A created container's init is the runtime's stub, which has no
         * business handling the stop signal: only SIGKILL means anything. */
        int sig = s.status == BARGE_RUNTIME_CREATED ? SIGKILL : (signal ? signal : m.stop_signal);
        struct barge_error *e = NULL;
        if (kill_meta(&m, sig, &e) < 0) {
            /* It may have exited between our look and the signal. Its conmon
             * may still be on the way to writing the exit file then: wait for
             * conmon rather than take the exit for one without a code. */
            state_of(rt, &m, &s);
            if (s.status != BARGE_RUNTIME_EXITED) {
                _cleanup_free_ char *st = runtime_status(&m);
                if (st && strcmp(st, "stopped") == 0) {
                    wait_exit(&m, barge_monotonic_ms() + (timeout_ms < 0 ? 0 : timeout_ms));
                    state_of(rt, &m, &s);
                }
            }
            if (s.status != BARGE_RUNTIME_EXITED) {
                rc = -1;
                if (err && !*err)
                    *err = e;
                else
                    barge_error_free(e);
                goto out;
            }
            barge_error_free(e);
        }
        wait_exit(&m, barge_monotonic_ms() + (timeout_ms < 0 ? 0 : timeout_ms));
        state_of(rt, &m, &s);
        if (s.status != BARGE_RUNTIME_EXITED && sig != SIGKILL) {
            barge_info("runtime: container '%s' ignored signal %d for %d ms, sending SIGKILL", id,
                       sig, timeout_ms);
            e = NULL;
            if (kill_meta(&m, SIGKILL, &e) < 0)
                barge_error_free(e);
            wait_exit(&m, barge_monotonic_ms() + DELETE_KILL_WAIT_MS);
            state_of(rt, &m, &s);
        }
        if (s.status != BARGE_RUNTIME_EXITED)
            rc =
                barge_error_set(err, BARGE_ERR_IO, "container '%s' did not exit after SIGKILL", id);
    }
out:
    if (out)
        *out = s;
    meta_release(&m);
    return rc;
}

static int teardown(struct barge_runtime *rt, struct meta *m, struct barge_error **err)
{
    int rc = 0;
    struct barge_error *e = NULL;
    /* The runtime's state and (for a clean exit) the container's cgroup. */
    if (runtime_cmd(m->runtime, m->root, (const char *[]){"delete", "--force", m->id, NULL}, NULL,
                    &e) < 0) {
        /* Usually "does not exist": a failed create, or a runtime state lost
         * with a reboot. What is left is removed below either way. */
        barge_debug("runtime: %s", e->message);
        barge_error_free(e);
        e = NULL;
    }
    /* conmon exits once the container is gone; wait so that it has written
     * its files before we remove the directory under it. */
    if (conmon_alive(m->conmon_pid, m->id)) {
        _cleanup_close_ int fd = barge_rt_pidfd_open(m->conmon_pid);
        if (fd >= 0 && barge_rt_pidfd_wait(fd, barge_monotonic_ms() + DELETE_KILL_WAIT_MS) == 0 &&
            conmon_alive(m->conmon_pid, m->id)) {
            barge_warn("runtime: conmon %d of '%s' did not exit, killing it", (int)m->conmon_pid,
                       m->id);
            kill(m->conmon_pid, SIGKILL);
            barge_rt_pidfd_wait(fd, barge_monotonic_ms() + DELETE_KILL_WAIT_MS);
        }
    }
    if (m->overlay && m->rootfs) {
        if (umount2(m->rootfs, 0) < 0 && errno != EINVAL && errno != ENOENT &&
            umount2(m->rootfs, MNT_DETACH) < 0 && errno != EINVAL) {
            rc = barge_error_set_errno(err, BARGE_ERR_IO, "cannot unmount '%s'", m->rootfs);
        }
    }
    if (m->cgroup && barge_rt_cgroup_remove(&rt->cg, m->cgroup, &e) < 0) {
        rc = -1;
        if (err && !*err)
            *err = e;
        else
            barge_error_free(e);
        e = NULL;
    }
    _cleanup_free_ char *exit_file = barge_xasprintf("%s/%s", rt->exit_dir, m->id);
    unlink(exit_file);
    if (m->dir && remove_tree(m->dir) < 0)
        rc = barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove '%s'", m->dir);
    _cleanup_free_ char *index = index_path(rt, m->id);
    struct stat st;
    if (lstat(index, &st) == 0 && S_ISLNK(st.st_mode))
        unlink(index);
    return rc;
}

int barge_runtime_delete(struct barge_runtime *rt, const char *id, bool force,
                         struct barge_error **err)
{
    struct meta m;
    struct barge_error *e = NULL;
    if (meta_load(rt, id, &m, &e) < 0) {
        /* A create that died before writing barge.json leaves only its
         * directory; that is ours to remove. */
        _cleanup_free_ char *index = index_path(rt, id ? id : "");
        struct stat st;
        if (e->code == BARGE_ERR_NOT_FOUND && barge_rt_id_valid(id) && lstat(index, &st) == 0) {
            barge_error_free(e);
            if (remove_tree(index) < 0)
                return barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove '%s'", index);
            return 0;
        }
        if (err && !*err)
            *err = e;
        else
            barge_error_free(e);
        return -1;
    }
    struct barge_runtime_state s;
    state_of(rt, &m, &s);
    int rc = 0;
    if (s.status != BARGE_RUNTIME_EXITED) {
        if (!force) {
            rc = barge_error_set(err, BARGE_ERR_CONFLICT, "container '%s' is %s", id,
                                 barge_runtime_status_name(s.status));
            goto out;
        }
        if (kill_meta(&m, SIGKILL, &e) < 0) {
            barge_error_free(e);
            e = NULL;
        }
        wait_exit(&m, barge_monotonic_ms() + DELETE_KILL_WAIT_MS);
    }
    rc = teardown(rt, &m, err);
    if (rc < 0)
        barge_error_wrap(err, "deleting container '%s'", id);
out:
    meta_release(&m);
    return rc;
}

/* ---- list ---- */

int barge_runtime_list(struct barge_runtime *rt, struct barge_runtime_info **out, size_t *n,
                       struct barge_error **err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(rt->containers_dir);
    if (!d)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", rt->containers_dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !barge_rt_id_valid(de->d_name))
            continue;
        struct meta m;
        struct barge_error *e = NULL;
        if (meta_load(rt, de->d_name, &m, &e) < 0) {
            barge_warn("runtime: skipping '%s': %s", de->d_name, e->message);
            barge_error_free(e);
            continue;
        }
        *out = barge_xrealloc(*out, (*n + 1) * sizeof(**out));
        struct barge_runtime_info *info = &(*out)[(*n)++];
        info->id = barge_xstrdup(m.id);
        info->dir = barge_xstrdup(m.dir);
        info->log_path = barge_xstrdup(m.log_path);
        state_of(rt, &m, &info->state);
        meta_release(&m);
    }
    closedir(d);
    return 0;
}

void barge_runtime_info_free(struct barge_runtime_info *infos, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(infos[i].id);
        free(infos[i].dir);
        free(infos[i].log_path);
    }
    free(infos);
}

/* ---- exec ---- */

/* `<runtime> --root R exec --pid-file P [--tty --env TERM=xterm] -- id
 * argv...`; the caller frees the array, not its strings. */
static const char **exec_argv(const struct meta *m, const char *pidfile, const char *const *argv,
                              bool tty)
{
    size_t argc = 0;
    while (argv[argc])
        argc++;
    const char **full = barge_xcalloc(argc + 12, sizeof(char *));
    size_t n = 0;
    full[n++] = m->runtime;
    full[n++] = "--root";
    full[n++] = m->root;
    full[n++] = "exec";
    full[n++] = "--pid-file";
    full[n++] = pidfile;
    if (tty) {
        /* The runtime makes the container's terminal and copies between it
         * and ours; programs need TERM to drive it. */
        full[n++] = "--tty";
        full[n++] = "--env";
        full[n++] = "TERM=xterm";
    }
    full[n++] = "--"; /* the command's own options are not the runtime's */
    full[n++] = m->id;
    for (size_t i = 0; i < argc; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    return full;
}

/* Loads the container's meta and checks that it runs. */
static int exec_target(struct barge_runtime *rt, const char *id, const char *const *argv,
                       struct meta *m, struct barge_error **err)
{
    if (!argv || !argv[0])
        return barge_error_set(err, BARGE_ERR_INVALID, "exec in '%s' without a command",
                               id ? id : "");
    if (meta_load(rt, id, m, err) < 0)
        return -1;
    struct barge_runtime_state s;
    state_of(rt, m, &s);
    if (s.status != BARGE_RUNTIME_RUNNING) {
        barge_error_set(err, BARGE_ERR_CONFLICT, "container '%s' is %s", id,
                        barge_runtime_status_name(s.status));
        meta_release(m);
        return -1;
    }
    return 0;
}

int barge_runtime_exec(struct barge_runtime *rt, const char *id, const char *const *argv,
                       int timeout_ms, struct barge_runtime_exec_result *out,
                       struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    out->exit_code = -1;
    struct meta m;
    if (exec_target(rt, id, argv, &m, err) < 0)
        return -1;
    int rc = -1;
    char rnd[33];
    barge_id_hex32(rnd);
    _cleanup_free_ char *pidfile = barge_xasprintf("%s/exec-%.8s.pid", m.dir, rnd);
    _cleanup_free_ const char **full = exec_argv(&m, pidfile, argv, false);

    struct barge_rt_child c;
    struct barge_rt_spawn_opts o = {
        .argv = full,
        .capture_out = true,
        .merge_err = true,
        .pass_fd = -1,
        .cap = EXEC_OUTPUT_MAX,
    };
    int64_t deadline = timeout_ms < 0 ? -1 : barge_monotonic_ms() + timeout_ms;
    if (barge_rt_child_spawn(&c, &o, err) < 0)
        goto out;
    int r = barge_rt_child_wait(&c, deadline, err);
    if (r < 0) {
        barge_rt_child_release(&c);
        goto out;
    }
    if (r == 0) {
        /* The runtime has not reaped the command while it runs itself, so the
         * pid in the pidfile is still that command. */
        _cleanup_free_ char *p = barge_read_file(pidfile, NULL);
        if (p && atoi(p) > 0)
            kill(atoi(p), SIGKILL);
        if (barge_rt_child_wait(&c, barge_monotonic_ms() + 5000, err) == 0)
            kill(c.pid, SIGKILL);
        out->timed_out = true;
    } else {
        out->exit_code = c.status;
    }
    out->output = barge_steal(&c.out.data);
    if (!out->output)
        out->output = barge_xstrdup("");
    barge_rt_child_release(&c);
    rc = 0;
out:
    unlink(pidfile);
    meta_release(&m);
    return rc;
}

struct barge_runtime_exec_proc {
    struct barge_rt_child child;
    int tty; /* the terminal's master end, or -1 */
    char *pidfile;
};

int barge_runtime_exec_open(struct barge_runtime *rt, const char *id, const char *const *argv,
                            bool tty, unsigned rows, unsigned cols,
                            struct barge_runtime_exec_proc **out, struct barge_error **err)
{
    *out = NULL;
    struct meta m;
    if (exec_target(rt, id, argv, &m, err) < 0)
        return -1;
    struct barge_runtime_exec_proc *p = barge_xcalloc(1, sizeof(*p));
    p->tty = -1;
    char rnd[33];
    barge_id_hex32(rnd);
    p->pidfile = barge_xasprintf("%s/exec-%.8s.pid", m.dir, rnd);
    _cleanup_free_ const char **full = exec_argv(&m, p->pidfile, argv, tty);
    _cleanup_free_ char *slave = NULL;
    _cleanup_close_ int slave_fd = -1;
    int rc = -1;
    if (tty) {
        p->tty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (p->tty < 0 || grantpt(p->tty) < 0 || unlockpt(p->tty) < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot open a pseudo-terminal");
            goto out;
        }
        char name[128];
        if (ptsname_r(p->tty, name, sizeof(name)) != 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot name a pseudo-terminal");
            goto out;
        }
        slave = barge_xstrdup(name);
        /* The runtime's own terminal in the container does the line
         * discipline; ours only carries bytes (the runtime makes it raw
         * too, but output may come before it does). Set on our end of the
         * slave, held open until the child has it. */
        slave_fd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
        struct termios t;
        if (slave_fd < 0 || tcgetattr(slave_fd, &t) < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s'", slave);
            goto out;
        }
        cfmakeraw(&t);
        tcsetattr(slave_fd, TCSANOW, &t);
        fcntl(p->tty, F_SETFL, O_NONBLOCK);
        barge_runtime_exec_proc_resize(p, rows, cols);
    }
    struct barge_rt_spawn_opts o = {
        .argv = full,
        .capture_out = true,
        .capture_err = true,
        .pipe_in = true,
        .tty_path = slave,
        .pass_fd = -1,
    };
    if (barge_rt_child_spawn(&p->child, &o, err) < 0)
        goto out;
    rc = 0;
out:
    meta_release(&m);
    if (rc < 0) {
        if (p->tty >= 0)
            close(p->tty);
        free(p->pidfile);
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

int barge_runtime_exec_proc_input(const struct barge_runtime_exec_proc *p)
{
    return p->tty >= 0 ? p->tty : p->child.in_fd;
}

int barge_runtime_exec_proc_output(const struct barge_runtime_exec_proc *p)
{
    return p->tty >= 0 ? p->tty : p->child.out_fd;
}

int barge_runtime_exec_proc_errput(const struct barge_runtime_exec_proc *p)
{
    return p->tty >= 0 ? -1 : p->child.err_fd;
}

int barge_runtime_exec_proc_exitfd(const struct barge_runtime_exec_proc *p)
{
    return p->child.reaped ? -1 : p->child.pidfd;
}

void barge_runtime_exec_proc_close_input(struct barge_runtime_exec_proc *p)
{
    if (p->child.in_fd >= 0) {
        close(p->child.in_fd);
        p->child.in_fd = -1;
    }
}

void barge_runtime_exec_proc_resize(struct barge_runtime_exec_proc *p, unsigned rows, unsigned cols)
{
    if (p->tty < 0 || rows == 0 || cols == 0 || rows > 0xffff || cols > 0xffff)
        return;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(p->tty, TIOCSWINSZ, &ws);
}

int barge_runtime_exec_proc_reap(struct barge_runtime_exec_proc *p)
{
    if (!p->child.reaped) {
        /* Only the child's status is wanted: what is left in its pipes
         * the caller has read or does not want. */
        int ws;
        while (waitpid(p->child.pid, &ws, 0) < 0 && errno == EINTR)
            ;
        p->child.reaped = true;
        p->child.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    }
    return p->child.status;
}

void barge_runtime_exec_proc_free(struct barge_runtime_exec_proc *p)
{
    if (!p)
        return;
    if (!p->child.reaped) {
        /* The runtime waits for the command while it runs itself, so the
         * pid in the file is still the command's. */
        _cleanup_free_ char *pid = barge_read_file(p->pidfile, NULL);
        if (pid && atoi(pid) > 0)
            kill(atoi(pid), SIGKILL);
    }
    barge_rt_child_release(&p->child);
    if (p->tty >= 0)
        close(p->tty);
    unlink(p->pidfile);
    free(p->pidfile);
    free(p);
}

/* ---- cgroups ---- */

int barge_runtime_stats(struct barge_runtime *rt, const char *id, struct barge_runtime_stats *out,
                        struct barge_error **err)
{
    struct meta m;
    if (meta_load(rt, id, &m, err) < 0)
        return -1;
    int rc = barge_rt_cgroup_stats(&rt->cg, m.cgroup, out, err);
    meta_release(&m);
    return rc;
}

int barge_runtime_cgroup_remove(struct barge_runtime *rt, const char *cgroup_path,
                                struct barge_error **err)
{
    return barge_rt_cgroup_remove(&rt->cg, cgroup_path, err);
}
