"""Measurement 5: a hung plugin that ignores SIGTERM, and the checks that
share its tick.

`picomon -1` runs the hung plugin (bench/plugins/hang, which records its
pid and start time) beside quick check_dummy checks. Each output line is
time-stamped as it arrives. Row 5.1: how long after its timeout the hung
check is reported, and whether its process is gone by then. Row 5.2: when
the last quick check finished, against a control run without the hung
plugin, so "not delayed" is a comparison, not a guess."""
import os
import subprocess
import threading
import time

from . import configs
from .procs import BenchError, alive, median
from .table import MISS, PASS

LIMIT_S = 1.5  # killed within timeout + 1.5 s


def write_config(ctx, tag, quick, hang_file, timeout):
    state = os.path.join(ctx.work, tag + "-state")
    text = configs.picomon_header(state, ctx.workers)
    if hang_file:
        text += (
            f"add(plugin({configs.rhai_str(ctx.hang_plugin)}, [{configs.rhai_str(hang_file)}]), "
            f'#{{ name: "hang", target_name: "h", timeout: {timeout} }});\n'
        )
    text += configs.dummy_checks(quick, prefix="q")
    return configs.write(os.path.join(ctx.work, tag + ".rhai"), text)


def one_run(ctx, tag, quick, timeout, with_hang):
    """Returns (start wall time, [(arrival wall time, line)], hang pid,
    hang start, gone-when-reported)."""
    hang_file = os.path.join(ctx.work, tag + ".hang") if with_hang else None
    cfg = write_config(ctx, tag, quick, hang_file, timeout)
    lines = []
    gone = None
    start = time.time()
    proc = subprocess.Popen(
        [ctx.picomon, "-c", cfg, "-1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    killer = threading.Timer(timeout + 60, proc.kill)
    killer.start()
    try:
        for raw in proc.stdout:
            now = time.time()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append((now, line))
            if " hang on " in line and hang_file:
                pid, _ = _hang_record(hang_file)
                gone = not alive(pid)
        proc.wait()
    finally:
        killer.cancel()
    hang_pid, hang_start = _hang_record(hang_file) if hang_file else (None, None)
    if hang_pid is not None and alive(hang_pid):
        os.kill(hang_pid, 9)
    return start, lines, hang_start, gone


def _hang_record(path):
    try:
        with open(path) as f:
            pid, started = f.read().split()
        return int(pid), float(started)
    except (OSError, ValueError) as e:
        raise BenchError(f"the hang plugin left no record in {path} ({e}): did it run?") from e


def measure(ctx, table):
    t = ctx.sizes["timeout"]
    quick = ctx.sizes["quick"]
    overs, lasts, controls, gones = [], [], [], []
    try:
        for r in range(ctx.runs_small):
            ctx.log(f"  round {r + 1}/{ctx.runs_small}")
            start, lines, hang_start, gone = one_run(ctx, f"hang-{r}", quick, t, True)
            hang = [at for at, line in lines if " hang on " in line]
            others = [at for at, line in lines if " q" in line and " on h: " in line]
            if len(hang) != 1 or len(others) != quick:
                raise BenchError(
                    f"expected 1 hang line and {quick} quick lines in the -1 output, got "
                    f"{len(hang)} and {len(others)}: {[l for _, l in lines][:5]}"
                )
            overs.append(hang[0] - (hang_start + t))
            lasts.append(max(others) - start)
            gones.append(gone)
            c_start, c_lines, _, _ = one_run(ctx, f"nohang-{r}", quick, t, False)
            c_others = [at for at, line in c_lines if " q" in line and " on h: " in line]
            controls.append(max(c_others) - c_start)
    except BenchError as e:
        table.fail(["5.1", "5.2"], f"<= {LIMIT_S} s", e)
        return
    over = median(overs)
    all_gone = all(gones)
    table.set(
        "5.1",
        f"+{over:.2f} s (runs: {', '.join(f'{o:.2f}' for o in overs)}); "
        f"process gone when reported: {'yes' if all_gone else 'NO'}",
        f"<= +{LIMIT_S} s, process gone",
        PASS if over <= LIMIT_S and all_gone else MISS,
    )
    last, control = median(lasts), median(controls)
    table.set(
        "5.2",
        f"{last:.2f} s after start (control run without the hung plugin: {control:.2f} s)",
        f"before the {t} s timeout, not delayed",
        PASS if last < t and last <= control + 0.5 else MISS,
    )
