//! Starting the server: one port for HTTP and WebSocket, the bearer-token check in front of
//! everything, then the limits of [`RpcServerConfig`] (R4, R5, R6).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use jsonrpsee::Methods;
use jsonrpsee::core::BoxError;
use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::server::{
    HttpRequest, HttpResponse, PingConfig, Server, ServerConfig, ServerHandle, StopHandle,
    TowerService, TowerServiceBuilder, stop_channel,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::Service;

use crate::accept::{ConnectionSlot, OpenConnections, serve};
use crate::auth::AuthLayer;
use crate::limits::{Caller, LimitLayer, Limits};
use crate::params::CheckParamsLayer;
use crate::principal::Authority;
use crate::scope::ScopeLayer;
use crate::{Error, Result};

/// What jsonrpsee's service answers a request with.
type ResponseFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

/// The pause after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The RPC server's settings, part of the node's configuration file (`[rpc]`).
///
/// | field | default | what it bounds |
/// |---|---|---|
/// | `listen` | `127.0.0.1:7750` | where the server listens; loopback only unless changed (R5) |
/// | `max_ws_connections` | 32 | WebSocket connections open at once, in all; more get HTTP 429 (HTTP calls are not affected) |
/// | `max_ws_connections_per_source` | 8 | WebSocket connections open at once from one source address |
/// | `max_http_requests` | 32 | HTTP requests being served at once, in all, however many WebSockets are open; more get HTTP 429 |
/// | `max_http_requests_per_source` | 16 | HTTP requests being served at once for one source address |
/// | `max_subscriptions` | 256 | subscriptions over all connections; more get error 1015 |
/// | `max_subscriptions_per_connection` | 16 | subscriptions one WebSocket connection may hold; more get error -32006 |
/// | `max_request_bytes` | 65 536 | one request (HTTP body or WebSocket message); larger ones are refused |
/// | `max_response_bytes` | 10 485 760 | one response; a larger one is replaced by an error |
/// | `max_open_connections` | 256 | TCP connections open at once, in all (WebSockets included); past it a new one is closed at once. At least `max_ws_connections` + `max_http_requests` |
/// | `max_open_connections_per_source` | 64 | TCP connections open at once from one source address; at least `max_ws_connections_per_source` + `max_http_requests_per_source` |
/// | `idle_timeout_secs` | 30 | a connection that sends no request (its first, or the next on a kept-alive one) for this long is closed; requests being served and WebSockets are not timed |
///
/// A refusal (HTTP 401 or 429) closes its connection.
///
/// A source is the address a connection comes from (every local client is `127.0.0.1`); once
/// agents get credentials of their own, the per-source limits count per credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcServerConfig {
    /// Address and port to listen on (port 0: any free port, see [`start`]'s result).
    pub listen: SocketAddr,
    /// WebSocket connections open at once, in all.
    pub max_ws_connections: u32,
    /// WebSocket connections open at once from one source address.
    pub max_ws_connections_per_source: u32,
    /// HTTP requests being served at once, in all.
    pub max_http_requests: u32,
    /// HTTP requests being served at once for one source address.
    pub max_http_requests_per_source: u32,
    /// Subscriptions over all connections.
    pub max_subscriptions: u32,
    /// Subscriptions one WebSocket connection may hold.
    pub max_subscriptions_per_connection: u32,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: u32,
    /// Largest response sent, in bytes.
    pub max_response_bytes: u32,
    /// TCP connections open at once, in all.
    pub max_open_connections: u32,
    /// TCP connections open at once from one source address.
    pub max_open_connections_per_source: u32,
    /// Seconds a connection may stay open without sending a request.
    pub idle_timeout_secs: u32,
}

impl RpcServerConfig {
    /// The default port.
    pub const DEFAULT_PORT: u16 = 7750;

