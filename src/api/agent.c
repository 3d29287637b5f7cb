/* The agent channel: how barge-agent talks to barged. Plain HTTP with JSON
 * bodies under /agent/:
 *   POST /agent/register  SigV4-signed (an access key, like any API call),
 *                         or with a join token as the Bearer token
 *                         (jointokens.c): registers the host as a container
 *                         instance and returns a per-instance token.
 *   POST /agent/poll      Bearer token: long-polls for the instance's tasks;
 *                         answers at once when the agent's view is stale or
 *                         a client asks for a task's output (logRequests),
 *                         else when a task changes or after `wait` seconds.
 *                         Each poll is also the instance's heartbeat.
 *   POST /agent/state     Bearer token: a task state change (the shape of
 *                         SubmitTaskStateChange, plus stopCode/stoppedReason).
 *   POST /agent/logs      Bearer token: a batch of a container's output for
 *                         its awslogs stream (logs.c).
 *   POST /agent/task-logs Bearer token: a slice of a container's log file
 *                         that a logRequest asked for (tasklogs.h), read
 *                         from the host whatever the log driver.
 *   POST /agent/metrics   Bearer token: containers' CPU and memory usage
 *                         (metrics.c).
 *   POST /agent/credentials  Bearer token: execution credentials for one of
 *                         the instance's tasks (access.h).
 *   POST /agent/dns       Bearer token: long-polls for the records of the
 *                         Cloud Map private DNS namespaces (cloudmap.h) the
 *                         agent's DNS server answers, and the Service Connect
 *                         client aliases its proxy serves; at once when they differ
 *                         from the `version` the agent has.
 * The poll's answer also lists the exec sessions the agent is to join
 * (execRequests, exec.h).
 * Tokens are "<cluster>/<instance id>/<secret>"; only the secret's SHA-256 is
 * stored. */
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>

#include "api/access.h"
#include "api/api.h"
#include "api/cloudmap.h"
#include "api/ecs.h"
#include "api/exec.h"
#include "api/logs.h"
#include "api/metrics.h"
#include "api/server.h"
#include "api/tasklogs.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "image/image.h"

#define MAX_WAIT_SECONDS 30

static void reply(struct barge_http_resp *resp, int status, json_t *body)
{
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_set(resp, status, "application/json", text, strlen(text));
}

static void reply_error(struct barge_http_resp *resp, const struct barge_error *err)
{
    int status = 400;
    switch (err->code) {
    case BARGE_ERR_AUTH_MISSING:
    case BARGE_ERR_AUTH_INCOMPLETE:
    case BARGE_ERR_AUTH_UNKNOWN_KEY:
    case BARGE_ERR_AUTH_SIGNATURE:
    case BARGE_ERR_AUTH_EXPIRED:
        status = 401;
        break;
    case BARGE_ERR_ACCESS_DENIED:
        status = 403;
        break;
    case BARGE_ERR_NOT_FOUND:
        status = 404;
        break;
    case BARGE_ERR_CONFLICT:
        status = 410;
        break;
    case BARGE_ERR_INTERNAL:
    case BARGE_ERR_IO:
        status = 500;
        break;
    default:
        break;
    }
    json_t *body =
        json_pack("{s:s, s:s}", "error", barge_errcode_name(err->code), "message", err->message);
    /* The AWS error type, when there is one, lets the agent tell a missing
     * log group from a task barged no longer knows. */
    barge_json_set_str(body, "type", err->type);
    reply(resp, status, body);
}

/* A host refused for its join token shows in barged's log too: the operator
 * looks there first. */
static int refused(const json_t *in, const struct barge_error *err)
{
    if (err->code != BARGE_ERR_INTERNAL && err->code != BARGE_ERR_IO)
        barge_warn("refused to register host %s: %s", barge_json_str(in, "hostname", "?"),
                   err->message);
    return -1;
}

