//! Runs one check of any kind to an [`Outcome`]: the function the worker
//! pool calls.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use super::plugin::{self, PluginCommand, RunningGroups};
use crate::model::{CheckKind, CheckSpec, Outcome};

/// What every run needs besides the check itself.
#[derive(Clone, Copy, Debug)]
pub struct RunEnv<'a> {
    pub max_output: usize,
    pub groups: Option<&'a RunningGroups>,
    /// What the check remembered after its last run (see
    /// [`super::Probe::run_remembering`]).
    pub memory: Option<&'a str>,
}

/// Runs `spec` once. Every failure is an outcome, a bug too: a panic in a
/// probe, a parser or the runner becomes UNKNOWN "internal error: MESSAGE"
/// for this check alone (logged at ERROR), and the worker goes on.
pub fn execute(spec: &CheckSpec, env: RunEnv<'_>) -> Outcome {
    let started = Instant::now();
    if env.groups.is_some_and(RunningGroups::is_closed) {
        return Outcome::unknown(plugin::NOT_STARTED);
    }
    // The check and the run's state are only read after a panic to name
    // the check, so nothing half-changed is used.
    match catch_unwind(AssertUnwindSafe(|| run(spec, env))) {
        Ok(out) => out,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            log::error!("{}: internal error: {message}", spec.title());
            Outcome::unknown(format!("internal error: {message}")).with_duration(started.elapsed())
        }
    }
}

fn run(spec: &CheckSpec, env: RunEnv<'_>) -> Outcome {
    let started = Instant::now();
    if forced_panic(spec) {
        panic!("forced by PICOMON_TEST_PANIC");
    }
    let shell_args;
    let (program, args): (&Path, &[String]) = match &spec.kind {
        CheckKind::Probe(probe) => {
            let out = probe.run_remembering(spec.timeout(), env.memory);
            return out.with_duration(started.elapsed());
        }
        // The daemon judges its heartbeats itself (a ping may come in
        // meanwhile); this is `-1`'s view, from what the run was handed.
        CheckKind::Heartbeat(hb) => {
            let mut beat = crate::model::heartbeat::Beat::from_memory(env.memory);
            let now = crate::clock::now_unix_micros();
            beat.watch(now);
            return crate::model::heartbeat::judge(hb, &beat, now);
        }
        CheckKind::Plugin(argv) => (&*argv.program, &*argv.args),
        CheckKind::Shell { command } => {
            shell_args = plugin::shell_args(command);
            (plugin::shell_program(), &shell_args[..])
        }
    };
    let cmd = PluginCommand {
        program,
        args,
        env: spec.env(),
        cwd: spec.cwd(),
        timeout: spec.timeout(),
        max_output: env.max_output,
    };
    plugin::run(&cmd, env.groups)
}

/// TEST ONLY: `PICOMON_TEST_PANIC=NAME` makes every run of the check named
/// NAME panic. It exists because no real check can be made to panic on
/// purpose, and the promise that a bug in one run costs one UNKNOWN (not
/// the daemon) must be tested on the real binary. Read once per process.
/// Compiled in only with the `test-hooks` feature, which the test build
/// turns on (the package's dev-dependency on itself): never in a release.
#[cfg(feature = "test-hooks")]
fn forced_panic(spec: &CheckSpec) -> bool {
    use std::sync::OnceLock;
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| std::env::var("PICOMON_TEST_PANIC").ok())
        .as_deref()
        .is_some_and(|n| n == &*spec.name)
}

#[cfg(not(feature = "test-hooks"))]
fn forced_panic(_: &CheckSpec) -> bool {
    false
}

/// The text a panic was raised with (`panic!("...")`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}
