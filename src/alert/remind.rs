//! Reminders (`renotify_every`) and escalation (`escalate`): when a check
//! that stays in PROBLEM is mailed again, and to whom. Pure: the state of
//! one outage and `now` in, what is due out.
//!
//! ```text
//!  Problem mailed at P ----- P+every: reminder 1 ----- P+2 every: reminder 2 ...
//!     (an Update mailed at U starts the count again from U)
//!     (late ticks do not bunch reminders: missed ones are skipped)
//!  outage start S -- S+after_1: thread escalated to to_1 -- S+after_2: to_2 ...
//!  acknowledged or silenced: neither reminders nor new escalation steps;
//!     when it ends, one reminder at once, the next a full interval later
//! ```
//!
//! Every time here but `outage_start` is a steady time (see
//! [`crate::clock::Timeline`]): an interval is monotonic time, so a step of
//! the wall clock neither stops reminders nor sends a burst of them.
//! [`Nag::as_wall`] converts for the state file, which holds wall time.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMicros;
pub use crate::model::Escalation;

/// What the loop keeps of one outage's reminders and escalation (only for
/// checks in PROBLEM that have either configured; persisted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nag {
    /// The outage this belongs to (its wall-clock start, as the alert state
    /// has it: an identity, not a time to measure from).
    pub outage_start: UnixMicros,
    /// When the outage began, steady: escalation counts from it. `None` in
    /// state files written before it was kept: `outage_start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<UnixMicros>,
    /// When the last mail of the thread went out (or the last reminder was
    /// due): the next reminder is due `every` later.
    pub anchor: UnixMicros,
    /// Reminders sent in this outage.
    #[serde(default)]
    pub reminders: u32,
    /// Escalation steps reached.
    #[serde(default)]
    pub escalated: u32,
    /// Acknowledged or silenced at the last tick: a reminder due when
    /// that ends counts the next interval from itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

impl Nag {
    /// The nag of the outage that began at `outage_start` (wall) and
    /// `since` (steady), whose Problem was mailed at `mailed_at` (steady).
    pub fn new(outage_start: UnixMicros, since: UnixMicros, mailed_at: UnixMicros) -> Nag {
        Nag {
            outage_start,
            since: Some(since),
            anchor: mailed_at,
            reminders: 0,
            escalated: 0,
            held: false,
        }
    }

    /// When the outage began (steady).
    pub fn since(&self) -> UnixMicros {
        self.since.unwrap_or(self.outage_start)
    }

    /// The same nag with its steady times moved by `offset` (to wall time
    /// for the state file: [`crate::clock::Now::offset`]).
    pub fn as_wall(&self, offset: i64) -> Nag {
        Nag {
            since: Some(self.since().saturating_add(offset)),
            anchor: self.anchor.saturating_add(offset),
            ..self.clone()
        }
    }

    /// A reminder due now: counts it and moves the anchor to the last due
    /// time not after `now` (missed ones are skipped, not sent in a burst),
    /// or to `now` after an ack or silence ([`Nag::hold`]).
    /// Returns its number (1 for the first).
    pub fn remind(&mut self, every_secs: u64, now: UnixMicros) -> Option<u32> {
        let held = std::mem::take(&mut self.held);
        let every = i64::try_from(every_secs).ok()?.checked_mul(1_000_000)?;
        if every <= 0 || now < self.anchor.saturating_add(every) {
            return None;
        }
        let periods = (now - self.anchor) / every;
        self.anchor = if held {
            now
        } else {
            self.anchor + periods * every
        };
        self.reminders += 1;
        Some(self.reminders)
    }

    /// The check is acknowledged or silenced at this tick: no reminder
    /// while it is; the one due when it ends goes out at once and the next
    /// a full interval after it. Without this the reminders would keep the
    /// grid of the Problem mail, and the one due when an ack ended could be
    /// followed by the next within seconds.
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Another mail of the thread went out (an Update): the next reminder
    /// is a full interval after it.
    pub fn mailed(&mut self, now: UnixMicros) {
        self.anchor = now;
    }

    /// Escalation steps reached by now that were not reached before:
    /// their positions in `steps`.
    pub fn escalate(&mut self, steps: &[Escalation], now: UnixMicros) -> std::ops::Range<usize> {
        let from = self.escalated as usize;
        let outage = now - self.since();
        let to = from
            + steps
                .iter()
                .skip(from)
                .take_while(|s| outage >= (s.after as i64).saturating_mul(1_000_000))
                .count();
        self.escalated = to as u32;
        from..to
    }

    /// Every address the thread has been escalated to, in step order,
    /// without duplicates.
    pub fn recipients(&self, steps: &[Escalation]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in steps.iter().take(self.escalated as usize) {
            for a in &s.to {
                if !out.contains(a) {
                    out.push(a.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const T: i64 = 1_700_000_000 * S;

    #[test]
    fn reminders_every_interval_after_the_problem_mail() {
        let mut n = Nag::new(T - 2 * S, T - 2 * S, T);
        assert_eq!(n.remind(3, T + 2 * S), None);
        assert_eq!(n.remind(3, T + 3 * S), Some(1));
        assert_eq!(n.remind(3, T + 4 * S), None);
        assert_eq!(n.remind(3, T + 5 * S), None);
        // Due at T+6; the tick came late, at T+6.9: the next stays T+9.
        assert_eq!(n.remind(3, T + 6 * S + 900_000), Some(2));
        assert_eq!(n.remind(3, T + 8 * S + 999_999), None);
        assert_eq!(n.remind(3, T + 9 * S), Some(3));
    }

    #[test]
    fn a_stalled_loop_sends_one_reminder_not_a_burst() {
        let mut n = Nag::new(T, T, T);
        assert_eq!(n.remind(3, T + 20 * S), Some(1));
        // Anchor moved to T+18: the next is due at T+21.
        assert_eq!(n.remind(3, T + 20 * S), None);
        assert_eq!(n.remind(3, T + 21 * S), Some(2));
    }

    #[test]
    fn an_update_restarts_the_interval() {
        let mut n = Nag::new(T, T, T);
        n.mailed(T + 2 * S);
        assert_eq!(n.remind(3, T + 3 * S), None);
        assert_eq!(n.remind(3, T + 5 * S), Some(1));
    }

    #[test]
    fn zero_interval_never_reminds() {
        let mut n = Nag::new(T, T, T);
        assert_eq!(n.remind(0, T + 100 * S), None);
    }

    fn steps() -> Vec<Escalation> {
        vec![
            Escalation {
                after: 5,
                to: vec!["lead@example.org".into()],
            },
            Escalation {
                after: 60,
                to: vec!["boss@example.org".into(), "lead@example.org".into()],
            },
        ]
    }

    #[test]
    fn escalation_steps_from_the_outage_start() {
        let steps = steps();
        let mut n = Nag::new(T, T, T + S);
        assert_eq!(n.escalate(&steps, T + 4 * S), 0..0);
        assert!(n.recipients(&steps).is_empty());
        assert_eq!(n.escalate(&steps, T + 5 * S), 0..1);
        assert_eq!(n.recipients(&steps), vec!["lead@example.org"]);
        // Reached once only.
        assert_eq!(n.escalate(&steps, T + 6 * S), 1..1);
        assert_eq!(n.escalate(&steps, T + 61 * S), 1..2);
        assert_eq!(
            n.recipients(&steps),
            vec!["lead@example.org", "boss@example.org"]
        );
        // A loop that was stopped a long time reaches both at once.
        let mut n = Nag::new(T, T, T);
        assert_eq!(n.escalate(&steps, T + 3600 * S), 0..2);
    }
}
