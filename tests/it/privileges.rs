//! `--user`: started as root, picomon prepares the state directory and drops
//! to the user before any check runs; as root without it, it warns once.

use crate::support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(20);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A sandbox `nobody` can read, with a check that records who runs it.
fn whoami_config(sb: &Sandbox) -> std::path::PathBuf {
    fs::set_permissions(sb.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = sb.config(
        r#"
config.base_tick = 3600;
config.state_dir = "@DIR@/state";
add(shell("id -u > @DIR@/uid; id -G > @DIR@/groups"), #{ name: "whoami", target_name: "box" });
"#,
    );
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
    cfg
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn user_flag_drops_to_nobody_before_any_check_and_gives_it_the_state_dir() {
    assert!(is_root(), "needs root");
    let sb = Sandbox::new();
    let cfg = whoami_config(&sb);
    let d = sb.spawn(&["-c", cfg.to_str().unwrap(), "--user", "nobody"]);
    // The check writes `groups` last.
    let groups = wait_for(LONG, || {
        let s = read(&sb.path("groups"));
        s.ends_with('\n').then_some(s)
    })
    .unwrap_or_else(|| panic!("check did not run: {}", d.stderr()));
    assert_eq!(read(&sb.path("uid")).trim(), "65534");
    // No supplementary group of root's is kept.
    assert_eq!(groups.trim(), "65534", "groups: {groups}");
    let meta = fs::metadata(sb.path("state")).unwrap();
    assert_eq!(meta.uid(), 65534);
    assert!(d.stderr().contains("running as nobody"), "{}", d.stderr());
    assert!(!d.stderr().contains("checks run as root"), "{}", d.stderr());
    let status = fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn root_without_user_warns_once_that_checks_run_as_root() {
    assert!(is_root(), "needs root");
    let sb = Sandbox::new();
    let cfg = whoami_config(&sb);
    let d = sb.spawn(&["-c", cfg.to_str().unwrap()]);
    assert!(wait_for(LONG, || read(&sb.path("groups"))
        .ends_with('\n')
        .then_some(()))
    .is_some());
    assert_eq!(read(&sb.path("uid")).trim(), "0");
    d.signal(libc::SIGUSR1);
    assert!(d.wait_stdout("Other checks", LONG));
    assert_eq!(
        d.stderr().matches("checks run as root").count(),
        1,
        "{}",
        d.stderr()
    );
}

#[test]
fn user_flag_without_root_is_refused_with_a_reason() {
    if is_root() {
        // As root, run the binary as nobody to see the refusal.
        let sb = Sandbox::new();
        let cfg = whoami_config(&sb);
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(picomon_bin())
            .args(["-c", cfg.to_str().unwrap(), "--user", "root"])
            .current_dir("/")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--user root: only root can switch users"),
            "{err}"
        );
        return;
    }
    let sb = Sandbox::new();
    let cfg = whoami_config(&sb);
    let out = sb.run(&["-c", cfg.to_str().unwrap(), "--user", "root"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only root can switch users"));
}

/// A config for root whose state directory is `state` in the sandbox.
fn root_config(sb: &Sandbox) -> std::path::PathBuf {
    sb.config(
        r#"
config.base_tick = 3600;
config.state_dir = "@DIR@/state";
add(plugin("check_dummy", ["0", "fine"]), #{ name: "calm", target_name: "box" });
"#,
    )
}

/// Runs root's picomon with `args` until it exits; its exit code and stderr.
fn refused(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String) {
    let mut d = sb.spawn(args);
    let status = d
        .wait_exit(LONG)
        .unwrap_or_else(|| panic!("picomon kept running: {}", d.stderr()));
    (status.code(), d.stderr())
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn as_root_a_link_planted_at_the_pid_file_or_the_lock_is_refused_and_its_target_untouched() {
    use std::os::unix::fs::symlink;
    assert!(is_root(), "needs root");
    let sb = Sandbox::new();
    let cfg = root_config(&sb);
    let cfg = cfg.to_str().unwrap();
    let precious = sb.path("precious");
    fs::write(&precious, "root's own file\n").unwrap();

    // The pid file.
    let pid = sb.path("picomon.pid");
    symlink(&precious, &pid).unwrap();
    let (code, err) = refused(&sb, &["-c", cfg, "--pid-file", pid.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(err.contains("picomon.pid"), "{err}");
    assert_eq!(read(&precious), "root's own file\n");
    assert!(fs::symlink_metadata(&pid).unwrap().file_type().is_symlink());

    // state_dir/lock.
    let state = sb.path("state");
    let lock = state.join("lock");
    fs::remove_file(&lock).unwrap();
    symlink(&precious, &lock).unwrap();
    let (code, err) = refused(&sb, &["-c", cfg]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(err.contains("state/lock"), "{err}");
    assert_eq!(read(&precious), "root's own file\n");
    assert_eq!(fs::metadata(&precious).unwrap().mode() & 0o777, 0o644);
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn as_root_a_state_dir_another_user_controls_is_refused() {
    assert!(is_root(), "needs root");
    let sb = Sandbox::new();
    let cfg = root_config(&sb);
    let cfg = cfg.to_str().unwrap();
    let state = sb.path("state");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, err) = refused(&sb, &["-c", cfg]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is writable by every user"), "{err}");
    assert!(!state.join("lock").exists());

    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let (code, err) = refused(&sb, &["-c", cfg]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("belongs to uid 65534"), "{err}");
    assert!(!state.join("lock").exists());
}
