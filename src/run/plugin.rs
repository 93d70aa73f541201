//! Running a Nagios plugin.
//!
//! The picture of one run, all on the calling worker thread (a run creates
//! no thread, so N runs cost N processes and nothing more):
//!
//! ```text
//! posix_spawn (argv, own process group, stdin /dev/null, clean env, cwd)
//!   loop: poll(stdout, stderr, pidfd) until the next deadline
//!     readable pipe   -> read what is there (kept up to max_output, rest drained)
//!     deadline        -> SIGTERM the group; 1 s later SIGKILL the group
//!     child exited    -> SIGKILL what is left of the group; read the pipes
//!                        for at most DRAIN_AFTER_EXIT more (a grandchild that
//!                        escaped the group may hold them open forever)
//!   reap the child, turn exit status + output into an Outcome
//! ```
//!
//! The child's exit is noticed without reaping it (`waitid(WNOWAIT)`), so its
//! pid, which is also the group id, cannot be reused while we still signal
//! the group or while [`RunningGroups`] lists it.
//!
//! Every child is also listed process-wide from spawn to reap
//! (`children.rs`), so the daemon's [`Reaper`] can tell a run's own child,
//! whose status only the run takes, from a descendant that escaped the
//! group and was reparented to picomon, which it reaps and kills.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::model::{parse_plugin_output, Outcome, Status};

mod children;

pub use children::Reaper;

/// The whole `PATH` a plugin sees: plugins must not depend on the daemon's
/// environment, and a fixed path makes a check behave the same from rc.local,
/// systemd or a shell.
pub const PLUGIN_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// `config.max_output` when the config does not set it.
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;

/// The mark added where stdout or stderr was cut at `max_output`.
pub const TRUNCATED_MARK: &str = "(output truncated)";

/// Between SIGTERM and SIGKILL at the deadline.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How long the pipes are still read after the child exited. What the
/// child wrote is already in the pipe by then; this only waits for
/// processes of its group to die of our SIGKILL and close their ends.
/// Longer would let a grandchild that left the group delay the result.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(150);

/// Poll timeout used when the kernel has no `pidfd_open` (before 5.3) and
/// the child's exit cannot wake `poll`.
const FALLBACK_POLL: Duration = Duration::from_millis(10);

/// Reads per pipe and poll round, so that a flood on one pipe cannot keep
/// the loop from looking at the deadline.
const READS_PER_ROUND: usize = 32;

/// The process groups of runs in progress, so shutdown can kill them.
///
/// A run adds its child's group while it runs and removes it before it
/// reaps the child (the group id is the child's pid, which stays reserved
/// until then), so [`RunningGroups::kill_all`] never signals a recycled id.
#[derive(Debug, Default)]
pub struct RunningGroups {
    inner: Mutex<Groups>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Groups {
    pgids: HashSet<i32>,
    /// Set by `kill_all`: from then on a new run is killed as it starts.
    closed: bool,
}

impl RunningGroups {
    pub fn new() -> RunningGroups {
        RunningGroups::default()
    }

    fn lock(&self) -> MutexGuard<'_, Groups> {
        // The data stays consistent even if a holder panicked.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a group; false once `kill_all` was called.
    fn register(&self, pgid: i32) -> bool {
        let mut g = self.lock();
        if g.closed {
            return false;
        }
        g.pgids.insert(pgid);
        true
    }

    fn deregister(&self, pgid: i32) {
        self.lock().pgids.remove(&pgid);
        self.changed.notify_all();
    }

