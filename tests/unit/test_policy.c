/* IAM identity policies: the wildcard match, document validation and the
 * evaluation order (explicit deny, allow, implicit deny). */
/* cmocka.h needs the standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "api/policy.h"

static void test_match(void **state)
{
    (void)state;
    assert_true(barge_policy_match("ssm:Get*", "ssm:GetParameter", false));
    assert_true(barge_policy_match("ssm:get*", "ssm:GetParameter", true));
    assert_false(barge_policy_match("ssm:get*", "ssm:GetParameter", false));
    assert_true(barge_policy_match("*", "", false));
    assert_true(barge_policy_match("a*b*c", "axxbyybc", false));
    assert_false(barge_policy_match("a*b*c", "axxbyyb", false));
    assert_true(barge_policy_match("cluster/team-?", "cluster/team-a", false));
    assert_false(barge_policy_match("cluster/team-?", "cluster/team-ab", false));
    /* '[' is no bracket expression in IAM. */
    assert_true(barge_policy_match("x[1]", "x[1]", false));
    assert_false(barge_policy_match("x[1]", "x1", false));
}

static void refused(const char *doc, const char *word)
{
    struct barge_error *err = NULL;
    assert_int_equal(barge_policy_validate(doc, &err), -1);
    assert_string_equal(err->type, "MalformedPolicyDocument");
    if (!strstr(err->message, word))
        fail_msg("'%s': message '%s' lacks '%s'", doc, err->message, word);
    barge_error_free(err);
}

static void test_validate(void **state)
{
    (void)state;
    struct barge_error *err = NULL;
    assert_int_equal(
        barge_policy_validate("{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                              "\"NotAction\":[\"iam:*\"],\"NotResource\":\"arn:x\"}}",
                              &err),
        0);
    refused("[]", "object");
    refused("{\"Version\":\"1\",\"Statement\":[]}", "version");
    refused("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}]}", "Action");
    refused("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"a:b\",\"NotAction\":\"c:d\","
            "\"Resource\":\"*\"}]}",
            "exactly one");
    refused("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"a:b\",\"Resource\":\"*\","
            "\"Extra\":1}]}",
            "Extra");
}

static enum barge_policy_decision eval(const char *doc, const char *action, const char *res)
{
    json_t *docs = json_pack("[s]", doc);
    struct barge_policy_context c = {
        .source_ip = "10.1.2.3", .username = "ci", .account = "000000000000"};
    enum barge_policy_decision d = barge_policy_evaluate(docs, action, res, &c);
    json_decref(docs);
    return d;
}

