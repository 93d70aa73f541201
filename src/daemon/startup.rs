//! Process housekeeping: the pid file, the heartbeat, dropping privileges,
//! the state directory's lock and modes, the umask, panics, and stopping
//! the runs at shutdown.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::unistd::{Gid, Uid, User};
use threadpool::ThreadPool;

pub use picomon_common::process::{private_umask, PidFile};

/// Touches `state_dir/heartbeat` (its content is the Unix time), so the
/// watchdog can tell a hung daemon from a slow one.
pub fn heartbeat(state_dir: &Path) {
    let path = state_dir.join("heartbeat");
    let now = crate::clock::now_unix_micros() / 1_000_000;
    if let Err(err) = crate::fs::write_private(&path, format!("{now}\n").as_bytes()) {
        log::warn!("cannot write heartbeat {}: {err}", path.display());
    }
}

/// Started as root with `--user NAME`: creates the state directory, gives it
/// to NAME, keeps the `secrets` files in memory (they may stay root's) and
/// drops to NAME (supplementary groups, gid, uid) before any check runs.
/// Started as root without it: one warning. Not root: `--user` must name
/// the current user (or be absent).
pub fn prepare_user(
    state_dir: &Path,
    user: Option<&str>,
    secrets: &[PathBuf],
) -> anyhow::Result<()> {
    let root = Uid::effective().is_root();
    match (root, user) {
        (true, None) => {
            log::warn!(
                "running as root: checks run as root too; use --user nobody to drop privileges"
            );
            Ok(())
        }
        (false, None) => Ok(()),
        (false, Some(name)) => {
            let me = User::from_uid(Uid::effective())?.map(|u| u.name);
            if me.as_deref() == Some(name) {
                Ok(())
            } else {
                Err(anyhow!(
                    "--user {name}: only root can switch users (running as {})",
                    me.unwrap_or_else(|| Uid::effective().to_string())
                ))
            }
        }
        (true, Some(name)) => {
            crate::secret::keep(secrets);
            drop_to(state_dir, name)
        }
    }
}

/// A panic anywhere (a worker, the mail thread, the loop) is logged at
/// ERROR with its thread and place, instead of a bare line on stderr: a
/// bug must never pass silently. A panic in a run is then caught by
/// `check::exec::execute` and becomes that check's UNKNOWN.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let message = crate::run::exec::panic_message(info.payload());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        log::error!(
            "internal error in thread {}{place}: {message} (a bug: please report it)",
            thread.name().unwrap_or("unnamed")
        );
    }));
}

/// The file in the state directory that only one picomon holds.
const LOCK_FILE: &str = "lock";

/// How long a picomon waits for one that is stopping to let go of the
/// state directory (its shutdown is bounded well below this).
const WAIT_FOR_STOPPING: Duration = Duration::from_secs(30);

/// One daemon per state directory: an exclusive flock on `state_dir/lock`,
/// held until the process exits. The file holds the holder's pid, and
/// `PID stopping` once its shutdown began.
#[derive(Debug)]
pub struct StateLock {
    _lock: crate::fs::Flocked<File>,
}

