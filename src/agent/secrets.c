/* Resolution of environment files and secrets at task start (see
 * secrets.h). SSM parameters are fetched as the ECS agent does: GetParameters
 * with WithDecryption, names or ARNs passed as written, at most 10 per call,
 * one batch per region, any InvalidParameters failing the task. Secrets
 * Manager secrets with GetSecretValue per distinct (secret, stage, version),
 * then the JSON key if one is asked for. Environment files with S3
 * GetObject. Every call is signed with SigV4 for the region of the resource,
 * with the task's execution credentials (or, for environment files on an
 * external S3 endpoint, the keys configured for it). */
#include "agent/secrets.h"

#include <string.h>
#include <time.h>

#include "common/arn.h"
#include "common/awsapi.h"
#include "common/crypto.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secretref.h"
#include "common/sigv4.h"

#define SSM_BATCH          10
#define MAX_RESPONSE_BYTES (16 * 1024 * 1024)
#define SECRETS_PREFIX     "ResourceInitializationError: unable to pull secrets or registry auth: "

struct barge_task_env {
    json_t *files;       /* {container: {VAR: value}} */
    json_t *secrets;     /* {container: {VAR: value}} */
    json_t *log_options; /* {container: {option: value}} */
};

/* --- small helpers ------------------------------------------------------- */

void barge_json_wipe(json_t *obj)
{
    if (json_is_string(obj)) {
        /* jansson keeps the bytes in their own buffer; zero it in place. */
        explicit_bzero((char *)json_string_value(obj), json_string_length(obj));
        return;
    }
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(obj)) {
        json_object_foreach(obj, k, v) barge_json_wipe(v);
    } else if (json_is_array(obj)) {
        json_array_foreach(obj, i, v) barge_json_wipe(v);
    }
}

static void wipe_decref(json_t *j)
{
    if (!j)
        return;
    barge_json_wipe(j);
    json_decref(j);
}

void barge_task_env_free(struct barge_task_env *te)
{
    if (!te)
        return;
    wipe_decref(te->files);
    wipe_decref(te->secrets);
    wipe_decref(te->log_options);
    free(te);
}

static void set_var(json_t *root, const char *container, const char *name, const char *value,
                    size_t len)
{
    json_t *c = json_object_get(root, container);
    if (!c)
        json_object_set_new(root, container, c = json_object());
    json_object_set_new(c, name, json_stringn(value, len));
}

int barge_envfile_parse(const char *text, size_t len, json_t *vars)
{
    int n = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl ? 1 : 0);
        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (llen == 0 || line[0] == '#' || memchr(line, '\0', llen))
            continue;
        const char *eq = memchr(line, '=', llen);
        if (!eq || eq == line)
            continue;
        _cleanup_free_ char *name = barge_xstrndup(line, (size_t)(eq - line));
        json_t *v = json_stringn(eq + 1, llen - (size_t)(eq + 1 - line));
        if (!v)
            continue; /* not UTF-8: nothing a container could be given as text */
        json_object_set_new(vars, name, v);
        n++;
    }
    return n;
}

/* --- signed AWS calls ---------------------------------------------------- */

struct aws_creds {
    char *access_key;
    char *secret_key;
    char *token; /* NULL for long-term keys */
};

static void creds_release(struct aws_creds *c)
{
    barge_crypto_free_str(c->access_key);
    barge_crypto_free_str(c->secret_key);
    barge_crypto_free_str(c->token);
    memset(c, 0, sizeof(*c));
}

/* One SigV4-signed request to endpoint (a base URL). target non-NULL makes it
 * an AWS JSON 1.1 POST of body; else a GET of raw_path (S3). Returns the HTTP
 * status with the response in *out (newly allocated, NUL-terminated; may
 * hold a secret: the caller wipes it), or -1 when the endpoint could not be
 * reached. */
