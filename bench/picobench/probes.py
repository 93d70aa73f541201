"""Measurement 6: N built-in TCP probes in one tick against listeners on
127.0.0.1 (a bounded number of ports, N / ports checks on each), timed
through `picomon -1`. Until picomon has `tcp(host, port)` the row says
so, with picomon's own words."""
import os

from . import configs
from .listeners import Listeners
from .procs import BenchError, median, run_timed, wait_for
from .table import MISS, PASS, UNAVAILABLE

TICK_S = 60
PORTS = 100


def config_text(ctx, tag, ports, n):
    state = os.path.join(ctx.work, tag + "-state")
    text = configs.picomon_header(state, ctx.probe_workers)
    text += 'let lo = host("lo", #{ ipv4: "127.0.0.1" });\n'
    text += "".join(f'add(tcp(lo, {ports[i % len(ports)]}), #{{ name: "t{i}" }});\n' for i in range(n))
    return text


def available(ctx):
    """None when tcp() works in a config, else picomon's complaint."""
    path = configs.write(os.path.join(ctx.work, "tcp-probe.rhai"), config_text(ctx, "tcp-probe", [9], 1))
    t = run_timed([ctx.picomon, "-c", path, "--check-config"], ctx.work, "tcp-probe", 60)
    if t.rc == 0:
        return None
    return (t.stderr.strip().splitlines() or [f"exit {t.rc}"])[-1]


def measure(ctx, table):
    n = ctx.sizes["tcp"]
    target = f"< {TICK_S} s"
    try:
        why = available(ctx)
        if why:
            table.set("6.1", f"not available yet (picomon --check-config: {why})", target, UNAVAILABLE)
            return
        walls, cpus = [], []
        with Listeners(min(PORTS, n)) as ls:
            path = configs.write(os.path.join(ctx.work, "tcp.rhai"), config_text(ctx, "tcp", ls.ports, n))
            for r in range(ctx.runs_small):
                ctx.log(f"  round {r + 1}/{ctx.runs_small}")
                t = run_timed([ctx.picomon, "-c", path, "-1"], ctx.work, f"tcp-{r}", 5 * TICK_S)
                last = (t.stdout.strip().splitlines() or [""])[-1]
                if not last.startswith(f"{n + configs.OWN_CHECKS} ok,"):
                    raise BenchError(f"picomon -1 on {n} TCP probes: exit {t.rc}, summary {last!r}")
                walls.append(t.wall)
                cpus.append(t.cpu)
                # The accept thread may lag behind the kernel's queue.
                expected = n * (r + 1)
                try:
                    wait_for(lambda: ls.accepted >= expected, 10, "the listeners to accept every probe")
                except BenchError:
                    pass
    except BenchError as e:
        table.fail(["6.1"], target, e)
        return
    wall = median(walls)
    table.set(
        "6.1",
        f"{wall:.2f} s wall, {median(cpus):.2f} s CPU ({len(ls.ports)} listeners accepted "
        f"{ls.accepted} connections in {len(walls)} runs; workers = {ctx.probe_workers})",
        target,
        PASS if wall < TICK_S else MISS,
    )
