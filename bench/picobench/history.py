"""Section 11: what the outage log and the simulator cost.

11.1: a year of a flapping check in the log: one outage every FLAP_EVERY_S
(a Problem and a Recovery line each, flap detection off, the worst case:
with it on, a flapping spell is two lines), written as the daemon writes
them (one file per UTC month, each starting with its `seen` line), then
its size on disk. 11.2: the idle daemon's private memory on that state dir
against the same daemon on an empty one: the log is read at start (the
last 30 days) and nothing of it is kept but a summary per check. 11.3:
`picomon simulate` running a day of simulated time for SIM_CHECKS checks
on a 60 s base_tick (1,440 ticks, every check runs each tick) with a story
of outages."""
import calendar
import json
import os
import time

from . import configs
from .procs import BenchError, Daemon, footprint_kib, median, mib, run_timed, wait_idle
from .table import INFO, MISS, PASS

FLAP_EVERY_S = 3600
YEAR_LIMIT_MB = 5.0
SIM_CHECKS = 100
SIM_LIMIT_S = 1.0


def year_of_flapping(state_dir, check, end):
    """Writes a year (up to `end`, Unix seconds) of outages of `check`
    into state_dir/history; returns the bytes written."""
    hist = os.path.join(state_dir, "history")
    os.makedirs(hist, mode=0o700, exist_ok=True)
    start = end - 365 * 86400
    files = {}
    t = start
    while t < end:
        month = time.strftime("%Y-%m", time.gmtime(t))
        f = files.get(month)
        if f is None:
            f = files[month] = open(os.path.join(hist, month + ".jsonl"), "a")
            os.chmod(f.name, 0o600)
            f.write(json.dumps({"at": t * 10**6, "kind": "seen", "check": check, "since": start * 10**6}) + "\n")
        out = t * 10**6
        for at, kind, status in ((out + 60 * 10**6, "problem", "CRITICAL"), (out + 300 * 10**6, "recovery", "OK")):
            f.write(json.dumps({
                "at": at, "kind": kind, "check": check, "status": status, "outage": out,
                "text": f"{status} - connection refused on port 443 after 10.0 s",
            }, separators=(",", ":")) + "\n")
        t += FLAP_EVERY_S
    for f in files.values():
        f.close()
    return sum(os.path.getsize(os.path.join(hist, n)) for n in os.listdir(hist))


def measure(ctx, table):
    log_size(ctx, table)
    simulate(ctx, table)


def log_size(ctx, table):
    target = f"<= {YEAR_LIMIT_MB:g} MB; idle private memory as without the log"
    tag = "hist"
    cfg = configs.picomon_dummy(ctx.work, tag, 1, ctx.workers, base_tick=3600)
    state = os.path.join(ctx.work, tag + "-state")
    try:
        # A first start writes the check's identity into the log.
        with Daemon([ctx.picomon, "-c", cfg, "-D"], ctx.work, tag + "-first") as d:
            wait_idle(d.pid, ctx.settle, ctx.timeout(1), "picomon daemon, 1 check")
            empty = footprint_kib(d.pid)["private"]
        hist = os.path.join(state, "history")
        seen = [json.loads(l) for n in os.listdir(hist) for l in open(os.path.join(hist, n)) if l.strip()]
        check = next(r["check"] for r in seen if r.get("kind") == "seen")
        for n in os.listdir(hist):
            os.remove(os.path.join(hist, n))
        size = year_of_flapping(state, check, int(time.time()))
        t = run_timed([ctx.picomon, "-c", cfg, "history", "--since", "365d", "--csv"], ctx.work, tag + "-csv", 120)
        if t.rc != 0 or "c0" not in t.stdout:
            raise BenchError(f"picomon history --csv: exit {t.rc}: {t.stderr.strip()[:300]!r}")
        with Daemon([ctx.picomon, "-c", cfg, "-D"], ctx.work, tag + "-year") as d:
            wait_idle(d.pid, ctx.settle, ctx.timeout(1), "picomon daemon on a year of log")
            full = footprint_kib(d.pid)["private"]
    except (BenchError, StopIteration, OSError) as e:
        table.fail(["11.1", "11.2"], target, e)
        return
    outages = 365 * 86400 // FLAP_EVERY_S
    ok = size <= YEAR_LIMIT_MB * 1e6
    table.set(
        "11.1",
        f"{size / 1e6:.2f} MB ({outages} outages); history --csv over it: {t.wall:.2f} s",
        f"<= {YEAR_LIMIT_MB:g} MB",
        INFO if ctx.smoke else (PASS if ok else MISS),
    )
    # A page or two of difference is noise; the summary of 30 days of
    # this check is about 30 KiB.
    grows = full - empty > 256
    table.set(
        "11.2",
        f"private {mib(full)} MiB with the year, {mib(empty)} MiB without",
        "within 256 KiB",
        INFO if ctx.smoke else (MISS if grows else PASS),
    )


def simulate(ctx, table):
    target = f"< {SIM_LIMIT_S:g} s"
    tag = "sim"
    cfg = configs.picomon_dummy(ctx.work, tag, SIM_CHECKS, ctx.workers, base_tick=60)
    with open(cfg, "a") as f:
        f.write('config.emails.to = ["ops@example.org"];\n')
    story = configs.write(
        os.path.join(ctx.work, "story.txt"),
        "".join(f"{h}h c{h} CRITICAL down\n{h}h30m c{h} OK\n" for h in range(24))
        + "2h10m ack c2 on it\n6h silence \"c1*\" 2h deploy\n",
    )
    runs = []
    try:
        for r in range(ctx.runs_small):
            t = run_timed([ctx.picomon, "-c", cfg, "simulate", story, "--until", "24h", "--json"], ctx.work, f"{tag}-{r}", 120)
            if t.rc != 0 or "CRITICAL: c5 on h" not in t.stdout:
                raise BenchError(f"picomon simulate: exit {t.rc}: {t.stderr.strip()[:300]!r}")
            runs.append(t)
    except BenchError as e:
        table.fail(["11.3"], target, e)
        return
    wall = median([t.wall for t in runs])
    mails = len(json.loads(runs[0].stdout))
    table.set(
        "11.3",
        f"{wall:.3f} s wall, {median([t.cpu for t in runs]):.3f} s CPU (median of {len(runs)}); {mails} mails",
        target,
        INFO if ctx.smoke else (PASS if wall < SIM_LIMIT_S else MISS),
    )
