/* logs: the service's container logs from the CloudWatch Logs API (which
 * ecspresso lacks). The service's task definition says where each container
 * logs (the awslogs driver's group and stream prefix, streams being
 * "<prefix>/<container>/<task id>"); FilterLogEvents reads them, and --follow
 * keeps polling from the newest timestamp seen, skipping events already
 * printed.
 *
 * With --task, one task's output as its host keeps it, whatever the log
 * driver: barged's GET /barge/v1/task-logs has the task's agent read a slice
 * of the container's log file from a byte offset, and --follow asks again
 * from the next offset until the task is STOPPED and everything is read. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/awsapi.h"
#include "common/isotime.h"
#include "common/json.h"

struct source {
    char *group;
    char *region; /* awslogs-region, or NULL */
    char *prefix; /* "<stream prefix>/<container>/", or NULL when the container has none */
    char *container;
};

/* By time, then (task output, where many lines share a millisecond) in the
 * order the host wrote them. */
static int cmp_events(const void *a, const void *b)
{
    const json_t *ea = *(json_t *const *)a, *eb = *(json_t *const *)b;
    json_int_t x = barge_json_int(ea, "timestamp", 0);
    json_int_t y = barge_json_int(eb, "timestamp", 0);
    if (x != y)
        return x < y ? -1 : 1;
    x = barge_json_int(ea, "_seq", 0);
    y = barge_json_int(eb, "_seq", 0);
    return x < y ? -1 : x > y;
}

/* --since: a Go duration back from now, or an RFC 3339 time. Milliseconds. */
static int parse_since(const char *s, long long *ms, struct barge_error **err)
{
    double secs;
    _cleanup_error_ struct barge_error *derr = NULL;
    if (barge_cli_parse_duration(s, &secs, &derr) == 0) {
        *ms = ((long long)time(NULL) - (long long)secs) * 1000;
        return 0;
    }
    struct barge_isotime t;
    if (barge_isotime_parse(s, strlen(s), &t) == 0 && t.has_time) {
        *ms = (long long)t.sec * 1000 + t.nsec / 1000000;
        return 0;
    }
    return barge_error_set(err, BARGE_ERR_INVALID,
                           "--since: '%s' is neither a duration (10m) nor a time "
                           "(2024-01-02T15:04:05Z)",
                           s);
}

static int fetch(struct barge_cli_app *app, const struct source *src, long long start_ms,
                 const char *filter, json_t *events, struct barge_error **err)
{
    _cleanup_free_ char *token = NULL;
    for (int page = 0; page < 1000; page++) {
        _cleanup_json_ json_t *in = json_pack("{s:s, s:I, s:b}", "logGroupName", src->group,
                                              "startTime", (json_int_t)start_ms, "interleaved", 1);
        if (src->prefix)
            json_object_set_new(in, "logStreamNamePrefix", json_string(src->prefix));
        if (filter)
            json_object_set_new(in, "filterPattern", json_string(filter));
        if (token)
            json_object_set_new(in, "nextToken", json_string(token));
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call_in(app, "logs", src->region, "FilterLogEvents", in, &out, err) < 0)
            return barge_error_wrap(err, "log group '%s'", src->group);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(out, "events"), i, e)
        {
            json_object_set_new(e, "_container", json_string(src->container));
            json_array_append(events, e);
        }
        free(token);
        const char *next = barge_json_str(out, "nextToken", NULL);
        token = next ? barge_xstrdup(next) : NULL;
        if (!token)
            return 0;
    }
    return 0;
}

static char *event_key(const json_t *e)
{
    const char *id = barge_json_str(e, "eventId", NULL);
    if (id)
        return barge_xstrdup(id);
    return barge_xasprintf("%s %lld %s", barge_json_str(e, "logStreamName", ""),
                           (long long)barge_json_int(e, "timestamp", 0),
                           barge_json_str(e, "message", ""));
}

