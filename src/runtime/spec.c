/* From a container description to an OCI bundle: validating the spec,
 * capabilities over Docker's default set, users resolved through the image's
 * own /etc/passwd and /etc/group, the config.json itself, and the hosts,
 * hostname and resolv.conf files bind-mounted into the container. Apart from
 * reading the rootfs's user database (and the host's resolv.conf and hostname
 * for the /etc files) nothing here touches the system, so the unit tests
 * check the generated JSON directly.
 *
 * The defaults follow what Docker gives a container, since that is what ECS
 * users' images were built and tested against. */
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "runtime/internal.h"

#define MIB                 (UINT64_C(1) << 20)
#define MIN_MEMORY_LIMIT    (6 * MIB) /* Docker's and ECS's minimum */
#define DEFAULT_SHM_SIZE    (64 * MIB)
#define DEFAULT_PATH_ENV    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_CGROUP_ROOT "/barge"

/* Indexed by the kernel's CAP_* number. */
static const char *const cap_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

#define CAP(n) (UINT64_C(1) << (n))
/* Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW,
 * SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL,
 * AUDIT_WRITE. */
static const uint64_t default_caps = CAP(0) | CAP(1) | CAP(4) | CAP(3) | CAP(27) | CAP(13) |
                                     CAP(6) | CAP(7) | CAP(31) | CAP(8) | CAP(10) | CAP(18) |
                                     CAP(5) | CAP(29);

static const struct {
    const char *name;
    const char *type;
} rlimit_names[] = {
    {"core", "RLIMIT_CORE"},         {"cpu", "RLIMIT_CPU"},
    {"data", "RLIMIT_DATA"},         {"fsize", "RLIMIT_FSIZE"},
    {"locks", "RLIMIT_LOCKS"},       {"memlock", "RLIMIT_MEMLOCK"},
    {"msgqueue", "RLIMIT_MSGQUEUE"}, {"nice", "RLIMIT_NICE"},
    {"nofile", "RLIMIT_NOFILE"},     {"nproc", "RLIMIT_NPROC"},
    {"rss", "RLIMIT_RSS"},           {"rtprio", "RLIMIT_RTPRIO"},
    {"rttime", "RLIMIT_RTTIME"},     {"sigpending", "RLIMIT_SIGPENDING"},
    {"stack", "RLIMIT_STACK"},
};

const char *barge_runtime_cap_name(int cap)
{
    if (cap < 0 || (size_t)cap >= BARGE_ARRAY_SIZE(cap_names))
        return NULL;
    return cap_names[cap];
}

static int cap_parse(const char *name)
{
    const char *n = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(cap_names); i++)
        if (strcasecmp(n, cap_names[i] + 4) == 0)
            return (int)i;
    return -1;
}

static bool list_has_all(const char *const *list)
{
    for (; list && *list; list++)
        if (strcasecmp(*list, "ALL") == 0)
            return true;
    return false;
}

uint64_t barge_runtime_host_caps(void)
{
    uint64_t known = CAP(BARGE_ARRAY_SIZE(cap_names)) - 1;
    _cleanup_free_ char *s = barge_read_file("/proc/self/status", NULL);
    const char *p = s ? strstr(s, "\nCapBnd:") : NULL;
    if (!p)
        return known;
    return strtoull(p + 8, NULL, 16) & known;
}

int barge_runtime_caps_compute(const char *const *add, const char *const *drop, uint64_t host_caps,
                               uint64_t *out, struct barge_error **err)
{
    uint64_t set;
    if (list_has_all(add))
        set = host_caps;
    else if (list_has_all(drop))
        set = 0;
    else
        set = default_caps & host_caps;
    for (const char *const *d = drop; d && *d; d++) {
        if (strcasecmp(*d, "ALL") == 0)
            continue;
        int c = cap_parse(*d);
        if (c < 0)
            return barge_error_set(err, BARGE_ERR_INVALID, "unknown capability '%s' to drop", *d);
        set &= ~CAP(c);
    }
    /* Adds come last so that "drop ALL, add NET_BIND_SERVICE" works, as in Docker. */
    for (const char *const *a = add; a && *a; a++) {
        if (strcasecmp(*a, "ALL") == 0)
            continue;
        int c = cap_parse(*a);
        if (c < 0)
            return barge_error_set(err, BARGE_ERR_INVALID, "unknown capability '%s' to add", *a);
        if (!(host_caps & CAP(c)))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "capability '%s' is not available on this host", *a);
        set |= CAP(c);
    }
    *out = set;
    return 0;
}

