//! The loop's state and decisions, with the clock, the executor, the
//! notifier and the outputs handed in: the daemon drives it with the system
//! clock, a thread pool and real signals (`runner.rs`); the tests below drive
//! it with a [`ManualClock`](crate::clock::ManualClock) and a
//! [`ManualExecutor`](super::executor::ManualExecutor), without threads or
//! sleeps.
//!
//! ```text
//!  tick(k): due checks --start--> executor ... on_result(id, outcome)
//!                                                 | alert machine
//!                                                 v
//!            pending transitions (config order) --flush--> notifier
//!            state file when an alert state or a probe's memory changed
//! ```
//!
//! Only this struct owns check state: a run gets the check (shared, never
//! copied) and what it remembered; its outcome comes back here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::alert::quiet::{self, Gate, Quiet, Subject};
use crate::alert::{AlertState, Phase, TransitionKind};
use crate::clock::{Clock, MonoMicros, Now, Timeline, UnixMicros};
use crate::config::Config;
use crate::control::protocol::Response;
use crate::control::Call;
use crate::model::{CheckKind, CheckSpec, Outcome};
use crate::notify::{CheckList, CheckView, Notice, Notifier};
use crate::passive::{Outputs, PassiveResult};
use crate::schedule::{CheckSchedule, Decision, Ticker};

use super::executor::{Executor, Run};

/// A check and everything the loop knows about it.
struct Tracked {
    /// Shared with the run in progress, so a run copies no check.
    spec: Arc<CheckSpec>,
    alert: AlertState,
    sched: CheckSchedule,
    /// Its text shared with the checks that said the same before ` | `,
    /// a short performance part inline (the status the loop publishes
    /// shares it when it is one line).
    last_output: crate::model::OutputText,
    /// When the last run ended ([`NEVER`]: not yet): one word.
    last_run: UnixMicros,
    /// Milliseconds the last run took (at least 1), packed with `flap` in
    /// one word.
    took_ms: Option<std::num::NonZeroU32>,
    /// Status changes of the last 21 runs, and whether it flaps.
    flap: crate::alert::flap::FlapHistory,
    /// What the check's probe remembered after its last run.
    memory: Option<Box<str>>,
    /// What few checks need at a time (held dependents, reminders):
    /// one pointer for all, `None` for most.
    extra: Option<Box<Extra>>,
}

/// "Not yet" for [`Tracked::last_run`].
const NEVER: UnixMicros = UnixMicros::MIN;

/// The part of a check's state only some checks have.
#[derive(Debug, Default)]
struct Extra {
    /// UNREACHABLE: the parent whose failure holds this check's Problem.
    held_by: Option<u32>,
    /// Reminders and escalation of the current outage (in PROBLEM, for
    /// checks that have either).
    nag: Option<crate::alert::remind::Nag>,
    /// Contacts whose Problem of the current outage waits for their
    /// hours (names).
    waiting: Vec<String>,
}

impl Tracked {
    fn new(spec: CheckSpec) -> Tracked {
        Tracked {
            spec: Arc::new(spec),
            alert: AlertState::default(),
            sched: CheckSchedule::default(),
            last_output: crate::model::OutputText::default(),
            last_run: NEVER,
            took_ms: None,
            flap: crate::alert::flap::FlapHistory::default(),
            memory: None,
            extra: None,
        }
    }

    /// When the last run ended.
    fn last_run(&self) -> Option<UnixMicros> {
        (self.last_run != NEVER).then_some(self.last_run)
    }

    fn subject(&self) -> Subject<'_> {
        Subject {
            id: &self.spec.id,
            name: &self.spec.name,
            dest: &self.spec.dest,
        }
    }

    fn view(&self) -> CheckView {
        CheckView {
            check_id: self.spec.id.to_string(),
            name: self.spec.name.to_string(),
            dest: self.spec.dest.to_string(),
            phase: self.alert.phase,
            status: self.alert.last_status,
            failed_runs: self.alert.failed_runs,
            retry: self.spec.retry,
            outage_start: self.alert.outage_start,
            last_run: self.last_run(),
            last_output: self.last_output.to_string(),
            ack: None,
            silenced_by: None,
            unreachable_by: None,
            flap_percent: None,
            flapping: self.flap.is_flapping(),
        }
    }

    /// Ticks until the next run: `error_every` while failing.
    fn interval(&self) -> u64 {
        u64::from(if self.alert.is_failing() {
            self.spec.error_every
        } else {
            self.spec.every
        })
    }
}

/// The loop's checks as the notifier sees them.
struct Checks<'a, C: Clock>(&'a Daemon<C>);

impl<C: Clock> CheckList for Checks<'_, C> {
    fn any_problem(&self) -> bool {
        self.0
            .checks
            .iter()
            .enumerate()
            .any(|(i, t)| t.alert.phase == Phase::Problem && !self.0.standby_quiet(i))
    }
    fn views(&self) -> Vec<CheckView> {
        self.0.views()
    }
    fn notes(&self) -> Vec<String> {
        match self.0.overload.last {
            Some(_) => vec![self.0.overload.line(self.0.cfg.workers)],
            None => Vec::new(),
        }
    }
}

