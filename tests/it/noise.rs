//! Fewer, truer alerts, end to end: the real daemon mailing a real SMTP
//! server (aiosmtpd). Dependencies through a router in network namespaces
//! the test builds (a "router" namespace in front of two "server"
//! namespaces, each with a real HTTP server), a check that flaps, and
//! reminders with an escalation counted exactly.
//!
//! Counts are exact without sleeping: a "marker" check goes CRITICAL last;
//! the outbox is sent oldest first, so once its mail is in, every mail
//! queued before it is too.

use crate::support;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::netns::{ip, Namespaces};
use support::rig::{Rig, MARKER, OPS};
use support::smtp::{Mail, Smtp};
use support::wait::wait_until;

/// Generous: the machine may be very loaded.
const WITHIN: Duration = Duration::from_secs(120);

const LEAD: &str = "lead@example.org";

/// The end-to-end rig with `checks` before the `marker`, which runs at
/// every tick.
fn rig(base_tick: &str, checks: &str) -> Rig {
    Rig::with(MARKER, base_tick, checks, "")
}

/// Turns the marker CRITICAL and waits for its Problem: then every
/// mail queued before is in. Returns the mails before the marker.
fn all_mail(t: &Rig, server: &Smtp) -> Vec<Mail> {
    t.set_status(2, "CRITICAL - marker");
    let subject = "[picomon] CRITICAL: marker on here";
    server.wait_for(OPS, subject);
    let all = server.received();
    // The marker's own thread (its escalation, say) is not counted.
    let before: Vec<Mail> = all
        .into_iter()
        .filter(|m| !m.subject_decoded.contains("marker on here"))
        .collect();
    assert_eq!(server.count(OPS, subject), 1);
    before
}

fn body_first_line(m: &Mail) -> &str {
    m.body_decoded.lines().next().unwrap_or("")
}

