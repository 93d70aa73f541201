//! `picomon -1`: every check once, concurrently, a line per check as it
//! completes, a summary line, the worst status as exit code.
//!
//! The runs are spread over `config.workers` threads that each take the next
//! check from a shared counter and print its line themselves: the same shape
//! as the benchmark's floor, so no thread is woken per result.
//!
//! SIGINT (Ctrl-C) or SIGTERM stops it like the daemon: the runs are killed
//! (their lines say so), what escaped them too, the summary is printed and
//! the exit code is 130 or 143.
//!
//! Into a pipe or a file the lines are plain. On a terminal the status
//! words are coloured (not with `NO_COLOR`) and a progress line (runs done
//! of total, failures so far, the slowest run still going) stays below the
//! results until the end, when it is erased. With `--json` nothing is
//! printed until the end, then one JSON document: every result, the counts.
//!
//! With `--outputs` every result also goes through `config.outputs`, as the
//! daemon sends them (pcrunner's use from cron): the outputs start first, so
//! what an earlier run left in a spool is delivered before the new results;
//! what cannot be delivered within [`SEND_FLUSH`] stays spooled for the next
//! run (or the daemon, or `--send`).
//!
//! `picomon run CHECK --nagios-json` ([`nagios_json`]) is one check of the
//! config, run here the same way, printed as a Nagios plugin prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{bounded, select, Receiver};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::startup::{StateLock, JOIN_WORKERS, STOP_GRACE};
use crate::alert::{Transition, TransitionKind};
use crate::cli::term::{cut, Style};
use crate::clock::now_unix_micros;
use crate::config::Config;
use crate::model::{CheckSpec, Outcome, Status};
use crate::notify::Notice;
use crate::passive::{Outputs, PassiveResult, SEND_FLUSH};
use crate::run::exec::{execute, RunEnv};
use crate::run::plugin::{Reaper, RunningGroups};

/// A result line: `CRITICAL  check_tcp on web1: connect to ... refused`.
pub fn result_line(status: Status, title: &str, summary: &str) -> String {
    format!("{:<10}{}: {}", status.as_str(), title, summary)
}

/// How the results are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// A line per result as its run ends (a pipe or a file).
    Lines,
    /// The lines, coloured, and a progress line below them.
    Terminal(Style),
    /// One JSON document at the end.
    Json,
}

impl View {
    /// What stdout is: `--json`, else a terminal or not.
    pub fn of_stdout(json: bool) -> View {
        if json {
            return View::Json;
        }
        let style = Style::stdout();
        match style.width {
            Some(_) => View::Terminal(style),
            None => View::Lines,
        }
    }
}

/// How often the progress line is redrawn while no run ends.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What the workers add up.
#[derive(Default)]
struct Tally {
    /// Runs per status, indexed by its code.
    counts: [usize; 4],
    notices: Vec<Notice>,
    /// With `--outputs`: what goes to them.
    results: Vec<PassiveResult>,
    /// With `--json`: every result, in the order the runs ended.
    json: Vec<serde_json::Value>,
}

impl Tally {
    fn add(&mut self, spec: &CheckSpec, out: Outcome, to_outputs: bool, json: bool) {
        self.counts[out.status.code() as usize] += 1;
        if json {
            self.json.push(serde_json::json!({
                "id": spec.id,
                "name": spec.name,
                "target": spec.dest,
                "status": out.status.as_str(),
                "output": out.full_text(),
                "duration": out.duration.as_secs_f64(),
            }));
        }
        // picomon's own health is not a service of the monitoring fed.
        if to_outputs && &*spec.id != super::selfcheck::ID {
            self.results
                .push(PassiveResult::for_check(spec, &out, now_unix_micros()));
        }
        if out.status != Status::Ok {
            let now = now_unix_micros();
            self.notices.push(Notice::new(
                spec.id.to_string(),
                spec.name.to_string(),
                spec.dest.to_string(),
                Transition {
                    kind: TransitionKind::Problem,
                    status: out.status,
                    previous: None,
                    outage_start: now,
                    failed_runs: 1,
                    at: now,
                },
                out.full_text(),
            ));
        }
    }