static int register_agent(struct barge_http_req *req, json_t *in, json_t **out,
                          struct barge_error **err)
{
    struct barge_server *srv = req->server;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *doc = NULL, *join = NULL;
    /* A host holds either an access key or a join token. */
    const char *auth = barge_http_req_header(req, "Authorization");
    const char *join_token =
        auth && barge_str_has_prefix(auth, "Bearer ") ? auth + strlen("Bearer ") : NULL;
    struct barge_sigv4_identity who;
    if (!join_token && (barge_api_authenticate(req, "ecs", &who, err) < 0 ||
                        barge_api_authorize(srv, &who, "barge:RegisterHost", "*", err) < 0))
        return -1;
    /* The host joins a cluster of the region it names (barge-agent
     * --region), else of barged's default region, whatever region its
     * request was signed for. */
    const char *region = barge_json_str(in, "region", NULL);
    if (region && !barge_store_region_valid(region))
        return barge_error_set(err, BARGE_ERR_INVALID, "'%s' is not a region", region);
    barge_store_use_region(region);
    if (barge_store_begin(srv->store, true, &tx, err) < 0)
        return -1;
    if (join_token && barge_api_join_token_check(tx, join_token, &join, err) < 0)
        return refused(in, *err);
    /* Hosts enrolled as Fargate capacity belong to no cluster: they join the
     * pool, which no listing shows and every cluster's FARGATE tasks use. */
    if (barge_streq(barge_json_str(in, "capacity", NULL), "FARGATE"))
        cluster = json_pack("{s:s, s:s}", "clusterName", ECS_FARGATE_POOL, "clusterArn", "");
    else if (ecs_cluster_load(tx, srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    if (join && barge_api_join_token_use(tx, join, cname, err) < 0)
        return refused(in, *err);
    unsigned char secret[32];
    char hex[65];
    barge_random_bytes(secret, sizeof(secret));
    for (size_t i = 0; i < sizeof(secret); i++)
        snprintf(hex + 2 * i, 3, "%02x", secret[i]);
    char hash[65];
    barge_sha256_hex(hex, 64, hash);
    if (ecs_instance_register(tx, srv, cluster, in, hash, &doc, err) < 0)
        return -1;
    json_object_set_new(doc, "_lastSeen", json_real(barge_now()));
    /* Where barged's host reaches the host: load balancers (which run there)
     * send traffic to its tasks' host ports at this address. */
    if (req->remote_addr && *req->remote_addr)
        json_object_set_new(doc, "_address", json_string(req->remote_addr));
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, barge_json_str(doc, "_id", ""));
    if (barge_store_put(tx, ECS_KIND_INSTANCE, key, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    /* The token names the instance's region unless it is the default one,
     * so that tokens issued before regions existed stay valid. */
    const char *in_region = barge_server_region(srv);
    bool dflt = barge_streq(in_region, srv->cfg.region);
    _cleanup_free_ char *token =
        barge_xasprintf("%s%s%s/%s/%s", dflt ? "" : in_region, dflt ? "" : ":", cname,
                        barge_json_str(doc, "_id", ""), hex);
    barge_info("registered container instance %s in cluster %s (host %s%s%s)",
               barge_json_str(doc, "_id", ""), cname, barge_json_str(in, "hostname", "?"),
               join ? ", join token " : "", join ? barge_json_str(join, "id", "") : "");
    *out = json_pack("{s:s, s:s, s:s}", "containerInstanceArn",
                     barge_json_str(doc, "containerInstanceArn", ""), "clusterArn",
                     barge_json_str(cluster, "clusterArn", ""), "token", token);
    return 0;
}

/* Checks the bearer token and returns the instance's store key (caller frees). */
static char *authenticate_agent(struct barge_http_req *req, struct barge_error **err)
{
    const char *auth = barge_http_req_header(req, "Authorization");
    if (!auth || !barge_str_has_prefix(auth, "Bearer ")) {
        barge_error_set(err, BARGE_ERR_AUTH_MISSING, "the agent channel needs a Bearer token");
        return NULL;
    }
    const char *token = auth + 7;
    const char *last = strrchr(token, '/');
    if (!last || last == token || strlen(last + 1) != 64) {
        barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE, "malformed agent token");
        return NULL;
    }
    /* "<region>:" first for an instance of another region than the default
     * one (cluster names have no ':'); the agent's requests work there. */
    const char *colon = strchr(token, ':');
    if (colon && colon < last) {
        char region[BARGE_STORE_REGION_MAX];
        snprintf(region, sizeof(region), "%.*s", (int)(colon - token), token);
        if (!barge_store_region_valid(region)) {
            barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE, "malformed agent token");
            return NULL;
        }
        barge_store_use_region(region);
        token = colon + 1;
    }
    char *key = barge_xstrndup(token, (size_t)(last - token));
    struct barge_server *srv = req->server;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_INSTANCE, key, &doc, err) < 0) {
        free(key);
        return NULL;
    }
    char hash[65];
    barge_sha256_hex(last + 1, 64, hash);
    const char *want = barge_json_str(doc, "_tokenHash", NULL);
    if (!want || CRYPTO_memcmp(want, hash, 64) != 0) {
        free(key);
        barge_error_set(err, BARGE_ERR_AUTH_UNKNOWN_KEY,
                        "unknown agent token: the instance is not registered here");
        return NULL;
    }
    if (strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0) {
        free(key);
        barge_error_set(err, BARGE_ERR_CONFLICT,
                        "the container instance was deregistered; register the host again");
        return NULL;
    }
    return key;
}

