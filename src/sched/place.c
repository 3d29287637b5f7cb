/* Resource-fit placement (see place.h). */
#include <stdlib.h>

#include "sched/place.h"

enum barge_sched_verdict barge_sched_fit(const struct barge_sched_instance *inst,
                                         const struct barge_sched_request *req)
{
    if (!inst->eligible)
        return BARGE_SCHED_NOT_ELIGIBLE;
    if (req->cpu > inst->cpu)
        return BARGE_SCHED_NO_CPU;
    if (req->memory > inst->memory)
        return BARGE_SCHED_NO_MEMORY;
    for (size_t i = 0; i < req->n_ports; i++)
        for (size_t j = 0; j < inst->n_ports; j++)
            if (req->ports[i] == inst->ports[j])
                return BARGE_SCHED_NO_PORTS;
    return BARGE_SCHED_FITS;
}

int barge_sched_place(struct barge_sched_instance *insts, size_t n,
                      const struct barge_sched_request *req, uint64_t random,
                      enum barge_sched_verdict *verdicts)
{
    size_t fits = 0;
    for (size_t i = 0; i < n; i++) {
        enum barge_sched_verdict v = barge_sched_fit(&insts[i], req);
        if (verdicts)
            verdicts[i] = v;
        if (v == BARGE_SCHED_FITS)
            fits++;
    }
    if (fits == 0)
        return -1;
    size_t pick = (size_t)(random % fits);
    for (size_t i = 0; i < n; i++) {
        if (barge_sched_fit(&insts[i], req) != BARGE_SCHED_FITS)
            continue;
        if (pick-- > 0)
            continue;
        struct barge_sched_instance *in = &insts[i];
        in->cpu -= req->cpu;
        in->memory -= req->memory;
        if (req->n_ports) {
            in->ports = barge_xrealloc(in->ports, (in->n_ports + req->n_ports) * sizeof(uint16_t));
            for (size_t p = 0; p < req->n_ports; p++)
                in->ports[in->n_ports++] = req->ports[p];
        }
        return (int)i;
    }
    return -1;
}

const char *barge_sched_verdict_reason(enum barge_sched_verdict v)
{
    switch (v) {
    case BARGE_SCHED_NO_CPU:
        return "RESOURCE:CPU";
    case BARGE_SCHED_NO_MEMORY:
        return "RESOURCE:MEMORY";
    case BARGE_SCHED_NO_PORTS:
        return "RESOURCE:PORTS";
    case BARGE_SCHED_NOT_ELIGIBLE:
        return "AGENT";
    case BARGE_SCHED_FITS:
        break;
    }
    return "";
}
