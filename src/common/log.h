/* Logging: one level-checked macro writing text or JSON lines to stderr. Each
 * thread may carry a request id (set by the API layer) that every line of that
 * request includes. Never pass a secret value to these functions. */
#ifndef BARGE_COMMON_LOG_H
#define BARGE_COMMON_LOG_H

#include "common/util.h"

enum barge_log_level {
    BARGE_LOG_DEBUG = 0,
    BARGE_LOG_INFO,
    BARGE_LOG_WARN,
    BARGE_LOG_ERROR,
};

extern enum barge_log_level barge_log_min_level;

/* Configures the process-wide logger: level name ("debug", "info", "warn",
 * "error") and format ("text" or "json"); the name is the program name printed
 * on each line. Returns -1 on an unknown level or format. */
int barge_log_setup(const char *program, const char *level, const char *format);
/* Sets (or with NULL clears) this thread's request id; the string is copied. */
void barge_log_set_request_id(const char *id);

void barge_log_write(enum barge_log_level level, const char *file, int line, const char *fmt, ...)
    BARGE_PRINTF(4, 5);

#define barge_log(level, ...)                                        \
    do {                                                             \
        if ((level) >= barge_log_min_level)                          \
            barge_log_write(level, __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#define barge_debug(...) barge_log(BARGE_LOG_DEBUG, __VA_ARGS__)
#define barge_info(...)  barge_log(BARGE_LOG_INFO, __VA_ARGS__)
#define barge_warn(...)  barge_log(BARGE_LOG_WARN, __VA_ARGS__)
#define barge_err(...)   barge_log(BARGE_LOG_ERROR, __VA_ARGS__)

#endif
