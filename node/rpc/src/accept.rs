//! The accept loop and the life of one TCP connection (R4, R6): open connections are capped
//! in all and per source address before any byte is read, and a connection that is neither
//! upgraded to a WebSocket nor serving a request is closed after `rpc.idle_timeout_secs`.
//!
//! jsonrpsee's own accept loop does not tell the middleware where a request comes from, and
//! its `serve_with_graceful_shutdown` gives no idle timeout (hyper's `header_read_timeout`
//! needs a timer it does not set): this module does both, the rest is jsonrpsee's.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpRequest, HttpResponse};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::RpcServerConfig;

/// How often a closed-at-once connection is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The open TCP connections, counted against `rpc.max_open_connections` and
/// `rpc.max_open_connections_per_source`. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct OpenConnections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    total: u32,
    per_source: u32,
    open: Mutex<Open>,
    log: Mutex<(Option<Instant>, u64)>,
}

#[derive(Debug, Default)]
struct Open {
    total: u32,
    by_source: HashMap<IpAddr, u32>,
}

/// One open connection's place; freed when the last clone is dropped (the connection's task
/// and, once upgraded, the WebSocket's, which keeps the upgrade request's extensions).
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    connections: OpenConnections,
    source: IpAddr,
}

impl OpenConnections {
    pub(crate) fn new(config: &RpcServerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                total: config.max_open_connections,
                per_source: config.max_open_connections_per_source,
                open: Mutex::default(),
                log: Mutex::default(),
            }),
        }
    }

    /// A place for a connection from `source`, or (logged at most once per 10 s with a
    /// count) `None`: the caller closes the socket at once.
    pub(crate) fn open(&self, source: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mine = open.by_source.get(&source).copied().unwrap_or(0);
        let full = if mine >= self.inner.per_source {
            Some(("max_open_connections_per_source", self.inner.per_source))
        } else if open.total >= self.inner.total {
            Some(("max_open_connections", self.inner.total))
        } else {
            None
        };
        if let Some((key, limit)) = full {
            drop(open);
            self.log_refusal(source, key, limit);
            return None;
        }
        open.total += 1;
        *open.by_source.entry(source).or_insert(0) += 1;
        Some(ConnectionSlot {
            connections: self.clone(),
            source,
        })
    }

    fn log_refusal(&self, source: IpAddr, key: &str, limit: u32) {
        let mut log = self
            .inner
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (last, unlogged) = &mut *log;
        *unlogged += 1;
        let now = Instant::now();
        if last.is_some_and(|last| now < last + LOG_EVERY) {
            return;
        }
        let closed = std::mem::take(unlogged);
        *last = Some(now);
        drop(log);
        tracing::warn!(
            limit = key,
            %source,
            closed,
            "RPC connections closed at once: rpc.{key} ({limit}) connections are open (count since the last such line); raise rpc.{key} in the config if these are legitimate clients"
        );
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(mine) = open.by_source.get_mut(&self.source) {
            *mine -= 1;
            if *mine == 0 {
                open.by_source.remove(&self.source);
            }
        }
    }
}

/// Serve one connection with `service` until it ends (or, once `stopped` resolves, until its
/// requests in flight are answered). HTTP/1: the client has `idle` to send a request's
/// headers, the first and each next one on a kept-alive connection; a request being served
/// or an upgraded WebSocket is not timed. HTTP/2 (prior knowledge only, no TLS): the first
/// request within `idle`, as jsonrpsee does.
pub(crate) async fn serve<S>(
    socket: TcpStream,
    service: S,
    request_seen: Arc<Notify>,
    stopped: impl Future<Output = ()>,
    idle: Duration,
) -> Result<(), BoxError>
where
    S: tower::Service<HttpRequest<Incoming>, Response = HttpResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(socket), TowerToHyperService::new(service));
    tokio::pin!(stopped, conn);
    let first_request = async {
        if tokio::time::timeout(idle, request_seen.notified())
            .await
            .is_err()
        {
            return std::io::Error::new(std::io::ErrorKind::TimedOut, "no request in time");
        }
        std::future::pending().await
    };
    tokio::select! {
        result = &mut conn => result,
        () = &mut stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        error = first_request => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_source_and_in_all_and_freed_on_drop() {
        let connections = OpenConnections::new(&RpcServerConfig {
            max_open_connections: 3,
            max_open_connections_per_source: 2,
            ..RpcServerConfig::ephemeral()
        });
        let source = |n: u8| IpAddr::from([127, 0, 0, n]);
        let first = connections.open(source(1)).unwrap();
        let _second = connections.open(source(1)).unwrap();
        assert!(connections.open(source(1)).is_none());
        let _third = connections.open(source(2)).unwrap();
        assert!(connections.open(source(3)).is_none());
        drop(first);
        assert!(connections.open(source(3)).is_some());
        let open = connections.inner.open.lock().unwrap();
        assert_eq!((open.total, open.by_source.len()), (2, 2));
    }
}
