//! The CLI's side of `control.sock`: one request, one answer.

use std::io::{BufRead, BufReader, Read, Write};

use serde::Deserialize;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{DocumentHead, Request, Response};
use super::SOCKET_FILE;

/// Why there was no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket: no daemon runs on that state dir.
    #[error("no picomon daemon is running on {0} ({1})")]
    NoDaemon(PathBuf, std::io::Error),
    #[error("control socket {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("control socket {0}: {1} (run this as root, as the daemon's user, or as a member of config.control_group)")]
    Denied(PathBuf, std::io::Error),
    #[error("control socket {0}: the daemon's answer is not understood: {1}")]
    Garbled(PathBuf, String),
}

/// The longest answer read (a status of some 100,000 checks).
const MAX_ANSWER: u64 = 256 << 20;

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

/// Sends `request` and waits (at most `timeout`) for the answer.
pub fn call(
    state_dir: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let (path, stream, written) = send(state_dir, request, timeout)?;
    // Answers are large (the status of every check) but bounded; read as
    // they are parsed, never held whole as text.
    let mut answer = BufReader::with_capacity(64 * 1024, (&stream).take(MAX_ANSWER));
    let empty = answer
        .fill_buf()
        .map(|b| b.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(true);
    if empty {
        let read = answer.fill_buf().map(|_| ());
        written
            .and(read)
            .map_err(|e| ClientError::Io(path.clone(), e))?;
        return Err(ClientError::Garbled(path, "no answer".into()));
    }
    let mut de = serde_json::Deserializer::from_reader(answer);
    Response::deserialize(&mut de).map_err(|e| ClientError::Garbled(path.clone(), e.to_string()))
}

/// What follows the head of a document answer, up to the end of the
/// connection.
pub type Rest = BufReader<UnixStream>;

/// The longest head line taken (an error's text, at most).
const MAX_HEAD: u64 = 1 << 20;

/// Sends a `status` with `document` and reads the head line: the head and
/// the rest to read, or the answer when it is not a document (an error).
pub fn call_document(
    state_dir: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Result<(DocumentHead, Rest), Response>, ClientError> {
    let (path, stream, written) = send(state_dir, request, timeout)?;
    let mut rest = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    let read = (&mut rest).take(MAX_HEAD).read_until(b'\n', &mut line);
    if line.iter().all(u8::is_ascii_whitespace) {
        written
            .and(read.map(|_| ()))
            .map_err(|e| ClientError::Io(path.clone(), e))?;
        return Err(ClientError::Garbled(path, "no answer".into()));
    }
    read.map_err(|e| ClientError::Io(path.clone(), e))?;
    let answer: Response =
        serde_json::from_slice(&line).map_err(|e| ClientError::Garbled(path, e.to_string()))?;
    Ok(match answer.document {
        Some(head) if answer.error.is_none() => Ok((head, rest)),
        _ => Err(answer),
    })
}

/// Connects and writes the request line; the write's result comes back
/// beside the stream: a refused client is answered and closed before its
/// request is read, and the answer is still there to read when the write
/// failed.
fn send(
    state_dir: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<(PathBuf, UnixStream, std::io::Result<()>), ClientError> {
    let path = socket_path(state_dir);
    let stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NoDaemon(path.clone(), e)
        }
        std::io::ErrorKind::PermissionDenied => ClientError::Denied(path.clone(), e),
        _ => ClientError::Io(path.clone(), e),
    })?;
    let io = |e| ClientError::Io(path.clone(), e);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_vec(request).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    let written = (&stream).write_all(&line);
    Ok((path, stream, written))
}
