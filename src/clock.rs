//! The one place time comes from, so the scheduler and the alert state
//! machine can be driven by a manual clock in tests.
//!
//! Two kinds of time: monotonic microseconds for tick arithmetic (never
//! jumps), and wall-clock Unix microseconds for what users read (outage
//! start, mail dates) and what is persisted.
//!
//! Durations that outlive one tick (reminders, escalation, reports, the
//! Alertmanager repeat, acks and silences) are measured on a [`Timeline`]:
//! wall time at start, moved on by the monotonic clock only. A step of the
//! wall clock (NTP, a VM restore, `date -s`) neither pauses them nor fires
//! them in a burst. What they keep on disk is wall time, converted with
//! the [`Timeline::offset`] of the moment they are saved (and saved again
//! when the wall clock steps); at the next start the timeline begins at
//! the wall clock again, so the saved values are read as they are.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (wall clock).
pub type UnixMicros = i64;
/// Microseconds on a monotonic clock with an arbitrary origin.
pub type MonoMicros = u64;

pub const MICROS: u64 = 1_000_000;

pub trait Clock: Send + Sync {
    fn mono(&self) -> MonoMicros;
    fn wall(&self) -> UnixMicros;
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }

    /// The `Instant` a monotonic reading stands for (to sleep until it).
    pub fn instant(&self, at: MonoMicros) -> Instant {
        self.origin + std::time::Duration::from_micros(at)
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

/// The clock the daemon's loop runs on: the system clock in the daemon,
/// a [`ManualClock`] in `picomon simulate`. One type for both, so the
/// executable holds one copy of the loop instead of one per clock.
pub type SharedClock = Arc<dyn Clock>;

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn mono(&self) -> MonoMicros {
        (**self).mono()
    }
    fn wall(&self) -> UnixMicros {
        (**self).wall()
    }
}

impl Clock for SystemClock {
    fn mono(&self) -> MonoMicros {
        self.origin.elapsed().as_micros() as u64
    }
    fn wall(&self) -> UnixMicros {
        now_unix_micros()
    }
}

pub fn now_unix_micros() -> UnixMicros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The CPU time the calling thread has used (its own clock, not the
/// process's, not the wall's).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is
    // always available on Linux, and on an error `ts` stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// A clock tests move by hand. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    mono: Arc<AtomicU64>,
    wall: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(wall_start: UnixMicros) -> ManualClock {
        let c = ManualClock::default();
        c.wall.store(wall_start, Ordering::SeqCst);
        c
    }

    pub fn advance(&self, micros: u64) {
        self.mono.fetch_add(micros, Ordering::SeqCst);
        self.wall.fetch_add(micros as i64, Ordering::SeqCst);
    }

    /// Steps the wall clock alone, as NTP or `date -s` do: back when
    /// `micros` is negative. Monotonic time does not move.
    pub fn step_wall(&self, micros: i64) {
        self.wall.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn mono(&self) -> MonoMicros {
        self.mono.load(Ordering::SeqCst)
    }
    fn wall(&self) -> UnixMicros {
        self.wall.load(Ordering::SeqCst)
    }
}

/// One moment on both scales: `wall` for what is shown and for calendar
/// windows (`when`, `maintenance`), `steady` (a [`Timeline`] reading) for
/// every duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub wall: UnixMicros,
    pub steady: UnixMicros,
}

impl Now {
    /// A moment where both scales agree (no step since start): one-shot
    /// runs and tests.
    pub fn at(wall: UnixMicros) -> Now {
        Now { wall, steady: wall }
    }

    /// What to add to a steady time to show or save it as wall time.
    pub fn offset(&self) -> i64 {
        self.wall - self.steady
    }

    /// A steady time as wall time (to show or to save).
    pub fn to_wall(&self, steady: UnixMicros) -> UnixMicros {
        steady.saturating_add(self.offset())
    }

    /// A wall time (an outage start) on the steady scale.
    pub fn to_steady(&self, wall: UnixMicros) -> UnixMicros {
        wall.saturating_sub(self.offset())
    }
}

/// Wall time as it was at the start, moved on by the monotonic clock only:
/// the scale durations are measured on (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    wall0: UnixMicros,
    mono0: MonoMicros,
}

/// A wall clock that moved this much more or less than the monotonic one
/// between two readings was stepped.
pub const STEP: i64 = 1_000_000;

impl Timeline {
    /// Starts at the clock's wall time now.
    pub fn start(clock: &dyn Clock) -> Timeline {
        Timeline {
            wall0: clock.wall(),
            mono0: clock.mono(),
        }
    }

    /// Both readings of `clock` now.
    pub fn now(&self, clock: &dyn Clock) -> Now {
        let elapsed = clock.mono().saturating_sub(self.mono0);
        Now {
            wall: clock.wall(),
            steady: self
                .wall0
                .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX)),
        }
    }
}

pub use picomon_common::hms;

// ---- calendar: the one place civil dates and the local time zone are
// worked out. Local time goes through the C library (localtime_r, mktime),
// which knows the system's zone and its daylight-saving rules; UTC dates
// are plain arithmetic on days. ----

