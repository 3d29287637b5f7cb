/* Task storage of a fixed size: the writable storage of a task (its
 * containers' directories, overlay upper and work directories included, and
 * its task volumes) on a filesystem of its own, so that the task can use
 * exactly its quota and no more, as Fargate's ephemeral storage does.
 *
 * The filesystem is a sparse file formatted as ext4 and mounted through a
 * loop device. The loop device is configured with LO_FLAGS_AUTOCLEAR: it
 * detaches itself when its last user goes, which is the mount once it
 * exists and our descriptor before that. So neither a setup that fails
 * half-way nor a process killed in the middle of one leaves a loop device
 * behind, and unmounting is all removal takes besides deleting the file.
 *
 * The mount belongs to the host, not to the agent: an agent killed with
 * SIGKILL leaves it in place for the one that adopts the task. */
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/log.h"
#include "runtime/internal.h"

#define MKFS_TIMEOUT_MS 60000
/* Another process may take the free device between our asking for it and
 * configuring it; then we ask again. */
#define LOOP_ATTEMPTS 16

static char *image_path(const char *dir, const char *task_id)
{
    return barge_xasprintf("%s/%s.img", dir, task_id);
}

char *barge_runtime_taskfs_path(const char *dir, const char *task_id)
{
    return barge_xasprintf("%s/%s", dir, task_id);
}

static const char *find_mkfs(void)
{
    static const char *const candidates[] = {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(candidates); i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

/* ext4 without a journal (the storage does not outlive the task, so there
 * is nothing to recover after a crash) and without blocks reserved for root
 * (the task gets its whole size); inode tables are left for the kernel to
 * initialise, which a sparse file makes free. */
static int format(const char *image, struct barge_error **err)
{
    const char *mkfs = find_mkfs();
    if (!mkfs)
        return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                               "mkfs.ext4 is not installed (Debian package e2fsprogs)");
    const char *argv[] = {
        mkfs,  "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard",
        image, NULL};
    int status = 0;
    bool timed_out = false;
    _cleanup_free_ char *errout = NULL;
    if (barge_rt_run(argv, barge_monotonic_ms() + MKFS_TIMEOUT_MS, &status, &timed_out, NULL,
                     &errout, err) < 0)
        return -1;
    if (status != 0)
        return barge_error_set(err, BARGE_ERR_IO, "mkfs.ext4 '%s' %s: %s", image,
                               timed_out ? "timed out" : "failed",
                               errout && *errout ? errout : "no message");
    return 0;
}

/* Binds a free loop device to the open image; returns its descriptor (the
 * device detaches itself once that and every mount of it are gone) and its
 * path in dev. */
static int attach_loop(int image_fd, const char *image, char *dev, size_t dev_size,
                       struct barge_error **err)
{
    _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        return barge_error_set_errno(err, BARGE_ERR_UNSUPPORTED, "cannot open /dev/loop-control");
    for (int attempt = 0; attempt < LOOP_ATTEMPTS; attempt++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "no free loop device");
        snprintf(dev, dev_size, "/dev/loop%d", n);
        int fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s'", dev);
        struct loop_config cfg = {.fd = (uint32_t)image_fd};
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", image);
        if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
            return fd;
        int saved = errno;
        close(fd);
        if (saved != EBUSY) {
            errno = saved;
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot attach '%s' to '%s'", image,
                                         dev);
        }
    }
    return barge_error_set(err, BARGE_ERR_IO,
                           "cannot attach '%s': loop devices were taken %d times in a row", image,
                           LOOP_ATTEMPTS);
}

static bool is_mountpoint(const char *path)
{
    struct stat st, parent;
    _cleanup_free_ char *up = barge_xasprintf("%s/..", path);
    return stat(path, &st) == 0 && stat(up, &parent) == 0 && st.st_dev != parent.st_dev;
}

int barge_runtime_taskfs_create(const char *dir, const char *task_id, uint64_t size_bytes,
                                char **mountpoint, struct barge_error **err)
{
    *mountpoint = NULL;
    _cleanup_free_ char *image = image_path(dir, task_id);
    _cleanup_free_ char *target = barge_runtime_taskfs_path(dir, task_id);
    if (barge_mkdir_p(dir, 0700) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", dir);
    /* What an earlier, unfinished attempt left. */
    if (barge_runtime_taskfs_remove(dir, task_id, err) < 0)
        return -1;
    _cleanup_close_ int fd = open(image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", image);
    char dev[32];
    int loop_fd = -1;
    if (ftruncate(fd, (off_t)size_bytes) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot size '%s' to %llu bytes", image,
                              (unsigned long long)size_bytes);
        goto fail;
    }
    if (format(image, err) < 0)
        goto fail;
    loop_fd = attach_loop(fd, image, dev, sizeof(dev), err);
    if (loop_fd < 0)
        goto fail;
    if (mkdir(target, 0700) < 0 && errno != EEXIST) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", target);
        goto fail;
    }
    /* The inode tables read as zeroes from the sparse file already: the
     * kernel need not write them in the background. */
    if (mount(dev, target, "ext4", 0, "noinit_itable") < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot mount '%s' on '%s'", dev, target);
        rmdir(target);
        goto fail;
    }
    close(loop_fd);
    barge_debug("runtime: task storage of %s: %llu bytes on %s at '%s'", task_id,
                (unsigned long long)size_bytes, dev, target);
    *mountpoint = barge_steal(&target);
    return 0;
fail:
    if (loop_fd >= 0)
        close(loop_fd); /* detaches it */
    unlink(image);
    return -1;
}

int barge_runtime_taskfs_remove(const char *dir, const char *task_id, struct barge_error **err)
{
    _cleanup_free_ char *image = image_path(dir, task_id);
    _cleanup_free_ char *target = barge_runtime_taskfs_path(dir, task_id);
    if (is_mountpoint(target) && umount2(target, 0) < 0) {
        /* Still held (a process of the task lingering in some mount
         * namespace): detach it now; the loop device goes with its last
         * user. */
        barge_warn("runtime: task storage '%s' is busy (%s); detaching it lazily", target,
                   strerror(errno));
        if (umount2(target, MNT_DETACH) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot unmount '%s'", target);
    }
    if (rmdir(target) < 0 && errno != ENOENT)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove '%s'", target);
    if (unlink(image) < 0 && errno != ENOENT)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove '%s'", image);
    return 0;
}

void barge_runtime_taskfs_reconcile(const char *dir, bool (*known)(const char *task_id, void *ud),
                                    void *ud)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *id = barge_xstrdup(de->d_name);
        char *ext = strrchr(id, '.');
        if (ext && strcmp(ext, ".img") == 0) {
            *ext = '\0';
        } else {
            /* A mount point beside its image is handled with the image. */
            _cleanup_free_ char *image = image_path(dir, id);
            if (access(image, F_OK) == 0)
                continue;
        }
        if (known(id, ud))
            continue;
        _cleanup_error_ struct barge_error *err = NULL;
        if (barge_runtime_taskfs_remove(dir, id, &err) < 0)
            barge_warn("storage of unknown task %s: %s", id, err->message);
        else
            barge_info("removed the storage left by task %s", id);
    }
    closedir(d);
}
