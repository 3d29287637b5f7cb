/* The container runtime driver: turns a container description into an OCI
 * bundle (config.json, /etc files, an overlayfs rootfs) and runs it under
 * conmon with crun or runc, whichever actually works on this host.
 *
 * Everything about a container lives in files, so that an agent killed with
 * SIGKILL loses nothing: conmon is a daemon that outlives us, writes the exit
 * code (and an "oom" marker) into the container directory, and a restarted
 * agent finds its containers again with barge_runtime_list(). The runtime
 * object itself only holds paths, so every function may be called from any
 * thread as long as two threads do not work on the same container at once.
 *
 * Layout under the state directory (options.state_dir):
 *   containers/<id>/      the container directory (or a symlink to spec.dir):
 *       config.json       the OCI bundle's config (the bundle is this directory);
 *                         it holds the environment, secrets included, so
 *                         it is 0600 in 0700 directories
 *       barge.json        what we need to manage it later (runtime, pids, times)
 *       rootfs/           overlayfs mount point when the rootfs is layered
 *       upper/ work/      overlayfs upper and work directories
 *       hosts hostname resolv.conf   bind-mounted over the container's /etc
 *       exit oom          written by conmon when the container ends
 *       ctr.log           stdout/stderr, one "time stream F|P line" per record
 *   exits/<id>            also written by conmon on exit: watch this directory
 *                         with inotify to learn of exits without polling
 *   <runtime name>/       the runtime's --root
 *
 * Callers must not set SIGCHLD to SIG_IGN (our children would be reaped
 * behind our back) nor be a child subreaper (conmon daemons would become
 * their zombies). */
#ifndef BARGE_RUNTIME_RUNTIME_H
#define BARGE_RUNTIME_RUNTIME_H

#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"

struct barge_runtime;

struct barge_runtime_options {
    /* Root of everything the runtime writes; created when missing.
     * Default "/run/barge/runtime". */
    const char *state_dir;
    /* NULL or "auto": try crun, then runc. "crun" or "runc" (found in PATH)
     * or an absolute path: use that one only. */
    const char *force;
    /* NULL: "conmon" from PATH. */
    const char *conmon_path;
    /* Static busybox used to build the probe container; NULL: /bin/busybox. */
    const char *probe_busybox;
    /* Do not probe: take the first runtime found (or the forced one). */
    bool skip_probe;
    /* cgroup parent for containers whose spec has none; NULL: "/barge". */
    const char *cgroup_parent;
};

/* Finds conmon and an OCI runtime that can run a container here: each
 * candidate (crun, then runc) runs a trivial container built from busybox;
 * the first that succeeds is used. Logs which runtime was picked and, for each
 * one refused, why (its stderr). On success *out is a new runtime the caller
 * releases with barge_runtime_free(). */
int barge_runtime_detect(const struct barge_runtime_options *opts, struct barge_runtime **out,
                         struct barge_error **err);
void barge_runtime_free(struct barge_runtime *rt);

/* "crun" or "runc"; borrowed from rt. */
const char *barge_runtime_name(const struct barge_runtime *rt);
/* Absolute paths; borrowed from rt. */
const char *barge_runtime_path(const struct barge_runtime *rt);
const char *barge_runtime_state_dir(const struct barge_runtime *rt);
/* The directory where conmon drops one file per exited container, named by
 * its id and holding its exit code; borrowed from rt. */
const char *barge_runtime_exit_dir(const struct barge_runtime *rt);

enum barge_runtime_mount_type {
    BARGE_RUNTIME_MOUNT_BIND,  /* source is a host path */
    BARGE_RUNTIME_MOUNT_TMPFS, /* source is ignored */
};

struct barge_runtime_mount {
    enum barge_runtime_mount_type type;
    const char *source;      /* BIND: absolute host path */
    const char *destination; /* absolute path in the container */
    bool readonly;
    uint64_t size;              /* TMPFS: bytes, 0 = kernel default (half of RAM) */
    const char *const *options; /* extra mount options (NULL-terminated), may be NULL */
};

struct barge_runtime_ulimit {
    const char *name; /* ECS names: "nofile", "nproc", "core", ... (or "RLIMIT_NOFILE") */
    uint64_t soft;
    uint64_t hard;
};

/* What to run. String arrays are NULL-terminated; every pointer is borrowed
 * for the duration of the call only. Zero means "not set" for numbers. */
