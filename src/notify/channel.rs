//! The channels of `config.notify` as one [`Notifier`]: each transition
//! (and each acknowledgement) is rendered for every channel that takes it
//! and queued in that channel's own durable queue,
//! `state_dir/notify/NAME/`, which its own thread delivers.
//!
//! ```text
//!  transitions ──> Event ──filters──> render (format) ──> Post
//!                  (states, match,          │
//!                   check's notify:)        v
//!               state_dir/notify/ops-chat/   state_dir/notify/am/  ...
//!                       │ thread                  │ thread
//!                       v                         v
//!                    webhook                 Alertmanager (+ repeats
//!                                            while in PROBLEM)
//! ```
//!
//! A channel that is down holds back only its own posts: the others and
//! the checks go on.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;

use crate::alert::quiet::Subject;
use crate::alert::Phase;
use crate::clock::UnixMicros;
use crate::queue::{Courier, Kind, Queue};
use crate::run::plugin::RunningGroups;

pub mod deliverer;
pub mod format;
pub mod post;
pub mod spec;

use super::{CheckList, CheckView, Notice, Notifier};
use deliverer::{Command, Endpoint, Http};
use format::{alerts, render, Event};
use post::Post;
use spec::{ChannelKind, ChannelSpec};

/// The folder (in `state_dir`) that holds one queue per channel.
pub const NOTIFY_DIR: &str = "notify";

/// How a channel turns an event into a post.
enum Render {
    Webhook(String),
    Command,
    Alertmanager {
        labels: Vec<(String, String)>,
        repeat: Duration,
        /// When the firing alerts were last posted.
        last: Option<UnixMicros>,
    },
}

/// One configured channel with its queue and thread.
struct Channel {
    name: String,
    states: Vec<String>,
    pattern: Option<String>,
    render: Render,
    courier: Courier<Post>,
    /// A `command()` channel's run in progress, killed at shutdown.
    groups: Option<Arc<RunningGroups>>,
}

impl Channel {
    fn start(spec: &ChannelSpec, name: String, state_dir: &Path) -> Result<Channel, String> {
        let queue = Queue::new(
            state_dir.join(NOTIFY_DIR).join(&name),
            ".post",
            format!("{name} queue"),
        );
        let label = format!("notification {name}");
        let thread = format!("notify-{name}");
        let start = |c: std::io::Result<Courier<Post>>| {
            c.map_err(|e| format!("config.notify {name}: cannot start its delivery thread: {e}"))
        };
        let mut groups = None;
        let (render, courier) = match &spec.kind {
            ChannelKind::Webhook { url, format, http } => {
                let endpoint = if format == "matrix" {
                    Endpoint::MatrixRoom
                } else {
                    Endpoint::Post
                };
                let d = Http::new(&name, url, endpoint, http, spec.timeout)?;
                let c = Courier::start(&thread, &label, d, queue, spec.retry);
                (Render::Webhook(format.clone()), start(c)?)
            }
            ChannelKind::Command { program, args } => {
                let g = Arc::new(RunningGroups::new());
                groups = Some(Arc::clone(&g));
                let d = Command::new(program.clone(), args.clone(), spec.timeout, g);
                let c = Courier::start(&thread, &label, d, queue, spec.retry);
                (Render::Command, start(c)?)
            }
            ChannelKind::Alertmanager {
                url,
                labels,
                repeat,
                http,
            } => {
                let full = format!("{url}/api/v2/alerts");
                let d = Http::new(&name, &full, Endpoint::Post, http, spec.timeout)?;
                let c = Courier::start(&thread, &label, d, queue, spec.retry);
                let render = Render::Alertmanager {
                    labels: labels.clone(),
                    repeat: *repeat,
                    last: None,
                };
                (render, start(c)?)
            }
        };
        Ok(Channel {
            name,
            states: spec.states.clone(),
            pattern: spec.pattern.clone(),
            render,
            courier,
            groups,
        })
    }

    /// Whether the channel takes this kind of event about this check.
    fn takes(&self, kind: &str, who: Subject<'_>, picks: Option<&Vec<String>>) -> bool {
        (self.states.is_empty() || self.states.iter().any(|s| s == kind))
            && self.pattern.as_deref().is_none_or(|p| who.matches(p))
            && picks.is_none_or(|names| names.contains(&self.name))
    }

