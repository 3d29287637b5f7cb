/* barged's metrics behind metrics.h. Counters and histograms sit behind one
 * mutex; they are bumped far less often than a mutex costs to matter. The
 * usage history keeps, per task, the last HISTORY samples an agent sent
 * (cumulative CPU time and memory working set summed over the containers, plus
 * each container's latest values for /metrics); a task that has not reported
 * for HISTORY_TTL seconds is forgotten.
 *
 * CPU use is a rate, so it needs two samples: over a window, from the oldest
 * sample inside it (or the last one before it, when only one is inside) to
 * the newest, using the agent's own timestamps so that delivery delays do not
 * distort it. Memory is the average of the samples in the window. */
#include "api/metrics.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/prom.h"

#define HISTORY        64
#define HISTORY_TTL    600
#define DEFAULT_WINDOW 60

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5};
static const double pull_bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

struct api_stat {
    char *service, *operation;
    uint64_t by_status[6]; /* 1xx..5xx by hundreds; [0] anything else */
    struct barge_prom_histogram latency;
};

struct sample {
    double agent_time; /* the agent's clock, for rates */
    double received;   /* our clock, for windows */
    uint64_t cpu_ns;
    uint64_t memory;
};

struct ctr_stat {
    char *name;
    uint64_t cpu_ns, memory, memory_limit;
};

struct task_hist {
    char *cluster, *task_id;
    struct sample samples[HISTORY];
    size_t n, head; /* ring: head is the next slot */
    struct ctr_stat *ctrs;
    size_t n_ctrs;
    double last_seen;
};

static struct {
    pthread_mutex_t lock;
    struct api_stat *api;
    size_t n_api;
    struct barge_prom_histogram pulls;
    bool pulls_ready;
    uint64_t log_events, log_dropped, reports;
    struct task_hist **tasks;
    size_t n_tasks;
} M = {.lock = PTHREAD_MUTEX_INITIALIZER};

double barge_metrics_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void barge_metrics_api_observe(const char *service, const char *operation, int status,
                               double seconds)
{
    if (!service)
        service = "unknown";
    if (!operation)
        operation = "unknown";
    pthread_mutex_lock(&M.lock);
    struct api_stat *s = NULL;
    for (size_t i = 0; i < M.n_api && !s; i++)
        if (strcmp(M.api[i].service, service) == 0 && strcmp(M.api[i].operation, operation) == 0)
            s = &M.api[i];
    if (!s) {
        M.api = barge_xrealloc(M.api, (M.n_api + 1) * sizeof(*M.api));
        s = &M.api[M.n_api++];
        memset(s, 0, sizeof(*s));
        s->service = barge_xstrdup(service);
        s->operation = barge_xstrdup(operation);
        barge_prom_histogram_init(&s->latency, latency_bounds, BARGE_ARRAY_SIZE(latency_bounds));
    }
    int cls = status / 100;
    s->by_status[cls >= 1 && cls <= 5 ? cls : 0]++;
    barge_prom_histogram_observe(&s->latency, seconds);
    pthread_mutex_unlock(&M.lock);
}

static void pulls_ready_locked(void)
{
    if (!M.pulls_ready) {
        barge_prom_histogram_init(&M.pulls, pull_bounds, BARGE_ARRAY_SIZE(pull_bounds));
        M.pulls_ready = true;
    }
}

void barge_metrics_image_pull(double seconds)
{
    if (!(seconds >= 0))
        return;
    pthread_mutex_lock(&M.lock);
    pulls_ready_locked();
    barge_prom_histogram_observe(&M.pulls, seconds);
    pthread_mutex_unlock(&M.lock);
}

void barge_metrics_logs_ingested(int64_t events, int64_t dropped)
{
    pthread_mutex_lock(&M.lock);
    M.log_events += events > 0 ? (uint64_t)events : 0;
    M.log_dropped += dropped > 0 ? (uint64_t)dropped : 0;
    pthread_mutex_unlock(&M.lock);
}

/* --- usage history -------------------------------------------------------- */

static void task_hist_free(struct task_hist *t)
{
    for (size_t i = 0; i < t->n_ctrs; i++)
        free(t->ctrs[i].name);
    free(t->ctrs);
    free(t->cluster);
    free(t->task_id);
    free(t);
}

