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


def nsfs_mounts():
    return sorted(line.split()[1] for line in open("/proc/mounts") if line.split()[2] == "nsfs")


def veths():
    return sorted(line.split(":")[1].strip().split("@")[0]
                  for line in run("ip", "-o", "link", "show", "type", "veth").splitlines())


def per_task_rules():
    """NAT and filter rules that belong to one task (chains named by the
    task: CNI-DN-..., CNI-<hash>), ignoring the shared scaffolding."""
    rules = []
    for table in ("nat", "filter"):
        for line in run("iptables-save", "-t", table).splitlines():
            if not line.startswith(("-A", ":")):
                continue
            if "CNI-" not in line and "barge" not in line:
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
    for path in glob.glob(os.path.join(IPAM_DIR, "*", "*")):
        name = os.path.basename(path)
        if name == "lock" or name.startswith("last_reserved_ip"):
            continue
        out.append(path)
    return sorted(out)


def snapshot():
    return {"nsfs": nsfs_mounts(), "veth": veths(), "rules": per_task_rules(),
            "leases": leases()}


def bridges():
    return sorted(line.split(":")[1].strip()
                  for line in run("ip", "-o", "link", "show", "type", "bridge").splitlines())


class Scaffolding:
    """What task networks share and keep (the bridge, its IPAM directory,
    portmap's chains, ip_forward), as found before a test session, so that the
    session can remove what it added."""

    def __init__(self):
        self.bridges = bridges()
        self.had_chains = shared_chains_present()
        self.cni_dir_existed = os.path.isdir(os.path.dirname(IPAM_DIR))
        self.ipam_dirs = set(os.listdir(IPAM_DIR)) if os.path.isdir(IPAM_DIR) else set()
        self.ip_forward = open("/proc/sys/net/ipv4/ip_forward").read().strip()

    def restore(self):
        remove_scaffolding(self.bridges, self.had_chains)
        if os.path.isdir(IPAM_DIR):
            for d in set(os.listdir(IPAM_DIR)) - self.ipam_dirs:
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
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(self.ip_forward)


def leases_in(path):
    return [f for f in os.listdir(path) if f != "lock" and not f.startswith("last_reserved_ip")]


def remove_scaffolding(bridges_before, had_chains):
    """Removes bridges made since bridges_before and, when they were not there
    before, portmap's shared chains."""
    for b in bridges():
        if b not in bridges_before:
            subprocess.run(["ip", "link", "del", b], capture_output=True)
    if had_chains:
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
