/* WebSocket connections of exec sessions: wslay does the framing (masking,
 * fragments, pings, the closing handshake); here are the transports (a raw
 * socket on barged's side, a libcurl connect-only handle on the clients',
 * which brings TLS with it) and the HTTP/1.1 upgrade handshake. */
#include "common/ws.h"

#include <sys/socket.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "common/ids.h"
#include "common/util.h"

#define WS_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HANDSHAKE_MS   15000
#define MAX_HEADER     16384
#define MAX_MSG_LENGTH (1u << 20)

struct barge_ws {
    wslay_event_context_ptr ctx;
    CURL *curl; /* client: the connection; NULL on the server end */
    int fd;
    char *extra; /* bytes received before the framing took over */
    size_t extra_len, extra_off;
    bool lost;
    /* barge_ws_close was called: the close frame goes once the messages
     * queued before it are written (wslay sends control frames first and
     * drops data queued behind a close). */
    bool closing;
    barge_ws_msg_fn fn;
    void *ud;
};

char *barge_ws_accept_value(const char *key)
{
    _cleanup_free_ char *cat = barge_xasprintf("%s%s", key, WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(cat, strlen(cat), md, &mdlen, EVP_sha1(), NULL);
    char *out = barge_xmalloc(4 * ((mdlen + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return out;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    struct barge_ws *ws = ud;
    if (ws->extra_off < ws->extra_len) {
        size_t n = ws->extra_len - ws->extra_off;
        if (n > len)
            n = len;
        memcpy(buf, ws->extra + ws->extra_off, n);
        ws->extra_off += n;
        return (ssize_t)n;
    }
    ssize_t n;
    if (ws->curl) {
        size_t got = 0;
        CURLcode rc = curl_easy_recv(ws->curl, buf, len, &got);
        if (rc == CURLE_AGAIN) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        n = rc == CURLE_OK ? (ssize_t)got : -1;
    } else {
        do
            n = recv(ws->fd, buf, len, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
    }
    if (n <= 0) {
        /* The peer went away (0) or the connection broke. */
        ws->lost = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    struct barge_ws *ws = ud;
    ssize_t n;
    if (ws->curl) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(ws->curl, data, len, &sent);
        if (rc == CURLE_AGAIN) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        n = rc == CURLE_OK ? (ssize_t)sent : -1;
    } else {
        do
            n = send(ws->fd, data, len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
    }
    if (n < 0) {
        ws->lost = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    barge_random_bytes(buf, len);
    return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    struct barge_ws *ws = ud;
    if (arg->opcode != WSLAY_BINARY_FRAME || arg->msg_length == 0 || !ws->fn)
        return;
    ws->fn(ws->ud, arg->msg[0], arg->msg + 1, arg->msg_length - 1);
}

static struct barge_ws *ws_new(bool client, int fd, const char *extra, size_t extra_len,
                               barge_ws_msg_fn fn, void *ud)
{
    struct barge_ws *ws = barge_xcalloc(1, sizeof(*ws));
    ws->fd = fd;
    ws->fn = fn;
    ws->ud = ud;
    if (extra_len) {
        ws->extra = barge_xmalloc(extra_len);
        memcpy(ws->extra, extra, extra_len);
        ws->extra_len = extra_len;
    }
    struct wslay_event_callbacks cbs = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .genmask_callback = genmask_cb,
        .on_msg_recv_callback = msg_cb,
    };
    int r = client ? wslay_event_context_client_init(&ws->ctx, &cbs, ws)
                   : wslay_event_context_server_init(&ws->ctx, &cbs, ws);
    if (r != 0)
        abort();
    wslay_event_config_set_max_recv_msg_length(ws->ctx, MAX_MSG_LENGTH);
    return ws;
}

struct barge_ws *barge_ws_server_new(int fd, const char *extra, size_t extra_len,
                                     barge_ws_msg_fn fn, void *ud)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return ws_new(false, fd, extra, extra_len, fn, ud);
}

void barge_ws_free(struct barge_ws *ws)
{
    if (!ws)
        return;
    wslay_event_context_free(ws->ctx);
    if (ws->curl)
        curl_easy_cleanup(ws->curl);
    free(ws->extra);
    free(ws);
}

int barge_ws_fd(const struct barge_ws *ws)
{
    return ws->fd;
}

short barge_ws_events(const struct barge_ws *ws)
{
    if (ws->lost)
        return 0;
    short ev = 0;
    if (wslay_event_want_read(ws->ctx))
        ev |= POLLIN;
    if (wslay_event_want_write(ws->ctx) || (ws->closing && !wslay_event_get_close_sent(ws->ctx)))
        ev |= POLLOUT;
    return ev;
}

bool barge_ws_pending(const struct barge_ws *ws)
{
    return !ws->lost && wslay_event_want_write(ws->ctx);
}

int barge_ws_pump(struct barge_ws *ws, short revents)
{
    /* Bytes left over from the handshake are read whatever poll says. */
    bool readable = (revents & (POLLIN | POLLHUP | POLLERR)) || ws->extra_off < ws->extra_len;
    if (!ws->lost && readable && wslay_event_want_read(ws->ctx) && wslay_event_recv(ws->ctx) != 0)
        ws->lost = true;
    if (!ws->lost && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0)
        ws->lost = true;
    if (!ws->lost && ws->closing && !wslay_event_want_write(ws->ctx) &&
        !wslay_event_get_close_sent(ws->ctx)) {
        wslay_event_queue_close(ws->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        if (wslay_event_send(ws->ctx) != 0)
            ws->lost = true;
    }
    if (ws->lost)
        return 1;
    bool close_due = ws->closing && !wslay_event_get_close_sent(ws->ctx);
    return !wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx) && !close_due;
}

void barge_ws_send(struct barge_ws *ws, int kind, const void *data, size_t len)
{
    uint8_t *buf = barge_xmalloc(len + 1);
    buf[0] = (uint8_t)kind;
    if (len)
        memcpy(buf + 1, data, len);
    struct wslay_event_msg msg = {WSLAY_BINARY_FRAME, buf, len + 1};
    /* Refused only after the close was queued: the message is dropped. */
    wslay_event_queue_msg(ws->ctx, &msg);
    free(buf);
}

void barge_ws_close(struct barge_ws *ws)
{
    ws->closing = true;
}

/* ---- the client's handshake ---- */

/* Waits until fd is ready for events or deadline passes: 0 when ready. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - barge_monotonic_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int send_all(CURL *curl, int fd, const char *data, size_t len, int64_t deadline)
{
    while (len > 0) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(curl, data, len, &n);
        if (rc == CURLE_AGAIN) {
            if (wait_fd(fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK)
            return -1;
        data += n;
        len -= n;
    }
    return 0;
}

/* Reads what arrives next into buf: 1, or 0 when the peer closed, -1 when
 * the deadline passed. */
static int read_more(CURL *curl, int fd, struct barge_buf *buf, int64_t deadline)
{
    char tmp[4096];
    for (;;) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(curl, tmp, sizeof(tmp), &n);
        if (rc == CURLE_AGAIN) {
            if (wait_fd(fd, POLLIN, deadline) < 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK || n == 0)
            return 0; /* closed */
        barge_buf_addn(buf, tmp, n);
        return 1;
    }
}

/* The value of header name in the response head (caller frees), or NULL. */
static char *head_value(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ' || *h == '\t')
                h++;
            return barge_xstrndup(h, strcspn(h, "\r\n"));
        }
    }
    return NULL;
}

int barge_ws_connect(const char *url, const char *token, barge_ws_msg_fn fn, void *ud,
                     struct barge_ws **out, struct barge_error **err)
{
    *out = NULL;
    _cleanup_free_ char *http_url = NULL;
    if (barge_str_has_prefix(url, "ws://"))
        http_url = barge_xasprintf("http://%s", url + 5);
    else if (barge_str_has_prefix(url, "wss://"))
        http_url = barge_xasprintf("https://%s", url + 6);
    else
        http_url = barge_xstrdup(url);
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = -1;
    CURL *curl = NULL;
    struct barge_buf head = {0};
    _cleanup_free_ char *req = NULL, *want = NULL, *got = NULL;
    if (curl_url_set(u, CURLUPART_URL, http_url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        barge_error_set(err, BARGE_ERR_INVALID, "invalid stream URL '%s'", url);
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl = curl_easy_init();
    if (!curl)
        abort();
    curl_easy_setopt(curl, CURLOPT_URL, http_url);
    curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode cr = curl_easy_perform(curl);
    if (cr != CURLE_OK) {
        barge_error_set(err, BARGE_ERR_IO, "cannot connect to '%s': %s", url,
                        curl_easy_strerror(cr));
        goto out;
    }
    curl_socket_t sock = CURL_SOCKET_BAD;
    curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &sock);
    unsigned char nonce[16];
    barge_random_bytes(nonce, sizeof(nonce));
    char key[32];
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    req = barge_xasprintf(
        "GET %s%s%s HTTP/1.1\r\nHost: %s%s%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
        path, query ? "?" : "", query ? query : "", host, port ? ":" : "", port ? port : "", key,
        token ? token : "");
    int64_t deadline = barge_monotonic_ms() + HANDSHAKE_MS;
    if (send_all(curl, (int)sock, req, strlen(req), deadline) < 0) {
        barge_error_set(err, BARGE_ERR_IO, "cannot send the handshake to '%s'", url);
        goto out;
    }
    char *end = NULL;
    while (!(end = head.data ? strstr(head.data, "\r\n\r\n") : NULL)) {
        if (head.len > MAX_HEADER || read_more(curl, (int)sock, &head, deadline) <= 0) {
            barge_error_set(err, BARGE_ERR_IO, "no handshake answer from '%s'", url);
            goto out;
        }
    }
    size_t head_len = (size_t)(end - head.data) + 4;
    int status = 0;
    sscanf(head.data, "HTTP/%*s %d", &status);
    if (status != 101) {
        /* barged closes after a refusal: its reason is the rest. */
        while (head.len < MAX_HEADER && read_more(curl, (int)sock, &head, deadline) > 0)
            ;
        const char *body = head.data + head_len;
        barge_error_set(
            err, status == 401 || status == 403 ? BARGE_ERR_ACCESS_DENIED : BARGE_ERR_IO,
            "the session was refused (HTTP %d): %.*s", status, (int)strcspn(body, "\r\n"), body);
        goto out;
    }
    want = barge_ws_accept_value(key);
    got = head_value(head.data, "Sec-WebSocket-Accept");
    if (!got || strcmp(got, want) != 0) {
        barge_error_set(err, BARGE_ERR_IO, "'%s' answered the handshake wrongly", url);
        goto out;
    }
    struct barge_ws *ws =
        ws_new(true, (int)sock, head.data + head_len, head.len - head_len, fn, ud);
    ws->curl = barge_steal(&curl);
    *out = ws;
    rc = 0;
out:
    barge_buf_release(&head);
    if (curl)
        curl_easy_cleanup(curl);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}
