/* The HTTP server behind http.h, on libmicrohttpd in epoll mode with one
 * event thread per CPU. A connection holds a thread only while its handler
 * runs: a request that may wait is suspended in libmicrohttpd while a thread
 * of the handler pool runs it, then resumed to send the answer; long polls
 * are parked (suspended too) and resumed when woken or at their deadline by
 * a timer thread, so idle and waiting clients cost a socket and a little
 * memory each. An event thread so never waits for a commit, and the requests
 * it serves are answered in turn rather than time-sliced against other
 * threads'. The raw request target is captured before
 * libmicrohttpd splits and unescapes it, because SigV4 signs the path and
 * query exactly as they were sent. */
#include "http/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/log.h"

struct conn_state;

/* One daemon per address: libmicrohttpd serves one listening socket each. */
#define MAX_ADDRESSES       8
#define MAX_HANDLER_THREADS 256
/* What libmicrohttpd keeps per connection for a request's line and headers
 * (and reads of its body). It zeroes all of it after every request, so it is
 * kept near what requests need: AWS clients send a few KiB of headers at
 * most (a session token is about 1 KiB); longer ones get 431. */
#define CONNECTION_MEMORY (16 * 1024)

/* Per connection (libmicrohttpd's socket context): whether a request is in
 * progress, whether the last one left the connection open, and since when
 * the connection has been waiting for the next. */
struct sock_state {
    unsigned open_requests;
    bool closing;
    int64_t waiting_since_ms;
    /* Until its first request's headers are in, a connection is on the
     * server's list of those with a header deadline. */
    int fd;
    int64_t header_deadline;
    bool had_headers;            /* the connection's own thread only */
    bool listed;                 /* park_lock */
    char addr[INET6_ADDRSTRLEN]; /* the client's, once its first request came */
    struct sock_state *prev, *next;
};

struct barge_http_server {
    struct MHD_Daemon *daemons[MAX_ADDRESSES];
    size_t n_daemons;
    const struct barge_http_route *routes;
    void *server;
    int port;
    unsigned header_timeout;
    const char *request_id_header;
    void (*thread_reset)(void *server);
    /* Parked requests: a list (park_lock), the earliest deadline the timer
     * thread sleeps towards, and how many are suspended (parked, or resumed
     * and not yet run again: libmicrohttpd must not stop with any). */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    struct conn_state *parked;
    /* Connections waiting for their first headers, newest first: their
     * deadlines come in the order of the list. */
    struct sock_state *new_conns, *new_conns_tail;
    int64_t next_deadline;
    size_t n_suspended;
    bool stopping;
    pthread_t timer;
    /* The handler pool: requests whose handlers may wait, first in first
     * out (pool_lock, taken after park_lock when both are). */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    struct conn_state *jobs, *jobs_tail;
    bool pool_stopping;
    pthread_t pool[MAX_HANDLER_THREADS];
    size_t n_pool;
};

/* Per-request state, created by the URI callback and freed on completion. */
struct conn_state {
    struct barge_http_req req; /* first: a req is its conn_state */
    struct MHD_Connection *conn;
    struct barge_http_server *http;
    char *raw_target;
    const struct barge_http_route *route;
    size_t body_cap;
    bool too_large;
    bool headers_done;
    bool started;   /* the route's stream start ran, so done must run */
    bool streaming; /* the body goes to the route's data callback */
    bool refused;   /* start answered already: early_resp is the answer */
    bool stream_stopped;
    bool handled;
    bool http10;
    bool suspended; /* counted in n_suspended */
    bool parked;    /* in the parked list */
    /* The handler pool's part (park_lock): the handler runs there now; it
     * parked and was woken before it returned (so it runs again); its answer
     * is in pool_resp for the event thread to send. */
    bool in_pool;
    bool woken_in_pool;
    bool pool_done;
    struct barge_http_resp pool_resp;
    struct conn_state *job_next;
    struct conn_state *park_prev, *park_next;
    int64_t park_deadline;
    struct barge_http_resp early_resp;
    struct upgrade *upgrade; /* an upgrade answer's state, freed on completion */
    char addr[INET6_ADDRSTRLEN];
};

