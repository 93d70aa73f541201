//! Tick arithmetic and due checks. Pure: no threads, no sleeping.
//!
//! Tick k starts at `start + k × base_tick` (no drift). A late wake-up runs
//! the latest tick whose time has come, once; missed ticks are not repeated.
//! A check runs at tick 0, then every `every` ticks while OK and every
//! `error_every` ticks while failing; a run still going when the check is due
//! again makes that run be skipped.

use crate::clock::{self, MonoMicros, UnixMicros};
use crate::model::When;

/// Where ticks fall on the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticker {
    pub start: MonoMicros,
    /// Tick length in microseconds (> 0).
    pub tick: u64,
}

impl Ticker {
    pub fn new(start: MonoMicros, tick: u64) -> Ticker {
        assert!(tick > 0, "tick length must be positive");
        Ticker { start, tick }
    }

    /// When tick `k` is due.
    pub fn at(&self, k: u64) -> MonoMicros {
        self.start + k * self.tick
    }

    /// The tick to run at `now`, given that `next` is the first tick not run
    /// yet: the latest tick whose time has come, but never one before
    /// `next`. `None` while `next` is still in the future.
    pub fn due(&self, next: u64, now: MonoMicros) -> Option<u64> {
        if now < self.at(next) {
            return None;
        }
        let latest = (now - self.start) / self.tick;
        Some(latest.max(next))
    }
}

/// Scheduling state of one check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckSchedule {
    /// The tick of the last started run, plus one: one word.
    last: Option<std::num::NonZeroU64>,
    /// A run is in progress.
    pub running: bool,
    /// Runs in progress besides the first (`max_instances` > 1); in the
    /// padding after `running`, so a check costs no more for it.
    pub overlapping: u16,
}

/// What to do with a check at a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    NotDue,
    Run,
    /// Due, but the previous run is still going: skip (logged at debug).
    SkipRunning,
}

impl CheckSchedule {
    /// Whether the check runs at tick `k`. `interval` is `every` while OK,
    /// `error_every` while failing; `max_instances` runs may go at once.
    pub fn decide(&self, k: u64, interval: u64, max_instances: u16) -> Decision {
        let due = match self.last_tick() {
            None => true,
            Some(last) => k >= last.saturating_add(interval.max(1)),
        };
        if !due {
            Decision::NotDue
        } else if self.runs() >= usize::from(max_instances.max(1)) {
            Decision::SkipRunning
        } else {
            Decision::Run
        }
    }

    /// The tick of the last started run.
    pub fn last_tick(&self) -> Option<u64> {
        self.last.map(|n| n.get() - 1)
    }

    pub fn set_last_tick(&mut self, k: Option<u64>) {
        self.last = k.and_then(|k| std::num::NonZeroU64::new(k.saturating_add(1)));
    }

    /// The runs in progress.
    pub fn runs(&self) -> usize {
        usize::from(self.running) + usize::from(self.overlapping)
    }

    /// Records that a run starts at tick `k`.
    pub fn start(&mut self, k: u64) {
        self.set_last_tick(Some(k));
        if self.running {
            self.overlapping += 1;
        }
        self.running = true;
    }

    /// Records that a run finished.
    pub fn finish(&mut self) {
        if self.overlapping > 0 {
            self.overlapping -= 1;
        } else {
            self.running = false;
        }
    }
}

/// Local calendar fields of a moment, as `when` windows see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub minute: u8,
    pub hour: u8,
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    /// 1..=31.
    pub day: u8,
    /// 1..=12.
    pub month: u8,
    /// Seconds since the epoch.
    pub unix: i64,
}

impl LocalTime {
    /// The local fields of a moment; UTC's when the C library cannot
    /// convert it (a year beyond its range), so a window still decides.
    pub fn from_unix_micros(at: UnixMicros) -> LocalTime {
        let unix = at.div_euclid(1_000_000);
        let c = clock::local_civil(unix).unwrap_or_else(|| clock::utc_civil(unix));
        LocalTime {
            minute: c.minute,
            hour: c.hour,
            weekday: c.weekday,
            day: c.day,
            month: c.month,
            unix,
        }
    }
}