static struct task_hist *find_task_locked(const char *cluster, const char *task_id)
{
    for (size_t i = 0; i < M.n_tasks; i++)
        if (strcmp(M.tasks[i]->task_id, task_id) == 0 && strcmp(M.tasks[i]->cluster, cluster) == 0)
            return M.tasks[i];
    return NULL;
}

static void forget_stale_locked(double now)
{
    size_t k = 0;
    for (size_t i = 0; i < M.n_tasks; i++) {
        if (now - M.tasks[i]->last_seen > HISTORY_TTL)
            task_hist_free(M.tasks[i]);
        else
            M.tasks[k++] = M.tasks[i];
    }
    M.n_tasks = k;
}

static const struct sample *nth(const struct task_hist *t, size_t i) /* 0 = oldest */
{
    return &t->samples[(t->head + HISTORY - t->n + i) % HISTORY];
}

/* CPU units (1024 per core) and memory MiB a task used over the window
 * ending now; false when it has no recent samples or too few for a rate. */
static bool task_usage_locked(const struct task_hist *t, double now, int window, double *cpu_units,
                              double *mem_mib)
{
    if (t->n < 2)
        return false;
    const struct sample *newest = nth(t, t->n - 1);
    if (now - newest->received > window)
        return false;
    size_t first = t->n - 1;
    while (first > 0 && now - nth(t, first - 1)->received <= window)
        first--;
    double mem = 0;
    for (size_t i = first; i < t->n; i++)
        mem += (double)nth(t, i)->memory;
    *mem_mib = mem / (double)(t->n - first) / (1024.0 * 1024.0);
    if (first == t->n - 1)
        first--; /* one sample inside: measure from the one before */
    const struct sample *oldest = nth(t, first);
    double dt = newest->agent_time - oldest->agent_time;
    if (dt <= 0)
        return false;
    double used_ns =
        newest->cpu_ns >= oldest->cpu_ns ? (double)(newest->cpu_ns - oldest->cpu_ns) : 0;
    *cpu_units = used_ns / (dt * 1e9) * 1024.0;
    return true;
}

static void record_locked(const char *cluster, const char *task_id, double agent_time, double now,
                          const json_t *containers)
{
    struct task_hist *t = find_task_locked(cluster, task_id);
    if (!t) {
        t = barge_xcalloc(1, sizeof(*t));
        t->cluster = barge_xstrdup(cluster);
        t->task_id = barge_xstrdup(task_id);
        M.tasks = barge_xrealloc(M.tasks, (M.n_tasks + 1) * sizeof(*M.tasks));
        M.tasks[M.n_tasks++] = t;
    }
    struct sample s = {.agent_time = agent_time, .received = now};
    for (size_t i = 0; i < t->n_ctrs; i++)
        free(t->ctrs[i].name);
    t->n_ctrs = json_array_size(containers);
    t->ctrs = barge_xrealloc(t->ctrs, (t->n_ctrs + 1) * sizeof(*t->ctrs));
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)containers, i, c)
    {
        struct ctr_stat *cs = &t->ctrs[i];
        cs->name = barge_xstrdup(barge_json_str(c, "name", ""));
        cs->cpu_ns = (uint64_t)barge_json_int(c, "cpuNs", 0);
        cs->memory = (uint64_t)barge_json_int(c, "memoryBytes", 0);
        cs->memory_limit = (uint64_t)barge_json_int(c, "memoryLimitBytes", 0);
        s.cpu_ns += cs->cpu_ns;
        s.memory += cs->memory;
    }
    /* A sample from an agent whose clock went back, or a resend, would make
     * a negative interval: keep only samples that move forward. */
    if (t->n > 0 && agent_time <= nth(t, t->n - 1)->agent_time)
        return;
    t->samples[t->head] = s;
    t->head = (t->head + 1) % HISTORY;
    if (t->n < HISTORY)
        t->n++;
    t->last_seen = now;
}

/* "<cluster>/<task id>", the store key of the task an ARN names
 * ("arn:aws:ecs:...:task/<cluster>/<id>"): an agent of the Fargate pool runs
 * tasks of every cluster, so its own cluster does not say. A bare id falls
 * back to dflt_cluster. Caller frees. */
static char *task_key(const char *arn, const char *dflt_cluster)
{
    const char *t = strstr(arn, ":task/");
    const char *slash = t ? strchr(t + 6, '/') : NULL;
    if (slash && slash[1])
        return barge_xstrdup(t + 6);
    const char *last = strrchr(arn, '/');
    return barge_xasprintf("%s/%s", dflt_cluster, last ? last + 1 : arn);
}

