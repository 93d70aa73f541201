//! `/`: the status page. One self-contained HTML document (its CSS inline,
//! no script, no request of its own: the listener's Content-Security-Policy
//! forbids them), checks grouped by target, each row coloured by its last
//! status, with its phase, since when it fails, its last run, an SVG
//! sparkline of its recent durations, a bar of its last 30 days (each day
//! coloured by the worst status of its outages, its date and availability
//! in the block's `title`) and the first line of its output (perfdata in
//! its tooltip). It reloads itself (`<meta http-equiv="refresh">`).
//!
//! Made for an incident and for a phone: targets and rows in PROBLEM come
//! first (then muted problems, retrying, the rest in config order);
//! acknowledged, silenced and UNREACHABLE problems are muted; the header
//! counts PROBLEM, UNREACHABLE, FLAPPING, ACKED and SILENCED. Below 1000 px
//! a row is a small grid (state, name and since on one line, the output
//! wrapped under them), below 600 px without last run and durations; the
//! check's name and output are never cut.

use std::fmt::Write;

use crate::control::snapshot::{CheckLine, LinePhase};
use crate::history::availability::{day_starts, DayMark};
use crate::model::Status;

use super::snapshot::DAYS;

use super::Snapshot;

/// The page for `s`.
pub fn render(s: &Snapshot) -> String {
    let checks = &s.checks;
    let mut out = String::with_capacity(4096 + checks.len() * 700);
    let counts = Counts::of(checks);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}picomon</title><style>{CSS}</style></head>\n<body>\n",
        s.refresh.as_secs().max(1),
        if counts.failing() > 0 {
            format!("({} failing) ", counts.failing())
        } else {
            String::new()
        },
    );
    out.push_str("<header><h1>picomon</h1><p class=\"summary\">");
    for (n, class, what) in [
        (counts.problem, "critical", "in PROBLEM"),
        (counts.unreachable, "unreachable", "UNREACHABLE"),
        (counts.flapping, "flapping", "FLAPPING"),
        (counts.acked, "muted", "ACKED"),
        (counts.silenced, "muted", "SILENCED"),
        (counts.retrying, "warning", "retrying"),
        (counts.ok, "ok", "OK"),
        (counts.pending, "pending", "not run yet"),
    ] {
        if n > 0 {
            let _ = write!(out, "<span class=\"pill {class}\">{n} {what}</span> ");
        }
    }
    let _ = write!(
        out,
        "<span class=\"at\">{} checks · as of {} · reloads every {} s</span></p></header>\n<main>\n",
        checks.len(),
        crate::clock::local_datetime(s.at * 1_000_000),
        s.refresh.as_secs().max(1),
    );
    if checks.is_empty() {
        out.push_str("<p class=\"empty\">No checks configured.</p>\n");
    }
    // The bar's days, once for every row (each midnight is a mktime).
    let starts = day_starts(s.at * 1_000_000, DAYS + 1);
    for (target, rows) in by_target(checks) {
        let worst = rows
            .iter()
            .map(|&i| severity(&checks[i]))
            .max()
            .unwrap_or(0);
        let _ = write!(
            out,
            "<section class=\"target\"><h2><span class=\"dot {}\"></span><span class=\"tname\">{}</span> <small>{} check{}</small></h2>\n\
             <table><thead><tr><th class=\"state\">state</th><th class=\"name\">check</th><th class=\"since\">since</th>\
             <th class=\"last\">last run</th><th class=\"dur\">duration</th><th class=\"days\">last 30 days</th><th class=\"out\">output</th></tr></thead><tbody>\n",
            SEVERITY_CLASS[worst],
            esc(if target.is_empty() { "(no target)" } else { target }),
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
        );
        for i in rows {
            let c = &checks[i];
            row(&mut out, c, &s.recent_of(i), (&c.days(), &starts), s.at);
        }
        out.push_str("</tbody></table></section>\n");
    }
    out.push_str("</main>\n</body></html>\n");
    out
}

/// Whether a check in PROBLEM needs nobody now: acknowledged, silenced,
/// or UNREACHABLE because a check it depends on fails.
fn muted(c: &CheckLine) -> bool {
    c.ack().is_some() || c.silenced_by().is_some() || c.unreachable_by().is_some()
}

