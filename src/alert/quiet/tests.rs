//! The quiet rules with time handed in: no threads, no sleeps.

use super::*;
use TransitionKind::*;

const S: i64 = 1_000_000;
const T0: UnixMicros = 1_700_000_000 * S;

fn web1() -> Subject<'static> {
    Subject {
        id: "check_http web1",
        name: "http",
        dest: "web1.example.org",
    }
}

fn db1() -> Subject<'static> {
    Subject {
        id: "check_pgsql db1",
        name: "pgsql",
        dest: "db1",
    }
}

fn ack(sticky: bool, until: Option<UnixMicros>) -> Ack {
    Ack {
        by: "alice".into(),
        comment: "on it".into(),
        until,
        sticky,
        at: T0,
    }
}

#[test]
fn globs_match_name_identity_or_target() {
    assert!(glob_match("web1*", "web1.example.org"));
    assert!(glob_match("*http*", "check_http web1"));
    assert!(glob_match("w?b1", "web1"));
    assert!(glob_match("*", ""));
    assert!(glob_match("a*b*c", "axxbyyc"));
    assert!(!glob_match("a*b*c", "axxbyy"));
    assert!(!glob_match("web1", "web10"));
    assert!(web1().matches("web1*"));
    assert!(web1().matches("http"));
    assert!(!db1().matches("web*"));
    // As mails name a check (`picomon silence 'NAME on TARGET'`).
    assert!(web1().matches("http on web1.example.org"));
    assert!(web1().matches("http on web1*"));
    assert!(!db1().matches("http on db1"));
}

#[test]
fn a_silenced_problem_is_held_and_mailed_when_the_silence_ends() {
    let mut q = Quiet::default();
    let id = q.silence("web1*", "bob", "deploy", T0, T0 + 3600 * S);
    assert!(
        matches!(q.gate(web1(), Problem, Now::at(T0 + 60 * S), &[]), Gate::Hold(r) if r.contains(&id))
    );
    // Other checks are not silenced.
    assert_eq!(
        q.gate(db1(), Problem, Now::at(T0 + 60 * S), &[]),
        Gate::Mail
    );
    // Still silenced: nothing released.
    assert!(q
        .release([web1(), db1()], Now::at(T0 + 120 * S), &[])
        .is_empty());
    // Unsilenced: the Problem is due now, once.
    assert!(q.unsilence(&id).is_some());
    assert_eq!(
        q.release([web1(), db1()], Now::at(T0 + 180 * S), &[]),
        vec![web1().id]
    );
    assert!(q.release([web1()], Now::at(T0 + 240 * S), &[]).is_empty());
    // Its Recovery is mailed: the Problem went out.
    assert_eq!(
        q.gate(web1(), Recovery, Now::at(T0 + 300 * S), &[]),
        Gate::Mail
    );
}

#[test]
fn a_check_that_recovered_while_silenced_mails_nothing() {
    let mut q = Quiet::default();
    q.silence("http", "bob", "", T0, T0 + 600 * S);
    assert_ne!(
        q.gate(web1(), Problem, Now::at(T0 + 10 * S), &[]),
        Gate::Mail
    );
    assert_ne!(
        q.gate(web1(), Update, Now::at(T0 + 20 * S), &[]),
        Gate::Mail
    );
    assert_ne!(
        q.gate(web1(), Recovery, Now::at(T0 + 30 * S), &[]),
        Gate::Mail
    );
    // Expiry ends the silence; nothing is left to mail.
    assert!(q.expire(T0 + 600 * S));
    assert!(q.silences.is_empty());
    assert!(q.release([web1()], Now::at(T0 + 600 * S), &[]).is_empty());
}

#[test]
fn a_recovery_after_the_silence_but_before_release_mails_nothing() {
    let mut q = Quiet::default();
    q.silence("http", "bob", "", T0, T0 + 60 * S);
    q.gate(web1(), Problem, Now::at(T0), &[]);
    q.expire(T0 + 60 * S);
    assert_ne!(
        q.gate(web1(), Recovery, Now::at(T0 + 61 * S), &[]),
        Gate::Mail
    );
    assert!(q.held.is_empty());
}

#[test]
fn a_non_sticky_ack_ends_at_the_next_status_change_a_sticky_one_holds_updates() {
    let mut q = Quiet::default();
    q.ack(web1().id, ack(false, None));
    assert_eq!(q.gate(web1(), Update, Now::at(T0), &[]), Gate::Mail);
    assert!(q.acks.is_empty());

    q.ack(web1().id, ack(true, None));
    assert_eq!(
        q.gate(web1(), Update, Now::at(T0), &[]),
        Gate::Hold("acknowledged".into())
    );
    assert!(q.acks.contains_key(web1().id));
    // Recovery is always mailed and ends any ack.
    assert_eq!(q.gate(web1(), Recovery, Now::at(T0), &[]), Gate::Mail);
    assert!(q.acks.is_empty());
}

