"""netns.py - the suite's own little network for the real-link run.

Three network namespaces made by the suite and removed by it:

    <p>-snd  10.77.1.1 --veth, tbf 100mbit-- 10.77.1.2  <p>-rly  10.77.2.1
                                                              |
                                              veth, tbf 100mbit
                                                              |
                                                   <p>-rcv  10.77.2.2

Each veth end is shaped on egress with `tc qdisc ... tbf`, so both
directions of both hops run at the link rate.  The relay namespace
forwards (ip_forward is per namespace), so a direct copy from sender to
receiver crosses the same two links a relayed copy does.  Addresses exist
only inside these namespaces; both veth ends are created directly inside
them, so nothing appears in the host's own namespace at any time.
"""
import os
import subprocess

from . import procs

NET1 = ("10.77.1.1", "10.77.1.2")  # snd, rly
NET2 = ("10.77.2.1", "10.77.2.2")  # rly, rcv


def _ip(*args, check=True):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class Net:
    """Create with Net(prefix, rate); .ok tells if it exists, .why if not."""

    def __init__(self, prefix, rate="100mbit"):
        self.snd, self.rly, self.rcv = prefix + "-snd", prefix + "-rly", prefix + "-rcv"
        self.rate = rate
        self.made = []
        self.ok = False
        self.why = ""
        if os.geteuid() != 0:
            self.why = "not root: network namespaces need CAP_SYS_ADMIN"
            return
        procs.on_cleanup(self.remove)
        try:
            self._make()
            self.ok = True
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            self.why = "could not build the namespaces: %s" % e
            self.remove()

    def _make(self):
        for ns in (self.snd, self.rly, self.rcv):
            _ip("ip", "netns", "add", ns)
            self.made.append(ns)
            _ip("ip", "-n", ns, "link", "set", "lo", "up")
        _ip("ip", "link", "add", "name", "fb-s0", "netns", self.snd, "type", "veth",
            "peer", "name", "fb-r0", "netns", self.rly)
        _ip("ip", "link", "add", "name", "fb-r1", "netns", self.rly, "type", "veth",
            "peer", "name", "fb-c0", "netns", self.rcv)
        for ns, dev, addr in ((self.snd, "fb-s0", NET1[0]), (self.rly, "fb-r0", NET1[1]),
                              (self.rly, "fb-r1", NET2[0]), (self.rcv, "fb-c0", NET2[1])):
            _ip("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
            _ip("ip", "-n", ns, "link", "set", dev, "up")
            # burst must hold a GSO super-packet (64 KiB) or tbf drops it.
            _ip("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", self.rate,
                "burst", "128kb", "latency", "50ms")
        _ip("ip", "-n", self.snd, "route", "add", "10.77.2.0/24", "via", NET1[1])
        _ip("ip", "-n", self.rcv, "route", "add", "10.77.1.0/24", "via", NET2[0])
        _ip("ip", "netns", "exec", self.rly, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    def exec_prefix(self, ns):
        return ["ip", "netns", "exec", ns]

    def remove(self):
        while self.made:
            ns = self.made.pop()
            r = _ip("ip", "netns", "del", ns, check=False)
            if r.returncode != 0:
                procs.warn("ip netns del failed", ns=ns, err='"%s"' % r.stderr.strip())
        self.ok = False
