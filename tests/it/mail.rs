//! Mail tests against a real SMTP server process (tests/smtp/server.py,
//! aiosmtpd) on loopback: composition and threading, header injection, the
//! durable outbox, digests, reports, STARTTLS / implicit TLS with a test CA,
//! AUTH, `test_mail`, failover, and the watchdog's helpers; then end to end
//! (`e2e_*`) against the real `picomon` binary with a plugin whose status a
//! test sets through a file: threads, SMTP down then up, SIGKILL and
//! restart mid-outage, a 40-check digest, reports, reload, `-1 --notify`,
//! `--test-mail`, a corrupt state file.
//!
//! Every test has its own temp dir (certificates, state dir, the server's
//! received messages) and its own server on a free port; waits poll with
//! generous deadlines, as the machine may be loaded.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use picomon::alert::{Phase, Transition, TransitionKind};
use picomon::clock::Now;
use picomon::config::{Config, SmtpTls};
use picomon::model::Status;
use picomon::notify::mail::{self, MailNotifier};
use picomon::notify::{CheckView, Notice, Notifier};
use support::certs::{Ca, Key};
use support::mounts::{can_mount, Tmpfs};
use support::ports::{reserve_port, reserve_port_on};
use support::rig::{self, Rig, StatusCheck};
use support::smtp::{Options, Smtp, Tls};
use support::Daemon;

const DEADLINE: Duration = support::smtp::DEADLINE;
const S: i64 = 1_000_000;

// ---------------------------------------------------------------- harness

/// Polls `f` until it returns Some, or fails the test, naming `what`, after
/// DEADLINE.
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    support::wait_until(DEADLINE, what, f)
}

/// A config that mails through 127.0.0.1:`port`, read by the real config
/// loader (so the mail keys are exercised as users write them).
fn config(dir: &Path, port: u16) -> Config {
    let path = dir.join("config.rhai");
    let d = dir.display();
    fs::write(
        &path,
        format!(
            r#"
config.state_dir = "{d}/state";
config.emails.to = ["ops@example.org"];
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.smtp_host = "127.0.0.1:{port}";
config.emails.smtp_tls = "none";
config.emails.subject_tpl = "[picomon] {{state}}: {{check}} on {{dest}}";
config.emails.report.every = 3600;
config.emails.report.subject = "[picomon] error report";
config.emails.digest_over = 5;
"#
        ),
    )
    .unwrap();
    let mut cfg = picomon::config::load(&path).expect("test config");
    assert_eq!(cfg.emails.smtp_host, vec![format!("127.0.0.1:{port}")]);
    assert_eq!(cfg.emails.smtp_tls, SmtpTls::None);
    assert_eq!(cfg.emails.report_every, Duration::from_secs(3600));
    // Below what a config may set (1 s), so retries in tests are quick.
    cfg.emails.smtp_retry_timeout = Duration::from_millis(500);
    cfg
}

fn notifier(cfg: &Config) -> MailNotifier {
    fs::create_dir_all(&cfg.state_dir).unwrap();
    MailNotifier::new(cfg, &cfg.state_dir).expect("MailNotifier::new")
}

const T0: i64 = 1_800_000_000 * S;

fn notice(id: &str, kind: TransitionKind, status: Status, at: i64, output: &str) -> Notice {
    Notice::new(
        format!("plugin {id}"),
        id.into(),
        "web1".into(),
        Transition {
            kind,
            status,
            previous: None,
            outage_start: T0,
            failed_runs: 2,
            at,
        },
        output.into(),
    )
}

fn view(id: &str, phase: Phase, output: &str) -> CheckView {
    CheckView {
        check_id: format!("plugin {id}"),
        name: id.into(),
        dest: "web1".into(),
        phase,
        status: Some(if phase == Phase::Ok {
            Status::Ok
        } else {
            Status::Critical
        }),
        failed_runs: if phase == Phase::Ok { 0 } else { 3 },
        retry: 1,
        outage_start: (phase != Phase::Ok).then_some(T0),
        last_run: Some(T0),
        last_output: output.into(),
        ack: None,
        silenced_by: None,
        ..CheckView::default()
    }
}

fn outbox_files(cfg: &Config) -> Vec<PathBuf> {
    mail_files(&cfg.state_dir.join("outbox"))
}

/// The outbox file `queue_mail` wrote (it must have written one).
fn outbox_path(q: anyhow::Result<mail::QueuedMail>) -> PathBuf {
    match q.expect("queue_mail") {
        mail::QueuedMail::InOutbox(p) => p,
        other => panic!("not queued in the outbox: {other:?}"),
    }
}

/// The mails given up, in `outbox/failed/`.
fn failed_files(cfg: &Config) -> Vec<PathBuf> {
    mail_files(&cfg.state_dir.join("outbox/failed"))
}

/// Waits until nothing is owed any more: no mail in the outbox and none in
/// memory (the dump has no "mail in memory" line).
fn wait_nothing_owed(cfg: &Config, n: &MailNotifier) {
    wait_for("an empty outbox and memory queue", || {
        (outbox_files(cfg).is_empty() && n.memory_queue_len() == 0).then_some(())
    });
}