bool barge_rt_id_valid(const char *id)
{
    if (!id || !isalnum((unsigned char)id[0]))
        return false;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    return n <= 64;
}

static bool path_clean_abs(const char *p)
{
    if (!p || p[0] != '/')
        return false;
    for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
            return false;
    return true;
}

static bool hostname_valid(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
    return true;
}

static const char *rlimit_type(const char *name)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(rlimit_names); i++)
        if (strcasecmp(name, rlimit_names[i].name) == 0 ||
            strcasecmp(name, rlimit_names[i].type) == 0)
            return rlimit_names[i].type;
    return NULL;
}

int barge_runtime_spec_validate(const struct barge_runtime_spec *spec, struct barge_error **err)
{
    if (!barge_rt_id_valid(spec->id))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "invalid container id '%s': 1-64 of [A-Za-z0-9_.-] expected",
                               spec->id ? spec->id : "");
    if (spec->dir && !path_clean_abs(spec->dir))
        return barge_error_set(err, BARGE_ERR_INVALID, "container dir '%s' is not absolute",
                               spec->dir);
    bool has_layers = spec->layers && spec->layers[0];
    if (!!spec->rootfs == has_layers)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "container '%s' needs either a rootfs or layers", spec->id);
    if (spec->rootfs && !path_clean_abs(spec->rootfs))
        return barge_error_set(err, BARGE_ERR_INVALID, "rootfs '%s' is not an absolute path",
                               spec->rootfs);
    for (const char *const *l = spec->layers; l && *l; l++)
        if (!path_clean_abs(*l) || strpbrk(*l, ":,"))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "layer '%s' must be an absolute path without ':' or ','", *l);
    if (!spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return barge_error_set(err, BARGE_ERR_INVALID, "container '%s' has no command", spec->id);
    for (const char *const *e = spec->env; e && *e; e++)
        if (!strchr(*e, '=') || (*e)[0] == '=')
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "environment entry '%s' is not NAME=value", *e);
    if (spec->cwd && spec->cwd[0] != '/')
        return barge_error_set(err, BARGE_ERR_INVALID, "working directory '%s' is not absolute",
                               spec->cwd);
    if (spec->hostname && !hostname_valid(spec->hostname))
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid hostname '%s'", spec->hostname);
    if (spec->cpu_shares > 262144)
        return barge_error_set(err, BARGE_ERR_INVALID, "cpu shares '%" PRIu64 "' above 262144",
                               spec->cpu_shares);
    if (spec->memory_limit && spec->memory_limit < MIN_MEMORY_LIMIT)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "memory limit '%" PRIu64 "' is below the minimum of 6 MiB",
                               spec->memory_limit);
    if (spec->memory_limit && spec->memory_reservation > spec->memory_limit)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "memory reservation '%" PRIu64 "' exceeds the limit '%" PRIu64 "'",
                               spec->memory_reservation, spec->memory_limit);
    for (size_t i = 0; i < spec->n_ulimits; i++) {
        const struct barge_runtime_ulimit *u = &spec->ulimits[i];
        if (!u->name || !rlimit_type(u->name))
            return barge_error_set(err, BARGE_ERR_INVALID, "unknown ulimit '%s'",
                                   u->name ? u->name : "");
        if (u->soft > u->hard)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "ulimit '%s' soft limit exceeds the hard limit", u->name);
    }
    uint64_t caps;
    if (barge_runtime_caps_compute(spec->cap_add, spec->cap_drop, ~UINT64_C(0), &caps, err) < 0)
        return -1;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct barge_runtime_mount *m = &spec->mounts[i];
        if (!path_clean_abs(m->destination) || strcmp(m->destination, "/") == 0)
            return barge_error_set(err, BARGE_ERR_INVALID, "invalid mount destination '%s'",
                                   m->destination ? m->destination : "");
        if (m->type == BARGE_RUNTIME_MOUNT_BIND && !path_clean_abs(m->source))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "bind mount source '%s' is not an absolute path",
                                   m->source ? m->source : "");
        if (m->type != BARGE_RUNTIME_MOUNT_BIND && m->type != BARGE_RUNTIME_MOUNT_TMPFS)
            return barge_error_set(err, BARGE_ERR_INVALID, "unknown mount type for '%s'",
                                   m->destination);
    }
    if (spec->netns_path && spec->host_network)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "container '%s' cannot both join '%s' and use the host network",
                               spec->id, spec->netns_path);
    if (spec->netns_path && !path_clean_abs(spec->netns_path))
        return barge_error_set(err, BARGE_ERR_INVALID, "network namespace '%s' is not absolute",
                               spec->netns_path);
    if (spec->stop_signal < 0 || spec->stop_signal >= NSIG)
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid stop signal '%d'",
                               spec->stop_signal);
    if (spec->log_path && !path_clean_abs(spec->log_path))
        return barge_error_set(err, BARGE_ERR_INVALID, "log path '%s' is not absolute",
                               spec->log_path);
    if (spec->cgroup_parent &&
        (!path_clean_abs(spec->cgroup_parent) || strcmp(spec->cgroup_parent, "/") == 0))
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid cgroup parent '%s'",
                               spec->cgroup_parent);
    return 0;
}

