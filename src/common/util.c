/* Implementation of the aborting allocators and file helpers of util.h. */
#include "common/util.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom(void)
{
    static const char msg[] = "barge: out of memory\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    abort();
}

void *barge_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *barge_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *barge_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom();
    return q;
}

char *barge_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        oom();
    return p;
}

char *barge_xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p)
        oom();
    return p;
}

char *barge_xvasprintf(const char *fmt, va_list ap)
{
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        oom();
    return out;
}

char *barge_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return out;
}

size_t barge_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = src ? strlen(src) : 0;
    if (size > 0) {
        size_t n = len < size ? len : size - 1;
        if (n)
            memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

bool barge_str_has_prefix(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

bool barge_str_has_suffix(const char *s, const char *suffix)
{
    if (!s)
        return false;
    size_t ls = strlen(s), lf = strlen(suffix);
    return ls >= lf && memcmp(s + ls - lf, suffix, lf) == 0;
}

bool barge_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int fsync_dir_of(const char *path)
{
    _cleanup_free_ char *copy = barge_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int barge_write_file_atomic(const char *path, const void *data, size_t len, int mode)
{
    _cleanup_free_ char *tmp = barge_xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return fsync_dir_of(path);
fail : {
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}
}

void barge_buf_addn(struct barge_buf *b, const void *p, size_t n)
{
    if (!b->data) /* fresh, or its data was stolen with barge_steal() */
        b->len = b->cap = 0;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len <= n)
            cap *= 2;
        b->data = barge_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void barge_buf_adds(struct barge_buf *b, const char *s)
{
    barge_buf_addn(b, s, strlen(s));
}

void barge_buf_addc(struct barge_buf *b, char c)
{
    barge_buf_addn(b, &c, 1);
}

void barge_buf_addf(struct barge_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = barge_xvasprintf(fmt, ap);
    va_end(ap);
    barge_buf_adds(b, s);
}

char *barge_buf_steal(struct barge_buf *b, size_t *len_out)
{
    if (len_out)
        *len_out = b->len;
    char *s = b->data ? b->data : barge_xstrdup("");
    memset(b, 0, sizeof(*b));
    return s;
}

void barge_buf_release(struct barge_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

char *barge_read_file(const char *path, size_t *len_out)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = barge_xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = barge_xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            free(buf);
            errno = saved;
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

int barge_mkdir_p(const char *path, int mode)
{
    _cleanup_free_ char *copy = barge_xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, (mode_t)mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(copy, (mode_t)mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}
