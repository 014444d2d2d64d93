//! A provider that caps `eth_getLogs` (Alchemy: 500 blocks; Infura 10,000; each with its own
//! error code and text): the node's watcher halves its range until the provider answers and
//! still sees every event. The provider is a fake JSON-RPC front here, forwarding to anvil and
//! answering `-32602 "range N exceeds limit of 500"` to wider `eth_getLogs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::{Bytes as AlloyBytes, U256};
use alloy::providers::Provider;
use bytes::Bytes;
use farthing_e2e::{Daemon, Deployed, PATIENCE, USDC, done_if, eventually, send};
use farthing_rpc::{ChannelState, FarthingApiClient};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

/// A JSON-RPC front to anvil that refuses `eth_getLogs` over more than `cap` blocks.
struct CappedFront {
    upstream: String,
    cap: u64,
    /// `eth_getLogs` refused.
    refused: AtomicU64,
    /// The widest `eth_getLogs` forwarded, in blocks.
    widest: AtomicU64,
    /// `eth_getLogs` forwarded.
    answered: AtomicU64,
}

fn block_number(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?.strip_prefix("0x")?, 16).ok()
}

impl CappedFront {
    /// Serve on a free port; the front and its `http://` URL.
    async fn start(upstream: &str, cap: u64) -> (Arc<Self>, String) {
        let front = Arc::new(Self {
            upstream: upstream.to_owned(),
            cap,
            refused: AtomicU64::new(0),
            widest: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = front.clone();
        tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (front, client) = (served.clone(), client.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (front, client) = (front.clone(), client.clone());
                        async move { Ok::<_, Infallible>(front.answer(&client, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (front, url)
    }

    /// The refusal for `call`, if it is an `eth_getLogs` over more than the cap.
    fn refusal(&self, call: &Value) -> Option<Value> {
        if call["method"] != "eth_getLogs" {
            return None;
        }
        let filter = &call["params"][0];
        let (from, to) = (
            block_number(&filter["fromBlock"])?,
            block_number(&filter["toBlock"])?,
        );
        let len = to.saturating_sub(from) + 1;
        if len > self.cap {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Some(json!({
                "jsonrpc": "2.0",
                "id": call["id"],
                "error": { "code": -32602, "message": format!("range {len} exceeds limit of {}", self.cap) },
            }));
        }
        self.widest.fetch_max(len, Ordering::SeqCst);
        self.answered.fetch_add(1, Ordering::SeqCst);
        None
    }

    async fn answer(
        &self,
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        request: Request<hyper::body::Incoming>,
    ) -> Response<Full<Bytes>> {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(refusal) = self.refusal(&call) {
            let mut response = Response::new(Full::new(Bytes::from(refusal.to_string())));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return response;
        }
        let forward = Request::post(&self.upstream)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .unwrap();
        let answer = client.request(forward).await.unwrap();
        let (parts, body) = answer.into_parts();
        Response::from_parts(parts, Full::new(body.collect().await.unwrap().to_bytes()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_halves_its_log_range_for_a_capped_provider_and_sees_every_event() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let d = &net.d;
    net.devnet.mint(d, bob.address(), 10 * USDC).await.unwrap();
    let chain = net.devnet.reader();
    let mine = async |blocks: u64| {
        let _: Value = chain
            .raw_request("anvil_mine".into(), (blocks,))
            .await
            .unwrap();
    };

    // Three events of alice's channel, each in its own 1,000-block stretch: opened by alice,
    // topped up by bob, closed by bob without a proof.
    send!(alice.token.approve(d.channel_manager, U256::MAX));
    send!(bob.token.approve(d.channel_manager, U256::MAX));
    send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(40 * USDC), 600)
    );
    mine(1_000).await;
    let one = U256::from(1);
    send!(bob.manager.topUp(one, bob.address(), U256::from(5 * USDC)));
    mine(1_000).await;
    send!(bob.manager.close(one, 0, 0, AlloyBytes::new()));
    mine(1_000).await;
    let on_chain = alice.manager.getChannel(one).call().await.unwrap();

    // Alice's node starts on the capped front: its first pass reads 3,000+ blocks.
    let (front, url) = CappedFront::start(&net.devnet.rpc_url, 500).await;
    let node = Daemon::start_as(1, &net.data_dir("alice"), &url, &net.deployment, &[]);
    let client = net.rpc("alice", &node);
    let head = chain.get_block_number().await.unwrap();
    let seen = eventually(PATIENCE, "the node synced past bob's close", async || {
        let info = client.info().await.unwrap();
        done_if(info.synced_block >= head, info.synced_block)
    })
    .await;
    assert!(seen >= head);
    let channel = client.get_channel(1).await.unwrap();
    assert_eq!(channel.state, ChannelState::Closed);
    assert_eq!(channel.closer, Some(bob.address()));
    assert_eq!(channel.settle_after, Some(on_chain.settleAfter.to::<u64>()));
    assert_eq!(
        (
            channel.deposit_ours.as_str(),
            channel.deposit_partner.as_str()
        ),
        ("40", "5")
    );

    // The provider refused the wide reads, answered only ranges within its cap, and the
    // node read the whole chain through them.
    assert!(front.refused.load(Ordering::SeqCst) >= 1);
    let widest = front.widest.load(Ordering::SeqCst);
    assert!(widest > 0 && widest <= 500, "widest range read: {widest}");
    assert!(node.stop().success());
}
