//! The loop's side of fewer, truer alerts: it applies the pure decisions
//! of [`crate::alert::deps`], [`crate::alert::flap`] and
//! [`crate::alert::remind`] to its checks.
//!
//! ```text
//!  on_result: step -> flap history -> flapping? P/U/R not announced,
//!             "flapping"/"stopped flapping" instead
//!             held dependent: its parent OK again -> Problem or nothing
//!  flush:     Problem of a dependent whose parent fails -> held (UNREACHABLE),
//!             listed in the parent's Problem (or an Update in its thread)
//!  tick:      in PROBLEM, unacknowledged, not silenced -> escalation steps,
//!             reminders
//! ```

use std::collections::HashMap;

use crate::alert::flap::{FlapEvent, FlapSetting};
use crate::alert::remind::Nag;
use crate::alert::{deps, Phase, Transition, TransitionKind};
use crate::clock::{Clock, Now, UnixMicros};
use crate::model::Status;
use crate::notify::Notice;

use super::{Daemon, Tracked};

/// Dependencies and flapping of one check, as views show them.
pub(super) struct NoiseView {
    pub unreachable_by: Option<String>,
    pub flap_percent: Option<f32>,
    pub flapping: bool,
}

impl Tracked {
    pub(super) fn held_by(&self) -> Option<u32> {
        self.extra.as_ref().and_then(|e| e.held_by)
    }

    pub(super) fn set_held_by(&mut self, p: Option<u32>) {
        self.edit_extra(|e| e.held_by = p);
    }

    pub(super) fn nag(&self) -> Option<&Nag> {
        self.extra.as_ref().and_then(|e| e.nag.as_ref())
    }

    pub(super) fn nag_mut(&mut self) -> Option<&mut Nag> {
        self.extra.as_mut().and_then(|e| e.nag.as_mut())
    }

    pub(super) fn set_nag(&mut self, nag: Option<Nag>) {
        self.edit_extra(|e| e.nag = nag);
    }

    /// Contacts whose Problem of the current outage waits for their hours.
    pub(super) fn waiting(&self) -> &[String] {
        self.extra.as_ref().map_or(&[][..], |e| &e.waiting[..])
    }

    pub(super) fn set_waiting(&mut self, w: Vec<String>) {
        self.edit_extra(|e| e.waiting = w);
    }

    /// Changes the extra state; it is freed when nothing is left in it.
    pub(super) fn edit_extra(&mut self, f: impl FnOnce(&mut super::Extra)) {
        let mut e = self.extra.take().unwrap_or_default();
        f(&mut e);
        if e.held_by.is_some() || e.nag.is_some() || !e.waiting.is_empty() {
            self.extra = Some(e);
        }
    }

    /// A notice about this check.
    pub(super) fn notice(&self, transition: Transition) -> Notice {
        Notice::new(
            self.spec.id.to_string(),
            self.spec.name.to_string(),
            self.spec.dest.to_string(),
            transition,
            self.last_output.to_string(),
        )
    }

    /// A transition of `kind` for the check's state now.
    pub(super) fn now_transition(&self, kind: TransitionKind, now: UnixMicros) -> Transition {
        let status = self.alert.last_status.unwrap_or(Status::Unknown);
        Transition {
            kind,
            status,
            previous: Some(status),
            outage_start: self.alert.outage_start.unwrap_or(now),
            failed_runs: self.alert.failed_runs,
            at: now,
        }
    }
}

impl<C: Clock> Daemon<C> {
    /// The checks `i` depends on.
    pub(super) fn parents(&self, i: usize) -> &[u32] {
        self.checks[i]
            .spec
            .noise
            .as_ref()
            .map_or(&[][..], |n| &n.depends_on[..])
    }

    /// The first parent of `i` that is RETRYING or PROBLEM.
    pub(super) fn failing_parent(&self, i: usize) -> Option<usize> {
        deps::failing_parent(self.parents(i), |p| self.checks[p].alert.is_failing())
    }

    /// Whom `i` is UNREACHABLE behind, for views: the parent that holds its
    /// Problem, or a failing parent while it fails too.
    pub(super) fn unreachable_by(&self, i: usize) -> Option<usize> {
        let t = &self.checks[i];
        if !t.alert.is_failing() {
            return None;
        }
        t.held_by()
            .map(|p| p as usize)
            .or_else(|| self.failing_parent(i))
    }

    /// What views and the status show of dependencies and flapping.
    pub(super) fn noise_view(&self, i: usize) -> NoiseView {
        let t = &self.checks[i];
        NoiseView {
            unreachable_by: self.unreachable_by(i).map(|p| self.checks[p].spec.title()),
            flap_percent: match self.cfg.noise.flap(t.spec.noise.as_deref()) {
                FlapSetting::Off => None,
                FlapSetting::On { .. } => Some(t.flap.percent() as f32),
            },
            flapping: t.flap.is_flapping(),
        }
    }

