/* The awslogs shipper (logship.h): one thread walks every source, reads what
 * conmon appended since the last pass, turns it into events and sends them
 * in batches. A source is:
 *
 *   acked     the durable resume offset: everything before it is in barged
 *             (or was dropped on purpose); a restart reads again from here
 *   read_pos  how far the file has been read into events (memory only)
 *   queue     events read but not yet accepted by barged
 *
 * Batches are at most 10000 events and 512 KiB of messages (so that even a
 * message of control characters, six times longer as JSON, fits the agent
 * channel's body limit). When barged cannot be reached, the source waits
 * with a growing delay and its lines wait in the file. */
#include "agent/logship.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/logparse.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define READ_CHUNK         (256 * 1024)
#define MAX_QUEUE          10000
#define MAX_QUEUE_BYTES    (4 * 1024 * 1024)
#define BATCH_EVENTS       10000
#define BATCH_BYTES        (512 * 1024)
#define EVENT_OVERHEAD     26
#define IDLE_WAIT_MS       200
#define MAX_RETRY_MS       5000
#define CHECKPOINT_MS      1000
#define DEFAULT_BUFFER     (1024 * 1024)
#define DEFAULT_FLUSH_SECS 5

struct source {
    char *key; /* "<task id>/<container>" */
    char *task_arn, *container, *path;
    json_t *options; /* the logConfiguration options, for the checkpoint */
    bool nonblocking;
    uint64_t max_buffer;
    int64_t flush_ms;
    bool has_re;
    regex_t re;
    struct barge_logparse_assembler *asm_;

    uint64_t inode;
    uint64_t generation; /* bumped when the file is cut short or replaced */
    uint64_t acked, read_pos;
    struct barge_logparse_events queue;
    int64_t last_data_ms;
    int64_t retry_at_ms;
    int retry_delay_ms;
    bool finishing;
    bool done;

    uint64_t shipped, dropped, dropped_unreported, backlog;
    struct source *next;
};

struct barge_logship {
    struct barge_agent *agent;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct source *sources;
    bool stopping;
    bool dirty;
    int64_t last_checkpoint_ms;
    pthread_t thread;
    uint64_t total_shipped, total_dropped;
};

/* --- options ------------------------------------------------------------- */

int64_t barge_logship_parse_size(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    int64_t mult = 1;
    char unit = (char)(*end | 0x20);
    if (unit == 'k' || unit == 'm' || unit == 'g') {
        mult = unit == 'k' ? 1024 : unit == 'm' ? 1024 * 1024 : 1024LL * 1024 * 1024;
        end++;
    }
    /* "k", "kb", "kib" all mean KiB, as Docker reads them. */
    if ((*end | 0x20) == 'i')
        end++;
    if ((*end | 0x20) == 'b')
        end++;
    if (*end)
        return -1;
    return (int64_t)(v * (double)mult);
}

static void source_free(struct source *s)
{
    if (!s)
        return;
    if (s->has_re)
        regfree(&s->re);
    barge_logparse_assembler_free(s->asm_);
    barge_logparse_events_clear(&s->queue);
    json_decref(s->options);
    free(s->key);
    free(s->task_arn);
    free(s->container);
    free(s->path);
    free(s);
}

