//! `picomon mail-in`: acting on a reply to an alert mail. An MTA alias
//! pipes one message to it on stdin; it finds the check's thread from
//! `In-Reply-To`/`References`, checks who wrote, and hands the command on
//! the reply's first line (`ack`, `ack sticky`, `silence 2h`, `unack`) to
//! the daemon through its control socket, as `picomon ack` does.
//!
//! ```text
//!  MTA --stdin--> mail-in --parse--> thread? sender? token? command?
//!                    |  all yes: control.sock (ack / silence / unack)
//!                    |           -> the daemon's ack mail in the thread
//!                    |  a no:    one short answer to the sender (at most
//!                    |           one per sender per ANSWER_EVERY), nothing
//!                    |           changes
//!                    '  automated mail (Auto-Submitted, lists, bounces):
//!                       nothing at all
//! ```
//!
//! Exit codes for the MTA: 0 when the message was handled (acted on,
//! answered or ignored), [`EX_TEMPFAIL`] when the daemon or the config
//! cannot be reached, so the MTA keeps the message and tries again.

pub mod parse;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::control::client::{self, ClientError};
use crate::control::protocol::{Request, Response};
use crate::model::CheckSpec;
use crate::notify::mail::compose::{self, parse_thread_id, stable_hash, Composer, ThreadRef};
use crate::notify::mail::token::ThreadKey;
use parse::{Command, Message, NoCommand};

/// The largest message taken: a reply with a command needs no more. A
/// larger one is refused (and answered, when its headers can be read).
pub const MAX_MESSAGE: usize = 1 << 20;

/// sysexits.h EX_TEMPFAIL: the MTA keeps the message and retries.
pub const EX_TEMPFAIL: i32 = 75;

/// At most one answer per sender this often, so a mail loop or a flood
/// of forged replies gets at most one mail an hour per address.
pub const ANSWER_EVERY: Duration = Duration::from_secs(3600);

/// The file (in `state_dir`) that remembers when each sender was last
/// answered.
pub const ANSWERS_FILE: &str = "mail-in-answers";

/// Senders remembered at most; the oldest are forgotten first.
const ANSWERS_KEPT: usize = 10_000;

/// How long the daemon may take to answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes read past [`MAX_MESSAGE`] before giving up on draining stdin
/// (the MTA's own size limit is normally far below).
const DRAIN_MAX: u64 = 256 << 20;

/// The addresses that may act on `check` by replying, besides
/// `config.emails.ack_from`: the recipients of its thread (its contacts'
/// `to` and `cc`, `config.emails.to`, and whom its `escalate` steps add:
/// a contact's addresses for a contact's name).
pub fn contact_addresses(cfg: &Config, check: &CheckSpec) -> Vec<String> {
    let escalated = cfg
        .noise
        .escalate(check.noise.as_deref())
        .iter()
        .flat_map(|e| e.to.iter())
        .flat_map(|to| match cfg.contacts.get(to) {
            Some(c) => c.addresses().cloned().collect(),
            None => vec![to.clone()],
        });
    crate::notify::contacts::addresses_of(&cfg.contacts, &cfg.emails.to, &check.id)
        .into_iter()
        .chain(escalated)
        .flat_map(|a| parse::addresses(&a))
        .collect()
}

/// Whether `addr` (lowercase) is a contact or matches `ack_from` (an
/// address, or `@domain`).
pub fn allowed(addr: &str, contacts: &[String], ack_from: &[String]) -> bool {
    contacts.iter().any(|c| c == addr)
        || ack_from.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            if a.starts_with('@') {
                addr.ends_with(&a)
            } else {
                a == addr
            }
        })
}

/// Why a message is not answered at all: mail from a machine.
pub fn automated(m: &Message, envelope: Option<&str>) -> Option<String> {
    if let Some(a) = m.header("Auto-Submitted") {
        if !a.trim().eq_ignore_ascii_case("no") {
            return Some(format!("Auto-Submitted: {a}"));
        }
    }
    if let Some(p) = m.header("Precedence") {
        if ["bulk", "list", "junk"].contains(&p.trim().to_ascii_lowercase().as_str()) {
            return Some(format!("Precedence: {p}"));
        }
    }
    for list in ["List-Id", "List-Unsubscribe", "List-Post", "List-Help"] {
        if m.header(list).is_some() {
            return Some(format!("a mailing list's mail ({list})"));
        }
    }
    if envelope == Some("") {
        return Some("a bounce (empty envelope sender)".into());
    }
    None
}

