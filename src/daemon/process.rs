//! Process housekeeping: the pid file, the heartbeat, dropping privileges.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use nix::unistd::{Gid, Uid, User};

/// The pid file: written at start, removed when dropped (at exit).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn create(path: &Path) -> anyhow::Result<PidFile> {
        fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Touches `state_dir/heartbeat` (its content is the Unix time), so the
/// watchdog can tell a hung daemon from a slow one.
pub fn heartbeat(state_dir: &Path) {
    let path = state_dir.join("heartbeat");
    let now = crate::clock::now_unix_micros() / 1_000_000;
    if let Err(err) = fs::write(&path, format!("{now}\n")) {
        log::warn!("cannot write heartbeat {}: {err}", path.display());
    }
}

/// Started as root with `--user NAME`: creates the state directory, gives it
/// to NAME and drops to NAME (supplementary groups, gid, uid) before any
/// check runs. Started as root without it: one warning. Not root: `--user`
/// must name the current user (or be absent).
pub fn prepare_user(state_dir: &Path, user: Option<&str>) -> anyhow::Result<()> {
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
        (true, Some(name)) => drop_to(state_dir, name),
    }
}

fn drop_to(state_dir: &Path, name: &str) -> anyhow::Result<()> {
    let user = User::from_name(name)
        .with_context(|| format!("--user {name}: cannot read the user database"))?
        .ok_or_else(|| anyhow!("--user {name}: no such user"))?;
    fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    chown_tree(state_dir, user.uid, user.gid)?;
    let cname = std::ffi::CString::new(name)?;
    nix::unistd::initgroups(&cname, user.gid)
        .with_context(|| format!("--user {name}: cannot set supplementary groups"))?;
    nix::unistd::setgid(user.gid).with_context(|| format!("--user {name}: cannot set gid"))?;
    nix::unistd::setuid(user.uid).with_context(|| format!("--user {name}: cannot set uid"))?;
    log::info!("running as {name} (uid {}, gid {})", user.uid, user.gid);
    Ok(())
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
