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
#include "agent/deps.h"
#include "agent/health.h"
#include "agent/logship.h"
#include "agent/metadata.h"
#include "agent/secrets.h"
#include "agent/volumes.h"
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
    /* Ordering, health, restarts, networking (issue 4). */
    char token[33]; /* path of its metadata endpoint */
    bool abandoned; /* never started: a dependency cannot be met */
    bool restart_pending;
    int restart_count;
    json_t *restart_policy; /* the definition's restartPolicy, or NULL */
    double created_at, started_at, finished_at, last_start;
    bool has_check;
    struct barge_health_config hc;
    struct barge_health_checker *checker;
    struct barge_health_state health; /* as last seen */
    enum barge_health_status reported_health;
    json_t *volumes; /* [{source, destination}] as mounted */
};

struct runner {
    struct barge_engine *e;
    char *arn;
    char *task_id;
    json_t *manifest;       /* latest manifest; guarded by e->lock */
    json_int_t version;     /* barged's version of the task we last saw */
    bool want_stop;         /* barged wants it STOPPED, or no longer lists it */
    bool adopted;           /* re-created from a checkpoint */
    bool fargate;           /* a FARGATE task: its size is a hard limit */
    json_int_t storage_gib; /* a FARGATE task's ephemeralStorage */
    char *taskfs;           /* where that storage is mounted, or NULL */
    json_t *checkpoint;
    struct barge_task_env *env; /* files and secrets, while containers are created */
    struct ctr *ctrs;
    size_t n_ctrs;
    /* Ordering, health, restarts, networking (issue 4). */
    json_t *td;                /* the task definition */
    json_t *defs;              /* the containers as run (overrides applied) */
    struct barge_image **imgs; /* pulled images, kept for restarts */
    struct barge_deps *deps;
    double deps_since; /* when containers could first start (startTimeout) */
    bool reported_running;
    enum barge_health_status reported_task_health;
    struct barge_net_task *net;
    /* Task role: the id in AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ("" without
     * a role), and barged's last answer with when it came (guarded by
     * e->lock; it holds the secret). */
    char creds_id[37];
    json_t *role_creds;
    double role_creds_at;
    json_t *meta;             /* the metadata endpoint's snapshot; guarded by e->lock */
    json_t *stamps;           /* pullStartedAt... as reported, for the snapshot */
    const char *known_status; /* as last reported */
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

static void decorate_report(struct runner *r, json_t *rep, const char *status);
static void publish_snapshot(struct runner *r);

/* Sends the task's state; extra (stolen, may be NULL) adds fields. */
static void report(struct runner *r, const char *status, const char *stop_code, const char *reason,
                   json_t *extra)
{
    json_t *rep = json_pack("{s:s, s:s, s:[]}", "taskArn", r->arn, "status", status, "containers");
    json_t *list = json_object_get(rep, "containers");
    for (size_t i = 0; i < r->n_ctrs; i++) {
        const struct ctr *c = &r->ctrs[i];
        const char *cs = c->exited                        ? "STOPPED"
                         : strcmp(status, "RUNNING") == 0 ? "RUNNING"
                         : strcmp(status, "STOPPED") == 0 ? "STOPPED"
                         : c->created                     ? "RUNNING"
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
    decorate_report(r, rep, status);
    barge_agent_report(r->e->agent, rep);
    json_decref(rep);
}

static void checkpoint_extra(const struct ctr *c, json_t *out);

static void checkpoint(struct runner *r, const char *phase)
{
    json_t *ctrs = json_array();
    for (size_t i = 0; i < r->n_ctrs; i++) {
        json_t *c = json_pack("{s:s, s:s, s:b, s:i, s:b}", "name", r->ctrs[i].name, "id",
                              r->ctrs[i].id, "essential", r->ctrs[i].essential, "stopTimeout",
                              r->ctrs[i].stop_timeout, "created", r->ctrs[i].created);
        checkpoint_extra(&r->ctrs[i], c);
        json_array_append_new(ctrs, c);
    }
    json_t *v = json_pack("{s:s, s:s, s:o, s:b}", "taskId", r->task_id, "phase", phase,
                          "containers", ctrs, "fargate", r->fargate);
    if (r->creds_id[0])
        json_object_set_new(v, "credentialsId", json_string(r->creds_id));
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

/* Image Env, then environment files, then the task definition's environment,
 * then secrets, the later winning (secrets.h). */
static void build_env(struct strv *env, const json_t *img_cfg, const json_t *cdef,
                      const struct barge_task_env *te)
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
    const char *cname = barge_json_str(cdef, "name", "");
    barge_task_env_apply_files(te, cname, merged);
    json_array_foreach(barge_json_array(cdef, "environment"), i, v)
    {
        const char *name = barge_json_str(v, "name", NULL);
        if (name)
            json_object_set_new(merged, name, json_string(barge_json_str(v, "value", "")));
    }
    barge_task_env_apply_secrets(te, cname, merged);
    const char *k;
    json_object_foreach(merged, k, v)
    {
        strv_add(env, barge_xasprintf("%s=%s", k, json_string_value(v)));
    }
    barge_json_wipe(merged);
    json_decref(merged);
}

/* --- task resources: volumes, network, metadata endpoint (issue 4) ------ */

/* A Fargate task's volumes are on its storage, sharing its quota. */
static char *task_volume_dir(struct runner *r)
{
    if (r->taskfs)
        return barge_xasprintf("%s/volumes", r->taskfs);
    return barge_xasprintf("%s/tasks/%s", r->e->agent->volumes_dir, r->task_id);
}

static char *shared_volume_dir(struct runner *r)
{
    return barge_xasprintf("%s/shared", r->e->agent->volumes_dir);
}

static int volume_mounts(struct runner *r, size_t idx, struct barge_volume_mount **out, size_t *n,
                         struct barge_error **err)
{
    _cleanup_free_ char *task_dir = task_volume_dir(r), *shared = shared_volume_dir(r);
    return barge_volume_mounts(barge_json_array(r->td, "volumes"), r->defs, idx, task_dir, shared,
                               out, n, err);
}

/* What the agent adds to every container's environment. */
static void add_agent_env(struct runner *r, const struct ctr *c, struct strv *env)
{
    struct barge_agent *a = r->e->agent;
    const char *mode = r->net ? r->net->mode : "bridge";
    const char *base = strcmp(mode, "host") == 0   ? a->metadata_host_url
                       : strcmp(mode, "none") == 0 ? NULL
                                                   : a->metadata_bridge_url;
    if (base && c->token[0])
        strv_add(env, barge_xasprintf("ECS_CONTAINER_METADATA_URI_V4=%s/v4/%s", base, c->token));
    if (r->creds_id[0])
        strv_add(env, barge_xasprintf("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/%s",
                                      r->creds_id));
}

/* The network side of a container's spec: the task's namespace, extraHosts,
 * dnsServers and dnsSearchDomains. The lists are the caller's to free. */
static void net_spec(struct runner *r, const json_t *cdef, struct barge_runtime_spec *spec,
                     struct strv *hosts, struct strv *dns, struct strv *search)
{
    if (r->net && r->net->netns_path)
        spec->netns_path = r->net->netns_path;
    size_t i;
    json_t *h;
    json_array_foreach(barge_json_array(cdef, "extraHosts"), i, h)
    {
        strv_add(hosts, barge_xasprintf("%s\t%s", barge_json_str(h, "ipAddress", ""),
                                        barge_json_str(h, "hostname", "")));
    }
    add_json_strings(dns, barge_json_array(cdef, "dnsServers"));
    add_json_strings(search, barge_json_array(cdef, "dnsSearchDomains"));
    if (hosts->n)
        spec->hosts_entries = strv_get(hosts);
    /* Bridge and awsvpc containers ask the agent's DNS server (Cloud Map
     * names, the rest forwarded); left NULL, the host's resolv.conf is used. */
    const char *mode = r->net ? r->net->mode : "bridge";
    if (!dns->n && r->e->agent->dns_server &&
        (strcmp(mode, "bridge") == 0 || strcmp(mode, "awsvpc") == 0))
        strv_add(dns, barge_xstrdup(r->e->agent->dns_server));
    if (dns->n)
        spec->dns_servers = strv_get(dns);
    if (search->n)
        spec->dns_search = strv_get(search);
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
    struct barge_volume_mount *vols = NULL;
    size_t n_vols = 0;
    if (volume_mounts(r, idx, &vols, &n_vols, err) < 0)
        return -1;
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
        barge_volume_mounts_free(vols, n_vols);
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "CannotStartContainerError: container '%s' has no command: the "
                               "image sets none and the task definition gives no command or "
                               "entryPoint",
                               c->name);
    }
    build_env(&env, img_cfg, cdef, r->env);
    add_agent_env(r, c, &env);
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
    struct barge_runtime_mount *mounts = barge_xcalloc(n_tmpfs + n_vols + 1, sizeof(*mounts));
    json_array_foreach(barge_json_array(lp, "tmpfs"), i, u)
    {
        mounts[i].type = BARGE_RUNTIME_MOUNT_TMPFS;
        mounts[i].destination = barge_json_str(u, "containerPath", "/tmp");
        mounts[i].size = (uint64_t)barge_json_int(u, "size", 0) * 1024 * 1024;
    }
    for (size_t k = 0; k < n_vols; k++)
        mounts[n_tmpfs + k] = (struct barge_runtime_mount){
            .type = BARGE_RUNTIME_MOUNT_BIND,
            .source = vols[k].source,
            .destination = vols[k].destination,
            .readonly = vols[k].readonly,
        };