    /// The posts for the events of one tick that this channel takes: one
    /// per event; for Alertmanager one post with every alert; for a chat
    /// more than `digest_over` events are one digest message, as for mail.
    fn posts(&self, events: &[&Event], now: UnixMicros, digest_over: usize) -> Vec<Post> {
        match &self.render {
            Render::Alertmanager { labels, .. } => {
                let all: Vec<serde_json::Value> =
                    events.iter().flat_map(|e| alerts(e, labels)).collect();
                if all.is_empty() {
                    return Vec::new();
                }
                let (headers, body) = json_post(serde_json::Value::Array(all));
                let about = match events {
                    [e] => format!("{}: {} on {}", e.kind, e.check, e.target),
                    _ => format!("{} alerts", events.len()),
                };
                vec![new_post(now, about, headers, body)]
            }
            Render::Webhook(format) if format != "json" && events.len() > digest_over => {
                let d = Event::digest(events, now);
                self.post(&d, now).into_iter().collect()
            }
            _ => events.iter().filter_map(|e| self.post(e, now)).collect(),
        }
    }

    /// The post for `e`, `None` when the channel has nothing to say.
    fn post(&self, e: &Event, now: UnixMicros) -> Option<Post> {
        let (headers, body) = match &self.render {
            Render::Webhook(format) => render(format, e),
            Render::Command => (Vec::new(), e.to_json().to_string().into_bytes()),
            Render::Alertmanager { .. } => return None, // see `posts`
        };
        Some(new_post(
            now,
            format!("{}: {} on {}", e.kind, e.check, e.target),
            headers,
            body,
        ))
    }
}

fn json_post(v: serde_json::Value) -> (Vec<(String, String)>, Vec<u8>) {
    (
        vec![("Content-Type".into(), "application/json".into())],
        v.to_string().into_bytes(),
    )
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A post with an id unique to this process and time.
fn new_post(now: UnixMicros, about: String, headers: Vec<(String, String)>, body: Vec<u8>) -> Post {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    Post {
        composed: now,
        id: format!("{now}-{seq}-{}", std::process::id()),
        about,
        tries: 0,
        headers,
        body,
    }
}

/// The channels of a config.
pub struct Channels {
    list: Vec<Channel>,
    /// `notify: [...]` of the checks that set it, by check identity.
    picks: BTreeMap<String, Vec<String>>,
    /// `emails.digest_over`: more events in one tick make one chat digest.
    digest_over: usize,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|c| &c.name))
            .finish()
    }
}

/// What the channels need of a config; the config builds it.
#[derive(Clone, Copy, Debug)]
pub struct ChannelSettings<'a> {
    /// `config.notify`.
    pub notify: &'a [ChannelSpec],
    /// Which checks picked which channels (`notify: [names]`).
    pub notify_picks: &'a BTreeMap<String, Vec<String>>,
    /// `config.emails.digest_over`.
    pub digest_over: usize,
    pub state_dir: &'a std::path::Path,
    /// The config file, for messages.
    pub config_path: &'a std::path::Path,
}

