//! Passive outputs against real peers on loopback: a JSON lines file and
//! stdout, an NSCA-web receiver process that checks every form field and
//! line, the spool when that receiver is down, `--send` and `result_dir`,
//! and the Rhai constructors. Nagios and Icinga 2 are in
//! `outputs_servers.rs`.

use crate::support;

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use picomon::model::Status;
use picomon::passive::{
    pick_up_result_dir, send_stdin, OutputKind, OutputSpec, Outputs, PassiveResult,
    DEFAULT_SPOOL_MAX_BYTES,
};
use support::ports::{hold_port, reserve_port, Reserved};
use support::{fixture, picomon_bin, read, wait_for};

const LONG: Duration = Duration::from_secs(60);

fn result(i: usize, status: Status) -> PassiveResult {
    PassiveResult {
        time: 1_700_000_000_000_000 + i as i64 * 1_000_000,
        host: "web1".into(),
        service: Some(format!("check {i}")),
        status,
        output: format!("result {i} ok; fine\nsecond line of {i}"),
        perfdata: format!("n={i};5;10"),
        duration: Duration::from_millis(250),
        data: None,
    }
}

fn spec(kind: OutputKind) -> OutputSpec {
    OutputSpec {
        kind,
        name: None,
        spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
    }
}

/// The NSCA-web receiver fixture, a Python process on 127.0.0.1 (also used
/// by `imports.rs`).
pub(crate) struct Receiver {
    dir: PathBuf,
    port: u16,
    /// The port, held between a stop and a restart (see `hold_port`).
    held: Option<Reserved>,
    child: Option<Child>,
    max_lines: usize,
    /// `--tls CERT KEY CLIENT_CA`, when it speaks HTTPS.
    tls: Vec<String>,
}

impl Receiver {
    pub(crate) fn start(dir: &Path, port: u16, max_lines: usize) -> Receiver {
        let mut r = Receiver {
            dir: dir.to_path_buf(),
            port,
            held: None,
            child: None,
            max_lines,
            tls: Vec::new(),
        };
        r.up();
        r
    }

    /// Speaking HTTPS with `cert`/`key`, taking only clients whose
    /// certificate `client_ca` signed.
    fn start_tls(dir: &Path, cert: &Path, key: &Path, client_ca: &Path) -> Receiver {
        let mut r = Receiver {
            dir: dir.to_path_buf(),
            port: 0,
            held: None,
            child: None,
            max_lines: 400,
            tls: [cert, key, client_ca]
                .map(|p| p.display().to_string())
                .to_vec(),
        };
        r.up();
        r
    }

