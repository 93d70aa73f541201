"""Measurement 3: resident memory of an idle picomon daemon.

base_tick is an hour, so after tick 0 (every check runs once at start) the
daemon sits idle; VmRSS is read once it has no child left and its CPU time
has stopped moving. VmHWM (the peak, reached during tick 0) is reported
beside it because it is what the machine must really have free."""
import re

from . import configs
from .procs import (
    BenchError,
    Daemon,
    median,
    proc_status,
    rss_by_mapping_kib,
    rss_kib,
    rss_split_kib,
    wait_idle,
)
from .table import MISS, PASS

TARGETS_MIB = {"3.1": 5, "3.3": 30}


def idle_daemon_rss(ctx, n, tag):
    """Starts a daemon with N check_dummy checks, waits for it to be idle,
    returns (VmRSS KiB, VmHWM KiB, threads, results seen in its debug log,
    RssAnon KiB, RssFile KiB, (binary, libraries, anonymous) KiB)."""
    cfg = configs.picomon_dummy(ctx.work, tag, n, ctx.workers, base_tick=3600)
    with Daemon([ctx.picomon, "-c", cfg, "-D"], ctx.work, tag) as d:
        wait_idle(d.pid, ctx.settle, ctx.timeout(n), f"picomon daemon with {n} checks")
        rss, hwm = rss_kib(d.pid)
        anon, file = rss_split_kib(d.pid)
        threads = int(proc_status(d.pid)["Threads"])
        seen = len(re.findall(r"OK: ok", d.stderr()))
        by_map = rss_by_mapping_kib(d.pid)
        return rss, hwm, threads, seen, anon, file, by_map


def measure(ctx, table):
    """Rows 3.1-3.3; returns the median RSS (KiB) per size for row 2.5."""
    found = {}
    for rid, n in zip(("3.1", "3.2", "3.3"), ctx.sizes["mem"]):
        limit = TARGETS_MIB.get(rid)
        target = f"< {limit} MiB" if limit else "reported"
        try:
            samples = []
            for r in range(ctx.runs_small):
                ctx.log(f"  {n} checks, run {r + 1}/{ctx.runs_small}")
                samples.append(idle_daemon_rss(ctx, n, f"mem{n}-{r}"))
        except BenchError as e:
            table.fail([rid], target, e)
            continue
        rss = median([s[0] for s in samples])
        hwm = median([s[1] for s in samples])
        threads = samples[0][2]
        anon = median([s[4] for s in samples])
        file = median([s[5] for s in samples])
        seen = min(s[3] for s in samples)
        found[n] = rss
        verdict = "info" if not limit else (PASS if rss < limit * 1024 else MISS)
        own, libs, anon_map = (median([s[6][k] for s in samples]) for k in range(3))
        note = (
            f"resident by mapping: picomon binary {own / 1024:.1f} MiB, "
            f"shared libraries {libs / 1024:.1f} MiB, anonymous {anon_map / 1024:.1f} MiB"
        )
        if seen < n:
            note += (
                f"; the debug log showed only {seen} of {n} check_dummy results "
                "(log format changed, or not every check ran)"
            )
        table.set(
            rid,
            f"{rss / 1024:.1f} MiB (anonymous {anon / 1024:.1f} + file-backed {file / 1024:.1f}; "
            f"peak {hwm / 1024:.1f} MiB; {threads} threads)",
            target,
            verdict,
            note,
        )
    return found
