#!/usr/bin/env python3
"""check_monitoring.py - the packaged Grafana dashboard and alert rules
against the ferryd they are for.

Usage: check_monitoring.py FERRYD DASHBOARD.json ALERTS.yml ALERTS.test.yml

- the dashboard is JSON (json.load), every panel has targets, and every
  metric name in every panel's expr and every rule's expr is a family the
  real ferryd exports: the script starts it on loopback (port 0, temp data,
  stopped by PID in all cases) and reads the # TYPE lines of one scrape;
- promtool check rules and promtool test rules pass (exit 77, "skipped",
  when promtool is absent: Debian's package prometheus has it; CI installs
  it).
Every wait is bounded.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

PROMQL_WORDS = {
    # functions, aggregations, keywords and the label names used in by()
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "by", "without",
    "and", "or", "unless", "predict_linear", "label_values", "absent", "on", "ignoring",
    "instance", "job", "channel", "code", "role", "mode", "source", "kind", "thread",
    "upstream", "bool", "offset", "topk", "bottomk", "humanize",
}
BUILTIN = {"up"}  # series Prometheus itself makes for every target


def exported_families(ferryd):
    tmp = tempfile.mkdtemp(prefix="ferry-monitoring-")
    log = open(os.path.join(tmp, "ferryd.log"), "w+")
    p = subprocess.Popen([ferryd, "--listen", "127.0.0.1:0", "--data", os.path.join(tmp, "data"),
                          "--metrics", "127.0.0.1:0"], stderr=log, stdout=subprocess.DEVNULL)
    try:
        addr = None
        for _ in range(300):  # at most 15 s
            log.seek(0)
            m = re.search(r"^metrics=(\S+)$", log.read(), re.M)
            if m:
                addr = m.group(1)
                break
            if p.poll() is not None:
                break
            time.sleep(0.05)
        if not addr:
            log.seek(0)
            sys.exit("ferryd did not print metrics=: " + log.read()[-2000:])
        with urllib.request.urlopen("http://%s/metrics" % addr, timeout=10) as r:
            text = r.read().decode()
        return {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    e = re.sub(r"\[[^\]]*\]", "", e)               # range selectors
    e = re.sub(r"\{[^}]*\}", "", e)                # matchers
    e = re.sub(r"\$\w+", "", e)                    # Grafana variables
    names = set()
    for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        if w not in PROMQL_WORDS and not re.fullmatch(r"e\d*", w):
            names.add(w)
    return names


def rule_exprs(path):
    # A YAML subset: each rule's "expr:" is on one line (the file is ours).
    out = []
    for line in open(path):
        m = re.match(r"\s*expr:\s*(.+)$", line)
        if m:
            out.append(m.group(1).strip())
    return out


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    ferryd, dash_path, rules_path, rules_test = sys.argv[1:]
    fams = exported_families(ferryd)
    bad = []
    dash = json.load(open(dash_path))
    panels = dash.get("panels", [])
    if not panels:
        bad.append("dashboard: no panels")
    nexpr = 0
    for p in panels:
        targets = p.get("targets") or []
        if not targets:
            bad.append("panel %r: no targets" % p.get("title"))
        for t in targets:
            nexpr += 1
            for n in metric_names(t.get("expr", "")) - BUILTIN:
                if n not in fams:
                    bad.append("panel %r: %s is not a family ferryd exports" % (p.get("title"), n))
    rexprs = rule_exprs(rules_path)
    for e in rexprs:
        for n in metric_names(e) - BUILTIN:
            if n not in fams:
                bad.append("rule expr %r: %s is not a family ferryd exports" % (e, n))
    print("dashboard: %d panels, %d exprs; rules: %d exprs; ferryd exports %d families"
          % (len(panels), nexpr, len(rexprs), len(fams)))
    if bad:
        sys.exit("\n".join(bad))
    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool not found (Debian package prometheus): rule checks skipped")
        sys.exit(77)
    for args in (["check", "rules", rules_path], ["test", "rules", rules_test]):
        r = subprocess.run([promtool] + args, capture_output=True, text=True, timeout=60)
        print(r.stdout.strip())
        if r.returncode != 0:
            sys.exit("promtool %s: exit %d\n%s" % (" ".join(args), r.returncode, r.stderr))
    print("ok")


if __name__ == "__main__":
    main()