/// Whether an address looks like a machine's, which is never answered.
pub fn automated_address(addr: &str) -> bool {
    let local = addr.rsplit_once('@').map_or(addr, |(l, _)| l);
    let local = local.to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon" | "postmaster" | "root" | "nobody" | "listserv" | "majordomo"
    ) || [
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
    ]
    .iter()
    .any(|n| local.contains(n))
        || local.starts_with("owner-")
        || local.starts_with("bounce")
        || local.ends_with("-request")
        || local.ends_with("-bounces")
        || local.ends_with("-owner")
}

/// What became of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The daemon did it; `confirm` is said back to the sender when set.
    Done {
        line: String,
        confirm: Option<String>,
    },
    /// Nothing changed; the sender is told why.
    Refused(String),
    /// Nothing changed, nobody is told (mail from a machine).
    Ignored(String),
    /// Try again later (exit [`EX_TEMPFAIL`]).
    Later(String),
}

/// Reads stdin: at most [`MAX_MESSAGE`] bytes are kept; the rest is read
/// and dropped so the MTA can finish writing. `true` when cut.
fn read_input(mut input: impl Read) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    (&mut input)
        .take(MAX_MESSAGE as u64 + 1)
        .read_to_end(&mut buf)?;
    if buf.len() <= MAX_MESSAGE {
        return Ok((buf, false));
    }
    buf.truncate(MAX_MESSAGE);
    let _ = std::io::copy(&mut input.take(DRAIN_MAX), &mut std::io::sink());
    Ok((buf, true))
}

/// The envelope sender as the MTA gives it: `$SENDER` (Postfix's local
/// delivery and Exim's pipe set it), else the `Return-Path` header the
/// MTA added. `Some("")` for a bounce, `None` when not given.
fn envelope_sender(m: &Message) -> Option<String> {
    let raw = std::env::var("SENDER")
        .ok()
        .or_else(|| m.header("Return-Path").map(str::to_string))?;
    let raw = raw.trim();
    if raw.is_empty() || raw == "<>" {
        return Some(String::new());
    }
    parse::addresses(raw).into_iter().next()
}

/// `picomon mail-in`: the whole run, returning the exit code. `cfg` is
/// the config as the daemon would run it (or why it could not be read).
pub fn main(cfg: anyhow::Result<Config>) -> i32 {
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("picomon mail-in: {e:#}; the MTA will retry the message");
            return EX_TEMPFAIL;
        }
    };
    let (raw, cut) = match read_input(std::io::stdin().lock()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("picomon mail-in: cannot read the message: {e}");
            return EX_TEMPFAIL;
        }
    };
    handle(&cfg, &raw, cut, &mut |req| {
        client::call(&cfg.state_dir, req, DAEMON_TIMEOUT)
    })
}

/// Handles one message (cut at [`MAX_MESSAGE`] when `cut`); `daemon`
/// answers control requests. Returns the exit code.
pub fn handle(
    cfg: &Config,
    raw: &[u8],
    cut: bool,
    daemon: &mut dyn FnMut(&Request) -> Result<Response, ClientError>,
) -> i32 {
    // A cut message is read for its headers only.
    let parsed = if cut {
        parse::headers(split_headers(raw)).map(|headers| Message {
            headers,
            text: String::new(),
        })
    } else {
        parse::message(raw)
    };
    let m = match parsed {
        Ok(m) => m,
        Err(e) => {
            log::warn!("mail-in: malformed message ignored: {e}");
            return 0;
        }
    };
    let envelope = envelope_sender(&m);
    let outcome = if let Some(why) = automated(&m, envelope.as_deref()) {
        Outcome::Ignored(why)
    } else if cut {
        Outcome::Refused(format!(
            "your mail is larger than {} KiB; reply with the command alone, without attachments",
            MAX_MESSAGE / 1024
        ))
    } else {
        decide(cfg, &m, envelope.as_deref(), daemon)
    };
    let from = parse::addresses(m.header("From").unwrap_or(""));
    let answer_to = envelope
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| from.first().cloned());
    match outcome {
        Outcome::Later(why) => {
            eprintln!("picomon mail-in: {why}; the MTA will retry the message");
            EX_TEMPFAIL
        }
        Outcome::Ignored(why) => {
            log::info!("mail-in: ignored, not answered: {why}");
            0
        }
        Outcome::Done { line, confirm } => {
            log::info!("mail-in: {line}");
            if let (Some(text), Some(to)) = (confirm, answer_to) {
                // A contact's own command: confirmed every time.
                answer(cfg, &m, &to, &format!("{text}\n"), false);
            }
            0
        }
        Outcome::Refused(why) => {
            log::info!("mail-in: nothing done: {why}");
            match answer_to {
                Some(to) => answer(cfg, &m, &to, &refusal_text(&why), true),
                None => log::info!("mail-in: no sender to answer"),
            }
            0
        }
    }
}