/* ---- users ---- */

/* Reads <rootfs>/<rel> with every symlink resolved inside rootfs, so an image
 * whose /etc/passwd points at the host's files reads its own tree instead.
 * Returns NULL with errno ENOENT when the file does not exist. */
static char *read_in_root(const char *rootfs, const char *rel, struct barge_error **err)
{
    _cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot open rootfs '%s'", rootfs);
        return NULL;
    }
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    _cleanup_close_ int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
    if (fd < 0) {
        if (errno == ENOENT)
            return NULL;
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s' in rootfs '%s'", rel, rootfs);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > 16 * MIB) {
        barge_error_set(err, BARGE_ERR_INVALID, "'%s' in rootfs '%s' is not a regular file", rel,
                        rootfs);
        errno = EINVAL;
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = barge_xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap)
            buf = barge_xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    return buf;
}

/* Hands an error made on the side to the caller's slot (keeping an error
 * already there, as barge_error_set does). Returns -1. */
static int propagate(struct barge_error **err, struct barge_error *e)
{
    if (err && !*err)
        *err = e;
    else
        barge_error_free(e);
    return -1;
}

static bool parse_id(const char *s, uint32_t *out)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v >= UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Splits one line of a colon-separated database in place into at most n
 * fields; returns how many there were. */
static size_t split_fields(char *line, char **f, size_t n)
{
    size_t i = 0;
    f[i++] = line;
    for (char *p = line; *p && i < n; p++)
        if (*p == ':') {
            *p = '\0';
            f[i++] = p + 1;
        }
    return i;
}

struct pw_entry {
    char *name;
    uint32_t uid, gid;
    char *home;
};

/* Finds a passwd entry by name (when name) or uid; the strings point into db. */
static bool passwd_find(char *db, const char *name, uint32_t uid, struct pw_entry *out)
{
    for (char *save = NULL, *line = strtok_r(db, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        if (line[0] == '#' || split_fields(line, f, 7) < 4)
            continue;
        uint32_t u, g;
        if (!parse_id(f[2], &u) || !parse_id(f[3], &g))
            continue;
        if (name ? strcmp(f[0], name) == 0 : u == uid) {
            out->name = f[0];
            out->uid = u;
            out->gid = g;
            out->home = f[5] && f[5][0] ? f[5] : NULL;
            return true;
        }
    }
    return false;
}

static bool member_of(char *members, const char *user)
{
    for (char *save = NULL, *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save))
        if (strcmp(m, user) == 0)
            return true;
    return false;
}

