/* SigV4 against botocore: sigv4_vectors.h holds requests botocore signed at a
 * fixed time (tests/unit/gen_sigv4_vectors.py). barge must produce the same
 * Authorization header for them, accept every one of them, and refuse each kind
 * of tampering with the error code and text AWS would give. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <openssl/hmac.h>
#include <string.h>

#include "common/sigv4.h"
#include "sigv4_vectors.h"

#define MSG_MISMATCH                                                                             \
    "The request signature we calculated does not match the signature you provided. Check your " \
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
#define MSG_BAD_TOKEN "The security token included in the request is invalid."

#define MAX_SKEW 900

/* ---- fixtures ------------------------------------------------------------ */

struct key {
    const char *akid;
    const char *secret;
    const char *token;
};

/* The keys the botocore vectors were signed with, as barged would know them. */
static struct key known_keys[3];

static int lookup_keys(const char *akid, void *ud, struct barge_sigv4_credentials *out,
                       struct barge_error **err)
{
    for (const struct key *k = ud; k->akid; k++) {
        if (strcmp(k->akid, akid) != 0)
            continue;
        out->access_key_id = strdup(k->akid);
        out->secret_access_key = strdup(k->secret);
        out->session_token = k->token ? strdup(k->token) : NULL;
        return 1;
    }
    return 0;
}

static int lookup_fails(const char *akid, void *ud, struct barge_sigv4_credentials *out,
                        struct barge_error **err)
{
    return barge_error_set(err, BARGE_ERR_IO, "key store unavailable");
}

static const struct sigv4_vector *vector(const char *name)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(sigv4_vectors); i++)
        if (strcmp(sigv4_vectors[i].name, name) == 0)
            return &sigv4_vectors[i];
    fail_msg("no vector '%s'", name);
    return NULL;
}

/* A mutable copy of a request, so that tests can tamper with it. */
struct req {
    struct barge_kv headers[32];
    char values[32][512];
    char query[2048];
    char path[512];
    struct barge_sigv4_request r;
};

static void req_from_vector(struct req *q, const struct sigv4_vector *v)
{
    memset(q, 0, sizeof(*q));
    assert_true(v->n_headers_wire <= BARGE_ARRAY_SIZE(q->headers));
    for (size_t i = 0; i < v->n_headers_wire; i++) {
        snprintf(q->values[i], sizeof(q->values[i]), "%s", v->headers_wire[i].value);
        q->headers[i].name = v->headers_wire[i].name;
        q->headers[i].value = q->values[i];
    }
    snprintf(q->query, sizeof(q->query), "%s", v->query_wire);
    snprintf(q->path, sizeof(q->path), "%s", v->raw_path);
    q->r = (struct barge_sigv4_request){
        .method = v->method,
        .raw_path = q->path,
        .raw_query = q->query,
        .headers = q->headers,
        .n_headers = v->n_headers_wire,
        .body = v->body,
        .body_len = v->body_len,
        .s3 = v->s3,
    };
}

/* Replaces the first header called name (any case), or appends it; a NULL
 * value removes it. */
static void req_set(struct req *q, const char *name, const char *value)
{
    size_t n = q->r.n_headers;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(q->headers[i].name, name) != 0)
            continue;
        if (!value) {
            memmove(&q->headers[i], &q->headers[i + 1], (n - i - 1) * sizeof(q->headers[0]));
            memmove(q->values[i], q->values[i + 1], (n - i - 1) * sizeof(q->values[0]));
            for (size_t j = i; j < n - 1; j++)
                q->headers[j].value = q->values[j];
            q->r.n_headers--;
            return;
        }
        snprintf(q->values[i], sizeof(q->values[i]), "%s", value);
        return;
    }
    if (!value)
        return;
    assert_true(n < BARGE_ARRAY_SIZE(q->headers));
    snprintf(q->values[n], sizeof(q->values[n]), "%s", value);
    q->headers[n].name = name;
    q->headers[n].value = q->values[n];
    q->r.n_headers++;
}

static const char *req_get(const struct req *q, const char *name)
{
    for (size_t i = 0; i < q->r.n_headers; i++)
        if (strcasecmp(q->headers[i].name, name) == 0)
            return q->headers[i].value;
    return NULL;
}

