"""cluster.py - a three-relay cluster on etcd against a single relay (cluster).

Everything on loopback (no namespaces): one etcd-server (Debian's
etcd-server, the flags tests/common/tc_etcd.c uses) for the whole case,
started and stopped by PID like every other process; each cluster run gets
its own key prefix (--cluster-prefix) and three fresh ferryd (n1..n3,
--replicas 2, the default TTL and acks), stopped right after.

cluster_over_single: the fanout case's 1 -> 4 shape (ferry-swarm, one
sender, 64 KiB packets, --verify content) against the cluster's leader (n1:
the swarm's first hello makes it the channel's first leader; n2 and n3 mirror
it and hold its acks) and against one ferryd with the same settings and no
--cluster, reps interleaved (single, cluster, single, cluster, ...); the
median cluster run's aggregate MB/s over the median single one's.

failover_s: a `ferry send --server n1,n2,n3` loop of small files on a fresh
cluster at the default TTL; once cluster_files files are acknowledged the
leader is killed with SIGKILL mid-stream (the loop goes on); the time from
the kill to the first file-end acknowledged after it (the first `--json`
"file" record, stamped as it arrives, not counting the ones read within
0.1 s of the kill: those left the old leader before it died) is
failover_s, reported with the TTL (failover_ttl_s).  Then every acknowledged file is read back from
the new leader (`ferry recv --stored --from-start`, checked frame by frame
and by SHA-256): cluster_lost_acked counts the acknowledged files it lacks,
cluster_mismatched those whose SHA-256 differs from what was sent.
"""
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time

from . import procs, swarm
from . import suite as _suite

MiB = 1 << 20
ETCD = "/usr/bin/etcd"
DEFAULT_TTL = 5  # ferryd's --cluster-ttl default (docs/cluster.md)
IN_FLIGHT_S = 0.1  # acks read this soon after the kill left the old leader before it


def _free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class _Etcd:
    def __init__(self, work, logs):
        cp, pp = _free_port(), _free_port()
        self.url = "http://127.0.0.1:%d" % cp
        peer = "http://127.0.0.1:%d" % pp
        self.log = os.path.join(logs, "cluster.etcd.err")
        with open(self.log, "wb") as err:
            self.p = procs.spawn([ETCD, "--name", "fb", "--data-dir", os.path.join(work, "etcd"),
                                  "--listen-client-urls", self.url, "--advertise-client-urls",
                                  self.url, "--listen-peer-urls", peer,
                                  "--initial-advertise-peer-urls", peer, "--initial-cluster",
                                  "fb=" + peer], stdout=err, stderr=err)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                if b"ready to serve client requests" in f.read():
                    return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        procs.stop(self.p)
        raise RuntimeError("etcd did not start (see %s)" % self.log)

    def stop(self):
        procs.stop(self.p)


