//! `picomon -1`: every check once, concurrently, a line per check as it
//! completes, a summary line, the worst status as exit code.
//!
//! The runs are spread over `config.workers` threads that each take the next
//! check from a shared counter and print its line themselves: the same shape
//! as the benchmark's floor, so no thread is woken per result.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::alert::{Transition, TransitionKind};
use crate::check::exec::{execute, RunEnv};
use crate::check::{CheckSpec, Outcome, Status};
use crate::clock::now_unix_micros;
use crate::config::Config;
use crate::notify::Notice;

/// A result line: `CRITICAL  check_tcp on web1: connect to ... refused`.
pub fn result_line(status: Status, title: &str, summary: &str) -> String {
    format!("{:<10}{}: {}", status.as_str(), title, summary)
}

/// What the workers add up.
#[derive(Default)]
struct Tally {
    /// Runs per status, indexed by its code.
    counts: [usize; 4],
    notices: Vec<Notice>,
}

impl Tally {
    fn add(&mut self, spec: &CheckSpec, out: Outcome) {
        self.counts[out.status.code() as usize] += 1;
        if out.status != Status::Ok {
            let now = now_unix_micros();
            self.notices.push(Notice {
                check_id: spec.id.clone(),
                name: spec.name.clone(),
                dest: spec.dest.clone(),
                transition: Transition {
                    kind: TransitionKind::Problem,
                    status: out.status,
                    previous: None,
                    outage_start: now,
                    failed_runs: 1,
                    at: now,
                },
                output: out.full_text(),
            });
        }
    }

    /// The exit code: the highest status code seen (UNKNOWN is the worst).
    fn worst_code(&self) -> i32 {
        self.counts.iter().rposition(|&n| n > 0).unwrap_or(0) as i32
    }
}

pub fn run(cfg: Config, notify: bool) -> anyhow::Result<i32> {
    let workers = cfg.workers.clamp(1, cfg.checks.len().max(1));
    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    let env = RunEnv {
        max_output: cfg.max_output,
        groups: None,
        memory: None,
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(spec) = cfg.checks.get(i) else {
                    break;
                };
                let out = execute(spec, env);
                let line = result_line(out.status, &spec.title(), &out.summary);
                // A closed stdout (`picomon -1 | head`) must not stop the runs.
                let _ = writeln!(std::io::stdout().lock(), "{line}");
                tally
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(spec, out);
            });
        }
    });
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    let [ok, warning, critical, unknown] = tally.counts;
    let worst = tally.worst_code();
    let _ = writeln!(
        std::io::stdout().lock(),
        "{ok} ok, {warning} warning, {critical} critical, {unknown} unknown"
    );
    if notify && !tally.notices.is_empty() {
        super::runner::notify_once(&cfg, tally.notices)?;
    }
    Ok(worst)
}
