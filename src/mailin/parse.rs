//! Reading one RFC 5322 message as an MTA hands it over: headers (folded
//! lines joined), the first text/plain part of the body (quoted-printable
//! and base64 undone), the addresses and Message-IDs in headers, and the
//! command on the first line of the reply. Pure: bytes in, values out.
//!
//! Nothing here trusts the message: header values lose their control
//! characters, every list is bounded, and anything that does not read as
//! expected is an error or `None`, never a guess.

/// At most this many header fields are read; a message with more is
/// refused as malformed.
pub const MAX_HEADERS: usize = 500;

/// At most this many characters of an `ack` or `silence` message are kept.
pub const MAX_COMMENT: usize = 500;

/// One message: header fields in order, and the body's text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Name (as written) and unfolded value, control characters removed.
    pub headers: Vec<(String, String)>,
    /// The text of the reply: the first text/plain part, decoded.
    pub text: String,
}

impl Message {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `raw` into the header section and the body (after the first
/// empty line; none: all header).
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut at = 0;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| at + p + 1);
        let line = &raw[at..end];
        if line == b"\n" || line == b"\r\n" {
            return (&raw[..at], &raw[end..]);
        }
        at = end;
    }
    (raw, &[])
}

/// A header value without control characters (TAB becomes a space).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control() && *c != '\u{2028}' && *c != '\u{2029}')
        .collect::<String>()
        .trim()
        .to_string()
}

/// The header fields of a header section: continuation lines (starting
/// with a space or TAB) are joined to their field. A leading mbox
/// `From ` line is skipped. A line that is neither a field nor a
/// continuation is an error naming its line.
pub fn headers(head: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || (n == 0 && line.starts_with("From ")) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some(last) = out.last_mut() else {
                return Err(format!("header line {} continues no field", n + 1));
            };
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("header line {} has no field name", n + 1));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("header line {} has no valid field name", n + 1));
        }
        if out.len() == MAX_HEADERS {
            return Err(format!("more than {MAX_HEADERS} header fields"));
        }
        out.push((name.to_string(), value.trim().to_string()));
    }
    for (_, v) in &mut out {
        *v = clean(v);
    }
    Ok(out)
}

/// Parses a whole message. `Err` says what is malformed.
pub fn message(raw: &[u8]) -> Result<Message, String> {
    let (head, body) = split_head(raw);
    let headers = headers(head)?;
    let text = body_text(&headers, body, 0);
    Ok(Message { headers, text })
}

/// A parameter of a header value (`boundary=...`, `charset=...`).
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

/// The text of a body: for `multipart/*`, its first text/plain part (one
/// nested multipart deep, as mail clients send `alternative` inside
/// `mixed`), else its first text/html part as text ([`html_text`]); a
/// single-part body when it is text. Transfer encodings are undone;
/// charsets other than UTF-8 are read as Latin-1 (commands are ASCII
/// either way).
fn body_text(headers: &[(String, String)], body: &[u8], depth: usize) -> String {
    let plain = text_of(headers, body, depth, "text/plain");
    if plain.trim().is_empty() {
        return html_text(&text_of(headers, body, depth, "text/html"));
    }
    plain
}

