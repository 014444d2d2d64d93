//! The chain RPC's client: every connection the node (and its tools and tests) makes to the
//! chain's JSON-RPC is built here ([`connect`] for http(s), [`connect_any`] for ws(s) too), so
//! they share one set of rules.
//!
//! - **TLS** (`https://`, `wss://`): rustls on **ring** (not aws-lc-rs: no cmake, no second C build),
//!   installed as rustls' process-wide provider before any HTTP client is built
//!   ([`install_crypto_provider`]; reqwest is built with `rustls-no-provider` and panics
//!   without one). The server's certificate is checked against the system's roots
//!   (`/etc/ssl/certs`, `SSL_CERT_FILE`/`SSL_CERT_DIR`), plus the operator's private CA when
//!   `chain.ca_file` names one ([`RpcOptions::ca_file`]).
//! - **Rate limits**: HTTP 429 and 503 (and the providers' known rate-limit JSON errors) are
//!   retried by alloy's `RetryBackoffLayer` ([`RATE_LIMIT_RETRIES`] times, [`RATE_LIMIT_BACKOFF`]
//!   apart unless the provider says `Retry-After`): the caller — the watcher, which reports
//!   the node degraded — only sees an error once the retries are spent.
//! - **Timeouts**: every request gives up after [`RpcOptions::timeout`], so a provider that
//!   stops answering fails a call instead of hanging it.
//! - **Errors in one line** ([`describe`]): the URL without its secrets (an API key often sits
//!   in the path: [`redact_url`]), the deepest cause (rustls' verdict on a certificate, say),
//!   and what to do about it.

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::transports::TransportError;
use alloy::transports::http::Http;
use alloy::transports::http::reqwest::{self, Url};
use alloy::transports::layers::RetryBackoffLayer;

use crate::client::redact_url;

mod ws;

/// How long one RPC request may take by default before it fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a rate-limited request (HTTP 429/503) is sent again before it fails.
pub const RATE_LIMIT_RETRIES: u32 = 10;

/// How long a rate-limited request waits before it is sent again, unless the provider's
/// `Retry-After` says otherwise.
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_millis(500);

/// How the node connects to the chain's RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcOptions {
    /// A PEM file of CA certificates trusted for `https://` and `wss://` on top of the system's roots (a
    /// private CA in front of the operator's own chain node).
    pub ca_file: Option<PathBuf>,
    /// The longest one request may take.
    pub timeout: Duration,
    /// How many times a rate-limited request is sent again.
    pub retries: u32,
    /// How long a rate-limited request waits before it is sent again (unless the provider's
    /// `Retry-After` says).
    pub backoff: Duration,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            timeout: DEFAULT_TIMEOUT,
            retries: RATE_LIMIT_RETRIES,
            backoff: RATE_LIMIT_BACKOFF,
        }
    }
}

/// Why no client to the chain's RPC could be built (nothing was sent yet).
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The URL does not parse.
    #[error("chain.rpc_url {0:?} is not a URL: give http(s)://HOST[:PORT][/PATH]")]
    Url(String),
    /// The CA file cannot be read.
    #[error(
        "cannot read chain.ca_file {path}: {source} (give a PEM file of the CA that signed the RPC's certificate)"
    )]
    CaRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no certificate.
    #[error(
        "chain.ca_file {path} holds no PEM certificate ({reason}): give the CA's certificate as PEM (-----BEGIN CERTIFICATE-----)"
    )]
    CaPem {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// reqwest or rustls refused to build the client.
    #[error("cannot build the chain RPC's client: {0}")]
    Client(String),
    /// The WebSocket to the RPC could not be opened (one line, the URL redacted).
    #[error("{0}")]
    Connect(String),
}

