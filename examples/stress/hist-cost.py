#!/usr/bin/env python3
"""What a `hist:keys=common_pid` trigger costs a trace_marker write (issue 13: at most 10 %).

    examples/stress/hist-cost.py MOUNT [N]

MOUNT is a mounted utracefs (with hist: the embedded catalog or --extras; with --spin-us 0, or
waiting workers' CPU time counts as the markers'). Writes N markers
(default 40000) into an instance, four times without and four times with the histogram, and
prints the medians of the write rate and of the daemon's CPU time per marker (utime+stime of
the process serving MOUNT), which the machine's load disturbs much less than the rate.
"""
import os, statistics, subprocess, sys, time

mount = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 40000
pid = int(subprocess.check_output(["pgrep", "-f", f"utracefs.* {mount}$"]).split()[0])
tick = os.sysconf("SC_CLK_TCK")


def daemon_cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick


inst = os.path.join(mount, "instances", f"hist-cost-{os.getpid()}")
os.mkdir(inst)
try:
    marker = os.path.join(inst, "trace_marker")
    trigger = os.path.join(inst, "events/ftrace/print/trigger")

    def run():
        fd = os.open(marker, os.O_WRONLY)
        c0, t0 = daemon_cpu(), time.time()
        for _ in range(n):
            os.write(fd, b"hello world marker")
        t, c = time.time() - t0, daemon_cpu() - c0
        os.close(fd)
        return n / t, c / n * 1e6

    plain, hist = [], []
    for _ in range(4):
        plain.append(run())
        open(trigger, "w").write("hist:keys=common_pid")
        hist.append(run())
        open(trigger, "w").write("!hist:keys=common_pid")
    p_rate, h_rate = (statistics.median(r for r, _ in x) for x in (plain, hist))
    p_cpu, h_cpu = (statistics.median(c for _, c in x) for x in (plain, hist))
    print(f"writes/s:          plain {p_rate:.0f}, with hist {h_rate:.0f} ({h_rate / p_rate:.3f})")
    print(f"daemon CPU/marker: plain {p_cpu:.2f} us, with hist {h_cpu:.2f} us "
          f"(+{(h_cpu / p_cpu - 1) * 100:.1f} %)")
finally:
    os.rmdir(inst)
