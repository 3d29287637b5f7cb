/* HAProxy as the data plane of barged's load balancers. Each load balancer
 * is one `haproxy -db` process whose configuration barged writes: a frontend
 * per listener bound to a real port, a backend per target group with the
 * group's health check, a server per registered target. Targets come and go
 * through the admin socket (`add server`, `set server ... state drain`, `del
 * server`), so no connection is cut; a changed listener, rule or health check
 * needs a new configuration, which a new process takes over with -x (the
 * listening sockets pass from the old process through its admin socket, which
 * has expose-fd listeners) and -sf (the old one stops accepting and finishes
 * what it serves). */
#include "net/haproxy.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/sigv4.h"
#include "common/util.h"

/* The HTTP codes of an ELB matcher ("200", "200,202", "200-299") as a regex
 * that HAProxy's `http-check expect rstatus` reads. */
static void append_codes(FILE *b, const char *codes)
{
    fputs("^(", b);
    bool first = true;
    const char *p = codes;
    while (*p) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (*end == '-')
            hi = strtol(end + 1, &end, 10);
        for (long c = lo; c <= hi && c < 1000; c++) {
            fprintf(b, "%s%ld", first ? "" : "|", c);
            first = false;
        }
        p = *end == ',' ? end + 1 : end + strlen(end);
    }
    fputs(")$", b);
}

/* Text inside a double-quoted word of HAProxy's configuration: '\\', '"',
 * '$' (environment variables) and '#' are escaped, control characters are
 * written as \xNN, and '%' is doubled in a log-format string (logfmt). */
static void append_quoted(FILE *b, const char *s, size_t n, bool logfmt)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '"' || c == '$' || c == '#')
            fprintf(b, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", b);
        else if (c < 0x20 || c == 0x7f)
            fprintf(b, "\\x%02x", c);
        else if (c == '%' && logfmt)
            fputs("%%", b);
        else
            fputc(c, b);
    }
}

/* An ELB wildcard pattern (* any run of characters, ? one) as regex text:
 * every other character but letters and digits is escaped, so it stands for
 * itself; any and one are what the wildcards become. With escapes (query
 * strings), \* and \? are a literal '*' and '?', as in ELB. */
static void append_wildcards(FILE *b, const char *pattern, const char *any, const char *one,
                             bool escapes)
{
    for (const char *c = pattern; c && *c; c++) {
        if (escapes && c[0] == '\\' && (c[1] == '*' || c[1] == '?'))
            fprintf(b, "\\%c", *++c);
        else if (*c == '*')
            fputs(any, b);
        else if (*c == '?')
            fputs(one, b);
        else if (isalnum((unsigned char)*c) || (unsigned char)*c >= 0x80)
            fputc(*c, b);
        else
            fprintf(b, "\\%c", *c);
    }
}

/* Writes text (n bytes) as a double-quoted word (or part of one). */
static void append_word(FILE *b, const char *text, size_t n)
{
    fputc('"', b);
    append_quoted(b, text, n, false);
    fputc('"', b);
}

/* Appends, for each element of values, a space and the regex build writes
 * for it as a double-quoted word. */
static void append_regexes(FILE *b, const json_t *values, void (*build)(FILE *m, const json_t *v))
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)values, i, v)
    {
        char *re = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&re, &n);
        build(m, v);
        fclose(m);
        fputc(' ', b);
        append_word(b, re, n);
        free(re);
    }
}

/* An http-header condition's value as an anchored regex. */
static void header_value_regex(FILE *m, const json_t *v)
{
    fputc('^', m);
    append_wildcards(m, json_string_value(v), ".*", ".", false);
    fputc('$', m);
}

/* A query-string condition's {"key"?, "value"} pair as a regex over the
 * query string that finds it among the '&'-separated pairs (any key when
 * it has none). */
static void query_pair_regex(FILE *m, const json_t *p)
{
    fputs("(^|&)", m);
    if (json_object_get(p, "key")) {
        append_wildcards(m, barge_json_str(p, "key", ""), "[^&=]*", "[^&=]", true);
        fputc('=', m);
    } else {
        fputs("([^&=]*=)?", m);
    }
    append_wildcards(m, barge_json_str(p, "value", ""), "[^&]*", "[^&]", true);
    fputs("(&|$)", m);
}