int barge_runtime_user_resolve(const char *rootfs, const char *user, struct barge_runtime_user *out,
                               struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *spec = barge_xstrdup(user && *user ? user : "0");
    char *group = strchr(spec, ':');
    if (group)
        *group++ = '\0';
    if (!spec[0] || (group && !group[0]))
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid user '%s'", user);

    struct barge_error *rerr = NULL;
    _cleanup_free_ char *passwd = read_in_root(rootfs, "etc/passwd", &rerr);
    if (!passwd && rerr)
        return propagate(err, rerr);
    struct pw_entry pw = {0};
    uint32_t uid;
    bool numeric = parse_id(spec, &uid);
    bool found = passwd && passwd_find(passwd, numeric ? NULL : spec, uid, &pw);
    if (!numeric && !found)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "unable to find user '%s': no matching entries in passwd file",
                               spec);
    out->uid = found ? pw.uid : uid;
    out->gid = found ? pw.gid : 0;
    out->home = barge_xstrdup(found && pw.home ? pw.home : "/");

    /* The group database matters for a named group, and for the user's
     * supplementary groups when no group was given (as runc and Docker do). */
    uint32_t gid;
    if (group && parse_id(group, &gid)) {
        out->gid = gid;
        return 0;
    }
    if (!group && !found)
        return 0;
    _cleanup_free_ char *groups = read_in_root(rootfs, "etc/group", &rerr);
    if (!groups && rerr) {
        barge_runtime_user_release(out);
        return propagate(err, rerr);
    }
    bool group_found = false;
    for (char *save = NULL, *line = groups ? strtok_r(groups, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        if (line[0] == '#' || split_fields(line, f, 4) < 3)
            continue;
        uint32_t g;
        if (!parse_id(f[2], &g))
            continue;
        if (group) {
            if (strcmp(f[0], group) == 0) {
                out->gid = g;
                group_found = true;
                break;
            }
        } else if (f[3] && member_of(f[3], pw.name) && g != out->gid) {
            out->additional_gids = barge_xrealloc(out->additional_gids,
                                                  (out->n_additional_gids + 1) * sizeof(uint32_t));
            out->additional_gids[out->n_additional_gids++] = g;
        }
    }
    if (group && !group_found) {
        barge_runtime_user_release(out);
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "unable to find group '%s': no matching entries in group file",
                               group);
    }
    return 0;
}

void barge_runtime_user_release(struct barge_runtime_user *user)
{
    free(user->additional_gids);
    free(user->home);
    memset(user, 0, sizeof(*user));
}

/* ---- config.json ---- */

static json_t *jfmt(const char *fmt, ...) BARGE_PRINTF(1, 2);
static json_t *jfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return json_string(s);
}

static json_t *str_array(const char *const *list)
{
    json_t *a = json_array();
    for (; list && *list; list++)
        json_array_append_new(a, json_string(*list));
    return a;
}

static void add_mount(json_t *mounts, const char *dest, const char *type, const char *source,
                      const char *const *options)
{
    json_t *m = json_object();
    json_object_set_new(m, "destination", json_string(dest));
    json_object_set_new(m, "type", json_string(type));
    json_object_set_new(m, "source", json_string(source));
    json_object_set_new(m, "options", str_array(options));
    json_array_append_new(mounts, m);
}

static size_t path_depth(const char *p)
{
    size_t n = 0;
    for (; *p; p++)
        n += *p == '/' && p[1] && p[1] != '/';
    return n;
}

static bool user_mount_at(const struct barge_runtime_spec *spec, const char *dest)
{
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (strcmp(spec->mounts[i].destination, dest) == 0)
            return true;
    return false;
}