/// Whether a `when` window lets a check run at this moment.
pub fn allows(when: &When, t: LocalTime) -> bool {
    let ok = |list: &[u8], v: u8| list.is_empty() || list.contains(&v);
    ok(&when.minutes, t.minute)
        && ok(&when.hours, t.hour)
        && ok(&when.weekdays, t.weekday)
        && ok(&when.days, t.day)
        && ok(&when.months, t.month)
        && when.start.is_none_or(|s| t.unix >= s)
        && when.end.is_none_or(|e| t.unix <= e)
}

/// [`allows`] at a wall-clock time in the local time zone.
pub fn window_allows(when: &When, at: UnixMicros) -> bool {
    allows(when, LocalTime::from_unix_micros(at))
}

/// A local time of day, every day or on one weekday: when a periodic mail
/// (the availability mail) goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayTime {
    /// 0 = Monday .. 6 = Sunday; `None`: every day.
    pub weekday: Option<u8>,
    pub hour: u8,
    pub minute: u8,
}

/// The weekdays as `DayTime` writes them, Monday first.
pub const WEEKDAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// `monday 08:00`, `08:00`: as the config writes it.
impl std::fmt::Display for DayTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(w) = self.weekday {
            write!(f, "{} ", WEEKDAY_NAMES[usize::from(w) % 7])?;
        }
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// The first moment at or after `earliest` whose local time is `at` (in
/// a clock change's gap, the moment the C library makes of it).
pub fn next_at(at: DayTime, earliest: UnixMicros) -> UnixMicros {
    let unix = earliest.div_euclid(1_000_000);
    let c = clock::local_civil(unix).unwrap_or_else(|| clock::utc_civil(unix));
    let today = clock::days_from_civil(c.year, c.month, c.day);
    for d in 0..=8 {
        let day = today + d;
        let weekday = (day + 3).rem_euclid(7) as u8;
        if at.weekday.is_some_and(|w| w != weekday) {
            continue;
        }
        let (y, m, dd) = clock::civil_from_days(day);
        if let Some(t) = clock::local_to_unix(y, m, dd, at.hour, at.minute, 0) {
            if t * 1_000_000 >= earliest {
                return t * 1_000_000;
            }
        }
    }
    earliest + 7 * 86_400_000_000
}

/// When a periodic mail of period `every` (microseconds) sent at `at`
/// (if given) is first due, for a daemon that has no due time yet at
/// `now`: the next `at`, or one period from now.
pub fn first_due(every: i64, at: Option<DayTime>, now: UnixMicros) -> UnixMicros {
    at.map_or(now + every, |a| next_at(a, now))
}

/// The due time to keep at `now`: the saved one, unless there is none or
/// it lies further than a period (and the week an `at` may add) away, as
/// after the config shortened the period; then the first from now.
pub fn kept_due(
    saved: Option<UnixMicros>,
    every: i64,
    at: Option<DayTime>,
    now: UnixMicros,
) -> UnixMicros {
    let week = 7 * 86_400_000_000;
    let latest = now + every + if at.is_some() { week } else { 0 };
    match saved {
        Some(due) if due <= latest => due,
        _ => first_due(every, at, now),
    }
}

