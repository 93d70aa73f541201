//! The outage log as the loop writes it, driven by hand: which lines a
//! story leaves in `state_dir/history`, and the availability the status
//! shows from them.

use super::*;
use crate::history::{journal, Kind, Record};

fn lines(r: &Rig) -> Vec<Record> {
    let mut out = Vec::new();
    journal::read(r.dir.path(), None, |l| out.push(l)).unwrap();
    out
}

#[test]
fn transitions_acks_and_maintenance_go_to_the_log_and_make_the_availability() {
    let start = crate::clock::local_datetime(T0 + 300 * SEC as i64);
    let end = crate::clock::local_datetime(T0 + 600 * SEC as i64);
    let script =
        format!("{ONE}\nmaintenance(#{{ match: \"web1\", start: \"{start}\", end: \"{end}\" }});");
    let mut r = rig(&script);
    r.at(0);
    r.started();
    r.end("a", Status::Ok);
    r.at(60 * SEC);
    r.started();
    r.end("a", Status::Critical);
    ask(
        &mut r,
        Request::Ack {
            check: "a".into(),
            comment: "on it".into(),
            for_secs: None,
            sticky: false,
            mail_from: None,
        },
    );
    r.at(120 * SEC);
    r.started();
    r.end("a", Status::Ok);
    // Seen at T0, down from 60 s to 120 s.
    assert_eq!(status_of(&r, "a").availability.day, Some(50.0));
    for k in 3..=10 {
        r.at(k * 60 * SEC);
        r.started();
        r.end("a", Status::Ok);
    }
    let got: Vec<_> = lines(&r).iter().map(|l| (l.kind, l.at - T0)).collect();
    let s = SEC as i64;
    assert_eq!(
        got,
        [
            (Kind::Seen, 0),
            (Kind::Problem, 60 * s),
            (Kind::Ack, 60 * s),
            (Kind::Recovery, 120 * s),
            (Kind::MaintenanceStart, 300 * s),
            (Kind::MaintenanceEnd, 600 * s),
        ]
    );
    let l = lines(&r);
    assert_eq!(l[1].status.as_deref(), Some("CRITICAL"));
    assert_eq!(l[1].text, "a said CRITICAL");
    assert_eq!(l[2].by.as_deref(), Some("alice"));
    // 600 s seen, 300 s of it maintenance: 60 s down of 300 counted.
    let a = status_of(&r, "a").availability;
    assert_eq!(a.day, Some(80.0));
    assert_eq!(a.month, Some(80.0));
}

#[test]
fn a_restart_reads_the_figures_back_and_a_new_check_starts_at_100() {
    let mut r = rig(ONE);
    r.at(0);
    r.started();
    r.end("a", Status::Critical);
    r.at(60 * SEC);
    r.started();
    r.end("a", Status::Ok);
    // A new loop on the same state dir, with one check more.
    let script = format!("{ONE}\nadd(shell(\"true\"), #{{ name: \"b\" }});");
    let cfg = config(r.dir.path(), &script);
    let clock = ManualClock::new(T0 + 120 * SEC as i64);
    let d = Daemon::new(
        cfg,
        clock.clone(),
        Box::new(ManualExecutor::default()),
        Box::new(Recorder::default()),
        Outputs::start(&[], r.dir.path()).unwrap(),
    );
    let report = d.status_report();
    let of = |n: &str| {
        report
            .checks
            .iter()
            .find(|c| &*c.name == n)
            .unwrap()
            .availability
    };
    assert_eq!(of("a").day, Some(50.0));
    assert_eq!(of("b").day, None, "nothing counted yet");
    clock.advance(60 * SEC);
    let a = d.status_report().checks[1].availability;
    assert_eq!(a.day, Some(100.0));
}

#[test]
fn a_flapping_check_writes_its_start_and_stop_not_every_change() {
    let mut r = rig(ONE);
    // 200 runs alternating CRITICAL and OK, then OK for good.
    for k in 0..260u64 {
        r.at(k * 60 * SEC);
        r.started();
        let failing = k < 200 && k % 2 == 1;
        r.end(
            "a",
            if failing {
                Status::Critical
            } else {
                Status::Ok
            },
        );
    }
    let kinds: Vec<_> = lines(&r).iter().map(|l| l.kind).collect();
    let flapping = |k| kinds.iter().filter(|&&x| x == k).count();
    assert_eq!(flapping(Kind::FlappingStart), 1, "{kinds:?}");
    assert_eq!(flapping(Kind::FlappingStop), 1, "{kinds:?}");
    // The changes before it was found flapping, then nothing until it
    // stopped: 100 outages are a few lines.
    assert!(kinds.len() < 20, "{} lines: {kinds:?}", kinds.len());
    let a = status_of(&r, "a").availability.day.unwrap();
    assert!(a > 0.0 && a < 100.0, "{a}");
}
