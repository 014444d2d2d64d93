//! Serving: the accept loop (bounded connections, a header-read timeout), routing, and a paid
//! request's life — its payment taken, the upstream asked, the answer passed on with its
//! receipt, or the payment given back when the upstream failed. The paid part runs in a task
//! of its own: a buyer that disconnects mid-request does not cut it between payment and
//! answer (its answer is kept for a retry with the same idempotency key).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use farthing_core::format_amount;
use farthing_http402::mpp;
use farthing_http402::x402::{self, SettleResponse};
use farthing_http402::{FARTHING_SCHEME, network, rfc3339};
use farthing_rpc::FarthingApiClient;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;

use crate::offer::{Priced, error};
use crate::proxy::{UpstreamFailure, forward};
use crate::take::{Refusal, Taken};
use crate::{Inner, lock};

/// Answers kept for retries under an idempotency key.
const KEPT_REPLIES: usize = 10_000;
/// The largest answer kept for a retry.
const KEPT_REPLY_BYTES: usize = 1 << 20;
/// The most bytes of answers kept in all (the oldest go first).
const KEPT_BYTES: usize = 64 << 20;

type Reply = Response<Bytes>;

/// Paid answers by idempotency key: (the payment header, status, headers, body).
#[derive(Default)]
pub(crate) struct Replies {
    by_key: HashMap<String, (Bytes, StatusCode, http::HeaderMap, Bytes)>,
    order: VecDeque<String>,
    bytes: usize,
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Accept buyers' connections until the task is aborted.
pub(crate) async fn accept_loop(listener: tokio::net::TcpListener, inner: Arc<Inner>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(inner.config.max_connections));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "gateway accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        tokio::spawn(async move {
            // Each request runs in a task spawned when hyper hands it over, not when hyper first
            // polls its future (it may drop it unpolled when the buyer hangs up at once): a
            // paid request is never cut between its payment and its answer.
            let service = service_fn(move |request| {
                let task = tokio::spawn(handle(inner.clone(), request));
                async move {
                    let reply = task.await.unwrap_or_else(|e| {
                        error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), None)
                    });
                    Ok::<_, Infallible>(reply.map(Full::new))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

async fn handle(inner: Arc<Inner>, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let (method, path) = (parts.method.as_str(), parts.uri.path());
    if !is_plain_path(path) {
        return error(
            StatusCode::BAD_REQUEST,
            "the path has empty, `.` or `..` segments, or encoded dots or slashes: routes match plain paths only",
            None,
        );
    }
    if let Some(at) = inner
        .priced
        .iter()
        .position(|(r, _)| r.matches(method, path))
    {
        return priced(&inner, at, &parts, body).await;
    }
    if inner.config.free.iter().any(|r| r.matches(method, path)) {
        let Some(body) = read_body(&inner, body).await else {
            return too_large(&inner);
        };
        inner.stats.free.fetch_add(1, Relaxed);
        return match forward(
            &inner.upstream,
            &inner.upstream_base,
            &parts,
            body,
            &[],
            limits(&inner),
        )
        .await
        {
            Ok(answer) => answer,
            Err(failure) => error(StatusCode::BAD_GATEWAY, &failure.to_string(), None),
        };
    }
    error(
        StatusCode::NOT_FOUND,
        &format!("no route for {method} {path} on this gateway"),
        None,
    )
}

/// A path routes can be matched against as written: no `//`, `.` or `..` segment, no
/// percent-encoded dot or slash (which the upstream might decode into one).
fn is_plain_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.starts_with('/')
        && !lower.contains("%2e")
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !path.contains('\\')
        && path[1..].split('/').enumerate().all(|(i, seg)| {
            seg != "." && seg != ".." && (!seg.is_empty() || i == path[1..].split('/').count() - 1)
        })
}

async fn priced(
    inner: &Arc<Inner>,
    at: usize,
    parts: &http::request::Parts,
    body: Incoming,
) -> Reply {
    let (route, price) = &inner.priced[at];
    let (method, path) = (parts.method.as_str(), parts.uri.path());
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(&inner.realm);
    let query = parts.uri.path_and_query().map_or(path, |p| p.as_str());
    let priced = Priced {
        method,
        path,
        route,
        url: format!("http://{host}{query}"),
        price: *price,
        description: route.description.as_deref(),
    };
    paid(inner, &priced, parts, body).await
}

fn limits(inner: &Inner) -> (Duration, usize) {
    (
        Duration::from_secs(inner.config.upstream_timeout_secs),
        inner.config.max_response_bytes,
    )
}

/// The request body, whole: `None` past the size limit, cut, or slower than 30 s.
async fn read_body(inner: &Inner, body: Incoming) -> Option<Bytes> {
    let read = Limited::new(body, inner.config.max_request_bytes).collect();
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .ok()?
        .ok()
        .map(|b| b.to_bytes())
}

fn too_large(inner: &Inner) -> Reply {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the request body is larger than {} bytes (or was cut, or took over 30 s): nothing was paid",
            inner.config.max_request_bytes
        ),
        None,
    )
}

