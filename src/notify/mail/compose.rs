//! Composition of every mail picomon sends: Problem, Update and
//! Recovery mails of one outage thread, the digest of a busy tick, the
//! periodic report, the test mail and plain notices (watchdog).
//!
//! Threading: the Problem mail's Message-ID is derived from the check
//! identity and the outage start, so the same outage always gets the same
//! id (a re-sent mail is recognisably the same one, and a restarted daemon
//! threads its Recovery to the Problem mail an earlier process sent).
//! Updates and the Recovery carry `In-Reply-To` and `References` to it and
//! use `Re: ` + the Problem subject.
//!
//! Nothing built from check data reaches a header unfiltered: control
//! characters (CR, LF, ...) are removed by [`header_safe`]. Headers stay
//! within RFC 5322's 998 octets per line: a long check name or host is
//! shortened with "…" in the subject (it is whole in the body), and any
//! header line still too long is folded ([`fold_long_header_lines`]), as
//! servers refuse longer lines ("500 line too long").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::Message;

use super::settings::{EmailConfig, SubjectStyle};
use super::token::{ThreadKey, TOKEN_MARK};
use crate::alert::{Phase, TransitionKind};
use crate::clock::{hms, local_datetime, UnixMicros};
use crate::notify::{CheckView, Notice};

use super::outbox::Entry;

/// `Auto-Submitted: auto-generated` (RFC 3834), so vacation responders and
/// ticket systems do not answer picomon; `auto-replied` on the answers of
/// `picomon mail-in`.
#[derive(Clone, Debug)]
struct AutoSubmitted(&'static str);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted("auto-generated"))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.into())
    }
}

/// Removes control characters (CR, LF, TAB, ESC, ...) and Unicode line
/// separators from text bound for a header, so check output or names can
/// never add or fold a header line.
pub fn header_safe(s: &str) -> String {
    let out: String = s
        .chars()
        .filter(|c| !c.is_control() && *c != '\u{2028}' && *c != '\u{2029}')
        .collect();
    out.trim().to_string()
}

/// At most this many characters of a check name or a destination go into
/// a subject; the body has them whole.
pub const SUBJECT_PART_MAX: usize = 200;
/// At most this many characters of subject (well under 998 octets even
/// for the longest unbreakable word, and readable in a mail list).
pub const SUBJECT_MAX: usize = 400;
/// RFC 5322 2.1.1: a line is at most 998 octets, CRLF excluded.
pub const MAX_LINE: usize = 998;

/// `s` cut to `max` characters, the last one being "…" when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A subject as it goes into the header: header-safe and shortened.
fn subject_line(s: &str) -> String {
    shorten(&header_safe(s), SUBJECT_MAX)
}

/// Folds every header line longer than [`MAX_LINE`] octets: before a space
/// where there is one, else (an unbreakable word, which only a very long
/// configured value can give) with an inserted fold. The body is left as
/// it is: lettre already encodes long body lines (quoted-printable).
pub fn fold_long_header_lines(message: &[u8]) -> Vec<u8> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(message.len());
    let (head, body) = message.split_at(head_end);
    let mut out = Vec::with_capacity(message.len() + 64);
    for line in head.split(|&b| b == b'\n') {
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        // 1 after an inserted fold: the space it put before `line`.
        let mut added = 0;
        while line.len() + added > MAX_LINE {
            // Break before the last space that keeps this line short
            // enough (not the leading space of a continuation line).
            let cut = line[1..=MAX_LINE - added]
                .iter()
                .rposition(|&b| b == b' ' || b == b'\t')
                .map(|p| p + 1)
                .filter(|&p| p > 1);
            match cut {
                Some(p) => {
                    out.extend_from_slice(&line[..p]);
                    out.extend_from_slice(b"\r\n");
                    line = &line[p..];
                    added = 0;
                }
                None => {
                    let p = MAX_LINE - 8;
                    out.extend_from_slice(&line[..p]);
                    out.extend_from_slice(b"\r\n ");
                    line = &line[p..];
                    added = 1;
                }
            }
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(body);
    out
}

/// Text bound for a body: line ends become LF (lettre writes CRLF), other
/// control characters except TAB become spaces, so a plugin cannot smuggle
/// terminal escapes or bare CRs into a mail.
pub fn body_safe(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Renders `subject_tpl` as Python's `str.format_map` did for picomon's
/// original: `{state}`, `{check}`, `{dest}`, with a format spec where one
/// is given (`{state:>8}`, `{check:.20}`, `{dest:*^30}`); `{{` and `}}` are
/// literal braces. Any other `{name}` becomes `<no substitution>` (so a
/// typo shows in the subject instead of failing the mail); a brace that
/// opens nothing is kept as it is. The result is header-safe.
pub fn render_subject(tpl: &str, state: &str, check: &str, dest: &str) -> String {
    expand(tpl, |name| match name {
        "state" => Some(state),
        "check" => Some(check),
        "dest" => Some(dest),
        _ => None,
    })
}

/// The placeholders of [`render_subject`].
pub const SUBJECT_FIELDS: &[&str] = &["state", "check", "dest"];

/// The `{names}` of `tpl` that [`render_subject`] does not fill in, in
/// order: what the config refuses.
pub fn unknown_fields(tpl: &str) -> Vec<String> {
    let mut bad = Vec::new();
    expand(tpl, |name| {
        if !SUBJECT_FIELDS.contains(&name) {
            bad.push(name.to_string());
        }
        Some("")
    });
    bad
}

/// `tpl` with each `{name[:spec]}` replaced by what `value` gives for the
/// name (`<no substitution>` for `None`); see [`render_subject`].
fn expand<'v>(tpl: &str, mut value: impl FnMut(&str) -> Option<&'v str>) -> String {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let brace = &rest[at..];
        if brace.starts_with("{{") || brace.starts_with("}}") {
            out.push_str(&brace[..1]);
            rest = &brace[2..];
            continue;
        }
        let field = match brace
            .strip_prefix('{')
            .and_then(|f| f.find('}').map(|c| &f[..c]))
        {
            Some(f) if !f.contains('{') => f,
            _ => {
                out.push_str(&brace[..1]);
                rest = &brace[1..];
                continue;
            }
        };
        rest = &brace[field.len() + 2..];
        let (name, spec) = field.split_once(':').unwrap_or((field, ""));
        // `!s`, `!r`, `!a` conversions change nothing for these strings.
        let name = name.split_once('!').map_or(name, |(n, _)| n);
        let value = value(name.trim()).unwrap_or("<no substitution>");
        out.push_str(&format_spec(value, spec));
    }
    out.push_str(rest);
    header_safe(&out)
}

