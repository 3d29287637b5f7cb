/* Pid locks: a file that one process holds an exclusive flock(2) on for its
 * whole life, with its pid inside so that others can name the holder. The
 * kernel drops the lock when the holder dies however it dies (kill -9
 * included), so a leftover file never blocks anybody, and a held lock proves
 * the holder is alive, where a bare pid file could name a recycled pid. */
#ifndef BARGE_COMMON_PIDLOCK_H
#define BARGE_COMMON_PIDLOCK_H

#include <sys/types.h>

/* Takes the lock on path (created 0600 if missing) and writes our pid into
 * it. Returns the descriptor, which the caller keeps open as long as it wants
 * the lock (it is close-on-exec, so children started with exec do not hold
 * it), or -1 with errno set: EWOULDBLOCK when another process holds it, and
 * then *holder is its pid (0 when it has not written it yet). */
int barge_pidlock_take(const char *path, pid_t *holder);

/* The pid of the process holding the lock on path; 0 when nobody holds it or
 * the file does not exist; -1 with errno set when path cannot be opened, or
 * EAGAIN when it is held but the holder has not written its pid yet. */
pid_t barge_pidlock_holder(const char *path);

#endif
