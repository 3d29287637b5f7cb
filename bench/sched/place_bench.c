/* bench/sched (part 1): decisions per second of the pure placement module.
 *
 * Builds a snapshot of simulated container instances (zones of unequal size,
 * a mix of instance types, a custom "stack" attribute, ECS's reserved ports)
 * and places tasks of many services into it, interleaved as a scheduler
 * scaling all of them up at once would, timing every decision. Each scenario
 * starts from a fresh snapshot. A naive scan (every instance, every decision,
 * the expression evaluated and zones compared as strings each time) runs on
 * the first tasks of the headline scenario to show what the indexes buy. The
 * published scheduler rates of Kubernetes and Nomad are printed alongside:
 * they measure whole systems (API, persistence, binding), this measures only
 * the decision, so the ratio is an upper bound on what barge can claim. */
#include <sys/utsname.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sched/place.h"

struct opts {
    size_t instances, tasks, services, zones, naive_tasks, repeat;
    uint64_t seed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const struct {
    const char *type;
    int64_t cpu, memory;
} types[] = {
    {"m5.xlarge", 4096, 15872}, {"m5.2xlarge", 8192, 31744}, {"c5.2xlarge", 8192, 15360},
    {"r5.xlarge", 4096, 31744}, {"t3.large", 2048, 7680},
};

static const char *const MEMBER_OF =
    "attribute:ecs.instance-type =~ (m5|c5|r5)\\..* and attribute:stack != canary";

static char zone_names[26][16];

static struct barge_sched_snapshot *build(const struct opts *o, double *secs)
{
    uint64_t x = o->seed;
    double t0 = now_s();
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    uint16_t reserved[] = {22, 2375, 2376, 51678, 51679};
    for (size_t i = 0; i < o->instances; i++) {
        char id[40], ec2[24], version[16];
        snprintf(id, sizeof(id), "%032zx", i * 2654435761u);
        snprintf(ec2, sizeof(ec2), "i-%017zx", i);
        snprintf(version, sizeof(version), "1.%d.0", 80 + (int)(next(&x) % 25));
        /* zones of unequal size: zone k gets weight zones - k */
        size_t total = o->zones * (o->zones + 1) / 2, pick = next(&x) % total, z = 0;
        while (pick >= o->zones - z)
            pick -= o->zones - z++;
        size_t t = next(&x) % BARGE_ARRAY_SIZE(types);
        struct barge_sched_attr attrs[] = {
            {"ecs.availability-zone", zone_names[z]},
            {"ecs.instance-type", types[t].type},
            {"ecs.os-type", "linux"},
            {"ecs.cpu-architecture", "x86_64"},
            {"stack", next(&x) % 10 == 0 ? "canary" : "prod"},
        };
        struct barge_sched_instance in = {
            .id = id,
            .arn = id,
            .ec2_instance_id = ec2,
            .agent_version = version,
            .attrs = attrs,
            .n_attrs = BARGE_ARRAY_SIZE(attrs),
            .registered_at = 1.7e9 + (double)i,
            .active = true,
            .agent_connected = next(&x) % 200 != 0, /* a few are lost */
            .cpu = types[t].cpu,
            .memory = types[t].memory,
            .ports = reserved,
            .n_ports = BARGE_ARRAY_SIZE(reserved),
        };
        barge_sched_snapshot_add(s, &in);
    }
    *secs = now_s() - t0;
    return s;
}

static void task_of(const struct opts *o, size_t t, char *group, size_t len,
                    struct barge_sched_request *r)
{
    size_t svc = t % o->services;
    snprintf(group, len, "service:svc%03zu", svc);
    static const int64_t cpus[] = {64, 128, 256, 128};
    static const int64_t mems[] = {128, 256, 512, 1024, 256};
    memset(r, 0, sizeof(*r));
    r->cpu = cpus[svc % BARGE_ARRAY_SIZE(cpus)];
    r->memory = mems[svc % BARGE_ARRAY_SIZE(mems)];
    r->group = group;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct result {
    const char *name;
    size_t placed, failed;
    double secs, p50, p99, worst, first, build;
    bool spread;    /* the scenario spreads over zones */
    long imbalance; /* max over services of (most - fewest tasks per zone) */
    size_t used;    /* instances holding at least one task */
};

static void measure_spread(const struct opts *o, struct barge_sched_snapshot *s, struct result *res)
{
    long *per = calloc(o->services * o->zones, sizeof(long));
    size_t n = barge_sched_snapshot_count(s);
    for (size_t i = 0; i < n; i++) {
        const struct barge_sched_instance *in = barge_sched_snapshot_get(s, i);
        if (in->n_groups)
            res->used++;
        const char *zone = barge_sched_instance_attr(in, "ecs.availability-zone", NULL);
        size_t z = (size_t)(zone[strlen(zone) - 1] - 'a');
        for (size_t g = 0; g < in->n_groups; g++) {
            size_t svc = (size_t)atoi(in->groups[g].group + strlen("service:svc"));
            per[svc * o->zones + z] += in->groups[g].count;
        }
    }
    for (size_t svc = 0; svc < o->services; svc++) {
        long lo = per[svc * o->zones], hi = lo;
        for (size_t z = 1; z < o->zones; z++) {
            long v = per[svc * o->zones + z];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (hi - lo > res->imbalance)
            res->imbalance = hi - lo;
    }
    free(per);
}

static void run_once(const struct opts *o, const char *const *strategies,
                     const char *const *constraints, struct result *res)
{
    struct barge_sched_snapshot *s = build(o, &res->build);
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    struct barge_error *err = NULL;
    for (size_t k = 0; strategies[k]; k += 2)
        if (barge_sched_policy_add_strategy(&p, strategies[k], strategies[k + 1], &err) < 0)
            goto bad;
    for (size_t k = 0; constraints[k]; k += 2)
        if (barge_sched_policy_add_constraint(&p, constraints[k], constraints[k + 1], false, &err) <
            0)
            goto bad;
    double *lat = malloc(o->tasks * sizeof(double));
    uint64_t x = o->seed ^ 0x5bd1e995;
    double t0 = now_s();
    for (size_t t = 0; t < o->tasks; t++) {
        char group[32];
        struct barge_sched_request r;
        task_of(o, t, group, sizeof(group), &r);
        r.policy = &p;
        double a = now_s();
        ssize_t i = barge_sched_place(s, &r, next(&x), NULL);
        lat[t] = now_s() - a;
        if (i < 0)
            res->failed++;
        else
            res->placed++;
    }
    res->secs = now_s() - t0;
    /* the first decision builds the indexes and fills the memberOf cache */
    res->first = lat[0];
    qsort(lat, o->tasks, sizeof(double), cmp_double);
    res->p50 = lat[o->tasks / 2];
    res->p99 = lat[(size_t)((double)o->tasks * 0.99)];
    res->worst = lat[o->tasks - 1];
    free(lat);
    measure_spread(o, s, res);
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);
    return;
bad:
    fprintf(stderr, "bench/sched: %s\n", err->message);
    exit(1);
}

static int cmp_rate(const void *a, const void *b)
{
    const struct result *x = a, *y = b;
    double rx = (double)(x->placed + x->failed) / x->secs,
           ry = (double)(y->placed + y->failed) / y->secs;
    return rx < ry ? -1 : rx > ry;
}

/* Runs a scenario o->repeat times on fresh snapshots: the run of median
 * throughput is reported, with the smallest of the runs' worst decisions (the
 * machine is shared; one preemption makes a worst case of milliseconds). */
static void run(const struct opts *o, const char *name, const char *const *strategies,
                const char *const *constraints, bool spread, struct result *res)
{
    struct result runs[16];
    size_t n = o->repeat < 16 ? o->repeat : 16;
    double worst = INFINITY, first = INFINITY;
    for (size_t k = 0; k < n; k++) {
        memset(&runs[k], 0, sizeof(runs[k]));
        run_once(o, strategies, constraints, &runs[k]);
        worst = runs[k].worst < worst ? runs[k].worst : worst;
        first = runs[k].first < first ? runs[k].first : first;
    }
    qsort(runs, n, sizeof(runs[0]), cmp_rate);
    *res = runs[n / 2];
    res->worst = worst;
    res->first = first;
    res->name = name;
    res->spread = spread;
}

/* The same rules as the headline scenario, read the slow way: every
 * instance, every decision; the expression evaluated and zones found by
 * string comparison each time. */
static void run_naive(const struct opts *o, struct result *res)
{
    memset(res, 0, sizeof(*res));
    res->name = "naive scan, same rules (first tasks only)";
    struct barge_sched_snapshot *s = build(o, &res->build);
    struct barge_cql *q;
    struct barge_error *err = NULL;
    if (barge_cql_parse(MEMBER_OF, &q, &err) < 0)
        exit(1);
    size_t n = barge_sched_snapshot_count(s);
    size_t tasks = o->naive_tasks < o->tasks ? o->naive_tasks : o->tasks;
    double *lat = malloc((tasks + 1) * sizeof(double));
    double t0 = now_s();
    for (size_t t = 0; t < tasks; t++) {
        char group[32];
        struct barge_sched_request r;
        task_of(o, t, group, sizeof(group), &r);
        double a = now_s();
        /* tasks of the group per zone */
        long per_zone[26] = {0};
        for (size_t i = 0; i < n; i++) {
            const struct barge_sched_instance *in = barge_sched_snapshot_get(s, i);
            const char *zone = barge_sched_instance_attr(in, "ecs.availability-zone", NULL);
            for (size_t z = 0; z < o->zones; z++)
                if (strcmp(zone, zone_names[z]) == 0)
                    per_zone[z] += barge_sched_instance_group_count(in, group);
        }
        ssize_t best = -1;
        long best_zone = 0;
        int64_t best_mem = 0;
        for (size_t i = 0; i < n; i++) {
            const struct barge_sched_instance *in = barge_sched_snapshot_get(s, i);
            if (!in->active || !in->agent_connected || in->cpu < r.cpu || in->memory < r.memory ||
                !barge_cql_eval(q, in))
                continue;
            const char *zone = barge_sched_instance_attr(in, "ecs.availability-zone", NULL);
            long zc = 0;
            for (size_t z = 0; z < o->zones; z++)
                if (strcmp(zone, zone_names[z]) == 0)
                    zc = per_zone[z];
            if (best < 0 || zc < best_zone || (zc == best_zone && in->memory < best_mem)) {
                best = (ssize_t)i;
                best_zone = zc;
                best_mem = in->memory;
            }
        }
        if (best >= 0) {
            barge_sched_commit(s, (size_t)best, &r);
            res->placed++;
        } else {
            res->failed++;
        }
        lat[t] = now_s() - a;
    }
    res->secs = now_s() - t0;
    qsort(lat, tasks, sizeof(double), cmp_double);
    res->p50 = lat[tasks / 2];
    res->p99 = lat[(size_t)((double)tasks * 0.99)];
    res->worst = lat[tasks - 1];
    res->first = lat[0];
    res->spread = true;
    free(lat);
    measure_spread(o, s, res);
    barge_cql_free(q);
    barge_sched_snapshot_free(s);
}

static void usage(void)
{
    fprintf(stderr, "usage: sched-place [--instances N] [--tasks N] [--services N] "
                    "[--zones N] [--naive-tasks N] [--repeat N] [--seed N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct opts o = {10000, 100000, 100, 3, 2000, 3, 42};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        unsigned long long v = strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--instances") == 0)
            o.instances = v;
        else if (strcmp(argv[i], "--tasks") == 0)
            o.tasks = v;
        else if (strcmp(argv[i], "--services") == 0)
            o.services = v;
        else if (strcmp(argv[i], "--zones") == 0)
            o.zones = v;
        else if (strcmp(argv[i], "--naive-tasks") == 0)
            o.naive_tasks = v;
        else if (strcmp(argv[i], "--repeat") == 0)
            o.repeat = v;
        else if (strcmp(argv[i], "--seed") == 0)
            o.seed = v;
        else
            usage();
        i++;
    }
    if (o.instances == 0 || o.tasks == 0 || o.services == 0 || o.zones == 0 || o.zones > 26 ||
        o.repeat == 0)
        usage();
    for (size_t z = 0; z < o.zones; z++)
        snprintf(zone_names[z], sizeof(zone_names[z]), "us-east-1%c", (char)('a' + z));

