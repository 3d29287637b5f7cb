/* The filesystem blob store (see blobstore.h). Uploads are written with plain
 * write(2) while a running SHA-256 follows them, so completing an upload never
 * reads the data back; every few megabytes the kernel is asked to start writing
 * the data out, so the fsync at the end has little left to wait for. */
#include "registry/blobstore.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "common/ids.h"
#include "common/log.h"
#include "registry/ref.h"

/* How much written data may wait before we ask for writeback. */
#define WRITEBACK_STEP (8u << 20)

struct barge_upload {
    char id[37];
    char *repo;
    int fd;
    uint64_t size;
    uint64_t flushed; /* bytes already handed to writeback */
    EVP_MD_CTX *md;
    bool busy;    /* a request holds it */
    bool over;    /* committed or cancelled: free on put */
    bool spoiled; /* a write failed */
    int64_t last_used_ms;
    struct barge_upload *next;
};

struct barge_blobstore {
    char *blob_dir;   /* <root>/blobs/sha256 */
    char *upload_dir; /* <root>/uploads */
    pthread_mutex_t lock;
    struct barge_upload *uploads;
};

static int fsync_path(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

int barge_blobstore_open(const char *root, struct barge_blobstore **out, struct barge_error **err)
{
    struct barge_blobstore *bs = barge_xcalloc(1, sizeof(*bs));
    bs->blob_dir = barge_xasprintf("%s/blobs/sha256", root);
    bs->upload_dir = barge_xasprintf("%s/uploads", root);
    pthread_mutex_init(&bs->lock, NULL);
    if (barge_mkdir_p(bs->blob_dir, 0700) < 0 || barge_mkdir_p(bs->upload_dir, 0700) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot create the blob store under '%s'", root);
        barge_blobstore_close(bs);
        return -1;
    }
    /* The 256 fan-out directories exist from the start, so that committing a
     * blob never has to create (and fsync) one. */
    bool made = false;
    for (int i = 0; i < 256; i++) {
        char sub[8];
        snprintf(sub, sizeof(sub), "%02x", i);
        _cleanup_free_ char *p = barge_xasprintf("%s/%s", bs->blob_dir, sub);
        if (mkdir(p, 0700) == 0)
            made = true;
        else if (errno != EEXIST) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", p);
            barge_blobstore_close(bs);
            return -1;
        }
    }
    if (made)
        fsync_path(bs->blob_dir);
    clear_dir(bs->upload_dir);
    *out = bs;
    return 0;
}

static void upload_free(struct barge_upload *up)
{
    if (up->fd >= 0)
        close(up->fd);
    EVP_MD_CTX_free(up->md);
    free(up->repo);
    free(up);
}

void barge_blobstore_close(struct barge_blobstore *bs)
{
    if (!bs)
        return;
    while (bs->uploads) {
        struct barge_upload *up = bs->uploads;
        bs->uploads = up->next;
        upload_free(up);
    }
    pthread_mutex_destroy(&bs->lock);
    free(bs->blob_dir);
    free(bs->upload_dir);
    free(bs);
}

static char *blob_path(const struct barge_blobstore *bs, const char *digest)
{
    const char *hex = digest + strlen("sha256:");
    return barge_xasprintf("%s/%.2s/%s", bs->blob_dir, hex, hex);
}

static char *upload_path(const struct barge_blobstore *bs, const char *id)
{
    return barge_xasprintf("%s/%s", bs->upload_dir, id);
}

