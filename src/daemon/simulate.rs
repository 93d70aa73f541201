//! `picomon simulate TIMELINE`: this config's loop, run on a simulated
//! clock over a scripted story, printing every mail it would send.
//!
//! ```text
//!  TIMELINE --parse--> events (time, what) ----------------------.
//!  config --> Daemon (on a ManualClock) + ManualExecutor + MailNotifier::capturing
//!             (+ Channels::capturing: every channel's post, formatted)
//!             each step: the clock to the next tick or event; events applied
//!             (a check's scripted status, ack/silence/unsilence as control
//!             requests); tick; every run started ends at once with its
//!             check's scripted outcome --> mails composed, captured, printed
//! ```
//!
//! The same loop, state machine, retries, dependencies, flapping, quiet
//! windows, reminders, escalation, digests and reports as the daemon's: only
//! the clock, the executor and the outbox are stand-ins. Nothing runs, no
//! socket opens, no mail leaves; the state lives in a scratch folder
//! removed at the end, so the real state dir is never touched. Checks the
//! timeline does not name stay OK. Time starts now (wall clock), so `when`
//! windows and maintenance apply as they would today.
//!
//! Timeline, one event per line (`#` starts a comment):
//! `TIME CHECK STATUS [OUTPUT]`, `TIME ack CHECK [MESSAGE]`,
//! `TIME silence PATTERN FOR [MESSAGE]`, `TIME unsilence ID`; TIME and FOR
//! like `0s`, `20s`, `2m`, `1h30m`; a CHECK with spaces in double quotes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::clock::{hms, Clock, ManualClock, SharedClock};
use crate::config::Config;
use crate::control::protocol::Request;
use crate::control::Call;
use crate::model::{Outcome, Status};
use crate::passive::Outputs;

use super::event_loop::Daemon;
use super::executor::ManualExecutor;

const SEC: u64 = 1_000_000;

/// What happens at a time of the story.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// From now on the check's runs end with this.
    Status {
        check: String,
        status: Status,
        output: String,
    },
    Ack {
        check: String,
        message: String,
    },
    Silence {
        pattern: String,
        for_secs: u64,
        message: String,
    },
    Unsilence {
        id: String,
    },
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds from the start.
    pub at: u64,
    /// Its line in the file, for messages.
    pub line: usize,
    pub action: Action,
}

/// The next word of `rest` (a `"quoted string"` whole), the column it
/// starts at (1-based, in `line`) and what follows it.
fn word<'a>(line: &'a str, rest: &'a str) -> Option<(String, usize, &'a str)> {
    let rest = rest.trim_start();
    if rest.is_empty() {
        return None;
    }
    let col = line.len() - rest.len() + 1;
    if let Some(q) = rest.strip_prefix('"') {
        let end = q.find('"')?;
        return Some((q[..end].to_string(), col, &q[end + 1..]));
    }
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some((rest[..end].to_string(), col, &rest[end..]))
}

fn status_of(word: &str) -> Option<Status> {
    Status::from_name(&word.to_ascii_uppercase())
}