/* Builds a source from a container's options (checked here). */
static struct source *source_new(const char *task_arn, const char *container, const char *path,
                                 const json_t *options, struct barge_error **err)
{
    const char *group = barge_json_str(options, "awslogs-group", NULL);
    const char *mode = barge_json_str(options, "mode", "blocking");
    const char *buf = barge_json_str(options, "max-buffer-size", NULL);
    const char *datetime = barge_json_str(options, "awslogs-datetime-format", NULL);
    const char *pattern = barge_json_str(options, "awslogs-multiline-pattern", NULL);
    const char *flush = barge_json_str(options, "awslogs-force-flush-interval-seconds", NULL);
    if (!group || !*group) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "the awslogs driver needs the awslogs-group "
                        "option");
        return NULL;
    }
    if (strcmp(mode, "blocking") != 0 && strcmp(mode, "non-blocking") != 0) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "log mode '%s' is not valid: use blocking or non-blocking", mode);
        return NULL;
    }
    int64_t max_buffer = buf ? barge_logship_parse_size(buf) : DEFAULT_BUFFER;
    if (max_buffer <= 0) {
        barge_error_set(err, BARGE_ERR_INVALID, "max-buffer-size '%s' is not a size", buf);
        return NULL;
    }
    if (datetime && pattern) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "you cannot configure both awslogs-datetime-format and "
                        "awslogs-multiline-pattern");
        return NULL;
    }
    long flush_secs = flush ? strtol(flush, NULL, 10) : DEFAULT_FLUSH_SECS;
    if (flush_secs <= 0) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "awslogs-force-flush-interval-seconds '%s' must be a positive number",
                        flush);
        return NULL;
    }
    struct source *s = barge_xcalloc(1, sizeof(*s));
    if (datetime || pattern) {
        if (barge_logparse_compile(datetime, pattern, &s->re, err) < 0) {
            free(s);
            return NULL;
        }
        s->has_re = true;
    }
    const char *slash = strrchr(task_arn, '/');
    s->key = barge_xasprintf("%s/%s", slash ? slash + 1 : task_arn, container);
    s->task_arn = barge_xstrdup(task_arn);
    s->container = barge_xstrdup(container);
    s->path = barge_xstrdup(path);
    s->options = json_deep_copy(options);
    s->nonblocking = strcmp(mode, "non-blocking") == 0;
    s->max_buffer = (uint64_t)max_buffer;
    s->flush_ms = flush_secs * 1000;
    s->asm_ = barge_logparse_assembler_new(s->has_re ? &s->re : NULL, 0);
    s->last_data_ms = barge_monotonic_ms();
    return s;
}

/* --- the checkpoint ------------------------------------------------------- */

static char *checkpoint_path(struct barge_logship *ls)
{
    return barge_xasprintf("%s/logship.json", ls->agent->cfg.data_dir);
}

/* Writes the checkpoint; ls->lock is held. */
static void save_locked(struct barge_logship *ls)
{
    json_t *srcs = json_object();
    for (struct source *s = ls->sources; s; s = s->next) {
        if (s->done)
            continue;
        json_object_set_new(srcs, s->key,
                            json_pack("{s:s, s:s, s:s, s:O, s:I, s:I, s:I, s:b, s:I}", "taskArn",
                                      s->task_arn, "container", s->container, "path", s->path,
                                      "options", s->options, "acked", (json_int_t)s->acked, "inode",
                                      (json_int_t)s->inode, "generation", (json_int_t)s->generation,
                                      "finishing", s->finishing, "dropped",
                                      (json_int_t)s->dropped));
    }
    json_t *doc = json_pack("{s:o}", "sources", srcs);
    _cleanup_free_ char *path = checkpoint_path(ls);
    _cleanup_free_ char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(doc);
    if (barge_write_file_atomic(path, text, strlen(text), 0600) < 0)
        barge_err("cannot write '%s': %s", path, strerror(errno));
    ls->dirty = false;
    ls->last_checkpoint_ms = barge_monotonic_ms();
}

static void load(struct barge_logship *ls)
{
    _cleanup_free_ char *path = checkpoint_path(ls);
    _cleanup_free_ char *text = barge_read_file(path, NULL);
    if (!text)
        return;
    _cleanup_json_ json_t *doc = json_loads(text, 0, NULL);
    json_t *tasks = barge_json_object(ls->agent->state, "tasks");
    const char *key;
    json_t *v;
    json_object_foreach(barge_json_object(doc, "sources"), key, v)
    {
        _cleanup_error_ struct barge_error *err = NULL;
        struct source *s =
            source_new(barge_json_str(v, "taskArn", ""), barge_json_str(v, "container", ""),
                       barge_json_str(v, "path", ""), barge_json_object(v, "options"), &err);
        if (!s) {
            barge_warn("log shipping of %s cannot resume: %s", key, err->message);
            continue;
        }
        s->acked = s->read_pos = (uint64_t)barge_json_int(v, "acked", 0);
        s->inode = (uint64_t)barge_json_int(v, "inode", 0);
        s->generation = (uint64_t)barge_json_int(v, "generation", 0);
        s->dropped = (uint64_t)barge_json_int(v, "dropped", 0);
        /* A task the agent no longer runs ended while we were away. */
        s->finishing =
            barge_json_bool(v, "finishing", false) || !json_object_get(tasks, s->task_arn);
        s->next = ls->sources;
        ls->sources = s;
        barge_info("resuming log shipping of %s at offset %llu", s->key,
                   (unsigned long long)s->acked);
    }
}

