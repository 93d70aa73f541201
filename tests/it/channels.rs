//! Notification channels (`config.notify`) end to end, against the real
//! `picomon` binary and real receivers: a webhook receiver
//! (tests/notify/receiver.py) checked against the documented payload
//! shapes of Slack, Mattermost, Discord, ntfy and Matrix; a receiver that
//! is down, then refuses, then answers; Debian's `prometheus-alertmanager`;
//! Apprise (from PyPI) driven through `command()`; and `command()` itself
//! with a recording script. Every wait polls with a deadline.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::ports::reserve_port;
use support::probes::Peer;
use support::{Daemon, Sandbox};

const DEADLINE: Duration = Duration::from_secs(90);

fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    support::wait_until(DEADLINE, what, f)
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A sandbox running tests/smtp/status-plugin.sh as "flappy on web1" every
/// 0.3 s with retry 1; no mail recipient, so only the channels speak.
struct Rig {
    sb: Sandbox,
}

impl Rig {
    /// `notify` is the Rhai list of channels; `@DIR@` is the sandbox.
    fn new(notify: &str, check_opts: &str) -> Rig {
        Rig::with(notify, check_opts, "")
    }

    /// [`new`](Self::new) with `extra` config lines.
    fn with(notify: &str, check_opts: &str, extra: &str) -> Rig {
        let sb = Sandbox::new();
        let plugin = repo("tests/smtp/status-plugin.sh");
        let cfg = format!(
            r#"
config.base_tick = 0.3;
config.state_dir = "@DIR@/state";
config.notify = {notify};
add(plugin("{plugin}", ["@DIR@/runs", "@DIR@/status"]), #{{ name: "flappy", target_name: "web1", retry: 1{check_opts} }});
{extra}
"#,
            plugin = plugin.display()
        );
        sb.config(&cfg);
        Rig { sb }
    }

    fn dir(&self) -> &Path {
        self.sb.dir.path()
    }

    fn set_status(&self, code: i32, text: &str) {
        support::set_plugin_status(self.dir(), code, text);
    }

    fn daemon(&self) -> Daemon {
        let cfg = self.sb.path("config.rhai").display().to_string();
        Daemon::start_anew(self.dir(), &["-c", &cfg])
    }

    /// The posts waiting in the queue of channel `name`.
    fn queued(&self, name: &str) -> Vec<PathBuf> {
        files(&self.dir().join("state/notify").join(name), ".post")
    }

    /// `picomon status` of the running daemon.
    fn status(&self) -> String {
        let cfg = self.sb.path("config.rhai").display().to_string();
        let out = self.sb.run(&["-c", &cfg, "status"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A running receiver.py and the requests it logged.
pub(crate) struct Receiver {
    _peer: Peer,
    log: PathBuf,
    port: u16,
}

impl Receiver {
    /// On `port` (0: any); `answers` scripts its HTTP statuses.
    pub(crate) fn start(dir: &Path, name: &str, port: u16, answers: &[u16]) -> Receiver {
        let log = dir.join(format!("{name}.log"));
        let script = dir.join(format!("{name}.answers"));
        let text: String = answers.iter().map(|a| format!("{a}\n")).collect();
        fs::write(&script, text).unwrap();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(repo("tests/notify/receiver.py"))
            .arg(port.to_string())
            .arg(&log)
            .arg(&script);
        let peer = Peer::start(name, cmd);
        Receiver {
            port: peer.port,
            _peer: peer,
            log,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn requests(&self) -> Vec<Value> {
        support::read(&self.log)
            .lines()
            .map(|l| serde_json::from_str(l).expect("receiver log line"))
            .collect()
    }

    /// The requests to `path` (prefix) that were answered 2xx.
    fn accepted(&self, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["path"].as_str().unwrap_or("").starts_with(path))
            .filter(|r| r["answer"].as_u64().unwrap_or(0) < 300)
            .collect()
    }

    fn wait_accepted(&self, path: &str, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} posts to {path}"), || {
            let got = self.accepted(path);
            (got.len() >= n).then_some(got)
        })
    }
}

fn body(r: &Value) -> Value {
    serde_json::from_str(r["body"].as_str().unwrap()).expect("a JSON body")
}

fn header<'a>(r: &'a Value, name: &str) -> &'a str {
    r["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[test]
fn webhook_formats_have_the_receivers_documented_shapes_and_no_secret_leaks() {
    let sb_token = "syt_sekrit_token_4242";
    let probe = Sandbox::new();
    let rx = Receiver::start(probe.dir.path(), "receiver", 0, &[]);
    let token = probe.path("matrix-token");
    fs::write(&token, format!("{sb_token}\n")).unwrap();
    let notify = format!(
        r#"[
    webhook("{slack}", #{{ format: "slack", name: "slack" }}),
    webhook("{mm}", #{{ format: "mattermost", name: "mm" }}),
    webhook("{discord}", #{{ format: "discord", name: "discord" }}),
    webhook("{ntfy}", #{{ format: "ntfy", name: "ntfy" }}),
    webhook("{matrix}", #{{ format: "matrix", name: "matrix", secret_file: "{token}" }}),
    webhook("{json}", #{{ name: "json", headers: #{{ "X-Api-Key": "hdr-sekrit-77" }} }}),
]"#,
        slack = rx.url("/slack/T000/B000/XXXXsecretpath"),
        mm = rx.url("/hooks/mm"),
        discord = rx.url("/api/webhooks/1/discord"),
        ntfy = rx.url("/alerts"),
        matrix = rx.url("/_matrix/client/v3/rooms/%21room%3Aexample.org"),
        json = rx.url("/json"),
        token = token.display(),
    );
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - disk full | used=95%;80;90;0;100");
    let mut d = t.daemon();
    for path in [
        "/slack",
        "/hooks/mm",
        "/api/webhooks",
        "/alerts",
        "/_matrix",
        "/json",
    ] {
        rx.wait_accepted(path, 1);
    }
    t.set_status(0, "OK - fine again");
    for path in [
        "/slack",
        "/hooks/mm",
        "/api/webhooks",
        "/alerts",
        "/_matrix",
        "/json",
    ] {
        rx.wait_accepted(path, 2);
    }

    // Slack and Mattermost: text plus one attachment coloured by state.
    for path in ["/slack", "/hooks/mm"] {
        let got = rx.accepted(path);
        let (p, r) = (body(&got[0]), body(&got[1]));
        assert_eq!(got[0]["method"], "POST");
        assert_eq!(header(&got[0], "Content-Type"), "application/json");
        assert_eq!(p["text"], "Problem: flappy on web1 is CRITICAL", "{p}");
        let a = &p["attachments"][0];
        assert_eq!(a["color"], "#d00000", "{p}");
        assert!(a["fallback"]
            .as_str()
            .unwrap()
            .contains("CRITICAL - disk full"));
        assert!(a["text"].as_str().unwrap().contains("CRITICAL - disk full"));
        assert_eq!(r["text"], "Recovery: flappy on web1 is OK", "{r}");
        assert_eq!(r["attachments"][0]["color"], "#2eb886");
    }
    // Discord: content plus an embed with a decimal colour.
    let got = rx.accepted("/api/webhooks");
    let p = body(&got[0]);
    assert_eq!(p["content"], "Problem: flappy on web1 is CRITICAL");
    assert_eq!(p["embeds"][0]["color"], 0xd00000, "{p}");
    assert!(p["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .contains("disk full"));
    assert!(p["embeds"][0]["timestamp"].as_str().unwrap().ends_with('Z'));
    // ntfy: the output as the body, title, priority and tags as headers.
    let got = rx.accepted("/alerts");
    assert_eq!(
        got[0]["body"].as_str().unwrap().trim(),
        "CRITICAL - disk full"
    );
    assert_eq!(
        header(&got[0], "Title"),
        "Problem: flappy on web1 is CRITICAL"
    );
    assert_eq!(header(&got[0], "Priority"), "5");
    assert!(header(&got[0], "Tags").contains("rotating_light"));
    assert_eq!(header(&got[1], "Priority"), "3");
    assert!(header(&got[1], "Tags").contains("white_check_mark"));
    // Matrix: a PUT of m.room.message with a transaction id, the token as
    // a bearer; two posts, two transaction ids.
    let got = rx.accepted("/_matrix");
    let prefix = "/_matrix/client/v3/rooms/%21room%3Aexample.org/send/m.room.message/";
    for r in &got {
        assert_eq!(r["method"], "PUT");
        assert!(r["path"].as_str().unwrap().starts_with(prefix), "{r}");
        assert_eq!(header(r, "Authorization"), format!("Bearer {sb_token}"));
        assert_eq!(body(r)["msgtype"], "m.text");
    }
    assert_ne!(got[0]["path"], got[1]["path"]);
    assert!(body(&got[0])["body"]
        .as_str()
        .unwrap()
        .starts_with("Problem: flappy on web1 is CRITICAL\nCRITICAL - disk full"));
    // picomon's JSON object, with the configured header.
    let got = rx.accepted("/json");
    let p = body(&got[0]);
    assert_eq!(header(&got[0], "X-Api-Key"), "hdr-sekrit-77");
    assert_eq!(p["kind"], "problem");
    assert_eq!(p["state"], "CRITICAL");
    assert_eq!(p["check"], "flappy");
    assert_eq!(p["target"], "web1");
    // The summary without perfdata, which has its own field; `previous`
    // is the last state announced.
    assert_eq!(p["summary"], "CRITICAL - disk full");
    assert_eq!(p["perfdata"], "used=95%;80;90;0;100");
    assert_eq!(p["output"], "CRITICAL - disk full | used=95%;80;90;0;100");
    assert_eq!(p["previous"], "OK");
    // No chat text carries the perfdata.
    for path in [
        "/slack",
        "/hooks/mm",
        "/api/webhooks",
        "/alerts",
        "/_matrix",
    ] {
        let got = rx.accepted(path);
        let seen = got[0]["body"].to_string();
        assert!(!seen.contains("used=95%"), "{path}: {seen}");
    }
    assert!(p["thread"].as_str().unwrap().starts_with("picomon."));
    let r = body(&got[1]);
    assert_eq!(r["kind"], "recovery");
    assert_eq!(r["previous"], "CRITICAL");
    assert_eq!(r["since"], p["since"], "one outage, one thread");
    assert_eq!(r["thread"], p["thread"]);

    // The secrets are nowhere but in the requests: not in the log, the
    // status, the dump or the queue folders.
    let status = wait_for("the empty queues in the status", || {
        let status = t.status();
        status.contains("slack queue: empty").then_some(status)
    });
    d.signal(libc::SIGUSR1);
    assert!(d.wait_stdout("matrix queue", DEADLINE));
    d.stop();
    let mut seen = format!("{}{}{status}", d.stderr(), d.stdout());
    for f in walk(&t.dir().join("state")) {
        seen.push_str(&String::from_utf8_lossy(&fs::read(f).unwrap_or_default()));
    }
    // The token file was left readable by others: picomon says so.
    assert!(
        d.stderr().contains("config.notify matrix: secret_file")
            && d.stderr().contains("is readable by other users"),
        "{}",
        d.stderr()
    );
    for secret in [sb_token, "hdr-sekrit-77", "XXXXsecretpath"] {
        assert!(!seen.contains(secret), "{secret} leaked:\n{seen}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_receiver_down_then_failing_then_up_gets_each_transition_once_in_order() {
    let probe = Sandbox::new();
    let (held, port) = reserve_port();
    // A second channel that works all along: the first one's outage must
    // not hold it back.
    let other = Receiver::start(probe.dir.path(), "other", 0, &[]);
    let notify = format!(
        r#"[
    webhook("http://127.0.0.1:{port}/hook", #{{ name: "hook", retry: 0.2 }}),
    webhook("{other}", #{{ name: "other" }}),
]"#,
        other = other.url("/other")
    );
    let (held_http, http) = reserve_port();
    let t = Rig::with(
        &notify,
        "",
        &format!("config.listen = \"127.0.0.1:{http}\";"),
    );
    drop(held_http);
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    other.wait_accepted("/other", 1);
    // The Problem waits in the down channel's queue; the status says why.
    let status = wait_for("the queued post and its error in the status", || {
        let status = t.status();
        (status.contains("hook queue: 1 waiting")
            && status.contains("last notification hook delivery error")
            && status.contains("cannot reach http://127.0.0.1:"))
        .then_some(status)
    });
    assert!(
        !status.contains("/hook"),
        "the URL path is not shown: {status}"
    );
    // /metrics counts what each channel still owes.
    wait_for("the pending post in /metrics", || {
        let mut resp = ureq::get(&format!("http://127.0.0.1:{http}/metrics"))
            .call()
            .ok()?;
        let m = resp.body_mut().read_to_string().ok()?;
        (m.contains("picomon_notifications_pending{channel=\"hook\"} 1")
            && m.contains("picomon_notifications_pending{channel=\"other\"} 0")
            && m.contains("picomon_notifications_pending{channel=\"mail\"} 0"))
        .then_some(())
    });
    // The receiver comes up but refuses twice with 500 while the Update
    // and the Recovery happen; then it takes everything.
    drop(held);
    let rx = Receiver::start(probe.dir.path(), "hook", port, &[500, 500]);
    t.set_status(1, "WARNING - degraded");
    other.wait_accepted("/other", 2);
    t.set_status(0, "OK - back");
    other.wait_accepted("/other", 3);
    let got = rx.wait_accepted("/hook", 3);
    wait_for("the queue emptied", || {
        t.queued("hook").is_empty().then_some(())
    });
    let all = rx.requests();
    let answers: Vec<u64> = all.iter().map(|r| r["answer"].as_u64().unwrap()).collect();
    assert_eq!(answers, vec![500, 500, 200, 200, 200], "{all:?}");
    let kinds: Vec<Value> = got.iter().map(|r| body(r)["kind"].clone()).collect();
    assert_eq!(kinds, vec!["problem", "update", "recovery"]);
    // The refused tries were of the first post, which came through once.
    assert_eq!(all[0]["body"], all[2]["body"]);
    d.stop();
    assert_eq!(
        rx.requests().len(),
        5,
        "nothing more after the queue emptied"
    );
}

#[test]
fn a_post_refused_with_4xx_three_times_goes_to_failed_with_the_reason() {
    let probe = Sandbox::new();
    let rx = Receiver::start(probe.dir.path(), "hook", 0, &[404, 404, 404]);
    let notify = format!(
        r#"[webhook("{}", #{{ format: "slack", name: "chat", retry: 0.2 }})]"#,
        rx.url("/services/bad")
    );
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    let failed_dir = t.dir().join("state/notify/chat/failed");
    let failed = wait_for("the refused post in failed/", || {
        files(&failed_dir, ".post").pop()
    });
    let text = fs::read_to_string(&failed).unwrap();
    assert!(
        text.contains("reason: refused 3 times, last: http://127.0.0.1:")
            && text.contains("answered HTTP 404"),
        "{text}"
    );
    assert!(!text.contains("/services/bad"), "{text}");
    assert!(text.contains("\"text\":\"Problem: flappy on web1 is CRITICAL\""));
    // The channel goes on: the recovery is delivered.
    t.set_status(0, "OK - back");
    let got = rx.wait_accepted("/services/bad", 1);
    assert_eq!(body(&got[0])["text"], "Recovery: flappy on web1 is OK");
    wait_for("the failed post in the status", || {
        t.status()
            .contains("notification chat failed: 1 in")
            .then_some(())
    });
    d.stop();
}

#[test]
fn command_gets_the_transition_on_stdin_and_in_its_environment_through_the_filters() {
    let probe = Sandbox::new();
    let dirs: Vec<PathBuf> = ["all", "recoveries", "other", "picked"]
        .iter()
        .map(|n| {
            let p = probe.path(n);
            fs::create_dir(&p).unwrap();
            p
        })
        .collect();
    let script = repo("tests/notify/record.sh");
    let notify = format!(
        r#"[
    command("{s}", ["{a}"], #{{ name: "all" }}),
    command("{s}", ["{b}"], #{{ name: "recoveries", states: ["recovery"] }}),
    command("{s}", ["{c}"], #{{ name: "other", match: "db*" }}),
    command("{s}", ["{d}"], #{{ name: "picked" }}),
]"#,
        s = script.display(),
        a = dirs[0].display(),
        b = dirs[1].display(),
        c = dirs[2].display(),
        d = dirs[3].display(),
    );
    // The check picks two channels by name: "other" and "picked"; "all"
    // and "recoveries" are not picked, so they get nothing.
    let t = Rig::new(&notify, r#", notify: ["other", "picked"]"#);
    t.set_status(2, "CRITICAL - it's \"quoted\" $HOME `id`");
    let mut d = t.daemon();
    // The script writes its environment after its whole stdin.
    let env = wait_for("the picked channel's run", || {
        fs::read_to_string(dirs[3].join("env.0"))
            .ok()
            .filter(|e| !e.is_empty())
    });
    let stdin = fs::read_to_string(dirs[3].join("stdin.0")).unwrap();
    let v: Value = serde_json::from_str(&stdin).expect("JSON on stdin");
    assert_eq!(v["kind"], "problem");
    assert_eq!(v["check"], "flappy");
    assert_eq!(v["output"], "CRITICAL - it's \"quoted\" $HOME `id`");
    for line in [
        "PICOMON_STATE=CRITICAL",
        "PICOMON_KIND=problem",
        "PICOMON_CHECK=flappy",
        "PICOMON_TARGET=web1",
        "PICOMON_SUMMARY=CRITICAL - it's \"quoted\" $HOME `id`",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing in\n{env}");
    }
    assert!(env.contains(&format!("PICOMON_THREAD={}", v["thread"].as_str().unwrap())));
    t.set_status(0, "OK");
    wait_for("the recovery run", || {
        dirs[3].join("env.1").exists().then_some(())
    });
    d.stop();
    // "other" is picked but its match (db*) does not take web1's check;
    // "all" and "recoveries" are not picked.
    for dir in &dirs[..3] {
        assert!(files(dir, "").is_empty(), "{} got runs", dir.display());
    }
}

#[test]
fn a_failing_command_is_retried_until_it_succeeds() {
    let probe = Sandbox::new();
    let out = probe.path("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("exit"), "1").unwrap();
    let notify = format!(
        r#"[command("{}", ["{}"], #{{ name: "cmd", retry: 0.2 }})]"#,
        repo("tests/notify/record.sh").display(),
        out.display()
    );
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    wait_for("two failed runs", || {
        out.join("stdin.1").exists().then_some(())
    });
    // The status is refreshed every tick.
    wait_for("the failure in the status", || {
        let status = t.status();
        (status.contains("last notification cmd delivery error") && status.contains("(WARNING)"))
            .then_some(())
    });
    assert_eq!(t.queued("cmd").len(), 1, "kept while the command fails");
    fs::remove_file(out.join("exit")).unwrap();
    wait_for("the queue emptied", || {
        t.queued("cmd").is_empty().then_some(())
    });
    d.stop();
}

/// Debian's Alertmanager on a free loopback port, alone, with a receiver
/// that sends nothing, and its own config and storage in `dir`.
fn alertmanager(dir: &Path, port: u16) -> Peer {
    let nobody = "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n";
    alertmanager_node(dir, port, nobody, None)
}

/// Debian's Alertmanager on loopback port `port` with the config `yaml`,
/// its config and storage in `dir`; `gossip` is `(its own cluster port,
/// its peer's)` for a member of a two-node cluster, `None` for one alone.
fn alertmanager_node(dir: &Path, port: u16, yaml: &str, gossip: Option<(u16, u16)>) -> Peer {
    let bin = Path::new("/usr/bin/prometheus-alertmanager");
    assert!(
        bin.exists(),
        "{} is missing: apt-get install prometheus-alertmanager (tests/install-and-test does)",
        bin.display()
    );
    let cfg = dir.join(format!("alertmanager-{port}.yml"));
    fs::write(&cfg, yaml).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.join(format!("am-data-{port}")).display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    match gossip {
        None => {
            cmd.arg("--cluster.listen-address=");
        }
        Some((own, peer)) => {
            // The second member waits this long for the first one's
            // notification to be gossiped before it sends its own.
            cmd.arg(format!("--cluster.listen-address=127.0.0.1:{own}"))
                .arg(format!("--cluster.peer=127.0.0.1:{peer}"))
                .arg("--cluster.peer-timeout=2s");
        }
    }
    Peer::spawn("alertmanager", cmd, port)
}

/// Whether the Alertmanager on `port` has joined a cluster of `n` members
/// and settled (it sends no notification before).
fn am_settled(port: u16, n: usize) -> bool {
    let Ok(mut resp) = ureq::get(&format!("http://127.0.0.1:{port}/api/v2/status")).call() else {
        return false;
    };
    let status: Value = resp
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let cluster = &status["cluster"];
    cluster["status"] == "ready" && cluster["peers"].as_array().map(Vec::len) == Some(n)
}

/// The alerts Alertmanager holds (resolved ones are not listed).
fn am_alerts(port: u16) -> Option<Vec<Value>> {
    let mut resp = ureq::get(&format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .call()
        .ok()?;
    let text = resp.body_mut().read_to_string().ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.as_array().cloned()
}

#[test]
fn alertmanager_down_during_the_problem_gets_the_alert_then_sees_it_resolved() {
    let probe = Sandbox::new();
    let (held, port) = reserve_port();
    let notify = format!(
        r#"[alertmanager("http://127.0.0.1:{port}", #{{ name: "am", labels: #{{ team: "ops" }}, retry: 0.5, repeat: 1 }})]"#
    );
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - disk full | used=95%;80;90;0;100");
    let mut d = t.daemon();
    // Alertmanager is down: the alert waits in the channel's queue.
    wait_for("the alert queued", || {
        (!t.queued("am").is_empty()).then_some(())
    });
    wait_for("a failed delivery in the status", || {
        t.status()
            .contains("last notification am delivery error")
            .then_some(())
    });
    drop(held);
    let _am = alertmanager(probe.dir.path(), port);
    let alert = wait_for("the firing alert in Alertmanager", || {
        am_alerts(port)?
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "flappy")
    });
    let labels = &alert["labels"];
    assert_eq!(labels["instance"], "web1", "{alert}");
    assert_eq!(labels["severity"], "critical", "{alert}");
    assert_eq!(labels["team"], "ops", "{alert}");
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert_eq!(alert["annotations"]["summary"], "CRITICAL - disk full");
    assert_eq!(alert["annotations"]["perfdata"], "used=95%;80;90;0;100");
    assert_eq!(alert["annotations"]["description"], "CRITICAL - disk full");
    // Re-posted while in PROBLEM: still there after several repeats.
    let updated = alert["updatedAt"].clone();
    wait_for("a repeat of the alert", || {
        am_alerts(port)?
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "flappy" && a["updatedAt"] != updated)
    });
    // A new severity is a new alert (labels are its identity): the
    // critical one is resolved, the warning one fires.
    t.set_status(1, "WARNING - disk filling");
    wait_for("the warning alert alone", || {
        let alerts = am_alerts(port)?;
        let ours: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "flappy")
            .collect();
        (ours.len() == 1 && ours[0]["labels"]["severity"] == "warning").then_some(())
    });
    // Recovery: endsAt is set, Alertmanager no longer lists it as firing
    // (its own resolve timeout is 5 minutes, far beyond this wait).
    t.set_status(0, "OK - fine");
    wait_for("the alert resolved", || {
        let alerts = am_alerts(port)?;
        (!alerts.iter().any(|a| a["labels"]["alertname"] == "flappy")).then_some(())
    });
    d.stop();
}

/// The value of the metric `name` (without labels) of the Alertmanager on
/// `port`; `None` while it does not answer.
fn am_metric(port: u16, name: &str) -> Option<f64> {
    let mut resp = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()?;
    let text = resp.body_mut().read_to_string().ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A picomon of the cluster test: its own state and runs file, the same
/// check ("flappy on web1", the status in `shared`) as the other one,
/// posting to every instance of the cluster.
fn cluster_member(shared: &Path, am_ports: [u16; 2]) -> (Sandbox, Daemon) {
    let sb = Sandbox::new();
    let plugin = repo("tests/smtp/status-plugin.sh");
    sb.config(&format!(
        r#"
config.base_tick = 0.3;
config.state_dir = "@DIR@/state";
config.notify = [alertmanager(["http://127.0.0.1:{a}", "http://127.0.0.1:{b}"], #{{ name: "am", retry: 0.5, repeat: 30 }})];
add(plugin("{plugin}", ["@DIR@/runs", "{shared}/status"]), #{{ name: "flappy", target_name: "web1", retry: 1 }});
"#,
        a = am_ports[0],
        b = am_ports[1],
        plugin = plugin.display(),
        shared = shared.display(),
    ));
    let cfg = sb.path("config.rhai").display().to_string();
    let d = Daemon::start_anew(sb.dir.path(), &["-c", &cfg]);
    (sb, d)
}

/// `picomon status` of a cluster member.
fn member_status(sb: &Sandbox) -> String {
    let cfg = sb.path("config.rhai").display().to_string();
    String::from_utf8_lossy(&sb.run(&["-c", &cfg, "status"]).stdout).into_owned()
}

/// Whether a cluster member has delivered everything to both instances
/// (`am` and `am@2`), at least once each.
fn member_delivered(sb: &Sandbox) -> bool {
    let status = member_status(sb);
    ["am", "am@2"].iter().all(|q| {
        files(&sb.path("state/notify").join(q), ".post").is_empty()
            && status.contains(&format!("last notification {q} delivered"))
    })
}

/// The severities of the alerts of "flappy" that the instance on `port`
/// lists as firing; `None` while it does not answer.
fn am_firing(port: u16) -> Option<Vec<String>> {
    let mut sev: Vec<String> = am_alerts(port)?
        .iter()
        .filter(|a| a["labels"]["alertname"] == "flappy")
        .map(|a| a["labels"]["severity"].as_str().unwrap_or("").to_string())
        .collect();
    sev.sort();
    Some(sev)
}

/// Two picomons checking the same thing, each posting to both members of
/// a two-node Alertmanager cluster, which dedup their notifications over
/// gossip: the webhook behind the cluster hears of the incident once and
/// of its end once. Then WARNING, CRITICAL, a sticky ack, WARNING and OK
/// leave nothing firing on either member, long before the alerts' endsAt
/// (4 x 30 s) would end them.
#[test]
fn two_picomons_into_an_alertmanager_cluster_notify_once_and_resolve_once() {
    let probe = Sandbox::new();
    let dir = probe.dir.path();
    let rx = Receiver::start(dir, "receiver", 0, &[]);
    // The group's next flush comes long after both members decided about
    // its first and the recovery reached them: a member that flushed while
    // the alert fired and decides after the other told its end tells the
    // alert again (Alertmanager's rule), so group_interval is well above
    // --cluster.peer-timeout, as in production (5 min and 15 s).
    let yaml = format!(
        "route:\n  receiver: hook\n  group_by: [alertname, instance]\n  group_wait: 1s\n  \
         group_interval: 15s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
         webhook_configs:\n      - url: {}\n        send_resolved: true\n",
        rx.url("/am")
    );
    let ports: Vec<u16> = (0..4).map(|_| reserve_port()).map(|(_, p)| p).collect();
    let (web, gossip) = ([ports[0], ports[1]], [ports[2], ports[3]]);
    let _am1 = alertmanager_node(dir, web[0], &yaml, Some((gossip[0], gossip[1])));
    let _am2 = alertmanager_node(dir, web[1], &yaml, Some((gossip[1], gossip[0])));
    wait_for("both members in one settled cluster", || {
        (am_settled(web[0], 2) && am_settled(web[1], 2)).then_some(())
    });

    support::set_plugin_status(dir, 2, "CRITICAL - disk full");
    let (a, mut da) = cluster_member(dir, web);
    let (b, mut db) = cluster_member(dir, web);
    // What the receiver was told, by which member: for failure messages.
    let told = || -> Vec<String> {
        rx.accepted("/am")
            .iter()
            .map(body)
            .map(|n| {
                let alerts: Vec<String> = n["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {} from {}",
                            a["status"], a["labels"]["severity"], a["startsAt"]
                        )
                    })
                    .collect();
                format!(
                    "{} by {}: {}",
                    n["status"],
                    n["externalURL"],
                    alerts.join(", ")
                )
            })
            .collect()
    };
    let notes = |status: &str| -> Vec<Value> {
        rx.accepted("/am")
            .iter()
            .map(body)
            .filter(|n| n["status"] == status)
            .collect()
    };
    let firing = wait_for("the firing notification", || {
        notes("firing").into_iter().next()
    });
    // Same labels from both picomons: one alert, none naming its sender.
    let alerts = firing["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{firing}");
    let labels = alerts[0]["labels"].as_object().unwrap();
    assert_eq!(labels.len(), 3, "{firing}");
    assert_eq!(labels["alertname"], "flappy");
    assert_eq!(labels["instance"], "web1");
    assert_eq!(labels["severity"], "critical");
    wait_for("both picomons delivered to both members", || {
        (member_delivered(&a) && member_delivered(&b)).then_some(())
    });
    for port in web {
        assert_eq!(am_firing(port).unwrap(), ["critical"], "member {port}");
    }
    // The members looked the incident up in their shared notification log
    // (the second after waiting --cluster.peer-timeout): both decided. An
    // incident shorter than that wait may be told twice, by Alertmanager's
    // own design.
    wait_for("both members decided about the notification", || {
        web.iter()
            .all(|&p| am_metric(p, "alertmanager_nflog_queries_total").is_some_and(|n| n >= 1.0))
            .then_some(())
    });

    support::set_plugin_status(dir, 0, "OK - fine");
    let resolved = wait_for("the resolve notification", || {
        notes("resolved").into_iter().next()
    });
    assert_eq!(resolved["alerts"][0]["labels"]["severity"], "critical");
    wait_for("nothing firing on either member", || {
        web.iter()
            .all(|&p| am_firing(p).is_some_and(|s| s.is_empty()))
            .then_some(())
    });
    wait_for("both recoveries delivered to both members", || {
        (member_delivered(&a) && member_delivered(&b)).then_some(())
    });
    // The notifications of this incident: its alert starts when the first
    // picomon saw it fail (later ones are another incident).
    let starts = firing["alerts"][0]["startsAt"].clone();
    let of_incident = |status: &str| {
        notes(status)
            .into_iter()
            .filter(|n| {
                n["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["startsAt"] == starts)
            })
            .count()
    };
    assert_eq!(of_incident("firing"), 1, "{:#?}", told());
    assert_eq!(of_incident("resolved"), 1, "{:#?}", told());

    // WARNING -> CRITICAL -> sticky ack -> WARNING -> OK.
    let on_both = |what: &str, want: &[&str], within: Duration| {
        let mut seen = Vec::new();
        let got = support::wait::wait_for(within, || {
            seen = web.iter().map(|&p| am_firing(p)).collect();
            seen.iter()
                .all(|s| s.as_ref().is_some_and(|s| s == want))
                .then_some(())
        });
        assert!(
            got.is_some(),
            "timed out waiting for {what}: firing {seen:?}"
        );
    };
    support::set_plugin_status(dir, 1, "WARNING - disk filling");
    on_both("the warning alert on both members", &["warning"], DEADLINE);
    support::set_plugin_status(dir, 2, "CRITICAL - disk full");
    on_both("the critical alert alone", &["critical"], DEADLINE);
    for sb in [&a, &b] {
        let cfg = sb.path("config.rhai").display().to_string();
        let out = sb.run(&["-c", &cfg, "ack", "flappy", "--sticky", "-m", "on it"]);
        assert!(out.status.success(), "{out:?}");
    }
    support::set_plugin_status(dir, 1, "WARNING - disk filling");
    for sb in [&a, &b] {
        let runs = support::count_lines(&sb.path("runs"));
        assert!(
            sb.wait_lines("runs", runs + 2, DEADLINE),
            "runs of the WARNING"
        );
    }
    support::set_plugin_status(dir, 0, "OK - fine");
    // Well within the 120 s the critical alert's endsAt gives it.
    on_both(
        "nothing firing after the recovery",
        &[],
        Duration::from_secs(60),
    );
    // Counted again once the second member, which sends only what the
    // first has not (after waiting --cluster.peer-timeout), has long
    // decided about the first incident.
    assert_eq!(of_incident("firing"), 1, "{:#?}", told());
    assert_eq!(of_incident("resolved"), 1, "{:#?}", told());
    da.stop();
    db.stop();
}

#[test]
fn apprise_through_command_delivers_to_a_json_receiver() {
    let apprise = Path::new("/opt/picomon-test-venv/bin/apprise");
    assert!(
        apprise.exists(),
        "Apprise is missing at {}: run tests/install-and-test (it makes the venv: \
         python3 -m venv /opt/picomon-test-venv && /opt/picomon-test-venv/bin/pip install apprise)",
        apprise.display()
    );
    let probe = Sandbox::new();
    let rx = Receiver::start(probe.dir.path(), "apprise", 0, &[]);
    let target = format!("json://127.0.0.1:{}/apprise", rx.port);
    let notify = format!(
        r#"[command("{}", ["-t", "picomon", "{target}"], #{{ name: "apprise", timeout: 60 }})]"#,
        apprise.display()
    );
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - via apprise");
    let mut d = t.daemon();
    let got = rx.wait_accepted("/apprise", 1);
    let p = body(&got[0]);
    assert_eq!(p["title"], "picomon", "{p}");
    // Apprise's message is what picomon wrote on its stdin.
    let m: Value = serde_json::from_str(p["message"].as_str().unwrap().trim()).expect("{p}");
    assert_eq!(m["kind"], "problem");
    assert_eq!(m["output"], "CRITICAL - via apprise");
    wait_for("the queue emptied", || {
        t.queued("apprise").is_empty().then_some(())
    });
    d.stop();
}

#[test]
fn config_mistakes_in_channels_name_the_setting() {
    let cases = [
        (
            r#"config.notify = [webhook("http://127.0.0.1:1/x", #{ format: "teams" })];"#,
            "format \"teams\" is unknown",
        ),
        (
            r#"config.notify = [webhook("http://127.0.0.1:1/x", #{ format: "matrix" })];"#,
            "needs secret_file",
        ),
        (
            r#"config.notify = [webhook("http://127.0.0.1:1/x", #{ colour: 1 })];"#,
            "unknown option `colour`",
        ),
        (
            r#"config.notify = [command("notify-send")];"#,
            "must be an absolute path",
        ),
        (
            r#"config.notify = [alertmanager("http://127.0.0.1:1", #{ labels: #{ severity: "x" } })];"#,
            "is set by picomon",
        ),
        (
            r#"config.notify = [alertmanager([])];"#,
            "the list of URLs is empty",
        ),
        (
            r#"config.notify = [alertmanager(["http://127.0.0.1:9093", "http://127.0.0.1:9093/"])];"#,
            "http://127.0.0.1:9093 is listed twice",
        ),
        (
            r#"config.notify = [alertmanager(["http://127.0.0.1:9093", 9094])];"#,
            "URLs must be strings",
        ),
        (
            r#"config.notify = [webhook("http://127.0.0.1:1/a", #{ name: "x" }), command("/bin/true", [], #{ name: "x" })];"#,
            "share the name \"x\"",
        ),
        (
            "config.notify = [webhook(\"http://127.0.0.1:1/a\", #{ name: \"chat\" })];\n\
             add(shell(\"true\"), #{ name: \"t\", notify: [\"chta\"] });",
            "notify names the channel \"chta\"",
        ),
    ];
    for (text, want) in cases {
        let err = picomon::config::load_str(Path::new("/etc/picomon/t.rhai"), text)
            .map(|_| ())
            .expect_err(text)
            .to_string();
        assert!(err.contains(want), "{text}: {err}");
        assert!(err.starts_with("/etc/picomon/t.rhai:"), "{err}");
    }
    let fine = picomon::config::load_str(
        Path::new("/etc/picomon/t.rhai"),
        "config.notify = [webhook(\"http://127.0.0.1:1/a\", #{ name: \"chat\", states: [\"problem\"] })];\n\
         add(shell(\"true\"), #{ name: \"t\", notify: [\"chat\"] });",
    )
    .unwrap();
    assert_eq!(fine.notify.len(), 1);
    assert_eq!(fine.notify_picks["t"], vec!["chat"]);
    // --check-config names the channels, never a URL's path.
    let sb = Sandbox::new();
    let cfg = sb.config(
        "config.state_dir = \"@DIR@/state\";\n\
         config.notify = [webhook(\"https://hooks.example.org/services/T0/B0/sekrit\", #{ format: \"slack\", name: \"chat\" })];",
    );
    let out = sb.run(&["-c", &cfg.display().to_string(), "--check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Transitions also go to chat = slack(https://hooks.example.org/…)"),
        "{text}"
    );
    assert!(!text.contains("sekrit"), "{text}");
    let cluster = sb.config(
        "config.state_dir = \"@DIR@/state\";\n\
         config.notify = [alertmanager([\"http://am1:9093\", \"http://am2:9093\"], #{ name: \"am\" })];",
    );
    let out = sb.run(&["-c", &cluster.display().to_string(), "--check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("am = alertmanager(http://am1:9093, http://am2:9093)"),
        "{text}"
    );
}

#[test]
fn many_failures_in_one_tick_are_one_chat_digest_and_one_alertmanager_post() {
    let probe = Sandbox::new();
    let rx = Receiver::start(probe.dir.path(), "receiver", 0, &[]);
    // A tick of 3 s, so the 8 runs of tick 0 end within it even on a
    // loaded machine (see mail's digest test).
    let sb = Sandbox::new();
    sb.config(&format!(
        r#"
config.base_tick = 3;
config.state_dir = "@DIR@/state";
config.notify = [
    webhook("{chat}", #{{ format: "mattermost", name: "chat" }}),
    webhook("{json}", #{{ name: "json" }}),
    alertmanager("{am}", #{{ name: "am" }}),
];
for i in 0..8 {{ add(plugin("check_dummy", ["2", "down " + i]), #{{ name: "c" + i, target_name: "web1", retry: 0 }}); }}
"#,
        chat = rx.url("/chat"),
        json = rx.url("/json"),
        am = rx.url("/am"),
    ));
    let cfg = sb.path("config.rhai").display().to_string();
    let mut d = Daemon::start_anew(sb.dir.path(), &["-c", &cfg]);
    let chat = rx.wait_accepted("/chat", 1);
    let json = rx.wait_accepted("/json", 8);
    let am = rx.wait_accepted("/am/api/v2/alerts", 1);
    let p = body(&chat[0]);
    assert_eq!(
        p["text"],
        format!("Digest: 8 changes on {}", picomon::host::this_host())
    );
    let text = p["attachments"][0]["text"].as_str().unwrap();
    for i in 0..8 {
        assert!(
            text.contains(&format!(
                "PROBLEM CRITICAL: c{i} on web1: CRITICAL: down {i}"
            )),
            "{text}"
        );
    }
    assert_eq!(p["attachments"][0]["color"], "#d00000");
    // Machines get every transition: one JSON object each, one
    // Alertmanager post with all eight alerts.
    assert!(json.iter().all(|r| body(r)["kind"] == "problem"));
    assert_eq!(body(&am[0]).as_array().unwrap().len(), 8);
    d.stop();
    assert_eq!(rx.accepted("/chat").len(), 1, "one digest, not 8 messages");
}

#[test]
fn a_post_queued_before_sigkill_is_delivered_once_by_the_next_daemon() {
    let probe = Sandbox::new();
    let (held, port) = reserve_port();
    let notify = format!(r#"[webhook("http://127.0.0.1:{port}/hook", #{{ name: "hook" }})]"#);
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    wait_for("the Problem queued", || {
        (t.queued("hook").len() == 1).then_some(())
    });
    // The state is saved after the tick that queued it; wait for it, then
    // kill without a chance to deliver or clean up.
    wait_for("the state saved in PROBLEM", || {
        support::read(&t.dir().join("state/state"))
            .to_lowercase()
            .contains("\"phase\": \"problem\"")
            .then_some(())
    });
    d.kill();
    drop(held);
    let rx = Receiver::start(probe.dir.path(), "hook", port, &[]);
    let mut d = t.daemon();
    let got = rx.wait_accepted("/hook", 1);
    assert_eq!(body(&got[0])["kind"], "problem");
    wait_for("the queue emptied", || {
        t.queued("hook").is_empty().then_some(())
    });
    // Still CRITICAL after the restart: no second Problem. The recovery
    // comes next, and only it.
    t.set_status(0, "OK");
    let got = rx.wait_accepted("/hook", 2);
    assert_eq!(body(&got[1])["kind"], "recovery");
    d.stop();
    assert_eq!(rx.requests().len(), 2, "{:?}", rx.requests());
}

#[test]
fn an_acknowledgement_reaches_the_channels_that_take_it() {
    let probe = Sandbox::new();
    let rx = Receiver::start(probe.dir.path(), "receiver", 0, &[]);
    let notify = format!(
        r#"[
    webhook("{all}", #{{ name: "all" }}),
    webhook("{problems}", #{{ name: "problems", states: ["problem"] }}),
]"#,
        all = rx.url("/all"),
        problems = rx.url("/problems")
    );
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    rx.wait_accepted("/all", 1);
    rx.wait_accepted("/problems", 1);
    let cfg = t.sb.path("config.rhai").display().to_string();
    let out = t.sb.run(&["-c", &cfg, "ack", "flappy", "-m", "on it"]);
    assert!(out.status.success(), "{out:?}");
    let got = rx.wait_accepted("/all", 2);
    let ack = body(&got[1]);
    assert_eq!(ack["kind"], "acknowledgement", "{ack}");
    assert_eq!(ack["check"], "flappy");
    assert!(
        ack["output"]
            .as_str()
            .unwrap()
            .starts_with("Acknowledged by "),
        "{ack}"
    );
    assert!(
        ack["output"].as_str().unwrap().ends_with(": on it"),
        "{ack}"
    );
    assert_eq!(
        ack["thread"],
        body(&got[0])["thread"],
        "in the outage's thread"
    );
    t.set_status(0, "OK");
    rx.wait_accepted("/all", 3);
    d.stop();
    // The problems-only channel got the Problem and nothing else.
    assert_eq!(rx.accepted("/problems").len(), 1);
}

#[test]
fn a_full_state_dir_still_notifies_from_memory_once() {
    if !support::mounts::can_mount("a_full_state_dir_still_notifies_from_memory_once") {
        return;
    }
    let probe = Sandbox::new();
    let (held, port) = reserve_port();
    let notify = format!(
        r#"[webhook("http://127.0.0.1:{port}/hook", #{{ name: "hook", match: "flappy", retry: 0.2 }})]"#
    );
    let t = Rig::new(&notify, "");
    let fsys = support::mounts::Tmpfs::mount(&t.dir().join("state"), "2m");
    t.set_status(0, "OK - fine");
    let mut d = t.daemon();
    wait_for("the channel's queue folder", || {
        t.dir().join("state/notify/hook").is_dir().then_some(())
    });
    let fill = fsys.fill("fill");
    t.set_status(2, "CRITICAL - disk full");
    wait_for("the post kept in memory", || {
        d.stderr().contains("it is kept in memory").then_some(())
    });
    d.signal(libc::SIGUSR1);
    wait_for("the memory queue in the dump", || {
        d.stdout()
            .contains("notification hook in memory: 1 waiting")
            .then_some(())
    });
    assert!(
        t.queued("hook").is_empty(),
        "the disk is full, yet a post was written"
    );
    // The receiver comes while the disk is still full: sent from memory.
    drop(held);
    let rx = Receiver::start(probe.dir.path(), "hook", port, &[]);
    let got = rx.wait_accepted("/hook", 1);
    assert_eq!(body(&got[0])["kind"], "problem");
    fs::remove_file(&fill).unwrap();
    t.set_status(0, "OK - back");
    let got = rx.wait_accepted("/hook", 2);
    assert_eq!(body(&got[1])["kind"], "recovery");
    assert!(d.stop().success(), "{}", d.stderr());
    assert!(t.queued("hook").is_empty());
    assert_eq!(rx.requests().len(), 2, "each once: {:?}", rx.requests());
}

#[test]
fn a_hanging_command_is_killed_at_shutdown_and_its_post_kept() {
    let probe = Sandbox::new();
    let pid_file = probe.path("pid");
    let notify = format!(
        r#"[command("{}", ["{}"], #{{ name: "hang", timeout: 3000 }})]"#,
        repo("tests/notify/hang.sh").display(),
        pid_file.display()
    );
    let t = Rig::new(&notify, "");
    t.set_status(2, "CRITICAL - down");
    let mut d = t.daemon();
    let pid: i32 = wait_for("the command running", || {
        fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    assert!(support::alive(pid));
    // SIGTERM: picomon stops in bounded time, and takes the command with it.
    assert!(d.stop().success(), "{}", d.stderr());
    wait_for("the command gone", || (!support::alive(pid)).then_some(()));
    assert_eq!(t.queued("hang").len(), 1, "kept for the next start");
}
