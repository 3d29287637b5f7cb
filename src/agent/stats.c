/* The agent's usage reporter and /metrics listener (stats.h). Which
 * containers exist is read from the agent's checkpoint (every container a
 * runner created is there), so this needs nothing from the engine. Reports
 * carry the monotonic clock, which survives an agent restart on the same
 * host, so barged's rates stay right across one. */
#include "agent/stats.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/logship.h"
#include "common/json.h"
#include "common/log.h"
#include "common/prom.h"
#include "http/http.h"

struct barge_stats {
    struct barge_agent *agent;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    struct barge_http_server *http;
    uint64_t reports_ok, reports_failed;
};

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* [{taskArn, containers: [{name, cpuNs, memoryBytes, memoryLimitBytes}]}] of
 * every created container that still has a cgroup. New reference. */
static json_t *collect(struct barge_agent *a)
{
    pthread_mutex_lock(&a->lock);
    json_t *tasks = json_deep_copy(barge_json_object(a->state, "tasks"));
    pthread_mutex_unlock(&a->lock);
    json_t *out = json_array();
    const char *arn;
    json_t *t;
    json_object_foreach(tasks, arn, t)
    {
        json_t *ctrs = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(barge_json_array(t, "containers"), i, c)
        {
            if (!barge_json_bool(c, "created", false))
                continue;
            struct barge_runtime_stats st;
            _cleanup_error_ struct barge_error *err = NULL;
            if (barge_runtime_stats(a->rt, barge_json_str(c, "id", ""), &st, &err) < 0)
                continue;
            /* The working set, as docker stats and ECS count it: page cache
             * that can be dropped is not the container's to keep. */
            uint64_t ws = st.memory_usage > st.memory_cache ? st.memory_usage - st.memory_cache : 0;
            json_array_append_new(
                ctrs, json_pack("{s:s, s:I, s:I, s:I}", "name", barge_json_str(c, "name", ""),
                                "cpuNs", (json_int_t)st.cpu_ns, "memoryBytes", (json_int_t)ws,
                                "memoryLimitBytes", (json_int_t)st.memory_limit));
        }
        if (json_array_size(ctrs) > 0)
            json_array_append_new(out, json_pack("{s:s, s:o}", "taskArn", arn, "containers", ctrs));
        else
            json_decref(ctrs);
    }
    json_decref(tasks);
    return out;
}

