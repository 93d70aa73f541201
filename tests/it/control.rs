//! The control socket and the subcommands, on the real binary: `status`
//! (table, `--json`, no daemon), `reload` with a broken then a fixed
//! config, `run CHECK`, garbage and a 10 MB line on the socket, a client
//! running as `nobody`, silent and dripping clients (the operator still
//! gets in), and acks and silences end to end against a real SMTP server
//! (tests/smtp/server.py, aiosmtpd).

use crate::support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::rig::Rig;
use support::smtp::{Mail, Smtp};
use support::term::Terminal;
use support::{picomon_bin, wait_until, Sandbox};

const LONG: Duration = Duration::from_secs(30);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn status_json_shows_each_check_and_without_a_daemon_the_saved_state_and_exit_3() {
    let r = Rig::new(
        0.3,
        r#"add(plugin("check_dummy", ["0", "all fine"]), #{ name: "calm", target_name: "db1" });"#,
    );
    r.set_status(2, "CRITICAL - down hard");
    let mut d = r.daemon_ready();
    let c = r.wait_phase("problem");
    assert_eq!(c["target"], "web1");
    assert_eq!(c["status"], "CRITICAL");
    assert_eq!(c["output"], "CRITICAL - down hard");
    assert!(c["failed_runs"].as_u64().unwrap() >= 1, "{c}");
    assert!(
        c["since"].as_i64().is_some() && c["last_run"].as_i64().is_some(),
        "{c}"
    );
    assert!(c["ack"].is_null() && c["silenced_by"].is_null(), "{c}");
    // A name given is the identity.
    assert_eq!(c["id"], "flappy");
    let v = r.status_json();
    let calm = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "calm")
        .cloned()
        .unwrap();
    assert_eq!(calm["phase"], "ok");
    assert!(v["outbox"]["lines"].is_array(), "{v}");
    assert_eq!(v["silences"], serde_json::json!([]));

    // The table: problems first, only them with --problems, no colour off
    // a terminal.
    let out = r.picomon(&["status", "--problems"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("flappy"),
        "{table}"
    );
    assert!(
        table.contains("PROBLEM") && !table.contains("calm"),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "{table}");
    // A check in PROBLEM: exit 1, for the table and for the check itself.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = r.picomon(&["status", "flappy"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let detail = text(&out.stdout);
    for want in [
        "flappy on web1",
        "PROBLEM",
        "CRITICAL - down hard",
        "thread         picomon.",
        "depends on     nothing",
        "ack            none",
    ] {
        assert!(detail.contains(want), "{want:?} missing:\n{detail}");
    }
    assert_eq!(r.picomon(&["status", "calm"]).status.code(), Some(0));
    let out = r.picomon(&["status", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("no check named"), "{out:?}");
    let out = r.picomon(&["status", "--json"]);
    // A check in PROBLEM: exit 1 for the JSON too, which is pretty-printed
    // as it always was.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let printed = text(&out.stdout);
    assert!(
        printed.starts_with("{\n  \"daemon\": true,\n  \"checks\": [\n    {\n      \"id\": \"")
            && printed.ends_with("\n}\n"),
        "{printed}"
    );
    let v: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(v["daemon"], true, "{v}");
    let out = r.picomon(&["status", "--json", "--only", "calm"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Recovered: exit 0.
    r.set_status(0, "OK - back");
    r.wait_phase("ok");
    assert_eq!(r.picomon(&["status"]).status.code(), Some(0));
    r.set_status(2, "CRITICAL - down hard");
    r.wait_phase("problem");
    assert!(d.stop().success());

    // No daemon: exit 3, and the saved state, as JSON for scripts.
    let out = r.picomon(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON without a daemon");
    assert_eq!(v["daemon"], false, "{v}");
    let saved = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "flappy")
        .cloned()
        .unwrap_or_else(|| panic!("flappy in {v}"));
    assert_eq!(saved["phase"], "problem", "{v}");
    assert_eq!(saved["status"], "CRITICAL", "{v}");

    let out = r.picomon(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        text(&out.stderr).contains("no daemon is running"),
        "{out:?}"
    );
    let saved = text(&out.stdout);
    assert!(
        saved.contains("saved state") && saved.contains(" ago"),
        "{saved}"
    );
    assert!(
        saved.contains("PROBLEM") && saved.contains("down hard"),
        "{saved}"
    );
    // --state-dir finds it as well as -c.
    let state = r.state().display().to_string();
    assert_eq!(
        r.sb.run(&["status", "--state-dir", &state]).status.code(),
        Some(3)
    );
}

#[test]
fn reload_answers_with_the_config_error_then_with_what_changed() {
    let r = Rig::new(60.0, "");
    let mut d = r.daemon_ready();
    let good = fs::read_to_string(r.config()).unwrap();
    fs::write(
        r.config(),
        format!("{good}\nadd(plugin(\"check_dummy\", [\"0\"]), #{{ nmae: 1 }});\n"),
    )
    .unwrap();
    let out = r.picomon(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:", r.config())), "{err}");
    assert!(err.contains("nmae"), "{err}");
    // The old config still runs.
    assert_eq!(r.status_json()["checks"].as_array().unwrap().len(), 2);

    fs::write(
        r.config(),
        format!("{good}\nadd(plugin(\"check_dummy\", [\"0\", \"fine\"]), #{{ name: \"new\" }});\n"),
    )
    .unwrap();
    let out = r.picomon(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "reloaded: 3 checks (1 added, 0 removed, 2 kept)\n"
    );
    assert_eq!(r.status_json()["checks"].as_array().unwrap().len(), 3);
    assert!(d.stop().success());
    let log = d.stderr();
    assert!(log.contains("control: root: {\"cmd\":\"reload\"}"), "{log}");
    // A read-only command too is logged at INFO, with the user.
    assert!(log.contains("INFO ] control: root: status"), "{log}");
}

#[test]
fn run_runs_one_check_now_and_prints_its_line() {
    // A tick of an hour: only `run` makes the second run.
    let r = Rig::new(3600.0, "");
    r.set_status(1, "WARNING - getting full");
    let mut d = r.daemon_ready();
    // The plugin counts a run when it starts: wait for the first run's
    // result, or `run` could join that run instead of starting a second.
    wait_until(LONG, "the first run's result", || {
        text(&r.picomon(&["status"]).stdout)
            .contains("getting full")
            .then_some(())
    });
    let out = r.picomon(&["run", "flappy"]);
    assert_eq!(
        text(&out.stdout),
        "WARNING   flappy on web1: WARNING - getting full\n"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r.runs(), 2);
    let out = r.picomon(&["run", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no check named \"nosuch\""),
        "{out:?}"
    );
    assert!(d.stop().success());
}

/// One request line on a raw connection; the answer line.
fn ask(stream: &UnixStream, line: &[u8]) -> serde_json::Value {
    (&*stream).write_all(line).unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

#[test]
fn garbage_and_a_10_mb_line_get_an_error_answer_and_the_daemon_carries_on() {
    let r = Rig::new(60.0, "");
    let mut d = r.daemon_ready();
    let sock = r.state().join("control.sock");
    let mode = fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    let a = ask(&s, b"hello there\n");
    assert!(
        a["error"].as_str().unwrap().contains("not a request"),
        "{a}"
    );
    let a = ask(&s, b"{\"cmd\":\"rm\",\"path\":\"/\"}\n");
    assert!(a["error"].is_string(), "{a}");
    // The same connection still serves a good request.
    let a = ask(&s, b"{\"cmd\":\"status\"}\n");
    assert!(a["status"]["checks"].is_array(), "{a}");

    let s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    let writer = s.try_clone().unwrap();
    // The server answers and closes before it has read it all: the rest
    // of the write may fail, which is the point.
    let t = std::thread::spawn(move || {
        let big = vec![b'x'; 10 << 20];
        let _ = (&writer).write_all(&big);
    });
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).unwrap();
    t.join().unwrap();
    assert!(answer.contains("longer than 65536 bytes"), "{answer}");

    assert!(matches!(r.picomon(&["status"]).status.code(), Some(0 | 1)));
    assert!(d.stop().success(), "{}", d.stderr());
}

/// The names in a `status --json` answer, and whether the daemon gave it.
fn json_names(out: &Output) -> (Vec<String>, bool) {
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    let names = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    (names, v["daemon"] == true)
}

#[test]
fn status_only_and_problems_list_just_the_checks_asked_for() {
    let r = Rig::new(
        0.3,
        r#"add(plugin("check_dummy", ["0", "all fine"]), #{ name: "calm", target_name: "db1" });
add(plugin("check_dummy", ["0", "all fine"]), #{ name: "quiet", target_name: "db2" });"#,
    );
    r.set_status(2, "CRITICAL - down hard");
    let mut d = r.daemon_ready();
    r.wait_phase("problem");
    let names = |args: &[&str]| json_names(&r.picomon(args));
    let (all, from_daemon) = names(&["status", "--json"]);
    assert!(from_daemon);
    assert!(all.len() >= 3, "{all:?}");
    assert_eq!(names(&["status", "--json", "--problems"]).0, ["flappy"]);
    assert_eq!(names(&["status", "--json", "--only", "calm"]).0, ["calm"]);
    // A glob on the target, and on "NAME on TARGET".
    assert_eq!(
        names(&["status", "--json", "--only", "db*"]).0,
        ["calm", "quiet"]
    );
    assert_eq!(
        names(&["status", "--json", "--only", "q* on db2"]).0,
        ["quiet"]
    );
    assert_eq!(
        names(&["status", "--json", "--only", "db*", "--problems"]).0,
        Vec::<String>::new()
    );
    // The exit code counts the checks shown: none of these is in PROBLEM.
    let out = r.picomon(&["status", "--only", "db*"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let table = text(&out.stdout);
    assert!(
        table.contains("calm") && table.contains("quiet") && !table.contains("flappy"),
        "{table}"
    );
    assert!(d.stop().success(), "{}", d.stderr());
}

#[test]
fn status_and_the_http_pages_are_answered_while_the_loop_is_busy() {
    let r = Rig::new(0.3, r#"config.listen = "127.0.0.1:0";"#);
    let mut d = r.daemon_ready();
    let port = support::listening_port(&d, 1);
    // A first read: the loop publishes its status from now on.
    assert!(json_names(&r.picomon(&["status", "--json"]))
        .0
        .contains(&"flappy".to_string()));
    // The next config reads checks from a FIFO: reloading it keeps the
    // loop in the read until the test writes, so whatever is answered
    // meanwhile is answered without the loop.
    let fifo = r.dir().join("commands.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    r.write_config(
        0.3,
        "",
        &format!(
            "config.listen = \"127.0.0.1:{port}\";\npcrunner_commands(\"{}\");",
            fifo.display()
        ),
    );
    d.signal(libc::SIGHUP);
    // Opening the FIFO for writing returns once the loop opened it to read.
    let mut writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let state = r.state().display().to_string();
    let out = r.sb.run(&["status", "--json", "--state-dir", &state]);
    let (names, from_daemon) = json_names(&out);
    assert!(
        from_daemon && names.contains(&"flappy".to_string()),
        "{out:?}"
    );
    let out =
        r.sb.run(&["status", "--state-dir", &state, "--only", "flappy"]);
    assert!(text(&out.stdout).contains("flappy"), "{out:?}");
    for path in ["/metrics", "/api/v1/checks"] {
        let answer = crate::http::get(port, path);
        let body = text(&answer.body);
        assert_eq!(answer.code, 200, "{path}: {}", answer.head);
        assert!(body.contains("flappy"), "{path}: {body}");
    }
    // Released, the loop finishes the reload and runs the checks again.
    writer.write_all(b"").unwrap();
    drop(writer);
    r.wait_runs(2);
    assert!(d.stop().success(), "{}", d.stderr());
}

#[test]
fn silent_clients_hold_their_slots_two_seconds_at_most_and_never_delay_the_checks() {
    let r = Rig::new(0.3, "");
    let mut d = r.daemon_ready();
    let sock = r.state().join("control.sock");
    // Sixteen clients that connect and say nothing hold every slot, so a
    // seventeenth is turned away (tried again should the sixteen be cut
    // off before it comes, on a slow machine)...
    let stuck = wait_until(LONG, "the seventeenth client turned away", || {
        let stuck: Vec<UnixStream> = (0..16)
            .map(|_| UnixStream::connect(&sock).unwrap())
            .collect();
        let extra = UnixStream::connect(&sock).unwrap();
        extra.set_read_timeout(Some(LONG)).unwrap();
        let mut answer = String::new();
        BufReader::new(&extra).read_line(&mut answer).unwrap();
        // The server answers in the order it accepts: once the seventeenth
        // is told "busy", one of the sixteen told so too (a slot still held
        // by the rig's last `status`) has its answer waiting. Then again.
        let one_turned_away = stuck.iter().any(|s| {
            // Read, not peeked: a set with an answer waiting is dropped.
            s.set_nonblocking(true).unwrap();
            let waiting = std::io::Read::read(&mut &*s, &mut [0u8; 1]).is_ok();
            s.set_nonblocking(false).unwrap();
            waiting
        });
        (answer.contains("busy") && !one_turned_away).then_some(stuck)
    });
    // ...each only until its first line's deadline, then it is told so.
    for s in &stuck {
        s.set_read_timeout(Some(LONG)).unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        assert!(
            answer.contains("no whole request line within 2 s"),
            "{answer:?}"
        );
    }
    // The checks went on meanwhile, and the slots are free again.
    r.wait_runs(3);
    assert!(matches!(r.picomon(&["status"]).status.code(), Some(0 | 1)));
    assert!(d.stop().success());
}

/// A process killed (and reaped) when the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd`: its output if it ended within `within`; else it is killed.
fn output_within(cmd: &mut Command, within: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The output is a few lines: it fits in the pipes while we wait.
    if support::wait_for(within, || child.try_wait().ok().flatten()).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    Some(child.wait_with_output().unwrap())
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root): the dripping clients run as nobody"]
fn twenty_clients_dripping_as_another_user_never_lock_root_out() {
    assert!(nix::unistd::Uid::effective().is_root(), "needs root");
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(65534))
        .unwrap()
        .expect("a group with gid 65534 (nogroup)");
    let r = Rig::new(0.5, &format!("config.control_group = \"{}\";", group.name));
    let mut d = r.daemon_ready();
    fs::set_permissions(r.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(r.state(), fs::Permissions::from_mode(0o755)).unwrap();
    let sock = r.state().join("control.sock");
    let events = r.dir().join("drip.log");
    // Twenty connections as nobody (a control_group member), each sending
    // one space a second and connecting again as soon as it is closed.
    let _drip = Killed(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args([
                "/usr/bin/python3",
                "-c",
                include_str!("../fixtures/hostile/control-drip.py"),
            ])
            .arg(&sock)
            .args(["20", "1"])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&events).unwrap())
            .spawn()
            .expect("setpriv python3"),
    );
    let count = |what: &str| {
        support::read(&events)
            .lines()
            .filter(|l| *l == what)
            .count()
    };
    // Nobody's fifth connection and on are turned away from the start.
    wait_until(LONG, "nobody turned away", || {
        (count("busy") > 0).then_some(())
    });
    let state = r.state().display().to_string();
    let mut answered = 0;
    for _ in 0..4 {
        let out = output_within(
            Command::new(picomon_bin()).args(["status", "--state-dir", &state]),
            Duration::from_secs(5),
        );
        if let Some(out) = out {
            if out.status.success() && text(&out.stdout).contains("flappy") {
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 4, "{}", support::read(&events));
    // The drips were real: each one's slot ended at its deadline.
    wait_until(LONG, "a dripping client cut off", || {
        (count("cut") > 0).then_some(())
    });
    let log = support::read(&events);
    assert!(!log.contains("other"), "{log}");
    assert!(d.stop().success());
}

/// `picomon ARGS` as nobody (uid and gid 65534, no groups).
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(picomon_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv")
}

#[test]
fn a_client_running_as_nobody_is_refused_even_when_the_file_mode_lets_it_connect() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root (it runs the client as nobody)"
    );
    let r = Rig::new(60.0, "");
    let mut d = r.daemon_ready();
    let state = r.state().display().to_string();
    // The socket's own mode (0600) already keeps nobody out.
    fs::set_permissions(r.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(r.state(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&["status", "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("config.control_group"),
        "{out:?}"
    );
    // Loosened by hand, SO_PEERCRED still refuses it.
    let sock = r.state().join("control.sock");
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&["status", "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("permission denied"), "{out:?}");
    assert!(d.stop().success());
    assert!(d.stderr().contains("(uid 65534"), "{}", d.stderr());
}

#[test]
fn members_of_the_control_group_are_served_through_a_0660_socket() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root (it runs the client as nobody)"
    );
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(65534))
        .unwrap()
        .expect("a group with gid 65534 (nogroup)");
    let r = Rig::new(60.0, &format!("config.control_group = \"{}\";", group.name));
    let mut d = r.daemon_ready();
    let sock = r.state().join("control.sock");
    let meta = fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 65534);
    fs::set_permissions(r.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(r.state(), fs::Permissions::from_mode(0o755)).unwrap();
    let state = r.state().display().to_string();
    let out = as_nobody(&["status", "--json", "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["checks"].is_array(), "{v}");
    assert!(d.stop().success());
}

fn subjects(mails: &[Mail]) -> Vec<String> {
    mails.iter().map(|m| m.subject().to_string()).collect()
}

#[test]
fn an_ack_mails_into_the_thread_survives_a_restart_and_ends_at_recovery() {
    let r = Rig::new(0.3, "");
    let server = r.server();
    r.set_status(2, "CRITICAL - down");
    let mut d = r.daemon_ready();
    let problem = server.wait_messages(1);
    assert_eq!(problem[0].subject(), "[picomon] CRITICAL: flappy on web1");
    // Acking a check that is not in PROBLEM says its phase.
    let out = r.picomon(&["ack", "picomon state_dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is OK, not in PROBLEM"),
        "{out:?}"
    );

    let out = r.picomon(&["ack", "flappy", "-m", "on it"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mails = server.wait_messages(2);
    let root = mails[0].one("Message-ID");
    assert_eq!(mails[1].subject(), "Re: [picomon] CRITICAL: flappy on web1");
    assert_eq!(mails[1].one("In-Reply-To"), root);
    assert!(
        mails[1].body.starts_with("Acknowledged by root: on it"),
        "{}",
        mails[1].body
    );
    let c = r.check_json();
    assert_eq!(c["ack"]["by"], "root");
    assert_eq!(c["ack"]["comment"], "on it");

    // SIGKILL and restart: the ack is still there.
    d.kill();
    let mut d = r.daemon_ready();
    assert_eq!(r.check_json()["ack"]["comment"], "on it");

    r.set_status(0, "OK - back");
    let mails = server.wait_messages(3);
    assert!(
        mails[2].body.starts_with("OK: recovered"),
        "{}",
        mails[2].body
    );
    let c = r.wait_phase("ok");
    assert!(c["ack"].is_null(), "the recovery ended the ack: {c}");
    assert!(d.stop().success());
    assert_eq!(
        server.received().len(),
        3,
        "{:?}",
        subjects(&server.received())
    );
}

#[test]
fn a_silenced_problem_is_mailed_at_unsilence_and_one_that_recovered_is_not() {
    let r = Rig::new(0.3, "");
    let server = r.server();
    let mut d = r.daemon_ready();
    let out = r.picomon(&["silence", "web1*", "--for", "1h", "-m", "deploy"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("silence 1: \"web1*\""),
        "{out:?}"
    );
    let listed = text(&r.picomon(&["silences"]).stdout);
    assert!(
        listed.contains("\"web1*\"") && listed.contains("deploy"),
        "{listed}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&r.picomon(&["silences", "--json"]).stdout).unwrap();
    assert_eq!(v["silences"][0]["pattern"], "web1*", "{v}");
    assert_eq!(v["silences"][0]["comment"], "deploy", "{v}");

    r.set_status(2, "CRITICAL - first");
    let c = r.wait_phase("problem");
    assert_eq!(c["silenced_by"], "1");
    // The silence survives a SIGKILL and restart.
    d.kill();
    let mut d = r.daemon_ready();
    assert_eq!(r.status_json()["silences"][0]["id"], "1");
    r.wait_runs(3);
    assert!(server.received().is_empty(), "no mail while silenced");

    let out = r.picomon(&["unsilence", "1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mails = server.wait_messages(1);
    assert_eq!(mails[0].subject(), "[picomon] CRITICAL: flappy on web1");
    assert!(
        mails[0].body.contains("CRITICAL - first"),
        "{}",
        mails[0].body
    );

    // Recovered while silenced: nothing at unsilence. (Its Recovery is
    // mailed first, ending the first thread.)
    r.set_status(0, "OK - back");
    server.wait_messages(2);
    r.picomon(&["silence", "flappy"]);
    r.set_status(2, "CRITICAL - second");
    r.wait_phase("problem");
    r.set_status(0, "OK - again");
    r.wait_phase("ok");
    assert_eq!(r.picomon(&["unsilence", "2"]).status.code(), Some(0));
    assert_eq!(r.picomon(&["unsilence", "2"]).status.code(), Some(1));
    // The marker: a third outage, mailed at once; nothing came before it.
    r.set_status(2, "CRITICAL - third");
    let mails = server.wait_messages(3);
    assert!(
        mails[2].body.contains("CRITICAL - third"),
        "{:?}",
        subjects(&mails)
    );
    assert!(d.stop().success());
    assert_eq!(
        server.received().len(),
        3,
        "{:?}",
        subjects(&server.received())
    );
}

#[test]
fn one_shot_only_runs_the_matching_checks() {
    let r = Rig::new(
        60.0,
        r#"add(plugin("check_dummy", ["0", "fine"]), #{ name: "calm", target_name: "db1" });"#,
    );
    let out = r.picomon(&["-1", "--only", "db*"]);
    let s = text(&out.stdout);
    assert!(s.contains("calm on db1") && !s.contains("flappy"), "{s}");
    assert!(
        s.ends_with("1 ok, 0 warning, 0 critical, 0 unknown\n"),
        "{s}"
    );
    let out = r.picomon(&["-1", "--only", "nothing*"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--only \"nothing*\""), "{out:?}");
}

/// The line of `needle` in the file at `path` (1-based).
fn line_of(path: &str, needle: &str) -> usize {
    let text = fs::read_to_string(path).unwrap();
    1 + text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} in {text}"))
}

#[test]
fn a_reload_that_moves_state_dir_is_refused_and_the_waiting_problem_still_arrives_once() {
    let r = Rig::new(0.3, "");
    // The server answers 451 to every message: the Problem waits in the
    // outbox.
    let busy = Smtp::start_with(
        r.dir(),
        r.port,
        &support::smtp::Options {
            extra: &["--data-4xx-first", "1000000"],
            ..Default::default()
        },
    );
    r.set_status(2, "CRITICAL - down");
    let mut d = r.daemon_ready();
    wait_until(LONG, "the Problem refused with 451", || {
        fs::read_to_string(&busy.log)
            .unwrap_or_default()
            .contains("refused DATA with 451")
            .then_some(())
    });

    let moved = r.dir().join("moved");
    r.write_config(
        0.3,
        "",
        &format!("config.state_dir = \"{}\";", moved.display()),
    );
    let line = line_of(&r.config(), "/moved\";");
    let out = r.picomon(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}:{line}:", r.config())),
        "the error names the new line {line}: {err}"
    );
    assert!(
        err.contains("state_dir cannot change while picomon runs; restart it"),
        "{err}"
    );
    // SIGHUP is refused the same way, and the daemon stays up on the old
    // dir: it still answers there, its lock and socket stay.
    d.signal(libc::SIGHUP);
    assert!(d.wait_stderr("state_dir cannot change while picomon runs", 2, LONG));
    assert!(d.wait_exit(Duration::from_millis(1)).is_none());
    assert_eq!(r.check_json()["phase"], "problem");
    for kept in ["lock", "control.sock"] {
        assert!(r.state().join(kept).exists(), "{kept} stays in the old dir");
    }
    assert!(!moved.exists(), "nothing is created in the new dir");

    // The server accepts again: the waiting Problem arrives, once.
    drop(busy);
    let server = r.server();
    let mails = server.wait_messages(1);
    assert_eq!(mails[0].subject(), "[picomon] CRITICAL: flappy on web1");
    assert!(d.stop().success());
    assert_eq!(
        server.count("ops@example.org", "[picomon] CRITICAL: flappy on web1"),
        1,
        "{:?}",
        subjects(&server.received())
    );
}

#[test]
fn reload_after_a_syntax_error_at_the_last_line_answers_with_file_line_col() {
    let r = Rig::new(60.0, "");
    let mut d = r.daemon_ready();
    let good = fs::read_to_string(r.config()).unwrap();
    // The daemon's state dir is set at the top; a syntax error stops the
    // whole script before it runs, so the CLI cannot learn it from the
    // config.
    fs::write(r.config(), format!("{good}let broken = ;\n")).unwrap();
    let line = line_of(&r.config(), "let broken");
    let out = r.picomon(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}:{line}:", r.config())),
        "FILE:LINE:COL of the error at line {line}: {err}"
    );
    assert!(!err.contains("no daemon"), "{err}");
    // It was the daemon that answered: it logged the refused reload.
    assert!(d.wait_stderr("reload failed, keeping the running config", 1, LONG));
    assert_eq!(r.picomon(&["status"]).status.code(), Some(0));
    assert!(d.stop().success());

    // No daemon runs: `reload` still answers with the config's error.
    let out = r.picomon(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!("{}:{line}:", r.config())),
        "{out:?}"
    );
}

#[test]
fn durations_above_one_hundred_years_are_refused_by_the_cli_and_the_daemon() {
    let r = Rig::new(60.0, "");
    let d = r.daemon_ready();
    for long in ["18446744073709551615s", "9223372036854775807s", "36526d"] {
        let out = r.picomon(&["silence", "web1*", "--for", long]);
        assert_eq!(out.status.code(), Some(2), "{long}: {out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("longer than the longest duration picomon accepts, 100 years"),
            "{long}: {err}"
        );
    }
    let out = r.picomon(&["ack", "flappy", "--for", "18446744073709551615s"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A client that talks JSON itself gets the same answer from the daemon.
    let stream = UnixStream::connect(r.state().join("control.sock")).unwrap();
    let answer = ask(
        &stream,
        br#"{"cmd":"silence","pattern":"web1*","for_secs":18446744073709551615,"comment":""}
"#,
    );
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than the longest duration")),
        "{answer}"
    );
    let out = r.picomon(&["silences"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!text(&out.stdout).contains("web1*"), "no silence: {out:?}");
    drop(d);
}

/// A heartbeat check `backup` (period 2 s, grace 1 s), a result_dir and
/// a listener taking pings. The test toggles the check on purpose: flap
/// detection, which would rightly hold its mails, is off.
fn heartbeat_rig() -> Rig {
    let r = Rig::new(0.3, "");
    let d = r.dir().display().to_string();
    fs::create_dir_all(r.dir().join("results")).unwrap();
    r.write_config(
        0.3,
        "",
        &format!(
            r#"config.result_dir = "{d}/results";
config.listen = "127.0.0.1:0";
config.ping_key_file = "{d}/ping.key";
add(heartbeat(#{{ period: "2s", grace: "1s" }}), #{{ name: "backup", retry: 0, flap: false }});"#
        ),
    );
    fs::write(r.dir().join("ping.key"), format!("{PING_KEY}\n")).unwrap();
    r.set_status(0, "OK - fine");
    r
}

const PING_KEY: &str = "0c5f-the-ping-key";

/// Waits for a mail whose subject and body contain the given texts;
/// returns every mail so far.
fn wait_mail(server: &Smtp, subject: &str, body: &str) -> Vec<Mail> {
    support::wait_for(LONG, || {
        let all = server.received();
        all.iter()
            .any(|m| m.subject().contains(subject) && m.body_decoded.contains(body))
            .then_some(all)
    })
    .unwrap_or_else(|| {
        let got: Vec<String> = server
            .received()
            .iter()
            .map(|m| format!("{}\n{}", m.subject(), m.body_decoded))
            .collect();
        panic!("no mail {subject:?} saying {body:?} within {LONG:?}; got:\n{got:#?}")
    })
}

/// `picomon -c CONFIG ARGS` (the config first: a wrapped command takes
/// every argument after `--`).
fn picomon_first(r: &Rig, args: &[&str]) -> Output {
    let cfg = r.config();
    let mut all = vec!["-c", cfg.as_str()];
    all.extend(args);
    r.sb.run(&all)
}

#[test]
fn heartbeat_pings_keep_it_ok_silence_is_one_problem_and_a_ping_one_recovery() {
    let r = heartbeat_rig();
    let server = r.server();
    let mut d = r.daemon_ready();
    // Each ping is judged at once, so its answer says OK.
    for _ in 0..3 {
        let out = picomon_first(&r, &["ping", "backup"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(text(&out.stdout).contains("HEARTBEAT OK"), "{out:?}");
    }
    // No ping for 3 s: a Problem.
    let mails = wait_mail(&server, "CRITICAL: backup on localhost", "no ping since");
    assert!(
        mails[0].body_decoded.contains("(expected every 2s)"),
        "{}",
        mails[0].body_decoded
    );
    // A ping: its Recovery; by then exactly one Problem was mailed.
    let out = picomon_first(&r, &["ping", "backup", "-m", "nightly run done"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mails = wait_mail(
        &server,
        "Re: [picomon] CRITICAL: backup",
        "nightly run done",
    );
    let problems = mails
        .iter()
        .filter(|m| m.subject() == "[picomon] CRITICAL: backup on localhost")
        .count();
    assert_eq!(problems, 1, "{:?}", subjects(&mails));

    // --fail -m: a Problem that says why.
    let out = picomon_first(&r, &["ping", "backup", "--fail", "-m", "disk full"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    wait_mail(&server, "[picomon] CRITICAL: backup", "disk full");

    // The wrapper form: `true` is a success, and its output goes through.
    let out = picomon_first(
        &r,
        &["ping", "backup", "--", "sh", "-c", "echo copied 42 files"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "copied 42 files\n");
    wait_mail(&server, "Re: [picomon] CRITICAL: backup", "copied 42 files");
    // `false`: CRITICAL, with its exit status; picomon exits with it.
    let out = picomon_first(&r, &["ping", "backup", "--", "false"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let c = backup(&r);
    assert_eq!(c["status"], "CRITICAL", "{c}");
    assert!(
        c["output"].as_str().unwrap().contains("exit status 1"),
        "{c}"
    );

    // A passive result for its name is a ping too: from --send ...
    let mut send = Command::new(picomon_bin())
        .args(["-c", &r.config(), "--send"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    send.stdin
        .take()
        .unwrap()
        .write_all(b"PROCESS_SERVICE_CHECK_RESULT;db1;backup;0;dump written\n")
        .unwrap();
    let out = send.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(backup(&r)["output"]
        .as_str()
        .unwrap()
        .contains("dump written"));
    // ... and from result_dir.
    fs::write(
        r.dir().join("results/1.tmp"),
        "PROCESS_SERVICE_CHECK_RESULT;db1;backup;2;dump failed\n",
    )
    .unwrap();
    fs::rename(r.dir().join("results/1.tmp"), r.dir().join("results/1")).unwrap();
    wait_until(LONG, "the result_dir ping", || {
        let c = backup(&r);
        c["output"]
            .as_str()
            .unwrap()
            .contains("dump failed")
            .then_some(())
    });

    // Over HTTP with the key, as the README's cron line does it.
    let port = support::listening_port(&d, 1);
    let out = Command::new("curl")
        .args(["-fsS", "-m", "10", "--retry", "3", "--data-raw", "via curl"])
        .arg(format!("http://127.0.0.1:{port}/ping/{PING_KEY}/backup"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "{out:?}");
    wait_mail(&server, "Re: [picomon] CRITICAL: backup", "via curl");

    // What is not a heartbeat's ping is refused with the reason.
    let out = picomon_first(&r, &["ping", "nothing"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("no check named"), "{out:?}");
    let out = picomon_first(&r, &["ping", "flappy"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("not a heartbeat check"),
        "{out:?}"
    );

    // The last ping survives a restart.
    let out = picomon_first(&r, &["ping", "backup", "-m", "before the restart"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    d.kill();
    let mut d = r.daemon_ready();
    let c = backup(&r);
    let output = c["output"].as_str().unwrap();
    assert!(
        output.contains("before the restart") || output.contains("no ping since"),
        "{c}"
    );
    assert!(d.stop().success());
}

/// The `backup` entry of `status --json`.
fn backup(r: &Rig) -> serde_json::Value {
    r.status_json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "backup")
        .cloned()
        .expect("backup in status")
}

/// `picomon ARGS` in `cwd` with exactly the config environment `env`.
fn picomon_in(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(picomon_bin());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("PICOMON_CONFIG")
        .env_remove("PICOMON_ETC")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run picomon")
}

#[test]
fn without_c_the_config_is_picomon_config_then_the_only_one_in_etc() {
    let sb = Sandbox::new();
    let etc = sb.path("etc");
    let cwd = sb.path("elsewhere");
    fs::create_dir_all(&etc).unwrap();
    fs::create_dir_all(&cwd).unwrap();
    let conf = |name: &str, state: &str| {
        let p = etc.join(name);
        let d = sb.path(state).display().to_string();
        fs::write(&p, format!("config.state_dir = \"{d}\";\n")).unwrap();
        p
    };
    conf("example.rhai", "example-state");
    let main = conf("main.rhai", "main-state");
    let etc_env = [("PICOMON_ETC", etc.as_path())];

    // The only config besides the example: the daemon's flags and the
    // subcommands find it (the socket of main.rhai's state dir).
    let out = picomon_in(&cwd, &etc_env, &["--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = picomon_in(&cwd, &etc_env, &["silences"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        text(&out.stderr).contains("main-state/control.sock"),
        "{out:?}"
    );

    // Two: an error that lists them and says how to choose.
    let other = conf("other.rhai", "other-state");
    let out = picomon_in(&cwd, &etc_env, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    for want in [
        main.display().to_string(),
        other.display().to_string(),
        "-c FILE".into(),
        "PICOMON_CONFIG".into(),
    ] {
        assert!(err.contains(&want), "{want} missing: {err}");
    }
    assert!(!err.contains("example.rhai"), "{err}");

    // PICOMON_CONFIG chooses; -c wins over it.
    let both = [
        ("PICOMON_ETC", etc.as_path()),
        ("PICOMON_CONFIG", other.as_path()),
    ];
    let out = picomon_in(&cwd, &both, &["silences"]);
    assert!(
        text(&out.stderr).contains("other-state/control.sock"),
        "{out:?}"
    );
    let m = main.display().to_string();
    let out = picomon_in(&cwd, &both, &["silences", "-c", &m]);
    assert!(
        text(&out.stderr).contains("main-state/control.sock"),
        "{out:?}"
    );

    // ./config.rhai comes before /etc/picomon.
    fs::write(
        cwd.join("config.rhai"),
        format!(
            "config.state_dir = \"{}\";\n",
            sb.path("cwd-state").display()
        ),
    )
    .unwrap();
    let out = picomon_in(&cwd, &etc_env, &["silences"]);
    assert!(
        text(&out.stderr).contains("cwd-state/control.sock"),
        "{out:?}"
    );
}

/// A config with a check whose name, target and output are wider than
/// 80 columns together, in PROBLEM, next to `flappy` (OK).
const WIDE: &str = r#"add(plugin("check_dummy", ["2", "CRITICAL - the peer refused the connection after a long and winding wait | time=5.0s;1;2;0"]), #{ name: "a check whose name is long enough to wrap", target_name: "a-long-host-name.datacenter.example.org" });"#;

#[test]
fn status_on_an_80_column_terminal_fits_is_coloured_and_a_pipe_gets_whole_lines() {
    let r = Rig::new(0.3, WIDE);
    let mut d = r.daemon_ready();
    wait_until(LONG, "the wide check in PROBLEM", || {
        let v = r.status_json();
        let wide = v["checks"]
            .as_array()?
            .iter()
            .find(|c| c["target"] == "a-long-host-name.datacenter.example.org")?
            .clone();
        (wide["phase"] == "problem").then_some(())
    });
    let bin = picomon_bin().display().to_string();
    let cfg = r.config();
    let term = Terminal::start(r.dir(), 80, &[]);

    let (screen, code) = term.run(&format!("{bin} status -c {cfg}"));
    assert_eq!(code, 1, "{screen}");
    for l in screen.lines() {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l}\n{screen}",
            l.chars().count()
        );
    }
    assert!(
        screen.contains("a check whose") && screen.contains('…'),
        "{screen}"
    );
    assert!(
        !screen.contains("time=5.0s"),
        "perfdata on the terminal:\n{screen}"
    );
    let coloured = term.screen(true);
    assert!(coloured.contains("\x1b[31m"), "no red:\n{coloured}");

    let (screen, _) = term.run(&format!("NO_COLOR=1 {bin} status -c {cfg}"));
    assert!(screen.contains("PROBLEM"), "{screen}");
    assert!(
        !term.screen(true).contains("\x1b[31m"),
        "{}",
        term.screen(true)
    );

    // Into a pipe: every line whole.
    let (screen, _) = term.run(&format!("{bin} status -c {cfg} | cat"));
    assert!(screen.contains("after a long and winding wait"), "{screen}");
    assert!(screen.lines().any(|l| l.chars().count() > 80), "{screen}");
    assert!(d.stop().success());
}

#[test]
fn one_shot_on_a_terminal_leaves_no_progress_line_and_json_parses() {
    let r = Rig::new(60.0, WIDE);
    let bin = picomon_bin().display().to_string();
    let cfg = r.config();
    let term = Terminal::start(r.dir(), 80, &[]);
    let (screen, code) = term.run(&format!("{bin} -1 -c {cfg}"));
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("2 ok, 0 warning, 1 critical"), "{screen}");
    assert!(screen.contains("CRITICAL  a check whose"), "{screen}");
    assert!(
        !screen.contains("picomon -1:"),
        "the progress line stayed:\n{screen}"
    );
    assert!(
        term.screen(true).contains("\x1b[31mCRITICAL"),
        "{}",
        term.screen(true)
    );

    let out = r.picomon(&["-1", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("-1 --json is JSON");
    assert_eq!(v["critical"], 1, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{v}");
    assert!(
        results
            .iter()
            .any(|x| x["name"] == "flappy" && x["status"] == "OK"),
        "{v}"
    );

    let out = r.picomon(&["--check-config", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    fs::write(r.dir().join("config.rhai"), "config.nope = 1;\n").unwrap();
    let out = r.picomon(&["--check-config", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["line"].clone()),
        (false.into(), 1.into()),
        "{v}"
    );
}

#[test]
fn bash_completes_check_names_from_the_config_and_silence_ids_from_the_daemon_or_state_dir() {
    let r = Rig::new(
        60.0,
        r#"add(plugin("check_dummy", ["0", "fine"]), #{ name: "web port", target_name: "db1" });"#,
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/picomon.bash");
    let bin = picomon_bin();
    let bin_dir = bin.parent().unwrap();
    let cfg = r.config();
    let complete = |line: &str| support::term::bash_complete(&script, line, Some(bin_dir));

    for sub in ["status", "ack", "run", "silence"] {
        assert_eq!(
            complete(&format!("picomon -c {cfg} {sub} ")),
            ["flappy", "web\\ port"],
            "{sub}"
        );
    }
    assert_eq!(complete(&format!("picomon -c {cfg} ack fl")), ["flappy"]);
    assert_eq!(
        complete(&format!("picomon -c {cfg} -1 --only w")),
        ["web\\ port"]
    );
    // Not where a check goes: an option's value, a second argument, flags.
    assert!(!complete(&format!("picomon -c {cfg} ack -m ")).contains(&"flappy".to_string()));
    assert!(!complete(&format!("picomon -c {cfg} ack flappy ")).contains(&"flappy".to_string()));
    assert!(complete(&format!("picomon -c {cfg} ack --st")).contains(&"--sticky".to_string()));
    // Subcommands as before.
    assert_eq!(complete("picomon sil"), ["silence", "silences"]);
    // What picomon keeps for itself is never offered.
    assert!(complete("picomon --").contains(&"--check-config".to_string()));
    assert!(!complete("picomon --").contains(&"--watchdog-mail".to_string()));
    assert!(complete("picomon __").is_empty());
    assert!(!complete("picomon ").contains(&"__complete".to_string()));

    // Silence ids: the daemon's, then (stopped) the state dir's.
    let mut d = r.daemon_ready();
    let out = r.picomon(&["silence", "web*", "-m", "deploy"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(complete(&format!("picomon -c {cfg} unsilence ")), ["1"]);
    assert!(d.stop().success());
    let state = r.state().display().to_string();
    assert_eq!(
        complete(&format!("picomon --state-dir {state} unsilence ")),
        ["1"]
    );

    // At a real prompt: TAB after "ack fl" types the rest of the name
    // (bash finds the completion of /path/to/picomon under "picomon").
    let term = Terminal::start(r.dir(), 200, &[]);
    term.keys(&["-l", &format!("source {}", script.display())]);
    term.keys(&["Enter"]);
    term.keys(&["-l", &format!("{} -c {cfg} ack fl", bin.display())]);
    term.keys(&["Tab"]);
    wait_until(LONG, "the check name completed at the prompt", || {
        term.screen(false).contains("ack flappy").then_some(())
    });
    term.keys(&["C-c"]);
}

/// The config the zsh and fish tests complete from: two checks, one whose
/// name has a space.
fn completion_rig() -> Rig {
    Rig::new(
        60.0,
        r#"add(plugin("check_dummy", ["0", "fine"]), #{ name: "web port", target_name: "db1" });"#,
    )
}

#[test]
fn fish_completes_check_names_from_the_config_and_never_offers_hidden_ones() {
    let r = completion_rig();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/picomon.fish");
    let bin = picomon_bin();
    let cfg = r.config();
    let complete = |line: &str| {
        let mut got = support::term::fish_complete(&script, line, bin.parent());
        got.sort();
        got
    };
    for sub in ["status", "ack", "run", "silence"] {
        assert_eq!(
            complete(&format!("picomon -c {cfg} {sub} ")),
            ["flappy", "web port"],
            "{sub}"
        );
    }
    assert_eq!(complete(&format!("picomon -c {cfg} ack fl")), ["flappy"]);
    assert_eq!(
        complete(&format!("picomon -c {cfg} -1 --only w")),
        ["web port"]
    );
    assert!(complete("picomon --").contains(&"--check-config".to_string()));
    assert!(!complete("picomon --").contains(&"--watchdog-mail".to_string()));
    assert!(complete("picomon ").contains(&"status".to_string()));
    assert!(!complete("picomon ").contains(&"__complete".to_string()));
    assert!(complete("picomon __").is_empty());
}

#[test]
fn zsh_completes_check_names_at_a_prompt_and_never_offers_hidden_ones() {
    let r = completion_rig();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/_picomon");
    let bin = picomon_bin();
    let cfg = r.config();
    let term = Terminal::start_shell(r.dir(), 200, &[], &["zsh", "-f"]);
    // PATH is set in the shell: Debian's /etc/zsh/zshenv sets its own.
    term.keys(&[
        "-l",
        &format!(
            "path=({} $path); autoload -U compinit && compinit -u && source {}",
            bin.parent().unwrap().display(),
            script.display()
        ),
    ]);
    term.keys(&["Enter"]);
    // Each line: TAB, then a marker typed after it; what TAB inserted sits
    // between the typed text and the marker (zsh reads the marker only
    // once the completion is done).
    let tab = |typed: &str, want: &str| {
        term.keys(&["-l", typed]);
        term.keys(&["Tab"]);
        term.keys(&["-l", "#END"]);
        wait_until(
            LONG,
            &format!("TAB after {typed:?} to give {want:?}"),
            || {
                term.screen(false)
                    .contains(&format!("{want}#END"))
                    .then_some(())
            },
        );
        term.keys(&["C-u"]);
    };
    tab(&format!("picomon -c {cfg} ack fl"), "ack flappy ");
    tab(&format!("picomon -c {cfg} ack web"), "ack web\\ port ");
    tab(&format!("picomon -c {cfg} -1 --only fl"), "--only flappy ");
    tab("picomon --check-c", "--check-config ");
    // Hidden: TAB inserts nothing.
    tab("picomon --watch", "picomon --watch");
    tab("picomon __compl", "picomon __compl");
}
