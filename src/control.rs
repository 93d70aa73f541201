//! The control socket (`state_dir/control.sock`): the daemon's server, its
//! JSON-lines protocol, and the client the CLI subcommands use.
//!
//! ```text
//!  picomon status ──┐                      ┌─ status, silences: read the
//!  picomon ack ...  ├─ control.sock ─ server┤  snapshot the loop published
//!  scripts (JSON)  ─┘  (SO_PEERCRED)       └─ the rest: a Call handed to
//!                                              the loop (Submit), answer back
//! ```
//! The loop never waits for a client: while clients read, it publishes a
//! [`Snapshot`] after each batch of events (at most every 100 ms) that the
//! readers share, and answers [`Call`]s between results.

pub mod client;
pub mod commands;
pub mod complete;
pub mod history;
pub mod protocol;
pub mod record;
pub mod server;
pub mod snapshot;
pub mod wrap;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use protocol::{Request, Response, StatusReport};
pub use snapshot::Snapshot;

/// How a server hands a [`Call`] to the loop (the daemon pushes it into its
/// inbox). A function rather than the inbox itself, so the servers know
/// nothing of the daemon that runs them.
pub type Submit = Arc<SubmitFn>;
pub type SubmitFn = dyn Fn(Call) + Send + Sync;

/// The socket's file name in `state_dir`.
pub const SOCKET_FILE: &str = "control.sock";

/// Where the loop publishes its status for the readers: the control
/// server and the HTTP listener.
pub type Published = Arc<Board>;

/// How long after the last read the loop keeps publishing. Nobody
/// reading, it publishes nothing and the snapshot's memory is given back;
/// the first read after that waits for the loop to publish once.
pub const KEEP_PUBLISHING: Duration = Duration::from_secs(60);

/// The last status the loop published, read without the loop: readers
/// share one immutable snapshot (an `Arc`) until the loop publishes the
/// next, so a request costs the loop nothing and copies nothing.
pub struct Board {
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    /// Signalled when a snapshot is put.
    put: Condvar,
    /// Asks the loop to publish (set by the daemon; wakes its inbox).
    poke: OnceLock<Box<dyn Fn() + Send + Sync>>,
    epoch: Instant,
    /// Milliseconds after `epoch` of the last request, plus one (0 = never).
    asked: AtomicU64,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("holds_one", &self.holds_one())
            .finish()
    }
}

impl Default for Board {
    fn default() -> Self {
        Board {
            snapshot: Mutex::new(None),
            put: Condvar::new(),
            poke: OnceLock::new(),
            epoch: Instant::now(),
            asked: AtomicU64::new(0),
        }
    }
}

impl Board {
    /// How a reader that finds no snapshot asks the loop for one (the
    /// daemon pushes an event into the loop's inbox). Set once.
    pub fn set_poke(&self, poke: Box<dyn Fn() + Send + Sync>) {
        let _ = self.poke.set(poke);
    }

    /// The snapshot, if one is kept, noting the request.
    pub fn read(&self) -> Option<Arc<Snapshot>> {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.asked.store(now, Ordering::Relaxed);
        self.lock().clone()
    }

    /// A reader's snapshot: the one kept, or (nobody read for a while) the
    /// one the loop publishes when poked, waiting at most `timeout` for it.
    pub fn wait(&self, timeout: Duration) -> Option<Arc<Snapshot>> {
        if let Some(s) = self.read() {
            return Some(s);
        }
        if let Some(poke) = self.poke.get() {
            poke();
        }
        let (guard, _) = self
            .put
            .wait_timeout_while(self.lock(), timeout, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// Whether a client asked within [`KEEP_PUBLISHING`].
    pub fn wanted(&self) -> bool {
        self.unwanted_at().is_some_and(|at| Instant::now() < at)
    }

    /// When the snapshot stops being wanted unless someone reads it
    /// again: the loop wakes then to drop it, so an idle daemon does not
    /// keep it for the rest of a long tick.
    pub fn unwanted_at(&self) -> Option<Instant> {
        match self.asked.load(Ordering::Relaxed) {
            0 => None,
            asked => Some(self.epoch + Duration::from_millis(asked - 1) + KEEP_PUBLISHING),
        }
    }

    /// The loop's write; `None` drops the snapshot (readers holding it
    /// keep theirs until they are done).
    pub fn put(&self, s: Option<Snapshot>) {
        let fresh = s.is_some();
        *self.lock() = s.map(Arc::new);
        if fresh {
            self.put.notify_all();
        }
    }

    pub fn holds_one(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Snapshot>>> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
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
    fn the_metrics_body_is_rendered_once_per_snapshot() {
        let snap = Snapshot::default();
        let mut renders = 0;
        let a = snap.metrics_body(|_| {
            renders += 1;
            b"x 1\n".to_vec()
        });
        let b = snap.metrics_body(|_| unreachable!("rendered again"));
        assert_eq!(renders, 1);
        assert!(Arc::ptr_eq(&a, &b), "shared, not copied");
    }

    #[test]
    fn a_reader_finding_nothing_pokes_the_loop_and_gets_what_it_publishes() {
        let b = Arc::new(Board::default());
        let board = Arc::clone(&b);
        // The "loop": publishes when poked, from another thread.
        b.set_poke(Box::new(move || {
            let board = Arc::clone(&board);
            std::thread::spawn(move || board.put(Some(Snapshot::default())));
        }));
        let got = b.wait(Duration::from_secs(600));
        assert!(got.is_some());
        // Kept: the next read takes the same one without a poke.
        assert!(Arc::ptr_eq(&got.unwrap(), &b.read().unwrap()));
    }

    #[test]
    fn the_board_is_wanted_once_read_and_drops_its_snapshot_on_request() {
        let b = Board::default();
        assert!(!b.wanted());
        assert!(b.read().is_none());
        assert!(b.wanted());
        b.put(Some(Snapshot::default()));
        assert!(b.holds_one() && b.read().is_some());
        assert!(b.wait(Duration::ZERO).is_some());
        b.put(None);
        assert!(!b.holds_one());
    }
}
