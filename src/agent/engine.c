/* The task engine: one runner thread per task takes it from the manifest
 * barged sent to running containers and back to nothing. A runner pulls the
 * images, creates and starts the containers, reports each step, watches for
 * exits (woken by an inotify watch on conmon's exit directory), stops the task
 * when an essential container exits or barged asks, and cleans up once
 * STOPPED is reported. Everything a restarted agent needs to adopt a running
 * task is checkpointed before the task is reported RUNNING. */
#include <sys/inotify.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

struct ctr {
    char *name;
    char id[80]; /* runtime id: "<task id>-<index>" */
    bool essential;
    int stop_timeout;
    bool created;
    bool exited;
    int exit_code;
    bool oom;
    char *reason;
};

struct runner {
    struct barge_engine *e;
    char *arn;
    char *task_id;
    json_t *manifest;  /* latest manifest; guarded by e->lock */
    json_int_t version; /* barged's version of the task we last saw */
    bool want_stop;    /* barged wants it STOPPED, or no longer lists it */
    bool adopted;      /* re-created from a checkpoint */
    json_t *checkpoint;
    struct ctr *ctrs;
    size_t n_ctrs;
    bool finished;
    double pull_started, pull_stopped; /* epoch seconds, 0 until known */
    pthread_t thread;
    struct runner *next;
};

struct barge_engine {
    struct barge_agent *agent;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a container exited, or a desired state changed */
    struct runner *runners;
    bool shutting_down;
    int inotify_fd;
    pthread_t watcher;
    int wake_pipe[2];
};

/* --- exits ------------------------------------------------------------- */

static void *watch_exits(void *ud)
{
    struct barge_engine *e = ud;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        struct pollfd pfd[2] = {{e->inotify_fd, POLLIN, 0}, {e->wake_pipe[0], POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            break;
        if (pfd[0].revents) {
            ssize_t r = read(e->inotify_fd, buf, sizeof(buf));
            (void)r;
            pthread_mutex_lock(&e->lock);
            pthread_cond_broadcast(&e->changed);
            pthread_mutex_unlock(&e->lock);
        }
    }
    return NULL;
}

static void wait_for_change(struct barge_engine *e, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->lock);
    pthread_cond_timedwait(&e->changed, &e->lock, &ts);
    pthread_mutex_unlock(&e->lock);
}

/* --- reports ----------------------------------------------------------- */

static json_t *container_report(const struct ctr *c, const char *status)
{
    json_t *r = json_pack("{s:s, s:s}", "name", c->name, "lastStatus", status);
    if (c->created)
        json_object_set_new(r, "runtimeId", json_string(c->id));
    if (c->exited && c->exit_code >= 0)
        json_object_set_new(r, "exitCode", json_integer(c->exit_code));
    if (c->reason)
        json_object_set_new(r, "reason", json_string(c->reason));
    return r;
}

/* Sends the task's state; extra (stolen, may be NULL) adds fields. */
static void report(struct runner *r, const char *status, const char *stop_code,
                   const char *reason, json_t *extra)
{
    json_t *rep = json_pack("{s:s, s:s, s:[]}", "taskArn", r->arn, "status", status, "containers");
    json_t *list = json_object_get(rep, "containers");
    for (size_t i = 0; i < r->n_ctrs; i++) {
        const struct ctr *c = &r->ctrs[i];
        const char *cs = c->exited ? "STOPPED" : strcmp(status, "RUNNING") == 0 ? "RUNNING"
                         : strcmp(status, "STOPPED") == 0                       ? "STOPPED"
                         : c->created                                            ? "RUNNING"
                                                                                 : "PENDING";
        json_array_append_new(list, container_report(c, cs));
    }
    if (stop_code)
        json_object_set_new(rep, "stopCode", json_string(stop_code));
    if (reason)
        json_object_set_new(rep, "stoppedReason", json_string(reason));
    if (r->pull_started > 0)
        json_object_set_new(rep, "pullStartedAt", json_real(r->pull_started));
    if (r->pull_stopped > 0)
        json_object_set_new(rep, "pullStoppedAt", json_real(r->pull_stopped));
    if (extra) {
        json_object_update(rep, extra);
        json_decref(extra);
    }
    barge_agent_report(r->e->agent, rep);
    json_decref(rep);
}

