//! Flap detection: how much a check's status changed over its last 21 runs,
//! weighted towards recent runs, as Nagios computes its "percent state
//! change". Pure: the history is four bytes per check, fed one run at a
//! time.
//!
//! ```text
//!  21 runs -> 20 comparisons, oldest .. newest
//!  weight of comparison i (0 = oldest) = 0.8 + i * 0.4 / 19   (0.8 .. 1.2)
//!  percent = 100 * (sum of the weights of comparisons that changed) / 20
//!
//!  not flapping --percent >= high--> flapping --percent <= low--> not flapping
//!  (between low and high nothing changes: hysteresis)
//! ```
//!
//! With fewer than 21 runs the missing older runs count as "no change".

use serde::{Deserialize, Serialize};

pub use crate::model::FlapSetting;

/// Runs the percentage looks at (Nagios' `MAX_STATE_HISTORY_ENTRIES`).
pub const RUNS: u32 = 21;
/// Comparisons between consecutive runs in the window.
const CHANGES: u32 = RUNS - 1;
const MASK: u32 = (1 << CHANGES) - 1;
/// Set while the check is flapping.
const FLAPPING: u32 = 1 << 31;

/// The weight of the oldest and the newest comparison.
const LOW_WEIGHT: f64 = 0.8;
const HIGH_WEIGHT: f64 = 1.2;

/// The last 20 "did the status change" bits (bit 0 = the newest run) and
/// whether the check is flapping, in one word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FlapHistory(u32);

/// What a run did to the flapping state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlapEvent {
    /// Went to `high` or above: the check is flapping from this run on.
    Started { percent: f64, changes: u32 },
    /// Came down to `low` or below.
    Stopped { percent: f64 },
}

impl FlapHistory {
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn is_flapping(&self) -> bool {
        self.0 & FLAPPING != 0
    }

    /// Status changes among the last 21 runs.
    pub fn changes(&self) -> u32 {
        (self.0 & MASK).count_ones()
    }

    /// The weighted percent state change over the last 21 runs.
    pub fn percent(&self) -> f64 {
        let bits = self.0 & MASK;
        let sum: f64 = (0..CHANGES)
            .filter(|j| bits & (1 << j) != 0)
            // Bit j is comparison CHANGES - 1 - j counted from the oldest.
            .map(|j| {
                let i = f64::from(CHANGES - 1 - j);
                LOW_WEIGHT + i * (HIGH_WEIGHT - LOW_WEIGHT) / f64::from(CHANGES - 1)
            })
            .sum();
        sum * 100.0 / f64::from(CHANGES)
    }

    /// Records one run (`changed`: its status differs from the run
    /// before) and decides about flapping with `setting`. Off forgets the
    /// flapping state without an event: nobody asked to hear about it.
    pub fn record(&mut self, changed: bool, setting: FlapSetting) -> Option<FlapEvent> {
        let flapping = self.0 & FLAPPING;
        self.0 = flapping | ((self.0 << 1) & MASK) | u32::from(changed);
        let FlapSetting::On { low, high } = setting else {
            self.0 &= !FLAPPING;
            return None;
        };
        let percent = self.percent();
        if !self.is_flapping() && percent >= f64::from(high) {
            self.0 |= FLAPPING;
            return Some(FlapEvent::Started {
                percent,
                changes: self.changes(),
            });
        }
        if self.is_flapping() && percent <= f64::from(low) {
            self.0 &= !FLAPPING;
            return Some(FlapEvent::Stopped { percent });
        }
        None
    }

