/* Placement over a snapshot (see place.h for the rules).
 *
 * Every string of the snapshot is interned, so a group or attribute value is
 * compared by pointer. The indexes are built the first time a decision needs
 * them and then kept current by add_task/remove_task:
 * - a partition per spread attribute (and one, attr NULL, holding every
 *   instance): its buckets are the attribute's values, each listing the
 *   eligible instances with that value;
 * - per task group, how many of its tasks each bucket of a partition holds;
 * - per partition and resource, each bucket's instances sorted by what they
 *   have left (binpack);
 * - per memberOf expression (keyed by its serial), each instance's answer,
 *   stamped with the instance's version when the expression looks at tasks.
 * A decision that starts with spread over an attribute visits the buckets
 * from the least loaded value up and stops at the first tie of values where
 * something fits; binpack next visits a bucket from the smallest instance
 * that could fit. */
#include "sched/place.h"

#include <string.h>

#define NONE       UINT32_MAX
#define MAX_MEMOS  64
#define MAX_TIERED 64 /* spread values beyond this: plain scan */

/* --- interning ------------------------------------------------------------ */

struct gstate;

struct istr {
    char *s;
    uint64_t hash;
    struct gstate *group;  /* when the string names a task group */
    uint32_t mark, bucket; /* scratch for building partitions */
};

struct intern {
    struct istr *slots;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct istr *intern_slot(struct intern *t, const char *s, uint64_t h)
{
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct istr *e = &t->slots[i];
        if (!e->s || (e->hash == h && strcmp(e->s, s) == 0))
            return e;
    }
}

static struct istr *intern_get(struct intern *t, const char *s)
{
    if (!s)
        return NULL;
    if (t->n * 10 >= t->cap * 7) {
        struct intern bigger = {barge_xcalloc(t->cap ? t->cap * 2 : 256, sizeof(struct istr)),
                                t->cap ? t->cap * 2 : 256, t->n};
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].s)
                *intern_slot(&bigger, t->slots[i].s, t->slots[i].hash) = t->slots[i];
        free(t->slots);
        *t = bigger;
    }
    uint64_t h = hash_str(s);
    struct istr *e = intern_slot(t, s, h);
    if (!e->s) {
        e->s = barge_xstrdup(s);
        e->hash = h;
        t->n++;
    }
    return e;
}

static const char *intern(struct intern *t, const char *s)
{
    struct istr *e = intern_get(t, s);
    return e ? e->s : NULL;
}

/* --- the snapshot's parts ------------------------------------------------- */

struct partition {
    const char *attr; /* interned; NULL: one bucket with every instance */
    uint32_t n_buckets;
    const char **values; /* per bucket (NULL: instances without the attribute) */
    uint32_t *bucket_of; /* per instance, eligible or not */
    uint32_t **members;  /* per bucket: its eligible instances */
    uint32_t *n_members;
    bool sorted[2];      /* [0] by cpu, [1] by memory */
    uint32_t **order[2]; /* per bucket: members by what they have left */
    uint32_t *pos[2];    /* per instance: its place in its bucket's order */
};

struct gstate {
    const char *name;
    uint32_t **counts; /* per partition (NULL until needed): tasks per bucket */
    size_t n_counts;
};

struct memo {
    uint64_t serial;
    bool uses_tasks;
    uint8_t *val;  /* per instance: 0 unknown, 1 false, 2 true */
    uint32_t *ver; /* per instance: its version when val was computed */
};

struct barge_sched_snapshot {
    struct barge_sched_instance *insts;
    size_t n, cap;
    uint32_t *version; /* bumped on every task change of the instance */
    bool *eligible;
    struct intern strings;
    struct gstate **groups;
    size_t n_groups;
    struct partition **parts;
    size_t n_parts;
    struct memo memos[MAX_MEMOS];
    size_t n_memos, next_memo;
    uint32_t *elig_list;
    size_t n_elig;
    bool indexed;
    uint32_t marks; /* generation of istr.mark */
};

struct barge_sched_snapshot *barge_sched_snapshot_new(void)
{
    return barge_xcalloc(1, sizeof(struct barge_sched_snapshot));
}

static void partition_free(struct partition *p)
{
    for (uint32_t b = 0; b < p->n_buckets; b++) {
        free(p->members[b]);
        for (int r = 0; r < 2; r++)
            if (p->sorted[r])
                free(p->order[r][b]);
    }
    for (int r = 0; r < 2; r++) {
        free(p->order[r]);
        free(p->pos[r]);
    }
    free(p->members);
    free(p->n_members);
    free(p->values);
    free(p->bucket_of);
    free(p);
}

