"""Hosts for the e2e suites: network namespaces joined by a bridge in the root
namespace, so that agents reach barged over a network they can lose.

    net = HostNetwork().start()              # bridge with 10.213.X.1/24
    host = net.add_host()                # namespace with 10.213.X.11/24 on eth0
    subprocess.Popen(host.prefix + ["build/barge-agent", ...])
    net.partition(host) / net.heal(host) # the host's link down / up
    net.close_hosts()                    # kills what runs in the namespaces, deletes them
    net.close()                          # and the bridge

Only addresses in namespaces and on the bridge made here are used; X is a /24
of 10.213.0.0/16 that no interface of this machine has. Programs enter a
namespace with nsenter --net (not `ip netns exec`, which also remounts /sys
and so hides the cgroup file system that containers need). close() removes
everything even when a test failed.
"""

import os
import signal
import subprocess
import time


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True,
                          timeout=30)


class Host:
    def __init__(self, net, index):
        self.net = net
        self.index = index
        self.ns = "barge-%s-h%d" % (net.tag, index)
        self.veth = "bv%sh%d" % (net.tag, index)  # root side; eth0 inside
        self.addr = "%s.%d" % (net.prefix, 10 + index)

    @property
    def prefix(self):
        """Runs a command inside the host's network namespace."""
        return ["nsenter", "--net=/run/netns/%s" % self.ns, "--"]


class HostNetwork:
    def __init__(self):
        self.tag = "%d" % (os.getpid() % 100000)
        self.bridge = "bb%s" % self.tag
        self.prefix = None
        self.hosts = []

    @property
    def gateway(self):
        """The bridge's address: barged listens here for the hosts."""
        return "%s.1" % self.prefix

    def _free_subnet(self):
        used = ip("-o", "-4", "addr", "show").stdout
        start = os.getpid() % 200
        for i in range(250):
            x = 20 + (start + i) % 230
            if ("10.213.%d." % x) not in used:
                return "10.213.%d" % x
        raise RuntimeError("no free 10.213.X.0/24 for the test network")

    def start(self):
        try:
            self.prefix = self._free_subnet()
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", "%s/24" % self.gateway, "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except Exception:
            self.close()
            raise
        return self

    def add_host(self):
        h = Host(self, len(self.hosts) + 1)
        self.hosts.append(h)
        ip("netns", "add", h.ns)
        ip("link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
        ip("link", "set", h.veth, "master", self.bridge, "up")
        ip("-n", h.ns, "addr", "add", "%s/24" % h.addr, "dev", "eth0")
        ip("-n", h.ns, "link", "set", "eth0", "up")
        ip("-n", h.ns, "link", "set", "lo", "up")
        return h

    def partition(self, host):
        ip("link", "set", host.veth, "down")

    def heal(self, host):
        ip("link", "set", host.veth, "up")

    def close_hosts(self):
        """Removes the hosts (and what runs in them), keeps the bridge."""
        for h in self.hosts:
            pids = ip("netns", "pids", h.ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            if pids:
                time.sleep(0.2)
            ip("netns", "del", h.ns, check=False)
            ip("link", "del", h.veth, check=False)
        self.hosts = []

    def close(self):
        self.close_hosts()
        ip("link", "del", self.bridge, check=False)
