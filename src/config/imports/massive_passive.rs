//! A massive-passive `checks.d` directory: one JSON file per check.
//!
//! ```json
//! {
//!     "check_description": "First passive check",
//!     "interval": 25,
//!     "servers": { "nagios-host-1": "127.0.0.1:5667" },
//!     "command": "/bin/echo 'hello this is an environment test: $TESTERTEST'",
//!     "env": {"TESTERTEST": "moep!"},
//!     "check_type": "service_check",
//!     "check_hostname": "this.is.a.hostname",
//!     "max_instances": 3
//! }
//! ```
//!
//! `interval` in seconds becomes `every` in ticks of `config.base_tick` (as
//! set before the call), and must be a whole number of them. A cron-like
//! `interval` map (`month`, `day`, `day_of_week`, `hour`, `minute`,
//! `start_date`, `end_date`) becomes a `when` window run at most once a
//! minute; as in the scheduler massive-passive uses, the fields below the
//! last one given default to their first value (`"hour": "9-17"` runs at
//! minute 0 of those hours). The command runs through `/bin/sh` as
//! massive-passive's did (its `$VARIABLES` come from `env`). `servers` is
//! ignored: results go to `config.outputs`.

use std::path::Path;

use rhai::{Dynamic, Map};
use serde_json::Value;

use super::Imported;
use crate::config::builder::{Builder, CheckOpts};
use crate::model::{CheckDef, CheckKind};

const KEYS: [&str; 8] = [
    "check_description",
    "interval",
    "command",
    "env",
    "check_type",
    "check_hostname",
    "max_instances",
    "servers",
];

/// Cron fields, most significant first, with picomon's `when` key and the
/// value a field below the last one given takes.
const CRON: [(&str, &str, Option<&str>); 5] = [
    ("month", "months", Some("1")),
    ("day", "days", Some("1")),
    ("day_of_week", "weekdays", None),
    ("hour", "hours", Some("0")),
    ("minute", "minutes", Some("0")),
];

pub(super) fn read(dir: &Path, b: &Builder) -> Result<Vec<Imported>, String> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!("massive_passive_checks: cannot read the folder {shown}: {e} (give the checks.d folder, relative to the config file)")
    })?;
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            !name.starts_with('.') && !name.ends_with('~')
        })
        .collect();
    crate::sort::ascending(&mut files);
    files.iter().map(|f| read_one(f, b)).collect()
}

fn read_one(path: &Path, b: &Builder) -> Result<Imported, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg);
        format!(
            "{file}:{}:{}: not valid JSON: {msg} (massive-passive skipped such files; fix or remove it)",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(map) = json else {
        return Err(format!("{file}:1: expected one JSON object per file"));
    };
    let at = |key: &str| format!("{file}:{}", key_line(&text, key));
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(format!(
                "{}: unknown key {key:?}; known: {}",
                at(key),
                KEYS.join(", ")
            ));
        }
    }
    let string = |key: &str| -> Result<Option<String>, String> {
        match map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "{}: {key} must be a non-empty string, not {other}",
                at(key)
            )),
        }
    };
    let need = |key: &str| -> Result<String, String> {
        string(key)?.ok_or_else(|| format!("{file}:1: this check has no {key:?}"))
    };
    let name = need("check_description")?;
    let command = need("command")?;
    let mut opts = CheckOpts {
        name: Some(name),
        ..CheckOpts::default()
    };
    match map.get("interval") {
        None => return Err(format!("{file}:1: this check has no \"interval\"")),
        Some(Value::Object(cron)) => {
            let (when, every) = cron_window(cron, b.keys.base_tick)
                .map_err(|e| format!("{}: {e}", at("interval")))?;
            opts.more_mut().when = Some(when);
            opts.every = Some(every);
        }
        Some(v) => {
            let secs = v.as_f64().filter(|s| *s > 0.0).ok_or_else(|| {
                format!("{}: interval must be seconds (a number above 0) or a map like {{\"hour\": \"9-17\"}}, not {v}", at("interval"))
            })?;
            opts.every = Some(
                ticks(secs, b.keys.base_tick).map_err(|e| format!("{}: {e}", at("interval")))?,
            );
        }
    }
    if let Some(env) = map.get("env") {
        let Value::Object(env) = env else {
            return Err(format!(
                "{}: env must be a map like {{\"LANG\": \"C\"}}",
                at("env")
            ));
        };
        for (k, v) in env {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(format!(
                        "{}: env.{k} must be a string, not {other}",
                        at("env")
                    ))
                }
            };
            if k.is_empty() || k.contains(['=', '\0']) || value.contains('\0') {
                return Err(format!(
                    "{}: env.{k:?} is not a valid environment variable",
                    at("env")
                ));
            }
            opts.more_mut().env.push((k.clone(), value));
        }
    }
    match string("check_type")?.as_deref() {
        None | Some("service_check") => {}
        Some("host_check") => opts.passive_host = true,
        Some(other) => {
            return Err(format!(
                "{}: check_type {other:?} is not \"service_check\" or \"host_check\"",
                at("check_type")
            ))
        }
    }
    if let Some(host) = string("check_hostname")? {
        opts.target_name = Some(host.clone());
        opts.more_mut().host_name = Some(host);
    }
    if let Some(v) = map.get("max_instances") {
        let n = v
            .as_u64()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                format!(
                    "{}: max_instances must be a whole number from 1 to 1000, not {v}",
                    at("max_instances")
                )
            })?;
        opts.max_instances = Some(n as u16);
    }
    let def = CheckDef {
        identity: format!("shell:{command}"),
        kind: CheckKind::Shell {
            command: command.into(),
        },
        label: "shell".into(),
        dest: b.hostname.clone(),
    };
    Ok(Imported {
        def,
        opts,
        place: format!("{file}:1"),
    })
}

