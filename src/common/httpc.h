/* The HTTP client every module uses for a request whose answer fits in
 * memory: one libcurl transfer with the headers, body, timeouts and size cap
 * the caller asks for, the answer collected in a buffer. AWS calls sign their
 * request first (barge_aws_sign, awsapi.h); the registry client, which streams
 * layers to files, keeps its own transfer loop (src/image/http.c). */
#ifndef BARGE_COMMON_HTTPC_H
#define BARGE_COMMON_HTTPC_H

#include <curl/curl.h>

#include "common/error.h"
#include "common/sigv4.h"

struct barge_httpc_request {
    const char *method; /* "GET", "POST", "HEAD", ... */
    const char *url;
    const struct barge_kv *headers; /* sent as given; curl adds Host */
    size_t n_headers;
    const void *body; /* NULL: none */
    size_t body_len;
    long timeout_s;         /* the whole transfer; 0: 60 */
    long connect_timeout_s; /* 0: 10 */
    size_t max_response;    /* bytes of body kept at most; past it the transfer fails; 0: no cap */
    /* The answer may hold a secret: what is dropped on failure is wiped. */
    bool sensitive;
    const char *keep_header; /* a response header whose value to keep ("WWW-Authenticate") */
    const char *peer;        /* for messages: "cannot reach <peer>: ..." ("'http://x'") */
    /* Asked about once a second, also while waiting for the answer: true
     * aborts the transfer (e.g. the process is stopping). NULL: never. */
    bool (*abort_if)(void);
};

struct barge_httpc_response {
    long status;
    char *body; /* NUL-terminated; "" when there was none */
    size_t len;
    char *header; /* the last value of keep_header, or NULL */
};

/* Performs rq on curl (reset first; NULL: a handle made for this request).
 * Any HTTP status is a success: 0 with *out filled, which the caller releases
 * with barge_httpc_response_release (or wipes, for a sensitive answer). -1
 * with err (BARGE_ERR_IO: "cannot reach <peer>: <curl's reason>", or that
 * the answer was over the cap) when no complete answer came; *out is then empty. */
int barge_httpc_perform(CURL *curl, const struct barge_httpc_request *rq,
                        struct barge_httpc_response *out, struct barge_error **err);
void barge_httpc_response_release(struct barge_httpc_response *r);

#endif
