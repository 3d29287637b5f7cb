/* Unit tests of the HAProxy configuration barged writes for a load balancer
 * (src/net/haproxy.c): frontends on the listeners' ports, a backend per
 * target group whose health check follows the group (path, matcher codes as
 * a regex, interval, thresholds, port), servers only when asked, drained
 * servers at weight 0. */
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
        " \"mode\": \"http\", \"listeners\": [{\"port\": 8080, \"backend\": \"tg-app\"}],"
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

static void test_rules(void **state)
{
    (void)state;
    json_t *s = spec();
    json_t *l = json_array_get(json_object_get(s, "listeners"), 0);
    json_object_set_new(l, "rules",
                        json_loads("[{\"backend\": \"tg-b\", \"paths\": [\"/b/*\", \"/v1.0?\"],"
                                   "  \"hosts\": [\"API.example.com\"]},"
                                   " {\"backend\": \"tg-c\", \"paths\": [], \"hosts\": [\"*.c\"]}]",
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_tcp_and_no_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
