"""Measurement 7.1-7.3: the control socket under load.

One daemon with N check_dummy checks and a short base_tick runs two
windows of the same length back to back: one with no client, then one
while a load client asks for the status at a fixed total rate (Python
threads, each on its own connection to state_dir/control.sock, each
sending {"cmd":"status"} and reading the answer line). The question is
whether the answers cost the tick grid anything.

Both windows are on the same daemon, so on the same tick grid: the
lateness of every tick is taken against one grid and the ratio of the two
windows is taken in the same run.

- When a tick started: the modification time of state_dir/heartbeat,
  which the loop writes once per tick, after submitting its runs. A poller
  thread stats the file every 10 ms and keeps each new mtime; the mtime
  itself is the exact moment (file system timestamp granularity, a jiffy),
  the polling only has to be faster than the tick (see ticks_of for the
  two updates of one write). The daemon's debug log has the same events,
  but env_logger stamps its lines to the second.
- The grid: tick k is due at origin + k * base_tick (the daemon's ticker);
  the origin is not visible from outside, so it is placed at the earliest
  heartbeat of the run (min over k of mtime_k - k * base_tick): lateness
  is then what a tick lost against the best tick of the run. The tick's
  own fixed cost (submitting N runs before the heartbeat) is in every tick
  alike and does not count.
- How long its runs took: the loop's debug line `tick K: N runs done in
  X s` (RUST_LOG=debug), from the tick's start to its last result. A tick
  without one ran into the next tick: it counts as longer than a tick,
  and the runs the next tick skipped as still running (its `overloaded`
  warning) are added up.
- What the answers cost: the daemon's own CPU (not its plugins') and this
  process's (the load client) in each window.
"""
import json
import os
import re
import shutil
import socket
import threading
import time

from . import configs
from .procs import BenchError, Daemon, cpu_seconds, wait_for
from .table import INFO, MISS, PASS

# The tick grid stays as it is when the loaded p99 lateness is at most
# max(FACTOR x the quiet one, the quiet one + SLACK_S).
FACTOR = 2.0
SLACK_S = 0.050
POLL_S = 0.010
# The ratio's denominator at least: below a millisecond a lateness is under
# the timestamps' granularity (a jiffy), so a quiet p99 of 0 is taken as 1 ms.
FLOOR_S = 0.001
DONE = re.compile(r"tick (\d+): (\d+) runs done in ([0-9.]+) s")
SKIPPED = re.compile(r"overloaded: tick (\d+): (\d+) due runs skipped")


