//! `ws://` and `wss://` to the chain RPC. alloy's own `WsConnect` trusts only the Mozilla roots
//! compiled into it, so the node opens the WebSocket itself — TLS by rustls on ring, checked
//! against the system's roots plus `chain.ca_file`, exactly as for `https://` — and hands the
//! socket to alloy's `WsBackend`, which serves alloy's pub-sub frontend over it (keepalive
//! pings, reconnecting through [`PubSubConnect::connect`] when the socket drops).

use std::sync::Arc;
use std::time::Duration;

use alloy::pubsub::{ConnectionHandle, PubSubConnect};
use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::ws::WsBackend;
use alloy::transports::{TransportError, TransportErrorKind, TransportFut, TransportResult};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{RpcError, RpcOptions};

/// A ping when nothing was sent for this long; no pong before the next one drops the socket.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// How to open the node's WebSocket to the chain RPC.
#[derive(Clone, Debug)]
pub(super) struct WsTls {
    url: String,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl WsTls {
    /// `url` (`ws://` or `wss://`) with the trust `options` give.
    pub(super) fn new(url: &str, options: &RpcOptions) -> Result<Self, RpcError> {
        super::install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or_else(|| RpcError::Client("no rustls crypto provider installed".into()))?;
        let mut extra = Vec::new();
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|source| RpcError::CaRead {
                path: path.clone(),
                source,
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                extra.push(cert.map_err(|e| RpcError::CaPem {
                    path: path.clone(),
                    reason: e.to_string(),
                })?);
            }
            if extra.is_empty() {
                return Err(RpcError::CaPem {
                    path: path.clone(),
                    reason: "no certificate found".into(),
                });
            }
        }
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
                .map_err(|e| RpcError::Client(e.to_string()))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RpcError::Client(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Self {
            url: url.to_owned(),
            tls: Arc::new(tls),
            timeout: options.timeout,
        })
    }
}

impl PubSubConnect for WsTls {
    fn is_local(&self) -> bool {
        alloy::transports::utils::guess_local_url(&self.url)
    }

    async fn connect(&self) -> TransportResult<ConnectionHandle> {
        let request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(TransportErrorKind::custom)?;
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(Connector::Rustls(self.tls.clone())),
        );
        let (socket, _) = tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| {
                TransportErrorKind::custom(std::io::Error::from(std::io::ErrorKind::TimedOut))
            })?
            .map_err(TransportErrorKind::custom)?;
        let (handle, interface) = ConnectionHandle::new();
        WsBackend::from_socket(socket, interface, KEEPALIVE).spawn();
        // When the socket drops, alloy reconnects through `connect` with a backoff doubling
        // from 1 s to 30 s — forever: its default (10 tries, then the transport is shut for
        // good) would leave a node whose provider was down for minutes unable to reach the
        // chain until restarted. Calls meanwhile fail at their timeout.
        Ok(handle
            .with_max_retries(u32::MAX)
            .with_retry_interval(Duration::from_secs(1)))
    }
}

/// Fails a request that takes longer than its limit (a WebSocket has no request timeout of its
/// own; over https reqwest's is used).
#[derive(Clone, Debug)]
pub(super) struct TimeoutLayer(pub(super) Duration);

impl<S> tower::Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            timeout: self.0,
        }
    }
}

/// [`TimeoutLayer`]'s service.
#[derive(Clone, Debug)]
pub(super) struct TimeoutService<S> {
    inner: S,
    timeout: Duration,
}

impl<S> tower::Service<RequestPacket> for TimeoutService<S>
where
    S: tower::Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        > + Send
        + Clone
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let answer = self.inner.call(request);
        let timeout = self.timeout;
        Box::pin(async move {
            tokio::time::timeout(timeout, answer).await.map_err(|_| {
                TransportErrorKind::custom(std::io::Error::from(std::io::ErrorKind::TimedOut))
            })?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RpcOptions, connect_any};

    #[tokio::test]
    async fn a_dead_websocket_is_one_line_without_the_secret_path() {
        let err = connect_any("ws://127.0.0.1:9/v3/SECRET", &RpcOptions::default())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(err.starts_with("chain RPC ws://127.0.0.1:9: "), "{err}");
        assert!(
            err.ends_with("(nothing listens there: is the chain's RPC running and the URL right?)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_junk_ca_file_is_refused_for_wss_as_for_https() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let options = RpcOptions {
            ca_file: Some(junk.clone()),
            ..RpcOptions::default()
        };
        let err = connect_any("wss://localhost:1", &options)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            format!(
                "chain.ca_file {} holds no PEM certificate (no certificate found): give the CA's certificate as PEM (-----BEGIN CERTIFICATE-----)",
                junk.display()
            )
        );
    }
}