    /// Keeps the check flapping one more run (its state is not settled
    /// enough to say what it is now).
    pub fn stay_flapping(&mut self) {
        self.0 |= FLAPPING;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(changes: &[bool]) -> FlapHistory {
        let mut h = FlapHistory::default();
        for &c in changes {
            h.record(c, FlapSetting::Off);
        }
        h
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// The weights by hand: comparison i of 20 (0 = oldest) weighs
    /// 0.8 + 0.4 i / 19.
    #[test]
    fn percent_matches_values_computed_by_hand() {
        // Nothing changed: 0 %.
        assert_eq!(history(&[false; 30]).percent(), 0.0);
        // Every run changed: the weights average 1.0, so 100 %.
        assert!(close(history(&[true; 20]).percent(), 100.0));
        // Only the newest run changed: 1.2 / 20 = 6 %.
        assert!(close(history(&[true]).percent(), 6.0));
        // Only the oldest of the window changed (then 19 steady runs):
        // 0.8 / 20 = 4 %.
        let mut seq = vec![true];
        seq.extend([false; 19]);
        assert!(close(history(&seq).percent(), 4.0));
        // One more steady run pushes it out of the window.
        seq.push(false);
        assert_eq!(history(&seq).percent(), 0.0);
        // The newest three changed: (1.2 + (0.8 + 0.4*18/19)
        // + (0.8 + 0.4*17/19)) / 20 * 100 = (3.6 - 0.4*3/19) * 5
        // = 17.684210526...
        assert!(close(
            history(&[true, true, true]).percent(),
            (3.6 - 1.2 / 19.0) * 5.0
        ));
        // Every other run over 20 comparisons (newest changed): weights
        // of i = 19, 17, ..., 1: 10 * 0.8 + 0.4/19 * (1+3+...+19) =
        // 8 + 0.4 * 100 / 19; percent = that * 5 = 50.526315...
        let alt: Vec<bool> = (0..20).map(|i| i % 2 == 1).collect();
        assert!(close(history(&alt).percent(), (8.0 + 40.0 / 19.0) * 5.0));
        assert_eq!(history(&alt).changes(), 10);
    }

    #[test]
    fn a_check_toggling_every_run_flaps_at_the_sixth_change() {
        // Changes 1..5 give 6, 11.9, 17.7, 23.4, 28.9 %; the sixth 34.4 %.
        let mut h = FlapHistory::default();
        let mut events = vec![];
        for run in 1..=10 {
            if let Some(e) = h.record(true, FlapSetting::default()) {
                events.push((run, e));
            }
        }
        assert_eq!(events.len(), 1, "{events:?}");
        let (run, FlapEvent::Started { percent, changes }) = events[0] else {
            panic!("{events:?}")
        };
        assert_eq!((run, changes), (6, 6));
        let by_hand: f64 = (14..20)
            .map(|i| 0.8 + 0.4 * f64::from(i) / 19.0)
            .sum::<f64>()
            * 5.0;
        assert!(close(percent, by_hand), "{percent} vs {by_hand}");
        assert!(h.is_flapping());
    }

    #[test]
    fn flapping_stops_at_or_below_low_not_between() {
        let mut h = history(&[true; 20]);
        h.stay_flapping();
        let mut stopped_after = None;
        for steady in 1..=20 {
            match h.record(false, FlapSetting::default()) {
                Some(FlapEvent::Stopped { percent }) => {
                    assert!(percent <= 20.0);
                    stopped_after = Some(steady);
                    break;
                }
                Some(e) => panic!("{e:?}"),
                // Still flapping while above 20 %, even under 30 %.
                None => assert!(h.is_flapping()),
            }
        }
        // After s steady runs the changes left weigh the oldest 20 - s
        // comparisons: 0.8 + ... ; 5 of them make 4.21 (21.05 %), 4 make
        // 3.326 (16.6 %): it stops after 16 steady runs.
        assert_eq!(stopped_after, Some(16));
        assert!(!h.is_flapping());
    }

    #[test]
    fn off_never_flaps_and_forgets() {
        let mut h = FlapHistory::default();
        h.stay_flapping();
        for _ in 0..30 {
            assert_eq!(h.record(true, FlapSetting::Off), None);
        }
        assert!(!h.is_flapping());
        assert!(close(h.percent(), 100.0));
    }

    #[test]
    fn custom_thresholds() {
        let on = FlapSetting::On {
            low: 5.0,
            high: 10.0,
        };
        let mut h = FlapHistory::default();
        assert_eq!(h.record(true, on), None); // 6 %
        assert!(matches!(
            h.record(true, on),
            Some(FlapEvent::Started { changes: 2, .. })
        ));
    }

    #[test]
    fn history_round_trips_as_one_number() {
        let mut h = history(&[true, false, true]);
        h.stay_flapping();
        let json = serde_json::to_string(&h).unwrap();
        let back: FlapHistory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        assert!(back.is_flapping());
        assert_eq!(std::mem::size_of::<FlapHistory>(), 4);
    }
}