/// When it is due again after the one due at `due` went out at `now`: a
/// period later (at the first `at` from half a period, at most 12 hours,
/// before that, so a clock change does not skip a week); never a catch-up
/// burst after a long stop: once that time has passed, the next from now.
pub fn following_due(
    every: i64,
    at: Option<DayTime>,
    due: UnixMicros,
    now: UnixMicros,
) -> UnixMicros {
    let slack = (every / 2).min(12 * 3_600_000_000);
    let step = |from: UnixMicros| at.map_or(from + every, |a| next_at(a, from + every - slack));
    let next = step(due);
    if next > now {
        next
    } else {
        at.map_or(now + every, |a| next_at(a, now + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weekly_mail_goes_out_on_its_weekday_at_its_time_and_never_in_a_burst() {
        const H: i64 = 3_600_000_000;
        let local = |y, m, d, h, min| clock::local_to_unix(y, m, d, h, min, 0).unwrap() * 1_000_000;
        let monday8 = DayTime {
            weekday: Some(0),
            hour: 8,
            minute: 0,
        };
        // 2026-12-02 is a Wednesday.
        let wed = local(2026, 12, 2, 15, 30);
        let week = 7 * 24 * H;
        let first = first_due(week, Some(monday8), wed);
        assert_eq!(first, local(2026, 12, 7, 8, 0));
        let sent = first + 20_000_000;
        assert_eq!(
            following_due(week, Some(monday8), first, sent),
            local(2026, 12, 14, 8, 0)
        );
        // Stopped for three weeks: one mail, then the next Monday.
        let back = local(2027, 1, 1, 9, 0);
        assert_eq!(
            following_due(week, Some(monday8), first, back),
            local(2027, 1, 4, 8, 0)
        );
        // Every day at 08:00, and on the minute itself.
        let daily = DayTime {
            weekday: None,
            hour: 8,
            minute: 0,
        };
        assert_eq!(
            next_at(daily, local(2026, 12, 7, 8, 0)),
            local(2026, 12, 7, 8, 0)
        );
        assert_eq!(
            following_due(
                24 * H,
                Some(daily),
                local(2026, 12, 7, 8, 0),
                local(2026, 12, 7, 8, 1)
            ),
            local(2026, 12, 8, 8, 0)
        );
        // Every other Monday stays so; a period shortened since is not waited for.
        let fortnight = following_due(2 * week, Some(monday8), first, sent);
        assert_eq!(fortnight, local(2026, 12, 21, 8, 0));
        assert_eq!(
            kept_due(Some(fortnight), 2 * week, Some(monday8), sent),
            fortnight
        );
        assert_eq!(kept_due(Some(fortnight), H, None, sent), sent + H);
        assert_eq!(kept_due(None, week, Some(monday8), wed), first);
        // No time of day: a period after the last, or after now when late.
        assert_eq!(first_due(30_000_000, None, 1_000), 30_001_000);
        assert_eq!(
            following_due(30_000_000, None, 30_001_000, 30_500_000),
            60_001_000
        );
        assert_eq!(
            following_due(30_000_000, None, 30_001_000, 90_000_000),
            120_000_000
        );
    }

    const S: u64 = 1_000_000;

    /// Drives one check through ticks `0..n` where each run finishes before
    /// the next tick; returns the ticks at which it ran. `failing(k)` says
    /// whether the check is failing after the run at tick k.
    fn runs(n: u64, every: u64, error_every: u64, failing: impl Fn(u64) -> bool) -> Vec<u64> {
        let mut s = CheckSchedule::default();
        let mut fail = false;
        let mut out = vec![];
        for k in 0..n {
            let interval = if fail { error_every } else { every };
            if s.decide(k, interval, 1) == Decision::Run {
                s.start(k);
                out.push(k);
                s.finish();
                fail = failing(k);
            }
        }
        out
    }

    #[test]
    fn runs_at_start_then_every() {
        assert_eq!(runs(10, 3, 3, |_| false), vec![0, 3, 6, 9]);
        assert_eq!(runs(4, 1, 1, |_| false), vec![0, 1, 2, 3]);
    }

    #[test]
    fn error_every_applies_while_failing() {
        // Fails from the run at tick 5 on: every 5 while OK, every 1 failing.
        assert_eq!(runs(10, 5, 1, |k| k >= 5), vec![0, 5, 6, 7, 8, 9]);
        // Recovers at the run of tick 7: back to every 5.
        assert_eq!(
            runs(20, 5, 1, |k| (5..7).contains(&k)),
            vec![0, 5, 6, 7, 12, 17]
        );
    }

    #[test]
    fn no_drift_over_10000_ticks() {
        let t = Ticker::new(7, 60 * S);
        let mut next = 0;
        let mut now = 7;
        // Every wake-up comes a little late; the deadline never moves.
        for k in 0..10_000u64 {
            assert_eq!(t.at(k), 7 + k * 60 * S);
            now = now.max(t.at(next) + 1_234);
            let run = t.due(next, now).unwrap();
            assert_eq!(run, k);
            next = run + 1;
        }
        assert_eq!(t.at(next), 7 + 10_000 * 60 * S);
    }

    #[test]
    fn late_tick_runs_once_not_repeated() {
        let t = Ticker::new(0, 10 * S);
        assert_eq!(t.due(1, 5 * S), None);
        // Woken 35 s late: ticks 1, 2, 3 have all come; only tick 4 runs.
        let k = t.due(1, 45 * S).unwrap();
        assert_eq!(k, 4);
        assert_eq!(t.due(k + 1, 45 * S), None);
        assert_eq!(t.at(k + 1), 50 * S);
    }

    #[test]
    fn a_running_check_is_skipped_not_overlapped() {
        let mut s = CheckSchedule::default();
        assert_eq!(s.decide(0, 1, 1), Decision::Run);
        s.start(0);
        assert_eq!(s.decide(1, 1, 1), Decision::SkipRunning);
        assert_eq!(s.decide(2, 1, 1), Decision::SkipRunning);
        s.finish();
        assert_eq!(s.decide(3, 1, 1), Decision::Run);
    }

    #[test]
    fn when_window_limits_hours_weekdays_days_and_start() {
        let when = When {
            hours: (9..=17).collect(),
            weekdays: (0..=4).collect(),
            start: Some(1_000),
            ..When::default()
        };
        let at = |hour, weekday, unix| LocalTime {
            minute: 0,
            hour,
            weekday,
            day: 15,
            month: 6,
            unix,
        };
        assert!(allows(&when, at(9, 0, 2_000)));
        assert!(allows(&when, at(17, 4, 2_000)));
        assert!(!allows(&when, at(8, 0, 2_000)), "before 9");
        assert!(!allows(&when, at(18, 0, 2_000)), "after 17");
        assert!(!allows(&when, at(12, 5, 2_000)), "saturday");
        assert!(!allows(&when, at(12, 2, 999)), "before start");
        let days = When {
            days: vec![1, 2, 24],
            ..When::default()
        };
        assert!(allows(
            &days,
            LocalTime {
                minute: 0,
                hour: 0,
                weekday: 0,
                day: 24,
                month: 1,
                unix: 0
            }
        ));
        assert!(!allows(
            &days,
            LocalTime {
                minute: 0,
                hour: 0,
                weekday: 0,
                day: 23,
                month: 1,
                unix: 0
            }
        ));
        assert!(allows(&When::default(), at(3, 6, 0)));
    }

    #[test]
    fn when_window_limits_minutes_months_and_end() {
        let when = When {
            minutes: (0..=14).collect(),
            months: vec![11, 12, 1, 2],
            end: Some(5_000),
            ..When::default()
        };
        let at = |minute, month, unix| LocalTime {
            minute,
            hour: 3,
            weekday: 2,
            day: 10,
            month,
            unix,
        };
        assert!(allows(&when, at(0, 12, 1_000)));
        assert!(allows(&when, at(14, 1, 5_000)), "end is inclusive");
        assert!(!allows(&when, at(15, 1, 1_000)), "minute 15");
        assert!(!allows(&when, at(5, 3, 1_000)), "march");
        assert!(!allows(&when, at(5, 1, 5_001)), "after end");
    }

    #[test]
    fn max_instances_lets_that_many_runs_overlap() {
        let mut s = CheckSchedule::default();
        assert_eq!(s.decide(0, 1, 2), Decision::Run);
        s.start(0);
        assert_eq!(s.decide(1, 1, 2), Decision::Run);
        s.start(1);
        assert_eq!(s.runs(), 2);
        assert_eq!(s.decide(2, 1, 2), Decision::SkipRunning);
        s.finish();
        assert_eq!(s.decide(2, 1, 2), Decision::Run);
        s.start(2);
        s.finish();
        s.finish();
        assert_eq!(s.runs(), 0);
        assert!(!s.running);
        assert_eq!(s.decide(3, 1, 1), Decision::Run);
        assert_eq!(
            std::mem::size_of::<CheckSchedule>(),
            16,
            "the tick in one word, the count in the padding"
        );
    }

    #[test]
    fn hung_check_delays_no_other() {
        // Two checks, every tick; `hung` never finishes. `other` runs at
        // every tick regardless.
        let mut hung = CheckSchedule::default();
        let mut other = CheckSchedule::default();
        let mut other_runs = 0;
        for k in 0..100 {
            if hung.decide(k, 1, 1) == Decision::Run {
                hung.start(k);
            }
            if other.decide(k, 1, 1) == Decision::Run {
                other.start(k);
                other.finish();
                other_runs += 1;
            }
        }
        assert_eq!(other_runs, 100);
        assert_eq!(hung.last_tick(), Some(0));
    }
}