    pub(crate) fn up(&mut self) {
        let _ = fs::remove_file(self.dir.join("port"));
        let child = Command::new("python3")
            .arg(fixture("outputs/nsca_web_receiver.py"))
            .args(["--dir", &self.dir.display().to_string()])
            .args(["--port", &self.port.to_string()])
            .args(["--user", "picomon", "--password", "pass word&=1"])
            .args(["--max-lines", &self.max_lines.to_string()])
            .args(["--max-line-size", "300"])
            .args(if self.tls.is_empty() {
                Vec::new()
            } else {
                let mut a = vec!["--tls".to_string()];
                a.extend(self.tls.iter().cloned());
                a
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 nsca_web_receiver.py");
        self.child = Some(child);
        let port = wait_for(LONG, || {
            fs::read_to_string(self.dir.join("port"))
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
        })
        .expect("receiver listens");
        self.port = port;
        if self.held.is_none() {
            self.held = Some(hold_port(port));
        }
    }

    pub(crate) fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/nsca-web", self.port)
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        read(&self.dir.join("received.log"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn posts(&self) -> Vec<usize> {
        read(&self.dir.join("posts.log"))
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }

    pub(crate) fn errors(&self) -> String {
        read(&self.dir.join("errors.log"))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

fn nsca_spec(dir: &Path, url: &str, lines_per_post: usize) -> OutputSpec {
    let pw = dir.join("nsca.password");
    fs::write(&pw, "pass word&=1\n").expect("password file");
    spec(OutputKind::NscaWeb {
        url: url.into(),
        user: "picomon".into(),
        password_file: pw,
        lines_per_post,
        max_line_size: 300,
        timeout: Duration::from_secs(5),
        ca: None,
        client: None,
    })
}

#[test]
fn json_lines_file_gets_one_object_per_result_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("results.jsonl");
    let outputs = Outputs::start(
        &[spec(OutputKind::JsonLines { path: path.clone() })],
        &tmp.path().join("state"),
    )
    .expect("start");
    let mut host = result(3, Status::Critical);
    host.service = None;
    outputs.submit(&result(1, Status::Ok));
    outputs.submit_all(&[result(2, Status::Warning), host]);
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    let text = read(&path);
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(objs.len(), 3, "{text}");
    assert_eq!(objs[0]["check"], "check 1");
    assert_eq!(objs[0]["status"], "OK");
    assert_eq!(objs[1]["status"], "WARNING");
    assert_eq!(objs[1]["output"], "result 2 ok; fine\nsecond line of 2");
    assert_eq!(objs[1]["perfdata_text"], "n=2;5;10");
    assert_eq!(
        objs[1]["perfdata"],
        serde_json::json!([{ "label": "n", "value": 2.0, "uom": "", "warn": "5", "crit": "10",
            "min": null, "max": null }])
    );
    assert_eq!(objs[1]["data"], serde_json::Value::Null);
    assert_eq!(objs[1]["duration"], 0.25);
    assert_eq!(objs[1]["time"], 1_700_000_002.0);
    assert_eq!(objs[2]["check"], serde_json::Value::Null);
    assert_eq!(objs[2]["status"], "CRITICAL");
    assert!(outputs.status_lines()[0].contains("0 waiting, 3 delivered, 0 dropped"));
}

/// Not a test of its own: run in a child process by
/// `json_lines_dash_writes_stdout`, which reads its stdout.
#[test]
#[ignore = "run as a child process by json_lines_dash_writes_stdout"]
fn child_writes_json_lines_to_stdout() {
    let state = std::env::var("PICOMON_TEST_JSON_STDOUT_STATE")
        .expect("PICOMON_TEST_JSON_STDOUT_STATE names the state dir");
    let outputs = Outputs::start(
        &[spec(OutputKind::JsonLines { path: "-".into() })],
        Path::new(&state),
    )
    .expect("start");
    outputs.submit(&result(7, Status::Unknown));
    assert!(outputs.flush(LONG));
}

#[test]
fn json_lines_dash_writes_stdout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            &support::own_test_name(module_path!(), "child_writes_json_lines_to_stdout"),
            "--ignored",
            "--nocapture",
        ])
        .env("PICOMON_TEST_JSON_STDOUT_STATE", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run child");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON on stdout: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON object");
    assert_eq!(v["check"], "check 7");
    assert_eq!(v["status"], "UNKNOWN");
}

#[test]
fn nsca_web_down_then_up_every_result_arrives_once_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rx = Receiver::start(tmp.path(), 0, 3);
    let outputs = Outputs::start(
        &[nsca_spec(tmp.path(), &rx.url(), 3)],
        &tmp.path().join("state"),
    )
    .expect("start");
    let mut want = Vec::new();
    for i in 0..4 {
        let r = result(i, Status::Ok);
        want.push(r.command_line(300));
        outputs.submit(&r);
    }
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    assert_eq!(rx.lines(), want);

    // The receiver goes away: results wait in the spool, checks go on.
    rx.down();
    for i in 4..11 {
        let r = result(i, Status::Critical);
        want.push(r.command_line(300));
        outputs.submit(&r);
    }
    let failing = wait_for(LONG, || {
        let s = outputs.status_lines().join("\n");
        s.contains("FAILING").then_some(s)
    })
    .expect("the dump says the output fails");
    assert!(failing.contains("7 waiting"), "{failing}");
    assert!(failing.contains("cannot reach"), "{failing}");
    let spool = tmp.path().join("state/spool/nsca_web-1");
    assert!(spool.is_dir(), "spool folder {}", spool.display());

    // Back again: everything arrives, once, in order, in posts of <= 3.
    rx.up();
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    assert_eq!(rx.lines(), want);
    assert_eq!(rx.errors(), "");
    let posts = rx.posts();
    assert!(posts.iter().all(|&n| (1..=3).contains(&n)), "{posts:?}");
    assert_eq!(posts.iter().sum::<usize>(), 11);
    // The 7 spooled results went in full posts of 3, 3, then 1.
    assert!(posts.ends_with(&[3, 3, 1]), "{posts:?}");
    let status = outputs.status_lines().join("\n");
    assert!(
        status.contains("0 waiting, 11 delivered, 0 dropped"),
        "{status}"
    );
}

#[test]
fn nsca_web_lines_are_truncated_and_cannot_be_broken() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(tmp.path(), 0, 400);
    let outputs = Outputs::start(
        &[nsca_spec(tmp.path(), &rx.url(), 400)],
        &tmp.path().join("state"),
    )
    .expect("start");
    let mut evil = result(1, Status::Warning);
    evil.host = "web;1".into();
    evil.service = Some("disk\nPROCESS_HOST_CHECK_RESULT;x;0;injected".into());
    evil.output = format!(
        "line one\r\n[1] PROCESS_HOST_CHECK_RESULT;x;0;y\n{}",
        "z".repeat(1000)
    );
    let mut host = result(2, Status::Ok);
    host.service = None;
    outputs.submit(&evil);
    outputs.submit(&host);
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    assert_eq!(rx.errors(), "");
    let lines = rx.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(
        "[1700000001] PROCESS_SERVICE_CHECK_RESULT;web_1;disk_PROCESS_HOST_CHECK_RESULT_x_0_injected;1;line one|n=1;5;10\\n[1] PROCESS_HOST_CHECK_RESULT;x;0;y\\nzzz"
    ), "{}", lines[0]);
    assert_eq!(lines[0].len(), 300);
    assert_eq!(
        lines[1],
        "[1700000002] PROCESS_HOST_CHECK_RESULT;web1;0;result 2 ok; fine|n=2;5;10\\nsecond line of 2"
    );
}