/// A moment's calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
}

/// The calendar fields of Unix seconds in the local time zone; `None` when
/// the C library cannot convert it (a year beyond its range).
pub fn local_civil(unix: i64) -> Option<Civil> {
    let secs = libc::time_t::try_from(unix).ok()?;
    // SAFETY: libc::tm is plain integers (and on glibc a pointer that
    // localtime_r sets), for which all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r is the re-entrant form: it reads only `secs` and
    // the process's time zone (which picomon never changes) and writes only
    // into `tm`, which we own; both pointers are valid for the call.
    let done = unsafe { libc::localtime_r(&secs, &mut tm) };
    if done.is_null() {
        return None;
    }
    Some(Civil {
        year: i64::from(tm.tm_year) + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
        minute: tm.tm_min as u8,
        second: tm.tm_sec as u8,
        weekday: ((tm.tm_wday + 6) % 7) as u8,
    })
}

/// The calendar fields of Unix seconds in UTC.
pub fn utc_civil(unix: i64) -> Civil {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        // 1970-01-01 was a Thursday (3 counting from Monday = 0).
        weekday: (days + 3).rem_euclid(7) as u8,
    }
}

/// Unix seconds of a local civil time (daylight saving worked out by the C
/// library; a time skipped by a clock change moves forward). `None` when
/// the fields are out of range or the C library cannot convert them.
pub fn local_to_unix(
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
) -> Option<i64> {
    // SAFETY: plain integers (see local_civil): all-zero is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::try_from(year - 1900).ok()?;
    tm.tm_mon = i32::from(month) - 1;
    tm.tm_mday = i32::from(day);
    tm.tm_hour = i32::from(hour);
    tm.tm_min = i32::from(minute);
    tm.tm_sec = i32::from(second);
    tm.tm_isdst = -1;
    // SAFETY: mktime reads and normalises only the struct we own, and reads
    // the process's time zone, which picomon never changes.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the civil-days
/// algorithm published by Howard Hinnant).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01: the
/// inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as u8, d as u8)
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD` of Unix seconds (UTC).
pub fn utc_date(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Local-time `YYYY-MM-DD HH:MM:SS` for a Unix time, for dumps and mails.
pub fn local_datetime(at: UnixMicros) -> String {
    let secs = at.div_euclid(1_000_000);
    match local_civil(secs) {
        Some(c) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ),
        None => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_sleeping_thread_uses_no_cpu_time_and_a_busy_one_does() {
        let before = thread_cpu_time();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let slept = thread_cpu_time() - before;
        // Sleeping costs the thread next to nothing, however loaded the
        // machine: a wall-clock deadline would have counted 200 ms here.
        assert!(slept < std::time::Duration::from_millis(100), "{slept:?}");
        let before = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() - before < std::time::Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(x > 0);
    }
    use super::*;

    #[test]
    fn hms_formats_hours_minutes_seconds() {
        assert_eq!(hms(0), "0:00:00");
        assert_eq!(hms(61_000_000), "0:01:01");
        assert_eq!(
            hms((3 * 3600 + 7 * 60 + 9) * 1_000_000 + 999_999),
            "3:07:09"
        );
        assert_eq!(hms(-5), "0:00:00");
    }

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(-1), "1969-12-31");
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m), "{y}-{m}-{d}");
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[test]
    fn utc_fields_and_weekday() {
        // 2024-02-29 13:14:15 UTC, a Thursday.
        let c = utc_civil(1_709_212_455);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second, c.weekday),
            (2024, 2, 29, 13, 14, 15, 3)
        );
        assert_eq!(utc_civil(-86_400).weekday, 2);
    }

    #[test]
    fn local_time_round_trips_through_the_c_library() {
        // Whatever the zone: local fields of a moment convert back to it
        // (2024-02-29 12:00 UTC is near no daylight-saving change).
        let noon = 1_709_208_000;
        let c = local_civil(noon).expect("local time");
        let back = local_to_unix(c.year, c.month, c.day, c.hour, c.minute, c.second);
        assert_eq!(back, Some(noon));
    }

    #[test]
    fn the_timeline_follows_monotonic_time_through_wall_steps() {
        let c = ManualClock::new(1_000_000_000);
        let line = Timeline::start(&c);
        assert_eq!(line.now(&c), Now::at(1_000_000_000));
        c.advance(5);
        c.step_wall(-3_600_000_000);
        let now = line.now(&c);
        assert_eq!(now.steady, 1_000_000_005);
        assert_eq!(now.wall, 1_000_000_005 - 3_600_000_000);
        assert_eq!(now.offset(), -3_600_000_000);
        assert_eq!(now.to_wall(now.steady + 7), now.wall + 7);
        assert_eq!(now.to_steady(now.wall - 7), now.steady - 7);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(1_000);
        let b = a.clone();
        a.advance(5);
        assert_eq!(b.mono(), 5);
        assert_eq!(b.wall(), 1_005);
    }
}
