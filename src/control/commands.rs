//! The subcommands (`picomon status`, `ack`, `silence`, ...): each sends
//! one request to the daemon's socket and prints the answer.
//!
//! Exit codes: 0 done, 1 the daemon refused (its error is printed), 3 no
//! daemon runs on that state dir (`status` then shows the saved state).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use super::client::{self, ClientError};
use super::protocol::{CheckStatus, Request, Response, StatusReport};
use crate::cli::{Cli, Command};
use crate::clock::{hms, local_datetime, now_unix_micros};

/// How long a subcommand waits for its answer (`run` lasts as long as
/// the check).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Exit code when no daemon runs on the state dir.
pub const NO_DAEMON: i32 = 3;

pub fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<i32> {
    let state_dir = state_dir(cli)?;
    if let Command::History { check, since, json } = cmd {
        return super::history::run(&state_dir, check.as_deref(), *since, *json);
    }
    let request = match cmd.clone() {
        Command::Status { .. } => Request::Status,
        Command::Ack {
            check,
            message,
            for_secs,
            sticky,
        } => Request::Ack {
            check,
            comment: message,
            for_secs,
            sticky,
        },
        Command::Silence {
            pattern,
            for_secs,
            message,
        } => Request::Silence {
            pattern,
            for_secs,
            comment: message,
        },
        Command::Silences => Request::Silences,
        Command::Unsilence { id } => Request::Unsilence { id },
        Command::Run { check } => Request::Run { check },
        Command::Reload => Request::Reload,
        Command::Ping {
            check,
            message,
            command,
            ..
        } if !command.is_empty() => {
            return super::wrap::run(&state_dir, &check, &message, &command, ANSWER_TIMEOUT);
        }
        Command::Ping {
            check,
            fail,
            status,
            start,
            message,
            ..
        } => Request::Ping {
            check,
            start,
            fail,
            exit: status,
            nagios: None,
            message,
        },
        Command::History { .. } => unreachable!("read from the state dir above"),
    };
    let answer = match client::call(&state_dir, &request, ANSWER_TIMEOUT) {
        Ok(a) => a,
        Err(ClientError::NoDaemon(path, e)) => {
            if let Some(code) = (*cmd == Command::Reload)
                .then(|| reload_without_daemon(cli))
                .flatten()
            {
                return Ok(code);
            }
            eprintln!("picomon: no daemon is running on {} ({e})", path.display());
            if matches!(cmd, Command::Status { .. }) {
                show_saved_state(&state_dir);
            }
            return Ok(NO_DAEMON);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(err) = &answer.error {
        eprintln!("picomon: {err}");
        return Ok(1);
    }
    Ok(match cmd {
        Command::Status { json, problems } => {
            let report = answer.status.unwrap_or_default();
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!(
                    "{}",
                    render_table(&report, *problems, std::io::stdout().is_terminal())
                );
            }
            0
        }
        Command::Silences => {
            print!("{}", render_silences(&answer));
            0
        }
        Command::Run { .. } => {
            println!("{}", answer.message.unwrap_or_default());
            answer.code.unwrap_or(0)
        }
        _ => {
            println!("{}", answer.message.unwrap_or_default());
            0
        }
    })
}

/// Where the daemon's socket is: `--state-dir`; else the first of these
/// where a socket is: the config's `state_dir` if the config runs far
/// enough to name it (a config broken further down still does), the state
/// dir the daemon of this config recorded at start ([`super::record`]: the
/// config stops before naming it, e.g. a syntax error, or names a new one
/// the running daemon does not use), the default dir; with no socket
/// anywhere, the first of them.
fn state_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &cli.state_dir {
        return Ok(dir.clone());
    }
    let evaluated = crate::config::state_dir_of(&cli.config);
    let (named, default) = match &evaluated {
        Ok((dir, true)) => (Some(dir.clone()), None),
        Ok((dir, false)) => (None, Some(dir.clone())),
        Err(_) => (None, None),
    };
    let candidates: Vec<PathBuf> = [named, super::record::read(&cli.config), default]
        .into_iter()
        .flatten()
        .collect();
    if let Some(dir) = candidates
        .iter()
        .find(|dir| client::socket_path(dir).exists())
    {
        return Ok(dir.clone());
    }
    match (candidates.into_iter().next(), evaluated) {
        (Some(dir), _) => Ok(dir),
        (None, Err(e)) => Err(e.into()),
        (None, Ok((dir, _))) => Ok(dir),
    }
}

/// No daemon answered `reload`: when the config has an error, that is the
/// answer (`FILE:LINE:COL: message`, exit 1), not the missing daemon.
fn reload_without_daemon(cli: &Cli) -> Option<i32> {
    let err = crate::config::load(&cli.config).err()?;
    eprintln!("picomon: {err:#}");
    Some(1)
}

