//! Heartbeat checks in the loop, on the manual clock: pings, silence,
//! failures, unfinished starts, keys, restarts.

use super::*;
use crate::model::heartbeat::{Ping, PingKind};

const BEAT: &str = r#"
config.base_tick = 1;
add(heartbeat(#{ period: "2s", grace: "1s" }), #{ name: "backup", retry: 0 });
add(shell("true"), #{ name: "plain" });
"#;

fn ping(r: &mut Rig, fail: bool, message: &str) -> Response {
    ask(
        r,
        Request::Ping {
            check: "backup".into(),
            start: false,
            fail,
            exit: None,
            nagios: None,
            message: message.into(),
        },
    )
    .expect("a ping is answered at once")
}

/// The batches of transitions, as `kind name: output`.
fn mails(r: &Rig) -> Vec<String> {
    std::mem::take(&mut *r.notes.batches.lock().unwrap())
        .into_iter()
        .flatten()
        .map(|n| format!("{} {}: {}", n.transition.kind.as_str(), n.name, n.output))
        .collect()
}

#[test]
fn pings_keep_it_ok_silence_is_one_problem_and_a_ping_one_recovery() {
    let mut r = rig(BEAT);
    r.at(0);
    // Only the plain check went to a worker: heartbeats run nothing.
    assert_eq!(r.started(), ["plain"]);
    r.end("plain", Status::Ok);
    for s in 1..=6 {
        r.at(s * SEC);
        r.started();
        r.end("plain", Status::Ok);
        if s % 2 == 0 {
            assert!(ping(&mut r, false, "").error.is_none());
        }
    }
    assert_eq!(r.phase("backup"), Phase::Ok);
    assert!(mails(&r).is_empty());
    // The last ping was at 6 s: 2 s + 1 s later it is late.
    for s in 7..=12 {
        r.at(s * SEC);
        r.started();
        r.end("plain", Status::Ok);
    }
    let got = mails(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("problem backup: HEARTBEAT CRITICAL - no ping since"),
        "{got:?}"
    );
    assert!(got[0].contains("(expected every 2s)"), "{got:?}");
    let answer = ping(&mut r, false, "");
    assert!(answer.message.unwrap().starts_with("success recorded"));
    let got = mails(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("recovery backup: HEARTBEAT OK"),
        "{got:?}"
    );
}

#[test]
fn a_failure_ping_is_a_problem_that_says_why() {
    let mut r = rig(BEAT);
    r.at(0);
    r.end("plain", Status::Ok);
    ping(&mut r, true, "disk full");
    let got = mails(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("problem backup: HEARTBEAT CRITICAL"),
        "{got:?}"
    );
    assert!(got[0].contains("disk full"), "{got:?}");
}

#[test]
fn a_start_without_its_end_within_grace_is_a_problem() {
    let mut r = rig(BEAT);
    r.at(0);
    r.end("plain", Status::Ok);
    let start = ask(
        &mut r,
        Request::Ping {
            check: "backup".into(),
            start: true,
            fail: false,
            exit: None,
            nagios: None,
            message: String::new(),
        },
    )
    .unwrap();
    assert!(start.error.is_none(), "{start:?}");
    r.at(SEC);
    r.end("plain", Status::Ok);
    assert!(mails(&r).is_empty());
    r.at(2 * SEC);
    r.end("plain", Status::Ok);
    let got = mails(&r);
    assert!(got[0].contains("never finished"), "{got:?}");
}

#[test]
fn only_heartbeat_checks_take_pings() {
    let mut r = rig(BEAT);
    r.at(0);
    let answer = ask(
        &mut r,
        Request::Ping {
            check: "plain".into(),
            start: false,
            fail: false,
            exit: None,
            nagios: None,
            message: String::new(),
        },
    )
    .unwrap();
    assert!(answer.error.unwrap().contains("is not a heartbeat check"));
    let answer = ask(
        &mut r,
        Request::Ping {
            check: "nothing".into(),
            start: false,
            fail: false,
            exit: None,
            nagios: None,
            message: String::new(),
        },
    )
    .unwrap();
    assert!(answer.error.unwrap().contains("no check named"));
}

#[test]
fn an_http_ping_needs_the_key_and_a_wrong_one_changes_nothing() {
    let mut r = rig(BEAT);
    let key = r.dir.path().join("ping.key");
    std::fs::write(&key, "0123456789abcdef\n").unwrap();
    r.d.cfg.ping_key_file = Some(key);
    r.at(0);
    r.end("plain", Status::Ok);
    let ping = |fail: bool| Ping {
        kind: PingKind::Done(if fail { Status::Critical } else { Status::Ok }),
        message: "from curl".into(),
    };
    let before = status_of(&r, "backup");
    let wrong = r.d.http_ping("0123456789abcdeF", "backup", ping(true));
    assert_eq!(wrong, Err(None));
    assert_eq!(status_of(&r, "backup").output, before.output);
    assert!(mails(&r).is_empty());
    let unknown = r.d.http_ping("0123456789abcdef", "nothing", ping(true));
    assert!(unknown.unwrap_err().unwrap().contains("no check named"));
    let right = r.d.http_ping("0123456789abcdef", "backup", ping(true));
    assert!(right.is_ok(), "{right:?}");
    assert!(mails(&r)[0].contains("from curl"));
}

#[test]
fn a_passive_result_for_the_name_is_a_ping() {
    let mut r = rig(BEAT);
    r.at(0);
    r.end("plain", Status::Ok);
    let result = crate::passive::PassiveResult::parse_command_line(
        "PROCESS_SERVICE_CHECK_RESULT;db1;backup;2;dump failed",
        T0,
    )
    .unwrap();
    r.d.passive_pings(&[result]);
    let got = mails(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("dump failed"), "{got:?}");
}

#[test]
fn the_last_ping_survives_a_restart() {
    let mut r = rig(BEAT);
    r.at(0);
    r.end("plain", Status::Ok);
    r.at(SEC);
    r.end("plain", Status::Ok);
    ping(&mut r, false, "done");
    r.at(2 * SEC);
    r.end("plain", Status::Ok);
    let saved = crate::state::load(r.dir.path()).unwrap();
    let mut again = rig(BEAT);
    again.d.restore(saved);
    // Restarted 2 s after the ping (the new clock starts at T0 again):
    // it still counts from the ping, and says so.
    again.at(0);
    again.end("plain", Status::Ok);
    assert!(status_of(&again, "backup").output.contains("done"));
    again.at(3 * SEC);
    again.end("plain", Status::Ok);
    assert!(mails(&again).is_empty());
    again.at(5 * SEC);
    again.end("plain", Status::Ok);
    assert!(mails(&again)[0].contains("no ping since"));
}
