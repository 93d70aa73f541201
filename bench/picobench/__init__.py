"""The picomon benchmark suite: measurements, their peers and the table.

Modules:
- suite: command line, sizes per mode, running the measurements in order.
- procs: timing a process (wall and CPU via wait4), reading /proc, waiting
  for a daemon to go idle.
- configs: writing picomon, Monit and pcrunner configurations.
- receiver: a local NSCA-web HTTP endpoint that counts posted results.
- listeners: loopback TCP listeners for the built-in probe measurement.
- table: rows, verdicts and the Markdown table.
- throughput, tick, peers, memory, idle, timeout, probes: one measurement
  each (tick: one daemon tick against -1 and the floor).
"""