#[test]
fn acks_and_silences_expire_at_their_end() {
    let mut q = Quiet::default();
    q.ack(web1().id, ack(true, Some(T0 + 60 * S)));
    q.silence("db*", "bob", "", T0, T0 + 120 * S);
    assert!(!q.expire(T0 + 59 * S));
    assert!(q.expire(T0 + 60 * S));
    assert!(q.acks.is_empty());
    assert_eq!(q.silences.len(), 1);
    assert!(q.silenced_by(db1(), Now::at(T0 + 119 * S), &[]).is_some());
    assert!(q.silenced_by(db1(), Now::at(T0 + 120 * S), &[]).is_none());
    assert!(q.expire(T0 + 120 * S));
}

#[test]
fn silence_ids_are_not_reused() {
    let mut q = Quiet::default();
    let a = q.silence("a", "x", "", T0, T0 + S);
    q.unsilence(&a);
    let b = q.silence("b", "x", "", T0, T0 + S);
    assert_ne!(a, b);
    assert!(q.unsilence("nope").is_none());
}

#[test]
fn a_maintenance_window_silences_only_inside_it() {
    let start = T0 / S;
    let m = Maintenance {
        pattern: "db*".into(),
        window: When {
            start: Some(start + 3600),
            ..When::default()
        },
        end: Some(start + 7200),
        line: 7,
    };
    let maint = [m];
    let mut q = Quiet::default();
    assert_eq!(q.gate(db1(), Problem, Now::at(T0), &maint), Gate::Mail);
    assert_eq!(q.gate(db1(), Recovery, Now::at(T0 + S), &maint), Gate::Mail);
    let inside = T0 + 3600 * S;
    assert_eq!(
        q.silenced_by(db1(), Now::at(inside), &maint),
        Some("maintenance@7".into())
    );
    assert!(q.silenced_by(web1(), Now::at(inside), &maint).is_none());
    assert_ne!(q.gate(db1(), Problem, Now::at(inside), &maint), Gate::Mail);
    // Still failing when the window closes: its Problem is due then.
    assert!(q
        .release([db1()], Now::at(T0 + 7199 * S), &maint)
        .is_empty());
    assert_eq!(
        q.release([db1()], Now::at(T0 + 7200 * S), &maint),
        vec![db1().id]
    );
}

#[test]
fn a_weekly_window_uses_the_when_rules() {
    // Whatever the local zone, the hour of T0 is in a window of that hour.
    let hour = crate::schedule::LocalTime::from_unix_micros(T0).hour;
    let m = Maintenance {
        pattern: "*".into(),
        window: When {
            hours: vec![hour],
            ..When::default()
        },
        end: None,
        line: 1,
    };
    let q = Quiet::default();
    assert!(q
        .silenced_by(web1(), Now::at(T0), std::slice::from_ref(&m))
        .is_some());
    assert!(q
        .silenced_by(web1(), Now::at(T0 + 3600 * S), std::slice::from_ref(&m))
        .is_none());
}

#[test]
fn saved_and_loaded_unchanged_and_a_missing_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load(dir.path()).unwrap(), Quiet::default());
    let mut q = Quiet::default();
    q.ack(web1().id, ack(true, Some(T0)));
    q.silence("web*", "bob", "deploy", T0, T0 + S);
    q.gate(web1(), Problem, Now::at(T0), &[]);
    save(dir.path(), &q).unwrap();
    assert_eq!(load(dir.path()).unwrap(), q);
    std::fs::write(dir.path().join(QUIET_FILE), "{").unwrap();
    assert!(load(dir.path())
        .unwrap_err()
        .to_string()
        .contains("corrupt"));
}

#[test]
fn reminders_escalations_and_flapping_touch_no_ack_and_wait_for_a_held_problem() {
    let mut q = Quiet::default();
    q.ack(web1().id, ack(false, None));
    for kind in [Reminder, Escalation, FlappingStart] {
        assert_eq!(
            q.gate(web1(), kind, Now::at(T0), &[]),
            Gate::Mail,
            "{kind:?}"
        );
    }
    // A non-sticky ack ends at a status change, not at these.
    assert!(q.acks.contains_key(web1().id));
    // Silenced: held, and the Problem a silence held keeps them back after.
    let until = T0 + 60 * S;
    q.silence("pgsql", "bob", "deploy", T0, until);
    assert_eq!(
        q.gate(db1(), Problem, Now::at(T0), &[]),
        Gate::Hold("silenced by 1".into())
    );
    assert_eq!(
        q.gate(db1(), Reminder, Now::at(T0), &[]),
        Gate::Hold("silenced by 1".into())
    );
    assert_eq!(
        q.gate(db1(), FlappingStart, Now::at(until), &[]),
        Gate::Hold("its Problem is still held".into())
    );
}
