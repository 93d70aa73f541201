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
pub type Published = Arc<Mutex<Arc<StatusReport>>>;

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
