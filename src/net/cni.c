/* The CNI driver: makes and removes task network namespaces and runs the
 * containernetworking plugins on them as the CNI specification describes
 * (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH in the
 * environment, the network configuration on stdin, the result or an error on
 * stdout). The plugins of a task form a chain like a CNI conflist: loopback,
 * then bridge (host-local IPAM), then portmap with the previous result; DEL
 * runs them in reverse with the very configurations ADD got, read back from
 * the task's state file, because portmap can only remove the rules it is told
 * about and bridge only unmasquerades the address still in the namespace.
 * That is also why the namespace stays mounted until every DEL is done. */
#include <arpa/inet.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <sched.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "net/internal.h"
#include "net/net.h"

#define CNI_VERSION       "1.0.0"
#define PLUGIN_TIMEOUT_MS 30000
#ifndef NSFS_MAGIC
#    define NSFS_MAGIC 0x6e736673
#endif

static const char *cni_path(const struct barge_net_config *cfg)
{
    return cfg->cni_path ? cfg->cni_path : "/usr/lib/cni";
}

static const char *bridge_name(const struct barge_net_config *cfg)
{
    return cfg->bridge ? cfg->bridge : "barge0";
}

static char *state_path(const struct barge_net_config *cfg, const char *task_id)
{
    return barge_xasprintf("%s/%s.json", cfg->state_dir, task_id);
}

static char *netns_path(const struct barge_net_config *cfg, const char *task_id)
{
    return barge_xasprintf("%s/%s.netns", cfg->state_dir, task_id);
}

/* --- the host-wide lock ------------------------------------------------- */

/* Held while ports are chosen and published, so two agents on one host (or
 * two tasks of one agent) cannot pick the same free port. */
static int lock_host(const struct barge_net_config *cfg, struct barge_error **err)
{
    const char *path = cfg->lock_path ? cfg->lock_path : "/run/barge-net.lock";
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open lock '%s'", path);
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            close(fd);
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot lock '%s'", path);
        }
    }
    return fd;
}

static void unlock_host(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* --- namespaces --------------------------------------------------------- */

static bool is_netns_mount(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)NSFS_MAGIC;
}

/* A new network namespace kept alive by a bind mount at path. The child that
 * makes it shares our mount namespace, so its bind mount is ours; it only
 * makes system calls between fork and _exit, which is safe in a
 * multi-threaded parent. */
static int netns_create(const char *path, struct barge_error **err)
{
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", path);
    close(fd);
    if (is_netns_mount(path))
        return 0;
    pid_t pid = fork();
    if (pid < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "fork for a network namespace");
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) < 0)
            _exit(1);
        if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
            _exit(2);
        _exit(0);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return barge_error_set(err, BARGE_ERR_IO,
                               "cannot make a network namespace at '%s' (%s failed)", path,
                               WIFEXITED(ws) && WEXITSTATUS(ws) == 2 ? "mount" : "unshare");
    return 0;
}

static int netns_remove(const char *path, struct barge_error **err)
{
    /* Lazily, and repeatedly: a namespace mounted twice (two racing
     * creates) must not survive as a second layer. */
    for (int i = 0; i < 8 && is_netns_mount(path); i++)
        if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot unmount '%s'", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove '%s'", path);
    return 0;
}

/* --- plugins ------------------------------------------------------------ */

