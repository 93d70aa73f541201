//! The daemon's settings, handed to its watchdog.
//!
//! picomon-watchdog does not read the config: evaluating it needs the Rhai
//! engine and every probe it registers, megabytes the watchdog would carry
//! only to learn where to mail. Its child does the reading. At start-up,
//! right after its config is loaded (as root, before it drops to `--user`,
//! so a password file only root can read is read then), and after each
//! successful reload, picomon writes one [`Handoff`] as a JSON line to the
//! pipe its watchdog gave it: the descriptor named by [`FD_ENV`]. The
//! watchdog keeps the last one in memory; the password is never in an
//! argument, a file or the environment.
//!
//! To send its notice the watchdog starts `picomon --watchdog-mail` and
//! writes one [`MailRequest`] to its stdin: the mail code (composition,
//! the outbox and its lock, SMTP) has one home, the picomon library, and
//! the notice goes through the same outbox as every other mail.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// The environment variable naming the descriptor picomon writes its
/// handoffs to.
pub const FD_ENV: &str = "PICOMON_WATCHDOG_FD";

/// The longest handoff line read; a longer one is skipped.
pub const MAX_LINE: usize = 1 << 20;

/// What the watchdog needs from a loaded config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// The config file, as the daemon names it.
    pub config: PathBuf,
    /// This host's name, as the daemon's mails give it.
    pub host: String,
    /// `config.state_dir` (or `--state-dir`): the heartbeat and the outbox.
    pub state_dir: PathBuf,
    /// No heartbeat for this long means hung: three ticks and the longest
    /// check timeout.
    pub hang_after_ms: u64,
    pub mail: MailSettings,
    /// The config's secret files as the daemon read them (as root at
    /// start): the watchdog hands them to each picomon it starts later,
    /// which runs as the `--user` and may not read them.
    #[serde(default)]
    pub secrets: Vec<SecretFile>,
}

/// One secret file's content.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretFile {
    pub path: PathBuf,
    pub content: Vec<u8>,
}

impl std::fmt::Debug for SecretFile {
    /// The path only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretFile({})", self.path.display())
    }
}

/// The environment variable that names the memory file of secret files a
/// picomon started by its watchdog reads at start.
pub const SECRETS_ENV: &str = "PICOMON_SECRETS_FD";

/// The secret files in one memory file (close-on-exec; the watchdog makes
/// it inheritable for its child only), or `None` when there are none.
/// Each record: path length and path, content length and content (lengths
/// as u32, little-endian); picomon's secret store reads it.
pub fn secrets_file<'a>(
    files: impl IntoIterator<Item = (&'a std::path::Path, &'a [u8])>,
) -> io::Result<Option<File>> {
    let mut files = files.into_iter().peekable();
    if files.peek().is_none() {
        return Ok(None);
    }
    let name = c"picomon-secrets";
    // SAFETY: memfd_create with a valid C string and flags; the returned
    // descriptor is new and owned by the File below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let mut f = unsafe { File::from_raw_fd(fd) };
    for (path, bytes) in files {
        let p = path.as_os_str().as_encoded_bytes();
        for part in [p, bytes] {
            let len = u32::try_from(part.len()).map_err(|_| io::Error::other("too large"))?;
            f.write_all(&len.to_le_bytes())?;
            f.write_all(part)?;
        }
    }
    Ok(Some(f))
}

/// `config.emails.*` as resolved by the daemon, with the password read.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MailSettings {
    pub to: Vec<String>,
    pub addr_from: String,
    pub smtp_host: Vec<String>,
    /// `none`, `starttls` or `tls`.
    pub smtp_tls: String,
    pub smtp_user: String,
    /// The first line of `smtp_password_file`, read by the daemon; `None`
    /// without `smtp_user`.
    pub smtp_password: Option<String>,
    /// Where the password came from (named in errors only).
    pub smtp_password_file: String,
    pub smtp_ca_file: String,
    pub smtp_retry_timeout_ms: u64,
    pub subject_tpl: String,
    /// `thread` or `state`.
    pub subject_style: String,
    pub watchdog_subject: String,
}

impl std::fmt::Debug for MailSettings {
    /// Everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("to", &self.to)
            .field("addr_from", &self.addr_from)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_tls", &self.smtp_tls)
            .field("smtp_user", &self.smtp_user)
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "(set)"),
            )
            .field("watchdog_subject", &self.watchdog_subject)
            .finish_non_exhaustive()
    }
}

/// What `picomon --watchdog-mail` reads on its stdin.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailRequest {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub mail: MailSettings,
    pub subject: String,
    pub body: String,
}

