/* The shared HTTP client (common/httpc.h) and SigV4-signed requests over it
 * (barge_aws_perform, common/awsapi.h), against a real HTTP server on
 * 127.0.0.1 that echoes what it received and verifies signatures with the
 * same verifier barged uses. */
#include <microhttpd.h>
#include <string.h>
#include <time.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "common/awsapi.h"
#include "common/httpc.h"

static struct MHD_Daemon *daemon_;
static int port;

struct conn {
    struct barge_buf body;
};

struct headers {
    struct barge_kv kv[32];
    size_t n;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    struct headers *h = cls;
    if (h->n < BARGE_ARRAY_SIZE(h->kv))
        h->kv[h->n++] = (struct barge_kv){key, value ? value : ""};
    return MHD_YES;
}

static int lookup(const char *access_key_id, void *ud, struct barge_sigv4_credentials *out,
                  struct barge_error **err)
{
    (void)ud;
    (void)err;
    if (strcmp(access_key_id, "AKIDHTTPC") != 0)
        return 0;
    out->access_key_id = barge_xstrdup(access_key_id);
    out->secret_access_key = barge_xstrdup("httpc-secret");
    out->session_token = NULL;
    return 1;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, char *text, const char *hname,
                             const char *hvalue)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **ctx)
{
    (void)cls;
    (void)version;
    struct conn *cn = *ctx;
    if (!cn) {
        *ctx = barge_xcalloc(1, sizeof(struct conn));
        return MHD_YES;
    }
    if (*upload_size) {
        barge_buf_addn(&cn->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/big") == 0) {
        char *text = barge_xmalloc(5001);
        memset(text, 'b', 5000);
        text[5000] = '\0';
        return reply(c, 200, text, NULL, NULL);
    }
    if (strcmp(url, "/challenge") == 0)
        return reply(c, 401, barge_xstrdup("{}"), "WWW-Authenticate",
                     "Bearer realm=\"http://127.0.0.1/token\",service=\"test\"");
    if (strncmp(url, "/signed", 7) == 0) {
        struct headers h = {0};
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect, &h);
        /* The query as sent: MHD hands over only the path. */
        const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "a");
        struct barge_sigv4_request sr = {.method = method,
                                         .raw_path = url,
                                         .raw_query = q ? "a=1%202" : "",
                                         .headers = h.kv,
                                         .n_headers = h.n,
                                         .body = cn->body.data,
                                         .body_len = cn->body.len};
        struct barge_sigv4_identity who;
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_sigv4_verify(&sr, "eu-west-1", time(NULL), 900, lookup, NULL, &who, &err) < 0)
            return reply(c, 403, barge_xasprintf("denied: %s", err->message), NULL, NULL);
        return reply(c, 200, barge_xasprintf("ok %s %s %s", who.service, method, url), NULL, NULL);
    }
    /* Echo: method, the X-Test header and the body. */
    const char *xt = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Test");
    return reply(
        c, 200,
        barge_xasprintf("%s %s %s", method, xt ? xt : "-", cn->body.data ? cn->body.data : ""),
        NULL, NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)c;
    (void)code;
    struct conn *cn = *ctx;
    if (cn) {
        barge_buf_release(&cn->body);
        free(cn);
    }
    *ctx = NULL;
}

static int setup(void **state)
{
    (void)state;
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                               NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed,
                               NULL, MHD_OPTION_END);
    if (!daemon_)
        return -1;
    port = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    return 0;
}

static char *url_of(const char *path)
{
    return barge_xasprintf("http://127.0.0.1:%d%s", port, path);
}