static void checkpoint(struct runner *r, const char *phase)
{
    json_t *ctrs = json_array();
    for (size_t i = 0; i < r->n_ctrs; i++)
        json_array_append_new(ctrs, json_pack("{s:s, s:s, s:b, s:i, s:b}", "name",
                                              r->ctrs[i].name, "id", r->ctrs[i].id, "essential",
                                              r->ctrs[i].essential, "stopTimeout",
                                              r->ctrs[i].stop_timeout, "created",
                                              r->ctrs[i].created));
    json_t *v = json_pack("{s:s, s:s, s:o}", "taskId", r->task_id, "phase", phase, "containers",
                          ctrs);
    barge_agent_checkpoint_task(r->e->agent, r->arn, v);
    json_decref(v);
}

/* --- building containers ------------------------------------------------ */

struct strv {
    char **v;
    size_t n;
};

static void strv_add(struct strv *s, char *owned)
{
    s->v = barge_xrealloc(s->v, (s->n + 2) * sizeof(char *));
    s->v[s->n++] = owned;
    s->v[s->n] = NULL;
}

static void strv_free(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static const char *const *strv_get(struct strv *s)
{
    if (!s->v)
        strv_add(s, NULL), s->n = 0;
    return (const char *const *)s->v;
}

static void add_json_strings(struct strv *s, const json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v)
    {
        if (json_is_string(v))
            strv_add(s, barge_xstrdup(json_string_value(v)));
    }
}

/* Image Env, then the task definition's environment, the later winning. */
static void build_env(struct strv *env, const json_t *img_cfg, const json_t *cdef)
{
    json_t *merged = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(img_cfg, "Env"), i, v)
    {
        const char *kv = json_string_value(v);
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (!eq)
            continue;
        _cleanup_free_ char *k = barge_xstrndup(kv, (size_t)(eq - kv));
        json_object_set_new(merged, k, json_string(eq + 1));
    }
    json_array_foreach(barge_json_array(cdef, "environment"), i, v)
    {
        const char *name = barge_json_str(v, "name", NULL);
        if (name)
            json_object_set_new(merged, name, json_string(barge_json_str(v, "value", "")));
    }
    const char *k;
    json_object_foreach(merged, k, v)
    {
        strv_add(env, barge_xasprintf("%s=%s", k, json_string_value(v)));
    }
    json_decref(merged);
}

static int pull_image(struct runner *r, const char *image, struct barge_image **out,
                      struct barge_error **err)
{
    struct barge_image_pull_opts opts = r->e->agent->pull;
    struct barge_image_ref ref;
    _cleanup_free_ char *user = NULL, *password = NULL;
    if (barge_image_ref_parse(image, &ref, NULL) == 0) {
        /* Images in barged's own registry: log in as ECR users' agents do. */
        if (barge_agent_registry_credentials(r->e->agent, ref.domain, &user, &password)) {
            opts.username = user;
            opts.password = password;
        }
        barge_image_ref_release(&ref);
    }
    return barge_image_pull(&opts, image, out, err);
}

