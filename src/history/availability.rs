//! Availability: the share of time a check was not in an outage over the
//! last 24 hours, 7 days and 30 days. Pure: a [`Summary`] per check is fed
//! the check's lines as they are appended (or read at start) and answers
//! for any `now`, so nothing re-reads the log.
//!
//! What counts: an outage runs from its first failed run to its Recovery
//! (as its mails say), UNREACHABLE included. Not counted at all (neither
//! up nor down): the time before the check was first seen and the
//! maintenance windows that covered it. With nothing left to count the
//! figure is `None` (JSON `null`).

use serde::{Deserialize, Serialize};

use super::outages::rank;
use super::{Kind, Record};
use crate::clock::UnixMicros;
use crate::model::Status;

const HOUR: i64 = 3_600_000_000;
/// The longest window: what a summary keeps.
pub const KEEP: i64 = 30 * 24 * HOUR;

/// Percent of the counted time not in an outage, per window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    #[serde(rename = "24h")]
    pub day: Option<f64>,
    #[serde(rename = "7d")]
    pub week: Option<f64>,
    #[serde(rename = "30d")]
    pub month: Option<f64>,
}

impl Availability {
    /// The windows by their labels (`24h`, `7d`, `30d`).
    pub fn windows(&self) -> [(&'static str, Option<f64>); 3] {
        [("24h", self.day), ("7d", self.week), ("30d", self.month)]
    }
}

/// The local midnights of the last `n - 1` days and of tomorrow, oldest
/// first: neighbours are the `[start, end)` of those days.
pub fn day_starts(now: UnixMicros, n: usize) -> Vec<UnixMicros> {
    let secs = now.div_euclid(1_000_000);
    let c = crate::clock::local_civil(secs).unwrap_or_else(|| crate::clock::utc_civil(secs));
    let tomorrow = crate::clock::days_from_civil(c.year, c.month, c.day) + 1;
    (0..n as i64)
        .rev()
        .map(|back| {
            let day = tomorrow - back;
            let (y, m, d) = crate::clock::civil_from_days(day);
            crate::clock::local_to_unix(y, m, d, 0, 0, 0).unwrap_or(day * 86_400) * 1_000_000
        })
        .collect()
}

/// One local calendar day of a check, for the status page's bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Day {
    /// Its local midnight (Unix microseconds).
    pub start: UnixMicros,
    /// Percent not in an outage; `None` when nothing of it is counted
    /// (before the check existed, or all maintenance).
    pub percent: Option<f64>,
    /// The worst status of its outages: 0 none, 1 WARNING, 2 UNKNOWN,
    /// 3 CRITICAL.
    pub worst: u8,
}

/// One day of a check's bar in four bytes: a snapshot of 10,000 checks
/// holds at most 1.2 MB of them, and none for the checks with 30 whole
/// days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayMark {
    /// Hundredths of a percent; `u16::MAX`: nothing of the day counted.
    basis_points: u16,
    /// As [`Day::worst`].
    pub worst: u8,
}

impl DayMark {
    /// A whole day: 100 %, no outage.
    pub const WHOLE: DayMark = DayMark {
        basis_points: 10_000,
        worst: 0,
    };

    pub fn of(d: &Day) -> DayMark {
        DayMark {
            basis_points: d.percent.map_or(u16::MAX, |p| {
                (p * 100.0).round().clamp(0.0, 10_000.0) as u16
            }),
            worst: d.worst,
        }
    }

    /// Percent, `None` when nothing of the day was counted.
    pub fn percent(&self) -> Option<f64> {
        (self.basis_points != u16::MAX).then(|| f64::from(self.basis_points) / 100.0)
    }

    /// The marks of `days`, none when every day is [`DayMark::WHOLE`].
    pub fn of_days(days: &[Day]) -> Vec<DayMark> {
        let marks: Vec<DayMark> = days.iter().map(DayMark::of).collect();
        if marks.iter().all(|m| *m == DayMark::WHOLE) {
            Vec::new()
        } else {
            marks
        }
    }
}

