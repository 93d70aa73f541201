//! The one durable queue that mail and every notification channel send
//! from.
//!
//! ```text
//!  producer --push--> Queue: state_dir/<dir>/ (tmp, fsync, rename)
//!     |  cannot write        |                     \ 4xx/5xx too often:
//!     v                      v                      <dir>/failed/ + reason
//!  MemoryQueue --flush--> sender thread (one per queue) --Deliverer--> peer
//!  (every tick)           oldest first; peer down: back off, keep order
//! ```
//!
//! The queue knows files, order, backoff, locks and `failed/`; what an item
//! is ([`Item`]: a mail with its envelope, a webhook post) and how it
//! reaches its peer ([`Deliverer`]: SMTP recipient by recipient, one HTTP
//! request, one program run) belong to the mail and notify modules. Each
//! queue has its own directory and its own thread, so one peer's outage
//! never delays another queue or the checks.
//!
//! - [`queue`]: the directory, one file per item.
//! - [`memory`]: items kept in memory while the directory cannot be written.
//! - [`sender`]: the delivery pass and thread.
//! - [`courier`]: the three together, as a notifier uses them.

pub mod courier;
pub mod dir;
pub mod envelope;
pub mod fallback;
pub mod worker;

use std::time::Duration;

use crate::clock::UnixMicros;

pub use courier::Courier;
pub use dir::{Queue, Queued, FAILED_DIR};
pub use fallback::{Kind, MemoryQueue};
pub use worker::{Holds, PassResult, Sender};

/// How many times a peer may refuse an item permanently (an SMTP 5xx, an
/// HTTP 4xx) before it is given up and moved to `failed/`. More than one,
/// as a peer that is being reconfigured may refuse for a while; few, as the
/// answer rarely changes and the operator must learn of it soon.
pub const MAX_PERMANENT_TRIES: u32 = 3;

/// The longest a single delivery may take outside shutdown.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// The wait after the next failure: double, at most [`MAX_BACKOFF`].
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

/// One queued item: the exact bytes to deliver plus what the queue keeps
/// about them (counts of refusals).
pub trait Item: Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The file's bytes; `reason` is added for `failed/`.
    fn encode(&self, reason: Option<&str>) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Result<Self, String>;
    /// When it was composed: the queue's order.
    fn composed(&self) -> UnixMicros;
    /// The item as it goes to `failed/`: its counts cleared, so moving it
    /// back sends it afresh.
    fn fresh(&self) -> Self;
    /// A short description for logs (a subject, a check), never a secret.
    fn describe(&self) -> String;
}

/// What one try of an item leaves behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled<I> {
    /// What is still owed (fewer recipients, new counts); `None`: done.
    pub owed: Option<I>,
    /// Parts given up, each with the reason: for `failed/`.
    pub failed: Vec<(I, String)>,
    /// Who got the item now (recipients, or the channel's name).
    pub delivered: Vec<String>,
    /// Recipients no longer owed the item because it was given up for them.
    pub given_up: Vec<String>,
    /// The peer's answer to log with a delivery (`to a by server: 250 ok`).
    pub answer: String,
    /// Refusals that are retried later: who (a recipient, or `*` for the
    /// whole item) and the peer's answer with the try count.
    pub retry: Vec<(String, String)>,
    /// A refused item blocks the ones behind it (a channel keeps the
    /// order of its transitions); else they go on at once (mail).
    pub blocks: bool,
}

impl<I> Default for Settled<I> {
    fn default() -> Self {
        Settled {
            owed: None,
            failed: Vec::new(),
            delivered: Vec::new(),
            given_up: Vec::new(),
            answer: String::new(),
            retry: Vec::new(),
            blocks: false,
        }
    }
}

/// How an item reaches its peer.
pub trait Deliverer: Send + 'static {
    type Item: Item;
    /// One try, bounded by `timeout`. `None` when the peer took no part
    /// (down, busy, timed out): the pass stops and backs off, with the
    /// reason; else what the answer means for the item.
    fn attempt(&self, item: &Self::Item, timeout: Duration) -> Result<Settled<Self::Item>, String>;
    /// Called once the outcome of the last [`attempt`](Self::attempt) is
    /// stored in the queue: ends what the attempt left open (SMTP's QUIT).
    /// What happens here changes nothing about the item.
    fn after_settled(&self) {}
}