static void *run(void *ud)
{
    struct barge_stats *st = ud;
    struct barge_agent_client *client = barge_agent_client_new(st->agent->cfg.server);
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        pthread_mutex_unlock(&st->lock);
        json_t *tasks = collect(st->agent);
        if (json_array_size(tasks) > 0) {
            _cleanup_json_ json_t *body =
                json_pack("{s:o, s:f}", "tasks", tasks, "time", monotonic_seconds());
            _cleanup_json_ json_t *out = NULL;
            _cleanup_error_ struct barge_error *err = NULL;
            int status = barge_agent_client_post(client, "/agent/metrics", body, st->agent->token,
                                                 NULL, 10, &out, &err);
            pthread_mutex_lock(&st->lock);
            if (status == 200)
                st->reports_ok++;
            else
                st->reports_failed++;
            pthread_mutex_unlock(&st->lock);
            if (status != 200)
                barge_debug("reporting usage: %s",
                            err ? err->message : barge_json_str(out, "message", "refused"));
        } else {
            json_decref(tasks);
        }
        pthread_mutex_lock(&st->lock);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += st->interval_ms / 1000;
        ts.tv_nsec += (long)(st->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!st->stopping && pthread_cond_timedwait(&st->wake, &st->lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&st->lock);
    barge_agent_client_free(client);
    return NULL;
}

static char *render(struct barge_stats *st)
{
    struct barge_prom p = {0};
    _cleanup_json_ json_t *tasks = collect(st->agent);
    pthread_mutex_lock(&st->agent->lock);
    size_t n_tasks = json_object_size(barge_json_object(st->agent->state, "tasks"));
    pthread_mutex_unlock(&st->agent->lock);
    barge_prom_family(&p, "barge_agent_tasks", "gauge", "Tasks this agent runs.");
    barge_prom_sample(&p, "barge_agent_tasks", NULL, (double)n_tasks);
    static const struct {
        const char *name, *type, *help, *key;
        double scale;
    } fams[] = {
        {"barge_agent_container_cpu_seconds_total", "counter", "CPU time used by a container.",
         "cpuNs", 1e-9},
        {"barge_agent_container_memory_bytes", "gauge", "Memory working set of a container.",
         "memoryBytes", 1},
        {"barge_agent_container_memory_limit_bytes", "gauge",
         "Hard memory limit of a container (0: none).", "memoryLimitBytes", 1},
    };
    for (size_t f = 0; f < BARGE_ARRAY_SIZE(fams); f++) {
        barge_prom_family(&p, fams[f].name, fams[f].type, fams[f].help);
        size_t i, j;
        json_t *t, *c;
        json_array_foreach(tasks, i, t)
        {
            const char *arn = barge_json_str(t, "taskArn", "");
            const char *slash = strrchr(arn, '/');
            json_array_foreach(barge_json_array(t, "containers"), j, c)
            {
                const char *l[] = {"task", slash ? slash + 1 : arn, "container",
                                   barge_json_str(c, "name", ""), NULL};
                barge_prom_sample(&p, fams[f].name, l,
                                  (double)barge_json_int(c, fams[f].key, 0) * fams[f].scale);
            }
        }
    }
    pthread_mutex_lock(&st->lock);
    uint64_t ok = st->reports_ok, failed = st->reports_failed;
    pthread_mutex_unlock(&st->lock);
    barge_prom_family(&p, "barge_agent_metric_reports_total", "counter",
                      "Usage reports sent to barged, by result.");
    const char *lok[] = {"result", "ok", NULL}, *lfail[] = {"result", "failed", NULL};
    barge_prom_sample(&p, "barge_agent_metric_reports_total", lok, (double)ok);
    barge_prom_sample(&p, "barge_agent_metric_reports_total", lfail, (double)failed);
    if (st->agent->logship)
        barge_logship_metrics(st->agent->logship, &p);
    return barge_prom_finish(&p, NULL);
}

static void on_request(struct barge_http_req *req, struct barge_http_resp *resp)
{
    struct barge_stats *st = req->server;
    if (strcmp(req->path, "/metrics") != 0) {
        barge_http_resp_set(resp, 404, "text/plain", barge_xstrdup("not found\n"), 10);
    } else if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        barge_http_resp_set(resp, 405, "text/plain", barge_xstrdup("use GET\n"), 8);
    } else {
        char *body = render(st);
        barge_http_resp_set(resp, 200, BARGE_PROM_CONTENT_TYPE, body, strlen(body));
    }
}

static const struct barge_http_route routes[] = {
    {"", on_request, 4096, NULL, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

int barge_stats_start(struct barge_agent *agent, int interval_ms, const char *listen,
                      struct barge_stats **out, struct barge_error **err)
{
    struct barge_stats *st = barge_xcalloc(1, sizeof(*st));
    st->agent = agent;
    st->interval_ms = interval_ms > 0 ? interval_ms : 20000;
    pthread_mutex_init(&st->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&st->wake, &attr);
    pthread_condattr_destroy(&attr);
    /* One thread: a scrape now and then, rendered from memory and cgroup
     * files. */
    struct barge_http_options o = {
        .limits = {.threads = 1, .idle_timeout = 30, .max_connections = 64}};
    if (listen && barge_http_start(listen, routes, st, &o, &st->http, err) < 0) {
        pthread_mutex_destroy(&st->lock);
        pthread_cond_destroy(&st->wake);
        free(st);
        return barge_error_wrap(err, "--metrics-listen");
    }
    if (pthread_create(&st->thread, NULL, run, st) != 0)
        abort();
    *out = st;
    return 0;
}

int barge_stats_port(const struct barge_stats *st)
{
    return st && st->http ? barge_http_port(st->http) : 0;
}

void barge_stats_stop(struct barge_stats *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->wake);
    pthread_mutex_unlock(&st->lock);
    pthread_join(st->thread, NULL);
    barge_http_stop(st->http);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->wake);
    free(st);
}