static void print_events(struct barge_cli_app *app, json_t *events, const struct source *srcs,
                         size_t n_src, json_t *seen, long long *newest)
{
    size_t n = json_array_size(events);
    json_t **v = barge_xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(events, i);
    qsort(v, n, sizeof(*v), cmp_events);
    const char *dim = barge_cli_color(app, true, "\033[36m");
    const char *off = *dim ? "\033[0m" : "";
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *key = event_key(v[i]);
        if (json_object_get(seen, key))
            continue;
        json_object_set_new(seen, key, json_true());
        long long ts = barge_json_int(v[i], "timestamp", 0);
        if (ts > *newest)
            *newest = ts;
        char when[20];
        barge_cli_fmt_time((double)ts / 1000.0, when);
        /* "<container>/<task id>" reads better than the full stream name. */
        const char *stream = barge_json_str(v[i], "logStreamName", "");
        const char *shown = stream;
        for (size_t s = 0; s < n_src; s++) {
            const char *pfx = srcs[s].prefix;
            if (pfx && barge_str_has_prefix(stream, pfx)) {
                size_t plen = strlen(pfx) - strlen(srcs[s].container) - 1;
                shown = stream + plen;
                break;
            }
        }
        const char *msg = barge_json_str(v[i], "message", "");
        size_t ml = strlen(msg);
        while (ml > 0 && (msg[ml - 1] == '\n' || msg[ml - 1] == '\r'))
            ml--;
        barge_cli_out(app, "%s %s%s%s %.*s\n", when, dim, shown, off, (int)ml, msg);
    }
    /* The next poll starts at the newest timestamp, so only events at that
     * very millisecond can come again: forget the rest. */
    json_object_clear(seen);
    for (size_t i = 0; i < n; i++) {
        if (barge_json_int(v[i], "timestamp", 0) == *newest) {
            _cleanup_free_ char *key = event_key(v[i]);
            json_object_set_new(seen, key, json_true());
        }
    }
    free(v);
}

/* One slice of a task container's output from barged; *out is the answer
 * (new reference). */
static int task_slice(struct barge_cli_app *app, const char *cluster, const char *task,
                      const char *container, long long offset, long long since_ms, json_t **out,
                      struct barge_error **err)
{
    _cleanup_free_ char *ec = barge_aws_uri_encode(cluster, false);
    _cleanup_free_ char *en = barge_aws_uri_encode(container, false);
    _cleanup_free_ char *et = barge_aws_uri_encode(task, false);
    /* Parameters in SigV4's canonical (sorted) order. */
    _cleanup_free_ char *query = barge_xasprintf(
        "cluster=%s&container=%s&offset=%lld&since=%lld&task=%s", ec, en, offset, since_ms, et);
    struct barge_aws_client *c = barge_cli_client(app, "ecs", err);
    if (!c)
        return -1;
    struct barge_aws_response resp = {0};
    if (barge_aws_request(c, "GET", "/barge/v1/task-logs", query, NULL, 0, NULL, 0, &resp, err) < 0)
        return -1;
    json_error_t jerr;
    json_t *body = json_loads(resp.body ? resp.body : "", 0, &jerr);
    long status = resp.status;
    barge_aws_response_release(&resp);
    if (status == 200 && json_is_object(body)) {
        *out = body;
        return 0;
    }
    const char *type = barge_json_str(body, "__type", NULL);
    if (type)
        barge_error_set_type(err, BARGE_ERR_CLIENT, type, "%s",
                             barge_json_str(body, "message", "no message"));
    else
        barge_error_set(err, BARGE_ERR_CLIENT,
                        "task logs: the endpoint answered %ld (is this barged? real AWS has no "
                        "such endpoint; use awslogs and CloudWatch Logs there)",
                        status);
    json_decref(body);
    return -1;
}

struct task_source {
    char *container;
    long long offset;
};

/* The task's containers (only `container` when given, which must be one of
 * them); *n_out sources in a new array. */
static int task_sources(struct barge_cli_app *app, const char *cluster, const char *task,
                        const char *container, struct task_source **out, size_t *n_out,
                        char **task_id, struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s, s:[s]}", "cluster", cluster, "tasks", task);
    _cleanup_json_ json_t *resp = NULL;
    if (barge_cli_call(app, "ecs", "DescribeTasks", in, &resp, err) < 0)
        return -1;
    json_t *t = json_array_get(json_object_get(resp, "tasks"), 0);
    if (!t)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "no task '%s' in cluster '%s'", task,
                               cluster);
    const char *arn = barge_json_str(t, "taskArn", task);
    const char *slash = strrchr(arn, '/');
    *task_id = barge_xstrdup(slash ? slash + 1 : arn);
    json_t *cs = json_object_get(t, "containers");
    struct task_source *srcs = barge_xcalloc(json_array_size(cs) + 1, sizeof(*srcs));
    size_t n = 0, i;
    json_t *c;
    _cleanup_free_ char *names = barge_xstrdup("");
    json_array_foreach(cs, i, c)
    {
        const char *name = barge_json_str(c, "name", "");
        char *more = barge_xasprintf("%s%s'%s'", names, i ? ", " : "", name);
        free(names);
        names = more;
        if (!container || strcmp(container, name) == 0)
            srcs[n++].container = barge_xstrdup(name);
    }
    if (n == 0) {
        free(srcs);
        return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                               "task '%s' has no container '%s'; its containers are %s", task,
                               container ? container : "", names);
    }
    *out = srcs;
    *n_out = n;
    return 0;
}

