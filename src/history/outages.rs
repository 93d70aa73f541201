//! The outages the log tells of, for `picomon history`. Pure: lines in
//! (oldest first), outages out (newest first).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Kind, Record};
use crate::clock::UnixMicros;

/// One outage of one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    pub check: String,
    /// Unix seconds: the first failed run.
    pub start: i64,
    /// Unix seconds: the Recovery; `null` while ongoing.
    pub end: Option<i64>,
    pub ongoing: bool,
    /// Seconds from the first failed run to the Recovery (or to now).
    pub duration: f64,
    /// The worst status it had (CRITICAL over UNKNOWN over WARNING).
    pub worst: String,
    /// The first output line of its Problem.
    pub output: String,
    /// Held as UNREACHABLE: a check it depends on failed.
    pub unreachable: bool,
    pub ack: Option<OutageAck>,
    #[serde(skip)]
    start_micros: UnixMicros,
}

impl Outage {
    /// Its first failed run, in Unix microseconds (`start` is in seconds).
    pub fn start_micros(&self) -> UnixMicros {
        self.start_micros
    }
}

/// Who acknowledged an outage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageAck {
    pub by: String,
    pub comment: String,
    /// Unix seconds.
    pub at: i64,
}

/// How bad a status is, for "worst".
pub(super) fn rank(status: &str) -> u8 {
    match status {
        "CRITICAL" => 3,
        "UNKNOWN" => 2,
        "WARNING" => 1,
        _ => 0,
    }
}

fn secs(at: UnixMicros) -> i64 {
    at.div_euclid(1_000_000)
}

/// The outages of the checks `keep` accepts, newest first, as of `now`.
pub fn outages(
    lines: impl IntoIterator<Item = Record>,
    keep: impl Fn(&str) -> bool,
    now: UnixMicros,
) -> Vec<Outage> {
    let mut b = Builder::default();
    for r in lines {
        if !r.check.is_empty() && keep(&r.check) {
            b.push(&r);
        }
    }
    b.finish(now)
}

/// Outages made line by line, so a reader of the log holds the outages
/// and never the lines.
#[derive(Debug, Default)]
pub struct Builder {
    open: HashMap<String, Outage>,
    done: Vec<Outage>,
}

impl Builder {
    /// The next line (oldest first).
    pub fn push(&mut self, r: &Record) {
        if r.check.is_empty() {
            return;
        }
        let ok = r.status.as_deref() == Some("OK");
        let opens = match r.kind {
            Kind::Seen => r.outage.is_some(),
            Kind::Problem | Kind::Unreachable | Kind::Update => true,
            Kind::FlappingStop => !ok,
            Kind::FlappingStart => r.outage.is_some(),
            _ => false,
        };
        if opens {
            let start = r.outage.unwrap_or(r.at);
            let o = self.open.entry(r.check.clone()).or_insert_with(|| Outage {
                check: r.check.clone(),
                start: secs(start),
                end: None,
                ongoing: true,
                duration: 0.0,
                worst: String::new(),
                output: String::new(),
                unreachable: false,
                ack: None,
                start_micros: start,
            });
            if let Some(s) = &r.status {
                if o.worst.is_empty() || rank(s) > rank(&o.worst) {
                    o.worst = s.clone();
                }
            }
            if o.output.is_empty() && r.kind != Kind::Seen {
                o.output = r.text.clone();
            }
            o.unreachable |= r.kind == Kind::Unreachable;
            return;
        }
        match r.kind {
            Kind::Ack => {
                if let Some(o) = self.open.get_mut(&r.check) {
                    o.ack = Some(OutageAck {
                        by: r.by.clone().unwrap_or_default(),
                        comment: r.text.clone(),
                        at: secs(r.at),
                    });
                }
            }
            Kind::Recovery | Kind::FlappingStop | Kind::FlappingStart
                if ok || r.kind == Kind::Recovery =>
            {
                if let Some(mut o) = self.open.remove(&r.check) {
                    o.end = Some(secs(r.at));
                    o.ongoing = false;
                    o.duration = (r.at - o.start_micros) as f64 / 1e6;
                    self.done.push(o);
                }
            }
            _ => {}
        }
    }