/* Replaces the first occurrence of from by to in s (of size cap). */
static void replace(char *s, size_t cap, const char *from, const char *to)
{
    char *p = strstr(s, from);
    assert_non_null(p);
    char tail[2048];
    snprintf(tail, sizeof(tail), "%s", p + strlen(from));
    snprintf(p, cap - (size_t)(p - s), "%s%s", to, tail);
}

static void expect_ok(const struct req *q, const char *region, time_t now, const struct key *keys,
                      struct barge_sigv4_identity *who)
{
    struct barge_error *err = NULL;
    int rc = barge_sigv4_verify(&q->r, region, now, MAX_SKEW, lookup_keys, (void *)keys, who, &err);
    if (rc != 0)
        fail_msg("verify failed: %s (%s)", err->message, barge_errcode_name(err->code));
    assert_null(err);
}

/* Verifies q expecting the error code and, when msg is not NULL, exactly that
 * message; no message may ever quote a secret. */
static void expect_error(const struct req *q, const char *region, time_t now,
                         const struct key *keys, enum barge_errcode code, const char *msg)
{
    struct barge_error *err = NULL;
    struct barge_sigv4_identity who;
    int rc =
        barge_sigv4_verify(&q->r, region, now, MAX_SKEW, lookup_keys, (void *)keys, &who, &err);
    assert_int_equal(rc, -1);
    assert_non_null(err);
    if (err->code != code)
        fail_msg("expected code '%s', got '%s': %s", barge_errcode_name(code),
                 barge_errcode_name(err->code), err->message);
    if (msg)
        assert_string_equal(err->message, msg);
    for (const struct key *k = known_keys; k->akid; k++) {
        assert_null(strstr(err->message, k->secret));
        if (k->token)
            assert_null(strstr(err->message, k->token));
    }
    barge_error_free(err);
}

static const char *kv_get(const struct barge_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].name, name) == 0)
            return kv[i].value;
    return NULL;
}

/* Signs q with barge's signer and appends the headers it returns. */
static void sign_into(struct req *q, const char *region, const char *service, const char *akid,
                      const char *secret, const char *token, time_t now)
{
    struct barge_sigv4_credentials creds = {akid, secret, token};
    struct barge_kv *out = NULL;
    size_t n = 0;
    struct barge_error *err = NULL;
    int rc = barge_sigv4_sign(&q->r, region, service, &creds, now, &out, &n, &err);
    if (rc != 0)
        fail_msg("sign failed: %s", err->message);
    for (size_t i = 0; i < n; i++) {
        /* The names must outlive out: they are string literals here. */
        const char *name = strcmp(out[i].name, "Authorization") == 0 ? "Authorization"
                           : strcmp(out[i].name, "X-Amz-Date") == 0  ? "X-Amz-Date"
                           : strcmp(out[i].name, "X-Amz-Security-Token") == 0
                               ? "X-Amz-Security-Token"
                               : "X-Amz-Content-SHA256";
        req_set(q, name, out[i].value);
    }
    barge_sigv4_headers_free(out, n);
}

/* A request to sign from scratch: one header (Host), no body. */
static void req_blank(struct req *q, const char *method, const char *path, const char *query,
                      bool s3)
{
    memset(q, 0, sizeof(*q));
    snprintf(q->path, sizeof(q->path), "%s", path);
    snprintf(q->query, sizeof(q->query), "%s", query ? query : "");
    q->r = (struct barge_sigv4_request){
        .method = method,
        .raw_path = q->path,
        .raw_query = q->query,
        .headers = q->headers,
        .n_headers = 0,
        .body = "",
        .body_len = 0,
        .s3 = s3,
    };
    req_set(q, "Host", "barge.internal:8443");
}

static int setup_keys(void **state)
{
    const struct sigv4_vector *plain = vector("json11_post");
    const struct sigv4_vector *tmp = vector("json11_session_token");
    known_keys[0] = (struct key){plain->akid, plain->secret, NULL};
    known_keys[1] = (struct key){tmp->akid, tmp->secret, tmp->token};
    known_keys[2] = (struct key){NULL, NULL, NULL};
    return 0;
}

/* ---- signing like botocore ----------------------------------------------- */

