/* barged: the control plane. Parses the command line, opens the store, makes
 * sure an admin key exists, serves the APIs and runs the housekeeping loop until
 * SIGINT or SIGTERM. */
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/cfn.h"
#include "api/cloudwatch.h"
#include "api/ecs.h"
#include "api/exec.h"
#include "api/metrics.h"
#include "api/model.h"
#include "api/secrets.h"
#include "api/server.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pidlock.h"
#include "control/control.h"

#define BARGE_VERSION "0.1.0"

static volatile sig_atomic_t stopping;

/* Long options without a short form. */
enum {
    OPT_RETENTION = 256,
    OPT_AGENT_TIMEOUT,
    OPT_HOST_GRACE,
    OPT_TASK_STABLE,
    OPT_AUTOSCALE_INTERVAL,
    OPT_AUTOSCALE_WINDOW,
    OPT_PRICE_VCPU,
    OPT_PRICE_GB,
    OPT_PRICE_STORAGE,
    OPT_SPOT_FACTOR,
    OPT_METRICS_LISTEN,
    OPT_HTTP_THREADS,
    OPT_HANDLER_THREADS,
    OPT_HEADER_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_MAX_CONNECTIONS,
    OPT_MAX_PER_CLIENT,
    OPT_LB_ADDRESS,
    OPT_CONSOLE_SESSION_TTL,
    OPT_DEPLOYMENT_RETENTION,
};

static void on_signal(int sig)
{
    stopping = sig;
}

/* In --dev, barged runs local barge-agents so that one command gives a
 * working single-host cluster: the barge-agent next to this barged, one for
 * the cluster 'default' of the default region and, as an agent of the Fargate
 * capacity pool serves one region, one pool agent for each region that holds
 * something (started when the region first appears), so that FARGATE tasks
 * run in every region. */
struct dev_agent {
    bool fargate;
    char *region; /* the pool agent's; NULL: the default region */
    pid_t pid;
    bool adopted; /* left running by an earlier barged: not our child */
    char *dir;
    char *lock; /* the agent's pid lock in dir (see barge-agent) */
    /* Restarts back off: an agent that keeps dying (a corrupt state file, a
     * held directory) is started again after 5 s, then 10, 20... up to 5
     * minutes; one that ran for a while starts the count afresh. */
    int64_t started_ms; /* when it was last started (monotonic) */
    int64_t retry_ms;   /* when to start it again; 0: it runs */
    int backoff_s;      /* the delay before the last restart */
};

#define DEV_AGENT_BACKOFF_MIN_S 5
#define DEV_AGENT_BACKOFF_MAX_S 300
#define DEV_AGENT_STABLE_S      120

/* The --server argument of pid when it is a barge-agent, else NULL. The
 * caller frees it. */
static char *agent_server_of(pid_t pid)
{
    _cleanup_free_ char *path = barge_xasprintf("/proc/%ld/cmdline", (long)pid);
    size_t len;
    _cleanup_free_ char *cmd = barge_read_file(path, &len);
    if (!cmd || len == 0)
        return NULL;
    const char *argv0 = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
    if (strcmp(argv0, "barge-agent") != 0)
        return NULL;
    for (size_t off = 0; off < len;) {
        const char *arg = cmd + off;
        off += strlen(arg) + 1;
        if (strcmp(arg, "--server") == 0 && off < len)
            return barge_xstrdup(cmd + off);
    }
    return barge_xstrdup("");
}

