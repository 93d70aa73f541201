//! What the loop publishes for its readers (the control server, the HTTP
//! listener): a [`Snapshot`], one compact [`CheckLine`] per check.
//!
//! ```text
//!  loop: Line (wide, on the stack) --pack--> CheckLine (80 bytes)
//!  readers: CheckLine --while writing--> status JSON, /api/v1/checks,
//!           /metrics, the status page; CheckStatus only for the loop's
//!           own answers and tests
//! ```
//! A line shares the check's spec (identity, name, target, retry) and last
//! output with the loop rather than copying them; its phase and status
//! are a byte each, its times plain integers; what few checks have (an
//! ack, a silence, a failing parent, an availability other than 100 %,
//! days with outages) lives in one box most lines do not allocate. The
//! JSON is written straight from the lines ([`json`]), with the fields and
//! the order of [`CheckStatus`]: a reader never holds a copy of every
//! check's status.

pub mod json;
pub mod recent;

use std::borrow::Cow;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::protocol::{AckView, CheckStatus, Filter, Outbox, StatusReport};
use crate::alert::quiet::{Silence, Subject};
use crate::history::availability::{Day, DayMark};
use crate::history::Availability;
use crate::model::{CheckSpec, OutputText, Status};

pub use recent::{Recent, RECENT};

/// Days in the status page's availability bar.
pub const DAYS: usize = 30;

/// What the loop publishes: the status of `picomon status --json` plus
/// the counters only `/metrics` and the status page show. Immutable once
/// published; what readers render from it is made once and shared.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every check, in config order.
    pub checks: Vec<CheckLine>,
    pub outbox: Outbox,
    pub silences: Vec<Silence>,
    /// When the loop published it (Unix seconds).
    pub at: i64,
    /// Recent run durations, one ring per check in the order of `checks`
    /// while the HTTP listener is on (empty rings until runs were seen);
    /// no ring at all while it is off.
    pub recent: Vec<Recent>,
    /// Transitions since start, by kind (`problem`, `update`, ...).
    pub transitions: Vec<(&'static str, u64)>,
    /// Due runs skipped because the check's previous run still went on.
    pub runs_skipped: u64,
    /// Bytes waiting in each passive output's spool.
    pub spool_bytes: Vec<(String, u64)>,
    /// Notifications waiting per channel (`mail`, ...).
    pub pending: Vec<(String, usize)>,
    /// How often the status page reloads itself.
    pub refresh: Duration,
    /// The listener's `/metrics` body, rendered by the first scrape of this
    /// snapshot and served to every later one as is.
    metrics: OnceLock<Arc<[u8]>>,
}

impl Snapshot {
    pub fn new(checks: Vec<CheckLine>) -> Snapshot {
        Snapshot {
            checks,
            ..Snapshot::default()
        }
    }

    /// The `/metrics` body of this snapshot: made by `render` the first
    /// time, shared afterwards.
    pub fn metrics_body(&self, render: impl FnOnce(&Snapshot) -> Vec<u8>) -> Arc<[u8]> {
        Arc::clone(self.metrics.get_or_init(|| Arc::from(render(self))))
    }

    /// Check `i`'s durations, oldest first (none while the listener is off).
    pub fn recent_of(&self, i: usize) -> Vec<f32> {
        self.recent.get(i).map(Recent::values).unwrap_or_default()
    }

    /// The whole status as the protocol's types (every line converted:
    /// for the loop's own answers and tests, not for readers).
    pub fn report(&self) -> StatusReport {
        StatusReport {
            checks: self.checks.iter().map(CheckLine::to_status).collect(),
            outbox: self.outbox.clone(),
            silences: self.silences.clone(),
            at: self.at,
        }
    }

    /// Whether a check `filter` keeps is in PROBLEM (`status`'s exit code).
    pub fn any_problem(&self, filter: Filter) -> bool {
        self.checks
            .iter()
            .any(|l| l.phase == LinePhase::Problem && filter.keeps_line(l))
    }
}

/// The phase `status` shows: the alert machine's, with UNREACHABLE for a
/// failing check whose parent fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinePhase {
    Ok,
    Retrying,
    Problem,
    Unreachable,
}

impl LinePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            LinePhase::Ok => "ok",
            LinePhase::Retrying => "retrying",
            LinePhase::Problem => "problem",
            LinePhase::Unreachable => "unreachable",
        }
    }

    pub fn from_name(name: &str) -> Option<LinePhase> {
        [
            LinePhase::Ok,
            LinePhase::Retrying,
            LinePhase::Problem,
            LinePhase::Unreachable,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }
}

