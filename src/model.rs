//! The floor every stage stands on: what a check is ([`CheckSpec`]), what a
//! run yields ([`Outcome`], [`Status`], [`Perf`]) and what a config sets
//! about alerting ([`AlertPolicy`]). Plain data and pure functions; it
//! imports nothing of the crate but the clock.

pub mod check;
pub mod contact;
pub mod heartbeat;
pub mod identity;
pub mod output_text;
pub mod plugin_output;
pub mod policy;

pub use check::*;
pub use contact::{Contact, ContactBook, Period};
pub use output_text::OutputText;
pub use plugin_output::{parse_plugin_output, Perf};
pub use policy::{AlertPolicy, Escalation, FlapSetting, PolicyDefaults};
