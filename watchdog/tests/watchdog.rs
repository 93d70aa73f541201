//! picomon-watchdog against the real picomon binary, real signals and a real
//! SMTP server on loopback: deaths and hangs are mailed, SIGTERM is
//! not, `--restart` brings the child back with bounded mail, mail left in the
//! outbox is delivered, and the rc.local loop runs configs as `nobody`.

#[path = "../../tests/support/certs.rs"]
mod certs;
#[path = "../../tests/support/ports.rs"]
mod ports;
#[path = "../../tests/support/procs.rs"]
mod procs;
#[path = "../../tests/support/smtp.rs"]
mod smtp;
#[path = "../../tests/support/wait.rs"]
mod wait;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ports::{reserve_port, Reserved};
use procs::{alive, signal};
use smtp::{Mail, Options, Smtp, Tls};
use wait::wait_for;

const LONG: Duration = Duration::from_secs(40);

fn watchdog_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_picomon-watchdog"))
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

struct Setup {
    dir: tempfile::TempDir,
    smtp_port: u16,
    /// Holds `smtp_port` until the test's server takes it over.
    _smtp_held: Reserved,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let (_smtp_held, smtp_port) = reserve_port();
        Setup {
            dir,
            smtp_port,
            _smtp_held,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A config with mail to the test server and `checks` added.
    fn config_text(&self, name: &str, checks: &str) -> String {
        format!(
            r#"
config.base_tick = 0.2;
config.default_timeout = 1;
config.state_dir = "{dir}/state-{name}";
config.emails.to = ["ops@example.org"];
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.smtp_host = "127.0.0.1:{port}";
config.emails.watchdog_subject = "[picomon] {name} stopped";
{checks}
"#,
            dir = self.dir.path().display(),
            port = self.smtp_port,
        )
    }

    fn config(&self, name: &str, checks: &str) -> PathBuf {
        let p = self.path(&format!("{name}.rhai"));
        fs::write(&p, self.config_text(name, checks)).unwrap();
        p
    }

    fn smtp(&self) -> Smtp {
        Smtp::start(self.dir.path(), self.smtp_port)
    }

    /// Starts the watchdog; the child writes its pid to `child.pid`.
    fn watchdog(&self, conf: &Path, extra: &[&str], child_args: &[&str]) -> Watchdog {
        self.watchdog_with(conf, extra, child_args, &[])
    }

    /// [`Setup::watchdog`] with `env` added to its environment.
    fn watchdog_with(
        &self,
        conf: &Path,
        extra: &[&str],
        child_args: &[&str],
        env: &[(&str, &str)],
    ) -> Watchdog {
        let err = self.path("watchdog.err");
        let child_pid = self.path("child.pid");
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(["-c".into(), conf.display().to_string(), "--".into()]);
        args.extend(["--pid-file".into(), child_pid.display().to_string()]);
        args.extend(child_args.iter().map(|s| s.to_string()));
        let child = Command::new(watchdog_bin())
            .args(&args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Watchdog {
            child,
            child_pid,
            err,
        }
    }
}

struct Watchdog {
    child: Child,
    child_pid: PathBuf,
    err: PathBuf,
}

impl Watchdog {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The pid of a live picomon child other than `not`.
    fn child(&self, not: Option<i32>) -> i32 {
        wait_for(LONG, || {
            read_pid(&self.child_pid).filter(|p| Some(*p) != not && alive(*p))
        })
        .unwrap_or_else(|| panic!("no picomon child; watchdog said:\n{}", self.stderr()))
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(p) = read_pid(&self.child_pid) {
            signal(p, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_mails(smtp: &Smtp, n: usize, what: impl Fn(&Mail) -> bool) -> Vec<Mail> {
    wait_for(LONG, || {
        let m: Vec<Mail> = smtp.received().into_iter().filter(|m| what(m)).collect();
        (m.len() >= n).then_some(m)
    })
    .unwrap_or_else(|| panic!("fewer than {n} mails; got {:#?}", smtp.received()))
}

const OK_CHECK: &str =
    r#"add(plugin("check_dummy", ["0", "fine"]), #{ name: "calm", target_name: "box" });"#;

/// A check in PROBLEM and no SMTP server: a Problem and a failed delivery
/// to log, by the child, through the watchdog's stderr.
const FAILING_CHECK: &str =
    r#"add(plugin("check_dummy", ["2", "down"]), #{ name: "web", target_name: "box", retry: 0 });"#;

#[test]
fn under_journald_lines_carry_their_priority_and_the_watchdog_s_are_tagged() {
    let s = Setup::new();
    let conf = s.config("journal", FAILING_CHECK);
    let w = s.watchdog_with(&conf, &[], &[], &[("JOURNAL_STREAM", "8:123456")]);
    let seen = |needle: &str| {
        wait_for(LONG, || w.stderr().contains(needle).then_some(()))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{}", w.stderr()))
    };
    seen("<6>picomon-watchdog: started ");
    seen("<4>problem web on box: CRITICAL");
    seen("<3>mail delivery failed: ");
    let err = w.stderr();
    for line in err.lines().filter(|l| !l.is_empty()) {
        let b = line.as_bytes();
        assert!(
            b.len() > 3 && b[0] == b'<' && b[1].is_ascii_digit() && b[2] == b'>',
            "a line without its priority: {line:?}\n{err}"
        );
        // journald keeps the time: none of our own.
        assert!(!line.contains("[20"), "{line:?}");
    }
    drop(w);

    // For people: time and level, the watchdog's lines tagged.
    let conf = s.config("people", FAILING_CHECK);
    let w = s.watchdog(&conf, &[], &[]);
    wait_for(LONG, || {
        let err = w.stderr();
        (err.contains("WARN ] problem web on box: CRITICAL")
            && err.contains("ERROR] mail delivery failed: "))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("{}", w.stderr()));
    let err = w.stderr();
    let started = err
        .lines()
        .find(|l| l.contains("started "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        started.starts_with("[20") && started.contains(" INFO ] picomon-watchdog: started "),
        "{started}"
    );
}

#[test]
fn child_killed_by_sigkill_is_mailed_with_its_stderr_and_restarted() {
    let s = Setup::new();
    let smtp = s.smtp();
    let conf = s.config("kill", OK_CHECK);
    let w = s.watchdog(&conf, &["--restart"], &[]);
    let first = w.child(None);
    // The child's stderr passes through the watchdog.
    assert!(
        wait_for(LONG, || w
            .stderr()
            .contains("picomon started")
            .then_some(()))
        .is_some(),
        "{}",
        w.stderr()
    );
    signal(first, libc::SIGKILL);
    let mails = wait_mails(&smtp, 1, |m| m.subject() == "[picomon] kill stopped");
    let body = &mails[0].body;
    assert!(body.contains("killed by SIGKILL"), "{body}");
    assert!(body.contains("Uptime: 0:00:"), "{body}");
    assert!(body.contains("restart number 1"), "{body}");
    assert!(
        body.contains("picomon started"),
        "stderr tail missing: {body}"
    );
    // --restart: a new child runs.
    let second = w.child(Some(first));
    assert_ne!(first, second);
}

#[test]
fn sigterm_to_the_watchdog_stops_the_child_cleanly_without_mail() {
    let s = Setup::new();
    let smtp = s.smtp();
    let conf = s.config("term", OK_CHECK);
    let mut w = s.watchdog(&conf, &["--restart"], &[]);
    let child = w.child(None);
    signal(w.pid(), libc::SIGTERM);
    let status = wait_for(LONG, || w.child.try_wait().ok().flatten()).expect("watchdog exit");
    assert_eq!(status.code(), Some(0), "{}", w.stderr());
    assert!(wait_for(LONG, || (!alive(child)).then_some(())).is_some());
    // picomon removed its pid file: it stopped cleanly, not killed.
    assert!(!w.child_pid.exists(), "{}", w.stderr());
    assert!(w.stderr().contains("picomon stopped"), "{}", w.stderr());
    assert!(smtp.received().is_empty(), "{:#?}", smtp.received());
}

#[test]
fn a_stopped_child_is_a_hang_mailed_and_replaced_with_restart() {
    let s = Setup::new();
    let smtp = s.smtp();
    // Hang window: 3 ticks (0.6 s) + the longest timeout (1 s).
    let conf = s.config("hang", OK_CHECK);
    let w = s.watchdog(&conf, &["--restart"], &[]);
    let first = w.child(None);
    signal(first, libc::SIGSTOP);
    let mails = wait_mails(&smtp, 1, |m| m.subject() == "[picomon] hang stopped");
    assert!(
        mails[0].body.contains("hung: no heartbeat for"),
        "{}",
        mails[0].body
    );
    let second = w.child(Some(first));
    assert_ne!(first, second);
    assert!(
        wait_for(LONG, || (!alive(first)).then_some(())).is_some(),
        "hung child not killed"
    );
}

#[test]
fn a_reload_hands_the_watchdog_the_new_mail_settings() {
    let s = Setup::new();
    let smtp = s.smtp();
    let conf = s.config("reload", OK_CHECK);
    let w = s.watchdog(&conf, &["--restart"], &[]);
    let first = w.child(None);
    // The watchdog never reads the config: only the daemon's handoff at
    // the reload can tell it the new subject.
    let text = s
        .config_text("reload", OK_CHECK)
        .replace("[picomon] reload stopped", "[picomon] reloaded stopped");
    fs::write(&conf, text).unwrap();
    signal(w.pid(), libc::SIGHUP);
    wait_for(LONG, || {
        w.stderr().contains("config reloaded").then_some(())
    })
    .unwrap_or_else(|| panic!("no reload; watchdog said:\n{}", w.stderr()));
    signal(first, libc::SIGKILL);
    let mails = wait_mails(&smtp, 1, |_| true);
    assert_eq!(mails[0].subject(), "[picomon] reloaded stopped");
}

#[test]
fn a_config_that_never_loaded_is_logged_at_error_and_not_mailed() {
    let s = Setup::new();
    let smtp = s.smtp();
    let conf = s.path("broken.rhai");
    fs::write(&conf, "config.base_tick = ;\n").unwrap();
    let mut w = s.watchdog(&conf, &[], &[]);
    let status = wait_for(LONG, || w.child.try_wait().ok().flatten()).expect("watchdog exit");
    assert_eq!(status.code(), Some(1), "{}", w.stderr());
    let err = w.stderr();
    assert!(
        err.contains("ERROR") && err.contains("before its config ever loaded"),
        "{err}"
    );
    // The report names what the child said: its config error.
    assert!(err.contains("broken.rhai:1:"), "{err}");
    // The watchdog mails synchronously before it exits: nothing went out.
    assert!(smtp.received().is_empty(), "{:#?}", smtp.received());
}

#[test]
fn mail_left_in_the_outbox_by_a_killed_child_is_delivered() {
    let s = Setup::new();
    // The SMTP server is down while the check fails: the Problem mail waits.
    let conf = s.config(
        "outbox",
        r#"config.emails.smtp_retry_timeout = 600;
add(plugin("check_dummy", ["2", "disk on fire"]), #{ name: "disk", target_name: "box", retry: 0 });"#,
    );
    let w = s.watchdog(&conf, &[], &[]);
    let child = w.child(None);
    let outbox = s.path("state-outbox/outbox");
    let queued = |d: &Path| {
        fs::read_dir(d)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(
        wait_for(LONG, || (queued(&outbox) >= 1).then_some(())).is_some(),
        "no mail queued: {}",
        w.stderr()
    );
    let smtp = s.smtp();
    signal(child, libc::SIGKILL);
    let mails = wait_mails(&smtp, 2, |_| true);
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject()).collect();
    assert!(
        subjects.contains(&"[picomon] outbox stopped"),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("CRITICAL") && s.contains("disk on box")),
        "{subjects:?}"
    );
    // Each once: once no mail is left in the outbox, nothing can be sent
    // again (its `.lock` file stays).
    let mails_left = || {
        fs::read_dir(&outbox).map_or(0, |r| {
            r.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "mail"))
                .count()
        })
    };
    assert!(
        wait_for(LONG, || (mails_left() == 0).then_some(())).is_some(),
        "outbox not emptied: {}",
        w.stderr()
    );
    assert_eq!(smtp.received().len(), 2, "{subjects:?}");
}

#[test]
fn a_crash_looping_child_yields_a_bounded_number_of_mails() {
    let s = Setup::new();
    let smtp = s.smtp();
    let conf = s.config("loop", OK_CHECK);
    // The child cannot switch to that user: it exits 1 at every start.
    let mut w = s.watchdog(&conf, &["--restart"], &["--user", "no-such-user-picomon"]);
    let start = Instant::now();
    // Backoff 1, 2, 4 s: within ~7.5 s at most 4 deaths, so at most 4 mails.
    let mails = wait_mails(&smtp, 3, |m| m.subject() == "[picomon] loop stopped");
    assert!(
        mails[0].body.contains("exited with status 1"),
        "{}",
        mails[0].body
    );
    assert!(
        mails[0].body.contains("--user no-such-user-picomon"),
        "{}",
        mails[0].body
    );
    assert!(
        mails[2].body.contains("restart number 3 in 4 s"),
        "{}",
        mails[2].body
    );
    while start.elapsed() < Duration::from_millis(7_500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let n = smtp.received().len();
    assert!((3..=4).contains(&n), "{n} mails in 7.5 s of crash loop");
    let _ = w.child.kill();
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn rc_local_starts_each_config_as_nobody_and_both_mail() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the rc.local loop needs root"
    );
    let s = Setup::new();
    let smtp = s.smtp();
    let etc = s.path("etc");
    fs::create_dir(&etc).unwrap();
    for name in ["alpha", "beta"] {
        let check = format!(
            r#"add(plugin("check_dummy", ["2", "{name} is down"]), #{{ name: "{name}-check", target_name: "box", retry: 0 }});"#
        );
        fs::write(
            etc.join(format!("{name}.rhai")),
            s.config_text(name, &check),
        )
        .unwrap();
    }
    let bin = watchdog_bin().parent().unwrap().to_path_buf();
    assert!(
        bin.join("picomon").is_file(),
        "build the picomon binary too (cargo build --workspace)"
    );
    let rc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/rc.local");
    let state = s.path("state");
    let out = Command::new("/bin/sh")
        .arg(&rc)
        .env("PICOMON_ETC", &etc)
        .env("PICOMON_LOG", s.path("log"))
        .env("PICOMON_STATE", &state)
        .env("PICOMON_BIN", &bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pids: Vec<i32> = ["alpha", "beta"]
        .iter()
        .map(|n| {
            let f = state.join(n).join("watchdog.pid");
            wait_for(LONG, || read_pid(&f)).unwrap_or_else(|| panic!("no {}", f.display()))
        })
        .collect();
    let mails = wait_mails(&smtp, 2, |m| m.subject().contains("CRITICAL"));
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject()).collect();
    assert!(
        subjects.iter().any(|s| s.contains("alpha-check")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("beta-check")),
        "{subjects:?}"
    );
    // Watchdogs and their picomon children run as nobody.
    for pid in &pids {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid.split_whitespace().skip(1).all(|u| u == "65534"),
            "{uid}"
        );
        let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        for c in children.split_whitespace() {
            let st = fs::read_to_string(format!("/proc/{c}/status")).unwrap_or_default();
            if let Some(u) = st.lines().find(|l| l.starts_with("Uid:")) {
                assert!(
                    u.split_whitespace().skip(1).all(|x| x == "65534"),
                    "child {c}: {u}"
                );
            }
        }
        let log = fs::read_to_string(s.path("log").join(if *pid == pids[0] {
            "alpha.log"
        } else {
            "beta.log"
        }))
        .unwrap_or_default();
        assert!(log.contains("running as nobody"), "{log}");
    }
    for pid in pids {
        signal(pid, libc::SIGTERM);
        assert!(wait_for(LONG, || (!alive(pid)).then_some(())).is_some());
    }
}

/// Live picomon daemons started with the config `conf`. A child picomon is
/// starting shows its parent's command line until its exec: not counted.
fn daemons_of(conf: &Path) -> Vec<i32> {
    let all = picomons_of(conf);
    let ppid = |pid: i32| -> i32 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rest = stat.rsplit(')').next().unwrap_or("");
        rest.split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    };
    all.iter()
        .copied()
        .filter(|&p| !all.contains(&ppid(p)))
        .collect()
}

fn picomons_of(conf: &Path) -> Vec<i32> {
    let needle = conf.display().to_string();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            let mut args = cmd.split('\0');
            let exe = args.next().unwrap_or("");
            exe.ends_with("/picomon") && args.any(|a| a == needle)
        })
        .filter(|&pid| alive(pid))
        .collect()
}

#[test]
fn a_killed_watchdog_takes_its_picomon_along_and_a_new_one_runs_exactly_one() {
    let s = Setup::new();
    let smtp = s.smtp();
    fs::write(s.path("status"), "2\nrelay down\n").unwrap();
    let counter = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/daemon/counter");
    let conf = s.config(
        "one",
        &format!(
            r#"add(plugin("{}", ["{}", "{}"]), #{{ name: "relay", target_name: "box", retry: 0 }});"#,
            counter.display(),
            s.path("runs").display(),
            s.path("status").display()
        ),
    );
    let mut first = s.watchdog(&conf, &["--restart"], &[]);
    let old = first.child(None);
    let problem = |m: &Mail| {
        m.subject().contains("CRITICAL: relay on box") && !m.subject().starts_with("Re:")
    };
    wait_mails(&smtp, 1, problem);
    signal(first.pid(), libc::SIGKILL);
    let _ = first.child.wait();
    // A new watchdog at once, as a supervisor restarting it would.
    let second = s.watchdog(&conf, &["--restart"], &[]);
    assert!(
        wait_for(LONG, || (!alive(old)).then_some(())).is_some(),
        "picomon {old} outlived its watchdog"
    );
    let new = second.child(Some(old));
    assert_eq!(daemons_of(&conf), vec![new], "{}", second.stderr());
    // The outage goes on under the new daemon without a second Problem
    // mail; its Recovery is the marker that every earlier mail arrived.
    fs::write(s.path("status"), "0\n").unwrap();
    let recovery =
        |m: &Mail| m.subject().starts_with("Re:") && m.subject().contains("relay on box");
    wait_mails(&smtp, 1, recovery);
    let subjects: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| m.subject().to_string())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:#?}");
    assert_eq!(daemons_of(&conf), vec![new]);
    drop(first);
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn a_picomon_that_dropped_to_nobody_still_dies_with_its_watchdog() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "--user needs root");
    let s = Setup::new();
    // nobody writes the child's pid file there.
    fs::set_permissions(s.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let conf = s.config("nobody", OK_CHECK);
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let mut w = s.watchdog(&conf, &[], &["--user", "nobody"]);
    let child = w.child(None);
    let status = fs::read_to_string(format!("/proc/{child}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid}"
    );
    // The uid change cleared the parent-death signal; picomon set it again.
    signal(w.pid(), libc::SIGKILL);
    let _ = w.child.wait();
    assert!(
        wait_for(LONG, || (!alive(child)).then_some(())).is_some(),
        "picomon {child} (as nobody) outlived its watchdog"
    );
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn a_root_only_password_file_serves_the_watchdog_and_its_picomon_as_nobody() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "--user needs root");
    let s = Setup::new();
    // nobody writes the child's pid file and its state there.
    fs::set_permissions(s.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let ca = |name| certs::Ca {
        dir: s.dir.path(),
        name,
        ext: "pem",
        key: certs::Key::Ec,
        days: 36500,
    };
    ca("ca").make("picomon test ca");
    ca("ca").sign(
        "server",
        "picomon test server",
        "IP:127.0.0.1",
        "serverAuth",
    );
    fs::set_permissions(s.path("ca.pem"), fs::Permissions::from_mode(0o644)).unwrap();
    let pw = s.path("smtp-password");
    fs::write(&pw, "s3cret pass\n").unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let smtp = Smtp::start_with(
        s.dir.path(),
        s.smtp_port,
        &Options {
            auth: Some("bob:s3cret pass"),
            ..Options::tls(Tls::Starttls)
        },
    );
    let checks = format!(
        r#"
config.emails.smtp_tls = "starttls";
config.emails.smtp_ca_file = "{dir}/ca.pem";
config.emails.smtp_user = "bob";
config.emails.smtp_password_file = "{dir}/smtp-password";
add(plugin("check_dummy", ["2", "down"]), #{{ name: "relay", target_name: "box", retry: 0 }});
"#,
        dir = s.dir.path().display()
    );
    let conf = s.config("secret", &checks);
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let w = s.watchdog(&conf, &["--user", "nobody"], &[]);
    // The picomon the watchdog started as nobody authenticates...
    let child = w.child(None);
    let problem = wait_mails(&smtp, 1, |m| m.subject().contains("CRITICAL: relay"));
    assert_eq!(problem[0].auth_user.as_deref(), Some("bob"));
    // ...and so does the watchdog's own notice when that picomon dies.
    signal(child, libc::SIGKILL);
    let notice = wait_mails(&smtp, 1, |m| m.subject() == "[picomon] secret stopped");
    assert_eq!(notice[0].auth_user.as_deref(), Some("bob"));
    assert!(!w.stderr().contains("s3cret"), "{}", w.stderr());
    assert_eq!(fs::read_to_string(&pw).unwrap(), "s3cret pass\n");
}
