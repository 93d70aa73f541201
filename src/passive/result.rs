//! One passive result and its two wire forms: the Nagios external-command
//! line (`[epoch] PROCESS_SERVICE_CHECK_RESULT;host;service;code;output|perf`)
//! shared by NSCA-web, the command file and `--send`, and the JSON object of
//! `json_lines`.
//!
//! A command line is one line with `;` as field separator, so everything
//! that comes from a plugin or a user is made safe here, once: newlines in
//! the output become the literal `\n` Nagios 4 and Icinga 2 turn back into
//! newlines, backslashes are doubled so that round-trips, control
//! characters are dropped, and `;` cannot appear in host or service names.

use std::fmt::Write as _;
use std::time::Duration;

use crate::clock::UnixMicros;
use crate::model::plugin_output::perfdata_json;
use crate::model::{CheckSpec, Outcome, Status};

/// One result as the outputs forward it.
#[derive(Clone, Debug, PartialEq)]
pub struct PassiveResult {
    /// When the check ran (wall clock).
    pub time: UnixMicros,
    /// Host name as the receiving server knows it.
    pub host: String,
    /// Service name; `None` for a host result.
    pub service: Option<String>,
    pub status: Status,
    /// Summary, then long output on further lines (may contain `\n`).
    pub output: String,
    /// Performance data, items separated by spaces.
    pub perfdata: String,
    pub duration: Duration,
    /// Structured measurements for `json_lines` (see [`Outcome::data`]).
    pub data: Option<Box<serde_json::Value>>,
}

impl PassiveResult {
    /// Builds a result from a run's outcome. `service = None` makes a host
    /// result (a check with `#{ passive: "host" }`).
    pub fn from_outcome(
        time: UnixMicros,
        host: &str,
        service: Option<&str>,
        outcome: &Outcome,
    ) -> PassiveResult {
        let mut output = outcome.summary.clone();
        if !outcome.long_output.is_empty() {
            output.push('\n');
            output.push_str(&outcome.long_output);
        }
        let perfdata = outcome
            .perfdata
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        PassiveResult {
            time,
            host: host.to_string(),
            service: service.map(str::to_string),
            status: outcome.status,
            output,
            perfdata,
            duration: outcome.duration,
            data: outcome.data.clone(),
        }
    }

    /// The result one run of `check` sends to the outputs: the check's
    /// `dest` (its host, or `target_name`) as host and its name as service;
    /// a `passive: "host"` check sends a host result.
    pub fn for_check(check: &CheckSpec, outcome: &Outcome, time: UnixMicros) -> PassiveResult {
        let host = check.host_name().unwrap_or(&check.dest);
        let service = (!check.passive_host).then(|| check.service_name().unwrap_or(&check.name));
        PassiveResult::from_outcome(time, host, service, outcome)
    }

    /// Whether this result is a ping of `check`: a heartbeat check takes
    /// a service result by its name (or `service_name`, or identity) and a
    /// host result by its name.
    pub fn is_ping_for(&self, check: &CheckSpec) -> bool {
        let name = self.service.as_deref().unwrap_or(&self.host);
        matches!(check.kind, crate::model::CheckKind::Heartbeat(_))
            && (*check.name == *name || *check.id == *name || check.service_name() == Some(name))
    }

    /// The return code the server expects. A service takes the plugin's
    /// 0..3. A host takes 0 (UP) or 1 (DOWN): OK and WARNING mean the host
    /// is up, CRITICAL and UNKNOWN that it is down, as Nagios and Icinga
    /// read a host check plugin (Icinga 2's API refuses other host codes).
    pub fn code(&self) -> i32 {
        match (&self.service, self.status) {
            (Some(_), s) => s.code(),
            (None, Status::Ok | Status::Warning) => 0,
            (None, Status::Critical | Status::Unknown) => 1,
        }
    }