/// The queued mails (`*.mail`) in an outbox directory, oldest first.
fn mail_files(outbox: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(outbox)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "mail"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A temp dir with the test certificates, a server started with `opts` on
/// `port`, and a config mailing to it at `host:PORT` over `tls` that trusts
/// the test CA.
fn tls_setup(
    port: u16,
    opts: &Options,
    host: &str,
    tls: SmtpTls,
) -> (tempfile::TempDir, Smtp, Config) {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let server = Smtp::start_with(dir.path(), port, opts);
    let mut cfg = config(dir.path(), port);
    cfg.emails.smtp_host = vec![format!("{host}:{port}")];
    cfg.emails.smtp_tls = tls;
    cfg.emails.smtp_ca_file = dir.path().join("ca.pem").display().to_string();
    (dir, server, cfg)
}

/// A temp dir, a test server started with `extra` arguments of server.py
/// (the refusals it is to answer) and a config that mails through it.
fn server_with(extra: &[&str]) -> (tempfile::TempDir, Smtp, Config) {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start_with(
        dir.path(),
        port,
        &Options {
            extra,
            ..Options::default()
        },
    );
    let cfg = config(dir.path(), port);
    (dir, server, cfg)
}

/// A test CA, a second unrelated CA, a server certificate for localhost,
/// 127.0.0.1 and ::1, and one for another name only.
fn make_certs(dir: &Path) {
    let ca = |name| Ca {
        dir,
        name,
        ext: "pem",
        key: Key::Ec,
        days: 36500,
    };
    for name in ["ca", "otherca"] {
        ca(name).make(&format!("picomon test {name}"));
    }
    for (name, san) in [
        ("server", "DNS:localhost,IP:127.0.0.1,IP:::1"),
        ("othername", "DNS:other.test"),
    ] {
        ca("ca").sign(name, "picomon test server", san, "serverAuth");
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn problem_update_recovery_arrive_threaded() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let cfg = config(dir.path(), port);
    let mut n = notifier(&cfg);

    let mut p = notice(
        "check_x",
        TransitionKind::Problem,
        Status::Warning,
        T0 + 60 * S,
        "DISK WARNING - 10% free",
    );
    p.transition.failed_runs = 2;
    n.transitions(vec![p], T0 + 60 * S);
    server.wait_messages(1);
    let mut u = notice(
        "check_x",
        TransitionKind::Update,
        Status::Critical,
        T0 + 120 * S,
        "DISK CRITICAL - 2% free",
    );
    u.transition.previous = Some(Status::Warning);
    n.transitions(vec![u], T0 + 120 * S);
    server.wait_messages(2);
    let mut r = notice(
        "check_x",
        TransitionKind::Recovery,
        Status::Ok,
        T0 + 245 * S,
        "DISK OK - 50% free",
    );
    r.transition.failed_runs = 4;
    n.transitions(vec![r], T0 + 245 * S);
    let msgs = server.wait_messages(3);
    assert_eq!(msgs.len(), 3);

    let (p, u, r) = (&msgs[0], &msgs[1], &msgs[2]);
    let root = p.one("Message-ID");
    assert!(
        root.starts_with("<picomon.") && root.ends_with('>'),
        "{root}"
    );
    assert_eq!(p.one("Subject"), "[picomon] WARNING: check_x on web1");
    assert!(p.header("In-Reply-To").is_empty());
    assert!(p.body.starts_with("WARNING since "), "{}", p.body);
    assert!(
        p.body.contains("\n\nDISK WARNING - 10% free\n"),
        "{}",
        p.body
    );
    for m in [u, r] {
        assert_eq!(m.one("In-Reply-To"), root);
        assert_eq!(m.one("References"), root);
        assert_ne!(m.one("Message-ID"), root);
        assert_eq!(m.one("Subject"), "Re: [picomon] WARNING: check_x on web1");
    }
    assert!(u.body.starts_with("CRITICAL (was WARNING)"), "{}", u.body);
    assert!(u.body.contains("DISK CRITICAL - 2% free"));
    assert!(
        r.body
            .starts_with("OK: recovered after 0:04:05 (4 failed runs)\n\nDISK OK - 50% free"),
        "{}",
        r.body
    );
    for m in &msgs {
        assert_eq!(m.one("Auto-Submitted"), "auto-generated");
        assert_eq!(m.one("From"), "picomon <picomon@example.org>");
        assert_eq!(m.one("To"), "ops@example.org");
        assert_eq!(m.rcpt_tos, vec!["ops@example.org"]);
        assert_eq!(m.mail_from, "picomon@example.org");
        assert!(!m.tls);
    }
    // Each mail carries the time it was composed, not the time it was sent.
    assert_eq!(p.one("Date"), "Fri, 15 Jan 2027 08:01:00 +0000");
    n.shutdown(Duration::from_secs(5));
}

#[test]
fn header_injection_from_check_output_is_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let mut cfg = config(dir.path(), port);
    cfg.emails.subject_tpl = "[picomon] {state}: {check} on {dest}".into();
    let mut n = notifier(&cfg);
    let evil = "\r\nBcc: victim@example.org";
    let mut p = notice("x", TransitionKind::Problem, Status::Critical, T0, evil);
    p.name = format!("evil{evil}");
    p.dest = "web1\nBcc: victim2@example.org\r\nX-Injected: 1".to_string();
    n.transitions(vec![p], T0);
    let m = &server.wait_messages(1)[0];
    assert_eq!(m.rcpt_tos, vec!["ops@example.org"]);
    assert!(m.header("Bcc").is_empty(), "{:#?}", m.headers);
    assert!(m.header("X-Injected").is_empty(), "{:#?}", m.headers);
    // The subject is one header line; the would-be headers are inert text.
    assert_eq!(
        m.one("Subject"),
        "[picomon] CRITICAL: evilBcc: victim@example.org on web1Bcc: victim2@example.orgX-Injected: 1"
    );
    // The output is kept in the body, where it can do no harm.
    assert!(m.body.contains("Bcc: victim@example.org"), "{}", m.body);
    n.shutdown(Duration::from_secs(5));
}

#[test]
fn outbox_keeps_mail_while_the_server_is_down_and_sends_it_once_with_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port(); // nothing listens yet
    let cfg = config(dir.path(), port);
    let mut n = notifier(&cfg);
    n.transitions(
        vec![notice(
            "down",
            TransitionKind::Problem,
            Status::Critical,
            T0,
            "DOWN",
        )],
        T0,
    );
    // The mail is on disk before any send, and stays there while sends fail.
    let files = outbox_files(&cfg);
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = fs::read_to_string(&files[0]).unwrap();
    let date = stored
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .expect("Date in the stored mail")
        .to_string();
    let lines = wait_for("a delivery error in the status lines", || {
        let l = n.status_lines();
        l.iter().any(|x| x.contains("delivery error")).then_some(l)
    });
    assert!(lines[0].starts_with("mail outbox: 1 waiting"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{port}"))),
        "{lines:?}"
    );
    assert_eq!(outbox_files(&cfg), files);

    let server = Smtp::start(dir.path(), port);
    let msgs = server.wait_messages(1);
    wait_for("an empty outbox", || {
        outbox_files(&cfg).is_empty().then_some(())
    });
    assert_eq!(server.received().len(), 1);
    assert_eq!(msgs[0].one("Date"), date);
    assert_eq!(date, "Fri, 15 Jan 2027 08:00:00 +0000");
    n.shutdown(Duration::from_secs(5));
}

#[test]
fn mail_left_by_a_dead_process_is_sent_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let cfg = config(dir.path(), port);
    {
        let mut n = notifier(&cfg);
        n.transitions(
            vec![notice(
                "left",
                TransitionKind::Problem,
                Status::Critical,
                T0,
                "DOWN",
            )],
            T0,
        );
        n.shutdown(Duration::from_millis(300));
    }
    assert_eq!(outbox_files(&cfg).len(), 1);
    let server = Smtp::start(dir.path(), port);
    let n = notifier(&cfg);
    let m = server.wait_messages(1);
    assert_eq!(m[0].one("Subject"), "[picomon] CRITICAL: left on web1");
    wait_for("an empty outbox", || {
        outbox_files(&cfg).is_empty().then_some(())
    });
    assert_eq!(server.received().len(), 1);
    drop(n);
}

#[test]
fn many_transitions_in_one_tick_become_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let cfg = config(dir.path(), port);
    let mut n = notifier(&cfg);
    let batch: Vec<Notice> = (0..40)
        .map(|i| {
            notice(
                &format!("c{i:02}"),
                TransitionKind::Problem,
                Status::Critical,
                T0,
                &format!("output of c{i:02}"),
            )
        })
        .collect();
    n.transitions(batch, T0);
    // A marker mail after the digest: the outbox is sent oldest first, so
    // once the marker is in, everything queued before it is too.
    n.transitions(
        vec![notice(
            "marker",
            TransitionKind::Problem,
            Status::Warning,
            T0 + S,
            "M",
        )],
        T0 + S,
    );
    let msgs = server.wait_messages(2);
    assert_eq!(msgs.len(), 2, "one digest and the marker");
    let d = &msgs[0];
    assert_eq!(
        d.one("Subject"),
        format!(
            "[picomon] DIGEST: 40 changes (40 problems, 0 updates, 0 recoveries) on {}",
            picomon::notify::mail::compose::hostname()
        )
    );
    for i in 0..40 {
        assert!(
            d.body
                .contains(&format!("PROBLEM CRITICAL: c{i:02} on web1")),
            "{}",
            d.body
        );
        assert!(d.body.contains(&format!("output of c{i:02}")));
    }
    assert_eq!(msgs[1].one("Subject"), "[picomon] WARNING: marker on web1");

    // digest_over (5) transitions are still single mails.
    let five: Vec<Notice> = (0..5)
        .map(|i| {
            notice(
                &format!("s{i}"),
                TransitionKind::Problem,
                Status::Critical,
                T0 + 2 * S,
                "x",
            )
        })
        .collect();
    n.transitions(five, T0 + 2 * S);
    let msgs = server.wait_messages(7);
    assert_eq!(msgs.len(), 7);
    n.shutdown(Duration::from_secs(5));
}

#[test]
fn a_thread_opened_by_a_digest_replies_to_the_digest_and_its_ack_reaches_the_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let mut cfg = config(dir.path(), port);
    cfg.listen = Some("0.0.0.0:9464".parse().unwrap());
    let mut n = notifier(&cfg);
    // Six problems (digest_over = 5): one digest, no Problem mail of their own.
    let batch: Vec<Notice> = (0..6)
        .map(|i| {
            notice(
                &format!("c{i}"),
                TransitionKind::Problem,
                Status::Critical,
                T0,
                "DOWN",
            )
        })
        .collect();
    n.transitions(batch, T0);
    let digest = server.wait_messages(1).remove(0);
    let digest_id = digest.one("Message-ID").to_string();
    assert!(digest_id.starts_with("<picomon.digest."), "{digest_id}");
    // c3 is escalated, acknowledged, then recovers.
    let mut e = notice(
        "c3",
        TransitionKind::Escalation,
        Status::Critical,
        T0 + 60 * S,
        "DOWN",
    );
    e.escalated_to = vec!["lead@example.org".into()];
    e.count = 1;
    n.transitions(vec![e], T0 + 60 * S);
    n.acknowledged(
        &view("c3", Phase::Problem, "DOWN"),
        "alice",
        "on it",
        T0 + 70 * S,
    );
    let mut r = notice(
        "c3",
        TransitionKind::Recovery,
        Status::Ok,
        T0 + 90 * S,
        "UP",
    );
    r.escalated_to = vec!["lead@example.org".into()];
    n.transitions(vec![r], T0 + 90 * S);
    let msgs = server.wait_messages(4);
    let (esc, ack, rec) = (&msgs[1], &msgs[2], &msgs[3]);
    for m in [esc, ack, rec] {
        assert_eq!(m.one("In-Reply-To"), digest_id, "{}", m.body);
        assert_eq!(m.one("References"), digest_id);
        assert_eq!(m.one("Cc"), "lead@example.org");
        assert!(m.rcpt_tos.contains(&"lead@example.org".to_string()));
    }
    assert!(
        ack.body.starts_with("Acknowledged by alice: on it"),
        "{}",
        ack.body
    );
    assert!(rec.body.starts_with("OK: recovered after"), "{}", rec.body);
    // A mail that asks for action says how, and where the status page is.
    let host = picomon::notify::mail::compose::hostname();
    assert!(
        esc.body.contains(&format!(
            "To act on it:\n  picomon ack 'c3 on web1' -m 'WHY'\n  \
             picomon silence 'c3 on web1' --for 2h -m 'WHY'\n  \
             status page: http://{host}:9464/\n"
        )),
        "{}",
        esc.body
    );
    assert!(!rec.body.contains("To act on it"), "{}", rec.body);
    // The other threads of the digest still reply to it after a restart.
    n.shutdown(Duration::from_secs(5));
    let mut again = notifier(&cfg);
    again.transitions(
        vec![notice(
            "c0",
            TransitionKind::Recovery,
            Status::Ok,
            T0 + 120 * S,
            "UP",
        )],
        T0 + 120 * S,
    );
    let msgs = server.wait_messages(5);
    assert_eq!(msgs[4].one("In-Reply-To"), digest_id);
    again.shutdown(Duration::from_secs(5));
}

