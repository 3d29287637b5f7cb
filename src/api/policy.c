/* IAM identity policy documents (see policy.h): the grammar barge accepts and
 * the evaluation every request of a non-admin principal goes through. */
#include "api/policy.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "common/util.h"

static int malformed(struct barge_error **err, const char *what)
{
    return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument", "%s", what);
}

/* A string, or a non-empty list of strings. */
static bool string_or_list(const json_t *v)
{
    if (json_is_string(v))
        return true;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return false;
    }
    return true;
}

static int check_actions(const json_t *v, struct barge_error **err)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n; i++) {
        const char *a = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
        if (strcmp(a, "*") != 0 && (!strchr(a, ':') || a[0] == ':'))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument",
                                        "Actions/Conditions must be prefaced by a vendor, e.g., "
                                        "iam, sdb, ec2, etc.: '%s'",
                                        a);
    }
    return 0;
}

static int check_statement(const json_t *st, struct barge_error **err)
{
    static const char *const known[] = {"Sid",      "Effect",      "Action",   "NotAction",
                                        "Resource", "NotResource", "Condition"};
    if (!json_is_object(st))
        return malformed(err, "Syntax errors in policy: a statement is not an object.");
    if (json_object_get(st, "Principal") || json_object_get(st, "NotPrincipal"))
        return malformed(err, "Policy document should not specify a principal.");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)st, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(known) && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument",
                                        "Syntax errors in policy: unknown statement field '%s'.",
                                        key);
    }
    const char *effect = barge_json_str(st, "Effect", NULL);
    if (!barge_streq(effect, "Allow") && !barge_streq(effect, "Deny"))
        return malformed(err, "Syntax errors in policy: Effect must be 'Allow' or 'Deny'.");
    const json_t *act = json_object_get(st, "Action"), *nact = json_object_get(st, "NotAction");
    if (!act == !nact)
        return malformed(err, "Policy statement must contain exactly one of Action and "
                              "NotAction.");
    if (!string_or_list(act ? act : nact))
        return malformed(err, "Syntax errors in policy: Action must be a string or a list of "
                              "strings.");
    if (check_actions(act ? act : nact, err) < 0)
        return -1;
    const json_t *res = json_object_get(st, "Resource"), *nres = json_object_get(st, "NotResource");
    if (!res && !nres)
        return malformed(err, "Policy statement must contain resources.");
    if (res && nres)
        return malformed(err, "Policy statement must contain exactly one of Resource and "
                              "NotResource.");
    if (!string_or_list(res ? res : nres))
        return malformed(err, "Syntax errors in policy: Resource must be a string or a list of "
                              "strings.");
    const json_t *cond = json_object_get(st, "Condition");
    if (cond && !json_is_object(cond))
        return malformed(err, "Syntax errors in policy: Condition must be an object.");
    json_object_foreach((json_t *)cond, key, v)
    {
        if (!json_is_object(v))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument",
                                        "Syntax errors in policy: Condition operator '%s' must "
                                        "map condition keys to values.",
                                        key);
    }
    if (json_object_get(st, "Sid") && !json_is_string(json_object_get(st, "Sid")))
        return malformed(err, "Syntax errors in policy: Sid must be a string.");
    return 0;
}

int barge_policy_validate(const char *text, struct barge_error **err)
{
    json_error_t jerr;
    _cleanup_json_ json_t *doc = json_loads(text, 0, &jerr);
    if (!doc)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument",
                                    "Syntax errors in policy: %s", jerr.text);
    if (!json_is_object(doc))
        return malformed(err, "Syntax errors in policy: the document is not a JSON object.");
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "Version") != 0 && strcmp(key, "Statement") != 0 && strcmp(key, "Id") != 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument",
                                        "Syntax errors in policy: unknown field '%s'.", key);
    }
    const json_t *ver = json_object_get(doc, "Version");
    if (ver && !barge_streq(json_string_value(ver), "2012-10-17") &&
        !barge_streq(json_string_value(ver), "2008-10-17"))
        return malformed(err, "The policy must contain a valid version string");
    const json_t *stmts = json_object_get(doc, "Statement");
    if (json_is_object(stmts))
        return check_statement(stmts, err);
    if (!json_is_array(stmts) || json_array_size(stmts) == 0)
        return malformed(err, "Syntax errors in policy: Statement must be a statement or a "
                              "non-empty list of them.");
    size_t i;
    json_t *st;
    json_array_foreach(stmts, i, st)
    {
        if (check_statement(st, err) < 0)
            return -1;
    }
    return 0;
}

static bool char_eq(char a, char b, bool fold)
{
    return fold ? tolower((unsigned char)a) == tolower((unsigned char)b) : a == b;
}

bool barge_policy_match(const char *p, const char *s, bool fold)
{
    /* Greedy with one backtrack point: the last '*' seen. */
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p && (*p == '?' || char_eq(*p, *s, fold))) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

