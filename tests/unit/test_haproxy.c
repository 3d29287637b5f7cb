/* Unit tests of the HAProxy configuration barged writes for a load balancer
 * (src/net/haproxy.c): frontends on the listeners' ports, a backend per
 * target group whose health check follows the group (path, matcher codes as
 * a regex, interval, thresholds, port), servers only when asked, drained
 * servers at weight 0, forwards split by weight across target groups (with
 * cookie stickiness), the idle timeout, TLS binds with their certificates and
 * policy, the listener attributes' response headers and tunnel timeout, and
 * the redirects and fixed responses of listeners and rules (escaped for
 * HAProxy's quoted words, after forward rules of a higher priority). */
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "net/haproxy.h"

static json_t *spec(void)
{
    json_t *s = json_loads(
        "{\"name\": \"web\", \"address\": \"127.0.0.1\", \"socket\": \"/run/web.sock\","
        " \"mode\": \"http\", \"listeners\": [{\"port\": 8080,"
        "   \"forward\": [{\"backend\": \"tg-app\", \"weight\": 1}]}],"
        " \"backends\": {\"tg-app\": {\"check\": {\"enabled\": true, \"protocol\": \"HTTP\","
        "   \"path\": \"/health\", \"interval\": 10, \"timeout\": 3, \"rise\": 3, \"fall\": 2,"
        "   \"codes\": \"200,202-204\", \"port\": 9000},"
        "  \"servers\": {\"10.0.0.1-80\": {\"addr\": \"10.0.0.1\", \"port\": 80},"
        "               \"10.0.0.2-80\": {\"addr\": \"10.0.0.2\", \"port\": 80, \"drain\": true}}}}}",
        0, NULL);
    assert_non_null(s);
    return s;
}

static void test_config(void **state)
{
    (void)state;
    json_t *s = spec();
    char *with = barge_haproxy_config(s, true);
    assert_non_null(strstr(with, "stats socket /run/web.sock mode 600 level admin"));
    assert_non_null(strstr(with, "frontend l8080\n    bind 127.0.0.1:8080\n"
                                 "    http-request set-header X-Forwarded-Proto http\n"
                                 "    http-request set-header X-Forwarded-Port 8080\n"
                                 "    default_backend tg-app\n"));
    assert_non_null(strstr(with, "option httpchk GET /health\n"));
    assert_non_null(strstr(with, "http-check expect rstatus ^(200|202|203|204)$\n"));
    assert_non_null(strstr(with, "timeout check 3s\n"));
    assert_non_null(strstr(with, "    server 10.0.0.1-80 10.0.0.1:80 check inter 10s rise 3 "
                                 "fall 2 port 9000\n"));
    assert_non_null(strstr(with, "    server 10.0.0.2-80 10.0.0.2:80 check inter 10s rise 3 "
                                 "fall 2 port 9000 weight 0\n"));
    /* The shape barged compares to decide on a new process has no servers. */
    char *without = barge_haproxy_config(s, false);
    assert_null(strstr(without, "    server "));
    assert_non_null(strstr(without, "option httpchk"));
    free(with);
    free(without);
    json_decref(s);
}

static void test_tls_and_attributes(void **state)
{
    (void)state;
    json_t *s = spec();
    json_t *l = json_array_get(json_object_get(s, "listeners"), 0);
    json_object_set_new(
        l, "tls",
        json_loads("{\"certs\": [{\"path\": \"/d/8080-0.pem\", \"arn\": \"arn:a\", \"seq\": 2},"
                   "  {\"path\": \"/d/8080-1.pem\", \"arn\": \"arn:b\", \"seq\": 1}],"
                   " \"min_version\": \"TLSv1.2\", \"max_version\": \"TLSv1.3\","
                   " \"ciphers\": \"ECDHE-RSA-AES128-GCM-SHA256\","
                   " \"ciphersuites\": \"TLS_AES_128_GCM_SHA256\"}",
                   0, NULL));
    json_object_set_new(l, "server_header", json_false());
    json_object_set_new(
        l, "headers", json_pack("[[s, s]]", "Content-Security-Policy", "default-src 'self' 100%"));
    char *text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "    bind 127.0.0.1:8080 ssl crt /d/8080-0.pem crt /d/8080-1.pem "
                                 "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 ciphers "
                                 "ECDHE-RSA-AES128-GCM-SHA256 ciphersuites "
                                 "TLS_AES_128_GCM_SHA256\n"
                                 "    # certificate arn:a import 2\n"
                                 "    # certificate arn:b import 1\n"
                                 "    http-request set-header X-Forwarded-Proto https\n"));
    assert_non_null(strstr(text, "    http-response del-header Server\n"
                                 "    http-response set-header Content-Security-Policy "
                                 "\"default-src 'self' 100%%\"\n"));
    free(text);
    /* A TCP listener's idle timeout is its backends' tunnel timeout. */
    json_object_set_new(s, "mode", json_string("tcp"));
    json_object_set_new(json_object_get(json_object_get(s, "backends"), "tg-app"), "tunnel",
                        json_integer(120));
    text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "backend tg-app\n    balance roundrobin\n"
                                 "    timeout tunnel 120s\n"));
    assert_null(strstr(text, "X-Forwarded-Proto"));
    free(text);
    json_decref(s);
}

