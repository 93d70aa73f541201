//! `command_file(path)`: the Nagios / Icinga external command file, usually
//! a named pipe the server reads.
//!
//! The file is never created: a missing file means the server is not
//! running (or not reading commands), and writing a regular file in its
//! place would lose the results silently. The pipe is opened non-blocking,
//! so a server that is down fails at once (ENXIO) instead of hanging the
//! sender, and each line is one `write` of at most `PIPE_BUF` bytes, which
//! the kernel keeps whole even when other programs write to the same pipe.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::result::PassiveResult;
use super::sink::{DeliveryError, Sink};

/// Lines up to this size are written atomically into a pipe (PIPE_BUF on
/// Linux), newline included.
pub const ATOMIC_LINE: usize = 4096;

pub struct CommandFile {
    pub path: PathBuf,
    pub max_line_size: usize,
    /// How long a full pipe may stay full before the delivery fails.
    pub timeout: Duration,
}

impl CommandFile {
    fn open(&self) -> Result<std::fs::File, String> {
        OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => format!(
                    "command file {} does not exist: is Nagios/Icinga running, with check_external_commands=1 and this command_file in its config?",
                    self.path.display()
                ),
                Some(libc::ENXIO) => format!(
                    "nothing reads the command file {} (a named pipe): Nagios/Icinga is not running",
                    self.path.display()
                ),
                Some(libc::EACCES) => format!(
                    "no permission to write the command file {}: add picomon's user to the group that owns it (nagios)",
                    self.path.display()
                ),
                _ => format!("cannot open command file {}: {e}", self.path.display()),
            })
    }

    fn write_line(&self, f: &mut std::fs::File, line: &[u8]) -> Result<(), String> {
        let mut rest = line;
        while !rest.is_empty() {
            match f.write(rest) {
                Ok(0) => return Err("the command file accepted no bytes".into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
                    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLOUT)];
                    let ready = poll(
                        &mut fds,
                        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
                    )
                    .map_err(|e| format!("poll on the command file: {e}"))?;
                    if ready == 0 {
                        return Err(format!(
                            "the command file {} stayed full for {} s: Nagios/Icinga is not reading it",
                            self.path.display(),
                            self.timeout.as_secs()
                        ));
                    }
                }
                Err(e) => {
                    return Err(format!(
                        "cannot write the command file {}: {e}",
                        self.path.display()
                    ))
                }
            }
        }
        Ok(())
    }
}

impl Sink for CommandFile {
    fn batch_size(&self) -> usize {
        200
    }

    fn deliver(&mut self, batch: &[PassiveResult]) -> Result<usize, DeliveryError> {
        let mut f = self.open().map_err(DeliveryError::none)?;
        for (i, r) in batch.iter().enumerate() {
            let mut line = r.command_line(self.max_line_size).into_bytes();
            line.push(b'\n');
            self.write_line(&mut f, &line)
                .map_err(|message| DeliveryError {
                    delivered: i,
                    refused: 0,
                    message,
                })?;
        }
        Ok(0)
    }
}
