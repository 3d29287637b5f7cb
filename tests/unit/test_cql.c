/* The cluster query language: every subject and operator, precedence,
 * values (quoted, lists, regular expressions, dates), the semantics barge
 * chose for missing attributes and task groups, and error messages with the
 * position they point at. */
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "sched/cql.h"

static struct barge_sched_attr attrs[] = {
    {"ecs.availability-zone", "us-east-1a"},
    {"ecs.instance-type", "t2.small"},
    {"ecs.os-type", "linux"},
    {"stack", "prod"},
    {"cores", "16"},
    {"ratio", "1.5"},
    {"flag", NULL},
};

static struct barge_sched_group_count groups[] = {
    {"service:web", 2},
    {"family:batch", 1},
};

/* 2018-06-18T22:28:28Z */
#define REGISTERED 1529360908.25

static struct barge_sched_instance inst = {
    .id = "5f2c",
    .arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/5f2c",
    .ec2_instance_id = "i-0123456789abcdef0",
    .agent_version = "1.10.2",
    .attrs = attrs,
    .n_attrs = BARGE_ARRAY_SIZE(attrs),
    .registered_at = REGISTERED,
    .active = true,
    .agent_connected = true,
    .running_tasks = 3,
    .groups = groups,
    .n_groups = BARGE_ARRAY_SIZE(groups),
};

/* An empty instance: no attributes, no tasks, disconnected. */
static struct barge_sched_instance bare = {.id = "0000", .registered_at = REGISTERED};

static bool eval_on(const char *text, const struct barge_sched_instance *in)
{
    struct barge_cql *q = NULL;
    struct barge_error *err = NULL;
    if (barge_cql_parse(text, &q, &err) < 0)
        fail_msg("'%s' did not parse: %s", text, err->message);
    bool r = barge_cql_eval(q, in);
    barge_cql_free(q);
    return r;
}

#define TRUE_ON(text, in)  assert_true(eval_on(text, in))
#define FALSE_ON(text, in) assert_false(eval_on(text, in))
#define HOLDS(text)        TRUE_ON(text, &inst)
#define FAILS(text)        FALSE_ON(text, &inst)

/* message NULL: any message. */
static void rejects(const char *text, const char *message)
{
    struct barge_cql *q = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cql_parse(text, &q, &err), -1);
    assert_null(q);
    assert_non_null(err);
    assert_string_equal(err->type, "InvalidParameterException");
    if (message && strcmp(err->message, message) != 0)
        fail_msg("for '%s'\n  got:  %s\n  want: %s", text, err->message, message);
    barge_error_free(err);
}

static void test_equality(void **state)
{
    HOLDS("attribute:ecs.instance-type == t2.small");
    HOLDS("attribute:ecs.instance-type equals t2.small");
    HOLDS("attribute:ecs.instance-type EQUALS t2.small");
    FAILS("attribute:ecs.instance-type == t2.large");
    HOLDS("attribute:ecs.instance-type != t2.large");
    HOLDS("attribute:ecs.instance-type not_equals t2.large");
    FAILS("attribute:ecs.instance-type != t2.small");
    HOLDS("attribute:ecs.instance-type=='t2.small'");
    HOLDS("attribute:ecs.instance-type == \"t2.small\"");
    HOLDS("ec2InstanceId == i-0123456789abcdef0");
    HOLDS("ec2InstanceId != i-1");
    HOLDS("agentConnected == true");
    HOLDS("agentConnected == TRUE");
    FAILS("agentConnected == false");
    TRUE_ON("agentConnected == false", &bare);
    HOLDS("agentConnected != false");
}

static void test_missing_attribute(void **state)
{
    /* A negative operator is the negation of its positive one. */
    FALSE_ON("attribute:stack == prod", &bare);
    TRUE_ON("attribute:stack != prod", &bare);
    FALSE_ON("attribute:stack in [prod, dev]", &bare);
    TRUE_ON("attribute:stack not_in [prod, dev]", &bare);
    FALSE_ON("attribute:stack =~ p.*", &bare);
    TRUE_ON("attribute:stack !~ p.*", &bare);
    FALSE_ON("attribute:cores > 1", &bare);
    FALSE_ON("attribute:cores <= 1", &bare);
}

