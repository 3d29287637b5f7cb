/* Fargate metering (ecs.h). A FARGATE task is billed as Fargate bills it:
 * from the start of its image pull until it stops, per second with a
 * one-minute minimum, for the task size it was configured with (vCPU and GB)
 * plus ephemeral storage above the included 20 GiB. A record is written when
 * a task stops (by StopTask, the agent's report or the lost-host watch); the
 * API's usage endpoint (src/api/usage.c) reads them. */
#include <math.h>
#include <stdlib.h>

#include "common/ids.h"
#include "common/json.h"
#include "ecs/ecs.h"

struct barge_prices barge_prices = {
    /* Public us-east-1 Linux/x86 rates. */
    .vcpu_hour = 0.04048,
    .gb_hour = 0.004445,
    .storage_gb_hour = 0.000111,
    .spot_factor = 1.0,
};

json_t *ecs_usage_measure(const json_t *task, double now)
{
    json_t *start = json_object_get(task, "pullStartedAt");
    if (!json_is_number(start))
        start = json_object_get(task, "startedAt");
    if (!json_is_number(start))
        start = json_object_get(task, "createdAt");
    json_t *stop = json_object_get(task, "stoppedAt");
    double t0 = json_number_value(start);
    double t1 = json_is_number(stop) ? json_number_value(stop) : now;
    json_int_t seconds = (json_int_t)ceil(t1 - t0 > 0 ? t1 - t0 : 0);
    json_int_t billed = seconds < 60 ? 60 : seconds;
    double vcpu = (double)atoll(barge_json_str(task, "cpu", "0")) / 1024.0;
    double gb = (double)atoll(barge_json_str(task, "memory", "0")) / 1024.0;
    json_int_t eph = barge_json_int(barge_json_object(task, "ephemeralStorage"), "sizeInGiB", 20);
    double extra = eph > 20 ? (double)(eph - 20) : 0;
    bool spot = barge_streq(barge_json_str(task, "capacityProviderName", NULL), "FARGATE_SPOT");
    double factor = spot ? barge_prices.spot_factor : 1.0;
    double cost = ((double)billed / 3600.0) *
                  (vcpu * barge_prices.vcpu_hour + gb * barge_prices.gb_hour +
                   extra * barge_prices.storage_gb_hour) *
                  factor;
    const char *group = barge_json_str(task, "group", "");
    json_t *r =
        json_pack("{s:s, s:s, s:s, s:b, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, "
                  "s:b}",
                  "taskArn", barge_json_str(task, "taskArn", ""), "cluster",
                  barge_json_str(task, "_cluster", ""), "group", group, "spot", spot, "start", t0,
                  "stop", t1, "seconds", seconds, "billedSeconds", billed, "vcpu", vcpu, "memoryGB",
                  gb, "ephemeralStorageGBAbove20", extra, "vcpuSeconds", vcpu * (double)billed,
                  "gbSeconds", gb * (double)billed, "cost", cost, "running", !json_is_number(stop));
    if (barge_str_has_prefix(group, "service:"))
        json_object_set_new(r, "service", json_string(group + 8));
    return r;
}

int ecs_usage_record(struct barge_tx *tx, const json_t *task, struct barge_error **err)
{
    if (!barge_streq(barge_json_str(task, "launchType", NULL), "FARGATE"))
        return 0;
    _cleanup_json_ json_t *r = ecs_usage_measure(task, barge_now());
    _cleanup_free_ char *key = barge_xasprintf(
        "%s/%017.3f/%s", barge_json_str(task, "_cluster", ""),
        json_number_value(json_object_get(r, "stop")), barge_json_str(task, "_id", ""));
    return barge_store_put(tx, ECS_KIND_USAGE, key, r, err);
}
