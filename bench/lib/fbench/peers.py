"""peers.py - ferryd against another relay (peers), and catch-up against live.

peers: one sender, N receivers, 64 KiB messages (N = 1, 4, 16, 64) and
16 receivers x 128-byte messages, through ferryd (defaults: persisting,
--fsync file-end; driven by ferry-swarm --verify content) and through
redis-server pub/sub (nothing on disk; driven by bench/peer_redis, a small
epoll client that does the same work per byte: count every payload byte at
every receiver, memcmp it with the pattern, look for gaps).  Each run gets
a fresh server; ferryd and redis alternate, rep by rep, so load from
elsewhere hits both alike; the median run by aggregate MB/s is reported.
Loss = bytes expected (N x size) - bytes received, for both.  The relay's
own CPU per GiB delivered: utime + stime of the server process (all its
threads) from /proc/PID/stat, read just before the client starts and just
after it ends, over the bytes all receivers got together; the median of the
reps, in CPU seconds per GiB.

catchup: a 256 MiB file is sent once with `ferry send` while 4 `ferry recv`
receivers are subscribed (live; they read as the sender writes), then 4 more
`ferry recv --from-start` read the stored file from its start (catch-up,
served from the channel log).  Same relay, same file, same client;
per-receiver MB/s is each receiver's own figure for the file (file-begin to
file-end), and catchup_over_live is the median catch-up receiver's over the
median live one's.  Receivers write to a tmpfs (/dev/shm when there is one)
so the client's fsync does not turn this into a disk benchmark.
"""
import os
import shutil
import socket
import statistics
import tempfile
import time

from . import procs, swarm
from . import suite as _suite

MiB = 1 << 20
GiB = 1 << 30
PEER_PACKET = 64 << 10
SMALL_PACKET, SMALL_RX = 128, 16
CATCHUP_RX = 4