#[test]
fn reports_are_sent_only_while_a_problem_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let mut cfg = config(dir.path(), port);
    cfg.emails.report_every = Duration::from_secs(600);
    let mut n = notifier(&cfg);
    let all_ok = vec![view("a", Phase::Ok, "A OK"), view("b", Phase::Ok, "B OK")];
    let one_bad = vec![
        view("a", Phase::Ok, "A OK"),
        view("b", Phase::Problem, "B CRITICAL - gone"),
        view("c", Phase::Retrying, "C WARNING"),
    ];
    // No PROBLEM for hours: no report.
    for k in 0..10 {
        n.tick(Now::at(T0 + k * 3600 * S), &all_ok);
    }
    // A PROBLEM: the first report one period after it showed, then every
    // period.
    let t1 = T0 + 100_000 * S;
    n.tick(Now::at(t1), &one_bad);
    n.tick(Now::at(t1 + 300 * S), &one_bad);
    assert_eq!(n.last_report(), Some(t1));
    n.tick(Now::at(t1 + 600 * S), &one_bad);
    n.tick(Now::at(t1 + 900 * S), &one_bad);
    n.tick(Now::at(t1 + 1200 * S), &one_bad);
    // All OK again: no more reports.
    for k in 0..10 {
        n.tick(Now::at(t1 + 1500 * S + k * 600 * S), &all_ok);
    }
    assert_eq!(n.last_report(), None);
    n.transitions(
        vec![notice(
            "marker",
            TransitionKind::Problem,
            Status::Warning,
            t1 + 99_999 * S,
            "M",
        )],
        t1 + 99_999 * S,
    );
    let msgs = server.wait_messages(3);
    assert_eq!(msgs.len(), 3, "two reports and the marker");
    for r in &msgs[..2] {
        assert_eq!(r.one("Subject"), "[picomon] error report");
        let pos_problem = r
            .body
            .find("Checks in PROBLEM (1)")
            .expect("problem section");
        let pos_b = r.body.find("b on web1: CRITICAL").expect("b listed");
        let pos_other = r.body.find("Other checks (2)").expect("other section");
        assert!(pos_problem < pos_b && pos_b < pos_other, "{}", r.body);
        assert!(r.body.contains("B CRITICAL - gone"));
        assert!(r.body.contains("c on web1: retrying 3/2"), "{}", r.body);
        assert!(r.body.contains("a on web1: OK - A OK"), "{}", r.body);
    }
    assert!(
        msgs[0].body.contains("(27:56:40, 3 failed runs)"),
        "{}",
        msgs[0].body
    );
    n.shutdown(Duration::from_secs(5));
}

#[test]
fn report_period_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let mut cfg = config(dir.path(), port);
    cfg.emails.report_every = Duration::from_secs(600);
    let bad = vec![view("b", Phase::Problem, "B CRITICAL")];
    {
        let mut n = notifier(&cfg);
        n.tick(Now::at(T0), &bad);
        n.tick(Now::at(T0 + 300 * S), &bad);
        n.shutdown(Duration::from_secs(5));
    }
    let mut n = notifier(&cfg);
    assert_eq!(n.last_report(), Some(T0));
    n.tick(Now::at(T0 + 600 * S), &bad);
    let m = server.wait_messages(1);
    assert_eq!(m[0].one("Subject"), "[picomon] error report");
    assert_eq!(n.last_report(), Some(T0 + 600 * S));
    n.shutdown(Duration::from_secs(5));
}

/// A moment `steady` seconds after T0 on the daemon's timeline, with the
/// wall clock `offset` seconds off it (stepped).
fn stepped(steady: i64, offset: i64) -> Now {
    Now {
        wall: T0 + (steady + offset) * S,
        steady: T0 + steady * S,
    }
}

#[test]
fn reports_keep_their_period_when_the_wall_clock_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let mut cfg = config(dir.path(), port);
    cfg.emails.report_every = Duration::from_secs(600);
    let mut n = notifier(&cfg);
    let bad = vec![view("b", Phase::Problem, "B CRITICAL")];
    n.tick(stepped(0, 0), &bad);
    n.tick(stepped(600, 0), &bad);
    server.wait_messages(1);
    // Set back an hour: the next report is still 600 s later, not 70 min.
    n.tick(stepped(900, -3600), &bad);
    n.tick(stepped(1200, -3600), &bad);
    server.wait_messages(2);
    // Forward two hours: no burst, the period goes on.
    for s in [1300, 1400, 1500, 1600, 1700] {
        n.tick(stepped(s, 3600), &bad);
    }
    assert_eq!(n.last_report(), Some(T0 + 1200 * S));
    n.tick(stepped(1800, 3600), &bad);
    assert_eq!(n.last_report(), Some(T0 + 1800 * S));
    n.shutdown(Duration::from_secs(5));
    let reports = server
        .received()
        .iter()
        .filter(|m| m.one("Subject") == "[picomon] error report")
        .count();
    assert_eq!(reports, 3);
    // On disk, the wall time of the last report in the stepped clock: a
    // restart goes on from there.
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(cfg.state_dir.join(mail::MAIL_STATE_FILE)).unwrap())
            .unwrap();
    assert_eq!(saved["last_report"], serde_json::json!(T0 + 5400 * S));
}

#[test]
fn restart_mid_outage_threads_the_recovery_to_the_original_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let cfg = config(dir.path(), port);
    {
        let mut n = notifier(&cfg);
        n.transitions(
            vec![notice(
                "r",
                TransitionKind::Problem,
                Status::Unknown,
                T0,
                "UNKNOWN - ?",
            )],
            T0,
        );
        server.wait_messages(1);
        n.shutdown(Duration::from_secs(5));
    }
    let mut n = notifier(&cfg);
    n.transitions(
        vec![notice(
            "r",
            TransitionKind::Recovery,
            Status::Ok,
            T0 + 3600 * S,
            "OK",
        )],
        T0 + 3600 * S,
    );
    let msgs = server.wait_messages(2);
    assert_eq!(msgs.len(), 2);
    let root = msgs[0].one("Message-ID");
    assert_eq!(msgs[1].one("In-Reply-To"), root);
    assert_eq!(msgs[1].one("References"), root);
    // The subject of the original, rendered with the state it had then.
    assert_eq!(msgs[1].one("Subject"), "Re: [picomon] UNKNOWN: r on web1");
    assert!(msgs[1].body.starts_with("OK: recovered after 1:00:00"));
    n.shutdown(Duration::from_secs(5));
}

#[test]
fn no_recipients_means_no_mail_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let mut cfg = config(dir.path(), port);
    cfg.emails.to.clear();
    let mut n = notifier(&cfg);
    n.transitions(
        vec![notice(
            "x",
            TransitionKind::Problem,
            Status::Critical,
            T0,
            "DOWN",
        )],
        T0,
    );
    n.tick(Now::at(T0 + 7200 * S), &[view("x", Phase::Problem, "DOWN")]);
    n.tick(
        Now::at(T0 + 9 * 7200 * S),
        &[view("x", Phase::Problem, "DOWN")],
    );
    assert!(outbox_files(&cfg).is_empty());
    assert_eq!(n.status_lines()[0], "mail outbox: empty");
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains("config.emails.to is empty"), "{err}");
}

#[test]
fn starttls_with_a_test_ca() {
    let (_held, port) = reserve_port();
    let (_dir, server, cfg) = tls_setup(
        port,
        &Options::tls(Tls::Starttls),
        "localhost",
        SmtpTls::Starttls,
    );
    let answer = mail::test_mail(&cfg).expect("test mail over STARTTLS");
    assert!(
        answer.starts_with(&format!("localhost:{port}: 250 ")),
        "{answer}"
    );
    let m = server.wait_messages(1);
    assert!(m[0].tls, "the session was not encrypted");
    assert_eq!(
        m[0].one("Subject"),
        format!(
            "[picomon] TEST: test mail on {}",
            picomon::notify::mail::compose::hostname()
        )
    );
}