int barge_metrics_agent_report(struct barge_server *srv, const char *cluster,
                               const char *instance_id, const json_t *in, json_t **out,
                               struct barge_error **err)
{
    json_t *tasks = barge_json_array(in, "tasks");
    json_t *t = json_object_get(in, "time");
    double now = barge_metrics_clock();
    double agent_time = json_is_number(t) ? json_number_value(t) : barge_now();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0)
        return -1;
    /* Check ownership first, outside the metrics lock: the store may be slow. */
    _cleanup_json_ json_t *owned = json_array();
    size_t i;
    json_t *task;
    json_array_foreach(tasks, i, task)
    {
        _cleanup_free_ char *key = task_key(barge_json_str(task, "taskArn", ""), cluster);
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_get(tx, ECS_KIND_TASK, key, &doc, err) < 0)
            return -1;
        if (!doc || !barge_streq(barge_json_str(doc, "_instanceId", NULL), instance_id))
            continue;
        json_t *ctrs = barge_json_array(task, "containers");
        const char *slash = strchr(key, '/');
        json_array_append_new(owned, json_pack("{s:s%, s:s, s:o}", "cluster", key,
                                               (size_t)(slash - key), "id", slash + 1, "containers",
                                               ctrs ? json_incref(ctrs) : json_array()));
    }
    pthread_mutex_lock(&M.lock);
    M.reports++;
    forget_stale_locked(now);
    json_array_foreach(owned, i, task)
    {
        record_locked(barge_json_str(task, "cluster", ""), barge_json_str(task, "id", ""),
                      agent_time, now, barge_json_array(task, "containers"));
    }
    pthread_mutex_unlock(&M.lock);
    *out = json_pack("{s:I}", "accepted", (json_int_t)json_array_size(owned));
    return 0;
}

/* --- utilization ------------------------------------------------------------ */

static double reserved(const json_t *task, const char *key, double dflt)
{
    const char *v = barge_json_str(task, key, NULL);
    double r = v ? strtod(v, NULL) : 0;
    return r > 0 ? r : dflt;
}

struct util_scan {
    const char *cluster;
    const char *group; /* NULL: every task */
    double now;
    int window;
    double cpu_used, cpu_reserved, mem_used, mem_reserved;
    int measured;
    double all_cpu_reserved, all_mem_reserved; /* every RUNNING or PENDING task */
};

static int util_task(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct util_scan *u = ud;
    const char *last = barge_json_str(doc, "lastStatus", "");
    if (strcmp(last, "STOPPED") != 0 && strcmp(last, "DELETED") != 0 &&
        !barge_streq(barge_json_str(doc, "launchType", NULL), "FARGATE")) {
        u->all_cpu_reserved += reserved(doc, "cpu", 0);
        u->all_mem_reserved += reserved(doc, "memory", 0);
    }
    if (strcmp(last, "RUNNING") != 0)
        return 0;
    if (u->group && !barge_streq(barge_json_str(doc, "group", NULL), u->group))
        return 0;
    const char *slash = strrchr(key, '/');
    double cpu, mem;
    pthread_mutex_lock(&M.lock);
    struct task_hist *t = find_task_locked(u->cluster, slash ? slash + 1 : key);
    bool ok = t && task_usage_locked(t, u->now, u->window, &cpu, &mem);
    pthread_mutex_unlock(&M.lock);
    if (!ok)
        return 0;
    u->measured++;
    u->cpu_used += cpu;
    u->mem_used += mem;
    u->cpu_reserved += reserved(doc, "cpu", 1024);
    u->mem_reserved += reserved(doc, "memory", 0);
    return 0;
}

static double pct(double used, double total)
{
    return total > 0 ? used * 100.0 / total : 0;
}

int barge_metrics_service_utilization(struct barge_server *srv, const char *cluster,
                                      const char *group, int window_seconds, double *cpu_pct,
                                      double *mem_pct)
{
    *cpu_pct = *mem_pct = 0;
    struct util_scan u = {.cluster = cluster,
                          .group = group,
                          .now = barge_metrics_clock(),
                          .window = window_seconds > 0 ? window_seconds : DEFAULT_WINDOW};
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", cluster);
    if (barge_store_begin(srv->store, false, &tx, &err) < 0 ||
        barge_store_scan(tx, ECS_KIND_TASK, prefix, NULL, false, 0, util_task, &u, &err) < 0) {
        barge_warn("service utilization of %s in %s: %s", group, cluster, err->message);
        return -1;
    }
    *cpu_pct = pct(u.cpu_used, u.cpu_reserved);
    *mem_pct = pct(u.mem_used, u.mem_reserved);
    return u.measured;
}

