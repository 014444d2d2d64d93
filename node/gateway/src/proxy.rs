//! The upstream leg: the buyer's request goes to the seller's API without the payment
//! headers, and its answer is read whole (bounded) before the buyer gets it, so that an
//! upstream that fails — unreachable, slow past the timeout, 5xx, or cut mid-answer — is known
//! before anything is served, and the payment is given back.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// The upstream client.
pub(crate) type Upstream = Client<HttpConnector, Full<Bytes>>;

/// Why the upstream did not serve the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UpstreamFailure {
    /// Could not connect or send.
    #[error("the upstream could not be reached: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("the upstream did not answer within {0} s")]
    Timeout(u64),
    /// A server error.
    #[error("the upstream failed with HTTP {0}")]
    Status(u16),
    /// The answer was cut or too long.
    #[error("the upstream's answer was cut or longer than the gateway passes on: {0}")]
    Body(String),
}

/// Headers never passed on: hop-by-hop ones, and the payment's own (they are for the gateway).
const DROPPED: [&str; 15] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "payment-signature",
    "x-payment",
    "access-control-expose-headers",
    "accept-payment",
    "content-length",
    // Set by the gateway on paid requests only: a buyer's own are dropped.
    "x-farthing-paid",
    "x-farthing-payer",
];

fn dropped(name: &HeaderName) -> bool {
    DROPPED.contains(&name.as_str())
}

/// Send the buyer's request upstream; answers the upstream's answer, read whole.
pub(crate) async fn forward(
    client: &Upstream,
    base: &Uri,
    parts: &http::request::Parts,
    body: Bytes,
    extra: &[(&'static str, String)],
    (timeout, max_bytes): (Duration, usize),
) -> Result<Response<Bytes>, UpstreamFailure> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = Uri::builder()
        .scheme(base.scheme_str().unwrap_or("http"))
        .authority(base.authority().map_or("", |a| a.as_str()))
        .path_and_query(path)
        .build()
        .map_err(|e| UpstreamFailure::Unreachable(e.to_string()))?;
    let mut request = Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(headers) = request.headers_mut() {
        copy_headers(&parts.headers, headers);
        // An MPP credential is for the gateway; any other Authorization is the seller's.
        if parts.headers.get(header::AUTHORIZATION).is_some_and(|v| {
            v.as_bytes().len() >= 8 && v.as_bytes()[..8].eq_ignore_ascii_case(b"payment ")
        }) {
            headers.remove(header::AUTHORIZATION);
        }
        for (name, value) in extra {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(*name, value);
            }
        }
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| UpstreamFailure::Unreachable(e.to_string()))?;
    let secs = timeout.as_secs();
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| UpstreamFailure::Unreachable(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        if parts.status.is_server_error() {
            return Err(UpstreamFailure::Status(parts.status.as_u16()));
        }
        let body = Limited::new(body, max_bytes)
            .collect()
            .await
            .map_err(|e| UpstreamFailure::Body(e.to_string()))?
            .to_bytes();
        let mut answer = Response::from_parts(parts, body);
        let headers = answer.headers_mut();
        let names: Vec<HeaderName> = headers.keys().filter(|n| dropped(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
        Ok(answer)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(UpstreamFailure::Timeout(secs)))
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !dropped(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
