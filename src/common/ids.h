/* Identifiers and clocks: random ids in the forms ECS uses (32 hex task ids,
 * UUIDs, ecs-svc/ deployment ids), wall-clock time as epoch seconds, and the
 * monotonic clock for timeouts. */
#ifndef BARGE_COMMON_IDS_H
#define BARGE_COMMON_IDS_H

#include "common/util.h"

/* Fills buf with n random bytes from the kernel (getrandom); aborts on failure. */
void barge_random_bytes(void *buf, size_t n);
/* 32 lower-case hex characters; out must hold 33 bytes. */
void barge_id_hex32(char out[33]);
/* A random (version 4) UUID; out must hold 37 bytes. */
void barge_id_uuid(char out[37]);
/* Epoch seconds with millisecond precision, as ECS reports timestamps. */
double barge_now(void);
/* Milliseconds of the monotonic clock. */
int64_t barge_monotonic_ms(void);
/* Formats epoch seconds as ISO-8601 basic UTC ("20260701T120000Z"); out[17]. */
void barge_time_amz(time_t t, char out[17]);

#endif