/* Runs one plugin. On ADD success *result (optional) is its parsed result. */
static int plugin_run(const struct barge_net_config *cfg, const char *command,
                      const char *container_id, const char *netns, const char *ifname,
                      const json_t *conf, json_t **result, struct barge_error **err)
{
    if (result)
        *result = NULL;
    const char *type = barge_json_str(conf, "type", "");
    _cleanup_free_ char *bin = barge_xasprintf("%s/%s", cni_path(cfg), type);
    _cleanup_free_ char *e_cmd = barge_xasprintf("CNI_COMMAND=%s", command);
    _cleanup_free_ char *e_id = barge_xasprintf("CNI_CONTAINERID=%s", container_id);
    _cleanup_free_ char *e_ns = barge_xasprintf("CNI_NETNS=%s", netns);
    _cleanup_free_ char *e_if = barge_xasprintf("CNI_IFNAME=%s", ifname);
    _cleanup_free_ char *e_path = barge_xasprintf("CNI_PATH=%s", cni_path(cfg));
    const char *envp[] = {
        e_cmd, e_id,   e_ns,
        e_if,  e_path, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        NULL};
    const char *argv[] = {bin, NULL};
    _cleanup_free_ char *input = barge_json_dump(conf);
    struct barge_netp_result res;
    if (barge_netp_run(argv, envp, input, PLUGIN_TIMEOUT_MS, &res, err) < 0)
        return barge_error_wrap(err, "cni %s %s", type, command);
    int rc = 0;
    if (res.timed_out) {
        rc = barge_error_set(err, BARGE_ERR_IO, "cni plugin '%s' %s timed out after %d s", type,
                             command, PLUGIN_TIMEOUT_MS / 1000);
    } else if (res.status != 0) {
        json_error_t jerr;
        _cleanup_json_ json_t *e = json_loads(res.out, 0, &jerr);
        const char *msg = barge_json_str(e, "msg", NULL);
        const char *details = barge_json_str(e, "details", NULL);
        rc = barge_error_set(err, BARGE_ERR_IO, "cni plugin '%s' %s failed (%d): %s%s%s", type,
                             command, res.status,
                             msg          ? msg
                             : res.err[0] ? res.err
                                          : res.out,
                             details && *details ? ": " : "", details ? details : "");
    } else if (result && strcmp(command, "ADD") == 0) {
        json_error_t jerr;
        *result = json_loads(res.out, 0, &jerr);
        if (!json_is_object(*result)) {
            json_decref(*result);
            *result = NULL;
            rc = barge_error_set(err, BARGE_ERR_IO, "cni plugin '%s' returned no result: %s", type,
                                 jerr.text);
        }
    }
    barge_netp_result_release(&res);
    return rc;
}

static json_t *loopback_conf(void)
{
    return json_pack("{s:s, s:s, s:s}", "cniVersion", CNI_VERSION, "name", "lo", "type",
                     "loopback");
}

static json_t *bridge_conf(const struct barge_net_config *cfg)
{
    _cleanup_free_ char *gw = barge_net_cidr_gateway(cfg->subnet);
    json_t *ipam =
        json_pack("{s:s, s:[[{s:s, s:s}]], s:[{s:s}]}", "type", "host-local", "ranges", "subnet",
                  cfg->subnet, "gateway", gw ? gw : "", "routes", "dst", "0.0.0.0/0");
    if (cfg->ipam_dir)
        json_object_set_new(ipam, "dataDir", json_string(cfg->ipam_dir));
    /* hairpinMode lets a task reach its own published port through the
     * host's address; ipMasq gives tasks the host's address outside. */
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:o}", "cniVersion", CNI_VERSION, "name",
                     bridge_name(cfg), "type", "bridge", "bridge", bridge_name(cfg), "isGateway",
                     true, "ipMasq", true, "hairpinMode", true, "ipam", ipam);
}

static json_t *portmap_conf(const struct barge_net_config *cfg, const json_t *bindings)
{
    json_t *maps = json_array();
    size_t i;
    json_t *b;
    json_array_foreach((json_t *)bindings, i, b)
    {
        json_array_append_new(maps, json_pack("{s:I, s:I, s:s}", "hostPort",
                                              barge_json_int(b, "hostPort", 0), "containerPort",
                                              barge_json_int(b, "containerPort", 0), "protocol",
                                              barge_json_str(b, "protocol", "tcp")));
    }
    /* snat makes the port answer on 127.0.0.1 too: portmap masquerades
     * connections from the host's loopback and sets route_localnet on the
     * bridge. */
    return json_pack("{s:s, s:s, s:s, s:{s:b}, s:b, s:{s:o}}", "cniVersion", CNI_VERSION, "name",
                     bridge_name(cfg), "type", "portmap", "capabilities", "portMappings", true,
                     "snat", true, "runtimeConfig", "portMappings", maps);
}

