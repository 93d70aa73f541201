//! Every plugin child of this process from spawn to reap, and the
//! [`Reaper`] that finds, reaps and kills what escaped a run.
//!
//! picomon is a child subreaper (`PR_SET_CHILD_SUBREAPER`, set by
//! [`Reaper::start`]): a plugin's descendant whose parent dies — one that
//! left the run's process group with `setsid()` too — becomes picomon's
//! child instead of init's. Such an orphan must be reaped when it exits and
//! killed when the runs that may have started it are over, without ever
//! taking the exit status a run is waiting for:
//!
//! ```text
//! spawn (a run)   gate.read -> posix_spawn -> pids += child -> gate released
//! reap  (a run)   waitpid(child) -> pids -= child -> wake the reaper
//! sweep (reaper)  our children from /proc, without the gate; when some are
//!                 not in `pids`: gate.write (no spawn in flight), look again:
//!                   in `pids`      a run's own child: left alone
//!                   zombie         reaped by its pid (never waitpid(-1))
//!                   alive          killed once every run that was in
//!                                  progress when it started has ended
//! ```
//!
//! The gate closes the one window where a run's child exists but is not
//! listed yet, so the reaper never mistakes it for an orphan.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::process::{Child, Command};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{getpgrp, getpid, Pid};

/// The plugin children of this process.
struct Children {
    /// Held shared by a spawn until its child is listed, exclusively by a
    /// sweep that decides what is an orphan. `true`: closed at exit, no
    /// more spawns.
    gate: RwLock<bool>,
    /// Child pid -> how many runs list it (a pid reaped by one run may be
    /// reused by the next run's child before the first run unlists it).
    pids: Mutex<BTreeMap<i32, u32>>,
    /// Set when a run reaped its child (its leftovers may be orphans now),
    /// or to stop the reaper.
    wake: Mutex<Wake>,
    woken: Condvar,
}

#[derive(Default)]
struct Wake {
    run_ended: bool,
    stop: bool,
}