/// Applies a Python format spec to a string: `[[fill]align][0][width][.precision][s]`
/// (sign, `#` and `,` mean nothing for a string and are skipped). A spec
/// that cannot be read leaves the value as it is.
fn format_spec(value: &str, spec: &str) -> String {
    let chars: Vec<char> = spec.chars().collect();
    let is_align = |c: &char| matches!(c, '<' | '>' | '^' | '=');
    let (mut fill, mut align, mut i) = (' ', '<', 0);
    if chars.len() >= 2 && is_align(&chars[1]) {
        (fill, align, i) = (chars[0], chars[1], 2);
    } else if chars.first().is_some_and(is_align) {
        (align, i) = (chars[0], 1);
    }
    while chars
        .get(i)
        .is_some_and(|c| matches!(c, '+' | '-' | ' ' | '#'))
    {
        i += 1;
    }
    if chars.get(i) == Some(&'0') {
        if i == 0 || (i == 1 && !is_align(&chars[0])) {
            fill = '0';
        }
        i += 1;
    }
    let digits = |i: &mut usize| -> Option<usize> {
        let start = *i;
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>().parse().ok()
    };
    // A subject is cut to SUBJECT_MAX anyway: no wider padding is built.
    let width = digits(&mut i).unwrap_or(0).min(SUBJECT_MAX);
    while chars.get(i).is_some_and(|c| matches!(c, ',' | '_')) {
        i += 1;
    }
    let precision = if chars.get(i) == Some(&'.') {
        i += 1;
        digits(&mut i)
    } else {
        None
    };
    if chars.get(i) == Some(&'s') {
        i += 1;
    }
    if i != chars.len() {
        return value.to_string();
    }
    let text: String = match precision {
        Some(p) => value.chars().take(p).collect(),
        None => value.to_string(),
    };
    let pad = width.saturating_sub(text.chars().count());
    let fill_n = |n: usize| fill.to_string().repeat(n);
    match align {
        '>' | '=' => format!("{}{text}", fill_n(pad)),
        '^' => format!("{}{text}{}", fill_n(pad / 2), fill_n(pad - pad / 2)),
        _ => format!("{text}{}", fill_n(pad)),
    }
}

/// FNV-1a, 64 bit: a hash that is the same in every build and every run,
/// so Message-IDs stay stable across restarts and upgrades.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// This machine's name, made safe for a Message-ID's right-hand side.
pub fn hostname() -> String {
    crate::host::this_host()
}

fn system_time(at: UnixMicros) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(at.max(0) as u64)
}

/// What a thread mail's Message-ID names (see [`Composer::problem_id`]):
/// `<picomon.HASH.START[.KIND.AT][.kTOKEN]@HOST>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadRef {
    /// [`stable_hash`] of the check's identity.
    pub check_hash: u64,
    /// The thread's start (the outage's).
    pub start: UnixMicros,
    /// The thread token, when the mail had one.
    pub token: Option<String>,
    /// The machine whose picomon sent it.
    pub host: String,
}

/// Reads a picomon thread mail's Message-ID (with or without `<>`);
/// `None` for any other id (a digest's, a report's, someone else's).
pub fn parse_thread_id(id: &str) -> Option<ThreadRef> {
    let id = id.trim();
    let id = id
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(id);
    let (local, host) = id.split_once('@')?;
    let mut parts = local.split('.');
    if parts.next()? != "picomon" {
        return None;
    }
    let hash = parts.next().filter(|h| h.len() == 16)?;
    let check_hash = u64::from_str_radix(hash, 16).ok()?;
    let start = parts.next()?.parse::<UnixMicros>().ok()?;
    let rest: Vec<&str> = parts.collect();
    let token = rest
        .last()
        .and_then(|p| p.strip_prefix(TOKEN_MARK))
        .filter(|t| t.len() == super::token::TOKEN_HEX && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let kind_parts = rest.len() - usize::from(token.is_some());
    // Nothing, or KIND.AT (an update, reminder, ack mail, ...).
    if !(kind_parts == 0 || (kind_parts == 2 && rest[1].parse::<UnixMicros>().is_ok())) {
        return None;
    }
    if host.is_empty() || host.contains(['<', '>', ' ']) {
        return None;
    }
    Some(ThreadRef {
        check_hash,
        start,
        token,
        host: host.to_string(),
    })
}

/// Where a mail goes in its check's thread.
#[derive(Clone, Copy, Debug)]
pub struct InThread<'a> {
    /// The thread's key: the outage start (or when flapping began).
    pub start: UnixMicros,
    /// The subject of the thread's first mail, when known.
    pub subject: Option<&'a str>,
    /// This mail starts the thread.
    pub root: bool,
    /// The Message-ID the thread's replies refer to when it is not the
    /// Problem mail's (the outage was announced in a digest).
    pub root_id: Option<&'a str>,
}

/// What the mail side knows of the thread an ack mail replies in.
#[derive(Clone, Copy, Debug, Default)]
pub struct AckThread<'a> {
    /// The subject of the thread's first mail, when known.
    pub subject: Option<&'a str>,
    /// As [`InThread::root_id`].
    pub root_id: Option<&'a str>,
    /// The addresses the thread was escalated to: `Cc`.
    pub escalated_to: &'a [String],
}

/// `s` quoted for a POSIX shell: `'...'`, a `'` inside as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The URL of the status page of a listener bound to `addr`: the machine's
/// name when it is bound to every address (`0.0.0.0`, `::`).
pub fn status_page_url(addr: std::net::SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        hostname()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}/", addr.port())
}

/// The first line of a transition's body: what happened.
fn first_line(n: &Notice) -> String {
    let t = &n.transition;
    let since = local_datetime(t.outage_start);
    let outage = hms(t.outage_micros());
    match t.kind {
        TransitionKind::Problem if n.delayed => format!(
            "{} since {since} ({} failed runs)\n\
             It waited for your notification hours to begin: it has lasted {outage} so far.",
            t.status, t.failed_runs
        ),
        TransitionKind::Problem => {
            format!("{} since {since} ({} failed runs)", t.status, t.failed_runs)
        }
        TransitionKind::Update => match t.previous {
            Some(p) if p != t.status => format!(
                "{} (was {p}) since {since} ({outage}, {} failed runs)",
                t.status, t.failed_runs
            ),
            _ => format!(
                "{} since {since} ({outage}, {} failed runs)",
                t.status, t.failed_runs
            ),
        },
        TransitionKind::Recovery => format!(
            "{}: recovered after {outage} ({} failed runs)",
            t.status, t.failed_runs
        ),
        TransitionKind::Reminder => format!(
            "reminder {}: still {} after {outage}, {} failed runs (since {since})",
            n.count, t.status, t.failed_runs
        ),
        TransitionKind::Escalation => format!(
            "escalated: {} for {outage} unacknowledged ({} failed runs, since {since}); \
             this thread now also goes to {}",
            t.status,
            t.failed_runs,
            body_safe(&n.escalated_to.join(", "))
        ),
        TransitionKind::FlappingStart => format!(
            "FLAPPING: changed state {} times in the last {} runs ({:.1}% state change); \
             no Problem, Update or Recovery mails until it settles",
            n.count,
            crate::alert::flap::RUNS,
            n.percent.unwrap_or(0.0)
        ),
        TransitionKind::FlappingStop if t.status == crate::model::Status::Ok => format!(
            "stopped flapping, now OK ({:.1}% state change)",
            n.percent.unwrap_or(0.0)
        ),
        TransitionKind::FlappingStop => format!(
            "stopped flapping, now {} since {since} ({} failed runs; {:.1}% state change)",
            t.status,
            t.failed_runs,
            n.percent.unwrap_or(0.0)
        ),
    }
}

/// The paragraph naming the dependents a failure makes unreachable (with
/// its blank line), or nothing.
fn unreachable_text(n: &Notice) -> String {
    if n.unreachable.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nUnreachable while this check fails ({}; no mail of their own):\n",
        n.unreachable.len()
    );
    for name in &n.unreachable {
        out.push_str("  ");
        out.push_str(&body_safe(name));
        out.push('\n');
    }
    out
}

