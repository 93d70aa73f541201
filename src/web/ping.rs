//! `/ping/KEY/CHECK[/start | /fail | /STATUS]` on the listener: the one
//! route that writes, and only with the key of `config.ping_key_file`
//! (healthchecks.io's URL shape, so existing cron wrappers work).
//!
//! ```text
//!  GET|POST /ping/<key>/<check, URL-encoded>            success
//!                                           /start      a job starts
//!                                           /fail       failure
//!                                           /<0-255>    exit status
//!  body (at most MAX_BODY, Content-Length only): the message
//! ```
//! The loop checks the key (in constant time) and records the ping; a
//! wrong key and an unknown check both answer 404 and change nothing. The
//! key is never logged: the path is logged with `…` in its place.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::deadline::Deadline;

use crate::model::heartbeat::{Ping, PingKind};
use crate::model::Status;

use super::server::{Reply, LOOP_TIMEOUT};
use super::{AskFn, PingQuestion, Question};

/// The longest body taken (the message); a longer one is refused (413).
pub const MAX_BODY: usize = 10 * 1024;
/// A client must have sent its whole body within this.
const BODY_DEADLINE: Duration = Duration::from_secs(5);

/// Whether `path` is a ping (served here, not by the read-only routes).
pub fn is_ping(path: &str) -> bool {
    path.starts_with("/ping/")
}

/// A ping request as the path says it: the key, the check and the ping
/// (its message still empty).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub key: String,
    pub check: String,
    pub kind: Kind,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Success,
    Start,
    Fail,
    Exit(u8),
}

/// `/ping/KEY/CHECK[/SUFFIX]`, without the query; `None` for anything
/// else.
pub(crate) fn parse(path: &str) -> Option<Target> {
    let path = path.split(['?', '#']).next()?;
    let rest = path.strip_prefix("/ping/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (key, check, suffix) = match parts.as_slice() {
        [k, c] => (*k, *c, None),
        [k, c, s] => (*k, *c, Some(*s)),
        _ => return None,
    };
    let kind = match suffix {
        None | Some("") => Kind::Success,
        Some("start") => Kind::Start,
        Some("fail") => Kind::Fail,
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => Kind::Exit(n.parse().ok()?),
        Some(_) => return None,
    };
    let check = percent_decode(check)?;
    if key.is_empty() || check.is_empty() {
        return None;
    }
    Some(Target {
        key: percent_decode(key)?,
        check,
        kind,
    })
}

/// `%XX` escapes decoded; `None` for a broken escape or what is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of header `name` (any case) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A ping request once its body is read: the ping, or the answer that
/// refuses it; and its path as the log shows it (the key left out).
pub(crate) struct Request {
    asked: Result<(Target, Ping), Reply>,
    shown: String,
}

/// Reads a ping request's body (`rest` is what came with the head) within
/// [`BODY_DEADLINE`], before an answering slot is taken.
pub(crate) fn read(
    stream: &TcpStream,
    head: &str,
    rest: Vec<u8>,
    method: &str,
    path: &str,
) -> Request {
    let Some(t) = parse(path) else {
        return Request {
            asked: Err(Reply::text(404, "not found\n")),
            shown: "/ping/… (not a ping URL)".into(),
        };
    };
    let shown = format!("/ping/…/{}", crate::model::escape_control(&t.check));
    let asked = body(stream, head, rest, method).map(|message| {
        let ping = match t.kind {
            Kind::Success => Ping {
                kind: PingKind::Done(Status::Ok),
                message,
            },
            Kind::Start => Ping {
                kind: PingKind::Start,
                message,
            },
            Kind::Fail => Ping {
                kind: PingKind::Done(Status::Critical),
                message,
            },
            Kind::Exit(code) => Ping::exit(i32::from(code), message),
        };
        (t, ping)
    });
    Request { asked, shown }
}

/// The message: the body, of at most [`MAX_BODY`] bytes as its
/// `Content-Length` says; or the answer that refuses it.
fn body(stream: &TcpStream, head: &str, mut body: Vec<u8>, method: &str) -> Result<String, Reply> {
    if method != "GET" && method != "POST" {
        return Err(Reply {
            extra: "Allow: GET, POST\r\n",
            ..Reply::text(405, "a ping is GET or POST\n")
        });
    }
    if header(head, "transfer-encoding").is_some() {
        return Err(Reply::text(411, "send the message with a Content-Length\n"));
    }
    let length = match header(head, "content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(Reply::text(400, "bad Content-Length\n")),
    };
    if length > MAX_BODY {
        let text = format!("the message is limited to {MAX_BODY} bytes\n");
        return Err(Reply::text(413, &text));
    }
    let mut from = Deadline::new(stream, Instant::now() + BODY_DEADLINE);
    let mut buf = [0u8; 4096];
    while body.len() < length {
        match from.read(&mut buf) {
            Ok(n) if n > 0 => body.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Reply::text(408, "the body came too slowly\n"));
            }
            _ => return Err(Reply::text(400, "the body ended early\n")),
        }
    }
    body.truncate(length);
    Ok(String::from_utf8_lossy(&body).trim().to_string())
}

/// Asks the loop to record the ping; the answer and the path for the log.
pub(crate) fn answer(req: Request, ask: &AskFn) -> (Reply, String) {
    let (t, ping) = match req.asked {
        Ok(x) => x,
        Err(reply) => return (reply, req.shown),
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    ask(Question::Ping(PingQuestion {
        key: t.key,
        check: t.check,
        ping,
        reply: tx,
    }));
    let reply = match rx.recv_timeout(LOOP_TIMEOUT) {
        Ok(Ok(_)) => Reply::text(200, "OK\n"),
        Ok(Err(None)) => Reply::text(404, "not found\n"),
        // The key was right: the reason may be told.
        Ok(Err(Some(e))) => Reply::text(404, &format!("{e}\n")),
        Err(_) => Reply::text(503, "the daemon did not answer in time\n"),
    };
    (reply, req.shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_healthchecks_url_shapes_are_understood() {
        let t = parse("/ping/k3y/nightly%20backup").unwrap();
        assert_eq!(
            (t.key.as_str(), t.check.as_str()),
            ("k3y", "nightly backup")
        );
        assert_eq!(t.kind, Kind::Success);
        assert_eq!(parse("/ping/k/c/start").unwrap().kind, Kind::Start);
        assert_eq!(parse("/ping/k/c/fail").unwrap().kind, Kind::Fail);
        assert_eq!(parse("/ping/k/c/0").unwrap().kind, Kind::Exit(0));
        assert_eq!(parse("/ping/k/c/255?x=1").unwrap().kind, Kind::Exit(255));
        assert_eq!(parse("/ping/k/a%2Fb").unwrap().check, "a/b");
        for bad in [
            "/ping/",
            "/ping/k",
            "/ping/k/",
            "/ping//c",
            "/ping/k/c/256",
            "/ping/k/c/log",
            "/ping/k/c/start/x",
            "/ping/k/%zz",
            "/ping/k/%ff",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let head = "POST /ping/k/c HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 12";
        assert_eq!(header(head, "Content-Length"), Some("12"));
        assert_eq!(header(head, "Transfer-Encoding"), None);
    }
}
