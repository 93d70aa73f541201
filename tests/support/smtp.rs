//! A test SMTP server (tests/smtp/server.py, aiosmtpd) on a loopback port:
//! plain text, STARTTLS or implicit TLS, AUTH when asked, and the messages it
//! recorded. Shared by the mail, daemon and watchdog tests; the watchdog
//! package includes this file by path, so it uses nothing else of
//! tests/support.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the server may take to start and messages to arrive: generous,
/// as the machine may be loaded.
pub const DEADLINE: Duration = Duration::from_secs(40);

/// TLS mode of the test server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tls {
    None,
    Starttls,
    Implicit,
}

/// How to start the server; the default is plain SMTP on 127.0.0.1.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    pub tls: Tls,
    /// `USER:PASSWORD` the server then requires.
    pub auth: Option<&'a str>,
    /// With TLS: the server presents `DIR/CERT.pem` with key `DIR/CERT.key`.
    pub cert: &'a str,
    /// More server.py arguments (`--bind ::1`, `--reject-rcpt ADDR`,
    /// `--fail-rcpt-4xx-once ADDR`, `--data-4xx-first N`, `--max-line N`).
    pub extra: &'a [&'a str],
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            tls: Tls::None,
            auth: None,
            cert: "server",
            extra: &[],
        }
    }
}

impl Options<'static> {
    /// The default options in TLS mode `tls`.
    pub fn tls(tls: Tls) -> Self {
        Options {
            tls,
            ..Options::default()
        }
    }
}

/// A running server; killed when dropped.
pub struct Smtp {
    child: Child,
    pub inbox: PathBuf,
    pub port: u16,
    /// The server's stderr: one line per refusal it answered.
    pub log: PathBuf,
}

impl Smtp {
    /// Starts a plain server on `port` (0: any free port, see `port`).
    pub fn start(dir: &Path, port: u16) -> Smtp {
        Self::start_with(dir, port, &Options::default())
    }

    /// Starts the server on `port` with `opts`, recording into `dir/inbox-N`
    /// and logging to `dir/smtp-N.log`; returns once it listens. Port 0
    /// binds any free port; a fixed port is one the test holds reserved
    /// (tests/support/ports.rs), which the server takes over.
    pub fn start_with(dir: &Path, port: u16, opts: &Options) -> Smtp {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let inbox = dir.join(format!("inbox-{n}"));
        fs::create_dir_all(&inbox).expect("inbox");
        let ready = dir.join(format!("ready-{n}"));
        let _ = fs::remove_file(&ready);
        let log_path = dir.join(format!("smtp-{n}.log"));
        let log = fs::File::create(&log_path).expect("server log");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script())
            .args(["--port", &port.to_string(), "--dir"])
            .arg(&inbox)
            .arg("--ready")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let cert = dir.join(format!("{}.pem", opts.cert));
        let key = dir.join(format!("{}.key", opts.cert));
        match opts.tls {
            Tls::None => {}
            Tls::Starttls => {
                cmd.arg("--starttls").arg(&cert).arg(&key);
            }
            Tls::Implicit => {
                cmd.arg("--tls").arg(&cert).arg(&key);
            }
        }
        if let Some(a) = opts.auth {
            cmd.arg("--auth").arg(a);
        }
        cmd.args(opts.extra);
        let mut child = cmd
            .spawn()
            .expect("cannot start tests/smtp/server.py (python3-aiosmtpd installed?)");
        let end = Instant::now() + DEADLINE;
        // The ready file holds the port the server listens on.
        let port = loop {
            if let Some(p) = fs::read_to_string(&ready)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
            {
                break p;
            }
            if let Ok(Some(st)) = child.try_wait() {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                panic!("test SMTP server exited ({st}): {log}");
            }
            assert!(
                Instant::now() < end,
                "test SMTP server did not start within {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Smtp {
            child,
            inbox,
            port,
            log: log_path,
        }
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = fs::read_dir(&self.inbox)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.iter().map(|p| Mail::read(p)).collect()
    }

    /// How many messages reached `rcpt` with exactly `subject` (decoded).
    pub fn count(&self, rcpt: &str, subject: &str) -> usize {
        self.received()
            .iter()
            .filter(|m| m.subject_decoded == subject && m.rcpt_tos.iter().any(|r| r == rcpt))
            .count()
    }