/* ELB's wildcard patterns (* any run of characters, ? one character) as
 * anchored regexes, each in single quotes (HAProxy takes their text as is;
 * the API admits no quote in a pattern). Host names match in lower case. */
static void append_patterns(FILE *b, const json_t *patterns, bool host)
{
    size_t i;
    json_t *p;
    json_array_foreach((json_t *)patterns, i, p)
    {
        fputs(" '^", b);
        for (const char *c = json_string_value(p); c && *c; c++) {
            if (*c == '*')
                fputs(".*", b);
            else if (*c == '?')
                fputc('.', b);
            else if (strchr(".$+^()[]{}|\\", *c))
                fprintf(b, "\\%c", *c);
            else if (*c != '\'')
                fputc(host ? tolower((unsigned char)*c) : *c, b);
        }
        fputs("$'", b);
    }
    fputs("\n", b);
}

char *barge_haproxy_server_args(const json_t *backend, const json_t *srv)
{
    char *text = NULL;
    size_t size = 0;
    FILE *b = open_memstream(&text, &size);
    fprintf(b, "%s:%lld", barge_json_str(srv, "addr", ""),
            (long long)barge_json_int(srv, "port", 0));
    const json_t *check = json_object_get(backend, "check");
    if (barge_json_bool(check, "enabled", true)) {
        fprintf(b, " check inter %llds rise %lld fall %lld",
                (long long)barge_json_int(check, "interval", 30),
                (long long)barge_json_int(check, "rise", 5),
                (long long)barge_json_int(check, "fall", 2));
        json_int_t port = barge_json_int(check, "port", 0);
        if (port > 0)
            fprintf(b, " port %lld", (long long)port);
    }
    fclose(b);
    return text;
}

static json_int_t total_weight(const json_t *fwd)
{
    json_int_t total = 0;
    size_t i;
    json_t *f;
    json_array_foreach((json_t *)fwd, i, f) total += barge_json_int(f, "weight", 1);
    return total;
}

/* Several target groups of a forward ([{"backend", "weight"}]) share the
 * requests by weight: a random number below the weights' sum, drawn into the
 * variable var for each request (HAProxy runs these before any use_backend),
 * picks one. */
static void append_draw(FILE *b, const json_t *fwd, bool http, const char *var)
{
    if (json_array_size(fwd) > 1 && total_weight(fwd) > 0)
        fprintf(b, "    %s-request %sset-var(%s) rand(%lld)\n", http ? "http" : "tcp",
                http ? "" : "content ", var, (long long)total_weight(fwd));
}

/* The use_backend lines of a forward under the conditions cond (a text of
 * ACL names, "" for none), by the number append_draw drew into var. A sticky
 * forward first sends a request that carries a target group's cookie (set by
 * the backend) back to that group. Returns the backend for what nothing picks
 * (default_backend): the first with a weight. */
static const char *append_forward(FILE *b, const json_t *fwd, const char *cond, bool sticky,
                                  bool http, const char *var)
{
    const char *fallback = NULL;
    json_int_t total = total_weight(fwd);
    size_t i;
    json_t *f;
    json_array_foreach((json_t *)fwd, i, f)
    {
        if (barge_json_int(f, "weight", 1) > 0 && !fallback)
            fallback = barge_json_str(f, "backend", "");
    }
    if (!fallback)
        fallback = barge_json_str(json_array_get(fwd, 0), "backend", "");
    if (json_array_size(fwd) <= 1 || total == 0) {
        if (*cond)
            fprintf(b, "    use_backend %s if%s\n", fallback, cond);
        return fallback;
    }
    if (sticky && http) {
        json_array_foreach((json_t *)fwd, i, f)
        {
            if (barge_json_int(f, "weight", 1) > 0)
                fprintf(b, "    use_backend %s if%s { req.cook(AWSALBTG) -m str %s }\n",
                        barge_json_str(f, "backend", ""), cond, barge_json_str(f, "backend", ""));
        }
    }
    json_int_t lo = 0;
    json_array_foreach((json_t *)fwd, i, f)
    {
        json_int_t w = barge_json_int(f, "weight", 1);
        if (w > 0)
            fprintf(b, "    use_backend %s if%s { var(%s) -m int %lld:%lld }\n",
                    barge_json_str(f, "backend", ""), cond, var, (long long)lo,
                    (long long)(lo + w - 1));
        lo += w;
    }
    return fallback;
}

