/* The AWS JSON 1.1 dispatcher: X-Amz-Target picks the service and operation,
 * SigV4 authenticates, the model validates, the handler serves. Also the
 * paging helpers every List operation shares. */
#include <string.h>
#include <time.h>

#include "api/access.h"
#include "api/api.h"
#include "api/metrics.h"
#include "api/model.h"
#include "api/server.h"
#include "common/json.h"
#include "common/log.h"

extern const struct barge_api_service barge_api_ecs;
extern const struct barge_api_service barge_api_ecr;
extern const struct barge_api_service barge_api_autoscaling;
extern const struct barge_api_service barge_api_logs;
extern const struct barge_api_service barge_api_ssm;
extern const struct barge_api_service barge_api_secretsmanager;
extern const struct barge_api_service barge_api_cloudwatch;

/* CloudWatch is here too: recent SDKs call it over JSON 1.0 (query.c serves
 * the query protocol older ones use). */
static const struct barge_api_service *services[] = {
    &barge_api_ecs,        &barge_api_ecr, &barge_api_autoscaling,
    &barge_api_logs,       &barge_api_ssm, &barge_api_secretsmanager,
    &barge_api_cloudwatch,
};

static const struct barge_api_service *find_service(const char *target, const char **op)
{
    const char *dot = strrchr(target, '.');
    if (!dot)
        return NULL;
    size_t plen = (size_t)(dot - target);
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(services); i++) {
        const struct barge_model *m = barge_model_get(services[i]->model);
        const char *prefix = m ? barge_model_target_prefix(m) : NULL;
        if (prefix && strlen(prefix) == plen && memcmp(prefix, target, plen) == 0) {
            *op = dot + 1;
            return services[i];
        }
    }
    return NULL;
}

/* Whether a body of len bytes is more than svc takes: then err says so. */
static bool too_large(const struct barge_api_service *svc, unsigned long long len,
                      struct barge_error **err)
{
    if (!svc->max_request || len <= svc->max_request)
        return false;
    barge_error_set_type(err, BARGE_ERR_CLIENT, svc->client_type,
                         "request body of '%llu' bytes is larger than the '%zu' bytes this API "
                         "accepts",
                         len, svc->max_request);
    return true;
}

/* Oversized bodies get 413, in the service's error format. */
static void too_large_response(const struct barge_api_service *svc, const struct barge_error *err,
                               struct barge_http_resp *resp)
{
    barge_debug("%s request refused: %s", svc->model, err->message);
    barge_api_error_response(svc, err, resp);
    resp->status = 413;
}

enum barge_http_body_mode barge_api_json11_start(struct barge_http_req *req,
                                                 struct barge_http_resp *resp)
{
    const char *target = barge_http_req_header(req, "X-Amz-Target");
    const char *cl = barge_http_req_header(req, "Content-Length");
    const char *op;
    const struct barge_api_service *svc = target ? find_service(target, &op) : NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    if (!svc || !cl || !too_large(svc, strtoull(cl, NULL, 10), &err))
        return BARGE_HTTP_BODY_BUFFER;
    too_large_response(svc, err, resp);
    return BARGE_HTTP_BODY_REFUSE;
}

int barge_api_authenticate(struct barge_http_req *req, const char *signing_name,
                           struct barge_sigv4_identity *who, struct barge_error **err)
{
    return barge_api_authenticate_for(req, signing_name, false, who, err);
}

const struct barge_api_op *barge_api_find_op(const struct barge_api_service *svc, const char *name)
{
    for (const struct barge_api_op *const *t = svc->op_tables; name && *t; t++)
        for (const struct barge_api_op *o = *t; o->name; o++)
            if (strcmp(o->name, name) == 0)
                return o;
    return NULL;
}

void barge_api_json11_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    struct barge_server *srv = req->server;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *input = NULL, *out = NULL;
    const struct barge_api_service *svc = NULL;
    const char *op = NULL, *op_label = NULL; /* op_label: only known operations */
    const char *target = barge_http_req_header(req, "X-Amz-Target");
    double started = barge_metrics_clock();

    if (strcmp(req->method, "POST") != 0 || !target) {
        barge_error_set(&err, BARGE_ERR_UNKNOWN_OP,
                        "expected a POST with an X-Amz-Target header naming the operation");
        goto fail;
    }
    svc = find_service(target, &op);
    if (!svc) {
        barge_error_set(&err, BARGE_ERR_UNKNOWN_OP, "unknown operation '%s'", target);
        goto fail;
    }
    /* A body sent without Content-Length is only measured once in. */
    if (too_large(svc, req->body_len, &err)) {
        too_large_response(svc, err, resp);
        return;
    }
    const struct barge_model *model = barge_model_get(svc->model);
    struct barge_api_ctx ctx = {.srv = srv, .http = req, .service = svc, .operation = op};
    if (barge_api_authenticate(req, barge_model_signing_name(model), &ctx.who, &err) < 0)
        goto fail;

    const struct barge_api_op *handler = barge_api_find_op(svc, op);
    if (!handler) {
        if (barge_model_has_operation(model, op))
            barge_error_set(&err, BARGE_ERR_UNKNOWN_OP,
                            "operation '%s' is not implemented by barge", op);
        else
            barge_error_set(&err, BARGE_ERR_UNKNOWN_OP, "unknown operation '%s'", target);
        goto fail;
    }
    op_label = handler->name;

    json_error_t jerr;
    input = req->body_len == 0 ? json_object() : json_loadb(req->body, req->body_len, 0, &jerr);
    if (!input) {
        barge_error_set(&err, BARGE_ERR_SERIALIZATION, "request body is not valid JSON: %s",
                        jerr.text);
        goto fail;
    }
    if (barge_model_validate_input(model, op, input, &err) < 0 ||
        barge_api_policy_check(&ctx, input, &err) < 0)
        goto fail;

    if (handler->handler(&ctx, input, &out, &err) < 0)
        goto fail;
    if (!out)
        out = json_object(); /* operations with no output answer {} */
    char *text = barge_json_dump(out);
    barge_http_resp_set(resp, 200, "application/x-amz-json-1.1", text, strlen(text));
    barge_debug("%s %s ok", svc->model, op);
    barge_metrics_api_observe(svc->model, op_label, resp->status, barge_metrics_clock() - started);
    return;

fail:
    if (err->code == BARGE_ERR_INTERNAL || err->code == BARGE_ERR_IO)
        barge_err("%s %s failed: %s (%s:%d)", svc ? svc->model : "?", op ? op : "?", err->message,
                  err->file, err->line);
    else
        barge_debug("%s %s rejected: %s", svc ? svc->model : "?", op ? op : "?", err->message);
    barge_api_error_response(svc, err, resp);
    barge_metrics_api_observe(svc ? svc->model : NULL, op_label, resp->status,
                              barge_metrics_clock() - started);
}
