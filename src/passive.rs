//! Passive outputs: every result goes to every configured output (a JSON
//! lines file, NSCA-web, the Nagios/Icinga command file, the Icinga 2 API,
//! Redis, Elasticsearch's `_bulk`), and an output that is down never holds
//! up the checks.
//!
//! The picture:
//!
//! ```text
//! daemon loop --submit--> spool/NAME (append, bounded) --wake--> sender thread
//!                                                               |  peek batch
//!                                                               |  deliver (Sink)
//!                                                               |  commit (remove delivered)
//!                                                               v  or back off 1 s .. 60 s
//! ```
//!
//! [`Outputs::submit`] only appends to each output's spool and wakes its
//! sender; one thread per output replays its spool in order and removes
//! only what was delivered. `picomon --send` ([`ingest::send_stdin`]) and
//! `config.result_dir` ([`ingest::pick_up_result_dir`]) feed the same path.

mod command_file;
mod elasticsearch;
mod icinga2;
mod ingest;
mod json_lines;
mod nsca_web;
mod redis;
pub mod result;
mod sink;
mod spec;
pub mod spool;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::clock::{local_datetime, now_unix_micros, UnixMicros};
use crate::model::Status;

pub use crate::net::http::ClientTls;
pub use ingest::{pick_up_result_dir, send_stdin, SEND_FLUSH};
pub use redis::{RedisDest, RedisUrl};
pub use result::PassiveResult;
pub use spec::{OutputKind, OutputSpec, DEFAULT_SPOOL_MAX_BYTES};
// What the config checks an output's options against.
pub use command_file::ATOMIC_LINE;
pub use elasticsearch::index_problem as elasticsearch_index_problem;

use sink::Sink;
use spool::Spool;

/// How a result is kept in a spool: compact JSON, one line.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    t: i64,
    h: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    c: i32,
    o: String,
    p: String,
    d: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    j: Option<Box<serde_json::Value>>,
}

fn encode(r: &PassiveResult) -> String {
    serde_json::to_string(&Record {
        t: r.time,
        h: r.host.clone(),
        s: r.service.clone(),
        c: r.status.code(),
        o: r.output.clone(),
        p: r.perfdata.clone(),
        d: r.duration.as_micros() as u64,
        j: r.data.clone(),
    })
    .unwrap_or_default()
}

fn decode(line: &str) -> Option<PassiveResult> {
    let rec: Record = serde_json::from_str(line).ok()?;
    Some(PassiveResult {
        time: rec.t,
        host: rec.h,
        service: rec.s,
        status: Status::from_code(rec.c)?,
        output: rec.o,
        perfdata: rec.p,
        duration: Duration::from_micros(rec.d),
        data: rec.j,
    })
}

/// What the sender and the dump share about one output.
#[derive(Debug, Default)]
struct State {
    /// New results were appended.
    wake: bool,
    /// Retry now, even while backing off (flush).
    kick: bool,
    stop: bool,
    dropped: u64,
    refused: u64,
    delivered: u64,
    last_delivery: Option<UnixMicros>,
    /// The current failure, with when it was first seen.
    failing: Option<(String, UnixMicros)>,
    /// The last failure, kept after recovery for the dump.
    last_error: Option<(String, UnixMicros)>,
}

struct Output {
    name: String,
    label: String,
    spool: Spool,
    state: Mutex<State>,
    cv: Condvar,
}

impl Output {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking sender must not take the daemon with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running outputs: one spool and one sender thread each.
pub struct Outputs {
    outputs: Vec<Arc<Output>>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.outputs.iter().map(|o| o.name.as_str()).collect();
        f.debug_struct("Outputs").field("outputs", &names).finish()
    }
}

