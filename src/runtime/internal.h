/* Declarations shared by the files of the runtime module and by nothing else:
 * child processes with captured output and deadlines (proc.c), cgroup
 * discovery and counters (cgroup.c), and the /etc files of a bundle
 * (spec.c). The barge_rt_ prefix marks them as module-private. */
#ifndef BARGE_RUNTIME_INTERNAL_H
#define BARGE_RUNTIME_INTERNAL_H

#include <sys/types.h>

#include "common/error.h"
#include "runtime/runtime.h"

/* ---- proc.c ---- */

struct barge_rt_child {
    pid_t pid;
    int pidfd;  /* readable once the child has exited */
    int out_fd; /* read end of the child's stdout (and stderr when merged), or -1 */
    int err_fd; /* read end of the child's stderr, or -1 */
    int in_fd;  /* write end of the child's stdin (pipe_in), or -1 */
    /* Output captured from the child (data NULL until something was read),
     * capped at cap bytes each so that a chatty process cannot make us grow
     * without bound; bytes past the cap are read and dropped. */
    struct barge_buf out;
    struct barge_buf err;
    size_t cap;
    bool reaped;
    int status; /* exit code, or 128+N for signal N, once reaped */
};

struct barge_rt_spawn_opts {
    const char *const *argv; /* argv[0] is an absolute path */
    const char *const *envp; /* NULL: a minimal environment with PATH */
    const char *cwd;         /* NULL: inherit */
    bool capture_out;        /* stdout to a pipe (else /dev/null) */
    bool capture_err;        /* stderr to its own pipe (else /dev/null) */
    bool merge_err;          /* stderr into the stdout pipe */
    int pass_fd;             /* given to the child as fd 3, or -1 */
    size_t cap;              /* bytes kept of each stream; 0: 64 KiB */
    bool pipe_in;            /* stdin from a pipe (c->in_fd), else /dev/null */
    /* A terminal (a pty's slave) to be the child's stdin, stdout, stderr and
     * controlling terminal, in a session of its own; the other stdio
     * options are ignored then. */
    const char *tty_path;
};

/* Starts a child with every other descriptor closed. The child is ours to
 * reap with barge_rt_child_wait (or barge_rt_child_release, which kills it). */
int barge_rt_child_spawn(struct barge_rt_child *c, const struct barge_rt_spawn_opts *o,
                         struct barge_error **err);
/* Pumps the child's output until it exits or the monotonic deadline (ms,
 * -1: none) passes. Returns 1 when it exited (c->status set), 0 on timeout. */
int barge_rt_child_wait(struct barge_rt_child *c, int64_t deadline_ms, struct barge_error **err);
/* Kills (SIGKILL) and reaps the child if still running, closes descriptors
 * and frees buffers. Safe to call twice. */
void barge_rt_child_release(struct barge_rt_child *c);

/* Runs argv to completion (deadline as above), capturing stdout and stderr.
 * Returns 0 with *status set (killed on timeout: status 137 and
 * *timed_out true when given), or -1 when it could not be run. *out / *errout
 * (optional) receive the captured text, owned by the caller. */
int barge_rt_run(const char *const *argv, int64_t deadline_ms, int *status, bool *timed_out,
                 char **out, char **errout, struct barge_error **err);

/* pidfd of a process that is not our child; -1 with errno on failure. */
int barge_rt_pidfd_open(pid_t pid);
/* Waits for a pidfd to become readable (the process exited). Returns 1 when
 * it did, 0 on timeout. */
int barge_rt_pidfd_wait(int pidfd, int64_t deadline_ms);
/* Milliseconds left until deadline for poll(): -1 when there is none. */
int barge_rt_ms_left(int64_t deadline_ms);

/* ---- cgroup.c ---- */

struct barge_rt_cgroups {
    bool unified;   /* /sys/fs/cgroup is cgroup2: controllers are all there */
    char *v2_mount; /* the cgroup2 mount (unified, or hybrid's extra one), or NULL */
    char *memory;   /* v1 mount points of the controllers we read, NULL when absent */
    char *cpuacct;
    char *pids;
    char **v1_mounts; /* every v1 hierarchy (named ones included), for removal */
    size_t n_v1_mounts;
};

/* Reads /proc/self/mountinfo. */
int barge_rt_cgroups_discover(struct barge_rt_cgroups *cg, struct barge_error **err);
void barge_rt_cgroups_release(struct barge_rt_cgroups *cg);
/* A short description for logs: "unified", "hybrid (v1 controllers, empty
 * cgroup2 at ...)", "legacy v1". */
char *barge_rt_cgroups_describe(const struct barge_rt_cgroups *cg);
/* True when the kernel OOM killer killed something in the cgroup (path as
 * given in config.json's linux.cgroupsPath). */
bool barge_rt_cgroup_oom_killed(const struct barge_rt_cgroups *cg, const char *path);
int barge_rt_cgroup_stats(const struct barge_rt_cgroups *cg, const char *path,
                          struct barge_runtime_stats *out, struct barge_error **err);
/* rmdir of path in every hierarchy; ENOENT is fine, EBUSY is BARGE_ERR_CONFLICT. */
int barge_rt_cgroup_remove(const struct barge_rt_cgroups *cg, const char *path,
                           struct barge_error **err);

/* ---- spec.c ---- */

/* Writes <dir>/hosts, <dir>/hostname and <dir>/resolv.conf for spec. */
int barge_rt_etc_files_write(const struct barge_runtime_spec *spec, const char *dir,
                             struct barge_error **err);
/* The hostname the container gets (spec's, host's or derived from the id);
 * caller frees. */
char *barge_rt_hostname(const struct barge_runtime_spec *spec);
/* Writes data to path through a temporary file and rename, without fsync: for
 * files that only matter while this boot lasts. Returns 0 or -1 with errno. */
int barge_rt_write_file(const char *path, const void *data, size_t len, int mode);
/* True for ids the runtime accepts. */
bool barge_rt_id_valid(const char *id);

#endif