static void test_sha256_hex(void **state)
{
    char out[65];
    barge_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    barge_sha256_hex(NULL, 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sign_matches_botocore(void **state)
{
    size_t compared = 0;
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(sigv4_vectors); i++) {
        const struct sigv4_vector *v = &sigv4_vectors[i];
        if (!v->sign_compare)
            continue;
        struct barge_sigv4_request r = {
            .method = v->method,
            .raw_path = v->raw_path,
            .raw_query = v->query_before,
            .headers = v->headers_before,
            .n_headers = v->n_headers_before,
            .body = v->body,
            .body_len = v->body_len,
            .s3 = v->s3,
        };
        struct barge_sigv4_credentials creds = {v->akid, v->secret, v->token};
        struct barge_kv *out = NULL;
        size_t n = 0;
        struct barge_error *err = NULL;
        assert_int_equal(
            barge_sigv4_sign(&r, v->region, v->service, &creds, SIGV4_VECTOR_TIME, &out, &n, &err),
            0);
        const char *auth = kv_get(out, n, "Authorization");
        if (!auth || strcmp(auth, v->authorization) != 0)
            fail_msg("%s: Authorization\n  barge:    %s\n  botocore: %s", v->name, auth,
                     v->authorization);
        assert_string_equal(kv_get(out, n, "X-Amz-Date"), v->x_amz_date);
        if (v->token)
            assert_string_equal(kv_get(out, n, "X-Amz-Security-Token"), v->token);
        else
            assert_null(kv_get(out, n, "X-Amz-Security-Token"));
        /* S3: the hash is announced unless the caller already did. */
        bool had_sha = kv_get(v->headers_before, v->n_headers_before, "X-Amz-Content-SHA256");
        if (v->s3 && !had_sha)
            assert_string_equal(kv_get(out, n, "X-Amz-Content-SHA256"), v->content_sha);
        else
            assert_null(kv_get(out, n, "X-Amz-Content-SHA256"));
        barge_sigv4_headers_free(out, n);
        compared++;
    }
    assert_true(compared >= 8);
}

static void test_sign_requires_host(void **state)
{
    struct barge_sigv4_request r = {.method = "GET", .raw_path = "/"};
    struct barge_sigv4_credentials creds = {"AKID", "secret", NULL};
    struct barge_kv *out = NULL;
    size_t n = 0;
    struct barge_error *err = NULL;
    assert_int_equal(barge_sigv4_sign(&r, "us-east-1", "ecs", &creds, 0, &out, &n, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    assert_null(out);
    barge_error_free(err);
}

/* Headers no client signs are left out; repeated ones are joined with ','. */
static void test_sign_header_rules(void **state)
{
    struct req q;
    req_blank(&q, "post", "/", NULL, false);
    req_set(&q, "User-Agent", "barge/1");
    req_set(&q, "Connection", "keep-alive");
    req_set(&q, "Proxy-Authorization", "Basic Zm9v");
    req_set(&q, "Transfer-Encoding", "chunked");
    req_set(&q, "X-Amzn-Trace-Id", "Root=1");
    req_set(&q, "Content-Type", "application/x-amz-json-1.1");
    sign_into(&q, "us-east-1", "ecs", "AKIDEXAMPLEBARGE0001", known_keys[0].secret, NULL,
              SIGV4_VECTOR_TIME);
    const char *auth = req_get(&q, "Authorization");
    assert_non_null(strstr(auth, "SignedHeaders=content-type;host;x-amz-date,"));
    expect_ok(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, NULL);
    /* The blacklisted headers may change on the way without harm. */
    req_set(&q, "Connection", "close");
    req_set(&q, "User-Agent", NULL);
    expect_ok(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, NULL);
}

/* ---- verifying what botocore sends --------------------------------------- */

static void test_verify_botocore(void **state)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(sigv4_vectors); i++) {
        const struct sigv4_vector *v = &sigv4_vectors[i];
        struct req q;
        req_from_vector(&q, v);
        struct barge_sigv4_identity who;
        struct barge_error *err = NULL;
        int rc = barge_sigv4_verify(&q.r, v->region, SIGV4_VECTOR_TIME + 30, MAX_SKEW, lookup_keys,
                                    known_keys, &who, &err);
        if (rc != 0)
            fail_msg("%s: %s", v->name, err->message);
        assert_string_equal(who.access_key_id, v->akid);
        assert_string_equal(who.region, v->region);
        assert_string_equal(who.service, v->service);
    }
}

/* What barge signs, barge accepts, in every flavour. */
static void test_sign_then_verify(void **state)
{
    const struct key *k = &known_keys[0], *t = &known_keys[1];
    struct req q;
    struct barge_sigv4_identity who;

    req_blank(&q, "POST", "/", NULL, false);
    req_set(&q, "Content-Type", "application/x-amz-json-1.1");
    q.r.body = "{\"cluster\":\"default\"}";
    q.r.body_len = strlen(q.r.body);
    sign_into(&q, "eu-central-1", "ecs", k->akid, k->secret, NULL, SIGV4_VECTOR_TIME);
    expect_ok(&q, "eu-central-1", SIGV4_VECTOR_TIME, known_keys, &who);
    assert_string_equal(who.service, "ecs");

    req_blank(&q, "GET", "/a b/../c%2Fd/", "z=1&a=%7e&a=%41&k", false);
    sign_into(&q, "us-east-1", "logs", t->akid, t->secret, t->token, SIGV4_VECTOR_TIME);
    expect_ok(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, &who);
    assert_string_equal(who.access_key_id, t->akid);

    req_blank(&q, "PUT", "/bucket/a%20b/./c", "partNumber=1&uploadId=x%2By", true);
    q.r.body = "part\0data";
    q.r.body_len = 9;
    sign_into(&q, "us-east-1", "s3", k->akid, k->secret, NULL, SIGV4_VECTOR_TIME);
    assert_non_null(req_get(&q, "X-Amz-Content-SHA256"));
    expect_ok(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, &who);
    assert_string_equal(who.service, "s3");
}

/* Repeated headers count as one, values joined with ',' in order. */
static void test_verify_repeated_header(void **state)
{
    const struct key *k = &known_keys[0];
    struct req q;
    req_blank(&q, "GET", "/", NULL, false);
    req_set(&q, "X-Dup", "one,two three");
    sign_into(&q, "us-east-1", "ecs", k->akid, k->secret, NULL, SIGV4_VECTOR_TIME);
    expect_ok(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, NULL);

    /* The same header sent twice, with untrimmed values. */
    req_set(&q, "X-Dup", " one ");
    q.headers[q.r.n_headers].name = "x-dup";
    snprintf(q.values[q.r.n_headers], sizeof(q.values[0]), "two   three");
    q.headers[q.r.n_headers].value = q.values[q.r.n_headers];
    q.r.n_headers++;
    expect_ok(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, NULL);

    /* In the other order it is another value. */
    req_set(&q, "X-Dup", "two three");
    snprintf(q.values[q.r.n_headers - 1], sizeof(q.values[0]), "one");
    expect_error(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);
}

/* ---- refusing ------------------------------------------------------------ */

static void test_reject_tampering(void **state)
{
    const struct sigv4_vector *v = vector("json11_post");
    struct req q;

    req_from_vector(&q, v);
    q.r.body = "{\"maxResults\": 11}";
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    req_from_vector(&q, v);
    req_set(&q, "X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    req_from_vector(&q, v);
    q.r.method = "PUT";
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    req_from_vector(&q, v);
    snprintf(q.path, sizeof(q.path), "/other");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    req_from_vector(&q, v);
    snprintf(q.query, sizeof(q.query), "x=1");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    /* A signed header dropped on the way. */
    req_from_vector(&q, v);
    req_set(&q, "Content-Type", NULL);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    /* Truncated and upper-cased signatures are not the signature. */
    req_from_vector(&q, v);
    char auth[512];
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    auth[strlen(auth) - 1] = '\0';
    req_set(&q, "Authorization", auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);
    req_from_vector(&q, v);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "Signature=e16004afc6", "Signature=E16004AFC6");
    req_set(&q, "Authorization", auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    /* Headers outside SignedHeaders are free to change, but for x-amz-*. */
    req_from_vector(&q, v);
    req_set(&q, "User-Agent", "something else");
    req_set(&q, "X-Forwarded-For", "10.0.0.1");
    req_set(&q, "X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793");
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME, known_keys, NULL);
}

/* Every x-amz-* header present must be in SignedHeaders, whatever its case;
 * the error names each one that is not. */
static void test_reject_unsigned_amz_headers(void **state)
{
    const struct sigv4_vector *v = vector("json11_post");
    struct req q;

    req_from_vector(&q, v);
    req_set(&q, "X-Amz-Meta-Owner", "mallory");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_ACCESS_DENIED,
                 "There were headers present in the request which were not signed: "
                 "'x-amz-meta-owner'");

    req_from_vector(&q, v);
    req_set(&q, "x-amz-security-token", "unsigned");
    req_set(&q, "X-AMZ-Content-SHA256", "UNSIGNED-PAYLOAD");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_ACCESS_DENIED,
                 "There were headers present in the request which were not signed: "
                 "'x-amz-security-token', 'x-amz-content-sha256'");

    /* x-amz-date outside the signature: the time the server checked is not
     * the one signed. */
    struct req s;
    req_blank(&s, "POST", "/", "", false);
    sign_into(&s, "us-east-1", "ecs", known_keys[0].akid, known_keys[0].secret, NULL,
              SIGV4_VECTOR_TIME);
    expect_ok(&s, "us-east-1", SIGV4_VECTOR_TIME, known_keys, NULL);
    char auth[512];
    snprintf(auth, sizeof(auth), "%s", req_get(&s, "Authorization"));
    replace(auth, sizeof(auth), ";x-amz-date", "");
    req_set(&s, "Authorization", auth);
    expect_error(&s, "us-east-1", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_ACCESS_DENIED,
                 "There were headers present in the request which were not signed: "
                 "'x-amz-date'");
}