/* --- reading ------------------------------------------------------------- */

static void drop_backlog(struct barge_logship *ls, struct source *s, int fd, uint64_t size)
{
    /* Keep the newest max_buffer bytes, from the first line boundary. */
    uint64_t target = size - s->max_buffer;
    char buf[8192];
    uint64_t pos = s->acked, lines = 0, cut = 0;
    while (pos < size && !cut) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)pos);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n') {
                lines++;
                if (pos + (uint64_t)i + 1 >= target) {
                    cut = pos + (uint64_t)i + 1;
                    break;
                }
            }
        pos += (uint64_t)n;
    }
    if (!cut)
        return;
    barge_logparse_assembler_reset(s->asm_);
    barge_logparse_events_clear(&s->queue);
    pthread_mutex_lock(&ls->lock);
    s->acked = s->read_pos = cut;
    s->dropped += lines;
    s->dropped_unreported += lines;
    ls->total_dropped += lines;
    ls->dirty = true;
    pthread_mutex_unlock(&ls->lock);
    barge_warn("task %s container %s: %llu log lines dropped (non-blocking, backlog over %llu "
               "bytes)",
               s->task_arn, s->container, (unsigned long long)lines,
               (unsigned long long)s->max_buffer);
}

/* Reads what is new into events; returns true when it read anything. */
static bool read_more(struct barge_logship *ls, struct source *s, int64_t now)
{
    _cleanup_close_ int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return false;
    if ((uint64_t)st.st_ino != s->inode || (uint64_t)st.st_size < s->read_pos) {
        /* A new file (or one cut short) starts over; its offsets mean
         * something else, which a new source id (inode and generation) tells
         * barged, or it would skip the new lines as ones it has. */
        if (s->inode)
            barge_info("log of %s was replaced; reading it from the start", s->key);
        barge_logparse_assembler_reset(s->asm_);
        barge_logparse_events_clear(&s->queue);
        pthread_mutex_lock(&ls->lock);
        if (s->inode)
            s->generation++;
        s->inode = (uint64_t)st.st_ino;
        s->acked = s->read_pos = 0;
        ls->dirty = true;
        pthread_mutex_unlock(&ls->lock);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (s->nonblocking && size - s->acked > s->max_buffer)
        drop_backlog(ls, s, fd, size);
    pthread_mutex_lock(&ls->lock);
    s->backlog = size - s->acked;
    pthread_mutex_unlock(&ls->lock);
    if (s->queue.n >= MAX_QUEUE || s->read_pos >= size)
        return false;
    /* Unsent events wait in memory only up to a bound; the rest waits in the
     * file. */
    size_t queued = 0;
    for (size_t i = 0; i < s->queue.n; i++)
        queued += s->queue.v[i].len;
    if (queued >= MAX_QUEUE_BYTES)
        return false;
    size_t want = size - s->read_pos > READ_CHUNK ? READ_CHUNK : (size_t)(size - s->read_pos);
    _cleanup_free_ char *buf = barge_xmalloc(want);
    ssize_t n = pread(fd, buf, want, (off_t)s->read_pos);
    if (n <= 0)
        return false;
    size_t used = 0;
    for (;;) {
        char *nl = memchr(buf + used, '\n', (size_t)n - used);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (buf + used));
        struct barge_logparse_record rec;
        uint64_t start = s->read_pos + used, end = start + len + 1;
        if (barge_logparse_k8s_record(buf + used, len, &rec) == 0)
            barge_logparse_assembler_feed(s->asm_, &rec, start, end, &s->queue);
        used += len + 1;
    }
    if (used == 0 && (size_t)n == READ_CHUNK) {
        /* No record is this long: not conmon's format. Skip it. */
        barge_warn("log of %s: skipping %zu bytes without a line end", s->key, (size_t)n);
        used = (size_t)n;
    }
    if (used == 0)
        return false;
    s->read_pos += used;
    s->last_data_ms = now;
    return true;
}

