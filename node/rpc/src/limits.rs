//! Fair shares of the RPC port (R4, R6): no class of client — idle WebSockets, a flood of HTTP
//! calls, subscribers — can lock the operator out.
//!
//! - WebSocket connections have their own cap in all and per caller, checked on the upgrade
//!   request; the slot is held by the connection (its request's extensions live exactly as
//!   long as jsonrpsee's connection task) and freed when it ends.
//! - HTTP requests in flight have their own caps, so plain calls get through however many
//!   WebSockets are open (jsonrpsee's own connection cap is set to the sum, never reached).
//! - Subscriptions are bounded per connection (jsonrpsee) and in all across the node
//!   ([`subscription_slot`], called by the methods that open one).
//!
//! A refusal is HTTP 429 whose body names the limit hit, its configured value and what to do;
//! refusals are logged at most once per 10 s with a count.
//!
//! Limits count against a [`Caller`]: the source address today; a credential's id once agents
//! have their own credentials.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::Extensions;
use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use crate::{ApiError, RpcServerConfig};

/// Who a limit counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    /// The address a connection comes from (set by the server's accept loop).
    Source(IpAddr),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source(ip) => write!(f, "{ip}"),
        }
    }
}

/// The two kinds of connection slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An open WebSocket connection.
    WebSocket,
    /// An HTTP request being served.
    Http,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_ws_connections`.
    WebSockets,
    /// `max_ws_connections_per_source`.
    WebSocketsPerSource,
    /// `max_http_requests`.
    HttpRequests,
    /// `max_http_requests_per_source`.
    HttpRequestsPerSource,
}

impl Refusal {
    /// The config key (under `rpc.`) of the limit.
    fn key(self) -> &'static str {
        match self {
            Self::WebSockets => "max_ws_connections",
            Self::WebSocketsPerSource => "max_ws_connections_per_source",
            Self::HttpRequests => "max_http_requests",
            Self::HttpRequestsPerSource => "max_http_requests_per_source",
        }
    }

    /// The response body: which limit, its value, what to do.
    fn message(self, caller: Caller, limit: u32) -> String {
        let key = self.key();
        match self {
            Self::WebSockets => format!(
                "too many WebSocket connections: the node holds {limit}, its limit (rpc.{key} = {limit}); \
                 HTTP calls still get through. Close idle WebSocket connections (only subscriptions need one), \
                 or raise rpc.{key} in the node's config\n"
            ),
            Self::WebSocketsPerSource => format!(
                "too many WebSocket connections from {caller}: it holds {limit}, the limit per source \
                 (rpc.{key} = {limit}); HTTP calls still get through. Close idle WebSocket connections \
                 (only subscriptions need one), or raise rpc.{key} in the node's config\n"
            ),
            Self::HttpRequests => format!(
                "too many HTTP requests in flight: the node serves {limit}, its limit (rpc.{key} = {limit}). \
                 Retry in a moment, send fewer calls at once, or raise rpc.{key} in the node's config\n"
            ),
            Self::HttpRequestsPerSource => format!(
                "too many HTTP requests in flight from {caller}: {limit}, the limit per source \
                 (rpc.{key} = {limit}). Retry in a moment, send fewer calls at once, or raise rpc.{key} \
                 in the node's config\n"
            ),
        }
    }
}

/// Open slots of one kind: in all and per caller.
#[derive(Debug, Default)]
struct Counts {
    total: u32,
    by_caller: HashMap<Caller, u32>,
}

/// Refusals not yet logged, and when the last log line was written.
#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

/// How often a refusal is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The RPC server's shared limits. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ws: (u32, u32),
    http: (u32, u32),
    ws_open: Mutex<Counts>,
    http_open: Mutex<Counts>,
    subscriptions: Subscriptions,
    log: Mutex<RefusalLog>,
}

impl Limits {
    pub(crate) fn new(config: &RpcServerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                ws: (
                    config.max_ws_connections,
                    config.max_ws_connections_per_source,
                ),
                http: (
                    config.max_http_requests,
                    config.max_http_requests_per_source,
                ),
                ws_open: Mutex::default(),
                http_open: Mutex::default(),
                subscriptions: Subscriptions {
                    slots: Arc::new(Semaphore::new(config.max_subscriptions as usize)),
                    limit: config.max_subscriptions,
                },
                log: Mutex::default(),
            }),
        }
    }

    fn counts(&self, kind: Kind) -> &Mutex<Counts> {
        match kind {
            Kind::WebSocket => &self.inner.ws_open,
            Kind::Http => &self.inner.http_open,
        }
    }

    /// Take a slot of `kind` for `caller`, or say which limit is full.
    fn acquire(&self, kind: Kind, caller: Caller) -> Result<Slot, (Refusal, u32)> {
        let ((total, per_caller), refusals) = match kind {
            Kind::WebSocket => (
                self.inner.ws,
                (Refusal::WebSockets, Refusal::WebSocketsPerSource),
            ),
            Kind::Http => (
                self.inner.http,
                (Refusal::HttpRequests, Refusal::HttpRequestsPerSource),
            ),
        };
        let mut counts = self
            .counts(kind)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mine = counts.by_caller.get(&caller).copied().unwrap_or(0);
        if mine >= per_caller {
            return Err((refusals.1, per_caller));
        }
        if counts.total >= total {
            return Err((refusals.0, total));
        }
        counts.total += 1;
        *counts.by_caller.entry(caller).or_insert(0) += 1;
        Ok(Slot {
            limits: self.clone(),
            kind,
            caller,
        })
    }

    /// Log a refusal, at most once per [`LOG_EVERY`] with the number since the last line.
    fn log_refusal(&self, refusal: Refusal, caller: Caller) {
        let mut log = self
            .inner
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        log.unlogged += 1;
        let now = Instant::now();
        if log.last.is_some_and(|last| now < last + LOG_EVERY) {
            return;
        }
        let count = std::mem::take(&mut log.unlogged);
        log.last = Some(now);
        drop(log);
        tracing::warn!(
            limit = refusal.key(),
            %caller,
            refused = count,
            "RPC requests refused (HTTP 429) by a connection limit (count since the last such line); see rpc.{} in the config",
            refusal.key()
        );
    }

    /// How many slots of `kind` are taken (in all, and by `caller`).
    #[cfg(test)]
    fn open(&self, kind: Kind, caller: Caller) -> (u32, u32) {
        let counts = self
            .counts(kind)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (
            counts.total,
            counts.by_caller.get(&caller).copied().unwrap_or(0),
        )
    }
}

/// One taken connection slot; freed when dropped.
#[derive(Debug)]
struct Slot {
    limits: Limits,
    kind: Kind,
    caller: Caller,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .limits
            .counts(self.kind)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(mine) = counts.by_caller.get_mut(&self.caller) {
            *mine -= 1;
            if *mine == 0 {
                counts.by_caller.remove(&self.caller);
            }
        }
    }
}

/// The node-wide subscription allowance, handed to methods through the request's extensions.
#[derive(Debug, Clone)]
struct Subscriptions {
    slots: Arc<Semaphore>,
    limit: u32,
}

/// One subscription's share of `rpc.max_subscriptions`: keep it for as long as the
/// subscription runs; dropping it frees the share.
#[derive(Debug)]
pub struct SubscriptionSlot {
    _permit: Option<OwnedSemaphorePermit>,
}

/// Take one of the node's `rpc.max_subscriptions` for a subscription about to be accepted, from
/// the extensions of the call that opens it (`#[subscription(..., with_extensions)]`). Fails
/// with [`ApiError::TooManySubscriptions`] once they are all taken; reject the pending
/// subscription with it. Without the server's limits in `extensions` (methods called
/// in-process), nothing is counted.
pub fn subscription_slot(extensions: &Extensions) -> Result<SubscriptionSlot, ApiError> {
    let Some(subscriptions) = extensions.get::<Subscriptions>() else {
        return Ok(SubscriptionSlot { _permit: None });
    };
    match Arc::clone(&subscriptions.slots).try_acquire_owned() {
        Ok(permit) => Ok(SubscriptionSlot {
            _permit: Some(permit),
        }),
        Err(_) => {
            tracing::warn!(
                limit = subscriptions.limit,
                "a subscription was refused: the node serves rpc.max_subscriptions already"
            );
            Err(ApiError::TooManySubscriptions {
                limit: subscriptions.limit,
            })
        }
    }
}