struct barge_runtime_spec {
    const char *id; /* 1-64 of [A-Za-z0-9_.-], starting with a letter or digit */
    /* Container directory, made by create (it must not exist) and removed
     * with everything in it by delete; NULL: <state_dir>/containers/<id>. */
    const char *dir;

    /* The root filesystem: either an existing directory used as is... */
    const char *rootfs;
    /* ...or overlay lower directories, top-most first, mounted with upper and
     * work directories in the container directory. */
    const char *const *layers;

    const char *const *argv; /* argv[0] is required */
    const char *const *env;  /* "NAME=value"; PATH, HOME and HOSTNAME are added if absent */
    const char *cwd;         /* NULL: "/" */
    /* "uid", "uid:gid", "name", "name:group", ... resolved through the
     * rootfs's /etc/passwd and /etc/group; NULL: root. */
    const char *user;
    const char *hostname; /* NULL: the first 12 characters of id (host's with host_network) */

    uint64_t cpu_shares;         /* 2-262144 (1 is raised to 2) */
    uint64_t cpu_quota_us;       /* hard CPU limit: microseconds per 100 ms period; 0 = none */
    uint64_t memory_limit;       /* hard limit, bytes (at least 6 MiB) */
    uint64_t memory_reservation; /* soft limit, bytes */
    uint64_t pids_limit;
    const struct barge_runtime_ulimit *ulimits;
    size_t n_ulimits;
    bool readonly_rootfs;
    /* Capability names with or without CAP_, any case, or "ALL". Docker's
     * default set is the base; drops apply first, then adds. */
    const char *const *cap_add;
    const char *const *cap_drop;

    const struct barge_runtime_mount *mounts;
    size_t n_mounts;
    uint64_t shm_size; /* bytes of /dev/shm; 0: 64 MiB */

    /* Network: join the namespace at netns_path, or share the host's with
     * host_network, or (neither) get a new namespace with only lo. */
    const char *netns_path;
    bool host_network;
    /* /etc/hosts lines added after localhost ("10.0.0.2 web web.local"). */
    const char *const *hosts_entries;
    /* resolv.conf: when all are NULL the host's file is copied. */
    const char *const *dns_servers;
    const char *const *dns_search;
    const char *const *dns_options;

    int stop_signal;           /* 0: SIGTERM; used by barge_runtime_stop */
    const char *log_path;      /* NULL: <dir>/ctr.log; one elsewhere outlives delete */
    uint64_t log_size_max;     /* bytes before conmon truncates the log; 0 = unlimited */
    const char *cgroup_parent; /* e.g. "/barge/task-<id>"; NULL: the runtime's default */
};

/* Writes the bundle, starts conmon which runs `<runtime> create`, and returns
 * once the container's init process exists (stopped before the user program).
 * On failure everything created is removed again. */
int barge_runtime_create(struct barge_runtime *rt, const struct barge_runtime_spec *spec,
                         struct barge_error **err);
/* Starts the user program of a created container. */
int barge_runtime_start(struct barge_runtime *rt, const char *id, struct barge_error **err);
/* create + start; on a start failure the container is deleted again. */
int barge_runtime_run(struct barge_runtime *rt, const struct barge_runtime_spec *spec,
                      struct barge_error **err);

enum barge_runtime_status {
    BARGE_RUNTIME_CREATED, /* created, user program not started */
    BARGE_RUNTIME_RUNNING,
    BARGE_RUNTIME_EXITED,
};

struct barge_runtime_state {
    enum barge_runtime_status status;
    pid_t pid;        /* container init in our pid namespace; 0 when unknown */
    pid_t conmon_pid; /* 0 when unknown */
    int exit_code;    /* EXITED: the code, 128+N for signal N; -1 when unknown */
    bool oom_killed;  /* EXITED: the kernel OOM killer fired in the container's cgroup */
    /* Epoch seconds, 0 when not (yet) known. */
    double created_at;
    double started_at;
    double finished_at;
};

const char *barge_runtime_status_name(enum barge_runtime_status status);

/* The container's current state, read from files (no process is spawned in
 * the common cases). BARGE_ERR_NOT_FOUND when the id is unknown. */
int barge_runtime_state(struct barge_runtime *rt, const char *id, struct barge_runtime_state *out,
                        struct barge_error **err);
