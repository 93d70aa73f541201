//! The alert state machine. Pure: a function of (state, run
//! status, retry, now).
//!
//! ```text
//!   OK --fail--> RETRYING (failed runs < retry + 1) --fail--> PROBLEM
//!    ^              |ok (no transition)                   |  |status change
//!    +--------------+                                     |  +--> Update
//!    +----------------------- ok: Recovery ---------------+
//! ```
//! The (retry + 1)-th consecutive failed run is the Problem; with retry 0
//! the first failure is. A recovery while retrying sends nothing.
//!
//! Beside the machine, the pure decisions about which transitions are
//! announced: [`quiet`] (acks, silences, maintenance), [`deps`] (who is
//! unreachable behind a failing check), [`flap`] (percent state change)
//! and [`remind`] (reminders and escalation).

pub mod deps;
pub mod flap;
pub mod quiet;
pub mod remind;

use serde::{Deserialize, Serialize};

use crate::clock::UnixMicros;
use crate::model::Status;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Ok,
    Retrying,
    Problem,
}

/// The alert state of one check; persisted in the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub phase: Phase,
    /// Consecutive failed runs (of the current outage or retry streak).
    pub failed_runs: u32,
    /// Time of the first failed run of the streak.
    pub outage_start: Option<UnixMicros>,
    /// Status of the last run.
    pub last_status: Option<Status>,
}

impl Default for AlertState {
    fn default() -> Self {
        AlertState {
            phase: Phase::Ok,
            failed_runs: 0,
            outage_start: None,
            last_status: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitionKind {
    /// The check has really failed: first mail of a thread.
    Problem,
    /// The status changed while in PROBLEM (e.g. WARNING to CRITICAL).
    Update,
    /// The first OK run after PROBLEM.
    Recovery,
    /// Still in PROBLEM after `renotify_every` (not acknowledged, not
    /// silenced): a reminder in the thread.
    Reminder,
    /// The outage outlasted an `escalate` step's `after`, unacknowledged:
    /// the thread now also goes to that step's addresses.
    Escalation,
    /// The percent state change went above `flap.high`: no Problem,
    /// Update or Recovery while flapping.
    FlappingStart,
    /// It came down to `flap.low`: with status OK this ends the thread;
    /// failing, it is the Problem of the current outage.
    FlappingStop,
}

impl TransitionKind {
    /// Every kind, in the order digests list them.
    pub const ALL: [TransitionKind; 7] = [
        TransitionKind::Problem,
        TransitionKind::Update,
        TransitionKind::Recovery,
        TransitionKind::Reminder,
        TransitionKind::Escalation,
        TransitionKind::FlappingStart,
        TransitionKind::FlappingStop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Problem => "problem",
            TransitionKind::Update => "update",
            TransitionKind::Recovery => "recovery",
            TransitionKind::Reminder => "reminder",
            TransitionKind::Escalation => "escalation",
            TransitionKind::FlappingStart => "flapping_start",
            TransitionKind::FlappingStop => "flapping_stop",
        }
    }
}

/// A transition the alert machine decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub kind: TransitionKind,
    /// Status of the run that caused it.
    pub status: Status,
    /// Status of the run before.
    pub previous: Option<Status>,
    /// First failed run of the outage (thread identity).
    pub outage_start: UnixMicros,
    /// Failed runs in the outage so far.
    pub failed_runs: u32,
    /// When the transition happened.
    pub at: UnixMicros,
}

impl Transition {
    /// Whether this transition opens a thread as a Problem does: a Problem,
    /// or "stopped flapping" while failing.
    pub fn opens_outage(&self) -> bool {
        self.kind == TransitionKind::Problem
            || (self.kind == TransitionKind::FlappingStop && self.status != Status::Ok)
    }

    /// Outage length in microseconds at the time of the transition.
    pub fn outage_micros(&self) -> i64 {
        self.at - self.outage_start
    }
}

impl AlertState {
    /// Feeds one run's status; returns the transition it causes, if any.
    pub fn step(&mut self, status: Status, retry: u32, now: UnixMicros) -> Option<Transition> {
        let previous = self.last_status.replace(status);
        if status == Status::Ok {
            let was = std::mem::replace(
                self,
                AlertState {
                    last_status: Some(status),
                    ..AlertState::default()
                },
            );
            return (was.phase == Phase::Problem).then(|| Transition {
                kind: TransitionKind::Recovery,
                status,
                previous,
                outage_start: was.outage_start.unwrap_or(now),
                failed_runs: was.failed_runs,
                at: now,
            });
        }
        self.failed_runs += 1;
        let start = *self.outage_start.get_or_insert(now);
        let transition = |kind| Transition {
            kind,
            status,
            previous,
            outage_start: start,
            failed_runs: self.failed_runs,
            at: now,
        };
        match self.phase {
            Phase::Problem => {
                (previous != Some(status)).then(|| transition(TransitionKind::Update))
            }
            Phase::Ok | Phase::Retrying => {
                if self.failed_runs > retry {
                    self.phase = Phase::Problem;
                    Some(transition(TransitionKind::Problem))
                } else {
                    self.phase = Phase::Retrying;
                    None
                }
            }
        }
    }

