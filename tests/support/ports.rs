//! Loopback ports for test servers and for probes that must find nothing
//! listening, without the race of "bind port 0, close, hope nobody takes
//! it before the server binds it again". Shared by the daemon and watchdog
//! tests (the watchdog package includes this file by path, so it uses
//! nothing else of tests/support).
//!
//! - A server that can start first binds port 0 itself and reports the port
//!   it got (tests/smtp/server.py and the fixtures write it to their ready
//!   file or stdout).
//! - A port that must be known before its server runs, or where nothing may
//!   listen at all, is a [`Reserved`] port: a socket bound to it that never
//!   listens. A connection to it is refused, as to any closed port, and no
//!   other socket can bind the port while the test holds it, except a test
//!   server that sets `SO_REUSEPORT` as this socket does (same user only):
//!   that is how the test's own server takes the port over, even after a
//!   restart.
#![allow(dead_code)]

use std::net::{IpAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A port held for the test until dropped (see the module comment).
pub struct Reserved {
    /// Bound, never listening (never call accept on it).
    _socket: TcpListener,
    port: u16,
}

impl Reserved {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Reserves a port on 127.0.0.1; returns the guard and the port (`let
/// (_held, port) = reserve_port();`).
pub fn reserve_port() -> (Reserved, u16) {
    reserve_port_on("127.0.0.1")
}

/// Reserves a port on loopback address `ip` (`127.0.0.1`, `::1`).
pub fn reserve_port_on(ip: &str) -> (Reserved, u16) {
    let ip: IpAddr = ip
        .parse()
        .unwrap_or_else(|e| panic!("not an address {ip}: {e}"));
    let r = bind_unlistened(ip, 0).unwrap_or_else(|e| panic!("cannot reserve a port on {ip}: {e}"));
    let port = r.port;
    (r, port)
}

/// Keeps `port` on 127.0.0.1, where a test server (with `SO_REUSEPORT`)
/// listens now, for the server's restart: while the test holds it, the
/// port cannot go to anyone else between the server's stop and start.
pub fn hold_port(port: u16) -> Reserved {
    bind_unlistened(IpAddr::from([127, 0, 0, 1]), port).unwrap_or_else(|e| {
        panic!("cannot hold port {port} (does its server set SO_REUSEPORT?): {e}")
    })
}

fn bind_unlistened(ip: IpAddr, port: u16) -> std::io::Result<Reserved> {
    let family = if ip.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket() takes no pointers; a valid descriptor is owned at once.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket() and is owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SO_REUSEPORT only, not SO_REUSEADDR: with SO_REUSEADDR on both sides
    // an unrelated server could bind the port beside a socket that does not
    // listen.
    // SAFETY: the option value points to a c_int that outlives the call.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    // SAFETY: an all-zero sockaddr_storage is a valid value of it.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(v4).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: storage holds a sockaddr of `len` bytes of the socket's family.
    check(unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    })?;
    // getsockname through std: a TcpListener made from a bound socket
    // answers local_addr() without ever having listened.
    let socket = TcpListener::from(socket);
    let port = socket.local_addr()?.port();
    Ok(Reserved {
        _socket: socket,
        port,
    })
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