/* The TLS options of a bind line (none for a plain listener), and the
 * certificates' versions as comments, so that a re-imported certificate
 * changes the configuration and a new process loads it. */
static void append_tls(FILE *b, const json_t *tls)
{
    if (!tls) {
        fputs("\n", b);
        return;
    }
    fputs(" ssl", b);
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(tls, "certs"), i, c)
        fprintf(b, " crt %s", barge_json_str(c, "path", ""));
    fprintf(b, " ssl-min-ver %s ssl-max-ver %s ciphers %s", barge_json_str(tls, "min_version", ""),
            barge_json_str(tls, "max_version", ""), barge_json_str(tls, "ciphers", ""));
    const char *suites = barge_json_str(tls, "ciphersuites", NULL);
    if (suites)
        fprintf(b, " ciphersuites %s", suites);
    fputs("\n", b);
    json_array_foreach(barge_json_array(tls, "certs"), i, c)
        fprintf(b, "    # certificate %s import %lld\n", barge_json_str(c, "arn", ""),
                (long long)barge_json_int(c, "seq", 0));
}

/* What an HTTP listener l adds to requests (X-Forwarded-Proto and -Port, as
 * ELB does) and to responses (its listener attributes: "server_header"
 * false drops the Server header, "headers" [[name, value]] are set). Header
 * values are log-format strings to HAProxy, so '%' is doubled; the API lets
 * no '"' or '\\' through. */
static void append_http_headers(FILE *b, const json_t *l)
{
    fprintf(b,
            "    http-request set-header X-Forwarded-Proto %s\n"
            "    http-request set-header X-Forwarded-Port %lld\n",
            json_object_get(l, "tls") ? "https" : "http", (long long)barge_json_int(l, "port", 0));
    if (!barge_json_bool(l, "server_header", true))
        fputs("    http-response del-header Server\n", b);
    size_t i;
    json_t *h;
    json_array_foreach(barge_json_array(l, "headers"), i, h)
    {
        fprintf(b, "    http-response set-header %s \"", json_string_value(json_array_get(h, 0)));
        for (const char *c = json_string_value(json_array_get(h, 1)); c && *c; c++) {
            if (*c == '%')
                fputc('%', b);
            fputc(*c, b);
        }
        fputs("\"\n", b);
    }
}

/* A component of an ELB redirect (its #{...} placeholders) as a log-format
 * text: the listener's protocol and port are known here, the request's host
 * (without its port), path (without the leading '/') and query come from
 * the request. */
static void append_component(FILE *b, const char *tmpl, bool tls, json_int_t port)
{
    static const struct {
        const char *name, *expr;
    } fetches[] = {
        {"#{host}", "%[req.hdr(host),field(1,:)]"},
        {"#{path}", "%[path,regsub(^/,)]"},
        {"#{query}", "%[query]"},
    };
    const char *p = tmpl;
    while (*p) {
        const char *at = strstr(p, "#{");
        if (!at) {
            append_quoted(b, p, strlen(p), true);
            break;
        }
        append_quoted(b, p, (size_t)(at - p), true);
        size_t k;
        for (k = 0; k < BARGE_ARRAY_SIZE(fetches); k++) {
            if (!strncmp(at, fetches[k].name, strlen(fetches[k].name)))
                break;
        }
        if (k < BARGE_ARRAY_SIZE(fetches)) {
            fputs(fetches[k].expr, b);
            p = at + strlen(fetches[k].name);
        } else if (!strncmp(at, "#{protocol}", strlen("#{protocol}"))) {
            fputs(tls ? "https" : "http", b);
            p = at + strlen("#{protocol}");
        } else if (!strncmp(at, "#{port}", strlen("#{port}"))) {
            fprintf(b, "%lld", (long long)port);
            p = at + strlen("#{port}");
        } else {
            append_quoted(b, "#{", 2, true);
            p = at + 2;
        }
    }
}