/// `secs` as a whole number of ticks of `tick` seconds.
fn ticks(secs: f64, tick: f64) -> Result<u64, String> {
    let n = (secs / tick).round();
    if n >= 1.0 && (n * tick - secs).abs() < 1e-6 {
        return Ok(n as u64);
    }
    let below = (secs / tick).floor().max(1.0) * tick;
    let above = (secs / tick).ceil().max(1.0) * tick;
    Err(format!(
        "interval {secs} s is not a multiple of config.base_tick ({tick} s): use {below} or {above} s, or set config.base_tick (before massive_passive_checks) to a divisor of it"
    ))
}

/// A cron-like map as a `when` window and the `every` that runs a check
/// once in each minute the window allows.
fn cron_window(
    cron: &serde_json::Map<String, Value>,
    tick: f64,
) -> Result<(crate::model::When, u64), String> {
    let mut when = Map::new();
    for (key, v) in cron {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "interval.{key} must be a string or number, not {other}"
                ))
            }
        };
        let name = match key.as_str() {
            "start_date" => "start",
            "end_date" => "end",
            k => match CRON.iter().find(|c| c.0 == k) {
                Some(c) => c.1,
                None => {
                    return Err(format!(
                        "interval.{key} is not supported; picomon reads month, day, day_of_week, hour, minute, start_date and end_date"
                    ))
                }
            },
        };
        when.insert(name.into(), Dynamic::from(text));
    }
    if let Some(last) = CRON.iter().rposition(|c| cron.contains_key(c.0)) {
        for (_, key, first) in &CRON[last + 1..] {
            if let Some(first) = first {
                when.insert((*key).into(), Dynamic::from(first.to_string()));
            }
        }
    } else {
        // Only dates: every minute in between, as the scheduler would.
    }
    let parsed = crate::config::when::parse(&Dynamic::from_map(when)).map_err(|e| {
        let mut e = e;
        for (cron_key, when_key, _) in CRON {
            e = e.replace(
                &format!("option when.{when_key}"),
                &format!("interval.{cron_key}"),
            );
        }
        e.replace("option when.start", "interval.start_date")
            .replace("option when.end", "interval.end_date")
            .replace("option when", "interval")
    })?;
    let every = (60.0 / tick).ceil().max(1.0) as u64;
    Ok((parsed, every))
}

/// The line of `"key":` in `text` (1 when it is not found).
fn key_line(text: &str, key: &str) -> usize {
    let quoted = format!("\"{key}\"");
    text.lines()
        .position(|l| {
            l.find(&quoted)
                .is_some_and(|i| l[i + quoted.len()..].trim_start().starts_with(':'))
        })
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_must_be_whole_ticks() {
        assert_eq!(ticks(25.0, 5.0), Ok(5));
        assert_eq!(ticks(60.0, 60.0), Ok(1));
        assert_eq!(ticks(0.5, 0.25), Ok(2));
        let e = ticks(25.0, 60.0).unwrap_err();
        assert!(
            e.contains("not a multiple of config.base_tick (60 s)"),
            "{e}"
        );
        assert!(e.contains("use 60 or 60 s"), "{e}");
        let e = ticks(25.0, 10.0).unwrap_err();
        assert!(e.contains("use 20 or 30 s"), "{e}");
    }

    #[test]
    fn cron_fields_below_the_last_given_start_at_their_first_value() {
        let map = |v: Value| v.as_object().unwrap().clone();
        let (w, every) = cron_window(
            &map(serde_json::json!({"hour": "9-17", "day": "1-12,24-30", "start_date": "2099-11-11 11:11:11"})),
            60.0,
        )
        .unwrap();
        assert_eq!(w.hours, (9..=17).collect::<Vec<u8>>());
        assert_eq!(w.minutes, vec![0]);
        assert_eq!(w.days.len(), 19);
        assert!(w.start.is_some());
        assert_eq!(every, 1);
        let (w, every) = cron_window(&map(serde_json::json!({"month": 6})), 10.0).unwrap();
        assert_eq!(
            (w.months, w.days, w.hours, w.minutes),
            (vec![6], vec![1], vec![0], vec![0])
        );
        assert_eq!(every, 6);
        let e = cron_window(&map(serde_json::json!({"second": "*/5"})), 60.0).unwrap_err();
        assert!(e.contains("interval.second is not supported"), "{e}");
        let e = cron_window(&map(serde_json::json!({"hour": "25"})), 60.0).unwrap_err();
        assert!(e.starts_with("interval.hour"), "{e}");
    }

    #[test]
    fn key_lines_are_found() {
        let text = "{\n  \"check_description\": \"x\",\n  \"interval\": 7\n}";
        assert_eq!(key_line(text, "interval"), 3);
        assert_eq!(key_line(text, "env"), 1);
    }
}