static bool any_matches(const json_t *v, const char *s, bool fold)
{
    if (json_is_string(v))
        return barge_policy_match(json_string_value(v), s, fold);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (barge_policy_match(json_string_value(e), s, fold))
            return true;
    }
    return false;
}

static bool has_star(const json_t *v)
{
    if (json_is_string(v))
        return strcmp(json_string_value(v), "*") == 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (strcmp(json_string_value(e), "*") == 0)
            return true;
    }
    return false;
}

/* --- conditions --------------------------------------------------------- */

enum cond { COND_FALSE, COND_TRUE, COND_UNKNOWN };

static const char *context_value(const struct barge_policy_context *c, const char *key)
{
    if (strcasecmp(key, "aws:SourceIp") == 0)
        return c->source_ip;
    if (strcasecmp(key, "aws:PrincipalArn") == 0)
        return c->principal_arn;
    if (strcasecmp(key, "aws:username") == 0)
        return c->username;
    if (strcasecmp(key, "aws:RequestedRegion") == 0)
        return c->region;
    if (strcasecmp(key, "sts:ExternalId") == 0)
        return c->external_id;
    if (strcasecmp(key, "aws:ResourceAccount") == 0 || strcasecmp(key, "aws:PrincipalAccount") == 0)
        return c->account;
    return NULL;
}

static bool context_knows(const char *key)
{
    static const char *const keys[] = {
        "aws:SourceIp",   "aws:PrincipalArn",    "aws:username",        "aws:RequestedRegion",
        "sts:ExternalId", "aws:ResourceAccount", "aws:PrincipalAccount"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keys); i++)
        if (strcasecmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* ip inside cidr ("10.0.0.0/8", "2001:db8::/32" or a bare address)? */
static bool ip_in(const char *ip, const char *cidr)
{
    char net[64];
    snprintf(net, sizeof(net), "%s", cidr);
    char *slash = strchr(net, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        bits = strtol(slash + 1, NULL, 10);
    }
    unsigned char a[16], b[16];
    int fam = strchr(net, ':') ? AF_INET6 : AF_INET;
    /* An IPv4 client may arrive as an IPv4-mapped IPv6 address. */
    if (fam == AF_INET && barge_str_has_prefix(ip, "::ffff:"))
        ip += strlen("::ffff:");
    if (inet_pton(fam, net, a) != 1 || inet_pton(fam, ip, b) != 1)
        return false;
    long max = fam == AF_INET ? 32 : 128;
    if (bits < 0 || bits > max)
        bits = max;
    for (long i = 0; i < bits; i++) {
        unsigned char m = (unsigned char)(0x80 >> (i % 8));
        if ((a[i / 8] & m) != (b[i / 8] & m))
            return false;
    }
    return true;
}

static bool value_matches(const char *op, const char *want, const char *have)
{
    if (strcmp(op, "StringEquals") == 0 || strcmp(op, "StringNotEquals") == 0)
        return strcmp(want, have) == 0;
    if (strcmp(op, "StringEqualsIgnoreCase") == 0 || strcmp(op, "StringNotEqualsIgnoreCase") == 0)
        return strcasecmp(want, have) == 0;
    if (strcmp(op, "StringLike") == 0 || strcmp(op, "StringNotLike") == 0)
        return barge_policy_match(want, have, false);
    return ip_in(have, want); /* IpAddress, NotIpAddress */
}

static enum cond condition_holds(const json_t *cond, const struct barge_policy_context *c)
{
    static const char *const ops[] = {"StringEquals",
                                      "StringNotEquals",
                                      "StringEqualsIgnoreCase",
                                      "StringNotEqualsIgnoreCase",
                                      "StringLike",
                                      "StringNotLike",
                                      "IpAddress",
                                      "NotIpAddress",
                                      "Null"};
    const char *op;
    json_t *keys;
    json_object_foreach((json_t *)cond, op, keys)
    {
        bool known = false;
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(ops) && !known; i++)
            known = strcmp(op, ops[i]) == 0;
        if (!known || !json_is_object(keys))
            return COND_UNKNOWN;
        bool negated = strstr(op, "Not") != NULL;
        const char *key;
        json_t *want;
        json_object_foreach(keys, key, want)
        {
            if (!context_knows(key))
                return COND_UNKNOWN;
            const char *have = context_value(c, key);
            if (strcmp(op, "Null") == 0) {
                const char *w = json_is_string(want) ? json_string_value(want) : NULL;
                bool is_true = json_is_true(want) || barge_streq(w, "true");
                if (is_true != (have == NULL))
                    return COND_FALSE;
                continue;
            }
            if (!have)
                return COND_UNKNOWN;
            bool any = false;
            size_t n = json_is_array(want) ? json_array_size(want) : 1;
            for (size_t i = 0; i < n && !any; i++) {
                const char *w =
                    json_string_value(json_is_array(want) ? json_array_get(want, i) : want);
                any = w && value_matches(op, w, have);
            }
            if (any == negated)
                return COND_FALSE;
        }
    }
    return COND_TRUE;
}

