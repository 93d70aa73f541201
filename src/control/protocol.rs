//! The control socket's JSON lines: one [`Request`] per line in, one
//! [`Response`] per line out. Scripts may speak it without the CLI:
//!
//! ```text
//! {"cmd":"status"}
//! {"cmd":"status","only":"web*","problems":true}
//! {"cmd":"status","document":true}
//! {"cmd":"check","check":"http on web1"}
//! {"cmd":"reload"}
//! {"cmd":"run","check":"http"}
//! {"cmd":"ack","check":"http","comment":"on it","for_secs":3600,"sticky":false}
//! {"cmd":"silence","pattern":"web1*","for_secs":3600,"comment":"deploy"}
//! {"cmd":"silences"}
//! {"cmd":"unsilence","id":"3"}
//! {"cmd":"unack","check":"http"}
//! {"cmd":"ping","check":"nightly backup","exit":1,"message":"disk full"}
//! ```
//! An answer with `error` set failed; `message` is the line for a person.
//! A `status` with `document` is answered with a head line,
//! `{"document":{"problem":false}}` (`problem`: a check listed is in
//! PROBLEM), then the very text `picomon status --json` prints (the JSON,
//! `"daemon": true` first, pretty-printed over many lines, and a line
//! feed), then the line [`DOCUMENT_END`]; then the daemon closes the
//! connection. The CLI copies the text out as it comes, without reading it
//! into structures; a text cut short lacks the last line.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::quiet::Silence;
use crate::clock::UnixMicros;
use crate::model::heartbeat::{Ping, PingKind};
use crate::model::Status;

/// The longest request line taken; a longer one gets an error answer.
pub const MAX_LINE: usize = 64 * 1024;

/// The silence length when none is given.
pub const DEFAULT_SILENCE_SECS: u64 = 3600;

fn default_silence() -> u64 {
    DEFAULT_SILENCE_SECS
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Every check's line, or those matching `only` (a glob on the name,
    /// identity, target or `NAME on TARGET`) and, with `problems`, only
    /// those not OK.
    Status {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        only: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        problems: bool,
        /// Answered as [`DocumentHead`] and the document (see the module
        /// comment).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        document: bool,
    },
    /// One check in full (`picomon status CHECK`).
    Check {
        check: String,
    },
    Reload,
    Run {
        check: String,
    },
    Ack {
        check: String,
        #[serde(default)]
        comment: String,
        #[serde(default)]
        for_secs: Option<u64>,
        #[serde(default)]
        sticky: bool,
        /// `picomon mail-in`: the address whose reply this is; the ack is
        /// then "ADDRESS by mail" instead of the caller's user name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_from: Option<String>,
    },
    /// Ends a check's acknowledgement.
    Unack {
        check: String,
        /// As [`Request::Ack`]'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_from: Option<String>,
    },
    Silence {
        pattern: String,
        #[serde(default = "default_silence")]
        for_secs: u64,
        #[serde(default)]
        comment: String,
        /// As [`Request::Ack`]'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_from: Option<String>,
    },
    Silences,
    Unsilence {
        id: String,
    },
    /// A heartbeat check's ping: a start, a failure, a job's exit status
    /// or a Nagios status (a passive result); else success.
    Ping {
        check: String,
        #[serde(default)]
        start: bool,
        #[serde(default)]
        fail: bool,
        #[serde(default)]
        exit: Option<u8>,
        #[serde(default)]
        nagios: Option<u8>,
        #[serde(default)]
        message: String,
    },
}

impl Request {
    /// `{"cmd":"status"}`: every check.
    pub const ALL: Request = Request::Status {
        only: None,
        problems: false,
        document: false,
    };

    /// The command's name, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status { .. } => "status",
            Request::Check { .. } => "check",
            Request::Reload => "reload",
            Request::Run { .. } => "run",
            Request::Ack { .. } => "ack",
            Request::Unack { .. } => "unack",
            Request::Silence { .. } => "silence",
            Request::Silences => "silences",
            Request::Unsilence { .. } => "unsilence",
            Request::Ping { .. } => "ping",
        }
    }
}

/// Who did it, for the record and the ack mail: the caller's user name,
/// or "ADDRESS by mail" for a request `picomon mail-in` made.
pub fn actor(user: &str, mail_from: Option<&str>) -> String {
    match mail_from {
        Some(addr) => format!("{addr} by mail"),
        None => user.to_string(),
    }
}

/// The ping a [`Request::Ping`] stands for.
pub fn ping_of(
    start: bool,
    fail: bool,
    exit: Option<u8>,
    nagios: Option<u8>,
    message: &str,
) -> Ping {
    let message = crate::model::heartbeat::tail(message).to_string();
    let done = |status| Ping {
        kind: PingKind::Done(status),
        message: message.clone(),
    };
    if start {
        Ping {
            kind: PingKind::Start,
            message,
        }
    } else if fail {
        done(Status::Critical)
    } else if let Some(code) = exit {
        Ping::exit(i32::from(code), message)
    } else if let Some(code) = nagios {
        done(Status::from_code(i32::from(code)).unwrap_or(Status::Unknown))
    } else {
        done(Status::Ok)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The line to print.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `run`: the status code of the run (the CLI's exit code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silences: Option<Vec<Silence>>,
    /// `check`: the one check asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDetail>,
    /// `status` with `document`: the document follows on the next line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentHead>,
}

/// The line after a document: a text cut short does not end with it.
pub const DOCUMENT_END: &[u8] = b"{\"end\":true}\n";

/// The head of a `status` answered as a document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentHead {
    /// A check in the document is in PROBLEM (`status`'s exit code 1).
    pub problem: bool,
}

/// One check in full: its status line plus what the table leaves out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckDetail {
    #[serde(flatten)]
    pub status: CheckStatus,
    /// The last output, every line, perfdata included.
    pub full_output: String,
    /// The checks it depends on (`depends_on`), as "name on target", with
    /// their phase.
    pub depends_on: Vec<Dependency>,
    /// The thread (mail `Message-ID` root, channels' `thread`) of the
    /// outage in progress; null when OK.
    pub thread: Option<String>,
    /// Seconds the last runs took, oldest first (kept while the HTTP
    /// listener is on; else empty).
    pub recent_durations: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub check: String,
    pub phase: String,
}