/// A check's line, wide: what the loop fills in, on the stack, and
/// [`CheckLine::pack`]s.
#[derive(Clone, Debug)]
pub struct Line {
    pub spec: Arc<CheckSpec>,
    pub phase: LinePhase,
    /// `None` before the first run.
    pub status: Option<Status>,
    pub failed_runs: u32,
    /// Unix seconds: the first failed run of the streak.
    pub since: Option<i64>,
    /// Unix seconds.
    pub last_run: Option<i64>,
    /// Milliseconds the last run took.
    pub took_ms: Option<NonZeroU32>,
    /// The first line of the last output.
    pub output: OutputText,
    pub ack: Option<AckView>,
    pub silenced_by: Option<String>,
    /// The failing check ("name on target") it depends on.
    pub unreachable_by: Option<String>,
    /// `None` when flap detection is off for the check.
    pub flap_percent: Option<f32>,
    pub flapping: bool,
    pub announced: bool,
    pub availability: Availability,
    /// The status page's days (empty: every day whole, or the listener off).
    pub days: Vec<DayMark>,
}

impl Line {
    /// A check that has not run, in no outage, nothing known of it.
    pub fn new(spec: Arc<CheckSpec>) -> Line {
        Line {
            spec,
            phase: LinePhase::Ok,
            status: None,
            failed_runs: 0,
            since: None,
            last_run: None,
            took_ms: None,
            output: OutputText::default(),
            ack: None,
            silenced_by: None,
            unreachable_by: None,
            flap_percent: None,
            flapping: false,
            announced: false,
            availability: Availability::default(),
            days: Vec::new(),
        }
    }
}

/// One check's line of a [`Snapshot`], 80 bytes (see the module comment).
#[derive(Clone, Debug)]
pub struct CheckLine {
    spec: Arc<CheckSpec>,
    output: OutputText,
    /// Unix seconds, [`NO_TIME`] for none.
    since: i64,
    last_run: i64,
    took_ms: Option<NonZeroU32>,
    failed_runs: u32,
    /// Meant only with [`FLAP_ON`].
    flap_percent: f32,
    phase: LinePhase,
    status: Option<Status>,
    /// [`FLAPPING`], [`ANNOUNCED`], [`FLAP_ON`]; the availability: per
    /// window [`AVAIL_WHOLE`] (100 %), or [`AVAIL_RARE`] (the figures are
    /// in the box), neither (none counted yet).
    flags: u8,
    /// The status page's days: the first this many were not counted
    /// (before the check was first seen), the rest whole; unless the box
    /// has the days.
    days_uncounted: u8,
    rare: Option<Box<Rare>>,
}

/// What few lines have.
#[derive(Clone, Debug, Default)]
struct Rare {
    ack: Option<AckView>,
    silenced_by: Option<String>,
    unreachable_by: Option<String>,
    /// Meant only with [`AVAIL_RARE`].
    availability: Availability,
    days: Box<[DayMark]>,
}

const NO_TIME: i64 = i64::MIN;
const FLAPPING: u8 = 1;
const ANNOUNCED: u8 = 2;
const FLAP_ON: u8 = 4;
const AVAIL_RARE: u8 = 8;
/// 100 % over 24 h, 7 d and 30 d.
const AVAIL_WHOLE: [u8; 3] = [16, 32, 64];

/// A day of the status page's bar not counted (before the check existed).
fn uncounted_day() -> DayMark {
    DayMark::of(&Day {
        start: 0,
        percent: None,
        worst: 0,
    })
}

fn time(t: Option<i64>) -> i64 {
    t.unwrap_or(NO_TIME)
}

fn time_of(t: i64) -> Option<i64> {
    (t != NO_TIME).then_some(t)
}

