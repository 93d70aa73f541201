//! What the subcommands print for a person: the status table (fitted to
//! the terminal's width there, whole lines into a pipe), one check in
//! full, the silences.

use super::super::protocol::{CheckDetail, CheckStatus, Response, StatusReport};
use crate::cli::term::{cut, Style};
use crate::clock::{hms, local_datetime};

/// The narrowest the output column gets before columns are dropped.
const MIN_OUTPUT: usize = 16;
/// The narrowest a name or target is cut to.
const MIN_NAME: usize = 10;

const HEAD: [&str; 8] = [
    "NAME", "TARGET", "PHASE", "STATUS", "SINCE", "LAST RUN", "TOOK", "OUTPUT",
];
/// Columns left out, in this order, while a row is wider than the terminal.
const DROP_ORDER: [usize; 3] = [6, 5, 4];

/// The first output line without its perfdata (`| time=0.1s;...`): the
/// detail view (`status CHECK`) shows the whole output.
fn without_perfdata(output: &str) -> &str {
    let first = output.lines().next().unwrap_or("");
    first.split('|').next().unwrap_or("").trim_end()
}

/// `OK`, `RETRYING k/n`, `PROBLEM`, `UNREACHABLE`.
fn phase_word(c: &CheckStatus) -> String {
    match &*c.phase {
        "problem" => "PROBLEM".to_string(),
        "retrying" => format!("RETRYING {}/{}", c.failed_runs, c.max_runs),
        "unreachable" => "UNREACHABLE".to_string(),
        _ => "OK".to_string(),
    }
}

/// `[VIA ...] [FLAPPING 34%] [ACK alice] [SILENCED 4] `: the state change
/// is shown only while the check flaps (a low percentage on a calm check
/// says nothing to act on).
fn marks(c: &CheckStatus) -> String {
    let mut marks = String::new();
    if let Some(p) = &c.unreachable_by {
        marks.push_str(&format!("[VIA {p}] "));
    }
    if c.flapping {
        match c.flap_percent {
            Some(p) => marks.push_str(&format!("[FLAPPING {p:.0}%] ")),
            None => marks.push_str("[FLAPPING] "),
        }
    }
    if let Some(a) = &c.ack {
        marks.push_str(&format!("[ACK {}] ", a.by));
    }
    if let Some(s) = &c.silenced_by {
        marks.push_str(&format!("[SILENCED {s}] "));
    }
    marks
}

/// The table: one line per check, problems first. With a width (a
/// terminal) no line is wider: TOOK, LAST RUN and SINCE are left out as
/// needed, then names, targets and the output are cut with "…".
pub fn render_table(r: &StatusReport, problems_only: bool, style: Style) -> String {
    let now = r.at;
    let mut rows: Vec<&CheckStatus> = r
        .checks
        .iter()
        .filter(|c| !problems_only || c.phase != "ok")
        .collect();
    crate::sort::by_key(&mut rows, |c| match &*c.phase {
        "problem" => 0,
        "retrying" => 1,
        "unreachable" => 2,
        _ => 3,
    });
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|c| {
            [
                c.name.to_string(),
                c.target.to_string(),
                phase_word(c),
                c.status.as_deref().unwrap_or("-").to_string(),
                c.since
                    .map(|s| hms((now - s) * 1_000_000))
                    .unwrap_or_else(|| "-".into()),
                c.last_run
                    .map(|s| format!("{} ago", hms((now - s) * 1_000_000)))
                    .unwrap_or_else(|| "never".into()),
                c.duration
                    .map(|d| format!("{d:.2}s"))
                    .unwrap_or_else(|| "-".into()),
                format!("{}{}", marks(c), without_perfdata(&c.output)),
            ]
        })
        .collect();
    let mut width = HEAD.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in width.iter_mut().zip(row.iter()).take(7) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut shown = [true; 8];
    let mut output_width = usize::MAX;
    if let Some(total) = style.width {
        let fixed = |width: &[usize; 8], shown: &[bool; 8]| -> usize {
            (0..7).filter(|&i| shown[i]).map(|i| width[i] + 2).sum()
        };
        for i in DROP_ORDER {
            if fixed(&width, &shown) + MIN_OUTPUT <= total {
                break;
            }
            shown[i] = false;
        }
        // Then the wider of name and target loses a character at a time.
        while fixed(&width, &shown) + MIN_OUTPUT > total {
            let widest = if width[0] >= width[1] { 0 } else { 1 };
            if width[widest] <= MIN_NAME {
                break;
            }
            width[widest] -= 1;
        }
        output_width = total.saturating_sub(fixed(&width, &shown)).max(1);
    }
    let line = |cols: [&str; 8], paint: Option<(&str, &str)>| {
        let mut l = String::new();
        for (i, c) in cols.iter().enumerate() {
            if !shown[i] {
                continue;
            }
            if i == 7 {
                l.push_str(&cut(c, output_width));
                continue;
            }
            let text = format!("{:<w$}", cut(c, width[i]), w = width[i]);
            match (paint, i) {
                (Some((phase, _)), 2) => l.push_str(&style.paint(phase, &text)),
                (Some((_, status)), 3) => l.push_str(&style.paint(status, &text)),
                _ => l.push_str(&text),
            }
            l.push_str("  ");
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(HEAD, None);
    for row in &cells {
        out.push_str(&line(
            [
                &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6], &row[7],
            ],
            Some((&row[2], &row[3])),
        ));
    }
    let failing = r.checks.iter().filter(|c| c.phase == "problem").count();
    let mut footer = vec![format!(
        "{} checks, {failing} in PROBLEM; {} silences",
        r.checks.len(),
        r.silences.len()
    )];
    footer.extend(r.outbox.lines.iter().cloned());
    for l in footer {
        out.push_str(&cut(&l, style.width.unwrap_or(usize::MAX)));
        out.push('\n');
    }
    out
}

