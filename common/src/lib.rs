//! What picomon and picomon-watchdog share, kept apart from the picomon
//! library so the watchdog links neither the Rhai engine nor the probes
//! nor the HTTP clients:
//!
//! - [`handoff`]: the settings the daemon hands its watchdog at each
//!   (re)load, over an inherited pipe, and the mail request the watchdog
//!   hands back to `picomon --watchdog-mail`.
//! - [`process`]: the private umask, the pid file, switching to the
//!   `--user`.
//! - [`hms`]: a duration as `H:MM:SS`.

pub mod handoff;
pub mod process;

/// Microseconds as `H:MM:SS` (hours not wrapped; negative is 0:00:00).
pub fn hms(micros: i64) -> String {
    let s = micros.max(0) / 1_000_000;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}
pub mod files;
pub mod logging;

/// `text` with control characters (CR, LF, TAB, ESC, ...) and Unicode line
/// separators written as escapes (`\r`, `\n`, `\t`, `\u{1b}`), so a name
/// or an output cannot start a line of its own in a log or a terminal
/// (log injection). Backslashes stay as they are: escaping twice changes
/// nothing.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !text.contains(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.into()
}
