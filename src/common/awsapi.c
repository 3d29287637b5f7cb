/* The AWS API client behind awsapi.h: shared-file parsing (the aws CLI's INI
 * dialect with nested "services" sub-sections), configuration resolution, and
 * signed JSON 1.1 and raw requests over libcurl with retries. */
#include "common/awsapi.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/json.h"
#include "common/log.h"

/* The services this client knows: how to reach and sign for each. */
struct service_info {
    const char *name;          /* botocore file name */
    const char *target_prefix; /* X-Amz-Target prefix; NULL for non-JSON services */
    const char *signing_name;
    const char *endpoint_prefix;
    const char *env_suffix; /* AWS_ENDPOINT_URL_<env_suffix> */
    const char *config_key; /* key in a services section */
    bool global;            /* one endpoint for every region (signed for us-east-1) */
};

static const struct service_info services[] = {
    {"ecs", "AmazonEC2ContainerServiceV20141113", "ecs", "ecs", "ECS", "ecs", false},
    {"logs", "Logs_20140328", "logs", "logs", "CLOUDWATCH_LOGS", "cloudwatch_logs", false},
    {"ssm", "AmazonSSM", "ssm", "ssm", "SSM", "ssm", false},
    {"secretsmanager", "secretsmanager", "secretsmanager", "secretsmanager", "SECRETS_MANAGER",
     "secrets_manager", false},
    {"ecr", "AmazonEC2ContainerRegistry_V20150921", "ecr", "api.ecr", "ECR", "ecr", false},
    {"application-autoscaling", "AnyScaleFrontendService", "application-autoscaling",
     "application-autoscaling", "APPLICATION_AUTO_SCALING", "application_auto_scaling", false},
    {"s3", NULL, "s3", "s3", "S3", "s3", false},
    {"sts", NULL, "sts", "sts", "STS", "sts", false},
    {"iam", NULL, "iam", "iam", "IAM", "iam", true},
    {"elbv2", NULL, "elasticloadbalancing", "elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2",
     "elastic_load_balancing_v2", false},
};

static const struct service_info *service_find(const char *name)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(services); i++)
        if (strcmp(services[i].name, name) == 0)
            return &services[i];
    return NULL;
}

/* ---- shared files ---- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Parses the aws CLI's INI dialect into {section: {key: value | {sub: value}}}.
 * A key with an empty value followed by indented "sub = value" lines holds a
 * nested section (the services sections use this); other indented lines
 * continue the previous value and are ignored. A missing file is empty. */
static json_t *ini_load(const char *path)
{
    json_t *root = json_object();
    _cleanup_free_ char *text = path ? barge_read_file(path, NULL) : NULL;
    if (!text)
        return root;
    json_t *section = NULL, *nested = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool indented = line[0] == ' ' || line[0] == '\t';
        char *l = trim(line);
        if (!*l || *l == '#' || *l == ';')
            continue;
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (!end)
                continue;
            *end = '\0';
            char *name = trim(l + 1);
            /* "[profile  x]" and "[profile x]" are the same section. */
            char norm[512];
            if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]))
                snprintf(norm, sizeof(norm), "profile %s", trim(name + 8));
            else if (strncmp(name, "services", 8) == 0 && isspace((unsigned char)name[8]))
                snprintf(norm, sizeof(norm), "services %s", trim(name + 9));
            else
                snprintf(norm, sizeof(norm), "%s", name);
            section = json_object_get(root, norm);
            if (!section) {
                section = json_object();
                json_object_set_new(root, norm, section);
            }
            nested = NULL;
            continue;
        }
        if (!section)
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *key = trim(l), *value = trim(eq + 1);
        if (indented) {
            if (nested)
                json_object_set_new(nested, key, json_string(value));
            continue;
        }
        if (!*value) {
            nested = json_object();
            json_object_set_new(section, key, nested);
        } else {
            nested = NULL;
            json_object_set_new(section, key, json_string(value));
        }
    }
    return root;
}