/// The table: one line per check, problems first.
pub fn render_table(r: &StatusReport, problems_only: bool, colour: bool) -> String {
    let now = r.at;
    let mut rows: Vec<&CheckStatus> = r
        .checks
        .iter()
        .filter(|c| !problems_only || c.phase != "ok")
        .collect();
    rows.sort_by_key(|c| match c.phase.as_str() {
        "problem" => 0,
        "retrying" => 1,
        "unreachable" => 2,
        _ => 3,
    });
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|c| {
            let phase = match c.phase.as_str() {
                "problem" => "PROBLEM".to_string(),
                "retrying" => format!("RETRYING {}/{}", c.failed_runs, c.max_runs),
                "unreachable" => "UNREACHABLE".to_string(),
                _ => "OK".to_string(),
            };
            let mut marks = String::new();
            if let Some(p) = &c.unreachable_by {
                marks.push_str(&format!("[VIA {p}] "));
            }
            match c.flap_percent {
                Some(p) if c.flapping => marks.push_str(&format!("[FLAPPING {p:.0}%] ")),
                Some(p) if p >= 0.5 => marks.push_str(&format!("[{p:.0}% state change] ")),
                _ => {}
            }
            if let Some(a) = &c.ack {
                marks.push_str(&format!("[ACK {}] ", a.by));
            }
            if let Some(s) = &c.silenced_by {
                marks.push_str(&format!("[SILENCED {s}] "));
            }
            [
                c.name.clone(),
                c.target.clone(),
                phase,
                c.status.clone().unwrap_or_else(|| "-".into()),
                c.since
                    .map(|s| hms((now - s) * 1_000_000))
                    .unwrap_or_else(|| "-".into()),
                c.last_run
                    .map(|s| format!("{} ago", hms((now - s) * 1_000_000)))
                    .unwrap_or_else(|| "never".into()),
                c.duration
                    .map(|d| format!("{d:.2}s"))
                    .unwrap_or_else(|| "-".into()),
                format!("{marks}{}", c.output),
            ]
        })
        .collect();
    let head = [
        "NAME", "TARGET", "PHASE", "STATUS", "SINCE", "LAST RUN", "TOOK", "OUTPUT",
    ];
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, cell) in width.iter_mut().zip(row.iter()).take(7) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cols: [&str; 8], paint: Option<&str>| {
        let mut l = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i == 2 {
                if let Some(code) = paint {
                    l.push_str(&format!("\x1b[{code}m{c:<w$}\x1b[0m  ", w = width[i]));
                    continue;
                }
            }
            if i == 7 {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(head, None));
    for (c, row) in rows.iter().zip(&cells) {
        let paint = colour.then_some(match c.phase.as_str() {
            "problem" => "31",
            "retrying" | "unreachable" => "33",
            _ => "32",
        });
        out.push_str(&line(
            [
                &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6], &row[7],
            ],
            paint,
        ));
    }
    let failing = r.checks.iter().filter(|c| c.phase == "problem").count();
    out.push_str(&format!(
        "{} checks, {failing} in PROBLEM; {} silences\n",
        r.checks.len(),
        r.silences.len()
    ));
    for l in &r.outbox.lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn render_silences(answer: &Response) -> String {
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

/// No daemon: what the state file says, and how old it is.
fn show_saved_state(state_dir: &std::path::Path) {
    let file = crate::state::path(state_dir);
    let age = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    let saved = match (age, crate::state::load(state_dir)) {
        (None, _) => {
            println!("no saved state in {}", file.display());
            return;
        }
        (_, Err(e)) => {
            println!("{e}");
            return;
        }
        (Some(_), Ok(s)) => s,
    };
    let age = age.unwrap_or_default();
    println!(
        "saved state {} (written {} ago):",
        file.display(),
        hms(age.as_micros() as i64)
    );
    let now = now_unix_micros();
    for (id, c) in &saved.checks {
        println!(
            "  {:<8} {:<9} {id}: last run {}: {}",
            format!("{:?}", c.alert.phase).to_uppercase(),
            c.alert.last_status.map(|s| s.as_str()).unwrap_or("-"),
            c.last_run
                .map(|t| format!("{} ago", hms(now - t)))
                .unwrap_or_else(|| "never".into()),
            c.last_output.lines().next().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::{AckView, Outbox};

    fn check(name: &str, phase: &str, status: &str) -> CheckStatus {
        CheckStatus {
            id: format!("{name} id"),
            name: name.into(),
            target: "web1".into(),
            phase: phase.into(),
            status: Some(status.into()),
            failed_runs: if phase == "ok" { 0 } else { 1 },
            max_runs: 2,
            since: (phase != "ok").then_some(1_000),
            last_run: Some(1_090),
            duration: Some(0.25),
            output: format!("{name} says {status}"),
            ack: None,
            silenced_by: None,
            unreachable_by: None,
            flap_percent: None,
            flapping: false,
            announced: false,
            availability: Default::default(),
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

    #[test]
    fn the_table_lists_problems_first_with_their_markers() {
        let t = render_table(&report(), false, false);
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
    fn the_socket_is_found_through_a_config_broken_below_its_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("mon.rhai");
        std::fs::write(&cfg, "config.state_dir = \"/srv/mon\";\nconfig.nope = 1;\n").unwrap();
        let cli = Cli {
            config: cfg.clone(),
            ..Cli::default()
        };
        assert!(crate::config::load(&cfg).is_err());
        assert_eq!(state_dir(&cli).unwrap(), PathBuf::from("/srv/mon"));
        // Broken before it: the default, named after the file.
        std::fs::write(&cfg, "config.nope = 1;\nconfig.state_dir = \"/srv/mon\";\n").unwrap();
        assert_eq!(
            state_dir(&cli).unwrap(),
            PathBuf::from("/var/lib/picomon/mon")
        );
        let given = Cli {
            state_dir: Some("/x".into()),
            ..cli
        };
        assert_eq!(state_dir(&given).unwrap(), PathBuf::from("/x"));
    }

    #[test]
    fn problems_only_and_colour_on_a_terminal() {
        let t = render_table(&report(), true, true);
        assert!(!t.contains("disk"), "{t}");
        assert!(t.contains("\x1b[31mPROBLEM"), "{t}");
    }
}
