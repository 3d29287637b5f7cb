/* ECS Exec on barged: ExecuteCommand checks the task (enableExecuteCommand,
 * RUNNING, the container), opens a session and returns its stream URL and a
 * token; the agent of the task's host learns of the session through its poll
 * (barge_api_exec_pending) and joins it, since agents only ever connect to
 * barged. One thread a session waits for both ends, then relays the
 * messages between them, and logs the session's start and end (who, cluster,
 * task, container, command, exit status) but never what flows through it.
 *
 * Tokens are single use: the client's is good for one connection within
 * TOKEN_TTL_MS of ExecuteCommand; only their SHA-256 is kept. */
#include "api/exec.h"

#include <sys/eventfd.h>

#include <errno.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/access.h"
#include "api/ecs.h"
#include "api/logs.h"
#include "api/server.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sigv4.h"
#include "common/ws.h"
#include "ecs/ecs.h"

/* How long the client has to open its stream, and both ends to arrive. */
#define TOKEN_TTL_MS 60000
/* How long a finished session's last messages may take to be written. */
#define FLUSH_MS 5000
/* Output kept for the session's log before it is written out. */
#define LOG_BATCH (64 * 1024)

struct end {
    bool attached;
    int fd;
    char *extra;
    size_t extra_len;
    struct barge_http_upgrade *h;
    struct barge_ws *ws;
};

