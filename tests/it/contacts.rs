//! Contacts end to end: the real `picomon` binary, real plugins, a real
//! SMTP server (tests/smtp/server.py, aiosmtpd) on loopback. Who gets which
//! mail is read from the envelope recipients the server recorded.

use crate::support;

use std::path::Path;
use std::time::Duration;

use support::ports::{reserve_port, Reserved};
use support::smtp::{Mail, Smtp};
use support::{Daemon, Sandbox};

/// A sandbox whose config mails through `port`, with `body` after the
/// mail settings; `@PLUGIN@` is the status-file plugin (its status set by
/// [`support::set_plugin_status`]).
struct Rig {
    sb: Sandbox,
    port: u16,
    _held: Reserved,
}

impl Rig {
    fn new(body: &str) -> Rig {
        let sb = Sandbox::new();
        let (_held, port) = reserve_port();
        let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
        let d = sb.dir.path().display().to_string();
        let head = format!(
            r#"
config.base_tick = 0.5;
config.state_dir = "{d}/state";
config.emails.to = ["ops@example.org"];
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.smtp_host = "127.0.0.1:{port}";
config.emails.smtp_retry_timeout = 1;
"#
        );
        let body = body.replace(
            "@PLUGIN@",
            &format!(
                r#"plugin("{}", ["{d}/runs", "{d}/status"])"#,
                plugin.display()
            ),
        );
        sb.config(&(head + body.as_str()));
        support::set_plugin_status(sb.dir.path(), 0, "OK - fine");
        Rig { sb, port, _held }
    }

    fn daemon(&self) -> Daemon {
        let config = self.sb.path("config.rhai").display().to_string();
        Daemon::start_anew(self.sb.dir.path(), &["-c", &config])
    }

    fn server(&self) -> Smtp {
        Smtp::start(self.sb.dir.path(), self.port)
    }

    fn set_status(&self, code: i32, text: &str) {
        support::set_plugin_status(self.sb.dir.path(), code, text);
    }
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
    let r = Rig::new(
        r#"
contact("db team", #{ to: ["db@example.org"], cc: ["dba@example.org"] });
contact("web team", #{ to: ["web@example.org"] });
let db1 = host("db1", #{ ipv4: "192.0.2.1", contacts: ["db team"] });
add(plugin("check_dummy", ["2", "db down"]), #{ name: "db", target_name: "db1", retry: 0 });
add(plugin("check_dummy", ["2", "web down"]), #{ name: "web", target_name: "web1", retry: 0, contacts: ["web team"] });
add(@PLUGIN@, #{ name: "marker", target_name: "mon", retry: 0 });
"#,
    );
    let server = r.server();
    let mut d = r.daemon();
    server.wait_messages(2);
    // The marker: a third outage, mailed at once; nothing came before it.
    r.set_status(2, "CRITICAL - marker");
    server.wait_for("ops@example.org", "[picomon] CRITICAL: marker on mon");
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

/// `HH:MM-HH:MM`, local time, beginning at the next whole minute that is
/// at least 20 s away, for an hour; and when it begins (Unix seconds).
fn hours_beginning_soon() -> (String, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let begin = (now + 20).div_euclid(60) * 60 + 60;
    let c = picomon::clock::local_civil(begin).unwrap();
    let m = u32::from(c.hour) * 60 + u32::from(c.minute);
    let hm = |m: u32| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    (format!("{}-{}", hm(m), hm(m + 60)), begin)
}

#[test]
fn e2e_a_contact_s_problem_waits_for_its_hours_and_then_arrives_once() {
    let (hours, begin) = hours_beginning_soon();
    let r = Rig::new(&format!(
        r#"
contact("db team", #{{ to: ["db@example.org"], hours: "{hours}" }});
add(plugin("check_dummy", ["2", "db down"]), #{{ name: "db", target_name: "db1", retry: 0, contacts: ["db team"] }});
add(@PLUGIN@, #{{ name: "marker", target_name: "db1", retry: 0, contacts: ["db team"] }});
"#
    ));
    let server = r.server();
    let mut d = r.daemon();
    let first = server.wait_messages(1);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    assert_eq!(first[0].rcpt_tos, ["ops@example.org"], "before {hours}");
    // The hours begin within two minutes: then one mail, to db team alone.
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
