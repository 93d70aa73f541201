"""Measurement 2: the same work done by the floor, picomon, pcrunner and
Monit, per 1,000 check_dummy runs, and idle memory with the same checks.

- floor, picomon -1 and pcrunner (one run) are timed back to back in each
  round, so they see the same machine load; CPU includes the plugins.
- pcrunner posts its results to a local NSCA-web receiver on 127.0.0.1; a
  run counts only when every result arrived there.
- Monit is a poll-cycle daemon: it starts each `check program` at most
  once per cycle and collects the exit status at the next one, so it runs
  in the foreground for a window and the completed runs are counted from
  its log (which needs -v). Its wall time per 1,000 runs is bound by its
  cycle, not by the work; its CPU (own + reaped children) is comparable.
- Monit closes every possible descriptor in each child it starts, up to
  the soft RLIMIT_NOFILE; it runs with 1024, the soft limit systemd gives
  a service, rather than whatever the shell running the suite has (20,000
  here costs Monit about 5 ms of close() calls per program run). picomon,
  the floor and pcrunner mark their descriptors close-on-exec instead, so
  the limit does not change their figures.
"""
import os
import re

from . import configs
from .procs import (
    BenchError,
    Daemon,
    cpu_seconds,
    footprint_kib,
    footprint_text,
    median,
    rss_kib,
    run_timed,
    wait_for,
    wait_idle,
)
from .receiver import Receiver
from .table import INFO, SKIPPED
from .throughput import floor_once, picomon_once

# The soft open-files limit Monit runs with (see the module comment).
MONIT_NOFILE = 1024


def per_k(value, n):
    return value * 1000 / n


def pcrunner_once(ctx, yml, n, receiver, tag):
    receiver.reset()
    t = run_timed([ctx.pcrunner, "-c", yml], ctx.work, tag, ctx.timeout(n) + 60)
    got = receiver.count()
    # pcrunner adds one result about itself.
    if got < n:
        raise BenchError(
            f"pcrunner run: exit {t.rc}, the receiver got {got} of {n} results; see {ctx.work}/{tag}.err"
        )
    return t


def monit_window(ctx, n, window, tag):
    """Runs Monit with N check programs for `window` seconds; returns
    (completed runs, CPU seconds incl. reaped children, window)."""
    rc, log = configs.monit_dummy(ctx.work, tag, n, cycle=1)
    with Daemon([ctx.monit, "-I", "-v", "-c", rc], ctx.work, tag, nofile=MONIT_NOFILE) as d:
        wait_for(lambda: os.path.exists(log) and "program started" in open(log).read(), 30, "Monit's first cycle")
        start_runs = _monit_runs(log)
        start_cpu = cpu_seconds(d.pid)
        ctx.sleep(window)
        if d.proc.poll() is not None:
            raise BenchError(f"Monit exited early (status {d.proc.returncode}); see {log}")
        runs = _monit_runs(log) - start_runs
        cpu = cpu_seconds(d.pid) - start_cpu
    if runs <= 0:
        raise BenchError(f"Monit completed no program run in {window} s; see {log}")
    return runs, cpu, window


def _monit_runs(log):
    with open(log, errors="replace") as f:
        return len(re.findall(r"' status succeeded \(0\)", f.read()))


