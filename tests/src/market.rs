//! A market for the 402 tests and the gateway benchmark's checks: a seller's API (a real HTTP
//! server: articles, a data endpoint, a health check, and endpoints that fail, hang or cut their
//! answer), bob's node as the seller with a `farthing gateway` in front of the API (in-process:
//! the library the binary runs), alice's node as the buyer.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::{Daemon, Deployed};

/// The seller's API: what it served, by path.
#[derive(Default)]
pub struct Upstream {
    served: Mutex<BTreeMap<String, u64>>,
    /// Requests that reached it, in all.
    pub hits: AtomicU64,
}

impl Upstream {
    /// How often `path` was served (answered 2xx).
    pub fn served(&self, path: &str) -> u64 {
        self.served.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Every path served, with its count.
    pub fn all_served(&self) -> BTreeMap<String, u64> {
        self.served.lock().unwrap().clone()
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<BoxBody<Bytes, std::io::Error>> {
        self.hits.fetch_add(1, Relaxed);
        let path = request.uri().path().to_owned();
        let paid = request
            .headers()
            .get("x-farthing-paid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (status, body) = match path.as_str() {
            "/cut" => {
                // Headers and half an answer, then the connection breaks.
                let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
                    Ok(Frame::data(Bytes::from_static(b"the first half"))),
                    Err(std::io::Error::other("cut")),
                ];
                return Response::new(StreamBody::new(futures::stream::iter(frames)).boxed());
            }
            "/fail" => (500, "upstream broke".to_owned()),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(3_600)).await;
                (200, "too late".to_owned())
            }
            "/health" => (200, "ok".to_owned()),
            "/wait" => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                (200, format!("waited (paid {paid})"))
            }
            "/data" => (200, format!("{{\"temperature\":21.5,\"paid\":\"{paid}\"}}")),
            p if p.starts_with("/articles/") => {
                (200, format!("article {} (paid {paid})", &p[10..]))
            }
            _ => (404, "no such page".to_owned()),
        };
        if status == 200 {
            *self.served.lock().unwrap().entry(path).or_default() += 1;
        }
        let mut response = Response::new(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        response
    }
}

/// Serve an [`Upstream`] on a free port until the runtime ends.
pub async fn serve_upstream() -> (Arc<Upstream>, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = Arc::new(Upstream::default());
    let served = upstream.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let upstream = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let upstream = upstream.clone();
                    async move { Ok::<_, Infallible>(upstream.answer(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (upstream, addr)
}

/// Bob sells through a gateway, alice buys: both nodes, the API, the gateway.
pub struct Market {
    /// The devnet.
    pub net: Deployed,
    /// Bob's node (the seller).
    pub bob: Daemon,
    /// Alice's node (the buyer).
    pub alice: Daemon,
    /// The seller's API.
    pub upstream: Arc<Upstream>,
    /// The gateway.
    pub gateway: farthing_gateway::Gateway,
    /// `http://` + the gateway's address.
    pub url: String,
    /// Bob's peer address, `0xADDRESS@host:port`.
    pub bob_peer: String,
    /// The gateway's settings.
    pub settings: farthing_gateway::GatewayConfig,
}

/// Prices of the market's routes, token units.
pub const ARTICLE_PRICE: &str = "0.001";
/// `/data`'s price.
pub const DATA_PRICE: &str = "0.002";

impl Market {
    /// Start it all; `config` adjusts the gateway's settings (kept in [`Market::settings`]).
    pub async fn open(config: impl FnOnce(&mut farthing_gateway::GatewayConfig)) -> Self {
        Self::open_with(&[], config).await
    }

    /// [`Market::open`], alice's node started with `alice_flags`.
    pub async fn open_with(
        alice_flags: &[&str],
        config: impl FnOnce(&mut farthing_gateway::GatewayConfig),
    ) -> Self {
        let net = Deployed::start().await;
        let bob = net.daemon(2, "bob", &[]);
        let alice = net.daemon(1, "alice", alice_flags);
        let (upstream, upstream_addr) = serve_upstream().await;
        let bob_address = net.devnet.key("BOB").address();
        let bob_peer = format!("{bob_address:#x}@{}", bob.peers);
        let route = |text: &str| farthing_gateway::RouteConfig::parse_priced(text).unwrap();
        let mut settings = farthing_gateway::GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: format!("http://{upstream_addr}"),
            node_url: bob.url.replacen("http://", "ws://", 1),
            node_data_dir: net.data_dir("bob"),
            peer: Some(bob_peer.clone()),
            suggested_deposit: "20".into(),
            upstream_timeout_secs: 2,
            routes: vec![
                route(&format!("GET /articles/*={ARTICLE_PRICE}")),
                route(&format!("GET /data={DATA_PRICE}")),
                route("GET /fail=0.005"),
                route("GET /slow=0.005"),
                route("GET /wait=0.001"),
                route("GET /cut=0.005"),
            ],
            free: vec![farthing_gateway::RouteConfig::parse_free("/health").unwrap()],
            ..Default::default()
        };
        config(&mut settings);
        let gateway = farthing_gateway::start(settings.clone()).await.unwrap();
        let url = format!("http://{}", gateway.addr);
        Self {
            net,
            bob,
            alice,
            upstream,
            gateway,
            url,
            bob_peer,
            settings,
        }
    }

    /// Alice's node's RPC over a WebSocket (many calls in flight on one connection).
    pub async fn alice_ws(&self) -> farthing_rpc::WsClient {
        let token = farthing_rpc::read_token(&self.net.data_dir("alice")).unwrap();
        farthing_rpc::connect_ws(&self.alice.url.replacen("http://", "ws://", 1), &token)
            .await
            .unwrap()
    }

    /// Bob's node's RPC.
    pub fn bob_rpc(&self) -> farthing_rpc::HttpClient {
        self.net.rpc("bob", &self.bob)
    }

    /// Alice's node's RPC.
    pub fn alice_rpc(&self) -> farthing_rpc::HttpClient {
        self.net.rpc("alice", &self.alice)
    }
}
