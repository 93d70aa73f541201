//! picomon's HTTP/1.1 client, shared by the passive outputs, the
//! channels, the heartbeat, `peer()`, the `http*` probes and scripts'
//! `http_get`: one request per connection (`Connection: close`), a body
//! sent with its `Content-Length`, an answer read by `Content-Length`,
//! chunks or to the end, TLS through rustls (the trust each caller sets
//! up), and one deadline over the whole exchange: name lookup, connect,
//! handshake, request and answer. Any HTTP status is an answer: the caller
//! decides what it means. No proxy from the environment (a probe talks to
//! the host it names), no cookies, no compression.
//!
//! Header names and values are checked before anything is sent, so a
//! value with a line break (a header injection) is an error, never a
//! second header.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The most a status line and headers may take.
const HEAD_LIMIT: u64 = 64 * 1024;
/// The most a chunk-size line or a trailer line may take.
const LINE_LIMIT: u64 = 4096;

/// A TLS client certificate: `client_cert` (PEM, the certificate first,
/// then any intermediates) and `client_key` (PEM private key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ClientTls {
    /// `client_cert` and `client_key` of `func()` (empty = not given): both
    /// or neither.
    pub fn pair(
        func: &str,
        cert: Option<String>,
        key: Option<String>,
    ) -> Result<Option<ClientTls>, String> {
        match (
            cert.filter(|s| !s.is_empty()),
            key.filter(|s| !s.is_empty()),
        ) {
            (Some(cert), Some(key)) => Ok(Some(ClientTls {
                cert: cert.into(),
                key: key.into(),
            })),
            (None, None) => Ok(None),
            _ => Err(format!(
                "{func}(): client_cert and client_key go together: give both PEM files, or neither"
            )),
        }
    }
}

/// A client whose every request is bounded by `timeout`, trusting `ca`
/// or the web roots, showing `client`'s certificate when the server asks
/// (TLS as [`tls_config`] sets it up).
pub fn client_agent(
    timeout: Duration,
    ca: Option<&Path>,
    client: Option<&ClientTls>,
) -> Result<Client, String> {
    let tls = match (ca, client) {
        (None, None) => None,
        _ => Some(tls_config(ca, client)?),
    };
    Ok(Client::new(timeout, tls))
}

/// TLS for a client of a server: with `ca`, it trusts exactly the
/// certificates in that PEM file (a monitoring server with its own CA, as
/// Icinga 2 has), else the public web roots; with `client`, it shows that
/// certificate when the server asks (Icinga 2's `client_cn`, a receiver
/// that only takes known clients). Files are read now, so a wrong path or
/// a file that is not PEM is an error at start, naming the file.
pub fn tls_config(
    ca: Option<&Path>,
    client: Option<&ClientTls>,
) -> Result<Arc<ClientConfig>, String> {
    let roots = match ca {
        Some(ca) => ca_roots(ca)?,
        None => web_roots(),
    };
    let client = client.map(client_cert).transpose()?;
    super::tls::config(roots, client)
}

/// The public web roots (Mozilla's, built in).
fn web_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// TLS trusting the web roots: what a client given no TLS set-up uses.
fn default_tls() -> Result<Arc<ClientConfig>, Error> {
    static TLS: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    TLS.get_or_init(|| super::tls::config(web_roots(), None))
        .clone()
        .map_err(Error::other)
}

/// Reads a client certificate chain and its key.
fn client_cert(
    c: &ClientTls,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = super::tls::pem_certs("client_cert", &c.cert)?;
    let shown = c.key.display();
    let pem = crate::secret::read(&c.key).map_err(|e| {
        format!("cannot read client_key {shown}: {e} (give the PEM private key of client_cert, readable by picomon's user only)")
    })?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!("client_key {shown} holds no usable private key ({e}): it needs a -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block")
    })?;
    Ok((chain, key))
}