const char *barge_http_req_header(const struct barge_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *barge_http_unescape(const char *s, size_t len)
{
    char *out = barge_xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

char *barge_http_req_query(const struct barge_http_req *req, const char *name)
{
    const char *q = req->raw_query;
    size_t nlen = strlen(name);
    while (q && *q) {
        const char *end = strchr(q, '&');
        size_t plen = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', plen);
        size_t klen = eq ? (size_t)(eq - q) : plen;
        _cleanup_free_ char *key = barge_http_unescape(q, klen);
        if (strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
            if (!eq)
                return barge_xstrdup("");
            return barge_http_unescape(eq + 1, plen - klen - 1);
        }
        q = end ? end + 1 : NULL;
    }
    return NULL;
}

void barge_http_resp_header(struct barge_http_resp *resp, const char *name, const char *value)
{
    resp->headers =
        barge_xrealloc(resp->headers, (resp->n_headers + 1) * sizeof(struct barge_http_header));
    resp->headers[resp->n_headers].name = barge_xstrdup(name);
    resp->headers[resp->n_headers].value = barge_xstrdup(value);
    resp->n_headers++;
}

void barge_http_resp_set(struct barge_http_resp *resp, int status, const char *content_type,
                         char *body, size_t len)
{
    resp->status = status;
    if (content_type)
        barge_http_resp_header(resp, "Content-Type", content_type);
    free(resp->body);
    resp->body = body;
    resp->body_len = len;
}

static struct sock_state *sock_state(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Takes ss off the list of connections with a header deadline. park_lock
 * held. */
static void unlist_locked(struct barge_http_server *srv, struct sock_state *ss)
{
    if (!ss->listed)
        return;
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        srv->new_conns = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    else
        srv->new_conns_tail = ss->prev;
    ss->prev = ss->next = NULL;
    ss->listed = false;
}

static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct conn_state *cs = barge_xcalloc(1, sizeof(*cs));
    cs->conn = conn;
    cs->http = cls;
    struct sock_state *ss = sock_state(conn);
    if (ss)
        ss->open_requests++;
    cs->raw_target = barge_xstrdup(uri);
    char *q = strchr(cs->raw_target, '?');
    if (q) {
        *q = '\0';
        cs->req.raw_query = q + 1;
    } else {
        cs->req.raw_query = "";
    }
    cs->req.raw_path = cs->raw_target;
    cs->req.path = barge_http_unescape(cs->raw_target, strlen(cs->raw_target));
    barge_id_uuid(cs->req.request_id);
    return cs;
}

/* libmicrohttpd unescapes paths and query values in place; we keep everything
 * raw and decode ourselves where needed. */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* A request's headers are libmicrohttpd's strings, which last as long as
 * the request does. */
static enum MHD_Result header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct barge_http_req *req = cls;
    req->headers[req->n_headers].name = (char *)key;
    req->headers[req->n_headers].value = (char *)(value ? value : "");
    req->n_headers++;
    return MHD_YES;
}

static void free_headers(struct barge_http_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

/* Takes cs off the parked list. park_lock held. */
static void unlink_locked(struct barge_http_server *srv, struct conn_state *cs)
{
    if (cs->park_prev)
        cs->park_prev->park_next = cs->park_next;
    else
        srv->parked = cs->park_next;
    if (cs->park_next)
        cs->park_next->park_prev = cs->park_prev;
    cs->park_prev = cs->park_next = NULL;
    cs->parked = false;
}

/* Takes cs off the parked list and hands it back to libmicrohttpd, which
 * runs its access callback again; a handler that parked on the pool and has
 * not returned yet is resumed when it does. park_lock held. */
static void unpark_locked(struct barge_http_server *srv, struct conn_state *cs)
{
    unlink_locked(srv, cs);
    if (cs->in_pool)
        cs->woken_in_pool = true;
    else
        MHD_resume_connection(cs->conn);
}

/* The request runs (or ends) after a suspension. A request ending while
 * still parked (libmicrohttpd does not end suspended connections, but the
 * list must never point at a freed request) leaves the list too. */
static void unsuspended(struct conn_state *cs)
{
    if (!cs->suspended)
        return;
    pthread_mutex_lock(&cs->http->park_lock);
    if (cs->parked)
        unlink_locked(cs->http, cs);
    cs->suspended = false;
    cs->http->n_suspended--;
    pthread_mutex_unlock(&cs->http->park_lock);
}

bool barge_http_req_park(struct barge_http_req *req, int64_t deadline_ms)
{
    struct conn_state *cs = (struct conn_state *)req;
    struct barge_http_server *srv = cs->http;
    pthread_mutex_lock(&srv->park_lock);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->park_lock);
        return false;
    }
    /* A handler on the pool runs with its connection suspended already. */
    if (!cs->suspended) {
        MHD_suspend_connection(cs->conn);
        cs->suspended = true;
        srv->n_suspended++;
    }
    cs->parked = true;
    cs->park_deadline = deadline_ms;
    cs->park_prev = NULL;
    cs->park_next = srv->parked;
    if (srv->parked)
        srv->parked->park_prev = cs;
    srv->parked = cs;
    if (deadline_ms < srv->next_deadline)
        pthread_cond_signal(&srv->park_cond);
    pthread_mutex_unlock(&srv->park_lock);
    return true;
}

