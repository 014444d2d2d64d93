//! Prometheus metrics: counters and a latency histogram kept with atomics on the payment path
//! (no lock, no allocation), one set per node (two nodes in one process never share them);
//! everything else is read from the node when scraped ([`Snapshot`]) and rendered in the text
//! exposition format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use farthing_rpc::code;

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
    /// RPC calls answered with an error, per code of [`code::ALL`].
    rpc_errors: [AtomicU64; code::ALL.len()],
}

/// What the node reports when scraped, besides its counters.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// (synced commits, write batches they carried).
    pub(crate) store: (u64, u64),
    /// Channels (open, closed, settled).
    pub(crate) channels: (u64, u64, u64),
    /// The chain head as last seen, and the watcher's block.
    pub(crate) chain_head: u64,
    /// The last block whose events the node applied.
    pub(crate) synced_block: u64,
    /// Whether the node is degraded.
    pub(crate) degraded: bool,
    /// How many warnings it has.
    pub(crate) warnings: u64,
    /// Peer links up, and established since start.
    pub(crate) links: (u64, u64),
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

    /// An RPC call was answered with error `code`.
    pub(crate) fn rpc_error(&self, error_code: i32) {
        if let Some(i) = code::ALL.iter().position(|&c| c == error_code) {
            self.rpc_errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The metrics in Prometheus' text exposition format.
    pub(crate) fn render(&self, s: &Snapshot) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let n = |v: u64| v.to_string();
        let one = |v: u64| [(String::new(), n(v))];
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let directions = |out: &AtomicU64, inward: &AtomicU64| {
            [
                ("{direction=\"out\"}".to_owned(), n(load(out))),
                ("{direction=\"in\"}".to_owned(), n(load(inward))),
            ]
        };
        metric(
            "farthing_payments_total",
            "counter",
            "Payments acknowledged by the partner (out) or made durable here (in).",
            &directions(&self.sent, &self.received),
        );
        metric(
            "farthing_payment_amount_base_units_total",
            "counter",
            "Sum of the payments' amounts, in the token's base units.",
            &directions(&self.amount_sent, &self.amount_received),
        );
        let mut cumulative = 0;
        let mut buckets: Vec<(String, String)> = BUCKETS
            .iter()
            .enumerate()
            .map(|(i, le)| {
                cumulative += load(&self.latency[i]);
                (format!("_bucket{{le=\"{le}\"}}"), n(cumulative))
            })
            .collect();
        cumulative += load(&self.latency[BUCKETS.len()]);
        buckets.push(("_bucket{le=\"+Inf\"}".into(), n(cumulative)));
        buckets.push((
            "_sum".into(),
            format!("{}", load(&self.latency_sum_ns) as f64 / 1e9),
        ));
        buckets.push(("_count".into(), n(cumulative)));
        metric(
            "farthing_payment_latency_seconds",
            "histogram",
            "From signing a payment to the partner's acknowledgement (durable there).",
            &buckets,
        );
        metric(
            "farthing_store_syncs_total",
            "counter",
            "Synced store commits (group commit: one per burst).",
            &one(s.store.0),
        );
        metric(
            "farthing_store_batches_total",
            "counter",
            "Write batches those commits carried.",
            &one(s.store.1),
        );
        let (open, closed, settled) = s.channels;
        metric(
            "farthing_channels",
            "gauge",
            "The node's channels by on-chain state.",
            &[
                ("{state=\"open\"}".into(), n(open)),
                ("{state=\"closed\"}".into(), n(closed)),
                ("{state=\"settled\"}".into(), n(settled)),
            ],
        );
        metric(
            "farthing_chain_head_block",
            "gauge",
            "The chain's latest block as last seen.",
            &one(s.chain_head),
        );
        metric(
            "farthing_watcher_synced_block",
            "gauge",
            "The last block whose events the node applied.",
            &one(s.synced_block),
        );
        metric(
            "farthing_watcher_lag_blocks",
            "gauge",
            "Blocks between the chain head and the watcher.",
            &one(s.chain_head.saturating_sub(s.synced_block)),
        );
        metric(
            "farthing_degraded",
            "gauge",
            "1 while the node takes no new risk (chain down or lagging, store failing, a critical task stopped).",
            &one(u64::from(s.degraded)),
        );
        metric(
            "farthing_warnings",
            "gauge",
            "Warnings (stale close near its deadline, low gas, stale data, an observer task stopped).",
            &one(s.warnings),
        );
        metric(
            "farthing_peer_links",
            "gauge",
            "Authenticated links to partner nodes.",
            &one(s.links.0),
        );
        metric(
            "farthing_peer_links_established_total",
            "counter",
            "Links to partner nodes established since start (one that keeps rising: links flap).",
            &one(s.links.1),
        );
        let errors: Vec<(String, String)> = code::ALL
            .iter()
            .zip(&self.rpc_errors)
            .map(|(code, count)| (format!("{{code=\"{code}\"}}"), n(load(count))))
            .collect();
        metric(
            "farthing_rpc_errors_total",
            "counter",
            "RPC calls answered with an error, by the API's stable code.",
            &errors,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_per_node_and_render_as_prometheus_text() {
        let (one, other) = (Metrics::default(), Metrics::default());
        one.paid(5, Duration::from_micros(700));
        one.rpc_error(code::UNKNOWN_CHANNEL);
        one.rpc_error(code::UNKNOWN_CHANNEL);
        let text = one.render(&Snapshot::default());
        assert!(
            text.contains("farthing_payments_total{direction=\"out\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("farthing_payment_latency_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(text.contains("farthing_payment_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("farthing_rpc_errors_total{code=\"1001\"} 2\n"));
        let quiet = other.render(&Snapshot::default());
        assert!(
            quiet.contains("farthing_rpc_errors_total{code=\"1001\"} 0\n"),
            "another node's counters are its own"
        );
    }
}