static void test_reject_wrong_secret_and_unknown_key(void **state)
{
    const struct sigv4_vector *v = vector("json11_post");
    struct req q;
    req_from_vector(&q, v);

    struct key wrong[] = {{v->akid, "not-the-secret", NULL}, {NULL, NULL, NULL}};
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, wrong, BARGE_ERR_AUTH_SIGNATURE, MSG_MISMATCH);

    struct key other[] = {{"AKIDSOMEONEELSE00001", v->secret, NULL}, {NULL, NULL, NULL}};
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, other, BARGE_ERR_AUTH_UNKNOWN_KEY,
                 MSG_BAD_TOKEN);

    struct barge_error *err = NULL;
    struct barge_sigv4_identity who;
    assert_int_equal(barge_sigv4_verify(&q.r, v->region, SIGV4_VECTOR_TIME, MAX_SKEW, lookup_fails,
                                        NULL, &who, &err),
                     -1);
    assert_int_equal(err->code, BARGE_ERR_IO);
    barge_error_free(err);
}

static void test_reject_skew(void **state)
{
    const struct sigv4_vector *v = vector("json11_post");
    struct req q;
    req_from_vector(&q, v);

    expect_ok(&q, v->region, SIGV4_VECTOR_TIME + MAX_SKEW, known_keys, NULL);
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME - MAX_SKEW, known_keys, NULL);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME + MAX_SKEW + 1, known_keys,
                 BARGE_ERR_AUTH_SIGNATURE,
                 "Signature expired: 20240517T123456Z is now earlier than 20240517T123457Z "
                 "(20240517T124957Z - 15 min.)");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME - MAX_SKEW - 1, known_keys,
                 BARGE_ERR_AUTH_SIGNATURE,
                 "Signature not yet current: 20240517T123456Z is still later than "
                 "20240517T123455Z (20240517T121955Z + 15 min.)");

    /* A Date header is checked the same way. */
    const struct sigv4_vector *d = vector("date_header");
    req_from_vector(&q, d);
    expect_ok(&q, d->region, SIGV4_VECTOR_TIME, known_keys, NULL);
    expect_error(&q, d->region, SIGV4_VECTOR_TIME + 3600, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 "Signature expired: 20240517T123456Z is now earlier than 20240517T131956Z "
                 "(20240517T133456Z - 15 min.)");
}