impl Response {
    pub fn error(text: impl Into<String>) -> Response {
        Response {
            error: Some(text.into()),
            ..Response::default()
        }
    }

    pub fn message(text: impl Into<String>) -> Response {
        Response {
            message: Some(text.into()),
            ..Response::default()
        }
    }
}

/// Which checks a `status` answer lists.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter<'a> {
    /// A glob on the name, identity, target or `NAME on TARGET`.
    pub only: Option<&'a str>,
    /// Only checks not OK (retrying, unreachable or in PROBLEM).
    pub problems: bool,
}

impl Filter<'_> {
    pub fn keeps(&self, c: &CheckStatus) -> bool {
        self.admits(
            c.phase == "ok",
            crate::alert::quiet::Subject {
                id: &c.id,
                name: &c.name,
                dest: &c.target,
            },
        )
    }

    /// Whether a check `ok` (or not) and named so is kept.
    pub fn admits(&self, ok: bool, subject: crate::alert::quiet::Subject) -> bool {
        (!self.problems || !ok) && self.only.is_none_or(|p| subject.matches(p))
    }
}

/// What `status` shows (and `status --json` prints).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub checks: Vec<CheckStatus>,
    pub outbox: Outbox,
    pub silences: Vec<Silence>,
    /// When the loop published it (Unix seconds).
    pub at: i64,
}

/// One check's line. The loop's strings are shared, not copied: the
/// identity, name and target are the check's own, the output the last
/// one kept (when it is one line), the phase and status constants.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub target: Arc<str>,
    /// `ok`, `retrying` or `problem`.
    pub phase: Cow<'static, str>,
    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`, or null before the first run.
    pub status: Option<Cow<'static, str>>,
    pub failed_runs: u32,
    /// Failed runs that make a Problem (retry + 1).
    pub max_runs: u32,
    /// Unix seconds: the first failed run of the streak.
    pub since: Option<i64>,
    /// Unix seconds.
    pub last_run: Option<i64>,
    /// Seconds the last run took.
    pub duration: Option<f64>,
    /// The first line of the last output.
    pub output: Arc<str>,
    pub ack: Option<AckView>,
    pub silenced_by: Option<String>,
    /// Phase `unreachable`: the failing check ("name on target") it
    /// depends on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_by: Option<String>,
    /// Percent state change over the last 21 runs; null when flap
    /// detection is off for the check.
    #[serde(default)]
    pub flap_percent: Option<f32>,
    #[serde(default)]
    pub flapping: bool,
    /// This picomon announced the current outage (a standby that stands
    /// by, or an outage a peer announced, says false): what a `peer()` of
    /// it reads so that one of two picomons carries each thread.
    #[serde(default)]
    pub announced: bool,
    /// Percent of the time not in an outage over the last 24 h, 7 d and
    /// 30 d, from the outage log; the time before the check was first
    /// seen and its maintenance windows are not counted (null: nothing
    /// counted yet).
    #[serde(default)]
    pub availability: crate::history::Availability,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckView {
    pub by: String,
    pub comment: String,
    /// Unix seconds; null = until recovery.
    pub until: Option<i64>,
}

/// The mail outbox, as the notifier describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pub lines: Vec<String>,
}

pub fn unix_secs(at: UnixMicros) -> i64 {
    at.div_euclid(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_from_json_lines_with_defaults() {
        let r: Request = serde_json::from_str(r#"{"cmd":"silence","pattern":"web1*"}"#).unwrap();
        assert_eq!(
            r,
            Request::Silence {
                pattern: "web1*".into(),
                for_secs: 3600,
                comment: String::new(),
                mail_from: None,
            }
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"status"}"#).unwrap();
        assert_eq!(r, Request::ALL);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"cmd":"status"}"#);
        let r: Request =
            serde_json::from_str(r#"{"cmd":"status","only":"web*","problems":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Status {
                only: Some("web*".into()),
                problems: true,
                document: false,
            }
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"status","document":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Status {
                only: None,
                problems: false,
                document: true,
            }
        );
        for bad in [
            r#"{"cmd":"rm -rf"}"#,
            r#"{"cmd":"run"}"#,
            r#"{"cmd":"ack","check":"x","by":"someone else"}"#,
            r#"{"cmd":"http"}"#,
            "[]",
            "",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_error_answer_is_one_small_object() {
        assert_eq!(
            serde_json::to_string(&Response::error("permission denied")).unwrap(),
            r#"{"error":"permission denied"}"#
        );
    }
}