fn describe(mails: &[Mail]) -> String {
    mails
        .iter()
        .map(|m| {
            format!(
                "{:?} to {:?}: {}",
                m.subject_decoded,
                m.rcpt_tos,
                body_first_line(m)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// --------------------------------------------------------- dependencies

/// Network namespaces and the servers in them, removed when dropped (the
/// servers first).
struct Net {
    servers: Vec<Child>,
    ns: Namespaces,
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// picomon (in this namespace) -- veth -- router -- veth -- server 1
///                                                 \-- veth -- server 2
/// 10.202.0.1      10.202.0.2 | 10.202.1.1 / 10.202.2.1    10.202.1.2 / 10.202.2.2
fn build_net(tag: u32) -> (Net, String) {
    let rtr = format!("pmnrtr{tag}");
    let s1 = format!("pmns1{tag}");
    let s2 = format!("pmns2{tag}");
    assert!(
        Command::new("ip")
            .args(["netns", "add", &rtr])
            .status()
            .is_ok_and(|s| s.success()),
        "ip netns add {rtr} failed: needs root where network namespaces are allowed"
    );
    let mut net = Net {
        ns: Namespaces {
            names: vec![rtr.clone()],
        },
        servers: Vec::new(),
    };
    ip(&format!("netns add {s1}"));
    net.ns.names.push(s1.clone());
    ip(&format!("netns add {s2}"));
    net.ns.names.push(s2.clone());
    let (h0, r0, r1, a0, r2, b0) = (
        format!("nh{tag}"),
        format!("nr{tag}a"),
        format!("nr{tag}b"),
        format!("na{tag}"),
        format!("nr{tag}c"),
        format!("nb{tag}"),
    );
    ip(&format!(
        "link add {h0} type veth peer name {r0} netns {rtr}"
    ));
    ip(&format!(
        "link add {r1} netns {rtr} type veth peer name {a0} netns {s1}"
    ));
    ip(&format!(
        "link add {r2} netns {rtr} type veth peer name {b0} netns {s2}"
    ));
    ip(&format!("addr add 10.202.0.1/24 dev {h0}"));
    ip(&format!("link set {h0} up"));
    for (ns, cmds) in [
        (
            &rtr,
            vec![
                format!("addr add 10.202.0.2/24 dev {r0}"),
                format!("addr add 10.202.1.1/24 dev {r1}"),
                format!("addr add 10.202.2.1/24 dev {r2}"),
                format!("link set {r0} up"),
                format!("link set {r1} up"),
                format!("link set {r2} up"),
                "link set lo up".into(),
            ],
        ),
        (
            &s1,
            vec![
                format!("addr add 10.202.1.2/24 dev {a0}"),
                format!("link set {a0} up"),
                "link set lo up".into(),
                "route add default via 10.202.1.1".into(),
            ],
        ),
        (
            &s2,
            vec![
                format!("addr add 10.202.2.2/24 dev {b0}"),
                format!("link set {b0} up"),
                "link set lo up".into(),
                "route add default via 10.202.2.1".into(),
            ],
        ),
    ] {
        for c in cmds {
            ip(&format!("-n {ns} {c}"));
        }
    }
    // Routes through the router; they go with the veth when the router's
    // namespace is deleted.
    ip(&format!("route add 10.202.1.0/24 via 10.202.0.2 dev {h0}"));
    ip(&format!("route add 10.202.2.0/24 via 10.202.0.2 dev {h0}"));
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            &rtr,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "ip_forward in {rtr}");
    for (ns, addr) in [(&s1, "10.202.1.2"), (&s2, "10.202.2.2")] {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-m", "http.server", "8000"])
            .args(["--bind", addr])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        net.servers.push(child);
        let sa: SocketAddr = format!("{addr}:8000").parse().unwrap();
        wait_until(WITHIN, &format!("http.server on {sa}"), || {
            TcpStream::connect_timeout(&sa, Duration::from_secs(1))
                .ok()
                .map(|_| ())
        });
    }
    (net, r0)
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_router_down_is_one_problem_listing_the_unreachable_and_one_recovery() {
    let tag = std::process::id() % 100_000;
    let (net, router_link) = build_net(tag);
    let rtr = net.ns.names[0].clone();
    let t = rig(
        "2",
        r#"
let gw = host("gw", #{ ipv4: "10.202.0.2" });
let srv1 = host("srv1", #{ ipv4: "10.202.1.2", depends_on: ["router ping"] });
let srv2 = host("srv2", #{ ipv4: "10.202.2.2", depends_on: ["router ping"] });
add(ping4(gw, #{ count: 1 }), #{ name: "router ping", retry: 2, timeout: 1.5 });
add(tcp(srv1, 8000), #{ name: "web srv1", retry: 0, timeout: 1.5 });
add(tcp(srv2, 8000), #{ name: "web srv2", retry: 0, timeout: 1.5 });
"#,
    );
    let server = t.server();
    let mut d = t.daemon();
    t.wait_runs(2);
    assert!(
        server.received().is_empty(),
        "{}",
        describe(&server.received())
    );

    ip(&format!("-n {rtr} link set {router_link} down"));
    let problem = "[picomon] CRITICAL: router ping on gw";
    server.wait_for(OPS, problem);
    // Down for a few more ticks: nothing else.
    t.wait_runs(3);
    ip(&format!("-n {rtr} link set {router_link} up"));
    server.wait_for(OPS, &format!("Re: {problem}"));
    // The dependents' next runs after the recovery: nothing from them.
    t.wait_runs(3);
    let mails = all_mail(&t, &server);
    assert_eq!(mails.len(), 2, "{}", describe(&mails));
    let (p, r) = (&mails[0], &mails[1]);
    assert_eq!(p.subject_decoded, problem);
    assert!(
        p.body_decoded
            .replace("\r\n", "\n")
            .contains("Unreachable while this check fails (2; no mail of their own):\n  web srv1 on srv1\n  web srv2 on srv2\n"),
        "{}",
        p.body_decoded
    );
    assert!(
        body_first_line(r).starts_with("OK: recovered after "),
        "{}",
        r.body_decoded
    );
    assert_eq!(r.one("In-Reply-To"), p.one("Message-ID"));
    let status = d.stderr();
    assert!(
        status.contains("not mailed: unreachable while router ping on gw fails"),
        "{status}"
    );
    d.stop();
    drop(net);
}

// ------------------------------------------------------------- flapping

#[test]
fn a_check_toggling_for_40_runs_mails_flapping_once_and_stopped_once() {
    let sb_script = r#"#!/bin/sh
# Fails every other run for 40 runs, then stays OK.
n=$(wc -l < "$1" 2>/dev/null || echo 0)
echo run >> "$1"
if [ "$n" -lt 40 ] && [ $((n % 2)) -eq 0 ]; then echo "CRITICAL - link down"; exit 2; fi
echo "OK - link up"
exit 0
"#;
    let t = rig(
        "0.2",
        r#"add(plugin("@DIR@/toggle.sh", ["@DIR@/toggle-runs"]), #{ name: "link", target_name: "sw1", retry: 0 });"#,
    );
    let script = t.path("toggle.sh");
    fs::write(&script, sb_script).unwrap();
    let mut perms = fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&script, perms).unwrap();
    let toggles = t.path("toggle-runs");
    let server = t.server();
    let mut d = t.daemon();
    let stopped = "stopped flapping, now OK";
    wait_until(WITHIN, "the stopped flapping mail", || {
        server
            .received()
            .iter()
            .any(|m| m.body_decoded.starts_with(stopped))
            .then_some(())
    });
    let runs = support::count_lines(&toggles);
    assert!(runs >= 56, "it stops flapping after 16 steady runs: {runs}");
    let mails = all_mail(&t, &server);
    let firsts: Vec<&str> = mails.iter().map(body_first_line).collect();
    let flapping: Vec<&&str> = firsts
        .iter()
        .filter(|l| l.starts_with("FLAPPING: changed state 6 times in the last 21 runs"))
        .collect();
    assert_eq!(flapping.len(), 1, "{}", describe(&mails));
    assert_eq!(
        firsts.iter().filter(|l| l.starts_with(stopped)).count(),
        1,
        "{}",
        describe(&mails)
    );
    // Before flapping was detected (6 state changes, 34.4 %): three
    // outages of one run each; then only the two flapping mails.
    assert_eq!(mails.len(), 8, "{}", describe(&mails));
    assert!(firsts[6].starts_with("FLAPPING"), "{}", describe(&mails));
    assert!(firsts[7].starts_with(stopped), "{}", describe(&mails));
    // One thread: the flapping mail starts it, "stopped" ends it.
    assert_eq!(mails[6].subject_decoded, "[picomon] FLAPPING: link on sw1");
    assert_eq!(mails[7].one("In-Reply-To"), mails[6].one("Message-ID"));
    d.stop();
}

// --------------------------------------------- reminders and escalation

/// Seconds of "H:MM:SS" right after `prefix` in `line`.
fn secs_after(line: &str, prefix: &str) -> u64 {
    let at = line
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {line:?}"))
        + prefix.len();
    let hms: Vec<u64> = line[at..]
        .split([',', ' ', ')'])
        .next()
        .unwrap()
        .split(':')
        .map(|x| x.parse().unwrap())
        .collect();
    hms[0] * 3600 + hms[1] * 60 + hms[2]
}

#[test]
fn reminders_and_the_escalated_recipient_are_counted_exactly() {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
    let sb_dir = "@DIR@";
    let t = rig(
        "1",
        &format!(
            r#"
config.emails.escalate = [#{{ after: "5s", to: ["{LEAD}"] }}];
add(plugin("{}", ["{sb_dir}/db-runs", "{sb_dir}/db-status"]), #{{ name: "db", target_name: "db1", retry: 0, renotify_every: "3s" }});
"#,
            plugin.display()
        ),
    );
    let server = t.server();
    let db_status = t.path("db-status");
    fs::write(&db_status, "2\nCRITICAL - db down\n").unwrap();
    let mut d = t.daemon();
    let problem = "[picomon] CRITICAL: db on db1";
    let thread = format!("Re: {problem}");
    server.wait_for(OPS, problem);
    // Keep it down until three reminders are in (the escalation at 5 s
    // comes between the first and the second).
    wait_until(WITHIN, "three reminders", || {
        (server
            .received()
            .iter()
            .filter(|m| body_first_line(m).starts_with("reminder "))
            .count()
            >= 3)
            .then_some(())
    });
    let tmp = t.path("db-status.tmp");
    fs::write(&tmp, "0\nOK - db up\n").unwrap();
    fs::rename(&tmp, &db_status).unwrap();
    wait_until(WITHIN, "the recovery", || {
        server
            .received()
            .iter()
            .any(|m| body_first_line(m).starts_with("OK: recovered after"))
            .then_some(())
    });
    t.wait_runs(2);
    let mails = all_mail(&t, &server);
    let to_ops: Vec<&Mail> = mails
        .iter()
        .filter(|m| m.rcpt_tos.iter().any(|r| r == OPS))
        .collect();
    assert_eq!(to_ops.len(), mails.len(), "{}", describe(&mails));
    assert_eq!(mails[0].subject_decoded, problem);
    assert!(mails[1..].iter().all(|m| m.subject_decoded == thread));
    let root = mails[0].one("Message-ID");
    assert!(mails[1..].iter().all(|m| m.one("In-Reply-To") == root));

    // The reminders, numbered 1..n without gaps, none early.
    let reminders: Vec<&Mail> = mails
        .iter()
        .filter(|m| body_first_line(m).starts_with("reminder "))
        .collect();
    let n = reminders.len();
    assert!(n >= 3, "{}", describe(&mails));
    for (k, m) in reminders.iter().enumerate() {
        let line = body_first_line(m);
        assert!(
            line.starts_with(&format!("reminder {}: still CRITICAL after ", k + 1)),
            "{}",
            describe(&mails)
        );
        assert!(secs_after(line, " after ") >= 3 * (k as u64 + 1), "{line}");
    }
    let escalations: Vec<&Mail> = mails
        .iter()
        .filter(|m| body_first_line(m).starts_with("escalated: CRITICAL for "))
        .collect();
    assert_eq!(escalations.len(), 1, "{}", describe(&mails));
    let esc = escalations[0];
    assert!(secs_after(body_first_line(esc), "CRITICAL for ") >= 5);
    assert_eq!(esc.one("Cc"), LEAD);
    let recoveries: Vec<&Mail> = mails
        .iter()
        .filter(|m| body_first_line(m).starts_with("OK: recovered after"))
        .collect();
    assert_eq!(recoveries.len(), 1);
    assert_eq!(mails.len(), 1 + n + 1 + 1, "{}", describe(&mails));

    // The lead gets the escalation and every later mail of the thread: the
    // reminders of 5 s or more of outage (the escalation comes at the
    // first tick at 5 s, before that tick's reminder) and the recovery.
    let later = reminders
        .iter()
        .filter(|m| secs_after(body_first_line(m), " after ") >= 5)
        .count();
    let to_lead = mails
        .iter()
        .filter(|m| m.rcpt_tos.iter().any(|r| r == LEAD))
        .count();
    assert_eq!(to_lead, 1 + later + 1, "{}", describe(&mails));
    assert!(later >= 1, "{}", describe(&mails));
    d.stop();
}