    json_int_t mem = barge_json_int(cdef, "memory", 0);
    bool fargate = r->fargate;
    /* Fargate's task size is a hard limit on every container of the task. */
    if (!mem && (fargate || json_array_size(barge_json_array(td, "containerDefinitions")) == 1))
        mem = atoll(barge_json_str(td, "memory", "0"));
    json_int_t cpu = barge_json_int(cdef, "cpu", 0);
    uint64_t cpu_quota =
        fargate ? (uint64_t)atoll(barge_json_str(td, "cpu", "0")) * 100000 / 1024 : 0;
    _cleanup_free_ char *log_dir = barge_xasprintf("%s/logs/%s", a->cfg.data_dir, r->task_id);
    barge_mkdir_p(log_dir, 0700);
    _cleanup_free_ char *log_path = barge_xasprintf("%s/%s.log", log_dir, c->name);
    _cleanup_free_ char *cgroup = barge_xasprintf("/barge/task-%s", r->task_id);
    /* A Fargate container's directory, with its overlay upper and work
     * directories, is on the task's storage. */
    _cleanup_free_ char *dir =
        r->taskfs ? barge_xasprintf("%s/containers/%s", r->taskfs, c->id) : NULL;
    const char *mode = barge_json_str(td, "networkMode", "bridge");
    const char *user = barge_json_str(cdef, "user", barge_json_str(img_cfg, "User", NULL));
    if (user && !*user)
        user = NULL;
    const char *cwd =
        barge_json_str(cdef, "workingDirectory", barge_json_str(img_cfg, "WorkingDir", NULL));
    if (cwd && !*cwd)
        cwd = NULL;
    struct barge_runtime_spec spec = {
        .id = c->id,
        .dir = dir,
        .layers = strv_get(&layers),
        .argv = strv_get(&argv),
        .env = strv_get(&env),
        .cwd = cwd,
        .user = user,
        .hostname = barge_json_str(cdef, "hostname", NULL),
        .cpu_shares = (uint64_t)(cpu < 2 ? 2 : cpu),
        .cpu_quota_us = cpu_quota,
        .memory_limit = (uint64_t)mem * 1024 * 1024,
        .memory_reservation = (uint64_t)barge_json_int(cdef, "memoryReservation", 0) * 1024 * 1024,
        .pids_limit = 4096,
        .ulimits = ul,
        .n_ulimits = n_ul,
        .readonly_rootfs = barge_json_bool(cdef, "readonlyRootFilesystem", false),
        .cap_add = strv_get(&cap_add),
        .cap_drop = strv_get(&cap_drop),
        .mounts = mounts,
        .n_mounts = n_tmpfs + n_vols,
        .shm_size = (uint64_t)barge_json_int(lp, "sharedMemorySize", 0) * 1024 * 1024,
        .host_network = strcmp(mode, "host") == 0,
        .log_path = log_path,
        .cgroup_parent = cgroup,
    };
    struct strv hosts = {0}, dns = {0}, search = {0};
    net_spec(r, cdef, &spec, &hosts, &dns, &search);
    /* The awslogs driver checks its destination before the container starts,
     * as ECS does; conmon writes the log file the shipper tails. */
    int ret = barge_logship_open(a->logship, r->arn, c->name, log_path,
                                 barge_json_object(cdef, "logConfiguration"), err);
    if (ret == 0)
        ret = barge_runtime_create(a->rt, &spec, err);
    if (ret == 0) {
        c->created = true;
        json_decref(c->volumes);
        c->volumes = json_array();
        for (size_t k = 0; k < n_vols; k++)
            json_array_append_new(c->volumes, json_pack("{s:s, s:s}", "source", vols[k].source,
                                                        "destination", vols[k].destination));
        /* The metadata endpoint knows the container before its program
         * runs and asks. */
        c->created_at = c->started_at = barge_now();
        publish_snapshot(r);
        ret = barge_runtime_start(a->rt, c->id, err);
        if (ret < 0) {
            _cleanup_error_ struct barge_error *derr = NULL;
            barge_runtime_delete(a->rt, c->id, true, &derr);
            c->created = false;
        }
    }
    strv_free(&hosts);
    strv_free(&dns);
    strv_free(&search);
    barge_volume_mounts_free(vols, n_vols);
    free(ul);
    free(mounts);
    strv_free(&argv);
    for (size_t k = 0; k < env.n; k++) /* values may be secrets */
        explicit_bzero(env.v[k], strlen(env.v[k]));
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
static bool restart_due(struct runner *r, struct ctr *c, int exit_code);
static void container_exited(struct runner *r, struct ctr *c, double finished_at);
static const char *current_status(struct runner *r);

static bool refresh_exits(struct runner *r, const char **which)
{
    bool essential_exit = false;
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        if (!c->created || c->exited || c->restart_pending)
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
            if (restart_due(r, c, st.exit_code)) {
                c->restart_pending = true; /* restart_containers() takes it */
                c->exit_code = st.exit_code;
                continue;
            }
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
        container_exited(r, c, st.finished_at);
        if (c->essential && !essential_exit) {
            essential_exit = true;
            *which = c->name;
        }
        if (!c->essential)
            report(r, current_status(r), NULL, NULL, NULL);
    }
    return essential_exit;
}

