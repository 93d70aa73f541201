//! Restart backoff: 1 s doubling to 5 min, back to 1 s after 10 minutes of
//! good running. Pure, so it is tested without waiting.

use std::time::Duration;

pub const FIRST: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(300);
pub const GOOD_RUN: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next start, given how long the child ran.
    pub fn after_run(&mut self, ran: Duration) -> Duration {
        if ran >= GOOD_RUN {
            self.next = FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_five_minutes_and_resets_after_a_good_run() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(2);
        let waits: Vec<u64> = (0..11).map(|_| b.after_run(short).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(b.after_run(Duration::from_secs(601)), FIRST);
        assert_eq!(b.after_run(short), Duration::from_secs(2));
    }
}
