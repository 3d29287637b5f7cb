/* The task metadata endpoint v4 (see metadata.h): the documents in ECS's
 * field names, Docker-style stats, and the listener (src/http) that answers
 * containers. It listens only on addresses containers reach (the bridge's
 * gateway, loopback), never on every address of the host, and a request is
 * answered only for a known token; each asking container learns about its
 * own task only. */
#include "agent/metadata.h"

#include <sys/timex.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/isotime.h"
#include "common/json.h"
#include "common/log.h"
#include "http/http.h"

static void set_time(json_t *obj, const char *key, const json_t *from, const char *from_key)
{
    json_t *v = json_object_get(from, from_key);
    if (!json_is_number(v) || json_number_value(v) <= 0)
        return;
    char buf[BARGE_ISOTIME_MAX];
    barge_isotime_format(json_number_value(v), 9, "Z", buf);
    json_object_set_new(obj, key, json_string(buf));
}

json_t *barge_metadata_credentials_doc(const json_t *creds)
{
    char exp[BARGE_ISOTIME_MAX];
    barge_isotime_format(json_number_value(json_object_get(creds, "expiration")), 0, "Z", exp);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "RoleArn", barge_json_str(creds, "roleArn", ""),
                     "AccessKeyId", barge_json_str(creds, "accessKeyId", ""), "SecretAccessKey",
                     barge_json_str(creds, "secretAccessKey", ""), "Token",
                     barge_json_str(creds, "sessionToken", ""), "Expiration", exp);
}

bool barge_metadata_credentials_fresh(double issued, double expires, double now)
{
    return now >= issued && now < issued + (expires - issued) / 2;
}

