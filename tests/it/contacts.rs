//! Contacts end to end: the real `picomon` binary (through the shared rig,
//! tests/support/rig.rs), real plugins, a real SMTP server
//! (tests/smtp/server.py, aiosmtpd) and a real webhook receiver on
//! loopback; then the mail notifier on its own against the same server.
//! Who gets which mail is read from the envelope recipients the server
//! recorded.

use crate::support;

use std::time::Duration;

use support::ports::reserve_port;
use support::rig::{Rig, StatusCheck, OPS};
use support::smtp::{Mail, Smtp};
use support::Sandbox;

/// The status-file check of these tests: "marker on TARGET", mailed at
/// once when the test sets it failing, after everything else it waits for.
fn marker(target: &'static str) -> StatusCheck {
    StatusCheck {
        name: "marker",
        target,
        retry: 0,
        runs: "runs",
    }
}

/// A rig with `before` (contacts, hosts, other checks) above the marker
/// check on `target`, which is OK until the test says otherwise.
fn rig(target: &'static str, before: &str) -> Rig {
    let r = Rig::with(marker(target), 0.5, before, "");
    r.set_status(0, "OK - fine");
    r
}

/// The subjects of the mails `rcpt` got, sorted.
fn got(mails: &[Mail], rcpt: &str) -> Vec<String> {
    let mut s: Vec<String> = mails
        .iter()
        .filter(|m| m.rcpt_tos.iter().any(|r| r == rcpt))
        .map(|m| m.subject().to_string())
        .collect();
    s.sort();
    s
}