void barge_http_resume_parked(struct barge_http_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->park_lock);
    while (srv->parked)
        unpark_locked(srv, srv->parked);
    pthread_mutex_unlock(&srv->park_lock);
}

/* Resumes parked requests at their deadlines. */
static void *timer_main(void *ud)
{
    struct barge_http_server *srv = ud;
    pthread_mutex_lock(&srv->park_lock);
    while (!srv->stopping) {
        int64_t now = barge_monotonic_ms();
        int64_t next = now + 60 * 1000;
        for (struct conn_state *cs = srv->parked, *n; cs; cs = n) {
            n = cs->park_next;
            if (cs->park_deadline <= now)
                unpark_locked(srv, cs);
            else if (cs->park_deadline < next)
                next = cs->park_deadline;
        }
        /* libmicrohttpd's timeout only counts silence, so a client that
         * trickles its headers would keep its connection: past the header
         * deadline the socket is shut down, which libmicrohttpd notices and
         * closes. The socket is still open here: a connection leaves the
         * list (notify_connection_cb) before libmicrohttpd closes it. */
        struct sock_state *ss;
        while ((ss = srv->new_conns_tail) && ss->header_deadline <= now) {
            shutdown(ss->fd, SHUT_RDWR);
            unlist_locked(srv, ss);
        }
        if (ss && ss->header_deadline < next)
            next = ss->header_deadline;
        /* Deadlines close together are served by one wakeup. */
        if (next < now + 50)
            next = now + 50;
        srv->next_deadline = next;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                              .tv_nsec = (long)(next % 1000) * 1000000L};
        pthread_cond_timedwait(&srv->park_cond, &srv->park_lock, &ts);
    }
    pthread_mutex_unlock(&srv->park_lock);
    return NULL;
}

static void upgrade_release(void *cls);

/* Frees an answer that is not to be sent. */
static void resp_discard(struct barge_http_resp *resp)
{
    free_headers(resp->headers, resp->n_headers);
    free(resp->body);
    if (resp->fd >= 0)
        close(resp->fd);
    if (resp->upgraded && resp->upgrade_free)
        resp->upgrade_free(resp->upgrade_ud);
    *resp = (struct barge_http_resp){.fd = -1};
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *cs = *con_cls;
    if (!cs)
        return;
    unsuspended(cs);
    struct sock_state *ss = sock_state(conn);
    if (ss) {
        ss->open_requests--;
        ss->waiting_since_ms = barge_monotonic_ms();
        /* libmicrohttpd closes after this request in these cases (HTTP/1.0
         * counted as closing, whatever its headers say). */
        const char *c = barge_http_req_header(&cs->req, "Connection");
        ss->closing = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK || cs->http10 ||
                      (c && strcasestr(c, "close"));
    }
    if (cs->started && cs->route->stream->done) {
        barge_log_set_request_id(cs->req.request_id);
        cs->route->stream->done(&cs->req, cs->handled);
        barge_log_set_request_id(NULL);
    }
    if (cs->upgrade)
        upgrade_release(cs->upgrade);
    /* The client left before the pool's answer could be sent. */
    if (cs->pool_done)
        resp_discard(&cs->pool_resp);
    free_headers(cs->early_resp.headers, cs->early_resp.n_headers);
    free(cs->early_resp.body);
    free(cs->req.headers);
    free(cs->req.body);
    free(cs->req.path);
    free(cs->req.wait_key);
    free(cs->raw_target);
    free(cs);
    *con_cls = NULL;
}

