//! Mail: composition, the durable outbox, SMTP delivery.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;

/// Queues one mail in the durable outbox.
pub fn queue_mail(
    _cfg: &Config,
    _state_dir: &Path,
    _subject: &str,
    _body: &str,
) -> anyhow::Result<()> {
    anyhow::bail!("mail is not built yet")
}

/// One bounded delivery pass over the outbox; returns how many were sent.
pub fn deliver_outbox(
    _cfg: &Config,
    _state_dir: &Path,
    _deadline: Duration,
) -> anyhow::Result<usize> {
    anyhow::bail!("mail is not built yet")
}
