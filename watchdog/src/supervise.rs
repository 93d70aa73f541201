//! Runs picomon as a child, passes signals on, watches its heartbeat, mails
//! when it stops or hangs, and with `--restart` starts it again.
//!
//! ```text
//! signal thread   SIGTERM/INT/HUP/USR1 -> the loop's channel, then to the
//!                 child through its pidfd (never to a reaped, reused pid)
//! main thread     spawn (parent-death signal SIGTERM)
//!                 wait_timeout on the child, heartbeat between waits
//!                   exited            -> stderr reader joined, mail, restart
//!                   hung              -> SIGTERM (+SIGCONT), SIGKILL after 10 s
//!                   stop passed on    -> exit 0 once it stopped (SIGKILL after 15 s)
//! ```
//!
//! The parent-death signal ties the child to the watchdog: killed even by
//! SIGKILL, the watchdog takes its picomon with it (which stops cleanly and
//! kills its plugins), so a restarted watchdog never meets an orphan daemon.
//! The kernel sends it when the thread that forked the child ends: the
//! child is always spawned from the main thread, which lives as long as the
//! watchdog.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use wait_timeout::ChildExt;

use crate::backoff::Backoff;
use crate::cli::Cli;
use crate::report::{signal_name, Ending, Next, Report};
use crate::tail::{Reader, Tail};

/// How often the heartbeat is looked at while the child runs.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// After a passed-on SIGTERM/SIGINT: SIGKILL when picomon has not stopped
/// by then (its own shutdown is bounded well below).
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A hung picomon gets SIGTERM first, so its own shutdown kills its
/// plugins; SIGKILL after this.
const HANG_GRACE: Duration = Duration::from_secs(10);

/// How long the child's last stderr lines may take to arrive after it
/// exited (only a process that inherited its stderr could hold them).
const STDERR_DRAIN: Duration = Duration::from_secs(2);

pub fn main(cli: Cli) -> anyhow::Result<i32> {
    picomon::daemon::private_umask();
    let default = if cli.debug { "debug" } else { "info" };
    // Its own lines tagged, so they read apart from picomon's, which pass
    // through its stderr (see picomon::daemon::logging).
    picomon::daemon::logging::init(default, Some(picomon::daemon::logging::WATCHDOG_TAG));
    let mut cfg = picomon::config::load(&cli.config).map_err(anyhow::Error::new)?;
    if let Some(dir) = cli.state_dir_override() {
        cfg.state_dir = dir;
    }
    // Drop privileges first, so the pid file can be removed at exit.
    picomon::daemon::prepare_user(&cfg.state_dir, cli.user.as_deref(), &cfg.secret_files())?;
    let _pid = match &cli.pid_file {
        Some(p) => Some(picomon::daemon::PidFile::create(p)?),
        None => None,
    };
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("cannot create state directory {}", cfg.state_dir.display()))?;
    let current = Arc::new(Mutex::new(None));
    let signals = forward_signals(Arc::clone(&current))?;
    let secrets = picomon::secret::handover()
        .context("cannot keep the secret files for picomon in memory")?;
    let w = Watchdog {
        picomon: find_picomon(),
        secrets,
        hang_after: cfg.base_tick * 3 + cfg.max_timeout(),
        heartbeat: cfg.state_dir.join("heartbeat"),
        host: picomon::host::this_host(),
        cfg,
        cli,
        signals,
        current,
        tail: Tail::default(),
    };
    w.run()
}

/// The picomon binary next to this one, else `picomon` from PATH.
fn find_picomon() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("picomon")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("picomon"))
}

/// Passes signals on to the running child, and tells the main loop.
fn forward_signals(current: Arc<Mutex<Option<ChildRef>>>) -> anyhow::Result<Receiver<i32>> {
    let (tx, rx) = unbounded();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for s in signals.forever() {
                // The loop learns of a stop before the child can exit of it.
                if tx.send(s).is_err() {
                    break;
                }
                if let Some(child) = current.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    log::debug!("passing {} on to picomon", signal_name(s));
                    child.signal(s);
                }
            }
        })?;
    Ok(rx)
}

/// The running child, as the signal thread reaches it.
#[derive(Debug)]
enum ChildRef {
    /// A pidfd names that one process: once it is reaped, a signal through
    /// it fails instead of reaching whatever reused the pid.
    Pidfd(OwnedFd),
    /// Kernels before 5.3: the pid.
    Pid(i32),
}