static void stop_round(struct runner *r, const size_t *wave, size_t round);
static void stop_checker(struct ctr *c);

static void stop_containers(struct runner *r)
{
    /* Dependents stop before what they depend on (the reverse of the start
     * order): round by round. Within a round, signal every container first,
     * then wait for each, so that their stop timeouts run side by side
     * rather than one after another. */
    size_t *wave = barge_xcalloc(r->n_ctrs + 1, sizeof(size_t));
    size_t rounds = r->deps ? barge_deps_stop_waves(r->deps, wave) : 1;
    for (size_t round = 0; round < rounds; round++)
        stop_round(r, wave, round);
    free(wave);
}

static void stop_round(struct runner *r, const size_t *wave, size_t round)
{
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        stop_checker(c); /* a stopping container is not checked any more */
        if (!c->created || c->exited || wave[i] != round)
            continue;
        _cleanup_error_ struct barge_error *err = NULL;
        barge_runtime_kill(r->e->agent->rt, c->id, SIGTERM, &err);
    }
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        if (!c->created || c->exited || wave[i] != round)
            continue;
        struct barge_runtime_state st;
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_runtime_stop(r->e->agent->rt, c->id, SIGTERM, c->stop_timeout * 1000, &st, &err) <
            0) {
            barge_warn("task %s: stopping %s: %s", r->task_id, c->name, err->message);
            continue;
        }
        c->exited = true;
        c->restart_pending = false;
        c->exit_code = st.exit_code;
        c->finished_at = st.finished_at;
    }
}

static void release_resources(struct runner *r);

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
    /* Once no container has its directory there. */
    _cleanup_error_ struct barge_error *ferr = NULL;
    if (r->fargate && barge_runtime_taskfs_remove(r->e->agent->taskfs_dir, r->task_id, &ferr) < 0)
        barge_warn("task %s: %s (retried when the agent restarts)", r->task_id, ferr->message);
    /* Before the task leaves the checkpoint: a restart in between must still
     * know to ship the rest of its output. */
    barge_logship_finish(r->e->agent->logship, r->arn);
    barge_agent_checkpoint_task(r->e->agent, r->arn, NULL);
}

static void finish(struct runner *r, const char *stop_code, const char *reason)
{
    /* Network and volumes go first: once barged hears STOPPED, the task's
     * host ports may be given to another task. */
    release_resources(r);
    report(r, "STOPPED", stop_code, reason, json_pack("{s:f}", "executionStoppedAt", barge_now()));
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
        barge_id_hex32(r->ctrs[i].token);
    }
}

/* The containers as run: the definition with the task's overrides. New
 * reference. */
static json_t *effective_defs(const json_t *manifest)
{
    json_t *td = barge_json_object(manifest, "taskDefinition");
    json_t *task = barge_json_object(manifest, "task");
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
            /* environmentFiles in an override replace the definition's. */
            const char *keys[] = {"command", "cpu", "memory", "memoryReservation",
                                  "environmentFiles"};
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
    return defs ? defs : json_array();
}

static int setup_task(struct runner *r, struct barge_error **err);
static void take_defs(struct runner *r, const json_t *manifest);

/* Pulls the images and sets up the task's network and volumes; the run loop
 * then starts the containers in dependency order. Returns false (having
 * reported STOPPED) when the task could not start. */
static bool start_task(struct runner *r)
{
    json_t *manifest;
    pthread_mutex_lock(&r->e->lock);
    manifest = json_incref(r->manifest);
    pthread_mutex_unlock(&r->e->lock);
    take_defs(r, manifest);
    json_t *defs = r->defs;
    size_t i;
    json_t *d;
    /* ECS's agent serves task role credentials from its own endpoint. */
    const char *role =
        barge_json_str(barge_json_object(barge_json_object(manifest, "task"), "overrides"),
                       "taskRoleArn", barge_json_str(r->td, "taskRoleArn", NULL));
    if (role && r->e->agent->metadata)
        barge_id_uuid(r->creds_id);
    /* Before anything exists on the host, so that a restarted agent knows
     * to clean up after a start it did not finish. */
    checkpoint(r, "STARTING");
    /* The pull times travel with the next report (RUNNING, or STOPPED when
     * the start fails) rather than in reports of their own: each report is a
     * round trip and a durable write in barged, on the launch's critical path. */
    r->pull_started = barge_now();
    char *why = NULL;
    if (barge_task_env_resolve(r->e->agent, r->arn, defs, &r->env, &why) < 0) {
        /* ECS's order: secrets and environment files before any container. */
        barge_warn("task %s: %s", r->task_id, why);
        finish(r, "TaskFailedToStart", why);
        free(why);
        json_decref(manifest);
        return false;
    }
    bool ok = true;
    json_array_foreach(defs, i, d)
    {
        _cleanup_error_ struct barge_error *err = NULL;
        const char *image = barge_json_str(d, "image", "");
        if (pull_image(r, image, &r->imgs[i], &err) < 0) {
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
        _cleanup_error_ struct barge_error *err = NULL;
        if (setup_task(r, &err) < 0) {
            _cleanup_free_ char *reason =
                barge_xasprintf("ResourceInitializationError: %s", err->message);
            barge_warn("task %s: %s", r->task_id, reason);
            finish(r, "TaskFailedToStart", reason);
            ok = false;
        }
    }
    json_decref(manifest);
    if (ok && should_stop(r)) {
        stop_containers(r);
        finish(r, NULL, NULL);
        return false;
    }
    return ok;
}

/* --- ordering, health, restarts and the task network (issue 4) -------- */

/* ECS_CONTAINER_START_TIMEOUT's default: how long a container waits for its
 * dependencies when its definition gives no startTimeout. */
#define DEFAULT_START_TIMEOUT 180

static const char *current_status(struct runner *r)
{
    return r->reported_running ? "RUNNING" : "PENDING";
}

static void health_notify(void *ud)
{
    struct barge_engine *e = ud;
    pthread_mutex_lock(&e->lock);
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
}

static void start_checker(struct runner *r, struct ctr *c)
{
    if (!c->has_check || c->checker || !c->created || c->exited || c->restart_pending)
        return;
    barge_health_state_init(&c->health, c->started_at > 0 ? c->started_at : barge_now());
    c->checker = barge_health_checker_start(r->e->agent->rt, c->id, &c->hc, c->health.started_at,
                                            health_notify, r->e);
}

/* Keeps the last verdict (an exited container stays as it was seen). */
static void stop_checker(struct ctr *c)
{
    if (!c->checker)
        return;
    barge_health_checker_get(c->checker, &c->health);
    barge_health_checker_stop(c->checker);
    c->checker = NULL;
}

static void container_exited(struct runner *r, struct ctr *c, double finished_at)
{
    stop_checker(c);
    c->finished_at = finished_at > 0 ? finished_at : barge_now();
}

/* What the definitions say about health checks, restarts and ordering. */
static void take_defs(struct runner *r, const json_t *manifest)
{
    r->td = json_incref(barge_json_object(manifest, "taskDefinition"));
    r->defs = effective_defs(manifest);
    if (!r->imgs)
        r->imgs = barge_xcalloc(r->n_ctrs + 1, sizeof(*r->imgs));
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        json_t *d = json_array_get(r->defs, i);
        _cleanup_error_ struct barge_error *err = NULL;
        barge_health_config_release(&c->hc);
        int hc = barge_health_config_parse(barge_json_object(d, "healthCheck"), &c->hc, &err);
        if (hc < 0)
            barge_warn("task %s: container %s: %s; not checked", r->task_id, c->name, err->message);
        c->has_check = hc > 0;
        json_t *rp = barge_json_object(d, "restartPolicy");
        json_decref(c->restart_policy);
        c->restart_policy = barge_json_bool(rp, "enabled", false) ? json_deep_copy(rp) : NULL;
    }
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_deps_build(r->defs, &r->deps, &err) < 0)
        barge_warn("task %s: %s; containers start in order", r->task_id, err->message);
}

