/* The HTTP server of every barge listener (barged's API and /metrics, the
 * agent's task metadata endpoint and /metrics): libmicrohttpd in epoll mode
 * with a few event threads per address, which buffers the request,
 * routes it by path prefix and sends the response a handler built. Every
 * listener gets the same defences: a header timeout, an idle timeout, a limit
 * of connections per client and a 400 for a request line that is not HTTP.
 * Handlers run on the event threads unless their route says a request may
 * wait (a commit, a call to another server): such a request's connection is
 * suspended and its handler runs on a separate pool, so that one slow
 * request never holds up the others an event thread serves. A long poll
 * parks its request instead of waiting (barge_http_req_park) and is run again
 * when woken. What a listener serves is its caller's affair (its route table
 * and options); nothing here knows of AWS or the store. */
#ifndef BARGE_HTTP_HTTP_H
#define BARGE_HTTP_HTTP_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct barge_http_header {
    char *name; /* as received */
    char *value;
};

struct barge_http_req {
    const char *method;
    const char *raw_path;  /* the path exactly as received (percent-encoded) */
    char *path;            /* percent-decoded path */
    const char *raw_query; /* the query string as received, without '?', or "" */
    /* Names and values are the server's: valid as long as the request, and
     * not to be changed or freed. */
    struct barge_http_header *headers;
    size_t n_headers;
    char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    char request_id[37];
    const char *remote_addr;
    void *server;    /* barge_http_start's server argument */
    void *stream_ud; /* a streaming route's per-request state (see below) */
    /* What a parked handler keeps between its runs (0 and NULL on the first
     * run): its deadline (barge_monotonic_ms) and a string it owns, freed
     * with the request. */
    int64_t wait_deadline_ms;
    char *wait_key;
};

struct barge_http_upgrade;

struct barge_http_resp {
    int status;
    struct barge_http_header *headers;
    size_t n_headers;
    char *body; /* owned; freed after sending */
    size_t body_len;
    int fd; /* when >= 0, the body is fd_len bytes of fd from fd_offset; fd is closed */
    off_t fd_offset;
    size_t fd_len;
    /* Switching protocols (status 101): once the answer is sent, upgraded
     * runs on a server thread with the connection's socket, the bytes read
     * past the request and a handle that barge_http_upgraded_close releases
     * (from any thread) when the new protocol is done with the socket. It
     * must not block. When the client is gone before that, upgraded never
     * runs and upgrade_free (if set) releases upgrade_ud. */
    void (*upgraded)(void *ud, int fd, const char *extra, size_t extra_len,
                     struct barge_http_upgrade *h);
    void (*upgrade_free)(void *ud);
    void *upgrade_ud;
};

/* Closes an upgraded connection (see barge_http_resp.upgraded). */
void barge_http_upgraded_close(struct barge_http_upgrade *h);

/* Case-insensitive header lookup; the first match or NULL. Borrowed. */
const char *barge_http_req_header(const struct barge_http_req *req, const char *name);
/* Value of a query parameter (percent-decoded); the caller frees it; NULL when absent. */
char *barge_http_req_query(const struct barge_http_req *req, const char *name);

/* Adds a response header (copied). */
void barge_http_resp_header(struct barge_http_resp *resp, const char *name, const char *value);
/* Sets status, Content-Type and the body; takes ownership of body. */
void barge_http_resp_set(struct barge_http_resp *resp, int status, const char *content_type,
                         char *body, size_t len);

typedef void (*barge_http_handler)(struct barge_http_req *req, struct barge_http_resp *resp);

struct barge_http_server;

/* What a streaming route's start callback decides for a request. */
enum barge_http_body_mode {
    BARGE_HTTP_BODY_REFUSE = -1, /* answer with resp as start filled it; the body is discarded */
    BARGE_HTTP_BODY_BUFFER = 0,  /* buffer the body in req->body as on other routes */
    BARGE_HTTP_BODY_STREAM = 1,  /* hand the body to data() piece by piece */
};

/* A route whose bodies may be too large to hold in memory (registry blob
 * uploads) sees them as they arrive. The callbacks run in order: start once
 * the headers are in and data for each piece of a streamed body, both on the
 * connection's event thread, then the route's handler (with req->body empty
 * when the body was streamed; on the handler pool when the route's waits says
 * so) and finally done, on the event thread again. done also runs when the client goes
 * away mid-body, in which case the handler never runs; it releases what start
 * kept in req->stream_ud. */
