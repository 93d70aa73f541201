//! The listener of `config.listen`: GET and HEAD only, one request per
//! connection, no keep-alive, no body read.
//!
//! ```text
//!  accept thread ──> connection thread (at most MAX_CLIENTS at once)
//!                      read the head: 8 KiB, 5 s in all
//!                      ask(reply) ─> the loop's inbox ─> loop      
//!                      <─ Snapshot (copied by the loop, rendered here)
//!                      write the answer (10 s write timeout), close
//! ```
//! A slow or stuck client costs its own thread until its deadline, never
//! the loop nor another client; more clients than the cap get a 503 at
//! once. Nothing here shares a lock with the loop: it asks through the
//! loop's inbox, as the control socket does.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::proc_stats::ProcessStats;
use super::{metrics, page, Ask, AskFn, Snapshot};

/// Connections served at once; more get a 503.
pub const MAX_CLIENTS: usize = 4;
/// The longest request head taken (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// A client must have sent its whole head within this.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for the loop.
const LOOP_TIMEOUT: Duration = Duration::from_secs(10);

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
pub fn start(addr: SocketAddr, ask: Ask) -> anyhow::Result<Listener> {
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
            .spawn(move || accept_loop(&socket, &stopping, &ask))
            .context("cannot start the http thread")?
    };
    if local.ip().is_loopback() {
        log::info!("http: listening on {local} (/metrics, /api/v1/checks, /)");
    } else {
        log::warn!(
            "http: listening on {local}, not loopback: whoever reaches it reads every check's \
             name, target and output (/metrics, /api/v1/checks, /)"
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

fn accept_loop(socket: &TcpListener, stopping: &AtomicBool, ask: &Ask) {
    let clients = Arc::new(AtomicUsize::new(0));
    loop {
        let conn = socket.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok((stream, peer)) => admit(stream, peer, &clients, ask),
            Err(e) => {
                log::warn!("http: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn admit(stream: TcpStream, peer: SocketAddr, clients: &Arc<AtomicUsize>, ask: &Ask) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        clients.fetch_sub(1, Ordering::SeqCst);
        log::debug!("http: {peer}: too many clients at once; answered 503");
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        finish(
            &stream,
            &Reply::text(503, "busy: too many clients at once; try again\n"),
            false,
        );
        return;
    }
    let clients = Arc::clone(clients);
    let ask = Arc::clone(ask);
    let spawned = std::thread::Builder::new()
        .name("http-client".into())
        .spawn(move || {
            serve(&stream, peer, &*ask);
            clients.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::warn!("http: cannot start a client thread: {e}");
    }
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub extra: &'static str,
}

impl Reply {
    fn text(code: u16, body: &str) -> Reply {
        Reply {
            code,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
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

fn serve(stream: &TcpStream, peer: SocketAddr, ask: &AskFn) {
    let head = match read_head(stream, Instant::now() + HEAD_DEADLINE) {
        Ok(h) => h,
        Err(HeadError::TooLarge) => {
            let r = Reply::text(431, "request head too large\n");
            finish(stream, &r, false);
            return;
        }
        Err(HeadError::Gone) => return,
    };
    let (method, path) = match parse_request_line(&head) {
        Some(x) => x,
        None => {
            finish(stream, &Reply::text(400, "not an HTTP/1 request\n"), false);
            return;
        }
    };
    let reply = route(&method, &path, || fetch(ask));
    log::debug!(
        "http: {peer}: {method} {path}: {} ({} bytes)",
        reply.code,
        reply.body.len()
    );
    finish(stream, &reply, method == "HEAD");
}

/// The answer to `method path`; `snapshot` asks the loop (only for a
/// page that needs it).
pub(crate) fn route(
    method: &str,
    path: &str,
    snapshot: impl FnOnce() -> Result<Box<Snapshot>, Reply>,
) -> Reply {
    if method != "GET" && method != "HEAD" {
        return Reply {
            extra: "Allow: GET, HEAD\r\n",
            ..Reply::text(405, "read-only: only GET and HEAD\n")
        };
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !matches!(path, "/" | "/metrics" | "/api/v1/checks") {
        return Reply::text(
            404,
            "not found; picomon serves /, /metrics and /api/v1/checks\n",
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
            body: metrics::render(&snap, &ProcessStats::read()).into_bytes(),
            extra: "",
        },
        "/api/v1/checks" => {
            // Exactly what `picomon status --json` prints.
            let mut body = serde_json::to_vec_pretty(&snap.report).unwrap_or_default();
            body.push(b'\n');
            Reply {
                code: 200,
                content_type: "application/json",
                body,
                extra: "",
            }
        }
        _ => Reply {
            code: 200,
            content_type: "text/html; charset=utf-8",
            body: page::render(&snap).into_bytes(),
            // The page needs nothing from anywhere: no script, no fetch.
            extra: "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:\r\n",
        },
    }
}

/// Asks the loop for a snapshot through its inbox.
fn fetch(ask: &AskFn) -> Result<Box<Snapshot>, Reply> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    ask(tx);
    match rx.recv_timeout(LOOP_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
            Err(Reply::text(503, "the daemon did not answer in time\n"))
        }
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            Err(Reply::text(503, "the daemon is stopping\n"))
        }
    }
}

/// Reads until the blank line that ends the head, within `deadline` in
/// all (not per read: a client trickling a byte a second is cut off too).
pub(crate) fn read_head(
    mut stream: impl ReadTimed,
    deadline: Instant,
) -> Result<String, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Gone);
        }
        stream.set_timeout(left);
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return Err(HeadError::Gone),
            Ok(n) => n,
        };
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find_end(&head[from..]) {
            head.truncate(from + end);
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        if head.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Where the head ends: `\r\n\r\n` (or `\n\n` from a lenient client).
fn find_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A stream whose reads can be given a timeout (a socket; a test double).
pub(crate) trait ReadTimed: Read {
    fn set_timeout(&mut self, t: Duration);
}

impl ReadTimed for &TcpStream {
    fn set_timeout(&mut self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
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
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes the answer and closes: the write side first, then whatever the
/// client still sends is read away briefly, so a request body we never
/// read does not turn the close into a reset that loses the answer.
fn finish(mut stream: &TcpStream, r: &Reply, head_only: bool) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{}{}Connection: close\r\n\r\n",
        r.code,
        reason(r.code),
        r.content_type,
        r.body.len(),
        r.extra,
        if r.code == 503 { "Retry-After: 1\r\n" } else { "" },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(&r.body);
    }
    if stream.write_all(&out).and_then(|_| stream.flush()).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match stream.read(&mut sink) {
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

    impl ReadTimed for Pieces {
        fn set_timeout(&mut self, _: Duration) {}
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn a_head_split_over_reads_is_put_together() {
        let p = Pieces(vec![
            Some(b"GET /metrics HTTP/1.1\r\nHost: x\r"),
            Some(b"\n\r\nbody"),
        ]);
        let head = read_head(p, later()).unwrap();
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
        assert_eq!(read_head(p, later()), Err(HeadError::TooLarge));
        let p = Pieces(vec![Some(b"GET / HTTP/1.1\r\n"), None]);
        assert_eq!(read_head(p, later()), Err(HeadError::Gone));
        let p = Pieces(vec![Some(b"GET / HTTP/1.1\r\n")]);
        assert_eq!(read_head(p, Instant::now()), Err(HeadError::Gone));
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
        let mut s = Snapshot::default();
        s.report.at = 42;
        let r = route("GET", "/api/v1/checks?x=1", || Ok(Box::new(s.clone())));
        assert_eq!(r.code, 200);
        let mut want = serde_json::to_string_pretty(&s.report).unwrap();
        want.push('\n');
        assert_eq!(String::from_utf8(r.body).unwrap(), want);
    }
}