    static const char *const headline[] = {"spread", "attribute:ecs.availability-zone", "binpack",
                                           "memory", NULL};
    static const char *const ecs_default[] = {"spread", "attribute:ecs.availability-zone", "spread",
                                              "instanceId", NULL};
    static const char *const binpack_cpu[] = {"binpack", "cpu", NULL};
    static const char *const random_only[] = {"random", NULL, NULL};
    static const char *const member_of[] = {"memberOf", MEMBER_OF, NULL};
    static const char *const member_distinct[] = {"memberOf", MEMBER_OF, "distinctInstance", NULL,
                                                  NULL};
    static const char *const none[] = {NULL};
    struct result res[6];
    size_t nres = 0;
    run(&o, "spread(az)+binpack(memory), memberOf", headline, member_of, true, &res[nres++]);
    run(&o, "spread(az)+spread(instanceId), memberOf", ecs_default, member_of, true, &res[nres++]);
    run(&o, "binpack(cpu), memberOf+distinctInstance", binpack_cpu, member_distinct, false,
        &res[nres++]);
    run(&o, "random, no constraint", random_only, none, false, &res[nres++]);
    if (o.naive_tasks)
        run_naive(&o, &res[nres++]);

    struct utsname un;
    uname(&un);
    double load[3] = {0};
    getloadavg(load, 3);
    time_t wall = time(NULL);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&wall));
    printf("bench/sched: placement decisions of src/sched (pure, one thread)\n");
    printf("%s; %s %s; %ld CPUs; load %.2f %.2f %.2f\n", when, un.sysname, un.release,
           sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
    printf("%zu instances (%zu zones of unequal size, 5 instance types, 0.5%% disconnected), "
           "%zu tasks of %zu services placed interleaved\n",
           o.instances, o.zones, o.tasks, o.services);
    printf("memberOf: %s\n\n", MEMBER_OF);
    printf("%-44s %7s %6s %12s %7s %7s %9s %9s %7s %6s\n", "scenario", "placed", "failed",
           "placements/s", "p50 us", "p99 us", "worst us", "first us", "az skew", "hosts");
    for (size_t i = 0; i < nres; i++) {
        const struct result *r = &res[i];
        char skew[24] = "-";
        if (r->spread)
            snprintf(skew, sizeof(skew), "%ld", r->imbalance);
        printf("%-44s %7zu %6zu %12.0f %7.1f %7.1f %9.1f %9.1f %7s %6zu\n", r->name, r->placed,
               r->failed, (double)(r->placed + r->failed) / r->secs, r->p50 * 1e6, r->p99 * 1e6,
               r->worst * 1e6, r->first * 1e6, skew, r->used);
    }
    printf("\nmedian of %zu runs on fresh snapshots; worst us: the longest single decision, the "
           "smallest over the runs (the machine is shared); first us: the first decision (least "
           "over the runs), which builds the indexes and evaluates memberOf on every instance; "
           "snapshot build "
           "(%zu instances, outside the timings): %.1f ms; az skew: most minus fewest tasks of a "
           "service across zones (worst service); hosts: instances holding a task\n",
           o.repeat, o.instances, res[0].build * 1e3);
    double rate = (double)(res[0].placed + res[0].failed) / res[0].secs;
    printf("aim (issue 6): at least 10,000 placements/s with the headline rules: %.0f/s, %s\n",
           rate, rate >= 10000 ? "met" : "NOT met");
    if (o.naive_tasks) {
        const struct result *nv = &res[nres - 1];
        printf("indexes vs naive scan (headline rules): %.0fx more placements/s\n",
               rate / ((double)(nv->placed + nv->failed) / nv->secs));
    }

    static const struct {
        const char *what, *source;
        double rate;
    } anchors[] = {
        {"Kubernetes scheduler, 5,000 nodes (2019; tests rate-limited at 100/s)",
         "github.com/kubernetes/kubernetes/pull/74041", 100},
        {"Kubernetes scheduler_perf, 500 nodes (integration microbench, best)",
         "gist.github.com/alculquicondor/0da89fff89da9b3e4da13536393ee2d3", 909},
        {"Nomad C1M 2016: 1M containers, 5,000 hosts, <5 min, 5 servers", "hashicorp.com/c1m",
         3750},
        {"Nomad C2M 2020: 2M containers, 6,100 hosts, 22 min 14 s", "hashicorp.com/c2m", 1500},
    };
    printf("\npublished anchors (whole systems: API, storage and binding included; barge's "
           "number is the decision alone)\n");
    printf("%-72s %10s %14s  %s\n", "peer", "placed/s", "barge/peer", "source");
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(anchors); i++)
        printf("%-72s %10.0f %13.0fx  %s\n", anchors[i].what, anchors[i].rate,
               rate / anchors[i].rate, anchors[i].source);
    return 0;
}
