//! `farthing bench --mode gateway`: paid HTTP requests end to end. Its own anvil and
//! contracts, bob's node (the seller) and alice's node (the buyer) as processes, `farthing
//! gateway` as a third process in front of a trivial upstream (in this process), and
//! concurrent buyers calling alice's `farthing_fetch` over its RPC. In the same run, the same
//! requests through the same gateway on a free route; latencies at full load and paced at
//! half the paid rate, both kinds; CPU of the three processes per paid request; the channel
//! closed cooperatively and the payouts checked against what the requests cost.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use bytes::Bytes;
use eyre::{Result, bail, eyre};
use farthing_chain::contracts::MockUSDC;
use farthing_rpc::{FarthingApiClient, WsClient};
use http_body_util::Full;
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use super::measure::{Percentiles, cpu_secs};
use super::setup::{Chain, client};
use super::{BenchArgs, say};

/// Price of a paid request: 0.000001 token (one base unit).
const PRICE: &str = "0.000001";

/// What `--mode gateway` measured.
#[derive(Debug, Serialize)]
pub(super) struct GatewayReport {
    pub(super) requests: u64,
    pub(super) concurrency: u64,
    pub(super) paid_requests_per_sec: f64,
    pub(super) free_requests_per_sec: f64,
    pub(super) paid_vs_free: f64,
    pub(super) paid_latency_ms: Percentiles,
    pub(super) free_latency_ms: Percentiles,
    pub(super) half_rate: f64,
    pub(super) paid_latency_half_rate_ms: Percentiles,
    pub(super) free_latency_half_rate_ms: Percentiles,
    /// alice's node + bob's node + the gateway, per paid request.
    pub(super) cpu_us_per_paid_request: f64,
    /// The same three per free request.
    pub(super) cpu_us_per_free_request: f64,
    /// This process (the buyers' RPC clients and the upstream) per paid request.
    pub(super) client_cpu_us_per_paid_request: f64,
    pub(super) close_balances_exact: bool,
    pub(super) cpus: usize,
}

/// Answer every request with a short body.
async fn serve_upstream() -> Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"{\"ok\":true}",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// `farthing gateway` as a child process; its address once it listens.
async fn start_gateway(
    bob_url: &str,
    bob_dir: &Path,
    bob_peer: &str,
    upstream: std::net::SocketAddr,
    workers: Option<u16>,
) -> Result<(tokio::process::Child, String)> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    if let Some(n) = workers {
        command.args(["--workers", &n.to_string()]);
    }
    let mut child = command
        .args(["--node-url", bob_url, "--data-dir"])
        .arg(bob_dir)
        .args(["gateway", "--listen", "127.0.0.1:0", "--peer", bob_peer])
        .args(["--upstream", &format!("http://{upstream}")])
        .args([
            "--route",
            &format!("GET /paid/*={PRICE}"),
            "--free",
            "GET /free/*",
        ])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| eyre!("no stderr"))?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(line) = tokio::time::timeout_at(deadline.into(), lines.next_line()).await?? {
        if let Some(rest) = line.strip_prefix("gateway listening on http://") {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((child, addr));
        }
    }
    bail!("the gateway exited before listening")
}

/// `count` fetches of `base/i` from `concurrency` callers (paced at `rate` per second if
/// given); every latency. Every answer must be 200, and a paid one paid.
async fn fetch_load(
    alice: &Arc<WsClient>,
    base: &str,
    count: u64,
    concurrency: u64,
    rate: Option<f64>,
) -> Result<Vec<Duration>> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..concurrency {
        let (alice, next, base) = (alice.clone(), next.clone(), base.to_owned());
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= count {
                    return Ok::<_, eyre::Report>(latencies);
                }
                if let Some(rate) = rate {
                    tokio::time::sleep_until(
                        (started + Duration::from_secs_f64(i as f64 / rate)).into(),
                    )
                    .await;
                }
                let sent = Instant::now();
                let got = alice
                    .fetch(format!("{base}/{i}"), "0.01".into(), None, None, None, None)
                    .await?;
                latencies.push(sent.elapsed());
                if got.status != 200 {
                    bail!("{base}/{i}: HTTP {} {}", got.status, got.body);
                }
            }
        }));
    }
    let mut all = Vec::with_capacity(count as usize);
    for caller in callers {
        all.extend(caller.await??);
    }
    Ok(all)
}

fn processes_cpu(pids: &[u32]) -> Result<f64> {
    pids.iter().map(|p| cpu_secs(*p)).sum()
}

