/* docker-compose import: compose keys to container definitions, ecs-params,
 * interpolation, and the warnings for what ECS cannot express. */
#include <sys/stat.h>

#include <string.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
// clang-format on

#include "cli/compose.h"
#include "cli/defs.h"
#include "common/json.h"

static char dir[64];
static json_t *warnings;

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/barge-compose-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *write_file(const char *name, const char *text)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void on_warn(void *ud, const char *m)
{
    json_array_append_new(warnings, json_string(m));
}

static bool warned(const char *needle)
{
    size_t i;
    json_t *w;
    json_array_foreach(warnings, i, w)
    {
        if (strstr(json_string_value(w), needle))
            return true;
    }
    return false;
}

static json_t *container(json_t *td, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, c)
    {
        if (barge_streq(barge_json_str(c, "name", NULL), name))
            return c;
    }
    fail_msg("no container %s", name);
    return NULL;
}

static void convert(const char *file, const char *params, json_t **td, json_t **sd)
{
    warnings = json_array();
    const char *files[] = {file};
    struct barge_cli_compose_opts o = {files, 1, params, "My App!", on_warn, NULL};
    char *project = NULL;
    struct barge_error *err = NULL;
    if (barge_cli_compose_convert(&o, td, sd, &project, &err) < 0)
        fail_msg("%s", err->message);
    assert_string_equal(project, "myapp");
    free(project);
}