#[test]
fn nsca_web_wrong_password_keeps_results_and_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(tmp.path(), 0, 400);
    let mut s = nsca_spec(tmp.path(), &rx.url(), 400);
    if let OutputKind::NscaWeb { password_file, .. } = &s.kind {
        fs::write(password_file, "wrong\n").expect("write");
    }
    s.name = Some("central".into());
    let outputs = Outputs::start(&[s], &tmp.path().join("state")).expect("start");
    outputs.submit(&result(1, Status::Ok));
    assert!(!outputs.flush(Duration::from_secs(2)));
    let status = outputs.status_lines().join("\n");
    assert!(status.contains("output central"), "{status}");
    assert!(status.contains("1 waiting"), "{status}");
    assert!(status.contains("HTTP 403"), "{status}");
    assert!(rx.lines().is_empty());
    // The password never shows in what users read.
    assert!(!status.contains("wrong"), "{status}");
}

#[test]
fn spool_overflow_drops_the_oldest_counts_them_and_delivers_the_rest_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_held, port) = reserve_port();
    let url = format!("http://127.0.0.1:{port}/");
    let mut s = nsca_spec(tmp.path(), &url, 400);
    s.spool_max_bytes = 4096;
    let outputs = Outputs::start(&[s], &tmp.path().join("state")).expect("start");
    let all: Vec<PassiveResult> = (0..100).map(|i| result(i, Status::Ok)).collect();
    for r in &all {
        outputs.submit(r);
    }
    let status = outputs.status_lines().join("\n");
    let dropped: usize = status
        .split(" dropped")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dropped count in {status}"));
    assert!(dropped > 0 && dropped < 100, "{status}");
    let spool_bytes: u64 = fs::read_dir(tmp.path().join("state/spool/nsca_web-1"))
        .expect("spool dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(spool_bytes <= 4096, "spool holds {spool_bytes} bytes");

    let rx = Receiver::start(tmp.path(), port, 400);
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    let want: Vec<String> = all[dropped..].iter().map(|r| r.command_line(300)).collect();
    assert_eq!(rx.lines(), want);
}

#[test]
fn send_forwards_lines_and_reports_bad_ones_by_number() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(tmp.path(), 0, 400);
    let specs = [nsca_spec(tmp.path(), &rx.url(), 400)];
    let input =
        "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;disk;2;DISK CRITICAL|/=95%;80;90\\nmore\n\
                 \n\
                 # a comment\n\
                 PROCESS_HOST_CHECK_RESULT;web1;0;UP\n";
    let n = send_stdin(&specs, &tmp.path().join("state"), Cursor::new(input), None).expect("send");
    assert_eq!(n, 2);
    let lines = rx.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;disk;2;DISK CRITICAL|/=95%;80;90\\nmore"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (stamp, rest) = lines[1]
        .strip_prefix('[')
        .and_then(|l| l.split_once("] "))
        .expect("epoch prefix added");
    let stamp: u64 = stamp.parse().expect("epoch");
    assert!(stamp.abs_diff(now) < 120, "{stamp} vs {now}");
    assert_eq!(rest, "PROCESS_HOST_CHECK_RESULT;web1;0;UP");

    let bad = "PROCESS_HOST_CHECK_RESULT;web1;0;fine\nPROCESS_HOST_CHECK_RESULT;web1;9;nope\n";
    let err = send_stdin(&specs, &tmp.path().join("state"), Cursor::new(bad), None)
        .expect_err("a bad line fails --send");
    let msg = format!("{err:#}");
    assert!(msg.contains("line 2:"), "{msg}");
    assert!(msg.contains("not 0, 1, 2 or 3"), "{msg}");
    // The good line still went through.
    assert_eq!(rx.lines().len(), 3);
}

