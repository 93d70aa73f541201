//! Mail kept in memory while the outbox cannot be written: the shared
//! queue's memory fallback ([`crate::deliver::memory`]), holding mails.

pub use crate::deliver::memory::MEMORY_QUEUE_MAX;
pub use crate::deliver::Kind as MailKind;

use super::outbox::Entry;

/// The mails waiting in memory.
pub type MemoryQueue = crate::deliver::MemoryQueue<Entry>;
