/* The dnsmasq options the agent writes for Cloud Map's SRV records: one
 * srv-host line per record, priority and weight 1, and nothing that is not a
 * DNS name or a port (a record must never add another option). */
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

#include "agent/agent.h"

static char *options(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad JSON in test: %s", jerr.text);
    char *out = barge_agent_dns_srv_options(j);
    json_decref(j);
    return out;
}

static void test_srv_lines(void **state)
{
    (void)state;
    char *s = options("[[\"web.corp.local\", \"t1.web.corp.local\", 8080],"
                      " [\"_http._tcp.a.b\", \"t-2.a.b\", 1]]");
    assert_string_equal(s, "srv-host=web.corp.local,t1.web.corp.local,8080,1,1\n"
                           "srv-host=_http._tcp.a.b,t-2.a.b,1,1,1\n");
    free(s);
    s = options("[]");
    assert_string_equal(s, "");
    free(s);
}

static void test_srv_refused(void **state)
{
    (void)state;
    char *s = options("[[\"web.corp.local\\naddress=/x/1.2.3.4\", \"t.a\", 80],"
                      " [\"a,b\", \"t.a\", 80], [\"a\", \"t a\", 80], [\"a\", \"t.a\", 0],"
                      " [\"a\", \"t.a\", 65536], [\"\", \"t.a\", 80], [\"a\", \"t.a\", \"80\"],"
                      " [\"a\"], 7, [\"ok.a\", \"t.a\", 65535]]");
    assert_string_equal(s, "srv-host=ok.a,t.a,65535,1,1\n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srv_lines),
        cmocka_unit_test(test_srv_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
