//! Acknowledgements, silences and maintenance windows: who is being taken
//! care of, and which transitions are mailed. Pure: inputs and `now` in,
//! a decision out; the loop persists [`Quiet`] in `state_dir/quiet`.
//!
//! ```text
//!  transition --silenced (silence or maintenance)?--> held: logged, not mailed
//!      |                                     Problem held -> `held` set
//!      |       silence over, still PROBLEM --> its Problem mailed then
//!      |       silence over, recovered     --> nothing
//!      +--sticky ack and an Update?-------> held
//!      +--otherwise-----------------------> mailed
//!  an ack ends at recovery, at its `until`, and (unless sticky) at the
//!  next status change.
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::TransitionKind;
use crate::clock::{Now, UnixMicros};
use crate::model::When;

/// The file name in `state_dir`.
pub const QUIET_FILE: &str = "quiet";

/// "I'm on it" for one check in PROBLEM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub comment: String,
    /// Ends then (`--for`); `None` = at recovery (or the next status change).
    pub until: Option<UnixMicros>,
    /// Survives status changes (only recovery or `until` end it).
    pub sticky: bool,
    pub at: UnixMicros,
}

/// No mail for the checks whose name, identity or target matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub pattern: String,
    pub by: String,
    pub comment: String,
    pub start: UnixMicros,
    pub until: UnixMicros,
}

/// A `maintenance(#{ match, ... })` window from the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maintenance {
    pub pattern: String,
    /// Hours, weekdays, days and `start`, as in `when`.
    pub window: When,
    /// Not at or after this Unix time (seconds), for one-off windows.
    pub end: Option<i64>,
    /// The config line (its name in `silenced_by`).
    pub line: usize,
}

impl Maintenance {
    pub fn id(&self) -> String {
        format!("maintenance@{}", self.line)
    }

    fn active(&self, now: UnixMicros) -> bool {
        let t = crate::schedule::LocalTime::from_unix_micros(now);
        crate::schedule::allows(&self.window, t) && self.end.is_none_or(|e| t.unix < e)
    }
}

/// What a check is known by, for matching.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub dest: &'a str,
}

impl Subject<'_> {
    /// The pattern matches the name, the identity or the target; one with
    /// ` on ` also matches `NAME on TARGET`, as mails name the check.
    pub fn matches(&self, pattern: &str) -> bool {
        [self.name, self.id, self.dest]
            .iter()
            .any(|s| glob_match(pattern, s))
            || (pattern.contains(" on ")
                && glob_match(pattern, &format!("{} on {}", self.name, self.dest)))
    }
}

/// What to do with a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Mail,
    /// Logged only; the reason names the silence, window or ack.
    Hold(String),
}

/// Everything quiet that survives restarts (`state_dir/quiet`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiet {
    /// By check identity.
    #[serde(default)]
    pub acks: BTreeMap<String, Ack>,
    #[serde(default)]
    pub silences: Vec<Silence>,
    #[serde(default)]
    next_id: u64,
    /// Checks whose Problem was held by a silence and not mailed yet.
    #[serde(default)]
    pub held: BTreeSet<String>,
}

impl Quiet {
    /// The silence or maintenance window covering `s` now, by id.
    pub fn silenced_by(&self, s: Subject, now: Now, maint: &[Maintenance]) -> Option<String> {
        let t = now.steady;
        if let Some(x) = self
            .silences
            .iter()
            .find(|x| x.start <= t && t < x.until && s.matches(&x.pattern))
        {
            return Some(x.id.clone());
        }
        maint
            .iter()
            .find(|m| s.matches(&m.pattern) && m.active(now.wall))
            .map(Maintenance::id)
    }

    /// Whether a maintenance window covers `s` at `wall` (silences aside).
    pub fn in_maintenance(s: Subject, wall: UnixMicros, maint: &[Maintenance]) -> bool {
        maint
            .iter()
            .any(|m| s.matches(&m.pattern) && m.active(wall))
    }

    /// The same acks and silences with their times moved by `offset`: a
    /// steady time plus [`Now::offset`] is the wall time to show or save.
    pub fn as_wall(&self, offset: i64) -> Quiet {
        let mut q = self.clone();
        for a in q.acks.values_mut() {
            a.at = a.at.saturating_add(offset);
            a.until = a.until.map(|u| u.saturating_add(offset));
        }
        for x in &mut q.silences {
            x.start = x.start.saturating_add(offset);
            x.until = x.until.saturating_add(offset);
        }
        q
    }

