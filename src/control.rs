//! The control socket (`state_dir/control.sock`): the daemon's server, its
//! JSON-lines protocol, and the client the CLI subcommands use.
//!
//! ```text
//!  picomon status ──┐                      ┌─ status, silences: read the
//!  picomon ack ...  ├─ control.sock ─ server┤  snapshot the loop published
//!  scripts (JSON)  ─┘  (SO_PEERCRED)       └─ the rest: a Call handed to
//!                                              the loop (Submit), answer back
//! ```
//! The loop never waits for a client: it publishes a [`StatusReport`] after
//! each batch of events and answers [`Call`]s between results.

pub mod client;
pub mod commands;
pub mod complete;
pub mod history;
pub mod protocol;
pub mod record;
pub mod server;
pub mod wrap;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use protocol::{Request, Response, StatusReport};

/// How a server hands a [`Call`] to the loop (the daemon pushes it into its
/// inbox). A function rather than the inbox itself, so the servers know
/// nothing of the daemon that runs them.
pub type Submit = Arc<SubmitFn>;
pub type SubmitFn = dyn Fn(Call) + Send + Sync;

/// The socket's file name in `state_dir`.
pub const SOCKET_FILE: &str = "control.sock";

/// Where the loop publishes its status for the server.
pub type Published = Arc<Board>;

/// How long after the last `status` request the loop keeps publishing.
/// Nobody asking, it publishes nothing and the snapshot's memory is given
/// back; the first request after that asks the loop itself.
pub const KEEP_PUBLISHING: Duration = Duration::from_secs(60);

/// The last status the loop published, read by the server without the
/// loop, and when a client last asked for it.
#[derive(Debug)]
pub struct Board {
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    epoch: Instant,
    /// Milliseconds after `epoch` of the last request, plus one (0 = never).
    asked: AtomicU64,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            snapshot: Mutex::new(None),
            epoch: Instant::now(),
            asked: AtomicU64::new(0),
        }
    }
}

impl Board {
    /// The server's read: the snapshot, if one is kept, noting the request.
    pub fn read(&self) -> Option<Arc<Snapshot>> {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.asked.store(now, Ordering::Relaxed);
        self.lock().clone()
    }

    /// Whether a client asked within [`KEEP_PUBLISHING`].
    pub fn wanted(&self) -> bool {
        let asked = self.asked.load(Ordering::Relaxed);
        asked > 0
            && self.epoch.elapsed().as_millis() as u64 + 1 - asked
                < KEEP_PUBLISHING.as_millis() as u64
    }

    /// The loop's write; `None` drops the snapshot.
    pub fn put(&self, s: Option<Snapshot>) {
        *self.lock() = s.map(Arc::new);
    }

    pub fn holds_one(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Snapshot>>> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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

    #[test]
    fn the_board_is_wanted_once_read_and_drops_its_snapshot_on_request() {
        let b = Board::default();
        assert!(!b.wanted());
        assert!(b.read().is_none());
        assert!(b.wanted());
        b.put(Some(Snapshot::new(StatusReport::default())));
        assert!(b.holds_one() && b.read().is_some());
        b.put(None);
        assert!(!b.holds_one());
    }
}
