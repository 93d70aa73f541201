//! `picomon history [CHECK] [--since 30d] [--json]`: the outages the log
//! in `state_dir/history` tells of, newest first. It reads the files
//! itself, so it answers with or without a daemon running.

use std::path::Path;

use crate::clock::{hms, local_datetime, now_unix_micros};
use crate::history::outages::Builder;
use crate::history::{journal, report, Outage};

/// Prints the outages of the checks `check` names (a name, an identity or
/// a glob, matched against the identity and, for a name several targets
/// share, `NAME on *`; all without it) that ended within `since_secs` or are ongoing.
pub fn run(
    state_dir: &Path,
    check: Option<&str>,
    since_secs: u64,
    json: bool,
) -> anyhow::Result<i32> {
    let now = now_unix_micros();
    let list = read(state_dir, check, since_secs, now)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", render(&list, since_secs, now));
    }
    Ok(0)
}

/// Prints the availability report of the checks `check` names over the
/// last `since_secs`, as CSV (the availability mail's attachment).
pub fn csv(state_dir: &Path, check: Option<&str>, since_secs: u64) -> anyhow::Result<i32> {
    let now = now_unix_micros();
    let from = now.saturating_sub(i64::try_from(since_secs).unwrap_or(i64::MAX / 2) * 1_000_000);
    let keep = |id: &str| check.is_none_or(|c| crate::alert::quiet::glob_match(c, id));
    let rows = report::read(state_dir, keep, from, now).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the outage log in {}: {e}",
            state_dir.join(crate::history::DIR).display()
        )
    })?;
    print!("{}", report::csv(&rows, from, now));
    Ok(0)
}

/// The outages as `run` selects them.
pub fn read(
    state_dir: &Path,
    check: Option<&str>,
    since_secs: u64,
    now: crate::clock::UnixMicros,
) -> anyhow::Result<Vec<Outage>> {
    // A name several targets share is in each identity as `NAME on TARGET`.
    let keep = |id: &str| {
        check.is_none_or(|c| {
            crate::alert::quiet::glob_match(c, id)
                || crate::alert::quiet::glob_match(&format!("{c} on *"), id)
        })
    };
    let mut outages = Builder::default();
    journal::read(state_dir, None, |r| {
        if keep(&r.check) {
            outages.push(&r);
        }
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot read the outage log in {}: {e}",
            state_dir.join(crate::history::DIR).display()
        )
    })?;
    let from = now
        .div_euclid(1_000_000)
        .saturating_sub(i64::try_from(since_secs).unwrap_or(i64::MAX));
    let mut list = outages.finish(now);
    list.retain(|o| o.end.is_none_or(|e| e >= from));
    Ok(list)
}

/// The table for a person.
fn render(list: &[Outage], since_secs: u64, now: crate::clock::UnixMicros) -> String {
    if list.is_empty() {
        return format!(
            "no outages in the last {} (as of {})\n",
            crate::duration::format(since_secs),
            local_datetime(now)
        );
    }
    let mut rows = vec![[
        "START".to_string(),
        "END".into(),
        "DURATION".into(),
        "WORST".into(),
        "CHECK".into(),
        "ACK".into(),
        "OUTPUT".into(),
    ]];
    for o in list {
        rows.push([
            local_datetime(o.start * 1_000_000),
            o.end
                .map_or_else(|| "ongoing".into(), |e| local_datetime(e * 1_000_000)),
            hms((o.duration * 1e6) as i64),
            if o.unreachable {
                format!("{} (unreachable)", o.worst)
            } else {
                o.worst.clone()
            },
            o.check.clone(),
            o.ack
                .as_ref()
                .map_or_else(|| "-".into(), |a| format!("{}: {}", a.by, a.comment)),
            o.output.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i == 6 {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Journal, Kind, Limits, Record};

    const T0: i64 = 1_773_576_000_000_000;
    const MIN: i64 = 60_000_000;

    #[test]
    fn the_outages_of_a_check_newest_first_and_the_window_honoured() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::new(tmp.path(), Limits::default());
        j.open_for(T0).unwrap();
        let line = |at, kind, check: &str, status: &str, outage| Record {
            status: Some(status.into()),
            outage: Some(outage),
            ..Record::new(at, kind, check).with_text("PING CRITICAL - 100% loss")
        };
        for r in [
            line(T0, Kind::Problem, "router", "CRITICAL", T0),
            line(T0 + MIN, Kind::Recovery, "router", "OK", T0),
            line(
                T0 + 100 * MIN,
                Kind::Problem,
                "router",
                "CRITICAL",
                T0 + 99 * MIN,
            ),
            line(
                T0 + 100 * MIN,
                Kind::Problem,
                "web",
                "WARNING",
                T0 + 100 * MIN,
            ),
            line(
                T0 + 101 * MIN,
                Kind::Problem,
                "web port on db1",
                "CRITICAL",
                T0 + 101 * MIN,
            ),
            line(
                T0 + 102 * MIN,
                Kind::Problem,
                "web port on db2",
                "CRITICAL",
                T0 + 102 * MIN,
            ),
        ] {
            j.write(&r).unwrap();
        }
        let now = T0 + 120 * MIN;
        let all = read(tmp.path(), None, 86_400, now).unwrap();
        assert_eq!(all.len(), 5);
        // A name several targets share: each target's, or one by its identity.
        let port = read(tmp.path(), Some("web port"), 86_400, now).unwrap();
        assert_eq!(port.len(), 2);
        let one = read(tmp.path(), Some("web port on db2"), 86_400, now).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(read(tmp.path(), Some("web"), 86_400, now).unwrap().len(), 1);
        let router = read(tmp.path(), Some("router"), 86_400, now).unwrap();
        assert_eq!(router.len(), 2);
        assert!(router[0].ongoing && router[0].duration == 21.0 * 60.0);
        assert_eq!(router[1].duration, 60.0);
        // Ended before the window: left out; ongoing: kept.
        let recent = read(tmp.path(), Some("router"), 3600, now).unwrap();
        assert_eq!(recent.len(), 1);
        let text = render(&router, 86_400, now);
        assert!(text.contains("ongoing"), "{text}");
        assert!(
            text.contains("0:21:00") && text.contains("0:01:00"),
            "{text}"
        );
        assert!(text.contains("PING CRITICAL - 100% loss"), "{text}");
        // No log at all: no outages, no error.
        let empty = tempfile::tempdir().unwrap();
        assert!(read(empty.path(), None, 60, now).unwrap().is_empty());
        assert_eq!(
            render(&[], 30 * 86_400, now).split(" (").next(),
            Some("no outages in the last 30d")
        );
    }
}
