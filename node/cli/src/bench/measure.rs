//! Measurement: latency percentiles, the nodes' synced commits, proofs and CPU time read
//! around a phase, the data directory's size, and the machine's crypto ceiling.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use eyre::{Result, eyre};
use farthing_devnet::NodeProcess;
use farthing_rpc::{FarthingApiClient, WsClient};
use serde::Serialize;

use crate::stream::percentile_ms;

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub(super) struct Percentiles {
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) p999: f64,
}

impl Percentiles {
    pub(super) fn of(latencies: &mut [Duration]) -> Self {
        latencies.sort_unstable();
        Self {
            p50: percentile_ms(latencies, 0.5),
            p99: percentile_ms(latencies, 0.99),
            p999: percentile_ms(latencies, 0.999),
        }
    }
}

/// Both nodes' synced commits and CPU time.
pub(super) struct Counters {
    pub(super) syncs: u64,
    pub(super) cpu_secs: f64,
    /// This process: the bench's own RPC clients.
    pub(super) client_cpu_secs: f64,
    /// Proofs both nodes have signed on the channel.
    pub(super) proofs: u64,
}

impl Counters {
    pub(super) async fn read(
        alice_rpc: &WsClient,
        bob_rpc: &WsClient,
        alice: &NodeProcess,
        bob: &NodeProcess,
    ) -> Result<Self> {
        let (a, b) = (alice_rpc.info().await?, bob_rpc.info().await?);
        let (ca, cb) = (
            alice_rpc.get_channel(1).await?,
            bob_rpc.get_channel(1).await?,
        );
        Ok(Self {
            syncs: a.store_syncs + b.store_syncs,
            cpu_secs: cpu_secs(alice.pid())? + cpu_secs(bob.pid())?,
            client_cpu_secs: cpu_secs(std::process::id())?,
            proofs: ca.sent_nonce + cb.sent_nonce,
        })
    }
}

/// User + system CPU time of process `pid` (Linux /proc).
pub(super) fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i - 3)
            .ok_or_else(|| eyre!("/proc/{pid}/stat is short"))?
            .parse::<f64>()?)
    };
    Ok((ticks(14)? + ticks(15)?) / 100.0)
}

/// Payer sign + receiver recover per second with both cores busy (libsecp256k1, as the nodes).
pub(super) fn crypto_ceiling(for_how_long: Duration) -> f64 {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let domain = farthing_chain::messages::channel_domain(31337, Address::repeat_byte(0xcc));
    let digester = farthing_chain::fast::ProofDigester::new(&domain);
    let key = alloy::signers::local::PrivateKeySigner::random();
    let signer = Arc::new(farthing_chain::fast::FastSigner::new(&key));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                let mut done = 0u64;
                while started.elapsed() < for_how_long {
                    let digest = digester.digest(t as u64, done + 1, u128::from(done));
                    let signature = signer.sign(&digest);
                    let _ = farthing_chain::fast::recover(&digest, &signature);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    done as f64 / started.elapsed().as_secs_f64()
}

/// Bytes of every file under `path`.
pub(super) fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}
