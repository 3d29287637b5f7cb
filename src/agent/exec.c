/* The agent's half of ECS Exec: a poll answer's execRequests name a session
 * barged opened with ExecuteCommand. For each, a thread of its own opens the
 * session's agent websocket on barged (agents only ever connect out), runs
 * the command in the container with the runtime's exec (on a terminal of
 * its own when interactive, with pipes otherwise) and relays: input and
 * terminal sizes in, output out, then the exit status. The command is
 * killed when the session's stream closes first. */
#include "agent/exec.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ws.h"

#define READ_CHUNK 32768
/* Input buffered for a command that does not read it yet. */
#define MAX_INPUT (1 << 20)
/* How long the last messages may take to reach barged. */
#define FLUSH_MS 5000

struct job {
    struct barge_agent *a;
    json_t *req;
    char *server;
    struct barge_runtime_exec_proc *proc;
    struct barge_buf input; /* received, not yet written to the command */
    size_t input_off;
    bool input_eof;
};

static void on_msg(void *ud, int kind, const uint8_t *data, size_t len)
{
    struct job *j = ud;
    if (!j->proc)
        return;
    if (kind == BARGE_WS_STDIN && !j->input_eof) {
        barge_buf_addn(&j->input, data, len);
    } else if (kind == BARGE_WS_STDIN_EOF) {
        j->input_eof = true;
    } else if (kind == BARGE_WS_RESIZE) {
        _cleanup_free_ char *text = barge_xstrndup((const char *)data, len);
        unsigned rows = 0, cols = 0;
        if (sscanf(text, "%u %u", &rows, &cols) == 2)
            barge_runtime_exec_proc_resize(j->proc, rows, cols);
    }
}

/* Writes what input is buffered; closes the command's input after the end
 * of it was received. */
static void write_input(struct job *j)
{
    int fd = barge_runtime_exec_proc_input(j->proc);
    while (fd >= 0 && j->input_off < j->input.len) {
        ssize_t n = write(fd, j->input.data + j->input_off, j->input.len - j->input_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            /* The command stopped reading: what is left goes nowhere. */
            j->input_off = j->input.len;
            break;
        }
        j->input_off += (size_t)n;
    }
    barge_buf_release(&j->input);
    j->input = (struct barge_buf){0};
    j->input_off = 0;
    if (j->input_eof)
        barge_runtime_exec_proc_close_input(j->proc);
}

/* Sends what fd has to read as kind; false once it is at its end. */
static bool forward(struct barge_ws *ws, int fd, int kind, bool drain)
{
    char buf[READ_CHUNK];
    do {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false; /* closed (a terminal says EIO when its last user is gone) */
        barge_ws_send(ws, kind, buf, (size_t)n);
    } while (drain);
    return true;
}

/* Relays until the command exits (returns its status) or the stream
 * closes (returns -1). */
static int relay(struct job *j, struct barge_ws *ws)
{
    int out_fd = barge_runtime_exec_proc_output(j->proc);
    int err_fd = barge_runtime_exec_proc_errput(j->proc);
    if (barge_ws_pump(ws, 0) != 0)
        return -1;
    for (;;) {
        /* Output is read only when what was read before is on its way, so
         * a slow reader slows the command down instead of filling memory. */
        bool room = !barge_ws_pending(ws);
        int in_fd = barge_runtime_exec_proc_input(j->proc);
        /* Likewise, input is taken only as fast as the command reads it. */
        short ws_events = barge_ws_events(ws);
        if (j->input.len - j->input_off > MAX_INPUT)
            ws_events &= (short)~POLLIN;
        struct pollfd p[5] = {
            {barge_ws_fd(ws), ws_events, 0},
            {room ? out_fd : -1, POLLIN, 0},
            {room ? err_fd : -1, POLLIN, 0},
            {barge_runtime_exec_proc_exitfd(j->proc), POLLIN, 0},
            {j->input.len > j->input_off ? in_fd : -1, POLLOUT, 0},
        };
        if (poll(p, 5, -1) < 0 && errno != EINTR)
            return -1;
        if (barge_ws_pump(ws, p[0].revents) != 0)
            return -1;
        if (p[1].revents && !forward(ws, out_fd, BARGE_WS_STDOUT, false))
            out_fd = -1;
        if (p[2].revents && !forward(ws, err_fd, BARGE_WS_STDERR, false))
            err_fd = -1;
        if (j->input.len > j->input_off || j->input_eof)
            write_input(j);
        if (p[3].revents) {
            /* Whatever the command wrote before it ended is readable now. */
            if (out_fd >= 0)
                forward(ws, out_fd, BARGE_WS_STDOUT, true);
            if (err_fd >= 0)
                forward(ws, err_fd, BARGE_WS_STDERR, true);
            return barge_runtime_exec_proc_reap(j->proc);
        }
    }
}

