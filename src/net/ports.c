/* Host ports: which are taken and which one a port mapping without a host
 * port gets. Like the ECS agent, barge picks dynamic ports itself from the
 * host's ephemeral range rather than letting the kernel do it: the port has
 * to be known before the DNAT rule that publishes it exists, and nothing
 * listens on it on the host. A port counts as taken when a socket of the host
 * uses it or a NAT rule (ours, another agent's, Docker's) already forwards
 * it. Everything here is pure; cni.c feeds it /proc and iptables-save. */
#include <ctype.h>
#include <string.h>

#include "net/net.h"

void barge_net_portset_add(struct barge_net_portset *s, uint16_t port)
{
    s->bits[port / 64] |= UINT64_C(1) << (port % 64);
}

bool barge_net_portset_has(const struct barge_net_portset *s, uint16_t port)
{
    return (s->bits[port / 64] >> (port % 64)) & 1;
}

static bool parse_port(const char **p, uint16_t *out)
{
    const char *s = *p;
    unsigned long v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (unsigned long)(*s++ - '0');
        if (v > 65535)
            return false;
    }
    *out = (uint16_t)v;
    *p = s;
    return true;
}

int barge_net_port_range_parse(const char *text, uint16_t *lo, uint16_t *hi)
{
    if (!text)
        return -1;
    const char *p = text + strspn(text, " \t");
    if (!parse_port(&p, lo))
        return -1;
    p += strspn(p, " \t");
    if (*p == '-')
        p++;
    p += strspn(p, " \t");
    if (!parse_port(&p, hi))
        return -1;
    p += strspn(p, " \t\r\n");
    if (*p || *lo == 0 || *hi < *lo)
        return -1;
    return 0;
}

int barge_net_ports_pick(struct barge_net_portset *used, uint16_t lo, uint16_t hi, uint32_t start,
                         size_t n, uint16_t *out)
{
    uint32_t span = (uint32_t)hi - lo + 1;
    size_t got = 0;
    for (uint32_t k = 0; k < span && got < n; k++) {
        uint16_t port = (uint16_t)(lo + (start + k) % span);
        if (barge_net_portset_has(used, port))
            continue;
        bool dup = false;
        for (size_t i = 0; i < got; i++)
            dup = dup || out[i] == port;
        if (!dup)
            out[got++] = port;
    }
    if (got < n)
        return -1;
    for (size_t i = 0; i < n; i++)
        barge_net_portset_add(used, out[i]);
    return 0;
}

void barge_net_ports_parse_proc(const char *table, struct barge_net_portset *s)
{
    if (!table)
        return;
    /* "  sl  local_address rem_address   st ..." then one socket a line:
     * "   0: 0100007F:1F90 00000000:0000 0A ...", the port in hex. Every
     * state counts: a port bound by a connection cannot be published
     * either. */
    const char *line = strchr(table, '\n');
    while (line) {
        line++;
        const char *colon = strchr(line, ':');
        const char *eol = strchr(line, '\n');
        if (!colon || (eol && colon > eol))
            break;
        const char *p = colon + 1;
        p += strspn(p, " ");
        const char *pc = strchr(p, ':');
        if (pc && (!eol || pc < eol)) {
            unsigned long port = strtoul(pc + 1, NULL, 16);
            if (port > 0 && port <= 65535)
                barge_net_portset_add(s, (uint16_t)port);
        }
        line = eol;
    }
}

static void add_port_list(const char *p, struct barge_net_portset *s)
{
    /* "80", "80,443", "8000:8010" (ranges as multiport writes them). */
    for (;;) {
        uint16_t a, b;
        if (!parse_port(&p, &a))
            return;
        b = a;
        if (*p == ':') {
            p++;
            if (!parse_port(&p, &b))
                return;
        }
        for (uint32_t v = a; v <= b; v++)
            barge_net_portset_add(s, (uint16_t)v);
        if (*p != ',')
            return;
        p++;
    }
}

void barge_net_ports_parse_iptables(const char *save, struct barge_net_portset *s)
{
    if (!save)
        return;
    bool in_nat = false;
    for (const char *line = save; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (line[0] == '*')
            in_nat = len == 4 && strncmp(line, "*nat", 4) == 0;
        else if (in_nat && line[0] == '-' && len > 2 && line[1] == 'A') {
            for (const char *p = line; p && p < line + len; p++) {
                p = strstr(p, "--dport");
                if (!p || p >= line + len)
                    break;
                const char *v = p + 7;
                if (*v == 's')
                    v++;
                if (*v != ' ')
                    continue;
                add_port_list(v + 1, s);
            }
        }
        line = eol ? eol + 1 : NULL;
    }
}

int barge_net_cidr_parse(const char *cidr, uint32_t *addr, int *prefix)
{
    if (!cidr)
        return -1;
    unsigned a, b, c, d;
    int pfx;
    char tail;
    if (sscanf(cidr, "%u.%u.%u.%u/%d%c", &a, &b, &c, &d, &pfx, &tail) != 5 || a > 255 || b > 255 ||
        c > 255 || d > 255 || pfx < 8 || pfx > 30)
        return -1;
    uint32_t v = (a << 24) | (b << 16) | (c << 8) | d;
    uint32_t mask = pfx == 0 ? 0 : UINT32_MAX << (32 - pfx);
    *addr = v & mask;
    *prefix = pfx;
    return 0;
}

char *barge_net_cidr_gateway(const char *cidr)
{
    uint32_t addr;
    int prefix;
    if (barge_net_cidr_parse(cidr, &addr, &prefix) < 0)
        return NULL;
    uint32_t gw = addr + 1;
    return barge_xasprintf("%u.%u.%u.%u", gw >> 24, (gw >> 16) & 255, (gw >> 8) & 255, gw & 255);
}

bool barge_net_cidr_overlap(uint32_t a, int a_prefix, uint32_t b, int b_prefix)
{
    int p = a_prefix < b_prefix ? a_prefix : b_prefix;
    uint32_t mask = p == 0 ? 0 : UINT32_MAX << (32 - p);
    return (a & mask) == (b & mask);
}