/* libmicrohttpd closes a connection whose request line it cannot split into
 * method, target and version without a word; HTTP wants a 400. So when a
 * connection closes while it waits for a request (the last one kept it
 * open), neither by its client nor for a timeout nor because the server
 * stops, the 400 is written here (the socket is still open and, with
 * MHD_USE_TURBO, not shut down). */
static void notify_connection_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                                 enum MHD_ConnectionNotificationCode code)
{
    struct barge_http_server *srv = cls;
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct sock_state *ss = barge_xcalloc(1, sizeof(*ss));
        ss->waiting_since_ms = barge_monotonic_ms();
        ss->fd = fd ? fd->connect_fd : -1;
        ss->header_deadline = ss->waiting_since_ms + (int64_t)srv->header_timeout * 1000;
        *socket_context = ss;
        if (ss->fd < 0)
            return;
        pthread_mutex_lock(&srv->park_lock);
        ss->next = srv->new_conns;
        if (srv->new_conns)
            srv->new_conns->prev = ss;
        else
            srv->new_conns_tail = ss;
        srv->new_conns = ss;
        ss->listed = true;
        if (ss->header_deadline < srv->next_deadline)
            pthread_cond_signal(&srv->park_cond);
        pthread_mutex_unlock(&srv->park_lock);
        return;
    }
    struct sock_state *ss = *socket_context;
    *socket_context = NULL;
    if (!ss)
        return;
    pthread_mutex_lock(&srv->park_lock);
    unlist_locked(srv, ss);
    bool stopping = srv->stopping;
    pthread_mutex_unlock(&srv->park_lock);
    const union MHD_ConnectionInfo *to =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_TIMEOUT);
    /* Timeouts are counted in whole seconds: one closer than a second to its
     * timeout may be one. */
    int64_t waited = barge_monotonic_ms() - ss->waiting_since_ms;
    bool timed_out = to && waited >= ((int64_t)to->connection_timeout - 1) * 1000;
    char peek;
    if (ss->open_requests == 0 && !ss->closing && !timed_out && fd && !stopping &&
        recv(fd->connect_fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
        (errno == EAGAIN || errno == EWOULDBLOCK)) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                                  "Content-Type: text/plain\r\nContent-Length: 23\r\n\r\n"
                                  "malformed request line\n";
        if (send(fd->connect_fd, bad, sizeof(bad) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            barge_debug("cannot answer a malformed request: %s", strerror(errno));
    }
    free(ss);
}

static enum MHD_Result send_plain(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* What an upgrade response carries to libmicrohttpd's upgrade callback. */
struct upgrade {
    void (*upgraded)(void *ud, int fd, const char *extra, size_t extra_len,
                     struct barge_http_upgrade *h);
    void (*upgrade_free)(void *ud);
    void *ud;
    bool ran;
};

static void upgrade_cb(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct upgrade *u = cls;
    u->ran = true;
    u->upgraded(u->ud, sock, extra_in, extra_in_size, (struct barge_http_upgrade *)urh);
}

/* Frees the upgrade state with its response; ud too when the switch never
 * happened. */
static void upgrade_release(void *cls)
{
    struct upgrade *u = cls;
    if (!u->ran && u->upgrade_free)
        u->upgrade_free(u->ud);
    free(u);
}

void barge_http_upgraded_close(struct barge_http_upgrade *h)
{
    MHD_upgrade_action((struct MHD_UpgradeResponseHandle *)h, MHD_UPGRADE_ACTION_CLOSE);
}

/* Queues resp (consumed: its headers are freed, its body or fd handed over). */
static enum MHD_Result send_resp(struct MHD_Connection *conn, struct conn_state *cs,
                                 struct barge_http_resp *resp)
{
    struct MHD_Response *r;
    if (resp->upgraded) {
        struct upgrade *u = barge_xcalloc(1, sizeof(*u));
        u->upgraded = resp->upgraded;
        u->upgrade_free = resp->upgrade_free;
        u->ud = resp->upgrade_ud;
        r = MHD_create_response_for_upgrade(upgrade_cb, u);
        if (!r)
            abort();
        cs->upgrade = u;
        free(resp->body);
    } else if (resp->fd >= 0) {
        r = MHD_create_response_from_fd_at_offset64(resp->fd_len, resp->fd,
                                                    (uint64_t)resp->fd_offset);
        free(resp->body);
    } else {
        r = MHD_create_response_from_buffer(resp->body_len, resp->body ? resp->body : (void *)"",
                                            resp->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
    }
    resp->body = NULL;
    resp->fd = -1;
    if (cs->http->request_id_header)
        MHD_add_response_header(r, cs->http->request_id_header, cs->req.request_id);
    for (size_t i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    free_headers(resp->headers, resp->n_headers);
    resp->headers = NULL;
    resp->n_headers = 0;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void client_addr(struct MHD_Connection *conn, char *addr, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    addr[0] = '\0';
    if (ci && ci->client_addr) {
        if (ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)ci->client_addr)->sin_addr, addr,
                      (socklen_t)len);
        else if (ci->client_addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ci->client_addr)->sin6_addr, addr,
                      (socklen_t)len);
    }
}

static void thread_reset(struct barge_http_server *srv)
{
    if (srv->thread_reset)
        srv->thread_reset(srv->server);
}

bool barge_http_waits_always(const struct barge_http_req *req)
{
    return true;
}

bool barge_http_waits_unless_read(const struct barge_http_req *req)
{
    return strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
}

/* Runs cs's handler in the calling thread. */
static void run_handler(struct barge_http_server *srv, struct conn_state *cs,
                        struct barge_http_resp *resp)
{
    barge_log_set_request_id(cs->req.request_id);
    thread_reset(srv);
    cs->route->handler(&cs->req, resp);
    thread_reset(srv);
    barge_log_set_request_id(NULL);
}

/* Hands cs to the handler pool with its connection suspended; false (the
 * event thread runs it) while the server stops, when the pool may be gone. */
static bool to_pool(struct barge_http_server *srv, struct conn_state *cs)
{
    pthread_mutex_lock(&srv->park_lock);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->park_lock);
        return false;
    }
    MHD_suspend_connection(cs->conn);
    cs->suspended = cs->in_pool = true;
    srv->n_suspended++;
    /* Queued under park_lock: barge_http_stop sets stopping before it lets
     * the pool end, so whatever is queued here still runs. */
    pthread_mutex_lock(&srv->pool_lock);
    cs->job_next = NULL;
    if (srv->jobs_tail)
        srv->jobs_tail->job_next = cs;
    else
        srv->jobs = cs;
    srv->jobs_tail = cs;
    pthread_cond_signal(&srv->pool_cond);
    pthread_mutex_unlock(&srv->pool_lock);
    pthread_mutex_unlock(&srv->park_lock);
    return true;
}