static void test_evaluate(void **state)
{
    (void)state;
    const char *doc = "{\"Statement\":["
                      "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:p/app/*\"},"
                      "{\"Effect\":\"Deny\",\"Action\":\"ssm:Delete*\",\"Resource\":\"arn:p/*\"},"
                      "{\"Effect\":\"Allow\",\"Action\":\"ecs:List*\",\"Resource\":\"*\"},"
                      "{\"Effect\":\"Allow\",\"Action\":\"logs:*\",\"Resource\":\"*\","
                      "\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}}]}";
    assert_int_equal(eval(doc, "ssm:GetParameter", "arn:p/app/x"), BARGE_POLICY_ALLOW);
    assert_int_equal(eval(doc, "SSM:getparameter", "arn:p/app/x"), BARGE_POLICY_ALLOW);
    assert_int_equal(eval(doc, "ssm:GetParameter", "arn:p/other"), BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(eval(doc, "ssm:DeleteParameter", "arn:p/app/x"), BARGE_POLICY_EXPLICIT_DENY);
    /* An unknown resource: only Resource "*" allows, a matching Deny denies. */
    assert_int_equal(eval(doc, "ecs:ListClusters", NULL), BARGE_POLICY_ALLOW);
    assert_int_equal(eval(doc, "ssm:GetParameter", NULL), BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(eval(doc, "ssm:DeleteParameters", NULL), BARGE_POLICY_EXPLICIT_DENY);
    /* The context's source address (10.1.2.3) is inside 10.0.0.0/8. */
    assert_int_equal(eval(doc, "logs:GetLogEvents", "arn:l"), BARGE_POLICY_ALLOW);
    assert_int_equal(eval("{\"Statement\":{\"Effect\":\"Allow\",\"NotAction\":\"iam:*\","
                          "\"Resource\":\"*\"}}",
                          "iam:CreateUser", "arn:u"),
                     BARGE_POLICY_IMPLICIT_DENY);
}

static enum barge_policy_decision cond(const char *condition)
{
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
             "\"Condition\":%s}}",
             condition);
    return eval(doc, "ecs:ListClusters", "arn:x");
}

static void test_conditions(void **state)
{
    (void)state;
    assert_int_equal(cond("{\"IpAddress\":{\"aws:SourceIp\":[\"192.168.0.0/16\",\"10.1.2.3\"]}}"),
                     BARGE_POLICY_ALLOW);
    assert_int_equal(cond("{\"IpAddress\":{\"aws:SourceIp\":\"10.1.3.0/24\"}}"),
                     BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(cond("{\"NotIpAddress\":{\"aws:SourceIp\":\"10.1.3.0/24\"}}"),
                     BARGE_POLICY_ALLOW);
    assert_int_equal(cond("{\"StringEquals\":{\"aws:username\":\"ci\"},"
                          "\"StringLike\":{\"aws:SourceIp\":\"10.*\"}}"),
                     BARGE_POLICY_ALLOW);
    assert_int_equal(cond("{\"StringEquals\":{\"aws:username\":\"other\"}}"),
                     BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(cond("{\"Null\":{\"aws:PrincipalArn\":\"true\"}}"), BARGE_POLICY_ALLOW);
    /* Every resource and principal is of barged's one account (the CDK
     * bootstrap's roles test aws:ResourceAccount). */
    assert_int_equal(cond("{\"StringEquals\":{\"aws:ResourceAccount\":[\"000000000000\"]}}"),
                     BARGE_POLICY_ALLOW);
    assert_int_equal(cond("{\"StringEquals\":{\"aws:PrincipalAccount\":\"111111111111\"}}"),
                     BARGE_POLICY_IMPLICIT_DENY);
    /* Keys and operators barge does not know: an Allow never applies. */
    assert_int_equal(cond("{\"StringEquals\":{\"ecs:cluster\":\"x\"}}"),
                     BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(cond("{\"DateLessThan\":{\"aws:CurrentTime\":\"2100-01-01\"}}"),
                     BARGE_POLICY_IMPLICIT_DENY);
}

static const struct barge_trust_principal user = {.arn = "arn:aws:iam::000000000000:user/ci",
                                                  .account = "000000000000"};
static const struct barge_trust_principal session = {
    .arn = "arn:aws:sts::000000000000:assumed-role/deployer/s1",
    .role_arn = "arn:aws:iam::000000000000:role/deployer",
    .account = "000000000000"};
static const struct barge_trust_principal ecs_tasks = {.service = "ecs-tasks.amazonaws.com"};

static enum barge_policy_decision trust(const char *principal, const char *extra,
                                        const struct barge_trust_principal *p,
                                        const char *external_id)
{
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
             "\"Principal\":%s,\"Action\":\"sts:AssumeRole\"%s}]}",
             principal, extra);
    struct barge_policy_context c = {.external_id = external_id};
    return barge_policy_trust_evaluate(doc, "sts:AssumeRole", p, &c);
}

static void test_trust(void **state)
{
    (void)state;
    const char *root = "{\"AWS\":\"arn:aws:iam::000000000000:root\"}";
    assert_int_equal(trust(root, "", &user, NULL), BARGE_POLICY_ALLOW);
    assert_int_equal(trust(root, "", &session, NULL), BARGE_POLICY_ALLOW);
    assert_int_equal(trust("{\"AWS\":\"000000000000\"}", "", &user, NULL), BARGE_POLICY_ALLOW);
    /* Another account's root, and a service, are not the account. */
    assert_int_equal(trust("{\"AWS\":\"arn:aws:iam::111111111111:root\"}", "", &user, NULL),
                     BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(trust(root, "", &ecs_tasks, NULL), BARGE_POLICY_IMPLICIT_DENY);
    /* A user's ARN names that user only; a role's ARN its sessions. */
    const char *ci = "{\"AWS\":[\"arn:aws:iam::000000000000:user/ci\"]}";
    assert_int_equal(trust(ci, "", &user, NULL), BARGE_POLICY_ALLOW);
    assert_int_equal(trust(ci, "", &session, NULL), BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(
        trust("{\"AWS\":\"arn:aws:iam::000000000000:role/deployer\"}", "", &session, NULL),
        BARGE_POLICY_ALLOW);
    assert_int_equal(trust("{\"AWS\":\"arn:aws:iam::000000000000:user/other\"}", "", &user, NULL),
                     BARGE_POLICY_IMPLICIT_DENY);
    /* Service principals. */
    const char *svc = "{\"Service\":[\"ecs-tasks.amazonaws.com\"]}";
    assert_int_equal(trust(svc, "", &ecs_tasks, NULL), BARGE_POLICY_ALLOW);
    assert_int_equal(trust(svc, "", &user, NULL), BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(trust("{\"Service\":\"lambda.amazonaws.com\"}", "", &ecs_tasks, NULL),
                     BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(trust("\"*\"", "", &ecs_tasks, NULL), BARGE_POLICY_ALLOW);
    assert_int_equal(trust("{\"AWS\":\"*\"}", "", &user, NULL), BARGE_POLICY_ALLOW);
    /* sts:ExternalId. */
    const char *ext = ",\"Condition\":{\"StringEquals\":{\"sts:ExternalId\":\"s3cret\"}}";
    assert_int_equal(trust(root, ext, &user, "s3cret"), BARGE_POLICY_ALLOW);
    assert_int_equal(trust(root, ext, &user, "guess"), BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(trust(root, ext, &user, NULL), BARGE_POLICY_IMPLICIT_DENY);
    /* Another action is not granted, and an explicit Deny wins. */
    assert_int_equal(
        barge_policy_trust_evaluate("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\","
                                    "\"Action\":\"sts:TagSession\"}}",
                                    "sts:AssumeRole", &user, &(struct barge_policy_context){0}),
        BARGE_POLICY_IMPLICIT_DENY);
    assert_int_equal(
        barge_policy_trust_evaluate("{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\","
                                    "\"Action\":\"sts:*\"},{\"Effect\":\"Deny\",\"Principal\":"
                                    "{\"AWS\":\"arn:aws:iam::000000000000:user/ci\"},\"Action\":"
                                    "\"sts:AssumeRole\"}]}",
                                    "sts:AssumeRole", &user, &(struct barge_policy_context){0}),
        BARGE_POLICY_EXPLICIT_DENY);
    assert_int_equal(barge_policy_trust_evaluate("not json", "sts:AssumeRole", &user,
                                                 &(struct barge_policy_context){0}),
                     BARGE_POLICY_IMPLICIT_DENY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),    cmocka_unit_test(test_validate),
        cmocka_unit_test(test_evaluate), cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_trust),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
