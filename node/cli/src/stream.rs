//! `farthing pay --count N`: a stream of payments over one WebSocket connection, several in
//! flight at once, with a live progress line (count, rate, balances) on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eyre::Result;
use farthing_rpc::{FarthingApiClient, PayParams, PayResult};
use serde::Serialize;
use tokio::sync::Mutex;

/// What to stream.
pub(crate) struct Stream {
    pub(crate) target: crate::PayTarget,
    pub(crate) amount: String,
    pub(crate) count: u64,
    pub(crate) concurrency: u64,
    /// Payment `i` (1-based) uses `KEY-i`: the whole stream can be repeated safely.
    pub(crate) idempotency_key: Option<String>,
    pub(crate) memo: Option<String>,
    /// Payments per second to pace the stream at (none: as fast as acknowledged).
    pub(crate) rate: Option<f64>,
    /// Start no payment after this instant (a stream of a fixed duration).
    pub(crate) until: Option<Instant>,
    /// No progress line (another stream shows one).
    pub(crate) quiet: bool,
}

/// The stream's outcome (`--json` prints it).
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    channel_id: u64,
    payments: u64,
    amount_each: String,
    seconds: f64,
    payments_per_sec: f64,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    latency_ms_p999: f64,
    /// Balances after the payment with the highest nonce.
    last: Option<PayResult>,
    /// Every payment's latency, sorted (for callers that merge streams).
    #[serde(skip)]
    pub(crate) latencies: Vec<Duration>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "paid {} x {} on channel {} in {:.2} s: {:.0} payments/s, latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
            self.payments,
            self.amount_each,
            self.channel_id,
            self.seconds,
            self.payments_per_sec,
            self.latency_ms_p50,
            self.latency_ms_p99,
            self.latency_ms_p999
        )?;
        if let Some(last) = &self.last {
            write!(
                f,
                "\nwe can still pay {}, the partner {} (proof nonce {})",
                last.balance_ours, last.balance_partner, last.nonce
            )?;
        }
        Ok(())
    }
}

/// Send `stream.count` payments, `stream.concurrency` at a time; stops at the first failure
/// (after the payments in flight finish) and reports how many were acknowledged.
pub(crate) async fn run<C>(client: Arc<C>, stream: Stream) -> Result<Summary>
where
    C: FarthingApiClient + Send + Sync + 'static,
{
    let next = Arc::new(AtomicU64::new(1));
    let failed = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let last: Arc<Mutex<Option<PayResult>>> = Arc::default();
    let started = Instant::now();
    let stream = Arc::new(stream);
    let workers: Vec<_> = (0..stream.concurrency.clamp(1, 1024))
        .map(|_| {
            let (client, stream, next, done, last, failed) = (
                client.clone(),
                stream.clone(),
                next.clone(),
                done.clone(),
                last.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i > stream.count
                        || failed.load(Ordering::Relaxed)
                        || stream.until.is_some_and(|t| Instant::now() >= t)
                    {
                        return Ok(latencies);
                    }
                    if let Some(rate) = stream.rate {
                        let due = started + Duration::from_secs_f64((i - 1) as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let sent = Instant::now();
                    let paid = PayParams {
                        channel_id: stream.target.id(),
                        partner: stream.target.partner(),
                        amount: stream.amount.clone(),
                        idempotency_key: stream
                            .idempotency_key
                            .as_ref()
                            .map(|k| format!("{k}-{i}")),
                        memo: stream.memo.clone(),
                    }
                    .call(&*client)
                    .await;
                    let paid = match paid {
                        Ok(paid) => paid,
                        Err(e) => {
                            // Let the other workers stop at their next payment.
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    };
                    latencies.push(sent.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                    let mut last = last.lock().await;
                    if last.as_ref().is_none_or(|l| l.nonce < paid.nonce) {
                        *last = Some(paid);
                    }
                }
            })
        })
        .collect();

    let progress = {
        let (done, last, count, quiet, until) = (
            done.clone(),
            last.clone(),
            stream.count,
            stream.quiet,
            stream.until,
        );
        tokio::spawn(async move {
            loop {
                if quiet {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                let n = done.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64();
                let balances = last.lock().await.as_ref().map_or_else(String::new, |l| {
                    format!(
                        " · we can pay {} · the partner {}",
                        l.balance_ours, l.balance_partner
                    )
                });
                let of = if until.is_some() {
                    String::new()
                } else {
                    format!("/{count}")
                };
                eprint!("\r  {n}{of} payments acknowledged · {rate:.0}/s{balances}   ");
            }
        })
    };

    let mut latencies = Vec::with_capacity(usize::try_from(stream.count.min(1 << 20)).unwrap_or(0));
    let mut failure = None;
    for worker in workers {
        match worker.await {
            Ok(Ok(mine)) => latencies.extend(mine),
            Ok(Err(e)) => failure = failure.or(Some(eyre::Report::new(e))),
            Err(e) => failure = failure.or(Some(eyre::eyre!("payment task failed: {e}"))),
        }
    }
    progress.abort();
    let seconds = started.elapsed().as_secs_f64();
    let payments = done.load(Ordering::Relaxed);
    if !stream.quiet {
        eprintln!(
            "\r  {payments} payments acknowledged · {:.0}/s{}",
            payments as f64 / seconds,
            " ".repeat(40)
        );
    }
    if let Some(e) = failure {
        return Err(e.wrap_err(format!(
            "the stream stopped after {payments} acknowledged payments"
        )));
    }
    latencies.sort_unstable();
    let last = last.lock().await.clone();
    Ok(Summary {
        channel_id: last.as_ref().map_or(0, |l| l.channel_id),
        payments,
        amount_each: stream.amount.clone(),
        seconds,
        payments_per_sec: payments as f64 / seconds,
        latency_ms_p50: percentile_ms(&latencies, 0.5),
        latency_ms_p99: percentile_ms(&latencies, 0.99),
        latency_ms_p999: percentile_ms(&latencies, 0.999),
        last,
        latencies,
    })
}

/// The `p` quantile of sorted `latencies`, in milliseconds.
pub(crate) fn percentile_ms(latencies: &[Duration], p: f64) -> f64 {
    latencies
        .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}
