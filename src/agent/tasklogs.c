/* Task logs read on demand (tasklogs.h): conmon writes every container's
 * output to <data dir>/logs/<task id>/<container>.log whatever its log
 * driver, and the file outlives the task, so a STOPPED task's output can be
 * read for as long as the host keeps it. */
#include "agent/tasklogs.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/logparse.h"
#include "common/json.h"
#include "common/log.h"

struct run {
    char *text;
    size_t len;
    int64_t timestamp;
    bool is_stderr;
};

static void emit(const struct run *r, int64_t since, json_t *events)
{
    if (r->timestamp < since)
        return;
    size_t n = 0;
    _cleanup_free_ char *clean = barge_logparse_utf8_clean(r->text ? r->text : "", r->len, &n);
    json_array_append_new(
        events, json_pack("{s:I, s:s, s:s%}", "timestamp", (json_int_t)r->timestamp, "stream",
                          r->is_stderr ? "stderr" : "stdout", "message", clean, n));
}

size_t barge_tasklogs_parse(const char *buf, size_t len, bool full, int64_t since, json_t *events)
{
    const char *last_nl = memrchr(buf, '\n', len);
    size_t end = last_nl ? (size_t)(last_nl - buf) + 1 : full ? len : 0;
    size_t pos = 0, consumed = 0, run_start = 0;
    bool in_run = false;
    struct run r = {0};
    while (pos < end) {
        const char *nl = memchr(buf + pos, '\n', end - pos);
        size_t line_end = nl ? (size_t)(nl - buf) : end;
        size_t next = nl ? line_end + 1 : end;
        struct barge_logparse_record rec;
        if (barge_logparse_k8s_record(buf + pos, line_end - pos, &rec) == 0) {
            if (!in_run) {
                in_run = true;
                run_start = pos;
                r.len = 0;
                r.timestamp = rec.timestamp;
                r.is_stderr = rec.is_stderr;
            }
            r.text = barge_xrealloc(r.text, r.len + rec.len + 1);
            memcpy(r.text + r.len, rec.text, rec.len);
            r.len += rec.len;
            if (!rec.partial) {
                emit(&r, since, events);
                in_run = false;
                consumed = next;
            }
        } else if (!in_run) {
            consumed = next;
        }
        pos = next;
    }
    /* A line longer than the whole read cannot wait for its end. */
    if (in_run && run_start == 0) {
        emit(&r, since, events);
        consumed = end;
    }
    free(r.text);
    return consumed;
}

/* Task ids and container names as ECS allows them: nothing that could leave
 * the logs directory. */
static bool valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 255)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

/* Reads the slice into body (events, nextOffset, more, size). */
static int read_slice(struct barge_agent *a, const json_t *req, json_t *body,
                      struct barge_error **err)
{
    const char *task_id = barge_json_str(req, "taskId", NULL);
    const char *container = barge_json_str(req, "container", NULL);
    json_int_t offset = barge_json_int(req, "offset", 0);
    json_int_t since = barge_json_int(req, "since", 0);
    json_int_t limit = barge_json_int(req, "limit", 0);
    if (!valid_name(task_id) || !valid_name(container) || offset < 0 || limit <= 0)
        return barge_error_set(err, BARGE_ERR_INVALID, "malformed log request for task '%s'",
                               task_id ? task_id : "");
    _cleanup_free_ char *path =
        barge_xasprintf("%s/logs/%s/%s.log", a->cfg.data_dir, task_id, container);
    json_t *events = json_array();
    json_object_set_new(body, "events", events);
    json_object_set_new(body, "nextOffset", json_integer(offset));
    json_object_set_new(body, "more", json_false());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* The container has not started yet (or never will): no output. */
        if (errno == ENOENT) {
            json_object_set_new(body, "size", json_integer(0));
            return 0;
        }
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s'", path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot stat '%s'", path);
    }
    json_object_set_new(body, "size", json_integer((json_int_t)st.st_size));
    if (offset >= st.st_size) {
        close(fd);
        return 0;
    }
    size_t want = (size_t)(st.st_size - offset);
    if (want > (size_t)limit)
        want = (size_t)limit;
    _cleanup_free_ char *buf = barge_xmalloc(want);
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, buf + got, want - got, (off_t)offset + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    bool full = got == (size_t)limit;
    size_t used = barge_tasklogs_parse(buf, got, full, since, events);
    json_object_set_new(body, "nextOffset", json_integer(offset + (json_int_t)used));
    /* Only a read cut short by the cap says more is there now; an unfinished
     * last line is not worth asking again at once. */
    json_object_set_new(body, "more", json_boolean(full && used > 0));
    return 0;
}

void barge_agent_task_logs_answer(struct barge_agent *a, struct barge_agent_client *client,
                                  const json_t *request)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *body = json_pack("{s:s}", "id", barge_json_str(request, "id", ""));
    if (read_slice(a, request, body, &err) < 0) {
        barge_warn("log request: %s", err->message);
        json_object_clear(body);
        json_object_set_new(body, "id", json_string(barge_json_str(request, "id", "")));
        json_object_set_new(body, "error", json_string(err->message));
        barge_error_free(barge_steal(&err));
    }
    _cleanup_json_ json_t *out = NULL;
    int status =
        barge_agent_client_post(client, "/agent/task-logs", body, a->token, NULL, 10, &out, &err);
    /* 404: the client stopped waiting; nothing to do. */
    if (status != 200 && status != 404)
        barge_warn("answering log request %s: %s", barge_json_str(request, "id", "?"),
                   err ? err->message : barge_json_str(out, "message", "server error"));
}
