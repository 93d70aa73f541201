//! Which config file a command means when `-c` does not say: a user on a
//! packaged install types `picomon status`, not `picomon -c
//! /etc/picomon/main.rhai status`, as with Monit's or Nagios' one config.
//!
//! The order: `-c FILE`, else `$PICOMON_CONFIG`, else `./config.rhai` if it
//! exists, else the only `*.rhai` in `/etc/picomon` (`$PICOMON_ETC`
//! overrides the folder) other than the packaged `example.rhai`. Anything
//! else is an error that lists what was looked at and how to choose.

use std::path::{Path, PathBuf};

use super::Cli;

/// The environment variable naming the config file when `-c` is not given.
pub const CONFIG_ENV: &str = "PICOMON_CONFIG";
/// The environment variable overriding `/etc/picomon` (tests, other layouts).
pub const ETC_ENV: &str = "PICOMON_ETC";
/// Where the package installs configs.
pub const ETC_DIR: &str = "/etc/picomon";
/// The packaged sample: never chosen by itself.
const EXAMPLE: &str = "example.rhai";

/// What the search looks at: the flag and the environment, given
/// explicitly so the rule is tested without touching the process.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub given: Option<PathBuf>,
    pub env_config: Option<PathBuf>,
    pub cwd_config: PathBuf,
    pub etc: PathBuf,
}

impl Search {
    /// The process's flag, environment and working directory.
    pub fn from_process(given: Option<&Path>) -> Search {
        let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Search {
            given: given.map(Path::to_path_buf),
            env_config: env(CONFIG_ENV).map(PathBuf::from),
            cwd_config: PathBuf::from("config.rhai"),
            etc: env(ETC_ENV).map_or_else(|| PathBuf::from(ETC_DIR), PathBuf::from),
        }
    }

    /// The config file, or an error listing the candidates.
    pub fn find(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = self.given.as_ref().or(self.env_config.as_ref()) {
            return Ok(path.clone());
        }
        if self.cwd_config.is_file() {
            return Ok(self.cwd_config.clone());
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.etc)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
                    .filter(|p| p.file_name().is_some_and(|n| n != EXAMPLE))
                    .collect()
            })
            .unwrap_or_default();
        crate::sort::ascending(&mut found);
        if let [only] = found.as_slice() {
            return Ok(only.clone());
        }
        let etc = self.etc.display();
        let seen = if found.is_empty() {
            format!("no ./config.rhai, and no *.rhai other than {EXAMPLE} in {etc}")
        } else {
            let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
            format!(
                "no ./config.rhai, and {} configs in {etc}: {}",
                found.len(),
                names.join(", ")
            )
        };
        anyhow::bail!(
            "which config? {seen}; choose one with -c FILE or PICOMON_CONFIG=FILE \
             (or keep a single *.rhai in {etc}, or a config.rhai in the working directory)"
        )
    }
}

impl Cli {
    /// The config file this command means (see the module's doc).
    pub fn config_file(&self) -> anyhow::Result<PathBuf> {
        Search::from_process(self.config.as_deref()).find()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(dir: &Path) -> Search {
        Search {
            given: None,
            env_config: None,
            cwd_config: dir.join("cwd/config.rhai"),
            etc: dir.join("etc"),
        }
    }

    #[test]
    fn the_flag_then_the_environment_then_the_working_directory_then_etc() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cwd")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        let etc_main = dir.path().join("etc/main.rhai");
        std::fs::write(&etc_main, "").unwrap();
        std::fs::write(dir.path().join("etc/example.rhai"), "").unwrap();
        std::fs::write(dir.path().join("etc/notes.txt"), "").unwrap();
        let mut s = search(dir.path());
        assert_eq!(
            s.find().unwrap(),
            etc_main,
            "the only one besides the example"
        );
        std::fs::write(&s.cwd_config, "").unwrap();
        assert_eq!(s.find().unwrap(), s.cwd_config);
        s.env_config = Some("/from/env.rhai".into());
        assert_eq!(s.find().unwrap(), PathBuf::from("/from/env.rhai"));
        s.given = Some("/from/flag.rhai".into());
        assert_eq!(s.find().unwrap(), PathBuf::from("/from/flag.rhai"));
    }

    #[test]
    fn two_configs_or_none_is_an_error_that_names_them_and_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let s = search(dir.path());
        let none = s.find().unwrap_err().to_string();
        assert!(none.contains("no *.rhai other than example.rhai"), "{none}");
        assert!(
            none.contains("-c FILE") && none.contains("PICOMON_CONFIG"),
            "{none}"
        );
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/a.rhai"), "").unwrap();
        std::fs::write(dir.path().join("etc/b.rhai"), "").unwrap();
        let two = s.find().unwrap_err().to_string();
        assert!(two.contains("2 configs in"), "{two}");
        assert!(
            two.contains("etc/a.rhai, ") && two.contains("etc/b.rhai"),
            "{two}"
        );
    }
}
