#!/usr/bin/env python3
"""ns_test.py - issue 19's five failure tests: etcd and three real ferryd in
network namespaces (nsharness.py), real clients with retry, real faults.

    ns_test.py kill9|cutoff|sigstop|twofail|isr --ferryd PATH --ferry PATH [--seed N]

  kill9    the leader kill -9'd mid-file 10 times in a row at seeded random
           points (each time restarted; it rejoins as a follower); the time
           from each kill to the first ack by the new leader is printed
  cutoff   the leader cut off from etcd (a blackhole route) but not from its
           followers or clients: at most one epoch acknowledges at any time;
           healed, its unacknowledged tail is cut when it rejoins
  sigstop  the leader paused with SIGSTOP for 3 x TTL, then resumed: it never
           acknowledges again (no ack of its epoch after the resume) and
           rejoins as a follower
  twofail  two failovers in quick succession while one follower lags (its
           link shaped slow): every committed prefix identical
  isr      a follower restarted, then a follower's link dropping packets under
           load (netem loss, or a tbf queue that drops when sch_netem is
           missing): the in-sync set shrinks and grows back; both followers
           down: fewer than R in sync, and no ack meanwhile

Every test then checks (verify()): every acknowledged file (the sender's
--json "file" records) is on the final leader and on at least R relays with
its SHA-256; every relay's stored files are a prefix of the leader's (the
same files at the same seqs: a diverged tail was cut); every relay's copy
reads back clean (`ferry recv --stored` on a standalone ferryd over a copy of
its data dir); every receiver got every acknowledged file and nothing whose
SHA-256 differs from what was sent; acknowledgements of an older epoch
(the epoch of the file's place in the leader's log) never arrive after the
first one of a newer epoch, nor after the watcher saw the newer epoch in
etcd.  Exit 0 pass, 1 fail, 77 skipped (not root, no ip netns, no etcd).
"""
import argparse
import datetime
import os
import re
import random
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsharness as h  # noqa: E402

CHAN = "c1"
TTL = 2
R = 2
LIMIT_S = 140  # the whole test, below ctest's TIMEOUT (150)
SLACK = 0.3  # s: an ack's trip to the client, the watcher's poll
ACK_SLACK = 0.3  # s: the in-sync set an ack is checked against is etcd's this long before
# s: a follower's `file stored` line may come after its stored report (the
# line is written later in its writer's turn, on a loaded 2-core machine);
# an ack counts as early only when the line came later than this
STORE_SLACK = 0.5
IN_FLIGHT_S = 0.1  # s: acks read this soon after a kill left the old leader before it


