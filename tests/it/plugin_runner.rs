//! The plugin runner against real processes: fixture plugins in
//! `tests/fixtures/plugins/` that misbehave in the ways real plugins do, and
//! real monitoring-plugins from `/usr/lib/nagios/plugins`.
//!
//! Every run is checked for its result, for its duration (a run ends within
//! timeout + 1.5 s) and for what it leaves behind: the fixtures write their
//! pids (and their children's) to a file in the test's own temp dir, and the
//! test polls /proc until each is gone, then checks that this process has no
//! zombie children.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use picomon::model::{Outcome, Perf, Status};
use picomon::run::plugin::{
    run, shell_args, shell_program, PluginCommand, RunningGroups, DEFAULT_MAX_OUTPUT, NOT_STARTED,
    TRUNCATED_MARK,
};

/// How long a process may take to disappear from /proc once killed, on a
/// loaded 2-core machine.
const GONE_WITHIN: Duration = Duration::from_secs(10);

const PLUGINS: &str = "/usr/lib/nagios/plugins";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plugins")
        .join(name)
}

fn real_plugin(name: &str) -> PathBuf {
    Path::new(PLUGINS).join(name)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs `program args` with `timeout`. How close to the timeout a hung run
/// ends is bench row 5.1, not an assertion here: a loaded machine says
/// nothing about wall time. What a test can hold at any load: the run's
/// own duration is within the time the test saw pass.
fn run_timed(program: &Path, args: &[String], timeout: Duration) -> Outcome {
    run_with(program, args, &[], None, timeout, DEFAULT_MAX_OUTPUT)
}

fn run_with(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: Option<&Path>,
    timeout: Duration,
    max_output: usize,
) -> Outcome {
    let cmd = PluginCommand {
        program,
        args,
        env,
        cwd,
        timeout,
        max_output,
    };
    let start = Instant::now();
    let outcome = run(&cmd, None);
    let wall = start.elapsed();
    assert!(
        outcome.duration <= wall,
        "duration {:?} is more than the wall time {wall:?}",
        outcome.duration
    );
    outcome
}

/// A temp dir and the pid file inside it that fixtures append to.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("create a temp dir"),
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("pids")
    }

    fn pid_arg(&self) -> Vec<String> {
        vec![self.pid_file().display().to_string()]
    }

    /// The pids the fixture recorded; asserts it recorded `expected`.
    fn pids(&self, expected: usize) -> Vec<i32> {
        let text = std::fs::read_to_string(self.pid_file()).unwrap_or_default();
        let pids: Vec<i32> = text
            .lines()
            .map(|l| l.trim().parse().expect("a pid per line"))
            .collect();
        assert_eq!(pids.len(), expected, "pid file says {text:?}");
        pids
    }
}

