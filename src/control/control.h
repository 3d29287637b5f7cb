/* barged's control loops: the service scheduler and the watch over container
 * instances whose agents went silent. One thread runs them whenever tasks
 * change (barge_server_notify) and at least once a second. */
#ifndef BARGE_CONTROL_CONTROL_H
#define BARGE_CONTROL_CONTROL_H

#include "api/server.h"

struct barge_control_config {
    int host_grace_seconds;  /* after an agent counts as disconnected, until its tasks are
                                replaced */
    int task_stable_seconds; /* a task running this long proves a deployment can work */
};

/* Starts the control thread; barge_control_stop ends it. */
int barge_control_start(struct barge_server *srv, const struct barge_control_config *cfg,
                        struct barge_error **err);
void barge_control_stop(void);

/* One pass of every loop (exposed for tests and the loop itself). */
void barge_control_step(struct barge_server *srv);

#endif