impl CheckLine {
    pub fn pack(l: Line) -> CheckLine {
        let windows = [
            l.availability.day,
            l.availability.week,
            l.availability.month,
        ];
        let whole = windows.iter().all(|w| matches!(w, None | Some(100.0)));
        let avail = if whole {
            windows
                .iter()
                .zip(AVAIL_WHOLE)
                .filter(|(w, _)| w.is_some())
                .fold(0, |bits, (_, bit)| bits | bit)
        } else {
            AVAIL_RARE
        };
        // A check younger than the bar: days not counted, then whole ones.
        let mut days = l.days;
        let uncounted = days.iter().take_while(|&&d| d == uncounted_day()).count();
        let days_uncounted =
            if days.len() == DAYS && days[uncounted..].iter().all(|&d| d == DayMark::WHOLE) {
                days = Vec::new();
                uncounted as u8
            } else {
                0
            };
        let rare = Rare {
            ack: l.ack,
            silenced_by: l.silenced_by,
            unreachable_by: l.unreachable_by,
            availability: if whole {
                Availability::default()
            } else {
                l.availability
            },
            days: days.into_boxed_slice(),
        };
        let common = rare.ack.is_none()
            && rare.silenced_by.is_none()
            && rare.unreachable_by.is_none()
            && whole
            && rare.days.is_empty();
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        CheckLine {
            spec: l.spec,
            output: l.output,
            since: time(l.since),
            last_run: time(l.last_run),
            took_ms: l.took_ms,
            failed_runs: l.failed_runs,
            flap_percent: l.flap_percent.unwrap_or(0.0),
            phase: l.phase,
            status: l.status,
            flags: flag(l.flapping, FLAPPING)
                | flag(l.announced, ANNOUNCED)
                | flag(l.flap_percent.is_some(), FLAP_ON)
                | avail,
            days_uncounted,
            rare: (!common).then(|| Box::new(rare)),
        }
    }

    pub fn spec(&self) -> &CheckSpec {
        &self.spec
    }

    /// Where the spec is, without reading it.
    pub(crate) fn spec_ptr(&self) -> *const CheckSpec {
        Arc::as_ptr(&self.spec)
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn target(&self) -> &str {
        &self.spec.dest
    }

    pub fn subject(&self) -> Subject<'_> {
        Subject {
            id: &self.spec.id,
            name: &self.spec.name,
            dest: &self.spec.dest,
        }
    }

    pub fn phase(&self) -> LinePhase {
        self.phase
    }

    pub fn status(&self) -> Option<Status> {
        self.status
    }

    pub fn failed_runs(&self) -> u32 {
        self.failed_runs
    }

    /// Failed runs that make a Problem (retry + 1).
    pub fn max_runs(&self) -> u32 {
        self.spec.retry.saturating_add(1)
    }

    pub fn since(&self) -> Option<i64> {
        time_of(self.since)
    }

    pub fn last_run(&self) -> Option<i64> {
        time_of(self.last_run)
    }

    /// Seconds the last run took.
    pub fn duration(&self) -> Option<f64> {
        self.took_ms.map(|ms| f64::from(ms.get()) / 1000.0)
    }

    /// The first line of the last output.
    pub fn output(&self) -> &OutputText {
        &self.output
    }

    pub fn ack(&self) -> Option<&AckView> {
        self.rare.as_ref().and_then(|r| r.ack.as_ref())
    }

