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

#include "agent/agent.h"
#include "common/awsapi.h"
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

void barge_agent_client_stop_aware(struct barge_agent_client *c)
{
    c->stop_aware = true;
}

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

/* One attempt against one endpoint: the HTTP status, or -1 (err set) when
 * the endpoint could not be reached. */
static int post_once(struct barge_agent_client *c, const char *server, const char *path,
                     const char *text, const char *token, const struct barge_agent_config *sigv4,
                     long timeout_s, json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *url = barge_xasprintf("%s%s", server, path);
    _cleanup_free_ char *peer = barge_xasprintf("barged at '%s'", server);
    _cleanup_free_ char *bearer = token ? barge_xasprintf("Bearer %s", token) : NULL;
    struct barge_kv hdrs[] = {{"Content-Type", "application/json"}, {"Authorization", bearer}};
    struct barge_httpc_request rq = {
        .method = "POST",
        .url = url,
        .headers = hdrs,
        .n_headers = token ? 2 : 1,
        .body = text,
        .body_len = strlen(text),
        .timeout_s = timeout_s,
        .connect_timeout_s = 5,
        .peer = peer,
        .abort_if = c->stop_aware ? barge_agent_stopping : NULL,
    };
    struct barge_httpc_response resp;
    int r;
    if (!token && sigv4) {
        struct barge_sigv4_credentials creds = {sigv4->access_key, sigv4->secret_key, NULL};
        struct barge_aws_signer signer = {.region = sigv4->region ? sigv4->region : "us-east-1",
                                          .service = "ecs",
                                          .creds = &creds};
        r = barge_aws_perform(c->curl, &rq, &signer, &resp, err);
    } else {
        r = barge_httpc_perform(c->curl, &rq, &resp, err);
    }
    if (r < 0)
        return -1;
    if (out && resp.len) {
        json_error_t jerr;
        *out = json_loads(resp.body, 0, &jerr);
    }
    int status = (int)resp.status;
    barge_httpc_response_release(&resp);
    return status;
}

const char *barge_agent_client_server(const struct barge_agent_client *c)
{
    return c->servers[atomic_load(&current) % c->n_servers];
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