#[test]
fn send_while_the_receiver_is_down_spools_and_a_later_start_delivers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_held, port) = reserve_port();
    let url = format!("http://127.0.0.1:{port}/");
    let specs = [nsca_spec(tmp.path(), &url, 400)];
    let state = tmp.path().join("state");
    let input = "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;a;0;one\n\
                 [1700000001] PROCESS_SERVICE_CHECK_RESULT;web1;b;1;two\n";
    let n = send_stdin(&specs, &state, Cursor::new(input), None).expect("spooled counts as sent");
    assert_eq!(n, 2);
    // As if the daemon starts later, when the server is back.
    let rx = Receiver::start(tmp.path(), port, 400);
    let outputs = Outputs::start(&specs, &state).expect("start");
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    assert_eq!(
        rx.lines(),
        [
            "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;a;0;one",
            "[1700000001] PROCESS_SERVICE_CHECK_RESULT;web1;b;1;two"
        ]
    );
}

#[test]
fn result_dir_files_are_forwarded_then_removed_and_temp_files_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("results");
    fs::create_dir(&dir).expect("mkdir");
    let json = tmp.path().join("out.jsonl");
    let outputs = Outputs::start(
        &[spec(OutputKind::JsonLines { path: json.clone() })],
        &tmp.path().join("state"),
    )
    .expect("start");
    fs::write(
        dir.join("1700000001.results"),
        "[1700000001] PROCESS_SERVICE_CHECK_RESULT;db1;backup;0;backup done\n",
    )
    .expect("write");
    fs::write(
        dir.join("1700000000.results"),
        "[1700000000] PROCESS_SERVICE_CHECK_RESULT;db1;dump;2;dump failed\\nexit 3\n",
    )
    .expect("write");
    fs::write(
        dir.join("1700000002.bad"),
        "PROCESS_HOST_CHECK_RESULT;db1;1;slow\nnot a result\n",
    )
    .expect("write");
    fs::write(
        dir.join(".being-written"),
        "PROCESS_HOST_CHECK_RESULT;x;0;a\n",
    )
    .expect("write");
    fs::write(dir.join("partial.tmp"), "PROCESS_HOST_CHECK_RESULT;x;0;a\n").expect("write");

    let n = pick_up_result_dir(&dir, &outputs).expect("pick up").len();
    assert_eq!(n, 3);
    assert!(outputs.flush(LONG));
    let objs: Vec<serde_json::Value> = read(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let checks: Vec<&str> = objs
        .iter()
        .map(|o| o["check"].as_str().unwrap_or("<host>"))
        .collect();
    // Name order: the epoch-prefixed files oldest first.
    assert_eq!(checks, ["dump", "backup", "<host>"]);
    assert_eq!(objs[0]["output"], "dump failed\nexit 3");
    let mut left: Vec<String> = fs::read_dir(&dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [".1700000002.bad.rejected", ".being-written", "partial.tmp"]
    );
    // A second pick-up finds nothing new.
    assert!(pick_up_result_dir(&dir, &outputs)
        .expect("again")
        .is_empty());
}