double barge_metrics_autoscale_metric(struct barge_server *srv, const char *cluster,
                                      const char *service, const char *metric, int window_seconds)
{
    _cleanup_free_ char *group = barge_xasprintf("service:%s", service);
    double cpu, mem;
    if (barge_metrics_service_utilization(srv, cluster, group, window_seconds, &cpu, &mem) <= 0)
        return -1;
    if (barge_streq(metric, "ECSServiceAverageCPUUtilization"))
        return cpu;
    if (barge_streq(metric, "ECSServiceAverageMemoryUtilization"))
        return mem;
    return -1;
}

/* --- CloudWatch's AWS/ECS metrics ------------------------------------------- */

/* CPU units and memory MiB a task used in [from, to) (our clock), measured
 * from the last sample before the interval (when there is one) to the last
 * inside it; false without samples enough for a rate. */
static bool task_usage_between_locked(const struct task_hist *t, double from, double to,
                                      double *cpu_units, double *mem_mib)
{
    size_t first = t->n, last = 0;
    double mem = 0;
    for (size_t i = 0; i < t->n; i++) {
        double r = nth(t, i)->received;
        if (r < from || r >= to)
            continue;
        if (first == t->n)
            first = i;
        last = i;
        mem += (double)nth(t, i)->memory;
    }
    if (first == t->n)
        return false;
    *mem_mib = mem / (double)(last - first + 1) / (1024.0 * 1024.0);
    size_t a = first > 0 ? first - 1 : first;
    double dt = nth(t, last)->agent_time - nth(t, a)->agent_time;
    if (a == last || dt <= 0)
        return false;
    uint64_t c0 = nth(t, a)->cpu_ns, c1 = nth(t, last)->cpu_ns;
    *cpu_units = (c1 >= c0 ? (double)(c1 - c0) : 0) / (dt * 1e9) * 1024.0;
    return true;
}

struct dp_bucket {
    double used, reserved, sum, min, max;
    int count;
};

struct dp_scan {
    const char *cluster, *group;
    bool cpu;
    double from; /* our clock */
    int period;
    size_t n;
    struct dp_bucket *b;
};

static int dp_task(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct dp_scan *d = ud;
    if (d->group && !barge_streq(barge_json_str(doc, "group", NULL), d->group))
        return 0;
    double res = d->cpu ? reserved(doc, "cpu", 1024) : reserved(doc, "memory", 0);
    if (res <= 0)
        return 0;
    const char *slash = strrchr(key, '/');
    pthread_mutex_lock(&M.lock);
    struct task_hist *t = find_task_locked(d->cluster, slash ? slash + 1 : key);
    for (size_t i = 0; t && i < d->n; i++) {
        double from = d->from + (double)i * d->period, cpu, mem;
        if (!task_usage_between_locked(t, from, from + d->period, &cpu, &mem))
            continue;
        double used = d->cpu ? cpu : mem, task_pct = pct(used, res);
        struct dp_bucket *b = &d->b[i];
        b->min = b->count ? fmin(b->min, task_pct) : task_pct;
        b->max = b->count ? fmax(b->max, task_pct) : task_pct;
        b->used += used;
        b->reserved += res;
        b->sum += task_pct;
        b->count++;
    }
    pthread_mutex_unlock(&M.lock);
    return 0;
}

