//! Dependencies, flapping, reminders and escalation, driven by hand: the
//! clock says when, each test says what every run returned.

use super::*;

const DEPS: &str = r#"
config.base_tick = 60;
add(shell("true"), #{ name: "router", retry: 0, target_name: "gw" });
add(shell("true"), #{ name: "web1", retry: 0, target_name: "h1", depends_on: ["router"] });
add(shell("true"), #{ name: "web2", retry: 0, target_name: "h2", depends_on: ["router"] });
"#;

impl Rig {
    /// Every check of the tick ends with `statuses`, in the order given.
    fn run_tick(&mut self, at: u64, statuses: &[(&str, Status)]) {
        self.at(at);
        self.started();
        for (name, s) in statuses {
            self.end(name, *s);
        }
    }

    /// The notices handed over since the last call, all batches together.
    fn notices(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.notes.batches.lock().unwrap())
            .into_iter()
            .flatten()
            .collect()
    }

    fn view(&self, name: &str) -> CheckView {
        self.d.views().into_iter().find(|v| v.name == name).unwrap()
    }
}

use Status::{Critical, Ok as Up};

#[test]
fn a_parent_and_its_dependents_failing_in_one_tick_give_one_mail_whatever_the_order() {
    for order in [
        ["web2", "web1", "router"],
        ["router", "web2", "web1"],
        ["web1", "router", "web2"],
    ] {
        let mut r = rig(DEPS);
        r.run_tick(0, &[("router", Up), ("web1", Up), ("web2", Up)]);
        let down: Vec<(&str, Status)> = order.iter().map(|n| (*n, Critical)).collect();
        r.run_tick(60 * SEC, &down);
        let batches = r.notes.take();
        assert_eq!(batches, [["problem router"]], "order {order:?}");
        assert!(r.notes.batches.lock().unwrap().is_empty());
        // The parent's mail named them (checked on a fresh run below).
        let v = r.view("web1");
        assert_eq!(v.phase, Phase::Problem);
        assert_eq!(v.unreachable_by.as_deref(), Some("router on gw"));
        let st = status_of(&r, "web2");
        assert_eq!(st.phase, "unreachable");
        assert_eq!(st.unreachable_by.as_deref(), Some("router on gw"));
        assert_eq!(status_of(&r, "router").phase, "problem");
        let dump = r.d.dump();
        assert!(dump.contains("(UNREACHABLE: router on gw fails)"), "{dump}");
    }
}

#[test]
fn the_parent_s_problem_lists_the_unreachable_and_its_recovery_is_all_that_follows() {
    let mut r = rig(DEPS);
    r.run_tick(0, &[("router", Up), ("web1", Up), ("web2", Up)]);
    r.run_tick(
        60 * SEC,
        &[("web1", Critical), ("web2", Critical), ("router", Critical)],
    );
    let n = r.notices();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].name, "router");
    assert_eq!(n[0].unreachable, ["web1 on h1", "web2 on h2"]);
    // Still down: nothing.
    r.run_tick(
        120 * SEC,
        &[("web1", Critical), ("router", Critical), ("web2", Critical)],
    );
    assert!(r.notices().is_empty());
    // The router comes back; its dependents' results come first and
    // still fail (the router was still down for them).
    r.run_tick(
        180 * SEC,
        &[("web1", Critical), ("web2", Critical), ("router", Up)],
    );
    let n = r.notices();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].transition.kind, TransitionKind::Recovery);
    assert_eq!(n[0].name, "router");
    // Their next run: web1 is fine (nothing), web2 still fails: its own
    // Problem now, its outage counted from its first failure.
    r.run_tick(
        240 * SEC,
        &[("router", Up), ("web1", Up), ("web2", Critical)],
    );
    let n = r.notices();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].name, "web2");
    assert_eq!(n[0].transition.kind, TransitionKind::Problem);
    assert_eq!(n[0].transition.outage_start, T0 + 60 * SEC as i64);
    assert_eq!(n[0].transition.failed_runs, 4);
    assert_eq!(r.view("web2").unreachable_by, None);
    // And it recovers like any check.
    r.run_tick(300 * SEC, &[("router", Up), ("web1", Up), ("web2", Up)]);
    assert_eq!(r.notes.take(), [["recovery web2"]]);
}