/// Runs that could not start on time in one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overload {
    /// Due, but the check's previous run was still going: skipped.
    pub skipped: u64,
    /// Started at an earlier tick and still waiting for a free worker.
    pub waiting: u64,
}

/// The totals since start and the last tick that was overloaded.
#[derive(Clone, Copy, Debug, Default)]
struct OverloadLog {
    last: Option<(u64, UnixMicros, Overload)>,
    skipped_total: u64,
    waiting_total: u64,
}

impl OverloadLog {
    /// One line for the dump and reports.
    fn line(&self, workers: usize) -> String {
        match self.last {
            None => "overload: none (no run skipped or kept waiting for a worker)".into(),
            Some((k, at, last)) => format!(
                "overload: {} runs skipped and {} kept waiting for a worker since start; \
                 last at tick {k} ({}): {} skipped, {} waiting (config.workers = {workers})",
                self.skipped_total,
                self.waiting_total,
                crate::clock::local_datetime(at),
                last.skipped,
                last.waiting,
            ),
        }
    }
}

/// SIGUSR1's immediate tick. Signals while one is pending or its runs
/// are going are merged into it, and one starts at most every
/// [`IMMEDIATE_EVERY`]: a burst of signals costs a few runs of each check,
/// not one per signal.
#[derive(Clone, Copy, Debug, Default)]
struct Immediate {
    /// Asked for and not started yet.
    pending: bool,
    /// The last immediate tick and how many of its runs are still going.
    tick: Option<u64>,
    left: usize,
    /// When the last one started (monotonic).
    last_at: Option<MonoMicros>,
    /// Signals merged since the last one started.
    merged: u64,
}

/// The least time between the starts of two immediate ticks.
pub const IMMEDIATE_EVERY: u64 = crate::clock::MICROS;

impl Immediate {
    /// When the pending one may start (monotonic).
    fn start_at(&self) -> Option<MonoMicros> {
        self.pending.then(|| {
            self.last_at
                .map_or(0, |at| at.saturating_add(IMMEDIATE_EVERY))
        })
    }
}

/// What a reload replaces besides the checks; `None` keeps the old one
/// (its set-up failed and was logged).
pub struct Parts {
    pub notifier: Option<Box<dyn Notifier>>,
    pub outputs: Option<Outputs>,
}

pub struct Daemon<C: Clock> {
    /// The config without its checks (the daemon keeps them once, below).
    cfg: Config,
    checks: Vec<Tracked>,
    /// The last run durations of each check for the status page, in the
    /// order of `checks`, while `config.listen` is set; empty without a
    /// listener. One allocation for all (a ring each would cost its
    /// allocator's overhead and a pointer more per check).
    recent: Vec<crate::web::Recent>,
    index: index::Index,
    clock: C,
    /// The scale durations are measured on (see [`Timeline`]).
    timeline: Timeline,
    /// The wall clock's offset from the timeline at the last tick: a
    /// change is a step of the wall clock.
    offset_seen: i64,
    ticker: Ticker,
    next_tick: u64,
    exec: Box<dyn Executor>,
    notifier: Box<dyn Notifier>,
    outputs: Outputs,
    /// Transitions since the last hand-over, with the check's position.
    pending: Vec<(usize, Notice)>,
    /// Hand-overs of transitions so far: the runner publishes the status
    /// at once after a batch that had one, so a reader that saw the mail
    /// sees its cause.
    flushes: u64,
    running: usize,
    /// The last tick: its number, when it started and how many runs it
    /// started (for the debug line when they are all done).
    tick_started: (u64, MonoMicros, usize),
    /// Set by start-up and reload: the first tick after them runs every
    /// check at once, and what it frees is returned when it is done (as
    /// after any tick of [`super::allocator::BURST`] runs or more).
    trim_after_tick: bool,
    dirty: bool,
    overload: OverloadLog,
    /// Acks, silences and the Problems they held (`state_dir/quiet`).
    quiet: Quiet,
    quiet_dirty: bool,
    /// `picomon run CHECK` callers waiting for the run of a check.
    waiting: HashMap<String, Vec<Call>>,
    /// Answers ready to be sent.
    answers: Vec<(Call, Response)>,
    /// The notifier's status lines as of the last tick (listing the outbox
    /// for every published status would cost a directory read each time).
    outbox_lines: Vec<String>,
    /// What `/api/v1/health` judges, as of the last tick.
    health: crate::health::Facts,
    /// Transitions since start by kind, for `/metrics`.
    transitions_total: Vec<(&'static str, u64)>,
    /// (parent, dependent) positions, sorted; empty without `depends_on`.
    dependents: Vec<(u32, u32)>,
    immediate: Immediate,
    /// `config.standby_for` and the outages peers announce.
    standby: standby::Standby,
    /// The outage log (`state_dir/history`) and each check's summary of
    /// it, for availability.
    history: crate::history::Recorder,
    /// The outputs of the runs of this tick, shared by the checks that
    /// said the same.
    said: Said,
}

/// The outputs the runs of one tick said, so checks that say the same
/// (100 `tcp` checks of one port, every `heartbeat`) keep one string: at
/// most [`Said::KEEP`] of them, forgotten when the tick's runs are done.
#[derive(Default)]
struct Said(std::collections::HashSet<Arc<str>>);

impl Said {
    const KEEP: usize = 1024;