/// What one check's availability is computed from: its open outage and
/// maintenance, and those that ended in the last 30 days.
///
/// Kept for every check of the config, so it is small at rest: times are
/// [`NEVER`] rather than `Option`, the worst status is a [`Status`], and
/// what ended lives in a box a check that never failed or was never in
/// maintenance does not have (40 bytes in all).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    first_seen: UnixMicros,
    outage: UnixMicros,
    /// The worst status of the open outage.
    worst: Option<Status>,
    maintenance: UnixMicros,
    ended: Option<Box<Ended>>,
}

/// "Not at all" for [`Summary`]'s times: no line is that old.
const NEVER: UnixMicros = UnixMicros::MIN;

fn when(t: UnixMicros) -> Option<UnixMicros> {
    (t != NEVER).then_some(t)
}

/// `*slot = at` unless it is set already (what `get_or_insert` did).
fn set_once(slot: &mut UnixMicros, at: UnixMicros) {
    if *slot == NEVER {
        *slot = at;
    }
}

/// What ended, and how far back it is kept.
#[derive(Clone, Debug, Default, PartialEq)]
struct Ended {
    /// Outages that ended: start, end, the rank of their worst status.
    down: Vec<(UnixMicros, UnixMicros, u8)>,
    maint: Vec<(UnixMicros, UnixMicros)>,
    /// How far back it keeps what ended ([`KEEP`] when 0).
    keep: i64,
}

impl Ended {
    /// Drops what ended before `t`.
    fn forget_before(&mut self, t: UnixMicros) {
        self.down.retain(|&(_, end, _)| end >= t);
        self.maint.retain(|&(_, end)| end >= t);
    }
}

impl Default for Summary {
    fn default() -> Summary {
        Summary {
            first_seen: NEVER,
            outage: NEVER,
            worst: None,
            maintenance: NEVER,
            ended: None,
        }
    }
}

/// A [`Summary`] as the loop keeps it for each check: two words. Most
/// checks at rest never failed and were never in maintenance within
/// [`KEEP`]: their summary is only when they were first seen, kept
/// inline; the others' whole summary is boxed.
#[derive(Clone, Debug, PartialEq)]
pub struct Compact {
    first_seen: UnixMicros,
    more: Option<Box<Summary>>,
}

impl Default for Compact {
    fn default() -> Compact {
        Compact {
            first_seen: NEVER,
            more: None,
        }
    }
}

impl Compact {
    /// The summary it stands for (made on the spot, without a heap
    /// allocation, for a check that has only been seen).
    pub fn get(&self) -> std::borrow::Cow<'_, Summary> {
        match &self.more {
            Some(s) => std::borrow::Cow::Borrowed(&**s),
            None => std::borrow::Cow::Owned(Summary {
                first_seen: self.first_seen,
                ..Summary::default()
            }),
        }
    }

    /// [`Summary::apply`]; the box is made when the line opens an
    /// outage or a maintenance window, and given up once nothing of them
    /// is kept.
    pub fn apply(&mut self, r: &Record) {
        let mut s = match self.more.take() {
            Some(s) => s,
            None if !Summary::could_box(r) => {
                let seen = r.since.unwrap_or(r.at);
                self.first_seen = when(self.first_seen).map_or(seen, |f| f.min(seen));
                return;
            }
            None => Box::new(self.get().into_owned()),
        };
        s.apply(r);
        if s.is_plain() {
            self.first_seen = s.first_seen;
        } else {
            self.more = Some(s);
        }
    }

    pub fn into_summary(self) -> Summary {
        match self.more {
            Some(s) => *s,
            None => self.get().into_owned(),
        }
    }

    pub fn from_summary(s: Summary) -> Compact {
        if s.is_plain() {
            Compact {
                first_seen: s.first_seen,
                more: None,
            }
        } else {
            Compact {
                first_seen: s.first_seen,
                more: Some(Box::new(s)),
            }
        }
    }
}

impl Summary {
    /// A summary that answers for windows up to `window` microseconds
    /// (a report's), not only the last 30 days.
    pub fn keeping(window: i64) -> Summary {
        Summary {
            ended: Some(Box::new(Ended {
                keep: window.max(KEEP),
                ..Ended::default()
            })),
            ..Summary::default()
        }
    }

