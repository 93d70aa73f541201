//! `picomon simulate` tells the story the daemon lives: the same story
//! (a router fails, a web server behind it fails too and is held, the
//! outage escalates, both recover) once against the running daemon and
//! aiosmtpd (tests/smtp/server.py), once through `picomon simulate`; the
//! mails' subjects, recipients, Cc and threads are the same.

use crate::support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use support::ports::reserve_port;
use support::smtp::Smtp;
use support::{wait_until, Daemon, Sandbox};

const LONG: Duration = Duration::from_secs(120);

/// A mail as both sides are compared: subject, To, Cc, and the subject of
/// the mail it replies to ("" for a thread's first).
type Told = (String, Vec<String>, Vec<String>, String);

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn split(list: &str) -> Vec<String> {
    sorted(
        list.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// Each mail with its thread's subject in place of ids (which carry the
/// times, different on the two sides).
/// A mail as read: subject, To, Cc, Message-ID, In-Reply-To.
type Read = (String, Vec<String>, Vec<String>, String, Option<String>);

fn told(mails: &[Read]) -> Vec<Told> {
    let subject_of: HashMap<&str, &str> = mails
        .iter()
        .map(|(s, _, _, id, _)| (id.as_str(), s.as_str()))
        .collect();
    let mut out: Vec<Told> = mails
        .iter()
        .map(|(s, to, cc, _, reply)| {
            let thread = reply.as_deref().map_or("", |r| {
                subject_of.get(r).copied().unwrap_or("(a mail not sent)")
            });
            (s.clone(), to.clone(), cc.clone(), thread.to_string())
        })
        .collect();
    out.sort();
    out
}

fn set_status(dir: &Path, file: &str, code: i32, text: &str) {
    let tmp = dir.join(format!("{file}.tmp"));
    std::fs::write(&tmp, format!("{code}\n{text}\n")).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

#[test]
fn simulate_prints_the_subjects_recipients_and_threads_the_daemon_mails() {
    let sb = Sandbox::new();
    let (_held, port) = reserve_port();
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
    let d = sb.dir.path().display().to_string();
    sb.config(&format!(
        r#"
config.base_tick = 0.5;
config.state_dir = "{d}/state";
config.emails.to = ["ops@example.org"];
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.smtp_host = "127.0.0.1:{port}";
config.emails.smtp_retry_timeout = 1;
config.emails.escalate = [#{{ after: "20s", to: ["boss@example.org"] }}];
add(plugin("{p}", ["{d}/router-runs", "{d}/router"]), #{{ name: "router", target_name: "gw", retry: 0 }});
add(plugin("{p}", ["{d}/web1-runs", "{d}/web1"]), #{{ name: "web1", target_name: "lan", retry: 0, depends_on: ["router"] }});
"#,
        p = plugin.display()
    ));
    let cfg = sb.path("config.rhai").display().to_string();
    let picomon = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-c", &cfg]);
        sb.run(&all)
    };
    let phase = |name: &str| -> String {
        let out = picomon(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .map(|c| c["phase"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let wait_phase = |name: &str, want: &str| {
        wait_until(LONG, &format!("{name} in phase {want}"), || {
            (phase(name) == want).then_some(())
        })
    };

    // The daemon's story.
    let smtp = Smtp::start(sb.dir.path(), port);
    let _daemon = Daemon::start_anew(sb.dir.path(), &["-c", "config.rhai"]);
    wait_phase("router", "ok");
    set_status(
        sb.dir.path(),
        "router",
        2,
        "PING CRITICAL - 100% packet loss",
    );
    smtp.wait_messages(1);
    set_status(sb.dir.path(), "web1", 2, "connection timed out");
    wait_phase("web1", "unreachable");
    // The escalation: a mail with a Cc.
    wait_until(LONG, "the escalation", || {
        smtp.received()
            .iter()
            .any(|m| !m.header("Cc").is_empty())
            .then_some(())
    });
    set_status(sb.dir.path(), "web1", 0, "HTTP OK");
    wait_phase("web1", "ok");
    set_status(sb.dir.path(), "router", 0, "PING OK");
    wait_phase("router", "ok");
    let mails = wait_until(LONG, "the Recovery", || {
        let r = smtp.received();
        r.iter()
            .any(|m| m.body_decoded.contains("PING OK"))
            .then_some(r)
    });
    let daemon: Vec<_> = mails
        .iter()
        .map(|m| {
            let reply = m.header("In-Reply-To").first().map(|s| s.to_string());
            (
                m.subject_decoded.clone(),
                split(&m.header("To").join(",")),
                split(&m.header("Cc").join(",")),
                m.one("Message-ID").to_string(),
                reply,
            )
        })
        .collect();

    // The same story, simulated.
    std::fs::write(
        sb.path("story.txt"),
        "# the story the daemon lived above\n\
         0s   router CRITICAL PING CRITICAL - 100% packet loss\n\
         2s   web1 CRITICAL connection timed out\n\
         30s  web1 OK HTTP OK\n\
         32s  router OK PING OK\n",
    )
    .unwrap();
    let out = picomon(&[
        "simulate",
        &sb.path("story.txt").display().to_string(),
        "--json",
        "--until",
        "1m",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let sim: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let strings = |v: &serde_json::Value| -> Vec<String> {
        sorted(
            v.as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
        )
    };
    let simulated: Vec<_> = sim
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["subject"].as_str().unwrap().to_string(),
                strings(&s["to"]),
                strings(&s["cc"]),
                s["message_id"].as_str().unwrap().to_string(),
                s["in_reply_to"].as_str().map(str::to_string),
            )
        })
        .collect();
    let (daemon, simulated) = (told(&daemon), told(&simulated));
    assert_eq!(
        daemon, simulated,
        "the daemon mailed {daemon:#?}\nsimulate says {simulated:#?}"
    );
    // The story has what it is about: a Cc'd escalation, and one thread.
    assert!(
        daemon.iter().any(|t| t.2 == ["boss@example.org"]),
        "{daemon:#?}"
    );
    assert!(daemon
        .iter()
        .all(|t| t.3.is_empty() || t.3 == "[picomon] CRITICAL: router on gw"));
    // Nothing was sent by the simulation, nothing written to the state.
    assert_eq!(smtp.received().len(), mails.len());
}