/// The header section of a (cut) message.
fn split_headers(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// The answer to a reply picomon did not act on.
fn refusal_text(why: &str) -> String {
    format!(
        "picomon on {} did not act on your mail: {why}.\n\n\
         Reply to a picomon alert with one of these on the first line, above the quoted text:\n  \
         ack [message]\n  ack sticky [message]\n  silence 2h [message]\n  unack\n",
        compose::hostname()
    )
}

/// The check and thread a reply is about, and the Message-ID it replied
/// to (where the token is looked for).
struct Found<'a> {
    check: &'a CheckSpec,
    thread: ThreadRef,
    in_reply_to: bool,
}

/// The picomon thread a reply names: the first of its `In-Reply-To` ids,
/// then of its `References` (newest first), that is a thread mail of this
/// machine's picomon naming a check of `cfg`.
fn find_thread<'a>(cfg: &'a Config, m: &Message) -> Result<Found<'a>, String> {
    let host = compose::hostname();
    let in_reply_to = m
        .all("In-Reply-To")
        .flat_map(parse::message_ids)
        .map(|id| (id, true));
    let mut references: Vec<String> = m.all("References").flat_map(parse::message_ids).collect();
    references.reverse();
    let ids = in_reply_to.chain(references.into_iter().map(|id| (id, false)));
    let mut other_host = None;
    for (id, in_reply_to) in ids {
        let Some(thread) = parse_thread_id(&id) else {
            continue;
        };
        if !thread.host.eq_ignore_ascii_case(&host) {
            other_host = Some(thread.host);
            continue;
        }
        let checks: Vec<&CheckSpec> = cfg
            .checks
            .iter()
            .filter(|c| stable_hash(&c.id) == thread.check_hash)
            .collect();
        return match checks.as_slice() {
            [check] => Ok(Found {
                check,
                thread,
                in_reply_to,
            }),
            [] => Err("the check of that alert is no longer in picomon's config".into()),
            _ => Err("that alert's thread names more than one check; use `picomon ack`".into()),
        };
    }
    Err(match other_host {
        Some(h) => format!("that alert was sent by picomon on {h}, not on {host}"),
        None => "it is not a reply to a picomon alert about one check \
                 (a digest or report names several; reply to the check's own mail)"
            .into(),
    })
}