/// Builds mails from one `emails` config.
#[derive(Clone, Debug)]
pub struct Composer {
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `Cc` of every mail (a contact's `cc`).
    cc: Vec<Mailbox>,
    /// Set for a composer [`addressed`](Self::addressed) to some contacts:
    /// their digests and reports get Message-IDs of their own.
    tag: Option<String>,
    subject_tpl: String,
    subject_style: SubjectStyle,
    report_subject: String,
    host: String,
    /// The status page's URL (`config.listen`), named in Problem mails.
    status_page: Option<String>,
    /// `emails.reply_to`: the `Reply-To` of thread mails.
    reply_to: Option<Mailbox>,
    /// `emails.ack_secret_file`: the key of the thread tokens.
    key: Option<ThreadKey>,
}

impl Composer {
    /// Parses the addresses of `emails`; an error says which setting holds
    /// the bad address and how it should look.
    pub fn new(e: &EmailConfig) -> Result<Composer, String> {
        let parse = |key: &str, s: &str| {
            s.parse::<Mailbox>().map_err(|err| {
                format!(
                    "config.emails.{key}: {s:?} is not a mail address ({err}); \
                     write it as \"user@example.org\" or \"Name <user@example.org>\""
                )
            })
        };
        let from = match parse("addr_from", &e.addr_from) {
            Ok(f) => f,
            // Nobody to mail: a bad sender must not stop the daemon.
            Err(err) if e.to.is_empty() => {
                log::warn!("{err}");
                Mailbox::new(
                    None,
                    lettre::Address::new("picomon", "localhost").map_err(|e| e.to_string())?,
                )
            }
            Err(err) => return Err(err),
        };
        let to =
            e.to.iter()
                .map(|t| parse("to", t))
                .collect::<Result<Vec<_>, _>>()?;
        let reply_to = match e.reply_to.as_str() {
            "" => None,
            r => Some(parse("reply_to", r)?),
        };
        let key = match e.ack_secret_file.as_str() {
            "" => None,
            path => Some(ThreadKey::read(std::path::Path::new(path))?),
        };
        Ok(Composer {
            from,
            to,
            cc: Vec::new(),
            tag: None,
            subject_tpl: e.subject_tpl.clone(),
            subject_style: e.subject_style,
            report_subject: e.report_subject.clone(),
            host: hostname(),
            status_page: None,
            reply_to,
            key,
        })
    }

    /// The same composer writing to `to` with `cc` in copy (a mail to
    /// some of the contacts rather than to `config.emails.to`).
    /// `tag` tells its digests and reports apart from the others'.
    pub fn addressed(&self, to: Vec<Mailbox>, cc: Vec<Mailbox>, tag: &str) -> Composer {
        Composer {
            to,
            cc,
            tag: Some(format!("{:016x}", stable_hash(tag))),
            ..self.clone()
        }
    }

    /// The `To` of its mails.
    pub fn recipients(&self) -> &[Mailbox] {
        &self.to
    }

    /// `.TAG` for the Message-IDs of an addressed composer, else nothing.
    fn tag(&self) -> String {
        self.tag
            .as_ref()
            .map(|t| format!(".{t}"))
            .unwrap_or_default()
    }