static json_int_t int_of(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static json_t *networks_doc(const json_t *snap)
{
    const json_t *net = barge_json_object(snap, "network");
    const char *mode = barge_json_str(net, "mode", "bridge");
    json_t *n = json_pack("{s:s}", "NetworkMode", mode);
    const char *ip = barge_json_str(net, "ipv4", NULL);
    if (ip)
        json_object_set_new(n, "IPv4Addresses", json_pack("[s]", ip));
    if (strcmp(mode, "awsvpc") == 0) {
        const char *subnet = barge_json_str(net, "subnet", NULL);
        json_object_set_new(n, "AttachmentIndex", json_integer(0));
        barge_json_set_str(n, "MACAddress", barge_json_str(net, "mac", NULL));
        barge_json_set_str(n, "IPv4SubnetCIDRBlock", subnet);
        if (ip) {
            _cleanup_free_ char *dashed = barge_xstrdup(ip);
            for (char *p = dashed; *p; p++)
                if (*p == '.')
                    *p = '-';
            _cleanup_free_ char *dns = barge_xasprintf("ip-%s.ec2.internal", dashed);
            json_object_set_new(n, "PrivateDNSName", json_string(dns));
        }
        const char *gw = barge_json_str(net, "gateway", NULL);
        const char *slash = subnet ? strchr(subnet, '/') : NULL;
        if (gw) {
            _cleanup_free_ char *g = barge_xasprintf("%s%s", gw, slash ? slash : "");
            json_object_set_new(n, "SubnetGatewayIpv4Address", json_string(g));
        }
    }
    return json_pack("[o]", n);
}

json_t *barge_metadata_container_doc(const json_t *snap, size_t idx)
{
    const json_t *c = json_array_get(barge_json_array(snap, "containers"), idx);
    if (!c)
        return json_object();
    const char *name = barge_json_str(c, "name", "");
    json_t *labels = json_pack(
        "{s:s, s:s, s:s, s:s, s:s}", "com.amazonaws.ecs.cluster",
        barge_json_str(snap, "cluster", ""), "com.amazonaws.ecs.container-name", name,
        "com.amazonaws.ecs.task-arn", barge_json_str(snap, "taskArn", ""),
        "com.amazonaws.ecs.task-definition-family", barge_json_str(snap, "family", ""),
        "com.amazonaws.ecs.task-definition-version", barge_json_str(snap, "revision", ""));
    const char *k;
    json_t *v;
    json_object_foreach(barge_json_object(c, "dockerLabels"), k, v)
    {
        if (json_is_string(v) && !barge_str_has_prefix(k, "com.amazonaws.ecs."))
            json_object_set(labels, k, v);
    }
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:{s:I, s:I}, s:s}", "DockerId",
                  barge_json_str(c, "runtimeId", ""), "Name", name, "DockerName",
                  barge_json_str(c, "runtimeId", ""), "Image", barge_json_str(c, "image", ""),
                  "ImageID", barge_json_str(c, "imageDigest", ""), "Labels", labels,
                  "DesiredStatus", barge_json_str(c, "desiredStatus", "RUNNING"), "KnownStatus",
                  barge_json_str(c, "knownStatus", "PENDING"), "Limits", "CPU", int_of(c, "cpu"),
                  "Memory", int_of(c, "memory"), "Type", "NORMAL");
    json_t *code = json_object_get(c, "exitCode");
    if (json_is_integer(code))
        json_object_set(d, "ExitCode", code);
    set_time(d, "CreatedAt", c, "createdAt");
    set_time(d, "StartedAt", c, "startedAt");
    set_time(d, "FinishedAt", c, "finishedAt");
    barge_json_set_str(d, "ContainerARN", barge_json_str(c, "containerArn", NULL));
    json_object_set_new(d, "Networks", networks_doc(snap));
    json_t *ports = barge_json_array(c, "ports");
    if (json_array_size(ports)) {
        json_t *list = json_array();
        size_t i;
        json_t *p;
        json_array_foreach(ports, i, p)
        {
            json_array_append_new(list, json_pack("{s:I, s:s, s:I, s:s}", "ContainerPort",
                                                  barge_json_int(p, "containerPort", 0), "Protocol",
                                                  barge_json_str(p, "protocol", "tcp"), "HostPort",
                                                  barge_json_int(p, "hostPort", 0), "HostIp",
                                                  barge_json_str(p, "bindIP", "0.0.0.0")));
        }
        json_object_set_new(d, "Ports", list);
    }
    json_t *vols = barge_json_array(c, "volumes");
    if (json_array_size(vols)) {
        json_t *list = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(vols, i, m)
        {
            json_array_append_new(list,
                                  json_pack("{s:s, s:s}", "Source", barge_json_str(m, "source", ""),
                                            "Destination", barge_json_str(m, "destination", "")));
        }
        json_object_set_new(d, "Volumes", list);
    }
    json_t *h = barge_json_object(c, "health");
    if (h) {
        json_t *hd = json_pack("{s:s}", "status", barge_json_str(h, "status", "UNKNOWN"));
        set_time(hd, "statusSince", h, "since");
        json_t *hc = json_object_get(h, "exitCode");
        if (json_is_integer(hc) && json_integer_value(hc) >= 0)
            json_object_set(hd, "exitCode", hc);
        const char *out = barge_json_str(h, "output", NULL);
        if (out && *out)
            json_object_set_new(hd, "output", json_string(out));
        json_object_set_new(d, "Health", hd);
    }
    if (barge_json_bool(c, "restartPolicy", false))
        json_object_set_new(d, "RestartCount", json_integer(barge_json_int(c, "restartCount", 0)));
    const char *driver = barge_json_str(c, "logDriver", NULL);
    if (driver) {
        json_object_set_new(d, "LogDriver", json_string(driver));
        json_t *opts = barge_json_object(c, "logOptions");
        json_object_set_new(d, "LogOptions", opts ? json_deep_copy(opts) : json_object());
    }
    return d;
}

