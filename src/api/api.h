/* The AWS JSON 1.1 API framework shared by every JSON service barged serves
 * (ECS, and later SSM, Secrets Manager, Logs, ECR, Application Auto Scaling).
 * One pipeline (pipeline.c) serves every RPC protocol (JSON 1.1 in json11.c,
 * the query protocol in query.c, RPC v2 CBOR in cbor.c): it authenticates the
 * request with SigV4, validates the input against botocore's model and calls
 * the operation's handler; one table (errors.c) turns a struct barge_error
 * into the service's wire error. Each API area is one file
 * that defines a struct barge_api_service. */
#ifndef BARGE_API_API_H
#define BARGE_API_API_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "common/sigv4.h"
#include "http/http.h"

struct barge_server;
struct barge_model;

/* What a handler knows about the call it serves. */
struct barge_api_ctx {
    struct barge_server *srv;
    const struct barge_http_req *http;
    const struct barge_api_service *service;
    const char *operation;
    struct barge_sigv4_identity who; /* the verified caller */
};

/* Serves one operation: reads input (validated against the model; borrowed),
 * returns 0 with a new JSON object in *out, or -1 with err set. */
typedef int (*barge_api_handler)(struct barge_api_ctx *ctx, json_t *input, json_t **out,
                                 struct barge_error **err);

struct barge_api_op {
    const char *name; /* "CreateCluster" */
    barge_api_handler handler;
};

struct barge_api_service {
    const char *model;          /* model file name, "ecs" */
    const char *message_key;    /* "message", or "Message" for Secrets Manager */
    const char *invalid_type;   /* BARGE_ERR_INVALID: "InvalidParameterException" */
    const char *client_type;    /* BARGE_ERR_CLIENT and unsupported: "ClientException" */
    const char *server_type;    /* BARGE_ERR_INTERNAL/IO: "ServerException" */
    const char *not_found_type; /* BARGE_ERR_NOT_FOUND without an explicit type */
    /* A former query-protocol service (CloudWatch): JSON and CBOR errors also
     * carry the query error code in x-amzn-query-error. */
    bool query_compatible;
    /* The largest request body the service takes (0: the route's limit);
     * larger ones are refused before they are read or parsed. */
    size_t max_request;
    /* NULL-terminated list of operation tables (one per API area), each
     * terminated by an entry with a NULL name. */
    const struct barge_api_op *const *op_tables;
};

/* Verifies req's SigV4 signature with the keys in the store and checks that
 * it was signed for signing_name ("ecs"). Fills *who on success. */
int barge_api_authenticate(struct barge_http_req *req, const char *signing_name,
                           struct barge_sigv4_identity *who, struct barge_error **err);

/* Evaluates the identity policies of the caller (IAM users, assumed roles;
 * never the admin key) for the operation about to be served with input:
 * action "<service prefix>:<operation>" on the resource the input names
 * (see access.c). Every protocol's dispatcher calls it once, after the
 * input is validated and before the handler. Returns 0, or -1 with an
 * AccessDenied(Exception) in err. */
int barge_api_policy_check(const struct barge_api_ctx *ctx, const json_t *input,
                           struct barge_error **err);

/* A document's AWS TagList under "tags" (taglist.c): merge sets or replaces
 * the tags of add (a TagList); remove drops those whose Key is in keys (a list
 * of strings). */
void barge_api_tags_merge(json_t *doc, const json_t *add);
void barge_api_tags_remove(json_t *doc, const json_t *keys);
/* The operation of svc called name (NULL name: none), or NULL. */
const struct barge_api_op *barge_api_find_op(const struct barge_api_service *svc, const char *name);
/* The HTTP handler for "POST /" requests carrying X-Amz-Target. */
void barge_api_json11_handle(struct barge_http_req *req, struct barge_http_resp *resp);
/* Called once the headers of such a request are in: refuses (filling resp)
 * a body its Content-Length shows is larger than the service takes. */
enum barge_http_body_mode barge_api_json11_start(struct barge_http_req *req,
                                                 struct barge_http_resp *resp);

