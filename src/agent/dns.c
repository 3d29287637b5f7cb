/* The DNS server containers use for service discovery: Debian's dnsmasq,
 * run by the agent on the bridge's gateway address (port 53), answering
 * <service>.<namespace> for the Cloud Map private DNS namespaces with the
 * addresses of their healthy instances (for ECS services: their RUNNING
 * tasks) and forwarding every other name to the host's resolvers
 * (/etc/resolv.conf, read by dnsmasq itself).
 *
 * A thread long-polls barged (/agent/dns) for the records and writes them as
 * a hosts file (--addn-hosts) and the namespaces as local-only domains
 * (--servers-file: names of a namespace that no instance answers are
 * NXDOMAIN, never asked upstream), then has dnsmasq reread both with SIGHUP.
 * SRV records (Cloud Map services with an SRV record) are --srv-host options,
 * which dnsmasq reads only when it starts (SIGHUP rereads hosts files and
 * the servers file, not configuration files): when they change the agent
 * restarts dnsmasq, and queries in the few milliseconds between the old
 * process's exit and the new one's bind go unanswered (resolvers retry).
 * Containers of bridge and awsvpc tasks get the gateway as their nameserver
 * (unless their definition names dnsServers).
 *
 * dnsmasq runs in a session of its own and outlives the agent, like the
 * containers that use it: a restarted agent finds it through the pid file
 * and keeps it. Two agents sharing a bridge (barged --dev's local agent and
 * its Fargate pool) serve the same records; the second one's dnsmasq cannot
 * bind the address and the first one's answers for both. Without dnsmasq
 * installed, containers keep the host's resolvers. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/svcconnect.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define DNSMASQ        "/usr/sbin/dnsmasq"
#define RETRY_MS       5000
#define POLL_WAIT_S    20
#define POLL_TIMEOUT_S 40
#define DNS_CHARS      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

struct barge_agent_dns {
    struct barge_agent *a;
    pthread_t thread;
    bool started;
    char *dir, *hosts_path, *servers_path, *srv_path, *pid_path, *log_path;
    char *gateway;
    pid_t pid;        /* dnsmasq, or 0 */
    int64_t retry_at; /* no new start before (monotonic ms) */
    int starts;       /* dnsmasq processes started */
    char *version;    /* of the records written */
    char *srv;        /* the SRV options dnsmasq was started with, or NULL */
    struct barge_svcconnect *sc;
    json_t *aliases, *alias_addrs; /* Service Connect's, as last written */
};

/* Whether pid is a dnsmasq serving our hosts file (and not a zombie). */
static bool ours(const struct barge_agent_dns *d, pid_t pid)
{
    if (pid <= 0)
        return false;
    _cleanup_free_ char *path = barge_xasprintf("/proc/%d/cmdline", (int)pid);
    size_t len = 0;
    _cleanup_free_ char *cmd = barge_read_file(path, &len);
    if (!cmd || len == 0)
        return false;
    _cleanup_free_ char *want = barge_xasprintf("--addn-hosts=%s", d->hosts_path);
    for (size_t off = 0; off < len; off += strlen(cmd + off) + 1)
        if (strcmp(cmd + off, want) == 0)
            return true;
    return false;
}

/* Whether dnsmasq pid was started with our SRV file as its configuration. */
static bool reads_srv_file(const struct barge_agent_dns *d, pid_t pid)
{
    _cleanup_free_ char *path = barge_xasprintf("/proc/%d/cmdline", (int)pid);
    size_t len = 0;
    _cleanup_free_ char *cmd = barge_read_file(path, &len);
    _cleanup_free_ char *want = barge_xasprintf("--conf-file=%s", d->srv_path);
    for (size_t off = 0; cmd && off < len; off += strlen(cmd + off) + 1)
        if (strcmp(cmd + off, want) == 0)
            return true;
    return false;
}

