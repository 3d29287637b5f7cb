/* The process-wide server state that the API layer and the control loops
 * share: the region a thread serves and the notification generation. */
#include "core/server.h"

#include <time.h>

const char *barge_server_region(const struct barge_server *srv)
{
    const char *r = barge_store_thread_region();
    return r ? r : srv->cfg.region;
}

void barge_server_init(struct barge_server *srv)
{
    pthread_mutex_init(&srv->notify_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->notify_cond, &attr);
    pthread_condattr_destroy(&attr);
}

void barge_server_wake(struct barge_server *srv)
{
    pthread_mutex_lock(&srv->notify_lock);
    srv->notify_gen++;
    pthread_cond_broadcast(&srv->notify_cond);
    /* Under the lock, so that a waiter that checks the generation under it
     * too (barge_server_park) is either woken or sees the new value. */
    if (srv->on_wake)
        srv->on_wake(srv);
    pthread_mutex_unlock(&srv->notify_lock);
}

void barge_server_notify(struct barge_server *srv)
{
    barge_server_wake(srv);
    barge_store_notify(srv->store);
}

uint64_t barge_server_generation(struct barge_server *srv)
{
    pthread_mutex_lock(&srv->notify_lock);
    uint64_t g = srv->notify_gen;
    pthread_mutex_unlock(&srv->notify_lock);
    return g;
}

uint64_t barge_server_wait(struct barge_server *srv, uint64_t seen, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->notify_lock);
    while (srv->notify_gen == seen) {
        if (pthread_cond_timedwait(&srv->notify_cond, &srv->notify_lock, &deadline) != 0)
            break;
    }
    uint64_t g = srv->notify_gen;
    pthread_mutex_unlock(&srv->notify_lock);
    return g;
}