impl MailRequest {
    /// Reads one request (at most [`MAX_LINE`] bytes) from `r`.
    pub fn read_from(r: impl Read) -> io::Result<MailRequest> {
        let mut text = String::new();
        r.take(MAX_LINE as u64 + 1).read_to_string(&mut text)?;
        if text.len() > MAX_LINE {
            return Err(io::Error::other("mail request too long"));
        }
        serde_json::from_str(&text).map_err(io::Error::other)
    }
}

/// The daemon's end of the pipe, taken from the environment once.
static LINK: OnceLock<Option<Mutex<File>>> = OnceLock::new();

/// Takes the descriptor named by [`FD_ENV`] (and removes the variable, so
/// plugins see neither). Call first thing in `main`, before any thread
/// starts; later calls do nothing. The descriptor is made close-on-exec
/// (plugins do not inherit it) and non-blocking (a watchdog that stopped
/// reading never stalls the daemon).
pub fn take_link_from_env() {
    LINK.get_or_init(|| {
        let fd: RawFd = std::env::var(FD_ENV).ok()?.parse().ok()?;
        std::env::remove_var(FD_ENV);
        // SAFETY: fcntl on an integer; a descriptor that is not open
        // fails with EBADF and is then not used.
        unsafe {
            if fd < 3 || libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) != 0 {
                return None;
            }
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        // SAFETY: the watchdog opened this descriptor for us, and nothing
        // else in this process uses it.
        Some(Mutex::new(File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    });
}

/// Whether a watchdog listens (the daemon then hands it its settings).
pub fn has_link() -> bool {
    matches!(LINK.get(), Some(Some(_)))
}

/// Hands `h` to the watchdog, if there is one. A failure is logged: the
/// watchdog then mails with the settings it had.
pub fn hand_over(h: &Handoff) {
    let Some(Some(link)) = LINK.get() else {
        return;
    };
    let mut line = match serde_json::to_vec(h) {
        Ok(l) => l,
        Err(err) => return log::warn!("cannot encode the watchdog's settings: {err}"),
    };
    line.push(b'\n');
    let mut file = link.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(err) = file.write_all(&line) {
        log::warn!("cannot hand the watchdog its mail settings: {err}");
    }
}

/// The watchdog's side: a pipe whose write end a child inherits.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

impl Pipe {
    /// Both ends close-on-exec; the child's pre-exec step clears the flag
    /// on the write end with [`inherit`].
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both were just opened and are owned by nothing else.
        unsafe {
            Ok(Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            })
        }
    }
}

/// Between fork and exec: lets the child keep `fd`. Async-signal-safe.
pub fn inherit(fd: &OwnedFd) -> io::Result<()> {
    inherit_raw(fd.as_raw_fd())
}

/// [`inherit`] for a descriptor held elsewhere (a `File`).
pub fn inherit_raw(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with integer arguments on a descriptor this process
    // holds.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads handoff lines until the writer is gone, giving each to `got`.
/// A line that is too long or not a handoff is logged and skipped.
pub fn read_handoffs(read: OwnedFd, mut got: impl FnMut(Handoff)) {
    let mut r = BufReader::new(File::from(read));
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return,
            Ok(_) if line.len() > MAX_LINE => {
                log::warn!("ignoring a handoff from picomon longer than {MAX_LINE} bytes");
                // Skip to the end of that line.
                let _ = r.skip_until(b'\n');
            }
            Ok(_) => match serde_json::from_slice::<Handoff>(&line) {
                Ok(h) => got(h),
                Err(err) => log::warn!("ignoring a handoff from picomon: {err}"),
            },
            Err(err) => {
                log::warn!("cannot read picomon's handoff: {err}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handoff {
        Handoff {
            config: "/etc/picomon/a.rhai".into(),
            host: "box".into(),
            state_dir: "/var/lib/picomon/a".into(),
            hang_after_ms: 93_000,
            mail: MailSettings {
                to: vec!["ops@example.org".into()],
                smtp_user: "u".into(),
                smtp_password: Some("hunter2".into()),
                ..MailSettings::default()
            },
            secrets: vec![SecretFile {
                path: "/etc/picomon/pw".into(),
                content: b"hunter3".to_vec(),
            }],
        }
    }

    #[test]
    fn handoffs_cross_a_pipe_line_by_line_and_bad_lines_are_skipped() {
        let p = Pipe::new().unwrap();
        let mut w = File::from(p.write);
        let mut line = serde_json::to_vec(&sample()).unwrap();
        line.push(b'\n');
        w.write_all(b"not json\n").unwrap();
        w.write_all(&line).unwrap();
        drop(w);
        let mut got = Vec::new();
        read_handoffs(p.read, |h| got.push(h));
        assert_eq!(got, vec![sample()]);
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            !text.contains("hunter3") && !text.contains("104, 117"),
            "{text}"
        );
        assert!(text.contains("(set)"), "{text}");
    }
}
