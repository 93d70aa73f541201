//! The tick loop. One thread owns all check state; workers only run checks
//! and send results back on a channel; signals arrive on the same channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use threadpool::ThreadPool;

use crate::alert::AlertState;
use crate::check::exec::{execute, RunEnv};
use crate::check::plugin::RunningGroups;
use crate::check::{CheckKind, CheckSpec, Outcome};
use crate::cli::Cli;
use crate::clock::{Clock, SystemClock, UnixMicros};
use crate::config::Config;
use crate::notify::{CheckView, Notice, Notifier};
use crate::output::{Outputs, PassiveResult};
use crate::schedule::{CheckSchedule, Decision, Ticker};

/// What wakes the loop.
enum Event {
    Result { id: String, outcome: Outcome },
    Signal(i32),
}

/// A check and everything the loop knows about it.
struct Tracked {
    /// Shared with the worker running it, so a run copies no check.
    spec: Arc<CheckSpec>,
    alert: AlertState,
    sched: CheckSchedule,
    last_output: String,
    last_run: Option<UnixMicros>,
    /// What the check's probe remembered after its last run.
    memory: Option<String>,
}

impl Tracked {
    fn new(spec: CheckSpec) -> Tracked {
        Tracked {
            spec: Arc::new(spec),
            alert: AlertState::default(),
            sched: CheckSchedule::default(),
            last_output: String::new(),
            last_run: None,
            memory: None,
        }
    }

    /// Hands what was remembered to the check's (new) probe.
    fn pass_memory_on(&self) {
        if let (CheckKind::Probe(p), Some(m)) = (&self.spec.kind, &self.memory) {
            p.remember(m);
        }
    }

    /// Takes what the probe remembers now; true when it changed.
    fn take_memory(&mut self) -> bool {
        let now = match &self.spec.kind {
            CheckKind::Probe(p) => p.memory(),
            _ => None,
        };
        if now != self.memory {
            self.memory = now;
            true
        } else {
            false
        }
    }

    fn view(&self) -> CheckView {
        CheckView {
            check_id: self.spec.id.clone(),
            name: self.spec.name.clone(),
            dest: self.spec.dest.clone(),
            phase: self.alert.phase,
            status: self.alert.last_status,
            failed_runs: self.alert.failed_runs,
            retry: self.spec.retry,
            outage_start: self.alert.outage_start,
            last_run: self.last_run,
            last_output: self.last_output.clone(),
        }
    }

    /// Ticks until the next run: `error_every` while failing.
    fn interval(&self) -> u64 {
        if self.alert.is_failing() {
            self.spec.error_every
        } else {
            self.spec.every
        }
    }
}

/// Builds the notifier the config asks for: mail (which only logs when
/// `emails.to` is empty, but still delivers what an earlier process left in
/// the outbox).
fn make_notifier(cfg: &Config) -> anyhow::Result<Box<dyn Notifier>> {
    Ok(Box::new(crate::mail::MailNotifier::new(
        cfg,
        &cfg.state_dir,
    )?))
}

/// `-1 --notify`: hands the problems found to the notifier and waits,
/// bounded, for delivery.
pub fn notify_once(cfg: &Config, notices: Vec<Notice>) -> anyhow::Result<()> {
    super::ensure_state_dir(cfg)?;
    let mut notifier = make_notifier(cfg)?;
    notifier.transitions(notices, crate::clock::now_unix_micros());
    notifier.shutdown(Duration::from_secs(30));
    Ok(())
}

struct Daemon {
    cli: Cli,
    cfg: Config,
    checks: Vec<Tracked>,
    index: HashMap<String, usize>,
    clock: SystemClock,
    ticker: Ticker,
    next_tick: u64,
    pool: ThreadPool,
    groups: Arc<RunningGroups>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    notifier: Box<dyn Notifier>,
    /// Passive outputs every result goes to.
    outputs: Outputs,
    /// Transitions of the current tick, handed over as one batch when the
    /// tick's runs are done (or at the next tick).
    pending: Vec<Notice>,
    running: usize,
    dirty: bool,
}

pub fn run(cli: Cli, cfg: Config) -> anyhow::Result<i32> {
    super::ensure_state_dir(&cfg)?;
    // The state is loaded before the notifier starts sending the outbox:
    // a start-up failure sends nothing.
    let saved = crate::state::load(&cfg.state_dir)?;
    let (tx, rx) = unbounded();
    forward_signals(tx.clone())?;
    let clock = SystemClock::new();
    let notifier = make_notifier(&cfg)?;
    let outputs = Outputs::start(&cfg.outputs, &cfg.state_dir)?;
    let mut d = Daemon {
        outputs,
        ticker: Ticker::new(clock.mono(), tick_micros(&cfg)),
        next_tick: 0,
        pool: ThreadPool::with_name("check".into(), cfg.workers.max(1)),
        groups: Arc::new(RunningGroups::new()),
        checks: Vec::new(),
        index: HashMap::new(),
        clock,
        tx,
        rx,
        notifier,
        pending: Vec::new(),
        running: 0,
        dirty: false,
        cli,
        cfg,
    };
    // The daemon keeps the checks once, in `checks`, not also in `cfg`.
    let specs = std::mem::take(&mut d.cfg.checks);
    d.install(specs, HashMap::new());
    d.restore(saved);
    super::memory::release_unused_memory();
    log::info!(
        "picomon started: {} checks, tick {} s, config {}",
        d.checks.len(),
        d.cfg.base_tick.as_secs_f64(),
        d.cfg.path.display()
    );
    d.run_loop();
    d.shutdown();
    Ok(0)
}

