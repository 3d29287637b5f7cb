/* Child processes for the runtime driver: conmon, `runc start`, `runc exec`
 * and friends. posix_spawn (a vfork underneath) keeps starting them cheap even
 * from a large multi-threaded agent, every descriptor but the ones we hand
 * over is closed in the child, and waiting uses a pidfd in one poll() with the
 * output pipes, so a deadline never costs a sleep-and-retry loop. */
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>

#include "common/ids.h"
#include "runtime/internal.h"

#define DEFAULT_CAP (64 * 1024)

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    NULL,
};

int barge_rt_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int barge_rt_ms_left(int64_t deadline_ms)
{
    if (deadline_ms < 0)
        return -1;
    int64_t left = deadline_ms - barge_monotonic_ms();
    if (left <= 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

int barge_rt_pidfd_wait(int pidfd, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int r = poll(&p, 1, barge_rt_ms_left(deadline_ms));
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return 1; /* a broken pidfd must not turn into a hang */
    }
}

static void buf_append(struct barge_buf *b, size_t max, const char *data, size_t n)
{
    if (b->len >= max)
        return;
    if (n > max - b->len)
        n = max - b->len;
    barge_buf_addn(b, data, n);
}

/* Reads what is available; closes the descriptor at end of file. */
static void pump(int *fd, struct barge_buf *b, size_t max)
{
    char chunk[4096];
    while (*fd >= 0) {
        ssize_t r = read(*fd, chunk, sizeof(chunk));
        if (r > 0) {
            buf_append(b, max, chunk, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        close(*fd);
        *fd = -1;
    }
}

static int decode_status(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

/* Moves fd out of the 0-3 range we are about to fill in the child, so that a
 * dup2 onto itself (which would keep O_CLOEXEC) cannot happen. */
static int high_fd(int fd)
{
    if (fd > 3)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (n >= 0)
        close(fd);
    return n;
}

int barge_rt_child_spawn(struct barge_rt_child *c, const struct barge_rt_spawn_opts *o,
                         struct barge_error **err)
{
    memset(c, 0, sizeof(*c));
    c->pid = -1;
    c->pidfd = c->out_fd = c->err_fd = c->in_fd = -1;
    c->cap = o->cap ? o->cap : DEFAULT_CAP;

    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, in_p[2] = {-1, -1}, pass = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    int rc = -1;

    if (!o->tty_path && (o->capture_out || o->merge_err)) {
        if (pipe2(out_p, O_CLOEXEC) < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot create a pipe");
            goto out;
        }
        out_p[1] = high_fd(out_p[1]);
    }
    if (!o->tty_path && o->capture_err && !o->merge_err) {
        if (pipe2(err_p, O_CLOEXEC) < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot create a pipe");
            goto out;
        }
        err_p[1] = high_fd(err_p[1]);
    }
    if (o->pipe_in && !o->tty_path) {
        if (pipe2(in_p, O_CLOEXEC) < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot create a pipe");
            goto out;
        }
        in_p[0] = high_fd(in_p[0]);
    }
    if (o->pass_fd >= 0) {
        pass = fcntl(o->pass_fd, F_DUPFD_CLOEXEC, 10);
        if (pass < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot duplicate descriptor %d", o->pass_fd);
            goto out;
        }
    }

    if (o->tty_path) {
        /* Opened after setsid (POSIX_SPAWN_SETSID comes before the file
         * actions), the terminal becomes the controlling one. */
        posix_spawn_file_actions_addopen(&fa, 0, o->tty_path, O_RDWR, 0);
        posix_spawn_file_actions_adddup2(&fa, 0, 1);
        posix_spawn_file_actions_adddup2(&fa, 0, 2);
    } else if (in_p[0] >= 0) {
        posix_spawn_file_actions_adddup2(&fa, in_p[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    if (!o->tty_path) {
        if (out_p[1] >= 0)
            posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
        else
            posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        if (o->merge_err)
            posix_spawn_file_actions_adddup2(&fa, out_p[1], 2);
        else if (err_p[1] >= 0)
            posix_spawn_file_actions_adddup2(&fa, err_p[1], 2);
        else
            posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    if (pass >= 0) {
        posix_spawn_file_actions_adddup2(&fa, pass, 3);
        posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    } else {
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    }
    if (o->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, o->cwd);

    /* Ignored signals survive exec; the agent may ignore SIGPIPE, which must
     * not leak into conmon or the runtime. */
    sigset_t def, mask;
    sigemptyset(&def);
    static const int reset[] = {SIGPIPE, SIGCHLD, SIGHUP,  SIGINT,  SIGQUIT,
                                SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGTTOU};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(reset); i++)
        sigaddset(&def, reset[i]);
    sigemptyset(&mask);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                        (o->tty_path ? POSIX_SPAWN_SETSID : 0));

    const char *const *envp = o->envp ? o->envp : default_env;
    pid_t pid;
    int e = posix_spawn(&pid, o->argv[0], &fa, &attr, (char *const *)o->argv, (char *const *)envp);
    if (e != 0) {
        errno = e;
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot run '%s'", o->argv[0]);
        goto out;
    }
    c->pid = pid;
    c->pidfd = barge_rt_pidfd_open(pid);
    if (c->pidfd < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "pidfd_open of '%s' (linux >= 5.3 needed)",
                              o->argv[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        c->pid = -1;
        goto out;
    }
    if (out_p[0] >= 0) {
        c->out_fd = out_p[0];
        out_p[0] = -1;
        fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    }
    if (err_p[0] >= 0) {
        c->err_fd = err_p[0];
        err_p[0] = -1;
        fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
    }
    if (in_p[1] >= 0) {
        c->in_fd = in_p[1];
        in_p[1] = -1;
        fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
    }
    rc = 0;
out:
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 2; i++) {
        if (out_p[i] >= 0)
            close(out_p[i]);
        if (err_p[i] >= 0)
            close(err_p[i]);
        if (in_p[i] >= 0)
            close(in_p[i]);
    }
    if (pass >= 0)
        close(pass);
    return rc;
}

static int reap(struct barge_rt_child *c, struct barge_error **err)
{
    int ws;
    pid_t r;
    do
        r = waitpid(c->pid, &ws, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "waitpid %d", (int)c->pid);
    c->reaped = true;
    c->status = decode_status(ws);
    return 0;
}

int barge_rt_child_wait(struct barge_rt_child *c, int64_t deadline_ms, struct barge_error **err)
{
    if (c->reaped)
        return 1;
    for (;;) {
        struct pollfd p[3];
        nfds_t n = 0;
        p[n++] = (struct pollfd){.fd = c->pidfd, .events = POLLIN};
        if (c->out_fd >= 0)
            p[n++] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
        if (c->err_fd >= 0)
            p[n++] = (struct pollfd){.fd = c->err_fd, .events = POLLIN};
        int r = poll(p, n, barge_rt_ms_left(deadline_ms));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "poll");
        }
        pump(&c->out_fd, &c->out, c->cap);
        pump(&c->err_fd, &c->err, c->cap);
        if (p[0].revents) {
            if (reap(c, err) < 0)
                return -1;
            /* What the child wrote before exiting is in the pipes already;
             * anything its own children write later is not ours to wait for. */
            pump(&c->out_fd, &c->out, c->cap);
            pump(&c->err_fd, &c->err, c->cap);
            return 1;
        }
        if (r == 0)
            return 0;
    }
}

void barge_rt_child_release(struct barge_rt_child *c)
{
    if (c->pid > 0 && !c->reaped) {
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        c->reaped = true;
    }
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    if (c->in_fd >= 0)
        close(c->in_fd);
    c->pidfd = c->out_fd = c->err_fd = c->in_fd = -1;
    barge_buf_release(&c->out);
    barge_buf_release(&c->err);
}

int barge_rt_run(const char *const *argv, int64_t deadline_ms, int *status, bool *timed_out,
                 char **out, char **errout, struct barge_error **err)
{
    struct barge_rt_child c;
    struct barge_rt_spawn_opts o = {
        .argv = argv,
        .capture_out = true,
        .capture_err = true,
        .pass_fd = -1,
    };
    if (barge_rt_child_spawn(&c, &o, err) < 0)
        return -1;
    int r = barge_rt_child_wait(&c, deadline_ms, err);
    if (r < 0) {
        barge_rt_child_release(&c);
        return -1;
    }
    if (timed_out)
        *timed_out = r == 0;
    if (r == 0) {
        kill(c.pid, SIGKILL);
        if (reap(&c, err) < 0) {
            barge_rt_child_release(&c);
            return -1;
        }
    }
    *status = c.status;
    if (out)
        *out = barge_steal(&c.out.data);
    if (errout)
        *errout = barge_steal(&c.err.data);
    barge_rt_child_release(&c);
    return 0;
}
