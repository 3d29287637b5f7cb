/* The HTTP server module (http/http.h) as the agent's listeners use it,
 * over real sockets on loopback: several addresses on one port, an address
 * in use told apart from other failures, binding an address the host does
 * not have (IP_FREEBIND), what a caller opts into (the request id header,
 * the hook around handlers) staying off by default, and handlers that may
 * wait running on the handler pool: they hold up no other request, park
 * there, and are answered when the server stops. */
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

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/ids.h"
#include "http/http.h"

static atomic_int resets;

static void hello(struct barge_http_req *req, struct barge_http_resp *resp)
{
    char *body = barge_xasprintf("%s %s", req->method, req->path);
    barge_http_resp_set(resp, 200, "text/plain", body, strlen(body));
}

static const struct barge_http_route routes[] = {
    {"", hello, 1024, NULL, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

static void count_reset(void *server)
{
    assert_ptr_equal(server, &resets);
    resets++;
}

/* The whole answer to one request sent to addr:port (closing the
 * connection), or what came of it in 5 s. The caller frees it. */
static char *ask(const char *addr, int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* An answer that does not come in 5 s counts as none. */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
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

/* The pool's routes: "/slow" waits until released, "/park" parks until
 * woken, once or (with "?again") twice. */
static atomic_bool released;
static atomic_int park_runs;
static atomic_bool parked; /* the first run is in the parked list */
static atomic_bool wake_in_handler;
static pthread_t slow_thread;
static struct barge_http_server *pool_srv;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void slow(struct barge_http_req *req, struct barge_http_resp *resp)
{
    slow_thread = pthread_self();
    for (int i = 0; i < 1000 && !released; i++)
        sleep_ms(10);
    barge_http_resp_set(resp, 200, "text/plain", barge_xstrdup("slow"), 4);
}

static void park(struct barge_http_req *req, struct barge_http_resp *resp)
{
    int run = ++park_runs;
    if (run == 1 && barge_http_req_park(req, barge_monotonic_ms() + 60000)) {
        parked = true;
        /* Woken before the handler returns: it must still run again. */
        if (wake_in_handler)
            barge_http_resume_parked(pool_srv);
        return;
    }
    char *body = barge_xasprintf("runs=%d", run);
    barge_http_resp_set(resp, 200, "text/plain", body, strlen(body));
}

static const struct barge_http_route pool_routes[] = {
    {"/slow", slow, 1024, NULL, barge_http_waits_always},
    {"/park", park, 1024, NULL, barge_http_waits_always},
    {"", hello, 1024, NULL, barge_http_waits_unless_read},
    {NULL, NULL, 0, NULL, NULL},
};

struct asked {
    pthread_t thread;
    int port;
    const char *request;
    char *answer;
};

static void *ask_main(void *ud)
{
    struct asked *a = ud;
    a->answer = ask("127.0.0.1", a->port, a->request);
    return NULL;
}

static void ask_async(struct asked *a, int port, const char *request)
{
    a->port = port;
    a->request = request;
    assert_int_equal(pthread_create(&a->thread, NULL, ask_main, a), 0);
}

static void test_a_waiting_request_holds_up_no_other(void **state)
{
    (void)state;
    /* One event thread: a handler that waited there would hold up every
     * other request. */
    struct barge_http_options o = {.limits = {.threads = 1, .handler_threads = 2}};
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_http_start("127.0.0.1:0", pool_routes, NULL, &o, &pool_srv, &err), 0);
    int port = barge_http_port(pool_srv);
    released = false;
    slow_thread = 0;
    struct asked s;
    ask_async(&s, port, "POST /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    while (!slow_thread)
        sleep_ms(5);
    /* A read is answered on the event thread while /slow waits. */
    _cleanup_free_ char *answer = ask("127.0.0.1", port, get_close);
    assert_true(barge_str_has_prefix(answer, "HTTP/1.1 200 "));
    assert_false(released);
    /* So is another request that may wait, on the pool's other thread. */
    _cleanup_free_ char *post =
        ask("127.0.0.1", port, "POST /y HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(post, "\r\n\r\nPOST /y"));
    assert_false(released);
    released = true;
    pthread_join(s.thread, NULL);
    assert_true(barge_str_has_prefix(s.answer, "HTTP/1.1 200 "));
    assert_non_null(strstr(s.answer, "\r\n\r\nslow"));
    assert_false(pthread_equal(slow_thread, pthread_self()));
    free(s.answer);
    barge_http_stop(pool_srv);
}

static void test_pooled_handlers_park(void **state)
{
    (void)state;
    struct barge_http_options o = {.limits = {.threads = 1, .handler_threads = 1}};
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_http_start("127.0.0.1:0", pool_routes, NULL, &o, &pool_srv, &err), 0);
    int port = barge_http_port(pool_srv);
    static const char req[] = "POST /park HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    /* Parked on the pool, woken from elsewhere. */
    park_runs = 0;
    parked = wake_in_handler = false;
    struct asked a;
    ask_async(&a, port, req);
    while (!parked)
        sleep_ms(5);
    /* Parked, the request holds no thread of the pool (it has one). */
    _cleanup_free_ char *post =
        ask("127.0.0.1", port, "POST /y HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_true(barge_str_has_prefix(post, "HTTP/1.1 200 "));
    assert_int_equal(park_runs, 1);
    barge_http_resume_parked(pool_srv);
    pthread_join(a.thread, NULL);
    assert_non_null(strstr(a.answer, "\r\n\r\nruns=2"));
    free(a.answer);

    /* Woken while its handler has not returned yet: not lost. */
    park_runs = 0;
    wake_in_handler = true;
    _cleanup_free_ char *woken = ask("127.0.0.1", port, req);
    assert_non_null(strstr(woken, "\r\n\r\nruns=2"));

    /* Parked when the server stops: answered then. */
    park_runs = 0;
    parked = wake_in_handler = false;
    ask_async(&a, port, req);
    while (!parked)
        sleep_ms(5);
    barge_http_stop(pool_srv);
    pthread_join(a.thread, NULL);
    assert_non_null(strstr(a.answer, "\r\n\r\nruns=2"));
    free(a.answer);
}

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
        cmocka_unit_test(test_a_waiting_request_holds_up_no_other),
        cmocka_unit_test(test_pooled_handlers_park),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
