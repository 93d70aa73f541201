//! A durable, bounded, ordered on-disk queue of text lines: one output's
//! results waiting for delivery (`state_dir/spool/NAME`).
//!
//! The picture:
//!
//! ```text
//! spool/NAME/
//!   00000000000000000007.seg   oldest segment, partly delivered
//!   00000000000000000008.seg   newest segment, appended to
//!   cursor                     "7 1234": next line to deliver is at byte 1234 of segment 7
//!   lock                       flock: one writer at a time, across processes
//! ```
//!
//! Lines are appended with one `write` each (they survive a crash of the
//! process at once; [`Spool::sync`] makes them survive a crash of the
//! machine). A reader peeks a batch, delivers it, then commits the position
//! after it, so a line is removed only once delivered. When the segments
//! together pass `max_bytes`, whole oldest segments are removed and their
//! undelivered lines counted as dropped: the newest results are the ones
//! worth keeping. Segments are an eighth of the bound, so the bound is kept
//! to within one segment.
//!
//! Every operation takes the `lock` flock and re-reads the state from disk,
//! so `picomon --send` can share the daemon's spool.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::fs::{create_private_dir, lock, private_file, sync_dir, write_atomic, Flocked};

/// A place in the spool: byte `off` of segment `seg`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub seg: u64,
    pub off: u64,
}

/// Lines read from the spool and the position just after them.
#[derive(Debug, Default)]
pub struct Batch {
    pub lines: Vec<String>,
    /// The position just after each line.
    pub ends: Vec<Pos>,
    pub end: Pos,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    seg_max: u64,
    lock: File,
}

impl Spool {
    /// Opens (creating) the spool in `dir`.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        create_private_dir(dir)?;
        let lock = private_file().write(true).open(dir.join("lock"))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            seg_max: (max_bytes / 8).clamp(1, 4 << 20),
            lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn locked(&self) -> io::Result<Flocked<&File>> {
        lock(&self.lock)
    }

