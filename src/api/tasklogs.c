/* Task logs through the agent channel (tasklogs.h). A client's GET
 * /barge/v1/task-logs finds the task's container instance, stores a request
 * ("logreq", keyed "<instance id>/<request id>") and wakes the long-polls;
 * the instance's poll hands it to the agent once (poll_agent in agent.c), the
 * agent reads the slice from its file and POSTs /agent/task-logs, which stores
 * the reply ("logreply", same key) and wakes the waiting client, which then
 * removes both. Housekeeping removes what a client that gave up left. */
#include "api/tasklogs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/ecs.h"
#include "api/server.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define KIND_REQ   "logreq"
#define KIND_REPLY "logreply"
/* How long a client waits for the agent: it answers on its next poll, which
 * a request wakes at once. */
#define ANSWER_SECONDS 8
#define EXPIRE_SECONDS 60
#define DEFAULT_LIMIT  (256 * 1024)
/* Escaped as JSON, a slice of control characters grows six-fold: this keeps
 * the agent's upload within the agent channel's 4 MiB body limit. */
#define MAX_LIMIT (512 * 1024)

/* What a client asks for, with what the store says about it. */
struct target {
    char *task_id;
    char *container;
    char *instance_id;
    char *agent; /* "the agent of container instance '<arn>'", for messages */
    json_t *task;
};

static void target_release(struct target *t)
{
    free(t->task_id);
    free(t->container);
    free(t->instance_id);
    free(t->agent);
    json_decref(t->task);
}

static int parse_count(const char *name, const char *s, int64_t *out, struct barge_error **err)
{
    if (!s)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "%s must be a non-negative integer, not '%s'", name, s);
    *out = v;
    return 0;
}

static char *container_names(const json_t *task)
{
    char *list = barge_xstrdup("");
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(task, "containers"), i, c)
    {
        char *next =
            barge_xasprintf("%s%s'%s'", list, i ? ", " : "", barge_json_str(c, "name", ""));
        free(list);
        list = next;
    }
    return list;
}

static bool has_container(const json_t *task, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(task, "containers"), i, c)
    {
        if (barge_streq(barge_json_str(c, "name", NULL), name))
            return true;
    }
    return false;
}

/* Finds the task, checks the container name and that the task's agent is
 * connected. */
static int locate(struct barge_server *srv, const char *cluster_ident, const char *task_ident,
                  const char *container, struct target *t, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *inst = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, srv, cluster_ident, &cluster, err) < 0)
        return -1;
    t->task_id = ecs_resource_id(srv, task_ident, "task", err);
    if (!t->task_id)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    _cleanup_free_ char *tkey = barge_xasprintf("%s/%s", cname, t->task_id);
    if (barge_store_get(tx, ECS_KIND_TASK, tkey, &t->task, err) < 0)
        return -1;
    if (!t->task)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The referenced task '%s' was not found.", task_ident);
    _cleanup_free_ char *names = container_names(t->task);
    if (!container && json_array_size(barge_json_array(t->task, "containers")) == 1)
        container =
            barge_json_str(json_array_get(barge_json_array(t->task, "containers"), 0), "name", "");
    if (!container)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "task '%s' has several containers: name one of %s", task_ident,
                                    names);
    if (!has_container(t->task, container))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "task '%s' has no container '%s'; its containers are %s",
                                    task_ident, container, names);
    t->container = barge_xstrdup(container);
    const char *iid = barge_json_str(t->task, "_instanceId", NULL);
    if (!iid || !*iid)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "task '%s' was never placed on a container instance",
                                    task_ident);
    t->instance_id = barge_xstrdup(iid);
    /* FARGATE tasks run on the pool's hosts, which belong to no cluster. */
    bool pool = barge_streq(barge_json_str(t->task, "launchType", NULL), "FARGATE");
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", pool ? ECS_FARGATE_POOL : cname, iid);
    if (barge_store_get(tx, ECS_KIND_INSTANCE, ikey, &inst, err) < 0)
        return -1;
    /* The pool's hosts are nobody's container instances. */
    t->agent = pool ? barge_xstrdup("the agent of the FARGATE capacity host")
                    : barge_xasprintf("the agent of container instance '%s'",
                                      barge_json_str(inst, "containerInstanceArn", iid));
    if (!inst || barge_streq(barge_json_str(inst, "status", NULL), "INACTIVE") ||
        !ecs_instance_connected(inst))
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "TargetNotConnectedException",
                                    "%s is not connected, so the output of task '%s' kept on "
                                    "that host cannot be read",
                                    t->agent, task_ident);
    return 0;
}

