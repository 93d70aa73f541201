//! What a channel says about one event, in each receiver's own shape.
//!
//! An [`Event`] is a transition (or an acknowledgement) as channels see it;
//! [`render`] turns it into the body and headers of one post:
//!
//! - `json`: picomon's own object ([`Event::to_json`], also the stdin of
//!   `command()`), documented in the README.
//! - `slack`, `mattermost`: incoming-webhook JSON, `text` plus one
//!   attachment coloured by state (`fallback`, `color`, `title`, `text`).
//! - `discord`: execute-webhook JSON, `content` plus one embed (`title`,
//!   `description`, decimal `color`, `timestamp`), within Discord's limits.
//! - `ntfy`: the output as the plain-text body, `Title`, `Priority` and
//!   `Tags` headers.
//! - `matrix`: an `m.room.message` event content (`msgtype` `m.text`).
//!
//! Alertmanager's alerts are rendered by [`alerts`].

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::alert::{Transition, TransitionKind};
use crate::clock::{utc_civil, UnixMicros};
use crate::model::Status;
use crate::notify::{CheckView, Notice};

/// The webhook formats `webhook(url, #{ format })` accepts.
pub const FORMATS: &[&str] = &["json", "slack", "mattermost", "ntfy", "discord", "matrix"];

/// The kind of an acknowledgement (transitions use `TransitionKind::as_str`).
pub const ACK_KIND: &str = "acknowledgement";

/// The kind of a chat message that sums up many transitions of one tick.
pub const DIGEST_KIND: &str = "digest";

/// One thing to tell, as every channel sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `problem`, `update`, `recovery`, ... or `acknowledgement`.
    pub kind: String,
    pub state: Status,
    pub previous: Option<Status>,
    pub check: String,
    pub check_id: String,
    pub target: String,
    pub output: String,
    /// The start of the outage (the thread's identity).
    pub since: UnixMicros,
    pub at: UnixMicros,
    pub failed_runs: u32,
    /// Dependents this check's failure makes UNREACHABLE ("name on dest").
    pub unreachable: Vec<String>,
}

impl Event {
    pub fn from_notice(n: &Notice) -> Event {
        let t: &Transition = &n.transition;
        Event {
            kind: t.kind.as_str().to_string(),
            state: t.status,
            // The last state announced: a Problem follows OK (the runs
            // that failed before it were retries nobody was told of).
            previous: match t.kind {
                TransitionKind::Problem => Some(Status::Ok),
                _ => t.previous,
            },
            check: n.name.clone(),
            check_id: n.check_id.clone(),
            target: n.dest.clone(),
            output: n.output.clone(),
            since: t.outage_start,
            at: t.at,
            failed_runs: t.failed_runs,
            unreachable: n.unreachable.clone(),
        }
    }

    /// `picomon ack`: the output says who and why.
    pub fn acknowledged(c: &CheckView, by: &str, comment: &str, now: UnixMicros) -> Event {
        Event {
            kind: ACK_KIND.to_string(),
            state: c.status.unwrap_or(Status::Unknown),
            previous: c.status,
            check: c.name.clone(),
            check_id: c.check_id.clone(),
            target: c.dest.clone(),
            output: format!("Acknowledged by {by}: {comment}"),
            since: c.outage_start.unwrap_or(now),
            at: now,
            failed_runs: c.failed_runs,
            unreachable: Vec::new(),
        }
    }

    /// One message for many transitions of one tick (more than
    /// `emails.digest_over`), as a chat shows it: the worst state, one
    /// line per transition.
    pub fn digest(events: &[&Event], now: UnixMicros) -> Event {
        let worst = events
            .iter()
            .filter(|e| e.kind != ACK_KIND)
            .fold(Status::Ok, |w, e| Status::worst(w, e.state));
        let mut output = String::new();
        for e in events {
            output.push_str(&format!(
                "{} {}: {} on {}: {}\n",
                e.kind.to_uppercase(),
                e.state.as_str(),
                e.check,
                e.target,
                e.summary()
            ));
        }
        let host = crate::host::this_host();
        Event {
            kind: DIGEST_KIND.into(),
            state: worst,
            previous: None,
            check: format!("{} changes", events.len()),
            check_id: format!("digest@{host}"),
            target: host,
            output,
            since: now,
            at: now,
            failed_runs: 0,
            unreachable: Vec::new(),
        }
    }