static char *aws_file(const char *env, const char *name)
{
    const char *p = getenv(env);
    if (p && *p) {
        if (p[0] == '~' && p[1] == '/') {
            const char *home = getenv("HOME");
            return barge_xasprintf("%s%s", home ? home : "", p + 1);
        }
        return barge_xstrdup(p);
    }
    const char *home = getenv("HOME");
    return barge_xasprintf("%s/.aws/%s", home && *home ? home : "/root", name);
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static json_t *config_section(json_t *config, const char *profile)
{
    _cleanup_free_ char *name = barge_xasprintf("profile %s", profile);
    json_t *s = json_object_get(config, name);
    if (!s && strcmp(profile, "default") == 0)
        s = json_object_get(config, "default");
    return s;
}

static void set_dup(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? barge_xstrdup(v) : NULL;
}

int barge_aws_config_load(const struct barge_aws_opts *opts, struct barge_aws_config **out,
                          struct barge_error **err)
{
    static const struct barge_aws_opts none;
    if (!opts)
        opts = &none;
    _cleanup_free_ char *cred_path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    _cleanup_free_ char *conf_path = aws_file("AWS_CONFIG_FILE", "config");
    _cleanup_json_ json_t *creds_ini = ini_load(cred_path);
    _cleanup_json_ json_t *conf_ini = ini_load(conf_path);

    struct barge_aws_config *c = barge_xcalloc(1, sizeof(*c));
    const char *asked = opts->profile;
    if (!asked)
        asked = env_nonempty("AWS_PROFILE");
    if (!asked)
        asked = env_nonempty("AWS_DEFAULT_PROFILE");
    const char *profile = asked;
    if (!profile && opts->preferred_profile &&
        (json_object_get(creds_ini, opts->preferred_profile) ||
         config_section(conf_ini, opts->preferred_profile)))
        profile = opts->preferred_profile;
    if (!profile && (json_object_get(creds_ini, "default") || config_section(conf_ini, "default")))
        profile = "default";
    json_t *pcred = profile ? json_object_get(creds_ini, profile) : NULL;
    json_t *pconf = profile ? config_section(conf_ini, profile) : NULL;
    if (asked && !pcred && !pconf) {
        barge_aws_config_free(c);
        return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                               "the config profile '%s' could not be found in '%s' or '%s'", asked,
                               cred_path, conf_path);
    }
    set_dup(&c->profile, profile);

    const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
    const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
    if (!opts->profile && akid && secret) {
        set_dup(&c->access_key_id, akid);
        set_dup(&c->secret_access_key, secret);
        const char *tok = env_nonempty("AWS_SESSION_TOKEN");
        set_dup(&c->session_token, tok ? tok : env_nonempty("AWS_SECURITY_TOKEN"));
        set_dup(&c->credentials_source, "environment");
    } else {
        json_t *srcs[] = {pcred, pconf};
        const char *names[] = {"shared credentials file", "config file"};
        for (size_t i = 0; i < 2 && !c->access_key_id; i++) {
            const char *k = barge_json_str(srcs[i], "aws_access_key_id", NULL);
            const char *s = barge_json_str(srcs[i], "aws_secret_access_key", NULL);
            if (k && s) {
                set_dup(&c->access_key_id, k);
                set_dup(&c->secret_access_key, s);
                set_dup(&c->session_token, barge_json_str(srcs[i], "aws_session_token", NULL));
                set_dup(&c->credentials_source, names[i]);
            }
        }
    }

    const char *region = opts->region;
    if (!region)
        region = env_nonempty("AWS_REGION");
    if (!region)
        region = env_nonempty("AWS_DEFAULT_REGION");
    if (!region)
        region = barge_json_str(pconf, "region", NULL);
    set_dup(&c->region, region);

    set_dup(&c->endpoint_url, opts->endpoint_url);
    const char *ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    bool ignore_configured = ignore && strcasecmp(ignore, "true") == 0;
    if (!c->endpoint_url && !ignore_configured) {
        /* Kept apart from the explicit flag: a service-specific variable or
         * services section beats the profile-wide endpoint. */
        c->services = json_object();
        const char *svc_section = barge_json_str(pconf, "services", NULL);
        if (svc_section) {
            _cleanup_free_ char *sname = barge_xasprintf("services %s", svc_section);
            json_t *sec = json_object_get(conf_ini, sname);
            const char *key;
            json_t *v;
            json_object_foreach(sec, key, v)
            {
                const char *url = barge_json_str(v, "endpoint_url", NULL);
                if (url)
                    json_object_set_new(c->services, key, json_string(url));
            }
        }
        const char *purl = barge_json_str(pconf, "endpoint_url", NULL);
        if (purl)
            json_object_set_new(c->services, "*", json_string(purl));
    }
    *out = c;
    return 0;
}

