/* The HTTP server module (http/http.h) as the agent's listeners use it,
 * over real sockets on loopback: several addresses on one port, an address
 * in use told apart from other failures, binding an address the host does
 * not have (IP_FREEBIND), and what a caller opts into (the request id header,
 * the hook around handlers) staying off by default. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "http/http.h"

static atomic_int resets;

static void hello(struct barge_http_req *req, struct barge_http_resp *resp)
{
    char *body = barge_xasprintf("%s %s", req->method, req->path);
    barge_http_resp_set(resp, 200, "text/plain", body, strlen(body));
}

static const struct barge_http_route routes[] = {
    {"", hello, 1024, NULL},
    {NULL, NULL, 0, NULL},
};

static void count_reset(void *server)
{
    assert_ptr_equal(server, &resets);
    resets++;
}

/* The whole answer to one request sent to addr:port (closing the
 * connection). The caller frees it. */
static char *ask(const char *addr, int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
    struct barge_buf b = {0};
    char chunk[4096];
    ssize_t n;
    while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0)
        barge_buf_addn(&b, chunk, (size_t)n);
    close(fd);
    barge_buf_addn(&b, "", 1);
    return b.data;
}

static const char get_close[] = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

static void test_several_addresses_share_one_port(void **state)
{
    (void)state;
    const char *more[] = {"127.0.0.2", "127.0.0.3", NULL};
    struct barge_http_options o = {.limits = {.threads = 1}, .also_listen = more};
    struct barge_http_server *srv = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_http_start("127.0.0.1:0", routes, NULL, &o, &srv, &err), 0);
    int port = barge_http_port(srv);
    assert_true(port > 0);
    const char *all[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(all); i++) {
        _cleanup_free_ char *answer = ask(all[i], port, get_close);
        assert_true(barge_str_has_prefix(answer, "HTTP/1.1 200 "));
        assert_non_null(strstr(answer, "\r\n\r\nGET /x"));
        /* No request id header unless the caller names one. */
        assert_null(strcasestr(answer, "RequestId"));
    }
    /* Every address is taken on that port: a second server cannot have
     * any of them, and says the address is in use. */
    char again[32];
    snprintf(again, sizeof(again), "127.0.0.3:%d", port);
    struct barge_http_server *second = NULL;
    assert_int_equal(barge_http_start(again, routes, NULL, NULL, &second, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_CONFLICT);
    assert_non_null(strstr(err->message, again));
    barge_http_stop(srv);
}

static void test_freebind_takes_an_address_the_host_lacks(void **state)
{
    (void)state;
    /* TEST-NET-1 (RFC 5737) is on no interface here. */
    struct barge_http_server *srv = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_http_start("192.0.2.77:0", routes, NULL, NULL, &srv, &err), -1);
    assert_int_not_equal(err->code, BARGE_ERR_CONFLICT);
    barge_error_free(barge_steal(&err));
    struct barge_http_options o = {.limits = {.threads = 1}, .freebind = true};
    assert_int_equal(barge_http_start("192.0.2.77:0", routes, NULL, &o, &srv, &err), 0);
    assert_true(barge_http_port(srv) > 0);
    barge_http_stop(srv);
}

static void test_options_a_caller_opts_into(void **state)
{
    (void)state;
    struct barge_http_options o = {
        .limits = {.threads = 1}, .request_id_header = "X-Req-Id", .thread_reset = count_reset};
    struct barge_http_server *srv = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_http_start("127.0.0.1:0", routes, &resets, &o, &srv, &err), 0);
    resets = 0;
    _cleanup_free_ char *answer = ask("127.0.0.1", barge_http_port(srv), get_close);
    assert_true(barge_str_has_prefix(answer, "HTTP/1.1 200 "));
    assert_non_null(strcasestr(answer, "\r\nX-Req-Id: "));
    /* Before and after the handler. */
    assert_int_equal(resets, 2);
    /* A request line that is not HTTP gets 400, and no handler runs. */
    _cleanup_free_ char *bad = ask("127.0.0.1", barge_http_port(srv), "GARBAGE\r\n\r\n");
    assert_true(barge_str_has_prefix(bad, "HTTP/1.1 400 "));
    assert_int_equal(resets, 2);
    barge_http_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_several_addresses_share_one_port),
        cmocka_unit_test(test_freebind_takes_an_address_the_host_lacks),
        cmocka_unit_test(test_options_a_caller_opts_into),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
