//! The one place time comes from, so the scheduler and the alert state
//! machine can be driven by a manual clock in tests.
//!
//! Two kinds of time: monotonic microseconds for tick arithmetic (never
//! jumps), and wall-clock Unix microseconds for what users read (outage
//! start, mail dates) and what is persisted.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
}

impl Clock for ManualClock {
    fn mono(&self) -> MonoMicros {
        self.mono.load(Ordering::SeqCst)
    }
    fn wall(&self) -> UnixMicros {
        self.wall.load(Ordering::SeqCst)
    }
}

/// `H:MM:SS` for a duration in microseconds (negative counts as zero).
pub fn hms(micros: i64) -> String {
    let s = micros.max(0) / 1_000_000;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Local-time `YYYY-MM-DD HH:MM:SS` for a Unix time, for dumps and mails.
pub fn local_datetime(at: UnixMicros) -> String {
    let secs = (at.div_euclid(1_000_000)) as libc::time_t;
    // SAFETY: localtime_r writes into the tm we own and reads only `secs`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("@{}", secs);
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
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
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(1_000);
        let b = a.clone();
        a.advance(5);
        assert_eq!(b.mono(), 5);
        assert_eq!(b.wall(), 1_005);
    }
}
