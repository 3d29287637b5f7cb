/* The one table that turns an error category into an AWS wire error: the
 * __type and the HTTP status. A handler that knows the exact AWS type (say
 * ClusterNotFoundException) sets it on the error; otherwise the category and the
 * service decide. */
#include <string.h>

#include "api/api.h"
#include "common/json.h"

struct errmap {
    enum barge_errcode code;
    const char *type; /* NULL: take it from the service */
    int status;
};

static const struct errmap table[] = {
    {BARGE_ERR_INTERNAL, NULL, 500},
    {BARGE_ERR_IO, NULL, 500},
    {BARGE_ERR_INVALID, NULL, 400},
    {BARGE_ERR_SERIALIZATION, "SerializationException", 400},
    {BARGE_ERR_CLIENT, NULL, 400},
    {BARGE_ERR_NOT_FOUND, NULL, 400},
    {BARGE_ERR_EXISTS, "ResourceAlreadyExistsException", 400},
    {BARGE_ERR_CONFLICT, "ResourceInUseException", 400},
    {BARGE_ERR_LIMIT, "LimitExceededException", 400},
    {BARGE_ERR_UNKNOWN_OP, "UnknownOperationException", 400},
    {BARGE_ERR_AUTH_MISSING, "MissingAuthenticationTokenException", 403},
    {BARGE_ERR_AUTH_INCOMPLETE, "IncompleteSignatureException", 400},
    {BARGE_ERR_AUTH_UNKNOWN_KEY, "UnrecognizedClientException", 400},
    {BARGE_ERR_AUTH_SIGNATURE, "InvalidSignatureException", 400},
    {BARGE_ERR_AUTH_EXPIRED, "ExpiredTokenException", 403},
    {BARGE_ERR_ACCESS_DENIED, "AccessDeniedException", 400},
    {BARGE_ERR_UNSUPPORTED, NULL, 400},
};

static const char *service_type(const struct barge_api_service *svc, enum barge_errcode code)
{
    if (!svc)
        return code == BARGE_ERR_INTERNAL || code == BARGE_ERR_IO ? "InternalFailure"
                                                                  : "ValidationException";
    switch (code) {
    case BARGE_ERR_INTERNAL:
    case BARGE_ERR_IO:
        return svc->server_type;
    case BARGE_ERR_INVALID:
        return svc->invalid_type;
    case BARGE_ERR_NOT_FOUND:
        return svc->not_found_type;
    default:
        return svc->client_type;
    }
}

void barge_api_error_wire(const struct barge_api_service *svc, const struct barge_error *err,
                          const char **type, int *status, const char **message)
{
    const struct errmap *m = &table[0];
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(table); i++) {
        if (table[i].code == err->code) {
            m = &table[i];
            break;
        }
    }
    *type = err->type ? err->type : m->type ? m->type : service_type(svc, err->code);
    *status = m->status;
    /* AWS's query-protocol services (IAM, STS, ELB) and S3 refuse with
     * AccessDenied and 403; JSON services with AccessDeniedException and 400. */
    if (err->code == BARGE_ERR_ACCESS_DENIED && strcmp(*type, "AccessDenied") == 0)
        *status = 403;
    /* A service's own fault type is always a 500; anything else a handler names is 400. */
    if (err->type && svc && strcmp(err->type, svc->server_type) != 0 && *status == 500)
        *status = 400;
    /* Internal details stay in the log, not on the wire. */
    *message = *status == 500 ? "An internal error occurred; see the barged log for the "
                                "request id."
                              : err->message;
}

void barge_api_error_response(const struct barge_api_service *svc, const struct barge_error *err,
                              struct barge_http_resp *resp)
{
    const char *type, *msg;
    int status;
    barge_api_error_wire(svc, err, &type, &status, &msg);
    json_t *body = json_object();
    json_object_set_new(body, "__type", json_string(type));
    json_object_set_new(body, svc ? svc->message_key : "message", json_string(msg));
    char *text = barge_json_dump(body);
    json_decref(body);
    if (svc && svc->query_compatible) {
        char *qe = barge_xasprintf("%s;%s", type, status >= 500 ? "Receiver" : "Sender");
        barge_http_resp_header(resp, "x-amzn-query-error", qe);
        free(qe);
    }
    barge_http_resp_set(resp, status, "application/x-amz-json-1.1", text, strlen(text));
}
