/* Service Connect's data plane on a host (svcconnect.c): an address per
 * client alias name, which the agent's dnsmasq answers and one Debian
 * HAProxy listens on, forwarding each alias's port to the endpoints barged
 * sends. */
#ifndef BARGE_AGENT_SVCCONNECT_H
#define BARGE_AGENT_SVCCONNECT_H

#include <jansson.h>

/* The slice of link-local addresses aliases take: 169.254.200.0/22. */
#define BARGE_SVCCONNECT_NET "169.254.200.0/22"

struct barge_svcconnect;

/* The address of each distinct dnsName of aliases (an /agent/dns
 * "aliases" array) as a new object {dnsName: "169.254.x.y"}: a hash of the
 * name picks it, the next free one on a collision (names taken in sorted
 * order), so every host and every restart gives a name the same address
 * while the set of names stays. Names beyond the slice's size get none. */
json_t *barge_svcconnect_addresses(const json_t *aliases);
/* Hosts-file lines ("addr name\n") of addrs; the caller frees. */
char *barge_svcconnect_hosts(const json_t *addrs);
/* The HAProxy configuration (mode tcp) with a frontend per alias on its
 * address and port and a round-robin backend of its endpoints, admin socket
 * sock; the caller frees. */
char *barge_svcconnect_haproxy_config(const json_t *aliases, const json_t *addrs, const char *sock);

/* The proxy of an agent whose data directory is data_dir; it adopts the
 * HAProxy a previous agent left. */
struct barge_svcconnect *barge_svcconnect_new(const char *data_dir);
/* Puts the addresses on the loopback interface (and takes the slice's other
 * ones away), then has HAProxy serve aliases (a new process takes the
 * listening sockets over, so no connection is refused); none stops it. */
void barge_svcconnect_apply(struct barge_svcconnect *sc, const json_t *aliases,
                            const json_t *addrs);
void barge_svcconnect_free(struct barge_svcconnect *sc);
/* Stops the HAProxy an agent of data_dir left and removes the addresses
 * (--clean-network). */
void barge_svcconnect_clean(const char *data_dir);

#endif