/* Waits until nobody holds lock, up to timeout_ms; returns whether so. */
static bool wait_lock_free(const char *lock, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        pid_t holder = barge_pidlock_holder(lock);
        if (holder == 0)
            return true;
        if (waited >= timeout_ms)
            return false;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* An agent of an earlier barged may still run on a's directory: killing
 * barged with -9 leaves its agents behind. One that talks to this barged's
 * endpoint is adopted, so a restart of the control plane goes unnoticed by
 * its tasks. One that talks to another endpoint (barged came back on another
 * port) is stopped; its containers keep running and the agent started next
 * adopts them. Returns 1 when adopted, 0 when a new agent is to be started,
 * -1 when the directory stays held. */
static int adopt_dev_agent(struct dev_agent *a, const char *server)
{
    pid_t holder = barge_pidlock_holder(a->lock);
    if (holder == 0)
        return 0;
    if (holder < 0 && errno == EAGAIN) {
        /* an agent just starting: give it a moment to write its pid */
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
        holder = barge_pidlock_holder(a->lock);
    }
    if (holder <= 0) {
        barge_err("cannot tell who holds '%s': %s", a->lock, strerror(errno));
        return -1;
    }
    _cleanup_free_ char *its_server = agent_server_of(holder);
    if (!its_server) {
        barge_err("'%s' is held by pid %ld, which is not a barge-agent; not starting one there",
                  a->dir, (long)holder);
        return -1;
    }
    if (strcmp(its_server, server) == 0) {
        barge_info("adopted the local agent already running on '%s' (pid %ld)", a->dir,
                   (long)holder);
        a->pid = holder;
        a->adopted = true;
        return 1;
    }
    barge_info("stopping the local agent on '%s' (pid %ld): it talks to '%s', not '%s'", a->dir,
               (long)holder, its_server, server);
    kill(holder, SIGTERM);
    if (!wait_lock_free(a->lock, 30000)) {
        kill(holder, SIGKILL);
        if (!wait_lock_free(a->lock, 5000)) {
            barge_err("the local agent on '%s' (pid %ld) does not go away", a->dir, (long)holder);
            return -1;
        }
    }
    return 0;
}

static void start_dev_agent(const struct barge_config *cfg, int port, struct dev_agent *a)
{
    bool fargate = a->fargate;
    a->pid = -1;
    a->adopted = false;
    a->started_ms = barge_monotonic_ms();
    a->retry_ms = 0;
    if (!a->dir) {
        /* The default region's pool keeps the directory it had before regions. */
        a->dir = !fargate    ? barge_xasprintf("%s/agent", cfg->data_dir)
                 : a->region ? barge_xasprintf("%s/fargate-agent-%s", cfg->data_dir, a->region)
                             : barge_xasprintf("%s/fargate-agent", cfg->data_dir);
        a->lock = barge_xasprintf("%s/agent.lock", a->dir);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return;
    self[n] = '\0';
    _cleanup_free_ char *agent = barge_xasprintf("%s/barge-agent", dirname(self));
    _cleanup_free_ char *server = barge_xasprintf("http://127.0.0.1:%d", port);
    _cleanup_free_ char *creds = barge_xasprintf("%s/admin-credentials", cfg->data_dir);
    const char *region = a->region ? a->region : cfg->region;
    if (adopt_dev_agent(a, server) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        if (fargate)
            execl(agent, agent, "--server", server, "--capacity", "fargate", "--data-dir", a->dir,
                  "--credentials", creds, "--region", region, (char *)NULL);
        else
            execl(agent, agent, "--server", server, "--cluster", "default", "--data-dir", a->dir,
                  "--credentials", creds, "--region", cfg->region, (char *)NULL);
        fprintf(stderr, "barged: cannot run '%s': %s\n", agent, strerror(errno));
        _exit(127);
    }
    if (pid > 0)
        barge_info("started the local %s %s for %s (pid %d)",
                   fargate ? "Fargate capacity agent" : "agent", agent, region, (int)pid);
    a->pid = pid;
}

/* Starts a local agent again when it is gone: it crashed, or it was an
 * adopted one that was on its way out (an earlier barged had asked it to
 * stop and was killed while waiting). */
static void supervise_dev_agent(const struct barge_config *cfg, int port, struct dev_agent *a)
{
    bool gone;
    if (a->pid <= 0) {
        gone = true;
    } else if (a->adopted) {
        pid_t holder = barge_pidlock_holder(a->lock);
        gone = holder == 0 || (holder > 0 && holder != a->pid);
    } else {
        gone = waitpid(a->pid, NULL, WNOHANG) == a->pid;
    }
    if (!gone)
        return;
    int64_t now = barge_monotonic_ms();
    if (a->retry_ms == 0) {
        int64_t ran_s = (now - a->started_ms) / 1000;
        if (ran_s >= DEV_AGENT_STABLE_S || a->backoff_s == 0)
            a->backoff_s = DEV_AGENT_BACKOFF_MIN_S;
        else if (a->backoff_s < DEV_AGENT_BACKOFF_MAX_S)
            a->backoff_s = a->backoff_s * 2 > DEV_AGENT_BACKOFF_MAX_S ? DEV_AGENT_BACKOFF_MAX_S
                                                                      : a->backoff_s * 2;
        a->retry_ms = now + (int64_t)a->backoff_s * 1000;
        a->pid = -1;
        barge_warn(
            "the local %s agent on '%s' is gone, %lld s after its start; starting another in %d s",
            a->fargate ? "Fargate capacity" : "cluster", a->dir, (long long)ran_s, a->backoff_s);
    }
    if (now < a->retry_ms)
        return;
    start_dev_agent(cfg, port, a);
}

/* Stops a local agent; its containers keep running for the next one. */
static void stop_dev_agent(struct dev_agent *a)
{
    if (a->pid > 0) {
        kill(a->pid, SIGTERM);
        if (a->adopted)
            wait_lock_free(a->lock, 30000);
        else
            waitpid(a->pid, NULL, 0);
    }
    free(a->region);
    free(a->dir);
    free(a->lock);
}

/* Starts a Fargate pool agent for each region that holds something and has
 * none yet; *agents grows. */
static void start_dev_pools(struct barge_server *srv, int port, struct dev_agent **agents,
                            size_t *n)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *regions = NULL;
    if (barge_store_regions(srv->store, &regions, &err) < 0) {
        barge_warn("listing the regions for their Fargate pools: %s", err->message);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(regions, i, r)
    {
        const char *name = json_string_value(r);
        bool dflt = strcmp(name, srv->cfg.region) == 0, have = false;
        for (size_t k = 0; k < *n && !have; k++)
            have = (*agents)[k].fargate &&
                   (dflt ? !(*agents)[k].region : barge_streq((*agents)[k].region, name));
        if (have)
            continue;
        *agents = barge_xrealloc(*agents, (*n + 1) * sizeof(**agents));
        struct dev_agent *a = &(*agents)[(*n)++];
        *a = (struct dev_agent){.fargate = true, .region = dflt ? NULL : barge_xstrdup(name)};
        start_dev_agent(&srv->cfg, port, a);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: barged [OPTIONS]\n"
            "The barge control plane: serves the ECS API (and friends) over HTTP.\n"
            "\n"
            "Options:\n"
            "  --dev                 development mode: everything local, defaults below\n"
            "  --listen HOST:PORT    address to listen on (default 127.0.0.1:4566)\n"
            "  --data-dir DIR        where state lives (default ./barge-data)\n"
            "  --store URI           store location (default DIR/barge.db; sqlite://PATH, or\n"
            "                        postgres://USER:PASSWORD@HOST/DB for several barged\n"
            "                        sharing one database: one of them, elected through\n"
            "                        the database, runs the control loops)\n"
            "  --region NAME         default region (default us-east-1): every region is\n"
            "                        served; this one is --dev's and the profile's\n"
            "  --account-id ID       12-digit account id in ARNs (default 000000000000)\n"
            "  --max-skew SECONDS    allowed client clock skew (default 900)\n"
            "  --stopped-task-retention SECONDS\n"
            "                        how long stopped tasks stay describable (default 3600)\n"
            "  --deployment-retention SECONDS\n"
            "                        how long finished service deployments stay listed\n"
            "                        (default 7776000, ECS's 90 days)\n"
            "  --agent-timeout SECONDS\n"
            "                        silence after which an agent counts as disconnected (60)\n"
            "  --host-grace SECONDS  further wait before a silent host's tasks are replaced (60)\n"
            "  --task-stable-seconds SECONDS\n"
            "                        how long a task runs before its deployment counts as\n"
            "                        working for the circuit breaker (30)\n"
            "  --autoscale-interval SECONDS\n"
            "                        time between service auto scaling passes (15)\n"
            "  --autoscale-window SECONDS\n"
            "                        period target tracking averages metrics over (60)\n"
            "  --price-vcpu-hour USD, --price-gb-hour USD, --price-storage-gb-hour USD\n"
            "                        Fargate prices for metering (us-east-1 Linux/x86 rates)\n"
            "  --spot-price-factor F FARGATE_SPOT tasks cost F times as much (1.0)\n"
            "  --no-aws-profile      do not write the 'barge' profile into ~/.aws\n"
            "  --registry-host HOST  DNS suffix of the image registry: repository URIs become\n"
            "                        ACCOUNT.dkr.ecr.REGION.HOST/NAME (default: the listener's\n"
            "                        host:port)\n"
            "  --registry-gc-interval SECONDS\n"
            "                        how often lifecycle policies and the registry's garbage\n"
            "                        collector run (default 600)\n"
            "  --registry-gc-grace SECONDS\n"
            "                        how long an unreferenced blob is kept after its last use\n"
            "                        (default 3600)\n"
            "  --registry-upload-timeout SECONDS\n"
            "                        how long an idle blob upload is kept (default 3600)\n"
            "  --master-key-file PATH\n"
            "                        the key that encrypts secrets at rest (default\n"
            "                        DIR/master.key, created on first start; the\n"
            "                        BARGE_MASTER_KEY variable, 64 hex digits, wins)\n"
            "  --s3-host NAME        also serve S3 buckets as BUCKET.NAME (virtual-host\n"
            "                        style); path style always works\n"
            "  --metrics-listen HOST:PORT\n"
            "                        serve Prometheus /metrics on this address, without\n"
            "                        authentication (port 0 picks one; default: not served;\n"
            "                        keep it on loopback or a network only scrapers reach)\n"
            "  --http-threads N      HTTP event threads, which read requests, answer reads\n"
            "                        and send answers (default: one per CPU barged may use)\n"
            "  --handler-threads N   threads for requests that may wait: writes, and every\n"
            "                        request with a PostgreSQL store (default 4 per CPU,\n"
            "                        at least 8)\n"
            "  --header-timeout SECONDS\n"
            "                        close a new connection whose first request headers\n"
            "                        are not complete after this long (default 10)\n"
            "  --idle-timeout SECONDS\n"
            "                        close a connection silent for this long after a\n"
            "                        request (default 60; agents' long polls are exempt)\n"
            "  --max-connections N   open connections in all (default 16384, or the open\n"
            "                        file limit less 512 when that is lower)\n"
            "  --max-connections-per-client N\n"
            "                        open connections from one IP address (default 512)\n"
            "  --lb-address ADDR     the address load balancer listeners bind (default\n"
            "                        127.0.0.1); HAProxy runs them\n"
            "  --console-session-ttl SECONDS\n"
            "                        how long a web console sign-in lasts (default 43200)\n"
            "  --log-level LEVEL     debug, info, warn or error (default info)\n"
            "  --log-format FORMAT   text or json (default text)\n"
            "  -h, --help            show this help\n"
            "  --version             print the version\n"
            "\n"
            "On first start barged creates an admin access key, writes it as the AWS\n"
            "profile 'barge' and to DIR/admin-credentials, and prints how to use it.\n");
}

/* Repository URIs name the listener when no registry host is configured; a
 * wildcard listen address is reached through the loopback address. */
static void set_registry_endpoint(struct barge_server *srv, int port)
{
    _cleanup_free_ char *host = barge_xstrdup(srv->cfg.listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    const char *h = host;
    if (!*h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "[::]") == 0)
        h = "127.0.0.1";
    _cleanup_free_ char *ep = barge_xasprintf("%s:%d", h, port);
    barge_registry_set_endpoint(srv->registry, ep);
}

/* Another barged sharing the store changed something: wake this one's
 * long-polls and control loop. */
static void on_store_change(void *ud)
{
    barge_server_wake(ud);
}

/* Every connection is a descriptor: allow as many as the hard limit does,
 * so that thousands of idle clients fit. Returns the limit now in force. */
static rlim_t raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return RLIM_INFINITY;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            barge_warn("cannot raise the open file limit to %llu: %s", (unsigned long long)want,
                       strerror(errno));
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    return rl.rlim_cur;
}

static bool valid_account(const char *s)
{
    return strlen(s) == 12 && strspn(s, "0123456789") == 12;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dev", no_argument, NULL, 'D'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"store", required_argument, NULL, 's'},
        {"region", required_argument, NULL, 'r'},
        {"account-id", required_argument, NULL, 'a'},
        {"max-skew", required_argument, NULL, 'k'},
        {"no-aws-profile", no_argument, NULL, 'P'},
        {"log-level", required_argument, NULL, 'L'},
        {"log-format", required_argument, NULL, 'F'},
        {"stopped-task-retention", required_argument, NULL, OPT_RETENTION},
        {"deployment-retention", required_argument, NULL, OPT_DEPLOYMENT_RETENTION},
        {"agent-timeout", required_argument, NULL, OPT_AGENT_TIMEOUT},
        {"host-grace", required_argument, NULL, OPT_HOST_GRACE},
        {"task-stable-seconds", required_argument, NULL, OPT_TASK_STABLE},
        {"autoscale-interval", required_argument, NULL, OPT_AUTOSCALE_INTERVAL},
        {"autoscale-window", required_argument, NULL, OPT_AUTOSCALE_WINDOW},
        {"price-vcpu-hour", required_argument, NULL, OPT_PRICE_VCPU},
        {"price-gb-hour", required_argument, NULL, OPT_PRICE_GB},
        {"price-storage-gb-hour", required_argument, NULL, OPT_PRICE_STORAGE},
        {"spot-price-factor", required_argument, NULL, OPT_SPOT_FACTOR},
        {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
        {"handler-threads", required_argument, NULL, OPT_HANDLER_THREADS},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"max-connections-per-client", required_argument, NULL, OPT_MAX_PER_CLIENT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"registry-host", required_argument, NULL, 'R'},
        {"registry-gc-interval", required_argument, NULL, 'I'},
        {"registry-gc-grace", required_argument, NULL, 'G'},
        {"registry-upload-timeout", required_argument, NULL, 'U'},
        {"master-key-file", required_argument, NULL, 'K'},
        {"s3-host", required_argument, NULL, 'S'},
        {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
        {"lb-address", required_argument, NULL, OPT_LB_ADDRESS},
        {"console-session-ttl", required_argument, NULL, OPT_CONSOLE_SESSION_TTL},
        {NULL, 0, NULL, 0},
    };
    struct barge_server srv = {0};
    struct barge_config *cfg = &srv.cfg;
    cfg->listen = "127.0.0.1:4566";
    cfg->data_dir = "./barge-data";
    cfg->region = "us-east-1";
    cfg->account_id = "000000000000";
    cfg->max_skew_seconds = 900;
    cfg->stopped_task_retention = 3600;
    cfg->deployment_retention = 90 * 86400;
    cfg->registry_gc_interval = 600;
    cfg->registry_gc_grace = 3600;
    cfg->registry_upload_timeout = 3600;
    cfg->console_session_ttl = 43200;
    barge_server_init(&srv);
    const char *log_level = "info", *log_format = "text";
    struct barge_control_config control = {
        .host_grace_seconds = 60, .task_stable_seconds = 30, .autoscale_interval = 15};
    bool write_profile = true;
    struct barge_http_options http_opts = barge_server_http_options();
    int c;
    int option_index = 0;
    while ((c = getopt_long(argc, argv, "h", opts, &option_index)) != -1) {
        switch (c) {
        case 'D':
            cfg->dev = true;
            break;
        case 'l':
            cfg->listen = optarg;
            break;
        case 'd':
            cfg->data_dir = optarg;
            break;
        case 's':
            cfg->store_uri = optarg;
            break;
        case 'r':
            cfg->region = optarg;
            break;
        case 'a':
            cfg->account_id = optarg;
            break;
        case 'k':
            cfg->max_skew_seconds = atoi(optarg);
            break;
        case OPT_RETENTION:
        case OPT_DEPLOYMENT_RETENTION:
        case OPT_AGENT_TIMEOUT:
        case OPT_HOST_GRACE:
        case OPT_TASK_STABLE:
        case OPT_AUTOSCALE_INTERVAL:
        case OPT_AUTOSCALE_WINDOW:
        case OPT_CONSOLE_SESSION_TTL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 365L * 86400) {
                fprintf(stderr, "barged: invalid number of seconds '%s'\n", optarg);
                return 2;
            }
            if (c == OPT_RETENTION)
                cfg->stopped_task_retention = (int)v;
            else if (c == OPT_DEPLOYMENT_RETENTION)
                cfg->deployment_retention = (int)v;
            else if (c == OPT_AGENT_TIMEOUT)
                ecs_agent_timeout_seconds = (int)v;
            else if (c == OPT_HOST_GRACE)
                control.host_grace_seconds = (int)v;
            else if (c == OPT_TASK_STABLE)
                control.task_stable_seconds = (int)v;
            else if (c == OPT_AUTOSCALE_WINDOW)
                barge_autoscale_window_seconds = (int)v;
            else if (c == OPT_CONSOLE_SESSION_TTL)
                cfg->console_session_ttl = (int)v;
            else
                control.autoscale_interval = (int)v;
            break;
        }
        case OPT_HTTP_THREADS:
        case OPT_HANDLER_THREADS:
        case OPT_HEADER_TIMEOUT:
        case OPT_IDLE_TIMEOUT:
        case OPT_MAX_CONNECTIONS:
        case OPT_MAX_PER_CLIENT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            long max = c == OPT_HTTP_THREADS      ? 1024
                       : c == OPT_HANDLER_THREADS ? 256
                       : c == OPT_MAX_CONNECTIONS ? 1000000
                                                  : 86400;
            if (!*optarg || *end || v < 1 || v > max) {
                fprintf(stderr, "barged: --%s must be a number from 1 to %ld, not '%s'\n",
                        opts[option_index].name, max, optarg);
                return 2;
            }
            unsigned *dst = c == OPT_HTTP_THREADS      ? &http_opts.limits.threads
                            : c == OPT_HANDLER_THREADS ? &http_opts.limits.handler_threads
                            : c == OPT_HEADER_TIMEOUT  ? &http_opts.limits.header_timeout
                            : c == OPT_IDLE_TIMEOUT    ? &http_opts.limits.idle_timeout
                            : c == OPT_MAX_CONNECTIONS ? &http_opts.limits.max_connections
                                                       : &http_opts.limits.max_per_client;
            *dst = (unsigned)v;
            break;
        }
        case OPT_PRICE_VCPU:
        case OPT_PRICE_GB:
        case OPT_PRICE_STORAGE:
        case OPT_SPOT_FACTOR: {
            char *end;
            double v = strtod(optarg, &end);
            if (!*optarg || *end || v < 0) {
                fprintf(stderr, "barged: invalid price '%s'\n", optarg);
                return 2;
            }
            double *dst = c == OPT_PRICE_VCPU      ? &barge_prices.vcpu_hour
                          : c == OPT_PRICE_GB      ? &barge_prices.gb_hour
                          : c == OPT_PRICE_STORAGE ? &barge_prices.storage_gb_hour
                                                   : &barge_prices.spot_factor;
            *dst = v;
            break;
        }
        case 'P':
            write_profile = false;
            break;
        case 'K':
            cfg->master_key_file = optarg;
            break;
        case 'S':
            cfg->s3_host = optarg;
            break;
        case OPT_METRICS_LISTEN:
            cfg->metrics_listen = optarg;
            break;
        case OPT_LB_ADDRESS:
            cfg->lb_address = optarg;
            break;
        case 'L':
            log_level = optarg;
            break;
        case 'R':
            cfg->registry_host = optarg;
            break;
        case 'I':
        case 'G':
        case 'U': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 0 || v > 365L * 86400) {
                fprintf(stderr, "barged: invalid number of seconds '%s'\n", optarg);
                return 2;
            }
            if (c == 'I')
                cfg->registry_gc_interval = (int)v;
            else if (c == 'G')
                cfg->registry_gc_grace = (int)v;
            else
                cfg->registry_upload_timeout = (int)v;
            break;
        }
        case 'F':
            log_format = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("barged %s\n", BARGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "barged: unexpected argument '%s' (see barged --help)\n", argv[optind]);
        return 2;
    }
    if (barge_log_setup("barged", log_level, log_format) < 0) {
        fprintf(stderr, "barged: invalid --log-level '%s' or --log-format '%s'\n", log_level,
                log_format);
        return 2;
    }
    if (!valid_account(cfg->account_id)) {
        fprintf(stderr, "barged: --account-id '%s' must be 12 digits\n", cfg->account_id);
        return 2;
    }
    if (barge_mkdir_p(cfg->data_dir, 0700) < 0) {
        fprintf(stderr, "barged: cannot create data directory '%s': %s\n", cfg->data_dir,
                strerror(errno));
        return 1;
    }
    _cleanup_free_ char *default_store = barge_xasprintf("%s/barge.db", cfg->data_dir);
    if (!cfg->store_uri)
        cfg->store_uri = default_store;

    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_store_open(cfg->store_uri, &srv.store, &err) < 0) {
        fprintf(stderr, "barged: %s\n", err->message);
        return 1;
    }
    /* Task definitions are read by every Describe and RunTask and change only
     * in status: keep them parsed. */
    barge_store_cache_kind(srv.store, ECS_KIND_TASKDEF);
    if (barge_server_regions_init(&srv, &err) < 0 || barge_server_master_key_init(&srv, &err) < 0 ||
        barge_store_subscribe(srv.store, on_store_change, &srv, &err) < 0) {
        fprintf(stderr, "barged: %s\n", err->message);
        barge_store_close(srv.store);
        return 1;
    }
    /* Parse the API models now rather than on the first request of each. */
    static const char *models[] = {"ecs",  "ecr", "application-autoscaling",
                                   "logs", "ssm", "secretsmanager"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(models); i++)
        barge_model_get(models[i]);
    if (barge_server_registry_init(&srv, &err) < 0) {
        fprintf(stderr, "barged: %s\n", err->message);
        barge_store_close(srv.store);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Connections beyond the descriptors left would fail to be accepted:
     * the default keeps some for the store, the registry and the agents. */
    rlim_t fds = raise_fd_limit();
    if (!http_opts.limits.max_connections && fds != RLIM_INFINITY && fds < 16384 + 512)
        http_opts.limits.max_connections = fds > 1024 ? (unsigned)(fds - 512) : (unsigned)fds / 2;
    struct barge_http_server *http = NULL;
    if (barge_http_start(cfg->listen, barge_server_routes(), &srv, &http_opts, &http, &err) < 0) {
        fprintf(stderr, "barged: %s\n", err->message);
        barge_registry_free(srv.registry);
        barge_store_close(srv.store);
        return 1;
    }
    barge_server_set_http(&srv, http);
    int port = barge_http_port(http);
    set_registry_endpoint(&srv, port);
    if (barge_server_ensure_admin_key(&srv, port, write_profile, &err) < 0) {
        fprintf(stderr, "barged: %s\n", err->message);
        barge_server_set_http(&srv, NULL);
        barge_http_stop(http);
        barge_registry_free(srv.registry);
        barge_store_close(srv.store);
        return 1;
    }
    struct barge_http_options metrics_opts = barge_server_http_options();
    if (cfg->metrics_listen && barge_http_start(cfg->metrics_listen, barge_server_metrics_routes(),
                                                &srv, &metrics_opts, &srv.metrics_http, &err) < 0) {
        fprintf(stderr, "barged: --metrics-listen: %s\n", err->message);
        barge_server_set_http(&srv, NULL);
        barge_http_stop(http);
        barge_registry_free(srv.registry);
        barge_store_close(srv.store);
        return 1;
    }
    barge_info("listening on %s (port %d), region %s, store %s%s", cfg->listen, port, cfg->region,
               barge_store_where(srv.store), cfg->dev ? ", dev mode" : "");
    if (srv.metrics_http)
        barge_info("serving /metrics on port %d", barge_http_port(srv.metrics_http));
    /* Tests and scripts wait for this line on stdout. */
    barge_autoscale_set_metric_source(barge_metrics_autoscale_metric);
    barge_alarms_set_datapoint_source(barge_cloudwatch_datapoints);
    static const struct barge_stacks_engine cfn = {barge_cfn_step, barge_cfn_set_stopping};
    barge_stacks_set_engine(&cfn);
    if (barge_leader_start(&srv, &err) < 0 || barge_control_start(&srv, &control, &err) < 0) {
        fprintf(stderr, "barged: %s\n", err->message);
        return 1;
    }
    struct dev_agent *agents = NULL;
    size_t n_agents = 0;
    if (cfg->dev) {
        if (barge_server_ensure_cluster(&srv, "default", &err) < 0) {
            fprintf(stderr, "barged: %s\n", err->message);
            return 1;
        }
        agents = barge_xcalloc(1, sizeof(*agents));
        n_agents = 1;
        start_dev_agent(cfg, port, &agents[0]);
        start_dev_pools(&srv, port, &agents, &n_agents);
    }
    printf("barged ready on port %d\n", port);
    fflush(stdout);

    while (!stopping) {
        barge_server_housekeeping(&srv, barge_leader_active());
        for (size_t i = 0; i < n_agents; i++)
            supervise_dev_agent(cfg, port, &agents[i]);
        for (int i = 0; i < 50 && !stopping; i++) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            /* a region's first resources soon get their Fargate pool */
            if (cfg->dev && i % 10 == 9)
                start_dev_pools(&srv, port, &agents, &n_agents);
        }
    }
    barge_info("stopping on signal %d", (int)stopping);
    barge_control_stop();
    barge_leader_stop();
    /* The local agents stop together, and stopping the listener answers their
     * parked polls at once: otherwise each would finish its wait first. */
    for (size_t i = 0; i < n_agents; i++)
        if (agents[i].pid > 0)
            kill(agents[i].pid, SIGTERM);
    barge_server_set_http(&srv, NULL);
    barge_api_exec_shutdown();
    barge_http_stop(http);
    if (srv.metrics_http)
        barge_http_stop(srv.metrics_http);
    for (size_t i = 0; i < n_agents; i++)
        stop_dev_agent(&agents[i]);
    free(agents);
    barge_registry_free(srv.registry);
    barge_store_close(srv.store);
    return 0;
}
