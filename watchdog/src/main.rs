//! picomon-watchdog: runs picomon as its child and mails when it dies or
//! hangs.

mod backoff;
mod cli;
mod report;
mod supervise;
mod tail;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match supervise::main(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("picomon-watchdog: {err:#}");
            1
        }
    };
    std::process::exit(code);
}