static void test_exists(void **state)
{
    HOLDS("attribute:stack exists");
    HOLDS("attribute:flag exists");
    FAILS("attribute:nope exists");
    HOLDS("attribute:nope !exists");
    HOLDS("attribute:nope not_exists");
    FAILS("attribute:flag not_exists");
    FAILS("attribute:flag == x"); /* set without a value */
    HOLDS("task:group exists");
    FALSE_ON("task:group exists", &bare);
    TRUE_ON("task:group !exists", &bare);
}

static void test_lists(void **state)
{
    HOLDS("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]");
    HOLDS("attribute:ecs.availability-zone in [us-east-1b,us-east-1a]");
    HOLDS("attribute:ecs.availability-zone in['us-east-1a']");
    FAILS("attribute:ecs.availability-zone in [us-east-1b, us-east-1c]");
    HOLDS("attribute:ecs.availability-zone !in [us-east-1b, us-east-1c]");
    HOLDS("attribute:ecs.availability-zone not_in [us-east-1b]");
    FAILS("attribute:ecs.availability-zone not_in [us-east-1a]");
    HOLDS("ec2InstanceId in ['i-abcd1234', 'i-0123456789abcdef0']");
    HOLDS("agentConnected in [true]");
}

static void test_matches(void **state)
{
    HOLDS("attribute:ecs.instance-type =~ t2.*");
    HOLDS("attribute:ecs.instance-type matches t2\\..*");
    FAILS("attribute:ecs.instance-type =~ g2.*");
    /* whole-value matches, as Java's String.matches */
    FAILS("attribute:ecs.instance-type =~ t2");
    FAILS("attribute:ecs.instance-type =~ small");
    HOLDS("attribute:ecs.instance-type !~ g2.*");
    HOLDS("attribute:ecs.instance-type not_matches g2.*");
    HOLDS("attribute:ecs.instance-type =~ (t2|m5)\\..*");
    HOLDS("attribute:ecs.instance-type =~ [a-z]\\d\\.\\w+");
    HOLDS("attribute:ecs.instance-type =~ t\\d\\.(?:small|large)");
    HOLDS("attribute:ecs.instance-type =~ (?i)T2\\.SMALL");
    HOLDS("attribute:ecs.instance-type =~ t.*?l");
    HOLDS("attribute:ecs.instance-type =~ '[t][0-9][.\\-]small'");
    HOLDS("ec2InstanceId =~ i-[0-9a-f]{17}");
    HOLDS("agentConnected =~ t.*");
    HOLDS("(attribute:ecs.instance-type =~ t2.*)");
}

static void test_ordering(void **state)
{
    HOLDS("attribute:cores > 8");
    HOLDS("attribute:cores greater_than 8");
    HOLDS("attribute:cores >= 16");
    HOLDS("attribute:cores greater_than_equal 16");
    FAILS("attribute:cores > 16");
    HOLDS("attribute:cores < 100"); /* numbers, not text: "16" > "100" as text */
    HOLDS("attribute:cores less_than 100");
    HOLDS("attribute:cores <= 16");
    HOLDS("attribute:cores less_than_equal 16");
    HOLDS("attribute:ratio < 1.75");
    HOLDS("attribute:ratio > 1.25");
    HOLDS("runningTasksCount == 3");
    HOLDS("runningTasksCount > 2");
    HOLDS("runningTasksCount <= 3");
    FAILS("runningTasksCount < 3");
    HOLDS("runningTasksCount != 0");
    TRUE_ON("runningTasksCount == 0", &bare);
    HOLDS("agentVersion > 1.9.9");
    HOLDS("agentVersion >= 1.10.2");
    HOLDS("agentVersion == 1.10.2");
    HOLDS("agentVersion < 1.10.10");
    FAILS("agentVersion < 1.2");
}