void barge_aws_config_free(struct barge_aws_config *c)
{
    if (!c)
        return;
    free(c->profile);
    free(c->region);
    free(c->endpoint_url);
    free(c->access_key_id);
    if (c->secret_access_key) {
        explicit_bzero(c->secret_access_key, strlen(c->secret_access_key));
        free(c->secret_access_key);
    }
    free(c->session_token);
    free(c->credentials_source);
    json_decref(c->services);
    free(c);
}

static char *strip_slash(char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
    return url;
}

char *barge_aws_endpoint(const struct barge_aws_config *cfg, const char *service,
                         struct barge_error **err)
{
    const struct service_info *si = service_find(service);
    if (!si) {
        barge_error_set(err, BARGE_ERR_INVALID, "unknown AWS service '%s'", service);
        return NULL;
    }
    if (cfg->endpoint_url)
        return strip_slash(barge_xstrdup(cfg->endpoint_url));
    const char *ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (!(ignore && strcasecmp(ignore, "true") == 0)) {
        _cleanup_free_ char *var = barge_xasprintf("AWS_ENDPOINT_URL_%s", si->env_suffix);
        const char *v = env_nonempty(var);
        if (!v)
            v = env_nonempty("AWS_ENDPOINT_URL");
        if (!v)
            v = barge_json_str(cfg->services, si->config_key, NULL);
        if (!v)
            v = barge_json_str(cfg->services, "*", NULL);
        if (v)
            return strip_slash(barge_xstrdup(v));
    }
    if (si->global)
        return barge_xasprintf("https://%s.amazonaws.com", si->endpoint_prefix);
    if (!cfg->region) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "no region: use --region, AWS_REGION or a profile with a region");
        return NULL;
    }
    return barge_xasprintf("https://%s.%s.amazonaws.com", si->endpoint_prefix, cfg->region);
}

/* ---- clients ---- */

struct barge_aws_client {
    const struct barge_aws_config *cfg;
    const struct service_info *si;
    char *endpoint; /* scheme://host[:port][/base] */
    CURL *curl;
};

struct barge_aws_client *barge_aws_client_new(const struct barge_aws_config *cfg,
                                              const char *service, struct barge_error **err)
{
    const struct service_info *si = service_find(service);
    if (!si) {
        barge_error_set(err, BARGE_ERR_INVALID, "unknown AWS service '%s'", service);
        return NULL;
    }
    char *ep = barge_aws_endpoint(cfg, service, err);
    if (!ep)
        return NULL;
    if (!strstr(ep, "://")) {
        barge_error_set(err, BARGE_ERR_INVALID, "invalid endpoint URL '%s'", ep);
        free(ep);
        return NULL;
    }
    struct barge_aws_client *c = barge_xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->si = si;
    c->endpoint = ep;
    c->curl = curl_easy_init();
    if (!c->curl)
        abort();
    return c;
}

void barge_aws_client_free(struct barge_aws_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c->endpoint);
    free(c);
}

const char *barge_aws_client_region(const struct barge_aws_client *c)
{
    return c->cfg->region;
}

const char *barge_aws_client_endpoint(const struct barge_aws_client *c)
{
    return c->endpoint;
}

