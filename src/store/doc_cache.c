/* The parsed-document cache (doc_cache.h): a direct-mapped table of slots,
 * each holding the (kind, key) it caches, the exact text it was parsed from
 * and the parsed document. A hit hands out a deep copy, since callers change
 * the documents they read, or for a shared read the document itself; the
 * cached document is never changed after it is stored, and a reader holds a
 * reference to it while copying or reading, so replacing a slot under a reader
 * is safe. */
#include "store/doc_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define MAX_KINDS 8

struct slot {
    char *kind;
    char *key;
    char *text;
    size_t len;
    json_t *doc;
};

struct doc_cache {
    pthread_mutex_t lock;
    char *kinds[MAX_KINDS];
    size_t n_kinds;
    size_t bytes; /* text held by all slots */
    unsigned long hits, misses;
    struct slot slots[DOC_CACHE_SLOTS];
};

struct doc_cache *doc_cache_new(void)
{
    struct doc_cache *c = barge_xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void slot_clear(struct doc_cache *c, struct slot *s)
{
    c->bytes -= s->len;
    free(s->kind);
    free(s->key);
    free(s->text);
    json_decref(s->doc);
    memset(s, 0, sizeof(*s));
}

void doc_cache_free(struct doc_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < DOC_CACHE_SLOTS; i++)
        slot_clear(c, &c->slots[i]);
    for (size_t i = 0; i < c->n_kinds; i++)
        free(c->kinds[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void doc_cache_add_kind(struct doc_cache *c, const char *kind)
{
    pthread_mutex_lock(&c->lock);
    if (c->n_kinds < MAX_KINDS)
        c->kinds[c->n_kinds++] = barge_xstrdup(kind);
    pthread_mutex_unlock(&c->lock);
}

/* kind may be a region's ("task@eu-west-1", see barge_store_regions_init):
 * caching a kind caches it in every region. */
static bool kind_cached(struct doc_cache *c, const char *kind)
{
    size_t len = strcspn(kind, "@");
    for (size_t i = 0; i < c->n_kinds; i++)
        if (strlen(c->kinds[i]) == len && strncmp(c->kinds[i], kind, len) == 0)
            return true;
    return false;
}

/* FNV-1a over kind, a separator and key. */
static size_t slot_index(const char *kind, const char *key)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = kind; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (size_t)(h % DOC_CACHE_SLOTS);
}

json_t *doc_cache_parse(struct doc_cache *c, const char *kind, const char *key, const char *text,
                        size_t len, bool shared, json_error_t *jerr)
{
    if (!c || len > DOC_CACHE_MAX_DOC)
        return json_loadb(text, len, 0, jerr);
    pthread_mutex_lock(&c->lock);
    if (!kind_cached(c, kind)) {
        pthread_mutex_unlock(&c->lock);
        return json_loadb(text, len, 0, jerr);
    }
    struct slot *s = &c->slots[slot_index(kind, key)];
    json_t *cached = NULL;
    if (s->doc && s->len == len && strcmp(s->key, key) == 0 && strcmp(s->kind, kind) == 0 &&
        memcmp(s->text, text, len) == 0) {
        cached = json_incref(s->doc);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->lock);
    if (cached && shared)
        return cached;
    if (cached) {
        json_t *copy = json_deep_copy(cached);
        json_decref(cached);
        if (!copy)
            abort();
        return copy;
    }

    json_t *doc = json_loadb(text, len, 0, jerr);
    if (!doc)
        return NULL;
    json_t *keep = shared ? json_incref(doc) : json_deep_copy(doc);
    if (!keep)
        abort();
    pthread_mutex_lock(&c->lock);
    slot_clear(c, s);
    if (c->bytes + len <= DOC_CACHE_MAX_BYTES) {
        s->kind = barge_xstrdup(kind);
        s->key = barge_xstrdup(key);
        s->text = barge_xmalloc(len ? len : 1);
        memcpy(s->text, text, len);
        s->len = len;
        s->doc = keep;
        c->bytes += len;
        keep = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    json_decref(keep);
    return doc;
}

void doc_cache_stats(struct doc_cache *c, unsigned long *hits, unsigned long *misses)
{
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
