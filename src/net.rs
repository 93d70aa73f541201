//! The client pieces shared by whoever talks to the network: probes,
//! notification channels and passive outputs. HTTP and TLS, name lookups
//! bounded in time, and the DNS messages of the DNS probes.

pub mod dns;
pub mod http;
pub mod resolve;
pub mod tls;
