//! Heartbeat (push) checks: `heartbeat(#{ period: "1d", grace: "1h" })`.
//! Nothing is run; something else says "I ran" (a ping), and silence is
//! the failure.
//!
//! ```text
//!  ping (control socket, HTTP /ping/KEY/CHECK, a passive result)
//!    -> Beat::record(ping, now)        the loop, into the check's memory
//!  every run of the check, and right after a ping:
//!    judge(spec, beat, now) -> Outcome  pure, tested on plain numbers
//! ```
//!
//! The [`Beat`] lives in the check's memory (the state file keeps it), so
//! the last ping and an unfinished start survive a restart.

use serde::{Deserialize, Serialize};

use super::{Outcome, Status};
use crate::clock::UnixMicros;

/// The longest message a ping carries (the tail of a job's output); a
/// longer one keeps its end.
pub const MAX_MESSAGE: usize = 10 * 1024;

/// A heartbeat check's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Seconds expected between pings.
    pub period: u64,
    /// Seconds of lateness tolerated, and the longest a started job may run.
    pub grace: u64,
}

/// What one ping says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingKind {
    /// A job started; its end must follow within `grace`.
    Start,
    /// A job ended (or a plain "I'm alive") with this status.
    Done(Status),
}

/// One ping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ping {
    pub kind: PingKind,
    /// Free text for the mail (a job's output, "disk full"); may be empty.
    pub message: String,
}

impl Ping {
    /// The ping for a job's exit status: 0 is success, anything else is a
    /// failure (healthchecks.io's rule, which cron wrappers follow).
    pub fn exit(code: i32, message: impl Into<String>) -> Ping {
        let status = if code == 0 {
            Status::Ok
        } else {
            Status::Critical
        };
        let mut message = message.into();
        if code != 0 {
            message = if message.is_empty() {
                format!("exit status {code}")
            } else {
                format!("exit status {code}: {message}")
            };
        }
        Ping {
            kind: PingKind::Done(status),
            message,
        }
    }

    /// What the ping is, for the answer to its sender.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            PingKind::Start => "start",
            PingKind::Done(Status::Ok) => "success",
            PingKind::Done(_) => "failure",
        }
    }
}

/// `text` cut to its last [`MAX_MESSAGE`] bytes (on a character boundary):
/// a job's last lines say why it failed.
pub fn tail(text: &str) -> &str {
    let text = text.trim_end();
    if text.len() <= MAX_MESSAGE {
        return text;
    }
    let mut from = text.len() - MAX_MESSAGE;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// What a heartbeat check remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// When the check was first judged: "no ping since" counts from here
    /// until the first ping.
    pub since: Option<UnixMicros>,
    /// The last ping that ended a job (or said "alive").
    pub last: Option<UnixMicros>,
    /// Its status and message.
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub message: String,
    /// A start not followed by an end yet.
    pub started: Option<UnixMicros>,
}

impl Beat {
    /// The check's memory as a beat; anything unreadable starts afresh.
    pub fn from_memory(memory: Option<&str>) -> Beat {
        memory
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default()
    }

