/* Declarations shared by the files of the net module and nothing else: child
 * processes (the CNI plugins, iptables-save) with input, captured output and
 * a deadline. The barge_netp_ prefix marks them as module-private. */
#ifndef BARGE_NET_INTERNAL_H
#define BARGE_NET_INTERNAL_H

#include "common/error.h"

struct barge_netp_result {
    int status;     /* exit code, 128+N for signal N */
    bool timed_out; /* killed at the deadline */
    char *out;      /* stdout, NUL-terminated (maybe empty); caller frees */
    char *err;      /* stderr, likewise */
};

/* Runs argv[0] (an absolute path) with envp (NULL: a PATH only), feeding it
 * input (may be NULL) on stdin, until it exits or timeout_ms passes (then it
 * is killed). Every other descriptor is closed in the child. -1 only when it
 * could not be started. */
int barge_netp_run(const char *const *argv, const char *const *envp, const char *input,
                   int timeout_ms, struct barge_netp_result *out, struct barge_error **err);
void barge_netp_result_release(struct barge_netp_result *r);

#endif
