/* Container health checks. ECS hands a container's healthCheck to Docker and
 * reads Docker's verdicts; barge has no Docker, so it runs the check itself
 * with the same rules: the first check runs one interval after the start,
 * each check is killed after timeout, a success makes the container HEALTHY,
 * `retries` consecutive failures make it UNHEALTHY, and failures inside
 * startPeriod do not count. One small thread per checked container does the
 * waiting and the exec; the state machine itself is pure. */
#include "agent/health.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

const char *barge_health_status_name(enum barge_health_status s)
{
    switch (s) {
    case BARGE_HEALTH_HEALTHY:
        return "HEALTHY";
    case BARGE_HEALTH_UNHEALTHY:
        return "UNHEALTHY";
    case BARGE_HEALTH_UNKNOWN:
        break;
    }
    return "UNKNOWN";
}

int barge_health_config_parse(const json_t *hc, struct barge_health_config *out,
                              struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(hc))
        return 0;
    json_t *cmd = barge_json_array(hc, "command");
    const char *kind = json_string_value(json_array_get(cmd, 0));
    if (kind && strcmp(kind, "NONE") == 0)
        return 0;
    size_t n = json_array_size(cmd);
    if (!kind || n < 2 || (strcmp(kind, "CMD") != 0 && strcmp(kind, "CMD-SHELL") != 0))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "healthCheck command must be [\"CMD\", ...] or [\"CMD-SHELL\", "
                               "\"...\"]");
    if (strcmp(kind, "CMD-SHELL") == 0) {
        /* Docker joins the rest with spaces and runs it with /bin/sh -c. */
        char *joined = NULL;
        for (size_t i = 1; i < n; i++) {
            const char *part = json_string_value(json_array_get(cmd, i));
            char *next = barge_xasprintf("%s%s%s", joined ? joined : "", joined ? " " : "",
                                         part ? part : "");
            free(joined);
            joined = next;
        }
        out->argv = barge_xcalloc(4, sizeof(char *));
        out->argv[0] = barge_xstrdup("/bin/sh");
        out->argv[1] = barge_xstrdup("-c");
        out->argv[2] = joined;
    } else {
        out->argv = barge_xcalloc(n, sizeof(char *));
        for (size_t i = 1; i < n; i++) {
            const char *part = json_string_value(json_array_get(cmd, i));
            out->argv[i - 1] = barge_xstrdup(part ? part : "");
        }
    }
    out->interval_s = (int)barge_json_int(hc, "interval", 30);
    out->timeout_s = (int)barge_json_int(hc, "timeout", 5);
    out->retries = (int)barge_json_int(hc, "retries", 3);
    out->start_period = (int)barge_json_int(hc, "startPeriod", 0);
    if (out->interval_s < 1)
        out->interval_s = 1;
    if (out->timeout_s < 1)
        out->timeout_s = 1;
    if (out->retries < 1)
        out->retries = 1;
    if (out->start_period < 0)
        out->start_period = 0;
    return 1;
}

void barge_health_config_release(struct barge_health_config *c)
{
    for (size_t i = 0; c->argv && c->argv[i]; i++)
        free(c->argv[i]);
    free(c->argv);
    c->argv = NULL;
}

void barge_health_state_init(struct barge_health_state *s, double started_at)
{
    memset(s, 0, sizeof(*s));
    s->status = BARGE_HEALTH_UNKNOWN;
    s->started_at = started_at;
    s->last_exit = -1;
}

bool barge_health_record(struct barge_health_state *s, const struct barge_health_config *c,
                         bool passed, int exit_code, const char *output, double now)
{
    enum barge_health_status before = s->status;
    s->last_exit = exit_code;
    snprintf(s->output, sizeof(s->output), "%s", output ? output : "");
    size_t len = strlen(s->output);
    while (len > 0 && (s->output[len - 1] == '\n' || s->output[len - 1] == ' '))
        s->output[--len] = '\0';
    if (passed) {
        s->failures = 0;
        s->status = BARGE_HEALTH_HEALTHY;
    } else if (now >= s->started_at + c->start_period) {
        /* Inside the start period a failure is not held against the
         * container (a success still counts, above). */
        if (++s->failures >= c->retries)
            s->status = BARGE_HEALTH_UNHEALTHY;
    }
    if (s->status != before) {
        s->status_since = now;
        return true;
    }
    return false;
}

