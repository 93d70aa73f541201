//! `picomon -1`: every check once, concurrently, a line per check as it
//! completes, a summary line, the worst status as exit code.

use crossbeam_channel::unbounded;
use threadpool::ThreadPool;

use crate::alert::{Transition, TransitionKind};
use crate::check::exec::{execute, RunEnv};
use crate::check::{Outcome, Status};
use crate::clock::now_unix_micros;
use crate::config::Config;
use crate::notify::Notice;

/// A result line: `CRITICAL  check_tcp on web1: connect to ... refused`.
pub fn result_line(status: Status, title: &str, summary: &str) -> String {
    format!("{:<10}{}: {}", status.as_str(), title, summary)
}

pub fn run(cfg: Config, notify: bool) -> anyhow::Result<i32> {
    let pool = ThreadPool::new(cfg.workers.clamp(1, cfg.checks.len().max(1)));
    let (tx, rx) = unbounded::<(usize, Outcome)>();
    for (i, spec) in cfg.checks.iter().enumerate() {
        let spec = spec.clone();
        let tx = tx.clone();
        let max_output = cfg.max_output;
        pool.execute(move || {
            let out = execute(
                &spec,
                RunEnv {
                    max_output,
                    groups: None,
                },
            );
            let _ = tx.send((i, out));
        });
    }
    drop(tx);
    let mut counts = [0usize; 4];
    let mut worst = Status::Ok;
    let mut notices = Vec::new();
    for (i, out) in rx {
        let spec = &cfg.checks[i];
        println!("{}", result_line(out.status, &spec.title(), &out.summary));
        counts[out.status.code() as usize] += 1;
        worst = Status::worst(worst, out.status);
        if out.status != Status::Ok {
            let now = now_unix_micros();
            notices.push(Notice {
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
    println!(
        "{} ok, {} warning, {} critical, {} unknown",
        counts[0], counts[1], counts[2], counts[3]
    );
    if notify && !notices.is_empty() {
        super::runner::notify_once(&cfg, notices)?;
    }
    Ok(worst.code())
}