/// The certificates of a CA file, each checked to be usable as a trust
/// anchor, so a bad file is an error at start rather than at every post.
fn ca_roots(ca: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in super::tls::pem_certs("CA file", ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("CA file {}: unusable CA certificate: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// The first line of `path`, without its newline: secrets stay out of the
/// config (and out of logs and command lines).
pub fn read_secret(path: &Path) -> Result<String, String> {
    let text = crate::secret::read_to_string(path).map_err(|e| {
        format!(
            "cannot read password file {}: {e} (it should hold the password on its first line, readable by picomon's user only)",
            path.display()
        )
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// The text of a request that got no answer, for logs and the dump.
pub fn describe(url: &str, err: Error) -> String {
    format!("cannot reach {url}: {err}")
}

/// The text of an answer with an unwanted status, with the start of its
/// body (servers say there what was wrong), bounded.
pub fn refusal(url: &str, resp: Response) -> String {
    format!(
        "{url} answered HTTP {}: {}",
        resp.status(),
        body_excerpt(resp)
    )
}

/// The first 300 characters of a response body, trimmed.
pub fn body_excerpt(resp: Response) -> String {
    let body = resp.into_prefix(64 * 1024).unwrap_or_default();
    let body = String::from_utf8_lossy(&body);
    body.trim().chars().take(300).collect()
}

/// `Authorization: Basic ...` for `user:password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Why a request got no answer.
#[derive(Debug)]
pub struct Error {
    timeout: bool,
    text: String,
}

impl Error {
    fn other(text: impl Into<String>) -> Error {
        Error {
            timeout: false,
            text: text.into(),
        }
    }

    /// True when the request ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.timeout
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        let timeout = matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        );
        let text = match timeout {
            true => "timed out".to_string(),
            false if e.kind() == io::ErrorKind::UnexpectedEof => {
                "connection lost: the server closed it before its answer was complete".into()
            }
            false => e.to_string(),
        };
        Error { timeout, text }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// An HTTP client: the bound of each request, the TLS set-up for https
/// (`None`: the web roots), how many redirects a GET follows, and
/// optionally the addresses to connect to whatever the URL's host (a
/// probe resolves for its address family within its own deadline).
#[derive(Clone, Debug)]
pub struct Client {
    timeout: Duration,
    tls: Option<Arc<ClientConfig>>,
    redirects: u32,
    addrs: Option<Vec<SocketAddr>>,
}

impl Client {
    pub fn new(timeout: Duration, tls: Option<Arc<ClientConfig>>) -> Client {
        Client {
            timeout,
            tls,
            redirects: 0,
            addrs: None,
        }
    }

    /// Follows up to `n` redirects of a GET (none by default: the 3xx is
    /// the answer).
    pub fn redirects(mut self, n: u32) -> Client {
        self.redirects = n;
        self
    }

    /// Connects only to `addrs`, whatever the URL's host name.
    pub fn connect_to(mut self, addrs: Vec<SocketAddr>) -> Client {
        self.addrs = Some(addrs);
        self
    }

    pub fn get(&self, url: &str) -> Request<'_> {
        self.request("GET", url)
    }

    pub fn post(&self, url: &str) -> Request<'_> {
        self.request("POST", url)
    }

    pub fn put(&self, url: &str) -> Request<'_> {
        self.request("PUT", url)
    }

    fn request(&self, method: &'static str, url: &str) -> Request<'_> {
        Request {
            client: self,
            method,
            url: url.to_string(),
            headers: Vec::new(),
            timeout: self.timeout,
        }
    }
}

/// One request being put together.
pub struct Request<'c> {
    client: &'c Client,
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl Request<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Bounds this request by `t` instead of the client's timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sends the request without a body.
    pub fn call(self) -> Result<Response, Error> {
        self.run(None)
    }

    /// Sends the request with `body`.
    pub fn send(self, body: impl AsRef<[u8]>) -> Result<Response, Error> {
        self.run(Some(body.as_ref()))
    }

    /// Sends `pairs` as an HTML form (`application/x-www-form-urlencoded`).
    pub fn send_form(self, pairs: &[(&str, &str)]) -> Result<Response, Error> {
        let body = form(pairs);
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .send(body)
    }

    fn run(self, body: Option<&[u8]>) -> Result<Response, Error> {
        for (name, value) in &self.headers {
            check_header(name, value)?;
        }
        let until = Instant::now() + self.timeout;
        let mut url = self.url.clone();
        let mut hops = 0;
        loop {
            let resp = self.once(&url, body, until)?;
            let redirect = self.method == "GET"
                && hops < self.client.redirects
                && matches!(resp.status, 301 | 302 | 303 | 307 | 308);
            match resp.header("location") {
                Some(to) if redirect => {
                    url = join(&url, to)?;
                    hops += 1;
                }
                _ => return Ok(resp),
            }
        }
    }

    /// One exchange with the server `url` names.
    fn once(&self, url: &str, body: Option<&[u8]>, until: Instant) -> Result<Response, Error> {
        let u = Url::parse(url)?;
        let addrs = match &self.client.addrs {
            Some(a) => a.clone(),
            None => {
                super::resolve::lookup(u.host, u.port, until, self.timeout).map_err(Error::other)?
            }
        };
        let sock = connect(&addrs, until)?;
        let timed = Timed { sock, until };
        let mut conn = match u.https {
            false => Conn::Plain(timed),
            true => {
                let tls = match &self.client.tls {
                    Some(t) => t.clone(),
                    None => default_tls()?,
                };
                let name = ServerName::try_from(u.host.to_string()).map_err(|_| {
                    Error::other(format!("{} is not a valid TLS server name", u.host))
                })?;
                let tls = ClientConnection::new(tls, name)
                    .map_err(|e| Error::other(format!("TLS: {e}")))?;
                Conn::Tls(Box::new(StreamOwned::new(tls, timed)))
            }
        };
        let head = self.head(&u, body);
        conn.write_all(head.as_bytes()).map_err(tls_error)?;
        if let Some(b) = body {
            conn.write_all(b).map_err(tls_error)?;
        }
        conn.flush().map_err(tls_error)?;
        read_response(BufReader::new(conn), self.method == "HEAD")
    }

    /// The request line and headers.
    fn head(&self, u: &Url, body: Option<&[u8]>) -> String {
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let mut h = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method,
            u.target,
            u.host_header()
        );
        if !has("user-agent") {
            h.push_str(concat!(
                "User-Agent: picomon/",
                env!("CARGO_PKG_VERSION"),
                "\r\n"
            ));
        }
        if !has("accept") {
            h.push_str("Accept: */*\r\n");
        }
        h.push_str("Connection: close\r\n");
        if let Some(b) = body {
            h.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        for (k, v) in &self.headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        h
    }
}

/// A header name must be a token and a value must hold no line break or
/// other control character: nothing a config or a message says can start
/// a header of its own. The value is never quoted (it may be a secret).
fn check_header(name: &str, value: &str) -> Result<(), Error> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Error::other(format!(
            "header name {name:?} is not a valid HTTP header name"
        )));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Error::other(format!(
            "the value of header {name} holds a line break or another control character"
        )));
    }
    Ok(())
}

