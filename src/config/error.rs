//! Turning Rhai's parse and run-time errors into a [`ConfigError`] with the
//! file, line and column, and a message that says what to do.

use std::path::Path;

use rhai::{EvalAltResult, ParseError, Position};

use super::engine::{DEADLINE, DEADLINE_TOKEN, MAX_ARRAY, MAX_MAP, MAX_OPERATIONS, MAX_STRING};
use super::value::did_you_mean;
use super::ConfigError;

fn at(file: &Path, pos: Position, message: String) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line: pos.line().unwrap_or(0),
        col: if pos.is_none() {
            0
        } else {
            pos.position().unwrap_or(1)
        },
        message,
    }
}

/// A syntax error.
pub fn from_parse(file: &Path, err: ParseError) -> ConfigError {
    let ParseError(kind, pos) = err;
    at(file, pos, format!("syntax error: {kind}"))
}

/// An error while the script ran. An error inside a script function is
/// reported where it happened (the innermost position), with the function
/// named. A call of a function that does not exist suggests the nearest of
/// `functions` (the names the engine knows).
pub fn from_eval(file: &Path, err: EvalAltResult, functions: &[String]) -> ConfigError {
    let mut err = err;
    let mut outer = Position::NONE;
    let mut via = Vec::new();
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, pos) = err {
        if outer.is_none() {
            outer = pos;
        }
        via.push(name);
        err = *inner;
    }
    let mut pos = err.position();
    if pos.is_none() {
        pos = outer;
    }
    let mut message = match &mut err {
        EvalAltResult::ErrorRuntime(d, _) if d.is_string() => d.to_string(),
        EvalAltResult::ErrorTerminated(d, _) if d.to_string() == DEADLINE_TOKEN => format!(
            "the config used {} s of CPU time and was stopped here: an endless loop? A config must only declare checks and settings",
            DEADLINE.as_secs_f64()
        ),
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the config was stopped here after {MAX_OPERATIONS} operations: an endless loop? A config must only declare checks and settings"
        ),
        EvalAltResult::ErrorStackOverflow(_) => {
            "the config was stopped here: functions call each other too deeply (endless recursion?)"
                .to_string()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "{what} too large: a config's strings are limited to {} KiB, arrays to {MAX_ARRAY} items, maps to {MAX_MAP} entries",
            MAX_STRING / 1024
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => function_not_found(sig, functions),
        other => {
            other.clear_position();
            other.to_string()
        }
    };
    if let Some(f) = via.first() {
        if !f.is_empty() && !f.starts_with("anon$") {
            message.push_str(&format!(" (in function {f})"));
        }
    }
    at(file, pos, message)
}

/// "Function not found" with a way out: the function of that name takes
/// other arguments, or the nearest known name (`apend` → `append`).
fn function_not_found(sig: &str, functions: &[String]) -> String {
    let name = sig.split([' ', '(']).next().unwrap_or(sig);
    // Rhai's Rust type names, as a config writer knows them.
    let args = sig[name.len()..]
        .trim()
        .replace("&str | ImmutableString | String", "string")
        .replace("i64", "integer")
        .replace("f64", "float");
    let called = if args.is_empty() {
        format!("`{name}`")
    } else {
        format!("`{name}` with {args}")
    };
    if functions.iter().any(|f| f == name) {
        return format!(
            "no function {called}: `{name}` exists but takes other arguments (see `man 5 picomon.rhai` for its forms)"
        );
    }
    let known: Vec<&str> = functions.iter().map(String::as_str).collect();
    match did_you_mean(name, &known) {
        Some(near) => format!("unknown function {called}: did you mean `{near}`?"),
        None => format!("unknown function {called}"),
    }
}
