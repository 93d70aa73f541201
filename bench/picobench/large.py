"""Measurement 10: the large end, built-in `tcp` checks against 100
loopback listeners.

- 10.1-10.3: private memory of an idle daemon with a small, a medium and
  a large number of checks (base_tick an hour: after tick 0 nothing is
  due; read once its CPU time stopped moving).
- 10.4: the large daemon's private memory after 100 `GET /metrics` and 10
  `picomon status --json`, against its idle figure just before: right
  after (the snapshot the readers share is kept while they read) and
  65 s after, once it expired (KEEP_PUBLISHING, 60 s).
- 10.5: the peak resident size (`ru_maxrss`) of `picomon --check-config`
  on the large config, against the idle figure of 10.3.
- 10.6: the median of those 100 scrapes, each a new loopback connection
  read to its end.
- 10.7: the median wall time of those 10 `picomon status --json` (output
  to a file), and the CLI's own peak resident size.
- 10.8: `picomon --check-config` on the large config pinned to one CPU
  beside 4 busy loops pinned to the same CPU: it must load; and the
  endless loop of tests/fixtures/configs/loop.rhai, pinned the same way,
  must still be stopped.
"""
import os
import re
import shutil
import signal
import subprocess
import time

from . import configs, metrics
from .listeners import Listeners
from .procs import BenchError, Daemon, footprint_kib, median, mib, wait_for, wait_idle
from .table import INFO, MISS, PASS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTS = 100
SCRAPES = 100
STATUSES = 10
BUSY_LOOPS = 4
IDLE_TARGET_MIB = 48
METRICS_TARGET_S = 0.050
STATUS_TARGET_S = 0.200
KEEP_S = 60
LISTENING = re.compile(r"http: listening on 127\.0\.0\.1:(\d+)")


def config(ctx, tag, ports, n, listen=False):
    state = os.path.join(ctx.work, tag + "-state")
    shutil.rmtree(state, ignore_errors=True)
    text = configs.picomon_header(state, ctx.probe_workers, base_tick=3600)
    if listen:
        text += 'config.listen = "127.0.0.1:0";\n'
    text += 'let lo = host("lo", #{ ipv4: "127.0.0.1" });\n'
    text += "".join(f'add(tcp(lo, {ports[i % len(ports)]}), #{{ name: "t{i}" }});\n' for i in range(n))
    return configs.write(os.path.join(ctx.work, tag + ".rhai"), text), state


TIME = "/usr/bin/time"


def run_peak(argv, workdir, tag, timeout, preexec=None):
    """Runs argv to its end: (wall s, CPU s, peak RSS KiB, exit code, stderr).

    The peak is what GNU time reports for its own child when it is
    installed: Linux keeps the larger of the old and the new peak across
    exec, so wait4's ru_maxrss of a child of this (large) Python process
    would report Python's size for any small program."""
    out_path = os.path.join(workdir, tag + ".out")
    err_path = os.path.join(workdir, tag + ".err")
    peak_path = os.path.join(workdir, tag + ".peak")
    if os.access(TIME, os.X_OK):
        argv = [TIME, "-f", "%M", "-o", peak_path] + argv
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, preexec_fn=preexec)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise BenchError(f"{argv[0]} {' '.join(argv[1:3])} did not finish within {timeout} s")
            time.sleep(0.01)
        wall = time.monotonic() - start
    with open(err_path, errors="replace") as f:
        text = f.read()
    peak = usage.ru_maxrss
    if argv[0] == TIME:
        with open(peak_path) as f:
            peak = int(f.read().split()[-1])
    return wall, usage.ru_utime + usage.ru_stime, peak, os.waitstatus_to_exitcode(status), text


def idle_private(ctx, d, n):
    wait_idle(d.pid, ctx.settle, ctx.timeout(n), f"picomon daemon with {n} tcp checks", children=False)
    return footprint_kib(d.pid)


def measure(ctx, table):
    sizes = ctx.sizes["large"]
    big = sizes[-1]
    idle_big = None
    with Listeners(PORTS) as ls:
        for rid, n in zip(("10.1", "10.2", "10.3"), sizes):
            target = f"private <= {IDLE_TARGET_MIB} MiB" if n == big else "reported"
            if n != big:
                try:
                    path, _ = config(ctx, f"large{n}", ls.ports, n)
                    with Daemon([ctx.picomon, "-c", path], ctx.work, f"large{n}") as d:
                        fig = idle_private(ctx, d, n)
                    table.set(rid, f"{mib(fig['private'])} MiB private (RSS {mib(fig['rss'])})", target, INFO)
                except BenchError as e:
                    table.fail([rid], target, e)
                continue
            idle_big = daemon_rows(ctx, table, ls, n)
    check_config_peak(ctx, table, ls, big, idle_big)
    starved(ctx, table, ls, big)


