/* The task metadata endpoint's documents (ECS v4 field names from an engine
 * snapshot), Docker-style stats, its listener's port choice and its
 * credentials requests waiting aside, and task volume resolution
 * (mountPoints, volumesFrom, host and task-scoped volumes). */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "agent/metadata.h"
#include "agent/volumes.h"
#include "common/json.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad JSON in test: %s", jerr.text);
    return j;
}

static const char *const SNAP =
    "{\"cluster\": \"arn:aws:ecs:us-east-1:000000000000:cluster/default\","
    " \"taskArn\": \"arn:aws:ecs:us-east-1:000000000000:task/default/abc\","
    " \"family\": \"web\", \"revision\": \"3\", \"desiredStatus\": \"RUNNING\","
    " \"knownStatus\": \"RUNNING\", \"launchType\": \"EC2\", \"group\": \"service:front\","
    " \"availabilityZone\": \"us-east-1a\", \"cpu\": \"512\", \"memory\": \"256\","
    " \"pullStartedAt\": 1601597706.5, \"pullStoppedAt\": 1601597707.5,"
    " \"network\": {\"mode\": \"awsvpc\", \"ipv4\": \"10.213.0.5\", \"mac\": \"0e:9e:32:c7:48:85\","
    "             \"subnet\": \"10.213.0.0/16\", \"gateway\": \"10.213.0.1\"},"
    " \"containers\": ["
    "  {\"name\": \"app\", \"runtimeId\": \"abc-0\", \"image\": \"reg/app:1\","
    "   \"imageDigest\": \"sha256:1234\", \"containerArn\": \"arn:aws:ecs:us-east-1:0:container/x\","
    "   \"desiredStatus\": \"RUNNING\", \"knownStatus\": \"RUNNING\", \"cpu\": 10, \"memory\": 128,"
    "   \"createdAt\": 1601597707.6, \"startedAt\": 1601597708.0625,"
    "   \"restartPolicy\": true, \"restartCount\": 2,"
    "   \"health\": {\"status\": \"HEALTHY\", \"since\": 1601597720.0, \"exitCode\": 0,"
    "              \"output\": \"ok\"},"
    "   \"ports\": [{\"containerPort\": 80, \"hostPort\": 80, \"protocol\": \"tcp\","
    "               \"bindIP\": \"10.213.0.5\"}],"
    "   \"volumes\": [{\"source\": \"/data/v\", \"destination\": \"/v\"}],"
    "   \"dockerLabels\": {\"team\": \"a\", \"com.amazonaws.ecs.cluster\": \"spoof\"},"
    "   \"logDriver\": \"awslogs\", \"logOptions\": {\"awslogs-group\": \"g\"}},"
    "  {\"name\": \"side\", \"image\": \"reg/side:1\", \"desiredStatus\": \"RUNNING\","
    "   \"knownStatus\": \"STOPPED\", \"exitCode\": 3, \"cpu\": 0, \"memory\": 0,"
    "   \"restartPolicy\": false, \"restartCount\": 0, \"ports\": []}]}";

