/* Unit tests of the API model loader and input validator (src/api/model.c):
 * every embedded model loads with the right metadata, realistic requests pass,
 * each kind of violation fails with AWS's code and wording and the AWS-style
 * path, and random mutations of a valid request never crash the validator. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "api/model.h"
#include "common/json.h"

static const char *const task_definition =
    "{"
    " \"family\": \"web\","
    " \"taskRoleArn\": \"arn:aws:iam::123456789012:role/web\","
    " \"executionRoleArn\": \"arn:aws:iam::123456789012:role/ecsTaskExecutionRole\","
    " \"networkMode\": \"awsvpc\","
    " \"requiresCompatibilities\": [\"FARGATE\", \"EC2\"],"
    " \"cpu\": \"512\", \"memory\": \"1024\","
    " \"runtimePlatform\": {\"cpuArchitecture\": \"X86_64\", \"operatingSystemFamily\": \"LINUX\"},"
    " \"containerDefinitions\": [{"
    "   \"name\": \"app\", \"image\": \"nginx:1.25\", \"essential\": true,"
    "   \"cpu\": 256, \"memory\": 512, \"memoryReservation\": 256,"
    "   \"portMappings\": [{\"containerPort\": 80, \"protocol\": \"tcp\", \"name\": \"http\","
    "                       \"appProtocol\": \"http\"},"
    "                      {\"containerPort\": 443, \"hostPort\": 443, \"protocol\": \"tcp\"}],"
    "   \"environment\": [{\"name\": \"MODE\", \"value\": \"production\"}],"
    "   \"secrets\": [{\"name\": \"DB_PASSWORD\","
    "                  \"valueFrom\": \"arn:aws:ssm:us-east-1:123456789012:parameter/db\"}],"
    "   \"command\": [\"nginx\", \"-g\", \"daemon off;\"],"
    "   \"dockerLabels\": {\"team\": \"web\", \"tier\": \"front\"},"
    "   \"ulimits\": [{\"name\": \"nofile\", \"softLimit\": 65536, \"hardLimit\": 65536}],"
    "   \"healthCheck\": {\"command\": [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"],"
    "                     \"interval\": 30, \"timeout\": 5, \"retries\": 3, \"startPeriod\": 10},"
    "   \"logConfiguration\": {\"logDriver\": \"awslogs\","
    "                          \"options\": {\"awslogs-group\": \"/ecs/web\","
    "                                      \"awslogs-region\": \"us-east-1\","
    "                                      \"awslogs-stream-prefix\": \"web\"}},"
    "   \"mountPoints\": [{\"sourceVolume\": \"data\", \"containerPath\": \"/data\","
    "                      \"readOnly\": false}],"
    "   \"dependsOn\": [{\"containerName\": \"sidecar\", \"condition\": \"START\"}]"
    "  }, {"
    "   \"name\": \"sidecar\", \"image\": \"busybox\", \"essential\": false,"
    "   \"entryPoint\": [\"sh\", \"-c\"], \"command\": [\"sleep infinity\"]"
    " }],"
    " \"volumes\": [{\"name\": \"data\", \"host\": {\"sourcePath\": \"/srv/data\"}}],"
    " \"tags\": [{\"key\": \"env\", \"value\": \"prod\"}, {\"key\": \"owner\", \"value\": \"web\"}]"
    "}";

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return j;
}

/* Validates text against service/op; returns the error (NULL when valid). */
static struct barge_error *validate(const char *service, const char *op, const char *text)
{
    const struct barge_model *m = barge_model_get(service);
    assert_non_null(m);
    _cleanup_json_ json_t *input = parse(text);
    struct barge_error *err = NULL;
    int r = barge_model_validate_input(m, op, input, &err);
    if (r == 0)
        assert_null(err);
    else
        assert_non_null(err);
    return err;
}

static void expect_ok(const char *service, const char *op, const char *text)
{
    _cleanup_error_ struct barge_error *err = validate(service, op, text);
    if (err)
        fail_msg("%s %s: unexpected error: %s", service, op, err->message);
}

static void expect_fail(const char *service, const char *op, const char *text,
                        enum barge_errcode code, const char *message)
{
    _cleanup_error_ struct barge_error *err = validate(service, op, text);
    if (!err)
        fail_msg("%s %s: passed, expected: %s", service, op, message);
    assert_int_equal(err->code, code);
    assert_string_equal(err->message, message);
}

