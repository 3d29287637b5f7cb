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
 * "_tg" (the forward target), "_lb" and "_listener" (the ARNs of the load
 * balancer and the listener). */
#define ELB_KIND_RULE "elb-rule"

/* The Elastic Load Balancing v2 API (elbv2.c), for callers that build on it
 * (Express Gateway services). */
extern const struct barge_api_service barge_api_elbv2;

/* Where the HAProxy of load balancer name keeps its files (under the data
 * directory); the caller owns the strings. */
char *barge_elb_dir(const struct barge_server *srv);
char *barge_elb_socket(const struct barge_server *srv, const char *lb_name);
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
/* Points the forward action of the listener rule rule_arn (a listener's
 * default rule included) at the target group tg_arn inside tx: 1 when it
 * changed, 0 when it already forwarded there, -1 with err set. */
int barge_elb_rule_forward(struct barge_tx *tx, const char *rule_arn, const char *tg_arn,
                           struct barge_error **err);
/* 0 when the listener rule rule_arn (a default rule included) exists, else
 * -1 with err set (BARGE_ERR_NOT_FOUND or BARGE_ERR_INVALID for a bad ARN). */
int barge_elb_rule_check(struct barge_tx *tx, const char *rule_arn, struct barge_error **err);
/* {server name (barge_elb_server_name): TargetHealth State} of tg's targets
 * as DescribeTargetHealth reports them, read from HAProxy; the caller owns
 * it. */
json_t *barge_elb_target_states(struct barge_server *srv, struct barge_tx *tx, const json_t *tg,
                                struct barge_error **err);

#endif