/// The tower layer that puts [`Limit`] in front of jsonrpsee (behind the token check).
#[derive(Debug, Clone)]
pub(crate) struct LimitLayer {
    limits: Limits,
}

impl LimitLayer {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limit {
            inner,
            limits: self.limits.clone(),
        }
    }
}

/// Passes a request on if its caller's share and the node's are not used up; answers 429
/// otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Limit<S> {
    inner: S,
    limits: Limits,
}

/// Whether jsonrpsee will treat `request` as a WebSocket upgrade: its own test, on the
/// headers' raw bytes (a value with obs-text bytes, which `to_str` refuses, still counts), so
/// that every connection it upgrades holds a WebSocket slot.
fn is_upgrade<B>(request: &HttpRequest<B>) -> bool {
    jsonrpsee::server::ws::is_upgrade_request(request)
}

impl<S, B> Service<HttpRequest<B>> for Limit<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        // Requests that did not come through the server's accept loop (none today) share one
        // allowance.
        let caller = request
            .extensions()
            .get::<Caller>()
            .copied()
            .unwrap_or(Caller::Source(IpAddr::from([0, 0, 0, 0])));
        let kind = if is_upgrade(&request) {
            Kind::WebSocket
        } else {
            Kind::Http
        };
        let slot = match self.limits.acquire(kind, caller) {
            Ok(slot) => slot,
            Err((refusal, limit)) => {
                self.limits.log_refusal(refusal, caller);
                return Box::pin(std::future::ready(Ok(too_many(
                    &refusal.message(caller, limit),
                ))));
            }
        };
        request
            .extensions_mut()
            .insert(self.limits.inner.subscriptions.clone());
        match kind {
            Kind::WebSocket => {
                // jsonrpsee keeps the upgrade request's extensions for as long as the
                // connection's task runs: the slot goes with them.
                request.extensions_mut().insert(Arc::new(slot));
                let response = self.inner.call(request);
                Box::pin(async move { response.await.map_err(Into::into) })
            }
            Kind::Http => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let response = response.await.map_err(Into::into);
                    drop(slot);
                    response
                })
            }
        }
    }
}

