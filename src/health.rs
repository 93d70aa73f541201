//! Is this picomon able to tell anyone? The one rule behind
//! `GET /api/v1/health`, the outward heartbeat (`config.heartbeat`) and
//! the `peer()` probe of another picomon:
//!
//! ```text
//!  loop, after each tick ──publish(Facts)──> BOARD <──read── HTTP thread (/api/v1/health)
//!                                                  <──read── heartbeat thread
//!  healthy = a tick ran within 2 × base_tick + 10 s
//!          and no mail has waited longer than 10 × smtp_retry_timeout
//! ```
//! The readers never ask the loop: a loop that is stuck must show as
//! unhealthy (503, `/fail`), not as a request that times out. A stopped
//! process (SIGSTOP, a dead host) answers nothing at all, which is what
//! the outside service and the peer take as the alarm.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::UnixMicros;

/// A tick later than `LATE_TICKS × base_tick + LATE_SLACK` means the loop
/// is stuck (a tick may start late by the time the previous one took).
const LATE_TICKS: u32 = 2;
const LATE_SLACK: Duration = Duration::from_secs(10);
/// A mail waiting longer than this many `smtp_retry_timeout`s means mail
/// does not flow.
pub const MAIL_STUCK_RETRIES: u32 = 10;

/// The key of a `peer()` outcome's data that lists the identities of the
/// checks whose outage the peer announced (`announced` in its
/// `/api/v1/checks`).
pub const PEER_ANNOUNCED: &str = "peer_announced";

/// What the loop publishes after each tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    pub base_tick: Duration,
    pub smtp_retry_timeout: Duration,
    /// Mails waiting for delivery (outbox and memory).
    pub mail_queued: usize,
    /// When the oldest of them was composed.
    pub mail_oldest: Option<UnixMicros>,
    /// Checks in PROBLEM.
    pub problems: usize,
}

/// The mail part of [`Health`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MailHealth {
    pub queued: usize,
    /// Seconds the oldest waiting mail has waited; `null` when none waits.
    pub oldest_age: Option<f64>,
}

/// The body of `/api/v1/health`, and what `peer()` reads back.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    pub ok: bool,
    pub version: String,
    /// Seconds since the last tick; `null` before the first.
    pub last_tick_age: Option<f64>,
    pub mail: MailHealth,
    pub problems: usize,
    /// Why it is not ok; absent when ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The rule: `facts` as of the last tick, `tick_age` since then (`None`:
/// no tick yet), `now` for the age of the oldest mail.
pub fn judge(facts: &Facts, tick_age: Option<Duration>, now: UnixMicros) -> Health {
    let mail_age = facts
        .mail_oldest
        .map(|at| Duration::from_micros(now.saturating_sub(at).max(0) as u64));
    let late = facts.base_tick * LATE_TICKS + LATE_SLACK;
    let stuck = facts.smtp_retry_timeout * MAIL_STUCK_RETRIES;
    let reason = match (tick_age, mail_age) {
        (None, _) => Some("the loop has not ticked yet (starting)".to_string()),
        (Some(age), _) if age > late => Some(format!(
            "the loop is stuck: its last tick was {} s ago (base_tick {} s)",
            secs(age),
            secs(facts.base_tick)
        )),
        (_, Some(age)) if age > stuck => Some(format!(
            "mail does not flow: {} mails wait, the oldest for {} s \
             (more than {MAIL_STUCK_RETRIES} × smtp_retry_timeout = {} s)",
            facts.mail_queued,
            secs(age),
            secs(stuck)
        )),
        _ => None,
    };
    Health {
        ok: reason.is_none(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        last_tick_age: tick_age.map(|a| round(a.as_secs_f64())),
        mail: MailHealth {
            queued: facts.mail_queued,
            oldest_age: mail_age.map(|a| round(a.as_secs_f64())),
        },
        problems: facts.problems,
        reason,
    }
}

/// Seconds as people write them: `131`, `0.5`.
fn secs(d: Duration) -> String {
    format!("{}", round(d.as_secs_f64()))
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where the loop publishes its [`Facts`]: one per process (one daemon
/// per process), read by threads that must not depend on the loop.
#[derive(Debug, Default)]
pub struct Board {
    last: Mutex<Option<(Instant, Facts)>>,
}

static BOARD: Board = Board {
    last: Mutex::new(None),
};

/// The process's board.
pub fn board() -> &'static Board {
    &BOARD
}

impl Board {
    /// The loop ticked at `at` and this is what it knows.
    pub fn publish(&self, at: Instant, facts: Facts) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((at, facts));
    }

    /// Health as of now.
    pub fn health(&self) -> Health {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now = crate::clock::now_unix_micros();
        match last {
            Some((at, facts)) => judge(&facts, Some(at.elapsed()), now),
            None => judge(&Facts::default(), None, now),
        }
    }

    /// Whether the loop ticked at all since start.
    pub fn started(&self) -> bool {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            base_tick: Duration::from_secs(60),
            smtp_retry_timeout: Duration::from_secs(60),
            ..Facts::default()
        }
    }

    const NOW: UnixMicros = 1_000_000_000_000_000;

    #[test]
    fn a_loop_on_time_with_mail_flowing_is_ok() {
        let mut f = facts();
        f.mail_queued = 2;
        f.mail_oldest = Some(NOW - 599_000_000);
        f.problems = 3;
        let h = judge(&f, Some(Duration::from_secs(59)), NOW);
        assert!(h.ok, "{h:?}");
        assert_eq!(h.reason, None);
        assert_eq!(h.mail.queued, 2);
        assert_eq!(h.mail.oldest_age, Some(599.0));
        assert_eq!(h.problems, 3);
        assert_eq!(h.last_tick_age, Some(59.0));
        let json = serde_json::to_value(&h).unwrap();
        assert!(json.get("reason").is_none(), "{json}");
        assert_eq!(json["mail"]["queued"], 2);
    }

    #[test]
    fn a_late_tick_is_a_stuck_loop() {
        let h = judge(&facts(), Some(Duration::from_secs(131)), NOW);
        assert!(!h.ok);
        let why = h.reason.unwrap();
        assert!(why.contains("stuck") && why.contains("131 s ago"), "{why}");
        assert!(judge(&facts(), Some(Duration::from_secs(130)), NOW).ok);
    }

    #[test]
    fn a_mail_waiting_ten_retries_means_mail_does_not_flow() {
        let mut f = facts();
        f.mail_queued = 1;
        f.mail_oldest = Some(NOW - 601_000_000);
        let h = judge(&f, Some(Duration::from_secs(1)), NOW);
        assert!(!h.ok);
        let why = h.reason.unwrap();
        assert!(why.contains("mail does not flow"), "{why}");
        assert!(why.contains("600 s"), "{why}");
    }

    #[test]
    fn before_the_first_tick_it_is_not_ok_yet() {
        let h = judge(&Facts::default(), None, NOW);
        assert!(!h.ok);
        assert_eq!(h.last_tick_age, None);
        let back: Health = serde_json::from_value(serde_json::to_value(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
