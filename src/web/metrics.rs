//! `/metrics`: the Prometheus text exposition format (version 0.0.4).
//!
//! ```text
//! # HELP picomon_check_status The status of the check's last run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//! # TYPE picomon_check_status gauge
//! picomon_check_status{check="disk",target="web1"} 0
//! ```
//! One family after the other, each with its HELP and TYPE line; label
//! values escape `\`, `"` and line feeds, HELP texts `\` and line feeds. A
//! check that has not run yet has no status, duration or last run sample
//! (absent, not 0). Checks are labelled by name and target; when two share
//! both, the later ones are labelled by their identity instead, so every
//! series stays unique.

use std::collections::HashSet;
use std::fmt::Write;

use super::proc_stats::ProcessStats;
use super::Snapshot;
use crate::control::snapshot::LinePhase;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The whole `/metrics` page.
pub fn render(s: &Snapshot, process: &ProcessStats) -> String {
    let mut out = render_checks(s);
    out.push_str(&render_process(process));
    out
}

/// The families of the loop's snapshot: what changes only when the loop
/// publishes, so the listener renders it once per snapshot.
pub fn render_checks(s: &Snapshot) -> String {
    let checks = &s.checks;
    // About 60 bytes per sample, 4 samples per check.
    let mut out = String::with_capacity(1024 + checks.len() * 300);
    let labels = CheckLabels::of(s);
    family(
        &mut out,
        "picomon_check_status",
        "gauge",
        "The status of the check's last run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    for (c, l) in checks.iter().zip(labels.iter()) {
        if let Some(status) = c.status() {
            sample(&mut out, "picomon_check_status", l, status.code() as f64);
        }
    }
    family(
        &mut out,
        "picomon_check_problem",
        "gauge",
        "1 while the check is in PROBLEM (its failure was announced), else 0.",
    );
    for (c, l) in checks.iter().zip(labels.iter()) {
        let problem = if c.phase() == LinePhase::Problem {
            1.0
        } else {
            0.0
        };
        sample(&mut out, "picomon_check_problem", l, problem);
    }
    family(
        &mut out,
        "picomon_check_duration_seconds",
        "gauge",
        "How long the check's last run took.",
    );
    for (c, l) in checks.iter().zip(labels.iter()) {
        if let Some(d) = c.duration() {
            sample(&mut out, "picomon_check_duration_seconds", l, d);
        }
    }
    family(
        &mut out,
        "picomon_check_last_run_timestamp_seconds",
        "gauge",
        "When the check's last run ended (Unix time).",
    );
    for (c, l) in checks.iter().zip(labels.iter()) {
        if let Some(at) = c.last_run() {
            sample(
                &mut out,
                "picomon_check_last_run_timestamp_seconds",
                l,
                at as f64,
            );
        }
    }
    family(
        &mut out,
        "picomon_check_availability_ratio",
        "gauge",
        "Share of the window not in an outage (0..1), from the outage log; time before the \
         check was first seen and maintenance windows are not counted.",
    );
    for (c, l) in checks.iter().zip(labels.iter()) {
        for (window, value) in c.availability().windows() {
            if let Some(percent) = value {
                let labels = format!("{l},window=\"{window}\"");
                sample(
                    &mut out,
                    "picomon_check_availability_ratio",
                    &labels,
                    percent / 100.0,
                );
            }
        }
    }
    family(
        &mut out,
        "picomon_transitions_total",
        "counter",
        "Transitions since picomon started, by kind.",
    );
    for (kind, n) in &s.transitions {
        sample(
            &mut out,
            "picomon_transitions_total",
            &label("kind", kind),
            *n as f64,
        );
    }
    family(
        &mut out,
        "picomon_notifications_pending",
        "gauge",
        "Notifications waiting for delivery, by channel.",
    );
    for (channel, n) in &s.pending {
        sample(
            &mut out,
            "picomon_notifications_pending",
            &label("channel", channel),
            *n as f64,
        );
    }
    family(
        &mut out,
        "picomon_spool_bytes",
        "gauge",
        "Bytes of results waiting in a passive output's spool.",
    );
    for (output, n) in &s.spool_bytes {
        sample(
            &mut out,
            "picomon_spool_bytes",
            &label("output", output),
            *n as f64,
        );
    }
    family(
        &mut out,
        "picomon_runs_skipped_total",
        "counter",
        "Due runs skipped because the check's previous run was still going.",
    );
    sample(
        &mut out,
        "picomon_runs_skipped_total",
        "",
        s.runs_skipped as f64,
    );
    out
}

/// The process' own families, read for each scrape.
pub fn render_process(process: &ProcessStats) -> String {
    let mut out = String::with_capacity(1024);
    process_families(&mut out, process);
    out
}

/// The usual `process_*` families, each only when /proc told it.
fn process_families(out: &mut String, p: &ProcessStats) {
    let families = [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes.map(|b| b as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes.map(|b| b as f64),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch in seconds.",
            p.start_time_seconds,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds.map(|n| n as f64),
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds.map(|n| n as f64),
        ),
    ];
    for (name, kind, help, value) in families {
        if let Some(v) = value {
            family(out, name, kind, help);
            sample(out, name, "", v);
        }
    }
}

/// `check="..",target=".."` of every check, unique (see the module
/// comment), in one buffer: rendered once, written four times.
struct CheckLabels {
    text: String,
    /// Where each check's labels end in `text`.
    ends: Vec<usize>,
}