    /// The Nagios external command for this result, without a trailing
    /// newline, at most `max_line_size` bytes (cut on a character boundary,
    /// never in the middle of an escape).
    pub fn command_line(&self, max_line_size: usize) -> String {
        let mut line = String::with_capacity(128 + self.output.len() + self.perfdata.len());
        let epoch = self.time.div_euclid(1_000_000);
        let host = clean_name(&self.host);
        match &self.service {
            Some(service) => {
                let _ = write!(
                    line,
                    "[{epoch}] PROCESS_SERVICE_CHECK_RESULT;{host};{};{};",
                    clean_name(service),
                    self.code()
                );
            }
            None => {
                let _ = write!(
                    line,
                    "[{epoch}] PROCESS_HOST_CHECK_RESULT;{host};{};",
                    self.code()
                );
            }
        }
        let (summary, long) = match self.output.split_once('\n') {
            Some((s, l)) => (s, Some(l)),
            None => (self.output.as_str(), None),
        };
        // A `|` in the summary would start perfdata on the server.
        escape_into(&mut line, &summary.replace('|', "/"));
        let perf = self.perfdata.trim();
        if !perf.is_empty() {
            line.push('|');
            escape_into(&mut line, &perf.replace(['\n', '\r'], " "));
        }
        if let Some(long) = long {
            line.push_str("\\n");
            escape_into(&mut line, long);
        }
        truncate_line(&mut line, max_line_size);
        line
    }

    /// One JSON object (no newline): time (Unix seconds with fraction),
    /// host, check (`null` for a host result), status name, output,
    /// perfdata parsed into items (see [`perfdata_json`]) and as the plugin
    /// wrote it (`perfdata_text`), duration (seconds), and `data`: the
    /// probe's or script's measurements, `null` when it has none.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// [`PassiveResult::to_json`]'s object, for outputs that add fields
    /// (Elasticsearch's `@timestamp`).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({
            "time": self.time as f64 / 1e6,
            "host": self.host,
            "check": self.service,
            "status": self.status.as_str(),
            "output": self.output,
            "perfdata": perfdata_json(&self.perfdata),
            "perfdata_text": self.perfdata,
            "duration": self.duration.as_secs_f64(),
            "data": self.data,
        })
    }

    /// Parses a line in the external-command format (what `--send` and
    /// `result_dir` files carry). `[epoch] ` is optional: without it the
    /// result is stamped `now`. The error says what is wrong with the line.
    pub fn parse_command_line(line: &str, now: UnixMicros) -> Result<PassiveResult, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        let (time, rest) = match line.strip_prefix('[') {
            Some(after) => {
                let (epoch, rest) = after
                    .split_once(']')
                    .ok_or("missing `]` after the `[epoch` prefix")?;
                let secs: i64 = epoch
                    .trim()
                    .parse()
                    .map_err(|_| format!("`[{epoch}]` is not a Unix time in seconds"))?;
                (secs * 1_000_000, rest.trim_start())
            }
            None => (now, line.trim_start()),
        };
        let (command, args) = rest
            .split_once(';')
            .ok_or("expected PROCESS_SERVICE_CHECK_RESULT;host;service;code;output or PROCESS_HOST_CHECK_RESULT;host;code;output")?;
        let (host, service, code, text) = match command {
            "PROCESS_SERVICE_CHECK_RESULT" => {
                let mut f = args.splitn(4, ';');
                let host = f.next().unwrap_or_default();
                let service = f.next().ok_or("missing service name")?;
                let code = f.next().ok_or("missing return code")?;
                let text = f.next().ok_or("missing plugin output after the return code")?;
                (host, Some(service), code, text)
            }
            "PROCESS_HOST_CHECK_RESULT" => {
                let mut f = args.splitn(3, ';');
                let host = f.next().unwrap_or_default();
                let code = f.next().ok_or("missing return code")?;
                let text = f.next().ok_or("missing plugin output after the return code")?;
                (host, None, code, text)
            }
            other => {
                return Err(format!(
                    "unknown command `{other}` (expected PROCESS_SERVICE_CHECK_RESULT or PROCESS_HOST_CHECK_RESULT)"
                ))
            }
        };
        if host.is_empty() {
            return Err("empty host name".into());
        }
        if service == Some("") {
            return Err("empty service name".into());
        }
        let code_num = code.trim().parse::<i32>().ok();
        let status = match (service, code_num) {
            (Some(_), Some(n)) => Status::from_code(n),
            // Host codes: 0 UP, 1 DOWN, 2 UNREACHABLE (forwarded as DOWN).
            (None, Some(0)) => Some(Status::Ok),
            (None, Some(1 | 2)) => Some(Status::Critical),
            (None, Some(3)) => Some(Status::Unknown),
            _ => None,
        }
        .ok_or_else(|| format!("return code `{code}` is not 0, 1, 2 or 3"))?;
        let text = unescape(text);
        let (first, long) = match text.split_once('\n') {
            Some((f, l)) => (f, Some(l)),
            None => (text.as_str(), None),
        };
        let (summary, perfdata) = match first.split_once('|') {
            Some((s, p)) => (s, p.trim()),
            None => (first, ""),
        };
        let mut output = summary.to_string();
        if let Some(long) = long {
            output.push('\n');
            output.push_str(long);
        }
        Ok(PassiveResult {
            time,
            host: host.to_string(),
            service: service.map(str::to_string),
            status,
            output,
            perfdata: perfdata.to_string(),
            duration: Duration::ZERO,
            data: None,
        })
    }
}

