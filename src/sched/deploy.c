/* The rolling-deployment planner (see deploy.h). The order of the steps
 * matters: first drop what costs no health (old or misplaced tasks that are
 * not healthy, and primary tasks beyond desired), then start what the maximum
 * allows, then stop healthy old tasks only as far as the minimum allows. */
#include "sched/deploy.h"

#include <stdlib.h>

int barge_deploy_failure_threshold(int desired)
{
    int t = (desired + 1) / 2;
    if (t < 3)
        t = 3;
    if (t > 200)
        t = 200;
    return t;
}

static void stop_task(struct barge_deploy_plan *p, bool *stopped, size_t i)
{
    if (stopped[i])
        return;
    stopped[i] = true;
    p->stop[p->n_stop++] = i;
}

void barge_deploy_plan(const struct barge_deploy_input *in, struct barge_deploy_plan *p)
{
    size_t n = in->n_tasks;
    p->start = 0;
    p->n_stop = 0;
    p->stop = barge_xcalloc(n + 1, sizeof(size_t));
    p->stuck = false;
    p->protected_kept = 0;
    bool *stopped = barge_xcalloc(n + 1, sizeof(bool));
    int desired = in->desired < 0 ? 0 : in->desired;
    p->max_total = (int)((long long)desired * in->maximum_percent / 100);
    p->min_healthy = (int)(((long long)desired * in->minimum_healthy_percent + 99) / 100);

    int healthy = 0, primary = 0, primary_healthy = 0;
    for (size_t i = 0; i < n; i++) {
        const struct barge_deploy_task *t = &in->tasks[i];
        if (t->healthy)
            healthy++;
        if (t->deployment == 0 && !t->must_move) {
            primary++;
            if (t->healthy)
                primary_healthy++;
        }
    }

    /* 1. Old or misplaced tasks that are not healthy cost nothing to stop
     * (blue/green keeps blue whole: a target reads unhealthy for a moment
     * after HAProxy takes a new configuration over). */
    for (size_t i = 0; i < n; i++) {
        const struct barge_deploy_task *t = &in->tasks[i];
        if ((t->deployment != 0 || t->must_move) && !t->healthy && !in->keep_old) {
            if (t->protected)
                p->protected_kept++;
            else
                stop_task(p, stopped, i);
        }
    }
    /* 2. Scale-in of the primary: the unhealthy first. */
    int excess = primary - desired;
    for (int pass = 0; pass < 2 && excess > 0; pass++) {
        for (size_t i = n; i > 0 && excess > 0; i--) {
            const struct barge_deploy_task *t = &in->tasks[i - 1];
            if (t->deployment != 0 || t->must_move || stopped[i - 1] || t->protected)
                continue;
            if (pass == 0 && t->healthy)
                continue;
            stop_task(p, stopped, i - 1);
            if (t->healthy)
                healthy--;
            primary--;
            excess--;
        }
    }
    if (excess > 0)
        p->protected_kept += excess;
    /* 3. Start primary tasks up to desired, within the maximum. */
    int total = (int)n - (int)p->n_stop;
    int need = desired - primary;
    if (need > 0 && !in->primary_frozen) {
        int room = in->keep_old ? need : p->max_total - total;
        p->start = need < room ? need : (room > 0 ? room : 0);
    }
    /* 4. Replace healthy old or misplaced tasks as far as the minimum allows. */
    int can_stop = in->keep_old ? 0 : healthy - p->min_healthy;
    for (size_t i = 0; i < n && can_stop > 0; i++) {
        const struct barge_deploy_task *t = &in->tasks[i];
        if (stopped[i] || !t->healthy || (t->deployment == 0 && !t->must_move))
            continue;
        if (t->protected) {
            p->protected_kept++;
            continue;
        }
        stop_task(p, stopped, i);
        can_stop--;
    }
    bool old_left = false;
    for (size_t i = 0; i < n; i++)
        if (!stopped[i] && (in->tasks[i].deployment != 0 || in->tasks[i].must_move))
            old_left = true;
    bool work = old_left || (need > 0 && !in->primary_frozen);
    /* Stuck: nothing moves although work remains and no started task can
     * become healthy to unblock it (none is pending). */
    p->stuck = work && p->protected_kept == 0 && p->start == 0 && p->n_stop == 0 &&
               primary_healthy == primary && healthy <= p->min_healthy;
    p->steady = !old_left && primary == desired && primary_healthy == desired && p->n_stop == 0;
    free(stopped);
}