    /// Acknowledges a check in PROBLEM.
    pub fn ack(&mut self, check_id: &str, ack: Ack) {
        self.acks.insert(check_id.to_string(), ack);
    }

    /// Adds a silence; returns its id.
    pub fn silence(
        &mut self,
        pattern: &str,
        by: &str,
        comment: &str,
        now: UnixMicros,
        until: UnixMicros,
    ) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.silences.push(Silence {
            id: id.clone(),
            pattern: pattern.to_string(),
            by: by.to_string(),
            comment: comment.to_string(),
            start: now,
            until,
        });
        id
    }

    /// Ends a silence now; the checks it held are released by the next
    /// [`Quiet::release`].
    pub fn unsilence(&mut self, id: &str) -> Option<Silence> {
        let i = self.silences.iter().position(|x| x.id == id)?;
        Some(self.silences.remove(i))
    }

    /// Decides about one transition of `s`, ending acks it ends. `kind` is
    /// what the transition counts as for acks and silences: "stopped
    /// flapping" counts as the Problem (still failing) or the Recovery (OK)
    /// it is; reminders, escalations and "flapping" touch no ack.
    pub fn gate(
        &mut self,
        s: Subject,
        kind: TransitionKind,
        now: Now,
        maint: &[Maintenance],
    ) -> Gate {
        let silenced = self.silenced_by(s, now, maint);
        let sticky_ack = match kind {
            TransitionKind::Recovery => {
                self.acks.remove(s.id);
                false
            }
            TransitionKind::Update => match self.acks.get(s.id) {
                Some(a) if a.sticky => true,
                Some(_) => {
                    self.acks.remove(s.id);
                    false
                }
                None => false,
            },
            _ => false,
        };
        match (kind, silenced) {
            // Its Problem was never mailed: neither is its Recovery.
            (TransitionKind::Recovery, _) if self.held.remove(s.id) => {
                Gate::Hold("recovered while its Problem was held".into())
            }
            (TransitionKind::Problem, Some(by)) => {
                self.held.insert(s.id.to_string());
                Gate::Hold(format!("silenced by {by}"))
            }
            (_, Some(by)) => Gate::Hold(format!("silenced by {by}")),
            (TransitionKind::Problem, None) => Gate::Mail,
            (_, None) if self.held.contains(s.id) => Gate::Hold("its Problem is still held".into()),
            (TransitionKind::Update, None) if sticky_ack => Gate::Hold("acknowledged".into()),
            _ => Gate::Mail,
        }
    }

    /// Drops expired silences and acks (`now` a steady time); true when
    /// something ended.
    pub fn expire(&mut self, now: UnixMicros) -> bool {
        let before = (self.silences.len(), self.acks.len());
        self.silences.retain(|x| now < x.until);
        self.acks.retain(|_, a| a.until.is_none_or(|u| now < u));
        before != (self.silences.len(), self.acks.len())
    }

    /// Held checks no longer silenced: their Problem is due now (the
    /// caller mails it when the check is still in PROBLEM). They leave
    /// the held set.
    pub fn release<'a>(
        &mut self,
        subjects: impl IntoIterator<Item = Subject<'a>>,
        now: Now,
        maint: &[Maintenance],
    ) -> Vec<String> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for s in subjects {
            if self.held.contains(s.id) && self.silenced_by(s, now, maint).is_none() {
                self.held.remove(s.id);
                out.push(s.id.to_string());
            }
        }
        out
    }

    /// Forgets what belongs to checks no longer configured.
    pub fn retain_checks(&mut self, known: impl Fn(&str) -> bool) {
        self.acks.retain(|id, _| known(id));
        self.held.retain(|id| known(id));
    }
}

/// Loads `state_dir/quiet`; missing is empty, corrupt is an error naming
/// the file.
pub fn load(state_dir: &std::path::Path) -> std::io::Result<Quiet> {
    let file = state_dir.join(QUIET_FILE);
    match std::fs::read(&file) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is corrupt ({e}); move it away to drop the acks and silences",
                    file.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Quiet::default()),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", file.display()),
        )),
    }
}

/// Saves `state_dir/quiet` atomically.
pub fn save(state_dir: &std::path::Path, q: &Quiet) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(q).map_err(std::io::Error::other)?;
    crate::fs::write_atomic(&state_dir.join(QUIET_FILE), &bytes)
}

/// Shell-style glob: `*` any run, `?` one character, everything else
/// literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Greedy with one backtrack point: the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