    /// After check `i` ran (`tr` is what its alert machine decided):
    /// flapping and held dependents decide what is announced.
    pub(super) fn announce(
        &mut self,
        i: usize,
        tr: Option<Transition>,
        changed: bool,
        now: UnixMicros,
    ) {
        let setting = self.cfg.noise.flap(self.checks[i].spec.noise.as_deref());
        let t = &mut self.checks[i];
        let was_flapping = t.flap.is_flapping();
        let mut event = t.flap.record(changed, setting);
        if matches!(event, Some(FlapEvent::Stopped { .. })) && t.alert.phase == Phase::Retrying {
            // Not settled enough to say what it is now: it says so once it
            // is OK or in PROBLEM.
            t.flap.stay_flapping();
            event = None;
        }
        let mut tr = tr;
        if let Some(x) = &tr {
            if was_flapping || t.flap.is_flapping() || event.is_some() {
                log::info!(
                    "{} {}: not mailed: flapping",
                    x.kind.as_str(),
                    t.spec.title()
                );
                tr = None;
            } else {
                // Into the log whether mailed or held (silences and
                // dependencies decide that later). While it flaps the
                // start and the stop stand for them: a check flapping for
                // a year stays a few lines.
                let line = super::history_line(&t.spec.id, x, &t.last_output.text());
                self.history.record(Some(i), line);
            }
        }
        if t.alert.phase == Phase::Ok && tr.is_none() {
            // No Recovery to carry the escalated addresses.
            t.set_nag(None);
        }
        // The history itself is saved with the next state that changes
        // (and at exit): a file write per run would cost more than a lost
        // run of history. Starting and stopping are saved at once.
        if event.is_some() {
            self.dirty = true;
        }
        match event {
            Some(FlapEvent::Started { percent, changes }) => {
                log::info!(
                    "flapping {}: changed state {changes} times in the last 21 runs ({percent:.1}%)",
                    t.spec.title()
                );
                let mut n = t.notice(t.now_transition(TransitionKind::FlappingStart, now));
                let mut line = super::history_line(&t.spec.id, &n.transition, &n.output);
                // The outage it flaps in, if any: the span counts as that.
                line.outage =
                    (t.alert.phase == Phase::Problem).then_some(n.transition.outage_start);
                self.history.record(Some(i), line);
                n.count = changes;
                n.percent = Some(percent as f32);
                self.pending.push((i, n));
            }
            Some(FlapEvent::Stopped { percent }) => {
                log::info!(
                    "stopped flapping {}: now {} ({percent:.1}%)",
                    t.spec.title(),
                    t.alert.last_status.unwrap_or(Status::Unknown)
                );
                let mut x = t.now_transition(TransitionKind::FlappingStop, now);
                if t.alert.phase == Phase::Ok {
                    x.outage_start = now;
                }
                let mut n = t.notice(x);
                self.history.record(
                    Some(i),
                    super::history_line(&t.spec.id, &n.transition, &n.output),
                );
                n.percent = Some(percent as f32);
                self.pending.push((i, n));
            }
            None => {}
        }
        let tr = self.release_held(i, tr, now);
        if let Some(x) = tr {
            let n = self.checks[i].notice(x);
            self.pending.push((i, n));
        }
    }

    /// A held (UNREACHABLE) dependent that ran: once no parent fails, its
    /// Problem is announced if it still fails, nothing if it recovered.
    fn release_held(
        &mut self,
        i: usize,
        tr: Option<Transition>,
        now: UnixMicros,
    ) -> Option<Transition> {
        if self.checks[i].held_by().is_none() {
            return tr;
        }
        let parent_failing = self.failing_parent(i).is_some();
        let t = &mut self.checks[i];
        let title = t.spec.title();
        match (&tr, t.alert.phase) {
            (_, Phase::Ok) => {
                log::info!("{title}: recovered while unreachable: nothing to mail");
                t.set_held_by(None);
                None
            }
            _ if parent_failing => {
                if let Some(x) = &tr {
                    log::info!("{} {title}: not mailed: unreachable", x.kind.as_str());
                }
                None
            }
            (_, Phase::Retrying) => {
                t.set_held_by(None);
                None
            }
            (_, Phase::Problem) => {
                log::info!("{title}: reachable again and still failing: its Problem is mailed now");
                t.set_held_by(None);
                let mut x = t.now_transition(TransitionKind::Problem, now);
                x.previous = None;
                Some(x)
            }
        }
    }

