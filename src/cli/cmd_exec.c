/* exec: ecspresso's `exec` (ECS Exec). Calls ExecuteCommand for a task of
 * the service (--id, or the one task running, or one chosen as `tasks
 * --find` does), then speaks the session's websocket itself: no
 * session-manager-plugin. With a terminal on stdin the session is
 * interactive: the terminal is put in raw mode (and restored however the
 * session ends) and its size follows SIGWINCH; otherwise the input is piped
 * to the command and its end ends the command's input. barge's exit status
 * is the command's. */
#include <sys/ioctl.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/json.h"
#include "common/ws.h"

/* What the messages of the session tell. */
struct session {
    bool exited;
    int status;
    char *error;
};

static void on_msg(void *ud, int kind, const uint8_t *data, size_t len)
{
    struct session *s = ud;
    if (kind == BARGE_WS_STDOUT || kind == BARGE_WS_STDERR) {
        int fd = kind == BARGE_WS_STDOUT ? 1 : 2;
        while (len > 0) {
            ssize_t n = write(fd, data, len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            data += n;
            len -= (size_t)n;
        }
    } else if (kind == BARGE_WS_EXIT) {
        _cleanup_free_ char *text = barge_xstrndup((const char *)data, len);
        s->exited = true;
        s->status = atoi(text);
    } else if (kind == BARGE_WS_ERROR) {
        free(s->error);
        s->error = barge_xstrndup((const char *)data, len);
    }
}

static int winch_pipe[2] = {-1, -1};

static void on_winch(int sig)
{
    int saved = errno;
    if (write(winch_pipe[1], "w", 1) < 0) {
        /* full: a resize is pending already */
    }
    errno = saved;
}

static void send_size(struct barge_ws *ws)
{
    struct winsize w;
    if (ioctl(0, TIOCGWINSZ, &w) < 0 || w.ws_row == 0 || w.ws_col == 0)
        return;
    char text[32];
    int n = snprintf(text, sizeof(text), "%u %u", w.ws_row, w.ws_col);
    barge_ws_send(ws, BARGE_WS_RESIZE, text, (size_t)n);
}

/* Relays stdin and the session until the session ends. */
static void relay(struct barge_ws *ws, bool interactive)
{
    bool in_open = true;
    char buf[16384];
    if (barge_ws_pump(ws, 0) != 0)
        return;
    while (barge_ws_events(ws)) {
        /* Input is read only once what was read before is sent. */
        bool room = in_open && !barge_ws_pending(ws);
        struct pollfd p[3] = {
            {barge_ws_fd(ws), barge_ws_events(ws), 0},
            {room ? 0 : -1, POLLIN, 0},
            {interactive ? winch_pipe[0] : -1, POLLIN, 0},
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (p[2].revents) {
            while (read(winch_pipe[0], buf, sizeof(buf)) > 0)
                ;
            send_size(ws);
        }
        if (p[1].revents) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n > 0) {
                barge_ws_send(ws, BARGE_WS_STDIN, buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                in_open = false;
                barge_ws_send(ws, BARGE_WS_STDIN_EOF, NULL, 0);
            }
        }
        if (barge_ws_pump(ws, p[0].revents) != 0)
            return;
    }
}

/* The running tasks of the service's family, described. */
static int running_tasks(struct barge_cli_app *app, json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *family = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (app->cfg->service && barge_cli_describe_service(app, &svc, err) < 0)
        return -1;
    if (svc) {
        family = barge_cli_td_family(barge_json_str(svc, "taskDefinition", ""));
    } else {
        _cleanup_json_ json_t *td = NULL;
        if (barge_cli_load_taskdef(app, NULL, &td, err) < 0)
            return -1;
        family = barge_xstrdup(barge_json_str(td, "family", ""));
    }
    _cleanup_json_ json_t *in =
        json_pack("{s:s, s:s, s:s, s:i}", "cluster", app->cfg->cluster, "family", family,
                  "desiredStatus", "RUNNING", "maxResults", 100);
    _cleanup_json_ json_t *list = NULL;
    if (barge_cli_call(app, "ecs", "ListTasks", in, &list, err) < 0)
        return -1;
    json_t *arns = json_object_get(list, "taskArns");
    *out = json_array();
    if (!json_array_size(arns))
        return 0;
    _cleanup_json_ json_t *din =
        json_pack("{s:s, s:O}", "cluster", app->cfg->cluster, "tasks", arns);
    _cleanup_json_ json_t *desc = NULL;
    if (barge_cli_call(app, "ecs", "DescribeTasks", din, &desc, err) < 0) {
        json_decref(barge_steal(out));
        return -1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(desc, "tasks"), i, t)
    {
        if (barge_streq(barge_json_str(t, "lastStatus", NULL), "RUNNING"))
            json_array_append(*out, t);
    }
    return 0;
}

int barge_cli_cmd_exec(struct barge_cli_app *app, int argc, char **argv)
{
    const char *id = NULL, *command = "sh", *container = NULL;
    bool port_forward = false;
    const char *local_port = NULL, *port = NULL, *host = NULL;
    const struct barge_cli_opt opts[] = {
        {"id", BARGE_CLI_OPT_STR, &id, "ID", "the task (default: one of the service's)", false,
         NULL},
        {"command", BARGE_CLI_OPT_STR, &command, "COMMAND", "what to run (default sh)", false,
         NULL},
        {"container", BARGE_CLI_OPT_STR, &container, "NAME",
         "the container (needed when the task has several)", false, NULL},
        {"port-forward", BARGE_CLI_OPT_BOOL, &port_forward, NULL, "not supported", false, NULL},
        {"local-port", BARGE_CLI_OPT_STR, &local_port, "PORT", "not supported", false, NULL},
        {"port", BARGE_CLI_OPT_STR, &port, "PORT", "not supported", false, NULL},
        {"host", BARGE_CLI_OPT_STR, &host, "HOST", "not supported", false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge exec [options]",
                        "Run a command in a container of a running task (ECS Exec).", opts, argc,
                        argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (port_forward || local_port || port || host) {
        barge_error_set(&err, BARGE_ERR_UNSUPPORTED,
                        "--port-forward is not supported: barge exec runs commands only");
        return barge_cli_fail(app, err);
    }
    _cleanup_free_ char *task = id ? barge_xstrdup(id) : NULL;
    if (!task) {
        _cleanup_json_ json_t *tasks = NULL;
        if (running_tasks(app, &tasks, &err) < 0)
            return barge_cli_fail(app, err);
        if (json_array_size(tasks) == 0) {
            barge_error_set(&err, BARGE_ERR_NOT_FOUND, "no task of the service is running");
            return barge_cli_fail(app, err);
        }
        long k = 0;
        if (json_array_size(tasks) > 1 && (k = barge_cli_tasks_pick(app, tasks, &err)) < 0)
            return barge_cli_fail(app, err);
        task = barge_xstrdup(barge_json_str(json_array_get(tasks, (size_t)k), "taskArn", ""));
    }
    bool interactive = isatty(0);
    _cleanup_json_ json_t *in =
        json_pack("{s:s, s:s, s:s, s:b}", "cluster", app->cfg->cluster, "task", task, "command",
                  command, "interactive", interactive);
    if (container)
        json_object_set_new(in, "container", json_string(container));
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(app, "ecs", "ExecuteCommand", in, &out, &err) < 0)
        return barge_cli_fail(app, err);
    json_t *sess = json_object_get(out, "session");
    struct session s = {0};
    struct barge_ws *ws = NULL;
    if (barge_ws_connect(barge_json_str(sess, "streamUrl", ""),
                         barge_json_str(sess, "tokenValue", ""), on_msg, &s, &ws, &err) < 0)
        return barge_cli_fail(app, err);
    struct termios saved;
    bool raw = interactive && tcgetattr(0, &saved) == 0;
    struct sigaction old_winch;
    if (interactive) {
        if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
            interactive = false;
        struct sigaction sa = {.sa_handler = on_winch};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGWINCH, &sa, &old_winch);
        send_size(ws);
    }
    if (raw) {
        struct termios t = saved;
        cfmakeraw(&t);
        tcsetattr(0, TCSANOW, &t);
    }
    /* A dead session's stream must not kill us with SIGPIPE before the
     * terminal is restored. */
    signal(SIGPIPE, SIG_IGN);
    relay(ws, interactive);
    barge_ws_free(ws);
    if (raw)
        tcsetattr(0, TCSANOW, &saved);
    if (interactive) {
        sigaction(SIGWINCH, &old_winch, NULL);
        close(winch_pipe[0]);
        close(winch_pipe[1]);
    }
    if (s.error) {
        barge_error_set(&err, BARGE_ERR_IO, "%s", s.error);
        free(s.error);
        barge_cli_fail(app, err);
        return s.exited ? s.status : 1;
    }
    if (!s.exited) {
        barge_error_set(&err, BARGE_ERR_IO, "the session ended without the command's exit status");
        return barge_cli_fail(app, err);
    }
    return s.status;
}
