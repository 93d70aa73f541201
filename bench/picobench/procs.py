"""Timing processes and reading their footprint from /proc.

Wall time comes from the monotonic clock around the child's life; CPU time
from wait4(2), which counts the child and every descendant it reaped (the
plugins), so "CPU" is the whole cost of the work, not only the runner's.
"""
import os
import resource
import signal
import statistics
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A measurement could not be made; the message says what and why."""


class Timed:
    """The result of one timed run."""

    def __init__(self, wall, cpu, rc, stdout, stderr):
        self.wall = wall
        self.cpu = cpu
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def run_timed(argv, workdir, tag, timeout, env=None):
    """Runs argv to completion; stdout/stderr go to files in workdir (no
    pipe handling in the measured window). Kills it after timeout seconds."""
    out_path = os.path.join(workdir, tag + ".out")
    err_path = os.path.join(workdir, tag + ".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
            )
        except OSError as e:
            raise BenchError(f"cannot start {argv[0]}: {e}") from e
        killer = threading.Timer(timeout, _kill_quietly, (proc.pid,))
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if wall >= timeout:
        raise BenchError(f"{argv[0]} did not finish within {timeout} s (killed); see {err_path}")
    return Timed(
        wall,
        usage.ru_utime + usage.ru_stime,
        proc.returncode,
        _read(out_path),
        _read(err_path),
    )


def _kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def median(values):
    return statistics.median(values)


def proc_status(pid):
    """The fields of /proc/PID/status as a dict of strings."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def rss_kib(pid):
    """(VmRSS, VmHWM) in KiB."""
    st = proc_status(pid)
    return int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0])


def footprint_kib(pid):
    """What a process's memory costs the machine, in KiB, from one read of
    /proc/PID/smaps (its per-mapping fields; summed, they are what
    /proc/PID/smaps_rollup shows):

    - rss: resident pages, shared ones counted whole (`Rss`);
    - pss: resident pages, each divided by the number of processes mapping
      it (`Pss`): the process's fair share of the shared libraries;
    - private: the pages only this process's existence keeps, which the
      kernel can free only by swapping them: in private mappings the
      `Anonymous` pages (heap, stacks, and the copy-on-write copies of
      file pages: relocated data, written .data), in shared mappings the
      `Private_Dirty` pages (written file or shmem pages no one else maps;
      a shared mapping has no anonymous page). Not `Private_Clean`: a
      clean file page (this process's own code, say) stays in the page
      cache and is dropped under pressure without being written anywhere.
      Not `Anonymous + Private_Dirty` of the rollup: an anonymous page is
      dirty too, so that would count it twice;
    - anon_total, private_dirty, swap: the rollup's `Anonymous`,
      `Private_Dirty` and `Swap`, for the notes;
    - own, libs, anon: resident KiB by what is mapped: the program's own
      file (for a script: the interpreter), other files (shared
      libraries), no file (heap, stacks)."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    fig = dict.fromkeys(("rss", "pss", "private", "anon_total", "private_dirty", "swap", "own", "libs", "anon"), 0)
    name, shared = "", False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if not head[0].endswith(":"):
                # A mapping's first line: range, perms, offset, dev, inode, path.
                shared = len(head) > 1 and head[1].endswith("s")
                name = " ".join(head[5:])
                continue
            if len(head) < 2 or not head[1].isdigit():
                continue
            kib = int(head[1])
            if head[0] == "Rss:":
                fig["rss"] += kib
                fig["own" if name == exe else "libs" if name.startswith("/") else "anon"] += kib
            elif head[0] == "Pss:":
                fig["pss"] += kib
            elif head[0] == "Anonymous:":
                fig["anon_total"] += kib
                if not shared:
                    fig["private"] += kib
            elif head[0] == "Private_Dirty:":
                fig["private_dirty"] += kib
                if shared:
                    fig["private"] += kib
            elif head[0] == "Swap:":
                fig["swap"] += kib
    return fig


def mib(kib):
    return f"{kib / 1024:.1f}"


def footprint_text(fig, peak_kib=None):
    """One cell: private first (the figure the targets are about), then
    PSS and RSS."""
    peak = f", peak RSS {mib(peak_kib)}" if peak_kib is not None else ""
    return f"{mib(fig['private'])} MiB private (PSS {mib(fig['pss'])}, RSS {mib(fig['rss'])}{peak})"


def cpu_seconds(pid, children=True):
    """utime+stime (and, with children, cutime+cstime: the reaped plugins)
    of a live process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name may hold spaces; the fields start after its ')'.
    rest = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    ticks = utime + stime + (cutime + cstime if children else 0)
    return ticks / CLK_TCK


def context_switches(pid):
    """Voluntary + involuntary context switches over all threads: a process
    that polls shows a steady count; one blocked for good shows none."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            st = proc_status(f"{pid}/task/{tid}")
        except FileNotFoundError:
            continue
        total += int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"])
    return total


def children_of(pid):
    """Pids whose parent is pid (scans /proc: works without
    CONFIG_PROC_CHILDREN and for every thread of pid)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        if int(rest[1]) == pid:
            kids.append(int(entry))
    return kids


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_idle(pid, settle, within, what, children=True):
    """Waits until pid has no child process and its CPU time (children
    included) has not moved for `settle` seconds: the tick's runs are done.
    children=False ignores child processes (Monit leaves its programs as
    zombies until its next cycle). Raises BenchError after `within` s."""
    deadline = time.monotonic() + within
    last = None
    since = time.monotonic()
    while True:
        if not alive(pid):
            raise BenchError(f"{what} exited while starting up")
        now = time.monotonic()
        cpu = cpu_seconds(pid)
        busy = children and bool(children_of(pid))
        if busy or cpu != last:
            last = cpu
            since = now
        elif now - since >= settle:
            return
        if now > deadline:
            raise BenchError(f"{what} still busy after {within} s")
        time.sleep(0.1)


def wait_for(predicate, within, what, step=0.05):
    """Polls predicate until it returns a true value; BenchError after
    `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within} s waiting for {what}")
        time.sleep(step)


class Daemon:
    """A long-running process under measurement, stopped at exit of the
    with-block (SIGTERM, then SIGKILL after a bounded wait)."""

    def __init__(self, argv, workdir, tag, env=None, nofile=None):
        self.argv = argv
        self.nofile = nofile
        self.out_path = os.path.join(workdir, tag + ".out")
        self.err_path = os.path.join(workdir, tag + ".err")
        self.env = env
        self.proc = None

    def __enter__(self):
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=self._err,
                env=self.env,
                preexec_fn=self._limit if self.nofile else None,
            )
        except OSError as e:
            raise BenchError(f"cannot start {self.argv[0]}: {e}") from e
        return self

    def _limit(self):
        """Lowers the soft open-files limit in the child (see peers.py)."""
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft = self.nofile if hard == resource.RLIM_INFINITY else min(self.nofile, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        return _read(self.err_path)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()
        return False