    /// The outages, newest first; those still open last until `now`.
    pub fn finish(self, now: UnixMicros) -> Vec<Outage> {
        let mut all = self.done;
        for (_, mut o) in self.open {
            o.duration = (now - o.start_micros).max(0) as f64 / 1e6;
            all.push(o);
        }
        crate::sort::by(&mut all, |a, b| {
            b.start_micros
                .cmp(&a.start_micros)
                .then_with(|| a.check.cmp(&b.check))
        });
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_773_576_000_000_000;
    const MIN: i64 = 60_000_000;

    fn line(at: i64, kind: Kind, check: &str, status: &str, outage: i64) -> Record {
        Record {
            status: Some(status.into()),
            outage: Some(outage),
            ..Record::new(at, kind, check).with_text(&format!("{status} - at {at}"))
        }
    }

    #[test]
    fn outages_newest_first_with_worst_status_ack_and_ongoing() {
        let ack = Record {
            by: Some("alice".into()),
            ..Record::new(T0 + 3 * MIN, Kind::Ack, "web").with_text("on it")
        };
        let lines = vec![
            Record::new(T0, Kind::Seen, "web"),
            line(T0 + 2 * MIN, Kind::Problem, "web", "WARNING", T0 + MIN),
            ack,
            line(T0 + 4 * MIN, Kind::Update, "web", "CRITICAL", T0 + MIN),
            line(T0 + 5 * MIN, Kind::Update, "web", "WARNING", T0 + MIN),
            line(T0 + 6 * MIN, Kind::Recovery, "web", "OK", T0 + MIN),
            line(T0 + 7 * MIN, Kind::Problem, "db", "CRITICAL", T0 + 7 * MIN),
            line(T0 + 8 * MIN, Kind::Problem, "web", "UNKNOWN", T0 + 8 * MIN),
        ];
        let all = outages(lines.clone(), |_| true, T0 + 10 * MIN);
        let got: Vec<_> = all
            .iter()
            .map(|o| (o.check.as_str(), o.worst.as_str(), o.ongoing, o.duration))
            .collect();
        assert_eq!(
            got,
            [
                ("web", "UNKNOWN", true, 120.0),
                ("db", "CRITICAL", true, 180.0),
                ("web", "CRITICAL", false, 300.0),
            ]
        );
        let first = &all[2];
        assert_eq!(first.start, (T0 + MIN) / 1_000_000);
        assert_eq!(first.end, Some((T0 + 6 * MIN) / 1_000_000));
        assert!(first.output.starts_with("WARNING - at"), "{}", first.output);
        let ack = first.ack.as_ref().expect("acked");
        assert_eq!((ack.by.as_str(), ack.comment.as_str()), ("alice", "on it"));
        let web = outages(lines, |c| c == "web", T0 + 10 * MIN);
        assert_eq!(web.len(), 2);
    }

    #[test]
    fn a_month_file_that_begins_in_an_outage_opens_it() {
        let seen = Record {
            since: Some(T0),
            outage: Some(T0 + MIN),
            status: Some("CRITICAL".into()),
            ..Record::new(T0 + 30 * MIN, Kind::Seen, "web")
        };
        // A repeated Problem (a silence ended) is the same outage.
        let lines = vec![
            seen,
            line(T0 + 40 * MIN, Kind::Problem, "web", "CRITICAL", T0 + MIN),
            line(T0 + 61 * MIN, Kind::Recovery, "web", "OK", T0 + MIN),
        ];
        let all = outages(lines, |_| true, T0 + 100 * MIN);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].duration, 3600.0);
        assert_eq!(all[0].output, "CRITICAL - at 1773578400000000");
    }
}
