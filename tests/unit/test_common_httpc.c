/* The shared HTTP client (common/httpc.h) and SigV4-signed requests over it
 * (barge_aws_perform, common/awsapi.h), against barge's own HTTP server
 * (http/http.h) on 127.0.0.1 that echoes what it received and verifies
 * signatures with the same verifier barged uses. */
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
#include "http/http.h"

static struct barge_http_server *server;
static int port;

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

static void reply(struct barge_http_resp *resp, int status, char *text)
{
    barge_http_resp_set(resp, status, "text/plain", text, strlen(text));
}

static void handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    if (strcmp(req->path, "/big") == 0) {
        char *text = barge_xmalloc(5001);
        memset(text, 'b', 5000);
        text[5000] = '\0';
        reply(resp, 200, text);
        return;
    }
    if (strcmp(req->path, "/challenge") == 0) {
        barge_http_resp_header(resp, "WWW-Authenticate",
                               "Bearer realm=\"http://127.0.0.1/token\",service=\"test\"");
        reply(resp, 401, barge_xstrdup("{}"));
        return;
    }
    if (strncmp(req->path, "/signed", 7) == 0) {
        struct barge_kv *hdrs = barge_xcalloc(req->n_headers + 1, sizeof(*hdrs));
        for (size_t i = 0; i < req->n_headers; i++)
            hdrs[i] = (struct barge_kv){req->headers[i].name, req->headers[i].value};
        /* The path and query as sent, which the signature covers. */
        struct barge_sigv4_request sr = {.method = req->method,
                                         .raw_path = req->raw_path,
                                         .raw_query = req->raw_query,
                                         .headers = hdrs,
                                         .n_headers = req->n_headers,
                                         .body = req->body,
                                         .body_len = req->body_len};
        struct barge_sigv4_identity who;
        _cleanup_error_ struct barge_error *err = NULL;
        int r = barge_sigv4_verify(&sr, "eu-west-1", time(NULL), 900, lookup, NULL, &who, &err);
        free(hdrs);
        if (r < 0)
            reply(resp, 403, barge_xasprintf("denied: %s", err->message));
        else
            reply(resp, 200, barge_xasprintf("ok %s %s %s", who.service, req->method, req->path));
        return;
    }
    /* Echo: method, the X-Test header and the body. */
    const char *xt = barge_http_req_header(req, "X-Test");
    reply(resp, 200, barge_xasprintf("%s %s %s", req->method, xt ? xt : "-", req->body));
}

static const struct barge_http_route routes[] = {
    {"", handle, 1024 * 1024, NULL, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

static int setup(void **state)
{
    (void)state;
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_http_start("127.0.0.1:0", routes, NULL, NULL, &server, &err) < 0)
        return -1;
    port = barge_http_port(server);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    barge_http_stop(server);
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