    /// The defaults, listening on a free loopback port: for tests.
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..Self::default()
        }
    }

    /// Refuse settings the server cannot work with: a limit of zero, a per-source limit above
    /// its total, requests under 1 KiB. The text names the key (under `rpc.`) and what fits.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("max_ws_connections", self.max_ws_connections),
            (
                "max_ws_connections_per_source",
                self.max_ws_connections_per_source,
            ),
            ("max_http_requests", self.max_http_requests),
            (
                "max_http_requests_per_source",
                self.max_http_requests_per_source,
            ),
            ("max_subscriptions", self.max_subscriptions),
            (
                "max_subscriptions_per_connection",
                self.max_subscriptions_per_connection,
            ),
            ("max_open_connections", self.max_open_connections),
            (
                "max_open_connections_per_source",
                self.max_open_connections_per_source,
            ),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == 0 {
                return Err(format!("rpc.{key} must be at least 1"));
            }
        }
        for (per_source, total, value, limit) in [
            (
                "max_ws_connections_per_source",
                "max_ws_connections",
                self.max_ws_connections_per_source,
                self.max_ws_connections,
            ),
            (
                "max_http_requests_per_source",
                "max_http_requests",
                self.max_http_requests_per_source,
                self.max_http_requests,
            ),
            (
                "max_open_connections_per_source",
                "max_open_connections",
                self.max_open_connections_per_source,
                self.max_open_connections,
            ),
        ] {
            if value > limit {
                return Err(format!(
                    "rpc.{per_source} ({value}) must not exceed rpc.{total} ({limit})"
                ));
            }
        }
        // Every WebSocket and every HTTP request in flight holds a connection: the connection
        // caps must leave room for all the others allow.
        for (key, value, (ws, ws_value), (http, http_value)) in [
            (
                "max_open_connections",
                self.max_open_connections,
                ("max_ws_connections", self.max_ws_connections),
                ("max_http_requests", self.max_http_requests),
            ),
            (
                "max_open_connections_per_source",
                self.max_open_connections_per_source,
                (
                    "max_ws_connections_per_source",
                    self.max_ws_connections_per_source,
                ),
                (
                    "max_http_requests_per_source",
                    self.max_http_requests_per_source,
                ),
            ),
        ] {
            let needed = u64::from(ws_value) + u64::from(http_value);
            if u64::from(value) < needed {
                return Err(format!(
                    "rpc.{key} ({value}) must be at least rpc.{ws} + rpc.{http} ({needed}): every WebSocket and every HTTP request in flight holds a connection"
                ));
            }
        }
        if self.max_request_bytes < 1024 {
            return Err("rpc.max_request_bytes must be at least 1024".into());
        }
        Ok(())
    }
}

impl Default for RpcServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, Self::DEFAULT_PORT)),
            max_ws_connections: 32,
            max_ws_connections_per_source: 8,
            max_http_requests: 32,
            max_http_requests_per_source: 16,
            max_subscriptions: 256,
            max_subscriptions_per_connection: 16,
            max_request_bytes: 64 * 1024,
            max_response_bytes: 10 * 1024 * 1024,
            max_open_connections: 256,
            max_open_connections_per_source: 64,
            idle_timeout_secs: 30,
        }
    }
}

/// Start serving `methods` (the daemon's `FarthingApiServer::into_rpc()`) on `config.listen`,
/// HTTP and WebSocket on the same port, to callers that send `Authorization: Bearer <token>`,
/// within the limits of `config` (refusals are HTTP 429 saying which
/// limit was hit and what to do).
///
/// Returns the address actually bound (so port 0 works) and the handle that stops the server
/// (`handle.stop()`, then `handle.stopped().await`); dropping the handle stops it too. Must
/// run inside a tokio runtime.
pub async fn start(
    config: &RpcServerConfig,
    token: &str,
    methods: impl Into<Methods>,
) -> Result<(SocketAddr, ServerHandle)> {
    start_with(config, token, None, methods).await
}

