//! The outage log end to end, on the real binary with a real SMTP server
//! (tests/smtp/server.py, aiosmtpd): two outages of one check, then
//! `picomon history CHECK --json` lists exactly those two with their
//! durations, `status --json` (and `/api/v1/checks`, `/metrics`) shows
//! the check's availability below 100 and 100 for a check that never
//! failed, and after a SIGKILL and a torn last line the log still reads,
//! with and without a daemon. The availability mail of a scripted outage
//! says what `history` says, in its text and its CSV attachment.

use crate::support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::smtp::Smtp;
use support::{wait_until, Daemon};

const LONG: Duration = Duration::from_secs(60);
const TICK: f64 = 0.5;

/// The shared end-to-end rig ([`support::rig`]) with the listener on and
/// a second check, `steady`, that never fails.
struct Rig(support::rig::Rig);

impl std::ops::Deref for Rig {
    type Target = support::rig::Rig;
    fn deref(&self) -> &support::rig::Rig {
        &self.0
    }
}

impl Rig {
    /// `flappy` answers from the file `status`; `steady` is always OK.
    fn new() -> Rig {
        Rig::with("")
    }

    /// The same, with more config lines.
    fn with(extra: &str) -> Rig {
        let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
        let after = |d: &str| {
            format!(
                r#"config.listen = "127.0.0.1:0";
add(plugin("{p}", ["{d}/steady-runs", "{d}/no-such-file"]), #{{ name: "steady", target_name: "web1" }});
{extra}"#,
                p = plugin.display()
            )
        };
        let rig = support::rig::Rig::new(TICK, "");
        let d = rig.dir().display().to_string();
        rig.write_config(TICK, "", &after(&d));
        Rig(rig)
    }

    /// Starts the daemon and waits until its control socket answers.
    fn daemon(&self) -> Daemon {
        self.0.daemon_ready()
    }

    fn check(&self, name: &str) -> serde_json::Value {
        self.status_json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .expect("in status")
    }

    fn history(&self, check: &str) -> Vec<serde_json::Value> {
        let out = self.picomon(&["history", check, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        serde_json::from_slice(&out.stdout).expect("history --json is JSON")
    }
}

#[test]
fn two_outages_are_listed_with_their_durations_and_lower_the_availability() {
    let r = Rig::new();
    let smtp = Smtp::start(r.sb.dir.path(), r.port);
    let mut d = r.daemon();
    let mut starts = Vec::new();
    for n in 1..=2 {
        support::set_plugin_status(r.sb.dir.path(), 2, &format!("CRITICAL - outage {n}"));
        let c = r.wait_phase("problem");
        starts.push(c["since"].as_i64().expect("since"));
        // At least one more failed run in PROBLEM, then recovered. The
        // plugin counts a run before it reads its status, and runs do not
        // overlap: two new lines mean the first of them read CRITICAL.
        let runs = support::count_lines(&r.sb.path("runs"));
        r.sb.wait_lines("runs", runs + 2, LONG);
        support::set_plugin_status(r.sb.dir.path(), 0, "OK - fine");
        r.wait_phase("ok");
    }
    // Two Problems and two Recoveries reached the SMTP server.
    assert_eq!(smtp.wait_messages(4).len(), 4);

    // The mails may leave before the loop has logged the Recovery (the
    // mail goes from the delivery thread): wait for both outages to end
    // in the log. More than two, or a wrong field below, still fails.
    let list = wait_until(LONG, "both outages ended in the log", || {
        let list = r.history("flappy");
        (list.len() > 2 || list.iter().filter(|o| o["ongoing"] == false).count() == 2)
            .then_some(list)
    });
    assert_eq!(list.len(), 2, "{list:#?}");
    // Newest first; each from its first failed run to its Recovery.
    starts.reverse();
    for (o, start) in list.iter().zip(&starts) {
        assert_eq!(o["check"], "flappy");
        assert_eq!(o["ongoing"], false);
        assert_eq!(o["worst"], "CRITICAL");
        assert_eq!(o["start"].as_i64(), Some(*start), "{o}");
        let span = o["end"].as_i64().unwrap() - o["start"].as_i64().unwrap();
        let duration = o["duration"].as_f64().unwrap();
        // Whole seconds on both ends: the span is the duration cut to them.
        assert!((duration - span as f64).abs() < 1.0, "{o}");
        // Two failed runs at least: a tick or more apart.
        assert!(duration >= TICK, "{o}");
    }
    assert!(list[0]["output"].as_str().unwrap().contains("outage 2"));
    assert!(list[1]["output"].as_str().unwrap().contains("outage 1"));
    assert!(r.history("steady").is_empty());

    let flappy = r.check("flappy")["availability"].clone();
    let day = flappy["24h"].as_f64().expect("24h availability");
    assert!(day < 100.0 && day > 0.0, "{flappy}");
    assert!(flappy["30d"].as_f64().unwrap() < 100.0, "{flappy}");
    let steady = r.check("steady")["availability"].clone();
    for w in ["24h", "7d", "30d"] {
        assert_eq!(steady[w].as_f64(), Some(100.0), "{steady}");
    }
    // The same figures for the listener's readers.
    let port = support::listening_port(&d, 1);
    let api: serde_json::Value =
        serde_json::from_str(&crate::http::get(port, "/api/v1/checks").text()).expect("JSON");
    let api_day = api["checks"][0]["availability"]["24h"].as_f64().unwrap();
    assert!(api_day < 100.0, "{api}");
    let metrics = crate::http::get(port, "/metrics").text();
    let ratio = |check: &str| {
        let head = format!(
            "picomon_check_availability_ratio{{check=\"{check}\",target=\"web1\",window=\"30d\"}} "
        );
        let line = metrics.lines().find(|l| l.starts_with(&head));
        let line = line.unwrap_or_else(|| panic!("{head} in\n{metrics}"));
        line[head.len()..].parse::<f64>().unwrap()
    };
    assert!(ratio("flappy") < 1.0 && ratio("flappy") > 0.0, "{metrics}");
    assert_eq!(ratio("steady"), 1.0, "{metrics}");

    // Killed without any shutdown work, a torn line at the end: the log
    // still reads, without a daemon and after the next start.
    d.kill();
    let dir = r.sb.path("state/history");
    let file = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a month file");
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(br#"{"at":1,"kind":"recovery","check":"fla"#)
        .unwrap();
    assert_eq!(r.history("flappy").len(), 2);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let _d = r.daemon();
    support::set_plugin_status(r.sb.dir.path(), 2, "CRITICAL - outage 3");
    r.wait_phase("problem");
    let list = wait_until(LONG, "the third outage in the log", || {
        let l = r.history("flappy");
        (l.len() == 3).then_some(l)
    });
    assert_eq!(list[0]["ongoing"], true);
    assert!(list[0]["end"].is_null());
}

/// Every how many seconds the availability mail goes out in the test.
const EVERY: i64 = 20;

/// `<picomon.availability.DUE@host>`: the due time it names.
fn due_of(m: &support::smtp::Mail) -> i64 {
    let id = m.one("Message-ID");
    let rest = id.strip_prefix("<picomon.availability.").expect(id);
    rest.split('@').next().unwrap().parse().expect(id)
}

#[test]
fn the_availability_mail_tells_the_outage_in_its_text_and_csv_and_a_restart_keeps_its_time() {
    let r = Rig::with(&format!(
        "config.emails.availability = #{{ every: {EVERY} }};"
    ));
    let smtp = Smtp::start(r.sb.dir.path(), r.port);
    let mut d = r.daemon();
    support::set_plugin_status(r.sb.dir.path(), 2, "CRITICAL - scripted outage");
    r.wait_phase("problem");
    // A second failed run (see above: two new lines).
    let runs = support::count_lines(&r.sb.path("runs"));
    r.sb.wait_lines("runs", runs + 2, LONG);
    support::set_plugin_status(r.sb.dir.path(), 0, "OK - fine");
    r.wait_phase("ok");
    // Ended in the log too (the status may show OK a moment before).
    let outage = wait_until(LONG, "the outage ended in the log", || {
        let o = r.history("flappy").remove(0);
        (o["ongoing"] == false).then_some(o)
    });
    let duration = outage["duration"].as_f64().unwrap();
    let is_availability = |m: &support::smtp::Mail| m.subject_decoded.contains("AVAILABILITY");
    // Periods overlap by a tick: one of them holds the whole outage (a
    // loaded machine may put the first ones before it).
    let (mail, row) = wait_until(
        Duration::from_secs(5 * 60),
        "an availability mail with the outage",
        || {
            smtp.received()
                .into_iter()
                .filter(is_availability)
                .find_map(|m| {
                    let rows = m.part("text/csv").csv_rows.clone().expect("the CSV parses");
                    let row = rows.iter().find(|r| r[0] == "flappy")?.clone();
                    // The log's ends are whole microseconds; the CSV's tenths.
                    let whole = (row[3].parse::<f64>().unwrap() - duration).abs() <= 0.1;
                    (row[2] == "1" && whole).then_some((m, row))
                })
        },
    );
    let subject = format!("[picomon] AVAILABILITY: the last {EVERY}s on ");
    assert!(
        mail.subject_decoded.starts_with(&subject),
        "{}",
        mail.subject_decoded
    );
    assert!(
        mail.one("Content-Type").starts_with("multipart/mixed"),
        "{mail:#?}"
    );
    let csv = mail.part("text/csv");
    let rows = csv.csv_rows.as_ref().unwrap();
    assert_eq!(
        rows[0][..6],
        [
            "check",
            "availability_percent",
            "outages",
            "downtime_seconds",
            "longest_seconds",
            "mttr_seconds"
        ]
    );
    assert!(
        csv.filename
            .as_deref()
            .is_some_and(|f| f.starts_with("availability-") && f.ends_with(".csv")),
        "{csv:?}"
    );
    // Worst first: flappy before every check with no outage (steady;
    // picomon's own check too, unless a loaded machine made a tick late).
    let at = |name: &str| rows.iter().position(|r| r[0] == name).unwrap();
    let clean = rows[1..].iter().filter(|r| r[2] == "0").map(|r| at(&r[0]));
    assert!(clean.into_iter().all(|i| i > at("flappy")), "{rows:?}");
    let steady = rows.iter().find(|r| r[0] == "steady").expect("steady");
    assert_eq!(steady[..5], ["steady", "100.0000", "0", "0.0", "0.0"]);
    let availability: f64 = row[1].parse().unwrap();
    // The share of the counted time not in the outage. What was counted is
    // the period, less any of it before the check's first run (on a loaded
    // machine the first mail's period may begin before that): between the
    // outage itself and the whole period.
    let counted = duration / (1.0 - availability / 100.0);
    assert!(
        counted >= duration && counted <= EVERY as f64 + 0.01,
        "{row:?} vs {duration}: counted {counted} s of a {EVERY} s period"
    );
    for field in [3, 4, 5] {
        let secs: f64 = row[field].parse().unwrap();
        assert!((secs - duration).abs() <= 0.1, "{row:?} vs {duration}");
    }
    let text = &mail.part("text/plain").text;
    assert!(text.contains("Longest outages of flappy:"), "{text}");
    assert!(
        text.contains("CRITICAL  CRITICAL - scripted outage"),
        "{text}"
    );
    assert!(text.contains(&format!("{availability:.2}%")), "{text}");
    // The same table on demand.
    let out = r.picomon(&["history", "--csv", "--since", "1h"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let on_demand = String::from_utf8(out.stdout).unwrap();
    assert!(
        on_demand.starts_with("check,availability_percent,outages,"),
        "{on_demand}"
    );
    assert!(
        on_demand.contains("\r\nflappy,") && on_demand.contains(",1,"),
        "{on_demand}"
    );

    // Killed and started again: the next due time was kept, so the next
    // mail is a new one (never the same due time twice), a period on.
    let before = smtp
        .received()
        .into_iter()
        .filter(is_availability)
        .map(|m| due_of(&m))
        .max()
        .unwrap();
    d.kill();
    let _d = r.daemon();
    let after = wait_until(
        Duration::from_secs(5 * 60),
        "the next availability mail",
        || {
            let dues: Vec<i64> = smtp
                .received()
                .into_iter()
                .filter(is_availability)
                .map(|m| due_of(&m))
                .collect();
            dues.into_iter().find(|&d| d > before)
        },
    );
    let dues: Vec<i64> = smtp
        .received()
        .into_iter()
        .filter(is_availability)
        .map(|m| due_of(&m))
        .collect();
    let mut unique = dues.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        dues.len(),
        "a due time mailed twice: {dues:?}"
    );
    assert!(after >= before + EVERY * 1_000_000, "{before} then {after}");
}