/// Where a row goes in its table, and its table on the page: 0 in
/// PROBLEM and not muted, 1 retrying, 2 muted problems, 3 the rest.
fn rank(c: &CheckLine) -> u8 {
    match c.phase() {
        LinePhase::Problem | LinePhase::Unreachable if !muted(c) => 0,
        LinePhase::Retrying => 1,
        LinePhase::Problem | LinePhase::Unreachable => 2,
        LinePhase::Ok => 3,
    }
}

/// One check's row.
fn row(out: &mut String, c: &CheckLine, recent: &[f32], days: (&[DayMark], &[i64]), now: i64) {
    let class = SEVERITY_CLASS[severity(c)];
    let status = c.status().map_or("PENDING", Status::as_str);
    let phase = match c.phase() {
        LinePhase::Retrying => format!("RETRYING {}/{}", c.failed_runs(), c.max_runs()),
        p => p.as_str().to_uppercase(),
    };
    let ok = c.phase() == LinePhase::Ok;
    let mut classes = format!("check {class}");
    if !ok && muted(c) {
        classes.push_str(" muted");
    }
    if c.flapping() {
        classes.push_str(" flapping");
    }
    let _ = write!(
        out,
        "<tr class=\"{classes}\" data-status=\"{}\" data-phase=\"{}\">\
         <td class=\"state\"><span class=\"badge {class}\">{}</span>",
        esc(status),
        esc(c.phase().as_str()),
        esc(status),
    );
    if !ok {
        let _ = write!(out, " <span class=\"phase\">{}</span>", esc(&phase));
    }
    let _ = write!(
        out,
        "</td><td class=\"name\" title=\"{}\"><span class=\"cname\">{}</span>",
        esc(c.id()),
        esc(c.name())
    );
    if c.flapping() {
        let _ = write!(
            out,
            " <span class=\"tag flap\">FLAPPING {:.0}%</span>",
            c.flap_percent().unwrap_or(0.0)
        );
    }
    if let Some(a) = c.ack() {
        let _ = write!(
            out,
            "<div class=\"note\">ACKED by {}: {}</div>",
            esc(&a.by),
            esc(&a.comment)
        );
    }
    if let Some(by) = c.silenced_by() {
        let _ = write!(out, "<div class=\"note\">SILENCED by {}</div>", esc(by));
    }
    if let Some(by) = c.unreachable_by() {
        let _ = write!(
            out,
            "<div class=\"note\">UNREACHABLE: {} fails</div>",
            esc(by)
        );
    }
    out.push_str("</td>");
    time_cell(out, c.since(), now, "since");
    time_cell(out, c.last_run(), now, "last");
    out.push_str("<td class=\"dur\"><div class=\"dur\">");
    sparkline(out, recent);
    if let Some(d) = c.duration() {
        let _ = write!(out, "<span>{}</span>", seconds(d));
    }
    out.push_str("</div></td>");
    day_bar(out, days.0, days.1);
    let output = c.output().text();
    let (text, perf) = match output.split_once('|') {
        Some((t, p)) => (t.trim_end(), p.trim()),
        None => (&*output, ""),
    };
    let _ = writeln!(
        out,
        "<td class=\"out\" title=\"{}\">{}</td></tr>",
        esc(if perf.is_empty() { text } else { perf }),
        esc(text)
    );
}

/// A time as "5m ago", the date and time in its tooltip; a dash when none.
fn time_cell(out: &mut String, at: Option<i64>, now: i64, class: &str) {
    match at {
        None => {
            let _ = write!(out, "<td class=\"{class} none\">–</td>");
        }
        Some(at) => {
            let _ = write!(
                out,
                "<td class=\"{class}\" title=\"{}\">{} ago</td>",
                crate::clock::local_datetime(at * 1_000_000),
                ago(now - at)
            );
        }
    }
}