static int aws_call(const char *endpoint, const struct aws_creds *creds, const char *service,
                    const char *region, const char *target, const char *body, const char *raw_path,
                    char **out, size_t *out_len, struct barge_error **err)
{
    *out = NULL;
    *out_len = 0;
    size_t elen = strlen(endpoint);
    while (elen > 0 && endpoint[elen - 1] == '/')
        elen--;
    _cleanup_free_ char *url =
        barge_xasprintf("%.*s%s", (int)elen, endpoint, target ? "/" : raw_path);
    _cleanup_free_ char *peer = barge_xasprintf("'%s'", endpoint);
    struct barge_kv hdrs[] = {{"Content-Type", "application/x-amz-json-1.1"},
                              {"X-Amz-Target", target}};
    struct barge_httpc_request rq = {
        .method = target ? "POST" : "GET",
        .url = url,
        .headers = target ? hdrs : NULL,
        .n_headers = target ? 2 : 0,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .max_response = MAX_RESPONSE_BYTES,
        .sensitive = true,
        .peer = peer,
    };
    struct barge_sigv4_credentials c = {creds->access_key, creds->secret_key, creds->token};
    struct barge_aws_signer signer = {
        .region = region, .service = service, .creds = &c, .s3 = !target};
    struct barge_httpc_response resp;
    if (barge_aws_perform(NULL, &rq, &signer, &resp, err) < 0)
        return -1;
    *out = resp.body;
    *out_len = resp.len;
    return (int)resp.status;
}

/* "Type: message" of an AWS JSON error body, or of an S3 XML one. */
static char *error_text(int status, const char *body)
{
    json_error_t jerr;
    json_t *j = body ? json_loads(body, 0, &jerr) : NULL;
    if (json_is_object(j)) {
        const char *type = barge_json_str(j, "__type", "error");
        const char *hash = strrchr(type, '#');
        char *s = barge_xasprintf("%s: %s", hash ? hash + 1 : type,
                                  barge_json_str(j, "message", barge_json_str(j, "Message", "")));
        json_decref(j);
        return s;
    }
    json_decref(j);
    const char *code = body ? strstr(body, "<Code>") : NULL;
    const char *msg = body ? strstr(body, "<Message>") : NULL;
    if (code) {
        code += 6;
        const char *end = strstr(code, "</Code>");
        const char *mend = msg ? strstr(msg, "</Message>") : NULL;
        if (end)
            return barge_xasprintf("%.*s: %.*s", (int)(end - code), code,
                                   mend ? (int)(mend - msg - 9) : 0, mend ? msg + 9 : "");
    }
    return barge_xasprintf("HTTP status %d", status);
}

/* --- the resolver -------------------------------------------------------- */

struct resolver {
    struct barge_agent *agent;
    const char *task_arn;
    char *task_region;
    char *account;
    struct aws_creds task_creds; /* fetched on first need */
    bool have_creds;
    struct barge_task_env *te;
    char *reason;
};

static int fail(struct resolver *rs, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int fail(struct resolver *rs, const char *fmt, ...)
{
    if (rs->reason)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    rs->reason = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return -1;
}

/* The task's execution credentials from barged, once. */
static int task_creds(struct resolver *rs, const struct aws_creds **out, struct barge_error **err)
{
    if (rs->have_creds) {
        *out = &rs->task_creds;
        return 0;
    }
    struct barge_agent_client *c = barge_agent_client_new(rs->agent->cfg.server);
    _cleanup_json_ json_t *body = json_pack("{s:s}", "taskArn", rs->task_arn);
    json_t *resp = NULL;
    int status = barge_agent_client_post(c, "/agent/credentials", body, rs->agent->token, NULL, 30,
                                         &resp, err);
    barge_agent_client_free(c);
    if (status < 0)
        return -1;
    if (status != 200) {
        int r = barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                                "barged refused the task execution credentials (%d): %s", status,
                                barge_json_str(resp, "message", "no message"));
        json_decref(resp);
        return r;
    }
    rs->task_creds.access_key = barge_xstrdup(barge_json_str(resp, "accessKeyId", ""));
    rs->task_creds.secret_key = barge_xstrdup(barge_json_str(resp, "secretAccessKey", ""));
    rs->task_creds.token = barge_xstrdup(barge_json_str(resp, "sessionToken", ""));
    wipe_decref(resp);
    rs->have_creds = true;
    *out = &rs->task_creds;
    return 0;
}

/* A secret to fetch and where its value goes. */
struct target {
    const char *container;
    const char *name;
    bool log_option;
};

struct ref {
    struct barge_secret_ref ref;
    const char *value_from;
    struct target *targets;
    size_t n_targets;
    char *value; /* resolved; wiped on release */
    size_t value_len;
};

struct refs {
    struct ref *v;
    size_t n;
};

static void refs_release(struct refs *rf)
{
    for (size_t i = 0; i < rf->n; i++) {
        barge_secret_ref_release(&rf->v[i].ref);
        free(rf->v[i].targets);
        if (rf->v[i].value)
            barge_crypto_free(rf->v[i].value, rf->v[i].value_len);
    }
    free(rf->v);
}