static int logs_task(struct barge_cli_app *app, const char *cluster, const char *task,
                     const char *container, const char *since, bool follow)
{
    struct barge_error *err = NULL;
    long long since_ms = 0;
    if (since && parse_since(since, &since_ms, &err) < 0)
        return barge_cli_fail(app, err);
    struct task_source *srcs = NULL;
    size_t n_src = 0;
    _cleanup_free_ char *task_id = NULL;
    if (task_sources(app, cluster, task, container, &srcs, &n_src, &task_id, &err) < 0)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *seen = json_object();
    long long newest = 0;
    int rc = 0;
    size_t seq = 0;
    while (rc == 0) {
        _cleanup_json_ json_t *events = json_array();
        bool stopped = true;
        for (size_t s = 0; s < n_src && rc == 0; s++) {
            /* Everything there is now, a capped slice at a time. */
            for (int page = 0; page < 1000; page++) {
                _cleanup_json_ json_t *out = NULL;
                if (task_slice(app, cluster, task, srcs[s].container, srcs[s].offset, since_ms,
                               &out, &err) < 0) {
                    rc = barge_cli_fail(app, err);
                    break;
                }
                size_t i;
                json_t *e;
                json_array_foreach(json_object_get(out, "events"), i, e)
                {
                    _cleanup_free_ char *stream =
                        barge_xasprintf("%s/%s", srcs[s].container, task_id);
                    _cleanup_free_ char *id =
                        barge_xasprintf("%s:%lld:%zu", srcs[s].container, srcs[s].offset, i);
                    json_object_set_new(e, "logStreamName", json_string(stream));
                    json_object_set_new(e, "eventId", json_string(id));
                    json_object_set_new(e, "_seq", json_integer((json_int_t)seq++));
                    json_array_append(events, e);
                }
                /* Read before the agent read the file: STOPPED means the
                 * file was complete. */
                if (!barge_streq(barge_json_str(out, "lastStatus", NULL), "STOPPED"))
                    stopped = false;
                srcs[s].offset = barge_json_int(out, "nextOffset", srcs[s].offset);
                if (!json_is_true(json_object_get(out, "more")))
                    break;
            }
        }
        if (rc)
            break;
        print_events(app, events, NULL, 0, seen, &newest);
        if (!follow || stopped || barge_cli_interrupted())
            break;
        barge_cli_sleep(1);
        if (barge_cli_interrupted())
            break;
    }
    for (size_t s = 0; s < n_src; s++)
        free(srcs[s].container);
    free(srcs);
    return rc;
}

