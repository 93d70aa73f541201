//! The read-only HTTP listener of `config.listen` (off by default):
//!
//! ```text
//!  GET /metrics         Prometheus text format   (metrics.rs)
//!  GET /api/v1/checks   the JSON of `picomon status --json`
//!  GET /                the status page          (page.rs)
//! ```
//! `server.rs` accepts and answers; for each request it asks the loop for a
//! [`Snapshot`] through the loop's inbox (as the control socket does) and
//! renders it on its own thread. GET and HEAD only: there is nothing to
//! write, and a snapshot holds what `picomon status` shows, never a
//! password, token or secret file.

pub mod metrics;
pub mod page;
mod process;
mod server;
mod snapshot;

pub use process::ProcessStats;
pub use server::{start, Listener, MAX_CLIENTS, MAX_HEAD};
pub use snapshot::{Recent, Snapshot, RECENT};