/// `a=1&b=x+y`: form encoding (WHATWG's `application/x-www-form-urlencoded`).
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The parts of an `http://` or `https://` URL a request needs.
#[derive(Debug, PartialEq)]
struct Url<'a> {
    https: bool,
    /// Without the brackets of an IPv6 address.
    host: &'a str,
    port: u16,
    /// Path and query, at least `/`.
    target: String,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Url<'a>, Error> {
        let bad = |why: &str| Error::other(format!("{url:?} is not a usable URL: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("it needs http:// or https://"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("only http:// and https:// are supported")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad(
                "a user name or password in the URL is not sent; use the setting for credentials",
            ));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| bad("unclosed [ in the host"))?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad("it names no host"));
        }
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
            None if https => 443,
            None => 80,
        };
        let tail = tail.split('#').next().unwrap_or_default();
        if tail.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad(
                "it holds a space or a control character (percent-encode them)",
            ));
        }
        let target = match tail.starts_with('/') {
            true => tail.to_string(),
            false => format!("/{tail}"),
        };
        Ok(Url {
            https,
            host,
            port,
            target,
        })
    }

    /// The `Host` header: the port only when it is not the scheme's.
    fn host_header(&self) -> String {
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.to_string(),
        };
        match (self.https, self.port) {
            (false, 80) | (true, 443) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }
}

/// Where a redirect goes: `to` is absolute, or relative to `base`.
fn join(base: &str, to: &str) -> Result<String, Error> {
    if to.contains("://") {
        return Ok(to.to_string());
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..end]);
    if let Some(path) = to.strip_prefix("//") {
        return Ok(format!("{scheme}://{path}"));
    }
    if to.starts_with('/') {
        return Ok(format!("{origin}{to}"));
    }
    let path = rest[end..].split(['?', '#']).next().unwrap_or_default();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    Ok(format!("{origin}{dir}{to}"))
}

/// Connects to the first of `addrs` that answers by `until`.
fn connect(addrs: &[SocketAddr], until: Instant) -> Result<TcpStream, Error> {
    let mut last = Error::other("no address to connect to");
    for a in addrs {
        let left = until.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(io::Error::from(io::ErrorKind::TimedOut).into());
        }
        match TcpStream::connect_timeout(a, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Error::from(e),
        }
    }
    Err(last)
}

