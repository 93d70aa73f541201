"""The command line and the order of the measurements.

Two modes share every line of measuring code and differ only in sizes:
the full run (large N, medians of several runs, peers installed when
missing) and the smoke run (tiny N, one minute, installs nothing) that CI
uses so the suite cannot rot.
"""
import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from . import config_eval, control, history, idle, large, memory, metrics, peers, probes, throughput, tick, timeout
from .procs import BenchError
from .table import ERROR, ROW_IDS, SKIPPED, Table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(REPO, "target", "bench", "venv")

FULL = dict(
    thr=(200, 2000),
    peers=1000,
    rss=100,
    mem=(100, 1000, 10000),
    idle=1000,
    idle_windows=(20, 20, 20),
    timeout=3,
    quick=20,
    tcp=10000,
    runs=5,
    runs_small=3,
    monit_window=10,
    ctl_checks=1000,
    ctl_tick=1,
    ctl_window=60,
    ctl_rate=1000,
    ctl_threads=8,
    metrics_checks=10000,
    metrics_requests=20,
    eval=10000,
    large=(100, 10000, 100000),
    settle=1.0,
)
SMOKE = dict(
    thr=(20, 50),
    peers=20,
    rss=10,
    mem=(10, 30, 100),
    idle=30,
    idle_windows=(2,),
    timeout=1,
    quick=6,
    tcp=100,
    runs=3,
    runs_small=1,
    monit_window=2,
    ctl_checks=50,
    ctl_tick=0.5,
    ctl_window=5,
    ctl_rate=200,
    ctl_threads=4,
    metrics_checks=100,
    metrics_requests=3,
    eval=100,
    large=(100, 1000, 10000),
    settle=0.5,
)

SECTIONS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")


class Ctx:
    """What every measurement needs: paths, sizes, parallelism, logging."""

    def __init__(self, args, sizes, work):
        self.smoke = args.smoke
        self.sizes = sizes
        self.work = work
        self.workers = args.workers
        self.probe_workers = args.probe_workers
        self.runs = args.runs or sizes["runs"]
        self.runs_small = args.runs or sizes["runs_small"]
        self.idle_windows = sizes["idle_windows"]
        self.monit_window = sizes["monit_window"]
        self.settle = sizes["settle"]
        self.hang_plugin = os.path.join(REPO, "bench", "plugins", "hang")
        self.picomon = None
        self.floor = None
        self.pcrunner = None
        self.pcrunner_missing = ""
        self.monit = None
        self.monit_missing = ""
        self.t0 = time.monotonic()

    def log(self, msg):
        print(f"[{time.monotonic() - self.t0:7.1f} s] {msg}", file=sys.stderr, flush=True)

    def timeout(self, n):
        """A generous bound for one run with n checks on a loaded machine."""
        return 60 + 0.05 * n

    def sleep(self, seconds):
        time.sleep(seconds)


def parse(argv):
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="picomon benchmark suite (BENCHMARKS.md). Prints the table and writes it to --out.",
    )
    p.add_argument("--smoke", action="store_true", help="tiny N, installs nothing, under a minute (CI)")
    p.add_argument("--picomon", help="picomon binary (default: build target/release/picomon; smoke: use it or target/debug/picomon)")
    p.add_argument("--out", help="table file (default bench/results/latest.md; smoke: target/bench/smoke.md)")
    p.add_argument("--work", help="scratch directory (default: a new temporary one, removed afterwards)")
    p.add_argument("--workers", type=int, default=4, help="parallelism: config.workers, floor and pcrunner (default 4)")
    p.add_argument("--probe-workers", type=int, default=16, help="config.workers for the TCP probe run (default 16)")
    p.add_argument("--runs", type=int, help="runs per figure (default: 5 for throughput, 3 otherwise; smoke 3/1)")
    p.add_argument("--no-install", action="store_true", help="full mode: do not install missing peers")
    p.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help="comma-separated sections (1,3) or rows (1.8,3.1) to run; a row runs its whole measurement",
    )
    return p.parse_args(argv)


