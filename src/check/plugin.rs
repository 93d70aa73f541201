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
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.iter()
        .chain(path_dirs.iter())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Where `plugin("check_foo", ...)` looks by default: Debian's and the
/// monitoring-plugins' folders, then the classic Nagios one.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    [
        "/usr/lib/nagios/plugins",
        "/usr/lib/monitoring-plugins",
        "/usr/local/nagios/libexec",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}