    pub fn is_failing(&self) -> bool {
        self.phase != Phase::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;
    use TransitionKind::*;

    const S: i64 = 1_000_000;

    /// Runs a sequence of statuses 60 s apart; returns (run index, kind).
    fn feed(retry: u32, seq: &[Status]) -> (AlertState, Vec<(usize, Transition)>) {
        let mut st = AlertState::default();
        let mut out = vec![];
        for (i, s) in seq.iter().enumerate() {
            if let Some(t) = st.step(*s, retry, 1_000 * S + i as i64 * 60 * S) {
                out.push((i, t));
            }
        }
        (st, out)
    }

    fn kinds(v: &[(usize, Transition)]) -> Vec<(usize, TransitionKind)> {
        v.iter().map(|(i, t)| (*i, t.kind)).collect()
    }

    #[test]
    fn retry_0_first_failure_is_a_problem() {
        let (st, t) = feed(0, &[Ok, Critical, Ok]);
        assert_eq!(kinds(&t), vec![(1, Problem), (2, Recovery)]);
        assert_eq!(st.phase, Phase::Ok);
        assert_eq!(t[0].1.failed_runs, 1);
    }

    #[test]
    fn retry_1_second_failure_is_a_problem() {
        let (_, t) = feed(1, &[Critical, Critical, Critical, Ok]);
        assert_eq!(kinds(&t), vec![(1, Problem), (3, Recovery)]);
        let rec = &t[1].1;
        // Outage started at the first failed run, 3 runs (180 s) before.
        assert_eq!(rec.outage_start, 1_000 * S);
        assert_eq!(rec.outage_micros(), 180 * S);
        assert_eq!(rec.failed_runs, 3);
        assert_eq!(crate::clock::hms(rec.outage_micros()), "0:03:00");
    }

    #[test]
    fn retry_3_needs_four_failures() {
        let (st, t) = feed(3, &[Warning, Warning, Warning]);
        assert!(t.is_empty());
        assert_eq!(st.phase, Phase::Retrying);
        assert_eq!(st.failed_runs, 3);
        let (st, t) = feed(3, &[Warning, Warning, Warning, Warning]);
        assert_eq!(kinds(&t), vec![(3, Problem)]);
        assert_eq!(st.phase, Phase::Problem);
    }

    #[test]
    fn recovery_while_retrying_sends_nothing() {
        let (st, t) = feed(2, &[Critical, Critical, Ok, Critical, Ok]);
        assert!(t.is_empty());
        assert_eq!(
            st,
            AlertState {
                last_status: Some(Ok),
                ..AlertState::default()
            }
        );
    }

    #[test]
    fn warning_critical_ok_is_problem_update_recovery() {
        let (_, t) = feed(0, &[Warning, Critical, Critical, Ok]);
        assert_eq!(kinds(&t), vec![(0, Problem), (1, Update), (3, Recovery)]);
        assert_eq!(t[0].1.status, Warning);
        assert_eq!(t[1].1.status, Critical);
        assert_eq!(t[1].1.previous, Some(Warning));
        // One thread: every transition carries the same outage start.
        assert!(t.iter().all(|(_, x)| x.outage_start == 1_000 * S));
    }

    #[test]
    fn status_change_during_retry_is_not_an_update() {
        let (_, t) = feed(2, &[Warning, Critical, Unknown, Unknown]);
        assert_eq!(kinds(&t), vec![(2, Problem)]);
    }

    #[test]
    fn flapping_below_retry_never_alerts() {
        let seq: Vec<Status> = (0..50)
            .map(|i| if i % 2 == 0 { Critical } else { Ok })
            .collect();
        let (_, t) = feed(1, &seq);
        assert!(t.is_empty());
    }

    #[test]
    fn flapping_with_retry_0_alternates_problem_and_recovery() {
        let (_, t) = feed(0, &[Critical, Ok, Critical, Ok]);
        assert_eq!(
            kinds(&t),
            vec![(0, Problem), (1, Recovery), (2, Problem), (3, Recovery)]
        );
        // Each outage is its own thread.
        assert_ne!(t[0].1.outage_start, t[2].1.outage_start);
    }

    #[test]
    fn second_outage_counts_from_one() {
        let (_, t) = feed(1, &[Critical, Critical, Ok, Critical, Critical, Ok]);
        assert_eq!(
            kinds(&t),
            vec![(1, Problem), (2, Recovery), (4, Problem), (5, Recovery)]
        );
        assert_eq!(t[3].1.failed_runs, 2);
        assert_eq!(t[3].1.outage_start, 1_000 * S + 3 * 60 * S);
    }
}