/// State letter and ppid of a process, from /proc/PID/stat; `None` when it
/// no longer exists.
fn proc_state(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: split after
    // the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Polls until `pid` is no longer a running process. A zombie whose parent
/// is not us counts as gone: it is dead, and reaping orphans is init's job
/// (this sandbox's pid 1 does not reap, so they stay visible here).
fn assert_gone(pid: i32) {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + GONE_WITHIN;
    loop {
        let state = proc_state(pid);
        match state {
            None => return,
            Some(('Z', ppid)) if ppid != me => return,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} still there after {GONE_WITHIN:?}: {state:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until this process has no zombie child (other tests in the same
/// process may have one for an instant while they reap it).
fn assert_no_zombie_children() {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + GONE_WITHIN;
    loop {
        let zombies: Vec<i32> = std::fs::read_dir("/proc")
            .expect("read /proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| proc_state(pid) == Some(('Z', me)))
            .collect();
        if zombies.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "zombie children left behind: {zombies:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn assert_clean(pids: &[i32]) {
    for &pid in pids {
        assert_gone(pid);
    }
    assert_no_zombie_children();
}

fn item_value(perf: &[Perf], wanted: &str) -> Option<(f64, String)> {
    perf.iter().find_map(|p| match p {
        Perf::Item {
            label, value, uom, ..
        } if label == wanted => Some((*value, uom.clone())),
        _ => None,
    })
}

#[test]
fn hung_plugin_times_out_and_its_group_is_killed() {
    let s = Scratch::new();
    let timeout = Duration::from_secs(1);
    let o = run_timed(&fixture("hang.sh"), &s.pid_arg(), timeout);
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert_eq!(o.summary, "timed out after 1 s");
    assert!(o.duration >= timeout, "ended before its timeout: {o:?}");
    assert_clean(&s.pids(2));
}

#[test]
fn timeout_is_reported_in_fractions_of_a_second() {
    let s = Scratch::new();
    let o = run_timed(
        &fixture("hang.sh"),
        &s.pid_arg(),
        Duration::from_millis(500),
    );
    assert_eq!(o.summary, "timed out after 0.5 s");
    assert_clean(&s.pids(2));
}

#[test]
fn plugin_ignoring_sigterm_is_killed_after_the_grace() {
    let s = Scratch::new();
    let timeout = Duration::from_secs(1);
    let o = run_timed(&fixture("ignore_term.sh"), &s.pid_arg(), timeout);
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert_eq!(o.summary, "timed out after 1 s");
    // SIGTERM did nothing, so the run lasted through the 1 s grace.
    assert!(o.duration >= timeout + Duration::from_millis(900), "{o:?}");
    assert_clean(&s.pids(2));
}

#[test]
fn grandchild_holding_stdout_is_killed_and_does_not_hang_the_run() {
    let s = Scratch::new();
    let o = run_timed(
        &fixture("grandchild.sh"),
        &s.pid_arg(),
        Duration::from_secs(30),
    );
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.summary, "OK - left a grandchild behind");
    assert!(o.duration < Duration::from_secs(3), "{o:?}");
    assert_clean(&s.pids(1));
}

#[test]
fn grandchild_that_left_the_group_does_not_hang_the_run() {
    let s = Scratch::new();
    let o = run_timed(
        &fixture("grandchild_setsid.sh"),
        &s.pid_arg(),
        Duration::from_secs(30),
    );
    let pids = s.pids(1);
    let escaped = pids[0];
    // It escaped the group, so the run could not kill it: the run must
    // still have returned promptly, without waiting for its pipe to close.
    let state = proc_state(escaped);
    // Clean up before asserting, so a failure leaves nothing behind either.
    // SAFETY: kill(2) on a pid our fixture just started.
    unsafe { libc::kill(escaped, libc::SIGKILL) };
    assert!(
        matches!(state, Some((st, _)) if st != 'Z'),
        "the escaped grandchild should still have been alive: {state:?}"
    );
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.summary, "OK - left an escaped grandchild behind");
    assert!(o.duration < Duration::from_secs(3), "{o:?}");
    assert_clean(&pids);
}

#[test]
fn ten_megabytes_on_both_pipes_are_drained_and_truncated() {
    let o = run_timed(&fixture("big_output.sh"), &[], Duration::from_secs(60));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.summary, "OK - big output");
    let long = &o.long_output;
    // Kept: at most max_output of each pipe, plus the two marks.
    assert!(
        long.len() <= 2 * DEFAULT_MAX_OUTPUT + 100,
        "long output is {} bytes",
        long.len()
    );
    assert!(long.contains("stdout noise"), "stdout kept");
    assert!(long.contains("stderr noise"), "stderr kept");
    assert_eq!(long.matches(TRUNCATED_MARK).count(), 2, "both marked");
    // stdout comes first, then stderr.
    let first_err = long.find("stderr noise").unwrap_or(0);
    assert!(long[..first_err].contains(TRUNCATED_MARK));
    assert!(long.ends_with(TRUNCATED_MARK));
    assert_no_zombie_children();
}

#[test]
fn small_max_output_truncates_the_summary_line() {
    let o = run_with(
        &fixture("exit_code.sh"),
        &strings(&["1"]),
        &[],
        None,
        Duration::from_secs(30),
        6,
    );
    assert_eq!(o.status, Status::Warning);
    assert_eq!(o.summary, "plugin");
    assert_eq!(o.long_output, TRUNCATED_MARK);
}

#[test]
fn bytes_that_are_not_utf8_are_replaced() {
    let o = run_timed(&fixture("non_utf8.sh"), &[], Duration::from_secs(30));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.summary, "OK - caf\u{FFFD} \u{FFFD}\u{FFFD} bytes");
    assert_eq!(item_value(&o.perfdata, "temp"), Some((21.5, "C".into())));
    assert_no_zombie_children();
}

/// Runs tests/fixtures/plugins/exit_code.sh, which says and exits `code`.
fn run_exit_code(code: &str) -> Outcome {
    run_timed(
        &fixture("exit_code.sh"),
        &strings(&[code]),
        Duration::from_secs(30),
    )
}

#[test]
fn exit_code_4_is_unknown_and_keeps_the_output() {
    let o = run_exit_code("4");
    assert_eq!(o.status, Status::Unknown);
    assert_eq!(o.summary, "exit code 4: plugin says 4");
    assert_no_zombie_children();
}

#[test]
fn exit_code_255_is_unknown() {
    let o = run_exit_code("255");
    assert_eq!(o.status, Status::Unknown);
    assert_eq!(o.summary, "exit code 255: plugin says 255");
    assert_no_zombie_children();
}

#[test]
fn exit_codes_0_to_3_are_the_nagios_statuses() {
    for (code, status) in [
        ("0", Status::Ok),
        ("1", Status::Warning),
        ("2", Status::Critical),
        ("3", Status::Unknown),
    ] {
        let o = run_exit_code(code);
        assert_eq!(o.status, status);
        assert_eq!(o.summary, format!("plugin says {code}"));
    }
}

#[test]
fn plugin_killed_by_sigsegv_says_so() {
    let o = run_timed(&fixture("segv.sh"), &[], Duration::from_secs(30));
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert_eq!(o.summary, "killed by SIGSEGV: about to crash");
    assert_no_zombie_children();
}

#[test]
fn missing_plugin_cannot_run() {
    let s = Scratch::new();
    let missing = s.dir.path().join("check_nothing_here");
    let o = run_timed(&missing, &[], Duration::from_secs(30));
    assert_eq!(o.status, Status::Unknown);
    assert_eq!(
        o.summary,
        format!(
            "cannot run {}: No such file or directory",
            missing.display()
        )
    );
}

#[test]
fn non_executable_plugin_cannot_run() {
    let s = Scratch::new();
    let plain = s.dir.path().join("check_plain_file");
    std::fs::write(&plain, "#!/bin/sh\necho OK\n").expect("write a plain file");
    let o = run_timed(&plain, &[], Duration::from_secs(30));
    assert_eq!(o.status, Status::Unknown);
    assert_eq!(
        o.summary,
        format!("cannot run {}: Permission denied", plain.display())
    );
}

#[test]
fn missing_working_directory_names_the_cwd_option() {
    let s = Scratch::new();
    let gone = s.dir.path().join("no_such_dir");
    let o = run_with(
        &fixture("exit_code.sh"),
        &strings(&["0"]),
        &[],
        Some(&gone),
        Duration::from_secs(30),
        DEFAULT_MAX_OUTPUT,
    );
    assert_eq!(o.status, Status::Unknown);
    assert!(o.summary.contains(&gone.display().to_string()), "{o:?}");
    assert!(o.summary.contains("No such file or directory"), "{o:?}");
    assert!(o.summary.contains("`cwd`"), "{o:?}");
}

#[test]
fn multiline_output_with_perfdata_on_two_lines() {
    let o = run_timed(&fixture("multiline.sh"), &[], Duration::from_secs(30));
    assert_eq!(o.status, Status::Ok);
    assert_eq!(o.summary, "DISK OK - all fine");
    assert_eq!(o.long_output, "line two\nline three");
    assert_eq!(o.perfdata.len(), 4, "{:?}", o.perfdata);
    assert_eq!(item_value(&o.perfdata, "/ used"), Some((10.0, "MB".into())));
    assert_eq!(
        item_value(&o.perfdata, "inode use"),
        Some((5.0, "%".into()))
    );
    assert_eq!(item_value(&o.perfdata, "extra"), Some((1.0, "c".into())));
    assert_eq!(o.perfdata[3], Perf::Text("bad=oops".into()));
}

#[test]
fn environment_cwd_stdin_and_process_group() {
    let s = Scratch::new();
    let env = vec![("CHECK_VAR".to_string(), "a value".to_string())];
    let o = run_with(
        &fixture("env_cwd.sh"),
        &[],
        &env,
        Some(s.dir.path()),
        Duration::from_secs(30),
        DEFAULT_MAX_OUTPUT,
    );
    assert_eq!(o.status, Status::Ok, "{o:?}");
    let cwd = s.dir.path().display().to_string();
    assert!(
        o.summary.contains(&format!("cwd={cwd} stdin=/dev/null")),
        "{o:?}"
    );
    // pid == pgid: the plugin leads its own process group.
    let fields: Vec<&str> = o.summary.split_whitespace().collect();
    let pid = fields.iter().find_map(|f| f.strip_prefix("pid="));
    let pgid = fields.iter().find_map(|f| f.strip_prefix("pgid="));
    assert!(pid.is_some() && pid == pgid, "{o:?}");
    let mut vars: Vec<&str> = o
        .long_output
        .lines()
        // The shell adds PWD (and SHLVL) itself.
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL="))
        .collect();
    vars.sort_unstable();
    assert_eq!(
        vars,
        vec![
            "CHECK_VAR=a value",
            "LC_ALL=C",
            "PATH=/usr/local/bin:/usr/bin:/bin"
        ]
    );

    // Without `cwd` a plugin runs in `/`.
    let o = run_timed(&fixture("env_cwd.sh"), &[], Duration::from_secs(30));
    assert!(o.summary.contains("cwd=/ "), "{o:?}");
}

#[test]
fn shell_command_runs_through_bin_sh() {
    let args = shell_args("echo 'WARNING - from a shell' | tr a-z A-Z; exit 1");
    let o = run_timed(shell_program(), &args, Duration::from_secs(30));
    assert_eq!(o.status, Status::Warning);
    assert_eq!(o.summary, "WARNING - FROM A SHELL");
}

#[test]
fn stderr_only_output_becomes_the_summary() {
    let args = shell_args("echo 'no such thing' >&2; exit 2");
    let o = run_timed(shell_program(), &args, Duration::from_secs(30));
    assert_eq!(o.status, Status::Critical);
    assert_eq!(o.summary, "no such thing");
}

#[test]
fn check_dummy_statuses_and_text() {
    for code in 0..=3 {
        let args = vec![code.to_string(), format!("dummy text {code}")];
        let o = run_timed(&real_plugin("check_dummy"), &args, Duration::from_secs(30));
        let status = Status::from_code(code).expect("0..3 is a status");
        assert_eq!(o.status, status, "{o:?}");
        assert_eq!(o.summary, format!("{status}: dummy text {code}"));
    }
    assert_no_zombie_children();
}

#[test]
fn check_tcp_open_loopback_port_is_ok() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    let args = strings(&["-H", "127.0.0.1", "-p", &port.to_string(), "-t", "10"]);
    let o = run_timed(&real_plugin("check_tcp"), &args, Duration::from_secs(20));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert!(o.summary.starts_with("TCP OK"), "{o:?}");
    assert!(item_value(&o.perfdata, "time").is_some(), "{o:?}");
    drop(listener);
}

#[test]
fn check_tcp_closed_loopback_port_is_critical() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.local_addr().expect("local address").port()
    };
    let args = strings(&["-H", "127.0.0.1", "-p", &port.to_string(), "-t", "10"]);
    let o = run_timed(&real_plugin("check_tcp"), &args, Duration::from_secs(20));
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(o.summary.contains("Connection refused"), "{o:?}");
}