    pub fn to_memory(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Notes that the check is watched from `now` on (once).
    pub fn watch(&mut self, now: UnixMicros) {
        self.since.get_or_insert(now);
    }

    /// Records a ping arriving at `now`.
    pub fn record(&mut self, ping: Ping, now: UnixMicros) {
        self.watch(now);
        match ping.kind {
            PingKind::Start => self.started = Some(now),
            PingKind::Done(status) => {
                self.started = None;
                self.last = Some(now);
                self.status = Some(status);
                self.message = tail(&ping.message).to_string();
            }
        }
    }
}

const MICROS: i64 = 1_000_000;

/// `86400` as `1d`, `5400` as `1h30m`: periods as the config writes them.
pub fn human(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

/// The check's status at `now`, given what it remembers. Pure: the loop
/// calls it at each run of the check and right after each ping.
pub fn judge(spec: &Heartbeat, beat: &Beat, now: UnixMicros) -> Outcome {
    let secs = |s: u64| (s as i64).saturating_mul(MICROS);
    let at = crate::clock::local_datetime;
    let every = human(spec.period);
    if let Some(started) = beat.started {
        if now > started.saturating_add(secs(spec.grace)) {
            return report(
                Status::Critical,
                format!(
                    "started at {}, never finished (grace {})",
                    at(started),
                    human(spec.grace)
                ),
            );
        }
    }
    let last = beat.last.or(beat.since).unwrap_or(now);
    if now > last.saturating_add(secs(spec.period.saturating_add(spec.grace))) {
        return report(
            Status::Critical,
            format!("no ping since {} (expected every {every})", at(last)),
        );
    }
    let running = beat
        .started
        .map(|s| format!("; running since {}", at(s)))
        .unwrap_or_default();
    match (beat.last, beat.status) {
        (Some(t), Some(status)) => {
            let mut text = format!("last ping {}", at(t));
            if status != Status::Ok {
                text = format!("failure reported at {}", at(t));
            }
            let (first, rest) = match beat.message.split_once('\n') {
                Some((a, b)) => (a, b),
                None => (beat.message.as_str(), ""),
            };
            if !first.is_empty() {
                text.push_str(": ");
                text.push_str(first);
            }
            text.push_str(&format!(" (expected every {every}){running}"));
            let mut out = report(status, text);
            out.long_output = rest.to_string();
            out
        }
        _ => report(
            Status::Ok,
            format!("waiting for the first ping (expected every {every}){running}"),
        ),
    }
}

fn report(status: Status, text: String) -> Outcome {
    Outcome::new(status, format!("HEARTBEAT {status} - {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = MICROS;
    const SPEC: Heartbeat = Heartbeat {
        period: 2,
        grace: 1,
    };

    fn done(status: Status, message: &str) -> Ping {
        Ping {
            kind: PingKind::Done(status),
            message: message.into(),
        }
    }

    #[test]
    fn ok_while_a_ping_came_within_period_plus_grace() {
        let mut b = Beat::default();
        b.watch(0);
        assert_eq!(judge(&SPEC, &b, 3 * S).status, Status::Ok);
        let waiting = judge(&SPEC, &b, 2 * S);
        assert!(waiting.summary.contains("waiting for the first ping"));
        b.record(done(Status::Ok, ""), 2 * S);
        assert_eq!(judge(&SPEC, &b, 5 * S).status, Status::Ok);
    }

    #[test]
    fn silence_longer_than_period_plus_grace_is_critical() {
        let mut b = Beat::default();
        b.watch(0);
        let out = judge(&SPEC, &b, 3 * S + 1);
        assert_eq!(out.status, Status::Critical);
        assert!(out.summary.contains("no ping since"), "{}", out.summary);
        assert!(
            out.summary.contains("(expected every 2s)"),
            "{}",
            out.summary
        );
        b.record(done(Status::Ok, ""), 10 * S);
        assert_eq!(judge(&SPEC, &b, 13 * S).status, Status::Ok);
        assert_eq!(judge(&SPEC, &b, 13 * S + 1).status, Status::Critical);
    }

    #[test]
    fn a_failure_ping_is_critical_with_its_message() {
        let mut b = Beat::default();
        b.record(done(Status::Critical, "disk full\nsecond line"), 0);
        let out = judge(&SPEC, &b, S);
        assert_eq!(out.status, Status::Critical);
        assert!(out.summary.contains("disk full"), "{}", out.summary);
        assert_eq!(out.long_output, "second line");
        let exit = Ping::exit(1, "boom");
        assert_eq!(exit.kind, PingKind::Done(Status::Critical));
        assert_eq!(exit.message, "exit status 1: boom");
        assert_eq!(Ping::exit(0, "fine").kind, PingKind::Done(Status::Ok));
    }

    #[test]
    fn a_start_without_its_end_within_grace_fails() {
        let mut b = Beat::default();
        b.record(done(Status::Ok, ""), 0);
        b.record(
            Ping {
                kind: PingKind::Start,
                message: String::new(),
            },
            S,
        );
        let running = judge(&SPEC, &b, 2 * S);
        assert_eq!(running.status, Status::Ok);
        assert!(
            running.summary.contains("running since"),
            "{}",
            running.summary
        );
        let out = judge(&SPEC, &b, 2 * S + 1);
        assert_eq!(out.status, Status::Critical);
        assert!(out.summary.contains("never finished"), "{}", out.summary);
        b.record(done(Status::Ok, ""), 3 * S);
        assert_eq!(judge(&SPEC, &b, 3 * S).status, Status::Ok);
        assert_eq!(b.started, None);
    }

    #[test]
    fn the_beat_survives_its_memory_form() {
        let mut b = Beat::default();
        b.record(done(Status::Warning, "slow"), 7 * S);
        assert_eq!(Beat::from_memory(Some(&b.to_memory())), b);
        assert_eq!(Beat::from_memory(Some("not json")), Beat::default());
    }

    #[test]
    fn long_messages_keep_their_end() {
        let long = format!("{}END", "é".repeat(MAX_MESSAGE));
        let t = tail(&long);
        assert!(t.len() <= MAX_MESSAGE && t.ends_with("END"));
        assert_eq!(human(86_400), "1d");
        assert_eq!(human(5400), "1h30m");
    }
}