#[test]
fn starttls_required_but_not_offered_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let mut cfg = config(dir.path(), port);
    cfg.emails.smtp_tls = SmtpTls::Starttls;
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains("STARTTLS"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(server.received().is_empty(), "sent in clear text");
}

#[test]
fn implicit_tls_with_a_test_ca() {
    let (_held, port) = reserve_port();
    let (_dir, server, cfg) = tls_setup(
        port,
        &Options::tls(Tls::Implicit),
        "127.0.0.1",
        SmtpTls::Tls,
    );
    // Through the outbox and the sender thread this time.
    let mut n = notifier(&cfg);
    n.transitions(
        vec![notice(
            "tls",
            TransitionKind::Problem,
            Status::Critical,
            T0,
            "DOWN",
        )],
        T0,
    );
    let m = server.wait_messages(1);
    assert!(m[0].tls);
    assert_eq!(m[0].one("Subject"), "[picomon] CRITICAL: tls on web1");
    n.shutdown(Duration::from_secs(5));
}

#[test]
fn implicit_tls_over_ipv6_loopback() {
    let (_held, port) = reserve_port_on("::1");
    let opts = Options {
        extra: &["--bind", "::1"],
        ..Options::tls(Tls::Implicit)
    };
    let (_dir, server, cfg) = tls_setup(port, &opts, "[::1]", SmtpTls::Tls);
    let answer = mail::test_mail(&cfg).expect("test mail over IPv6 and TLS");
    assert!(
        answer.starts_with(&format!("[::1]:{port}: 250 ")),
        "{answer}"
    );
    let m = server.wait_messages(1);
    assert!(m[0].tls);
}

#[test]
fn wrong_ca_fails_with_unknown_issuer() {
    let (_held, port) = reserve_port();
    let (dir, server, mut cfg) = tls_setup(
        port,
        &Options::tls(Tls::Implicit),
        "127.0.0.1",
        SmtpTls::Tls,
    );
    cfg.emails.smtp_ca_file = dir.path().join("otherca.pem").display().to_string();
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains("unknown issuer"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("smtp_ca_file"), "{err}");
    // Without any extra CA the public roots do not know the test CA either.
    cfg.emails.smtp_ca_file.clear();
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains("unknown issuer"), "{err}");
    assert!(server.received().is_empty());
}

#[test]
fn certificate_for_another_name_fails_with_name_mismatch() {
    let opts = Options {
        cert: "othername",
        ..Options::tls(Tls::Starttls)
    };
    let (_held, port) = reserve_port();
    let (_dir, server, cfg) = tls_setup(port, &opts, "localhost", SmtpTls::Starttls);
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains("name mismatch"), "{err}");
    assert!(err.contains("other.test"), "{err}");
    assert!(server.received().is_empty());
}

#[test]
fn auth_with_a_password_file() {
    let opts = Options {
        auth: Some("bob:s3cret pass"),
        ..Options::tls(Tls::Starttls)
    };
    let (_held, port) = reserve_port();
    let (dir, server, mut cfg) = tls_setup(port, &opts, "localhost", SmtpTls::Starttls);
    cfg.emails.smtp_user = "bob".into();
    let pw = dir.path().join("smtp-password");
    fs::write(&pw, "wrong\n").unwrap();
    cfg.emails.smtp_password_file = pw.display().to_string();
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains("535"), "{err}");
    assert!(err.contains("smtp_password_file"), "{err}");
    assert!(
        !err.contains("wrong"),
        "the password must never be shown: {err}"
    );

    fs::write(&pw, "s3cret pass\n").unwrap();
    let answer = mail::test_mail(&cfg).expect("authenticated test mail");
    assert!(answer.contains(": 250 "), "{answer}");
    let m = server.wait_messages(1);
    assert_eq!(m[0].auth_user.as_deref(), Some("bob"));
    assert!(m[0].tls);
}

#[test]
fn test_mail_says_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let cfg = config(dir.path(), port);
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(err.contains("smtp_host"), "{err}");
}

#[test]
fn failover_uses_the_next_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_dead_held, dead) = reserve_port();
    let (_held, port) = reserve_port();
    let server = Smtp::start(dir.path(), port);
    let mut cfg = config(dir.path(), port);
    cfg.emails.smtp_host = vec![
        format!("127.0.0.1:{dead}"),
        format!("[::1]:{dead}"),
        format!("127.0.0.1:{port}"),
    ];
    let answer = mail::test_mail(&cfg).expect("failover");
    assert!(
        answer.starts_with(&format!("127.0.0.1:{port}: 250")),
        "{answer}"
    );
    assert_eq!(server.wait_messages(1).len(), 1);
}

#[test]
fn watchdog_queues_and_delivers_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let cfg = config(dir.path(), port);
    let p = outbox_path(mail::queue_mail(
        &cfg,
        &cfg.state_dir,
        "[picomon] daemon stopped",
        "exit code 1\r\nBcc: x@example.org",
    ));
    assert!(p.exists());
    // Server down: the pass fails, says why, and keeps the mail.
    let err = mail::deliver_outbox(&cfg, &cfg.state_dir, Duration::from_secs(10)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("1 still wait"), "{msg}");
    assert!(p.exists());
    let server = Smtp::start(dir.path(), port);
    let sent =
        mail::deliver_outbox(&cfg, &cfg.state_dir, Duration::from_secs(30)).expect("deliver");
    assert_eq!(sent, 1);
    assert!(!p.exists());
    let m = server.received();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].one("Subject"), "[picomon] daemon stopped");
    assert!(m[0].header("Bcc").is_empty());
    assert!(m[0].body.starts_with("exit code 1"), "{}", m[0].body);
}

#[test]
fn a_refused_mail_does_not_block_later_mail_and_is_given_up_after_three_tries() {
    let (_dir, server, mut cfg) = server_with(&["--reject-rcpt", "gone@example.org"]);
    cfg.emails.to = vec!["gone@example.org".into()];
    let refused = outbox_path(mail::queue_mail(
        &cfg,
        &cfg.state_dir,
        "first",
        "to a gone mailbox",
    ));
    cfg.emails.to = vec!["ops@example.org".into()];
    let fine = outbox_path(mail::queue_mail(&cfg, &cfg.state_dir, "second", "to ops"));
    let err = mail::deliver_outbox(&cfg, &cfg.state_dir, Duration::from_secs(30)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("1 mails delivered, 1 still wait"), "{msg}");
    assert!(msg.contains("550"), "{msg}");
    assert!(refused.exists(), "a refused mail is kept for another try");
    assert!(!fine.exists());
    let m = server.received();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].one("Subject"), "second");
    // Two more refusals (the count is kept in the file across processes),
    // then it is given up: moved to outbox/failed/ with the reason.
    let err = mail::deliver_outbox(&cfg, &cfg.state_dir, Duration::from_secs(30)).unwrap_err();
    assert!(format!("{err:#}").contains("try 2 of 3"), "{err:#}");
    assert_eq!(
        mail::deliver_outbox(&cfg, &cfg.state_dir, Duration::from_secs(30)).unwrap(),
        0
    );
    assert!(!refused.exists());
    let failed = failed_files(&cfg);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let kept = fs::read_to_string(&failed[0]).unwrap();
    assert!(kept.contains("\nto: gone@example.org\n"), "{kept}");
    assert!(
        kept.contains("\nreason: gone@example.org refused 3 times") && kept.contains("550"),
        "{kept}"
    );
    assert!(kept.contains("\r\nSubject: first\r\n"), "{kept}");
    assert_eq!(server.received().len(), 1);
}

#[test]
fn shutdown_tries_the_outbox_once_more() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let mut cfg = config(dir.path(), port);
    // A long backoff: only the shutdown pass can deliver in time.
    cfg.emails.smtp_retry_timeout = Duration::from_secs(3600);
    let mut n = notifier(&cfg);
    n.transitions(
        vec![notice(
            "bye",
            TransitionKind::Problem,
            Status::Critical,
            T0,
            "DOWN",
        )],
        T0,
    );
    wait_for("a failed attempt", || {
        n.status_lines()
            .iter()
            .any(|l| l.contains("error"))
            .then_some(())
    });
    let server = Smtp::start(dir.path(), port);
    n.shutdown(Duration::from_secs(20));
    assert_eq!(server.received().len(), 1);
    assert!(outbox_files(&cfg).is_empty());
}

