//! Two picomons for one job. `config.standby_for = "mon1"` makes this one
//! a standby: while the check "mon1" (usually a `peer()` of the primary)
//! is not in PROBLEM, every check runs but nothing is announced. When it
//! goes PROBLEM, one "taking over from mon1" mail lists what is in PROBLEM
//! now, and from then on this picomon announces as usual, owning the
//! threads it opens (and those it took over) until they recover. When
//! "mon1" is OK again, one "mon1 is back, standing by" mail; owned threads
//! go on to their end.
//!
//! The other half, on any picomon: a `peer()` result lists the checks the
//! peer announced (its `/api/v1/checks`, `announced: true`); a check of
//! the same identity failing here leaves that outage to the peer, so a
//! thread is announced by one of the two. A peer that cannot be reached
//! lists nothing: both announce (a duplicate, never a silence).
//!
//! ```text
//!   standby_for OK ──────> stand by: hold all but owned threads
//!   standby_for PROBLEM ─> "taking over" mail; own what is in PROBLEM
//!   standby_for OK again > "is back, standing by" mail
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::alert::{Phase, TransitionKind};
use crate::clock::{Clock, UnixMicros};
use crate::model::Outcome;
use crate::notify::Notice;

use super::Daemon;

/// The threads a standby owns and whether it has taken over, in the state
/// dir.
const STANDBY_FILE: &str = "standby";

/// What `state_dir/standby` holds. A file from before `active` was kept
/// is the bare list of owned threads (read as not taken over).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Saved {
    Now {
        active: bool,
        owned: BTreeSet<String>,
    },
    Owned(BTreeSet<String>),
}

/// What a standby and its peers' claims need between ticks.
#[derive(Debug, Default)]
pub(super) struct Standby {
    /// The position of the `standby_for` check; `None` when not a
    /// standby.
    primary: Option<usize>,
    /// Taken over: the `standby_for` check is in PROBLEM (kept with
    /// `owned`, so a restart during the takeover sends no second
    /// "taking over" mail).
    active: bool,
    /// Identities whose outage this standby announces until it ends
    /// (kept in `state_dir/standby`, so a restart does not drop them).
    owned: BTreeSet<String>,
    /// `owned` changed since it was saved.
    dirty: bool,
    /// Identities whose current outage a peer announced: not announced
    /// here until it ends (or the peer is down); the value is the peer
    /// check's identity.
    left_to_peer: BTreeMap<String, String>,
}

impl<C: Clock> Daemon<C> {
    /// Finds the `standby_for` check (after start and reloads).
    pub(super) fn index_standby(&mut self) {
        let want = self.cfg.standby_for.clone();
        self.standby.primary = want.and_then(|w| {
            let known: Vec<crate::model::identity::Known> = self
                .checks
                .iter()
                .map(|t| crate::model::identity::Known::from(&*t.spec))
                .collect();
            crate::model::identity::find(&known, &w).ok()
        });
        let (checks, index) = (&self.checks, &self.index);
        self.standby
            .owned
            .retain(|id| index.get(checks, id.as_str()).is_some());
        self.standby
            .left_to_peer
            .retain(|id, _| index.get(checks, id.as_str()).is_some());
    }

    /// Whether this picomon announces check `i`'s current outage (the
    /// `announced` field of `/api/v1/checks`).
    pub(super) fn announced(&self, i: usize) -> bool {
        let t = &self.checks[i];
        let s = &self.standby;
        t.alert.phase == Phase::Problem
            && Some(i) != s.primary
            && !s.left_to_peer.contains_key(&*t.spec.id)
            && (s.primary.is_none() || s.owned.contains(&*t.spec.id))
    }

    /// A `peer()` result of check `i`: the outages the peer announced are
    /// left to it.
    pub(super) fn note_peer_claims(&mut self, i: usize, outcome: &Outcome) {
        let Some(list) = outcome
            .data
            .as_ref()
            .and_then(|d| d.get(crate::health::PEER_ANNOUNCED))
            .and_then(|v| v.as_array())
        else {
            return;
        };
        let peer = self.checks[i].spec.id.clone();
        for id in list.iter().filter_map(|v| v.as_str()) {
            let Some(j) = self.position(id) else {
                continue;
            };
            let t = &self.checks[j];
            if t.alert.phase == Phase::Ok
                || self.standby.owned.contains(id)
                || self.standby.left_to_peer.contains_key(id)
            {
                continue;
            }
            log::info!(
                "{}: its outage is announced by the peer {peer}: not announced here until it ends",
                t.spec.title()
            );
            self.standby
                .left_to_peer
                .insert(id.to_string(), peer.to_string());
        }
    }