impl StateLock {
    /// Creates the state directory, takes its lock and tightens the modes
    /// of what it holds. A picomon that holds it and is stopping is waited
    /// for (a restarted watchdog's child meets its predecessor's shutdown);
    /// one that runs is an error naming its pid.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<StateLock> {
        super::ensure_dir(state_dir)?;
        if Uid::effective().is_root() {
            refuse_foreign_dir(state_dir, &[Uid::effective()])?;
        }
        let path = state_dir.join(LOCK_FILE);
        let waited_from = Instant::now();
        let mut announced = false;
        loop {
            let file = crate::fs::lock_file(&path)
                .with_context(|| format!("cannot open the lock file {}", path.display()))?;
            match crate::fs::try_lock(file) {
                Ok(Some(lock)) => {
                    crate::fs::write_private(&path, format!("{}\n", std::process::id()).as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    tighten_modes(state_dir);
                    return Ok(StateLock { _lock: lock });
                }
                Ok(None) => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    let pid = holder.split_whitespace().next().unwrap_or("?").to_string();
                    let stopping = holder.contains("stopping");
                    if !stopping || waited_from.elapsed() >= WAIT_FOR_STOPPING {
                        bail!(
                            "state dir {} is in use by pid {pid} (another picomon runs with it; \
                             stop that one, or give this one its own --state-dir)",
                            state_dir.display()
                        );
                    }
                    if !announced {
                        log::info!(
                            "waiting for pid {pid} to stop and release {}",
                            path.display()
                        );
                        announced = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => bail!("cannot lock {}: {e}", path.display()),
            }
        }
    }
}

/// As root, a state directory that another user owns or may write is
/// refused: whoever controls it could plant links there for root to write
/// through or chown. `owners` are the users it may belong to.
fn refuse_foreign_dir(dir: &Path, owners: &[Uid]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir)
        .with_context(|| format!("cannot read state directory {}", dir.display()))?;
    let owner = Uid::from_raw(meta.uid());
    if !owners.contains(&owner) {
        bail!(
            "state directory {} belongs to uid {owner}, not to the user picomon runs as: \
             picomon runs as root and will not use a directory another user controls \
             (give it to root with chown, or use another --state-dir)",
            dir.display()
        );
    }
    if meta.mode() & 0o002 != 0 {
        bail!(
            "state directory {} is writable by every user (mode {:o}): picomon runs as root \
             and will not use it (chmod o-w it, or use another --state-dir)",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// Marks the lock file `PID stopping`, so a picomon starting meanwhile
/// waits for this one to exit instead of failing.
pub fn announce_stopping(state_dir: &Path) {
    let text = format!("{} stopping\n", std::process::id());
    // The same file the lock is held on: only its holder writes it.
    let _ = crate::fs::write_private(&state_dir.join(LOCK_FILE), text.as_bytes());
}

/// Files that only picomon's user may read; directories that only it may
/// enter. Anything looser found in the state directory at start (an older
/// picomon, a restored backup, a hand-made file) is tightened, with one WARN
/// line per entry of the directory (a subdirectory counts with what it
/// holds).
fn tighten_modes(state_dir: &Path) {
    warn_if_tightened(state_dir, usize::from(private(state_dir)));
    let Ok(entries) = fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let mut changed = usize::from(private(&path));
        if path.is_dir() && !path.is_symlink() {
            changed += tighten_tree(&path);
        }
        warn_if_tightened(&path, changed);
    }
}

/// Tightens what `dir` holds, recursively (not `dir` itself); returns how
/// many entries were changed.
fn tighten_tree(dir: &Path) -> usize {
    let mut changed = 0;
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        changed += usize::from(private(&path));
        if path.is_dir() && !path.is_symlink() {
            changed += tighten_tree(&path);
        }
    }
    changed
}

fn warn_if_tightened(path: &Path, changed: usize) {
    if changed == 0 {
        return;
    }
    let what = if path.is_dir() {
        format!("directory {} ({changed} entries)", path.display())
    } else {
        format!("file {}", path.display())
    };
    log::warn!("{what} was open to other users; now only picomon's user may read it (0700 directories, 0600 files)");
}

/// [`set_private`], logging a failure; true when `path` was changed.
fn private(path: &Path) -> bool {
    set_private(path).unwrap_or_else(|err| {
        log::warn!("cannot make {} private: {err}", path.display());
        false
    })
}

/// Clears the group and other bits of `path` (not following a symlink);
/// true when there were any.
fn set_private(path: &Path) -> std::io::Result<bool> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(false);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & !0o077))?;
    Ok(true)
}

/// How long shutdown waits for the workers after the runs were killed: the
/// plugins are dead by then, only a built-in probe may still be on its way
/// to its timeout (it leaves no process behind).
pub const JOIN_WORKERS: Duration = Duration::from_secs(3);

/// Between SIGTERM and SIGKILL to the running plugins at shutdown.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// Waits for every job of `pool` to finish, for at most `within`; true
/// when they all did.
pub fn join_within(pool: &ThreadPool, within: Duration) -> bool {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let pool = pool.clone();
    let joiner = std::thread::Builder::new()
        .name("join".into())
        .spawn(move || {
            pool.join();
            let _ = tx.send(());
        });
    joiner.is_ok() && rx.recv_timeout(within).is_ok()
}

fn drop_to(state_dir: &Path, name: &str) -> anyhow::Result<()> {
    let user = picomon_common::process::lookup_user(name)?;
    fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    refuse_foreign_dir(state_dir, &[Uid::effective(), user.uid])?;
    chown_tree(state_dir, user.uid, user.gid)?;
    picomon_common::process::switch_to(&user)
}

/// Gives the state directory and what it holds to the daemon's user.
fn chown_tree(dir: &Path, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    nix::unistd::chown(dir, Some(uid), Some(gid))
        .with_context(|| format!("cannot chown {}", dir.display()))?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            chown_tree(&path, uid, gid)?;
        } else if !path.is_symlink() {
            nix::unistd::chown(&path, Some(uid), Some(gid))
                .with_context(|| format!("cannot chown {}", path.display()))?;
        }
    }
    Ok(())
}