class _Cluster:
    """Three ferryd on loopback under one prefix; .addrs in n1..n3 order."""

    def __init__(self, suite, etcd, tag, ttl=None):
        self.suite, self.tag = suite, tag
        self.root = tempfile.mkdtemp(prefix="cluster-%s-" % tag, dir=suite.work)
        self.prefix = "/fb-%s-%d" % (tag, int(time.monotonic() * 1000))
        self.etcd, self.ttl = etcd, ttl
        self.srv = [None] * 3
        self.ports = [_free_port() for _ in range(3)]
        try:
            for i in range(3):
                self.start(i)
        except Exception:
            self.stop()
            raise
        self.addrs = [s.addr for s in self.srv]

    def start(self, i):
        addr = "127.0.0.1:%d" % self.ports[i]
        extra = ["--cluster", self.etcd.url, "--node", "n%d" % (i + 1), "--advertise", addr,
                 "--replicas", "2", "--cluster-prefix", self.prefix]
        if self.ttl:
            extra += ["--cluster-ttl", str(self.ttl)]
        # a restarted node waits up to TTL + 1 s for its old lease first
        s = procs.Server("ferryd", self.suite.bin["ferryd"], os.path.join(self.root, "n%d" % i),
                         self.suite.logs, "%s.n%d" % (self.tag, i + 1), listen=addr, extra=extra)
        self.srv[i] = s
        return s

    def stop(self):
        for s in self.srv:
            if s:
                s.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def cluster_case(suite):
    name = "cluster"
    sh = suite.shape
    size, reps = sh.get("cluster_size", 64 * MiB), sh["reps"]
    title = ("1 -> 4, %d MiB, 64 KiB packets: a three-relay cluster (R = 2) vs one relay"
             % (size // MiB))
    procs.log("case", name=name, title='"%s"' % title, reps=reps)
    c = {"title": title + (" (median of %d)" % reps if reps > 1 else ""), "mode": "bulk",
         "params": suite.base_opts(4, size), "runs": {},
         "repeats": {"single": [], "cluster": []}}
    suite.cases[name] = c
    why = None
    if not (suite.bin["ferryd"] and suite.bin["ferry"]):
        why = "ferryd or ferry not built"
    elif not os.access(ETCD, os.X_OK):
        why = "etcd-server is not installed (%s)" % ETCD
    if why:
        c["skipped"] = why
        suite.skipped.append((name, why))
        suite.save(name)
        return
    etcd = _Etcd(suite.work, suite.logs)
    try:
        timeout = max(60, int(4 * size / 20e6) + 30)
        for i in range(reps):
            for where in ("single", "cluster"):
                r = _throughput_run(suite, etcd, where, "%s_%s%d" % (name, where, i),
                                    suite.base_opts(4, size), timeout)
                c["repeats"][where].append(r)
                c["runs"][where] = _suite.median_run(c["repeats"][where], "mbps_aggregate")
                suite.save(name)
        s1 = _suite._v(c["runs"]["single"], "mbps_aggregate")
        cl = _suite._v(c["runs"]["cluster"], "mbps_aggregate")
        c["cluster_over_single"] = _suite.ratio(cl, s1)
        procs.log("cluster throughput", single_mbps=s1, cluster_mbps=cl,
                  cluster_over_single=c["cluster_over_single"])
        c["runs"]["failover"] = _failover_run(suite, etcd, sh.get("cluster_files", 200))
        f = c["runs"]["failover"]
        procs.log("cluster failover", failover_s=f.get("failover_s"),
                  failover_ttl_s=f.get("ttl_s"), acked=f.get("acked"),
                  lost_acked=f.get("lost_acked"), mismatched=f.get("mismatched"))
    finally:
        etcd.stop()
        suite.save(name)


def _throughput_run(suite, etcd, where, tag, opts, timeout):
    if where == "single":
        return suite.run_one(tag, "ferryd", "bulk", opts, timeout)
    try:
        cl = _Cluster(suite, etcd, tag)
    except (RuntimeError, OSError) as e:
        return {"error": "cluster did not start: %s" % e}
    try:
        res = swarm.run(suite.bin["swarm"], cl.addrs[0], "bulk", opts, timeout, suite.logs, tag)
        res["relays_alive"] = sum(1 for s in cl.srv if s.alive())
        if res["relays_alive"] != 3:
            res.setdefault("error", "a relay exited during the run")
    finally:
        cl.stop()
    if swarm.failed(res) or swarm.integrity(res):
        suite.notes.append("%s: %d integrity failure(s); %s" % (
            tag, swarm.integrity(res), (res.get("error") or "swarm exit %s" % res.get("rc"))
            .splitlines()[0][:200]))
    return res


class _Stamped:
    """A client whose stdout lines are stamped with time.monotonic() as they
    arrive (a thread reads them)."""

    def __init__(self, argv, err_path):
        self.lines = []
        self._err = open(err_path, "ab")
        self.p = procs.spawn(argv, stdout=subprocess.PIPE, stderr=self._err)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            self.lines.append((time.monotonic(), raw.decode(errors="replace")))

    def files(self):
        out = []
        for t, line in list(self.lines):
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("type") == "file":
                out.append((t, o["file"], o["sha256"]))
        return out

    def done(self, timeout):
        rc, _ = procs.wait(self.p, timeout)
        self.t.join(timeout=5)
        self._err.close()
        return rc


def _failover_run(suite, etcd, nfiles):
    """kill -9 of the leader under a stream of small files; see the module
    comment.  Bounded: the sender loop by count and by time."""
    ferry = suite.bin["ferry"]
    rnd = random.Random(19)
    res = {"ttl_s": DEFAULT_TTL}
    try:
        cl = _Cluster(suite, etcd, "failover")
    except (RuntimeError, OSError) as e:
        return {"error": "cluster did not start: %s" % e, "ttl_s": DEFAULT_TTL}
    src = tempfile.mkdtemp(prefix="failover-src-", dir=suite.work)
    sent, acked = {}, []
    try:
        servers = ",".join(cl.addrs)
        stop = threading.Event()
        state = {"n": 0, "batches": 0}

        def loop():
            # bounded by count and time; runs until stopped after the failover
            deadline = time.monotonic() + 120
            while not stop.is_set() and state["n"] < 20 * nfiles and time.monotonic() < deadline:
                paths = []
                for _ in range(4):
                    state["n"] += 1
                    p = os.path.join(src, "f%05d.bin" % state["n"])
                    data = rnd.randbytes(rnd.randint(16 << 10, 256 << 10))
                    with open(p, "wb") as f:
                        f.write(data)
                    sent[os.path.basename(p)] = hashlib.sha256(data).hexdigest()
                    paths.append(p)
                state["batches"] += 1
                s = _Stamped([ferry, "send", "--server", servers, "--channel", "fo", "--json",
                              "--retries", "30", "--connect-timeout", "3"] + paths,
                             os.path.join(suite.logs, "failover.send.err"))
                s.done(max(1.0, deadline - time.monotonic()))
                acked.extend(s.files())

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        t_wait = time.monotonic() + 20
        while len(acked) < nfiles and time.monotonic() < t_wait and th.is_alive():
            time.sleep(0.05)
        t_kill = time.monotonic()
        cl.srv[0].p.kill()  # SIGKILL: n1 leads the channel (the first hello went to it)
        cl.srv[0].p.wait()
        procs.log("cluster leader killed", node="n1", pid=cl.srv[0].p.pid)
        first = None
        deadline = time.monotonic() + DEFAULT_TTL + 30
        while first is None and time.monotonic() < deadline and th.is_alive():
            after = [a for a in list(acked) if a[0] > t_kill + IN_FLIGHT_S]
            first = after[0][0] if after else None
            time.sleep(0.02)
        if first is not None:
            # the first ack may sit in the running sender's lines, not yet in acked
            res["failover_s"] = round(first - t_kill, 3)
        time.sleep(1.0)
        stop.set()
        th.join(timeout=130)
        if first is None:
            after = sorted(a for a in acked if a[0] > t_kill + IN_FLIGHT_S)
            if after:
                res["failover_s"] = round(after[0][0] - t_kill, 3)
        if "failover_s" not in res:
            res["error"] = "no file acknowledged after the leader's kill"
        res.update(_read_back(suite, cl, servers, sent, acked))
    finally:
        cl.stop()
        shutil.rmtree(src, ignore_errors=True)
    res["integrity_failures"] = res.get("lost_acked", 0) + res.get("mismatched", 0)
    return res


def _read_back(suite, cl, servers, sent, acked):
    out = tempfile.mkdtemp(prefix="failover-out-", dir=suite.work)
    try:
        r = _Stamped([suite.bin["ferry"], "recv", "--server", servers, "--channel", "fo",
                      "--out", out, "--from-start", "--stored", "--json", "--retries", "10",
                      "--on-conflict", "rename"], os.path.join(suite.logs, "failover.recv.err"))
        rc = r.done(120)
        got = {}
        for _, n, s in r.files():
            got.setdefault(n, set()).add(s)
        want = {(n, s) for _, n, s in acked}
        lost = sum(1 for n, s in want if s not in got.get(n, ()))
        bad = sum(1 for n, ss in got.items() for s in ss if sent.get(n) != s)
        return {"acked": len(want), "read_back": sum(len(x) for x in got.values()),
                "read_back_rc": rc, "lost_acked": lost, "mismatched": bad}
    finally:
        shutil.rmtree(out, ignore_errors=True)