/* How far this host's clock may be off, from the kernel's NTP state. */
static json_t *clock_drift(void)
{
    struct timex tx = {0};
    int state = adjtimex(&tx);
    char now[BARGE_ISOTIME_MAX];
    barge_isotime_format(barge_now(), 9, "Z", now);
    return json_pack("{s:f, s:s, s:s}", "ClockErrorBound", (double)tx.maxerror / 1000.0,
                     "ReferenceTimestamp", now, "ClockSynchronizationStatus",
                     state == TIME_ERROR || state < 0 ? "NOT_SYNCHRONIZED" : "SYNCHRONIZED");
}

json_t *barge_metadata_task_doc(const json_t *snap)
{
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[]}", "Cluster", barge_json_str(snap, "cluster", ""),
        "TaskARN", barge_json_str(snap, "taskArn", ""), "Family",
        barge_json_str(snap, "family", ""), "Revision", barge_json_str(snap, "revision", ""),
        "DesiredStatus", barge_json_str(snap, "desiredStatus", "RUNNING"), "KnownStatus",
        barge_json_str(snap, "knownStatus", "PENDING"), "LaunchType",
        barge_json_str(snap, "launchType", "EC2"), "Containers");
    json_t *limits = json_object();
    if (json_object_get(snap, "cpu"))
        json_object_set_new(limits, "CPU", json_real((double)int_of(snap, "cpu") / 1024.0));
    if (json_object_get(snap, "memory"))
        json_object_set_new(limits, "Memory", json_integer(int_of(snap, "memory")));
    json_object_set_new(d, "Limits", limits);
    set_time(d, "PullStartedAt", snap, "pullStartedAt");
    set_time(d, "PullStoppedAt", snap, "pullStoppedAt");
    set_time(d, "ExecutionStoppedAt", snap, "executionStoppedAt");
    barge_json_set_str(d, "AvailabilityZone", barge_json_str(snap, "availabilityZone", NULL));
    const char *group = barge_json_str(snap, "group", "");
    if (barge_str_has_prefix(group, "service:"))
        json_object_set_new(d, "ServiceName", json_string(group + 8));
    json_t *list = json_object_get(d, "Containers");
    for (size_t i = 0; i < json_array_size(barge_json_array(snap, "containers")); i++)
        json_array_append_new(list, barge_metadata_container_doc(snap, i));
    json_object_set_new(d, "ClockDrift", clock_drift());
    json_object_set_new(d, "Errors", json_array());
    return d;
}

static json_t *cpu_doc(const struct barge_metadata_sample *s)
{
    uint64_t total = s ? s->stats.cpu_ns : 0;
    return json_pack("{s:{s:I, s:I, s:I}, s:I, s:I, s:{s:i, s:i, s:i}}", "cpu_usage", "total_usage",
                     (json_int_t)total, "usage_in_kernelmode", (json_int_t)0, "usage_in_usermode",
                     (json_int_t)total, "system_cpu_usage", (json_int_t)(s ? s->system_cpu_ns : 0),
                     "online_cpus", (json_int_t)(s ? s->online_cpus : 0), "throttling_data",
                     "periods", 0, "throttled_periods", 0, "throttled_time", 0);
}