static void test_registered_at(void **state)
{
    HOLDS("registeredAt == 2018-06-18");
    HOLDS("registeredAt >= 2018-06-18");
    HOLDS("registeredAt > 2018-06-17");
    FAILS("registeredAt > 2018-06-18");
    HOLDS("registeredAt < 2018-06-19");
    HOLDS("registeredAt == 2018-06-18T22:28:28Z");
    HOLDS("registeredAt == 2018-06-18T22:28:28");
    HOLDS("registeredAt == 2018-06-18T22:28:28+00:00");
    HOLDS("registeredAt == 2018-06-19T00:28:28+02:00");
    HOLDS("registeredAt > 2018-06-18T22:28:27Z");
    FAILS("registeredAt > 2018-06-18T22:28:28Z");
    HOLDS("registeredAt != 2020-01-01");
}

static void test_task_group(void **state)
{
    HOLDS("task:group == service:web");
    HOLDS("task:group == family:batch");
    FAILS("task:group == service:db");
    HOLDS("task:group != service:db");
    FAILS("task:group != service:web"); /* no task of the group */
    HOLDS("task:group in [service:db, family:batch]");
    FAILS("task:group not_in [service:db, family:batch]");
    HOLDS("task:group =~ service:.*");
    FAILS("task:group !~ service:.*");
    HOLDS("not(task:group == database)");
    TRUE_ON("task:group != service:web", &bare);
}

static void test_precedence(void **state)
{
    /* and binds tighter than or; not tighter than and */
    HOLDS("attribute:stack == dev or attribute:stack == prod and runningTasksCount == 3");
    FAILS("(attribute:stack == dev or attribute:stack == prod) and runningTasksCount == 0");
    HOLDS("attribute:stack == prod or attribute:stack == dev and runningTasksCount == 0");
    HOLDS("not attribute:stack == dev and attribute:stack == prod");
    FAILS("not (attribute:stack == prod and attribute:cores > 1)");
    HOLDS("!attribute:stack == dev && attribute:stack == prod");
    HOLDS("!(attribute:stack == dev) && (attribute:stack == prod || agentConnected == false)");
    HOLDS("not not attribute:stack == prod");
    HOLDS("attribute:stack==prod&&attribute:cores>1");
    HOLDS("attribute:stack == prod AND attribute:cores > 1 OR attribute:x exists");
    HOLDS("attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d");
    HOLDS("((((attribute:stack == prod))))");
    HOLDS("  attribute:stack == prod  ");
}

static void test_uses_tasks(void **state)
{
    struct barge_cql *q;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cql_parse("attribute:a == b or ec2InstanceId == i", &q, &err), 0);
    assert_false(barge_cql_uses_tasks(q));
    assert_string_equal(barge_cql_text(q), "attribute:a == b or ec2InstanceId == i");
    uint64_t serial = barge_cql_serial(q);
    barge_cql_free(q);
    assert_int_equal(barge_cql_parse("attribute:a == b or task:group == x", &q, &err), 0);
    assert_true(barge_cql_uses_tasks(q));
    assert_true(barge_cql_serial(q) != serial);
    barge_cql_free(q);
    assert_int_equal(barge_cql_parse("runningTasksCount == 0", &q, &err), 0);
    assert_true(barge_cql_uses_tasks(q));
    barge_cql_free(q);
}

