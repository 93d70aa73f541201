//! The Debian package (`cargo deb`, configured in Cargo.toml): built,
//! checked by lintian, installed with dpkg on this machine, used as a
//! sysadmin would (the sample config, `--help`, man, bash completion), then
//! removed and purged without a trace. And `--version` names its commit.
//!
//! The package is made from the binaries this test run already built
//! (unoptimised, through `cargo deb --no-build --profile deb-test`), staged
//! in a target folder of its own: a release build (fat LTO) would take
//! longer than the rest of the suite, and the package's layout, scripts and
//! metadata, which this test is about, are the same for either. The
//! README's command builds the release package.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::picomon_bin;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd`, fails the test with its output unless it succeeds, returns
/// its stdout.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn version_names_the_git_commit_it_was_built_from() {
    let version = ok(Command::new(picomon_bin()).arg("--version"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(MANIFEST_DIR)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string());
    let want = match head {
        Some(commit) => format!("picomon {} (commit {commit})\n", env!("CARGO_PKG_VERSION")),
        None => format!("picomon {} (unknown commit)\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(version, want);
}

/// The package's binaries in a target folder of their own, where cargo-deb
/// looks for them with `--profile deb-test` (Cargo.toml).
fn stage_binaries(target: &Path) {
    let built = picomon_bin();
    let watchdog = built.with_file_name("picomon-watchdog");
    if !watchdog.exists() {
        // Only this package's tests were built (e.g. `--test it`).
        ok(Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "picomon-watchdog",
                "--bin",
                "picomon-watchdog",
            ])
            .current_dir(MANIFEST_DIR));
    }
    let profile_dir = target.join("deb-test");
    fs::create_dir_all(&profile_dir).unwrap();
    for bin in [&built, &watchdog] {
        fs::copy(bin, profile_dir.join(bin.file_name().unwrap()))
            .unwrap_or_else(|e| panic!("copy {}: {e}", bin.display()));
    }
}

fn build_package(dir: &Path) -> PathBuf {
    let target = dir.join("target");
    stage_binaries(&target);
    let deb = dir.join("picomon.deb");
    let version = run(Command::new(env!("CARGO")).args(["deb", "--version"]));
    assert!(
        version.status.success(),
        "cargo-deb is missing: tests/install-and-test installs it ({})",
        text(&version.stderr)
    );
    ok(Command::new(env!("CARGO"))
        .args([
            "deb",
            "--no-build",
            "--profile",
            "deb-test",
            "--fast",
            "--output",
        ])
        .arg(&deb)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(MANIFEST_DIR));
    deb
}

/// Purges the package when the test ends, however it ends, so that a
/// failure leaves no picomon in /usr/bin for the next run.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "picomon"]).output();
    }
}

/// The files and folders the package ships (`./usr/bin/picomon` as
/// `/usr/bin/picomon`), without the shared folders above them.
fn shipped_paths(deb: &Path) -> Vec<PathBuf> {
    ok(Command::new("dpkg-deb").arg("--contents").arg(deb))
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let name = l.split_whitespace().nth(5).expect("a path column");
            PathBuf::from(name.trim_start_matches('.'))
        })
        .collect()
}

fn installed_status() -> String {
    text(&run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "picomon"])).stdout)
}

