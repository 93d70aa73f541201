//! Shared helpers of the integration tests: temp dirs with a config, the
//! real `picomon` binary as a child with captured output; and, in modules,
//! polling with a deadline (`wait`), free ports (`ports`), processes and
//! signals (`procs`), the test SMTP server (`smtp`), the end-to-end rig
//! of a daemon mailing through it (`rig`), test certificates
//! (`certs`), network namespaces (`netns`), the probe tests' peers and
//! constructors (`probes`) and a real terminal (`term`, a tmux pane).
#![allow(dead_code)]

pub mod certs;
pub mod mounts;
pub mod netns;
pub mod ports;
pub mod postfix;
pub mod probes;
pub mod procs;
pub mod rig;
pub mod smtp;
pub mod term;
pub mod wait;

#[allow(unused_imports)] // for the tests that glob-import support
pub use procs::alive;
pub use wait::{wait_for, wait_until};

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn picomon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_picomon"))
}

/// The name libtest gives the test `name` declared in the module `module`
/// (pass `module_path!()`): the module path without the crate's segment, as
/// `--exact` needs it when the test binary re-runs one of its own tests.
pub fn own_test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn read(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A test's own directory with a config file in it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `config.rhai`; `@DIR@` in the text becomes the sandbox path and
    /// `@FIX@` the fixtures folder.
    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.path("config.rhai");
        let text = text
            .replace("@DIR@", &self.dir.path().display().to_string())
            .replace("@FIX@", &fixture("").display().to_string());
        fs::write(&p, text).expect("write config");
        p
    }

    /// Waits until the file `rel` has at least `n` lines (a plugin that
    /// appends a line per run shows its runs so).
    pub fn wait_lines(&self, rel: &str, n: usize, within: Duration) -> bool {
        let path = self.path(rel);
        wait_for(within, || (count_lines(&path) >= n).then_some(())).is_some()
    }

    /// Runs picomon to completion with `args`.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(picomon_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .output()
            .expect("run picomon")
    }

    /// Starts the daemon with stdout and stderr going to files.
    pub fn spawn(&self, args: &[&str]) -> Daemon {
        Daemon::start(
            self.dir.path(),
            args,
            self.path("stdout.log"),
            self.path("stderr.log"),
        )
    }
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    pub child: Option<Child>,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Daemon {
    /// Starts picomon in `dir` with `args` (RUST_LOG=debug), stdout and
    /// stderr going to the files `out` and `err`.
    pub fn start(dir: &Path, args: &[&str], out: PathBuf, err: PathBuf) -> Daemon {
        Daemon::spawn(Command::new(picomon_bin()), dir, args, out, err)
    }

    /// Like [`Daemon::start`], in the network namespace `ns` (`ip netns
    /// exec` execs picomon itself, so the child is the daemon).
    pub fn start_in_netns(ns: &str, dir: &Path, args: &[&str]) -> Daemon {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(picomon_bin());
        let (out, err) = (dir.join("picomon-netns.out"), dir.join("picomon-netns.err"));
        Daemon::spawn(cmd, dir, args, out, err)
    }

    fn spawn(mut cmd: Command, dir: &Path, args: &[&str], out: PathBuf, err: PathBuf) -> Daemon {
        let child = cmd
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn picomon");
        Daemon {
            child: Some(child),
            out,
            err,
        }
    }

    /// Like [`Daemon::start`], logging to new files `dir/picomon-N.out` and
    /// `.err`, so a restarted daemon keeps the logs of the one before.
    pub fn start_anew(dir: &Path, args: &[&str]) -> Daemon {
        let n = fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let out = dir.join(format!("picomon-{n}.out"));
        let err = dir.join(format!("picomon-{n}.err"));
        Daemon::start(dir, args, out, err)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("child").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        procs::signal(self.pid(), sig);
    }

    pub fn stdout(&self) -> String {
        read(&self.out)
    }

    pub fn stderr(&self) -> String {
        read(&self.err)
    }

    /// Waits until stderr contains `needle` `n` times.
    pub fn wait_stderr(&self, needle: &str, n: usize, within: Duration) -> bool {
        wait_for(within, || {
            (self.stderr().matches(needle).count() >= n).then_some(())
        })
        .is_some()
    }

    pub fn wait_stdout(&self, needle: &str, within: Duration) -> bool {
        wait_for(within, || self.stdout().contains(needle).then_some(())).is_some()
    }

    /// Waits for exit; `None` when it did not exit in time.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut().expect("child");
        wait_for(within, || child.try_wait().ok().flatten())
    }

    /// SIGTERM, then the exit status; fails the test if it does not exit
    /// within 40 s.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().expect("running");
        wait_until(
            Duration::from_secs(40),
            "picomon to exit after SIGTERM",
            || child.try_wait().ok().flatten(),
        )
    }

    /// SIGKILL: no shutdown work at all.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn count_lines(path: &Path) -> usize {
    read(path).lines().count()
}

/// Sets what tests/smtp/status-plugin.sh in `dir` answers from its next
/// run: its exit code and output (written whole, then renamed in, so a run
/// never reads half of it).
pub fn set_plugin_status(dir: &Path, code: i32, text: &str) {
    let tmp = dir.join("status.tmp");
    std::fs::write(&tmp, format!("{code}\n{text}\n")).unwrap();
    std::fs::rename(&tmp, dir.join("status")).unwrap();
}

/// The port of the `n`th "http: listening on" line of the daemon's log.
pub fn listening_port(d: &Daemon, n: usize) -> u16 {
    assert!(
        d.wait_stderr("http: listening on 127.0.0.1:", n, Duration::from_secs(60)),
        "no listener in the log:\n{}",
        d.stderr()
    );
    let log = d.stderr();
    let line = log
        .lines()
        .filter(|l| l.contains("http: listening on 127.0.0.1:"))
        .nth(n - 1)
        .expect("listening line");
    let rest = line.split("http: listening on 127.0.0.1:").nth(1).unwrap();
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .expect("port")
}
