//! The read-only HTTP listener (`config.listen`) on the real binary, with
//! real peers: Debian's `prometheus` scrapes it every second and is asked
//! through its own HTTP API; Debian's headless `chromium` loads the status
//! page (its DOM and its layout at 1280, 800 and 390 px are checked and
//! its screenshots kept as `target/test-artifacts/http-status-page*.png`). Also: no listener by
//! default, GET and HEAD only, `/api/v1/checks` is `status --json`, a slow
//! client does not hold up another, dripping clients never keep a scrape
//! out, 10,000 sequential requests all answered, the head limit to the
//! byte, a full house answered 503 at once, and a reload starts and stops
//! it.
//!
//! picomon binds port 0 (`127.0.0.1:0`) and logs the port it got, as do
//! Prometheus and our other test servers: no port is guessed.

use crate::support;

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use picomon::deadline::Deadline;
use picomon::web::{MAX_CONNECTIONS, MAX_HEAD};

use support::{listening_port, wait_for, wait_until, Sandbox};

const LONG: Duration = Duration::from_secs(60);

/// A sandbox with the settable test plugin as `flappy` on web1, the
/// checks in `extra`, and `listen`.
fn sandbox(tick: f64, listen: &str, extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    write_config(&sb, tick, listen, extra);
    sb
}

fn write_config(sb: &Sandbox, tick: f64, listen: &str, extra: &str) {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
    let d = sb.dir.path().display().to_string();
    sb.config(&format!(
        r#"
config.base_tick = {tick};
config.state_dir = "{d}/state";
config.listen = "{listen}";
add(plugin("{plugin}", ["{d}/runs", "{d}/status"]), #{{ name: "flappy", target_name: "web1", retry: 0 }});
{extra}
"#,
        plugin = plugin.display()
    ));
}

/// An answer: status code, head (lower-cased header names) and body.
pub(crate) struct Answer {
    pub(crate) code: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends `request` (a whole HTTP/1.1 request) and reads the answer to its
/// end (the listener closes every connection).
fn exchange(port: u16, request: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(LONG)).unwrap();
    s.write_all(request.as_bytes()).expect("send");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read the answer");
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&all)));
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer {
        code,
        head,
        body: all[end + 4..].to_vec(),
    }
}

