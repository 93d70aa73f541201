//! Passes the child's stderr through and keeps its last lines for the mail.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};

pub const KEEP: usize = 50;

/// The last [`KEEP`] lines seen.
#[derive(Clone, Debug, Default)]
pub struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl Tail {
    pub fn push(&self, line: String) {
        let mut l = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() == KEEP {
            l.pop_front();
        }
        l.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        let l = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Copies `from` to our stderr line by line, keeping the tail, until EOF.
    pub fn pass_through(&self, from: impl Read + Send + 'static) -> Reader {
        let tail = self.clone();
        let (tx, done) = bounded(1);
        let handle = std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let _ = std::io::stderr().write_all(&buf);
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']);
                        tail.push(without_priority(line).to_string());
                    }
                }
            }
            let _ = tx.send(());
        });
        Reader { handle, done }
    }
}

/// A journal line without its `<N>` priority prefix (the mail quotes the
/// text; the journal got the line whole).
pub fn without_priority(line: &str) -> &str {
    match line.strip_prefix('<').and_then(|r| r.split_once('>')) {
        Some((n, rest)) if n.len() == 1 && n.as_bytes()[0].is_ascii_digit() => rest,
        _ => line,
    }
}

/// The thread copying a child's stderr.
#[derive(Debug)]
pub struct Reader {
    handle: JoinHandle<()>,
    done: Receiver<()>,
}

impl Reader {
    /// Waits until the pipe is at its end (the child and anything that
    /// inherited its stderr are gone), for at most `within`; true when it
    /// was, and every line is in the tail.
    pub fn finish(self, within: Duration) -> bool {
        if self.done.recv_timeout(within).is_err() {
            return false;
        }
        self.handle.join().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_quotes_journal_lines_without_their_priority() {
        assert_eq!(
            without_priority("<4>problem disk on web1"),
            "problem disk on web1"
        );
        assert_eq!(without_priority("[T INFO ] started"), "[T INFO ] started");
        assert_eq!(without_priority("<html>"), "<html>");
    }

    #[test]
    fn keeps_the_last_50_lines() {
        let t = Tail::default();
        for i in 0..120 {
            t.push(format!("line {i}"));
        }
        let l = t.lines();
        assert_eq!(l.len(), KEEP);
        assert_eq!(l[0], "line 70");
        assert_eq!(l[49], "line 119");
    }

    #[test]
    fn pass_through_keeps_lines_of_a_real_pipe() {
        let t = Tail::default();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "printf 'a\\nb\\nlast'"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let h = t.pass_through(child.stdout.take().unwrap());
        assert!(h.finish(Duration::from_secs(30)));
        child.wait().unwrap();
        assert_eq!(t.lines(), vec!["a", "b", "last"]);
    }
}
