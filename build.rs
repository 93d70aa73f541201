//! Hands the git commit picomon is built from to `--version`
//! (`PICOMON_COMMIT`), or "unknown commit" outside a git checkout (a source
//! tarball, a build without git); and links the executable with packed
//! relative relocations where the C library can load them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The C library's version as `(major, minor)`, from `getconf`.
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// RELR (`-z pack-relative-relocs`): a position-independent executable
/// has a relocation for every pointer in its data (vtables, tables of
/// strings: Rust has many), 24 bytes each; packed as bitmaps they take
/// 0.27 MB less (BENCHMARKS.md). glibc loads them from 2.36 on, and the linker then
/// names `GLIBC_ABI_DT_RELR` among the executable's needs, so an older libc
/// refuses it at start and a Debian package depends on libc6 (>= 2.36). Done
/// only when building on glibc 2.36 or newer for this same machine's
/// target: an older glibc would get a picomon it cannot start, and a
/// cross-build cannot ask the target's libc.
fn pack_relative_relocs() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    if native
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && glibc_version().is_some_and(|v| v >= (2, 36))
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    pack_relative_relocs();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    // Build again when HEAD moves: HEAD itself (a checkout) and the branch
    // it points to (a commit), loose or packed.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
        let common = git(&["rev-parse", "--git-common-dir"])
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.clone());
        let mut watch = vec![dir.join("HEAD"), common.join("packed-refs")];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(common.join(Path::new(&branch)));
        }
        // A path that does not exist would rerun this script at every build.
        for path in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = commit.map_or_else(|| "unknown commit".to_string(), |c| format!("commit {c}"));
    println!("cargo:rustc-env=PICOMON_COMMIT={commit}");
}