#[test]
fn check_disk_root() {
    let args = strings(&["-w", "10%", "-c", "5%", "-p", "/"]);
    let o = run_timed(&real_plugin("check_disk"), &args, Duration::from_secs(30));
    // The status depends on this machine's disk; it must agree with the
    // plugin's own words.
    let word = format!("DISK {}", o.status);
    assert!(o.summary.starts_with(&word), "{o:?}");
    assert_ne!(o.status, Status::Unknown, "{o:?}");
    let (used, uom) = item_value(&o.perfdata, "/").expect("perfdata for /");
    assert!(used > 0.0, "{o:?}");
    assert_eq!(uom, "B");
}

#[test]
fn check_load_with_high_limits_is_ok() {
    // Limits no host reaches: the load average counts the whole host.
    let args = strings(&[
        "-w",
        "1000000,1000000,1000000",
        "-c",
        "2000000,2000000,2000000",
    ]);
    let o = run_timed(&real_plugin("check_load"), &args, Duration::from_secs(30));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert!(o.summary.starts_with("LOAD OK"), "{o:?}");
    for label in ["load1", "load5", "load15"] {
        let (value, _) = item_value(&o.perfdata, label).expect("load perfdata");
        assert!((0.0..1e6).contains(&value), "{label}={value}");
    }
    let Some(Perf::Item { warn, crit, .. }) = o.perfdata.first() else {
        panic!("no perfdata item: {o:?}");
    };
    assert_eq!(
        (warn.as_str(), crit.as_str()),
        ("1000000.000", "2000000.000")
    );
}

