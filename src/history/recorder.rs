//! The loop's side of the log: appends its lines, writes the `seen` lines
//! a new file starts with, and keeps the [`Summary`] of each check that
//! its availability is computed from (read once at start from the files
//! of the last 30 days, then kept up to date line by line).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::availability::Day;
use super::availability::{Compact, KEEP};
use super::journal::{self, Journal, Limits};
use super::{Availability, Kind, Record, Summary};
use crate::clock::UnixMicros;

#[derive(Debug)]
pub struct Recorder {
    journal: Journal,
    /// The config's checks in its order (a check is named by its
    /// position there): the identity the config's check holds (no copy)
    /// and its summary, 32 bytes for a check that never failed.
    checks: Vec<(Arc<str>, Compact)>,
    /// What the log said of each check when it was opened, until the
    /// config's checks are known.
    read: HashMap<Arc<str>, Summary>,
    /// An error was logged; said again only once writing works again.
    failing: bool,
}

impl Recorder {
    /// The log in `state_dir/history` as of `now`: what the last 30 days
    /// say of each check is read (a failure to read is logged: the figures
    /// then start now).
    pub fn open(state_dir: &Path, limits: Limits, now: UnixMicros) -> Recorder {
        let mut read: HashMap<Arc<str>, Summary> = HashMap::new();
        // A day more: the month files start at UTC midnight.
        let from = journal::month_of(now - KEEP - 86_400_000_000);
        if let Err(e) = journal::read(state_dir, Some(&from), |r| {
            if !r.check.is_empty() {
                match read.get_mut(r.check.as_str()) {
                    Some(s) => s.apply(&r),
                    None => {
                        let mut s = Summary::default();
                        s.apply(&r);
                        read.insert(r.check.as_str().into(), s);
                    }
                }
            }
        }) {
            log::error!(
                "history: cannot read {}: {e}",
                state_dir.join(super::DIR).display()
            );
        }
        Recorder {
            journal: Journal::new(state_dir, limits),
            checks: Vec::new(),
            read,
            failing: false,
        }
    }

    /// The config's checks, in its order: the new ones are seen now, the
    /// others' summaries dropped (their lines stay in the log).
    pub fn set_checks<'a>(&mut self, ids: impl Iterator<Item = &'a Arc<str>>, now: UnixMicros) {
        let mut known: HashMap<Arc<str>, Compact> =
            std::mem::take(&mut self.checks).into_iter().collect();
        known.extend(
            std::mem::take(&mut self.read)
                .into_iter()
                .map(|(id, s)| (id, Compact::from_summary(s))),
        );
        let ids = ids.into_iter();
        let mut checks = Vec::with_capacity(ids.size_hint().0);
        let mut new = Vec::new();
        for id in ids {
            let summary = match known.remove(id.as_ref()) {
                Some(s) if s.get().first_seen().is_some() => s,
                _ => {
                    new.push(checks.len());
                    Compact::default()
                }
            };
            checks.push((Arc::clone(id), summary));
        }
        drop(known);
        checks.shrink_to_fit();
        self.checks = checks;
        for i in new {
            let id = Arc::clone(&self.checks[i].0);
            self.record(Some(i), Record::new(now, Kind::Seen, &id));
        }
    }

    /// Appends `r` (and, first in a new month's file, a `seen` line per
    /// check) and updates the summary of its check, the one at position
    /// `check` (`None`: a line of no check, a silence). A failure is
    /// logged, never an error: the log must not stop an alert.
    pub fn record(&mut self, check: Option<usize>, r: Record) {
        if let Some((id, s)) = check.and_then(|i| self.checks.get_mut(i)) {
            debug_assert_eq!(**id, *r.check);
            s.apply(&r);
        }
        let result = (|| {
            if self.journal.open_for(r.at)? {
                let mut seen: Vec<&(Arc<str>, Compact)> = self.checks.iter().collect();
                crate::sort::by(&mut seen, |a, b| a.0.cmp(&b.0));
                for (id, s) in seen {
                    if **id == *r.check && r.kind == Kind::Seen {
                        continue;
                    }
                    let s = s.get();
                    let line = Record {
                        since: s.first_seen(),
                        outage: s.outage(),
                        status: s.worst().map(str::to_string),
                        maintenance: s.in_maintenance(),
                        ..Record::new(r.at, Kind::Seen, id)
                    };
                    self.journal.write(&line)?;
                }
            }
            self.journal.write(&r)
        })();
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                log::info!("history: writing again");
            }
            Ok(()) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                log::error!("history: cannot append to the log: {e}");
            }
            Err(_) => {}
        }
    }

    /// fsync of what was appended since the last call.
    pub fn sync(&mut self) {
        self.journal.sync();
    }

    /// The availability at `now` of the check at position `check`.
    pub fn availability(&self, check: usize, now: UnixMicros) -> Availability {
        self.checks
            .get(check)
            .map(|(_, s)| s.get().availability(now))
            .unwrap_or_default()
    }

    /// The local days `starts` (from [`super::availability::day_starts`])
    /// of the check at position `check`, oldest first.
    pub fn days(&self, check: usize, starts: &[UnixMicros], now: UnixMicros) -> Vec<Day> {
        self.checks
            .get(check)
            .map(|(_, s)| s.get().days_of(starts, now))
            .unwrap_or_default()
    }

    /// Whether the log has the check at position `check` in a
    /// maintenance window.
    pub fn in_maintenance(&self, check: usize) -> bool {
        self.checks
            .get(check)
            .is_some_and(|(_, s)| s.get().in_maintenance())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_773_576_000_000_000;
    const HOUR: i64 = 3_600_000_000;

    fn ids(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|&n| Arc::from(n)).collect()
    }

    fn problem(at: i64, check: &str) -> Record {
        Record {
            status: Some("CRITICAL".into()),
            outage: Some(at),
            ..Record::new(at, Kind::Problem, check)
        }
    }

    #[test]
    fn summaries_survive_a_restart_and_a_new_month_starts_with_seen_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let mut r = Recorder::open(tmp.path(), Limits::default(), T0);
        r.set_checks(ids(&["web", "db"]).iter(), T0);
        r.record(Some(0), problem(T0 + HOUR, "web"));
        r.sync();
        let day = r.availability(0, T0 + 2 * HOUR).day.unwrap();
        assert_eq!(day, 50.0);
        assert_eq!(r.availability(1, T0 + 2 * HOUR).day, Some(100.0));
        drop(r);
        // Restarted: the same figures from the file; "db" left the config.
        let mut r = Recorder::open(tmp.path(), Limits::default(), T0 + 2 * HOUR);
        r.set_checks(ids(&["web"]).iter(), T0 + 2 * HOUR);
        assert_eq!(r.availability(0, T0 + 2 * HOUR).day, Some(50.0));
        assert_eq!(r.availability(1, T0 + 2 * HOUR).day, None);
        // April: the new file says web is seen since T0 and down.
        let april = T0 + 20 * 24 * HOUR;
        r.record(Some(0), Record::new(april, Kind::Ack, "web"));
        let mut lines = Vec::new();
        journal::read(tmp.path(), Some("2026-04"), |l| lines.push(l)).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].kind, Kind::Seen);
        assert_eq!(lines[0].since, Some(T0));
        assert_eq!(lines[0].outage, Some(T0 + HOUR));
        assert_eq!(lines[0].status.as_deref(), Some("CRITICAL"));
        assert_eq!(lines[1].kind, Kind::Ack);
    }
}