static void *get_in_thread(void *arg)
{
    return (void *)barge_model_get((const char *)arg);
}

/* Runs first, so that the models are loaded by racing threads. */
static void test_concurrent_first_use(void **state)
{
    pthread_t threads[8];
    void *got[8];
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, get_in_thread, (void *)"ssm"), 0);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(pthread_join(threads[i], &got[i]), 0);
    for (size_t i = 0; i < 8; i++) {
        assert_non_null(got[i]);
        assert_ptr_equal(got[i], got[0]);
    }
    assert_ptr_equal(barge_model_get("ssm"), got[0]);
}

static void test_load_all(void **state)
{
    static const struct {
        const char *service, *prefix, *signing, *op;
    } models[] = {
        {"ecs", "AmazonEC2ContainerServiceV20141113", "ecs", "RegisterTaskDefinition"},
        {"ssm", "AmazonSSM", "ssm", "GetParametersByPath"},
        {"secretsmanager", "secretsmanager", "secretsmanager", "GetSecretValue"},
        {"logs", "Logs_20140328", "logs", "PutLogEvents"},
        {"ecr", "AmazonEC2ContainerRegistry_V20150921", "ecr", "GetAuthorizationToken"},
        {"application-autoscaling", "AnyScaleFrontendService", "application-autoscaling",
         "RegisterScalableTarget"},
        {"cloudwatch", "GraniteServiceVersion20100801", "monitoring", "PutMetricAlarm"},
    };
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        const struct barge_model *m = barge_model_get(models[i].service);
        assert_non_null(m);
        assert_ptr_equal(barge_model_get(models[i].service), m);
        assert_string_equal(barge_model_target_prefix(m), models[i].prefix);
        assert_string_equal(barge_model_signing_name(m), models[i].signing);
        assert_true(barge_model_has_operation(m, models[i].op));
        assert_false(barge_model_has_operation(m, "NoSuchOperation"));
        assert_false(barge_model_has_operation(m, ""));
    }
    assert_null(barge_model_get("s3"));
    assert_null(barge_model_get(""));
    assert_null(barge_model_get(NULL));
}

static void test_valid_inputs(void **state)
{
    expect_ok("ecs", "RegisterTaskDefinition", task_definition);
    expect_ok("ecs", "CreateCluster", "{}");
    expect_ok("ecs", "ListClusters", "{\"maxResults\": 100}");
    expect_ok("ecs", "ListClusters", "{\"maxResults\": 100, \"nextToken\": null}");
    /* Members the model does not know are ignored, whatever they hold. */
    expect_ok("ecs", "CreateCluster", "{\"clusterName\": \"c\", \"x-extra\": {\"a\": [1, 2]}}");
    expect_ok("ssm", "GetParametersByPath", "{\"Path\": \"/app/\", \"MaxResults\": 10}");
    expect_ok("ssm", "GetParametersByPath", "{\"Path\": \"/app/\", \"MaxResults\": 1}");
    expect_ok("ecs", "RunTask",
              "{\"taskDefinition\": \"web:3\", \"count\": 2,"
              " \"capacityProviderStrategy\": [{\"capacityProvider\": \"FARGATE\","
              " \"weight\": 1000, \"base\": 0}]}");
    expect_ok("secretsmanager", "GetRandomPassword", "{\"PasswordLength\": 4096}");
    expect_ok("secretsmanager", "PutSecretValue",
              "{\"SecretId\": \"s\", \"SecretBinary\": \"aGVsbG8=\"}");
    expect_ok("secretsmanager", "PutSecretValue",
              "{\"SecretId\": \"s\", \"SecretBinary\": \"aGk\"}");
    expect_ok("logs", "PutLogEvents",
              "{\"logGroupName\": \"g\", \"logStreamName\": \"s\","
              " \"logEvents\": [{\"timestamp\": 1700000000000, \"message\": \"hi\"}]}");
    expect_ok("logs", "CreateLogGroup", "{\"logGroupName\": \"g\", \"tags\": {\"team\": \"web\"}}");
    /* Timestamps: epoch seconds, or ISO-8601 text. */
    expect_ok("ecs", "ListServiceDeployments",
              "{\"service\": \"s\", \"createdAt\": {\"after\": 1700000000,"
              " \"before\": 1700000000.5}}");
    expect_ok("ecs", "ListServiceDeployments",
              "{\"service\": \"s\", \"createdAt\": {\"after\": \"2024-01-02T03:04:05Z\","
              " \"before\": \"2024-01-02T03:04:05.123+02:00\"}}");
    expect_ok("ecs", "ListServiceDeployments",
              "{\"service\": \"s\", \"createdAt\": {\"after\": \"2024-01-02\"}}");
    /* Lengths count characters, not bytes: 128 two-byte characters fit. */
    char text[1024] = "{\"resourceArn\": \"a\", \"tags\": [{\"key\": \"";
    for (int i = 0; i < 128; i++)
        strcat(text, "\xc3\xa9");
    strcat(text, "\"}]}");
    expect_ok("ecs", "TagResource", text);
    expect_ok("ecs", "DescribeClusters", "{}");
}

