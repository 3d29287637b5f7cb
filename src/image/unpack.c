/* Layer unpacking: reads a layer tarball with libarchive and recreates it
 * inside one directory, turning OCI whiteouts into overlayfs ones.
 *
 * Why not archive_write_disk: it resolves names against the process's working
 * directory, so extracting into a directory means chdir(), which is
 * process-wide and races with every other thread of the agent; and its
 * SECURE_SYMLINKS check is an lstat() walk separate from the open(). Instead
 * every name is resolved here from a directory descriptor of the layer root,
 * one component at a time with O_NOFOLLOW|O_DIRECTORY, after refusing ".."
 * components up front. No symlink is ever followed, in a parent or in the
 * final component (every call below is an *at() call with O_NOFOLLOW,
 * AT_SYMLINK_NOFOLLOW, O_EXCL, or a creation that cannot follow), so nothing
 * outside the root can be reached whatever the archive holds, and the working
 * directory is never touched. The directory is private to the unpacking
 * thread (a temporary name the caller renames into place afterwards), so
 * nothing else changes it under our feet. */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "image/image.h"

/* libarchive is loaded on the first unpack rather than at start: with what it
 * pulls in (libxml2, ICU, libstdc++, lzma, bzip2 ...) it is a sixth of an idle
 * agent's resident set, and a host whose images are cached never needs it. */
#define ARCHIVE_FUNCS(X)          \
    X(entry_atime)                \
    X(entry_atime_is_set)         \
    X(entry_atime_nsec)           \
    X(entry_filetype)             \
    X(entry_gid)                  \
    X(entry_hardlink)             \
    X(entry_mtime)                \
    X(entry_mtime_is_set)         \
    X(entry_mtime_nsec)           \
    X(entry_pathname)             \
    X(entry_pathname_utf8)        \
    X(entry_perm)                 \
    X(entry_rdev)                 \
    X(entry_size)                 \
    X(entry_symlink)              \
    X(entry_symlink_utf8)         \
    X(entry_uid)                  \
    X(entry_xattr_next)           \
    X(entry_xattr_reset)          \
    X(error_string)               \
    X(read_data_block)            \
    X(read_free)                  \
    X(read_new)                   \
    X(read_next_header)           \
    X(read_open)                  \
    X(read_open_fd)               \
    X(read_support_filter_gzip)   \
    X(read_support_filter_none)   \
    X(read_support_filter_zstd)   \
    X(read_support_format_empty)  \
    X(read_support_format_gnutar) \
    X(read_support_format_raw)    \
    X(read_support_format_tar)

static struct {
#define ARCHIVE_FIELD(name) __typeof__(archive_##name) *name;
    ARCHIVE_FUNCS(ARCHIVE_FIELD)
#undef ARCHIVE_FIELD
} ar;
static pthread_once_t ar_once = PTHREAD_ONCE_INIT;
static char ar_missing[512]; /* why loading failed; "" when it did not */

static void ar_load(void)
{
    void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(ar_missing, sizeof(ar_missing), "%s", dlerror());
        return;
    }
