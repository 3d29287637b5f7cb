/* barged's process-wide pieces: access keys (kept in the store; the first start
 * creates an admin key and writes it as the AWS profile "barge"), the SigV4
 * key lookup, the route table and the housekeeping loop. */
#include "api/server.h"

#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/access.h"
#include "api/api.h"
#include "api/ecs.h"
#include "api/exec.h"
#include "api/logs.h"
#include "api/metrics.h"
#include "api/secrets.h"
#include "api/tasklogs.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

/* Access keys are looked up on every request, so a key found is kept in
 * memory for a while. Entries expire: keys are removed (per-task credentials
 * when their task stops, by whichever barged reaps them), and with several
 * barged on one store only the reaping process can forget at once. */
#define KEY_CACHE_TTL_MS 30000
#define KEY_CACHE_MAX    4096

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *key_cache; /* access key id -> {"doc": stored key, "secret", "at": ms} */

/* The cached doc of access_key_id (new reference) or NULL; with secret, also
 * its secret, unsealed when it was cached (caller wipes and frees). */
static json_t *key_cache_get(const char *access_key_id, char **secret)
{
    json_t *doc = NULL;
    pthread_mutex_lock(&key_lock);
    json_t *e = key_cache ? json_object_get(key_cache, access_key_id) : NULL;
    if (e && barge_monotonic_ms() - barge_json_int(e, "at", 0) < KEY_CACHE_TTL_MS) {
        doc = json_incref(json_object_get(e, "doc"));
        const char *s = barge_json_str(e, "secret", NULL);
        if (secret)
            *secret = s ? barge_xstrdup(s) : NULL;
    } else if (e) {
        json_object_del(key_cache, access_key_id);
    }
    pthread_mutex_unlock(&key_lock);
    return doc;
}

/* Stored secrets are sealed: the cache keeps each one opened, in memory only,
 * so that SigV4 does not decrypt it on every request. With secret, a copy of
 * it is returned too (caller wipes and frees). */
static void key_cache_put(const struct barge_server *srv, const char *access_key_id, json_t *doc,
                          char **secret_out)
{
    char *secret = barge_api_key_secret(srv, access_key_id, doc);
    pthread_mutex_lock(&key_lock);
    if (!key_cache)
        key_cache = json_object();
    if (json_object_size(key_cache) >= KEY_CACHE_MAX)
        json_object_clear(key_cache);
    json_t *e = json_pack("{s:O, s:I}", "doc", doc, "at", (json_int_t)barge_monotonic_ms());
    if (secret)
        json_object_set_new(e, "secret", json_string(secret));
    json_object_set_new(key_cache, access_key_id, e);
    pthread_mutex_unlock(&key_lock);
    if (secret_out)
        *secret_out = secret;
    else
        barge_crypto_free_str(secret);
}

void barge_server_forget_key(const char *access_key_id)
{
    pthread_mutex_lock(&key_lock);
    if (key_cache)
        json_object_del(key_cache, access_key_id);
    pthread_mutex_unlock(&key_lock);
}

static int key_lookup(struct barge_server *srv, const char *access_key_id, json_t **doc,
                      char **secret, struct barge_error **err)
{
    *doc = key_cache_get(access_key_id, secret);
    if (*doc)
        return 1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0)
        return -1;
    int r = barge_store_get(tx, BARGE_KIND_ACCESS_KEY, access_key_id, doc, err);
    if (r > 0)
        key_cache_put(srv, access_key_id, *doc, secret);
    return r;
}

int barge_server_key_doc(struct barge_server *srv, const char *access_key_id, json_t **doc,
                         struct barge_error **err)
{
    return key_lookup(srv, access_key_id, doc, NULL, err);
}

int barge_server_lookup_key(const char *access_key_id, void *ud,
                            struct barge_sigv4_credentials *out, struct barge_error **err)
{
    struct barge_server *srv = ud;
    json_t *doc = NULL;
    char *secret = NULL;
    int r = key_lookup(srv, access_key_id, &doc, &secret, err);
    if (r <= 0)
        return r;
    /* An IAM user's key made Inactive (UpdateAccessKey) is as if unknown. */
    if (barge_streq(barge_json_str(doc, "status", NULL), "Inactive")) {
        barge_crypto_free_str(secret);
        json_decref(doc);
        return 0;
    }
    out->access_key_id = barge_xstrdup(access_key_id);
    out->secret_access_key = secret;
    const char *tok = barge_json_str(doc, "sessionToken", NULL);
    out->session_token = tok ? barge_xstrdup(tok) : NULL;
    json_decref(doc);
    return 1;
}

