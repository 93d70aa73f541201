//! The listener of `config.listen`: GET and HEAD only, one request per
//! connection, no keep-alive, no body read; `/ping/` alone is handed to
//! `ping.rs` (keyed, with a small body).
//!
//! ```text
//!  accept thread ──> connection thread (at most MAX_CONNECTIONS at once)
//!                      read the head: 8 KiB, 5 s in all
//!                      take an answering slot (at most MAX_CLIENTS)
//!                      read the snapshot the loop published (shared)
//!                      write the answer (10 s in all), give the slot back
//!                      close: what the client still sends is read away
//!                      for at most 1 s
//! ```
//! A slow or stuck client costs its own thread until its deadline, never
//! the loop, the accept thread nor another client. Only a client whose
//! whole request has come takes one of the few answering slots, so clients
//! that trickle their head or linger after the answer never keep Prometheus
//! out. The accept thread never waits for a client: beyond
//! [`MAX_CONNECTIONS`] it writes a short 503 without blocking and closes.
//! Nothing here waits for the loop: readers share the snapshot it
//! published last (`/metrics` rendered once per snapshot, the JSON written
//! out as it is serialised); only when nobody read for a while does the
//! first request wait for the loop to publish. `/ping/` alone asks the
//! loop, through its inbox.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::deadline::Deadline;

use super::proc_stats::ProcessStats;
use super::{metrics, page, Ask, AskFn, Snapshot};
use crate::control::Published;

/// Requests answered at once (asking the loop, rendering, writing); a
/// whole request beyond these gets a 503.
pub const MAX_CLIENTS: usize = 4;
/// Connections open at once, most of them reading a head or closing; more
/// get a 503 from the accept thread.
pub const MAX_CONNECTIONS: usize = 64;
/// The longest request head taken, in bytes: the request line, the
/// headers and the blank line that ends them (CRLF CRLF), all counted.
pub const MAX_HEAD: usize = 8 * 1024;
/// A client must have sent its whole head within this of connecting.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// The answer must be written within this in all.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// After the answer, what the client still sends is read away for at most
/// this (and at most [`DRAIN_MAX`] bytes), so closing does not turn into a
/// reset that loses the answer.
const DRAIN_DEADLINE: Duration = Duration::from_secs(1);
const DRAIN_MAX: usize = 64 * 1024;
/// How long a request waits for the loop (a snapshot after nobody read
/// for a while, a ping).
pub(super) const LOOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The running listener; dropping it stops accepting and frees the port.
pub struct Listener {
    /// As configured (port 0 stays 0 here).
    pub configured: SocketAddr,
    /// The address bound (the real port).
    pub local: SocketAddr,
    socket: Arc<TcpListener>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the blocked accept (it fails with EINVAL from now on); the
        // socket is closed when the thread's handle is dropped too.
        // SAFETY: the descriptor is kept open by our Arc.
        unsafe { libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        log::info!("http: stopped listening on {}", self.local);
    }
}

/// Binds `addr` and starts accepting.
pub fn start(addr: SocketAddr, ask: Ask, published: Published) -> anyhow::Result<Listener> {
    let socket = TcpListener::bind(addr).with_context(|| {
        format!(
            "config.listen {addr}: cannot listen there (port in use by another program, \
             or below 1024 for a non-root user?); choose another address or set config.listen = \"\""
        )
    })?;
    let local = socket.local_addr().unwrap_or(addr);
    let socket = Arc::new(socket);
    let stopping = Arc::new(AtomicBool::new(false));
    let thread = {
        let socket = Arc::clone(&socket);
        let stopping = Arc::clone(&stopping);
        std::thread::Builder::new()
            .name("http".into())
            .spawn(move || accept_loop(&socket, &stopping, &ask, &published))
            .context("cannot start the http thread")?
    };
    if local.ip().is_loopback() {
        log::info!("http: listening on {local} (/metrics, /api/v1/checks, /api/v1/health, /)");
    } else {
        log::warn!(
            "http: listening on {local}, not loopback: whoever reaches it reads every check's \
             name, target and output (/metrics, /api/v1/checks, /api/v1/health, /)"
        );
    }
    Ok(Listener {
        configured: addr,
        local,
        socket,
        stopping,
        thread: Some(thread),
    })
}

