/* AWS Signature Version 4: signing requests (the CLI, the agent) and verifying
 * them (barged), header form and presigned-query form. Pure computation: no I/O;
 * secrets are looked up through a callback and never logged or copied into
 * error messages. */
#ifndef BARGE_COMMON_SIGV4_H
#define BARGE_COMMON_SIGV4_H

#include <time.h>

#include "common/error.h"

struct barge_kv {
    const char *name;
    const char *value;
};

/* A request as received or about to be sent. */
struct barge_sigv4_request {
    const char *method;             /* "POST" */
    const char *raw_path;           /* as on the wire, percent-encoded: "/", "/bucket/a%20b" */
    const char *raw_query;          /* without '?', as on the wire; "" or NULL when none */
    const struct barge_kv *headers; /* every header of the request; names any case */
    size_t n_headers;
    const void *body;
    size_t body_len;
    bool s3; /* S3 rules: no path normalisation, payload hash from x-amz-content-sha256 */
};

struct barge_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL when the key has none */
};

/* Signs req for region/service at time now. Returns the headers to add, as a
 * newly allocated array of n_out entries whose names and values are newly
 * allocated (free with barge_sigv4_headers_free): X-Amz-Date, Authorization,
 * X-Amz-Security-Token when there is a token, and X-Amz-Content-SHA256 for S3.
 * req->headers must already contain Host (and every header to sign). */
int barge_sigv4_sign(const struct barge_sigv4_request *req, const char *region, const char *service,
                     const struct barge_sigv4_credentials *creds, time_t now, struct barge_kv **out,
                     size_t *n_out, struct barge_error **err);
void barge_sigv4_headers_free(struct barge_kv *headers, size_t n);

/* Looks up the secret of access_key_id. Returns 1 and fills *out (strings the
 * callee allocates and the caller frees with free()) when known, 0 when not,
 * -1 on error. */
typedef int (*barge_sigv4_lookup_fn)(const char *access_key_id, void *ud,
                                     struct barge_sigv4_credentials *out, struct barge_error **err);

struct barge_sigv4_identity {
    char access_key_id[129];
    char region[64];
    char service[64];
    /* The client's address, filled by the API layer (for aws:SourceIp). */
    char source_ip[64];
};

/* Verifies req (header form, or the X-Amz-* query form of presigned URLs)
 * against the key found through lookup. region is this endpoint's region
 * (NULL: any well-formed region, for services that serve every region);
 * max_skew_seconds the allowed clock difference (AWS: 900). On success fills
 * *who with the key and the credential scope's region and service (the caller
 * checks the service is the one it serves). Errors carry the codes
 * BARGE_ERR_AUTH_MISSING (not signed), BARGE_ERR_AUTH_INCOMPLETE (malformed),
 * BARGE_ERR_AUTH_UNKNOWN_KEY, BARGE_ERR_AUTH_SIGNATURE (mismatch, skew, scope),
 * BARGE_ERR_AUTH_EXPIRED (presigned URL past X-Amz-Expires), with AWS's
 * messages. */
int barge_sigv4_verify(const struct barge_sigv4_request *req, const char *region, time_t now,
                       int max_skew_seconds, barge_sigv4_lookup_fn lookup, void *ud,
                       struct barge_sigv4_identity *who, struct barge_error **err);

/* The signing key ("AWS4"+secret → date → region → service →
 * "aws4_request"), for checks beyond the request itself such as the chunk
 * signatures of S3's aws-chunked uploads. As good as the secret for a day:
 * the caller wipes it. */
void barge_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                             const char *service, unsigned char out[32]);

/* Hex SHA-256 of data; out must hold 65 bytes. */
void barge_sha256_hex(const void *data, size_t len, char out[65]);

#endif
