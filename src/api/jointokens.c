/* Join tokens: how a host registers without holding an access key. An
 * operator creates a token (`barge join-token create`) and hands it to the
 * host's barge-agent (--join-token-file); the agent presents it once, to
 * POST /agent/register, and from then on uses the per-instance token that
 * registration returns, as every agent does.
 *
 * barged serves them, SigV4-verified for "ecs" like /barge/v1/usage:
 *   POST   /barge/v1/join-tokens      {"cluster","ttlSeconds","maxUses"}
 *                                     creates one; the answer is the only
 *                                     place its secret ever appears
 *   GET    /barge/v1/join-tokens      lists them (never their secrets)
 *   DELETE /barge/v1/join-tokens/ID   revokes one
 * A token is "<id>.<secret>": the id names the stored document, which keeps
 * only the secret's SHA-256, the expiry, the use count and limit and the
 * cluster it is restricted to. Revoked and used-up tokens stay listed (with
 * their status) so that an agent refused with one gets told why. */
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>

#include "api/access.h"
#include "api/api.h"
#include "api/ecs.h"
#include "common/ids.h"
#include "common/isotime.h"
#include "common/json.h"
#include "common/log.h"

#define KIND_JOIN_TOKEN "jointoken"
#define PATH            "/barge/v1/join-tokens"
#define DEFAULT_TTL     (24 * 3600)
#define MAX_TTL         (365 * 24 * 3600)

/* What a token's document says about its use now. */
static const char *token_status(const json_t *doc, double now)
{
    if (barge_json_bool(doc, "revoked", false))
        return "revoked";
    if (json_number_value(json_object_get(doc, "expiresAt")) <= now)
        return "expired";
    json_int_t max = barge_json_int(doc, "maxUses", 0);
    if (max && barge_json_int(doc, "uses", 0) >= max)
        return "used up";
    return "active";
}

/* The document as the API shows it: no hash, plus its status. New reference. */
static json_t *public_doc(const json_t *doc, double now)
{
    json_t *out = ecs_public(doc);
    json_object_set_new(out, "status", json_string(token_status(doc, now)));
    return out;
}

static int create_token(struct barge_server *srv, const struct barge_sigv4_identity *who,
                        const json_t *in, json_t **out, struct barge_error **err)
{
    json_t *jc = json_object_get(in, "cluster"), *jt = json_object_get(in, "ttlSeconds"),
           *ju = json_object_get(in, "maxUses");
    if (jc && !json_is_string(jc))
        return barge_error_set(err, BARGE_ERR_SERIALIZATION, "cluster must be a string");
    json_int_t ttl = jt ? (json_is_integer(jt) ? json_integer_value(jt) : -1) : DEFAULT_TTL;
    if (ttl <= 0 || ttl > MAX_TTL)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "ttlSeconds must be an integer from 1 to %d (a year)", MAX_TTL);
    json_int_t max_uses = ju ? (json_is_integer(ju) ? json_integer_value(ju) : -1) : 0;
    if (max_uses < 0)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "maxUses must be a non-negative integer (0: no limit)");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0)
        return -1;
    /* A restricted token names the cluster, not its ARN: the agent says the
     * name when it registers. */
    if (jc && ecs_cluster_load(tx, srv, json_string_value(jc), &cluster, err) < 0)
        return -1;
    unsigned char rnd[40];
    barge_random_bytes(rnd, sizeof(rnd));
    char id[20] = "jt-", secret[65], hash[65];
    for (size_t i = 0; i < 8; i++)
        snprintf(id + 3 + 2 * i, 3, "%02x", rnd[i]);
    for (size_t i = 0; i < 32; i++)
        snprintf(secret + 2 * i, 3, "%02x", rnd[8 + i]);
    barge_sha256_hex(secret, 64, hash);
    double now = barge_now();
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:f, s:f, s:I, s:I, s:b, s:s}", "id", id, "_secretHash", hash,
                  "createdAt", now, "expiresAt", now + (double)ttl, "maxUses", max_uses, "uses",
                  (json_int_t)0, "revoked", 0, "_createdBy", who->access_key_id);
    if (cluster) {
        barge_json_set_str(doc, "cluster", barge_json_str(cluster, "clusterName", ""));
        /* The cluster of the creator's region (its request's scope). */
        barge_json_set_str(doc, "region", barge_store_tx_region(tx) ?: "");
    }
    if (barge_store_put(tx, KIND_JOIN_TOKEN, id, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("join token %s created for cluster %s (expires in %llds, %lld uses)", id,
               cluster ? barge_json_str(cluster, "clusterName", "") : "(any)", (long long)ttl,
               (long long)max_uses);
    *out = public_doc(doc, now);
    _cleanup_free_ char *token = barge_xasprintf("%s.%s", id, secret);
    json_object_set_new(*out, "token", json_string(token));
    return 0;
}

static int add_token(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append_new(ud, public_doc(doc, barge_now()));
    return 0;
}

static int list_tokens(struct barge_server *srv, json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *list = json_array();
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, KIND_JOIN_TOKEN, NULL, NULL, false, 0, add_token, list, err) < 0)
        return -1;
    *out = json_pack("{s:O}", "joinTokens", list);
    return 0;
}