/// The text of the first part of type `want` (or an untyped single part,
/// for text/plain).
fn text_of(headers: &[(String, String)], body: &[u8], depth: usize, want: &str) -> String {
    let ctype = header_of(headers, "Content-Type");
    let main = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if main.starts_with("multipart/") {
        let Some(boundary) = param(ctype, "boundary").filter(|b| !b.is_empty()) else {
            return String::new();
        };
        if depth > 1 {
            return String::new();
        }
        for part in parts(body, &boundary) {
            let (head, part_body) = split_head(part);
            let Ok(h) = headers_of_part(head) else {
                continue;
            };
            let text = text_of(&h, part_body, depth + 1, want);
            if !text.trim().is_empty() {
                return text;
            }
        }
        return String::new();
    }
    if !(main == want || (main.is_empty() && want == "text/plain")) {
        return String::new();
    }
    let cte = header_of(headers, "Content-Transfer-Encoding").to_ascii_lowercase();
    let bytes = match cte.trim() {
        "quoted-printable" => quoted_printable(body),
        "base64" => {
            use base64::Engine;
            let compact: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default()
        }
        _ => body.to_vec(),
    };
    let charset = param(ctype, "charset")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) if charset.is_empty() || charset.contains("utf") => {
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// The text of an HTML reply (a client that sends no text part): tags
/// removed, block ends and `<br>` as line ends, a quote (`<blockquote>`)
/// marked with `>`, the common entities read.
pub fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(len) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + len].trim().to_ascii_lowercase();
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        match name {
            "br" | "p" | "div" | "tr" | "li" => out.push('\n'),
            "blockquote" if !tag.starts_with('/') => out.push_str("\n> "),
            _ => {}
        }
        rest = &rest[open + len + 1..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A part's own headers (a part with bad headers is skipped).
fn headers_of_part(head: &[u8]) -> Result<Vec<(String, String)>, String> {
    headers(head)
}

/// The parts of a multipart body between `--boundary` lines.
fn parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut at = 0;
    while at < body.len() {
        let end = body[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |p| at + p + 1);
        let line = String::from_utf8_lossy(&body[at..end]);
        let line = line.trim_end();
        if line.starts_with(&delim) {
            if let Some(s) = start {
                out.push(&body[s..at]);
            }
            if line[delim.len()..].starts_with("--") {
                return out;
            }
            start = Some(end);
        }
        at = end;
    }
    out
}

/// Undoes quoted-printable (RFC 2045 6.7): `=XX` and soft line breaks.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'=' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        match (body.get(i + 1), body.get(i + 2)) {
            (Some(b'\r'), Some(b'\n')) => i += 3,
            (Some(b'\n'), _) => i += 2,
            (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                out.push(hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0));
                i += 3;
            }
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

/// The Message-IDs (`<...>`) in a header value, in order (at most 100).
pub fn message_ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(len) = rest[open..].find('>') else {
            break;
        };
        let id = &rest[open..open + len + 1];
        // `<<a@x>`: the id is the innermost `<...>`.
        let id = &id[id.rfind('<').unwrap_or(0)..];
        if id.len() > 2 {
            out.push(id.to_string());
        }
        rest = &rest[open + len + 1..];
        if out.len() == 100 {
            break;
        }
    }
    out
}

/// The mail addresses in an address header (`From`, `Return-Path`):
/// `Name <a@b>`, `a@b (comment)`, `"Doe, Jo" <a@b>, c@d`. Lowercased:
/// picomon compares addresses without case.
pub fn addresses(value: &str) -> Vec<String> {
    // Drop quoted display names and comments first: they may hold
    // commas, `<` and `@`.
    let mut plain = String::new();
    let (mut quoted, mut depth, mut escaped) = (false, 0usize, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if quoted || depth > 0 => {}
            _ => plain.push(c),
        }
    }
    plain
        .split(',')
        .filter_map(|one| {
            let addr = match (one.rfind('<'), one.rfind('>')) {
                (Some(a), Some(b)) if a < b => &one[a + 1..b],
                _ => one,
            };
            let addr = addr.trim();
            let (local, domain) = addr.rsplit_once('@')?;
            let ok = !local.is_empty()
                && !domain.is_empty()
                && !addr.contains(char::is_whitespace)
                && !addr.contains(['<', '>', ',', ';']);
            ok.then(|| addr.to_ascii_lowercase())
        })
        .take(100)
        .collect()
}

/// What a reply asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `ack [message]`, `ack sticky [message]`.
    Ack { sticky: bool, message: String },
    /// `silence DURATION [message]`.
    Silence { secs: u64, message: String },
    /// `unack`.
    Unack,
}

/// Why a reply has no command to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoCommand {
    /// The reply's first line is not a command (it is given, shortened).
    Missing(String),
    /// A command word with something wrong after it.
    Bad(String),
}

/// The first line of the reply's own text: the first line that is not
/// blank, or `None` when the reply starts with quoted text (`>`), an
/// attribution line ("On ... wrote:") or a signature (`-- `).
pub fn first_line(text: &str) -> Option<&str> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let quoted = line.starts_with('>')
        || line == "--"
        || line.starts_with("-----")
        || (line.ends_with("wrote:") || line.ends_with("a écrit :"));
    (!quoted).then_some(line)
}