/* --- state files -------------------------------------------------------- */

static int state_write(const struct barge_net_config *cfg, const char *task_id, const json_t *st,
                       struct barge_error **err)
{
    _cleanup_free_ char *path = state_path(cfg, task_id);
    _cleanup_free_ char *text = json_dumps(st, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!text || barge_write_file_atomic(path, text, strlen(text), 0600) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    return 0;
}

static int state_read(const struct barge_net_config *cfg, const char *task_id, json_t **out,
                      struct barge_error **err)
{
    *out = NULL;
    _cleanup_free_ char *path = state_path(cfg, task_id);
    _cleanup_free_ char *text = barge_read_file(path, NULL);
    if (!text) {
        if (errno == ENOENT)
            return barge_error_set(err, BARGE_ERR_NOT_FOUND, "no network recorded for task '%s'",
                                   task_id);
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
    }
    json_error_t jerr;
    *out = json_loads(text, 0, &jerr);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return barge_error_set(err, BARGE_ERR_IO, "'%s' is corrupt: %s", path, jerr.text);
    }
    return 0;
}

static struct barge_net_task *task_from_state(const json_t *st)
{
    struct barge_net_task *t = barge_xcalloc(1, sizeof(*t));
    t->task_id = barge_xstrdup(barge_json_str(st, "taskId", ""));
    t->mode = barge_xstrdup(barge_json_str(st, "mode", "bridge"));
    const char *s;
    if ((s = barge_json_str(st, "netns", NULL)))
        t->netns_path = barge_xstrdup(s);
    if ((s = barge_json_str(st, "ipv4", NULL)))
        t->ipv4 = barge_xstrdup(s);
    if ((s = barge_json_str(st, "mac", NULL)))
        t->mac = barge_xstrdup(s);
    if ((s = barge_json_str(st, "gateway", NULL)))
        t->gateway = barge_xstrdup(s);
    if ((s = barge_json_str(st, "subnet", NULL)))
        t->subnet = barge_xstrdup(s);
    json_t *b = barge_json_array(st, "bindings");
    t->bindings = b ? json_deep_copy(b) : json_array();
    return t;
}

void barge_net_task_free(struct barge_net_task *t)
{
    if (!t)
        return;
    free(t->task_id);
    free(t->mode);
    free(t->netns_path);
    free(t->ipv4);
    free(t->mac);
    free(t->gateway);
    free(t->subnet);
    json_decref(t->bindings);
    free(t);
}

int barge_net_task_load(const struct barge_net_config *cfg, const char *task_id,
                        struct barge_net_task **out, struct barge_error **err)
{
    _cleanup_json_ json_t *st = NULL;
    if (state_read(cfg, task_id, &st, err) < 0)
        return -1;
    *out = task_from_state(st);
    return 0;
}

/* --- ports -------------------------------------------------------------- */

static void scan_used_ports(struct barge_net_portset *used)
{
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp",
                                         "/proc/net/udp6"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(tables); i++) {
        _cleanup_free_ char *t = barge_read_file(tables[i], NULL);
        barge_net_ports_parse_proc(t, used);
    }
    const char *argv[] = {"/usr/sbin/iptables-save", "-t", "nat", NULL};
    struct barge_netp_result res;
    _cleanup_error_ struct barge_error *err = NULL;
    if (access(argv[0], X_OK) == 0 && barge_netp_run(argv, NULL, NULL, 10000, &res, &err) == 0) {
        if (res.status == 0)
            barge_net_ports_parse_iptables(res.out, used);
        barge_netp_result_release(&res);
    }
}

