/* barge-agent: makes a host a container instance. Registers with barged (or
 * resumes the registration in its checkpoint), long-polls for the tasks
 * assigned to it, runs them with the task engine and reports their states.
 * SIGTERM/SIGINT stop the agent but leave containers running: a restarted
 * agent adopts them. */
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/exec.h"
#include "agent/logship.h"
#include "agent/metadata.h"
#include "agent/stats.h"
#include "agent/tasklogs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pidlock.h"

#define AGENT_VERSION "0.1.0"

static struct barge_agent agent;

static void on_signal(int sig)
{
    barge_agent_request_stop(sig);
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: barge-agent [OPTIONS]\n"
            "Registers this host with barged as a container instance and runs its tasks.\n"
            "\n"
            "Options:\n"
            "  --server URL[,URL...]   barged's endpoint (default http://127.0.0.1:4566);\n"
            "                          repeatable: with several barged sharing a database,\n"
            "                          the agent uses one and moves to the next when it\n"
            "                          stops answering\n"
            "  --cluster NAME          cluster to join (default 'default')\n"
            "  --data-dir DIR          checkpoint, image cache and logs (default\n"
            "                          /var/lib/barge-agent)\n"
            "  --credentials FILE      INI file with aws_access_key_id and\n"
            "                          aws_secret_access_key under [barge] (default: the\n"
            "                          AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables)\n"
            "  --join-token TOKEN      register with a join token (barge join-token create)\n"
            "                          instead of an access key; ps shows it, so prefer:\n"
            "  --join-token-file FILE  read the join token from FILE (or the\n"
            "                          BARGE_JOIN_TOKEN variable)\n"
            "  --region NAME           region whose cluster to join (default: barged's)\n"
            "  --availability-zone AZ  the ecs.availability-zone attribute (default REGIONa)\n"
            "  --attribute NAME=VALUE  a custom attribute (repeatable)\n"
            "  --cpu UNITS             CPU units to offer (default 1024 per core)\n"
            "  --memory MIB            memory to offer (default: all but 256 MiB)\n"
            "  --runtime NAME          auto, crun or runc (default auto: the first that works)\n"
            "  --stop-timeout SECONDS  default container stop timeout (default 30)\n"
            "  --insecure-registry HOST[:PORT]\n"
            "                          pull from this registry over plain HTTP (repeatable;\n"
            "                          loopback registries always are)\n"
            "  --max-layer-size SIZE   refuse an image layer that unpacks to more than SIZE\n"
            "                          bytes (K, M, G, T suffixes; default 8G)\n"
            "  --min-free-space SIZE   refuse to unpack a layer when the data directory's\n"
            "                          filesystem would have less than SIZE free (default\n"
            "                          256M)\n"
            "  --capacity fargate      enrol the host in barged's Fargate capacity pool instead\n"
            "                          of a cluster (it runs FARGATE tasks of every cluster)\n"
            "  --bridge NAME           bridge for bridge and awsvpc tasks (default barge0)\n"
            "  --bridge-subnet CIDR    its IPv4 subnet (default: the bridge's, else the\n"
            "                          first of 10.213.0.0/16, 172.29.0.0/16,\n"
            "                          192.168.213.0/24 that no route of the host overlaps)\n"
            "  --host-ports LOW-HIGH   range of dynamic host ports (default\n"
            "                          /proc/sys/net/ipv4/ip_local_port_range)\n"
            "  --metadata-port PORT    task metadata endpoint port (default 51679, or a\n"
            "                          free one when that is taken)\n"
            "  --clean-network         remove every task network recorded in the data\n"
            "                          directory (after the host's containers are gone)\n"
            "                          and exit\n"
            "  --metrics-interval SECONDS\n"
            "                          how often to report container usage (default 20)\n"
            "  --metrics-listen HOST:PORT\n"
            "                          serve Prometheus /metrics there (port 0 picks one)\n"
            "  --s3-endpoint URL       fetch environment files from this S3-compatible\n"
            "                          endpoint instead of barged\n"
            "  --s3-credentials FILE   keys for --s3-endpoint ([barge] section, as for\n"
            "                          --credentials; default: the task's credentials)\n"
            "  --log-level LEVEL       debug, info, warn or error (default info)\n"
            "  -h, --help              show this help\n");
}

/* "64M", "8G", "1048576": a byte count with an optional binary suffix.
 * Returns 0, or -1 for anything else (zero included). */