static void test_missing_required(void **state)
{
    expect_fail("ecs", "RegisterTaskDefinition", "{\"containerDefinitions\": []}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value null at 'family' failed to satisfy "
                "constraint: Member must not be null");
    /* null is the same as absent. */
    expect_fail("ecs", "RegisterTaskDefinition", "{\"family\": null, \"containerDefinitions\": []}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value null at 'family' failed to satisfy "
                "constraint: Member must not be null");
    expect_fail("ecs", "RegisterTaskDefinition", "{}", BARGE_ERR_INVALID,
                "2 validation errors detected: Value null at 'family' failed to satisfy "
                "constraint: Member must not be null; Value null at 'containerDefinitions' failed "
                "to satisfy constraint: Member must not be null");
    /* Inside a list, with SSM's capitalised member names in Java-bean form. */
    expect_fail("logs", "PutLogEvents",
                "{\"logGroupName\": \"g\", \"logStreamName\": \"s\","
                " \"logEvents\": [{\"timestamp\": 1, \"message\": \"a\"}, {\"timestamp\": 2}]}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value null at 'logEvents.2.member.message' failed "
                "to satisfy constraint: Member must not be null");
    expect_fail("ssm", "GetParametersByPath", "{\"MaxResults\": 5}", BARGE_ERR_INVALID,
                "1 validation error detected: Value null at 'path' failed to satisfy "
                "constraint: Member must not be null");
}

static void test_enum(void **state)
{
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": [], \"networkMode\": \"xyz\"}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value 'xyz' at 'networkMode' failed to satisfy "
                "constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]");
    /* Case matters, and so does everything after a NUL. */
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": [], \"networkMode\": \"Host\"}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value 'Host' at 'networkMode' failed to satisfy "
                "constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]");
    expect_fail(
        "ecs", "RegisterTaskDefinition",
        "{\"family\": \"f\", \"containerDefinitions\": [], \"networkMode\": \"host\\u0000x\"}",
        BARGE_ERR_INVALID,
        "1 validation error detected: Value 'host\\u0000x' at 'networkMode' failed to "
        "satisfy constraint: Member must satisfy enum value set: [bridge, host, awsvpc, "
        "none]");
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": [],"
                " \"requiresCompatibilities\": [\"EC2\", \"LAMBDA\"]}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value 'LAMBDA' at 'requiresCompatibilities.2.member' "
                "failed to satisfy constraint: Member must satisfy enum value set: [EC2, FARGATE, "
                "EXTERNAL, MANAGED_INSTANCES]");
}

