//! What the loop hands the HTTP listener per request: the status of
//! `picomon status --json` plus the counters only `/metrics` and the status
//! page show. The listener renders it on its own thread; the loop only
//! copies.

use std::collections::HashMap;
use std::time::Duration;

use crate::control::protocol::StatusReport;

/// One answer of the loop to [`crate::control::Request::Http`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub report: StatusReport,
    /// Recent run durations in seconds, oldest first, one list per check in
    /// the order of `report.checks` (empty lists until runs were seen).
    pub recent: Vec<Vec<f32>>,
    /// Transitions since start, by kind (`problem`, `update`, ...).
    pub transitions: Vec<(&'static str, u64)>,
    /// Due runs skipped because the check's previous run still went on.
    pub runs_skipped: u64,
    /// Bytes waiting in each passive output's spool.
    pub spool_bytes: Vec<(String, u64)>,
    /// Notifications waiting per channel (`mail`, ...).
    pub pending: Vec<(String, usize)>,
    /// How often the status page reloads itself.
    pub refresh: Duration,
}

/// Durations kept per check for the status page's sparkline.
pub const RECENT: usize = 30;

/// A check's last [`RECENT`] run durations (a ring).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recent {
    secs: [f32; RECENT],
    len: u8,
    next: u8,
}

impl Recent {
    fn push(&mut self, secs: f32) {
        self.secs[self.next as usize] = secs;
        self.next = ((self.next as usize + 1) % RECENT) as u8;
        self.len = (self.len as usize + 1).min(RECENT) as u8;
    }

    /// Oldest first.
    pub fn values(&self) -> Vec<f32> {
        let len = self.len as usize;
        let start = (self.next as usize + RECENT - len) % RECENT;
        (0..len).map(|i| self.secs[(start + i) % RECENT]).collect()
    }
}

/// The loop's table of recent durations by check identity. It exists only
/// while `config.listen` is set: the loop holds an empty
/// `Option<Box<Durations>>` otherwise, and a check nothing at all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Durations(HashMap<String, Recent>);

impl Durations {
    /// Notes a run of check `id`: creates the table when `keep`, drops it
    /// when not.
    pub fn record(slot: &mut Option<Box<Durations>>, keep: bool, id: &str, d: Duration) {
        if !keep {
            *slot = None;
            return;
        }
        let table = slot.get_or_insert_with(Box::default);
        match table.0.get_mut(id) {
            Some(r) => r.push(d.as_secs_f32()),
            None => {
                let mut r = Recent::default();
                r.push(d.as_secs_f32());
                table.0.insert(id.to_string(), r);
            }
        }
    }

    /// After a reload: drops the table when the listener is off, and the
    /// checks that are gone (`exists` says which remain).
    pub fn follow(slot: &mut Option<Box<Durations>>, keep: bool, exists: impl Fn(&str) -> bool) {
        match slot {
            Some(_) if !keep => *slot = None,
            Some(table) => table.0.retain(|id, _| exists(id)),
            None => {}
        }
    }

    /// Check `id`'s durations, oldest first (none yet: empty).
    pub fn of(&self, id: &str) -> Vec<f32> {
        self.0.get(id).map(Recent::values).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_durations_oldest_first() {
        let mut slot = None;
        for i in 0..(RECENT + 5) {
            Durations::record(&mut slot, true, "a", Duration::from_secs(i as u64));
        }
        let v = slot.as_ref().unwrap().of("a");
        assert_eq!(v.len(), RECENT);
        assert_eq!(v[0], 5.0);
        assert_eq!(*v.last().unwrap(), (RECENT + 4) as f32);
        Durations::record(&mut slot, false, "a", Duration::ZERO);
        assert!(slot.is_none(), "dropped when the listener is off");
    }

    #[test]
    fn a_young_ring_holds_only_what_was_seen_and_gone_checks_leave() {
        let mut slot = None;
        Durations::record(&mut slot, true, "a", Duration::from_millis(250));
        Durations::record(&mut slot, true, "a", Duration::from_millis(500));
        Durations::record(&mut slot, true, "b", Duration::from_millis(1));
        assert_eq!(slot.as_ref().unwrap().of("a"), vec![0.25, 0.5]);
        assert!(slot.as_ref().unwrap().of("c").is_empty());
        Durations::follow(&mut slot, true, |id| id == "a");
        assert!(slot.as_ref().unwrap().of("b").is_empty());
        Durations::follow(&mut slot, false, |_| true);
        assert!(slot.is_none());
    }
}
