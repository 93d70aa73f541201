//! The subcommands (`picomon status`, `ack`, `silence`, ...): each sends
//! one request to the daemon's socket and prints the answer.
//!
//! Exit codes: 0 done, 1 the daemon refused (its error is printed) or
//! (`status`) a check is in PROBLEM, 3 no daemon runs on that state dir
//! (`status` then shows the saved state).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use std::time::Duration;

mod render;

use super::client::{self, ClientError};
use super::protocol::{CheckStatus, Request, DOCUMENT_END};
use crate::cli::term::Style;
use crate::cli::{Cli, Command};
use crate::clock::{hms, now_unix_micros};

use render::render_silences;
pub use render::{render_detail, render_table};

/// How long a subcommand waits for its answer (`run` lasts as long as
/// the check).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Exit code when no daemon runs on the state dir.
pub const NO_DAEMON: i32 = 3;

pub fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<i32> {
    if let Command::Complete { what } = cmd {
        super::complete::print(cli, *what);
        return Ok(0);
    }
    let state_dir = state_dir(cli)?;
    if let Command::History {
        check,
        since,
        json,
        csv,
    } = cmd
    {
        if *csv {
            return super::history::csv(&state_dir, check.as_deref(), *since);
        }
        return super::history::run(&state_dir, check.as_deref(), *since, *json);
    }
    let request = match cmd.clone() {
        Command::Status {
            check: Some(check), ..
        } => Request::Check { check },
        Command::Status {
            check: None,
            only,
            problems,
            json,
        } => Request::Status {
            only,
            problems,
            // Printed as the daemon writes it.
            document: json,
        },
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
            mail_from: None,
        },
        Command::Unack { check } => Request::Unack {
            check,
            mail_from: None,
        },
        Command::Silence {
            pattern,
            for_secs,
            message,
        } => Request::Silence {
            pattern,
            for_secs,
            comment: message,
            mail_from: None,
        },
        Command::Silences { .. } => Request::Silences,
        Command::Unsilence { id } => Request::Unsilence { id },
        Command::Run { check, .. } => Request::Run { check },
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
        Command::MailIn => unreachable!("picomon mail-in is not a control command"),
        Command::Complete { .. } => unreachable!("answered above"),
        Command::History { .. } => unreachable!("read from the state dir above"),
        Command::Simulate { .. } => unreachable!("run by the daemon module, without a daemon"),
    };
    let answer = match call(&state_dir, &request) {
        Ok(a) => a,
        Err(ClientError::NoDaemon(path, e)) => {
            if let Some(code) = (*cmd == Command::Reload)
                .then(|| reload_without_daemon(cli))
                .flatten()
            {
                return Ok(code);
            }
            eprintln!("picomon: no daemon is running on {} ({e})", path.display());
            if let Command::Status { json, .. } = cmd {
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&saved_state_json(&state_dir))?
                    );
                } else {
                    show_saved_state(&state_dir);
                }
            }
            return Ok(NO_DAEMON);
        }
        Err(e) => return Err(e.into()),
    };
    let answer = match answer {
        Answer::Document(head, rest) => return print_document(head, rest),
        Answer::Whole(a) => *a,
    };
    if let Some(err) = &answer.error {
        eprintln!("picomon: {err}");
        return Ok(1);
    }
    let style = Style::stdout();
    Ok(match cmd {
        Command::Status {
            check: Some(_),
            json,
            ..
        } => {
            let Some(detail) = answer.check else {
                anyhow::bail!("the daemon's answer has no check in it");
            };
            if *json {
                println!("{}", from_daemon_json(&detail)?);
            } else {
                print!(
                    "{}",
                    render_detail(&detail, now_unix_micros() / 1_000_000, style)
                );
            }
            problem_code([&detail.status])
        }
        Command::Status { json, problems, .. } => {
            // Filtered by the daemon already.
            let report = answer.status.unwrap_or_default();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if *json {
                write_daemon_json(&mut out, &report)?;
            } else {
                out.write_all(render_table(&report, *problems, style).as_bytes())?;
            }
            out.flush()?;
            problem_code(&report.checks)
        }
        Command::Silences { json } => {
            if *json {
                let silences = answer.silences.clone().unwrap_or_default();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "silences": silences }))?
                );
            } else {
                print!("{}", render_silences(&answer));
            }
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