# ---- redis-server ----------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_start(suite, tag):
    """A fresh redis-server on 127.0.0.1, a free port, no persistence, a temp
    dir.  Returns (Popen, "127.0.0.1:PORT", dir); raises RuntimeError when it
    does not accept connections within 10 s (three ports are tried: the free
    port can be taken between the probe and redis's bind)."""
    d = tempfile.mkdtemp(prefix="redis-%s-" % tag, dir=suite.work)
    for _ in range(3):
        port = _free_port()
        log = open(os.path.join(suite.logs, "%s.redis.log" % tag), "wb")
        p = procs.spawn([suite.bin["redis"], "--bind", "127.0.0.1", "--port", str(port),
                         "--save", "", "--appendonly", "no", "--dir", d,
                         "--daemonize", "no"], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    procs.log("server up", kind="redis", pid=p.pid, listen="127.0.0.1:%d" % port)
                    return p, "127.0.0.1:%d" % port, d
            except OSError:
                time.sleep(0.02)
        procs.stop(p)
    shutil.rmtree(d, ignore_errors=True)
    raise RuntimeError("redis-server did not accept connections (see %s)" % suite.logs)


def _run_redis(suite, tag, n, size, packet, timeout):
    try:
        p, addr, d = _redis_start(suite, tag)
    except (RuntimeError, OSError) as e:
        procs.warn("redis-server did not start", err='"%s"' % e)
        return {"error": str(e)}
    try:
        argv = [suite.bin["peer_redis"], "--server", addr, "--receivers", str(n),
                "--size", str(size), "--chunk", str(packet), "--timeout", "%g" % timeout]
        out_path = os.path.join(suite.logs, "%s.peer_redis.out" % tag)
        err_path = os.path.join(suite.logs, "%s.peer_redis.err" % tag)
        procs.log("peer_redis start", tag=tag, argv='"%s"' % " ".join(argv))
        t0 = time.monotonic()
        cpu0 = procs.cpu_seconds(p.pid)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            c = procs.spawn(argv, stdout=out, stderr=err)
            rc, over = procs.wait(c, timeout + 20)
        cpu1 = procs.cpu_seconds(p.pid)
        res = {"argv": argv, "rc": rc, "wall_s": round(time.monotonic() - t0, 3),
               "stdout": out_path, "stderr": err_path, "server_alive": p.poll() is None}
        if cpu0 is not None and cpu1 is not None:
            res["server_cpu_s"] = round(cpu1 - cpu0, 3)
        with open(out_path, errors="replace") as f:
            line = swarm.last_kv_line(f.read())
        if line:
            res.update(swarm.parse_kv(line))
        else:
            with open(err_path, errors="replace") as f:
                res["error"] = "no key=value line (rc=%s): %s" % (rc, f.read()[-600:].strip())
        if over:
            res["overran"] = True
        procs.log("peer_redis done", tag=tag, rc=rc, mbps=res.get("mbps_aggregate", "?"),
                  lost_bytes=res.get("lost_bytes", "?"))
        return res
    finally:
        procs.stop(p)
        shutil.rmtree(d, ignore_errors=True)


# ---- peers --------------------------------------------------------------------------

def _lost(res, expected):
    got = res.get("bytes")
    return None if not isinstance(got, int) else expected - got


def _cpu_per_gib(res):
    """The relay's CPU seconds (utime + stime over the run) per GiB delivered
    to all receivers together; None for a failed run or one without both."""
    cpu, got = res.get("server_cpu_s"), res.get("bytes")
    if swarm.failed(res) or cpu is None or not isinstance(got, int) or got <= 0:
        return None
    return round(cpu / (got / GiB), 4)


def peers_case(suite):
    sh = suite.shape
    reps = sh["reps"]
    size, small = sh["peers_size"], sh["peers_small_size"]
    points = [(n, PEER_PACKET, size) for n in sh["peers"]] + [(SMALL_RX, SMALL_PACKET, small)]
    title = ("ferryd (defaults, stores every frame) vs redis-server pub/sub (nothing on disk): "
             "1 -> N, %d MiB per receiver, 64 KiB messages; and 1 -> %d x 128-byte messages "
             "(%d MiB)" % (size // MiB, SMALL_RX, small // MiB))
    procs.log("case", name="peers", title='"%s"' % title, reps=reps)
    c = {"title": title + (" (median of %d)" % reps if reps > 1 else ""), "mode": "peers",
         "params": {"receivers": sh["peers"], "size": size, "packet": PEER_PACKET,
                    "small_receivers": SMALL_RX, "small_packet": SMALL_PACKET,
                    "small_size": small},
         "clients": {"ferryd": "ferry-swarm --verify content",
                     "redis": "bench/peer_redis (RESP over plain sockets)"},
         "runs": {}, "points": []}
    suite.cases["peers"] = c
    targets = [t for t in ("ferryd", "redis")
               if suite.bin[t] and (t != "redis" or suite.bin["peer_redis"])]
    for n, packet, sz in points:
        key = "small" if packet == SMALL_PACKET else str(n)
        pt = {"key": key, "receivers": n, "packet": packet, "size": sz,
              "bytes_expected": n * sz, "runs": {}, "repeats": {t: [] for t in targets}}
        c["points"].append(pt)
        # 64 receivers x 256 MiB is 16 GiB delivered: allow for ~200 MB/s
        timeout = max(60, int(n * sz / 200e6) + 30)
        for i in range(reps):
            for t in targets:
                tag = "peers_%s_%d" % (key, i)
                if t == "ferryd":
                    r = suite.run_one(tag, "ferryd", "bulk",
                                      suite.base_opts(n, sz, packet), timeout)
                else:
                    r = _run_redis(suite, tag, n, sz, packet, timeout)
                r["lost_bytes"] = _lost(r, n * sz)
                r["cpu_per_gib"] = _cpu_per_gib(r)
                pt["repeats"][t].append(r)
                pt["runs"][t] = _suite.median_run(pt["repeats"][t], "mbps_aggregate")
                suite.save("peers")
        f = _suite._v(pt["runs"].get("ferryd"), "mbps_aggregate")
        rd = _suite._v(pt["runs"].get("redis"), "mbps_aggregate")
        pt["ferry_over_redis"] = _suite.ratio(f, rd)
        pt["lost_bytes"] = {t: sum(x.get("lost_bytes") or 0 for x in xs)
                            for t, xs in pt["repeats"].items()}
        pt["cpu_per_gib"] = {t: _suite.median([x.get("cpu_per_gib") for x in xs])
                             for t, xs in pt["repeats"].items()}
        procs.log("peers point", key=key, ferryd_mbps=f, redis_mbps=rd,
                  ferry_over_redis=pt["ferry_over_redis"],
                  lost_bytes_ferryd=pt["lost_bytes"].get("ferryd"),
                  lost_bytes_redis=pt["lost_bytes"].get("redis"),
                  ferryd_cpu_per_gib=pt["cpu_per_gib"].get("ferryd"),
                  redis_cpu_per_gib=pt["cpu_per_gib"].get("redis"))
        suite.save("peers")


# ---- catchup --------------------------------------------------------------------------

def _recv_phase(suite, ferry, addr, tag, outdir):
    """Start CATCHUP_RX `ferry recv --from-start --count 1`; return their Popens
    and output paths (the caller waits)."""
    ps = []
    for i in range(CATCHUP_RX):
        out = os.path.join(suite.logs, "%s.recv%d.out" % (tag, i))
        with open(out, "wb") as o, open(out[:-4] + ".err", "wb") as e:
            p = procs.spawn([ferry, "recv", "--server", addr, "--channel", "catchup",
                             "--out", os.path.join(outdir, "%s%d" % (tag, i)), "--from-start",
                             "--count", "1", "--quiet"], stdout=o, stderr=e)
        ps.append((p, out))
    return ps


def _recv_collect(ps, size, digest, t0, timeout):
    each, bad, fails = [], 0, 0
    for p, out in ps:
        rc, over = procs.wait(p, max(1.0, timeout - (time.monotonic() - t0)))
        fails += 1 if (over or rc != 0) else 0
        got = {}
        with open(out, errors="replace") as f:
            for line in f:
                if line.startswith("file="):
                    got = swarm.parse_kv(line)
        ok = got.get("bytes") == size and got.get("sha256") == digest
        bad += 0 if ok else 1
        each.append(got.get("mbps") if ok else None)
    secs = time.monotonic() - t0
    good = [x for x in each if x is not None]
    res = {"receivers": len(ps), "mbps_each": each,
           "mbps_per_receiver": round(statistics.median(good), 1) if good else None,
           "seconds": round(secs, 3), "integrity_failures": bad, "failed_receivers": fails,
           "mbps_aggregate": round(len(good) * size / secs / 1e6, 1) if good else None}
    if fails:
        res["error"] = "%d receiver(s) failed" % fails
    return res


def _catchup_once(suite, i, path, size, digest, scratch):
    tag = "catchup%d" % i
    data = tempfile.mkdtemp(prefix="data-%s-" % tag, dir=suite.work)
    outdir = tempfile.mkdtemp(prefix="recv-%s-" % tag, dir=scratch)
    try:
        srv = procs.Server("ferryd", suite.bin["ferryd"], data, suite.logs, tag)
    except (RuntimeError, OSError) as e:
        shutil.rmtree(data, ignore_errors=True)
        return {"error": str(e)}, {"error": str(e)}
    try:
        ferry = suite.bin["ferry"]
        timeout = 120
        live = _recv_phase(suite, ferry, srv.addr, tag + ".live", outdir)
        time.sleep(0.3)  # subscribed before the first frame: they read it as it is written
        t0 = time.monotonic()
        with open(os.path.join(suite.logs, "%s.send.out" % tag), "wb") as o:
            snd = procs.spawn([ferry, "send", "--server", srv.addr, "--channel", "catchup",
                               "--quiet", path], stdout=o, stderr=o)
        lv = _recv_collect(live, size, digest, t0, timeout)
        src, _ = procs.wait(snd, 30)
        lv["send_rc"] = src
        shutil.rmtree(outdir, ignore_errors=True)  # tmpfs: give the memory back
        os.makedirs(outdir)
        t0 = time.monotonic()
        cu = _recv_collect(_recv_phase(suite, ferry, srv.addr, tag + ".catchup", outdir),
                           size, digest, t0, timeout)
        return lv, cu
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)


def catchup_case(suite):
    size = suite.shape["catchup_size"]
    reps = suite.shape["reps"]
    title = ("%d `ferry recv` reading a stored %d MiB file from its start (catch-up) vs %d "
             "live ones of the same file, same ferryd (defaults)"
             % (CATCHUP_RX, size // MiB, CATCHUP_RX))
    procs.log("case", name="catchup", title='"%s"' % title, reps=reps)
    c = {"title": title + (" (median of %d)" % reps if reps > 1 else ""), "mode": "catchup",
         "params": {"size": size, "receivers": CATCHUP_RX}, "runs": {},
         "repeats": {"live": [], "catchup": []}}
    suite.cases["catchup"] = c
    if not (suite.bin["ferryd"] and suite.bin["ferry"]):
        c["skipped"] = "ferryd or ferry not built"
        suite.skipped.append(("catchup", c["skipped"]))
        suite.save("catchup")
        return
    scratch_root = "/dev/shm" if os.path.isdir("/dev/shm") else suite.work
    scratch = tempfile.mkdtemp(prefix="ferry-bench-catchup-", dir=scratch_root)
    procs.on_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True))
    try:
        path = os.path.join(scratch, "catchup-%dMiB.bin" % (size // MiB))
        digest = _suite._make_file(path, size)
        for i in range(reps):
            lv, cu = _catchup_once(suite, i, path, size, digest, scratch)
            c["repeats"]["live"].append(lv)
            c["repeats"]["catchup"].append(cu)
            for k in ("live", "catchup"):
                c["runs"][k] = _suite.median_run(c["repeats"][k], "mbps_per_receiver")
            suite.save("catchup")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lv = _suite._v(c["runs"].get("live"), "mbps_per_receiver")
    cu = _suite._v(c["runs"].get("catchup"), "mbps_per_receiver")
    c["catchup_over_live"] = _suite.ratio(cu, lv)
    c["scratch"] = scratch_root
    procs.log("catchup", live_mbps=lv, catchup_mbps=cu, catchup_over_live=c["catchup_over_live"])
    suite.save("catchup")
