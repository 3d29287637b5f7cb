/* Task networking on one host: a network namespace per task, wired by the
 * CNI plugins of containernetworking-plugins (bridge with host-local IPAM,
 * portmap, loopback), and the host ports tasks publish.
 *
 * Network modes, as ECS names them:
 *   bridge  the task's namespace gets an address on the barge bridge; port
 *           mappings are DNAT rules made by portmap, with fixed or dynamic
 *           host ports, reachable on 127.0.0.1 and the host's addresses
 *   awsvpc  the same namespace and address, reported as the task's ENI; ports
 *           are the container ports on that address, nothing is published
 *   none    a namespace with only lo
 *   host    the host's namespace; nothing is created
 *
 * Everything a task's network is made of is recorded, before it is created,
 * in <state_dir>/<task id>.json (the plugin configurations exactly as they
 * were run), so teardown replays them with DEL whatever happened in between:
 * a killed agent, a crash in the middle of an ADD, a reboot. The namespace
 * itself is a bind mount at <state_dir>/<task id>.netns. Nothing here keeps
 * state in memory, so every function may be called from any thread; setups
 * and port choices of all agents on the host are serialised by a host-wide
 * lock file.
 *
 * The parts without I/O (port sets and choice, the iptables and /proc parsers,
 * subnet arithmetic) are exported for unit tests. */
#ifndef BARGE_NET_NET_H
#define BARGE_NET_NET_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"

struct barge_net_config {
    const char *state_dir; /* per-task state files and namespace mount points */
    const char *cni_path;  /* plugin directory; NULL: /usr/lib/cni */
    const char *bridge;    /* bridge device, also the CNI network name; NULL: barge0 */
    const char *subnet;    /* the bridge's IPv4 subnet, "10.213.0.0/16" */
    const char *ipam_dir;  /* host-local's lease directory; NULL: its default */
    const char *lock_path; /* host-wide lock; NULL: /run/barge-net.lock */
    uint16_t port_lo;      /* dynamic host port range, inclusive */
    uint16_t port_hi;
    const uint16_t *reserved_ports; /* never handed out (ECS_RESERVED_PORTS) */
    size_t n_reserved;
};

/* One port a container wants published. */
struct barge_net_mapping {
    const char *container; /* the container's name, copied into the binding */
    uint16_t container_port;
    uint16_t host_port;   /* 0: pick one from the dynamic range */
    const char *protocol; /* "tcp" or "udp"; NULL: tcp */
};

/* A task's network as set up. */
struct barge_net_task {
    char *task_id;
    char *mode;       /* "bridge", "awsvpc", "none" or "host" */
    char *netns_path; /* NULL in host mode */
    char *ipv4;       /* the task's address (bridge, awsvpc), else NULL */
    char *mac;        /* of the task's eth0, or NULL */
    char *gateway;    /* the bridge's address, or NULL */
    char *subnet;     /* CIDR of the bridge network, or NULL */
    /* [{container, containerPort, hostPort, protocol, bindIP}], every port
     * mapping with the host port it got (host mode: the container port);
     * empty in awsvpc and none modes. */
    json_t *bindings;
};

/* Creates the task's network for mode. avoid lists host ports that must not
 * be handed out although nothing listens on them yet (fixed ports of tasks
 * assigned here but not started). On failure whatever was made is removed
 * again. *out is the caller's to free with barge_net_task_free(). */
int barge_net_task_setup(const struct barge_net_config *cfg, const char *task_id, const char *mode,
                         const struct barge_net_mapping *maps, size_t n_maps, const uint16_t *avoid,
                         size_t n_avoid, struct barge_net_task **out, struct barge_error **err);
/* The network recorded for task_id (after an agent restart).
 * BARGE_ERR_NOT_FOUND when there is none. */
int barge_net_task_load(const struct barge_net_config *cfg, const char *task_id,
                        struct barge_net_task **out, struct barge_error **err);
/* Removes everything recorded for task_id: plugin DELs in reverse order,
 * the namespace, the state file. Succeeds when there is nothing to remove;
 * keeps the state file when a DEL failed, so a later call retries. */
int barge_net_task_teardown(const struct barge_net_config *cfg, const char *task_id,
                            struct barge_error **err);
void barge_net_task_free(struct barge_net_task *t);

/* Tears down the network of every task recorded in the state directory for
 * which keep() is false (keep NULL: all of them). Returns the number removed,
 * or -1 when one could not be (the others are still tried). */
int barge_net_reconcile(const struct barge_net_config *cfg,
                        bool (*keep)(const char *task_id, void *ud), void *ud,
                        struct barge_error **err);

/* The subnet for the bridge: the one already on the bridge device if it
 * exists, else wanted (when not NULL) or the first of a few private ranges
 * that no route of the host overlaps. A wanted subnet that overlaps another
 * interface's route is refused. *out is the caller's. */
int barge_net_subnet_choose(const char *bridge, const char *wanted, char **out,
                            struct barge_error **err);

/* ECS's container credentials endpoint: http://169.254.170.2 (port 80). */
#define BARGE_NET_CREDENTIALS_ADDR "169.254.170.2"
/* Makes TCP connections to 169.254.170.2:80 made in the namespace netns (a
 * task's; NULL: the host's) go to to_addr:to_port, where the agent serves
 * the credentials (credroute.c). A task namespace's rule goes with it; the
 * host's is added once and stays until barge_net_credentials_route_remove. */
int barge_net_credentials_route_add(const char *netns, const char *to_addr, int to_port,
                                    struct barge_error **err);
/* Removes the host's rule to to_addr:to_port, if there is one. */
int barge_net_credentials_route_remove(const char *to_addr, int to_port, struct barge_error **err);

/* ---- pure helpers ---- */

/* "10.213.0.0/16" -> network address (host order) and prefix length; the
 * address is masked. -1 when malformed or the prefix is not 8-30. */
int barge_net_cidr_parse(const char *cidr, uint32_t *addr, int *prefix);
/* The first host address of the subnet ("10.213.0.1"), used as gateway;
 * caller frees; NULL when malformed. */
char *barge_net_cidr_gateway(const char *cidr);
/* True when the two networks share an address. */
bool barge_net_cidr_overlap(uint32_t a, int a_prefix, uint32_t b, int b_prefix);

/* A set of ports (tcp and udp are not told apart: a port taken for one is
 * not handed out for the other). */
struct barge_net_portset {
    uint64_t bits[65536 / 64];
};

void barge_net_portset_add(struct barge_net_portset *s, uint16_t port);
bool barge_net_portset_has(const struct barge_net_portset *s, uint16_t port);
/* "32768\t60999" (ip_local_port_range) or "32768-60999". -1 when malformed or
 * empty. */
int barge_net_port_range_parse(const char *text, uint16_t *lo, uint16_t *hi);
/* Picks n distinct ports in [lo, hi] that are not in used, scanning upwards
 * from lo + start % (hi - lo + 1) and wrapping, and adds them to used. -1
 * (used unchanged) when the range has fewer than n free ports. */
int barge_net_ports_pick(struct barge_net_portset *used, uint16_t lo, uint16_t hi, uint32_t start,
                         size_t n, uint16_t *out);
/* Adds the local ports of the sockets in a /proc/net/{tcp,tcp6,udp,udp6}
 * table to s. */
void barge_net_ports_parse_proc(const char *table, struct barge_net_portset *s);
/* Adds every destination port that a DNAT rule of iptables-save's output
 * matches ("--dport N", "--dports N,M:O") to s. */
void barge_net_ports_parse_iptables(const char *save, struct barge_net_portset *s);

#endif