    /// Holds the Problems of dependents whose parent fails and lists them
    /// in the parent's mail; `batch` is in config order. A dependent whose
    /// parent is still running (and not failing yet) waits for it, so the
    /// order results came in changes nothing.
    pub(super) fn resolve_deps(&mut self, batch: Vec<(usize, Notice)>) -> Vec<(usize, Notice)> {
        if self.dependents.is_empty() {
            return batch;
        }
        let now = self.clock.wall();
        let mut out = Vec::with_capacity(batch.len());
        let mut newly_held: Vec<(usize, usize)> = Vec::new();
        for (i, n) in batch {
            if !n.transition.opens_outage() || self.checks[i].held_by().is_some() {
                out.push((i, n));
                continue;
            }
            if let Some(p) = self.failing_parent(i) {
                log::info!(
                    "{} {}: not mailed: unreachable while {} fails",
                    n.transition.kind.as_str(),
                    self.checks[i].spec.title(),
                    self.checks[p].spec.title()
                );
                self.checks[i].set_held_by(Some(p as u32));
                let mut line = super::history_line(&n.check_id, &n.transition, &n.output);
                line.kind = crate::history::Kind::Unreachable;
                self.history.record(Some(i), line);
                self.dirty = true;
                newly_held.push((p, i));
                continue;
            }
            let waiting = self.parents(i).iter().any(|&p| {
                let t = &self.checks[p as usize];
                t.sched.running && !t.alert.is_failing()
            });
            if waiting {
                // Decided when the parent's run is in.
                self.pending.push((i, n));
                continue;
            }
            out.push((i, n));
        }
        // The parents' Problems list every dependent failing now.
        let mut listed: Vec<usize> = Vec::new();
        for (p, n) in out.iter_mut() {
            if !n.transition.opens_outage() {
                continue;
            }
            let names = self.hold_dependents(*p);
            listed.push(*p);
            n.unreachable = names;
        }
        // Dependents that fail after their parent's Problem: an Update in
        // its thread.
        newly_held.retain(|(p, _)| !listed.contains(p));
        crate::sort::ascending(&mut newly_held);
        for group in newly_held.chunk_by(|a, b| a.0 == b.0) {
            let p = group[0].0;
            let t = &self.checks[p];
            if t.alert.phase != Phase::Problem || t.flap.is_flapping() {
                continue;
            }
            let mut n = t.notice(t.now_transition(TransitionKind::Update, now));
            n.unreachable = group
                .iter()
                .map(|&(_, c)| self.checks[c].spec.title())
                .collect();
            out.push((p, n));
        }
        crate::sort::by_key(&mut out, |(i, _)| *i);
        out
    }

    /// Marks the failing dependents of `p` as held by it; their names.
    fn hold_dependents(&mut self, p: usize) -> Vec<String> {
        let from = self.dependents.partition_point(|&(q, _)| (q as usize) < p);
        let mut names = Vec::new();
        for k in from..self.dependents.len() {
            let (q, c) = self.dependents[k];
            if q as usize != p {
                break;
            }
            let t = &mut self.checks[c as usize];
            let failing_unmailed = match t.alert.phase {
                Phase::Ok => false,
                Phase::Retrying => t.held_by().is_none() || t.held_by() == Some(q),
                Phase::Problem => t.held_by() == Some(q),
            };
            if failing_unmailed {
                t.set_held_by(Some(q));
                names.push(t.spec.title());
            }
        }
        if !names.is_empty() {
            self.dirty = true;
        }
        names
    }

    /// After the quiet gate let `n` of check `i` through: reminders and
    /// escalation follow the thread; escalated addresses ride along.
    pub(super) fn mailed(&mut self, i: usize, n: &mut Notice, now: Now) {
        let steps_len = self
            .cfg
            .noise
            .escalate(self.checks[i].spec.noise.as_deref())
            .len();
        let nagging = steps_len > 0
            || self
                .cfg
                .noise
                .renotify_every(self.checks[i].spec.noise.as_deref())
                > 0;
        let spec = std::sync::Arc::clone(&self.checks[i].spec);
        let t = &mut self.checks[i];
        if let Some(nag) = t.nag() {
            n.escalated_to = nag.recipients(self.cfg.noise.escalate(spec.noise.as_deref()));
        }
        let kind = n.transition.kind;
        if n.transition.opens_outage() {
            if nagging {
                let start = n.transition.outage_start;
                t.set_nag(Some(Nag::new(start, now.to_steady(start), now.steady)));
            }
        } else if matches!(
            kind,
            TransitionKind::Recovery | TransitionKind::FlappingStop
        ) {
            t.set_nag(None);
        } else if kind == TransitionKind::Update {
            if let Some(nag) = t.nag_mut() {
                nag.mailed(now.steady);
            }
        }
        self.dirty = true;
    }