/// Builds the sink of one output (reads its password file now, so a wrong
/// path fails at start, not at the first result).
fn make_sink(kind: &OutputKind) -> Result<Box<dyn Sink>, String> {
    Ok(match kind {
        OutputKind::JsonLines { path } => Box::new(json_lines::JsonLines { path: path.clone() }),
        OutputKind::NscaWeb {
            url,
            user,
            password_file,
            lines_per_post,
            max_line_size,
            timeout,
            ca,
            client,
        } => Box::new(nsca_web::NscaWeb::new(
            url,
            user,
            crate::net::http::read_secret(password_file)?,
            *lines_per_post,
            *max_line_size,
            crate::net::http::client_agent(*timeout, ca.as_deref(), client.as_ref())?,
        )),
        OutputKind::CommandFile {
            path,
            max_line_size,
        } => Box::new(command_file::CommandFile {
            path: path.clone(),
            max_line_size: *max_line_size,
            timeout: Duration::from_secs(10),
        }),
        OutputKind::Icinga2Api {
            url,
            user,
            password_file,
            ca,
            timeout,
            client,
        } => {
            // With a client certificate and no user, Icinga 2 finds the
            // ApiUser by the certificate's CN (`client_cn`).
            let auth = match user.is_empty() {
                true => None,
                false => Some(crate::net::http::basic_auth(
                    user,
                    &crate::net::http::read_secret(password_file)?,
                )),
            };
            Box::new(icinga2::Icinga2Api::new(
                url,
                auth,
                crate::net::http::client_agent(*timeout, ca.as_deref(), client.as_ref())?,
            ))
        }
        OutputKind::Redis {
            parsed,
            dest,
            secret_file,
            ca,
            timeout,
            batch,
            ..
        } => {
            let auth = match secret_file {
                Some(f) => Some(
                    redis::auth_from_secret(&crate::net::http::read_secret(f)?)
                        .ok_or_else(|| format!("secret_file {} is empty", f.display()))?,
                ),
                None => None,
            };
            Box::new(redis::Redis::new(
                parsed.clone(),
                auth,
                dest.clone(),
                ca.as_deref(),
                *timeout,
                *batch,
            )?)
        }
        OutputKind::Elasticsearch {
            url,
            index,
            headers,
            secret_file,
            ca,
            client,
            timeout,
            batch,
        } => {
            let auth = match secret_file {
                Some(f) => Some(
                    elasticsearch::authorization(&crate::net::http::read_secret(f)?)
                        .ok_or_else(|| format!("secret_file {} is empty", f.display()))?,
                ),
                None => None,
            };
            Box::new(elasticsearch::Elasticsearch::new(
                url,
                index,
                headers.clone(),
                auth,
                *batch,
                crate::net::http::client_agent(*timeout, ca.as_deref(), client.as_ref())?,
            ))
        }
    })
}

