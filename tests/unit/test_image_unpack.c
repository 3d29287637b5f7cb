/* Unit tests of layer unpacking and reference parsing. The tarballs are made
 * here with libarchive's writer, including hostile ones (".." names, absolute
 * names, writes through symlinks, hard links leaving the layer) that a
 * registry could serve; each test checks both the error and that nothing
 * appeared outside the layer directory. */
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>

/* cmocka.h needs these three before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "image/image.h"

struct tent {
    const char *name;
    mode_t type;        /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO; 0 = hard link */
    const char *data;   /* file contents */
    const char *target; /* symlink or hard link target */
    mode_t perm;        /* 0: 0644 / 0755 */
    int uid, gid;
    dev_t rdev;
    const char *xattr, *xattr_value;
};

enum { F_NONE, F_GZIP, F_ZSTD };

/* Writes the entries as a tarball into an anonymous file and rewinds it. */
static int make_tar(const struct tent *ents, size_t n, int filter)
{
    int fd = memfd_create("layer", MFD_CLOEXEC);
    assert_true(fd >= 0);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (filter == F_GZIP)
        archive_write_add_filter_gzip(a);
    else if (filter == F_ZSTD)
        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        const struct tent *t = &ents[i];
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, t->name);
        archive_entry_set_uid(e, t->uid);
        archive_entry_set_gid(e, t->gid);
        archive_entry_set_mtime(e, 1000000000 + (time_t)i, 0);
        if (t->type == 0) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, t->target);
        } else {
            archive_entry_set_filetype(e, t->type);
        }
        archive_entry_set_perm(e, t->perm ? t->perm : t->type == AE_IFDIR ? 0755 : 0644);
        if (t->type == AE_IFLNK)
            archive_entry_set_symlink(e, t->target);
        if (t->type == AE_IFCHR)
            archive_entry_set_rdev(e, t->rdev);
        if (t->xattr)
            archive_entry_xattr_add_entry(e, t->xattr, t->xattr_value, strlen(t->xattr_value));
        size_t len = t->data ? strlen(t->data) : 0;
        archive_entry_set_size(e, t->type == AE_IFREG ? (la_int64_t)len : 0);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (t->type == AE_IFREG && len)
            assert_int_equal(archive_write_data(a, t->data, len), (la_ssize_t)len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* A scratch area: <top>/layer is where layers go, <top>/outside must stay
 * untouched by them. */
struct scratch {
    char top[64];
    char layer[128];
    char outside[128];
};

static void scratch_new(struct scratch *s)
{
    snprintf(s->top, sizeof(s->top), "/tmp/barge-unpack-XXXXXX");
    assert_non_null(mkdtemp(s->top));
    snprintf(s->layer, sizeof(s->layer), "%s/layer", s->top);
    snprintf(s->outside, sizeof(s->outside), "%s/outside", s->top);
    assert_int_equal(mkdir(s->layer, 0755), 0);
    assert_int_equal(mkdir(s->outside, 0755), 0);
}

static void scratch_free(struct scratch *s)
{
    assert_int_equal(barge_image_remove_tree(s->top), 0);
}

static char *path_in(const char *dir, const char *rel)
{
    static char buf[4][512];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 512, "%s/%s", dir, rel);
    return b;
}

static int unpack(const struct scratch *s, const struct tent *ents, size_t n, int filter,
                  struct barge_error **err)
{
    int fd = make_tar(ents, n, filter);
    int rc = barge_image_layer_unpack(fd, s->layer, NULL, NULL, err);
    close(fd);
    return rc;
}

static void expect_refused(const struct tent *ents, size_t n, const char *needle)
{
    struct scratch s;
    scratch_new(&s);
    struct barge_error *err = NULL;
    assert_int_equal(unpack(&s, ents, n, F_NONE, &err), -1);
    assert_non_null(err);
    if (!strstr(err->message, needle))
        fail_msg("error '%s' lacks '%s'", err->message, needle);
    barge_error_free(err);
    /* nothing leaked into the sibling directory or its parent */
    struct stat st;
    assert_int_equal(lstat(path_in(s.outside, "owned"), &st), -1);
    assert_int_equal(lstat(path_in(s.top, "owned"), &st), -1);
    scratch_free(&s);
}