json_t *barge_metadata_stats_doc(const char *name, const char *id,
                                 const struct barge_metadata_sample *cur,
                                 const struct barge_metadata_sample *prev)
{
    char read[BARGE_ISOTIME_MAX], preread[BARGE_ISOTIME_MAX];
    barge_isotime_format(cur->read_at, 9, "Z", read);
    if (prev)
        barge_isotime_format(prev->read_at, 9, "Z", preread);
    else
        snprintf(preread, sizeof(preread), "0001-01-01T00:00:00Z");
    const struct barge_runtime_stats *st = &cur->stats;
    json_t *mem =
        json_pack("{s:I, s:I, s:{s:I, s:I}, s:I}", "usage", (json_int_t)st->memory_usage,
                  "max_usage", (json_int_t)st->memory_max_usage, "stats", "cache",
                  (json_int_t)st->memory_cache, "inactive_file", (json_int_t)st->memory_cache,
                  "limit", (json_int_t)(st->memory_limit ? st->memory_limit : UINT64_C(1) << 62));
    _cleanup_free_ char *slash_name = barge_xasprintf("/%s", name);
    json_t *d = json_pack(
        "{s:s, s:s, s:{s:I}, s:{s:[], s:[], s:[], s:[], s:[], s:[], s:[], s:[]}, s:i, s:{}, "
        "s:o, s:o, s:o, s:s, s:s}",
        "read", read, "preread", preread, "pids_stats", "current", (json_int_t)st->pids,
        "blkio_stats", "io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
        "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
        "io_time_recursive", "sectors_recursive", "num_procs", 0, "storage_stats", "cpu_stats",
        cpu_doc(cur), "precpu_stats", cpu_doc(prev), "memory_stats", mem, "name", slash_name, "id",
        id);
    if (cur->networks) {
        json_object_set(d, "networks", cur->networks);
        /* Rates over the interval since the previous sample. */
        double dt = prev ? cur->read_at - prev->read_at : 0;
        double rx = 0, tx = 0;
        if (dt > 0 && prev->networks) {
            const char *k;
            json_t *n;
            json_object_foreach(cur->networks, k, n)
            {
                json_t *p = json_object_get(prev->networks, k);
                rx += (double)(barge_json_int(n, "rx_bytes", 0) - barge_json_int(p, "rx_bytes", 0));
                tx += (double)(barge_json_int(n, "tx_bytes", 0) - barge_json_int(p, "tx_bytes", 0));
            }
            rx /= dt;
            tx /= dt;
        }
        json_object_set_new(d, "network_rate_stats",
                            json_pack("{s:f, s:f}", "rx_bytes_per_sec", rx > 0 ? rx : 0.0,
                                      "tx_bytes_per_sec", tx > 0 ? tx : 0.0));
    }
    return d;
}

json_t *barge_metadata_parse_net_dev(const char *text)
{
    json_t *out = json_object();
    if (!text)
        return out;
    /* Two header lines, then "  eth0: rx_bytes rx_packets rx_errs rx_drop
     * fifo frame compressed multicast tx_bytes tx_packets tx_errs tx_drop
     * ...". */
    const char *line = text;
    for (int skip = 0; skip < 2 && line; skip++) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        _cleanup_free_ char *l =
            eol ? barge_xstrndup(line, (size_t)(eol - line)) : barge_xstrdup(line);
        char *colon = strchr(l, ':');
        if (colon) {
            *colon = '\0';
            char *name = l + strspn(l, " ");
            unsigned long long v[16] = {0};
            int got = sscanf(
                colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11]);
            if (got == 12 && strcmp(name, "lo") != 0)
                json_object_set_new(
                    out, name,
                    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rx_bytes",
                              (json_int_t)v[0], "rx_packets", (json_int_t)v[1], "rx_errors",
                              (json_int_t)v[2], "rx_dropped", (json_int_t)v[3], "tx_bytes",
                              (json_int_t)v[8], "tx_packets", (json_int_t)v[9], "tx_errors",
                              (json_int_t)v[10], "tx_dropped", (json_int_t)v[11]));
        }
        line = eol ? eol + 1 : NULL;
    }
    return out;
}

/* --- the server --------------------------------------------------------- */

struct prev_sample {
    char id[80];
    struct barge_metadata_sample s;
};

struct barge_metadata_server {
    struct barge_runtime *rt;
    struct barge_metadata_ops ops;
    struct barge_http_server *http;
    pthread_mutex_t lock; /* guards prev */
    struct prev_sample *prev;
    size_t n_prev;
};

static uint64_t system_cpu_ns(void)
{
    _cleanup_free_ char *stat = barge_read_file("/proc/stat", NULL);
    if (!stat || strncmp(stat, "cpu ", 4) != 0)
        return 0;
    unsigned long long v[10] = {0};
    sscanf(stat + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
           &v[5], &v[6], &v[7]);
    unsigned long long ticks = 0;
    for (int i = 0; i < 8; i++)
        ticks += v[i];
    long hz = sysconf(_SC_CLK_TCK);
    return (uint64_t)ticks * (uint64_t)(1000000000L / (hz > 0 ? hz : 100));
}

