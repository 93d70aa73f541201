//! The real `picomon` binary: `-1`, `--check-config`, `-V`, the tick loop
//! and its signals (SPEC §1, §2, §4).

mod support;

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::*;

const LONG: Duration = Duration::from_secs(20);

fn dummy_config(extra: &str) -> String {
    format!(
        r#"
config.state_dir = "@DIR@/state";
add(plugin("check_dummy", ["0", "all fine"]), #{{ target_name: "web1", name: "dummy ok" }});
add(plugin("check_dummy", ["1", "getting full"]), #{{ target_name: "web1", name: "dummy warning" }});
add(plugin("check_dummy", ["2", "down hard"]), #{{ target_name: "web2", name: "dummy critical" }});
{extra}
"#
    )
}

#[test]
fn one_shot_prints_each_result_and_exits_with_the_worst_status() {
    let sb = Sandbox::new();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = sb.config(&dummy_config(&format!(
        r#"
add(plugin("check_tcp", ["-H", "127.0.0.1", "-p", "{open_port}"]), #{{ target_name: "lo-open" }});
add(plugin("check_tcp", ["-H", "127.0.0.1", "-p", "{closed_port}"]), #{{ target_name: "lo-closed" }});
"#
    )));
    let out = sb.run(&["-c", cfg.to_str().unwrap(), "-1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("OK        dummy ok on web1: OK: all fine\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("WARNING   dummy warning on web1: WARNING: getting full\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CRITICAL  dummy critical on web2: CRITICAL: down hard\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK        check_tcp on lo-open: TCP OK"),
        "{stdout}"
    );
    let refused = stdout
        .lines()
        .find(|l| l.contains("check_tcp on lo-closed"))
        .unwrap_or_default();
    assert!(
        refused.starts_with("CRITICAL  check_tcp on lo-closed: "),
        "{stdout}"
    );
    assert!(refused.contains("refused"), "{refused}");
    assert!(
        stdout.ends_with("3 ok, 1 warning, 2 critical, 0 unknown\n"),
        "{stdout}"
    );
    // picomon's own check of its state dir is run and listed too.
    assert!(
        stdout.contains("OK        picomon state_dir on ")
            && stdout.contains("does not exist yet; the daemon creates it"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(2));
    // -1 never touches the state directory.
    assert!(!sb.path("state").exists());
}

#[test]
fn one_shot_exit_code_is_unknown_for_an_absent_plugin() {
    let sb = Sandbox::new();
    let cfg = sb.config(
        r#"add(plugin("check_does_not_exist_anywhere", []), #{ target_name: "here" });
add(plugin("check_dummy", ["0", "fine"]), #{ target_name: "here" });"#,
    );
    let out = sb.run(&["-c", cfg.to_str().unwrap(), "--one"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("UNKNOWN   check_does_not_exist_anywhere on here: cannot run check_does_not_exist_anywhere"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("2 ok, 0 warning, 0 critical, 1 unknown\n"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn one_shot_all_ok_exits_0() {
    let sb = Sandbox::new();
    let cfg = sb.config(r#"add(plugin("check_dummy", ["0", "fine"]), #{ target_name: "here" });"#);
    let out = sb.run(&["-c", cfg.to_str().unwrap(), "-1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("2 ok, 0 warning, 0 critical, 0 unknown\n")
    );
}

#[test]
fn one_shot_runs_every_check_when_its_stdout_is_closed() {
    // `picomon -1 | head -1`: the reader goes away, the runs and the exit
    // status must not.
    let sb = Sandbox::new();
    let cfg = sb.config(
        r#"
add(shell("touch @DIR@/ran1"), #{ name: "one", target_name: "here" });
add(shell("touch @DIR@/ran2; exit 2"), #{ name: "two", target_name: "here" });
add(shell("touch @DIR@/ran3"), #{ name: "three", target_name: "here" });
"#,
    );
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let status = std::process::Command::new(picomon_bin())
        .args(["-c", cfg.to_str().unwrap(), "-1"])
        .current_dir(sb.path(""))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(write_end))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2), "{status:?}");
    for n in 1..=3 {
        assert!(
            sb.path(&format!("ran{n}")).exists(),
            "check {n} did not run"
        );
    }
}

#[test]
fn check_config_prints_a_summary_or_the_position_of_the_error() {
    let sb = Sandbox::new();
    let cfg = sb.config(&dummy_config(""));
    let out = sb.run(&["-c", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 checks"), "{stdout}");

    let bad = sb.config("config.base_tick = 60;\nconfig.emails.tto = [];\n");
    let out = sb.run(&["-c", bad.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:2:", bad.display());
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("tto"), "{stderr}");
}

#[test]
fn a_bad_config_fails_start_up_with_exit_1_and_the_position() {
    let sb = Sandbox::new();
    let bad = sb.config("config.base_tick = \"x\";\n");
    let out = sb.run(&["-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:1:", bad.display())),
        "{stderr}"
    );
}

#[test]
fn version_flag_prints_the_version() {
    let sb = Sandbox::new();
    let out = sb.run(&["-V"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("picomon {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A daemon with a slow tick and one counter check, so every extra run is
/// caused by a signal.
fn counter_daemon(sb: &Sandbox, tick: f64, extra: &str) -> Daemon {
    let cfg = sb.config(&format!(
        r#"
config.base_tick = {tick};
config.state_dir = "@DIR@/state";
add(plugin("@FIX@/daemon/counter", ["@DIR@/runs", "@DIR@/status"]), #{{ name: "counter", target_name: "box", retry: 0 }});
{extra}
"#
    ));
    sb.spawn(&["-c", cfg.to_str().unwrap()])
}

#[test]
fn sigusr1_dumps_the_state_problems_first_and_starts_a_tick() {
    let sb = Sandbox::new();
    fs::write(sb.path("status"), "2\ncounter broken\n").unwrap();
    let d = counter_daemon(
        &sb,
        3600.0,
        r#"add(plugin("check_dummy", ["0", "calm"]), #{ name: "calm", target_name: "box" });"#,
    );
    assert!(
        d.wait_stderr("problem counter on box", 1, LONG),
        "{}",
        d.stderr()
    );
    assert_eq!(count_lines(&sb.path("runs")), 1);
    // Both first runs are done (debug log), so the dump shows both results.
    assert!(d.wait_stderr("calm on box: OK", 1, LONG), "{}", d.stderr());
    d.signal(libc::SIGUSR1);
    assert!(d.wait_stdout("Other checks", LONG), "{}", d.stdout());
    let out = d.stdout();
    assert!(
        out.starts_with("Signal SIGUSR1 caught, printing state of checks. ("),
        "{out}"
    );
    let problem = out.find("CRITICAL counter on box: since").expect(&out);
    let calm = out.find("OK calm on box: OK: calm").expect(&out);
    assert!(problem < calm, "{out}");
    // The signal started a tick at once: a second run long before 3600 s.
    assert!(sb.wait_lines("runs", 2, LONG), "no run after SIGUSR1");
}

#[test]
fn ticks_run_checks_again_and_recovery_is_logged() {
    let sb = Sandbox::new();
    fs::write(sb.path("status"), "2\n").unwrap();
    let d = counter_daemon(&sb, 0.2, "");
    assert!(
        d.wait_stderr("problem counter on box", 1, LONG),
        "{}",
        d.stderr()
    );
    fs::write(sb.path("status"), "0\n").unwrap();
    assert!(
        d.wait_stderr("recovery counter on box", 1, LONG),
        "{}",
        d.stderr()
    );
    assert!(count_lines(&sb.path("runs")) >= 2);
    assert!(sb.path("state/heartbeat").exists());
}

#[test]
fn sighup_with_a_broken_config_logs_the_position_and_keeps_running() {
    let sb = Sandbox::new();
    let d = counter_daemon(&sb, 0.2, "");
    assert!(sb.wait_lines("runs", 2, LONG));
    let cfg = sb.path("config.rhai");
    fs::write(&cfg, "config.base_tick = 0.2;\nlet x = ;\n").unwrap();
    d.signal(libc::SIGHUP);
    assert!(d.wait_stderr("reload failed", 1, LONG), "{}", d.stderr());
    let err = d.stderr();
    assert!(err.contains(&format!("{}:2:", cfg.display())), "{err}");
    // The old config goes on running its check.
    let before = count_lines(&sb.path("runs"));
    assert!(
        sb.wait_lines("runs", before + 3, LONG),
        "checks stopped after a broken reload"
    );
}

#[test]
fn sighup_with_a_changed_config_keeps_the_state_of_unchanged_checks() {
    let sb = Sandbox::new();
    fs::write(sb.path("status"), "2\nstill broken\n").unwrap();
    let d = counter_daemon(&sb, 0.3, "");
    assert!(
        d.wait_stderr("problem counter on box", 1, LONG),
        "{}",
        d.stderr()
    );
    let cfg = sb.path("config.rhai");
    let text = fs::read_to_string(&cfg).unwrap()
        + "\nadd(plugin(\"check_dummy\", [\"0\", \"newcomer\"]), #{ name: \"new\", target_name: \"box\" });\n";
    fs::write(&cfg, text).unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_stderr("config reloaded: 3 checks (2 kept", 1, LONG),
        "{}",
        d.stderr()
    );
    let runs = count_lines(&sb.path("runs"));
    assert!(sb.wait_lines("runs", runs + 2, LONG));
    assert!(d.wait_stderr("new on box: OK", 1, LONG), "{}", d.stderr());
    d.signal(libc::SIGUSR1);
    assert!(d.wait_stdout("Other checks", LONG));
    let out = d.stdout();
    assert!(out.contains("Checks in error (1):"), "{out}");
    assert!(out.contains("CRITICAL counter on box"), "{out}");
    assert!(out.contains("newcomer"), "{out}");
    // Still the same outage: no second Problem.
    assert_eq!(
        d.stderr().matches("problem counter on box").count(),
        1,
        "{}",
        d.stderr()
    );
}

#[test]
fn sigterm_while_a_plugin_hangs_kills_its_group_and_exits_0_within_3_s() {
    let sb = Sandbox::new();
    let cfg = sb.config(
        r#"
config.base_tick = 3600;
config.state_dir = "@DIR@/state";
add(plugin("@FIX@/daemon/hang", ["@DIR@/pids"]), #{ name: "hang", target_name: "box", timeout: 600 });
"#,
    );
    let pidfile = sb.path("daemon.pid");
    let mut d = sb.spawn(&[
        "-c",
        cfg.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
    ]);
    let pids: Vec<i32> = wait_for(LONG, || {
        let p: Vec<i32> = read(&sb.path("pids"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        (p.len() >= 2).then_some(p)
    })
    .expect("plugin did not start");
    assert_eq!(read(&pidfile).trim(), d.pid().to_string());
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("daemon did not exit");
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert!(took < Duration::from_secs(3), "took {took:?}");
    for pid in pids {
        assert!(
            wait_for(Duration::from_secs(5), || (!alive(pid)).then_some(())).is_some(),
            "plugin process {pid} survived"
        );
    }
    assert!(!pidfile.exists(), "pid file left behind");
}

#[test]
fn the_sample_config_is_all_ok_on_this_machine() {
    let sb = Sandbox::new();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.sample.rhai");
    let out = sb.run(&["-c", sample.to_str().unwrap(), "-1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let root = unsafe { libc::geteuid() } == 0;
    for line in stdout.lines().filter(|l| !l.contains(" ok, ")) {
        // Unprivileged ping may be forbidden here; it must then say how to allow it.
        let excused = !root && line.starts_with("UNKNOWN") && line.contains("ping_group_range");
        assert!(line.starts_with("OK ") || excused, "{stdout}");
    }
    assert!(stdout.lines().count() >= 8, "{stdout}");
    if root {
        assert_eq!(out.status.code(), Some(0), "{stdout}");
    }
}

#[test]
fn a_trace_route_is_remembered_across_a_restart() {
    let sb = Sandbox::new();
    let cfg = sb.config(
        r#"
config.base_tick = 3600;
config.state_dir = "@DIR@/state";
let me = host("me", #{ ipv4: "127.0.0.1" });
add(trace4(me, #{ on_route_change: "warning" }), #{ retry: 0 });
"#,
    );
    let args = ["-c", cfg.to_str().unwrap()];
    let mut d = Daemon::start_anew(sb.path("").as_path(), &args);
    let state = sb.path("state/state");
    let saved = wait_for(LONG, || {
        let text = read(&state);
        text.contains("\"memory\"").then_some(text)
    })
    .unwrap_or_else(|| panic!("no route in the state file\n{}", d.stderr()));
    assert!(saved.contains("\"memory\": \"127.0.0.1\""), "{saved}");
    assert!(d.stop().success());

    // The route changed while picomon was down.
    fs::write(
        &state,
        saved.replace(
            "\"memory\": \"127.0.0.1\"",
            "\"memory\": \"192.0.2.1 127.0.0.1\"",
        ),
    )
    .unwrap();
    let d = Daemon::start_anew(sb.path("").as_path(), &args);
    assert!(
        d.wait_stderr(
            "route changed: was 192.0.2.1 127.0.0.1, now 127.0.0.1",
            1,
            LONG
        ),
        "{}",
        d.stderr()
    );
    assert!(
        d.stderr().contains("problem trace4 on me: WARNING"),
        "{}",
        d.stderr()
    );
}
