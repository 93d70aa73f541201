//! `redis(url, #{ stream | list | channel, ... })`: every result, as the
//! `json_lines` object, into Redis: `XADD key MAXLEN ~ N * record JSON` to
//! a stream, `LPUSH key JSON` to a list (a consumer's `BRPOP` takes them
//! oldest first), or `PUBLISH key JSON` to a channel.
//!
//! RESP is a few lines, so it is spoken here over a `TcpStream` (rustls
//! for `rediss://`) rather than through a client crate. A batch goes in one
//! `MULTI` ... `EXEC`: Redis applies all of it or none, so a connection
//! lost in the middle leaves nothing half-written to send again. Only a
//! connection lost after Redis ran the `EXEC` and before its answer arrived
//! makes the batch arrive twice. The connection is kept between batches
//! and made again after any error.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::result::PassiveResult;
use super::sink::{DeliveryError, Sink};

/// Where the records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisDest {
    /// A stream, trimmed to about `maxlen` entries (0: never trimmed).
    Stream {
        key: String,
        maxlen: u64,
    },
    List {
        key: String,
    },
    Channel {
        key: String,
    },
}

impl RedisDest {
    /// `stream:KEY`, `list:KEY`, `channel:KEY`, for the dump and logs.
    pub fn describe(&self) -> String {
        match self {
            RedisDest::Stream { key, .. } => format!("stream:{key}"),
            RedisDest::List { key } => format!("list:{key}"),
            RedisDest::Channel { key } => format!("channel:{key}"),
        }
    }
}

/// A `redis://` or `rediss://` URL, without credentials (they come from
/// `secret_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `SELECT`ed after connecting (the URL's path, `/2`).
    pub db: u32,
}

impl RedisUrl {
    /// Parses `redis[s]://host[:port][/db]`; the error says what to write.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("rediss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("redis://") {
            (false, r)
        } else {
            return Err(format!(
                "url `{url}` must start with redis:// or rediss:// (TLS)"
            ));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(format!(
                "url `{url}` holds credentials: put `PASSWORD` or `USER PASSWORD` in a file given as secret_file, so the password stays out of the config"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
                let port = p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
                    format!("url `{url}`: port `{p}` is not a number from 1 to 65535")
                })?;
                (h, port)
            }
            _ => (authority, 6379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("url `{url}` names no server"));
        }
        let db = match path.trim_end_matches('/') {
            "" => 0,
            p => p.parse::<u32>().map_err(|_| {
                format!("url `{url}`: the path must be a database number (`/0`), not `/{p}`")
            })?,
        };
        Ok(RedisUrl {
            tls,
            host: host.to_string(),
            port,
            db,
        })
    }
}

/// `secret_file`'s first line: `PASSWORD`, or `USER PASSWORD` (Redis 6
/// ACL users); a password with a space needs the user (`default`).
pub fn auth_from_secret(line: &str) -> Option<(Option<String>, String)> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    Some(match line.split_once(char::is_whitespace) {
        Some((user, pw)) => (Some(user.to_string()), pw.trim_start().to_string()),
        None => (None, line.to_string()),
    })
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub struct Redis {
    url: RedisUrl,
    auth: Option<(Option<String>, String)>,
    dest: RedisDest,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
    batch: usize,
    conn: Option<BufReader<Box<dyn Stream>>>,
}

impl Redis {
    /// `ca` is read now (a wrong file fails at start); with TLS and no
    /// `ca`, the public web roots are trusted.
    pub fn new(
        url: RedisUrl,
        auth: Option<(Option<String>, String)>,
        dest: RedisDest,
        ca: Option<&Path>,
        timeout: Duration,
        batch: usize,
    ) -> Result<Redis, String> {
        let tls = match url.tls {
            true => Some(crate::net::tls::client_config(ca)?),
            false => None,
        };
        Ok(Redis {
            url,
            auth,
            dest,
            tls,
            timeout,
            batch: batch.max(1),
            conn: None,
        })
    }

