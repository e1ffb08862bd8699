"""treenet.py - small networks of namespaces for relay trees.

Used by the `tree` benchmark case (suite.py) and by the edge test
(tests/relay/edge_netns.py).  Every namespace is named PREFIX-<node>; every
veth is created with both ends directly inside namespaces (nothing appears
in the host's own namespace), addresses exist only inside them, and
remove() kills whatever still runs in them (`ip netns pids`) before it
deletes them, so a failed run leaves nothing behind.

Two kinds of link:
  p2p(a, b, net, rate)        a veth a <-> b, a = net.1, b = net.2
  site(up, members, net, rate)
      a bridge namespace (a switch) with one veth to `up` (net.1) and one to
      each member (net.10, net.11, ...): one shared link from `up`.
rate shapes each veth end's egress with tbf (both directions); None leaves
the link unshaped.
"""
import os
import signal
import subprocess
import time


def _run(args, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def stale(prefix_root):
    """Remove namespaces PREFIX_ROOT<pid>-* left by a run whose process is gone."""
    r = _run(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(prefix_root):
            continue
        pid = name[len(prefix_root):].split("-")[0]
        if pid.isdigit() and not os.path.exists("/proc/%s" % pid):
            _kill_ns(name)
            _run(["ip", "netns", "del", name], check=False)


def _kill_ns(ns):
    r = _run(["ip", "netns", "pids", ns], check=False)
    for p in r.stdout.split():
        try:
            os.kill(int(p), signal.SIGKILL)
        except (OSError, ValueError):
            pass


class TreeNet:
    def __init__(self, prefix):
        self.prefix = prefix
        self.made = []
        self.nodes = {}
        self.nveth = {}

    def ns(self, node):
        """The namespace of node, created on first use."""
        if node not in self.nodes:
            name = "%s-%s" % (self.prefix, node)
            _run(["ip", "netns", "add", name])
            self.made.append(name)
            _run(["ip", "-n", name, "link", "set", "lo", "up"])
            self.nodes[node] = name
        return self.nodes[node]

    def _dev(self, node):
        k = self.nveth.get(node, 0)
        self.nveth[node] = k + 1
        return "v%d" % k

    def _veth(self, a, b, rate):
        na, nb = self.ns(a), self.ns(b)
        da, db = self._dev(a), self._dev(b)
        _run(["ip", "link", "add", "name", da, "netns", na, "type", "veth", "peer", "name", db,
              "netns", nb])
        for ns, dev in ((na, da), (nb, db)):
            if rate:
                # burst must hold a GSO super-packet (64 KiB) or tbf drops it.
                _run(["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                      "burst", "128kb", "latency", "50ms"])
        return da, db

    def _addr(self, node, dev, addr):
        ns = self.ns(node)
        _run(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev])
        _run(["ip", "-n", ns, "link", "set", dev, "up"])

    def p2p(self, a, b, net, rate):
        """Returns (a's address, b's address, a's device, b's device)."""
        da, db = self._veth(a, b, rate)
        self._addr(a, da, net + ".1")
        self._addr(b, db, net + ".2")
        return net + ".1", net + ".2", da, db

    def site(self, up, members, net, rate):
        """Returns (up's address, [members' addresses], up's device)."""
        sw = "sw%d" % len([n for n in self.nodes if n.startswith("sw")])
        ns = self.ns(sw)
        _run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", ns, "link", "set", "br0", "up"])
        addrs = []
        for i, node in enumerate([up] + list(members)):
            dn, ds = self._veth(node, sw, rate)
            addr = "%s.%d" % (net, 1 if i == 0 else 9 + i)
            self._addr(node, dn, addr)
            _run(["ip", "-n", ns, "link", "set", ds, "master", "br0"])
            _run(["ip", "-n", ns, "link", "set", ds, "up"])
            if i == 0:
                updev = dn
            addrs.append(addr)
        return addrs[0], addrs[1:], updev

    def exec_prefix(self, node):
        return ["ip", "netns", "exec", self.ns(node)]

    def link(self, node, dev, up):
        _run(["ip", "-n", self.ns(node), "link", "set", dev, "up" if up else "down"])

    def remove(self):
        while self.made:
            ns = self.made.pop()
            _kill_ns(ns)
            for _ in range(20):
                if _run(["ip", "netns", "del", ns], check=False).returncode == 0:
                    break
                time.sleep(0.05)
        self.nodes = {}
