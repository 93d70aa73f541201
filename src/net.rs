//! The HTTP and TLS client pieces shared by whoever talks HTTP(S) out:
//! probes, notification channels and passive outputs.

pub mod http;
pub mod resolve;
pub mod tls;