/// A 429 with `message` as its plain-text body.
fn too_many(message: &str) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(message.to_owned()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    // The connection ends after the refusal: a refused client does not keep a socket open.
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RpcServerConfig {
        RpcServerConfig {
            max_ws_connections: 3,
            max_ws_connections_per_source: 2,
            max_http_requests: 2,
            max_http_requests_per_source: 1,
            ..RpcServerConfig::ephemeral()
        }
    }

    fn source(last: u8) -> Caller {
        Caller::Source(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn slots_are_counted_per_caller_and_in_all_and_freed_on_drop() {
        let limits = Limits::new(&config());
        let (a, b, c) = (source(1), source(2), source(3));
        let a1 = limits.acquire(Kind::WebSocket, a).unwrap();
        let _a2 = limits.acquire(Kind::WebSocket, a).unwrap();
        assert_eq!(
            limits.acquire(Kind::WebSocket, a).unwrap_err(),
            (Refusal::WebSocketsPerSource, 2)
        );
        let _b1 = limits.acquire(Kind::WebSocket, b).unwrap();
        assert_eq!(
            limits.acquire(Kind::WebSocket, c).unwrap_err(),
            (Refusal::WebSockets, 3)
        );
        // HTTP has its own allowance while every WebSocket slot is taken.
        let h = limits.acquire(Kind::Http, a).unwrap();
        assert_eq!(
            limits.acquire(Kind::Http, a).unwrap_err(),
            (Refusal::HttpRequestsPerSource, 1)
        );
        let _hc = limits.acquire(Kind::Http, c).unwrap();
        drop(h);
        assert_eq!(limits.open(Kind::Http, a), (1, 0));
        drop(a1);
        assert_eq!(limits.open(Kind::WebSocket, a), (2, 1));
        let _c1 = limits.acquire(Kind::WebSocket, c).unwrap();
        assert!(limits.inner.ws_open.lock().unwrap().by_caller.len() == 3);
    }

    #[test]
    fn refusals_name_the_limit_its_value_and_what_to_do() {
        let a = source(1);
        for (refusal, needle) in [
            (Refusal::WebSockets, "rpc.max_ws_connections = 7"),
            (
                Refusal::WebSocketsPerSource,
                "rpc.max_ws_connections_per_source = 7",
            ),
            (Refusal::HttpRequests, "rpc.max_http_requests = 7"),
            (
                Refusal::HttpRequestsPerSource,
                "rpc.max_http_requests_per_source = 7",
            ),
        ] {
            let text = refusal.message(a, 7);
            assert!(text.contains(needle), "{text}");
            assert!(text.contains("raise rpc."), "{text}");
        }
        assert!(
            Refusal::WebSocketsPerSource
                .message(a, 8)
                .contains("from 127.0.0.1")
        );
    }

    #[test]
    fn the_subscription_allowance_is_shared_and_freed_on_drop() {
        let limits = Limits::new(&RpcServerConfig {
            max_subscriptions: 2,
            ..config()
        });
        let mut extensions = Extensions::new();
        extensions.insert(limits.inner.subscriptions.clone());
        let first = subscription_slot(&extensions).unwrap();
        let _second = subscription_slot(&extensions).unwrap();
        let error = subscription_slot(&extensions).unwrap_err();
        assert_eq!(error, ApiError::TooManySubscriptions { limit: 2 });
        drop(first);
        assert!(subscription_slot(&extensions).is_ok());
        // Called in-process, without the server: not counted.
        assert!(subscription_slot(&Extensions::new()).is_ok());
    }
}