    /// Before a batch is announced: takes over or stands by again as the
    /// `standby_for` check says, with the one mail each turn makes.
    pub(super) fn standby_turn(&mut self, now: UnixMicros) {
        let Some(p) = self.standby.primary else {
            return;
        };
        let primary = self.checks[p].spec.name.clone();
        let down = self.checks[p].alert.phase == Phase::Problem;
        if down == self.standby.active {
            return;
        }
        self.standby.active = down;
        self.standby.dirty = true;
        let mut lines = Vec::new();
        if down {
            for (i, t) in self.checks.iter().enumerate() {
                if i == p || t.alert.phase != Phase::Problem {
                    continue;
                }
                if let Some(peer) = self.standby.left_to_peer.get(&*t.spec.id) {
                    lines.push(format!("  {} (announced by {peer})", t.spec.title()));
                    continue;
                }
                self.standby.dirty |= self.standby.owned.insert(t.spec.id.to_string());
                lines.push(format!(
                    "  {}: {}",
                    t.spec.title(),
                    t.last_output.first_line()
                ));
            }
            let why = self.checks[p].last_output.first_line();
            let body = format!(
                "{primary} is in PROBLEM ({why}).\nThis picomon announces from now on, until \
                 {primary} is OK again.\n\nIn PROBLEM now ({}):\n{}\n",
                lines.len(),
                if lines.is_empty() {
                    "  nothing".to_string()
                } else {
                    lines.join("\n")
                }
            );
            log::warn!(
                "taking over from {primary}: {} checks in PROBLEM",
                lines.len()
            );
            self.notifier
                .note(&format!("taking over from {primary}"), &body, now);
        } else {
            for id in &self.standby.owned {
                if let Some(i) = self.position(id.as_str()) {
                    lines.push(format!("  {}", self.checks[i].spec.title()));
                }
            }
            let body = format!(
                "{primary} is OK again: this picomon stands by and announces nothing new.\n\
                 Threads it announced go on until they recover ({}):\n{}\n",
                lines.len(),
                if lines.is_empty() {
                    "  none".to_string()
                } else {
                    lines.join("\n")
                }
            );
            log::info!("{primary} is back: standing by");
            self.notifier
                .note(&format!("{primary} is back, standing by"), &body, now);
        }
    }

    /// Whether notice `n` of check `i` is held by the standby or a peer's
    /// claim; notes the threads a standby owns.
    pub(super) fn standby_gate(&mut self, i: usize, n: &Notice) -> Option<String> {
        let id: &str = &self.checks[i].spec.id;
        let s = &mut self.standby;
        let ends = matches!(
            n.transition.kind,
            TransitionKind::Recovery | TransitionKind::FlappingStop
        ) && !n.transition.opens_outage();
        if let Some(peer) = s.left_to_peer.get(id).cloned() {
            if ends {
                s.left_to_peer.remove(id);
            }
            return Some(format!("announced by the peer {peer}"));
        }
        let p = s.primary?;
        if i == p {
            return Some("the standby_for check: its turns are the takeover mails".into());
        }
        if !s.active && !s.owned.contains(id) {
            return Some(format!("standing by for {}", self.checks[p].spec.name));
        }
        if n.transition.opens_outage() {
            s.dirty |= s.owned.insert(id.to_string());
        } else if ends {
            s.dirty |= s.owned.remove(id);
        }
        None
    }

    /// Claims of a peer that is in PROBLEM itself (out of reach, dead)
    /// lapse: its outages are announced here. Before a batch is gated.
    pub(super) fn standby_drop_down_peers(&mut self) {
        let (checks, index) = (&self.checks, &self.index);
        let down = |id: &String| {
            index
                .get(checks, id.as_str())
                .map(|i| checks[i].alert.phase)
                == Some(Phase::Problem)
        };
        self.standby.left_to_peer.retain(|id, peer| {
            if down(peer) {
                log::info!(
                    "{id}: the peer {peer} that announced its outage is down: announced here"
                );
            }
            !down(peer)
        });
    }

    /// An outage that ended without a notice (held, flapping) ends its
    /// claims too. After a batch was gated (it may hold the Recovery).
    pub(super) fn standby_tidy(&mut self) {
        let (checks, index) = (&self.checks, &self.index);
        let failing = |id: &String| {
            index
                .get(checks, id.as_str())
                .is_some_and(|i| checks[i].alert.phase != Phase::Ok)
        };
        self.standby.left_to_peer.retain(|id, _| failing(id));
        let before = self.standby.owned.len();
        self.standby.owned.retain(failing);
        self.standby.dirty |= before != self.standby.owned.len();
        self.save_standby();
    }

    /// Writes `state_dir/standby` when the owned threads or the takeover
    /// changed.
    fn save_standby(&mut self) {
        if !self.standby.dirty || self.standby.primary.is_none() {
            return;
        }
        let path = self.cfg.state_dir.join(STANDBY_FILE);
        let saved = Saved::Now {
            active: self.standby.active,
            owned: self.standby.owned.clone(),
        };
        let bytes = serde_json::to_vec(&saved).unwrap_or_default();
        match crate::fs::write_atomic(&path, &bytes) {
            Ok(()) => self.standby.dirty = false,
            Err(e) => log::error!("cannot save {}: {e}", path.display()),
        }
    }

    /// After a restart: the threads this standby owned, and whether it
    /// had taken over (then the primary's failure, restored with the
    /// state, makes no second takeover mail).
    pub fn restore_standby(&mut self) {
        let path = self.cfg.state_dir.join(STANDBY_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        match serde_json::from_slice::<Saved>(&bytes) {
            Ok(saved) => {
                let (active, owned) = match saved {
                    Saved::Now { active, owned } => (active, owned),
                    Saved::Owned(owned) => (false, owned),
                };
                self.standby.active = active && self.standby.primary.is_some();
                let (checks, index) = (&self.checks, &self.index);
                self.standby.owned = owned
                    .into_iter()
                    .filter(|id| index.get(checks, id.as_str()).is_some())
                    .collect();
            }
            Err(e) => log::error!(
                "{}: not a standby record ({e}); owned threads forgotten",
                path.display()
            ),
        }
    }

    /// Whether check `i` is announced by nobody here now (standing by, or
    /// left to a peer): no reminder, acknowledgement or report about it.
    pub(super) fn standby_quiet(&self, i: usize) -> bool {
        let s = &self.standby;
        let id: &str = &self.checks[i].spec.id;
        s.left_to_peer.contains_key(id)
            || match s.primary {
                None => false,
                Some(p) => i == p || (!s.active && !s.owned.contains(id)),
            }
    }
}