struct session {
    char id[64];
    char token_hash[65]; /* the client's */
    char agent_hash[65];
    int64_t deadline_ms; /* both ends must have arrived by then */
    char *instance_id;
    json_t *request; /* what the agent is told */
    bool delivered, client_used, agent_used;
    struct end client, agent;
    int wake_fd; /* an end arrived */
    int exit_status;
    bool exited;
    /* The log group the session's output goes to, as the cluster's
     * executeCommandConfiguration says (NULL: none), and the output not yet
     * written there. */
    struct barge_server *srv;
    char *log_group;
    struct barge_buf output;
    struct session *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gone = PTHREAD_COND_INITIALIZER; /* a session was freed */
static struct session *sessions;
static int live; /* sessions not yet freed, listed or not */
static bool shutting_down;

static struct session *find(const char *id)
{
    for (struct session *s = sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void unlink_session(struct session *s)
{
    for (struct session **p = &sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            return;
        }
    }
}

static void end_release(struct end *e)
{
    barge_ws_free(e->ws);
    if (e->attached)
        barge_http_upgraded_close(e->h);
    free(e->extra);
}

static void session_free(struct session *s)
{
    end_release(&s->client);
    end_release(&s->agent);
    close(s->wake_fd);
    free(s->instance_id);
    free(s->log_group);
    barge_buf_release(&s->output);
    json_decref(s->request);
    free(s);
}

json_t *barge_api_exec_pending(const char *instance_id)
{
    json_t *out = json_array();
    pthread_mutex_lock(&lock);
    for (struct session *s = sessions; s; s = s->next) {
        if (s->delivered || strcmp(s->instance_id, instance_id) != 0)
            continue;
        s->delivered = true;
        json_array_append(out, s->request);
    }
    pthread_mutex_unlock(&lock);
    return out;
}

/* ---- the relay ---- */

/* Writes the output kept so far to the session's log stream (named by the
 * session) as one event a line; with all, a last unfinished line too. */
static void record_output(struct session *s, bool all)
{
    if (!s->log_group || s->output.len == 0)
        return;
    _cleanup_json_ json_t *lines = json_array();
    size_t start = 0;
    for (size_t i = 0; i < s->output.len; i++) {
        if (s->output.data[i] != '\n')
            continue;
        size_t end = i;
        if (end > start && s->output.data[end - 1] == '\r')
            end--;
        json_array_append_new(lines, json_stringn(s->output.data + start, end - start));
        start = i + 1;
    }
    if (all && start < s->output.len) {
        json_array_append_new(lines, json_stringn(s->output.data + start, s->output.len - start));
        start = s->output.len;
    }
    struct barge_buf rest = {0};
    if (start < s->output.len)
        barge_buf_addn(&rest, s->output.data + start, s->output.len - start);
    barge_buf_release(&s->output);
    s->output = rest;
    _cleanup_error_ struct barge_error *err = NULL;
    if (json_array_size(lines) && barge_logs_append(s->srv, s->log_group, s->id, lines, &err) < 0) {
        barge_warn("exec session %s: cannot log its output to '%s': %s", s->id, s->log_group,
                   err->message);
        /* One warning: the rest is not logged either. */
        free(barge_steal(&s->log_group));
    }
}

static void from_client(void *ud, int kind, const uint8_t *data, size_t len)
{
    struct session *s = ud;
    if (kind == BARGE_WS_STDIN || kind == BARGE_WS_RESIZE || kind == BARGE_WS_STDIN_EOF)
        barge_ws_send(s->agent.ws, kind, data, len);
}

static void from_agent(void *ud, int kind, const uint8_t *data, size_t len)
{
    struct session *s = ud;
    if (kind == BARGE_WS_EXIT) {
        _cleanup_free_ char *text = barge_xstrndup((const char *)data, len);
        s->exit_status = atoi(text);
        s->exited = true;
        /* Logged before the client learns the command is over. */
        record_output(s, true);
    }
    if ((kind == BARGE_WS_STDOUT || kind == BARGE_WS_STDERR) && s->log_group) {
        barge_buf_addn(&s->output, data, len);
        if (s->output.len > LOG_BATCH)
            record_output(s, false);
    }
    if (kind == BARGE_WS_STDOUT || kind == BARGE_WS_STDERR || kind == BARGE_WS_EXIT ||
        kind == BARGE_WS_ERROR)
        barge_ws_send(s->client.ws, kind, data, len);
}

static bool stopping(void)
{
    pthread_mutex_lock(&lock);
    bool r = shutting_down;
    pthread_mutex_unlock(&lock);
    return r;
}

/* Waits until both ends are in; false when the deadline passed first. */
static bool await_ends(struct session *s)
{
    for (;;) {
        pthread_mutex_lock(&lock);
        bool both = s->client.attached && s->agent.attached;
        bool stop = shutting_down;
        pthread_mutex_unlock(&lock);
        if (both || stop)
            return both && !stop;
        int64_t left = s->deadline_ms - barge_monotonic_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {s->wake_fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) > 0) {
            uint64_t v;
            if (read(s->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                return false;
        }
    }
}

/* Relays until either end is done, then lets the other end finish. */
static void relay(struct session *s)
{
    s->client.ws =
        barge_ws_server_new(s->client.fd, s->client.extra, s->client.extra_len, from_client, s);
    s->agent.ws =
        barge_ws_server_new(s->agent.fd, s->agent.extra, s->agent.extra_len, from_agent, s);
    struct end *ends[2] = {&s->client, &s->agent};
    bool done[2] = {false, false};
    int64_t flush_deadline = 0;
    /* The first round does not wait: what came with the handshakes was read
     * from the sockets already, so poll would not tell of it. */
    bool first = true;
    while (!(done[0] && done[1])) {
        struct pollfd p[3];
        for (int i = 0; i < 2; i++) {
            p[i].fd = done[i] ? -1 : barge_ws_fd(ends[i]->ws);
            p[i].events = done[i] ? 0 : barge_ws_events(ends[i]->ws);
            /* An end is read only once what it sent the other is written,
             * so a slow reader slows the writer instead of filling memory. */
            if (!done[1 - i] && barge_ws_pending(ends[1 - i]->ws))
                p[i].events &= (short)~POLLIN;
            p[i].revents = 0;
        }
        p[2] = (struct pollfd){flush_deadline ? -1 : s->wake_fd, POLLIN, 0};
        int timeout = first ? 0 : -1;
        first = false;
        if (flush_deadline) {
            int64_t left = flush_deadline - barge_monotonic_ms();
            if (left <= 0)
                break;
            timeout = (int)left;
        }
        if (poll(p, 3, timeout) < 0 && errno != EINTR)
            break;
        uint64_t v;
        if (p[2].revents && read(s->wake_fd, &v, sizeof(v)) >= 0 && stopping()) {
            static const char why[] = "barged is stopping";
            barge_ws_send(s->client.ws, BARGE_WS_ERROR, why, strlen(why));
            for (int i = 0; i < 2; i++)
                barge_ws_close(ends[i]->ws);
            flush_deadline = barge_monotonic_ms() + FLUSH_MS / 5;
        }
        for (int i = 0; i < 2; i++) {
            if (done[i] || barge_ws_pump(ends[i]->ws, p[i].revents) == 0)
                continue;
            done[i] = true;
            /* One end is over: the other is closed once what is queued for
             * it is written. */
            struct end *other = ends[1 - i];
            if (!done[1 - i]) {
                static const char why[] = "the agent ended the session without an exit status";
                if (i == 1 && !s->exited)
                    barge_ws_send(other->ws, BARGE_WS_ERROR, why, strlen(why));
                barge_ws_close(other->ws);
                barge_ws_pump(other->ws, 0);
            }
            if (!flush_deadline)
                flush_deadline = barge_monotonic_ms() + FLUSH_MS;
        }
    }
}

static void *session_main(void *ud)
{
    struct session *s = ud;
    if (await_ends(s)) {
        relay(s);
        record_output(s, true);
        if (s->exited)
            barge_info("exec session %s ended: exit status %d", s->id, s->exit_status);
        else
            barge_info("exec session %s ended without an exit status", s->id);
    } else {
        pthread_mutex_lock(&lock);
        bool client = s->client.attached;
        pthread_mutex_unlock(&lock);
        const char *why = stopping() ? "barged is stopping"
                          : client   ? "the agent of the task's host did not join the session"
                                     : "the client did not connect";
        if (client) {
            s->client.ws = barge_ws_server_new(s->client.fd, NULL, 0, NULL, NULL);
            barge_ws_send(s->client.ws, BARGE_WS_ERROR, why, strlen(why));
            barge_ws_close(s->client.ws);
            barge_ws_pump(s->client.ws, 0);
        }
        barge_info("exec session %s ended before it began: %s", s->id, why);
    }
    pthread_mutex_lock(&lock);
    unlink_session(s);
    pthread_mutex_unlock(&lock);
    session_free(s);
    pthread_mutex_lock(&lock);
    live--;
    pthread_cond_broadcast(&gone);
    pthread_mutex_unlock(&lock);
    return NULL;
}

void barge_api_exec_shutdown(void)
{
    pthread_mutex_lock(&lock);
    shutting_down = true;
    uint64_t one = 1;
    for (struct session *s = sessions; s; s = s->next)
        if (write(s->wake_fd, &one, sizeof(one)) < 0)
            barge_warn("exec session %s: cannot wake its relay: %s", s->id, strerror(errno));
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    while (live > 0 && pthread_cond_timedwait(&gone, &lock, &until) == 0)
        ;
    pthread_mutex_unlock(&lock);
}

/* ---- ExecuteCommand ---- */

static void random_token(char out[65], char hash[65])
{
    unsigned char raw[32];
    barge_random_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    barge_sha256_hex(out, 64, hash);
}

/* The command as an argv: split on blanks, with single and double quotes
 * grouping words (as the session manager plugin's shell-style commands). */
static int split_command(const char *cmd, json_t **out, struct barge_error **err)
{
    json_t *argv = json_array();
    struct barge_buf word = {0};
    bool in_word = false;
    char quote = 0;
    for (const char *p = cmd;; p++) {
        if (!*p) {
            if (quote) {
                json_decref(argv);
                barge_buf_release(&word);
                return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                            "command '%s' has an unterminated quote", cmd);
            }
            break;
        }
        if (quote) {
            if (*p == quote)
                quote = 0;
            else
                barge_buf_addc(&word, *p);
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            in_word = true;
        } else if (*p == ' ' || *p == '\t' || *p == '\n') {
            if (in_word)
                json_array_append_new(argv, json_string(word.data ? word.data : ""));
            barge_buf_release(&word);
            word = (struct barge_buf){0};
            in_word = false;
        } else {
            barge_buf_addc(&word, *p);
            in_word = true;
        }
    }
    if (in_word)
        json_array_append_new(argv, json_string(word.data ? word.data : ""));
    barge_buf_release(&word);
    if (json_array_size(argv) == 0) {
        json_decref(argv);
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "command must name a program to run");
    }
    *out = argv;
    return 0;
}

/* Where the session's output is logged, as ECS does it: the cluster's
 * executeCommandConfiguration.logging OVERRIDE names a CloudWatch Logs
 * group; DEFAULT (or no setting) uses the container's awslogs group when it
 * logs with awslogs; NONE logs nothing. *group is NULL for no logging. */
static int session_log_group(struct barge_tx *tx, struct barge_server *srv, const json_t *cluster,
                             const json_t *task, const char *container, char **group,
                             struct barge_error **err)
{
    *group = NULL;
    json_t *ecc = barge_json_object(barge_json_object(cluster, "configuration"),
                                    "executeCommandConfiguration");
    const char *logging = barge_json_str(ecc, "logging", "DEFAULT");
    if (strcmp(logging, "OVERRIDE") == 0) {
        const char *name = barge_json_str(barge_json_object(ecc, "logConfiguration"),
                                          "cloudWatchLogGroupName", NULL);
        *group = name ? barge_xstrdup(name) : NULL;
        return 0;
    }
    if (strcmp(logging, "DEFAULT") != 0)
        return 0;
    _cleanup_json_ json_t *td = NULL;
    _cleanup_free_ char *tdkey = NULL;
    if (ecs_taskdef_find(tx, srv, barge_json_str(task, "taskDefinitionArn", ""), &td, &tdkey, err) <
        0)
        return -1;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        json_t *lc = barge_json_object(c, "logConfiguration");
        const char *name = barge_json_str(barge_json_object(lc, "options"), "awslogs-group", NULL);
        if (barge_streq(barge_json_str(c, "name", NULL), container) &&
            barge_streq(barge_json_str(lc, "logDriver", NULL), "awslogs") && name)
            *group = barge_xstrdup(name);
    }
    return 0;
}

