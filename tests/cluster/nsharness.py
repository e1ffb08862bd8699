"""nsharness.py - a three-relay Ferry cluster in network namespaces, for the
failure tests of issue 19 (tests/cluster/ns_test.py) and bench/run's cluster
case.

Layout, one run (PFX = fyt-<pid>-<tag>, addresses only inside the namespaces):

    PFX-br   a bridge br0; one veth per other namespace is enslaved to it
    PFX-e    etcd-server        10.213.0.100
    PFX-n1   ferryd --node n1   10.213.0.1     (n2 .2, n3 .3)
    PFX-c    the clients        10.213.0.50    (ferry send / recv / get)

Every process is started by PID and stopped by PID; the namespaces and the
temp dir are removed by Cluster.close(), which runs from a finally:, from
atexit and from the SIGINT/SIGTERM/SIGHUP handlers (install()), whatever
happened.  Every wait is bounded in count and time.

Faults: kill9(i), restart(i), pause(i)/resume(i) (SIGSTOP/SIGCONT),
cut_etcd(i)/heal_etcd(i) (a blackhole route to etcd inside node i's
namespace: it keeps its followers and clients), lossy(i)/clean(i) (netem
loss when the kernel has sch_netem; else a tbf shaper with a short queue,
which drops what overflows it under load: `loss_kind` says which).
"""
import atexit
import ctypes
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SUBNET = "10.213.0"
ETCD_IP = SUBNET + ".100"
CLIENT_IP = SUBNET + ".50"
PORT = 7420
METRICS_PORT = 9420
SKIP = 77  # ctest SKIP_RETURN_CODE

_open = []  # clusters not yet closed, for atexit / signals


def log(msg, **kv):
    parts = ["t=%.3f" % time.monotonic(), 'msg="%s"' % msg]
    parts += ["%s=%s" % (k, v) for k, v in kv.items()]
    print(" ".join(parts), file=sys.stderr, flush=True)


def _cleanup_all():
    while _open:
        _open.pop().close()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds every finally:, then atexit


def install(limit_s=None):
    """Arm the cleanup (atexit, the stop signals); with limit_s, SIGALRM
    after that many seconds ends the run the same way, before a harder
    timeout (ctest's SIGKILL) can leave namespaces behind."""
    atexit.register(_cleanup_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, _on_signal)
    if limit_s:
        signal.alarm(int(limit_s))


def stale():
    """Namespaces an earlier run left behind (fyt-PID-... whose PID is gone,
    e.g. killed by a timeout): the processes still in them (ours: etcd,
    ferryd, clients) are killed by PID and the namespaces deleted."""
    r = run(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"(fyt-(\d+)-\S+)", line)
        if not m or os.path.exists("/proc/%s" % m.group(2)):
            continue
        ns = m.group(1)
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "del", ns], check=False)
        log("stale namespace removed", ns=ns, pids=len(pids))


def run(argv, check=True, timeout=20):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r


def can_netns():
    """None when namespaces can be made here, else why not (a skip)."""
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_SYS_ADMIN"
    if not os.access("/usr/bin/etcd", os.X_OK):
        return "etcd-server is not installed (/usr/bin/etcd)"
    name = "fyt-%d-probe" % os.getpid()
    try:
        r = run(["ip", "netns", "add", name], check=False)
        if r.returncode != 0:
            return "ip netns add failed: %s" % r.stderr.strip()
    finally:
        run(["ip", "netns", "del", name], check=False)
    return None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def make_file(path, size, rnd):
    with open(path, "wb") as f:
        f.write(rnd.randbytes(size))
    return sha256_file(path)


