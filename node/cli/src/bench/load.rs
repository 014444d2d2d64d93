//! Load generation: payments streamed both ways at once through the nodes' public WebSocket
//! RPC (the same streams as `farthing pay --count`), as fast as acknowledged or paced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eyre::{Result, bail};
use farthing_rpc::WsClient;

use crate::PayTarget;
use crate::stream::{self, Stream};

/// One phase of payments, both ways at once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Load {
    pub(super) from_alice: u64,
    pub(super) from_bob: u64,
    /// Payments in flight per direction.
    pub(super) concurrency: u64,
    /// Payments per second per direction (none: as fast as acknowledged).
    pub(super) rate_each: Option<f64>,
    /// Start no payment after this instant.
    pub(super) until: Option<Instant>,
    /// No progress line.
    pub(super) quiet: bool,
}

impl Load {
    /// `payments` split evenly between the two directions, as fast as acknowledged.
    pub(super) fn split(payments: u64, concurrency: u64) -> Self {
        Self {
            from_alice: payments / 2,
            from_bob: payments - payments / 2,
            concurrency,
            rate_each: None,
            until: None,
            quiet: false,
        }
    }
}

/// alice pays bob while bob pays alice, as `load` says; every latency.
pub(super) async fn both_ways(
    alice_rpc: &Arc<WsClient>,
    bob_rpc: &Arc<WsClient>,
    load: Load,
) -> Result<Vec<Duration>> {
    let stream = |count, quiet| Stream {
        target: PayTarget::Channel(1),
        amount: "0.000001".into(),
        count,
        concurrency: load.concurrency,
        idempotency_key: None,
        memo: None,
        rate: load.rate_each,
        until: load.until,
        quiet,
    };
    let (from_alice, from_bob) = tokio::join!(
        stream::run(alice_rpc.clone(), stream(load.from_alice, load.quiet)),
        stream::run(bob_rpc.clone(), stream(load.from_bob, true)),
    );
    let mut latencies = from_alice?.latencies;
    latencies.extend(from_bob?.latencies);
    Ok(latencies)
}

/// One payment from alice once the link is (back) up.
pub(super) async fn pay_until_linked(alice_rpc: &WsClient) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let paid = farthing_rpc::PayParams {
            channel_id: Some(1),
            partner: None,
            amount: "0.000001".into(),
            idempotency_key: None,
            memo: None,
        }
        .call(alice_rpc)
        .await;
        match paid {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => bail!("no payment went through: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Poll `check` every 50 ms until it holds; fail after 30 s naming `what`.
pub(super) async fn until<F, Fut>(what: &str, check: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