/* Runs a queued request and gives its connection back to libmicrohttpd,
 * which sends the answer (access_cb) or runs the handler again when it
 * parked and was woken meanwhile. A parked one stays suspended. */
static void run_pooled(struct barge_http_server *srv, struct conn_state *cs)
{
    struct barge_http_resp resp = {.status = 200, .fd = -1};
    run_handler(srv, cs, &resp);
    pthread_mutex_lock(&srv->park_lock);
    cs->in_pool = false;
    if (cs->parked || cs->woken_in_pool) {
        resp_discard(&resp);
    } else {
        cs->pool_resp = resp;
        cs->pool_done = true;
    }
    if (!cs->parked) {
        cs->woken_in_pool = false;
        MHD_resume_connection(cs->conn);
    }
    pthread_mutex_unlock(&srv->park_lock);
}

static void *pool_main(void *ud)
{
    struct barge_http_server *srv = ud;
    pthread_mutex_lock(&srv->pool_lock);
    for (;;) {
        while (!srv->jobs && !srv->pool_stopping)
            pthread_cond_wait(&srv->pool_cond, &srv->pool_lock);
        struct conn_state *cs = srv->jobs;
        if (!cs)
            break;
        srv->jobs = cs->job_next;
        if (!srv->jobs)
            srv->jobs_tail = NULL;
        pthread_mutex_unlock(&srv->pool_lock);
        run_pooled(srv, cs);
        pthread_mutex_lock(&srv->pool_lock);
    }
    pthread_mutex_unlock(&srv->pool_lock);
    return NULL;
}

