/* The registry client's HTTP layer over libcurl: one request with retries and
 * back-off, bodies collected in memory (manifests, configs, tokens, error
 * documents) or streamed to a file while hashing (layers), and the
 * authentication dance of the distribution spec: a 401 with a Basic challenge
 * is answered with the credentials, one with a Bearer challenge by fetching a
 * token from its realm (with the credentials, when there are any). Secrets go
 * only into curl options, never into messages or logs. */
#include <arpa/inet.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/log.h"
#include "image/internal.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    /* not thread-safe itself, hence the once */
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void reg_client_init(struct reg_client *c, const struct barge_image_pull_opts *opts,
                     const char *image, const char *domain, const char *repository)
{
    pthread_once(&curl_once, curl_init_once);
    memset(c, 0, sizeof(*c));
    c->opts = opts;
    c->image = image;
    c->domain = domain;
    c->repository = repository;
    c->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 4;
    c->retry_delay_ms = opts->retry_delay_ms > 0 ? opts->retry_delay_ms : 500;

    /* host without port or brackets, for the loopback test */
    const char *host = domain;
    size_t hlen;
    if (host[0] == '[') {
        host++;
        hlen = strcspn(host, "]");
    } else {
        hlen = strcspn(host, ":");
    }
    _cleanup_free_ char *h = barge_xstrndup(host, hlen);
    /* an address literal, so that a name such as 127.example.com is not taken
     * for loopback */
    struct in_addr v4;
    bool plain = strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
                 (inet_pton(AF_INET, h, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127);
    for (size_t i = 0; i < opts->n_insecure_registries; i++)
        if (barge_streq(opts->insecure_registries[i], domain) ||
            barge_streq(opts->insecure_registries[i], h))
            plain = true;
    /* Docker Hub's name and its API endpoint differ. */
    const char *endpoint = strcmp(domain, "docker.io") == 0 ? "registry-1.docker.io" : domain;
    c->base_url = barge_xasprintf("%s://%s/v2/%s/", plain ? "http" : "https", endpoint, repository);
}

void reg_client_release(struct reg_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base_url);
    free(c->token);
    memset(c, 0, sizeof(*c));
}

void reg_progress(struct reg_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    barge_debug("image '%s': %s", c->image, msg);
    if (c->opts->progress)
        c->opts->progress(c->opts->progress_ud, msg);
}

static void clear_response(struct reg_response *r)
{
    barge_buf_release(&r->body);
    free(r->content_type);
    free(r->digest);
    free(r->www_authenticate);
    free(r->location);
    r->content_type = r->digest = r->www_authenticate = r->location = NULL;
    r->received = 0;
    r->status = 0;
    r->too_large = false;
    r->io_errno = 0;
}

void reg_response_release(struct reg_response *r)
{
    clear_response(r);
    if (r->sha)
        EVP_MD_CTX_free(r->sha);
    r->sha = NULL;
}

static void reset_response(struct reg_response *r)
{
    clear_response(r);
    if (r->fd >= 0) {
        if (ftruncate(r->fd, 0) < 0 || lseek(r->fd, 0, SEEK_SET) < 0)
            r->io_errno = errno;
    }
    if (!r->sha)
        r->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL);
}

static void append(struct reg_response *r, const char *p, size_t n)
{
    barge_buf_addn(&r->body, p, n);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct reg_response *r = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
    if (r->fd >= 0 && status >= 200 && status < 300) {
        /* a layer: straight to the file, hashed on the way, never more than
         * the manifest announced (a registry must not fill our disk) */
        if (r->limit && r->received + n > r->limit) {
            r->too_large = true;
            return 0;
        }
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(r->fd, p + off, n - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                r->io_errno = errno;
                return 0;
            }
            off += (size_t)w;
        }
        EVP_DigestUpdate(r->sha, p, n);
        r->received += n;
        return n;
    }
    /* in memory: a manifest, a config, a token or an error document */
    size_t limit = r->limit ? r->limit : 64 * 1024;
    if (status < 200 || status >= 300)
        limit = 64 * 1024;
    if (r->body.len + n > limit) {
        r->too_large = true;
        return 0;
    }
    append(r, p, n);
    EVP_DigestUpdate(r->sha, p, n);
    r->received += n;
    return n;
}