static int create_container(struct runner *r, size_t idx, const json_t *td, const json_t *cdef,
                            const struct barge_image *img, struct barge_error **err)
{
    struct barge_agent *a = r->e->agent;
    struct ctr *c = &r->ctrs[idx];
    const json_t *img_cfg = barge_json_object(img->config, "config");
    struct strv argv = {0}, env = {0}, layers = {0}, cap_add = {0}, cap_drop = {0};
    json_t *ep = barge_json_array(cdef, "entryPoint");
    json_t *cmd = barge_json_array(cdef, "command");
    add_json_strings(&argv, ep ? ep : barge_json_array(img_cfg, "Entrypoint"));
    if (cmd)
        add_json_strings(&argv, cmd);
    else if (!ep)
        add_json_strings(&argv, barge_json_array(img_cfg, "Cmd"));
    if (argv.n == 0) {
        strv_free(&argv);
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "CannotStartContainerError: container '%s' has no command: the "
                               "image sets none and the task definition gives no command or "
                               "entryPoint",
                               c->name);
    }
    build_env(&env, img_cfg, cdef);
    for (size_t i = img->n_layers; i > 0; i--)
        strv_add(&layers, barge_xstrdup(img->layers[i - 1]));
    json_t *caps = barge_json_object(barge_json_object(cdef, "linuxParameters"), "capabilities");
    add_json_strings(&cap_add, barge_json_array(caps, "add"));
    add_json_strings(&cap_drop, barge_json_array(caps, "drop"));

    size_t n_ul = json_array_size(barge_json_array(cdef, "ulimits"));
    struct barge_runtime_ulimit *ul = barge_xcalloc(n_ul + 1, sizeof(*ul));
    size_t i;
    json_t *u;
    json_array_foreach(barge_json_array(cdef, "ulimits"), i, u)
    {
        ul[i].name = barge_json_str(u, "name", "");
        ul[i].soft = (uint64_t)barge_json_int(u, "softLimit", 0);
        ul[i].hard = (uint64_t)barge_json_int(u, "hardLimit", 0);
    }
    json_t *lp = barge_json_object(cdef, "linuxParameters");
    size_t n_tmpfs = json_array_size(barge_json_array(lp, "tmpfs"));
    struct barge_runtime_mount *mounts = barge_xcalloc(n_tmpfs + 1, sizeof(*mounts));
    json_array_foreach(barge_json_array(lp, "tmpfs"), i, u)
    {
        mounts[i].type = BARGE_RUNTIME_MOUNT_TMPFS;
        mounts[i].destination = barge_json_str(u, "containerPath", "/tmp");
        mounts[i].size = (uint64_t)barge_json_int(u, "size", 0) * 1024 * 1024;
    }

    json_int_t mem = barge_json_int(cdef, "memory", 0);
    if (!mem && json_array_size(barge_json_array(td, "containerDefinitions")) == 1)
        mem = atoll(barge_json_str(td, "memory", "0"));
    json_int_t cpu = barge_json_int(cdef, "cpu", 0);
    _cleanup_free_ char *log_dir = barge_xasprintf("%s/logs/%s", a->cfg.data_dir, r->task_id);
    barge_mkdir_p(log_dir, 0700);
    _cleanup_free_ char *log_path = barge_xasprintf("%s/%s.log", log_dir, c->name);
    _cleanup_free_ char *cgroup = barge_xasprintf("/barge/task-%s", r->task_id);
    const char *mode = barge_json_str(td, "networkMode", "bridge");
    const char *user = barge_json_str(cdef, "user", barge_json_str(img_cfg, "User", NULL));
    if (user && !*user)
        user = NULL;
    const char *cwd = barge_json_str(cdef, "workingDirectory",
                                     barge_json_str(img_cfg, "WorkingDir", NULL));
    if (cwd && !*cwd)
        cwd = NULL;
    struct barge_runtime_spec spec = {
        .id = c->id,
        .layers = strv_get(&layers),
        .argv = strv_get(&argv),
        .env = strv_get(&env),
        .cwd = cwd,
        .user = user,
        .hostname = barge_json_str(cdef, "hostname", NULL),
        .cpu_shares = (uint64_t)(cpu < 2 ? 2 : cpu),
        .memory_limit = (uint64_t)mem * 1024 * 1024,
        .memory_reservation = (uint64_t)barge_json_int(cdef, "memoryReservation", 0) * 1024 * 1024,
        .pids_limit = 4096,
        .ulimits = ul,
        .n_ulimits = n_ul,
        .readonly_rootfs = barge_json_bool(cdef, "readonlyRootFilesystem", false),
        .cap_add = strv_get(&cap_add),
        .cap_drop = strv_get(&cap_drop),
        .mounts = mounts,
        .n_mounts = n_tmpfs,
        .shm_size = (uint64_t)barge_json_int(lp, "sharedMemorySize", 0) * 1024 * 1024,
        .host_network = strcmp(mode, "host") == 0,
        .log_path = log_path,
        .cgroup_parent = cgroup,
    };
    int ret = barge_runtime_run(a->rt, &spec, err);
    if (ret == 0)
        c->created = true;
    free(ul);
    free(mounts);
    strv_free(&argv);
    strv_free(&env);
    strv_free(&layers);
    strv_free(&cap_add);
    strv_free(&cap_drop);
    return ret;
}

