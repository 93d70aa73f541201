//! The files of the log: one per UTC month, appended to and fsync'd, and
//! dropped when too old or when the folder grows past its size limit.
//!
//! Only the open file is kept (and the folder's size, counted once when a
//! file is opened): the daemon's memory does not grow with the log.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Record, DIR};
use crate::clock::{self, UnixMicros};

/// How much history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A month's file is dropped once its last day is this old.
    pub days: u32,
    /// The folder's size: past it, the oldest months go first; the current
    /// month is never dropped (its further lines are, and the log says so).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            days: 400,
            max_bytes: 64 << 20,
        }
    }
}

/// `YYYY-MM` of the UTC month of `at`.
pub fn month_of(at: UnixMicros) -> String {
    let c = clock::utc_civil(at.div_euclid(1_000_000));
    format!("{:04}-{:02}", c.year, c.month)
}

/// The month a file name stands for, `None` for anything else in the folder.
fn month_in(name: &str) -> Option<(i64, u8)> {
    let stem = name.strip_suffix(".jsonl")?;
    let (y, m) = stem.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i64, u8) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some((y, m))
}

/// The log's files, oldest first, with their sizes.
pub fn files(state_dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let dir = state_dir.join(DIR);
    let mut out = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name();
        if name.to_str().and_then(month_in).is_some() {
            out.push((e.path(), e.metadata()?.len()));
        }
    }
    crate::sort::ascending(&mut out);
    Ok(out)
}

/// Every readable line of the files for `from_month` (`YYYY-MM`) and
/// later (all with `None`), oldest first, handed to `each`. A line that
/// does not parse (a torn last line) is skipped.
pub fn read(
    state_dir: &Path,
    from_month: Option<&str>,
    mut each: impl FnMut(Record),
) -> io::Result<()> {
    for (path, _) in files(state_dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if from_month.is_some_and(|m| name < m) {
            continue;
        }
        let f = crate::fs::no_follow()
            .read(true)
            .open(&path)
            .map_err(|e| crate::fs::explain_link(&path, e))?;
        for line in io::BufRead::split(io::BufReader::new(f), b'\n') {
            let line = line?;
            if let Ok(r) = serde_json::from_slice::<Record>(&line) {
                each(r);
            }
        }
    }
    Ok(())
}

/// The appending side, kept by the loop.
#[derive(Debug)]
pub struct Journal {
    state_dir: PathBuf,
    limits: Limits,
    /// The open month and its file.
    open: Option<(String, File)>,
    /// The folder's size as of the open plus what was written since.
    bytes: u64,
    unsynced: bool,
    /// Said once that the current month filled the size limit.
    full_said: bool,
}

impl Journal {
    pub fn new(state_dir: &Path, limits: Limits) -> Journal {
        Journal {
            state_dir: state_dir.to_path_buf(),
            limits,
            open: None,
            bytes: 0,
            unsynced: false,
            full_said: false,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Opens the file of `at`'s month unless it is the open one; true when
    /// the file is new (the caller writes its `seen` lines first). Drops
    /// what is too old on the way.
    pub fn open_for(&mut self, at: UnixMicros) -> io::Result<bool> {
        let month = month_of(at);
        if self.open.as_ref().is_some_and(|(m, _)| *m == month) {
            return Ok(false);
        }
        self.sync();
        self.open = None;
        let dir = self.state_dir.join(DIR);
        crate::fs::create_private_dir(&dir)?;
        let path = dir.join(format!("{month}.jsonl"));
        let mut f = crate::fs::private_file()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| crate::fs::explain_link(&path, e))?;
        let len = f.metadata()?.len();
        if len > 0 {
            // A process killed in the middle of a line left it torn: the
            // next line starts on a line of its own.
            let mut last = [0u8];
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                f.write_all(b"\n")?;
            }
        } else {
            crate::fs::sync_dir(&dir)?;
        }
        self.open = Some((month.clone(), f));
        self.prune(at)?;
        Ok(len == 0)
    }

