//! The outage log: every transition of every check, one JSON line each,
//! in `state_dir/history/YYYY-MM.jsonl` (a file per UTC month), so
//! `picomon history` and the availability figures can say what happened
//! long after the state file forgot it.
//!
//! ```text
//!  loop: transition, ack, silence, maintenance --append--> YYYY-MM.jsonl
//!        (fsync'd with the state; nothing kept in memory but the open
//!        file and a small summary per check for availability)
//!  picomon history: reads the files --outages()--> newest first
//! ```
//!
//! A file starts with one `seen` line per check (when it was first seen,
//! and the outage or maintenance it is in), so the newest files alone say
//! since when a check exists and what was open when the month began.
//! A line that does not parse (the torn last line of a process killed in
//! the middle of a write) is skipped. The files are bounded by age
//! (`config.history_days`) and by size (`config.history_max_mb`): the
//! oldest month goes first.

pub mod availability;
pub mod journal;
pub mod outages;
pub mod recorder;
pub mod report;

use serde::{Deserialize, Serialize};

use crate::clock::UnixMicros;

pub use availability::{Availability, Summary};
pub use journal::{Journal, Limits};
pub use outages::{outages, Outage};
pub use recorder::Recorder;

/// The folder in `state_dir`.
pub const DIR: &str = "history";

/// What a line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The check exists since `since` (first lines of each file, and when
    /// it is added); `outage` and `maintenance` say what it is in at `at`.
    Seen,
    Problem,
    Update,
    Recovery,
    /// Its Problem is held: a check it depends on fails.
    Unreachable,
    FlappingStart,
    FlappingStop,
    Reminder,
    Escalation,
    Ack,
    /// A silence (`text` is its pattern); `check` is empty.
    Silence,
    Unsilence,
    MaintenanceStart,
    MaintenanceEnd,
    /// A kind a newer picomon wrote: skipped.
    #[serde(other)]
    Other,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix microseconds.
    pub at: UnixMicros,
    pub kind: Kind,
    /// The check's identity (empty for silences).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub check: String,
    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The first failed run of the outage (Unix microseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<UnixMicros>,
    /// The first output line, or the comment of an ack or silence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Who acked, silenced or unsilenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `seen`: when the check was first seen (Unix microseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<UnixMicros>,
    /// `seen`: in a maintenance window now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub maintenance: bool,
}

impl Record {
    /// A line of `kind` for `check` at `at`, the rest empty.
    pub fn new(at: UnixMicros, kind: Kind, check: &str) -> Record {
        Record {
            at,
            kind,
            check: check.to_string(),
            status: None,
            outage: None,
            text: String::new(),
            by: None,
            since: None,
            maintenance: false,
        }
    }

    /// The first line of `output`, at most 200 bytes: the log stays small
    /// whatever a plugin prints.
    pub fn with_text(mut self, output: &str) -> Record {
        let line = output.lines().next().unwrap_or("");
        let mut end = line.len().min(200);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        self.text = line[..end].to_string();
        self
    }
}