    /// How many runs are in progress.
    pub fn len(&self) -> usize {
        self.lock().pgids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once [`kill_all`](Self::kill_all) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// SIGTERM every running group, SIGKILL what is left after `grace`.
    ///
    /// Meant for shutdown: it also closes the registry, so a run that has
    /// not started does not start, and one that was starting meanwhile is
    /// killed by its own run as soon as it has a child (its registration is
    /// refused). Returns when every group is gone or has been sent SIGKILL;
    /// the runs themselves reap their children and return an UNKNOWN
    /// outcome.
    pub fn kill_all(&self, grace: Duration) {
        let deadline = later(Instant::now(), grace);
        let mut g = self.lock();
        g.closed = true;
        for &pgid in &g.pgids {
            signal_group(pgid, Signal::SIGTERM);
        }
        while !g.pgids.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = match self.changed.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        for &pgid in &g.pgids {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// One run of a program.
#[derive(Clone, Debug)]
pub struct PluginCommand<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    pub timeout: Duration,
    pub max_output: usize,
}

/// The program `shell("...")` runs; with [`shell_args`] it makes the
/// `program`/`args` of a [`PluginCommand`] for `CheckKind::Shell`, so a
/// shell check goes through the same [`run`] as any plugin.
pub fn shell_program() -> &'static Path {
    Path::new("/bin/sh")
}

/// The arguments for [`shell_program`]: `-c COMMAND`.
pub fn shell_args(command: &str) -> Vec<String> {
    vec!["-c".to_string(), command.to_string()]
}

/// Runs the command to completion or timeout; never fails, never leaves a
/// process behind.
///
/// stderr is kept beside stdout: only stdout is parsed (summary, long
/// output, perfdata); stderr follows as further long-output lines. When
/// stdout is empty, the first line of stderr becomes the summary, so a
/// plugin that only complains on stderr still says why.
///
/// `groups`, when given, lists the run while it is in progress so
/// [`RunningGroups::kill_all`] can stop it.
pub fn run(cmd: &PluginCommand<'_>, groups: Option<&RunningGroups>) -> Outcome {
    run_watching(cmd, None, groups, ExitWatch::Pidfd)
}

/// [`run`] with `input` as the child's stdin (a notification channel's
/// `command()` reads its transition there). The bytes are handed over in
/// an anonymous memory file, so a child that never reads them cannot
/// block the run.
pub fn run_with_input(
    cmd: &PluginCommand<'_>,
    input: &[u8],
    groups: Option<&RunningGroups>,
) -> Outcome {
    run_watching(cmd, Some(input), groups, ExitWatch::Pidfd)
}

/// An anonymous memory file holding `input`, read from its start.
fn memory_file(input: &[u8]) -> io::Result<File> {
    use std::io::{Seek, SeekFrom, Write};
    // SAFETY: the name is a valid NUL-terminated string; on success the
    // returned descriptor is new and owned by nobody else.
    let fd = unsafe { libc::memfd_create(c"picomon-input".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created above and is owned here alone.
    let mut f = unsafe { File::from_raw_fd(fd) };
    f.write_all(input)?;
    f.seek(SeekFrom::Start(0))?;
    Ok(f)
}

/// How the end of the child wakes the poll loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExitWatch {
    /// A pidfd in the poll set, where the kernel has one (Linux >= 5.3).
    Pidfd,
    /// Short poll timeouts only; what kernels without pidfd_open get. Kept
    /// selectable so the tests can exercise it on any kernel.
    #[cfg_attr(not(test), allow(dead_code))]
    Timeouts,
}

fn run_watching(
    cmd: &PluginCommand<'_>,
    input: Option<&[u8]>,
    groups: Option<&RunningGroups>,
    watch: ExitWatch,
) -> Outcome {
    let start = Instant::now();
    if groups.is_some_and(RunningGroups::is_closed) {
        return Outcome::unknown(NOT_STARTED);
    }
    let outcome = match spawn(cmd, input) {
        Ok(Some(child)) => supervise(child, cmd, groups, start, watch),
        Ok(None) => Outcome::unknown(NOT_STARTED),
        Err(message) => Outcome::unknown(message),
    };
    outcome.with_duration(start.elapsed())
}

/// `start + d`, saturating at a far future instead of panicking.
fn later(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(start)
}

/// The result of a run that picomon's shutdown kept from starting.
pub const NOT_STARTED: &str = "not started: picomon is stopping";

/// Starts the child (std's posix_spawn path: no `pre_exec`), or says why
/// not; `None` when picomon is stopping.
fn spawn(cmd: &PluginCommand<'_>, input: Option<&[u8]>) -> Result<Option<Child>, String> {
    let cwd = cmd.cwd.unwrap_or(Path::new("/"));
    let stdin = match input {
        None => Stdio::null(),
        Some(bytes) => Stdio::from(memory_file(bytes).map_err(|e| {
            format!(
                "cannot run {}: cannot hold its input: {}",
                cmd.program.display(),
                describe(&e)
            )
        })?),
    };
    let mut command = Command::new(cmd.program);
    command
        .args(cmd.args)
        .env_clear()
        .env("PATH", PLUGIN_PATH)
        .env("LC_ALL", "C")
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    children::spawn(&mut command).map_err(|e| {
        // A bad `cwd` fails the spawn with the same ENOENT as a missing
        // program; look only now, so a good run pays nothing for it.
        match std::fs::read_dir(cwd) {
            Err(cwd_err) => format!(
                "cannot run {}: working directory {}: {} (fix the check's `cwd`)",
                cmd.program.display(),
                cwd.display(),
                describe(&cwd_err)
            ),
            Ok(_) => format!("cannot run {}: {}", cmd.program.display(), describe(&e)),
        }
    })
}

/// The system's words for an error, without Rust's "(os error N)".
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// Where the run is on its way to the deadline.
enum Phase {
    Running,
    /// SIGTERM sent; SIGKILL due at the instant.
    Terminated(Instant),
    Killed,
}

/// Watches a started child to its end; see the module picture.
fn supervise(
    mut child: Child,
    cmd: &PluginCommand<'_>,
    groups: Option<&RunningGroups>,
    start: Instant,
    watch: ExitWatch,
) -> Outcome {
    // A pid always fits: the kernel's pid_max is at most 2^22.
    let pid = child.id() as i32;
    let mut cleanup = CleanUpOnPanic {
        pid,
        groups,
        armed: true,
    };
    let mut stopped_at_shutdown = false;
    if let Some(g) = groups {
        if !g.register(pid) {
            signal_group(pid, Signal::SIGKILL);
            stopped_at_shutdown = true;
        }
    }

    let mut pipes = [
        Capture::new(child.stdout.take().map(into_file), cmd.max_output),
        Capture::new(child.stderr.take().map(into_file), cmd.max_output),
    ];
    let pidfd = match watch {
        ExitWatch::Pidfd => pidfd_open(pid),
        ExitWatch::Timeouts => None,
    };
    let deadline = later(start, cmd.timeout);
    let mut phase = Phase::Running;
    let mut timed_out = false;
    let mut exited_at: Option<Instant> = None;

    loop {
        let now = Instant::now();
        if exited_at.is_none() && has_exited(pid) {
            exited_at = Some(now);
            // Whatever the child left in its group dies with it.
            signal_group(pid, Signal::SIGKILL);
        }
        if exited_at.is_none() {
            match phase {
                Phase::Running if now >= deadline => {
                    timed_out = true;
                    signal_group(pid, Signal::SIGTERM);
                    phase = Phase::Terminated(now + KILL_GRACE);
                }
                Phase::Terminated(kill_at) if now >= kill_at => {
                    signal_group(pid, Signal::SIGKILL);
                    phase = Phase::Killed;
                }
                _ => {}
            }
        }
        let pipes_open = pipes.iter().any(Capture::is_open);
        let wake = match (exited_at, &phase) {
            (Some(at), _) => {
                if !pipes_open || now >= at + DRAIN_AFTER_EXIT {
                    break;
                }
                at + DRAIN_AFTER_EXIT
            }
            (None, Phase::Running) => deadline,
            (None, Phase::Terminated(kill_at)) => *kill_at,
            // SIGKILL sent: only the exit is awaited.
            (None, Phase::Killed) => now + Duration::from_secs(1),
        };
        let mut wait = wake.saturating_duration_since(now);
        if exited_at.is_none() && pidfd.is_none() {
            wait = wait.min(FALLBACK_POLL);
        }
        let child_fd = if exited_at.is_none() {
            pidfd.as_ref().map(AsRawFd::as_raw_fd)
        } else {
            None
        };
        wait_for_events(&pipes, child_fd, wait);
        for pipe in &mut pipes {
            pipe.read_available();
        }
    }

    if let Some(g) = groups {
        g.deregister(pid);
        if g.is_closed() {
            stopped_at_shutdown = true;
        }
    }
    let [stdout, stderr] = pipes;
    let status = child.wait();
    children::reaped(pid);
    cleanup.armed = false;
    let reason = match status {
        Ok(status) => end_reason(status, timed_out, stopped_at_shutdown, cmd.timeout),
        Err(e) => (
            Status::Unknown,
            format!(
                "exit status of {} lost: {} (is SIGCHLD ignored?)",
                cmd.program.display(),
                describe(&e)
            ),
        ),
    };
    build_outcome(reason, &stdout, &stderr)
}

/// Should a bug unwind through [`supervise`], its child is still killed,
/// reaped and unlisted: a panic costs one UNKNOWN result, never a process
/// left behind or a group [`RunningGroups::kill_all`] waits for.
struct CleanUpOnPanic<'a> {
    pid: i32,
    groups: Option<&'a RunningGroups>,
    /// Cleared once the child is reaped: its pid may then be another's.
    armed: bool,
}

impl Drop for CleanUpOnPanic<'_> {
    fn drop(&mut self) {
        if !self.armed || !std::thread::panicking() {
            return;
        }
        signal_group(self.pid, Signal::SIGKILL);
        if let Some(g) = self.groups {
            g.deregister(self.pid);
        }
        let _ = nix::sys::wait::waitpid(Pid::from_raw(self.pid), None);
        children::reaped(self.pid);
    }
}

/// The status, and the message that goes before the plugin's own summary
/// (empty when the run ended with an exit code 0..3).
fn end_reason(
    status: ExitStatus,
    timed_out: bool,
    stopped_at_shutdown: bool,
    timeout: Duration,
) -> (Status, String) {
    if timed_out {
        return (
            Status::Unknown,
            format!("timed out after {} s", format_secs(timeout)),
        );
    }
    if let Some(code) = status.code() {
        return match Status::from_code(code) {
            Some(_) if stopped_at_shutdown && code != 0 => (
                Status::Unknown,
                format!("stopped at shutdown (exit code {code})"),
            ),
            Some(s) => (s, String::new()),
            None => (Status::Unknown, format!("exit code {code}")),
        };
    }
    let sig = status.signal().unwrap_or(0);
    let name = Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"));
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    let message = if stopped_at_shutdown {
        format!("stopped at shutdown (killed by {name})")
    } else {
        format!("killed by {name}{core}")
    };
    (Status::Unknown, message)
}

/// Seconds as a config writes them: `10`, `0.5`.
fn format_secs(d: Duration) -> String {
    format!("{}", d.as_millis() as f64 / 1000.0)
}

/// Puts status, reason, stdout and stderr together (see [`run`]).
fn build_outcome(reason: (Status, String), stdout: &Capture, stderr: &Capture) -> Outcome {
    let out = String::from_utf8_lossy(&stdout.kept);
    let (mut summary, long, perfdata) = parse_plugin_output(&out);
    let mut long_lines: Vec<String> = Vec::new();
    if !long.is_empty() {
        long_lines.push(long);
    }
    if stdout.truncated {
        long_lines.push(TRUNCATED_MARK.to_string());
    }
    let err = String::from_utf8_lossy(&stderr.kept);
    let err = err.trim_end();
    if !err.is_empty() {
        if summary.is_empty() && long_lines.is_empty() {
            let (first, rest) = err.split_once('\n').unwrap_or((err, ""));
            summary = first.trim().to_string();
            if !rest.is_empty() {
                long_lines.push(rest.to_string());
            }
        } else {
            long_lines.push(err.to_string());
        }
    }
    if stderr.truncated {
        long_lines.push(TRUNCATED_MARK.to_string());
    }

    let (status, prefix) = reason;
    let summary = match (prefix.is_empty(), summary.is_empty()) {
        (true, true) => "(no output)".to_string(),
        (true, false) => summary,
        (false, true) => prefix,
        (false, false) => format!("{prefix}: {summary}"),
    };
    Outcome {
        status,
        summary,
        long_output: long_lines.join("\n"),
        perfdata,
        duration: Duration::ZERO,
        memory: None,
        data: None,
    }
}

/// One of the child's output pipes, read without blocking.
struct Capture {
    src: Option<File>,
    kept: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Capture {
    fn new(src: Option<File>, limit: usize) -> Capture {
        if let Some(f) = &src {
            set_nonblocking(f.as_raw_fd());
        }
        Capture {
            src,
            kept: Vec::new(),
            limit,
            truncated: false,
        }
    }

    fn is_open(&self) -> bool {
        self.src.is_some()
    }

    /// Reads what the pipe holds now; closes it at end of file. Bytes past
    /// `limit` are read and thrown away, so the writer never blocks.
    fn read_available(&mut self) {
        let Some(src) = self.src.as_mut() else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..READS_PER_ROUND {
            match src.read(&mut buf) {
                Ok(0) => {
                    self.src = None;
                    return;
                }
                Ok(n) => {
                    let room = self.limit.saturating_sub(self.kept.len());
                    let keep = n.min(room);
                    self.kept.extend_from_slice(&buf[..keep]);
                    if keep < n {
                        self.truncated = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.src = None;
                    return;
                }
            }
        }
    }
}

/// Turns a child pipe into a plain file handle, one type for both pipes.
fn into_file(pipe: impl Into<OwnedFd>) -> File {
    File::from(pipe.into())
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own; no pointers involved.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// A descriptor that becomes readable when the process exits; `None` where
/// the kernel lacks `pidfd_open` (ENOSYS) or refuses it, and the caller
/// falls back to short poll timeouts.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: a plain system call with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor (close-on-exec), and
    // nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether the child has exited, without reaping it (its pid is the group
/// id we may still signal). An error (e.g. already reaped because SIGCHLD
/// is ignored) counts as exited, so the run cannot hang on it.
fn has_exited(pid: i32) -> bool {
    // SAFETY: siginfo_t is plain data; an all-zero value is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`, which lives across the call.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r < 0 {
        return Errno::last() != Errno::EINTR;
    }
    // SAFETY: waitid filled `info` (or left it zeroed: no child exited).
    unsafe { info.si_pid() != 0 }
}

/// Blocks until a pipe or the child has something to say, or `wait` passed.
fn wait_for_events(pipes: &[Capture; 2], child_fd: Option<RawFd>, wait: Duration) {
    let idle = libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    };
    let mut fds = [idle; 3];
    let mut n = 0;
    let sources = pipes
        .iter()
        .filter_map(|p| p.src.as_ref().map(AsRawFd::as_raw_fd))
        .chain(child_fd);
    for fd in sources {
        fds[n] = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        n += 1;
    }
    // Round up, so a sub-millisecond remainder does not spin.
    let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: `fds` holds `n` (at most 3) valid pollfd structs. An
    // interrupted poll just returns early; the caller loops.
    unsafe {
        libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, ms);
    }
}

/// Sends `sig` to a process group; a group that is already gone is fine.
fn signal_group(pgid: i32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pgid), sig);
}