/// Host and service names: `;` and control characters would break the
/// line, so they become `_`.
fn clean_name(name: &str) -> String {
    name.chars()
        .map(|c| if c == ';' || c.is_control() { '_' } else { c })
        .collect()
}

/// Appends `text` with `\` doubled, newlines as `\n`, CR and other control
/// characters dropped (a tab becomes a space).
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// The inverse of [`escape_into`]: `\n` to a newline, `\\` to `\`; any other
/// backslash is kept as it is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Cuts `line` to at most `max` bytes on a character boundary; if the cut
/// leaves half an escape (an odd run of trailing backslashes), that
/// backslash goes too.
fn truncate_line(line: &mut String, max: usize) {
    if line.len() <= max {
        return;
    }
    let mut end = max;
    while end > 0 && !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    let trailing = line.bytes().rev().take_while(|&b| b == b'\\').count();
    if trailing % 2 == 1 {
        line.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PassiveResult {
        PassiveResult {
            time: 1_700_000_000_250_000,
            host: "web1".into(),
            service: Some("disk".into()),
            status: Status::Critical,
            output: "DISK CRITICAL - 90% used\n/var: 95%\n/home: 50%".into(),
            perfdata: "/=90%;80;90".into(),
            duration: Duration::from_millis(1500),
            data: Some(Box::new(serde_json::json!({ "used": { "/": 90 } }))),
        }
    }

    #[test]
    fn service_line_puts_perfdata_on_the_first_line_and_escapes_newlines() {
        assert_eq!(
            sample().command_line(8192),
            "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;disk;2;DISK CRITICAL - 90% used|/=90%;80;90\\n/var: 95%\\n/home: 50%"
        );
    }

    #[test]
    fn host_line_has_no_service_field() {
        let mut r = sample();
        r.service = None;
        r.status = Status::Ok;
        r.output = "PING OK".into();
        r.perfdata.clear();
        assert_eq!(
            r.command_line(8192),
            "[1700000000] PROCESS_HOST_CHECK_RESULT;web1;0;PING OK"
        );
    }

    #[test]
    fn a_check_maps_to_its_dest_and_name_or_to_a_host_result() {
        let mut spec = CheckSpec {
            id: "disk /".into(),
            name: "root fs".into(),
            dest: "web1".into(),
            kind: crate::model::CheckKind::Shell {
                command: "true".into(),
            },
            every: 1,
            error_every: 1,
            retry: 0,
            timeout_ms: 1_000,
            extras: None,
            passive_host: false,
            max_instances: 1,
            line: 1,
            noise: None,
        };
        let mut outcome = Outcome::new(Status::Warning, "DISK WARNING");
        outcome.long_output = "/: 85%".into();
        let r = PassiveResult::for_check(&spec, &outcome, 5_000_000);
        assert_eq!(r.host, "web1");
        assert_eq!(r.service.as_deref(), Some("root fs"));
        assert_eq!(r.output, "DISK WARNING\n/: 85%");
        assert_eq!(r.time, 5_000_000);
        spec.extras = Some(Box::new(crate::model::Extras {
            host_name: Some("web1.example.org".into()),
            service_name: Some("Disk /".into()),
            ..Default::default()
        }));
        let r = PassiveResult::for_check(&spec, &outcome, 5_000_000);
        assert_eq!(r.host, "web1.example.org");
        assert_eq!(r.service.as_deref(), Some("Disk /"));
        spec.passive_host = true;
        let r = PassiveResult::for_check(&spec, &outcome, 5_000_000);
        assert_eq!(r.service, None);
        assert_eq!(r.code(), 0);
    }

    #[test]
    fn host_results_are_up_or_down() {
        let mut r = sample();
        r.service = None;
        let codes: Vec<i32> = [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
        ]
        .into_iter()
        .map(|s| {
            r.status = s;
            r.code()
        })
        .collect();
        assert_eq!(codes, [0, 0, 1, 1]);
        let down = PassiveResult::parse_command_line("PROCESS_HOST_CHECK_RESULT;gw;1;down", 0)
            .expect("parses");
        assert_eq!(down.status, Status::Critical);
        assert!(down.command_line(100).contains(";gw;1;down"));
        let unreachable =
            PassiveResult::parse_command_line("PROCESS_HOST_CHECK_RESULT;gw;2;unreachable", 0)
                .expect("parses");
        assert_eq!(unreachable.code(), 1);
    }

    #[test]
    fn semicolons_and_control_characters_cannot_break_the_line() {
        let mut r = sample();
        r.host = "web;1\n".into();
        r.service = Some("di;sk\r".into());
        r.output = "bad\r\u{7}\tthing | pipe;semi\\".into();
        r.perfdata.clear();
        let line = r.command_line(8192);
        assert_eq!(
            line,
            "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web_1_;di_sk_;2;bad thing / pipe;semi\\\\"
        );
        assert!(!line.contains('\n') && !line.contains('\r'));
    }

    #[test]
    fn long_lines_are_cut_without_leaving_half_an_escape() {
        let mut r = sample();
        r.output = format!("{}\\é", "x".repeat(100));
        r.perfdata.clear();
        let full = r.command_line(10_000);
        // Cut right after the first backslash of the doubled `\\`.
        let cut_at = full.find("\\\\").map(|i| i + 1).unwrap_or(0);
        let cut = r.command_line(cut_at);
        assert!(cut.len() < cut_at, "{cut}");
        assert!(!cut.ends_with('\\'));
        // Cut in the middle of `é` (2 bytes): stays valid UTF-8, shorter.
        let cut2 = r.command_line(full.len() - 1);
        assert!(cut2.len() < full.len() - 1 + 1);
        assert!(cut2.ends_with("\\\\"));
    }

    #[test]
    fn parse_round_trips_what_command_line_writes() {
        let r = sample();
        let line = r.command_line(8192);
        let back = PassiveResult::parse_command_line(&line, 0).expect("parses");
        assert_eq!(back.time, 1_700_000_000_000_000);
        assert_eq!(back.host, r.host);
        assert_eq!(back.service, r.service);
        assert_eq!(back.status, r.status);
        assert_eq!(back.output, r.output);
        assert_eq!(back.perfdata, r.perfdata);
        assert_eq!(back.command_line(8192), line);
    }

    #[test]
    fn parse_without_epoch_stamps_now_and_reads_host_results() {
        let r =
            PassiveResult::parse_command_line("PROCESS_HOST_CHECK_RESULT;gw;0;slow|rta=300ms", 42)
                .expect("parses");
        assert_eq!(r.time, 42);
        assert_eq!(r.service, None);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.output, "slow");
        assert_eq!(r.perfdata, "rta=300ms");
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let e = |l: &str| PassiveResult::parse_command_line(l, 0).unwrap_err();
        assert!(e("[12x] PROCESS_HOST_CHECK_RESULT;h;0;ok").contains("not a Unix time"));
        assert!(e("PROCESS_SERVICE_CHECK_RESULT;h;s;7;x").contains("not 0, 1, 2 or 3"));
        assert!(e("SCHEDULE_FORCED_SVC_CHECK;h;s;1").contains("unknown command"));
        assert!(e("PROCESS_SERVICE_CHECK_RESULT;h;s;0").contains("missing plugin output"));
        assert!(e("hello").contains("expected PROCESS_SERVICE_CHECK_RESULT"));
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("json");
        assert_eq!(v["host"], "web1");
        assert_eq!(v["check"], "disk");
        assert_eq!(v["status"], "CRITICAL");
        assert_eq!(v["perfdata_text"], "/=90%;80;90");
        assert_eq!(
            v["perfdata"],
            serde_json::json!([{ "label": "/", "value": 90.0, "uom": "%", "warn": "80",
                "crit": "90", "min": null, "max": null }])
        );
        assert_eq!(v["data"]["used"]["/"], 90);
        let mut bare = sample();
        bare.data = None;
        bare.perfdata.clear();
        let v: serde_json::Value = serde_json::from_str(&bare.to_json()).expect("json");
        assert_eq!(v["data"], serde_json::Value::Null);
        assert_eq!(v["perfdata"], serde_json::json!([]));
        assert_eq!(v["output"], sample().output);
        assert_eq!(v["duration"], 1.5);
        assert_eq!(v["time"], 1_700_000_000.25);
    }
}
