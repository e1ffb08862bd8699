"""suite.py - the benchmark cases and the order they run in.

Every case drives the same ferry-swarm against up to three targets in the
same run: 'p2p' (the swarm's senders write straight to its receivers, the
physical reference), 'baseline' (ferry-baseline, the old design) and
'ferryd'.  Each relay run gets a fresh relay process on 127.0.0.1 port 0
and a fresh data directory, both removed right after, so runs do not
share state.  Each case's figures are written to OUT/<case>.json as soon
as the case ends, so an interrupted run keeps what it measured.
"""
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from . import cluster, disk, netns, peers, procs, swarm, treenet

TARGETS = ("p2p", "baseline", "ferryd")
MiB = 1 << 20
KiB = 1 << 10

# Shapes, full and --quick.  Sizes keep each run near a second on this
# machine; the slow-receiver file must outgrow ferryd's live window (8 MiB)
# and the socket buffers, or the slow receiver never falls behind at all.
FULL = {
    "one_size": 200 * MiB,
    "fanout": [(4, 64 * MiB), (16, 32 * MiB), (64, 8 * MiB)],
    "small_size": 8 * MiB,
    "slow_size": 32 * MiB,
    "slow_refs": 3,
    "storm": 10000,
    "rate_duration": 5.0,
    "link_size": 50 * MiB,
    "tree_size": 32 * MiB,
    "tls_size": 64 * MiB,
    "peers": [1, 4, 16, 64],
    "peers_size": 256 * MiB,
    "peers_small_size": 32 * MiB,
    "catchup_size": 256 * MiB,
    "disk_size": 512 * MiB,
    # sustained: sized from a first dd to last ~sustained_seconds at the
    # disk's speed, within [sustained_min, sustained_size]; bounded in time
    "sustained_size": 4 << 30,
    "sustained_min": 2 << 30,
    "sustained_probe": 512 * MiB,
    "sustained_seconds": 12,
    "sustained_timeout": 300,
    "cluster_size": 64 * MiB,
    "cluster_files": 400,
    "reps": 3,
}
QUICK = {
    "one_size": 32 * MiB,
    "small_size": 2 * MiB,
    "storm": 2000,
    "rate_duration": 2.0,
    "link_size": 10 * MiB,
    "tree_size": 8 * MiB,
    "tls_size": 32 * MiB,
    "fanout": [(16, 8 * MiB)],
    "slow_size": 16 * MiB,
    "slow_refs": 3,
    "peers": [1, 16],
    "peers_size": 32 * MiB,
    "peers_small_size": 4 * MiB,
    "catchup_size": 32 * MiB,
    "disk_size": 32 * MiB,
    "sustained_size": 64 * MiB,
    "sustained_min": 32 * MiB,
    "sustained_probe": 32 * MiB,
    "sustained_seconds": 12,
    "sustained_timeout": 60,
    "cluster_size": 8 * MiB,
    "cluster_files": 120,
    "reps": 3,
}
SLOW_RATE = 1000000  # 1 MB/s, the throttled receiver's read cap
PACKET = 64 * KiB
SMALL_PACKET = 128
SMALL_RX = 16
# Issue 18's latency target is stated at this rate (frames/s from the one
# sender, each to 16 receivers): the rate case also offers it to every
# target, so the relay's tail sits beside p2p's at the same load.
FIXED_RATE = 240000