/* First call for a request: its headers are in, no body yet. */
static void headers_in(struct barge_http_server *srv, struct MHD_Connection *conn,
                       struct conn_state *cs, const char *method, const char *version)
{
    cs->headers_done = true;
    cs->http10 = strcmp(version, MHD_HTTP_VERSION_1_1) != 0;
    struct sock_state *ss = sock_state(conn);
    if (ss && !ss->had_headers) {
        ss->had_headers = true;
        client_addr(conn, ss->addr, sizeof(ss->addr));
        pthread_mutex_lock(&srv->park_lock);
        unlist_locked(srv, ss);
        pthread_mutex_unlock(&srv->park_lock);
    }
    cs->req.method = method;
    cs->req.server = srv->server;
    int n = MHD_get_connection_values(conn, MHD_HEADER_KIND, NULL, NULL);
    cs->req.headers = barge_xcalloc(n > 0 ? (size_t)n : 1, sizeof(struct barge_http_header));
    MHD_get_connection_values(conn, MHD_HEADER_KIND, header_cb, &cs->req);
    if (ss)
        memcpy(cs->addr, ss->addr, sizeof(cs->addr));
    else
        client_addr(conn, cs->addr, sizeof(cs->addr));
    cs->req.remote_addr = cs->addr;
    for (const struct barge_http_route *r = srv->routes; r->handler; r++) {
        if (barge_str_has_prefix(cs->req.path, r->prefix)) {
            cs->route = r;
            break;
        }
    }
    if (!cs->route)
        return;
    if (cs->route->stream && cs->route->stream->start) {
        cs->started = true;
        cs->early_resp = (struct barge_http_resp){.status = 200, .fd = -1};
        barge_log_set_request_id(cs->req.request_id);
        thread_reset(srv);
        enum barge_http_body_mode mode = cs->route->stream->start(&cs->req, &cs->early_resp);
        thread_reset(srv);
        barge_log_set_request_id(NULL);
        if (mode == BARGE_HTTP_BODY_REFUSE) {
            cs->refused = true;
            return;
        }
        if (mode == BARGE_HTTP_BODY_STREAM) {
            cs->streaming = true;
            return;
        }
    }
    const char *cl = barge_http_req_header(&cs->req, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > cs->route->max_body)
        cs->too_large = true;
}

static void body_in(struct conn_state *cs, const char *data, size_t n)
{
    if (cs->too_large || cs->refused || !cs->route)
        return;
    if (cs->streaming) {
        if (cs->stream_stopped)
            return;
        barge_log_set_request_id(cs->req.request_id);
        if (cs->route->stream->data(&cs->req, data, n) < 0)
            cs->stream_stopped = true;
        barge_log_set_request_id(NULL);
        return;
    }
    if (cs->req.body_len + n > cs->route->max_body) {
        cs->too_large = true;
        return;
    }
    if (cs->req.body_len + n + 1 > cs->body_cap) {
        cs->body_cap = (cs->req.body_len + n + 1) * 2;
        cs->req.body = barge_xrealloc(cs->req.body, cs->body_cap);
    }
    memcpy(cs->req.body + cs->req.body_len, data, n);
    cs->req.body_len += n;
    cs->req.body[cs->req.body_len] = '\0';
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct barge_http_server *srv = cls;
    struct conn_state *cs = *con_cls;
    if (!cs)
        return MHD_NO;

    if (!cs->headers_done) {
        headers_in(srv, conn, cs, method, version);
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        body_in(cs, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (!cs->route)
        return send_plain(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    if (cs->refused)
        return send_resp(conn, cs, &cs->early_resp);
    if (cs->too_large)
        return send_plain(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
    if (!cs->req.body)
        cs->req.body = barge_xcalloc(1, 1);

    unsuspended(cs);
    if (cs->pool_done) {
        cs->pool_done = false;
        cs->handled = true;
        return send_resp(conn, cs, &cs->pool_resp);
    }
    /* A route with waits started the pool. */
    if (cs->route->waits && cs->route->waits(&cs->req) && to_pool(srv, cs))
        return MHD_YES;
    struct barge_http_resp resp = {.status = 200, .fd = -1};
    run_handler(srv, cs, &resp);
    if (cs->suspended) {
        /* Parked: the handler answers on a later run. */
        resp_discard(&resp);
        return MHD_YES;
    }
    cs->handled = true;
    return send_resp(conn, cs, &resp);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, struct barge_error **err)
{
    memset(ss, 0, sizeof(*ss));
    _cleanup_free_ char *copy = barge_xstrdup(listen);
    char *host = copy, *port;
    if (host[0] == '[') {
        char *close_br = strchr(host, ']');
        if (!close_br || close_br[1] != ':')
            return barge_error_set(err, BARGE_ERR_INVALID, "invalid listen address '%s'", listen);
        *close_br = '\0';
        host++;
        port = close_br + 2;
    } else {
        char *colon = strrchr(host, ':');
        if (!colon)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "invalid listen address '%s': expected host:port", listen);
        *colon = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end || p < 0 || p > 65535)
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid port in listen address '%s'",
                               listen);
    if (*host == '\0')
        host = "0.0.0.0";
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)p);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
    } else if (strcmp(host, "localhost") == 0) {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        in4->sin_port = htons((uint16_t)p);
    } else {
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "invalid listen address '%s': host must be an IP address", listen);
    }
    return 0;
}

