//! Test support: a TCP proxy in front of a real server that a test can cut off and restore,
//! to take a target away from one binary without stopping a server other tests share.
//!
//! ```text
//! binary under test ──> 127.0.0.1:<proxy port> ──(open)──> the real server (PostgreSQL, Cassandra)
//!                                cut(): every connection through it is closed at once and new
//!                                ones are accepted and closed straight away, until restore()
//! ```
//!
//! To the binary this is the target going away (connections reset, then refused the way a
//! stopped server's port is not: accepted and closed), which is what its retry paths must ride
//! out. Clients that learn other addresses from the server (Cassandra drivers read
//! `system.local`) keep using the proxy's port: the scylla driver reuses the port of its
//! contact point for the node it finds there.
//!
//! Plain threads and blocking sockets: it must not depend on the test's async runtime.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A proxy on `127.0.0.1:<port>` to one target address; stops when dropped.
pub struct CuttableProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    target: SocketAddr,
    open: AtomicBool,
    stopped: AtomicBool,
    /// Both halves of every connection through the proxy, to shut them down on a cut.
    connections: Mutex<Vec<TcpStream>>,
}

impl CuttableProxy {
    /// Listens on a free local port and forwards every connection to `target` (`host:port`).
    pub fn start(target: &str) -> std::io::Result<CuttableProxy> {
        let target = std::net::ToSocketAddrs::to_socket_addrs(target)?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("`{target}` has no address")))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            open: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || accept_loop(listener, accepting));
        Ok(CuttableProxy { address, shared })
    }

    /// `127.0.0.1:<port>`: give this to the binary instead of the server's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every connection through the proxy and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.close_all();
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(self.address);
    }
}

impl Shared {
    fn close_all(&self) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for stream in connections.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        if !shared.open.load(Ordering::SeqCst) {
            drop(client); // accepted and closed: the target is away
            continue;
        }
        let Ok(server) = TcpStream::connect(shared.target) else {
            continue; // the real server is down: the client sees its connection closed
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(client_copy), Ok(server_copy)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        if let Ok(mut connections) = shared.connections.lock() {
            if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
                connections.push(a);
                connections.push(b);
            }
        }
        thread::spawn(move || pump(client, server));
        thread::spawn(move || pump(server_copy, client_copy));
    }
}

/// Copies `from` to `to` until either side closes, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut reader = stream.try_clone().unwrap();
                    let mut writer = stream;
                    let _ = std::io::copy(&mut reader, &mut writer);
                });
            }
        });
        address
    }

    fn round_trip(address: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        stream.write_all(b"ping")?;
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer)?;
        Ok(answer.to_vec())
    }

    #[test]
    fn forwards_until_cut_and_again_after_restore() {
        let proxy = CuttableProxy::start(&echo_server().to_string()).unwrap();
        assert_eq!(round_trip(proxy.address()).unwrap(), b"ping");

        let mut open = TcpStream::connect(proxy.address()).unwrap();
        open.write_all(b"ping").unwrap();
        let mut answer = [0u8; 4];
        open.read_exact(&mut answer).unwrap();
        proxy.cut();
        open.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let after_cut = open.write_all(b"ping").and_then(|_| open.read(&mut answer));
        assert!(
            matches!(after_cut, Ok(0) | Err(_)),
            "a live connection is closed by the cut"
        );
        assert!(round_trip(proxy.address()).is_err(), "new ones too");

        proxy.restore();
        assert_eq!(round_trip(proxy.address()).unwrap(), b"ping");
    }
}