struct work {
    json_t *itasks; /* index entries of the instance */
};

static int collect_work(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct work *w = ud;
    json_array_append(w->itasks, doc);
    return 0;
}

/* The instance's current task manifests. New reference. */
static json_t *manifests(struct barge_server *srv, const char *instance_key,
                         struct barge_error **err)
{
    const char *id = strrchr(instance_key, '/') + 1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *itasks = json_array();
    struct work w = {itasks};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", id);
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_ITASK, prefix, NULL, false, 0, collect_work, &w, err) < 0)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(itasks, i, it)
    {
        _cleanup_free_ char *tkey = barge_xasprintf("%s/%s", barge_json_str(it, "cluster", ""),
                                                    barge_json_str(it, "task", ""));
        _cleanup_json_ json_t *task = NULL, *td = NULL;
        _cleanup_free_ char *tdkey = NULL;
        if (barge_store_get(tx, ECS_KIND_TASK, tkey, &task, err) < 0)
            goto fail;
        if (!task)
            continue;
        int r = ecs_taskdef_find(tx, srv, barge_json_str(task, "taskDefinitionArn", ""), &td,
                                 &tdkey, err);
        if (r < 0)
            goto fail;
        json_t *pub = ecs_public(task);
        json_t *m = json_pack(
            "{s:s, s:I, s:s, s:o, s:O, s:O}", "taskArn", barge_json_str(task, "taskArn", ""),
            "version", barge_json_int(task, "version", 0), "desiredStatus",
            barge_json_str(task, "desiredStatus", ""), "task", pub, "taskDefinition",
            td ? td : json_null(), "reserved", json_object_get(it, "reserved"));
        json_array_append_new(out, m);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static bool stale(const json_t *list, const json_t *known)
{
    if (!json_is_object(known) || json_object_size(known) != json_array_size(list))
        return true;
    size_t i;
    json_t *m;
    json_array_foreach((json_t *)list, i, m)
    {
        json_t *v = json_object_get(known, barge_json_str(m, "taskArn", ""));
        if (!json_is_integer(v) || json_integer_value(v) != barge_json_int(m, "version", -1))
            return true;
    }
    return false;
}

/* Records that the instance's agent was heard from (_lastSeen, which the
 * lost-host watch reads). Polls come at least every third of the disconnect
 * timeout, so a _lastSeen younger than a sixth of it is left alone: most
 * polls then only read, and the store's writer stays free for real changes
 * however many agents there are. */
static int touch_instance(struct barge_server *srv, const char *key, struct barge_error **err)
{
    double now = barge_now();
    {
        _cleanup_tx_ struct barge_tx *rtx = NULL;
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_begin(srv->store, false, &rtx, err) < 0 ||
            barge_store_get(rtx, ECS_KIND_INSTANCE, key, &doc, err) < 0)
            return -1;
        json_t *seen = json_object_get(doc, "_lastSeen");
        if (doc && json_is_number(seen) && ecs_instance_connected(doc) &&
            now - json_number_value(seen) < ecs_agent_timeout_seconds / 6.0)
            return 0;
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_INSTANCE, key, &doc, err) < 0)
        return -1;
    if (!doc)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "instance '%s' vanished", key);
    bool was_connected = ecs_instance_connected(doc);
    json_object_set_new(doc, "_lastSeen", json_real(now));
    if (barge_store_put(tx, ECS_KIND_INSTANCE, key, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    if (!was_connected)
        barge_info("agent of container instance %s connected", key);
    return 0;
}

/* The seconds a long poll may wait: its "wait" (default 20), within
 * 0..MAX_WAIT_SECONDS. */
static json_int_t requested_wait(const json_t *in)
{
    json_int_t wait = barge_json_int(in, "wait", 20);
    return wait < 0 ? 0 : wait > MAX_WAIT_SECONDS ? MAX_WAIT_SECONDS : wait;
}

/* Answers when the instance's manifests differ from what the agent knows or
 * a log request waits for it, else parks the request until something changes
 * or the wait is over (then this runs again). Returns 1 when parked. */
static int poll_agent(struct barge_http_req *req, json_t *in, json_t **out,
                      struct barge_error **err)
{
    struct barge_server *srv = req->server;
    _cleanup_free_ char *key = authenticate_agent(req, err);
    if (!key)
        return -1;
    if (!req->wait_deadline_ms) {
        if (touch_instance(srv, key, err) < 0)
            return -1;
        json_int_t wait = requested_wait(in);
        /* The poll is the heartbeat: answer well within the disconnect timeout. */
        if (wait > ecs_agent_timeout_seconds / 3)
            wait = ecs_agent_timeout_seconds / 3;
        req->wait_deadline_ms = barge_monotonic_ms() + wait * 1000;
    }
    json_t *known = json_object_get(in, "known");
    const char *id = strrchr(key, '/') + 1;
    uint64_t gen = barge_server_generation(srv);
    json_t *list = manifests(srv, key, err);
    if (!list)
        return -1;
    json_t *logreqs = NULL;
    if (barge_api_task_logs_pending(srv, id, &logreqs, err) < 0) {
        json_decref(list);
        return -1;
    }
    json_t *execs = barge_api_exec_pending(id);
    if (stale(list, known) || json_array_size(logreqs) > 0 || json_array_size(execs) > 0 ||
        !barge_server_park(req, gen, req->wait_deadline_ms)) {
        *out = json_pack("{s:o, s:o, s:o}", "tasks", list, "logRequests", logreqs, "execRequests",
                         execs);
        return 0;
    }
    json_decref(execs);
    json_decref(list);
    json_decref(logreqs);
    return 1;
}

static int submit_state(struct barge_http_req *req, json_t *in, json_t **out,
                        struct barge_error **err)
{
    struct barge_server *srv = req->server;
    _cleanup_free_ char *key = authenticate_agent(req, err);
    if (!key)
        return -1;
    const char *id = strrchr(key, '/') + 1;
    const char *arn = barge_json_str(in, "taskArn", "");
    const char *slash = strrchr(arn, '/');
    const char *task_id = slash ? slash + 1 : arn;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *task = NULL, *idx = NULL;
    /* The task's cluster comes from the instance's index: pool instances run
     * tasks of every cluster. A task no longer indexed was stopped without
     * the agent (its host was lost); its cluster is in its ARN. */
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", id, task_id);
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_ITASK, ikey, &idx, err) < 0)
        return -1;
    _cleanup_free_ char *cluster = NULL;
    if (idx) {
        cluster = barge_xstrdup(barge_json_str(idx, "cluster", ""));
    } else {
        const char *c = strstr(arn, ":task/");
        const char *end = c ? strchr(c + 6, '/') : NULL;
        cluster = end ? barge_xstrndup(c + 6, (size_t)(end - c - 6)) : barge_xstrdup("");
    }
    _cleanup_free_ char *tkey = barge_xasprintf("%s/%s", cluster, task_id);
    if (barge_store_get(tx, ECS_KIND_TASK, tkey, &task, err) < 0)
        return -1;
    if (!task)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "task '%s' is not known", arn);
    if (!barge_streq(barge_json_str(task, "_instanceId", NULL), id))
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "task '%s' does not belong to this instance", arn);
    bool pulled = !json_object_get(task, "pullStoppedAt");
    int changed = ecs_task_apply_report(tx, task, in, err);
    if (changed < 0)
        return -1;
    if (!changed) {
        *out = json_pack("{s:I}", "version", barge_json_int(task, "version", 0));
        return 0;
    }
    if (barge_store_put(tx, ECS_KIND_TASK, tkey, task, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_debug("task %s is %s (desired %s)", arn, barge_json_str(task, "lastStatus", ""),
                barge_json_str(task, "desiredStatus", ""));
    barge_server_notify(srv);
    json_t *p0 = json_object_get(task, "pullStartedAt");
    json_t *p1 = json_object_get(task, "pullStoppedAt");
    if (pulled && json_is_number(p0) && json_is_number(p1))
        barge_metrics_image_pull(json_number_value(p1) - json_number_value(p0));
    *out = json_pack("{s:I}", "version", barge_json_int(task, "version", 0));
    return 0;
}

/* Whether image names repository repo of barged's own registry. */
static bool image_in_repo(const char *image, const char *host, const char *repo)
{
    struct barge_image_ref ref;
    _cleanup_error_ struct barge_error *e = NULL;
    if (!image || barge_image_ref_parse(image, &ref, &e) < 0)
        return false;
    bool match = barge_streq(ref.domain, host) && barge_streq(ref.repository, repo);
    barge_image_ref_release(&ref);
    return match;
}

/* Whether a task (an index entry of the instance) runs an image of the
 * repository: 1, 0, or -1. */
static int task_uses_repo(struct barge_tx *tx, struct barge_server *srv, const json_t *it,
                          const char *host, const char *repo, struct barge_error **err)
{
    _cleanup_free_ char *tkey =
        barge_xasprintf("%s/%s", barge_json_str(it, "cluster", ""), barge_json_str(it, "task", ""));
    _cleanup_json_ json_t *task = NULL, *td = NULL;
    _cleanup_free_ char *tdkey = NULL;
    if (barge_store_get(tx, ECS_KIND_TASK, tkey, &task, err) < 0)
        return -1;
    if (!task)
        return 0;
    if (ecs_taskdef_find(tx, srv, barge_json_str(task, "taskDefinitionArn", ""), &td, &tdkey, err) <
        0)
        return -1;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        if (image_in_repo(barge_json_str(c, "image", NULL), host, repo))
            return 1;
    }
    return 0;
}

