/* An AWS API client for programs that call AWS (or barged) the way the aws
 * CLI does: the profile, region, credentials and endpoint are resolved from
 * flags, environment variables and the shared credentials/config files with
 * the aws CLI's precedence; requests are AWS JSON 1.1 POSTs (or any signed
 * HTTP request, for REST APIs such as S3) signed with SigV4 over libcurl.
 * Nothing in a request is barge-specific, so the same client works against
 * real AWS. Secrets are never logged or put into error messages. */
#ifndef BARGE_COMMON_AWSAPI_H
#define BARGE_COMMON_AWSAPI_H

#include <jansson.h>

#include "common/error.h"
#include "common/httpc.h"
#include "common/sigv4.h"

/* What the caller was told on its command line; every member may be NULL. */
struct barge_aws_opts {
    const char *profile;      /* --profile: beats AWS_PROFILE and env credentials */
    const char *region;       /* --region: beats AWS_REGION and the profile */
    const char *endpoint_url; /* --endpoint-url: used for every service */
    /* The profile used when none is asked for (no --profile, no AWS_PROFILE)
     * and one of that name exists in the shared files, e.g. "barge". */
    const char *preferred_profile;
};

/* The resolved configuration. Every string is owned by the struct. */
struct barge_aws_config {
    char *profile; /* the profile in use; NULL when none was asked for and none exists */
    char *region;  /* NULL when nothing names one */
    char *endpoint_url;
    char *access_key_id; /* NULL when no credentials were found */
    char *secret_access_key;
    char *session_token;
    char *credentials_source; /* "environment", "shared credentials file", "config file" */
    json_t *services;         /* per-service endpoint_url from the profile's services section */
};

/* Resolves the configuration. Order, as in the aws CLI:
 *   profile:     opts->profile, AWS_PROFILE, AWS_DEFAULT_PROFILE,
 *                opts->preferred_profile when it exists, "default";
 *   credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN
 *                (unless --profile was given), then the profile in
 *                AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then in
 *                AWS_CONFIG_FILE (~/.aws/config);
 *   region:      opts->region, AWS_REGION, AWS_DEFAULT_REGION, the profile;
 *   endpoint:    see barge_aws_endpoint().
 * A profile asked for by name that exists in neither file is an error
 * (BARGE_ERR_NOT_FOUND); missing credentials are not (they fail the first
 * call), so commands that make no call work without them. The caller frees
 * *out with barge_aws_config_free(). */
int barge_aws_config_load(const struct barge_aws_opts *opts, struct barge_aws_config **out,
                          struct barge_error **err);
void barge_aws_config_free(struct barge_aws_config *cfg);

/* The endpoint URL (without a trailing slash) for a service by its botocore
 * file name ("ecs", "logs", "ssm", "secretsmanager", "ecr", "s3",
 * "application-autoscaling", "sts"): --endpoint-url, AWS_ENDPOINT_URL_<SERVICE>
 * (e.g. AWS_ENDPOINT_URL_ECS, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS), AWS_ENDPOINT_URL,
 * the profile's services section, the profile's endpoint_url, else AWS's
 * public endpoint for the region. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true
 * skips the environment and the files. Returns a newly allocated string, or
 * NULL with *err when there is no region to build the public endpoint from. */
char *barge_aws_endpoint(const struct barge_aws_config *cfg, const char *service,
                         struct barge_error **err);

struct barge_aws_client;

/* A client for one service. cfg must outlive the client. Fails when the
 * service is unknown or no endpoint can be found. Not thread-safe: one client
 * per thread. Free with barge_aws_client_free(). */
struct barge_aws_client *barge_aws_client_new(const struct barge_aws_config *cfg,
                                              const char *service, struct barge_error **err);
void barge_aws_client_free(struct barge_aws_client *c);
const char *barge_aws_client_region(const struct barge_aws_client *c);
const char *barge_aws_client_endpoint(const struct barge_aws_client *c);

/* Calls a JSON 1.1 operation with input (borrowed; NULL sends {}). On success
 * *output receives the parsed answer (a new reference the caller releases).
 * Throttling, 5xx answers and connection failures are retried a few times
 * with back-off. On an AWS error, (*err)->type is the AWS error type
 * ("ServiceNotFoundException"), the code is derived from it (NOT_FOUND for
 * *NotFound*, ACCESS_DENIED, INVALID for validation errors, CLIENT otherwise)
 * and the message reads "<Operation>: <Type>: <message>". */
int barge_aws_call(struct barge_aws_client *c, const char *operation, const json_t *input,
                   json_t **output, struct barge_error **err);

/* The answer of a raw request. body is NUL-terminated; all owned. */
struct barge_aws_response {
    long status;
    char *body;
    size_t len;
};
void barge_aws_response_release(struct barge_aws_response *r);

/* A signed request of any shape to the service's endpoint (REST APIs: S3).
 * raw_path is percent-encoded as on the wire; raw_query may be NULL.
 * headers (optional) are added and signed. Any HTTP status is a success;
 * -1 only when no answer came. */
int barge_aws_request(struct barge_aws_client *c, const char *method, const char *raw_path,
                      const char *raw_query, const struct barge_kv *headers, size_t n_headers,
                      const void *body, size_t body_len, struct barge_aws_response *out,
                      struct barge_error **err);

/* Who signs a request, for barge_aws_perform. */
struct barge_aws_signer {
    const char *region;
    const char *service; /* the signing name: "ecs", "ssm", "s3", ... */
    const struct barge_sigv4_credentials *creds;
    bool s3; /* S3's rules: unsigned-payload hash header, no double encoding */
};

/* Signs rq with SigV4 (its URL's host, path and query, its headers and body;
 * the path and query must be percent-encoded as on the wire) and performs it
 * with barge_httpc_perform, whose contract it shares. */
int barge_aws_perform(CURL *curl, const struct barge_httpc_request *rq,
                      const struct barge_aws_signer *s, struct barge_httpc_response *out,
                      struct barge_error **err);

/* Percent-encodes s the way SigV4 wants URI components (RFC 3986 unreserved
 * characters kept); with keep_slash, '/' is kept too. The caller frees. */
char *barge_aws_uri_encode(const char *s, bool keep_slash);

#endif
