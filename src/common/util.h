/* Small helpers every module uses: aborting allocation, cleanup attributes and
 * string utilities. Allocation failure aborts the process (DESIGN.md), so callers
 * never check the result of x*alloc. */
#ifndef BARGE_COMMON_UTIL_H
#define BARGE_COMMON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BARGE_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BARGE_PRINTF(f, a)  __attribute__((format(printf, f, a)))
#define BARGE_UNUSED        __attribute__((unused))

void *barge_xmalloc(size_t n);
void *barge_xcalloc(size_t nmemb, size_t size);
void *barge_xrealloc(void *p, size_t n);
char *barge_xstrdup(const char *s);
char *barge_xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *barge_xasprintf(const char *fmt, ...) BARGE_PRINTF(1, 2);
char *barge_xvasprintf(const char *fmt, va_list ap) BARGE_PRINTF(1, 0);

static inline void barge_freep(void *p)
{
    free(*(void **)p);
}

static inline void barge_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

static inline void barge_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

#define _cleanup_free_   __attribute__((cleanup(barge_freep)))
#define _cleanup_close_  __attribute__((cleanup(barge_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(barge_fclosep)))

/* Moves ownership out of a cleanup variable. */
#define barge_steal(pp)                    \
    ({                                     \
        __typeof__(*(pp)) _stolen = *(pp); \
        *(pp) = NULL;                      \
        _stolen;                           \
    })

/* A growable byte string. Zero-initialise it; after any add, data is
 * NUL-terminated (the NUL is not counted in len), so text users can read it as
 * a C string while binary users (CBOR, HTTP bodies) use data/len. */
struct barge_buf {
    char *data;
    size_t len, cap;
};

void barge_buf_addn(struct barge_buf *b, const void *p, size_t n);
void barge_buf_adds(struct barge_buf *b, const char *s);
void barge_buf_addc(struct barge_buf *b, char c);
void barge_buf_addf(struct barge_buf *b, const char *fmt, ...) BARGE_PRINTF(2, 3);
/* Returns the contents (never NULL: "" when empty), which the caller frees,
 * and leaves b empty. *len_out (optional) receives the length. */
char *barge_buf_steal(struct barge_buf *b, size_t *len_out);
/* Frees the contents and leaves b empty. */
void barge_buf_release(struct barge_buf *b);

bool barge_str_has_prefix(const char *s, const char *prefix);
/* Copies src (NULL: "") into dst of size bytes, cut to fit; dst always ends
 * in a NUL. Returns strlen(src). */
size_t barge_strlcpy(char *dst, const char *src, size_t size);
bool barge_str_has_suffix(const char *s, const char *suffix);
bool barge_streq(const char *a, const char *b);

/* Writes data to path atomically: temporary file in the same directory, fsync,
 * rename, fsync of the directory. Returns 0 or -1 with errno set. */
int barge_write_file_atomic(const char *path, const void *data, size_t len, int mode);
/* Reads a whole file; returns a NUL-terminated buffer the caller frees, or NULL
 * with errno set. *len_out (optional) receives the length. */
char *barge_read_file(const char *path, size_t *len_out);
/* mkdir -p; returns 0 or -1 with errno set. */
int barge_mkdir_p(const char *path, int mode);

#endif