#[test]
fn kill_all_stops_a_hung_run_from_another_thread() {
    let s = Scratch::new();
    let groups = Arc::new(RunningGroups::new());
    let program = fixture("hang.sh");
    let args = s.pid_arg();
    let runner = {
        let groups = Arc::clone(&groups);
        thread::spawn(move || {
            let cmd = PluginCommand {
                program: &program,
                args: &args,
                env: &[],
                cwd: None,
                timeout: Duration::from_secs(120),
                max_output: DEFAULT_MAX_OUTPUT,
            };
            run(&cmd, Some(&groups))
        })
    };
    // Wait until the run is registered and the fixture has started its sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    while groups.is_empty()
        || std::fs::read_to_string(s.pid_file())
            .unwrap_or_default()
            .lines()
            .count()
            < 2
    {
        assert!(Instant::now() < deadline, "the run never started");
        thread::sleep(Duration::from_millis(10));
    }
    let t0 = Instant::now();
    groups.kill_all(Duration::from_secs(1));
    let deadline = t0 + Duration::from_secs(5);
    while !runner.is_finished() {
        assert!(Instant::now() < deadline, "run still going after kill_all");
        thread::sleep(Duration::from_millis(10));
    }
    let o = runner.join().expect("the run thread panicked");
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert!(
        o.summary
            .starts_with("stopped at shutdown (killed by SIGTERM)"),
        "{o:?}"
    );
    assert!(groups.is_empty());
    assert_clean(&s.pids(2));

    // A run due after shutdown began does not start at all.
    let o = run(
        &PluginCommand {
            program: Path::new("/bin/sleep"),
            args: &strings(&["100"]),
            env: &[],
            cwd: None,
            timeout: Duration::from_secs(120),
            max_output: DEFAULT_MAX_OUTPUT,
        },
        Some(&groups),
    );
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert_eq!(o.summary, NOT_STARTED, "{o:?}");
    assert!(o.duration < Duration::from_secs(5), "{o:?}");
    assert_no_zombie_children();
}