    /// `text` as a shared string: one said before in this tick, or a new
    /// one of exactly its length.
    fn share(&mut self, text: &str) -> Arc<str> {
        if let Some(s) = self.0.get(text) {
            return Arc::clone(s);
        }
        let s: Arc<str> = Arc::from(text);
        if self.0.len() < Self::KEEP {
            self.0.insert(Arc::clone(&s));
        }
        s
    }
}

/// What a reload did, for `picomon reload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloaded {
    pub checks: usize,
    pub added: usize,
    pub removed: usize,
    pub kept: usize,
}

fn tick_micros(cfg: &Config) -> u64 {
    (cfg.base_tick.as_micros() as u64).max(1)
}

/// The level a transition is logged at: what asks for someone (a Problem,
/// an Update, the start of flapping) at WARN, so `journalctl -p warning`
/// lists it; the end of an outage at INFO.
fn log_level(tr: &crate::alert::Transition) -> log::Level {
    match tr.kind {
        TransitionKind::Recovery => log::Level::Info,
        TransitionKind::FlappingStop if tr.status == crate::model::Status::Ok => log::Level::Info,
        _ => log::Level::Warn,
    }
}

impl<C: Clock> Daemon<C> {
    /// A loop for `cfg`'s checks, all due at once (tick 0 is now).
    pub fn new(
        mut cfg: Config,
        clock: C,
        exec: Box<dyn Executor>,
        notifier: Box<dyn Notifier>,
        outputs: Outputs,
    ) -> Daemon<C> {
        let specs = std::mem::take(&mut cfg.checks);
        let history = crate::history::Recorder::open(&cfg.state_dir, cfg.history, clock.wall());
        let mut d = Daemon {
            history,
            ticker: Ticker::new(clock.mono(), tick_micros(&cfg)),
            next_tick: 0,
            checks: Vec::new(),
            recent: Vec::new(),
            index: index::Index::default(),
            timeline: Timeline::start(&clock),
            offset_seen: 0,
            clock,
            exec,
            notifier,
            outputs,
            pending: Vec::new(),
            flushes: 0,
            running: 0,
            tick_started: (0, 0, 0),
            trim_after_tick: true,
            dirty: false,
            overload: OverloadLog::default(),
            quiet: Quiet::default(),
            quiet_dirty: false,
            waiting: HashMap::new(),
            answers: Vec::new(),
            outbox_lines: Vec::new(),
            health: crate::health::Facts::default(),
            transitions_total: [
                TransitionKind::Problem,
                TransitionKind::Update,
                TransitionKind::Recovery,
            ]
            .map(|k| (k.as_str(), 0))
            .to_vec(),
            dependents: Vec::new(),
            immediate: Immediate::default(),
            standby: standby::Standby::default(),
            said: Said::default(),
            cfg,
        };
        d.install(specs, HashMap::new(), HashMap::new());
        d
    }

    /// The position of the check whose identity is `id`.
    fn position(&self, id: &str) -> Option<usize> {
        self.index.get(&self.checks, id)
    }