/* An adopted task learns its definitions from the first manifest barged
 * sends after the restart; then its health checks resume. */
static void adopt_defs(struct runner *r)
{
    if (r->defs)
        return;
    json_t *manifest;
    pthread_mutex_lock(&r->e->lock);
    manifest = json_incref(r->manifest);
    pthread_mutex_unlock(&r->e->lock);
    if (!manifest)
        return;
    take_defs(r, manifest);
    json_decref(manifest);
    for (size_t i = 0; i < r->n_ctrs; i++)
        start_checker(r, &r->ctrs[i]);
    publish_snapshot(r); /* now with the task's family, images, ports... */
}

/* The host ports other tasks assigned here will publish, so that a dynamic
 * port is never one of them. */
static uint16_t *ports_to_avoid(struct runner *r, size_t *n)
{
    uint16_t *out = NULL;
    *n = 0;
    pthread_mutex_lock(&r->e->lock);
    for (struct runner *o = r->e->runners; o; o = o->next) {
        if (o == r)
            continue;
        size_t i;
        json_t *p;
        json_array_foreach(barge_json_array(barge_json_object(o->manifest, "reserved"), "ports"), i,
                           p)
        {
            out = barge_xrealloc(out, (*n + 1) * sizeof(uint16_t));
            out[(*n)++] = (uint16_t)json_integer_value(p);
        }
    }
    pthread_mutex_unlock(&r->e->lock);
    return out;
}

/* The host's route to the credentials endpoint, for host-mode tasks; it
 * stays until the agent stops. */
static int host_route(struct barge_agent *a, struct barge_error **err)
{
    int port = barge_metadata_server_port(a->metadata);
    pthread_mutex_lock(&a->lock);
    int rc = 0;
    if (a->credentials_port != port) {
        rc = barge_net_credentials_route_add(NULL, "127.0.0.1", port, err);
        if (rc == 0)
            a->credentials_port = port;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* Makes 169.254.170.2:80 reach the metadata endpoint from the task's
 * containers: in its namespace, or (host mode) in the host's. */
static int route_credentials(struct runner *r, struct barge_error **err)
{
    struct barge_agent *a = r->e->agent;
    int port = barge_metadata_server_port(a->metadata);
    if (r->net->netns_path && r->net->gateway)
        return barge_net_credentials_route_add(r->net->netns_path, r->net->gateway, port, err);
    if (r->net->netns_path)
        return 0; /* mode none: no network at all */
    return host_route(a, err);
}

static int setup_task(struct runner *r, struct barge_error **err)
{
    struct barge_agent *a = r->e->agent;
    if (!r->deps && barge_deps_build(r->defs, &r->deps, err) < 0)
        return -1;
    /* Fargate's ephemeral storage: a filesystem of exactly its size for the
     * containers' writable layers and the task's volumes. */
    if (r->fargate &&
        barge_runtime_taskfs_create(a->taskfs_dir, r->task_id, (uint64_t)r->storage_gib << 30,
                                    &r->taskfs, err) < 0)
        return -1;
    _cleanup_free_ char *task_dir = task_volume_dir(r), *shared = shared_volume_dir(r);
    if (barge_volumes_prepare(barge_json_array(r->td, "volumes"), task_dir, shared, err) < 0)
        return -1;
    const char *mode = barge_json_str(r->td, "networkMode", "bridge");
    size_t n = 0, i, j;
    json_t *d, *pm;
    json_array_foreach(r->defs, i, d)
    {
        n += json_array_size(barge_json_array(d, "portMappings"));
    }
    struct barge_net_mapping *maps = barge_xcalloc(n + 1, sizeof(*maps));
    n = 0;
    bool publish = strcmp(mode, "bridge") == 0 || strcmp(mode, "host") == 0;
    json_array_foreach(r->defs, i, d)
    {
        json_array_foreach(barge_json_array(d, "portMappings"), j, pm)
        {
            if (!publish)
                break;
            if (!json_object_get(pm, "containerPort")) {
                free(maps);
                return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                                       "container '%s': containerPortRange is not supported yet; "
                                       "map each port",
                                       barge_json_str(d, "name", ""));
            }
            maps[n++] = (struct barge_net_mapping){
                .container = barge_json_str(d, "name", ""),
                .container_port = (uint16_t)barge_json_int(pm, "containerPort", 0),
                .host_port = (uint16_t)barge_json_int(pm, "hostPort", 0),
                .protocol = barge_json_str(pm, "protocol", "tcp"),
            };
        }
    }
    size_t n_avoid = 0;
    uint16_t *avoid = ports_to_avoid(r, &n_avoid);
    int rc = barge_net_task_setup(&a->net, r->task_id, mode, maps, n, avoid, n_avoid, &r->net, err);
    free(avoid);
    free(maps);
    r->deps_since = barge_now();
    if (rc == 0 && r->creds_id[0])
        rc = route_credentials(r, err);
    return rc;
}

/* Undoes setup_task: the network and the task's volumes. */
static void release_resources(struct runner *r)
{
    for (size_t i = 0; i < r->n_ctrs; i++)
        stop_checker(&r->ctrs[i]);
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_net_task_teardown(&r->e->agent->net, r->task_id, &err) < 0)
        barge_warn("task %s: %s (retried when the agent restarts)", r->task_id, err->message);
    _cleanup_error_ struct barge_error *verr = NULL;
    _cleanup_free_ char *dir = task_volume_dir(r);
    if (barge_volumes_remove(dir, &verr) < 0)
        barge_warn("task %s: %s", r->task_id, verr->message);
}

/* Starts the containers whose dependencies are met. Returns 1 once every
 * container is started (or abandoned), 0 while some wait, -1 when the task
 * cannot start (then it is reported STOPPED and cleaned up). */
