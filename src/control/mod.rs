//! The control socket (`state_dir/control.sock`): the daemon's server, its
//! JSON-lines protocol, and the client the CLI subcommands use.
//!
//! ```text
//!  picomon status ──┐                      ┌─ status, silences: read the
//!  picomon ack ...  ├─ control.sock ─ server┤  snapshot the loop published
//!  scripts (JSON)  ─┘  (SO_PEERCRED)       └─ the rest: Event::Control into
//!                                              the loop's inbox, answer back
//! ```
//! The loop never waits for a client: it publishes a [`StatusReport`] after
//! each batch of events and answers [`Call`]s between results.

pub mod client;
pub mod commands;
pub mod protocol;
pub mod server;

use std::sync::{Arc, Mutex};

pub use protocol::{Request, Response, StatusReport};

/// The socket's file name in `state_dir`.
pub const SOCKET_FILE: &str = "control.sock";

/// The last status the loop published; the server reads it without the
/// loop.
pub type Published = Arc<Mutex<Arc<Snapshot>>>;

/// A published status and, made by the first client that asks for it,
/// its answer line: many `status` requests between two publications
/// serialise it once.
#[derive(Debug)]
pub struct Snapshot {
    pub report: StatusReport,
    answer: std::sync::OnceLock<Vec<u8>>,
}

impl Snapshot {
    pub fn new(report: StatusReport) -> Snapshot {
        Snapshot {
            report,
            answer: std::sync::OnceLock::new(),
        }
    }

    /// `{"status":{...}}` and a newline.
    pub fn answer_line(&self) -> &[u8] {
        self.answer.get_or_init(|| {
            let mut line = b"{\"status\":".to_vec();
            // A report of plain strings and numbers always serialises.
            let _ = serde_json::to_writer(&mut line, &self.report);
            line.extend_from_slice(b"}\n");
            line
        })
    }
}

/// A request the loop answers.
#[derive(Debug)]
pub struct Call {
    pub request: Request,
    /// The peer's user name (for the log and for acks).
    pub user: String,
    pub reply: crossbeam_channel::Sender<Response>,
}

impl Call {
    /// Sends the answer; a client that went away is no error.
    pub fn answer(&self, r: Response) {
        let _ = self.reply.send(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_status_line_reads_back_as_the_report() {
        let report = StatusReport {
            at: 42,
            ..StatusReport::default()
        };
        let snap = Snapshot::new(report.clone());
        let line = snap.answer_line();
        assert!(line.ends_with(b"}\n"));
        let back: Response = serde_json::from_slice(line).unwrap();
        assert_eq!(back.status, Some(report));
        assert!(std::ptr::eq(line, snap.answer_line()), "made once");
    }
}
