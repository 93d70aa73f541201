//! Being told when picomon's own host dies: `GET /api/v1/health`, the
//! `peer()` probe of another picomon, and the outward heartbeat
//! (`config.heartbeat`), against the real binary. The heartbeat receiver
//! is tests/notify/receiver.py; mail that cannot be delivered goes to a
//! loopback port nothing listens on. SIGSTOP stands for a hung or dead
//! host. Every wait polls with a deadline.

use crate::channels::Receiver;
use crate::http::get;
use crate::support;
use crate::support::listening_port;

use std::time::Duration;

use serde_json::Value;
use support::probes::closed_port;
use support::{set_plugin_status, wait_until, Daemon, Sandbox};

const LONG: Duration = Duration::from_secs(90);

/// A daemon ticking every 0.5 s with a settable plugin check "svc" (OK to
/// begin with), its listener on a free port, and `extra` settings.
fn daemon(extra: &str) -> (Sandbox, Daemon, u16) {
    let sb = Sandbox::new();
    set_plugin_status(sb.dir.path(), 0, "fine");
    let plugin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
    sb.config(&format!(
        r#"
config.base_tick = 0.5;
config.state_dir = "@DIR@/state";
config.listen = "127.0.0.1:0";
{extra}
add(plugin("{plugin}", ["@DIR@/runs", "@DIR@/status"]), #{{ name: "svc", retry: 0 }});
"#,
        plugin = plugin.display()
    ));
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    (sb, d, port)
}

/// `picomon -1` of a config holding only `peer(url, #{ timeout: 2 })`:
/// its output line.
fn peer_once(port: u16) -> String {
    let sb = Sandbox::new();
    sb.config(&format!(
        r#"add(peer("http://127.0.0.1:{port}/", #{{ timeout: "2s" }}), #{{ name: "mon1" }});"#
    ));
    let out = sb.run(&["-c", "config.rhai", "-1", "--only", "mon1"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn health(port: u16) -> (u16, Value) {
    let a = get(port, "/api/v1/health");
    let body = serde_json::from_str(&a.text()).expect("health is JSON");
    (a.code, body)
}

/// The requests of `rx` whose path starts with `path`.
fn hits(rx: &Receiver, path: &str) -> Vec<Value> {
    rx.requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with(path))
        .collect()
}

fn wait_hits(rx: &Receiver, path: &str, n: usize) -> Vec<Value> {
    wait_until(LONG, &format!("{n} requests to {path}"), || {
        let h = hits(rx, path);
        (h.len() >= n).then_some(h)
    })
}

#[test]
fn health_peer_and_heartbeat_say_it_when_mail_does_not_flow() {
    let here = Sandbox::new();
    let rx = Receiver::start(here.dir.path(), "hc", 0, &[]);
    let (_closed, smtp) = closed_port();
    let (sb, mut d, port) = daemon(&format!(
        r#"
config.heartbeat = ["{hb}"];
config.heartbeat_every = 1;
config.emails.to = ["ops@example.org"];
config.emails.smtp_host = ["127.0.0.1:{smtp}"];
config.emails.smtp_retry_timeout = 1;
"#,
        hb = rx.url("/hb/uuid-1")
    ));

    // Healthy: 200, GETs to the heartbeat URL, the peer is OK.
    let (code, h) = wait_until(LONG, "a healthy answer", || {
        let (code, h) = health(port);
        (code == 200).then_some((code, h))
    });
    assert_eq!(code, 200);
    assert_eq!(h["ok"], true, "{h}");
    assert!(
        h["version"].is_string() && h["last_tick_age"].is_number(),
        "{h}"
    );
    assert_eq!(h["mail"]["queued"], 0, "{h}");
    assert_eq!(h["problems"], 0, "{h}");
    let gets = wait_hits(&rx, "/hb/uuid-1", 2);
    assert!(gets.iter().all(|r| r["method"] == "GET"), "{gets:?}");
    let line = peer_once(port);
    assert!(line.starts_with("OK") && line.contains("PEER OK"), "{line}");

    // A Problem whose mail cannot be delivered: after 10 retries' time,
    // 503 with the reason, one /fail with it, the peer CRITICAL with it.
    set_plugin_status(sb.dir.path(), 2, "down");
    let h = wait_until(LONG, "a 503 for mail that does not flow", || {
        let (code, h) = health(port);
        (code == 503).then_some(h)
    });
    let why = h["reason"].as_str().expect("a reason").to_string();
    assert!(why.contains("mail does not flow"), "{why}");
    assert_eq!(h["ok"], false);
    assert_eq!(h["problems"], 1, "{h}");
    assert!(h["mail"]["queued"].as_u64().unwrap() >= 1, "{h}");
    let fails = wait_hits(&rx, "/hb/uuid-1/fail", 1);
    assert_eq!(fails[0]["method"], "POST");
    assert!(
        fails[0]["body"]
            .as_str()
            .unwrap()
            .contains("mail does not flow"),
        "{fails:?}"
    );
    let line = peer_once(port);
    assert!(line.starts_with("CRITICAL"), "{line}");
    assert!(line.contains("mail does not flow"), "{line}");

    // Three heartbeat intervals later, by the daemon's own account of the
    // waiting mail: still that one /fail, and no GET since.
    let then = h["mail"]["oldest_age"].as_f64().unwrap();
    wait_until(LONG, "3 more seconds of waiting mail", || {
        let (_, h) = health(port);
        (h["mail"]["oldest_age"].as_f64().unwrap_or(0.0) > then + 3.0).then_some(())
    });
    let all = hits(&rx, "/hb/uuid-1");
    let first_fail = all
        .iter()
        .position(|r| r["path"] == "/hb/uuid-1/fail")
        .unwrap();
    assert_eq!(all.len(), first_fail + 1, "after the /fail: {all:?}");
    d.stop();
}

#[test]
fn heartbeats_stop_while_the_daemon_is_stopped_and_resume_after() {
    let here = Sandbox::new();
    let rx = Receiver::start(here.dir.path(), "hc", 0, &[]);
    let beat = |path: &str| {
        format!(
            "config.heartbeat = [\"{}\"];\nconfig.heartbeat_every = 1;",
            rx.url(path)
        )
    };
    let (_sa, a, port) = daemon(&beat("/a"));
    // The clock of this test: a second daemon whose pings go on.
    let (_sb, _b, _) = daemon(&beat("/b"));
    wait_hits(&rx, "/a", 2);

    a.signal(libc::SIGSTOP);
    let stat = format!("/proc/{}/stat", a.pid());
    wait_until(LONG, "picomon A to be stopped", || {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        let state = s
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().chars().next());
        (state == Some(Some('T'))).then_some(())
    });
    // A ping A had on the wire when it stopped has arrived once B's next
    // one has.
    let b = hits(&rx, "/b").len();
    wait_hits(&rx, "/b", b + 1);
    let stopped_at = hits(&rx, "/a").len();
    let line = peer_once(port);
    assert!(
        line.starts_with("CRITICAL") && line.contains("127.0.0.1"),
        "{line}"
    );
    wait_hits(&rx, "/b", b + 4);
    assert_eq!(hits(&rx, "/a").len(), stopped_at, "A pinged while stopped");

    a.signal(libc::SIGCONT);
    wait_hits(&rx, "/a", stopped_at + 1);
}

/// One of the two picomons of the pair test: its sandbox, its daemon and
/// its listener's port.
struct Mon {
    sb: Sandbox,
    d: Daemon,
    port: u16,
}

impl Mon {
    /// Writes the config: check "svc" on web1 reads the shared status
    /// file; mail to `smtp` with subjects starting `[tag]`; `extra` adds
    /// peers and the standby setting.
    fn write(sb: &Sandbox, tag: &str, shared: &std::path::Path, smtp: u16, extra: &str) {
        let plugin =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
        sb.config(&format!(
            r#"
config.base_tick = 0.5;
config.state_dir = "@DIR@/state";
config.listen = "127.0.0.1:0";
config.emails.to = ["ops@example.org"];
config.emails.smtp_host = ["127.0.0.1:{smtp}"];
config.emails.subject_tpl = "[{tag}] {{state}}: {{check}} on {{dest}}";
config.emails.subject_style = "state";
add(plugin("{plugin}", ["@DIR@/runs", "{status}"]), #{{ name: "svc", target_name: "web1", retry: 0 }});
{extra}
"#,
            plugin = plugin.display(),
            status = shared.join("status").display(),
        ));
    }

    fn start(sb: Sandbox) -> Mon {
        let d = Daemon::start_anew(sb.dir.path(), &["-c", "config.rhai"]);
        let port = listening_port(&d, 1);
        Mon { sb, d, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGHUP, then waits for the `n`th reload.
    fn reload(&self, n: usize) {
        self.d.signal(libc::SIGHUP);
        assert!(
            self.d.wait_stderr("config reloaded", n, LONG),
            "no reload:\n{}",
            self.d.stderr()
        );
    }

    /// The check `name` in its `/api/v1/checks`.
    fn check(&self, name: &str) -> Value {
        let a = get(self.port, "/api/v1/checks");
        let all: Value = serde_json::from_str(&a.text()).expect("checks JSON");
        all["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Waits until `svc` is in `phase` here and no mail waits.
    fn settled(&self, phase: &str) {
        wait_until(LONG, &format!("svc {phase} with the outbox empty"), || {
            let (_, h) = health(self.port);
            (self.check("svc")["phase"] == phase && h["mail"]["queued"] == 0).then_some(())
        });
    }
}

#[test]
fn a_standby_takes_over_once_when_its_primary_dies_and_each_thread_is_told_once() {
    let shared = Sandbox::new();
    set_plugin_status(shared.dir.path(), 0, "fine");
    let smtp = support::smtp::Smtp::start(shared.dir.path(), 0);
    let subjects = || -> Vec<String> {
        smtp.received()
            .into_iter()
            .map(|m| m.subject_decoded)
            .collect()
    };
    let count = |s: &str| subjects().iter().filter(|x| x.contains(s)).count();

    // A, the primary; B with peer() of A and standby_for; then A learns
    // B's address (a reload) for the announced rule.
    let a_sb = Sandbox::new();
    Mon::write(&a_sb, "A", shared.dir.path(), smtp.port, "");
    let mut a = Mon::start(a_sb);
    let b_sb = Sandbox::new();
    let b_extra = |a_url: &str| {
        format!(
            "add(peer(\"{a_url}\", #{{ timeout: 2 }}), #{{ name: \"mon1\", retry: 0 }});\n\
             config.standby_for = \"mon1\";"
        )
    };
    Mon::write(&b_sb, "B", shared.dir.path(), smtp.port, &b_extra(&a.url()));
    let b = Mon::start(b_sb);
    let a_extra = format!(
        "add(peer(\"{}\", #{{ timeout: 2 }}), #{{ name: \"mon2\", retry: 0 }});",
        b.url()
    );
    Mon::write(&a.sb, "A", shared.dir.path(), smtp.port, &a_extra);
    a.reload(1);
    wait_until(LONG, "B to see A", || {
        (b.check("mon1")["status"] == "OK").then_some(())
    });

    // A failing check: one Problem, from A.
    set_plugin_status(shared.dir.path(), 2, "down");
    smtp.wait_for("ops@example.org", "[A] CRITICAL: svc on web1");
    a.settled("problem");
    b.settled("problem");
    assert_eq!(count("CRITICAL: svc on web1"), 1, "{:?}", subjects());
    assert_eq!(b.check("svc")["announced"], false);
    assert_eq!(a.check("svc")["announced"], true);

    // A dies: one takeover mail from B naming svc.
    a.d.kill();
    let takeover = wait_until(LONG, "the takeover mail", || {
        smtp.received()
            .into_iter()
            .find(|m| m.subject_decoded.contains("taking over from mon1"))
    });
    assert!(
        takeover.subject_decoded.starts_with("[B] "),
        "{}",
        takeover.subject_decoded
    );
    assert!(
        takeover.body_decoded.contains("svc on web1"),
        "{}",
        takeover.body_decoded
    );
    wait_until(LONG, "B to announce svc", || {
        (b.check("svc")["announced"] == true).then_some(())
    });

    // A back (on a new port, which B is told) while B owns the thread: B
    // stands by again, A sees that B announced svc; no second Problem.
    a.d = Daemon::start_anew(a.sb.dir.path(), &["-c", "config.rhai"]);
    a.port = listening_port(&a.d, 1);
    Mon::write(&b.sb, "B", shared.dir.path(), smtp.port, &b_extra(&a.url()));
    b.reload(1);
    wait_until(LONG, "the standing-by mail", || {
        (count("[B] PICOMON: mon1 is back, standing by on ") == 1).then_some(())
    });
    wait_until(LONG, "A to run svc again", || {
        (a.check("svc")["last_run"].is_number()).then_some(())
    });
    b.settled("problem");
    a.settled("problem");
    assert_eq!(count("CRITICAL: svc on web1"), 1, "{:?}", subjects());

    // svc recovers: the Recovery from B, none from A.
    set_plugin_status(shared.dir.path(), 0, "fine again");
    smtp.wait_for("ops@example.org", "[B] OK: svc on web1");
    a.settled("ok");
    b.settled("ok");
    assert_eq!(count("OK: svc on web1"), 1, "{:?}", subjects());
    assert_eq!(count("taking over from mon1"), 1, "{:?}", subjects());
    assert_eq!(count("CRITICAL: svc on web1"), 1, "{:?}", subjects());
}

/// A cut network, not a dead process: A runs in a network namespace whose
/// only link B reaches it by is set down. A cannot mail (its namespace has
/// no mail server either) and B cannot see A: B takes over and is the one
/// that tells.
#[test]
#[ignore = "needs root: network namespaces"]
fn a_standby_takes_over_when_the_network_to_its_primary_is_cut() {
    let tag = std::process::id() % 200;
    let ns = format!("pmcut{tag}");
    let (outside, inside) = (format!("pcr{tag}"), format!("pcn{tag}"));
    let (b_addr, a_addr) = (format!("10.203.{tag}.1"), format!("10.203.{tag}.2"));
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &ns])
        .status();
    support::netns::ip(&format!("netns add {ns}"));
    let _namespaces = support::netns::Namespaces {
        names: vec![ns.clone()],
    };
    support::netns::ip(&format!(
        "link add {outside} type veth peer name {inside} netns {ns}"
    ));
    support::netns::ip(&format!("addr add {b_addr}/30 dev {outside}"));
    support::netns::ip(&format!("link set {outside} up"));
    support::netns::ip(&format!("-n {ns} addr add {a_addr}/30 dev {inside}"));
    support::netns::ip(&format!("-n {ns} link set {inside} up"));
    support::netns::ip(&format!("-n {ns} link set lo up"));

    let shared = Sandbox::new();
    set_plugin_status(shared.dir.path(), 0, "fine");
    let smtp = support::smtp::Smtp::start(shared.dir.path(), 0);
    let count = |s: &str| {
        smtp.received()
            .into_iter()
            .filter(|m| m.subject_decoded.contains(s))
            .count()
    };

    // A in the namespace, listening on its side of the link; its mail
    // server address is its own loopback, where nothing listens.
    let a_sb = Sandbox::new();
    Mon::write(&a_sb, "A", shared.dir.path(), smtp.port, "");
    let cfg = a_sb.path("config.rhai");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("127.0.0.1:0", &format!("{a_addr}:0"))).unwrap();
    let mut a = Daemon::start_in_netns(&ns, a_sb.dir.path(), &["-c", "config.rhai"]);
    let needle = format!("http: listening on {a_addr}:");
    assert!(a.wait_stderr(&needle, 1, LONG), "{}", a.stderr());
    let a_port: u16 = a
        .stderr()
        .split(&needle)
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .expect("A's port");

    let b_sb = Sandbox::new();
    Mon::write(
        &b_sb,
        "B",
        shared.dir.path(),
        smtp.port,
        &format!(
            "add(peer(\"http://{a_addr}:{a_port}\", #{{ timeout: 2 }}), #{{ name: \"mon1\", retry: 0 }});\n\
             config.standby_for = \"mon1\";"
        ),
    );
    let b = Mon::start(b_sb);
    wait_until(LONG, "B to see A", || {
        (b.check("mon1")["status"] == "OK").then_some(())
    });

    // The link goes down: B can no longer see A, and takes over once.
    support::netns::ip(&format!("link set {outside} down"));
    wait_until(LONG, "the takeover mail", || {
        (count("[B] PICOMON: taking over from mon1") == 1).then_some(())
    });
    // The status B publishes right after it handed the mail over.
    wait_until(LONG, "B to show mon1 CRITICAL", || {
        (b.check("mon1")["status"] == "CRITICAL").then_some(())
    });

    // What fails now is told by B, once; A's mail cannot get out.
    set_plugin_status(shared.dir.path(), 2, "down");
    smtp.wait_for("ops@example.org", "[B] CRITICAL: svc on web1");
    b.settled("problem");
    assert_eq!(count("CRITICAL: svc on web1"), 1);
    assert_eq!(count("[A] "), 0);
    assert_eq!(count("taking over from mon1"), 1);
    a.kill();
}
