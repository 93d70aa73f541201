//! The sandboxed Rhai engine a config runs in.
//!
//! A config is run by the daemon at start and on every SIGHUP, so a bad one
//! must fail fast with a position rather than hang or eat memory: operations,
//! call depth, expression depth, string, array and map sizes are bounded, a
//! deadline on the config's own CPU time stops endless loops (CPU time, not
//! wall time: a machine starved of CPU still loads a big config), and
//! nothing can reach files
//! (`import` is disabled, `eval` is switched off). `print`/`debug` go to the
//! log, at most [`MAX_PRINTED`] bytes of them per run.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, Engine};

use super::builder::Shared;
use super::{checks, keys};

/// How much CPU time the evaluating thread may spend on a config before it
/// is stopped. A real config takes milliseconds; 100,000 checks take under
/// a second. Measured on the thread's own CPU clock, so time the machine
/// spends on other processes does not count.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// Upper bound on Rhai operations (a second guard besides the deadline).
pub const MAX_OPERATIONS: u64 = 50_000_000;

/// Longest string a config may build, in bytes.
pub const MAX_STRING: usize = 1 << 20;
/// Most items an array may hold.
pub const MAX_ARRAY: usize = 100_000;
/// Most entries a map may hold.
pub const MAX_MAP: usize = 10_000;

rhai::def_package! {
    /// Rhai's standard library as a config and a `script()` check use it:
    /// `Engine::new`'s, without the byte arrays (blobs) and bit fields
    /// neither has a use for (0.06 MB of the executable); time is left out
    /// by the `no_time` feature.
    pub ConfigPackage(lib):
        rhai::packages::CorePackage,
        rhai::packages::LogicPackage,
        rhai::packages::BasicMathPackage,
        rhai::packages::BasicArrayPackage,
        rhai::packages::BasicMapPackage,
        rhai::packages::MoreStringPackage
    {}
}

/// An engine with [`ConfigPackage`] and no `print` or `debug` of its own.
pub fn bare() -> Engine {
    use rhai::packages::Package;
    let mut engine = Engine::new_raw();
    ConfigPackage::new().register_into_engine(&mut engine);
    engine
}

/// Bytes of `print()` and `debug()` text logged per run of the config; the
/// rest is counted and reported in one line at the end ([`Printed::finish`]),
/// so a `print()` in a loop cannot fill the disk with log.
pub const MAX_PRINTED: usize = 64 * 1024;

/// How often (in operations) the deadline is looked at: reading the clock
/// at every operation would slow every config down.
const CLOCK_EVERY: u64 = 1024;

/// The value `on_progress` stops a run with; recognised when the error is
/// turned into a message.
pub const DEADLINE_TOKEN: &str = "picomon-config-deadline";

/// What one run of the config printed: the bytes logged so far, and the
/// bytes and messages dropped beyond [`MAX_PRINTED`].
#[derive(Clone, Default)]
pub struct Printed(Arc<Mutex<PrintCount>>);

#[derive(Default)]
struct PrintCount {
    logged: usize,
    dropped_bytes: u64,
    dropped_lines: u64,
}

/// What a log line costs besides its text: the timestamp, the level and
/// the config's name (counted, so a flood of empty `print()`s is capped
/// too).
const LINE_COST: usize = 48;

impl Printed {
    /// How much of a message may still be logged (`name` prefixes its
    /// line): all of it, a prefix cut at a character boundary, or nothing;
    /// the rest is counted as dropped.
    fn admit<'t>(&self, name: &str, text: &'t str) -> Option<&'t str> {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let cost = LINE_COST + name.len();
        let room = MAX_PRINTED.saturating_sub(c.logged);
        if room <= cost {
            c.dropped_bytes += text.len() as u64;
            c.dropped_lines += 1;
            return None;
        }
        let mut take = text.len().min(room - cost);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        c.logged += cost + take;
        c.dropped_bytes += (text.len() - take) as u64;
        Some(&text[..take])
    }

    /// The one line that says how much was not logged (nothing when all
    /// of it was).
    pub fn finish(&self, path: &Path) {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if c.dropped_bytes > 0 || c.dropped_lines > 0 {
            log::warn!(
                "{}: print() and debug() output is limited to {} KiB per run of the config; \
                 {} more bytes were not logged ({} messages left out, others cut short)",
                path.display(),
                MAX_PRINTED / 1024,
                c.dropped_bytes,
                c.dropped_lines
            );
        }
    }
}