static void test_reject_scope(void **state)
{
    const struct sigv4_vector *v = vector("json11_post");
    struct req q;
    char auth[512];

    req_from_vector(&q, v);
    expect_error(&q, "us-west-2", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 "Credential should be scoped to a valid region, not 'us-east-1'.");

    req_from_vector(&q, v);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "/20240517/", "/20240516/");
    req_set(&q, "Authorization", auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                 "from HTTP: '20240516' != '20240517', from '20240517T123456Z'.");

    req_from_vector(&q, v);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "/aws4_request", "/aws5_request");
    req_set(&q, "Authorization", auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 "Credential should be scoped with a valid terminator: 'aws4_request', not "
                 "'aws5_request'.");

    /* Both wrong: AWS lists every problem. */
    expect_error(&q, "us-west-2", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 "Credential should be scoped to a valid region, not 'us-east-1'. Credential "
                 "should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.");

    /* The service is the caller's to check: a key scoped to another service
     * passes, and *who says which. */
    const struct key *k = &known_keys[0];
    struct barge_sigv4_identity who;
    req_blank(&q, "POST", "/", NULL, false);
    sign_into(&q, "us-east-1", "ssm", k->akid, k->secret, NULL, SIGV4_VECTOR_TIME);
    expect_ok(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, &who);
    assert_string_equal(who.service, "ssm");
    assert_string_equal(who.region, "us-east-1");
}