/* --- the runner -------------------------------------------------------- */

static bool should_stop(struct runner *r)
{
    pthread_mutex_lock(&r->e->lock);
    bool s = r->want_stop;
    pthread_mutex_unlock(&r->e->lock);
    return s;
}

static bool shutting_down(struct runner *r)
{
    pthread_mutex_lock(&r->e->lock);
    bool s = r->e->shutting_down;
    pthread_mutex_unlock(&r->e->lock);
    return s || barge_agent_stopping();
}

/* Refreshes each container's exit state; returns true when an essential one
 * has exited (its name in *which). */
static bool refresh_exits(struct runner *r, const char **which)
{
    bool essential_exit = false;
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        if (!c->created || c->exited)
            continue;
        struct barge_runtime_state st;
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_runtime_state(r->e->agent->rt, c->id, &st, &err) < 0) {
            /* The container is gone (e.g. the host rebooted): it exited. */
            c->exited = true;
            c->exit_code = -1;
            free(c->reason);
            c->reason = barge_xasprintf("CannotInspectContainerError: %s", err->message);
        } else if (st.status == BARGE_RUNTIME_EXITED) {
            c->exited = true;
            c->exit_code = st.exit_code;
            if (st.oom_killed) {
                free(c->reason);
                c->reason = barge_xstrdup("OutOfMemoryError: Container killed due to memory "
                                          "usage");
            }
        } else {
            continue;
        }
        barge_info("task %s: container %s exited with %d%s", r->task_id, c->name, c->exit_code,
                   st.oom_killed ? " (OOM)" : "");
        if (c->essential && !essential_exit) {
            essential_exit = true;
            *which = c->name;
        }
        if (!c->essential)
            report(r, "RUNNING", NULL, NULL, NULL);
    }
    return essential_exit;
}

static void stop_containers(struct runner *r)
{
    /* Signal every container first, then wait for each, so that their stop
     * timeouts run side by side rather than one after another. */
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        if (!c->created || c->exited)
            continue;
        _cleanup_error_ struct barge_error *err = NULL;
        barge_runtime_kill(r->e->agent->rt, c->id, SIGTERM, &err);
    }
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        if (!c->created || c->exited)
            continue;
        struct barge_runtime_state st;
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_runtime_stop(r->e->agent->rt, c->id, SIGTERM, c->stop_timeout * 1000, &st,
                               &err) < 0) {
            barge_warn("task %s: stopping %s: %s", r->task_id, c->name, err->message);
            continue;
        }
        c->exited = true;
        c->exit_code = st.exit_code;
    }
}

static void cleanup(struct runner *r)
{
    for (size_t i = 0; i < r->n_ctrs; i++) {
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_runtime_delete(r->e->agent->rt, r->ctrs[i].id, true, &err) < 0 &&
            err->code != BARGE_ERR_NOT_FOUND)
            barge_warn("task %s: removing container %s: %s", r->task_id, r->ctrs[i].name,
                       err->message);
    }
    _cleanup_free_ char *cg = barge_xasprintf("/barge/task-%s", r->task_id);
    _cleanup_error_ struct barge_error *err = NULL;
    barge_runtime_cgroup_remove(r->e->agent->rt, cg, &err);
    barge_agent_checkpoint_task(r->e->agent, r->arn, NULL);
}

static void finish(struct runner *r, const char *stop_code, const char *reason)
{
    report(r, "STOPPED", stop_code, reason,
           json_pack("{s:f}", "executionStoppedAt", barge_now()));
    cleanup(r);
}

static void init_containers(struct runner *r, const json_t *td)
{
    json_t *defs = barge_json_array(td, "containerDefinitions");
    r->n_ctrs = json_array_size(defs);
    r->ctrs = barge_xcalloc(r->n_ctrs + 1, sizeof(struct ctr));
    size_t i;
    json_t *c;
    json_array_foreach(defs, i, c)
    {
        r->ctrs[i].name = barge_xstrdup(barge_json_str(c, "name", ""));
        snprintf(r->ctrs[i].id, sizeof(r->ctrs[i].id), "%s-%zu", r->task_id, i);
        r->ctrs[i].essential = barge_json_bool(c, "essential", true);
        r->ctrs[i].stop_timeout =
            (int)barge_json_int(c, "stopTimeout", r->e->agent->cfg.stop_timeout);
        r->ctrs[i].exit_code = -1;
    }
}

