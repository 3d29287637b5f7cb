/* The agent's side of networking: turns the command line into the net
 * module's configuration (bridge, subnet, dynamic port range, reserved
 * ports), reconciles what tasks unknown to the checkpoint left behind after a
 * crash (their networks, volume directories and Fargate storage), and runs
 * the task metadata endpoint on the addresses containers reach.
 *
 * The bridge subnet is the one already on the bridge when it exists (several
 * agents of one host then share the bridge and host-local's leases), else
 * --bridge-subnet, else the first of a few private ranges that no route of
 * the host overlaps. The metadata endpoint listens on the bridge's gateway
 * address and on 127.0.0.1, port 51679 like ECS's agent, or another port when
 * that one is taken; the port is remembered in the checkpoint so that the
 * URIs in adopted containers stay valid. */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/metadata.h"
#include "agent/volumes.h"
#include "common/json.h"
#include "common/log.h"

#define METADATA_PORT 51679

const uint16_t barge_agent_reserved_ports[5] = {22, 2375, 2376, 51678, 51679};

static bool task_known(const char *task_id, void *ud)
{
    const json_t *tasks = ud;
    const char *arn;
    json_t *t;
    json_object_foreach((json_t *)tasks, arn, t)
    {
        const char *slash = strrchr(arn, '/');
        if (strcmp(slash ? slash + 1 : arn, task_id) == 0)
            return true;
    }
    return false;
}

/* Task volume directories of tasks the checkpoint does not know. */
static void reconcile_volumes(struct barge_agent *a, const json_t *tasks)
{
    _cleanup_free_ char *dir = barge_xasprintf("%s/tasks", a->volumes_dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || task_known(de->d_name, (void *)tasks))
            continue;
        _cleanup_free_ char *path = barge_xasprintf("%s/%s", dir, de->d_name);
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_volumes_remove(path, &err) < 0)
            barge_warn("volumes of unknown task %s: %s", de->d_name, err->message);
        else
            barge_info("removed the volumes left by task %s", de->d_name);
    }
    closedir(d);
}

int barge_agent_network_init(struct barge_agent *a, struct barge_error **err)
{
    struct barge_agent_config *cfg = &a->cfg;
    struct barge_net_config *n = &a->net;
    memset(n, 0, sizeof(*n));
    n->state_dir = barge_xasprintf("%s/net", cfg->data_dir);
    n->bridge = cfg->bridge ? cfg->bridge : "barge0";
    n->reserved_ports = barge_agent_reserved_ports;
    n->n_reserved = BARGE_ARRAY_SIZE(barge_agent_reserved_ports);
    a->volumes_dir = barge_xasprintf("%s/volumes", cfg->data_dir);
    a->taskfs_dir = barge_xasprintf("%s/taskfs", cfg->data_dir);
    if (strlen(n->bridge) > 15 || strchr(n->bridge, '/'))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "invalid bridge name '%s': at most 15 characters, no '/'",
                               n->bridge);
    const char *range = cfg->host_port_range;
    _cleanup_free_ char *sys = NULL;
    if (!range) {
        sys = barge_read_file("/proc/sys/net/ipv4/ip_local_port_range", NULL);
        /* ECS's fallback when the kernel's range cannot be read. */
        range = sys ? sys : "49153-65535";
    }
    if (barge_net_port_range_parse(range, &n->port_lo, &n->port_hi) < 0)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "invalid dynamic host port range '%s': want LOW-HIGH", range);
    char *subnet = NULL;
    _cleanup_error_ struct barge_error *e = NULL;
    if (barge_net_subnet_choose(n->bridge, cfg->bridge_subnet, &subnet, &e) < 0) {
        if (cfg->bridge_subnet)
            return barge_error_set(err, e->code, "%s", e->message);
        /* Without an explicit subnet, host and none tasks still work. */
        barge_warn("no bridge network: %s; bridge and awsvpc tasks will fail", e->message);
    }
    n->subnet = subnet;
    barge_info("bridge %s, subnet %s, dynamic host ports %u-%u", n->bridge,
               subnet ? subnet : "(none)", n->port_lo, n->port_hi);
    json_t *tasks = json_object_get(a->state, "tasks");
    _cleanup_error_ struct barge_error *re = NULL;
    if (barge_net_reconcile(n, task_known, tasks, &re) < 0)
        barge_warn("leftover task networks: %s", re->message);
    reconcile_volumes(a, tasks);
    barge_runtime_taskfs_reconcile(a->taskfs_dir, task_known, tasks);
    return 0;
}