static void random_chars(char *out, size_t n, const char *alphabet)
{
    size_t alen = strlen(alphabet);
    unsigned char buf[64];
    barge_random_bytes(buf, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[buf[i] % alen];
    out[n] = '\0';
}

/* Replaces (or appends) the section [name] of an INI file with body. */
static int write_ini_section(const char *path, const char *name, const char *body,
                             struct barge_error **err)
{
    _cleanup_free_ char *old = barge_read_file(path, NULL);
    if (!old && errno != ENOENT)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
    _cleanup_free_ char *header = barge_xasprintf("[%s]", name);
    size_t cap = (old ? strlen(old) : 0) + strlen(header) + strlen(body) + 4;
    char *out = barge_xcalloc(1, cap);
    size_t len = 0;
    bool skipping = false, written = false;
    for (char *line = old, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        size_t l = next ? (size_t)(next - line) : strlen(line);
        next = next ? next + 1 : line + l;
        if (line[0] == '[') {
            skipping = l >= strlen(header) && strncmp(line, header, strlen(header)) == 0;
            if (skipping && !written) {
                len += (size_t)sprintf(out + len, "%s\n%s", header, body);
                written = true;
            }
        }
        if (!skipping) {
            memcpy(out + len, line, l);
            len += l;
            out[len++] = '\n';
        }
    }
    if (!written) {
        if (len > 0 && out[len - 1] != '\n')
            out[len++] = '\n';
        len += (size_t)sprintf(out + len, "%s\n%s", header, body);
    }
    int r = barge_write_file_atomic(path, out, len, 0600);
    free(out);
    if (r < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    return 0;
}

static char *aws_file(const char *env, const char *name)
{
    const char *v = getenv(env);
    if (v && *v)
        return barge_xstrdup(v);
    const char *home = getenv("HOME");
    return barge_xasprintf("%s/.aws/%s", home && *home ? home : "/root", name);
}

static int write_profile(const struct barge_server *srv, const char *akid, const char *secret,
                         int port, struct barge_error **err)
{
    _cleanup_free_ char *creds = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    _cleanup_free_ char *config = aws_file("AWS_CONFIG_FILE", "config");
    _cleanup_free_ char *dir = barge_xstrdup(creds);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        if (barge_mkdir_p(dir, 0700) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", dir);
    }
    _cleanup_free_ char *cbody =
        barge_xasprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n", akid, secret);
    const char *host = srv->cfg.listen;
    _cleanup_free_ char *hostpart = barge_xstrdup(host);
    char *colon = strrchr(hostpart, ':');
    if (colon)
        *colon = '\0';
    if (!*hostpart || strcmp(hostpart, "0.0.0.0") == 0)
        strcpy(hostpart, "127.0.0.1");
    _cleanup_free_ char *pbody =
        barge_xasprintf("region = %s\noutput = json\nendpoint_url = http://%s:%d\n",
                        srv->cfg.region, hostpart, port);
    if (write_ini_section(creds, "barge", cbody, err) < 0 ||
        write_ini_section(config, "profile barge", pbody, err) < 0)
        return -1;
    fprintf(stderr,
            "barged: created the admin access key %s and wrote it as the AWS profile 'barge'\n"
            "        (%s, %s). Try:\n"
            "        aws --profile barge --endpoint-url http://%s:%d ecs list-clusters\n",
            akid, creds, config, hostpart, port);
    return 0;
}

static int write_credentials(const struct barge_server *srv, const char *akid, const char *secret,
                             struct barge_error **err)
{
    _cleanup_free_ char *path = barge_xasprintf("%s/admin-credentials", srv->cfg.data_dir);
    _cleanup_free_ char *text = barge_xasprintf(
        "[barge]\naws_access_key_id = %s\naws_secret_access_key = %s\n", akid, secret);
    if (barge_write_file_atomic(path, text, strlen(text), 0600) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    return 0;
}

/* Another barged sharing the store made the key: this one's data directory
 * gets the file too, for its local agents and scripts. */
static int copy_credentials(struct barge_server *srv, struct barge_tx *tx, const json_t *meta,
                            struct barge_error **err)
{
    _cleanup_free_ char *path = barge_xasprintf("%s/admin-credentials", srv->cfg.data_dir);
    if (access(path, F_OK) == 0)
        return 0;
    const char *akid = barge_json_str(meta, "accessKeyId", "");
    _cleanup_json_ json_t *key = NULL;
    if (barge_store_get(tx, BARGE_KIND_ACCESS_KEY, akid, &key, err) < 0)
        return -1;
    if (!key)
        return 0;
    char *secret = barge_api_key_secret(srv, akid, key);
    if (!secret)
        return barge_error_set(err, BARGE_ERR_INVALID, "the admin key '%s' cannot be opened", akid);
    int r = write_credentials(srv, akid, secret, err);
    barge_crypto_free_str(secret);
    return r;
}

int barge_server_ensure_admin_key(struct barge_server *srv, int port, bool write_aws_profile,
                                  struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *existing = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, "meta", "admin-key", &existing, err) < 0)
        return -1;
    if (existing)
        return copy_credentials(srv, tx, existing, err);
    char akid[21], secret[41];
    memcpy(akid, "AKIA", 4);
    random_chars(akid + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    random_chars(secret, 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    _cleanup_free_ char *sealed = barge_api_key_seal(srv, akid, secret);
    _cleanup_json_ json_t *key = json_pack("{s:s, s:s, s:f}", "sealedSecret", sealed, "user",
                                           "admin", "createdAt", barge_now());
    _cleanup_json_ json_t *meta = json_pack("{s:s}", "accessKeyId", akid);
    if (barge_store_put(tx, BARGE_KIND_ACCESS_KEY, akid, key, err) < 0 ||
        barge_store_put(tx, "meta", "admin-key", meta, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    /* The key is also left in the data directory, readable only by its owner,
     * for scripts and tests that must not touch ~/.aws. */
    if (write_credentials(srv, akid, secret, err) < 0)
        return -1;
    if (write_aws_profile)
        return write_profile(srv, akid, secret, port, err);
    return 0;
}

int barge_server_registry_init(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_free_ char *root = barge_xasprintf("%s/registry", srv->cfg.data_dir);
    struct barge_registry_config rc = {
        .root = root,
        .account_id = srv->cfg.account_id,
        .region = srv->cfg.region,
        .host = srv->cfg.registry_host,
        .gc_interval_seconds = srv->cfg.registry_gc_interval,
        .gc_grace_seconds = srv->cfg.registry_gc_grace,
        .upload_timeout_seconds = srv->cfg.registry_upload_timeout,
        .lookup = barge_server_lookup_key,
        .instance_may_pull = barge_api_instance_may_pull,
        .key_may = barge_api_registry_key_may,
        .lookup_ud = srv,
    };
    return barge_registry_new(&rc, srv->store, &srv->registry, err);
}

/* The registry's streaming route, adapted from the HTTP server's callbacks
 * (which know only the request) to the registry's (which want the registry). */
static enum barge_http_body_mode registry_start(struct barge_http_req *req,
                                                struct barge_http_resp *resp)
{
    struct barge_server *srv = req->server;
    return barge_registry_http_start(srv->registry, req, resp);
}

static int registry_data(struct barge_http_req *req, const char *buf, size_t len)
{
    struct barge_server *srv = req->server;
    return barge_registry_http_data(srv->registry, req, buf, len);
}

static void registry_done(struct barge_http_req *req, bool handled)
{
    struct barge_server *srv = req->server;
    barge_registry_http_done(srv->registry, req, handled);
}

static void registry_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    struct barge_server *srv = req->server;
    barge_registry_http_handle(srv->registry, req, resp);
}

static const struct barge_http_stream registry_stream = {
    .start = registry_start,
    .data = registry_data,
    .done = registry_done,
};

/* The AWS APIs' bodies are measured against their service's limit as soon as
 * the headers are in (S3's, and the other protocols', take the route's). */
static const struct barge_http_stream root_stream = {
    .start = barge_api_json11_start,
};

/* Which requests may wait, and so run on the HTTP server's handler pool
 * rather than its event threads: whatever may commit (SQLite's commits
 * fsync, and writers queue for the one write lock), and with PostgreSQL
 * everything, as every read is a round trip to the database. Reads of a
 * SQLite store take microseconds and are answered on the event thread. */
static bool store_is_remote(const struct barge_http_req *req)
{
    const struct barge_server *srv = req->server;
    return strcmp(barge_store_backend(srv->store), "sqlite") != 0;
}

static bool waits_unless_local_read(const struct barge_http_req *req)
{
    return store_is_remote(req) || barge_http_waits_unless_read(req);
}

/* Describe and List operations only read (by their names; one that wrote
 * anyway would only hold up its event thread's other requests). */
static bool op_reads_only(const char *op, size_t len)
{
    return (len > 8 && strncmp(op, "Describe", 8) == 0) || (len > 4 && strncmp(op, "List", 4) == 0);
}

/* The AWS APIs: the operation is named by X-Amz-Target (JSON), the path
 * (CBOR) or the form's Action (query); S3 reads with GET and HEAD. */
static bool api_waits(const struct barge_http_req *req)
{
    if (store_is_remote(req))
        return true;
    const char *target = barge_http_req_header(req, "X-Amz-Target");
    if (target) {
        const char *dot = strrchr(target, '.');
        const char *op = dot ? dot + 1 : target;
        return !op_reads_only(op, strlen(op));
    }
    if (barge_http_req_header(req, "smithy-protocol")) {
        const char *op = strstr(req->raw_path, "/operation/");
        return !op || !op_reads_only(op + 11, strlen(op + 11));
    }
    const char *ct = barge_http_req_header(req, "Content-Type");
    if (strcmp(req->method, "POST") == 0 && ct &&
        barge_str_has_prefix(ct, "application/x-www-form-urlencoded")) {
        for (const char *p = req->body; p && *p;) {
            size_t n = strcspn(p, "&");
            if (n > 7 && strncmp(p, "Action=", 7) == 0)
                return !op_reads_only(p + 7, n - 7);
            p += n + (p[n] == '&');
        }
        return true;
    }
    return barge_http_waits_unless_read(req);
}

/* The console's pages and session answer GETs; its API calls are POSTs.
 * Other paths under the prefix are S3 buckets. */
static bool console_waits(const struct barge_http_req *req)
{
    if (strcmp(req->path, "/console") == 0 || barge_str_has_prefix(req->path, "/console/"))
        return waits_unless_local_read(req);
    return api_waits(req);
}

/* Manifests are the only bodies the registry buffers; ECR caps them at 4 MiB. */
void barge_api_agent_handle(struct barge_http_req *req, struct barge_http_resp *resp);

static const struct barge_http_route routes[] = {
    /* Agents' calls record what they report; their long polls park. */
    {"/agent/", barge_api_agent_handle, 4 * 1024 * 1024, NULL, barge_http_waits_always},
    {"/exec/", barge_api_exec_handle, 0, NULL, barge_http_waits_always},
    {"/barge/v1/task-logs", barge_api_task_logs_handle, 4096, NULL, barge_http_waits_always},
    {"/barge/v1/join-tokens", barge_api_join_tokens_handle, 4096, NULL, waits_unless_local_read},
    {"/barge/", barge_api_usage_handle, 4096, NULL, waits_unless_local_read},
    {"/v2/", registry_handle, 4 * 1024 * 1024, &registry_stream, waits_unless_local_read},
    /* The web console; other paths that start so (S3 buckets "console...")
     * go on to the root handler, hence the same limits. */
    {"/console", barge_api_console_handle, 16 * 1024 * 1024, &root_stream, console_waits},
    /* AWS JSON 1.1 when X-Amz-Target says so, else S3 (secrets.h). */
    {"/", barge_api_root_handle, 16 * 1024 * 1024, &root_stream, api_waits},
    {NULL, NULL, 0, NULL, NULL},
};

const struct barge_http_route *barge_server_routes(void)
{
    return routes;
}

/* /metrics has a listener of its own (--metrics-listen): Prometheus scrapes
 * without AWS credentials, and what it shows (clusters, services, task
 * counts, API traffic) is not for whoever reaches the API port. */
static const struct barge_http_route metrics_routes[] = {
    {"/metrics", barge_metrics_handle, 0, NULL, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

const struct barge_http_route *barge_server_metrics_routes(void)
{
    return metrics_routes;
}

/* A handler works in the default region until its request names another
 * (barge_api_authenticate), and leaves none to the next. */
static void default_region(void *server)
{
    barge_store_use_region(NULL);
}

struct barge_http_options barge_server_http_options(void)
{
    return (struct barge_http_options){.request_id_header = "x-amzn-RequestId",
                                       .thread_reset = default_region};
}

/* Housekeeping that is not urgent enough for its own loop. */
static void region_housekeeping(struct barge_server *srv);

void barge_server_housekeeping(struct barge_server *srv, bool leader)
{
    _cleanup_error_ struct barge_error *err = NULL;
    /* This process's own files: uploads in progress and cached blobs. */
    if (srv->registry)
        barge_registry_housekeeping(srv->registry, leader);
    if (!leader)
        return;
    _cleanup_json_ json_t *regions = NULL;
    if (barge_store_regions(srv->store, &regions, &err) < 0) {
        barge_warn("listing regions: %s", err->message);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(regions, i, r)
    {
        barge_store_use_region(json_string_value(r));
        region_housekeeping(srv);
    }
    barge_store_use_region(NULL);
    if (barge_api_task_credentials_reap(srv, &err) < 0) {
        barge_warn("removing task execution credentials: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    if (barge_api_console_reap(srv, &err) < 0)
        barge_warn("removing expired console sessions: %s", err->message);
}

/* The leader's store-wide work in the calling thread's region. */
static void region_housekeeping(struct barge_server *srv)
{
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_ecs_taskdefs_reap(srv, &err) < 0) {
        barge_warn("purging deleted task definitions: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    if (barge_ecs_tasks_reap(srv, &err) < 0) {
        barge_warn("removing old stopped tasks: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    if (barge_ecs_deployments_reap(srv, &err) < 0) {
        barge_warn("pruning service deployment history: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    if (barge_logs_enforce_retention(srv, &err) < 0) {
        barge_warn("enforcing log retention: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    if (barge_api_secretsmanager_reap(srv, &err) < 0) {
        barge_warn("removing deleted secrets: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    if (barge_api_task_logs_reap(srv, &err) < 0)
        barge_warn("removing expired task log requests: %s", err->message);
}

/* barge_server_wake's hook: requests parked before the increment are in the
 * list by now (see barge_server_park); later ones see the new generation. */
static void resume_parked(struct barge_server *srv)
{
    barge_http_resume_parked(srv->http);
}

void barge_server_set_http(struct barge_server *srv, struct barge_http_server *http)
{
    pthread_mutex_lock(&srv->notify_lock);
    srv->http = http;
    srv->on_wake = resume_parked;
    pthread_mutex_unlock(&srv->notify_lock);
}

bool barge_server_park(struct barge_http_req *req, uint64_t seen, int64_t deadline_ms)
{
    struct barge_server *srv = req->server;
    bool parked = false;
    pthread_mutex_lock(&srv->notify_lock);
    if (srv->notify_gen == seen && barge_monotonic_ms() < deadline_ms)
        parked = barge_http_req_park(req, deadline_ms);
    pthread_mutex_unlock(&srv->notify_lock);
    return parked;
}

int barge_server_ensure_cluster(struct barge_server *srv, const char *name,
                                struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_CLUSTER, name, &doc, err) < 0)
        return -1;
    if (doc && barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE"))
        return 0;
    json_decref(doc);
    doc = ecs_cluster_doc_new(srv, name);
    if (barge_store_put(tx, ECS_KIND_CLUSTER, name, doc, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(&tx), err);
}