/// The command on the first line of the reply's own text (above anything
/// quoted): `ack`, `ack sticky`, `silence 2h`, `unack`, in any case,
/// optionally followed by `:`, `,` or `.` and a message.
pub fn command(text: &str) -> Result<Command, NoCommand> {
    let Some(line) = first_line(text) else {
        return Err(NoCommand::Missing(String::new()));
    };
    let word_end = line.find(char::is_whitespace).unwrap_or(line.len());
    let word = line[..word_end]
        .trim_end_matches([':', ',', '.', '!'])
        .to_ascii_lowercase();
    let rest = line[word_end..].trim();
    let comment = |s: &str| -> String {
        crate::notify::mail::compose::shorten(
            &crate::notify::mail::compose::body_safe(s.trim_start_matches([':', ',', '-', ' '])),
            MAX_COMMENT,
        )
    };
    match word.as_str() {
        "ack" => {
            let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if first
                .trim_end_matches([':', ',', '.', '!'])
                .eq_ignore_ascii_case("sticky")
            {
                Ok(Command::Ack {
                    sticky: true,
                    message: comment(after),
                })
            } else {
                Ok(Command::Ack {
                    sticky: false,
                    message: comment(rest),
                })
            }
        }
        "unack" if rest.is_empty() => Ok(Command::Unack),
        "unack" => Err(NoCommand::Bad("`unack` takes nothing after it".to_string())),
        "silence" => {
            let (dur, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if dur.is_empty() {
                return Err(NoCommand::Bad(
                    "`silence` needs a duration, as in `silence 2h`".into(),
                ));
            }
            match crate::duration::parse("silence", dur) {
                Ok(secs) if secs > 0 => Ok(Command::Silence {
                    secs,
                    message: comment(after),
                }),
                Ok(_) => Err(NoCommand::Bad(
                    "`silence` needs a duration longer than 0, as in `silence 2h`".into(),
                )),
                Err(e) => Err(NoCommand::Bad(e)),
            }
        }
        _ => Err(NoCommand::Missing(crate::notify::mail::compose::shorten(
            &crate::notify::mail::compose::body_safe(line),
            80,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_headers_are_joined_and_cleaned() {
        let m = message(
            b"From ann@example.org Mon Dec  7 04:00:00 2026\r\n\
              Subject: Re: [picomon]\r\n PROBLEM:\r\n\thttp\r\n\
              In-Reply-To:\r\n <a@b>\r\n\
              X-Evil: one\x1b[31m two\x07\r\n\
              \r\n\
              ack\r\n",
        )
        .unwrap();
        assert_eq!(m.header("subject"), Some("Re: [picomon] PROBLEM: http"));
        assert_eq!(m.header("In-Reply-To"), Some("<a@b>"));
        assert_eq!(m.header("x-evil"), Some("one[31m two"));
        assert_eq!(m.text, "ack\r\n");
    }

    #[test]
    fn malformed_headers_are_refused_with_their_line() {
        assert_eq!(
            message(b" starts folded\r\n\r\nack").unwrap_err(),
            "header line 1 continues no field"
        );
        assert_eq!(
            message(b"Subject: x\r\nno colon here\r\n\r\nack").unwrap_err(),
            "header line 2 has no field name"
        );
        assert!(message(b"Bad Name: x\r\n\r\n").is_err());
        let many = "X: y\r\n".repeat(MAX_HEADERS + 1);
        assert!(message(many.as_bytes()).unwrap_err().contains("more than"));
        // No body at all is fine: the text is empty.
        assert_eq!(message(b"Subject: x\r\n").unwrap().text, "");
    }

    #[test]
    fn in_reply_to_and_references_list_their_ids() {
        assert_eq!(
            message_ids("<a@x> <b.c@y>\t<d@z>"),
            vec!["<a@x>", "<b.c@y>", "<d@z>"]
        );
        assert_eq!(message_ids("comment (<a@x>) <b@y"), vec!["<a@x>"]);
        assert!(message_ids("no ids").is_empty());
        assert_eq!(message_ids("<<a@x>"), vec!["<a@x>"]);
    }

    #[test]
    fn addresses_are_read_past_names_and_comments() {
        assert_eq!(addresses("Ann <Ann@Example.org>"), vec!["ann@example.org"]);
        assert_eq!(
            addresses("\"Doe, <Jo>\" <jo@x.org>, bob@y.org (Bob, @home)"),
            vec!["jo@x.org", "bob@y.org"]
        );
        assert_eq!(addresses("<>"), Vec::<String>::new());
        assert_eq!(addresses("undisclosed-recipients:;"), Vec::<String>::new());
    }

    #[test]
    fn the_command_is_the_first_line_above_the_quote() {
        let ack = |sticky: bool, m: &str| {
            Ok(Command::Ack {
                sticky,
                message: m.into(),
            })
        };
        assert_eq!(
            command("\n\nack on it\n\nOn Mon, picomon wrote:\n> PROBLEM"),
            ack(false, "on it")
        );
        assert_eq!(command("Ack: looking\n"), ack(false, "looking"));
        assert_eq!(
            command("ACK sticky disk swap tonight"),
            ack(true, "disk swap tonight")
        );
        assert_eq!(command("ack"), ack(false, ""));
        assert_eq!(
            command("silence 2h deploy\n> ack"),
            Ok(Command::Silence {
                secs: 7200,
                message: "deploy".into()
            })
        );
        assert_eq!(command("unack\n"), Ok(Command::Unack));
        // Quoted text first: no command, even if one is quoted.
        assert_eq!(
            command("> ack\nack"),
            Err(NoCommand::Missing(String::new()))
        );
        assert_eq!(
            command("On Mon, Dec 7, picomon wrote:\n> x\nack"),
            Err(NoCommand::Missing(String::new()))
        );
        assert_eq!(command("Hi,\nack"), Err(NoCommand::Missing("Hi,".into())));
        assert!(matches!(command("silence"), Err(NoCommand::Bad(_))));
        assert!(matches!(command("silence soon"), Err(NoCommand::Bad(_))));
        assert!(matches!(command("unack please"), Err(NoCommand::Bad(_))));
        // Control characters do not reach the comment.
        assert_eq!(command("ack on\x1b[2J it"), ack(false, "on [2J it"));
        let long = format!("ack {}", "x".repeat(2 * MAX_COMMENT));
        let Ok(Command::Ack { message, .. }) = command(&long) else {
            panic!()
        };
        assert_eq!(message.chars().count(), MAX_COMMENT);
    }

    #[test]
    fn the_text_part_of_a_multipart_reply_is_decoded() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
            preamble\r\n--outer\r\n\
            Content-Type: multipart/alternative; boundary=inner\r\n\r\n\
            --inner\r\nContent-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            ack sticky caf=C3=A9 is=\r\n open\r\n--inner\r\n\
            Content-Type: text/html\r\n\r\n<p>no</p>\r\n--inner--\r\n--outer--\r\n";
        let m = message(raw).unwrap();
        assert_eq!(
            command(&m.text),
            Ok(Command::Ack {
                sticky: true,
                message: "café is open".into()
            })
        );
        let b64 = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nYWNrIG9u\r\nIGl0\r\n";
        assert_eq!(message(b64).unwrap().text, "ack on it");
        // A client that sends HTML only: the text of its first lines.
        let html = b"Content-Type: text/html\r\n\r\n<html><body><div>ack&nbsp;on it<br></div>\
            <div class=\"gmail_quote\">On Mon, picomon wrote:<blockquote>ack</blockquote></div></body></html>";
        assert_eq!(
            command(&message(html).unwrap().text),
            Ok(Command::Ack {
                sticky: false,
                message: "on it".into()
            })
        );
        let quoted_first = b"Content-Type: text/html\r\n\r\n<blockquote>ack</blockquote>";
        assert_eq!(
            command(&message(quoted_first).unwrap().text),
            Err(NoCommand::Missing(String::new()))
        );
        let image = b"Content-Type: image/png\r\n\r\nack";
        assert_eq!(message(image).unwrap().text, "");
    }
}
