/* Leader election among the barged processes that share a store. Every
 * barged serves the API; only the leader runs the control loops (the service
 * scheduler, the lost-host watch) and the housekeeping, because two
 * schedulers would each start the missing tasks of a service. Correctness
 * does not rest on this alone: every scheduling step is one write
 * transaction and write transactions are serialised by the store, so even two
 * leaders for a moment would each see the other's tasks.
 *
 * The leader holds the store-wide lock "control" (PostgreSQL: a session
 * advisory lock on a connection of its own). A thread confirms it every
 * second with a round trip; leadership counts only while the last
 * confirmation is younger than the lease, so a leader cut off from the
 * database, or stuck in a check that does not return, stops acting on its own
 * within the lease. The database ends the session of a dead leader: at once
 * when its process dies (the kernel closes the socket), within seconds by TCP
 * keepalives when its host or network is gone. Followers try to take the lock
 * every second, so one of them leads within about a second of the session's
 * end. */
#include <pthread.h>
#include <time.h>

#include "common/ids.h"
#include "common/log.h"
#include "control/control.h"
#include "core/server.h"

#define LOCK_NAME "control"
#define PERIOD_MS 1000
#define LEASE_MS  3000

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* ends the thread's naps early when stopping */
    struct barge_server *srv;
    struct barge_store_lock *held; /* only the election thread changes it */
    int64_t confirmed_ms;          /* monotonic time of the last confirmation */
    double since;                  /* wall-clock time leadership began */
    bool started, running;
    pthread_t thread;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool barge_leader_active(void)
{
    pthread_mutex_lock(&L.lock);
    bool active = !L.started || (L.held && barge_monotonic_ms() - L.confirmed_ms < LEASE_MS);
    pthread_mutex_unlock(&L.lock);
    return active;
}

double barge_leader_since(void)
{
    pthread_mutex_lock(&L.lock);
    double since = L.held ? L.since : 0;
    pthread_mutex_unlock(&L.lock);
    return since;
}

/* One round of the election: a follower tries to take the lock, the leader
 * confirms it still has it. */
static void elect(int *failures)
{
    _cleanup_error_ struct barge_error *err = NULL;
    if (!L.held) {
        struct barge_store_lock *l = NULL;
        int r = barge_store_lock_try(L.srv->store, LOCK_NAME, &l, &err);
        if (r < 0) {
            if ((*failures)++ % 30 == 0)
                barge_warn("leader election: %s", err->message);
            return;
        }
        *failures = 0;
        if (r == 0)
            return;
        pthread_mutex_lock(&L.lock);
        L.held = l;
        L.confirmed_ms = barge_monotonic_ms();
        L.since = barge_now();
        pthread_mutex_unlock(&L.lock);
        barge_info("this barged is now the leader: it runs the control loops");
        barge_server_wake(L.srv);
        return;
    }
    int64_t start = barge_monotonic_ms();
    if (barge_store_lock_check(L.held, &err) == 0) {
        pthread_mutex_lock(&L.lock);
        L.confirmed_ms = start;
        pthread_mutex_unlock(&L.lock);
        return;
    }
    barge_warn("this barged is no longer the leader: %s", err->message);
    pthread_mutex_lock(&L.lock);
    struct barge_store_lock *l = barge_steal(&L.held);
    pthread_mutex_unlock(&L.lock);
    barge_store_lock_release(l);
}

static void *election_main(void *ud)
{
    int failures = 0;
    pthread_mutex_lock(&L.lock);
    while (L.running) {
        pthread_mutex_unlock(&L.lock);
        elect(&failures);
        pthread_mutex_lock(&L.lock);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += PERIOD_MS / 1000;
        while (L.running && pthread_cond_timedwait(&L.cond, &L.lock, &deadline) == 0)
            ;
    }
    pthread_mutex_unlock(&L.lock);
    return NULL;
}

int barge_leader_start(struct barge_server *srv, struct barge_error **err)
{
    pthread_cond_init(&L.cond, NULL);
    L.srv = srv;
    L.started = true;
    L.running = true;
    /* A first round now, so that a lone barged leads from its first request. */
    int failures = 0;
    elect(&failures);
    if (!L.held && failures == 0)
        barge_info("another barged leads the control loops; this one serves the API and "
                   "stands by");
    if (pthread_create(&L.thread, NULL, election_main, NULL) != 0)
        return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "cannot start the election thread");
    return 0;
}

void barge_leader_stop(void)
{
    pthread_mutex_lock(&L.lock);
    if (!L.running) {
        pthread_mutex_unlock(&L.lock);
        return;
    }
    L.running = false;
    pthread_cond_broadcast(&L.cond);
    pthread_mutex_unlock(&L.lock);
    pthread_join(L.thread, NULL);
    /* Giving the lock up at once lets a follower take over without waiting
     * for this session to time out. */
    pthread_mutex_lock(&L.lock);
    struct barge_store_lock *l = barge_steal(&L.held);
    pthread_mutex_unlock(&L.lock);
    if (l)
        barge_info("leaving the leadership to another barged");
    barge_store_lock_release(l);
}
