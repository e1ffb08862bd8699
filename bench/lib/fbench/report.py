"""report.py - the suite's one table, its goals, the key=value line, plots.

Everything printed is derived here from the cases' figures (suite.cases),
so the table on stdout, bench/results/latest.md, latest.json, the plots'
data files and the closing key=value line always agree.  Ratios are taken
between targets measured in the same run: ferryd / p2p and
ferryd / baseline (for times and latencies, lower is better).
"""
import json
import os
import platform
import shutil
import subprocess
import time

from . import procs, swarm
from .suite import TARGETS, ratio

DOCS_BEGIN = "<!-- bench:latest:begin (written by bench/run --update-docs) -->"
DOCS_END = "<!-- bench:latest:end -->"


def _v(res, key):
    if not res or swarm.failed(res):
        return None
    v = res.get(key)
    return v if isinstance(v, (int, float)) else None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return "{:,d}".format(v).replace(",", " ")
    if abs(v) >= 1000:
        return "{:,.0f}".format(v).replace(",", " ")
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_ratio(v):
    return "-" if v is None else "%.2f" % v


class Report:
    def __init__(self, suite):
        self.s = suite
        self.rows = []   # (case, metric, {target: value}, note)
        self.goals = []  # (text, measured, met: True/False/None)
        self.kv = {}
        self._build()

    # ---- rows ---------------------------------------------------------------

    def row(self, case, metric, vals, note=""):
        self.rows.append((case, metric, vals, note))

    def _build(self):
        cs = self.s.cases
        get = lambda name: cs.get(name, {}).get("runs", {})
        one = get("one_to_one")
        if one:
            self.row(cs["one_to_one"]["title"], "MB/s",
                     {t: _v(one.get(t), "mbps_aggregate") for t in TARGETS})
        for name in sorted((n for n in cs if n.startswith("fanout_")),
                           key=lambda n: int(n.split("_")[1])):
            r = get(name)
            self.row(cs[name]["title"], "aggregate MB/s",
                     {t: _v(r.get(t), "mbps_aggregate") for t in TARGETS})
            self.row("", "per-receiver MB/s",
                     {t: _v(r.get(t), "mbps_per_receiver") for t in TARGETS})
        sm = get("small_msgs")
        if sm:
            self.row(cs["small_msgs"]["title"], "messages/s delivered",
                     {t: _v(sm.get(t), "msgs_per_s") for t in TARGETS})
        iso = cs.get("slow_isolation", {}).get("isolation", {})
        if iso:
            c = cs["slow_isolation"]
            self.row(c["title"], "fast rx MB/s (slowed run)",
                     {t: iso.get(t, {}).get("fast_mbps_slowed") for t in TARGETS})
            self.row("", "fast rx MB/s (none slowed, median)",
                     {t: iso.get(t, {}).get("mbps_unslowed_median") for t in TARGETS})
            self.row("", "isolation (slowed / none slowed)",
                     {t: iso.get(t, {}).get("ratio") for t in TARGETS})
        st = get("storm")
        if st:
            self.row(cs["storm"]["title"], "served",
                     {t: _v(st.get(t), "served") for t in TARGETS}, "p2p: n/a")
            self.row("", "refused (error frame)",
                     {t: _v(st.get(t), "refused") for t in TARGETS})
            self.row("", "served p99 ms",
                     {t: _v(st.get(t), "served_p99_ms") for t in TARGETS})
        rt = get("rate")
        if rt:
            c = cs["rate"]
            self.row(c["title"], "offered frames/s",
                     {t: c.get("offered", {}).get(t) for t in TARGETS})
            for k, label in (("p50_us", "p50 latency us"), ("p99_us", "p99 latency us"),
                             ("p999_us", "p99.9 latency us"), ("max_us", "max latency us")):
                self.row("", label, {t: _v(rt.get(t), k) for t in TARGETS})
        lk = cs.get("link")
        if lk and lk.get("runs"):
            r = lk["runs"]
            vals = {t: _v(r.get(t), "seconds") for t in ("baseline", "ferryd")}
            vals["p2p"] = _v(r.get("direct"), "seconds")
            self.row(lk["title"], "seconds (p2p = direct TCP copy)", vals)
        tl = cs.get("tls")
        if tl and tl.get("runs"):
            r = tl["runs"]
            self.row(tl["title"], "aggregate MB/s, plaintext",
                     {"ferryd": _v(r.get("plain"), "mbps_aggregate")})
            self.row("", "aggregate MB/s, TLS (kernel TLS: %s)" % ("yes" if tl.get("ktls")
                                                                   else "no, user space"),
                     {"ferryd": _v(r.get("tls"), "mbps_aggregate")})
            self.row("", "TLS over plaintext", {"ferryd": tl.get("tls_over_plain")})
        cl = cs.get("cluster")
        if cl and cl.get("runs"):
            r = cl["runs"]
            self.row(cl["title"], "aggregate MB/s, one relay",
                     {"ferryd": _v(r.get("single"), "mbps_aggregate")})
            self.row("", "aggregate MB/s, three-relay cluster",
                     {"ferryd": _v(r.get("cluster"), "mbps_aggregate")})
            self.row("", "cluster over single", {"ferryd": cl.get("cluster_over_single")})
            fo = r.get("failover") or {}
            self.row("", "failover s: leader kill -9 to first ack (TTL %s s)" % fo.get("ttl_s"),
                     {"ferryd": fo.get("failover_s")})
        # integrity, every run of every case
        tot = {t: 0 for t in TARGETS}
        bad = {t: 0 for t in TARGETS}
        for name, c in cs.items():
            extra = dict(c.get("reference_runs", {}))
            for t, xs in c.get("repeats", {}).items():
                extra.setdefault(t, [])
                extra[t] = extra[t] + xs
            for t, xs in extra.items():
                tt = "ferryd" if t in ("plain", "tls", "live", "catchup", "single",
                                       "cluster") else t
                if tt not in tot:
                    continue  # a peer (redis): its loss is reported apart, not ours
                for x in xs:
                    tot[tt] += swarm.integrity(x)
                    bad[tt] += 1 if swarm.failed(x) else 0
            for t, x in c.get("runs", {}).items():
                if t in c.get("repeats", {}):
                    continue  # counted with its repeats
                tt = "p2p" if t == "direct" else "ferryd" if t in ("star", "tree", "live",
                                                                    "catchup",
                                                                    "failover") else t
                if tt not in tot:
                    continue
                tot[tt] += swarm.integrity(x)
                bad[tt] += 1 if swarm.failed(x) else 0
        for pt in cs.get("peers", {}).get("points", []):
            for x in pt.get("repeats", {}).get("ferryd", []):
                tot["ferryd"] += swarm.integrity(x)
                bad["ferryd"] += 1 if swarm.failed(x) else 0
        for pt in cs.get("disk", {}).get("points", []):
            for xs in pt.get("repeats", {}).values():  # disk and tmpfs: both ferryd
                for x in xs:
                    tot["ferryd"] += swarm.integrity(x)
                    bad["ferryd"] += 1 if swarm.failed(x) else 0
        self.integrity = tot
        self.failed_runs = bad
        self.row("all runs", "integrity failures", dict(tot))
        self.row("all runs", "failed runs (no figures / timeout)", dict(bad))
        self._goals()

    # ---- goals and key=value -----------------------------------------------------

    def _val(self, case, t, key):
        return _v(self.s.cases.get(case, {}).get("runs", {}).get(t), key)

    def _goals(self):
        cs = self.s.cases
        g = self.goals
        p2p1 = self._val("one_to_one", "p2p", "mbps_aggregate")
        fy1 = self._val("one_to_one", "ferryd", "mbps_aggregate")
        bl1 = self._val("one_to_one", "baseline", "mbps_aggregate")
        r = ratio(fy1, p2p1)
        g.append(("ferryd 1->1 >= 0.5x p2p", fmt_ratio(r), None if r is None else r >= 0.5))
        f16 = self._val("fanout_16", "ferryd", "mbps_aggregate")
        b16 = self._val("fanout_16", "baseline", "mbps_aggregate")
        r16 = ratio(f16, b16)
        g.append(("ferryd >= 5x baseline at 16 receivers (aggregate MB/s)", fmt_ratio(r16),
                  None if r16 is None else r16 >= 5))
        smr = ratio(self._val("small_msgs", "ferryd", "msgs_per_s"),
                    self._val("small_msgs", "baseline", "msgs_per_s"))
        if smr is not None:
            g.append(("ferryd >= 5x baseline at 16 receivers, 128-byte messages (messages/s)",
                      fmt_ratio(smr), smr >= 5))
        iso = cs.get("slow_isolation", {}).get("isolation", {}).get("ferryd", {}).get("ratio")
        g.append(("slow-receiver isolation >= 0.9 (ferryd)", fmt_ratio(iso),
                  None if iso is None else iso >= 0.9))
        lk = cs.get("link", {}).get("runs", {})
        lr = ratio(_v(lk.get("ferryd"), "seconds"), _v(lk.get("direct"), "seconds"))
        why = cs.get("link", {}).get("skipped") or (
            "skipped" if "link" not in cs and not self.s.quick else None)
        g.append(("link run <= 1.05x direct time (ferryd)",
                  fmt_ratio(lr) if lr is not None else (why or "not run"),
                  None if lr is None else lr <= 1.05))
        tr = cs.get("tree", {})
        tos = tr.get("tree_over_star")
        if tr:
            g.append(("tree of edges >= 2.5x star, aggregate MB/s (ferryd)",
                      fmt_ratio(tos) if tos is not None else (tr.get("skipped") or "failed"),
                      None if tos is None else tos >= 2.5))
        st = cs.get("storm", {}).get("runs", {}).get("ferryd")
        served, want = _v(st, "served"), _v(st, "storm")
        g.append(("%s receivers served within 5 s (ferryd)" % (fmt(want) if want else "10 000"),
                  "%s of %s" % (fmt(served), fmt(want)) if served is not None else "not run",
                  None if served is None else served == want))
        dk = cs.get("disk")
        dk_pts = {pt["key"]: pt.get("disk_over_tmpfs") for pt in (dk or {}).get("points", [])}
        if dk:
            for n in ("1", "4"):
                v = dk_pts.get(n)
                g.append(("ferryd 1->%s with data on the disk >= 0.9x on a tmpfs (aggregate MB/s)"
                          % n, fmt_ratio(v) if v is not None else (dk.get("skipped") or "failed"),
                          None if v is None else v >= 0.9))
        su = cs.get("sustained")
        sod = (su or {}).get("sustained_over_dd")
        if su:
            g.append(("ferryd 1->1 sustained >= 0.9x dd oflag=direct on the same disk (MB/s)",
                      fmt_ratio(sod) if sod is not None else (su.get("skipped") or "failed"),
                      None if sod is None else sod >= 0.9))
        clc = cs.get("cluster")
        cos = (clc or {}).get("cluster_over_single")
        fo = (clc or {}).get("runs", {}).get("failover") or {}
        if clc:
            why = clc.get("skipped") or "failed"
            g.append(("three-relay cluster (R = 2) >= 0.8x one relay, 1 -> 4 aggregate MB/s",
                      fmt_ratio(cos) if cos is not None else why,
                      None if cos is None else cos >= 0.8))
            fs, ttl = fo.get("failover_s"), fo.get("ttl_s")
            g.append(("failover (leader kill -9 to first ack) <= TTL + 1 s",
                      "%s s (TTL %s s)" % (fmt(fs), ttl) if fs is not None else why,
                      None if fs is None else fs <= ttl + 1))
        integ = sum(self.integrity.values())
        fails = sum(self.failed_runs.values())
        g.append(("zero integrity failures everywhere", "%d failures, %d failed runs"
                  % (integ, fails), integ == 0 and fails == 0))
        kv = self.kv
        kv["suite"] = "quick" if self.s.quick else "full"
        kv["p2p_mbps"] = p2p1
        kv["ferryd_mbps"] = fy1
        kv["baseline_mbps"] = bl1
        kv["ferryd_p2p_ratio"] = r
        kv["ferryd_baseline_ratio"] = ratio(fy1, bl1)
        kv["ferryd_baseline_ratio_16"] = r16
        kv["slow_isolation_ratio"] = iso
        if not self.s.quick:
            kv["small_msgs_ferryd"] = self._val("small_msgs", "ferryd", "msgs_per_s")
            kv["storm_served"] = served
            kv["storm_connections"] = want
            kv["rate_p99_us_ferryd"] = self._val("rate", "ferryd", "p99_us")
            for t in ("ferryd", "p2p"):
                kv["rate240_p99_us_" + t] = self._val("rate_fixed", t, "p99_us")
                kv["rate240_max_us_" + t] = self._val("rate_fixed", t, "max_us")
            kv["link_ratio"] = lr
        tl = cs.get("tls")
        if tl:
            kv["tls_plain_mbps"] = _v(tl.get("runs", {}).get("plain"), "mbps_aggregate")
            kv["tls_mbps"] = _v(tl.get("runs", {}).get("tls"), "mbps_aggregate")
            kv["tls_over_plain"] = tl.get("tls_over_plain")
            kv["tls_ktls"] = ("yes" if tl.get("ktls") else "no") if tl.get("runs") else None
        if tr:
            kv["tree_star_mbps"] = _v(tr.get("runs", {}).get("star"), "mbps")
            kv["tree_mbps"] = _v(tr.get("runs", {}).get("tree"), "mbps")
            kv["tree_over_star"] = tos
            kv["tree_edge_rss_mib"] = _v(tr.get("runs", {}).get("tree"), "edge_rss_mib")
        pe = cs.get("peers")
        if pe:
            for pt in pe.get("points", []):
                k = ("small_over_redis" if pt["key"] == "small"
                     else "ferry_over_redis_%s" % pt["key"])
                kv[k] = pt.get("ferry_over_redis")
            for t in ("ferryd", "redis"):
                kv["peers_lost_bytes_" + t] = sum(pt.get("lost_bytes", {}).get(t, 0)
                                                  for pt in pe.get("points", []))
            for t in ("ferryd", "redis"):
                for pt in pe.get("points", []):
                    kv["%s_cpu_per_gib_%s" % (t, pt["key"])] = pt.get("cpu_per_gib", {}).get(t)
        cu = cs.get("catchup")
        if cu:
            kv["catchup_mbps"] = _v(cu.get("runs", {}).get("catchup"), "mbps_per_receiver")
            kv["live_mbps"] = _v(cu.get("runs", {}).get("live"), "mbps_per_receiver")
            kv["catchup_over_live"] = cu.get("catchup_over_live")
        if dk:
            kv["disk_over_tmpfs_1"] = dk_pts.get("1")
            kv["disk_over_tmpfs_4"] = dk_pts.get("4")
        if su:
            kv["sustained_mbps"] = _v(su.get("runs", {}).get("ferryd"), "mbps_aggregate")
            kv["dd_mbps"] = _v(su.get("runs", {}).get("dd"), "mbps")
            kv["sustained_over_dd"] = sod
        if clc:
            kv["single_mbps"] = _v(clc.get("runs", {}).get("single"), "mbps_aggregate")
            kv["cluster_mbps"] = _v(clc.get("runs", {}).get("cluster"), "mbps_aggregate")
            kv["cluster_over_single"] = cos
            kv["failover_s"] = fo.get("failover_s")
            kv["failover_ttl_s"] = fo.get("ttl_s")
            kv["cluster_acked"] = fo.get("acked")
            kv["cluster_lost_acked"] = fo.get("lost_acked")
            kv["cluster_mismatched"] = fo.get("mismatched")
        kv["integrity_failures"] = integ
        kv["failed_runs"] = fails
        met = [x for x in g if x[2] is not None]
        kv["goals_met"] = "%d/%d" % (sum(1 for x in met if x[2]), len(met))  # of those measured
        kv["seconds"] = (self.s.loaded["kv"]["seconds"] if self.s.loaded
                         else time.monotonic() - self.s.t0)

    def kv_line(self):
        out = []
        for k, v in self.kv.items():
            if v is None:
                v = "na"
            elif isinstance(v, float):
                v = "%.3f" % v if abs(v) < 10 else "%.1f" % v
            out.append("%s=%s" % (k, v))
        return " ".join(out)

    # ---- the table ----------------------------------------------------------------

    def table(self):
        head = ["case", "metric", "p2p", "baseline", "ferryd", "ferryd/p2p", "ferryd/baseline"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for case, metric, vals, note in self.rows:
            cells = [case, metric] + [fmt(vals.get(t)) for t in TARGETS]
            if metric.startswith(("integrity", "failed runs", "offered", "isolation", "refused",
                                  "TLS over")):
                cells += ["", ""]
            else:
                cells += [fmt_ratio(ratio(vals.get("ferryd"), vals.get("p2p"))),
                          fmt_ratio(ratio(vals.get("ferryd"), vals.get("baseline")))]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def peers_table(self):
        """ferryd against the peer relays (peers) and catch-up against live
        (catchup): targets other than the main table's three, so a table of
        their own.  Empty when neither case ran."""
        cs = self.s.cases
        lines = []
        pe = cs.get("peers")
        if pe and pe.get("points"):
            lines += ["| peers: 1 -> N | metric | ferryd | redis | ferryd/redis | lost bytes "
                      "ferryd / redis (all reps) |", "|---|---|---|---|---|---|"]
            for pt in pe["points"]:
                r = pt.get("runs", {})
                what = ("%d x %d-byte messages" % (pt["receivers"], pt["packet"])
                        if pt["key"] == "small" else "N = %d, 64 KiB" % pt["receivers"])
                lost = pt.get("lost_bytes", {})
                for key, label in (("mbps_aggregate", "aggregate MB/s"),
                                   ("msgs_per_s", "messages/s delivered")):
                    if key == "msgs_per_s" and pt["key"] != "small":
                        continue
                    f, d = _v(r.get("ferryd"), key), _v(r.get("redis"), key)
                    lines.append("| %s | %s | %s | %s | %s | %s |" % (
                        what, label, fmt(f), fmt(d), fmt_ratio(ratio(f, d)),
                        "%s / %s" % (fmt(lost.get("ferryd")), fmt(lost.get("redis")))
                        if key == "mbps_aggregate" else ""))
                    what = ""
                cpu = pt.get("cpu_per_gib", {})
                f, d = cpu.get("ferryd"), cpu.get("redis")
                lines.append("| | relay CPU s per GiB delivered | %s | %s | %s | |"
                             % (fmt(f), fmt(d), fmt_ratio(ratio(f, d))))
        cu = cs.get("catchup")
        if cu and cu.get("runs"):
            r = cu["runs"]
            lv = _v(r.get("live"), "mbps_per_receiver")
            cp = _v(r.get("catchup"), "mbps_per_receiver")
            if lines:
                lines.append("")
            lines += ["| catch-up | per-receiver MB/s, live | per-receiver MB/s, from start | "
                      "catch-up / live |", "|---|---|---|---|",
                      "| %s | %s | %s | %s |" % (cu["title"], fmt(lv), fmt(cp),
                                                fmt_ratio(cu.get("catchup_over_live")))]
        return "\n".join(lines)

    def disk_table(self):
        """ferryd with its data on the disk against a tmpfs (disk), and a long
        1 -> 1 against dd on the same disk (sustained).  Empty when neither ran."""
        cs = self.s.cases
        lines = []
        dk = cs.get("disk")
        if dk and dk.get("points"):
            fs = dk.get("fs", {})
            lines += ["| %s | aggregate MB/s, data on the disk (%s) | on a tmpfs | disk / tmpfs |"
                      % (dk["title"], fs.get("disk", {}).get("fstype") or "?"),
                      "|---|---|---|---|"]
            for pt in dk["points"]:
                r = pt.get("runs", {})
                lines.append("| 1 -> %d | %s | %s | %s |" % (
                    pt["receivers"], fmt(_v(r.get("disk"), "mbps_aggregate")),
                    fmt(_v(r.get("tmpfs"), "mbps_aggregate")),
                    fmt_ratio(pt.get("disk_over_tmpfs"))))
        su = cs.get("sustained")
        if su and su.get("runs"):
            r = su["runs"]
            if lines:
                lines.append("")
            lines += ["| sustained | ferryd delivered MB/s | dd oflag=direct MB/s (%s) | "
                      "ferryd / dd |" % (su.get("fs", {}).get("fstype") or "?"),
                      "|---|---|---|---|",
                      "| %s | %s | %s | %s |" % (su["title"],
                                                fmt(_v(r.get("ferryd"), "mbps_aggregate")),
                                                fmt(_v(r.get("dd"), "mbps")),
                                                fmt_ratio(su.get("sustained_over_dd")))]
        return "\n".join(lines)

    def goals_table(self):
        lines = ["| goal | measured | met |", "|---|---|---|"]
        for text, measured, met in self.goals:
            lines.append("| %s | %s | %s |" % (text, measured,
                                               {True: "yes", False: "**no**", None: "n/a"}[met]))
        return "\n".join(lines)

    def skipped_text(self):
        lines = ["- %s skipped: %s" % w for w in self.s.skipped]
        lines += ["- %s" % n for n in self.s.notes]
        return "\n".join(lines)

    def header(self, command):
        load = open("/proc/loadavg").read().split()[:3]
        return ("Run: %s, `%s`, %s suite, %.0f s; %s, %d CPUs; load average (1/5/15 min) "
                "%s at the start, %s at the end (anything above ~2 means other work shared "
                "the CPUs)."
                % (time.strftime("%Y-%m-%d %H:%M %Z"), command,
                   "quick" if self.s.quick else "full", self.kv["seconds"],
                   platform.platform(terse=True), os.cpu_count(), self.s.load_start,
                   " ".join(load)))

    def markdown(self, header):
        parts = [
            header,
            "",
            "Clients (ferry-swarm) and relays share the same CPUs; MB/s are 10^6 bytes of file "
            "payload per second; each figure is one run unless marked median.",
            "",
            self.table(),
            "",
        ]
        pt = self.peers_table()
        if pt:
            parts += [pt, ""]
        dt = self.disk_table()
        if dt:
            parts += [dt, ""]
        parts += [self.goals_table()]
        sk = self.skipped_text()
        if sk:
            parts += ["", sk]
        return "\n".join(parts) + "\n"

    # ---- files ----------------------------------------------------------------------

    def write(self, command, redraw=False):
        out = self.s.out
        if redraw and self.s.loaded and self.s.loaded.get("header"):
            head = self.s.loaded["header"]  # the run's own date, load and duration
        else:
            head = self.header(command)
        md = self.markdown(head)
        with open(os.path.join(out, "latest.md"), "w") as f:
            f.write(md)
        with open(os.path.join(out, "latest.json"), "w") as f:
            date = (self.s.loaded or {}).get("date") if redraw else None
            json.dump({"date": date or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "command": command, "header": head, "notes": self.s.notes,
                       "kv": self.kv, "goals": [{"goal": a, "measured": b, "met": c}
                                                for a, b, c in self.goals],
                       "rows": [{"case": a, "metric": b, "values": c} for a, b, c, _ in
                                self.rows],
                       "skipped": self.s.skipped}, f, indent=1)
        return md

    def plots(self):
        """Write the plots' data files and run gnuplot; returns the PNGs made."""
        out = self.s.out
        gp = shutil.which("gnuplot")
        made = []
        tp = os.path.join(out, "throughput.dat")
        xs = []
        one = self.s.cases.get("one_to_one", {}).get("runs", {})
        if one:
            xs.append((1, one))
        for name, c in self.s.cases.items():
            if name.startswith("fanout_"):
                xs.append((int(name.split("_")[1]), c["runs"]))
        xs.sort(key=lambda x: x[0])
        with open(tp, "w") as f:
            f.write("# receivers  aggregate MB/s: p2p baseline ferryd  "
                    "per-receiver MB/s: p2p baseline ferryd\n")
            for n, runs in xs:
                vals = [_v(runs.get(t), "mbps_aggregate") for t in TARGETS]
                vals += [_v(runs.get(t), "mbps_per_receiver") for t in TARGETS]
                f.write("%d %s\n" % (n, " ".join("?" if v is None else "%.1f" % v
                                                 for v in vals)))
        lp = os.path.join(out, "latency.dat")
        rt = self.s.cases.get("rate", {}).get("runs", {})
        if rt:
            with open(lp, "w") as f:
                f.write("# percentile  latency us: p2p baseline ferryd\n")
                for i, (k, label) in enumerate((("p50_us", "p50"), ("p90_us", "p90"),
                                                ("p99_us", "p99"), ("p999_us", "p99.9"),
                                                ("max_us", "max"))):
                    vals = [_v(rt.get(t), k) for t in TARGETS]
                    f.write("%d %s %s\n" % (i, label, " ".join(
                        "?" if v is None else "%.1f" % v for v in vals)))
        if not gp:
            procs.warn("gnuplot not found: plots not drawn", install="gnuplot-nox")
            return made
        term = _png_terminal(gp)
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "plot")
        jobs = [("throughput.gp", tp, os.path.join(out, "throughput.png"))]
        if rt:
            jobs.append(("latency.gp", lp, os.path.join(out, "latency.png")))
        for script, data, png in jobs:
            if len(xs) < 1 and script == "throughput.gp":
                continue
            r = subprocess.run([gp, "-e", "datafile='%s'; outfile='%s'; termname='%s'"
                                % (data, png, term), os.path.join(here, script)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                               text=True)
            if r.returncode == 0 and os.path.isfile(png):
                made.append(png)
            else:
                procs.warn("gnuplot failed", script=script, err='"%s"' % r.stderr.strip()[-300:])
        return made


def _png_terminal(gp):
    """pngcairo when this gnuplot has it (antialiased), else libgd's png."""
    r = subprocess.run([gp, "-e", "set terminal"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=20)
    return "pngcairo" if "pngcairo" in r.stdout else "png"


def update_docs(path, md, pngs, docs_rel_results):
    """Replace the marked section of docs/benchmarks.md with the latest table."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        procs.warn("docs not found, not updated", path=path)
        return False
    if DOCS_BEGIN not in text or DOCS_END not in text:
        procs.warn("docs have no bench:latest markers, not updated", path=path)
        return False
    pre = text.split(DOCS_BEGIN)[0]
    post = text.split(DOCS_END, 1)[1]
    imgs = "".join("\n![%s](%s/%s)\n" % (os.path.basename(p)[:-4],
                                           docs_rel_results, os.path.basename(p))
                   for p in pngs)
    with open(path, "w") as f:
        f.write(pre + DOCS_BEGIN + "\n" + md + imgs + DOCS_END + post)
    return True
