/* CloudFormation templates (src/api/cfn_template.c): YAML short forms,
 * intrinsic functions, conditions, parameters and dependency order. */
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

#include "api/cfn.h"
#include "common/json.h"

static json_t *parse(const char *text)
{
    json_t *tpl = NULL;
    struct barge_error *err = NULL;
    int rc = barge_cfn_template_parse(text, strlen(text), &tpl, &err);
    if (rc < 0)
        fail_msg("parse: %s", err->message);
    return tpl;
}

static char *parse_error(const char *text)
{
    json_t *tpl = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cfn_template_parse(text, strlen(text), &tpl, &err), -1);
    char *msg = barge_xstrdup(err->message);
    barge_error_free(err);
    return msg;
}

static void test_yaml_short_forms(void **state)
{
    (void)state;
    json_t *tpl = parse("Resources:\n"
                        "  A:\n"
                        "    Type: AWS::Logs::LogGroup\n"
                        "    Properties:\n"
                        "      LogGroupName: !Sub '${AWS::StackName}-x'\n"
                        "      Tags:\n"
                        "        - Key: arn\n"
                        "          Value: !GetAtt B.Arn\n"
                        "        - Key: ref\n"
                        "          Value: !Ref B\n"
                        "        - Key: n\n"
                        "          Value: 0123\n");
    json_t *props =
        json_object_get(json_object_get(json_object_get(tpl, "Resources"), "A"), "Properties");
    char *s = barge_json_dump(props);
    assert_string_equal(s, "{\"LogGroupName\":{\"Fn::Sub\":\"${AWS::StackName}-x\"},\"Tags\":"
                           "[{\"Key\":\"arn\",\"Value\":{\"Fn::GetAtt\":[\"B\",\"Arn\"]}},"
                           "{\"Key\":\"ref\",\"Value\":{\"Ref\":\"B\"}},"
                           "{\"Key\":\"n\",\"Value\":\"0123\"}]}");
    free(s);
    json_decref(tpl);
    char *m = parse_error("Resources: {}\n");
    assert_string_equal(m, "Template format error: At least one Resources member must be defined.");
    free(m);
    m = parse_error("Resources:\n  A:\n    Type: T\nOutputs:\n  O: {Description: x}\n");
    assert_string_equal(m, "Template format error: Every Outputs member must contain a Value "
                           "object, the Output O does not");
    free(m);
    m = parse_error("Resources:\n  A:\n    Properties: {}\n");
    assert_string_equal(m, "Template format error: [/Resources/A] Every Resources object must "
                           "contain a Type member.");
    free(m);
}

static void test_functions(void **state)
{
    (void)state;
    json_t *params = json_pack("{s:s, s:[s,s]}", "Env", "prod", "Names", "a", "b");
    json_t *conds = json_pack("{s:b}", "IsProd", 1);
    json_t *res = json_pack("{s:{s:s, s:{s:s}}}", "G", "physical", "grp", "attrs", "Arn", "arn:g");
    json_t *mappings = json_pack("{s:{s:{s:s}}}", "M", "prod", "Size", "3");
    struct barge_cfn_eval ev = {.params = params,
                                .conditions = conds,
                                .mappings = mappings,
                                .resources = res,
                                .region = "eu-west-1",
                                .account = "000000000000",
                                .stack_name = "st",
                                .stack_id = "arn:s"};
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"Ref\": \"G\"}", "\"grp\""},
        {"{\"Fn::GetAtt\": \"G.Arn\"}", "\"arn:g\""},
        {"{\"Fn::Sub\": \"${AWS::Region}/${G}/${G.Arn}/${!Lit}\"}",
         "\"eu-west-1/grp/arn:g/${Lit}\""},
        {"{\"Fn::Sub\": [\"${X}-${Env}\", {\"X\": {\"Ref\": \"AWS::AccountId\"}}]}",
         "\"000000000000-prod\""},
        {"{\"Fn::Join\": [\",\", {\"Ref\": \"Names\"}]}", "\"a,b\""},
        {"{\"Fn::Select\": [\"1\", {\"Fn::Split\": [\"|\", \"x|y|z\"]}]}", "\"y\""},
        {"{\"Fn::If\": [\"IsProd\", 1, 2]}", "1"},
        {"{\"Fn::And\": [{\"Fn::Equals\": [{\"Ref\": \"Env\"}, \"prod\"]}, "
         "{\"Fn::Not\": [{\"Condition\": \"IsProd\"}]}]}",
         "false"},
        {"{\"Fn::FindInMap\": [\"M\", {\"Ref\": \"Env\"}, \"Size\"]}", "\"3\""},
        {"{\"Fn::GetAZs\": \"\"}", "[\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]"},
        {"{\"Fn::Base64\": \"hi\"}", "\"aGk=\""},
        {"{\"a\": {\"Ref\": \"AWS::NoValue\"}, \"b\": [1, {\"Ref\": \"AWS::NoValue\"}]}",
         "{\"b\": [1]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *node = json_loads(cases[i].in, JSON_DECODE_ANY, NULL);
        struct barge_error *err = NULL;
        json_t *v = barge_cfn_eval(&ev, node, &err);
        if (!v)
            fail_msg("%s: %s", cases[i].in, err->message);
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        assert_string_equal(s, cases[i].out);
        free(s);
        json_decref(v);
        json_decref(node);
    }
    json_t *bad = json_pack("{s:[s,s]}", "Fn::GetAtt", "G", "Nope");
    struct barge_error *err = NULL;
    assert_null(barge_cfn_eval(&ev, bad, &err));
    assert_string_equal(err->message,
                        "Template error: resource G does not support attribute type Nope in "
                        "Fn::GetAtt");
    barge_error_free(err);
    json_decref(bad);
    json_decref(params);
    json_decref(conds);
    json_decref(res);
    json_decref(mappings);
}