int barge_blobstore_stat(struct barge_blobstore *bs, const char *digest, uint64_t *size,
                         struct barge_error **err)
{
    _cleanup_free_ char *p = blob_path(bs, digest);
    struct stat st;
    if (stat(p, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot stat blob '%s'", digest);
    }
    *size = (uint64_t)st.st_size;
    return 1;
}

int barge_blobstore_open_blob(struct barge_blobstore *bs, const char *digest, int *fd,
                              uint64_t *size, struct barge_error **err)
{
    _cleanup_free_ char *p = blob_path(bs, digest);
    int f = open(p, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        if (errno == ENOENT)
            return 0;
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open blob '%s'", digest);
    }
    struct stat st;
    if (fstat(f, &st) < 0) {
        close(f);
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot stat blob '%s'", digest);
    }
    futimens(f, NULL);
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 1;
}

void barge_blobstore_touch(struct barge_blobstore *bs, const char *digest)
{
    _cleanup_free_ char *p = blob_path(bs, digest);
    utimensat(AT_FDCWD, p, NULL, 0);
}

int barge_blobstore_upload_new(struct barge_blobstore *bs, const char *repo, char id[37],
                               struct barge_error **err)
{
    struct barge_upload *up = barge_xcalloc(1, sizeof(*up));
    barge_id_uuid(up->id);
    _cleanup_free_ char *p = upload_path(bs, up->id);
    up->fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (up->fd < 0) {
        upload_free(up);
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create upload file '%s'", p);
    }
    up->md = EVP_MD_CTX_new();
    if (!up->md || EVP_DigestInit_ex(up->md, EVP_sha256(), NULL) != 1)
        abort();
    up->repo = barge_xstrdup(repo);
    up->last_used_ms = barge_monotonic_ms();
    memcpy(id, up->id, 37);
    pthread_mutex_lock(&bs->lock);
    up->next = bs->uploads;
    bs->uploads = up;
    pthread_mutex_unlock(&bs->lock);
    return 0;
}

int barge_blobstore_upload_get(struct barge_blobstore *bs, const char *id, const char *repo,
                               struct barge_upload **out, struct barge_error **err)
{
    int r = 0;
    pthread_mutex_lock(&bs->lock);
    for (struct barge_upload *up = bs->uploads; up; up = up->next) {
        if (strcmp(up->id, id) != 0 || strcmp(up->repo, repo) != 0)
            continue;
        if (up->busy) {
            r = barge_error_set(err, BARGE_ERR_CONFLICT, "upload '%s' is in use by another request",
                                id);
        } else {
            up->busy = true;
            *out = up;
            r = 1;
        }
        break;
    }
    pthread_mutex_unlock(&bs->lock);
    return r;
}

/* Unlinks an upload's file and marks it over; the caller holds it. */
static void upload_end(struct barge_blobstore *bs, struct barge_upload *up, bool unlink_file)
{
    if (unlink_file) {
        _cleanup_free_ char *p = upload_path(bs, up->id);
        unlink(p);
    }
    up->over = true;
}

void barge_blobstore_upload_put(struct barge_blobstore *bs, struct barge_upload *up)
{
    if (!up)
        return;
    if (up->spoiled && !up->over)
        upload_end(bs, up, true);
    pthread_mutex_lock(&bs->lock);
    up->busy = false;
    up->last_used_ms = barge_monotonic_ms();
    if (up->over) {
        for (struct barge_upload **pp = &bs->uploads; *pp; pp = &(*pp)->next)
            if (*pp == up) {
                *pp = up->next;
                break;
            }
    }
    pthread_mutex_unlock(&bs->lock);
    if (up->over)
        upload_free(up);
}

uint64_t barge_upload_size(const struct barge_upload *up)
{
    return up->size;
}

int barge_upload_write(struct barge_upload *up, const void *data, size_t len,
                       struct barge_error **err)
{
    if (up->spoiled)
        return barge_error_set(err, BARGE_ERR_IO, "upload '%s' failed earlier", up->id);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(up->fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            up->spoiled = true;
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write upload '%s'", up->id);
        }
        p += w;
        left -= (size_t)w;
    }
    EVP_DigestUpdate(up->md, data, len);
    up->size += len;
    if (up->size - up->flushed >= WRITEBACK_STEP) {
        sync_file_range(up->fd, (off64_t)up->flushed, (off64_t)(up->size - up->flushed),
                        SYNC_FILE_RANGE_WRITE);
        up->flushed = up->size;
    }
    return 0;
}

