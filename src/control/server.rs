//! The daemon's side of `control.sock`: one thread accepts; each client
//! gets its own thread (at most [`MAX_CLIENTS`] at once) with read and
//! write timeouts, so a slow or stuck client costs a thread, never a tick.
//!
//! Every connection is checked with SO_PEERCRED before a byte is read:
//! root, the daemon's own uid and members of `config.control_group` are
//! served; anyone else gets `{"error":"permission denied"}` and is closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::unistd::{Group, Uid, User};

use super::protocol::{Request, Response, MAX_LINE};
use super::{Call, Published, Submit, SubmitFn, SOCKET_FILE};

/// Clients served at once; more are told to come back.
pub const MAX_CLIENTS: usize = 16;
/// A client that sends nothing for this long is closed.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may wait for the loop (a `run` lasts as long as its
/// check; the check's own timeout ends it first).
const LOOP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Who may connect.
#[derive(Clone, Debug)]
struct Access {
    daemon_uid: u32,
    /// `config.control_group`: its gid and member names.
    group: Option<(u32, Vec<String>)>,
}

/// The peer of a connection (SO_PEERCRED).
#[derive(Clone, Copy, Debug)]
struct Peer {
    pid: i32,
    uid: u32,
    gid: u32,
}

impl Access {
    fn allows(&self, p: Peer, user: &str) -> bool {
        p.uid == 0
            || p.uid == self.daemon_uid
            || self
                .group
                .as_ref()
                .is_some_and(|(gid, members)| p.gid == *gid || members.iter().any(|m| m == user))
    }
}

/// The running server; dropping it removes the socket file.
pub struct Server {
    path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates `state_dir/control.sock` (after the privilege drop, so it
/// belongs to the daemon's user) and starts accepting.
pub fn start(
    state_dir: &Path,
    control_group: Option<&str>,
    submit: Submit,
    published: Published,
) -> anyhow::Result<Server> {
    let path = state_dir.join(SOCKET_FILE);
    let group = match control_group {
        None => None,
        Some(name) => {
            let g = Group::from_name(name)
                .with_context(|| format!("config.control_group {name:?}: cannot look it up"))?
                .with_context(|| {
                    format!("config.control_group {name:?} is not a group on this machine; create it or remove the setting")
                })?;
            Some(g)
        }
    };
    let listener = bind(&path)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    if let Some(g) = &group {
        nix::unistd::chown(&path, None, Some(g.gid)).with_context(|| {
            format!(
                "cannot give {} to group {} (config.control_group): the daemon's user must be a member",
                path.display(),
                g.name
            )
        })?;
    }
    let access = Access {
        daemon_uid: Uid::effective().as_raw(),
        group: group.map(|g| (g.gid.as_raw(), g.mem)),
    };
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => admit(stream, &access, &clients, &submit, &published),
                    Err(e) => {
                        log::warn!("control socket: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    log::info!("control socket {} (mode {mode:o})", path.display());
    Ok(Server { path })
}

/// Binds, replacing a socket file left by a daemon that died; refuses when
/// a daemon still answers on it.
fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another picomon is serving {}; stop it or give this one its own state_dir",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale {}", path.display()))?;
    }
    UnixListener::bind(path).with_context(|| {
        format!(
            "cannot create the control socket {} (is state_dir writable by the daemon's user?)",
            path.display()
        )
    })
}

/// Checks the peer, then serves it on its own thread when a slot is free.
fn admit(
    stream: UnixStream,
    access: &Access,
    clients: &Arc<AtomicUsize>,
    submit: &Submit,
    published: &Published,
) {
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let Some(peer) = peer_of(&stream) else {
        log::warn!("control socket: cannot read the peer's credentials; closed");
        return;
    };
    let user = user_name(peer.uid);
    if !access.allows(peer, &user) {
        log::warn!(
            "control socket: {user} (uid {}, pid {}) is not allowed; closed",
            peer.uid,
            peer.pid
        );
        answer(&stream, &Response::error("permission denied"));
        return;
    }
    if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        clients.fetch_sub(1, Ordering::SeqCst);
        answer(
            &stream,
            &Response::error("busy: too many control clients at once; try again"),
        );
        return;
    }
    let clients = Arc::clone(clients);
    let submit = Arc::clone(submit);
    let published = Arc::clone(published);
    let spawned = std::thread::Builder::new()
        .name("control-client".into())
        .spawn(move || {
            serve(stream, &user, &*submit, &published);
            clients.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::warn!("control socket: cannot start a client thread: {e}");
    }
}