#[test]
fn a_recipient_refused_at_rcpt_gets_nothing_and_delays_nobody() {
    let (_dir, server, mut cfg) = server_with(&["--reject-rcpt", "gone@example.org"]);
    let (ops, gone, two) = ("ops@example.org", "gone@example.org", "two@example.org");
    cfg.emails.to = vec![ops.into(), gone.into(), two.into()];
    // A long backoff: the refused recipient is not tried again while the
    // test runs, so whatever arrives did not wait for it.
    cfg.emails.smtp_retry_timeout = Duration::from_secs(3600);
    let mut n = notifier(&cfg);
    let subject = "[picomon] CRITICAL: rcpt on web1";
    let re = format!("Re: {subject}");
    n.transitions(
        vec![notice(
            "rcpt",
            TransitionKind::Problem,
            Status::Critical,
            T0,
            "DOWN",
        )],
        T0,
    );
    server.wait_for(ops, subject);
    server.wait_for(two, subject);
    let lines = wait_for("the refusal in the dump", || {
        let l = n.status_lines();
        l.iter()
            .any(|x| x.starts_with("mail refused for gone@example.org") && x.contains("550"))
            .then_some(l)
    });
    eprintln!("dump: {lines:#?}");
    n.transitions(
        vec![notice(
            "rcpt",
            TransitionKind::Recovery,
            Status::Ok,
            T0 + 60 * S,
            "UP",
        )],
        T0 + 60 * S,
    );
    server.wait_for(ops, &re);
    server.wait_for(two, &re);
    // Only the refused recipient is still owed each mail, one try counted.
    let files = wait_for("both mails owed to gone@ alone", || {
        let f = outbox_files(&cfg);
        let texts: Vec<String> = f
            .iter()
            .filter_map(|p| fs::read_to_string(p).ok())
            .collect();
        (texts.len() == 2
            && texts.iter().all(|t| {
                t.contains("\nto: gone@example.org\n")
                    && t.contains("\ntries: 1 gone@example.org\n")
                    && !t.contains("to: ops@")
                    && !t.contains("to: two@")
            }))
        .then_some(f)
    });
    assert_eq!(files.len(), 2);
    // The last pass at shutdown is the second try, the watchdog's pass the
    // third: then each is given up.
    n.shutdown(Duration::from_secs(10));
    mail::deliver_outbox(&cfg, &cfg.state_dir, Duration::from_secs(30)).unwrap();
    assert!(outbox_files(&cfg).is_empty());
    let failed = failed_files(&cfg);
    assert_eq!(failed.len(), 2, "{failed:?}");
    for f in &failed {
        let t = fs::read_to_string(f).unwrap();
        assert!(t.contains("\nto: gone@example.org\n"), "{t}");
        assert!(!t.contains("to: ops@") && !t.contains("to: two@"), "{t}");
        assert!(
            t.contains("reason: gone@example.org refused 3 times"),
            "{t}"
        );
        assert!(t.contains("no such user here"), "{t}");
    }
    // Nothing is owed and nobody sends any more: the counts are final.
    for r in [ops, two] {
        assert_eq!(server.count(r, subject), 1, "{r}");
        assert_eq!(server.count(r, &re), 1, "{r}");
    }
    assert_eq!(server.count(gone, subject) + server.count(gone, &re), 0);
    assert_eq!(server.received().len(), 2);
}

#[test]
fn authentication_required_is_a_setting_to_fix_not_a_reason_to_give_up_mail() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    // The server wants AUTH; the config has no smtp_user: 530 to MAIL.
    let server = Smtp::start_with(
        dir.path(),
        port,
        &Options {
            auth: Some("bob:pw"),
            ..Options::default()
        },
    );
    let cfg = config(dir.path(), port);
    let p = outbox_path(mail::queue_mail(&cfg, &cfg.state_dir, "needs auth", "body"));
    for _ in 0..4 {
        let err = mail::deliver_outbox(&cfg, &cfg.state_dir, Duration::from_secs(10)).unwrap_err();
        assert!(format!("{err:#}").contains("530"), "{err:#}");
    }
    assert!(p.exists(), "kept until the setting is fixed");
    assert!(failed_files(&cfg).is_empty());
    assert!(!fs::read_to_string(&p).unwrap().contains("mail-tries"));
    assert!(server.received().is_empty());
}

#[test]
fn test_mail_names_a_refused_recipient_and_still_reaches_the_others() {
    let (_dir, server, mut cfg) = server_with(&["--reject-rcpt", "gone@example.org"]);
    cfg.emails.to = vec!["ops@example.org".into(), "gone@example.org".into()];
    let err = mail::test_mail(&cfg).unwrap_err();
    eprintln!("test_mail failed as expected: {err}");
    assert!(err.contains("delivered to [ops@example.org]"), "{err}");
    assert!(
        err.contains("gone@example.org") && err.contains("550"),
        "{err}"
    );
    let m = server.wait_messages(1);
    assert_eq!(m[0].rcpt_tos, vec!["ops@example.org"]);
}

/// A server that answers 4xx once (`extra`, logging `refusal`): each
/// recipient gets the mail exactly once.
fn temporary_refusal_then_delivered_once(extra: &[&str], refusal: &str) {
    let (_dir, server, mut cfg) = server_with(extra);
    let (ops, two) = ("ops@example.org", "two@example.org");
    cfg.emails.to = vec![ops.into(), two.into()];
    let mut n = notifier(&cfg);
    let subject = "[picomon] CRITICAL: temp on web1";
    n.transitions(
        vec![notice(
            "temp",
            TransitionKind::Problem,
            Status::Critical,
            T0,
            "DOWN",
        )],
        T0,
    );
    server.wait_for(ops, subject);
    server.wait_for(two, subject);
    wait_nothing_owed(&cfg, &n);
    let log = fs::read_to_string(&server.log).unwrap();
    assert_eq!(log.matches(refusal).count(), 1, "{log}");
    n.shutdown(Duration::from_secs(10));
    assert!(outbox_files(&cfg).is_empty() && failed_files(&cfg).is_empty());
    assert_eq!(server.count(ops, subject), 1);
    assert_eq!(server.count(two, subject), 1);
}

#[test]
fn a_451_at_rcpt_is_retried_for_that_recipient_alone() {
    temporary_refusal_then_delivered_once(
        &["--fail-rcpt-4xx-once", "two@example.org"],
        "refused RCPT two@example.org with 451",
    );
}

#[test]
fn a_451_after_the_data_is_retried_and_delivered_once() {
    temporary_refusal_then_delivered_once(&["--data-4xx-first", "1"], "refused DATA with 451");
}

#[test]
fn a_2000_character_check_name_is_delivered_shortened_in_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    // aiosmtpd refuses lines over 1001 octets with 500 "Line too long".
    let server = Smtp::start(dir.path(), port);
    let cfg = config(dir.path(), port);
    let mut n = notifier(&cfg);
    let name = format!("check-{}", "n".repeat(1994));
    assert_eq!(name.chars().count(), 2000);
    let p = notice(&name, TransitionKind::Problem, Status::Critical, T0, "DOWN");
    let r = notice(
        &name,
        TransitionKind::Recovery,
        Status::Ok,
        T0 + 60 * S,
        "UP",
    );
    n.transitions(vec![p], T0);
    let shown: String = name.chars().take(199).collect();
    let subject = format!("[picomon] CRITICAL: {shown}… on web1");
    server.wait_for("ops@example.org", &subject);
    n.transitions(vec![r], T0 + 60 * S);
    let re = format!("Re: {subject}");
    server.wait_for("ops@example.org", &re);
    wait_nothing_owed(&cfg, &n);
    n.shutdown(Duration::from_secs(10));
    let msgs = server.received();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert_eq!(server.count("ops@example.org", &subject), 1);
    assert_eq!(server.count("ops@example.org", &re), 1);
    for m in &msgs {
        assert!(
            m.body_decoded.contains(&format!("check {name} on web1")),
            "{}",
            m.body_decoded
        );
    }
    assert!(failed_files(&cfg).is_empty());
}

#[test]
fn a_mail_refused_with_5xx_goes_to_failed_and_later_mail_still_arrives() {
    // A stricter server: lines over 300 octets get 500 "Line too long".
    let (_dir, server, cfg) = server_with(&["--max-line", "300"]);
    // A subject of 390 characters is within picomon's limits (one line of
    // 399 octets), but not this server's.
    let long = "s".repeat(390);
    let refused = outbox_path(mail::queue_mail(&cfg, &cfg.state_dir, &long, "refused"));
    let mut n = notifier(&cfg);
    n.transitions(
        vec![notice(
            "marker",
            TransitionKind::Problem,
            Status::Warning,
            T0,
            "M",
        )],
        T0,
    );
    let marker = "[picomon] WARNING: marker on web1";
    server.wait_for("ops@example.org", marker);
    // Tried twice more with backoff, then given up.
    let failed = wait_for("the refused mail in outbox/failed/", || {
        let f = failed_files(&cfg);
        (f.len() == 1).then_some(f)
    });
    wait_nothing_owed(&cfg, &n);
    assert!(!refused.exists());
    let kept = fs::read_to_string(&failed[0]).unwrap();
    assert!(
        kept.contains("reason: the mail was refused 3 times") && kept.contains("500"),
        "{kept}"
    );
    let lines = wait_for("the failed mail in the dump", || {
        let l = n.status_lines();
        l.iter()
            .any(|x| x.starts_with("mail failed: 1 in") && x.contains("Line too long"))
            .then_some(l)
    });
    eprintln!("dump: {lines:#?}");
    n.shutdown(Duration::from_secs(10));
    let msgs = server.received();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert_eq!(server.count("ops@example.org", marker), 1);
}