    /// Waits until `rcpt` got a message with `subject` (decoded).
    pub fn wait_for(&self, rcpt: &str, subject: &str) {
        let end = Instant::now() + DEADLINE;
        while self.count(rcpt, subject) == 0 {
            assert!(
                Instant::now() < end,
                "timed out after {DEADLINE:?} waiting for {subject:?} to {rcpt} on port {}; \
                 got {:#?}",
                self.port,
                self.received()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until at least `n` messages arrived; returns all of them.
    pub fn wait_messages(&self, n: usize) -> Vec<Mail> {
        let end = Instant::now() + DEADLINE;
        loop {
            let r = self.received();
            if r.len() >= n {
                return r;
            }
            assert!(
                Instant::now() < end,
                "timed out after {DEADLINE:?} waiting for {n} messages on port {}; got {r:#?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// server.py, from the picomon package or from the watchdog package next to
/// it.
fn script() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.join("tests/smtp/server.py")
        .canonicalize()
        .or_else(|_| here.join("../tests/smtp/server.py").canonicalize())
        .expect("tests/smtp/server.py")
}

/// A message as the test server recorded it.
#[derive(Clone, Debug)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub mail_from: String,
    /// Whether the session was encrypted.
    pub tls: bool,
    pub auth_user: Option<String>,
    /// Unfolded header lines; a line without a colon is kept as a name with
    /// an empty value, so a broken header still shows.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The subject as a reader sees it (encoded words decoded).
    pub subject_decoded: String,
    /// The body as a reader sees it (quoted-printable decoded).
    pub body_decoded: String,
    /// A multipart mail's leaves, in order (none for a plain mail).
    pub parts: Vec<MailPart>,
}

/// One leaf of a multipart mail, as Python's email package reads it.
#[derive(Clone, Debug)]
pub struct MailPart {
    /// `text/plain`, `text/csv`, ...
    pub content_type: String,
    pub filename: Option<String>,
    /// Decoded.
    pub text: String,
    /// A `text/csv` part's rows as Python's csv module reads them.
    pub csv_rows: Option<Vec<Vec<String>>>,
}

impl Mail {
    /// Reads one record; the server writes them whole (temp file, rename),
    /// so a record that does not parse is a bug of the harness.
    fn read(path: &Path) -> Mail {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let field = |name: &str| {
            v[name]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no {name}", path.display()))
        };
        let data = field("data").replace("\r\n", "\n");
        let (head, body) = data.split_once("\n\n").unwrap_or((&data, ""));
        let head = head.replace("\n ", " ").replace("\n\t", " ");
        Mail {
            rcpt_tos: v["rcpt_tos"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: no rcpt_tos", path.display()))
                .iter()
                .map(|x| {
                    x.as_str()
                        .unwrap_or_else(|| panic!("{}: bad rcpt_tos", path.display()))
                        .to_string()
                })
                .collect(),
            mail_from: field("mail_from").to_string(),
            tls: v["tls"]
                .as_bool()
                .unwrap_or_else(|| panic!("{}: no tls", path.display())),
            auth_user: v["auth_user"].as_str().map(String::from),
            headers: head
                .lines()
                .map(|l| match l.split_once(':') {
                    Some((n, v)) => (n.to_string(), v.trim().to_string()),
                    None => (l.to_string(), String::new()),
                })
                .collect(),
            body: body.to_string(),
            subject_decoded: v["subject_decoded"].as_str().unwrap_or("").to_string(),
            body_decoded: v["body_decoded"].as_str().unwrap_or("").to_string(),
            parts: v["parts"]
                .as_array()
                .map(|a| a.iter().map(MailPart::read).collect())
                .unwrap_or_default(),
        }
    }

    /// The part of this content type, which must be there.
    pub fn part(&self, content_type: &str) -> &MailPart {
        self.parts
            .iter()
            .find(|p| p.content_type == content_type)
            .unwrap_or_else(|| panic!("no {content_type} part in {:#?}", self.parts))
    }

    /// Every value of header `name`.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of header `name`, which must be there exactly once.
    pub fn one(&self, name: &str) -> &str {
        let v = self.header(name);
        assert_eq!(v.len(), 1, "header {name} in {:#?}", self.headers);
        v[0]
    }

    /// The first Subject, or "" without one.
    pub fn subject(&self) -> &str {
        self.header("Subject").first().copied().unwrap_or("")
    }
}

impl MailPart {
    fn read(v: &serde_json::Value) -> MailPart {
        let strings = |row: &serde_json::Value| -> Vec<String> {
            row.as_array()
                .expect("a CSV row")
                .iter()
                .map(|f| f.as_str().expect("a CSV field").to_string())
                .collect()
        };
        MailPart {
            content_type: v["type"].as_str().expect("part type").to_string(),
            filename: v["filename"].as_str().map(String::from),
            text: v["text"].as_str().unwrap_or("").to_string(),
            csv_rows: v["csv_rows"]
                .as_array()
                .map(|rows| rows.iter().map(strings).collect()),
        }
    }
}
