//! The integration tests, one module per area, linked into a single test
//! binary (`it`): one link of the picomon library and its dependencies
//! instead of one per file. A test's full name carries its module, e.g.
//! `probes_local::ping_helper_without_privilege`.
//!
//! The shared helpers stay in `tests/support/`, where the watchdog
//! package's tests also include some of them by path.

#[path = "../support/mod.rs"]
mod support;

mod bench_smoke;
mod channels;
mod config;
mod contacts;
mod control;
mod daemon;
mod history;
mod http;
mod imports;
mod mail;
mod mailin;
mod noise;
mod outputs;
mod outputs_servers;
mod outputs_stores;
mod package;
mod passive;
mod peers;
mod plugin_runner;
mod porting;
mod privileges;
mod probes_config;
mod probes_local;
mod probes_resolver;
mod probes_services;
mod probes_trace;
mod probes_web;
mod simulate;