static void test_services(void **state)
{
    setenv("BARGE_C_TAG", "1.2", 1);
    unsetenv("BARGE_C_NONE");
    char *envf = write_file("api.env", "# comment\nFROM_FILE=1\nexport QUOTED=\"a b\"\nA=file\n");
    free(envf);
    free(write_file(".env", "DOTENV_PORT=9000\n"));
    char *f = write_file(
        "docker-compose.yml",
        "services:\n"
        "  web:\n"
        "    image: nginx:${BARGE_C_TAG}\n"
        "    command: sh -c 'echo \"hi there\"; exec nginx'\n"
        "    entrypoint: [\"/bin/entry\", \"--x\"]\n"
        "    ports: [\"80\", \"8080:8080\", \"127.0.0.1:${DOTENV_PORT}:90/udp\", "
        "\"7000-7001:7000-7001\", {target: 443, published: 8443, protocol: tcp}]\n"
        "    environment: {A: env, N: 3, DEF: \"${BARGE_C_NONE:-dflt}\", COST: \"$$5\"}\n"
        "    env_file: api.env\n"
        "    mem_limit: 512m\n"
        "    mem_reservation: 128M\n"
        "    cpu_shares: 256\n"
        "    healthcheck: {test: curl -f localhost, interval: 1m30s, timeout: 5s, retries: 3, "
        "start_period: 10s}\n"
        "    ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}\n"
        "    cap_add: [CAP_SYS_ADMIN]\n"
        "    cap_drop: [NET_RAW]\n"
        "    tmpfs: [\"/run:size=64m,noexec\"]\n"
        "    volumes: [\"./html:/usr/share/nginx/html:ro\", \"data:/data\", \"/anon\"]\n"
        "    labels: [\"com.example=1\"]\n"
        "    logging: {driver: awslogs, options: {awslogs-group: /ecs/web}}\n"
        "    user: \"1000\"\n"
        "    working_dir: /srv\n"
        "    stop_grace_period: 1m\n"
        "    depends_on: {db: {condition: service_healthy}}\n"
        "    build: .\n"
        "    networks: [front]\n"
        "    deploy: {replicas: 3, placement: {}}\n"
        "  db:\n"
        "    image: postgres\n"
        "    healthcheck: {test: [\"CMD\", \"pg_isready\"]}\n"
        "volumes: {data: {}}\n"
        "networks: {front: {}}\n");
    json_t *td, *sd;
    convert(f, NULL, &td, &sd);
    free(f);
    assert_string_equal(barge_json_str(td, "family", ""), "myapp");
    assert_string_equal(barge_json_str(td, "networkMode", ""), "bridge");
    assert_int_equal(barge_json_int(sd, "desiredCount", 0), 3);
    json_t *web = container(td, "web");
    assert_string_equal(barge_json_str(web, "image", ""), "nginx:1.2");
    json_t *cmd = json_object_get(web, "command");
    assert_int_equal(json_array_size(cmd), 3);
    assert_string_equal(json_string_value(json_array_get(cmd, 2)), "echo \"hi there\"; exec nginx");
    assert_string_equal(json_string_value(json_array_get(json_object_get(web, "entryPoint"), 1)),
                        "--x");
    json_t *pm = json_object_get(web, "portMappings");
    assert_int_equal(json_array_size(pm), 6);
    assert_int_equal(barge_json_int(json_array_get(pm, 0), "hostPort", -1), 0);
    assert_int_equal(barge_json_int(json_array_get(pm, 1), "hostPort", -1), 8080);
    assert_int_equal(barge_json_int(json_array_get(pm, 2), "hostPort", -1), 9000);
    assert_string_equal(barge_json_str(json_array_get(pm, 2), "protocol", ""), "udp");
    assert_int_equal(barge_json_int(json_array_get(pm, 4), "containerPort", -1), 7001);
    assert_int_equal(barge_json_int(json_array_get(pm, 5), "hostPort", -1), 8443);
    assert_true(warned("host IP"));
    /* environment beats env_file; values are strings. */
    json_t *env = json_object_get(web, "environment");
    char *envs = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(strstr(envs, "{\"name\":\"A\",\"value\":\"env\"}"));
    assert_non_null(strstr(envs, "{\"name\":\"N\",\"value\":\"3\"}"));
    assert_non_null(strstr(envs, "{\"name\":\"DEF\",\"value\":\"dflt\"}"));
    assert_non_null(strstr(envs, "{\"name\":\"COST\",\"value\":\"$5\"}"));
    assert_non_null(strstr(envs, "{\"name\":\"QUOTED\",\"value\":\"a b\"}"));
    assert_non_null(strstr(envs, "{\"name\":\"FROM_FILE\",\"value\":\"1\"}"));
    free(envs);
    assert_int_equal(barge_json_int(web, "memory", 0), 512);
    assert_int_equal(barge_json_int(web, "memoryReservation", 0), 128);
    assert_int_equal(barge_json_int(web, "cpu", 0), 256);
    json_t *hc = json_object_get(web, "healthCheck");
    assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "command"), 0)),
                        "CMD-SHELL");
    assert_int_equal(barge_json_int(hc, "interval", 0), 90);
    assert_int_equal(barge_json_int(hc, "startPeriod", 0), 10);
    json_t *lp = json_object_get(web, "linuxParameters");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(lp, "capabilities"), "add"), 0)),
                        "SYS_ADMIN");
    json_t *tmpfs = json_array_get(json_object_get(lp, "tmpfs"), 0);
    assert_int_equal(barge_json_int(tmpfs, "size", 0), 64);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(tmpfs, "mountOptions"), 0)), "noexec");
    assert_int_equal(json_array_size(json_object_get(web, "ulimits")), 2);
    json_t *mps = json_object_get(web, "mountPoints");
    assert_int_equal(json_array_size(mps), 3);
    assert_true(json_is_true(json_object_get(json_array_get(mps, 0), "readOnly")));
    json_t *vols = json_object_get(td, "volumes");
    assert_int_equal(json_array_size(vols), 3);
    const char *host =
        barge_json_str(json_object_get(json_array_get(vols, 0), "host"), "sourcePath", "");
    assert_true(host[0] == '/' && barge_str_has_suffix(host, "/html"));
    assert_string_equal(barge_json_str(json_object_get(web, "dockerLabels"), "com.example", ""),
                        "1");
    assert_string_equal(barge_json_str(json_object_get(web, "logConfiguration"), "logDriver", ""),
                        "awslogs");
    assert_string_equal(barge_json_str(web, "user", ""), "1000");
    assert_string_equal(barge_json_str(web, "workingDirectory", ""), "/srv");
    assert_int_equal(barge_json_int(web, "stopTimeout", 0), 60);
    json_t *dep = json_array_get(json_object_get(web, "dependsOn"), 0);
    assert_string_equal(barge_json_str(dep, "containerName", ""), "db");
    assert_string_equal(barge_json_str(dep, "condition", ""), "HEALTHY");
    /* Unsupported keys are named, not silently dropped. */
    assert_true(warned("service 'web': 'build' is not supported"));
    assert_true(warned("service 'web': 'networks' is not supported"));
    assert_true(warned("deploy.placement is not supported"));
    assert_true(warned("top-level 'networks' is not supported"));
    /* ecs-cli's default memory when none is given. */
    json_t *db = container(td, "db");
    assert_int_equal(barge_json_int(db, "memory", 0), 512);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(db, "healthCheck"), "command"), 0)),
                        "CMD");
    json_decref(td);
    json_decref(sd);
    json_decref(warnings);
}

