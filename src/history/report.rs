//! The availability report: one row per check over a window, worst first,
//! as `picomon history --csv` prints it and the availability mail sends it
//! (its text table and its CSV attachment). Pure: lines in (oldest first),
//! rows and their text out, so both come from this one place.
//!
//! What a row says, over the window `from..to`:
//! - availability: as in `status` (maintenance and the time before the
//!   check was first seen not counted, see [`super::availability`]);
//! - outages: those that overlap the window, UNREACHABLE included;
//! - downtime and longest: their time inside the window, as their mails
//!   tell it (maintenance not taken out, so it adds up with the outages);
//! - MTTR: the mean length (whole, from first failed run to Recovery) of
//!   the outages that recovered inside the window; none recovered, none;
//! - the five longest outages (whole lengths), longest first.

use std::collections::BTreeMap;

use super::outages::Builder;
use super::{Outage, Record, Summary};
use crate::clock::{hms, local_datetime, UnixMicros};

/// How many outages a row lists.
pub const LONGEST: usize = 5;

/// One check over the window.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub check: String,
    /// Percent; `None` when nothing of the window is counted.
    pub availability: Option<f64>,
    pub outages: usize,
    /// Seconds in outage inside the window.
    pub downtime: f64,
    /// Seconds of the longest outage inside the window.
    pub longest: f64,
    /// Mean seconds to recovery of the outages that ended in the window.
    pub mttr: Option<f64>,
    /// The [`LONGEST`] longest outages, longest first.
    pub worst: Vec<Outage>,
}

/// The rows of the checks `keep` accepts that exist in `from..to`
/// (Unix microseconds), worst first: lowest availability, then most
/// downtime, then by name.
pub fn rows(
    lines: impl IntoIterator<Item = Record>,
    keep: impl Fn(&str) -> bool,
    from: UnixMicros,
    to: UnixMicros,
) -> Vec<Row> {
    let mut per = BTreeMap::new();
    for r in lines {
        feed(&mut per, &keep, r, from, to);
    }
    finish(per, from, to)
}

type PerCheck = BTreeMap<String, (Summary, Builder)>;

/// One line (oldest first) into its check's summary and outages.
fn feed(
    per: &mut PerCheck,
    keep: &impl Fn(&str) -> bool,
    r: Record,
    from: UnixMicros,
    to: UnixMicros,
) {
    if r.check.is_empty() || r.at > to || !keep(&r.check) {
        return;
    }
    let (s, b) = per
        .entry(r.check.clone())
        .or_insert_with(|| (Summary::keeping(to - from), Builder::default()));
    s.apply(&r);
    b.push(&r);
}

/// The rows, worst first.
fn finish(per: PerCheck, from: UnixMicros, to: UnixMicros) -> Vec<Row> {
    let mut out: Vec<Row> = per
        .into_iter()
        .filter(|(_, (s, _))| s.first_seen().is_some_and(|f| f < to))
        .map(|(check, (s, b))| {
            let mut all: Vec<Outage> = b
                .finish(to)
                .into_iter()
                .filter(|o| o.start_micros() + (o.duration * 1e6) as i64 >= from)
                .collect();
            // Microseconds inside the window (an ongoing one lasts to `to`).
            let inside = |o: &Outage| {
                let start = o.start_micros();
                let end = start + (o.duration * 1e6).round() as i64;
                (end.min(to) - start.max(from)).max(0)
            };
            let recovered: Vec<f64> = all
                .iter()
                .filter(|o| !o.ongoing)
                .map(|o| o.duration)
                .collect();
            let row = Row {
                availability: s.percent(to, to - from),
                outages: all.len(),
                downtime: all.iter().map(inside).sum::<i64>() as f64 / 1e6,
                longest: all.iter().map(inside).max().unwrap_or(0) as f64 / 1e6,
                mttr: (!recovered.is_empty())
                    .then(|| recovered.iter().sum::<f64>() / recovered.len() as f64),
                worst: Vec::new(),
                check,
            };
            crate::sort::by(&mut all, |a, b| b.duration.total_cmp(&a.duration));
            all.truncate(LONGEST);
            Row { worst: all, ..row }
        })
        .collect();
    crate::sort::by(&mut out, |a, b| {
        let avail = |r: &Row| r.availability.unwrap_or(f64::INFINITY);
        avail(a)
            .total_cmp(&avail(b))
            .then(b.downtime.total_cmp(&a.downtime))
            .then_with(|| a.check.cmp(&b.check))
    });
    out
}

