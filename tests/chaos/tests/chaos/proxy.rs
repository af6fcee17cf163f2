//! A TCP proxy on loopback between a service and a server it talks to (nats-server,
//! PostgreSQL), to inject network faults the service cannot tell from real ones: added
//! latency, and a partition — either one the connections survive (nothing flows, then
//! everything flows again) or one that kills them (every connection closed, new ones closed as
//! soon as accepted, until the link is up again).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The state of the link between the service and its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Bytes flow, each chunk after the added latency.
    Up,
    /// A partition the connections survive (shorter than TCP's timeouts): nothing flows either
    /// way — what was sent waits, as in TCP's retransmission queue, and flows in order when the
    /// link is up again; a new connection is accepted but reaches nothing until then (as a SYN
    /// retransmitted). The peers notice only through their own timeouts.
    Blackhole,
    /// A partition that kills the connections: every open connection is closed at once (what
    /// was in transit is lost), and new connections are closed as soon as accepted, until the
    /// link is up again.
    Down,
}

#[derive(Debug, Clone, Copy)]
struct Faults {
    /// Added one-way delay of every chunk, in each direction.
    latency: Duration,
    link: Link,
}

#[derive(Debug, Default)]
struct Stats {
    /// Connections accepted from the service.
    accepted: AtomicUsize,
    /// Connections accepted and then closed at once because the link was down.
    refused: AtomicUsize,
    /// Connections forwarded to the server and still open.
    open: AtomicUsize,
    /// Open connections closed by a [`Link::Down`].
    cut: AtomicUsize,
    /// Bytes written to either side.
    forwarded: AtomicU64,
}

/// A proxy listening on `127.0.0.1:<port>`, forwarding to `upstream`; stopped on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    faults: watch::Sender<Faults>,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (faults, control) = watch::channel(Faults {
            latency: Duration::ZERO,
            link: Link::Up,
        });
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(accept(listener, upstream, control, stats.clone()));
        Proxy {
            addr,
            faults,
            stats,
            task,
        }
    }

    /// `nats://127.0.0.1:<port>` of the proxy.
    pub fn nats_url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Adds `latency` to every chunk in each direction from now on (also to what is queued).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.send_modify(|f| f.latency = latency);
    }

    pub fn set_link(&self, link: Link) {
        self.faults.send_modify(|f| f.link = link);
    }

    /// Connections accepted so far (a service that reconnects adds to it).
    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed at once because the link was down.
    pub fn refused(&self) -> usize {
        self.stats.refused.load(Ordering::SeqCst)
    }

    /// Connections currently forwarded.
    pub fn open(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Open connections a [`Link::Down`] closed.
    pub fn cut(&self) -> usize {
        self.stats.cut.load(Ordering::SeqCst)
    }

    /// Bytes forwarded either way so far.
    pub fn forwarded(&self) -> u64 {
        self.stats.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns the connections' tasks: aborting it drops (closes) them all.
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    control: watch::Receiver<Faults>,
    stats: Arc<Stats>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                stats.accepted.fetch_add(1, Ordering::SeqCst);
                if control.borrow().link == Link::Down {
                    stats.refused.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                connections.spawn(serve(client, upstream, control.clone(), stats.clone()));
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Decrements the open count when a forwarded connection ends, however it ends.
struct OpenGuard(Arc<Stats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut control: watch::Receiver<Faults>,
    stats: Arc<Stats>,
) {
    // Accepted during a blackhole: held until the link is up (or closed when it goes down).
    loop {
        let link = control.borrow_and_update().link;
        match link {
            Link::Up => break,
            Link::Down => return,
            Link::Blackhole => {
                if control.changed().await.is_err() {
                    return;
                }
            }
        }
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    stats.open.fetch_add(1, Ordering::SeqCst);
    let _open = OpenGuard(stats.clone());
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    let mut down = control.clone();
    tokio::select! {
        () = pump(from_client, to_server, control.clone(), stats.clone()) => {}
        () = pump(from_server, to_client, control, stats.clone()) => {}
        _ = down.wait_for(|f| f.link == Link::Down) => {
            stats.cut.fetch_add(1, Ordering::SeqCst);
        }
    }
    // Both sockets are dropped here: the peers see the connection closed.
}

/// Copies one direction: a reader queues each chunk with the time it was read; a writer
/// passes it on once its latency is over and the link is up. Ends when the reader reached
/// EOF (or failed) and the queue is drained, or when writing fails or the link goes down.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    control: watch::Receiver<Faults>,
    stats: Arc<Stats>,
) {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if queue
                        .send((Instant::now(), buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let write = async move {
        let mut control = control;
        while let Some((read_at, chunk)) = queued.recv().await {
            loop {
                let faults = *control.borrow_and_update();
                match faults.link {
                    Link::Down => return,
                    Link::Blackhole => {
                        if control.changed().await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Link::Up => {}
                }
                let due = read_at + faults.latency;
                if Instant::now() >= due {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    changed = control.changed() => if changed.is_err() { return },
                }
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            stats
                .forwarded
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        // The reader saw EOF: pass the close on.
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> Duration {
        let started = Instant::now();
        stream.write_all(payload).await.unwrap();
        let mut back = vec![0u8; payload.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, payload);
        started.elapsed()
    }

    /// The proxy itself: bytes pass unchanged; latency delays them; a blackhole holds them
    /// until the link is up; a down link closes the connection and refuses new ones.
    #[tokio::test]
    async fn proxy_forwards_delays_holds_and_cuts() {
        let proxy = Proxy::start(echo().await).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        round_trip(&mut stream, b"hello").await;
        assert_eq!(proxy.open(), 1);

        proxy.set_latency(Duration::from_millis(100));
        let rtt = round_trip(&mut stream, b"slow").await;
        assert!(rtt >= Duration::from_millis(200), "round trip {rtt:?}");
        proxy.set_latency(Duration::ZERO);

        proxy.set_link(Link::Blackhole);
        stream.write_all(b"held").await.unwrap();
        let mut back = [0u8; 4];
        let held = tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut back));
        assert!(held.await.is_err(), "bytes crossed a blackhole");
        proxy.set_link(Link::Up);
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
            .await
            .expect("held bytes flow once the link is up")
            .unwrap();
        assert_eq!(&back, b"held");

        proxy.set_link(Link::Down);
        let mut rest = Vec::new();
        // EOF or a reset: either way, closed.
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("a down link closes the open connections");
        assert_eq!(proxy.cut(), 1);
        let mut refused = TcpStream::connect(proxy.addr).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut back))
            .await
            .expect("a new connection is closed at once");
        assert!(matches!(n, Ok(0) | Err(_)));
        assert_eq!(proxy.refused(), 1);

        proxy.set_link(Link::Up);
        let mut again = TcpStream::connect(proxy.addr).await.unwrap();
        round_trip(&mut again, b"back").await;
        // Each round trip's bytes, both ways: hello, slow, held, back.
        assert_eq!(proxy.forwarded(), 2 * (5 + 4 + 4 + 4));
    }
}