def _die_with_parent():
    """In a client before exec: SIGKILL it when the thread that started it
    ends (the load thread, or the test process: ctest's timeout), so no
    client outlives a test that lost track of it (a sender started by the
    load thread while the cleanup ran was left retrying for minutes).  Not
    for relays: a restart thread that starts one ends at once."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


class Proc:
    """A child by PID, its stdout lines stamped with time.monotonic() on
    arrival (a thread reads them), its stderr to a file."""

    def __init__(self, argv, err_path, name, want_lines=True, die_with_parent=False):
        self.name = name
        self.err_path = err_path
        self.lines = []  # (t, line)
        self._err = open(err_path, "ab")
        self.log_from = self._err.tell()  # an earlier process's lines (a restart) come before
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=self._err,
                                  stdout=subprocess.PIPE if want_lines else self._err,
                                  close_fds=True,
                                  preexec_fn=_die_with_parent if die_with_parent else None)
        self.pid = self.p.pid
        self._t = None
        if want_lines:
            self._t = threading.Thread(target=self._read, daemon=True)
            self._t.start()

    def _read(self):
        for raw in self.p.stdout:
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Exit code, or None when still running after timeout."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._t:
            self._t.join(timeout=5)
        return rc

    def stop(self, grace=5.0):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGCONT)  # a paused one cannot take SIGTERM
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(grace) is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(timeout=10)
        if self._t:
            self._t.join(timeout=5)
        self._err.close()
        return self.p.returncode

    def json_lines(self):
        out = []
        for t, line in list(self.lines):
            try:
                out.append((t, json.loads(line)))
            except ValueError:
                pass
        return out


class Cluster:
    def __init__(self, tag, binaries, nodes=3, ttl=2, replicas=2, extra=(), keep=False):
        self.tag = tag
        self.bin = binaries  # {"ferryd":..., "ferry":...}
        self.n = nodes
        self.ttl = ttl
        self.replicas = replicas
        self.extra = list(extra)
        self.keep = keep
        self.pfx = "fyt-%d-%s" % (os.getpid(), tag)
        self.br = self.pfx + "-br"
        self.ens = self.pfx + "-e"
        self.cns = self.pfx + "-c"
        self.nns = ["%s-n%d" % (self.pfx, i + 1) for i in range(nodes)]
        self.ips = ["%s.%d" % (SUBNET, i + 1) for i in range(nodes)]
        self.addrs = ["%s:%d" % (ip, PORT) for ip in self.ips]
        self.server_list = ",".join(self.addrs)
        self.dir = tempfile.mkdtemp(prefix="fyt-%s-" % tag)
        self.made = []
        self.procs = []
        self.etcd = None
        self.relays = [None] * nodes
        self.loss_kind = None
        self.closed = False
        _open.append(self)
        try:
            self._net()
            self._etcd()
            for i in range(nodes):
                self.start(i)
        except BaseException:
            self.close()
            raise

    # ---- the network -------------------------------------------------------------

    def _net(self):
        for ns in [self.br, self.ens, self.cns] + self.nns:
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", self.br, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", self.br, "link", "set", "br0", "up"])
        legs = [(self.ens, ETCD_IP), (self.cns, CLIENT_IP)] + list(zip(self.nns, self.ips))
        for k, (ns, ip) in enumerate(legs):
            peer = "p%d" % k
            run(["ip", "link", "add", "name", "eth0", "netns", ns, "type", "veth",
                 "peer", "name", peer, "netns", self.br])
            run(["ip", "-n", self.br, "link", "set", peer, "master", "br0"])
            run(["ip", "-n", self.br, "link", "set", peer, "up"])
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def ex(self, ns):
        return ["ip", "netns", "exec", ns]

    # ---- etcd ----------------------------------------------------------------------

    def _etcd(self):
        data = os.path.join(self.dir, "etcd")
        client = "http://%s:2379" % ETCD_IP
        peer = "http://%s:2380" % ETCD_IP
        self.etcd_url = client
        self.etcd = Proc(self.ex(self.ens) + [
            "/usr/bin/etcd", "--name", "fyt", "--data-dir", data,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "fyt=" + peer], os.path.join(self.dir, "etcd.log"), "etcd",
            want_lines=False)
        self.procs.append(self.etcd)
        self._wait_log(self.etcd, "ready to serve client requests", 30)

    def _wait_log(self, p, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(p.err_path, "rb") as f:
                    f.seek(p.log_from)
                    m = re.search(text, f.read().decode(errors="replace"))
                    if m:
                        return m
            except OSError:
                pass
            if not p.alive():
                raise RuntimeError("%s exited (%s) before '%s' (see %s)"
                                   % (p.name, p.p.returncode, text, p.err_path))
            time.sleep(0.02)
        raise RuntimeError("%s: no '%s' within %d s (see %s)" % (p.name, text, timeout,
                                                                 p.err_path))

    def _http(self, url, body=None):
        """One HTTP request from the clients' namespace (python3's urllib:
        curl is not in CI's packages), bounded; the answer's text or None."""
        script = ("import sys,urllib.request\n"
                  "b=sys.argv[2].encode() if len(sys.argv)>2 else None\n"
                  "sys.stdout.write(urllib.request.urlopen(sys.argv[1],b,timeout=3)"
                  ".read().decode())\n")
        argv = self.ex(self.cns) + [sys.executable, "-c", script, url]
        r = run(argv + ([body] if body is not None else []), check=False, timeout=10)
        return r.stdout if r.returncode == 0 else None

    def etcd_get(self, key):
        """The value of key (bytes) or None, through etcd's JSON gateway."""
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()})
        text = self._http(self.etcd_url + "/v3/kv/range", body)
        try:
            kvs = (json.loads(text).get("kvs") or []) if text else []
        except ValueError:
            return None
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    def chanstate(self, chan):
        v = self.etcd_get("/ferry/channels/" + chan)
        return json.loads(v) if v else None

    def watch(self, chan, period=0.1):
        """A background poller of the channel's state in etcd: (t, state)
        appended to .states every period until stop_watch()."""
        self.states = []
        self._watching = True
        script = ("import base64,json,sys,time,urllib.request\n"
                  "k=base64.b64encode(sys.argv[2].encode()).decode()\n"
                  "while True:\n"
                  "  try:\n"
                  "    r=urllib.request.urlopen(sys.argv[1]+'/v3/kv/range',"
                  "json.dumps({'key':k}).encode(),timeout=1)\n"
                  "    kv=json.loads(r.read()).get('kvs') or []\n"
                  "    print(base64.b64decode(kv[0]['value']).decode() if kv else 'null',"
                  "flush=True)\n"
                  "  except Exception as e:\n"
                  "    print(json.dumps({'error':str(e)}),flush=True)\n"
                  "  time.sleep(float(sys.argv[3]))\n")
        self.watcher = Proc(self.ex(self.cns) + [sys.executable, "-c", script, self.etcd_url,
                                                 "/ferry/channels/" + chan, str(period)],
                            os.path.join(self.dir, "watch.err"), "watch")
        self.procs.append(self.watcher)

    def epochs_seen(self):
        """[(t, epoch, leader, isr)] from the watcher, every change."""
        out, last = [], None
        for t, st in self.watcher.json_lines():
            if not isinstance(st, dict) or "epoch" not in st:
                continue
            key = (st["epoch"], st["leader"], tuple(st.get("isr", ())))
            if key != last:
                out.append((t, st["epoch"], st["leader"], list(st.get("isr", ()))))
                last = key
        return out

    # ---- the relays ------------------------------------------------------------------

    def data(self, i):
        return os.path.join(self.dir, "n%d" % (i + 1))

    def start(self, i, wait=30):
        argv = self.ex(self.nns[i]) + [
            self.bin["ferryd"], "--listen", self.addrs[i], "--data", self.data(i),
            "--cluster", self.etcd_url, "--node", "n%d" % (i + 1), "--advertise", self.addrs[i],
            "--cluster-ttl", str(self.ttl), "--replicas", str(self.replicas),
            "--metrics", "%s:%d" % (self.ips[i], METRICS_PORT), "--threads", "2"] + self.extra
        p = Proc(argv, os.path.join(self.dir, "n%d.log" % (i + 1)), "n%d" % (i + 1),
                 want_lines=False)
        self.procs.append(p)
        self.relays[i] = p
        self._wait_log(p, r"listening=", wait)
        log("relay up", node="n%d" % (i + 1), pid=p.pid)
        return p

    def kill9(self, i):
        p = self.relays[i]
        p.signal(signal.SIGKILL)
        p.wait(10)
        t = time.monotonic()
        log("relay killed", node="n%d" % (i + 1), pid=p.pid, signal="KILL")
        return t

    def stop(self, i):
        rc = self.relays[i].stop()
        log("relay stopped", node="n%d" % (i + 1), rc=rc)
        return rc

    def pause(self, i):
        self.relays[i].signal(signal.SIGSTOP)
        log("relay paused", node="n%d" % (i + 1))
        return time.monotonic()

    def resume(self, i):
        self.relays[i].signal(signal.SIGCONT)
        log("relay resumed", node="n%d" % (i + 1))
        return time.monotonic()

    def cut_etcd(self, i):
        run(["ip", "-n", self.nns[i], "route", "add", "blackhole", ETCD_IP + "/32"])
        log("relay cut off from etcd", node="n%d" % (i + 1))
        return time.monotonic()

    def heal_etcd(self, i):
        run(["ip", "-n", self.nns[i], "route", "del", "blackhole", ETCD_IP + "/32"])
        log("relay reaches etcd again", node="n%d" % (i + 1))
        return time.monotonic()

    def _legs(self, i):
        """Both ends of node i's link: its eth0, and its port on the bridge
        (egress there is what node i receives)."""
        return [(self.nns[i], "eth0"), (self.br, "p%d" % (i + 2))]

    def lossy(self, i, loss="20%"):
        """Node i's link drops packets both ways: netem loss when the kernel
        has it, else a 1 Mbit/s tbf with a 4 KiB queue on each end (drops
        whatever overflows it under load).  Sets and returns loss_kind."""
        for ns, dev in self._legs(i):
            q = ["tc", "-n", ns, "qdisc", "add", "dev", dev, "root"]
            if run(q + ["netem", "loss", loss], check=False).returncode == 0:
                self.loss_kind = "netem loss " + loss
            else:
                run(q + ["tbf", "rate", "1mbit", "burst", "4kb", "limit", "4kb"])
                self.loss_kind = "tbf 1mbit limit 4kb (no sch_netem)"
        log("link lossy", node="n%d" % (i + 1), kind='"%s"' % self.loss_kind)
        return self.loss_kind

    def clean(self, i):
        for ns, dev in self._legs(i):
            run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], check=False)
        log("link clean", node="n%d" % (i + 1))

    def leader(self, chan):
        st = self.chanstate(chan)
        return (int(st["leader"][1:]) - 1, st) if st else (None, None)

    def wait_leader(self, chan, not_node=None, min_epoch=0, timeout=20):
        """Poll etcd until chan has a leader other than not_node with epoch >=
        min_epoch; (index, state) or raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            i, st = self.leader(chan)
            if st and i != not_node and st["epoch"] >= min_epoch:
                return i, st
            time.sleep(0.05)
        raise RuntimeError("no leader for %s (not n%s, epoch >= %d) within %d s: %s"
                           % (chan, None if not_node is None else not_node + 1, min_epoch,
                              timeout, self.chanstate(chan)))

    def metrics(self, i):
        return self._http("http://%s:%d/metrics" % (self.ips[i], METRICS_PORT)) or ""

    def grep_log(self, i, text):
        try:
            with open(os.path.join(self.dir, "n%d.log" % (i + 1)), errors="replace") as f:
                return [ln for ln in f if text in ln]
        except OSError:
            return []

    # ---- clients -------------------------------------------------------------------

    def sender(self, chan, files, name="send", retries=30, extra=()):
        argv = self.ex(self.cns) + [self.bin["ferry"], "send", "--server", self.server_list,
                                    "--channel", chan, "--retries", str(retries), "--json",
                                    "--connect-timeout", "3", "-v"] + list(extra) + list(files)
        p = Proc(argv, os.path.join(self.dir, name + ".err"), name, die_with_parent=True)
        self.procs.append(p)
        return p

    def receiver(self, chan, out, count, name="recv", retries=30):
        argv = self.ex(self.cns) + [self.bin["ferry"], "recv", "--server", self.server_list,
                                    "--channel", chan, "--out", out, "--from-start",
                                    "--retries", str(retries), "--json",
                                    "--connect-timeout", "3", "-v"]
        if count:
            argv += ["--count", str(count)]
        p = Proc(argv, os.path.join(self.dir, name + ".err"), name, die_with_parent=True)
        self.procs.append(p)
        return p

    def read_back(self, i, chan, out, timeout=60):
        """What node i's data dir stores for chan, read by a standalone ferryd
        (no --cluster) over a copy of the data dir, in node i's namespace:
        {"files": `ferry ls CHAN --json` file records (name, sha256,
        seq_first, seq_last), oldest first; "rc": the exit code of `ferry recv
        --stored --from-start` into out (0: every file's frames, size and
        SHA-256 checked clean); "got": [(name, sha256)] it received}.  A node
        that never had the channel gives no files (and rc 3)."""
        copy = os.path.join(self.dir, "readback-n%d-%d" % (i + 1, int(time.monotonic() * 1000)))
        shutil.copytree(self.data(i), copy, symlinks=True)
        addr = "127.0.0.1:%d" % (PORT + 100)
        p = Proc(self.ex(self.nns[i]) + [self.bin["ferryd"], "--listen", addr, "--data", copy,
                                        "--threads", "1"],
                 os.path.join(self.dir, "readback-n%d.log" % (i + 1)), "readback", False)
        self.procs.append(p)
        try:
            self._wait_log(p, r"listening=", 20)
            ls = self._client(i, ["ls", chan, "--server", addr, "--json"],
                              "readback-ls", timeout)
            r = self._client(i, ["recv", "--server", addr, "--channel", chan, "--out", out,
                                 "--from-start", "--stored", "--json", "--no-retry",
                                 "--on-conflict", "rename"], "readback-recv", timeout)
            return {"files": [o for _, o in ls.json_lines() if o.get("type") == "file"],
                    "rc": r.p.returncode,
                    "got": [(o["file"], o["sha256"]) for _, o in r.json_lines()
                            if o.get("type") == "file"]}
        finally:
            p.stop()
            shutil.rmtree(copy, ignore_errors=True)

    def _client(self, i, args, name, timeout):
        c = Proc(self.ex(self.nns[i]) + [self.bin["ferry"]] + args,
                 os.path.join(self.dir, "%s-n%d.err" % (name, i + 1)), name)
        self.procs.append(c)
        if c.wait(timeout) is None:
            c.stop()
            raise RuntimeError("%s on n%d did not end in %d s" % (name, i + 1, timeout))
        return c

    def log_errors(self, per_node=2):
        """The commonest error and warn lines of each relay (msg and reason,
        counted), for a failing test's report."""
        out = []
        for i in range(self.n):
            seen = {}
            for ln in self.grep_log(i, "level=error") + self.grep_log(i, "level=warn"):
                m = re.search(r'msg="([^"]*)"', ln)
                r = re.search(r'reason="([^"]*)"', ln)
                if not m or "listening on a non-loopback" in m.group(1):
                    continue
                k = m.group(1) + (": " + r.group(1) if r else "")
                seen[k] = seen.get(k, 0) + 1
            top = sorted(seen.items(), key=lambda kv: -kv[1])[:per_node]
            out += ["n%d %dx %s" % (i + 1, c, k) for k, c in top]
        return out

    # ---- the end ----------------------------------------------------------------------

    def close(self):
        if self.closed:
            return
        self.closed = True
        for p in reversed(self.procs):
            try:
                p.stop(grace=5.0)
            except Exception as e:  # cleanup goes on whatever one step does
                log("stop failed", proc=p.name, pid=p.pid, err=repr(e))
        while self.made:
            ns = self.made.pop()
            r = run(["ip", "netns", "del", ns], check=False)
            if r.returncode != 0:
                log("ip netns del failed", ns=ns, err='"%s"' % r.stderr.strip())
        if self.keep:
            log("kept", dir=self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _open:
            _open.remove(self)