static int add_ref(struct resolver *rs, struct refs *rf, const char *container, const json_t *s,
                   bool log_option)
{
    const char *value_from = barge_json_str(s, "valueFrom", "");
    const char *name = barge_json_str(s, "name", "");
    struct ref *r = NULL;
    for (size_t i = 0; i < rf->n && !r; i++)
        if (strcmp(rf->v[i].value_from, value_from) == 0)
            r = &rf->v[i];
    if (!r) {
        struct barge_secret_ref parsed;
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_secret_ref_parse(value_from, rs->task_region, rs->account, &parsed, &err) < 0)
            return fail(rs, SECRETS_PREFIX "invalid secret '%s' of container %s: %s", name,
                        container, err->message);
        rf->v = barge_xrealloc(rf->v, (rf->n + 1) * sizeof(*rf->v));
        r = &rf->v[rf->n++];
        memset(r, 0, sizeof(*r));
        r->ref = parsed;
        r->value_from = value_from;
    }
    r->targets = barge_xrealloc(r->targets, (r->n_targets + 1) * sizeof(*r->targets));
    r->targets[r->n_targets++] = (struct target){container, name, log_option};
    return 0;
}

/* Whether a GetParameters result p answers the request ident (a name, a
 * name with a selector, or an ARN of either). */
static bool parameter_answers(const json_t *p, const char *ident)
{
    const char *name = barge_json_str(p, "Name", "");
    const char *arn = barge_json_str(p, "ARN", "");
    const char *sel = barge_json_str(p, "Selector", "");
    _cleanup_free_ char *with_sel = barge_xasprintf("%s%s", name, sel);
    _cleanup_free_ char *arn_sel = barge_xasprintf("%s%s", arn, sel);
    return strcmp(ident, name) == 0 || strcmp(ident, with_sel) == 0 || strcmp(ident, arn) == 0 ||
           strcmp(ident, arn_sel) == 0;
}

static int fetch_ssm_batch(struct resolver *rs, struct refs *rf, const char *region, size_t *idx,
                           size_t n)
{
    const struct aws_creds *creds;
    _cleanup_error_ struct barge_error *err = NULL;
    if (task_creds(rs, &creds, &err) < 0)
        return fail(rs, SECRETS_PREFIX "unable to retrieve secrets from ssm: %s", err->message);
    _cleanup_json_ json_t *req = json_pack("{s:[], s:b}", "Names", "WithDecryption", 1);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(json_object_get(req, "Names"),
                              json_string(rf->v[idx[i]].ref.request));
    _cleanup_free_ char *body = barge_json_dump(req);
    char *resp = NULL;
    size_t resp_len = 0;
    int status = aws_call(rs->agent->cfg.server, creds, "ssm", region, "AmazonSSM.GetParameters",
                          body, NULL, &resp, &resp_len, &err);
    if (status < 0)
        return fail(rs, SECRETS_PREFIX "unable to retrieve secrets from ssm: %s", err->message);
    if (status != 200) {
        _cleanup_free_ char *why = error_text(status, resp);
        barge_crypto_free(resp, resp_len);
        return fail(rs, SECRETS_PREFIX "unable to retrieve secrets from ssm: %s", why);
    }
    json_error_t jerr;
    json_t *out = json_loadb(resp, resp_len, 0, &jerr);
    barge_crypto_free(resp, resp_len);
    if (!json_is_object(out)) {
        json_decref(out);
        return fail(rs, SECRETS_PREFIX "unable to retrieve secrets from ssm: the response is not "
                                       "JSON");
    }
    json_t *invalid = barge_json_array(out, "InvalidParameters");
    if (json_array_size(invalid) > 0) {
        char *list = barge_xstrdup("");
        size_t i;
        json_t *v;
        json_array_foreach(invalid, i, v)
        {
            char *next = barge_xasprintf("%s%s%s", list, i ? ", " : "", json_string_value(v));
            free(list);
            list = next;
        }
        wipe_decref(out);
        fail(rs,
             SECRETS_PREFIX "execution resource retrieval failed: unable to retrieve secrets from "
                            "ssm: invalid parameters: %s",
             list);
        free(list);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct ref *r = &rf->v[idx[i]];
        size_t j;
        json_t *p;
        json_array_foreach(barge_json_array(out, "Parameters"), j, p)
        {
            if (!r->value && parameter_answers(p, r->ref.request)) {
                json_t *v = json_object_get(p, "Value");
                r->value_len = json_string_length(v);
                r->value = barge_xstrndup(json_string_value(v), r->value_len);
            }
        }
        if (!r->value) {
            wipe_decref(out);
            return fail(rs,
                        SECRETS_PREFIX "unable to retrieve secrets from ssm: parameter %s is "
                                       "missing from the response",
                        r->ref.request);
        }
    }
    wipe_decref(out);
    return 0;
}