/// `picomon status CHECK`: everything known about one check, a field per
/// line; `now` in Unix seconds.
pub fn render_detail(d: &CheckDetail, now: i64, style: Style) -> String {
    let c = &d.status;
    let mut rows: Vec<(&str, String)> = Vec::new();
    let ago = |t: i64| hms((now - t).max(0) * 1_000_000);
    rows.push(("identity", c.id.to_string()));
    let status = c.status.as_deref().unwrap_or("-").to_string();
    rows.push((
        "status",
        format!(
            "{} ({} of {} failed runs make a Problem)",
            style.paint(&status, &status),
            c.failed_runs,
            c.max_runs
        ),
    ));
    let phase = phase_word(c);
    rows.push(("phase", style.paint(&phase, &phase)));
    if let Some(since) = c.since {
        rows.push((
            "since",
            format!("{} ({} ago)", local_datetime(since * 1_000_000), ago(since)),
        ));
    }
    rows.push((
        "last run",
        match c.last_run {
            Some(t) => format!(
                "{} ({} ago), took {}",
                local_datetime(t * 1_000_000),
                ago(t),
                c.duration.map_or("-".into(), |d| format!("{d:.2}s"))
            ),
            None => "never".into(),
        },
    ));
    if !d.recent_durations.is_empty() {
        let took: Vec<String> = d
            .recent_durations
            .iter()
            .map(|s| format!("{s:.2}s"))
            .collect();
        rows.push(("last runs took", took.join(" ")));
    }
    rows.push(("output", d.full_output.clone()));
    rows.push((
        "ack",
        match &c.ack {
            Some(a) => format!(
                "by {}{}, {}",
                a.by,
                if a.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {}", a.comment)
                },
                a.until.map_or("until recovery".into(), |u| format!(
                    "until {}",
                    local_datetime(u * 1_000_000)
                ))
            ),
            None => "none".into(),
        },
    ));
    rows.push((
        "silenced",
        match &c.silenced_by {
            Some(id) => format!("by silence {id} (`picomon silences`)"),
            None => "no".into(),
        },
    ));
    rows.push((
        "thread",
        d.thread
            .clone()
            .unwrap_or_else(|| "none (no outage open)".into()),
    ));
    rows.push((
        "depends on",
        if d.depends_on.is_empty() {
            "nothing".into()
        } else {
            d.depends_on
                .iter()
                .map(|p| format!("{} ({})", p.check, p.phase))
                .collect::<Vec<_>>()
                .join(", ")
        },
    ));
    if let Some(by) = &c.unreachable_by {
        rows.push(("unreachable", format!("via {by}, which is failing")));
    }
    rows.push((
        "flapping",
        match (c.flapping, c.flap_percent) {
            (_, None) => "detection off".into(),
            (true, Some(p)) => format!("yes, {p:.0}% state change over the last 21 runs"),
            (false, Some(p)) => format!("no, {p:.0}% state change over the last 21 runs"),
        },
    ));
    let mut out = format!("{} on {}\n", c.name, c.target);
    for (key, value) in rows {
        let mut lines = value.lines();
        out.push_str(&format!("  {key:<15}{}\n", lines.next().unwrap_or("")));
        for more in lines {
            out.push_str(&format!("  {:<15}{more}\n", ""));
        }
    }
    out
}

