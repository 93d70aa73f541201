//! The loop's side of heartbeat checks: it judges them itself at each of
//! their runs (no worker: a ping may arrive meanwhile and its record must
//! not be overwritten by a run's), and records pings from the control
//! socket, the HTTP listener and passive results, judging the check at
//! once so a failure or a recovery is not a tick late.

use crate::clock::Clock;
use crate::model::heartbeat::{judge, Beat, Ping};
use crate::model::CheckKind;
use crate::passive::PassiveResult;

use super::Daemon;

impl<C: Clock> Daemon<C> {
    /// Whether the check at `i` is a heartbeat check.
    pub(super) fn is_beat(&self, i: usize) -> bool {
        matches!(self.checks[i].spec.kind, CheckKind::Heartbeat(_))
    }

    /// One run of the heartbeat check at `i`: its status from its pings.
    pub(super) fn judge_beat(&mut self, i: usize) {
        let now = self.clock.wall();
        let t = &mut self.checks[i];
        let CheckKind::Heartbeat(hb) = &t.spec.kind else {
            return;
        };
        let mut beat = Beat::from_memory(t.memory.as_deref());
        if beat.since.is_none() {
            // "No ping since" counts from the first time it is watched,
            // across restarts.
            beat.watch(now);
            t.memory = Some(beat.to_memory().into_boxed_str());
            self.dirty = true;
        }
        let outcome = judge(hb, &beat, now);
        let id = t.spec.id.clone();
        self.on_result(&id, outcome);
    }

    /// Records a ping for the check named `what`; the answer's line, or
    /// why nothing was recorded.
    pub(super) fn ping(&mut self, what: &str, ping: Ping) -> Result<String, String> {
        let i = self.find(what)?;
        if !self.is_beat(i) {
            return Err(format!(
                "{} is not a heartbeat check; only checks added with heartbeat(#{{ period, grace }}) take pings",
                self.checks[i].spec.title()
            ));
        }
        let now = self.clock.wall();
        let kind = ping.describe();
        let t = &mut self.checks[i];
        let mut beat = Beat::from_memory(t.memory.as_deref());
        beat.record(ping, now);
        t.memory = Some(beat.to_memory().into_boxed_str());
        self.dirty = true;
        log::info!("{}: {kind} ping", t.spec.title());
        self.judge_beat(i);
        let t = &self.checks[i];
        Ok(format!(
            "{kind} recorded: {}: {}",
            t.spec.title(),
            t.last_output.first_line()
        ))
    }

    /// A ping over HTTP: recorded only with the right key. `Err(None)`:
    /// wrong key, or no key configured (the listener answers 404 as for
    /// an unknown check, and the key is never logged).
    pub fn http_ping(
        &mut self,
        key: &str,
        what: &str,
        ping: Ping,
    ) -> Result<String, Option<String>> {
        let Some(file) = &self.cfg.ping_key_file else {
            return Err(None);
        };
        let wanted = match crate::secret::read_to_string(file) {
            Ok(text) => text.lines().next().unwrap_or("").trim().to_string(),
            Err(e) => {
                log::error!(
                    "http ping refused: cannot read config.ping_key_file {}: {e}",
                    file.display()
                );
                return Err(None);
            }
        };
        if wanted.is_empty() || !same_key(key.as_bytes(), wanted.as_bytes()) {
            log::info!("http ping for {what:?} refused: wrong key");
            return Err(None);
        }
        self.ping(what, ping).map_err(Some)
    }

    /// Passive results (`result_dir`, `--send`) for a heartbeat check's
    /// name count as its pings: a service result by the check's name (or
    /// `service_name`), a host result by the check's name.
    pub(super) fn passive_pings(&mut self, results: &[PassiveResult]) {
        // Few checks are heartbeats, and most configs have none: results
        // (thousands from a big result_dir) are matched against those only.
        let beats: Vec<usize> = (0..self.checks.len())
            .filter(|&i| self.is_beat(i))
            .collect();
        if beats.is_empty() {
            return;
        }
        for r in results {
            let Some(&i) = beats.iter().find(|&&i| r.is_ping_for(&self.checks[i].spec)) else {
                continue;
            };
            let id = self.checks[i].spec.id.clone();
            let ping = Ping {
                kind: crate::model::heartbeat::PingKind::Done(r.status),
                message: r.output.clone(),
            };
            if let Err(e) = self.ping(&id, ping) {
                log::warn!("passive result for {id:?}: {e}");
            }
        }
    }
}

/// Compares the key of a request with the configured one in time that
/// depends only on the request's length, so the time of an answer tells
/// nothing about how much of a guess was right.
pub fn same_key(given: &[u8], key: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != key.len());
    for (i, g) in given.iter().enumerate() {
        diff |= g ^ key.get(i).copied().unwrap_or(!*g);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_whole_key_matches() {
        let key = b"s3cret-key";
        assert!(super::same_key(b"s3cret-key", key));
        for wrong in [&b""[..], b"s3cret", b"s3cret-key!", b"S3cret-key", b"\xff"] {
            assert!(!super::same_key(wrong, key), "{wrong:?}");
        }
    }
}
