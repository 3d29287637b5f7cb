/* Fargate metering. A FARGATE task is billed as Fargate bills it: from the
 * start of its image pull until it stops, per second with a one-minute
 * minimum, for the task size it was configured with (vCPU and GB) plus
 * ephemeral storage above the included 20 GiB. A record is written when a task
 * stops; running tasks are measured up to now when asked.
 * GET /barge/v1/usage?cluster=&service=&since= (SigV4-signed for "ecs")
 * answers with the records and their totals; `barge usage` prints them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"

#define KIND_USAGE "usage"

struct barge_prices barge_prices = {
    /* Public us-east-1 Linux/x86 rates. */
    .vcpu_hour = 0.04048,
    .gb_hour = 0.004445,
    .storage_gb_hour = 0.000111,
    .spot_factor = 1.0,
};

static json_t *measure(const json_t *task, double now)
{
    json_t *start = json_object_get(task, "pullStartedAt");
    if (!json_is_number(start))
        start = json_object_get(task, "startedAt");
    if (!json_is_number(start))
        start = json_object_get(task, "createdAt");
    json_t *stop = json_object_get(task, "stoppedAt");
    double t0 = json_number_value(start);
    double t1 = json_is_number(stop) ? json_number_value(stop) : now;
    json_int_t seconds = (json_int_t)ceil(t1 - t0 > 0 ? t1 - t0 : 0);
    json_int_t billed = seconds < 60 ? 60 : seconds;
    double vcpu = (double)atoll(barge_json_str(task, "cpu", "0")) / 1024.0;
    double gb = (double)atoll(barge_json_str(task, "memory", "0")) / 1024.0;
    json_int_t eph = barge_json_int(barge_json_object(task, "ephemeralStorage"), "sizeInGiB", 20);
    double extra = eph > 20 ? (double)(eph - 20) : 0;
    bool spot = barge_streq(barge_json_str(task, "capacityProviderName", NULL), "FARGATE_SPOT");
    double factor = spot ? barge_prices.spot_factor : 1.0;
    double cost = ((double)billed / 3600.0) *
                  (vcpu * barge_prices.vcpu_hour + gb * barge_prices.gb_hour +
                   extra * barge_prices.storage_gb_hour) *
                  factor;
    const char *group = barge_json_str(task, "group", "");
    json_t *r =
        json_pack("{s:s, s:s, s:s, s:b, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, "
                  "s:b}",
                  "taskArn", barge_json_str(task, "taskArn", ""), "cluster",
                  barge_json_str(task, "_cluster", ""), "group", group, "spot", spot, "start", t0,
                  "stop", t1, "seconds", seconds, "billedSeconds", billed, "vcpu", vcpu, "memoryGB",
                  gb, "ephemeralStorageGBAbove20", extra, "vcpuSeconds", vcpu * (double)billed,
                  "gbSeconds", gb * (double)billed, "cost", cost, "running", !json_is_number(stop));
    if (barge_str_has_prefix(group, "service:"))
        json_object_set_new(r, "service", json_string(group + 8));
    return r;
}

int ecs_usage_record(struct barge_tx *tx, const json_t *task, struct barge_error **err)
{
    if (!barge_streq(barge_json_str(task, "launchType", NULL), "FARGATE"))
        return 0;
    _cleanup_json_ json_t *r = measure(task, barge_now());
    _cleanup_free_ char *key = barge_xasprintf(
        "%s/%017.3f/%s", barge_json_str(task, "_cluster", ""),
        json_number_value(json_object_get(r, "stop")), barge_json_str(task, "_id", ""));
    return barge_store_put(tx, KIND_USAGE, key, r, err);
}

struct query {
    const char *cluster, *service;
    double since;
    json_t *list;
};

static bool wanted(const struct query *q, const json_t *r)
{
    if (q->service && !barge_streq(barge_json_str(r, "service", NULL), q->service))
        return false;
    return json_number_value(json_object_get(r, "stop")) >= q->since;
}

static int add_record(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct query *q = ud;
    if (wanted(q, doc))
        json_array_append(q->list, doc);
    return 0;
}

static int add_running(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct query *q = ud;
    if (!barge_streq(barge_json_str(doc, "launchType", NULL), "FARGATE") ||
        barge_streq(barge_json_str(doc, "lastStatus", NULL), "STOPPED"))
        return 0;
    json_t *r = measure(doc, barge_now());
    if (wanted(q, r))
        json_array_append(q->list, r);
    json_decref(r);
    return 0;
}

void barge_api_usage_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    struct barge_server *srv = req->server;
    struct barge_sigv4_identity who;
    _cleanup_free_ char *cluster = barge_http_req_query(req, "cluster");
    _cleanup_free_ char *service = barge_http_req_query(req, "service");
    _cleanup_free_ char *since = barge_http_req_query(req, "since");
    _cleanup_json_ json_t *list = json_array();
    struct query q = {cluster, service, since ? atof(since) : 0, list};
    _cleanup_free_ char *prefix = cluster ? barge_xasprintf("%s/", cluster) : barge_xstrdup("");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (strcmp(req->raw_path, "/barge/v1/usage") != 0 || strcmp(req->method, "GET") != 0) {
        barge_error_set(&err, BARGE_ERR_UNKNOWN_OP, "no such endpoint: %s %s", req->method,
                        req->path);
        goto fail;
    }
    if (barge_api_authenticate(req, "ecs", &who, &err) < 0 ||
        barge_api_authorize(srv, &who, "barge:GetUsage", "*", &err) < 0 ||
        barge_store_begin(srv->store, false, &tx, &err) < 0 ||
        barge_store_scan(tx, KIND_USAGE, prefix, NULL, false, 0, add_record, &q, &err) < 0 ||
        barge_store_scan(tx, ECS_KIND_TASK, prefix, NULL, false, 0, add_running, &q, &err) < 0)
        goto fail;
    double totals[5] = {0};
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        totals[0] += (double)barge_json_int(r, "billedSeconds", 0);
        totals[1] += json_number_value(json_object_get(r, "vcpuSeconds"));
        totals[2] += json_number_value(json_object_get(r, "gbSeconds"));
        totals[3] += json_number_value(json_object_get(r, "cost"));
    }
    json_t *body = json_pack(
        "{s:O, s:{s:I, s:f, s:f, s:f, s:I}, s:{s:f, s:f, s:f, s:f}}", "usage", list, "totals",
        "billedSeconds", (json_int_t)totals[0], "vcpuSeconds", totals[1], "gbSeconds", totals[2],
        "cost", totals[3], "tasks", (json_int_t)json_array_size(list), "prices", "vcpuHour",
        barge_prices.vcpu_hour, "gbHour", barge_prices.gb_hour, "storageGbHour",
        barge_prices.storage_gb_hour, "spotFactor", barge_prices.spot_factor);
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_set(resp, 200, "application/json", text, strlen(text));
    return;
fail:
    barge_api_error_response(&barge_api_ecs, err, resp);
}