/* Forgets everything derived from the instance list. */
static void drop_indexes(struct barge_sched_snapshot *s)
{
    for (size_t i = 0; i < s->n_parts; i++)
        partition_free(s->parts[i]);
    free(s->parts);
    s->parts = NULL;
    s->n_parts = 0;
    for (size_t i = 0; i < s->n_groups; i++) {
        struct gstate *g = s->groups[i];
        for (size_t k = 0; k < g->n_counts; k++)
            free(g->counts[k]);
        free(g->counts);
        g->counts = NULL;
        g->n_counts = 0;
    }
    for (size_t i = 0; i < s->n_memos; i++) {
        free(s->memos[i].val);
        free(s->memos[i].ver);
    }
    s->n_memos = s->next_memo = 0;
    free(s->elig_list);
    s->elig_list = NULL;
    s->indexed = false;
}

void barge_sched_snapshot_free(struct barge_sched_snapshot *s)
{
    if (!s)
        return;
    drop_indexes(s);
    for (size_t i = 0; i < s->n; i++) {
        free(s->insts[i].attrs);
        free(s->insts[i].ports);
        free(s->insts[i].groups);
    }
    free(s->insts);
    free(s->version);
    free(s->eligible);
    for (size_t i = 0; i < s->n_groups; i++)
        free(s->groups[i]);
    free(s->groups);
    for (size_t i = 0; i < s->strings.cap; i++)
        free(s->strings.slots[i].s);
    free(s->strings.slots);
    free(s);
}

static struct gstate *group_state(struct barge_sched_snapshot *s, const char *group)
{
    struct istr *e = intern_get(&s->strings, group ? group : "");
    if (!e->group) {
        e->group = barge_xcalloc(1, sizeof(struct gstate));
        e->group->name = e->s;
        s->groups = barge_xrealloc(s->groups, (s->n_groups + 1) * sizeof(*s->groups));
        s->groups[s->n_groups++] = e->group;
    }
    return e->group;
}

size_t barge_sched_snapshot_add(struct barge_sched_snapshot *s,
                                const struct barge_sched_instance *in)
{
    drop_indexes(s);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->insts = barge_xrealloc(s->insts, s->cap * sizeof(*s->insts));
        s->version = barge_xrealloc(s->version, s->cap * sizeof(*s->version));
        s->eligible = barge_xrealloc(s->eligible, s->cap * sizeof(*s->eligible));
    }
    size_t idx = s->n++;
    struct barge_sched_instance *c = &s->insts[idx];
    *c = *in;
    c->id = intern(&s->strings, in->id ? in->id : "");
    c->arn = intern(&s->strings, in->arn ? in->arn : c->id);
    c->ec2_instance_id = intern(&s->strings, in->ec2_instance_id);
    c->agent_version = intern(&s->strings, in->agent_version);
    c->attrs = barge_xmalloc((in->n_attrs + 1) * sizeof(*c->attrs));
    for (size_t i = 0; i < in->n_attrs; i++) {
        c->attrs[i].name = intern(&s->strings, in->attrs[i].name);
        c->attrs[i].value = intern(&s->strings, in->attrs[i].value);
    }
    c->ports = barge_xmalloc((in->n_ports + 1) * sizeof(*c->ports));
    if (in->n_ports)
        memcpy(c->ports, in->ports, in->n_ports * sizeof(*c->ports));
    c->groups = barge_xmalloc((in->n_groups + 1) * sizeof(*c->groups));
    c->n_groups = 0;
    for (size_t i = 0; i < in->n_groups; i++) {
        if (in->groups[i].count == 0)
            continue;
        c->groups[c->n_groups].group = group_state(s, in->groups[i].group)->name;
        c->groups[c->n_groups++].count = in->groups[i].count;
    }
    s->version[idx] = 0;
    s->eligible[idx] = in->active && in->agent_connected;
    return idx;
}

size_t barge_sched_snapshot_count(const struct barge_sched_snapshot *s)
{
    return s->n;
}

const struct barge_sched_instance *barge_sched_snapshot_get(const struct barge_sched_snapshot *s,
                                                            size_t idx)
{
    return idx < s->n ? &s->insts[idx] : NULL;
}

ssize_t barge_sched_snapshot_find(const struct barge_sched_snapshot *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->insts[i].id, id) == 0)
            return (ssize_t)i;
    return -1;
}

/* Tasks of an interned group on instance i. */
static uint32_t group_count(const struct barge_sched_instance *in, const char *g)
{
    for (size_t k = 0; k < in->n_groups; k++)
        if (in->groups[k].group == g)
            return in->groups[k].count;
    return 0;
}

/* --- partitions ----------------------------------------------------------- */

static int64_t resource(const struct barge_sched_snapshot *s, uint32_t i, int r)
{
    return r ? s->insts[i].memory : s->insts[i].cpu;
}

static bool res_less(const struct barge_sched_snapshot *s, int r, uint32_t a, uint32_t b)
{
    int64_t x = resource(s, a, r), y = resource(s, b, r);
    return x < y || (x == y && a < b);
}

struct sort_ctx {
    const struct barge_sched_snapshot *s;
    int r;
};

static int cmp_by_resource(const void *a, const void *b, void *arg)
{
    const struct sort_ctx *c = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return res_less(c->s, c->r, x, y) ? -1 : res_less(c->s, c->r, y, x) ? 1 : 0;
}

