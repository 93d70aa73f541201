//! What the loop publishes for its readers: a compact line per check, and
//! the status JSON written straight from it.

use super::*;
use crate::control::protocol::Filter;
use crate::control::snapshot::json::{self, Shape};
use crate::control::snapshot::{CheckLine, Recent};

#[test]
fn the_published_status_is_written_as_the_loop_s_own_answer() {
    let mut r = rig(r#"
config.base_tick = 60;
config.listen = "127.0.0.1:0";
add(shell("true"), #{ name: "a", retry: 0 });
add(shell("true"), #{ name: "b", depends_on: ["a"] });
add(shell("true"), #{ name: "c" });
"#);
    r.at(0);
    r.started();
    r.end_with(
        "a",
        Outcome::new(Status::Critical, "down\nsecond line").with_duration(Duration::from_millis(7)),
    );
    r.end("b", Status::Critical);
    r.end("c", Status::Ok);
    ask(
        &mut r,
        Request::Ack {
            check: "a".into(),
            comment: "on it".into(),
            for_secs: Some(600),
            sticky: false,
            mail_from: None,
        },
    );
    silence(&mut r, "c", 600);
    let snap = r.d.snapshot();
    let report = r.d.status_report();
    assert_eq!(snap.report(), report);
    let phases: Vec<&str> = snap.checks.iter().map(|c| c.phase().as_str()).collect();
    assert_eq!(phases, ["problem", "unreachable", "ok"]);
    let written = |filter| {
        let mut out = Vec::new();
        json::write(&mut out, &snap, filter, Shape::default()).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        written(Filter::default()),
        serde_json::to_string(&report).unwrap()
    );
    let problems = Filter {
        only: None,
        problems: true,
    };
    let mut failing = report.clone();
    failing.checks.retain(|c| problems.keeps(c));
    assert_eq!(failing.checks.len(), 2);
    assert_eq!(written(problems), serde_json::to_string(&failing).unwrap());
}

/// The published status of 10,000 `tcp` checks that each ran once, with
/// the listener on: an 80-byte line and a 32-byte ring per check, the
/// strings shared with the loop, nothing boxed for a check at rest.
#[test]
fn a_published_check_costs_its_line_and_its_ring() {
    use std::mem::size_of;
    assert_eq!(size_of::<CheckLine>(), 80);
    assert_eq!(size_of::<Recent>(), 32);
    const N: usize = 10_000;
    let mut script = String::from(
        "config.listen = \"127.0.0.1:0\";\nlet lo = host(\"lo\", #{ ipv4: \"127.0.0.1\" });\n",
    );
    for i in 0..N {
        script.push_str(&format!(
            "add(tcp(lo, {}), #{{ name: \"t{i}\" }});\n",
            9000 + i % 100
        ));
    }
    let mut r = rig(&script);
    r.at(0);
    for run in r.exec.take() {
        let outcome = Outcome::new(
            Status::Ok,
            "TCP OK - 0.000 second response time on 127.0.0.1 port 9000",
        )
        .with_duration(Duration::from_millis(1));
        r.d.on_result(&run.spec.id, outcome);
    }
    let before = heap_in_use();
    let snap = r.d.snapshot();
    assert_eq!(snap.checks.len(), N);
    assert_eq!(snap.recent.len(), N);
    let per_check = (heap_in_use() - before) / N;
    eprintln!("{per_check} bytes per check published");
    // 112 when pinned (96 while a line kept its output as one shared
    // string, before the loop kept a short performance part inline);
    // about 650 by their sizes while the snapshot held a
    // copy of each check's status in the protocol's types (344 bytes),
    // its durations as a list of 30 f32 and, for a check younger than
    // the bar, its 30 days.
    assert!(per_check <= 116, "{per_check} bytes per check published");
    drop(snap);
    // Making it left nothing behind.
    let left = heap_in_use().saturating_sub(before) / N;
    assert!(
        left <= 2,
        "{left} bytes per check left after the snapshot went"
    );
}
