//! A plain SMTP test server (tests/smtp/server.py, aiosmtpd) on a loopback
//! port, and the messages it recorded. Shared by the daemon and watchdog
//! tests (the watchdog package includes this file by path).
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A running server; killed when dropped.
pub struct Smtp {
    child: Child,
    pub inbox: PathBuf,
    pub port: u16,
}

impl Smtp {
    /// Starts the server on `port`, recording into `dir/inbox-PORT`.
    pub fn start(dir: &Path, port: u16) -> Smtp {
        let inbox = dir.join(format!("inbox-{port}"));
        fs::create_dir_all(&inbox).expect("inbox");
        let ready = dir.join(format!("ready-{port}"));
        let _ = fs::remove_file(&ready);
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/smtp/server.py")
            .canonicalize()
            .or_else(|_| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../tests/smtp/server.py")
                    .canonicalize()
            })
            .expect("tests/smtp/server.py");
        let log = fs::File::create(dir.join(format!("smtp-{port}.log"))).expect("log");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(&inbox)
            .arg("--ready")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot start tests/smtp/server.py (python3-aiosmtpd installed?)");
        let end = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!("test SMTP server exited: {st}");
            }
            assert!(Instant::now() < end, "test SMTP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp { child, inbox, port }
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
        names.iter().filter_map(|p| Mail::read(p)).collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One recorded message.
#[derive(Clone, Debug)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Mail {
    fn read(path: &Path) -> Option<Mail> {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        let data = v["data"].as_str()?.replace("\r\n", "\n");
        let (head, body) = data.split_once("\n\n").unwrap_or((&data, ""));
        let head = head.replace("\n ", " ").replace("\n\t", " ");
        Some(Mail {
            rcpt_tos: v["rcpt_tos"]
                .as_array()?
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            headers: head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.to_string(), v.trim().to_string()))
                .collect(),
            body: body.to_string(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn subject(&self) -> &str {
        self.header("Subject").unwrap_or("")
    }
}