/* One `http-request redirect` line for the redirect r ({"protocol", "port",
 * "host", "path", "query", "code"}, as ELB has them) of a listener (tls, port)
 * under cond; with_query tells whether a '?' and the query follow. */
static void append_redirect_line(FILE *b, const json_t *r, bool tls, json_int_t port,
                                 const char *cond, bool with_query)
{
    const char *proto = barge_json_str(r, "protocol", "#{protocol}");
    bool to_tls = barge_streq(proto, "#{protocol}") ? tls : barge_streq(proto, "HTTPS");
    fprintf(b, "    http-request redirect location \"%s://", to_tls ? "https" : "http");
    append_component(b, barge_json_str(r, "host", "#{host}"), tls, port);
    fputc(':', b);
    append_component(b, barge_json_str(r, "port", "#{port}"), tls, port);
    append_component(b, barge_json_str(r, "path", "/#{path}"), tls, port);
    if (with_query) {
        fputc('?', b);
        append_component(b, barge_json_str(r, "query", "#{query}"), tls, port);
    }
    fprintf(b, "\" code %lld%s%s\n", (long long)barge_json_int(r, "code", 301), *cond ? " if" : "",
            cond);
}

/* The `http-request` lines that answer a request under cond with the
 * listener's or rule's redirect ("redirect") or fixed response ("fixed":
 * {"status", "content_type", "body"}); false when it forwards. A query of
 * just #{query} adds the '?' only when the request has a query, as ELB does. */
static bool append_answer(FILE *b, const json_t *item, bool tls, json_int_t port, const char *cond)
{
    const json_t *r = json_object_get(item, "redirect");
    if (r) {
        const char *query = barge_json_str(r, "query", "#{query}");
        if (barge_streq(query, "#{query}")) {
            _cleanup_free_ char *with = barge_xasprintf("%s { query -m len 1: }", cond);
            append_redirect_line(b, r, tls, port, with, true);
            append_redirect_line(b, r, tls, port, cond, false);
        } else {
            append_redirect_line(b, r, tls, port, cond, *query != '\0');
        }
        return true;
    }
    const json_t *f = json_object_get(item, "fixed");
    if (!f)
        return false;
    fprintf(b, "    http-request return status %lld", (long long)barge_json_int(f, "status", 200));
    /* A 204 has no body, and HAProxy refuses one. */
    const char *body = barge_json_int(f, "status", 0) == 204 ? "" : barge_json_str(f, "body", "");
    if (*body) {
        fputs(" content-type \"", b);
        const char *type = barge_json_str(f, "content_type", "text/plain");
        append_quoted(b, type, strlen(type), false);
        fputs("\" string \"", b);
        append_quoted(b, body, strlen(body), false);
        fputc('"', b);
    }
    fprintf(b, "%s%s\n", *cond ? " if" : "", cond);
    return true;
}

/* The ACLs of rule k's conditions ("paths", "hosts", "headers", "queries",
 * "methods", "sources"), and their names as a condition that needs them all
 * (ELB's AND across conditions; the values of one are alternatives). The
 * caller owns the string. */
