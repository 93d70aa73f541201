//! The read-only HTTP listener of `config.listen` (off by default):
//!
//! ```text
//!  GET /metrics         Prometheus text format   (metrics.rs)
//!  GET /api/v1/checks   the JSON of `picomon status --json`
//!  GET /api/v1/health   200 or 503: can this picomon tell anyone (health.rs)
//!  GET /                the status page          (page.rs)
//! ```
//! `server.rs` accepts and answers; for each request it asks the loop for a
//! [`Snapshot`] through [`Ask`] (the daemon puts it in the loop's inbox) and
//! renders it on its own thread. GET and HEAD only: there is nothing to
//! write, and a snapshot holds what `picomon status` shows, never a
//! password, token or secret file.

mod health;
pub mod metrics;
pub mod page;
mod proc_stats;
mod server;
mod snapshot;

pub use proc_stats::ProcessStats;
pub use server::{start, Listener, MAX_CLIENTS, MAX_CONNECTIONS, MAX_HEAD};
pub use snapshot::{Recent, Snapshot, RECENT};

/// How the listener asks the loop for a [`Snapshot`]: the loop sends it on
/// the channel given. A function, so the listener knows nothing of the
/// daemon that runs it.
pub type Ask = std::sync::Arc<AskFn>;
pub type AskFn = dyn Fn(crossbeam_channel::Sender<Box<Snapshot>>) + Send + Sync;