static int start_ready(struct runner *r)
{
    if (!r->defs)
        return 0;
    struct barge_dep_view *views = barge_xcalloc(r->n_ctrs + 1, sizeof(*views));
    bool again = true, started = false;
    while (again) {
        again = false;
        for (size_t i = 0; i < r->n_ctrs; i++) {
            struct ctr *c = &r->ctrs[i];
            views[i] = (struct barge_dep_view){
                .started = c->created,
                .exited = c->created && c->exited,
                .exit_code = c->exit_code,
                .abandoned = c->abandoned,
                .health = c->checker ? BARGE_HEALTH_UNKNOWN : c->health.status,
            };
            if (c->checker) {
                barge_health_checker_get(c->checker, &c->health);
                views[i].health = c->health.status;
            }
        }
        for (size_t i = 0; i < r->n_ctrs && !should_stop(r); i++) {
            struct ctr *c = &r->ctrs[i];
            if (c->created || c->abandoned)
                continue;
            json_t *def = json_array_get(r->defs, i);
            char *why = NULL;
            enum barge_dep_verdict v =
                r->deps ? barge_deps_verdict(r->deps, r->defs, i, views, &why) : BARGE_DEP_READY;
            if (v == BARGE_DEP_WAIT) {
                json_int_t limit = barge_json_int(def, "startTimeout", DEFAULT_START_TIMEOUT);
                if (barge_now() - r->deps_since < (double)limit) {
                    free(why);
                    continue;
                }
                char *t = barge_xasprintf("timed out after %llds waiting for %s (startTimeout)",
                                          (long long)limit, why ? why : "its dependencies");
                free(why);
                why = t;
                v = BARGE_DEP_NEVER;
            }
            if (v == BARGE_DEP_NEVER) {
                c->abandoned = true;
                c->exited = true;
                free(c->reason);
                c->reason = barge_xasprintf("CannotStartContainerError: container '%s' cannot "
                                            "start: %s",
                                            c->name, why ? why : "a dependency failed");
                free(why);
                barge_warn("task %s: %s", r->task_id, c->reason);
                if (c->essential) {
                    free(views);
                    _cleanup_free_ char *reason = barge_xstrdup(c->reason);
                    report(r, "STOPPING", "TaskFailedToStart", reason, NULL);
                    stop_containers(r);
                    finish(r, "TaskFailedToStart", reason);
                    return -1;
                }
                report(r, current_status(r), NULL, NULL, NULL);
                again = true; /* containers waiting on this one give up too */
                break;
            }
            free(why);
            _cleanup_error_ struct barge_error *err = NULL;
            if (!r->imgs[i] &&
                pull_image(r, barge_json_str(def, "image", ""), &r->imgs[i], &err) < 0) {
                c->reason = barge_xasprintf("CannotPullContainerError: %s", err->message);
            } else if (create_container(r, i, r->td, def, r->imgs[i], &err) < 0) {
                const char *msg = err->message;
                c->reason = barge_str_has_prefix(msg, "CannotStartContainerError")
                                ? barge_xstrdup(msg)
                                : barge_xasprintf("CannotStartContainerError: %s", msg);
            }
            if (!c->created) {
                barge_warn("task %s: %s", r->task_id, c->reason);
                free(views);
                stop_containers(r);
                _cleanup_free_ char *reason = barge_xstrdup(c->reason);
                finish(r, "TaskFailedToStart", reason);
                return -1;
            }
            c->last_start = c->started_at;
            start_checker(r, c);
            views[i].started = true;
            started = true;
        }
    }
    free(views);
    bool all = true;
    for (size_t i = 0; i < r->n_ctrs; i++)
        if (!r->ctrs[i].created && !r->ctrs[i].abandoned)
            all = false;
    if (started && !all)
        report(r, "PENDING", NULL, NULL, NULL); /* the ones that run now */
    return all ? 1 : 0;
}

/* ECS's rule (restart_tracker.go ShouldRestart): enabled, the task is not
 * being stopped, the exit code is not ignored, and the container ran for at
 * least restartAttemptPeriod since its start or last restart. */
static bool restart_due(struct runner *r, struct ctr *c, int exit_code)
{
    if (!c->restart_policy || exit_code < 0 || should_stop(r))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(c->restart_policy, "ignoredExitCodes"), i, v)
    {
        if (json_integer_value(v) == exit_code)
            return false;
    }
    json_int_t period = barge_json_int(c->restart_policy, "restartAttemptPeriod", 300);
    double ran = barge_now() - (c->last_start > 0 ? c->last_start : c->started_at);
    if (ran < (double)period) {
        barge_info("task %s: container %s exited with %d after %.0fs, within its "
                   "restartAttemptPeriod of %llds: not restarted",
                   r->task_id, c->name, exit_code, ran, (long long)period);
        return false;
    }
    return true;
}

/* Restarts the containers whose restart is due, in place (same id, same
 * network and volumes). Returns true when an essential container could not
 * be restarted (its name in *which). */
static bool restart_containers(struct runner *r, const char **which)
{
    bool essential_exit = false;
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        if (!c->restart_pending || !r->defs)
            continue; /* an adopted task waits for its definitions */
        json_t *def = json_array_get(r->defs, i);
        _cleanup_error_ struct barge_error *err = NULL;
        stop_checker(c);
        bool ok = !should_stop(r);
        if (ok && !r->imgs[i] &&
            pull_image(r, barge_json_str(def, "image", ""), &r->imgs[i], &err) < 0)
            ok = false;
        if (ok && barge_runtime_delete(r->e->agent->rt, c->id, true, &err) < 0 &&
            err->code != BARGE_ERR_NOT_FOUND)
            ok = false;
        if (ok) {
            barge_error_free(barge_steal(&err));
            c->created = false;
            ok = create_container(r, i, r->td, def, r->imgs[i], &err) == 0;
        }
        c->restart_pending = false;
        if (!ok) {
            c->created = true;
            c->exited = true;
            c->finished_at = barge_now();
            if (err) {
                free(c->reason);
                c->reason =
                    barge_xasprintf("CannotStartContainerError: restarting: %s", err->message);
                barge_warn("task %s: %s", r->task_id, c->reason);
            }
            if (c->essential && !essential_exit) {
                essential_exit = true;
                *which = c->name;
            }
            continue;
        }
        c->restart_count++;
        c->exit_code = -1;
        c->finished_at = 0;
        c->last_start = c->started_at;
        barge_info("task %s: container %s restarted (restart %d)", r->task_id, c->name,
                   c->restart_count);
        start_checker(r, c);
        checkpoint(r, r->reported_running ? "RUNNING" : "STARTING");
        report(r, current_status(r), NULL, NULL, NULL);
    }
    return essential_exit;
}

/* Reads the checkers; true when a container's or the task's health differs
 * from what was last reported. */
static bool health_changed(struct runner *r)
{
    bool changed = false;
    enum barge_health_status *st = barge_xcalloc(r->n_ctrs + 1, sizeof(*st));
    bool *ess = barge_xcalloc(r->n_ctrs + 1, sizeof(bool));
    bool *has = barge_xcalloc(r->n_ctrs + 1, sizeof(bool));
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        if (c->checker)
            barge_health_checker_get(c->checker, &c->health);
        if (c->has_check && c->health.status != c->reported_health)
            changed = true;
        st[i] = c->health.status;
        ess[i] = c->essential;
        has[i] = c->has_check;
    }
    if (barge_health_task(st, ess, has, r->n_ctrs) != r->reported_task_health)
        changed = true;
    free(st);
    free(ess);
    free(has);
    return changed;
}

/* The attachment barged made for an awsvpc task, or NULL; new reference. */
static json_t *eni_attachment(struct runner *r)
{
    json_t *out = NULL;
    pthread_mutex_lock(&r->e->lock);
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(barge_json_object(r->manifest, "task"), "attachments"), i,
                       a)
    {
        if (!out && barge_streq(barge_json_str(a, "type", NULL), "ElasticNetworkInterface"))
            out = json_deep_copy(a);
    }
    pthread_mutex_unlock(&r->e->lock);
    return out;
}