/// [`start`], also admitting agents' credentials (`fth1_…`) that `authority` verifies: each
/// call of theirs is checked against the scopes of their credential (1017), and its expiry
/// and revocation are checked again on every call (1019 on a WebSocket opened before).
pub async fn start_with(
    config: &RpcServerConfig,
    token: &str,
    authority: Option<Arc<dyn Authority>>,
    methods: impl Into<Methods>,
) -> Result<(SocketAddr, ServerHandle)> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadToken);
    }
    config.validate().map_err(Error::Config)?;
    let limits = ServerConfig::builder()
        // Never reached: the limits in front count WebSockets and HTTP requests apart, so
        // that idle WebSockets cannot take the room of HTTP calls.
        .max_connections(
            config
                .max_ws_connections
                .saturating_add(config.max_http_requests),
        )
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        // A client that vanished without closing (no pong within 40 s) frees its slot.
        .enable_ws_ping(PingConfig::new())
        .build();
    let bind_error = |source| Error::Bind {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let service = Server::builder()
        .set_config(limits)
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(AuthLayer::new(token, authority.clone()))
                .layer(LimitLayer::new(Limits::new(config))),
        )
        // Every call checked against its caller's credential (scope.rs), then its parameters
        // against the API's table (params.rs).
        .set_rpc_middleware(
            RpcServiceBuilder::new()
                .layer(ScopeLayer::new(authority))
                .layer(CheckParamsLayer),
        )
        .to_service_builder();
    let methods: Methods = methods.into();
    let connections = OpenConnections::new(config);
    let idle = Duration::from_secs(config.idle_timeout_secs.into());
    let (stop, handle) = stop_channel();
    // jsonrpsee's own accept loop does not tell the middleware where a request comes from:
    // this one does (the per-source limits need it). Every connection holds a clone of `stop`,
    // so `handle.stopped()` resolves once they have all ended.
    tokio::spawn(async move {
        let mut failures_in_a_row = 0u64;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.clone().shutdown() => return,
            };
            let (socket, remote) = match accepted {
                Ok(accepted) => {
                    failures_in_a_row = 0;
                    accepted
                }
                Err(e) => {
                    // Out of descriptors, say: the listener goes on after a pause, and says
                    // so once per 100 failures in a row (10 s), not each time.
                    if failures_in_a_row.is_multiple_of(100) {
                        tracing::warn!(
                            failures_in_a_row,
                            "RPC: accept failed: {e}; retrying every {} ms",
                            ACCEPT_RETRY.as_millis()
                        );
                    }
                    failures_in_a_row += 1;
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            // Past a connection cap the socket is closed before anything is read.
            let Some(slot) = connections.open(remote.ip()) else {
                drop(socket);
                continue;
            };
            let _ = socket.set_nodelay(true);
            let request_seen = Arc::new(Notify::new());
            let per_request = PerConnection {
                service: service.clone(),
                methods: methods.clone(),
                stop: stop.clone(),
                caller: Caller::Source(remote.ip()),
                slot: Arc::new(slot),
                request_seen: Arc::clone(&request_seen),
            };
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                if let Err(e) = serve(socket, per_request, request_seen, stopped, idle).await {
                    tracing::debug!(%remote, "RPC connection ended: {e}");
                }
            });
        }
    });
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the RPC server listens beyond loopback without TLS: the bearer token crosses the network in clear; prefer 127.0.0.1 and an SSH tunnel"
        );
    }
    tracing::info!(%addr, "RPC listening (HTTP and WebSocket)");
    Ok((addr, handle))
}

/// jsonrpsee's service for one connection, each request marked with where it comes from.
#[derive(Clone)]
struct PerConnection<R, L> {
    service: TowerServiceBuilder<R, L>,
    methods: Methods,
    stop: StopHandle,
    caller: Caller,
    /// The connection's place among the open ones: each request carries a clone, so an
    /// upgraded WebSocket (which keeps its request's extensions) holds it until it ends.
    slot: Arc<ConnectionSlot>,
    /// Told of each request (the first-request timeout).
    request_seen: Arc<Notify>,
}

impl<R, L> Service<HttpRequest<Incoming>> for PerConnection<R, L>
where
    R: Clone,
    L: Clone,
    TowerService<R, L>: Service<
            HttpRequest<Incoming>,
            Response = HttpResponse,
            Error = BoxError,
            Future = ResponseFuture,
        >,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: HttpRequest<Incoming>) -> ResponseFuture {
        self.request_seen.notify_one();
        request.extensions_mut().insert(self.caller);
        request.extensions_mut().insert(Arc::clone(&self.slot));
        self.service
            .clone()
            .build(self.methods.clone(), self.stop.clone())
            .call(request)
    }
}