static bool statement_applies(const json_t *st, bool deny, const char *action, const char *resource,
                              const struct barge_policy_context *c)
{
    const json_t *act = json_object_get(st, "Action");
    bool action_ok = act ? any_matches(act, action, true)
                         : !any_matches(json_object_get(st, "NotAction"), action, true);
    if (!action_ok)
        return false;
    const json_t *cond = json_object_get(st, "Condition");
    if (cond) {
        enum cond holds = condition_holds(cond, c);
        if (holds == COND_UNKNOWN)
            return deny;
        if (holds == COND_FALSE)
            return false;
    }
    const json_t *res = json_object_get(st, "Resource");
    if (!resource)
        return deny || (res && has_star(res));
    return res ? any_matches(res, resource, false)
               : !any_matches(json_object_get(st, "NotResource"), resource, false);
}

enum barge_policy_decision barge_policy_evaluate(const json_t *docs, const char *action,
                                                 const char *resource,
                                                 const struct barge_policy_context *context)
{
    bool allowed = false;
    size_t i;
    json_t *text;
    json_array_foreach(docs, i, text)
    {
        _cleanup_json_ json_t *doc = json_loads(json_string_value(text), 0, NULL);
        json_t *stmts = json_object_get(doc, "Statement");
        size_t n = json_is_array(stmts) ? json_array_size(stmts) : 1;
        for (size_t j = 0; j < n; j++) {
            const json_t *st = json_is_array(stmts) ? json_array_get(stmts, j) : stmts;
            if (!json_is_object(st))
                continue;
            bool deny = barge_streq(barge_json_str(st, "Effect", NULL), "Deny");
            if (!statement_applies(st, deny, action, resource, context))
                continue;
            if (deny)
                return BARGE_POLICY_EXPLICIT_DENY;
            allowed = true;
        }
    }
    return allowed ? BARGE_POLICY_ALLOW : BARGE_POLICY_IMPLICIT_DENY;
}

/* --- trust policies ----------------------------------------------------- */

/* Calls fn on v (a string or a list of strings) until it answers true. */
static bool any_string(const json_t *v,
                       bool (*fn)(const char *, const struct barge_trust_principal *),
                       const struct barge_trust_principal *p)
{
    if (json_is_string(v))
        return fn(json_string_value(v), p);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (json_is_string(e) && fn(json_string_value(e), p))
            return true;
    }
    return false;
}

static bool aws_principal_is(const char *name, const struct barge_trust_principal *p)
{
    if (!p->arn)
        return false;
    if (strcmp(name, "*") == 0)
        return true;
    if (p->account && (strcmp(name, p->account) == 0 ||
                       (barge_str_has_prefix(name, "arn:aws:iam::") &&
                        strncmp(name + 13, p->account, strlen(p->account)) == 0 &&
                        strcmp(name + 13 + strlen(p->account), ":root") == 0)))
        return true;
    return strcmp(name, p->arn) == 0 || barge_streq(name, p->role_arn);
}

static bool service_principal_is(const char *name, const struct barge_trust_principal *p)
{
    return p->service && strcmp(name, p->service) == 0;
}

static bool principal_named(const json_t *principal, const struct barge_trust_principal *p)
{
    if (json_is_string(principal))
        return strcmp(json_string_value(principal), "*") == 0;
    return any_string(json_object_get(principal, "AWS"), aws_principal_is, p) ||
           any_string(json_object_get(principal, "Service"), service_principal_is, p);
}

enum barge_policy_decision
barge_policy_trust_evaluate(const char *text, const char *action,
                            const struct barge_trust_principal *principal,
                            const struct barge_policy_context *context)
{
    _cleanup_json_ json_t *doc = json_loads(text, 0, NULL);
    json_t *stmts = json_object_get(doc, "Statement");
    size_t n = json_is_array(stmts) ? json_array_size(stmts) : 1;
    bool allowed = false;
    for (size_t j = 0; j < n; j++) {
        const json_t *st = json_is_array(stmts) ? json_array_get(stmts, j) : stmts;
        if (!json_is_object(st))
            continue;
        bool deny = barge_streq(barge_json_str(st, "Effect", NULL), "Deny");
        const json_t *act = json_object_get(st, "Action");
        bool action_ok = act ? any_matches(act, action, true)
                             : json_object_get(st, "NotAction") &&
                                   !any_matches(json_object_get(st, "NotAction"), action, true);
        if (!action_ok)
            continue;
        const json_t *who = json_object_get(st, "Principal");
        bool named = who ? principal_named(who, principal) : deny;
        if (!named)
            continue;
        const json_t *cond = json_object_get(st, "Condition");
        enum cond holds = cond ? condition_holds(cond, context) : COND_TRUE;
        if (holds == COND_FALSE || (holds == COND_UNKNOWN && !deny))
            continue;
        if (deny)
            return BARGE_POLICY_EXPLICIT_DENY;
        allowed = true;
    }
    return allowed ? BARGE_POLICY_ALLOW : BARGE_POLICY_IMPLICIT_DENY;
}