/* Fills in the host ports of bindings: dynamic ones are picked from the
 * range, skipping everything taken. */
static int assign_ports(const struct barge_net_config *cfg, json_t *bindings, const uint16_t *avoid,
                        size_t n_avoid, struct barge_error **err)
{
    size_t i, n_dynamic = 0;
    json_t *b;
    json_array_foreach(bindings, i, b)
    {
        if (barge_json_int(b, "hostPort", 0) == 0)
            n_dynamic++;
    }
    if (n_dynamic == 0)
        return 0;
    struct barge_net_portset *used = barge_xcalloc(1, sizeof(*used));
    scan_used_ports(used);
    for (size_t k = 0; k < cfg->n_reserved; k++)
        barge_net_portset_add(used, cfg->reserved_ports[k]);
    for (size_t k = 0; k < n_avoid; k++)
        barge_net_portset_add(used, avoid[k]);
    json_array_foreach(bindings, i, b)
    {
        json_int_t hp = barge_json_int(b, "hostPort", 0);
        if (hp > 0)
            barge_net_portset_add(used, (uint16_t)hp);
    }
    uint16_t *picked = barge_xcalloc(n_dynamic, sizeof(uint16_t));
    uint32_t start;
    barge_random_bytes(&start, sizeof(start));
    int rc = barge_net_ports_pick(used, cfg->port_lo, cfg->port_hi, start, n_dynamic, picked);
    if (rc < 0) {
        barge_error_set(err, BARGE_ERR_LIMIT,
                        "no free host port left in the dynamic range %u-%u for %zu mapping(s)",
                        cfg->port_lo, cfg->port_hi, n_dynamic);
    } else {
        size_t k = 0;
        json_array_foreach(bindings, i, b)
        {
            if (barge_json_int(b, "hostPort", 0) == 0)
                json_object_set_new(b, "hostPort", json_integer(picked[k++]));
        }
    }
    free(picked);
    free(used);
    return rc;
}

/* --- setup and teardown ------------------------------------------------- */

static const char *plugin_ifname(const json_t *conf)
{
    return strcmp(barge_json_str(conf, "type", ""), "loopback") == 0 ? "lo" : "eth0";
}

/* Reads the task's address, MAC and gateway out of the bridge result. */
static void take_result(json_t *st, const json_t *result)
{
    json_t *ip = json_array_get(barge_json_array(result, "ips"), 0);
    const char *addr = barge_json_str(ip, "address", NULL);
    if (addr) {
        _cleanup_free_ char *a = barge_xstrndup(addr, strcspn(addr, "/"));
        json_object_set_new(st, "ipv4", json_string(a));
    }
    barge_json_set_str(st, "gateway", barge_json_str(ip, "gateway", NULL));
    json_t *ifc = json_array_get(barge_json_array(result, "interfaces"),
                                 (size_t)barge_json_int(ip, "interface", 0));
    barge_json_set_str(st, "mac", barge_json_str(ifc, "mac", NULL));
}

static int teardown_state(const struct barge_net_config *cfg, const char *task_id, json_t *st,
                          struct barge_error **err)
{
    const char *ns = barge_json_str(st, "netns", NULL);
    json_t *plugins = barge_json_array(st, "plugins");
    int rc = 0;
    if (ns && json_array_size(plugins) > 0) {
        /* After a reboot the mount point is an empty file; a fresh namespace
         * lets the plugins run (and release the address) rather than fail
         * on a path that is no namespace. */
        if (access(ns, F_OK) == 0 && !is_netns_mount(ns)) {
            _cleanup_error_ struct barge_error *e = NULL;
            if (netns_create(ns, &e) < 0)
                barge_warn("task %s: %s", task_id, e->message);
        }
        for (size_t i = json_array_size(plugins); i > 0; i--) {
            json_t *conf = json_array_get(plugins, i - 1);
            _cleanup_error_ struct barge_error *e = NULL;
            if (plugin_run(cfg, "DEL", barge_json_str(st, "containerId", task_id), ns,
                           plugin_ifname(conf), conf, NULL, &e) < 0) {
                barge_warn("task %s: %s", task_id, e->message);
                if (rc == 0)
                    rc = barge_error_set(err, e->code, "%s", e->message);
            }
        }
    }
    if (rc < 0)
        return rc; /* keep the namespace and the record for a retry */
    if (ns && netns_remove(ns, err) < 0)
        return -1;
    _cleanup_free_ char *path = state_path(cfg, task_id);
    if (unlink(path) < 0 && errno != ENOENT)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove '%s'", path);
    return 0;
}

