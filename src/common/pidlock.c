/* Pid locks (pidlock.h). */
#include "common/pidlock.h"

#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

static pid_t read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    return pid > 0 ? (pid_t)pid : 0;
}

int barge_pidlock_take(const char *path, pid_t *holder)
{
    *holder = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int saved = errno;
        if (saved == EWOULDBLOCK)
            *holder = read_pid(fd);
        close(fd);
        errno = saved;
        return -1;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

pid_t barge_pidlock_holder(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* A shared lock is refused only while someone holds the exclusive one;
     * when it is granted nobody does, and closing drops it again. */
    pid_t pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        pid = errno == EWOULDBLOCK ? read_pid(fd) : -1;
        if (pid == 0) {
            pid = -1; /* held, but the holder has not written its pid yet */
            errno = EAGAIN;
        }
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return pid;
}