def percentile(values, p):
    """Nearest-rank percentile (p99 of fewer than 100 values is the max);
    values may hold infinity (a tick whose runs never finished alone)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class HeartbeatPoller:
    """Stats a file every POLL_S seconds and keeps each new mtime (s)."""

    def __init__(self, path):
        self.path = path
        self.mtimes = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def _run(self):
        last = None
        while not self._stop.is_set():
            try:
                m = os.stat(self.path).st_mtime_ns
            except OSError:
                m = None
            if m is not None and m != last:
                self.mtimes.append(m / 1e9)
                last = m
            self._stop.wait(POLL_S)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


class StatusLoad:
    """`threads` connections to the control socket, each asking for the
    status at rate / threads per second on a fixed schedule (a late request
    is sent at once; more than a second behind, the schedule restarts
    rather than bursting)."""

    def __init__(self, sock_path, rate, threads):
        self.sock_path = sock_path
        self.interval = threads / rate
        self.n = threads
        self.answers = 0
        self.errors = []
        self.answer_bytes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._go = threading.Event()
        self._socks = []
        self._threads = []

    def __enter__(self):
        for i in range(self.n):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def start(self):
        """Connects and starts the requests; returns the wall time they
        started. Connected only now: the daemon closes a connection whose
        first request line has not come within 2 s."""
        for _ in range(self.n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock_path)
            except OSError as e:
                s.close()
                self._stop.set()
                self._go.set()
                self._close()
                raise BenchError(f"cannot connect to {self.sock_path}: {e}") from e
            self._socks.append(s)
        self.started = time.time()
        self._go.set()
        return self.started

    def _run(self, i):
        self._go.wait()
        if self._stop.is_set():
            return
        s = self._socks[i]
        # A big buffer: with 1,000 checks an answer is a few hundred KB.
        f = s.makefile("rb", buffering=1 << 18)
        request = b'{"cmd":"status"}\n'
        # Threads offset within one interval, so the requests are spread.
        due = time.monotonic() + self.interval * i / self.n
        checked = False
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                elif now - due > 1.0:
                    due = now
                s.sendall(request)
                line = f.readline()
                if not line.endswith(b"\n"):
                    raise OSError("the daemon closed the connection")
                if not checked or line.startswith(b'{"error"'):
                    answer = json.loads(line)
                    if "status" not in answer:
                        with self._lock:
                            self.errors.append(str(answer.get("error", answer))[:200])
                        return
                    checked = True
                with self._lock:
                    self.answers += 1
                    self.answer_bytes = len(line)
                due += self.interval
        except (OSError, ValueError) as e:
            if not self._stop.is_set():
                with self._lock:
                    self.errors.append(str(e))

    def stop(self):
        """Stops the requests; returns (answers, wall time it stopped)."""
        with self._lock:
            answers, stopped = self.answers, time.time()
        self._stop.set()
        return answers, stopped

    def _close(self):
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def __exit__(self, *exc):
        self._stop.set()
        self._go.set()
        self._close()
        for t in self._threads:
            t.join(timeout=5)
        return False


def ticks_of(mtimes, tick):
    """The heartbeats as (tick number, start). The loop writes the file
    with open(O_TRUNC) then write(), two updates of its mtime that may fall
    in two jiffies: mtimes closer than half a tick are one tick, which
    started at the first. The first is tick 0 (the poller runs before the
    daemon starts), each next one is numbered by its distance to the
    previous (a skipped tick leaves a gap)."""
    starts = []
    for m in mtimes:
        if not starts or m - starts[-1] >= tick / 2:
            starts.append(m)
    ks = [0]
    for a, b in zip(starts, starts[1:]):
        ks.append(ks[-1] + max(1, round((b - a) / tick)))
    return list(zip(ks, starts))


class Window:
    """The ticks due within [start, end) of one window, and what the
    daemon spent in it."""

    def __init__(self, beats, origin, tick, done, skipped, start, end):
        self.late, self.runs, self.skipped = [], [], 0
        self.due = int((end - start) / tick)
        for k, m in beats:
            due = origin + k * tick
            if start <= due < end:
                self.late.append(m - due)
                # No done line: the tick's runs were still going when the
                # next tick started (whose line then counts them too), so
                # they took longer than a tick.
                self.runs.append(done.get(k, float("inf")))
                self.skipped += skipped.get(k, 0)
        self.overran = sum(1 for r in self.runs if r == float("inf"))
        self.cpu = None


def cpu_self():
    """This process's CPU seconds (the load client and the poller)."""
    t = os.times()
    return t.user + t.system