static void test_ecs_params(void **state)
{
    char *f = write_file("c2.yml", "version: '3'\n"
                                   "services:\n"
                                   "  app:\n"
                                   "    image: app\n"
                                   "    ports: [\"8080:80\"]\n"
                                   "  sidecar:\n"
                                   "    image: side\n");
    char *p = write_file("ecs-params.yml",
                         "version: 1\n"
                         "task_definition:\n"
                         "  ecs_network_mode: awsvpc\n"
                         "  task_execution_role: arn:aws:iam::1:role/exec\n"
                         "  task_size: {cpu_limit: 512, mem_limit: 1GB}\n"
                         "  services:\n"
                         "    sidecar:\n"
                         "      essential: false\n"
                         "      secrets: [{value_from: /app/key, name: KEY}]\n"
                         "      depends_on: [{container_name: app, condition: START}]\n"
                         "run_params:\n"
                         "  network_configuration:\n"
                         "    awsvpc_configuration: {subnets: [s-1], security_groups: [sg-1], "
                         "assign_public_ip: ENABLED}\n"
                         "  task_placement:\n"
                         "    constraints: [{type: memberOf, expression: 'attribute:x == y'}]\n");
    json_t *td, *sd;
    convert(f, p, &td, &sd);
    free(f);
    free(p);
    assert_string_equal(barge_json_str(td, "networkMode", ""), "awsvpc");
    assert_string_equal(barge_json_str(td, "cpu", ""), "512");
    assert_string_equal(barge_json_str(td, "memory", ""), "1024");
    assert_string_equal(barge_json_str(td, "executionRoleArn", ""), "arn:aws:iam::1:role/exec");
    json_t *app = container(td, "app");
    /* awsvpc publishes the container port itself. */
    json_t *pm = json_array_get(json_object_get(app, "portMappings"), 0);
    assert_int_equal(barge_json_int(pm, "hostPort", 0), 80);
    assert_true(warned("host port 8080 ignored"));
    /* With a task memory size, containers need none of their own. */
    assert_null(json_object_get(app, "memory"));
    json_t *side = container(td, "sidecar");
    assert_true(json_is_false(json_object_get(side, "essential")));
    assert_string_equal(
        barge_json_str(json_array_get(json_object_get(side, "secrets"), 0), "valueFrom", ""),
        "/app/key");
    json_t *awsvpc =
        json_object_get(json_object_get(sd, "networkConfiguration"), "awsvpcConfiguration");
    assert_string_equal(barge_json_str(awsvpc, "assignPublicIp", ""), "ENABLED");
    assert_int_equal(json_array_size(json_object_get(sd, "placementConstraints")), 1);
    json_decref(td);
    json_decref(sd);
    json_decref(warnings);
}

static void test_errors_and_sizes(void **state)
{
    char *f = write_file("bad.yml", "services:\n  x:\n    build: .\n");
    const char *files[] = {f};
    struct barge_cli_compose_opts o = {files, 1, NULL, NULL, NULL, NULL};
    json_t *td, *sd;
    char *project;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_compose_convert(&o, &td, &sd, &project, &err), -1);
    assert_non_null(strstr(err->message, "has no image"));
    barge_error_free(err);
    err = NULL;
    free(f);
    f = write_file("req.yml", "services:\n  x:\n    image: ${BARGE_C_NONE:?set it}\n");
    files[0] = f;
    assert_int_equal(barge_cli_compose_convert(&o, &td, &sd, &project, &err), -1);
    assert_non_null(strstr(err->message, "BARGE_C_NONE"));
    barge_error_free(err);
    free(f);

    json_t *v = json_string("1.5g");
    assert_int_equal(barge_cli_compose_bytes(v), 1610612736LL);
    json_decref(v);
    v = json_string("64MiB");
    assert_int_equal(barge_cli_compose_bytes(v), 64LL << 20);
    json_decref(v);
    v = json_integer(1024);
    assert_int_equal(barge_cli_compose_bytes(v), 1024);
    json_decref(v);
    v = json_string("lots");
    assert_int_equal(barge_cli_compose_bytes(v), -1);
    json_decref(v);
}