// ------------------------------------------- end to end: the real binary

/// The end-to-end rig with `flappy` alerting after one retry, every 0.3 s
/// tick, and `extra` after it.
fn e2e(extra: &str) -> Rig {
    Rig::with(
        StatusCheck {
            retry: 1,
            ..rig::FLAPPY
        },
        0.3,
        "",
        extra,
    )
}

/// The mails queued in the rig's outbox.
fn outbox(t: &Rig) -> Vec<PathBuf> {
    mail_files(&t.path("state/outbox"))
}

/// The check's phase in the state file ("" before the first save).
fn state_phase(t: &Rig) -> String {
    fs::read_to_string(t.path("state/state"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| {
            v["checks"]
                .as_object()
                .and_then(|m| m.values().next().cloned())
        })
        .and_then(|c| c["alert"]["phase"].as_str().map(String::from))
        .unwrap_or_default()
}

#[test]
fn e2e_problem_update_recovery_arrive_once_each_and_threaded() {
    let t = e2e("");
    let server = t.server();
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    let p = server.wait_messages(1);
    // It stays failed for a while: no second mail.
    t.wait_runs(4);
    t.set_status(1, "WARNING - degraded");
    let u = server.wait_messages(2);
    t.wait_runs(3);
    t.set_status(0, "OK - fine again");
    server.wait_messages(3);
    t.wait_runs(4);
    let msgs = server.received();
    assert_eq!(
        msgs.len(),
        3,
        "exactly Problem, Update, Recovery: {msgs:#?}"
    );
    assert_eq!(p[0].one("Message-ID"), msgs[0].one("Message-ID"));
    assert_eq!(u[1].one("Message-ID"), msgs[1].one("Message-ID"));

    let root = msgs[0].one("Message-ID");
    assert_eq!(msgs[0].one("Subject"), "[picomon] CRITICAL: flappy on web1");
    assert!(
        msgs[0].body.starts_with("CRITICAL since "),
        "{}",
        msgs[0].body
    );
    assert!(msgs[0].body.contains("(2 failed runs)"), "{}", msgs[0].body);
    assert!(msgs[0].body.contains("CRITICAL - down"));
    assert!(
        msgs[1].body.starts_with("WARNING (was CRITICAL)"),
        "{}",
        msgs[1].body
    );
    assert!(msgs[1].body.contains("WARNING - degraded"));
    assert!(
        msgs[2].body.starts_with("OK: recovered after "),
        "{}",
        msgs[2].body
    );
    assert!(msgs[2].body.contains("OK - fine again"));
    for m in &msgs[1..] {
        assert_eq!(m.one("In-Reply-To"), root);
        assert_eq!(m.one("References"), root);
        assert_eq!(m.one("Subject"), "Re: [picomon] CRITICAL: flappy on web1");
    }
    assert!(d.stop().success(), "{}", d.stderr());
}

#[test]
fn e2e_smtp_down_then_up_delivers_once_with_the_original_date() {
    let t = e2e("");
    t.set_status(2, "CRITICAL - down");
    let d = t.daemon();
    let files = wait_for("a mail in the outbox", || {
        let f = outbox(&t);
        (!f.is_empty()).then_some(f)
    });
    let stored = fs::read_to_string(&files[0]).unwrap();
    let date = stored
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .expect("Date")
        .to_string();
    wait_for("a logged delivery failure", || {
        d.stderr().contains("mail delivery failed").then_some(())
    });
    // The SIGUSR1 dump shows the waiting mail and the error.
    d.signal(libc::SIGUSR1);
    wait_for("the outbox in the dump", || {
        let out = d.stdout();
        (out.contains("mail outbox: 1 waiting") && out.contains("last mail delivery error"))
            .then_some(())
    });
    let server = t.server();
    let m = server.wait_messages(1);
    assert_eq!(m[0].one("Date"), date);
    assert_eq!(m[0].one("Subject"), "[picomon] CRITICAL: flappy on web1");
    wait_for("an empty outbox", || outbox(&t).is_empty().then_some(()));
    t.wait_runs(3);
    assert_eq!(server.received().len(), 1);
}

/// A state directory as picomon wrote it before names were per target:
/// every check keyed by its name alone. The open outage of a check whose
/// name is still unique carries over (its Recovery replies to the Problem
/// mail sent then); one whose name several targets now share is each
/// `NAME on TARGET` and starts afresh, with a warning.
#[test]
fn e2e_an_old_state_file_keeps_its_open_threads() {
    let t = e2e(
        r#"add(shell("true"), #{ name: "web port", target_name: "web2" });
add(shell("true"), #{ name: "web port", target_name: "web3" });"#,
    );
    let start: i64 = 1_765_000_000 * S;
    let outage = |name: &str| {
        format!(
            r#""{name}": {{
      "alert": {{ "phase": "Problem", "failed_runs": 2, "outage_start": {start}, "last_status": "Critical" }},
      "last_output": "CRITICAL - down",
      "last_run": {start}
    }}"#
        )
    };
    let state = t.path("state");
    fs::create_dir_all(&state).unwrap();
    fs::write(
        state.join("state"),
        format!(
            "{{\n  \"checks\": {{\n    {},\n    {}\n  }}\n}}\n",
            outage("flappy"),
            outage("web port")
        ),
    )
    .unwrap();
    let thread = |name: &str, dest: &str| {
        format!(
            r#""{name}": {{ "outage_start": {start}, "subject": "[picomon] CRITICAL: {name} on {dest}" }}"#
        )
    };
    fs::write(
        state.join(mail::MAIL_STATE_FILE),
        format!(
            "{{ \"threads\": {{ {}, {} }}, \"last_report\": null }}",
            thread("flappy", "web1"),
            thread("web port", "web2")
        ),
    )
    .unwrap();
    let server = t.server();
    t.set_status(0, "OK - back");
    let mut d = t.daemon();
    let m = server.wait_messages(1);
    t.wait_runs(3);
    let m2 = server.received();
    assert_eq!(m2.len(), 1, "only the Recovery: {m2:#?}");
    let root = format!(
        "<picomon.{:016x}.{start}@{}>",
        mail::compose::stable_hash("flappy"),
        picomon::host::this_host()
    );
    assert_eq!(m[0].one("In-Reply-To"), root);
    assert_eq!(
        m[0].one("Subject"),
        "Re: [picomon] CRITICAL: flappy on web1"
    );
    assert!(
        m[0].body.starts_with("OK: recovered after "),
        "{}",
        m[0].body
    );
    assert!(
        d.stderr()
            .contains("the open outage of \"web port\" is not carried over"),
        "{}",
        d.stderr()
    );
    assert!(d.stop().success(), "{}", d.stderr());
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(state.join("state")).unwrap()).unwrap();
    let ids: Vec<&String> = saved["checks"].as_object().unwrap().keys().collect();
    // (`picomon:` is the daemon's own check of its state directory.)
    assert_eq!(
        ids,
        [
            "flappy",
            "picomon:state_dir",
            "web port on web2",
            "web port on web3"
        ]
    );
    assert_eq!(saved["checks"]["flappy"]["alert"]["phase"], "Ok");
}

/// The cost of keeping a unique name as the identity: when a second target
/// takes the name, the first check becomes `NAME on TARGET`, its open
/// outage is dropped with a warning, and a new one opens while it fails.
#[test]
fn e2e_a_name_a_second_target_takes_starts_the_first_check_afresh() {
    let t = e2e("");
    let server = t.server();
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    let first = server.wait_messages(1);
    let mut cfg = fs::read_to_string(t.config()).unwrap();
    cfg.push_str("add(shell(\"true\"), #{ name: \"flappy\", target_name: \"web9\" });\n");
    fs::write(t.config(), cfg).unwrap();
    let out = t.picomon(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        d.wait_stderr(
            "the open outage of \"flappy\" is not carried over",
            1,
            DEADLINE
        ),
        "{}",
        d.stderr()
    );
    let m = server.wait_messages(2);
    assert_eq!(m[1].one("Subject"), "[picomon] CRITICAL: flappy on web1");
    assert!(m[1].header("In-Reply-To").is_empty(), "a new thread");
    assert_ne!(m[1].one("Message-ID"), first[0].one("Message-ID"));
    t.set_status(0, "OK - back");
    let m = server.wait_messages(3);
    assert_eq!(m[2].one("In-Reply-To"), m[1].one("Message-ID"));
    assert!(d.stop().success(), "{}", d.stderr());
}

