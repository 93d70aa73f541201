//! The loop's side of contacts: which of a check's contacts each notice
//! goes to, and the Problems that wait for a contact's hours (kept with the
//! check's state, so a restart neither loses nor repeats them). The
//! decisions are [`crate::notify::contacts`]'; this only applies them.
//!
//! ```text
//!  flush/nag: notice --who()--> contacts told now (on the notice)
//!                           \-> waiting (check state) / missed (report line)
//!  tick:      waiting + period open + still PROBLEM --> one late Problem
//!             to that contact only
//! ```

use crate::alert::{Phase, TransitionKind};
use crate::clock::{Clock, Now};
use crate::notify::contacts::{self, LocalMinute};
use crate::notify::Notice;

use super::Daemon;

impl<C: Clock> Daemon<C> {
    /// Fills in which of check `i`'s contacts get `n` now; notes the
    /// contacts whose Problem waits for their hours, and those whose
    /// waiting Problem this notice ends.
    pub(super) fn address(&mut self, i: usize, n: &mut Notice, now: Now) {
        let book = &self.cfg.contacts;
        if book.picks.is_empty() && self.checks[i].waiting().is_empty() {
            return;
        }
        // "Stopped flapping" counts as the Problem or Recovery it is.
        let kind = match n.transition.kind {
            TransitionKind::FlappingStop if n.transition.opens_outage() => TransitionKind::Problem,
            TransitionKind::FlappingStop => TransitionKind::Recovery,
            k => k,
        };
        let t = &mut self.checks[i];
        let told = contacts::who(
            book,
            &t.spec.id,
            kind,
            t.waiting(),
            LocalMinute::at(now.wall),
        );
        if !told.wait.is_empty() || !told.missed.is_empty() {
            let mut waiting: Vec<String> = t
                .waiting()
                .iter()
                .filter(|w| !told.missed.contains(w))
                .cloned()
                .collect();
            for w in &told.wait {
                let hours = book
                    .get(w)
                    .and_then(|c| c.period.as_ref())
                    .map_or("", |p| p.text.as_str());
                log::info!(
                    "{} {}: contact {w:?} is told when its hours ({hours}) begin",
                    n.transition.kind.as_str(),
                    t.spec.title()
                );
                waiting.push(w.clone());
            }
            for m in &told.missed {
                log::info!(
                    "{}: recovered before the hours of contact {m:?}: no mail to it, a line in its next report",
                    t.spec.title()
                );
            }
            t.set_waiting(waiting);
            self.dirty = true;
        }
        n.contacts = told.now;
        n.missed = told.missed;
    }

    /// Problems whose contacts' hours have begun: while the check is still
    /// in PROBLEM (and not silenced), one late Problem to each such
    /// contact, saying how long the outage has lasted. A check no longer
    /// failing, or a contact no longer the check's, waits no more.
    pub(super) fn release_waiting(&mut self, now: Now) {
        let at = LocalMinute::at(now.wall);
        let mut out = Vec::new();
        for i in 0..self.checks.len() {
            if self.checks[i].waiting().is_empty() {
                continue;
            }
            let t = &self.checks[i];
            if t.alert.phase != Phase::Problem {
                self.checks[i].set_waiting(Vec::new());
                self.dirty = true;
                continue;
            }
            let quiet = self.standby_quiet(i)
                || self
                    .quiet
                    .silenced_by(t.subject(), now, &self.cfg.maintenance)
                    .is_some();
            let (send, gone) = contacts::due(&self.cfg.contacts, &t.spec.id, t.waiting(), at);
            let send = if quiet { Vec::new() } else { send };
            if send.is_empty() && gone.is_empty() {
                continue;
            }
            let left: Vec<String> = t
                .waiting()
                .iter()
                .filter(|w| !send.contains(w) && !gone.contains(w))
                .cloned()
                .collect();
            if !send.is_empty() {
                let mut x = t.now_transition(TransitionKind::Problem, now.wall);
                x.previous = None;
                let mut n = t.notice(x);
                log::warn!(
                    "problem {}: the hours of {} have begun: told now, after {}",
                    t.spec.title(),
                    send.join(", "),
                    crate::clock::hms(now.wall - n.transition.outage_start)
                );
                n.to_everyone = false;
                n.delayed = true;
                n.contacts = send;
                out.push(n);
            }
            self.checks[i].set_waiting(left);
            self.dirty = true;
        }
        if !out.is_empty() {
            self.notifier.transitions(out, now.wall);
            // Saved at once: a restart must not send them again.
            self.save_if_dirty();
        }
    }
}