fn accept_loop(socket: &TcpListener, stopping: &AtomicBool, ask: &Ask, published: &Published) {
    let connections = Arc::new(AtomicUsize::new(0));
    let answering = Arc::new(AtomicUsize::new(0));
    loop {
        let conn = socket.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok((stream, peer)) => admit(stream, peer, &connections, &answering, ask, published),
            Err(e) => {
                log::warn!("http: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A counted place (a connection, an answering slot), given back when
/// dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        if count.fetch_add(1, Ordering::SeqCst) >= max {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(count)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    connections: &Arc<AtomicUsize>,
    answering: &Arc<AtomicUsize>,
    ask: &Ask,
    published: &Published,
) {
    let accepted = Instant::now();
    let Some(connection) = Slot::take(connections, MAX_CONNECTIONS) else {
        log::debug!("http: {peer}: {MAX_CONNECTIONS} connections open; answered 503");
        refuse_at_once(&stream);
        return;
    };
    let answering = Arc::clone(answering);
    let ask = Arc::clone(ask);
    let published = Arc::clone(published);
    let spawned = std::thread::Builder::new()
        .name("http-client".into())
        .spawn(move || {
            serve(&stream, peer, accepted, &answering, &*ask, &published);
            drop(connection);
        });
    if let Err(e) = spawned {
        log::warn!("http: cannot start a client thread: {e}");
    }
}

/// The 503 of a full house, on the accept thread without ever waiting: a
/// fresh connection's send buffer always has room for it, and whatever
/// the client sent already is read away first so the close is no reset.
fn refuse_at_once(mut stream: &TcpStream) {
    let _ = stream.set_nonblocking(true);
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    let _ = stream.write(&head_bytes(
        &Reply::text(503, "busy: too many clients at once; try again\n"),
        false,
    ));
    let _ = stream.shutdown(Shutdown::Write);
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: Body,
    pub extra: &'static str,
}

/// An answer's body.
#[derive(Debug)]
pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// Rendered once per snapshot and shared by the requests, then a
    /// small tail made for this one (`/metrics`: the checks' families,
    /// then the process' own).
    Shared(Arc<[u8]>, Vec<u8>),
    /// `/api/v1/checks`: the snapshot's report, serialised as it is
    /// written (no copy of the whole text is ever held).
    Report(Arc<Snapshot>),
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Body {
        Body::Bytes(b)
    }
}

impl Body {
    /// The length, when known before writing (a streamed body ends with
    /// the connection instead).
    fn len(&self) -> Option<usize> {
        match self {
            Body::Bytes(b) => Some(b.len()),
            Body::Shared(b, tail) => Some(b.len() + tail.len()),
            Body::Report(_) => None,
        }
    }

    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            Body::Bytes(b) => out.write_all(b),
            Body::Shared(b, tail) => out.write_all(b).and_then(|()| out.write_all(tail)),
            Body::Report(s) => {
                // What `picomon status --json` prints, but `"daemon"`.
                let shape = crate::control::snapshot::json::Shape {
                    daemon: false,
                    pretty: true,
                };
                let all = crate::control::protocol::Filter::default();
                crate::control::snapshot::json::write(&mut *out, s, all, shape)?;
                out.write_all(b"\n")
            }
        }
    }

    /// The whole body, for tests.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).unwrap();
        v
    }
}

impl Reply {
    pub(super) fn text(code: u16, body: &str) -> Reply {
        Reply {
            code,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec().into(),
            extra: "",
        }
    }
}

/// What went wrong reading a request head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Longer than [`MAX_HEAD`].
    TooLarge,
    /// Closed, timed out or failed before a whole head came.
    Gone,
}

