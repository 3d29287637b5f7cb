/* Task volumes: which host directories each container mounts where
 * (mountPoints, volumesFrom; host bind mounts, task-scoped and shared
 * volumes) and the directories behind them. */
#ifndef BARGE_AGENT_VOLUMES_H
#define BARGE_AGENT_VOLUMES_H

#include <jansson.h>

#include "common/error.h"

/* One mount of a container, resolved. */
struct barge_volume_mount {
    char *source;      /* host path */
    char *destination; /* path in the container */
    bool readonly;
    char *volume; /* the task volume's name */
};

/* The mounts of container idx of defs (mountPoints, then volumesFrom,
 * followed recursively), given the task's volumes. Task-scoped volumes (no
 * host.sourcePath) live in task_dir/<name>; shared Docker volumes
 * (dockerVolumeConfiguration.scope "shared") in shared_dir/<name>. Pure:
 * nothing is created. *out (an array of *n) is the caller's, freed with
 * barge_volume_mounts_free(). */
int barge_volume_mounts(const json_t *volumes, const json_t *defs, size_t idx, const char *task_dir,
                        const char *shared_dir, struct barge_volume_mount **out, size_t *n,
                        struct barge_error **err);
void barge_volume_mounts_free(struct barge_volume_mount *m, size_t n);
/* Creates the directories the task's volumes need (task_dir/<name>,
 * shared_dir/<name>, and missing host source paths, like Docker). */
int barge_volumes_prepare(const json_t *volumes, const char *task_dir, const char *shared_dir,
                          struct barge_error **err);
/* Removes task_dir and everything in it (not crossing into mounts). */
int barge_volumes_remove(const char *task_dir, struct barge_error **err);

#endif
