"""disk.py - ferryd against the disk it writes to (disk, sustained).

disk: the fanout case's shape (ferry-swarm, one sender, 64 KiB packets,
--verify content) at N = 1 and N = 4 receivers through the same ferryd with
the same flags (its defaults), once with --data on the disk and once with
--data on a tmpfs (/dev/shm), reps interleaved (disk, tmpfs, disk, tmpfs...)
so load from elsewhere hits both alike.  disk_over_tmpfs_N is the median
disk run's aggregate MB/s over the median tmpfs run's: 1.0 means the live
path never waits for the disk.

sustained: one 1 -> 1 run long enough that the relay must write at the
disk's pace (several GiB, sized from a first dd so that it lasts about
`sustained_seconds` at the disk's speed), against
`dd if=/dev/zero of=FILE bs=1M count=N oflag=direct` of the same size on the
same filesystem, interleaved rep by rep (dd, ferryd, dd, ferryd...).
sustained_over_dd is the median ferryd run's delivered MB/s over the median
dd's.

Where "the disk" is: a fresh directory in --disk-dir (default: the suite's
temp dir).  Both cases refuse a tmpfs there, and say which filesystem each
data directory was on (every run's data_fs, each case's fs).
"""
import os
import re
import shutil
import subprocess
import tempfile
import time

from . import procs
from . import suite as _suite

MiB = 1 << 20
DISK_RX = (1, 4)
TMPFS_ROOT = "/dev/shm"
MEMORY_FS = ("tmpfs", "ramfs")
DD_RE = re.compile(r"^(\d+) bytes.* copied, ([0-9.]+) s", re.M)


# ---- where a path lives --------------------------------------------------------------

def _unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def fsinfo(path):
    """The mount holding path, from /proc/self/mountinfo (the longest mount
    point that is a prefix of its real path; the last one listed when
    mounts stack): {"path", "mount", "fstype", "source", "free_bytes"}."""
    real = os.path.realpath(path)
    best = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                a, b = pre.split(), post.split()
                if len(a) < 5 or len(b) < 2:
                    continue
                mnt = _unescape(a[4])
                if real != mnt and not real.startswith(mnt.rstrip("/") + "/"):
                    continue
                if best is None or len(mnt) >= len(best["mount"]):
                    best = {"mount": mnt, "fstype": b[0], "source": _unescape(b[1])}
    except OSError:
        pass
    info = dict(best or {"mount": None, "fstype": None, "source": None}, path=real)
    try:
        st = os.statvfs(real)
        info["free_bytes"] = st.f_bavail * st.f_frsize
    except OSError:
        info["free_bytes"] = None
    return info