#[test]
fn e2e_sigkill_with_mail_in_the_outbox_then_restart_mid_outage() {
    let t = e2e("");
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    let files = wait_for("a mail in the outbox and a PROBLEM state", || {
        let f = outbox(&t);
        (!f.is_empty() && state_phase(&t) == "Problem").then_some(f)
    });
    d.kill();
    assert_eq!(outbox(&t), files, "the mail survives SIGKILL");
    let stored = fs::read_to_string(&files[0]).unwrap();

    let server = t.server();
    let mut d = t.daemon();
    let m = server.wait_messages(1);
    // The same bytes as stored: same Date, same Message-ID.
    for h in ["Date", "Message-ID"] {
        let want = stored
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{h}: ")))
            .unwrap();
        assert_eq!(m[0].one(h), want);
    }
    // Still failing after the restart: still a PROBLEM, no second Problem.
    t.wait_runs(4);
    assert_eq!(server.received().len(), 1);
    assert_eq!(state_phase(&t), "Problem");
    t.set_status(0, "OK - back");
    let m = server.wait_messages(2);
    assert_eq!(m.len(), 2);
    assert_eq!(m[1].one("In-Reply-To"), m[0].one("Message-ID"));
    assert_eq!(
        m[1].one("Subject"),
        "Re: [picomon] CRITICAL: flappy on web1"
    );
    assert!(
        m[1].body.starts_with("OK: recovered after "),
        "{}",
        m[1].body
    );
    assert!(d.stop().success(), "{}", d.stderr());
    assert_eq!(state_phase(&t), "Ok");
}

#[test]
fn e2e_sigkill_while_the_server_delays_quit_sends_the_mail_once() {
    let t = e2e("");
    // The server records the mail at the end of its data and answers QUIT
    // 6 s later: the daemon is killed in that wait.
    let server = Smtp::start_with(
        t.dir(),
        t.port,
        &Options {
            extra: &["--quit-delay", "6"],
            ..Options::default()
        },
    );
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    let m = server.wait_messages(1);
    wait_for("the daemon's QUIT", || {
        let log = fs::read_to_string(&server.log).unwrap_or_default();
        log.contains("answering QUIT").then_some(())
    });
    d.kill();
    assert!(
        outbox(&t).is_empty(),
        "the accepted mail left the outbox before QUIT: {:?}",
        outbox(&t)
    );
    let mut d = t.daemon();
    // Still failing after the restart; several passes and ticks later the
    // mail has still arrived once.
    t.wait_runs(6);
    let all = server.received();
    let ids: Vec<&str> = all.iter().map(|m| m.one("Message-ID")).collect();
    assert_eq!(ids, vec![m[0].one("Message-ID")], "{all:#?}");
    assert!(d.stop().success(), "{}", d.stderr());
}