static json_t *bindings_of(struct runner *r, const char *name)
{
    json_t *out = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(r->net ? r->net->bindings : NULL, i, b)
    {
        if (barge_streq(barge_json_str(b, "container", NULL), name))
            json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:s}", "bindIP",
                                                 barge_json_str(b, "bindIP", ""), "containerPort",
                                                 barge_json_int(b, "containerPort", 0), "hostPort",
                                                 barge_json_int(b, "hostPort", 0), "protocol",
                                                 barge_json_str(b, "protocol", "tcp")));
    }
    return out;
}

static json_t *build_snapshot(struct runner *r);

/* Adds to a report what issue 4 knows: health, restarts, image digests,
 * network bindings and interfaces, the ENI attachment; and refreshes the
 * metadata endpoint's view of the task. */
static void decorate_report(struct runner *r, json_t *rep, const char *status)
{
    json_t *list = json_object_get(rep, "containers");
    json_t *eni = r->net && strcmp(r->net->mode, "awsvpc") == 0 ? eni_attachment(r) : NULL;
    enum barge_health_status *st = barge_xcalloc(r->n_ctrs + 1, sizeof(*st));
    bool *ess = barge_xcalloc(r->n_ctrs + 1, sizeof(bool));
    bool *has = barge_xcalloc(r->n_ctrs + 1, sizeof(bool));
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        json_t *cj = json_array_get(list, i);
        if (c->has_check)
            json_object_set_new(cj, "healthStatus",
                                json_string(barge_health_status_name(c->health.status)));
        c->reported_health = c->health.status;
        st[i] = c->health.status;
        ess[i] = c->essential;
        has[i] = c->has_check;
        if (c->restart_policy)
            json_object_set_new(cj, "restartCount", json_integer(c->restart_count));
        if (r->imgs && r->imgs[i] && r->imgs[i]->digest)
            json_object_set_new(cj, "imageDigest", json_string(r->imgs[i]->digest));
        if (r->net && json_array_size(r->net->bindings))
            json_object_set_new(cj, "networkBindings", bindings_of(r, c->name));
        if (eni && r->net->ipv4)
            json_object_set_new(cj, "networkInterfaces",
                                json_pack("[{s:s, s:s}]", "attachmentId",
                                          barge_json_str(eni, "id", ""), "privateIpv4Address",
                                          r->net->ipv4));
    }
    r->reported_task_health = barge_health_task(st, ess, has, r->n_ctrs);
    json_object_set_new(rep, "healthStatus",
                        json_string(barge_health_status_name(r->reported_task_health)));
    free(st);
    free(ess);
    free(has);
    if (eni && r->net->ipv4) {
        /* An ENI id of the usual shape, stable for the task. */
        _cleanup_free_ char *eni_id = barge_xasprintf("eni-%.17s", r->task_id);
        _cleanup_free_ char *dashed = barge_xstrdup(r->net->ipv4);
        for (char *p = dashed; *p; p++)
            if (*p == '.')
                *p = '-';
        _cleanup_free_ char *dns = barge_xasprintf("ip-%s.ec2.internal", dashed);
        const char *subnet_id = "subnet-barge";
        size_t i;
        json_t *kv;
        json_array_foreach(barge_json_array(eni, "details"), i, kv)
        {
            if (barge_streq(barge_json_str(kv, "name", NULL), "subnetId"))
                subnet_id = barge_json_str(kv, "value", subnet_id);
        }
        json_t *details = json_pack(
            "[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "name", "subnetId",
            "value", subnet_id, "name", "networkInterfaceId", "value", eni_id, "name", "macAddress",
            "value", r->net->mac ? r->net->mac : "", "name", "privateDnsName", "value", dns, "name",
            "privateIPv4Address", "value", r->net->ipv4);
        bool gone = strcmp(status, "STOPPED") == 0;
        json_object_set_new(rep, "attachments",
                            json_pack("[{s:s, s:s, s:s, s:o}]", "id", barge_json_str(eni, "id", ""),
                                      "type", "ElasticNetworkInterface", "status",
                                      gone ? "DELETED" : "ATTACHED", "details", details));
    }
    json_decref(eni);
    const char *stamps[] = {"pullStartedAt", "pullStoppedAt", "executionStoppedAt"};
    if (!r->stamps)
        r->stamps = json_object();
    for (size_t k = 0; k < BARGE_ARRAY_SIZE(stamps); k++) {
        json_t *v = json_object_get(rep, stamps[k]);
        if (v)
            json_object_set(r->stamps, stamps[k], v);
    }
    static const char *const known[] = {"PENDING", "RUNNING", "STOPPING", "STOPPED"};
    for (size_t k = 0; k < BARGE_ARRAY_SIZE(known); k++)
        if (strcmp(status, known[k]) == 0)
            r->known_status = known[k];
    publish_snapshot(r);
}

static void publish_snapshot(struct runner *r)
{
    json_t *snap = build_snapshot(r);
    pthread_mutex_lock(&r->e->lock);
    json_decref(r->meta);
    r->meta = snap;
    pthread_mutex_unlock(&r->e->lock);
}

/* The metadata endpoint's snapshot (see metadata.h), built by the runner
 * from its own state, so the server never touches a runner's containers. */
