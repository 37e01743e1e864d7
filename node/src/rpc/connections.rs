//! The RPC server's accept loop: a bound on connections in all and per remote IP, and an idle
//! timeout on each connection (HTTP keep-alive or WebSocket).

use jsonrpsee::server::{Methods, StopHandle, TowerServiceBuilder, serve_with_graceful_shutdown};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    future::Future,
    io,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    time::{Instant, Sleep},
};
use tracing::debug;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most open connections in all (`--rpc.maxconnections`).
    pub max_connections: usize,
    /// Most open connections from one remote IP (`--rpc.maxconnectionsperip`).
    pub max_per_ip: usize,
    /// A connection that neither sends nor receives a byte for this long is closed
    /// (`--rpc.idletimeout`; zero: never). WebSocket connections are pinged well within it, so
    /// only clients that stopped answering are closed.
    pub idle_timeout: Duration,
}

/// Open connections per remote IP, and in all.
#[derive(Debug, Default)]
struct OpenConnections {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// One admitted connection; releases its places when the connection is gone.
#[derive(Debug)]
struct Admission {
    ip: IpAddr,
    open: Arc<Mutex<OpenConnections>>,
}

impl Admission {
    fn new(
        open: &Arc<Mutex<OpenConnections>>,
        ip: IpAddr,
        limits: ConnectionLimits,
    ) -> Option<Self> {
        let mut o = open.lock();
        let from_ip = o.per_ip.get(&ip).copied().unwrap_or_default();
        if o.total >= limits.max_connections || from_ip >= limits.max_per_ip {
            return None;
        }
        o.total += 1;
        o.per_ip.insert(ip, from_ip + 1);
        Some(Self {
            ip,
            open: open.clone(),
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut o = self.open.lock();
        o.total -= 1;
        if let Some(n) = o.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                o.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A connection's socket with its idle deadline and its admission: whoever owns the socket (the
/// HTTP server, then the WebSocket session after an upgrade) holds both, so they last exactly
/// as long as the connection.
struct Guarded {
    io: TcpStream,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    _admission: Admission,
}

impl Guarded {
    fn touch(&mut self) {
        let deadline = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.touch();
                Poll::Ready(result)
            }
            Poll::Pending
                if !this.idle_timeout.is_zero() && this.idle.as_mut().poll(cx).is_ready() =>
            {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What the per-IP limit counts by: the address, but an IPv6 address by its /64 prefix (one
/// host commonly holds the whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
        v4 => v4,
    }
}

/// Accepts connections until `stop` fires, serving each with `service` built per connection.
pub(crate) async fn accept<RpcMw, HttpMw>(
    listener: TcpListener,
    service: TowerServiceBuilder<RpcMw, HttpMw>,
    methods: Methods,
    stop: StopHandle,
    limits: ConnectionLimits,
) where
    TowerServiceBuilder<RpcMw, HttpMw>: Clone,
    jsonrpsee::server::TowerService<RpcMw, HttpMw>: tower::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = jsonrpsee::server::HttpResponse,
            Error = jsonrpsee::core::BoxError,
        > + Clone
        + Send
        + 'static,
    <jsonrpsee::server::TowerService<RpcMw, HttpMw> as tower::Service<
        hyper::Request<hyper::body::Incoming>,
    >>::Future: Send,
{
    let open = Arc::new(Mutex::new(OpenConnections::default()));
    loop {
        let (socket, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    debug!(target: "rpc", %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.clone().shutdown() => return,
        };
        let Some(admission) = Admission::new(&open, client_key(remote.ip()), limits) else {
            debug!(target: "rpc", %remote, "connection refused: limit reached");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let io = Guarded {
            io: socket,
            idle_timeout: limits.idle_timeout,
            idle: Box::pin(tokio::time::sleep(limits.idle_timeout)),
            _admission: admission,
        };
        let svc = service.clone().build(methods.clone(), stop.clone());
        tokio::spawn(serve_with_graceful_shutdown(
            io,
            svc,
            stop.clone().shutdown(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admissions_are_bounded_per_ip_and_in_all_and_released_on_drop() {
        let open = Arc::new(Mutex::new(OpenConnections::default()));
        let limits = ConnectionLimits {
            max_connections: 3,
            max_per_ip: 2,
            idle_timeout: Duration::from_secs(1),
        };
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let a1 = Admission::new(&open, a, limits).unwrap();
        let _a2 = Admission::new(&open, a, limits).unwrap();
        assert!(Admission::new(&open, a, limits).is_none(), "per IP");
        let _b1 = Admission::new(&open, b, limits).unwrap();
        assert!(Admission::new(&open, b, limits).is_none(), "in all");
        drop(a1);
        assert!(Admission::new(&open, b, limits).is_some());
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }
}