/* Pulls and starts everything; returns false (having reported STOPPED) when
 * the task could not start. */
static bool start_task(struct runner *r)
{
    json_t *manifest;
    pthread_mutex_lock(&r->e->lock);
    manifest = json_incref(r->manifest);
    pthread_mutex_unlock(&r->e->lock);
    json_t *td = barge_json_object(manifest, "taskDefinition");
    json_t *task = barge_json_object(manifest, "task");
    /* The containers as run: the definition with the task's overrides. */
    json_t *defs = json_deep_copy(barge_json_array(td, "containerDefinitions"));
    size_t i, j;
    json_t *o, *d;
    json_array_foreach(barge_json_array(barge_json_object(task, "overrides"), "containerOverrides"),
                       i, o)
    {
        json_array_foreach(defs, j, d)
        {
            if (!barge_streq(barge_json_str(d, "name", NULL), barge_json_str(o, "name", NULL)))
                continue;
            const char *keys[] = {"command", "cpu", "memory", "memoryReservation"};
            for (size_t k = 0; k < BARGE_ARRAY_SIZE(keys); k++)
                if (json_object_get(o, keys[k]))
                    json_object_set(d, keys[k], json_object_get(o, keys[k]));
            json_t *env = barge_json_array(o, "environment");
            if (env) {
                json_t *cur = barge_json_array(d, "environment");
                if (!cur)
                    json_object_set_new(d, "environment", cur = json_array());
                json_array_extend(cur, env);
            }
        }
    }
    /* Before anything exists on the host, so that a restarted agent knows
     * to clean up after a start it did not finish. */
    checkpoint(r, "STARTING");
    /* The pull times travel with the next report (RUNNING, or STOPPED when
     * the start fails) rather than in reports of their own: each report is a
     * round trip and a durable write in barged, on the launch's critical path. */
    r->pull_started = barge_now();
    struct barge_image **imgs = barge_xcalloc(r->n_ctrs + 1, sizeof(*imgs));
    bool ok = true;
    json_array_foreach(defs, i, d)
    {
        _cleanup_error_ struct barge_error *err = NULL;
        const char *image = barge_json_str(d, "image", "");
        if (pull_image(r, image, &imgs[i], &err) < 0) {
            r->ctrs[i].reason = barge_xasprintf("CannotPullContainerError: %s", err->message);
            barge_warn("task %s: %s", r->task_id, r->ctrs[i].reason);
            _cleanup_free_ char *reason = barge_xstrdup(r->ctrs[i].reason);
            finish(r, "TaskFailedToStart", reason);
            ok = false;
            break;
        }
    }
    if (ok) {
        r->pull_stopped = barge_now();
        json_array_foreach(defs, i, d)
        {
            if (should_stop(r))
                break;
            _cleanup_error_ struct barge_error *err = NULL;
            if (create_container(r, i, td, d, imgs[i], &err) < 0) {
                const char *msg = err->message;
                r->ctrs[i].reason = barge_str_has_prefix(msg, "CannotStartContainerError")
                                        ? barge_xstrdup(msg)
                                        : barge_xasprintf("CannotStartContainerError: %s", msg);
                barge_warn("task %s: %s", r->task_id, r->ctrs[i].reason);
                stop_containers(r);
                _cleanup_free_ char *reason = barge_xstrdup(r->ctrs[i].reason);
                finish(r, "TaskFailedToStart", reason);
                ok = false;
                break;
            }
        }
    }
    for (i = 0; i < r->n_ctrs; i++)
        barge_image_free(imgs[i]);
    free(imgs);
    json_decref(defs);
    json_decref(manifest);
    if (ok && should_stop(r)) {
        stop_containers(r);
        finish(r, NULL, NULL);
        return false;
    }
    if (ok) {
        checkpoint(r, "RUNNING");
        report(r, "RUNNING", NULL, NULL, NULL);
    }
    return ok;
}

