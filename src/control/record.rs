//! Where a running daemon's state directory is, by config file: a record
//! the daemon writes at start, for the CLI to find its socket when the
//! config cannot be evaluated far enough to name `state_dir` (a syntax
//! error just made: exactly when `picomon reload` must answer with it).
//!
//! The record is `/run/picomon/<key>` for a daemon started as root, else
//! `$XDG_RUNTIME_DIR/picomon/<key>`; `<key>` is a hash of the config file's
//! absolute path, and the record names that path and the state directory.
//! It holds two paths and nothing secret, so it is readable by all (0644 in
//! a 0755 folder): a member of `config.control_group` needs it too. The CLI
//! trusts a record only when it and its folder belong to root or to the
//! caller and nobody else can write them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::Uid;

/// root's folder of records.
const ROOT_DIR: &str = "/run/picomon";

/// What a record holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Content {
    config: PathBuf,
    state_dir: PathBuf,
}

/// Records that the daemon of `config` runs on `state_dir`. Best effort:
/// without a record the CLI still finds the daemon through a config that
/// evaluates, or `--state-dir`. Never removed: a second start of the same
/// config writes the same record, one of a daemon gone points at a folder
/// where nobody answers, and /run is emptied at boot.
pub fn write(config: &Path, state_dir: &Path) {
    let Some(dir) = own_dir() else {
        return;
    };
    let config = absolute(config);
    let path = dir.join(key(&config));
    let content = Content {
        config,
        state_dir: absolute(state_dir),
    };
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let bytes = serde_json::to_vec(&content).map_err(std::io::Error::other)?;
        crate::fs::write_atomic(&path, &bytes)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
    })();
    if let Err(e) = written {
        log::debug!(
                "cannot record the state directory in {}: {e} (the subcommands find the daemon through the config or --state-dir)",
                path.display()
            );
    }
}

/// The state directory the record of `config` names, if there is a record
/// the caller can trust.
pub fn read(config: &Path) -> Option<PathBuf> {
    let config = absolute(config);
    let name = key(&config);
    let me = Uid::effective().as_raw();
    let dirs = [Some(PathBuf::from(ROOT_DIR)), user_dir()];
    dirs.into_iter().flatten().find_map(|dir| {
        let path = dir.join(&name);
        if !trusted(&dir, me) || !trusted(&path, me) {
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        let content: Content = serde_json::from_slice(&bytes).ok()?;
        (content.config == config).then_some(content.state_dir)
    })
}

/// Owned by root or by `me`, and writable by nobody else.
fn trusted(path: &Path, me: u32) -> bool {
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| (m.uid() == 0 || m.uid() == me) && m.mode() & 0o022 == 0)
}

/// The folder this process writes its record to.
fn own_dir() -> Option<PathBuf> {
    if Uid::effective().is_root() {
        Some(PathBuf::from(ROOT_DIR))
    } else {
        user_dir()
    }
}

/// `$XDG_RUNTIME_DIR/picomon`, the user's own.
fn user_dir() -> Option<PathBuf> {
    let run = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    Some(PathBuf::from(run).join("picomon"))
}

/// The path as given, made absolute against the working directory, and
/// with symlinks resolved where it exists.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// The record's file name: FNV-1a of the config's path, in hex.
fn key(config: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in config.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_config_path() {
        assert_eq!(
            key(Path::new("/etc/picomon/a.rhai")),
            key(Path::new("/etc/picomon/a.rhai"))
        );
        assert_ne!(
            key(Path::new("/etc/picomon/a.rhai")),
            key(Path::new("/etc/picomon/b.rhai"))
        );
    }
}