static void test_rules(void **state)
{
    (void)state;
    json_t *s = spec();
    json_t *l = json_array_get(json_object_get(s, "listeners"), 0);
    json_object_set_new(
        l, "rules",
        json_loads(
            "[{\"forward\": [{\"backend\": \"tg-b\"}], \"paths\": [\"/b/*\", \"/v1.0?\"],"
            "  \"hosts\": [\"API.example.com\"]},"
            " {\"forward\": [{\"backend\": \"tg-c\"}], \"paths\": [], \"hosts\": [\"*.c\"]}]",
            0, NULL));
    char *text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text,
                           "    acl r0_path path -m reg '^/b/.*$' '^/v1\\.0.$'\n"
                           "    acl r0_host req.hdr(host),lower,field(1,:) -m reg "
                           "'^api\\.example\\.com$'\n"
                           "    use_backend tg-b if r0_path r0_host\n"
                           "    acl r1_host req.hdr(host),lower,field(1,:) -m reg '^.*\\.c$'\n"
                           "    use_backend tg-c if r1_host\n"
                           "    default_backend tg-app\n"));
    free(text);
    json_decref(s);
}

/* An HTTP listener whose default action redirects to HTTPS: the request's
 * host, path and query go into the Location, the '?' only when there is a
 * query; literal text is escaped for a quoted log-format string. */
static void test_redirect(void **state)
{
    (void)state;
    json_t *s = spec();
    json_t *l = json_array_get(json_object_get(s, "listeners"), 0);
    json_object_del(l, "forward");
    json_object_set_new(
        l, "redirect",
        json_pack("{s:s, s:s, s:i}", "protocol", "HTTPS", "port", "443", "code", 301));
    char *text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "    http-request redirect location "
                                 "\"https://%[req.hdr(host),field(1,:)]:443/%[path,regsub(^/,)]"
                                 "?%[query]\" code 301 if { query -m len 1: }\n"
                                 "    http-request redirect location "
                                 "\"https://%[req.hdr(host),field(1,:)]:443/%[path,regsub(^/,)]\" "
                                 "code 301\n"));
    assert_null(strstr(text, "default_backend"));
    free(text);

    /* Every component given, with placeholders among literal text. */
    json_object_set_new(l, "redirect",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "protocol", "#{protocol}",
                                  "port", "#{port}", "host", "new.#{host}", "path",
                                  "/v2/#{path}%\"$#", "query", "from=#{port}&#{query}", "code",
                                  302));
    text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "    http-request redirect location "
                                 "\"http://new.%[req.hdr(host),field(1,:)]:8080"
                                 "/v2/%[path,regsub(^/,)]%%\\\"\\$\\#?from=8080&%[query]\" "
                                 "code 302\n"));
    free(text);

    /* An empty query drops the request's; #{protocol} of a TLS listener is
     * https. */
    json_object_set_new(l, "tls", json_pack("{s:[]}", "certs"));
    json_object_set_new(l, "redirect",
                        json_pack("{s:s, s:s, s:i}", "path", "/moved", "query", "", "code", 301));
    text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "    http-request redirect location "
                                 "\"https://%[req.hdr(host),field(1,:)]:8080/moved\" code 301\n"));
    free(text);
    json_decref(s);
}

/* Fixed responses, as a default and as a rule, after a forward rule of a
 * higher priority that they must not override; hostile bodies stay inside
 * their quoted word. */
