/* Child processes for the net module: a CNI plugin reads its configuration on
 * stdin and answers on stdout, so unlike the runtime's children these need an
 * input pipe. posix_spawn keeps starting them cheap from the multi-threaded
 * agent; every descriptor but the three pipes is closed in the child, and one
 * poll() loop feeds stdin, drains both outputs and enforces the deadline. */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>

#include "common/ids.h"
#include "net/internal.h"

#define OUTPUT_MAX (1024 * 1024)

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    NULL,
};

static void read_available(int *fd, struct barge_buf *b)
{
    char chunk[4096];
    for (;;) {
        ssize_t r = read(*fd, chunk, sizeof(chunk));
        if (r > 0) {
            size_t n = (size_t)r;
            if (b->len + n > OUTPUT_MAX)
                n = OUTPUT_MAX - b->len;
            barge_buf_addn(b, chunk, n);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        close(*fd);
        *fd = -1;
        return;
    }
}

/* Keeps the child's ends of the pipes out of 0-2, so that the dup2 onto the
 * standard descriptors never lands on itself (which would keep O_CLOEXEC). */
static int above_stdio(int fd)
{
    if (fd > 2)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return n;
}

int barge_netp_run(const char *const *argv, const char *const *envp, const char *input,
                   int timeout_ms, struct barge_netp_result *res, struct barge_error **err)
{
    memset(res, 0, sizeof(*res));
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot create a pipe for '%s'", argv[0]);
        for (int i = 0; i < 2; i++) {
            if (in_p[i] >= 0)
                close(in_p[i]);
            if (out_p[i] >= 0)
                close(out_p[i]);
        }
        return -1;
    }
    in_p[0] = above_stdio(in_p[0]);
    out_p[1] = above_stdio(out_p[1]);
    err_p[1] = above_stdio(err_p[1]);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, in_p[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_p[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    /* The agent ignores SIGPIPE; an ignored signal would survive exec. */
    sigset_t def, mask;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGCHLD);
    sigemptyset(&mask);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int e = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv,
                        (char *const *)(envp ? envp : default_env));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in_p[0]);
    close(out_p[1]);
    close(err_p[1]);
    if (e != 0) {
        close(in_p[1]);
        close(out_p[0]);
        close(err_p[0]);
        errno = e;
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot run '%s'", argv[0]);
    }
    int in_fd = in_p[1], out_fd = out_p[0], err_fd = err_p[0];
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
    fcntl(out_fd, F_SETFL, O_NONBLOCK);
    fcntl(err_fd, F_SETFL, O_NONBLOCK);
    size_t in_len = input ? strlen(input) : 0, in_off = 0;
    if (in_len == 0) {
        close(in_fd);
        in_fd = -1;
    }
    struct barge_buf o = {0}, er = {0};
    int64_t deadline = barge_monotonic_ms() + timeout_ms;
    while (out_fd >= 0 || err_fd >= 0) {
        struct pollfd p[3];
        int n = 0, i_in = -1, i_out = -1, i_err = -1;
        if (in_fd >= 0)
            p[i_in = n++] = (struct pollfd){in_fd, POLLOUT, 0};
        if (out_fd >= 0)
            p[i_out = n++] = (struct pollfd){out_fd, POLLIN, 0};
        if (err_fd >= 0)
            p[i_err = n++] = (struct pollfd){err_fd, POLLIN, 0};
        int64_t left = deadline - barge_monotonic_ms();
        if (left <= 0) {
            res->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        int r = poll(p, (nfds_t)n, (int)left);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (i_in >= 0 && p[i_in].revents) {
            ssize_t w = write(in_fd, input + in_off, in_len - in_off);
            if (w > 0)
                in_off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len ||
                (p[i_in].revents & (POLLERR | POLLHUP))) {
                close(in_fd);
                in_fd = -1;
            }
        }
        if (i_out >= 0 && p[i_out].revents)
            read_available(&out_fd, &o);
        if (i_err >= 0 && p[i_err].revents)
            read_available(&err_fd, &er);
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    int ws = 0;
    pid_t w;
    do
        w = waitpid(pid, &ws, 0);
    while (w < 0 && errno == EINTR);
    res->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 255;
    res->out = barge_buf_steal(&o, NULL);
    res->err = barge_buf_steal(&er, NULL);
    return 0;
}

void barge_netp_result_release(struct barge_netp_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}