static json_t *build_snapshot(struct runner *r)
{
    const char *status = r->known_status ? r->known_status : "PENDING";
    json_t *manifest;
    pthread_mutex_lock(&r->e->lock);
    manifest = json_incref(r->manifest);
    bool want_stop = r->want_stop;
    pthread_mutex_unlock(&r->e->lock);
    json_t *task = barge_json_object(manifest, "task");
    json_t *td = barge_json_object(manifest, "taskDefinition");
    _cleanup_free_ char *rev =
        barge_xasprintf("%lld", (long long)barge_json_int(td, "revision", 0));
    json_t *snap = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "cluster",
                             barge_json_str(task, "clusterArn", ""), "taskArn", r->arn, "family",
                             barge_json_str(td, "family", ""), "revision", rev, "desiredStatus",
                             want_stop ? "STOPPED" : "RUNNING", "knownStatus", status, "launchType",
                             barge_json_str(task, "launchType", "EC2"), "group",
                             barge_json_str(task, "group", ""));
    barge_json_set_str(snap, "availabilityZone", barge_json_str(task, "availabilityZone", NULL));
    barge_json_set_str(snap, "cpu", barge_json_str(task, "cpu", NULL));
    barge_json_set_str(snap, "memory", barge_json_str(task, "memory", NULL));
    if (r->stamps)
        json_object_update(snap, r->stamps);
    if (r->pull_started > 0)
        json_object_set_new(snap, "pullStartedAt", json_real(r->pull_started));
    if (r->pull_stopped > 0)
        json_object_set_new(snap, "pullStoppedAt", json_real(r->pull_stopped));
    json_t *net = json_pack("{s:s}", "mode", r->net ? r->net->mode : "bridge");
    if (r->net) {
        barge_json_set_str(net, "ipv4", r->net->ipv4);
        barge_json_set_str(net, "mac", r->net->mac);
        barge_json_set_str(net, "subnet", r->net->subnet);
        barge_json_set_str(net, "gateway", r->net->gateway);
    }
    json_object_set_new(snap, "network", net);
    json_t *list = json_array();
    for (size_t i = 0; i < r->n_ctrs; i++) {
        struct ctr *c = &r->ctrs[i];
        json_t *def = json_array_get(r->defs, i);
        const char *known = c->exited                          ? "STOPPED"
                            : strcmp(status, "STOPPED") == 0   ? "STOPPED"
                            : c->created || c->restart_pending ? "RUNNING"
                                                               : "PENDING";
        json_t *x =
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:i}", "name", c->name, "image",
                      barge_json_str(def, "image", ""), "desiredStatus",
                      want_stop ? "STOPPED" : "RUNNING", "knownStatus", known, "restartPolicy",
                      c->restart_policy != NULL, "restartCount", c->restart_count);
        if (c->created)
            json_object_set_new(x, "runtimeId", json_string(c->id));
        if (r->imgs && r->imgs[i])
            barge_json_set_str(x, "imageDigest", r->imgs[i]->digest);
        json_t *tc = NULL;
        size_t k;
        json_t *v;
        json_array_foreach(barge_json_array(task, "containers"), k, v)
        {
            if (barge_streq(barge_json_str(v, "name", NULL), c->name))
                tc = v;
        }
        barge_json_set_str(x, "containerArn", barge_json_str(tc, "containerArn", NULL));
        if (c->exited && c->exit_code >= 0)
            json_object_set_new(x, "exitCode", json_integer(c->exit_code));
        json_object_set_new(x, "cpu", json_integer(barge_json_int(def, "cpu", 0)));
        json_object_set_new(x, "memory", json_integer(barge_json_int(def, "memory", 0)));
        if (c->created_at > 0)
            json_object_set_new(x, "createdAt", json_real(c->created_at));
        if (c->started_at > 0)
            json_object_set_new(x, "startedAt", json_real(c->started_at));
        if (c->exited && c->finished_at > 0)
            json_object_set_new(x, "finishedAt", json_real(c->finished_at));
        if (c->has_check) {
            json_t *h =
                json_pack("{s:s, s:i, s:s}", "status", barge_health_status_name(c->health.status),
                          "exitCode", c->health.last_exit, "output", c->health.output);
            if (c->health.status_since > 0)
                json_object_set_new(h, "since", json_real(c->health.status_since));
            json_object_set_new(x, "health", h);
        }
        json_t *ports = bindings_of(r, c->name);
        if (r->net && strcmp(r->net->mode, "awsvpc") == 0) {
            json_t *pm;
            json_array_foreach(barge_json_array(def, "portMappings"), k, pm)
            {
                json_int_t cp = barge_json_int(pm, "containerPort", 0);
                json_array_append_new(ports, json_pack("{s:I, s:I, s:s, s:s}", "containerPort", cp,
                                                       "hostPort", cp, "protocol",
                                                       barge_json_str(pm, "protocol", "tcp"),
                                                       "bindIP", r->net->ipv4 ? r->net->ipv4 : ""));
            }
        }
        json_object_set_new(x, "ports", ports);
        if (c->volumes)
            json_object_set(x, "volumes", c->volumes);
        json_t *labels = barge_json_object(def, "dockerLabels");
        if (labels)
            json_object_set(x, "dockerLabels", labels);
        json_t *lc = barge_json_object(def, "logConfiguration");
        if (lc) {
            barge_json_set_str(x, "logDriver", barge_json_str(lc, "logDriver", NULL));
            json_t *opts = barge_json_object(lc, "options");
            if (opts)
                json_object_set(x, "logOptions", opts);
        }
        json_array_append_new(list, x);
    }
    json_object_set_new(snap, "containers", list);
    json_decref(manifest);
    return snap;
}

static void checkpoint_extra(const struct ctr *c, json_t *out)
{
    json_object_set_new(out, "token", json_string(c->token));
    json_object_set_new(out, "restartCount", json_integer(c->restart_count));
    if (c->restart_policy)
        json_object_set(out, "restartPolicy", c->restart_policy);
    json_object_set_new(out, "createdAt", json_real(c->created_at));
    json_object_set_new(out, "startedAt", json_real(c->started_at));
    json_object_set_new(out, "lastStart", json_real(c->last_start));
    if (c->abandoned)
        json_object_set_new(out, "abandoned", json_true());
    if (c->volumes)
        json_object_set(out, "volumes", c->volumes);
}

static double num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static void adopt_container(struct ctr *c, const json_t *saved)
{
    const char *token = barge_json_str(saved, "token", NULL);
    if (token && strlen(token) == 32)
        memcpy(c->token, token, 33);
    else
        barge_id_hex32(c->token);
    c->restart_count = (int)barge_json_int(saved, "restartCount", 0);
    json_t *rp = barge_json_object(saved, "restartPolicy");
    c->restart_policy = rp ? json_deep_copy(rp) : NULL;
    c->created_at = num(saved, "createdAt");
    c->started_at = num(saved, "startedAt");
    c->last_start = num(saved, "lastStart");
    if (barge_json_bool(saved, "abandoned", false)) {
        c->abandoned = true;
        c->exited = true;
    }
    json_t *vols = barge_json_array(saved, "volumes");
    c->volumes = vols ? json_deep_copy(vols) : NULL;
}

static void adopt_network(struct runner *r)
{
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_net_task_load(&r->e->agent->net, r->task_id, &r->net, &err) < 0 &&
        err->code != BARGE_ERR_NOT_FOUND)
        barge_warn("task %s: %s", r->task_id, err->message);
}