/// The payment headers of a request: x402's, or an MPP credential.
#[derive(Clone, Copy)]
enum Payment<'a> {
    X402(&'a [u8]),
    Mpp(&'a [u8]),
}

async fn paid(
    inner: &Arc<Inner>,
    priced: &Priced<'_>,
    parts: &http::request::Parts,
    body: Incoming,
) -> Reply {
    let now = unix_now();
    let payment = match (
        parts
            .headers
            .get(x402::PAYMENT_SIGNATURE)
            .or_else(|| parts.headers.get("x-payment")),
        parts.headers.get(header::AUTHORIZATION).filter(|v| {
            v.as_bytes().len() > 8 && v.as_bytes()[..8].eq_ignore_ascii_case(b"payment ")
        }),
    ) {
        (Some(header), _) => Payment::X402(header.as_bytes()),
        (None, Some(header)) => Payment::Mpp(header.as_bytes()),
        (None, None) => {
            inner.stats.challenged.fetch_add(1, Relaxed);
            return inner.payment_required(priced, "payment required", now);
        }
    };
    let raw = match payment {
        Payment::X402(b) | Payment::Mpp(b) => b,
    };
    // An x402 header is decoded once, here: its payment-identifier may key the reply.
    let decoded = match payment {
        Payment::X402(header) => {
            match x402::decode::<x402::PaymentPayload>(header, "PaymentPayload") {
                Ok(payload) => Some(payload),
                Err(e) => {
                    let refusal = Refusal::Malformed(format!("PAYMENT-SIGNATURE: {e}"));
                    return refused(inner, priced, refusal, false, now);
                }
            }
        }
        Payment::Mpp(_) => None,
    };
    let key = idempotency_key(parts, decoded.as_ref());
    // The payment header itself tells a retry from another payment (compared whole: no hash).
    let fingerprint = key.as_ref().map(|_| Bytes::copy_from_slice(raw));
    if let (Some(key), Some(fingerprint)) = (&key, &fingerprint) {
        match lock(&inner.replies).by_key.get(key) {
            Some((fp, status, headers, body)) if fp == fingerprint => {
                let mut reply = Response::new(body.clone());
                *reply.status_mut() = *status;
                *reply.headers_mut() = headers.clone();
                return reply;
            }
            Some(_) => {
                return error(
                    StatusCode::CONFLICT,
                    &format!("idempotency key {key:?} was used with another payment"),
                    None,
                );
            }
            None => {}
        }
    }
    let Some(body) = read_body(inner, body).await else {
        return too_large(inner);
    };
    let taken = match (payment, decoded) {
        (Payment::X402(_), Some(payload)) => inner.take_x402(priced, payload, now).await,
        (Payment::X402(_), None) => Err(Refusal::Malformed("PAYMENT-SIGNATURE".into())),
        (Payment::Mpp(header), _) => match mpp::credential(header) {
            Ok(Some(credential)) => inner.take_mpp(priced, credential, now).await,
            Ok(None) => Err(Refusal::Malformed("not a Payment credential".into())),
            Err(e) => Err(Refusal::Malformed(format!("Authorization: Payment: {e}"))),
        },
    };
    let mpp = matches!(payment, Payment::Mpp(_));
    let taken = match taken {
        Ok(taken) => taken,
        Err(refusal) => return refused(inner, priced, refusal, mpp, now),
    };
    let next = match &taken {
        Taken::Channel { .. } => Some(inner.next_offer(priced, now)),
        Taken::Collected { .. } => None,
    };
    let what = format!("{} {}", priced.method, priced.path);
    let reply = finish(inner, parts, body, taken, next, &what).await;
    if let (Some(key), Some(fingerprint)) = (key, fingerprint)
        && reply.status() != StatusCode::BAD_GATEWAY
        && reply.status() != StatusCode::GATEWAY_TIMEOUT
    {
        keep_reply(inner, key, fingerprint, &reply);
    }
    reply
}

fn idempotency_key(
    parts: &http::request::Parts,
    payload: Option<&x402::PaymentPayload>,
) -> Option<String> {
    if let Some(key) = parts
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 128)
    {
        return Some(format!("h:{key}"));
    }
    payload
        .and_then(x402::PaymentPayload::payment_identifier)
        .filter(|id| (16..=128).contains(&id.len()))
        .map(|id| format!("p:{id}"))
}