static void test_nested_paths(void **state)
{
    expect_fail(
        "ecs", "RegisterTaskDefinition",
        "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\"}, {\"name\": \"b\","
        " \"portMappings\": [{\"containerPort\": 80}, {\"containerPort\": 81,"
        " \"protocol\": \"sctp\"}]}]}",
        BARGE_ERR_INVALID,
        "1 validation error detected: Value 'sctp' at "
        "'containerDefinitions.2.member.portMappings.2.member.protocol' failed to "
        "satisfy constraint: Member must satisfy enum value set: [tcp, udp]");
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\","
                " \"portMappings\": [{}, {\"containerPort\": \"80\"}]}]}",
                BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to an Integer at "
                "'containerDefinitions.1.member.portMappings.2.member.containerPort'");
    expect_fail("ecs", "RunTask",
                "{\"taskDefinition\": \"t\", \"capacityProviderStrategy\": ["
                " {\"capacityProvider\": \"a\", \"weight\": 1},"
                " {\"capacityProvider\": \"b\", \"weight\": 1001}]}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '1001' at "
                "'capacityProviderStrategy.2.member.weight' failed to satisfy constraint: Member "
                "must have value less than or equal to 1000");
    /* Map values are reached by their key. */
    expect_fail("logs", "CreateLogGroup",
                "{\"logGroupName\": \"g\", \"tags\": {\"team\": \"web\", \"k\": null}}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value null at 'tags.k' failed to satisfy "
                "constraint: Member must not be null");
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\","
                " \"dockerLabels\": {\"a\": \"b\", \"c\": 1}}]}",
                BARGE_ERR_SERIALIZATION,
                "NUMBER_VALUE can not be converted to a String at "
                "'containerDefinitions.1.member.dockerLabels.c'");
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": [null]}", BARGE_ERR_INVALID,
                "1 validation error detected: Value null at 'containerDefinitions.1.member' "
                "failed to satisfy constraint: Member must not be null");
}

static void test_lengths(void **state)
{
    char key[200];
    memset(key, 'k', 129);
    key[129] = '\0';
    char text[512];
    snprintf(text, sizeof(text), "{\"resourceArn\": \"a\", \"tags\": [{\"key\": \"%s\"}]}", key);
    char message[512];
    snprintf(message, sizeof(message),
             "1 validation error detected: Value '%s' at 'tags.1.member.key' failed to satisfy "
             "constraint: Member must have length less than or equal to 128",
             key);
    expect_fail("ecs", "TagResource", text, BARGE_ERR_INVALID, message);

    /* 129 two-byte characters do not fit. */
    strcpy(text, "{\"resourceArn\": \"a\", \"tags\": [{\"key\": \"");
    for (int i = 0; i < 129; i++)
        strcat(text, "\xc3\xa9");
    strcat(text, "\"}]}");
    _cleanup_error_ struct barge_error *err = validate("ecs", "TagResource", text);
    assert_non_null(err);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    assert_non_null(strstr(err->message, "Member must have length less than or equal to 128"));

    expect_fail("ecs", "TagResource", "{\"resourceArn\": \"a\", \"tags\": [{\"key\": \"\"}]}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '' at 'tags.1.member.key' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1");

    /* A list too long: 51 tags, shown in Java's list form (cut short). */
    struct buf {
        char s[4096];
    } in = {"{\"resourceArn\": \"a\", \"tags\": ["};
    for (int i = 0; i < 51; i++)
        snprintf(in.s + strlen(in.s), sizeof(in.s) - strlen(in.s), "%s{\"key\": \"k%d\"}",
                 i ? ", " : "", i);
    strcat(in.s, "]}");
    _cleanup_error_ struct barge_error *err2 = validate("ecs", "TagResource", in.s);
    assert_non_null(err2);
    assert_int_equal(err2->code, BARGE_ERR_INVALID);
    assert_true(barge_str_has_prefix(err2->message,
                                     "1 validation error detected: Value '[{key=k0}, {key=k1}, "));
    assert_true(barge_str_has_suffix(err2->message,
                                     "...' at 'tags' failed to satisfy constraint: Member must "
                                     "have length less than or equal to 50"));

    /* A map's size and its keys. */
    expect_fail("logs", "CreateLogGroup", "{\"logGroupName\": \"g\", \"tags\": {}}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '{}' at 'tags' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1");
    expect_fail("logs", "CreateLogGroup", "{\"logGroupName\": \"g\", \"tags\": {\"\": \"v\"}}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '' at 'tags.' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1");
}

