//! How the CLI writes for a person at a terminal and for a script: the
//! terminal's width, colours per status (never with `NO_COLOR` set or when
//! stdout is not a terminal, as no-color.org and ripgrep do), and cutting
//! a text to a width with "…".

use std::io::IsTerminal;

/// How stdout is to be written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub colour: bool,
    /// The terminal's columns; `None` when stdout is not a terminal (a pipe
    /// or a file gets every line whole).
    pub width: Option<usize>,
}

impl Style {
    /// What stdout is now.
    pub fn stdout() -> Style {
        let stdout = std::io::stdout();
        if !stdout.is_terminal() {
            return Style::default();
        }
        Style {
            colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            width: Some(terminal_width().unwrap_or(80)),
        }
    }

    /// `text` in the colour of `word` (a status or a phase) when colours
    /// are on.
    pub fn paint(&self, word: &str, text: &str) -> String {
        match colour_of(word).filter(|_| self.colour) {
            Some(code) => format!("\x1b[{code}m{text}\x1b[0m"),
            None => text.to_string(),
        }
    }
}

/// The ANSI colour of a status or phase word: red for CRITICAL and
/// PROBLEM, yellow for WARNING and RETRYING, magenta for UNKNOWN and
/// UNREACHABLE, green for OK.
fn colour_of(word: &str) -> Option<&'static str> {
    let first = word.split_whitespace().next().unwrap_or("");
    Some(match first.to_ascii_uppercase().as_str() {
        "CRITICAL" | "PROBLEM" => "31",
        "WARNING" | "RETRYING" => "33",
        "UNKNOWN" | "UNREACHABLE" => "35",
        "OK" => "32",
        _ => return None,
    })
}

/// The width of the terminal on stdout (TIOCGWINSZ), else `$COLUMNS`.
fn terminal_width() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid struct given.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        return Some(usize::from(size.ws_col));
    }
    std::env::var("COLUMNS")
        .ok()?
        .parse()
        .ok()
        .filter(|&w| w > 0)
}

/// `text` in at most `width` characters: cut, ending in "…".
pub fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(width - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_ends_in_an_ellipsis_within_the_width() {
        assert_eq!(cut("abcdef", 6), "abcdef");
        assert_eq!(cut("abcdefg", 6), "abcde…");
        assert_eq!(cut("äöü", 2), "ä…");
        assert_eq!(cut("x", 0), "");
    }

    #[test]
    fn colours_follow_the_status_and_only_when_on() {
        let on = Style {
            colour: true,
            width: None,
        };
        assert_eq!(on.paint("CRITICAL", "x"), "\x1b[31mx\x1b[0m");
        assert_eq!(on.paint("RETRYING 1/2", "x"), "\x1b[33mx\x1b[0m");
        assert_eq!(on.paint("-", "x"), "x");
        assert_eq!(Style::default().paint("CRITICAL", "x"), "x");
    }
}
