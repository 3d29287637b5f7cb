/* Cgroups as the runtime sees them: where each hierarchy is mounted (found in
 * /proc/self/mountinfo rather than assumed, since v1 controllers may be
 * co-mounted as "cpu,cpuacct" or named differently), and the counters and
 * clean-up of one container's cgroup on cgroup v1, v2 and the hybrid layout
 * (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified). In hybrid
 * mode the resource controllers live on v1, so that is where we read; the
 * cgroup2 mount only matters for removing the directories the runtime made
 * there. */
#include <sys/statfs.h>

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "runtime/internal.h"

#ifndef CGROUP2_SUPER_MAGIC
#    define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* mountinfo escapes blanks and backslashes as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static bool has_option(const char *opts, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = opts; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

int barge_rt_cgroups_discover(struct barge_rt_cgroups *cg, struct barge_error **err)
{
    memset(cg, 0, sizeof(*cg));
    struct statfs sfs;
    cg->unified = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;

    _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '/proc/self/mountinfo'");
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        /* id parent dev root mountpoint options [optional...] - type source superopts */
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        *sep = '\0';
        char *fields[5] = {0};
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " ", &save))
            fields[i] = tok;
        if (!fields[4])
            continue;
        char *rest = sep + 3, *save2 = NULL;
        char *type = strtok_r(rest, " ", &save2);
        char *source = strtok_r(NULL, " ", &save2);
        char *super = strtok_r(NULL, " ", &save2);
        (void)source;
        if (!type || strcmp(fields[3], "/") != 0)
            continue; /* a bind mount of a sub-cgroup tells us nothing new */
        unescape_octal(fields[4]);
        const char *mnt = fields[4];
        if (strcmp(type, "cgroup2") == 0) {
            if (!cg->v2_mount)
                cg->v2_mount = barge_xstrdup(mnt);
        } else if (strcmp(type, "cgroup") == 0) {
            bool known = false;
            for (size_t i = 0; i < cg->n_v1_mounts; i++)
                known = known || strcmp(cg->v1_mounts[i], mnt) == 0;
            if (known)
                continue;
            cg->v1_mounts = barge_xrealloc(cg->v1_mounts, (cg->n_v1_mounts + 1) * sizeof(char *));
            cg->v1_mounts[cg->n_v1_mounts++] = barge_xstrdup(mnt);
            if (has_option(super, "memory") && !cg->memory)
                cg->memory = barge_xstrdup(mnt);
            if (has_option(super, "cpuacct") && !cg->cpuacct)
                cg->cpuacct = barge_xstrdup(mnt);
            if (has_option(super, "pids") && !cg->pids)
                cg->pids = barge_xstrdup(mnt);
        }
    }
    if (!cg->unified && !cg->v2_mount && cg->n_v1_mounts == 0)
        return barge_error_set(err, BARGE_ERR_IO, "no cgroup filesystem is mounted");
    return 0;
}

void barge_rt_cgroups_release(struct barge_rt_cgroups *cg)
{
    free(cg->v2_mount);
    free(cg->memory);
    free(cg->cpuacct);
    free(cg->pids);
    for (size_t i = 0; i < cg->n_v1_mounts; i++)
        free(cg->v1_mounts[i]);
    free(cg->v1_mounts);
    memset(cg, 0, sizeof(*cg));
}

char *barge_rt_cgroups_describe(const struct barge_rt_cgroups *cg)
{
    if (cg->unified)
        return barge_xasprintf("cgroup v2 (unified at '%s')", cg->v2_mount ? cg->v2_mount : "?");
    if (!cg->v2_mount)
        return barge_xstrdup("cgroup v1");
    _cleanup_free_ char *p = barge_xasprintf("%s/cgroup.controllers", cg->v2_mount);
    _cleanup_free_ char *ctl = barge_read_file(p, NULL);
    if (ctl)
        ctl[strcspn(ctl, "\n")] = '\0';
    return barge_xasprintf("hybrid (v1 controllers; cgroup2 at '%s' with controllers '%s')",
                           cg->v2_mount, ctl ? ctl : "?");
}

/* Reads "key value" lines and returns the value of key, or false. */
static bool read_keyed(const char *file, const char *key, uint64_t *out)
{
    _cleanup_free_ char *s = barge_read_file(file, NULL);
    if (!s)
        return false;
    size_t kl = strlen(key);
    for (char *l = s; l && *l;) {
        char *nl = strchr(l, '\n');
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
            *out = strtoull(l + kl + 1, NULL, 10);
            return true;
        }
        l = nl ? nl + 1 : NULL;
    }
    return false;
}

