/* Task scale-in protection: GetTaskProtection and UpdateTaskProtection. A
 * protected task keeps "_protectedUntil" (epoch seconds) in its document;
 * the service scheduler (control/services.c) reads it through
 * ecs_task_protected and neither scales it in nor replaces it in a
 * deployment until the protection is cleared or expires. */
#include <string.h>

#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"

#define DEFAULT_MINUTES 120
#define MAX_MINUTES     2880
#define MAX_UPDATE      10  /* tasks per UpdateTaskProtection */
#define MAX_GET         100 /* tasks per GetTaskProtection */

static json_t *protected_task(const json_t *task, double now)
{
    json_t *out = json_pack("{s:s}", "taskArn", barge_json_str(task, "taskArn", ""));
    bool on = ecs_task_protected(task, now);
    json_object_set_new(out, "protectionEnabled", json_boolean(on));
    if (on)
        json_object_set(out, "expirationDate", json_object_get(task, "_protectedUntil"));
    return out;
}

static json_t *failure(const char *arn, const char *reason, const char *detail)
{
    json_t *f = json_pack("{s:s, s:s}", "arn", arn, "reason", reason);
    if (detail)
        json_object_set_new(f, "detail", json_string(detail));
    return f;
}

static int check_tasks(const json_t *tasks, bool required, size_t max, struct barge_error **err)
{
    if (required && json_array_size(tasks) == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "tasks must name at least one task.");
    if (json_array_size(tasks) > max)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "tasks can name at most %zu tasks; %zu were given.", max,
                                    json_array_size(tasks));
    return 0;
}

struct all_tasks {
    json_t *list;
    double now;
};

static int collect_active(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct all_tasks *a = ud;
    if (!barge_streq(barge_json_str(doc, "lastStatus", NULL), "STOPPED"))
        json_array_append_new(a->list, protected_task(doc, a->now));
    return 0;
}

static int get_task_protection(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    json_t *idents = json_object_get(in, "tasks");
    if (check_tasks(idents, false, MAX_GET, err) < 0)
        return -1;
    double now = barge_now();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *list = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    if (!idents) {
        /* No list: every task of the cluster that has not stopped. */
        _cleanup_free_ char *prefix = barge_xasprintf("%s/", cname);
        struct all_tasks a = {.list = list, .now = now};
        if (barge_store_scan(tx, ECS_KIND_TASK, prefix, NULL, false, 0, collect_active, &a, err) <
            0)
            return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(idents, i, v)
    {
        _cleanup_json_ json_t *task = NULL;
        _cleanup_free_ char *key = NULL;
        int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_TASK, "task", cname, json_string_value(v),
                                 &task, &key, err);
        if (r < 0)
            return -1;
        if (r == 0)
            json_array_append_new(failures, failure(json_string_value(v), "MISSING", NULL));
        else
            json_array_append_new(list, protected_task(task, now));
    }
    *out = json_pack("{s:O, s:O}", "protectedTasks", list, "failures", failures);
    return 0;
}

static int update_task_protection(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    json_t *idents = json_object_get(in, "tasks");
    if (check_tasks(idents, true, MAX_UPDATE, err) < 0)
        return -1;
    bool enable = json_is_true(json_object_get(in, "protectionEnabled"));
    json_t *jmin = json_object_get(in, "expiresInMinutes");
    json_int_t minutes = DEFAULT_MINUTES;
    if (json_is_integer(jmin)) {
        minutes = json_integer_value(jmin);
        if (minutes < 1 || minutes > MAX_MINUTES)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "expiresInMinutes must be between 1 and %d; got "
                                        "'%lld'.",
                                        MAX_MINUTES, (long long)minutes);
    }
    double now = barge_now();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *list = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    size_t i;
    json_t *v;
    json_array_foreach(idents, i, v)
    {
        const char *ident = json_string_value(v);
        _cleanup_json_ json_t *task = NULL;
        _cleanup_free_ char *key = NULL;
        int r =
            ecs_cluster_find(tx, ctx->srv, ECS_KIND_TASK, "task", cname, ident, &task, &key, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            json_array_append_new(failures, failure(ident, "MISSING", NULL));
            continue;
        }
        if (barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED")) {
            json_array_append_new(
                failures, failure(barge_json_str(task, "taskArn", ident), "TASK_NOT_VALID",
                                  "The task is stopped or stopping; only running tasks can be "
                                  "protected."));
            continue;
        }
        if (!barge_str_has_prefix(barge_json_str(task, "group", ""), "service:")) {
            json_array_append_new(
                failures, failure(barge_json_str(task, "taskArn", ident), "TASK_NOT_VALID",
                                  "The task does not belong to a service; scale-in protection "
                                  "applies to service tasks only."));
            continue;
        }
        if (enable)
            json_object_set_new(task, "_protectedUntil", json_real(now + (double)minutes * 60));
        else
            json_object_del(task, "_protectedUntil");
        if (barge_store_put(tx, ECS_KIND_TASK, key, task, err) < 0)
            return -1;
        json_array_append_new(list, protected_task(task, now));
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    /* Lifting protection may let a pending scale-in or deployment go on:
     * wake the scheduler. */
    if (!enable)
        barge_server_notify(ctx->srv);
    *out = json_pack("{s:O, s:O}", "protectedTasks", list, "failures", failures);
    return 0;
}

const struct barge_api_op ecs_protection_ops[] = {
    {"GetTaskProtection", get_task_protection},
    {"UpdateTaskProtection", update_task_protection},
    {NULL, NULL},
};