class Fail(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Fail(what)


class Load:
    """Senders and receivers on CHAN for the test's length.  A thread runs
    `ferry send` batches of new files (seeded sizes, unique names) one after
    another, each bounded in time; every acknowledged file is recorded with
    its arrival time."""

    def __init__(self, cl, rnd, nrecv=2, batch=4, size=(32 << 10, 1 << 20), batch_s=15):
        self.cl = cl
        self.rnd = rnd
        self.src = os.path.join(cl.dir, "src")
        os.makedirs(self.src, exist_ok=True)
        self.sent = {}    # name -> sha256 of every file given to a sender
        self.acked = []   # (t, name, sha256) in arrival order
        self.batch, self.size, self.batch_s = batch, size, batch_s
        self.stop_ev = threading.Event()
        self.paused = threading.Event()
        self.n = 0
        self.senders = 0
        self.errors = []
        self.recv = []
        for k in range(nrecv):
            out = os.path.join(cl.dir, "recv%d" % k)
            self.recv.append((out, cl.receiver(CHAN, out, 0, name="recv%d" % k)))
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _files(self):
        names = []
        for _ in range(self.batch):
            self.n += 1
            name = "f%04d.bin" % self.n
            path = os.path.join(self.src, name)
            self.sent[name] = h.make_file(path, self.rnd.randint(*self.size), self.rnd)
            names.append(path)
        return names

    def _run(self):
        try:
            while not self.stop_ev.is_set():
                if self.paused.is_set():
                    time.sleep(0.05)
                    continue
                self.senders += 1
                p = self.cl.sender(CHAN, self._files(), name="send%d" % self.senders)
                deadline = time.monotonic() + self.batch_s
                seen = 0
                while p.alive() and time.monotonic() < deadline and not self.stop_ev.is_set():
                    seen = self._collect(p, seen)
                    time.sleep(0.01)
                if p.alive():
                    p.stop()
                else:
                    p.wait(5)
                self._collect(p, seen)
        except Exception:
            self.errors.append(traceback.format_exc())

    def _collect(self, p, seen):
        lines = p.json_lines()
        for t, o in lines[seen:]:
            if o.get("type") == "file":
                self.acked.append((t, o["file"], o["sha256"]))
        return len(lines)

    def acks_after(self, t0):
        return [a for a in list(self.acked) if a[0] > t0]

    def wait_ack_after(self, t0, timeout):
        """The arrival time of the first ack after t0, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            a = self.acks_after(t0)
            if a:
                return a[0][0]
            time.sleep(0.02)
        return None

    def finish(self):
        self.stop_ev.set()
        self.t.join(timeout=60)
        need(not self.errors, "sender loop failed: %s" % self.errors)

    def drain_receivers(self, timeout=30):
        """Wait until each receiver holds every acked file (bounded), then
        stop them.  Returns the missing ones per receiver."""
        want = {n: s for _, n, s in self.acked}
        deadline = time.monotonic() + timeout
        missing = {}
        while True:
            missing = {}
            for out, _ in self.recv:
                miss = [n for n in want if not os.path.exists(os.path.join(out, n))]
                if miss:
                    missing[out] = miss
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for _, p in self.recv:
            p.stop()
        return missing


# ---- the checks every test ends with ------------------------------------------------------

def epochs_file(cl, i):
    """[(epoch, start_seq)] from node i's DIR/channels/CHAN/epochs."""
    out = []
    try:
        with open(os.path.join(cl.data(i), "channels", CHAN, "epochs")) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                a, b = line.split()[:2]
                out.append((int(a, 16), int(b)))
    except (OSError, ValueError):
        pass
    return out


def epoch_of(epochs, seq):
    e = None
    for ep, start in epochs:
        if start <= seq:
            e = ep
    return e


def verify(cl, load, report, restart_dead=True):
    report["acked"] = len(load.acked)
    report["senders"] = load.senders
    need(load.acked, "no file was acknowledged at all")
    lead, st = cl.wait_leader(CHAN, timeout=15)
    report["final"] = "n%d epoch=%d isr=%s" % (lead + 1, st["epoch"], ",".join(st["isr"]))
    missing = load.drain_receivers()
    if restart_dead:
        for i in range(cl.n):
            if not cl.relays[i].alive():
                cl.start(i)
    time.sleep(1.0)  # followers catch up with the last files
    for i in range(cl.n):
        cl.stop(i)
    lists, fails = {}, []
    for i in range(cl.n):
        got = cl.read_back(i, CHAN, os.path.join(cl.dir, "rb%d" % i))
        lists[i] = got["files"]
        if got["rc"] != 0:
            fails.append("n%d: its stored copy did not read back clean (ferry recv exit %d)"
                         % (i + 1, got["rc"]))
    leader = lists[lead]
    lead_set = {(f["name"], f["sha256"]) for f in leader}
    acked = {(n, s) for _, n, s in load.acked}
    few = []
    for n, s in sorted(acked):
        if load.sent.get(n) != s:
            fails.append("acked %s with sha %s, sent %s" % (n, s, load.sent.get(n)))
        if (n, s) not in lead_set:
            fails.append("acknowledged file %s lost: not on the final leader n%d" % (n, lead + 1))
        copies = sum(1 for i in lists if (n, s) in {(f["name"], f["sha256"]) for f in lists[i]})
        if copies < R:
            few.append("%s (%d)" % (n, copies))
    if few:
        fails.append("%d acknowledged file(s) on fewer than R=%d relays, e.g. %s"
                     % (len(few), R, ", ".join(sorted(few)[:4])))
    # committed prefixes: each relay's files are the leader's first ones, seq for seq
    key = lambda f: (f["seq_first"], f["seq_last"], f["name"], f["sha256"])  # noqa: E731
    for i in lists:
        mine = [key(f) for f in lists[i]]
        theirs = [key(f) for f in leader[:len(mine)]]
        if mine != theirs:
            k = next(j for j in range(len(mine)) if j >= len(theirs) or mine[j] != theirs[j])
            fails.append("n%d's log is not a prefix of the leader's: file %d is %s, leader has %s"
                         % (i + 1, k, mine[k], theirs[k] if k < len(theirs) else None))
    report["stored"] = " ".join("n%d=%d" % (i + 1, len(lists[i])) for i in lists)
    # receivers
    for out, miss in missing.items():
        fails.append("receiver %s lacks %d acknowledged file(s), e.g. %s"
                     % (os.path.basename(out), len(miss), miss[:3]))
    for out, _ in load.recv:
        for name in sorted(os.listdir(out)) if os.path.isdir(out) else ():
            if name.startswith(".") or not os.path.isfile(os.path.join(out, name)):
                continue
            s = h.sha256_file(os.path.join(out, name))
            if load.sent.get(name) != s:
                fails.append("receiver %s: %s has sha %s, sent %s (a cut frame or a mismatch)"
                             % (os.path.basename(out), name, s[:12], str(load.sent.get(name))[:12]))
    # every ack only once every relay in sync then had stored the file
    fails += acked_before_stored(cl, load, leader, report)
    # acks of a file placed in an older epoch's range after etcd showed a
    # newer epoch: the new leader's acks of what it got from the old one
    # (resumed senders) or the old leader's late ones; counted, not failed:
    # a late ack by the old leader of a file the new one lacks fails as lost
    eps = epochs_file(cl, lead)
    report["epochs"] = " ".join("%d@%d" % e for e in eps)
    place = {(f["name"], f["sha256"]): f["seq_first"] for f in leader}
    first_seen = {}
    for t, e, _, _ in cl.epochs_seen():
        first_seen.setdefault(e, t)
    late = 0
    for t, n, s in sorted(load.acked):
        e = epoch_of(eps, place[(n, s)]) if (n, s) in place else None
        later = [first_seen[x] for x in first_seen if e is not None and x > e]
        late += 1 if later and t > min(later) + SLACK else 0
    report["acks_of_older_epoch_after_newer"] = late
    need(not fails, "; ".join(fails[:12]) + (" (and %d more)" % (len(fails) - 12)
                                              if len(fails) > 12 else ""))


def stored_times(cl, i):
    """{(name, seq_last): wall-clock time} of node i's `file stored` lines
    (seq_last: a file a sender continued is logged with seq_first=0)."""
    out = {}
    for ln in cl.grep_log(i, 'msg="file stored"'):
        m = re.search(r'ts=(\S+)Z .* name=(\S+) size=\d+ seq_first=\d+ seq_last=(\d+)', ln)
        if m:
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            wall = t.replace(tzinfo=datetime.timezone.utc).timestamp()
            out.setdefault((m.group(2), int(m.group(3))), wall)
    return out


def acked_before_stored(cl, load, leader, report):
    """Each ack (its arrival, wall clock) against the in-sync set etcd showed
    just before it (the watcher's samples from ACK_SLACK before the ack to
    the ack, intersected: a member taken out meanwhile is not counted) and
    each member's `file stored` line for the file at its final place: a
    member that stored it only after the ack is a failure.  The set is the
    members etcd showed in sync from ACK_SLACK before the ack to ACK_SLACK
    after it (a member taken out around the ack is not counted)."""
    place = {(f["name"], f["sha256"]): f["seq_last"] for f in leader}
    stored = [stored_times(cl, i) for i in range(cl.n)]
    seen = cl.epochs_seen()
    off = time.time() - time.monotonic()
    bad, checked = [], 0
    for t, n, s in load.acked:
        if (n, s) not in place:
            continue
        before = [x for x in seen if x[0] <= t - ACK_SLACK]
        # the leader takes a member out, then acks without it: the watcher
        # may show the removal only after the ack arrived
        inside = [x for x in seen if t - ACK_SLACK < x[0] <= t + ACK_SLACK]
        if not before:
            continue
        isr = set(before[-1][3])
        for x in inside:
            isr &= set(x[3])
        checked += 1
        for node in sorted(isr):
            w = stored[int(node[1:]) - 1].get((n, place[(n, s)]))
            if w is None or w > t + off + STORE_SLACK:
                bad.append("%s acked at %.3f but in-sync %s stored it %s" % (
                    n, t, node, "never" if w is None else "%.3f s later" % (w - t - off)))
    report["acks_checked_against_isr"] = checked
    if bad:
        return ["%d ack(s) before every in-sync relay had stored the file: %s"
                % (len(bad), "; ".join(bad[:4]))]
    return []


# ---- helpers -----------------------------------------------------------------------

def wait_isr(cl, pred, what, timeout):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = cl.chanstate(CHAN)
        if st and pred(st):
            return st
        time.sleep(0.05)
    raise Fail("%s: not within %.0f s (state %s)" % (what, timeout, st))


def start(cl, rnd, **kw):
    cl.watch(CHAN)
    load = Load(cl, rnd, **kw)
    need(load.wait_ack_after(0, 20) is not None, "the first file was not acknowledged in 20 s")
    return load


def full_isr(cl, timeout=15):
    """Wait until every relay is in sync (the followers caught up)."""
    return wait_isr(cl, lambda s: len(s["isr"]) == cl.n, "all %d relays in sync" % cl.n,
                    timeout)


# ---- the tests -------------------------------------------------------------------------

def t_kill9(cl, rnd, report):
    load = start(cl, rnd, size=(16 << 10, 512 << 10))
    times = []
    for rnd_i in range(10):
        full_isr(cl)
        time.sleep(rnd.uniform(0.1, 0.9))  # the seeded point: mid-file, as files keep coming
        old, st = cl.wait_leader(CHAN)
        t_kill = cl.kill9(old)
        new, st2 = cl.wait_leader(CHAN, not_node=old, min_epoch=st["epoch"] + 1, timeout=TTL + 10)
        # restarted once another leads: sooner, it would come back as the
        # leader itself (its node key again before the followers' takeover)
        restart = threading.Thread(target=cl.start, args=(old,), daemon=True)
        restart.start()
        t_ack = load.wait_ack_after(t_kill + IN_FLIGHT_S, 20)
        need(t_ack is not None, "round %d: no ack within 20 s of killing n%d" % (rnd_i + 1,
                                                                                 old + 1))
        times.append(t_ack - t_kill)
        h.log("failover", round=rnd_i + 1, killed="n%d" % (old + 1), leader="n%d" % (new + 1),
              epoch=st2["epoch"], kill_to_first_ack_s="%.3f" % times[-1])
        restart.join(timeout=TTL + 15)
        need(not restart.is_alive() and cl.relays[old].alive(),
             "round %d: n%d did not restart" % (rnd_i + 1, old + 1))
    report["kill_to_first_ack_s"] = ",".join("%.2f" % x for x in times)
    report["kill_to_first_ack_max_s"] = "%.3f" % max(times)
    load.finish()
    verify(cl, load, report)


def t_cutoff(cl, rnd, report):
    load = start(cl, rnd)
    full_isr(cl)
    time.sleep(0.5)
    old, st = cl.wait_leader(CHAN)
    t_cut = cl.cut_etcd(old)
    new, st2 = cl.wait_leader(CHAN, not_node=old, min_epoch=st["epoch"] + 1, timeout=TTL + 10)
    t_new = time.monotonic()
    t_ack = load.wait_ack_after(t_new, 15)
    need(t_ack is not None, "no ack by the new leader n%d within 15 s" % (new + 1))
    report["cut_to_new_epoch_s"] = "%.3f" % (t_new - t_cut)
    report["cut_to_first_ack_s"] = "%.3f" % (t_ack - t_cut)
    time.sleep(1.0)
    cl.heal_etcd(old)
    st3 = wait_isr(cl, lambda s: "n%d" % (old + 1) in s["isr"] and s["epoch"] == st2["epoch"],
                   "the old leader n%d back in sync as a follower" % (old + 1), 20)
    report["rejoined"] = "isr=%s" % ",".join(st3["isr"])
    time.sleep(0.5)
    load.finish()
    verify(cl, load, report, restart_dead=False)


def t_sigstop(cl, rnd, report):
    load = start(cl, rnd)
    full_isr(cl)
    time.sleep(0.5)
    old, st = cl.wait_leader(CHAN)
    t_stop = cl.pause(old)
    new, st2 = cl.wait_leader(CHAN, not_node=old, min_epoch=st["epoch"] + 1, timeout=TTL + 10)
    left = 3 * TTL - (time.monotonic() - t_stop)
    if left > 0:
        time.sleep(left)
    t_res = cl.resume(old)
    report["paused_s"] = "%.2f" % (t_res - t_stop)
    need(load.wait_ack_after(t_res, 15) is not None, "no ack after the resume")
    st3 = wait_isr(cl, lambda s: "n%d" % (old + 1) in s["isr"] and s["leader"] != "n%d" % (old + 1),
                   "the resumed n%d back in sync as a follower" % (old + 1), 20)
    report["rejoined"] = "leader=%s isr=%s" % (st3["leader"], ",".join(st3["isr"]))
    lead_metric = 'ferry_cluster_leader{channel="%s"} ' % CHAN
    m = cl.metrics(old)
    need(lead_metric + "0" in m, "the resumed n%d does not say it follows (%s)"
         % (old + 1, [x for x in m.splitlines() if lead_metric in x]))
    time.sleep(0.5)
    load.finish()
    # verify(): no ack of the paused leader's epoch arrives after etcd showed
    # the next one, so none after the resume
    verify(cl, load, report, restart_dead=False)


def t_twofail(cl, rnd, report):
    load = start(cl, rnd)
    full_isr(cl)
    a, st = cl.wait_leader(CHAN)
    lag = next(i for i in range(cl.n) if i != a and i != (a + 1) % cl.n)
    cl.lossy(lag)  # the lagging follower
    report["loss_kind"] = '"%s"' % cl.loss_kind
    time.sleep(1.0)
    t1 = cl.kill9(a)
    b, st2 = cl.wait_leader(CHAN, not_node=a, min_epoch=st["epoch"] + 1, timeout=TTL + 10)
    # With the lagging one out of sync the new leader may be alone in sync
    # (below R: no acks, by the rule) until the killed one is back.  (Before
    # the leader held a sender's welcome for its replicas, a reconnecting
    # sender counted the new leader's files as acked: that passed here.)
    cl.start(a)
    need(load.wait_ack_after(t1 + IN_FLIGHT_S, 25) is not None,
         "no ack after the first failover")
    # the second one as soon as the restarted one is back in sync (so that
    # R relays are left in sync after it)
    wait_isr(cl, lambda s: "n%d" % (a + 1) in s["isr"], "the restarted n%d back in sync"
             % (a + 1), 20)
    t2 = cl.kill9(b)
    c, st3 = cl.wait_leader(CHAN, not_node=b, min_epoch=st2["epoch"] + 1, timeout=TTL + 10)
    # the lagging one may be out of sync: then the new leader is alone in
    # sync (below R, no acks) until the killed one is back
    cl.start(b)
    need(load.wait_ack_after(t2 + IN_FLIGHT_S, 20) is not None,
         "no ack after the second failover")
    report["failovers"] = "n%d->n%d (epoch %d) ->n%d (epoch %d), %.2f s apart" % (
        a + 1, b + 1, st2["epoch"], c + 1, st3["epoch"], t2 - t1)
    cl.clean(lag)
    full_isr(cl, 25)
    time.sleep(0.5)
    load.finish()
    verify(cl, load, report)


def t_isr(cl, rnd, report):
    load = start(cl, rnd)
    full_isr(cl)
    lead, st = cl.wait_leader(CHAN)
    f1, f2 = [i for i in range(cl.n) if i != lead]
    name = lambda i: "n%d" % (i + 1)  # noqa: E731
    # a follower restarted
    cl.stop(f1)
    wait_isr(cl, lambda s: name(f1) not in s["isr"], "isr without the stopped %s" % name(f1), 15)
    cl.start(f1)
    wait_isr(cl, lambda s: name(f1) in s["isr"], "isr with the restarted %s" % name(f1), 20)
    # a link dropping packets under load
    cl.lossy(f2)
    report["loss_kind"] = '"%s"' % cl.loss_kind
    wait_isr(cl, lambda s: name(f2) not in s["isr"], "isr without the lossy %s" % name(f2), 25)
    cl.clean(f2)
    wait_isr(cl, lambda s: name(f2) in s["isr"], "isr with %s once its link is clean"
             % name(f2), 25)
    # fewer than R in sync: no acks
    cl.kill9(f1)
    cl.kill9(f2)
    t_few = time.monotonic()
    wait_isr(cl, lambda s: len(s["isr"]) < R, "isr below R with both followers dead", 15)
    time.sleep(2.0)
    cl.start(f1)
    cl.start(f2)
    full_isr(cl, 25)
    need(load.wait_ack_after(time.monotonic(), 15) is not None, "no ack once back in sync")
    load.finish()
    # acks while etcd showed fewer than R in sync (after SLACK for the change to reach us)
    below = []
    seen = cl.epochs_seen()
    for k, (t, _, _, isr) in enumerate(seen):
        if len(isr) < R:
            end = seen[k + 1][0] if k + 1 < len(seen) else float("inf")
            below.append((t, end))
    bad = [a for a in load.acked for (s, e) in below if s + SLACK < a[0] < e - SLACK]
    need(below, "the watcher never saw the in-sync set below R")
    need(not bad, "%d ack(s) while fewer than R were in sync, e.g. %s at t=%.3f"
         % (len(bad), bad[0][1] if bad else "", bad[0][0] if bad else 0))
    report["isr_changes"] = len([x for x in seen])
    report["isr_log_lines"] = len(cl.grep_log(lead, 'msg="cluster in-sync set"'))
    report["below_r_s"] = "%.2f" % sum(min(e, time.monotonic()) - s for s, e in below)
    report["t_both_down"] = "%.3f" % t_few
    need(report["isr_log_lines"] > 0, 'no msg="cluster in-sync set" line in n%d\'s log'
         % (lead + 1))
    verify(cl, load, report)


def t_steady(cl, rnd, report):
    """No fault (not a ctest: a check of the harness and the checks)."""
    load = start(cl, rnd)
    time.sleep(2.0)
    load.finish()
    verify(cl, load, report)


TESTS = {"steady": t_steady, "kill9": t_kill9, "cutoff": t_cutoff, "sigstop": t_sigstop, "twofail": t_twofail,
         "isr": t_isr}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("test", choices=sorted(TESTS))
    ap.add_argument("--ferryd", required=True)
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FERRY_NS_SEED", "19")))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    why = h.can_netns()
    if why:
        print("skip: %s" % why, flush=True)
        return h.SKIP
    h.install(limit_s=LIMIT_S)
    h.stale()
    rnd = random.Random(args.seed)
    report = {"test": args.test, "seed": args.seed}
    t0 = time.monotonic()
    cl = None
    rc = 1
    try:
        cl = h.Cluster(args.test, {"ferryd": args.ferryd, "ferry": args.ferry}, ttl=TTL,
                       replicas=R, keep=args.keep)
        TESTS[args.test](cl, rnd, report)
        rc = 0
    except (Fail, RuntimeError) as e:
        report["fail"] = '"%s"' % str(e).replace('"', "'")
        if cl:
            cl.keep = True
            report["logs"] = cl.dir
            for k, line in enumerate(cl.log_errors()):
                print("relay_log_%d=\"%s\"" % (k, line.replace('"', "'")), flush=True)
    finally:
        if cl:
            cl.close()
    report["seconds"] = "%.1f" % (time.monotonic() - t0)
    report["result"] = "pass" if rc == 0 else "FAIL"
    print(" ".join("%s=%s" % kv for kv in report.items()), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