static void test_container_doc(void **state)
{
    json_t *snap = parse(SNAP);
    json_t *c = barge_metadata_container_doc(snap, 0);
    assert_string_equal(barge_json_str(c, "DockerId", ""), "abc-0");
    assert_string_equal(barge_json_str(c, "Name", ""), "app");
    assert_string_equal(barge_json_str(c, "Image", ""), "reg/app:1");
    assert_string_equal(barge_json_str(c, "ImageID", ""), "sha256:1234");
    assert_string_equal(barge_json_str(c, "KnownStatus", ""), "RUNNING");
    assert_string_equal(barge_json_str(c, "Type", ""), "NORMAL");
    assert_string_equal(barge_json_str(c, "StartedAt", ""), "2020-10-02T00:15:08.062500000Z");
    json_t *labels = json_object_get(c, "Labels");
    assert_string_equal(barge_json_str(labels, "com.amazonaws.ecs.task-definition-version", ""),
                        "3");
    /* a definition cannot overwrite ECS's own labels */
    assert_string_equal(barge_json_str(labels, "com.amazonaws.ecs.cluster", ""),
                        "arn:aws:ecs:us-east-1:000000000000:cluster/default");
    assert_string_equal(barge_json_str(labels, "team", ""), "a");
    assert_int_equal(barge_json_int(json_object_get(c, "Limits"), "Memory", 0), 128);
    assert_int_equal(barge_json_int(c, "RestartCount", -1), 2);
    json_t *h = json_object_get(c, "Health");
    assert_string_equal(barge_json_str(h, "status", ""), "HEALTHY");
    assert_string_equal(barge_json_str(h, "statusSince", ""), "2020-10-02T00:15:20.000000000Z");
    json_t *net = json_array_get(json_object_get(c, "Networks"), 0);
    assert_string_equal(barge_json_str(net, "NetworkMode", ""), "awsvpc");
    assert_string_equal(json_string_value(json_array_get(json_object_get(net, "IPv4Addresses"), 0)),
                        "10.213.0.5");
    assert_string_equal(barge_json_str(net, "PrivateDNSName", ""), "ip-10-213-0-5.ec2.internal");
    assert_string_equal(barge_json_str(net, "SubnetGatewayIpv4Address", ""), "10.213.0.1/16");
    assert_string_equal(barge_json_str(net, "MACAddress", ""), "0e:9e:32:c7:48:85");
    json_t *port = json_array_get(json_object_get(c, "Ports"), 0);
    assert_int_equal(barge_json_int(port, "ContainerPort", 0), 80);
    assert_string_equal(barge_json_str(port, "HostIp", ""), "10.213.0.5");
    assert_string_equal(
        barge_json_str(json_array_get(json_object_get(c, "Volumes"), 0), "Destination", ""), "/v");
    assert_string_equal(barge_json_str(c, "LogDriver", ""), "awslogs");
    json_decref(c);

    c = barge_metadata_container_doc(snap, 1);
    assert_int_equal(barge_json_int(c, "ExitCode", -1), 3);
    assert_null(json_object_get(c, "RestartCount")); /* only with a restart policy */
    assert_null(json_object_get(c, "Health"));
    assert_null(json_object_get(c, "Ports"));
    assert_string_equal(barge_json_str(c, "DockerId", "?"), ""); /* not created yet */
    json_decref(c);
    json_decref(snap);
}

static void test_task_doc(void **state)
{
    json_t *snap = parse(SNAP);
    json_t *t = barge_metadata_task_doc(snap);
    assert_string_equal(barge_json_str(t, "TaskARN", ""),
                        "arn:aws:ecs:us-east-1:000000000000:task/default/abc");
    assert_string_equal(barge_json_str(t, "Family", ""), "web");
    assert_string_equal(barge_json_str(t, "Revision", ""), "3");
    assert_string_equal(barge_json_str(t, "ServiceName", ""), "front");
    assert_string_equal(barge_json_str(t, "AvailabilityZone", ""), "us-east-1a");
    assert_string_equal(barge_json_str(t, "PullStartedAt", ""), "2020-10-02T00:15:06.500000000Z");
    json_t *limits = json_object_get(t, "Limits");
    assert_true(json_number_value(json_object_get(limits, "CPU")) == 0.5);
    assert_int_equal(barge_json_int(limits, "Memory", 0), 256);
    assert_int_equal(json_array_size(json_object_get(t, "Containers")), 2);
    assert_non_null(json_object_get(json_object_get(t, "ClockDrift"), "ClockErrorBound"));
    assert_null(json_object_get(t, "ExecutionStoppedAt"));
    json_decref(t);
    json_decref(snap);
}