    /// The exit code: the highest status code seen (UNKNOWN is the worst).
    fn worst_code(&self) -> i32 {
        self.counts.iter().rposition(|&n| n > 0).unwrap_or(0) as i32
    }
}

/// What the workers share.
struct Shared {
    cfg: Config,
    /// The index of the next check to run.
    next: AtomicUsize,
    tally: Mutex<Tally>,
    /// The runs in progress, for SIGINT/SIGTERM.
    groups: RunningGroups,
    /// `--outputs`: keep each result for `config.outputs`.
    to_outputs: bool,
    view: View,
    /// On a terminal: the runs going on (check index: started), for the
    /// progress line's slowest run.
    running: Mutex<BTreeMap<usize, Instant>>,
}

impl Shared {
    /// One worker: takes the next check until none is left or a stop
    /// signal closed `groups`, printing each line as its run ends.
    fn work(&self) {
        let env = RunEnv {
            max_output: self.cfg.max_output,
            groups: Some(&self.groups),
            memory: None,
        };
        while !self.groups.is_closed() {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(spec) = self.cfg.checks.get(i) else {
                break;
            };
            let terminal = matches!(self.view, View::Terminal(_));
            if terminal {
                self.running_now().insert(i, Instant::now());
            }
            let out = execute(spec, env);
            if terminal {
                self.running_now().remove(&i);
            }
            let line = result_line(out.status, &spec.title(), &out.summary);
            let status = out.status;
            self.tally_now()
                .add(spec, out, self.to_outputs, self.view == View::Json);
            // A closed stdout (`picomon -1 | head`) must not stop the runs.
            match self.view {
                View::Lines => {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
                View::Terminal(style) => {
                    let word = format!("{:<10}", status.as_str());
                    let painted = style.paint(status.as_str(), &word) + &line[word.len()..];
                    let mut stdout = std::io::stdout().lock();
                    let _ = write!(stdout, "\r\x1b[K{painted}\n{}", self.progress(style));
                    let _ = stdout.flush();
                }
                View::Json => {}
            }
        }
    }

    fn tally_now(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running_now(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, Instant>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `picomon -1: 120/1000 done, 3 failing; slowest: disk on web1 (12s)`,
    /// cut to the terminal's width.
    fn progress(&self, style: Style) -> String {
        let [_, warning, critical, unknown] = self.tally_now().counts;
        let done: usize = self.tally_now().counts.iter().sum();
        let mut line = format!(
            "picomon -1: {done}/{} done, {} failing",
            self.cfg.checks.len(),
            warning + critical + unknown
        );
        let slowest = self
            .running_now()
            .iter()
            .min_by_key(|(_, started)| **started)
            .map(|(&i, started)| (i, started.elapsed()));
        if let Some((i, took)) = slowest {
            line.push_str(&format!(
                "; slowest: {} ({}s)",
                self.cfg.checks[i].title(),
                took.as_secs()
            ));
        }
        cut(&line, style.width.unwrap_or(80).saturating_sub(1))
    }
}

/// On a terminal: redraws the progress line every [`PROGRESS_EVERY`] until
/// `stop` closes, then erases it.
fn draw_progress(shared: Arc<Shared>, style: Style, stop: Receiver<()>) {
    loop {
        {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "\r\x1b[K{}", shared.progress(style));
            let _ = stdout.flush();
        }
        if !matches!(
            stop.recv_timeout(PROGRESS_EVERY),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        ) {
            break;
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "\r\x1b[K");
    let _ = stdout.flush();
}

pub fn run(cfg: Config, notify: bool, to_outputs: bool, view: View) -> anyhow::Result<i32> {
    // With --notify the mail goes through the state dir's outbox: one
    // picomon per state dir. Without, the state dir is not touched.
    let _lock = if notify {
        Some(StateLock::acquire(&cfg.state_dir)?)
    } else {
        None
    };
    // The spools are shared with the daemon and `--send` (each sender
    // takes its spool's delivery lock), so no state lock for them.
    let outputs = if to_outputs {
        if cfg.outputs.is_empty() {
            anyhow::bail!("-1 --outputs: no outputs configured: set config.outputs = [ ... ] in the config (see \"Feeding Nagios or Icinga\" in doc/integrations.md)");
        }
        super::ensure_state_dir(&cfg)?;
        Some(Outputs::start(&cfg.outputs, &cfg.state_dir)?)
    } else {
        None
    };
    let reaper = Reaper::start().context("cannot become a child subreaper")?;
    let stop = stop_signals()?;
    let total = cfg.checks.len();
    let workers = cfg.workers.clamp(1, total.max(1));
    let shared = Arc::new(Shared {
        cfg,
        next: AtomicUsize::new(0),
        tally: Mutex::new(Tally::default()),
        groups: RunningGroups::new(),
        to_outputs,
        view,
        running: Mutex::new(BTreeMap::new()),
    });
    let (stop_progress, progress_stopped) = bounded::<()>(0);
    let progress = match view {
        View::Terminal(style) => {
            let shared = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || draw_progress(shared, style, progress_stopped))
                    .context("cannot start the progress thread")?,
            )
        }
        _ => None,
    };
    // Each worker holds a sender; the channel disconnects when all are done.
    let (done_tx, done) = bounded::<()>(0);
    for _ in 0..workers {
        let shared = Arc::clone(&shared);
        let done_tx = done_tx.clone();
        std::thread::Builder::new()
            .name("check".into())
            .spawn(move || {
                shared.work();
                drop(done_tx);
            })
            .context("cannot start a worker thread")?;
    }
    drop(done_tx);
    let interrupted = select! {
        recv(done) -> _ => None,
        recv(stop) -> sig => sig.ok(),
    };
    if interrupted.is_some() {
        // Kill the runs; their workers print the lines of the runs killed.
        shared.groups.kill_all(STOP_GRACE);
        let _ = done.recv_timeout(JOIN_WORKERS);
    }
    drop(stop_progress);
    if let Some(progress) = progress {
        let _ = progress.join();
    }
    reaper.finish(STOP_GRACE);
    let tally = std::mem::take(&mut *shared.tally_now());
    let [ok, warning, critical, unknown] = tally.counts;
    let worst = tally.worst_code();
    if view == View::Json {
        let doc = serde_json::json!({
            "results": tally.json,
            "ok": ok,
            "warning": warning,
            "critical": critical,
            "unknown": unknown,
            "stopped_by": interrupted.map(signal_name),
        });
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            std::io::stdout().lock(),
            "{ok} ok, {warning} warning, {critical} critical, {unknown} unknown"
        );
    }
    if let Some(outputs) = &outputs {
        send(outputs, &tally.results, interrupted.is_none())?;
    }
    if let Some(sig) = interrupted {
        let ran: usize = tally.counts.iter().sum();
        eprintln!(
            "picomon: stopped by {}: {} of {total} checks not run{}",
            signal_name(sig),
            total.saturating_sub(ran),
            if notify { "; nothing mailed" } else { "" }
        );
        return Ok(128 + sig);
    }
    if notify && !tally.notices.is_empty() {
        super::notifiers::notify_once(&shared.cfg, tally.notices)?;
    }
    Ok(worst)
}