impl Outputs {
    /// Opens each output's spool under `state_dir/spool/` and starts its
    /// sender, which delivers at once whatever an earlier run left waiting.
    pub fn start(specs: &[OutputSpec], state_dir: &Path) -> anyhow::Result<Outputs> {
        let spool_root = state_dir.join("spool");
        let mut outputs = Vec::new();
        let mut sinks = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let name = spec.spool_name(i);
            let label = format!("{} {}", spec.kind.label(), spec.kind.target());
            if outputs.iter().any(|o: &Arc<Output>| o.name == name) {
                anyhow::bail!(
                    "two outputs use the spool name `{name}`: give one of them another #{{ name: \"...\" }}"
                );
            }
            let sink = make_sink(&spec.kind)
                .map_err(|e| anyhow::anyhow!("output {name} ({label}): {e}"))?;
            let dir = spool_root.join(&name);
            let spool = Spool::open(&dir, spec.spool_max_bytes).with_context(|| {
                format!(
                    "cannot open the spool {} of output {name} (the state directory must be writable by picomon)",
                    dir.display()
                )
            })?;
            outputs.push(Arc::new(Output {
                name,
                label,
                spool,
                state: Mutex::new(State {
                    wake: true,
                    ..State::default()
                }),
                cv: Condvar::new(),
            }));
            sinks.push(sink);
        }
        warn_orphan_spools(&spool_root, &outputs);
        for (out, sink) in outputs.iter().zip(sinks) {
            let out = Arc::clone(out);
            std::thread::Builder::new()
                .name(format!("output {}", out.name))
                .spawn(move || sender(out, sink))
                .context("cannot start an output thread")?;
        }
        Ok(Outputs { outputs })
    }

    /// Queues `r` for every output. Never blocks on an output: a failure to
    /// spool is logged and counted as dropped.
    pub fn submit(&self, r: &PassiveResult) {
        self.submit_all(std::slice::from_ref(r));
    }

    /// Queues several results (a tick's worth) with one spool write per
    /// output.
    pub fn submit_all(&self, results: &[PassiveResult]) {
        let _ = self.try_submit_all(results);
    }

    /// Like [`Outputs::submit`], returning the errors of outputs whose spool
    /// could not take the result (`--send` must not claim success then).
    pub fn try_submit(&self, r: &PassiveResult) -> Vec<String> {
        self.try_submit_all(std::slice::from_ref(r))
    }

    /// [`Outputs::try_submit`] for several results.
    pub fn try_submit_all(&self, results: &[PassiveResult]) -> Vec<String> {
        if results.is_empty() {
            return Vec::new();
        }
        let lines: Vec<String> = results.iter().map(encode).collect();
        let mut errors = Vec::new();
        for out in &self.outputs {
            match out.spool.append_all(&lines) {
                Ok(dropped) => {
                    let mut st = out.state();
                    if dropped > 0 {
                        st.dropped += dropped;
                        log::error!(
                            "output {}: spool {} is full: dropped the {dropped} oldest results ({} dropped since start); raise spool_max_bytes or fix the output",
                            out.name,
                            out.spool.dir().display(),
                            st.dropped
                        );
                    }
                    st.wake = true;
                    out.cv.notify_all();
                }
                Err(e) => {
                    let msg = format!(
                        "output {}: cannot write spool {}: {e} (check free space and permissions of the state directory)",
                        out.name,
                        out.spool.dir().display()
                    );
                    log::error!("{msg}");
                    out.state().dropped += lines.len() as u64;
                    errors.push(msg);
                }
            }
        }
        errors
    }

    /// Makes everything spooled so far survive a crash of the machine.
    pub fn sync(&self) -> anyhow::Result<()> {
        for out in &self.outputs {
            out.spool
                .sync()
                .with_context(|| format!("cannot sync spool {}", out.spool.dir().display()))?;
        }
        Ok(())
    }

    /// Lines for the SIGUSR1 dump: per output, how many results wait, how
    /// many were dropped, the last error.
    pub fn status_lines(&self) -> Vec<String> {
        self.outputs
            .iter()
            .map(|out| {
                let waiting = out
                    .spool
                    .waiting()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|e| format!("? ({e})"));
                let st = out.state();
                let mut line = format!(
                    "output {} ({}): {waiting} waiting, {} delivered, {} dropped",
                    out.name, out.label, st.delivered, st.dropped
                );
                if st.refused > 0 {
                    line.push_str(&format!(", {} refused by the server", st.refused));
                }
                if let Some(at) = st.last_delivery {
                    line.push_str(&format!(", last delivery {}", local_datetime(at)));
                }
                match (&st.failing, &st.last_error) {
                    (Some((e, since)), _) => {
                        line.push_str(&format!("; FAILING since {}: {e}", local_datetime(*since)))
                    }
                    (None, Some((e, at))) => {
                        line.push_str(&format!("; last error {}: {e}", local_datetime(*at)))
                    }
                    (None, None) => {}
                }
                line
            })
            .collect()
    }

    /// Waits until every spool is empty or `deadline` has passed; asks the
    /// senders to retry at once (and again every second) meanwhile. True
    /// when everything was delivered.
    pub fn flush(&self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        let mut next_kick = Instant::now();
        loop {
            let mut all_empty = true;
            let now = Instant::now();
            for out in &self.outputs {
                if out.spool.is_empty().unwrap_or(false) {
                    continue;
                }
                all_empty = false;
                if now >= next_kick {
                    out.state().kick = true;
                    out.cv.notify_all();
                }
            }
            if all_empty {
                return true;
            }
            if now >= next_kick {
                next_kick = now + Duration::from_secs(1);
            }
            if now >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25).min(end - now));
        }
    }

    /// The bytes waiting in each output's spool, by name (`/metrics`; an
    /// unreadable spool counts as empty, its error is in the dump).
    pub fn spool_bytes(&self) -> Vec<(String, u64)> {
        self.outputs
            .iter()
            .map(|o| (o.name.clone(), o.spool.bytes_waiting().unwrap_or(0)))
            .collect()
    }

    /// The spool folder of each output, by name.
    pub fn spool_dirs(&self) -> Vec<(String, PathBuf)> {
        self.outputs
            .iter()
            .map(|o| (o.name.clone(), o.spool.dir().to_path_buf()))
            .collect()
    }
}