/// Parses a timeline; an error names `file:LINE:COL`, what is wrong and
/// how to write it. Events come out in time order (lines of the same time
/// in file order).
pub fn parse(file: &str, text: &str) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.split_once('#').map_or(raw, |(l, _)| l);
        let at = |col: usize| format!("{file}:{line_no}:{col}");
        let Some((time, col, rest)) = word(line, line) else {
            continue;
        };
        // The start itself: durations elsewhere are never zero.
        let zero = time.trim_end_matches(['s', 'm', 'h', 'd']);
        let secs = if !zero.is_empty() && zero.bytes().all(|b| b == b'0') {
            Ok(0)
        } else {
            crate::duration::parse("the time", &time)
        };
        let secs = secs.map_err(|e| {
            format!(
                "{}: {e}; a line starts with the time from the start, like 0s, 20s, 2m or 1h30m",
                at(col)
            )
        })?;
        let usage = "write TIME CHECK STATUS [OUTPUT], TIME ack CHECK [MESSAGE], \
                     TIME silence PATTERN FOR [MESSAGE] or TIME unsilence ID";
        let Some((what, col, rest)) = word(line, rest) else {
            return Err(format!(
                "{}: nothing after the time; {usage}",
                at(line.len() + 1)
            ));
        };
        let tail = |rest: &str| rest.trim().to_string();
        let action = match what.as_str() {
            "ack" => {
                let (check, _, rest) = word(line, rest).ok_or_else(|| {
                    format!(
                        "{}: ack needs a check: TIME ack CHECK [MESSAGE]",
                        at(line.len() + 1)
                    )
                })?;
                Action::Ack {
                    check,
                    message: tail(rest),
                }
            }
            "silence" => {
                let usage =
                    "TIME silence PATTERN FOR [MESSAGE], e.g. 5m silence \"web*\" 1h deploy";
                let (pattern, _, rest) = word(line, rest).ok_or_else(|| {
                    format!("{}: silence needs a pattern: {usage}", at(line.len() + 1))
                })?;
                let (dur, col, rest) = word(line, rest).ok_or_else(|| {
                    format!("{}: silence needs how long: {usage}", at(line.len() + 1))
                })?;
                let for_secs = crate::duration::parse("FOR", &dur)
                    .map_err(|e| format!("{}: {e}; {usage}", at(col)))?;
                Action::Silence {
                    pattern,
                    for_secs,
                    message: tail(rest),
                }
            }
            "unsilence" => {
                let (id, _, _) = word(line, rest).ok_or_else(|| {
                    format!(
                        "{}: unsilence needs the silence's id (1 for the first silence): TIME unsilence ID",
                        at(line.len() + 1)
                    )
                })?;
                Action::Unsilence { id }
            }
            _ => {
                let (st, scol, rest) = word(line, rest).ok_or_else(|| {
                    format!(
                        "{}: {what:?} needs a status: TIME CHECK OK|WARNING|CRITICAL|UNKNOWN [OUTPUT] ({usage})",
                        at(line.len() + 1)
                    )
                })?;
                let status = status_of(&st).ok_or_else(|| {
                    format!(
                        "{}: {st:?} is not a status; write OK, WARNING, CRITICAL or UNKNOWN (a check name with spaces goes in double quotes)",
                        at(scol)
                    )
                })?;
                let _ = col;
                let output = tail(rest);
                Action::Status {
                    output: if output.is_empty() {
                        format!("{} - simulated", status.as_str())
                    } else {
                        output
                    },
                    check: what,
                    status,
                }
            }
        };
        out.push(Event {
            at: secs,
            line: line_no,
            action,
        });
    }
    crate::sort::by_key(&mut out, |e| e.at);
    Ok(out)
}

/// One notification the loop would send.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sent {
    /// Seconds from the start.
    pub at: f64,
    /// `H:MM:SS` from the start.
    pub time: String,
    pub channel: String,
    /// What the mail is: `problem` (a thread's first), `update`,
    /// `recovery`, `reminder`, `escalation`, `ack`, `digest`, `report`, ...
    pub kind: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub message_id: String,
    /// The mail it replies to (its thread); `null` for a thread's first.
    pub in_reply_to: Option<String>,
    /// A channel's post as its receiver would get it (JSON, text); mails
    /// have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// The kind of mail a picomon Message-ID names (see the composer).
