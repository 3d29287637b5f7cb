/* Fuzzes layer unpacking (src/image/unpack.c): the input is a layer blob
 * (tar, gzip or zstd; the committed seeds are real layers) unpacked into a
 * fresh directory "root" inside a private scratch directory. After each run
 * nothing but "root" and an empty "canary" directory may be in the scratch
 * directory, and nothing may have appeared in the canary: a layer must never
 * write outside its root, whatever its "..", absolute names, symlinks and
 * hard links say. Needs root (device nodes, ownership, trusted.* xattrs), as
 * the agent does. */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "image/image.h"

static char scratch[64];
static char root[96];
static char canary[96];

static void cleanup(void)
{
    if (scratch[0])
        barge_image_remove_tree(scratch);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof(scratch), "%s/barge-fuzz-unpack.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(root, sizeof(root), "%s/root", scratch);
    snprintf(canary, sizeof(canary), "%s/canary", scratch);
    if (mkdir(canary, 0755) < 0)
        abort();
    atexit(cleanup);
}

/* Aborts unless dir holds exactly the names in want (NULL-terminated). */
static void expect_only(const char *dir, const char *const *want)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
        abort();
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        bool ok = false;
        for (const char *const *w = want; *w; w++)
            ok |= strcmp(de->d_name, *w) == 0;
        if (!ok) {
            fprintf(stderr, "the layer wrote '%s/%s', outside its root\n", dir, de->d_name);
            abort();
        }
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!scratch[0])
        setup();
    if (mkdir(root, 0755) < 0) {
        perror("mkdir root");
        abort();
    }
    int fd = memfd_create("layer", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
        abort();

    /* A small cap, so that a bomb among the inputs meets the limit early. */
    struct barge_image_unpack_limits limits = {.max_bytes = 64u << 20};
    char diff_id[72];
    struct barge_error *err = NULL;
    if (barge_image_layer_unpack(fd, root, &limits, diff_id, &err) < 0) {
        if (!err || !err->message)
            abort();
        barge_error_free(err);
    }
    close(fd);

    static const char *const in_scratch[] = {"root", "canary", NULL};
    static const char *const in_canary[] = {NULL};
    expect_only(scratch, in_scratch);
    expect_only(canary, in_canary);
    if (barge_image_remove_tree(root) < 0) {
        perror("remove root");
        abort();
    }
    return 0;
}