    pub fn silenced_by(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.silenced_by.as_deref())
    }

    pub fn unreachable_by(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.unreachable_by.as_deref())
    }

    pub fn flap_percent(&self) -> Option<f32> {
        (self.flags & FLAP_ON != 0).then_some(self.flap_percent)
    }

    pub fn flapping(&self) -> bool {
        self.flags & FLAPPING != 0
    }

    pub fn announced(&self) -> bool {
        self.flags & ANNOUNCED != 0
    }

    pub fn availability(&self) -> Availability {
        if self.flags & AVAIL_RARE != 0 {
            return self
                .rare
                .as_ref()
                .map(|r| r.availability)
                .unwrap_or_default();
        }
        let window = |i: usize| (self.flags & AVAIL_WHOLE[i] != 0).then_some(100.0);
        Availability {
            day: window(0),
            week: window(1),
            month: window(2),
        }
    }

    /// The status page's [`DAYS`] days, oldest first; none when every day
    /// was whole (or the listener is off).
    pub fn days(&self) -> Cow<'_, [DayMark]> {
        match (&self.rare, self.days_uncounted as usize) {
            (Some(r), _) if !r.days.is_empty() => Cow::Borrowed(&r.days[..]),
            (_, 0) => Cow::Borrowed(&[]),
            (_, n) => Cow::Owned(
                (0..DAYS)
                    .map(|i| {
                        if i < n {
                            uncounted_day()
                        } else {
                            DayMark::WHOLE
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// The line as the protocol's type.
    pub fn to_status(&self) -> CheckStatus {
        CheckStatus {
            id: Arc::clone(&self.spec.id),
            name: Arc::clone(&self.spec.name),
            target: Arc::clone(&self.spec.dest),
            phase: self.phase.as_str().into(),
            status: self.status.map(|s| s.as_str().into()),
            failed_runs: self.failed_runs,
            max_runs: self.max_runs(),
            since: self.since(),
            last_run: self.last_run(),
            duration: self.duration(),
            output: self.output.first_line_shared(),
            ack: self.ack().cloned(),
            silenced_by: self.silenced_by().map(str::to_string),
            unreachable_by: self.unreachable_by().map(str::to_string),
            flap_percent: self.flap_percent(),
            flapping: self.flapping(),
            announced: self.announced(),
            availability: self.availability(),
        }
    }
}

impl Filter<'_> {
    /// [`Filter::keeps`] for a line.
    pub fn keeps_line(&self, l: &CheckLine) -> bool {
        self.admits(l.phase == LinePhase::Ok, l.subject())
    }
}

/// A line for tests of the readers: the spec a [`CheckStatus`] implies.
#[cfg(test)]
pub(crate) fn line_of(c: &CheckStatus) -> CheckLine {
    let spec = CheckSpec {
        id: Arc::clone(&c.id),
        name: Arc::clone(&c.name),
        dest: Arc::clone(&c.target),
        kind: crate::model::CheckKind::Shell { command: "".into() },
        every: 1,
        error_every: 1,
        retry: c.max_runs.saturating_sub(1),
        timeout_ms: 10_000,
        extras: None,
        passive_host: false,
        max_instances: 1,
        line: 0,
        noise: None,
    };
    CheckLine::pack(Line {
        phase: LinePhase::from_name(&c.phase).expect("a phase"),
        status: c
            .status
            .as_deref()
            .map(|s| Status::from_name(s).expect("a status")),
        failed_runs: c.failed_runs,
        since: c.since,
        last_run: c.last_run,
        took_ms: c
            .duration
            .and_then(|d| NonZeroU32::new((d * 1000.0).round() as u32)),
        // As the loop keeps it: a short performance part inline.
        output: OutputText::default().replaced(&c.output, |h| Arc::from(h)),
        ack: c.ack.clone(),
        silenced_by: c.silenced_by.clone(),
        unreachable_by: c.unreachable_by.clone(),
        flap_percent: c.flap_percent,
        flapping: c.flapping,
        announced: c.announced,
        availability: c.availability,
        ..Line::new(Arc::new(spec))
    })
}

#[cfg(test)]
impl CheckLine {
    /// The line with the status page's `days`.
    pub(crate) fn with_days(mut self, days: Vec<DayMark>) -> CheckLine {
        self.days_uncounted = 0;
        self.rare.get_or_insert_with(Default::default).days = days.into_boxed_slice();
        self
    }
}

/// A snapshot of these checks, for tests of the readers.
#[cfg(test)]
pub(crate) fn of_statuses(checks: &[CheckStatus]) -> Snapshot {
    Snapshot::new(checks.iter().map(line_of).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, target: &str, phase: &str) -> CheckStatus {
        CheckStatus {
            id: format!("{name} on {target}").into(),
            name: name.into(),
            target: target.into(),
            phase: phase.to_string().into(),
            max_runs: 3,
            ..CheckStatus::default()
        }
    }

    /// Lines of every kind: at rest, failing, acknowledged, silenced,
    /// unreachable, flapping, with odd availability and strings.
    fn assorted() -> Vec<CheckStatus> {
        let mut v = vec![status("new", "web1", "ok")];
        let mut ran = status("http", "web1", "ok");
        ran.status = Some("OK".into());
        ran.last_run = Some(1_700_000_000);
        ran.duration = Some(0.001);
        // Its performance part is kept inline (and has to be escaped).
        ran.output = "HTTP OK - 200 in 0.012 s | \"t\"=0.012s".into();
        ran.availability = Availability {
            day: Some(100.0),
            week: Some(100.0),
            month: None,
        };
        ran.flap_percent = Some(0.0);
        v.push(ran);
        let mut down = status("disk \"/\"\n", "db\\1", "problem");
        down.status = Some("CRITICAL".into());
        down.failed_runs = 3;
        down.since = Some(-5);
        down.last_run = Some(0);
        down.duration = Some(12.345);
        down.output = "DISK CRITICAL - ü 0% free | /=100%".into();
        down.ack = Some(AckView {
            by: "alice".into(),
            comment: "on it".into(),
            until: None,
        });
        down.availability = Availability {
            day: Some(99.930_555_555_555_56),
            week: Some(100.0),
            month: Some(0.0),
        };
        down.flap_percent = Some(34.4);
        down.flapping = true;
        down.announced = true;
        v.push(down);
        let mut quiet = status("load", "web2", "retrying");
        quiet.status = Some("WARNING".into());
        quiet.failed_runs = 1;
        quiet.silenced_by = Some("3".into());
        quiet.flap_percent = Some(-0.0);
        quiet.duration = Some(1.0);
        quiet.ack = Some(AckView {
            by: "bob".into(),
            comment: String::new(),
            until: Some(1_700_000_600),
        });
        v.push(quiet);
        let mut child = status("app", "web2", "unreachable");
        child.status = Some("UNKNOWN".into());
        child.unreachable_by = Some("router on gw".into());
        v.push(child);
        v
    }

    #[test]
    fn a_line_is_80_bytes_and_most_have_no_box() {
        // 64 while the output was a shared string; its short performance
        // part is now inline, as in the loop (no string of each check's).
        assert_eq!(std::mem::size_of::<CheckLine>(), 80);
        let lines: Vec<CheckLine> = assorted().iter().map(line_of).collect();
        assert!(lines[0].rare.is_none() && lines[1].rare.is_none());
        assert!(lines[2..].iter().all(|l| l.rare.is_some()));
    }

    #[test]
    fn a_line_packs_and_unpacks_to_its_check_status() {
        for c in assorted() {
            assert_eq!(line_of(&c).to_status(), c);
        }
    }

    /// A snapshot of [`assorted`] lines, with an outbox line and a silence.
    pub(super) fn assorted_snapshot() -> Snapshot {
        let mut s = of_statuses(&assorted());
        s.at = 7;
        s.outbox.lines = vec!["1 mail waits".into()];
        s.silences = vec![Silence {
            id: "3".into(),
            pattern: "web2*".into(),
            by: "carol".into(),
            comment: "deploy".into(),
            start: 1,
            until: 2,
        }];
        s
    }

    #[test]
    fn the_report_is_filtered_as_asked() {
        let s = assorted_snapshot();
        let names = |filter| -> Vec<String> {
            let mut text = Vec::new();
            json::write(&mut text, &s, filter, json::Shape::default()).unwrap();
            let r: StatusReport = serde_json::from_slice(&text).unwrap();
            assert_eq!(r.at, 7);
            r.checks.into_iter().map(|c| c.id.to_string()).collect()
        };
        let only = |p| Filter {
            only: Some(p),
            problems: false,
        };
        assert_eq!(names(only("web2")), ["load on web2", "app on web2"]);
        assert_eq!(names(only("http on web1")), ["http on web1"]);
        assert_eq!(names(only("nothing")), Vec::<String>::new());
        let problems = Filter {
            only: None,
            problems: true,
        };
        assert_eq!(
            names(problems),
            ["disk \"/\"\n on db\\1", "load on web2", "app on web2"]
        );
        assert!(s.any_problem(problems));
        assert!(!s.any_problem(only("web*")));
    }

    #[test]
    fn a_check_younger_than_the_bar_keeps_its_days_in_a_byte() {
        let line = |days: Vec<DayMark>| {
            CheckLine::pack(Line {
                days,
                ..Line::new(line_of(&status("a", "b", "ok")).spec)
            })
        };
        let mut young = vec![uncounted_day(); 12];
        young.resize(DAYS, DayMark::WHOLE);
        let l = line(young.clone());
        assert!(l.rare.is_none());
        assert_eq!(l.days_uncounted, 12);
        assert_eq!(l.days(), young);
        // A day with an outage: kept as it is, in the box.
        let mut hurt = young.clone();
        hurt[20] = DayMark::of(&Day {
            start: 0,
            percent: Some(75.0),
            worst: 3,
        });
        let l = line(hurt.clone());
        assert!(l.rare.is_some());
        assert_eq!(l.days(), hurt);
        assert!(line(Vec::new()).days().is_empty());
        assert!(line(vec![DayMark::WHOLE; DAYS]).days().is_empty());
        let never = line(vec![uncounted_day(); DAYS]);
        assert!(never.rare.is_none());
        assert_eq!(never.days(), vec![uncounted_day(); DAYS]);
    }

    #[test]
    fn phases_read_back_from_their_names() {
        for p in [
            LinePhase::Ok,
            LinePhase::Retrying,
            LinePhase::Problem,
            LinePhase::Unreachable,
        ] {
            assert_eq!(LinePhase::from_name(p.as_str()), Some(p));
        }
        assert_eq!(LinePhase::from_name("PROBLEM"), None);
    }
}
