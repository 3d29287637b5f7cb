/* The logger behind log.h: formats a line in one buffer and writes it with a
 * single write(2) so lines from different threads never interleave. */
#include "common/log.h"

#include <sys/time.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum barge_log_level barge_log_min_level = BARGE_LOG_INFO;
static bool log_json;
static char log_program[32] = "barge";
static __thread char log_request_id[64];

static const char *level_names[] = {"debug", "info", "warn", "error"};

int barge_log_setup(const char *program, const char *level, const char *format)
{
    if (program)
        snprintf(log_program, sizeof(log_program), "%s", program);
    if (level) {
        size_t i;
        for (i = 0; i < BARGE_ARRAY_SIZE(level_names); i++)
            if (strcmp(level, level_names[i]) == 0)
                break;
        if (i == BARGE_ARRAY_SIZE(level_names))
            return -1;
        barge_log_min_level = (enum barge_log_level)i;
    }
    if (format) {
        if (strcmp(format, "json") == 0)
            log_json = true;
        else if (strcmp(format, "text") == 0)
            log_json = false;
        else
            return -1;
    }
    return 0;
}

void barge_log_set_request_id(const char *id)
{
    barge_strlcpy(log_request_id, id, sizeof(log_request_id));
}

void barge_log_write(enum barge_log_level level, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(tv.tv_usec / 1000) % 1000);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;

    _cleanup_free_ char *out = NULL;
    if (log_json) {
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "time", ts, "level", level_names[level],
                      "program", log_program, "msg", msg, "src", base, "line", line);
        if (log_request_id[0])
            json_object_set_new(o, "requestId", json_string(log_request_id));
        char *dump = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        out = barge_xasprintf("%s\n", dump ? dump : "{}");
        free(dump);
    } else if (log_request_id[0]) {
        out = barge_xasprintf("%s %s %s [%s] %s (%s:%d)\n", ts, log_program, level_names[level],
                              log_request_id, msg, base, line);
    } else {
        out = barge_xasprintf("%s %s %s %s (%s:%d)\n", ts, log_program, level_names[level], msg,
                              base, line);
    }
    size_t len = strlen(out);
    ssize_t w = write(2, out, len);
    (void)w;
}