/// Install ring as rustls' process-wide crypto provider (once; a provider installed before
/// is kept). Every HTTP client in the process needs one: the chain RPC's, and the buyer's
/// (`farthing_fetch`). Idempotent and cheap: call it before building any `reqwest::Client`.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // rustls 0.23.48 deprecates ring's provider ("no support for post-quantum
        // algorithms") in favour of aws-lc-rs; aws-lc-rs needs cmake and a second C build
        // (node/REAL-CHAIN-PLAN.md section 1), so ring it is, knowingly.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        // Err: another provider was installed first (a test harness, an embedding
        // program); it is used instead.
        let _ = provider.install_default();
    });
}

/// The HTTP client for the chain RPC: rustls on ring, the system's roots plus `ca_file`,
/// requests bounded by `timeout`.
pub fn http_client(options: &RpcOptions) -> Result<reqwest::Client, RpcError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.timeout);
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|source| RpcError::CaRead {
            path: path.clone(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RpcError::CaPem {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if certs.is_empty() {
            return Err(RpcError::CaPem {
                path: path.clone(),
                reason: "no certificate found".into(),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| RpcError::Client(e.to_string()))
}

/// An RPC client for `url`: [`http_client`] under the rate-limit retry layer.
pub fn rpc_client(url: &Url, options: &RpcOptions) -> Result<RpcClient, RpcError> {
    let http = Http::with_client(http_client(options)?, url.clone());
    let is_local = alloy::transports::utils::guess_local_url(url.as_str());
    Ok(RpcClient::builder()
        .layer(retry_layer(options))
        .transport(http, is_local))
}

fn retry_layer(options: &RpcOptions) -> RetryBackoffLayer {
    RetryBackoffLayer::new(
        options.retries,
        u64::try_from(options.backoff.as_millis()).unwrap_or(u64::MAX),
        // No compute-unit pacing: the backoff alone answers a provider's 429.
        u64::MAX,
    )
}

/// A provider for `url` (no fillers: the node sets nonces, gas and fees itself).
pub fn connect(url: &str, options: &RpcOptions) -> Result<DynProvider, RpcError> {
    let parsed: Url = url.parse().map_err(|_| RpcError::Url(url.to_owned()))?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_client(rpc_client(&parsed, options)?)
        .erased())
}

/// A provider for `url`, `http(s)://` ([`connect`]) or `ws(s)://`: a WebSocket opened now,
/// with the same trust, rate-limit retries and request timeout as over https.
pub async fn connect_any(url: &str, options: &RpcOptions) -> Result<DynProvider, RpcError> {
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return connect(url, options);
    }
    let _: Url = url.parse().map_err(|_| RpcError::Url(url.to_owned()))?;
    let client = RpcClient::builder()
        .layer(retry_layer(options))
        .layer(ws::TimeoutLayer(options.timeout))
        .pubsub(ws::WsTls::new(url, options)?)
        .await
        .map_err(|e| RpcError::Connect(describe(url, &e)))?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_client(client)
        .erased())
}

/// The warning to log when `url` sends the node's RPC traffic in clear text over a network
/// (`http://` to a host other than this machine); `None` when it does not.
pub fn cleartext_warning(url: &str) -> Option<String> {
    let parsed: Url = url.parse().ok()?;
    if !matches!(parsed.scheme(), "http" | "ws") {
        return None;
    }
    let host = parsed.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        format!(
            "chain.rpc_url {} is plain {}:// to another host: the RPC's API key and every request travel in clear text; use {}s://",
            redact_url(url),
            parsed.scheme(),
            parsed.scheme()
        )
    })
}

/// The longest cause [`describe`] quotes.
const MAX_CAUSE_CHARS: usize = 300;

/// `err` (from a call to the RPC at `url`) in one line: the URL without its secrets, the
/// deepest cause, and what to do.
pub fn describe(url: &str, err: &TransportError) -> String {
    let (cause, advice) = diagnose(url, err);
    let safe = redact_url(url);
    // The cause may quote the URL (reqwest's messages do): never its secret part.
    let cause = cause
        .replace(url, &safe)
        .replace(url.trim_end_matches('/'), &safe);
    let mut cause = cause.split_whitespace().collect::<Vec<_>>().join(" ");
    // A provider's error page can be long: its start says enough.
    if let Some((cut, _)) = cause.char_indices().nth(MAX_CAUSE_CHARS) {
        cause.truncate(cut);
        cause.push('…');
    }
    format!("chain RPC {safe}: {cause} ({advice})")
}

