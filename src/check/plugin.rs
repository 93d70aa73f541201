//! Running a Nagios plugin (SPEC §5).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Outcome;

/// The process groups of runs in progress, so shutdown can kill them.
#[derive(Debug, Default)]
pub struct RunningGroups {}

impl RunningGroups {
    pub fn new() -> RunningGroups {
        RunningGroups::default()
    }

    /// SIGTERM every running group, SIGKILL what is left after `grace`.
    pub fn kill_all(&self, grace: Duration) {
        todo!("{grace:?}")
    }
}

/// One run of a program.
#[derive(Clone, Debug)]
pub struct PluginCommand<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    pub timeout: Duration,
    pub max_output: usize,
}

/// Runs the command to completion or timeout; never fails, never leaves a
/// process behind.
pub fn run(cmd: &PluginCommand<'_>, groups: Option<&RunningGroups>) -> Outcome {
    todo!("{cmd:?} {groups:?}")
}

/// Finds a bare plugin name in `dirs`, then PATH; a name with a `/` or one
/// not found is returned as given (the run then says it cannot run it).
pub fn resolve(name: &str, dirs: &[PathBuf]) -> PathBuf {
    todo!("{name} {dirs:?}")
}