static char *header_value(const char *line, size_t n, const char *name)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return NULL;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    return barge_xstrndup(v, (size_t)(end - v));
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct reg_response *r = ud;
    size_t n = size * nmemb;
    /* each response of a redirect chain starts over */
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        free(r->content_type);
        free(r->digest);
        free(r->www_authenticate);
        free(r->location);
        r->content_type = r->digest = r->www_authenticate = r->location = NULL;
        return n;
    }
    char *v;
    if ((v = header_value(p, n, "Content-Type"))) {
        free(r->content_type);
        r->content_type = v;
    } else if ((v = header_value(p, n, "Docker-Content-Digest"))) {
        free(r->digest);
        r->digest = v;
    } else if ((v = header_value(p, n, "WWW-Authenticate"))) {
        free(r->www_authenticate);
        r->www_authenticate = v;
    } else if ((v = header_value(p, n, "Location"))) {
        free(r->location);
        r->location = v;
    }
    return n;
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* One request, retried with exponential back-off on connection errors, 429
 * and 5xx. Returns 0 once any HTTP answer was received (the caller judges the
 * status, which after the last attempt may still be a 5xx), -1 when none was. */
static int perform(struct reg_client *c, const char *method, const char *url, const char *accept,
                   const char *bearer, bool basic, struct reg_response *r, struct barge_error **err)
{
    if (!c->curl)
        c->curl = curl_easy_init();
    if (!c->curl)
        abort();
    CURL *h = c->curl;
    r->curl = h;
    int delay = c->retry_delay_ms;
    char errbuf[CURL_ERROR_SIZE];
    for (int attempt = 1;; attempt++) {
        reset_response(r);
        curl_easy_reset(h);
        errbuf[0] = '\0';
        struct curl_slist *hdrs = NULL;
        _cleanup_free_ char *accept_h = accept ? barge_xasprintf("Accept: %s", accept) : NULL;
        _cleanup_free_ char *auth_h =
            bearer ? barge_xasprintf("Authorization: Bearer %s", bearer) : NULL;
        if (accept_h)
            hdrs = curl_slist_append(hdrs, accept_h);
        if (auth_h)
            hdrs = curl_slist_append(hdrs, auth_h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        /* Blobs are often redirected to object storage; curl sends neither
         * the Authorization header nor the basic credentials to another host. */
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
        /* a stalled transfer is a failed one: under 1 byte/s for a minute */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "barge-agent/0.1");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        if (strcmp(method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        if (basic && c->opts->username) {
            curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(h, CURLOPT_USERNAME, c->opts->username);
            curl_easy_setopt(h, CURLOPT_PASSWORD, c->opts->password ? c->opts->password : "");
        }
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        r->status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);

        bool retry;
        if (rc == CURLE_OK) {
            retry = r->status == 429 || r->status >= 500;
            if (!retry || attempt >= c->max_attempts)
                return 0;
            reg_progress(c, "registry answered %ld to %s %s, retrying (attempt %d of %d)",
                         r->status, method, url, attempt + 1, c->max_attempts);
        } else {
            if (r->io_errno) {
                errno = r->io_errno;
                return barge_error_set_errno(err, BARGE_ERR_IO,
                                             "cannot write download of image '%s'", c->image);
            }
            if (r->too_large)
                return barge_error_set(err, BARGE_ERR_INVALID,
                                       "failed to pull '%s': registry sent more than the %zu bytes "
                                       "expected from %s",
                                       c->image, r->limit ? r->limit : (size_t)64 * 1024, url);
            const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
            if (!retryable_curl(rc) || attempt >= c->max_attempts)
                return barge_error_set(err, BARGE_ERR_IO,
                                       "cannot reach registry '%s' for image '%s' after %d "
                                       "attempt(s): %s",
                                       c->domain, c->image, attempt, why);
            reg_progress(c, "%s %s failed (%s), retrying (attempt %d of %d)", method, url, why,
                         attempt + 1, c->max_attempts);
        }
        sleep_ms(delay);
        if (delay < 30000)
            delay *= 2;
    }
}

/* Splits a WWW-Authenticate challenge: scheme, then key=value or
 * key="quoted \"value\"" pairs separated by commas. Picks realm, service and
 * scope; the outputs are newly allocated or NULL. */
void reg_parse_challenge(const char *h, char **scheme, char **realm, char **service, char **scope)
{
    *scheme = *realm = *service = *scope = NULL;
    const char *p = h;
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, " ");
    *scheme = barge_xstrndup(p, n);
    p += n;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t kl = strcspn(p, "=, ");
        if (!kl || p[kl] != '=') {
            p += kl;
            continue;
        }
        _cleanup_free_ char *key = barge_xstrndup(p, kl);
        p += kl + 1;
        char *val = barge_xmalloc(strlen(p) + 1);
        size_t o = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                val[o++] = *p++;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != ' ')
                val[o++] = *p++;
        }
        val[o] = '\0';
        char **slot = NULL;
        if (strcasecmp(key, "realm") == 0)
            slot = realm;
        else if (strcasecmp(key, "service") == 0)
            slot = service;
        else if (strcasecmp(key, "scope") == 0)
            slot = scope;
        if (slot && !*slot)
            *slot = val;
        else
            free(val);
    }
}

