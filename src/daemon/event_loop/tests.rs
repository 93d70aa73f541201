//! The loop driven by hand: a manual clock, an executor that only records
//! what was started, a notifier that records what it was handed. No
//! threads, no sleeps: each test says when every run ends and with what.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::*;
use crate::alert::{Phase, TransitionKind};
use crate::clock::ManualClock;
use crate::control::protocol::{self as proto, Request};
use crate::daemon::executor::ManualExecutor;
use crate::model::Status;

const SEC: u64 = 1_000_000;
const T0: UnixMicros = 1_700_000_000 * 1_000_000;

/// What a tick offered for reports: any PROBLEM, and the notes.
type TickSeen = Option<(bool, Vec<String>)>;

/// What the loop handed the notifier: one inner list per batch.
#[derive(Clone, Default)]
struct Recorder {
    batches: Arc<Mutex<Vec<Vec<Notice>>>>,
    /// What the last tick offered for reports: any PROBLEM, and the notes.
    last_tick: Arc<Mutex<TickSeen>>,
    /// `name by: comment` of each acknowledgement.
    acks: Arc<Mutex<Vec<String>>>,
    /// Subject and body of each mail about picomon itself.
    notes: Arc<Mutex<Vec<(String, String)>>>,
}

impl Notifier for Recorder {
    fn transitions(&mut self, batch: Vec<Notice>, _now: UnixMicros) {
        self.batches.lock().unwrap().push(batch);
    }
    fn tick(&mut self, _now: crate::clock::Now, checks: &dyn CheckList) {
        *self.last_tick.lock().unwrap() = Some((checks.any_problem(), checks.notes()));
    }

    fn acknowledged(&mut self, check: &CheckView, by: &str, comment: &str, _now: UnixMicros) {
        let line = format!("{} {by}: {comment}", check.name);
        self.acks.lock().unwrap().push(line);
    }

    fn note(&mut self, subject: &str, body: &str, _now: UnixMicros) {
        self.notes
            .lock()
            .unwrap()
            .push((subject.to_string(), body.to_string()));
    }
}

impl Recorder {
    /// `kind name` of each transition, batch by batch.
    fn take(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut *self.batches.lock().unwrap())
            .into_iter()
            .map(|b| {
                b.iter()
                    .map(|n| format!("{} {}", n.transition.kind.as_str(), n.name))
                    .collect()
            })
            .collect()
    }
}

struct Rig {
    d: Daemon<ManualClock>,
    clock: ManualClock,
    exec: ManualExecutor,
    notes: Recorder,
    dir: tempfile::TempDir,
}

fn config(dir: &Path, script: &str) -> Config {
    let mut cfg =
        crate::config::load_str(Path::new("test.rhai"), script).expect("test config is valid");
    cfg.state_dir = dir.to_path_buf();
    cfg
}

/// A loop over `script`'s checks with its state dir in a temp dir.
fn rig(script: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let exec = ManualExecutor::default();
    let notes = Recorder::default();
    let cfg = config(dir.path(), script);
    let outputs = Outputs::start(&[], dir.path()).unwrap();
    let d = Daemon::new(
        cfg,
        clock.clone(),
        Box::new(exec.clone()),
        Box::new(notes.clone()),
        outputs,
    );
    Rig {
        d,
        clock,
        exec,
        notes,
        dir,
    }
}

impl Rig {
    /// Names of the checks started since the last call.
    fn started(&self) -> Vec<String> {
        self.exec
            .take()
            .into_iter()
            .map(|r| r.spec.name.to_string())
            .collect()
    }

    fn end(&mut self, name: &str, status: Status) {
        self.end_with(name, Outcome::new(status, format!("{name} said {status}")));
    }

    fn end_with(&mut self, name: &str, outcome: Outcome) {
        let id = self
            .d
            .views()
            .into_iter()
            .find(|v| v.name == name)
            .expect("a check of that name")
            .check_id;
        self.d.on_result(&id, outcome);
    }

    fn at(&mut self, micros: u64) {
        let now = self.clock.mono();
        assert!(micros >= now, "the clock only moves forward");
        self.clock.advance(micros - now);
        self.d.tick(false);
    }

    fn phase(&self, name: &str) -> Phase {
        self.d
            .views()
            .into_iter()
            .find(|v| v.name == name)
            .unwrap()
            .phase
    }
}

