"""fbench - the Ferry benchmark suite's helpers (driven by bench/run).

procs: every process started, stopped by PID; swarm: one ferry-swarm run;
netns: the suite's own namespaces for the real-link run; linkcopy: the
direct TCP copy used there; suite: the cases; report: table, goals, plots.
"""
