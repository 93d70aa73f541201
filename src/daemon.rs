//! The daemon loop, `-1` mode, signals and shutdown.

use crate::cli::Cli;

/// The real entry point: returns the process exit code.
pub fn main(cli: Cli) -> anyhow::Result<i32> {
    let _ = cli;
    Ok(0)
}
