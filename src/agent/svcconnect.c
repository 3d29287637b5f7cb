/* Service Connect's data plane on a host. ECS puts an Envoy proxy in each
 * task; barge runs one Debian HAProxy per host instead, with no proxy in
 * the tasks:
 *
 * - each distinct client alias name gets an address of 169.254.200.0/22,
 *   put on the host's loopback interface as a /32 (so the host owns it
 *   whatever the bridge does), and the agent's dnsmasq answers the name with
 *   it (dns.c adds the lines to its hosts file);
 * - a container (bridge or awsvpc) reaches it through its default route,
 *   the bridge's gateway, and HAProxy (mode tcp) listens on address:port and
 *   forwards round robin to the endpoints: the RUNNING tasks barged
 *   registered in the alias's Cloud Map discovery service, bridge tasks at
 *   their host's address and host port, awsvpc ones at their own address
 *   and container port, on any host.
 *
 * A changed set of aliases or endpoints writes a new configuration that a
 * new HAProxy process loads, taking the listening sockets over from the old
 * one (-x through its admin socket) and telling it to finish its
 * connections (-sf): no connection is refused or cut. HAProxy runs in a
 * process group of its own and outlives the agent, like the containers that
 * use it; a restarted agent finds it through the admin socket. Two agents
 * on one host both listen (HAProxy's listeners use SO_REUSEPORT) with the
 * same endpoints when they serve one cluster; agents of two clusters on one
 * host must not use the same alias name (it would get one address). An
 * agent takes away only the addresses it put on lo. */
#include "agent/svcconnect.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "net/haproxy.h"

#define NET_BASE  0xA9FEC800u /* 169.254.200.0 */
#define NET_SLOTS 1022u       /* the /22 less its first and last addresses */
#define IP        "/usr/sbin/ip"
#define MAX_OLD   16
#define HAPROXY   "/usr/sbin/haproxy"

struct barge_svcconnect {
    char *dir, *cfg_path, *sock_path, *log_path;
    pid_t pid;          /* the HAProxy serving, or 0 */
    pid_t old[MAX_OLD]; /* ours that are finishing their connections */
    int64_t retry_at;   /* no new start before (monotonic ms) after a failed one */
    bool said_missing;  /* that HAProxy is not installed, once */
};

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 16777619u;
    }
    return h;
}