static int parse_size(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || end == text || *text == '-')
        return -1;
    unsigned shift = 0;
    if (*end) {
        const char *units = "KMGT";
        const char *u = strchr(units, *end == 'k' ? 'K' : *end);
        if (!u || end[1])
            return -1;
        shift = 10 * (unsigned)(u - units + 1);
    }
    if (n == 0 || n > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)n << shift;
    return 0;
}

/* Reads the [barge] keys of an INI credentials file. */
static int read_credentials(const char *path, char **akid, char **secret)
{
    _cleanup_free_ char *text = barge_read_file(path, NULL);
    if (!text)
        return -1;
    bool in_section = false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ')
            line++;
        if (*line == '[') {
            in_section = strncmp(line, "[barge]", 7) == 0;
            continue;
        }
        if (!in_section)
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        char *k = line, *v = eq + 1;
        *eq = '\0';
        while (*v == ' ')
            v++;
        for (char *e = eq - 1; e >= k && *e == ' '; e--)
            *e = '\0';
        if (strcmp(k, "aws_access_key_id") == 0)
            *akid = barge_xstrdup(v);
        else if (strcmp(k, "aws_secret_access_key") == 0)
            *secret = barge_xstrdup(v);
    }
    return *akid && *secret ? 0 : -1;
}

void barge_agent_checkpoint_task(struct barge_agent *a, const char *task_arn, const json_t *value)
{
    pthread_mutex_lock(&a->lock);
    json_t *tasks = json_object_get(a->state, "tasks");
    if (value)
        json_object_set_new(tasks, task_arn, json_deep_copy(value));
    else
        json_object_del(tasks, task_arn);
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_agent_state_save(a->cfg.data_dir, a->state, &err) < 0)
        barge_err("checkpoint: %s", err->message);
    pthread_mutex_unlock(&a->lock);
}

void barge_agent_report(struct barge_agent *a, const json_t *rep)
{
    struct barge_agent_client *c = barge_agent_client_new(a->cfg.server);
    int delay_ms = 200;
    for (int attempt = 0;; attempt++) {
        _cleanup_error_ struct barge_error *err = NULL;
        _cleanup_json_ json_t *out = NULL;
        int status =
            barge_agent_client_post(c, "/agent/state", rep, a->token, NULL, 10, &out, &err);
        if (status == 200)
            break;
        if (status >= 400 && status < 500) {
            barge_warn("barged refused the state of %s (%d): %s",
                       barge_json_str(rep, "taskArn", "?"), status,
                       barge_json_str(out, "message", "?"));
            break;
        }
        if (barge_agent_stopping() && attempt > 2)
            break;
        if (attempt % 10 == 0)
            barge_warn("reporting %s: %s; retrying", barge_json_str(rep, "taskArn", "?"),
                       err ? err->message : "server error");
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (delay_ms < 5000)
            delay_ms *= 2;
    }
    barge_agent_client_free(c);
}

bool barge_agent_registry_credentials(struct barge_agent *a, const char *registry, char **user,
                                      char **password)
{
    pthread_mutex_lock(&a->lock);
    json_t *auth = a->registry_auth;
    bool fresh = auth && barge_json_int(auth, "expiresAt", 0) > time(NULL) + 300;
    if (!fresh) {
        struct barge_agent_client *c = barge_agent_client_new(a->cfg.server);
        _cleanup_json_ json_t *body = json_object(), *out = NULL;
        _cleanup_error_ struct barge_error *err = NULL;
        int status = barge_agent_client_post(c, "/agent/registry-auth", body, a->token, NULL, 10,
                                             &out, &err);
        barge_agent_client_free(c);
        if (status == 200) {
            json_decref(a->registry_auth);
            a->registry_auth = json_incref(out);
            auth = out;
        } else {
            auth = NULL;
        }
    }
    bool ours = false;
    size_t i;
    json_t *h;
    json_array_foreach(barge_json_array(auth, "registries"), i, h)
    {
        if (barge_streq(json_string_value(h), registry))
            ours = true;
    }
    if (ours) {
        *user = barge_xstrdup(barge_json_str(auth, "username", ""));
        *password = barge_xstrdup(barge_json_str(auth, "password", ""));
    }
    pthread_mutex_unlock(&a->lock);
    return ours;
}

/* Whether two comma-separated lists of barged endpoints share one: the
 * registration in the checkpoint then still holds (every barged of a control
 * plane knows every instance). */
