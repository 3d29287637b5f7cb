/* Host port allocation and the parsers behind it: the ephemeral range, the
 * sockets in /proc/net, the NAT rules in iptables-save, subnet arithmetic. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "net/net.h"

static void test_range(void **state)
{
    uint16_t lo, hi;
    assert_int_equal(barge_net_port_range_parse("32768\t60999\n", &lo, &hi), 0);
    assert_int_equal(lo, 32768);
    assert_int_equal(hi, 60999);
    assert_int_equal(barge_net_port_range_parse("49153-65535", &lo, &hi), 0);
    assert_int_equal(lo, 49153);
    assert_int_equal(hi, 65535);
    assert_int_equal(barge_net_port_range_parse(" 100 - 100 ", &lo, &hi), 0);
    assert_int_equal(barge_net_port_range_parse("60999 32768", &lo, &hi), -1);
    assert_int_equal(barge_net_port_range_parse("0-10", &lo, &hi), -1);
    assert_int_equal(barge_net_port_range_parse("1-70000", &lo, &hi), -1);
    assert_int_equal(barge_net_port_range_parse("1-2x", &lo, &hi), -1);
    assert_int_equal(barge_net_port_range_parse("", &lo, &hi), -1);
    assert_int_equal(barge_net_port_range_parse(NULL, &lo, &hi), -1);
}

static void test_pick(void **state)
{
    struct barge_net_portset *used = calloc(1, sizeof(*used));
    uint16_t out[4];
    /* start wraps around the range */
    assert_int_equal(barge_net_ports_pick(used, 100, 104, 7, 2, out), 0);
    assert_int_equal(out[0], 102);
    assert_int_equal(out[1], 103);
    assert_true(barge_net_portset_has(used, 102) && barge_net_portset_has(used, 103));
    /* taken ports are skipped, the scan wraps */
    assert_int_equal(barge_net_ports_pick(used, 100, 104, 3, 2, out), 0);
    assert_int_equal(out[0], 104);
    assert_int_equal(out[1], 100);
    /* one left: asking for two fails and takes nothing */
    assert_int_equal(barge_net_ports_pick(used, 100, 104, 0, 2, out), -1);
    assert_false(barge_net_portset_has(used, 101));
    assert_int_equal(barge_net_ports_pick(used, 100, 104, 0, 1, out), 0);
    assert_int_equal(out[0], 101);
    assert_int_equal(barge_net_ports_pick(used, 100, 104, 0, 1, out), -1);
    /* the whole 16-bit range */
    memset(used, 0, sizeof(*used));
    assert_int_equal(barge_net_ports_pick(used, 1, 65535, 65534, 2, out), 0);
    assert_int_equal(out[0], 65535);
    assert_int_equal(out[1], 1);
    free(used);
}

static void test_proc(void **state)
{
    const char *tcp =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
        "   1: 0200000A:C350 0300000A:01BB 01 00000000:00000000 00:00000000 00000000     0\n";
    const char *tcp6 =
        "  sl  local_address                         remote_address                        st\n"
        "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 "
        "0A\n";
    struct barge_net_portset *s = calloc(1, sizeof(*s));
    barge_net_ports_parse_proc(tcp, s);
    barge_net_ports_parse_proc(tcp6, s);
    barge_net_ports_parse_proc(NULL, s);
    assert_true(barge_net_portset_has(s, 8080));
    assert_true(barge_net_portset_has(s, 50000));
    assert_true(barge_net_portset_has(s, 22));
    assert_false(barge_net_portset_has(s, 443)); /* a remote port */
    assert_false(barge_net_portset_has(s, 0));
    free(s);
}

static void test_iptables(void **state)
{
    const char *save =
        "*filter\n"
        "-A INPUT -p tcp -m tcp --dport 9999 -j ACCEPT\n"
        "COMMIT\n"
        "*nat\n"
        ":CNI-HOSTPORT-DNAT - [0:0]\n"
        "-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"barge0\\\"\" -m "
        "multiport --dports 40001,40002 -j CNI-DN-1\n"
        "-A CNI-DN-1 -p tcp -m tcp --dport 40001 -j DNAT --to-destination 10.213.0.2:80\n"
        "-A DOCKER -p tcp -m tcp --dport 8000:8002 -j DNAT --to-destination 172.17.0.2:80\n"
        "-A CNI-DN-2 -p udp -m udp --dport 53 -j DNAT --to-destination 10.213.0.3:53\n"
        "COMMIT\n";
    struct barge_net_portset *s = calloc(1, sizeof(*s));
    barge_net_ports_parse_iptables(save, s);
    assert_true(barge_net_portset_has(s, 40001));
    assert_true(barge_net_portset_has(s, 40002));
    assert_true(barge_net_portset_has(s, 8000));
    assert_true(barge_net_portset_has(s, 8001));
    assert_true(barge_net_portset_has(s, 8002));
    assert_true(barge_net_portset_has(s, 53));
    assert_false(barge_net_portset_has(s, 9999)); /* filter table: not a forward */
    assert_false(barge_net_portset_has(s, 80));
    free(s);
}

static void test_cidr(void **state)
{
    uint32_t a, b;
    int pa, pb;
    assert_int_equal(barge_net_cidr_parse("10.213.7.9/16", &a, &pa), 0);
    assert_int_equal(a, 0x0AD50000u);
    assert_int_equal(pa, 16);
    assert_int_equal(barge_net_cidr_parse("10.213.0.0", &a, &pa), -1);
    assert_int_equal(barge_net_cidr_parse("10.213.0.0/31", &a, &pa), -1);
    assert_int_equal(barge_net_cidr_parse("300.1.1.1/16", &a, &pa), -1);
    assert_int_equal(barge_net_cidr_parse("10.0.0.0/8x", &a, &pa), -1);
    char *gw = barge_net_cidr_gateway("192.168.213.0/24");
    assert_string_equal(gw, "192.168.213.1");
    free(gw);
    assert_null(barge_net_cidr_gateway("nope"));
    assert_int_equal(barge_net_cidr_parse("10.0.0.0/8", &a, &pa), 0);
    assert_int_equal(barge_net_cidr_parse("10.213.0.0/16", &b, &pb), 0);
    assert_true(barge_net_cidr_overlap(a, pa, b, pb));
    assert_true(barge_net_cidr_overlap(b, pb, a, pa));
    assert_int_equal(barge_net_cidr_parse("172.29.0.0/16", &a, &pa), 0);
    assert_false(barge_net_cidr_overlap(a, pa, b, pb));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range),    cmocka_unit_test(test_pick), cmocka_unit_test(test_proc),
        cmocka_unit_test(test_iptables), cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
