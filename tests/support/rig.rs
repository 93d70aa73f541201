//! The end-to-end rig: a sandbox whose config runs the real daemon with
//! one check driven by a status file (tests/smtp/status-plugin.sh) and
//! mails `ops@example.org` through a test SMTP server on a held port. The
//! control, mail, noise, history and mail-in tests each start the daemon with it, set the
//! check's status, and wait for runs, phases and mails.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use super::ports::{reserve_port, Reserved};
use super::smtp::Smtp;
use super::{count_lines, set_plugin_status, wait_until, Daemon, Sandbox};

/// How long a wait may take before the test fails: generous, as the
/// machine may be very loaded.
pub const WITHIN: Duration = Duration::from_secs(120);

/// The recipient every rig config mails.
pub const OPS: &str = "ops@example.org";

/// The check the status plugin runs: its name and target, its `retry`,
/// and the file it appends a line to at each run.
#[derive(Clone, Copy, Debug)]
pub struct StatusCheck {
    pub name: &'static str,
    pub target: &'static str,
    pub retry: u32,
    pub runs: &'static str,
}

/// `flappy` on web1, alerting at the first failed run.
pub const FLAPPY: StatusCheck = StatusCheck {
    name: "flappy",
    target: "web1",
    retry: 0,
    runs: "runs",
};

/// `marker` on here: run at every tick, so its runs count ticks.
pub const MARKER: StatusCheck = StatusCheck {
    name: "marker",
    target: "here",
    retry: 0,
    runs: "marker-runs",
};

/// A sandbox with the config, and the port its mail goes to.
pub struct Rig {
    pub sb: Sandbox,
    pub port: u16,
    pub check: StatusCheck,
    /// Holds `port` until the test's server takes it over.
    _held: Reserved,
}

impl Rig {
    /// [`FLAPPY`] every `tick` seconds, with `extra` after it.
    pub fn new(tick: impl Display, extra: &str) -> Rig {
        Rig::with(FLAPPY, tick, "", extra)
    }

    /// `check` every `tick` seconds, with `before` and `after` around it
    /// in the config.
    pub fn with(check: StatusCheck, tick: impl Display, before: &str, after: &str) -> Rig {
        let (_held, port) = reserve_port();
        let rig = Rig {
            sb: Sandbox::new(),
            port,
            check,
            _held,
        };
        rig.write_config(tick, before, after);
        rig
    }

    /// Writes the config again (for a reload).
    pub fn write_config(&self, tick: impl Display, before: &str, after: &str) {
        let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
        let d = self.dir().display().to_string();
        let (port, c) = (self.port, self.check);
        // No empty line for no `before`: tests name lines of the config.
        let before = if before.is_empty() {
            String::new()
        } else {
            format!("{before}\n")
        };
        self.sb.config(&format!(
            r#"
config.base_tick = {tick};
config.state_dir = "{d}/state";
config.emails.to = ["{OPS}"];
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.smtp_host = "127.0.0.1:{port}";
config.emails.smtp_retry_timeout = 1;
config.emails.subject_tpl = "[picomon] {{state}}: {{check}} on {{dest}}";
{before}add(plugin("{plugin}", ["{d}/{runs}", "{d}/status"]), #{{ name: "{name}", target_name: "{target}", retry: {retry} }});
{after}
"#,
            plugin = plugin.display(),
            runs = c.runs,
            name = c.name,
            target = c.target,
            retry = c.retry,
        ));
    }

    pub fn dir(&self) -> &Path {
        self.sb.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.sb.path(rel)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// The config file, as `-c` takes it.
    pub fn config(&self) -> String {
        self.path("config.rhai").display().to_string()
    }

    /// What the check answers from its next run.
    pub fn set_status(&self, code: i32, text: &str) {
        set_plugin_status(self.dir(), code, text);
    }

    /// How often the check ran.
    pub fn runs(&self) -> usize {
        count_lines(&self.path(self.check.runs))
    }

    /// Waits until the check ran `n` more times.
    pub fn wait_runs(&self, n: usize) {
        let target = self.runs() + n;
        wait_until(
            WITHIN,
            &format!("{n} more runs of {}", self.check.name),
            || (self.runs() >= target).then_some(()),
        );
    }

    /// Starts the daemon (logging to new files, so a restarted daemon keeps
    /// the logs of the one before).
    pub fn daemon(&self) -> Daemon {
        Daemon::start_anew(self.dir(), &["-c", &self.config()])
    }

    /// Starts the daemon and waits until its control socket answers.
    pub fn daemon_ready(&self) -> Daemon {
        let d = self.daemon();
        wait_until(WITHIN, "the control socket", || {
            // 0, or 1 with a check in PROBLEM; 3 while no daemon answers.
            matches!(self.picomon(&["status"]).status.code(), Some(0 | 1)).then_some(())
        });
        d
    }

    /// The test SMTP server, on the config's port.
    pub fn server(&self) -> Smtp {
        Smtp::start(self.dir(), self.port)
    }

    /// `picomon ARGS -c CONFIG`.
    pub fn picomon(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let cfg = self.config();
        all.extend(["-c", &cfg]);
        self.sb.run(&all)
    }

    /// `status --json` of the running daemon.
    pub fn status_json(&self) -> serde_json::Value {
        let out = self.picomon(&["status", "--json"]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    /// The check's entry of `status --json`.
    pub fn check_json(&self) -> serde_json::Value {
        let v = self.status_json();
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == self.check.name)
            .cloned()
            .unwrap_or_else(|| panic!("{} in status", self.check.name))
    }

    /// Waits until the check is in `phase`; returns its entry.
    pub fn wait_phase(&self, phase: &str) -> serde_json::Value {
        wait_until(
            WITHIN,
            &format!("{} in phase {phase}", self.check.name),
            || {
                let c = self.check_json();
                (c["phase"] == phase).then_some(c)
            },
        )
    }
}
