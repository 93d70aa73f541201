//! The persisted state file (`state_dir/state`).
//!
//! After a restart a PROBLEM must still be a PROBLEM and its Recovery must
//! thread to the original Problem mail, so the alert state of every check
//! (phase, outage start, failed runs) is saved after every tick that changed
//! it. The format is JSON and unknown fields are ignored, so a newer picomon
//! can add fields and an older one still reads the file.
//!
//! Writes are atomic: a temporary file in the same directory, fsync, rename
//! over the old file, fsync of the directory. A crash at any point leaves
//! either the old or the new state, never half a file.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alert::flap::FlapHistory;
use crate::alert::remind::Nag;
use crate::alert::AlertState;
use crate::clock::UnixMicros;

/// The file name of the state inside `state_dir`.
pub const STATE_FILE: &str = "state";

/// What is kept of one check across restarts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedCheck {
    pub alert: AlertState,
    #[serde(default)]
    pub last_output: String,
    #[serde(default)]
    pub last_run: Option<UnixMicros>,
    /// What a probe remembers between runs (see `Probe::memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// UNREACHABLE: the identity of the check whose failure holds its
    /// Problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// Reminders and escalation of the current outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nag: Option<Nag>,
    /// Status changes of the last 21 runs and whether it flaps.
    #[serde(default, skip_serializing_if = "FlapHistory::is_empty")]
    pub flap: FlapHistory,
    /// Contacts whose Problem of the current outage waits for their
    /// hours: delivered when those open, after a restart too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
}

/// Everything the daemon keeps across restarts, keyed by check identity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    #[serde(default)]
    pub checks: BTreeMap<String, SavedCheck>,
}

/// The path of the state file in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// Saves `s` atomically as `state_dir/state`.
pub fn save(state_dir: &Path, s: &SavedState) -> io::Result<()> {
    save_checks(
        state_dir,
        s.checks.iter().map(|(id, c)| {
            (
                id.as_str(),
                SavedCheckRef {
                    alert: &c.alert,
                    last_output: std::borrow::Cow::Borrowed(&c.last_output),
                    last_run: c.last_run,
                    memory: c.memory.as_deref(),
                    held_by: c.held_by.as_deref(),
                    nag: c.nag.as_ref().map(std::borrow::Cow::Borrowed),
                    flap: c.flap,
                    waiting: &c.waiting,
                },
            )
        }),
    )
}

/// One check's state as [`SavedCheck`] writes it, borrowed from its owner:
/// the loop saves without copying any check.
#[derive(Serialize)]
pub struct SavedCheckRef<'a> {
    pub alert: &'a AlertState,
    pub last_output: std::borrow::Cow<'a, str>,
    pub last_run: Option<UnixMicros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nag: Option<std::borrow::Cow<'a, Nag>>,
    #[serde(skip_serializing_if = "FlapHistory::is_empty")]
    pub flap: FlapHistory,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub waiting: &'a [String],
}

/// Saves the checks (identity, state) atomically as `state_dir/state`,
/// serialized straight into the file: neither a copy of the checks nor the
/// whole text is ever held in memory.
pub fn save_checks<'a, I>(state_dir: &Path, checks: I) -> io::Result<()>
where
    I: Iterator<Item = (&'a str, SavedCheckRef<'a>)> + Clone,
{
    /// A map serialized from an iterator (cloned, as `serialize` borrows).
    struct Map<I>(I);
    impl<'a, I> Serialize for Map<I>
    where
        I: Iterator<Item = (&'a str, SavedCheckRef<'a>)> + Clone,
    {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.clone())
        }
    }
    #[derive(Serialize)]
    struct Out<M> {
        checks: M,
    }
    crate::fs::write_atomic_with(&path(state_dir), |w| {
        serde_json::to_writer_pretty(
            w,
            &Out {
                checks: Map(checks),
            },
        )
        .map_err(io::Error::other)
    })
}

/// Loads `state_dir/state`. A missing file is an empty state (first start);
/// a file that does not parse is an error naming the file, so the user can
/// move it away rather than have picomon silently forget open outages.
pub fn load(state_dir: &Path) -> io::Result<SavedState> {
    let file = path(state_dir);
    let bytes = match fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SavedState::default()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read state file {}: {e}", file.display()),
            ))
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "state file {} is corrupt ({e}); move it away to start with a fresh state",
                file.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Phase;
    use crate::model::Status;

    fn sample() -> SavedState {
        let mut s = SavedState::default();
        s.checks.insert(
            "ping4 web1".into(),
            SavedCheck {
                alert: AlertState {
                    phase: Phase::Problem,
                    failed_runs: 3,
                    outage_start: Some(1_700_000_000_000_000),
                    last_status: Some(Status::Critical),
                },
                last_output: "PING CRITICAL - 100% loss".into(),
                last_run: Some(1_700_000_180_000_000),
                memory: Some("192.0.2.1 198.51.100.7".into()),
                held_by: Some("router ping".into()),
                nag: Some(Nag {
                    outage_start: 1_700_000_000_000_000,
                    since: Some(1_700_000_000_000_000),
                    anchor: 1_700_000_120_000_000,
                    reminders: 2,
                    escalated: 1,
                    held: false,
                }),
                flap: FlapHistory::default(),
                waiting: vec!["db team".into()],
            },
        );
        s
    }

    #[test]
    fn save_then_load_gives_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = sample();
        save(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state")]);
    }

    #[test]
    fn save_replaces_the_previous_state() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        save(dir.path(), &SavedState::default()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), SavedState::default());
    }

    #[test]
    fn missing_file_is_an_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), SavedState::default());
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("state"), b"{\"checks\": [").unwrap();
        let err = load(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.path().join("state").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("corrupt"), "{msg}");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(sample()).unwrap();
        v["from_the_future"] = serde_json::json!({"x": 1});
        v["checks"]["ping4 web1"]["also_new"] = serde_json::json!(true);
        fs::write(dir.path().join("state"), v.to_string()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), sample());
    }

    #[test]
    fn save_into_a_missing_directory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("nope");
        let err = save(&gone, &sample()).unwrap_err();
        assert!(err.to_string().contains("nope/state"), "{err}");
    }
}
