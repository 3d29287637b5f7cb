/* The websocket end barged keeps of an exec session (common/ws.h), driven
 * over a socket pair by frames written here as a client writes them (masked,
 * RFC 6455 section 5.3): messages in both directions, the bytes that came
 * with the handshake, and a close that lets the queued messages go first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <sys/socket.h>

#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "common/ws.h"

struct got {
    int kinds[8];
    char data[8][64];
    size_t n;
};

static void on_msg(void *ud, int kind, const uint8_t *data, size_t len)
{
    struct got *g = ud;
    if (g->n < 8 && len < 64) {
        g->kinds[g->n] = kind;
        memcpy(g->data[g->n], data, len);
        g->data[g->n][len] = '\0';
        g->n++;
    }
}

/* A masked binary frame of kind and text, as a client sends it; *len its
 * size. */
static size_t client_frame(uint8_t *out, int kind, const char *text)
{
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t n = strlen(text) + 1;
    out[0] = 0x82; /* FIN, binary */
    out[1] = (uint8_t)(0x80 | n);
    memcpy(out + 2, mask, 4);
    uint8_t *payload = out + 6;
    payload[0] = (uint8_t)kind;
    memcpy(payload + 1, text, n - 1);
    for (size_t i = 0; i < n; i++)
        payload[i] ^= mask[i % 4];
    return 6 + n;
}

static void test_accept_value_is_rfc6455s(void **state)
{
    /* The example of RFC 6455 section 1.3. */
    char *v = barge_ws_accept_value("dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(v, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    free(v);
}

static void test_messages_both_ways_and_handshake_bytes(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uint8_t early[64], later[64];
    size_t early_len = client_frame(early, BARGE_WS_RESIZE, "24 80");
    size_t later_len = client_frame(later, BARGE_WS_STDIN, "ls\n");
    struct got g = {0};
    /* The first frame came with the handshake: the server has it already. */
    struct barge_ws *ws = barge_ws_server_new(sv[0], (const char *)early, early_len, on_msg, &g);
    assert_int_equal(write(sv[1], later, later_len), (ssize_t)later_len);
    /* Without being told of a readable socket, the handshake's bytes are read. */
    assert_int_equal(barge_ws_pump(ws, 0), 0);
    assert_true(g.n >= 1);
    assert_int_equal(g.kinds[0], BARGE_WS_RESIZE);
    assert_string_equal(g.data[0], "24 80");
    assert_int_equal(barge_ws_pump(ws, POLLIN), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.kinds[1], BARGE_WS_STDIN);
    assert_string_equal(g.data[1], "ls\n");

    barge_ws_send(ws, BARGE_WS_STDOUT, "hi", 2);
    assert_true(barge_ws_pending(ws));
    assert_int_equal(barge_ws_pump(ws, POLLOUT), 0);
    uint8_t buf[64];
    /* Unmasked from the server: FIN+binary, length 3, the kind, "hi". */
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 5);
    assert_int_equal(buf[0], 0x82);
    assert_int_equal(buf[1], 3);
    assert_int_equal(buf[2], BARGE_WS_STDOUT);
    assert_memory_equal(buf + 3, "hi", 2);
    barge_ws_free(ws);
    close(sv[0]);
    close(sv[1]);
}

static void test_close_lets_queued_messages_go_first(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct barge_ws *ws = barge_ws_server_new(sv[0], NULL, 0, NULL, NULL);
    barge_ws_send(ws, BARGE_WS_EXIT, "3", 1);
    barge_ws_close(ws);
    assert_int_equal(barge_ws_pump(ws, 0), 0); /* waits for the peer's close */
    uint8_t buf[64];
    ssize_t n = read(sv[1], buf, sizeof(buf));
    /* The exit message, then the close frame (opcode 8). */
    assert_true(n >= 5);
    assert_int_equal(buf[0], 0x82);
    assert_int_equal(buf[2], BARGE_WS_EXIT);
    assert_int_equal(buf[3], '3');
    assert_int_equal(buf[4], 0x88);
    barge_ws_free(ws);
    close(sv[0]);
    close(sv[1]);
}

static void test_a_vanished_peer_ends_the_connection(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct barge_ws *ws = barge_ws_server_new(sv[0], NULL, 0, NULL, NULL);
    close(sv[1]);
    assert_int_equal(barge_ws_pump(ws, POLLIN), 1);
    assert_int_equal(barge_ws_events(ws), 0);
    barge_ws_free(ws);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_value_is_rfc6455s),
        cmocka_unit_test(test_messages_both_ways_and_handshake_bytes),
        cmocka_unit_test(test_close_lets_queued_messages_go_first),
        cmocka_unit_test(test_a_vanished_peer_ends_the_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