/* A listening socket on ss, or -1. Bound here rather than by libmicrohttpd
 * to tell an address in use apart and to bind with IP_FREEBIND. */
static int open_listener(const struct sockaddr_storage *ss, bool freebind, const char *name,
                         struct barge_error **err)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot listen on '%s'", name);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (freebind)
        setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return barge_error_set_errno(err, e == EADDRINUSE ? BARGE_ERR_CONFLICT : BARGE_ERR_IO,
                                     "cannot listen on '%s'", name);
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* host:port for an address of also_listen. */
static char *with_port(const char *host, int port)
{
    if (strchr(host, ':'))
        return barge_xasprintf("[%s]:%d", host, port);
    return barge_xasprintf("%s:%d", host, port);
}

/* Lets the handler pool run what is queued, then ends its threads. */
static void pool_stop(struct barge_http_server *srv)
{
    pthread_mutex_lock(&srv->pool_lock);
    srv->pool_stopping = true;
    pthread_cond_broadcast(&srv->pool_cond);
    pthread_mutex_unlock(&srv->pool_lock);
    for (size_t i = 0; i < srv->n_pool; i++)
        pthread_join(srv->pool[i], NULL);
    srv->n_pool = 0;
}

static void server_free(struct barge_http_server *srv)
{
    pool_stop(srv);
    for (size_t i = 0; i < srv->n_daemons; i++)
        MHD_stop_daemon(srv->daemons[i]);
    pthread_cond_destroy(&srv->pool_cond);
    pthread_mutex_destroy(&srv->pool_lock);
    pthread_cond_destroy(&srv->park_cond);
    pthread_mutex_destroy(&srv->park_lock);
    free(srv);
}

/* The CPUs this process may run on (taskset, cgroup cpusets). */
static unsigned usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Adds a daemon serving listen; the first one sets the server's port. */
static int add_daemon(struct barge_http_server *srv, const char *listen,
                      const struct barge_http_options *o, struct barge_error **err)
{
    if (srv->n_daemons == MAX_ADDRESSES)
        return barge_error_set(err, BARGE_ERR_INVALID, "too many listen addresses (at most %d)",
                               MAX_ADDRESSES);
    struct sockaddr_storage ss;
    if (parse_listen(listen, &ss, err) < 0)
        return -1;
    int fd = open_listener(&ss, o->freebind, listen, err);
    if (fd < 0)
        return -1;
    const struct barge_http_limits *l = &o->limits;
    /* One event thread is the daemon's own, without a pool (which
     * libmicrohttpd warns about for a pool of one).
     * libmicrohttpd's timeout is the idle timeout, the same for every
     * connection: one of its own per connection would have libmicrohttpd
     * visit them all on every turn of its loop. The timer thread ends a
     * connection still without its first headers at the header timeout. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem pool[] = {
        {l->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, l->threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, access_cb, srv, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_ARRAY, pool,
        MHD_OPTION_URI_LOG_CALLBACK, uri_cb, srv, MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb, srv,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, srv, MHD_OPTION_NOTIFY_CONNECTION,
        notify_connection_cb, srv, MHD_OPTION_CONNECTION_TIMEOUT, l->idle_timeout,
        MHD_OPTION_CONNECTION_LIMIT, l->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        l->max_per_client, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_END);
    if (!d) {
        /* libmicrohttpd closes the socket only once it has started. */
        close(fd);
        return barge_error_set(err, BARGE_ERR_IO, "cannot serve HTTP on '%s'", listen);
    }
    if (srv->n_daemons == 0)
        srv->port = bound_port(fd);
    srv->daemons[srv->n_daemons++] = d;
    return 0;
}

