/* The AWS JSON 1.1 protocol: X-Amz-Target picks the service and operation,
 * the body is the input as JSON and the answer the output as JSON; the steps
 * in between are the shared pipeline's (pipeline.c). */
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/model.h"
#include "api/pipeline.h"
#include "common/json.h"
#include "common/log.h"

extern const struct barge_api_service barge_api_ecs;
extern const struct barge_api_service barge_api_ecr;
extern const struct barge_api_service barge_api_autoscaling;
extern const struct barge_api_service barge_api_logs;
extern const struct barge_api_service barge_api_ssm;
extern const struct barge_api_service barge_api_secretsmanager;
extern const struct barge_api_service barge_api_cloudwatch;
extern const struct barge_api_service barge_api_cloudmap;
extern const struct barge_api_service barge_api_acm;

/* CloudWatch is here too: recent SDKs call it over JSON 1.0 (query.c serves
 * the query protocol older ones use). */
static const struct barge_api_service *services[] = {
    &barge_api_ecs,        &barge_api_ecr,      &barge_api_autoscaling,
    &barge_api_logs,       &barge_api_ssm,      &barge_api_secretsmanager,
    &barge_api_cloudwatch, &barge_api_cloudmap, &barge_api_acm,
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

static int proto_route(struct barge_api_call *call, struct barge_error **err)
{
    const char *target = barge_http_req_header(call->req, "X-Amz-Target");
    if (strcmp(call->req->method, "POST") != 0 || !target)
        return barge_error_set(err, BARGE_ERR_UNKNOWN_OP,
                               "expected a POST with an X-Amz-Target header naming the operation");
    call->svc = find_service(target, &call->op);
    if (!call->svc)
        return barge_error_set(err, BARGE_ERR_UNKNOWN_OP, "unknown operation '%s'", target);
    return 0;
}

static void proto_unknown_op(const struct barge_api_call *call, struct barge_error **err)
{
    barge_error_set(err, BARGE_ERR_UNKNOWN_OP, "unknown operation '%s'",
                    barge_http_req_header(call->req, "X-Amz-Target"));
}

static int proto_decode(const struct barge_api_call *call, json_t **input, struct barge_error **err)
{
    const struct barge_http_req *req = call->req;
    json_error_t jerr;
    *input = req->body_len == 0 ? json_object() : json_loadb(req->body, req->body_len, 0, &jerr);
    if (!*input)
        return barge_error_set(err, BARGE_ERR_SERIALIZATION, "request body is not valid JSON: %s",
                               jerr.text);
    return 0;
}

static void proto_encode(const struct barge_api_call *call, const json_t *out,
                         struct barge_http_resp *resp)
{
    (void)call;
    /* operations with no output answer {} */
    char *text = out ? barge_json_dump(out) : barge_xstrdup("{}");
    barge_http_resp_set(resp, 200, "application/x-amz-json-1.1", text, strlen(text));
}

static void proto_error(const struct barge_api_call *call, const struct barge_error *err,
                        struct barge_http_resp *resp)
{
    barge_api_error_response(call->svc, err, resp);
}

static const struct barge_api_protocol json11 = {
    .route = proto_route,
    .unknown_op = proto_unknown_op,
    .decode = proto_decode,
    .encode = proto_encode,
    .error = proto_error,
};

void barge_api_json11_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    /* A body sent without Content-Length is only measured once in. */
    const char *target = barge_http_req_header(req, "X-Amz-Target");
    const char *op;
    const struct barge_api_service *svc = target ? find_service(target, &op) : NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    if (svc && too_large(svc, req->body_len, &err)) {
        too_large_response(svc, err, resp);
        return;
    }
    barge_api_pipeline_run(&json11, req, resp);
}
