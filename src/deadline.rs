//! Socket I/O with one deadline in all, for the listening surfaces
//! (`control.sock`, `config.listen`).
//!
//! A per-read timeout lets a client that sends one byte every few seconds
//! hold its connection for ever; [`Deadline`] gives each read or write only
//! what is left of one fixed instant, so however the bytes trickle the
//! connection is done with by then.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A socket whose reads and writes can be given a timeout.
pub trait Timeouts {
    fn read_timeout_to(&self, t: Duration) -> io::Result<()>;
    fn write_timeout_to(&self, t: Duration) -> io::Result<()>;
}

impl Timeouts for UnixStream {
    fn read_timeout_to(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn write_timeout_to(&self, t: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(t))
    }
}

impl Timeouts for TcpStream {
    fn read_timeout_to(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn write_timeout_to(&self, t: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(t))
    }
}

/// `stream`, read and written until `until` and not after: past it every
/// call fails with `TimedOut`.
pub struct Deadline<'a, S> {
    pub stream: &'a S,
    pub until: Instant,
}

impl<'a, S> Deadline<'a, S> {
    pub fn new(stream: &'a S, until: Instant) -> Self {
        Deadline { stream, until }
    }

    /// What is left, or `TimedOut`.
    fn left(&self) -> io::Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection's deadline has passed",
            ));
        }
        Ok(left)
    }
}

impl<S: Timeouts> Read for Deadline<'_, S>
where
    for<'s> &'s S: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read_timeout_to(self.left()?)?;
        let mut s = self.stream;
        s.read(buf)
    }
}

impl<S: Timeouts> Write for Deadline<'_, S>
where
    for<'s> &'s S: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write_timeout_to(self.left()?)?;
        let mut s = self.stream;
        s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.stream;
        s.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_of_bytes_ends_at_the_deadline_not_after_each_byte() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let until = Instant::now() + Duration::from_millis(300);
        let writer = std::thread::spawn(move || {
            // One byte every 50 ms, for longer than the deadline.
            for _ in 0..40 {
                if (&theirs).write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut d = Deadline::new(&ours, until);
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        let err = loop {
            match d.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{err:?}"
        );
        // At most one read's worth after the deadline: the writer was not done.
        assert!(got.len() < 40, "read {} bytes", got.len());
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        assert_eq!(
            d.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        drop(ours);
        writer.join().unwrap();
    }
}
