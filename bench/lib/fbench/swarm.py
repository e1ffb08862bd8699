"""swarm.py - one bounded ferry-swarm run and its figures.

The swarm prints a readable table and ends its stdout with one key=value
line; with --json it also writes every figure and every receiver.  A run
here is bounded twice: the swarm's own --timeout, and a wall-clock limit a
little longer, after which the process is stopped by PID.  What comes back
is a dict: the key=value figures (numbers as numbers), 'detail' (the JSON,
when written), 'rc', 'wall_s', 'argv' and, when the run failed to produce
figures, 'error'.
"""
import json
import os
import time

from . import procs


def parse_kv(line):
    out = {}
    for tok in line.split():
        if "=" not in tok:
            continue
        k, v = tok.split("=", 1)
        v = v.strip('"')
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def last_kv_line(text):
    for line in reversed(text.splitlines()):
        if "=" in line and "mode=" in line:
            return line
    return None


def run(binary, target, mode, opts, timeout, log_dir, tag, prefix=()):
    """Run ferry-swarm once.  opts: flag name (without --) -> value; None
    values are left out (flag names as ferry-swarm spells them now: chunk,
    msg-rate, connect-timeout).  target: 'p2p' or HOST:PORT (--server)."""
    jpath = os.path.join(log_dir, "%s.swarm.json" % tag)
    argv = list(prefix) + [binary, "--mode", mode, "--server", target]
    for k, v in opts.items():
        if v is None:
            continue
        argv += ["--" + k, str(v)]
    argv += ["--timeout", "%g" % timeout, "--json", jpath]
    out_path = os.path.join(log_dir, "%s.swarm.out" % tag)
    err_path = os.path.join(log_dir, "%s.swarm.err" % tag)
    try:
        os.unlink(jpath)
    except FileNotFoundError:
        pass
    procs.log("swarm start", tag=tag, target=target, argv='"%s"' % " ".join(argv))
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = procs.spawn(argv, stdout=out, stderr=err)
        rc, overran = procs.wait(p, timeout + 20)
    wall = time.monotonic() - t0
    with open(out_path, "r", errors="replace") as f:
        text = f.read()
    res = {"argv": argv, "rc": rc, "wall_s": round(wall, 3), "stdout": out_path,
           "stderr": err_path}
    line = last_kv_line(text)
    if line:
        res.update(parse_kv(line))
    else:
        with open(err_path, "r", errors="replace") as f:
            tail = f.read()[-600:]
        res["error"] = "no key=value line (rc=%s%s): %s" % (
            rc, ", stopped after overrunning" if overran else "", tail.strip())
    if overran:
        res["overran"] = True
    try:
        with open(jpath) as f:
            res["detail"] = json.load(f)
    except (OSError, ValueError):
        pass
    procs.log("swarm done", tag=tag, rc=rc, wall_s="%.2f" % wall,
              mbps=res.get("mbps_aggregate", "?"),
              integrity_failures=res.get("integrity_failures", "?"))
    return res


def integrity(res):
    """Integrity failures the run reported (runs without figures are
    counted apart, as failed runs: see failed())."""
    if not res or "integrity_failures" not in res:
        return 0
    return int(res["integrity_failures"])


def failed(res):
    """True when the run gave no figures or hit its timeout."""
    return bool(res) and ("error" in res or res.get("timeout") == 1 or res.get("overran"))