    /// Escalation steps and reminders due now, for checks in PROBLEM that
    /// nobody acknowledged and nothing silences.
    pub(super) fn nag(&mut self, now: Now) {
        let mut out = Vec::new();
        for i in 0..self.checks.len() {
            let t = &self.checks[i];
            if t.alert.phase != Phase::Problem
                || t.held_by().is_some()
                || t.flap.is_flapping()
                || self.standby_quiet(i)
            {
                continue;
            }
            let spec = std::sync::Arc::clone(&t.spec);
            let noise = spec.noise.as_deref();
            let steps = self.cfg.noise.escalate(noise);
            let every = self.cfg.noise.renotify_every(noise);
            if steps.is_empty() && every == 0 {
                continue;
            }
            let quiet = self.quiet.acks.contains_key(&*t.spec.id)
                || self.quiet.held.contains(&*t.spec.id)
                || self
                    .quiet
                    .silenced_by(t.subject(), now, &self.cfg.maintenance)
                    .is_some();
            if quiet {
                if let Some(nag) = self.checks[i].nag_mut() {
                    nag.hold();
                }
                continue;
            }
            let start = t.alert.outage_start.unwrap_or(now.wall);
            let fresh = Nag::new(start, now.to_steady(start), now.steady);
            let t = &mut self.checks[i];
            if t.nag().is_none() {
                // A Problem mailed before reminders were configured (or by
                // a picomon that had none): they count from now.
                t.set_nag(Some(fresh.clone()));
            }
            let Some(nag) = t.nag_mut() else {
                continue;
            };
            if nag.outage_start != start {
                *nag = fresh;
            }
            let reached = nag.escalate(steps, now.steady);
            let reminder = nag.remind(every, now.steady);
            let to = nag.recipients(steps);
            let lasted = crate::clock::hms(now.steady - nag.since());
            if !reached.is_empty() {
                log::warn!(
                    "escalation {}: unacknowledged for {lasted}: now also to {}",
                    t.spec.title(),
                    to.join(", ")
                );
                let mut n = t.notice(t.now_transition(TransitionKind::Escalation, now.wall));
                n.count = reached.end as u32;
                n.escalated_to = to.clone();
                out.push((i, n));
            }
            if let Some(k) = reminder {
                log::warn!(
                    "reminder {}: still {} after {lasted}",
                    t.spec.title(),
                    t.alert.last_status.unwrap_or(Status::Unknown),
                );
                let mut n = t.notice(t.now_transition(TransitionKind::Reminder, now.wall));
                n.count = k;
                n.escalated_to = to;
                out.push((i, n));
            }
            if !reached.is_empty() || reminder.is_some() {
                self.dirty = true;
            }
        }
        if !out.is_empty() {
            let mut batch = Vec::with_capacity(out.len());
            for (i, mut n) in out {
                self.address(i, &mut n, now);
                batch.push(n);
            }
            self.notifier.transitions(batch, now.wall);
        }
    }

    /// Held dependents by identity: dependent -> parent (positions change
    /// with a reload).
    pub(super) fn held_ids(&self) -> HashMap<String, String> {
        self.checks
            .iter()
            .filter_map(|t| {
                let p = t.held_by()? as usize;
                Some((
                    t.spec.id.to_string(),
                    self.checks.get(p)?.spec.id.to_string(),
                ))
            })
            .collect()
    }

    /// Holds again what was held (after a restart or reload). A dependent
    /// whose parent is gone is no longer held: still in PROBLEM, its
    /// Problem is mailed at the end of the tick.
    pub(super) fn rehold(&mut self, held: HashMap<String, String>) {
        let now = self.clock.wall();
        for (child, parent) in held {
            let Some(c) = self.position(child.as_str()) else {
                continue;
            };
            match self.position(parent.as_str()) {
                Some(p) => self.checks[c].set_held_by(Some(p as u32)),
                None => {
                    let t = &mut self.checks[c];
                    t.set_held_by(None);
                    if t.alert.phase == Phase::Problem {
                        let mut x = t.now_transition(TransitionKind::Problem, now);
                        x.previous = None;
                        let n = t.notice(x);
                        self.pending.push((c, n));
                    }
                }
            }
        }
    }

    /// The (parent, dependent) pairs of the checks, sorted by parent.
    pub(super) fn index_dependents(&mut self) {
        let mut pairs = Vec::new();
        for (c, t) in self.checks.iter().enumerate() {
            if let Some(n) = &t.spec.noise {
                pairs.extend(n.depends_on.iter().map(|&p| (p, c as u32)));
            }
        }
        crate::sort::ascending(&mut pairs);
        pairs.shrink_to_fit();
        self.dependents = pairs;
    }
}
