//! The daemon as it runs: the system clock, a thread pool, real signals.
//! One thread owns all check state ([`Daemon`]); workers only run checks
//! and put results in the loop's inbox; signals arrive in the same inbox.

use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

use crate::cli::Cli;
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::Config;

use crate::passive::Outputs;

use crate::control::protocol::Response;
use crate::control::{Call, Published, Request};

use super::event_loop::{Daemon, Parts, Reloaded};
use super::executor::PoolExecutor;
use super::inbox::Event;
use super::inbox::Inbox;

pub fn run(cli: Cli, cfg: Config) -> anyhow::Result<i32> {
    super::ensure_state_dir(&cfg)?;
    let inbox = Arc::new(Inbox::default());
    forward_signals(Arc::clone(&inbox))?;
    // The state file first: a start-up that fails sends no mail.
    let saved = crate::state::load(&cfg.state_dir)?;
    let notifier = super::notifiers::make_notifier(&cfg)?;
    let outputs = Outputs::start(&cfg.outputs, &cfg.state_dir)?;
    let exec = PoolExecutor::new(cfg.workers, Arc::clone(&inbox));
    let clock = Arc::new(SystemClock::new());
    let shared: SharedClock = clock.clone();
    let mut d = Daemon::new(cfg, shared, Box::new(exec), notifier, outputs);
    d.restore(saved);
    d.restore_quiet(crate::alert::quiet::load(&d.cfg().state_dir)?);
    d.restore_standby();
    // After the privilege drop (done before `run`): the socket belongs to
    // the daemon's user.
    let published: Published = Arc::default();
    {
        let inbox = Arc::clone(&inbox);
        published.set_poke(Box::new(move || inbox.push(Event::Publish)));
    }
    let _server = crate::control::server::start(
        &d.cfg().state_dir,
        d.cfg().control_group.as_deref(),
        {
            let inbox = Arc::clone(&inbox);
            Arc::new(move |call| inbox.push(Event::Control(call)))
        },
        Arc::clone(&published),
    )?;
    let mut http = Http::default();
    http.follow(d.cfg().listen, &inbox, &published)?;
    let mut beat = super::beat::Heartbeat::default();
    beat.follow(&d.cfg().heartbeat, d.cfg().heartbeat_every);
    super::allocator::trim_heap();
    crate::secret::started();
    log::info!(
        "picomon started: {} checks, tick {} s, config {}",
        d.len(),
        d.cfg().base_tick.as_secs_f64(),
        d.cfg().path.display()
    );
    drive(
        &mut d, &clock, &inbox, &cli, &published, &mut http, &mut beat,
    );
    drop(beat);
    drop(http);
    d.shutdown();
    Ok(0)
}

/// Turns signals into inbox events.
fn forward_signals(inbox: Arc<Inbox<Event>>) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGUSR1, SIGHUP, SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                inbox.push(Event::Signal(sig));
            }
        })?;
    Ok(())
}

/// Until SIGTERM or SIGINT: sleep until the next tick or an event, take
/// everything that arrived, then run the tick if it is due.
fn drive(
    d: &mut Daemon<SharedClock>,
    clock: &SystemClock,
    inbox: &Arc<Inbox<Event>>,
    cli: &Cli,
    published: &Published,
    http: &mut Http,
    beat: &mut super::beat::Heartbeat,
) {
    let mut publisher = Publisher::default();
    loop {
        let mut deadline = clock.instant(d.next_tick_at());
        if let Some(at) = publisher.due {
            deadline = deadline.min(at);
        }
        // A snapshot nobody reads any more is dropped when it expires.
        if let Some(at) = published.unwanted_at().filter(|_| published.holds_one()) {
            deadline = deadline.min(at.max(std::time::Instant::now()));
        }
        let events = inbox.wait_until(deadline);
        let woke = !events.is_empty();
        let flushes = d.flushes();
        for event in events {
            match event {
                Event::Result { id, outcome } => d.on_result(&id, outcome),
                // One immediate tick for a burst of signals, and one dump
                // with it (see `Daemon::ask_immediate_tick`).
                Event::Signal(SIGUSR1) => {
                    if d.ask_immediate_tick() {
                        print_dump(&d.dump());
                    }
                }
                Event::Signal(SIGHUP) => {
                    let _ = reload(d, cli);
                }
                Event::Control(call) => {
                    publisher.force = true;
                    control(d, cli, call, published)
                }
                Event::Publish => publisher.force = true,
                Event::Ping(q) => {
                    publisher.force = true;
                    let _ = q.reply.send(d.http_ping(&q.key, &q.check, q.ping));
                }
                Event::Signal(sig) => {
                    log::info!("signal {sig} received, stopping");
                    return;
                }
            }
        }
        // A reload may have changed config.listen.
        if let Err(e) = http.follow(d.cfg().listen, inbox, published) {
            log::error!("reload: {e:#}; no HTTP listener until the next reload");
        }
        beat.follow(&d.cfg().heartbeat, d.cfg().heartbeat_every);
        let ticked = d.next_tick_at() <= clock.mono();
        d.tick(false);
        if ticked {
            crate::health::board().publish(std::time::Instant::now(), d.health_facts().clone());
        }
        // Transitions went to the notifier: publish now, not after the
        // usual pause, so `status` read after the mail shows its cause.
        publisher.force |= d.flushes() != flushes;
        publisher.after_batch(d, published, woke || ticked);
        for (call, answer) in d.take_answers() {
            call.answer(answer);
        }
    }
}