static void test_fixed_response(void **state)
{
    (void)state;
    json_t *s = spec();
    json_t *l = json_array_get(json_object_get(s, "listeners"), 0);
    json_object_del(l, "forward");
    json_object_set_new(l, "fixed",
                        json_pack("{s:i, s:s, s:s}", "status", 404, "content_type", "text/plain",
                                  "body", "no such page"));
    json_object_set_new(l, "rules",
                        json_pack("[{s:[{s:s}], s:[s], s:[]}, {s:{s:i, s:s, s:s}, s:[s], s:[]}]",
                                  "forward", "backend", "tg-api", "paths", "/api/*", "hosts",
                                  "fixed", "status", 503, "content_type", "text/html", "body",
                                  "<p class=\"x\">down\\now\n100% # ${HOME} 'q'\r</p>", "paths",
                                  "/*", "hosts"));
    char *text = barge_haproxy_config(s, false);
    assert_non_null(strstr(
        text, "    acl r0_path path -m reg '^/api/.*$'\n"
              "    http-request set-var(txn.fwd) bool(1) if r0_path\n"
              "    use_backend tg-api if r0_path\n"
              "    acl r1_path path -m reg '^/.*$'\n"
              "    http-request return status 503 content-type \"text/html\" string "
              "\"<p class=\\\"x\\\">down\\\\now\\n100% \\# \\${HOME} 'q'\\x0d</p>\" if r1_path "
              "!{ var(txn.fwd) -m found }\n"
              "    http-request return status 404 content-type \"text/plain\" string "
              "\"no such page\" if !{ var(txn.fwd) -m found }\n"));
    assert_null(strstr(text, "default_backend"));
    free(text);

    /* No body: no content type either (HAProxy would ignore it). */
    json_object_set_new(l, "fixed",
                        json_pack("{s:i, s:s}", "status", 200, "content_type", "application/json"));
    json_object_set_new(l, "rules", json_array());
    text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "X-Forwarded-Port 8080\n    http-request return status 200\n"));
    free(text);
    /* Nor for a 204, which HAProxy lets have no body. */
    json_object_set_new(l, "fixed", json_pack("{s:i, s:s}", "status", 204, "body", "ignored"));
    text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "X-Forwarded-Port 8080\n    http-request return status 204\n"));
    free(text);
    json_decref(s);
}

/* Every condition type of a rule, with values that would break an unescaped
 * configuration line or regex: ANDed ACLs, each value an anchored regex in a
 * double-quoted word (wildcards turned into .* and . or [^&]* in a query). */
static void test_conditions(void **state)
{
    (void)state;
    json_t *s = spec();
    json_t *l = json_array_get(json_object_get(s, "listeners"), 0);
    json_t *rules = json_loads(
        "[{\"forward\": [{\"backend\": \"tg-app\"}], \"paths\": [], \"hosts\": [],"
        "  \"headers\": [{\"name\": \"X-Env#'1\", \"values\": [\"a b*\", \"q\\\"'$x#%?\"]},"
        "                {\"name\": \"User-Agent\", \"values\": [\"(.+)^[x]{2}|\\\\\"]}],"
        "  \"queries\": [[{\"key\": \"v*\", \"value\": \"1.0\"}, {\"value\": \"%20 ok?\\\\?\"}]],"
        "  \"methods\": [\"GET\", \"PATCH\"], \"sources\": [\"10.0.0.0/8\", \"192.0.2.7/32\"]}]",
        0, NULL);
    assert_non_null(rules);
    json_object_set_new(l, "rules", rules);
    char *text = barge_haproxy_config(s, false);
    assert_non_null(strstr(
        text,
        "    acl r0_hdr0 req.fhdr(\"X-Env\\#\\\\'1\") -m reg -i \"^a\\\\ b.*\\$\" \"^q\\\\\\\"\\\\"
        "'\\\\\\$x\\\\\\#\\\\%.\\$\"\n"
        "    acl r0_hdr1 req.fhdr(\"User-Agent\") -m reg -i \"^\\\\(\\\\.\\\\+\\\\)\\\\^\\\\["
        "x\\\\]\\\\{2\\\\}\\\\|\\\\\\\\\\$\"\n"
        "    acl r0_query0 query -m reg -i \"(^|&)v[^&=]*=1\\\\.0(&|\\$)\" \"(^|&)([^&=]*=)?"
        "\\\\%20\\\\ ok[^&]\\\\?(&|\\$)\"\n"
        "    acl r0_method method GET PATCH\n"
        "    acl r0_src src 10.0.0.0/8 192.0.2.7/32\n"
        "    use_backend tg-app if r0_hdr0 r0_hdr1 r0_query0 r0_method r0_src\n"));
    free(text);
    json_decref(s);
}

