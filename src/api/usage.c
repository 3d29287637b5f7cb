/* Fargate usage as the API serves it: the records src/ecs/usage.c writes when
 * tasks stop, and running tasks measured up to now.
 * GET /barge/v1/usage?cluster=&service=&since= (SigV4-signed for "ecs")
 * answers with the records and their totals; `barge usage` prints them. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"

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
    json_t *r = ecs_usage_measure(doc, barge_now());
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
        barge_store_scan(tx, ECS_KIND_USAGE, prefix, NULL, false, 0, add_record, &q, &err) < 0 ||
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
