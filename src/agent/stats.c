/* The agent's usage reporter and /metrics listener (stats.h). Which
 * containers exist is read from the agent's checkpoint (every container a
 * runner created is there), so this needs nothing from the engine. Reports
 * carry the monotonic clock, which survives an agent restart on the same
 * host, so barged's rates stay right across one. */
#include "agent/stats.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/logship.h"
#include "common/json.h"
#include "common/log.h"
#include "common/prom.h"

struct barge_stats {
    struct barge_agent *agent;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    struct MHD_Daemon *daemon;
    int port;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct barge_stats *st = cls;
    if (!*con_cls) {
        *con_cls = st; /* first call: headers only */
        return MHD_YES;
    }
    *upload_data_size = 0;
    unsigned status = MHD_HTTP_OK;
    const char *type = BARGE_PROM_CONTENT_TYPE;
    char *body;
    if (strcmp(url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND;
        type = "text/plain";
        body = barge_xstrdup("not found\n");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        type = "text/plain";
        body = barge_xstrdup("use GET\n");
    } else {
        body = render(st);
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, struct barge_error **err)
{
    memset(ss, 0, sizeof(*ss));
    _cleanup_free_ char *copy = barge_xstrdup(listen);
    char *host = copy, *port;
    if (host[0] == '[') {
        char *close_br = strchr(host, ']');
        if (!close_br || close_br[1] != ':')
            goto bad;
        *close_br = '\0';
        host++;
        port = close_br + 2;
    } else {
        char *colon = strrchr(host, ':');
        if (!colon)
            goto bad;
        *colon = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        goto bad;
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (!*host || strcmp(host, "localhost") == 0)
        host = !*host ? "0.0.0.0" : "127.0.0.1";
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)p);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        return 0;
    }
bad:
    return barge_error_set(err, BARGE_ERR_INVALID,
                           "invalid metrics listen address '%s': expected IP:PORT", listen);
}

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
    if (listen) {
        struct sockaddr_storage ss;
        if (parse_listen(listen, &ss, err) < 0) {
            free(st);
            return -1;
        }
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        if (ss.ss_family == AF_INET6)
            flags |= MHD_USE_IPv6;
        st->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, st, MHD_OPTION_SOCK_ADDR,
                                      (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
                                      (unsigned)30, MHD_OPTION_END);
        if (!st->daemon) {
            free(st);
            return barge_error_set(err, BARGE_ERR_IO, "cannot listen on '%s' for metrics", listen);
        }
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(st->daemon, MHD_DAEMON_INFO_BIND_PORT);
        st->port = di ? di->port : 0;
    }
    if (pthread_create(&st->thread, NULL, run, st) != 0)
        abort();
    *out = st;
    return 0;
}

int barge_stats_port(const struct barge_stats *st)
{
    return st ? st->port : 0;
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
    if (st->daemon)
        MHD_stop_daemon(st->daemon);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->wake);
    free(st);
}
