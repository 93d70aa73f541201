//! The systemd template unit is valid for systemd itself (systemd-analyze
//! verify, with ExecStart pointed at the built watchdog) and runs the
//! watchdog as `nobody` with a state directory per instance.

use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn systemd_unit_verifies_and_runs_as_nobody_with_a_state_directory() {
    let unit = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/picomon@.service"),
    )
    .unwrap();
    for line in [
        "User=nobody",
        "StateDirectory=picomon/%i",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.contains("-c /usr/local/etc/picomon/%i.rhai"), "{exec}");
    assert!(exec.contains("--state-dir /var/lib/picomon/%i"), "{exec}");

    let dir = tempfile::tempdir().unwrap();
    let built = env!("CARGO_BIN_EXE_picomon-watchdog");
    fs::write(
        dir.path().join("picomon@.service"),
        unit.replace("/usr/local/bin/picomon-watchdog", built),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("picomon@main.service"))
        .output()
        .expect("systemd-analyze (package systemd) is needed for this test");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // systemd only remarks on the user: the contract asks for `nobody`.
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.contains("Special user nobody configured"), "{err}");
    }
}
