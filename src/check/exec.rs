//! Runs one check of any kind to an [`Outcome`]: the function the worker
//! pool calls.

use std::path::Path;
use std::time::Instant;

use super::plugin::{self, PluginCommand, RunningGroups};
use super::{CheckKind, CheckSpec, Outcome};

/// What every run needs besides the check itself.
#[derive(Clone, Copy, Debug)]
pub struct RunEnv<'a> {
    pub max_output: usize,
    pub groups: Option<&'a RunningGroups>,
    /// What the check remembered after its last run (see
    /// [`super::Probe::run_remembering`]).
    pub memory: Option<&'a str>,
}

/// Runs `spec` once. Never panics on a failing check: every failure is an
/// outcome.
pub fn execute(spec: &CheckSpec, env: RunEnv<'_>) -> Outcome {
    let started = Instant::now();
    let shell_args;
    let (program, args): (&Path, &[String]) = match &spec.kind {
        CheckKind::Probe(probe) => {
            let out = probe.run_remembering(spec.timeout, env.memory);
            return out.with_duration(started.elapsed());
        }
        CheckKind::Plugin { program, args } => (program.as_path(), args.as_slice()),
        CheckKind::Shell { command } => {
            shell_args = ["-c".to_string(), command.clone()];
            (Path::new("/bin/sh"), &shell_args[..])
        }
    };
    let cmd = PluginCommand {
        program,
        args,
        env: &spec.env,
        cwd: spec.cwd.as_deref(),
        timeout: spec.timeout,
        max_output: env.max_output,
    };
    plugin::run(&cmd, env.groups)
}