int barge_metrics_ecs_datapoints(struct barge_server *srv, const char *metric, const char *cluster,
                                 const char *service, double start, double end, int period,
                                 json_t **out, struct barge_error **err)
{
    *out = json_array();
    bool cpu = barge_streq(metric, "CPUUtilization");
    if ((!cpu && !barge_streq(metric, "MemoryUtilization")) || period <= 0 || end <= start)
        return 0;
    _cleanup_free_ char *group = service ? barge_xasprintf("service:%s", service) : NULL;
    struct dp_scan d = {.cluster = cluster,
                        .group = group,
                        .cpu = cpu,
                        .from = start + (barge_metrics_clock() - barge_now()),
                        .period = period,
                        .n = (size_t)ceil((end - start) / period)};
    d.b = barge_xcalloc(d.n, sizeof(*d.b));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", cluster);
    int r = barge_store_begin(srv->store, false, &tx, err);
    if (r == 0)
        r = barge_store_scan(tx, ECS_KIND_TASK, prefix, NULL, false, 0, dp_task, &d, err);
    for (size_t i = 0; r == 0 && i < d.n; i++) {
        const struct dp_bucket *b = &d.b[i];
        if (!b->count)
            continue;
        json_array_append_new(*out,
                              json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:s}", "Timestamp",
                                        start + (double)i * period, "SampleCount", (double)b->count,
                                        "Average", pct(b->used, b->reserved), "Sum", b->sum,
                                        "Minimum", b->min, "Maximum", b->max, "Unit", "Percent"));
    }
    free(d.b);
    return r;
}

struct registered {
    double cpu, memory;
};

static int add_instance(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct registered *r = ud;
    const char *st = barge_json_str(doc, "status", "");
    if (strcmp(st, "ACTIVE") != 0 && strcmp(st, "DRAINING") != 0)
        return 0;
    json_t *total = barge_json_object(doc, "_total");
    r->cpu += (double)barge_json_int(total, "cpu", 0);
    r->memory += (double)barge_json_int(total, "memory", 0);
    return 0;
}

static void add_stat(json_t *stats, const char *name, double v)
{
    _cleanup_free_ char *s = barge_xasprintf("%.2f", v);
    json_array_append_new(stats, json_pack("{s:s, s:s}", "name", name, "value", s));
}

int barge_metrics_cluster_statistics(struct barge_tx *tx, const char *cluster, json_t *stats,
                                     struct barge_error **err)
{
    struct registered reg = {0};
    struct util_scan u = {
        .cluster = cluster, .now = barge_metrics_clock(), .window = DEFAULT_WINDOW};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", cluster);
    if (barge_store_scan(tx, ECS_KIND_INSTANCE, prefix, NULL, false, 0, add_instance, &reg, err) <
            0 ||
        barge_store_scan(tx, ECS_KIND_TASK, prefix, NULL, false, 0, util_task, &u, err) < 0)
        return -1;
    if (u.measured > 0) {
        add_stat(stats, "CPUUtilization", pct(u.cpu_used, reg.cpu));
        add_stat(stats, "MemoryUtilization", pct(u.mem_used, reg.memory));
    }
    add_stat(stats, "CPUReservation", pct(u.all_cpu_reserved, reg.cpu));
    add_stat(stats, "MemoryReservation", pct(u.all_mem_reserved, reg.memory));
    return 0;
}

/* --- /metrics ------------------------------------------------------------------ */

struct scrape {
    json_t *task_counts;     /* "cluster\nstatus" -> n */
    json_t *instance_counts; /* "cluster\nstatus\nconnected" -> n */
    json_t *groups;          /* "cluster\ngroup" -> true, for RUNNING tasks */
    json_t *task_groups;     /* "cluster/taskId" -> group */
};

static void bump(json_t *counts, const char *key)
{
    json_object_set_new(counts, key, json_integer(barge_json_int(counts, key, 0) + 1));
}

static int scrape_task(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct scrape *s = ud;
    const char *slash = strchr(key, '/');
    _cleanup_free_ char *cluster = barge_xstrndup(key, slash ? (size_t)(slash - key) : 0);
    const char *status = barge_json_str(doc, "lastStatus", "UNKNOWN");
    _cleanup_free_ char *k = barge_xasprintf("%s\n%s", cluster, status);
    bump(s->task_counts, k);
    const char *group = barge_json_str(doc, "group", "");
    json_object_set_new(s->task_groups, key, json_string(group));
    if (strcmp(status, "RUNNING") == 0 && *group) {
        _cleanup_free_ char *g = barge_xasprintf("%s\n%s", cluster, group);
        json_object_set_new(s->groups, g, json_true());
    }
    return 0;
}

static int scrape_instance(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct scrape *s = ud;
    const char *slash = strchr(key, '/');
    _cleanup_free_ char *cluster = barge_xstrndup(key, slash ? (size_t)(slash - key) : 0);
    _cleanup_free_ char *k =
        barge_xasprintf("%s\n%s\n%s", cluster, barge_json_str(doc, "status", "UNKNOWN"),
                        ecs_instance_connected(doc) ? "true" : "false");
    bump(s->instance_counts, k);
    return 0;
}

