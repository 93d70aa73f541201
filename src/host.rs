//! This machine's name, asked for in one place so that every use of it (the
//! `dest` of local checks, the default sender address, Message-IDs, the
//! SMTP probe's HELO, Icinga 2's `check_source`, the watchdog's mails)
//! agrees.

/// The name used when the kernel's host name is unset or unusable.
pub const FALLBACK: &str = "localhost";

/// This machine's name: the kernel's host name (gethostname(2)), with
/// every character other than ASCII letters, digits, `-` and `.` removed,
/// so it is safe in a mail header, a Message-ID, an SMTP HELO and a JSON
/// field; [`FALLBACK`] when that leaves nothing.
pub fn this_host() -> String {
    let raw = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    clean(&raw)
}

fn clean(raw: &str) -> String {
    let name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    if name.is_empty() {
        FALLBACK.into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_never_empty() {
        assert_eq!(clean("mon-1.example.org"), "mon-1.example.org");
        assert_eq!(clean("bad\r\nname>"), "badname");
        assert_eq!(clean(""), FALLBACK);
        assert_eq!(clean("\u{fffd}"), FALLBACK);
        let here = this_host();
        assert!(!here.is_empty());
        assert_eq!(clean(&here), here);
    }
}