    pub fn cfg(&self) -> &Config {
        &self.cfg
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Now, on the wall clock and on the timeline.
    pub fn now(&self) -> Now {
        self.timeline.now(&self.clock)
    }

    pub fn len(&self) -> usize {
        self.checks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// When the next tick is due (monotonic clock): on the grid, or an
    /// immediate one asked for by SIGUSR1.
    pub fn next_tick_at(&self) -> MonoMicros {
        let grid = self.ticker.at(self.next_tick);
        self.immediate.start_at().map_or(grid, |at| at.min(grid))
    }

    /// SIGUSR1: one immediate tick. A signal while one is pending or its
    /// runs are going is merged into it; false then (the dump that goes
    /// with the signal is merged too). The tick starts at the next
    /// [`Daemon::tick`], at most one every [`IMMEDIATE_EVERY`].
    pub fn ask_immediate_tick(&mut self) -> bool {
        let im = &mut self.immediate;
        if im.pending || im.left > 0 {
            if im.merged == 0 {
                log::info!(
                    "SIGUSR1: an immediate run is already {}; merged into it",
                    if im.pending { "pending" } else { "going" }
                );
            }
            im.merged += 1;
            return false;
        }
        im.pending = true;
        true
    }

    /// What the health rule judges, as of the last tick.
    pub fn health_facts(&self) -> &crate::health::Facts {
        &self.health
    }

    /// How many batches of transitions were handed to the notifier.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// Runs in progress.
    pub fn running(&self) -> usize {
        self.running
    }

    pub fn views(&self) -> Vec<CheckView> {
        let now = self.now();
        self.checks
            .iter()
            .enumerate()
            .map(|(i, t)| (t, self.noise_view(i)))
            .map(|(t, v)| CheckView {
                unreachable_by: v.unreachable_by,
                flap_percent: v.flap_percent,
                flapping: v.flapping,
                silenced_by: self
                    .quiet
                    .silenced_by(t.subject(), now, &self.cfg.maintenance),
                ack: self
                    .quiet
                    .acks
                    .get(&*t.spec.id)
                    .map(|a| format!("{}: {}", a.by, a.comment)),
                ..t.view()
            })
            .collect()
    }

    /// Replaces the checks, keeping the state of those whose identity is
    /// unchanged.
    fn install(
        &mut self,
        specs: Vec<CheckSpec>,
        mut old: HashMap<Arc<str>, Tracked>,
        mut old_recent: HashMap<Arc<str>, crate::web::Recent>,
    ) {
        self.recent = Vec::new();
        if self.cfg.listen.is_some() {
            self.recent = specs
                .iter()
                .map(|s| old_recent.remove(&*s.id).unwrap_or_default())
                .collect();
        }
        drop(old_recent);
        let mut strings = crate::model::Interner::default();
        self.checks = specs
            .into_iter()
            .map(|spec| spec.with_own_strings(&mut strings))
            .map(|spec| match old.remove(&*spec.id) {
                Some(mut t) => {
                    t.spec = Arc::new(spec);
                    t
                }
                None => Tracked::new(spec),
            })
            .collect();
        for (id, t) in &old {
            if t.alert.phase != Phase::Ok {
                warn_outage_dropped(id);
            }
        }
        // Collected in place, the list keeps the specs' buffer and its
        // spare capacity: give the spare back.
        self.checks.shrink_to_fit();
        self.index = index::Index::of(&self.checks);
        self.running = self.checks.iter().map(|t| t.sched.runs()).sum();
        self.index_dependents();
        self.index_standby();
        let wall = self.clock.wall();
        self.history
            .set_checks(self.checks.iter().map(|t| &t.spec.id), wall);
    }

    /// After a restart: checks whose identity is unchanged get back their
    /// alert state, so a PROBLEM stays a PROBLEM and its thread continues.
    pub fn restore(&mut self, mut saved: crate::state::SavedState) {
        // Saved as wall time; the timeline has just begun at the wall
        // clock, so this moves them by next to nothing.
        let offset = self.now().offset();
        let mut held = HashMap::new();
        for t in &mut self.checks {
            if let Some(c) = saved.checks.remove(&*t.spec.id) {
                t.alert = c.alert;
                t.last_output =
                    crate::model::OutputText::default().replaced(&c.last_output, |h| Arc::from(h));
                t.last_run = c.last_run.unwrap_or(NEVER);
                t.memory = c.memory.map(String::into_boxed_str);
                t.set_nag(c.nag.map(|n| n.as_wall(-offset)));
                t.flap = c.flap;
                t.set_waiting(c.waiting);
                if let Some(p) = c.held_by {
                    held.insert(t.spec.id.to_string(), p);
                }
            }
        }
        for (id, c) in saved.checks {
            if c.alert.phase != Phase::Ok {
                warn_outage_dropped(&id);
            }
        }
        self.rehold(held);
    }

    /// After a restart: the acks and silences kept in `state_dir/quiet`.
    pub fn restore_quiet(&mut self, q: Quiet) {
        self.quiet = q.as_wall(-self.now().offset());
        let (checks, index) = (&self.checks, &self.index);
        self.quiet
            .retain_checks(|id| index.get(checks, id).is_some());
    }

    /// Runs the due checks of the tick whose time has come (or, `forced`,
    /// of the next tick at once). Does nothing before the next tick is due.
    /// A pending immediate tick (SIGUSR1) starts when its time has come;
    /// a due tick on the grid stands for it.
    pub fn tick(&mut self, forced: bool) {
        let now = self.clock.mono();
        let due = self.ticker.due(self.next_tick, now);
        let asked = self.immediate.start_at().is_some_and(|at| at <= now)
            || (self.immediate.pending && due.is_some());
        let k = match due {
            Some(k) => k,
            None if forced || asked => self.next_tick,
            None => return,
        };
        // Off the grid: a run still going is no overload.
        let early = due.is_none();
        if asked {
            let im = &mut self.immediate;
            if im.merged > 0 {
                log::debug!("immediate tick {k}: {} more SIGUSR1 merged", im.merged);
            }
            *im = Immediate {
                last_at: Some(now),
                tick: Some(k),
                ..Immediate::default()
            };
        }
        self.next_tick = k + 1;
        self.flush();
        let at = self.now();
        let wall = at.wall;
        self.note_step(at);
        self.standby_drop_down_peers();
        self.standby_tidy();
        self.standby_turn(wall);
        self.quiet_housekeeping(at);
        self.note_maintenance(wall);
        self.nag(at);
        self.release_waiting(at);
        // Runs of earlier ticks that never got a worker: the pool is too
        // small for the checks (runs queued within a tick are normal).
        let mut load = Overload {
            waiting: self.exec.backlog() as u64,
            ..Overload::default()
        };
        let mut started = 0;
        let mut beats = Vec::new();
        for i in 0..self.checks.len() {
            let t = &mut self.checks[i];
            if let Some(when) = t.spec.when() {
                if !crate::schedule::window_allows(when, wall) {
                    continue;
                }
            }
            match t.sched.decide(k, t.interval(), t.spec.max_instances) {
                Decision::NotDue => {}
                Decision::SkipRunning => {
                    load.skipped += u64::from(!early);
                    log::debug!("{}: still running, run of tick {k} skipped", t.spec.title());
                }
                Decision::Run if matches!(t.spec.kind, CheckKind::Heartbeat(_)) => {
                    t.sched.start(k);
                    self.running += 1;
                    beats.push(i);
                }
                Decision::Run => {
                    t.sched.start(k);
                    self.running += 1;
                    started += 1;
                    self.exec.start(Run {
                        spec: Arc::clone(&t.spec),
                        memory: t.memory.as_deref().map(str::to_string),
                        max_output: self.cfg.max_output,
                    });
                }
            }
        }
        self.tick_started = (k, now, started);
        if asked {
            self.immediate.left = started;
        }
        self.note_overload(k, wall, load);
        for i in beats {
            self.judge_beat(i);
        }
        if let Some(dir) = &self.cfg.result_dir {
            match crate::passive::pick_up_result_dir(dir, &self.outputs) {
                Ok(results) => self.passive_pings(&results),
                Err(err) => log::warn!("result_dir {}: {err:#}", dir.display()),
            }
        }
        super::startup::heartbeat(&self.cfg.state_dir);
        // The notifier is taken out for the call, so it can look at the
        // loop's checks (lazily: views only when a report is due).
        let mut notifier = std::mem::replace(&mut self.notifier, Box::new(crate::notify::LogOnly));
        notifier.tick(at, &Checks(self));
        self.outbox_lines = notifier.status_lines();
        let (mail_queued, mail_oldest) = notifier.mail_backlog();
        self.notifier = notifier;
        self.health = crate::health::Facts {
            base_tick: self.cfg.base_tick,
            smtp_retry_timeout: self.cfg.emails.smtp_retry_timeout,
            mail_queued,
            mail_oldest,
            problems: self
                .checks
                .iter()
                .filter(|t| t.alert.phase == Phase::Problem)
                .count(),
        };
        self.save_if_dirty();
    }

    /// A step of the wall clock: what is saved as wall time is saved
    /// again in the new wall time (durations go on counting on the
    /// timeline, unchanged).
    fn note_step(&mut self, now: Now) {
        let step = now.offset() - self.offset_seen;
        if step.abs() <= crate::clock::STEP {
            return;
        }
        self.offset_seen = now.offset();
        log::warn!(
            "the wall clock was stepped {} by {:.1} s: reminders, escalation, reports, \
             acks and silences go on counting monotonic time",
            if step < 0 { "back" } else { "forward" },
            step.unsigned_abs() as f64 / 1e6
        );
        self.dirty = true;
        self.quiet_dirty = true;
    }

    /// Ends expired acks and silences; mails the Problems they held of
    /// checks still in PROBLEM.
    fn quiet_housekeeping(&mut self, now: Now) {
        if self.quiet.expire(now.steady) {
            self.quiet_dirty = true;
        }
        let released = self.quiet.release(
            self.checks.iter().map(Tracked::subject),
            now,
            &self.cfg.maintenance,
        );
        for id in released {
            self.quiet_dirty = true;
            let Some(i) = self.position(id.as_str()) else {
                continue;
            };
            let t = &self.checks[i];
            // An UNREACHABLE check mails its Problem once its parent is
            // OK again, at its next run.
            if t.alert.phase != Phase::Problem || t.held_by().is_some() || self.standby_quiet(i) {
                continue;
            }
            log::warn!(
                "{}: no longer silenced and still failing: its Problem is mailed now",
                t.spec.title()
            );
            let mut x = t.now_transition(TransitionKind::Problem, now.wall);
            x.previous = None;
            let mut notice = t.notice(x);
            self.mailed(i, &mut notice, now);
            // Straight to the notifier: the silence has been consulted.
            self.notifier.transitions(vec![notice], now.wall);
        }
        self.save_quiet_if_dirty();
    }

    /// Maintenance windows that began or ended for a check since the last
    /// tick, into the log (availability leaves them out).
    fn note_maintenance(&mut self, wall: UnixMicros) {
        for (i, t) in self.checks.iter().enumerate() {
            let now = Quiet::in_maintenance(t.subject(), wall, &self.cfg.maintenance);
            if now != self.history.in_maintenance(i) {
                let kind = if now {
                    crate::history::Kind::MaintenanceStart
                } else {
                    crate::history::Kind::MaintenanceEnd
                };
                self.history
                    .record(Some(i), crate::history::Record::new(wall, kind, &t.spec.id));
            }
        }
    }

    fn save_quiet_if_dirty(&mut self) {
        self.history.sync();
        if !self.quiet_dirty {
            return;
        }
        let on_disk = self.quiet.as_wall(self.now().offset());
        match quiet::save(&self.cfg.state_dir, &on_disk) {
            Ok(()) => self.quiet_dirty = false,
            Err(err) => log::error!("cannot save the acks and silences: {err}"),
        }
    }

    /// One WARN line per overloaded tick; the totals are in the dump.
    fn note_overload(&mut self, k: u64, wall: UnixMicros, load: Overload) {
        if load == Overload::default() {
            return;
        }
        log::warn!(
            "overloaded: tick {k}: {} due runs skipped (their previous run still going), \
             {} runs of earlier ticks still wait for a free worker (config.workers = {})",
            load.skipped,
            load.waiting,
            self.cfg.workers
        );
        self.overload.last = Some((k, wall, load));
        self.overload.skipped_total += load.skipped;
        self.overload.waiting_total += load.waiting;
    }

    /// The outcome of a run.
    pub fn on_result(&mut self, id: &str, outcome: Outcome) {
        let Some(i) = self.position(id) else {
            log::debug!("result for removed check {id} dropped");
            for call in self.waiting.remove(id).unwrap_or_default() {
                self.answers.push((
                    call,
                    Response::error(format!(
                        "{id} was removed by a reload while it ran; it said: {} {}",
                        outcome.status, outcome.summary
                    )),
                ));
            }
            return;
        };
        let now = self.clock.wall();
        let t = &mut self.checks[i];
        if t.sched.running {
            let im = &mut self.immediate;
            if im.left > 0 && im.tick.is_some() && t.sched.last_tick() == im.tick {
                im.left -= 1;
            }
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
        let text = outcome.full_text();
        if !t.last_output.is(&text) {
            t.last_output = t.last_output.replaced(&text, |head| self.said.share(head));
        }
        t.last_run = now;
        t.took_ms = std::num::NonZeroU32::new(
            u32::try_from(outcome.duration.as_millis())
                .unwrap_or(u32::MAX)
                .max(1),
        );
        if let Some(r) = self.recent.get_mut(i) {
            r.push(outcome.duration);
        }
        if let Some(calls) = self.waiting.remove(id) {
            let line = super::once::result_line(outcome.status, &t.spec.title(), &outcome.summary);
            for call in calls {
                self.answers.push((
                    call,
                    Response {
                        message: Some(line.clone()),
                        code: Some(outcome.status.code()),
                        ..Response::default()
                    },
                ));
            }
        }
        // picomon's own health is for its mail, not for the monitoring it
        // feeds (which has no service of that name).
        if !self.cfg.outputs.is_empty() && &*t.spec.id != super::selfcheck::ID {
            self.outputs
                .submit(&PassiveResult::for_check(&t.spec, &outcome, now));
        }
        self.note_peer_claims(i, &outcome);
        let t = &mut self.checks[i];
        let before = t.alert.clone();
        let status_changed = before.last_status.is_some_and(|s| s != outcome.status);
        let tr = t.alert.step(outcome.status, t.spec.retry, now);
        if let Some(tr) = &tr {
            log::log!(
                log_level(tr),
                "{} {}: {} {}",
                tr.kind.as_str(),
                t.spec.title(),
                tr.status,
                outcome.summary
            );
            match self
                .transitions_total
                .iter_mut()
                .find(|(k, _)| *k == tr.kind.as_str())
            {
                Some((_, n)) => *n += 1,
                None => self.transitions_total.push((tr.kind.as_str(), 1)),
            }
        }
        self.announce(i, tr, status_changed, now);
        let t = &mut self.checks[i];
        let mut changed = t.alert != before;
        if let Some(m) = outcome.memory.filter(|m| t.memory.as_deref() != Some(m)) {
            t.memory = Some(m.into_boxed_str());
            changed = true;
        }
        self.dirty |= changed;
        if self.running == 0 {
            let (k, at, n) = self.tick_started;
            log::debug!(
                "tick {k}: {n} runs done in {:.3} s",
                self.clock.mono().saturating_sub(at) as f64 / 1e6
            );
            self.flush();
            self.save_if_dirty();
            self.said = Said::default();
            // A burst of results was allocated and freed: give it back.
            if std::mem::take(&mut self.trim_after_tick) || n >= super::allocator::BURST {
                super::allocator::trim_heap();
            }
        }
    }

    /// Hands the transitions to the notifier as one batch, in config order
    /// (whichever run ended first), each check's own in the order they came.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.flushes += 1;
        let mut batch = std::mem::take(&mut self.pending);
        crate::sort::by_key(&mut batch, |(i, _)| *i);
        let batch = self.resolve_deps(batch);
        let now = self.now();
        self.standby_drop_down_peers();
        self.standby_turn(now.wall);
        let mut mail = Vec::with_capacity(batch.len());
        for (i, mut n) in batch {
            if matches!(
                n.transition.kind,
                TransitionKind::Reminder | TransitionKind::Escalation
            ) {
                let line = history_line(&n.check_id, &n.transition, &n.output);
                self.history.record(Some(i), line);
            }
            if let Some(why) = self.standby_gate(i, &n) {
                log::info!(
                    "{} {}: not mailed: {why}",
                    n.transition.kind.as_str(),
                    self.checks[i].spec.title()
                );
                continue;
            }
            let t = &self.checks[i];
            let before = (self.quiet.acks.len(), self.quiet.held.len());
            // "Stopped flapping" counts as the Problem or Recovery it is.
            let as_kind = match n.transition.kind {
                TransitionKind::FlappingStop if n.transition.opens_outage() => {
                    TransitionKind::Problem
                }
                TransitionKind::FlappingStop => TransitionKind::Recovery,
                k => k,
            };
            match self
                .quiet
                .gate(t.subject(), as_kind, now, &self.cfg.maintenance)
            {
                Gate::Mail => {
                    self.mailed(i, &mut n, now);
                    self.address(i, &mut n, now);
                    mail.push(n);
                }
                Gate::Hold(why) => log::info!(
                    "{} {}: not mailed: {why}",
                    n.transition.kind.as_str(),
                    t.spec.title()
                ),
            }
            self.quiet_dirty |= before != (self.quiet.acks.len(), self.quiet.held.len());
        }
        self.save_quiet_if_dirty();
        self.standby_tidy();
        if !mail.is_empty() {
            self.notifier.transitions(mail, now.wall);
        }
    }

    fn save_if_dirty(&mut self) {
        // The log's lines of this batch are on disk no later than the
        // state that follows them.
        self.history.sync();
        if !self.dirty {
            return;
        }
        // The report time and thread subjects are kept by the mail side
        // (state_dir/mail-state).
        let all = &self.checks;
        let offset = self.now().offset();
        let checks = self.checks.iter().map(|t| {
            (
                t.spec.id.as_ref(),
                crate::state::SavedCheckRef {
                    alert: &t.alert,
                    last_output: t.last_output.text(),
                    last_run: t.last_run(),
                    memory: t.memory.as_deref(),
                    held_by: t.held_by().map(|p| all[p as usize].spec.id.as_ref()),
                    nag: t.nag().map(|n| std::borrow::Cow::Owned(n.as_wall(offset))),
                    flap: t.flap,
                    waiting: t.waiting(),
                },
            )
        });
        match crate::state::save_checks(&self.cfg.state_dir, checks) {
            Ok(()) => self.dirty = false,
            // Kept dirty: the next tick tries again. The `picomon state_dir`
            // check reports the cause.
            Err(err) => log::error!("cannot save the state: {err}"),
        }
    }

    /// The SIGUSR1 dump.
    pub fn dump(&self) -> String {
        let views = self.views();
        let mut extra = self.quiet_lines();
        extra.extend(self.notifier.status_lines());
        extra.extend(self.outputs.status_lines());
        extra.extend(self.overload_lines());
        super::render_dump(self.clock.wall(), &views, &extra)
    }

    /// Acks and silences, for the dump.
    fn quiet_lines(&self) -> Vec<String> {
        let q = &self.quiet.as_wall(self.now().offset());
        let mut out = vec![format!("acknowledged ({}):", q.acks.len())];
        for (id, a) in &q.acks {
            out.push(format!(
                "  {id}: by {} at {}{}{}: {}",
                a.by,
                crate::clock::local_datetime(a.at),
                a.until
                    .map(|u| format!(", until {}", crate::clock::local_datetime(u)))
                    .unwrap_or_default(),
                if a.sticky { ", sticky" } else { "" },
                a.comment
            ));
        }
        out.push(format!("silences ({}):", q.silences.len()));
        for x in &q.silences {
            out.push(format!(
                "  {} {:?} by {} until {}: {}",
                x.id,
                x.pattern,
                x.by,
                crate::clock::local_datetime(x.until),
                x.comment
            ));
        }
        for m in &self.cfg.maintenance {
            out.push(format!("  {} {:?} (config)", m.id(), m.pattern));
        }
        let waiting: Vec<String> = self
            .checks
            .iter()
            .filter(|t| !t.waiting().is_empty())
            .map(|t| format!("  {}: {}", t.spec.title(), t.waiting().join(", ")))
            .collect();
        if !waiting.is_empty() {
            out.push(format!(
                "Problems waiting for contacts' hours ({}):",
                waiting.len()
            ));
            out.extend(waiting);
        }
        out
    }

    fn overload_lines(&self) -> Vec<String> {
        vec![self.overload.line(self.cfg.workers)]
    }

    /// A new config: unchanged checks keep their state; a changed
    /// `base_tick` starts a new tick grid at once.
    pub fn reload(&mut self, mut cfg: Config, parts: Parts) -> Reloaded {
        // Pending transitions name positions in the old check list.
        self.flush();
        let held = self.held_ids();
        let old_recent: HashMap<Arc<str>, crate::web::Recent> = self
            .checks
            .iter()
            .zip(std::mem::take(&mut self.recent))
            .map(|(t, r)| (t.spec.id.clone(), r))
            .collect();
        let old: HashMap<Arc<str>, Tracked> = std::mem::take(&mut self.checks)
            .into_iter()
            .map(|t| (t.spec.id.clone(), t))
            .collect();
        let kept = cfg
            .checks
            .iter()
            .filter(|c| old.contains_key(&*c.id))
            .count();
        if cfg.workers != self.cfg.workers {
            self.exec.set_workers(cfg.workers);
        }
        if let Some(n) = parts.notifier {
            self.notifier.shutdown(Duration::from_secs(2));
            self.notifier = n;
        }
        if let Some(o) = parts.outputs {
            self.outputs = o;
        }
        let tick_changed = cfg.base_tick != self.cfg.base_tick;
        let specs = std::mem::take(&mut cfg.checks);
        let counts = Reloaded {
            checks: specs.len(),
            added: specs.len() - kept,
            removed: old.len() - kept,
            kept,
        };
        self.cfg = cfg;
        // Runs of the old checks are no longer told apart.
        self.immediate.left = 0;
        self.install(specs, old, old_recent);
        self.rehold(held);
        let (checks, index) = (&self.checks, &self.index);
        self.quiet
            .retain_checks(|id| index.get(checks, id).is_some());
        self.quiet_dirty = true;
        self.save_quiet_if_dirty();
        if tick_changed {
            // A new tick length starts a new grid now; kept checks count as
            // having run at its tick 0, new ones run at its tick 1.
            self.ticker = Ticker::new(self.clock.mono(), tick_micros(&self.cfg));
            self.next_tick = 1;
            for t in &mut self.checks {
                if t.sched.last_tick().is_some() {
                    t.sched.set_last_tick(Some(0));
                }
            }
        }
        // Removed checks leave the state file.
        self.dirty = true;
        self.trim_after_tick = true;
        log::info!(
            "config reloaded: {} checks ({} kept with their state; {} added, {} removed)",
            counts.checks,
            counts.kept,
            counts.added,
            counts.removed
        );
        counts
    }

    /// SIGTERM/SIGINT: kill running plugins and wait for the workers, hand
    /// over what is pending, save state, give the outbox and the spools one
    /// bounded last try.
    pub fn shutdown(&mut self) {
        // A picomon starting meanwhile waits for this one to be gone.
        super::startup::announce_stopping(&self.cfg.state_dir);
        if !self
            .exec
            .stop(super::startup::STOP_GRACE, super::startup::JOIN_WORKERS)
        {
            log::warn!(
                "runs still in progress at exit (a built-in probe on its way to its timeout)"
            );
        }
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

/// The log's line for a transition of check `id`.
fn history_line(id: &str, tr: &crate::alert::Transition, output: &str) -> crate::history::Record {
    use crate::history::Kind;
    let kind = match tr.kind {
        TransitionKind::Problem => Kind::Problem,
        TransitionKind::Update => Kind::Update,
        TransitionKind::Recovery => Kind::Recovery,
        TransitionKind::Reminder => Kind::Reminder,
        TransitionKind::Escalation => Kind::Escalation,
        TransitionKind::FlappingStart => Kind::FlappingStart,
        TransitionKind::FlappingStop => Kind::FlappingStop,
    };
    crate::history::Record {
        status: Some(tr.status.as_str().to_string()),
        outage: Some(tr.outage_start),
        ..crate::history::Record::new(tr.at, kind, id).with_text(output)
    }
}

mod contacts;
mod control;
mod heartbeat;
mod index;
mod policy;
mod standby;
/// An open outage of a check the config no longer has under that identity
/// (at start, from the state file; at a reload, from the running config):
/// removed, renamed, or a name a second target now shares (each is then
/// `NAME on TARGET`). It ends without a Recovery; said once at WARN.
fn warn_outage_dropped(id: &str) {
    log::warn!(
        "the open outage of {id:?} is not carried over: no check of this config has that \
         identity now (renamed, removed, or a name several targets share, each then NAME on \
         TARGET); if the check still fails, it starts a new outage"
    );
}

#[cfg(test)]
mod tests;
