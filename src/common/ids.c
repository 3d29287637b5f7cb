/* Random identifiers and clocks (see ids.h). */
#include "common/ids.h"

#include <sys/random.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void getrandom_all(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

/* Small draws (ids, request ids, tokens) come from a per-thread pool filled
 * by one getrandom call, rather than a system call each: one per request
 * shows in the API's profile. Bytes leave the pool once and are wiped as
 * they go; a forked child empties the pool it inherited so that it never
 * hands out the same bytes as its parent. */
#define POOL_SIZE 512
#define POOL_MAX  64 /* larger draws go straight to getrandom */

static __thread unsigned char pool[POOL_SIZE];
static __thread size_t pool_left;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
    explicit_bzero(pool, sizeof(pool));
    pool_left = 0;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, pool_forget);
}

void barge_random_bytes(void *buf, size_t n)
{
    if (n > POOL_MAX) {
        getrandom_all(buf, n);
        return;
    }
    pthread_once(&atfork_once, register_atfork);
    if (pool_left < n) {
        getrandom_all(pool, sizeof(pool));
        pool_left = sizeof(pool);
    }
    unsigned char *from = pool + sizeof(pool) - pool_left;
    memcpy(buf, from, n);
    explicit_bzero(from, n);
    pool_left -= n;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void barge_id_hex32(char out[33])
{
    unsigned char b[16];
    barge_random_bytes(b, sizeof(b));
    to_hex(b, sizeof(b), out);
}

void barge_id_uuid(char out[37])
{
    unsigned char b[16];
    barge_random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char hex[33];
    to_hex(b, sizeof(b), hex);
    /* 8-4-4-4-12 */
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}

double barge_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

int64_t barge_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void barge_time_amz(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
