/* Container root filesystems: an overlayfs over the cached layers, so tasks
 * share the unpacked layers and each writes only into its own upper dir. */
#include <sys/mount.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"

int barge_image_mount_rootfs(char *const *layers, size_t n_layers, const char *upper_dir,
                             const char *work_dir, const char *target, struct barge_error **err)
{
    if (n_layers == 0)
        return barge_error_set(err, BARGE_ERR_INVALID, "cannot mount '%s': no layers", target);
    if ((upper_dir == NULL) != (work_dir == NULL))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "cannot mount '%s': upper and work directories go together", target);
    size_t cap = 64;
    for (size_t i = 0; i < n_layers; i++) {
        /* ',' and ':' separate options and layers; overlayfs would need
         * escapes, and our cache paths never contain them */
        if (strpbrk(layers[i], ",:\\"))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "cannot mount '%s': layer path '%s' contains ',' ':' or '\\'",
                                   target, layers[i]);
        cap += strlen(layers[i]) + 1;
    }
    cap += upper_dir ? strlen(upper_dir) + strlen(work_dir) + 32 : 0;
    _cleanup_free_ char *opts = barge_xmalloc(cap);
    size_t o = 0;
    o += (size_t)snprintf(opts + o, cap - o, "lowerdir=");
    /* overlayfs lists the topmost lower layer first */
    for (size_t i = n_layers; i-- > 0;)
        o += (size_t)snprintf(opts + o, cap - o, "%s%s", layers[i], i ? ":" : "");
    if (upper_dir)
        o += (size_t)snprintf(opts + o, cap - o, ",upperdir=%s,workdir=%s", upper_dir, work_dir);
    /* The kernel copies at most one page of mount data. */
    long page = sysconf(_SC_PAGESIZE);
    if (o >= (size_t)(page > 0 ? page : 4096))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "cannot mount '%s': %zu layers make an overlayfs option string of "
                               "%zu bytes, over the kernel's limit",
                               target, n_layers, o);
    if (n_layers == 1 && !upper_dir) {
        /* overlayfs wants two lower layers when there is no upper one */
        if (mount(layers[0], target, NULL, MS_BIND, NULL) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot bind-mount '%s' on '%s'",
                                         layers[0], target);
        if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
            int saved = errno;
            umount2(target, MNT_DETACH);
            errno = saved;
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot make '%s' read-only", target);
        }
        return 0;
    }
    if (mount("overlay", target, "overlay", upper_dir ? 0 : MS_RDONLY, opts) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot mount overlayfs on '%s'", target);
    return 0;
}