static char *escape(CURL *h, const char *s)
{
    char *e = curl_easy_escape(h, s, 0);
    if (!e)
        abort();
    char *out = barge_xstrdup(e);
    curl_free(e);
    return out;
}

/* Fetches a bearer token from the challenge's realm. */
static int fetch_token(struct reg_client *c, const char *challenge, struct barge_error **err)
{
    _cleanup_free_ char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
    reg_parse_challenge(challenge, &scheme, &realm, &service, &scope);
    if (!realm ||
        !(barge_str_has_prefix(realm, "https://") || barge_str_has_prefix(realm, "http://")))
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "image '%s': registry '%s' asked for a bearer token without a "
                               "usable realm",
                               c->image, c->domain);
    if (!c->curl)
        c->curl = curl_easy_init();
    _cleanup_free_ char *default_scope = barge_xasprintf("repository:%s:pull", c->repository);
    _cleanup_free_ char *esc_scope = escape(c->curl, scope ? scope : default_scope);
    _cleanup_free_ char *esc_service = service ? escape(c->curl, service) : NULL;
    _cleanup_free_ char *url =
        barge_xasprintf("%s%sscope=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", esc_scope,
                        esc_service ? "&service=" : "", esc_service ? esc_service : "");

    struct reg_response r = {.fd = -1, .limit = 1024 * 1024};
    int rc = perform(c, "GET", url, "application/json", NULL, true, &r, err);
    if (rc < 0) {
        reg_response_release(&r);
        return barge_error_wrap(err, "token request");
    }
    if (r.status != 200) {
        _cleanup_free_ char *answer = reg_answer(&r);
        rc = barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                             "pull access denied for '%s/%s': token server refused%s: %s",
                             c->domain, c->repository,
                             c->opts->username ? " the credentials" : " anonymous access", answer);
    } else {
        _cleanup_json_ json_t *doc =
            json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
        const char *tok = barge_json_str(doc, "token", NULL);
        if (!tok || !*tok)
            tok = barge_json_str(doc, "access_token", NULL);
        if (!tok || !*tok) {
            rc = barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                                 "image '%s': token server of '%s' returned no token", c->image,
                                 c->domain);
        } else {
            free(c->token);
            c->token = barge_xstrdup(tok);
        }
    }
    reg_response_release(&r);
    return rc;
}

int reg_request(struct reg_client *c, const char *method, const char *path, const char *accept,
                struct reg_response *r, struct barge_error **err)
{
    _cleanup_free_ char *url = barge_xasprintf("%s%s", c->base_url, path);
    /* At most one fresh round of authentication per request: a token may
     * expire during a long pull, and a second 401 right after is final. */
    for (int round = 0;; round++) {
        if (perform(c, method, url, accept, c->token, c->basic, r, err) < 0)
            return -1;
        if (r->status != 401 || round > 0)
            return 0;
        const char *challenge = r->www_authenticate;
        if (challenge && strncasecmp(challenge, "Bearer", 6) == 0) {
            if (fetch_token(c, challenge, err) < 0)
                return -1;
        } else if (challenge && strncasecmp(challenge, "Basic", 5) == 0 && c->opts->username &&
                   !c->basic) {
            c->basic = true;
        } else {
            return 0; /* nothing more to offer: the caller reports the 401 */
        }
    }
}

char *reg_answer(const struct reg_response *r)
{
    /* The distribution spec's error document: {"errors":[{"code","message"}]} */
    _cleanup_json_ json_t *doc =
        r->body.data ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
    json_t *errors = barge_json_array(doc, "errors");
    _cleanup_free_ char *details = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *code = barge_json_str(e, "code", "");
        const char *msg = barge_json_str(e, "message", "");
        char *next = barge_xasprintf("%s%s%s%s%s", details ? details : "", details ? "; " : "",
                                     code, *code && *msg ? ": " : "", msg);
        free(details);
        details = next;
    }
    if (!details && r->body.len) {
        /* a short plain-text body is worth quoting, trimmed to one line */
        size_t n = strcspn(r->body.data, "\r\n");
        if (n > 200)
            n = 200;
        bool printable = true;
        for (size_t k = 0; k < n; k++)
            printable &= isprint((unsigned char)r->body.data[k]) != 0;
        if (printable && n)
            details = barge_xstrndup(r->body.data, n);
    }
    if (!details)
        details = barge_xstrdup(barge_json_str(doc, "details", "no details"));
    return barge_xasprintf("registry answered %ld: %s", r->status, details);
}
