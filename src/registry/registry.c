/* The registry's setup, its addresses, its credentials and its housekeeping:
 * idle uploads, lifecycle policies and garbage collection (see registry.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "registry/internal.h"
#include "registry/lifecycle.h"
#include "registry/ref.h"

#define TOKEN_VERSION      "b1"
#define PULL_TOKEN_VERSION "p1" /* same length as TOKEN_VERSION */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_decode(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* The token-signing secret is made once and kept in the store, so tokens
 * survive a restart of barged. */
static int load_secret(struct barge_registry *reg, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(reg->store, true, &tx, err) < 0 ||
        barge_store_get(tx, "meta", "registry-secret", &doc, err) < 0)
        return -1;
    const char *hex = barge_json_str(doc, "secret", NULL);
    if (hex && hex_decode(hex, reg->secret, sizeof(reg->secret)) == 0)
        return 0;
    char buf[2 * sizeof(reg->secret) + 1];
    barge_random_bytes(reg->secret, sizeof(reg->secret));
    hex_encode(reg->secret, sizeof(reg->secret), buf);
    _cleanup_json_ json_t *fresh = json_pack("{s:s}", "secret", buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (barge_store_put(tx, "meta", "registry-secret", fresh, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    return 0;
}

int barge_registry_new(const struct barge_registry_config *cfg, struct barge_store *store,
                       struct barge_registry **out, struct barge_error **err)
{
    struct barge_registry *reg = barge_xcalloc(1, sizeof(*reg));
    reg->cfg = *cfg;
    reg->cfg.root = barge_xstrdup(cfg->root);
    reg->cfg.account_id = barge_xstrdup(cfg->account_id);
    reg->cfg.region = barge_xstrdup(cfg->region);
    reg->cfg.host = cfg->host ? barge_xstrdup(cfg->host) : NULL;
    reg->store = store;
    reg->endpoint = barge_xstrdup("127.0.0.1");
    /* Writers first: a steady stream of pulls must not keep the collector
     * waiting forever. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&reg->gc_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    reg->next_gc_ms = barge_monotonic_ms() + (int64_t)cfg->gc_interval_seconds * 1000;
    if (barge_blobstore_open(cfg->root, &reg->blobs, err) < 0 || load_secret(reg, err) < 0) {
        barge_registry_free(reg);
        return -1;
    }
    *out = reg;
    return 0;
}

void barge_registry_free(struct barge_registry *reg)
{
    if (!reg)
        return;
    barge_blobstore_close(reg->blobs);
    pthread_rwlock_destroy(&reg->gc_lock);
    OPENSSL_cleanse(reg->secret, sizeof(reg->secret));
    free((char *)reg->cfg.root);
    free((char *)reg->cfg.account_id);
    free((char *)reg->cfg.region);
    free((char *)reg->cfg.host);
    free(reg->endpoint);
    free(reg);
}

void barge_registry_set_endpoint(struct barge_registry *reg, const char *hostport)
{
    free(reg->endpoint);
    reg->endpoint = barge_xstrdup(hostport);
}

const struct barge_registry_config *barge_registry_config(const struct barge_registry *reg)
{
    return &reg->cfg;
}

char *barge_registry_host(const struct barge_registry *reg)
{
    if (reg->cfg.host)
        return barge_xasprintf("%s.dkr.ecr.%s.%s", reg->cfg.account_id, reg->cfg.region,
                               reg->cfg.host);
    return barge_xstrdup(reg->endpoint);
}

char *barge_registry_proxy_endpoint(const struct barge_registry *reg)
{
    _cleanup_free_ char *host = barge_registry_host(reg);
    return barge_xasprintf("%s://%s", reg->cfg.host ? "https" : "http", host);
}

char *barge_registry_repo_uri(const struct barge_registry *reg, const char *name)
{
    _cleanup_free_ char *host = barge_registry_host(reg);
    return barge_xasprintf("%s/%s", host, name);
}

/* Tokens: "b1.<access key id>.<expiry>.<hex HMAC-SHA256 of the rest>", and
 * pull tokens "p1.<container instance>.<expiry>.<mac>". */
static void token_mac(const struct barge_registry *reg, const char *body, char out[65])
{
    unsigned char mac[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), reg->secret, sizeof(reg->secret), (const unsigned char *)body, strlen(body),
         mac, &n);
    hex_encode(mac, sizeof(mac), out);
}

static char *token_issue(struct barge_registry *reg, const char *version, const char *subject,
                         time_t now, time_t *expires)
{
    *expires = now + BARGE_REGISTRY_TOKEN_TTL;
    _cleanup_free_ char *body =
        barge_xasprintf("%s.%s.%lld", version, subject, (long long)*expires);
    char mac[65];
    token_mac(reg, body, mac);
    return barge_xasprintf("%s.%s", body, mac);
}

char *barge_registry_token_issue(struct barge_registry *reg, const char *access_key_id, time_t now,
                                 time_t *expires)
{
    return token_issue(reg, TOKEN_VERSION, access_key_id, now, expires);
}

char *barge_registry_pull_token_issue(struct barge_registry *reg, const char *instance, time_t now,
                                      time_t *expires)
{
    return token_issue(reg, PULL_TOKEN_VERSION, instance, now, expires);
}

/* 1 when the key still exists (a deleted key's tokens die with it). */
static int key_exists(struct barge_registry *reg, const char *akid, const char *secret,
                      struct barge_error **err)
{
    struct barge_sigv4_credentials c = {0};
    int r = reg->cfg.lookup(akid, reg->cfg.lookup_ud, &c, err);
    if (r == 1 && secret) {
        size_t a = strlen(secret), b = strlen(c.secret_access_key);
        r = a == b && CRYPTO_memcmp(secret, c.secret_access_key, a) == 0;
    }
    free((char *)c.access_key_id);
    free((char *)c.secret_access_key);
    free((char *)c.session_token);
    return r;
}

static int token_verify(struct barge_registry *reg, const char *token, time_t now,
                        struct barge_registry_auth *out, struct barge_error **err)
{
    const char *last = strrchr(token, '.');
    bool pull = barge_str_has_prefix(token, PULL_TOKEN_VERSION ".");
    if ((!pull && !barge_str_has_prefix(token, TOKEN_VERSION ".")) || !last ||
        strlen(last + 1) != 64)
        return 0;
    _cleanup_free_ char *body = barge_xstrndup(token, (size_t)(last - token));
    char mac[65];
    token_mac(reg, body, mac);
    if (CRYPTO_memcmp(mac, last + 1, 64) != 0)
        return 0;
    const char *subject = body + strlen(TOKEN_VERSION ".");
    const char *dot = strrchr(subject, '.');
    if (!dot || dot == subject || (!pull && (size_t)(dot - subject) >= sizeof(out->access_key_id)))
        return 0;
    char *end;
    long long expires = strtoll(dot + 1, &end, 10);
    if (*end || expires <= (long long)now)
        return 0;
    _cleanup_free_ char *who = barge_xstrndup(subject, (size_t)(dot - subject));
    int r;
    if (pull) {
        /* A deregistered instance's tokens die with it. */
        r = reg->cfg.instance_may_pull
                ? reg->cfg.instance_may_pull(who, NULL, reg->cfg.lookup_ud, err)
                : 0;
        if (r == 1)
            out->instance = barge_steal(&who);
    } else {
        strcpy(out->access_key_id, who);
        r = key_exists(reg, out->access_key_id, NULL, err);
    }
    if (r == 1) {
        out->token = barge_xstrdup(token);
        out->expires = (time_t)expires;
    }
    return r;
}

int barge_registry_authorize(struct barge_registry *reg, const char *authorization, time_t now,
                             struct barge_registry_auth *out, struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!authorization)
        return 0;
    while (*authorization == ' ')
        authorization++;
    if (strncasecmp(authorization, "Bearer ", 7) == 0)
        return token_verify(reg, authorization + 7, now, out, err);
    if (strncasecmp(authorization, "Basic ", 6) != 0)
        return 0;
    const char *b64 = authorization + 6;
    while (*b64 == ' ')
        b64++;
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > 8192)
        return 0;
    _cleanup_free_ char *plain = barge_xmalloc(len + 1);
    int n = EVP_DecodeBlock((unsigned char *)plain, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return 0;
    for (size_t i = len; i > 0 && b64[i - 1] == '='; i--)
        n--;
    plain[n] = '\0';
    char *colon = memchr(plain, ':', (size_t)n);
    if (!colon || memchr(plain, '\0', (size_t)n))
        return 0;
    *colon = '\0';
    const char *user = plain, *pass = colon + 1;
    int r = 0;
    if (strcmp(user, "AWS") == 0) {
        r = token_verify(reg, pass, now, out, err);
    } else if (strlen(user) < sizeof(out->access_key_id)) {
        /* An access key id and its secret, for scripts that have no token. */
        r = key_exists(reg, user, pass, err);
        if (r == 1) {
            strcpy(out->access_key_id, user);
            out->expires = now + BARGE_REGISTRY_TOKEN_TTL;
        }
    }
    OPENSSL_cleanse(plain, len);
    return r;
}

void barge_registry_auth_release(struct barge_registry_auth *a)
{
    free(a->token);
    a->token = NULL;
    free(a->instance);
    a->instance = NULL;
}

int barge_registry_blob_size(struct barge_registry *reg, const char *digest, uint64_t *size,
                             struct barge_error **err)
{
    return barge_registry_blob_local(reg, digest, size, err);
}

/* --- lifecycle policies --- */

struct repo_names {
    char **names;
    size_t n;
};

static int collect_policy_repo(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct repo_names *rn = ud;
    if (!barge_json_str(doc, "lifecyclePolicyText", NULL))
        return 0;
    rn->names = barge_xrealloc(rn->names, (rn->n + 1) * sizeof(char *));
    rn->names[rn->n++] = barge_xstrdup(key);
    return 0;
}

struct repo_images {
    json_t *docs; /* array of image documents */
};

static int collect_image(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct repo_images *ri = ud;
    json_array_append(ri->docs, doc);
    return 0;
}

/* True when an image the policy keeps is an index that lists digest. */
static bool listed_by_survivor(json_t *docs, const struct barge_lifecycle_image *imgs,
                               const char *digest)
{
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        if (imgs[i].expire)
            continue;
        size_t j;
        json_t *c;
        json_array_foreach(barge_json_array(d, "children"), j, c)
        {
            if (barge_streq(json_string_value(c), digest))
                return true;
        }
    }
    return false;
}

static int lifecycle_repo(struct barge_registry *reg, const char *name, double now,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    if (barge_store_begin(reg->store, true, &tx, err) < 0)
        return -1;
    int r = barge_store_get(tx, BARGE_REGISTRY_KIND_REPO, name, &repo, err);
    if (r <= 0)
        return r;
    const char *text = barge_json_str(repo, "lifecyclePolicyText", NULL);
    if (!text)
        return 0;
    struct barge_lifecycle_policy policy;
    if (barge_lifecycle_parse(text, &policy, err) < 0)
        return barge_error_wrap(err, "lifecycle policy of '%s'", name);

    struct repo_images ri = {.docs = json_array()};
    _cleanup_free_ char *prefix = barge_xasprintf("%s@", name);
    size_t n = 0;
    struct barge_lifecycle_image *imgs = NULL;
    const char **tagv = NULL;
    if (barge_store_scan(tx, BARGE_REGISTRY_KIND_IMAGE, prefix, NULL, false, 0, collect_image, &ri,
                         err) < 0)
        goto fail;
    n = json_array_size(ri.docs);
    imgs = barge_xcalloc(n ? n : 1, sizeof(*imgs));
    size_t total_tags = 0, i;
    json_t *d;
    json_array_foreach(ri.docs, i, d) total_tags +=
        json_array_size(barge_json_array(d, "imageTags"));
    tagv = barge_xcalloc(total_tags ? total_tags : 1, sizeof(char *));
    size_t t = 0;
    json_array_foreach(ri.docs, i, d)
    {
        json_t *tags = barge_json_array(d, "imageTags");
        imgs[i].pushed_at = json_number_value(json_object_get(d, "imagePushedAt"));
        imgs[i].tags = tagv + t;
        imgs[i].n_tags = json_array_size(tags);
        size_t j;
        json_t *tag;
        json_array_foreach(tags, j, tag) tagv[t++] = json_string_value(tag);
    }
    barge_lifecycle_evaluate(&policy, imgs, n, now);
    size_t expired = 0;
    /* Indexes go first, so that children they alone listed can follow. */
    for (int pass = 0; pass < 2; pass++)
        json_array_foreach(ri.docs, i, d)
        {
            const char *digest = barge_json_str(d, "imageDigest", "");
            bool index = json_array_size(barge_json_array(d, "children")) > 0;
            if (index != (pass == 0) || !imgs[i].expire ||
                listed_by_survivor(ri.docs, imgs, digest))
                continue;
            struct barge_error *e = NULL;
            if (barge_registry_image_delete(tx, name, digest, &e) < 0) {
                if (e->code != BARGE_ERR_CONFLICT) {
                    *err = e;
                    goto fail;
                }
                barge_error_free(e);
                continue;
            }
            barge_info("lifecycle policy of '%s' expired image '%s'", name, digest);
            expired++;
        }
    json_object_set_new(repo, "lifecycleEvaluatedAt", json_real(now));
    if (barge_store_put(tx, BARGE_REGISTRY_KIND_REPO, name, repo, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        goto fail;
    free(tagv);
    free(imgs);
    json_decref(ri.docs);
    barge_lifecycle_release(&policy);
    return (int)expired;
fail:
    free(tagv);
    free(imgs);
    json_decref(ri.docs);
    barge_lifecycle_release(&policy);
    return -1;
}

int barge_registry_lifecycle_run(struct barge_registry *reg, struct barge_error **err)
{
    struct repo_names rn = {0};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(reg->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, BARGE_REGISTRY_KIND_REPO, "", NULL, false, 0, collect_policy_repo, &rn,
                         err) < 0) {
        for (size_t i = 0; i < rn.n; i++)
            free(rn.names[i]);
        free(rn.names);
        return -1;
    }
    barge_store_abort(barge_steal(&tx));
    int rc = 0;
    double now = barge_now();
    for (size_t i = 0; i < rn.n; i++) {
        struct barge_error *e = NULL;
        if (lifecycle_repo(reg, rn.names[i], now, &e) < 0) {
            barge_warn("applying the lifecycle policy of '%s': %s", rn.names[i], e->message);
            barge_error_free(e);
            rc = -1;
        }
        free(rn.names[i]);
    }
    free(rn.names);
    if (rc < 0)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "some lifecycle policies failed");
    return 0;
}

/* --- garbage collection --- */

struct mark {
    char **digests;
    size_t n, cap;
};

static int mark_image(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct mark *m = ud;
    size_t i;
    json_t *b;
    json_array_foreach(barge_json_array(doc, "blobs"), i, b)
    {
        if (!json_is_string(b))
            continue;
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 256;
            m->digests = barge_xrealloc(m->digests, m->cap * sizeof(char *));
        }
        m->digests[m->n++] = barge_xstrdup(json_string_value(b));
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_marked(const char *digest, void *ud)
{
    struct mark *m = ud;
    return m->n > 0 && bsearch(&digest, m->digests, m->n, sizeof(char *), cmp_str) != NULL;
}

int barge_registry_gc(struct barge_registry *reg, bool shared,
                      struct barge_registry_gc_stats *stats, struct barge_error **err)
{
    memset(stats, 0, sizeof(*stats));
    struct mark m = {0};
    int rc = -1;
    pthread_rwlock_wrlock(&reg->gc_lock);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(reg->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, BARGE_REGISTRY_KIND_IMAGE, "", NULL, false, 0, mark_image, &m, err) <
            0)
        goto out;
    barge_store_abort(barge_steal(&tx));
    if (m.n > 0)
        qsort(m.digests, m.n, sizeof(char *), cmp_str);
    struct barge_blobstore_sweep_stats ss;
    time_t older_than = time(NULL) - reg->cfg.gc_grace_seconds;
    if (barge_blobstore_sweep(reg->blobs, older_than, is_marked, &m, &ss, err) < 0)
        goto out;
    size_t shared_removed = 0;
    if (shared && barge_registry_shared_sweep(reg, (double)older_than, is_marked, &m,
                                              &shared_removed, err) < 0)
        goto out;
    stats->marked = m.n;
    stats->kept = ss.kept;
    stats->removed = ss.removed + shared_removed;
    stats->bytes_removed = ss.bytes_removed;
    rc = 0;
out:
    pthread_rwlock_unlock(&reg->gc_lock);
    for (size_t i = 0; i < m.n; i++)
        free(m.digests[i]);
    free(m.digests);
    return rc;
}

void barge_registry_housekeeping(struct barge_registry *reg, bool leader)
{
    barge_blobstore_uploads_expire(reg->blobs, (int64_t)reg->cfg.upload_timeout_seconds * 1000);
    int64_t now = barge_monotonic_ms();
    if (now < reg->next_gc_ms)
        return;
    reg->next_gc_ms = now + (int64_t)reg->cfg.gc_interval_seconds * 1000;
    _cleanup_error_ struct barge_error *err = NULL;
    if (leader && barge_registry_lifecycle_run(reg, &err) < 0) {
        barge_warn("registry lifecycle policies: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    /* Every barged sweeps its own files; the store's copies are the leader's. */
    struct barge_registry_gc_stats st;
    if (barge_registry_gc(reg, leader, &st, &err) < 0) {
        barge_warn("registry garbage collection: %s", err->message);
        return;
    }
    if (st.removed)
        barge_info("registry garbage collection removed %zu blob(s), %llu bytes; %zu kept",
                   st.removed, (unsigned long long)st.bytes_removed, st.kept);
}
