/* The pure half of the awslogs driver: reading conmon's k8s-file records,
 * turning awslogs-datetime-format and awslogs-multiline-pattern into POSIX
 * regular expressions, and assembling records into CloudWatch events (partial
 * records joined, multi-line events grouped, long ones split, bytes that are
 * not UTF-8 replaced). No I/O, so unit tests drive it directly. */
#ifndef BARGE_AGENT_LOGPARSE_H
#define BARGE_AGENT_LOGPARSE_H

#include <regex.h>
#include <stdint.h>

#include "common/error.h"

/* Docker's awslogs limit per event: CloudWatch's 256 KiB less the 26 bytes
 * of per-event overhead. */
#define BARGE_LOGPARSE_MAX_EVENT (262144 - 26)

/* One record of conmon's k8s-file log:
 *   "<RFC 3339 time> stdout|stderr F|P <text>" */
struct barge_logparse_record {
    int64_t timestamp; /* epoch milliseconds */
    bool is_stderr;
    bool partial;     /* P: the line goes on in the next record */
    const char *text; /* borrowed from the line */
    size_t len;
};

/* Parses one line without its newline. Returns 0, or -1 when it is not a
 * k8s-file record. */
int barge_logparse_k8s_record(const char *line, size_t len, struct barge_logparse_record *out);
/* RFC 3339 time ("2024-05-01T10:00:00.123456789+02:00", "...Z") to epoch
 * milliseconds; -1 when malformed. */
int barge_logparse_rfc3339(const char *s, size_t len, int64_t *ms);

/* The regular expression (POSIX extended) matching the start of a line in
 * strftime-like format fmt, as Docker's awslogs-datetime-format does. Caller
 * frees; BARGE_ERR_INVALID for an unknown directive. */
char *barge_logparse_datetime_regex(const char *fmt, struct barge_error **err);
/* Translates the RE2 syntax people write in awslogs-multiline-pattern
 * (\d \s \w and their negations, (?:...)) to POSIX extended; caller frees. */
char *barge_logparse_regex_translate(const char *re);
/* Compiles an awslogs-datetime-format (datetime non-NULL) or an
 * awslogs-multiline-pattern into re. */
int barge_logparse_compile(const char *datetime, const char *pattern, regex_t *re,
                           struct barge_error **err);

/* An event ready to ship. offset orders events of one file strictly (the
 * file position just past it, or within its line for the leading pieces of a
 * split line); resume is a record boundary to read again from after a restart
 * so that every later event is produced again. */
struct barge_logparse_event {
    int64_t timestamp;
    char *message; /* owned, valid UTF-8, NUL-terminated */
    size_t len;
    uint64_t offset;
    uint64_t resume;
};

struct barge_logparse_events {
    struct barge_logparse_event *v;
    size_t n, cap;
};
void barge_logparse_events_clear(struct barge_logparse_events *evs);
/* Drops the first n events. */
void barge_logparse_events_shift(struct barge_logparse_events *evs, size_t n);

/* Assembles records into events. With a start pattern, a line that matches
 * it begins a new event and other lines join the current one (with "\n");
 * without, each line is an event. Empty lines are not events of their own. */
struct barge_logparse_assembler;
/* start (may be NULL) is borrowed for the assembler's life. */
struct barge_logparse_assembler *barge_logparse_assembler_new(const regex_t *start,
                                                              size_t max_event);
void barge_logparse_assembler_free(struct barge_logparse_assembler *a);
/* Feeds the record that occupies [start, end) of the file; complete events
 * go to out. */
void barge_logparse_assembler_feed(struct barge_logparse_assembler *a,
                                   const struct barge_logparse_record *r, uint64_t start,
                                   uint64_t end, struct barge_logparse_events *out);
/* Ends whatever is pending (a multi-line event, a partial line) as an event. */
void barge_logparse_assembler_flush(struct barge_logparse_assembler *a,
                                    struct barge_logparse_events *out);
/* True when something is held back waiting for more lines. */
bool barge_logparse_assembler_pending(const struct barge_logparse_assembler *a);
/* Forgets anything pending (after skipping part of the file). */
void barge_logparse_assembler_reset(struct barge_logparse_assembler *a);

/* Replaces invalid UTF-8 in [s, s+len) with U+FFFD; returns a new string
 * (caller frees) and its length. */
char *barge_logparse_utf8_clean(const char *s, size_t len, size_t *out_len);

#endif
