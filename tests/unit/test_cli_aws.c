/* The CLI against AWS semantics where barged does not serve the API yet:
 * profile/credential/endpoint resolution from the shared files, and the ssm
 * and secretsmanager template functions, `logs` and verify's secret checks
 * against a stand-in that answers with the documented AWS response shapes
 * (SSM GetParameter/GetParameters, Secrets Manager DescribeSecret and
 * GetSecretValue, CloudWatch Logs FilterLogEvents). The stand-in also checks
 * that every request is SigV4-signed and records what was asked. */
#include <sys/stat.h>

#include <fcntl.h>
#include <pthread.h>
#include <string.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
// clang-format on

#include "cli/cli.h"
#include "common/json.h"
#include "http/http.h"

/* ---- the stand-in ---- */

static struct barge_http_server *server;
static int port;
static json_t *answers;  /* {"Target": {status, body}} or {"/v2/...": ...} */
static json_t *requests; /* [{"target": t, "body": {...}}] */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    const char *target = barge_http_req_header(req, "X-Amz-Target");
    const char *auth = barge_http_req_header(req, "Authorization");
    const char *key = target ? target : req->path;
    int status = 400;
    char *text = NULL;
    pthread_mutex_lock(&lock);
    json_t *a = json_object_get(answers, key);
    if (target && (!auth || !barge_str_has_prefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/"))) {
        text = barge_xstrdup("{\"__type\": \"MissingAuthenticationTokenException\"}");
    } else if (a) {
        status = (int)barge_json_int(a, "status", 200);
        text = json_dumps(json_object_get(a, "body"), JSON_COMPACT);
    } else {
        text = barge_xasprintf("{\"__type\": \"UnknownOperationException\", \"message\": \"%s\"}",
                               key);
    }
    json_t *body = req->body_len ? json_loads(req->body, 0, NULL) : NULL;
    json_array_append_new(
        requests, json_pack("{s:s, s:o}", "target", key, "body", body ? body : json_null()));
    pthread_mutex_unlock(&lock);
    barge_http_resp_set(resp, status, "application/x-amz-json-1.1", text, strlen(text));
}