/* Samples one container; NULL when it is not running. */
static json_t *container_stats(struct barge_metadata_server *s, const json_t *snap, size_t idx)
{
    const json_t *c = json_array_get(barge_json_array(snap, "containers"), idx);
    const char *id = barge_json_str(c, "runtimeId", NULL);
    if (!id || !barge_streq(barge_json_str(c, "knownStatus", NULL), "RUNNING"))
        return json_null();
    struct barge_metadata_sample cur = {0};
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_runtime_stats(s->rt, id, &cur.stats, &err) < 0)
        return json_null();
    cur.read_at = barge_now();
    cur.system_cpu_ns = system_cpu_ns();
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cur.online_cpus = cpus > 0 ? (unsigned)cpus : 1;
    _cleanup_json_ json_t *networks = NULL;
    const char *mode = barge_json_str(barge_json_object(snap, "network"), "mode", "bridge");
    struct barge_runtime_state st;
    if (strcmp(mode, "host") != 0 && barge_runtime_state(s->rt, id, &st, &err) == 0 && st.pid > 0) {
        _cleanup_free_ char *path = barge_xasprintf("/proc/%d/net/dev", (int)st.pid);
        _cleanup_free_ char *text = barge_read_file(path, NULL);
        if (text)
            networks = barge_metadata_parse_net_dev(text);
    }
    cur.networks = networks;
    pthread_mutex_lock(&s->lock);
    struct prev_sample *p = NULL;
    for (size_t i = 0; i < s->n_prev; i++)
        if (strcmp(s->prev[i].id, id) == 0)
            p = &s->prev[i];
    json_t *doc =
        barge_metadata_stats_doc(barge_json_str(c, "name", ""), id, &cur, p ? &p->s : NULL);
    if (!p) {
        /* Bounded: samples of containers that are gone are dropped first. */
        if (s->n_prev >= 256) {
            json_decref(s->prev[0].s.networks);
            memmove(&s->prev[0], &s->prev[1], (s->n_prev - 1) * sizeof(*s->prev));
            s->n_prev--;
        }
        s->prev = barge_xrealloc(s->prev, (s->n_prev + 1) * sizeof(*s->prev));
        p = &s->prev[s->n_prev++];
        memset(p, 0, sizeof(*p));
        snprintf(p->id, sizeof(p->id), "%s", id);
    }
    json_decref(p->s.networks);
    p->s = cur;
    p->s.networks = json_incref(networks);
    pthread_mutex_unlock(&s->lock);
    return doc;
}

static void answer(struct barge_http_resp *resp, int status, json_t *body)
{
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_set(resp, status, "application/json", text, strlen(text));
}

static json_t *error_doc(const char *message)
{
    return json_pack("{s:s}", "error", message);
}