static bool same_control_plane(const char *saved, const char *servers)
{
    _cleanup_free_ char *copy = barge_xstrdup(saved);
    char *save = NULL;
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        size_t n = strlen(s);
        for (const char *p = servers; *p;) {
            size_t len = strcspn(p, ",");
            if (len == n && strncmp(p, s, n) == 0)
                return true;
            p += len;
            if (*p == ',')
                p++;
        }
    }
    return false;
}

static long long detect_memory_mib(void)
{
    struct sysinfo si;
    if (sysinfo(&si) < 0)
        return 1024;
    long long mib = (long long)si.totalram * si.mem_unit / (1024 * 1024);
    return mib > 512 ? mib - 256 : mib;
}

/* Registers with the join token when there is one (barged then wants no
 * signature), else SigV4-signed with the access key. */
static int register_instance(struct barge_agent *a, struct barge_agent_client *c,
                             const char *join_token, struct barge_error **err)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    struct utsname un;
    uname(&un);
    _cleanup_json_ json_t *body =
        json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:O, s:[i,i,i,i,i]}", "cluster", a->cfg.cluster,
                  "cpu", (json_int_t)a->cfg.cpu, "memory", (json_int_t)a->cfg.memory, "hostname",
                  host, "agentVersion", AGENT_VERSION, "architecture",
                  strcmp(un.machine, "aarch64") == 0 ? "arm64" : un.machine, "attributes",
                  a->cfg.attributes, "reservedPorts", 22, 2375, 2376, 51678, 51679);
    if (a->cfg.availability_zone)
        json_object_set_new(body, "availabilityZone", json_string(a->cfg.availability_zone));
    if (a->cfg.fargate)
        json_object_set_new(body, "capacity", json_string("FARGATE"));
    if (a->cfg.region)
        json_object_set_new(body, "region", json_string(a->cfg.region));
    _cleanup_free_ char *rt =
        barge_xasprintf("%s (barge-agent %s)", barge_runtime_name(a->rt), AGENT_VERSION);
    json_object_set_new(body, "runtime", json_string(rt));
    _cleanup_json_ json_t *out = NULL;
    int status = barge_agent_client_post(c, "/agent/register", body, join_token,
                                         join_token ? NULL : &a->cfg, 30, &out, err);
    if (status < 0)
        return -1;
    if (status != 200)
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "barged refused the registration (%d): %s", status,
                               barge_json_str(out, "message", "no message"));
    a->instance_arn = barge_xstrdup(barge_json_str(out, "containerInstanceArn", ""));
    a->token = barge_xstrdup(barge_json_str(out, "token", ""));
    json_object_set_new(a->state, "containerInstanceArn", json_string(a->instance_arn));
    json_object_set_new(a->state, "token", json_string(a->token));
    json_object_set_new(a->state, "cluster", json_string(a->cfg.cluster));
    json_object_set_new(a->state, "server", json_string(a->cfg.server));
    barge_info("registered as %s", a->instance_arn);
    return barge_agent_state_save(a->cfg.data_dir, a->state, err);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"cluster", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"credentials", required_argument, NULL, 'C'},
        {"join-token", required_argument, NULL, 'J'},
        {"join-token-file", required_argument, NULL, 'j'},
        {"region", required_argument, NULL, 'r'},
        {"availability-zone", required_argument, NULL, 'z'},
        {"attribute", required_argument, NULL, 'a'},
        {"cpu", required_argument, NULL, 'p'},
        {"memory", required_argument, NULL, 'm'},
        {"runtime", required_argument, NULL, 'R'},
        {"stop-timeout", required_argument, NULL, 't'},
        {"capacity", required_argument, NULL, 'K'},
        {"metrics-interval", required_argument, NULL, 'I'},
        {"metrics-listen", required_argument, NULL, 'Q'},
        {"log-level", required_argument, NULL, 'L'},
        {"bridge", required_argument, NULL, 'B'},
        {"bridge-subnet", required_argument, NULL, 'S'},
        {"host-ports", required_argument, NULL, 'P'},
        {"metadata-port", required_argument, NULL, 'M'},
        {"clean-network", no_argument, NULL, 'N'},
        {"s3-endpoint", required_argument, NULL, 'E'},
        {"s3-credentials", required_argument, NULL, 'T'},
        {"insecure-registry", required_argument, NULL, 'Y'},
        {"max-layer-size", required_argument, NULL, 'X'},
        {"min-free-space", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct barge_agent_config *cfg = &agent.cfg;
    cfg->server = "http://127.0.0.1:4566";
    _cleanup_free_ char *servers = NULL;
    _cleanup_free_ const char **insecure = NULL;
    size_t n_insecure = 0;
    cfg->cluster = "default";
    cfg->data_dir = "/var/lib/barge-agent";
    cfg->region = NULL; /* barged's default region */
    cfg->stop_timeout = 30;
    cfg->metrics_interval_ms = 20000;
    cfg->attributes = json_array();
    const char *creds_file = NULL, *log_level = "info", *s3_creds_file = NULL;
    const char *join_token_arg = NULL, *join_token_file = NULL;
    bool clean_network = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': {
            char *joined =
                servers ? barge_xasprintf("%s,%s", servers, optarg) : barge_xstrdup(optarg);
            free(servers);
            servers = joined;
            cfg->server = servers;
            break;
        }
        case 'Y':
            insecure = barge_xrealloc(insecure, (n_insecure + 1) * sizeof(*insecure));
            insecure[n_insecure++] = optarg;
            break;
        case 'X':
        case 'F':
            if (parse_size(optarg, c == 'X' ? &agent.pull.max_layer_bytes
                                            : &agent.pull.min_free_bytes) < 0) {
                fprintf(stderr, "barge-agent: --%s wants a size such as 512M or 8G, not '%s'\n",
                        c == 'X' ? "max-layer-size" : "min-free-space", optarg);
                return 2;
            }
            break;
        case 'c':
            cfg->cluster = optarg;
            break;
        case 'd':
            cfg->data_dir = optarg;
            break;
        case 'C':
            creds_file = optarg;
            break;
        case 'J':
            join_token_arg = optarg;
            break;
        case 'j':
            join_token_file = optarg;
            break;
        case 'r':
            cfg->region = optarg;
            break;
        case 'z':
            cfg->availability_zone = optarg;
            break;
        case 'a': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "barge-agent: --attribute wants NAME=VALUE, not '%s'\n", optarg);
                return 2;
            }
            _cleanup_free_ char *name = barge_xstrndup(optarg, (size_t)(eq - optarg));
            json_array_append_new(cfg->attributes,
                                  json_pack("{s:s, s:s}", "name", name, "value", eq + 1));
            break;
        }
        case 'p':
            cfg->cpu = atoll(optarg);
            break;
        case 'm':
            cfg->memory = atoll(optarg);
            break;
        case 'R':
            cfg->runtime = optarg;
            break;
        case 't':
            cfg->stop_timeout = atoi(optarg);
            break;
        case 'K':
            if (strcasecmp(optarg, "fargate") != 0) {
                fprintf(stderr, "barge-agent: --capacity takes 'fargate', not '%s'\n", optarg);
                return 2;
            }
            cfg->fargate = true;
            break;
        case 'L':
            log_level = optarg;
            break;
        case 'B':
            cfg->bridge = optarg;
            break;
        case 'S':
            cfg->bridge_subnet = optarg;
            break;
        case 'P':
            cfg->host_port_range = optarg;
            break;
        case 'M':
            cfg->metadata_port = atoi(optarg);
            break;
        case 'N':
            clean_network = true;
            break;
        case 'I': {
            char *end;
            double secs = strtod(optarg, &end);
            if (*end || !(secs >= 0.1 && secs <= 3600)) {
                fprintf(stderr, "barge-agent: --metrics-interval wants 0.1 to 3600 seconds\n");
                return 2;
            }
            cfg->metrics_interval_ms = (int)(secs * 1000);
            break;
        }
        case 'Q':
            cfg->metrics_listen = optarg;
            break;
        case 'E':
            cfg->s3_endpoint = optarg;
            break;
        case 'T':
            s3_creds_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (barge_log_setup("barge-agent", log_level, NULL) < 0) {
        fprintf(stderr, "barge-agent: invalid --log-level '%s'\n", log_level);
        return 2;
    }
    if (!cfg->cpu)
        cfg->cpu = 1024LL * get_nprocs();
    if (!cfg->memory)
        cfg->memory = detect_memory_mib();
    char *akid = NULL, *secret = NULL;
    if (creds_file) {
        if (read_credentials(creds_file, &akid, &secret) < 0) {
            fprintf(stderr, "barge-agent: cannot read [barge] keys from '%s'\n", creds_file);
            return 2;
        }
    } else if (getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY")) {
        akid = barge_xstrdup(getenv("AWS_ACCESS_KEY_ID"));
        secret = barge_xstrdup(getenv("AWS_SECRET_ACCESS_KEY"));
    }
    cfg->access_key = akid;
    cfg->secret_key = secret;
    _cleanup_free_ char *join_token = NULL;
    if (join_token_file) {
        if (!(join_token = barge_read_file(join_token_file, NULL))) {
            fprintf(stderr, "barge-agent: cannot read the join token from '%s': %s\n",
                    join_token_file, strerror(errno));
            return 2;
        }
        join_token[strcspn(join_token, " \t\r\n")] = '\0';
    } else if (join_token_arg) {
        join_token = barge_xstrdup(join_token_arg);
    } else if (getenv("BARGE_JOIN_TOKEN") && *getenv("BARGE_JOIN_TOKEN")) {
        join_token = barge_xstrdup(getenv("BARGE_JOIN_TOKEN"));
    }
    char *s3_akid = NULL, *s3_secret = NULL;
    if (s3_creds_file && read_credentials(s3_creds_file, &s3_akid, &s3_secret) < 0) {
        fprintf(stderr, "barge-agent: cannot read [barge] keys from '%s'\n", s3_creds_file);
        return 2;
    }
    cfg->s3_access_key = s3_akid;
    cfg->s3_secret_key = s3_secret;
    if (barge_mkdir_p(cfg->data_dir, 0700) < 0) {
        fprintf(stderr, "barge-agent: cannot create '%s': %s\n", cfg->data_dir, strerror(errno));
        return 1;
    }
    /* Paths handed to the runtime and to containers must be absolute. */
    _cleanup_free_ char *abs_data_dir = realpath(cfg->data_dir, NULL);
    if (!abs_data_dir) {
        fprintf(stderr, "barge-agent: cannot resolve '%s': %s\n", cfg->data_dir, strerror(errno));
        return 1;
    }
    cfg->data_dir = abs_data_dir;
    /* One agent per data directory: two would both adopt, stop and clean up
     * the same containers and networks. Held until the process ends. */
    _cleanup_free_ char *lock_path = barge_xasprintf("%s/agent.lock", cfg->data_dir);
    pid_t holder;
    int lock_fd = barge_pidlock_take(lock_path, &holder);
    if (lock_fd < 0) {
        if (errno == EWOULDBLOCK) {
            char who[64] = "a process whose pid is not written yet";
            if (holder > 0)
                snprintf(who, sizeof(who), "pid %ld", (long)holder);
            fprintf(stderr,
                    "barge-agent: the data directory '%s' is in use by another barge-agent "
                    "(%s); stop it first or give this one another --data-dir\n",
                    cfg->data_dir, who);
        } else {
            fprintf(stderr, "barge-agent: cannot lock '%s': %s\n", lock_path, strerror(errno));
        }
        return 1;
    }
    /* Every task has a runner thread, and glibc would give each thread that
     * allocates an arena of its own (up to eight per core), each keeping
     * freed memory: two arenas are plenty for an agent that mostly waits. */
    mallopt(M_ARENA_MAX, 2);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_mutex_init(&agent.lock, NULL);

    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_free_ char *rt_dir = barge_xasprintf("%s/runtime", cfg->data_dir);
    _cleanup_free_ char *img_dir = barge_xasprintf("%s/images", cfg->data_dir);
    struct barge_runtime_options ro = {.state_dir = rt_dir, .force = cfg->runtime};
    if (barge_runtime_detect(&ro, &agent.rt, &err) < 0) {
        fprintf(stderr, "barge-agent: no usable container runtime: %s\n", err->message);
        return 1;
    }
    agent.pull.cache_dir = img_dir;
    agent.pull.insecure_registries = insecure;
    agent.pull.n_insecure_registries = n_insecure;
    if (barge_agent_state_load(cfg->data_dir, &agent.state, &err) < 0) {
        fprintf(stderr, "barge-agent: %s\n", err->message);
        return 1;
    }
    if (barge_agent_network_init(&agent, &err) < 0 ||
        (clean_network && barge_agent_network_clean(&agent, &err) < 0)) {
        fprintf(stderr, "barge-agent: %s\n", err->message);
        return 1;
    }
    if (clean_network)
        return 0;
    struct barge_agent_client *client = barge_agent_client_new(cfg->server);
    const char *saved_token = barge_json_str(agent.state, "token", NULL);
    if (saved_token && same_control_plane(barge_json_str(agent.state, "server", ""), cfg->server)) {
        agent.token = barge_xstrdup(saved_token);
        agent.instance_arn = barge_xstrdup(barge_json_str(agent.state, "containerInstanceArn", ""));
        barge_info("resuming as %s", agent.instance_arn);
    } else {
        if (!akid && !join_token) {
            fprintf(stderr, "barge-agent: registering needs a join token (--join-token-file "
                            "FILE; barge join-token create makes one) or credentials: pass "
                            "--credentials FILE (barged writes barge-data/admin-credentials) or "
                            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n");
            barge_agent_client_free(client);
            return 2;
        }
        while (register_instance(&agent, client, join_token, &err) < 0) {
            if (err->code == BARGE_ERR_ACCESS_DENIED) {
                fprintf(stderr, "barge-agent: %s\n", err->message);
                barge_agent_client_free(client);
                return 1;
            }
            barge_warn("%s; retrying in 2s", err->message);
            barge_error_free(barge_steal(&err));
            sleep(2);
            if (barge_agent_stopping()) {
                barge_agent_client_free(client);
                return 1;
            }
        }
    }
    agent.logship = barge_logship_new(&agent);
    if (barge_stats_start(&agent, cfg->metrics_interval_ms, cfg->metrics_listen, &agent.stats,
                          &err) < 0) {
        fprintf(stderr, "barge-agent: %s\n", err->message);
        return 1;
    }
    if (cfg->metrics_listen) {
        barge_info("serving /metrics on port %d", barge_stats_port(agent.stats));
        printf("barge-agent metrics on port %d\n", barge_stats_port(agent.stats));
    }
    barge_agent_client_stop_aware(client);
    barge_agent_dns_start(&agent);
    agent.engine = barge_engine_new(&agent);
    barge_agent_metadata_start(&agent);
    barge_engine_adopt(agent.engine, json_object_get(agent.state, "tasks"));
    printf("barge-agent ready as %s\n", agent.instance_arn);
    fflush(stdout);

    int failures = 0;
    while (!barge_agent_stopping()) {
        _cleanup_json_ json_t *known = barge_engine_known(agent.engine);
        _cleanup_json_ json_t *body = json_pack("{s:O, s:i}", "known", known, "wait", 20);
        _cleanup_json_ json_t *out = NULL;
        int status =
            barge_agent_client_post(client, "/agent/poll", body, agent.token, NULL, 40, &out, &err);
        if (status == 200) {
            failures = 0;
            barge_engine_sync(agent.engine, barge_json_array(out, "tasks"));
            /* Answered here, between polls: a read is one bounded slice of
             * a local file, and a thread of its own would cost more memory
             * than the wait costs the next poll. */
            size_t i;
            json_t *lr;
            json_array_foreach(barge_json_array(out, "logRequests"), i, lr)
                barge_agent_task_logs_answer(&agent, client, lr);
            json_array_foreach(barge_json_array(out, "execRequests"), i, lr)
                barge_agent_exec_start(&agent, client, lr);
            continue;
        }
        if (status == 410 || status == 401) {
            barge_err("barged no longer knows this instance (%s); stopping its tasks",
                      barge_json_str(out, "message", "?"));
            _cleanup_json_ json_t *none = json_array();
            barge_engine_sync(agent.engine, none);
            while (!barge_engine_idle(agent.engine) && !barge_agent_stopping())
                sleep(1);
            break;
        }
        if (barge_agent_stopping())
            break;
        if (failures++ % 10 == 0)
            barge_warn("polling barged: %s", err ? err->message : "server error");
        barge_error_free(barge_steal(&err));
        struct timespec ts = {failures > 5 ? 2 : 0, failures > 5 ? 0 : 300000000L};
        nanosleep(&ts, NULL);
    }
    barge_info("stopping; containers keep running and will be adopted on restart");
    barge_stats_stop(agent.stats);
    barge_metadata_server_stop(agent.metadata); /* before the engine it asks */
    agent.metadata = NULL;
    barge_engine_free(agent.engine);
    barge_agent_dns_stop(&agent); /* after the runners, which read dns_server */
    barge_logship_free(agent.logship);
    barge_agent_network_release(&agent);
    barge_agent_client_free(client);
    barge_runtime_free(agent.rt);
    json_decref(agent.state);
    json_decref(agent.registry_auth);
    json_decref(cfg->attributes);
    free(agent.token);
    free(agent.instance_arn);
    free(akid);
    free(secret);
    free(s3_akid);
    free(s3_secret);
    curl_global_cleanup();
    close(lock_fd); /* last: the directory is ours until everything is let go */
    return 0;
}
