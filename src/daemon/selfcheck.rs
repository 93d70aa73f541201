//! `picomon state_dir`: the check picomon adds to every config it runs.
//!
//! The state directory holds the outbox, the state file and the spools. When
//! it cannot be written (a full disk, a read-only remount, lost permissions)
//! mail waits in memory and state is not saved: that is an outage the
//! operator must hear of, and it is reported like any other failing check,
//! through the same alert machine, from the in-memory mail queue.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::model::{CheckKind, CheckSpec, Outcome, Probe, Status};

/// The check's name, as `-1`, the dump and reports show it.
pub const NAME: &str = "picomon state_dir";
/// Its identity: the `picomon:` prefix is not one a config can produce
/// without a `name`, and the state file keeps its state under it.
pub const ID: &str = "picomon:state_dir";

/// Bytes written by each test: a full page, so a filesystem with a few free
/// bytes left but no free block still fails.
const PROBE_BYTES: usize = 4096;

/// The self-check for `cfg`'s state directory: every tick, one retry, the
/// longest timeout a config may not need (the write is local).
pub fn spec(cfg: &Config) -> CheckSpec {
    CheckSpec {
        id: ID.into(),
        name: NAME.into(),
        dest: crate::notify::mail::compose::hostname().into(),
        kind: CheckKind::Probe(Arc::new(StateDirProbe {
            dir: cfg.state_dir.clone(),
        })),
        every: 1,
        error_every: 1,
        retry: 1,
        timeout_ms: 10_000,
        extras: None,
        passive_host: false,
        max_instances: 1,
        line: 0,
        noise: None,
    }
}

/// Writes, syncs and removes a small file in the state directory.
#[derive(Debug)]
pub struct StateDirProbe {
    pub dir: PathBuf,
}

impl Probe for StateDirProbe {
    fn run(&self, _timeout: Duration) -> Outcome {
        if !self.dir.exists() {
            // `-1` before the first daemon start: the daemon creates it.
            return Outcome::new(
                Status::Ok,
                format!(
                    "state dir {} does not exist yet; the daemon creates it",
                    self.dir.display()
                ),
            );
        }
        match write_test(&self.dir) {
            Ok(()) => Outcome::new(
                Status::Ok,
                format!("state dir {} is writable", self.dir.display()),
            ),
            Err(e) => Outcome::new(
                Status::Critical,
                format!(
                    "cannot write to the state dir {}: {e}; mail waits in memory and state is \
                     not saved until it is writable again (free space, or fix the mount or its \
                     permissions)",
                    self.dir.display()
                ),
            ),
        }
    }
}

fn write_test(dir: &Path) -> io::Result<()> {
    let path = dir.join(format!(".write-test.{}", std::process::id()));
    let result = (|| {
        let mut f = crate::fs::private_file()
            .write(true)
            .create_new(true)
            .open(&path)?;
        f.write_all(&[0u8; PROBE_BYTES])?;
        f.sync_all()
    })();
    let _ = fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_dir_is_ok_and_a_missing_one_is_not_an_alarm() {
        let dir = tempfile::tempdir().unwrap();
        let p = StateDirProbe {
            dir: dir.path().to_path_buf(),
        };
        assert_eq!(p.run(Duration::from_secs(1)).status, Status::Ok);
        assert!(
            fs::read_dir(dir.path()).unwrap().next().is_none(),
            "the test file is removed"
        );
        let missing = StateDirProbe {
            dir: dir.path().join("nope"),
        };
        let o = missing.run(Duration::from_secs(1));
        assert_eq!(o.status, Status::Ok);
        assert!(o.summary.contains("does not exist yet"), "{}", o.summary);
    }

    #[test]
    fn a_dir_that_is_not_a_directory_is_critical_and_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        let o = StateDirProbe { dir: file }.run(Duration::from_secs(1));
        assert_eq!(o.status, Status::Critical, "{o:?}");
        assert!(o.summary.contains("mail waits in memory"), "{}", o.summary);
    }
}