static void test_stats(void **state)
{
    const char *dev = "Inter-|   Receive                            |  Transmit\n"
                      " face |bytes    packets errs drop fifo frame compressed multicast|bytes "
                      "   packets errs drop fifo colls carrier compressed\n"
                      "    lo:     100       2    0    0    0     0          0         0      "
                      "100       2    0    0    0     0       0          0\n"
                      "  eth0:    2000      20    1    2    0     0          0         0     "
                      "3000      30    3    4    0     0       0          0\n";
    json_t *nets = barge_metadata_parse_net_dev(dev);
    assert_null(json_object_get(nets, "lo"));
    json_t *eth0 = json_object_get(nets, "eth0");
    assert_int_equal(barge_json_int(eth0, "rx_bytes", 0), 2000);
    assert_int_equal(barge_json_int(eth0, "rx_dropped", 0), 2);
    assert_int_equal(barge_json_int(eth0, "tx_bytes", 0), 3000);
    assert_int_equal(barge_json_int(eth0, "tx_errors", 0), 3);

    struct barge_metadata_sample prev = {
        .stats = {.cpu_ns = 1000, .memory_usage = 10},
        .read_at = 100.0,
        .system_cpu_ns = 5000,
        .online_cpus = 2,
        .networks = NULL,
    };
    json_t *prev_nets = json_pack("{s:{s:i, s:i}}", "eth0", "rx_bytes", 1000, "tx_bytes", 1000);
    prev.networks = prev_nets;
    struct barge_metadata_sample cur = {
        .stats = {.cpu_ns = 3000,
                  .memory_usage = 4096,
                  .memory_max_usage = 8192,
                  .memory_limit = 65536,
                  .memory_cache = 512,
                  .pids = 3},
        .read_at = 102.0,
        .system_cpu_ns = 9000,
        .online_cpus = 2,
        .networks = nets,
    };
    json_t *s = barge_metadata_stats_doc("app", "abc-0", &cur, &prev);
    assert_string_equal(barge_json_str(s, "name", ""), "/app");
    assert_string_equal(barge_json_str(s, "id", ""), "abc-0");
    assert_int_equal(barge_json_int(json_object_get(s, "pids_stats"), "current", 0), 3);
    json_t *mem = json_object_get(s, "memory_stats");
    assert_int_equal(barge_json_int(mem, "usage", 0), 4096);
    assert_int_equal(barge_json_int(mem, "max_usage", 0), 8192);
    assert_int_equal(barge_json_int(mem, "limit", 0), 65536);
    assert_int_equal(barge_json_int(json_object_get(mem, "stats"), "cache", 0), 512);
    json_t *cpu = json_object_get(s, "cpu_stats");
    assert_int_equal(barge_json_int(json_object_get(cpu, "cpu_usage"), "total_usage", 0), 3000);
    assert_int_equal(barge_json_int(cpu, "system_cpu_usage", 0), 9000);
    json_t *pre = json_object_get(s, "precpu_stats");
    assert_int_equal(barge_json_int(json_object_get(pre, "cpu_usage"), "total_usage", 0), 1000);
    json_t *rate = json_object_get(s, "network_rate_stats");
    assert_true(json_number_value(json_object_get(rate, "rx_bytes_per_sec")) == 500.0);
    assert_true(json_number_value(json_object_get(rate, "tx_bytes_per_sec")) == 1000.0);
    assert_string_equal(barge_json_str(s, "preread", ""), "1970-01-01T00:01:40.000000000Z");
    json_decref(s);

    /* first sample: no previous one */
    s = barge_metadata_stats_doc("app", "abc-0", &cur, NULL);
    assert_string_equal(barge_json_str(s, "preread", ""), "0001-01-01T00:00:00Z");
    assert_int_equal(
        barge_json_int(json_object_get(json_object_get(s, "precpu_stats"), "cpu_usage"),
                       "total_usage", -1),
        0);
    json_decref(s);
    json_decref(prev_nets);
    json_decref(nets);
}

static const char *const VOL_DEFS =
    "[{\"name\": \"app\", \"mountPoints\": [{\"sourceVolume\": \"scratch\", "
    "\"containerPath\": \"/data\"}, {\"sourceVolume\": \"host\", \"containerPath\": \"/etc/x\", "
    "\"readOnly\": true}]},"
    " {\"name\": \"side\", \"mountPoints\": [{\"sourceVolume\": \"cache\", \"containerPath\": "
    "\"/data\"}], \"volumesFrom\": [{\"sourceContainer\": \"app\", \"readOnly\": true}]},"
    " {\"name\": \"third\", \"volumesFrom\": [{\"sourceContainer\": \"side\"}]}]";

