//! A state dir that cannot be written: a tmpfs mounted on it, filled up or
//! remounted read-only (needs root; a test that cannot mount says so).

use std::fs;
use std::path::{Path, PathBuf};

/// A tmpfs mounted on a directory; unmounted when dropped.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        mount(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ],
            dir,
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    pub fn remount(&self, how: &str) {
        mount(&["-o", &format!("remount,{how}")], &self.dir);
    }

    /// Fills the file system with `name` until it is full.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join(name);
        let mut f = fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

fn mount(args: &[&str], dir: &Path) {
    let st = std::process::Command::new("mount")
        .args(args)
        .arg(dir)
        .status()
        .expect("mount");
    assert!(st.success(), "mount {args:?} {} failed", dir.display());
}

/// Mounting needs root; the test says so visibly when it cannot run.
pub fn can_mount(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED {test}: needs root to mount a tmpfs state dir");
    }
    root
}