static void test_errors(void **state)
{
    rejects("", "the expression is empty");
    rejects("   ", "the expression is empty");
    rejects("attribute:ecs.instance-type ==",
            "expected a value after '==' at position 31 in 'attribute:ecs.instance-type =='");
    rejects("attribute:ecs.instance-type == t2.small and ec2InstanceId ==",
            "expected a value after '==' at position 61 in "
            "'attribute:ecs.instance-type == t2.small and ec2InstanceId =='");
    rejects("attribute:ecs.instance-type t2.small",
            "expected an operator after 'attribute:ecs.instance-type', not 't2.small' at "
            "position 29 in 'attribute:ecs.instance-type t2.small'");
    rejects("attribute:x", "expected an operator after 'attribute:x' at position 12 in "
                           "'attribute:x'");
    rejects("hostname == a",
            "unknown subject 'hostname' (expected agentConnected, agentVersion, "
            "attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount or task:group) at "
            "position 1 in 'hostname == a'");
    rejects("attribute: == a", "'attribute:' needs an attribute name at position 1 in "
                               "'attribute: == a'");
    rejects("agentConnected > true",
            "operator '>' cannot be used with agentConnected at position 16 in "
            "'agentConnected > true'");
    rejects("ec2InstanceId exists",
            "operator 'exists' cannot be used with ec2InstanceId at position 15 in "
            "'ec2InstanceId exists'");
    rejects("runningTasksCount in [1]",
            "operator 'in' cannot be used with runningTasksCount at position 19 in "
            "'runningTasksCount in [1]'");
    rejects("runningTasksCount > many",
            "expected a whole number after '>', not 'many' at position 21 in "
            "'runningTasksCount > many'");
    rejects("registeredAt > yesterday",
            "invalid date 'yesterday' (use 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, "
            "2018-06-18T22:28:28 or 2018-06-18) at position 16 in 'registeredAt > yesterday'");
    rejects("registeredAt > 2018-13-01",
            "invalid date '2018-13-01' (use 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, "
            "2018-06-18T22:28:28 or 2018-06-18) at position 16 in 'registeredAt > 2018-13-01'");
    rejects("agentConnected == maybe",
            "agentConnected is true or false, not 'maybe' at position 19 in "
            "'agentConnected == maybe'");
    rejects("attribute:a in b", "expected '[' after 'in' at position 16 in 'attribute:a in b'");
    rejects("attribute:a in [b, ]",
            "expected a value in the list after 'in' at position 20 in 'attribute:a in [b, ]'");
    rejects("attribute:a in [b c]", "expected ',' or ']' in the list after 'in' at position 19 in "
                                    "'attribute:a in [b c]'");
    rejects("attribute:a in [b",
            "expected ',' or ']' in the list after 'in' at position 18 in 'attribute:a in [b'");
    rejects("attribute:a == 'b", "unterminated quoted value at position 16 in 'attribute:a == 'b'");
    rejects("(attribute:a == b", "expected ')' (to close the '(' at position 1) at position 18 in "
                                 "'(attribute:a == b'");
    rejects("attribute:a == b)",
            "unexpected ')' (expected 'and', 'or', ')' or the end) at position 17 in "
            "'attribute:a == b)'");
    rejects("attribute:a == b c",
            "unexpected 'c' (expected 'and', 'or', ')' or the end) at position 18 in "
            "'attribute:a == b c'");
    rejects("attribute:a == b and", "expected a subject at position 21 in 'attribute:a == b and'");
    rejects("() ", "expected a subject, not ')' at position 2 in '() '");
    rejects("not", "expected a subject at position 4 in 'not'");
    rejects("attribute:a =~ a(",
            "invalid regular expression 'a(' (Unmatched ( or \\() at position 16 "
            "in 'attribute:a =~ a('");
    rejects("attribute:a =~ (?=x)",
            "unsupported regular expression '(?=x)': barge does not support look-around and "
            "inline flags at position 16 in 'attribute:a =~ (?=x)'");
    rejects("attribute:a =~ (a)\\1",
            "unsupported regular expression '(a)\\1': barge does not support back references "
            "at position 16 in 'attribute:a =~ (a)\\1'");
    rejects("attribute:a = b",
            "expected an operator after 'attribute:a', not '=' at position 13 in "
            "'attribute:a = b'");
}

static void test_limits(void **state)
{
    char text[2100];
    /* exactly 2000 characters parses */
    snprintf(text, sizeof(text), "attribute:a == %0*d", 2000 - 15, 0);
    assert_int_equal(strlen(text), 2000);
    struct barge_cql *q = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cql_parse(text, &q, &err), 0);
    barge_cql_free(q);
    strcat(text, "0");
    rejects(text, "the expression is 2001 characters long; at most 2000 are allowed");
    /* deep nesting is refused, not a stack overflow */
    char deep[1000] = "";
    for (int i = 0; i < 150; i++)
        strcat(deep, "(");
    assert_int_equal(barge_cql_parse(deep, &q, &err), -1);
    assert_non_null(strstr(err->message, "nests more than 100 levels"));
    barge_error_free(err);
}