static void test_reject_missing_and_malformed(void **state)
{
    const struct sigv4_vector *v = vector("json11_post");
    struct req q;
    char auth[512];

    req_from_vector(&q, v);
    req_set(&q, "Authorization", NULL);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_MISSING,
                 "Missing Authentication Token");

    req_set(&q, "Authorization", "AWS AKIDEXAMPLEBARGE0001:c2lnbmF0dXJl");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_MISSING,
                 "Missing Authentication Token");

    req_set(&q, "Authorization", "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=ab");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE,
                 "Authorization header requires 'Credential' parameter. "
                 "Authorization=AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=ab");

    req_set(&q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLEBARGE0001/20240517/"
            "us-east-1/ecs/aws4_request");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE,
                 "Authorization header requires 'Signature' parameter. Authorization header "
                 "requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 "
                 "Credential=AKIDEXAMPLEBARGE0001/20240517/us-east-1/ecs/aws4_request");

    req_set(&q, "Authorization", "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=ab");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE,
                 "'Credential' not a valid key=value pair (missing equal-sign) in Authorization "
                 "header: 'AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=ab'.");

    req_from_vector(&q, v);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "/us-east-1/ecs/aws4_request", "/us-east-1/ecs");
    req_set(&q, "Authorization", auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE,
                 "Credential must have exactly 5 slash-delimited elements, e.g. "
                 "keyid/date/region/service/term, got "
                 "'AKIDEXAMPLEBARGE0001/20240517/us-east-1/ecs'");

    req_from_vector(&q, v);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "/aws4_request", "/aws4_request/extra");
    req_set(&q, "Authorization", auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE, NULL);

    /* Trailing slashes do not count as elements. */
    req_from_vector(&q, v);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "/aws4_request", "/aws4_request//");
    req_set(&q, "Authorization", auth);
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME, known_keys, NULL);

    req_from_vector(&q, v);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    req_set(&q, "Authorization", auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE,
                 "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for "
                 "now).");

    req_from_vector(&q, v);
    req_set(&q, "X-Amz-Date", "2024-05-17T12:34:56Z");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE,
                 "Date must be in ISO-8601 'basic format'. Got '2024-05-17T12:34:56Z'. See "
                 "http://en.wikipedia.org/wiki/ISO_8601");
    req_set(&q, "X-Amz-Date", "20240230T123456Z");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE, NULL);

    req_from_vector(&q, v);
    req_set(&q, "X-Amz-Date", NULL);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    char msg[1024];
    snprintf(msg, sizeof(msg),
             "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
             "header. Authorization=%s",
             auth);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE, msg);

    const struct sigv4_vector *d = vector("date_header");
    req_from_vector(&q, d);
    req_set(&q, "Date", "17/05/2024 12:34:56");
    expect_error(&q, d->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE, NULL);

    /* Host must be signed. */
    const struct key *k = &known_keys[0];
    req_blank(&q, "GET", "/", NULL, false);
    sign_into(&q, "us-east-1", "ecs", k->akid, k->secret, NULL, SIGV4_VECTOR_TIME);
    snprintf(auth, sizeof(auth), "%s", req_get(&q, "Authorization"));
    replace(auth, sizeof(auth), "SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    req_set(&q, "Authorization", auth);
    expect_error(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 "'Host' must be a 'SignedHeader' in the AWS Authorization.");

    /* Header and query authentication at once. */
    req_from_vector(&q, v);
    snprintf(q.query, sizeof(q.query), "X-Amz-Algorithm=AWS4-HMAC-SHA256");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE, NULL);
}

