//! Prometheus metrics: counters and a latency histogram kept with atomics on the payment path
//! (no lock, no allocation), everything else read from the node when scraped. Served as the
//! text exposition format on `metrics.listen` (`GET /metrics`; off unless configured).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use farthing_core::ChainState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::node::Node;

/// Upper bounds of the payment latency histogram, seconds.
const BUCKETS: [f64; 12] = [
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// The node's own counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    sent: AtomicU64,
    received: AtomicU64,
    /// Base units (a u64 holds 18 trillion USDC of 6 decimals).
    amount_sent: AtomicU64,
    amount_received: AtomicU64,
    /// Cumulative counts per bucket, then +Inf.
    latency: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of latencies, nanoseconds.
    latency_sum_ns: AtomicU64,
}

impl Metrics {
    /// A payment we made, acknowledged after `latency`.
    pub(crate) fn paid(&self, amount: u128, latency: Duration) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.amount_sent
            .fetch_add(u64::try_from(amount).unwrap_or(u64::MAX), Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns.fetch_add(
            u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A payment we received, durable.
    pub(crate) fn received(&self, amount: u128) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.amount_received
            .fetch_add(u64::try_from(amount).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Node {
    /// The metrics in Prometheus' text exposition format.
    pub fn render_metrics(&self) -> String {
        let m = self.metrics();
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let n = |v: u64| v.to_string();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "farthing_payments_total",
            "counter",
            "Payments acknowledged by the partner (out) or made durable here (in).",
            &[
                ("{direction=\"out\"}".into(), n(load(&m.sent))),
                ("{direction=\"in\"}".into(), n(load(&m.received))),
            ],
        );
        metric(
            "farthing_payment_amount_base_units_total",
            "counter",
            "Sum of the payments' amounts, in the token's base units.",
            &[
                ("{direction=\"out\"}".into(), n(load(&m.amount_sent))),
                ("{direction=\"in\"}".into(), n(load(&m.amount_received))),
            ],
        );
        let mut cumulative = 0;
        let mut buckets: Vec<(String, String)> = BUCKETS
            .iter()
            .enumerate()
            .map(|(i, le)| {
                cumulative += load(&m.latency[i]);
                (format!("_bucket{{le=\"{le}\"}}"), n(cumulative))
            })
            .collect();
        cumulative += load(&m.latency[BUCKETS.len()]);
        buckets.push(("_bucket{le=\"+Inf\"}".into(), n(cumulative)));
        buckets.push((
            "_sum".into(),
            format!("{}", load(&m.latency_sum_ns) as f64 / 1e9),
        ));
        buckets.push(("_count".into(), n(cumulative)));
        metric(
            "farthing_payment_latency_seconds",
            "histogram",
            "From signing a payment to the partner's acknowledgement (durable there).",
            &buckets,
        );
        let (syncs, batches) = self.store_stats();
        metric(
            "farthing_store_syncs_total",
            "counter",
            "Synced store commits (group commit: one per burst).",
            &[(String::new(), n(syncs))],
        );
        metric(
            "farthing_store_batches_total",
            "counter",
            "Write batches those commits carried.",
            &[(String::new(), n(batches))],
        );
        let channels = self.channel_records();
        let count = |state: ChainState| {
            channels
                .iter()
                .filter(|c| c.on_chain.state == state)
                .count() as u64
        };
        metric(
            "farthing_channels",
            "gauge",
            "The node's channels by on-chain state.",
            &[
                ("{state=\"open\"}".into(), n(count(ChainState::Open))),
                ("{state=\"closed\"}".into(), n(count(ChainState::Closed))),
                ("{state=\"settled\"}".into(), n(count(ChainState::Settled))),
            ],
        );
        let health = self.health();
        metric(
            "farthing_chain_head_block",
            "gauge",
            "The chain's latest block as last seen.",
            &[(String::new(), n(health.chain_head))],
        );
        metric(
            "farthing_watcher_synced_block",
            "gauge",
            "The last block whose events the node applied.",
            &[(String::new(), n(health.synced_block))],
        );
        metric(
            "farthing_watcher_lag_blocks",
            "gauge",
            "Blocks between the chain head and the watcher.",
            &[(
                String::new(),
                n(health.chain_head.saturating_sub(health.synced_block)),
            )],
        );
        metric(
            "farthing_degraded",
            "gauge",
            "1 while the node takes no new risk (chain down or lagging, store failing).",
            &[(String::new(), n(u64::from(!health.problems.is_empty())))],
        );
        metric(
            "farthing_warnings",
            "gauge",
            "Watchtower warnings (stale close near its deadline, low gas, stale data).",
            &[(String::new(), n(self.warnings().len() as u64))],
        );
        metric(
            "farthing_peer_links",
            "gauge",
            "Authenticated links to partner nodes.",
            &[(String::new(), n(self.link_count() as u64))],
        );
        metric(
            "farthing_peer_links_established_total",
            "counter",
            "Links to partner nodes established since start (one that keeps rising: links flap).",
            &[(String::new(), n(self.links_established()))],
        );
        let errors: Vec<(String, String)> = farthing_rpc::error_counts()
            .into_iter()
            .map(|(code, count)| (format!("{{code=\"{code}\"}}"), n(count)))
            .collect();
        metric(
            "farthing_rpc_errors_total",
            "counter",
            "RPC calls answered with an error, by the API's stable code.",
            &errors,
        );
        out
    }

    /// Serve `GET /metrics` on `addr` until the node stops; returns the bound address.
    pub async fn serve_metrics(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let node = self.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                if node.is_stopping() {
                    return;
                }
                let node = node.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let read =
                        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request))
                            .await;
                    let Ok(Ok(len)) = read else { return };
                    let head = String::from_utf8_lossy(&request[..len]);
                    let response = if head.starts_with("GET /metrics ") {
                        let body = node.render_metrics();
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .into()
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(bound)
    }
}
