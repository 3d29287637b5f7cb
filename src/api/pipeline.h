/* The request pipeline every AWS RPC protocol shares (JSON 1.1 in json11.c,
 * the query protocol in query.c, Smithy RPC v2 CBOR in cbor.c): route the
 * request to a service and operation, authenticate it with SigV4, find the
 * handler, decode the input, validate it against the model, call the handler,
 * encode the output or the error, and log and count the call. A protocol
 * supplies only the steps that depend on the wire format. */
#ifndef BARGE_API_PIPELINE_H
#define BARGE_API_PIPELINE_H

#include "api/api.h"

struct barge_api_call {
    struct barge_http_req *req;
    const struct barge_api_service *svc; /* set by route */
    const char *op;                      /* set by route; NULL when the request names none */
    const struct barge_model *model;     /* the service's, once routed */
    void *data;                          /* route's storage, freed with free() after the call */
};

struct barge_api_protocol {
    /* Finds call->svc and call->op; -1 with err when the request names no
     * service this protocol serves. */
    int (*route)(struct barge_api_call *call, struct barge_error **err);
    /* Who calls; NULL: the request's SigV4 signature for the model's signing
     * name (barge_api_authenticate). The console authenticates with its
     * session cookie instead. */
    int (*authenticate)(const struct barge_api_call *call, const char *signing_name,
                        struct barge_sigv4_identity *who, struct barge_error **err);
    /* The error for an operation the model does not know (those it knows but
     * barge does not implement are the pipeline's). */
    void (*unknown_op)(const struct barge_api_call *call, struct barge_error **err);
    /* The AWS error type for operations without a handler; NULL: the default. */
    const char *unknown_op_type;
    /* The input as the JSON handlers see (not yet validated). */
    int (*decode)(const struct barge_api_call *call, json_t **input, struct barge_error **err);
    /* The 200 answer with out (NULL when the handler gave none). */
    void (*encode)(const struct barge_api_call *call, const json_t *out,
                   struct barge_http_resp *resp);
    /* The error answer; call->svc and call->model may be NULL. */
    void (*error)(const struct barge_api_call *call, const struct barge_error *err,
                  struct barge_http_resp *resp);
};

void barge_api_pipeline_run(const struct barge_api_protocol *p, struct barge_http_req *req,
                            struct barge_http_resp *resp);

#endif