/// `-1 --outputs`: spools the results (an error when a spool cannot take
/// them: they would be lost) and, unless stopped by a signal, waits up to
/// [`SEND_FLUSH`] for delivery; what is left waits in the spools.
fn send(outputs: &Outputs, results: &[PassiveResult], wait: bool) -> anyhow::Result<()> {
    let errors = outputs.try_submit_all(results);
    outputs.sync()?;
    if let Some(first) = errors.first() {
        anyhow::bail!(
            "-1 --outputs: {} output(s) could not spool the results: {first}",
            errors.len()
        );
    }
    if wait && !outputs.flush(SEND_FLUSH) {
        for line in outputs.status_lines() {
            eprintln!("picomon: not delivered yet, kept in the spool for the next run: {line}");
        }
    }
    Ok(())
}

/// SIGINT and SIGTERM, as messages: `-1` stops its runs and reports what it
/// has instead of dying with its plugins still running.
fn stop_signals() -> anyhow::Result<Receiver<i32>> {
    let (tx, rx) = bounded(2);
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let _ = tx.try_send(sig);
            }
        })?;
    Ok(rx)
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// The check `what` names (see [`crate::model::identity`]).
fn find_check<'a>(cfg: &'a Config, what: &str) -> anyhow::Result<&'a CheckSpec> {
    let known: Vec<crate::model::identity::Known> = cfg
        .checks
        .iter()
        .map(crate::model::identity::Known::from)
        .collect();
    match crate::model::identity::find(&known, what) {
        Ok(i) => Ok(&cfg.checks[i]),
        Err(e) => Err(anyhow::anyhow!(
            e.message(what, "`picomon --check-config` lists names and identities")
        )),
    }
}

