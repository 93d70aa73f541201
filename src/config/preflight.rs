//! What `--check-config` finds beyond the script: faults only this
//! machine can tell, which would otherwise stop the daemon at start or
//! fail the first run of a check. Each one points at the line that names
//! the file, plugin or address.
//!
//! - a secret file (`*_file`) that cannot be read, or `smtp_user` without
//!   a password file (the daemon refuses to start);
//! - a plugin that is not found through `plugin_dirs` and PATH (the same
//!   resolver as at run time), or is not an executable file;
//! - `config.listen` that cannot be bound now: only a warning, as the
//!   daemon this config runs may be holding it.
//!
//! The script's own mistakes (a scheme in `smtp_host`, an unknown
//! `{placeholder}` in `subject_tpl`) are refused where they are set.

use std::collections::HashMap;
use std::path::Path;

use super::{Config, ConfigError};
use crate::model::CheckKind;

/// What [`check`] found: errors (exit 1), in the order of their lines, and
/// warnings (printed, exit 0).
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

/// Looks at the files, plugins and address `cfg` names, as the daemon
/// would at start and at each check's first run.
pub fn check(cfg: &Config) -> Findings {
    let mut f = Findings::default();
    let at = |key: &str, message: String| {
        let (line, col) = cfg.key_at.get(key).copied().unwrap_or((0, 0));
        ConfigError {
            file: cfg.path.clone(),
            line,
            col,
            message,
        }
    };
    for (key, path) in cfg.secret_files_by_key() {
        if let Err(e) = crate::secret::read(&path) {
            f.errors.push(at(
                key,
                format!(
                    "{key}: cannot read {}: {e}; create it (readable by the user picomon runs \
                     as, or by root when it starts as root with --user) or fix the path",
                    path.display()
                ),
            ));
        }
    }
    let e = &cfg.emails;
    if !e.smtp_user.is_empty() && e.smtp_password_file.is_empty() {
        if let Err(message) = crate::notify::mail::smtp::read_password(e) {
            f.errors.push(at("config.emails.smtp_user", message));
        }
    }
    if !e.smtp_ca_file.is_empty() {
        if let Err(err) = std::fs::read(&e.smtp_ca_file) {
            f.errors.push(at(
                "config.emails.smtp_ca_file",
                format!(
                    "config.emails.smtp_ca_file: cannot read {}: {err}; give a readable PEM file \
                     or set it to \"\"",
                    e.smtp_ca_file
                ),
            ));
        }
    }
    // Most checks share a few plugins: each program is looked at once
    // (10,000 checks of one plugin were 20,000 system calls).
    let mut looked: HashMap<&Path, Option<String>> = HashMap::new();
    for c in &cfg.checks {
        if let CheckKind::Plugin(argv) = &c.kind {
            let program = &argv.program;
            let why = looked
                .entry(&**program)
                .or_insert_with(|| not_runnable(program, &cfg.plugin_dirs));
            if let Some(why) = why {
                f.errors.push(ConfigError {
                    file: cfg.path.clone(),
                    line: c.line as usize,
                    col: 1,
                    message: format!("check {:?}: {why}", c.title()),
                });
            }
        }
    }
    if let Some(addr) = cfg.listen.filter(|a| a.port() != 0) {
        if let Err(err) = std::net::TcpListener::bind(addr) {
            f.warnings.push(at(
                "config.listen",
                format!(
                    "warning: config.listen {addr} cannot be bound now: {err} (fine if the \
                     picomon of this config holds it; else another program has the port, or \
                     it is below 1024 for a non-root user: the daemon would not start)"
                ),
            ));
        }
    }
    crate::sort::by_key(&mut f.errors, |e| (e.line, e.col));
    f
}

/// Why the plugin `program` (as resolved at config time) would not run,
/// or `None` when it would.
fn not_runnable(program: &Path, dirs: &[std::path::PathBuf]) -> Option<String> {
    if !program.to_string_lossy().contains('/') {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Some(format!(
            "plugin {:?} is in none of config.plugin_dirs ({}) nor in PATH; install it, add \
             its folder to config.plugin_dirs, or give its full path",
            program.display(),
            if dirs.is_empty() {
                "none".into()
            } else {
                dirs.join(", ")
            }
        ));
    }
    match std::fs::metadata(program) {
        Err(e) => Some(format!(
            "plugin {}: {e}; install it or fix the path",
            program.display()
        )),
        Ok(m) if !m.is_file() => Some(format!(
            "plugin {} is not a file; give the plugin program's path",
            program.display()
        )),
        Ok(_) => nix::unistd::access(program, nix::unistd::AccessFlags::X_OK)
            .err()
            .map(|e| {
                format!(
                    "plugin {} cannot be run: {}; make it executable (chmod +x)",
                    program.display(),
                    e.desc()
                )
            }),
    }
}
