"""Measurement 1: N check_dummy runs through `picomon -1` against the floor
program at the same parallelism, runs interleaved so a load change on the
machine hits both sides alike; each ratio is taken within one round and the
median of the rounds is reported. Row 1.7 counts, under strace, the
threads and processes picomon creates for N runs (no thread per
run)."""
import os
import re
import shutil

from . import configs
from .procs import BenchError, median, run_timed
from .table import MISS, PASS, SKIPPED

TARGET = 1.2


def picomon_once(ctx, cfg, n, tag):
    t = run_timed([ctx.picomon, "-c", cfg, "-1"], ctx.work, tag, ctx.timeout(n))
    summary = t.stdout.strip().splitlines()[-1:] or [""]
    if t.rc != 0 or not summary[0].startswith(f"{n + configs.OWN_CHECKS} ok,"):
        raise BenchError(
            f"picomon -1 on {n} check_dummy checks: exit {t.rc}, last line {summary[0]!r}; "
            f"stderr: {t.stderr.strip()[:300]!r}"
        )
    return t


def floor_once(ctx, n, tag):
    argv = [ctx.floor, str(ctx.workers), str(n), configs.CHECK_DUMMY] + configs.DUMMY_ARGS
    t = run_timed(argv, ctx.work, tag, ctx.timeout(n))
    if t.rc != 0 or t.stdout.strip() != f"runs={n} ok={n}":
        raise BenchError(f"floor: exit {t.rc}, output {t.stdout.strip()!r} {t.stderr.strip()!r}")
    return t


def check_config_once(ctx, cfg, n, tag):
    t = run_timed([ctx.picomon, "-c", cfg, "--check-config"], ctx.work, tag, ctx.timeout(n))
    if t.rc != 0:
        raise BenchError(f"picomon --check-config: exit {t.rc}: {t.stderr.strip()[:300]!r}")
    return t


def rounds(ctx, n, runs):
    """`runs` rounds of floor, picomon -1, picomon --check-config on N checks.
    Returns a dict of lists: floor/pico/conf Timed results."""
    cfg = configs.picomon_dummy(ctx.work, f"thr{n}", n, ctx.workers)
    res = {"floor": [], "pico": [], "conf": []}
    for r in range(runs):
        ctx.log(f"  N={n} round {r + 1}/{runs}")
        res["floor"].append(floor_once(ctx, n, f"floor{n}-{r}"))
        res["pico"].append(picomon_once(ctx, cfg, n, f"pico{n}-{r}"))
        res["conf"].append(check_config_once(ctx, cfg, n, f"conf{n}-{r}"))
    return res


def measure(ctx, table, n, rids):
    wall_id, cpu_id, conf_id = rids
    target = f"<= {TARGET}x"
    try:
        res = rounds(ctx, n, ctx.runs)
    except BenchError as e:
        table.fail(rids, target, e)
        return
    pairs = list(zip(res["pico"], res["floor"], res["conf"]))
    wall_ratio = median([p.wall / f.wall for p, f, _ in pairs])
    cpu_ratio = median([p.cpu / f.cpu for p, f, _ in pairs if f.cpu > 0] or [float("nan")])
    # Without config evaluation: what the runner itself costs.
    net_ratio = median([(p.wall - c.wall) / f.wall for p, f, c in pairs])
    net_cpu = median([(p.cpu - c.cpu) / f.cpu for p, f, c in pairs if f.cpu > 0] or [float("nan")])
    pico_w, floor_w = median([p.wall for p, _, _ in pairs]), median([f.wall for _, f, _ in pairs])
    pico_c, floor_c = median([p.cpu for p, _, _ in pairs]), median([f.cpu for _, f, _ in pairs])
    conf_w, conf_c = median([c.wall for _, _, c in pairs]), median([c.cpu for _, _, c in pairs])
    table.set(
        wall_id,
        f"{wall_ratio:.2f}x ({pico_w:.3f} s / {floor_w:.3f} s; without config evaluation {net_ratio:.2f}x)",
        target,
        PASS if wall_ratio <= TARGET else MISS,
    )
    table.set(
        cpu_id,
        f"{cpu_ratio:.2f}x ({pico_c:.3f} s / {floor_c:.3f} s; without config evaluation {net_cpu:.2f}x)",
        target,
        PASS if cpu_ratio <= TARGET else MISS,
    )
    table.set(
        conf_id,
        f"{conf_w:.3f} s wall, {conf_c:.3f} s CPU ({100 * conf_w / pico_w:.0f}% of the -1 run)",
        "reported, no target",
        "info",
    )


def spawn_census(ctx, table, n, rid="1.7"):
    """Runs `picomon -1` on N checks under `strace -f` and counts the
    clone/fork calls that create threads (CLONE_THREAD) and processes."""
    target = f"N processes, threads <= workers ({ctx.workers}) + 2"
    strace = shutil.which("strace")
    if not strace:
        table.set(rid, "skipped: strace not installed (apt-get install strace)", target, SKIPPED)
        return
    cfg = configs.picomon_dummy(ctx.work, f"census{n}", n, ctx.workers)
    trace = os.path.join(ctx.work, f"census{n}.strace")
    argv = [strace, "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o", trace, ctx.picomon, "-c", cfg, "-1"]
    try:
        t = run_timed(argv, ctx.work, f"census{n}", ctx.timeout(n) * 3)
        complaint = [line for line in t.stderr.splitlines() if line.startswith("strace:")]
        if t.rc != 0 and complaint:
            # No ptrace here (a container, Yama): a limit of the machine.
            table.set(rid, f"skipped: {complaint[0]}", target, SKIPPED)
            return
        if t.rc != 0:
            raise BenchError(f"picomon -1 under strace: exit {t.rc}: {t.stderr.strip()[:300]!r}")
        with open(trace) as f:
            calls = [line for line in f if re.search(r"\b(clone3?|v?fork)\(", line)]
    except (BenchError, OSError) as e:
        table.fail([rid], target, e)
        return
    threads = sum(1 for line in calls if "CLONE_THREAD" in line)
    procs = len(calls) - threads
    ok = procs == n and threads <= ctx.workers + 2
    table.set(rid, f"{procs} processes, {threads} threads for {n} runs", target, PASS if ok else MISS)