static CHILDREN: Children = Children {
    gate: RwLock::new(false),
    pids: Mutex::new(BTreeMap::new()),
    wake: Mutex::new(Wake {
        run_ended: false,
        stop: false,
    }),
    woken: Condvar::new(),
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `command` and lists its child; `Ok(None)` once picomon is
/// stopping (nothing was started).
pub(super) fn spawn(command: &mut Command) -> io::Result<Option<Child>> {
    let gate = CHILDREN.gate.read().unwrap_or_else(|e| e.into_inner());
    if *gate {
        return Ok(None);
    }
    let child = command.spawn()?;
    *lock(&CHILDREN.pids).entry(child.id() as i32).or_insert(0) += 1;
    drop(gate);
    Ok(Some(child))
}

/// A run reaped its child `pid`: unlist it and let the reaper look for
/// what the run left behind.
pub(super) fn reaped(pid: i32) {
    {
        let mut pids = lock(&CHILDREN.pids);
        if let Some(n) = pids.get_mut(&pid) {
            *n -= 1;
            if *n == 0 {
                pids.remove(&pid);
            }
        }
    }
    let mut w = lock(&CHILDREN.wake);
    w.run_ended = true;
    CHILDREN.woken.notify_all();
}

/// After a run ends, the reaper waits this long so the processes its group
/// kill reached are gone (and their children reparented) before it looks.
const SETTLE: Duration = Duration::from_millis(50);
/// At most one look per this: without `/proc/*/task/*/children` a look
/// reads every process's stat, and a busy tick ends many runs.
const GAP: Duration = Duration::from_secs(1);
/// With nothing to do, it still looks this often: a process can be
/// reparented to picomon without any run ending (an escaped process whose
/// own parent exits later).
const IDLE: Duration = Duration::from_secs(10);

/// The thread that reaps and kills orphans; see the module picture.
#[derive(Debug)]
pub struct Reaper {
    handle: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Makes this process a child subreaper and starts the reaper thread.
    /// Where the kernel refuses the first (it never should on Linux >= 3.4),
    /// picomon warns and goes on: escaped processes then go to init.
    pub fn start() -> io::Result<Reaper> {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            log::warn!(
                "cannot become a child subreaper ({}): processes that escape a plugin's group are not killed",
                io::Error::last_os_error()
            );
        }
        lock(&CHILDREN.wake).stop = false;
        let handle = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(reap_until_stopped)?;
        Ok(Reaper {
            handle: Some(handle),
        })
    }

    /// At exit: no run starts from now on; every plugin group still running
    /// and every orphan is killed (SIGKILL) and the orphans reaped, for at
    /// most `within`. Returns how many processes were still alive then.
    pub fn finish(mut self, within: Duration) -> usize {
        self.stop_thread();
        *CHILDREN.gate.write().unwrap_or_else(|e| e.into_inner()) = true;
        let end = Instant::now() + within;
        loop {
            let alive = sweep(true);
            if alive == 0 || Instant::now() >= end {
                if alive > 0 {
                    log::warn!("{alive} process(es) of plugin runs did not die in time");
                }
                return alive;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_thread(&mut self) {
        if let Some(h) = self.handle.take() {
            {
                let mut w = lock(&CHILDREN.wake);
                w.stop = true;
                CHILDREN.woken.notify_all();
            }
            let _ = h.join();
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn reap_until_stopped() {
    let mut busy = false;
    loop {
        // Orphans still alive are looked at again after GAP; else a run's
        // end (or IDLE) starts the next look.
        if !wait_for(if busy { GAP } else { IDLE }, |w| w.run_ended) {
            return;
        }
        lock(&CHILDREN.wake).run_ended = false;
        if !wait_for(SETTLE, |_| false) {
            return;
        }
        busy = sweep(false) > 0;
        if !wait_for(GAP, |_| false) {
            return;
        }
    }
}

/// Waits up to `d` for `until` (or the stop); false when told to stop.
fn wait_for(d: Duration, until: impl Fn(&Wake) -> bool) -> bool {
    let end = Instant::now() + d;
    let mut w = lock(&CHILDREN.wake);
    while !w.stop && !until(&w) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        w = match CHILDREN.woken.wait_timeout(w, left) {
            Ok((w, _)) => w,
            Err(e) => e.into_inner().0,
        };
    }
    !w.stop
}

/// What /proc says about a process.
#[derive(Clone, Debug)]
struct ProcInfo {
    pid: i32,
    ppid: i32,
    state: char,
    pgid: i32,
    /// Clock ticks after boot.
    start: u64,
    comm: String,
}

impl ProcInfo {
    fn read(pid: i32) -> Option<ProcInfo> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let f: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        // Fields after the name: state ppid pgrp session ... starttime is
        // the 22nd field of the line, the 20th after the name.
        Some(ProcInfo {
            pid,
            state: f.first()?.chars().next()?,
            ppid: f.get(1)?.parse().ok()?,
            pgid: f.get(2)?.parse().ok()?,
            start: f.get(19)?.parse().ok()?,
            comm,
        })
    }

    fn zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// The children of this process: from `/proc/self/task/*/children` where
/// the kernel has it, else by reading every process's parent.
fn our_children() -> Vec<ProcInfo> {
    let me = getpid().as_raw();
    if let Some(pids) = children_files() {
        return pids
            .into_iter()
            .filter_map(ProcInfo::read)
            .filter(|p| p.ppid == me)
            .collect();
    }
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(ProcInfo::read)
        .filter(|p| p.ppid == me)
        .collect()
}

/// The pids in our threads' `children` files; `None` when the kernel has
/// no such files (CONFIG_PROC_CHILDREN off).
fn children_files() -> Option<Vec<i32>> {
    static HAVE: OnceLock<bool> = OnceLock::new();
    let have = *HAVE.get_or_init(|| {
        let main = format!("/proc/self/task/{}/children", getpid());
        std::path::Path::new(&main).exists()
    });
    if !have {
        return None;
    }
    let mut pids = Vec::new();
    for task in fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread that just ended has no file any more: nothing to add.
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    Some(pids)
}

/// One look at our children (see the module picture); `last`: kill every
/// plugin group and orphan regardless of age. Returns how many are still
/// alive (orphans, and with `last` plugin children too).
fn sweep(last: bool) -> usize {
    let me = getpid().as_raw();
    let candidates: Vec<i32> = {
        let kids = our_children();
        let pids = lock(&CHILDREN.pids);
        kids.iter()
            .filter(|p| last || !pids.contains_key(&p.pid))
            .map(|p| p.pid)
            .collect()
    };
    if candidates.is_empty() {
        return 0;
    }
    // No spawn is in flight while the gate is held: a child not listed now
    // is not a run's.
    let _gate = CHILDREN.gate.write().unwrap_or_else(|e| e.into_inner());
    let listed = lock(&CHILDREN.pids).clone();
    let oldest_run = listed
        .keys()
        .filter_map(|&pid| ProcInfo::read(pid))
        .filter(|p| p.ppid == me && !p.zombie())
        .map(|p| p.start)
        .min();
    let own_group = getpgrp().as_raw();
    let mut alive = 0;
    for pid in candidates {
        let Some(p) = ProcInfo::read(pid).filter(|p| p.ppid == me) else {
            continue;
        };
        if listed.contains_key(&pid) {
            // A run's own child: with `last`, a run that outlived the
            // shutdown's bound. Otherwise one that was spawned while the
            // candidates were read, listed by the time the gate was ours:
            // left alone.
            if last && !p.zombie() {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                alive += 1;
            }
            continue;
        }
        if p.zombie() {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            continue;
        }
        alive += 1;
        // An orphan started before every run in progress cannot be one of
        // theirs: its own run is over.
        if last || oldest_run.is_none_or(|r| p.start < r) {
            kill_orphan(&p, own_group, &listed);
        }
    }
    alive
}

/// SIGKILL to an orphan, and to its process group when that is its own
/// (what a `setsid` leaves: the escaped process and its helpers).
fn kill_orphan(p: &ProcInfo, own_group: i32, listed: &BTreeMap<i32, u32>) {
    log::warn!(
        "killing process {} ({}) left behind by a plugin run",
        p.pid,
        p.comm
    );
    if p.pgid > 1 && p.pgid != own_group && !listed.contains_key(&p.pgid) {
        let _ = killpg(Pid::from_raw(p.pgid), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_info_reads_this_process() {
        let me = ProcInfo::read(std::process::id() as i32).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw());
        assert_eq!(me.pgid, getpgrp().as_raw());
        assert!(me.start > 0);
        assert!(!me.zombie());
    }

    #[test]
    fn a_spawned_child_is_listed_until_reaped() {
        let mut cmd = Command::new("/bin/true");
        let mut child = spawn(&mut cmd).unwrap().expect("gate open");
        let pid = child.id() as i32;
        assert!(lock(&CHILDREN.pids).contains_key(&pid));
        child.wait().unwrap();
        reaped(pid);
        assert!(!lock(&CHILDREN.pids).contains_key(&pid));
    }
}