static void test_weighted_forward(void **state)
{
    (void)state;
    json_t *s = spec();
    json_object_set_new(s, "idle_timeout", json_integer(7));
    json_t *l = json_array_get(json_object_get(s, "listeners"), 0);
    json_object_set_new(l, "forward",
                        json_loads("[{\"backend\": \"tg-app\", \"weight\": 0},"
                                   " {\"backend\": \"tg-b\", \"weight\": 3},"
                                   " {\"backend\": \"tg-c\", \"weight\": 1}]",
                                   0, NULL));
    json_object_set_new(l, "rules",
                        json_loads("[{\"forward\": [{\"backend\": \"tg-b\", \"weight\": 1},"
                                   "  {\"backend\": \"tg-c\", \"weight\": 1}], \"sticky\": true,"
                                   "  \"paths\": [\"/s\"], \"hosts\": []}]",
                                   0, NULL));
    json_t *backends = json_object_get(s, "backends");
    json_object_set_new(backends, "tg-b", json_pack("{s:I}", "sticky", (json_int_t)60));
    json_object_set_new(backends, "tg-c", json_object());
    char *text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "    timeout client 7s\n    timeout server 7s\n"));
    /* The numbers are drawn before any rule, one variable per forward. */
    assert_non_null(strstr(text, "    http-request set-header X-Forwarded-Port 8080\n"
                                 "    http-request set-var(txn.wd) rand(4)\n"
                                 "    http-request set-var(txn.w0) rand(2)\n"));
    assert_non_null(strstr(text, "    use_backend tg-b if r0_path { req.cook(AWSALBTG) -m str "
                                 "tg-b }\n"
                                 "    use_backend tg-c if r0_path { req.cook(AWSALBTG) -m str "
                                 "tg-c }\n"
                                 "    use_backend tg-b if r0_path { var(txn.w0) -m int 0:0 }\n"
                                 "    use_backend tg-c if r0_path { var(txn.w0) -m int 1:1 }\n"));
    /* Weight 0 takes no share; the default is the first group with one. */
    assert_non_null(strstr(text, "    use_backend tg-b if { var(txn.wd) -m int 0:2 }\n"
                                 "    use_backend tg-c if { var(txn.wd) -m int 3:3 }\n"
                                 "    default_backend tg-b\n"));
    assert_null(strstr(text, "use_backend tg-app"));
    assert_non_null(strstr(text, "backend tg-b\n    balance roundrobin\n"
                                 "    http-response add-header Set-Cookie "
                                 "\"AWSALBTG=tg-b; Max-Age=60; Path=/\"\n"));
    free(text);
    /* Network load balancers draw per connection. */
    json_object_set_new(s, "mode", json_string("tcp"));
    json_object_del(l, "rules");
    text = barge_haproxy_config(s, false);
    assert_non_null(strstr(text, "    tcp-request content set-var(sess.wd) rand(4)\n"));
    assert_non_null(strstr(text, "    use_backend tg-c if { var(sess.wd) -m int 3:3 }\n"));
    free(text);
    json_decref(s);
}

static void test_tcp_and_no_check(void **state)
{
    (void)state;
    json_t *s = spec();
    json_object_set_new(s, "mode", json_string("tcp"));
    json_t *be = json_object_get(json_object_get(s, "backends"), "tg-app");
    json_t *check = json_object_get(be, "check");
    json_object_set_new(check, "protocol", json_string("TCP"));
    char *text = barge_haproxy_config(s, true);
    assert_non_null(strstr(text, "    mode tcp\n"));
    assert_null(strstr(text, "httpchk"));
    free(text);
    json_object_set_new(check, "enabled", json_false());
    char *args = barge_haproxy_server_args(
        be, json_object_get(json_object_get(be, "servers"), "10.0.0.1-80"));
    assert_string_equal(args, "10.0.0.1:80");
    free(args);
    json_decref(s);
}

static void test_socket_path(void **state)
{
    (void)state;
    char *p = barge_haproxy_socket_path("/var/lib/barge/lb/x.sock", "lb");
    assert_string_equal(p, "/var/lib/barge/lb/x.sock");
    free(p);
    char deep[200];
    memset(deep, 'd', sizeof(deep));
    memcpy(deep, "/tmp/", 5);
    strcpy(deep + 150, "/svcconnect/admin.sock");
    char *a = barge_haproxy_socket_path(deep, "svcconnect");
    char *b = barge_haproxy_socket_path(deep, "svcconnect");
    assert_true(strncmp(a, "/run/barge/svcconnect-", 22) == 0);
    assert_true(strlen(a) < 97);
    assert_string_equal(a, b); /* the same across restarts */
    deep[10] = 'e';            /* another data directory */
    char *c = barge_haproxy_socket_path(deep, "svcconnect");
    assert_string_not_equal(a, c);
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),           cmocka_unit_test(test_rules),
        cmocka_unit_test(test_redirect),         cmocka_unit_test(test_fixed_response),
        cmocka_unit_test(test_conditions),       cmocka_unit_test(test_tls_and_attributes),
        cmocka_unit_test(test_weighted_forward), cmocka_unit_test(test_tcp_and_no_check),
        cmocka_unit_test(test_socket_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