/* Reads a file holding one number ("max" reads as 0, i.e. unlimited). */
static bool read_u64(const char *file, uint64_t *out)
{
    _cleanup_free_ char *s = barge_read_file(file, NULL);
    if (!s)
        return false;
    if (strncmp(s, "max", 3) == 0) {
        *out = 0;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    *out = v;
    return true;
}

static char *join(const char *mount, const char *path, const char *file)
{
    return barge_xasprintf("%s%s%s%s", mount, path[0] == '/' ? "" : "/", path, file);
}

bool barge_rt_cgroup_oom_killed(const struct barge_rt_cgroups *cg, const char *path)
{
    uint64_t n = 0;
    if (cg->unified && cg->v2_mount) {
        _cleanup_free_ char *f = join(cg->v2_mount, path, "/memory.events");
        return read_keyed(f, "oom_kill", &n) && n > 0;
    }
    if (!cg->memory)
        return false;
    /* memory.oom_control's oom_kill counter (linux >= 4.13) counts actual
     * kills, unlike failcnt which also counts reclaimed limit hits. */
    _cleanup_free_ char *f = join(cg->memory, path, "/memory.oom_control");
    return read_keyed(f, "oom_kill", &n) && n > 0;
}

int barge_rt_cgroup_stats(const struct barge_rt_cgroups *cg, const char *path,
                          struct barge_runtime_stats *out, struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    if (cg->unified) {
        if (!cg->v2_mount)
            return barge_error_set(err, BARGE_ERR_IO, "cgroup2 mount not found");
        _cleanup_free_ char *dir = join(cg->v2_mount, path, "");
        if (access(dir, F_OK) < 0)
            return barge_error_set_errno(err, BARGE_ERR_NOT_FOUND, "cgroup '%s'", dir);
        uint64_t usec = 0;
        _cleanup_free_ char *cpu = join(cg->v2_mount, path, "/cpu.stat");
        if (read_keyed(cpu, "usage_usec", &usec))
            out->cpu_ns = usec * 1000;
        _cleanup_free_ char *cur = join(cg->v2_mount, path, "/memory.current");
        _cleanup_free_ char *peak = join(cg->v2_mount, path, "/memory.peak");
        _cleanup_free_ char *max = join(cg->v2_mount, path, "/memory.max");
        _cleanup_free_ char *stat = join(cg->v2_mount, path, "/memory.stat");
        _cleanup_free_ char *pids = join(cg->v2_mount, path, "/pids.current");
        read_u64(cur, &out->memory_usage);
        read_u64(peak, &out->memory_max_usage);
        read_u64(max, &out->memory_limit);
        read_keyed(stat, "inactive_file", &out->memory_cache);
        read_u64(pids, &out->pids);
        return 0;
    }
    bool found = false;
    if (cg->cpuacct) {
        _cleanup_free_ char *f = join(cg->cpuacct, path, "/cpuacct.usage");
        found |= read_u64(f, &out->cpu_ns);
    }
    if (cg->memory) {
        _cleanup_free_ char *cur = join(cg->memory, path, "/memory.usage_in_bytes");
        _cleanup_free_ char *peak = join(cg->memory, path, "/memory.max_usage_in_bytes");
        _cleanup_free_ char *max = join(cg->memory, path, "/memory.limit_in_bytes");
        _cleanup_free_ char *stat = join(cg->memory, path, "/memory.stat");
        found |= read_u64(cur, &out->memory_usage);
        read_u64(peak, &out->memory_max_usage);
        read_u64(max, &out->memory_limit);
        /* v1 reports "no limit" as the largest page-aligned long. */
        if (out->memory_limit >= (UINT64_C(1) << 62))
            out->memory_limit = 0;
        read_keyed(stat, "total_inactive_file", &out->memory_cache);
    }
    if (cg->pids) {
        _cleanup_free_ char *f = join(cg->pids, path, "/pids.current");
        found |= read_u64(f, &out->pids);
    }
    if (!found)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "cgroup '%s' not found", path);
    return 0;
}

static int remove_one(const char *mount, const char *path, struct barge_error **err)
{
    _cleanup_free_ char *dir = join(mount, path, "");
    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    if (errno == EBUSY || errno == ENOTEMPTY)
        return barge_error_set_errno(err, BARGE_ERR_CONFLICT, "cannot remove cgroup '%s'", dir);
    return barge_error_set_errno(err, BARGE_ERR_IO, "cannot remove cgroup '%s'", dir);
}

int barge_rt_cgroup_remove(const struct barge_rt_cgroups *cg, const char *path,
                           struct barge_error **err)
{
    if (!path || path[0] != '/' || strcmp(path, "/") == 0 || strstr(path, ".."))
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid cgroup path '%s'",
                               path ? path : "");
    int rc = 0;
    for (size_t i = 0; i < cg->n_v1_mounts; i++)
        if (remove_one(cg->v1_mounts[i], path, err) < 0)
            rc = -1;
    if (cg->v2_mount && remove_one(cg->v2_mount, path, err) < 0)
        rc = -1;
    return rc;
}
