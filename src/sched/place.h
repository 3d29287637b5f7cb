/* Placement: which container instance a task goes to. Pure functions over a
 * snapshot of the instances (no store, no I/O), so placement is unit-tested and
 * benchmarked on its own. This first version fits cpu, memory and fixed host
 * ports and picks randomly among the instances that fit; the strategies
 * (spread, binpack) and constraints come with services. */
#ifndef BARGE_SCHED_PLACE_H
#define BARGE_SCHED_PLACE_H

#include <stdint.h>

#include "common/util.h"

#define BARGE_SCHED_MAX_PORTS 64

struct barge_sched_instance {
    const char *id;
    int64_t cpu;    /* remaining CPU units */
    int64_t memory; /* remaining MiB */
    /* Host ports taken on the instance (tcp and udp share the list for now). */
    uint16_t *ports;
    size_t n_ports;
    bool eligible; /* ACTIVE and its agent connected */
};

struct barge_sched_request {
    int64_t cpu;
    int64_t memory;
    uint16_t ports[BARGE_SCHED_MAX_PORTS]; /* fixed host ports the task needs */
    size_t n_ports;
};

enum barge_sched_verdict {
    BARGE_SCHED_FITS = 0,
    BARGE_SCHED_NOT_ELIGIBLE,
    BARGE_SCHED_NO_CPU,
    BARGE_SCHED_NO_MEMORY,
    BARGE_SCHED_NO_PORTS,
};

/* Does req fit on inst? */
enum barge_sched_verdict barge_sched_fit(const struct barge_sched_instance *inst,
                                         const struct barge_sched_request *req);

/* Picks an instance for req among insts: returns its index, or -1 when none
 * fits (then verdicts[i], when verdicts is not NULL, says why for each).
 * random is a value from a uniform source, so results are reproducible in
 * tests. On success the chosen instance's resources are reduced by req, so a
 * caller placing several tasks calls this again. */
int barge_sched_place(struct barge_sched_instance *insts, size_t n,
                      const struct barge_sched_request *req, uint64_t random,
                      enum barge_sched_verdict *verdicts);

/* ECS's failure reason for a verdict ("RESOURCE:MEMORY"...). */
const char *barge_sched_verdict_reason(enum barge_sched_verdict v);

#endif
