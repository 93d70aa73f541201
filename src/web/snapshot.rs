//! The run durations the status page draws, kept per check by the loop.
//! What the listener shows is the loop's published
//! [`crate::control::Snapshot`], read without asking the loop.

use std::time::Duration;

/// Days in the status page's availability bar.
pub const DAYS: usize = 30;

/// Durations kept per check for the status page's sparkline.
pub const RECENT: usize = 30;

/// A check's last [`RECENT`] run durations. Kept only while
/// `config.listen` is set, in the part of a check's state that most checks
/// do not allocate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recent {
    secs: [f32; RECENT],
    len: u8,
    next: u8,
}

impl Recent {
    /// Notes a run's duration in `slot`: creates the ring when `keep`,
    /// drops it when not.
    pub fn record(slot: &mut Option<Recent>, keep: bool, d: Duration) {
        if !keep {
            *slot = None;
            return;
        }
        slot.get_or_insert_with(Recent::default)
            .push(d.as_secs_f32());
    }

    fn push(&mut self, secs: f32) {
        self.secs[self.next as usize] = secs;
        self.next = ((self.next as usize + 1) % RECENT) as u8;
        self.len = (self.len as usize + 1).min(RECENT) as u8;
    }

    /// Oldest first.
    pub fn values(&self) -> Vec<f32> {
        let len = self.len as usize;
        let start = (self.next as usize + RECENT - len) % RECENT;
        (0..len).map(|i| self.secs[(start + i) % RECENT]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_durations_oldest_first() {
        let mut slot = None;
        for i in 0..(RECENT + 5) {
            Recent::record(&mut slot, true, Duration::from_secs(i as u64));
        }
        let v = slot.as_ref().unwrap().values();
        assert_eq!(v.len(), RECENT);
        assert_eq!(v[0], 5.0);
        assert_eq!(*v.last().unwrap(), (RECENT + 4) as f32);
        Recent::record(&mut slot, false, Duration::ZERO);
        assert!(slot.is_none(), "dropped when the listener is off");
    }

    #[test]
    fn a_young_ring_holds_only_what_was_seen() {
        let mut slot = None;
        Recent::record(&mut slot, true, Duration::from_millis(250));
        Recent::record(&mut slot, true, Duration::from_millis(500));
        assert_eq!(slot.unwrap().values(), vec![0.25, 0.5]);
    }
}
