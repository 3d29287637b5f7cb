/* IAM identity policy documents: validation when they are stored and
 * evaluation on each request. Pure functions, no I/O. */
#ifndef BARGE_API_POLICY_H
#define BARGE_API_POLICY_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

enum barge_policy_decision {
    BARGE_POLICY_IMPLICIT_DENY, /* no statement allows it */
    BARGE_POLICY_ALLOW,
    BARGE_POLICY_EXPLICIT_DENY,
};

/* Checks that text is an identity policy barge can evaluate: a JSON object
 * with an optional Version and one statement or a non-empty list of them,
 * each with Effect Allow or Deny, Action or NotAction, Resource or
 * NotResource (strings or lists of strings) and no Principal. Returns 0, or
 * -1 with a MalformedPolicyDocument error naming what is wrong. */
int barge_policy_validate(const char *text, struct barge_error **err);

/* IAM's wildcard match: '*' any run of characters, '?' one; fold ignores
 * ASCII case. */
bool barge_policy_match(const char *pattern, const char *s, bool fold);

/* What Condition blocks can test: the global keys aws:SourceIp,
 * aws:PrincipalArn, aws:username and aws:RequestedRegion, and
 * aws:ResourceAccount and aws:PrincipalAccount, both barged's one account
 * (NULL: absent). */
struct barge_policy_context {
    const char *source_ip;
    const char *principal_arn;
    const char *username;
    const char *region;
    const char *external_id; /* sts:ExternalId, AssumeRole's only */
    const char *account;
};

/* The decision of the policies docs (a JSON array of policy documents as
 * text, already validated) for action ("ssm:GetParameter") on resource (an
 * ARN, or NULL when the request names none barge can tell) in context. An
 * explicit Deny wins over any Allow. With no resource only statements whose
 * Resource includes "*" allow, while a Deny matching the action always
 * applies. Conditions support the String(Not)Equals(IgnoreCase),
 * String(Not)Like, (Not)IpAddress and Null operators on the context's keys;
 * a statement with any other operator or key, or an absent key, is judged
 * conservatively: such an Allow does not apply and such a Deny does. */
enum barge_policy_decision barge_policy_evaluate(const json_t *docs, const char *action,
                                                 const char *resource,
                                                 const struct barge_policy_context *context);

/* Who asks to assume a role, as a trust policy's Principal names it: an
 * IAM user or the admin (arn "arn:aws:iam::ACCOUNT:user/NAME"), a session
 * (arn "arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION" with role_arn the
 * role's ARN), or an AWS service (service "ecs-tasks.amazonaws.com", arn
 * NULL). account is the caller's account id. */
struct barge_trust_principal {
    const char *arn;
    const char *role_arn;
    const char *account;
    const char *service;
};

/* The decision of the trust policy text (a role's AssumeRolePolicyDocument)
 * on action ("sts:AssumeRole") by principal in context. A statement applies
 * when its Action matches and its Principal names the caller: "*", {"AWS":
 * "*"}, the account ("ACCOUNT" or "arn:aws:iam::ACCOUNT:root"), the user's
 * or session's ARN, the role ARN for its sessions, or {"Service": name} for
 * a service. Conditions are evaluated as in barge_policy_evaluate, with
 * sts:ExternalId too; NotPrincipal and unknown conditions never allow and
 * always deny. An explicit Deny wins. */
enum barge_policy_decision
barge_policy_trust_evaluate(const char *text, const char *action,
                            const struct barge_trust_principal *principal,
                            const struct barge_policy_context *context);

#endif
