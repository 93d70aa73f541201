//! The channels of `config.notify` as one [`Notifier`]: each transition
//! (and each acknowledgement) is rendered for every channel that takes it
//! and queued in that channel's own durable queue,
//! `state_dir/notify/NAME/`, which its own thread delivers. An
//! Alertmanager cluster gets one queue and thread per instance (`NAME`,
//! `NAME@2`, ...): each instance is posted every alert on its own, so one
//! that is down holds back nothing of the others.
//!
//! ```text
//!  transitions ──> Event ──filters──> render (format) ──> Post
//!                  (states, match,          │
//!                   check's notify:)        v
//!               state_dir/notify/ops-chat/   state_dir/notify/am/  ...
//!                       │ thread                  │ thread
//!                       v                         v
//!                    webhook                 Alertmanager (+ repeats
//!                                            while in PROBLEM; am@2/ ...
//!                                            for more instances)
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
use crate::queue::{Courier, Deliverer, Kind, Queue};
use crate::run::plugin::RunningGroups;

pub mod deliverer;
pub mod format;
pub mod post;
pub mod spec;

use super::{CheckList, CheckView, Notice, Notifier};
use deliverer::{Command, Endpoint, Http};
use format::{alerts, render, Event, Fired};
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
        /// What fires at each instance (as `couriers`): they differ when a
        /// repeat skips an instance whose queue is not empty.
        fired: Vec<Fired>,
    },
}

/// The queue `qname` (`state_dir/notify/QNAME/`) with its delivery thread.
fn start_courier<D: Deliverer<Item = Post>>(
    state_dir: &Path,
    qname: &str,
    deliverer: D,
    retry: Duration,
) -> Result<(String, Courier<Post>), String> {
    let queue = Queue::new(
        state_dir.join(NOTIFY_DIR).join(qname),
        ".post",
        format!("{qname} queue"),
    );
    let label = format!("notification {qname}");
    Courier::start(&format!("notify-{qname}"), &label, deliverer, queue, retry)
        .map(|c| (qname.to_string(), c))
        .map_err(|e| format!("config.notify {qname}: cannot start its delivery thread: {e}"))
}

/// The queue of the instance at `index` of an Alertmanager channel `name`:
/// `name` for the first, `name@2`, `name@3`, ... for the others (`@` is in
/// no channel name, so they meet no other channel's folder).
pub fn instance_name(name: &str, index: usize) -> String {
    if index == 0 {
        name.to_string()
    } else {
        format!("{name}@{}", index + 1)
    }
}

/// One configured channel with its queues and threads.
struct Channel {
    name: String,
    states: Vec<String>,
    pattern: Option<String>,
    render: Render,
    /// One per receiver: a channel has one, an Alertmanager channel one
    /// per instance of the cluster (`NAME`, `NAME@2`, ...).
    couriers: Vec<(String, Courier<Post>)>,
    /// A `command()` channel's run in progress, killed at shutdown.
    groups: Option<Arc<RunningGroups>>,
}

impl Channel {
    fn start(spec: &ChannelSpec, name: String, state_dir: &Path) -> Result<Channel, String> {
        let mut groups = None;
        let (render, couriers) = match &spec.kind {
            ChannelKind::Webhook { url, format, http } => {
                let endpoint = if format == "matrix" {
                    Endpoint::MatrixRoom
                } else {
                    Endpoint::Post
                };
                let d = Http::new(&name, url, endpoint, http, spec.timeout)?;
                (
                    Render::Webhook(format.clone()),
                    vec![start_courier(state_dir, &name, d, spec.retry)?],
                )
            }
            ChannelKind::Command { program, args } => {
                let g = Arc::new(RunningGroups::new());
                groups = Some(Arc::clone(&g));
                let d = Command::new(program.clone(), args.clone(), spec.timeout, g);
                (
                    Render::Command,
                    vec![start_courier(state_dir, &name, d, spec.retry)?],
                )
            }
            ChannelKind::Alertmanager {
                urls,
                labels,
                repeat,
                http,
            } => {
                let mut list = Vec::new();
                for (i, url) in urls.iter().enumerate() {
                    let qname = instance_name(&name, i);
                    let full = format!("{url}/api/v2/alerts");
                    let d = Http::new(&qname, &full, Endpoint::Alertmanager, http, spec.timeout)?;
                    list.push(start_courier(state_dir, &qname, d, spec.retry)?);
                }
                let render = Render::Alertmanager {
                    labels: labels.clone(),
                    repeat: *repeat,
                    last: None,
                    fired: vec![Fired::default(); urls.len()],
                };
                (render, list)
            }
        };
        Ok(Channel {
            name,
            states: spec.states.clone(),
            pattern: spec.pattern.clone(),
            render,
            couriers,
            groups,
        })
    }