void barge_aws_response_release(struct barge_aws_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

char *barge_aws_uri_encode(const char *s, bool keep_slash)
{
    size_t n = strlen(s);
    char *out = barge_xmalloc(n * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/'))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

int barge_aws_perform(CURL *curl, const struct barge_httpc_request *rq,
                      const struct barge_aws_signer *s, struct barge_httpc_response *out,
                      struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    const char *p = strstr(rq->url, "://");
    p = p ? p + 3 : rq->url;
    size_t hn = strcspn(p, "/?");
    _cleanup_free_ char *host = barge_xstrndup(p, hn);
    p += hn;
    size_t pn = strcspn(p, "?");
    _cleanup_free_ char *path = pn ? barge_xstrndup(p, pn) : barge_xstrdup("/");
    const char *query = p[pn] == '?' ? p + pn + 1 : "";

    /* Host is signed but left to curl to send, as it derives the same value. */
    size_t nh = rq->n_headers + 1;
    _cleanup_free_ struct barge_kv *in = barge_xcalloc(nh, sizeof(*in));
    in[0] = (struct barge_kv){"Host", host};
    if (rq->n_headers) /* headers may be NULL then, which memcpy must not get */
        memcpy(in + 1, rq->headers, rq->n_headers * sizeof(*in));
    struct barge_sigv4_request sr = {.method = rq->method,
                                     .raw_path = path,
                                     .raw_query = query,
                                     .headers = in,
                                     .n_headers = nh,
                                     .body = rq->body,
                                     .body_len = rq->body_len,
                                     .s3 = s->s3};
    struct barge_kv *add = NULL;
    size_t n_add = 0;
    if (barge_sigv4_sign(&sr, s->region, s->service, s->creds, time(NULL), &add, &n_add, err) < 0)
        return -1;
    _cleanup_free_ struct barge_kv *all = barge_xcalloc(rq->n_headers + n_add, sizeof(*all));
    if (rq->n_headers)
        memcpy(all, rq->headers, rq->n_headers * sizeof(*all));
    memcpy(all + rq->n_headers, add, n_add * sizeof(*all));
    struct barge_httpc_request signed_rq = *rq;
    signed_rq.headers = all;
    signed_rq.n_headers = rq->n_headers + n_add;
    int r = barge_httpc_perform(curl, &signed_rq, out, err);
    barge_sigv4_headers_free(add, n_add);
    return r;
}

int barge_aws_request(struct barge_aws_client *c, const char *method, const char *raw_path,
                      const char *raw_query, const struct barge_kv *headers, size_t n_headers,
                      const void *body, size_t body_len, struct barge_aws_response *out,
                      struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!c->cfg->access_key_id)
        return barge_error_set(err, BARGE_ERR_AUTH_MISSING,
                               "no AWS credentials: set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, or use --profile");
    struct barge_sigv4_credentials creds = {c->cfg->access_key_id, c->cfg->secret_access_key,
                                            c->cfg->session_token};
    struct barge_aws_signer signer = {
        .region = c->si->global || !c->cfg->region ? "us-east-1" : c->cfg->region,
        .service = c->si->signing_name,
        .creds = &creds,
        .s3 = strcmp(c->si->name, "s3") == 0,
    };
    _cleanup_free_ char *url = raw_query && *raw_query
                                   ? barge_xasprintf("%s%s?%s", c->endpoint, raw_path, raw_query)
                                   : barge_xasprintf("%s%s", c->endpoint, raw_path);
    _cleanup_free_ char *peer = barge_xasprintf("'%s'", c->endpoint);
    struct barge_httpc_request rq = {
        .method = method,
        .url = url,
        .headers = headers,
        .n_headers = n_headers,
        .body = body,
        .body_len = body_len,
        .peer = peer,
    };
    struct barge_httpc_response resp;
    if (barge_aws_perform(c->curl, &rq, &signer, &resp, err) < 0)
        return -1;
    out->status = resp.status;
    out->body = resp.body;
    out->len = resp.len;
    free(resp.header);
    return 0;
}

static bool retryable(const char *type, long status)
{
    static const char *const throttles[] = {
        "ThrottlingException",      "Throttling",         "TooManyRequestsException",
        "RequestLimitExceeded",     "ServiceUnavailable", "ThrottledException",
        "RequestThrottled",         "SlowDown",           "ProvisionedThroughputExceededException",
        "RequestThrottledException"};
    if (status >= 500)
        return true;
    for (size_t i = 0; type && i < BARGE_ARRAY_SIZE(throttles); i++)
        if (strcmp(type, throttles[i]) == 0)
            return true;
    return false;
}

static enum barge_errcode code_of(const char *type, long status)
{
    if (strstr(type, "NotFound") || strcmp(type, "ParameterNotFound") == 0)
        return BARGE_ERR_NOT_FOUND;
    if (strstr(type, "AccessDenied") || strcmp(type, "UnrecognizedClientException") == 0 ||
        strcmp(type, "InvalidSignatureException") == 0 ||
        strcmp(type, "MissingAuthenticationTokenException") == 0 ||
        strcmp(type, "ExpiredTokenException") == 0)
        return BARGE_ERR_ACCESS_DENIED;
    if (strcmp(type, "ValidationException") == 0 || strstr(type, "InvalidParameter"))
        return BARGE_ERR_INVALID;
    return status >= 500 ? BARGE_ERR_IO : BARGE_ERR_CLIENT;
}

int barge_aws_call(struct barge_aws_client *c, const char *operation, const json_t *input,
                   json_t **output, struct barge_error **err)
{
    if (output)
        *output = NULL;
    if (!c->si->target_prefix)
        return barge_error_set(err, BARGE_ERR_INVALID, "'%s' is not a JSON API", c->si->name);
    _cleanup_free_ char *body = input ? json_dumps(input, JSON_COMPACT) : barge_xstrdup("{}");
    _cleanup_free_ char *target = barge_xasprintf("%s.%s", c->si->target_prefix, operation);
    struct barge_kv hdrs[] = {{"Content-Type", "application/x-amz-json-1.1"},
                              {"X-Amz-Target", target}};
    int delay_ms = 200;
    for (int attempt = 1;; attempt++) {
        struct barge_aws_response r;
        struct barge_error *e = NULL;
        barge_debug("%s %s", c->si->name, operation);
        if (barge_aws_request(c, "POST", "/", NULL, hdrs, 2, body, strlen(body), &r, &e) < 0) {
            if (e->code == BARGE_ERR_IO && attempt < 4) {
                barge_error_free(e);
                usleep((useconds_t)delay_ms * 1000);
                delay_ms *= 2;
                continue;
            }
            if (err && !*err)
                *err = e;
            else
                barge_error_free(e);
            return -1;
        }
        json_error_t jerr;
        json_t *doc = r.len ? json_loads(r.body, 0, &jerr) : json_object();
        if (r.status >= 200 && r.status < 300) {
            barge_aws_response_release(&r);
            if (!doc)
                return barge_error_set(err, BARGE_ERR_SERIALIZATION,
                                       "%s: the answer is not JSON: %s", operation, jerr.text);
            if (output)
                *output = doc;
            else
                json_decref(doc);
            return 0;
        }
        const char *t = barge_json_str(doc, "__type", NULL);
        if (!t)
            t = barge_json_str(doc, "code", NULL);
        _cleanup_free_ char *type = NULL;
        if (t) {
            const char *hash = strrchr(t, '#');
            type = barge_xstrdup(hash ? hash + 1 : t);
        } else {
            type = barge_xasprintf("HTTP%ld", r.status);
        }
        const char *msg = barge_json_str(doc, "message", NULL);
        if (!msg)
            msg = barge_json_str(doc, "Message", NULL);
        /* A non-JSON answer (a proxy's HTML page) is quoted, but not all of it. */
        char excerpt[201];
        if (!msg) {
            snprintf(excerpt, sizeof(excerpt), "%s", doc ? "" : r.body);
            msg = excerpt;
        }
        if (retryable(type, r.status) && attempt < 5) {
            barge_debug("%s %s: %s, retrying", c->si->name, operation, type);
            json_decref(doc);
            barge_aws_response_release(&r);
            usleep((useconds_t)delay_ms * 1000);
            delay_ms *= 2;
            continue;
        }
        barge_error_set_at(err, __FILE__, __LINE__, code_of(type, r.status), type, "%s: %s%s%s",
                           operation, type, *msg ? ": " : "", msg);
        json_decref(doc);
        barge_aws_response_release(&r);
        return -1;
    }
}
