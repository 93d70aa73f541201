"""Section 9: the config engine. 9.1: how long `picomon --check-config`
takes on N `check_dummy` checks (median wall and CPU); compare two builds by
running the row with `--picomon` on each. 9.2: how long an endless loop in
a config runs before the engine stops it with its position
(tests/fixtures/configs/loop.rhai): by whichever of its two limits comes
first, 50 million operations or 3 s of the evaluating thread's CPU time.
On a fast machine the operations run out first (about 1.5 s); on a slower
one the CPU deadline stops it at 3 s of CPU and a little (the clock is
read every 1024 operations). The row asks for no more than that: CPU time,
not wall time, which a loaded machine stretches."""

import os

from . import configs
from .procs import BenchError, median, run_timed
from .table import INFO, MISS, PASS

LOOP_FIXTURE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "tests", "fixtures", "configs", "loop.rhai",
)
# The deadline (src/config/engine.rs), and what reading the clock every
# 1024 operations may add.
LOOP_LIMIT_S = 3.0
LOOP_SLACK_S = 0.1


def measure(ctx, table, n):
    evaluation(ctx, table, n)
    endless_loop(ctx, table)


def evaluation(ctx, table, n):
    target = "reported (compare builds with --picomon)"
    cfg = configs.picomon_dummy(ctx.work, f"eval{n}", n, ctx.workers)
    runs = []
    try:
        for r in range(ctx.runs):
            ctx.log(f"  --check-config, N={n}, run {r + 1}/{ctx.runs}")
            t = run_timed([ctx.picomon, "-c", cfg, "--check-config"], ctx.work, f"eval{n}-{r}", ctx.timeout(n))
            if t.rc != 0:
                raise BenchError(f"picomon --check-config: exit {t.rc}: {t.stderr.strip()[:300]!r}")
            runs.append(t)
    except BenchError as e:
        table.fail(["9.1"], target, e)
        return
    walls = [t.wall for t in runs]
    table.set(
        "9.1",
        f"{median(walls):.3f} s wall, {median([t.cpu for t in runs]):.3f} s CPU (median of {len(runs)})",
        target,
        INFO,
        "wall per run (s): " + ", ".join(f"{w:.3f}" for w in walls),
    )


def endless_loop(ctx, table):
    target = f"<= {LOOP_LIMIT_S:.0f} s CPU (+ {LOOP_SLACK_S} s), with the loop's position"
    t = run_timed([ctx.picomon, "-c", LOOP_FIXTURE, "--check-config"], ctx.work, "loop", 60)
    if t.rc != 1 or "endless loop" not in t.stderr:
        table.fail(["9.2"], target, BenchError(f"expected exit 1 and 'endless loop': exit {t.rc}: {t.stderr.strip()[:300]!r}"))
        return
    verdict = INFO if ctx.smoke else (PASS if t.cpu <= LOOP_LIMIT_S + LOOP_SLACK_S else MISS)
    table.set("9.2", f"{t.wall:.3f} s wall ({t.cpu:.3f} s CPU)", target, verdict)