    /// The mailboxes `to` and `cc` of the contact `name`: an error names
    /// the contact and the address that does not parse.
    pub fn contact_mailboxes(
        name: &str,
        to: &[String],
        cc: &[String],
    ) -> Result<(Vec<Mailbox>, Vec<Mailbox>), String> {
        let parse = |key: &str, list: &[String]| {
            list.iter()
                .map(|s| {
                    s.parse::<Mailbox>().map_err(|err| {
                        format!(
                            "contact {name:?}: {key}: {s:?} is not a mail address ({err}); \
                             write it as \"user@example.org\" or \"Name <user@example.org>\""
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((parse("to", to)?, parse("cc", cc)?))
    }

    /// The same composer naming the status page of a listener on `listen`
    /// (not one on port 0, whose port is only known once it listens).
    pub fn with_status_page(mut self, listen: Option<std::net::SocketAddr>) -> Composer {
        self.status_page = listen.filter(|a| a.port() != 0).map(status_page_url);
        self
    }

    /// The Message-ID of the digest composed at `now`.
    pub fn digest_id(&self, now: UnixMicros) -> String {
        format!("<picomon.digest.{now}{}@{}>", self.tag(), self.host)
    }

    /// What to do about a check in PROBLEM, for the end of its mails: the
    /// commands that acknowledge and silence it, and the status page.
    fn act_text(&self, n: &Notice) -> String {
        let title = shell_quote(&format!("{} on {}", n.name, n.dest));
        let mut out = format!(
            "\nTo act on it:\n  picomon ack {title} -m 'WHY'\n  picomon silence {title} --for 2h -m 'WHY'\n"
        );
        if let Some(url) = &self.status_page {
            out.push_str(&format!("  status page: {url}\n"));
        }
        if let Some(r) = &self.reply_to {
            out.push_str(&format!(
                "\nReply with `ack`, `ack sticky` or `silence 2h` to {} \
                 (on the first line; a message may follow, as in `ack on it`).\n",
                r.email
            ));
        }
        body_safe(&out)
    }

    /// Whether there is anyone to mail.
    pub fn has_recipients(&self) -> bool {
        !self.to.is_empty()
    }

    /// The Message-ID of the Problem mail of the outage of `check_id` that
    /// started at `outage_start`: the root of its thread.
    pub fn problem_id(&self, check_id: &str, outage_start: UnixMicros) -> String {
        format!(
            "<picomon.{:016x}.{}{}@{}>",
            stable_hash(check_id),
            outage_start,
            self.token_part(check_id, outage_start),
            self.host
        )
    }

    /// `.k` + the thread token as the last part of a thread mail's
    /// Message-ID (before the `@`), when `emails.ack_secret_file` is set.
    fn token_part(&self, check_id: &str, start: UnixMicros) -> String {
        self.key
            .as_ref()
            .map(|k| format!(".{TOKEN_MARK}{}", k.token(check_id, start)))
            .unwrap_or_default()
    }

    /// Adds `Reply-To: emails.reply_to` to a thread mail.
    fn with_reply_to(&self, b: lettre::message::MessageBuilder) -> lettre::message::MessageBuilder {
        match &self.reply_to {
            Some(r) => b.reply_to(r.clone()),
            None => b,
        }
    }

    /// The subject of the Problem mail of a notice.
    pub fn problem_subject(&self, n: &Notice) -> String {
        subject_line(&render_subject(
            &self.subject_tpl,
            n.transition.status.as_str(),
            &shorten(&n.name, SUBJECT_PART_MAX),
            &shorten(&n.dest, SUBJECT_PART_MAX),
        ))
    }

    /// The subject of a reply in a thread (Update, Recovery, reminder,
    /// ...): with `subject_style` "thread", "Re: " and the Problem mail's
    /// subject (`problem_subject`); with "state", `subject_tpl` rendered
    /// with this mail's own state (`FLAPPING` when flapping starts).
    pub fn follow_up_subject(&self, n: &Notice, problem_subject: &str) -> String {
        match (self.subject_style, n.transition.kind) {
            (SubjectStyle::Thread, _) => format!("Re: {problem_subject}"),
            (SubjectStyle::State, TransitionKind::FlappingStart) => self.flapping_subject(n),
            (SubjectStyle::State, _) => self.problem_subject(n),
        }
    }

    /// A Problem, Update or Recovery mail. `thread_subject` is the subject
    /// of the Problem mail of this outage when known (it was rendered with
    /// the state at that time); else it is rendered again.
    pub fn transition(
        &self,
        n: &Notice,
        thread_subject: Option<&str>,
        now: UnixMicros,
    ) -> Result<Entry, String> {
        let thread = InThread {
            start: n.transition.outage_start,
            subject: thread_subject,
            root: n.transition.opens_outage(),
            root_id: None,
        };
        self.transition_in(n, thread, now)
    }

    /// The subject of a thread that starts with "FLAPPING" (the check was
    /// not in PROBLEM when it began to flap).
    pub fn flapping_subject(&self, n: &Notice) -> String {
        subject_line(&render_subject(
            &self.subject_tpl,
            "FLAPPING",
            &shorten(&n.name, SUBJECT_PART_MAX),
            &shorten(&n.dest, SUBJECT_PART_MAX),
        ))
    }

    /// The mail of any transition, placed in its check's thread: the root
    /// (Message-ID derived from check and `thread.start`) or a reply to it.
    /// Escalated addresses (`n.escalated_to`) get it as `Cc`.
    pub fn transition_in(
        &self,
        n: &Notice,
        thread: InThread,
        now: UnixMicros,
    ) -> Result<Entry, String> {
        let t = &n.transition;
        let problem_id = self.problem_id(&n.check_id, thread.start);
        let root = thread
            .root_id
            .map(header_safe)
            .unwrap_or_else(|| problem_id.clone());
        let problem_subject = thread
            .subject
            .map(subject_line)
            .unwrap_or_else(|| self.problem_subject(n));
        // Mails that ask someone to do something say how.
        let act = match t.kind {
            TransitionKind::Problem
            | TransitionKind::Update
            | TransitionKind::Reminder
            | TransitionKind::Escalation => self.act_text(n),
            _ => String::new(),
        };
        let body = format!(
            "{}\n{}\n{}\n{act}\n-- \ncheck {} on {} (id: {})\npicomon on {}\n",
            first_line(n),
            unreachable_text(n),
            body_safe(n.output.trim_end()),
            body_safe(&n.name),
            body_safe(&n.dest),
            body_safe(&n.check_id),
            self.host
        );
        let builder = self.with_reply_to(self.cc(self.builder(now), &n.escalated_to));
        let builder = if thread.root {
            builder
                .message_id(Some(problem_id))
                .subject(problem_subject)
        } else if n.delayed {
            // The first mail of the thread its contacts get: the Problem's
            // subject, a reply to the Problem the others got.
            builder
                .message_id(Some(format!(
                    "<picomon.{:016x}.{}.late.{}@{}>",
                    stable_hash(&n.check_id),
                    thread.start,
                    t.at,
                    self.host
                )))
                .in_reply_to(root.clone())
                .references(root)
                .subject(problem_subject)
        } else {
            builder
                .message_id(Some(format!(
                    "<picomon.{:016x}.{}.{}.{}{}@{}>",
                    stable_hash(&n.check_id),
                    thread.start,
                    t.kind.as_str(),
                    t.at,
                    self.token_part(&n.check_id, thread.start),
                    self.host
                )))
                .in_reply_to(root.clone())
                .references(root)
                .subject(self.follow_up_subject(n, &problem_subject))
        };
        self.finish(builder, body, now)
    }

    /// Adds the escalated addresses as `Cc` (one that does not parse is
    /// logged and left out: the others still get the mail).
    fn cc(
        &self,
        mut b: lettre::message::MessageBuilder,
        to: &[String],
    ) -> lettre::message::MessageBuilder {
        for a in to {
            match a.parse::<Mailbox>() {
                Ok(m) if !self.to.contains(&m) && !self.cc.contains(&m) => b = b.cc(m),
                Ok(_) => {}
                Err(e) => log::error!(
                    "escalate: {a:?} is not a mail address ({e}); fix config.emails.escalate or the check's escalate"
                ),
            }
        }
        b
    }

    /// One mail listing all transitions of a busy tick.
    pub fn digest(&self, batch: &[Notice], now: UnixMicros) -> Result<Entry, String> {
        let count = |k| batch.iter().filter(|n| n.transition.kind == k).count();
        let (p, u, r) = (
            count(TransitionKind::Problem),
            count(TransitionKind::Update),
            count(TransitionKind::Recovery),
        );
        let others = batch.len() - p - u - r;
        let summary = if others == 0 {
            format!(
                "{} changes ({p} problems, {u} updates, {r} recoveries)",
                batch.len()
            )
        } else {
            format!(
                "{} changes ({p} problems, {u} updates, {r} recoveries, {others} other)",
                batch.len()
            )
        };
        let mut body = format!("{summary}\n");
        for kind in TransitionKind::ALL {
            for n in batch.iter().filter(|n| n.transition.kind == kind) {
                let t = &n.transition;
                let extra = match kind {
                    TransitionKind::Problem | TransitionKind::Update => {
                        format!("since {}", local_datetime(t.outage_start))
                    }
                    _ => first_line(n),
                };
                body.push_str(&format!(
                    "\n{} {}: {} on {}, {extra}\n",
                    kind.as_str().to_uppercase(),
                    t.status,
                    body_safe(&n.name),
                    body_safe(&n.dest)
                ));
                for name in &n.unreachable {
                    body.push_str(&format!("    unreachable: {}\n", body_safe(name)));
                }
                for line in body_safe(n.output.trim_end()).lines() {
                    body.push_str("    ");
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
        body.push_str(&format!("\n-- \npicomon on {}\n", self.host));
        let subject = render_subject(&self.subject_tpl, "DIGEST", &summary, &self.host);
        let builder = self
            .builder(now)
            .subject(subject_line(&subject))
            .message_id(Some(self.digest_id(now)));
        self.finish(builder, body, now)
    }

    /// The periodic report: checks in PROBLEM first (since, duration, last
    /// output), then the others.
    pub fn report(
        &self,
        checks: &[CheckView],
        notes: &[String],
        now: UnixMicros,
    ) -> Result<Entry, String> {
        let mut body = report_text(checks, now, &self.host);
        if !notes.is_empty() {
            body.push_str("\nNotes:\n");
            for n in notes {
                body.push_str("  ");
                body.push_str(&body_safe(n));
                body.push('\n');
            }
        }
        let builder = self
            .builder(now)
            .subject(subject_line(&self.report_subject))
            .message_id(Some(format!(
                "<picomon.report.{now}{}@{}>",
                self.tag(),
                self.host
            )));
        self.finish(builder, body, now)
    }

    /// The availability mail: the report's text, and its CSV attached
    /// (`multipart/mixed`: the text, then `availability-FROM.csv` as
    /// `text/csv`). `due` names it: the same due time gives the same
    /// Message-ID, so a mail queued again after a crash is recognisably
    /// the same one.
    pub fn availability(
        &self,
        period: &str,
        text: &str,
        csv: &str,
        file_date: &str,
        due: UnixMicros,
        now: UnixMicros,
    ) -> Result<Entry, String> {
        use lettre::message::{Attachment, MultiPart, SinglePart};
        let subject = render_subject(
            &self.subject_tpl,
            "AVAILABILITY",
            &format!("the last {period}"),
            &self.host,
        );
        let body = format!("{}\n-- \npicomon on {}\n", body_safe(text), self.host);
        let csv_type = ContentType::parse("text/csv; charset=utf-8")
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        let parts = MultiPart::mixed()
            .singlepart(SinglePart::plain(body))
            .singlepart(
                Attachment::new(format!("availability-{file_date}.csv"))
                    .body(csv.to_string(), csv_type),
            );
        let mut b = self
            .envelope(now)
            .subject(subject_line(&subject))
            .message_id(Some(format!("<picomon.availability.{due}@{}>", self.host)));
        // What the plain mails' builder adds; multipart sets its own type.
        b = b.header(AutoSubmitted("auto-generated"));
        let msg = b
            .multipart(parts)
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        Ok(self.entry(msg, now))
    }

    /// "Acknowledged by USER: COMMENT": a reply in the check's thread, to
    /// everyone the thread goes to (escalated addresses as `Cc`).
    pub fn acknowledgement(
        &self,
        c: &CheckView,
        thread: AckThread,
        by: &str,
        comment: &str,
        now: UnixMicros,
    ) -> Result<Entry, String> {
        let start = c.outage_start.unwrap_or(now);
        let root = thread
            .root_id
            .map(header_safe)
            .unwrap_or_else(|| self.problem_id(&c.check_id, start));
        let subject = thread.subject.map(header_safe).unwrap_or_else(|| {
            let state = c.status.map(|s| s.as_str()).unwrap_or("UNKNOWN");
            render_subject(&self.subject_tpl, state, &c.name, &c.dest)
        });
        let body = format!(
            "Acknowledged by {}: {}\n\n-- \ncheck {} on {} (id: {})\npicomon on {}\n",
            body_safe(by),
            body_safe(comment),
            body_safe(&c.name),
            body_safe(&c.dest),
            body_safe(&c.check_id),
            self.host
        );
        let builder = self
            .with_reply_to(self.cc(self.builder(now), thread.escalated_to))
            .message_id(Some(format!(
                "<picomon.{:016x}.{start}.ack.{now}{}@{}>",
                stable_hash(&c.check_id),
                self.token_part(&c.check_id, start),
                self.host
            )))
            .in_reply_to(root.clone())
            .references(root)
            .subject(format!("Re: {subject}"));
        self.finish(builder, body, now)
    }

    /// A mail with a given subject and body (test mail, watchdog notice).
    pub fn plain(&self, subject: &str, body: &str, now: UnixMicros) -> Result<Entry, String> {
        let builder = self
            .builder(now)
            .subject(subject_line(subject))
            .message_id(Some(format!(
                "<picomon.note.{now}.{:016x}@{}>",
                stable_hash(subject),
                self.host
            )));
        self.finish(builder, body_safe(body), now)
    }

    /// `picomon mail-in`'s answer to a reply it did not act on (or a
    /// confirmation): to `to` alone, `Auto-Submitted: auto-replied`
    /// (RFC 3834), in reply to `in_reply_to` (the reply's Message-ID).
    pub fn answer(
        &self,
        to: &str,
        subject: &str,
        in_reply_to: Option<&str>,
        body: &str,
        now: UnixMicros,
    ) -> Result<Entry, String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("cannot answer {to:?}: not a mail address ({e})"))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .date(system_time(now))
            .header(AutoSubmitted("auto-replied"))
            .header(MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            .subject(subject_line(subject))
            .message_id(Some(format!(
                "<picomon.answer.{now}.{:016x}@{}>",
                stable_hash(body),
                self.host
            )));
        if let Some(id) = in_reply_to.map(header_safe).filter(|id| {
            id.starts_with('<') && id.ends_with('>') && !id.contains(char::is_whitespace)
        }) {
            b = b.in_reply_to(id.clone()).references(id);
        }
        self.finish(b, body_safe(body), now)
    }

    /// The subject of a mail about picomon itself: `subject_tpl` with
    /// state `PICOMON` and `what` as the check.
    pub fn note_subject(&self, what: &str) -> String {
        render_subject(&self.subject_tpl, "PICOMON", what, &self.host)
    }

    /// The subject of the test mail.
    pub fn test_subject(&self) -> String {
        render_subject(&self.subject_tpl, "TEST", "test mail", &self.host)
    }

    /// From, To and Date: what every mail has.
    fn envelope(&self, now: UnixMicros) -> lettre::message::MessageBuilder {
        let mut b = Message::builder()
            .from(self.from.clone())
            .date(system_time(now));
        for to in &self.to {
            b = b.to(to.clone());
        }
        for cc in self.cc.iter().filter(|c| !self.to.contains(c)) {
            b = b.cc(cc.clone());
        }
        b
    }

    /// A plain-text mail's headers.
    fn builder(&self, now: UnixMicros) -> lettre::message::MessageBuilder {
        self.envelope(now)
            .header(AutoSubmitted("auto-generated"))
            .header(MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
    }

    fn finish(
        &self,
        b: lettre::message::MessageBuilder,
        body: String,
        now: UnixMicros,
    ) -> Result<Entry, String> {
        let msg = b
            .body(body)
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        Ok(self.entry(msg, now))
    }

    /// The outbox entry of a built message.
    fn entry(&self, msg: Message, now: UnixMicros) -> Entry {
        let env = msg.envelope();
        Entry {
            from: env.from().map(|a| a.to_string()).unwrap_or_default(),
            to: env.to().iter().map(|a| a.to_string()).collect(),
            composed: now,
            message: fold_long_header_lines(&msg.formatted()),
            ..Entry::default()
        }
    }
}

/// ` (UNREACHABLE: router ping on gw fails)`, ` (FLAPPING, 34.4% state
/// change)`, ` (12.0% state change)`: what reports and the dump add to a
/// check's state.
pub fn noise_marks(c: &CheckView) -> String {
    let mut out = String::new();
    if let Some(p) = &c.unreachable_by {
        out.push_str(&format!(" (UNREACHABLE: {} fails)", body_safe(p)));
    }
    match c.flap_percent {
        Some(p) if c.flapping => out.push_str(&format!(" (FLAPPING, {p:.1}% state change)")),
        Some(p) if p > 0.0 => out.push_str(&format!(" ({p:.1}% state change)")),
        _ => {}
    }
    out
}

/// The text of a report (also what the SIGUSR1 dump could print).
pub fn report_text(checks: &[CheckView], now: UnixMicros, host: &str) -> String {
    // Acknowledged problems are listed apart: someone is on them.
    let (acked, problems): (Vec<&CheckView>, Vec<&CheckView>) = checks
        .iter()
        .filter(|c| c.phase == Phase::Problem)
        .partition(|c| c.ack.is_some());
    let others: Vec<&CheckView> = checks
        .iter()
        .filter(|c| c.phase != Phase::Problem)
        .collect();
    let mut body = format!(
        "picomon on {host}, {}\n\nChecks in PROBLEM ({}):\n",
        local_datetime(now),
        problems.len()
    );
    for c in &problems {
        let since = c.outage_start.unwrap_or(now);
        body.push_str(&format!(
            "\n  {} on {}: {}{}{}\n    since {} ({}, {} failed runs)\n",
            body_safe(&c.name),
            body_safe(&c.dest),
            c.status.map(|s| s.as_str()).unwrap_or("?"),
            c.silenced_by
                .as_ref()
                .map(|s| format!(" (silenced by {})", body_safe(s)))
                .unwrap_or_default(),
            noise_marks(c),
            local_datetime(since),
            hms(now - since),
            c.failed_runs
        ));
        for line in body_safe(c.last_output.trim_end()).lines() {
            body.push_str("    | ");
            body.push_str(line);
            body.push('\n');
        }
    }
    if !acked.is_empty() {
        body.push_str(&format!("\nAcknowledged ({}):\n", acked.len()));
        for c in &acked {
            body.push_str(&format!(
                "  {} on {}: {} - acknowledged by {}\n",
                body_safe(&c.name),
                body_safe(&c.dest),
                c.status.map(|s| s.as_str()).unwrap_or("?"),
                body_safe(c.ack.as_deref().unwrap_or(""))
            ));
        }
    }
    body.push_str(&format!("\nOther checks ({}):\n", others.len()));
    for c in &others {
        let state = match c.phase {
            Phase::Retrying => format!("retrying {}/{}", c.failed_runs, c.retry + 1),
            _ => c
                .status
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "not run yet".into()),
        };
        let first = body_safe(c.last_output.lines().next().unwrap_or(""));
        body.push_str(&format!(
            "  {} on {}: {state}{}{}{first}\n",
            body_safe(&c.name),
            body_safe(&c.dest),
            noise_marks(c),
            if first.is_empty() { "" } else { " - " }
        ));
    }
    body
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::Transition;
    use crate::model::Status;
    use crate::notify::mail::settings::SmtpTls;

    pub(crate) fn email_config() -> EmailConfig {
        EmailConfig {
            to: vec!["ops@example.org".into(), "Second <two@example.org>".into()],
            addr_from: "picomon <picomon@example.org>".into(),
            smtp_host: vec!["localhost:25".into()],
            smtp_tls: SmtpTls::None,
            smtp_user: String::new(),
            smtp_password_file: String::new(),
            smtp_ca_file: String::new(),
            smtp_retry_timeout: Duration::from_secs(60),
            subject_tpl: "[picomon] {state}: {check} on {dest} {oops}".into(),
            subject_style: crate::notify::mail::settings::SubjectStyle::Thread,
            report_every: Duration::from_secs(3600),
            report_subject: "[picomon] error report".into(),
            watchdog_subject: "[picomon] daemon stopped".into(),
            digest_over: 5,
            reply_to: String::new(),
            ack_from: Vec::new(),
            ack_secret_file: String::new(),
            availability: None,
        }
    }

    fn notice(kind: TransitionKind, status: Status, output: &str) -> Notice {
        Notice::new(
            "plugin check_x".into(),
            "check_x".into(),
            "web1".into(),
            Transition {
                kind,
                status,
                previous: Some(Status::Warning),
                outage_start: 1_700_000_000_000_000,
                failed_runs: 4,
                at: 1_700_000_185_000_000,
            },
            output.into(),
        )
    }

    fn text(e: &Entry) -> String {
        String::from_utf8(e.message.clone()).unwrap()
    }

    /// The message with quoted-printable soft line breaks joined.
    fn unfolded(e: &Entry) -> String {
        text(e).replace("=\r\n", "")
    }

    fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
        let head = msg.split("\r\n\r\n").next().unwrap();
        head.split("\r\n")
            .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
            .collect()
    }

    #[test]
    fn thread_mails_invite_replies_and_carry_the_thread_token() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "0123456789abcdef-test-secret\n").unwrap();
        let mut e = email_config();
        e.reply_to = "picomon-in@example.org".into();
        e.ack_secret_file = secret.display().to_string();
        let c = Composer::new(&e).unwrap();
        let key = ThreadKey::read(&secret).unwrap();
        let p = notice(TransitionKind::Problem, Status::Critical, "down");
        let u = notice(TransitionKind::Update, Status::Critical, "still down");
        for (n, root) in [(&p, true), (&u, false)] {
            let thread = InThread {
                start: n.transition.outage_start,
                subject: None,
                root,
                root_id: None,
            };
            let m = unfolded(&c.transition_in(n, thread, 5).unwrap());
            assert_eq!(header(&m, "Reply-To"), vec!["picomon-in@example.org"]);
            assert!(
                m.contains(
                    "Reply with `ack`, `ack sticky` or `silence 2h` to picomon-in@example.org"
                ),
                "{m}"
            );
            let r = parse_thread_id(header(&m, "Message-ID")[0]).unwrap();
            assert_eq!(r.check_hash, stable_hash(&n.check_id));
            assert_eq!(r.start, n.transition.outage_start);
            assert!(key.verify(&n.check_id, r.start, r.token.as_deref().unwrap()));
            if !root {
                let parent = parse_thread_id(header(&m, "In-Reply-To")[0]).unwrap();
                assert_eq!(parent.token, r.token);
            }
        }
        // Without the settings: no Reply-To, no invitation, no token.
        let plain = Composer::new(&email_config()).unwrap();
        let m = unfolded(&plain.transition(&p, None, 5).unwrap());
        assert!(header(&m, "Reply-To").is_empty());
        assert!(!m.contains("Reply with"));
        let r = parse_thread_id(header(&m, "Message-ID")[0]).unwrap();
        assert_eq!(r.token, None);
        // An unreadable secret is an error that names the setting.
        e.ack_secret_file = "/nonexistent/secret".into();
        assert!(Composer::new(&e)
            .unwrap_err()
            .contains("config.emails.ack_secret_file /nonexistent/secret"));
    }

    #[test]
    fn only_thread_ids_are_read_as_threads() {
        let r = parse_thread_id("<picomon.00000000000000ff.17.update.18@host1>").unwrap();
        assert_eq!(
            (r.check_hash, r.start, r.token, r.host.as_str()),
            (255, 17, None, "host1")
        );
        for other in [
            "<picomon.digest.17@host1>",
            "<picomon.report.17@host1>",
            "<picomon.00ff.17@host1>",
            "<picomon.00000000000000ff.x@host1>",
            "<picomon.00000000000000ff.17.update@host1>",
            "<someone.00000000000000ff.17@host1>",
            "<picomon.00000000000000ff.17>",
        ] {
            assert_eq!(parse_thread_id(other), None, "{other}");
        }
    }

    #[test]
    fn subject_placeholders_and_unknown_ones() {
        assert_eq!(
            render_subject("[x] {state}: {check} on {dest} {foo} {", "OK", "c", "d"),
            "[x] OK: c on d <no substitution> {"
        );
        assert_eq!(render_subject("{check}", "a\r\nBcc: x@y", "", ""), "");
        assert_eq!(
            render_subject("{check}", "", "a\r\nBcc: v@example.org", ""),
            "aBcc: v@example.org"
        );
    }

    #[test]
    fn subject_follows_python_format_braces_width_and_alignment() {
        let r = |tpl| render_subject(tpl, "OK", "ping4", "web1");
        // Expected values are what Python's str.format gives.
        assert_eq!(r("{{lit}} {state}"), "{lit} OK");
        assert_eq!(r("}}{{"), "}{");
        assert_eq!(r("[{state:>8}]"), "[      OK]");
        assert_eq!(r("[{state:<8}]"), "[OK      ]");
        assert_eq!(r("[{state:8}]"), "[OK      ]");
        assert_eq!(r("[{state:*^7}]"), "[**OK***]");
        assert_eq!(r("[{check:.3}]"), "[pin]");
        assert_eq!(r("[{dest:>6.2s}]"), "[    we]");
        assert_eq!(r("[{state:04}]"), "[OK00]");
        assert_eq!(r("[{state!s:>3}]"), "[ OK]");
        assert_eq!(r("[{oops:>3}]"), "[<no substitution>]");
        assert_eq!(r("{state:bad spec}"), "OK");
        assert_eq!(r("[{state:>99999999999}]").len(), SUBJECT_MAX + 2);
        // A brace that opens nothing stays as written.
        assert_eq!(r("a { b"), "a { b");
        assert_eq!(r("a } b"), "a } b");
    }

    #[test]
    fn state_style_renders_each_follow_up_with_its_own_state() {
        let mut cfg = email_config();
        cfg.subject_tpl = "[x] {state}: {check} on {dest}".into();
        cfg.subject_style = SubjectStyle::State;
        let c = Composer::new(&cfg).unwrap();
        let p = notice(TransitionKind::Problem, Status::Critical, "DOWN");
        let subj = c.problem_subject(&p);
        let root = header(&text(&c.transition(&p, None, 5).unwrap()), "Message-ID")[0].to_string();
        let r = text(
            &c.transition(
                &notice(TransitionKind::Recovery, Status::Ok, "UP"),
                Some(&subj),
                6,
            )
            .unwrap(),
        );
        assert_eq!(header(&r, "Subject"), vec!["[x] OK: check_x on web1"]);
        assert_eq!(header(&r, "In-Reply-To"), vec![root.as_str()]);
        let f = notice(TransitionKind::FlappingStart, Status::Critical, "");
        assert_eq!(
            c.follow_up_subject(&f, &subj),
            "[x] FLAPPING: check_x on web1"
        );
        let u = notice(TransitionKind::Update, Status::Warning, "");
        assert_eq!(
            c.follow_up_subject(&u, &subj),
            "[x] WARNING: check_x on web1"
        );
        assert_eq!(header(&r, "References"), vec![root.as_str()]);
    }

    #[test]
    fn problem_update_recovery_are_threaded() {
        let c = Composer::new(&email_config()).unwrap();
        let p = text(
            &c.transition(
                &notice(TransitionKind::Problem, Status::Critical, "DOWN"),
                None,
                5,
            )
            .unwrap(),
        );
        let root = header(&p, "Message-ID")[0].to_string();
        assert!(root.starts_with("<picomon."), "{root}");
        assert_eq!(
            header(&p, "Subject"),
            vec!["[picomon] CRITICAL: check_x on web1 <no substitution>"]
        );
        assert!(header(&p, "In-Reply-To").is_empty());
        assert_eq!(header(&p, "Auto-Submitted"), vec!["auto-generated"]);
        assert_eq!(header(&p, "MIME-Version"), vec!["1.0"]);
        let body = p.split("\r\n\r\n").nth(1).unwrap();
        assert!(body.starts_with("CRITICAL since "), "{body}");
        assert!(p.contains("\r\n\r\nDOWN\r\n"), "{p}");

        let subj = c.problem_subject(&notice(TransitionKind::Problem, Status::Critical, ""));
        let r = text(
            &c.transition(
                &notice(TransitionKind::Recovery, Status::Ok, "UP"),
                Some(&subj),
                6,
            )
            .unwrap(),
        );
        assert_eq!(header(&r, "In-Reply-To"), vec![root.as_str()]);
        assert_eq!(header(&r, "References"), vec![root.as_str()]);
        assert_ne!(header(&r, "Message-ID")[0], root);
        assert_eq!(
            header(&r, "Subject"),
            vec!["Re: [picomon] CRITICAL: check_x on web1 <no substitution>"]
        );
        assert!(
            r.contains("OK: recovered after 0:03:05 (4 failed runs)"),
            "{r}"
        );
    }

    #[test]
    fn reminders_escalations_and_flapping_say_what_happened_in_the_thread() {
        let c = Composer::new(&email_config()).unwrap();
        let subj = c.problem_subject(&notice(TransitionKind::Problem, Status::Critical, ""));
        let root = c.problem_id("plugin check_x", 1_700_000_000_000_000);
        let mut r = notice(TransitionKind::Reminder, Status::Critical, "still DOWN");
        r.count = 2;
        let m = unfolded(&c.transition(&r, Some(&subj), 7).unwrap());
        assert_eq!(header(&m, "In-Reply-To"), vec![root.as_str()]);
        assert!(header(&m, "Subject")[0].starts_with("Re: [picomon] CRITICAL"));
        let body = m.split_once("\r\n\r\n").unwrap().1;
        assert!(
            body.starts_with("reminder 2: still CRITICAL after 0:03:05, 4 failed runs (since "),
            "{body}"
        );
        assert!(body.contains("still DOWN"), "{body}");
        assert!(header(&m, "Cc").is_empty());

        let mut e = notice(TransitionKind::Escalation, Status::Critical, "DOWN");
        e.escalated_to = vec!["Lead <lead@example.org>".into(), "ops@example.org".into()];
        let entry = c.transition(&e, Some(&subj), 8).unwrap();
        let m = unfolded(&entry);
        // The usual recipients stay in To; the lead comes in Cc, and the
        // envelope has everyone once.
        assert_eq!(header(&m, "Cc"), vec!["Lead <lead@example.org>"]);
        assert_eq!(
            entry.to,
            ["ops@example.org", "two@example.org", "lead@example.org"]
        );
        assert!(
            m.contains("escalated: CRITICAL for 0:03:05 unacknowledged (4 failed runs, since "),
            "{m}"
        );

        let mut f = notice(TransitionKind::FlappingStart, Status::Critical, "DOWN");
        f.count = 6;
        f.percent = Some(34.4);
        let thread = InThread {
            start: f.transition.at,
            subject: Some("[picomon] FLAPPING: check_x on web1"),
            root: true,
            root_id: None,
        };
        let m = unfolded(&c.transition_in(&f, thread, 9).unwrap());
        assert_eq!(
            header(&m, "Message-ID"),
            vec![c.problem_id("plugin check_x", f.transition.at).as_str()]
        );
        assert_eq!(
            header(&m, "Subject"),
            vec!["[picomon] FLAPPING: check_x on web1"]
        );
        assert!(
            m.contains("FLAPPING: changed state 6 times in the last 21 runs (34.4% state change)")
        );
        assert_eq!(
            c.flapping_subject(&f),
            "[picomon] FLAPPING: check_x on web1 <no substitution>"
        );

        let mut s = notice(TransitionKind::FlappingStop, Status::Ok, "UP");
        s.percent = Some(16.6);
        let m = unfolded(&c.transition(&s, Some("x"), 10).unwrap());
        assert!(
            m.contains("\r\n\r\nstopped flapping, now OK (16.6% state change)"),
            "{m}"
        );
        assert_eq!(header(&m, "Subject"), vec!["Re: x"]);
        // Still failing, it is the Problem: the root of the outage's thread.
        let mut s = notice(TransitionKind::FlappingStop, Status::Critical, "DOWN");
        s.percent = Some(19.0);
        let m = unfolded(&c.transition(&s, None, 11).unwrap());
        assert_eq!(header(&m, "Message-ID"), vec![root.as_str()]);
        assert!(m.contains("stopped flapping, now CRITICAL since "), "{m}");
    }

    #[test]
    fn a_parent_s_mail_lists_the_unreachable() {
        let c = Composer::new(&email_config()).unwrap();
        let mut p = notice(TransitionKind::Problem, Status::Critical, "PING CRITICAL");
        p.unreachable = vec!["web srv1 on srv1".into(), "web srv2 on srv2".into()];
        let m = unfolded(&c.transition(&p, None, 5).unwrap());
        assert!(
            m.contains(
                "(4 failed runs)\r\n\r\nUnreachable while this check fails (2; no mail of their own):\r\n  web srv1 on srv1\r\n  web srv2 on srv2\r\n\r\nPING CRITICAL\r\n"
            ),
            "{m}"
        );
        // An Update that only lists more of them says no "(was ...)".
        let mut u = notice(TransitionKind::Update, Status::Critical, "PING CRITICAL");
        u.transition.previous = Some(Status::Critical);
        u.unreachable = vec!["db on h3".into()];
        let m = unfolded(&c.transition(&u, None, 6).unwrap());
        assert!(m.contains("\r\n\r\nCRITICAL since "), "{m}");
        assert!(m.contains("  db on h3\r\n"), "{m}");
        // The digest names them too.
        let batch = vec![p.clone(), u, p.clone(), p.clone(), p.clone(), p];
        let d = unfolded(&c.digest(&batch, 7).unwrap());
        assert!(d.contains("    unreachable: web srv1 on srv1"), "{d}");
    }

    /// Every line of the head at most 998 octets.
    fn assert_short_lines(msg: &[u8]) {
        let text = String::from_utf8_lossy(msg);
        let head = text.split("\r\n\r\n").next().unwrap();
        for l in head.split("\r\n") {
            assert!(l.len() <= MAX_LINE, "{} octets: {l}", l.len());
        }
    }

    #[test]
    fn a_long_check_name_is_shortened_in_the_subject_and_whole_in_the_body() {
        let c = Composer::new(&email_config()).unwrap();
        let mut n = notice(TransitionKind::Problem, Status::Critical, "DOWN");
        n.name = "n".repeat(2000);
        n.dest = "d".repeat(1500);
        let e = c.transition(&n, None, 5).unwrap();
        assert_short_lines(&e.message);
        let subj = c.problem_subject(&n);
        assert!(subj.chars().count() <= SUBJECT_MAX, "{subj}");
        assert!(subj.contains(&format!("{}…", "n".repeat(SUBJECT_PART_MAX - 1))));
        assert!(!subj.contains(&"n".repeat(SUBJECT_PART_MAX)));
        // The body (quoted-printable, as its line is long) has it whole.
        let text = String::from_utf8(e.message.clone()).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.replace("=\r\n", "");
        assert!(body.contains(&"n".repeat(2000)), "{body}");
        // The Recovery's "Re: " subject too.
        let mut r = notice(TransitionKind::Recovery, Status::Ok, "UP");
        r.name = n.name.clone();
        let e = c.transition(&r, Some(&"x".repeat(3000)), 6).unwrap();
        assert_short_lines(&e.message);
    }

    #[test]
    fn header_lines_are_folded_to_998_octets() {
        // Spaces to fold at, a giant word, and a mix.
        let words = "word ".repeat(500);
        let giant = "g".repeat(2500);
        for value in [
            words.as_str(),
            giant.as_str(),
            &format!("{giant} {words}{giant}"),
        ] {
            let msg = format!("Subject: x\r\nX-Long: {value}\r\nTo: a@b\r\n\r\nbody {giant}\r\n");
            let folded = fold_long_header_lines(msg.as_bytes());
            assert_short_lines(&folded);
            let text = String::from_utf8(folded).unwrap();
            // Headers and body are still there, body untouched.
            assert!(text.starts_with("Subject: x\r\nX-Long:"), "{text}");
            assert!(text.contains("\r\nTo: a@b\r\n\r\nbody "), "{text}");
            assert!(text.ends_with(&format!("body {giant}\r\n")));
            // Unfolding gives the words back (folds at spaces lose nothing).
            let head = text.split("\r\n\r\n").next().unwrap().replace("\r\n", "");
            if !value.contains(&giant) {
                assert!(head.contains(value.trim_end()), "{head}");
            }
        }
        // Short lines are left alone, byte for byte.
        let msg = b"A: 1\r\nB: 2\r\n\r\nbody\r\n";
        assert_eq!(fold_long_header_lines(msg), msg.to_vec());
    }

    #[test]
    fn many_recipients_stay_within_the_line_limit() {
        let mut cfg = email_config();
        cfg.to = (0..80).map(|i| format!("person{i}@example.org")).collect();
        let c = Composer::new(&cfg).unwrap();
        let e = c.plain("s", "b", 1).unwrap();
        assert_short_lines(&e.message);
        assert_eq!(e.to.len(), 80);
    }

    #[test]
    fn a_problem_mail_says_how_to_act_and_where_the_status_page_is() {
        let c = Composer::new(&email_config())
            .unwrap()
            .with_status_page(Some("[::1]:9464".parse().unwrap()));
        let mut p = notice(TransitionKind::Problem, Status::Critical, "DOWN");
        p.name = "it's down".into();
        let m = unfolded(&c.transition(&p, None, 5).unwrap());
        assert!(
            m.contains(
                "To act on it:\r\n  picomon ack 'it'\\''s down on web1' -m 'WHY'\r\n  \
                 picomon silence 'it'\\''s down on web1' --for 2h -m 'WHY'\r\n  \
                 status page: http://[::1]:9464/\r\n"
            ),
            "{m}"
        );
        let r = unfolded(
            &c.transition(&notice(TransitionKind::Recovery, Status::Ok, "UP"), None, 6)
                .unwrap(),
        );
        assert!(!r.contains("To act on it"), "{r}");
        // A listener on port 0 has no address to give.
        let c = Composer::new(&email_config())
            .unwrap()
            .with_status_page(Some("127.0.0.1:0".parse().unwrap()));
        let m = unfolded(&c.transition(&p, None, 5).unwrap());
        assert!(!m.contains("status page"), "{m}");
    }

    #[test]
    fn message_id_is_stable_per_outage() {
        let c = Composer::new(&email_config()).unwrap();
        assert_eq!(c.problem_id("a", 1), c.problem_id("a", 1));
        assert_ne!(c.problem_id("a", 1), c.problem_id("a", 2));
        assert_ne!(c.problem_id("a", 1), c.problem_id("b", 1));
        // FNV-1a test vector: the hash must never change between builds.
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn date_is_the_composition_time() {
        let c = Composer::new(&email_config()).unwrap();
        let e = c.plain("s", "b", 1_000_000_000 * 1_000_000).unwrap();
        let m = text(&e);
        assert_eq!(header(&m, "Date"), vec!["Sun, 09 Sep 2001 01:46:40 +0000"]);
        assert_eq!(e.to, vec!["ops@example.org", "two@example.org"]);
        assert_eq!(e.from, "picomon@example.org");
    }

    #[test]
    fn bad_sender_is_only_fatal_when_there_are_recipients() {
        let mut cfg = email_config();
        cfg.addr_from = "picomon <picomon@bad host>".into();
        let err = Composer::new(&cfg).unwrap_err();
        assert!(err.contains("config.emails.addr_from"), "{err}");
        cfg.to.clear();
        let c = Composer::new(&cfg).unwrap();
        assert!(!c.has_recipients());
    }

    #[test]
    fn bad_address_names_the_setting() {
        let mut cfg = email_config();
        cfg.to.push("not an address".into());
        let err = Composer::new(&cfg).unwrap_err();
        assert!(err.contains("config.emails.to"), "{err}");
        assert!(err.contains("not an address"), "{err}");
    }
}