int barge_api_instance_may_pull(const char *instance, const char *repo, void *ud,
                                struct barge_error **err)
{
    struct barge_server *srv = ud;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    /* "<region>:<cluster>/<id>" for an instance of another region. */
    char was[BARGE_STORE_REGION_MAX], region[BARGE_STORE_REGION_MAX] = "";
    snprintf(was, sizeof(was), "%s", barge_store_thread_region() ?: "");
    const char *colon = strchr(instance, ':');
    if (colon) {
        snprintf(region, sizeof(region), "%.*s", (int)(colon - instance), instance);
        instance = colon + 1;
    }
    barge_store_use_region(region[0] ? region : NULL);
    int r = barge_store_begin(srv->store, false, &tx, err);
    barge_store_use_region(was[0] ? was : NULL);
    if (r < 0 || barge_store_get(tx, ECS_KIND_INSTANCE, instance, &doc, err) < 0)
        return -1;
    if (!doc || barge_streq(barge_json_str(doc, "status", ""), "INACTIVE"))
        return 0;
    if (!repo)
        return 1;
    /* The tasks the instance has been given and has not yet seen stop. */
    _cleanup_json_ json_t *itasks = json_array();
    struct work w = {itasks};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", barge_json_str(doc, "_id", ""));
    if (barge_store_scan(tx, ECS_KIND_ITASK, prefix, NULL, false, 0, collect_work, &w, err) < 0)
        return -1;
    _cleanup_free_ char *host = barge_registry_host(srv->registry);
    size_t i;
    json_t *it;
    json_array_foreach(itasks, i, it)
    {
        int used = task_uses_repo(tx, srv, it, host, repo, err);
        if (used != 0)
            return used;
    }
    return 0;
}