#[test]
fn a_dependent_failing_later_is_an_update_in_the_parent_s_thread() {
    let mut r = rig(DEPS);
    r.run_tick(0, &[("router", Up), ("web1", Up), ("web2", Up)]);
    r.run_tick(
        60 * SEC,
        &[("router", Critical), ("web1", Critical), ("web2", Up)],
    );
    let n = r.notices();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].unreachable, ["web1 on h1"]);
    r.run_tick(
        120 * SEC,
        &[("router", Critical), ("web1", Critical), ("web2", Critical)],
    );
    let n = r.notices();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].name, "router");
    assert_eq!(n[0].transition.kind, TransitionKind::Update);
    assert_eq!(n[0].transition.outage_start, T0 + 60 * SEC as i64);
    assert_eq!(n[0].unreachable, ["web2 on h2"]);
}

#[test]
fn dependents_held_while_the_parent_retries_are_listed_in_its_problem() {
    let script = r#"
config.base_tick = 60;
add(shell("true"), #{ name: "router", retry: 1, target_name: "gw" });
add(shell("true"), #{ name: "web1", retry: 0, target_name: "h1", depends_on: ["router"] });
add(shell("true"), #{ name: "web2", retry: 2, target_name: "h2", depends_on: ["router"] });
"#;
    let mut r = rig(script);
    r.run_tick(0, &[("router", Up), ("web1", Up), ("web2", Up)]);
    r.run_tick(
        60 * SEC,
        &[("web1", Critical), ("web2", Critical), ("router", Critical)],
    );
    assert!(r.notices().is_empty(), "the router only retries");
    assert_eq!(status_of(&r, "web1").phase, "unreachable");
    r.run_tick(
        120 * SEC,
        &[("web1", Critical), ("web2", Critical), ("router", Critical)],
    );
    let n = r.notices();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].name, "router");
    // web2 is still retrying: listed all the same, and its Problem at the
    // next run is held without another mail.
    assert_eq!(n[0].unreachable, ["web1 on h1", "web2 on h2"]);
    r.run_tick(
        180 * SEC,
        &[("web1", Critical), ("web2", Critical), ("router", Critical)],
    );
    assert!(r.notices().is_empty());
}

#[test]
fn a_dependent_waits_for_its_parent_s_run_that_outlasts_the_tick() {
    let mut r = rig(DEPS);
    r.run_tick(0, &[("router", Up), ("web1", Up), ("web2", Up)]);
    r.run_tick(60 * SEC, &[("web1", Critical), ("web2", Critical)]);
    // The router's run is still going at the next tick.
    r.at(120 * SEC);
    assert!(r.notices().is_empty(), "held until the router's result");
    r.started();
    r.end("web1", Critical);
    r.end("web2", Critical);
    r.end("router", Critical);
    let n = r.notices();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].name, "router");
    assert_eq!(n[0].unreachable.len(), 2);
}

#[test]
fn a_dependent_whose_parent_is_fine_alerts_as_ever() {
    let mut r = rig(DEPS);
    r.run_tick(0, &[("router", Up), ("web1", Critical), ("web2", Up)]);
    assert_eq!(r.notes.take(), [["problem web1"]]);
    // The router failing later does not make web1's open outage silent
    // or listed: it was mailed already.
    r.run_tick(
        60 * SEC,
        &[("router", Critical), ("web1", Critical), ("web2", Up)],
    );
    let n = r.notices();
    assert_eq!(n.len(), 1);
    assert!(n[0].unreachable.is_empty(), "{n:?}");
}

