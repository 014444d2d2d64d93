//! `farthing gateway`: an HTTP 402 reverse proxy in front of a seller's API. Priced routes
//! answer an unpaid request with `402` carrying both x402 v2's `PAYMENT-REQUIRED` (a `farthing`
//! channel offer and an `exact` EIP-3009 one) and MPP's `WWW-Authenticate: Payment` (EVM
//! `charge`); a paid request is served once its payment is durable at the seller's node
//! ([`take`]), with `PAYMENT-RESPONSE` / `Payment-Receipt`; free routes pass; anything else is
//! 404.
//!
//! Rules, each tested: every paid request maps to exactly one payment, and one payment never
//! pays for two requests (challenge ids are HMAC-bound to route and price, a channel payment is
//! redeemed once at the node, an authorization is collected once on-chain); a retried request
//! with the same `Idempotency-Key` (or x402 `payment-identifier`) and the same payment gets the
//! first answer again, with another payment a 409; when the upstream fails (unreachable, past
//! its timeout, 5xx, cut), the buyer pays nothing: a channel payment is paid back at once over
//! the same channel, a collection is sent back on-chain ([`serve`]).
//!
//! Hyper (not axum): the gateway is one handler around a proxy; hyper gives the connection
//! limits and the disconnect behaviour directly, with no new dependencies.

pub mod config;
mod offer;
mod proxy;
mod serve;
mod take;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alloy_primitives::Address;
use farthing_core::parse_amount;
use farthing_http402::ChallengeKey;
use farthing_rpc::{FarthingApiClient, WsClient};
use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use config::{GatewayConfig, RouteConfig};

