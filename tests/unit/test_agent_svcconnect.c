/* Service Connect's proxy on a host, the pure parts: the address each
 * client alias name gets (the same for the same names, on every host, and
 * distinct), the hosts-file lines dnsmasq answers them with, and the
 * HAProxy configuration forwarding each alias to its endpoints. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>

#include <stdbool.h>
#include <stdio.h>

#include "agent/svcconnect.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad JSON in test: %s", jerr.text);
    return j;
}

static bool in_slice(const char *addr)
{
    struct in_addr a;
    if (inet_pton(AF_INET, addr, &a) != 1)
        return false;
    uint32_t h = ntohl(a.s_addr);
    /* 169.254.200.0/22, never its first or last address */
    return (h & 0xFFFFFC00u) == 0xA9FEC800u && h != 0xA9FEC800u && h != 0xA9FECBFFu;
}

static void test_addresses(void **state)
{
    (void)state;
    json_t *aliases = parse("[{\"dnsName\": \"web.internal\", \"port\": 80},"
                            " {\"dnsName\": \"web.internal\", \"port\": 8080},"
                            " {\"dnsName\": \"api.internal\", \"port\": 80}]");
    json_t *addrs = barge_svcconnect_addresses(aliases);
    assert_int_equal(json_object_size(addrs), 2); /* one per name, not per port */
    const char *web = json_string_value(json_object_get(addrs, "web.internal"));
    const char *api = json_string_value(json_object_get(addrs, "api.internal"));
    assert_non_null(web);
    assert_non_null(api);
    assert_true(in_slice(web));
    assert_true(in_slice(api));
    assert_string_not_equal(web, api);
    /* the same names in another order: the same addresses */
    json_t *swapped = parse("[{\"dnsName\": \"api.internal\", \"port\": 1},"
                            " {\"dnsName\": \"web.internal\", \"port\": 2}]");
    json_t *again = barge_svcconnect_addresses(swapped);
    assert_true(json_equal(addrs, again));
    json_decref(again);
    json_decref(swapped);
    /* a new name leaves the others where they were */
    json_array_append_new(aliases, parse("{\"dnsName\": \"db.internal\", \"port\": 5432}"));
    json_t *more = barge_svcconnect_addresses(aliases);
    assert_string_equal(json_string_value(json_object_get(more, "web.internal")), web);
    assert_string_equal(json_string_value(json_object_get(more, "api.internal")), api);
    json_decref(more);

    char *hosts = barge_svcconnect_hosts(addrs);
    char line[64];
    snprintf(line, sizeof(line), "%s web.internal\n", web);
    assert_non_null(strstr(hosts, line));
    snprintf(line, sizeof(line), "%s api.internal\n", api);
    assert_non_null(strstr(hosts, line));
    free(hosts);
    json_decref(addrs);
    json_decref(aliases);
}

static void test_many_names_stay_distinct(void **state)
{
    (void)state;
    json_t *aliases = json_array();
    for (int i = 0; i < 1100; i++) {
        char name[32];
        snprintf(name, sizeof(name), "s%d.ns", i);
        json_array_append_new(aliases, json_pack("{s:s, s:i}", "dnsName", name, "port", 80));
    }
    json_t *addrs = barge_svcconnect_addresses(aliases);
    /* the slice holds 1022; every address is used once */
    assert_int_equal(json_object_size(addrs), 1022);
    json_t *seen = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(addrs, k, v)
    {
        assert_true(in_slice(json_string_value(v)));
        assert_null(json_object_get(seen, json_string_value(v)));
        json_object_set_new(seen, json_string_value(v), json_true());
    }
    json_decref(seen);
    json_decref(addrs);
    json_decref(aliases);
}

static void test_haproxy_config(void **state)
{
    (void)state;
    json_t *aliases =
        parse("[{\"dnsName\": \"web.internal\", \"port\": 80, \"endpoints\":"
              "   [[\"127.0.0.1\", 32768], [\"10.1.2.3\", 8080]]},"
              " {\"dnsName\": \"api.internal\", \"port\": 80, \"endpoints\": []},"
              " {\"dnsName\": \"bad.internal\", \"port\": 81, \"endpoints\":"
              "   [[\"10.0.0.1\\n    server x 1.1.1.1:1\", 80], [\"10.0.0.2\", 0]]}]");
    json_t *addrs = parse("{\"web.internal\": \"169.254.200.7\", \"api.internal\": "
                          "\"169.254.200.9\", \"bad.internal\": \"169.254.200.11\"}");
    char *cfg = barge_svcconnect_haproxy_config(aliases, addrs, "/run/x/admin.sock");
    assert_non_null(strstr(cfg, "stats socket /run/x/admin.sock mode 600 level admin "
                                "expose-fd listeners\n"));
    assert_non_null(strstr(cfg, "    mode tcp\n"));
    assert_non_null(strstr(cfg, "frontend alias0\n    bind 169.254.200.7:80\n"
                                "    default_backend alias0\n"
                                "backend alias0\n    balance roundrobin\n"
                                "    server e0 127.0.0.1:32768\n"
                                "    server e1 10.1.2.3:8080\n"));
    /* two aliases on one port, on their own addresses */
    assert_non_null(strstr(cfg, "frontend alias1\n    bind 169.254.200.9:80\n"));
    /* endpoints that are not an IPv4 address and a port are left out */
    assert_null(strstr(cfg, "1.1.1.1"));
    assert_null(strstr(cfg, "10.0.0.2"));
    assert_non_null(strstr(cfg, "backend alias2\n    balance roundrobin\n"));
    free(cfg);
    json_decref(aliases);
    json_decref(addrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_many_names_stay_distinct),
        cmocka_unit_test(test_haproxy_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
