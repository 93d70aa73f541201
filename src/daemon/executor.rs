//! Who carries out the runs the loop starts. The daemon uses a thread pool;
//! the loop's tests use a [`ManualExecutor`] that only records what was
//! started, so they decide when (and with what) each run ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use threadpool::ThreadPool;

use crate::model::CheckSpec;
use crate::run::exec::{execute, RunEnv};
use crate::run::plugin::RunningGroups;

use super::inbox::{Event, Inbox};

/// One run the loop starts.
#[derive(Clone, Debug)]
pub struct Run {
    pub spec: Arc<CheckSpec>,
    /// What the check remembered after its last run.
    pub memory: Option<String>,
    pub max_output: usize,
}

pub trait Executor: Send {
    /// Starts a run; its outcome reaches the loop later as
    /// [`Event::Result`] (from the pool) or from the test itself.
    fn start(&mut self, run: Run);
    /// The number of runs that may go at once.
    fn set_workers(&mut self, n: usize);
    /// Runs started but still waiting for a free worker.
    fn backlog(&self) -> usize;
    /// Stops: kills the process groups of running plugins (TERM, then KILL
    /// after `grace`) and waits, at most `wait`, for the runs to end. True
    /// when every run ended in time.
    fn stop(&mut self, grace: Duration, wait: Duration) -> bool;
}

/// The daemon's executor: `config.workers` threads; results go to the
/// loop's inbox.
pub struct PoolExecutor {
    pool: ThreadPool,
    groups: Arc<RunningGroups>,
    inbox: Arc<Inbox<Event>>,
}

impl PoolExecutor {
    pub fn new(workers: usize, inbox: Arc<Inbox<Event>>) -> PoolExecutor {
        PoolExecutor {
            pool: ThreadPool::with_name("check".into(), workers.max(1)),
            groups: Arc::new(RunningGroups::new()),
            inbox,
        }
    }
}

impl Executor for PoolExecutor {
    fn start(&mut self, run: Run) {
        let inbox = Arc::clone(&self.inbox);
        let groups = Arc::clone(&self.groups);
        self.pool.execute(move || {
            let outcome = execute(
                &run.spec,
                RunEnv {
                    max_output: run.max_output,
                    groups: Some(&groups),
                    memory: run.memory.as_deref(),
                },
            );
            inbox.push(Event::Result {
                id: run.spec.id.clone(),
                outcome,
            });
        });
    }

    fn set_workers(&mut self, n: usize) {
        self.pool.set_num_threads(n.max(1));
    }

    fn backlog(&self) -> usize {
        self.pool.queued_count()
    }

    fn stop(&mut self, grace: Duration, wait: Duration) -> bool {
        self.groups.kill_all(grace);
        // A probe ends by its own timeout; the wait is bounded all the same.
        super::startup::join_within(&self.pool, wait)
    }
}

/// A test executor: records the runs started; nothing runs.
#[derive(Clone, Debug, Default)]
pub struct ManualExecutor {
    pub started: Arc<Mutex<Vec<Run>>>,
    pub workers: Arc<Mutex<usize>>,
    /// What [`Executor::backlog`] answers: set by the test.
    pub backlog: Arc<Mutex<usize>>,
}

impl ManualExecutor {
    /// The runs started since the last call, in order.
    pub fn take(&self) -> Vec<Run> {
        std::mem::take(&mut *self.started.lock().unwrap())
    }
}

impl Executor for ManualExecutor {
    fn start(&mut self, run: Run) {
        self.started.lock().unwrap().push(run);
    }
    fn set_workers(&mut self, n: usize) {
        *self.workers.lock().unwrap() = n;
    }
    fn backlog(&self) -> usize {
        *self.backlog.lock().unwrap()
    }
    fn stop(&mut self, _grace: Duration, _wait: Duration) -> bool {
        true
    }
}