    fn seg_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.seg"))
    }

    /// The segments, oldest first, with their sizes.
    fn segments(&self) -> io::Result<Vec<(u64, u64)>> {
        let mut segs = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry.metadata()?.len();
            segs.push((id, len));
        }
        crate::sort::ascending(&mut segs);
        Ok(segs)
    }

    /// The delivery position, moved onto an existing segment.
    fn cursor(&self, segs: &[(u64, u64)]) -> Pos {
        let mut text = String::new();
        let stored = File::open(self.dir.join("cursor"))
            .and_then(|mut f| f.read_to_string(&mut text))
            .ok()
            .and_then(|_| {
                let mut it = text.split_whitespace().map(|w| w.parse::<u64>());
                match (it.next(), it.next()) {
                    (Some(Ok(seg)), Some(Ok(off))) => Some(Pos { seg, off }),
                    _ => None,
                }
            })
            .unwrap_or_default();
        if segs.iter().any(|&(id, _)| id == stored.seg) {
            return stored;
        }
        match segs
            .iter()
            .find(|&&(id, _)| id > stored.seg)
            .or(segs.first())
        {
            Some(&(id, _)) => Pos { seg: id, off: 0 },
            None => stored,
        }
    }

    /// Stores the delivery position; a crash leaves the old or the new one.
    fn set_cursor(&self, pos: Pos) -> io::Result<()> {
        write_atomic(
            &self.dir.join("cursor"),
            format!("{} {}\n", pos.seg, pos.off).as_bytes(),
        )
    }

    /// Appends one line (it must not contain a newline). Returns how many
    /// undelivered lines were dropped to stay within the bound.
    pub fn append(&self, line: &str) -> io::Result<u64> {
        self.append_all(&[line])
    }

    /// Appends lines (none may contain a newline) with one lock and one
    /// `write`: a tick's worth of results costs one system call, not one
    /// each. Returns how many undelivered lines were dropped to stay within
    /// the bound.
    pub fn append_all<S: AsRef<str>>(&self, lines: &[S]) -> io::Result<u64> {
        if lines.is_empty() {
            return Ok(0);
        }
        let _g = self.locked()?;
        let mut segs = self.segments()?;
        let cursor = self.cursor(&segs);
        let (id, len) = match segs.last() {
            Some(&(id, len)) if len < self.seg_max => (id, len),
            Some(&(id, _)) => (id + 1, 0),
            None => (cursor.seg + 1, 0),
        };
        let mut f = private_file()
            .append(true)
            .read(true)
            .open(self.seg_path(id))?;
        let size: usize = lines.iter().map(|l| l.as_ref().len() + 1).sum();
        let mut buf = Vec::with_capacity(size + 1);
        if len > 0 {
            // A crash in the middle of a write leaves a partial line: end
            // it, so the next line is not glued to it.
            let mut last = [0u8; 1];
            f.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                buf.push(b'\n');
            }
        }
        for line in lines {
            buf.extend_from_slice(line.as_ref().as_bytes());
            buf.push(b'\n');
        }
        f.write_all(&buf)?;
        match segs.last_mut() {
            Some(last) if last.0 == id => last.1 += buf.len() as u64,
            _ => segs.push((id, buf.len() as u64)),
        }
        self.enforce_bound(segs, cursor)
    }

    fn enforce_bound(&self, mut segs: Vec<(u64, u64)>, mut cursor: Pos) -> io::Result<u64> {
        let mut total: u64 = segs.iter().map(|s| s.1).sum();
        let mut dropped = 0;
        while total > self.max_bytes && segs.len() > 1 {
            let (id, len) = segs.remove(0);
            if cursor.seg <= id {
                let from = if cursor.seg == id { cursor.off } else { 0 };
                dropped += self.count_lines(id, from)?;
            }
            fs::remove_file(self.seg_path(id))?;
            total -= len;
            if cursor.seg <= id {
                cursor = Pos {
                    seg: segs[0].0,
                    off: 0,
                };
                self.set_cursor(cursor)?;
            }
        }
        Ok(dropped)
    }

    fn count_lines(&self, id: u64, from: u64) -> io::Result<u64> {
        let mut f = match File::open(self.seg_path(id)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(from))?;
        let mut n = 0;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let k = f.read(&mut buf)?;
            if k == 0 {
                return Ok(n);
            }
            n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }

    /// Up to `max` complete lines from the delivery position, without
    /// removing them. Empty when nothing waits.
    pub fn peek(&self, max: usize) -> io::Result<Batch> {
        let _g = self.locked()?;
        let segs = self.segments()?;
        let mut cursor = self.cursor(&segs);
        loop {
            let Some(idx) = segs.iter().position(|&(id, _)| id == cursor.seg) else {
                return Ok(Batch {
                    lines: Vec::new(),
                    ends: Vec::new(),
                    end: cursor,
                });
            };
            let mut f = BufReader::new(File::open(self.seg_path(cursor.seg))?);
            f.seek(SeekFrom::Start(cursor.off))?;
            let mut lines = Vec::new();
            let mut ends = Vec::new();
            let mut end = cursor;
            let mut raw = Vec::new();
            while lines.len() < max {
                raw.clear();
                let k = f.read_until(b'\n', &mut raw)?;
                if k == 0 || raw.last() != Some(&b'\n') {
                    break;
                }
                end.off += k as u64;
                ends.push(end);
                raw.pop();
                lines.push(String::from_utf8_lossy(&raw).into_owned());
            }
            if !lines.is_empty() || idx + 1 == segs.len() {
                return Ok(Batch { lines, ends, end });
            }
            // This segment is done and a newer one exists: move on.
            fs::remove_file(self.seg_path(cursor.seg))?;
            cursor = Pos {
                seg: segs[idx + 1].0,
                off: 0,
            };
            self.set_cursor(cursor)?;
        }
    }

    /// Marks everything before `end` as delivered.
    pub fn commit(&self, end: Pos) -> io::Result<()> {
        let _g = self.locked()?;
        let segs = self.segments()?;
        let cursor = self.cursor(&segs);
        if end <= cursor || !segs.iter().any(|&(id, _)| id == end.seg) {
            // Already past it (another process delivered it, or the bound
            // dropped that segment meanwhile).
            return Ok(());
        }
        self.set_cursor(end)?;
        if let Some(idx) = segs.iter().position(|&(id, _)| id == end.seg) {
            let (id, len) = segs[idx];
            if end.off >= len && idx + 1 < segs.len() {
                fs::remove_file(self.seg_path(id))?;
                self.set_cursor(Pos {
                    seg: segs[idx + 1].0,
                    off: 0,
                })?;
            }
        }
        Ok(())
    }

    /// How many lines wait for delivery (reads the spool: for status
    /// dumps, not for every result).
    pub fn waiting(&self) -> io::Result<u64> {
        let _g = self.locked()?;
        let segs = self.segments()?;
        let cursor = self.cursor(&segs);
        let mut n = 0;
        for &(id, _) in segs.iter().filter(|s| s.0 >= cursor.seg) {
            let from = if id == cursor.seg { cursor.off } else { 0 };
            n += self.count_lines(id, from)?;
        }
        Ok(n)
    }

    /// How many bytes wait for delivery: the segments' sizes past the
    /// delivery position (no line is read).
    pub fn bytes_waiting(&self) -> io::Result<u64> {
        let _g = self.locked()?;
        let segs = self.segments()?;
        let cursor = self.cursor(&segs);
        Ok(segs
            .iter()
            .filter(|s| s.0 >= cursor.seg)
            .map(|&(id, len)| {
                if id == cursor.seg {
                    len.saturating_sub(cursor.off)
                } else {
                    len
                }
            })
            .sum())
    }

    /// True when every line has been delivered.
    pub fn is_empty(&self) -> io::Result<bool> {
        let _g = self.locked()?;
        let segs = self.segments()?;
        let cursor = self.cursor(&segs);
        Ok(segs
            .iter()
            .filter(|s| s.0 >= cursor.seg)
            .all(|&(id, len)| id == cursor.seg && cursor.off >= len))
    }

    /// Makes appended lines survive a crash of the machine.
    pub fn sync(&self) -> io::Result<()> {
        let _g = self.locked()?;
        if let Some(&(id, _)) = self.segments()?.last() {
            File::open(self.seg_path(id))?.sync_data()?;
        }
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &Spool) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            let b = s.peek(3).expect("peek");
            if b.lines.is_empty() {
                return all;
            }
            all.extend(b.lines);
            s.commit(b.end).expect("commit");
        }
    }

    #[test]
    fn lines_come_back_in_order_once_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Spool::open(dir.path(), 1 << 20).expect("open");
        for i in 0..5 {
            assert_eq!(s.append(&format!("line {i}")).expect("append"), 0);
        }
        let more: Vec<String> = (5..10).map(|i| format!("line {i}")).collect();
        assert_eq!(s.append_all(&more).expect("append_all"), 0);
        let b = s.peek(4).expect("peek");
        assert_eq!(b.lines, ["line 0", "line 1", "line 2", "line 3"]);
        // Not committed: peeking again yields the same lines.
        assert_eq!(s.peek(4).expect("peek").lines, b.lines);
        s.commit(b.end).expect("commit");
        drop(s);
        let s = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(s.waiting().expect("waiting"), 6);
        let rest = drain(&s);
        assert_eq!(
            rest,
            (4..10).map(|i| format!("line {i}")).collect::<Vec<_>>()
        );
        assert!(s.is_empty().expect("empty"));
        assert_eq!(s.waiting().expect("waiting"), 0);
    }

    #[test]
    fn bytes_waiting_counts_what_is_past_the_delivery_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Spool::open(dir.path(), 1 << 20).expect("open");
        assert_eq!(s.bytes_waiting().expect("bytes"), 0);
        s.append_all(&["12345", "abc"]).expect("append");
        assert_eq!(s.bytes_waiting().expect("bytes"), 10);
        let b = s.peek(1).expect("peek");
        s.commit(b.end).expect("commit");
        assert_eq!(s.bytes_waiting().expect("bytes"), 4);
        drain(&s);
        assert_eq!(s.bytes_waiting().expect("bytes"), 0);
    }

    #[test]
    fn overflow_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Spool::open(dir.path(), 800).expect("open");
        let mut dropped = 0;
        for i in 0..100 {
            dropped += s.append(&format!("result number {i:03}")).expect("append");
        }
        let kept = drain(&s);
        assert!(dropped > 0, "nothing dropped");
        assert_eq!(dropped as usize + kept.len(), 100);
        // What is kept is the newest, contiguous, in order.
        let first = 100 - kept.len();
        let want: Vec<String> = (first..100)
            .map(|i| format!("result number {i:03}"))
            .collect();
        assert_eq!(kept, want);
        let on_disk: u64 = s.segments().expect("segs").iter().map(|s| s.1).sum();
        assert!(on_disk <= 800, "{on_disk} bytes kept");
    }

    #[test]
    fn partial_line_from_a_crash_is_skipped_not_glued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Spool::open(dir.path(), 1 << 20).expect("open");
        s.append("first").expect("append");
        let seg = s.segments().expect("segs")[0].0;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(s.seg_path(seg))
            .expect("open seg");
        f.write_all(b"half a li").expect("write");
        // A reader does not see the partial line yet.
        assert_eq!(s.peek(10).expect("peek").lines, ["first"]);
        s.append("second").expect("append");
        assert_eq!(drain(&s), ["first", "half a li", "second"]);
    }
}