#define ARCHIVE_SYM(name)                                                                \
    if (!(*(void **)&ar.name = dlsym(h, "archive_" #name))) {                            \
        snprintf(ar_missing, sizeof(ar_missing), "libarchive has no archive_%s", #name); \
        return;                                                                          \
    }
    ARCHIVE_FUNCS(ARCHIVE_SYM)
#undef ARCHIVE_SYM
}

struct dir_meta {
    char *path; /* relative to the root; "" is the root itself */
    mode_t mode;
    struct timespec times[2];
};

struct unpack {
    int root; /* O_PATH descriptor of the layer directory */
    /* The parent of the previous entry, since tar members come grouped by
     * directory; dropped whenever anything is removed. */
    char *cached_parent;
    int cached_fd;
    struct dir_meta *dirs; /* modes and times applied at the end */
    size_t n_dirs, cap_dirs;
};

/* Turns an archive member name into a clean relative path: leading '/' and
 * "./" dropped, empty and "." components dropped, ".." refused. Returns NULL
 * for "..". The caller frees the result; "" names the root. */
static char *clean_name(const char *raw)
{
    size_t len = strlen(raw);
    char *out = barge_xmalloc(len + 1);
    size_t o = 0;
    const char *p = raw;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            return NULL;
        }
        if (!(n == 1 && p[0] == '.')) {
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return out;
}

static void drop_cache(struct unpack *u)
{
    if (u->cached_fd >= 0)
        close(u->cached_fd);
    u->cached_fd = -1;
    free(u->cached_parent);
    u->cached_parent = NULL;
}

/* Opens the directory holding rel (rel must not be "") and points *base at the
 * last component. Missing parents are created (0755, root-owned, as tar does)
 * when create is set. A parent that is a symlink or not a directory is refused:
 * that is how "link -> /" followed by "link/etc/passwd" fails. Returns a
 * descriptor the caller must not close (it belongs to the cache), or -1. */
static int open_parent(struct unpack *u, const char *rel, bool create, const char **base,
                       const char *what, struct barge_error **err)
{
    const char *slash = strrchr(rel, '/');
    *base = slash ? slash + 1 : rel;
    if (!slash)
        return u->root;
    size_t plen = (size_t)(slash - rel);
    if (u->cached_parent && strlen(u->cached_parent) == plen &&
        memcmp(u->cached_parent, rel, plen) == 0)
        return u->cached_fd;

    drop_cache(u);
    _cleanup_free_ char *parent = barge_xstrndup(rel, plen);
    int cur = -1; /* -1 stands for u->root, which we do not own */
    char *save = NULL;
    for (char *comp = strtok_r(parent, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        int at = cur >= 0 ? cur : u->root;
        int next = openat(at, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(at, comp, 0755) < 0 && errno != EEXIST) {
                barge_error_set_errno(err, BARGE_ERR_IO, "cannot create parent of %s '%s'", what,
                                      rel);
                goto fail;
            }
            next = openat(at, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            if (errno == ENOTDIR || errno == ELOOP)
                barge_error_set(err, BARGE_ERR_IO,
                                "refusing layer entry '%s': a parent is a symlink or not a "
                                "directory (%s would be written outside the layer)",
                                rel, what);
            else
                barge_error_set_errno(err, BARGE_ERR_IO, "cannot open parent of %s '%s'", what,
                                      rel);
            goto fail;
        }
        if (cur >= 0)
            close(cur);
        cur = next;
    }
    u->cached_parent = barge_xstrndup(rel, plen);
    u->cached_fd = cur;
    return cur;
fail:
    if (cur >= 0)
        close(cur);
    return -1;
}

static int remove_at(int at, const char *name)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(at, name, 0) < 0 && errno != ENOENT ? -1 : 0;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (remove_at(dirfd(d), de->d_name) < 0) {
            rc = -1;
            break;
        }
    }
    int saved = errno;
    closedir(d);
    if (rc < 0) {
        errno = saved;
        return -1;
    }
    return unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1 : 0;
}

int barge_image_remove_tree(const char *path)
{
    _cleanup_free_ char *copy = barge_xstrdup(path);
    char *slash = strrchr(copy, '/');
    const char *dir = ".", *name = copy;
    if (slash) {
        *slash = '\0';
        dir = slash == copy ? "/" : copy;
        name = slash + 1;
    }
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = remove_at(dfd, name);
    int saved = errno;
    close(dfd);
    errno = saved;
    return rc;
}

/* Makes room for a new entry: a directory stays when the new entry is a
 * directory too (tar merges them); anything else is replaced. */
static int clear_existing(struct unpack *u, int parent, const char *base, bool new_is_dir,
                          const char *rel, struct barge_error **err)
{
    struct stat st;
    if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    if (new_is_dir && S_ISDIR(st.st_mode))
        return 0;
    /* Removing a child of the cached parent leaves the cache valid (and parent
     * may be that very descriptor); removing from elsewhere may orphan it. */
    if (parent != u->cached_fd)
        drop_cache(u);
    if (remove_at(parent, base) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot replace '%s'", rel);
    return 0;
}

/* trusted.overlay.* would let a layer steer the overlay mount (redirects,
 * origin, opacity); those only come from whiteouts we create ourselves. */
static bool xattr_allowed(const char *name)
{
    return !barge_str_has_prefix(name, "trusted.overlay.");
}

static int set_xattrs(struct archive_entry *e, int fd, int parent, const char *base, bool symlink,
                      const char *rel, struct barge_error **err)
{
    const char *name;
    const void *value;
    size_t size;
    ar.entry_xattr_reset(e);
    while (ar.entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (!xattr_allowed(name))
            continue;
        int rc;
        if (fd >= 0) {
            rc = fsetxattr(fd, name, value, size, 0);
        } else {
            /* The magic link names the parent itself; lsetxattr does not follow
             * base when it is a symlink. */
            char path[64 + NAME_MAX];
            snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", parent, base);
            rc = lsetxattr(path, name, value, size, 0);
        }
        if (rc < 0) {
            /* The filesystem lacks the namespace, or (user.*) symlinks refuse it. */
            if (errno == ENOTSUP || (symlink && errno == EPERM)) {
                barge_debug("layer entry '%s': xattr '%s' not kept: %s", rel, name,
                            strerror(errno));
                continue;
            }
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set xattr '%s' on '%s'", name,
                                         rel);
        }
    }
    return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
    ts[1].tv_sec = ar.entry_mtime(e);
    ts[1].tv_nsec = ar.entry_mtime_is_set(e) ? ar.entry_mtime_nsec(e) : 0;
    if (ar.entry_atime_is_set(e)) {
        ts[0].tv_sec = ar.entry_atime(e);
        ts[0].tv_nsec = ar.entry_atime_nsec(e);
    } else {
        ts[0] = ts[1];
    }
}

static int write_file_data(struct archive *a, int fd, la_int64_t size, const char *rel,
                           struct barge_error **err)
{
    const void *buf;
    size_t len;
    la_int64_t off;
    for (;;) {
        int r = ar.read_data_block(a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return barge_error_set(err, BARGE_ERR_IO, "cannot read layer entry '%s': %s", rel,
                                   ar.error_string(a));
        const char *p = buf;
        while (len > 0) {
            /* pwrite at the block's offset leaves the holes of sparse files */
            ssize_t w = pwrite(fd, p, len, off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", rel);
            }
            p += w;
            off += w;
            len -= (size_t)w;
        }
    }
    if (ftruncate(fd, size) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot size '%s'", rel);
    return 0;
}

static int whiteout(struct unpack *u, struct archive_entry *e, const char *rel, int parent,
                    const char *base, struct barge_error **err)
{
    if (strcmp(base, ".wh..wh..opq") == 0) {
        /* An opaque directory hides everything below it in lower layers. */
        int dfd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open directory of '%s'", rel);
        int rc = fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0);
        close(dfd);
        if (rc < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot mark '%s' opaque", rel);
        return 0;
    }
    if (barge_str_has_prefix(base, ".wh..wh."))
        return 0; /* aufs bookkeeping (.wh..wh.plnk and the like) */
    const char *victim = base + 4;
    if (!*victim || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
        return barge_error_set(err, BARGE_ERR_IO, "refusing layer entry '%s': bad whiteout", rel);
    if (clear_existing(u, parent, victim, false, rel, err) < 0)
        return -1;
    if (mknodat(parent, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create whiteout for '%s'", rel);
    struct timespec ts[2];
    entry_times(e, ts);
    if (fchownat(parent, victim, 0, 0, AT_SYMLINK_NOFOLLOW) < 0 ||
        utimensat(parent, victim, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set up whiteout for '%s'", rel);
    return 0;
}

static int hardlink(struct unpack *u, struct archive_entry *e, const char *rel, int parent,
                    const char *base, struct barge_error **err)
{
    const char *raw = ar.entry_hardlink(e);
    _cleanup_free_ char *target = clean_name(raw);
    if (!target || !*target)
        return barge_error_set(err, BARGE_ERR_IO,
                               "refusing layer entry '%s': hard link to '%s' leaves the layer", rel,
                               raw);
    if (clear_existing(u, parent, base, false, rel, err) < 0)
        return -1;
    /* open_parent may replace the cached descriptor that parent is, so hold a
     * descriptor of our own for the link's directory first. */
    int own_parent = openat(parent, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (own_parent < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open directory of '%s'", rel);
    const char *tbase;
    int tparent = open_parent(u, target, false, &tbase, "hard link target", err);
    if (tparent < 0) {
        close(own_parent);
        return barge_error_wrap(err, "hard link '%s'", rel);
    }
    /* flags 0: a symlink target is linked itself, never followed */
    int rc = linkat(tparent, tbase, own_parent, base, 0);
    int saved = errno;
    close(own_parent);
    if (rc < 0) {
        errno = saved;
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot hard link '%s' to '%s'", rel,
                                     target);
    }
    return 0;
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e,
                        struct barge_error **err)
{
    const char *raw = ar.entry_pathname(e);
    if (!raw)
        raw = ar.entry_pathname_utf8(e);
    if (!raw)
        return barge_error_set(err, BARGE_ERR_IO, "layer entry without a usable name");
    _cleanup_free_ char *rel = clean_name(raw);
    if (!rel)
        return barge_error_set(err, BARGE_ERR_IO, "refusing layer entry '%s': it contains '..'",
                               raw);
    mode_t type = ar.entry_filetype(e);
    bool is_link = ar.entry_hardlink(e) != NULL;

    if (!*rel) {
        /* "./": the layer root's own metadata */
        if (type == AE_IFDIR && !is_link) {
            struct dir_meta *m;
            if (u->n_dirs == u->cap_dirs) {
                u->cap_dirs = u->cap_dirs ? 2 * u->cap_dirs : 64;
                u->dirs = barge_xrealloc(u->dirs, u->cap_dirs * sizeof(*u->dirs));
            }
            m = &u->dirs[u->n_dirs++];
            m->path = barge_xstrdup("");
            m->mode = ar.entry_perm(e);
            entry_times(e, m->times);
            if (fchownat(u->root, "", ar.entry_uid(e), ar.entry_gid(e), AT_EMPTY_PATH) < 0)
                return barge_error_set_errno(err, BARGE_ERR_IO, "cannot chown layer root");
        }
        return 0;
    }

    const char *base;
    int parent = open_parent(u, rel, true, &base, "entry", err);
    if (parent < 0)
        return -1;
    if (barge_str_has_prefix(base, ".wh."))
        return whiteout(u, e, rel, parent, base, err);
    if (is_link)
        return hardlink(u, e, rel, parent, base, err);

    uid_t uid = (uid_t)ar.entry_uid(e);
    gid_t gid = (gid_t)ar.entry_gid(e);
    mode_t perm = ar.entry_perm(e);
    struct timespec ts[2];
    entry_times(e, ts);

    switch (type) {
    case AE_IFREG: {
        if (clear_existing(u, parent, base, false, rel, err) < 0)
            return -1;
        _cleanup_close_ int fd =
            openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", rel);
        if (write_file_data(a, fd, ar.entry_size(e), rel, err) < 0)
            return -1;
        /* chown before chmod: chown clears set-id bits; xattrs after both
         * because chown also drops security.capability */
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, perm) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set owner/mode of '%s'", rel);
        if (set_xattrs(e, fd, parent, base, false, rel, err) < 0)
            return -1;
        if (futimens(fd, ts) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set times of '%s'", rel);
        return 0;
    }
    case AE_IFDIR: {
        if (clear_existing(u, parent, base, true, rel, err) < 0)
            return -1;
        if (mkdirat(parent, base, 0700) < 0 && errno != EEXIST)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create directory '%s'", rel);
        _cleanup_close_ int fd =
            openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open directory '%s'", rel);
        if (fchown(fd, uid, gid) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot chown '%s'", rel);
        if (set_xattrs(e, fd, parent, base, false, rel, err) < 0)
            return -1;
        /* Mode and times last: a read-only directory must still take its
         * children, and adding them would bump its mtime. */
        if (u->n_dirs == u->cap_dirs) {
            u->cap_dirs = u->cap_dirs ? 2 * u->cap_dirs : 64;
            u->dirs = barge_xrealloc(u->dirs, u->cap_dirs * sizeof(*u->dirs));
        }
        struct dir_meta *m = &u->dirs[u->n_dirs++];
        m->path = barge_steal(&rel);
        m->mode = perm;
        m->times[0] = ts[0];
        m->times[1] = ts[1];
        return 0;
    }
    case AE_IFLNK: {
        const char *target = ar.entry_symlink(e);
        if (!target)
            target = ar.entry_symlink_utf8(e);
        if (!target)
            return barge_error_set(err, BARGE_ERR_IO, "symlink '%s' without a target", rel);
        if (clear_existing(u, parent, base, false, rel, err) < 0)
            return -1;
        /* Any target is fine to store: nothing here ever follows it. */
        if (symlinkat(target, parent, base) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create symlink '%s'", rel);
        if (fchownat(parent, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot chown '%s'", rel);
        if (set_xattrs(e, -1, parent, base, true, rel, err) < 0)
            return -1;
        if (utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set times of '%s'", rel);
        return 0;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
        if (clear_existing(u, parent, base, false, rel, err) < 0)
            return -1;
        dev_t dev = type == AE_IFIFO ? 0 : ar.entry_rdev(e);
        if (mknodat(parent, base, type | (perm & 0777), dev) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create device '%s'", rel);
        /* The node was just made by us in our private directory, so following
         * base in fchmodat cannot reach a symlink. */
        if (fchownat(parent, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(parent, base, perm, 0) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set owner/mode of '%s'", rel);
        if (set_xattrs(e, -1, parent, base, false, rel, err) < 0)
            return -1;
        if (utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set times of '%s'", rel);
        return 0;
    }
    default:
        barge_debug("layer entry '%s': type %o skipped", rel, (unsigned)type);
        return 0;
    }
}

/* Applies directory modes and times once everything is written, deepest
 * first. A directory later replaced by something else is skipped (O_NOFOLLOW
 * | O_DIRECTORY), so a later symlink of the same name is never followed. */
static int finish_dirs(struct unpack *u, struct barge_error **err)
{
    for (size_t i = u->n_dirs; i-- > 0;) {
        struct dir_meta *m = &u->dirs[i];
        int fd;
        if (!*m->path) {
            fd = openat(u->root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
            const char *base;
            int parent = open_parent(u, m->path, false, &base, "directory", err);
            if (parent < 0)
                return -1;
            fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 && (errno == ENOTDIR || errno == ELOOP || errno == ENOENT))
                continue;
        }
        if (fd < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open directory '%s'", m->path);
        int rc = fchmod(fd, m->mode) < 0 || futimens(fd, m->times) < 0 ? -1 : 0;
        close(fd);
        if (rc < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot set mode/times of '%s'",
                                         m->path);
    }
    return 0;
}

/* The uncompressed tar stream, as the tar reader pulls it: a second archive
 * in raw format undoes the compression, and every block it yields is hashed
 * (for the diff_id) and counted (for the cap) on its way to the tar reader.
 * Counting the stream rather than trusting entry sizes bounds what can land
 * on disk, since every byte written comes out of it. */
struct stream {
    struct archive *raw;
    EVP_MD_CTX *sha;
    const struct barge_image_unpack_limits *limits;
    const char *dir;
    uint64_t bytes;
    uint64_t next_space_check;
    bool eof;
    struct barge_error *err; /* why the stream stopped, when it was us */
};

/* Checked this often as the stream goes: often enough that a filling disk is
 * noticed with room to spare, seldom enough to cost nothing. */
#define SPACE_CHECK_EVERY (16u << 20)

static int check_space(const char *dir, uint64_t need, uint64_t keep, struct barge_error **err)
{
    struct statvfs vfs;
    if (statvfs(dir, &vfs) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot stat the filesystem of '%s'", dir);
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (keep > avail || need > avail - keep)
        return barge_error_set(err, BARGE_ERR_LIMIT,
                               "not enough free space to unpack into '%s': %llu bytes free, "
                               "%llu wanted for the layer and %llu to stay free",
                               dir, (unsigned long long)avail, (unsigned long long)need,
                               (unsigned long long)keep);
    return 0;
}

static la_ssize_t stream_read(struct archive *inner, void *ud, const void **buf)
{
    (void)inner;
    struct stream *s = ud;
    if (s->eof || s->err)
        return s->err ? -1 : 0;
    size_t len;
    la_int64_t off;
    int r = ar.read_data_block(s->raw, buf, &len, &off);
    if (r == ARCHIVE_EOF) {
        s->eof = true;
        return 0;
    }
    if (r < ARCHIVE_WARN) {
        barge_error_set(&s->err, BARGE_ERR_IO, "cannot decompress layer: %s",
                        ar.error_string(s->raw));
        return -1;
    }
    s->bytes += len;
    if (s->limits && s->limits->max_bytes && s->bytes > s->limits->max_bytes) {
        barge_error_set(&s->err, BARGE_ERR_LIMIT,
                        "unpacks to more than %llu bytes, the most a layer may have",
                        (unsigned long long)s->limits->max_bytes);
        return -1;
    }
    if (s->limits && s->limits->min_free && s->bytes >= s->next_space_check) {
        s->next_space_check = s->bytes + SPACE_CHECK_EVERY;
        if (check_space(s->dir, 0, s->limits->min_free, &s->err) < 0)
            return -1;
    }
    EVP_DigestUpdate(s->sha, *buf, len);
    return (la_ssize_t)len;
}

/* Reports the stream's own error in place of whatever the tar reader made of
 * the failed read: "unpacks to more than N bytes" rather than "truncated". */
static int stream_error(struct stream *s, struct barge_error **err)
{
    if (err) {
        barge_error_free(*err);
        *err = s->err;
    } else {
        barge_error_free(s->err);
    }
    s->err = NULL;
    return -1;
}

/* What the tar reader left unread (the zero blocks that end an archive, and
 * any padding after them) belongs to the diff_id too. */
static int stream_drain(struct stream *s)
{
    const void *buf;
    while (!s->eof && !s->err)
        if (stream_read(NULL, s, &buf) < 0)
            return -1;
    return s->err ? -1 : 0;
}

int barge_image_layer_unpack(int fd, const char *dir,
                             const struct barge_image_unpack_limits *limits, char diff_id[72],
                             struct barge_error **err)
{
    pthread_once(&ar_once, ar_load);
    if (ar_missing[0])
        return barge_error_set(err, BARGE_ERR_INTERNAL, "cannot load libarchive: %s", ar_missing);
    if (limits && limits->min_free) {
        /* the compressed size is a floor for what the layer will take */
        struct stat st;
        off_t here = lseek(fd, 0, SEEK_CUR);
        uint64_t need = fstat(fd, &st) == 0 && here >= 0 && st.st_size > here
                            ? (uint64_t)(st.st_size - here)
                            : 0;
        if (check_space(dir, need, limits->min_free, err) < 0)
            return -1;
    }
    struct unpack u = {.root = -1, .cached_fd = -1};
    u.root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (u.root < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open layer directory '%s'", dir);

    struct stream s = {.limits = limits, .dir = dir, .next_space_check = SPACE_CHECK_EVERY};
    s.sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL);
    s.raw = ar.read_new();
    ar.read_support_filter_gzip(s.raw);
    ar.read_support_filter_zstd(s.raw);
    ar.read_support_filter_none(s.raw);
    ar.read_support_format_raw(s.raw);
    /* A zero-byte blob is a valid empty layer. */
    ar.read_support_format_empty(s.raw);

    struct archive *a = ar.read_new();
    ar.read_support_filter_none(a);
    ar.read_support_format_tar(a);
    ar.read_support_format_gnutar(a);
    ar.read_support_format_empty(a);

    int rc = -1;
    struct archive_entry *raw_entry;
    if (ar.read_open_fd(s.raw, fd, 64 * 1024) != ARCHIVE_OK) {
        barge_error_set(err, BARGE_ERR_IO, "cannot read layer: %s", ar.error_string(s.raw));
        goto out;
    }
    int r = ar.read_next_header(s.raw, &raw_entry);
    if (r == ARCHIVE_EOF) {
        s.eof = true; /* the empty blob */
    } else if (r < ARCHIVE_WARN) {
        barge_error_set(err, BARGE_ERR_IO, "cannot read layer: %s", ar.error_string(s.raw));
        goto out;
    }
    if (ar.read_open(a, &s, NULL, stream_read, NULL) != ARCHIVE_OK) {
        if (s.err)
            stream_error(&s, err);
        else
            barge_error_set(err, BARGE_ERR_IO, "cannot read layer: %s", ar.error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        r = ar.read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            if (s.err)
                stream_error(&s, err);
            else
                barge_error_set(err, BARGE_ERR_IO, "cannot read layer: %s", ar.error_string(a));
            goto out;
        }
        if (unpack_entry(&u, a, e, err) < 0) {
            /* a failed read of file data may have been the stream's doing */
            if (s.err)
                stream_error(&s, err);
            goto out;
        }
    }
    if (stream_drain(&s) < 0) {
        stream_error(&s, err);
        goto out;
    }
    rc = finish_dirs(&u, err);
    if (rc == 0 && diff_id) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_DigestFinal_ex(s.sha, md, &n);
        static const char hex[] = "0123456789abcdef";
        memcpy(diff_id, "sha256:", 7);
        for (unsigned int i = 0; i < 32; i++) {
            diff_id[7 + 2 * i] = hex[md[i] >> 4];
            diff_id[8 + 2 * i] = hex[md[i] & 15];
        }
        diff_id[71] = '\0';
    }
out:
    ar.read_free(a);
    ar.read_free(s.raw);
    EVP_MD_CTX_free(s.sha);
    barge_error_free(s.err);
    drop_cache(&u);
    for (size_t i = 0; i < u.n_dirs; i++)
        free(u.dirs[i].path);
    free(u.dirs);
    close(u.root);
    return rc;
}