static void check_basic(int filter)
{
    struct scratch s;
    scratch_new(&s);
    const struct tent ents[] = {
        {.name = "./", .type = AE_IFDIR, .perm = 0755},
        {.name = "bin/", .type = AE_IFDIR, .perm = 0711},
        {.name = "bin/tool",
         .type = AE_IFREG,
         .data = "#!/bin/sh\n",
         .perm = 04755,
         .uid = 1000,
         .gid = 1001},
        {.name = "bin/sh", .type = AE_IFLNK, .target = "/bin/tool"},
        {.name = "bin/tool2", .type = 0, .target = "bin/tool"},
        {.name = "etc/deep/file",
         .type = AE_IFREG,
         .data = "x",
         .xattr = "user.note",
         .xattr_value = "hello"},
        {.name = "dev/null", .type = AE_IFCHR, .rdev = makedev(1, 3), .perm = 0666},
        {.name = "run/fifo", .type = AE_IFIFO, .perm = 0600},
        {.name = "ro/", .type = AE_IFDIR, .perm = 0555},
        {.name = "ro/inside", .type = AE_IFREG, .data = "y"},
        {.name = "/abs/file", .type = AE_IFREG, .data = "z"},
        {.name = "tmp/trusted",
         .type = AE_IFREG,
         .data = "t",
         .xattr = "trusted.overlay.redirect",
         .xattr_value = "/etc"},
    };
    struct barge_error *err = NULL;
    int rc = unpack(&s, ents, BARGE_ARRAY_SIZE(ents), filter, &err);
    if (rc < 0)
        fail_msg("unpack: %s", err->message);

    struct stat st;
    assert_int_equal(lstat(path_in(s.layer, "bin/tool"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 04755);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_gid, 1001);
    assert_int_equal(st.st_size, 10);
    assert_int_equal(st.st_mtime, 1000000002);
    assert_int_equal(st.st_nlink, 2);
    ino_t ino = st.st_ino;
    assert_int_equal(lstat(path_in(s.layer, "bin/tool2"), &st), 0);
    assert_int_equal(st.st_ino, ino);

    char buf[64];
    ssize_t n = readlink(path_in(s.layer, "bin/sh"), buf, sizeof(buf) - 1);
    assert_int_equal(n, 9);
    buf[n] = '\0';
    assert_string_equal(buf, "/bin/tool");

    assert_int_equal(lstat(path_in(s.layer, "bin"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);
    assert_int_equal(st.st_mtime, 1000000001);
    assert_int_equal(lstat(path_in(s.layer, "ro"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(lstat(path_in(s.layer, "ro/inside"), &st), 0);

    n = getxattr(path_in(s.layer, "etc/deep/file"), "user.note", buf, sizeof(buf));
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "hello", 5);
    /* overlay xattrs from the archive are never applied */
    assert_int_equal(
        lgetxattr(path_in(s.layer, "tmp/trusted"), "trusted.overlay.redirect", buf, sizeof(buf)),
        -1);

    assert_int_equal(lstat(path_in(s.layer, "dev/null"), &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(1, 3));
    assert_int_equal(st.st_mode & 0777, 0666);
    assert_int_equal(lstat(path_in(s.layer, "run/fifo"), &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(lstat(path_in(s.layer, "abs/file"), &st), 0);
    scratch_free(&s);
}

static void test_basic_none(void **state)
{
    check_basic(F_NONE);
}

static void test_basic_gzip(void **state)
{
    check_basic(F_GZIP);
}

static void test_basic_zstd(void **state)
{
    check_basic(F_ZSTD);
}

static void test_empty_layer(void **state)
{
    struct scratch s;
    scratch_new(&s);
    struct barge_error *err = NULL;
    /* a zero-byte blob and an empty tarball are both valid layers */
    int fd = memfd_create("empty", MFD_CLOEXEC);
    assert_int_equal(barge_image_layer_unpack(fd, s.layer, NULL, NULL, &err), 0);
    close(fd);
    assert_int_equal(unpack(&s, NULL, 0, F_GZIP, &err), 0);
    assert_null(err);
    scratch_free(&s);
}

/* "sha256:<hex>" of what fd holds, read from the start. */
static void sha256_of_fd(int fd, char out[72])
{
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    char buf[8192];
    ssize_t n;
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        EVP_DigestUpdate(sha, buf, (size_t)n);
    unsigned char md[32];
    EVP_DigestFinal_ex(sha, md, NULL);
    EVP_MD_CTX_free(sha);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
}

static void test_diff_id_and_size_cap(void **state)
{
    static char big[300 * 1024];
    memset(big, 'z', sizeof(big) - 1);
    const struct tent ents[] = {
        {.name = "d", .type = AE_IFDIR},
        {.name = "d/big", .type = AE_IFREG, .data = big},
    };
    /* the diff_id is the digest of the uncompressed tar, whatever the
     * compression it came in */
    int plain = make_tar(ents, 2, F_NONE);
    char want[72];
    sha256_of_fd(plain, want);
    off_t tar_size = lseek(plain, 0, SEEK_END);
    assert_int_equal(lseek(plain, 0, SEEK_SET), 0);
    for (int filter = F_NONE; filter <= F_ZSTD; filter++) {
        struct scratch s;
        scratch_new(&s);
        int fd = filter == F_NONE ? dup(plain) : make_tar(ents, 2, filter);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        char got[72] = "";
        struct barge_error *err = NULL;
        /* a cap of exactly the tar's size lets it through */
        struct barge_image_unpack_limits fits = {.max_bytes = (uint64_t)tar_size};
        assert_int_equal(barge_image_layer_unpack(fd, s.layer, &fits, got, &err), 0);
        assert_string_equal(got, want);
        close(fd);
        scratch_free(&s);

        /* one byte less does not, whatever was written by then */
        scratch_new(&s);
        fd = filter == F_NONE ? dup(plain) : make_tar(ents, 2, filter);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct barge_image_unpack_limits tight = {.max_bytes = (uint64_t)tar_size - 1};
        assert_int_equal(barge_image_layer_unpack(fd, s.layer, &tight, got, &err), -1);
        assert_int_equal(err->code, BARGE_ERR_LIMIT);
        char needle[64];
        snprintf(needle, sizeof(needle), "unpacks to more than %lld bytes",
                 (long long)tar_size - 1);
        assert_non_null(strstr(err->message, needle));
        barge_error_free(err);
        close(fd);
        scratch_free(&s);
    }
    close(plain);

    /* the empty blob is the empty stream */
    struct scratch s;
    scratch_new(&s);
    int fd = memfd_create("empty", MFD_CLOEXEC);
    char got[72];
    struct barge_error *err = NULL;
    assert_int_equal(barge_image_layer_unpack(fd, s.layer, NULL, got, &err), 0);
    assert_string_equal(got,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    close(fd);
    scratch_free(&s);
}

static void test_short_disk_refused(void **state)
{
    struct scratch s;
    scratch_new(&s);
    const struct tent ents[] = {{.name = "f", .type = AE_IFREG, .data = "x"}};
    int fd = make_tar(ents, 1, F_GZIP);
    struct barge_error *err = NULL;
    struct barge_image_unpack_limits limits = {.min_free = UINT64_MAX / 2};
    assert_int_equal(barge_image_layer_unpack(fd, s.layer, &limits, NULL, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_LIMIT);
    assert_non_null(strstr(err->message, "not enough free space"));
    barge_error_free(err);
    close(fd);
    /* refused before anything was written */
    assert_int_equal(access(path_in(s.layer, "f"), F_OK), -1);
    scratch_free(&s);
}

static void test_garbage_layer(void **state)
{
    struct scratch s;
    scratch_new(&s);
    int fd = memfd_create("garbage", MFD_CLOEXEC);
    char junk[4096];
    memset(junk, 'J', sizeof(junk));
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    lseek(fd, 0, SEEK_SET);
    struct barge_error *err = NULL;
    assert_int_equal(barge_image_layer_unpack(fd, s.layer, NULL, NULL, &err), -1);
    assert_non_null(err);
    barge_error_free(err);
    close(fd);
    scratch_free(&s);
}

static void test_dotdot_refused(void **state)
{
    const struct tent a[] = {{.name = "../outside/owned", .type = AE_IFREG, .data = "x"}};
    expect_refused(a, 1, "'..'");
    const struct tent b[] = {{.name = "ok/../../owned", .type = AE_IFREG, .data = "x"}};
    expect_refused(b, 1, "'..'");
    const struct tent c[] = {{.name = "/../owned", .type = AE_IFDIR}};
    expect_refused(c, 1, "'..'");
}

static void test_symlink_parent_refused(void **state)
{
    /* an absolute link to the host root, then a file written through it */
    char target[160];
    struct scratch probe;
    scratch_new(&probe);
    snprintf(target, sizeof(target), "%s", probe.outside);
    const struct tent a[] = {
        {.name = "evil", .type = AE_IFLNK, .target = target},
        {.name = "evil/owned", .type = AE_IFREG, .data = "x"},
    };
    struct barge_error *err = NULL;
    assert_int_equal(unpack(&probe, a, 2, F_NONE, &err), -1);
    assert_non_null(strstr(err->message, "symlink"));
    barge_error_free(err);
    struct stat st;
    assert_int_equal(lstat(path_in(probe.outside, "owned"), &st), -1);
    scratch_free(&probe);

    const struct tent b[] = {
        {.name = "root", .type = AE_IFLNK, .target = "/"},
        {.name = "root/tmp/owned", .type = AE_IFREG, .data = "x"},
    };
    expect_refused(b, 2, "symlink");
    const struct tent c[] = {
        {.name = "up", .type = AE_IFLNK, .target = "../outside"},
        {.name = "up/owned", .type = AE_IFDIR},
    };
    expect_refused(c, 2, "symlink");
    /* a symlink deeper down, created as a directory's replacement */
    const struct tent d[] = {
        {.name = "a/b/", .type = AE_IFDIR},
        {.name = "a/b", .type = AE_IFLNK, .target = "../../outside"},
        {.name = "a/b/owned", .type = AE_IFREG, .data = "x"},
    };
    expect_refused(d, 3, "symlink");
}

static void test_dir_replaced_by_symlink(void **state)
{
    /* The deferred chmod of "d" must not follow the symlink that replaced it. */
    struct scratch s;
    scratch_new(&s);
    const struct tent ents[] = {
        {.name = "d/", .type = AE_IFDIR, .perm = 0700},
        {.name = "d", .type = AE_IFLNK, .target = s.outside},
    };
    struct barge_error *err = NULL;
    assert_int_equal(unpack(&s, ents, 2, F_NONE, &err), 0);
    struct stat st;
    assert_int_equal(lstat(s.outside, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(lstat(path_in(s.layer, "d"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    scratch_free(&s);
}

static void test_final_symlink_not_followed(void **state)
{
    /* A file entry named like an existing symlink replaces the link. */
    struct scratch s;
    scratch_new(&s);
    char target[160];
    snprintf(target, sizeof(target), "%s/owned", s.outside);
    const struct tent ents[] = {
        {.name = "f", .type = AE_IFLNK, .target = target},
        {.name = "f", .type = AE_IFREG, .data = "x"},
    };
    struct barge_error *err = NULL;
    assert_int_equal(unpack(&s, ents, 2, F_NONE, &err), 0);
    struct stat st;
    assert_int_equal(lstat(target, &st), -1);
    assert_int_equal(lstat(path_in(s.layer, "f"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    scratch_free(&s);
}

static void test_hardlink_outside_refused(void **state)
{
    const struct tent a[] = {{.name = "h", .type = 0, .target = "../outside/victim"}};
    expect_refused(a, 1, "leaves the layer");
    /* absolute targets are layer-relative: /etc/passwd is not in the layer */
    const struct tent b[] = {{.name = "h", .type = 0, .target = "/etc/passwd"}};
    expect_refused(b, 1, "hard link");
    const struct tent c[] = {
        {.name = "etc", .type = AE_IFLNK, .target = "/etc"},
        {.name = "h", .type = 0, .target = "etc/passwd"},
    };
    expect_refused(c, 2, "symlink");

    /* a hard link to a symlink links the symlink itself */
    struct scratch s;
    scratch_new(&s);
    const struct tent d[] = {
        {.name = "l", .type = AE_IFLNK, .target = "/etc/passwd"},
        {.name = "h", .type = 0, .target = "l"},
    };
    struct barge_error *err = NULL;
    assert_int_equal(unpack(&s, d, 2, F_NONE, &err), 0);
    struct stat st;
    assert_int_equal(lstat(path_in(s.layer, "h"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    scratch_free(&s);
}

static void test_whiteouts(void **state)
{
    struct scratch s;
    scratch_new(&s);
    const struct tent ents[] = {
        {.name = "etc/.wh.passwd", .type = AE_IFREG},
        {.name = "opq/.wh..wh..opq", .type = AE_IFREG},
        {.name = "opq/new", .type = AE_IFREG, .data = "n"},
        {.name = ".wh..wh.plnk", .type = AE_IFDIR},
        {.name = ".wh.topfile", .type = AE_IFREG},
    };
    struct barge_error *err = NULL;
    if (unpack(&s, ents, BARGE_ARRAY_SIZE(ents), F_GZIP, &err) < 0)
        fail_msg("unpack: %s", err->message);
    struct stat st;
    assert_int_equal(lstat(path_in(s.layer, "etc/passwd"), &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(0, 0));
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(lstat(path_in(s.layer, "etc/.wh.passwd"), &st), -1);
    assert_int_equal(lstat(path_in(s.layer, "topfile"), &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(lstat(path_in(s.layer, ".wh..wh.plnk"), &st), -1);
    char v[8];
    assert_int_equal(lgetxattr(path_in(s.layer, "opq"), "trusted.overlay.opaque", v, sizeof(v)), 1);
    assert_int_equal(v[0], 'y');
    assert_int_equal(lstat(path_in(s.layer, "opq/.wh..wh..opq"), &st), -1);
    assert_int_equal(lstat(path_in(s.layer, "opq/new"), &st), 0);
    scratch_free(&s);

    const struct tent bad[] = {{.name = "x/.wh...", .type = AE_IFREG}};
    expect_refused(bad, 1, "whiteout");
}

static void test_mount_rootfs(void **state)
{
    struct scratch s;
    scratch_new(&s);
    char l1[200], l2[200], upper[200], work[200], target[200];
    snprintf(l1, sizeof(l1), "%s/l1", s.top);
    snprintf(l2, sizeof(l2), "%s/l2", s.top);
    snprintf(upper, sizeof(upper), "%s/upper", s.top);
    snprintf(work, sizeof(work), "%s/work", s.top);
    snprintf(target, sizeof(target), "%s/rootfs", s.top);
    const char *dirs[] = {l1, l2, upper, work, target};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(dirs); i++)
        assert_int_equal(mkdir(dirs[i], 0755), 0);
    const struct tent base[] = {
        {.name = "keep", .type = AE_IFREG, .data = "1"},
        {.name = "gone", .type = AE_IFREG, .data = "2"},
        {.name = "dir/old", .type = AE_IFREG, .data = "3"},
    };
    const struct tent top[] = {
        {.name = ".wh.gone", .type = AE_IFREG},
        {.name = "dir/.wh..wh..opq", .type = AE_IFREG},
        {.name = "dir/new", .type = AE_IFREG, .data = "4"},
    };
    struct barge_error *err = NULL;
    int fd = make_tar(base, 3, F_NONE);
    assert_int_equal(barge_image_layer_unpack(fd, l1, NULL, NULL, &err), 0);
    close(fd);
    fd = make_tar(top, 3, F_NONE);
    assert_int_equal(barge_image_layer_unpack(fd, l2, NULL, NULL, &err), 0);
    close(fd);

    char *layers[] = {l1, l2};
    if (barge_image_mount_rootfs(layers, 2, upper, work, target, &err) < 0) {
        /* not root, or no overlayfs here */
        barge_error_free(err);
        scratch_free(&s);
        skip();
    }
    struct stat st;
    int checks =
        lstat(path_in(target, "keep"), &st) == 0 && lstat(path_in(target, "gone"), &st) < 0 &&
        lstat(path_in(target, "dir/old"), &st) < 0 && lstat(path_in(target, "dir/new"), &st) == 0;
    int fdw = open(path_in(target, "written"), O_WRONLY | O_CREAT, 0644);
    if (fdw >= 0)
        close(fdw);
    assert_int_equal(umount2(target, MNT_DETACH), 0);
    assert_true(checks);
    assert_true(fdw >= 0);
    assert_int_equal(lstat(path_in(upper, "written"), &st), 0);
    assert_int_equal(lstat(path_in(l2, "written"), &st), -1);

    /* read-only with one layer: a bind mount */
    char *one[] = {l1};
    assert_int_equal(barge_image_mount_rootfs(one, 1, NULL, NULL, target, &err), 0);
    assert_int_equal(lstat(path_in(target, "keep"), &st), 0);
    fdw = open(path_in(target, "nope"), O_WRONLY | O_CREAT, 0644);
    int saved = errno;
    assert_int_equal(umount2(target, MNT_DETACH), 0);
    assert_int_equal(fdw, -1);
    assert_int_equal(saved, EROFS);
    scratch_free(&s);
}

struct ref_case {
    const char *in;
    const char *domain, *repository, *tag, *digest;
};

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_ref_parse(void **state)
{
    static const struct ref_case ok[] = {
        {"busybox", "docker.io", "library/busybox", "latest", NULL},
        {"busybox:1.36", "docker.io", "library/busybox", "1.36", NULL},
        {"library/busybox", "docker.io", "library/busybox", "latest", NULL},
        {"docker.io/busybox", "docker.io", "library/busybox", "latest", NULL},
        {"index.docker.io/user/app:v1", "docker.io", "user/app", "v1", NULL},
        {"user/app", "docker.io", "user/app", "latest", NULL},
        {"localhost/app", "localhost", "app", "latest", NULL},
        {"localhost:5000/app:dev", "localhost:5000", "app", "dev", NULL},
        {"127.0.0.1:35000/a/b/c:t-1.2_x", "127.0.0.1:35000", "a/b/c", "t-1.2_x", NULL},
        {"[::1]:5000/app", "[::1]:5000", "app", "latest", NULL},
        {"registry.example.com/ns/app", "registry.example.com", "ns/app", "latest", NULL},
        {"app@sha256:" D64, "docker.io", "library/app", NULL, "sha256:" D64},
        {"host:5000/app:v2@sha256:" D64, "host:5000", "app", "v2", "sha256:" D64},
        {"my-app__x/sub--z.y", "docker.io", "my-app__x/sub--z.y", "latest", NULL},
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(ok); i++) {
        struct barge_image_ref r;
        struct barge_error *err = NULL;
        if (barge_image_ref_parse(ok[i].in, &r, &err) < 0)
            fail_msg("'%s': %s", ok[i].in, err->message);
        assert_string_equal(r.domain, ok[i].domain);
        assert_string_equal(r.repository, ok[i].repository);
        if (ok[i].tag)
            assert_string_equal(r.tag, ok[i].tag);
        else
            assert_null(r.tag);
        if (ok[i].digest)
            assert_string_equal(r.digest, ok[i].digest);
        else
            assert_null(r.digest);
        barge_image_ref_release(&r);
    }
    struct barge_image_ref r;
    assert_int_equal(barge_image_ref_parse("busybox", &r, NULL), 0);
    char *s = barge_image_ref_format(&r);
    assert_string_equal(s, "docker.io/library/busybox:latest");
    free(s);
    barge_image_ref_release(&r);

    static const char *bad[] = {
        "",
        "Busybox",
        "busybox:",
        "busybox:-x",
        "busybox@sha256:abc",
        "busybox@md5:" D64,
        "a//b",
        "a/../b",
        "/busybox",
        "busybox/",
        "-app",
        "app-",
        "a b",
        "host:port/app",
        "app:"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "app:tag:more",
        "example.com:/app",
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(bad); i++) {
        struct barge_error *err = NULL;
        if (barge_image_ref_parse(bad[i], &r, &err) == 0)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(err->code, BARGE_ERR_INVALID);
        assert_non_null(strstr(err->message, "invalid reference format"));
        barge_error_free(err);
    }
    struct barge_error *err = NULL;
    assert_int_equal(barge_image_ref_parse("Foo/Bar", &r, &err), -1);
    assert_non_null(strstr(err->message, "lowercase"));
    barge_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_none),
        cmocka_unit_test(test_basic_gzip),
        cmocka_unit_test(test_basic_zstd),
        cmocka_unit_test(test_empty_layer),
        cmocka_unit_test(test_diff_id_and_size_cap),
        cmocka_unit_test(test_short_disk_refused),
        cmocka_unit_test(test_garbage_layer),
        cmocka_unit_test(test_dotdot_refused),
        cmocka_unit_test(test_symlink_parent_refused),
        cmocka_unit_test(test_dir_replaced_by_symlink),
        cmocka_unit_test(test_final_symlink_not_followed),
        cmocka_unit_test(test_hardlink_outside_refused),
        cmocka_unit_test(test_whiteouts),
        cmocka_unit_test(test_mount_rootfs),
        cmocka_unit_test(test_ref_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
