//! `picomon __complete checks|silences`: what the shell completions offer
//! after `status`, `ack`, `run`, `silence`, `--only` (check names) and
//! `unsilence` (silence ids). Hidden from `--help`; it prints nothing
//! rather than an error, since a completion has nowhere to show one.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client;
use super::protocol::Request;
use crate::cli::{Cli, Completable};

/// How long a completion waits for the daemon before reading the state
/// dir instead: a person is waiting at the TAB key.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Prints the candidates, one a line.
pub fn print(cli: &Cli, what: Completable) {
    let lines = match what {
        Completable::Checks => checks(cli),
        Completable::Silences => silences(cli),
    };
    for line in lines {
        println!("{line}");
    }
}

/// The names of the config's checks, as `ack` and `run` take them: a name
/// that one check has, else (a name several share) each one's identity.
fn checks(cli: &Cli) -> Vec<String> {
    let Ok(file) = cli.config_file() else {
        return Vec::new();
    };
    let Ok(cfg) = crate::config::load(&file) else {
        return Vec::new();
    };
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in &cfg.checks {
        by_name.entry(&c.name).or_default().push(&c.id);
    }
    let mut out = Vec::new();
    for (name, ids) in by_name {
        match ids.as_slice() {
            [_] => out.push(name.to_string()),
            many => out.extend(many.iter().map(|id| id.to_string())),
        }
    }
    out
}

/// The silences in force: the daemon's answer, else `state_dir/quiet`
/// (a daemon that is not running still has them there for its next start).
fn silences(cli: &Cli) -> Vec<String> {
    let Ok(state_dir) = super::commands::state_dir(cli) else {
        return Vec::new();
    };
    let silences = match client::call(&state_dir, &Request::Silences, ASK_TIMEOUT) {
        Ok(answer) => answer.silences.unwrap_or_default(),
        Err(_) => crate::alert::quiet::load(&state_dir)
            .map(|q| q.silences)
            .unwrap_or_default(),
    };
    silences.into_iter().map(|s| s.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_name_is_offered_as_each_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.rhai");
        std::fs::write(
            &file,
            r#"add(plugin("check_dummy", ["0"]), #{ name: "web port" });
add(plugin("check_dummy", ["1", "one"]));
add(plugin("check_dummy", ["2", "two"]));
"#,
        )
        .unwrap();
        let cli = Cli {
            config: Some(file),
            ..Cli::default()
        };
        assert_eq!(
            checks(&cli),
            [
                "plugin:check_dummy 1 one",
                "plugin:check_dummy 2 two",
                "web port"
            ]
        );
        let none = Cli {
            config: Some(dir.path().join("missing.rhai")),
            ..Cli::default()
        };
        assert!(checks(&none).is_empty());
    }

    #[test]
    fn silences_come_from_the_state_dir_without_a_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = crate::alert::quiet::Quiet::default();
        q.silence("web*", "alice", "deploy", 0, i64::MAX);
        q.silence("db*", "bob", "", 0, i64::MAX);
        crate::alert::quiet::save(dir.path(), &q).unwrap();
        let cli = Cli {
            state_dir: Some(dir.path().to_path_buf()),
            ..Cli::default()
        };
        assert_eq!(silences(&cli), ["1", "2"]);
    }
}