fn keep_reply(inner: &Inner, key: String, fingerprint: Bytes, reply: &Reply) {
    let bytes = reply.body().clone();
    let size = bytes.len() + fingerprint.len();
    if bytes.len() > KEPT_REPLY_BYTES {
        return;
    }
    let mut replies = lock(&inner.replies);
    while replies.order.len() >= KEPT_REPLIES || replies.bytes + size > KEPT_BYTES {
        let Some(old) = replies.order.pop_front() else {
            break;
        };
        if let Some((fp, _, _, body)) = replies.by_key.remove(&old) {
            replies.bytes -= body.len() + fp.len();
        }
    }
    replies.bytes += size;
    replies.order.push_back(key.clone());
    replies.by_key.insert(
        key,
        (fingerprint, reply.status(), reply.headers().clone(), bytes),
    );
}

/// The answer to a refused payment: 400 for a malformed header, else a fresh 402 saying why.
fn refused(inner: &Inner, priced: &Priced<'_>, refusal: Refusal, mpp: bool, now: u64) -> Reply {
    let (status, reason, message) = match refusal {
        Refusal::Malformed(m) => (StatusCode::BAD_REQUEST, "invalid_payload".to_owned(), m),
        Refusal::Unpaid(reason, m) => (StatusCode::PAYMENT_REQUIRED, reason, m),
        Refusal::Node(m) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the seller's node cannot take payments right now ({m}); retry later"),
                None,
            );
        }
    };
    let mut reply = if status == StatusCode::PAYMENT_REQUIRED {
        inner.payment_required(priced, &format!("{reason}: {message}"), now)
    } else {
        error(status, &message, Some(json!({ "reason": reason })))
    };
    if mpp {
        let problem = json!({
            "type": format!("https://paymentauth.org/problems/{}", if status == StatusCode::BAD_REQUEST { "malformed-credential" } else { "verification-failed" }),
            "title": reason,
            "status": status.as_u16(),
            "detail": message,
        });
        *reply.body_mut() = Bytes::from(problem.to_string());
        reply.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
    } else {
        let failure = SettleResponse {
            success: false,
            error_reason: Some(reason),
            network: network(inner.node.chain_id),
            ..SettleResponse::default()
        };
        if let Ok(value) = HeaderValue::from_str(&x402::encode(&failure)) {
            reply.headers_mut().insert(x402::PAYMENT_RESPONSE, value);
        }
    }
    reply
}

/// Ask the upstream and answer with the receipt, or give the payment back.
async fn finish(
    inner: &Inner,
    parts: &http::request::Parts,
    body: Bytes,
    taken: Taken,
    next: Option<String>,
    what: &str,
) -> Reply {
    let (payer, amount, reference) = match &taken {
        Taken::Channel { redeemed, .. } => (redeemed.payer, redeemed.amount.clone(), String::new()),
        Taken::Collected {
            collected, amount, ..
        } => (
            collected.payer,
            format_amount(*amount, inner.node.decimals),
            collected.tx_hash.to_string(),
        ),
    };
    let extra = [
        ("x-farthing-payer", payer.to_string()),
        ("x-farthing-paid", amount.clone()),
    ];
    match forward(
        &inner.upstream,
        &inner.upstream_base,
        parts,
        body,
        &extra,
        limits(inner),
    )
    .await
    {
        Ok(answer) => {
            inner.stats.paid.fetch_add(1, Relaxed);
            let mut reply = answer;
            let headers = reply.headers_mut();
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            receipt(inner, &taken, headers);
            if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
                headers.insert(x402::FARTHING_NEXT, next);
            }
            tracing::debug!(%payer, %amount, reference, what, "paid request served");
            reply
        }
        Err(failure) => refund(inner, &taken, &failure).await,
    }
}