static int not_enabled(struct barge_error **err)
{
    return barge_error_set_type(
        err, BARGE_ERR_INVALID, "InvalidParameterException",
        "The execute command failed because execute command was not enabled when the task was "
        "run or the execute command agent isn't running. Wait and try again or run a new task "
        "with execute command enabled and try again.");
}

int barge_api_execute_command(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    const char *ident = barge_json_str(in, "task", "");
    const char *want = barge_json_str(in, "container", NULL);
    const char *command = barge_json_str(in, "command", "");
    bool interactive = barge_json_bool(in, "interactive", true);
    _cleanup_json_ json_t *argv = NULL;
    if (split_command(command, &argv, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *task = NULL, *inst = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_TASK, "task", cname, ident, &task, &key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The referenced task '%s' was not found in cluster '%s'.",
                                    ident, cname);
    if (!barge_json_bool(task, "enableExecuteCommand", false))
        return not_enabled(err);
    const char *status = barge_json_str(task, "lastStatus", "");
    if (strcmp(status, "RUNNING") != 0 ||
        strcmp(barge_json_str(task, "desiredStatus", ""), "RUNNING") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The execute command failed because task '%s' is %s, not "
                                    "RUNNING.",
                                    barge_json_str(task, "taskArn", ident), status);
    json_t *containers = barge_json_array(task, "containers");
    json_t *ctr = NULL;
    if (!want && json_array_size(containers) > 1)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "task '%s' has %zu containers: name one with container.", ident,
                                    json_array_size(containers));
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c)
    {
        if (!want || barge_streq(barge_json_str(c, "name", NULL), want))
            ctr = c;
    }
    if (!ctr)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The container '%s' was not found in task '%s'.",
                                    want ? want : "", ident);
    if (strcmp(barge_json_str(ctr, "lastStatus", "RUNNING"), "RUNNING") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The execute command failed because container '%s' is %s, "
                                    "not RUNNING.",
                                    barge_json_str(ctr, "name", ""),
                                    barge_json_str(ctr, "lastStatus", ""));
    /* The agent that runs it must be there to join the session. */
    const char *icluster =
        barge_streq(barge_json_str(task, "launchType", NULL), "FARGATE") ? ECS_FARGATE_POOL : cname;
    const char *instance_id = barge_json_str(task, "_instanceId", "");
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", icluster, instance_id);
    if (barge_store_get(tx, ECS_KIND_INSTANCE, ikey, &inst, err) < 0)
        return -1;
    if (!inst || !ecs_instance_connected(inst))
        return not_enabled(err);
    _cleanup_free_ char *log_group = NULL;
    if (session_log_group(tx, ctx->srv, cluster, task, barge_json_str(ctr, "name", ""), &log_group,
                          err) < 0)
        return -1;

    struct session *s = barge_xcalloc(1, sizeof(*s));
    char hex[33];
    barge_id_hex32(hex);
    snprintf(s->id, sizeof(s->id), "ecs-execute-command-%s", hex);
    char token[65], agent_token[65];
    random_token(token, s->token_hash);
    random_token(agent_token, s->agent_hash);
    s->deadline_ms = barge_monotonic_ms() + TOKEN_TTL_MS;
    s->instance_id = barge_xstrdup(instance_id);
    s->srv = ctx->srv;
    s->log_group = barge_steal(&log_group);
    const char *cont_name = barge_json_str(ctr, "name", "");
    s->request = json_pack("{s:s, s:s, s:s, s:s, s:O, s:b}", "sessionId", s->id, "token",
                           agent_token, "taskArn", barge_json_str(task, "taskArn", ""),
                           "containerName", cont_name, "command", argv, "interactive", interactive);
    s->client.fd = s->agent.fd = -1;
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0)
        abort();
    _cleanup_free_ char *who = barge_api_caller_arn(ctx->srv, &ctx->who);
    barge_info(
        "exec session %s opened: %s ran '%s' in container %s of task %s (cluster %s, %s)%s%s",
        s->id, who ? who : ctx->who.access_key_id, command, cont_name,
        barge_json_str(task, "taskArn", ""), cname, interactive ? "interactive" : "not interactive",
        s->log_group ? "; output logged to " : "", s->log_group ? s->log_group : "");

    pthread_mutex_lock(&lock);
    s->next = sessions;
    sessions = s;
    live++;
    pthread_mutex_unlock(&lock);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, session_main, s) != 0)
        abort();
    pthread_attr_destroy(&attr);
    barge_server_wake(ctx->srv);

    const char *host = barge_http_req_header(ctx->http, "Host");
    _cleanup_free_ char *url =
        barge_xasprintf("ws://%s/exec/%s", host ? host : ctx->srv->cfg.listen, s->id);
    *out = json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s, s:s}, s:s}", "clusterArn",
                     barge_json_str(cluster, "clusterArn", ""), "containerArn",
                     barge_json_str(ctr, "containerArn", ""), "containerName", cont_name,
                     "interactive", interactive, "session", "sessionId", s->id, "streamUrl", url,
                     "tokenValue", token, "taskArn", barge_json_str(task, "taskArn", ""));
    return 0;
}

