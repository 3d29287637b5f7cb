/* Task volumes. A task definition's volumes are host bind mounts
 * (host.sourcePath), task-scoped volumes (no sourcePath, or a
 * dockerVolumeConfiguration with scope "task"): an empty directory under the
 * agent's data directory that lives as long as the task and is shared by
 * every container that mounts it, or shared Docker volumes (scope "shared"),
 * which outlive tasks. Containers mount them with mountPoints and inherit
 * another container's mounts with volumesFrom. Unlike Docker, a new volume is
 * not seeded with the image's files at the mount point. */
#include "agent/volumes.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"

static const json_t *find_volume(const json_t *volumes, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)volumes, i, v)
    {
        if (barge_streq(barge_json_str(v, "name", NULL), name))
            return v;
    }
    return NULL;
}

/* A volume name becomes a directory name: nothing that could climb out. */
static bool safe_name(const char *s)
{
    if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (*s == '/')
            return false;
    return true;
}

static bool is_shared(const json_t *v)
{
    json_t *dvc = barge_json_object(v, "dockerVolumeConfiguration");
    return dvc && barge_streq(barge_json_str(dvc, "scope", "task"), "shared");
}

/* The host path behind a volume; caller frees. */
static char *volume_source(const json_t *v, const char *task_dir, const char *shared_dir,
                           struct barge_error **err)
{
    const char *name = barge_json_str(v, "name", "");
    const char *host = barge_json_str(barge_json_object(v, "host"), "sourcePath", NULL);
    if (host && *host) {
        if (host[0] != '/') {
            barge_error_set(err, BARGE_ERR_INVALID,
                            "volume '%s': host.sourcePath '%s' must be an absolute path", name,
                            host);
            return NULL;
        }
        return barge_xstrdup(host);
    }
    if (barge_json_object(v, "efsVolumeConfiguration") ||
        barge_json_object(v, "fsxWindowsFileServerVolumeConfiguration")) {
        barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                        "volume '%s': EFS and FSx volumes are not available on barge; use a "
                        "host volume",
                        name);
        return NULL;
    }
    if (!safe_name(name)) {
        barge_error_set(err, BARGE_ERR_INVALID, "invalid volume name '%s'", name);
        return NULL;
    }
    return barge_xasprintf("%s/%s", is_shared(v) ? shared_dir : task_dir, name);
}

static void add_mount(struct barge_volume_mount **out, size_t *n, const char *source,
                      const char *dest, bool ro, const char *volume)
{
    /* The first mount at a path wins: a container's own mountPoints come
     * before what volumesFrom brings. */
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*out)[i].destination, dest) == 0)
            return;
    *out = barge_xrealloc(*out, (*n + 1) * sizeof(**out));
    (*out)[*n] = (struct barge_volume_mount){barge_xstrdup(source), barge_xstrdup(dest), ro,
                                             barge_xstrdup(volume)};
    (*n)++;
}

static int collect(const json_t *volumes, const json_t *defs, size_t idx, bool force_ro,
                   const char *task_dir, const char *shared_dir, unsigned depth,
                   struct barge_volume_mount **out, size_t *n, struct barge_error **err)
{
    const json_t *c = json_array_get(defs, idx);
    const char *cname = barge_json_str(c, "name", "");
    if (depth > json_array_size(defs))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "the volumesFrom of container '%s' form a cycle", cname);
    size_t i;
    json_t *m;
    json_array_foreach(barge_json_array(c, "mountPoints"), i, m)
    {
        const char *vname = barge_json_str(m, "sourceVolume", "");
        const char *dest = barge_json_str(m, "containerPath", "");
        const json_t *v = find_volume(volumes, vname);
        if (!v)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "container '%s' mounts volume '%s', which the task does not "
                                   "define",
                                   cname, vname);
        if (dest[0] != '/')
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "container '%s': containerPath '%s' must be absolute", cname,
                                   dest);
        char *src = volume_source(v, task_dir, shared_dir, err);
        if (!src)
            return -1;
        add_mount(out, n, src, dest, force_ro || barge_json_bool(m, "readOnly", false), vname);
        free(src);
    }
    json_array_foreach(barge_json_array(c, "volumesFrom"), i, m)
    {
        const char *from = barge_json_str(m, "sourceContainer", "");
        size_t k, found = json_array_size(defs);
        json_t *o;
        json_array_foreach((json_t *)defs, k, o)
        {
            if (barge_streq(barge_json_str(o, "name", NULL), from))
                found = k;
        }
        if (found == json_array_size(defs) || found == idx)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "container '%s' takes volumes from '%s', which is not another "
                                   "container of the task",
                                   cname, from);
        if (collect(volumes, defs, found, force_ro || barge_json_bool(m, "readOnly", false),
                    task_dir, shared_dir, depth + 1, out, n, err) < 0)
            return -1;
    }
    return 0;
}

int barge_volume_mounts(const json_t *volumes, const json_t *defs, size_t idx, const char *task_dir,
                        const char *shared_dir, struct barge_volume_mount **out, size_t *n,
                        struct barge_error **err)
{
    *out = NULL;
    *n = 0;
    if (collect(volumes, defs, idx, false, task_dir, shared_dir, 0, out, n, err) < 0) {
        barge_volume_mounts_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void barge_volume_mounts_free(struct barge_volume_mount *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].source);
        free(m[i].destination);
        free(m[i].volume);
    }
    free(m);
}

int barge_volumes_prepare(const json_t *volumes, const char *task_dir, const char *shared_dir,
                          struct barge_error **err)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)volumes, i, v)
    {
        _cleanup_free_ char *src = volume_source(v, task_dir, shared_dir, err);
        if (!src)
            return -1;
        /* Docker creates a missing host path as a directory, and so do we;
         * task and shared volumes are root's, world-readable, like Docker's
         * fresh volumes. */
        if (barge_mkdir_p(src, 0755) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "volume '%s': cannot create '%s'",
                                         barge_json_str(v, "name", ""), src);
    }
    return 0;
}

/* rm -rf that stays on one file system, so that a mount inside (which should
 * not exist, but) is never emptied. */
static int remove_tree(int parent, const char *name, dev_t dev)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -1 : 0;
    if (st.st_dev != dev)
        return -1;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            remove_tree(dirfd(d), de->d_name, dev) < 0)
            rc = -1;
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

int barge_volumes_remove(const char *task_dir, struct barge_error **err)
{
    struct stat st;
    if (lstat(task_dir, &st) < 0)
        return errno == ENOENT
                   ? 0
                   : barge_error_set_errno(err, BARGE_ERR_IO, "cannot inspect '%s'", task_dir);
    if (remove_tree(AT_FDCWD, task_dir, st.st_dev) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove '%s'", task_dir);
    return 0;
}
