/* The load balancers' data plane: one HAProxy process per load balancer,
 * configured from a JSON description and changed at run time through its
 * admin socket (see haproxy.c). */
#ifndef BARGE_NET_HAPROXY_H
#define BARGE_NET_HAPROXY_H

#include <sys/types.h>

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

/* The HAProxy configuration for spec, without (servers false) or with its
 * servers. spec:
 *   {"name", "address", "socket", "mode": "http"|"tcp", "idle_timeout",
 *    "listeners": [{"port", "forward": [{"backend", "weight"}], "sticky",
 *                   "rules": [{"forward", "sticky", "paths", "hosts",
 *                              "headers": [{"name", "values"}],
 *                              "queries": [[{"key"?, "value"}]],
 *                              "methods", "sources"}],
 *                   (a listener or rule answers itself instead of forwarding
 *                   with "redirect": {"protocol", "port", "host", "path",
 *                   "query" (ELB's templates with #{...}), "code"} or
 *                   "fixed": {"status", "content_type", "body"})
 *                   "tls": {"certs": [{"path", "arn", "seq"}] (the first is the
 *                           default, the others go by SNI), "min_version",
 *                           "max_version", "ciphers", "ciphersuites"},
 *                   "server_header": bool, "headers": [[name, value]]}],
 *    "backends": {name: {"mode", "sticky" (cookie lifetime, 0 for none),
 *                 "tunnel" (idle timeout of a TCP connection, seconds),
 *                 "check": {"enabled", "path", "port", "interval",
 *                 "timeout", "rise", "fall", "codes"},
 *                 "servers": {server name: {"addr", "port", "drain"}}}}}
 * The caller owns the string. */
char *barge_haproxy_config(const json_t *spec, bool servers);

/* The arguments of a server line (and of `add server`) for srv in backend. The
 * caller owns the string. */
char *barge_haproxy_server_args(const json_t *backend, const json_t *srv);

/* The pid of the HAProxy that answers on the admin socket sock, or -1 with
 * err set. While a new process takes over, the old one still answers. */
pid_t barge_haproxy_pid(const char *sock, struct barge_error **err);

/* Where the admin socket wanted at path goes: path itself, or, when it is
 * too long for HAProxy (a deep data directory), /run/barge/<tag>-<digest of
 * path>.sock, which stays the same across restarts (so a later process
 * finds the HAProxy it adopts) and differs between data directories. The
 * caller owns the string. */
char *barge_haproxy_socket_path(const char *path, const char *tag);

/* Writes config to path and starts `haproxy -db -f path`, asking old_pid (if
 * > 0) to finish its connections and stop once the new process listens. When
 * old_sock (the old process's admin socket) exists, the new process takes the
 * listening sockets over from it (-x), so no connection is refused while the
 * two swap. Its output goes to log_path. Returns the new pid, or -1 with err
 * set. */
pid_t barge_haproxy_start(const char *path, const char *config, const char *log_path, pid_t old_pid,
                          const char *old_sock, struct barge_error **err);

/* Sends one command to the admin socket at sock and returns the answer in
 * *reply (owned by the caller), or -1 with err set. */
int barge_haproxy_command(const char *sock, const char *cmd, char **reply,
                          struct barge_error **err);

/* The servers of the running process as {backend: {server: {"status",
 * "check_status", "scur", "qcur"}}} from `show stat`, or NULL with err set.
 * The caller owns the result. */
json_t *barge_haproxy_servers(const char *sock, struct barge_error **err);

#endif