fn tick_micros(cfg: &Config) -> u64 {
    (cfg.base_tick.as_micros() as u64).max(1)
}

/// Turns signals into loop events.
fn forward_signals(tx: Sender<Event>) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGUSR1, SIGHUP, SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        })?;
    Ok(())
}

impl Daemon {
    fn run_loop(&mut self) {
        loop {
            let deadline = self.clock.instant(self.ticker.at(self.next_tick));
            match self.rx.recv_deadline(deadline) {
                Ok(Event::Result { id, outcome }) => self.on_result(&id, outcome),
                Ok(Event::Signal(SIGUSR1)) => {
                    self.dump();
                    self.tick(true);
                }
                Ok(Event::Signal(SIGHUP)) => self.reload(),
                Ok(Event::Signal(sig)) => {
                    log::info!("signal {sig} received, stopping");
                    return;
                }
                Err(RecvTimeoutError::Timeout) => self.tick(false),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Replaces the checks, keeping the state of those whose identity is
    /// unchanged.
    fn install(&mut self, specs: Vec<CheckSpec>, mut old: HashMap<String, Tracked>) {
        self.checks = specs
            .into_iter()
            .map(|spec| match old.remove(&spec.id) {
                Some(mut t) => {
                    t.spec = Arc::new(spec);
                    t.pass_memory_on();
                    t
                }
                None => Tracked::new(spec),
            })
            .collect();
        self.index = self
            .checks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.spec.id.clone(), i))
            .collect();
        self.running = self.checks.iter().filter(|t| t.sched.running).count();
    }

    /// Runs the due checks of the tick whose time has come (or, `forced`,
    /// of the next tick at once).
    fn tick(&mut self, forced: bool) {
        let now = self.clock.mono();
        let k = match self.ticker.due(self.next_tick, now) {
            Some(k) => k,
            None if forced => self.next_tick,
            None => return,
        };
        self.next_tick = k + 1;
        self.flush();
        let wall = self.clock.wall();
        for i in 0..self.checks.len() {
            let t = &mut self.checks[i];
            if let Some(when) = &t.spec.when {
                if !crate::schedule::window_allows(when, wall) {
                    continue;
                }
            }
            match t.sched.decide(k, t.interval()) {
                Decision::NotDue => {}
                Decision::SkipRunning => {
                    log::debug!("{}: still running, run of tick {k} skipped", t.spec.title());
                }
                Decision::Run => {
                    t.sched.start(k);
                    self.running += 1;
                    self.submit(i);
                }
            }
        }
        if let Some(dir) = &self.cfg.result_dir {
            if let Err(err) = crate::output::pick_up_result_dir(dir, &self.outputs) {
                log::warn!("result_dir {}: {err:#}", dir.display());
            }
        }
        process_heartbeat(&self.cfg);
        let views: Vec<CheckView> = self.checks.iter().map(Tracked::view).collect();
        self.notifier.tick(wall, &views);
        self.save_if_dirty();
    }

    fn submit(&self, i: usize) {
        let spec = Arc::clone(&self.checks[i].spec);
        let tx = self.tx.clone();
        let groups = Arc::clone(&self.groups);
        let max_output = self.cfg.max_output;
        log::debug!("running {}", spec.title());
        self.pool.execute(move || {
            let outcome = execute(
                &spec,
                RunEnv {
                    max_output,
                    groups: Some(&groups),
                },
            );
            let _ = tx.send(Event::Result {
                id: spec.id.clone(),
                outcome,
            });
        });
    }

    fn on_result(&mut self, id: &str, outcome: Outcome) {
        let Some(&i) = self.index.get(id) else {
            log::debug!("result for removed check {id} dropped");
            return;
        };
        let now = self.clock.wall();
        let t = &mut self.checks[i];
        if t.sched.running {
            t.sched.finish();
            self.running = self.running.saturating_sub(1);
        }
        log::debug!(
            "{}: {} {} ({:.3} s)",
            t.spec.title(),
            outcome.status,
            outcome.summary,
            outcome.duration.as_secs_f64()
        );
        t.last_output = outcome.full_text();
        t.last_run = Some(now);
        if !self.cfg.outputs.is_empty() {
            self.outputs
                .submit(&PassiveResult::for_check(&t.spec, &outcome, now));
        }
        let before = t.alert.clone();
        if let Some(tr) = t.alert.step(outcome.status, t.spec.retry, now) {
            log::info!(
                "{} {}: {} {}",
                tr.kind.as_str(),
                t.spec.title(),
                tr.status,
                outcome.summary
            );
            self.pending.push(Notice {
                check_id: t.spec.id.clone(),
                name: t.spec.name.clone(),
                dest: t.spec.dest.clone(),
                transition: tr,
                output: t.last_output.clone(),
            });
        }
        let remembered = t.take_memory();
        if t.alert != before || remembered {
            self.dirty = true;
        }
        if self.running == 0 {
            self.flush();
            self.save_if_dirty();
            super::memory::release_unused_memory();
        }
    }

    /// Hands the tick's transitions to the notifier as one batch.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.notifier.transitions(batch, self.clock.wall());
        }
    }

    fn save_if_dirty(&mut self) {
        if !self.dirty {
            return;
        }
        let checks = self
            .checks
            .iter()
            .map(|t| {
                let c = crate::state::SavedCheck {
                    alert: t.alert.clone(),
                    last_output: t.last_output.clone(),
                    last_run: t.last_run,
                    memory: t.memory.clone(),
                };
                (t.spec.id.clone(), c)
            })
            .collect();
        // The report time and thread subjects are kept by the mail side
        // (state_dir/mail-state).
        let saved = crate::state::SavedState { checks };
        match crate::state::save(&self.cfg.state_dir, &saved) {
            Ok(()) => self.dirty = false,
            Err(err) => log::error!("cannot save the state: {err}"),
        }
    }

    /// After a restart: checks whose identity is unchanged get back their
    /// alert state, so a PROBLEM stays a PROBLEM and its thread continues.
    fn restore(&mut self, mut saved: crate::state::SavedState) {
        for t in &mut self.checks {
            if let Some(c) = saved.checks.remove(&t.spec.id) {
                t.alert = c.alert;
                t.last_output = c.last_output;
                t.last_run = c.last_run;
                t.memory = c.memory;
                t.pass_memory_on();
            }
        }
    }

    fn dump(&self) {
        let views: Vec<CheckView> = self.checks.iter().map(Tracked::view).collect();
        let mut extra = self.notifier.status_lines();
        extra.extend(self.outputs.status_lines());
        let text = super::render_dump(self.clock.wall(), &views, &extra);
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// SIGHUP: a broken config keeps the old one running; a valid one is
    /// swapped in, unchanged checks keep their state.
    fn reload(&mut self) {
        let cfg = match super::load(&self.cli) {
            Ok(cfg) => cfg,
            Err(err) => {
                log::error!("reload failed, keeping the running config: {err:#}");
                return;
            }
        };
        let old: HashMap<String, Tracked> = std::mem::take(&mut self.checks)
            .into_iter()
            .map(|t| (t.spec.id.clone(), t))
            .collect();
        let kept = cfg
            .checks
            .iter()
            .filter(|c| old.contains_key(&c.id))
            .count();
        if cfg.workers != self.cfg.workers {
            self.pool.set_num_threads(cfg.workers.max(1));
        }
        match make_notifier(&cfg) {
            Ok(n) => {
                self.flush();
                self.notifier.shutdown(Duration::from_secs(2));
                self.notifier = n;
            }
            Err(err) => log::error!("reload: mail set-up failed, keeping the old one: {err:#}"),
        }
        match Outputs::start(&cfg.outputs, &cfg.state_dir) {
            Ok(o) => self.outputs = o,
            Err(err) => {
                log::error!("reload: outputs failed to start, keeping the old ones: {err:#}")
            }
        }
        let tick_changed = cfg.base_tick != self.cfg.base_tick;
        let mut cfg = cfg;
        let specs = std::mem::take(&mut cfg.checks);
        self.cfg = cfg;
        self.install(specs, old);
        if tick_changed {
            // A new tick length starts a new grid now; kept checks count as
            // having run at its tick 0, new ones run at its tick 1.
            self.ticker = Ticker::new(self.clock.mono(), tick_micros(&self.cfg));
            self.next_tick = 1;
            for t in &mut self.checks {
                if t.sched.last_tick.is_some() {
                    t.sched.last_tick = Some(0);
                }
            }
        }
        log::info!(
            "config reloaded: {} checks ({} kept with their state)",
            self.checks.len(),
            kept
        );
        super::memory::release_unused_memory();
    }

    /// SIGTERM/SIGINT: kill running plugins and wait for the workers, hand
    /// over what is pending, save state, give the outbox one bounded last
    /// try.
    fn shutdown(&mut self) {
        super::process::stop_runs(&self.cfg.state_dir, &self.groups, &self.pool);
        self.flush();
        self.dirty = true;
        self.save_if_dirty();
        self.notifier.shutdown(Duration::from_secs(5));
        if !self.cfg.outputs.is_empty() && !self.outputs.flush(Duration::from_secs(3)) {
            log::warn!("some results are still spooled; they are sent at the next start");
        }
        log::info!("picomon stopped");
    }
}

fn process_heartbeat(cfg: &Config) {
    super::process::heartbeat(&cfg.state_dir);
}