enum barge_health_status barge_health_task(const enum barge_health_status *status,
                                           const bool *essential, const bool *has_check, size_t n)
{
    bool any = false, unknown = false;
    for (size_t i = 0; i < n; i++) {
        if (!essential[i] || !has_check[i])
            continue;
        any = true;
        if (status[i] == BARGE_HEALTH_UNHEALTHY)
            return BARGE_HEALTH_UNHEALTHY;
        if (status[i] == BARGE_HEALTH_UNKNOWN)
            unknown = true;
    }
    return !any || unknown ? BARGE_HEALTH_UNKNOWN : BARGE_HEALTH_HEALTHY;
}

/* --- the checker thread ------------------------------------------------- */

struct barge_health_checker {
    struct barge_runtime *rt;
    char *id;
    struct barge_health_config cfg;
    void (*notify)(void *ud);
    void *ud;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    struct barge_health_state state;
};

/* Sleeps up to seconds; false when asked to stop meanwhile. */
static bool nap(struct barge_health_checker *h, int seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += seconds;
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        if (pthread_cond_timedwait(&h->cond, &h->lock, &ts) == ETIMEDOUT)
            break;
    }
    bool go = !h->stop;
    pthread_mutex_unlock(&h->lock);
    return go;
}

static void *check_loop(void *ud)
{
    struct barge_health_checker *h = ud;
    while (nap(h, h->cfg.interval_s)) {
        struct barge_runtime_exec_result res;
        _cleanup_error_ struct barge_error *err = NULL;
        bool passed = false;
        int code = -1;
        const char *output = NULL;
        if (barge_runtime_exec(h->rt, h->id, (const char *const *)h->cfg.argv,
                               h->cfg.timeout_s * 1000, &res, &err) < 0) {
            if (err->code == BARGE_ERR_CONFLICT || err->code == BARGE_ERR_NOT_FOUND)
                break; /* the container is gone: the engine will notice */
            output = err->message;
        } else {
            passed = !res.timed_out && res.exit_code == 0;
            code = res.timed_out ? -1 : res.exit_code;
            output = res.timed_out ? "health check timed out" : res.output;
        }
        pthread_mutex_lock(&h->lock);
        bool changed =
            !h->stop && barge_health_record(&h->state, &h->cfg, passed, code, output, barge_now());
        enum barge_health_status st = h->state.status;
        pthread_mutex_unlock(&h->lock);
        if (err == NULL)
            free(res.output);
        if (changed) {
            barge_debug("container %s is %s", h->id, barge_health_status_name(st));
            h->notify(h->ud);
        }
    }
    return NULL;
}

struct barge_health_checker *barge_health_checker_start(struct barge_runtime *rt, const char *id,
                                                        const struct barge_health_config *c,
                                                        double started_at, void (*notify)(void *ud),
                                                        void *ud)
{
    struct barge_health_checker *h = barge_xcalloc(1, sizeof(*h));
    h->rt = rt;
    h->id = barge_xstrdup(id);
    h->cfg = *c;
    size_t n = 0;
    while (c->argv[n])
        n++;
    h->cfg.argv = barge_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        h->cfg.argv[i] = barge_xstrdup(c->argv[i]);
    h->notify = notify;
    h->ud = ud;
    barge_health_state_init(&h->state, started_at);
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* It only waits and execs; keep the agent's footprint small. */
    pthread_attr_setstacksize(&attr, 128 * 1024);
    if (pthread_create(&h->thread, &attr, check_loop, h) != 0)
        abort();
    pthread_attr_destroy(&attr);
    return h;
}

void barge_health_checker_get(struct barge_health_checker *h, struct barge_health_state *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->state;
    pthread_mutex_unlock(&h->lock);
}

void barge_health_checker_stop(struct barge_health_checker *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    barge_health_config_release(&h->cfg);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h->id);
    free(h);
}
