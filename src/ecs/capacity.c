/* Capacity providers as placement sees them: the built-in Fargate ones and
 * the choice of a provider for each task of a capacityProviderStrategy by
 * base and weight (ecs.h). The capacity provider API is api/ecs_capacity.c. */
#include "common/json.h"
#include "ecs/ecs.h"

bool ecs_capacity_is_fargate(const char *name)
{
    return barge_streq(name, "FARGATE") || barge_streq(name, "FARGATE_SPOT");
}

const char *ecs_capacity_pick(const json_t *strategy, json_t *counts)
{
    /* The provider with a base gets tasks until it has base many; the rest go
     * where the count is lowest relative to the weight. */
    size_t i;
    json_t *s;
    const char *best = NULL;
    double best_ratio = 0;
    json_array_foreach((json_t *)strategy, i, s)
    {
        const char *name = barge_json_str(s, "capacityProvider", "");
        json_int_t have = barge_json_int(counts, name, 0);
        if (have < barge_json_int(s, "base", 0)) {
            best = name;
            break;
        }
    }
    if (!best) {
        json_int_t total_base = 0;
        json_array_foreach((json_t *)strategy, i, s)
        {
            total_base += barge_json_int(s, "base", 0);
        }
        json_array_foreach((json_t *)strategy, i, s)
        {
            const char *name = barge_json_str(s, "capacityProvider", "");
            json_int_t w = barge_json_int(s, "weight", 0);
            if (w <= 0)
                continue;
            json_int_t have = barge_json_int(counts, name, 0) - barge_json_int(s, "base", 0);
            double ratio = (double)(have < 0 ? 0 : have) / (double)w;
            if (!best || ratio < best_ratio) {
                best = name;
                best_ratio = ratio;
            }
        }
        (void)total_base;
    }
    if (!best)
        best = barge_json_str(json_array_get(strategy, 0), "capacityProvider", "FARGATE");
    json_object_set_new(counts, best, json_integer(barge_json_int(counts, best, 0) + 1));
    return best;
}