static void test_session_token(void **state)
{
    const struct sigv4_vector *v = vector("json11_session_token");
    const struct key *plain = &known_keys[0], *tmp = &known_keys[1];
    struct req q;

    /* Sent by botocore with the right token. */
    req_from_vector(&q, v);
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME, known_keys, NULL);

    /* Tampering with the token in flight breaks the signature first. */
    req_set(&q, "X-Amz-Security-Token", "forged");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE, NULL);

    /* Correctly signed, but with another token than the key's. */
    req_blank(&q, "POST", "/", NULL, false);
    sign_into(&q, "us-east-1", "ecs", tmp->akid, tmp->secret, "another-token", SIGV4_VECTOR_TIME);
    expect_error(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_UNKNOWN_KEY,
                 MSG_BAD_TOKEN);

    /* A temporary key without its token. */
    req_blank(&q, "POST", "/", NULL, false);
    sign_into(&q, "us-east-1", "ecs", tmp->akid, tmp->secret, NULL, SIGV4_VECTOR_TIME);
    expect_error(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_UNKNOWN_KEY,
                 MSG_BAD_TOKEN);

    /* A long-term key with a token it never had. */
    req_blank(&q, "POST", "/", NULL, false);
    sign_into(&q, "us-east-1", "ecs", plain->akid, plain->secret, tmp->token, SIGV4_VECTOR_TIME);
    expect_error(&q, "us-east-1", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_UNKNOWN_KEY,
                 MSG_BAD_TOKEN);
}

static void test_s3_payload(void **state)
{
    const struct sigv4_vector *v = vector("s3_put");
    struct req q;

    req_from_vector(&q, v);
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME, known_keys, NULL);

    /* The path is signed as sent: no normalisation for S3. */
    snprintf(q.path, sizeof(q.path), "/bucket/key%%20with%%20space/a/b%%2Bc/%%C3%%A9.txt");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    /* Another body than the announced hash. */
    req_from_vector(&q, v);
    q.r.body = "hello\0World\n";
    struct barge_error *err = NULL;
    struct barge_sigv4_identity who;
    assert_int_equal(barge_sigv4_verify(&q.r, v->region, SIGV4_VECTOR_TIME, MAX_SKEW, lookup_keys,
                                        known_keys, &who, &err),
                     -1);
    assert_int_equal(err->code, BARGE_ERR_AUTH_SIGNATURE);
    assert_string_equal(err->type, "XAmzContentSHA256Mismatch");
    barge_error_free(err);

    /* Another announced hash than the signed one. */
    req_from_vector(&q, v);
    char other[65];
    barge_sha256_hex("hello\0World\n", 12, other);
    req_set(&q, "X-Amz-Content-SHA256", other);
    q.r.body = "hello\0World\n";
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    /* UNSIGNED-PAYLOAD leaves the body out of the signature by design. */
    const struct sigv4_vector *u = vector("s3_put_unsigned");
    req_from_vector(&q, u);
    q.r.body = "something else";
    q.r.body_len = strlen(q.r.body);
    expect_ok(&q, u->region, SIGV4_VECTOR_TIME, known_keys, NULL);
}