static char *append_conditions(FILE *b, const json_t *rule, size_t k)
{
    char *cond = NULL;
    size_t size = 0;
    FILE *c = open_memstream(&cond, &size);
    json_t *paths = barge_json_array(rule, "paths");
    json_t *hosts = barge_json_array(rule, "hosts");
    if (json_array_size(paths)) {
        fprintf(b, "    acl r%zu_path path -m reg", k);
        append_patterns(b, paths, false);
        fprintf(c, " r%zu_path", k);
    }
    if (json_array_size(hosts)) {
        fprintf(b, "    acl r%zu_host req.hdr(host),lower,field(1,:) -m reg", k);
        append_patterns(b, hosts, true);
        fprintf(c, " r%zu_host", k);
    }
    size_t i;
    json_t *h;
    json_array_foreach(barge_json_array(rule, "headers"), i, h)
    {
        /* req.fhdr: a value with commas is one value, as ELB sees it. The
         * name, a token, is read twice: as a word of the line, then as the
         * fetch's argument, where a quote needs a backslash of its own. */
        char *arg = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&arg, &n);
        for (const char *p = barge_json_str(h, "name", ""); *p; p++)
            fprintf(m, "%s%c", *p == '\'' ? "\\" : "", *p);
        fclose(m);
        fprintf(b, "    acl r%zu_hdr%zu req.fhdr(", k, i);
        append_word(b, arg, n);
        free(arg);
        fputs(") -m reg -i", b);
        append_regexes(b, barge_json_array(h, "values"), header_value_regex);
        fputs("\n", b);
        fprintf(c, " r%zu_hdr%zu", k, i);
    }
    json_array_foreach(barge_json_array(rule, "queries"), i, h)
    {
        fprintf(b, "    acl r%zu_query%zu query -m reg -i", k, i);
        append_regexes(b, h, query_pair_regex);
        fputs("\n", b);
        fprintf(c, " r%zu_query%zu", k, i);
    }
    static const struct {
        const char *key, *acl, *fetch;
    } lists[] = {{"methods", "method", "method"}, {"sources", "src", "src"}};
    for (size_t l = 0; l < BARGE_ARRAY_SIZE(lists); l++) {
        json_t *values = barge_json_array(rule, lists[l].key);
        if (!json_array_size(values))
            continue;
        /* The API lets only [A-Z_-] methods and CIDR blocks through. */
        fprintf(b, "    acl r%zu_%s %s", k, lists[l].acl, lists[l].fetch);
        json_array_foreach(values, i, h) fprintf(b, " %s", json_string_value(h));
        fputs("\n", b);
        fprintf(c, " r%zu_%s", k, lists[l].acl);
    }
    fclose(c);
    return cond;
}