/* Splits "a\nb\nc" into at most 3 parts in place. */
static size_t split(char *s, char **parts)
{
    size_t n = 0;
    parts[n++] = s;
    for (char *p = s; *p && n < 3; p++)
        if (*p == '\n') {
            *p = '\0';
            parts[n++] = p + 1;
        }
    return n;
}

static void write_api_locked(struct barge_prom *p)
{
    static const char *codes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    barge_prom_family(p, "barge_api_requests_total", "counter",
                      "API requests served, by service, operation and status class.");
    for (size_t i = 0; i < M.n_api; i++)
        for (size_t c = 0; c < 6; c++)
            if (M.api[i].by_status[c]) {
                const char *l[] = {"service", M.api[i].service, "operation", M.api[i].operation,
                                   "code",    codes[c],         NULL};
                barge_prom_sample(p, "barge_api_requests_total", l, (double)M.api[i].by_status[c]);
            }
    barge_prom_family(p, "barge_api_request_duration_seconds", "histogram",
                      "Time to serve an API request, by service and operation.");
    for (size_t i = 0; i < M.n_api; i++) {
        const char *l[] = {"service", M.api[i].service, "operation", M.api[i].operation, NULL};
        barge_prom_histogram_write(p, "barge_api_request_duration_seconds", l, &M.api[i].latency);
    }
    barge_prom_family(p, "barge_scheduler_decisions_total", "counter",
                      "Task placement decisions, by outcome.");
    const char *placed[] = {"decision", "placed", NULL};
    const char *unplaceable[] = {"decision", "unplaceable", NULL};
    uint64_t n_placed, n_unplaceable;
    ecs_placement_decisions(&n_placed, &n_unplaceable);
    barge_prom_sample(p, "barge_scheduler_decisions_total", placed, (double)n_placed);
    barge_prom_sample(p, "barge_scheduler_decisions_total", unplaceable, (double)n_unplaceable);
    pulls_ready_locked();
    barge_prom_family(p, "barge_image_pull_duration_seconds", "histogram",
                      "Image pull times reported by agents.");
    barge_prom_histogram_write(p, "barge_image_pull_duration_seconds", NULL, &M.pulls);
    barge_prom_family(p, "barge_log_events_ingested_total", "counter",
                      "Log events stored by PutLogEvents and by agents.");
    barge_prom_sample(p, "barge_log_events_ingested_total", NULL, (double)M.log_events);
    barge_prom_family(p, "barge_log_lines_dropped_total", "counter",
                      "Log lines agents dropped in non-blocking mode.");
    barge_prom_sample(p, "barge_log_lines_dropped_total", NULL, (double)M.log_dropped);
    barge_prom_family(p, "barge_agent_metric_reports_total", "counter",
                      "Usage reports received from agents.");
    barge_prom_sample(p, "barge_agent_metric_reports_total", NULL, (double)M.reports);
}

static void write_containers_locked(struct barge_prom *p, const json_t *task_groups)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"barge_container_cpu_seconds_total", "counter", "CPU time used by a container."},
        {"barge_container_memory_bytes", "gauge", "Memory working set of a container."},
        {"barge_container_memory_limit_bytes", "gauge",
         "Hard memory limit of a container (0: none)."},
    };
    for (size_t f = 0; f < BARGE_ARRAY_SIZE(fams); f++) {
        barge_prom_family(p, fams[f].name, fams[f].type, fams[f].help);
        for (size_t i = 0; i < M.n_tasks; i++) {
            struct task_hist *t = M.tasks[i];
            _cleanup_free_ char *key = barge_xasprintf("%s/%s", t->cluster, t->task_id);
            const char *group = barge_json_str(task_groups, key, NULL);
            if (!group)
                continue; /* the task is gone */
            for (size_t c = 0; c < t->n_ctrs; c++) {
                const char *l[] = {"cluster", t->cluster,  "task",          t->task_id, "group",
                                   group,     "container", t->ctrs[c].name, NULL};
                double v = f == 0   ? (double)t->ctrs[c].cpu_ns / 1e9
                           : f == 1 ? (double)t->ctrs[c].memory
                                    : (double)t->ctrs[c].memory_limit;
                barge_prom_sample(p, fams[f].name, l, v);
            }
        }
    }
}