def find_bin(build, name, hints):
    for h in hints:
        p = os.path.join(build, h, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    for root, dirs, files in os.walk(build):
        dirs[:] = [d for d in dirs if d != "CMakeFiles"]
        if name in files and os.access(os.path.join(root, name), os.X_OK):
            return os.path.join(root, name)
    return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def median_run(runs, key):
    """The run whose `key` is the median (lower middle for an even count);
    a failed run ranks lowest, so the median is a failure only if most were."""
    def k(r):
        v = r.get(key)
        return v if isinstance(v, (int, float)) and not swarm.failed(r) else float("-inf")
    ranked = sorted(runs, key=k)
    return ranked[(len(ranked) - 1) // 2]


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


class Suite:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.shape = QUICK if args.quick else FULL
        self.out = os.path.abspath(args.out)
        os.makedirs(self.out, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="ferry-bench-")
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs)
        # the disk the disk and sustained cases measure (their data and dd's file)
        self.disk_dir = os.path.abspath(getattr(args, "disk_dir", None) or self.work)
        if not args.keep:
            procs.on_cleanup(lambda: shutil.rmtree(self.work, ignore_errors=True))
        build = os.path.abspath(args.build)
        self.bin = {
            "swarm": find_bin(build, "ferry-swarm", ["src/prog"]),
            "ferryd": find_bin(build, "ferryd", ["src/prog"]),
            "baseline": find_bin(build, "ferry-baseline", ["bench/baseline"]),
            "ferry": find_bin(build, "ferry", ["src/prog"]),
            "peer_redis": find_bin(build, "peer_redis", ["bench"]),
            "redis": shutil.which("redis-server"),
        }
        self.cases = {}       # name -> {"title", "params", "runs": {target: res}, ...}
        self.skipped = []     # (what, why)
        self.notes = []       # sentences for under the table
        self.t0 = time.monotonic()
        with open("/proc/loadavg") as f:
            self.load_start = " ".join(f.read().split()[:3])
        self.loaded = None    # latest.json of the run being redrawn (--report-only)

    def load(self):
        """--report-only: take the cases, notes and timing of the run whose
        JSON is in OUT.  Returns that run's command."""
        with open(os.path.join(self.out, "latest.json")) as f:
            latest = json.load(f)
        for fn in sorted(os.listdir(self.out)):
            if fn.endswith(".json") and fn != "latest.json":
                with open(os.path.join(self.out, fn)) as f:
                    c = json.load(f)
                if "runs" in c:
                    self.cases[fn[:-5]] = c
        self.quick = latest.get("kv", {}).get("suite") == "quick"
        self.skipped = [tuple(x) for x in latest.get("skipped", [])]
        self.notes = latest.get("notes", [])
        self.loaded = latest
        return latest.get("command", "bench/run")

    # ---- plumbing ---------------------------------------------------------------

    def check_bins(self):
        if not self.bin["swarm"]:
            raise SystemExit("ferry-swarm not found under %s: build it first "
                             "(cmake --build %s --target ferry-swarm)" % (self.args.build,
                                                                          self.args.build))
        for k in ("ferryd", "baseline"):
            if not self.bin[k]:
                procs.warn("relay binary missing: its runs are skipped", binary=k)
                self.skipped.append((k, "binary not built"))
        if self.want("peers") and not (self.bin["redis"] and self.bin["peer_redis"]):
            why = ("redis-server not installed (Debian package redis-server, .ci/deps)"
                   if not self.bin["redis"] else "bench/peer_redis not built")
            procs.warn("redis runs of the peers case skipped", why='"%s"' % why)
            self.skipped.append(("peers: redis", why))

    def targets(self, wanted=TARGETS):
        return [t for t in wanted if t == "p2p" or self.bin[t]]

    def server(self, target, tag, extra=(), data_root=None):
        """A fresh server; extra = more ferryd flags (the old design takes none);
        its data directory is made in data_root (default: the suite's temp dir)."""
        data = tempfile.mkdtemp(prefix="data-%s-" % tag, dir=data_root or self.work)
        s = procs.Server(target, self.bin[target], data, self.logs, tag,
                         extra=extra if target == "ferryd" else ())
        s.data = data
        return s

    def run_one(self, case, target, mode, opts, timeout, server_extra=(), data_root=None):
        res = self._run_one(case, target, mode, opts, timeout, server_extra, data_root)
        if swarm.failed(res) or swarm.integrity(res):
            why = res.get("error") or ("timed out" if res.get("timeout") == 1 else
                                       "swarm exit %s" % res.get("rc"))
            self.notes.append("%s on %s: %d integrity failure(s); %s" % (
                case, target, swarm.integrity(res), why.splitlines()[0][:200]))
        return res

    def _run_one(self, case, target, mode, opts, timeout, server_extra=(), data_root=None):
        tag = "%s.%s" % (case, target)
        if target == "p2p":
            return swarm.run(self.bin["swarm"], "p2p", mode, opts, timeout, self.logs, tag)
        try:
            srv = self.server(target, tag, server_extra, data_root)
        except (RuntimeError, OSError) as e:
            procs.warn("server did not start", target=target, err='"%s"' % e)
            return {"error": "server did not start: %s" % e}
        try:
            # The relay's own CPU (utime + stime, all its threads) over the
            # swarm's run only: start-up and shutdown are left out.
            cpu0 = procs.cpu_seconds(srv.p.pid)
            res = swarm.run(self.bin["swarm"], srv.addr, mode, opts, timeout, self.logs, tag)
            cpu1 = procs.cpu_seconds(srv.p.pid)
            if cpu0 is not None and cpu1 is not None:
                res["server_cpu_s"] = round(cpu1 - cpu0, 3)
            res["data_fs"] = disk.fsinfo(srv.data)
            res["server_alive"] = srv.alive()
            res["server_log"] = srv.err_path
            emfile = _count(srv.err_path, b"Too many open files") + _count(
                srv.out_path, b"Too many open files")
            if emfile:
                res["server_emfile_lines"] = emfile
                self.notes.append("%s on %s: the relay logged %d line(s) with 'Too many open "
                                  "files' (descriptor limit %d)" % (case, target, emfile,
                                                                     _nofile()[0]))
            if not srv.alive():
                res["server_rc"] = srv.p.returncode
                res.setdefault("error", "relay exited during the run (rc=%s)" % srv.p.returncode)
        finally:
            rc = srv.stop()
            shutil.rmtree(srv.data, ignore_errors=True)
        res["server_stop_rc"] = rc
        return res

    def save(self, name):
        c = self.cases[name]
        doc = dict(c, suite="quick" if self.quick else "full",
                   date=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        with open(os.path.join(self.out, name + ".json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)

    def case(self, name, title, mode, opts, timeout, targets, server_extra=(), reps=1,
             key="mbps_aggregate"):
        """Run one case against each target, reps times, targets interleaved
        (so a burst of load from elsewhere hits all of them alike).  The run
        reported is the median one by `key`; every run is kept."""
        procs.log("case", name=name, title='"%s"' % title, reps=reps)
        c = {"title": title + (" (median of %d)" % reps if reps > 1 else ""), "mode": mode,
             "params": dict(opts), "timeout_s": timeout, "runs": {}}
        if reps > 1:
            c["repeats"] = {t: [] for t in targets}
        self.cases[name] = c
        for i in range(reps):
            for t in targets:
                r = self.run_one(name if reps == 1 else "%s%d" % (name, i), t, mode, opts,
                                 timeout, server_extra)
                if reps == 1:
                    c["runs"][t] = r
                else:
                    c["repeats"][t].append(r)
                    c["runs"][t] = median_run(c["repeats"][t], key)
                self.save(name)
        return c

    @staticmethod
    def base_opts(receivers, size, packet=PACKET):
        # content: each receiver compares with the known pattern and the
        # sender's digest -- as strict as sha, cheaper for the client's CPU.
        return {"senders": 1, "channels": 1, "receivers": receivers, "size": size,
                "chunk": packet, "verify": "content"}

    # ---- the cases ----------------------------------------------------------------

    CASES = ("one_to_one", "fanout", "small_msgs", "slow_isolation", "storm", "rate", "link",
             "tree", "tls", "peers", "catchup", "disk", "sustained", "cluster")
    QUICK_CASES = ("one_to_one", "fanout", "slow_isolation")

    def want(self, name):
        only = self.args.only
        if only:
            return name in only
        return name in (self.QUICK_CASES if self.quick else self.CASES)

    def run_all(self):
        sh = self.shape
        tg = self.targets()
        if self.want("one_to_one"):
            self.case("one_to_one", "1 -> 1, %d MiB, 64 KiB packets" % (sh["one_size"] // MiB),
                      "bulk", self.base_opts(1, sh["one_size"]), 120, tg, reps=sh["reps"])
        for n, size in sh["fanout"] if self.want("fanout") else ():
            self.case("fanout_%d" % n, "1 -> %d, %d MiB, 64 KiB packets" % (n, size // MiB),
                      "bulk", self.base_opts(n, size), 120, tg, reps=sh["reps"])
        if self.want("small_msgs") or (self.want("rate") and "small_size" in sh):
            self.case("small_msgs", "1 -> %d, 128-byte messages (%d MiB)"
                      % (SMALL_RX, sh["small_size"] // MiB), "bulk",
                      self.base_opts(SMALL_RX, sh["small_size"], SMALL_PACKET), 120, tg,
                      reps=sh["reps"], key="msgs_per_s")
        if self.want("slow_isolation"):
            self.slow_isolation()
        if self.want("storm"):
            self.storm()
        if self.want("rate"):
            self.rate()
        if self.want("link"):
            self.link()
        if self.want("tree"):
            self.tree()
        if self.want("tls"):
            self.tls()
        if self.want("peers"):
            peers.peers_case(self)
        if self.want("catchup"):
            peers.catchup_case(self)
        if self.want("disk"):
            disk.disk_case(self)
        if self.want("sustained"):
            disk.sustained_case(self)
        if self.want("cluster"):
            cluster.cluster_case(self)

    def tls(self):
        """tls: the same 1 -> 4 bulk run against ferryd in plaintext and over
        TLS (a self-signed CA and relay certificate made here with the openssl
        command), interleaved rep by rep so load from elsewhere hits both
        alike.  tls_over_plain is the TLS run's aggregate MB/s over the
        plaintext one's.  Whether the kernel took the records (kTLS) is read
        from the relay's debug log."""
        name = "tls"
        size = self.shape["tls_size"]
        reps = self.shape["reps"]
        title = "1 -> 4, %d MiB, 64 KiB packets: ferryd plaintext vs TLS" % (size // MiB)
        procs.log("case", name=name, title='"%s"' % title, reps=reps)
        c = {"title": title + (" (median of %d)" % reps if reps > 1 else ""), "mode": "bulk",
             "params": self.base_opts(4, size), "runs": {}, "repeats": {"plain": [], "tls": []}}
        self.cases[name] = c
        if not self.bin["ferryd"]:
            c["skipped"] = "ferryd not built"
            return
        d = tempfile.mkdtemp(prefix="tls-", dir=self.work)
        try:
            certs = _make_certs(d)
        except (OSError, subprocess.SubprocessError) as e:
            c["skipped"] = "cannot make certificates with openssl: %s" % e
            self.skipped.append(("tls run", c["skipped"]))
            procs.warn("tls case skipped", why='"%s"' % c["skipped"])
            return
        tls_srv = ("--tls-cert", certs["cert"], "--tls-key", certs["key"], "--log-level", "debug")
        for i in range(reps):
            for v in ("plain", "tls"):
                opts = self.base_opts(4, size)
                if v == "tls":
                    opts["ca"] = certs["ca"]
                r = self.run_one("tls_%s%d" % (v, i), "ferryd", "bulk", opts, 120,
                                 tls_srv if v == "tls" else ())
                if v == "tls" and r.get("server_log"):
                    r["ktls_send_conns"] = _count(r["server_log"], b"ktls_send=1")
                    r["tls_conns"] = _count(r["server_log"], b"TLS established")
                c["repeats"][v].append(r)
                c["runs"][v] = median_run(c["repeats"][v], "mbps_aggregate")
                self.save(name)
        p, t = (_v(c["runs"].get(k), "mbps_aggregate") for k in ("plain", "tls"))
        c["tls_over_plain"] = ratio(t, p)
        c["ktls"] = bool(_v(c["runs"].get("tls"), "ktls_send_conns"))
        procs.log("tls", plain_mbps=p, tls_mbps=t, tls_over_plain=c["tls_over_plain"],
                  ktls="yes" if c["ktls"] else "no")
        self.save(name)

    def slow_isolation(self):
        sh = self.shape
        size = sh["slow_size"]
        tg = self.targets(("ferryd",) if self.quick else TARGETS)
        ref = self.base_opts(4, size)
        refs = {}
        procs.log("case", name="slow_isolation",
                  title='"1 -> 4, one receiver capped at 1 MB/s"')
        c = {"title": "1 -> 4, %d MiB, one receiver read-capped at 1 MB/s" % (size // MiB),
             "mode": "slow", "params": dict(ref, slow=1, **{"slow-rate": SLOW_RATE}),
             "runs": {}, "reference_runs": refs, "isolation": {}}
        self.cases["slow_isolation"] = c
        slow_timeout = size / SLOW_RATE * 1.5 + 30
        for t in tg:
            refs[t] = [self.run_one("slow_ref%d" % i, t, "bulk", ref, 60)
                       for i in range(sh["slow_refs"])]
            opts = dict(ref, slow=1, **{"slow-rate": SLOW_RATE})
            r = self.run_one("slow_isolation", t, "slow", opts, slow_timeout)
            c["runs"][t] = r
            base = median([x.get("mbps_per_receiver") for x in refs[t] if not swarm.failed(x)])
            fast = None if swarm.failed(r) else r.get("fast_mbps_per_receiver")
            c["isolation"][t] = {"fast_mbps_slowed": fast, "mbps_unslowed_median": base,
                                 "ratio": ratio(fast, base)}
            self.save("slow_isolation")

    def storm(self):
        n = self.shape["storm"]
        soft, hard = _nofile()
        want = n + 1024
        if hard < want:
            procs.warn("descriptor limit too low for the storm", hard=hard, want=want,
                       action="shrink the storm")
            n = max(100, hard - 1024)
        tg = self.targets(("baseline", "ferryd"))
        self.skipped.append(("storm p2p", "a connect storm needs a relay to answer it"))
        # All from 127.0.0.1: ferryd's defaults (4 096 connections, 256 per
        # address) are a hostile client's limits, so the case raises them as
        # an operator expecting such a crowd would.
        lim = str(n + 64)
        self.case("storm", "%d receivers connect at once; served = welcomed within 5 s" % n,
                  "storm", {"connections": n, "connect-timeout": 5}, 60, tg,
                  server_extra=("--max-connections", lim, "--max-connections-per-ip", lim))

    def rate(self):
        small = self.cases.get("small_msgs")
        if not small:
            return
        c = {"title": "rate mode, 1 -> %d, 128-byte messages, each target at half its own "
                      "peak from small_msgs" % SMALL_RX,
             "mode": "rate", "params": {}, "runs": {}, "offered": {}}
        self.cases["rate"] = c
        procs.log("case", name="rate", title='"%s"' % c["title"])
        dur = self.shape["rate_duration"]
        for t, r in small["runs"].items():
            peak = r.get("msgs_per_s")
            if not peak or swarm.failed(r):
                c["runs"][t] = {"error": "no peak measured in small_msgs"}
                continue
            frames = int(peak / SMALL_RX / 2)
            c["offered"][t] = frames
            opts = dict(self.base_opts(SMALL_RX, None, SMALL_PACKET), size=None,
                        duration=dur, **{"msg-rate": frames})
            c["runs"][t] = self.run_one("rate", t, "rate", opts, dur + 60)
            self.save("rate")
        opts = dict(self.base_opts(SMALL_RX, None, SMALL_PACKET), size=None, duration=dur,
                    **{"msg-rate": FIXED_RATE})
        self.case("rate_fixed", "rate mode, 1 -> %d, 128-byte messages at %d frames/s for every "
                  "target" % (SMALL_RX, FIXED_RATE), "rate", opts, dur + 60,
                  self.targets(("p2p", "ferryd")), reps=self.shape["reps"], key="p99_us")
        self.save("rate_fixed")

    # ---- the real-link run --------------------------------------------------------

    def link(self):
        name = "link"
        if self.args.skip_netns:
            self.skipped.append(("link run", "--skip-netns"))
            return
        if not self.bin["ferry"]:
            self.skipped.append(("link run", "the ferry client is not built"))
            return
        size = self.shape["link_size"]
        c = {"title": "%d MiB over 100 Mbit/s veth links (tbf): sender ns -> relay ns -> "
                      "receiver ns" % (size // MiB),
             "mode": "link", "params": {"size": size, "rate": "100mbit"}, "runs": {}}
        self.cases[name] = c
        procs.log("case", name=name, title='"%s"' % c["title"])
        net = netns.Net("fbench%d" % (os.getpid() % 100000))
        if not net.ok:
            procs.warn("link run skipped", why='"%s"' % net.why)
            self.skipped.append(("link run", net.why))
            c["skipped"] = net.why
            self.save(name)
            return
        try:
            path = os.path.join(self.work, "link-%dMiB.bin" % (size // MiB))
            digest = _make_file(path, size)
            c["runs"]["direct"] = self.link_direct(net, path, size, digest)
            self.save(name)
            for t in self.targets(("baseline", "ferryd")):
                c["runs"][t] = self.link_relay(net, t, path, size, digest)
                self.save(name)
        finally:
            net.remove()

    def tree(self):
        _tree_case(self)

    def link_direct(self, net, path, size, digest):
        helper = os.path.join(os.path.dirname(__file__), "linkcopy.py")
        out_path = os.path.join(self.logs, "link.direct.recv.out")
        with open(out_path, "wb") as out:
            rcv = procs.spawn(net.exec_prefix(net.rcv) + [sys.executable, helper, "recv",
                              netns.NET2[1], "7499", "--timeout", "90"], stdout=out)
        if not _wait_text(out_path, b"ready", rcv, 10):
            procs.stop(rcv)
            return {"error": "direct receiver did not start"}
        snd_out = os.path.join(self.logs, "link.direct.send.out")
        with open(snd_out, "wb") as out:
            snd = procs.spawn(net.exec_prefix(net.snd) + [sys.executable, helper, "send",
                              netns.NET2[1], "7499", path, "--timeout", "90", "--wait-go"],
                              stdout=out, stdin=subprocess.PIPE)
        if not _wait_text(snd_out, b"armed", snd, 10):
            procs.stop(snd)
            procs.stop(rcv)
            return {"error": "direct sender did not start"}
        t0 = time.monotonic()  # Python's start-up is behind us: only the copy is timed
        snd.stdin.write(b"go\n")
        snd.stdin.close()
        rc, over = procs.wait(rcv, 100)
        secs = time.monotonic() - t0
        procs.wait(snd, 10)
        with open(out_path) as f:
            got = swarm.parse_kv(f.read().splitlines()[-1])
        ok = got.get("bytes") == size and got.get("sha256") == digest
        res = {"seconds": round(secs, 3), "rc": rc, "bytes": got.get("bytes"),
               "integrity_failures": 0 if ok else 1, "mbps": round(size / secs / 1e6, 2)}
        if over or rc != 0:
            res["error"] = "direct copy failed (rc=%s)" % rc
        procs.log("link direct", seconds="%.3f" % secs, ok=ok)
        return res

    def link_relay(self, net, target, path, size, digest):
        data = tempfile.mkdtemp(prefix="data-link-%s-" % target, dir=self.work)
        outdir = tempfile.mkdtemp(prefix="recv-link-%s-" % target, dir=self.work)
        try:
            srv = procs.Server(target, self.bin[target], data, self.logs, "link",
                               listen="0.0.0.0:7420", prefix=net.exec_prefix(net.rly))
        except (RuntimeError, OSError) as e:
            return {"error": "relay did not start: %s" % e}
        try:
            ferry = self.bin["ferry"]
            rerr = open(os.path.join(self.logs, "link.%s.recv.err" % target), "wb")
            rout = open(os.path.join(self.logs, "link.%s.recv.out" % target), "wb")
            rcv = procs.spawn(net.exec_prefix(net.rcv) + [
                ferry, "recv", "--server", "%s:7420" % netns.NET2[0], "--channel", "link",
                "--out", outdir, "--from-start", "--count", "1"], stdout=rout, stderr=rerr)
            time.sleep(0.3)  # let it subscribe; --from-start makes a late one safe anyway
            t0 = time.monotonic()
            sout = open(os.path.join(self.logs, "link.%s.send.out" % target), "wb")
            serr = open(os.path.join(self.logs, "link.%s.send.err" % target), "wb")
            snd = procs.spawn(net.exec_prefix(net.snd) + [
                ferry, "send", "--server", "%s:7420" % netns.NET1[1], "--channel", "link",
                path], stdout=sout, stderr=serr)
            rc, over = procs.wait(rcv, 100)
            secs = time.monotonic() - t0
            src, _ = procs.wait(snd, 20)
            for f in (rerr, rout, sout, serr):
                f.close()
        finally:
            srv.stop()
            shutil.rmtree(data, ignore_errors=True)
        got = os.path.join(outdir, os.path.basename(path))
        ok = os.path.isfile(got) and os.path.getsize(got) == size and _sha256(got) == digest
        shutil.rmtree(outdir, ignore_errors=True)
        res = {"seconds": round(secs, 3), "rc": rc, "send_rc": src,
               "integrity_failures": 0 if ok else 1, "mbps": round(size / secs / 1e6, 2)}
        if over or rc != 0:
            res["error"] = "receiver failed (rc=%s)" % rc
        procs.log("link relay", target=target, seconds="%.3f" % secs, ok=ok)
        return res


# ---- tree: one origin's uplink against a tree of edge relays ----------------------

TREE_RATE = "100mbit"
TREE_EDGES, TREE_PER_EDGE = 3, 2


def _tree_case(suite):
    """star: origin --100mbit-- switch --100mbit each-- 6 receivers (one uplink
    carries every copy).  tree: origin --100mbit each-- 3 edges, each edge
    --100mbit-- its site switch --100mbit each-- 2 receivers (one uplink per
    edge).  Same file, same receivers, `ferry recv` at each, SHA-256 of every
    copy checked; aggregate = copies x size / time from the send's start to
    the last receiver's end."""
    name = "tree"
    size = suite.shape["tree_size"]
    nrx = TREE_EDGES * TREE_PER_EDGE
    c = {"title": "%d MiB to %d receivers over %s tbf links: star (origin's one uplink) vs "
                  "tree (origin -> %d edges -> %d receivers each)"
                  % (size // MiB, nrx, TREE_RATE, TREE_EDGES, TREE_PER_EDGE),
         "mode": "tree", "params": {"size": size, "rate": TREE_RATE, "receivers": nrx},
         "runs": {}}
    suite.cases[name] = c
    procs.log("case", name=name, title='"%s"' % c["title"])
    why = None
    if suite.args.skip_netns:
        why = "--skip-netns"
    elif not suite.bin["ferry"]:
        why = "the ferry client is not built"
    elif os.geteuid() != 0:
        why = "not root: network namespaces need CAP_SYS_ADMIN"
    if why:
        suite.skipped.append(("tree run", why))
        c["skipped"] = why
        suite.save(name)
        return
    path = os.path.join(suite.work, "tree-%dMiB.bin" % (size // MiB))
    digest = _make_file(path, size)
    treenet.stale("fbtree")
    for shape in ("star", "tree"):
        net = treenet.TreeNet("fbtree%d" % (os.getpid() % 100000))
        procs.on_cleanup(net.remove)
        try:
            c["runs"][shape] = _tree_run(suite, net, shape, path, size, digest)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            c["runs"][shape] = {"error": str(e)}
        finally:
            net.remove()
        suite.save(name)
    star, tree = c["runs"]["star"].get("mbps"), c["runs"]["tree"].get("mbps")
    c["tree_over_star"] = round(tree / star, 2) if star and tree else None
    procs.log("tree", star_mbps=star, tree_mbps=tree, tree_over_star=c["tree_over_star"],
              edge_rss_mib=c["runs"]["tree"].get("edge_rss_mib"))
    suite.save(name)


def _tree_run(suite, net, shape, path, size, digest):
    nrx = TREE_EDGES * TREE_PER_EDGE
    rxs = ["r%d" % i for i in range(nrx)]
    serve = {}  # receiver -> address of the relay it asks
    edges = []
    if shape == "star":
        o_addr, _, _ = net.site("origin", rxs, "10.80.1", TREE_RATE)
        for r in rxs:
            serve[r] = o_addr
    else:
        for i in range(TREE_EDGES):
            e = "e%d" % i
            o_addr, _, _, _ = net.p2p("origin", e, "10.81.%d" % (i + 1), TREE_RATE)
            mine = rxs[i * TREE_PER_EDGE:(i + 1) * TREE_PER_EDGE]
            e_addr, _, _ = net.site(e, mine, "10.82.%d" % (i + 1), TREE_RATE)
            edges.append((e, o_addr))
            for r in mine:
                serve[r] = e_addr
    servers = []
    tmp = tempfile.mkdtemp(prefix="tree-%s-" % shape, dir=suite.work)
    try:
        ferryd, ferry = suite.bin["ferryd"], suite.bin["ferry"]
        origin = procs.Server("ferryd", ferryd, os.path.join(tmp, "origin"), suite.logs,
                              "tree.%s.origin" % shape, listen="0.0.0.0:7420",
                              prefix=net.exec_prefix("origin"))
        servers.append(origin)
        edge_srv = []
        for e, up in edges:
            s = procs.Server("ferryd", ferryd, os.path.join(tmp, e), suite.logs,
                             "tree.%s.%s" % (shape, e), listen="0.0.0.0:7420",
                             extra=("--upstream", "%s:7420" % up), prefix=net.exec_prefix(e))
            servers.append(s)
            edge_srv.append(s)
        rcv = {}
        for r in rxs:
            out = open(os.path.join(suite.logs, "tree.%s.%s.out" % (shape, r)), "wb")
            rcv[r] = procs.spawn(net.exec_prefix(r) + [
                ferry, "recv", "--server", "%s:7420" % serve[r], "--channel", "tree", "--out",
                os.path.join(tmp, "out-" + r), "--from-start", "--count", "1"],
                stdout=out, stderr=out)
            out.close()
        time.sleep(0.5)  # receivers subscribe (and edges upstream) before the data comes
        sout = open(os.path.join(suite.logs, "tree.%s.send.out" % shape), "wb")
        t0 = time.monotonic()
        snd = procs.spawn(net.exec_prefix("origin") + [
            ferry, "send", "--server", "127.0.0.1:7420", "--channel", "tree", path],
            stdout=sout, stderr=sout)
        sout.close()
        fails, bad = 0, 0
        for r in rxs:
            rc, over = procs.wait(rcv[r], max(1.0, 150 - (time.monotonic() - t0)))
            fails += 1 if (over or rc != 0) else 0
        secs = time.monotonic() - t0
        procs.wait(snd, 20)
        for r in rxs:
            got = os.path.join(tmp, "out-" + r, os.path.basename(path))
            if not (os.path.isfile(got) and _sha256(got) == digest):
                bad += 1
        rss = []
        for s in edge_srv:
            try:
                with open("/proc/%d/status" % s.p.pid) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            rss.append(round(int(line.split()[1]) / 1024, 1))
            except OSError:
                pass
        res = {"seconds": round(secs, 3), "copies": nrx, "verified": nrx - bad,
               "integrity_failures": bad, "failed_receivers": fails,
               "mbps": round(nrx * size / secs / 1e6, 2)}
        if rss:
            res["edge_rss_mib"] = max(rss)
            res["edge_rss_each_mib"] = rss
        if fails:
            res["error"] = "%d receiver(s) failed" % fails
        procs.log("tree run", shape=shape, seconds="%.3f" % secs, mbps=res["mbps"],
                  verified="%d/%d" % (nrx - bad, nrx))
        return res
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _v(res, key):
    return res.get(key) if res and not swarm.failed(res) else None


def _make_certs(d):
    """A CA and a relay certificate for 127.0.0.1 in d, made with the
    openssl command (Debian package openssl).  Bounded in time."""
    k = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda argv: subprocess.run(["openssl"] + argv, cwd=d, check=True, timeout=30,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run(["req", "-x509"] + k + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                                "-subj", "/CN=fbench-ca"])
    run(["req"] + k + ["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=relay"])
    with open(os.path.join(d, "srv.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "srv.ext", "-out", "srv.pem"])
    return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "srv.pem"),
            "key": os.path.join(d, "srv.key")}


def _nofile():
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def raise_nofile():
    """Soft descriptor limit up to the hard one; children (relays, swarm)
    inherit it.  Returns the new soft limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _count(path, needle):
    try:
        with open(path, "rb") as f:
            return f.read().count(needle)
    except OSError:
        return 0


def _make_file(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 4 * MiB))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _wait_text(path, text, p, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if text in f.read():
                    return True
        except OSError:
            pass
        if p.poll() is not None:
            return False
        time.sleep(0.02)
    return False