char *barge_haproxy_config(const json_t *spec, bool servers)
{
    char *text = NULL;
    size_t size = 0;
    FILE *b = open_memstream(&text, &size);
    const char *mode = barge_json_str(spec, "mode", "http");
    fprintf(b,
            "# written by barged for load balancer %s\n"
            "global\n"
            "    stats socket %s mode 600 level admin expose-fd listeners\n"
            "    maxconn 4096\n"
            "defaults\n"
            "    mode %s\n"
            "    timeout connect 5s\n"
            "    timeout client %llds\n"
            "    timeout server %llds\n"
            "    timeout http-request 60s\n"
            "    retries 3\n"
            "    option redispatch\n",
            barge_json_str(spec, "name", ""), barge_json_str(spec, "socket", ""), mode,
            (long long)barge_json_int(spec, "idle_timeout", 60),
            (long long)barge_json_int(spec, "idle_timeout", 60));
    bool http = barge_streq(mode, "http");
    size_t i;
    json_t *l;
    json_array_foreach(barge_json_array(spec, "listeners"), i, l)
    {
        fprintf(b, "frontend l%lld\n    bind %s:%lld", (long long)barge_json_int(l, "port", 0),
                barge_json_str(spec, "address", "127.0.0.1"),
                (long long)barge_json_int(l, "port", 0));
        append_tls(b, json_object_get(l, "tls"));
        if (http)
            append_http_headers(b, l);
        size_t k;
        json_t *rule;
        const char *def_var = http ? "txn.wd" : "sess.wd";
        append_draw(b, barge_json_array(l, "forward"), http, def_var);
        json_array_foreach(barge_json_array(l, "rules"), k, rule)
        {
            char var[32];
            snprintf(var, sizeof(var), "txn.w%zu", k);
            append_draw(b, barge_json_array(rule, "forward"), http, var);
        }
        /* Redirects and fixed responses are http-request rules, which HAProxy
         * runs before any use_backend: one answers only when no forward rule
         * of a higher priority (marked in txn.fwd) matched. */
        bool tls = json_object_get(l, "tls") != NULL;
        json_int_t port = barge_json_int(l, "port", 0);
        bool answers = json_object_get(l, "redirect") || json_object_get(l, "fixed");
        json_array_foreach(barge_json_array(l, "rules"), k, rule)
        {
            if (json_object_get(rule, "redirect") || json_object_get(rule, "fixed"))
                answers = true;
        }
        bool forwarded = false;
        json_array_foreach(barge_json_array(l, "rules"), k, rule)
        {
            _cleanup_free_ char *cond = append_conditions(b, rule, k);
            char var[32];
            _cleanup_free_ char *guarded =
                barge_xasprintf("%s%s", cond, forwarded ? " !{ var(txn.fwd) -m found }" : "");
            if (append_answer(b, rule, tls, port, guarded))
                continue;
            if (answers) {
                fprintf(b, "    http-request set-var(txn.fwd) bool(1) if%s\n", cond);
                forwarded = true;
            }
            snprintf(var, sizeof(var), "txn.w%zu", k);
            append_forward(b, barge_json_array(rule, "forward"), cond,
                           barge_json_bool(rule, "sticky", false), http, var);
        }
        if (append_answer(b, l, tls, port, forwarded ? " !{ var(txn.fwd) -m found }" : ""))
            continue;
        const char *def = append_forward(b, barge_json_array(l, "forward"), "",
                                         barge_json_bool(l, "sticky", false), http, def_var);
        fprintf(b, "    default_backend %s\n", def);
    }
    const char *name;
    json_t *be;
    json_object_foreach(barge_json_object(spec, "backends"), name, be)
    {
        fprintf(b, "backend %s\n    balance roundrobin\n", name);
        json_int_t tunnel = barge_json_int(be, "tunnel", 0);
        if (tunnel > 0 && !http)
            fprintf(b, "    timeout tunnel %llds\n", (long long)tunnel);
        json_int_t sticky = barge_json_int(be, "sticky", 0);
        if (sticky > 0 && http)
            fprintf(
                b,
                "    http-response add-header Set-Cookie \"AWSALBTG=%s; Max-Age=%lld; Path=/\"\n",
                name, (long long)sticky);
        const json_t *check = json_object_get(be, "check");
        if (barge_json_bool(check, "enabled", true)) {
            fprintf(b, "    timeout check %llds\n", (long long)barge_json_int(check, "timeout", 5));
            if (barge_streq(barge_json_str(check, "protocol", "HTTP"), "HTTP")) {
                fprintf(b, "    option httpchk GET %s\n    http-check expect rstatus ",
                        barge_json_str(check, "path", "/"));
                append_codes(b, barge_json_str(check, "codes", "200"));
                fputs("\n", b);
            }
        }
        if (!servers)
            continue;
        const char *sname;
        json_t *srv;
        json_object_foreach(barge_json_object(be, "servers"), sname, srv)
        {
            _cleanup_free_ char *args = barge_haproxy_server_args(be, srv);
            fprintf(b, "    server %s %s%s\n", sname, args,
                    barge_json_bool(srv, "drain", false) ? " weight 0" : "");
        }
    }
    fclose(b);
    return text;
}

pid_t barge_haproxy_start(const char *path, const char *config, const char *log_path, pid_t old_pid,
                          const char *old_sock, struct barge_error **err)
{
    if (barge_write_file_atomic(path, config, strlen(config), 0600) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s'", log_path);
    char old[24];
    snprintf(old, sizeof(old), "%d", (int)old_pid);
    pid_t pid = fork();
    if (pid < 0) {
        close(log);
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot start haproxy");
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(log, 1);
        dup2(log, 2);
        /* Its own process group: a terminal's ^C for barged is barged's to
         * handle, and barged stops its load balancers itself. */
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (old_pid > 0 && old_sock && access(old_sock, F_OK) == 0)
            execlp("haproxy", "haproxy", "-db", "-f", path, "-x", old_sock, "-sf", old,
                   (char *)NULL);
        else if (old_pid > 0)
            execlp("haproxy", "haproxy", "-db", "-f", path, "-sf", old, (char *)NULL);
        else
            execlp("haproxy", "haproxy", "-db", "-f", path, (char *)NULL);
        dprintf(2, "cannot run haproxy: %s\n", strerror(errno));
        _exit(127);
    }
    close(log);
    return pid;
}

int barge_haproxy_command(const char *sock, const char *cmd, char **reply, struct barge_error **err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(sa.sun_path))
        return barge_error_set(err, BARGE_ERR_INTERNAL, "socket path '%s' is too long", sock);
    strcpy(sa.sun_path, sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "socket");
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot reach haproxy at '%s'", sock);
        close(fd);
        return -1;
    }
    _cleanup_free_ char *line = barge_xasprintf("%s\n", cmd);
    size_t off = 0, len = strlen(line);
    while (off < len) {
        ssize_t n = write(fd, line + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "writing to '%s'", sock);
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *b = open_memstream(&text, &size);
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "reading from '%s'", sock);
            fclose(b);
            free(text);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        fwrite(chunk, 1, (size_t)n, b);
    }
    close(fd);
    fclose(b);
    *reply = text;
    return 0;
}