/// The deepest cause of `err` and the advice that fits it.
fn diagnose(url: &str, err: &TransportError) -> (String, String) {
    let https = url.starts_with("https://") || url.starts_with("wss://");
    let mut deepest: &(dyn std::error::Error + 'static) = err;
    let mut timeout = false;
    let mut tls: Option<&rustls::Error> = None;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        deepest = e;
        if let Some(r) = e.downcast_ref::<reqwest::Error>() {
            timeout |= r.is_timeout();
        }
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            tls = Some(r);
        }
        // An io::Error's `source()` skips the error it wraps (rustls' among them), and the
        // connector wraps rustls' io::Error in another io::Error: unwrap them all.
        let mut io = e.downcast_ref::<std::io::Error>();
        while let Some(outer) = io {
            timeout |= outer.kind() == std::io::ErrorKind::TimedOut;
            let inner = outer.get_ref();
            if let Some(r) = inner.and_then(|i| i.downcast_ref::<rustls::Error>()) {
                tls = Some(r);
            }
            io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        current = e.source();
    }
    let cause = match tls {
        Some(t) => t.to_string(),
        None => deepest.to_string(),
    };
    let status = match err {
        TransportError::Transport(alloy::transports::TransportErrorKind::HttpError(http)) => {
            Some(http.status)
        }
        _ => None,
    };
    let advice = if let Some(t) = tls {
        tls_advice(t)
    } else if let Some(401 | 403) = status {
        "the provider refused the request: check the API key in chain.rpc_url".into()
    } else if let Some(404 | 405) = status {
        "no JSON-RPC at that URL: check its path (a provider's API key often goes there)".into()
    } else if cause.contains("Max retries exceeded") {
        "the provider kept refusing for its rate limit (HTTP 429) through every retry: lower the load or use a plan with a higher limit".into()
    } else if timeout {
        "the RPC did not answer in time: is it overloaded or unreachable? chain.rpc_timeout_secs sets the limit".into()
    } else if https && (cause.contains("corrupt message") || cause.contains("InvalidContentType")) {
        "the server does not speak TLS on that port: is this an https port? use http:// for a plain one".into()
    } else if !https
        && (cause.contains("reset by peer")
            || cause.contains("connection closed")
            || cause.contains("end of file")
            || cause.contains("incomplete message"))
    {
        "the server closed the connection: if it is a TLS port, use https://".into()
    } else if cause.contains("refused") {
        "nothing listens there: is the chain's RPC running and the URL right?".into()
    } else {
        "is the chain's RPC running and the URL right?".into()
    };
    (cause, advice)
}

fn tls_advice(err: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "its certificate is not signed by a CA this node trusts: give that CA's PEM file in chain.ca_file (--ca-file), or fix the RPC's certificate".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "its certificate is for another host: use the host name the certificate names in chain.rpc_url, or give the RPC a certificate for this one".into()
        }
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => "its certificate has expired or is not valid yet: renew it (or check this machine's clock)".into(),
        rustls::Error::InvalidMessage(_) => {
            "the server does not speak TLS on that port: is this an https port? use http:// for a plain one".into()
        }
        _ => "TLS with the RPC failed: check its certificate and chain.ca_file".into(),
    }
}

