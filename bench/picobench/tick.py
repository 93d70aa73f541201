"""Measurement 1.8-1.9: one daemon tick of N check_dummy runs, against
`picomon -1` on the same config and the floor, back to back in each round.

The daemon runs with base_tick an hour, so its tick 0 (every check due at
start) is the only one. Its wall time is taken like the others', from just
before the process is started, and ends when the tick's last result was
recorded: the daemon writes its state file once the runs of a tick are all
done, so the file's modification time is that moment, read after the
daemon went idle (no polling latency in the figure, only the file system's
timestamp granularity, a few milliseconds at most). The heartbeat file,
written when the tick has submitted its runs, gives the tick alone. Both
sides pay the same start-up (config evaluation); `-1` also pays its exit.
The daemon logs at INFO, so nothing per result, while `-1` prints a line
per result: that only favours the daemon."""
import json
import os
import shutil
import time

from . import configs
from .procs import BenchError, Daemon, cpu_seconds, median, wait_idle
from .table import INFO, MISS, PASS
from .throughput import floor_once, picomon_once

TARGET = 1.1


def daemon_tick_once(ctx, cfg, state_dir, n, tag):
    """Starts a daemon on cfg (fresh state directory), lets tick 0 finish;
    returns (wall from start to the last result, the tick alone from its
    heartbeat, CPU incl. the plugins)."""
    shutil.rmtree(state_dir, ignore_errors=True)
    state = os.path.join(state_dir, "state")
    start = time.time()
    with Daemon([ctx.picomon, "-c", cfg], ctx.work, tag) as d:
        wait_idle(d.pid, ctx.settle, ctx.timeout(n), f"picomon daemon with {n} checks")
        cpu = cpu_seconds(d.pid)
        try:
            done = os.stat(state).st_mtime_ns / 1e9
            beat = os.stat(os.path.join(state_dir, "heartbeat")).st_mtime_ns / 1e9
            with open(state) as f:
                saved = json.load(f)
        except (OSError, ValueError) as e:
            raise BenchError(f"daemon with {n} checks: no readable state after tick 0: {e}; see {d.err_path}") from e
    ran = _checks_with_a_run(saved)
    if ran != n + configs.OWN_CHECKS:
        raise BenchError(f"daemon with {n} checks: its state records {ran} runs after tick 0; see {state}")
    return done - start, done - beat, cpu


def _checks_with_a_run(saved):
    """How many checks of a saved state have a last run (the state file's
    layout: {"checks": {id: {"last_run": ...}}}, or the map itself)."""
    checks = saved.get("checks", saved) if isinstance(saved, dict) else {}
    return sum(1 for c in checks.values() if isinstance(c, dict) and c.get("last_run") is not None)


def measure(ctx, table, n, rids=("1.8", "1.9")):
    vs_one, vs_floor = rids
    target = f"<= {TARGET}x"
    state_dir = os.path.join(ctx.work, f"tick{n}-state")
    cfg = configs.picomon_dummy(ctx.work, f"tick{n}", n, ctx.workers, base_tick=3600)
    rounds = []
    try:
        for r in range(ctx.runs):
            ctx.log(f"  daemon tick N={n} round {r + 1}/{ctx.runs}")
            f = floor_once(ctx, n, f"tfloor{n}-{r}")
            o = picomon_once(ctx, cfg, n, f"tone{n}-{r}")
            rounds.append((f, o, daemon_tick_once(ctx, cfg, state_dir, n, f"tick{n}-{r}")))
    except BenchError as e:
        table.fail(list(rids), target, e)
        return
    ratio = median([d[0] / o.wall for _, o, d in rounds])
    floor_ratio = median([d[0] / f.wall for f, _, d in rounds])
    wall, tick, cpu = (median([d[k] for _, _, d in rounds]) for k in range(3))
    one_w, one_c = median([o.wall for _, o, _ in rounds]), median([o.cpu for _, o, _ in rounds])
    floor_w = median([f.wall for f, _, _ in rounds])
    table.set(
        vs_one,
        f"{ratio:.2f}x ({wall:.3f} s / {one_w:.3f} s; the tick alone {tick:.3f} s; "
        f"CPU {cpu:.3f} s / {one_c:.3f} s)",
        target,
        PASS if ratio <= TARGET else MISS,
        f"daemon start to last result, runs: {', '.join(f'{d[0]:.3f}' for _, _, d in rounds)} s; "
        f"of which before its tick's heartbeat (start-up, config, submitting the runs): "
        f"{', '.join(f'{d[0] - d[1]:.3f}' for _, _, d in rounds)} s; "
        f"-1: {', '.join(f'{o.wall:.3f}' for _, o, _ in rounds)} s",
    )
    table.set(vs_floor, f"{floor_ratio:.2f}x ({wall:.3f} s / {floor_w:.3f} s)", "reported", INFO)