def daemon_rows(ctx, table, ls, n):
    """Rows 10.3, 10.4, 10.6 and 10.7 on one daemon; its idle KiB."""
    rids = ["10.3", "10.4", "10.6", "10.7"]
    path, state = config(ctx, f"large{n}", ls.ports, n, listen=True)
    env = dict(os.environ, RUST_LOG="info")
    try:
        with Daemon([ctx.picomon, "-c", path], ctx.work, f"large{n}", env=env) as d:
            found = wait_for(lambda: LISTENING.search(d.stderr()), ctx.timeout(n), "the daemon's http listener")
            port = int(found.group(1))
            idle = idle_private(ctx, d, n)
            scrapes, size = [], 0
            for _ in range(SCRAPES):
                took, status, body = metrics.scrape(port)
                if status != "200":
                    raise BenchError(f"GET /metrics answered {status}; see {d.err_path}")
                scrapes.append(took)
                size = len(body)
            statuses, cli_peak, json_size = [], 0, 0
            for i in range(STATUSES):
                wall, _, peak, rc, err = run_peak(
                    [ctx.picomon, "status", "--json", "--state-dir", state], ctx.work, f"status-{i}", 600
                )
                if rc not in (0, 1):
                    raise BenchError(f"picomon status --json: exit {rc}: {err.strip()[-300:]}")
                statuses.append(wall)
                cli_peak = max(cli_peak, peak)
                json_size = os.path.getsize(os.path.join(ctx.work, f"status-{i}.out"))
            time.sleep(ctx.settle)
            held = idle_private(ctx, d, n)
            # The snapshot readers share is kept while they keep reading
            # (KEEP_PUBLISHING, 60 s), then dropped.
            time.sleep(KEEP_S + 5)
            after = idle_private(ctx, d, n)
    except (BenchError, OSError) as e:
        table.fail(rids, "", e)
        return None
    table.set(
        "10.3",
        f"{mib(idle['private'])} MiB private (RSS {mib(idle['rss'])})",
        f"private <= {IDLE_TARGET_MIB} MiB",
        PASS if idle["private"] <= IDLE_TARGET_MIB * 1024 else MISS,
    )
    grew = (after["private"] - idle["private"]) / max(idle["private"], 1)
    table.set(
        "10.4",
        f"{mib(after['private'])} MiB private {KEEP_S + 5} s after, {mib(idle['private'])} before "
        f"({grew * 100:+.1f} %); {mib(held['private'])} MiB right after (the readers' snapshot kept)",
        "at most 5 % above before",
        # Less than before is no miss: what the readers allocated was given
        # back, and with it what start-up had left (see BENCHMARKS.md).
        PASS if grew <= 0.05 else MISS,
    )
    mid = median(scrapes)
    table.set(
        "10.6",
        f"{mid * 1000:.1f} ms median (min {min(scrapes) * 1000:.1f}, max {max(scrapes) * 1000:.1f} ms; "
        f"{SCRAPES} requests, {size / 1e6:.1f} MB each)",
        f"<= {METRICS_TARGET_S * 1000:.0f} ms",
        PASS if mid <= METRICS_TARGET_S else MISS,
    )
    mid = median(statuses)
    table.set(
        "10.7",
        f"{mid * 1000:.0f} ms median (min {min(statuses) * 1000:.0f}, max {max(statuses) * 1000:.0f} ms; "
        f"{json_size / 1e6:.1f} MB; the CLI's peak RSS {mib(cli_peak)} MiB)",
        f"<= {STATUS_TARGET_S * 1000:.0f} ms",
        PASS if mid <= STATUS_TARGET_S else MISS,
        "every status --json (ms): " + ", ".join(f"{t * 1000:.0f}" for t in statuses),
    )
    return idle["private"]


def check_config_peak(ctx, table, ls, n, idle_kib):
    target = "peak <= 1.5 x the idle figure (10.3)"
    try:
        path, _ = config(ctx, f"large{n}-check", ls.ports, n)
        wall, cpu, peak, rc, err = run_peak([ctx.picomon, "-c", path, "--check-config"], ctx.work, "large-check", 600)
        if rc != 0:
            raise BenchError(f"--check-config: exit {rc}: {err.strip()[-300:]}")
    except (BenchError, OSError) as e:
        table.fail(["10.5"], target, e)
        return
    verdict = INFO if not idle_kib else (PASS if peak <= 1.5 * idle_kib else MISS)
    table.set("10.5", f"{mib(peak)} MiB peak RSS, {wall:.2f} s wall, {cpu:.2f} s CPU", target, verdict)


def pin(cpu):
    return lambda: os.sched_setaffinity(0, {cpu})


def starved(ctx, table, ls, n):
    """Row 10.8: the large config and the endless loop, each pinned to one
    CPU beside BUSY_LOOPS busy loops pinned there too."""
    target = "loads; the endless loop is still stopped"
    cpu = min(os.sched_getaffinity(0))
    busy = [
        subprocess.Popen(["python3", "-c", "while True: pass"], preexec_fn=pin(cpu))
        for _ in range(BUSY_LOOPS)
    ]
    try:
        path, _ = config(ctx, f"large{n}-starved", ls.ports, n)
        wall, used, _, rc, err = run_peak(
            [ctx.picomon, "-c", path, "--check-config"], ctx.work, "large-starved", 1200, pin(cpu)
        )
        loop = os.path.join(REPO, "tests", "fixtures", "configs", "loop.rhai")
        lwall, _, _, lrc, lerr = run_peak(
            [ctx.picomon, "-c", loop, "--check-config"], ctx.work, "loop-starved", 600, pin(cpu)
        )
    except (BenchError, OSError) as e:
        table.fail(["10.8"], target, e)
        return
    finally:
        for p in busy:
            p.send_signal(signal.SIGKILL)
            p.wait()
    loaded = rc == 0
    stopped = lrc == 1 and "endless loop" in lerr
    result = (
        f"{'loaded' if loaded else 'refused'} in {wall:.2f} s wall, {used:.2f} s CPU; "
        f"the endless loop {'stopped' if stopped else 'NOT stopped'} after {lwall:.2f} s wall"
    )
    note = None
    if not loaded:
        note = f"--check-config pinned: exit {rc}: {err.strip()[-300:]}"
    elif not stopped:
        note = f"loop.rhai pinned: exit {lrc}: {lerr.strip()[-300:]}"
    table.set("10.8", result, target, PASS if loaded and stopped else MISS, note)
