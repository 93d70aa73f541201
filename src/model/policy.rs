//! What a config sets about alerting a check beyond its runs: dependencies,
//! flap thresholds, reminders and escalation. The decisions that use these
//! are in [`crate::alert`].

/// `flap: #{ low, high }` in percent, or off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlapSetting {
    Off,
    On { low: f32, high: f32 },
}

impl Default for FlapSetting {
    /// picomon's defaults, as Nagios': 20 % and 30 %.
    fn default() -> Self {
        FlapSetting::On {
            low: 20.0,
            high: 30.0,
        }
    }
}

/// One step of `escalate: [#{ after: "30m", to: [...] }]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    /// Seconds of outage before this step.
    pub after: u64,
    pub to: Vec<String>,
}

/// A check's dependencies, flap thresholds, reminders and escalation as
/// its config set them. Boxed in the check and absent when it sets none of
/// them (most checks), so an unused feature costs a pointer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertPolicy {
    /// Positions (config order) of the checks it depends on.
    pub depends_on: Box<[u32]>,
    /// `None` = `config.default_flap`.
    pub flap: Option<FlapSetting>,
    /// Seconds between reminders; `None` = `config.default_renotify_every`,
    /// 0 = none.
    pub renotify_every: Option<u64>,
    /// `None` = `config.emails.escalate`.
    pub escalate: Option<Box<[Escalation]>>,
}

/// The `config.*` defaults of [`AlertPolicy`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyDefaults {
    pub flap: FlapSetting,
    /// Seconds; 0 = none.
    pub renotify_every: u64,
    pub escalate: Vec<Escalation>,
}

impl PolicyDefaults {
    /// What applies to a check with `noise`.
    pub fn flap(&self, noise: Option<&AlertPolicy>) -> FlapSetting {
        noise.and_then(|n| n.flap).unwrap_or(self.flap)
    }

    pub fn renotify_every(&self, noise: Option<&AlertPolicy>) -> u64 {
        noise
            .and_then(|n| n.renotify_every)
            .unwrap_or(self.renotify_every)
    }

    pub fn escalate<'a>(&'a self, noise: Option<&'a AlertPolicy>) -> &'a [Escalation] {
        match noise.and_then(|n| n.escalate.as_deref()) {
            Some(e) => e,
            None => &self.escalate,
        }
    }
}
