//! A private Debian postfix on a loopback port: its own main.cf and
//! master.cf, queue and log in the test's directory (`postfix -c DIR`), and
//! an alias map, so mail sent to it by SMTP is delivered as a production
//! MTA would (e.g. piped to `picomon mail-in`). The system's postfix
//! service is neither used nor started. Needs root (postfix's master runs
//! as root and drops to `postfix`; commands run as `nobody`, postfix's
//! `default_privs`, as the alias map belongs to root).
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::smtp::DEADLINE;

/// The domain the test postfix takes mail for.
pub const DOMAIN: &str = "mx.test";

/// A running postfix; stopped when dropped.
pub struct Postfix {
    pub dir: PathBuf,
    pub port: u16,
}

impl Postfix {
    /// Starts postfix on 127.0.0.1:`port` with its config and queue in
    /// `dir` (created), delivering `LOCAL@mx.test` as `aliases` say:
    /// `(LOCAL, "|/path/to/command args")`.
    pub fn start(dir: &Path, port: u16, aliases: &[(&str, &str)]) -> Postfix {
        fs::create_dir_all(dir.join("queue")).expect("postfix queue dir");
        fs::create_dir_all(dir.join("data")).expect("postfix data dir");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let status = Command::new("chown")
            .args(["postfix"])
            .arg(dir.join("data"))
            .status()
            .expect("chown");
        assert!(status.success(), "chown postfix {}/data", dir.display());
        let d = dir.display();
        fs::write(
            dir.join("main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = {DOMAIN}
mydomain = test
myorigin = {DOMAIN}
mydestination = {DOMAIN}
mynetworks = 127.0.0.0/8
alias_maps = texthash:{d}/aliases
alias_database =
local_recipient_maps = $alias_maps
default_transport = error:this test postfix delivers no outside mail
relayhost =
smtputf8_enable = no
biff = no
append_dot_mydomain = no
default_privs = nobody
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
allow_mail_to_commands = alias
message_size_limit = 20480000
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
"
            ),
        )
        .expect("main.cf");
        let mut master = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
        for line in [
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ] {
            master.push_str(line);
            master.push('\n');
        }
        fs::write(dir.join("master.cf"), master).expect("master.cf");
        let map: String = aliases
            .iter()
            .map(|(local, to)| format!("{local} \"{to}\"\n"))
            .collect();
        fs::write(dir.join("aliases"), map).expect("aliases");
        let pf = Postfix {
            dir: dir.to_path_buf(),
            port,
        };
        let out = pf.postfix("start");
        assert!(
            out.status.success(),
            "postfix -c {d} start failed: {}{}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            pf.log()
        );
        let end = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "postfix does not listen on {port}; maillog:\n{}",
                pf.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        pf
    }

    /// Runs `postfix -c DIR CMD`. Postfix logs its own errors only to
    /// syslog or a terminal: the log file says the rest.
    fn postfix(&self, cmd: &str) -> std::process::Output {
        Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.dir)
            .arg(cmd)
            .output()
            .expect("cannot run /usr/sbin/postfix (is postfix installed?)")
    }

    /// Postfix's log.
    pub fn log(&self) -> String {
        super::read(&self.dir.join("maillog"))
    }

    /// How many deliveries ended in `status=sent` to a local recipient.
    pub fn delivered(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("relay=local") && l.contains("status=sent"))
            .count()
    }

    /// How many delivery attempts were deferred (the command asked the
    /// MTA to try again: exit 75).
    pub fn deferred(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("status=deferred"))
            .count()
    }

    /// Waits until `n` local deliveries ended in `status=sent`; a bounced
    /// one, or a deferred one beyond `deferred_ok`, fails the test with
    /// the log.
    pub fn wait_delivered(&self, n: usize, deferred_ok: usize) {
        let end = Instant::now() + DEADLINE;
        loop {
            let log = self.log();
            if let Some(bad) = log.lines().find(|l| l.contains("status=bounced")) {
                panic!("postfix could not deliver: {bad}\nmaillog:\n{log}");
            }
            if self.deferred() > deferred_ok {
                panic!("postfix deferred a delivery\nmaillog:\n{log}");
            }
            if self.delivered() >= n {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {n} deliveries; maillog:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `data` (a whole message, CRLF or LF lines) by SMTP from
    /// envelope sender `from` (may be "" for a bounce) to `to`.
    pub fn send(&self, from: &str, to: &str, data: &[u8]) {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to postfix");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut r = BufReader::new(stream.try_clone().expect("clone"));
        let mut w = stream;
        let expect = |code: &str, r: &mut BufReader<TcpStream>| loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("read from postfix");
            assert!(
                line.starts_with(code),
                "postfix answered {line:?}, wanted {code}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        };
        expect("220", &mut r);
        for (cmd, code) in [
            ("EHLO test.example\r\n".to_string(), "250"),
            (format!("MAIL FROM:<{from}>\r\n"), "250"),
            (format!("RCPT TO:<{to}>\r\n"), "250"),
            ("DATA\r\n".to_string(), "354"),
        ] {
            w.write_all(cmd.as_bytes()).expect("write");
            expect(code, &mut r);
        }
        let text = String::from_utf8_lossy(data).replace("\r\n", "\n");
        let mut wire = Vec::with_capacity(data.len() + 1024);
        for line in text.split('\n') {
            if line.starts_with('.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        w.write_all(&wire).expect("write the message");
        expect("250", &mut r);
        w.write_all(b"QUIT\r\n").expect("quit");
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.postfix("stop");
        // `stop` waits for the master; a master that hangs is killed.
        if let Ok(pid) = fs::read_to_string(self.dir.join("queue/pid/master.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if super::procs::alive(pid) {
                    super::procs::signal(pid, libc::SIGKILL);
                }
            }
        }
    }
}