/* Credentials for pulling from barged's own registry, so task definitions can
 * name images the way ECR users do and agents log in by themselves. The token
 * names the instance, not a key: it only pulls, and only the repositories of
 * the tasks assigned to the instance at the time of each pull. */
static int registry_auth(struct barge_http_req *req, json_t *in, json_t **out,
                         struct barge_error **err)
{
    struct barge_server *srv = req->server;
    _cleanup_free_ char *key = authenticate_agent(req, err);
    if (!key)
        return -1;
    if (!srv->registry)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                               "no registry credentials for this instance");
    time_t expires = 0;
    /* As in the agent's own token, the region prefixes another region's
     * instance, so that pulls (which carry no region) find it. */
    const char *region = barge_server_region(srv);
    _cleanup_free_ char *subject = barge_streq(region, srv->cfg.region)
                                       ? barge_xstrdup(key)
                                       : barge_xasprintf("%s:%s", region, key);
    _cleanup_free_ char *token =
        barge_registry_pull_token_issue(srv->registry, subject, time(NULL), &expires);
    _cleanup_free_ char *host = barge_registry_host(srv->registry);
    *out = json_pack("{s:[s], s:s, s:s, s:I}", "registries", host, "username", "AWS", "password",
                     token, "expiresAt", (json_int_t)expires);
    return 0;
}