/* Fills resp with the wire form of err for service (NULL: a generic JSON
 * error). Exposed for the other protocols' handlers. */
void barge_api_error_response(const struct barge_api_service *service,
                              const struct barge_error *err, struct barge_http_resp *resp);

/* The wire type, HTTP status and message (borrowed; internal details
 * replaced) of err for service (NULL: generic), for every protocol. */
void barge_api_error_wire(const struct barge_api_service *service, const struct barge_error *err,
                          const char **type, int *status, const char **message);

/* The AWS query protocol (query.c): form-encoded POST "/" with Action and
 * Version, answered in XML, for CloudWatch. The decoder and the encoder are
 * driven by the service's model: input members from "A.member.1.B" keys
 * (lists "member.N", maps "entry.N.key/value", honouring locationName and
 * flattened), scalars converted to the JSON the handlers see everywhere
 * (timestamps as epoch seconds); output as <OpResponse><OpResult>... with
 * the operation's resultWrapper. */
void barge_api_query_handle(struct barge_http_req *req, struct barge_http_resp *resp);
/* Decodes a form body for operation's input shape into a new object in *out
 * (not yet validated against the model's constraints). */
int barge_api_query_decode(const struct barge_model *model, const char *operation, const char *form,
                           size_t len, json_t **out, struct barge_error **err);
/* The XML answer (caller frees) to operation with output out (NULL: none). */
char *barge_api_query_encode(const struct barge_model *model, const char *operation,
                             const json_t *out, const char *request_id);

/* Smithy RPC v2 CBOR (cbor.c), which recent SDKs prefer for CloudWatch:
 * POST /service/<target prefix>/operation/<operation>, CBOR in and out. */
void barge_api_cbor_handle(struct barge_http_req *req, struct barge_http_resp *resp);
/* Decodes a CBOR request body (a map; empty: {}) into a new object in *out:
 * tag 1 timestamps become epoch seconds, byte strings base64 text. */
int barge_api_cbor_decode(const void *body, size_t len, json_t **out, struct barge_error **err);
/* The CBOR answer (caller frees; *len bytes) to operation with output out
 * (NULL: an empty map), typed by the model's output shape. */
void *barge_api_cbor_encode(const struct barge_model *model, const char *operation,
                            const json_t *out, size_t *len);

/* Paging helpers shared by every List operation: a nextToken is an opaque
 * base64url form of the last key returned. */
char *barge_api_token_encode(const char *last_key);
/* Decodes a token; NULL input gives 0 and *key = NULL. A malformed token is an
 * InvalidParameterException naming the value. */
int barge_api_token_decode(const char *token, char **key, struct barge_error **err);
/* maxResults from input[name] with ECS's rules: absent → dflt; outside 1..max
 * → InvalidParameterException. */
int barge_api_max_results(const json_t *input, const char *name, int dflt, int max, int *out,
                          struct barge_error **err);

/* One page of a listing. barge_api_page_init reads the page size from
 * in[max_field] (see barge_api_max_results) and where to start from
 * in[token_field]; scans then start after page.after and offer each match to
 * barge_api_page_add, which takes the item and answers 1 (stop scanning) once
 * the page was already full; barge_api_page_finish moves the items into
 * out[field], adds out[token_field] when more remain and frees the page. */
struct barge_api_page {
    json_t *items;
    int max;
    char *after; /* the key to continue after, or NULL from the start */
    char *last;  /* the key of the last item taken */
    bool more;
};
int barge_api_page_init(struct barge_api_page *pg, const json_t *in, const char *max_field,
                        int dflt, int limit, const char *token_field, struct barge_error **err);
int barge_api_page_add(struct barge_api_page *pg, const char *key, json_t *item);
void barge_api_page_finish(struct barge_api_page *pg, json_t *out, const char *field,
                           const char *token_field);
void barge_api_page_free(struct barge_api_page *pg);
#define _cleanup_page_ __attribute__((cleanup(barge_api_page_free)))

#endif