static void ensure_sorted(struct barge_sched_snapshot *s, struct partition *p, int r)
{
    if (p->sorted[r])
        return;
    p->order[r] = barge_xcalloc(p->n_buckets, sizeof(uint32_t *));
    p->pos[r] = barge_xcalloc(s->n + 1, sizeof(uint32_t));
    struct sort_ctx c = {s, r};
    for (uint32_t b = 0; b < p->n_buckets; b++) {
        uint32_t n = p->n_members[b];
        p->order[r][b] = barge_xmalloc((n + 1) * sizeof(uint32_t));
        memcpy(p->order[r][b], p->members[b], n * sizeof(uint32_t));
        qsort_r(p->order[r][b], n, sizeof(uint32_t), cmp_by_resource, &c);
        for (uint32_t k = 0; k < n; k++)
            p->pos[r][p->order[r][b][k]] = k;
    }
    p->sorted[r] = true;
}

/* Moves instance i to its place after its resources changed. */
static void reposition(struct barge_sched_snapshot *s, struct partition *p, int r, uint32_t i)
{
    uint32_t b = p->bucket_of[i];
    uint32_t *ord = p->order[r][b], n = p->n_members[b], k = p->pos[r][i];
    while (k > 0 && res_less(s, r, i, ord[k - 1])) {
        ord[k] = ord[k - 1];
        p->pos[r][ord[k]] = k;
        k--;
    }
    while (k + 1 < n && res_less(s, r, ord[k + 1], i)) {
        ord[k] = ord[k + 1];
        p->pos[r][ord[k]] = k;
        k++;
    }
    ord[k] = i;
    p->pos[r][i] = k;
}

static void ensure_indexed(struct barge_sched_snapshot *s)
{
    if (s->indexed)
        return;
    s->elig_list = barge_xmalloc((s->n + 1) * sizeof(uint32_t));
    s->n_elig = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->eligible[i])
            s->elig_list[s->n_elig++] = (uint32_t)i;
    s->indexed = true;
}

static size_t partition_index(struct barge_sched_snapshot *s, const char *attr)
{
    ensure_indexed(s);
    attr = attr ? intern(&s->strings, attr) : NULL;
    for (size_t k = 0; k < s->n_parts; k++)
        if (s->parts[k]->attr == attr)
            return k;
    struct partition *p = barge_xcalloc(1, sizeof(*p));
    p->attr = attr;
    p->bucket_of = barge_xmalloc((s->n + 1) * sizeof(uint32_t));
    uint32_t mark = ++s->marks;
    uint32_t missing = NONE;
    for (size_t i = 0; i < s->n; i++) {
        const char *v = attr ? barge_sched_instance_attr(&s->insts[i], attr, NULL) : NULL;
        uint32_t *slot = &missing;
        struct istr *e = NULL;
        if (v) {
            e = intern_get(&s->strings, v);
            if (e->mark != mark) {
                e->mark = mark;
                e->bucket = NONE;
            }
            slot = &e->bucket;
        }
        if (*slot == NONE) {
            *slot = p->n_buckets++;
            p->values = barge_xrealloc(p->values, p->n_buckets * sizeof(char *));
            p->values[*slot] = e ? e->s : NULL;
        }
        p->bucket_of[i] = *slot;
    }
    p->members = barge_xcalloc(p->n_buckets + 1, sizeof(uint32_t *));
    p->n_members = barge_xcalloc(p->n_buckets + 1, sizeof(uint32_t));
    for (size_t k = 0; k < s->n_elig; k++)
        p->n_members[p->bucket_of[s->elig_list[k]]]++;
    for (uint32_t b = 0; b < p->n_buckets; b++) {
        p->members[b] = barge_xmalloc((p->n_members[b] + 1) * sizeof(uint32_t));
        p->n_members[b] = 0;
    }
    for (size_t k = 0; k < s->n_elig; k++) {
        uint32_t i = s->elig_list[k], b = p->bucket_of[i];
        p->members[b][p->n_members[b]++] = i;
    }
    s->parts = barge_xrealloc(s->parts, (s->n_parts + 1) * sizeof(*s->parts));
    s->parts[s->n_parts] = p;
    return s->n_parts++;
}

/* Tasks of g per bucket of partition k. */
static uint32_t *group_counts(struct barge_sched_snapshot *s, struct gstate *g, size_t k)
{
    if (k >= g->n_counts) {
        g->counts = barge_xrealloc(g->counts, (k + 1) * sizeof(uint32_t *));
        for (size_t j = g->n_counts; j <= k; j++)
            g->counts[j] = NULL;
        g->n_counts = k + 1;
    }
    if (!g->counts[k]) {
        struct partition *p = s->parts[k];
        uint32_t *c = barge_xcalloc(p->n_buckets + 1, sizeof(uint32_t));
        for (size_t i = 0; i < s->n; i++)
            c[p->bucket_of[i]] += group_count(&s->insts[i], g->name);
        g->counts[k] = c;
    }
    return g->counts[k];
}

/* --- tasks in and out ----------------------------------------------------- */

