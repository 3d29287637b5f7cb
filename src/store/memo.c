/* Read memos (memo.h). */
#include "store/memo.h"

#include <sys/file.h>
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define MEMO_MAGIC 0x6261726765316d6dULL /* "barge1mm" */
#define SLOTS      1024
#define MAX_MEMOS  4096

/* The counters shared by every process that opens the store. */
struct shared {
    uint64_t magic;
    uint64_t seq;
    uint64_t last[MEMO_BUCKETS];
    uint32_t inflight[MEMO_BUCKETS];
};

struct entry {
    struct entry *next;
    uint64_t seq; /* the memo holds while its bucket's last commit is at most this */
    json_t *value;
    char key[]; /* kind, '\n', name */
};

struct store_memo {
    int fd;
    struct shared *sh;
    pthread_rwlock_t lock;
    struct entry *slots[SLOTS];
    size_t count;
    unsigned long hits, misses;
};

struct store_memo *store_memo_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        barge_warn("store: no read memos: cannot open '%s': %m", path);
        return NULL;
    }
    /* Nobody else has the store open: forget what a process killed in the
     * middle of a commit left in flight. */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && ftruncate(fd, 0) < 0)
        goto fail;
    if (ftruncate(fd, sizeof(struct shared)) < 0 || flock(fd, LOCK_SH) < 0)
        goto fail;
    struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sh == MAP_FAILED)
        goto fail;
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&sh->magic, &zero, MEMO_MAGIC, false, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&sh->magic, __ATOMIC_SEQ_CST) != MEMO_MAGIC) {
        munmap(sh, sizeof(*sh));
        errno = EINVAL;
        goto fail;
    }
    struct store_memo *m = barge_xcalloc(1, sizeof(*m));
    m->fd = fd;
    m->sh = sh;
    pthread_rwlock_init(&m->lock, NULL);
    return m;
fail:
    barge_warn("store: no read memos: '%s': %m", path);
    close(fd);
    return NULL;
}

static void drop_all(struct store_memo *m)
{
    for (size_t i = 0; i < SLOTS; i++) {
        while (m->slots[i]) {
            struct entry *e = m->slots[i];
            m->slots[i] = e->next;
            json_decref(e->value);
            free(e);
        }
    }
    m->count = 0;
}

void store_memo_free(struct store_memo *m)
{
    if (!m)
        return;
    drop_all(m);
    pthread_rwlock_destroy(&m->lock);
    munmap(m->sh, sizeof(*m->sh));
    close(m->fd); /* releases the shared lock */
    free(m);
}

uint64_t store_memo_seq(struct store_memo *m)
{
    return __atomic_load_n(&m->sh->seq, __ATOMIC_SEQ_CST);
}

static uint32_t hash(const char *s, uint32_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u; /* FNV-1a */
    return h;
}

unsigned store_memo_bucket(const char *kind)
{
    return hash(kind, 2166136261u) % MEMO_BUCKETS;
}

#define FOREACH_DIRTY(dirty, b)                 \
    for (unsigned b = 0; b < MEMO_BUCKETS; b++) \
        if (dirty[b / 64] & (1ULL << (b % 64)))

void store_memo_commit_begin(struct store_memo *m, const uint64_t *dirty)
{
    FOREACH_DIRTY(dirty, b)
    __atomic_add_fetch(&m->sh->inflight[b], 1, __ATOMIC_SEQ_CST);
}

void store_memo_commit_end(struct store_memo *m, const uint64_t *dirty)
{
    uint64_t s = __atomic_add_fetch(&m->sh->seq, 1, __ATOMIC_SEQ_CST);
    FOREACH_DIRTY(dirty, b)
    {
        /* Stamps only go up: two commits may end in either order. */
        uint64_t cur = __atomic_load_n(&m->sh->last[b], __ATOMIC_SEQ_CST);
        while (cur < s && !__atomic_compare_exchange_n(&m->sh->last[b], &cur, s, false,
                                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            ;
    }
    FOREACH_DIRTY(dirty, b)
    __atomic_sub_fetch(&m->sh->inflight[b], 1, __ATOMIC_SEQ_CST);
}

/* Whether kind's bucket has had no commit since seq and has none in flight. */
static bool quiet_since(struct store_memo *m, unsigned b, uint64_t seq)
{
    if (__atomic_load_n(&m->sh->inflight[b], __ATOMIC_SEQ_CST) != 0)
        return false;
    return __atomic_load_n(&m->sh->last[b], __ATOMIC_SEQ_CST) <= seq;
}

static struct entry **find(struct store_memo *m, const char *kind, const char *name, uint32_t *slot)
{
    *slot = hash(name, hash("\n", hash(kind, 2166136261u))) % SLOTS;
    size_t klen = strlen(kind);
    for (struct entry **p = &m->slots[*slot]; *p; p = &(*p)->next) {
        const char *k = (*p)->key;
        if (strncmp(k, kind, klen) == 0 && k[klen] == '\n' && strcmp(k + klen + 1, name) == 0)
            return p;
    }
    return NULL;
}

json_t *store_memo_get(struct store_memo *m, const char *kind, const char *name, uint64_t seq)
{
    unsigned b = store_memo_bucket(kind);
    json_t *value = NULL;
    if (quiet_since(m, b, seq)) {
        uint32_t slot;
        pthread_rwlock_rdlock(&m->lock);
        struct entry **e = find(m, kind, name, &slot);
        if (e && quiet_since(m, b, (*e)->seq))
            value = json_incref((*e)->value);
        pthread_rwlock_unlock(&m->lock);
    }
    __atomic_add_fetch(value ? &m->hits : &m->misses, 1, __ATOMIC_RELAXED);
    return value;
}

void store_memo_put(struct store_memo *m, const char *kind, const char *name, uint64_t seq,
                    json_t *value)
{
    unsigned b = store_memo_bucket(kind);
    if (!quiet_since(m, b, seq))
        return;
    pthread_rwlock_wrlock(&m->lock);
    uint32_t slot;
    struct entry **p = find(m, kind, name, &slot);
    if (p) {
        if ((*p)->seq < seq) {
            json_decref((*p)->value);
            (*p)->value = json_incref(value);
            (*p)->seq = seq;
        }
    } else {
        if (m->count >= MAX_MEMOS)
            drop_all(m);
        size_t klen = strlen(kind), nlen = strlen(name);
        struct entry *e = barge_xcalloc(1, sizeof(*e) + klen + nlen + 2);
        memcpy(e->key, kind, klen);
        e->key[klen] = '\n';
        memcpy(e->key + klen + 1, name, nlen + 1);
        e->seq = seq;
        e->value = json_incref(value);
        e->next = m->slots[slot];
        m->slots[slot] = e;
        m->count++;
    }
    pthread_rwlock_unlock(&m->lock);
}

void store_memo_stats(struct store_memo *m, unsigned long *hits, unsigned long *misses)
{
    *hits = __atomic_load_n(&m->hits, __ATOMIC_RELAXED);
    *misses = __atomic_load_n(&m->misses, __ATOMIC_RELAXED);
}
