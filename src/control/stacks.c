/* The thread that carries out CloudFormation stack operations
 * (src/api/cfn_engine.c) in the leader. It is a thread of its own, beside the
 * control loop, because a stack waits for what it makes as CloudFormation
 * does (an ECS service to reach a steady state, or to drain before its
 * cluster goes), and that needs the scheduler to go on running meanwhile. */
#include <pthread.h>

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "control/control.h"
#include "store/store.h"

static pthread_t stacks_thread;
static volatile bool stacks_running;
static struct barge_server *stacks_srv;
static const struct barge_stacks_engine *engine;

void barge_stacks_set_engine(const struct barge_stacks_engine *e)
{
    engine = e;
}

/* Stacks live in their region's part of the store, as CloudFormation's do. */
static void step_every_region(struct barge_server *srv)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *regions = NULL;
    if (barge_store_regions(srv->store, &regions, &err) < 0) {
        barge_warn("listing regions for stack operations: %s", err->message);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(regions, i, r)
    {
        barge_store_use_region(json_string_value(r));
        engine->step(srv);
    }
    barge_store_use_region(NULL);
}

static void *stacks_main(void *ud)
{
    struct barge_server *srv = ud;
    uint64_t gen = barge_server_generation(srv);
    while (stacks_running) {
        if (engine && barge_leader_active())
            step_every_region(srv);
        gen = barge_server_wait(srv, gen, 1000);
    }
    return NULL;
}

int barge_stacks_start(struct barge_server *srv, struct barge_error **err)
{
    stacks_srv = srv;
    stacks_running = true;
    if (engine)
        engine->set_stopping(false);
    if (pthread_create(&stacks_thread, NULL, stacks_main, srv) != 0) {
        stacks_running = false;
        return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "cannot start the stacks thread");
    }
    return 0;
}

void barge_stacks_stop(void)
{
    if (!stacks_running)
        return;
    stacks_running = false;
    if (engine)
        engine->set_stopping(true);
    barge_server_notify(stacks_srv);
    pthread_join(stacks_thread, NULL);
}
