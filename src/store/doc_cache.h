/* Parsed documents kept in memory, so that a document read again and again
 * (a task definition behind every DescribeTaskDefinition and RunTask) is not
 * parsed from its JSON text each time. An entry is found by (kind, key) and is
 * used only when the text the store just returned is byte for byte the text
 * it was parsed from; any change to the document, by this barged or by another
 * one sharing the database, changes the text and so replaces the entry. The
 * cache never answers a read by itself: the store is always read first.
 *
 * Only the kinds named with doc_cache_add_kind are cached. The cache holds at
 * most DOC_CACHE_SLOTS documents and DOC_CACHE_MAX_BYTES of text; a new
 * document takes the slot of whatever document hashed to the same slot. Safe
 * to use from several threads. */
#ifndef BARGE_STORE_DOC_CACHE_H
#define BARGE_STORE_DOC_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define DOC_CACHE_SLOTS     4096
#define DOC_CACHE_MAX_BYTES (32u << 20)
#define DOC_CACHE_MAX_DOC   (256u << 10) /* larger documents are parsed every time */

struct doc_cache;

struct doc_cache *doc_cache_new(void);
void doc_cache_free(struct doc_cache *c);
/* Caches documents of kind from now on (at most 8 kinds). */
void doc_cache_add_kind(struct doc_cache *c, const char *kind);

/* Parses text (len bytes), the stored form of (kind, key): a new reference,
 * or NULL with jerr set when text is not JSON. c may be NULL (nothing cached).
 * Without shared the document is the caller's own to change. With shared, for
 * a cached kind it may be the cached document itself, which nobody may change:
 * read it, or json_deep_copy it to keep a changeable copy. */
json_t *doc_cache_parse(struct doc_cache *c, const char *kind, const char *key, const char *text,
                        size_t len, bool shared, json_error_t *jerr);

/* Counters for tests and metrics: parses answered from the cache, and parses
 * of cached kinds that had to read the text. */
void doc_cache_stats(struct doc_cache *c, unsigned long *hits, unsigned long *misses);

#endif