#[test]
#[ignore = "needs root: installs a Debian package"]
fn debian_package_installs_works_and_purges_without_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build_package(dir.path());

    // lintian: no error and no warning (the overrides in
    // debian/lintian-overrides each say why).
    ok(Command::new("lintian")
        .args(["--fail-on", "error,warning", "--display-info"])
        .arg(&deb));

    let control = ok(Command::new("dpkg-deb").args(["--field"]).arg(&deb));
    let depends = control
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .expect("a Depends field");
    assert!(
        depends.split(',').all(|d| d.trim().starts_with("libc6")),
        "depends on more than libc: {depends}"
    );
    // dpkg-shlibdeps sees the glibc versions of imported symbols only; the
    // packed relocations' GLIBC_ABI_DT_RELR (glibc 2.36, build.rs) has none,
    // and Cargo.toml names it.
    let needs = ok(Command::new("objdump").arg("-p").arg(picomon_bin()));
    if needs.contains("GLIBC_ABI_DT_RELR") {
        assert!(
            depends.contains("libc6 (>= 2.36)"),
            "picomon needs GLIBC_ABI_DT_RELR, the package does not ask for glibc 2.36: {depends}"
        );
    }
    assert!(
        control.contains("Recommends: monitoring-plugins"),
        "{control}"
    );

    let _ = run(Command::new("dpkg").args(["--purge", "picomon"])); // a run that died
    let guard = Installed;
    ok(Command::new("dpkg").arg("-i").arg(&deb));

    // The sample, as the conffile: every check runs and none is UNKNOWN
    // (a plugin or probe the package lacks would be).
    let one = run(Command::new("/usr/bin/picomon").args(["-c", "/etc/picomon/example.rhai", "-1"]));
    let stdout = text(&one.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" critical, 0 unknown") && summary.contains(" ok, "),
        "picomon -1 on the sample: {}\n{stdout}{}",
        one.status,
        text(&one.stderr)
    );
    let help = ok(Command::new("/usr/bin/picomon-watchdog").arg("--help"));
    assert!(help.contains("--restart"), "{help}");
    let version = ok(Command::new("/usr/bin/picomon").arg("--version"));
    assert!(
        version.starts_with(&format!("picomon {} (", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );

    // The man pages, found by man's own lookup; the config page carries
    // the key table.
    let page = ok(Command::new("man").args(["-w", "picomon"]));
    assert!(
        page.trim().starts_with("/usr/share/man/man1/picomon.1"),
        "{page}"
    );
    let config_page = ok(Command::new("man")
        .args(["-P", "cat", "5", "picomon.rhai"])
        .env("MANWIDTH", "100"));
    assert!(
        config_page.contains("config.emails.smtp_host"),
        "{config_page}"
    );

    // The bash completion, as bash-completion would load it for `picomon`:
    // a flag, subcommands, and a file name after -c.
    assert_eq!(complete("picomon --che"), ["--check-config"]);
    assert_eq!(complete("picomon sil"), ["silence", "silences"]);
    assert_eq!(
        complete("picomon -c /etc/picomon/exa"),
        ["/etc/picomon/example.rhai"]
    );

    // The unit systemd would run for /etc/picomon/example.rhai is valid,
    // with the package's user and binaries.
    let user = ok(Command::new("getent").args(["passwd", "picomon"]));
    assert!(
        user.contains(":/var/lib/picomon:/usr/sbin/nologin"),
        "{user}"
    );
    // As the README says: the daemon's user reads the config as it would.
    let as_user = ok(Command::new("runuser").args([
        "-u",
        "picomon",
        "--",
        "/usr/bin/picomon",
        "-c",
        "/etc/picomon/example.rhai",
        "--check-config",
    ]));
    assert!(!as_user.is_empty());
    let unit = Path::new("/usr/lib/systemd/system/picomon@.service");
    let verify = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit.with_file_name("picomon@example.service")));
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    assert!(Path::new("/var/lib/picomon").is_dir());

    // Removed: the binaries go, the config and the state stay.
    let shipped = shipped_paths(&deb);
    assert!(
        shipped.contains(&PathBuf::from("/usr/bin/picomon")),
        "{shipped:?}"
    );
    ok(Command::new("dpkg").args(["-r", "picomon"]));
    assert!(!Path::new("/usr/bin/picomon").exists());
    assert!(Path::new("/etc/picomon/example.rhai").exists());
    assert!(
        installed_status().contains("config-files"),
        "{}",
        installed_status()
    );

    // Purged: nothing of the package is left (the picomon user stays, as
    // Debian keeps system users; see the README).
    ok(Command::new("dpkg").args(["--purge", "picomon"]));
    drop(guard);
    let left: Vec<_> = shipped
        .iter()
        .map(PathBuf::as_path)
        .chain([Path::new("/etc/picomon"), Path::new("/var/lib/picomon")])
        .chain([Path::new("/usr/share/doc/picomon")])
        .filter(|p| p.exists())
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert_eq!(installed_status(), "");
}

/// What the installed bash completion offers for `line`.
fn complete(line: &str) -> Vec<String> {
    crate::support::term::bash_complete(
        Path::new("/usr/share/bash-completion/completions/picomon"),
        line,
        None,
    )
}