/* regcomp copies a repeated piece per repetition and walks nested empty
 * paths again and again, so some small patterns would compile for minutes
 * into gigabytes: they are refused up front, while ordinary repetitions
 * still work. */
static void test_regex_size(void **state)
{
    HOLDS("attribute:ecs.instance-type =~ '(t2(\\.[a-z]{2,10}){1,3}){1,2}'");
    HOLDS("attribute:cores =~ '(\\d{1,3})+'");
    HOLDS("attribute:cores =~ '1{1,}6{0,2}'");
    HOLDS("attribute:ecs.instance-type =~ (t2\\.s{1}m{1}a{1}l{2})+");
    HOLDS("attribute:ecs.instance-type =~ '((x|)t2.small)*'");
    char text[200] = "attribute:a =~ ";
    for (int i = 0; i < 16; i++)
        strcat(text, "(");
    strcat(text, "a");
    for (int i = 0; i < 16; i++)
        strcat(text, ")+");
    struct barge_cql *q = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cql_parse(text, &q, &err), -1);
    assert_non_null(strstr(err->message, "barge does not support repetitions nested this deep"));
    barge_error_free(err);
    rejects("attribute:a =~ '((((a*)+)+)+)+'",
            "unsupported regular expression '((((a*)+)+)+)+': barge does not support repeating "
            "what can match nothing at position 16 in 'attribute:a =~ '((((a*)+)+)+)+''");
    /* empty alternatives under counted repetitions (found by fuzz_cql) */
    rejects("attribute:x =~ '((y0)y|||||||||||||||||||||||||||,1}){1,15}){1,15}'", NULL);
    rejects("attribute:x =~ '(a|)+'", NULL);
    rejects("attribute:x =~ 'a|b){511,}'", NULL);
    rejects("attribute:x =~ '(a?b*)*'", NULL);
    HOLDS("attribute:ecs.instance-type =~ '(t2|m5)(\\.(small|large))?'");
    HOLDS("attribute:ecs.instance-type =~ '(t2?\\.)+small'");
    rejects("attribute:a =~ \"(a{1,200}){200}\"",
            "unsupported regular expression '(a{1,200}){200}': barge does not support nested "
            "repetitions this large at position 16 in 'attribute:a =~ \"(a{1,200}){200}\"'");
    rejects("attribute:a =~ \"x(()){1,15}\"",
            "unsupported regular expression 'x(()){1,15}': barge does not support repeating an "
            "empty group at position 16 in 'attribute:a =~ \"x(()){1,15}\"'");
    rejects("attribute:a =~ \"x(){,15}\"",
            "unsupported regular expression 'x(){,15}': barge does not support repeating an "
            "empty group at position 16 in 'attribute:a =~ \"x(){,15}\"'");
}

static void test_version_cmp(void **state)
{
    assert_true(barge_cql_version_cmp("1.10.0", "1.9.2") > 0);
    assert_true(barge_cql_version_cmp("1.9.2", "1.10.0") < 0);
    assert_int_equal(barge_cql_version_cmp("1.2.3", "1.2.3"), 0);
    assert_int_equal(barge_cql_version_cmp("1.02", "1.2"), 0);
    assert_true(barge_cql_version_cmp("1.2", "1.2.1") < 0);
    assert_true(barge_cql_version_cmp("b", "a") > 0);
    assert_true(barge_cql_version_cmp("", "0") < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equality),      cmocka_unit_test(test_missing_attribute),
        cmocka_unit_test(test_exists),        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_matches),       cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_registered_at), cmocka_unit_test(test_task_group),
        cmocka_unit_test(test_precedence),    cmocka_unit_test(test_uses_tasks),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_regex_size),    cmocka_unit_test(test_version_cmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