static void test_order_and_parameters(void **state)
{
    (void)state;
    json_t *tpl = parse("{\"Parameters\": {\"P\": {\"Type\": \"Number\", \"Default\": 3},"
                        "  \"L\": {\"Type\": \"CommaDelimitedList\"}},"
                        " \"Conditions\": {\"C\": {\"Fn::Equals\": [{\"Ref\": \"P\"}, \"4\"]}},"
                        " \"Resources\": {"
                        "  \"C1\": {\"Type\": \"T\", \"Properties\": {\"X\": {\"Fn::Sub\": "
                        "\"${B1.Arn}\"}}},"
                        "  \"B1\": {\"Type\": \"T\", \"DependsOn\": \"A1\"},"
                        "  \"A1\": {\"Type\": \"T\", \"Properties\": {\"Y\": {\"Ref\": \"P\"}}},"
                        "  \"Off\": {\"Type\": \"T\", \"Condition\": \"C\"}}}");
    json_t *given = json_pack("[{s:s, s:s}]", "ParameterKey", "L", "ParameterValue", "x, y");
    json_t *values = NULL, *listed = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cfn_parameters(tpl, given, NULL, &values, &listed, &err), 0);
    assert_string_equal(barge_json_str(values, "P", ""), "3");
    json_t *list = barge_cfn_param_value("CommaDelimitedList", barge_json_str(values, "L", ""));
    char *s = json_dumps(list, 0);
    assert_string_equal(s, "[\"x\", \"y\"]");
    free(s);
    json_t *conds = NULL;
    json_t *pv = json_pack("{s:s}", "P", "3");
    struct barge_cfn_eval ev = {.params = pv, .region = "r", .account = "a"};
    assert_int_equal(barge_cfn_conditions(&ev, tpl, &conds, &err), 0);
    json_t *order = NULL;
    assert_int_equal(barge_cfn_order(tpl, conds, &order, &err), 0);
    s = json_dumps(order, 0);
    assert_string_equal(s, "[\"A1\", \"B1\", \"C1\"]");
    free(s);
    json_t *none = json_array();
    json_t *v2 = NULL, *l2 = NULL;
    json_t *bad = json_pack("[{s:s, s:s}]", "ParameterKey", "P", "ParameterValue", "5");
    assert_int_equal(barge_cfn_parameters(tpl, bad, NULL, &v2, &l2, &err), -1);
    assert_string_equal(err->message, "Parameters: [L] must have values");
    barge_error_free(err);
    err = NULL;
    json_t *bad2 = json_pack("[{s:s, s:s}, {s:s, s:s}]", "ParameterKey", "P", "ParameterValue", "x",
                             "ParameterKey", "L", "ParameterValue", "");
    assert_int_equal(barge_cfn_parameters(tpl, bad2, NULL, &v2, &l2, &err), -1);
    assert_string_equal(err->message, "Parameter 'P' must be a number");
    barge_error_free(err);
    json_decref(bad);
    json_decref(bad2);
    json_decref(none);
    json_decref(order);
    json_decref(conds);
    json_decref(pv);
    json_decref(list);
    json_decref(values);
    json_decref(listed);
    json_decref(given);
    json_decref(tpl);

    json_t *cyc = parse("{\"Resources\": {\"A\": {\"Type\": \"T\", \"Properties\": {\"X\": "
                        "{\"Ref\": \"B\"}}}, \"B\": {\"Type\": \"T\", \"Properties\": {\"X\": "
                        "{\"Fn::GetAtt\": [\"A\", \"Arn\"]}}}}}");
    json_t *empty = json_object();
    err = NULL;
    assert_int_equal(barge_cfn_order(cyc, empty, &order, &err), -1);
    assert_string_equal(err->message, "Circular dependency between resources: [A, B]");
    barge_error_free(err);
    json_decref(empty);
    json_decref(cyc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_short_forms),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_order_and_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