static void task_changed(struct barge_sched_snapshot *s, size_t idx, struct gstate *g, int delta)
{
    s->version[idx]++;
    if (!s->indexed)
        return;
    for (size_t k = 0; k < g->n_counts; k++)
        if (g->counts[k])
            g->counts[k][s->parts[k]->bucket_of[idx]] += (uint32_t)delta;
    if (!s->eligible[idx])
        return;
    for (size_t k = 0; k < s->n_parts; k++)
        for (int r = 0; r < 2; r++)
            if (s->parts[k]->sorted[r])
                reposition(s, s->parts[k], r, (uint32_t)idx);
}

void barge_sched_snapshot_add_task(struct barge_sched_snapshot *s, size_t idx, const char *group,
                                   int64_t cpu, int64_t memory, const uint16_t *ports,
                                   size_t n_ports, bool running)
{
    struct barge_sched_instance *in = &s->insts[idx];
    struct gstate *g = group_state(s, group);
    in->cpu -= cpu;
    in->memory -= memory;
    if (n_ports) {
        in->ports = barge_xrealloc(in->ports, (in->n_ports + n_ports + 1) * sizeof(uint16_t));
        memcpy(in->ports + in->n_ports, ports, n_ports * sizeof(uint16_t));
        in->n_ports += n_ports;
    }
    if (running)
        in->running_tasks++;
    else
        in->pending_tasks++;
    size_t k = 0;
    while (k < in->n_groups && in->groups[k].group != g->name)
        k++;
    if (k == in->n_groups) {
        in->groups = barge_xrealloc(in->groups, (in->n_groups + 1) * sizeof(*in->groups));
        in->groups[k].group = g->name;
        in->groups[k].count = 0;
        in->n_groups++;
    }
    in->groups[k].count++;
    task_changed(s, idx, g, 1);
}

void barge_sched_snapshot_remove_task(struct barge_sched_snapshot *s, size_t idx, const char *group,
                                      int64_t cpu, int64_t memory, const uint16_t *ports,
                                      size_t n_ports, bool running)
{
    struct barge_sched_instance *in = &s->insts[idx];
    struct gstate *g = group_state(s, group);
    size_t k = 0;
    while (k < in->n_groups && in->groups[k].group != g->name)
        k++;
    if (k == in->n_groups)
        return; /* no such task here */
    in->cpu += cpu;
    in->memory += memory;
    for (size_t p = 0; p < n_ports; p++) {
        for (size_t j = 0; j < in->n_ports; j++) {
            if (in->ports[j] == ports[p]) {
                in->ports[j] = in->ports[--in->n_ports];
                break;
            }
        }
    }
    if (running && in->running_tasks)
        in->running_tasks--;
    else if (!running && in->pending_tasks)
        in->pending_tasks--;
    if (--in->groups[k].count == 0)
        in->groups[k] = in->groups[--in->n_groups];
    task_changed(s, idx, g, -1);
}

/* --- policies ------------------------------------------------------------- */

void barge_sched_policy_init(struct barge_sched_policy *p)
{
    memset(p, 0, sizeof(*p));
}

void barge_sched_policy_release(struct barge_sched_policy *p)
{
    for (size_t i = 0; i < p->n_strategies; i++)
        free(p->strategies[i].attribute);
    for (size_t i = 0; i < p->n_constraints; i++)
        barge_cql_free(p->constraints[i].expr);
    memset(p, 0, sizeof(*p));
}

#define INVALID(err, ...) \
    barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException", __VA_ARGS__)

int barge_sched_policy_add_strategy(struct barge_sched_policy *p, const char *type,
                                    const char *field, struct barge_error **err)
{
    if (p->n_strategies == BARGE_SCHED_MAX_STRATEGIES)
        return INVALID(err, "at most %d placement strategies can be given",
                       BARGE_SCHED_MAX_STRATEGIES);
    struct barge_sched_strategy st = {0};
    if (!type)
        return INVALID(err, "a placement strategy needs a type (random, spread or binpack)");
    if (strcmp(type, "random") == 0) {
        st.type = BARGE_SCHED_RANDOM; /* ECS ignores the field */
    } else if (strcmp(type, "spread") == 0) {
        st.type = BARGE_SCHED_SPREAD;
        if (!field || !*field)
            return INVALID(err, "the spread placement strategy needs a field: instanceId, "
                                "host or attribute:NAME");
        if (strcasecmp(field, "instanceId") == 0 || strcasecmp(field, "host") == 0) {
            st.field = BARGE_SCHED_FIELD_INSTANCE;
        } else if (barge_str_has_prefix(field, "attribute:") && field[10]) {
            st.field = BARGE_SCHED_FIELD_ATTRIBUTE;
            st.attribute = barge_xstrdup(field + 10);
        } else {
            return INVALID(err,
                           "invalid field '%s' for the spread placement strategy: use "
                           "instanceId, host or attribute:NAME",
                           field);
        }
    } else if (strcmp(type, "binpack") == 0) {
        st.type = BARGE_SCHED_BINPACK;
        if (field && strcasecmp(field, "cpu") == 0)
            st.field = BARGE_SCHED_FIELD_CPU;
        else if (field && strcasecmp(field, "memory") == 0)
            st.field = BARGE_SCHED_FIELD_MEMORY;
        else
            return INVALID(err,
                           "invalid field '%s' for the binpack placement strategy: use cpu or "
                           "memory",
                           field ? field : "");
    } else {
        return INVALID(err, "invalid placement strategy type '%s': use random, spread or binpack",
                       type);
    }
    p->strategies[p->n_strategies++] = st;
    return 0;
}