static int revoke_token(struct barge_server *srv, const char *id, json_t **out,
                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_JOIN_TOKEN, id, &doc, err) < 0)
        return -1;
    if (!doc)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "join token '%s' does not exist", id);
    json_object_set_new(doc, "revoked", json_true());
    if (barge_store_put(tx, KIND_JOIN_TOKEN, id, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("join token %s revoked", id);
    *out = public_doc(doc, barge_now());
    return 0;
}

void barge_api_join_tokens_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *in = NULL, *out = NULL;
    struct barge_sigv4_identity who;
    if (barge_api_authenticate(req, "ecs", &who, &err) < 0 ||
        barge_api_authorize(req->server, &who, "barge:ManageJoinTokens", "*", &err) < 0)
        goto fail;
    int r;
    const char *path = req->raw_path;
    if (strcmp(path, PATH) == 0 && strcmp(req->method, "GET") == 0) {
        r = list_tokens(req->server, &out, &err);
    } else if (strcmp(path, PATH) == 0 && strcmp(req->method, "POST") == 0) {
        json_error_t jerr;
        in = req->body_len ? json_loadb(req->body, req->body_len, 0, &jerr) : json_object();
        if (!json_is_object(in)) {
            barge_error_set(&err, BARGE_ERR_SERIALIZATION, "the body must be a JSON object");
            goto fail;
        }
        r = create_token(req->server, &who, in, &out, &err);
    } else if (barge_str_has_prefix(path, PATH "/") && strcmp(req->method, "DELETE") == 0) {
        r = revoke_token(req->server, path + strlen(PATH "/"), &out, &err);
    } else {
        r = barge_error_set(&err, BARGE_ERR_UNKNOWN_OP, "no such endpoint: %s %s", req->method,
                            req->path);
    }
    if (r < 0)
        goto fail;
    char *text = barge_json_dump(out);
    barge_http_resp_set(resp, 200, "application/json", text, strlen(text));
    return;
fail:
    barge_api_error_response(&barge_api_ecs, err, resp);
}

int barge_api_join_token_check(struct barge_tx *tx, const char *token, json_t **out,
                               struct barge_error **err)
{
    *out = NULL;
    const char *dot = strchr(token, '.');
    if (!barge_str_has_prefix(token, "jt-") || !dot || strlen(dot + 1) != 64 || dot - token > 40)
        return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                               "malformed join token (barge join-token create prints one)");
    _cleanup_free_ char *id = barge_xstrndup(token, (size_t)(dot - token));
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_get(tx, KIND_JOIN_TOKEN, id, &doc, err) < 0)
        return -1;
    char hash[65];
    barge_sha256_hex(dot + 1, 64, hash);
    const char *want = barge_json_str(doc, "_secretHash", NULL);
    if (!want || strlen(want) != 64 || CRYPTO_memcmp(want, hash, 64) != 0)
        return barge_error_set(err, BARGE_ERR_AUTH_UNKNOWN_KEY,
                               "unknown join token '%s': barged has no token with that id and "
                               "secret",
                               id);
    double now = barge_now();
    const char *status = token_status(doc, now);
    if (strcmp(status, "revoked") == 0)
        return barge_error_set(err, BARGE_ERR_AUTH_UNKNOWN_KEY, "join token '%s' was revoked", id);
    if (strcmp(status, "expired") == 0) {
        char when[BARGE_ISOTIME_MAX];
        barge_isotime_format(json_number_value(json_object_get(doc, "expiresAt")), 0, "Z", when);
        return barge_error_set(err, BARGE_ERR_AUTH_EXPIRED,
                               "join token '%s' expired at %s; create a new one", id, when);
    }
    if (strcmp(status, "used up") == 0)
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "join token '%s' is used up: it allowed %lld registrations", id,
                               (long long)barge_json_int(doc, "maxUses", 0));
    *out = barge_steal(&doc);
    return 0;
}

int barge_api_join_token_use(struct barge_tx *tx, json_t *doc, const char *cluster,
                             struct barge_error **err)
{
    const char *only = barge_json_str(doc, "cluster", NULL);
    const char *id = barge_json_str(doc, "id", "");
    if (only && !barge_streq(only, cluster))
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "join token '%s' is for cluster '%s', not '%s'", id, only, cluster);
    /* Tokens made before regions name no region: the default one's. */
    const char *region = barge_json_str(doc, "region", NULL);
    const char *here = barge_store_tx_region(tx);
    if (only && region && *region && here && !barge_streq(region, here))
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "join token '%s' is for cluster '%s' in region '%s', not '%s'", id,
                               only, region, here);
    json_object_set_new(doc, "uses", json_integer(barge_json_int(doc, "uses", 0) + 1));
    json_object_set_new(doc, "lastUsedAt", json_real(barge_now()));
    return barge_store_put(tx, KIND_JOIN_TOKEN, id, doc, err);
}