char *barge_agent_dns_srv_options(const json_t *records)
{
    char *text = barge_xstrdup("");
    size_t i;
    json_t *r;
    json_array_foreach((json_t *)records, i, r)
    {
        const char *name = json_string_value(json_array_get(r, 0));
        const char *target = json_string_value(json_array_get(r, 1));
        json_int_t port = json_integer_value(json_array_get(r, 2));
        /* Names only of DNS's letters: nothing that could end an option. */
        if (!name || !target || !*name || !*target || port < 1 || port > 65535 ||
            name[strspn(name, DNS_CHARS)] || target[strspn(target, DNS_CHARS)])
            continue;
        char *more =
            barge_xasprintf("%ssrv-host=%s,%s,%lld,1,1\n", text, name, target, (long long)port);
        free(text);
        text = more;
    }
    return text;
}

static bool running(struct barge_agent_dns *d)
{
    /* Our child runs until waitpid reaps it (its command line is still the
     * agent's until it has exec'd dnsmasq); one a previous agent left is
     * known by its command line. */
    pid_t w = d->pid > 0 ? waitpid(d->pid, NULL, WNOHANG) : -1;
    if (w == 0 || (w < 0 && ours(d, d->pid)))
        return true;
    d->pid = 0;
    return false;
}

static void start_dnsmasq(struct barge_agent_dns *d)
{
    if (running(d) || barge_monotonic_ms() < d->retry_at)
        return;
    d->retry_at = barge_monotonic_ms() + RETRY_MS;
    _cleanup_free_ char *listen = barge_xasprintf("--listen-address=%s", d->gateway);
    _cleanup_free_ char *hosts = barge_xasprintf("--addn-hosts=%s", d->hosts_path);
    _cleanup_free_ char *servers = barge_xasprintf("--servers-file=%s", d->servers_path);
    _cleanup_free_ char *pidf = barge_xasprintf("--pid-file=%s", d->pid_path);
    _cleanup_free_ char *logf = barge_xasprintf("--log-facility=%s", d->log_path);
    /* Only our SRV options: never /etc/dnsmasq.conf. */
    _cleanup_free_ char *conf = barge_xasprintf("--conf-file=%s", d->srv_path);
    /* Root: the files live in the agent's data directory, which need not be
     * readable by dnsmasq's default user, and SIGHUP rereads them. It binds
     * the gateway address only (not 127.0.0.1, which the host's own resolver
     * may use); --bind-dynamic waits for the bridge when it does not exist
     * yet. Local answers have TTL 0 and nothing negative is cached, so a
     * task that stops drops out of answers at once. */
    const char *argv[] = {DNSMASQ,
                          "--keep-in-foreground",
                          conf,
                          "--user=root",
                          listen,
                          "--bind-dynamic",
                          "--port=53",
                          "--no-hosts",
                          hosts,
                          servers,
                          "--no-negcache",
                          "--local-ttl=0",
                          pidf,
                          logf,
                          NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    sigset_t def, mask;
    sigemptyset(&def);
    static const int reset[] = {SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(reset); i++)
        sigaddset(&def, reset[i]);
    sigemptyset(&mask);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    static const char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    pid_t pid;
    int e = posix_spawn(&pid, DNSMASQ, &fa, &attr, (char *const *)argv, (char *const *)envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        barge_warn("dns: cannot run %s: %s", DNSMASQ, strerror(e));
        return;
    }
    d->pid = pid;
    free(d->srv);
    d->srv = barge_read_file(d->srv_path, NULL);
    /* Another agent's dnsmasq on the same bridge makes each start fail
     * again; only the first is worth the log. */
    if (d->starts++ == 0)
        barge_info("dns: dnsmasq (pid %d) answers Cloud Map names on %s:53 (log %s)", (int)pid,
                   d->gateway, d->log_path);
    else
        barge_debug("dns: dnsmasq restarted (pid %d)", (int)pid);
}

/* Writes the records of an /agent/dns answer: 1 when they changed, 0 when
 * not, -1 when they could not be written. */
static int write_records(struct barge_agent_dns *d, const json_t *out)
{
    const char *version = barge_json_str(out, "version", "");
    if (barge_streq(d->version, version))
        return 0;
    /* Service Connect's alias names answer their proxy addresses. */
    json_decref(d->aliases);
    json_decref(d->alias_addrs);
    d->aliases = json_incref(barge_json_array(out, "aliases"));
    d->alias_addrs = barge_svcconnect_addresses(d->aliases);
    barge_svcconnect_apply(d->sc, d->aliases, d->alias_addrs);
    _cleanup_free_ char *alias_hosts = barge_svcconnect_hosts(d->alias_addrs);
    _cleanup_free_ char *hosts =
        barge_xasprintf("%s%s", barge_json_str(out, "hosts", ""), alias_hosts);
    char *servers = barge_xstrdup("");
    size_t i;
    json_t *dom;
    json_array_foreach(barge_json_array(out, "domains"), i, dom)
    {
        /* A line that could end the file's format is never written. */
        const char *name = json_string_value(dom);
        if (!name || strpbrk(name, "/\n# "))
            continue;
        char *more = barge_xasprintf("%sserver=/%s/\n", servers, name);
        free(servers);
        servers = more;
    }
    _cleanup_free_ char *srv = barge_agent_dns_srv_options(barge_json_array(out, "srv"));
    bool ok = barge_write_file_atomic(d->hosts_path, hosts, strlen(hosts), 0644) == 0 &&
              barge_write_file_atomic(d->servers_path, servers, strlen(servers), 0644) == 0 &&
              barge_write_file_atomic(d->srv_path, srv, strlen(srv), 0644) == 0;
    free(servers);
    if (!ok) {
        barge_warn("dns: cannot write %s: %s", d->dir, strerror(errno));
        return -1;
    }
    free(d->version);
    d->version = barge_xstrdup(version);
    return 1;
}

/* Stops dnsmasq, to start it again with new options; waits (up to 2 s) for
 * the address to be free. */
static void stop_dnsmasq(struct barge_agent_dns *d)
{
    if (!running(d))
        return;
    pid_t pid = d->pid;
    kill(pid, SIGTERM);
    for (int i = 0; i < 200 && running(d); i++)
        usleep(10 * 1000);
    if (d->pid)
        barge_warn("dns: dnsmasq (pid %d) did not stop", (int)pid);
    d->retry_at = 0;
}

static void *dns_thread(void *arg)
{
    struct barge_agent_dns *d = arg;
    struct barge_agent_client *client = barge_agent_client_new(d->a->cfg.server);
    barge_agent_client_stop_aware(client);
    int failures = 0;
    while (!barge_agent_stopping()) {
        start_dnsmasq(d);
        _cleanup_json_ json_t *body =
            json_pack("{s:s, s:i}", "version", d->version ? d->version : "", "wait", POLL_WAIT_S);
        _cleanup_json_ json_t *out = NULL;
        _cleanup_error_ struct barge_error *err = NULL;
        int status = barge_agent_client_post(client, "/agent/dns", body, d->a->token, NULL,
                                             POLL_TIMEOUT_S, &out, &err);
        if (status == 200) {
            failures = 0;
            int r = write_records(d, out);
            if (r == 0 && d->aliases) /* unchanged: one that died starts again */
                barge_svcconnect_apply(d->sc, d->aliases, d->alias_addrs);
            _cleanup_free_ char *srv = r > 0 ? barge_read_file(d->srv_path, NULL) : NULL;
            if (r > 0 && running(d) && !barge_streq(srv, d->srv ? d->srv : "")) {
                stop_dnsmasq(d);
                start_dnsmasq(d);
            } else if (r > 0 && running(d)) {
                kill(d->pid, SIGHUP);
            }
            if (r < 0)
                sleep(2); /* barged answers at once while the version differs */
            continue;
        }
        if (barge_agent_stopping())
            break;
        if (failures++ % 10 == 0)
            barge_warn("dns: asking barged for records: %s",
                       err ? err->message : barge_json_str(out, "message", "server error"));
        sleep(failures > 5 ? 2 : 1);
    }
    barge_agent_client_free(client);
    return NULL;
}

/* Empty files before the first answer, so that dnsmasq starts serving the
 * host's names at once. */
static void ensure_file(const char *path)
{
    if (access(path, F_OK) != 0)
        barge_write_file_atomic(path, "", 0, 0644);
}

void barge_agent_dns_start(struct barge_agent *a)
{
    _cleanup_free_ char *gw = a->net.subnet ? barge_net_cidr_gateway(a->net.subnet) : NULL;
    if (!gw)
        return;
    if (access(DNSMASQ, X_OK) != 0) {
        barge_info("dns: %s not installed (Debian package dnsmasq-base); containers use the "
                   "host's resolvers and Cloud Map names do not resolve",
                   DNSMASQ);
        return;
    }
    struct barge_agent_dns *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->a = a;
    d->gateway = barge_steal(&gw);
    d->dir = barge_xasprintf("%s/dns", a->cfg.data_dir);
    d->hosts_path = barge_xasprintf("%s/hosts", d->dir);
    d->servers_path = barge_xasprintf("%s/servers", d->dir);
    d->srv_path = barge_xasprintf("%s/srv.conf", d->dir);
    d->pid_path = barge_xasprintf("%s/dnsmasq.pid", d->dir);
    d->log_path = barge_xasprintf("%s/dnsmasq.log", d->dir);
    if (mkdir(d->dir, 0755) < 0 && errno != EEXIST)
        barge_warn("dns: cannot create %s: %s", d->dir, strerror(errno));
    ensure_file(d->hosts_path);
    ensure_file(d->servers_path);
    ensure_file(d->srv_path);
    /* One a previous agent left serving. */
    _cleanup_free_ char *text = barge_read_file(d->pid_path, NULL);
    pid_t old = text ? (pid_t)atoi(text) : 0;
    if (ours(d, old)) {
        d->pid = old;
        /* What it read when it started, when it read our file at all (one
         * an older agent started reads none). */
        if (reads_srv_file(d, old))
            d->srv = barge_read_file(d->srv_path, NULL);
        barge_info("dns: keeping dnsmasq (pid %d) on %s:53", (int)old, d->gateway);
    }
    d->sc = barge_svcconnect_new(a->cfg.data_dir);
    a->dns_server = barge_xstrdup(d->gateway);
    a->dns = d;
    if (pthread_create(&d->thread, NULL, dns_thread, d) != 0) {
        barge_warn("dns: cannot start its thread");
        return;
    }
    d->started = true;
}

void barge_agent_dns_stop(struct barge_agent *a)
{
    struct barge_agent_dns *d = a->dns;
    if (!d)
        return;
    if (d->started)
        pthread_join(d->thread, NULL);
    /* dnsmasq keeps serving the containers that keep running. */
    free(d->dir);
    free(d->hosts_path);
    free(d->servers_path);
    free(d->srv_path);
    free(d->srv);
    barge_svcconnect_free(d->sc);
    json_decref(d->aliases);
    json_decref(d->alias_addrs);
    free(d->pid_path);
    free(d->log_path);
    free(d->gateway);
    free(d->version);
    free(d);
    a->dns = NULL;
    free(a->dns_server);
    a->dns_server = NULL;
}

void barge_agent_dns_clean(const char *data_dir)
{
    struct barge_agent_dns d = {0};
    d.hosts_path = barge_xasprintf("%s/dns/hosts", data_dir);
    _cleanup_free_ char *pid_path = barge_xasprintf("%s/dns/dnsmasq.pid", data_dir);
    _cleanup_free_ char *text = barge_read_file(pid_path, NULL);
    pid_t pid = text ? (pid_t)atoi(text) : 0;
    if (ours(&d, pid) && kill(pid, SIGTERM) == 0)
        printf("stopped the DNS server (dnsmasq, pid %d)\n", (int)pid);
    free(d.hosts_path);
    barge_svcconnect_clean(data_dir);
}
