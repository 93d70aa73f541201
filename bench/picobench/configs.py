"""Writing the configurations each runner gets for the same work.

Every runner runs the same argv: CHECK_DUMMY with "0 ok", N times, each
check with its own name (picomon requires a unique identity per check).
picomon configs are written out line by line, as a user with many checks
would generate them, rather than as a Rhai loop.
"""
import os

CHECK_DUMMY = "/usr/lib/nagios/plugins/check_dummy"
DUMMY_ARGS = ["0", "ok"]


def rhai_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def picomon_header(state_dir, workers, base_tick=60):
    return (
        f"config.base_tick = {base_tick};\n"
        f"config.workers = {workers};\n"
        f"config.state_dir = {rhai_str(state_dir)};\n"
    )


def dummy_checks(n, prefix="c"):
    """N lines adding check_dummy 0 ok under distinct names."""
    args = ", ".join(rhai_str(a) for a in DUMMY_ARGS)
    return "".join(
        f'add(plugin({rhai_str(CHECK_DUMMY)}, [{args}]), #{{ name: "{prefix}{i}", target_name: "h" }});\n'
        for i in range(n)
    )


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def picomon_dummy(workdir, tag, n, workers, base_tick=60):
    """A picomon config of N check_dummy checks; returns its path."""
    state = os.path.join(workdir, tag + "-state")
    text = picomon_header(state, workers, base_tick) + dummy_checks(n)
    return write(os.path.join(workdir, tag + ".rhai"), text)


def monit_dummy(workdir, tag, n, cycle):
    """A Monit control file (mode 0600, as Monit demands) with N
    `check program` entries, everything kept in workdir."""
    base = os.path.join(workdir, tag)
    os.makedirs(base, exist_ok=True)
    lines = [
        f"set daemon {cycle}",
        f"set logfile {base}/monit.log",
        f"set pidfile {base}/monit.pid",
        f"set idfile {base}/monit.id",
        f"set statefile {base}/monit.state",
    ]
    cmd = " ".join([CHECK_DUMMY] + DUMMY_ARGS)
    for i in range(n):
        lines.append(f'check program c{i} with path "{cmd}"')
        lines.append("    if status != 0 then alert")
    path = write(os.path.join(base, "monitrc"), "\n".join(lines) + "\n", 0o600)
    return path, os.path.join(base, "monit.log")


def pcrunner_dummy(workdir, tag, n, procs, url, interval=3600):
    """A pcrunner config (YAML) and command file (text format) for N
    check_dummy runs, posting to url; all its files kept in workdir."""
    base = os.path.join(workdir, tag)
    os.makedirs(base, exist_ok=True)
    cmd = " ".join([CHECK_DUMMY] + DUMMY_ARGS)
    commands = write(
        os.path.join(base, "commands.txt"),
        "".join(f"SERVICE|c{i}|{cmd}\n" for i in range(n)),
    )
    # pcrunner reads its YAML after the command line, so everything that
    # matters is set here. Its run timeout is interval - 10 s.
    yml = "\n".join(
        [
            f"nsca_web_url: {url}",
            "nsca_web_username: bench",
            "nsca_web_password: bench",
            "hostname: h",
            f"command_file: {commands}",
            f"result_file: {base}/pcrunner.dat",
            f"pid_file: {base}/pcrunner.pid",
            f"log_file: {base}/pcrunner.log",
            f"max_procs: {procs}",
            f"interval: {interval}",
            "lines_per_post: 400",
            "",
        ]
    )
    return write(os.path.join(base, "pcrunner.yml"), yml)

# Checks picomon adds to every config it runs (`picomon state_dir`): `-1`
# prints one more OK line than the config declares.
OWN_CHECKS = 1
