#!/usr/bin/env python3
"""edge_netns.py - edge relays across network namespaces (ctest label netns).

    src --200mbit-- origin --200mbit-- e1 --site-- r1, r2
                           --200mbit-- e2 --site-- r3, r4

Each node is its own namespace (bench/lib/fbench/treenet.py); every process
runs under `ip netns exec`.  The sender (in src) sends a 64 MiB file while
e1's upstream link goes down for a second, then a second 64 MiB file during
which the origin is killed (SIGKILL) and restarted; the sender reconnects by
itself and continues the file.  Every receiver must get both files byte for byte (SHA-256),
`ferry recv` checks every frame's CRC, sequence and each file's digest, and
each edge must have resumed upstream after the restart.

Needs root (exit 77 = skipped otherwise).  Bounded: gives up after 100 s.
Removes its namespaces and processes on every exit, also on failure; a
run killed outright leaves namespaces that the next run removes.

usage: edge_netns.py FERRYD FERRY SRC_DIR
"""
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
DEADLINE = 100.0
MiB = 1 << 20
SIZE = 64 * MiB
RATE = "200mbit"
PORT = 7420


class Fail(Exception):
    pass


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    ferryd, ferry, src = sys.argv[1:4]
    if os.geteuid() != 0:
        print("SKIP: edge_netns needs root (ip netns add, veth, tc); not root here")
        return SKIP
    sys.path.insert(0, os.path.join(src, "bench", "lib"))
    from fbench import treenet

    root = "fyedge"
    treenet.stale(root)
    net = treenet.TreeNet("%s%d" % (root, os.getpid()))
    tmp = tempfile.mkdtemp(prefix="ferry-edge-netns-")
    procs = []
    t0 = time.monotonic()

    def left():
        return DEADLINE - (time.monotonic() - t0)

    def start(node, args, log):
        f = open(os.path.join(tmp, log), "ab")
        p = subprocess.Popen(net.exec_prefix(node) + args, stdout=f, stderr=f,
                             start_new_session=True)
        f.close()
        procs.append(p)
        return p

    def daemon(node, extra):
        d = os.path.join(tmp, node)
        os.makedirs(d, exist_ok=True)
        log = node + ".log"
        size0 = os.path.getsize(os.path.join(tmp, log)) if os.path.exists(
            os.path.join(tmp, log)) else 0
        p = start(node, [ferryd, "--listen", "0.0.0.0:%d" % PORT, "--data", d, "--threads", "2",
                         "--fsync", "never"] + extra, log)
        while left() > 0:
            with open(os.path.join(tmp, log), "rb") as f:
                f.seek(size0)
                if b"listening=" in f.read():
                    return p
            if p.poll() is not None:
                raise Fail("%s exited at start (%s)" % (node, p.returncode))
            time.sleep(0.05)
        raise Fail("%s did not start" % node)

    def wait(p, what, limit):
        try:
            return p.wait(timeout=max(0.1, min(limit, left())))
        except subprocess.TimeoutExpired:
            raise Fail("%s did not finish in time" % what)

    def log_count(node, s):
        with open(os.path.join(tmp, node + ".log"), "rb") as f:
            return f.read().count(s.encode())

    def stop_all():
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass

    def on_signal(signum, frame):
        raise Fail("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rc = 1
    try:
        ups = {}
        for i, e in enumerate(("e1", "e2")):
            o_addr, e_addr, o_dev, e_dev = net.p2p("origin", e, "10.78.%d" % (i + 1), RATE)
            ups[e] = (o_addr, e_dev)
        # The sender has its own link, so the origin too is mid-file when it dies.
        _, src_origin, _, _ = net.p2p("src", "origin", "10.78.9", RATE)
        srv = "%s:%d" % (src_origin, PORT)
        rx = {}
        for i, (e, rs) in enumerate((("e1", ("r1", "r2")), ("e2", ("r3", "r4")))):
            e_addr, _, _ = net.site(e, rs, "10.79.%d" % (i + 1), None)
            for r in rs:
                rx[r] = e_addr
        files = {}
        for name, seed in (("a.bin", 1), ("b.bin", 2)):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(os.urandom(SIZE))
            files[name] = sha(path)

        origin = daemon("origin", [])
        for e in ("e1", "e2"):
            daemon(e, ["--upstream", "%s:%d" % (ups[e][0], PORT), "--upstream-linger", "5s"])
        recv = {}
        for r, addr in rx.items():
            recv[r] = start(r, [ferry, "recv", "--server", "%s:%d" % (addr, PORT), "--channel",
                                "tree", "--out", os.path.join(tmp, "out-" + r), "--from-start",
                                "--count", "2"], r + ".log")
        time.sleep(0.5)  # the edges subscribe upstream as their receivers arrive

        # File a: e1's upstream link goes down for a second mid-file.
        snd = start("src", [ferry, "send", "--server", srv, "--channel",
                               "tree", os.path.join(tmp, "a.bin")], "send-a.log")
        time.sleep(1.0)
        net.link("e1", ups["e1"][1], False)
        time.sleep(1.0)
        net.link("e1", ups["e1"][1], True)
        if wait(snd, "send a", 60) != 0:
            raise Fail("send a failed: see send-a.log")

        # File b: the origin dies mid-file and comes back; the sender (it
        # reconnects by itself) continues the file, the edges resume upstream.
        snd = start("src", [ferry, "send", "--server", srv, "--channel",
                               "tree", os.path.join(tmp, "b.bin")], "send-b.log")
        time.sleep(1.2)
        os.killpg(origin.pid, signal.SIGKILL)
        origin.wait(timeout=5)
        time.sleep(0.5)
        origin = daemon("origin", [])
        if wait(snd, "send b", 60) != 0:
            raise Fail("send b failed: see send-b.log")

        for r, p in recv.items():
            if wait(p, "receiver " + r, 60) != 0:
                raise Fail("receiver %s exited %s: see %s.log" % (r, p.returncode, r))
            for name, digest in files.items():
                got = sha(os.path.join(tmp, "out-" + r, name))
                if got != digest:
                    raise Fail("%s: %s differs (sha256 %s, sent %s)" % (r, name, got, digest))
        for e in ("e1", "e2"):
            if log_count(e, 'msg="upstream connected"') < 2:
                raise Fail("%s did not reconnect upstream after the origin restart" % e)
            if log_count(e, 'msg="upstream stream refused"'):
                raise Fail("%s refused its upstream's stream" % e)
        for e in ("e1", "e2"):
            print("%s: upstream lost %d times, connected %d times, files abandoned upstream %d"
                  % (e, log_count(e, 'msg="upstream lost"'),
                     log_count(e, 'msg="upstream connected"'),
                     log_count(e, 'msg="upstream file abandoned"')))
        print("ok: 2 x %d MiB at 4 receivers through 2 edges, link cut and origin restart, "
              "%.1f s" % (SIZE // MiB, time.monotonic() - t0))
        rc = 0
    except (Fail, RuntimeError, OSError, subprocess.SubprocessError) as e:
        print("FAIL: %s" % e)
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".log"):
                with open(os.path.join(tmp, name), "rb") as f:
                    tail = f.read()[-3000:].decode(errors="replace")
                print("---- %s (tail)\n%s" % (name, tail))
    finally:
        stop_all()
        net.remove()
        subprocess.run(["rm", "-rf", tmp])
    return rc


if __name__ == "__main__":
    sys.exit(main())