    /// Whether this is the end of an outage (Alertmanager resolves it).
    pub fn is_recovery(&self) -> bool {
        self.kind == TransitionKind::Recovery.as_str()
    }

    /// The output without its perfdata (summary, then the long output),
    /// and the dependents it makes UNREACHABLE: what a chat message shows.
    pub fn text(&self) -> String {
        let (summary, long, _) = crate::model::parse_plugin_output(&self.output);
        let mut out = summary;
        if !long.is_empty() {
            out.push('\n');
            out.push_str(&long);
        }
        if !self.unreachable.is_empty() {
            out.push_str("\nUNREACHABLE because of this: ");
            out.push_str(&self.unreachable.join(", "));
        }
        out
    }

    /// The first line of the output without its perfdata (what follows
    /// its first `|`), as Nagios shows it.
    pub fn summary(&self) -> String {
        let first = self.output.lines().next().unwrap_or("");
        first
            .split_once('|')
            .map_or(first, |(s, _)| s)
            .trim()
            .to_string()
    }

    /// The output's perfdata (of the first line and of the long output),
    /// one space between items; empty when it has none.
    pub fn perfdata(&self) -> String {
        let (_, _, perf) = crate::model::plugin_output::parse_plugin_output(&self.output);
        perf.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The outage's thread: the Message-ID of its Problem mail without the
    /// brackets, so a chat message and its mail can be matched.
    pub fn thread(&self) -> String {
        crate::notify::thread_id(&self.check_id, self.since)
    }

    /// One line: `Problem: disk on web1 is CRITICAL`.
    pub fn title(&self) -> String {
        let mut kind = self.kind.replace('_', " ");
        if let Some(first) = kind.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        if self.kind == ACK_KIND {
            return format!("{kind}: {} on {}", self.check, self.target);
        }
        if self.kind == DIGEST_KIND {
            return format!("{kind}: {} on {}", self.check, self.target);
        }
        format!(
            "{kind}: {} on {} is {}",
            self.check,
            self.target,
            self.state.as_str()
        )
    }

    /// picomon's JSON object for this event (`format: "json"`, the stdin
    /// of `command()`).
    pub fn to_json(&self) -> Value {
        json!({
            "picomon": 1,
            "kind": self.kind,
            "state": self.state.as_str(),
            "previous": self.previous.map(|s| s.as_str()),
            "check": self.check,
            "check_id": self.check_id,
            "target": self.target,
            "summary": self.summary(),
            "perfdata": self.perfdata(),
            "output": self.output,
            "since": rfc3339(self.since),
            "since_unix": self.since.div_euclid(1_000_000),
            "at": rfc3339(self.at),
            "at_unix": self.at.div_euclid(1_000_000),
            "failed_runs": self.failed_runs,
            "unreachable": self.unreachable,
            "thread": self.thread(),
            "host": crate::host::this_host(),
        })
    }

    /// Reads back the object of [`to_json`](Self::to_json) (a queued
    /// command's stdin), for its environment.
    pub fn from_json(v: &Value) -> Option<Event> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let status = |k: &str| v.get(k).and_then(Value::as_str).and_then(Status::from_name);
        let secs = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0) * 1_000_000;
        Some(Event {
            kind: s("kind"),
            state: status("state")?,
            previous: status("previous"),
            check: s("check"),
            check_id: s("check_id"),
            target: s("target"),
            output: s("output"),
            since: secs("since_unix"),
            at: secs("at_unix"),
            failed_runs: v.get("failed_runs").and_then(Value::as_u64).unwrap_or(0) as u32,
            unreachable: v
                .get("unreachable")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The keys of picomon's JSON object that `command()` also gets as
/// `PICOMON_<KEY>` environment variables.
const ENV_KEYS: &[&str] = &[
    "kind",
    "state",
    "previous",
    "check",
    "check_id",
    "target",
    "summary",
    "perfdata",
    "output",
    "since",
    "at",
    "failed_runs",
    "unreachable",
    "thread",
];

/// The `PICOMON_*` environment of `command()`, from the JSON object on
/// its stdin (so both always say the same), plus `PICOMON_TITLE`.
pub fn env_of(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = ENV_KEYS
        .iter()
        .map(|k| {
            let val = match v.get(*k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (
                format!("PICOMON_{}", k.to_ascii_uppercase()),
                val.replace('\0', " "),
            )
        })
        .collect();
    if let Some(e) = Event::from_json(v) {
        out.push(("PICOMON_TITLE".into(), e.title().replace('\0', " ")));
    }
    out
}

/// `2026-11-29T21:00:00Z` (UTC, whole seconds).
pub fn rfc3339(at: UnixMicros) -> String {
    let c = utc_civil(at.div_euclid(1_000_000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Reads back a time of [`rfc3339`].
pub fn parse_rfc3339(s: &str) -> Option<UnixMicros> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (h, mi, sec) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let days = crate::clock::days_from_civil(n(0..4)?, n(5..7)? as u8, n(8..10)? as u8);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000)
}

/// The colour of a state: green, amber, red, grey; blue for an ack.
fn colour(e: &Event) -> u32 {
    if e.kind == ACK_KIND {
        return 0x43_9f_e0;
    }
    match e.state {
        Status::Ok => 0x2e_b8_86,
        Status::Warning => 0xda_a0_38,
        Status::Critical => 0xd0_00_00,
        Status::Unknown => 0x80_80_80,
    }
}

/// At most `max` characters of `s` (receivers refuse longer fields).
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => {
            let mut out = s[..i].to_string();
            out.pop();
            out.push('…');
            out
        }
    }
}

/// A header value: one line; non-ASCII as an RFC 2047 word (ntfy reads
/// them).
fn header_value(s: &str) -> String {
    let line = crate::queue::envelope::one_line(s);
    if line.is_ascii() {
        return line;
    }
    use base64::Engine;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(line.as_bytes())
    )
}

/// The body and headers of one webhook post in `format`.
pub fn render(format: &str, e: &Event) -> (Vec<(String, String)>, Vec<u8>) {
    let json_body = |v: Value| {
        (
            vec![("Content-Type".to_string(), "application/json".to_string())],
            v.to_string().into_bytes(),
        )
    };
    let title = e.title();
    let footer = format!("picomon on {}", crate::host::this_host());
    match format {
        "slack" | "mattermost" => json_body(json!({
            "text": title,
            "attachments": [{
                "fallback": format!("{title}: {}", e.summary()),
                "color": format!("#{:06x}", colour(e)),
                "title": format!("{} {}", e.state.as_str(), e.check),
                "text": cut(&e.text(), 3000),
                "footer": footer,
                "ts": e.at.div_euclid(1_000_000),
            }],
        })),
        "discord" => json_body(json!({
            "content": cut(&title, 2000),
            "embeds": [{
                "title": cut(&format!("{} {}", e.state.as_str(), e.check), 256),
                "description": cut(&e.text(), 4000),
                "color": colour(e),
                "timestamp": rfc3339(e.at),
                "footer": { "text": footer },
            }],
        })),
        "matrix" => json_body(json!({
            "msgtype": "m.text",
            "body": format!("{title}\n{}", e.text()),
        })),
        "ntfy" => {
            let (priority, tag) = match (e.kind.as_str(), e.state) {
                (ACK_KIND, _) => ("3", "speech_balloon"),
                (_, Status::Ok) => ("3", "white_check_mark"),
                (_, Status::Warning) => ("4", "warning"),
                (_, Status::Critical) => ("5", "rotating_light"),
                (_, Status::Unknown) => ("4", "question"),
            };
            let headers = vec![
                ("Content-Type".into(), "text/plain; charset=utf-8".into()),
                ("Title".into(), header_value(&title)),
                ("Priority".into(), priority.into()),
                ("Tags".into(), format!("{tag},{}", header_value(&e.kind))),
            ];
            (headers, e.text().into_bytes())
        }
        _ => json_body(e.to_json()),
    }
}

/// The severity label of a status: `warning`, `critical` or `unknown`.
fn severity(s: Status) -> &'static str {
    match s {
        Status::Warning => "warning",
        Status::Critical => "critical",
        Status::Ok | Status::Unknown => "unknown",
    }
}

/// How many re-post intervals a firing alert lives in Alertmanager without
/// being posted again: Prometheus's own rule (its `endsAt` is four
/// evaluation or resend intervals ahead), so a picomon that stopped lets
/// its alerts resolve on their own while one that is merely late (a busy
/// tick, a slow delivery) does not.
pub const ENDS_AFTER_REPEATS: u32 = 4;

/// The severities whose alert one Alertmanager instance was last posted
/// as firing and not resolved since, by check identity. It is what lets a
/// severity change or a recovery resolve exactly what fires, whatever was
/// held back in between (a sticky acknowledgement holds Updates back, so
/// the run before a recovery says nothing of what was announced).
///
/// Kept in memory: after a restart, what the last run said stands in for
/// it, and the `endsAt` of whatever it misses ends that alert soon after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fired(BTreeMap<String, Vec<&'static str>>);

impl Fired {
    /// The severities that fire for `check_id`.
    pub fn of(&self, check_id: &str) -> &[&'static str] {
        self.0.get(check_id).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// One Alertmanager alert of `severity`, which ends at `ends`: a time in
/// the future keeps it firing until then, one in the past resolves it.
pub fn alert(e: &Event, severity: &str, ends: UnixMicros, labels: &[(String, String)]) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("alertname".into(), e.check.clone().into());
    l.insert("instance".into(), e.target.clone().into());
    l.insert("severity".into(), severity.into());
    for (k, v) in labels {
        l.insert(k.clone(), v.clone().into());
    }
    json!({
        "labels": l,
        "annotations": annotations(e),
        "startsAt": rfc3339(e.since),
        // Alertmanager refuses an alert that ends before it starts; one
        // that ends as it starts is resolved (a later end would keep it
        // firing until then).
        "endsAt": rfc3339(ends.max(e.since)),
    })
}

/// An alert's annotations: `summary` (the first line without perfdata),
/// `description` (the output without perfdata), `thread`, and `perfdata` when the
/// output has some.
fn annotations(e: &Event) -> Value {
    let mut a = json!({
        "summary": e.summary(),
        "description": cut(&e.text(), 8000),
        "thread": e.thread(),
    });
    let perf = e.perfdata();
    if !perf.is_empty() {
        a["perfdata"] = perf.into();
    }
    a
}

/// An Alertmanager post delivered `late` after it was composed (its
/// instance was down): each firing alert's `endsAt` moved as much later,
/// so it arrives firing for as long as it would have on time, not already
/// ended (later posts of the same queue say what changed meanwhile).
/// `None` when nothing needs to change.
pub fn postpone_ends(body: &[u8], composed: UnixMicros, late: i64) -> Option<Vec<u8>> {
    if late < 1_000_000 {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let mut moved = false;
    for a in v.as_array_mut()? {
        let Some(ends) = a["endsAt"].as_str().and_then(parse_rfc3339) else {
            continue;
        };
        // A resolve ends by the time it was composed (see `alert`);
        // firing alerts end repeats later.
        if ends > composed + 1_000_000 {
            a["endsAt"] = rfc3339(ends + late).into();
            moved = true;
        }
    }
    moved.then(|| v.to_string().into_bytes())
}

/// The alerts one event posts to an Alertmanager instance (`[]` for one
/// it has no use for, such as an acknowledgement: silences are
/// Alertmanager's), given what `fired` says fires there, which it updates.
///
/// An alert's identity is its labels, the same on every picomon (no label
/// names the sender, so a cluster sees one alert from redundant senders):
/// a firing event fires its severity until now + [`ENDS_AFTER_REPEATS`] ×
/// `repeat` and resolves every other severity of the check that fired; the
/// end of an outage resolves every severity that fired.
pub fn alerts(
    e: &Event,
    labels: &[(String, String)],
    repeat: std::time::Duration,
    fired: &mut Fired,
) -> Vec<Value> {
    use TransitionKind as K;
    let stops_flapping = e.kind == K::FlappingStop.as_str();
    let firing = [K::Problem, K::Update, K::Reminder, K::Escalation]
        .iter()
        .any(|k| k.as_str() == e.kind);
    if !e.is_recovery() && !firing && !stops_flapping {
        // Acks, digests, the start of flapping: silences and inhibition
        // are Alertmanager's own business.
        return Vec::new();
    }
    // The run before stands in for what fired when nothing is known
    // (after a restart): an Update from it, a recovery of it.
    let before = e
        .previous
        .filter(|s| *s != Status::Ok)
        .map(severity)
        .into_iter()
        .collect::<Vec<_>>();
    if e.is_recovery() || e.state == Status::Ok {
        let known = fired.0.remove(&e.check_id);
        let ended = match known {
            Some(f) => f,
            None if stops_flapping => Vec::new(),
            None => before
                .first()
                .map_or(vec![severity(Status::Unknown)], |s| vec![*s]),
        };
        return ended
            .into_iter()
            .map(|s| alert(e, s, e.at, labels))
            .collect();
    }
    let now = severity(e.state);
    let was = match fired.0.insert(e.check_id.clone(), vec![now]) {
        Some(f) => f,
        // Only an Update follows an alert that fired (a Problem's previous
        // run was a retry, never posted).
        None if e.kind == K::Update.as_str() => before,
        None => Vec::new(),
    };
    let mut out: Vec<Value> = was
        .into_iter()
        .filter(|s| *s != now)
        .map(|s| alert(e, s, e.at, labels))
        .collect();
    let lifetime = repeat.as_micros() as i64 * i64::from(ENDS_AFTER_REPEATS);
    out.push(alert(e, now, e.at + lifetime, labels));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, state: Status, previous: Option<Status>) -> Event {
        Event {
            kind: kind.into(),
            state,
            previous,
            check: "disk".into(),
            check_id: "disk@web1".into(),
            target: "web1".into(),
            output: "DISK CRITICAL - 2% free\nlong".into(),
            since: 1_800_000_000_000_000,
            at: 1_800_000_060_000_000,
            failed_runs: 2,
            unreachable: vec!["app on web2".into()],
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000_000_000), "2027-01-15T08:00:00Z");
    }

