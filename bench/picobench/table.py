"""Rows of the results table and their Markdown form.

Every row has a stable id (the measurement number in BENCHMARKS.md), so a
table from a smoke run and one from a full run line up, and the smoke test
can check that no row went missing.
"""

# Verdicts a row may carry. "error" means the measurement itself broke.
PASS, MISS, INFO, SKIPPED, UNAVAILABLE, ERROR = (
    "pass",
    "MISS",
    "info",
    "skipped",
    "not available yet",
    "error",
)
VERDICTS = (PASS, MISS, INFO, SKIPPED, UNAVAILABLE, ERROR)

# Every row the suite produces, in order, with what it measures.
ROWS = [
    ("1.1", "plugin runs, N={n1}: picomon -1 / floor (wall)"),
    ("1.2", "plugin runs, N={n1}: picomon -1 / floor (CPU)"),
    ("1.3", "config evaluation, N={n1}: picomon --check-config"),
    ("1.4", "plugin runs, N={n2}: picomon -1 / floor (wall)"),
    ("1.5", "plugin runs, N={n2}: picomon -1 / floor (CPU)"),
    ("1.6", "config evaluation, N={n2}: picomon --check-config"),
    ("1.7", "processes and threads picomon -1 creates for N={n1} runs (strace -f)"),
    ("1.8", "one daemon tick, N={n2}: picomon daemon (start to last result) / picomon -1 (wall)"),
    ("1.9", "one daemon tick, N={n2}: picomon daemon (start to last result) / floor (wall)"),
    ("2.1", "per 1,000 runs (N={np}): floor, wall / CPU s"),
    ("2.2", "per 1,000 runs (N={np}): picomon -1, wall / CPU s"),
    ("2.3", "per 1,000 runs (N={np}): pcrunner (one run, POST to local receiver), wall / CPU s"),
    ("2.4", "per 1,000 runs (N={np}): Monit (check program, 1 s cycle), wall / CPU s"),
    ("2.5", "idle memory, {nr} checks: picomon daemon"),
    ("2.6", "idle memory, {nr} checks: Monit daemon"),
    ("2.7", "idle memory, {nr} checks: pcrunner runloop"),
    ("3.1", "idle daemon memory, {m1} checks"),
    ("3.2", "idle daemon memory, {m2} checks"),
    ("3.3", "idle daemon memory, {m3} checks"),
    ("3.4", "picomon executable, stripped"),
    ("3.5", "picomon-watchdog executable, stripped"),
    ("4.1", "idle CPU between ticks, {ni} checks, over {iw} s"),
    ("5.1", "hung plugin (ignores SIGTERM), timeout {tt} s: gone after timeout +"),
    ("5.2", "other checks of the same tick ({tq} quick): last done at"),
    ("6.1", "{nt} built-in TCP probes, one tick, loopback"),
    ("7.1", "control socket under load, {nc} checks, base_tick {ct} s: tick lateness p99 with {cr} status requests/s / without"),
    ("7.2", "control socket under load: the tick's runs, start to last result, with / without the requests"),
    ("7.3", "control socket under load: status requests served per second"),
    ("8.1", "GET /metrics with {nm} checks: the whole answer, loopback"),
    ("9.1", "config evaluation, {ne} checks: picomon --check-config"),
    ("9.2", "an endless loop in the config: picomon --check-config gives up after"),
    ("10.1", "idle daemon memory, {l1} tcp checks"),
    ("10.2", "idle daemon memory, {l2} tcp checks"),
    ("10.3", "idle daemon memory, {l3} tcp checks"),
    ("10.4", "{l3} tcp checks: private memory after 100 GET /metrics and 10 status --json / before"),
    ("10.5", "{l3} tcp checks: picomon --check-config peak"),
    ("10.6", "{l3} tcp checks: GET /metrics, the whole answer, loopback"),
    ("10.7", "{l3} tcp checks: picomon status --json, wall"),
    ("10.8", "{l3} tcp checks: config load pinned to one CPU beside 4 busy loops"),
    ("11.1", "outage log: a year of a check failing every hour, on disk"),
    ("11.2", "outage log: idle daemon memory with that year in the state dir / without"),
    ("11.3", "picomon simulate: a day of simulated time, 100 checks, 60 s base_tick"),
]
ROW_IDS = [r[0] for r in ROWS]


class Table:
    def __init__(self, sizes):
        self.what = {rid: text.format(**sizes) for rid, text in ROWS}
        self.rows = {}
        self.notes = []

    def set(self, rid, result, target, verdict, note=None):
        if rid not in self.what:
            raise KeyError(rid)
        if verdict not in VERDICTS:
            raise ValueError(verdict)
        self.rows[rid] = (result, target, verdict)
        if note:
            self.notes.append(f"{rid}: {note}")

    def fail(self, rids, target, err):
        """Marks rows whose measurement broke, with the reason."""
        for rid in rids:
            self.rows[rid] = ("error: " + _cell(str(err)), target, ERROR)
        self.notes.append(f"{', '.join(rids)}: {err}")

    def markdown(self):
        out = ["| # | measurement | result | target | verdict |", "|---|---|---|---|---|"]
        for rid, _ in ROWS:
            result, target, verdict = self.rows.get(rid, ("not measured", "", ERROR))
            out.append(f"| {rid} | {_cell(self.what[rid])} | {_cell(result)} | {_cell(target)} | {verdict} |")
        return "\n".join(out) + "\n"


def _cell(text):
    return " ".join(str(text).replace("|", "/").split())
