/* WebSocket connections of exec sessions (ExecuteCommand): the framing is
 * wslay's; this file adds the opening handshake and the transport. barged is
 * the server end of every such connection (over a socket libmicrohttpd
 * upgraded); `barge exec` and the agent are clients (libcurl connect-only, so
 * http and https endpoints both work).
 *
 * Every message is binary: one byte of kind, then the payload. */
#ifndef BARGE_COMMON_WS_H
#define BARGE_COMMON_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

enum barge_ws_kind {
    BARGE_WS_STDIN = 0,     /* client -> agent: input bytes */
    BARGE_WS_STDOUT = 1,    /* agent -> client: output (the terminal's, when interactive) */
    BARGE_WS_STDERR = 2,    /* agent -> client: standard error of a non-interactive command */
    BARGE_WS_EXIT = 3,      /* agent -> client: the exit status, in decimal */
    BARGE_WS_RESIZE = 4,    /* client -> agent: "rows cols", in decimal */
    BARGE_WS_STDIN_EOF = 5, /* client -> agent: no more input */
    BARGE_WS_ERROR = 6,     /* agent or barged -> client: why the session failed (text) */
};

/* Called for each message received: kind and payload (borrowed). */
typedef void (*barge_ws_msg_fn)(void *ud, int kind, const uint8_t *data, size_t len);

struct barge_ws;

/* Opens a client connection to url (ws://, wss://, http:// or https://)
 * sending "Authorization: Bearer <token>". A refusal fails with the server's
 * answer in the message. *out is the caller's (barge_ws_free). */
int barge_ws_connect(const char *url, const char *token, barge_ws_msg_fn fn, void *ud,
                     struct barge_ws **out, struct barge_error **err);
/* The server end over fd, a socket whose handshake was answered already;
 * extra holds bytes read past the request's headers (copied). fd stays the
 * caller's. */
struct barge_ws *barge_ws_server_new(int fd, const char *extra, size_t extra_len,
                                     barge_ws_msg_fn fn, void *ud);
void barge_ws_free(struct barge_ws *ws);

/* The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (caller
 * frees). */
char *barge_ws_accept_value(const char *key);

/* The socket to poll and the events to poll it for (0: nothing more to do). */
int barge_ws_fd(const struct barge_ws *ws);
short barge_ws_events(const struct barge_ws *ws);
/* Reads and writes what it can after poll reported revents (0: only write
 * what is queued, and read what came with the handshake). Returns 0 while
 * the connection lasts, 1 once it is over (closed by either end, or lost).
 * Call it once before the first poll: messages that arrived with the
 * handshake were read from the socket already, so poll would not tell of
 * them. */
int barge_ws_pump(struct barge_ws *ws, short revents);
/* Queues a message (copied). */
void barge_ws_send(struct barge_ws *ws, int kind, const void *data, size_t len);
/* Starts the closing handshake once the queued messages are written;
 * nothing can be sent after it. */
void barge_ws_close(struct barge_ws *ws);
/* Whether data is queued and not yet written. */
bool barge_ws_pending(const struct barge_ws *ws);

#endif