    const REPEAT: std::time::Duration = std::time::Duration::from_secs(60);

    /// `(severity, endsAt)` of each alert.
    fn shown(a: &[Value]) -> Vec<(String, String)> {
        a.iter()
            .map(|x| {
                (
                    x["labels"]["severity"].as_str().unwrap().to_string(),
                    x["endsAt"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_firing_alert_ends_four_repeats_ahead_and_a_recovery_ends_it_now() {
        let mut fired = Fired::default();
        let p = alerts(
            &event("problem", Status::Critical, Some(Status::Warning)),
            &[("team".into(), "ops".into())],
            REPEAT,
            &mut fired,
        );
        // A Problem after a WARNING retry fires one alert: nothing fired
        // before. It lives 4 x 60 s past the transition (08:01:00).
        assert_eq!(
            shown(&p),
            [("critical".into(), "2027-01-15T08:05:00Z".into())]
        );
        assert_eq!(p[0]["labels"]["team"], "ops");
        assert_eq!(p[0]["labels"]["alertname"], "disk");
        assert_eq!(p[0]["labels"]["instance"], "web1");
        assert_eq!(p[0]["labels"].as_object().unwrap().len(), 4, "{}", p[0]);
        assert_eq!(p[0]["startsAt"], "2027-01-15T08:00:00Z");
        let r = alerts(
            &event("recovery", Status::Ok, Some(Status::Critical)),
            &[],
            REPEAT,
            &mut fired,
        );
        assert_eq!(
            shown(&r),
            [("critical".into(), "2027-01-15T08:01:00Z".into())]
        );
        assert_eq!(fired, Fired::default());
        // A severity change within the outage's first second: the old
        // severity ends as it starts, which Alertmanager takes as resolved.
        let mut quick = event("update", Status::Critical, Some(Status::Warning));
        quick.at = quick.since + 300_000;
        let q = alerts(&quick, &[], REPEAT, &mut fired);
        assert_eq!(q[0]["endsAt"], q[0]["startsAt"], "{}", q[0]);
        assert_eq!(q[0]["labels"]["severity"], "warning");
        assert!(alerts(
            &event(ACK_KIND, Status::Critical, None),
            &[],
            REPEAT,
            &mut fired
        )
        .is_empty());
    }

    #[test]
    fn a_late_delivery_moves_the_end_of_firing_alerts_only() {
        assert_eq!(
            parse_rfc3339("2027-01-15T08:05:00Z"),
            Some(1_800_000_300_000_000)
        );
        assert_eq!(parse_rfc3339("2027-01-15 08:05:00"), None);
        let mut fired = Fired::default();
        let e = event("update", Status::Critical, Some(Status::Warning));
        let body = Value::Array(alerts(&e, &[], REPEAT, &mut fired)).to_string();
        let composed = e.at;
        assert_eq!(postpone_ends(body.as_bytes(), composed, 500_000), None);
        let later = postpone_ends(body.as_bytes(), composed, 600_000_000).unwrap();
        let later: Vec<Value> = serde_json::from_slice(&later).unwrap();
        assert_eq!(
            shown(&later),
            [
                ("warning".into(), "2027-01-15T08:01:00Z".into()),
                ("critical".into(), "2027-01-15T08:15:00Z".into())
            ]
        );
        assert_eq!(later[1]["startsAt"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn a_severity_change_resolves_every_other_severity_that_fired() {
        let mut fired = Fired::default();
        let mut post = |kind: &str, state, previous| {
            shown(&alerts(
                &event(kind, state, previous),
                &[],
                REPEAT,
                &mut fired,
            ))
        };
        let (w, c) = (Status::Warning, Status::Critical);
        let ends = |s: &str| (s.to_string(), "2027-01-15T08:05:00Z".to_string());
        let now = |s: &str| (s.to_string(), "2027-01-15T08:01:00Z".to_string());
        assert_eq!(post("problem", w, Some(Status::Ok)), [ends("warning")]);
        assert_eq!(
            post("update", c, Some(w)),
            [now("warning"), ends("critical")]
        );
        // A sticky ack holds the Update to WARNING back; the recovery's
        // run before is WARNING, yet the alert that fires is critical.
        assert_eq!(post("recovery", Status::Ok, Some(w)), [now("critical")]);
        // The same with a repeat in between, which posts the check as it
        // is now (WARNING): it fires warning and resolves critical.
        assert_eq!(post("problem", w, Some(Status::Ok)), [ends("warning")]);
        assert_eq!(
            post("update", c, Some(w)),
            [now("warning"), ends("critical")]
        );
        assert_eq!(
            post("problem", w, Some(w)),
            [now("critical"), ends("warning")]
        );
        assert_eq!(post("recovery", Status::Ok, Some(w)), [now("warning")]);
        // Nothing known (a restart): the run before stands in.
        assert_eq!(
            post("update", c, Some(w)),
            [now("warning"), ends("critical")]
        );
        assert_eq!(
            post("flapping_stop", Status::Ok, Some(c)),
            [now("critical")]
        );
        assert_eq!(post("recovery", Status::Ok, Some(c)), [now("critical")]);
    }

    #[test]
    fn the_json_object_reads_back_for_the_environment() {
        let e = event("problem", Status::Critical, Some(Status::Ok));
        let back = Event::from_json(&e.to_json()).unwrap();
        assert_eq!(back, e);
        let env = env_of(&e.to_json());
        assert!(env.contains(&("PICOMON_THREAD".into(), e.thread())));
        assert!(env.contains(&("PICOMON_FAILED_RUNS".into(), "2".into())));
        assert!(env.contains(&("PICOMON_TITLE".into(), e.title())));
        assert!(env.contains(&("PICOMON_STATE".into(), "CRITICAL".into())));
        assert!(env.contains(&("PICOMON_SINCE".into(), "2027-01-15T08:00:00Z".into())));
    }

    #[test]
    fn ntfy_headers_are_one_ascii_line() {
        let mut e = event("problem", Status::Critical, None);
        e.check = "dïsk\r\nX-Evil: 1".into();
        let (h, body) = render("ntfy", &e);
        let title = &h.iter().find(|(k, _)| k == "Title").unwrap().1;
        assert!(
            title.starts_with("=?UTF-8?B?") && title.is_ascii(),
            "{title}"
        );
        assert!(!title.contains('\n'));
        assert_eq!(body, e.text().as_bytes());
        assert!(e
            .text()
            .ends_with("\nUNREACHABLE because of this: app on web2"));
        assert!(h.contains(&("Priority".into(), "5".into())));
    }

    #[test]
    fn summary_and_texts_leave_the_perfdata_to_its_own_field() {
        let mut e = event("problem", Status::Critical, None);
        e.output = "router unreachable CRITICAL | val=5;3;4;0;10\nhop 3 lost|rta=2ms".into();
        assert_eq!(e.summary(), "router unreachable CRITICAL");
        assert_eq!(e.perfdata(), "val=5;3;4;0;10 rta=2ms");
        assert!(e
            .text()
            .starts_with("router unreachable CRITICAL\nhop 3 lost\nUNREACHABLE"));
        let j = e.to_json();
        assert_eq!(j["summary"], "router unreachable CRITICAL");
        assert_eq!(j["perfdata"], "val=5;3;4;0;10 rta=2ms");
        let a = alert(&e, "critical", e.at, &[]);
        assert_eq!(a["annotations"]["summary"], "router unreachable CRITICAL");
        assert_eq!(a["annotations"]["perfdata"], "val=5;3;4;0;10 rta=2ms");
        for f in FORMATS.iter().filter(|f| **f != "json") {
            let (_, body) = render(f, &e);
            assert!(!String::from_utf8_lossy(&body).contains("val=5"), "{f}");
        }
        // Without perfdata, no annotation for it.
        let plain = event("problem", Status::Critical, None);
        assert!(alert(&plain, "critical", plain.at, &[])["annotations"]
            .get("perfdata")
            .is_none());
    }

    #[test]
    fn previous_is_the_last_state_announced() {
        let n = Notice::new(
            "disk@web1".into(),
            "disk".into(),
            "web1".into(),
            Transition {
                kind: TransitionKind::Problem,
                status: Status::Critical,
                // The retry before it.
                previous: Some(Status::Critical),
                outage_start: 0,
                failed_runs: 3,
                at: 0,
            },
            "DOWN".into(),
        );
        assert_eq!(Event::from_notice(&n).previous, Some(Status::Ok));
        assert_eq!(Event::from_notice(&n).to_json()["previous"], "OK");
    }
}