pub fn render_silences(answer: &Response) -> String {
    let silences = answer.silences.clone().unwrap_or_default();
    if silences.is_empty() {
        return "no silences\n".into();
    }
    let mut out = String::new();
    for x in silences {
        out.push_str(&format!(
            "{}  {:?}  by {}  until {}  {}\n",
            x.id,
            x.pattern,
            x.by,
            local_datetime(x.until),
            x.comment
        ));
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::control::protocol::{AckView, Dependency, Outbox};

    pub(in super::super) fn check(name: &str, phase: &str, status: &str) -> CheckStatus {
        CheckStatus {
            id: format!("{name} id").into(),
            name: name.into(),
            target: "web1".into(),
            phase: phase.to_string().into(),
            status: Some(status.to_string().into()),
            failed_runs: if phase == "ok" { 0 } else { 1 },
            max_runs: 2,
            since: (phase != "ok").then_some(1_000),
            last_run: Some(1_090),
            duration: Some(0.25),
            output: format!("{name} says {status}").into(),
            ..CheckStatus::default()
        }
    }

    fn report() -> StatusReport {
        let mut p = check("http", "problem", "CRITICAL");
        p.ack = Some(AckView {
            by: "alice".into(),
            comment: "on it".into(),
            until: None,
        });
        let mut r = check("ping", "retrying", "WARNING");
        r.silenced_by = Some("4".into());
        StatusReport {
            checks: vec![check("disk", "ok", "OK"), r, p],
            outbox: Outbox {
                lines: vec!["mail outbox: empty".into()],
            },
            silences: vec![],
            at: 1_100,
        }
    }

    const PIPE: Style = Style {
        colour: false,
        width: None,
    };

    #[test]
    fn the_table_lists_problems_first_with_their_markers() {
        let t = render_table(&report(), false, PIPE);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{t}");
        assert!(lines[1].starts_with("http"), "{t}");
        assert!(
            lines[1].contains("PROBLEM") && lines[1].contains("[ACK alice]"),
            "{t}"
        );
        assert!(
            lines[1].contains("0:01:40") && lines[1].contains("0:00:10 ago"),
            "{t}"
        );
        assert!(
            lines[2].contains("RETRYING 1/2") && lines[2].contains("[SILENCED 4]"),
            "{t}"
        );
        assert!(lines[3].starts_with("disk"), "{t}");
        assert!(t.contains("3 checks, 1 in PROBLEM"), "{t}");
        assert!(!t.contains('\x1b'), "no colour off a terminal: {t}");
    }

    #[test]
    fn problems_only_and_colours_per_status_on_a_terminal() {
        let style = Style {
            colour: true,
            width: Some(200),
        };
        let t = render_table(&report(), true, style);
        assert!(!t.contains("disk"), "{t}");
        assert!(t.contains("\x1b[31mPROBLEM"), "{t}");
        assert!(t.contains("\x1b[31mCRITICAL"), "{t}");
        assert!(t.contains("\x1b[33mWARNING"), "{t}");
    }

    #[test]
    fn at_80_columns_no_line_is_wider_perfdata_is_out_and_calm_checks_show_no_percentage() {
        let mut r = report();
        let mut long = check(
            "a very long check name that goes on and on",
            "problem",
            "CRITICAL",
        );
        long.target = "a-long-host-name.datacenter.example.org".into();
        long.output =
            "CRITICAL - connection refused by the peer after a long wait | time=5.0s;1;2;0".into();
        let mut calm = check("calm", "ok", "OK");
        calm.flap_percent = Some(4.0);
        calm.output = "OK - fine | load=0.1".into();
        let mut flappy = check("flappy", "ok", "OK");
        flappy.flap_percent = Some(40.0);
        flappy.flapping = true;
        r.checks.extend([long, calm, flappy]);
        let style = Style {
            colour: false,
            width: Some(80),
        };
        let t = render_table(&r, false, style);
        for l in t.lines() {
            assert!(
                l.chars().count() <= 80,
                "{} chars: {l}\n{t}",
                l.chars().count()
            );
        }
        assert!(t.contains('…'), "{t}");
        assert!(!t.contains('|') && !t.contains("load="), "{t}");
        assert!(!t.contains("4%"), "{t}");
        assert!(t.contains("[FLAPPING 40%]"), "{t}");
        // A pipe gets the whole line.
        let piped = render_table(&r, false, PIPE);
        assert!(piped.contains("after a long wait"), "{piped}");
    }

    #[test]
    fn the_detail_shows_the_whole_output_ack_thread_and_dependencies() {
        let mut c = check("http", "problem", "CRITICAL");
        c.ack = Some(AckView {
            by: "alice".into(),
            comment: "on it".into(),
            until: None,
        });
        c.flap_percent = Some(10.0);
        let d = CheckDetail {
            status: c,
            full_output: "CRITICAL - refused | time=1s\nsecond line".into(),
            depends_on: vec![Dependency {
                check: "ping on web1".into(),
                phase: "OK".into(),
            }],
            thread: Some("picomon.1.2@host".into()),
            recent_durations: vec![0.25, 0.5],
        };
        let t = render_detail(&d, 1_100, PIPE);
        for want in [
            "http on web1",
            "PROBLEM",
            "CRITICAL",
            "1 of 2 failed runs",
            "(0:01:40 ago)",
            "CRITICAL - refused | time=1s",
            "                 second line",
            "by alice: on it, until recovery",
            "picomon.1.2@host",
            "ping on web1 (OK)",
            "no, 10% state change",
            "0.25s 0.50s",
        ] {
            assert!(t.contains(want), "{want:?} missing:\n{t}");
        }
    }
}