const TWO: &str = r#"
config.base_tick = 60;
add(shell("true"), #{ name: "a" });
add(shell("true"), #{ name: "b", every: 2 });
"#;

#[test]
fn tick_zero_runs_everything_and_ticks_fall_on_a_fixed_grid() {
    let mut r = rig(TWO);
    assert_eq!(r.d.next_tick_at(), 0);
    r.at(0);
    assert_eq!(r.started(), ["a", "b"]);
    r.end("a", Status::Ok);
    r.end("b", Status::Ok);
    assert_eq!(r.d.next_tick_at(), 60 * SEC);
    // Not due a microsecond early, whatever wakes the loop.
    r.at(60 * SEC - 1);
    assert!(r.started().is_empty());
    r.at(60 * SEC);
    assert_eq!(r.started(), ["a"], "b runs every 2 ticks");
    r.end("a", Status::Ok);
    // A tick that ran 7 s late does not move the grid.
    r.at(127 * SEC);
    assert_eq!(r.started(), ["a", "b"]);
    assert_eq!(r.d.next_tick_at(), 180 * SEC);
}

#[test]
fn a_late_wake_up_runs_the_latest_tick_once() {
    let mut r = rig(TWO);
    r.at(0);
    r.started();
    r.end("a", Status::Ok);
    r.end("b", Status::Ok);
    // Suspended for five and a half ticks: one tick (5), then the grid.
    r.at(330 * SEC);
    assert_eq!(r.started(), ["a", "b"]);
    r.end("a", Status::Ok);
    r.end("b", Status::Ok);
    r.d.tick(false);
    assert!(r.started().is_empty(), "missed ticks are not repeated");
    assert_eq!(r.d.next_tick_at(), 360 * SEC);
}

#[test]
fn a_check_still_running_is_skipped_and_the_overload_shows() {
    let mut r = rig(TWO);
    r.at(0);
    r.started();
    r.end("b", Status::Ok);
    // a hangs through tick 1 and 2: skipped there, never run twice.
    r.at(60 * SEC);
    assert!(r.started().is_empty());
    r.at(120 * SEC);
    assert_eq!(r.started(), ["b"]);
    assert_eq!(r.d.running(), 2);
    let dump = r.d.dump();
    assert!(
        dump.contains("overload: 2 runs skipped and 0 kept waiting for a worker since start"),
        "{dump}"
    );
    // Reports get the same line.
    let (_, notes) = r.notes.last_tick.lock().unwrap().clone().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("2 runs skipped"), "{notes:?}");
    r.end("a", Status::Ok);
    r.at(180 * SEC);
    assert_eq!(r.started(), ["a"]);
}

#[test]
fn reports_hear_of_problems_and_have_no_notes_while_all_is_well() {
    let mut r = rig(r#"add(shell("true"), #{ name: "x", retry: 0 });"#);
    r.at(0);
    r.started();
    r.end("x", Status::Critical);
    r.at(60 * SEC);
    let (problem, notes) = r.notes.last_tick.lock().unwrap().clone().unwrap();
    assert!(problem);
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn runs_of_earlier_ticks_without_a_worker_are_counted_as_waiting() {
    let script = r#"
config.base_tick = 10;
config.workers = 2;
for i in 0..5 { add(shell("true"), #{ name: `c${i}` }); }
"#;
    let mut r = rig(script);
    // Runs queued within their own tick are normal: no overload.
    r.at(0);
    assert_eq!(r.started().len(), 5);
    assert!(r.d.dump().contains("overload: none"), "{}", r.d.dump());
    // Three of them still have no worker when the next tick comes.
    *r.exec.backlog.lock().unwrap() = 3;
    r.at(10 * SEC);
    let dump = r.d.dump();
    assert!(
        dump.contains("5 skipped, 3 waiting (config.workers = 2)"),
        "{dump}"
    );
}

#[test]
fn a_tick_s_transitions_go_out_once_all_its_runs_ended_in_config_order() {
    let script = r#"
config.base_tick = 60;
add(shell("true"), #{ name: "first", retry: 0 });
add(shell("true"), #{ name: "second", retry: 0 });
add(shell("true"), #{ name: "third", retry: 0 });
"#;
    let mut r = rig(script);
    r.at(0);
    r.started();
    r.end("third", Status::Critical);
    r.end("first", Status::Critical);
    assert!(r.notes.take().is_empty(), "second is still running");
    r.end("second", Status::Ok);
    assert_eq!(
        r.notes.take(),
        [["problem first", "problem third"]],
        "one batch, in config order"
    );
    // A run still going at the next tick does not hold the batch longer.
    r.at(60 * SEC);
    r.started();
    r.end("first", Status::Ok);
    assert!(r.notes.take().is_empty());
    r.at(120 * SEC);
    assert_eq!(r.notes.take(), [["recovery first"]]);
}

#[test]
fn retry_and_error_every_are_applied_by_the_loop() {
    let script = r#"
config.base_tick = 60;
add(shell("true"), #{ name: "x", retry: 1, every: 5, error_every: 1 });
"#;
    let mut r = rig(script);
    r.at(0);
    r.started();
    r.end("x", Status::Critical);
    assert_eq!(r.phase("x"), Phase::Retrying);
    assert!(r.notes.take().is_empty());
    // Failing: every tick instead of every 5.
    r.at(60 * SEC);
    assert_eq!(r.started(), ["x"]);
    r.end("x", Status::Critical);
    assert_eq!(r.phase("x"), Phase::Problem);
    assert_eq!(r.notes.take(), [["problem x"]]);
    r.at(120 * SEC);
    r.started();
    r.end("x", Status::Ok);
    assert_eq!(r.notes.take(), [["recovery x"]]);
    // OK again: back to every 5 ticks.
    r.at(180 * SEC);
    assert!(r.started().is_empty());
    r.at(420 * SEC);
    assert_eq!(r.started(), ["x"]);
}

#[test]
fn reload_keeps_the_state_of_unchanged_identities_only() {
    let mut r = rig(r#"
config.base_tick = 60;
add(shell("true"), #{ name: "kept", retry: 0 });
add(shell("true"), #{ name: "dropped", retry: 0 });
"#);
    r.at(0);
    r.started();
    r.end("kept", Status::Critical);
    r.end("dropped", Status::Critical);
    assert_eq!(r.notes.take().len(), 1);
    let cfg = config(
        r.dir.path(),
        r#"
config.base_tick = 60;
add(shell("true"), #{ name: "kept", retry: 0 });
add(shell("false"), #{ name: "new", retry: 0 });
"#,
    );
    r.d.reload(
        cfg,
        Parts {
            notifier: None,
            outputs: None,
        },
    );
    assert_eq!(r.phase("kept"), Phase::Problem, "a PROBLEM stays a PROBLEM");
    assert_eq!(r.phase("new"), Phase::Ok);
    assert_eq!(r.d.len(), 2);
    // Same grid: the new check runs at the next tick with the kept one.
    r.at(60 * SEC);
    assert_eq!(r.started(), ["kept", "new"]);
    r.end("kept", Status::Critical);
    r.end("new", Status::Ok);
    assert!(r.notes.take().is_empty(), "same status, no second Problem");
    // The state file forgot the removed check.
    let saved = crate::state::load(r.dir.path()).unwrap();
    assert!(saved.checks.contains_key("kept"));
    assert!(!saved.checks.contains_key("dropped"));
}

#[test]
fn a_new_base_tick_starts_a_new_grid_at_once() {
    let mut r = rig(TWO);
    r.at(0);
    r.started();
    r.end("a", Status::Ok);
    r.end("b", Status::Ok);
    r.at(90 * SEC);
    assert_eq!(r.started(), ["a"]); // tick 1, 30 s late
    r.end("a", Status::Ok);
    let cfg = config(
        r.dir.path(),
        &TWO.replace("base_tick = 60", "base_tick = 10"),
    );
    r.d.reload(
        cfg,
        Parts {
            notifier: None,
            outputs: None,
        },
    );
    // The new grid starts at the reload: tick 1 is 10 s later, and the
    // kept checks count as run at its tick 0.
    assert_eq!(r.d.next_tick_at(), 100 * SEC);
    r.at(100 * SEC);
    assert_eq!(r.started(), ["a"]);
    r.end("a", Status::Ok);
    r.at(110 * SEC);
    assert_eq!(r.started(), ["a", "b"]);
}

#[test]
fn a_probe_s_memory_goes_with_the_next_run_and_into_the_state_file() {
    let mut r = rig(TWO);
    r.at(0);
    let runs = r.exec.take();
    assert!(runs.iter().all(|run| run.memory.is_none()));
    let mut o = Outcome::new(Status::Ok, "route");
    o.memory = Some("192.0.2.1 192.0.2.2".into());
    r.end_with("a", o);
    r.end("b", Status::Ok);
    let saved = crate::state::load(r.dir.path()).unwrap();
    assert_eq!(
        saved.checks["a"].memory.as_deref(),
        Some("192.0.2.1 192.0.2.2")
    );
    r.at(60 * SEC);
    let runs = r.exec.take();
    assert_eq!(runs[0].memory.as_deref(), Some("192.0.2.1 192.0.2.2"));
    // An outcome that remembers nothing keeps what was remembered.
    r.end("a", Status::Ok);
    r.at(120 * SEC);
    let runs = r.exec.take();
    assert_eq!(runs[0].memory.as_deref(), Some("192.0.2.1 192.0.2.2"));
}

#[test]
fn restored_state_continues_an_outage_without_a_second_problem() {
    let mut r = rig(r#"add(shell("true"), #{ name: "x", retry: 0 });"#);
    r.at(0);
    r.started();
    r.end("x", Status::Critical);
    assert_eq!(r.notes.take(), [["problem x"]]);
    let saved = crate::state::load(r.dir.path()).unwrap();
    // A restart: a new loop over the same config and state.
    let mut again = rig(r#"add(shell("true"), #{ name: "x", retry: 0 });"#);
    again.d.restore(saved);
    assert_eq!(again.phase("x"), Phase::Problem);
    again.at(0);
    again.started();
    again.end("x", Status::Critical);
    assert!(again.notes.take().is_empty());
    again.at(60 * SEC);
    again.started();
    again.end("x", Status::Ok);
    let got = again.notes.batches.lock().unwrap().clone();
    assert_eq!(got[0][0].transition.kind, TransitionKind::Recovery);
}

// ------------------------------------------------ control: quiet and run

/// Sends a control request as alice; the answer if there is one yet.
fn ask(r: &mut Rig, request: Request) -> Option<Response> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    r.d.control(Call {
        request,
        user: "alice".into(),
        reply: tx,
    });
    for (call, answer) in r.d.take_answers() {
        call.answer(answer);
    }
    rx.try_recv().ok()
}

fn silence(r: &mut Rig, pattern: &str, secs: u64) -> Response {
    ask(
        r,
        Request::Silence {
            pattern: pattern.into(),
            for_secs: secs,
            comment: "deploy".into(),
            mail_from: None,
        },
    )
    .unwrap()
}

fn status_of(r: &Rig, name: &str) -> proto::CheckStatus {
    r.d.status_report()
        .checks
        .into_iter()
        .find(|c| &*c.name == name)
        .unwrap()
}

const ONE: &str = r#"
config.base_tick = 60;
add(shell("true"), #{ name: "a", retry: 0, target_name: "web1" });
"#;

#[test]
fn a_silenced_problem_is_handed_over_when_unsilenced() {
    let mut r = rig(ONE);
    r.at(0);
    r.started();
    let answer = silence(&mut r, "web1*", 3600);
    assert!(answer
        .message
        .unwrap()
        .starts_with("silence 1: \"web1*\" (1 checks match now)"));
    r.end("a", Status::Critical);
    assert!(r.notes.take().is_empty(), "held while silenced");
    let report = crate::notify::mail::compose::report_text(&r.d.views(), T0, "mon1");
    assert!(
        report.contains("a on web1: CRITICAL (silenced by 1)\n"),
        "{report}"
    );
    assert_eq!(status_of(&r, "a").silenced_by.as_deref(), Some("1"));
    let answer = ask(&mut r, Request::Unsilence { id: "1".into() }).unwrap();
    assert_eq!(
        answer.message.as_deref(),
        Some("silence 1 (\"web1*\") ended")
    );
    assert_eq!(r.notes.take(), vec![vec!["problem a".to_string()]]);
    // Once only; its Recovery follows as usual.
    r.at(60 * SEC);
    r.started();
    r.end("a", Status::Ok);
    assert_eq!(r.notes.take(), vec![vec!["recovery a".to_string()]]);
    let answer = ask(&mut r, Request::Unsilence { id: "1".into() }).unwrap();
    assert!(answer.error.unwrap().contains("no silence 1"));
}

#[test]
fn a_silence_expires_at_a_tick_and_a_recovered_check_mails_nothing() {
    let mut r = rig(ONE);
    r.at(0);
    r.started();
    silence(&mut r, "a", 90);
    r.end("a", Status::Critical);
    r.at(60 * SEC);
    r.started();
    r.end("a", Status::Critical);
    assert!(r.notes.take().is_empty());
    // The tick after the end of the silence hands the Problem over.
    r.at(120 * SEC);
    assert_eq!(r.notes.take(), vec![vec!["problem a".to_string()]]);
    r.started();
    r.end("a", Status::Ok);
    r.notes.take();

    // Until 270 s: failing at 180 s, recovered at 240 s.
    silence(&mut r, "a", 150);
    r.at(180 * SEC);
    r.started();
    r.end("a", Status::Critical);
    r.at(240 * SEC);
    r.started();
    r.end("a", Status::Ok);
    r.at(300 * SEC);
    assert!(r.notes.take().is_empty(), "recovered while silenced");
    assert!(r.d.status_report().silences.is_empty());
}

#[test]
fn an_ack_by_mail_names_the_sender_and_unack_ends_it() {
    let mut r = rig(ONE);
    r.at(0);
    r.started();
    r.end("a", Status::Critical);
    r.notes.take();
    let unack = || Request::Unack {
        check: "a".into(),
        mail_from: Some("ops@example.org".into()),
    };
    assert_eq!(
        ask(&mut r, unack()).unwrap().error.as_deref(),
        Some("a on web1 is not acknowledged: there is nothing to end")
    );
    let answer = ask(
        &mut r,
        Request::Ack {
            check: "a".into(),
            comment: "on it".into(),
            for_secs: None,
            sticky: true,
            mail_from: Some("ops@example.org".into()),
        },
    )
    .unwrap();
    assert!(answer.error.is_none(), "{answer:?}");
    assert_eq!(
        *r.notes.acks.lock().unwrap(),
        vec!["a ops@example.org by mail: on it".to_string()]
    );
    assert_eq!(
        status_of(&r, "a").ack.unwrap().by,
        "ops@example.org by mail"
    );
    // Ended: the next Update is mailed again, though the ack was sticky.
    let answer = ask(&mut r, unack()).unwrap();
    assert_eq!(
        answer.message.as_deref(),
        Some("acknowledgement ended: a on web1")
    );
    assert!(status_of(&r, "a").ack.is_none());
    r.at(60 * SEC);
    r.started();
    r.end("a", Status::Warning);
    assert_eq!(r.notes.take(), vec![vec!["update a".to_string()]]);
}

#[test]
fn an_ack_goes_to_the_thread_and_ends_at_the_next_status_change() {
    let mut r = rig(ONE);
    r.at(0);
    r.started();
    let ack = |sticky| Request::Ack {
        check: "a".into(),
        comment: "on it".into(),
        for_secs: None,
        sticky,
        mail_from: None,
    };
    r.end("a", Status::Ok);
    let answer = ask(&mut r, ack(false)).unwrap();
    assert_eq!(
        answer.error.as_deref(),
        Some("a on web1 is OK, not in PROBLEM: there is nothing to acknowledge")
    );
    r.at(60 * SEC);
    r.started();
    r.end("a", Status::Critical);
    r.notes.take();
    assert!(ask(&mut r, ack(false)).unwrap().error.is_none());
    assert_eq!(
        *r.notes.acks.lock().unwrap(),
        vec!["a alice: on it".to_string()]
    );
    let s = status_of(&r, "a");
    assert_eq!(s.ack.unwrap().by, "alice");
    // WARNING now: the Update is mailed and the ack is over.
    r.at(120 * SEC);
    r.started();
    r.end("a", Status::Warning);
    assert_eq!(r.notes.take(), vec![vec!["update a".to_string()]]);
    assert!(status_of(&r, "a").ack.is_none());
    // A sticky one holds the Update back and ends at recovery; the check
    // named as mails name it.
    let answer = ask(
        &mut r,
        Request::Ack {
            check: "a on web1".into(),
            comment: "on it".into(),
            for_secs: None,
            sticky: true,
            mail_from: None,
        },
    )
    .unwrap();
    assert!(answer.error.is_none(), "{answer:?}");
    r.at(180 * SEC);
    r.started();
    r.end("a", Status::Critical);
    assert!(r.notes.take().is_empty());
    r.at(240 * SEC);
    r.started();
    r.end("a", Status::Ok);
    assert_eq!(r.notes.take(), vec![vec!["recovery a".to_string()]]);
    assert!(status_of(&r, "a").ack.is_none());
    // Kept in state_dir/quiet.
    assert!(r.dir.path().join("quiet").exists());
}

#[test]
fn a_maintenance_window_holds_mail_inside_it_only() {
    let start = crate::clock::local_datetime(T0 + 60 * SEC as i64);
    let end = crate::clock::local_datetime(T0 + 180 * SEC as i64);
    let script =
        format!("{ONE}\nmaintenance(#{{ match: \"web1\", start: \"{start}\", end: \"{end}\" }});");
    let mut r = rig(&script);
    r.at(0);
    r.started();
    r.end("a", Status::Critical);
    assert_eq!(r.notes.take(), vec![vec!["problem a".to_string()]]);
    r.at(60 * SEC);
    r.started();
    r.end("a", Status::Ok);
    assert!(r.notes.take().is_empty(), "inside the window");
    r.at(120 * SEC);
    r.started();
    r.end("a", Status::Critical);
    assert!(r.notes.take().is_empty(), "inside the window");
    assert!(status_of(&r, "a")
        .silenced_by
        .unwrap()
        .starts_with("maintenance@"));
    // The window closes with the check still failing: its Problem now.
    r.at(180 * SEC);
    assert_eq!(r.notes.take(), vec![vec!["problem a".to_string()]]);
}

#[test]
fn run_starts_the_check_now_and_answers_when_it_ends() {
    let mut r = rig(ONE);
    r.at(0);
    r.started();
    r.end("a", Status::Ok);
    let (tx, rx) = crossbeam_channel::bounded(1);
    r.d.control(Call {
        request: Request::Run { check: "a".into() },
        user: "alice".into(),
        reply: tx,
    });
    assert_eq!(r.started(), ["a"], "not due, started all the same");
    assert!(r.d.take_answers().is_empty(), "answered when the run ends");
    r.end("a", Status::Warning);
    let mut answers = r.d.take_answers();
    assert_eq!(answers.len(), 1);
    let (call, answer) = answers.pop().unwrap();
    call.answer(answer);
    let answer = rx.try_recv().unwrap();
    assert_eq!(
        answer.message.as_deref(),
        Some("WARNING   a on web1: a said WARNING")
    );
    assert_eq!(answer.code, Some(1));
    // Its tick grid is unchanged.
    r.at(60 * SEC);
    assert_eq!(r.started(), ["a"]);
    let answer = ask(&mut r, Request::Run { check: "zz".into() }).unwrap();
    assert!(answer.error.unwrap().contains("no check named \"zz\""));
}

#[test]
fn a_report_lists_an_acknowledged_problem_apart() {
    let mut r = rig(ONE);
    r.at(0);
    r.started();
    r.end("a", Status::Critical);
    let report = |r: &Rig| crate::notify::mail::compose::report_text(&r.d.views(), T0, "mon1");
    assert!(
        report(&r).contains("Checks in PROBLEM (1):"),
        "{}",
        report(&r)
    );
    ask(
        &mut r,
        Request::Ack {
            check: "a".into(),
            comment: "on it".into(),
            for_secs: Some(60),
            sticky: false,
            mail_from: None,
        },
    );
    let text = report(&r);
    assert!(text.contains("Checks in PROBLEM (0):"), "{text}");
    assert!(
        text.contains("Acknowledged (1):\n  a on web1: CRITICAL - acknowledged by alice: on it\n"),
        "{text}"
    );
    // `--for 60`: over at the next tick.
    r.at(60 * SEC);
    assert!(report(&r).contains("Checks in PROBLEM (1):"));
}

#[test]
fn the_http_snapshot_counts_transitions_and_keeps_durations_only_while_listening() {
    let script = |listen: &str| {
        format!(
            "config.base_tick = 60;\nconfig.listen = \"{listen}\";\n\
             add(shell(\"true\"), #{{ name: \"a\", retry: 0 }});"
        )
    };
    let mut r = rig(&script("127.0.0.1:0"));
    let ms = |n| Outcome::new(Status::Critical, "down").with_duration(Duration::from_millis(n));
    r.at(0);
    r.started();
    r.end_with("a", ms(250));
    r.at(60 * SEC);
    r.started();
    r.end_with(
        "a",
        Outcome::new(Status::Ok, "up").with_duration(Duration::from_millis(500)),
    );
    let snap = r.d.snapshot();
    assert_eq!(snap.report(), r.d.status_report());
    let a = snap.checks.iter().position(|c| c.name() == "a").unwrap();
    // A byte a run: within 4 %.
    assert_eq!(snap.recent_of(a), vec![0.256, 0.512]);
    assert_eq!(
        snap.transitions,
        vec![("problem", 1), ("update", 0), ("recovery", 1)]
    );
    assert_eq!(snap.pending, Vec::<(String, usize)>::new());
    assert_eq!(snap.refresh, Duration::from_secs(60));

    // Off after a reload: the durations are dropped with it.
    let cfg = config(r.dir.path(), &script(""));
    r.d.reload(
        cfg,
        Parts {
            notifier: None,
            outputs: None,
        },
    );
    let snap = r.d.snapshot();
    assert!(snap.recent.is_empty(), "{:?}", snap.recent);
}
#[test]
fn a_burst_of_sigusr1_gives_one_immediate_tick_not_one_per_signal() {
    let mut r = rig(TWO);
    r.at(0);
    r.started();
    r.end("a", Status::Ok);
    r.end("b", Status::Ok);
    r.at(10 * SEC);
    // 100 signals in one batch: one asks, 99 are merged into it.
    let asked = (0..100).filter(|_| r.d.ask_immediate_tick()).count();
    assert_eq!(asked, 1);
    r.d.tick(false);
    assert_eq!(r.started(), ["a"], "the next tick's checks, at once");
    // While its run goes on, more signals merge into it.
    assert!((0..100).all(|_| !r.d.ask_immediate_tick()));
    r.d.tick(false);
    assert!(r.started().is_empty());
    r.end("a", Status::Ok);
    // Done: the next signal asks again, but one second after the last.
    assert!(r.d.ask_immediate_tick());
    assert!((0..100).all(|_| !r.d.ask_immediate_tick()));
    assert_eq!(r.d.next_tick_at(), 11 * SEC);
    r.at(11 * SEC - 1);
    assert!(r.started().is_empty());
    r.at(11 * SEC);
    assert_eq!(r.started(), ["a", "b"]);
    r.end("a", Status::Ok);
    r.end("b", Status::Ok);
    // Nothing pending: the grid again (two ticks were run early).
    assert_eq!(r.d.next_tick_at(), 180 * SEC);
    r.at(179 * SEC);
    assert!(r.started().is_empty());
    // A check still running from the grid is skipped by an immediate
    // tick without counting as overload.
    r.at(180 * SEC);
    assert_eq!(r.started(), ["a"]);
    assert!(r.d.ask_immediate_tick());
    r.d.tick(false);
    assert_eq!(r.started(), ["b"]);
    assert!(r.d.dump().contains("overload: none"), "{}", r.d.dump());
}

mod contacts;
mod heartbeat;
mod history;
mod policy;
mod snapshot;
mod standby;

#[test]
fn a_name_two_targets_share_is_acked_as_name_on_target() {
    let mut r = rig(r#"
config.base_tick = 60;
add(shell("false"), #{ name: "web port", target_name: "a", retry: 0 });
add(shell("false"), #{ name: "web port", target_name: "b", retry: 0 });
"#);
    r.at(0);
    r.started();
    for id in ["web port on a", "web port on b"] {
        r.d.on_result(id, Outcome::new(Status::Critical, "down"));
    }
    r.at(60 * SEC);
    r.started();
    let ack = |check: &str| Request::Ack {
        check: check.into(),
        comment: "on it".into(),
        for_secs: None,
        sticky: false,
        mail_from: None,
    };
    let answer = ask(&mut r, ack("web port")).unwrap();
    assert_eq!(
        answer.error.as_deref(),
        Some("2 checks are named \"web port\"; give one of them: \"web port on a\", \"web port on b\"")
    );
    assert!(ask(&mut r, ack("web port on b")).unwrap().error.is_none());
    assert!(ask(&mut r, ack("web port:a")).unwrap().error.is_none());
    assert_eq!(
        *r.notes.acks.lock().unwrap(),
        vec![
            "web port alice: on it".to_string(),
            "web port alice: on it".to_string()
        ]
    );
}

/// Heap bytes in use (glibc's count, every arena). nextest runs each test
/// in a process of its own, so nothing else allocates meanwhile.
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    // Blocks glibc mapped on their own count too: whether the check list
    // is one of them depends on what was freed before (glibc raises its
    // mmap threshold then).
    m.uordblks + m.hblkhd
}

/// What the loop keeps per check, pinned: the sizes of its structs, and
/// every heap byte of 10,000 `tcp` checks against 100 ports once each has
/// run (the spec, its probe, the strings, the loop's state and index, the
/// outage log's summary, the last output), the config itself gone.
#[test]
fn a_check_at_rest_costs_what_it_did_and_no_more() {
    use std::mem::size_of;
    assert_eq!(size_of::<super::Tracked>(), 120);
    assert_eq!(size_of::<CheckSpec>(), 112);
    let per_check =
        at_rest_per_check(|_| "TCP OK - 0.000 second response time on 127.0.0.1 port 9000".into());
    // 339 bytes when pinned (364 while the spec was 144 bytes, the
    // status page's ring a box of each check's and the last output one
    // shared string without an inline part; 620 while the outage log
    // kept a summary and a map slot for every check, the index was a map
    // and the spec 168 bytes; 905 and 1,264 before that): the spec and
    // its Arc 144, the loop's state 120, the identity, which is the name,
    // 32, the outage log's summary (when first seen: no outage) and its
    // identity 32, the index 4. The last output is one string for all:
    // the 10,000 runs said the same. Some slack for the allocator's
    // rounding.
    eprintln!("{per_check} bytes per check at rest");
    assert!(per_check <= 360, "{per_check} bytes per check at rest");
}

/// The same, each check saying something of its own, as real `tcp`
/// checks do (their times differ, in the performance part): every field
/// counted, the texts before ` | ` shared, the times kept inline.
#[test]
fn a_tcp_check_saying_its_own_time_costs_no_string_of_its_own() {
    let per_check = at_rest_per_check(|i| {
        format!(
            "TCP OK - 0 s response time on 127.0.0.1 port {} | time=0.{:06}s",
            9000 + i % 100,
            i
        )
    });
    eprintln!("{per_check} bytes per check at rest, times of their own");
    assert!(per_check <= 360, "{per_check} bytes per check at rest");
}

/// Each check's whole text its own (no short performance part to keep
/// apart): a check at rest stays within 480 bytes.
#[test]
fn a_check_with_an_output_of_its_own_stays_within_480_bytes() {
    let per_check = at_rest_per_check(|i| {
        format!(
            "TCP OK - 0.{:06} second response time on 127.0.0.1 port {}",
            i,
            9000 + i % 100
        )
    });
    eprintln!("{per_check} bytes per check at rest, outputs of their own");
    assert!(per_check <= 480, "{per_check} bytes per check at rest");
}

/// Heap bytes per check once 10,000 `tcp` checks each ran once and said
/// `output(i)`, the config itself gone.
fn at_rest_per_check(output: impl Fn(usize) -> String) -> usize {
    const N: usize = 10_000;
    let mut script = String::from("let lo = host(\"lo\", #{ ipv4: \"127.0.0.1\" });\n");
    for i in 0..N {
        script.push_str(&format!(
            "add(tcp(lo, {}), #{{ name: \"t{i}\" }});\n",
            9000 + i % 100
        ));
    }
    let before = heap_in_use();
    let mut r = rig(&script);
    r.at(0);
    let runs = r.exec.take();
    assert_eq!(runs.len(), N, "every check ran");
    for (i, run) in runs.into_iter().enumerate() {
        let outcome = Outcome::new(Status::Ok, output(i)).with_duration(Duration::from_millis(1));
        r.d.on_result(&run.spec.id, outcome);
    }
    (heap_in_use() - before) / N
}