static char *slot_address(uint32_t slot)
{
    uint32_t a = NET_BASE + slot;
    return barge_xasprintf("%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

json_t *barge_svcconnect_addresses(const json_t *aliases)
{
    _cleanup_json_ json_t *names = json_object();
    size_t i;
    json_t *a;
    json_array_foreach((json_t *)aliases, i, a)
    {
        const char *n = barge_json_str(a, "dnsName", NULL);
        if (n && *n)
            json_object_set_new(names, n, json_true());
    }
    const char **sorted = barge_xcalloc(json_object_size(names) + 1, sizeof(*sorted));
    size_t count = 0;
    const char *k;
    json_t *v;
    json_object_foreach(names, k, v)
    {
        sorted[count++] = k;
    }
    qsort(sorted, count, sizeof(*sorted), by_string);
    bool *taken = barge_xcalloc(NET_SLOTS, sizeof(*taken));
    json_t *out = json_object();
    for (size_t n = 0; n < count && n < NET_SLOTS; n++) {
        uint32_t slot = fnv1a(sorted[n]) % NET_SLOTS;
        while (taken[slot])
            slot = (slot + 1) % NET_SLOTS;
        taken[slot] = true;
        /* Slot s is base + s + 1: never the slice's first address. */
        _cleanup_free_ char *addr = slot_address(slot + 1);
        json_object_set_new(out, sorted[n], json_string(addr));
    }
    free(taken);
    free(sorted);
    return out;
}

char *barge_svcconnect_hosts(const json_t *addrs)
{
    char *text = NULL;
    size_t size = 0;
    FILE *b = open_memstream(&text, &size);
    const char *name;
    json_t *addr;
    json_object_foreach((json_t *)addrs, name, addr)
    {
        fprintf(b, "%s %s\n", json_string_value(addr), name);
    }
    fclose(b);
    return text;
}

char *barge_svcconnect_haproxy_config(const json_t *aliases, const json_t *addrs, const char *sock)
{
    char *text = NULL;
    size_t size = 0;
    FILE *b = open_memstream(&text, &size);
    /* Connections last as long as their clients keep them (a reload lets
     * them finish, up to hard-stop-after); a refused endpoint (a task that
     * has just stopped) is retried on another. */
    fprintf(b,
            "global\n"
            "    stats socket %s mode 600 level admin expose-fd listeners\n"
            "    hard-stop-after 10m\n"
            "defaults\n"
            "    mode tcp\n"
            "    timeout connect 3s\n"
            "    timeout client 1h\n"
            "    timeout server 1h\n"
            "    retries 2\n"
            "    option redispatch\n",
            sock);
    size_t i, j;
    json_t *a, *ep;
    json_array_foreach((json_t *)aliases, i, a)
    {
        const char *addr = barge_json_str(addrs, barge_json_str(a, "dnsName", ""), NULL);
        json_int_t port = barge_json_int(a, "port", 0);
        if (!addr || port < 1 || port > 65535)
            continue;
        fprintf(b, "frontend alias%zu\n    bind %s:%lld\n    default_backend alias%zu\n", i, addr,
                (long long)port, i);
        fprintf(b, "backend alias%zu\n    balance roundrobin\n", i);
        json_array_foreach(barge_json_array(a, "endpoints"), j, ep)
        {
            const char *host = json_string_value(json_array_get(ep, 0));
            json_int_t p = json_integer_value(json_array_get(ep, 1));
            struct in_addr in;
            if (!host || inet_pton(AF_INET, host, &in) != 1 || p < 1 || p > 65535)
                continue;
            fprintf(b, "    server e%zu %s:%lld\n", j, host, (long long)p);
        }
    }
    fclose(b);
    return text;
}

/* ---- the host's side ---- */

static bool in_slice(const struct in_addr *a)
{
    uint32_t h = ntohl(a->s_addr);
    return (h & 0xFFFFFC00u) == NET_BASE;
}

/* The slice's addresses on the loopback interface, as {addr: true}. */
static json_t *lo_addresses(void)
{
    json_t *out = json_object();
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return out;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, "lo") != 0)
            continue;
        const struct in_addr *a = &((const struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
        char text[INET_ADDRSTRLEN];
        if (in_slice(a) && inet_ntop(AF_INET, a, text, sizeof(text)))
            json_object_set_new(out, text, json_true());
    }
    freeifaddrs(ifs);
    return out;
}

/* Runs `ip -4 addr add|del ADDR/32 dev lo`; false when it fails. */
static bool ip_addr(const char *op, const char *addr)
{
    _cleanup_free_ char *prefix = barge_xasprintf("%s/32", addr);
    const char *argv[] = {IP, "-4", "addr", op, prefix, "dev", "lo", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    static const char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    pid_t pid;
    int e = posix_spawn(&pid, IP, &fa, NULL, (char *const *)argv, (char *const *)envp);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0)
        return false;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Puts want's addresses on lo and takes away those the agent of dir put
 * there before (its record, dir/addresses, a JSON array) that want no
 * longer has; others' stay: another agent on this host (of another
 * cluster, say) may serve them. */
static void sync_addresses(const char *dir, const json_t *want)
{
    _cleanup_json_ json_t *have = lo_addresses();
    _cleanup_free_ char *record = barge_xasprintf("%s/addresses", dir);
    _cleanup_free_ char *text = barge_read_file(record, NULL);
    _cleanup_json_ json_t *mine = text ? json_loads(text, 0, NULL) : NULL;
    _cleanup_json_ json_t *now = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        const char *addr = json_string_value(v);
        if (!addr)
            continue;
        json_array_append(now, v);
        if (json_object_get(have, addr))
            continue;
        if (ip_addr("add", addr))
            barge_debug("service connect: %s (%s) on lo", addr, k);
        else
            barge_warn("service connect: cannot add %s to lo", addr);
    }
    size_t i, j;
    json_t *old, *w;
    json_array_foreach(mine, i, old)
    {
        bool wanted = false;
        json_array_foreach(now, j, w)
        {
            wanted |= json_equal(w, old);
        }
        const char *addr = json_string_value(old);
        if (!wanted && addr && json_object_get(have, addr) && ip_addr("del", addr))
            barge_debug("service connect: %s off lo", addr);
    }
    if (json_equal(mine, now) || (!mine && !json_array_size(now)))
        return;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        barge_warn("service connect: cannot create %s: %s", dir, strerror(errno));
    _cleanup_free_ char *out = barge_json_dump(now);
    if (barge_write_file_atomic(record, out, strlen(out), 0600) < 0)
        barge_warn("service connect: cannot write %s: %s", record, strerror(errno));
}

static void reap_old(struct barge_svcconnect *sc)
{
    for (int i = 0; i < MAX_OLD; i++)
        if (sc->old[i] > 0 && waitpid(sc->old[i], NULL, WNOHANG) != 0)
            sc->old[i] = 0;
}

static void retire(struct barge_svcconnect *sc, pid_t pid)
{
    for (int i = 0; i < MAX_OLD; i++)
        if (sc->old[i] <= 0) {
            sc->old[i] = pid;
            return;
        }
}

