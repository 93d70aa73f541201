//! The log lines of picomon and picomon-watchdog on stderr, for people and
//! for journald.
//!
//! For people: `[2026-12-07T03:20:00Z WARN ] text`, the watchdog's lines
//! with `picomon-watchdog: ` before the text, so the two read apart in one
//! terminal or file. Under systemd with stderr going to the journal
//! (`JOURNAL_STREAM` set, as systemd sets it for such a service and
//! picomon-watchdog's child inherits it): `<4>text`, the syslog priority
//! journald reads from the prefix (3 ERROR, 4 WARN, 6 INFO, 7 DEBUG and
//! TRACE) and no timestamp, as the journal keeps its own.
//!
//! Control characters in the text are escaped: a check's name or output
//! with a line break cannot forge a log line.

use std::io::Write;

use log::Level;

/// The environment variable systemd sets when stderr goes to the journal.
pub const JOURNAL_STREAM: &str = "JOURNAL_STREAM";

/// The tag of picomon-watchdog's own lines.
pub const WATCHDOG_TAG: &str = "picomon-watchdog";

/// Whether lines go to journald: `JOURNAL_STREAM` is set and not empty.
pub fn to_journal() -> bool {
    std::env::var_os(JOURNAL_STREAM).is_some_and(|v| !v.is_empty())
}

/// The syslog priority journald gives a line of `level`.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One line without its end: `<N>[tag: ]text` for the journal, else
/// `[TIME LEVEL] [tag: ]text` (`time` already formatted).
pub fn line(journal: bool, tag: Option<&str>, level: Level, time: &str, text: &str) -> String {
    let text = crate::escape_control(text);
    let tag = tag.map(|t| format!("{t}: ")).unwrap_or_default();
    if journal {
        format!("<{}>{tag}{text}", priority(level))
    } else {
        format!("[{time} {level:<5}] {tag}{text}")
    }
}

/// Logging to stderr with `filter` unless `RUST_LOG` says otherwise;
/// `tag` marks every line (the watchdog's). Colours only on a terminal
/// and never for the journal.
pub fn init(filter: &str, tag: Option<&'static str>) {
    let journal = to_journal();
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter));
    if journal {
        b.write_style(env_logger::WriteStyle::Never);
    }
    let _ = b
        .format(move |buf, record| {
            let time = if journal {
                String::new()
            } else {
                buf.timestamp().to_string()
            };
            let text = record.args().to_string();
            let l = line(journal, tag, record.level(), &time, &text);
            if journal {
                return writeln!(buf, "{l}");
            }
            // The level coloured as env_logger does, the rest as is.
            let style = buf.default_level_style(record.level());
            let level = format!("{:<5}", record.level());
            match l.split_once(&level) {
                Some((before, after)) => {
                    writeln!(buf, "{before}{style}{level}{style:#}{after}")
                }
                None => writeln!(buf, "{l}"),
            }
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_line_has_the_priority_and_no_time_of_its_own() {
        assert_eq!(
            line(
                true,
                None,
                Level::Warn,
                "",
                "problem disk on web1: CRITICAL"
            ),
            "<4>problem disk on web1: CRITICAL"
        );
        assert_eq!(line(true, None, Level::Error, "", "x"), "<3>x");
        assert_eq!(line(true, None, Level::Info, "", "x"), "<6>x");
        assert_eq!(line(true, None, Level::Debug, "", "x"), "<7>x");
        assert_eq!(
            line(true, Some(WATCHDOG_TAG), Level::Info, "", "started"),
            "<6>picomon-watchdog: started"
        );
    }

    #[test]
    fn a_line_for_people_has_time_level_and_tag() {
        assert_eq!(
            line(false, Some(WATCHDOG_TAG), Level::Warn, "T", "hang"),
            "[T WARN ] picomon-watchdog: hang"
        );
        assert_eq!(line(false, None, Level::Info, "T", "ok"), "[T INFO ] ok");
    }

    #[test]
    fn a_line_break_in_the_text_cannot_forge_a_line() {
        let l = line(true, None, Level::Info, "", "a\n<3>forged");
        assert!(!l.contains('\n'), "{l}");
    }
}
