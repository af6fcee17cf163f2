//! Loopback ports reserved for a server that binds them later.

use std::net::SocketAddr;

use tokio::net::TcpSocket;

use crate::TestkitError;

/// A loopback TCP port held for as long as this lives, for a server that binds it later
/// (nats-server, PostgreSQL, a service's HTTP listener) or for a URL where nothing may answer.
///
/// Binding port 0, reading the port and releasing it leaves a window in which the kernel may
/// hand the port to a parallel test's server (it happened, see the router's database tests).
/// Instead this keeps a socket bound with `SO_REUSEADDR` that never listens. On Linux the
/// kernel then picks that port for no other socket (`bind` to port 0, or `connect`), and a
/// connection to it is refused; yet a server that binds it explicitly with `SO_REUSEADDR` may
/// still bind and listen there, as the holder does not listen. nats-server (Go's `net.Listen`),
/// PostgreSQL and `std`'s and tokio's `TcpListener::bind` all set `SO_REUSEADDR`.
#[derive(Debug)]
pub struct ReservedPort {
    /// Kept only to hold the port.
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl ReservedPort {
    /// Reserves a port on 127.0.0.1 that the kernel picks.
    pub fn new() -> Result<Self, TestkitError> {
        let reserve = || -> std::io::Result<Self> {
            let socket = TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            let addr = socket.local_addr()?;
            Ok(Self {
                _socket: socket,
                addr,
            })
        };
        reserve().map_err(TestkitError::io("reserving a loopback port"))
    }

    /// `n` reserved ports (distinct, as each is held).
    pub fn many(n: usize) -> Result<Vec<Self>, TestkitError> {
        (0..n).map(|_| Self::new()).collect()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn nats_url(&self) -> String {
        format!("nats://{}", self.addr)
    }
}