/// Threads of this process whose name is `name`. A thread started by code
/// running on a named thread inherits that name.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

#[test]
fn a_run_creates_no_thread() {
    const NAME: &str = "plugin-run-1";
    // The detector works: a thread started from a named thread is counted.
    let control = thread::Builder::new()
        .name(NAME.to_string())
        .spawn(|| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let child = thread::spawn(move || rx.recv());
            let n = threads_named(NAME);
            drop(tx);
            let _ = child.join();
            n
        })
        .expect("spawn the control thread");
    assert_eq!(control.join().expect("control thread panicked"), 2);

    let inside = Arc::new(AtomicBool::new(false));
    let runner = {
        let inside = Arc::clone(&inside);
        thread::Builder::new()
            .name(NAME.to_string())
            .spawn(move || {
                let args = strings(&["1"]);
                let cmd = PluginCommand {
                    program: Path::new("/bin/sleep"),
                    args: &args,
                    env: &[],
                    cwd: None,
                    timeout: Duration::from_secs(30),
                    max_output: DEFAULT_MAX_OUTPUT,
                };
                inside.store(true, Ordering::SeqCst);
                let o = run(&cmd, None);
                inside.store(false, Ordering::SeqCst);
                o
            })
            .expect("spawn the run thread")
    };
    let mut samples = 0;
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !runner.is_finished() {
        assert!(Instant::now() < deadline, "the run did not end");
        if inside.load(Ordering::SeqCst) {
            let n = threads_named(NAME);
            if inside.load(Ordering::SeqCst) {
                samples += 1;
                most = most.max(n);
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    let o = runner.join().expect("the run thread panicked");
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert!(samples >= 5, "only {samples} samples during the run");
    assert_eq!(most, 1, "a run started threads of its own");
}

/// Live processes whose environment holds `marker`.
fn marked(marker: &str) -> Vec<i32> {
    let needle = marker.as_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            env.windows(needle.len()).any(|w| w == needle)
        })
        .filter(|&pid| proc_state(pid).is_some_and(|(s, _)| s != 'Z'))
        .collect()
}