/* ---- the /exec/ route ---- */

static int refuse(struct barge_http_resp *resp, int status, const char *msg)
{
    barge_http_resp_header(resp, "Connection", "close");
    barge_http_resp_set(resp, status, "text/plain", barge_xasprintf("%s\n", msg), strlen(msg) + 1);
    return -1;
}

/* What the upgrade callback needs: the session and which end. */
struct attach {
    char id[64];
    bool agent;
};

static void attached(void *ud, int fd, const char *extra, size_t extra_len,
                     struct barge_http_upgrade *h)
{
    struct attach *a = ud;
    pthread_mutex_lock(&lock);
    struct session *s = find(a->id);
    struct end *e = s ? (a->agent ? &s->agent : &s->client) : NULL;
    if (e && !e->attached) {
        e->attached = true;
        e->fd = fd;
        e->h = h;
        if (extra_len) {
            e->extra = barge_xmalloc(extra_len);
            memcpy(e->extra, extra, extra_len);
            e->extra_len = extra_len;
        }
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof(one)) < 0)
            barge_warn("exec session %s: cannot wake its relay: %s", s->id, strerror(errno));
    } else {
        /* The session ended (or expired) in the meantime. */
        barge_http_upgraded_close(h);
    }
    pthread_mutex_unlock(&lock);
    free(a);
}