fn kind_of(message_id: &str) -> String {
    let inner = message_id
        .trim_matches(|c| c == '<' || c == '>')
        .strip_prefix("picomon.")
        .and_then(|s| s.split('@').next())
        .unwrap_or("");
    let mut parts: Vec<&str> = inner.split('.').collect();
    // A thread token (`emails.ack_secret_file`) ends a thread mail's id.
    if matches!(parts.len(), 3 | 5) && parts.last().is_some_and(|p| p.parse::<i64>().is_err()) {
        parts.pop();
    }
    match parts.as_slice() {
        [k, ..] if ["digest", "report", "availability", "note"].contains(k) => k.to_string(),
        [_, _] => "problem".into(),
        [_, _, kind, _] => kind.replace('_', " "),
        _ => "mail".into(),
    }
}

fn addresses(header: &str) -> Vec<String> {
    header
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// A scratch state dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // In memory where there is such a folder: the loop syncs its state
        // and log as it goes, and a simulated day is many thousand syncs.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("picomon-simulate-{}-{nanos}", std::process::id()));
        crate::fs::create_private_dir(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the story of `events` on `cfg` until `until_secs` (default: an
/// hour after the last event) and returns what would be sent, in order.
pub fn simulate(
    mut cfg: Config,
    file: &str,
    events: &[Event],
    until_secs: Option<u64>,
    start_wall: crate::clock::UnixMicros,
) -> anyhow::Result<Vec<Sent>> {
    let scratch = Scratch::new()?;
    cfg.state_dir = scratch.0.clone();
    cfg.listen = None;
    cfg.outputs.clear();
    cfg.heartbeat.clear();
    let clock = ManualClock::new(start_wall);
    let exec = ManualExecutor::default();
    let (mail, captured) = crate::notify::mail::MailNotifier::capturing(&cfg, &scratch.0)?;
    let channels = crate::notify::channel::Channels::capturing(&cfg)?;
    let (notifier, posts): (Box<dyn crate::notify::Notifier>, _) = match channels {
        None => (Box::new(mail), None),
        Some((channels, posts)) => (
            Box::new(crate::notify::fanout::FanOut(vec![
                Box::new(mail),
                Box::new(channels),
            ])),
            Some(posts),
        ),
    };
    let outputs = Outputs::start(&[], &scratch.0)?;
    // The daemon's own clock type (one copy of the loop): this one is
    // moved by hand, through `clock`.
    let shared: SharedClock = Arc::new(clock.clone());
    let mut d = Daemon::new(cfg, shared, Box::new(exec.clone()), notifier, outputs);
    // Every check the story names must be one of the config's.
    for e in events {
        if let Action::Status { check, .. } | Action::Ack { check, .. } = &e.action {
            d.find(check)
                .map_err(|err| anyhow::anyhow!("{file}:{}: {err}", e.line))?;
        }
    }
    let last = events.last().map_or(0, |e| e.at);
    let end = until_secs.unwrap_or(last + 3600).saturating_mul(SEC);
    let mut scripted: std::collections::HashMap<String, (Status, String)> =
        std::collections::HashMap::new();
    let mut next = 0;
    let mut sent = Vec::new();
    loop {
        let event_at = events.get(next).map(|e| e.at.saturating_mul(SEC));
        let t = event_at.map_or(d.next_tick_at(), |e| e.min(d.next_tick_at()));
        if t > end {
            break;
        }
        if t > clock.mono() {
            clock.advance(t - clock.mono());
        }
        while let Some(e) = events.get(next).filter(|e| e.at.saturating_mul(SEC) == t) {
            next += 1;
            apply(&mut d, &mut scripted, file, e)?;
        }
        d.tick(false);
        for run in exec.take() {
            let (status, output) = scripted
                .get(&*run.spec.id)
                .cloned()
                .unwrap_or_else(|| (Status::Ok, "OK - simulated".into()));
            d.on_result(&run.spec.id, Outcome::new(status, output));
        }
        let mails = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
        for m in mails {
            let reply = m.header("In-Reply-To");
            let message_id = m.header("Message-ID");
            sent.push(Sent {
                kind: kind_of(&message_id),
                at: t as f64 / 1e6,
                time: hms(t as i64),
                channel: "mail".into(),
                to: addresses(&m.header("To")),
                cc: addresses(&m.header("Cc")),
                subject: m.subject(),
                message_id,
                in_reply_to: (!reply.is_empty()).then_some(reply),
                body: None,
            });
        }
        let channel_posts = posts
            .as_ref()
            .map(|p| std::mem::take(&mut *p.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default();
        for (receiver, p) in channel_posts {
            sent.push(Sent {
                at: t as f64 / 1e6,
                time: hms(t as i64),
                channel: receiver,
                kind: p.about.split(':').next().unwrap_or("").to_string(),
                to: Vec::new(),
                cc: Vec::new(),
                subject: p.about.clone(),
                message_id: p.id.clone(),
                in_reply_to: None,
                body: Some(String::from_utf8_lossy(&p.body).into_owned()),
            });
        }
    }
    d.shutdown();
    Ok(sent)
}

/// One event: a check's scripted outcome, or a control request as the CLI
/// would send it (its refusal is an error naming the line).
fn apply<C: Clock>(
    d: &mut Daemon<C>,
    scripted: &mut std::collections::HashMap<String, (Status, String)>,
    file: &str,
    e: &Event,
) -> anyhow::Result<()> {
    let request = match &e.action {
        Action::Status {
            check,
            status,
            output,
        } => {
            let i = d.find(check).map_err(|err| anyhow::anyhow!("{err}"))?;
            scripted.insert(d.check_id(i).to_string(), (*status, output.clone()));
            return Ok(());
        }
        Action::Ack { check, message } => Request::Ack {
            check: check.clone(),
            comment: message.clone(),
            for_secs: None,
            sticky: false,
            mail_from: None,
        },
        Action::Silence {
            pattern,
            for_secs,
            message,
        } => Request::Silence {
            pattern: pattern.clone(),
            for_secs: *for_secs,
            comment: message.clone(),
            mail_from: None,
        },
        Action::Unsilence { id } => Request::Unsilence { id: id.clone() },
    };
    let (reply, _answers) = crossbeam_channel::unbounded();
    d.control(Call {
        request,
        user: "simulate".into(),
        reply,
    });
    for (_, answer) in d.take_answers() {
        if let Some(err) = answer.error {
            anyhow::bail!("{file}:{}: {err}", e.line);
        }
    }
    Ok(())
}

/// The table for a person.
pub fn render(sent: &[Sent]) -> String {
    if sent.is_empty() {
        return "no notification would be sent\n".into();
    }
    let mut out = String::new();
    for s in sent {
        let head = format!("{:>9}  {} {:<12} ", s.time, s.channel, s.kind);
        out.push_str(&format!("{head}{}\n", s.subject));
        let pad = " ".repeat(head.len());
        if !s.to.is_empty() {
            out.push_str(&format!("{pad}to: {}\n", s.to.join(", ")));
        }
        if !s.cc.is_empty() {
            out.push_str(&format!("{pad}cc: {}\n", s.cc.join(", ")));
        }
        if let Some(body) = &s.body {
            for line in body.lines() {
                out.push_str(&format!("{pad}{line}\n"));
            }
            continue;
        }
        match &s.in_reply_to {
            Some(r) => out.push_str(&format!("{pad}in-reply-to: {r}\n")),
            None => out.push_str(&format!("{pad}thread: {}\n", s.message_id)),
        }
    }
    out
}

/// `picomon simulate TIMELINE [--json] [--until D]`.
pub fn run(cfg: Config, timeline: &Path, json: bool, until: Option<u64>) -> anyhow::Result<i32> {
    let file = timeline.display().to_string();
    let text = std::fs::read_to_string(timeline)
        .map_err(|e| anyhow::anyhow!("cannot read the timeline {file}: {e}"))?;
    let events = parse(&file, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if cfg.emails.to.is_empty() {
        eprintln!("picomon: config.emails.to is empty: the loop would send no mail");
    }
    // The loop logs every transition; the story is on stdout.
    log::set_max_level(log::LevelFilter::Error);
    let sent = simulate(cfg, &file, &events, until, crate::clock::now_unix_micros())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&sent)?);
    } else {
        print!("{}", render(&sent));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORY: &str = "\
# time  what
0s      router CRITICAL PING CRITICAL - 100% packet loss
20s     web1 CRITICAL connection timed out
2m      ack router on it
10m     router OK
1h      \"nightly backup\" warning
1h30m   silence \"web*\" 2h deploy   # a comment
2h      unsilence 1
";

    #[test]
    fn a_timeline_reads_into_events_in_time_order() {
        let events = parse("t.txt", STORY).unwrap();
        let got: Vec<_> = events.iter().map(|e| (e.at, e.line)).collect();
        assert_eq!(
            got,
            [
                (0, 2),
                (20, 3),
                (120, 4),
                (600, 5),
                (3600, 6),
                (5400, 7),
                (7200, 8)
            ]
        );
        assert_eq!(
            events[0].action,
            Action::Status {
                check: "router".into(),
                status: Status::Critical,
                output: "PING CRITICAL - 100% packet loss".into()
            }
        );
        assert_eq!(
            events[2].action,
            Action::Ack {
                check: "router".into(),
                message: "on it".into()
            }
        );
        assert_eq!(
            events[4].action,
            Action::Status {
                check: "nightly backup".into(),
                status: Status::Warning,
                output: "WARNING - simulated".into()
            }
        );
        assert_eq!(
            events[5].action,
            Action::Silence {
                pattern: "web*".into(),
                for_secs: 7200,
                message: "deploy".into()
            }
        );
        assert_eq!(events[6].action, Action::Unsilence { id: "1".into() });
    }

    #[test]
    fn a_mail_kind_is_read_from_its_message_id_with_or_without_a_token() {
        for (id, kind) in [
            ("<picomon.a0dba500590b7544.1800@mon1>", "problem"),
            ("<picomon.a0dba500590b7544.1800.kAbC12@mon1>", "problem"),
            (
                "<picomon.a0dba500590b7544.1800.recovery.1900@mon1>",
                "recovery",
            ),
            (
                "<picomon.a0dba500590b7544.1800.update.1900.kAbC12@mon1>",
                "update",
            ),
            ("<picomon.digest.1800@mon1>", "digest"),
            ("<picomon.availability.1800@mon1>", "availability"),
        ] {
            assert_eq!(kind_of(id), kind, "{id}");
        }
    }

    #[test]
    fn a_bad_line_names_its_place_and_the_fix() {
        for (text, want) in [
            (
                "0s router CRIT down",
                "t.txt:1:11: \"CRIT\" is not a status; write OK",
            ),
            ("\n\nsoon router OK", "t.txt:3:1: "),
            ("5m", "t.txt:1:3: nothing after the time"),
            ("5m silence web*", "t.txt:1:16: silence needs how long"),
            ("5m silence web* forever", "t.txt:1:17: "),
            (
                "5m unsilence",
                "t.txt:1:13: unsilence needs the silence's id",
            ),
        ] {
            let err = parse("t.txt", text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
        let err = parse("t.txt", "soon router OK").unwrap_err();
        assert!(err.contains("like 0s, 20s, 2m or 1h30m"), "{err}");
    }

    const CONFIG: &str = r#"
config.base_tick = 10;
config.emails.to = ["ops@example.org"];
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.escalate = [#{ after: "5m", to: ["boss@example.org"] }];
add(shell("true"), #{ name: "router", target_name: "gw", retry: 0 });
add(shell("true"), #{ name: "web1", target_name: "lan", retry: 1, depends_on: ["router"] });
add(shell("true"), #{ name: "db", target_name: "lan", retry: 0 });
"#;

    fn run_story(story: &str, until: Option<u64>) -> Vec<Sent> {
        let cfg = crate::config::load_str(Path::new("sim.rhai"), CONFIG).unwrap();
        let events = parse("story", story).unwrap();
        simulate(cfg, "story", &events, until, 1_800_000_000_000_000).unwrap()
    }

    #[test]
    fn a_channel_post_is_shown_as_its_receiver_would_get_it() {
        let script = format!(
            "{CONFIG}config.notify = [webhook(\"http://127.0.0.1:9/hook\", #{{ name: \"chat\", format: \"slack\" }})];\n"
        );
        let cfg = crate::config::load_str(Path::new("sim.rhai"), &script).unwrap();
        let events = parse("story", "0s db CRITICAL disk full\n4m db OK\n").unwrap();
        let sent = simulate(cfg, "story", &events, Some(600), 1_800_000_000_000_000).unwrap();
        let chat: Vec<_> = sent.iter().filter(|s| s.channel == "chat").collect();
        let kinds: Vec<_> = chat.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["problem", "recovery"], "{sent:#?}");
        let body: serde_json::Value =
            serde_json::from_str(chat[0].body.as_deref().unwrap()).expect("slack JSON");
        assert!(body.to_string().contains("disk full"), "{body}");
        // The mails beside it, as without the channel.
        assert_eq!(sent.iter().filter(|s| s.channel == "mail").count(), 2);
        assert!(render(&sent).contains("  0:00:00  chat problem"));
    }

    #[test]
    fn the_story_mails_a_threaded_problem_holds_the_dependent_and_escalates() {
        let sent = run_story(
            "0s router CRITICAL PING CRITICAL - 100% packet loss\n\
             20s web1 CRITICAL connection timed out\n\
             10m router OK\n\
             10m web1 OK\n\
             11m db CRITICAL disk full\n\
             12m ack db on it\n",
            Some(20 * 60),
        );
        let lines: Vec<_> = sent
            .iter()
            .map(|s| (s.time.as_str(), s.subject.as_str(), s.cc.clone()))
            .collect();
        let boss = vec!["boss@example.org".to_string()];
        assert_eq!(
            lines,
            [
                ("0:00:00", "[picomon] CRITICAL: router on gw", vec![]),
                // web1's Problem is held: the router's thread names it.
                ("0:00:30", "Re: [picomon] CRITICAL: router on gw", vec![]),
                (
                    "0:05:00",
                    "Re: [picomon] CRITICAL: router on gw",
                    boss.clone()
                ),
                ("0:10:00", "Re: [picomon] CRITICAL: router on gw", boss),
                ("0:11:00", "[picomon] CRITICAL: db on lan", vec![]),
                ("0:12:00", "Re: [picomon] CRITICAL: db on lan", vec![]),
            ],
            "{sent:#?}"
        );
        // One thread per outage: every follow-up replies to its first.
        for i in 1..=3 {
            assert_eq!(sent[i].in_reply_to.as_ref(), Some(&sent[0].message_id));
        }
        assert_eq!(sent[5].in_reply_to.as_ref(), Some(&sent[4].message_id));
        assert!(sent[0].in_reply_to.is_none());
        assert!(sent.iter().all(|s| s.to == ["ops@example.org"]));
        let kinds: Vec<_> = sent.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "problem",
                "update",
                "escalation",
                "recovery",
                "problem",
                "ack"
            ]
        );
        let text = render(&sent);
        assert!(text.contains("cc: boss@example.org"), "{text}");
        // A check the config does not have is named with its line.
        let cfg = crate::config::load_str(Path::new("sim.rhai"), CONFIG).unwrap();
        let events = parse("story", "\n0s nosuch CRITICAL").unwrap();
        let err = simulate(cfg, "story", &events, None, 1_800_000_000_000_000).unwrap_err();
        assert!(err.to_string().starts_with("story:2: "), "{err}");
    }
}