int barge_net_task_teardown(const struct barge_net_config *cfg, const char *task_id,
                            struct barge_error **err)
{
    _cleanup_json_ json_t *st = NULL;
    _cleanup_error_ struct barge_error *e = NULL;
    if (state_read(cfg, task_id, &st, &e) < 0) {
        if (e->code != BARGE_ERR_NOT_FOUND)
            return barge_error_set(err, e->code, "%s", e->message);
        /* No record, but maybe a namespace made just before the agent
         * died. */
        _cleanup_free_ char *ns = netns_path(cfg, task_id);
        return netns_remove(ns, err);
    }
    if (teardown_state(cfg, task_id, st, err) < 0)
        return barge_error_wrap(err, "removing the network of task '%s'", task_id);
    barge_debug("task %s: network removed", task_id);
    return 0;
}

static json_t *host_bindings(const struct barge_net_mapping *maps, size_t n, bool host_mode)
{
    json_t *b = json_array();
    for (size_t i = 0; i < n; i++) {
        uint16_t hp = host_mode ? (maps[i].host_port ? maps[i].host_port : maps[i].container_port)
                                : maps[i].host_port;
        json_array_append_new(
            b, json_pack("{s:s, s:i, s:i, s:s, s:s}", "container",
                         maps[i].container ? maps[i].container : "", "containerPort",
                         (int)maps[i].container_port, "hostPort", (int)hp, "protocol",
                         maps[i].protocol ? maps[i].protocol : "tcp", "bindIP", "0.0.0.0"));
    }
    return b;
}

