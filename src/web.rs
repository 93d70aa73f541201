//! The read-only HTTP listener of `config.listen` (off by default):
//!
//! ```text
//!  GET /metrics         Prometheus text format   (metrics.rs)
//!  GET /api/v1/checks   the JSON of `picomon status --json`
//!  GET /api/v1/health   200 or 503: can this picomon tell anyone (health.rs)
//!  GET /                the status page          (page.rs)
//!  GET|POST /ping/KEY/CHECK[/start|/fail|/N]  a heartbeat's ping, with
//!                       the key of config.ping_key_file (ping.rs)
//! ```
//! `server.rs` accepts and answers; each request reads the [`Snapshot`]
//! the loop published (shared with the control socket, never copied per
//! request) and renders it on its own thread; `/metrics` is rendered once
//! per snapshot. Only the keyed `/ping/` asks the loop, through [`Ask`]
//! (the daemon puts it in the loop's inbox). GET and HEAD only, but for
//! `/ping/` (which records a ping and nothing else); a snapshot holds
//! what `picomon status` shows, never a password, token or secret file.

mod health;
pub mod metrics;
pub mod page;
mod ping;
mod proc_stats;
mod server;
mod snapshot;

pub use crate::control::Snapshot;
pub use proc_stats::ProcessStats;
pub use server::{start, Listener, MAX_CLIENTS, MAX_CONNECTIONS, MAX_HEAD};
pub use snapshot::{Recent, DAYS, RECENT};

/// How the listener asks the loop: the loop answers on the channel in the
/// [`Question`]. A function, so the listener knows nothing of the daemon
/// that runs it.
pub type Ask = std::sync::Arc<AskFn>;
pub type AskFn = dyn Fn(Question) + Send + Sync;

/// What the listener asks the loop.
#[derive(Debug)]
pub enum Question {
    /// A ping from `/ping/KEY/CHECK`: the loop checks the key and records it.
    Ping(PingQuestion),
}

/// A ping that came over HTTP, with its key.
#[derive(Debug)]
pub struct PingQuestion {
    pub key: String,
    pub check: String,
    pub ping: crate::model::heartbeat::Ping,
    /// Ok(the line for the log), Err(None) for a wrong key or no key
    /// configured, Err(Some(why)) when the key was right but nothing was
    /// recorded (an unknown check, one that is not a heartbeat).
    pub reply: crossbeam_channel::Sender<Result<String, Option<String>>>,
}