/// Ask the RPC at `url` (through `provider`) for its chain id, in one line on failure.
pub async fn chain_id(provider: &DynProvider, url: &str) -> Result<u64, String> {
    provider.get_chain_id().await.map_err(|e| describe(url, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_is_warned_only_off_this_machine() {
        for quiet in [
            "http://127.0.0.1:8545",
            "http://localhost:8545",
            "http://[::1]:8545",
            "https://rpc.example/key",
        ] {
            assert_eq!(cleartext_warning(quiet), None, "{quiet}");
        }
        let warning = cleartext_warning("http://rpc.example:8545/v2/SECRET").unwrap();
        assert_eq!(
            warning,
            "chain.rpc_url http://rpc.example:8545 is plain http:// to another host: the RPC's API key and every request travel in clear text; use https://"
        );
        assert!(cleartext_warning("http://10.0.0.2:8545").is_some());
        assert_eq!(
            cleartext_warning("ws://rpc.example/SECRET").unwrap(),
            "chain.rpc_url ws://rpc.example is plain ws:// to another host: the RPC's API key and every request travel in clear text; use wss://"
        );
        assert_eq!(cleartext_warning("wss://rpc.example/key"), None);
        assert_eq!(cleartext_warning("ws://127.0.0.1:8545"), None);
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = http_client(&RpcOptions {
            ca_file: Some(missing.clone()),
            ..RpcOptions::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!("cannot read chain.ca_file {}", missing.display())),
            "{err}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let err = http_client(&RpcOptions {
            ca_file: Some(junk.clone()),
            ..RpcOptions::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            format!(
                "chain.ca_file {} holds no PEM certificate (no certificate found): give the CA's certificate as PEM (-----BEGIN CERTIFICATE-----)",
                junk.display()
            )
        );
    }

    #[tokio::test]
    async fn a_provider_that_never_answers_fails_the_call_at_the_timeout() {
        // Accepts connections, reads, never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let url = format!("http://{addr}/v3/SECRET");
        let options = RpcOptions {
            timeout: Duration::from_millis(300),
            ..RpcOptions::default()
        };
        let provider = connect(&url, &options).unwrap();
        let line = chain_id(&provider, &url).await.unwrap_err();
        assert_eq!(
            line,
            format!(
                "chain RPC http://{addr}: operation timed out (the RPC did not answer in time: is it overloaded or unreachable? chain.rpc_timeout_secs sets the limit)"
            )
        );
    }

    /// An HTTP server answering 429 to its first `limited` requests, then `eth_chainId` 7;
    /// each answer closes its connection.
    async fn rate_limited(limited: usize) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut served = 0;
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the (small) JSON body after them.
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    request.extend_from_slice(&buf[..n]);
                    if request.ends_with(b"}") {
                        break;
                    }
                }
                served += 1;
                let answer = if served <= limited {
                    "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
                } else {
                    let body = r#"{"jsonrpc":"2.0","id":0,"result":"0x7"}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn rate_limits_are_retried_until_the_retries_are_spent() {
        let options = RpcOptions {
            retries: 3,
            backoff: Duration::from_millis(10),
            ..RpcOptions::default()
        };
        // Three 429s, then an answer: the caller sees only the answer.
        let url = format!("http://{}", rate_limited(3).await);
        let provider = connect(&url, &options).unwrap();
        assert_eq!(chain_id(&provider, &url).await, Ok(7));
        // Four: one more than the retries.
        let url = format!("http://{}", rate_limited(4).await);
        let provider = connect(&url, &options).unwrap();
        let line = chain_id(&provider, &url).await.unwrap_err();
        assert!(
            line.starts_with(&format!(
                "chain RPC {url}: Max retries exceeded HTTP error 429"
            )),
            "{line}"
        );
        assert!(
            line.ends_with("(the provider kept refusing for its rate limit (HTTP 429) through every retry: lower the load or use a plan with a higher limit)"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_one_line_without_the_secret_path() {
        let provider = connect("http://127.0.0.1:9/v3/SECRET", &RpcOptions::default()).unwrap();
        let line = chain_id(&provider, "http://127.0.0.1:9/v3/SECRET")
            .await
            .unwrap_err();
        assert!(!line.contains("SECRET"), "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("chain RPC http://127.0.0.1:9: "), "{line}");
        assert!(
            line.ends_with(
                "(nothing listens there: is the chain's RPC running and the URL right?)"
            ),
            "{line}"
        );
    }
}
