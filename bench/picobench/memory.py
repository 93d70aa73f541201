"""Measurement 3: the memory an idle picomon daemon costs.

base_tick is an hour, so after tick 0 (every check runs once at start) the
daemon sits idle; its footprint is read once it has no child left and its
CPU time has stopped moving. The targets are on private
memory: the pages only the daemon keeps (see
procs.footprint_kib). PSS and RSS are shown beside it; RSS also counts the
shared libraries and the executable's clean pages, which stay in the page
cache whoever maps them. VmHWM (the peak RSS, reached while the config is
evaluated and tick 0 runs) is reported because it is what the machine must
have free at start."""
import os
import re
import subprocess

from . import configs
from .procs import (
    BenchError,
    Daemon,
    footprint_kib,
    footprint_text,
    median,
    mib,
    proc_status,
    rss_kib,
    wait_idle,
)
from .table import INFO, MISS, PASS

# Private memory of an idle daemon, MiB, by row.
TARGETS_MIB = {"3.1": 1.5, "3.3": 12}


def idle_daemon_footprint(ctx, n, tag):
    """Starts a daemon with N check_dummy checks, waits for it to be idle,
    returns (footprint dict, VmHWM KiB, threads, results seen in its debug
    log)."""
    cfg = configs.picomon_dummy(ctx.work, tag, n, ctx.workers, base_tick=3600)
    with Daemon([ctx.picomon, "-c", cfg, "-D"], ctx.work, tag) as d:
        wait_idle(d.pid, ctx.settle, ctx.timeout(n), f"picomon daemon with {n} checks")
        fig = footprint_kib(d.pid)
        _, hwm = rss_kib(d.pid)
        threads = int(proc_status(d.pid)["Threads"])
        seen = len(re.findall(r"OK: ok", d.stderr()))
        return fig, hwm, threads, seen


def median_footprint(figs):
    return {k: median([f[k] for f in figs]) for k in figs[0]}


def measure(ctx, table):
    """Rows 3.1-3.3; returns the median footprint per size for row 2.5."""
    found = {}
    for rid, n in zip(("3.1", "3.2", "3.3"), ctx.sizes["mem"]):
        limit = TARGETS_MIB.get(rid)
        target = f"private <= {limit:g} MiB" if limit else "reported"
        try:
            samples = []
            for r in range(ctx.runs_small):
                ctx.log(f"  {n} checks, run {r + 1}/{ctx.runs_small}")
                samples.append(idle_daemon_footprint(ctx, n, f"mem{n}-{r}"))
        except BenchError as e:
            table.fail([rid], target, e)
            continue
        fig = median_footprint([s[0] for s in samples])
        hwm = median([s[1] for s in samples])
        threads = samples[0][2]
        seen = min(s[3] for s in samples)
        found[n] = (fig, hwm)
        verdict = "info" if not limit else (PASS if fig["private"] <= limit * 1024 else MISS)
        note = (
            f"private runs {', '.join(mib(s[0]['private']) for s in samples)} MiB; "
            f"smaps_rollup Anonymous {mib(fig['anon_total'])}, Private_Dirty {mib(fig['private_dirty'])}, "
            f"Swap {mib(fig['swap'])} MiB; resident by mapping: picomon binary {mib(fig['own'])} MiB, "
            f"shared libraries {mib(fig['libs'])} MiB, anonymous mappings {mib(fig['anon'])} MiB"
        )
        if seen < n:
            note += (
                f"; the debug log showed only {seen} of {n} check_dummy results "
                "(log format changed, or not every check ran)"
            )
        table.set(rid, f"{footprint_text(fig, hwm)}; {threads} threads", target, verdict, note)
    return found


SIZE_LIMITS_MB = {"picomon": 5.5, "picomon-watchdog": 1.5}


def binary_size(ctx, table):
    """Rows 3.4 and 3.5: picomon and picomon-watchdog (beside it) as
    installed, stripped, against 5.5 MB and 1.5 MB. The release profile
    strips already; `strip` again makes a build of another profile
    comparable. A smoke run measures the debug build it was given:
    reported, not judged."""
    picomon = ctx.picomon
    watchdog = os.path.join(os.path.dirname(picomon), "picomon-watchdog")
    for rid, name, path in (("3.4", "picomon", picomon), ("3.5", "picomon-watchdog", watchdog)):
        limit = SIZE_LIMITS_MB[name]
        target = f"<= {limit} MB"
        stripped = os.path.join(ctx.work, f"{name}.stripped")
        r = subprocess.run(["strip", "-o", stripped, path], capture_output=True, text=True)
        if r.returncode != 0:
            table.fail([rid], target, BenchError(f"strip {path}: {r.stderr.strip()}"))
            continue
        size = os.path.getsize(stripped)
        if ctx.smoke:
            verdict = INFO
        else:
            verdict = PASS if size <= limit * 1_000_000 else MISS
        table.set(rid, f"{size / 1e6:.2f} MB ({size} bytes; as built {os.path.getsize(path)})", target, verdict)
