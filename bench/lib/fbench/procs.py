"""procs.py - every process the suite starts, and its clean end.

The suite starts relays (ferryd, ferry-baseline), the swarm and small link
helpers.  Each one is registered here by PID the moment it exists; one
cleanup (run from atexit and from the SIGINT/SIGTERM/SIGHUP handlers) stops
each remaining PID with SIGTERM, waits, then SIGKILL, and reaps it, so a
failed or interrupted run leaves nothing behind.  Extra cleanups (temp
dirs, network namespaces) are registered here too and run after the
processes are gone, last registered first.
"""
import atexit
import os
import re
import signal
import subprocess
import sys
import time

_live = {}       # pid -> Popen
_cleanups = []   # callables, run in reverse order after the processes stop
_installed = False

LISTEN_RE = re.compile(rb"listening=(\S+)")


def log(msg, **kv):
    """One key=value progress line on stderr (the table goes to stdout)."""
    parts = ["level=info", 'msg="%s"' % msg]
    parts += ["%s=%s" % (k, v) for k, v in kv.items()]
    print(" ".join(parts), file=sys.stderr, flush=True)


def warn(msg, **kv):
    parts = ["level=warn", 'msg="%s"' % msg]
    parts += ["%s=%s" % (k, v) for k, v in kv.items()]
    print(" ".join(parts), file=sys.stderr, flush=True)


def _on_signal(signum, _frame):
    # SystemExit unwinds through every finally: and then atexit.
    raise SystemExit(128 + signum)


def install():
    """Arm the cleanup: atexit plus handlers for the usual stop signals."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


def on_cleanup(fn):
    _cleanups.append(fn)


def spawn(argv, stdout=None, stderr=None, stdin=subprocess.DEVNULL, env=None):
    """Start argv and register its PID.  stdout/stderr: file objects or None."""
    p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=stdin, env=env,
                         close_fds=True)
    _live[p.pid] = p
    return p


def stop(p, grace=6.0):
    """SIGTERM, wait up to grace seconds, then SIGKILL; always reaped."""
    if p is None:
        return None
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            warn("process ignored SIGTERM", pid=p.pid, action="SIGKILL")
            try:
                p.kill()
            except ProcessLookupError:
                pass
            p.wait()
    _live.pop(p.pid, None)
    return p.returncode


def wait(p, timeout):
    """Wait for p to exit on its own; past timeout stop it.  Returns
    (returncode, timed_out)."""
    try:
        rc = p.wait(timeout=timeout)
        _live.pop(p.pid, None)
        return rc, False
    except subprocess.TimeoutExpired:
        warn("process overran its time", pid=p.pid, timeout=timeout, action="stop")
        return stop(p, grace=2.0), True


def cleanup():
    for pid, p in list(_live.items()):
        stop(p, grace=3.0)
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup must go on whatever one step does
            warn("cleanup step failed", err=repr(e))


def cpu_seconds(pid):
    """CPU time the process has used so far, utime + stime of all its threads,
    from /proc/PID/stat (fields 14 and 15, in clock ticks); None when the
    process is gone or the file cannot be read."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: count from the last ')'
    rest = text[text.rfind(")") + 2:].split()
    try:
        ticks = int(rest[11]) + int(rest[12])
    except (IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_listening(p, paths, timeout=10.0):
    """Poll the files in paths for 'listening=HOST:PORT' (ferryd prints it on
    stderr, ferry-baseline on stdout).  Returns HOST:PORT or raises."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in paths:
            try:
                with open(path, "rb") as f:
                    m = LISTEN_RE.search(f.read())
            except OSError:
                m = None
            if m:
                return m.group(1).decode()
        if p.poll() is not None:
            raise RuntimeError("server exited with %s before listening (see %s)"
                               % (p.returncode, " ".join(paths)))
        time.sleep(0.02)
    raise RuntimeError("server did not print listening= within %.0f s (see %s)"
                       % (timeout, " ".join(paths)))


class Server:
    """One relay process on a fresh data directory.

    kind is 'ferryd' or 'baseline'; prefix is an argv prefix such as
    ['ip', 'netns', 'exec', NS] (ip execs the program: the PID stays the
    program's)."""

    def __init__(self, kind, binary, data_dir, log_dir, tag, listen="127.0.0.1:0",
                 extra=(), prefix=()):
        self.kind = kind
        self.out_path = os.path.join(log_dir, "%s.%s.out" % (tag, kind))
        self.err_path = os.path.join(log_dir, "%s.%s.err" % (tag, kind))
        argv = list(prefix) + [binary, "--listen", listen, "--data", data_dir] + list(extra)
        self.argv = argv
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = spawn(argv, stdout=out, stderr=err)
        try:
            self.addr = wait_listening(self.p, [self.err_path, self.out_path])
        except Exception:
            stop(self.p)
            raise
        log("server up", kind=kind, pid=self.p.pid, listen=self.addr)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        rc = stop(self.p)
        log("server stopped", kind=self.kind, pid=self.p.pid, rc=rc)
        return rc