json_t *barge_engine_metadata(struct barge_engine *e, const char *token)
{
    json_t *out = NULL;
    pthread_mutex_lock(&e->lock);
    for (struct runner *r = e->runners; r && !out; r = r->next) {
        for (size_t i = 0; i < r->n_ctrs && r->meta; i++) {
            if (strcmp(r->ctrs[i].token, token) != 0)
                continue;
            out = json_deep_copy(r->meta);
            json_object_set_new(out, "self", json_integer((json_int_t)i));
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return out;
}

/* ECS's answer to an unknown or stopped task's credentials id. */
static json_t *credentials_error(unsigned *status, unsigned code, const char *type,
                                 const char *message)
{
    *status = code;
    return json_pack("{s:s, s:s, s:i}", "code", type, "message", message, "HTTPErrorCode",
                     (int)code);
}

static struct runner *runner_by_creds(struct barge_engine *e, const char *id)
{
    for (struct runner *r = e->runners; r; r = r->next)
        if (r->creds_id[0] && strcmp(r->creds_id, id) == 0 && !r->finished)
            return r;
    return NULL;
}

json_t *barge_engine_task_credentials(struct barge_engine *e, const char *id, unsigned *status)
{
    _cleanup_free_ char *arn = NULL;
    json_t *creds = NULL;
    pthread_mutex_lock(&e->lock);
    struct runner *r = runner_by_creds(e, id);
    if (r) {
        arn = barge_xstrdup(r->arn);
        double expires = json_number_value(json_object_get(r->role_creds, "expiration"));
        if (r->role_creds &&
            barge_metadata_credentials_fresh(r->role_creds_at, expires, barge_now()))
            creds = json_deep_copy(r->role_creds);
    }
    pthread_mutex_unlock(&e->lock);
    if (!arn)
        return credentials_error(status, 400, "InvalidIdInRequest",
                                 "CredentialsV2Request: Credentials not found");
    if (!creds) {
        struct barge_agent_client *c = barge_agent_client_new(e->agent->cfg.server);
        _cleanup_json_ json_t *body = json_pack("{s:s, s:b}", "taskArn", arn, "taskRole", true);
        _cleanup_error_ struct barge_error *err = NULL;
        double asked = barge_now();
        int code = barge_agent_client_post(c, "/agent/credentials", body, e->agent->token, NULL, 30,
                                           &creds, &err);
        barge_agent_client_free(c);
        if (code != 200) {
            _cleanup_free_ char *why = barge_xasprintf(
                "barged refused the task role credentials (%d): %s", code,
                code < 0 ? err->message : barge_json_str(creds, "message", "no message"));
            json_decref(creds);
            barge_warn("task %s: %s", strrchr(arn, '/') + 1, why);
            return credentials_error(status, 500, "InternalError", why);
        }
        pthread_mutex_lock(&e->lock);
        if ((r = runner_by_creds(e, id))) {
            if (r->role_creds)
                barge_json_wipe(r->role_creds);
            json_decref(r->role_creds);
            r->role_creds = json_deep_copy(creds);
            r->role_creds_at = asked;
        }
        pthread_mutex_unlock(&e->lock);
    }
    json_t *doc = barge_metadata_credentials_doc(creds);
    barge_json_wipe(creds);
    json_decref(creds);
    *status = 200;
    return doc;
}

bool barge_engine_container_id(struct barge_engine *e, const char *task_arn, const char *name,
                               char *out, size_t len)
{
    bool found = false;
    pthread_mutex_lock(&e->lock);
    for (struct runner *r = e->runners; r && !found; r = r->next) {
        if (strcmp(r->arn, task_arn) != 0)
            continue;
        for (size_t i = 0; i < r->n_ctrs && !found; i++) {
            if (strcmp(r->ctrs[i].name, name) == 0 && r->ctrs[i].created) {
                snprintf(out, len, "%s", r->ctrs[i].id);
                found = true;
            }
        }
    }
    pthread_mutex_unlock(&e->lock);
    return found;
}

static void *run(void *ud)
{
    struct runner *r = ud;
    bool running = true;
    if (!r->adopted) {
        running = start_task(r);
    } else if (!should_stop(r)) {
        barge_info("task %s: adopted after restart", r->task_id);
        r->reported_running = true;
        report(r, "RUNNING", NULL, NULL, NULL);
    }
    while (running) {
        if (shutting_down(r))
            goto out;
        adopt_defs(r);
        const char *which = NULL;
        if (refresh_exits(r, &which) || restart_containers(r, &which)) {
            _cleanup_free_ char *reason = barge_xstrdup("Essential container in task exited");
            report(r, "STOPPING", "EssentialContainerExited", reason, NULL);
            stop_containers(r);
            finish(r, "EssentialContainerExited", reason);
            break;
        }
        if (!r->reported_running && !should_stop(r)) {
            int started = start_ready(r);
            if (started < 0)
                break; /* could not start: reported and cleaned up */
            if (started > 0) {
                /* Once: start_ready() has nothing left to start after this,
                 * and later reports (health, restarts) say RUNNING. */
                r->reported_running = true;
                checkpoint(r, "RUNNING");
                report(r, "RUNNING", NULL, NULL, NULL);
            }
        }
        if (health_changed(r))
            report(r, current_status(r), NULL, NULL, NULL);
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
    /* Here, not in runner_free(): that runs under the engine lock, which a
     * checker may be waiting for to tell of a change. */
    for (size_t i = 0; i < r->n_ctrs; i++)
        stop_checker(&r->ctrs[i]);
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
        barge_health_checker_stop(r->ctrs[i].checker);
        barge_health_config_release(&r->ctrs[i].hc);
        json_decref(r->ctrs[i].restart_policy);
        json_decref(r->ctrs[i].volumes);
    }
    for (size_t i = 0; r->imgs && i < r->n_ctrs; i++)
        barge_image_free(r->imgs[i]);
    free(r->imgs);
    barge_task_env_free(r->env);
    if (r->role_creds)
        barge_json_wipe(r->role_creds);
    json_decref(r->role_creds);
    json_decref(r->defs);
    json_decref(r->td);
    json_decref(r->meta);
    json_decref(r->stamps);
    barge_deps_free(r->deps);
    barge_net_task_free(r->net);
    free(r->taskfs);
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
    if (e->inotify_fd >= 0 && inotify_add_watch(e->inotify_fd, barge_runtime_exit_dir(agent->rt),
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
    /* Runners leave when a stop signal arrives; a poll answered after it must
     * not mistake their tasks for new ones and start them again. */
    if (e->shutting_down || barge_agent_stopping()) {
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
            if (stop && !r->want_stop &&
                barge_streq(barge_json_str(barge_json_object(m, "task"), "stopCode", NULL),
                            "SpotInterruption")) {
                /* Fargate Spot gives a two-minute warning before SIGKILL. */
                for (size_t k = 0; k < r->n_ctrs; k++)
                    r->ctrs[k].stop_timeout = 120;
            }
            if (stop)
                r->want_stop = true;
            continue;
        }
        if (stop && barge_streq(barge_json_str(barge_json_object(m, "task"), "lastStatus", NULL),
                                "STOPPED"))
            continue;
        r = runner_new(e, arn);
        r->manifest = json_incref(m);
        r->version = barge_json_int(m, "version", 0);
        r->want_stop = stop;
        json_t *task = barge_json_object(m, "task");
        r->fargate = barge_streq(barge_json_str(task, "launchType", NULL), "FARGATE");
        r->storage_gib =
            barge_json_int(barge_json_object(task, "ephemeralStorage"), "sizeInGiB", 20);
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
    bool host_route_wanted = false;
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
            adopt_container(&r->ctrs[i], c);
        }
        r->adopted = true;
        r->fargate = barge_json_bool(t, "fargate", false);
        const char *cid = barge_json_str(t, "credentialsId", NULL);
        if (cid && strlen(cid) == 36)
            memcpy(r->creds_id, cid, 37);
        if (r->fargate)
            r->taskfs = barge_runtime_taskfs_path(e->agent->taskfs_dir, r->task_id);
        adopt_network(r);
        if (!barge_streq(barge_json_str(t, "phase", NULL), "RUNNING")) {
            /* It was still starting when the agent died: give up on it
             * cleanly rather than guess how far it got. */
            r->want_stop = true;
            for (size_t k = 0; k < r->n_ctrs; k++)
                r->ctrs[k].created = true;
        }
        /* The agent's stop removed the host's route of its host-mode
         * tasks. */
        host_route_wanted |= r->creds_id[0] && r->net && !r->net->netns_path;
        r->next = e->runners;
        e->runners = r;
        runner_start(r);
    }
    pthread_mutex_unlock(&e->lock);
    _cleanup_error_ struct barge_error *err = NULL;
    if (host_route_wanted && e->agent->metadata && host_route(e->agent, &err) < 0)
        barge_warn("host-mode tasks get no credentials: %s", err->message);
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