    fn endpoint(&self) -> String {
        let scheme = if self.url.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}:{}", self.url.host, self.url.port)
    }

    /// Connects, says who we are (`AUTH`) and picks the database.
    fn connect(&self) -> io::Result<BufReader<Box<dyn Stream>>> {
        let addrs = (self.url.host.as_str(), self.url.port).to_socket_addrs()?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        let mut sock = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let sock = sock.ok_or(last)?;
        sock.set_read_timeout(Some(self.timeout))?;
        sock.set_write_timeout(Some(self.timeout))?;
        let _ = sock.set_nodelay(true);
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(sock),
            Some(cfg) => {
                let name = ServerName::try_from(self.url.host.clone())
                    .map_err(|e| io::Error::other(format!("bad TLS server name: {e}")))?;
                let conn = ClientConnection::new(Arc::clone(cfg), name)
                    .map_err(|e| io::Error::other(format!("TLS set-up: {e}")))?;
                Box::new(StreamOwned::new(conn, sock))
            }
        };
        let mut conn = BufReader::new(stream);
        let mut hello = Vec::new();
        let mut expected = 0;
        if let Some((user, pw)) = &self.auth {
            let mut args = vec!["AUTH"];
            args.extend(user.as_deref());
            args.push(pw);
            command(&mut hello, &args);
            expected += 1;
        }
        if self.url.db != 0 {
            command(&mut hello, &["SELECT", &self.url.db.to_string()]);
            expected += 1;
        }
        if expected > 0 {
            conn.get_mut().write_all(&hello)?;
            conn.get_mut().flush()?;
            for _ in 0..expected {
                if let Reply::Error(e) = read_reply(&mut conn, 0)? {
                    return Err(io::Error::other(redis_error_hint(&e)));
                }
            }
        }
        Ok(conn)
    }

    /// The commands of one batch, in one `MULTI` ... `EXEC`.
    fn request(&self, batch: &[PassiveResult]) -> Vec<u8> {
        let mut buf = Vec::new();
        command(&mut buf, &["MULTI"]);
        for r in batch {
            let json = r.to_json();
            match &self.dest {
                RedisDest::Stream { key, maxlen: 0 } => {
                    command(&mut buf, &["XADD", key, "*", "record", &json])
                }
                RedisDest::Stream { key, maxlen } => command(
                    &mut buf,
                    &[
                        "XADD",
                        key,
                        "MAXLEN",
                        "~",
                        &maxlen.to_string(),
                        "*",
                        "record",
                        &json,
                    ],
                ),
                RedisDest::List { key } => command(&mut buf, &["LPUSH", key, &json]),
                RedisDest::Channel { key } => command(&mut buf, &["PUBLISH", key, &json]),
            }
        }
        command(&mut buf, &["EXEC"]);
        buf
    }

    fn send(&mut self, batch: &[PassiveResult]) -> Result<(), String> {
        let endpoint = self.endpoint();
        if self.conn.is_none() {
            self.conn = Some(
                self.connect()
                    .map_err(|e| format!("cannot reach {endpoint}: {e}"))?,
            );
        }
        let request = self.request(batch);
        let conn = self.conn.as_mut().expect("connected above");
        let lost = |e: io::Error| format!("{endpoint}: connection lost: {e}");
        conn.get_mut().write_all(&request).map_err(lost)?;
        conn.get_mut().flush().map_err(lost)?;
        // MULTI, then QUEUED (or an error) per command, then EXEC's array.
        let mut refused = None;
        for _ in 0..=batch.len() {
            if let Reply::Error(e) = read_reply(conn, 0).map_err(lost)? {
                refused.get_or_insert(e);
            }
        }
        let exec = read_reply(conn, 0).map_err(lost)?;
        let fail = |e: &str| format!("{endpoint} refused the results: {}", redis_error_hint(e));
        if let Some(e) = refused {
            return Err(fail(&e));
        }
        match exec {
            Reply::Array(items) => match items.into_iter().find_map(|r| match r {
                Reply::Error(e) => Some(e),
                _ => None,
            }) {
                Some(e) => Err(fail(&e)),
                None => Ok(()),
            },
            Reply::Error(e) => Err(fail(&e)),
            other => Err(format!("{endpoint}: unexpected answer to EXEC: {other:?}")),
        }
    }
}

impl Sink for Redis {
    fn batch_size(&self) -> usize {
        self.batch
    }

    fn deliver(&mut self, batch: &[PassiveResult]) -> Result<usize, DeliveryError> {
        self.send(batch).map(|()| 0).map_err(|e| {
            // The next attempt starts on a fresh connection.
            self.conn = None;
            DeliveryError::none(e)
        })
    }
}

/// Appends one command as a RESP array of bulk strings.
fn command(buf: &mut Vec<u8>, args: &[&str]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
}

/// What Redis answers (RESP 2).
#[derive(Debug, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
    Nil,
}