static void *run(void *ud)
{
    struct runner *r = ud;
    bool running = true;
    if (!r->adopted) {
        running = start_task(r);
    } else if (!should_stop(r)) {
        barge_info("task %s: adopted after restart", r->task_id);
        report(r, "RUNNING", NULL, NULL, NULL);
    }
    while (running) {
        if (shutting_down(r))
            goto out;
        const char *which = NULL;
        if (refresh_exits(r, &which)) {
            _cleanup_free_ char *reason = barge_xstrdup("Essential container in task exited");
            report(r, "STOPPING", "EssentialContainerExited", reason, NULL);
            stop_containers(r);
            finish(r, "EssentialContainerExited", reason);
            break;
        }
        bool all_exited = true;
        for (size_t i = 0; i < r->n_ctrs; i++)
            if (!r->ctrs[i].exited)
                all_exited = false;
        if (should_stop(r) || all_exited) {
            report(r, "STOPPING", NULL, NULL, NULL);
            stop_containers(r);
            finish(r, NULL, NULL);
            break;
        }
        wait_for_change(r->e, 1000);
    }
out:
    pthread_mutex_lock(&r->e->lock);
    r->finished = true;
    pthread_mutex_unlock(&r->e->lock);
    return NULL;
}

static struct runner *runner_new(struct barge_engine *e, const char *arn)
{
    struct runner *r = barge_xcalloc(1, sizeof(*r));
    r->e = e;
    r->arn = barge_xstrdup(arn);
    const char *slash = strrchr(arn, '/');
    r->task_id = barge_xstrdup(slash ? slash + 1 : arn);
    return r;
}

static void runner_free(struct runner *r)
{
    for (size_t i = 0; i < r->n_ctrs; i++) {
        free(r->ctrs[i].name);
        free(r->ctrs[i].reason);
    }
    free(r->ctrs);
    json_decref(r->manifest);
    free(r->arn);
    free(r->task_id);
    free(r);
}

static void runner_start(struct runner *r)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* Runners mostly wait; a small stack keeps the agent's footprint low. */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&r->thread, &attr, run, r) != 0)
        abort();
    pthread_attr_destroy(&attr);
}

/* Joins finished runners; the engine lock is held. */
static void reap_locked(struct barge_engine *e)
{
    struct runner **pp = &e->runners;
    while (*pp) {
        struct runner *r = *pp;
        if (r->finished) {
            *pp = r->next;
            pthread_mutex_unlock(&e->lock);
            pthread_join(r->thread, NULL);
            pthread_mutex_lock(&e->lock);
            runner_free(r);
        } else {
            pp = &r->next;
        }
    }
}