/// Answers requests, one per line, until the client closes, times out or
/// sends a line too long to take.
fn serve(stream: UnixStream, user: &str, submit: &SubmitFn, published: &Published) {
    let mut reader = BufReader::new(&stream);
    let mut line = Vec::new();
    // Every command is logged at INFO with the user; a client that keeps
    // one connection open to poll `status` is logged at INFO once.
    let mut read_logged = false;
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            answer(
                &stream,
                &Response::error(format!(
                    "request longer than {MAX_LINE} bytes; one JSON object per line"
                )),
            );
            return;
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(text.trim()) {
            Ok(Request::Status) => match published.read() {
                Some(snapshot) => {
                    log_read(user, "status", &mut read_logged);
                    if (&stream).write_all(snapshot.answer_line()).is_err() {
                        return;
                    }
                    continue;
                }
                // Nobody asked for a while: the loop answers this one and
                // publishes again from now on.
                None => handle(Request::Status, user, submit, published, &mut read_logged),
            },
            Ok(request) => handle(request, user, submit, published, &mut read_logged),
            Err(e) => Response::error(format!(
                "not a request: {e}; send e.g. {{\"cmd\":\"status\"}}"
            )),
        };
        if !answer(&stream, &response) {
            return;
        }
    }
}

/// A read-only request: INFO the first time on a connection, then DEBUG.
fn log_read(user: &str, name: &str, logged: &mut bool) {
    if std::mem::replace(logged, true) {
        log::debug!("control: {user}: {name}");
    } else {
        log::info!("control: {user}: {name}");
    }
}

fn handle(
    request: Request,
    user: &str,
    submit: &SubmitFn,
    published: &Published,
    read_logged: &mut bool,
) -> Response {
    if matches!(request, Request::Status | Request::Silences) {
        log_read(user, request.name(), read_logged);
    } else {
        log::info!(
            "control: {user}: {}",
            serde_json::to_string(&request).unwrap_or_default()
        );
    }
    match request {
        Request::Silences if published.read().is_some() => Response {
            silences: published.read().map(|s| s.report.silences.clone()),
            ..Response::default()
        },
        request => {
            let (tx, rx) = crossbeam_channel::bounded(1);
            submit(Call {
                request,
                user: user.to_string(),
                reply: tx,
            });
            rx.recv_timeout(LOOP_TIMEOUT).unwrap_or_else(|e| {
                Response::error(match e {
                    crossbeam_channel::RecvTimeoutError::Timeout => {
                        "the daemon did not answer in time".to_string()
                    }
                    crossbeam_channel::RecvTimeoutError::Disconnected => {
                        "the daemon is stopping".to_string()
                    }
                })
            })
        }
    }
}

/// Writes one answer line; false when the client is gone.
fn answer(mut stream: &UnixStream, r: &Response) -> bool {
    let mut bytes = serde_json::to_vec(r).unwrap_or_else(|_| br#"{"error":"internal"}"#.to_vec());
    bytes.push(b'\n');
    stream
        .write_all(&bytes)
        .and_then(|_| stream.flush())
        .is_ok()
}

fn peer_of(stream: &UnixStream) -> Option<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the ucred we own.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// The user name of `uid`, or the number when it has none.
fn user_name(uid: u32) -> String {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Peer {
        Peer { pid: 1, uid, gid }
    }

    #[test]
    fn root_the_daemon_user_and_group_members_are_allowed() {
        let alone = Access {
            daemon_uid: 100,
            group: None,
        };
        assert!(alone.allows(peer(0, 0), "root"));
        assert!(alone.allows(peer(100, 100), "picomon"));
        assert!(!alone.allows(peer(65534, 65534), "nobody"));
        let grouped = Access {
            daemon_uid: 100,
            group: Some((500, vec!["alice".into()])),
        };
        assert!(grouped.allows(peer(1000, 1000), "alice"));
        assert!(grouped.allows(peer(1001, 500), "bob"));
        assert!(!grouped.allows(peer(1002, 1002), "carol"));
    }
}