/* --- sending -------------------------------------------------------------- */

/* Sends the first batch of the queue; returns true when it made progress. */
static bool send_batch(struct barge_logship *ls, struct source *s,
                       struct barge_agent_client *client, int64_t now)
{
    if (s->queue.n == 0 || now < s->retry_at_ms)
        return false;
    size_t n = 0, bytes = 0;
    json_t *events = json_array(), *offsets = json_array();
    while (n < s->queue.n && n < BATCH_EVENTS) {
        const struct barge_logparse_event *e = &s->queue.v[n];
        if (n > 0 && bytes + e->len + EVENT_OVERHEAD > BATCH_BYTES)
            break;
        json_array_append_new(events,
                              json_pack("{s:I, s:s%}", "timestamp", (json_int_t)e->timestamp,
                                        "message", e->message, e->len));
        json_array_append_new(offsets, json_integer((json_int_t)e->offset));
        bytes += e->len + EVENT_OVERHEAD;
        n++;
    }
    char inode[48];
    snprintf(inode, sizeof(inode), "%llu.%llu", (unsigned long long)s->inode,
             (unsigned long long)s->generation);
    pthread_mutex_lock(&ls->lock);
    uint64_t dropped = s->dropped_unreported;
    pthread_mutex_unlock(&ls->lock);
    _cleanup_json_ json_t *body = json_pack(
        "{s:s, s:s, s:o, s:{s:s, s:I, s:o}, s:I}", "taskArn", s->task_arn, "container",
        s->container, "events", events, "source", "id", inode, "to",
        (json_int_t)s->queue.v[n - 1].offset, "offsets", offsets, "dropped", (json_int_t)dropped);
    _cleanup_json_ json_t *out = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    int status = barge_agent_client_post(client, "/agent/logs", body, ls->agent->token, NULL, 10,
                                         &out, &err);
    if (status == 200) {
        pthread_mutex_lock(&ls->lock);
        s->acked = s->queue.v[n - 1].resume;
        s->shipped += n;
        ls->total_shipped += n;
        s->dropped_unreported -= dropped;
        ls->dirty = true;
        pthread_mutex_unlock(&ls->lock);
        barge_logparse_events_shift(&s->queue, n);
        s->retry_delay_ms = 0;
        return true;
    }
    if (status >= 400 && status < 500 && status != 401 && status != 410) {
        const char *msg = barge_json_str(out, "message", "?");
        if (status == 404 &&
            !barge_streq(barge_json_str(out, "type", NULL), "ResourceNotFoundException")) {
            /* barged no longer knows the task: nothing can be delivered. */
            barge_warn("task %s container %s: %s; giving up its logs", s->task_arn, s->container,
                       msg);
            s->done = true;
            return true;
        }
        /* The destination refuses these (its group was deleted, say): they
         * are lost, but later lines may go through. */
        barge_warn("task %s container %s: barged refused %zu log events (%d): %s", s->task_arn,
                   s->container, n, status, msg);
        pthread_mutex_lock(&ls->lock);
        s->acked = s->queue.v[n - 1].resume;
        s->dropped += n;
        ls->total_dropped += n;
        ls->dirty = true;
        pthread_mutex_unlock(&ls->lock);
        barge_logparse_events_shift(&s->queue, n);
        return true;
    }
    s->retry_delay_ms = s->retry_delay_ms ? s->retry_delay_ms * 2 : 200;
    if (s->retry_delay_ms > MAX_RETRY_MS)
        s->retry_delay_ms = MAX_RETRY_MS;
    s->retry_at_ms = now + s->retry_delay_ms;
    barge_debug("task %s container %s: sending logs: %s; retrying in %d ms", s->task_arn,
                s->container, err ? err->message : "server error", s->retry_delay_ms);
    return false;
}

