"""Measurement 4: CPU an idle daemon uses between ticks.

A daemon with N checks and a one-hour tick runs tick 0, goes idle, and is
then watched for a window: its own utime+stime (from /proc/PID/stat) and
its threads' context switches. A loop that polls shows up in both; one
blocked on its channel until the next tick shows neither."""
from . import configs
from .procs import BenchError, Daemon, context_switches, cpu_seconds, wait_idle
from .table import MISS, PASS

# One clock tick of CPU time per minute is the resolution of /proc.
LIMIT_S = 0.02


def measure(ctx, table):
    n = ctx.sizes["idle"]
    windows = ctx.idle_windows
    target = f"~0 (<= {LIMIT_S} s)"
    try:
        cfg = configs.picomon_dummy(ctx.work, "idle", n, ctx.workers, base_tick=3600)
        with Daemon([ctx.picomon, "-c", cfg], ctx.work, "idle") as d:
            wait_idle(d.pid, ctx.settle, ctx.timeout(n), f"picomon daemon with {n} checks")
            cpu0, cs0 = cpu_seconds(d.pid, children=False), context_switches(d.pid)
            per_window = []
            for w in windows:
                ctx.log(f"  idle window of {w} s")
                start = cpu_seconds(d.pid, children=False)
                ctx.sleep(w)
                per_window.append(cpu_seconds(d.pid, children=False) - start)
            cpu = cpu_seconds(d.pid, children=False) - cpu0
            switches = context_switches(d.pid) - cs0
    except BenchError as e:
        table.fail(["4.1"], target, e)
        return
    total = sum(windows)
    table.set(
        "4.1",
        f"{cpu:.2f} s CPU, {switches} context switches in {total:g} s "
        f"(windows: {', '.join(f'{c:.2f}' for c in per_window)} s)",
        target,
        PASS if cpu <= LIMIT_S * max(1, total / 60) else MISS,
    )
