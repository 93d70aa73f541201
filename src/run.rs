//! Carrying out a run: [`exec`] turns a [`crate::model::CheckSpec`] into an
//! [`crate::model::Outcome`], through the Nagios plugin runner
//! ([`plugin`]: process groups, both pipes, TERM then KILL, the subreaper)
//! or a built-in probe ([`probe`]). A failing check is data, not an error.

pub mod exec;
pub mod plugin;
pub mod probe;
