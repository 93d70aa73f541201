"""Measurement 8.1: answering `/metrics` with N checks.

One daemon with N check_dummy checks, base_tick an hour (tick 0 is the only
one) and `config.listen = "127.0.0.1:0"` (the port it got is read from its
log). Once every check has a status on `/metrics`, a client on the same
machine sends GET /metrics on a new connection and reads the answer to its
end, one request after the other: first a few to warm up, then the
measured ones. A figure is the whole of one scrape as Prometheus sees it:
the request reaching the loop, the loop copying its snapshot, the HTTP
thread rendering the text format, and the bytes crossing loopback.
"""
import os
import re
import shutil
import socket
import time

from . import configs
from .procs import BenchError, Daemon, median, wait_for
from .table import MISS, PASS

TARGET_S = 0.020
WARM_UP = 3
LISTENING = re.compile(r"http: listening on 127\.0\.0\.1:(\d+)")
STATUS_LINE = re.compile(rb"^picomon_check_status\{", re.M)


def scrape(port):
    """One GET /metrics on its own connection: (seconds, status, body)."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    took = time.perf_counter() - start
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    return took, (status[0].decode() if status else "?"), body


def measure(ctx, table, rids=("8.1",)):
    (row,) = rids
    n = ctx.sizes["metrics_checks"]
    requests = ctx.sizes["metrics_requests"]
    target = f"< {TARGET_S * 1000:.0f} ms"
    tag = "metrics"
    state_dir = os.path.join(ctx.work, tag + "-state")
    shutil.rmtree(state_dir, ignore_errors=True)
    cfg = configs.picomon_dummy(ctx.work, tag, n, ctx.workers, base_tick=3600)
    with open(cfg, "a") as f:
        f.write('config.listen = "127.0.0.1:0";\n')
    env = dict(os.environ, RUST_LOG="info")
    try:
        with Daemon([ctx.picomon, "-c", cfg], ctx.work, tag, env=env) as d:
            found = wait_for(lambda: LISTENING.search(d.stderr()), ctx.timeout(n), "the daemon's http listener")
            port = int(found.group(1))
            want = n + configs.OWN_CHECKS

            def all_ran():
                _, status, body = scrape(port)
                return status == "200" and len(STATUS_LINE.findall(body)) == want

            wait_for(all_ran, ctx.timeout(n), f"a status for all {want} checks on /metrics", step=0.5)
            for _ in range(WARM_UP):
                scrape(port)
            times, size = [], 0
            for _ in range(requests):
                took, status, body = scrape(port)
                if status != "200":
                    raise BenchError(f"GET /metrics answered {status}; see {d.err_path}")
                times.append(took)
                size = len(body)
            if d.proc.poll() is not None:
                raise BenchError(f"the daemon exited (status {d.proc.returncode}); see {d.err_path}")
    except (BenchError, OSError) as e:
        table.fail(list(rids), target, e)
        return
    mid = median(times)
    table.set(
        row,
        f"{mid * 1000:.1f} ms median (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f} ms; "
        f"{requests} requests, {size / 1e6:.2f} MB each)",
        target,
        PASS if mid < TARGET_S else MISS,
        f"{n} checks, one GET /metrics at a time on a new loopback connection, read to the end; "
        f"every answer (ms): {', '.join(f'{t * 1000:.1f}' for t in times)}",
    )