static const struct barge_http_route routes[] = {
    {"", handle, 1024 * 1024, NULL, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

static void answer(const char *key, int status, const char *body)
{
    json_t *b = json_loads(body, 0, NULL);
    if (!b)
        fail_msg("bad canned body for %s", key);
    pthread_mutex_lock(&lock);
    json_object_set_new(answers, key, json_pack("{s:i, s:o}", "status", status, "body", b));
    pthread_mutex_unlock(&lock);
}

static json_t *request_to(const char *key)
{
    json_t *found = NULL;
    size_t i;
    json_t *r;
    pthread_mutex_lock(&lock);
    json_array_foreach(requests, i, r)
    {
        if (barge_streq(barge_json_str(r, "target", NULL), key))
            found = json_object_get(r, "body");
    }
    pthread_mutex_unlock(&lock);
    return found;
}

static char dir[64];
static char cwd[512];

static int setup(void **state)
{
    answers = json_object();
    requests = json_array();
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_http_start("127.0.0.1:0", routes, NULL, NULL, &server, &err) < 0)
        return -1;
    port = barge_http_port(server);
    snprintf(dir, sizeof(dir), "/tmp/barge-aws-XXXXXX");
    if (!mkdtemp(dir) || !getcwd(cwd, sizeof(cwd)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    barge_http_stop(server);
    json_decref(answers);
    json_decref(requests);
    if (chdir(cwd) < 0)
        return -1;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void clean_env(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_DEFAULT_PROFILE",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_ECS",
                                       "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
                                       "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                                       "ECSPRESSO_CONFIG"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(vars); i++)
        unsetenv(vars[i]);
    char p[256];
    snprintf(p, sizeof(p), "%s/credentials", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    snprintf(p, sizeof(p), "%s/config", dir);
    setenv("AWS_CONFIG_FILE", p, 1);
}

/* Points the process at the stand-in with test credentials. */
static void use_standin(void)
{
    clean_env();
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL", url, 1);
}

/* ---- configuration ---- */

static struct barge_aws_config *load(const struct barge_aws_opts *o)
{
    struct barge_aws_config *c = NULL;
    struct barge_error *err = NULL;
    if (barge_aws_config_load(o, &c, &err) < 0)
        fail_msg("%s", err->message);
    return c;
}

static void test_profiles(void **state)
{
    clean_env();
    write_file("credentials", "[default]\naws_access_key_id = AKDEFAULT\n"
                              "aws_secret_access_key = s0\n"
                              "[barge]\naws_access_key_id = AKBARGE\naws_secret_access_key = s1\n"
                              "[other]\naws_access_key_id = AKOTHER\naws_secret_access_key = s2\n"
                              "aws_session_token = tok\n");
    write_file("config",
               "[default]\nregion = eu-west-1\n"
               "[profile barge]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:4566\n"
               "[profile   other]\nregion = ap-northeast-1\nservices = local\n"
               "[services local]\necs =\n  endpoint_url = http://ecs.local:1\n"
               "logs =\n  endpoint_url = http://logs.local:2\n");
    /* barged's profile is preferred when nothing else is asked for. */
    struct barge_aws_opts o = {.preferred_profile = "barge"};
    struct barge_aws_config *c = load(&o);
    assert_string_equal(c->profile, "barge");
    assert_string_equal(c->access_key_id, "AKBARGE");
    assert_string_equal(c->region, "us-east-1");
    struct barge_error *err = NULL;
    char *ep = barge_aws_endpoint(c, "logs", &err);
    assert_string_equal(ep, "http://127.0.0.1:4566");
    free(ep);
    barge_aws_config_free(c);

    /* AWS_PROFILE beats the preferred profile; services sections per service. */
    setenv("AWS_PROFILE", "other", 1);
    c = load(&o);
    assert_string_equal(c->profile, "other");
    assert_string_equal(c->session_token, "tok");
    assert_string_equal(c->region, "ap-northeast-1");
    ep = barge_aws_endpoint(c, "ecs", &err);
    assert_string_equal(ep, "http://ecs.local:1");
    free(ep);
    ep = barge_aws_endpoint(c, "ssm", &err);
    assert_string_equal(ep, "https://ssm.ap-northeast-1.amazonaws.com");
    free(ep);
    /* Environment variables: service-specific beats global beats files. */
    setenv("AWS_ENDPOINT_URL", "http://global:3/", 1);
    setenv("AWS_ENDPOINT_URL_ECS", "http://ecs-env:4", 1);
    ep = barge_aws_endpoint(c, "ecs", &err);
    assert_string_equal(ep, "http://ecs-env:4");
    free(ep);
    ep = barge_aws_endpoint(c, "logs", &err);
    assert_string_equal(ep, "http://global:3");
    free(ep);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    ep = barge_aws_endpoint(c, "ecs", &err);
    assert_string_equal(ep, "https://ecs.ap-northeast-1.amazonaws.com");
    free(ep);
    barge_aws_config_free(c);
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_ECS");
    unsetenv("AWS_PROFILE");

    /* Environment credentials beat files unless --profile names one. */
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
    setenv("AWS_REGION", "sa-east-1", 1);
    c = load(&o);
    assert_string_equal(c->access_key_id, "AKENV");
    assert_string_equal(c->credentials_source, "environment");
    assert_string_equal(c->region, "sa-east-1");
    barge_aws_config_free(c);
    struct barge_aws_opts named = {
        .profile = "other", .region = "us-west-2", .endpoint_url = "http://flag:5"};
    c = load(&named);
    assert_string_equal(c->access_key_id, "AKOTHER");
    assert_string_equal(c->region, "us-west-2");
    ep = barge_aws_endpoint(c, "ecs", &err);
    assert_string_equal(ep, "http://flag:5");
    free(ep);
    barge_aws_config_free(c);

    /* A profile asked for by name must exist. */
    struct barge_aws_opts missing = {.profile = "nope"};
    assert_int_equal(barge_aws_config_load(&missing, &c, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_NOT_FOUND);
    barge_error_free(err);
    clean_env();
}

/* ---- template functions against SSM and Secrets Manager ---- */

static void test_ssm_and_secretsmanager(void **state)
{
    use_standin();
    assert_int_equal(chdir(dir), 0);
    answer("AmazonSSM.GetParameter", 200,
           "{\"Parameter\": {\"Name\": \"/app/db\", \"Type\": \"SecureString\", \"Value\": "
           "\"pw\", \"Version\": 1}}");
    struct barge_cli_app app = {0};
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_app_init(&app, false, &err), 0);
    char *out = NULL;
    if (barge_cli_template_render("{{ ssm `/app/db` }}", "t", app.funcs, &out, &err) < 0)
        fail_msg("%s", err->message);
    assert_string_equal(out, "pw");
    free(out);
    json_t *req = request_to("AmazonSSM.GetParameter");
    assert_string_equal(barge_json_str(req, "Name", ""), "/app/db");
    assert_true(barge_json_bool(req, "WithDecryption", false));
    /* An index on a plain String is an error, as ecspresso says. */
    assert_int_equal(barge_cli_template_render("{{ ssm `/app/db` 1 }}", "t", app.funcs, &out, &err),
                     -1);
    assert_non_null(strstr(err->message, "is not StringList"));
    barge_error_free(err);
    err = NULL;
    barge_cli_app_release(&app);

    answer("AmazonSSM.GetParameter", 200,
           "{\"Parameter\": {\"Name\": \"/app/subnets\", \"Type\": \"StringList\", \"Value\": "
           "\"subnet-a,subnet-b\"}}");
    memset(&app, 0, sizeof(app));
    assert_int_equal(barge_cli_app_init(&app, false, &err), 0);
    if (barge_cli_template_render("{{ ssm `/app/subnets` 1 }}", "t", app.funcs, &out, &err) < 0)
        fail_msg("%s", err->message);
    assert_string_equal(out, "subnet-b");
    free(out);
    assert_int_equal(
        barge_cli_template_render("{{ ssm `/app/subnets` }}", "t", app.funcs, &out, &err), -1);
    assert_non_null(strstr(err->message, "index of ssm parameter"));
    barge_error_free(err);
    err = NULL;

    answer("secretsmanager.DescribeSecret", 200,
           "{\"ARN\": \"arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf\", \"Name\": "
           "\"app\"}");
    if (barge_cli_template_render("{{ secretsmanager_arn `app` }}", "t", app.funcs, &out, &err) < 0)
        fail_msg("%s", err->message);
    assert_string_equal(out, "arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf");
    free(out);
    assert_string_equal(barge_json_str(request_to("secretsmanager.DescribeSecret"), "SecretId", ""),
                        "app");
    /* A missing parameter is AWS's ParameterNotFound, passed on. */
    answer("AmazonSSM.GetParameter", 400, "{\"__type\": \"ParameterNotFound\"}");
    assert_int_equal(
        barge_cli_template_render("{{ ssm `/app/missing` }}", "t", app.funcs, &out, &err), -1);
    assert_non_null(strstr(err->message, "ParameterNotFound"));
    barge_error_free(err);
    barge_cli_app_release(&app);
    clean_env();
}

/* Runs a command with stdout captured into *out. */
static int run_cmd(barge_cli_cmd_fn fn, char **argv, int argc, char **out)
{
    fflush(stdout);
    char path[256];
    snprintf(path, sizeof(path), "%s/stdout", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int saved = dup(1);
    dup2(fd, 1);
    close(fd);
    struct barge_cli_app app = {0};
    int rc = fn(&app, argc, argv);
    barge_cli_app_release(&app);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    *out = barge_read_file(path, NULL);
    return rc;
}

static void test_logs(void **state)
{
    use_standin();
    assert_int_equal(chdir(dir), 0);
    write_file("ecspresso.yml", "cluster: c1\nservice: web\ntask_definition: td.json\n");
    write_file("td.json", "{\"family\": \"web\", \"containerDefinitions\": []}");
    answer("AmazonEC2ContainerServiceV20141113.DescribeServices", 200,
           "{\"services\": [{\"serviceName\": \"web\", \"status\": \"ACTIVE\", "
           "\"taskDefinition\": \"arn:aws:ecs:us-east-1:1:task-definition/web:3\"}]}");
    answer("AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition", 200,
           "{\"taskDefinition\": {\"family\": \"web\", \"containerDefinitions\": ["
           "{\"name\": \"app\", \"logConfiguration\": {\"logDriver\": \"awslogs\", \"options\": "
           "{\"awslogs-group\": \"/ecs/web\", \"awslogs-stream-prefix\": \"web\"}}},"
           "{\"name\": \"side\"}]}}");
    answer("Logs_20140328.FilterLogEvents", 200,
           "{\"events\": [{\"eventId\": \"2\", \"timestamp\": 1700000001000, \"logStreamName\": "
           "\"web/app/task2\", \"message\": \"second\\n\"}, {\"eventId\": \"1\", \"timestamp\": "
           "1700000000000, \"logStreamName\": \"web/app/task1\", \"message\": \"first\"}]}");
    char *argv[] = {"--since", "1h", "--filter", "ERROR", "--no-color"};
    char *out = NULL;
    assert_int_equal(run_cmd(barge_cli_cmd_logs, argv, 5, &out), 0);
    /* Oldest first, named "<container>/<task>", one line each. */
    const char *first = strstr(out, "app/task1 first\n");
    const char *second = strstr(out, "app/task2 second\n");
    if (!first || !second || first > second)
        fail_msg("unexpected output:\n%s", out);
    free(out);
    json_t *req = request_to("Logs_20140328.FilterLogEvents");
    assert_string_equal(barge_json_str(req, "logGroupName", ""), "/ecs/web");
    assert_string_equal(barge_json_str(req, "logStreamNamePrefix", ""), "web/app/");
    assert_string_equal(barge_json_str(req, "filterPattern", ""), "ERROR");
    assert_true(barge_json_int(req, "startTime", 0) > 0);
    /* The service's cluster is the config's. */
    assert_string_equal(
        barge_json_str(request_to("AmazonEC2ContainerServiceV20141113.DescribeServices"), "cluster",
                       ""),
        "c1");
    clean_env();
}

static void test_verify_secrets(void **state)
{
    use_standin();
    assert_int_equal(chdir(dir), 0);
    char td[1024];
    snprintf(td, sizeof(td),
             "{\"family\": \"web\", \"containerDefinitions\": [{\"name\": \"app\", \"image\": "
             "\"127.0.0.1:%d/app:1\", \"secrets\": [{\"name\": \"DB\", \"valueFrom\": "
             "\"arn:aws:ssm:us-east-1:1:parameter/app/db\"}, {\"name\": \"GONE\", \"valueFrom\": "
             "\"/app/gone\"}, {\"name\": \"PW\", \"valueFrom\": "
             "\"arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf:password::\"}]}]}",
             port);
    write_file("td.json", td);
    write_file("ecspresso.yml", "cluster: c1\ntask_definition: td.json\n");
    answer("/v2/app/manifests/1", 200, "{}");
    answer("AmazonEC2ContainerServiceV20141113.DescribeClusters", 200,
           "{\"clusters\": [{\"clusterName\": \"c1\", \"status\": \"ACTIVE\"}]}");
    answer("secretsmanager.GetSecretValue", 200,
           "{\"ARN\": \"arn\", \"SecretString\": \"{\\\"password\\\": \\\"x\\\"}\"}");
    /* The first parameter exists, the second does not. */
    answer("AmazonSSM.GetParameters", 200,
           "{\"Parameters\": [{\"Name\": \"/app/db\", \"Value\": \"v\"}], "
           "\"InvalidParameters\": []}");
    char *argv[] = {"--no-color"};
    char *out = NULL;
    assert_int_equal(run_cmd(barge_cli_cmd_verify, argv, 1, &out), 0);
    assert_non_null(strstr(out, "Secret DB[arn:aws:ssm:us-east-1:1:parameter/app/db]\n"
                                "      --> [OK]"));
    free(out);
    /* A parameter ARN is looked up by its name. */
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(request_to("AmazonSSM.GetParameters"), "Names"), 0)),
                        "/app/gone");
    assert_string_equal(barge_json_str(request_to("secretsmanager.GetSecretValue"), "SecretId", ""),
                        "arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf");
    answer("AmazonSSM.GetParameters", 200,
           "{\"Parameters\": [], \"InvalidParameters\": [\"/app/gone\"]}");
    assert_int_equal(run_cmd(barge_cli_cmd_verify, argv, 1, &out), 1);
    assert_non_null(strstr(out, "Secret GONE[/app/gone]\n      --> [NG] parameter '/app/gone' is "
                                "not found"));
    free(out);
    /* A JSON key the secret lacks is NG too. */
    answer("secretsmanager.GetSecretValue", 200, "{\"ARN\": \"arn\", \"SecretString\": \"{}\"}");
    assert_int_equal(run_cmd(barge_cli_cmd_verify, argv, 1, &out), 1);
    assert_non_null(strstr(out, "the secret has no JSON key 'password'"));
    free(out);
    clean_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_ssm_and_secretsmanager),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_verify_secrets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