int barge_sched_policy_add_constraint(struct barge_sched_policy *p, const char *type,
                                      const char *expression, bool from_task_definition,
                                      struct barge_error **err)
{
    if (p->n_constraints == BARGE_SCHED_MAX_CONSTRAINTS)
        return INVALID(err,
                       "at most %d placement constraints can apply to a task, counting those of "
                       "its task definition",
                       BARGE_SCHED_MAX_CONSTRAINTS);
    struct barge_sched_constraint c = {0};
    if (type && strcmp(type, "memberOf") == 0) {
        c.type = BARGE_SCHED_MEMBER_OF;
        if (!expression || !*expression)
            return INVALID(err, "the memberOf placement constraint needs an expression");
        if (barge_cql_parse(expression, &c.expr, err) < 0)
            return barge_error_wrap(err, "invalid memberOf expression");
    } else if (type && strcmp(type, "distinctInstance") == 0 && !from_task_definition) {
        c.type = BARGE_SCHED_DISTINCT_INSTANCE;
        if (expression && *expression)
            return INVALID(err,
                           "the distinctInstance placement constraint takes no expression; "
                           "'%s' was given",
                           expression);
    } else if (from_task_definition) {
        return INVALID(err,
                       "invalid placement constraint type '%s' in the task definition: only "
                       "memberOf is allowed there",
                       type ? type : "");
    } else {
        return INVALID(err,
                       "invalid placement constraint type '%s': use distinctInstance or memberOf",
                       type ? type : "");
    }
    p->constraints[p->n_constraints++] = c;
    return 0;
}

void barge_sched_policy_default_service(struct barge_sched_policy *p)
{
    if (p->n_strategies)
        return;
    p->strategies[0] = (struct barge_sched_strategy){
        BARGE_SCHED_SPREAD, BARGE_SCHED_FIELD_ATTRIBUTE, barge_xstrdup("ecs.availability-zone")};
    p->strategies[1] =
        (struct barge_sched_strategy){BARGE_SCHED_SPREAD, BARGE_SCHED_FIELD_INSTANCE, NULL};
    p->n_strategies = 2;
}

/* --- one decision --------------------------------------------------------- */

struct decision {
    struct barge_sched_snapshot *s;
    const struct barge_sched_request *req;
    const char *group; /* interned */
    struct gstate *g;
    const struct barge_sched_constraint *cons;
    size_t n_cons;
    struct memo *memos[BARGE_SCHED_MAX_CONSTRAINTS];
    const struct barge_sched_strategy *st;
    size_t n_st;                             /* up to the first random, which ends the chain */
    size_t part[BARGE_SCHED_MAX_STRATEGIES]; /* spread attribute: its partition */
    uint32_t *counts[BARGE_SCHED_MAX_STRATEGIES];
    uint64_t rng;
    ssize_t best;
    int64_t best_key[BARGE_SCHED_MAX_STRATEGIES];
    uint64_t ties;
    /* From strategy bound_from on, the best key each can give: a candidate
     * reaching all of them cannot be beaten, and the scan stops (done). */
    int64_t bound[BARGE_SCHED_MAX_STRATEGIES];
    size_t bound_from;
    bool done;
};

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct memo *memo_for(struct barge_sched_snapshot *s, const struct barge_cql *q)
{
    uint64_t serial = barge_cql_serial(q);
    for (size_t i = 0; i < s->n_memos; i++)
        if (s->memos[i].serial == serial)
            return &s->memos[i];
    struct memo *m;
    if (s->n_memos < MAX_MEMOS) {
        m = &s->memos[s->n_memos++];
    } else {
        m = &s->memos[s->next_memo];
        s->next_memo = (s->next_memo + 1) % MAX_MEMOS;
        free(m->val);
        free(m->ver);
    }
    m->serial = serial;
    m->uses_tasks = barge_cql_uses_tasks(q);
    m->val = barge_xcalloc(s->n + 1, 1);
    m->ver = barge_xcalloc(s->n + 1, sizeof(uint32_t));
    return m;
}

static bool member_of(struct barge_sched_snapshot *s, struct memo *m, const struct barge_cql *q,
                      size_t i)
{
    if (m->val[i] && (!m->uses_tasks || m->ver[i] == s->version[i]))
        return m->val[i] == 2;
    bool r = barge_cql_eval(q, &s->insts[i]);
    m->val[i] = r ? 2 : 1;
    m->ver[i] = s->version[i];
    return r;
}