int barge_cli_cmd_logs(struct barge_cli_app *app, int argc, char **argv)
{
    bool follow = false;
    const char *since = NULL, *container = NULL, *filter = NULL, *task = NULL, *cluster = NULL;
    const struct barge_cli_opt opts[] = {
        {"follow", BARGE_CLI_OPT_BOOL, &follow, NULL,
         "keep printing new events until Ctrl-C (with --task: until the task has stopped and "
         "all its output is shown)",
         false, NULL},
        {"since", BARGE_CLI_OPT_STR, &since, "DURATION|TIME",
         "start this long ago (10m, 1h) or at this time (2024-01-02T15:04:05Z); default 10m, "
         "with --task the task's whole output",
         false, NULL},
        {"container", BARGE_CLI_OPT_STR, &container, "NAME", "only this container", false, NULL},
        {"filter", BARGE_CLI_OPT_STR, &filter, "PATTERN",
         "CloudWatch Logs filter pattern (not with --task)", false, NULL},
        {"task", BARGE_CLI_OPT_STR, &task, "ID|ARN",
         "one task's output as its host keeps it, whatever the log driver (read through barged "
         "from the task's agent; the config file is then optional)",
         false, NULL},
        {"cluster", BARGE_CLI_OPT_STR, &cluster, "NAME",
         "the task's cluster (with --task; default: the config's, else 'default')", false, NULL},
        {NULL},
    };
    int code;
    char **pos = NULL;
    size_t n_pos = 0;
    if (barge_cli_parse(app, "barge logs [options]",
                        "Show the service's container logs from CloudWatch Logs (awslogs), or "
                        "with --task one task's output from its host.",
                        opts, argc, argv, &pos, &n_pos, &code) != 0) {
        free(pos);
        return code;
    }
    if (n_pos > 0) {
        fprintf(stderr, "barge: unexpected argument '%s' (see 'barge logs --help')\n", pos[0]);
        free(pos);
        return 2;
    }
    free(pos);
    /* A task is named on the command line: no config needed. */
    struct barge_error *err = NULL;
    if (barge_cli_app_init(app, !task, &err) < 0)
        return barge_cli_fail(app, err);
    if (task) {
        if (filter) {
            barge_error_set(&err, BARGE_ERR_INVALID,
                            "--filter needs CloudWatch Logs; it does not work with --task");
            return barge_cli_fail(app, err);
        }
        return logs_task(app, cluster ? cluster : app->cfg->cluster, task, container, since,
                         follow);
    }
    if (cluster) {
        barge_error_set(&err, BARGE_ERR_INVALID,
                        "--cluster goes with --task; the service's cluster is the config's");
        return barge_cli_fail(app, err);
    }
    long long start_ms = 0;
    if (parse_since(since ? since : "10m", &start_ms, &err) < 0)
        return barge_cli_fail(app, err);
    _cleanup_free_ char *td_name = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (app->cfg->service && barge_cli_describe_service(app, &svc, &err) < 0)
        return barge_cli_fail(app, err);
    if (svc) {
        td_name = barge_xstrdup(barge_json_str(svc, "taskDefinition", ""));
    } else {
        _cleanup_json_ json_t *local = NULL;
        if (barge_cli_load_taskdef(app, NULL, &local, &err) < 0)
            return barge_cli_fail(app, err);
        td_name = barge_xstrdup(barge_json_str(local, "family", ""));
    }
    _cleanup_json_ json_t *in = json_pack("{s:s}", "taskDefinition", td_name);
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", in, &out, &err) < 0)
        return barge_cli_fail(app, err);
    json_t *cdefs = json_object_get(json_object_get(out, "taskDefinition"), "containerDefinitions");
    struct source *srcs = barge_xcalloc(json_array_size(cdefs) + 1, sizeof(*srcs));
    size_t n_src = 0;
    size_t i;
    json_t *c;
    bool container_found = false;
    json_array_foreach(cdefs, i, c)
    {
        const char *name = barge_json_str(c, "name", "");
        if (container && strcmp(container, name) != 0)
            continue;
        container_found = true;
        json_t *lc = json_object_get(c, "logConfiguration");
        const char *driver = barge_json_str(lc, "logDriver", NULL);
        json_t *o = json_object_get(lc, "options");
        const char *group = barge_json_str(o, "awslogs-group", NULL);
        if (!barge_streq(driver, "awslogs") || !group) {
            barge_cli_logl(app, BARGE_CLI_WARN,
                           "container %s does not log to CloudWatch Logs (log driver %s)", name,
                           driver ? driver : "none");
            continue;
        }
        const char *prefix = barge_json_str(o, "awslogs-stream-prefix", NULL);
        srcs[n_src].group = barge_xstrdup(group);
        const char *region = barge_json_str(o, "awslogs-region", NULL);
        srcs[n_src].region = region ? barge_xstrdup(region) : NULL;
        srcs[n_src].container = barge_xstrdup(name);
        srcs[n_src].prefix = prefix ? barge_xasprintf("%s/%s/", prefix, name) : NULL;
        n_src++;
    }
    int rc = 0;
    if (container && !container_found) {
        barge_error_set(&err, BARGE_ERR_NOT_FOUND, "no container '%s' in %s", container, td_name);
        rc = barge_cli_fail(app, err);
    } else if (n_src == 0) {
        barge_error_set(&err, BARGE_ERR_NOT_FOUND,
                        "no container of %s logs to CloudWatch Logs (awslogs)", td_name);
        rc = barge_cli_fail(app, err);
    }
    _cleanup_json_ json_t *seen = json_object();
    long long newest = start_ms;
    while (rc == 0) {
        _cleanup_json_ json_t *events = json_array();
        for (size_t s = 0; s < n_src && rc == 0; s++)
            if (fetch(app, &srcs[s], newest, filter, events, &err) < 0)
                rc = barge_cli_fail(app, err);
        if (rc)
            break;
        print_events(app, events, srcs, n_src, seen, &newest);
        if (!follow || barge_cli_interrupted())
            break;
        barge_cli_sleep(1);
        if (barge_cli_interrupted())
            break;
    }
    for (size_t s = 0; s < n_src; s++) {
        free(srcs[s].group);
        free(srcs[s].region);
        free(srcs[s].prefix);
        free(srcs[s].container);
    }
    free(srcs);
    return rc;
}
