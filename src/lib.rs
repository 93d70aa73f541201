//! picomon: a tiny standalone alerting daemon.
//!
//! The picture (see README for the user's view):
//!
//! ```text
//! config.rhai --(config)--> Config { hosts, checks, mail }
//!   daemon loop (one thread): every tick asks `schedule` which checks are due,
//!   hands them to the worker pool (plugin runner or built-in probe),
//!   feeds results through the pure `alert` state machine and hands the
//!   transitions to a `Notifier` (mail) and every result to the passive
//!   `output`s (Nagios/Icinga, JSON lines).
//! ```
//!
//! Modules:
//! - [`cli`]: command-line flags.
//! - [`config`]: the Rhai engine, the functions a config may call, validation.
//! - [`check`]: check definitions, statuses, outcomes; the plugin runner and
//!   plugin output parsing.
//! - [`probe`]: built-in native probes.
//! - [`schedule`]: tick arithmetic and due checks (pure).
//! - [`alert`]: the OK / RETRYING / PROBLEM state machine (pure).
//! - [`control`]: the control socket and the subcommands' client.
//! - [`daemon`]: the loop, the pool, signals, shutdown; `-1` mode.
//! - [`notify`]: the interface between the loop and mail delivery.
//! - [`deliver`]: the one durable queue mail and every channel send from.
//! - [`mail`]: composition, the mail outbox, SMTP.
//! - [`output`]: passive results to Nagios/Icinga and files, through
//!   durable spools.
//! - [`state`]: the persisted state file.
//! - [`clock`]: the one place time comes from; calendar and time zone.
//! - [`fs`]: atomic writes, private files and directories, flocks.
//! - [`host`]: this machine's name.
//! - [`http`]: the read-only listener: `/metrics`, the checks' JSON, the
//!   status page.

pub mod alert;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod deliver;
pub mod fs;
pub mod host;
pub mod http;
pub mod mail;
pub mod notify;
pub mod output;
pub mod probe;
pub mod schedule;
pub mod state;