    /// Whether the channel takes this kind of event about this check.
    fn takes(&self, kind: &str, who: Subject<'_>, picks: Option<&Vec<String>>) -> bool {
        (self.states.is_empty() || self.states.iter().any(|s| s == kind))
            && self.pattern.as_deref().is_none_or(|p| who.matches(p))
            && picks.is_none_or(|names| names.contains(&self.name))
    }

    /// The posts for the events of one tick that this channel takes, for
    /// its receiver `to` (an instance of an Alertmanager cluster; 0
    /// otherwise): one per event; for Alertmanager one post with every
    /// alert; for a chat more than `digest_over` events are one digest
    /// message, as for mail.
    fn posts(
        &mut self,
        events: &[&Event],
        now: UnixMicros,
        digest_over: usize,
        to: usize,
    ) -> Vec<Post> {
        match &mut self.render {
            Render::Alertmanager {
                labels,
                repeat,
                fired,
                ..
            } => {
                let all: Vec<serde_json::Value> = events
                    .iter()
                    .flat_map(|e| alerts(e, labels, *repeat, &mut fired[to]))
                    .collect();
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
    /// Channel name -> the contacts whose `notify` names it. Such a
    /// channel is theirs: it gets the notices they get, at their hours.
    owners: BTreeMap<String, Vec<String>>,
    /// Which checks the contacts have (for acks and repeats).
    contacts: crate::model::ContactBook,
    /// `emails.digest_over`: more events in one tick make one chat digest.
    digest_over: usize,
    /// `picomon simulate`: posts go here (with the receiver's name)
    /// instead of the queues.
    capture: Option<CapturedPosts>,
}

/// The posts a capturing [`Channels`] made, with the receiver each was
/// for, oldest first.
pub type CapturedPosts = Arc<std::sync::Mutex<Vec<(String, Post)>>>;

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
    /// The contacts, whose `notify` makes channels theirs.
    pub contacts: &'a crate::model::ContactBook,
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
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in &cfg.contacts.contacts {
            for n in &c.notify {
                owners.entry(n.clone()).or_default().push(c.name.clone());
            }
        }
        Ok(Some(Channels {
            list,
            picks: cfg.notify_picks.clone(),
            owners,
            contacts: cfg.contacts.clone(),
            digest_over: cfg.digest_over,
            capture: None,
        }))
    }

    /// Whether `ch` takes an event of `kind` about `who` that goes to
    /// everyone (`everyone`) and to `contacts`. A channel no contact names
    /// takes what goes to everyone, as its filters and the check's
    /// `notify` say; a contact's channel takes what its contacts get (and
    /// what a check picks it for by name).
    fn wants(
        &self,
        ch: &Channel,
        kind: &str,
        who: Subject<'_>,
        everyone: bool,
        contacts: &[String],
    ) -> bool {
        let picks = self.picks.get(who.id);
        match self.owners.get(&ch.name) {
            None => everyone && ch.takes(kind, who, picks),
            Some(owners) => {
                ch.takes(kind, who, None)
                    && (contacts.iter().any(|c| owners.contains(c))
                        || (everyone && picks.is_some_and(|p| p.contains(&ch.name))))
            }
        }
    }

    /// Channels that format every post as the daemon's would and keep it
    /// in the list returned, never in a queue: what `picomon simulate`
    /// shows (`state_dir` is a scratch folder; nothing is delivered from it).
    pub fn capturing<'a>(
        cfg: impl Into<ChannelSettings<'a>>,
    ) -> anyhow::Result<Option<(Channels, CapturedPosts)>> {
        Ok(Channels::new(cfg)?.map(|mut c| {
            let captured = CapturedPosts::default();
            c.capture = Some(captured.clone());
            (c, captured)
        }))
    }

    /// Hands `p` to receiver `to` of channel `ch`: its queue, or the
    /// capture. True when queued.
    fn push(
        capture: &Option<CapturedPosts>,
        ch: &Channel,
        to: usize,
        p: Post,
        kind: Kind,
        what: &str,
    ) -> bool {
        if let Some(c) = capture {
            let name = ch.couriers[to].0.clone();
            c.lock().unwrap_or_else(|e| e.into_inner()).push((name, p));
            return false;
        }
        ch.couriers[to].1.push(p, kind, what);
        true
    }