static int fetch_ssm(struct resolver *rs, struct refs *rf)
{
    size_t *idx = barge_xcalloc(rf->n + 1, sizeof(*idx));
    bool *done = barge_xcalloc(rf->n + 1, sizeof(*done));
    int ret = 0;
    /* One region at a time, SSM_BATCH names per call. */
    for (size_t i = 0; i < rf->n && ret == 0; i++) {
        if (done[i] || rf->v[i].ref.provider != BARGE_SECRET_SSM)
            continue;
        const char *region = rf->v[i].ref.region;
        size_t n = 0;
        for (size_t j = i; j < rf->n && ret == 0; j++) {
            if (done[j] || rf->v[j].ref.provider != BARGE_SECRET_SSM ||
                strcmp(rf->v[j].ref.region, region) != 0)
                continue;
            done[j] = true;
            idx[n++] = j;
            if (n == SSM_BATCH) {
                ret = fetch_ssm_batch(rs, rf, region, idx, n);
                n = 0;
            }
        }
        if (ret == 0 && n > 0)
            ret = fetch_ssm_batch(rs, rf, region, idx, n);
    }
    free(idx);
    free(done);
    return ret;
}

/* The value of a JSON key of a secret, as the ECS agent renders it: strings
 * as they are, anything else as JSON. */
static int json_key_value(struct resolver *rs, struct ref *r, const char *secret)
{
    json_error_t jerr;
    json_t *doc = json_loads(secret, 0, &jerr);
    if (!json_is_object(doc)) {
        wipe_decref(doc);
        return fail(rs,
                    SECRETS_PREFIX "unable to retrieve secret from asm: secret %s is not a JSON "
                                   "object, so it has no key %s",
                    r->ref.resource, r->ref.json_key);
    }
    json_t *v = json_object_get(doc, r->ref.json_key);
    if (!v) {
        wipe_decref(doc);
        return fail(rs,
                    SECRETS_PREFIX "retrieved secret from Secrets Manager did not contain json "
                                   "key %s (secret %s)",
                    r->ref.json_key, r->ref.resource);
    }
    if (json_is_string(v)) {
        r->value_len = json_string_length(v);
        r->value = barge_xstrndup(json_string_value(v), r->value_len);
    } else {
        r->value = barge_json_dump(v);
        r->value_len = strlen(r->value);
    }
    wipe_decref(doc);
    return 0;
}