/* Splits one CSV line of `show stat` (no quoting in these fields) into a JSON
 * array of strings. */
pid_t barge_haproxy_pid(const char *sock, struct barge_error **err)
{
    _cleanup_free_ char *reply = NULL;
    if (barge_haproxy_command(sock, "show info", &reply, err) < 0)
        return -1;
    const char *at = strstr(reply, "\nPid: ");
    if (!at)
        return barge_error_set(err, BARGE_ERR_IO, "haproxy at '%s' did not say its pid", sock);
    return (pid_t)atoi(at + strlen("\nPid: "));
}

static json_t *csv_fields(const char *line, size_t len)
{
    json_t *a = json_array();
    const char *p = line, *end = line + len;
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c)
            c = end;
        json_array_append_new(a, json_stringn(p, (size_t)(c - p)));
        p = c + 1;
    }
    return a;
}

static int column(const json_t *header, const char *name)
{
    size_t i;
    json_t *h;
    json_array_foreach((json_t *)header, i, h)
    {
        if (barge_streq(json_string_value(h), name))
            return (int)i;
    }
    return -1;
}

json_t *barge_haproxy_servers(const char *sock, struct barge_error **err)
{
    _cleanup_free_ char *text = NULL;
    if (barge_haproxy_command(sock, "show stat", &text, err) < 0)
        return NULL;
    if (strncmp(text, "# ", 2) != 0) {
        barge_error_set(err, BARGE_ERR_IO, "haproxy answered 'show stat' with '%.80s'", text);
        return NULL;
    }
    json_t *out = json_object();
    _cleanup_json_ json_t *header = NULL;
    const char *p = text + 2;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            json_t *f = csv_fields(p, len);
            if (!header) {
                header = f;
            } else {
                const char *px = json_string_value(json_array_get(f, 0));
                const char *sv = json_string_value(json_array_get(f, 1));
                if (px && sv && strcmp(sv, "FRONTEND") != 0 && strcmp(sv, "BACKEND") != 0) {
                    json_t *be = json_object_get(out, px);
                    if (!be) {
                        be = json_object();
                        json_object_set_new(out, px, be);
                    }
                    json_t *s = json_object();
                    const char *const keep[] = {"status", "check_status", "scur", "qcur"};
                    for (size_t k = 0; k < BARGE_ARRAY_SIZE(keep); k++) {
                        int col = column(header, keep[k]);
                        json_t *v = col >= 0 ? json_array_get(f, (size_t)col) : NULL;
                        json_object_set_new(s, keep[k], json_string(v ? json_string_value(v) : ""));
                    }
                    json_object_set_new(be, sv, s);
                }
                json_decref(f);
            }
        }
        p += len + (nl ? 1 : 0);
    }
    return out;
}

/* HAProxy refuses a stats socket path longer than this (it binds a
 * temporary name with ".<pid>.tmp" appended first). */
#define SOCKET_PATH_MAX 97

char *barge_haproxy_socket_path(const char *path, const char *tag)
{
    if (strlen(path) < SOCKET_PATH_MAX)
        return barge_xstrdup(path);
    char digest[65];
    barge_sha256_hex(path, strlen(path), digest);
    if (mkdir("/run/barge", 0700) < 0 && errno != EEXIST)
        barge_warn("cannot create /run/barge for HAProxy sockets: %s", strerror(errno));
    return barge_xasprintf("/run/barge/%s-%.24s.sock", tag, digest);
}
