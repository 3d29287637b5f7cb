/* Errors: every fallible function returns 0 (or a pointer) on success and -1 (or
 * NULL) on failure, filling a struct barge_error that says what went wrong, in
 * which category and where it arose. Callers add context on the way up with
 * barge_error_wrap(). The API layer turns a category (or an explicit AWS error
 * type) into the wire error in one table (src/api/errors.c). */
#ifndef BARGE_COMMON_ERROR_H
#define BARGE_COMMON_ERROR_H

#include "common/util.h"

enum barge_errcode {
    BARGE_ERR_INTERNAL = 1,     /* a bug or an unexpected system failure */
    BARGE_ERR_IO,               /* the disk, the network or a child process failed */
    BARGE_ERR_INVALID,          /* the caller's input is invalid */
    BARGE_ERR_SERIALIZATION,    /* the input cannot be parsed or has the wrong type */
    BARGE_ERR_CLIENT,           /* the request cannot be served as asked (ECS ClientException) */
    BARGE_ERR_NOT_FOUND,        /* the named resource does not exist */
    BARGE_ERR_EXISTS,           /* the resource exists already */
    BARGE_ERR_CONFLICT,         /* the resource is in a state that forbids the request */
    BARGE_ERR_LIMIT,            /* a quota would be exceeded */
    BARGE_ERR_UNKNOWN_OP,       /* no such operation */
    BARGE_ERR_AUTH_MISSING,     /* the request is not signed */
    BARGE_ERR_AUTH_INCOMPLETE,  /* the signature is malformed */
    BARGE_ERR_AUTH_UNKNOWN_KEY, /* the access key is not known */
    BARGE_ERR_AUTH_SIGNATURE,   /* the signature does not match, or the clock is skewed */
    BARGE_ERR_AUTH_EXPIRED,     /* the session token has expired */
    BARGE_ERR_ACCESS_DENIED,    /* signed correctly but not allowed */
    BARGE_ERR_UNSUPPORTED,      /* valid, but barge does not do it */
};

struct barge_error {
    enum barge_errcode code;
    char *type;    /* an explicit AWS error type, or NULL to derive it from code */
    char *message; /* lower-case prose naming the offending value in quotes */
    const char *file;
    int line;
};

/* Fills *err (when err is not NULL and *err is still empty) and returns -1, so
 * that callers can write `return barge_error_set(err, ...);`. */
int barge_error_set_at(struct barge_error **err, const char *file, int line,
                       enum barge_errcode code, const char *type, const char *fmt, ...)
    BARGE_PRINTF(6, 7);

#define barge_error_set(err, code, ...) \
    barge_error_set_at(err, __FILE__, __LINE__, code, NULL, __VA_ARGS__)
/* Like barge_error_set, with an explicit AWS error type such as
 * "ClusterNotFoundException". */
#define barge_error_set_type(err, code, type, ...) \
    barge_error_set_at(err, __FILE__, __LINE__, code, type, __VA_ARGS__)
/* errno-flavoured: appends ": strerror(errno)" to the message. */
#define barge_error_set_errno(err, code, ...) \
    barge_error_set_errno_at(err, __FILE__, __LINE__, code, __VA_ARGS__)
int barge_error_set_errno_at(struct barge_error **err, const char *file, int line,
                             enum barge_errcode code, const char *fmt, ...) BARGE_PRINTF(5, 6);

/* Prefixes the message with "context: " and returns -1. */
int barge_error_wrap(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);

void barge_error_free(struct barge_error *err);
static inline void barge_error_freep(struct barge_error **err)
{
    barge_error_free(*err);
}
#define _cleanup_error_ __attribute__((cleanup(barge_error_freep)))

/* A short lower-case name of a code, for logs ("not found"). */
const char *barge_errcode_name(enum barge_errcode code);

#endif
