//! Runs picomon as a child, passes signals on, watches its heartbeat, mails
//! when it stops or hangs, and with `--restart` starts it again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

use crate::backoff::Backoff;
use crate::cli::Cli;
use crate::report::{signal_name, Ending, Next, Report};
use crate::tail::Tail;

/// How often the child and its heartbeat are looked at.
const POLL: Duration = Duration::from_millis(200);

pub fn main(cli: Cli) -> anyhow::Result<i32> {
    let default = if cli.debug { "debug" } else { "info" };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_target(false)
        .try_init();
    let mut cfg = picomon::config::load(&cli.config).map_err(anyhow::Error::new)?;
    if let Some(dir) = cli.state_dir_override() {
        cfg.state_dir = dir;
    }
    // Drop privileges first, so the pid file can be removed at exit.
    picomon::daemon::prepare_user(&cfg.state_dir, cli.user.as_deref())?;
    let _pid = match &cli.pid_file {
        Some(p) => Some(picomon::daemon::PidFile::create(p)?),
        None => None,
    };
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("cannot create state directory {}", cfg.state_dir.display()))?;
    let signals = forward_signals()?;
    let w = Watchdog {
        picomon: find_picomon(),
        hang_after: cfg.base_tick * 3 + cfg.max_timeout(),
        heartbeat: cfg.state_dir.join("heartbeat"),
        host: picomon::host::this_host(),
        cfg,
        cli,
        signals,
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

fn forward_signals() -> anyhow::Result<Receiver<i32>> {
    let (tx, rx) = unbounded();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    std::thread::spawn(move || {
        for s in signals.forever() {
            if tx.send(s).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// How one watch of a child ended.
enum Watch {
    /// We passed on SIGTERM/SIGINT and the child exited.
    Stopped,
    /// The child exited on its own.
    Exited(ExitStatus),
    /// No heartbeat for this long (the child still runs).
    Hung(Duration),
    /// A stop signal came while no child runs.
    StopRequested,
}

struct Watchdog {
    cli: Cli,
    cfg: picomon::config::Config,
    picomon: PathBuf,
    hang_after: Duration,
    heartbeat: PathBuf,
    host: String,
    signals: Receiver<i32>,
    tail: Tail,
}

impl Watchdog {
    fn run(&self) -> anyhow::Result<i32> {
        let mut backoff = Backoff::default();
        let mut restarts = 0u32;
        loop {
            let started = Instant::now();
            let mut child = self.spawn()?;
            let mut hang_mailed = false;
            let status = loop {
                match self.watch(&mut child, started, &mut hang_mailed) {
                    Watch::Stopped | Watch::StopRequested => return Ok(0),
                    Watch::Exited(status) => break Ending::from_status(status),
                    Watch::Hung(silent) if self.cli.restart => {
                        log::error!(
                            "picomon hangs (no heartbeat for {} s): killing it",
                            silent.as_secs()
                        );
                        let _ = child.kill();
                        let _ = child.wait();
                        break Ending::Hung(silent);
                    }
                    Watch::Hung(silent) => {
                        log::error!("picomon hangs (no heartbeat for {} s)", silent.as_secs());
                        self.mail(Ending::Hung(silent), started.elapsed(), Next::Nothing);
                        hang_mailed = true;
                    }
                }
            };
            // Let the stderr reader take the child's last words.
            std::thread::sleep(Duration::from_millis(100));
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

    fn spawn(&self) -> anyhow::Result<Child> {
        let mut child = Command::new(&self.picomon)
            .args(self.cli.child_args())
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.picomon.display()))?;
        self.tail.clear();
        if let Some(err) = child.stderr.take() {
            self.tail.pass_through(err);
        }
        log::info!("started {} (pid {})", self.picomon.display(), child.id());
        Ok(child)
    }

    /// Watches the child until it exits, hangs or we are told to stop.
    fn watch(&self, child: &mut Child, started: Instant, hang_mailed: &mut bool) -> Watch {
        let mut stopping = false;
        loop {
            match self.signals.recv_timeout(POLL) {
                Ok(sig) => {
                    log::debug!("passing {} on to picomon", signal_name(sig));
                    // SAFETY: kill(2) on our own child's pid.
                    unsafe { libc::kill(child.id() as i32, sig) };
                    stopping |= sig == SIGTERM || sig == SIGINT;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Watch::StopRequested,
            }
            match child.try_wait() {
                Ok(Some(_)) if stopping => return Watch::Stopped,
                Ok(Some(status)) => return Watch::Exited(status),
                Ok(None) => {}
                Err(err) => log::warn!("cannot wait for picomon: {err}"),
            }
            let silent = heartbeat_age(&self.heartbeat, started);
            if silent <= self.hang_after {
                // Beating again: a later hang is a new one.
                *hang_mailed = false;
            } else if !stopping && !*hang_mailed {
                return Watch::Hung(silent);
            }
        }
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
        if let Err(err) = picomon::mail::queue_mail(&self.cfg, dir, &subject, &report.body()) {
            log::error!("cannot queue the watchdog mail: {err:#}");
        }
        match picomon::mail::deliver_outbox(&self.cfg, dir, Duration::from_secs(30)) {
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
