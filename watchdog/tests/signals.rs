//! picomon-watchdog passes SIGUSR1 and SIGHUP on to its picomon child.

#[path = "../../tests/support/wait.rs"]
mod wait;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(40);

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    wait::wait_for(LONG, || f().then_some(())).is_some()
}

/// Kills the watchdog (and so its child) if the test fails half-way.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; SIGTERM makes it stop picomon too.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = wait::wait_for(LONG, || self.0.try_wait().ok().flatten());
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn sigusr1_and_sighup_reach_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { dir.path().join(n) };
    let conf = p("sig.rhai");
    fs::write(
        &conf,
        format!(
            "config.base_tick = 3600;\nconfig.state_dir = \"{}\";\n\
             add(plugin(\"check_dummy\", [\"0\", \"fine\"]), #{{ name: \"calm\", target_name: \"box\" }});\n",
            p("state").display()
        ),
    )
    .unwrap();
    let mut w = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_picomon-watchdog"))
            .args([
                "-c",
                conf.to_str().unwrap(),
                "--",
                "--pid-file",
                p("child.pid").to_str().unwrap(),
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(fs::File::create(p("out")).unwrap())
            .stderr(fs::File::create(p("err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = w.0.id() as i32;
    assert!(
        wait_until(|| read(&p("err")).contains("picomon started")),
        "{}",
        read(&p("err"))
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    assert!(
        wait_until(|| read(&p("out")).contains("calm on box")),
        "no dump: {}",
        read(&p("out"))
    );
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(
        wait_until(|| read(&p("err")).contains("config reloaded: 2 checks (2 kept")),
        "{}",
        read(&p("err"))
    );
    // The watchdog itself is still there, and so is the same child.
    assert!(w.0.try_wait().unwrap().is_none());
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(wait_until(|| w.0.try_wait().unwrap().is_some()));
}