static const char *const VOLUMES =
    "[{\"name\": \"scratch\"}, {\"name\": \"host\", \"host\": {\"sourcePath\": \"/srv/x\"}},"
    " {\"name\": \"cache\", \"dockerVolumeConfiguration\": {\"scope\": \"shared\"}}]";

static void test_volumes(void **state)
{
    json_t *defs = parse(VOL_DEFS), *vols = parse(VOLUMES);
    struct barge_volume_mount *m = NULL;
    size_t n = 0;
    struct barge_error *err = NULL;
    assert_int_equal(barge_volume_mounts(vols, defs, 0, "/d/t", "/d/s", &m, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].source, "/d/t/scratch");
    assert_string_equal(m[0].destination, "/data");
    assert_false(m[0].readonly);
    assert_string_equal(m[1].source, "/srv/x");
    assert_true(m[1].readonly);
    barge_volume_mounts_free(m, n);

    /* own mountPoints win over volumesFrom at the same path; volumesFrom's
     * readOnly applies to everything it brings */
    assert_int_equal(barge_volume_mounts(vols, defs, 1, "/d/t", "/d/s", &m, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].source, "/d/s/cache");
    assert_string_equal(m[0].destination, "/data");
    assert_false(m[0].readonly);
    assert_string_equal(m[1].destination, "/etc/x");
    assert_true(m[1].readonly);
    barge_volume_mounts_free(m, n);

    /* transitively */
    assert_int_equal(barge_volume_mounts(vols, defs, 2, "/d/t", "/d/s", &m, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(m[1].readonly);
    barge_volume_mounts_free(m, n);
    json_decref(defs);

    static const char *const bad[][2] = {
        {"[{\"name\": \"a\", \"mountPoints\": [{\"sourceVolume\": \"nope\", \"containerPath\": "
         "\"/x\"}]}]",
         "does not define"},
        {"[{\"name\": \"a\", \"volumesFrom\": [{\"sourceContainer\": \"b\"}]}, {\"name\": \"b\", "
         "\"volumesFrom\": [{\"sourceContainer\": \"a\"}]}]",
         "form a cycle"},
        {"[{\"name\": \"a\", \"volumesFrom\": [{\"sourceContainer\": \"zz\"}]}]",
         "not another container"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        defs = parse(bad[i][0]);
        assert_int_equal(barge_volume_mounts(vols, defs, 0, "/d/t", "/d/s", &m, &n, &err), -1);
        assert_null(m);
        if (!strstr(err->message, bad[i][1]))
            fail_msg("'%s' not in '%s'", bad[i][1], err->message);
        barge_error_free(err);
        err = NULL;
        json_decref(defs);
    }
    json_decref(vols);
    vols = parse("[{\"name\": \"..\"}]");
    defs = parse("[{\"name\": \"a\", \"mountPoints\": [{\"sourceVolume\": \"..\", "
                 "\"containerPath\": \"/x\"}]}]");
    assert_int_equal(barge_volume_mounts(vols, defs, 0, "/d/t", "/d/s", &m, &n, &err), -1);
    barge_error_free(err);
    json_decref(defs);
    json_decref(vols);
}

static void test_credentials(void **state)
{
    (void)state;
    json_t *creds = json_pack(
        "{s:s, s:s, s:s, s:s, s:f}", "roleArn", "arn:aws:iam::000000000000:role/app", "accessKeyId",
        "ASIAX", "secretAccessKey", "s", "sessionToken", "t", "expiration", 1601597708.5);
    json_t *doc = barge_metadata_credentials_doc(creds);
    assert_string_equal(barge_json_str(doc, "RoleArn", ""), "arn:aws:iam::000000000000:role/app");
    assert_string_equal(barge_json_str(doc, "AccessKeyId", ""), "ASIAX");
    assert_string_equal(barge_json_str(doc, "SecretAccessKey", ""), "s");
    assert_string_equal(barge_json_str(doc, "Token", ""), "t");
    assert_string_equal(barge_json_str(doc, "Expiration", ""), "2020-10-02T00:15:08Z");
    json_decref(doc);
    json_decref(creds);
    /* Handed out until half their life is gone, then renewed. */
    assert_true(barge_metadata_credentials_fresh(1000, 1000 + 21600, 1000));
    assert_true(barge_metadata_credentials_fresh(1000, 1000 + 21600, 1000 + 10799));
    assert_false(barge_metadata_credentials_fresh(1000, 1000 + 21600, 1000 + 10800));
    assert_false(barge_metadata_credentials_fresh(1000, 1000 + 21600, 1000 + 30000));
    /* A clock set back does not keep them forever. */
    assert_false(barge_metadata_credentials_fresh(1000, 1000 + 21600, 900));
}

static json_t *no_snapshot(void *ud, const char *token)
{
    return NULL;
}

static json_t *no_credentials(void *ud, const char *id, unsigned *status)
{
    *status = 404;
    return json_pack("{s:s}", "id", id);
}

/* A listener on 127.0.0.1 that takes a port away from the endpoint. */
static int occupy(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_port_taken(void **state)
{
    (void)state;
    int port;
    int fd = occupy(&port);
    const char *addrs[] = {"127.0.0.1", "127.0.0.2", NULL};
    struct barge_metadata_ops ops = {no_snapshot, no_credentials, NULL};
    struct barge_metadata_server *s = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    /* The port asked for is taken: an error naming it, ... */
    assert_int_equal(barge_metadata_server_start(NULL, addrs, port, false, &ops, &s, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_CONFLICT);
    char where[32];
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    assert_non_null(strstr(err->message, where));
    assert_null(s);
    /* ... or, as the default port is, another one on every address. */
    assert_int_equal(barge_metadata_server_start(NULL, addrs, port, true, &ops, &s, &err), 0);
    int got = barge_metadata_server_port(s);
    assert_true(got > 0 && got != port);
    barge_metadata_server_stop(s);
    close(fd);
}

static atomic_bool creds_released, creds_asked;

/* Credentials that come once the test releases them, as when barged is slow. */
static json_t *slow_credentials(void *ud, const char *id, unsigned *status)
{
    creds_asked = true;
    for (int i = 0; i < 1000 && !creds_released; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *status = 200;
    return json_pack("{s:s}", "id", id);
}

/* GET path from 127.0.0.1:port; the status line, or "" when no answer came
 * in 5 s. The caller frees it. */
static char *get_status(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    char buf[512] = "";
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return barge_xstrndup(buf, strcspn(buf, "\r"));
}

static int metadata_port;

static void *ask_credentials(void *ud)
{
    return get_status(metadata_port, "/v2/credentials/abc");
}

static void test_credentials_wait_aside(void **state)
{
    (void)state;
    const char *addrs[] = {"127.0.0.1", NULL};
    struct barge_metadata_ops ops = {no_snapshot, slow_credentials, NULL};
    struct barge_metadata_server *s = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    assert_int_equal(barge_metadata_server_start(NULL, addrs, 0, true, &ops, &s, &err), 0);
    metadata_port = barge_metadata_server_port(s);
    creds_released = creds_asked = false;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, ask_credentials, NULL), 0);
    while (!creds_asked) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* The listener's one event thread answers while credentials wait. */
    _cleanup_free_ char *other = get_status(metadata_port, "/v4/unknown-token");
    assert_string_equal(other, "HTTP/1.1 404 Not Found");
    assert_false(creds_released);
    creds_released = true;
    void *creds_status = NULL;
    pthread_join(t, &creds_status);
    assert_string_equal(creds_status, "HTTP/1.1 200 OK");
    free(creds_status);
    barge_metadata_server_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_doc),
        cmocka_unit_test(test_task_doc),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_volumes),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_port_taken),
        cmocka_unit_test(test_credentials_wait_aside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