#[test]
fn kill_all_while_runs_are_starting_leaves_no_process() {
    // kill_all at different moments after 12 runs were asked for: some not
    // started yet, some between spawn and registration, some running.
    for round in 0..8u64 {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().display().to_string();
        let env = vec![("PICOMON_TEST_MARK".to_string(), marker.clone())];
        let groups = Arc::new(RunningGroups::new());
        let runs: Vec<_> = (0..12)
            .map(|_| {
                let groups = Arc::clone(&groups);
                let env = env.clone();
                thread::spawn(move || {
                    let args = shell_args("trap '' TERM; sleep 100 & wait");
                    let cmd = PluginCommand {
                        program: shell_program(),
                        args: &args,
                        env: &env,
                        cwd: None,
                        timeout: Duration::from_secs(120),
                        max_output: DEFAULT_MAX_OUTPUT,
                    };
                    run(&cmd, Some(&groups))
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(round * 3));
        groups.kill_all(Duration::from_millis(200));
        for r in runs {
            let o = r.join().expect("run thread");
            assert_eq!(o.status, Status::Unknown, "round {round}: {o:?}");
            assert!(
                o.summary == NOT_STARTED || o.summary.starts_with("stopped at shutdown"),
                "round {round}: {o:?}"
            );
        }
        let gone = wait_until_gone(|| marked(&marker).is_empty());
        assert!(gone, "round {round}: left {:?}", marked(&marker));
    }
    assert_no_zombie_children();
}

fn wait_until_gone(f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + GONE_WITHIN;
    while !f() {
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}