static void test_presigned(void **state)
{
    const struct sigv4_vector *v = vector("presigned_s3_get");
    struct req q;
    struct barge_sigv4_identity who;

    req_from_vector(&q, v);
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME, known_keys, &who);
    assert_string_equal(who.service, "s3");
    /* Valid for X-Amz-Expires seconds, whatever the skew allowance. */
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME + 3600, known_keys, NULL);
    expect_error(&q, v->region, SIGV4_VECTOR_TIME + 3601, known_keys, BARGE_ERR_AUTH_EXPIRED,
                 "Request has expired");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME - MAX_SKEW - 1, known_keys,
                 BARGE_ERR_AUTH_SIGNATURE, NULL);
    expect_error(&q, "eu-west-1", SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 "Credential should be scoped to a valid region, not 'us-east-1'.");

    /* Another object with the same query. */
    snprintf(q.path, sizeof(q.path), "/bucket/other.txt");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    /* A longer life than signed. */
    req_from_vector(&q, v);
    replace(q.query, sizeof(q.query), "X-Amz-Expires=3600", "X-Amz-Expires=7200");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    req_from_vector(&q, v);
    replace(q.query, sizeof(q.query), "X-Amz-Expires=3600", "X-Amz-Expires=604801");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE, NULL);

    req_from_vector(&q, v);
    replace(q.query, sizeof(q.query), "&X-Amz-Expires=3600", "");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_INCOMPLETE, NULL);

    req_from_vector(&q, v);
    replace(q.query, sizeof(q.query), "X-Amz-Signature=d", "X-Amz-Signature=e");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);

    /* Whoever uses the URL adds no x-amz-* header its signer never saw. */
    req_from_vector(&q, v);
    req_set(&q, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_ACCESS_DENIED,
                 "There were headers present in the request which were not signed: "
                 "'x-amz-content-sha256'");
    req_from_vector(&q, v);
    req_set(&q, "x-amz-acl", "public-read");
    expect_error(&q, v->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_ACCESS_DENIED,
                 "There were headers present in the request which were not signed: "
                 "'x-amz-acl'");

    /* Basic auth in front of a presigned URL is not a second SigV4 scheme. */
    req_from_vector(&q, v);
    req_set(&q, "Authorization", "Basic YmFyZ2U6YmFyZ2U=");
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME, known_keys, NULL);

    /* Presigned: the body is not signed. */
    req_from_vector(&q, v);
    q.r.body = "ignored";
    q.r.body_len = 7;
    expect_ok(&q, v->region, SIGV4_VECTOR_TIME, known_keys, NULL);

    /* With a token and an operation parameter. */
    const struct sigv4_vector *t = vector("presigned_s3_token");
    req_from_vector(&q, t);
    expect_ok(&q, t->region, SIGV4_VECTOR_TIME + 600, known_keys, NULL);
    expect_error(&q, t->region, SIGV4_VECTOR_TIME + 601, known_keys, BARGE_ERR_AUTH_EXPIRED,
                 "Request has expired");
    replace(q.query, sizeof(q.query), "text%2Fplain", "text%2Fhtml");
    expect_error(&q, t->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);
    req_from_vector(&q, t);
    struct key notoken[] = {{t->akid, t->secret, NULL}, {NULL, NULL, NULL}};
    expect_error(&q, t->region, SIGV4_VECTOR_TIME, notoken, BARGE_ERR_AUTH_UNKNOWN_KEY,
                 MSG_BAD_TOKEN);

    /* A non-S3 presigned URL signs the (empty) payload's hash. */
    const struct sigv4_vector *s = vector("presigned_sts");
    req_from_vector(&q, s);
    expect_ok(&q, s->region, SIGV4_VECTOR_TIME, known_keys, &who);
    assert_string_equal(who.service, "sts");
    req_set(&q, "x-k8s-aws-id", "another-cluster");
    expect_error(&q, s->region, SIGV4_VECTOR_TIME, known_keys, BARGE_ERR_AUTH_SIGNATURE,
                 MSG_MISMATCH);
}

/* The signing key chain against OpenSSL's own HMAC, also for a secret longer
 * than SHA-256's block (HMAC hashes such a key first). */
static void test_signing_key_matches_openssl_hmac(void **state)
{
    const char *secrets[] = {
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "a-secret-longer-than-sixty-four-bytes-0123456789-0123456789-0123456789"};
    for (size_t i = 0; i < 2; i++) {
        char k0[128];
        snprintf(k0, sizeof(k0), "AWS4%s", secrets[i]);
        unsigned char want[32], got[32];
        unsigned int len = 0;
        HMAC(EVP_sha256(), k0, (int)strlen(k0), (const unsigned char *)"20150830", 8, want, &len);
        HMAC(EVP_sha256(), want, 32, (const unsigned char *)"us-east-1", 9, want, &len);
        HMAC(EVP_sha256(), want, 32, (const unsigned char *)"ecs", 3, want, &len);
        HMAC(EVP_sha256(), want, 32, (const unsigned char *)"aws4_request", 12, want, &len);
        barge_sigv4_signing_key(secrets[i], "20150830", "us-east-1", "ecs", got);
        assert_memory_equal(got, want, 32);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_signing_key_matches_openssl_hmac),
        cmocka_unit_test(test_sign_matches_botocore),
        cmocka_unit_test(test_sign_requires_host),
        cmocka_unit_test(test_sign_header_rules),
        cmocka_unit_test(test_verify_botocore),
        cmocka_unit_test(test_sign_then_verify),
        cmocka_unit_test(test_verify_repeated_header),
        cmocka_unit_test(test_reject_tampering),
        cmocka_unit_test(test_reject_unsigned_amz_headers),
        cmocka_unit_test(test_reject_wrong_secret_and_unknown_key),
        cmocka_unit_test(test_reject_skew),
        cmocka_unit_test(test_reject_scope),
        cmocka_unit_test(test_reject_missing_and_malformed),
        cmocka_unit_test(test_session_token),
        cmocka_unit_test(test_s3_payload),
        cmocka_unit_test(test_presigned),
    };
    return cmocka_run_group_tests(tests, setup_keys, NULL);
}
