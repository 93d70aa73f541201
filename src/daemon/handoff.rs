//! What the daemon hands its picomon-watchdog at each (re)load: the state
//! dir, when the daemon counts as hung, the mail settings and the secrets.

use picomon_common::handoff::Handoff;

use crate::config::Config;

/// What the watchdog needs of `cfg`, with the SMTP password read now (by
/// the daemon, before it drops privileges).
pub fn handoff(cfg: &Config) -> Handoff {
    let hang_after = cfg.base_tick * 3 + cfg.max_timeout();
    Handoff {
        config: cfg.path.clone(),
        host: crate::host::this_host(),
        state_dir: cfg.state_dir.clone(),
        hang_after_ms: hang_after.as_millis() as u64,
        mail: crate::notify::mail::watchdog::settings(&cfg.emails),
        secrets: crate::secret::snapshot(&cfg.secret_files()),
    }
}