impl CheckLabels {
    fn of(s: &Snapshot) -> CheckLabels {
        let checks = &s.checks;
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(checks.len());
        let mut text = String::with_capacity(checks.len() * 48);
        let mut ends = Vec::with_capacity(checks.len());
        for c in checks {
            let check = if seen.insert((c.name(), c.target())) {
                c.name()
            } else {
                c.id()
            };
            text.push_str("check=\"");
            escape_label_value(check, &mut text);
            text.push_str("\",target=\"");
            escape_label_value(c.target(), &mut text);
            text.push('"');
            ends.push(text.len());
        }
        CheckLabels { text, ends }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.text[a..b])
    }
}

/// `name="value"`, the value escaped.
fn label(name: &str, value: &str) -> String {
    let mut l = String::with_capacity(name.len() + value.len() + 3);
    l.push_str(name);
    l.push_str("=\"");
    escape_label_value(value, &mut l);
    l.push('"');
    l
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_label_value(value: &str, out: &mut String) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `name{labels} value`; `labels` already rendered (may be empty).
fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

/// A float as the format reads it (Go's ParseFloat): `+Inf`, `-Inf`,
/// `NaN`, or decimal digits.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Counts, codes and timestamps: integer formatting is cheaper.
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::CheckStatus;

    fn check(name: &str, target: &str, status: Option<&str>, phase: &str) -> CheckStatus {
        CheckStatus {
            id: format!("plugin:{name} on {target}").into(),
            name: name.into(),
            target: target.into(),
            phase: phase.to_string().into(),
            status: status.map(|s| s.to_string().into()),
            failed_runs: 0,
            max_runs: 2,
            since: None,
            last_run: status.map(|_| 1_700_000_000),
            duration: status.map(|_| 0.25),
            output: "".into(),
            ..CheckStatus::default()
        }
    }

    fn snapshot(checks: Vec<CheckStatus>) -> Snapshot {
        let mut s = crate::control::snapshot::of_statuses(&checks);
        s.transitions = vec![("problem", 2), ("update", 0), ("recovery", 1)];
        s.pending = vec![("mail".into(), 3)];
        s.spool_bytes = vec![("central".into(), 1234)];
        s.runs_skipped = 7;
        s
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut out = String::new();
        escape_label_value("a\\b \"quoted\"\nnext", &mut out);
        assert_eq!(out, r#"a\\b \"quoted\"\nnext"#);
        let s = snapshot(vec![check(
            "disk \"/\"\nroot",
            "C:\\web1",
            Some("CRITICAL"),
            "problem",
        )]);
        let text = render(&s, &ProcessStats::default());
        assert!(
            text.contains(
                "picomon_check_status{check=\"disk \\\"/\\\"\\nroot\",target=\"C:\\\\web1\"} 2\n"
            ),
            "{text}"
        );
        // Nothing in a label breaks a line.
        for line in text.lines() {
            assert!(
                line.starts_with('#')
                    || line.starts_with("picomon_")
                    || line.starts_with("process_"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn help_texts_escape_backslash_and_newline() {
        assert_eq!(escape_help("a\\b\nc \"d\""), "a\\\\b\\nc \"d\"");
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let mut disk = check("disk", "web1", Some("OK"), "ok");
        disk.availability = crate::history::Availability {
            day: Some(100.0),
            week: Some(99.5),
            month: None,
        };
        let s = snapshot(vec![
            disk,
            check("load", "web1", Some("WARNING"), "retrying"),
            check("new", "web2", None, "ok"),
        ]);
        let p = ProcessStats {
            cpu_seconds: Some(1.5),
            resident_bytes: Some(4096),
            ..ProcessStats::default()
        };
        let text = render(&s, &p);
        let mut typed = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(typed.insert(rest.split(' ').next().unwrap().to_string()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(typed.contains(name), "{name} sampled before its TYPE");
            }
        }
        for want in [
            "picomon_check_status{check=\"disk\",target=\"web1\"} 0\n",
            "picomon_check_status{check=\"load\",target=\"web1\"} 1\n",
            "picomon_check_problem{check=\"new\",target=\"web2\"} 0\n",
            "picomon_check_duration_seconds{check=\"disk\",target=\"web1\"} 0.25\n",
            "picomon_check_last_run_timestamp_seconds{check=\"disk\",target=\"web1\"} 1700000000\n",
            "picomon_check_availability_ratio{check=\"disk\",target=\"web1\",window=\"24h\"} 1\n",
            "picomon_check_availability_ratio{check=\"disk\",target=\"web1\",window=\"7d\"} 0.995\n",
            "picomon_transitions_total{kind=\"problem\"} 2\n",
            "picomon_notifications_pending{channel=\"mail\"} 3\n",
            "picomon_spool_bytes{output=\"central\"} 1234\n",
            "picomon_runs_skipped_total 7\n",
            "process_cpu_seconds_total 1.5\n",
            "process_resident_memory_bytes 4096\n",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        // A check that never ran has no status sample.
        assert!(!text.contains("picomon_check_status{check=\"new\""));
        assert!(!text.contains("process_open_fds"), "unknown: absent");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn checks_sharing_name_and_target_stay_distinct_series() {
        let mut a = check("check_disk", "web1", Some("OK"), "ok");
        let mut b = a.clone();
        a.id = "plugin:check_disk -p /".into();
        b.id = "plugin:check_disk -p /var".into();
        let text = render(&snapshot(vec![a, b]), &ProcessStats::default());
        assert!(text.contains("picomon_check_status{check=\"check_disk\",target=\"web1\"} 0"));
        assert!(text.contains(
            "picomon_check_status{check=\"plugin:check_disk -p /var\",target=\"web1\"} 0"
        ));
    }

    #[test]
    fn values_are_go_floats() {
        let mut out = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.000001, 1e21] {
            push_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "NaN +Inf -Inf 0.000001 1000000000000000000000 ");
    }
}