/// Builds the engine for one run of the config at `path`, with every
/// function a config may call bound to `shared`; what it prints is counted
/// in `printed`.
pub fn build(path: &Path, shared: &Shared, printed: &Printed) -> Engine {
    let mut engine = bare();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(32)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_ARRAY)
        .set_max_map_size(MAX_MAP)
        .set_max_variables(10_000)
        .set_max_functions(1_000);
    // No `import`: rhai is built without modules (`no_module`).
    // A config runs once: the optimiser and the string interner cost more
    // than they save. The interner alone was the largest single item of a
    // 10,000-check evaluation (each new check name evicted from a full cache).
    // The optimiser is not even built (`no_optimize`).
    engine.set_max_strings_interned(0);
    engine.disable_symbol("eval");
    // `match` is reserved in Rhai, but `maintenance(#{ match: "db*" })` is
    // the contract's spelling: the word is read as a plain name.
    // (`on_parse_token` is marked deprecated only as "volatile API".)
    #[allow(deprecated)]
    engine.on_parse_token(|token, _, _| match token {
        rhai::Token::Reserved(s) if s.as_str() == "match" => rhai::Token::Identifier(s),
        t => t,
    });

    let name = path.display().to_string();
    let (n, p) = (name.clone(), printed.clone());
    engine.on_print(move |s| {
        if let Some(s) = p.admit(&n, s) {
            log::info!("{n}: {s}");
        }
    });
    let p = printed.clone();
    engine.on_debug(move |s, _src, pos| {
        // Only what is logged counts: debug() is silent below -D.
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let Some(s) = p.admit(&name, s) else {
            return;
        };
        match (pos.line(), pos.position()) {
            (Some(l), Some(c)) => log::debug!("{name}:{l}:{c}: {s}"),
            _ => log::debug!("{name}: {s}"),
        }
    });

    keys::register(&mut engine);
    // `config` is resolved by name rather than kept in the scope, so script
    // functions (which cannot see the scope) can set keys too.
    // (`on_var` is marked deprecated only as "volatile API" in Rhai 1.x.)
    // A probe constructor's bare name (`ping4`) is a function pointer
    // where no variable has that name, for `add([ping4, http4], hosts)`.
    let handle = keys::ConfigObj(shared.clone());
    #[allow(deprecated)]
    engine.on_var(move |name, index, ctx| match name {
        "config" => Ok(Some(Dynamic::from(handle.clone()))),
        _ if index == 0
            && checks::BULK_CONSTRUCTORS.contains(&name)
            && !ctx.scope().contains(name) =>
        {
            Ok(Some(Dynamic::from(rhai::FnPtr::new(name)?)))
        }
        _ => {
            map_within_limit(ctx.scope().get(name))?;
            Ok(None)
        }
    });
    // Python's `list.append(x)`, as ported configs write it
    // (`config.emails.to.append("me@example.org")`); Rhai's own
    // `append` joins two arrays and still does.
    engine.register_fn("append", |list: &mut rhai::Array, item: Dynamic| {
        if item.is_array() {
            list.extend(item.into_array().unwrap_or_default());
        } else {
            list.push(item);
        }
    });
    checks::register(&mut engine, shared);
    super::maintenance::register(&mut engine, shared);
    super::contacts::register(&mut engine, shared);
    super::imports::register(&mut engine, shared, path);
    super::probes::register(&mut engine);
    super::outputs::register(&mut engine);
    super::channels::register(&mut engine);
    engine
}

/// Rhai checks an array's size when it grows (`push`, `+=`), but not a
/// map's when `m[key] = value` adds a key: a loop of those grew a map
/// without bound. Every access of a variable holding a map checks its size
/// instead (a length, so it costs nothing), so it cannot grow past
/// [`MAX_MAP`] by more than the one key added since.
fn map_within_limit(value: Option<&Dynamic>) -> Result<(), Box<rhai::EvalAltResult>> {
    let too_large = value
        .and_then(|v| v.read_lock::<rhai::Map>())
        .is_some_and(|m| m.len() > MAX_MAP);
    if too_large {
        return Err(rhai::EvalAltResult::ErrorDataTooLarge(
            "Size of object map".into(),
            rhai::Position::NONE,
        )
        .into());
    }
    Ok(())
}

/// The names of the functions a config can call (picomon's and Rhai's),
/// for "did you mean" when it calls one that does not exist.
pub fn function_names(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = engine.collect_fn_metadata(
        None,
        |f| {
            let name = f.metadata.name.as_str();
            let plain = name.chars().next().is_some_and(|c| c.is_alphabetic())
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            plain.then(|| name.to_string())
        },
        true,
    );
    crate::sort::ascending(&mut names);
    names.dedup();
    names
}

/// Starts the CPU-time deadline, `used` of it gone already (earlier
/// pieces of the config): call right before running the script, on the
/// thread that runs it, so compiling it does not count. Returns when it
/// started, on that thread's CPU clock.
pub fn arm_deadline(engine: &mut Engine, used: Duration) -> Duration {
    let started = crate::clock::thread_cpu_time();
    engine.on_progress(move |ops| {
        if ops % CLOCK_EVERY == 0
            && crate::clock::thread_cpu_time().saturating_sub(started) + used > DEADLINE
        {
            Some(Dynamic::from(DEADLINE_TOKEN.to_string()))
        } else {
            None
        }
    });
    started
}