struct barge_engine *barge_engine_new(struct barge_agent *agent)
{
    struct barge_engine *e = barge_xcalloc(1, sizeof(*e));
    e->agent = agent;
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (pipe2(e->wake_pipe, O_CLOEXEC) < 0)
        abort();
    e->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (e->inotify_fd >= 0 &&
        inotify_add_watch(e->inotify_fd, barge_runtime_exit_dir(agent->rt),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)
        barge_warn("cannot watch '%s' for exits (%s); checking every second instead",
                   barge_runtime_exit_dir(agent->rt), strerror(errno));
    if (pthread_create(&e->watcher, NULL, watch_exits, e) != 0)
        abort();
    return e;
}

void barge_engine_sync(struct barge_engine *e, const json_t *manifests)
{
    pthread_mutex_lock(&e->lock);
    reap_locked(e);
    if (e->shutting_down) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    size_t i;
    json_t *m;
    for (struct runner *r = e->runners; r; r = r->next) {
        bool listed = false;
        json_array_foreach((json_t *)manifests, i, m)
        {
            if (barge_streq(barge_json_str(m, "taskArn", NULL), r->arn))
                listed = true;
        }
        if (!listed && !r->want_stop) {
            barge_info("task %s: no longer assigned here; stopping it", r->task_id);
            r->want_stop = true;
        }
    }
    json_array_foreach((json_t *)manifests, i, m)
    {
        const char *arn = barge_json_str(m, "taskArn", "");
        struct runner *r = e->runners;
        while (r && strcmp(r->arn, arn) != 0)
            r = r->next;
        bool stop = barge_streq(barge_json_str(m, "desiredStatus", NULL), "STOPPED");
        if (r) {
            json_decref(r->manifest);
            r->manifest = json_incref(m);
            r->version = barge_json_int(m, "version", 0);
            if (stop)
                r->want_stop = true;
            continue;
        }
        if (stop &&
            barge_streq(barge_json_str(barge_json_object(m, "task"), "lastStatus", NULL),
                        "STOPPED"))
            continue;
        r = runner_new(e, arn);
        r->manifest = json_incref(m);
        r->version = barge_json_int(m, "version", 0);
        r->want_stop = stop;
        init_containers(r, barge_json_object(m, "taskDefinition"));
        r->next = e->runners;
        e->runners = r;
        barge_info("task %s: assigned (%s)", r->task_id,
                   barge_json_str(barge_json_object(m, "task"), "taskDefinitionArn", ""));
        runner_start(r);
    }
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
}

json_t *barge_engine_known(struct barge_engine *e)
{
    json_t *known = json_object();
    pthread_mutex_lock(&e->lock);
    reap_locked(e);
    for (struct runner *r = e->runners; r; r = r->next)
        if (r->version > 0)
            json_object_set_new(known, r->arn, json_integer(r->version));
    pthread_mutex_unlock(&e->lock);
    return known;
}

void barge_engine_adopt(struct barge_engine *e, const json_t *tasks)
{
    const char *arn;
    json_t *t;
    pthread_mutex_lock(&e->lock);
    json_object_foreach((json_t *)tasks, arn, t)
    {
        struct runner *r = runner_new(e, arn);
        json_t *ctrs = barge_json_array(t, "containers");
        r->n_ctrs = json_array_size(ctrs);
        r->ctrs = barge_xcalloc(r->n_ctrs + 1, sizeof(struct ctr));
        size_t i;
        json_t *c;
        json_array_foreach(ctrs, i, c)
        {
            r->ctrs[i].name = barge_xstrdup(barge_json_str(c, "name", ""));
            snprintf(r->ctrs[i].id, sizeof(r->ctrs[i].id), "%s", barge_json_str(c, "id", ""));
            r->ctrs[i].essential = barge_json_bool(c, "essential", true);
            r->ctrs[i].stop_timeout = (int)barge_json_int(c, "stopTimeout", 30);
            r->ctrs[i].created = barge_json_bool(c, "created", false);
            r->ctrs[i].exit_code = -1;
        }
        r->adopted = true;
        if (!barge_streq(barge_json_str(t, "phase", NULL), "RUNNING")) {
            /* It was still starting when the agent died: give up on it
             * cleanly rather than guess how far it got. */
            r->want_stop = true;
            for (size_t k = 0; k < r->n_ctrs; k++)
                r->ctrs[k].created = true;
        }
        r->next = e->runners;
        e->runners = r;
        runner_start(r);
    }
    pthread_mutex_unlock(&e->lock);
}

bool barge_engine_idle(struct barge_engine *e)
{
    pthread_mutex_lock(&e->lock);
    reap_locked(e);
    bool idle = e->runners == NULL;
    pthread_mutex_unlock(&e->lock);
    return idle;
}

void barge_engine_shutdown(struct barge_engine *e)
{
    pthread_mutex_lock(&e->lock);
    e->shutting_down = true;
    pthread_cond_broadcast(&e->changed);
    while (e->runners) {
        struct runner *r = e->runners;
        e->runners = r->next;
        pthread_mutex_unlock(&e->lock);
        pthread_join(r->thread, NULL);
        pthread_mutex_lock(&e->lock);
        runner_free(r);
    }
    pthread_mutex_unlock(&e->lock);
}

void barge_engine_free(struct barge_engine *e)
{
    if (!e)
        return;
    barge_engine_shutdown(e);
    ssize_t w = write(e->wake_pipe[1], "x", 1);
    (void)w;
    pthread_join(e->watcher, NULL);
    close(e->wake_pipe[0]);
    close(e->wake_pipe[1]);
    if (e->inotify_fd >= 0)
        close(e->inotify_fd);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->changed);
    free(e);
}
