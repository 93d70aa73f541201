//! The run durations the status page draws as a sparkline, kept per check
//! by the loop while `config.listen` is set, and copied into each
//! published snapshot.
//!
//! A duration is kept as one byte: a step on a log scale of ten steps per
//! doubling (each 7.2 % above the one before) from 1 ms up to some 13 h.
//! What is read back is the middle of the step (3.5 % off at most),
//! rounded to three significant digits: within 4 % of the real duration
//! (shorter than 1 ms reads 1 ms, longer than 13 h reads 13 h). A
//! sparkline 22 pixels high cannot show the difference, and `picomon
//! status CHECK` prints the last run's own time beside them. So a check's
//! ring is 32 bytes, copied into a snapshot as it is.

use std::time::Duration;

/// Durations kept per check for the status page's sparkline.
pub const RECENT: usize = 30;

/// What code 0 stands for, in seconds; every code above is
/// [`STEPS_PER_DOUBLING`]th of a doubling longer.
const FLOOR_SECS: f64 = 0.001;
const STEPS_PER_DOUBLING: f64 = 10.0;

/// A check's last [`RECENT`] run durations, a byte each. Kept only while
/// `config.listen` is set, in one list beside the checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recent {
    codes: [u8; RECENT],
    len: u8,
    next: u8,
}

impl Recent {
    /// Notes a run's duration.
    pub fn push(&mut self, d: Duration) {
        self.codes[self.next as usize] = encode(d.as_secs_f64());
        self.next = ((self.next as usize + 1) % RECENT) as u8;
        self.len = (self.len as usize + 1).min(RECENT) as u8;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Seconds, oldest first (see the module comment for their precision).
    pub fn values(&self) -> Vec<f32> {
        let len = self.len as usize;
        let start = (self.next as usize + RECENT - len) % RECENT;
        (0..len)
            .map(|i| decode(self.codes[(start + i) % RECENT]))
            .collect()
    }
}

/// The step of `secs` (clamped to the scale).
fn encode(secs: f64) -> u8 {
    let steps = (secs / FLOOR_SECS).log2() * STEPS_PER_DOUBLING;
    // NaN (no duration) and anything below the floor read as the floor.
    if steps.is_nan() || steps <= 0.0 {
        0
    } else {
        steps.round().min(255.0) as u8
    }
}

/// The seconds `code` stands for, to three significant digits.
fn decode(code: u8) -> f32 {
    let secs = FLOOR_SECS * (f64::from(code) / STEPS_PER_DOUBLING).exp2();
    let scale = 10f64.powi(2 - secs.log10().floor() as i32);
    ((secs * scale).round() / scale) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Recent>(), 32);
    }

    #[test]
    fn the_ring_keeps_the_last_durations_oldest_first() {
        let mut ring = Recent::default();
        for i in 0..(RECENT + 5) {
            ring.push(Duration::from_secs(i as u64 + 1));
        }
        let v = ring.values();
        assert_eq!(v.len(), RECENT);
        assert_eq!(v[0], 6.21, "6 s, within a step");
        assert_eq!(*v.last().unwrap(), 35.1);
    }

    #[test]
    fn a_young_ring_holds_only_what_was_seen() {
        let mut ring = Recent::default();
        ring.push(Duration::from_millis(250));
        ring.push(Duration::from_millis(500));
        assert_eq!(ring.values(), vec![0.256, 0.512]);
        assert!(Recent::default().is_empty() && Recent::default().values().is_empty());
    }

    #[test]
    fn every_duration_reads_back_within_the_promised_precision() {
        let mut secs = FLOOR_SECS;
        while secs < 40_000.0 {
            let back = f64::from(decode(encode(secs)));
            let off = (back - secs).abs() / secs;
            assert!(off <= 0.04, "{secs} s read back as {back} s ({off:.4})");
            secs *= 1.013;
        }
        // Beyond the scale: its ends.
        assert_eq!(decode(encode(0.0)), 0.001);
        assert_eq!(decode(encode(0.000_01)), 0.001);
        assert_eq!(decode(encode(f64::NAN)), 0.001);
        assert_eq!(encode(1e9), 255);
        assert_eq!(decode(255), 47_500.0);
        // Steps keep their order, each above the one before.
        assert!((1..=255u8).all(|c| decode(c) > decode(c - 1)));
    }
}