int barge_blobstore_upload_commit(struct barge_blobstore *bs, struct barge_upload *up,
                                  const char *digest, struct barge_error **err)
{
    if (up->spoiled) {
        upload_end(bs, up, true);
        return barge_error_set(err, BARGE_ERR_IO, "upload '%s' failed earlier", up->id);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(up->md, md, &n);
    static const char hexd[] = "0123456789abcdef";
    char got[BARGE_DIGEST_MAX] = "sha256:";
    for (unsigned i = 0; i < n && i < 32; i++) {
        got[7 + 2 * i] = hexd[md[i] >> 4];
        got[8 + 2 * i] = hexd[md[i] & 15];
    }
    got[71] = '\0';
    if (strcmp(got, digest) != 0) {
        upload_end(bs, up, true);
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "the uploaded content has digest '%s', not '%s'", got, digest);
    }
    _cleanup_free_ char *from = upload_path(bs, up->id);
    _cleanup_free_ char *to = blob_path(bs, digest);
    /* The grace period of the collector starts now, not at the last chunk. */
    futimens(up->fd, NULL);
    if (fsync(up->fd) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot fsync upload '%s'", up->id);
        upload_end(bs, up, true);
        return -1;
    }
    if (rename(from, to) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot move upload '%s' to '%s'", up->id, to);
        upload_end(bs, up, true);
        return -1;
    }
    char *slash = strrchr(to, '/');
    *slash = '\0';
    if (fsync_path(to) < 0)
        barge_warn("cannot fsync directory '%s': %s", to, strerror(errno));
    upload_end(bs, up, false);
    return 0;
}

void barge_blobstore_upload_cancel(struct barge_blobstore *bs, struct barge_upload *up)
{
    upload_end(bs, up, true);
}

int barge_blobstore_uploads_expire(struct barge_blobstore *bs, int64_t timeout_ms)
{
    int64_t now = barge_monotonic_ms();
    struct barge_upload *dead = NULL;
    pthread_mutex_lock(&bs->lock);
    for (struct barge_upload **pp = &bs->uploads; *pp;) {
        struct barge_upload *up = *pp;
        if (!up->busy && now - up->last_used_ms >= timeout_ms) {
            *pp = up->next;
            up->next = dead;
            dead = up;
        } else {
            pp = &up->next;
        }
    }
    pthread_mutex_unlock(&bs->lock);
    int n = 0;
    while (dead) {
        struct barge_upload *up = dead;
        dead = up->next;
        barge_info("removing upload '%s' to '%s': idle for more than %lld s", up->id, up->repo,
                   (long long)(timeout_ms / 1000));
        _cleanup_free_ char *p = upload_path(bs, up->id);
        unlink(p);
        upload_free(up);
        n++;
    }
    return n;
}

size_t barge_blobstore_uploads_count(struct barge_blobstore *bs)
{
    size_t n = 0;
    pthread_mutex_lock(&bs->lock);
    for (struct barge_upload *up = bs->uploads; up; up = up->next)
        n++;
    pthread_mutex_unlock(&bs->lock);
    return n;
}

int barge_blobstore_sweep(struct barge_blobstore *bs, time_t older_than,
                          barge_blobstore_keep_fn keep, void *ud,
                          struct barge_blobstore_sweep_stats *stats, struct barge_error **err)
{
    memset(stats, 0, sizeof(*stats));
    for (int i = 0; i < 256; i++) {
        char sub[3];
        snprintf(sub, sizeof(sub), "%02x", i);
        _cleanup_free_ char *dir = barge_xasprintf("%s/%s", bs->blob_dir, sub);
        DIR *d = opendir(dir);
        if (!d) {
            if (errno == ENOENT)
                continue;
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", dir);
        }
        bool removed = false;
        struct dirent *e;
        while ((e = readdir(d))) {
            char digest[BARGE_DIGEST_MAX];
            if (strlen(e->d_name) != 64 || strncmp(e->d_name, sub, 2) != 0)
                continue;
            memcpy(digest, "sha256:", 7);
            memcpy(digest + 7, e->d_name, 65);
            if (barge_digest_check(digest) != BARGE_DIGEST_OK)
                continue;
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue;
            if (st.st_mtime >= older_than || keep(digest, ud)) {
                stats->kept++;
                continue;
            }
            if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
                stats->removed++;
                stats->bytes_removed += (uint64_t)st.st_size;
                removed = true;
                barge_debug("collected blob '%s' (%lld bytes)", digest, (long long)st.st_size);
            }
        }
        closedir(d);
        if (removed)
            fsync_path(dir);
    }
    return 0;
}
