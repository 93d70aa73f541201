//! Flags of picomon-watchdog.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "picomon-watchdog",
    version,
    about = "Runs picomon and mails when it stops or hangs",
    after_help = "Arguments after -- are passed to picomon after its -c CONFIG."
)]
pub struct Cli {
    /// Config file (passed on to picomon)
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        default_value = "config.rhai"
    )]
    pub config: PathBuf,

    /// Start picomon again when it dies or hangs (backoff 1 s doubling to 5 min)
    #[arg(long)]
    pub restart: bool,

    /// Started as root: prepare the state directory, then drop to this user
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Write the watchdog's pid there, remove it at exit
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,

    /// More arguments for picomon
    #[arg(last = true, value_name = "PICOMON-ARGS")]
    pub picomon_args: Vec<String>,
}

impl Cli {
    /// The child's command line: `-c CONFIG`, then the extra arguments.
    pub fn child_args(&self) -> Vec<String> {
        let mut args = vec!["-c".to_string(), self.config.display().to_string()];
        args.extend(self.picomon_args.iter().cloned());
        args
    }
}
