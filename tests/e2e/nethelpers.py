"""Helpers for the networking suites: what task networks leave on the host
(namespaces, veths, NAT rules, IPAM leases), so that a suite can check it left
nothing behind, and removal of the shared scaffolding (the bridge, portmap's
top-level chains) a suite created."""
import glob
import os
import subprocess

IPAM_DIR = "/var/lib/cni/networks"
# portmap's chains shared by every task; they stay like Docker's DOCKER chain.
SHARED_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout


class Scope:
    """What one test session's task networks are made of: its bridge (and so
    its IPAM directory and the rules naming it), its subnet and the directory
    its agents keep their namespaces in. Other suites may run on this host at
    the same time; their namespaces, veths and rules are none of ours."""

    def __init__(self, bridge, subnet, root):
        self.bridge = bridge
        self.subnet = subnet
        self.prefix = subnet.rsplit(".", 1)[0] + "."  # "10.214.7." of a /24
        self.root = str(root)

    @property
    def agent_args(self):
        return ["--bridge", self.bridge, "--bridge-subnet", self.subnet]


def free_scope(name, octet, root):
    """A Scope for one suite: bridge NAME<n> with subnet 10.OCTET.<n>.0/24,
    n picked from the pid (so that suites on this host at the same time
    differ) and moved on past any subnet an interface already has, e.g. the
    bridge another suite of this process left for its session. Each suite
    has its own OCTET, so suites running side by side in pytest-xdist
    workers never pick the same subnet."""
    have = run("ip", "-o", "-4", "addr", "show")
    start = (os.getpid() + 131) % 250
    for i in range(250):
        n = (start + i) % 250
        if f" 10.{octet}.{n}." not in have:
            break
    return Scope(f"{name}{n}", f"10.{octet}.{n}.0/24", root)


def nsfs_mounts(scope):
    """Task namespaces: barge-agent mounts them as <data-dir>/net/<task>.netns."""
    return sorted(line.split()[1] for line in open("/proc/mounts")
                  if line.split()[2] == "nsfs" and line.split()[1].endswith(".netns")
                  and line.split()[1].startswith(scope.root))


def veths(scope):
    """Host ends of task veths: the ports of the bridge."""
    out = []
    for line in run("ip", "-o", "link", "show", "type", "veth").splitlines():
        fields = line.split()
        if "master" in fields and fields[fields.index("master") + 1] == scope.bridge:
            out.append(line.split(":")[1].strip().split("@")[0])
    return sorted(out)


def per_task_rules(scope=None):
    """NAT and filter rules that belong to one task (the bridge plugin's
    masquerade chain names the network; portmap's DNAT rules name the task's
    address), ignoring the shared scaffolding. Without a scope: every task's."""
    rules = []
    for table in ("nat", "filter"):
        for line in run("iptables-save", "-t", table).splitlines():
            if not line.startswith("-A") or "CNI-" not in line:
                continue
            chain = line.split()[1]
            if chain in SHARED_CHAINS and "CNI-DN-" not in line:
                continue
            if chain in ("PREROUTING", "OUTPUT", "POSTROUTING") and \
                    any(c in line for c in SHARED_CHAINS):
                continue
            if scope and f'name: \\"{scope.bridge}\\"' not in line and \
                    f"--to-destination {scope.prefix}" not in line and \
                    f"-s {scope.prefix}" not in line:
                continue
            rules.append(f"{table}: {line}")
    return sorted(rules)


def leases(scope):
    out = []
    for path in glob.glob(os.path.join(IPAM_DIR, scope.bridge, "*")):
        name = os.path.basename(path)
        if name == "lock" or name.startswith("last_reserved_ip"):
            continue
        out.append(path)
    return sorted(out)


def snapshot(scope):
    return {"nsfs": nsfs_mounts(scope), "veth": veths(scope), "rules": per_task_rules(scope),
            "leases": leases(scope)}


def bridges():
    return sorted(name for name in (line.split(":")[1].strip() for line in
                                    run("ip", "-o", "link", "show", "type", "bridge").splitlines())
                  if name.startswith("barge"))


class Scaffolding:
    """What task networks share and keep (the bridge, its IPAM directory,
    portmap's chains), as found before a test session, so that the session can
    remove what it added. net.ipv4.ip_forward, which the bridge plugin turns
    on, stays on: other suites on the host may route through it."""

    def __init__(self):
        self.bridges = bridges()
        self.had_chains = shared_chains_present()
        self.cni_dir_existed = os.path.isdir(os.path.dirname(IPAM_DIR))
        self.ipam_dirs = set(os.listdir(IPAM_DIR)) if os.path.isdir(IPAM_DIR) else set()

    def restore(self):
        remove_scaffolding(self.bridges, self.had_chains)
        if os.path.isdir(IPAM_DIR):
            for d in {d for d in os.listdir(IPAM_DIR) if d.startswith("barge")} - self.ipam_dirs:
                path = os.path.join(IPAM_DIR, d)
                if not leases_in(path):
                    for f in os.listdir(path):
                        os.unlink(os.path.join(path, f))
                    os.rmdir(path)
        if not self.cni_dir_existed:
            for d in (IPAM_DIR, os.path.dirname(IPAM_DIR)):
                try:
                    os.rmdir(d)
                except OSError:
                    break


def leases_in(path):
    return [f for f in os.listdir(path) if f != "lock" and not f.startswith("last_reserved_ip")]


def remove_scaffolding(bridges_before, had_chains):
    """Removes bridges made since bridges_before and, when they were not there
    before, portmap's shared chains; never while a task (of another session)
    still uses them."""
    busy = run("ip", "-o", "link", "show", "type", "veth")
    for b in bridges():
        if b not in bridges_before and f"master {b} " not in busy:
            subprocess.run(["ip", "link", "del", b], capture_output=True)
    if had_chains or per_task_rules():
        return
    for chain, jump in (("PREROUTING", "CNI-HOSTPORT-DNAT"), ("OUTPUT", "CNI-HOSTPORT-DNAT")):
        subprocess.run(["iptables", "-t", "nat", "-D", chain, "-m", "addrtype", "--dst-type",
                        "LOCAL", "-j", jump], capture_output=True)
    subprocess.run(["iptables", "-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment",
                    "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"],
                   capture_output=True)
    for chain in SHARED_CHAINS:
        subprocess.run(["iptables", "-t", "nat", "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-t", "nat", "-X", chain], capture_output=True)


def shared_chains_present():
    return any(f":{c} " in run("iptables-save", "-t", "nat") for c in SHARED_CHAINS)