    /// Drops the months whose last day is older than `limits.days`, then
    /// the oldest ones while the folder is over `limits.max_bytes`; counts
    /// the folder's size.
    fn prune(&mut self, now: UnixMicros) -> io::Result<()> {
        let current = self.open.as_ref().map(|(m, _)| format!("{m}.jsonl"));
        let today = now.div_euclid(86_400_000_000);
        let mut files = files(&self.state_dir)?;
        let mut total: u64 = files.iter().map(|(_, n)| n).sum();
        let mut dropped = false;
        files.retain(|(path, size)| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if Some(name) == current.as_deref() {
                return true;
            }
            let Some((y, m)) = month_in(name) else {
                return true;
            };
            let last_day = clock::days_from_civil(y, m, clock::days_in_month(y, m));
            let too_old = today - last_day > i64::from(self.limits.days);
            if too_old || total > self.limits.max_bytes {
                match fs::remove_file(path) {
                    Ok(()) => {
                        log::info!(
                            "history: {} dropped ({})",
                            path.display(),
                            if too_old {
                                "older than config.history_days"
                            } else {
                                "the history is over config.history_max_mb"
                            }
                        );
                        total -= size;
                        dropped = true;
                        return false;
                    }
                    Err(e) => log::warn!("history: cannot drop {}: {e}", path.display()),
                }
            }
            true
        });
        if dropped {
            crate::fs::sync_dir(&self.state_dir.join(DIR))?;
        }
        self.bytes = total;
        Ok(())
    }

    /// Appends `r` to the open file (see [`Journal::open_for`]). Past the
    /// size limit with only the current month left, the line is not
    /// written (said once).
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        let Some((_, f)) = &mut self.open else {
            return Err(io::Error::other("history: no file open"));
        };
        let mut line = serde_json::to_vec(r).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.bytes + line.len() as u64 > self.limits.max_bytes {
            if !self.full_said {
                self.full_said = true;
                log::error!(
                    "history: the current month alone fills config.history_max_mb ({} bytes); \
                     its further lines are not kept (raise the limit)",
                    self.limits.max_bytes
                );
            }
            return Ok(());
        }
        // One write of the whole line: O_APPEND puts it after whatever is
        // there, and a crash leaves at most this line torn.
        f.write_all(&line)?;
        self.bytes += line.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// fsync of what was appended since the last call, then the file is
    /// closed: between two batches of lines picomon holds nothing open for
    /// writing in the state dir, so the disk can be remounted read-only
    /// (and a file opened again sees what it holds).
    pub fn sync(&mut self) {
        let unsynced = std::mem::take(&mut self.unsynced);
        if let Some((m, f)) = self.open.take() {
            if unsynced {
                if let Err(e) = f.sync_data() {
                    log::error!("history: cannot sync {m}.jsonl: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Kind;

    const DAY: i64 = 86_400_000_000;
    /// 2026-03-15 12:00 UTC.
    const MARCH: i64 = 1_773_576_000_000_000;

    fn rec(at: UnixMicros, kind: Kind) -> Record {
        Record::new(at, kind, "web").with_text("CRITICAL - down\nmore")
    }

    fn all(dir: &Path) -> Vec<Record> {
        let mut out = Vec::new();
        read(dir, None, |r| out.push(r)).unwrap();
        out
    }

    #[test]
    fn lines_are_appended_to_a_private_file_per_month() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::new(tmp.path(), Limits::default());
        assert!(j.open_for(MARCH).unwrap(), "a new file");
        j.write(&rec(MARCH, Kind::Problem)).unwrap();
        assert!(!j.open_for(MARCH + DAY).unwrap());
        j.write(&rec(MARCH + DAY, Kind::Recovery)).unwrap();
        assert!(j.open_for(MARCH + 30 * DAY).unwrap(), "April");
        j.write(&rec(MARCH + 30 * DAY, Kind::Problem)).unwrap();
        j.sync();
        let names: Vec<_> = files(tmp.path())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["2026-03.jsonl", "2026-04.jsonl"]);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join(DIR)), 0o700);
        assert_eq!(mode(&tmp.path().join(DIR).join("2026-03.jsonl")), 0o600);
        let kinds: Vec<_> = all(tmp.path()).iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Problem, Kind::Recovery, Kind::Problem]);
        assert_eq!(all(tmp.path())[0].text, "CRITICAL - down");
        let mut april = Vec::new();
        read(tmp.path(), Some("2026-04"), |r| april.push(r)).unwrap();
        assert_eq!(april.len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_starts_on_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::new(tmp.path(), Limits::default());
        j.open_for(MARCH).unwrap();
        j.write(&rec(MARCH, Kind::Problem)).unwrap();
        drop(j);
        let file = tmp.path().join(DIR).join("2026-03.jsonl");
        let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(br#"{"at":17735760000,"kind":"recov"#).unwrap();
        assert_eq!(all(tmp.path()).len(), 1, "the torn line is skipped");
        let mut j = Journal::new(tmp.path(), Limits::default());
        assert!(!j.open_for(MARCH + DAY).unwrap());
        j.write(&rec(MARCH + DAY, Kind::Recovery)).unwrap();
        let kinds: Vec<_> = all(tmp.path()).iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Problem, Kind::Recovery]);
    }

    #[test]
    fn old_months_go_by_age_and_the_oldest_first_by_size() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR);
        fs::create_dir(&dir).unwrap();
        for m in ["2024-12", "2025-03", "2026-01", "2026-02"] {
            fs::write(dir.join(format!("{m}.jsonl")), vec![b'\n'; 1000]).unwrap();
        }
        fs::write(dir.join("notes.txt"), "kept").unwrap();
        let limits = Limits {
            days: 400,
            max_bytes: 2500,
        };
        let mut j = Journal::new(tmp.path(), limits);
        j.open_for(MARCH).unwrap();
        let names: Vec<_> = files(tmp.path())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // 2024-12 is over 400 days old; then 2025-03 goes for the size.
        assert_eq!(names, ["2026-01.jsonl", "2026-02.jsonl", "2026-03.jsonl"]);
        assert!(dir.join("notes.txt").exists());
        // The current month alone over the limit: lines are not written.
        j.write(&rec(MARCH, Kind::Problem)).unwrap();
        let mut j = Journal::new(
            tmp.path(),
            Limits {
                days: 400,
                max_bytes: 10,
            },
        );
        j.open_for(MARCH).unwrap();
        j.write(&rec(MARCH, Kind::Recovery)).unwrap();
        let kinds: Vec<_> = all(tmp.path()).iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Problem], "{kinds:?}");
    }
}
