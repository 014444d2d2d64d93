//! A fake chain-RPC provider in front of anvil: every JSON-RPC request is passed on to anvil,
//! after a delay (a slow provider), or answered HTTP 429 instead (a provider's rate limit), as
//! the test sets it at any time. It counts what it did, so a test can tell that the node met
//! the slowness or the limit it is meant to survive.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What the front does, and what it did.
pub struct RpcFront {
    /// While true, requests wait at the front (a provider that stopped answering).
    gate: tokio::sync::watch::Sender<bool>,
    /// Requests waiting at the gate now.
    pub held: AtomicU64,
    /// Each request waits this long (ms) before it is passed on.
    delay_ms: AtomicU64,
    /// Every Nth request is answered 429 (0: none).
    reject_every: AtomicU64,
    /// Requests received.
    pub received: AtomicU64,
    /// Requests answered 429.
    pub rejected: AtomicU64,
    /// Requests passed on after a delay.
    pub delayed: AtomicU64,
    /// This many more `eth_sendRawTransaction`s are passed on, their answer replaced by HTTP
    /// 503 (a provider that took the transaction and lost the answer).
    lose_send_answers: AtomicU64,
    /// Send answers replaced by 503.
    pub lost_answers: AtomicU64,
}

impl Default for RpcFront {
    fn default() -> Self {
        Self {
            gate: tokio::sync::watch::Sender::new(false),
            held: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            reject_every: AtomicU64::new(0),
            received: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            lose_send_answers: AtomicU64::new(0),
            lost_answers: AtomicU64::new(0),
        }
    }
}

impl RpcFront {
    /// Hold every request at the front (`true`) until released (`false`).
    pub fn hold(&self, hold: bool) {
        self.gate.send_replace(hold);
    }

    /// Delay every request by `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(u64::try_from(delay.as_millis()).unwrap(), SeqCst);
    }

    /// Answer every `n`th request with HTTP 429 from now on (0: none).
    pub fn reject_every(&self, n: u64) {
        self.reject_every.store(n, SeqCst);
    }

    /// Pass the next `n` `eth_sendRawTransaction`s on but answer each with HTTP 503.
    pub fn lose_send_answers(&self, n: u64) {
        self.lose_send_answers.store(n, SeqCst);
    }

    async fn answer(
        &self,
        request: Request<Incoming>,
        upstream: &str,
        client: &Client<HttpConnector, Full<Bytes>>,
    ) -> Response<Full<Bytes>> {
        let n = self.received.fetch_add(1, SeqCst) + 1;
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let every = self.reject_every.load(SeqCst);
        if every > 0 && n.is_multiple_of(every) {
            self.rejected.fetch_add(1, SeqCst);
            let mut response = Response::new(Full::new(Bytes::from_static(
                b"{\"error\":\"Too Many Requests\"}",
            )));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return response;
        }
        let mut gate = self.gate.subscribe();
        if *gate.borrow_and_update() {
            // Counted while it waits, also if the client gives up meanwhile (hyper drops this
            // future then).
            struct Held<'a>(&'a AtomicU64);
            impl Drop for Held<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, SeqCst);
                }
            }
            self.held.fetch_add(1, SeqCst);
            let _held = Held(&self.held);
            let _ = gate.wait_for(|held| !held).await;
        }
        let delay = self.delay_ms.load(SeqCst);
        if delay > 0 {
            self.delayed.fetch_add(1, SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let send = body
            .windows(b"eth_sendRawTransaction".len())
            .any(|w| w == b"eth_sendRawTransaction");
        let forward = Request::post(upstream)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        match client.request(forward).await {
            Ok(_)
                if send
                    && self
                        .lose_send_answers
                        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                        .is_ok() =>
            {
                self.lost_answers.fetch_add(1, SeqCst);
                let mut response = Response::new(Full::new(Bytes::from_static(
                    b"{\"error\":\"Service Unavailable\"}",
                )));
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                response
            }
            Ok(answer) => {
                let status = answer.status();
                let bytes = answer.into_body().collect().await.unwrap().to_bytes();
                let mut response = Response::new(Full::new(bytes));
                *response.status_mut() = status;
                response
            }
            Err(e) => {
                let mut response = Response::new(Full::new(Bytes::from(e.to_string())));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }
}

/// Serve an [`RpcFront`] for the JSON-RPC at `upstream` (`http://host:port`) on a free port,
/// on a thread and runtime of its own (a test blocks its own while a `farthing node` starts,
/// and the node's start needs the front), until the test process ends; returns it and its
/// `http://` URL.
pub fn serve_rpc_front(upstream: &str) -> (Arc<RpcFront>, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let front = Arc::new(RpcFront::default());
    let state = front.clone();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let client: Client<HttpConnector, Full<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (front, upstream, client) = (state.clone(), upstream.clone(), client.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (front, upstream, client) =
                            (front.clone(), upstream.clone(), client.clone());
                        async move {
                            Ok::<_, Infallible>(front.answer(request, &upstream, &client).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (front, format!("http://{addr}"))
}
