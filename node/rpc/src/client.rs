//! Clients for the CLI and for agents written in Rust: the generated
//! [`FarthingApiClient`](crate::FarthingApiClient) methods work on both.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use jsonrpsee::core::ClientError;
use jsonrpsee_http_client::HttpClient;
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};

use crate::{Error, Result};

/// An HTTP client for the node at `url` (`http://127.0.0.1:7750`) that sends the bearer
/// `token` (from [`crate::read_token`]) with every request. Connects lazily, on the first call.
pub fn connect_http(url: &str, token: &str) -> Result<HttpClient> {
    HttpClient::builder()
        .set_headers(auth_headers(token)?)
        .build(url)
        .map_err(|source| Error::Connect {
            url: url.to_owned(),
            source,
        })
}

/// A WebSocket client for the node at `url` (`ws://127.0.0.1:7750`), authenticated with the
/// bearer `token` at the upgrade. Needed for subscriptions. Must run inside a tokio runtime.
pub async fn connect_ws(url: &str, token: &str) -> Result<WsClient> {
    WsClientBuilder::new()
        .set_headers(auth_headers(token)?)
        .build(url)
        .await
        .map_err(|source| Error::Connect {
            url: url.to_owned(),
            source,
        })
}

/// The HTTP status with which the node's server refused the client, if that is why `err`
/// happened: 401 (the token) or 429 (one of the server's limits), over HTTP or at a WebSocket
/// upgrade.
pub fn refused_with(err: &ClientError) -> Option<u16> {
    let ClientError::Transport(inner) = err else {
        return None;
    };
    if let Some(jsonrpsee_http_client::transport::Error::Rejected { status_code }) =
        inner.downcast_ref()
    {
        return Some(*status_code);
    }
    // The WebSocket client's handshake error is not exported; its message is fixed.
    inner
        .to_string()
        .strip_prefix("Connection rejected with status code: ")
        .and_then(|status| status.parse().ok())
}

/// `Authorization: Bearer <token>`, marked sensitive so that it is never printed.
fn auth_headers(token: &str) -> Result<HeaderMap> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadToken);
    }
    let mut value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Error::BadToken)?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}