/// The HTTP listener `config.listen` asks for: started with the daemon,
/// stopped, or bound anew, when a reload changes the address.
#[derive(Default)]
struct Http {
    wanted: Option<std::net::SocketAddr>,
    running: Option<crate::web::Listener>,
}

impl Http {
    fn follow(
        &mut self,
        want: Option<std::net::SocketAddr>,
        inbox: &Arc<Inbox<Event>>,
        published: &Published,
    ) -> anyhow::Result<()> {
        if want == self.wanted {
            return Ok(());
        }
        self.wanted = want;
        // The old one goes first: the new address may use the same port.
        self.running = None;
        if let Some(addr) = want {
            let inbox = Arc::clone(inbox);
            let ask: crate::web::Ask = Arc::new(move |q| {
                inbox.push(match q {
                    crate::web::Question::Ping(p) => Event::Ping(p),
                })
            });
            self.running = Some(crate::web::start(addr, ask, Arc::clone(published))?);
        }
        Ok(())
    }
}

/// At most this often while results stream in: building the status of
/// every check after each result would cost the loop more than the runs.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// And at most once per this many times what the last publication took:
/// with 100,000 checks the loop spends at most 1/20 of its time on it.
const PUBLISH_SHARE: u32 = 20;

/// When the loop publishes the status for its readers (the control
/// server, the HTTP listener): while one read within
/// [`crate::control::KEEP_PUBLISHING`], after a batch of events, at most
/// every [`PUBLISH_EVERY`] or [`PUBLISH_SHARE`] times the last one's cost
/// (a batch in between is published when that time comes), and at once
/// after a control request or when a reader found none.
#[derive(Default)]
struct Publisher {
    last: Option<std::time::Instant>,
    /// A change waits to be published then.
    due: Option<std::time::Instant>,
    /// A control request was handled: publish before answering it.
    force: bool,
    /// How long the last publication took the loop.
    took: Duration,
}

impl Publisher {
    fn after_batch(&mut self, d: &Daemon<SharedClock>, board: &Published, changed: bool) {
        if !board.wanted() {
            if board.holds_one() {
                board.put(None);
                // The status of every check, its rendered /metrics, and
                // what readers allocated: give the freed heap back.
                super::allocator::trim_heap();
            }
            self.due = None;
            return;
        }
        let now = std::time::Instant::now();
        let changed = changed || self.due.is_some_and(|at| at <= now) || !board.holds_one();
        if !changed {
            return;
        }
        let every = PUBLISH_EVERY.max(self.took * PUBLISH_SHARE);
        match self.last {
            Some(last) if !self.force && now < last + every => {
                self.due = Some(last + every);
            }
            _ => {
                // The old one goes first: two at once would double the
                // memory of a large daemon for a moment.
                board.put(None);
                board.put(Some(d.snapshot()));
                self.took = now.elapsed();
                self.last = Some(now);
                self.due = None;
                self.force = false;
            }
        }
    }
}

/// A control request: `reload` reads the config here; the rest is the
/// loop's.
fn control(d: &mut Daemon<SharedClock>, cli: &Cli, call: Call, published: &Published) {
    if call.request != Request::Reload {
        d.control(call);
        return;
    }
    let answer = match reload(d, cli) {
        Ok(r) => Response::message(format!(
            "reloaded: {} checks ({} added, {} removed, {} kept)",
            r.checks, r.added, r.removed, r.kept
        )),
        Err(e) => Response::error(e),
    };
    // After the status is published, like the loop's own answers.
    if published.wanted() {
        published.put(None);
        published.put(Some(d.snapshot()));
    }
    call.answer(answer);
}

fn print_dump(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// SIGHUP and `picomon reload`: a broken config keeps the old one running
/// (the error is `FILE:LINE:COL: message`); a valid one is swapped in,
/// unchanged checks keep their state.
fn reload(d: &mut Daemon<SharedClock>, cli: &Cli) -> Result<Reloaded, String> {
    let cfg = match super::load_to_run(cli).and_then(|cfg| {
        crate::config::same_state_dir(d.cfg(), &cfg)?;
        Ok(cfg)
    }) {
        Ok(cfg) => cfg,
        Err(err) => {
            log::error!("reload failed, keeping the running config: {err:#}");
            return Err(format!("{err:#}"));
        }
    };
    let notifier = super::notifiers::make_notifier(&cfg)
        .map_err(|err| log::error!("reload: mail set-up failed, keeping the old one: {err:#}"))
        .ok();
    let outputs = Outputs::start(&cfg.outputs, &cfg.state_dir)
        .map_err(|err| {
            log::error!("reload: outputs failed to start, keeping the old ones: {err:#}")
        })
        .ok();
    picomon_common::handoff::hand_over(&super::handoff::handoff(&cfg));
    let done = d.reload(cfg, Parts { notifier, outputs });
    super::allocator::trim_heap();
    Ok(done)
}
