//! Farthing's JSON-RPC API: the adapter between agents or operators and the node.
//!
//! JSON-RPC 2.0 over HTTP and WebSocket on one port (jsonrpsee), defined once by the `#[rpc]`
//! trait `FarthingApi` in [`api`]: the daemon implements the generated [`FarthingApiServer`]
//! and hands its `into_rpc()` to [`start`]; the CLI calls the generated [`FarthingApiClient`]
//! methods on [`connect_http`] or [`connect_ws`]. This crate holds the API types ([`api`]),
//! the errors ([`ApiError`]), authentication ([`ensure_token`], [`read_token`]), the limits
//! ([`RpcServerConfig`]), the server start and the clients.
//!
//! It must never hold node logic (no channel rules, no chain or store access: those live
//! behind the server trait), accept a request without the bearer token, or log the token.
//!
//! # Authentication
//!
//! Every HTTP request and every WebSocket upgrade must carry `Authorization: Bearer <token>`:
//! the admin token from `rpc.token` in the node's data dir (created with mode 0600 on first
//! start; every method, no limit), or an agent's credential (`fth1_…`, issue 15) that the
//! node's [`Authority`] verifies (see [`start_with`]). A missing, malformed, wrong, tampered,
//! expired or revoked one gets HTTP 401 before any method runs. An agent's call is checked
//! against its credential's scopes ([`scope::SCOPES`]: 1017 when it lacks one) and, on a
//! WebSocket, its expiry and revocation again on every call (1019); its spends are checked by
//! the node against the credential's per-payment max, partners, origins and budgets (1018). Larger than
//! [`RpcServerConfig::max_request_bytes`], a request gets HTTP 413 (or a JSON-RPC error on
//! WebSocket).
//!
//! # Limits (R4, R6)
//!
//! No class of client can lock the others out: WebSocket connections are capped in all and
//! per source address ([`RpcServerConfig::max_ws_connections`], `_per_source`), HTTP
//! requests in flight have caps of their own (so calls get through however many WebSockets
//! are open), and subscriptions are capped per connection and over the node
//! ([`RpcServerConfig::max_subscriptions`]; the methods that open one take a share with
//! [`subscription_slot`]). Past a connection limit a request gets HTTP 429 (`Retry-After: 1`)
//! whose plain-text body names the limit, its value and what to do, e.g. `too many WebSocket
//! connections from 127.0.0.1: it holds 8, the limit per source
//! (rpc.max_ws_connections_per_source = 8); …`.
//!
//! # Error codes
//!
//! A failed call returns a JSON-RPC error object whose `code` is stable, whose `message` says
//! what was wrong and what to do, and whose `data` carries details where listed:
//!
//! | code | [`ApiError`] variant | meaning; what to do | `data` |
//! |---|---|---|---|
//! | 1001 | [`UnknownChannel`](ApiError::UnknownChannel) | no channel with this id; `farthing_listChannels` | `{channel_id}` |
//! | 1002 | [`WrongState`](ApiError::WrongState) | the channel's state does not allow the call; the message names the state and the call that fits | `{channel_id, state}` |
//! | 1003 | [`InsufficientFunds`](ApiError::InsufficientFunds) | token balance or allowance too low; the message says how much is missing | `{kind, needed, available, missing}` |
//! | 1004 | [`InvalidAmount`](ApiError::InvalidAmount) | amount malformed, too precise for the token, zero, or out of range | — |
//! | 1005 | [`InvalidParams`](ApiError::InvalidParams) | another parameter is wrong (e.g. partner is the zero address or the node itself) | — |
//! | 1006 | [`ChainUnavailable`](ApiError::ChainUnavailable) | the chain RPC does not answer; retry later | — |
//! | 1007 | [`Degraded`](ApiError::Degraded) | the node is degraded and takes no new risk; reads still work | `{reasons}` |
//! | 1008 | [`Unconfirmed`](ApiError::Unconfirmed) | the transaction was sent but its receipt has not arrived in time; do NOT send it again, the node follows it | `{tx_hash}` |
//! | 1009 | [`Refused`](ApiError::Refused) | the contract refuses the call (its error is named) or the transaction reverted; nothing changed | — |
//! | 1010 | [`PaymentFailed`](ApiError::PaymentFailed) | a payment was not made: no link to the partner (`farthing_connectPeer`; nothing was signed), or refused by the partner (reason given; the signed amount travels with the next payment) | — |
//! | 1011 | [`Undelivered`](ApiError::Undelivered) | signed and stored, but the link dropped (or the partner stayed silent) before its acknowledgement: do not pay again; it is delivered when the link is back — repeat with the same idempotency key to learn the outcome | `channel_id`, `nonce` |
//! | 1012 | [`WithdrawFailed`](ApiError::WithdrawFailed) | a withdrawal was not made: no link, no answer, or refused for now by this node's or the partner's rules (e.g. one withdrawal per channel is pending); the message gives amounts in token units and when a retry can work | — |
//! | 1013 | [`NotReady`](ApiError::NotReady) | the channel cannot take payments yet: on-chain but not confirmed here yet, no link to the partner, or the partner's node has not confirmed it; `farthing_waitChannel` waits until it can | `{channel_id}` |
//! | 1014 | [`NoContracts`](ApiError::NoContracts) | the chain RPC answers but the node's contracts are not on that chain (a restarted devnet, the wrong RPC or deployment file); redeploy or repoint the node, then restart it | — |
//! | 1015 | [`TooManySubscriptions`](ApiError::TooManySubscriptions) | the node serves `rpc.max_subscriptions` subscriptions over all connections; unsubscribe ones no longer needed, or raise the limit | `{limit}` |
//! | 1016 | [`PaymentRejected`](ApiError::PaymentRejected) | a payment presented for a sale is not acceptable; `reason` says why, nothing was spent | `{reason}` |
//! | 1017 | [`ScopeDenied`](ApiError::ScopeDenied) | the caller's credential lacks the scope this method needs; ask the operator for one that has it | `{method, scope}` |
//! | 1018 | [`OverLimit`](ApiError::OverLimit) | the caller's credential does not allow this spend: per-payment max, partner, origin, or a budget; the message gives amounts in token units and when the budget frees | `{limit, frees_at}` |
//! | 1019 | [`CredentialInvalid`](ApiError::CredentialInvalid) | the credential a WebSocket was opened with expired or was revoked since; reconnect with a valid one | `{reason}` |
//! | 1099 | [`Internal`](ApiError::Internal) | a bug or unexpected failure; see the node's log | — |
//!
//! Requests that are not valid JSON-RPC get jsonrpsee's standard errors (-32700 parse error,
//! -32600 invalid request, -32601 method not found, -32602 invalid params); a subscription
//! past `rpc.max_subscriptions_per_connection` on one connection gets -32006.
//!
//! # Parameters and discovery
//!
//! Every method takes its parameters the same way: by name, an object whose keys are the
//! `snake_case` names (`camelCase` also accepted), e.g. `{"channel_id": 1, "amount": "2.5"}`;
//! or by position, an array in the order listed, e.g. `[1, "2.5"]`; optional ones may be left
//! out or `null`. A name the method does not take, or an extra position, is refused (-32602).
//! `farthing_openChannel` and `farthing_pay` also accept their old single-object form
//! (`{"params": {…}}` or `[{…}]`). `farthing_discover` (also `rpc.discover`) answers the
//! OpenRPC 1.2 document of the API ([`discover`]): every method and subscription, its
//! parameters, result schema and error codes — the same table the parameter check uses.