/// The rows of [`rows`] from the log in `state_dir` (the files from the
/// month before `from` on: a file's first lines say what was open).
pub fn read(
    state_dir: &std::path::Path,
    keep: impl Fn(&str) -> bool,
    from: UnixMicros,
    to: UnixMicros,
) -> std::io::Result<Vec<Row>> {
    let mut per: BTreeMap<String, (Summary, Builder)> = BTreeMap::new();
    let month = super::journal::month_of(from - 86_400_000_000);
    super::journal::read(state_dir, Some(&month), |r| {
        feed(&mut per, &keep, r, from, to)
    })?;
    Ok(finish(per, from, to))
}

/// `99.95%`, `-` for none: two decimals, as an SLA is written.
fn percent(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("{p:.2}%"))
}

fn span(secs: f64) -> String {
    hms((secs * 1e6) as i64)
}

/// The CSV header.
pub const CSV_HEADER: &str =
    "check,availability_percent,outages,downtime_seconds,longest_seconds,mttr_seconds,from,to";

/// The rows as CSV (RFC 4180: comma separated, CRLF, quoted where needed),
/// one line per check; `from` and `to` are local times as the mail's text
/// writes them; an empty field is "none".
pub fn csv(rows: &[Row], from: UnixMicros, to: UnixMicros) -> String {
    let mut out = format!("{CSV_HEADER}\r\n");
    let (from, to) = (local_datetime(from), local_datetime(to));
    for r in rows {
        let fields = [
            r.check.clone(),
            r.availability.map_or(String::new(), |p| format!("{p:.4}")),
            r.outages.to_string(),
            format!("{:.1}", r.downtime),
            format!("{:.1}", r.longest),
            r.mttr.map_or(String::new(), |m| format!("{m:.1}")),
            from.clone(),
            to.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A field quoted when it holds a comma, a quote or a line break.
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

/// The table for a person: a line per check, worst first, then each
/// check's longest outages.
pub fn text(rows: &[Row], from: UnixMicros, to: UnixMicros) -> String {
    let mut out = format!(
        "Availability from {} to {}\n\
         (maintenance windows and the time before a check existed are not counted)\n\n",
        local_datetime(from),
        local_datetime(to)
    );
    if rows.is_empty() {
        out.push_str("No checks in this period.\n");
        return out;
    }
    let mut table = vec![[
        "CHECK".to_string(),
        "AVAILABILITY".into(),
        "OUTAGES".into(),
        "DOWNTIME".into(),
        "LONGEST".into(),
        "MTTR".into(),
    ]];
    for r in rows {
        table.push([
            r.check.clone(),
            percent(r.availability),
            r.outages.to_string(),
            span(r.downtime),
            span(r.longest),
            r.mttr.map_or_else(|| "-".into(), span),
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &table {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &table {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            // Names left, figures right.
            if i == 0 {
                line.push_str(&format!("{c:<w$}  "));
            } else {
                line.push_str(&format!("{c:>w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for r in rows.iter().filter(|r| !r.worst.is_empty()) {
        out.push_str(&format!("\nLongest outages of {}:\n", r.check));
        for o in &r.worst {
            let end = o
                .end
                .map_or_else(|| "ongoing".into(), |e| local_datetime(e * 1_000_000));
            out.push_str(&format!(
                "  {} - {}  {:>9}  {}{}  {}\n",
                local_datetime(o.start * 1_000_000),
                end,
                span(o.duration),
                o.worst,
                if o.unreachable { " (unreachable)" } else { "" },
                o.output
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Kind;

    const T0: i64 = 1_773_576_000_000_000;
    const MIN: i64 = 60_000_000;
    const HOUR: i64 = 60 * MIN;

    fn line(at: i64, kind: Kind, check: &str, status: &str, outage: i64) -> Record {
        Record {
            status: Some(status.into()),
            outage: Some(outage),
            ..Record::new(at, kind, check).with_text(&format!("{status}, said {check}"))
        }
    }

    fn story() -> Vec<Record> {
        let mut lines = vec![
            Record::new(T0, Kind::Seen, "web"),
            Record::new(T0, Kind::Seen, "db"),
            Record::new(T0, Kind::Seen, "dns"),
        ];
        // web: six outages of 1..6 minutes, one an hour.
        for i in 1..=6 {
            let s = T0 + i * HOUR;
            lines.push(line(s + MIN, Kind::Problem, "web", "CRITICAL", s));
            lines.push(line(s + i * MIN, Kind::Recovery, "web", "OK", s));
        }
        // db: down from 9 h on, still.
        lines.push(line(
            T0 + 9 * HOUR,
            Kind::Problem,
            "db",
            "WARNING",
            T0 + 9 * HOUR,
        ));
        lines
    }

    #[test]
    fn rows_worst_first_with_downtime_longest_mttr_and_five_longest() {
        let rows = rows(story(), |_| true, T0, T0 + 10 * HOUR);
        let names: Vec<_> = rows.iter().map(|r| r.check.as_str()).collect();
        assert_eq!(names, ["db", "web", "dns"]);
        let db = &rows[0];
        assert_eq!(db.availability, Some(90.0));
        assert_eq!((db.outages, db.downtime, db.longest), (1, 3600.0, 3600.0));
        assert_eq!(db.mttr, None, "still down: nothing recovered");
        assert!(db.worst[0].ongoing);
        let web = &rows[1];
        assert_eq!(web.outages, 6);
        assert_eq!(web.downtime, 21.0 * 60.0);
        assert_eq!(web.longest, 6.0 * 60.0);
        assert_eq!(web.mttr, Some(3.5 * 60.0));
        let a = web.availability.unwrap();
        assert!((a - 100.0 * (600.0 - 21.0) / 600.0).abs() < 1e-9, "{a}");
        let longest: Vec<_> = web.worst.iter().map(|o| o.duration).collect();
        assert_eq!(longest, [360.0, 300.0, 240.0, 180.0, 120.0]);
        assert_eq!(rows[2].availability, Some(100.0));
        assert_eq!(rows[2].outages, 0);
    }

    #[test]
    fn the_window_clips_downtime_and_leaves_out_what_ended_before_it() {
        // From 3 h 2 min: web's first two outages ended before, the third
        // (3 h to 3 h 3 min) has 1 minute inside.
        let from = T0 + 3 * HOUR + 2 * MIN;
        let rows = rows(story(), |c| c == "web", from, T0 + 10 * HOUR);
        assert_eq!(rows.len(), 1);
        let web = &rows[0];
        assert_eq!(web.outages, 4);
        assert_eq!(web.downtime, (1 + 4 + 5 + 6) as f64 * 60.0);
        assert_eq!(web.mttr, Some(4.5 * 60.0), "whole lengths");
        // A check first seen after the window is not listed.
        assert!(super::rows(story(), |_| true, T0 - 2 * HOUR, T0 - HOUR).is_empty());
    }

    #[test]
    fn csv_and_text_say_the_same_figures() {
        let rows = rows(story(), |_| true, T0, T0 + 10 * HOUR);
        let csv = csv(&rows, T0, T0 + 10 * HOUR);
        let lines: Vec<_> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        let db: Vec<_> = lines[1].split(',').collect();
        assert_eq!(&db[..6], ["db", "90.0000", "1", "3600.0", "3600.0", ""]);
        let web: Vec<_> = lines[2].split(',').collect();
        assert_eq!(
            &web[..6],
            ["web", "96.5000", "6", "1260.0", "360.0", "210.0"]
        );
        assert_eq!(lines.len(), 5, "three rows and the final CRLF: {csv}");
        let text = text(&rows, T0, T0 + 10 * HOUR);
        assert!(text.contains("Longest outages of web:"), "{text}");
        assert!(
            text.contains("90.00%") && text.contains("0:21:00"),
            "{text}"
        );
        assert!(text.contains("ongoing"), "{text}");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