/// Finds a bare plugin name in `dirs`, then PATH; a name with a `/` or one
/// not found is returned as given (the run then says it cannot run it).
pub fn resolve(name: &str, dirs: &[PathBuf]) -> PathBuf {
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.iter()
        .chain(path_dirs.iter())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Where `plugin("check_foo", ...)` looks by default: Debian's and the
/// monitoring-plugins' folders, then the classic Nagios one.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    [
        "/usr/lib/nagios/plugins",
        "/usr/lib/monitoring-plugins",
        "/usr/local/nagios/libexec",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(bytes: &[u8], truncated: bool) -> Capture {
        Capture {
            src: None,
            kept: bytes.to_vec(),
            limit: usize::MAX,
            truncated,
        }
    }

    #[test]
    fn seconds_are_formatted_like_the_spec() {
        assert_eq!(format_secs(Duration::from_secs(10)), "10");
        assert_eq!(format_secs(Duration::from_millis(500)), "0.5");
        assert_eq!(format_secs(Duration::from_millis(1250)), "1.25");
    }

    #[test]
    fn stderr_follows_stdout_in_long_output() {
        let o = build_outcome(
            (Status::Warning, String::new()),
            &capture(b"WARN - x|a=1\nmore\n", false),
            &capture(b"complaint\n", true),
        );
        assert_eq!(o.status, Status::Warning);
        assert_eq!(o.summary, "WARN - x");
        assert_eq!(o.long_output, "more\ncomplaint\n(output truncated)");
        assert_eq!(o.perfdata.len(), 1);
    }

    #[test]
    fn stderr_is_the_summary_when_stdout_is_empty() {
        let o = build_outcome(
            (Status::Unknown, "exit code 127".into()),
            &capture(b"", false),
            &capture(b"sh: 1: nope: not found\nsecond\n", false),
        );
        assert_eq!(o.summary, "exit code 127: sh: 1: nope: not found");
        assert_eq!(o.long_output, "second");
    }

    #[test]
    fn no_output_says_so() {
        let o = build_outcome(
            (Status::Ok, String::new()),
            &capture(b"", false),
            &capture(b"", false),
        );
        assert_eq!(o.summary, "(no output)");
        assert_eq!(o.status, Status::Ok);
    }

    fn sh(script: &str, timeout: Duration, watch: ExitWatch) -> Outcome {
        let args = shell_args(script);
        let cmd = PluginCommand {
            program: shell_program(),
            args: &args,
            env: &[],
            cwd: None,
            timeout,
            max_output: DEFAULT_MAX_OUTPUT,
        };
        run_watching(&cmd, None, None, watch)
    }

    #[test]
    fn without_pidfd_a_late_exit_is_still_seen() {
        let o = sh(
            "sleep 0.3; echo 'WARNING - late'; exit 1",
            Duration::from_secs(30),
            ExitWatch::Timeouts,
        );
        assert_eq!(o.status, Status::Warning, "{o:?}");
        assert_eq!(o.summary, "WARNING - late");
        assert!(o.duration >= Duration::from_millis(300), "{o:?}");
        assert!(o.duration < Duration::from_secs(5), "{o:?}");
    }

    #[test]
    fn without_pidfd_a_hung_run_times_out() {
        let timeout = Duration::from_millis(300);
        let o = sh("trap '' TERM; sleep 100", timeout, ExitWatch::Timeouts);
        assert_eq!(o.status, Status::Unknown, "{o:?}");
        assert_eq!(o.summary, "timed out after 0.3 s");
        assert!(o.duration >= timeout + KILL_GRACE, "{o:?}");
        assert!(o.duration <= timeout + Duration::from_millis(1500), "{o:?}");
    }

    #[test]
    fn huge_timeout_does_not_overflow() {
        let o = sh("echo 'OK - quick'", Duration::MAX, ExitWatch::Pidfd);
        assert_eq!(o.status, Status::Ok, "{o:?}");
        assert_eq!(o.summary, "OK - quick");
    }

    #[test]
    fn registry_refuses_runs_after_kill_all() {
        let groups = RunningGroups::new();
        assert!(groups.register(i32::MAX - 1));
        groups.deregister(i32::MAX - 1);
        groups.kill_all(Duration::from_millis(10));
        assert!(groups.is_closed());
        assert!(!groups.register(i32::MAX - 1));
        assert!(groups.is_empty());
    }
}
