//! Command-line flags (SPEC §1).

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "picomon",
    version,
    about = "A tiny standalone alerting daemon: runs checks every tick and mails when they really fail or recover"
)]
pub struct Cli {
    /// Config file
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        default_value = "config.rhai"
    )]
    pub config: PathBuf,

    /// Run every check once now, print each result, exit with the worst status
    #[arg(short = '1', long = "one")]
    pub one: bool,

    /// With -1: mail the problems found
    #[arg(long, requires = "one")]
    pub notify: bool,

    /// Debug logging (RUST_LOG still wins where set)
    #[arg(short = 'D', long)]
    pub debug: bool,

    /// Evaluate and validate the config, print a summary, exit
    #[arg(long)]
    pub check_config: bool,

    /// Send one test mail through the configured path and print the answer
    #[arg(long)]
    pub test_mail: bool,

    /// Read passive result lines from stdin and forward them to the outputs
    #[arg(long)]
    pub send: bool,

    /// Overrides config.state_dir
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Write the pid there, remove it at exit
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Started as root: drop to this user before any check runs
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}
