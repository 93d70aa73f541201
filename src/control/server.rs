//! The daemon's side of `control.sock`: one thread accepts; each client
//! gets its own thread (at most [`MAX_CLIENTS`] at once), so a slow or
//! stuck client costs a thread, never a tick.
//!
//! Every connection is checked with SO_PEERCRED before a byte is read:
//! root, the daemon's own uid and members of `config.control_group` are
//! served; anyone else gets `{"error":"permission denied"}` and is closed.
//!
//! The operator can always get in: a client has [`FIRST_LINE`] in all for
//! its first request line (a byte every few seconds does not keep it), a
//! user other than root and the daemon's own holds at most
//! [`MAX_PER_USER`] connections, and those users together leave the last
//! slot free, so `status`, `ack` and `silence` from root or the daemon's
//! user are answered however many clients others keep open. Refusals are
//! written without blocking, so a client never stalls the accept thread.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::unistd::{Group, Uid, User};

use super::protocol::{DocumentHead, Filter, Request, Response, DOCUMENT_END, MAX_LINE};
use super::snapshot::json;
use super::{Call, Published, Snapshot, Submit, SubmitFn, SOCKET_FILE};
use crate::deadline::Deadline;

/// Clients served at once; more are told to come back.
pub const MAX_CLIENTS: usize = 16;
/// Connections one user other than root and the daemon's own may hold.
pub const MAX_PER_USER: usize = 4;
/// A client's first request line must be whole this long after connecting,
/// in all (not per read).
pub const FIRST_LINE: Duration = Duration::from_secs(2);
/// Each further line must be whole this long after the previous answer: a
/// client may keep its connection to poll `status`, slower than this not.
pub const NEXT_LINE: Duration = Duration::from_secs(10);
/// An answer must be written within this in all; a client that does not
/// read it is closed.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How long a request may wait for the loop (a `run` lasts as long as its
/// check; the check's own timeout ends it first).
const LOOP_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How long `status` waits for the loop to publish when nobody read for a
/// while (else the published status is there already).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

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
    let slots = Arc::new(Slots::default());
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => admit(stream, &access, &slots, &submit, &published),
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

/// Who holds the slots: connections open, by uid.
#[derive(Debug, Default)]
struct Slots {
    held: Mutex<HashMap<u32, usize>>,
}

/// One connection's slot, given back when dropped.
struct Slot {
    slots: Arc<Slots>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.uid);
            }
        }
    }
}

/// Why a connection got no slot.
#[derive(Debug, PartialEq, Eq)]
enum Full {
    /// The user already holds [`MAX_PER_USER`].
    User,
    /// Every slot others may take is held.
    All,
}

impl Slots {
    /// A slot for `uid`; `trusted` is root or the daemon's own user, who
    /// may take any free slot, the last one included.
    fn take(self: &Arc<Self>, uid: u32, trusted: bool) -> Result<Slot, Full> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        admits(&held, uid, trusted)?;
        *held.entry(uid).or_insert(0) += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            uid,
        })
    }
}

/// Whether one more connection of `uid` fits beside `held`.
fn admits(held: &HashMap<u32, usize>, uid: u32, trusted: bool) -> Result<(), Full> {
    let total: usize = held.values().sum();
    if trusted {
        return if total < MAX_CLIENTS {
            Ok(())
        } else {
            Err(Full::All)
        };
    }
    if held.get(&uid).copied().unwrap_or(0) >= MAX_PER_USER {
        Err(Full::User)
    } else if total >= MAX_CLIENTS - 1 {
        Err(Full::All)
    } else {
        Ok(())
    }
}

/// Checks the peer, then serves it on its own thread when a slot is free.
fn admit(
    stream: UnixStream,
    access: &Access,
    slots: &Arc<Slots>,
    submit: &Submit,
    published: &Published,
) {
    let accepted = Instant::now();
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
        refuse(&stream, "permission denied".into());
        return;
    }
    let trusted = peer.uid == 0 || peer.uid == access.daemon_uid;
    let slot = match slots.take(peer.uid, trusted) {
        Ok(slot) => slot,
        Err(full) => {
            log::debug!("control socket: {user}: {full:?} slots held; turned away");
            refuse(
                &stream,
                match full {
                    Full::User => format!(
                        "busy: {user} already has {MAX_PER_USER} control connections open; \
                         close one and try again"
                    ),
                    Full::All => "busy: too many control clients at once; try again".into(),
                },
            );
            return;
        }
    };
    let submit = Arc::clone(submit);
    let published = Arc::clone(published);
    let spawned = std::thread::Builder::new()
        .name("control-client".into())
        .spawn(move || {
            serve(stream, accepted, &user, &*submit, &published);
            drop(slot);
        });
    if let Err(e) = spawned {
        log::warn!("control socket: cannot start a client thread: {e}");
    }
}