/* Sends the queued messages and the closing handshake, for FLUSH_MS at
 * most. */
static void finish(struct barge_ws *ws)
{
    barge_ws_close(ws);
    int64_t deadline = barge_monotonic_ms() + FLUSH_MS;
    while (barge_ws_pump(ws, 0) == 0) {
        int64_t left = deadline - barge_monotonic_ms();
        if (left <= 0)
            break;
        struct pollfd p = {barge_ws_fd(ws), barge_ws_events(ws), 0};
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
            break;
        if (barge_ws_pump(ws, p.revents) != 0)
            break;
    }
}

static void fail(struct barge_ws *ws, const char *id, const char *msg)
{
    barge_warn("exec session %s: %s", id, msg);
    barge_ws_send(ws, BARGE_WS_ERROR, msg, strlen(msg));
    finish(ws);
}

/* Runs the session's command and relays over ws. */
static void run(struct job *j, struct barge_ws *ws)
{
    const char *id = barge_json_str(j->req, "sessionId", "");
    const char *task = barge_json_str(j->req, "taskArn", "");
    const char *name = barge_json_str(j->req, "containerName", "");
    bool tty = barge_json_bool(j->req, "interactive", true);
    _cleanup_error_ struct barge_error *err = NULL;
    char ctr[80];
    if (!barge_engine_container_id(j->a->engine, task, name, ctr, sizeof(ctr))) {
        _cleanup_free_ char *msg =
            barge_xasprintf("this host runs no container '%s' of task '%s'", name, task);
        fail(ws, id, msg);
        return;
    }
    json_t *cmd = barge_json_array(j->req, "command");
    size_t n = json_array_size(cmd);
    _cleanup_free_ const char **argv = barge_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        argv[i] = json_string_value(json_array_get(cmd, i));
    if (barge_runtime_exec_open(j->a->rt, ctr, argv, tty, 24, 80, &j->proc, &err) < 0) {
        fail(ws, id, err->message);
        return;
    }
    barge_info("exec session %s: running '%s' in container %s of task %s", id,
               argv[0] ? argv[0] : "", name, task);
    int status = relay(j, ws);
    if (status >= 0) {
        char text[16];
        int len = snprintf(text, sizeof(text), "%d", status);
        barge_ws_send(ws, BARGE_WS_EXIT, text, (size_t)len);
        barge_info("exec session %s: exit status %d", id, status);
    } else {
        barge_info("exec session %s: the stream closed; the command is killed", id);
    }
    finish(ws);
}

static void *session(void *ud)
{
    struct job *j = ud;
    const char *id = barge_json_str(j->req, "sessionId", "");
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_free_ char *url = barge_xasprintf("%s/exec/%s/agent", j->server, id);
    struct barge_ws *ws = NULL;
    if (barge_ws_connect(url, barge_json_str(j->req, "token", ""), on_msg, j, &ws, &err) < 0)
        barge_warn("exec session %s: %s", id, err->message);
    else
        run(j, ws);
    barge_runtime_exec_proc_free(j->proc);
    barge_ws_free(ws);
    barge_buf_release(&j->input);
    json_decref(j->req);
    free(j->server);
    free(j);
    return NULL;
}

void barge_agent_exec_start(struct barge_agent *a, struct barge_agent_client *client,
                            const json_t *request)
{
    struct job *j = barge_xcalloc(1, sizeof(*j));
    j->a = a;
    j->req = json_deep_copy(request);
    j->server = barge_xstrdup(barge_agent_client_server(client));
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, session, j) != 0)
        abort();
    pthread_attr_destroy(&attr);
}