fn receipt(inner: &Inner, taken: &Taken, headers: &mut http::HeaderMap) {
    let response = match taken {
        Taken::Channel { redeemed, .. } => SettleResponse {
            success: true,
            payer: Some(redeemed.payer.to_string()),
            transaction: String::new(),
            network: network(inner.node.chain_id),
            amount: farthing_core::parse_amount(&redeemed.amount, inner.node.decimals, u128::MAX)
                .ok()
                .map(|a| a.to_string()),
            channel_id: Some(redeemed.channel_id),
            nonce: Some(redeemed.nonce),
            cumulative: farthing_core::parse_amount(
                &redeemed.received_total,
                inner.node.decimals,
                u128::MAX,
            )
            .ok()
            .map(|a| a.to_string()),
            ..SettleResponse::default()
        },
        Taken::Collected {
            collected,
            amount,
            mpp: true,
            challenge,
        } => {
            let receipt = mpp::receipt(
                "evm",
                &collected.tx_hash.to_string(),
                &rfc3339(unix_now()),
                json!({ "challengeId": challenge, "amount": amount.to_string() }),
            );
            if let Ok(value) = HeaderValue::from_str(&receipt) {
                headers.insert(mpp::PAYMENT_RECEIPT, value);
            }
            return;
        }
        Taken::Collected {
            collected, amount, ..
        } => SettleResponse {
            success: true,
            payer: Some(collected.payer.to_string()),
            transaction: collected.tx_hash.to_string(),
            network: network(inner.node.chain_id),
            amount: Some(amount.to_string()),
            ..SettleResponse::default()
        },
    };
    if let Ok(value) = HeaderValue::from_str(&x402::encode(&response)) {
        headers.insert(x402::PAYMENT_RESPONSE, value);
    }
}

/// The upstream failed: give the payment back, and say so (502, or 504 for a timeout).
async fn refund(inner: &Inner, taken: &Taken, failure: &UpstreamFailure) -> Reply {
    let client = match inner.node_client().await {
        Ok(client) => client,
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "{failure}; the payment could not be given back yet (the seller's node is unreachable: {e}): the seller's history has it"
                ),
                None,
            );
        }
    };
    let outcome = match taken {
        Taken::Channel {
            challenge,
            redeemed,
        } => client
            .pay(
                Some(redeemed.channel_id),
                None,
                redeemed.amount.clone(),
                Some(format!("refund:{challenge}")),
                Some(format!("refund:{challenge}")),
            )
            .await
            .map(|paid| json!({ "refunded": true, "how": FARTHING_SCHEME, "channelId": paid.channel_id, "nonce": paid.nonce, "amount": paid.amount })),
        Taken::Collected { collected, .. } => client
            .refund_collection(collected.tx_hash)
            .await
            .map(|back| json!({ "refunded": true, "how": "transfer", "transaction": back.tx_hash.to_string(), "amount": back.amount })),
    };
    let refund = match outcome {
        Ok(refund) => {
            inner.stats.refunded.fetch_add(1, Relaxed);
            refund
        }
        Err(e) => {
            tracing::warn!(error = %e, "a payment for a failed upstream request was not refunded");
            json!({ "refunded": false, "error": e.to_string() })
        }
    };
    let status = match failure {
        UpstreamFailure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let mut reply = error(
        status,
        &format!("{failure}; the payment is given back"),
        Some(json!({ "refund": refund })),
    );
    let response = SettleResponse {
        success: false,
        error_reason: Some("upstream_failed".into()),
        network: network(inner.node.chain_id),
        refund: Some(refund),
        ..SettleResponse::default()
    };
    if let Ok(value) = HeaderValue::from_str(&x402::encode(&response)) {
        reply.headers_mut().insert(x402::PAYMENT_RESPONSE, value);
    }
    reply
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_paths_are_routed() {
        for good in ["/", "/data", "/articles/1", "/articles/", "/a.b/c"] {
            assert!(super::is_plain_path(good), "{good}");
        }
        for bad in [
            "/public/../data",
            "/./data",
            "//data",
            "/a//b",
            "/a/..",
            "/%2e%2e/data",
            "/a%2Fb",
            "/a\\b",
        ] {
            assert!(!super::is_plain_path(bad), "{bad}");
        }
    }
}