/// Writes a refusal on the accept thread without ever waiting: a fresh
/// connection's buffer always has room for one short line.
fn refuse(stream: &UnixStream, error: String) {
    let _ = stream.set_nonblocking(true);
    let mut bytes = serde_json::to_vec(&Response::error(error))
        .unwrap_or_else(|_| br#"{"error":"busy"}"#.to_vec());
    bytes.push(b'\n');
    let _ = (&*stream).write(&bytes);
}

/// Answers requests, one per line, until the client closes, misses its
/// deadline or sends a line too long to take.
fn serve(
    stream: UnixStream,
    accepted: Instant,
    user: &str,
    submit: &SubmitFn,
    published: &Published,
) {
    let mut reader = BufReader::new(Deadline::new(&stream, accepted + FIRST_LINE));
    let mut first = true;
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
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                let within = if first { FIRST_LINE } else { NEXT_LINE };
                answer(
                    &stream,
                    &Response::error(format!(
                        "no whole request line within {} s; closed",
                        within.as_secs()
                    )),
                );
                return;
            }
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
            Ok(Request::Status {
                only,
                problems,
                document,
            }) => match published.wait(SNAPSHOT_TIMEOUT) {
                Some(snapshot) => {
                    log_read(user, "status", &mut read_logged);
                    let filter = Filter {
                        only: only.as_deref(),
                        problems,
                    };
                    // A document ends the connection: its reader copies
                    // what comes up to the end.
                    if !write_status(&stream, &snapshot, filter, document) || document {
                        return;
                    }
                    first = false;
                    reader.get_mut().until = Instant::now() + NEXT_LINE;
                    continue;
                }
                None => Response::error("the daemon did not publish its status in time"),
            },
            Ok(request) => handle(request, user, submit, published, &mut read_logged),
            Err(e) => Response::error(format!(
                "not a request: {e}; send e.g. {{\"cmd\":\"status\"}}"
            )),
        };
        if !answer(&stream, &response) {
            return;
        }
        first = false;
        reader.get_mut().until = Instant::now() + NEXT_LINE;
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
    if matches!(request, Request::Status { .. } | Request::Silences) {
        log_read(user, request.name(), read_logged);
    } else {
        log::info!(
            "control: {user}: {}",
            serde_json::to_string(&request).unwrap_or_default()
        );
    }
    match request {
        Request::Silences if published.read().is_some() => Response {
            silences: published.read().map(|s| s.silences.clone()),
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

/// Writes one answer line; false when the client is gone or too slow.
fn answer(stream: &UnixStream, r: &Response) -> bool {
    let mut bytes = serde_json::to_vec(r).unwrap_or_else(|_| br#"{"error":"internal"}"#.to_vec());
    bytes.push(b'\n');
    write_all_within(stream, &bytes)
}

/// Writes `{"status":{...}}` and a newline, or (`document`) the head
/// line, the text `picomon status --json` prints and [`DOCUMENT_END`],
/// within [`WRITE_DEADLINE`] in all. Written from the snapshot's lines as
/// it goes (see [`json`]): however many checks, no copy of the answer nor
/// of any check's status is made. False when the client is gone or too
/// slow.
fn write_status(stream: &UnixStream, snapshot: &Snapshot, filter: Filter, document: bool) -> bool {
    let mut out = Deadline::new(stream, Instant::now() + WRITE_DEADLINE);
    let shape = json::Shape {
        daemon: document,
        pretty: document,
    };
    let (head, tail) = if document {
        let head = Response {
            document: Some(DocumentHead {
                problem: snapshot.any_problem(filter),
            }),
            ..Response::default()
        };
        let mut head = serde_json::to_vec(&head).unwrap_or_default();
        head.push(b'\n');
        let mut tail = b"\n".to_vec();
        tail.extend_from_slice(DOCUMENT_END);
        (head, tail)
    } else {
        (b"{\"status\":".to_vec(), b"}\n".to_vec())
    };
    out.write_all(&head).is_ok()
        && json::write(&mut out, snapshot, filter, shape).is_ok()
        && out.write_all(&tail).is_ok()
}

/// Writes `bytes` within [`WRITE_DEADLINE`] in all.
fn write_all_within(stream: &UnixStream, bytes: &[u8]) -> bool {
    Deadline::new(stream, Instant::now() + WRITE_DEADLINE)
        .write_all(bytes)
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

    #[test]
    fn a_user_takes_at_most_its_share_and_the_last_slot_is_root_s() {
        let slots = Arc::new(Slots::default());
        let alice: Vec<Slot> = (0..MAX_PER_USER)
            .map(|_| slots.take(1000, false).unwrap())
            .collect();
        assert_eq!(slots.take(1000, false).err(), Some(Full::User));
        // Others fill all but the last slot.
        let mut others = Vec::new();
        let mut uid = 2000;
        while others.len() + alice.len() < MAX_CLIENTS - 1 {
            others.push(slots.take(uid, false).unwrap());
            uid += 1;
        }
        assert_eq!(slots.take(uid, false).err(), Some(Full::All));
        // The last one is root's (or the daemon user's), then nobody's.
        let root = slots.take(0, true).unwrap();
        assert_eq!(slots.take(100, true).err(), Some(Full::All));
        drop(root);
        let daemon = slots.take(100, true).unwrap();
        // A closed connection gives its slot back to its user.
        drop(alice);
        assert!(slots.held.lock().unwrap().get(&1000).is_none());
        let again = slots.take(1000, false).unwrap();
        drop((again, daemon, others));
        assert!(slots.held.lock().unwrap().is_empty());
    }
}
