/* The cluster query language of ECS: the expressions of memberOf placement
 * constraints and of ListContainerInstances' filter, such as
 *
 *     attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d
 *
 * An expression is `subject operator [argument]` combined with &&/and, ||/or,
 * !/not and parentheses (not binds tighter than and, and tighter than or).
 * Subjects: agentConnected, agentVersion, attribute:NAME, ec2InstanceId,
 * registeredAt, runningTasksCount, task:group. Operators: ==/equals,
 * !=/not_equals, >/greater_than, >=/greater_than_equal, </less_than,
 * <=/less_than_equal, exists, !exists/not_exists, in [a, b], !in/not_in,
 * =~/matches, !~/not_matches, each allowed with the subjects ECS documents
 * (attribute:NAME takes all of them). Values may be bare words or quoted
 * with ' or ".
 *
 * Semantics barge chose where ECS's documentation is silent:
 * - A negative operator is the negation of its positive one: `attribute:x !=
 *   a` holds for an instance without attribute x, and `task:group != g`
 *   holds when no task on the instance is in group g (task:group is the set
 *   of the groups of the instance's tasks; == and in ask "any of them").
 * - Ordering (> < ...) compares numbers as numbers and other text as
 *   versions (1.10.0 > 1.9.2); registeredAt compares dates, by whole days
 *   when the argument is a date without a time.
 * - matches is a whole-value match. ECS uses Java regular expressions; barge
 *   compiles them as POSIX extended ones after translating \d \w \s (and
 *   their negations outside brackets), (?:...), a leading (?i) and lazy
 *   quantifiers. Look-around, back references and possessive quantifiers
 *   are rejected at parse time.
 *
 * Parsing happens once (CreateService, RunTask); a compiled expression is
 * immutable, so one may be evaluated from several threads. */
#ifndef BARGE_SCHED_CQL_H
#define BARGE_SCHED_CQL_H

#include "common/error.h"
#include "sched/instance.h"

#define BARGE_CQL_MAX_LENGTH 2000

struct barge_cql;

/* Compiles text. On error returns -1 with an InvalidParameterException whose
 * message points at the problem: "expected a value after '==' at position 27
 * in '...'" (positions count characters from 1). *out is owned by the caller
 * (barge_cql_free). */
int barge_cql_parse(const char *text, struct barge_cql **out, struct barge_error **err);

void barge_cql_free(struct barge_cql *q);

/* Does the instance satisfy q? */
bool barge_cql_eval(const struct barge_cql *q, const struct barge_sched_instance *in);

/* True when q looks at the instance's tasks (task:group, runningTasksCount),
 * so its value changes as tasks are placed. */
bool barge_cql_uses_tasks(const struct barge_cql *q);

/* The source text (borrowed from q). */
const char *barge_cql_text(const struct barge_cql *q);

/* A number no other expression parsed by this process has: placement keys
 * its per-instance result cache on it. */
uint64_t barge_cql_serial(const struct barge_cql *q);

/* Compares two versions or other dotted values: digit runs as numbers, the
 * rest byte by byte. <0, 0, >0 like strcmp. */
int barge_cql_version_cmp(const char *a, const char *b);

#endif