static int remove_pair(struct barge_server *srv, const char *key, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_del(tx, KIND_REQ, key, err) < 0 ||
        barge_store_del(tx, KIND_REPLY, key, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(&tx), err);
}

/* On the first run stores the request and wakes the polls; then answers with
 * the agent's reply (*out, new reference) or parks req until the reply may
 * be in (returns 1: this runs again). */
static int ask_agent(struct barge_http_req *req, const struct target *t, int64_t offset,
                     int64_t since, int64_t limit, json_t **out, struct barge_error **err)
{
    struct barge_server *srv = req->server;
    if (!req->wait_key) {
        unsigned char raw[16];
        char id[33];
        barge_random_bytes(raw, sizeof(raw));
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(id + 2 * i, 3, "%02x", raw[i]);
        _cleanup_free_ char *key = barge_xasprintf("%s/%s", t->instance_id, id);
        _cleanup_json_ json_t *doc =
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:f}", "id", id, "taskId", t->task_id,
                      "container", t->container, "offset", (json_int_t)offset, "since",
                      (json_int_t)since, "limit", (json_int_t)limit, "created", barge_now());
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
            barge_store_put(tx, KIND_REQ, key, doc, err) < 0 ||
            barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
        req->wait_key = barge_steal(&key);
        req->wait_deadline_ms = barge_monotonic_ms() + ANSWER_SECONDS * 1000;
        barge_server_notify(srv);
    }
    int ret = 0;
    for (;;) {
        uint64_t gen = barge_server_generation(srv);
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
            barge_store_get(tx, KIND_REPLY, req->wait_key, out, err) < 0) {
            ret = -1;
            break;
        }
        if (*out)
            break;
        barge_store_abort(barge_steal(&tx));
        if (barge_server_park(req, gen, req->wait_deadline_ms))
            return 1;
        /* Not parked: a change to look at, else the deadline (or shutdown). */
        if (barge_server_generation(srv) == gen) {
            ret = barge_error_set_type(err, BARGE_ERR_CLIENT, "TargetNotConnectedException",
                                       "%s is not connected: it did not answer within %d "
                                       "seconds",
                                       t->agent, ANSWER_SECONDS);
            break;
        }
    }
    _cleanup_error_ struct barge_error *derr = NULL;
    if (remove_pair(srv, req->wait_key, &derr) < 0)
        barge_warn("removing log request %s: %s", req->wait_key, derr->message);
    return ret;
}

static int serve(struct barge_http_req *req, json_t **body, struct barge_error **err)
{
    struct barge_server *srv = req->server;
    _cleanup_free_ char *cluster = barge_http_req_query(req, "cluster");
    _cleanup_free_ char *task = barge_http_req_query(req, "task");
    _cleanup_free_ char *container = barge_http_req_query(req, "container");
    _cleanup_free_ char *offset_s = barge_http_req_query(req, "offset");
    _cleanup_free_ char *since_s = barge_http_req_query(req, "since");
    _cleanup_free_ char *limit_s = barge_http_req_query(req, "limit");
    int64_t offset = 0, since = 0, limit = DEFAULT_LIMIT;
    if (!task || !*task)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "task is required");
    if (parse_count("offset", offset_s, &offset, err) < 0 ||
        parse_count("since", since_s, &since, err) < 0 ||
        parse_count("limit", limit_s, &limit, err) < 0)
        return -1;
    if (limit < 1 || limit > MAX_LIMIT)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "limit must be between 1 and %d bytes, not %lld", MAX_LIMIT,
                                    (long long)limit);
    struct target t = {0};
    _cleanup_json_ json_t *reply = NULL;
    int ret = locate(srv, cluster && *cluster ? cluster : NULL, task,
                     container && *container ? container : NULL, &t, err);
    if (ret == 0)
        ret = ask_agent(req, &t, offset, since, limit, &reply, err);
    if (ret == 0 && barge_json_str(reply, "error", NULL))
        ret = barge_error_set(err, BARGE_ERR_CLIENT,
                              "%s cannot read the output of container '%s': %s", t.agent,
                              t.container, barge_json_str(reply, "error", ""));
    if (ret == 0) {
        json_t *events = json_object_get(reply, "events");
        *body = json_pack(
            "{s:s, s:s, s:s, s:o, s:I, s:b, s:I}", "taskArn", barge_json_str(t.task, "taskArn", ""),
            "lastStatus", barge_json_str(t.task, "lastStatus", ""), "container", t.container,
            "events", json_is_array(events) ? json_incref(events) : json_array(), "nextOffset",
            barge_json_int(reply, "nextOffset", offset), "more",
            json_is_true(json_object_get(reply, "more")), "size", barge_json_int(reply, "size", 0));
    }
    target_release(&t);
    return ret;
}