fn serve(
    stream: &TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    answering: &Arc<AtomicUsize>,
    ask: &AskFn,
    published: &Published,
) {
    let (head, rest) = match read_head_and_rest(Deadline::new(stream, accepted + HEAD_DEADLINE)) {
        Ok(h) => h,
        Err(HeadError::TooLarge) => {
            let r = Reply::text(
                431,
                &format!("request head too large: at most {MAX_HEAD} bytes\n"),
            );
            send(stream, &r, false);
            close(stream);
            return;
        }
        Err(HeadError::Gone) => return,
    };
    let (method, path) = match parse_request_line(&head) {
        Some(x) => x,
        None => {
            send(stream, &Reply::text(400, "not an HTTP/1 request\n"), false);
            close(stream);
            return;
        }
    };
    // `/ping/` is the one route that writes (keyed), and the one with a
    // body: read before a slot is taken, as a head is.
    let ping =
        super::ping::is_ping(&path).then(|| super::ping::read(stream, &head, rest, &method, &path));
    let Some(slot) = Slot::take(answering, MAX_CLIENTS) else {
        log::debug!("http: {peer}: {MAX_CLIENTS} requests being answered; answered 503");
        let r = Reply::text(503, "busy: too many clients at once; try again\n");
        send(stream, &r, false);
        close(stream);
        return;
    };
    let (reply, shown) = match ping {
        Some(p) => super::ping::answer(p, ask),
        None => (route(&method, &path, || fetch(published)), path),
    };
    log::debug!(
        "http: {peer}: {method} {shown}: {} ({} bytes)",
        reply.code,
        reply
            .body
            .len()
            .map_or_else(|| "streamed".to_string(), |n| n.to_string())
    );
    send(stream, &reply, method == "HEAD");
    // Given back before the close: a client that has read to the end
    // finds the slot free for its next request.
    drop(slot);
    close(stream);
}

/// The answer to `method path`; `snapshot` reads the published one (only
/// for a page that needs it).
pub(crate) fn route(
    method: &str,
    path: &str,
    snapshot: impl FnOnce() -> Result<Arc<Snapshot>, Reply>,
) -> Reply {
    if method != "GET" && method != "HEAD" {
        return Reply {
            extra: "Allow: GET, HEAD\r\n",
            ..Reply::text(405, "read-only: only GET and HEAD\n")
        };
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path == super::health::PATH {
        return super::health::reply();
    }
    if !matches!(path, "/" | "/metrics" | "/api/v1/checks") {
        return Reply::text(
            404,
            "not found; picomon serves /, /metrics, /api/v1/checks and /api/v1/health\n",
        );
    }
    let snap = match snapshot() {
        Ok(s) => s,
        Err(r) => return r,
    };
    match path {
        "/metrics" => Reply {
            code: 200,
            content_type: metrics::CONTENT_TYPE,
            body: Body::Shared(
                snap.metrics_body(|s| metrics::render_checks(s).into_bytes()),
                metrics::render_process(&ProcessStats::read()).into_bytes(),
            ),
            extra: "",
        },
        "/api/v1/checks" => Reply {
            code: 200,
            content_type: "application/json",
            body: Body::Report(snap),
            extra: "",
        },
        _ => Reply {
            code: 200,
            content_type: "text/html; charset=utf-8",
            body: page::render(&snap).into_bytes().into(),
            // The page needs nothing from anywhere: no script, no fetch.
            extra: "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:\r\n",
        },
    }
}

/// The snapshot the loop published; after a while without readers, the
/// one it publishes when asked.
fn fetch(published: &Published) -> Result<Arc<Snapshot>, Reply> {
    published
        .wait(LOOP_TIMEOUT)
        .ok_or_else(|| Reply::text(503, "the daemon did not answer in time\n"))
}

/// [`read_head_and_rest`] without the rest.
#[cfg(test)]
pub(crate) fn read_head(stream: impl Read) -> Result<String, HeadError> {
    read_head_and_rest(stream).map(|(head, _)| head)
}

/// Reads until the blank line that ends the head; `stream` carries the
/// deadline (one for the whole head, not per read: a client trickling a
/// byte a second is cut off too). The head is taken when it ends within
/// [`MAX_HEAD`] bytes, its blank line included, and refused otherwise,
/// whatever the reads' sizes. Returns it and the bytes read past it (the
/// start of a body).
pub(crate) fn read_head_and_rest(mut stream: impl Read) -> Result<(String, Vec<u8>), HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return Err(HeadError::Gone),
            Ok(n) => n,
        };
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some((at, end)) = find_end(&head[from..]) {
            if from + end > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            let rest = head.split_off(from + end);
            head.truncate(from + at);
            return Ok((String::from_utf8_lossy(&head).into_owned(), rest));
        }
        if head.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Where the head ends: `\r\n\r\n` (or `\n\n` from a lenient client), as
