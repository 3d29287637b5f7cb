/* The agent's HTTP client: JSON POSTs to barged with libcurl, signed with
 * SigV4 (registration) or carrying the instance's bearer token. One client per
 * thread: a curl handle is not shared.
 *
 * barged may run as several processes sharing one database, any of which
 * serves the agent. The client takes a comma-separated list of their
 * endpoints and sends each request to the current one; when that one cannot
 * be reached or answers that it is unavailable (502, 503, 504), it tries the
 * next ones at once and makes the first that answers the current one for
 * every client of the process. */
#include <curl/curl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sigv4.h"

struct barge_agent_client {
    CURL *curl;
    char **servers;
    size_t n_servers;
    char *all; /* for messages */
    bool stop_aware;
};

/* Shared by every client, so that one thread's discovery that a barged is
 * gone spares the others the attempt. */
static atomic_size_t current;

struct buf {
    char *data;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    b->data = barge_xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

struct barge_agent_client *barge_agent_client_new(const char *servers)
{
    struct barge_agent_client *c = barge_xcalloc(1, sizeof(*c));
    c->curl = curl_easy_init();
    if (!c->curl)
        abort();
    for (const char *p = servers; *p;) {
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == '/' || p[len - 1] == ' '))
            len--;
        while (len > 0 && *p == ' ')
            p++, len--;
        if (len > 0) {
            c->servers = barge_xrealloc(c->servers, (c->n_servers + 1) * sizeof(char *));
            c->servers[c->n_servers++] = barge_xstrndup(p, len);
        }
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (c->n_servers == 0) {
        c->servers = barge_xcalloc(1, sizeof(char *));
        c->servers[c->n_servers++] = barge_xstrdup("http://127.0.0.1:4566");
    }
    c->all = barge_xstrdup(servers);
    return c;
}

void barge_agent_client_free(struct barge_agent_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    for (size_t i = 0; i < c->n_servers; i++)
        free(c->servers[i]);
    free(c->servers);
    free(c->all);
    free(c);
}

/* "host[:port]" of the server URL, as the Host header carries it. */
static char *host_of(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/");
    return barge_xstrndup(p, n);
}

void barge_agent_client_stop_aware(struct barge_agent_client *c)
{
    c->stop_aware = true;
}

/* curl calls it about once a second, also while waiting for an answer. */
/* The agent's stop request: set from its signal handler, read by long transfers
 * and loops that must end promptly on SIGTERM. */
static volatile sig_atomic_t stop_requested;

void barge_agent_request_stop(int sig)
{
    stop_requested = sig;
}

bool barge_agent_stopping(void)
{
    return stop_requested != 0;
}

static int abort_when_stopping(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                               curl_off_t ulnow)
{
    (void)ud, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return barge_agent_stopping() ? 1 : 0;
}

/* One attempt against one endpoint: the HTTP status, or -1 (err set) when
 * the endpoint could not be reached. */
static int post_once(struct barge_agent_client *c, const char *server, const char *path,
                     const char *text, const char *token, const struct barge_agent_config *sigv4,
                     long timeout_s, json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *url = barge_xasprintf("%s%s", server, path);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (token) {
        _cleanup_free_ char *h = barge_xasprintf("Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, h);
    } else if (sigv4) {
        _cleanup_free_ char *host = host_of(server);
        struct barge_kv in_hdrs[] = {{"Host", host}, {"Content-Type", "application/json"}};
        struct barge_sigv4_request sr = {.method = "POST",
                                         .raw_path = path,
                                         .raw_query = "",
                                         .headers = in_hdrs,
                                         .n_headers = 2,
                                         .body = text,
                                         .body_len = strlen(text)};
        struct barge_sigv4_credentials creds = {sigv4->access_key, sigv4->secret_key, NULL};
        struct barge_kv *add = NULL;
        size_t n_add = 0;
        if (barge_sigv4_sign(&sr, sigv4->region, "ecs", &creds, time(NULL), &add, &n_add, err) <
            0) {
            curl_slist_free_all(hdrs);
            return -1;
        }
        for (size_t i = 0; i < n_add; i++) {
            _cleanup_free_ char *h = barge_xasprintf("%s: %s", add[i].name, add[i].value);
            hdrs = curl_slist_append(hdrs, h);
        }
        barge_sigv4_headers_free(add, n_add);
    }
    struct buf resp = {0};
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    if (c->stop_aware) {
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, abort_when_stopping);
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(c->curl);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        free(resp.data);
        barge_error_set(err, BARGE_ERR_IO, "cannot reach barged at '%s': %s", server,
                        curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (out && resp.data) {
        json_error_t jerr;
        *out = json_loads(resp.data, 0, &jerr);
    }
    free(resp.data);
    return (int)status;
}

int barge_agent_client_post(struct barge_agent_client *c, const char *path, const json_t *body,
                            const char *token, const struct barge_agent_config *sigv4,
                            long timeout_s, json_t **out, struct barge_error **err)
{
    if (out)
        *out = NULL;
    _cleanup_free_ char *text = barge_json_dump(body);
    size_t first = atomic_load(&current) % c->n_servers;
    int status = -1;
    for (size_t i = 0; i < c->n_servers; i++) {
        size_t at = (first + i) % c->n_servers;
        if (out) {
            json_decref(*out);
            *out = NULL;
        }
        if (err && *err)
            barge_error_free(barge_steal(err));
        status = post_once(c, c->servers[at], path, text, token, sigv4, timeout_s, out, err);
        bool unavailable = status < 0 || status == 502 || status == 503 || status == 504;
        if (!unavailable) {
            if (i > 0 && atomic_compare_exchange_strong(&current, &first, at))
                barge_info("barged at '%s' answers; using it", c->servers[at]);
            return status;
        }
    }
    if (c->n_servers > 1 && status < 0)
        barge_error_wrap(err, "no barged of '%s' answers", c->all);
    return status;
}
