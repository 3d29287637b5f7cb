/* The shared request pipeline of pipeline.h. */
#include "api/pipeline.h"

#include "api/metrics.h"
#include "api/model.h"
#include "common/json.h"
#include "common/log.h"

void barge_api_pipeline_run(const struct barge_api_protocol *p, struct barge_http_req *req,
                            struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *input = NULL, *out = NULL;
    struct barge_api_call call = {.req = req};
    const char *op_label = NULL; /* only operations barge serves, to bound the metric's labels */
    double started = barge_metrics_clock();

    if (p->route(&call, &err) < 0)
        goto fail;
    call.model = barge_model_get(call.svc->model);
    struct barge_api_ctx ctx = {
        .srv = req->server, .http = req, .service = call.svc, .operation = call.op};
    const char *signing_name = barge_model_signing_name(call.model);
    if ((p->authenticate ? p->authenticate(&call, signing_name, &ctx.who, &err)
                         : barge_api_authenticate(req, signing_name, &ctx.who, &err)) < 0)
        goto fail;
    const struct barge_api_op *handler = barge_api_find_op(call.svc, call.op);
    if (!handler) {
        if (barge_model_has_operation(call.model, call.op))
            barge_error_set_type(&err, BARGE_ERR_UNKNOWN_OP, p->unknown_op_type,
                                 "operation '%s' is not implemented by barge", call.op);
        else
            p->unknown_op(&call, &err);
        goto fail;
    }
    op_label = handler->name;
    if (p->decode(&call, &input, &err) < 0 ||
        barge_model_validate_input(call.model, call.op, input, &err) < 0 ||
        barge_api_policy_check(&ctx, input, &err) < 0 ||
        handler->handler(&ctx, input, &out, &err) < 0)
        goto fail;
    p->encode(&call, out, resp);
    barge_debug("%s %s ok", call.svc->model, call.op);
    barge_metrics_api_observe(call.svc->model, op_label, resp->status,
                              barge_metrics_clock() - started);
    free(call.data);
    return;

fail:;
    const char *svc_name = call.svc ? call.svc->model : "?", *op = call.op ? call.op : "?";
    if (err->code == BARGE_ERR_INTERNAL || err->code == BARGE_ERR_IO)
        barge_err("%s %s failed: %s (%s:%d)", svc_name, op, err->message, err->file, err->line);
    else
        barge_debug("%s %s rejected: %s", svc_name, op, err->message);
    p->error(&call, err, resp);
    barge_metrics_api_observe(call.svc ? call.svc->model : NULL, op_label, resp->status,
                              barge_metrics_clock() - started);
    free(call.data);
}