#[test]
fn rhai_constructors_build_specs_and_refuse_bad_options() {
    let mut engine = rhai::Engine::new();
    picomon::config::outputs::register(&mut engine);
    let specs: rhai::Array = engine
        .eval(
            r#"[
                json_lines("-"),
                nsca_web("https://nagios.example.org/nsca", "host1", "/etc/picomon/nsca.pw",
                         #{ lines_per_post: 50, max_line_size: 1024, timeout: 1.5, name: "central" }),
                command_file("/var/lib/nagios4/rw/nagios.cmd"),
                icinga2_api("https://127.0.0.1:5665", "picomon", "/etc/picomon/icinga.pw",
                            "/etc/picomon/icinga-ca.crt", #{ spool_max_bytes: 1048576 }),
                icinga2_api("https://icinga.example.org:5665", "picomon", "/pw"),
            ]"#,
        )
        .expect("valid outputs");
    let specs: Vec<OutputSpec> = specs
        .into_iter()
        .map(|d| d.try_cast::<OutputSpec>().expect("an OutputSpec"))
        .collect();
    assert_eq!(specs.len(), 5);
    assert_eq!(specs[0].kind, OutputKind::JsonLines { path: "-".into() });
    assert_eq!(specs[0].spool_name(0), "json_lines-1");
    assert_eq!(
        specs[1].kind,
        OutputKind::NscaWeb {
            url: "https://nagios.example.org/nsca".into(),
            user: "host1".into(),
            password_file: "/etc/picomon/nsca.pw".into(),
            lines_per_post: 50,
            max_line_size: 1024,
            timeout: Duration::from_millis(1500),
            ca: None,
            client: None,
        }
    );
    assert_eq!(specs[1].spool_name(1), "central");
    assert!(matches!(
        &specs[2].kind,
        OutputKind::CommandFile {
            max_line_size: 4095,
            ..
        }
    ));
    assert_eq!(specs[3].spool_max_bytes, 1 << 20);
    assert!(matches!(
        &specs[3].kind,
        OutputKind::Icinga2Api { ca: Some(ca), .. } if ca == Path::new("/etc/picomon/icinga-ca.crt")
    ));
    assert!(matches!(
        &specs[4].kind,
        OutputKind::Icinga2Api { ca: None, .. }
    ));

    let err = |script: &str| {
        format!(
            "{}",
            engine.eval::<rhai::Dynamic>(script).expect_err(script)
        )
    };
    let e = err(r#"nsca_web("http://x.example/", "u", "/pw", #{ line_per_post: 5 })"#);
    assert!(
        e.contains("unknown option `line_per_post`") && e.contains("lines_per_post"),
        "{e}"
    );
    let e = err(r#"nsca_web("http://x.example/", "u", "/pw", #{ lines_per_post: "many" })"#);
    assert!(e.contains("must be a whole number"), "{e}");
    let e = err(r#"nsca_web("http://x.example/", "u", "/pw", #{ lines_per_post: 0 })"#);
    assert!(e.contains("out of range"), "{e}");
    let e = err(r#"icinga2_api("127.0.0.1:5665", "u", "/pw", "")"#);
    assert!(e.contains("must start with http:// or https://"), "{e}");
    for key in ["ca_file", "ca"] {
        let spec = engine
            .eval::<rhai::Dynamic>(&format!(
                r#"nsca_web("https://x.example/", "u", "/pw", #{{ {key}: "/etc/picomon/ca.pem" }})"#
            ))
            .expect(key)
            .try_cast::<OutputSpec>()
            .unwrap();
        assert!(
            matches!(&spec.kind, OutputKind::NscaWeb { ca: Some(ca), .. } if ca == Path::new("/etc/picomon/ca.pem")),
            "{key}"
        );
    }
    let spec = engine
        .eval::<rhai::Dynamic>(
            r#"icinga2_api("https://x.example:5665", "u", "/pw", #{ ca_file: "/etc/picomon/ca.pem" })"#,
        )
        .expect("icinga2_api with ca_file")
        .try_cast::<OutputSpec>()
        .unwrap();
    assert!(matches!(
        &spec.kind,
        OutputKind::Icinga2Api { ca: Some(ca), .. } if ca == Path::new("/etc/picomon/ca.pem")
    ));
    let e = err(r#"icinga2_api("https://x.example:5665", "u", "/pw", "/a", #{ ca_file: "/b" })"#);
    assert!(e.contains("named twice"), "{e}");
    let e = err(r#"nsca_web("http://x.example/", "u", "/pw", #{ ca_file: "/a", ca: "/b" })"#);
    assert!(e.contains("keep `ca_file`"), "{e}");
    let e = err(r#"nsca_web("http://x.example/", "u", "/pw", #{ client_cert: "/c.pem" })"#);
    assert!(e.contains("client_cert and client_key go together"), "{e}");
    let e = err(r#"icinga2_api("https://x.example:5665", "", "", "/ca.crt")"#);
    assert!(e.contains("user is empty"), "{e}");
    let cert_only = engine
        .eval::<rhai::Dynamic>(
            r#"icinga2_api("https://x.example:5665", "", "", "/ca.crt",
                   #{ client_cert: "/c.pem", client_key: "/c.key" })"#,
        )
        .expect("a client certificate needs no user")
        .try_cast::<OutputSpec>()
        .expect("an OutputSpec");
    assert!(matches!(
        &cert_only.kind,
        OutputKind::Icinga2Api { client: Some(c), user, .. }
            if user.is_empty() && c.cert == Path::new("/c.pem") && c.key == Path::new("/c.key")
    ));
    let e = err(r#"json_lines("/x", #{ name: "../etc" })"#);
    assert!(e.contains("letters, digits"), "{e}");
    let e = err(r#"command_file("/x", #{ max_line_size: 100000 })"#);
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn start_fails_with_a_clear_message_when_a_password_file_is_missing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = nsca_spec(tmp.path(), "http://127.0.0.1:9/", 10);
    s.kind = match s.kind {
        OutputKind::NscaWeb {
            url,
            user,
            lines_per_post,
            max_line_size,
            timeout,
            ca,
            ..
        } => OutputKind::NscaWeb {
            url,
            user,
            password_file: tmp.path().join("missing.pw"),
            lines_per_post,
            max_line_size,
            timeout,
            ca,
            client: None,
        },
        other => other,
    };
    let err = Outputs::start(&[s], &tmp.path().join("state")).expect_err("missing password file");
    let msg = format!("{err:#}");
    assert!(msg.contains("nsca_web-1"), "{msg}");
    assert!(msg.contains("cannot read password file"), "{msg}");
    assert!(msg.contains("missing.pw"), "{msg}");
}

#[test]
fn send_while_the_daemon_outputs_run_on_the_same_spool_delivers_each_result_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(tmp.path(), 0, 2);
    let specs = [nsca_spec(tmp.path(), &rx.url(), 2)];
    let state = tmp.path().join("state");
    // The daemon's outputs, busy with their own results...
    let daemon = Outputs::start(&specs, &state).expect("start");
    let daemon_results: Vec<PassiveResult> = (0..20).map(|i| result(i, Status::Ok)).collect();
    daemon.submit_all(&daemon_results[..10]);
    // ...while `picomon --send` forwards through the same spool.
    let input: String = (100..110)
        .map(|i| format!("[1700000000] PROCESS_SERVICE_CHECK_RESULT;db1;s{i};1;sent {i}\n"))
        .collect();
    let n = send_stdin(&specs, &state, Cursor::new(input), None).expect("send");
    assert_eq!(n, 10);
    daemon.submit_all(&daemon_results[10..]);
    assert!(daemon.flush(LONG), "{:?}", daemon.status_lines());
    assert_eq!(rx.errors(), "");
    let lines = rx.lines();
    assert_eq!(lines.len(), 30, "{lines:#?}");
    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "a result arrived twice: {lines:#?}");
    // Each source's results arrive in the order they were given.
    let from_daemon: Vec<String> = lines
        .iter()
        .filter(|l| l.contains(";web1;"))
        .cloned()
        .collect();
    let want: Vec<String> = daemon_results.iter().map(|r| r.command_line(300)).collect();
    assert_eq!(from_daemon, want);
    let from_send: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split(";db1;").nth(1))
        .collect();
    let want_send: Vec<String> = (100..110).map(|i| format!("s{i};1;sent {i}")).collect();
    assert_eq!(from_send, want_send);
}

#[test]
fn command_file_pipe_without_a_reader_spools_until_one_reads() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().expect("tempdir");
    let fifo = tmp.path().join("nagios.cmd");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let outputs = Outputs::start(
        &[spec(OutputKind::CommandFile {
            path: fifo.clone(),
            max_line_size: 4095,
        })],
        &tmp.path().join("state"),
    )
    .expect("start");
    let mut big = result(1, Status::Critical);
    big.output = "x".repeat(10_000);
    outputs.submit_all(&[result(0, Status::Ok), big.clone()]);
    let status = wait_for(LONG, || {
        let s = outputs.status_lines().join("\n");
        s.contains("FAILING").then_some(s)
    })
    .expect("fails while nothing reads the pipe");
    assert!(
        status.contains("nothing reads the command file"),
        "{status}"
    );
    assert!(status.contains("2 waiting"), "{status}");

    // A reader appears (as Nagios does when it starts): both lines arrive.
    let reader = std::thread::spawn(move || {
        let f = fs::File::open(&fifo).expect("open fifo for reading");
        std::io::BufReader::new(f)
            .lines()
            .take(2)
            .collect::<Result<Vec<String>, _>>()
            .expect("read lines")
    });
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    let lines = reader.join().expect("reader");
    assert_eq!(lines[0], result(0, Status::Ok).command_line(4095));
    // The long line is cut to fit one atomic pipe write with its newline.
    assert_eq!(lines[1].len(), 4095);
    assert_eq!(lines[1], big.command_line(4095));
}

/// `-1 --outputs` as pcrunner's cron job: every result is posted (picomon's
/// own state-dir check is not), the exit code is the worst status; with the
/// receiver down the results stay spooled and the next run posts them
/// first, in order.
#[test]
fn one_shot_with_outputs_posts_every_result_and_keeps_what_it_cannot_send() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_held, port) = reserve_port();
    fs::write(tmp.path().join("nsca.password"), "pass word&=1\n").unwrap();
    let cfg = tmp.path().join("cron.rhai");
    fs::write(
        &cfg,
        format!(
            r#"
config.state_dir = "{dir}/state";
config.outputs = [nsca_web("http://127.0.0.1:{port}/cgi-bin/nsca-web", "picomon", "{dir}/nsca.password",
                           #{{ max_line_size: 300 }})];
add(plugin("check_dummy", ["0", "fine"]), #{{ name: "load", target_name: "web1" }});
add(plugin("check_dummy", ["2", "gone|gone=1;;;0"]), #{{ name: "ping", target_name: "web1", passive: "host" }});
"#,
            dir = tmp.path().display()
        ),
    )
    .unwrap();
    let run = || {
        Command::new(picomon_bin())
            .args(["-c", cfg.to_str().unwrap(), "-1", "--outputs"])
            .stdin(Stdio::null())
            .output()
            .expect("run picomon -1 --outputs")
    };
    // Down: the run still reports and exits with the worst status; the
    // results wait in the spool.
    let first = run();
    assert_eq!(first.status.code(), Some(2), "{first:?}");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("kept in the spool"), "{stderr}");

    let rx = Receiver::start(tmp.path(), port, 400);
    let second = run();
    // `load` and picomon's own state-dir check are OK.
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("2 ok, 0 warning, 1 critical"),
        "{second:?}"
    );
    let lines = rx.lines();
    assert_eq!(rx.errors(), "");
    assert_eq!(lines.len(), 4, "{lines:?}");
    // The first run's pair, then the second's: the spool goes first.
    for pair in lines.chunks(2) {
        let mut pair = pair.to_vec();
        pair.sort_by_key(|l| l.contains("HOST"));
        assert!(
            pair[0].ends_with("PROCESS_SERVICE_CHECK_RESULT;web1;load;0;OK: fine"),
            "{pair:?}"
        );
        assert!(
            pair[1].ends_with("PROCESS_HOST_CHECK_RESULT;web1;1;CRITICAL: gone|gone=1;;;0"),
            "{pair:?}"
        );
    }
    assert!(lines[0] <= lines[2], "the older run first: {lines:?}");
    assert!(!lines.iter().any(|l| l.contains("state_dir")), "{lines:?}");
}

#[test]
fn one_shot_with_outputs_but_none_configured_says_what_to_set() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("c.rhai");
    fs::write(
        &cfg,
        format!("config.state_dir = \"{}/s\";\n", tmp.path().display()),
    )
    .unwrap();
    let out = Command::new(picomon_bin())
        .args(["-c", cfg.to_str().unwrap(), "-1", "--outputs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.outputs"));
}

/// A CA in `pki` that signed a server certificate for 127.0.0.1
/// (`server.pem`) and a client certificate for `picomon-client`
/// (`client.pem`); returned so a test can make a stranger CA like it.
fn client_pki(pki: &Path) -> support::certs::Ca<'_> {
    let ca = support::certs::Ca {
        dir: pki,
        name: "ca",
        ext: "pem",
        key: support::certs::Key::Ec,
        days: 2,
    };
    ca.make("picomon test CA");
    ca.sign("server", "127.0.0.1", "IP:127.0.0.1", "serverAuth");
    ca.sign(
        "client",
        "picomon-client",
        "DNS:picomon-client",
        "clientAuth",
    );
    ca
}

/// `nsca_web` with a TLS client certificate, against a receiver that takes
/// only clients its CA signed: delivered, and the receiver saw our CN;
/// without the certificate, or with one from another CA, the results wait.
#[test]
fn nsca_web_shows_its_client_certificate_to_a_receiver_that_asks() {
    use support::certs::Ca;
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    let ca = client_pki(&pki);
    let other = tmp.path().join("other");
    let stranger_ca = Ca { dir: &other, ..ca };
    stranger_ca.make("someone else's CA");
    stranger_ca.sign(
        "client",
        "picomon-client",
        "DNS:picomon-client",
        "clientAuth",
    );
    let rx = Receiver::start_tls(
        tmp.path(),
        &pki.join("server.pem"),
        &pki.join("server.key"),
        &pki.join("ca.pem"),
    );
    let url = format!("https://127.0.0.1:{}/cgi-bin/nsca-web", rx.port);
    let with = |client: Option<&Path>, name: &str| {
        let mut s = nsca_spec(tmp.path(), &url, 400);
        if let OutputKind::NscaWeb { ca, client: c, .. } = &mut s.kind {
            *ca = Some(pki.join("ca.pem"));
            *c = client.map(|d| picomon::passive::ClientTls {
                cert: d.join("client.pem"),
                key: d.join("client.key"),
            });
        }
        s.name = Some(name.into());
        Outputs::start(&[s], &tmp.path().join("state")).expect("start")
    };
    let good = with(Some(&pki), "good");
    let r = result(1, Status::Ok);
    good.submit(&r);
    assert!(good.flush(LONG), "{:?}", good.status_lines());
    assert_eq!(rx.lines(), [r.command_line(300)]);
    assert_eq!(read(&tmp.path().join("clients.log")), "picomon-client\n");

    for (client, name) in [(None, "none"), (Some(other.as_path()), "stranger")] {
        let out = with(client, name);
        out.submit(&result(2, Status::Critical));
        assert!(!out.flush(Duration::from_secs(3)), "{name}");
        let status = out.status_lines().join("\n");
        assert!(
            status.contains("1 waiting") && status.contains("FAILING"),
            "{name}: {status}"
        );
    }
    assert_eq!(rx.lines().len(), 1);
    assert_eq!(rx.errors(), "");
}

/// A `webhook()` channel shows the same client certificate: its post
/// reaches the handler of a receiver that takes only clients its CA
/// signed (which answers JSON with 400 "not a form": the handshake, not
/// the payload, is under test here); without the certificate nothing gets
/// past the handshake.
#[test]
fn a_webhook_shows_its_client_certificate_to_a_receiver_that_asks() {
    let sb = support::Sandbox::new();
    let pki = sb.path("pki");
    client_pki(&pki);
    let rx = Receiver::start_tls(
        &sb.path(""),
        &pki.join("server.pem"),
        &pki.join("server.key"),
        &pki.join("ca.pem"),
    );
    let config = |name: &str, client: bool| {
        let cert = if client {
            format!(
                ", client_cert: \"{0}/client.pem\", client_key: \"{0}/client.key\"",
                pki.display()
            )
        } else {
            String::new()
        };
        sb.config(&format!(
            "config.base_tick = 1;\nconfig.state_dir = \"{dir}/{name}\";\n\
             config.notify = [webhook(\"https://127.0.0.1:{port}/hook\", \
             #{{ format: \"json\", ca_file: \"{pki}/ca.pem\"{cert} }})];\n\
             add(plugin(\"check_dummy\", [\"2\", \"down\"]), #{{ name: \"{name}\", retry: 0 }});\n",
            dir = sb.path("").display(),
            port = rx.port,
            pki = pki.display(),
        ))
    };

    let cfg = config("with-cert", true);
    let mut d = sb.spawn(&["-c", cfg.to_str().unwrap()]);
    assert!(
        wait_for(LONG, || rx
            .errors()
            .contains("content type 'application/json' is not a form")
            .then_some(()))
        .is_some(),
        "the post did not reach the receiver: {}\n{}",
        rx.errors(),
        d.stderr()
    );
    d.stop();

    let before = rx.errors();
    let cfg = config("without-cert", false);
    let mut d = sb.spawn(&["-c", cfg.to_str().unwrap()]);
    assert!(
        wait_for(LONG, || d.stderr().contains("without-cert").then_some(())).is_some(),
        "{}",
        d.stderr()
    );
    // The daemon says the delivery failed, and the receiver's handler saw
    // nothing more.
    assert!(
        wait_for(LONG, || {
            let err = d.stderr();
            err.contains("notification json-1 delivery failed")
                .then_some(())
        })
        .is_some(),
        "{}",
        d.stderr()
    );
    d.stop();
    assert_eq!(rx.errors(), before);
}
