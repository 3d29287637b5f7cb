/* Unit tests of the query protocol codec (src/api/query.c) on CloudWatch's
 * model: form keys become the JSON the handlers see (lists, nested lists of
 * structures, maps, scalars by type, timestamps, escapes, unknown keys), bad
 * values are refused naming the parameter, and answers are wrapped and
 * encoded as XML in the monitoring namespace. */
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "api/api.h"
#include "api/model.h"
#include "common/json.h"

static json_t *decode(const char *op, const char *form)
{
    json_t *out = NULL;
    struct barge_error *err = NULL;
    int r =
        barge_api_query_decode(barge_model_get("cloudwatch"), op, form, strlen(form), &out, &err);
    if (r < 0)
        fail_msg("decode failed: %s", err->message);
    return out;
}

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal((json_t *)got, want)) {
        char *g = barge_json_dump(got);
        fail_msg("got %s, want %s", g, want_text);
    }
    json_decref(want);
}

static void test_decode_alarm(void **state)
{
    json_t *in = decode("PutMetricAlarm",
                        "Action=PutMetricAlarm&Version=2010-08-01&AlarmName=cpu+high%21"
                        "&MetricName=CPUUtilization&Namespace=AWS%2FECS&Statistic=Average"
                        "&Period=60&EvaluationPeriods=3&Threshold=75.5"
                        "&ComparisonOperator=GreaterThanThreshold&ActionsEnabled=false"
                        "&Dimensions.member.2.Name=ServiceName&Dimensions.member.2.Value=web"
                        "&Dimensions.member.1.Name=ClusterName&Dimensions.member.1.Value=prod"
                        "&AlarmActions.member.1=arn%3Aaws%3Aautoscaling%3Ax&NoSuchMember=1"
                        "&OKActions=");
    assert_json(in, "{\"AlarmName\": \"cpu high!\", \"MetricName\": \"CPUUtilization\","
                    " \"Namespace\": \"AWS/ECS\", \"Statistic\": \"Average\", \"Period\": 60,"
                    " \"EvaluationPeriods\": 3, \"Threshold\": 75.5,"
                    " \"ComparisonOperator\": \"GreaterThanThreshold\", \"ActionsEnabled\": false,"
                    " \"Dimensions\": [{\"Name\": \"ClusterName\", \"Value\": \"prod\"},"
                    "                {\"Name\": \"ServiceName\", \"Value\": \"web\"}],"
                    " \"AlarmActions\": [\"arn:aws:autoscaling:x\"], \"OKActions\": []}");
    assert_int_equal(
        barge_model_validate_input(barge_model_get("cloudwatch"), "PutMetricAlarm", in, NULL), 0);
    json_decref(in);
}

static void test_decode_times_and_maps(void **state)
{
    json_t *in =
        decode("GetMetricStatistics", "Namespace=AWS%2FECS&MetricName=m&Period=60"
                                      "&StartTime=2026-11-29T03%3A00%3A00Z"
                                      "&EndTime=2026-11-29T04%3A00%3A00.500%2B01%3A00"
                                      "&Statistics.member.1=Average&Statistics.member.2=Maximum");
    assert_json(in, "{\"Namespace\": \"AWS/ECS\", \"MetricName\": \"m\", \"Period\": 60,"
                    " \"StartTime\": 1795921200.0, \"EndTime\": 1795921200.5,"
                    " \"Statistics\": [\"Average\", \"Maximum\"]}");
    json_decref(in);
    in = decode("PutMetricData",
                "Namespace=n&EntityMetricData.member.1.Entity.KeyAttributes.entry.1.key=Type"
                "&EntityMetricData.member.1.Entity.KeyAttributes.entry.1.value=Service"
                "&EntityMetricData.member.1.Entity.KeyAttributes.entry.2.key=Name"
                "&EntityMetricData.member.1.Entity.KeyAttributes.entry.2.value=web"
                "&EntityMetricData.member.1.MetricData.member.1.Values.member.1=1.5");
    assert_json(in, "{\"Namespace\": \"n\", \"EntityMetricData\": [{\"Entity\": {\"KeyAttributes\":"
                    " {\"Type\": \"Service\", \"Name\": \"web\"}}, \"MetricData\": [{\"Values\":"
                    " [1.5]}]}]}");
    json_decref(in);
}

static void test_decode_errors(void **state)
{
    static const char *const bad[] = {
        "AlarmName=a&Period=sixty",
        "AlarmName=a&Threshold=1e",
        "AlarmName=a&ActionsEnabled=yes",
        "AlarmName=a&Dimensions.member.0.Name=x",
        "AlarmName=a&Dimensions.member.x.Name=x",
        "AlarmName=a&Dimensions.member",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *out = NULL;
        struct barge_error *err = NULL;
        assert_int_equal(barge_api_query_decode(barge_model_get("cloudwatch"), "PutMetricAlarm",
                                                bad[i], strlen(bad[i]), &out, &err),
                         -1);
        assert_int_equal(err->code, BARGE_ERR_SERIALIZATION);
        assert_non_null(strstr(err->message, "for parameter "));
        barge_error_free(err);
    }
    json_t *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_api_query_decode(barge_model_get("cloudwatch"), "PutMetricAlarm",
                                            "Period=sixty", 12, &out, &err),
                     -1);
    assert_string_equal(err->message, "Value 'sixty' for parameter Period is not a valid integer.");
    barge_error_free(err);
}