static void test_methods_headers_body(void **state)
{
    (void)state;
    _cleanup_free_ char *url = url_of("/echo");
    struct barge_kv hdrs[] = {{"X-Test", "yes"}};
    struct barge_httpc_request rq = {
        .method = "POST",
        .url = url,
        .headers = hdrs,
        .n_headers = 1,
        .body = "hello",
        .body_len = 5,
    };
    struct barge_httpc_response r;
    _cleanup_error_ struct barge_error *err = NULL;
    CURL *curl = curl_easy_init();
    assert_int_equal(barge_httpc_perform(curl, &rq, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST yes hello");
    assert_int_equal(r.len, strlen("POST yes hello"));
    assert_null(r.header);
    barge_httpc_response_release(&r);

    /* The same handle again: nothing of the last request sticks. */
    struct barge_httpc_request get = {.method = "GET", .url = url};
    assert_int_equal(barge_httpc_perform(curl, &get, &r, &err), 0);
    assert_string_equal(r.body, "GET - ");
    barge_httpc_response_release(&r);

    /* HEAD: a status and no body. */
    struct barge_httpc_request head = {.method = "HEAD", .url = url};
    assert_int_equal(barge_httpc_perform(curl, &head, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "");
    barge_httpc_response_release(&r);
    curl_easy_cleanup(curl);
}

static void test_keep_header_and_status(void **state)
{
    (void)state;
    _cleanup_free_ char *url = url_of("/challenge");
    struct barge_httpc_request rq = {
        .method = "GET", .url = url, .keep_header = "www-authenticate"};
    struct barge_httpc_response r;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_httpc_perform(NULL, &rq, &r, &err), 0);
    assert_int_equal(r.status, 401); /* any status is an answer */
    assert_non_null(r.header);
    assert_string_equal(r.header, "Bearer realm=\"http://127.0.0.1/token\",service=\"test\"");
    barge_httpc_response_release(&r);
}

static void test_cap(void **state)
{
    (void)state;
    _cleanup_free_ char *url = url_of("/big");
    struct barge_httpc_request rq = {.method = "GET", .url = url, .max_response = 5000};
    struct barge_httpc_response r;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_httpc_perform(NULL, &rq, &r, &err), 0);
    assert_int_equal(r.len, 5000);
    barge_httpc_response_release(&r);

    rq.max_response = 4999;
    rq.sensitive = true;
    assert_int_equal(barge_httpc_perform(NULL, &rq, &r, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_IO);
    assert_string_equal(err->message, "the response is larger than 4999 bytes");
    assert_null(r.body);
}

static void test_unreachable(void **state)
{
    (void)state;
    /* Port 1 on loopback: nothing listens there. */
    struct barge_httpc_request rq = {
        .method = "GET", .url = "http://127.0.0.1:1/x", .peer = "the test peer"};
    struct barge_httpc_response r;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_httpc_perform(NULL, &rq, &r, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_IO);
    assert_true(barge_str_has_prefix(err->message, "cannot reach the test peer: "));
    assert_null(r.body);
}

static void test_signed(void **state)
{
    (void)state;
    struct barge_sigv4_credentials creds = {"AKIDHTTPC", "httpc-secret", NULL};
    struct barge_aws_signer s = {.region = "eu-west-1", .service = "ssm", .creds = &creds};
    _cleanup_free_ char *url = url_of("/signed/path?a=1%202");
    struct barge_kv hdrs[] = {{"Content-Type", "application/x-amz-json-1.1"},
                              {"X-Amz-Target", "AmazonSSM.GetParameters"}};
    struct barge_httpc_request rq = {
        .method = "POST",
        .url = url,
        .headers = hdrs,
        .n_headers = 2,
        .body = "{}",
        .body_len = 2,
    };
    struct barge_httpc_response r;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_aws_perform(NULL, &rq, &s, &r, &err), 0);
    assert_string_equal(r.body, "ok ssm POST /signed/path");
    barge_httpc_response_release(&r);

    /* A wrong secret is caught by the verifier: the signature really covers
     * what was sent. */
    struct barge_sigv4_credentials wrong = {"AKIDHTTPC", "not-the-secret", NULL};
    s.creds = &wrong;
    assert_int_equal(barge_aws_perform(NULL, &rq, &s, &r, &err), 0);
    assert_int_equal(r.status, 403);
    assert_true(barge_str_has_prefix(r.body, "denied: "));
    barge_httpc_response_release(&r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods_headers_body),
        cmocka_unit_test(test_keep_header_and_status),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_signed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
