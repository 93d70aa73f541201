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
