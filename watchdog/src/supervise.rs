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

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use nix::unistd::{Uid, User};
use picomon_common::handoff::{
    inherit, inherit_raw, read_handoffs, secrets_file, Handoff, MailRequest, Pipe, FD_ENV,
    SECRETS_ENV,
};
use picomon_common::process::{lookup_user, switch_to, PidFile};
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

/// How long `picomon --watchdog-mail` may take (it gives its SMTP
/// delivery 30 s).
const MAIL_WITHIN: Duration = Duration::from_secs(60);

pub fn main(cli: Cli) -> anyhow::Result<i32> {
    picomon_common::process::private_umask();
    let default = if cli.debug { "debug" } else { "info" };
    // Its own lines tagged, so they read apart from picomon's, which pass
    // through its stderr (see picomon_common::logging).
    picomon_common::logging::init(default, Some(picomon_common::logging::WATCHDOG_TAG));
    let user = match cli.user.as_deref() {
        Some(name) if Uid::effective().is_root() => Some(lookup_user(name)?),
        Some(name) => {
            let me = User::from_uid(Uid::effective())?.map(|u| u.name);
            if me.as_deref() != Some(name) {
                anyhow::bail!(
                    "--user {name}: only root can switch users (running as {})",
                    me.unwrap_or_else(|| Uid::effective().to_string())
                );
            }
            None
        }
        None => None,
    };
    // Without a user to switch to, the pid file is written at once; with
    // one, once the state directory is known and the switch is done.
    let pid_file = match (&cli.pid_file, &user) {
        (Some(p), None) => Some(PidFile::create(p)?),
        _ => None,
    };
    let current = Arc::new(Mutex::new(None));
    let signals = forward_signals(Arc::clone(&current))?;
    let w = Watchdog {
        picomon: find_picomon(),
        handoff: Arc::default(),
        switch: RefCell::new(user.map(|u| Switch {
            user: u,
            pid_file: cli.pid_file.clone(),
        })),
        pid_file: RefCell::new(pid_file),
        cli,
        signals,
        current,
        tail: Tail::default(),
    };
    w.run()
}

/// Started as root with `--user`: what is done once the daemon handed over
/// its state directory (or died without doing so).
struct Switch {
    user: User,
    pid_file: Option<PathBuf>,
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
    picomon: PathBuf,
    /// The settings the running (or last) daemon handed over; `None` until
    /// one of them loaded its config.
    handoff: Arc<Mutex<Option<Handoff>>>,
    /// The switch to `--user` still to do.
    switch: RefCell<Option<Switch>>,
    pid_file: RefCell<Option<PidFile>>,
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
            let (mut child, stderr, handed) = self.spawn()?;
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
            // The child's last words are in the tail once its stderr ends,
            // its last settings in hand once its end of the pipe closed.
            stderr.finish(STDERR_DRAIN);
            let _ = handed.recv_timeout(STDERR_DRAIN);
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

    fn spawn(&self) -> anyhow::Result<(Child, Reader, Receiver<()>)> {
        let watchdog = nix::unistd::getpid().as_raw();
        let pipe = Pipe::new().context("cannot make the handoff pipe")?;
        let mut command = Command::new(&self.picomon);
        command
            .args(self.child_args())
            .env(FD_ENV, pipe.write.as_raw_fd().to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        // The secret files the last daemon read as root, for a child that
        // runs as the user from the start.
        let secrets = match self.current_handoff() {
            Some(h) => secrets_file(h.secrets.iter().map(|s| (s.path.as_path(), &s.content[..])))
                .context("cannot keep the secret files for picomon in memory")?,
            None => None,
        };
        if let Some(f) = &secrets {
            command.env(SECRETS_ENV, f.as_raw_fd().to_string());
        }
        let write = pipe.write;
        let secret_fd = secrets.as_ref().map(|f| f.as_raw_fd());
        // SAFETY: die_with and inherit only make async-signal-safe system
        // calls, as a pre_exec closure must.
        unsafe {
            command.pre_exec(move || {
                die_with(watchdog)?;
                if let Some(fd) = secret_fd {
                    inherit_raw(fd)?;
                }
                inherit(&write)
            })
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.picomon.display()))?;
        // Our copy of the write end goes with the command: the pipe ends
        // when the child does. The secrets' memory file closes too.
        drop(command);
        drop(secrets);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(ChildRef::new(&child));
        self.tail.clear();
        let err = child.stderr.take().context("the child's stderr")?;
        let reader = self.tail.pass_through(err);
        let slot = Arc::clone(&self.handoff);
        let (done, handed) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("handoff".into())
            .spawn(move || {
                read_handoffs(pipe.read, |h| {
                    log::debug!("picomon handed over its settings: {:?}", h.mail);
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
                });
                let _ = done.send(());
            })
            .context("cannot start the handoff reader")?;
        log::info!("started {} (pid {})", self.picomon.display(), child.id());
        Ok((child, reader, handed))
    }