/* /agent/logs, /agent/task-logs and /agent/metrics: authenticated here,
 * served by logs.c, tasklogs.c and metrics.c with the instance's cluster and
 * id. */
static int agent_forward(struct barge_http_req *req, json_t *in, json_t **out,
                         int (*fn)(struct barge_server *srv, const char *cluster,
                                   const char *instance_id, const json_t *in, json_t **out,
                                   struct barge_error **err),
                         struct barge_error **err)
{
    _cleanup_free_ char *key = authenticate_agent(req, err);
    if (!key)
        return -1;
    const char *id = strrchr(key, '/') + 1;
    _cleanup_free_ char *cluster = barge_xstrndup(key, (size_t)(id - 1 - key));
    return fn(req->server, cluster, id, in, out, err);
}

/* POST /agent/credentials: execution credentials for a task of this
 * instance, which read what its definition names (access.h). */
static int task_credentials(struct barge_http_req *req, json_t *in, json_t **out,
                            struct barge_error **err)
{
    _cleanup_free_ char *key = authenticate_agent(req, err);
    if (!key)
        return -1;
    return barge_api_task_credentials_issue(req->server, key, in, out, err);
}

/* POST /agent/dns: {"version": V, "wait": S} -> {"version", "hosts",
 * "domains", "srv", "aliases" (Service Connect's)}, once the records' version differs from V (or
 * after S seconds). */
