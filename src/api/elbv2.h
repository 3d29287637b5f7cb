/* Elastic Load Balancing v2: what the API (elbv2.c) stores and the data
 * plane (src/control/lb.c, src/net/haproxy.c) reads. */
#ifndef BARGE_API_ELBV2_H
#define BARGE_API_ELBV2_H

#include "api/server.h"

struct barge_tx;

/* Load balancers by name; target groups by name, their targets inside the
 * document under "_targets" ([{Id, Port, State: "registered"|"draining",
 * Since}]); listeners by "<load balancer name>/<listener id>". */
#define ELB_KIND_LB       "elb-lb"
#define ELB_KIND_TG       "elb-tg"
#define ELB_KIND_LISTENER "elb-listener"
/* Rules by "<load balancer name>/<listener id>/<rule id>": "_priority",
 * "_lb" and "_listener" (the ARNs of the load balancer and the listener).
 * Listeners and rules keep what they forward to in "_forward"
 * ([{TargetGroupArn, Weight}]) and "_stickiness" (TargetGroupStickinessConfig);
 * "_tg" is the first target group. */
#define ELB_KIND_RULE "elb-rule"

/* The Elastic Load Balancing v2 API (elbv2.c), for callers that build on it
 * (Express Gateway services). */
extern const struct barge_api_service barge_api_elbv2;

/* Where the HAProxy processes of load balancers keep their files (under the
 * data directory), and the admin socket of the load balancer lb_arn. The
 * caller owns the strings. */
char *barge_elb_dir(const struct barge_server *srv);
char *barge_elb_socket(const struct barge_server *srv, const char *lb_arn);
/* The name of the HAProxy process (and its files) of the load balancer
 * lb_arn: "<region>.<name>", since names are unique only within a region and
 * every region's load balancers run on this host. The caller owns it. */
char *barge_elb_proc_name(const char *lb_arn);
/* Whether the listener or rule doc forwards (also) to the target group
 * tg_arn. */
bool barge_elb_forwards_to(const json_t *doc, const char *tg_arn);
/* The HAProxy backend and server names of a target group and a target. */
char *barge_elb_backend_name(const char *tg_name);
char *barge_elb_server_name(const char *id, json_int_t port);
/* The target group's deregistration_delay.timeout_seconds attribute, in
 * seconds (ELB's 300 by default). */
json_int_t barge_elb_deregistration_delay(const json_t *tg);
/* The target group with arn, which the caller owns (NULL with err set, of
 * code BARGE_ERR_NOT_FOUND when there is none); *in_use tells whether a
 * listener or rule of a load balancer forwards to it. */
json_t *barge_elb_tg_find(struct barge_tx *tx, const char *arn, bool *in_use,
                          struct barge_error **err);
/* {server name (barge_elb_server_name): TargetHealth State} of tg's targets
 * as DescribeTargetHealth reports them, read from HAProxy; the caller owns
 * it. */
json_t *barge_elb_target_states(struct barge_server *srv, struct barge_tx *tx, const json_t *tg,
                                struct barge_error **err);

#endif
