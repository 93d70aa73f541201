//! Command-line flags, and which config file they mean
//! ([`Cli::config_file`]).

mod config_file;
pub mod term;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueHint};

/// `--version`: the package version and the git commit it was built from
/// (build.rs), so a report names exactly what ran.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PICOMON_COMMIT"), ")");

#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "picomon",
    version = VERSION,
    about = "A tiny standalone alerting daemon: runs checks every tick and mails when they really fail or recover"
)]
pub struct Cli {
    /// Config file; else $PICOMON_CONFIG, else ./config.rhai, else the only *.rhai in /etc/picomon (example.rhai aside)
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        global = true,
        value_hint = ValueHint::FilePath
    )]
    pub config: Option<PathBuf>,

    /// Run every check once now, print each result, exit with the worst status
    #[arg(short = '1', long = "one")]
    pub one: bool,

    /// With -1: mail the problems found
    #[arg(long, requires = "one")]
    pub notify: bool,

    /// With -1: send every result through config.outputs (pcrunner's cron use)
    #[arg(long, requires = "one")]
    pub outputs: bool,

    /// Debug logging (RUST_LOG still wins where set)
    #[arg(short = 'D', long)]
    pub debug: bool,

    /// Evaluate and validate the config, print a summary, exit
    #[arg(long)]
    pub check_config: bool,

    /// picomon-watchdog's mail: reads its request (settings, subject, body)
    /// on stdin, queues it and delivers the outbox; not for people
    #[arg(long, hide = true)]
    pub watchdog_mail: bool,

    /// With -1 or --check-config: print one JSON document instead of text
    #[arg(long)]
    pub json: bool,

    /// Send one test mail through the configured path and print the answer
    #[arg(long)]
    pub test_mail: bool,

    /// Read passive result lines from stdin and forward them to the outputs
    #[arg(long)]
    pub send: bool,

    /// Overrides config.state_dir (subcommands: where the daemon's socket is)
    #[arg(long, value_name = "DIR", global = true, value_hint = ValueHint::DirPath)]
    pub state_dir: Option<PathBuf>,

    /// Write the pid there, remove it at exit
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub pid_file: Option<PathBuf>,

    /// Started as root: drop to this user before any check runs
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Username)]
    pub user: Option<String>,

    /// With -1: only the checks whose name, identity or target matches this glob
    #[arg(long, value_name = "PATTERN", requires = "one")]
    pub only: Option<String>,

    /// Talk to the running daemon through its control socket
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands: clients of the daemon's control socket (`-c CONF` or
/// `--state-dir DIR` finds it).
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// What every check is doing now, or one check in full; exit 0 when
    /// nothing is in PROBLEM, 1 when something is, 3 when no daemon answers
    Status {
        /// One check in full: 'NAME on TARGET', its identity, or a name only one check has
        #[arg(value_name = "CHECK")]
        check: Option<String>,
        /// JSON instead of the table ("daemon": false and the saved state when no daemon answers)
        #[arg(long)]
        json: bool,
        /// Only checks that are failing (retrying or in PROBLEM)
        #[arg(long)]
        problems: bool,
        /// Only checks whose name, identity, target or "NAME on TARGET" matches this glob (`*`, `?`)
        #[arg(long, value_name = "PATTERN", conflicts_with = "check")]
        only: Option<String>,
    },
    /// "I'm on it": acknowledge a check in PROBLEM
    Ack {
        /// The check: 'NAME on TARGET' (as mails and `status` show it), its identity, or a name only one check has
        #[arg(value_name = "CHECK")]
        check: String,
        /// A comment for the check's mail thread
        #[arg(short = 'm', long = "message", value_name = "TEXT", default_value = "")]
        message: String,
        /// End the ack after this long (90s, 30m, 2h, 1d; at most 100 years)
        #[arg(long = "for", value_name = "DURATION", value_parser = duration, conflicts_with = "sticky")]
        for_secs: Option<u64>,
        /// Keep the ack through status changes, until recovery
        #[arg(long)]
        sticky: bool,
    },
    /// End a check's acknowledgement: its mails go out again
    Unack {
        /// The check: 'NAME on TARGET' (as mails and `status` show it), its identity, or a name only one check has
        #[arg(value_name = "CHECK")]
        check: String,
    },
    /// Read one mail on stdin (an MTA alias pipes replies to alerts here) and apply the command on its first line: ack, ack sticky, silence DURATION, unack; exit 75 when the daemon cannot be reached
    MailIn,
    /// No mail for matching checks (a glob on name, identity or target)
    Silence {
        /// A glob (* any text, ? one character) matched against each check's name, identity and target: "web1", "disk*", "db?"
        #[arg(value_name = "PATTERN")]
        pattern: String,
        /// How long (90s, 30m, 2h, 1d; at most 100 years)
        #[arg(long = "for", value_name = "DURATION", value_parser = duration, default_value = "1h")]
        for_secs: u64,
        /// Why: shown by `picomon silences` and logged with the caller's name
        #[arg(short = 'm', long = "message", value_name = "TEXT", default_value = "")]
        message: String,
    },
    /// The silences in force
    Silences {
        /// JSON instead of one line per silence
        #[arg(long)]
        json: bool,
    },
    /// End a silence now (its held Problems are mailed if still failing)
    Unsilence {
        /// The silence's id, as `picomon silence` printed it and `picomon silences` lists it
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Run one check now in the daemon and print its result line (exit: its status code)
    Run {
        /// The check: 'NAME on TARGET' (as mails and `status` show it), its identity, or a name only one check has
        #[arg(value_name = "CHECK")]
        check: String,
        /// Run it here, without a daemon, as a Nagios plugin: the summary,
        /// " | ", the JSON record on one line, then the long output; exit
        /// with the check's status
        #[arg(long, conflicts_with = "nagios_json_base64")]
        nagios_json: bool,
        /// Like --nagios-json, with the JSON record base64-encoded
        #[arg(long)]
        nagios_json_base64: bool,
    },
    /// Reload the config; prints what changed or the error that kept the old one
    Reload,
    /// Tell a heartbeat check "it ran" (exit 1 when not recorded); with `-- COMMAND ARGS...`: ping --start, run COMMAND, ping with its exit status and the tail of its output
    Ping {
        /// The heartbeat check: 'NAME on TARGET', its identity, or a name only one check has
        #[arg(value_name = "CHECK")]
        check: String,
        /// The job failed
        #[arg(long, conflicts_with_all = ["status", "start"])]
        fail: bool,
        /// The job's exit status: 0 is success, anything else a failure
        #[arg(long, value_name = "N", conflicts_with = "start")]
        status: Option<u8>,
        /// The job starts now; its end must follow within the check's grace
        #[arg(long)]
        start: bool,
        /// A message for the check's output and mails
        #[arg(short = 'm', long = "message", value_name = "TEXT", default_value = "")]
        message: String,
        /// Run this (argv, no shell) and ping with its outcome
        #[arg(last = true, value_name = "COMMAND", conflicts_with_all = ["fail", "status", "start"])]
        command: Vec<String>,
    },
    /// The outages in the log (state_dir/history), newest first; needs no running daemon
    History {
        /// Only this check (its name or identity; a glob)
        check: Option<String>,
        /// Outages that ended within this long (90s, 30m, 2h, 30d) or are ongoing
        #[arg(long, value_name = "DURATION", value_parser = since, default_value = "30d")]
        since: u64,
        /// JSON instead of the table
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Availability per check over --since instead (worst first: availability, outages, downtime, longest, mean time to recovery), as CSV: the availability mail's attachment
        #[arg(long)]
        csv: bool,
    },
    /// Run this config's loop on a simulated clock over a story and print every mail it would send (time, recipients, Cc, subject, thread); nothing runs, nothing is sent
    Simulate {
        /// The story, one event a line: TIME CHECK STATUS [OUTPUT], TIME ack CHECK [MESSAGE], TIME silence PATTERN FOR [MESSAGE], TIME unsilence ID (times like 0s, 20s, 2m, 1h30m; # comments)
        #[arg(value_name = "TIMELINE")]
        timeline: std::path::PathBuf,
        /// JSON instead of the table
        #[arg(long)]
        json: bool,
        /// Simulate this long (default: an hour after the last event)
        #[arg(long, value_name = "DURATION", value_parser = since)]
        until: Option<u64>,
    },
    /// For the shell completions: the check names (of the config found as
    /// every command finds it) or the silence ids, one a line
    #[command(name = "__complete", hide = true)]
    Complete {
        /// What to list
        #[arg(value_enum)]
        what: Completable,
    },
}

/// What `picomon __complete` lists.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completable {
    /// Names of checks (an identity where a name is shared)
    Checks,
    /// Ids of the silences in force
    Silences,
}

/// `--for`: a human duration, at most [`crate::duration::MAX_SECS`].
fn duration(text: &str) -> Result<u64, String> {
    crate::duration::parse("--for", text)
}

/// `history --since`: as `--for`.
fn since(text: &str) -> Result<u64, String> {
    crate::duration::parse("--since", text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument, positional or flag, of picomon and of each
    /// subcommand says in `--help` what it is.
    #[test]
    fn every_argument_is_documented_in_help() {
        let cmd = Cli::command();
        let mut missing = Vec::new();
        for c in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
            for arg in c.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{} {id}", c.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "undocumented: {missing:?}");
        let silence = cmd.find_subcommand("silence").unwrap();
        let help = silence.clone().render_help().to_string();
        assert!(help.contains("<PATTERN>  A glob"), "{help}");
        assert!(help.contains("-m, --message <TEXT>  Why"), "{help}");
    }
}