/// What to do with a message from a person: every check in order; the
/// first that fails is the answer.
fn decide(
    cfg: &Config,
    m: &Message,
    envelope: Option<&str>,
    daemon: &mut dyn FnMut(&Request) -> Result<Response, ClientError>,
) -> Outcome {
    let from = parse::addresses(m.header("From").unwrap_or(""));
    let [from] = from.as_slice() else {
        return Outcome::Refused("its From names no single address".into());
    };
    let found = match find_thread(cfg, m) {
        Ok(f) => f,
        Err(why) => return Outcome::Refused(why),
    };
    let contacts = contact_addresses(cfg, found.check);
    let ack_from = &cfg.emails.ack_from;
    let stranger = [Some(from.as_str()), envelope]
        .into_iter()
        .flatten()
        .find(|a| !allowed(a, &contacts, ack_from));
    if let Some(who) = stranger {
        return Outcome::Refused(format!(
            "{who} may not act on picomon's alerts by mail (not a contact of the check, \
             nor in config.emails.ack_from)"
        ));
    }
    if !cfg.emails.ack_secret_file.is_empty() {
        let key = match ThreadKey::read(Path::new(&cfg.emails.ack_secret_file)) {
            Ok(k) => k,
            Err(e) => return Outcome::Later(e),
        };
        let good = found.in_reply_to
            && found
                .thread
                .token
                .as_deref()
                .is_some_and(|t| key.verify(&found.check.id, found.thread.start, t));
        if !good {
            return Outcome::Refused(
                "its In-Reply-To does not carry the token of the alert's thread \
                 (reply to the alert mail itself)"
                    .into(),
            );
        }
    }
    let command = match parse::command(&m.text) {
        Ok(c) => c,
        Err(NoCommand::Missing(line)) if line.is_empty() => {
            return Outcome::Refused("its first line, above the quoted text, is empty".into())
        }
        Err(NoCommand::Missing(line)) => {
            return Outcome::Refused(format!("its first line {line:?} is not a command"))
        }
        Err(NoCommand::Bad(why)) => return Outcome::Refused(why),
    };
    let id = found.check.id.to_string();
    let title = found.check.title();
    if matches!(command, Command::Ack { .. } | Command::Unack) {
        // An ack is for the outage the thread is about, not a later one.
        let detail = match daemon(&Request::Check { check: id.clone() }) {
            Ok(r) => r,
            Err(e) => return Outcome::Later(e.to_string()),
        };
        if let Some(err) = detail.error {
            return Outcome::Refused(err);
        }
        let current = detail
            .check
            .and_then(|d| d.thread)
            .and_then(|t| parse_thread_id(&t))
            .map(|t| t.start);
        if current != Some(found.thread.start) {
            return Outcome::Refused(format!(
                "the outage of {title} that this thread is about is over{}",
                if current.is_some() {
                    " (a newer one has its own thread)"
                } else {
                    ""
                }
            ));
        }
    }
    if matches!(command, Command::Silence { .. }) && id.contains(['*', '?']) {
        // The identity is the silence's pattern: a glob character in it
        // could silence other checks too.
        return Outcome::Refused(format!(
            "the identity of {title} has `*` or `?`, which a silence would read as a pattern; \
             silence it with `picomon silence` on the monitoring host"
        ));
    }
    let mail_from = Some(from.clone());
    let (request, confirm) = match command {
        Command::Ack { sticky, message } => (
            Request::Ack {
                check: id,
                comment: message,
                for_secs: None,
                sticky,
                mail_from,
            },
            false,
        ),
        Command::Unack => (
            Request::Unack {
                check: id,
                mail_from,
            },
            true,
        ),
        Command::Silence { secs, message } => (
            Request::Silence {
                pattern: id,
                for_secs: secs,
                comment: message,
                mail_from,
            },
            true,
        ),
    };
    match daemon(&request) {
        Err(e) => Outcome::Later(e.to_string()),
        Ok(Response {
            error: Some(err), ..
        }) => Outcome::Refused(err),
        Ok(r) => {
            let line = format!(
                "{} ({} by mail)",
                r.message.unwrap_or_else(|| request.name().to_string()),
                from
            );
            Outcome::Done {
                confirm: confirm.then(|| line.clone()),
                line,
            }
        }
    }
}

/// Sends `body` to `to` in reply to `m`, unless `to` looks automated, is
/// picomon's own address, or (when `limited`) was answered within
/// [`ANSWER_EVERY`].
fn answer(cfg: &Config, m: &Message, to: &str, body: &str, limited: bool) {
    let own: Vec<String> = [&cfg.emails.addr_from, &cfg.emails.reply_to]
        .iter()
        .flat_map(|a| parse::addresses(a))
        .collect();
    if automated_address(to) || own.iter().any(|a| a == to) {
        log::info!("mail-in: {to} looks automated: not answered");
        return;
    }
    let now = crate::clock::now_unix_micros();
    let due = if limited {
        note_answer(&cfg.state_dir, to, now)
    } else {
        Ok(true)
    };
    match due {
        Ok(true) => {}
        Ok(false) => {
            log::info!(
                "mail-in: {to} was answered within {} s: not answered again",
                ANSWER_EVERY.as_secs()
            );
            return;
        }
        Err(e) => {
            // Unsure whether answered already: rather not (a loop costs
            // more than a missing explanation).
            log::warn!("mail-in: {}: {e}; {to} not answered", ANSWERS_FILE);
            return;
        }
    }
    let subject = m.header("Subject").unwrap_or("your mail to picomon");
    let subject = if subject.to_ascii_lowercase().starts_with("re:") {
        subject.to_string()
    } else {
        format!("Re: {subject}")
    };
    let entry = Composer::new(&cfg.emails).and_then(|c| {
        c.answer(
            to,
            &subject,
            m.header("Message-ID")
                .and_then(|v| parse::message_ids(v).into_iter().next())
                .as_deref(),
            body,
            now,
        )
    });
    let sent = entry
        .map_err(anyhow::Error::msg)
        .and_then(|e| crate::notify::mail::send_or_queue(cfg, &cfg.state_dir, &e));
    match sent {
        Ok(q) => log::info!("mail-in: answered {to}: {q:?}"),
        Err(e) => log::warn!("mail-in: cannot answer {to}: {e:#}"),
    }
}