#[test]
fn held_dependents_survive_a_restart() {
    let mut r = rig(DEPS);
    r.run_tick(0, &[("router", Critical), ("web1", Critical), ("web2", Up)]);
    assert_eq!(r.notes.take(), [["problem router"]]);
    let saved = crate::state::load(r.dir.path()).unwrap();
    assert_eq!(
        saved.checks["web1"].held_by.as_deref(),
        Some("router"),
        "{saved:?}"
    );
    let mut again = rig(DEPS);
    again.d.restore(saved);
    assert_eq!(status_of(&again, "web1").phase, "unreachable");
    // web1's result comes first: the router still failed for it.
    again.run_tick(0, &[("web1", Critical), ("router", Up), ("web2", Up)]);
    assert_eq!(again.notes.take(), [["recovery router"]]);
    again.run_tick(
        60 * SEC,
        &[("router", Up), ("web1", Critical), ("web2", Up)],
    );
    assert_eq!(again.notes.take(), [["problem web1"]]);
}

#[test]
fn a_reload_that_drops_the_parent_releases_the_held_problem() {
    let mut r = rig(DEPS);
    r.run_tick(0, &[("router", Critical), ("web1", Critical), ("web2", Up)]);
    r.notes.take();
    let cfg = config(
        r.dir.path(),
        r#"
config.base_tick = 60;
add(shell("true"), #{ name: "web1", retry: 0, target_name: "h1" });
"#,
    );
    r.d.reload(
        cfg,
        Parts {
            notifier: None,
            outputs: None,
        },
    );
    r.at(60 * SEC);
    assert_eq!(r.notes.take(), [["problem web1"]]);
}

// ------------------------------------------------------------- flapping

const FLAPPY: &str = r#"
config.base_tick = 60;
add(shell("true"), #{ name: "link", retry: 0 });
"#;

#[test]
fn a_check_toggling_for_40_runs_mails_flapping_once_and_stopped_once() {
    let mut r = rig(FLAPPY);
    let mut k = 0;
    for i in 0..40 {
        let s = if i % 2 == 0 { Critical } else { Up };
        r.run_tick(k * 60 * SEC, &[("link", s)]);
        k += 1;
    }
    let before: Vec<String> = r.notes.take().into_iter().flatten().collect();
    // Six changes make 34.4 % (the pure tests show the sums): three
    // outages are mailed before, none after.
    assert_eq!(
        before,
        [
            "problem link",
            "recovery link",
            "problem link",
            "recovery link",
            "problem link",
            "recovery link",
            "flapping_start link",
        ]
    );
    let v = r.view("link");
    assert!(v.flapping);
    assert!(v.flap_percent.unwrap() > 30.0);
    assert!(status_of(&r, "link").flapping);
    // It settles OK: 16 steady runs bring it to 20 % or below.
    let mut stopped = None;
    for run in 1..=30 {
        r.run_tick(k * 60 * SEC, &[("link", Up)]);
        k += 1;
        let n = r.notices();
        if !n.is_empty() {
            assert_eq!(n.len(), 1);
            assert_eq!(n[0].transition.kind, TransitionKind::FlappingStop);
            assert_eq!(n[0].transition.status, Up);
            assert!(n[0].percent.unwrap() <= 20.0);
            assert!(stopped.is_none(), "stopped twice");
            stopped = Some(run);
        }
    }
    assert_eq!(stopped, Some(16));
    assert!(!r.view("link").flapping);
}

#[test]
fn stopping_to_flap_while_failing_is_the_problem() {
    let mut r = rig(FLAPPY);
    let mut k = 0;
    for i in 0..10 {
        let s = if i % 2 == 0 { Critical } else { Up };
        r.run_tick(k * 60 * SEC, &[("link", s)]);
        k += 1;
    }
    r.notes.take();
    assert!(r.view("link").flapping);
    let mut got = vec![];
    for _ in 0..30 {
        r.run_tick(k * 60 * SEC, &[("link", Critical)]);
        k += 1;
        got.extend(r.notices());
    }
    assert_eq!(got.len(), 1, "{got:?}");
    let n = &got[0];
    assert_eq!(n.transition.kind, TransitionKind::FlappingStop);
    assert_eq!(n.transition.status, Critical);
    assert!(n.transition.opens_outage());
    // Its outage started at the first failed run after the last OK.
    assert_eq!(n.transition.outage_start, T0 + 10 * 60 * SEC as i64);
    r.run_tick(k * 60 * SEC, &[("link", Up)]);
    assert_eq!(r.notes.take(), [["recovery link"]]);
}

#[test]
fn flap_false_keeps_every_mail() {
    let mut r = rig(r#"
config.base_tick = 60;
add(shell("true"), #{ name: "link", retry: 0, flap: false });
"#);
    for i in 0..20u64 {
        let s = if i % 2 == 0 { Critical } else { Up };
        r.run_tick(i * 60 * SEC, &[("link", s)]);
    }
    assert_eq!(r.notices().len(), 20);
    assert_eq!(r.view("link").flap_percent, None);
}

// --------------------------------------------- reminders and escalation

const NAGGED: &str = r#"
config.base_tick = 1;
config.emails.escalate = [#{ after: "5s", to: ["lead@example.org"] }];
add(shell("true"), #{ name: "db", retry: 0, renotify_every: "3s" });
add(shell("true"), #{ name: "quiet", retry: 0 });
"#;

#[test]
fn reminders_every_interval_and_escalation_after_its_time() {
    let mut r = rig(NAGGED);
    r.run_tick(0, &[("db", Critical), ("quiet", Critical)]);
    assert_eq!(r.notes.take(), [["problem db", "problem quiet"]]);
    let mut seen = vec![];
    for s in 1..=10u64 {
        r.run_tick(s * SEC, &[("db", Critical), ("quiet", Critical)]);
        for n in r.notices() {
            seen.push((
                s,
                n.transition.kind,
                n.name.clone(),
                n.count,
                n.escalated_to,
            ));
        }
    }
    let lead = vec!["lead@example.org".to_string()];
    // `quiet` has no renotify_every, but the escalation is for all.
    assert_eq!(
        seen,
        [
            (3, TransitionKind::Reminder, "db".into(), 1, vec![]),
            (5, TransitionKind::Escalation, "db".into(), 1, lead.clone()),
            (
                5,
                TransitionKind::Escalation,
                "quiet".into(),
                1,
                lead.clone()
            ),
            (6, TransitionKind::Reminder, "db".into(), 2, lead.clone()),
            (9, TransitionKind::Reminder, "db".into(), 3, lead.clone()),
        ]
    );
    // The Recovery goes to the escalated address too, and ends it all.
    r.run_tick(11 * SEC, &[("db", Up), ("quiet", Critical)]);
    let n = r.notices();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].transition.kind, TransitionKind::Recovery);
    assert_eq!(n[0].escalated_to, lead);
    r.run_tick(12 * SEC, &[("db", Critical), ("quiet", Critical)]);
    let n = r.notices();
    assert_eq!(n.len(), 1);
    assert!(n[0].escalated_to.is_empty(), "a new outage starts over");
}

#[test]
fn an_acknowledged_problem_gets_no_reminder_and_no_escalation() {
    let mut r = rig(NAGGED);
    r.run_tick(0, &[("db", Critical), ("quiet", Up)]);
    r.notes.take();
    let answer = ask(
        &mut r,
        Request::Ack {
            check: "db".into(),
            comment: "on it".into(),
            for_secs: Some(7),
            sticky: false,
            mail_from: None,
        },
    )
    .unwrap();
    assert!(answer.error.is_none(), "{answer:?}");
    let mut kinds = vec![];
    for s in 1..=9u64 {
        r.run_tick(s * SEC, &[("db", Critical), ("quiet", Up)]);
        kinds.extend(r.notices().into_iter().map(|n| (s, n.transition.kind)));
    }
    // The ack ends at 7 s: the escalation (due since 5 s) and one
    // reminder follow at once, the next reminder a full 3 s later (not
    // at 9 s, on the grid of the Problem mail).
    assert_eq!(
        kinds,
        [
            (7, TransitionKind::Escalation),
            (7, TransitionKind::Reminder),
        ]
    );
    r.run_tick(10 * SEC, &[("db", Critical), ("quiet", Up)]);
    let n = r.notices();
    assert_eq!(
        (n.len(), n[0].transition.kind),
        (1, TransitionKind::Reminder)
    );
}

#[test]
fn reminder_state_survives_a_restart() {
    let mut r = rig(NAGGED);
    r.run_tick(0, &[("db", Critical), ("quiet", Up)]);
    r.run_tick(3 * SEC, &[("db", Critical), ("quiet", Up)]);
    r.notes.take();
    let saved = crate::state::load(r.dir.path()).unwrap();
    let nag = saved.checks["db"].nag.clone().unwrap();
    assert_eq!(nag.reminders, 1);
    let mut again = rig(NAGGED);
    again.d.restore(saved);
    again.run_tick(5 * SEC, &[("db", Critical), ("quiet", Up)]);
    let n = again.notices();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].transition.kind, TransitionKind::Escalation);
    again.run_tick(6 * SEC, &[("db", Critical), ("quiet", Up)]);
    let n = again.notices();
    assert_eq!(
        (n[0].transition.kind, n[0].count),
        (TransitionKind::Reminder, 2)
    );
}

#[test]
fn a_flapping_check_still_flaps_after_a_restart() {
    let mut r = rig(FLAPPY);
    for i in 0..8u64 {
        let s = if i % 2 == 0 { Critical } else { Up };
        r.run_tick(i * 60 * SEC, &[("link", s)]);
    }
    assert!(r.view("link").flapping);
    let saved = crate::state::load(r.dir.path()).unwrap();
    assert!(saved.checks["link"].flap.is_flapping());
    let mut again = rig(FLAPPY);
    again.d.restore(saved);
    again.run_tick(0, &[("link", Critical)]);
    again.run_tick(60 * SEC, &[("link", Up)]);
    let kinds: Vec<String> = again.notes.take().into_iter().flatten().collect();
    assert!(kinds.is_empty(), "still flapping: {kinds:?}");
    assert!(again.view("link").flapping);
}

/// Per check, the features cost one word of flap history (packed with
/// the run time) and one pointer when unused.
#[test]
fn a_check_that_uses_none_of_it_stays_small() {
    use std::mem::size_of;
    // The history shares a word with the run time it replaced the
    // 16-byte Option<Duration> of.
    assert_eq!(
        size_of::<crate::alert::flap::FlapHistory>() + size_of::<Option<std::num::NonZeroU32>>(),
        8
    );
    assert_eq!(size_of::<Option<Box<super::super::Extra>>>(), 8);
    assert_eq!(size_of::<AlertState>(), 24);
    assert_eq!(size_of::<Option<Box<crate::model::AlertPolicy>>>(), 8);
}

#[test]
fn reminders_configured_by_a_reload_count_from_the_reload() {
    let plain = r#"
config.base_tick = 1;
add(shell("true"), #{ name: "db", retry: 0 });
"#;
    let mut r = rig(plain);
    r.run_tick(0, &[("db", Critical)]);
    assert_eq!(r.notes.take(), [["problem db"]]);
    r.run_tick(10 * SEC, &[("db", Critical)]);
    let cfg = config(
        r.dir.path(),
        r#"
config.base_tick = 1;
add(shell("true"), #{ name: "db", retry: 0, renotify_every: "3s" });
"#,
    );
    r.d.reload(
        cfg,
        Parts {
            notifier: None,
            outputs: None,
        },
    );
    let mut seen = vec![];
    for s in 11..=17u64 {
        r.run_tick(s * SEC, &[("db", Critical)]);
        seen.extend(
            r.notices()
                .into_iter()
                .map(|n| (s, n.transition.kind, n.count)),
        );
    }
    assert_eq!(
        seen,
        [
            (14, TransitionKind::Reminder, 1),
            (17, TransitionKind::Reminder, 2)
        ]
    );
}

// ------------------------------------------------ a wall clock that steps

#[test]
fn reminders_keep_their_period_when_the_wall_clock_steps() {
    let mut r = rig(NAGGED);
    r.run_tick(0, &[("db", Critical), ("quiet", Up)]);
    assert_eq!(r.notes.take(), [["problem db"]]);
    let hour = 3600 * SEC as i64;
    let mut seen = vec![];
    for s in 1..=12u64 {
        match s {
            // Set back an hour (NTP, a VM restore), then two forward.
            4 => r.clock.step_wall(-hour),
            8 => r.clock.step_wall(2 * hour),
            _ => {}
        }
        r.run_tick(s * SEC, &[("db", Critical), ("quiet", Up)]);
        seen.extend(
            r.notices()
                .into_iter()
                .map(|n| (s, n.transition.kind, n.count)),
        );
    }
    // Neither paused by the step back nor bunched by the step forward.
    assert_eq!(
        seen,
        [
            (3, TransitionKind::Reminder, 1),
            (5, TransitionKind::Escalation, 1),
            (6, TransitionKind::Reminder, 2),
            (9, TransitionKind::Reminder, 3),
            (12, TransitionKind::Reminder, 4),
        ]
    );
    // The state file holds wall time as the clock reads now (an hour
    // ahead of the timeline), for a restart to go on from.
    let nag = crate::state::load(r.dir.path()).unwrap().checks["db"]
        .nag
        .clone()
        .unwrap();
    assert_eq!(nag.anchor, T0 + (12 * SEC) as i64 + hour);
    assert_eq!(nag.since, Some(T0 + hour));
    assert_eq!(nag.reminders, 4);
}

#[test]
fn a_silence_for_two_hours_lasts_two_hours_of_monotonic_time() {
    let hour = 3600 * SEC as i64;
    for step in [-hour, 3 * hour] {
        let mut r = rig(ONE);
        r.run_tick(0, &[("a", Up)]);
        let answer = silence(&mut r, "a", 7200);
        assert!(answer.error.is_none(), "{answer:?}");
        r.clock.step_wall(step);
        let mut mailed = vec![];
        for s in (60..=7260).step_by(60) {
            r.run_tick(s * SEC, &[("a", Critical)]);
            mailed.extend(r.notices().into_iter().map(|n| (s, n.transition.kind)));
            let silenced = r.view("a").silenced_by.is_some();
            assert_eq!(silenced, s < 7200, "at {s} s, wall stepped {step}");
        }
        // Held for the two hours, handed over at the tick that ends them.
        assert_eq!(mailed, [(7200, TransitionKind::Problem)], "step {step}");
        // Its end was saved: the file has no silence left.
        let saved = crate::alert::quiet::load(r.dir.path()).unwrap();
        assert!(saved.silences.is_empty());
    }
}

#[test]
fn an_ack_lasts_its_time_of_monotonic_time() {
    let mut r = rig(NAGGED);
    r.run_tick(0, &[("db", Critical), ("quiet", Up)]);
    r.notes.take();
    let answer = ask(
        &mut r,
        Request::Ack {
            check: "db".into(),
            comment: "on it".into(),
            for_secs: Some(7),
            sticky: false,
            mail_from: None,
        },
    )
    .unwrap();
    assert!(answer.error.is_none(), "{answer:?}");
    let until = status_of(&r, "db").ack.unwrap().until.unwrap();
    r.clock.step_wall(-3600 * SEC as i64);
    // The status shows the end in the stepped wall time.
    let shown = status_of(&r, "db").ack.unwrap().until.unwrap();
    assert_eq!(until - shown, 3600);
    let saved = crate::alert::quiet::load(r.dir.path()).unwrap();
    assert_eq!(saved.acks["db"].until, Some(T0 + 7 * SEC as i64));
    let mut kinds = vec![];
    for s in 1..=8u64 {
        r.run_tick(s * SEC, &[("db", Critical), ("quiet", Up)]);
        kinds.extend(r.notices().into_iter().map(|n| (s, n.transition.kind)));
    }
    assert_eq!(
        kinds,
        [
            (7, TransitionKind::Escalation),
            (7, TransitionKind::Reminder)
        ]
    );
    // The step was noticed and the (now empty) acks saved again.
    assert!(crate::alert::quiet::load(r.dir.path())
        .unwrap()
        .acks
        .is_empty());
}
