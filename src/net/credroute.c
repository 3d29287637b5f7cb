/* The route to ECS's container credentials endpoint. SDKs fetch task role
 * credentials from http://169.254.170.2/v2/credentials/<id> (botocore allows
 * plain http to that address and loopback only), while the agent serves them
 * on its metadata endpoint. A DNAT rule in the nat table's OUTPUT chain of
 * the namespace the containers run in turns one into the other, as Amazon's
 * agent does: in a task's own namespace (bridge, awsvpc) the rule lives and
 * dies with the namespace; in the host's (host mode) it is added once and
 * removed when the agent stops. */
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "net/internal.h"
#include "net/net.h"

#define NSENTER  "/usr/bin/nsenter"
#define IPTABLES "/usr/sbin/iptables"

/* Runs iptables op ("-C", "-A", "-D") on the rule, inside netns when not
 * NULL. Returns iptables' exit status, or -1 when it could not run. */
static int rule(const char *netns, const char *op, const char *to_addr, int to_port,
                struct barge_error **err)
{
    _cleanup_free_ char *ns = netns ? barge_xasprintf("--net=%s", netns) : NULL;
    _cleanup_free_ char *to = barge_xasprintf("%s:%d", to_addr, to_port);
    const char *argv[24];
    size_t n = 0;
    if (netns) {
        argv[n++] = NSENTER;
        argv[n++] = ns;
    }
    const char *const spec[] = {IPTABLES,
                                "-w",
                                "-t",
                                "nat",
                                op,
                                "OUTPUT",
                                "-d",
                                BARGE_NET_CREDENTIALS_ADDR "/32",
                                "-p",
                                "tcp",
                                "--dport",
                                "80",
                                "-m",
                                "comment",
                                "--comment",
                                "barge task credentials",
                                "-j",
                                "DNAT",
                                "--to-destination",
                                to};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(spec); i++)
        argv[n++] = spec[i];
    argv[n] = NULL;
    struct barge_netp_result res;
    if (barge_netp_run(argv, NULL, NULL, 10000, &res, err) < 0)
        return -1;
    int status = res.status;
    if (status != 0 && strcmp(op, "-C") != 0)
        barge_error_set(err, BARGE_ERR_IO, "iptables %s of the credentials route to %s: %s", op, to,
                        res.err && res.err[0] ? res.err : "failed");
    barge_netp_result_release(&res);
    return status;
}

int barge_net_credentials_route_add(const char *netns, const char *to_addr, int to_port,
                                    struct barge_error **err)
{
    if (!netns) {
        _cleanup_error_ struct barge_error *e = NULL;
        if (rule(NULL, "-C", to_addr, to_port, &e) == 0)
            return 0;
    }
    return rule(netns, "-A", to_addr, to_port, err) == 0 ? 0 : -1;
}

int barge_net_credentials_route_remove(const char *to_addr, int to_port, struct barge_error **err)
{
    _cleanup_error_ struct barge_error *e = NULL;
    while (rule(NULL, "-C", to_addr, to_port, &e) == 0)
        if (rule(NULL, "-D", to_addr, to_port, err) != 0)
            return -1;
    return 0;
}