pub(super) async fn bench(args: &BenchArgs, dir: &Path) -> Result<GatewayReport> {
    let chain = Chain::start(args.anvil.clone(), args.node_workers, dir).await?;
    let bob = chain.start_node(2, &dir.join("bob"), &[] as &[&str])?;
    let alice = chain.start_node(1, &dir.join("alice"), &[] as &[&str])?;
    let alice_rpc = client(&alice).await?;
    let bob_rpc = client(&bob).await?;
    let upstream = serve_upstream().await?;
    let bob_peer = format!("{:#x}@{}", chain.bob(), bob.peers);
    let (gateway, addr) = start_gateway(
        &bob.url,
        &bob.data_dir,
        &bob_peer,
        upstream,
        args.node_workers,
    )
    .await?;
    let gateway_pid = gateway.id().ok_or_else(|| eyre!("the gateway exited"))?;
    say(&format!(
        "gateway at http://{addr} in front of http://{upstream}"
    ));
    let (paid, free) = (format!("http://{addr}/paid"), format!("http://{addr}/free"));

    // The first paid request opens alice's channel to bob (the 402 says how).
    let first = alice_rpc
        .fetch(
            format!("{paid}/first"),
            "0.01".into(),
            None,
            None,
            None,
            Some("50".into()),
        )
        .await?;
    let channel = first
        .paid
        .and_then(|p| p.opened)
        .ok_or_else(|| eyre!("the first paid request opened no channel: {}", first.body))?;
    say(&format!(
        "channel {channel} opened by the first paid request"
    ));
    let (requests, concurrency) = (args.requests, args.concurrency);
    fetch_load(&alice_rpc, &paid, args.warmup, concurrency, None).await?;
    fetch_load(&alice_rpc, &free, args.warmup, concurrency, None).await?;
    say(&format!(
        "warm-up: {} paid and {} free requests",
        args.warmup, args.warmup
    ));

    let pids = [alice.pid(), bob.pid(), gateway_pid];
    let (cpu0, client0, t0) = (
        processes_cpu(&pids)?,
        cpu_secs(std::process::id())?,
        Instant::now(),
    );
    let mut paid_lat = fetch_load(&alice_rpc, &paid, requests, concurrency, None).await?;
    let paid_secs = t0.elapsed().as_secs_f64();
    let (cpu1, client1, t1) = (
        processes_cpu(&pids)?,
        cpu_secs(std::process::id())?,
        Instant::now(),
    );
    let mut free_lat = fetch_load(&alice_rpc, &free, requests, concurrency, None).await?;
    let free_secs = t1.elapsed().as_secs_f64();
    let cpu2 = processes_cpu(&pids)?;
    let paid_rate = requests as f64 / paid_secs;
    let free_rate = requests as f64 / free_secs;
    say(&format!(
        "full load: {paid_rate:.0} paid requests/s, {free_rate:.0} free requests/s"
    ));

    let half = paid_rate / 2.0;
    let paced = (half * 5.0).max(1_000.0) as u64;
    let mut paid_half = fetch_load(&alice_rpc, &paid, paced, concurrency, Some(half)).await?;
    let mut free_half = fetch_load(&alice_rpc, &free, paced, concurrency, Some(half)).await?;
    let (paid_half, free_half) = (
        Percentiles::of(&mut paid_half),
        Percentiles::of(&mut free_half),
    );
    say(&format!(
        "paced at {half:.0}/s: p50 paid {:.2} ms, free {:.2} ms",
        paid_half.p50, free_half.p50
    ));

    // Close: bob's node got one base unit per paid request, and the chain pays exactly that.
    let paid_requests = 1 + args.warmup + requests + paced;
    let at_bob = bob_rpc.get_channel(channel).await?;
    let received =
        farthing_core::parse_amount(&at_bob.received, 6, u128::MAX).map_err(|e| eyre!("{e}"))?;
    let token = MockUSDC::new(chain.deployment.token, chain.devnet.reader());
    let held = async |who: Address| -> Result<u128> {
        Ok(token.balanceOf(who).call().await?.to::<u128>())
    };
    let before = held(chain.bob()).await?;
    let closed = alice_rpc.close_channel(channel).await?;
    let gained = held(chain.bob()).await? - before;
    let close_balances_exact = closed.state.as_str() == "settled"
        && received == u128::from(paid_requests)
        && gained == received;
    say(&format!(
        "cooperative close: bob +{gained} base units for {paid_requests} paid requests"
    ));
    drop(gateway);
    Ok(GatewayReport {
        requests,
        concurrency,
        paid_requests_per_sec: paid_rate,
        free_requests_per_sec: free_rate,
        paid_vs_free: paid_rate / free_rate,
        paid_latency_ms: Percentiles::of(&mut paid_lat),
        free_latency_ms: Percentiles::of(&mut free_lat),
        half_rate: half,
        paid_latency_half_rate_ms: paid_half,
        free_latency_half_rate_ms: free_half,
        cpu_us_per_paid_request: (cpu1 - cpu0) * 1e6 / requests as f64,
        cpu_us_per_free_request: (cpu2 - cpu1) * 1e6 / requests as f64,
        client_cpu_us_per_paid_request: (client1 - client0) * 1e6 / requests as f64,
        close_balances_exact,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The report as a table.
pub(super) fn print_table(r: &GatewayReport) {
    println!(
        "\nfarthing bench --mode gateway: {} requests of each kind, {} callers, {} cpus",
        r.requests, r.concurrency, r.cpus
    );
    println!("| measure | paid | free |\n|---|---|---|");
    println!(
        "| requests/s at full load | {:.0} | {:.0} |",
        r.paid_requests_per_sec, r.free_requests_per_sec
    );
    println!(
        "| latency full load p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        r.paid_latency_ms.p50, r.paid_latency_ms.p99, r.free_latency_ms.p50, r.free_latency_ms.p99
    );
    println!(
        "| latency paced at {:.0}/s p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        r.half_rate,
        r.paid_latency_half_rate_ms.p50,
        r.paid_latency_half_rate_ms.p99,
        r.free_latency_half_rate_ms.p50,
        r.free_latency_half_rate_ms.p99
    );
    println!(
        "| CPU per request (both nodes + gateway) | {:.0} us | {:.0} us |",
        r.cpu_us_per_paid_request, r.cpu_us_per_free_request
    );
    println!("| paid / free rate | {:.0}% | |", r.paid_vs_free * 100.0);
    println!("| cooperative close exact | {} | |", r.close_balances_exact);
}
