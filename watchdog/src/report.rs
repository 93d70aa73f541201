//! The watchdog's mail: why picomon stopped, for how long it ran, what it
//! said last. Pure text, tested without processes.

use std::time::Duration;

/// Why the watchdog is writing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Exited on its own with this code.
    Exited(i32),
    /// Killed by a signal (its name, e.g. `SIGKILL`).
    Killed(String),
    /// No heartbeat for this long.
    Hung(Duration),
}

impl Ending {
    pub fn from_status(status: std::process::ExitStatus) -> Ending {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(sig)) => Ending::Killed(signal_name(sig)),
            (None, None) => Ending::Exited(-1),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Ending::Exited(code) => format!("exited with status {code}"),
            Ending::Killed(name) => format!("killed by {name}"),
            Ending::Hung(d) => format!("hung: no heartbeat for {} s", d.as_secs()),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// What happens next, for the mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// No `--restart`: the watchdog stops watching (or keeps watching a
    /// hung child).
    Nothing,
    /// Restart number `n` after `wait`.
    Restart { n: u32, wait: Duration },
}

pub struct Report<'a> {
    pub host: &'a str,
    pub config: &'a str,
    pub ending: Ending,
    pub uptime: Duration,
    pub next: Next,
    pub tail: &'a [String],
}

impl Report<'_> {
    pub fn body(&self) -> String {
        let mut b = format!(
            "picomon on {} (config {}) {}.\n\nUptime: {}\n",
            self.host,
            self.config,
            self.ending.describe(),
            picomon_common::hms(self.uptime.as_micros() as i64)
        );
        match &self.next {
            Next::Nothing => {
                b.push_str("Restart: no (run the watchdog with --restart to restart it)\n")
            }
            Next::Restart { n, wait } => b.push_str(&format!(
                "Restart: restart number {n} in {} s\n",
                wait.as_secs()
            )),
        }
        b.push_str(&format!(
            "\nLast {} lines of its stderr:\n",
            self.tail.len()
        ));
        for l in self.tail {
            b.push_str("  ");
            b.push_str(l);
            b.push('\n');
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_the_signal_uptime_restart_and_tail() {
        let tail = vec!["line one".to_string(), "last words".to_string()];
        let r = Report {
            host: "box",
            config: "/etc/picomon/a.rhai",
            ending: Ending::Killed(signal_name(libc::SIGKILL)),
            uptime: Duration::from_secs(3723),
            next: Next::Restart {
                n: 2,
                wait: Duration::from_secs(4),
            },
            tail: &tail,
        };
        let b = r.body();
        assert!(
            b.starts_with("picomon on box (config /etc/picomon/a.rhai) killed by SIGKILL.\n"),
            "{b}"
        );
        assert!(b.contains("Uptime: 1:02:03\n"));
        assert!(b.contains("Restart: restart number 2 in 4 s\n"));
        assert!(
            b.ends_with("Last 2 lines of its stderr:\n  line one\n  last words\n"),
            "{b}"
        );
    }

    #[test]
    fn exit_codes_and_hangs_are_described() {
        assert_eq!(Ending::Exited(1).describe(), "exited with status 1");
        assert_eq!(
            Ending::Hung(Duration::from_secs(7)).describe(),
            "hung: no heartbeat for 7 s"
        );
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
    }
}