static int dns_records(struct barge_http_req *req, json_t *in, json_t **out,
                       struct barge_error **err)
{
    struct barge_server *srv = req->server;
    _cleanup_free_ char *key = authenticate_agent(req, err);
    if (!key)
        return -1;
    if (!req->wait_deadline_ms) {
        req->wait_deadline_ms = barge_monotonic_ms() + requested_wait(in) * 1000;
    }
    uint64_t gen = barge_server_generation(srv);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *hosts = NULL;
    _cleanup_json_ json_t *domains = NULL, *srvs = NULL, *aliases = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_cloudmap_dns_records(tx, &hosts, &domains, &srvs, err) < 0 ||
        ecs_service_connect_aliases(tx, &aliases, err) < 0)
        return -1;
    barge_store_abort(barge_steal(&tx));
    _cleanup_free_ char *dtext = barge_json_dump(domains);
    _cleanup_free_ char *stext = barge_json_dump(srvs);
    _cleanup_free_ char *atext = barge_json_dump(aliases);
    _cleanup_free_ char *both = barge_xasprintf("%s\n%s\n%s\n%s", hosts, dtext, stext, atext);
    char version[65];
    barge_sha256_hex(both, strlen(both), version);
    if (!barge_streq(barge_json_str(in, "version", NULL), version) ||
        !barge_server_park(req, gen, req->wait_deadline_ms)) {
        *out = json_pack("{s:s, s:s, s:O, s:O, s:O}", "version", version, "hosts", hosts, "domains",
                         domains, "srv", srvs, "aliases", aliases);
        return 0;
    }
    return 1;
}

void barge_api_agent_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *in = NULL, *out = NULL;
    if (strcmp(req->method, "POST") != 0) {
        barge_error_set(&err, BARGE_ERR_INVALID, "the agent channel only takes POST");
        goto fail;
    }
    json_error_t jerr;
    in = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(in)) {
        barge_error_set(&err, BARGE_ERR_SERIALIZATION, "the body must be a JSON object");
        goto fail;
    }
    int r;
    if (strcmp(req->path, "/agent/register") == 0)
        r = register_agent(req, in, &out, &err);
    else if (strcmp(req->path, "/agent/poll") == 0)
        r = poll_agent(req, in, &out, &err);
    else if (strcmp(req->path, "/agent/state") == 0)
        r = submit_state(req, in, &out, &err);
    else if (strcmp(req->path, "/agent/registry-auth") == 0)
        r = registry_auth(req, in, &out, &err);
    else if (strcmp(req->path, "/agent/logs") == 0)
        r = agent_forward(req, in, &out, barge_logs_agent_put, &err);
    else if (strcmp(req->path, "/agent/task-logs") == 0)
        r = agent_forward(req, in, &out, barge_api_task_logs_put, &err);
    else if (strcmp(req->path, "/agent/metrics") == 0)
        r = agent_forward(req, in, &out, barge_metrics_agent_report, &err);
    else if (strcmp(req->path, "/agent/credentials") == 0)
        r = task_credentials(req, in, &out, &err);
    else if (strcmp(req->path, "/agent/dns") == 0)
        r = dns_records(req, in, &out, &err);
    else
        r = barge_error_set(&err, BARGE_ERR_NOT_FOUND, "no agent endpoint '%s'", req->path);
    if (r < 0)
        goto fail;
    if (r > 0 && (strcmp(req->path, "/agent/poll") == 0 || strcmp(req->path, "/agent/dns") == 0))
        return; /* parked: this runs again */
    reply(resp, 200, barge_steal(&out));
    return;
fail:
    if (err->code == BARGE_ERR_INTERNAL || err->code == BARGE_ERR_IO)
        barge_err("agent channel %s: %s", req->path, err->message);
    reply_error(resp, err);
}