/* Checks a stream's request and answers it: the switch to the websocket,
 * or (-1) a refusal. */
static int open_stream(struct barge_http_req *req, struct barge_http_resp *resp)
{
    const char *rest = req->path + strlen("/exec/");
    size_t idlen = strcspn(rest, "/");
    bool agent = strcmp(rest + idlen, "/agent") == 0;
    const char *upgrade = barge_http_req_header(req, "Upgrade");
    const char *key = barge_http_req_header(req, "Sec-WebSocket-Key");
    const char *auth = barge_http_req_header(req, "Authorization");
    if (strcmp(req->method, "GET") != 0 || !upgrade || strcasecmp(upgrade, "websocket") != 0 ||
        !key)
        return refuse(resp, 400, "an exec session's stream is a websocket");
    if (idlen == 0 || idlen >= sizeof(((struct session *)0)->id) || (rest[idlen] && !agent))
        return refuse(resp, 404, "no such exec session");
    if (!auth || !barge_str_has_prefix(auth, "Bearer ") || strlen(auth + 7) != 64)
        return refuse(resp, 401, "an exec session's stream needs its token as the Bearer token");
    char hash[65];
    barge_sha256_hex(auth + 7, 64, hash);
    struct attach *a = barge_xcalloc(1, sizeof(*a));
    memcpy(a->id, rest, idlen);
    a->agent = agent;
    const char *why = NULL;
    pthread_mutex_lock(&lock);
    struct session *s = find(a->id);
    if (!s)
        why = "no such exec session (it ended or expired)";
    else if (CRYPTO_memcmp(agent ? s->agent_hash : s->token_hash, hash, 64) != 0)
        why = "the session's token does not match";
    else if (agent ? s->agent_used : s->client_used)
        why = "the session's token was used already";
    else if (barge_monotonic_ms() > s->deadline_ms)
        why = "the session's token has expired";
    else if (agent)
        s->agent_used = true;
    else
        s->client_used = true;
    pthread_mutex_unlock(&lock);
    if (why) {
        barge_warn("exec session %.*s: refused a %s stream: %s", (int)idlen, rest,
                   agent ? "agent" : "client", why);
        free(a);
        return refuse(resp, 401, why);
    }
    _cleanup_free_ char *accept = barge_ws_accept_value(key);
    resp->status = 101;
    barge_http_resp_header(resp, "Upgrade", "websocket");
    barge_http_resp_header(resp, "Sec-WebSocket-Accept", accept);
    resp->upgraded = attached;
    resp->upgrade_free = free;
    resp->upgrade_ud = a;
    return 0;
}

void barge_api_exec_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    open_stream(req, resp);
}