static void test_ranges(void **state)
{
    expect_fail("ssm", "GetParametersByPath", "{\"Path\": \"/a\", \"MaxResults\": 0}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '0' at 'maxResults' failed to satisfy "
                "constraint: Member must have value greater than or equal to 1");
    expect_fail("ssm", "GetParametersByPath", "{\"Path\": \"/a\", \"MaxResults\": 11}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '11' at 'maxResults' failed to satisfy "
                "constraint: Member must have value less than or equal to 10");
    expect_fail("secretsmanager", "GetRandomPassword", "{\"PasswordLength\": 4097}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '4097' at 'passwordLength' failed to satisfy "
                "constraint: Member must have value less than or equal to 4096");
    expect_fail("ecs", "CreateDaemon",
                "{\"daemonName\": \"d\", \"daemonTaskDefinitionArn\": \"t\","
                " \"capacityProviderArns\": [\"c\"],"
                " \"deploymentConfiguration\": {\"drainPercent\": 100.5}}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value '100.5' at "
                "'deploymentConfiguration.drainPercent' failed to satisfy constraint: Member must "
                "have value less than or equal to 100");
    /* An Integer is 32 bits wide. */
    expect_fail("ssm", "GetParametersByPath", "{\"Path\": \"/a\", \"MaxResults\": 4294967297}",
                BARGE_ERR_SERIALIZATION,
                "Numeric value (4294967297) out of range of int at 'maxResults'");
}