static enum barge_sched_verdict check(struct decision *d, size_t i)
{
    const struct barge_sched_instance *in = &d->s->insts[i];
    const struct barge_sched_request *req = d->req;
    if (!d->s->eligible[i])
        return BARGE_SCHED_NOT_ELIGIBLE;
    if (req->cpu > in->cpu)
        return BARGE_SCHED_NO_CPU;
    if (req->memory > in->memory)
        return BARGE_SCHED_NO_MEMORY;
    for (size_t p = 0; p < req->n_ports; p++)
        for (size_t j = 0; j < in->n_ports; j++)
            if (req->ports[p] == in->ports[j])
                return BARGE_SCHED_NO_PORTS;
    for (size_t c = 0; c < d->n_cons; c++) {
        if (d->cons[c].type == BARGE_SCHED_DISTINCT_INSTANCE) {
            if (group_count(in, d->group) > 0)
                return BARGE_SCHED_NOT_DISTINCT;
        } else if (!member_of(d->s, d->memos[c], d->cons[c].expr, i)) {
            return BARGE_SCHED_NOT_MEMBER_OF;
        }
    }
    return BARGE_SCHED_FITS;
}

static int64_t strategy_key(struct decision *d, size_t k, uint32_t i)
{
    const struct barge_sched_strategy *st = &d->st[k];
    if (st->type == BARGE_SCHED_BINPACK)
        return resource(d->s, i, st->field == BARGE_SCHED_FIELD_MEMORY);
    if (st->field == BARGE_SCHED_FIELD_INSTANCE)
        return group_count(&d->s->insts[i], d->group);
    return d->counts[k][d->s->parts[d->part[k]]->bucket_of[i]];
}

/* Offers instance i, already known to tie with the best on strategies before
 * k0. */
static void consider(struct decision *d, uint32_t i, size_t k0)
{
    if (check(d, i) != BARGE_SCHED_FITS)
        return;
    int64_t key[BARGE_SCHED_MAX_STRATEGIES];
    size_t k = k0;
    int cmp = d->best < 0 ? -1 : 0;
    for (; k < d->n_st && cmp == 0; k++) {
        key[k] = strategy_key(d, k, i);
        if (key[k] != d->best_key[k])
            cmp = key[k] < d->best_key[k] ? -1 : 1;
    }
    if (cmp > 0)
        return;
    if (cmp < 0) {
        for (; k < d->n_st; k++)
            key[k] = strategy_key(d, k, i);
        memcpy(d->best_key + k0, key + k0, (d->n_st - k0) * sizeof(int64_t));
        d->best = i;
        d->ties = 1;
        d->done = k0 == d->bound_from &&
                  memcmp(d->best_key + k0, d->bound + k0, (d->n_st - k0) * sizeof(int64_t)) == 0;
        return;
    }
    if (next_random(&d->rng) % ++d->ties == 0)
        d->best = i;
}

static size_t lower_bound(const struct barge_sched_snapshot *s, const uint32_t *ord, size_t n,
                          int r, int64_t need)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (resource(s, ord[mid], r) < need)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void set_bounds(struct decision *d, size_t k)
{
    d->bound_from = k;
    d->done = false;
    for (size_t j = k; j < d->n_st; j++) {
        const struct barge_sched_strategy *st = &d->st[j];
        if (st->type == BARGE_SCHED_BINPACK) {
            d->bound[j] = st->field == BARGE_SCHED_FIELD_MEMORY ? d->req->memory : d->req->cpu;
        } else if (st->field == BARGE_SCHED_FIELD_INSTANCE) {
            d->bound[j] = 0;
        } else {
            struct partition *p = d->s->parts[d->part[j]];
            int64_t least = INT64_MAX;
            for (uint32_t b = 0; b < p->n_buckets; b++)
                if (p->n_members[b] && d->counts[j][b] < least)
                    least = d->counts[j][b];
            d->bound[j] = least;
        }
    }
}

/* Finds the best instance among the buckets of partition pk, ranking from
 * strategy k on. */
