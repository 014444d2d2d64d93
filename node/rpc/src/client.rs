//! Clients for the CLI and for agents written in Rust: the generated
//! [`FarthingApiClient`](crate::FarthingApiClient) methods work on both.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
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
