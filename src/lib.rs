//! picomon: a tiny standalone alerting daemon.
//!
//! The stages, in the order a result flows (see `doc/ARCHITECTURE.md` for
//! the arrows between them and where each kind of change goes):
//!
//! ```text
//! config.rhai --(config)--> Config { hosts, checks, mail, channels, outputs }
//!   daemon (one loop thread, the only owner of check state): every tick
//!     schedule --which checks are due--> run (pool: plugin | probe)
//!     results --> alert (pure: machine, quiet, deps, flap, remind)
//!     transitions --> notify (mail, channels) --> queue (durable) --> peers
//!     results --> passive (Nagios/Icinga/files, through spools)
//!     state --> control (socket) and web (listener) read what it publishes
//! ```
//!
//! Modules, from the floor up (an arrow only points down this list):
//! - [`clock`], [`fs`], [`host`], [`deadline`], [`model`]: time, files,
//!   this machine's name, socket I/O to one deadline (the listeners), and
//!   the plain types every stage shares (status, outcome, check).
//! - [`duration`]: the one range of every duration, and its human form.
//! - [`sort`]: the one sort routine for picomon's own lists (one copy of
//!   the standard sort, not one per element type).
//! - [`health`]: whether this picomon can tell anyone: the rule and the
//!   board behind `/api/v1/health`, the outward heartbeat and `peer()`.
//! - [`schedule`]: tick arithmetic and due checks (pure).
//! - [`alert`]: the OK / RETRYING / PROBLEM machine and the pure decisions
//!   about what is announced.
//! - [`net`]: picomon's HTTP/1.1 client, TLS set-ups and bounded name
//!   lookups, shared by probes, channels, outputs.
//! - [`run`]: carrying out one run: the plugin runner and the native probes.
//! - [`queue`]: the one durable queue mail and every channel send from.
//! - [`state`]: the persisted state file.
//! - [`history`]: the outage log in `state_dir/history` and what it
//!   tells: the outages, each check's availability.
//! - [`passive`]: results to Nagios/Icinga and files, through spools, and
//!   the intake of `--send` and `config.result_dir`.
//! - [`notify`]: what is sent: mail (compose, SMTP) and channels (webhook,
//!   command, Alertmanager).
//! - [`config`]: the Rhai engine, the functions a config may call (probe,
//!   channel and output constructors among them), validation; the only
//!   module that speaks Rhai.
//! - [`cli`]: command-line flags.
//! - [`control`]: the control socket, its protocol, the CLI's clients.
//! - [`mailin`]: `picomon mail-in`, replies to alert mails turned into
//!   control requests.
//! - [`web`]: the read-only HTTP listener.
//! - [`daemon`]: the loop and the process around it; the only module that
//!   knows every other.

pub mod alert;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod deadline;
pub mod duration;
pub mod fs;
pub mod health;
pub mod history;
pub mod host;
pub mod mailin;
pub mod model;
pub mod net;
pub mod notify;
pub mod passive;
pub mod queue;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod sort;
pub mod state;
pub mod web;
