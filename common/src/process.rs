//! Process housekeeping both programs do the same way: the private umask,
//! the pid file, and switching to the `--user` (with the parent-death
//! signal kept).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use nix::unistd::User;

/// Everything picomon writes is private to its user: files 0600,
/// directories 0700. Set first thing, so no file is ever created looser;
/// plugins inherit it too.
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// The pid file: written at start, removed when dropped (at exit).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes the pid (mode 0600) without following a symbolic link: as
    /// root, a link or a hard link planted in a directory others can write
    /// is refused, not written through.
    pub fn create(path: &Path) -> anyhow::Result<PidFile> {
        crate::files::write_private(path, format!("{}\n", std::process::id()).as_bytes())
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

/// The account `--user NAME` names.
pub fn lookup_user(name: &str) -> anyhow::Result<User> {
    User::from_name(name)
        .with_context(|| format!("--user {name}: cannot read the user database"))?
        .ok_or_else(|| anyhow!("--user {name}: no such user"))
}

/// Drops from root to `user`: supplementary groups, gid, uid, in that
/// order, and sets the parent-death signal again (the kernel clears it
/// when the ids change).
pub fn switch_to(user: &User) -> anyhow::Result<()> {
    let name = &user.name;
    let cname = std::ffi::CString::new(name.as_str())?;
    let death = ParentDeath::current();
    nix::unistd::initgroups(&cname, user.gid)
        .with_context(|| format!("--user {name}: cannot set supplementary groups"))?;
    nix::unistd::setgid(user.gid).with_context(|| format!("--user {name}: cannot set gid"))?;
    nix::unistd::setuid(user.uid).with_context(|| format!("--user {name}: cannot set uid"))?;
    death.rearm();
    log::info!("running as {name} (uid {}, gid {})", user.uid, user.gid);
    Ok(())
}

/// The parent-death signal the process was started with (picomon-watchdog
/// sets SIGTERM, so its child stops when it dies). The kernel clears it
/// when the uid or gid changes, so dropping privileges must set it again.
struct ParentDeath {
    signal: libc::c_int,
    parent: nix::unistd::Pid,
}

impl ParentDeath {
    fn current() -> ParentDeath {
        let mut signal: libc::c_int = 0;
        // SAFETY: PR_GET_PDEATHSIG writes one int through the pointer,
        // which points at a live local.
        unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut signal as *mut libc::c_int) };
        ParentDeath {
            signal,
            parent: nix::unistd::getppid(),
        }
    }

    /// Sets the signal again; a parent that died meanwhile (we were
    /// reparented) gets us the signal now, as the kernel would have sent it.
    fn rearm(&self) {
        if self.signal == 0 {
            return;
        }
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, self.signal as libc::c_ulong) };
        if nix::unistd::getppid() != self.parent {
            // SAFETY: raise(3) on ourselves; the default action of the
            // signal (SIGTERM: exit) applies, no handler is installed yet.
            unsafe { libc::raise(self.signal) };
        }
    }
}
