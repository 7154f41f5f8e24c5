//! A fault-injecting TCP proxy for tests. It sits between the worker and the broker, or the worker
//! and the simulator, and on command passes bytes, delays them, black-holes them (connections stay
//! open, nothing gets through), refuses connections, or resets every open connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Pass,
    /// Each chunk is held this long before it is forwarded, both ways: slow responses.
    Delay(Duration),
    /// Connections are accepted and kept, but no byte gets through in either direction.
    Blackhole,
    /// Open connections are reset, and new ones are reset as soon as they are accepted.
    Refuse,
}

/// The mode, and a counter bumped by every `reset_all`.
type State = (Mode, u64);

pub struct Proxy {
    pub addr: SocketAddr,
    state: watch::Sender<State>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A listener on a free loopback port; pass it to `start` once the target is known (a broker
    /// must advertise the proxy's address before it starts).
    pub fn listener() -> std::net::TcpListener {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy binds a port");
        l.set_nonblocking(true).expect("non-blocking listener");
        l
    }

    /// Forwards connections made to `listener` to `target`; runs on the current tokio runtime.
    pub fn start(listener: std::net::TcpListener, target: SocketAddr) -> Proxy {
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        let addr = listener.local_addr().unwrap();
        let (state, _) = watch::channel((Mode::Pass, 0));
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept(listener, target, state.subscribe(), accepted.clone()));
        Proxy {
            addr,
            state,
            accepted,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.state.send_modify(|s| s.0 = mode);
    }

    /// Resets every open connection (RST), mid-request or idle; new connections are served.
    pub fn reset_all(&self) {
        self.state.send_modify(|s| s.1 += 1);
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.set(Mode::Refuse);
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, state: watch::Receiver<State>, accepted: Arc<AtomicU64>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        // Linger 0: a dropped connection is reset, not closed politely.
        let _ = client.set_zero_linger();
        if state.borrow().0 == Mode::Refuse {
            continue;
        }
        tokio::spawn(connection(client, target, state.clone()));
    }
}

async fn connection(client: TcpStream, target: SocketAddr, mut state: watch::Receiver<State>) {
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = upstream.set_zero_linger();
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let resets = state.borrow_and_update().1;
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let pumps = {
        let (a, b) = (state.clone(), state.clone());
        async move { tokio::join!(pump(cr, uw, a), pump(ur, cw, b)) }
    };
    let cut = async {
        loop {
            if state.changed().await.is_err() {
                return;
            }
            let (mode, n) = *state.borrow_and_update();
            if mode == Mode::Refuse || n != resets {
                return;
            }
        }
    };
    // Whichever ends first drops both sockets; with linger 0 a cut is a reset.
    tokio::select! {
        _ = pumps => {}
        _ = cut => {}
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, state: watch::Receiver<State>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mode = state.borrow().0;
        match mode {
            Mode::Pass => {}
            Mode::Delay(d) => tokio::time::sleep(d).await,
            Mode::Blackhole => continue,
            Mode::Refuse => break,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, within: Duration) -> std::io::Result<Vec<u8>> {
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        match tokio::time::timeout(within, s.read_exact(&mut buf)).await {
            Ok(r) => r.map(|_| buf.to_vec()),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    #[tokio::test]
    async fn the_proxy_passes_delays_black_holes_resets_and_refuses() {
        let proxy = Proxy::start(Proxy::listener(), echo_server().await);
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut s, Duration::from_secs(5)).await.unwrap(), b"ping");

        proxy.set(Mode::Delay(Duration::from_millis(300)));
        let t = std::time::Instant::now();
        round_trip(&mut s, Duration::from_secs(5)).await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(600),
            "held both ways: {:?}",
            t.elapsed()
        );

        proxy.set(Mode::Blackhole);
        let e = round_trip(&mut s, Duration::from_millis(500)).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "black-holed: {e}");

        proxy.set(Mode::Pass);
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        round_trip(&mut s, Duration::from_secs(5)).await.unwrap();
        proxy.reset_all();
        let e = round_trip(&mut s, Duration::from_secs(5)).await.unwrap_err();
        assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "reset, not stalled: {e}");
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        round_trip(&mut s, Duration::from_secs(5)).await.unwrap();

        proxy.set(Mode::Refuse);
        let e = round_trip(&mut s, Duration::from_secs(5)).await.unwrap_err();
        assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "open connection reset: {e}");
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let e = round_trip(&mut s, Duration::from_secs(5)).await.unwrap_err();
        assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "new connection refused: {e}");
        assert!(proxy.accepted() >= 4);
    }
}