def measure(ctx, table, rids=("7.1", "7.2", "7.3")):
    lat_row, run_row, served_row = rids
    n, tick, window = ctx.sizes["ctl_checks"], ctx.sizes["ctl_tick"], ctx.sizes["ctl_window"]
    rate, threads = ctx.sizes["ctl_rate"], ctx.sizes["ctl_threads"]
    target = f"grid unchanged: p99 with load <= max({FACTOR:g} x without, without + {SLACK_S * 1000:.0f} ms)"
    tag = "ctl"
    state_dir = os.path.join(ctx.work, tag + "-state")
    shutil.rmtree(state_dir, ignore_errors=True)
    os.makedirs(state_dir, mode=0o700)
    cfg = configs.picomon_dummy(ctx.work, tag, n, ctx.workers, base_tick=tick)
    sock_path = os.path.join(state_dir, "control.sock")
    env = dict(os.environ, RUST_LOG="debug")
    try:
        with HeartbeatPoller(os.path.join(state_dir, "heartbeat")) as hb:
            with Daemon([ctx.picomon, "-c", cfg], ctx.work, tag, env=env) as d:
                wait_for(lambda: os.path.exists(sock_path) and hb.mtimes, ctx.timeout(n), "the daemon's socket and tick 0")
                # Tick 0 runs every check from a cold start: let it pass.
                ctx.sleep(3 * tick)
                if d.proc.poll() is not None:
                    raise BenchError(f"the daemon exited (status {d.proc.returncode}); see {d.err_path}")
                ctx.log(f"  {window:g} s without clients")
                # The daemon's own CPU (not its plugins') and the client's.
                cpu = [(cpu_seconds(d.pid, children=False), cpu_self())]
                quiet = (time.time(), None)
                ctx.sleep(window)
                quiet = (quiet[0], time.time())
                cpu.append((cpu_seconds(d.pid, children=False), cpu_self()))
                ctx.log(f"  {window:g} s with {threads} clients asking for the status, {rate} requests/s in all")
                with StatusLoad(sock_path, rate, threads) as load:
                    cpu[1] = (cpu_seconds(d.pid, children=False), cpu_self())
                    loaded_start = load.start()
                    ctx.sleep(window)
                    answers, loaded_end = load.stop()
                    cpu.append((cpu_seconds(d.pid, children=False), cpu_self()))
                    errors = list(load.errors)
                    answer_bytes = load.answer_bytes
                # One more tick, so the last loaded tick's heartbeat is seen.
                ctx.sleep(1.5 * tick)
                if d.proc.poll() is not None:
                    raise BenchError(f"the daemon exited (status {d.proc.returncode}); see {d.err_path}")
            log = d.stderr()
        mtimes = list(hb.mtimes)
    except BenchError as e:
        table.fail(list(rids), target, e)
        return
    try:
        if errors:
            raise BenchError(f"status requests failed: {'; '.join(sorted(set(errors))[:3])}; see {d.err_path}")
        if len(mtimes) < 4:
            raise BenchError(f"only {len(mtimes)} heartbeats seen; see {d.err_path}")
        done = {int(m.group(1)): float(m.group(3)) for m in DONE.finditer(log)}
        skipped = {int(m.group(1)): int(m.group(2)) for m in SKIPPED.finditer(log)}
        if not done:
            raise BenchError(f"no 'tick K: N runs done' line in the daemon's debug log; see {d.err_path}")
        beats = ticks_of(mtimes, tick)
        # Tick 0 (cold start, config evaluation) is left out of the origin.
        origin = min(m - k * tick for k, m in beats if k > 0)
        q = Window(beats, origin, tick, done, skipped, *quiet)
        lo = Window(beats, origin, tick, done, skipped, loaded_start, loaded_end)
        if not q.late or not lo.late:
            raise BenchError(f"no tick in a window (quiet {len(q.late)}, loaded {len(lo.late)}); see {d.err_path}")
    except BenchError as e:
        table.fail(list(rids), target, e)
        return
    q.cpu, lo.cpu = (tuple(b - a for a, b in zip(cpu[i], cpu[i + 1])) for i in (0, 1))
    q99, l99 = percentile(q.late, 99), percentile(lo.late, 99)
    limit = max(FACTOR * q99, q99 + SLACK_S)
    served = answers / (loaded_end - loaded_start)

    def ms(x):
        # A tick whose runs ran into the next one took more than a tick.
        return f"{tick * 1000:.0f}+" if x == float("inf") else f"{x * 1000:.1f}"

    def both(attr, p):
        return f"{ms(percentile(getattr(lo, attr), p))} / {ms(percentile(getattr(q, attr), p))} ms p{p}"

    table.set(
        lat_row,
        f"{l99 / max(q99, FLOOR_S):.2f}x (p99 {ms(l99)} ms / {ms(q99)} ms; "
        f"with / without load: {both('late', 50)}; ticks {len(lo.late)} / {len(q.late)})",
        target,
        PASS if l99 <= limit else MISS,
        f"{n} checks, base_tick {tick:g} s, {ctx.workers} workers, two windows of {window:g} s on one daemon; "
        f"ticks seen with / without load: {len(lo.late)} / {len(q.late)} of {lo.due} / {q.due} due; "
        f"lateness against the grid placed at the run's earliest heartbeat; the limit was {ms(limit)} ms; "
        f"lateness with load (ms): {', '.join(f'{x * 1000:.0f}' for x in lo.late)}; "
        f"without: {', '.join(f'{x * 1000:.0f}' for x in q.late)}",
    )
    table.set(
        run_row,
        f"{both('runs', 50)}, {both('runs', 99)} (with / without load; ticks whose runs ran into the next "
        f"tick {lo.overran} / {q.overran}, due runs skipped as still running {lo.skipped} / {q.skipped})",
        "reported",
        INFO,
    )
    table.set(
        served_row,
        f"{served:.0f} answers/s ({answers} in {loaded_end - loaded_start:.1f} s, {threads} connections, "
        f"{answer_bytes} bytes each; daemon CPU {lo.cpu[0]:.2f} s / {q.cpu[0]:.2f} s, "
        f"client CPU {lo.cpu[1]:.2f} s / {q.cpu[1]:.2f} s with / without load)",
        f"{rate}/s asked",
        INFO,
    )