    /// Only when first seen: nothing open, nothing ended kept.
    fn is_plain(&self) -> bool {
        self.outage == NEVER
            && self.worst.is_none()
            && self.maintenance == NEVER
            && self.ended.is_none()
    }

    /// Whether `r` may set more than when the check was first seen (on a
    /// summary that has nothing else): an outage, its worst status, a
    /// maintenance window.
    fn could_box(r: &Record) -> bool {
        match r.kind {
            Kind::Seen => r.outage.is_some() || r.maintenance,
            Kind::Problem
            | Kind::Unreachable
            | Kind::Update
            | Kind::FlappingStart
            | Kind::FlappingStop
            | Kind::MaintenanceStart => true,
            _ => false,
        }
    }

    pub fn first_seen(&self) -> Option<UnixMicros> {
        when(self.first_seen)
    }

    /// The first failed run of the outage it is in.
    pub fn outage(&self) -> Option<UnixMicros> {
        when(self.outage)
    }

    /// The worst status of the outage it is in.
    pub fn worst(&self) -> Option<&'static str> {
        self.worst.map(Status::as_str)
    }

    pub fn in_maintenance(&self) -> bool {
        self.maintenance != NEVER
    }

    fn down(&self) -> &[(UnixMicros, UnixMicros, u8)] {
        self.ended.as_deref().map_or(&[], |e| &e.down)
    }

    fn maint(&self) -> &[(UnixMicros, UnixMicros)] {
        self.ended.as_deref().map_or(&[], |e| &e.maint)
    }

    fn ended(&mut self) -> &mut Ended {
        self.ended.get_or_insert_with(Box::default)
    }

    /// One of the check's lines, in the order they were written.
    pub fn apply(&mut self, r: &Record) {
        let seen = r.since.unwrap_or(r.at);
        self.first_seen = self.first_seen().map_or(seen, |f| f.min(seen));
        let ok = r.status.as_deref() == Some("OK");
        let failing = match r.kind {
            Kind::Seen => r.outage.is_some(),
            Kind::Problem | Kind::Unreachable | Kind::Update => true,
            Kind::FlappingStop => !ok,
            Kind::FlappingStart => r.outage.is_some(),
            _ => false,
        };
        if let Some(s) = r.status.as_deref().filter(|_| failing) {
            if let Some(s) = Status::from_name(s) {
                if self
                    .worst
                    .is_none_or(|w| rank(s.as_str()) > rank(w.as_str()))
                {
                    self.worst = Some(s);
                }
            }
        }
        match r.kind {
            Kind::Seen => {
                if let Some(s) = r.outage {
                    set_once(&mut self.outage, s);
                }
                if r.maintenance {
                    set_once(&mut self.maintenance, r.at);
                }
            }
            Kind::Problem | Kind::Unreachable | Kind::Update => {
                set_once(&mut self.outage, r.outage.unwrap_or(r.at));
            }
            // Flapping stands for the transitions until it stops: the span
            // counts as the state it started in.
            Kind::FlappingStart if r.outage.is_some() => {
                set_once(&mut self.outage, r.outage.unwrap_or(r.at));
            }
            Kind::FlappingStart if ok => self.close(r.at),
            Kind::FlappingStop if !ok => {
                set_once(&mut self.outage, r.outage.unwrap_or(r.at));
            }
            Kind::Recovery | Kind::FlappingStop => self.close(r.at),
            Kind::MaintenanceStart => set_once(&mut self.maintenance, r.at),
            Kind::MaintenanceEnd => {
                if let Some(s) = when(std::mem::replace(&mut self.maintenance, NEVER)) {
                    self.ended().maint.push((s, r.at));
                }
            }
            _ => {}
        }
        if let Some(e) = self.ended.as_deref_mut() {
            let keep = if e.keep > 0 { e.keep } else { KEEP };
            e.forget_before(r.at.saturating_sub(keep));
        }
    }

    /// The open outage ended at `at`.
    fn close(&mut self, at: UnixMicros) {
        let worst = self.worst.take().map_or(0, |w| rank(w.as_str()));
        if let Some(s) = when(std::mem::replace(&mut self.outage, NEVER)) {
            self.ended().down.push((s, at, worst));
        }
    }

    /// Percent of the counted part of the last `window` microseconds not
    /// in an outage; `None` when nothing of it is counted.
    pub fn percent(&self, now: UnixMicros, window: i64) -> Option<f64> {
        self.percent_in(now - window, now, now)
    }

    /// Percent of the counted part of `from..to` not in an outage, as
    /// known at `now` (an open outage lasts until `now`).
    pub fn percent_in(&self, from: UnixMicros, to: UnixMicros, now: UnixMicros) -> Option<f64> {
        let from = from.max(self.first_seen()?);
        let to = to.min(now);
        if from >= to {
            return None;
        }
        let open = |s: Option<UnixMicros>| s.map(|s| (s, now));
        let down: Vec<_> = self
            .down()
            .iter()
            .map(|&(s, e, _)| (s, e))
            .chain(open(self.outage()))
            .collect();
        let maint: Vec<_> = self
            .maint()
            .iter()
            .copied()
            .chain(open(when(self.maintenance)))
            .collect();
        let clip = |(s, e): (i64, i64)| (s.max(from), e.min(to));
        let len = |(s, e): (i64, i64)| (e - s).max(0);
        let sum = |v: &[(i64, i64)]| v.iter().map(|&x| len(clip(x))).sum::<i64>();
        // Each list's intervals are apart, so the overlaps add up.
        let both: i64 = down
            .iter()
            .flat_map(|&a| maint.iter().map(move |&b| (a.0.max(b.0), a.1.min(b.1))))
            .map(|x| len(clip(x)))
            .sum();
        let counted = (to - from) - sum(&maint);
        if counted <= 0 {
            return None;
        }
        let downtime = (sum(&down) - both).clamp(0, counted);
        Some(100.0 * (counted - downtime) as f64 / counted as f64)
    }

    /// The last `n` local calendar days up to `now`, oldest first (today
    /// until `now`): each one's availability and the worst status of the
    /// outages in it, for the status page's bar.
    pub fn days(&self, now: UnixMicros, n: usize) -> Vec<Day> {
        self.days_of(&day_starts(now, n + 1), now)
    }

    /// [`Summary::days`] for the days `starts` (from [`day_starts`]),
    /// worked out once for every check.
    pub fn days_of(&self, starts: &[UnixMicros], now: UnixMicros) -> Vec<Day> {
        let open = self
            .outage()
            .map(|s| (s, now, self.worst().map_or(0, rank)));
        starts
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0], w[1]);
                let worst = self
                    .down()
                    .iter()
                    .copied()
                    .chain(open)
                    .filter(|&(s, e, _)| s < end.min(now) && e > start)
                    .map(|(_, _, w)| w.max(1))
                    .max()
                    .unwrap_or(0);
                Day {
                    start,
                    percent: self.percent_in(start, end, now),
                    worst,
                }
            })
            .collect()
    }

    /// The three windows at `now`.
    pub fn availability(&self, now: UnixMicros) -> Availability {
        Availability {
            day: self.percent(now, 24 * HOUR),
            week: self.percent(now, 7 * 24 * HOUR),
            month: self.percent(now, KEEP),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_773_576_000_000_000;

    fn line(at: i64, kind: Kind, status: &str, outage: Option<i64>) -> Record {
        Record {
            status: Some(status.into()),
            outage,
            ..Record::new(at, kind, "web")
        }
    }

    fn fed(lines: &[Record]) -> Summary {
        let mut s = Summary::default();
        for l in lines {
            s.apply(l);
        }
        s
    }

    /// Every check of the config has one, failed or not.
    #[test]
    fn a_summary_at_rest_is_five_words() {
        assert_eq!(std::mem::size_of::<Summary>(), 40);
        assert!(Summary::default().ended.is_none());
        let mut s = Summary::default();
        s.apply(&Record::new(T0, Kind::Seen, "web"));
        s.apply(&line(T0 + HOUR, Kind::Recovery, "OK", None));
        assert!(s.ended.is_none(), "nothing ended: nothing boxed");
    }

    /// What the loop keeps per check: two words until it fails, and the
    /// same figures as the whole summary either way.
    #[test]
    fn a_compact_summary_boxes_only_what_failed() {
        assert_eq!(std::mem::size_of::<Compact>(), 16);
        let lines = [
            Record::new(T0, Kind::Seen, "web"),
            Record::new(T0 + HOUR, Kind::Ack, "web"),
            line(
                T0 + 2 * HOUR,
                Kind::Problem,
                "CRITICAL",
                Some(T0 + 2 * HOUR),
            ),
            line(T0 + 3 * HOUR, Kind::Recovery, "OK", Some(T0 + 2 * HOUR)),
        ];
        let mut c = Compact::default();
        for (i, l) in lines.iter().enumerate() {
            c.apply(l);
            assert_eq!(*c.get(), fed(&lines[..=i]), "after line {i}");
            assert_eq!(c.more.is_some(), i >= 2, "after line {i}");
        }
        assert_eq!(c.clone().into_summary(), fed(&lines));
        assert_eq!(Compact::from_summary(fed(&lines[..2])).more, None);
    }

    #[test]
    fn nothing_counted_before_the_check_was_first_seen() {
        let s = fed(&[Record::new(T0, Kind::Seen, "web")]);
        let a = s.availability(T0 + HOUR);
        assert_eq!(a.day, Some(100.0));
        assert_eq!(a.month, Some(100.0));
        assert_eq!(s.availability(T0).day, None, "no time counted yet");
        assert_eq!(Summary::default().availability(T0).month, None);
    }

    #[test]
    fn an_outage_counts_from_its_first_failed_run_to_its_recovery() {
        // Seen 10 h ago; down 1 h from the first failed run (the Problem
        // came two runs later).
        let s = fed(&[
            Record::new(T0, Kind::Seen, "web"),
            line(
                T0 + 2 * HOUR + 60_000_000,
                Kind::Problem,
                "CRITICAL",
                Some(T0 + 2 * HOUR),
            ),
            line(T0 + 3 * HOUR, Kind::Recovery, "OK", Some(T0 + 2 * HOUR)),
        ]);
        let a = s.availability(T0 + 10 * HOUR);
        assert_eq!(a.day, Some(90.0));
        assert_eq!(a.week, Some(90.0));
        // 30 h later the 24 h window no longer holds the outage.
        assert_eq!(s.availability(T0 + 30 * HOUR).day, Some(100.0));
        let w = s.availability(T0 + 30 * HOUR).week.unwrap();
        assert!((w - 100.0 * 29.0 / 30.0).abs() < 1e-9, "{w}");
    }

    #[test]
    fn an_ongoing_outage_counts_until_now() {
        let s = fed(&[
            Record::new(T0, Kind::Seen, "web"),
            line(
                T0 + 3 * HOUR,
                Kind::Problem,
                "CRITICAL",
                Some(T0 + 2 * HOUR),
            ),
        ]);
        assert_eq!(s.availability(T0 + 4 * HOUR).day, Some(50.0));
        assert_eq!(s.outage(), Some(T0 + 2 * HOUR));
    }

    #[test]
    fn maintenance_is_not_counted_either_way() {
        // 10 h seen; maintenance hours 2..6; down 4..8 (2 h of it in the
        // window): 6 h counted, 2 h down.
        let s = fed(&[
            Record::new(T0, Kind::Seen, "web"),
            Record::new(T0 + 2 * HOUR, Kind::MaintenanceStart, "web"),
            line(
                T0 + 4 * HOUR,
                Kind::Problem,
                "CRITICAL",
                Some(T0 + 4 * HOUR),
            ),
            Record::new(T0 + 6 * HOUR, Kind::MaintenanceEnd, "web"),
            line(T0 + 8 * HOUR, Kind::Recovery, "OK", Some(T0 + 4 * HOUR)),
        ]);
        let day = s.availability(T0 + 10 * HOUR).day.unwrap();
        assert!((day - 100.0 * 4.0 / 6.0).abs() < 1e-9, "{day}");
        // Only maintenance so far: nothing counted.
        let s = fed(&[
            Record::new(T0, Kind::Seen, "web"),
            Record::new(T0, Kind::MaintenanceStart, "web"),
        ]);
        assert_eq!(s.availability(T0 + HOUR).day, None);
    }

    #[test]
    fn a_flapping_span_counts_as_the_state_it_started_in() {
        // Flapping from 2 h in PROBLEM (since 1 h), stopped at 4 h with OK;
        // flapping again from 6 h while OK, stopped at 8 h failing.
        let start = |at, outage, status| Record {
            outage,
            ..line(at, Kind::FlappingStart, status, None)
        };
        let s = fed(&[
            Record::new(T0, Kind::Seen, "web"),
            line(T0 + HOUR, Kind::Problem, "CRITICAL", Some(T0 + HOUR)),
            start(T0 + 2 * HOUR, Some(T0 + HOUR), "OK"),
            line(T0 + 4 * HOUR, Kind::FlappingStop, "OK", Some(T0 + 4 * HOUR)),
            start(T0 + 6 * HOUR, None, "OK"),
            line(
                T0 + 8 * HOUR,
                Kind::FlappingStop,
                "WARNING",
                Some(T0 + 7 * HOUR),
            ),
        ]);
        // Down 1..4 h and 7..10 h of 10 h.
        let day = s.availability(T0 + 10 * HOUR).day.unwrap();
        assert!((day - 40.0).abs() < 1e-9, "{day}");
        assert_eq!(s.worst(), Some("WARNING"));
    }

    #[test]
    fn each_day_of_the_bar_has_its_worst_status_and_its_availability() {
        use crate::clock::local_to_unix;
        let at = |d, h| local_to_unix(2026, 3, d, h, 0, 0).unwrap() * 1_000_000;
        let problem = |t, status| line(t, Kind::Problem, status, Some(t));
        let s = fed(&[
            Record::new(at(10, 12), Kind::Seen, "web"),
            // The 11th: WARNING 06:00-12:00, then CRITICAL from 18:00 on
            // into the 12th until 06:00.
            problem(at(11, 6), "WARNING"),
            line(at(11, 12), Kind::Recovery, "OK", Some(at(11, 6))),
            problem(at(11, 18), "CRITICAL"),
            line(at(12, 6), Kind::Recovery, "OK", Some(at(11, 18))),
            // The 13th: UNKNOWN from 12:00, still.
            problem(at(13, 12), "UNKNOWN"),
        ]);
        let days = s.days(at(13, 18), 5);
        let got: Vec<_> = days
            .iter()
            .map(|d| (d.worst, d.percent.map(|p| (p * 100.0).round() / 100.0)))
            .collect();
        // The 13th until 18:00: 6 h of 18 down.
        assert_eq!(
            got,
            [
                (0, None),
                (0, Some(100.0)),
                (3, Some(50.0)),
                (3, Some(75.0)),
                (2, Some(66.67)),
            ]
        );
        assert_eq!(days[4].start, at(13, 0));
    }

    #[test]
    fn a_new_month_file_carries_what_was_open() {
        // The Problem's file was dropped; the next file's `seen` line still
        // says since when the check exists and that it is down.
        let seen = Record {
            since: Some(T0),
            outage: Some(T0 + HOUR),
            ..Record::new(T0 + 5 * HOUR, Kind::Seen, "web")
        };
        let s = fed(&[seen]);
        assert_eq!(s.first_seen(), Some(T0));
        let day = s.availability(T0 + 3 * HOUR).day.unwrap();
        assert!((day - 100.0 / 3.0).abs() < 1e-9, "{day}");
        // What ended more than 30 days ago is forgotten.
        let mut s = s;
        s.apply(&line(T0 + 2 * HOUR, Kind::Recovery, "OK", Some(T0 + HOUR)));
        s.apply(&Record::new(T0 + 40 * 24 * HOUR, Kind::Ack, "web"));
        assert!(s.down().is_empty());
        assert_eq!(s.availability(T0 + 40 * 24 * HOUR).month, Some(100.0));
    }
}