void barge_api_task_logs_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    struct barge_sigv4_identity who;
    json_t *body = NULL;
    if (strcmp(req->raw_path, "/barge/v1/task-logs") != 0 || strcmp(req->method, "GET") != 0) {
        barge_error_set(&err, BARGE_ERR_UNKNOWN_OP, "no such endpoint: %s %s", req->method,
                        req->path);
        goto fail;
    }
    int r;
    if (barge_api_authenticate(req, "ecs", &who, &err) < 0 ||
        barge_api_authorize(req->server, &who, "barge:GetTaskLogs", "*", &err) < 0 ||
        (r = serve(req, &body, &err)) < 0)
        goto fail;
    if (r > 0)
        return; /* parked until the agent answers */
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_set(resp, 200, "application/json", text, strlen(text));
    return;
fail:
    barge_api_error_response(&barge_api_ecs, err, resp);
}

struct pending {
    json_t *keys;
};

static int collect_unsent(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct pending *p = ud;
    if (!json_is_true(json_object_get(doc, "sent")))
        json_array_append_new(p->keys, json_string(key));
    return 0;
}

int barge_api_task_logs_pending(struct barge_server *srv, const char *instance_id, json_t **out,
                                struct barge_error **err)
{
    *out = NULL;
    _cleanup_json_ json_t *keys = json_array(), *list = json_array();
    struct pending p = {keys};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", instance_id);
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
            barge_store_scan(tx, KIND_REQ, prefix, NULL, false, 0, collect_unsent, &p, err) < 0)
            return -1;
    }
    if (json_array_size(keys) > 0) {
        /* Handed out once: a poll answer that is lost leaves the client to
         * time out rather than the agent to read the same slice forever. */
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, true, &tx, err) < 0)
            return -1;
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k)
        {
            _cleanup_json_ json_t *doc = NULL;
            if (barge_store_get(tx, KIND_REQ, json_string_value(k), &doc, err) < 0)
                return -1;
            if (!doc || json_is_true(json_object_get(doc, "sent")))
                continue;
            json_object_set_new(doc, "sent", json_true());
            if (barge_store_put(tx, KIND_REQ, json_string_value(k), doc, err) < 0)
                return -1;
            json_object_del(doc, "sent");
            json_object_del(doc, "created");
            json_array_append(list, doc);
        }
        if (barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
    }
    *out = barge_steal(&list);
    return 0;
}

int barge_api_task_logs_put(struct barge_server *srv, const char *cluster, const char *instance_id,
                            const json_t *in, json_t **out, struct barge_error **err)
{
    (void)cluster;
    const char *id = barge_json_str(in, "id", "");
    if (!*id || strchr(id, '/'))
        return barge_error_set(err, BARGE_ERR_INVALID, "malformed log request id '%s'", id);
    json_t *events = json_object_get(in, "events");
    if (!barge_json_str(in, "error", NULL) && !json_is_array(events))
        return barge_error_set(err, BARGE_ERR_INVALID, "log reply '%s' has no events", id);
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", instance_id, id);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *req = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_REQ, key, &req, err) < 0)
        return -1;
    /* The client gave up: nobody reads the reply. */
    if (!req)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "log request '%s' expired", id);
    _cleanup_json_ json_t *reply = json_deep_copy(in);
    json_object_set_new(reply, "created", json_real(barge_now()));
    if (barge_store_put(tx, KIND_REPLY, key, reply, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(srv);
    *out = json_object();
    return 0;
}

struct expired {
    double before;
    json_t *keys;
};

static int collect_expired(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct expired *x = ud;
    if (json_number_value(json_object_get(doc, "created")) < x->before)
        json_array_append_new(x->keys, json_string(key));
    return 0;
}

int barge_api_task_logs_reap(struct barge_server *srv, struct barge_error **err)
{
    static const char *const kinds[] = {KIND_REQ, KIND_REPLY};
    for (size_t k = 0; k < BARGE_ARRAY_SIZE(kinds); k++) {
        _cleanup_json_ json_t *keys = json_array();
        struct expired x = {barge_now() - EXPIRE_SECONDS, keys};
        {
            _cleanup_tx_ struct barge_tx *tx = NULL;
            if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
                barge_store_scan(tx, kinds[k], "", NULL, false, 0, collect_expired, &x, err) < 0)
                return -1;
        }
        if (json_array_size(keys) == 0)
            continue;
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, true, &tx, err) < 0)
            return -1;
        size_t i;
        json_t *key;
        json_array_foreach(keys, i, key)
        {
            if (barge_store_del(tx, kinds[k], json_string_value(key), err) < 0)
                return -1;
        }
        if (barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
    }
    return 0;
}
