/* Error values: creation, wrapping with context and release. */
#include "common/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int vset(struct barge_error **err, const char *file, int line, enum barge_errcode code,
                const char *type, const char *suffix, const char *fmt, va_list ap)
{
    if (!err || *err)
        return -1;
    struct barge_error *e = barge_xcalloc(1, sizeof(*e));
    e->code = code;
    e->type = type ? barge_xstrdup(type) : NULL;
    char *msg = barge_xvasprintf(fmt, ap);
    if (suffix) {
        e->message = barge_xasprintf("%s: %s", msg, suffix);
        free(msg);
    } else {
        e->message = msg;
    }
    e->file = file;
    e->line = line;
    *err = e;
    return -1;
}

int barge_error_set_at(struct barge_error **err, const char *file, int line,
                       enum barge_errcode code, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, file, line, code, type, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int barge_error_set_errno_at(struct barge_error **err, const char *file, int line,
                             enum barge_errcode code, const char *fmt, ...)
{
    const char *why = strerror(errno);
    va_list ap;
    va_start(ap, fmt);
    vset(err, file, line, code, NULL, why, fmt, ap);
    va_end(ap);
    return -1;
}

int barge_error_wrap(struct barge_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = barge_xvasprintf(fmt, ap);
    va_end(ap);
    char *msg = barge_xasprintf("%s: %s", ctx, (*err)->message);
    free(ctx);
    free((*err)->message);
    (*err)->message = msg;
    return -1;
}

void barge_error_free(struct barge_error *err)
{
    if (!err)
        return;
    free(err->type);
    free(err->message);
    free(err);
}

const char *barge_errcode_name(enum barge_errcode code)
{
    switch (code) {
    case BARGE_ERR_INTERNAL:
        return "internal";
    case BARGE_ERR_IO:
        return "i/o";
    case BARGE_ERR_INVALID:
        return "invalid";
    case BARGE_ERR_SERIALIZATION:
        return "serialization";
    case BARGE_ERR_CLIENT:
        return "client";
    case BARGE_ERR_NOT_FOUND:
        return "not found";
    case BARGE_ERR_EXISTS:
        return "exists";
    case BARGE_ERR_CONFLICT:
        return "conflict";
    case BARGE_ERR_LIMIT:
        return "limit";
    case BARGE_ERR_UNKNOWN_OP:
        return "unknown operation";
    case BARGE_ERR_AUTH_MISSING:
    case BARGE_ERR_AUTH_INCOMPLETE:
    case BARGE_ERR_AUTH_UNKNOWN_KEY:
    case BARGE_ERR_AUTH_SIGNATURE:
    case BARGE_ERR_AUTH_EXPIRED:
        return "authentication";
    case BARGE_ERR_ACCESS_DENIED:
        return "access denied";
    case BARGE_ERR_UNSUPPORTED:
        return "unsupported";
    }
    return "unknown";
}