/* A version 1 file: services at the top, log_driver/log_opt, volumes_from. */
static void test_version1_and_volumes_from(void **state)
{
    char *f = write_file("v1.yml", "web:\n"
                                   "  image: nginx\n"
                                   "  volumes_from: [data:ro, 'container:logs']\n"
                                   "  log_driver: syslog\n"
                                   "  log_opt: {tag: web}\n"
                                   "data:\n"
                                   "  image: busybox\n"
                                   "  volumes: [/srv]\n"
                                   "logs:\n"
                                   "  image: busybox\n");
    json_t *td, *sd;
    convert(f, NULL, &td, &sd);
    assert_int_equal(json_array_size(json_object_get(td, "containerDefinitions")), 3);
    json_t *web = container(td, "web");
    json_t *vf = json_object_get(web, "volumesFrom");
    assert_int_equal(json_array_size(vf), 2);
    assert_string_equal(barge_json_str(json_array_get(vf, 0), "sourceContainer", ""), "data");
    assert_true(barge_json_bool(json_array_get(vf, 0), "readOnly", false));
    assert_string_equal(barge_json_str(json_array_get(vf, 1), "sourceContainer", ""), "logs");
    assert_false(barge_json_bool(json_array_get(vf, 1), "readOnly", true));
    json_t *lc = json_object_get(web, "logConfiguration");
    assert_string_equal(barge_json_str(lc, "logDriver", ""), "syslog");
    assert_string_equal(barge_json_str(json_object_get(lc, "options"), "tag", ""), "web");
    assert_false(warned("not supported"));
    json_decref(td);
    json_decref(sd);
    json_decref(warnings);
    free(f);
}

static void expect_refusal(const char *text, const char *message)
{
    char *f = write_file("refused.yml", text);
    const char *files[] = {f};
    struct barge_cli_compose_opts o = {files, 1, NULL, NULL, NULL, NULL};
    json_t *td = NULL, *sd = NULL;
    char *project = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_compose_convert(&o, &td, &sd, &project, &err), -1);
    assert_null(td);
    if (!strstr(err->message, message))
        fail_msg("'%s' does not say '%s'", err->message, message);
    barge_error_free(err);
    free(f);
}

static void test_refusals(void **state)
{
    expect_refusal("services:\n  db:\n    image: postgres\n    volumes: ['pg:/var/lib/pg']\n"
                   "volumes:\n  pg:\n    external: true\n",
                   "volume 'pg' is external");
    expect_refusal("version: '2'\nservices:\n  db:\n    image: postgres\n"
                   "volumes:\n  pg:\n    external: {name: shared}\n",
                   "volume 'pg' is external");
    expect_refusal("services:\n  web:\n    image: nginx\n    logging: syslog\n",
                   "logging must be a mapping");
    expect_refusal("services:\n  web:\n    image: nginx\n    logging: {driver: [a]}\n",
                   "logging.driver must be a driver name");
    expect_refusal("services:\n  web:\n    image: nginx\n    logging: {options: {tag: x}}\n",
                   "need a driver");
    expect_refusal("services:\n  web:\n    image: nginx\n"
                   "    logging: {driver: syslog, options: [tag=x]}\n",
                   "logging.options must be a mapping");
    expect_refusal("services:\n  web:\n    image: nginx\n"
                   "    logging: {driver: syslog, options: {tag: {a: b}}}\n",
                   "logging.options.tag must be a string");
    expect_refusal("services:\n  web:\n    image: nginx\n    logging: {drvier: syslog}\n",
                   "logging.drvier is not a logging key");
    expect_refusal("services:\n  web:\n    image: nginx\n    volumes_from: [db]\n",
                   "'db' is not a service of this file");
    expect_refusal("services:\n  web:\n    image: nginx\n  db:\n    image: pg\n"
                   "    volumes_from: ['web:rx']\n",
                   "mode 'rx' is not ro or rw");
    expect_refusal("web:\n  image: nginx\nlogs: 3\n", "top-level 'logs' is not a service");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_services),         cmocka_unit_test(test_ecs_params),
        cmocka_unit_test(test_errors_and_sizes), cmocka_unit_test(test_version1_and_volumes_from),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