impl Drop for Outputs {
    /// Stops the senders after their current batch; what is left stays in
    /// the spools for the next start.
    fn drop(&mut self) {
        for out in &self.outputs {
            out.state().stop = true;
            out.cv.notify_all();
        }
    }
}

/// Spool folders with results that no configured output will deliver (an
/// output was removed or renamed): say so once at start.
fn warn_orphan_spools(root: &Path, outputs: &[Arc<Output>]) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if outputs.iter().any(|o| o.name == name) {
            continue;
        }
        if let Ok(spool) = Spool::open(&entry.path(), u64::MAX) {
            if let Ok(n @ 1..) = spool.waiting() {
                log::warn!(
                    "spool {} holds {n} results for an output no longer configured: name an output `{name}` to deliver them, or remove the folder",
                    entry.path().display()
                );
            }
        }
    }
}

/// Backoff between failed attempts: 1 s doubling to 60 s.
fn next_backoff(prev: Option<Duration>) -> Duration {
    prev.map(|d| (d * 2).min(Duration::from_secs(60)))
        .unwrap_or(Duration::from_secs(1))
}

/// The sender thread of one output.
fn sender(out: Arc<Output>, mut sink: Box<dyn Sink>) {
    let lock_path = out.spool.dir().join("sender.lock");
    let sender_lock = match crate::fs::private_file().write(true).open(&lock_path) {
        Ok(f) => f,
        Err(e) => {
            log::error!(
                "output {}: cannot open {}: {e}; this output stays off",
                out.name,
                lock_path.display()
            );
            return;
        }
    };
    let mut backoff: Option<Duration> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        {
            let mut st = out.state();
            loop {
                if st.stop {
                    return;
                }
                if st.kick {
                    st.kick = false;
                    st.wake = false;
                    break;
                }
                match retry_at {
                    // Backing off: new results wait for the retry time.
                    Some(at) => {
                        let now = Instant::now();
                        if now >= at {
                            st.wake = false;
                            break;
                        }
                        st = out
                            .cv
                            .wait_timeout(st, at - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    None => {
                        if st.wake {
                            st.wake = false;
                            break;
                        }
                        st = out.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        }
        match deliver_all(&out, sink.as_mut(), &sender_lock) {
            Ok(()) => {
                backoff = None;
                retry_at = None;
            }
            Err(Busy) => {
                // Another process (`--send`) is delivering: look again soon.
                retry_at = Some(Instant::now() + Duration::from_millis(200));
            }
            Err(Failed) => {
                let d = next_backoff(backoff);
                backoff = Some(d);
                retry_at = Some(Instant::now() + d);
            }
        }
    }
}

enum Stopped {
    Busy,
    Failed,
}
use Stopped::{Busy, Failed};

/// Delivers batches until the spool is empty, the sink fails, or a stop
/// is asked for.
fn deliver_all(out: &Output, sink: &mut dyn Sink, lock: &File) -> Result<(), Stopped> {
    // The delivery lock, shared with `--send`: one sender per spool.
    let _held = match crate::fs::try_lock(lock) {
        Ok(Some(held)) => held,
        Ok(None) => return Err(Busy),
        Err(e) => {
            record_failure(out, format!("cannot lock the spool: {e}"));
            return Err(Failed);
        }
    };
    if let Err(e) = out.spool.sync() {
        log::warn!("output {}: cannot sync spool: {e}", out.name);
    }
    loop {
        if out.state().stop {
            return Ok(());
        }
        let batch = match out.spool.peek(sink.batch_size()) {
            Ok(b) => b,
            Err(e) => {
                record_failure(
                    out,
                    format!("cannot read spool {}: {e}", out.spool.dir().display()),
                );
                return Err(Failed);
            }
        };
        if batch.lines.is_empty() {
            return Ok(());
        }
        let mut results = Vec::with_capacity(batch.lines.len());
        let mut line_of = Vec::with_capacity(batch.lines.len());
        for (i, line) in batch.lines.iter().enumerate() {
            match decode(line) {
                Some(r) => {
                    results.push(r);
                    line_of.push(i);
                }
                None => {
                    log::warn!(
                        "output {}: skipping an unreadable spool entry: {}",
                        out.name,
                        line.chars().take(200).collect::<String>()
                    );
                    out.state().dropped += 1;
                }
            }
        }
        let outcome = if results.is_empty() {
            Ok(0)
        } else {
            sink.deliver(&results)
        };
        match outcome {
            // Counted before the commit, so whoever sees the spool empty
            // (`flush`) also sees the counts.
            Ok(refused) => {
                {
                    let mut st = out.state();
                    st.delivered += (results.len() - refused) as u64;
                    st.refused += refused as u64;
                    st.last_delivery = Some(now_unix_micros());
                    if let Some((_, since)) = st.failing.take() {
                        log::info!(
                            "output {}: delivering again (failing since {})",
                            out.name,
                            local_datetime(since)
                        );
                    }
                }
                commit(out, batch.end);
            }
            Err(e) => {
                if e.delivered > 0 {
                    {
                        let mut st = out.state();
                        let refused = e.refused.min(e.delivered);
                        st.delivered += (e.delivered - refused) as u64;
                        st.refused += refused as u64;
                        st.last_delivery = Some(now_unix_micros());
                    }
                    let i = line_of[e.delivered.min(results.len()) - 1];
                    commit(out, batch.ends[i]);
                }
                record_failure(out, e.message);
                return Err(Failed);
            }
        }
    }
}

fn commit(out: &Output, end: spool::Pos) {
    if let Err(e) = out.spool.commit(end) {
        // The results were delivered; they will be delivered again.
        log::warn!(
            "output {}: cannot update spool {}: {e}",
            out.name,
            out.spool.dir().display()
        );
    }
}

/// Logs a failure once when it starts (and when its text changes), not at
/// every retry.
fn record_failure(out: &Output, message: String) {
    let now = now_unix_micros();
    let mut st = out.state();
    let changed = st
        .failing
        .as_ref()
        .map(|(m, _)| m != &message)
        .unwrap_or(true);
    if changed {
        // ERROR, as every failed delivery: the monitoring it feeds is behind.
        log::error!(
            "output {} ({}): {message}; results wait in {} and are retried",
            out.name,
            out.label,
            out.spool.dir().display()
        );
    }
    let since = st.failing.as_ref().map(|f| f.1).unwrap_or(now);
    st.failing = Some((message.clone(), since));
    st.last_error = Some((message, now));
}