int barge_http_start(const char *listen, const struct barge_http_route *routes, void *server,
                     const struct barge_http_options *opts, struct barge_http_server **out,
                     struct barge_error **err)
{
    struct barge_http_options o = opts ? *opts : (struct barge_http_options){0};
    struct barge_http_limits *l = &o.limits;
    /* An event thread per CPU: more would only take turns on the same
     * CPUs, which stretches every answer's wait for its turn. */
    if (!l->threads)
        l->threads = usable_cpus();
    if (!l->handler_threads)
        l->handler_threads = usable_cpus() * 4 > 8 ? usable_cpus() * 4 : 8;
    if (l->handler_threads > MAX_HANDLER_THREADS)
        l->handler_threads = MAX_HANDLER_THREADS;
    if (!l->header_timeout)
        l->header_timeout = 10;
    if (!l->idle_timeout)
        l->idle_timeout = 60;
    if (!l->max_connections)
        l->max_connections = 16384;
    if (!l->max_per_client)
        l->max_per_client = 512;
    struct barge_http_server *srv = barge_xcalloc(1, sizeof(*srv));
    srv->routes = routes;
    srv->server = server;
    srv->header_timeout = l->header_timeout;
    srv->request_id_header = o.request_id_header;
    srv->thread_reset = o.thread_reset;
    pthread_mutex_init(&srv->park_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->park_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&srv->pool_lock, NULL);
    pthread_cond_init(&srv->pool_cond, NULL);
    srv->next_deadline = INT64_MAX;
    bool any_waits = false;
    for (const struct barge_http_route *r = routes; r->handler; r++)
        any_waits = any_waits || r->waits;
    for (unsigned i = 0; any_waits && i < l->handler_threads; i++) {
        if (pthread_create(&srv->pool[srv->n_pool], NULL, pool_main, srv) != 0) {
            server_free(srv);
            return barge_error_set(err, BARGE_ERR_IO, "cannot start the handler threads of '%s'",
                                   listen);
        }
        srv->n_pool++;
    }
    if (add_daemon(srv, listen, &o, err) < 0) {
        server_free(srv);
        return -1;
    }
    for (const char *const *a = o.also_listen; a && *a; a++) {
        _cleanup_free_ char *more = with_port(*a, srv->port);
        if (add_daemon(srv, more, &o, err) < 0) {
            server_free(srv);
            return -1;
        }
    }
    if (pthread_create(&srv->timer, NULL, timer_main, srv) != 0) {
        server_free(srv);
        return barge_error_set(err, BARGE_ERR_IO, "cannot start the timer thread of '%s'", listen);
    }
    *out = srv;
    return 0;
}

int barge_http_port(const struct barge_http_server *srv)
{
    return srv->port;
}

void barge_http_stop(struct barge_http_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->park_lock);
    srv->stopping = true;
    while (srv->parked)
        unpark_locked(srv, srv->parked);
    pthread_cond_signal(&srv->park_cond);
    pthread_mutex_unlock(&srv->park_lock);
    pthread_join(srv->timer, NULL);
    /* What the pool has queued or runs ends, and its connections resume. */
    pool_stop(srv);
    /* libmicrohttpd must not stop while connections are suspended: let the
     * resumed ones run (they answer at once now) for up to a second. */
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&srv->park_lock);
        size_t n = srv->n_suspended;
        pthread_mutex_unlock(&srv->park_lock);
        if (n == 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    server_free(srv);
}