static void test_wrong_types(void **state)
{
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": {\"a\": 1}, \"containerDefinitions\": []}", BARGE_ERR_SERIALIZATION,
                "Start of structure or map found where not expected at 'family'");
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": {}}", BARGE_ERR_SERIALIZATION,
                "Start of structure or map found where not expected at 'containerDefinitions'");
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": [\"f\"], \"containerDefinitions\": []}", BARGE_ERR_SERIALIZATION,
                "Start of list found where not expected at 'family'");
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"family\": \"f\", \"containerDefinitions\": \"x\"}", BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to a List at 'containerDefinitions'");
    expect_fail("ecs", "ListClusters", "{\"maxResults\": \"10\"}", BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to an Integer at 'maxResults'");
    expect_fail("ecs", "ListClusters", "{\"maxResults\": 1.5}", BARGE_ERR_SERIALIZATION,
                "NUMBER_VALUE can not be converted to an Integer at 'maxResults'");
    expect_fail("ecs", "ListClusters", "{\"maxResults\": true}", BARGE_ERR_SERIALIZATION,
                "BOOLEAN_VALUE can not be converted to an Integer at 'maxResults'");
    expect_fail("ecs", "RunTask", "{\"taskDefinition\": \"t\", \"enableECSManagedTags\": \"yes\"}",
                BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to a Boolean at 'enableECSManagedTags'");
    expect_fail("ecs", "RunTask", "{\"taskDefinition\": \"t\", \"overrides\": 3}",
                BARGE_ERR_SERIALIZATION,
                "NUMBER_VALUE can not be converted to a Structure at 'overrides'");
    expect_fail("ecs", "ListServiceDeployments",
                "{\"service\": \"s\", \"createdAt\": {\"after\": \"yesterday\"}}",
                BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to a Timestamp at 'createdAt.after'");
    expect_fail("ecs", "ListServiceDeployments",
                "{\"service\": \"s\", \"createdAt\": {\"after\": \"2024-13-01T00:00:00Z\"}}",
                BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to a Timestamp at 'createdAt.after'");
    expect_fail("secretsmanager", "PutSecretValue",
                "{\"SecretId\": \"s\", \"SecretBinary\": \"not base64!\"}", BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to a Blob at 'secretBinary'");
    /* A type error wins over constraint violations found before it. */
    expect_fail("ecs", "RegisterTaskDefinition",
                "{\"networkMode\": \"xyz\", \"containerDefinitions\": 1}", BARGE_ERR_SERIALIZATION,
                "NUMBER_VALUE can not be converted to a List at 'containerDefinitions'");
    /* The top level must be an object. */
    expect_fail("ecs", "CreateCluster", "[]", BARGE_ERR_SERIALIZATION,
                "Start of list found where not expected");
    expect_fail("ecs", "CreateCluster", "\"x\"", BARGE_ERR_SERIALIZATION,
                "STRING_VALUE can not be converted to a Structure");
    expect_fail("ecs", "CreateCluster", "null", BARGE_ERR_SERIALIZATION,
                "NULL_VALUE can not be converted to a Structure");

    const struct barge_model *m = barge_model_get("ecs");
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_model_validate_input(m, "CreateCluster", NULL, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_SERIALIZATION);
    _cleanup_error_ struct barge_error *err2 = NULL;
    _cleanup_json_ json_t *empty = json_object();
    assert_int_equal(barge_model_validate_input(m, "Nope", empty, &err2), -1);
    assert_int_equal(err2->code, BARGE_ERR_UNKNOWN_OP);
}

static void test_sensitive(void **state)
{
    /* The value of a sensitive member never appears in a message. */
    size_t n = 70000;
    char *text = barge_xmalloc(n + 64);
    strcpy(text, "{\"Name\": \"n\", \"SecretString\": \"");
    size_t at = strlen(text);
    memset(text + at, 'S', n);
    strcpy(text + at + n, "\"}");
    expect_fail("secretsmanager", "CreateSecret", text, BARGE_ERR_INVALID,
                "1 validation error detected: Value at 'secretString' failed to satisfy "
                "constraint: Member must have length less than or equal to 65536");
    free(text);
    expect_fail("secretsmanager", "PutSecretValue", "{\"SecretId\": \"s\", \"SecretBinary\": \"\"}",
                BARGE_ERR_INVALID,
                "1 validation error detected: Value at 'secretBinary' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1");
    /* Nor inside a rendered value: ECS environment variables are sensitive. */
    _cleanup_error_ struct barge_error *err =
        validate("ecs", "RegisterTaskDefinition",
                 "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\","
                 " \"environment\": [{\"name\": \"PASSWORD\", \"value\": \"hunter2\"}],"
                 " \"portMappings\": [{\"protocol\": \"bad\"}]}], \"tags\": [{\"key\": \"\"}]}");
    assert_non_null(err);
    assert_null(strstr(err->message, "hunter2"));
}

static void test_many_violations(void **state)
{
    char text[4096] = "{\"resourceArn\": \"a\", \"tags\": [";
    for (int i = 0; i < 12; i++)
        strcat(text, i ? ", {\"key\": \"\"}" : "{\"key\": \"\"}");
    strcat(text, "]}");
    _cleanup_error_ struct barge_error *err = validate("ecs", "TagResource", text);
    assert_non_null(err);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    assert_true(barge_str_has_prefix(err->message, "12 validation errors detected: Value '' at "
                                                   "'tags.1.member.key' failed"));
    size_t parts = 1;
    for (const char *p = err->message; (p = strstr(p, "; ")); p += 2)
        parts++;
    assert_int_equal(parts, 10);
    assert_non_null(strstr(err->message, "'tags.10.member.key'"));
    assert_null(strstr(err->message, "'tags.11.member.key'"));
}

static void test_extremes(void **state)
{
    /* SSM's aggregators nest without limit in the model; the input cannot. */
    size_t depth = 300;
    char *text = barge_xmalloc(depth * 40 + 64);
    char *p = text;
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "{\"Aggregators\": [");
    p += sprintf(p, "{\"Expression\": \"e\"}");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "]}");
    _cleanup_error_ struct barge_error *err = validate("ssm", "GetInventory", text);
    free(text);
    assert_non_null(err);
    assert_int_equal(err->code, BARGE_ERR_SERIALIZATION);
    assert_true(barge_str_has_prefix(err->message, "Input nested too deeply at 'aggregators.1"));

    /* A huge list is walked in full. */
    _cleanup_json_ json_t *in = json_pack("{s:[]}", "clusters");
    json_t *list = json_object_get(in, "clusters");
    for (int i = 0; i < 100000; i++)
        json_array_append_new(list, json_string("c"));
    const struct barge_model *m = barge_model_get("ecs");
    _cleanup_error_ struct barge_error *err2 = NULL;
    assert_int_equal(barge_model_validate_input(m, "DescribeClusters", in, &err2), 0);
    json_array_append_new(list, json_integer(1));
    assert_int_equal(barge_model_validate_input(m, "DescribeClusters", in, &err2), -1);
    assert_string_equal(
        err2->message, "NUMBER_VALUE can not be converted to a String at 'clusters.100001.member'");

    /* A long map key and an odd one are cut and escaped in the path. */
    _cleanup_json_ json_t *labels = json_object();
    char key[1000];
    memset(key, 'x', sizeof(key));
    json_object_setn_new_nocheck(labels, key, sizeof(key), json_integer(1));
    _cleanup_json_ json_t *td =
        json_pack("{s:s, s:[{s:s, s:O}]}", "family", "f", "containerDefinitions", "name", "a",
                  "dockerLabels", labels);
    _cleanup_error_ struct barge_error *err3 = NULL;
    assert_int_equal(barge_model_validate_input(m, "RegisterTaskDefinition", td, &err3), -1);
    assert_int_equal(err3->code, BARGE_ERR_SERIALIZATION);
    assert_true(strlen(err3->message) < 400);
}

/* ---- fuzz-ish: random mutations of a valid document ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static json_t *random_value(int depth)
{
    static const char *const strings[] = {
        "", "host", "awsvpc", "a\xc3\xa9", "tcp", "FARGATE", "2024-01-01T00:00:00Z", "aGk=", "x"};
    switch (rnd(depth > 3 ? 6 : 8)) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd(2));
    case 2:
        return json_integer((json_int_t)rnd(200000) - 100000);
    case 3:
        return json_real(rnd(1000) / 7.0);
    case 4:
        return json_string(strings[rnd(sizeof(strings) / sizeof(strings[0]))]);
    case 5:
        return json_stringn("a\0b", 3);
    case 6: {
        json_t *a = json_array();
        for (uint32_t i = rnd(4); i; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        static const char *const keys[] = {"name", "image", "key", "value", "protocol", "x"};
        for (uint32_t i = rnd(4); i; i--)
            json_object_set_new(o, keys[rnd(6)], random_value(depth + 1));
        return o;
    }
    }
}

/* Replaces, removes or adds one node somewhere below v. */
static void mutate(json_t *v)
{
    if (json_is_array(v) && json_array_size(v)) {
        size_t i = rnd((uint32_t)json_array_size(v));
        switch (rnd(4)) {
        case 0:
            json_array_set_new(v, i, random_value(0));
            return;
        case 1:
            json_array_remove(v, i);
            return;
        case 2:
            json_array_append_new(v, random_value(0));
            return;
        default:
            mutate(json_array_get(v, i));
            return;
        }
    }
    if (json_is_object(v) && json_object_size(v)) {
        size_t target = rnd((uint32_t)json_object_size(v)), i = 0;
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            if (i++ != target)
                continue;
            switch (rnd(4)) {
            case 0:
                json_object_set_new(v, key, random_value(0));
                return;
            case 1:
                json_object_del(v, key);
                return;
            case 2:
                json_object_set_new(v, "extra", random_value(0));
                return;
            default:
                mutate(child);
                return;
            }
        }
    }
}

static void test_fuzz(void **state)
{
    const struct barge_model *m = barge_model_get("ecs");
    _cleanup_json_ json_t *base = parse(task_definition);
    size_t outcomes[3] = {0};
    for (int iter = 0; iter < 20000; iter++) {
        _cleanup_json_ json_t *doc = json_deep_copy(base);
        for (uint32_t k = 1 + rnd(4); k; k--)
            mutate(doc);
        _cleanup_error_ struct barge_error *err = NULL;
        int r = barge_model_validate_input(m, "RegisterTaskDefinition", doc, &err);
        if (r == 0) {
            assert_null(err);
            outcomes[0]++;
            continue;
        }
        assert_int_equal(r, -1);
        assert_non_null(err);
        assert_non_null(err->message);
        assert_true(err->code == BARGE_ERR_INVALID || err->code == BARGE_ERR_SERIALIZATION);
        outcomes[err->code == BARGE_ERR_INVALID ? 1 : 2]++;
    }
    /* The mutations should reach all three outcomes. */
    assert_true(outcomes[0] > 0 && outcomes[1] > 0 && outcomes[2] > 0);

    /* Byte-level damage to the text, where it still parses. */
    size_t len = strlen(task_definition);
    char *text = barge_xmalloc(len + 1);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(text, task_definition, len + 1);
        for (uint32_t k = 1 + rnd(3); k; k--)
            text[rnd((uint32_t)len)] = "{}[]\",:0a \\"[rnd(11)];
        _cleanup_json_ json_t *doc = json_loadb(text, len, 0, NULL);
        if (!doc)
            continue;
        _cleanup_error_ struct barge_error *err = NULL;
        barge_model_validate_input(m, "RegisterTaskDefinition", doc, &err);
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_first_use),
        cmocka_unit_test(test_load_all),
        cmocka_unit_test(test_valid_inputs),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_nested_paths),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_sensitive),
        cmocka_unit_test(test_many_violations),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