int barge_net_task_setup(const struct barge_net_config *cfg, const char *task_id, const char *mode,
                         const struct barge_net_mapping *maps, size_t n_maps, const uint16_t *avoid,
                         size_t n_avoid, struct barge_net_task **out, struct barge_error **err)
{
    *out = NULL;
    bool host = strcmp(mode, "host") == 0, bridge = strcmp(mode, "bridge") == 0,
         awsvpc = strcmp(mode, "awsvpc") == 0, none = strcmp(mode, "none") == 0;
    if (!host && !bridge && !awsvpc && !none)
        return barge_error_set(err, BARGE_ERR_UNSUPPORTED, "network mode '%s' is not supported",
                               mode);
    if (barge_mkdir_p(cfg->state_dir, 0700) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", cfg->state_dir);
    _cleanup_json_ json_t *st =
        json_pack("{s:s, s:s, s:s, s:[], s:o}", "taskId", task_id, "mode", mode, "containerId",
                  task_id, "plugins", "bindings", host_bindings(maps, n_maps, host));
    if (host) {
        /* Nothing to create; the record only serves adoption. */
        if (state_write(cfg, task_id, st, err) < 0)
            return -1;
        *out = task_from_state(st);
        return 0;
    }
    if ((bridge || awsvpc) && !cfg->subnet)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "network mode '%s' needs the bridge network, which is not "
                               "configured",
                               mode);
    if (!bridge)
        json_object_set_new(st, "bindings", json_array());
    _cleanup_free_ char *ns = netns_path(cfg, task_id);
    json_object_set_new(st, "netns", json_string(ns));
    json_t *plugins = json_object_get(st, "plugins");
    json_array_append_new(plugins, loopback_conf());
    if (bridge || awsvpc) {
        json_array_append_new(plugins, bridge_conf(cfg));
        json_object_set_new(st, "subnet", json_string(cfg->subnet));
    }
    int lock = -1;
    int rc = -1;
    json_t *bindings = json_object_get(st, "bindings");
    if (bridge && json_array_size(bindings) > 0) {
        lock = lock_host(cfg, err);
        if (lock < 0)
            return -1;
        if (assign_ports(cfg, bindings, avoid, n_avoid, err) < 0)
            goto out;
        json_array_append_new(plugins, portmap_conf(cfg, bindings));
    }
    /* Recorded before anything exists, so that whatever part of this gets
     * made, teardown finds it. */
    if (state_write(cfg, task_id, st, err) < 0)
        goto out;
    if (netns_create(ns, err) < 0)
        goto fail;
    json_t *prev = NULL;
    size_t i;
    json_t *conf;
    json_array_foreach(plugins, i, conf)
    {
        const char *type = barge_json_str(conf, "type", "");
        if (strcmp(type, "portmap") == 0 && prev)
            json_object_set(conf, "prevResult", prev);
        json_t *result = NULL;
        if (plugin_run(cfg, "ADD", task_id, ns, plugin_ifname(conf), conf, &result, err) < 0) {
            json_decref(prev);
            goto fail;
        }
        if (strcmp(type, "bridge") == 0) {
            take_result(st, result);
            json_decref(prev);
            prev = result;
        } else {
            json_decref(result);
        }
        if (state_write(cfg, task_id, st, err) < 0) {
            json_decref(prev);
            goto fail;
        }
    }
    json_decref(prev);
    *out = task_from_state(st);
    barge_debug("task %s: %s network in %s%s%s", task_id, mode, ns,
                (*out)->ipv4 ? ", address " : "", (*out)->ipv4 ? (*out)->ipv4 : "");
    rc = 0;
    goto out;
fail : {
    _cleanup_error_ struct barge_error *e = NULL;
    if (teardown_state(cfg, task_id, st, &e) < 0)
        barge_warn("task %s: cleaning up a failed network setup: %s", task_id, e->message);
}
out:
    unlock_host(lock);
    return rc;
}

int barge_net_reconcile(const struct barge_net_config *cfg,
                        bool (*keep)(const char *task_id, void *ud), void *ud,
                        struct barge_error **err)
{
    DIR *d = opendir(cfg->state_dir);
    if (!d)
        return errno == ENOENT
                   ? 0
                   : barge_error_set_errno(err, BARGE_ERR_IO, "cannot list '%s'", cfg->state_dir);
    /* Collect first: teardown removes entries while we read. */
    size_t n = 0, cap = 0;
    char **ids = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        if (!dot || (strcmp(dot, ".json") != 0 && strcmp(dot, ".netns") != 0))
            continue;
        _cleanup_free_ char *id = barge_xstrndup(de->d_name, (size_t)(dot - de->d_name));
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || strcmp(ids[i], id) == 0;
        if (dup || (keep && keep(id, ud)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ids = barge_xrealloc(ids, cap * sizeof(char *));
        }
        ids[n++] = barge_steal(&id);
    }
    closedir(d);
    int removed = 0, rc = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ struct barge_error *e = NULL;
        if (barge_net_task_teardown(cfg, ids[i], &e) < 0) {
            barge_warn("network of unknown task %s: %s", ids[i], e->message);
            if (rc == 0)
                rc = barge_error_set(err, e->code, "%s", e->message);
        } else {
            barge_info("removed the network left by task %s", ids[i]);
            removed++;
        }
        free(ids[i]);
    }
    free(ids);
    return rc < 0 ? -1 : removed;
}

/* --- the bridge's subnet ------------------------------------------------ */

static int prefix_of(uint32_t mask)
{
    int p = 0;
    while (mask & 0x80000000u) {
        p++;
        mask <<= 1;
    }
    return p;
}

