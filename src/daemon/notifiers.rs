//! The notifier a config asks for, for the daemon and for `-1 --notify`.

use std::time::Duration;

use crate::config::Config;
use crate::notify::{Notice, Notifier};

/// Builds the notifier the config asks for: mail (which only logs when
/// neither `emails.to` nor a contact has an address, but still delivers
/// what an earlier process left in the outbox), and the channels of
/// `config.notify` beside it.
pub fn make_notifier(cfg: &Config) -> anyhow::Result<Box<dyn Notifier>> {
    let mail = Box::new(crate::notify::mail::MailNotifier::new(cfg, &cfg.state_dir)?);
    Ok(match crate::notify::channel::Channels::new(cfg)? {
        None => mail,
        Some(channels) => Box::new(crate::notify::fanout::FanOut(vec![
            mail,
            Box::new(channels),
        ])),
    })
}

/// `-1 --notify`: hands the problems found to the notifier and waits,
/// bounded, for delivery.
pub fn notify_once(cfg: &Config, notices: Vec<Notice>) -> anyhow::Result<()> {
    super::ensure_state_dir(cfg)?;
    let mut notifier = make_notifier(cfg)?;
    let now = crate::clock::now_unix_micros();
    // Contacts inside their hours are told; `-1` keeps nothing to tell
    // the others later.
    let at = crate::notify::contacts::LocalMinute::at(now);
    let notices = notices
        .into_iter()
        .map(|mut n| {
            let told = crate::notify::contacts::who(
                &cfg.contacts,
                &n.check_id,
                n.transition.kind,
                &[],
                at,
            );
            n.contacts = told.now;
            n
        })
        .collect();
    notifier.transitions(notices, now);
    notifier.shutdown(Duration::from_secs(30));
    Ok(())
}