mod accept;
pub mod api;
mod auth;
mod client;
mod commerce;
mod credential_spec;
mod credentials;
pub mod discover;
mod error;
mod limits;
mod params;
mod peers;
pub mod principal;
mod requests;
pub mod scope;
mod server;
mod state;

pub use api::{
    Balances, CHANNEL_UPDATE_KINDS, ChannelRole, ChannelState, ChannelUpdate, ChannelView,
    ClaimResult, Disconnected, FarthingApiClient, FarthingApiServer, Health, HealthStatus,
    LinkCounts, NodeInfo, OpenParams, PayParams, PayResult, PaymentPage, PaymentView, PeerView,
    parse_amount_param,
};
pub use auth::{
    TOKEN_FILE, ensure_secret, ensure_token, read_credential_file, read_token, token_path,
};
pub use client::{connect_http, connect_ws, refused_with};
pub use commerce::{Collected, FetchPaid, FetchResult, Redeemed, TransferAuthorization};
pub use credential_spec::SpecError;
pub use credentials::{BudgetView, CreatedCredential, CredentialSpec, CredentialView, Revoked};
pub use error::{AmountProblem, ApiError, Shortfall, code};
pub use jsonrpsee::core::ClientError;
pub use jsonrpsee::server::ServerHandle;
pub use jsonrpsee_http_client::HttpClient;
pub use jsonrpsee_ws_client::WsClient;
pub use limits::{SubscriptionSlot, subscription_slot};
pub use principal::{Agent, Authority, Denied, Principal};
pub use server::{RpcServerConfig, start, start_with};

use std::net::SocketAddr;
use std::path::PathBuf;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong setting up the RPC side (as opposed to a call, see [`ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token file cannot be created or read.
    #[error("cannot create or read the RPC token file {}: {source}", path.display())]
    TokenIo {
        /// The token file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// There is no token file: the data dir is not a node's (or the node never started).
    #[error(
        "no RPC token at {}: point --data-dir (or FARTHING_DATA_DIR) at the node's data directory; the node writes rpc.token there when it first starts",
        path.display()
    )]
    TokenMissing {
        /// Where the token file was looked for.
        path: PathBuf,
    },
    /// The token file is readable by group or others.
    #[error(
        "the RPC token file {} can be read by group or others (mode {mode:o}): run `chmod 600 {}` and try again",
        path.display(),
        path.display()
    )]
    TokenInsecure {
        /// The token file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token file does not hold a 64-character hex token.
    #[error(
        "the RPC token file {} does not hold a 64-character hex token: delete it and start the node to make a new one",
        path.display()
    )]
    TokenMalformed {
        /// The token file.
        path: PathBuf,
    },
    /// A credential file (`--credential-file`) is missing, readable by others, or holds no
    /// token; `problem` says what to do.
    #[error("credential file {}: {problem}", path.display())]
    CredentialFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// The token given to the server or a client is empty or not printable ASCII.
    #[error("the RPC token is empty or not printable ASCII: use the content of rpc.token as it is")]
    BadToken,
    /// A limit in the RPC settings is unusable (the text names the key and what fits).
    #[error("invalid RPC settings: {0}")]
    Config(String),
    /// The server cannot listen on the configured address.
    #[error(
        "cannot listen for RPC on {addr}: {source}; choose another rpc listen address or stop what uses it"
    )]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A client cannot be set up for this URL.
    #[error(
        "cannot connect to the node's RPC at {url}: {source}; is the node running, and is the URL right?"
    )]
    Connect {
        /// The URL given.
        url: String,
        /// jsonrpsee's error.
        source: ClientError,
    },
}