static json_t *metadata_snapshot(void *ud, const char *token)
{
    struct barge_agent *a = ud;
    return a->engine ? barge_engine_metadata(a->engine, token) : NULL;
}

static json_t *task_credentials(void *ud, const char *id, unsigned *status)
{
    struct barge_agent *a = ud;
    if (a->engine)
        return barge_engine_task_credentials(a->engine, id, status);
    *status = 503;
    return json_pack("{s:s}", "message", "the agent is starting");
}

void barge_agent_metadata_start(struct barge_agent *a)
{
    const char *addrs[3] = {"127.0.0.1", NULL, NULL};
    _cleanup_free_ char *gw = a->net.subnet ? barge_net_cidr_gateway(a->net.subnet) : NULL;
    addrs[1] = gw;
    json_int_t saved = barge_json_int(a->state, "metadataPort", 0);
    int port = a->cfg.metadata_port ? a->cfg.metadata_port : saved > 0 ? (int)saved : METADATA_PORT;
    struct barge_metadata_ops ops = {metadata_snapshot, task_credentials, a};
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_metadata_server_start(a->rt, addrs, port, !a->cfg.metadata_port, &ops, &a->metadata,
                                    &err) < 0) {
        barge_warn("task metadata endpoint: %s; containers get no "
                   "ECS_CONTAINER_METADATA_URI_V4",
                   err->message);
        return;
    }
    port = barge_metadata_server_port(a->metadata);
    a->metadata_host_url = barge_xasprintf("http://127.0.0.1:%d", port);
    if (gw)
        a->metadata_bridge_url = barge_xasprintf("http://%s:%d", gw, port);
    if (saved != port) {
        pthread_mutex_lock(&a->lock);
        json_object_set_new(a->state, "metadataPort", json_integer(port));
        _cleanup_error_ struct barge_error *e = NULL;
        if (barge_agent_state_save(a->cfg.data_dir, a->state, &e) < 0)
            barge_warn("checkpoint: %s", e->message);
        pthread_mutex_unlock(&a->lock);
    }
    barge_info("task metadata endpoint on %s%s%s", a->metadata_host_url, gw ? " and " : "",
               gw ? a->metadata_bridge_url : "");
}

int barge_agent_network_clean(struct barge_agent *a, struct barge_error **err)
{
    int n = barge_net_reconcile(&a->net, NULL, NULL, err);
    if (n < 0)
        return -1;
    _cleanup_json_ json_t *none = json_object();
    reconcile_volumes(a, none);
    /* The host's route to a killed agent's credentials endpoint. */
    json_int_t port = barge_json_int(a->state, "metadataPort", 0);
    if (port > 0 && barge_net_credentials_route_remove("127.0.0.1", (int)port, err) < 0)
        return -1;
    barge_agent_dns_clean(a->cfg.data_dir);
    printf("removed %d task network(s)\n", n);
    return 0;
}

void barge_agent_network_release(struct barge_agent *a)
{
    _cleanup_error_ struct barge_error *err = NULL;
    if (a->credentials_port &&
        barge_net_credentials_route_remove("127.0.0.1", a->credentials_port, &err) < 0)
        barge_warn("host route to the credentials endpoint: %s", err->message);
    a->credentials_port = 0;
    barge_metadata_server_stop(a->metadata);
    a->metadata = NULL;
    free((char *)a->net.state_dir);
    free((char *)a->net.subnet);
    free(a->volumes_dir);
    free(a->taskfs_dir);
    free(a->metadata_bridge_url);
    free(a->metadata_host_url);
    memset(&a->net, 0, sizeof(a->net));
}