static int scrape_store(struct barge_server *srv, struct barge_prom *p, struct scrape *s,
                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_TASK, "", NULL, false, 0, scrape_task, s, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_INSTANCE, "", NULL, false, 0, scrape_instance, s, err) < 0)
        return -1;
    barge_prom_family(p, "barge_tasks", "gauge", "Tasks known to barged, by last status.");
    const char *k;
    json_t *v;
    json_object_foreach(s->task_counts, k, v)
    {
        _cleanup_free_ char *copy = barge_xstrdup(k);
        char *parts[3] = {0};
        split(copy, parts);
        const char *l[] = {"cluster", parts[0], "status", parts[1] ? parts[1] : "", NULL};
        barge_prom_sample(p, "barge_tasks", l, (double)json_integer_value(v));
    }
    barge_prom_family(p, "barge_container_instances", "gauge",
                      "Container instances, by status and whether their agent is connected.");
    json_object_foreach(s->instance_counts, k, v)
    {
        _cleanup_free_ char *copy = barge_xstrdup(k);
        char *parts[3] = {0};
        if (split(copy, parts) < 3)
            continue;
        const char *l[] = {"cluster", parts[0], "status", parts[1], "connected", parts[2], NULL};
        barge_prom_sample(p, "barge_container_instances", l, (double)json_integer_value(v));
    }
    /* ECS's per-service (and per-family) utilization, through the function
     * auto scaling calls, so that what /metrics shows is what it sees. */
    barge_prom_family(p, "barge_group_cpu_utilization_percent", "gauge",
                      "CPU used over CPU reserved by a task group's running tasks, last minute.");
    _cleanup_json_ json_t *mem = json_object();
    json_object_foreach(s->groups, k, v)
    {
        _cleanup_free_ char *copy = barge_xstrdup(k);
        char *parts[3] = {0};
        if (split(copy, parts) < 2)
            continue;
        double cpu, mem_pct;
        int n = barge_metrics_service_utilization(srv, parts[0], parts[1], DEFAULT_WINDOW, &cpu,
                                                  &mem_pct);
        if (n <= 0)
            continue;
        const char *l[] = {"cluster", parts[0], "group", parts[1], NULL};
        barge_prom_sample(p, "barge_group_cpu_utilization_percent", l, cpu);
        json_object_set_new(mem, k, json_real(mem_pct));
    }
    barge_prom_family(p, "barge_group_memory_utilization_percent", "gauge",
                      "Memory used over memory reserved by a task group's running tasks, last "
                      "minute.");
    json_object_foreach(mem, k, v)
    {
        _cleanup_free_ char *copy = barge_xstrdup(k);
        char *parts[3] = {0};
        split(copy, parts);
        const char *l[] = {"cluster", parts[0], "group", parts[1], NULL};
        barge_prom_sample(p, "barge_group_memory_utilization_percent", l, json_real_value(v));
    }
    return 0;
}

static bool is_metrics_path(const char *path)
{
    return strcmp(path, "/metrics") == 0 || strcmp(path, "/metrics/") == 0;
}

void barge_metrics_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    if (!is_metrics_path(req->path)) {
        barge_http_resp_set(resp, 404, "text/plain", barge_xstrdup("not found\n"), 10);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        barge_http_resp_set(resp, 405, "text/plain", barge_xstrdup("use GET\n"), 8);
        return;
    }
    struct barge_server *srv = req->server;
    struct barge_prom p = {0};
    struct scrape s = {json_object(), json_object(), json_object(), json_object()};
    _cleanup_error_ struct barge_error *err = NULL;
    int r = scrape_store(srv, &p, &s, &err);
    if (r == 0) {
        pthread_mutex_lock(&M.lock);
        forget_stale_locked(barge_metrics_clock());
        write_api_locked(&p);
        write_containers_locked(&p, s.task_groups);
        pthread_mutex_unlock(&M.lock);
    }
    json_decref(s.task_counts);
    json_decref(s.instance_counts);
    json_decref(s.groups);
    json_decref(s.task_groups);
    size_t len;
    char *text = barge_prom_finish(&p, &len);
    if (r < 0) {
        free(text);
        barge_err("/metrics: %s", err->message);
        barge_http_resp_set(resp, 500, "text/plain", barge_xstrdup("metrics unavailable\n"), 20);
        return;
    }
    barge_http_resp_set(resp, 200, BARGE_PROM_CONTENT_TYPE, text, len);
}
