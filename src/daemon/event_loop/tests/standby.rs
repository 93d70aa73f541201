//! A standby (`config.standby_for`) and outages a peer announced, driven
//! by hand: what is announced, and the one mail each turn makes.

use super::*;

const PAIR: &str = r#"
config.base_tick = 60;
config.standby_for = "mon1";
add(shell("true"), #{ name: "mon1", retry: 0 });
add(shell("true"), #{ name: "db", retry: 0 });
add(shell("true"), #{ name: "web", retry: 0 });
"#;

impl Rig {
    fn tick_with(&mut self, at: u64, statuses: &[(&str, Status)]) {
        self.at(at);
        self.started();
        for (name, s) in statuses {
            self.end(name, *s);
        }
    }

    fn take_notes(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.notes.notes.lock().unwrap())
    }
}

#[test]
fn a_standby_announces_nothing_until_its_primary_fails_then_owns_its_threads() {
    use Status::{Critical as C, Ok as K};
    let mut r = rig(PAIR);
    r.tick_with(0, &[("mon1", K), ("db", C), ("web", K)]);
    assert_eq!(r.phase("db"), Phase::Problem);
    assert!(r.notes.take().is_empty(), "standing by");
    assert!(r.take_notes().is_empty());
    assert!(!status_of(&r, "db").announced);
    r.at(30 * SEC);
    assert_eq!(
        r.notes.last_tick.lock().unwrap().as_ref().map(|t| t.0),
        Some(false),
        "no report while standing by"
    );

    // The primary is down: one takeover mail naming what fails.
    r.tick_with(60 * SEC, &[("mon1", C), ("db", C), ("web", K)]);
    let notes = r.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "taking over from mon1");
    assert!(notes[0].1.contains("db on "), "{}", notes[0].1);
    assert!(!notes[0].1.contains("web"), "{}", notes[0].1);
    assert!(
        r.notes.take().iter().all(Vec::is_empty),
        "mon1's own Problem is the takeover"
    );
    assert!(status_of(&r, "db").announced);
    assert!(!status_of(&r, "mon1").announced);

    // Taken over: announces as usual.
    r.tick_with(120 * SEC, &[("mon1", C), ("db", C), ("web", C)]);
    assert_eq!(r.notes.take(), [["problem web"]]);
    assert!(r.take_notes().is_empty(), "one takeover mail only");
    // Kept for a restart: a restarted standby still owns them.
    let saved = std::fs::read_to_string(r.dir.path().join("standby")).unwrap();
    assert_eq!(saved, r#"{"active":true,"owned":["db","web"]}"#);
    let mut again = rig(PAIR);
    for file in ["state", "standby"] {
        std::fs::copy(r.dir.path().join(file), again.dir.path().join(file)).unwrap();
    }
    again
        .d
        .restore(crate::state::load(again.dir.path()).unwrap());
    again.d.restore_standby();
    again.tick_with(0, &[("mon1", C), ("db", C), ("web", C)]);
    assert!(status_of(&again, "db").announced, "owned across a restart");
    assert!(
        again.take_notes().is_empty(),
        "restarted while the primary is down: no second takeover mail"
    );
    again.tick_with(60 * SEC, &[("mon1", K), ("db", C), ("web", C)]);
    let notes = again.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "mon1 is back, standing by");

    // The primary is back: one mail; owned threads go on to their end.
    r.tick_with(180 * SEC, &[("mon1", K), ("db", C), ("web", C)]);
    let notes = r.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "mon1 is back, standing by");
    assert!(
        notes[0].1.contains("db") && notes[0].1.contains("web"),
        "{}",
        notes[0].1
    );
    assert!(r.notes.take().iter().all(Vec::is_empty));
    r.tick_with(240 * SEC, &[("mon1", K), ("db", K), ("web", C)]);
    assert_eq!(r.notes.take(), [["recovery db"]]);
    r.tick_with(300 * SEC, &[("mon1", K), ("db", C), ("web", K)]);
    assert_eq!(
        r.notes.take(),
        [["recovery web"]],
        "db's new outage: standing by"
    );
    assert!(!status_of(&r, "db").announced);
    assert!(r.take_notes().is_empty());
}

#[test]
fn an_outage_the_peer_announced_is_not_announced_here_until_it_ends() {
    use Status::{Critical as C, Ok as K};
    let mut r = rig(r#"
config.base_tick = 60;
add(shell("true"), #{ name: "db", retry: 0 });
add(shell("true"), #{ name: "mon2", retry: 0 });
"#);
    let peer = |claims: &[&str]| {
        let mut o = Outcome::new(K, "PEER OK");
        o.data = Some(Box::new(
            serde_json::json!({ crate::health::PEER_ANNOUNCED: claims }),
        ));
        o
    };
    r.at(0);
    r.started();
    r.end("db", C);
    r.end_with("mon2", peer(&["db"]));
    assert!(
        r.notes.take().iter().all(Vec::is_empty),
        "the peer announced it"
    );
    assert!(!status_of(&r, "db").announced);
    // The claim holds for the whole outage, even once the peer lists it
    // no more (it announced the Recovery).
    r.at(60 * SEC);
    r.started();
    r.end("db", K);
    r.end_with("mon2", peer(&[]));
    assert!(r.notes.take().iter().all(Vec::is_empty));
    // A new outage the peer does not claim (or a peer out of reach) is
    // announced here.
    r.at(120 * SEC);
    r.started();
    r.end("db", C);
    r.end("mon2", C);
    assert_eq!(r.notes.take(), [["problem db", "problem mon2"]]);
    assert!(status_of(&r, "db").announced);

    // A peer that goes down claims nothing any more: a duplicate, never a
    // silence.
    r.at(180 * SEC);
    r.started();
    r.end("db", K);
    r.end_with("mon2", peer(&[]));
    assert_eq!(r.notes.take(), [["recovery db", "recovery mon2"]]);
    r.at(240 * SEC);
    r.started();
    r.end("db", C);
    r.end_with("mon2", peer(&["db"]));
    assert!(r.notes.take().iter().all(Vec::is_empty));
    assert!(!status_of(&r, "db").announced);
    r.at(300 * SEC);
    r.started();
    r.end("db", C);
    r.end("mon2", C);
    assert_eq!(r.notes.take(), [["problem mon2"]]);
    assert!(status_of(&r, "db").announced, "announced here again");
    r.at(360 * SEC);
    r.started();
    r.end("db", K);
    r.end("mon2", C);
    assert_eq!(r.notes.take(), [["recovery db"]]);
}

#[test]
fn a_standby_file_from_before_the_takeover_was_kept_is_read() {
    use Status::{Critical as C, Ok as K};
    let mut r = rig(PAIR);
    r.tick_with(0, &[("mon1", K), ("db", C), ("web", K)]);
    assert!(!status_of(&r, "db").announced, "standing by");
    std::fs::write(r.dir.path().join("standby"), r#"["db"]"#).unwrap();
    r.d.restore_standby();
    assert!(status_of(&r, "db").announced, "the old list is read");
    // Not known to have taken over: the primary's failure is one takeover.
    r.tick_with(60 * SEC, &[("mon1", C), ("db", C), ("web", K)]);
    let notes = r.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "taking over from mon1");
}