impl Channels {
    /// Starts every channel of `config.notify` (`None` when there is
    /// none). Errors name the channel and the setting.
    pub fn new<'a>(cfg: impl Into<ChannelSettings<'a>>) -> anyhow::Result<Option<Channels>> {
        let cfg = cfg.into();
        if cfg.notify.is_empty() {
            return Ok(None);
        }
        let mut list = Vec::new();
        for (i, spec) in cfg.notify.iter().enumerate() {
            let ch = Channel::start(spec, spec.channel_name(i), cfg.state_dir)
                .map_err(|m| anyhow!("{}: {m}", cfg.config_path.display()))?;
            list.push(ch);
        }
        Ok(Some(Channels {
            list,
            picks: cfg.notify_picks.clone(),
            digest_over: cfg.digest_over,
        }))
    }

    /// Queues the events of one tick on every channel that takes them,
    /// then wakes those channels.
    fn send(&self, events: &[Event], now: UnixMicros) {
        for ch in &self.list {
            let taken: Vec<&Event> = events
                .iter()
                .filter(|e| {
                    let who = Subject {
                        id: &e.check_id,
                        name: &e.check,
                        dest: &e.target,
                    };
                    ch.takes(&e.kind, who, self.picks.get(&e.check_id))
                })
                .collect();
            let posts = ch.posts(&taken, now, self.digest_over);
            if posts.is_empty() {
                continue;
            }
            for p in posts {
                let what = p.about.split(':').next().unwrap_or("").to_string();
                ch.courier.push(p, Kind::Alert, &what);
            }
            ch.courier.wake();
        }
    }

    /// Alertmanager forgets an alert not posted again within its resolve
    /// timeout: every `repeat`, while nothing waits in its queue, the
    /// alerts of the checks still in PROBLEM are posted again.
    fn repeat_alerts(&mut self, at: crate::clock::Now, checks: &dyn CheckList) {
        let now = at.wall;
        let mut views: Option<Vec<CheckView>> = None;
        let problem = crate::alert::TransitionKind::Problem.as_str();
        for ch in &mut self.list {
            let Render::Alertmanager { repeat, last, .. } = &mut ch.render else {
                continue;
            };
            // Counted on the timeline: a wall clock set back must not let
            // Alertmanager resolve the alerts meanwhile.
            if last.is_some_and(|t| at.steady - t < repeat.as_micros() as i64) {
                continue;
            }
            *last = Some(at.steady);
            if !checks.any_problem() || ch.courier.pending() > 0 {
                continue;
            }
            let views = views.get_or_insert_with(|| checks.views());
            // Only what was announced: not a held (UNREACHABLE) dependent,
            // a flapping check or a silenced one, whose Problem was kept back.
            let announced = |v: &&CheckView| {
                v.phase == Phase::Problem
                    && v.unreachable_by.is_none()
                    && !v.flapping
                    && v.silenced_by.is_none()
            };
            let events: Vec<Event> = views
                .iter()
                .filter(announced)
                .filter(|v| {
                    let who = Subject {
                        id: &v.check_id,
                        name: &v.name,
                        dest: &v.dest,
                    };
                    ch.takes(problem, who, self.picks.get(&v.check_id))
                })
                .map(|v| Event {
                    kind: problem.into(),
                    state: v.status.unwrap_or(crate::model::Status::Unknown),
                    previous: None,
                    check: v.name.clone(),
                    check_id: v.check_id.clone(),
                    target: v.dest.clone(),
                    output: v.last_output.clone(),
                    since: v.outage_start.unwrap_or(now),
                    at: now,
                    failed_runs: v.failed_runs,
                    unreachable: Vec::new(),
                })
                .collect();
            let taken: Vec<&Event> = events.iter().collect();
            for mut p in ch.posts(&taken, now, usize::MAX) {
                p.about = format!("repeat of {} alerts in PROBLEM", taken.len());
                ch.courier.push(p, Kind::Report, "repeat");
                ch.courier.wake();
            }
        }
    }
}

impl Notifier for Channels {
    fn transitions(&mut self, batch: Vec<Notice>, now: UnixMicros) {
        let events: Vec<Event> = batch.iter().map(Event::from_notice).collect();
        self.send(&events, now);
    }

    fn tick(&mut self, now: crate::clock::Now, checks: &dyn CheckList) {
        for ch in &self.list {
            ch.courier.flush_memory();
        }
        self.repeat_alerts(now, checks);
    }

    fn acknowledged(&mut self, check: &CheckView, by: &str, comment: &str, now: UnixMicros) {
        self.send(&[Event::acknowledged(check, by, comment, now)], now);
    }

    fn status_lines(&self) -> Vec<String> {
        self.list
            .iter()
            .flat_map(|c| c.courier.status_lines())
            .collect()
    }

    fn pending(&self) -> Vec<(String, usize)> {
        self.list
            .iter()
            .map(|c| (c.name.clone(), c.courier.pending()))
            .collect()
    }

    /// Every channel's last pass at once: the deadline is shared, not
    /// multiplied by the number of channels. A command still running then
    /// is killed (its post stays queued for the next start).
    fn shutdown(&mut self, deadline: Duration) {
        std::thread::scope(|s| {
            for ch in &mut self.list {
                s.spawn(move || {
                    ch.courier.shutdown(deadline);
                    if let Some(g) = &ch.groups {
                        g.kill_all(Duration::from_secs(1));
                    }
                });
            }
        });
    }
}