static void scan_buckets(struct decision *d, size_t pk, const uint32_t *buckets, size_t nb,
                         size_t k)
{
    struct barge_sched_snapshot *s = d->s;
    struct partition *p = s->parts[pk];
    if (k < d->n_st && d->st[k].type == BARGE_SCHED_BINPACK) {
        int r = d->st[k].field == BARGE_SCHED_FIELD_MEMORY;
        int64_t need = r ? d->req->memory : d->req->cpu;
        ensure_sorted(s, p, r);
        int64_t least = INT64_MAX;
        size_t first[MAX_TIERED];
        for (size_t j = 0; j < nb; j++) {
            uint32_t *ord = p->order[r][buckets[j]], n = p->n_members[buckets[j]];
            size_t at = lower_bound(s, ord, n, r, need);
            while (at < n && check(d, ord[at]) != BARGE_SCHED_FITS)
                at++;
            first[j] = at;
            if (at < n && resource(s, ord[at], r) < least)
                least = resource(s, ord[at], r);
        }
        for (size_t j = 0; j < nb; j++) {
            uint32_t *ord = p->order[r][buckets[j]], n = p->n_members[buckets[j]];
            for (size_t at = first[j]; at < n && resource(s, ord[at], r) == least; at++)
                consider(d, ord[at], k);
        }
        return;
    }
    /* Visit every candidate, but from a random place, so that when one
     * reaches the bounds and ends the scan, the choice is still random. */
    set_bounds(d, k);
    size_t j0 = nb > 1 ? next_random(&d->rng) % nb : 0;
    for (size_t jj = 0; jj < nb && !d->done; jj++) {
        uint32_t b = buckets[(j0 + jj) % nb], n = p->n_members[b];
        uint32_t m = n ? (uint32_t)(next_random(&d->rng) % n) : 0;
        for (uint32_t left = n; left > 0 && !d->done; left--) {
            consider(d, p->members[b][m], k);
            if (++m == n)
                m = 0;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* spread over an attribute first: the values from the fewest tasks of the
 * group up, a tie of values at a time. */
static void place_tiered(struct decision *d)
{
    struct partition *p = d->s->parts[d->part[0]];
    uint64_t keyed[MAX_TIERED];
    size_t n = 0;
    for (uint32_t b = 0; b < p->n_buckets; b++)
        if (p->n_members[b])
            keyed[n++] = (uint64_t)d->counts[0][b] << 32 | b;
    qsort(keyed, n, sizeof(uint64_t), cmp_u64);
    for (size_t j = 0; j < n && d->best < 0;) {
        uint32_t tier[MAX_TIERED];
        size_t nt = 0;
        uint64_t count = keyed[j] >> 32;
        while (j < n && keyed[j] >> 32 == count)
            tier[nt++] = (uint32_t)keyed[j++];
        d->best_key[0] = (int64_t)count;
        scan_buckets(d, d->part[0], tier, nt, 1);
    }
}

static void decision_init(struct decision *d, struct barge_sched_snapshot *s,
                          const struct barge_sched_request *req, uint64_t seed)
{
    memset(d, 0, sizeof(*d));
    d->s = s;
    d->req = req;
    d->g = group_state(s, req->group);
    d->group = d->g->name;
    d->rng = seed;
    d->best = -1;
    if (!req->policy)
        return;
    d->cons = req->policy->constraints;
    d->n_cons = req->policy->n_constraints;
    for (size_t c = 0; c < d->n_cons; c++)
        if (d->cons[c].type == BARGE_SCHED_MEMBER_OF)
            d->memos[c] = memo_for(s, d->cons[c].expr);
    d->st = req->policy->strategies;
    while (d->n_st < req->policy->n_strategies && d->st[d->n_st].type != BARGE_SCHED_RANDOM)
        d->n_st++;
}

enum barge_sched_verdict barge_sched_check(struct barge_sched_snapshot *s, size_t idx,
                                           const struct barge_sched_request *req)
{
    struct decision d;
    decision_init(&d, s, req, 0);
    return check(&d, idx);
}

void barge_sched_commit(struct barge_sched_snapshot *s, size_t idx,
                        const struct barge_sched_request *req)
{
    barge_sched_snapshot_add_task(s, idx, req->group, req->cpu, req->memory, req->ports,
                                  req->n_ports, false);
}

ssize_t barge_sched_place(struct barge_sched_snapshot *s, const struct barge_sched_request *req,
                          uint64_t seed, struct barge_sched_failure *why)
{
    struct decision d;
    decision_init(&d, s, req, seed);
    ensure_indexed(s);
    for (size_t k = 0; k < d.n_st; k++) {
        if (d.st[k].field == BARGE_SCHED_FIELD_ATTRIBUTE) {
            d.part[k] = partition_index(s, d.st[k].attribute);
            d.counts[k] = group_counts(s, d.g, d.part[k]);
        }
    }
    if (d.n_st == 0 && s->n_elig) {
        /* Random: probing is uniform over the instances that fit. */
        for (int tries = 0; tries < 32 && d.best < 0; tries++) {
            uint32_t i = s->elig_list[next_random(&d.rng) % s->n_elig];
            if (check(&d, i) == BARGE_SCHED_FITS)
                d.best = i;
        }
        /* Few fit: choose uniformly among them in one pass. */
        if (d.best < 0)
            for (size_t k = 0; k < s->n_elig; k++)
                consider(&d, s->elig_list[k], 0);
    } else if (d.n_st && d.st[0].field == BARGE_SCHED_FIELD_ATTRIBUTE &&
               s->parts[d.part[0]]->n_buckets <= MAX_TIERED) {
        place_tiered(&d);
    } else if (s->n_elig) {
        uint32_t all = 0;
        scan_buckets(&d, partition_index(s, NULL), &all, 1, 0);
    }
    if (d.best >= 0) {
        barge_sched_commit(s, (size_t)d.best, req);
        return d.best;
    }
    if (why) {
        why->closest = -1;
        why->reason = BARGE_SCHED_NOT_ELIGIBLE;
        for (size_t i = 0; i < s->n; i++) {
            enum barge_sched_verdict v = check(&d, i);
            if (why->closest < 0 || v > why->reason) {
                why->closest = (ssize_t)i;
                why->reason = v;
            }
        }
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
    case BARGE_SCHED_NOT_MEMBER_OF:
        return "MemberOf placement constraint unsatisfied.";
    case BARGE_SCHED_NOT_DISTINCT:
        return "DistinctInstance placement constraint unsatisfied.";
    case BARGE_SCHED_FITS:
        break;
    }
    return "";
}

char *barge_sched_failure_message(const struct barge_sched_snapshot *s,
                                  const struct barge_sched_failure *why)
{
    if (why->closest < 0 || (size_t)why->closest >= s->n)
        return barge_xstrdup("No Container Instances were found in your cluster.");
    const char *id = s->insts[why->closest].id;
    switch (why->reason) {
    case BARGE_SCHED_NO_CPU:
        return barge_xasprintf("The closest matching container-instance %s has insufficient CPU "
                               "units available.",
                               id);
    case BARGE_SCHED_NO_MEMORY:
        return barge_xasprintf("The closest matching container-instance %s has insufficient "
                               "memory available.",
                               id);
    case BARGE_SCHED_NO_PORTS:
        return barge_xasprintf("The closest matching container-instance %s is already using a "
                               "port required by your task.",
                               id);
    default:
        return barge_xasprintf("The closest matching container-instance %s encountered error "
                               "\"%s\".",
                               id, barge_sched_verdict_reason(why->reason));
    }
}

/* --- scale-in ------------------------------------------------------------- */

size_t barge_sched_scale_in(const struct barge_sched_snapshot *s,
                            const struct barge_sched_policy *policy, const size_t *task_instances,
                            size_t n_tasks, size_t n_stop, size_t *out)
{
    if (n_stop > n_tasks)
        n_stop = n_tasks;
    size_t n_st = 0;
    while (policy && n_st < policy->n_strategies &&
           policy->strategies[n_st].type != BARGE_SCHED_RANDOM)
        n_st++;
    /* Per strategy, each task's "bucket": its instance, or its attribute
     * value's position among the values seen; and the tasks per bucket. */
    size_t *bucket[BARGE_SCHED_MAX_STRATEGIES] = {0};
    size_t *per_bucket[BARGE_SCHED_MAX_STRATEGIES] = {0};
    for (size_t k = 0; k < n_st; k++) {
        const struct barge_sched_strategy *st = &policy->strategies[k];
        if (st->type != BARGE_SCHED_SPREAD)
            continue;
        bucket[k] = barge_xcalloc(n_tasks + 1, sizeof(size_t));
        per_bucket[k] = barge_xcalloc(n_tasks + 1, sizeof(size_t));
        const char **values = barge_xcalloc(n_tasks + 1, sizeof(char *));
        size_t n_values = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            const struct barge_sched_instance *in = &s->insts[task_instances[t]];
            const char *v = st->field == BARGE_SCHED_FIELD_INSTANCE
                                ? in->id
                                : barge_sched_instance_attr(in, st->attribute, NULL);
            size_t b = 0;
            while (b < n_values && !barge_streq(values[b], v))
                b++;
            if (b == n_values)
                values[n_values++] = v;
            bucket[k][t] = b;
            per_bucket[k][b]++;
        }
        free(values);
    }
    bool *gone = barge_xcalloc(n_tasks + 1, sizeof(bool));
    size_t *cand = barge_xmalloc((n_tasks + 1) * sizeof(size_t));
    for (size_t step = 0; step < n_stop; step++) {
        size_t n = 0;
        for (size_t t = 0; t < n_tasks; t++)
            if (!gone[t])
                cand[n++] = t;
        for (size_t k = 0; k < n_st && n > 1; k++) {
            const struct barge_sched_strategy *st = &policy->strategies[k];
            int64_t most = INT64_MIN;
            int64_t *key = barge_xmalloc(n * sizeof(int64_t));
            for (size_t c = 0; c < n; c++) {
                const struct barge_sched_instance *in = &s->insts[task_instances[cand[c]]];
                if (st->type == BARGE_SCHED_SPREAD)
                    key[c] = (int64_t)per_bucket[k][bucket[k][cand[c]]];
                else
                    key[c] = st->field == BARGE_SCHED_FIELD_MEMORY ? in->memory : in->cpu;
                if (key[c] > most)
                    most = key[c];
            }
            size_t kept = 0;
            for (size_t c = 0; c < n; c++)
                if (key[c] == most)
                    cand[kept++] = cand[c];
            n = kept;
            free(key);
        }
        size_t t = cand[0];
        gone[t] = true;
        out[step] = t;
        for (size_t k = 0; k < n_st; k++)
            if (per_bucket[k])
                per_bucket[k][bucket[k][t]]--;
    }
    for (size_t k = 0; k < n_st; k++) {
        free(bucket[k]);
        free(per_bucket[k]);
    }
    free(gone);
    free(cand);
    return n_stop;
}