/// A socket read and written until `until` and not after: every call gets
/// only what is left of one fixed instant. (It owns its socket, unlike
/// [`crate::deadline::Deadline`], as a response body outlives the call
/// that made it.)
struct Timed {
    sock: TcpStream,
    until: Instant,
}

impl Timed {
    fn left(&self) -> io::Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left)
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.set_read_timeout(Some(self.left()?))?;
        self.sock.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.set_write_timeout(Some(self.left()?))?;
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// A connection, plain or TLS.
enum Conn {
    Plain(Timed),
    Tls(Box<StreamOwned<ClientConnection, Timed>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A handshake failure reads as one (rustls reports it as `InvalidData`).
fn tls_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData => Error::other(format!("TLS: {e}")),
        _ => e.into(),
    }
}

/// An answer: status, headers, and the body still to be read.
pub struct Response {
    status: u16,
    version: &'static str,
    reason: String,
    headers: Vec<(String, String)>,
    body: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.version, self.status, self.reason)
    }
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The reason phrase the server gave (`OK`), printable.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The first header `name` (any case), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, to be read (to its end, or as far as the caller wants).
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        self.body
    }

    /// The body's first `limit` bytes (the rest is not read).
    pub fn into_prefix(self, limit: u64) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.body.take(limit).read_to_end(&mut out)?;
        Ok(out)
    }

    /// The whole body as text; an error when it is longer than `limit`.
    pub fn into_text(self, limit: u64) -> Result<String, Error> {
        let body = self.into_prefix(limit + 1)?;
        if body.len() as u64 > limit {
            return Err(Error::other(format!(
                "the answer is longer than {limit} bytes"
            )));
        }
        String::from_utf8(body).map_err(|_| Error::other("the answer is not UTF-8 text"))
    }
}

/// Reads the status line and headers (skipping `100 Continue` and other
/// interim answers) and frames the body.
fn read_response<R: BufRead + Send + 'static>(
    mut r: R,
    head_only: bool,
) -> Result<Response, Error> {
    let (status, version, reason, headers) = loop {
        let mut head = Vec::new();
        let mut limited = (&mut r).take(HEAD_LIMIT);
        loop {
            let before = head.len();
            let n = limited.read_until(b'\n', &mut head).map_err(tls_error)?;
            if n == 0 {
                return Err(match head.is_empty() {
                    true => Error::other("connection lost: the server closed it without answering"),
                    false => {
                        Error::other("the answer's headers are cut short or longer than 64 KiB")
                    }
                });
            }
            if head[before..] == *b"\r\n" || head[before..] == *b"\n" {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head);
        let mut lines = text.lines();
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = match parts.next() {
            Some("HTTP/1.1") => "HTTP/1.1",
            Some("HTTP/1.0") => "HTTP/1.0",
            _ => {
                return Err(Error::other(format!(
                    "not an HTTP/1 answer: {:?}",
                    printable(status_line)
                )))
            }
        };
        let status: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .filter(|c| (100..1000).contains(c))
            .ok_or_else(|| {
                Error::other(format!("bad status line: {:?}", printable(status_line)))
            })?;
        let reason = printable(parts.next().unwrap_or_default());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break (status, version, reason, headers);
    };
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let body: Box<dyn Read + Send> = if head_only || status == 204 || status == 304 {
        Box::new(io::empty())
    } else if find("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        Box::new(Chunked {
            inner: r,
            left: 0,
            done: false,
        })
    } else if let Some(len) = find("content-length") {
        let len: u64 = len
            .parse()
            .map_err(|_| Error::other(format!("bad Content-Length {:?}", printable(len))))?;
        Box::new(Exact { inner: r.take(len) })
    } else {
        Box::new(ToEnd { inner: r })
    };
    Ok(Response {
        status,
        version,
        reason,
        headers,
        body,
    })
}

/// Text safe for a log line: printable ASCII, at most 100 characters.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(100)
        .collect()
}

/// A body of `Content-Length` bytes: ending early is an error.
struct Exact<R> {
    inner: io::Take<R>,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }
}

/// A body that ends when the server closes: a TLS server that closes
/// without saying so first (`close_notify`) is taken at its word too.
struct ToEnd<R> {
    inner: R,
}

impl<R: Read> Read for ToEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

