/* Elastic Load Balancing v2: what the API (api/elbv2.c) stores and the data
 * plane (control/lb.c, net/haproxy.c) and the service scheduler
 * (control/services.c) read (elbv2.c). */
#ifndef BARGE_SVC_ELBV2_H
#define BARGE_SVC_ELBV2_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "core/server.h"
#include "store/store.h"

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
 * "_tg" is the first target group. Those that redirect or answer a fixed
 * response have none of these but "_redirect" or "_fixed", in the form the
 * data plane's spec takes (net/haproxy.h). */
#define ELB_KIND_RULE "elb-rule"
/* HTTPS and TLS listeners name their default certificate in "Certificates"
 * ([{CertificateArn}]) and the others (AddListenerCertificates, served by
 * SNI) in "_certs" ([ARN]); "SslPolicy" is their security policy.
 * "_attributes" holds the listener attributes set (ModifyListenerAttributes). */

/* A security policy of HTTPS and TLS listeners, as HAProxy's bind options
 * take it: the lowest and highest protocol version, the TLS 1.2 cipher list
 * (OpenSSL names) and the TLS 1.3 cipher suites (NULL when TLS 1.3 is off). */
struct barge_elb_ssl_policy {
    const char *name;
    const char *min_version, *max_version; /* "TLSv1.0" ... "TLSv1.3" */
    const char *ciphers;
    const char *ciphersuites;
};
#define BARGE_ELB_DEFAULT_SSL_POLICY "ELBSecurityPolicy-2016-08"
/* The policies barge knows, ending with one whose name is NULL. */
extern const struct barge_elb_ssl_policy barge_elb_ssl_policies[];
/* The policy called name, or NULL. */
const struct barge_elb_ssl_policy *barge_elb_ssl_policy(const char *name);

/* Whether the listener doc serves the ACM certificate cert_arn. */
bool barge_elb_listener_uses_cert(const json_t *doc, const char *cert_arn);

/* Where the HAProxy processes of load balancers keep their files (under the
 * data directory), and the admin socket of the load balancer lb_arn (there
 * too, or under /run/barge when that path would be too long for HAProxy).
 * The caller owns the strings. */
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
/* Points the forward action of the listener rule rule_arn (a listener's
 * default rule included) at the target group tg_arn alone, inside tx: 1 when
 * it changed, 0 when it already forwarded only there, -1 with err set. The
 * ELBv2 API (api/elbv2.c) defines these two, since they share its rule
 * handling; blue/green deployments (control/services.c) call them. */
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

/* Segment i (0: the first after "<kind>/") of the resource of an ELB ARN of
 * resource type kind ("loadbalancer", "targetgroup", "listener", ...), or
 * NULL when arn is not one; caller frees. */
char *barge_elb_arn_part(const char *arn, const char *kind, size_t i);
/* The document stored under key whose arn_field is arn, or NULL with err set
 * to not_found ("<what> '<arn>' not found"), as it is when key is NULL. The
 * caller owns it. */
json_t *barge_elb_load_keyed(struct barge_tx *tx, const char *store_kind, const char *key,
                             const char *arn_field, const char *arn, const char *not_found,
                             const char *what, struct barge_error **err);
/* The stored document with arn (of kind, its name at index name_at), or NULL
 * with err set: not_found, or ValidationError for what is not such an ARN.
 * The caller owns it. */
json_t *barge_elb_load_by_arn(struct barge_tx *tx, const char *store_kind, const char *arn_kind,
                              size_t name_at, const char *arn_field, const char *arn,
                              const char *not_found, const char *what, struct barge_error **err);
/* The target group with arn (TargetGroupNotFound when there is none). */
json_t *barge_elb_load_tg(struct barge_tx *tx, const char *arn, struct barge_error **err);
/* Every document of kind whose key starts with prefix, as a new array, or
 * NULL with err set. */
json_t *barge_elb_scan_all(struct barge_tx *tx, const char *kind, const char *prefix,
                           struct barge_error **err);
/* Every listener and rule: what forwards to target groups (new array, or
 * NULL with err set). */
json_t *barge_elb_scan_users(struct barge_tx *tx, struct barge_error **err);
/* The ARNs of the load balancers whose listeners or rules (users, from
 * barge_elb_scan_users) forward to tg_arn (new array). */
json_t *barge_elb_tg_load_balancers(const json_t *users, const char *tg_arn);
/* The ARNs of the load balancers that forward to tg_arn (a new reference),
 * or NULL with err set. */
json_t *barge_elb_scan_tg_load_balancers(struct barge_tx *tx, const char *tg_arn,
                                         struct barge_error **err);
/* A TargetHealth {State, Reason, Description} (reason and desc may be NULL);
 * new reference. */
json_t *barge_elb_health(const char *state, const char *reason, const char *desc);
/* Target t's health as HAProxy (srv: its `show stat` row, or NULL) sees it,
 * in_use telling whether a load balancer forwards to tg; new reference. */
json_t *barge_elb_target_health(const json_t *tg, const json_t *t, bool in_use, const json_t *srv);
/* The `show stat` rows ({server name: row}) of tg's servers in the HAProxy
 * of the first of lbs, the load balancers that forward to tg (a new
 * reference), or NULL. A failed read is logged when log_failure. */
json_t *barge_elb_backend_stats(struct barge_server *srv, const json_t *tg, const json_t *lbs,
                                bool log_failure);

#endif