    /// `-c CONFIG`, the extra arguments, and `--user` when the watchdog
    /// was given it: the child then reads its config (and password file)
    /// with the rights the watchdog was started with, and drops itself.
    fn child_args(&self) -> Vec<String> {
        let mut args = self.cli.child_args();
        if let Some(name) = &self.cli.user {
            if !args
                .iter()
                .any(|a| a == "--user" || a.starts_with("--user="))
            {
                args.extend(["--user".to_string(), name.clone()]);
            }
        }
        args
    }

    fn current_handoff(&self) -> Option<Handoff> {
        self.handoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Started as root with `--user`: once the daemon handed over its
    /// state directory, gives it to the user (the pid file goes there in
    /// the usual set-ups) and switches; a child that died before handing
    /// anything over leaves no directory to give, and the switch is done
    /// anyway. Then writes the pid file. Runs once.
    fn settle(&self, child_gone: bool) {
        let state_dir = self.current_handoff().map(|h| h.state_dir);
        if state_dir.is_none() && !child_gone {
            return;
        }
        let Some(switch) = self.switch.borrow_mut().take() else {
            return;
        };
        if let Some(dir) = &state_dir {
            let made = std::fs::create_dir_all(dir).and_then(|()| {
                nix::unistd::chown(dir, Some(switch.user.uid), Some(switch.user.gid))
                    .map_err(io::Error::from)
            });
            if let Err(err) = made {
                log::error!(
                    "cannot give {} to {}: {err}",
                    dir.display(),
                    switch.user.name
                );
            }
        }
        if let Err(err) = switch_to(&switch.user) {
            // Not fatal: we keep watching, with the rights we have.
            log::error!("{err:#}");
        }
        if let Some(p) = &switch.pid_file {
            match PidFile::create(p) {
                Ok(f) => *self.pid_file.borrow_mut() = Some(f),
                Err(err) => log::error!("{err:#}"),
            }
        }
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
                Ok(None) => self.settle(false),
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
            // Before its config loaded there is no heartbeat to expect:
            // the config's evaluation has a deadline of its own.
            let Some(h) = self.current_handoff() else {
                continue;
            };
            let silent = heartbeat_age(&h.state_dir.join("heartbeat"), started);
            if silent <= Duration::from_millis(h.hang_after_ms) {
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

    /// Mails `ending` with the settings the daemon handed over, through
    /// `picomon --watchdog-mail` (which queues it in the daemon's outbox and
    /// delivers that). Without settings (no config ever loaded) the report
    /// goes to the log at ERROR only.
    fn mail(&self, ending: Ending, uptime: Duration, next: Next) {
        self.settle(true);
        let tail = self.tail.lines();
        let config = self.cli.config.display().to_string();
        let handoff = self.current_handoff();
        let host = handoff.as_ref().map(|h| h.host.as_str()).unwrap_or("");
        let report = Report {
            host,
            config: &config,
            ending,
            uptime,
            next,
            tail: &tail,
        };
        let Some(h) = handoff.clone() else {
            log::error!(
                "picomon stopped before its config ever loaded, so there are no mail \
                 settings and no mail; the report:\n{}",
                report.body()
            );
            return;
        };
        let request = MailRequest {
            subject: h.mail.watchdog_subject.clone(),
            body: report.body(),
            config: h.config,
            state_dir: h.state_dir,
            mail: h.mail,
        };
        if let Err(err) = self.send(&request) {
            log::error!("the watchdog mail may not have gone out: {err:#}");
        }
    }

    /// Runs `picomon --watchdog-mail` with `request` on its stdin.
    fn send(&self, request: &MailRequest) -> anyhow::Result<()> {
        let mut child = Command::new(&self.picomon)
            .arg("--watchdog-mail")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {} --watchdog-mail", self.picomon.display()))?;
        let stdin = child.stdin.take().context("its stdin")?;
        serde_json::to_writer(stdin, request).context("cannot hand it the mail")?;
        match child.wait_timeout(MAIL_WITHIN)? {
            Some(s) if s.success() => Ok(()),
            Some(s) => anyhow::bail!(
                "picomon --watchdog-mail {}",
                Ending::from_status(s).describe()
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "picomon --watchdog-mail took longer than {} s: killed",
                    MAIL_WITHIN.as_secs()
                )
            }
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