/// What the daemon answered: one line, or (`status --json`) the head of
/// a document and the connection it comes on.
enum Answer {
    Whole(Box<super::protocol::Response>),
    Document(super::protocol::DocumentHead, client::Rest),
}

/// Sends `request`; a `status` with `document` that a daemon from before
/// documents refuses is asked again without.
fn call(state_dir: &std::path::Path, request: &Request) -> Result<Answer, ClientError> {
    let Request::Status {
        only,
        problems,
        document: true,
    } = request
    else {
        return client::call(state_dir, request, ANSWER_TIMEOUT)
            .map(|a| Answer::Whole(Box::new(a)));
    };
    match client::call_document(state_dir, request, ANSWER_TIMEOUT)? {
        Ok((head, rest)) => Ok(Answer::Document(head, rest)),
        Err(refused)
            if refused
                .error
                .as_deref()
                .is_some_and(|e| e.contains("`document`")) =>
        {
            let plain = Request::Status {
                only: only.clone(),
                problems: *problems,
                document: false,
            };
            client::call(state_dir, &plain, ANSWER_TIMEOUT).map(|a| Answer::Whole(Box::new(a)))
        }
        Err(answer) => Ok(Answer::Whole(Box::new(answer))),
    }
}

/// `status --json`: the text the daemon writes, copied out as it comes;
/// the exit code from its head. A thread reads the socket as fast as the
/// daemon writes, whatever pace stdout keeps (a pager, a slow pipe), so
/// the daemon is never held by the reader of our output; the pieces wait
/// in memory meanwhile.
fn print_document(head: super::protocol::DocumentHead, rest: client::Rest) -> anyhow::Result<i32> {
    copy_document(rest, &mut std::io::stdout().lock())?;
    Ok(i32::from(head.problem))
}

/// The text on `rest` up to [`DOCUMENT_END`], to `out`; an error when
/// `rest` ends otherwise (cut short).
fn copy_document(
    mut rest: impl std::io::Read + Send + 'static,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    const PIECE: usize = 256 * 1024;
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<Vec<u8>>>();
    // Not joined: it ends when the daemon closes, which it does after the
    // document, or with the process.
    std::thread::spawn(move || {
        let mut buf = vec![0u8; PIECE];
        loop {
            let piece = match rest.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = piece.is_err();
            if tx.send(piece).is_err() || failed {
                break;
            }
        }
    });
    let mut held = HeldBack::default();
    for piece in rx {
        held.pass(&piece.context("reading the daemon's answer")?, out)?;
    }
    out.flush()?;
    anyhow::ensure!(
        held.ended(),
        "the daemon's answer ended before the status did (the daemon stopped, or its write deadline passed)"
    );
    Ok(())
}

/// Passes bytes on but the last few, which may be [`DOCUMENT_END`].
#[derive(Default)]
struct HeldBack(Vec<u8>);

impl HeldBack {
    fn pass(&mut self, piece: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        let keep = DOCUMENT_END.len();
        if piece.len() >= keep {
            let (on, last) = piece.split_at(piece.len() - keep);
            out.write_all(&self.0)?;
            out.write_all(on)?;
            self.0.clear();
            self.0.extend_from_slice(last);
        } else {
            self.0.extend_from_slice(piece);
            let on = self.0.len().saturating_sub(keep);
            out.write_all(&self.0[..on])?;
            self.0.drain(..on);
        }
        Ok(())
    }

    /// Whether what was held back is the end of a document.
    fn ended(&self) -> bool {
        self.0 == DOCUMENT_END
    }
}