/// Records that `to` is answered at `now`, unless it was within
/// [`ANSWER_EVERY`]: `Ok(false)` then. Locked, so two deliveries at once
/// do not both answer.
fn note_answer(state_dir: &Path, to: &str, now: i64) -> std::io::Result<bool> {
    let path = state_dir.join(ANSWERS_FILE);
    let lock = crate::fs::lock_file(&state_dir.join(format!("{ANSWERS_FILE}.lock")))?;
    let _held = crate::fs::lock(lock)?;
    let mut seen: BTreeMap<String, i64> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let every = ANSWER_EVERY.as_micros() as i64;
    seen.retain(|_, at| now - *at < every && *at <= now);
    if seen.contains_key(to) {
        return Ok(false);
    }
    if seen.len() >= ANSWERS_KEPT {
        return Ok(false);
    }
    seen.insert(to.to_string(), now);
    let bytes = serde_json::to_vec(&seen).map_err(std::io::Error::other)?;
    crate::fs::write_atomic(&path, &bytes)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_s_contacts_are_its_thread_s_recipients() {
        let cfg = crate::config::load_str(
            Path::new("mon.rhai"),
            r#"
config.emails.to = ["Ops <Ops@Example.org>"];
contact("db team", #{ to: ["db@example.org"], cc: ["dba@example.org"] });
contact("on-call", #{ to: ["oncall@example.org"] });
add(shell("true"), #{ name: "db", contacts: ["db team"],
    escalate: [#{ after: "30m", to: ["on-call", "lead@example.org"] }] });
add(shell("true"), #{ name: "web" });
"#,
        )
        .unwrap();
        let of = |name: &str| {
            let check = cfg.checks.iter().find(|c| &*c.name == name).unwrap();
            contact_addresses(&cfg, check)
        };
        assert_eq!(
            of("db"),
            vec![
                "db@example.org",
                "dba@example.org",
                "ops@example.org",
                "oncall@example.org",
                "lead@example.org"
            ]
        );
        assert_eq!(of("web"), vec!["ops@example.org"]);
    }

    #[test]
    fn senders_are_contacts_or_in_ack_from() {
        let contacts = vec!["ops@example.org".to_string()];
        let from = vec!["@team.example.org".to_string(), "Ann@x.org".to_string()];
        assert!(allowed("ops@example.org", &contacts, &from));
        assert!(allowed("bob@team.example.org", &contacts, &from));
        assert!(allowed("ann@x.org", &contacts, &from));
        assert!(!allowed("bob@evilteam.example.org", &contacts, &from));
        assert!(!allowed("eve@example.org", &contacts, &from));
    }

    #[test]
    fn machines_are_recognised() {
        for a in [
            "MAILER-DAEMON@x.org",
            "noreply@x.org",
            "no-reply-alerts@x.org",
            "list-request@x.org",
            "bounces+123@x.org",
        ] {
            assert!(automated_address(a), "{a}");
        }
        assert!(!automated_address("ann@x.org"));
        let m = |h: &str| parse::message(format!("{h}\r\n\r\nack").as_bytes()).unwrap();
        assert!(automated(&m("Auto-Submitted: auto-replied"), None).is_some());
        assert!(automated(&m("Auto-Submitted: no"), None).is_none());
        assert!(automated(&m("Precedence: bulk"), None).is_some());
        assert!(automated(&m("List-Id: <ops.x.org>"), None).is_some());
        assert!(automated(&m("Subject: x"), Some("")).is_some());
        assert!(automated(&m("Subject: x"), Some("ann@x.org")).is_none());
    }

    #[test]
    fn each_sender_is_answered_at_most_once_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let hour = ANSWER_EVERY.as_micros() as i64;
        assert!(note_answer(dir.path(), "ann@x.org", 0).unwrap());
        assert!(!note_answer(dir.path(), "ann@x.org", 10).unwrap());
        assert!(note_answer(dir.path(), "bob@x.org", 10).unwrap());
        assert!(note_answer(dir.path(), "ann@x.org", hour).unwrap());
    }

    #[test]
    fn a_cut_message_is_read_for_its_headers() {
        assert_eq!(split_headers(b"A: b\r\nC: d\r\n\r\nbody"), b"A: b\r\nC: d");
        assert_eq!(split_headers(b"A: b\n\nbody"), b"A: b");
        let (raw, cut) = read_input(&vec![b'x'; MAX_MESSAGE + 10][..]).unwrap();
        assert!(cut);
        assert_eq!(raw.len(), MAX_MESSAGE);
    }
}