struct barge_http_stream {
    enum barge_http_body_mode (*start)(struct barge_http_req *req, struct barge_http_resp *resp);
    /* Returns 0, or -1 to ignore the rest of the body (the handler still runs
     * and learns why from its own state). */
    int (*data)(struct barge_http_req *req, const char *buf, size_t len);
    /* handled: whether the handler ran. */
    void (*done)(struct barge_http_req *req, bool handled);
};

struct barge_http_route {
    const char *prefix; /* path prefix, e.g. "/v2/"; "" matches everything */
    barge_http_handler handler;
    size_t max_body; /* larger buffered bodies get 413; streamed ones are the route's affair */
    const struct barge_http_stream *stream; /* NULL: every body is buffered */
    /* Whether the handler may wait for this request (once its body is in):
     * then it runs on the handler pool. NULL: it never waits and always runs
     * on the event thread. */
    bool (*waits)(const struct barge_http_req *req);
};

/* For barge_http_route.waits: every request may wait; every request but a
 * GET or HEAD may wait. */
bool barge_http_waits_always(const struct barge_http_req *req);
bool barge_http_waits_unless_read(const struct barge_http_req *req);

/* Connection handling; 0 in a field picks its default. */
struct barge_http_limits {
    unsigned threads;         /* event threads (default: one per CPU this process may use) */
    unsigned handler_threads; /* threads for handlers that may wait (default: 4 per CPU, at
                                 least 8); started only when a route has waits */
    unsigned header_timeout;  /* seconds a new connection has to send its first request's
                                 headers (default 10) */
    unsigned idle_timeout;    /* seconds any connection may stay silent (default 60); parked
                                 requests never time out */
    unsigned max_connections; /* open connections in all (default 16384) */
    unsigned max_per_client;  /* open connections from one IP address (default 512) */
};

/* A listener's settings; zero or NULL in a field picks its default. */
struct barge_http_options {
    struct barge_http_limits limits; /* threads and connection limits count per address */
    /* More addresses (IP literals without a port, NULL-terminated) served on
     * the port the first one got. */
    const char *const *also_listen;
    /* Bind addresses the host does not have yet (IP_FREEBIND): a bridge
     * gets its address when its first task joins it. */
    bool freebind;
    /* The response header that carries each request's id; NULL: none. */
    const char *request_id_header;
    /* Runs on the handler's thread (event or pool) before and after each
     * handler and stream start, with the server argument: it clears what a handler may leave in
     * its thread for the next request. */
    void (*thread_reset)(void *server);
};

/* Starts listening on host:port ("127.0.0.1:4566"; port 0 picks one) and
 * on opts->also_listen. routes is a NULL-handler-terminated array tried in
 * order; the first route whose prefix matches the path serves the request.
 * server is passed to handlers in req->server. opts may be NULL (defaults).
 * An address in use fails with BARGE_ERR_CONFLICT. */
int barge_http_start(const char *listen, const struct barge_http_route *routes, void *server,
                     const struct barge_http_options *opts, struct barge_http_server **out,
                     struct barge_error **err);
/* The port actually bound (the same on every address). */
int barge_http_port(const struct barge_http_server *srv);
/* Answers parked requests (their handlers run once more and must answer),
 * then closes every connection and the listener. */
void barge_http_stop(struct barge_http_server *srv);

/* Long polls. Called by a handler (on a non-streaming route) instead of
 * filling resp: the request is parked without holding a thread (an event
 * thread or one of the handler pool) until
 * barge_http_resume_parked or deadline_ms (barge_monotonic_ms) passes; then
 * the handler runs again with the same req and a fresh resp. Returns false,
 * parking nothing, when the server is stopping: the handler answers now. */
bool barge_http_req_park(struct barge_http_req *req, int64_t deadline_ms);
/* Runs the handlers of every parked request again (they re-check what they
 * wait for). Any thread. */
void barge_http_resume_parked(struct barge_http_server *srv);

/* Percent-decodes s (plus signs stay as they are); the caller frees the result. */
char *barge_http_unescape(const char *s, size_t len);

#endif