/* Waits until the container has exited or timeout_ms passed (-1: forever),
 * without polling, then fills *out with the state either way. */
int barge_runtime_wait(struct barge_runtime *rt, const char *id, int timeout_ms,
                       struct barge_runtime_state *out, struct barge_error **err);
/* Sends signal to the container's init. BARGE_ERR_CONFLICT when it is not
 * running. */
int barge_runtime_kill(struct barge_runtime *rt, const char *id, int signal,
                       struct barge_error **err);
/* Sends signal (0: the spec's stop signal), waits up to timeout_ms, then
 * sends SIGKILL and waits for the exit. Succeeds at once when the container
 * has exited already. *out (optional) receives the final state. */
int barge_runtime_stop(struct barge_runtime *rt, const char *id, int signal, int timeout_ms,
                       struct barge_runtime_state *out, struct barge_error **err);
/* Removes the container: the runtime's state, its cgroup, the overlay mount
 * and the container directory. A container that has not exited is refused
 * with BARGE_ERR_CONFLICT unless force, which kills it first. */
int barge_runtime_delete(struct barge_runtime *rt, const char *id, bool force,
                         struct barge_error **err);

struct barge_runtime_info {
    char *id;
    char *dir;      /* container directory */
    char *log_path; /* conmon's k8s-file log */
    struct barge_runtime_state state;
};

/* Every container under the state directory, e.g. to adopt them after a
 * restart. *out is a new array of *n entries; free with
 * barge_runtime_info_free(). Containers whose metadata is unreadable are
 * skipped with a warning. */
int barge_runtime_list(struct barge_runtime *rt, struct barge_runtime_info **out, size_t *n,
                       struct barge_error **err);
void barge_runtime_info_free(struct barge_runtime_info *infos, size_t n);

struct barge_runtime_exec_result {
    int exit_code;  /* the command's, or -1 when timed out */
    bool timed_out; /* the command was killed after timeout_ms */
    char *output;   /* the first 4 KiB of its stdout and stderr; caller frees */
};

/* Runs argv inside the running container (as the container's user, with its
 * environment and working directory), for health checks. Waits up to
 * timeout_ms (-1: forever), then kills the command. A non-zero exit code is
 * not an error; failing to run the runtime is. */
int barge_runtime_exec(struct barge_runtime *rt, const char *id, const char *const *argv,
                       int timeout_ms, struct barge_runtime_exec_result *out,
                       struct barge_error **err);

/* A command started in a running container for an exec session (ECS
 * Exec): interactive ones get a terminal of their own, others pipes. */
struct barge_runtime_exec_proc;

/* Starts argv in the container like barge_runtime_exec, without waiting:
 * with tty, on a new pseudo-terminal of rows x cols (0: the kernel's
 * default). *out is the caller's: barge_runtime_exec_proc_free. */
int barge_runtime_exec_open(struct barge_runtime *rt, const char *id, const char *const *argv,
                            bool tty, unsigned rows, unsigned cols,
                            struct barge_runtime_exec_proc **out, struct barge_error **err);
/* The descriptors to poll, all non-blocking (borrowed; -1 when there is
 * none): what to write the command's input to (the terminal with tty), its
 * output (the terminal with tty), its standard error (none with tty), and
 * one that is readable once the command has exited. */
int barge_runtime_exec_proc_input(const struct barge_runtime_exec_proc *p);
int barge_runtime_exec_proc_output(const struct barge_runtime_exec_proc *p);
int barge_runtime_exec_proc_errput(const struct barge_runtime_exec_proc *p);
int barge_runtime_exec_proc_exitfd(const struct barge_runtime_exec_proc *p);
/* Ends the command's input (no effect with a terminal). */
void barge_runtime_exec_proc_close_input(struct barge_runtime_exec_proc *p);
/* Sets the terminal's size (the command gets SIGWINCH). */
void barge_runtime_exec_proc_resize(struct barge_runtime_exec_proc *p, unsigned rows,
                                    unsigned cols);
/* Once the exit descriptor is readable: reaps the command and returns its
 * exit status (128+N when killed by signal N). */
int barge_runtime_exec_proc_reap(struct barge_runtime_exec_proc *p);
/* Kills the command if it still runs (SIGKILL), reaps it and frees p. */
void barge_runtime_exec_proc_free(struct barge_runtime_exec_proc *p);

