//! Name lookups bounded in time: `getaddrinfo` has no timeout of its own,
//! so it runs on a thread of its own and the caller stops waiting at its
//! deadline (the thread ends when the resolver answers, and nobody
//! listens then).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The addresses of `name` (an IP address is its own answer), or why
/// there are none by `until`; `timeout` is what messages quote as the
/// time the caller allowed.
pub fn lookup(
    name: &str,
    port: u16,
    until: Instant,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let no_answer = || {
        format!(
            "cannot resolve {name}: no answer from the resolver within {} s",
            timeout.as_secs_f64()
        )
    };
    let left = until.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(1) {
        return Err(no_answer());
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let owned = name.to_string();
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let found = (owned.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>());
            // The caller may have stopped waiting; then nobody listens.
            let _ = tx.send(found);
        })
        .map_err(|e| format!("cannot resolve {name}: {e}"))?;
    match rx.recv_timeout(left) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(format!("cannot resolve {name}: {e}")),
        Err(_) => Err(no_answer()),
    }
}