def measure(ctx, table):
    """Rows 2.1-2.4: the same runs by the floor, picomon, pcrunner, Monit."""
    n = ctx.sizes["peers"]
    target = "reported"
    res = {"floor": [], "pico": [], "pcr": []}
    pcr_reason = None if ctx.pcrunner else ctx.pcrunner_missing
    cfg = configs.picomon_dummy(ctx.work, "peers", n, ctx.workers)
    try:
        with Receiver() as receiver:
            yml = configs.pcrunner_dummy(ctx.work, "pcr", n, ctx.workers, receiver.url) if ctx.pcrunner else None
            for r in range(ctx.runs_small):
                ctx.log(f"  round {r + 1}/{ctx.runs_small}")
                res["floor"].append(floor_once(ctx, n, f"pfloor-{r}"))
                res["pico"].append(picomon_once(ctx, cfg, n, f"ppico-{r}"))
                if yml and pcr_reason is None:
                    try:
                        res["pcr"].append(pcrunner_once(ctx, yml, n, receiver, f"pcr-{r}"))
                    except BenchError as e:
                        pcr_reason = f"pcrunner failed: {e}"
    except BenchError as e:
        table.fail(["2.1", "2.2", "2.3"], target, e)
    else:
        for rid, key in (("2.1", "floor"), ("2.2", "pico"), ("2.3", "pcr")):
            if not res[key]:
                table.set(rid, f"skipped: {pcr_reason}", target, SKIPPED)
                continue
            wall = per_k(median([t.wall for t in res[key]]), n)
            cpu = per_k(median([t.cpu for t in res[key]]), n)
            ratio = ""
            if key != "floor":
                fw = per_k(median([t.wall for t in res["floor"]]), n)
                ratio = f"; {wall / fw:.2f}x the floor's wall"
            table.set(rid, f"{wall:.2f} s / {cpu:.2f} s{ratio}", target, INFO)
    if ctx.pcrunner and not res["pcr"] and pcr_reason:
        table.notes.append(f"2.3: {pcr_reason}")

    if ctx.monit is None:
        table.set("2.4", f"skipped: {ctx.monit_missing}", target, SKIPPED)
    else:
        try:
            samples = []
            for r in range(ctx.runs_small):
                ctx.log(f"  Monit window {r + 1}/{ctx.runs_small}")
                samples.append(monit_window(ctx, n, ctx.monit_window, f"monit-{r}"))
            runs = median([s[0] for s in samples])
            wall = median([per_k(s[2], s[0]) for s in samples])
            cpu = median([per_k(s[1], s[0]) for s in samples])
            table.set(
                "2.4",
                f"{wall:.2f} s / {cpu:.2f} s ({runs:g} runs completed in a {ctx.monit_window:g} s window; "
                "at most one run per program per cycle)",
                target,
                INFO,
            )
        except BenchError as e:
            table.fail(["2.4"], target, e)


def idle_memory(ctx, table, picomon_idle_100):
    """Rows 2.5-2.7: private memory, PSS and RSS with the same 100 checks,
    idle (procs.footprint_kib, read the same way for all three)."""
    n = ctx.sizes["rss"]
    target = "reported"
    if picomon_idle_100 is None:
        table.set("2.5", "see row 3.1 (not measured)", target, SKIPPED)
    else:
        fig, hwm = picomon_idle_100
        table.set("2.5", f"{footprint_text(fig, hwm)} (row 3.1)", target, INFO)
    if ctx.monit is None:
        table.set("2.6", f"skipped: {ctx.monit_missing}", target, SKIPPED)
    else:
        try:
            rc, _ = configs.monit_dummy(ctx.work, "monit-rss", n, cycle=3600)
            with Daemon([ctx.monit, "-I", "-c", rc], ctx.work, "monit-rss", nofile=MONIT_NOFILE) as d:
                # Monit's first cycle starts at once; its programs stay
                # zombies until the next cycle, so children are ignored.
                wait_idle(d.pid, max(ctx.settle, 1.0), 60, "Monit", children=False)
                fig, (_, hwm) = footprint_kib(d.pid), rss_kib(d.pid)
            table.set("2.6", footprint_text(fig, hwm), target, INFO)
        except BenchError as e:
            table.fail(["2.6"], target, e)
    if not ctx.pcrunner:
        table.set("2.7", f"skipped: {ctx.pcrunner_missing}", target, SKIPPED)
    else:
        try:
            with Receiver() as receiver:
                yml = configs.pcrunner_dummy(ctx.work, "pcr-rss", n, ctx.workers, receiver.url)
                argv = [ctx.pcrunner, "-c", yml, "start", "--no-daemon"]
                with Daemon(argv, ctx.work, "pcr-rss") as d:
                    wait_for(lambda: receiver.count() >= n, 60, "pcrunner's results")
                    wait_idle(d.pid, ctx.settle, 60, "pcrunner")
                    fig, (_, hwm) = footprint_kib(d.pid), rss_kib(d.pid)
            table.set("2.7", footprint_text(fig, hwm), target, INFO)
        except BenchError as e:
            table.fail(["2.7"], target, e)