/* One pass over a source; true when it did something. */
static bool step(struct barge_logship *ls, struct source *s, struct barge_agent_client *client)
{
    int64_t now = barge_monotonic_ms();
    bool busy = read_more(ls, s, now);
    pthread_mutex_lock(&ls->lock);
    bool finishing = s->finishing;
    pthread_mutex_unlock(&ls->lock);
    struct stat st;
    bool at_eof = stat(s->path, &st) < 0 || (uint64_t)st.st_size <= s->read_pos;
    if (barge_logparse_assembler_pending(s->asm_) &&
        ((finishing && at_eof) || now - s->last_data_ms >= s->flush_ms))
        barge_logparse_assembler_flush(s->asm_, &s->queue);
    busy |= send_batch(ls, s, client, now);
    if (finishing && at_eof && s->queue.n == 0 && !barge_logparse_assembler_pending(s->asm_)) {
        barge_debug("task %s container %s: all logs shipped", s->task_arn, s->container);
        s->done = true;
    }
    return busy;
}

static void *run(void *ud)
{
    struct barge_logship *ls = ud;
    struct barge_agent_client *client = barge_agent_client_new(ls->agent->cfg.server);
    pthread_mutex_lock(&ls->lock);
    while (!ls->stopping) {
        size_t n = 0;
        for (struct source *s = ls->sources; s; s = s->next)
            n++;
        struct source **list = barge_xcalloc(n + 1, sizeof(*list));
        n = 0;
        for (struct source *s = ls->sources; s; s = s->next)
            list[n++] = s;
        pthread_mutex_unlock(&ls->lock);
        /* Sources are only freed by this thread, so the list stays valid. */
        bool busy = false;
        for (size_t i = 0; i < n; i++)
            busy |= step(ls, list[i], client);
        free(list);
        pthread_mutex_lock(&ls->lock);
        bool removed = false;
        for (struct source **pp = &ls->sources; *pp;) {
            if ((*pp)->done) {
                struct source *d = *pp;
                *pp = d->next;
                source_free(d);
                removed = true;
            } else {
                pp = &(*pp)->next;
            }
        }
        int64_t now = barge_monotonic_ms();
        if (removed || (ls->dirty && now - ls->last_checkpoint_ms >= CHECKPOINT_MS))
            save_locked(ls);
        if (!busy && !ls->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += IDLE_WAIT_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&ls->wake, &ls->lock, &ts);
        }
    }
    if (ls->dirty)
        save_locked(ls);
    pthread_mutex_unlock(&ls->lock);
    barge_agent_client_free(client);
    return NULL;
}

struct barge_logship *barge_logship_new(struct barge_agent *agent)
{
    struct barge_logship *ls = barge_xcalloc(1, sizeof(*ls));
    ls->agent = agent;
    pthread_mutex_init(&ls->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ls->wake, &attr);
    pthread_condattr_destroy(&attr);
    load(ls);
    if (pthread_create(&ls->thread, NULL, run, ls) != 0)
        abort();
    return ls;
}

void barge_logship_free(struct barge_logship *ls)
{
    if (!ls)
        return;
    pthread_mutex_lock(&ls->lock);
    ls->stopping = true;
    pthread_cond_broadcast(&ls->wake);
    pthread_mutex_unlock(&ls->lock);
    pthread_join(ls->thread, NULL);
    while (ls->sources) {
        struct source *s = ls->sources;
        ls->sources = s->next;
        source_free(s);
    }
    pthread_mutex_destroy(&ls->lock);
    pthread_cond_destroy(&ls->wake);
    free(ls);
}

/* Asks barged whether the container's destination exists (creating what the
 * options allow). 1: yes; 0: barged could not say; -1: no (err set). */
static int check_destination(struct barge_logship *ls, const char *task_arn, const char *container,
                             struct barge_error **err)
{
    struct barge_agent_client *c = barge_agent_client_new(ls->agent->cfg.server);
    _cleanup_json_ json_t *body =
        json_pack("{s:s, s:s, s:[]}", "taskArn", task_arn, "container", container, "events");
    _cleanup_json_ json_t *out = NULL;
    _cleanup_error_ struct barge_error *e = NULL;
    int status =
        barge_agent_client_post(c, "/agent/logs", body, ls->agent->token, NULL, 10, &out, &e);
    barge_agent_client_free(c);
    if (status == 200)
        return 1;
    if (status >= 400 && status < 500)
        return barge_error_set(err, status == 404 ? BARGE_ERR_NOT_FOUND : BARGE_ERR_INVALID,
                               "ResourceInitializationError: failed to initialize logging "
                               "driver: %s",
                               barge_json_str(out, "message", "barged refused the log stream"));
    barge_warn("task %s container %s: cannot check its log stream (%s); its output waits on "
               "disk",
               task_arn, container, e ? e->message : "server error");
    return 0;
}