/// What the gateway learnt of its node at start.
#[derive(Debug, Clone)]
pub(crate) struct NodeFacts {
    pub(crate) address: Address,
    pub(crate) token: Address,
    pub(crate) manager: Address,
    pub(crate) chain_id: u64,
    pub(crate) decimals: u8,
    pub(crate) symbol: String,
    /// The token's EIP-712 domain (name, version), which `exact` payers sign in.
    pub(crate) token_name: String,
    pub(crate) token_version: String,
}

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A setting is wrong.
    #[error("gateway config: {0}")]
    Config(String),
    /// The node could not be reached.
    #[error("the seller's node at {url}: {reason}")]
    Node {
        /// Its RPC URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The listener.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The challenge key file.
    #[error("challenge key {path}: {reason}")]
    Secret {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Counters, for the log and the benchmark.
#[derive(Debug, Default)]
pub struct Stats {
    /// Paid requests served.
    pub paid: std::sync::atomic::AtomicU64,
    /// Free requests served.
    pub free: std::sync::atomic::AtomicU64,
    /// 402s answered.
    pub challenged: std::sync::atomic::AtomicU64,
    /// Payments given back after an upstream failure.
    pub refunded: std::sync::atomic::AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) config: GatewayConfig,
    pub(crate) priced: Vec<(RouteConfig, u128)>,
    pub(crate) node: NodeFacts,
    node_link: NodeLink,
    pub(crate) key: ChallengeKey,
    pub(crate) realm: String,
    pub(crate) suggested_deposit: u128,
    pub(crate) upstream: proxy::Upstream,
    pub(crate) upstream_base: Uri,
    spent: Mutex<take::Spent>,
    pub(crate) replies: Mutex<serve::Replies>,
    pub(crate) stats: Arc<Stats>,
}

/// The WebSocket to the seller's node, opened again when it dropped (the node restarted):
/// the call that finds it down waits for the new one.
pub(crate) struct NodeLink {
    url: String,
    token: String,
    client: tokio::sync::Mutex<Arc<WsClient>>,
}

impl NodeLink {
    async fn get(&self) -> Result<Arc<WsClient>, farthing_rpc::ClientError> {
        let mut client = self.client.lock().await;
        if !client.is_connected() {
            tracing::warn!(url = %self.url, "the link to the seller's node dropped; reconnecting");
            let fresh = farthing_rpc::connect_ws(&self.url, &self.token)
                .await
                .map_err(|e| farthing_rpc::ClientError::Custom(e.to_string()))?;
            *client = Arc::new(fresh);
        }
        Ok(client.clone())
    }
}

impl Inner {
    /// The node's RPC client, reconnected if it dropped.
    pub(crate) async fn node_client(&self) -> Result<Arc<WsClient>, farthing_rpc::ClientError> {
        self.node_link.get().await
    }

    pub(crate) fn spend_challenge(&self, challenge: &str) -> bool {
        lock(&self.spent).insert(challenge)
    }

    pub(crate) fn unspend_challenge(&self, challenge: &str) {
        lock(&self.spent).remove(challenge);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running gateway.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Stop listening.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Wait until the accept loop ends.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Start the gateway: connect to the node, read its facts, load (or make) the challenge key,
/// listen.
pub async fn start(config: GatewayConfig) -> Result<Gateway, GatewayError> {
    let node_error = |reason: String| GatewayError::Node {
        url: config.node_url.clone(),
        reason,
    };
    let token = match &config.node_credential_file {
        Some(file) => farthing_rpc::read_credential_file(file),
        None => farthing_rpc::read_token(&config.node_data_dir),
    }
    .map_err(|e| node_error(format!("no RPC token: {e}")))?;
    let client = farthing_rpc::connect_ws(&config.node_url, &token)
        .await
        .map_err(|e| node_error(e.to_string()))?;
    let info = client.info().await.map_err(|e| node_error(e.to_string()))?;
    if let Some(file) = &config.node_credential_file {
        // Refused now rather than at the first buyer's payment.
        let me = client
            .whoami()
            .await
            .map_err(|e| node_error(e.to_string()))?;
        if let Some(scopes) = me.scopes {
            let missing: Vec<&str> = ["sell", "pay"]
                .into_iter()
                .filter(|needed| !scopes.iter().any(|s| s == needed))
                .collect();
            if !missing.is_empty() {
                return Err(node_error(format!(
                    "the credential in {} lacks the {} scope the gateway needs (sell: redeem and collect payments; pay: refund a channel payment when the upstream fails): create one with --scope sell,pay",
                    file.display(),
                    missing.join(" and ")
                )));
            }
        }
    }
    let node = NodeFacts {
        address: info.address,
        token: info.token,
        manager: info.channel_manager,
        chain_id: info.chain_id,
        decimals: info.token_decimals,
        symbol: info.token_symbol,
        token_name: info.token_name,
        token_version: info.token_version,
    };
    let price = |text: &str, what: &str| {
        parse_amount(text.trim(), node.decimals, u128::MAX)
            .map_err(|e| GatewayError::Config(format!("{what} {text:?}: {e}")))
    };
    let mut priced = Vec::new();
    for route in &config.routes {
        let text = route.price.as_deref().ok_or_else(|| {
            GatewayError::Config(format!(
                "route {} {} has no price",
                route.method, route.path
            ))
        })?;
        let amount = price(
            text,
            &format!("route {} {}: price", route.method, route.path),
        )?;
        if amount == 0 {
            return Err(GatewayError::Config(format!(
                "route {} {} is priced 0: list it under free instead",
                route.method, route.path
            )));
        }
        priced.push((route.clone(), amount));
    }
    let suggested_deposit = price(&config.suggested_deposit, "suggested_deposit")?;
    let upstream_base: Uri = config
        .upstream
        .parse()
        .ok()
        .filter(|u: &Uri| u.scheme_str() == Some("http") && u.authority().is_some())
        .ok_or_else(|| {
            GatewayError::Config(format!(
                "upstream {:?} must be http://host:port",
                config.upstream
            ))
        })?;
    if let Some(peer) = &config.peer
        && !peer.starts_with(&format!("{:#x}@", node.address))
        && !peer
            .to_ascii_lowercase()
            .starts_with(&format!("{:#x}@", node.address))
    {
        return Err(GatewayError::Config(format!(
            "peer {peer:?} is not the node's address ({}) @host:port",
            node.address
        )));
    }
    let key = load_key(&config.node_data_dir.join(&config.secret_file))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| GatewayError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| GatewayError::Listen {
            addr: config.listen,
            source,
        })?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let upstream = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let stats = Arc::new(Stats::default());
    let node_url = config.node_url.clone();
    let inner = Arc::new(Inner {
        realm: addr.to_string(),
        config,
        priced,
        node,
        node_link: NodeLink {
            url: node_url,
            token,
            client: tokio::sync::Mutex::new(Arc::new(client)),
        },
        key,
        suggested_deposit,
        upstream,
        upstream_base,
        spent: Mutex::default(),
        replies: Mutex::default(),
        stats: stats.clone(),
    });
    let task = tokio::spawn(serve::accept_loop(listener, inner));
    Ok(Gateway { addr, stats, task })
}

/// Read the challenge key, or make one (0600) at the first start.
fn load_key(path: &Path) -> Result<ChallengeKey, GatewayError> {
    let fail = |reason: String| GatewayError::Secret {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| fail("is not 32 bytes: delete it to make a new one (outstanding challenges then fail)".into()))?;
            Ok(ChallengeKey::from_bytes(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| fail(e.to_string()))?;
            write_private(path, &bytes).map_err(|e| fail(e.to_string()))?;
            Ok(ChallengeKey::from_bytes(bytes))
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