/// A Nagios plugin's output in accre-monitor's shape: the summary, ` | `,
/// the `json_lines` record on one line (base64 with `base64`), then the
/// long output. A `|` in the summary or long output becomes `/`, so
/// Nagios finds the record where it expects perfdata (the record keeps the
/// text as it was).
pub fn nagios_json_text(r: &PassiveResult, summary: &str, long: &str, base64: bool) -> String {
    let json = r.to_json();
    let record = match base64 {
        true => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(json)
        }
        false => json,
    };
    let mut text = format!("{} | {record}\n", summary.replace(['|', '\n', '\r'], "/"));
    if !long.is_empty() {
        text.push_str(&long.replace('|', "/"));
        if !long.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// `picomon run CHECK --nagios-json`: runs one check of the config here,
/// with no daemon (nothing of the state dir is touched), prints it as a
/// Nagios plugin does and returns its status as the exit code.
pub fn nagios_json(cfg: Config, what: &str, base64: bool) -> anyhow::Result<i32> {
    let spec = find_check(&cfg, what)?;
    let reaper = Reaper::start().context("cannot become a child subreaper")?;
    let groups = RunningGroups::new();
    let env = RunEnv {
        max_output: cfg.max_output,
        groups: Some(&groups),
        memory: None,
    };
    let out = execute(spec, env);
    reaper.finish(STOP_GRACE);
    let r = PassiveResult::for_check(spec, &out, now_unix_micros());
    let text = nagios_json_text(&r, &out.summary, &out.long_output, base64);
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(out.status.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nagios_json_keeps_the_record_after_the_only_pipe() {
        let r = PassiveResult {
            time: 1_700_000_000_000_000,
            host: "web1".into(),
            service: Some("q".into()),
            status: Status::Critical,
            output: "a | b\nlong | c".into(),
            perfdata: String::new(),
            duration: std::time::Duration::from_millis(5),
            data: None,
        };
        let text = nagios_json_text(&r, "a | b", "long | c", false);
        let (first, rest) = text.split_once('\n').expect("two lines");
        assert_eq!(rest, "long / c\n");
        let (summary, json) = first.split_once(" | ").expect("pipe");
        assert_eq!(summary, "a / b");
        assert_eq!(json, r.to_json());
        let b64 = nagios_json_text(&r, "a", "", true);
        use base64::Engine;
        let (_, enc) = b64.trim_end().split_once(" | ").expect("pipe");
        let dec = base64::engine::general_purpose::STANDARD
            .decode(enc)
            .expect("base64");
        assert_eq!(dec, r.to_json().into_bytes());
        assert!(b64.ends_with('\n') && !b64.trim_end().contains('\n'));
    }
}