#[test]
fn e2e_forty_failures_in_one_tick_make_one_digest() {
    // A tick of 3 s, so the 40 runs of tick 0 end within it even on a
    // loaded machine: a run still going when the next tick comes has its
    // tick's transitions handed over without it (a second mail).
    let t = e2e(r#"config.base_tick = 3;
for i in 0..40 { add(plugin("check_dummy", ["2", "down " + i]), #{ name: "c" + i, target_name: "web1", retry: 0 }); }"#);
    let server = t.server();
    t.set_status(0, "fine");
    let mut d = t.daemon();
    let m = server.wait_messages(1);
    t.wait_runs(2);
    let m2 = server.received();
    assert_eq!(m2.len(), 1, "one digest, not 40 mails: {m2:#?}");
    assert!(
        m[0].one("Subject")
            .contains("DIGEST: 40 changes (40 problems"),
        "{}",
        m[0].one("Subject")
    );
    for i in 0..40 {
        assert!(
            m[0].body
                .contains(&format!("PROBLEM CRITICAL: c{i} on web1")),
            "{}",
            m[0].body
        );
    }
    assert!(d.stop().success());
}

#[test]
fn e2e_reports_only_while_a_problem_exists() {
    let t = e2e("config.emails.report.every = 1.5;");
    let server = t.server();
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    // Problem, then at least one report.
    let m = server.wait_messages(2);
    assert_eq!(m[0].one("Subject"), "[picomon] CRITICAL: flappy on web1");
    assert_eq!(m[1].one("Subject"), "[picomon] error report");
    assert!(m[1].body.contains("Checks in PROBLEM (1)"), "{}", m[1].body);
    t.set_status(0, "OK");
    let recovered = wait_for("the recovery mail", || {
        let r = server.received();
        r.iter()
            .position(|x| x.one("Subject").starts_with("Re: "))
            .map(|i| (i, r.len()))
    });
    // Several report periods without a PROBLEM: no report after recovery
    // (at most one that was already queued when the recovery happened).
    t.wait_runs(12);
    let all = server.received();
    let after: Vec<_> = all[recovered.0 + 1..]
        .iter()
        .filter(|x| x.one("Subject") == "[picomon] error report")
        .collect();
    assert!(after.is_empty(), "reports after the recovery: {after:#?}");
    assert!(d.stop().success());
}

#[test]
fn e2e_header_injection_through_a_real_plugin() {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/inject-plugin.sh");
    let t = e2e(&format!(
        r#"add(plugin("{}", []), #{{ name: "evil", target_name: "web1", retry: 0 }});"#,
        plugin.display()
    ));
    let server = t.server();
    let mut d = t.daemon();
    let m = server.wait_messages(1);
    assert_eq!(m[0].rcpt_tos, vec!["ops@example.org"]);
    assert!(m[0].header("Bcc").is_empty(), "{:#?}", m[0].headers);
    assert_eq!(m[0].one("Subject"), "[picomon] CRITICAL: evil on web1");
    assert!(
        m[0].body.contains("Bcc: victim@example.org"),
        "{}",
        m[0].body
    );
    assert!(d.stop().success());
}

#[test]
fn e2e_one_shot_mails_only_with_notify_and_test_mail_answers() {
    let t = e2e("");
    let server = t.server();
    t.set_status(2, "CRITICAL - down");
    let run = |args: &[&str]| t.sb.run(args);
    let out = run(&["-c", &t.config(), "-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !t.dir().join("state/outbox").exists(),
        "plain -1 queued mail"
    );
    let out = run(&["-c", &t.config(), "-1", "--notify"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = server.wait_messages(1);
    assert_eq!(m[0].one("Subject"), "[picomon] CRITICAL: flappy on web1");
    assert!(outbox(&t).is_empty());

    let out = run(&["-c", &t.config(), "--test-mail"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!("test mail sent: 127.0.0.1:{}: 250 ", t.port)),
        "{stdout}"
    );
    assert_eq!(server.wait_messages(2).len(), 2);
    drop(server);
    let out = run(&["-c", &t.config(), "--test-mail"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("test mail failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", t.port)),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn e2e_a_root_only_password_file_still_authenticates_after_dropping_to_nobody_and_reloads() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "--user needs root");
    let t = e2e(r#"
config.emails.smtp_tls = "starttls";
config.emails.smtp_ca_file = "@DIR@/ca.pem";
config.emails.smtp_user = "bob";
config.emails.smtp_password_file = "@DIR@/smtp-password";
"#);
    // nobody runs the plugin (it writes `runs` here) and reads the config
    // and the CA; the password stays root's alone.
    fs::set_permissions(t.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(t.config(), fs::Permissions::from_mode(0o644)).unwrap();
    make_certs(t.dir());
    fs::set_permissions(t.dir().join("ca.pem"), fs::Permissions::from_mode(0o644)).unwrap();
    let pw = t.dir().join("smtp-password");
    fs::write(&pw, "s3cret pass\n").unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let server = Smtp::start_with(
        t.dir(),
        t.port,
        &Options {
            auth: Some("bob:s3cret pass"),
            ..Options::tls(Tls::Starttls)
        },
    );
    t.set_status(2, "CRITICAL - down");
    let config = t.config();
    let mut d = Daemon::start_anew(t.dir(), &["-c", &config, "--user", "nobody"]);
    let p = server.wait_messages(1);
    assert_eq!(p[0].auth_user.as_deref(), Some("bob"));
    assert!(p[0].tls);
    assert!(d.stderr().contains("running as nobody"), "{}", d.stderr());
    let kept = "keeping the value read as root";
    assert!(!d.stderr().contains(kept), "{}", d.stderr());
    // Two reloads as nobody: the password is kept, said once.
    for n in 1..=2 {
        d.signal(libc::SIGHUP);
        wait_for("the reload", || {
            (d.stderr().matches("config reloaded").count() >= n).then_some(())
        });
    }
    t.set_status(0, "OK - back");
    let m = server.wait_messages(2);
    assert_eq!(m[1].auth_user.as_deref(), Some("bob"));
    assert!(m[1].one("Subject").starts_with("Re: "), "{:#?}", m[1]);
    let stderr = d.stderr();
    assert_eq!(stderr.matches(kept).count(), 1, "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(d.stop().success(), "{}", d.stderr());
}

#[test]
fn e2e_reload_keeps_the_mail_thread() {
    let t = e2e("");
    let server = t.server();
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    let p = server.wait_messages(1);
    d.signal(libc::SIGHUP);
    wait_for("the reload", || {
        d.stderr().contains("config reloaded").then_some(())
    });
    t.set_status(1, "WARNING - better");
    let m = server.wait_messages(2);
    t.wait_runs(3);
    assert_eq!(server.received().len(), 2, "no second Problem after reload");
    assert_eq!(m[1].one("In-Reply-To"), p[0].one("Message-ID"));
    assert_eq!(
        m[1].one("Subject"),
        "Re: [picomon] CRITICAL: flappy on web1"
    );
    assert!(
        m[1].body.starts_with("WARNING (was CRITICAL)"),
        "{}",
        m[1].body
    );
    assert!(d.stop().success(), "{}", d.stderr());
}

#[test]
fn e2e_corrupt_state_file_stops_start_up_naming_the_file() {
    let t = e2e("");
    fs::create_dir_all(t.dir().join("state")).unwrap();
    fs::write(t.dir().join("state/state"), "{ not json").unwrap();
    let mut d = t.daemon();
    let mut child = d.child.take().unwrap();
    let status = wait_for("picomon to give up", || child.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(1));
    let err = d.stderr();
    assert!(
        err.contains(&format!("{}/state/state", t.dir().display())),
        "{err}"
    );
    assert!(
        err.contains("corrupt") && err.contains("move it away"),
        "{err}"
    );
}

// ------------------------------- end to end: a state dir that cannot be written

const FLAPPY: &str = "[picomon] CRITICAL: flappy on web1";

/// The Problem subject of picomon's own check of its state dir.
fn state_dir_problem() -> String {
    format!(
        "[picomon] CRITICAL: picomon state_dir on {}",
        picomon::notify::mail::compose::hostname()
    )
}
const OPS: &str = "ops@example.org";

#[test]
fn e2e_a_full_state_dir_still_mails_from_memory() {
    if !can_mount("e2e_a_full_state_dir_still_mails_from_memory") {
        return;
    }
    let t = e2e("");
    let fsys = Tmpfs::mount(&t.dir().join("state"), "2m");
    t.set_status(0, "OK - fine");
    // No SMTP server yet: the Problem must wait in memory, shown by the dump.
    let mut d = t.daemon();
    t.wait_runs(2);
    let fill = fsys.fill("fill");
    t.set_status(2, "CRITICAL - disk full");
    wait_for("the mail kept in memory", || {
        d.stderr().contains("it is kept in memory").then_some(())
    });
    d.signal(libc::SIGUSR1);
    wait_for("the memory queue in the dump", || {
        let out = d.stdout();
        // The Problem, and maybe already picomon's own state_dir Problem.
        (out.contains("mail in memory: 1 waiting") || out.contains("mail in memory: 2 waiting"))
            .then_some(())
    });
    assert!(
        outbox(&t).is_empty(),
        "the disk is full, yet a mail was written"
    );
    // The server comes; the disk is still full: sent from memory, and
    // picomon's own check says why.
    let server = t.server();
    server.wait_for(OPS, FLAPPY);
    let full = state_dir_problem();
    server.wait_for(OPS, &full);
    assert!(outbox(&t).is_empty());
    // Space again, the check recovers.
    fs::remove_file(&fill).unwrap();
    t.set_status(0, "OK - back");
    let re = format!("Re: {FLAPPY}");
    server.wait_for(OPS, &re);
    let re_full = format!("Re: {full}");
    server.wait_for(OPS, &re_full);
    let status = d.stop();
    assert!(status.success(), "{}", d.stderr());
    // Stopped, with nothing owed: the counts are final.
    assert!(outbox(&t).is_empty(), "{:?}", outbox(&t));
    assert_eq!(server.count(OPS, FLAPPY), 1, "{:#?}", server.received());
    assert_eq!(server.count(OPS, &re), 1, "{:#?}", server.received());
    assert_eq!(server.count(OPS, &full), 1, "{:#?}", server.received());
    assert_eq!(server.count(OPS, &re_full), 1, "{:#?}", server.received());
    assert!(mail_files(&t.dir().join("state/outbox/failed")).is_empty());
}

#[test]
fn e2e_a_read_only_state_dir_still_mails_from_memory() {
    if !can_mount("e2e_a_read_only_state_dir_still_mails_from_memory") {
        return;
    }
    let t = e2e("");
    let fsys = Tmpfs::mount(&t.dir().join("state"), "2m");
    let server = t.server();
    t.set_status(0, "OK - fine");
    let mut d = t.daemon();
    t.wait_runs(2);
    fsys.remount("ro");
    t.set_status(2, "CRITICAL - read-only");
    server.wait_for(OPS, FLAPPY);
    assert!(
        d.stderr().contains("it is kept in memory"),
        "{}",
        d.stderr()
    );
    let read_only = state_dir_problem();
    server.wait_for(OPS, &read_only);
    fsys.remount("rw");
    t.set_status(0, "OK - back");
    let re = format!("Re: {FLAPPY}");
    server.wait_for(OPS, &re);
    server.wait_for(OPS, &format!("Re: {read_only}"));
    let status = d.stop();
    assert!(status.success(), "{}", d.stderr());
    assert!(outbox(&t).is_empty(), "{:?}", outbox(&t));
    assert_eq!(server.count(OPS, FLAPPY), 1, "{:#?}", server.received());
    assert_eq!(server.count(OPS, &re), 1, "{:#?}", server.received());
    assert_eq!(server.count(OPS, &read_only), 1, "{:#?}", server.received());
}

#[test]
fn a_partly_delivered_mail_on_a_read_only_disk_is_finished_from_memory() {
    if !can_mount("a_partly_delivered_mail_on_a_read_only_disk_is_finished_from_memory") {
        return;
    }
    let (_dir, server, mut cfg) = server_with(&["--fail-rcpt-4xx-once", "two@example.org"]);
    let (ops, two) = ("ops@example.org", "two@example.org");
    cfg.emails.to = vec![ops.into(), two.into()];
    let fsys = Tmpfs::mount(&cfg.state_dir, "2m");
    let file = outbox_path(mail::queue_mail(&cfg, &cfg.state_dir, "partly", "body"));
    // The outbox file cannot be rewritten (ops got it, two is still owed)
    // nor removed: what is owed goes on from memory, and the old file is
    // never sent again.
    fsys.remount("ro");
    let mut n = notifier(&cfg);
    server.wait_for(ops, "partly");
    server.wait_for(two, "partly");
    assert!(file.exists());
    wait_for("nothing left in memory", || {
        (n.memory_queue_len() == 0).then_some(())
    });
    let lines = n.status_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("1 of these are done") && l.contains("not sent again")),
        "{lines:#?}"
    );
    // Writable again: the old file goes at the next tick.
    fsys.remount("rw");
    n.tick(Now::at(T0), &Vec::new());
    wait_nothing_owed(&cfg, &n);
    assert!(!file.exists());
    n.shutdown(Duration::from_secs(10));
    assert_eq!(server.count(ops, "partly"), 1, "{:#?}", server.received());
    assert_eq!(server.count(two, "partly"), 1, "{:#?}", server.received());
    assert_eq!(server.received().len(), 2);
}

#[test]
fn the_watchdog_notice_is_sent_at_once_when_the_outbox_is_full() {
    if !can_mount("the_watchdog_notice_is_sent_at_once_when_the_outbox_is_full") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_held, port) = reserve_port();
    let cfg = config(dir.path(), port);
    let fsys = Tmpfs::mount(&cfg.state_dir, "2m");
    fs::create_dir(cfg.state_dir.join("outbox")).unwrap();
    fsys.fill("fill");
    // No server: neither queued nor sent, and the error says both.
    let err = mail::queue_mail(&cfg, &cfg.state_dir, "[picomon] daemon stopped", "x").unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("No space left") && msg.contains("sending it at once failed"),
        "{msg}"
    );
    let server = Smtp::start(dir.path(), port);
    let sent = mail::queue_mail(&cfg, &cfg.state_dir, "[picomon] daemon stopped", "x").unwrap();
    match sent {
        mail::QueuedMail::SentDirectly(answer) => assert!(answer.contains(": 250 "), "{answer}"),
        other => panic!("{other:?}"),
    }
    assert!(outbox_files(&cfg).is_empty());
    assert_eq!(server.count(OPS, "[picomon] daemon stopped"), 1);
    assert_eq!(server.received().len(), 1);
}