int barge_logship_open(struct barge_logship *ls, const char *task_arn, const char *container,
                       const char *log_path, const json_t *log_configuration,
                       struct barge_error **err)
{
    if (!ls || !barge_streq(barge_json_str(log_configuration, "logDriver", NULL), "awslogs"))
        return 0;
    struct source *s = source_new(task_arn, container, log_path,
                                  barge_json_object(log_configuration, "options"), err);
    if (!s)
        return -1;
    pthread_mutex_lock(&ls->lock);
    for (struct source *o = ls->sources; o; o = o->next)
        if (strcmp(o->key, s->key) == 0 && !o->done) {
            pthread_mutex_unlock(&ls->lock);
            source_free(s);
            return 0;
        }
    pthread_mutex_unlock(&ls->lock);
    if (check_destination(ls, task_arn, container, err) < 0) {
        source_free(s);
        return -1;
    }
    pthread_mutex_lock(&ls->lock);
    s->next = ls->sources;
    ls->sources = s;
    save_locked(ls);
    pthread_cond_broadcast(&ls->wake);
    pthread_mutex_unlock(&ls->lock);
    barge_info(
        "task %s container %s: shipping its output to log group %s", task_arn, container,
        barge_json_str(barge_json_object(log_configuration, "options"), "awslogs-group", "?"));
    return 0;
}

void barge_logship_finish(struct barge_logship *ls, const char *task_arn)
{
    if (!ls)
        return;
    pthread_mutex_lock(&ls->lock);
    bool any = false;
    for (struct source *s = ls->sources; s; s = s->next)
        if (strcmp(s->task_arn, task_arn) == 0 && !s->finishing) {
            s->finishing = true;
            any = true;
        }
    if (any) {
        save_locked(ls);
        pthread_cond_broadcast(&ls->wake);
    }
    pthread_mutex_unlock(&ls->lock);
}

void barge_logship_metrics(struct barge_logship *ls, struct barge_prom *p)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"barge_agent_log_events_shipped_total", "counter",
         "Log events barged accepted, by task and container."},
        {"barge_agent_log_lines_dropped_total", "counter",
         "Log lines dropped because the backlog exceeded max-buffer-size (non-blocking mode) or "
         "barged refused them."},
        {"barge_agent_log_backlog_bytes", "gauge",
         "Bytes of a container's log not yet accepted by barged."},
    };
    pthread_mutex_lock(&ls->lock);
    for (size_t f = 0; f < BARGE_ARRAY_SIZE(fams); f++) {
        barge_prom_family(p, fams[f].name, fams[f].type, fams[f].help);
        for (struct source *s = ls->sources; s; s = s->next) {
            const char *slash = strrchr(s->task_arn, '/');
            const char *l[] = {"task", slash ? slash + 1 : s->task_arn, "container", s->container,
                               NULL};
            double v = f == 0   ? (double)s->shipped
                       : f == 1 ? (double)s->dropped
                                : (double)s->backlog;
            barge_prom_sample(p, fams[f].name, l, v);
        }
    }
    barge_prom_family(p, "barge_agent_log_events_shipped_all_total", "counter",
                      "Log events barged accepted from this agent since it started.");
    barge_prom_sample(p, "barge_agent_log_events_shipped_all_total", NULL,
                      (double)ls->total_shipped);
    barge_prom_family(p, "barge_agent_log_lines_dropped_all_total", "counter",
                      "Log lines this agent dropped since it started.");
    barge_prom_sample(p, "barge_agent_log_lines_dropped_all_total", NULL,
                      (double)ls->total_dropped);
    pthread_mutex_unlock(&ls->lock);
}