/// The bar of the last days: one block a day, oldest left, coloured by
/// the worst status of its outages (grey before the check existed), its
/// date and availability in its `title` (a hover, no script).
fn day_bar(out: &mut String, days: &[DayMark], starts: &[i64]) {
    out.push_str("<td class=\"days\">");
    let whole = [DayMark::WHOLE; DAYS];
    // None: every day whole (see `DayMark::of_days`).
    let days = if days.is_empty() { &whole[..] } else { days };
    {
        let _ = write!(
            out,
            "<div class=\"bar\" role=\"img\" aria-label=\"availability of the last {} days\">",
            days.len()
        );
        for (d, &start) in days.iter().zip(starts) {
            let class = match (d.percent(), d.worst) {
                (None, _) => "none",
                (_, 3) => "critical",
                (_, 2) => "unknown",
                (_, 1) => "warning",
                _ => "ok",
            };
            let date = crate::clock::local_datetime(start);
            let date = date.get(..10).unwrap_or(&date);
            let what = match d.percent() {
                None => "not counted".to_string(),
                Some(p) if class == "ok" => format!("{p:.2}%"),
                Some(p) => format!("{p:.2}%, worst {}", class.to_uppercase()),
            };
            let _ = write!(
                out,
                "<span class=\"day {class}\" title=\"{date}: {what}\"></span>"
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</td>");
}

/// An inline SVG polyline of the durations (oldest left), scaled to the
/// largest; nothing for fewer than two.
fn sparkline(out: &mut String, v: &[f32]) {
    if v.len() < 2 {
        return;
    }
    const W: f32 = 120.0;
    const H: f32 = 22.0;
    let max = v.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
    let min = v.iter().cloned().fold(f32::MAX, f32::min);
    let step = W / (v.len() - 1) as f32;
    let y = |d: f32| H - 1.0 - (d / max) * (H - 2.0);
    let _ = write!(
        out,
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"durations of the last {} runs\"><title>last {} runs: {} to {}</title>\
         <polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"",
        v.len(),
        v.len(),
        seconds(min as f64),
        seconds(max as f64),
    );
    for (i, &d) in v.iter().enumerate() {
        let _ = write!(out, "{:.1},{:.1} ", i as f32 * step, y(d));
    }
    let last = *v.last().unwrap_or(&0.0);
    let _ = write!(
        out,
        "\"/><circle cx=\"{W}\" cy=\"{:.1}\" r=\"2\" fill=\"currentColor\"/></svg>",
        y(last)
    );
}

/// Row indices by target: targets with a row in PROBLEM first, then in
/// the order of their first check; in each, rows by [`rank`], then the
/// worse status first, then in config order.
fn by_target(checks: &[CheckLine]) -> Vec<(&str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, c) in checks.iter().enumerate() {
        let g = *index.entry(c.target()).or_insert_with(|| {
            groups.push((c.target(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let key = |i: &usize| (rank(&checks[*i]), std::cmp::Reverse(severity(&checks[*i])));
    for (_, rows) in &mut groups {
        crate::sort::by_key(rows, |i| (key(i), *i));
    }
    // Stable: targets of the same rank keep their order.
    crate::sort::by_key(&mut groups, |(_, rows)| rows.first().map(key));
    groups
}

/// 0 not run yet, 1 OK, 2 WARNING, 3 UNKNOWN, 4 CRITICAL.
fn severity(c: &CheckLine) -> usize {
    match c.status() {
        None => 0,
        Some(Status::Ok) => 1,
        Some(Status::Warning) => 2,
        Some(Status::Unknown) => 3,
        Some(Status::Critical) => 4,
    }
}

const SEVERITY_CLASS: [&str; 5] = ["pending", "ok", "warning", "unknown", "critical"];

struct Counts {
    ok: usize,
    retrying: usize,
    problem: usize,
    pending: usize,
    unreachable: usize,
    flapping: usize,
    acked: usize,
    silenced: usize,
}

impl Counts {
    fn of(checks: &[CheckLine]) -> Counts {
        let n = |f: &dyn Fn(&CheckLine) -> bool| checks.iter().filter(|c| f(c)).count();
        Counts {
            ok: n(&|c| c.status() == Some(Status::Ok)),
            retrying: n(&|c| c.phase() == LinePhase::Retrying),
            problem: n(&|c| c.phase() == LinePhase::Problem),
            pending: n(&|c| c.status().is_none()),
            unreachable: n(&|c| {
                c.unreachable_by().is_some() || c.phase() == LinePhase::Unreachable
            }),
            flapping: n(&|c| c.flapping()),
            acked: n(&|c| c.ack().is_some()),
            silenced: n(&|c| c.silenced_by().is_some()),
        }
    }

    fn failing(&self) -> usize {
        self.problem + self.retrying
    }
}

/// "42s", "5m 3s", "3h 2m", "2d 4h".
fn ago(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// "12 ms", "1.50 s", "2m 5s".
fn seconds(d: f64) -> String {
    if d < 1.0 {
        format!("{:.0} ms", d * 1000.0)
    } else if d < 60.0 {
        format!("{d:.2} s")
    } else {
        ago(d as i64)
    }
}

/// Text for HTML element content and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "\
:root{--bg:#f6f7f9;--fg:#1d2228;--muted:#69717c;--card:#fff;--line:#e3e6ea;--mute-bg:#eef0f3;\
--ok:#2e7d32;--warning:#b86e00;--critical:#c62828;--unknown:#6a1b9a;--pending:#8a929c;--flap:#00838f}\
@media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e6e8eb;--muted:#9aa2ad;--card:#1d2127;\
--line:#2c323a;--mute-bg:#23272e;--ok:#5cb860;--warning:#e0a030;--critical:#ef5350;--unknown:#b07cd8;--pending:#8a929c;--flap:#4dd0e1}}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
header{padding:16px 24px 8px}h1{margin:0 0 6px;font-size:20px;letter-spacing:.02em}\
.summary{margin:0;display:flex;flex-wrap:wrap;gap:6px;align-items:center}\
.pill{padding:2px 10px;border-radius:999px;color:#fff;font-weight:600;font-size:13px;white-space:nowrap}\
.pill.ok,.badge.ok{background:var(--ok)}.pill.warning,.badge.warning{background:var(--warning)}\
.pill.critical,.badge.critical{background:var(--critical)}.badge.unknown{background:var(--unknown)}\
.pill.pending,.badge.pending{background:var(--pending)}.pill.unreachable{background:var(--unknown)}\
.pill.flapping{background:var(--flap)}.pill.muted{background:var(--mute-bg);color:var(--muted);border:1px solid var(--line)}\
.at{color:var(--muted);font-size:13px;margin-left:4px}\
main{padding:8px 24px 24px;display:grid;gap:16px}\
.target{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden}\
h2{margin:0;padding:10px 14px;font-size:15px;border-bottom:1px solid var(--line);display:flex;align-items:center;gap:8px;flex-wrap:wrap}\
h2 .tname{overflow-wrap:anywhere}h2 small{color:var(--muted);font-weight:400}\
.dot{width:10px;height:10px;border-radius:50%;display:inline-block;flex:none;background:var(--pending)}\
.dot.ok{background:var(--ok)}.dot.warning{background:var(--warning)}.dot.critical{background:var(--critical)}\
.dot.unknown{background:var(--unknown)}\
table{width:100%;border-collapse:collapse;table-layout:fixed}\
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;padding:6px 10px}\
th.state{width:124px}th.name{width:22%}th.since,th.last{width:84px}th.dur{width:204px}th.days{width:158px}\
.bar{display:flex;gap:1px;height:20px;align-items:stretch}\
.day{flex:1 1 0;min-width:3px;border-radius:1px;background:var(--ok)}.day.warning{background:var(--warning)}\
.day.critical{background:var(--critical)}.day.unknown{background:var(--unknown)}.day.none{background:var(--line)}\
td{padding:7px 10px;border-top:1px solid var(--line);vertical-align:top}\
td.since,td.last,td.dur{white-space:nowrap}\
tr.check{border-left:4px solid var(--pending)}tr.ok{border-left-color:var(--ok)}\
tr.warning{border-left-color:var(--warning)}tr.critical{border-left-color:var(--critical)}tr.unknown{border-left-color:var(--unknown)}\
tr.critical{background:color-mix(in srgb,var(--critical) 8%,transparent)}\
tr.warning{background:color-mix(in srgb,var(--warning) 8%,transparent)}\
tr.unknown{background:color-mix(in srgb,var(--unknown) 8%,transparent)}\
tr.check.muted{background:var(--mute-bg);border-left-style:dashed;color:var(--muted)}\
tr.muted .badge{background:transparent;border:1px solid currentColor}\
tr.muted .badge.critical{color:var(--critical)}tr.muted .badge.warning{color:var(--warning)}tr.muted .badge.unknown{color:var(--unknown)}\
.badge{display:inline-block;min-width:74px;text-align:center;padding:1px 6px;border-radius:4px;color:#fff;font-size:12px;font-weight:700}\
.phase{display:block;margin-top:2px;font-size:11px;font-weight:700;color:var(--muted)}\
tr.critical .phase{color:var(--critical)}tr.warning .phase{color:var(--warning)}tr.muted .phase{color:var(--muted)}\
.name{font-weight:600;overflow-wrap:anywhere}.note{font-weight:400;font-size:12px;color:var(--muted)}\
.tag{display:inline-block;font-size:11px;font-weight:700;padding:0 6px;border-radius:4px;white-space:nowrap}\
.tag.flap{color:#fff;background:var(--flap)}\
.since,.last{color:var(--muted);font-variant-numeric:tabular-nums}\
div.dur{display:flex;align-items:center;gap:8px;color:var(--muted);font-variant-numeric:tabular-nums}\
.spark{flex:none}tr.ok .spark{color:var(--ok)}tr.warning .spark{color:var(--warning)}\
tr.critical .spark{color:var(--critical)}tr.unknown .spark{color:var(--unknown)}\
.out{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;overflow-wrap:anywhere;white-space:pre-wrap}\
.empty{color:var(--muted)}\
@media (max-width:999px){\
header{padding:12px 12px 6px}main{padding:6px 8px 16px;gap:10px}\
thead{display:none}table,tbody{display:block}\
tr.check{display:grid;grid-template-columns:108px minmax(0,1fr) auto auto;\
grid-template-areas:'state name since last' 'out out out out' 'dur dur dur dur' 'days days days days';border-top:1px solid var(--line)}\
td.days{grid-area:days;padding-top:0;max-width:320px}\
td{border:0;padding:4px 8px}td.state{grid-area:state}td.name{grid-area:name}td.since{grid-area:since}\
td.last{grid-area:last}td.out{grid-area:out;padding-top:0}td.dur{grid-area:dur;padding-top:0}\
td.since::before{content:'since '}td.last::before{content:'run '}td.none{display:none}}\
@media (max-width:599px){\
td.last,td.dur{display:none}\
tr.check{grid-template-columns:100px minmax(0,1fr) auto;grid-template-areas:'state name since' 'out out out' 'days days days'}}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::{AckView, CheckStatus};
    use crate::control::snapshot::of_statuses;

    fn check(name: &str, target: &str, status: Option<&str>, phase: &str) -> CheckStatus {
        CheckStatus {
            id: format!("id of {name}").into(),
            name: name.into(),
            target: target.into(),
            phase: phase.to_string().into(),
            status: status.map(|s| s.to_string().into()),
            failed_runs: u32::from(phase != "ok"),
            max_runs: 2,
            since: (phase != "ok").then_some(1_000),
            last_run: status.map(|_| 1_100),
            duration: status.map(|_| 0.05),
            output: format!("{name} says <b>hi</b> & \"bye\"").into(),
            ..CheckStatus::default()
        }
    }

    fn page(checks: Vec<CheckStatus>) -> String {
        let mut s = of_statuses(&checks);
        s.at = 1_200;
        let mut ring = crate::web::Recent::default();
        for ms in [100, 300, 200] {
            ring.push(std::time::Duration::from_millis(ms));
        }
        s.recent = vec![ring; checks.len()];
        s.refresh = std::time::Duration::from_secs(30);
        render(&s)
    }

    #[test]
    fn targets_and_rows_in_problem_come_first_then_config_order() {
        let mut acked = check("backup", "db1", Some("CRITICAL"), "problem");
        acked.ack = Some(AckView {
            by: "alice".into(),
            comment: "on it".into(),
            until: None,
        });
        let mut flappy = check("link", "web2", Some("OK"), "ok");
        flappy.flapping = true;
        flappy.flap_percent = Some(34.4);
        let mut silenced = check("cron", "web2", Some("WARNING"), "problem");
        silenced.silenced_by = Some("3".into());
        let mut child = check("app", "web2", Some("CRITICAL"), "unreachable");
        child.unreachable_by = Some("router on gw".into());
        let html = page(vec![
            check("disk", "web1", Some("OK"), "ok"),
            check("load", "web1", Some("WARNING"), "retrying"),
            acked,
            check("sql", "db1", Some("OK"), "ok"),
            check("ping", "db1", Some("CRITICAL"), "problem"),
            flappy,
            silenced,
            child,
        ]);
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("no {s} in {html}"));
        // db1 has an unmuted PROBLEM, web1 a retry, web2 only muted ones.
        assert!(at(">db1</span> <small>3 checks") < at(">web1</span> <small>2 checks"));
        assert!(at(">web1</span> <small>") < at(">web2</span> <small>3 checks"));
        // In db1: the PROBLEM, the acknowledged one, then the rest.
        assert!(at(">ping<") < at(">backup<") && at(">backup<") < at(">sql<"));
        assert!(html.contains(
            "<tr class=\"check critical\" data-status=\"CRITICAL\" data-phase=\"problem\">"
        ));
        assert!(html.contains(
            "<tr class=\"check critical muted\" data-status=\"CRITICAL\" data-phase=\"problem\">"
        ));
        assert!(html.contains("<tr class=\"check ok flapping\""));
        assert!(html.contains("<span class=\"tag flap\">FLAPPING 34%</span>"));
        assert!(html.contains("UNREACHABLE: router on gw fails"));
        assert!(html.contains("SILENCED by 3"));
        assert!(html.contains("RETRYING 1/2"));
        for pill in [
            "<span class=\"pill critical\">3 in PROBLEM</span>",
            "<span class=\"pill unreachable\">1 UNREACHABLE</span>",
            "<span class=\"pill flapping\">1 FLAPPING</span>",
            "<span class=\"pill muted\">1 ACKED</span>",
            "<span class=\"pill muted\">1 SILENCED</span>",
        ] {
            assert!(html.contains(pill), "{pill}");
        }
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(html.contains("<title>(4 failing) picomon</title>"));
    }

    #[test]
    fn perfdata_is_in_the_tooltip_not_the_row() {
        let mut c = check("disk", "web1", Some("WARNING"), "problem");
        c.output = "DISK WARNING - 9% free | /=91%;90;95".into();
        let html = page(vec![c]);
        assert!(
            html.contains("<td class=\"out\" title=\"/=91%;90;95\">DISK WARNING - 9% free</td>")
        );
    }

    #[test]
    fn names_and_outputs_are_escaped() {
        let mut c = check("<script>alert(1)</script>", "a\"b", Some("OK"), "ok");
        c.ack = Some(AckView {
            by: "eve<".into(),
            comment: "&x".into(),
            until: None,
        });
        let html = page(vec![c]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt; &amp; &quot;bye&quot;"));
        assert!(html.contains("ACKED by eve&lt;: &amp;x"));
    }

    #[test]
    fn the_page_asks_for_nothing_outside_itself() {
        let html = page(vec![check("disk", "web1", Some("OK"), "ok")]);
        for outside in ["<script", "<link", "src=", "href=", "url(", "@import"] {
            assert!(!html.contains(outside), "{outside} in the page");
        }
        assert!(html.contains("<svg class=\"spark\""));
        assert!(html.contains("<polyline"));
    }

    #[test]
    fn times_read_as_a_person_says_them() {
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(125), "2m 5s");
        assert_eq!(ago(3 * 3600 + 120), "3h 2m");
        assert_eq!(ago(2 * 86_400 + 4 * 3600), "2d 4h");
        assert_eq!(seconds(0.012), "12 ms");
        assert_eq!(seconds(1.5), "1.50 s");
    }

    #[test]
    fn the_day_bar_has_thirty_blocks_and_says_each_day_on_hover() {
        use crate::history::availability::Day;
        // Whole days are not copied: no marks, thirty green blocks.
        let html = page(vec![check("web", "web1", Some("OK"), "ok")]);
        assert_eq!(html.matches("<span class=\"day ok\" title=\"").count(), 30);
        assert!(html.contains(": 100.00%\"></span></div>"), "{html}");
        let day = |percent, worst| Day {
            start: 0,
            percent,
            worst,
        };
        let mut days = vec![day(None, 0); 28];
        days.push(day(Some(75.0), 3));
        days.push(day(Some(100.0), 0));
        let marks = DayMark::of_days(&days);
        assert_eq!(marks.len(), 30);
        assert!(DayMark::of_days(&[day(Some(100.0), 0); 30]).is_empty());
        let mut s = of_statuses(&[]);
        s.at = 1_200;
        let c = check("web", "web1", Some("OK"), "ok");
        s.checks = vec![crate::control::snapshot::line_of(&c).with_days(marks)];
        let html = render(&s);
        assert_eq!(html.matches("<span class=\"day none\"").count(), 28);
        assert!(
            html.contains(": 75.00%, worst CRITICAL\"></span>"),
            "{html}"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_sparkline_needs_two_runs() {
        let mut out = String::new();
        sparkline(&mut out, &[0.5]);
        assert!(out.is_empty());
        sparkline(&mut out, &[0.0, 1.0]);
        assert!(out.contains("points=\"0.0,21.0 120.0,1.0 \""), "{out}");
    }
}