/// (where the blank line starts, where it ends).
fn find_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) if b < a => Some((b, b + 2)),
        (Some(a), _) => Some((a, a + 4)),
        (None, Some(b)) => Some((b, b + 2)),
        (None, None) => None,
    }
}

/// `GET /path HTTP/1.1` into method and target.
pub(crate) fn parse_request_line(head: &str) -> Option<(String, String)> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || !version.starts_with("HTTP/1.")
        || !target.starts_with('/')
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
    {
        return None;
    }
    Some((method.to_string(), target.to_string()))
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The answer's head; a small body (an error) is appended unless
/// `head_only`. A body of unknown length has no Content-Length: it ends
/// with the connection (every answer is `Connection: close`).
fn head_bytes(r: &Reply, head_only: bool) -> Vec<u8> {
    let length = r
        .body
        .len()
        .map(|n| format!("Content-Length: {n}\r\n"))
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n{length}\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{}{}Connection: close\r\n\r\n",
        r.code,
        reason(r.code),
        r.content_type,
        r.extra,
        if r.code == 503 { "Retry-After: 1\r\n" } else { "" },
    )
    .into_bytes();
    if let (false, Body::Bytes(b)) = (head_only, &r.body) {
        out.extend_from_slice(b);
    }
    out
}

/// Writes the answer within [`WRITE_DEADLINE`] in all: the head, then a
/// large body straight from where it is kept (a shared rendering, or
/// serialised through a small buffer as it goes).
fn send(stream: &TcpStream, r: &Reply, head_only: bool) {
    let mut out = Deadline::new(stream, Instant::now() + WRITE_DEADLINE);
    if out.write_all(&head_bytes(r, head_only)).is_err() || head_only {
        return;
    }
    match &r.body {
        Body::Bytes(_) => {}
        Body::Shared(b, tail) => {
            let _ = out.write_all(b).and_then(|()| out.write_all(tail));
        }
        body => {
            let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, out);
            let _ = body.write_to(&mut buffered).and_then(|()| buffered.flush());
        }
    }
}