static void test_encode(void **state)
{
    json_t *out = json_loads("{\"MetricAlarms\": [{\"AlarmName\": \"a<b>&c\", \"Period\": 60,"
                             " \"Threshold\": 50.0, \"ActionsEnabled\": true,"
                             " \"StateUpdatedTimestamp\": 1795921200.25, \"_internal\": 1,"
                             " \"AlarmActions\": [\"x\", \"y\"], \"OKActions\": [],"
                             " \"Dimensions\": [{\"Name\": \"ClusterName\", \"Value\": \"p\"}]}],"
                             " \"NextToken\": \"t\"}",
                             0, NULL);
    char *xml =
        barge_api_query_encode(barge_model_get("cloudwatch"), "DescribeAlarms", out, "req-1");
    assert_string_equal(
        xml, "<DescribeAlarmsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
             "<DescribeAlarmsResult><MetricAlarms><member><ActionsEnabled>true</ActionsEnabled>"
             "<AlarmActions><member>x</member><member>y</member></AlarmActions>"
             "<AlarmName>a&lt;b&gt;&amp;c</AlarmName>"
             "<Dimensions><member><Name>ClusterName</Name><Value>p</Value></member></Dimensions>"
             "<OKActions></OKActions><Period>60</Period>"
             "<StateUpdatedTimestamp>2026-11-29T03:00:00.250Z</StateUpdatedTimestamp>"
             "<Threshold>50</Threshold></member></MetricAlarms><NextToken>t</NextToken>"
             "</DescribeAlarmsResult><ResponseMetadata><RequestId>req-1</RequestId>"
             "</ResponseMetadata></DescribeAlarmsResponse>\n");
    free(xml);
    json_decref(out);
    /* An operation without output: only the metadata. */
    xml = barge_api_query_encode(barge_model_get("cloudwatch"), "PutMetricAlarm", NULL, "r");
    assert_string_equal(xml, "<PutMetricAlarmResponse "
                             "xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
                             "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                             "</PutMetricAlarmResponse>\n");
    free(xml);
    /* A map and doubles that need every digit. */
    out = json_loads("{\"Datapoints\": [{\"Average\": 0.1, \"ExtendedStatistics\": {\"p99\": "
                     "33.333333333333336}}]}",
                     0, NULL);
    xml = barge_api_query_encode(barge_model_get("cloudwatch"), "GetMetricStatistics", out, "r");
    assert_non_null(strstr(xml, "<Datapoints><member><Average>0.1</Average><ExtendedStatistics>"
                                "<entry><key>p99</key><value>33.333333333333336</value></entry>"
                                "</ExtendedStatistics></member></Datapoints>"));
    free(xml);
    json_decref(out);
}

/* EC2's variant: capitalised locationNames and flattened lists in, no
 * result wrapper and a requestId out. */
static void test_ec2(void **state)
{
    const struct barge_model *m = barge_model_get("ec2");
    const char form[] = "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1&VpcId.2=vpc-2&"
                        "Filter.1.Name=tag%3AName&Filter.1.Value.1=a&Filter.1.Value.2=b&"
                        "DryRun=false&member.1=x";
    json_t *in = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_api_query_decode(m, "DescribeVpcs", form, strlen(form), &in, &err), 0);
    assert_json(in, "{\"VpcIds\": [\"vpc-1\", \"vpc-2\"], \"DryRun\": false,"
                    " \"Filters\": [{\"Name\": \"tag:Name\", \"Values\": [\"a\", \"b\"]}]}");
    json_decref(in);
    json_t *out = json_loads("{\"Vpcs\": [{\"VpcId\": \"vpc-1\", \"IsDefault\": true,"
                             " \"Tags\": [{\"Key\": \"k\", \"Value\": \"v\"}]}]}",
                             0, NULL);
    char *xml = barge_api_query_encode(m, "DescribeVpcs", out, "r");
    assert_string_equal(xml, "<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/"
                             "2016-11-15\"><requestId>r</requestId><vpcSet><item>"
                             "<isDefault>true</isDefault><tagSet><item><key>k</key>"
                             "<value>v</value></item></tagSet><vpcId>vpc-1</vpcId></item>"
                             "</vpcSet></DescribeVpcsResponse>\n");
    free(xml);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_alarm),  cmocka_unit_test(test_decode_times_and_maps),
        cmocka_unit_test(test_decode_errors), cmocka_unit_test(test_encode),
        cmocka_unit_test(test_ec2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