static int fetch_asm(struct resolver *rs, struct refs *rf)
{
    for (size_t i = 0; i < rf->n; i++) {
        struct ref *r = &rf->v[i];
        if (r->ref.provider != BARGE_SECRET_ASM)
            continue;
        /* Several references may share one secret version: fetch it once. */
        struct ref *same = NULL;
        for (size_t j = 0; j < i && !same; j++) {
            struct ref *o = &rf->v[j];
            if (o->ref.provider == BARGE_SECRET_ASM && o->value &&
                strcmp(o->ref.request, r->ref.request) == 0 &&
                barge_streq(o->ref.version_stage, r->ref.version_stage) &&
                barge_streq(o->ref.version_id, r->ref.version_id) && !o->ref.json_key &&
                !r->ref.json_key)
                same = o;
        }
        if (same) {
            r->value_len = same->value_len;
            r->value = barge_xstrndup(same->value, same->value_len);
            continue;
        }
        const struct aws_creds *creds;
        _cleanup_error_ struct barge_error *err = NULL;
        if (task_creds(rs, &creds, &err) < 0)
            return fail(rs, SECRETS_PREFIX "unable to retrieve secret from asm: %s", err->message);
        _cleanup_json_ json_t *req = json_pack("{s:s}", "SecretId", r->ref.request);
        barge_json_set_str(req, "VersionStage", r->ref.version_stage);
        barge_json_set_str(req, "VersionId", r->ref.version_id);
        _cleanup_free_ char *body = barge_json_dump(req);
        char *resp = NULL;
        size_t resp_len = 0;
        int status = aws_call(rs->agent->cfg.server, creds, "secretsmanager", r->ref.region,
                              "secretsmanager.GetSecretValue", body, NULL, &resp, &resp_len, &err);
        if (status < 0)
            return fail(rs, SECRETS_PREFIX "unable to retrieve secret from asm: %s", err->message);
        if (status != 200) {
            _cleanup_free_ char *why = error_text(status, resp);
            barge_crypto_free(resp, resp_len);
            return fail(rs,
                        SECRETS_PREFIX "unable to retrieve secret from asm: service call failed "
                                       "for secret %s: %s",
                        r->ref.request, why);
        }
        json_error_t jerr;
        json_t *out = json_loadb(resp, resp_len, 0, &jerr);
        barge_crypto_free(resp, resp_len);
        const char *s = barge_json_str(out, "SecretString", NULL);
        int rc = 0;
        if (!s)
            rc = fail(rs,
                      SECRETS_PREFIX "unable to retrieve secret from asm: secret %s has no "
                                     "SecretString (binary secrets cannot become environment "
                                     "variables)",
                      r->ref.request);
        else if (r->ref.json_key)
            rc = json_key_value(rs, r, s);
        else {
            r->value_len = json_string_length(json_object_get(out, "SecretString"));
            r->value = barge_xstrndup(s, r->value_len);
        }
        wipe_decref(out);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* --- environment files --------------------------------------------------- */

/* Percent-encodes an S3 key for a path (keeping '/'). */
static char *encode_key(const char *key)
{
    size_t n = strlen(key);
    char *out = barge_xmalloc(3 * n + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~/", *p)) {
            *o++ = (char)*p;
        } else {
            sprintf(o, "%%%02X", *p);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}

/* Fetches and parses one environment file; *vars is a new object. */
static int fetch_env_file(struct resolver *rs, const char *arn, json_t **vars)
{
    *vars = NULL;
    char *bucket = NULL, *key = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_s3_object_arn_parse(arn, &bucket, &key, &err) < 0)
        return fail(rs, "ResourceInitializationError: unable to retrieve environment file %s: %s",
                    arn, err->message);
    _cleanup_free_ char *ekey = encode_key(key);
    _cleanup_free_ char *path = barge_xasprintf("/%s/%s", bucket, ekey);
    free(bucket);
    free(key);
    const struct barge_agent_config *cfg = &rs->agent->cfg;
    struct aws_creds own = {0};
    const struct aws_creds *creds = &own;
    const char *endpoint = cfg->s3_endpoint ? cfg->s3_endpoint : cfg->server;
    if (cfg->s3_endpoint && cfg->s3_access_key) {
        own.access_key = barge_xstrdup(cfg->s3_access_key);
        own.secret_key = barge_xstrdup(cfg->s3_secret_key ? cfg->s3_secret_key : "");
    } else if (task_creds(rs, &creds, &err) < 0) {
        return fail(rs, "ResourceInitializationError: unable to retrieve environment file %s: %s",
                    arn, err->message);
    }
    char *resp = NULL;
    size_t resp_len = 0;
    int status =
        aws_call(endpoint, creds, "s3", rs->task_region, NULL, NULL, path, &resp, &resp_len, &err);
    creds_release(&own);
    if (status < 0)
        return fail(rs, "ResourceInitializationError: unable to retrieve environment file %s: %s",
                    arn, err->message);
    if (status != 200) {
        _cleanup_free_ char *why = error_text(status, resp);
        barge_crypto_free(resp, resp_len);
        return fail(rs, "ResourceInitializationError: unable to retrieve environment file %s: %s",
                    arn, why);
    }
    *vars = json_object();
    barge_envfile_parse(resp, resp_len, *vars);
    barge_crypto_free(resp, resp_len);
    return 0;
}

static int resolve_env_files(struct resolver *rs, const json_t *defs)
{
    json_t *cache = json_object(); /* ARN → vars, each file fetched once per task */
    size_t i, j;
    json_t *c, *f;
    int ret = 0;
    json_array_foreach((json_t *)defs, i, c)
    {
        const char *cname = barge_json_str(c, "name", "");
        json_array_foreach(barge_json_array(c, "environmentFiles"), j, f)
        {
            const char *arn = barge_json_str(f, "value", "");
            const char *type = barge_json_str(f, "type", "s3");
            if (strcmp(type, "s3") != 0) {
                ret = fail(rs,
                           "ResourceInitializationError: unable to retrieve environment file "
                           "%s: type '%s' is not supported (only s3)",
                           arn, type);
                goto out;
            }
            json_t *vars = json_object_get(cache, arn);
            if (!vars) {
                if (fetch_env_file(rs, arn, &vars) < 0) {
                    ret = -1;
                    goto out;
                }
                json_object_set_new(cache, arn, vars);
            }
            /* Files in order; a variable an earlier file set stays. */
            const char *k;
            json_t *v;
            json_object_foreach(vars, k, v)
            {
                json_t *have = json_object_get(rs->te->files, cname);
                if (!json_object_get(have, k))
                    set_var(rs->te->files, cname, k, json_string_value(v), json_string_length(v));
            }
        }
    }
out:
    wipe_decref(cache);
    return ret;
}

/* --- entry points -------------------------------------------------------- */

int barge_task_env_resolve(struct barge_agent *a, const char *task_arn, const json_t *defs,
                           struct barge_task_env **out, char **reason)
{
    *out = NULL;
    *reason = NULL;
    struct resolver rs = {.agent = a, .task_arn = task_arn};
    rs.te = barge_xcalloc(1, sizeof(*rs.te));
    rs.te->files = json_object();
    rs.te->secrets = json_object();
    rs.te->log_options = json_object();
    struct barge_arn arn;
    if (barge_arn_parse(task_arn, &arn) == 0) {
        rs.task_region = barge_xstrdup(arn.region);
        rs.account = barge_xstrdup(arn.account);
        barge_arn_release(&arn);
    } else {
        rs.task_region = barge_xstrdup(a->cfg.region ? a->cfg.region : "us-east-1");
        rs.account = barge_xstrdup("000000000000");
    }
    struct refs rf = {0};
    size_t i, j;
    json_t *c, *s;
    int ret = 0, n_files = 0;
    json_array_foreach((json_t *)defs, i, c)
    {
        const char *cname = barge_json_str(c, "name", "");
        json_array_foreach(barge_json_array(c, "secrets"), j, s)
        {
            if (add_ref(&rs, &rf, cname, s, false) < 0)
                ret = -1;
        }
        json_array_foreach(
            barge_json_array(barge_json_object(c, "logConfiguration"), "secretOptions"), j, s)
        {
            if (add_ref(&rs, &rf, cname, s, true) < 0)
                ret = -1;
        }
        n_files += (int)json_array_size(barge_json_array(c, "environmentFiles"));
    }
    if (ret == 0 && n_files > 0)
        ret = resolve_env_files(&rs, defs);
    if (ret == 0 && rf.n > 0)
        ret = fetch_ssm(&rs, &rf);
    if (ret == 0 && rf.n > 0)
        ret = fetch_asm(&rs, &rf);
    for (i = 0; ret == 0 && i < rf.n; i++) {
        struct ref *r = &rf.v[i];
        if (memchr(r->value, '\0', r->value_len)) {
            ret = fail(&rs, SECRETS_PREFIX "the value of %s holds a NUL byte", r->value_from);
            break;
        }
        for (size_t t = 0; t < r->n_targets; t++)
            set_var(r->targets[t].log_option ? rs.te->log_options : rs.te->secrets,
                    r->targets[t].container, r->targets[t].name, r->value, r->value_len);
    }
    if (ret == 0 && (rf.n > 0 || n_files > 0))
        barge_info("task %s: resolved %zu secret reference%s and %d environment file%s",
                   strrchr(task_arn, '/') ? strrchr(task_arn, '/') + 1 : task_arn, rf.n,
                   rf.n == 1 ? "" : "s", n_files, n_files == 1 ? "" : "s");
    refs_release(&rf);
    creds_release(&rs.task_creds);
    free(rs.task_region);
    free(rs.account);
    if (ret < 0) {
        barge_task_env_free(rs.te);
        *reason = rs.reason ? rs.reason : barge_xstrdup(SECRETS_PREFIX "unknown failure");
        return -1;
    }
    free(rs.reason);
    *out = rs.te;
    return 0;
}

void barge_task_env_apply_files(const struct barge_task_env *te, const char *cname, json_t *env)
{
    if (te)
        json_object_update(env, json_object_get(te->files, cname));
}

void barge_task_env_apply_secrets(const struct barge_task_env *te, const char *cname, json_t *env)
{
    if (te)
        json_object_update(env, json_object_get(te->secrets, cname));
}

const json_t *barge_task_env_log_options(const struct barge_task_env *te, const char *cname)
{
    return te ? json_object_get(te->log_options, cname) : NULL;
}