static bool env_has(const char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (; env && *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return true;
    return false;
}

char *barge_rt_hostname(const struct barge_runtime_spec *spec)
{
    if (spec->hostname)
        return barge_xstrdup(spec->hostname);
    if (spec->host_network) {
        char h[256] = "";
        if (gethostname(h, sizeof(h) - 1) == 0 && h[0])
            return barge_xstrdup(h);
    }
    return barge_xstrndup(spec->id, 12);
}

static json_t *build_mounts(const struct barge_runtime_spec *spec, const char *dir)
{
    json_t *mounts = json_array();
    add_mount(mounts, "/proc", "proc", "proc", (const char *[]){"nosuid", "noexec", "nodev", NULL});
    add_mount(mounts, "/dev", "tmpfs", "tmpfs",
              (const char *[]){"nosuid", "strictatime", "mode=755", "size=65536k", NULL});
    add_mount(mounts, "/dev/pts", "devpts", "devpts",
              (const char *[]){"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                               "gid=5", NULL});
    if (spec->host_network)
        /* sysfs can only be mounted fresh by the owner of the network
         * namespace; sharing the host's, bind the host's /sys instead. */
        add_mount(mounts, "/sys", "bind", "/sys",
                  (const char *[]){"rbind", "nosuid", "noexec", "nodev", "ro", NULL});
    else
        add_mount(mounts, "/sys", "sysfs", "sysfs",
                  (const char *[]){"nosuid", "noexec", "nodev", "ro", NULL});
    add_mount(mounts, "/sys/fs/cgroup", "cgroup", "cgroup",
              (const char *[]){"nosuid", "noexec", "nodev", "relatime", "ro", NULL});
    add_mount(mounts, "/dev/mqueue", "mqueue", "mqueue",
              (const char *[]){"nosuid", "noexec", "nodev", NULL});
    if (!user_mount_at(spec, "/dev/shm")) {
        _cleanup_free_ char *size = barge_xasprintf(
            "size=%" PRIu64 "k", (spec->shm_size ? spec->shm_size : DEFAULT_SHM_SIZE) / 1024);
        add_mount(mounts, "/dev/shm", "tmpfs", "shm",
                  (const char *[]){"nosuid", "noexec", "nodev", "mode=1777", size, NULL});
    }
    static const char *const etc[] = {"hosts", "hostname", "resolv.conf"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(etc); i++) {
        _cleanup_free_ char *dest = barge_xasprintf("/etc/%s", etc[i]);
        if (user_mount_at(spec, dest))
            continue;
        _cleanup_free_ char *src = barge_xasprintf("%s/%s", dir, etc[i]);
        add_mount(mounts, dest, "bind", src,
                  (const char *[]){"rbind", "rprivate", spec->readonly_rootfs ? "ro" : "rw", NULL});
    }

    /* Parents before children, whatever order the caller listed them in. */
    size_t n = spec->n_mounts;
    _cleanup_free_ size_t *order = barge_xcalloc(n, sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && path_depth(spec->mounts[order[j - 1]].destination) >
                                        path_depth(spec->mounts[order[j]].destination);
             j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (size_t k = 0; k < n; k++) {
        const struct barge_runtime_mount *m = &spec->mounts[order[k]];
        json_t *opts = json_array();
        if (m->type == BARGE_RUNTIME_MOUNT_BIND) {
            json_array_append_new(opts, json_string("rbind"));
            json_array_append_new(opts, json_string("rprivate"));
        } else {
            json_array_append_new(opts, json_string("nosuid"));
            json_array_append_new(opts, json_string("nodev"));
            if (m->size)
                json_array_append_new(opts, jfmt("size=%" PRIu64 "k", (m->size + 1023) / 1024));
            /* World-writable like Docker's --tmpfs, unless the caller says
             * otherwise; the runtime would copy the mode of the directory
             * it mounts over instead. */
            bool has_mode = false;
            for (const char *const *o = m->options; o && *o; o++)
                has_mode = has_mode || barge_str_has_prefix(*o, "mode=");
            if (!has_mode)
                json_array_append_new(opts, json_string("mode=1777"));
        }
        json_array_append_new(opts, json_string(m->readonly ? "ro" : "rw"));
        for (const char *const *o = m->options; o && *o; o++)
            json_array_append_new(opts, json_string(*o));
        json_t *jm = json_object();
        json_object_set_new(jm, "destination", json_string(m->destination));
        json_object_set_new(jm, "type",
                            json_string(m->type == BARGE_RUNTIME_MOUNT_BIND ? "bind" : "tmpfs"));
        json_object_set_new(jm, "source",
                            json_string(m->type == BARGE_RUNTIME_MOUNT_BIND ? m->source : "tmpfs"));
        json_object_set_new(jm, "options", opts);
        json_array_append_new(mounts, jm);
    }
    return mounts;
}

static json_t *build_process(const struct barge_runtime_spec *spec,
                             const struct barge_runtime_user *user, uint64_t caps,
                             const char *hostname)
{
    json_t *p = json_object();
    json_object_set_new(p, "terminal", json_false());

    json_t *u = json_object();
    json_object_set_new(u, "uid", json_integer(user->uid));
    json_object_set_new(u, "gid", json_integer(user->gid));
    if (user->n_additional_gids) {
        json_t *g = json_array();
        for (size_t i = 0; i < user->n_additional_gids; i++)
            json_array_append_new(g, json_integer(user->additional_gids[i]));
        json_object_set_new(u, "additionalGids", g);
    }
    json_object_set_new(p, "user", u);
    json_object_set_new(p, "args", str_array(spec->argv));

    json_t *env = str_array(spec->env);
    if (!env_has(spec->env, "PATH"))
        json_array_append_new(env, json_string(DEFAULT_PATH_ENV));
    if (!env_has(spec->env, "HOSTNAME"))
        json_array_append_new(env, jfmt("HOSTNAME=%s", hostname));
    if (!env_has(spec->env, "HOME"))
        json_array_append_new(env, jfmt("HOME=%s", user->home));
    json_object_set_new(p, "env", env);
    json_object_set_new(p, "cwd", json_string(spec->cwd ? spec->cwd : "/"));

    /* A non-root user gets the bounding set only: root handing its effective
     * capabilities to uid 1000 would let it e.g. read any file, which neither
     * Docker nor a plain setuid() does. */
    json_t *list = json_array();
    for (int c = 0; c < (int)BARGE_ARRAY_SIZE(cap_names); c++)
        if (caps & CAP(c))
            json_array_append_new(list, json_string(cap_names[c]));
    json_t *capobj = json_object();
    json_object_set(capobj, "bounding", list);
    json_object_set_new(capobj, "effective", user->uid == 0 ? json_copy(list) : json_array());
    json_object_set_new(capobj, "permitted", user->uid == 0 ? json_copy(list) : json_array());
    json_decref(list);
    json_object_set_new(p, "capabilities", capobj);

    if (spec->n_ulimits) {
        json_t *rl = json_array();
        for (size_t i = 0; i < spec->n_ulimits; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "type", json_string(rlimit_type(spec->ulimits[i].name)));
            json_object_set_new(r, "hard", json_integer((json_int_t)spec->ulimits[i].hard));
            json_object_set_new(r, "soft", json_integer((json_int_t)spec->ulimits[i].soft));
            json_array_append_new(rl, r);
        }
        json_object_set_new(p, "rlimits", rl);
    }
    json_object_set_new(p, "noNewPrivileges", json_true());
    return p;
}

static json_t *build_linux(const struct barge_runtime_spec *spec, const char *cgroup_parent)
{
    json_t *l = json_object();
    const char *parent = spec->cgroup_parent
                             ? spec->cgroup_parent
                             : (cgroup_parent ? cgroup_parent : DEFAULT_CGROUP_ROOT);
    json_object_set_new(l, "cgroupsPath", jfmt("%s/%s", parent, spec->id));

    json_t *res = json_object();
    /* Deny every device node; the runtime then allows the standard ones it
     * creates itself (null, zero, full, random, urandom, tty, pts), which
     * the runtime spec makes mandatory, so we need not list them. */
    json_t *dev = json_object();
    json_object_set_new(dev, "allow", json_false());
    json_object_set_new(dev, "access", json_string("rwm"));
    json_t *devs = json_array();
    json_array_append_new(devs, dev);
    json_object_set_new(res, "devices", devs);
    if (spec->cpu_shares || spec->cpu_quota_us) {
        json_t *cpu = json_object();
        if (spec->cpu_shares)
            json_object_set_new(
                cpu, "shares",
                json_integer(spec->cpu_shares < 2 ? 2 : (json_int_t)spec->cpu_shares));
        /* A hard CPU limit (Fargate's task size): quota per 100 ms period. */
        if (spec->cpu_quota_us) {
            json_object_set_new(cpu, "quota", json_integer((json_int_t)spec->cpu_quota_us));
            json_object_set_new(cpu, "period", json_integer(100000));
        }
        json_object_set_new(res, "cpu", cpu);
    }
    if (spec->memory_limit || spec->memory_reservation) {
        json_t *mem = json_object();
        if (spec->memory_limit)
            json_object_set_new(mem, "limit", json_integer((json_int_t)spec->memory_limit));
        if (spec->memory_reservation)
            json_object_set_new(mem, "reservation",
                                json_integer((json_int_t)spec->memory_reservation));
        json_object_set_new(res, "memory", mem);
    }
    if (spec->pids_limit) {
        json_t *pids = json_object();
        json_object_set_new(pids, "limit", json_integer((json_int_t)spec->pids_limit));
        json_object_set_new(res, "pids", pids);
    }
    json_object_set_new(l, "resources", res);

    json_t *ns = json_array();
    static const char *const types[] = {"pid", "ipc", "uts", "mount"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(types); i++) {
        json_t *n = json_object();
        json_object_set_new(n, "type", json_string(types[i]));
        json_array_append_new(ns, n);
    }
    if (!spec->host_network) {
        json_t *n = json_object();
        json_object_set_new(n, "type", json_string("network"));
        barge_json_set_str(n, "path", spec->netns_path);
        json_array_append_new(ns, n);
    }
    json_object_set_new(l, "namespaces", ns);

    /* Docker's lists: kernel interfaces a container has no business reading
     * (masked) or writing (read-only). */
    json_object_set_new(
        l, "maskedPaths",
        str_array((const char *[]){"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                                   "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                   "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                                   "/sys/devices/virtual/powercap", NULL}));
    json_object_set_new(l, "readonlyPaths",
                        str_array((const char *[]){"/proc/bus", "/proc/fs", "/proc/irq",
                                                   "/proc/sys", "/proc/sysrq-trigger", NULL}));
    /* No linux.seccomp: a syscall filter is not applied yet. Docker's default
     * profile would belong here; until then capabilities, no_new_privs, the
     * namespaces and the masked paths are the confinement. */
    return l;
}

json_t *barge_runtime_config_new(const struct barge_runtime_spec *spec, const char *rootfs,
                                 const char *dir, const char *cgroup_parent, uint64_t host_caps,
                                 struct barge_error **err)
{
    if (barge_runtime_spec_validate(spec, err) < 0)
        return NULL;
    uint64_t caps;
    if (barge_runtime_caps_compute(spec->cap_add, spec->cap_drop, host_caps, &caps, err) < 0)
        return NULL;
    struct barge_runtime_user user;
    if (barge_runtime_user_resolve(rootfs, spec->user, &user, err) < 0) {
        barge_error_wrap(err, "container '%s'", spec->id);
        return NULL;
    }
    _cleanup_free_ char *hostname = barge_rt_hostname(spec);

    json_t *c = json_object();
    json_object_set_new(c, "ociVersion", json_string("1.0.2"));
    json_object_set_new(c, "process", build_process(spec, &user, caps, hostname));
    json_t *root = json_object();
    json_object_set_new(root, "path", json_string(rootfs));
    json_object_set_new(root, "readonly", json_boolean(spec->readonly_rootfs));
    json_object_set_new(c, "root", root);
    json_object_set_new(c, "hostname", json_string(hostname));
    json_object_set_new(c, "mounts", build_mounts(spec, dir));
    json_object_set_new(c, "linux", build_linux(spec, cgroup_parent));
    barge_runtime_user_release(&user);
    return c;
}

/* ---- /etc files ---- */

int barge_rt_write_file(const char *path, const void *data, size_t len, int mode)
{
    _cleanup_free_ char *tmp = barge_xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fchmod(fd, (mode_t)mode) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

static void sb_add(char **s, const char *fmt, ...) BARGE_PRINTF(2, 3);
static void sb_add(char **s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *more = barge_xvasprintf(fmt, ap);
    va_end(ap);
    char *n = barge_xasprintf("%s%s", *s ? *s : "", more);
    free(*s);
    *s = n;
}

static char *resolv_conf(const struct barge_runtime_spec *spec)
{
    char *out = NULL;
    if (spec->dns_servers || spec->dns_search || spec->dns_options) {
        for (const char *const *d = spec->dns_servers; d && *d; d++)
            sb_add(&out, "nameserver %s\n", *d);
        if (spec->dns_search && spec->dns_search[0]) {
            sb_add(&out, "search");
            for (const char *const *d = spec->dns_search; *d; d++)
                sb_add(&out, " %s", *d);
            sb_add(&out, "\n");
        }
        if (spec->dns_options && spec->dns_options[0]) {
            sb_add(&out, "options");
            for (const char *const *d = spec->dns_options; *d; d++)
                sb_add(&out, " %s", *d);
            sb_add(&out, "\n");
        }
        return out ? out : barge_xstrdup("");
    }
    _cleanup_free_ char *host = barge_read_file("/etc/resolv.conf", NULL);
    if (!host)
        return barge_xstrdup("");
    if (spec->host_network)
        return barge_steal(&host);
    /* A resolver on the host's loopback (systemd-resolved, dnsmasq) cannot be
     * reached from the container's own network namespace. */
    for (char *save = NULL, *l = strtok_r(host, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *v = l + strspn(l, " \t");
        if (strncmp(v, "nameserver", 10) == 0) {
            const char *a = v + 10 + strspn(v + 10, " \t");
            if (strncmp(a, "127.", 4) == 0 || strncmp(a, "::1", 3) == 0)
                continue;
        }
        sb_add(&out, "%s\n", l);
    }
    return out ? out : barge_xstrdup("");
}

static char *hosts_file(const struct barge_runtime_spec *spec)
{
    char *out = NULL;
    if (spec->host_network) {
        out = barge_read_file("/etc/hosts", NULL);
        if (out && out[0] && out[strlen(out) - 1] != '\n')
            sb_add(&out, "\n");
    }
    if (!out)
        out = barge_xstrdup("127.0.0.1\tlocalhost\n"
                            "::1\tlocalhost ip6-localhost ip6-loopback\n"
                            "fe00::0\tip6-localnet\n"
                            "ff00::0\tip6-mcastprefix\n"
                            "ff02::1\tip6-allnodes\n"
                            "ff02::2\tip6-allrouters\n");
    for (const char *const *e = spec->hosts_entries; e && *e; e++)
        sb_add(&out, "%s\n", *e);
    return out;
}

int barge_rt_etc_files_write(const struct barge_runtime_spec *spec, const char *dir,
                             struct barge_error **err)
{
    _cleanup_free_ char *hostname = barge_rt_hostname(spec);
    _cleanup_free_ char *hn = barge_xasprintf("%s\n", hostname);
    _cleanup_free_ char *hosts = hosts_file(spec);
    _cleanup_free_ char *resolv = resolv_conf(spec);
    const struct {
        const char *name;
        const char *data;
    } files[] = {{"hostname", hn}, {"hosts", hosts}, {"resolv.conf", resolv}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p = barge_xasprintf("%s/%s", dir, files[i].name);
        if (barge_rt_write_file(p, files[i].data, strlen(files[i].data), 0644) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", p);
    }
    return 0;
}