def _scratch(suite, parent, tag):
    """A fresh directory in parent, removed at the end of the case and, if
    the run is cut short, by the suite's exit handler."""
    d = tempfile.mkdtemp(prefix="ferry-bench-%s-" % tag, dir=parent)
    procs.on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def _disk_problem(info, need):
    """Why this directory cannot stand for the disk (None when it can)."""
    if info["fstype"] in MEMORY_FS:
        return ("%s is on %s, not on a disk (give a directory on the disk with --disk-dir)"
                % (info["path"], info["fstype"]))
    if info["free_bytes"] is not None and info["free_bytes"] < need:
        return "%s has %d MiB free, the case needs %d MiB" % (
            info["path"], info["free_bytes"] // MiB, need // MiB)
    return None


def _skip(suite, name, c, why):
    c["skipped"] = why
    suite.skipped.append((name, why))
    procs.warn("%s case skipped" % name, why='"%s"' % why)
    suite.save(name)


# ---- disk: --data on the disk vs on a tmpfs --------------------------------------------

def disk_case(suite):
    sh = suite.shape
    size, reps = sh["disk_size"], sh["reps"]
    title = ("ferryd (defaults) 1 -> N, %d MiB, 64 KiB packets: --data on the disk vs on a "
             "tmpfs" % (size // MiB))
    procs.log("case", name="disk", title='"%s"' % title, reps=reps)
    c = {"title": title + (" (median of %d)" % reps if reps > 1 else ""), "mode": "disk",
         "params": {"receivers": list(DISK_RX), "size": size, "packet": _suite.PACKET},
         "runs": {}, "points": []}
    suite.cases["disk"] = c
    if not suite.bin["ferryd"]:
        return _skip(suite, "disk", c, "ferryd not built")
    need = size + 256 * MiB
    why = _disk_problem(fsinfo(suite.disk_dir), need)
    if why is None and not os.path.isdir(TMPFS_ROOT):
        why = "%s does not exist: no tmpfs to compare with" % TMPFS_ROOT
    elif why is None:
        t = fsinfo(TMPFS_ROOT)
        if t["fstype"] != "tmpfs":
            why = "%s is %s, not a tmpfs" % (TMPFS_ROOT, t["fstype"])
        elif t["free_bytes"] is not None and t["free_bytes"] < need:
            why = "%s has %d MiB free, the case needs %d MiB" % (
                TMPFS_ROOT, t["free_bytes"] // MiB, need // MiB)
    if why:
        return _skip(suite, "disk", c, why)
    roots = {"disk": _scratch(suite, suite.disk_dir, "disk"),
             "tmpfs": _scratch(suite, TMPFS_ROOT, "disk")}
    c["fs"] = {k: fsinfo(v) for k, v in roots.items()}
    try:
        for n in DISK_RX:
            _disk_point(suite, c, n, size, reps, roots)
    finally:
        for d in roots.values():
            shutil.rmtree(d, ignore_errors=True)
    suite.save("disk")


def _disk_point(suite, c, n, size, reps, roots):
    pt = {"key": str(n), "receivers": n, "size": size, "runs": {},
          "repeats": {"disk": [], "tmpfs": []}}
    c["points"].append(pt)
    timeout = max(60, int(n * size / 50e6) + 30)  # even at 50 MB/s
    for i in range(reps):
        for where in ("disk", "tmpfs"):
            r = suite.run_one("disk_%d_%s%d" % (n, where, i), "ferryd", "bulk",
                              suite.base_opts(n, size), timeout, data_root=roots[where])
            pt["repeats"][where].append(r)
            pt["runs"][where] = _suite.median_run(pt["repeats"][where], "mbps_aggregate")
            suite.save("disk")
    d = _suite._v(pt["runs"]["disk"], "mbps_aggregate")
    t = _suite._v(pt["runs"]["tmpfs"], "mbps_aggregate")
    pt["disk_over_tmpfs"] = _suite.ratio(d, t)
    procs.log("disk point", receivers=n, disk_mbps=d, tmpfs_mbps=t,
              disk_over_tmpfs=pt["disk_over_tmpfs"])


# ---- sustained: 1 -> 1 for several GiB against dd ---------------------------------------

def dd_direct(suite, root, mib, tag, timeout):
    """`dd if=/dev/zero of=FILE bs=1M count=MIB oflag=direct` in root; the
    file is removed right after.  MB/s from dd's own byte count and seconds
    (its last line), else from the wall clock around it."""
    path = os.path.join(root, "dd-%s.bin" % tag)
    argv = [shutil.which("dd") or "dd", "if=/dev/zero", "of=" + path, "bs=1M",
            "count=%d" % mib, "oflag=direct"]
    err_path = os.path.join(suite.logs, "%s.dd.err" % tag)
    procs.log("dd start", tag=tag, argv='"%s"' % " ".join(argv))
    t0 = time.monotonic()
    try:
        with open(err_path, "wb") as err:
            p = procs.spawn(argv, stdout=subprocess.DEVNULL, stderr=err,
                            env=dict(os.environ, LC_ALL="C"))
            rc, over = procs.wait(p, timeout)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    wall = time.monotonic() - t0
    with open(err_path, errors="replace") as f:
        text = f.read()
    res = {"argv": argv, "rc": rc, "wall_s": round(wall, 3), "stderr": err_path}
    m = DD_RE.findall(text)
    nbytes, secs = (int(m[-1][0]), float(m[-1][1])) if m else (mib * MiB, wall)
    res.update(bytes=nbytes, seconds=round(secs, 3),
               mbps=round(nbytes / secs / 1e6, 1) if secs > 0 else None)
    if over or rc != 0 or nbytes != mib * MiB:
        res["error"] = "dd failed (rc=%s%s): %s" % (rc, ", overran" if over else "",
                                                   text.strip()[-300:])
        suite.notes.append("%s: %s" % (tag, res["error"].splitlines()[0][:200]))
    procs.log("dd done", tag=tag, rc=rc, mbps=res["mbps"])
    return res


def _dirty_limit():
    """Bytes of dirty page cache the kernel lets writers build up before it
    throttles them (vm.dirty_bytes, else vm.dirty_ratio of MemAvailable,
    roughly the kernel's own rule)."""
    try:
        with open("/proc/sys/vm/dirty_bytes") as f:
            b = int(f.read())
        if b:
            return b
        with open("/proc/sys/vm/dirty_ratio") as f:
            ratio = int(f.read())
        with open("/proc/meminfo") as f:
            avail = next(int(x.split()[1]) * 1024 for x in f if x.startswith("MemAvailable:"))
        return avail * ratio // 100
    except (OSError, ValueError, StopIteration):
        return None


def _sustained_size(sh, probe_mbps, free):
    """As long as the disk needs `sustained_seconds` for, within the shape's
    bounds and the free space; whole MiB."""
    want = probe_mbps * 1e6 * sh["sustained_seconds"] if probe_mbps else sh["sustained_size"]
    size = int(min(sh["sustained_size"], max(sh["sustained_min"], want)))
    if free is not None:
        size = min(size, free - 512 * MiB)
    return size // MiB * MiB


def sustained_case(suite):
    sh = suite.shape
    reps = sh["reps"]
    procs.log("case", name="sustained", title='"1 -> 1 for several GiB vs dd oflag=direct"',
              reps=reps)
    c = {"title": "", "mode": "sustained", "params": {}, "runs": {},
         "repeats": {"ferryd": [], "dd": []}}
    suite.cases["sustained"] = c
    if not suite.bin["ferryd"]:
        return _skip(suite, "sustained", c, "ferryd not built")
    info = fsinfo(suite.disk_dir)
    why = _disk_problem(info, sh["sustained_min"] + 512 * MiB)
    if why:
        return _skip(suite, "sustained", c, why)
    root = _scratch(suite, suite.disk_dir, "sustained")
    try:
        c["fs"] = fsinfo(root)
        probe = dd_direct(suite, root, sh["sustained_probe"] // MiB, "sustained_probe", 120)
        c["probe"] = probe
        if "error" in probe or not probe.get("mbps"):
            why = probe.get("error") or "dd gave no speed: %s" % probe["stderr"]
            return _skip(suite, "sustained", c, why.splitlines()[0][:200])
        size = _sustained_size(sh, probe["mbps"], c["fs"]["free_bytes"])
        # bounded: even at a tenth of the disk's speed the run ends
        timeout = int(min(sh["sustained_timeout"], size / (probe["mbps"] * 1e5) + 30))
        c["title"] = ("1 -> 1, %d MiB, 64 KiB packets, ferryd (defaults) with --data on the disk "
                      "vs dd bs=1M oflag=direct of the same size there" % (size // MiB)
                      + (" (median of %d)" % reps if reps > 1 else ""))
        c["params"] = dict(suite.base_opts(1, size), timeout=timeout)
        c["dirty_limit_bytes"] = _dirty_limit()
        for i in range(reps):
            c["repeats"]["dd"].append(dd_direct(suite, root, size // MiB, "sustained_dd%d" % i,
                                                timeout))
            c["runs"]["dd"] = _suite.median_run(c["repeats"]["dd"], "mbps")
            suite.save("sustained")
            r = suite.run_one("sustained%d" % i, "ferryd", "bulk", suite.base_opts(1, size),
                              timeout, data_root=root)
            c["repeats"]["ferryd"].append(r)
            c["runs"]["ferryd"] = _suite.median_run(c["repeats"]["ferryd"], "mbps_aggregate")
            suite.save("sustained")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    f = _suite._v(c["runs"].get("ferryd"), "mbps_aggregate")
    d = _suite._v(c["runs"].get("dd"), "mbps")
    c["sustained_over_dd"] = _suite.ratio(f, d)
    procs.log("sustained", ferryd_mbps=f, dd_mbps=d, sustained_over_dd=c["sustained_over_dd"])
    suite.save("sustained")