struct barge_svcconnect *barge_svcconnect_new(const char *data_dir)
{
    struct barge_svcconnect *sc = barge_xcalloc(1, sizeof(*sc));
    sc->dir = barge_xasprintf("%s/svcconnect", data_dir);
    sc->cfg_path = barge_xasprintf("%s/haproxy.cfg", sc->dir);
    _cleanup_free_ char *sock = barge_xasprintf("%s/admin.sock", sc->dir);
    sc->sock_path = barge_haproxy_socket_path(sock, "svcconnect");
    sc->log_path = barge_xasprintf("%s/haproxy.log", sc->dir);
    _cleanup_error_ struct barge_error *err = NULL;
    pid_t pid = access(sc->sock_path, F_OK) == 0 ? barge_haproxy_pid(sc->sock_path, &err) : -1;
    if (pid > 0) {
        sc->pid = pid;
        barge_info("service connect: keeping HAProxy (pid %d)", (int)pid);
    }
    return sc;
}

static void stop_haproxy(const char *sock)
{
    _cleanup_error_ struct barge_error *err = NULL;
    pid_t pid = access(sock, F_OK) == 0 ? barge_haproxy_pid(sock, &err) : -1;
    if (pid > 0)
        kill(pid, SIGTERM);
    unlink(sock);
}

void barge_svcconnect_apply(struct barge_svcconnect *sc, const json_t *aliases, const json_t *addrs)
{
    reap_old(sc);
    sync_addresses(sc->dir, addrs);
    if (!json_array_size(aliases)) {
        if (sc->pid > 0) {
            barge_info("service connect: no client alias left; stopping HAProxy %d", (int)sc->pid);
            stop_haproxy(sc->sock_path);
            retire(sc, sc->pid);
            sc->pid = 0;
        }
        return;
    }
    if (access(HAPROXY, X_OK) != 0) {
        if (!sc->said_missing)
            barge_warn("service connect: %s not installed (Debian package haproxy); client "
                       "aliases resolve but nothing listens",
                       HAPROXY);
        sc->said_missing = true;
        return;
    }
    _cleanup_free_ char *config = barge_svcconnect_haproxy_config(aliases, addrs, sc->sock_path);
    _cleanup_free_ char *have = barge_read_file(sc->cfg_path, NULL);
    _cleanup_error_ struct barge_error *err = NULL;
    bool alive = sc->pid > 0 && barge_haproxy_pid(sc->sock_path, &err) == sc->pid;
    if (alive && barge_streq(have, config))
        return;
    if (barge_monotonic_ms() < sc->retry_at)
        return;
    if (mkdir(sc->dir, 0700) < 0 && errno != EEXIST)
        barge_warn("service connect: cannot create %s: %s", sc->dir, strerror(errno));
    barge_error_free(err);
    err = NULL;
    pid_t old = alive ? sc->pid : 0;
    pid_t pid = barge_haproxy_start(sc->cfg_path, config, sc->log_path, old,
                                    old ? sc->sock_path : NULL, &err);
    if (pid < 0) {
        barge_warn("service connect: %s", err->message);
        sc->retry_at = barge_monotonic_ms() + 5000;
        return;
    }
    if (old)
        retire(sc, old);
    sc->pid = pid;
    /* Until it answers on the admin socket, the old process does: the next
     * change must find the new one there. */
    for (int i = 0; i < 300; i++) {
        barge_error_free(err);
        err = NULL;
        if (barge_haproxy_pid(sc->sock_path, &err) == pid)
            break;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            barge_warn("service connect: HAProxy %d exited (see %s)", (int)pid, sc->log_path);
            sc->pid = 0;
            sc->retry_at = barge_monotonic_ms() + 5000;
            return;
        }
        usleep(10 * 1000);
    }
    barge_info("service connect: HAProxy %d serves %zu client alias(es) (log %s)", (int)pid,
               json_array_size(aliases), sc->log_path);
}

void barge_svcconnect_free(struct barge_svcconnect *sc)
{
    if (!sc)
        return;
    /* HAProxy keeps serving the containers that keep running. */
    free(sc->dir);
    free(sc->cfg_path);
    free(sc->sock_path);
    free(sc->log_path);
    free(sc);
}

void barge_svcconnect_clean(const char *data_dir)
{
    _cleanup_free_ char *dir = barge_xasprintf("%s/svcconnect", data_dir);
    _cleanup_free_ char *wanted = barge_xasprintf("%s/admin.sock", dir);
    _cleanup_free_ char *sock = barge_haproxy_socket_path(wanted, "svcconnect");
    if (access(sock, F_OK) == 0) {
        stop_haproxy(sock);
        printf("stopped the Service Connect proxy (HAProxy)\n");
    }
    _cleanup_json_ json_t *none = json_object();
    sync_addresses(dir, none);
}