/// Closes: the write side first, then whatever the client still sends is
/// read away for at most [`DRAIN_DEADLINE`] in all, so a request body we
/// never read does not turn the close into a reset that loses the answer.
/// The answering slot is free by then; only this thread waits.
fn close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut rest = Deadline::new(stream, Instant::now() + DRAIN_DEADLINE);
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_MAX {
        match rest.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes handed out in the given pieces; `None` is a read that times
    /// out.
    struct Pieces(Vec<Option<&'static [u8]>>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            match self.0.remove(0) {
                None => Err(std::io::ErrorKind::WouldBlock.into()),
                Some(p) => {
                    buf[..p.len()].copy_from_slice(p);
                    Ok(p.len())
                }
            }
        }
    }

    #[test]
    fn a_head_split_over_reads_is_put_together() {
        let p = Pieces(vec![
            Some(b"GET /metrics HTTP/1.1\r\nHost: x\r"),
            Some(b"\n\r\nbody"),
        ]);
        let head = read_head(p).unwrap();
        assert_eq!(head, "GET /metrics HTTP/1.1\r\nHost: x");
        assert_eq!(
            parse_request_line(&head),
            Some(("GET".into(), "/metrics".into()))
        );
    }

    #[test]
    fn an_endless_head_is_refused_and_a_silent_client_is_dropped() {
        let big: &'static [u8] = Box::leak(vec![b'a'; 1024].into_boxed_slice());
        let p = Pieces(vec![Some(big); 20]);
        assert_eq!(read_head(p), Err(HeadError::TooLarge));
        let p = Pieces(vec![Some(b"GET / HTTP/1.1\r\n"), None]);
        assert_eq!(read_head(p), Err(HeadError::Gone));
        let p = Pieces(vec![Some(b"GET / HTTP/1.1\r\n")]);
        assert_eq!(read_head(p), Err(HeadError::Gone));
    }

    /// A head of exactly `len` bytes, its blank line included.
    fn head_of(len: usize, end: &str) -> Vec<u8> {
        let start = "GET / HTTP/1.1\r\nX-Pad: ";
        let pad = len - start.len() - end.len();
        format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
    }

    #[test]
    fn the_head_limit_is_exact_whatever_the_reads() {
        for end in ["\r\n\r\n", "\n\n"] {
            for piece in [1, 7, 1000, 1024] {
                let pieces = |bytes: Vec<u8>| {
                    let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    Pieces(leaked.chunks(piece).map(Some).collect())
                };
                let at = read_head(pieces(head_of(MAX_HEAD, end)));
                assert!(at.is_ok(), "{end:?} in pieces of {piece}: {at:?}");
                // With a body behind it, still taken.
                let mut with_body = head_of(MAX_HEAD, end);
                with_body.extend_from_slice(b"body");
                assert!(read_head(pieces(with_body)).is_ok());
                assert_eq!(
                    read_head(pieces(head_of(MAX_HEAD + 1, end))),
                    Err(HeadError::TooLarge),
                    "{end:?} in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn only_http1_origin_form_requests_are_taken() {
        for bad in [
            "",
            "GET",
            "GET /",
            "GET http://x/ HTTP/1.1",
            "GET / HTTP/2",
            "get / HTTP/1.1",
            "GET / HTTP/1.1 extra",
        ] {
            assert_eq!(parse_request_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn writes_are_refused_without_asking_the_loop() {
        for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let r = route(m, "/metrics", || panic!("the loop was asked"));
            assert_eq!(r.code, 405);
            assert!(r.extra.contains("Allow: GET, HEAD"));
        }
        let r = route("GET", "/secrets", || panic!("the loop was asked"));
        assert_eq!(r.code, 404);
    }

    #[test]
    fn the_checks_json_is_that_of_status_json() {
        let mut s =
            crate::control::snapshot::of_statuses(&[crate::control::protocol::CheckStatus {
                id: "web on web1".into(),
                name: "web".into(),
                target: "web1".into(),
                phase: "problem".into(),
                status: Some("CRITICAL".into()),
                duration: Some(0.25),
                ..Default::default()
            }]);
        s.at = 42;
        let r = route("GET", "/api/v1/checks?x=1", || Ok(Arc::new(s.clone())));
        assert_eq!(r.code, 200);
        assert_eq!(r.body.len(), None, "streamed");
        let mut want = serde_json::to_string_pretty(&s.report()).unwrap();
        want.push('\n');
        assert_eq!(String::from_utf8(r.body.to_vec()).unwrap(), want);
    }

    #[test]
    fn metrics_are_rendered_once_per_snapshot_and_shared() {
        let s = Arc::new(Snapshot::default());
        let body = |r: Reply| match r.body {
            Body::Shared(b, _) => b,
            other => panic!("not shared: {other:?}"),
        };
        let a = body(route("GET", "/metrics", || Ok(Arc::clone(&s))));
        let b = body(route("GET", "/metrics", || Ok(Arc::clone(&s))));
        assert!(Arc::ptr_eq(&a, &b), "the second scrape rendered again");
        assert!(std::str::from_utf8(&a)
            .unwrap()
            .contains("picomon_runs_skipped_total 0"));
    }
}