pub(crate) fn get(port: u16, path: &str) -> Answer {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

/// The checks' JSON once every check has run `runs` times or more (the
/// `runs` file of the test plugin counts flappy's).
fn checks_when_run(port: u16, sb: &Sandbox, runs: usize) -> serde_json::Value {
    wait_until(LONG, "every check to have run", || {
        let a = get(port, "/api/v1/checks");
        let v: serde_json::Value = serde_json::from_slice(&a.body).ok()?;
        let all_ran = v["checks"]
            .as_array()?
            .iter()
            .all(|c| !c["last_run"].is_null());
        (all_ran && support::count_lines(&sb.path("runs")) >= runs).then_some(v)
    })
}

/// A peer process killed (and reaped) when the test ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Debian's Prometheus scraping `target` every second, on a port
/// of its own choosing; returns it and its port (from its log).
fn start_prometheus(dir: &Path, target: u16) -> (Peer, u16) {
    let cfg = dir.join("prometheus.yml");
    fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: picomon\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let log = dir.join("prometheus.log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("run prometheus (apt-get install prometheus)");
    let peer = Peer(child);
    let port = wait_until(LONG, "Prometheus to listen", || {
        let text = support::read(&log);
        let line = text.lines().find(|l| l.contains("msg=\"Listening on\""))?;
        let addr = line.split("address=127.0.0.1:").nth(1)?;
        addr.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    });
    (peer, port)
}

/// `query`'s series by their `check` label, from Prometheus' HTTP API.
fn prom_query(port: u16, query: &str) -> HashMap<String, f64> {
    let a = get(port, &format!("/api/v1/query?query={query}"));
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let mut out = HashMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let check = r["metric"]["check"].as_str().unwrap_or("").to_string();
        let value = r["value"][1].as_str().and_then(|x| x.parse().ok());
        if let Some(value) = value {
            out.insert(check, value);
        }
    }
    out
}

/// picomon's own check, present in every daemon.
const OWN: &str = "picomon state_dir";

fn want(pairs: &[(&str, f64)]) -> HashMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn prometheus_scrapes_every_check_before_and_after_a_failure() {
    let sb = sandbox(
        0.5,
        "127.0.0.1:0",
        r#"
add(plugin("check_dummy", ["0", "steady"]), #{ name: "steady", target_name: "web1" });
add(plugin("check_dummy", ["1", "a bit full"]), #{ name: "warn \"x\" \\ y", target_name: "db1", retry: 0 });
"#,
    );
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    let (_prom, prom_port) = start_prometheus(sb.dir.path(), port);
    let before = want(&[
        ("flappy", 0.0),
        ("steady", 0.0),
        (r#"warn "x" \ y"#, 1.0),
        (OWN, 0.0),
    ]);
    let mut seen = HashMap::new();
    let found = wait_for(LONG, || {
        seen = prom_query(prom_port, "picomon_check_status");
        (seen == before).then_some(())
    });
    assert!(
        found.is_some(),
        "Prometheus has {seen:?}, want {before:?}; its log:\n{}",
        support::read(&sb.path("prometheus.log"))
    );
    assert_eq!(
        prom_query(prom_port, "picomon_check_problem"),
        want(&[
            ("flappy", 0.0),
            ("steady", 0.0),
            (r#"warn "x" \ y"#, 1.0),
            (OWN, 0.0)
        ])
    );
    // The target is healthy in Prometheus' eyes (the exposition parsed).
    let up = get(prom_port, "/api/v1/query?query=up").text();
    assert!(
        up.contains(r#""value":["#) && up.contains(r#","1"]"#),
        "{up}"
    );

    support::set_plugin_status(sb.dir.path(), 2, "broken now");
    let after = want(&[
        ("flappy", 2.0),
        ("steady", 0.0),
        (r#"warn "x" \ y"#, 1.0),
        (OWN, 0.0),
    ]);
    let found = wait_for(LONG, || {
        seen = prom_query(prom_port, "picomon_check_status");
        let problem = prom_query(prom_port, "picomon_check_problem");
        (seen == after && problem.get("flappy") == Some(&1.0)).then_some(())
    });
    assert!(found.is_some(), "Prometheus has {seen:?}, want {after:?}");
    let kinds = get(prom_port, "/api/v1/query?query=picomon_transitions_total").text();
    assert!(kinds.contains(r#""kind":"problem""#), "{kinds}");
}

/// Runs headless chromium with `args` and the page's URL; its stdout.
fn chromium(dir: &Path, args: &[&str], url: &str) -> String {
    let profile = dir.join("chromium-profile");
    let out = dir.join("chromium.out");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(dir.join("chromium.err")).unwrap())
        .spawn()
        .expect("run chromium (apt-get install chromium)");
    let status = wait_for(Duration::from_secs(120), || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "chromium did not finish: {}",
            support::read(&dir.join("chromium.err"))
        );
    }
    support::read(&out)
}

fn artefact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where each check's name and output lie on the page at one window
/// width, measured by Chromium: the page picomon serves, saved with a
/// measuring script added at its end (picomon's own page has no script
/// and its CSP forbids one; the saved copy is opened as a file, without
/// that header, so only the test's script runs).
#[derive(Debug)]
struct Layout {
    /// The viewport's width and the document's scroll width.
    viewport: f64,
    scroll: f64,
    /// The rows in page order.
    rows: Vec<Row>,
}

/// One check's row as laid out; a box is (left, right, top, width).
#[derive(Debug)]
struct Row {
    name: String,
    phase: String,
    muted: bool,
    name_box: [f64; 4],
    out_box: [f64; 4],
}

const MEASURE: &str = r#"<script>
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.right, r.top, r.width]; };
const rows = [...document.querySelectorAll('tr.check')].map(tr => [
  tr.querySelector('.cname').textContent, tr.dataset.phase, tr.classList.contains('muted'),
  box(tr.querySelector('.cname')), box(tr.querySelector('td.out'))]);
document.body.setAttribute('data-layout', JSON.stringify({
  viewport: document.documentElement.clientWidth,
  scroll: document.documentElement.scrollWidth, rows }));
</script>"#;

fn layout(dir: &Path, html: &str, width: u32) -> Layout {
    let file = dir.join(format!("page-{width}.html"));
    fs::write(&file, html.replace("</body>", &format!("{MEASURE}</body>"))).unwrap();
    let dom = chromium(
        dir,
        &["--dump-dom", &format!("--window-size={width},900")],
        &format!("file://{}", file.display()),
    );
    let attr = dom
        .split("data-layout=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no layout measured at {width} px:\n{dom}"));
    let json = attr
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let v: serde_json::Value = serde_json::from_str(&json).expect("the layout JSON");
    let four = |b: &serde_json::Value| -> [f64; 4] {
        std::array::from_fn(|i| b[i].as_f64().unwrap_or(f64::NAN))
    };
    Layout {
        viewport: v["viewport"].as_f64().unwrap(),
        scroll: v["scroll"].as_f64().unwrap(),
        rows: v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Row {
                name: r[0].as_str().unwrap().to_string(),
                phase: r[1].as_str().unwrap().to_string(),
                muted: r[2].as_bool().unwrap(),
                name_box: four(&r[3]),
                out_box: four(&r[4]),
            })
            .collect(),
    }
}

#[test]
fn chromium_renders_the_status_page_with_ok_warning_and_problem_rows() {
    let sb = sandbox(
        0.3,
        "127.0.0.1:0",
        r#"
add(plugin("check_dummy", ["0", "load average: 0.12, 0.10, 0.08"]), #{ name: "load", target_name: "web1" });
add(plugin("check_dummy", ["1", "DISK WARNING - free space: / 812 MB (9% inode=71%) | /=91%;90;95"]), #{ name: "disk", target_name: "db1", retry: 0 });
add(plugin("check_dummy", ["2", "connect to 192.0.2.7:5432 refused <script>x</script>"]), #{ name: "postgres", target_name: "db1", retry: 0 });
add(plugin("check_dummy", ["2", "HTTP CRITICAL: 503 Service Unavailable"]), #{ name: "https", target_name: "www", retry: 100 });
add(plugin("check_dummy", ["0", "PING OK - rta 0.05 ms"]), #{ name: "ping", target_name: "www" });
add(plugin("check_dummy", ["2", "BACKUP CRITICAL - last good backup 3 days ago on /srv/backup/payments-replica-eu-west-1"]), #{ name: "nightly backup of the payments database replica", target_name: "db1", retry: 0 });
add(plugin("check_dummy", ["1", "cron job late"]), #{ name: "cron", target_name: "www", retry: 0 });
add(plugin("check_dummy", ["2", "PING CRITICAL - 100% packet loss"]), #{ name: "router", target_name: "gw", retry: 0 });
add(plugin("check_dummy", ["2", "connection timed out"]), #{ name: "app", target_name: "lan", retry: 0, depends_on: ["router"] });
"#,
    );
    support::set_plugin_status(sb.dir.path(), 0, "HTTP OK: 200 in 0.012 s");
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    // Several runs each, so every sparkline has points.
    checks_when_run(port, &sb, 4);
    for args in [
        &[
            "ack",
            "nightly backup of the payments database replica",
            "-m",
            "restoring",
        ][..],
        &["silence", "cron", "--for", "1h", "-m", "deploy"][..],
    ] {
        let out = sb.run(&[&["-c", "config.rhai"][..], args].concat());
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let url = format!("http://127.0.0.1:{port}/");
    let dom = chromium(sb.dir.path(), &["--dump-dom"], &url);
    let rows: Vec<&str> = dom
        .lines()
        .filter(|l| l.contains("<tr class=\"check"))
        .collect();
    // Ours and picomon's own state_dir check.
    assert_eq!(rows.len(), 11, "{dom}");
    for (name, status, phase) in [
        ("flappy", "OK", "ok"),
        ("load", "OK", "ok"),
        ("disk", "WARNING", "problem"),
        ("postgres", "CRITICAL", "problem"),
        ("https", "CRITICAL", "retrying"),
        ("ping", "OK", "ok"),
        ("picomon state_dir", "OK", "ok"),
    ] {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!(">{name}<")))
            .unwrap_or_else(|| panic!("no row for {name} in\n{dom}"));
        assert!(
            row.contains(&format!("data-status=\"{status}\" data-phase=\"{phase}\"")),
            "{name}: {row}"
        );
        assert!(
            row.contains("<svg class=\"spark\""),
            "{name} has no sparkline: {row}"
        );
    }
    // Acknowledged, silenced and UNREACHABLE problems are muted.
    for (name, note) in [
        ("nightly backup", "ACKED by "),
        ("cron", "SILENCED by 1"),
        ("app", "UNREACHABLE: router on gw fails"),
    ] {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!(">{name}")))
            .unwrap_or_else(|| panic!("no row for {name} in\n{dom}"));
        assert!(row.contains(" muted\""), "{name}: {row}");
        assert!(row.contains(note), "{name}: {row}");
    }
    // Targets with an unmuted PROBLEM first (db1, gw), then the retry
    // (www), then the rest in config order; output shown, not run;
    // perfdata only in the tooltip.
    let at = |s: &str| dom.find(s).unwrap_or_else(|| panic!("no {s} in {dom}"));
    let (web1, db1, www, gw, lan) = (
        at(">web1</span> <small>"),
        at(">db1</span> <small>"),
        at(">www</span> <small>"),
        at(">gw</span> <small>"),
        at(">lan</span> <small>"),
    );
    assert!(db1 < gw && gw < www && www < web1 && www < lan, "{dom}");
    assert!(dom.contains("&lt;script&gt;x&lt;/script&gt;"), "{dom}");
    assert!(
        dom.contains("DISK WARNING - free space: / 812 MB (9% inode=71%)</td>"),
        "{dom}"
    );
    for pill in ["5 in PROBLEM", "1 UNREACHABLE", "1 ACKED", "1 SILENCED"] {
        assert!(dom.contains(&format!("{pill}</span>")), "{pill}: {dom}");
    }

    // The layout at a desktop's, a small laptop's and a phone's width:
    // nothing wider than the window, every check's name whole on screen,
    // the output beside it on a wide screen and under it on a narrow one.
    let html = get(port, "/").text();
    for width in [1280, 800, 390] {
        let l = layout(sb.dir.path(), &html, width);
        assert_eq!(l.rows.len(), 11, "{width}: {l:?}");
        assert!(
            l.scroll <= l.viewport + 0.5,
            "{width}: scrolls sideways: {l:?}"
        );
        let first = &l.rows[0];
        assert!(
            first.phase == "problem" && !first.muted,
            "{width}: {} first: {l:?}",
            first.name
        );
        for Row {
            name,
            name_box: n,
            out_box: o,
            ..
        } in &l.rows
        {
            assert!(
                n[3] > 0.0 && n[0] >= 0.0 && n[1] <= l.viewport,
                "{width}: {name} {n:?}"
            );
            assert!(
                o[3] >= 150.0 && o[1] <= l.viewport,
                "{width}: output of {name} {o:?}"
            );
            if width < 1000 {
                assert!(
                    o[2] > n[2],
                    "{width}: output of {name} under its name: {n:?} {o:?}"
                );
            } else {
                assert!(
                    o[0] > n[1],
                    "{width}: output of {name} beside its name: {n:?} {o:?}"
                );
            }
        }
    }

    for (width, name) in [
        (1280, "http-status-page.png"),
        (800, "http-status-page-800.png"),
        (390, "http-status-page-390.png"),
    ] {
        let shot = artefact_dir().join(name);
        let _ = fs::remove_file(&shot);
        chromium(
            sb.dir.path(),
            &[
                &format!("--screenshot={}", shot.display()),
                &format!("--window-size={width},1400"),
            ],
            &url,
        );
        let png = fs::read(&shot).unwrap_or_default();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "no screenshot at {} ({} bytes): {}",
            shot.display(),
            png.len(),
            support::read(&sb.path("chromium.err"))
        );
    }
}

/// The inodes of the TCP sockets `pid` listens on (from /proc).
fn listening_sockets(pid: i32) -> Vec<u64> {
    let mine: Vec<u64> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let link = fs::read_link(e.ok()?.path()).ok()?;
                let s = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
                s.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = support::read(Path::new(&format!("/proc/{pid}/net/{table}")));
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // st 0A = LISTEN; the inode is the tenth field.
            if f.len() > 9 && f[3] == "0A" {
                if let Ok(inode) = f[9].parse::<u64>() {
                    if mine.contains(&inode) {
                        out.push(inode);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn no_listener_by_default_and_a_reload_starts_and_stops_it() {
    let sb = sandbox(0.5, "", "");
    let mut d = sb.spawn(&["-c", "config.rhai"]);
    assert!(d.wait_stderr("picomon started", 1, LONG), "{}", d.stderr());
    assert!(sb.wait_lines("runs", 1, LONG));
    assert_eq!(listening_sockets(d.pid()), Vec::<u64>::new());
    assert!(!d.stderr().contains("http: listening"));

    write_config(&sb, 0.5, "127.0.0.1:0", "");
    d.signal(libc::SIGHUP);
    let port = listening_port(&d, 1);
    assert_eq!(get(port, "/metrics").code, 200);
    assert_eq!(listening_sockets(d.pid()).len(), 1);

    write_config(&sb, 0.5, "", "");
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_stderr("http: stopped listening", 1, LONG),
        "{}",
        d.stderr()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still answering"
    );
    assert_eq!(listening_sockets(d.pid()), Vec::<u64>::new());
    assert!(d.stop().success());
}

#[test]
fn only_get_and_head_are_answered_and_the_checks_json_is_status_json() {
    // A long tick: after the first runs nothing changes between two reads.
    let sb = sandbox(
        3600.0,
        "127.0.0.1:0",
        r#"add(plugin("check_dummy", ["1", "half full"]), #{ name: "disk", target_name: "db1" });"#,
    );
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    let from_http = checks_when_run(port, &sb, 1);

    for (method, path) in [
        ("POST", "/metrics"),
        ("POST", "/"),
        ("PUT", "/api/v1/checks"),
        ("DELETE", "/"),
    ] {
        let a = exchange(
            port,
            &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
        );
        assert_eq!(a.code, 405, "{method} {path}: {}", a.head);
        assert_eq!(a.header("allow").as_deref(), Some("GET, HEAD"));
    }
    let m = get(port, "/metrics");
    assert_eq!(m.code, 200);
    assert_eq!(
        m.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(m
        .text()
        .contains("picomon_check_status{check=\"disk\",target=\"db1\"} 1\n"));
    assert!(m.text().contains("\nprocess_resident_memory_bytes "));
    assert!(m
        .text()
        .contains("\npicomon_notifications_pending{channel=\"mail\"} 0\n"));
    let h = exchange(port, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.code, 200);
    assert!(h.body.is_empty());
    assert!(
        h.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 1000
    );
    assert_eq!(get(port, "/../state/lock").code, 404);
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(exchange(port, &big).code, 431);

    // The same JSON as `picomon status --json` (but for when it was made).
    let out = sb.run(&["-c", "config.rhai", "status", "--json"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let cli_text = String::from_utf8(out.stdout).unwrap();
    let http_text = get(port, "/api/v1/checks").text();
    let strip = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.starts_with("  \"at\": "))
            // Only the CLI says whom it asked (a daemon, or the saved state).
            .filter(|l| *l != "  \"daemon\": true,")
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&http_text), strip(&cli_text));
    // disk, flappy and picomon's own check.
    assert_eq!(from_http["checks"].as_array().unwrap().len(), 3);
}

#[test]
fn a_silent_client_does_not_hold_up_another() {
    let sb = sandbox(0.5, "127.0.0.1:0", "");
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    // Half a request head, then nothing: its thread waits for the rest.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    assert_eq!(get(port, "/metrics").code, 200);
    // ... and was still waiting while the other was answered.
    slow.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let waiting = slow.read(&mut byte);
    assert!(
        matches!(&waiting, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the silent client was done with first: {waiting:?}"
    );
    // It is cut off in the end, without an answer.
    slow.set_nonblocking(false).unwrap();
    slow.set_read_timeout(Some(LONG)).unwrap();
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest)
        .expect("the listener closes a silent client");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn a_listen_address_that_is_no_ip_and_port_is_refused_with_an_example() {
    for bad in ["localhost:9464", "9464", "127.0.0.1"] {
        let sb = sandbox(60.0, bad, "");
        let out = sb.run(&["-c", "config.rhai", "--check-config"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {err}");
        assert!(
            err.contains("config.rhai:4:")
                && err.contains("config.listen must be IP:PORT, e.g. \"127.0.0.1:9464\""),
            "{bad}: {err}"
        );
    }
}

#[test]
fn no_answer_carries_a_password() {
    let sb = Sandbox::new();
    let secret = "s3cret-Pa55-7f3a";
    fs::write(sb.path("pw"), format!("{secret}\n")).unwrap();
    write_config(
        &sb,
        0.5,
        "127.0.0.1:0",
        r#"
config.emails.to = ["ops@example.org"];
config.emails.smtp_host = "127.0.0.1:1";
config.emails.smtp_user = "picomon";
config.emails.smtp_password_file = "@DIR@/pw";
config.outputs = [nsca_web("http://127.0.0.1:1/nsca", "web1", "@DIR@/pw")];
add(plugin("check_dummy", ["2", "down"]), #{ name: "db", target_name: "db1", retry: 0 });
"#,
    );
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    checks_when_run(port, &sb, 2);
    for path in ["/", "/metrics", "/api/v1/checks"] {
        let a = get(port, path);
        assert_eq!(a.code, 200, "{path}");
        assert!(!a.text().contains(secret), "{path} shows the password");
    }
}

/// The status code of `GET path`, if the whole answer came within
/// `within`.
fn code_within(port: u16, path: &str, within: Duration) -> Option<u16> {
    let until = Instant::now() + within;
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let mut d = Deadline::new(&s, until);
    d.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut all = Vec::new();
    d.read_to_end(&mut all).ok()?;
    String::from_utf8_lossy(&all)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// A hostile client of the listener that connects again each time it is
/// closed, until `stop`, counting those closes in `closed`. With
/// `after_answer` it sends a whole request, reads the answer and then a
/// byte every 0.3 s; without, it sends half a head and then a byte every
/// 0.5 s, never the blank line.
fn drip(
    port: u16,
    after_answer: bool,
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let gap = if after_answer {
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
                s.set_read_timeout(Some(LONG)).unwrap();
                let _ = s.read_to_end(&mut Vec::new());
                Duration::from_millis(300)
            } else {
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
                Duration::from_millis(500)
            };
            s.set_read_timeout(Some(gap)).unwrap();
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::SeqCst) {
                let gone = if after_answer {
                    std::thread::sleep(gap);
                    s.write_all(b"x").is_err()
                } else {
                    match s.read(&mut buf) {
                        Ok(0) => true,
                        Ok(_) => false,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            s.write_all(b"x").is_err()
                        }
                        Err(_) => true,
                    }
                };
                if gone {
                    closed.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
        }
    })
}

#[test]
fn eight_dripping_clients_never_keep_a_scrape_out() {
    let sb = sandbox(0.5, "127.0.0.1:0", "");
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let cut_in_head = Arc::new(AtomicUsize::new(0));
    let cut_after = Arc::new(AtomicUsize::new(0));
    let drippers: Vec<_> = (0..8)
        .map(|i| {
            let after = i % 2 == 0;
            let closed = if after { &cut_after } else { &cut_in_head };
            drip(port, after, Arc::clone(&stop), Arc::clone(closed))
        })
        .collect();
    // Four of them linger after their answer: their drains end at the
    // deadline however they drip, and they come back at once.
    wait_until(LONG, "the lingering clients closed once each", || {
        (cut_after.load(Ordering::SeqCst) >= 4).then_some(())
    });
    let ok = (0..5)
        .filter(|_| code_within(port, "/metrics", Duration::from_secs(3)) == Some(200))
        .count();
    // The other four trickle their heads: cut off at the head's deadline.
    wait_until(LONG, "the trickling clients cut off once each", || {
        (cut_in_head.load(Ordering::SeqCst) >= 4).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    for t in drippers {
        t.join().unwrap();
    }
    assert!(ok >= 4, "GET /metrics answered 200 {ok} times out of 5");
}

/// How many of the sequential requests below: each costs a connection, a
/// thread and a snapshot from the loop, under a millisecond in a debug
/// build (10,000 took 8 s on a busy two-core machine), and a slot freed
/// late shows up within a few thousand.
const SEQUENTIAL: usize = 10_000;

#[test]
fn ten_thousand_sequential_requests_are_never_turned_away() {
    let sb = sandbox(0.5, "127.0.0.1:0", "");
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    let mut codes: HashMap<u16, usize> = HashMap::new();
    for _ in 0..SEQUENTIAL {
        *codes.entry(get(port, "/metrics").code).or_default() += 1;
    }
    assert_eq!(codes, HashMap::from([(200, SEQUENTIAL)]));
}

/// `GET /metrics` with a padding header, `len` bytes in all with the
/// blank line.
fn head_of(len: usize) -> String {
    let start = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = len - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad))
}

#[test]
fn a_head_of_exactly_8_kib_is_answered_and_one_byte_more_is_431() {
    assert_eq!(MAX_HEAD, 8192);
    let sb = sandbox(0.5, "127.0.0.1:0", "");
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    assert_eq!(exchange(port, &head_of(MAX_HEAD)).code, 200);
    let a = exchange(port, &head_of(MAX_HEAD + 1));
    assert_eq!(a.code, 431, "{}", a.text());
    assert!(a.text().contains("at most 8192 bytes"), "{}", a.text());
}

#[test]
fn a_full_house_is_answered_503_at_once_and_accepting_goes_on() {
    let sb = sandbox(0.5, "127.0.0.1:0", "");
    let d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    // Every connection the listener keeps, each half a head: more are
    // told 503 by the accept thread at once, without a request (tried again
    // should the first ones reach their deadline first, on a slow machine).
    let answer_of_one_more = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        let mut all = Vec::new();
        (&s).read_to_end(&mut all).unwrap();
        String::from_utf8_lossy(&all).into_owned()
    };
    let held = wait_until(LONG, "a connection beyond the cap answered 503", || {
        let held: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        // Accepting is not held up: one after another, each is answered.
        (0..4)
            .all(|_| answer_of_one_more().starts_with("HTTP/1.1 503 "))
            .then_some(held)
    });
    drop(held);
    wait_until(LONG, "GET /metrics answered once they are gone", || {
        (get(port, "/metrics").code == 200).then_some(())
    });
}

/// The `backup` entry of the checks' JSON.
fn backup_of(port: u16) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&get(port, "/api/v1/checks").body).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "nightly backup")
        .cloned()
        .expect("the heartbeat check")
}

fn post(port: u16, path: &str, body: &str) -> Answer {
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn a_ping_with_the_key_is_recorded_and_a_wrong_key_or_a_big_body_changes_nothing() {
    let key = "Kq7-unguessable-4a1f9c";
    let sb = Sandbox::new();
    fs::write(sb.path("ping.key"), format!("{key}\n")).unwrap();
    write_config(
        &sb,
        0.5,
        "127.0.0.1:0",
        &format!(
            r#"config.ping_key_file = "{}";
add(heartbeat(#{{ period: "1h", grace: "1h" }}), #{{ name: "nightly backup", retry: 0 }});"#,
            sb.path("ping.key").display()
        ),
    );
    let d = sb.spawn(&["-c", "config.rhai", "-D"]);
    let port = listening_port(&d, 1);
    let url = format!("/ping/{key}/nightly%20backup");

    // /fail with a body: CRITICAL, saying what the body said.
    let a = post(port, &format!("{url}/fail"), "disk full");
    assert_eq!((a.code, a.text().as_str()), (200, "OK\n"), "{}", a.head);
    let c = backup_of(port);
    assert_eq!(c["status"], "CRITICAL", "{c}");
    assert!(c["output"].as_str().unwrap().contains("disk full"), "{c}");

    // A wrong key, a check that is not there: 404, and nothing changes.
    for path in [
        "/ping/Kq7-unguessable-4a1f9C/nightly%20backup".to_string(),
        "/ping/Kq7-unguessable-4a1f9/nightly%20backup".to_string(),
        format!("/ping/{key}/nightly%20backups"),
        format!("/ping/{key}/flappy"),
    ] {
        assert_eq!(get(port, &path).code, 404, "{path}");
    }
    assert_eq!(backup_of(port)["status"], "CRITICAL");

    // GET with the right key: OK; an exit status: its status.
    assert_eq!(get(port, &url).code, 200);
    assert_eq!(backup_of(port)["status"], "OK");
    assert_eq!(post(port, &format!("{url}/3"), "").code, 200);
    assert_eq!(backup_of(port)["status"], "CRITICAL");
    assert_eq!(post(port, &format!("{url}/0"), "copied").code, 200);
    let c = backup_of(port);
    assert_eq!(c["status"], "OK");
    assert!(c["output"].as_str().unwrap().contains("copied"), "{c}");

    // A 1 MB body is refused before it is read, and changes nothing.
    let a = exchange(
        port,
        &format!(
            "POST {url}/fail HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}",
            1 << 20,
            "x".repeat(1024)
        ),
    );
    assert_eq!(a.code, 413, "{}", a.head);
    assert_eq!(backup_of(port)["status"], "OK");

    // Everything else stays read-only.
    let a = post(port, "/api/v1/checks", "x");
    assert_eq!(a.code, 405);

    // A client trickling its body holds up no other ping, and is cut off.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(format!("POST {url}/fail HTTP/1.1\r\nContent-Length: 100\r\n\r\nab").as_bytes())
        .unwrap();
    assert_eq!(get(port, &url).code, 200);
    slow.set_read_timeout(Some(LONG)).unwrap();
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer)
        .expect("the listener closes it");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(backup_of(port)["status"], "OK");

    // The key is never logged, not even at debug level.
    let log = d.stderr();
    assert!(log.contains("/ping/…/nightly backup"), "{log}");
    assert!(!log.contains(key), "{log}");
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn a_root_only_ping_key_still_takes_pings_after_dropping_to_nobody() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "--user needs root");
    let key = "root-only-key-93b1";
    let sb = Sandbox::new();
    let key_file = sb.path("ping.key");
    fs::write(&key_file, format!("{key}\n")).unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    write_config(
        &sb,
        0.5,
        "127.0.0.1:0",
        &format!(
            r#"config.ping_key_file = "{}";
add(heartbeat(#{{ period: "1h" }}), #{{ name: "nightly backup", retry: 0 }});"#,
            key_file.display()
        ),
    );
    // nobody runs the plugin and reads the config; the key stays root's.
    fs::set_permissions(sb.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(sb.path("config.rhai"), fs::Permissions::from_mode(0o644)).unwrap();
    let d = sb.spawn(&["-c", "config.rhai", "--user", "nobody"]);
    let port = listening_port(&d, 1);
    let a = post(
        port,
        &format!("/ping/{key}/nightly%20backup/fail"),
        "as nobody",
    );
    assert_eq!(a.code, 200, "{}\n{}", a.head, d.stderr());
    let c = backup_of(port);
    assert!(c["output"].as_str().unwrap().contains("as nobody"), "{c}");
    assert_eq!(get(port, "/ping/wrong-key/nightly%20backup").code, 404);
    assert!(d.stderr().contains("running as nobody"), "{}", d.stderr());
}

/// The row of check `name` in a dumped page, and its day blocks as
/// (class, title).
fn day_blocks(dom: &str, name: &str) -> Vec<(String, String)> {
    let row = dom
        .lines()
        .find(|l| l.contains("<tr class=\"check") && l.contains(&format!(">{name}<")))
        .unwrap_or_else(|| panic!("no row for {name} in\n{dom}"));
    row.split("<span class=\"day ")
        .skip(1)
        .map(|s| {
            let (class, rest) = s.split_once('"').unwrap();
            let title = rest.split("title=\"").nth(1).unwrap().split('"').next();
            (class.to_string(), title.unwrap().to_string())
        })
        .collect()
}

#[test]
fn the_page_shows_thirty_days_coloured_by_their_worst_state_with_the_percentage_on_hover() {
    use picomon::clock::{civil_from_days, days_from_civil, local_civil, local_to_unix};
    let sb = sandbox(0.3, "127.0.0.1:0", "");
    support::set_plugin_status(sb.dir.path(), 0, "HTTP OK: 200 in 0.012 s");
    let mut d = sb.spawn(&["-c", "config.rhai"]);
    let port = listening_port(&d, 1);
    let checks = checks_when_run(port, &sb, 1);
    let id = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "flappy")
        .and_then(|c| c["id"].as_str())
        .expect("flappy's id")
        .to_string();
    d.kill();

    // The log as 40 days of a daemon would have left it: seen 40 days
    // ago, CRITICAL 06:00-12:00 three days ago, WARNING 06:00-07:00 ten
    // days ago (local days, as the bar's).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let c = local_civil(now).unwrap();
    let today = days_from_civil(c.year, c.month, c.day);
    let at = |back: i64, hour: u8| {
        let (y, m, dd) = civil_from_days(today - back);
        local_to_unix(y, m, dd, hour, 0, 0).unwrap() * 1_000_000
    };
    let date = |back: i64| {
        let (y, m, dd) = civil_from_days(today - back);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    let line = |at: i64, kind: &str, status: &str, outage: i64| {
        serde_json::json!({"at": at, "kind": kind, "check": id, "status": status,
            "outage": outage, "text": format!("{status} - scripted")})
        .to_string()
    };
    let lines = [
        serde_json::json!({"at": at(40, 0), "kind": "seen", "check": id, "since": at(40, 0)})
            .to_string(),
        line(at(10, 6) + 1_000_000, "problem", "WARNING", at(10, 6)),
        line(at(10, 7), "recovery", "OK", at(10, 6)),
        line(at(3, 6) + 1_000_000, "problem", "CRITICAL", at(3, 6)),
        line(at(3, 12), "recovery", "OK", at(3, 6)),
    ];
    let month = fs::read_dir(sb.path("state/history"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a month file");
    let mut f = fs::OpenOptions::new().append(true).open(&month).unwrap();
    f.write_all(format!("{}\n", lines.join("\n")).as_bytes())
        .unwrap();
    drop(f);

    let d = support::Daemon::start(
        sb.dir.path(),
        &["-c", "config.rhai"],
        sb.path("again.out"),
        sb.path("again.err"),
    );
    let port = listening_port(&d, 1);
    checks_when_run(port, &sb, 2);
    let url = format!("http://127.0.0.1:{port}/");
    let dom = chromium(sb.dir.path(), &["--dump-dom"], &url);
    let days = day_blocks(&dom, "flappy");
    assert_eq!(days.len(), 30, "{days:?}");
    let day = |back: usize| &days[29 - back];
    assert_eq!(
        day(3),
        &(
            "critical".to_string(),
            format!("{}: 75.00%, worst CRITICAL", date(3))
        )
    );
    assert_eq!(
        day(10),
        &(
            "warning".to_string(),
            format!("{}: 95.83%, worst WARNING", date(10))
        )
    );
    for back in (0..30).filter(|b| ![3, 10].contains(b)) {
        assert_eq!(day(back).0, "ok", "{back} days ago: {days:?}");
        assert!(day(back).1.starts_with(&date(back as i64)), "{days:?}");
    }
    assert_eq!(day(5).1, format!("{}: 100.00%", date(5)));
    // No script on the page for it: the title is the hover.
    assert!(!dom.contains("<script"), "{dom}");

    let shot = artefact_dir().join("http-status-page-30-days.png");
    let _ = fs::remove_file(&shot);
    chromium(
        sb.dir.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,600",
        ],
        &url,
    );
    let png = fs::read(&shot).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "no screenshot at {}: {}",
        shot.display(),
        support::read(&sb.path("chromium.err"))
    );
}
