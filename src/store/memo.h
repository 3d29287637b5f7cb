/* Read memos: answers of hot reads (e.g. "the latest ACTIVE revision of task
 * definition family web") kept in memory and given again without touching the
 * database for as long as no write to their kind can have happened since.
 *
 * Whether a kind was written is told by counters in a small file beside the
 * database, mapped into every process that opens the store, so that writes by
 * another barged on the same SQLite file are seen too. Kinds hash into
 * MEMO_BUCKETS buckets; each has the sequence number of the last commit that
 * wrote to it and how many commits writing to it are in flight. A memo made by
 * a read transaction that began at sequence B holds while its bucket's last
 * commit is at most B and no commit is in flight: a commit marks itself in
 * flight before COMMIT and stamps its buckets after it, before the writer is
 * answered. A process killed between the two leaves its buckets in flight, so
 * they are not memoised again until every process has closed the store (the
 * first to open it then clears the file).
 *
 * Only src/store uses this; the rest of barged calls barge_store_memo_*. */
#ifndef BARGE_STORE_MEMO_H
#define BARGE_STORE_MEMO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define MEMO_BUCKETS 256

struct store_memo;

/* Maps (creating as needed) the counters at path; NULL when that fails,
 * which only turns memos off. */
struct store_memo *store_memo_open(const char *path);
void store_memo_free(struct store_memo *m);

/* The sequence number a read transaction beginning now starts from. */
uint64_t store_memo_seq(struct store_memo *m);
/* The bucket of a (region-qualified) kind. */
unsigned store_memo_bucket(const char *kind);

/* Around the commit of a transaction that wrote to the buckets in dirty (a
 * bitmap of MEMO_BUCKETS bits). */
void store_memo_commit_begin(struct store_memo *m, const uint64_t *dirty);
void store_memo_commit_end(struct store_memo *m, const uint64_t *dirty);

/* A memo of kind named name, valid for a read transaction that began at seq:
 * a new reference, or NULL. */
json_t *store_memo_get(struct store_memo *m, const char *kind, const char *name, uint64_t seq);
/* Keeps value (a new reference is taken) as kind's memo name, read by a
 * transaction that began at seq; does nothing when a write to kind may have
 * happened since. */
void store_memo_put(struct store_memo *m, const char *kind, const char *name, uint64_t seq,
                    json_t *value);

void store_memo_stats(struct store_memo *m, unsigned long *hits, unsigned long *misses);

#endif