    /// Queues the events of one tick on every channel that takes them,
    /// then wakes those channels; `audience[i]` is who `events[i]` is for
    /// (everyone? and which contacts).
    fn send(&mut self, events: &[Event], audience: &[(bool, Vec<String>)], now: UnixMicros) {
        let mut list = std::mem::take(&mut self.list);
        for ch in &mut list {
            let taken: Vec<&Event> = events
                .iter()
                .zip(audience)
                .filter(|(e, (everyone, contacts))| {
                    let who = Subject {
                        id: &e.check_id,
                        name: &e.check,
                        dest: &e.target,
                    };
                    self.wants(ch, &e.kind, who, *everyone, contacts)
                })
                .map(|(e, _)| e)
                .collect();
            for to in 0..ch.couriers.len() {
                let posts = ch.posts(&taken, now, self.digest_over, to);
                if posts.is_empty() {
                    continue;
                }
                let mut queued = false;
                for p in posts {
                    let what = p.about.split(':').next().unwrap_or("").to_string();
                    queued |= Channels::push(&self.capture, ch, to, p, Kind::Alert, &what);
                }
                if queued {
                    ch.couriers[to].1.wake();
                }
            }
        }
        self.list = list;
    }

    /// The names of the contacts of a check.
    fn contacts_of(&self, check_id: &str) -> Vec<String> {
        self.contacts.of(check_id).map(|c| c.name.clone()).collect()
    }

    /// An alert not posted again ends at its `endsAt`: every `repeat`, to
    /// each instance whose queue is empty, the alerts of the checks still
    /// in PROBLEM are posted again (with a new `endsAt`; and as what they
    /// are now, so a severity change held back by a sticky ack shows).
    fn repeat_alerts(&mut self, at: crate::clock::Now, checks: &dyn CheckList) {
        let now = at.wall;
        let mut views: Option<Vec<CheckView>> = None;
        let problem = crate::alert::TransitionKind::Problem.as_str();
        let mut list = std::mem::take(&mut self.list);
        for ch in &mut list {
            let Render::Alertmanager { repeat, last, .. } = &mut ch.render else {
                continue;
            };
            // Counted on the timeline: a wall clock set back must not let
            // Alertmanager resolve the alerts meanwhile.
            if last.is_some_and(|t| at.steady - t < repeat.as_micros() as i64) {
                continue;
            }
            *last = Some(at.steady);
            let idle: Vec<usize> = (0..ch.couriers.len())
                .filter(|&i| ch.couriers[i].1.pending() == 0)
                .collect();
            if !checks.any_problem() || idle.is_empty() {
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
                    self.wants(ch, problem, who, true, &self.contacts_of(&v.check_id))
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
            for to in idle {
                for mut p in ch.posts(&taken, now, usize::MAX, to) {
                    p.about = format!("repeat of {} alerts in PROBLEM", taken.len());
                    if Channels::push(&self.capture, ch, to, p, Kind::Report, "repeat") {
                        ch.couriers[to].1.wake();
                    }
                }
            }
        }
        self.list = list;
    }
}

impl Notifier for Channels {
    fn transitions(&mut self, batch: Vec<Notice>, now: UnixMicros) {
        let events: Vec<Event> = batch.iter().map(Event::from_notice).collect();
        let audience: Vec<(bool, Vec<String>)> = batch
            .iter()
            .map(|n| (n.to_everyone, n.contacts.clone()))
            .collect();
        self.send(&events, &audience, now);
    }

    fn tick(&mut self, now: crate::clock::Now, checks: &dyn CheckList) {
        for (_, c) in self.list.iter().flat_map(|ch| &ch.couriers) {
            c.flush_memory();
        }
        self.repeat_alerts(now, checks);
    }

    fn acknowledged(&mut self, check: &CheckView, by: &str, comment: &str, now: UnixMicros) {
        let audience = [(true, self.contacts_of(&check.check_id))];
        self.send(
            &[Event::acknowledged(check, by, comment, now)],
            &audience,
            now,
        );
    }

    fn status_lines(&self) -> Vec<String> {
        self.list
            .iter()
            .flat_map(|ch| &ch.couriers)
            .flat_map(|(_, c)| c.status_lines())
            .collect()
    }

    fn pending(&self) -> Vec<(String, usize)> {
        self.list
            .iter()
            .flat_map(|ch| &ch.couriers)
            .map(|(name, c)| (name.clone(), c.pending()))
            .collect()
    }

    /// Every channel's last pass at once: the deadline is shared, not
    /// multiplied by the number of channels. A command still running then
    /// is killed (its post stays queued for the next start).
    fn shutdown(&mut self, deadline: Duration) {
        std::thread::scope(|s| {
            for ch in &mut self.list {
                let groups = &ch.groups;
                for (_, c) in &mut ch.couriers {
                    s.spawn(move || {
                        c.shutdown(deadline);
                        if let Some(g) = groups {
                            g.kill_all(Duration::from_secs(1));
                        }
                    });
                }
            }
        });
    }
}