/* The IPv4 network on dev, as CIDR, or NULL. */
static char *device_subnet(const char *dev)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return NULL;
    char *out = NULL;
    for (struct ifaddrs *i = ifs; i && !out; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask ||
            strcmp(i->ifa_name, dev) != 0)
            continue;
        uint32_t a = ntohl(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr);
        uint32_t m = ntohl(((struct sockaddr_in *)(void *)i->ifa_netmask)->sin_addr.s_addr);
        uint32_t net = a & m;
        out = barge_xasprintf("%u.%u.%u.%u/%d", net >> 24, (net >> 16) & 255, (net >> 8) & 255,
                              net & 255, prefix_of(m));
    }
    freeifaddrs(ifs);
    return out;
}

/* The interface whose route (other than a default route and routes on
 * bridge) overlaps the network, or NULL. */
static char *route_overlap(const char *bridge, uint32_t net, int prefix)
{
    _cleanup_free_ char *routes = barge_read_file("/proc/net/route", NULL);
    if (!routes)
        return NULL;
    char *save = NULL;
    for (char *l = strtok_r(routes, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char ifname[64];
        unsigned dst, gw, flags, refcnt, use, metric, mask;
        if (sscanf(l, "%63s %x %x %x %u %u %u %x", ifname, &dst, &gw, &flags, &refcnt, &use,
                   &metric, &mask) != 8)
            continue; /* the header */
        if (mask == 0 || strcmp(ifname, bridge) == 0)
            continue;
        uint32_t d = ntohl(dst), m = ntohl(mask);
        if (barge_net_cidr_overlap(net, prefix, d & m, prefix_of(m)))
            return barge_xstrdup(ifname);
    }
    return NULL;
}

int barge_net_subnet_choose(const char *bridge, const char *wanted, char **out,
                            struct barge_error **err)
{
    *out = NULL;
    char *have = device_subnet(bridge);
    if (have) {
        if (wanted && strcmp(have, wanted) != 0) {
            barge_error_set(err, BARGE_ERR_CONFLICT,
                            "bridge '%s' already has subnet '%s', not '%s': remove the bridge "
                            "(ip link del %s) or ask for its subnet",
                            bridge, have, wanted, bridge);
            free(have);
            return -1;
        }
        *out = have;
        return 0;
    }
    /* Private ranges that neither Docker's default pools nor AWS's default
     * VPC (172.31.0.0/16) use, so that the bridge rarely shadows a network
     * the host already reaches. */
    static const char *const candidates[] = {"10.213.0.0/16", "172.29.0.0/16", "192.168.213.0/24"};
    const char *const *list = wanted ? &wanted : candidates;
    size_t n = wanted ? 1 : BARGE_ARRAY_SIZE(candidates);
    for (size_t i = 0; i < n; i++) {
        uint32_t net;
        int prefix;
        if (barge_net_cidr_parse(list[i], &net, &prefix) < 0)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "invalid bridge subnet '%s': want an IPv4 CIDR such as "
                                   "10.213.0.0/16 (prefix 8 to 30)",
                                   list[i]);
        _cleanup_free_ char *clash = route_overlap(bridge, net, prefix);
        if (!clash) {
            /* Normalised: the network address, as the bridge will show it. */
            *out = barge_xasprintf("%u.%u.%u.%u/%d", net >> 24, (net >> 16) & 255, (net >> 8) & 255,
                                   net & 255, prefix);
            return 0;
        }
        if (wanted)
            return barge_error_set(err, BARGE_ERR_CONFLICT,
                                   "bridge subnet '%s' overlaps the network of interface '%s'; "
                                   "choose another with --bridge-subnet",
                                   wanted, clash);
    }
    return barge_error_set(err, BARGE_ERR_CONFLICT,
                           "every default bridge subnet overlaps a network of this host; "
                           "choose one with --bridge-subnet");
}