#[test]
fn e2e_each_contact_gets_exactly_its_own_problems_and_the_default_list_both() {
    let r = rig(
        "mon",
        r#"contact("db team", #{ to: ["db@example.org"], cc: ["dba@example.org"] });
contact("web team", #{ to: ["web@example.org"] });
let db1 = host("db1", #{ ipv4: "192.0.2.1", contacts: ["db team"] });
add(plugin("check_dummy", ["2", "db down"]), #{ name: "db", target_name: "db1", retry: 0 });
add(plugin("check_dummy", ["2", "web down"]), #{ name: "web", target_name: "web1", retry: 0, contacts: ["web team"] });"#,
    );
    let server = r.server();
    let mut d = r.daemon();
    server.wait_messages(2);
    // The marker: a third outage, mailed at once; nothing came before it.
    r.set_status(2, "CRITICAL - marker");
    server.wait_for(OPS, "[picomon] CRITICAL: marker on mon");
    assert!(d.stop().success(), "{}", d.stderr());
    let mails = server.received();
    assert_eq!(mails.len(), 3, "one mail per Problem: {mails:#?}");
    assert_eq!(
        got(&mails, "ops@example.org"),
        [
            "[picomon] CRITICAL: db on db1",
            "[picomon] CRITICAL: marker on mon",
            "[picomon] CRITICAL: web on web1"
        ]
    );
    assert_eq!(
        got(&mails, "db@example.org"),
        ["[picomon] CRITICAL: db on db1"]
    );
    assert_eq!(
        got(&mails, "dba@example.org"),
        ["[picomon] CRITICAL: db on db1"]
    );
    assert_eq!(
        got(&mails, "web@example.org"),
        ["[picomon] CRITICAL: web on web1"]
    );
    let db = mails
        .iter()
        .find(|m| m.subject().contains("db on"))
        .unwrap();
    assert_eq!(db.one("To"), "ops@example.org, db@example.org");
    assert_eq!(db.one("Cc"), "dba@example.org");
}

/// `HH:MM-HH:MM`, local time, an hour from the first whole minute at
/// least `ahead` seconds from now; and when it begins (Unix seconds).
fn hours_from(ahead: i64) -> (String, i64) {
    let begin = (now() + ahead + 59).div_euclid(60) * 60;
    let c = picomon::clock::local_civil(begin).unwrap();
    let m = u32::from(c.hour) * 60 + u32::from(c.minute);
    let hm = |m: u32| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    (format!("{}-{}", hm(m), hm(m + 60)), begin)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// db team at `hours`, the contact of every check on db1: "db", failing,
/// and the marker.
fn db_team_at(hours: &str) -> String {
    format!(
        r#"contact("db team", #{{ to: ["db@example.org"], hours: "{hours}" }});
host("db1", #{{ ipv4: "192.0.2.1", contacts: ["db team"] }});
add(plugin("check_dummy", ["2", "db down"]), #{{ name: "db", target_name: "db1", retry: 0 }});"#
    )
}

#[test]
fn e2e_a_contact_s_problem_waits_for_its_hours_and_then_arrives_once() {
    // Hours that begin in three hours: the Problem waits. Then, whatever
    // the machine's load, a reload moves them to the next minute.
    let r = rig("db1", &db_team_at(&hours_from(3 * 3600).0));
    let server = r.server();
    let mut d = r.daemon();
    let first = server.wait_messages(1);
    assert_eq!(first[0].rcpt_tos, [OPS]);
    let (hours, begin) = hours_from(5);
    r.write_config(0.5, &db_team_at(&hours), "");
    d.signal(libc::SIGHUP);
    support::wait_until(Duration::from_secs(60), "the reload", || {
        d.stderr().contains("config reloaded").then_some(())
    });
    // Once they begin: one mail, to db team alone, in the thread.
    let late = support::wait_until(
        Duration::from_secs(240),
        "the waiting Problem once the hours begin",
        || {
            let m = server.received();
            (m.len() >= 2).then_some(m)
        },
    );
    assert!(now() >= begin, "not before {hours}");
    let m = &late[1];
    assert_eq!(m.rcpt_tos, ["db@example.org"]);
    assert_eq!(m.subject(), "[picomon] CRITICAL: db on db1");
    assert!(
        m.body_decoded
            .contains("It waited for your notification hours to begin: it has lasted "),
        "{}",
        m.body_decoded
    );
    assert_eq!(m.one("In-Reply-To"), first[0].one("Message-ID"));
    // The marker, inside the hours: mailed at once to both; nothing else
    // came before it (the late Problem was sent once).
    r.set_status(2, "CRITICAL - marker");
    server.wait_for("db@example.org", "[picomon] CRITICAL: marker on db1");
    assert!(d.stop().success(), "{}", d.stderr());
    let mails = server.received();
    assert_eq!(
        got(&mails, "db@example.org"),
        [
            "[picomon] CRITICAL: db on db1",
            "[picomon] CRITICAL: marker on db1"
        ],
        "{mails:#?}"
    );
    assert_eq!(mails.len(), 3, "{mails:#?}");
}

// ------------------------------------------- the mail notifier on its own

const S: i64 = 1_000_000;
const T0: i64 = 1_800_000_000 * S;

/// A notice of `kind` about the shell check `name` for `contacts`.
fn notice(
    name: &str,
    kind: picomon::alert::TransitionKind,
    contacts: &[&str],
) -> picomon::notify::Notice {
    use picomon::model::Status;
    let mut n = picomon::notify::Notice::new(
        name.into(),
        name.into(),
        "h1".into(),
        picomon::alert::Transition {
            kind,
            status: Status::Critical,
            previous: None,
            outage_start: T0,
            failed_runs: 1,
            at: T0 + 60 * S,
        },
        format!("{name} down"),
    );
    n.contacts = contacts.iter().map(|c| c.to_string()).collect();
    n
}

fn view(name: &str) -> picomon::notify::CheckView {
    picomon::notify::CheckView {
        check_id: name.into(),
        name: name.into(),
        dest: "h1".into(),
        phase: picomon::alert::Phase::Problem,
        status: Some(picomon::model::Status::Critical),
        failed_runs: 1,
        outage_start: Some(T0),
        last_output: format!("{name} down"),
        ..Default::default()
    }
}

#[test]
fn digests_acks_and_reports_follow_the_contacts() {
    use picomon::alert::TransitionKind::{Problem, Recovery};
    use picomon::clock::Now;
    use picomon::notify::Notifier;
    let sb = Sandbox::new();
    let (_held, port) = reserve_port();
    let server = Smtp::start(sb.dir.path(), port);
    let d = sb.dir.path().display().to_string();
    let path = sb.config(&format!(
        r#"
config.state_dir = "{d}/state";
config.emails.to = ["ops@example.org"];
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.smtp_host = "127.0.0.1:{port}";
config.emails.digest_over = 2;
config.emails.report.every = 3600;
contact("db team", #{{ to: "db@example.org", digest: true }});
contact("web team", #{{ to: "web@example.org" }});
for n in ["db1", "db2", "db3"] {{ add(shell("true"), #{{ name: n, contacts: ["db team"] }}); }}
add(shell("true"), #{{ name: "web1", contacts: ["web team"] }});
"#
    ));
    let cfg = picomon::config::load(&path).expect("test config");
    std::fs::create_dir_all(&cfg.state_dir).unwrap();
    let mut n = picomon::notify::mail::MailNotifier::new(&cfg, &cfg.state_dir).unwrap();
    // Three Problems in one tick: config.emails.to (over 2) and db team
    // (digest: true, two of its own) get one digest each; web team its
    // one Problem.
    n.transitions(
        vec![
            notice("db1", Problem, &["db team"]),
            notice("db2", Problem, &["db team"]),
            notice("web1", Problem, &["web team"]),
        ],
        T0 + 60 * S,
    );
    let mails = server.wait_messages(3);
    assert_eq!(
        got(&mails, "ops@example.org"),
        [
            "[picomon] DIGEST: 3 changes (3 problems, 0 updates, 0 recoveries) on vm"
                .replace("vm", &picomon::host::this_host())
        ]
    );
    let db = got(&mails, "db@example.org");
    assert_eq!(db.len(), 1);
    assert!(db[0].contains("DIGEST: 2 changes"), "{db:?}");
    assert_eq!(
        got(&mails, "web@example.org"),
        ["[picomon] CRITICAL: web1 on h1"]
    );
    // An outage that ended while db team's Problem waited: a line in its
    // next report, no mail now.
    let mut r = notice("db3", Recovery, &[]);
    r.missed = vec!["db team".into()];
    n.transitions(vec![r], T0 + 120 * S);
    let mails = server.wait_messages(4);
    assert_eq!(mails[3].rcpt_tos, ["ops@example.org"]);
    // The ack goes where the thread went: config.emails.to and web team.
    n.acknowledged(&view("web1"), "alice", "on it", T0 + 180 * S);
    let mails = server.wait_messages(5);
    assert_eq!(mails[4].rcpt_tos, ["ops@example.org", "web@example.org"]);
    assert!(mails[4]
        .body_decoded
        .contains("Acknowledged by alice: on it"));
    // Reports: everything to config.emails.to, each contact its own.
    let views = vec![view("db1"), view("db2"), view("web1")];
    n.tick(Now::at(T0 + 200 * S), &views);
    n.tick(Now::at(T0 + 3800 * S), &views);
    let mails = server.wait_messages(8);
    let reports: Vec<&Mail> = mails
        .iter()
        .filter(|m| m.subject() == "[picomon] error report")
        .collect();
    assert_eq!(reports.len(), 3, "{mails:#?}");
    let to = |a: &str| {
        reports
            .iter()
            .find(|m| m.rcpt_tos == [a])
            .unwrap_or_else(|| panic!("a report to {a}"))
            .body_decoded
            .clone()
    };
    let (all, db, web) = (
        to("ops@example.org"),
        to("db@example.org"),
        to("web@example.org"),
    );
    assert!(
        all.contains("db1 on h1") && all.contains("web1 on h1"),
        "{all}"
    );
    assert!(db.contains("db1 on h1") && !db.contains("web1"), "{db}");
    assert!(db.contains("db3 on h1: failing from "), "{db}");
    assert!(db.contains("before your hours began; recovered"), "{db}");
    assert!(web.contains("web1 on h1") && !web.contains("db1"), "{web}");
    assert_eq!(
        reports
            .iter()
            .map(|m| m.one("Message-ID"))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "each report has its own Message-ID"
    );
    n.shutdown(Duration::from_secs(5));
}

/// `kind check` of each post the receiver accepted under `path`, sorted.
fn posts(rx: &crate::channels::Receiver, path: &str) -> Vec<String> {
    let mut v: Vec<String> = rx
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with(path))
        .filter(|r| r["answer"].as_u64().unwrap_or(0) < 300)
        .map(|r| {
            let b: serde_json::Value =
                serde_json::from_str(r["body"].as_str().unwrap()).expect("a JSON body");
            format!(
                "{} {}",
                b["kind"].as_str().unwrap(),
                b["check"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn e2e_a_contact_s_channel_gets_its_checks_only_and_the_others_everything() {
    let probe = Sandbox::new();
    let rx = crate::channels::Receiver::start(probe.dir.path(), "receiver", 0, &[]);
    let r = rig(
        "db1",
        &format!(
            r#"config.notify = [webhook("{db}", #{{ name: "chat-db" }}), webhook("{ops}", #{{ name: "ops" }})];
contact("db team", #{{ notify: ["chat-db"] }});
host("db1", #{{ ipv4: "192.0.2.1", contacts: ["db team"] }});
add(plugin("check_dummy", ["2", "db down"]), #{{ name: "db", target_name: "db1", retry: 0 }});
add(plugin("check_dummy", ["2", "web down"]), #{{ name: "web", target_name: "web1", retry: 0 }});"#,
            db = rx.url("/db"),
            ops = rx.url("/ops"),
        ),
    );
    let mut d = r.daemon();
    let want = |path: &str, n: usize| {
        support::wait_until(
            Duration::from_secs(90),
            &format!("{n} posts to {path}"),
            || {
                let p = posts(&rx, path);
                (p.len() >= n).then_some(p)
            },
        )
    };
    want("/ops", 2);
    want("/db", 1);
    // The marker: a third outage, of db team's; nothing came before it.
    r.set_status(2, "CRITICAL - marker");
    want("/db", 2);
    want("/ops", 3);
    assert!(d.stop().success(), "{}", d.stderr());
    assert_eq!(posts(&rx, "/db"), ["problem db", "problem marker"]);
    assert_eq!(
        posts(&rx, "/ops"),
        ["problem db", "problem marker", "problem web"]
    );
}