/// `status --json`: the daemon's answer, marked `"daemon": true` (first,
/// the rest in the answer's order) so a script tells it from the saved
/// state printed when no daemon answers.
#[derive(serde::Serialize)]
struct FromDaemon<'a, T> {
    daemon: bool,
    #[serde(flatten)]
    answer: &'a T,
}

fn from_daemon_json(answer: &impl serde::Serialize) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&FromDaemon {
        daemon: true,
        answer,
    })
}

/// [`from_daemon_json`] written out as it is made, and a newline: the
/// status of many checks is never one string in memory.
fn write_daemon_json(out: &mut impl Write, answer: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(
        &mut *out,
        &FromDaemon {
            daemon: true,
            answer,
        },
    )?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `status`'s exit code: 1 when a check is in PROBLEM (as Nagios' and
/// Monit's summaries count it: retrying and unreachable ones are not), else 0.
fn problem_code<'a>(checks: impl IntoIterator<Item = &'a CheckStatus>) -> i32 {
    i32::from(checks.into_iter().any(|c| c.phase == "problem"))
}

/// Where the daemon's socket is: `--state-dir`; else the first of these
/// where a socket is: the config's `state_dir` if the config runs far
/// enough to name it (a config broken further down still does), the state
/// dir the daemon of this config recorded at start ([`super::record`]: the
/// config stops before naming it, e.g. a syntax error, or names a new one
/// the running daemon does not use), the default dir; with no socket
/// anywhere, the first of them.
pub(super) fn state_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &cli.state_dir {
        return Ok(dir.clone());
    }
    let file = cli.config_file()?;
    let evaluated = crate::config::state_dir_of(&file);
    let (named, default) = match &evaluated {
        Ok((dir, true)) => (Some(dir.clone()), None),
        Ok((dir, false)) => (None, Some(dir.clone())),
        Err(_) => (None, None),
    };
    let candidates: Vec<PathBuf> = [named, super::record::read(&file), default]
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
    let err = crate::config::load(&cli.config_file().ok()?).err()?;
    eprintln!("picomon: {err:#}");
    Some(1)
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