def main(argv):
    args = parse(argv)
    sizes = SMOKE if args.smoke else FULL
    only = set(args.only.split(","))
    work = args.work or tempfile.mkdtemp(prefix="picomon-bench-")
    os.makedirs(work, exist_ok=True)
    ctx = Ctx(args, sizes, work)
    out = args.out or os.path.join(REPO, "target/bench/smoke.md" if args.smoke else "bench/results/latest.md")
    try:
        ctx.picomon = find_picomon(ctx, args)
        ctx.floor = build_floor(ctx)
    except BenchError as e:
        print(f"bench/run: {e}", file=sys.stderr)
        return 2
    find_peers(ctx, install=not (args.smoke or args.no_install))
    table = Table(
        dict(
            n1=sizes["thr"][0],
            n2=sizes["thr"][1],
            np=sizes["peers"],
            nr=sizes["rss"],
            m1=sizes["mem"][0],
            m2=sizes["mem"][1],
            m3=sizes["mem"][2],
            ni=sizes["idle"],
            iw=sum(sizes["idle_windows"]),
            tt=sizes["timeout"],
            tq=sizes["quick"],
            nt=sizes["tcp"],
            nc=sizes["ctl_checks"],
            ct=sizes["ctl_tick"],
            cr=sizes["ctl_rate"],
            nm=sizes["metrics_checks"],
            ne=sizes["eval"],
            l1=sizes["large"][0],
            l2=sizes["large"][1],
            l3=sizes["large"][2],
        )
    )
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    mem_found = {}

    def wants(*rids):
        return any(r in only or r.split(".")[0] in only for r in rids)

    n1, n2 = sizes["thr"]
    if wants("1.1", "1.2", "1.3"):
        ctx.log(f"1. plugin throughput, N={n1}")
        throughput.measure(ctx, table, n1, ("1.1", "1.2", "1.3"))
    if wants("1.4", "1.5", "1.6"):
        ctx.log(f"1. plugin throughput, N={n2}")
        throughput.measure(ctx, table, n2, ("1.4", "1.5", "1.6"))
    if wants("1.7"):
        ctx.log("1. processes and threads")
        throughput.spawn_census(ctx, table, n1)
    if wants("1.8", "1.9"):
        ctx.log(f"1. one daemon tick, N={n2}")
        tick.measure(ctx, table, n2)
    if wants("3.1", "3.2", "3.3"):
        ctx.log("3. idle daemon memory")
        mem_found = memory.measure(ctx, table)
    if wants("3.4", "3.5"):
        memory.binary_size(ctx, table)
    if wants("2.1", "2.2", "2.3", "2.4"):
        ctx.log("2. peers: runs")
        peers.measure(ctx, table)
    if wants("2.5", "2.6", "2.7"):
        ctx.log("2. peers: idle memory")
        peers.idle_memory(ctx, table, mem_found.get(sizes["rss"]))
    if wants("4.1"):
        ctx.log("4. idle CPU")
        idle.measure(ctx, table)
    if wants("5.1", "5.2"):
        ctx.log("5. timeout precision")
        timeout.measure(ctx, table)
    if wants("6.1"):
        ctx.log("6. built-in TCP probes")
        probes.measure(ctx, table)
    if wants("7.1", "7.2", "7.3"):
        ctx.log("7. control socket under load")
        control.measure(ctx, table)
    if wants("8.1"):
        ctx.log(f"8. /metrics with {sizes['metrics_checks']} checks")
        metrics.measure(ctx, table)
    if wants("9.1", "9.2"):
        ctx.log(f"9. config evaluation, {sizes['eval']} checks")
        config_eval.measure(ctx, table, sizes["eval"])
    if wants("10.1", "10.2", "10.3", "10.4", "10.5", "10.6", "10.7", "10.8"):
        ctx.log(f"10. the large end: {', '.join(str(n) for n in sizes['large'])} tcp checks")
        large.measure(ctx, table)
    if wants("11.1", "11.2", "11.3"):
        ctx.log("11. outage log and simulate")
        history.measure(ctx, table)
    for rid in ROW_IDS:
        if rid not in table.rows and not wants(rid):
            table.set(rid, "not run (--only)", "", SKIPPED)
    text = report(ctx, table, started, load_start, os.getloadavg())
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(text)
    ctx.log(f"table written to {out}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    broken = [rid for rid in ROW_IDS if rid in table.rows and table.rows[rid][2] == ERROR]
    return 1 if broken else 0


def find_picomon(ctx, args):
    if args.picomon:
        path = os.path.abspath(args.picomon)
    elif ctx.smoke:
        release = os.path.join(REPO, "target", "release", "picomon")
        path = release if os.path.exists(release) else os.path.join(REPO, "target", "debug", "picomon")
    else:
        ctx.log("building picomon (cargo build --release)")
        r = subprocess.run(["cargo", "build", "--release", "--bin", "picomon"], cwd=REPO)
        if r.returncode != 0:
            raise BenchError("cargo build --release failed (see above)")
        path = os.path.join(REPO, "target", "release", "picomon")
    if not os.access(path, os.X_OK):
        raise BenchError(f"no picomon binary at {path}: run cargo build --release or pass --picomon PATH")
    return path


def build_floor(ctx):
    """Compiles bench/floor/floor.c into the scratch directory."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc) to build bench/floor/floor.c: apt-get install gcc libc6-dev")
    src = os.path.join(REPO, "bench", "floor", "floor.c")
    exe = os.path.join(ctx.work, "floor")
    r = subprocess.run([cc, "-O2", "-pthread", "-o", exe, src], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"cannot compile {src}: {r.stderr.strip()}")
    return exe


def find_peers(ctx, install):
    """Locates pcrunner (our venv, then PATH) and monit; in the full run
    installs what is missing (pip into target/bench/venv, apt-get)."""
    pcr = os.path.join(VENV, "bin", "pcrunner")
    if not os.access(pcr, os.X_OK) and install:
        ctx.log("installing pcrunner into target/bench/venv (pip)")
        ok = subprocess.run([sys.executable, "-m", "venv", VENV]).returncode == 0
        ok = ok and subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "pcrunner"]).returncode == 0
        if not ok:
            ctx.pcrunner_missing = "pip install pcrunner into target/bench/venv failed (see the run's stderr)"
    if os.access(pcr, os.X_OK):
        ctx.pcrunner = pcr
    elif shutil.which("pcrunner"):
        ctx.pcrunner = shutil.which("pcrunner")
    elif not ctx.pcrunner_missing:
        ctx.pcrunner_missing = (
            "pcrunner not installed (smoke mode installs nothing)" if ctx.smoke else "pcrunner not installed"
        )
    monit = shutil.which("monit") or ("/usr/bin/monit" if os.access("/usr/bin/monit", os.X_OK) else None)
    if monit is None and install:
        if os.geteuid() == 0:
            ctx.log("installing monit (apt-get)")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "install", "-y", "-q", "monit"], env=env)
            monit = shutil.which("monit") or ("/usr/bin/monit" if os.access("/usr/bin/monit", os.X_OK) else None)
            if monit is None:
                ctx.monit_missing = "apt-get install monit failed (see the run's stderr)"
        else:
            ctx.monit_missing = "monit not installed and not root: apt-get install monit"
    ctx.monit = monit
    if monit is None and not ctx.monit_missing:
        ctx.monit_missing = "monit not installed (smoke mode installs nothing)" if ctx.smoke else "monit not installed"


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {model}, Linux {platform.release()}"


def git_commit():
    try:
        r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
        return r.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def report(ctx, table, started, load_start, load_end):
    mode = "smoke (tiny N: checks that the suite runs, not figures to quote)" if ctx.smoke else "full"
    head = [
        f"# picomon benchmarks: {mode}",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC, {time.monotonic() - ctx.t0:.0f} s",
        f"- machine: {machine()}",
        f"- load average (1/5/15 min) at start {' '.join(f'{x:.2f}' for x in load_start)}, "
        f"at end {' '.join(f'{x:.2f}' for x in load_end)} (load not controlled)",
        f"- picomon: {ctx.picomon} (commit {git_commit()})",
        f"- parallelism: config.workers = {ctx.workers} = floor parallelism = pcrunner max_procs",
        f"- each figure: median of {ctx.runs} runs (section 1) or {ctx.runs_small} (others)",
        "- plugin: /usr/lib/nagios/plugins/check_dummy 0 ok; CPU includes the plugins (wait4 rusage)",
        "",
        "",
    ]
    notes = ["", "Notes:", ""] + [f"- {n}" for n in table.notes] if table.notes else []
    return "\n".join(head) + table.markdown() + "\n".join(notes) + ("\n" if notes else "")