/// A chunked body (`Transfer-Encoding: chunked`), trailers skipped.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        (&mut self.inner)
            .take(LINE_LIMIT)
            .read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad chunk framing",
            ));
        }
        Ok(String::from_utf8_lossy(&line).trim().to_string())
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.left == 0 {
                while !self.line()?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 && !self.line()?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad chunk framing",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(raw: &str) -> Result<Response, Error> {
        read_response(io::Cursor::new(raw.as_bytes().to_vec()), false)
    }

    #[test]
    fn urls_give_host_port_and_target() {
        let u = Url::parse("https://Example.org/a/b?c=1#frag").unwrap();
        assert_eq!(
            (u.https, u.host, u.port, u.target.as_str()),
            (true, "Example.org", 443, "/a/b?c=1")
        );
        assert_eq!(u.host_header(), "Example.org");
        let u = Url::parse("http://[::1]:9464?x").unwrap();
        assert_eq!((u.host, u.port, u.target.as_str()), ("::1", 9464, "/?x"));
        assert_eq!(u.host_header(), "[::1]:9464");
        assert_eq!(Url::parse("http://h").unwrap().target, "/");
        for (bad, why) in [
            ("ftp://h/", "only http:// and https://"),
            ("h:80/x", "needs http://"),
            ("http://u:p@h/", "user name or password"),
            ("http://h:99999/", "port"),
            ("http:///x", "no host"),
            ("http://h/a b", "space"),
            ("http://h/a\r\nX: y", "control"),
        ] {
            let e = Url::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let base = "http://h:8080/a/b?q=1";
        assert_eq!(join(base, "https://x/y").unwrap(), "https://x/y");
        assert_eq!(join(base, "/z").unwrap(), "http://h:8080/z");
        assert_eq!(join(base, "c").unwrap(), "http://h:8080/a/c");
        assert_eq!(join("http://h", "c").unwrap(), "http://h/c");
        assert_eq!(join(base, "//o/p").unwrap(), "http://o/p");
    }

    #[test]
    fn a_header_cannot_start_another() {
        assert!(check_header("X-Token", "abc def\tghi").is_ok());
        let e = check_header("X-Token", "secret\r\nX-Evil: 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line break") && !e.contains("secret"), "{e}");
        assert!(check_header("X Bad", "v").is_err());
        assert!(check_header("", "v").is_err());
    }

    #[test]
    fn forms_are_url_encoded() {
        assert_eq!(
            form(&[("user name", "a&b=c"), ("input", "h;s;0;ok é\n")]),
            "user+name=a%26b%3Dc&input=h%3Bs%3B0%3Bok+%C3%A9%0A"
        );
    }

    #[test]
    fn bodies_are_framed_by_length_chunks_or_the_end() {
        let r =
            answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhelloextra").unwrap();
        assert_eq!(
            (r.status(), r.version(), r.reason()),
            (200, "HTTP/1.1", "OK")
        );
        assert_eq!(r.header("server"), Some("x"));
        assert_eq!(r.into_text(100).unwrap(), "hello");

        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                       5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: t\r\n\r\n";
        assert_eq!(
            answer(chunked).unwrap().into_text(100).unwrap(),
            "hello, world"
        );

        let r = answer("HTTP/1.0 404 Not Found\r\n\r\nto the end").unwrap();
        assert_eq!((r.status(), r.version()), (404, "HTTP/1.0"));
        assert_eq!(r.into_text(100).unwrap(), "to the end");

        let r = answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.into_text(10).unwrap(), "");
    }

    #[test]
    fn short_long_or_broken_answers_are_errors() {
        let e = answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            .unwrap()
            .into_text(100)
            .unwrap_err();
        assert!(e.to_string().contains("connection lost"), "{e}");
        let e = answer("HTTP/1.1 200 OK\r\n\r\n0123456789")
            .unwrap()
            .into_text(4)
            .unwrap_err();
        assert!(e.to_string().contains("longer than 4 bytes"), "{e}");
        assert_eq!(
            answer("HTTP/1.1 200 OK\r\n\r\n0123456789")
                .unwrap()
                .into_prefix(4)
                .unwrap(),
            b"0123"
        );
        let e = answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .unwrap()
            .into_text(100)
            .unwrap_err();
        assert!(e.to_string().contains("bad chunk size"), "{e}");
        assert!(answer("")
            .unwrap_err()
            .to_string()
            .contains("without answering"));
        assert!(answer("SSH-2.0-OpenSSH\r\n\r\n")
            .unwrap_err()
            .to_string()
            .contains("not an HTTP/1 answer"));
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(70_000));
        assert!(answer(&huge).unwrap_err().to_string().contains("64 KiB"));
    }

    #[test]
    fn basic_auth_is_rfc7617() {
        // The example of RFC 7617 section 2.
        assert_eq!(
            super::basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