impl ChildRef {
    fn new(child: &Child) -> ChildRef {
        let pid = child.id() as i32;
        // SAFETY: a plain system call with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return ChildRef::Pid(pid);
        }
        // SAFETY: the kernel just gave us this descriptor; nothing else
        // owns it.
        ChildRef::Pidfd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    fn signal(&self, sig: i32) {
        match self {
            ChildRef::Pidfd(fd) => {
                use std::os::fd::AsRawFd;
                // SAFETY: pidfd_send_signal with our own descriptor, no
                // siginfo (NULL) and no flags.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd.as_raw_fd(),
                        sig,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
            }
            // SAFETY: kill(2) on our own child's pid.
            ChildRef::Pid(pid) => unsafe {
                libc::kill(*pid, sig);
            },
        }
    }
}

/// In the child, between fork and exec: SIGTERM when the watchdog dies,
/// and no start at all if it already died (we would have missed the
/// signal: the parent is then no longer `watchdog`). Only async-signal-safe
/// system calls.
fn die_with(watchdog: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl and getppid with integer arguments only.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != watchdog {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// In the child, between fork and exec: keeps `fd` open across the exec.
fn inherit(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process holds, integer arguments.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How one watch of a child ended.
enum Watch {
    /// We passed on SIGTERM/SIGINT and the child exited.
    Stopped,
    /// The child exited on its own.
    Exited(ExitStatus),
    /// No heartbeat for this long (the child still runs).
    Hung(Duration),
}

struct Watchdog {
    cli: Cli,
    cfg: picomon::config::Config,
    picomon: PathBuf,
    /// The secret files read as root before the drop, handed to each
    /// child (which cannot read them as the user).
    secrets: Option<std::fs::File>,
    hang_after: Duration,
    heartbeat: PathBuf,
    host: String,
    signals: Receiver<i32>,
    /// The running child, for the signal thread.
    current: Arc<Mutex<Option<ChildRef>>>,
    tail: Tail,
}

impl Watchdog {
    fn run(&self) -> anyhow::Result<i32> {
        let mut backoff = Backoff::default();
        let mut restarts = 0u32;
        loop {
            let started = Instant::now();
            let (mut child, stderr) = self.spawn()?;
            let mut hang_mailed = false;
            let status = loop {
                match self.watch(&mut child, started, &mut hang_mailed) {
                    Watch::Stopped => {
                        stderr.finish(STDERR_DRAIN);
                        return Ok(0);
                    }
                    Watch::Exited(status) => break Ending::from_status(status),
                    Watch::Hung(silent) if self.cli.restart => {
                        log::error!(
                            "picomon hangs (no heartbeat for {} s): stopping it (SIGTERM, SIGKILL after {} s)",
                            silent.as_secs(),
                            HANG_GRACE.as_secs()
                        );
                        self.stop_hung(&mut child);
                        break Ending::Hung(silent);
                    }
                    Watch::Hung(silent) => {
                        log::error!("picomon hangs (no heartbeat for {} s)", silent.as_secs());
                        self.mail(Ending::Hung(silent), started.elapsed(), Next::Nothing);
                        hang_mailed = true;
                    }
                }
            };
            // The child's last words are in the tail once its stderr ends.
            stderr.finish(STDERR_DRAIN);
            let uptime = started.elapsed();
            if !self.cli.restart {
                log::error!("picomon {}", status.describe());
                self.mail(status, uptime, Next::Nothing);
                return Ok(1);
            }
            restarts += 1;
            let wait = backoff.after_run(uptime);
            log::error!(
                "picomon {}; restart {restarts} in {} s",
                status.describe(),
                wait.as_secs()
            );
            self.mail(status, uptime, Next::Restart { n: restarts, wait });
            if self.sleep_unless_stopped(wait) {
                return Ok(0);
            }
        }
    }

    fn spawn(&self) -> anyhow::Result<(Child, Reader)> {
        let watchdog = nix::unistd::getpid().as_raw();
        let mut command = Command::new(&self.picomon);
        command
            .args(self.cli.child_args())
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let secrets = self.secrets.as_ref().map(|f| f.as_raw_fd());
        if let Some(fd) = secrets {
            command.env(picomon::secret::HANDOVER_ENV, fd.to_string());
        }
        // SAFETY: die_with and inherit only make async-signal-safe system
        // calls, as a pre_exec closure must.
        unsafe {
            command.pre_exec(move || {
                die_with(watchdog)?;
                secrets.map_or(Ok(()), inherit)
            })
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.picomon.display()))?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(ChildRef::new(&child));
        self.tail.clear();
        let err = child.stderr.take().context("the child's stderr")?;
        let reader = self.tail.pass_through(err);
        log::info!("started {} (pid {})", self.picomon.display(), child.id());
        Ok((child, reader))
    }

    /// Watches the child until it exits, hangs or we are told to stop.
    fn watch(&self, child: &mut Child, started: Instant, hang_mailed: &mut bool) -> Watch {
        let mut kill_at: Option<Instant> = None;
        loop {
            match child.wait_timeout(CHECK_EVERY) {
                Ok(Some(status)) => {
                    *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    return if kill_at.is_some() || self.stop_requested() {
                        Watch::Stopped
                    } else {
                        Watch::Exited(status)
                    };
                }
                Ok(None) => {}
                Err(err) => {
                    log::warn!("cannot wait for picomon: {err}");
                    std::thread::sleep(CHECK_EVERY);
                }
            }
            let now = Instant::now();
            if kill_at.is_none() && self.stop_requested() {
                // Passed on by the signal thread already, unless it came
                // before the child was listed; a second SIGTERM is harmless.
                // SAFETY: kill(2) on our own child, not reaped yet.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                kill_at = Some(now + STOP_GRACE);
            }
            if let Some(at) = kill_at {
                if now >= at {
                    log::error!(
                        "picomon did not stop within {} s: killing it",
                        STOP_GRACE.as_secs()
                    );
                    let _ = child.kill();
                }
                continue;
            }
            let silent = heartbeat_age(&self.heartbeat, started);
            if silent <= self.hang_after {
                // Beating again: a later hang is a new one.
                *hang_mailed = false;
            } else if !*hang_mailed {
                return Watch::Hung(silent);
            }
        }
    }

    /// Whether SIGTERM or SIGINT came (the signal thread passed it on).
    fn stop_requested(&self) -> bool {
        self.signals.try_iter().any(|s| s == SIGTERM || s == SIGINT)
    }

    /// A hung child: SIGTERM (and SIGCONT, should it be stopped), so its
    /// own shutdown kills its plugins and saves its state; SIGKILL when it
    /// has not exited after [`HANG_GRACE`].
    fn stop_hung(&self, child: &mut Child) {
        let pid = child.id() as i32;
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
            libc::kill(pid, libc::SIGCONT);
        }
        if !matches!(child.wait_timeout(HANG_GRACE), Ok(Some(_))) {
            log::error!(
                "picomon did not stop within {} s: killing it",
                HANG_GRACE.as_secs()
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Waits `d`; true when a stop signal came meanwhile.
    fn sleep_unless_stopped(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.signals.recv_timeout(left) {
                Ok(SIGTERM) | Ok(SIGINT) => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
    }

    /// Queues the mail in the outbox and delivers it with whatever the child
    /// left there.
    fn mail(&self, ending: Ending, uptime: Duration, next: Next) {
        let tail = self.tail.lines();
        let config = self.cli.config.display().to_string();
        let report = Report {
            host: &self.host,
            config: &config,
            ending,
            uptime,
            next,
            tail: &tail,
        };
        let subject = self.cfg.emails.watchdog_subject.clone();
        let dir = &self.cfg.state_dir;
        if let Err(err) =
            picomon::notify::mail::queue_mail(&self.cfg, dir, &subject, &report.body())
        {
            log::error!("cannot queue the watchdog mail: {err:#}");
        }
        match picomon::notify::mail::deliver_outbox(&self.cfg, dir, Duration::from_secs(30)) {
            Ok(n) => log::info!("delivered {n} mail(s) from the outbox"),
            Err(err) => log::error!("outbox delivery failed: {err:#}"),
        }
    }
}

/// Time since the last heartbeat, or since the child started if it has not
/// written one since.
fn heartbeat_age(path: &Path, started: Instant) -> Duration {
    let since_start = started.elapsed();
    let since_beat = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    match since_beat {
        Some(b) => b.min(since_start),
        None => since_start,
    }
}