struct barge_runtime_stats {
    uint64_t cpu_ns;           /* CPU time used since the container started */
    uint64_t memory_usage;     /* bytes charged now, page cache included */
    uint64_t memory_cache;     /* of which reclaimable page cache (inactive file) */
    uint64_t memory_max_usage; /* high-water mark; 0 when the kernel has none */
    uint64_t memory_limit;     /* 0 when unlimited */
    uint64_t pids;             /* tasks in the cgroup */
};

/* Reads the container's cgroup counters (cgroup v1 controllers, or v2). */
int barge_runtime_stats(struct barge_runtime *rt, const char *id, struct barge_runtime_stats *out,
                        struct barge_error **err);

/* Removes a cgroup made for grouping containers (a spec's cgroup_parent) from
 * every hierarchy once it is empty. Missing hierarchies or directories are not
 * errors; a cgroup that still has processes is (BARGE_ERR_CONFLICT). */
int barge_runtime_cgroup_remove(struct barge_runtime *rt, const char *cgroup_path,
                                struct barge_error **err);

/* ---- Task storage of a fixed size (taskfs.c): an ext4 filesystem in a
 * sparse file <dir>/<task_id>.img, mounted through a self-clearing loop
 * device at <dir>/<task_id>. Container directories (spec.dir) and volumes
 * placed there share its size as a quota. Needs root, /dev/loop-control and
 * mkfs.ext4. ---- */

/* Where a task's storage is (or would be) mounted; caller frees. */
char *barge_runtime_taskfs_path(const char *dir, const char *task_id);
/* Makes and mounts the task's storage of size_bytes, replacing what an
 * unfinished earlier attempt left; *mountpoint (caller frees) is its path.
 * On failure nothing is left behind. */
int barge_runtime_taskfs_create(const char *dir, const char *task_id, uint64_t size_bytes,
                                char **mountpoint, struct barge_error **err);
/* Unmounts and deletes the task's storage (the loop device detaches itself);
 * 0 also when there is none. Whatever was on it must be unmounted first. */
int barge_runtime_taskfs_remove(const char *dir, const char *task_id, struct barge_error **err);
/* Removes the storage of every task under dir for which known() is false
 * (left by a crash), logging what it did. */
void barge_runtime_taskfs_reconcile(const char *dir, bool (*known)(const char *task_id, void *ud),
                                    void *ud);

/* ---- Bundle generation, exposed for tests and tools (pure except for
 * reading the rootfs's /etc/passwd and /etc/group). ---- */

/* Checks a spec without touching the system. */
int barge_runtime_spec_validate(const struct barge_runtime_spec *spec, struct barge_error **err);

/* The capability set for add/drop over Docker's default, as a bit mask of
 * CAP_* numbers, limited to host_caps (the caps this host can hand out;
 * naming one outside it explicitly is an error). */
int barge_runtime_caps_compute(const char *const *add, const char *const *drop, uint64_t host_caps,
                               uint64_t *out, struct barge_error **err);
/* "CAP_CHOWN" for 0; NULL past the last known capability. */
const char *barge_runtime_cap_name(int cap);
/* The bounding set of this process (what a container can be given). */
uint64_t barge_runtime_host_caps(void);

struct barge_runtime_user {
    uint32_t uid;
    uint32_t gid;
    uint32_t *additional_gids; /* owned; release with barge_runtime_user_release */
    size_t n_additional_gids;
    char *home; /* owned; "/" when the user has no passwd entry */
};

/* Resolves user ("uid", "uid:gid", "name", "name:group", NULL = root) against
 * <rootfs>/etc/passwd and /etc/group, read without leaving the rootfs even
 * through symlinks. Unknown names are BARGE_ERR_INVALID. */
int barge_runtime_user_resolve(const char *rootfs, const char *user, struct barge_runtime_user *out,
                               struct barge_error **err);
void barge_runtime_user_release(struct barge_runtime_user *user);

/* Builds config.json for spec: rootfs is the absolute path of the root
 * filesystem (also used to resolve the user), dir the container directory
 * holding hosts, hostname and resolv.conf, cgroup_parent the parent used when
 * the spec names none. Returns a new reference the caller releases. */
json_t *barge_runtime_config_new(const struct barge_runtime_spec *spec, const char *rootfs,
                                 const char *dir, const char *cgroup_parent, uint64_t host_caps,
                                 struct barge_error **err);

#endif