static void handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    struct barge_metadata_server *s = req->server;
    const char *url = req->path;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        answer(resp, 405, error_doc("only GET is served"));
        return;
    }
    if (barge_str_has_prefix(url, "/v2/credentials/")) {
        unsigned status = 404;
        json_t *body = s->ops.credentials(s->ops.ud, url + strlen("/v2/credentials/"), &status);
        answer(resp, (int)status, body);
        return;
    }
    if (!barge_str_has_prefix(url, "/v4/")) {
        answer(resp, 404, error_doc("not found"));
        return;
    }
    const char *tok = url + 4;
    size_t tlen = strcspn(tok, "/");
    _cleanup_free_ char *token = barge_xstrndup(tok, tlen);
    const char *rest = tok + tlen;
    _cleanup_json_ json_t *snap = s->ops.snapshot(s->ops.ud, token);
    if (!snap) {
        answer(resp, 404, error_doc("unknown container metadata path"));
        return;
    }
    size_t self = (size_t)barge_json_int(snap, "self", 0);
    json_t *body;
    if (strcmp(rest, "") == 0 || strcmp(rest, "/") == 0) {
        body = barge_metadata_container_doc(snap, self);
    } else if (strcmp(rest, "/task") == 0 || strcmp(rest, "/taskWithTags") == 0) {
        body = barge_metadata_task_doc(snap);
        if (strcmp(rest, "/taskWithTags") == 0) {
            json_object_set_new(body, "TaskTags", json_object());
            json_object_set_new(body, "ContainerInstanceTags", json_object());
        }
    } else if (strcmp(rest, "/stats") == 0) {
        body = container_stats(s, snap, self);
    } else if (strcmp(rest, "/task/stats") == 0) {
        body = json_object();
        json_t *list = barge_json_array(snap, "containers");
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *id = barge_json_str(json_array_get(list, i), "runtimeId", NULL);
            if (id)
                json_object_set_new(body, id, container_stats(s, snap, i));
        }
    } else {
        answer(resp, 404, error_doc("not found"));
        return;
    }
    answer(resp, 200, body);
}

/* A credentials request may wait on barged; everything else is answered
 * from memory and a few cgroup files. */
static bool may_wait(const struct barge_http_req *req)
{
    return barge_str_has_prefix(req->path, "/v2/credentials/");
}

/* Every path: the handler answers 404 itself, in JSON. Requests carry no
 * body worth reading. */
static const struct barge_http_route routes[] = {
    {"", handle, 4096, NULL, may_wait},
    {NULL, NULL, 0, NULL, NULL},
};

/* The metadata listener on addresses at port. One event thread per address
 * is plenty (answers are small), and two handler threads for credentials
 * requests, which wait on barged. */
static int listen_at(struct barge_metadata_server *s, const char *const *addresses, int port,
                     struct barge_error **err)
{
    struct barge_http_options o = {
        .limits = {.threads = 1, .handler_threads = 2, .idle_timeout = 10, .max_connections = 128},
        .also_listen = addresses[1] ? addresses + 1 : NULL,
        /* The bridge may not have its address yet; the socket accepts once
         * it does. */
        .freebind = true,
    };
    _cleanup_free_ char *first = barge_xasprintf("%s:%d", addresses[0], port);
    return barge_http_start(first, routes, s, &o, &s->http, err);
}

int barge_metadata_server_start(struct barge_runtime *rt, const char *const *addresses, int port,
                                bool fallback, const struct barge_metadata_ops *ops,
                                struct barge_metadata_server **out, struct barge_error **err)
{
    *out = NULL;
    if (!addresses[0])
        return barge_error_set(err, BARGE_ERR_INVALID, "no metadata address");
    struct barge_metadata_server *s = barge_xcalloc(1, sizeof(*s));
    s->rt = rt;
    s->ops = *ops;
    pthread_mutex_init(&s->lock, NULL);
    _cleanup_error_ struct barge_error *e = NULL;
    int r = listen_at(s, addresses, port, &e);
    if (r < 0 && fallback && e->code == BARGE_ERR_CONFLICT && port != 0) {
        barge_warn("%s; the metadata endpoint takes another port", e->message);
        barge_error_free(barge_steal(&e));
        r = listen_at(s, addresses, 0, &e);
    }
    if (r < 0) {
        barge_metadata_server_stop(s);
        return barge_error_set(err, e->code, "%s", e->message);
    }
    *out = s;
    return 0;
}

int barge_metadata_server_port(const struct barge_metadata_server *s)
{
    return barge_http_port(s->http);
}

void barge_metadata_server_stop(struct barge_metadata_server *s)
{
    if (!s)
        return;
    barge_http_stop(s->http);
    for (size_t i = 0; i < s->n_prev; i++)
        json_decref(s->prev[i].s.networks);
    free(s->prev);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
