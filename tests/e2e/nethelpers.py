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


# Other test suites on this host may make namespaces and veths of their own;
# only barge's task networks count here.


def nsfs_mounts():
    """Task namespaces: barge-agent mounts them as <data-dir>/net/<task>.netns."""
    return sorted(line.split()[1] for line in open("/proc/mounts")
                  if line.split()[2] == "nsfs" and line.split()[1].endswith(".netns"))


def veths():
    """Host ends of task veths: the ports of barge bridges."""
    out = []
    for line in run("ip", "-o", "link", "show", "type", "veth").splitlines():
        fields = line.split()
        if "master" in fields and fields[fields.index("master") + 1].startswith("barge"):
            out.append(line.split(":")[1].strip().split("@")[0])
    return sorted(out)


def per_task_rules():
    """NAT and filter rules that belong to one task (chains named by the
    task: CNI-DN-..., CNI-<hash>), ignoring the shared scaffolding."""
    rules = []
    for table in ("nat", "filter"):
        for line in run("iptables-save", "-t", table).splitlines():
            if not line.startswith(("-A", ":")):
                continue
            if "CNI-" not in line:
                continue
            if line.startswith(":") and line[1:].split()[0] in SHARED_CHAINS:
                continue
            if line.startswith("-A") and line.split()[1] in SHARED_CHAINS and "CNI-DN-" not in line:
                continue
            if line.startswith("-A") and line.split()[1] in ("PREROUTING", "OUTPUT", "POSTROUTING") \
                    and any(c in line for c in SHARED_CHAINS):
                continue
            rules.append(f"{table}: {line}")
    return sorted(rules)


def leases():
    out = []
    for path in glob.glob(os.path.join(IPAM_DIR, "barge*", "*")):
        name = os.path.basename(path)
        if name == "lock" or name.startswith("last_reserved_ip"):
            continue
        out.append(path)
    return sorted(out)


def snapshot():
    return {"nsfs": nsfs_mounts(), "veth": veths(), "rules": per_task_rules(),
            "leases": leases()}


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
