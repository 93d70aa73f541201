//! Passive outputs wired into the real binary: every run's result reaches
//! `config.outputs`, `config.result_dir` files are forwarded, `--send`
//! forwards stdin, and a check outside its `when` window is not run.

use crate::support;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(20);

fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    read(path)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn every_result_and_result_dir_files_reach_the_outputs() {
    let sb = Sandbox::new();
    fs::create_dir(sb.path("drop")).unwrap();
    let cfg = sb.config(
        r#"
config.base_tick = 0.2;
config.state_dir = "@DIR@/state";
config.result_dir = "@DIR@/drop";
config.outputs = [json_lines("@DIR@/results.jsonl"), command_file("@DIR@/nagios.cmd")];
add(plugin("check_dummy", ["1", "half full"]), #{ name: "disk", target_name: "web1" });
add(plugin("check_dummy", ["2", "gone"]), #{ name: "ping", target_name: "web2", passive: "host",
    host_name: "web2.example.org" });
"#,
    );
    // Nagios' command file is a named pipe that exists while Nagios runs; a
    // plain file stands in for it here (the Nagios test uses the real one).
    fs::write(sb.path("nagios.cmd"), "").unwrap();
    let _d = sb.spawn(&["-c", cfg.to_str().unwrap()]);
    let results = sb.path("results.jsonl");
    let lines = wait_for(LONG, || {
        let l = json_lines(&results);
        (l.iter().filter(|v| v["check"] == "disk").count() >= 2).then_some(l)
    })
    .expect("results in the json_lines output");
    let disk = lines.iter().find(|v| v["check"] == "disk").unwrap();
    assert_eq!(disk["host"], "web1");
    assert_eq!(disk["status"], "WARNING", "{disk}");
    assert!(disk["output"].as_str().unwrap().contains("half full"));
    let cmd = wait_for(LONG, || {
        let c = read(&sb.path("nagios.cmd"));
        c.contains("PROCESS_HOST_CHECK_RESULT;web2.example.org;1;")
            .then_some(c)
    })
    .expect("host result in the command file");
    assert!(
        cmd.contains("PROCESS_SERVICE_CHECK_RESULT;web1;disk;1;WARNING: half full"),
        "{cmd}"
    );

    // Another program drops a result file (written, then renamed in).
    fs::write(
        sb.path("drop/.tmp"),
        "[1700000000] PROCESS_SERVICE_CHECK_RESULT;db1;backup;0;backup done|size=12GB\n",
    )
    .unwrap();
    fs::rename(sb.path("drop/.tmp"), sb.path("drop/1700000000.result")).unwrap();
    let backup = wait_for(LONG, || {
        json_lines(&results)
            .into_iter()
            .find(|v| v["host"] == "db1")
    })
    .expect("result_dir file forwarded");
    assert_eq!(backup["check"], "backup");
    assert_eq!(backup["status"], "OK");
    assert!(
        wait_for(LONG, || (!sb.path("drop/1700000000.result").exists())
            .then_some(()))
        .is_some(),
        "result file not removed"
    );
}

#[test]
fn send_forwards_stdin_lines_through_the_outputs() {
    let sb = Sandbox::new();
    let cfg = sb.config(
        r#"
config.state_dir = "@DIR@/state";
config.outputs = [json_lines("@DIR@/results.jsonl")];
"#,
    );
    let mut child = Command::new(picomon_bin())
        .args(["-c", cfg.to_str().unwrap(), "--send"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"PROCESS_SERVICE_CHECK_RESULT;web1;backup;2;backup failed\n\
              [1700000000] PROCESS_HOST_CHECK_RESULT;web2;0;up\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&sb.path("results.jsonl"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["check"], "backup");
    assert_eq!(lines[0]["status"], "CRITICAL");
    assert_eq!(lines[1]["host"], "web2");
}

#[test]
fn send_without_outputs_fails_and_says_what_to_set() {
    let sb = Sandbox::new();
    let cfg = sb.config("config.state_dir = \"@DIR@/state\";\n");
    let out = Command::new(picomon_bin())
        .args(["-c", cfg.to_str().unwrap(), "--send"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.outputs"));
}

#[test]
fn a_check_outside_its_when_window_is_not_run() {
    let sb = Sandbox::new();
    let cfg = sb.config(
        r#"
config.base_tick = 0.2;
config.state_dir = "@DIR@/state";
add(plugin("@FIX@/daemon/counter", ["@DIR@/never"]), #{ name: "future", target_name: "box",
    when: #{ start: "2099-11-11 11:11:11" } });
add(plugin("@FIX@/daemon/counter", ["@DIR@/ended"]), #{ name: "past", target_name: "box",
    when: #{ end: "2001-01-01 00:00" } });
add(plugin("@FIX@/daemon/counter", ["@DIR@/always"]), #{ name: "now", target_name: "box" });
add(plugin("@FIX@/daemon/counter", ["@DIR@/every_minute"]), #{ name: "any minute", target_name: "box",
    when: #{ minutes: "0-59", months: "1-12" } });
"#,
    );
    let _d = sb.spawn(&["-c", cfg.to_str().unwrap()]);
    assert!(
        sb.wait_lines("always", 3, LONG),
        "the unrestricted check did not run"
    );
    assert!(
        sb.wait_lines("every_minute", 3, LONG),
        "a window of every minute and month did not run"
    );
    assert!(!sb.path("never").exists(), "a check ran before its window");
    assert!(!sb.path("ended").exists(), "a check ran after its window");
}