/// No daemon, `status --json`: the saved state, marked `"daemon": false`.
fn saved_state_json(state_dir: &std::path::Path) -> serde_json::Value {
    let file = crate::state::path(state_dir);
    let written = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    let mut v = serde_json::json!({
        "daemon": false,
        "state_file": file,
        "written": written,
        "checks": [],
    });
    match crate::state::load(state_dir) {
        Err(e) if written.is_some() => v["error"] = e.to_string().into(),
        Err(_) => {}
        Ok(saved) => {
            v["checks"] = saved
                .checks
                .iter()
                .map(|(id, c)| {
                    serde_json::json!({
                        "id": id,
                        "phase": format!("{:?}", c.alert.phase).to_lowercase(),
                        "status": c.alert.last_status.map(|s| s.as_str()),
                        "failed_runs": c.alert.failed_runs,
                        "since": c.alert.outage_start.map(|t| t.div_euclid(1_000_000)),
                        "last_run": c.last_run.map(|t| t.div_euclid(1_000_000)),
                        "output": c.last_output.lines().next().unwrap_or(""),
                    })
                })
                .collect();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_found_through_a_config_broken_below_its_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("mon.rhai");
        std::fs::write(&cfg, "config.state_dir = \"/srv/mon\";\nconfig.nope = 1;\n").unwrap();
        let cli = Cli {
            config: Some(cfg.clone()),
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

    /// A daemon on a socket in a temp dir that answers each connection
    /// with the next of `answers` (read its request line first) and
    /// closes; the request lines it read.
    fn daemon(answers: Vec<Vec<u8>>) -> (tempfile::TempDir, std::thread::JoinHandle<Vec<String>>) {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let listener =
            std::os::unix::net::UnixListener::bind(client::socket_path(dir.path())).unwrap();
        let served = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for answer in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut line = String::new();
                std::io::BufReader::new(&stream)
                    .read_line(&mut line)
                    .unwrap();
                asked.push(line.trim_end().to_string());
                (&stream).write_all(&answer).unwrap();
            }
            asked
        });
        (dir, served)
    }

    fn status_json(document: bool) -> Request {
        Request::Status {
            only: Some("web*".into()),
            problems: false,
            document,
        }
    }

    #[test]
    fn status_json_is_the_daemon_s_text_copied_out_as_it_comes() {
        let text = b"{\n  \"daemon\": true,\n  \"checks\": []\n}\n";
        let mut answer = b"{\"document\":{\"problem\":true}}\n".to_vec();
        answer.extend_from_slice(text);
        answer.extend_from_slice(DOCUMENT_END);
        let (dir, served) = daemon(vec![answer]);
        let Answer::Document(head, rest) = call(dir.path(), &status_json(true)).unwrap() else {
            panic!("not a document");
        };
        assert!(head.problem);
        let mut out = Vec::new();
        copy_document(rest, &mut out).unwrap();
        assert_eq!(out, text);
        assert_eq!(
            served.join().unwrap(),
            [r#"{"cmd":"status","only":"web*","document":true}"#]
        );
    }

    #[test]
    fn the_end_line_is_held_back_however_the_text_comes_and_missing_it_is_an_error() {
        let mut whole = b"{\n  \"at\": 7\n}\n".to_vec();
        let text = whole.clone();
        whole.extend_from_slice(DOCUMENT_END);
        for piece in 1..=whole.len() {
            let (mut held, mut out) = (HeldBack::default(), Vec::new());
            for p in whole.chunks(piece) {
                held.pass(p, &mut out).unwrap();
            }
            assert!(held.ended(), "in pieces of {piece}");
            assert_eq!(out, text, "in pieces of {piece}");
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        (&theirs).write_all(&whole[..whole.len() - 1]).unwrap();
        drop(theirs);
        let mut out = Vec::new();
        let e = copy_document(ours, &mut out).unwrap_err();
        assert!(e.to_string().contains("ended before the status did"), "{e}");
    }

    #[test]
    fn a_daemon_from_before_documents_is_asked_again_without() {
        let refused = br#"{"error":"not a request: unknown field `document`, expected one of `only`, `problems` at line 1 column 40; send e.g. {\"cmd\":\"status\"}"}"#;
        let mut refused = refused.to_vec();
        refused.push(b'\n');
        let plain =
            b"{\"status\":{\"checks\":[],\"outbox\":{\"lines\":[]},\"silences\":[],\"at\":7}}\n";
        let (dir, served) = daemon(vec![refused, plain.to_vec()]);
        let Answer::Whole(answer) = call(dir.path(), &status_json(true)).unwrap() else {
            panic!("a document from a daemon without them");
        };
        assert_eq!(answer.status.unwrap().at, 7);
        assert_eq!(
            served.join().unwrap(),
            [
                r#"{"cmd":"status","only":"web*","document":true}"#,
                r#"{"cmd":"status","only":"web*"}"#
            ]
        );
        // Any other refusal is the answer.
        let busy = b"{\"error\":\"busy: too many control clients at once; try again\"}\n";
        let (dir, _) = daemon(vec![busy.to_vec()]);
        let Answer::Whole(answer) = call(dir.path(), &status_json(true)).unwrap() else {
            panic!("a document from a busy daemon");
        };
        assert!(answer.error.unwrap().starts_with("busy"));
    }

    #[test]
    fn the_exit_code_is_1_only_with_a_check_in_problem() {
        let mut c = render::tests::check("a", "retrying", "CRITICAL");
        assert_eq!(problem_code([&c]), 0);
        c.phase = "problem".into();
        assert_eq!(problem_code([&c]), 1);
    }
}
