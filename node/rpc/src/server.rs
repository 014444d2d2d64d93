//! Starting the server: one port for HTTP and WebSocket, the bearer-token check in front of
//! everything, and the limits of [`RpcServerConfig`] (R4, R5).

use std::net::{Ipv4Addr, SocketAddr};

use jsonrpsee::Methods;
use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use serde::{Deserialize, Serialize};

use crate::auth::AuthLayer;
use crate::params::CheckParamsLayer;
use crate::{Error, Result};

/// The RPC server's settings, part of the node's configuration file.
///
/// | field | default | what it bounds |
/// |---|---|---|
/// | `listen` | `127.0.0.1:7750` | where the server listens; loopback only unless changed (R5) |
/// | `max_connections` | 64 | WebSocket connections plus HTTP requests being served at once; more get HTTP 429 |
/// | `max_request_bytes` | 65 536 | one request (HTTP body or WebSocket message); larger ones are refused |
/// | `max_response_bytes` | 10 485 760 | one response; a larger one is replaced by an error |
/// | `max_subscriptions_per_connection` | 16 | subscriptions one WebSocket connection may hold |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcServerConfig {
    /// Address and port to listen on (port 0: any free port, see [`start`]'s result).
    pub listen: SocketAddr,
    /// WebSocket connections plus in-flight HTTP requests served at once.
    pub max_connections: u32,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: u32,
    /// Largest response sent, in bytes.
    pub max_response_bytes: u32,
    /// Subscriptions one WebSocket connection may hold.
    pub max_subscriptions_per_connection: u32,
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
}

impl Default for RpcServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, Self::DEFAULT_PORT)),
            max_connections: 64,
            max_request_bytes: 64 * 1024,
            max_response_bytes: 10 * 1024 * 1024,
            max_subscriptions_per_connection: 16,
        }
    }
}

/// Start serving `methods` (the daemon's `FarthingApiServer::into_rpc()`) on `config.listen`,
/// HTTP and WebSocket on the same port, to callers that send `Authorization: Bearer <token>`.
///
/// Returns the address actually bound (so port 0 works) and the handle that stops the server
/// (`handle.stop()`, then `handle.stopped().await`); dropping the handle stops it too. Must
/// run inside a tokio runtime.
pub async fn start(
    config: &RpcServerConfig,
    token: &str,
    methods: impl Into<Methods>,
) -> Result<(SocketAddr, ServerHandle)> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadToken);
    }
    let limits = ServerConfig::builder()
        .max_connections(config.max_connections)
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .build();
    let bind_error = |source| Error::Bind {
        addr: config.listen,
        source,
    };
    let server = Server::builder()
        .set_config(limits)
        .set_http_middleware(tower::ServiceBuilder::new().layer(AuthLayer::new(token)))
        .set_rpc_middleware(RpcServiceBuilder::new().layer(CheckParamsLayer))
        .build(config.listen)
        .await
        .map_err(bind_error)?;
    let addr = server.local_addr().map_err(bind_error)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the RPC server listens beyond loopback without TLS: the bearer token crosses the network in clear; prefer 127.0.0.1 and an SSH tunnel"
        );
    }
    tracing::info!(%addr, "RPC listening (HTTP and WebSocket)");
    Ok((addr, server.start(methods)))
}