/// The largest reply read: picomon's commands get short answers, so more
/// is a stream that is not Redis.
const MAX_REPLY: usize = 1 << 20;

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.by_ref()
        .take(MAX_REPLY as u64)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad(
            "a reply line without CRLF: is this a Redis server?".into()
        ));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| bad("a reply line that is not UTF-8".into()))
}

fn read_reply(r: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    if depth > 8 {
        return Err(bad("replies nested too deep".into()));
    }
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let int = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| bad(format!("not a number in a reply: {s:?}")))
    };
    Ok(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(int(rest)?),
        "$" => match int(rest)? {
            n if n < 0 => Reply::Bulk(None),
            n if n as usize > MAX_REPLY => return Err(bad(format!("a reply of {n} bytes"))),
            n => {
                let mut data = vec![0; n as usize + 2];
                r.read_exact(&mut data)?;
                data.truncate(n as usize);
                Reply::Bulk(Some(data))
            }
        },
        "*" => match int(rest)? {
            n if n < 0 => Reply::Nil,
            n if n > 100_000 => return Err(bad(format!("an array of {n} replies"))),
            n => Reply::Array(
                (0..n)
                    .map(|_| read_reply(r, depth + 1))
                    .collect::<io::Result<_>>()?,
            ),
        },
        _ => {
            return Err(bad(format!(
                "unexpected reply {:?}: is this a Redis server?",
                line.chars().take(40).collect::<String>()
            )))
        }
    })
}

/// Redis's error with what to do about the usual ones.
fn redis_error_hint(e: &str) -> String {
    let hint = if e.starts_with("NOAUTH") {
        " (the server wants a password: give secret_file)"
    } else if e.starts_with("WRONGPASS") || e.contains("invalid password") {
        " (check the password, or `USER PASSWORD`, in secret_file)"
    } else if e.starts_with("WRONGTYPE") {
        " (the key holds another type: name another stream/list, or delete the key)"
    } else if e.starts_with("NOPERM") {
        " (the Redis user may not run this command on this key: see its ACL)"
    } else {
        ""
    };
    format!("{e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse_credentials() {
        assert_eq!(
            RedisUrl::parse("redis://127.0.0.1:6380/2"),
            Ok(RedisUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 6380,
                db: 2
            })
        );
        let u = RedisUrl::parse("rediss://[::1]").expect("v6");
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.db),
            (true, "::1", 6379, 0)
        );
        assert!(RedisUrl::parse("redis://:pw@host")
            .unwrap_err()
            .contains("secret_file"));
        assert!(RedisUrl::parse("http://host")
            .unwrap_err()
            .contains("redis://"));
        assert!(RedisUrl::parse("redis://host:x")
            .unwrap_err()
            .contains("port"));
        assert!(RedisUrl::parse("redis://host/abc")
            .unwrap_err()
            .contains("database"));
    }

    #[test]
    fn secret_is_password_or_user_and_password() {
        assert_eq!(auth_from_secret("s3cret\n"), Some((None, "s3cret".into())));
        assert_eq!(
            auth_from_secret("picomon pass word"),
            Some((Some("picomon".into()), "pass word".into()))
        );
        assert_eq!(auth_from_secret("  "), None);
    }

    #[test]
    fn replies_parse_and_hostile_ones_are_refused() {
        let mut r = io::Cursor::new(b"*3\r\n+QUEUED\r\n$2\r\nab\r\n:-4\r\n-ERR x\r\n".to_vec());
        assert_eq!(
            read_reply(&mut r, 0).expect("array"),
            Reply::Array(vec![
                Reply::Simple("QUEUED".into()),
                Reply::Bulk(Some(b"ab".to_vec())),
                Reply::Int(-4)
            ])
        );
        assert_eq!(
            read_reply(&mut r, 0).expect("error"),
            Reply::Error("ERR x".into())
        );
        for hostile in [
            &b"$99999999999\r\n"[..],
            b"HTTP/1.1 200 OK\r\n",
            b"+no end",
            b"",
        ] {
            assert!(read_reply(&mut io::Cursor::new(hostile.to_vec()), 0).is_err());
        }
        let deep = "*1\r\n".repeat(20);
        assert!(read_reply(&mut io::Cursor::new(deep.into_bytes()), 0).is_err());
    }

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        let mut buf = Vec::new();
        command(&mut buf, &["LPUSH", "k", "a b\r\n"]);
        assert_eq!(buf, b"*3\r\n$5\r\nLPUSH\r\n$1\r\nk\r\n$5\r\na b\r\n\r\n");
    }
}
